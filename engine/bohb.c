/* BOHB proposals from TPE on the largest budget with enough observations. */
#include "engine/bohb.h"

#include <stdint.h>

#include "engine/core/alloc.h"

void kb_bohb_sampler_init(kb_bohb_sampler *s, const kb_encode *encode, int maximize)
{
    kb_tpe_opts tpe = KB_TPE_OPTS_INIT;
    *s = (kb_bohb_sampler){0};
    s->encode = encode;
    s->tpe = tpe;
    s->random_fraction = 1.0 / 3.0;
    s->maximize = maximize;
    s->max_budget_index = SIZE_MAX;
}

int kb_bohb_sample(double *u_out, size_t dim, const kb_hyperband_budget_obs *budgets,
                   size_t n_budgets, kb_rng *rng, void *payload)
{
    kb_bohb_sampler *s = payload;
    kb_error *err = &s->err;
    KB_CHECK_ARG(s->encode != NULL && dim == kb_encode_n_params(s->encode));
    size_t n_min = s->n_min ? s->n_min : dim + 3;
    /* draw rho's coin first so the random stream does not depend on the observations */
    int random = kb_rng_uniform(rng) < s->random_fraction;
    size_t n_usable = n_budgets;
    if (s->max_budget_index < n_usable) {
        n_usable = s->max_budget_index + 1;
    }
    size_t b = random ? SIZE_MAX : kb_hyperband_bohb_budget(budgets, n_usable, n_min);
    if (b == SIZE_MAX) {
        return kb_tpe_suggest_random(u_out, NULL, s->encode, NULL, rng, err);
    }
    const kb_hyperband_budget_obs *o = &budgets[b];
    double *y = kb_malloc_array(o->n, sizeof *y);
    if (y == NULL) {
        return kb_error_set(err, KB_ENOMEM, "bohb: out of memory");
    }
    for (size_t j = 0; j < o->n; j++) {
        y[j] = s->maximize ? -o->y[j] : o->y[j];
    }
    kb_tpe_opts tpe = s->tpe;
    tpe.n_startup = 0;
    int rc = kb_tpe_suggest(u_out, NULL, s->encode, o->u, o->ld, o->n, y, &tpe, NULL, rng, err);
    kb_free(y);
    if (rc == KB_OK) {
        s->n_model++;
    }
    return rc;
}
