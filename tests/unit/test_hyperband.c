/* Tests of engine/hyperband: the paper's plan, successive halving, promotions, BOHB mode. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "engine/hyperband.h"

static void test_hyperband_plan_reproduces_paper_table_r81_eta3(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_hyperband_plan p;
    CHECK_OK(kb_hyperband_plan_make(&p, 81, 3, &err), err);
    /* Li et al. 2018, Table 1: (n_i, r_i) per bracket s = 4..0 */
    static const size_t want_n[5][5] = {
        {81, 27, 9, 3, 1}, {34, 11, 3, 1, 0}, {15, 5, 1, 0, 0}, {8, 2, 0, 0, 0}, {5, 0, 0, 0, 0}};
    static const double want_r[5][5] = {
        {1, 3, 9, 27, 81}, {3, 9, 27, 81, 0}, {9, 27, 81, 0, 0}, {27, 81, 0, 0, 0}, {81, 0, 0, 0, 0}};
    CHECK(p.s_max == 4);
    CHECK(p.budget == 405);
    CHECK(p.n_brackets == 5);
    for (size_t b = 0; b < 5; b++) {
        CHECK(p.brackets[b].s == 4 - b);
        CHECK(p.brackets[b].n_rungs == 5 - b);
        for (size_t i = 0; i < p.brackets[b].n_rungs; i++) {
            CHECK(p.brackets[b].rungs[i].n_configs == want_n[b][i]);
            CHECK_NEAR(p.brackets[b].rungs[i].resource, want_r[b][i], 1e-12, 0);
        }
    }
    CHECK(kb_hyperband_plan_n_configs(&p) == 81 + 34 + 15 + 8 + 5);
    CHECK(kb_hyperband_plan_n_jobs(&p) == 121 + 49 + 21 + 10 + 5);
    /* R = 27, eta = 3: s_max = 3 exactly (log rounding must not lose it) */
    CHECK_OK(kb_hyperband_plan_make(&p, 27, 3, &err), err);
    CHECK(p.s_max == 3);
    CHECK(p.brackets[0].rungs[0].n_configs == 27);
    CHECK_OK(kb_hyperband_plan_make(&p, 1, 3, &err), err);
    CHECK(p.n_brackets == 1 && p.brackets[0].rungs[0].n_configs == 1);
    CHECK_CODE(kb_hyperband_plan_make(&p, 0.5, 3, &err), KB_EINVAL);
    CHECK_CODE(kb_hyperband_plan_make(&p, 81, 1, &err), KB_EINVAL);
    CHECK_CODE(kb_hyperband_plan_make(&p, NAN, 3, &err), KB_EINVAL);
    CHECK_CODE(kb_hyperband_plan_make(&p, 1e300, 1e10, &err), KB_EINVAL); /* 1e300 configs */
    CHECK_CODE(kb_hyperband_plan_make(&p, 81, 1 + 1e-9, &err), KB_EINVAL); /* s_max huge */
}

static void test_hyperband_plan_sh_halves_until_r_max(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_hyperband_plan p;
    CHECK_OK(kb_hyperband_plan_sh(&p, 27, 1, 27, 3, &err), err);
    CHECK(p.n_brackets == 1 && p.brackets[0].n_rungs == 4);
    static const size_t want_n[4] = {27, 9, 3, 1};
    for (size_t i = 0; i < 4; i++) {
        CHECK(p.brackets[0].rungs[i].n_configs == want_n[i]);
        CHECK_NEAR(p.brackets[0].rungs[i].resource, pow(3, (double)i), 1e-12, 0);
    }
    /* n runs out before R: 10 configs, eta 2 -> 10, 5, 2, 1 at 1, 2, 4, 8 */
    CHECK_OK(kb_hyperband_plan_sh(&p, 10, 1, 100, 2, &err), err);
    CHECK(p.brackets[0].n_rungs == 4 && p.brackets[0].rungs[3].resource == 8);
    CHECK_CODE(kb_hyperband_plan_sh(&p, 0, 1, 27, 3, &err), KB_EINVAL);
    CHECK_CODE(kb_hyperband_plan_sh(&p, 9, 30, 27, 3, &err), KB_EINVAL);
}

/* Simulated objective (a loss): quality from u[0], noise-free, improving with resource. */
static double loss_of(const double *u, double r)
{
    return u[0] + 0.3 * u[1] + 1.0 / r;
}

#define MAX_RUNG 128

typedef struct rung_log {
    size_t trial[MAX_RUNG];
    double y[MAX_RUNG];
    size_t n;
} rung_log;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/*
 * Run the whole schedule: issue up to `batch` jobs at a time (workers), report them in
 * reverse order, and check each promotion against the rung's results sorted independently.
 */
static void run_schedule(const kb_hyperband_plan *p, int maximize, size_t batch, uint64_t seed,
                         double *first_u_out)
{
    kb_error err = KB_ERROR_INIT;
    kb_hyperband *hb = NULL;
    kb_hyperband_opts o = KB_HYPERBAND_OPTS_INIT;
    o.maximize = maximize;
    o.seed = seed;
    CHECK_OK(kb_hyperband_new(&hb, p, 2, NULL, NULL, &o, &err), err);
    if (hb == NULL) {
        return;
    }
    rung_log log;
    memset(&log, 0, sizeof log);
    size_t n_jobs = 0, n_waits = 0, cur_b = 0, cur_i = 0;
    double last_res[1024] = {0};
    for (;;) {
        kb_hyperband_job jobs[16];
        size_t n = 0;
        kb_hyperband_job j;
        while (n < batch) {
            CHECK_OK(kb_hyperband_get_job(&j, hb, &err), err);
            if (j.status != KB_HYPERBAND_JOB_RUN) {
                break;
            }
            jobs[n++] = j;
        }
        if (n == 0) {
            CHECK(j.status == KB_HYPERBAND_JOB_DONE);
            break;
        }
        if (n < batch && j.status == KB_HYPERBAND_JOB_WAIT) {
            n_waits++;
        }
        for (size_t k = n; k-- > 0;) {
            kb_hyperband_job *jb = &jobs[k];
            n_jobs++;
            if (jb->bracket != cur_b || jb->rung != cur_i) {
                memset(&log, 0, sizeof log);
                cur_b = jb->bracket;
                cur_i = jb->rung;
            }
            const kb_hyperband_rung *rg = &p->brackets[jb->bracket].rungs[jb->rung];
            CHECK(jb->resource == rg->resource);
            CHECK(jb->trial < 1024 && jb->resume_from == last_res[jb->trial]);
            const double *u = kb_hyperband_trial_config(hb, jb->trial);
            double f = loss_of(u, jb->resource);
            double y = maximize ? -f : f;
            if (first_u_out && jb->trial == 0) {
                *first_u_out = u[0];
            }
            last_res[jb->trial] = jb->resource;
            log.trial[log.n] = jb->trial;
            log.y[log.n] = f;
            log.n++;
            CHECK_OK(kb_hyperband_report(hb, jb->trial, y, &err), err);
            size_t n_prom = 0;
            const size_t *prom = kb_hyperband_promotions(hb, &n_prom);
            if (log.n == rg->n_configs) {
                const kb_hyperband_bracket *br = &p->brackets[jb->bracket];
                size_t want = jb->rung + 1 < br->n_rungs ? br->rungs[jb->rung + 1].n_configs : 0;
                CHECK(n_prom == want);
                /* the promoted are exactly the `want` smallest losses, best first */
                double sorted[MAX_RUNG];
                memcpy(sorted, log.y, log.n * sizeof *sorted);
                qsort(sorted, log.n, sizeof *sorted, cmp_double);
                for (size_t q = 0; q < n_prom; q++) {
                    size_t t = prom[q];
                    CHECK_NEAR(loss_of(kb_hyperband_trial_config(hb, t), jb->resource), sorted[q],
                               0, 0);
                }
            } else {
                CHECK(n_prom == 0);
            }
        }
    }
    CHECK(n_jobs == kb_hyperband_plan_n_jobs(p));
    CHECK(kb_hyperband_n_trials(hb) == kb_hyperband_plan_n_configs(p));
    if (batch > 1) {
        CHECK(n_waits > 0);
    }
    size_t best = 0;
    double best_y = 0, best_r = 0;
    CHECK_OK(kb_hyperband_best(&best, &best_y, &best_r, hb, &err), err);
    CHECK(best_r == p->max_resource);
    kb_hyperband_free(hb);
}

static void test_hyperband_promotions_keep_the_best_by_direction(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_hyperband_plan p;
    CHECK_OK(kb_hyperband_plan_make(&p, 27, 3, &err), err);
    double u_min = -1, u_max = -2, u_min2 = -3;
    run_schedule(&p, 0, 1, 7, &u_min);
    run_schedule(&p, 1, 5, 7, &u_max);
    run_schedule(&p, 0, 16, 7, &u_min2);
    CHECK(u_min == u_max && u_min == u_min2); /* same seed, same configurations */
    CHECK_OK(kb_hyperband_plan_sh(&p, 20, 1, 16, 2, &err), err);
    run_schedule(&p, 0, 3, 1, NULL);
    run_schedule(&p, 1, 3, 1, NULL);
}

static void test_hyperband_failed_results_rank_last_and_report_checks_trial(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_hyperband_plan p;
    CHECK_OK(kb_hyperband_plan_sh(&p, 3, 1, 3, 3, &err), err);
    kb_hyperband *hb = NULL;
    CHECK_OK(kb_hyperband_new(&hb, &p, 1, NULL, NULL, NULL, &err), err);
    kb_hyperband_job j[3];
    for (size_t k = 0; k < 3; k++) {
        CHECK_OK(kb_hyperband_get_job(&j[k], hb, &err), err);
    }
    CHECK_CODE(kb_hyperband_report(hb, 99, 1.0, &err), KB_EINVAL);
    CHECK_OK(kb_hyperband_report(hb, j[0].trial, NAN, &err), err);
    CHECK_CODE(kb_hyperband_report(hb, j[0].trial, 1.0, &err), KB_EINVAL);
    CHECK_OK(kb_hyperband_report(hb, j[1].trial, 5.0, &err), err);
    CHECK_OK(kb_hyperband_report(hb, j[2].trial, 9.0, &err), err);
    size_t n = 0;
    const size_t *prom = kb_hyperband_promotions(hb, &n);
    CHECK(n == 1 && prom[0] == j[1].trial);
    size_t nb = 0;
    const kb_hyperband_budget_obs *bo = kb_hyperband_budgets(hb, &nb);
    CHECK(nb == 2 && bo[0].n == 2 && bo[1].n == 0); /* the NaN is not an observation */
    kb_hyperband_job k;
    CHECK_OK(kb_hyperband_get_job(&k, hb, &err), err);
    CHECK(k.trial == j[1].trial && k.resource == 3 && k.resume_from == 1);
    CHECK_OK(kb_hyperband_report(hb, k.trial, 4.0, &err), err);
    CHECK_OK(kb_hyperband_get_job(&k, hb, &err), err);
    CHECK(k.status == KB_HYPERBAND_JOB_DONE);
    kb_hyperband_free(hb);
    kb_hyperband_free(NULL);
}

/* BOHB-style sampler: checks what it is given, and samples near the best observation of
 * the model budget (a stand-in for TPE). */
typedef struct bohb_probe {
    size_t n_calls;
    size_t n_model;
    size_t reported; /* finite results reported so far, maintained by the test */
    int bad;
} bohb_probe;

static int bohb_sample(double *u_out, size_t dim, const kb_hyperband_budget_obs *budgets,
                       size_t n_budgets, kb_rng *rng, void *payload)
{
    bohb_probe *pr = payload;
    pr->n_calls++;
    size_t total = 0;
    for (size_t b = 0; b < n_budgets; b++) {
        total += budgets[b].n;
        if (b > 0 && !(budgets[b].resource > budgets[b - 1].resource)) {
            pr->bad = 1;
        }
    }
    if (budgets == NULL || total != pr->reported) {
        pr->bad = 1;
    }
    size_t b = kb_hyperband_bohb_budget(budgets, n_budgets, dim + 2);
    if (b == SIZE_MAX) {
        for (size_t k = 0; k < dim; k++) {
            u_out[k] = kb_rng_uniform(rng);
        }
        return 0;
    }
    pr->n_model++;
    const kb_hyperband_budget_obs *o = &budgets[b];
    size_t best = 0;
    for (size_t j = 1; j < o->n; j++) {
        if (o->y[j] < o->y[best]) {
            best = j;
        }
    }
    for (size_t k = 0; k < dim; k++) {
        double v = o->u[best + k * o->ld] + 0.05 * (kb_rng_uniform(rng) - 0.5);
        u_out[k] = fmin(1, fmax(0, v));
    }
    return 0;
}

static void test_hyperband_model_based_sampler_sees_observations_per_budget(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_hyperband_plan p;
    CHECK_OK(kb_hyperband_plan_make(&p, 9, 3, &err), err);
    kb_hyperband_opts o = KB_HYPERBAND_OPTS_INIT;
    o.model_based = 1;
    o.n_iterations = 2;
    bohb_probe pr = {0};
    kb_hyperband *hb = NULL;
    CHECK_OK(kb_hyperband_new(&hb, &p, 2, bohb_sample, &pr, &o, &err), err);
    kb_hyperband_job j;
    size_t n_jobs = 0;
    for (;;) {
        CHECK_OK(kb_hyperband_get_job(&j, hb, &err), err);
        if (j.status != KB_HYPERBAND_JOB_RUN) {
            break;
        }
        n_jobs++;
        CHECK_OK(kb_hyperband_report(hb, j.trial, loss_of(kb_hyperband_trial_config(hb, j.trial),
                                                          j.resource), &err), err);
        pr.reported++;
    }
    CHECK(j.status == KB_HYPERBAND_JOB_DONE);
    CHECK(n_jobs == 2 * kb_hyperband_plan_n_jobs(&p));
    CHECK(pr.n_calls == 2 * kb_hyperband_plan_n_configs(&p));
    CHECK(pr.n_model > 0);
    CHECK(!pr.bad);
    kb_hyperband_free(hb);
}

static int stop_sample(double *u_out, size_t dim, const kb_hyperband_budget_obs *budgets,
                       size_t n_budgets, kb_rng *rng, void *payload)
{
    (void)u_out, (void)dim, (void)budgets, (void)n_budgets, (void)rng, (void)payload;
    return KB_ECANCELED;
}

static void test_hyperband_sampler_error_stops_get_job(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_hyperband_plan p;
    CHECK_OK(kb_hyperband_plan_make(&p, 9, 3, &err), err);
    kb_hyperband *hb = NULL;
    CHECK_OK(kb_hyperband_new(&hb, &p, 2, stop_sample, NULL, NULL, &err), err);
    kb_hyperband_job j;
    CHECK_CODE(kb_hyperband_get_job(&j, hb, &err), KB_ECANCELED);
    CHECK(kb_hyperband_n_trials(hb) == 0);
    kb_hyperband_free(hb);
    CHECK_CODE(kb_hyperband_new(&hb, &p, 0, NULL, NULL, NULL, &err), KB_EINVAL);
    CHECK(hb == NULL);
}

/*
 * Resuming a study: a new scheduler that is handed the same jobs' results in the same order
 * continues exactly as the original (same trials, configurations, resources).
 */
static void test_hyperband_replaying_reports_resumes_the_schedule(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_hyperband_plan p;
    CHECK_OK(kb_hyperband_plan_make(&p, 27, 3, &err), err);
    kb_hyperband_opts o = KB_HYPERBAND_OPTS_INIT;
    o.seed = 4;
    kb_hyperband *a = NULL, *b = NULL;
    CHECK_OK(kb_hyperband_new(&a, &p, 2, NULL, NULL, &o, &err), err);
    CHECK_OK(kb_hyperband_new(&b, &p, 2, NULL, NULL, &o, &err), err);
    if (a == NULL || b == NULL) {
        kb_hyperband_free(a);
        kb_hyperband_free(b);
        return;
    }
    size_t n_jobs = kb_hyperband_plan_n_jobs(&p), differ = 0;
    static double ys[512];
    static size_t trials[512];
    for (size_t k = 0; k < n_jobs; k++) {
        kb_hyperband_job j, jb;
        CHECK_OK(kb_hyperband_get_job(&j, a, &err), err);
        ys[k] = loss_of(kb_hyperband_trial_config(a, j.trial), j.resource);
        trials[k] = j.trial;
        CHECK_OK(kb_hyperband_report(a, j.trial, ys[k], &err), err);
        if (k == n_jobs / 2) {
            /* "restart": replay everything so far into b, then continue in lockstep */
            for (size_t q = 0; q <= k; q++) {
                CHECK_OK(kb_hyperband_get_job(&jb, b, &err), err);
                differ += jb.trial != trials[q];
                CHECK_OK(kb_hyperband_report(b, jb.trial, ys[q], &err), err);
            }
        } else if (k > n_jobs / 2) {
            CHECK_OK(kb_hyperband_get_job(&jb, b, &err), err);
            differ += jb.trial != j.trial || jb.resource != j.resource ||
                      memcmp(kb_hyperband_trial_config(a, j.trial),
                             kb_hyperband_trial_config(b, jb.trial), 2 * sizeof(double)) != 0;
            CHECK_OK(kb_hyperband_report(b, jb.trial, ys[k], &err), err);
        }
    }
    CHECK(differ == 0);
    kb_hyperband_free(a);
    kb_hyperband_free(b);
}

/* A whole Hyperband pass (R = 9, eta = 3, BOHB mode); the first error code. */
static int run_all(void)
{
    kb_hyperband_plan p;
    kb_hyperband *hb = NULL;
    kb_hyperband_opts o = KB_HYPERBAND_OPTS_INIT;
    o.model_based = 1;
    int rc = kb_hyperband_plan_make(&p, 9, 3, NULL);
    rc = rc ? rc : kb_hyperband_new(&hb, &p, 3, NULL, NULL, &o, NULL);
    while (rc == KB_OK) {
        kb_hyperband_job j;
        rc = kb_hyperband_get_job(&j, hb, NULL);
        if (rc != KB_OK || j.status != KB_HYPERBAND_JOB_RUN) {
            break;
        }
        rc = kb_hyperband_report(hb, j.trial, loss_of(kb_hyperband_trial_config(hb, j.trial),
                                                      j.resource), NULL);
    }
    kb_hyperband_free(hb);
    return rc;
}

static void test_hyperband_each_failed_allocation_is_enomem_without_leaks(void)
{
    CHECK_ENOMEM_SWEEP(run_all, 10000);
}

int main(void)
{
    test_hyperband_plan_reproduces_paper_table_r81_eta3();
    test_hyperband_plan_sh_halves_until_r_max();
    test_hyperband_promotions_keep_the_best_by_direction();
    test_hyperband_failed_results_rank_last_and_report_checks_trial();
    test_hyperband_model_based_sampler_sees_observations_per_budget();
    test_hyperband_sampler_error_stops_get_job();
    test_hyperband_replaying_reports_resumes_the_schedule();
    test_hyperband_each_failed_allocation_is_enomem_without_leaks();
    return check_exit();
}
