/* Hyperband plans and the synchronous Hyperband / successive-halving scheduler. */
#include "engine/hyperband.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/hyperband_priv.h"

/* Relative slack for floor / ceil / log of quantities that are exact in real arithmetic
 * (log_3 81 = 4, 5 * 9 / 3 = 15) but may land a few ulps on the wrong side in doubles. */
#define SLACK 1e-9

static double floor_slack(double x)
{
    return floor(x + SLACK * fmax(1.0, fabs(x)));
}

static double ceil_slack(double x)
{
    return ceil(x - SLACK * fmax(1.0, fabs(x)));
}

int kb_hyperband_plan_make(kb_hyperband_plan *out, double max_resource, double eta,
                           kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    memset(out, 0, sizeof *out);
    if (!isfinite(max_resource) || !isfinite(eta) || max_resource < 1 || eta <= 1) {
        return kb_error_set(err, KB_EINVAL, "hyperband: need R >= 1 and eta > 1 (R %g, eta %g)",
                            max_resource, eta);
    }
    double s_max_d = floor_slack(log(max_resource) / log(eta));
    if (s_max_d >= KB_HYPERBAND_MAX_BRACKETS) {
        return kb_error_set(err, KB_EINVAL, "hyperband: s_max = %g brackets is too many",
                            s_max_d + 1);
    }
    size_t s_max = (size_t)s_max_d;
    out->max_resource = max_resource;
    out->eta = eta;
    out->s_max = s_max;
    out->budget = (double)(s_max + 1) * max_resource;
    out->n_brackets = s_max + 1;
    for (size_t b = 0; b <= s_max; b++) {
        size_t s = s_max - b;
        kb_hyperband_bracket *br = &out->brackets[b];
        double n = ceil_slack(out->budget / max_resource * pow(eta, (double)s) / (double)(s + 1));
        double r = max_resource * pow(eta, -(double)s);
        if (n > KB_HYPERBAND_MAX_CONFIGS) {
            return kb_error_set(err, KB_EINVAL,
                                "hyperband: bracket s = %zu would start %.3g configurations", s, n);
        }
        br->s = s;
        br->n_rungs = s + 1;
        for (size_t i = 0; i <= s; i++) {
            br->rungs[i].n_configs = (size_t)floor_slack(n * pow(eta, -(double)i));
            br->rungs[i].resource = r * pow(eta, (double)i);
        }
    }
    return KB_OK;
}

int kb_hyperband_plan_sh(kb_hyperband_plan *out, size_t n, double min_resource,
                         double max_resource, double eta, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    memset(out, 0, sizeof *out);
    if (n == 0 || n > KB_HYPERBAND_MAX_CONFIGS || !isfinite(min_resource) || !isfinite(max_resource) || !isfinite(eta) ||
        min_resource <= 0 || min_resource > max_resource || eta <= 1) {
        return kb_error_set(err, KB_EINVAL,
                            "successive halving: need 1 <= n <= %g, 0 < r_min <= R and eta > 1",
                            (double)KB_HYPERBAND_MAX_CONFIGS);
    }
    kb_hyperband_bracket *br = &out->brackets[0];
    for (size_t i = 0; i < KB_HYPERBAND_MAX_RUNGS; i++) {
        double r = min_resource * pow(eta, (double)i);
        double ni = floor_slack((double)n * pow(eta, -(double)i));
        if (r > max_resource * (1 + SLACK) || ni < 1) {
            break;
        }
        br->rungs[i].n_configs = (size_t)ni;
        br->rungs[i].resource = r;
        br->n_rungs = i + 1;
    }
    br->s = br->n_rungs - 1;
    out->max_resource = max_resource;
    out->eta = eta;
    out->s_max = br->s;
    out->budget = (double)n * min_resource * (double)br->n_rungs;
    out->n_brackets = 1;
    return KB_OK;
}

size_t kb_hyperband_plan_n_jobs(const kb_hyperband_plan *plan)
{
    size_t n = 0;
    for (size_t b = 0; b < plan->n_brackets; b++) {
        for (size_t i = 0; i < plan->brackets[b].n_rungs; i++) {
            n += plan->brackets[b].rungs[i].n_configs;
        }
    }
    return n;
}

size_t kb_hyperband_plan_n_configs(const kb_hyperband_plan *plan)
{
    size_t n = 0;
    for (size_t b = 0; b < plan->n_brackets; b++) {
        n += plan->brackets[b].rungs[0].n_configs;
    }
    return n;
}

size_t kb_hyperband_bohb_budget(const kb_hyperband_budget_obs *budgets, size_t n_budgets,
                                size_t n_min)
{
    for (size_t b = n_budgets; b-- > 0;) {
        if (budgets[b].n >= n_min && budgets[b].n > 0) {
            return b;
        }
    }
    return SIZE_MAX;
}

/* ---- shared store (hyperband_priv.h) ---- */

int kb_hyperband__store_init(kb_hyperband__store *s, size_t dim, const double *resources,
                             size_t n_budgets, kb_error *err)
{
    s->dim = dim;
    s->n_budgets = n_budgets;
    s->view = kb_calloc(n_budgets, sizeof *s->view);
    s->u = kb_calloc(n_budgets, sizeof *s->u);
    s->y = kb_calloc(n_budgets, sizeof *s->y);
    s->cap = kb_calloc(n_budgets, sizeof *s->cap);
    if (s->view == NULL || s->u == NULL || s->y == NULL || s->cap == NULL) {
        return kb_error_set(err, KB_ENOMEM, "hyperband: out of memory");
    }
    for (size_t b = 0; b < n_budgets; b++) {
        s->view[b].resource = resources[b];
    }
    return KB_OK;
}

void kb_hyperband__store_release(kb_hyperband__store *s)
{
    for (size_t b = 0; b < s->n_budgets; b++) {
        if (s->u != NULL) {
            kb_free(s->u[b]);
        }
        if (s->y != NULL) {
            kb_free(s->y[b]);
        }
    }
    kb_free(s->u);
    kb_free(s->y);
    kb_free(s->cap);
    kb_free(s->view);
    kb_free(s->trial_u);
    memset(s, 0, sizeof *s);
}

static int default_sample(double *u_out, size_t dim, const kb_hyperband_budget_obs *budgets,
                          size_t n_budgets, kb_rng *rng, void *payload)
{
    (void)budgets;
    (void)n_budgets;
    (void)payload;
    for (size_t k = 0; k < dim; k++) {
        u_out[k] = kb_rng_uniform(rng);
    }
    return 0;
}

int kb_hyperband__store_new_trial(size_t *trial_out, kb_hyperband__store *s, kb_error *err)
{
    if (s->n_trials == s->cap_trials) {
        size_t cap = s->cap_trials ? 2 * s->cap_trials : 64;
        double *u = kb_realloc_array(s->trial_u, cap, s->dim * sizeof *u);
        if (u == NULL) {
            return kb_error_set(err, KB_ENOMEM, "hyperband: out of memory");
        }
        s->trial_u = u;
        s->cap_trials = cap;
    }
    double *u = s->trial_u + s->n_trials * s->dim;
    kb_hyperband_sample_fn fn = s->sample ? s->sample : default_sample;
    int rc = s->model_based ? fn(u, s->dim, s->view, s->n_budgets, &s->rng, s->payload)
                            : fn(u, s->dim, NULL, 0, &s->rng, s->payload);
    if (rc != 0) {
        return kb_error_set(err, rc < 0 ? rc : KB_ECANCELED,
                            "hyperband: the sampler stopped with %d", rc);
    }
    *trial_out = s->n_trials++;
    return KB_OK;
}

int kb_hyperband__store_add_obs(kb_hyperband__store *s, size_t b, size_t trial, double y,
                                kb_error *err)
{
    if (!isfinite(y)) {
        return KB_OK;
    }
    kb_hyperband_budget_obs *v = &s->view[b];
    if (v->n == s->cap[b]) {
        /* column-major with ld = cap: growing re-lays the columns out */
        size_t cap = s->cap[b] ? 2 * s->cap[b] : 32;
        double *u = kb_malloc_array(cap, (s->dim ? s->dim : 1) * sizeof *u);
        double *yy = kb_realloc_array(s->y[b], cap, sizeof *yy);
        if (u == NULL || yy == NULL) {
            kb_free(u);
            if (yy != NULL) {
                s->y[b] = yy;
            }
            return kb_error_set(err, KB_ENOMEM, "hyperband: out of memory");
        }
        for (size_t k = 0; k < s->dim; k++) {
            for (size_t j = 0; j < v->n; j++) {
                u[j + k * cap] = s->u[b][j + k * s->cap[b]];
            }
        }
        kb_free(s->u[b]);
        s->u[b] = u;
        s->y[b] = yy;
        s->cap[b] = cap;
    }
    for (size_t k = 0; k < s->dim; k++) {
        s->u[b][v->n + k * s->cap[b]] = s->trial_u[trial * s->dim + k];
    }
    s->y[b][v->n] = y;
    v->n++;
    v->ld = s->cap[b];
    v->u = s->u[b];
    v->y = s->y[b];
    return KB_OK;
}

size_t kb_hyperband__budget_index(const kb_hyperband__store *s, double resource)
{
    for (size_t b = 0; b < s->n_budgets; b++) {
        if (fabs(s->view[b].resource - resource) <= SLACK * fmax(1.0, fabs(resource))) {
            return b;
        }
    }
    return SIZE_MAX;
}

double kb_hyperband__key(const kb_hyperband__store *s, double y)
{
    if (!isfinite(y)) {
        return HUGE_VAL;
    }
    return s->maximize ? -y : y;
}

static int ranked_cmp(const void *a, const void *b)
{
    const kb_hyperband__ranked *x = a, *y = b;
    if (x->key != y->key) {
        return x->key < y->key ? -1 : 1;
    }
    return (x->trial > y->trial) - (x->trial < y->trial);
}

void kb_hyperband__rank(kb_hyperband__ranked *r, size_t n)
{
    if (n > 1) {
        qsort(r, n, sizeof *r, ranked_cmp);
    }
}

/* ---- the synchronous scheduler ---- */

enum { TRIAL_IDLE = 0, TRIAL_PENDING = 1 };

struct kb_hyperband {
    kb_hyperband_plan plan;
    kb_hyperband_opts opts;
    kb_hyperband__store st;
    unsigned char *state;      /* per trial: TRIAL_* */
    double *trial_resource;    /* per trial: resource of its last reported job */
    size_t cap_state;
    /* position: pass `iter`, bracket `b`, rung `i` */
    size_t iter, b, i;
    int done;
    kb_hyperband__ranked *rung; /* the current rung's trials and results, n_configs of it */
    size_t n_rung_max;
    size_t n_issued, n_reported;
    size_t *promoted;
    size_t n_promoted;
    int have_best;
    size_t best_trial;
    double best_key, best_y, best_resource;
};

static int collect_resources(double *res, size_t *n_out, const kb_hyperband_plan *plan)
{
    size_t n = 0;
    for (size_t b = 0; b < plan->n_brackets; b++) {
        for (size_t i = 0; i < plan->brackets[b].n_rungs; i++) {
            double r = plan->brackets[b].rungs[i].resource;
            size_t j = 0;
            while (j < n && fabs(res[j] - r) > SLACK * fmax(1.0, fabs(r))) {
                j++;
            }
            if (j == n) {
                res[n++] = r;
            }
        }
    }
    /* ascending insertion sort: at most MAX_BRACKETS * MAX_RUNGS values */
    for (size_t j = 1; j < n; j++) {
        double v = res[j];
        size_t k = j;
        while (k > 0 && res[k - 1] > v) {
            res[k] = res[k - 1];
            k--;
        }
        res[k] = v;
    }
    *n_out = n;
    return KB_OK;
}

static int check_plan(const kb_hyperband_plan *plan, size_t *n_rung_max, kb_error *err)
{
    if (plan->n_brackets == 0 || plan->n_brackets > KB_HYPERBAND_MAX_BRACKETS) {
        return kb_error_set(err, KB_EINVAL, "hyperband: the plan has no brackets");
    }
    *n_rung_max = 0;
    for (size_t b = 0; b < plan->n_brackets; b++) {
        const kb_hyperband_bracket *br = &plan->brackets[b];
        if (br->n_rungs == 0 || br->n_rungs > KB_HYPERBAND_MAX_RUNGS) {
            return kb_error_set(err, KB_EINVAL, "hyperband: bracket %zu has no rungs", b);
        }
        for (size_t i = 0; i < br->n_rungs; i++) {
            const kb_hyperband_rung *r = &br->rungs[i];
            if (r->n_configs == 0 || !(r->resource > 0) || !isfinite(r->resource) ||
                (i > 0 && (r->n_configs > br->rungs[i - 1].n_configs ||
                           r->resource <= br->rungs[i - 1].resource))) {
                return kb_error_set(err, KB_EINVAL,
                                    "hyperband: bracket %zu rung %zu: need 1 <= n_i <= n_{i-1} "
                                    "and increasing resources", b, i);
            }
        }
        if (br->rungs[0].n_configs > *n_rung_max) {
            *n_rung_max = br->rungs[0].n_configs;
        }
    }
    return KB_OK;
}

int kb_hyperband_new(kb_hyperband **out, const kb_hyperband_plan *plan, size_t dim,
                     kb_hyperband_sample_fn sample, void *payload,
                     const kb_hyperband_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    *out = NULL;
    KB_CHECK_ARG(plan != NULL);
    KB_CHECK_ARG(dim > 0);
    kb_hyperband *hb = NULL;
    size_t n_rung_max = 0;
    int rc = check_plan(plan, &n_rung_max, err);
    if (rc != KB_OK) {
        return rc;
    }
    hb = kb_calloc(1, sizeof *hb);
    if (hb == NULL) {
        return kb_error_set(err, KB_ENOMEM, "hyperband: out of memory");
    }
    hb->plan = *plan;
    kb_hyperband_opts defaults = KB_HYPERBAND_OPTS_INIT;
    hb->opts = opts ? *opts : defaults;
    if (hb->opts.n_iterations == 0) {
        hb->opts.n_iterations = 1;
    }
    double res[KB_HYPERBAND_MAX_BRACKETS * KB_HYPERBAND_MAX_RUNGS];
    size_t n_res = 0;
    collect_resources(res, &n_res, plan);
    rc = kb_hyperband__store_init(&hb->st, dim, res, n_res, err);
    if (rc != KB_OK) {
        goto done;
    }
    hb->st.maximize = hb->opts.maximize != 0;
    hb->st.model_based = hb->opts.model_based != 0;
    hb->st.sample = sample;
    hb->st.payload = payload;
    kb_rng_seed(&hb->st.rng, hb->opts.seed);
    hb->n_rung_max = n_rung_max;
    hb->rung = kb_calloc(n_rung_max, sizeof *hb->rung);
    hb->promoted = kb_calloc(n_rung_max, sizeof *hb->promoted);
    if (hb->rung == NULL || hb->promoted == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "hyperband: out of memory");
        goto done;
    }
    *out = hb;
    hb = NULL;
done:
    kb_hyperband_free(hb);
    return rc;
}

void kb_hyperband_free(kb_hyperband *hb)
{
    if (hb == NULL) {
        return;
    }
    kb_hyperband__store_release(&hb->st);
    kb_free(hb->state);
    kb_free(hb->trial_resource);
    kb_free(hb->rung);
    kb_free(hb->promoted);
    kb_free(hb);
}

static int grow_state(kb_hyperband *hb, kb_error *err)
{
    if (hb->st.n_trials <= hb->cap_state) {
        return KB_OK;
    }
    size_t cap = hb->st.cap_trials;
    unsigned char *s = kb_realloc(hb->state, cap);
    if (s == NULL) {
        return kb_error_set(err, KB_ENOMEM, "hyperband: out of memory");
    }
    hb->state = s;
    double *r = kb_realloc_array(hb->trial_resource, cap, sizeof *r);
    if (r == NULL) {
        return kb_error_set(err, KB_ENOMEM, "hyperband: out of memory");
    }
    hb->trial_resource = r;
    memset(hb->state + hb->cap_state, 0, cap - hb->cap_state);
    for (size_t t = hb->cap_state; t < cap; t++) {
        hb->trial_resource[t] = 0;
    }
    hb->cap_state = cap;
    return KB_OK;
}

static const kb_hyperband_rung *current_rung(const kb_hyperband *hb)
{
    return &hb->plan.brackets[hb->b].rungs[hb->i];
}

int kb_hyperband_get_job(kb_hyperband_job *out, kb_hyperband *hb, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    KB_CHECK_ARG(hb != NULL);
    memset(out, 0, sizeof *out);
    if (hb->done) {
        out->status = KB_HYPERBAND_JOB_DONE;
        return KB_OK;
    }
    const kb_hyperband_rung *rung = current_rung(hb);
    if (hb->n_issued == rung->n_configs) {
        out->status = KB_HYPERBAND_JOB_WAIT;
        return KB_OK;
    }
    size_t trial;
    if (hb->i == 0) {
        int rc = kb_hyperband__store_new_trial(&trial, &hb->st, err);
        if (rc != KB_OK) {
            return rc;
        }
        rc = grow_state(hb, err);
        if (rc != KB_OK) {
            hb->st.n_trials--;
            return rc;
        }
        hb->rung[hb->n_issued].trial = trial;
    } else {
        trial = hb->rung[hb->n_issued].trial; /* filled by the promotion */
    }
    hb->rung[hb->n_issued].key = HUGE_VAL;
    hb->n_issued++;
    hb->state[trial] = TRIAL_PENDING;
    out->status = KB_HYPERBAND_JOB_RUN;
    out->trial = trial;
    out->iteration = hb->iter;
    out->bracket = hb->b;
    out->rung = hb->i;
    out->resource = rung->resource;
    out->resume_from = hb->trial_resource[trial];
    return KB_OK;
}

/* All results of the current rung are in: promote its best into the next rung, or move on
 * to the next bracket / pass. */
static void advance(kb_hyperband *hb)
{
    const kb_hyperband_bracket *br = &hb->plan.brackets[hb->b];
    size_t n = br->rungs[hb->i].n_configs;
    kb_hyperband__rank(hb->rung, n);
    hb->n_promoted = 0;
    hb->n_issued = 0;
    hb->n_reported = 0;
    if (hb->i + 1 < br->n_rungs) {
        size_t keep = br->rungs[hb->i + 1].n_configs;
        for (size_t j = 0; j < keep; j++) {
            hb->promoted[j] = hb->rung[j].trial;
        }
        hb->n_promoted = keep;
        hb->i++;
        return;
    }
    hb->i = 0;
    if (++hb->b == hb->plan.n_brackets) {
        hb->b = 0;
        if (++hb->iter == hb->opts.n_iterations) {
            hb->done = 1;
        }
    }
}

int kb_hyperband_report(kb_hyperband *hb, size_t trial, double y, kb_error *err)
{
    KB_CHECK_ARG(hb != NULL);
    if (trial >= hb->st.n_trials || hb->state[trial] != TRIAL_PENDING) {
        return kb_error_set(err, KB_EINVAL, "hyperband: trial %zu has no pending job", trial);
    }
    const kb_hyperband_rung *rung = current_rung(hb);
    size_t slot = 0;
    while (slot < hb->n_issued && hb->rung[slot].trial != trial) {
        slot++;
    }
    size_t bi = kb_hyperband__budget_index(&hb->st, rung->resource);
    int rc = kb_hyperband__store_add_obs(&hb->st, bi, trial, y, err);
    if (rc != KB_OK) {
        return rc;
    }
    double key = kb_hyperband__key(&hb->st, y);
    hb->rung[slot].key = key;
    hb->state[trial] = TRIAL_IDLE;
    hb->trial_resource[trial] = rung->resource;
    if (isfinite(y) && (!hb->have_best || rung->resource > hb->best_resource ||
                        (rung->resource == hb->best_resource && key < hb->best_key))) {
        hb->have_best = 1;
        hb->best_trial = trial;
        hb->best_key = key;
        hb->best_y = y;
        hb->best_resource = rung->resource;
    }
    hb->n_promoted = 0;
    if (++hb->n_reported == rung->n_configs) {
        advance(hb);
        for (size_t j = 0; j < hb->n_promoted; j++) {
            hb->rung[j].trial = hb->promoted[j];
        }
    }
    return KB_OK;
}

const size_t *kb_hyperband_promotions(const kb_hyperband *hb, size_t *n_out)
{
    *n_out = hb->n_promoted;
    return hb->promoted;
}

size_t kb_hyperband_n_trials(const kb_hyperband *hb)
{
    return hb->st.n_trials;
}

const double *kb_hyperband_trial_config(const kb_hyperband *hb, size_t trial)
{
    if (trial >= hb->st.n_trials) {
        return NULL;
    }
    return hb->st.trial_u + trial * hb->st.dim;
}

const kb_hyperband_budget_obs *kb_hyperband_budgets(const kb_hyperband *hb, size_t *n_out)
{
    *n_out = hb->st.n_budgets;
    return hb->st.view;
}

int kb_hyperband_best(size_t *trial_out, double *y_out, double *resource_out,
                      const kb_hyperband *hb, kb_error *err)
{
    KB_CHECK_ARG(hb != NULL);
    if (!hb->have_best) {
        return kb_error_set(err, KB_ENOTFOUND, "hyperband: no finite result yet");
    }
    if (trial_out) {
        *trial_out = hb->best_trial;
    }
    if (y_out) {
        *y_out = hb->best_y;
    }
    if (resource_out) {
        *resource_out = hb->best_resource;
    }
    return KB_OK;
}
