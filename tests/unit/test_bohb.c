/* Tests of engine/bohb: TPE proposals inside Hyperband, direction, determinism. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/asha.h"
#include "engine/bohb.h"

static char *kinds[3] = {"a", "b", "c"};

/* x in [0, 1], kind in {a, b, c}; optimum x = 0.7, kind b */
static void make_space(kb_space *s, kb_space_param p[2])
{
    memset(p, 0, 2 * sizeof *p);
    p[0] = (kb_space_param){.name = "x", .type = KB_SPACE_PARAM_FLOAT, .low = 0, .high = 1};
    p[1] = (kb_space_param){.name = "kind", .type = KB_SPACE_PARAM_CATEGORICAL, .choices = kinds,
                            .n_choices = 3};
    *s = (kb_space){.name = "toy", .params = p, .n_params = 2};
}

static double quality(const double *u)
{
    return (u[0] - 0.7) * (u[0] - 0.7) + (floor(u[1] * 3) != 1 ? 0.3 : 0.0);
}

/* One Hyperband run (R = 27, eta = 3, 2 passes); the best quality among configurations
 * trained to R, and the configurations' u[0] in order into xs (if not NULL). */
static double run(const kb_encode *e, int use_bohb, int maximize, uint64_t seed, double *xs,
                  size_t *n_model)
{
    kb_error err = KB_ERROR_INIT;
    kb_hyperband_plan p;
    CHECK_OK(kb_hyperband_plan_make(&p, 27, 3, &err), err);
    kb_hyperband_opts o = KB_HYPERBAND_OPTS_INIT;
    o.seed = seed;
    o.maximize = maximize;
    o.n_iterations = 2;
    o.model_based = use_bohb;
    kb_bohb_sampler bs;
    kb_bohb_sampler_init(&bs, e, maximize);
    kb_hyperband *hb = NULL;
    CHECK_OK(kb_hyperband_new(&hb, &p, 2, use_bohb ? kb_bohb_sample : NULL, &bs, &o, &err),
             err);
    double best = HUGE_VAL;
    for (;;) {
        kb_hyperband_job j;
        int rc = kb_hyperband_get_job(&j, hb, &err);
        CHECK(rc == KB_OK);
        if (rc != KB_OK) {
            fprintf(stderr, "%s / %s\n", err.msg, bs.err.msg);
            break;
        }
        if (j.status != KB_HYPERBAND_JOB_RUN) {
            break;
        }
        const double *u = kb_hyperband_trial_config(hb, j.trial);
        if (xs != NULL && j.rung == 0) {
            xs[j.trial] = u[0];
        }
        double f = quality(u) + 0.5 / j.resource;
        if (j.resource == 27) {
            best = fmin(best, quality(u));
        }
        CHECK_OK(kb_hyperband_report(hb, j.trial, maximize ? -f : f, &err), err);
    }
    if (n_model != NULL) {
        *n_model = bs.n_model;
    }
    kb_hyperband_free(hb);
    return best;
}

static void test_bohb_proposals_beat_random_and_respect_direction(void)
{
    kb_space s;
    kb_space_param p[2];
    make_space(&s, p);
    kb_encode *e = NULL;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_encode_new(&e, &s, &err), err);
    if (e == NULL) {
        return;
    }
    size_t n = 2 * 60; /* 2 passes of 27 + 12 + 6 + 4 + ... configurations, bounded */
    double *x1 = calloc(n * 2, sizeof *x1), *x2 = calloc(n * 2, sizeof *x2);
    size_t n_model = 0;
    double b1 = run(e, 1, 0, 42, x1, &n_model);
    double b2 = run(e, 1, 1, 42, x2, NULL);
    CHECK(n_model > 0);
    CHECK(b1 == b2); /* maximising the negated loss proposes exactly the same */
    CHECK(memcmp(x1, x2, n * 2 * sizeof *x1) == 0);
    double bohb = 0, rnd = 0;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        bohb += run(e, 1, 0, seed, NULL, NULL) / 5;
        rnd += run(e, 0, 0, seed, NULL, NULL) / 5;
    }
    CHECK(bohb < rnd);
    free(x1);
    free(x2);
    kb_encode_free(e);
}

/* The same sampler drives ASHA (one worker, 120 configurations) when it models rung 0 only:
 * the model is used, and the later proposals are better on average than ASHA's random ones.
 * (Modelling the top rungs, made of promoted trials only, was worse than random.) */
static void test_bohb_sampler_drives_asha(void)
{
    kb_space s;
    kb_space_param p[2];
    make_space(&s, p);
    kb_encode *e = NULL;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_encode_new(&e, &s, &err), err);
    if (e == NULL) {
        return;
    }
    double mean[2] = {0, 0};
    size_t n_model = 0;
    for (int use = 0; use < 2; use++) {
        kb_bohb_sampler bs;
        kb_bohb_sampler_init(&bs, e, 0);
        bs.max_budget_index = 0;
        kb_asha_opts o = KB_ASHA_OPTS_INIT;
        o.max_resource = 27;
        o.max_configs = 120;
        o.model_based = use;
        o.seed = 8;
        kb_asha *a = NULL;
        CHECK_OK(kb_asha_new(&a, 2, use ? kb_bohb_sample : NULL, &bs, &o, &err), err);
        for (;;) {
            kb_hyperband_job j;
            CHECK_OK(kb_asha_get_job(&j, a, &err), err);
            if (j.status != KB_HYPERBAND_JOB_RUN) {
                break;
            }
            const double *u = kb_asha_trial_config(a, j.trial);
            if (j.rung == 0 && j.trial >= 60) {
                mean[use] += quality(u) / 60;
            }
            CHECK_OK(kb_asha_report(a, j.trial, quality(u) + 0.5 / j.resource, &err), err);
        }
        if (use) {
            n_model = bs.n_model;
        }
        kb_asha_free(a);
    }
    CHECK(n_model > 0);
    CHECK(mean[1] < mean[0]);
    kb_encode_free(e);
}

int main(void)
{
    test_bohb_proposals_beat_random_and_respect_direction();
    test_bohb_sampler_drives_asha();
    return check_exit();
}
