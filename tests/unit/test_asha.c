/* Tests of engine/asha: the promotion rule under interleaved workers, the final rung. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/asha.h"
#include "engine/core/alloc.h"

#define MAX_TRIALS 512
#define MAX_WORKERS 8

/* deterministic simulated loss: quality from u[0], better with more resource */
static double sim_loss(const double *u, double r)
{
    return u[0] + 0.5 / r;
}

/* The test's own mirror of the completed results per rung, to check each decision. */
typedef struct mirror {
    size_t n[8];
    size_t trial[8][MAX_TRIALS];
    double key[8][MAX_TRIALS];
    unsigned char promoted[8][MAX_TRIALS];
} mirror;

/* rank of `trial` among rung k's completed results (0 = best), SIZE_MAX if absent */
static size_t mirror_rank(const mirror *m, size_t k, size_t trial)
{
    size_t pos = SIZE_MAX;
    for (size_t j = 0; j < m->n[k]; j++) {
        if (m->trial[k][j] == trial) {
            pos = j;
        }
    }
    if (pos == SIZE_MAX) {
        return SIZE_MAX;
    }
    size_t rank = 0;
    for (size_t j = 0; j < m->n[k]; j++) {
        if (m->key[k][j] < m->key[k][pos] ||
            (m->key[k][j] == m->key[k][pos] && m->trial[k][j] < trial)) {
            rank++;
        }
    }
    return rank;
}

/* is any trial of rung k in its top floor(n/eta) and not yet promoted? */
static int mirror_has_promotable(const mirror *m, size_t k, double eta)
{
    size_t top = (size_t)floor((double)m->n[k] / eta + 1e-9);
    for (size_t j = 0; j < m->n[k]; j++) {
        size_t t = m->trial[k][j];
        if (mirror_rank(m, k, t) < top && !m->promoted[k][t]) {
            return 1;
        }
    }
    return 0;
}

typedef struct worker {
    int busy;
    double finish;
    kb_hyperband_job job;
} worker;

/*
 * Event simulation: n_workers workers with different speeds; a job of resource r on worker
 * w takes r * (1 + 0.37 w) time units. Every job is checked against the mirror.
 */
static void simulate(size_t n_workers, int maximize, size_t max_configs, uint64_t seed)
{
    kb_error err = KB_ERROR_INIT;
    kb_asha_opts o = KB_ASHA_OPTS_INIT;
    o.min_resource = 1;
    o.max_resource = 27;
    o.eta = 3;
    o.max_configs = max_configs;
    o.maximize = maximize;
    o.seed = seed;
    kb_asha *a = NULL;
    CHECK_OK(kb_asha_new(&a, 2, NULL, NULL, &o, &err), err);
    if (a == NULL) {
        return;
    }
    CHECK(kb_asha_n_rungs(a) == 4);
    CHECK(kb_asha_rung_resource(a, 3) == 27);
    mirror *m = calloc(1, sizeof *m);
    CHECK(m != NULL);
    if (m == NULL) {
        kb_asha_free(a);
        return;
    }
    worker w[MAX_WORKERS];
    memset(w, 0, sizeof w);
    double now = 0;
    size_t violations = 0, n_promotions = 0, n_new = 0;
    int done = 0;
    for (;;) {
        /* hand jobs to idle workers */
        for (size_t i = 0; i < n_workers && !done; i++) {
            if (w[i].busy) {
                continue;
            }
            kb_hyperband_job j;
            CHECK_OK(kb_asha_get_job(&j, a, &err), err);
            if (j.status == KB_HYPERBAND_JOB_DONE) {
                done = 1;
                break;
            }
            if (j.status == KB_HYPERBAND_JOB_WAIT) {
                break;
            }
            if (j.rung > 0) {
                /* promotion rule: in the top 1/eta of COMPLETED results at rung k, once */
                size_t k = j.rung - 1;
                size_t top = (size_t)floor((double)m->n[k] / 3 + 1e-9);
                size_t rank = mirror_rank(m, k, j.trial);
                violations += !(rank < top) || m->promoted[k][j.trial];
                violations += j.resume_from != kb_asha_rung_resource(a, k);
                m->promoted[k][j.trial] = 1;
                n_promotions++;
            } else {
                /* a new configuration only when nothing is promotable */
                for (size_t k = 0; k + 1 < 4; k++) {
                    violations += mirror_has_promotable(m, k, 3);
                }
                n_new++;
                CHECK(j.trial < MAX_TRIALS);
            }
            w[i].busy = 1;
            w[i].job = j;
            w[i].finish = now + j.resource * (1 + 0.37 * (double)i);
        }
        /* complete the earliest job */
        size_t first = SIZE_MAX;
        for (size_t i = 0; i < n_workers; i++) {
            if (w[i].busy && (first == SIZE_MAX || w[i].finish < w[first].finish)) {
                first = i;
            }
        }
        if (first == SIZE_MAX) {
            break;
        }
        kb_hyperband_job *j = &w[first].job;
        now = w[first].finish;
        w[first].busy = 0;
        double f = sim_loss(kb_asha_trial_config(a, j->trial), j->resource);
        CHECK_OK(kb_asha_report(a, j->trial, maximize ? -f : f, &err), err);
        size_t k = j->rung;
        m->trial[k][m->n[k]] = j->trial;
        m->key[k][m->n[k]] = f;
        m->n[k]++;
    }
    CHECK(violations == 0);
    CHECK(n_new == max_configs);
    CHECK(n_promotions > 0);
    CHECK(kb_asha_n_pending(a) == 0);
    /* the final rung holds the best configuration sampled, and it is the best result */
    double best_u = 2;
    size_t best_t = SIZE_MAX;
    for (size_t t = 0; t < kb_asha_n_trials(a); t++) {
        if (kb_asha_trial_config(a, t)[0] < best_u) {
            best_u = kb_asha_trial_config(a, t)[0];
            best_t = t;
        }
    }
    size_t n_top = 0;
    const size_t *top = kb_asha_rung_trials(a, 3, &n_top);
    CHECK(n_top > 0 && top[0] == best_t);
    size_t bt = SIZE_MAX;
    double by = 0, br = 0;
    CHECK_OK(kb_asha_best(&bt, &by, &br, a, &err), err);
    CHECK(bt == best_t && br == 27);
    /* every rung is sorted best first */
    for (size_t k = 0; k < 4; k++) {
        size_t n = 0;
        const size_t *tr = kb_asha_rung_trials(a, k, &n);
        CHECK(n == m->n[k]);
        for (size_t q = 1; q < n; q++) {
            CHECK(sim_loss(kb_asha_trial_config(a, tr[q - 1]), 1) <=
                  sim_loss(kb_asha_trial_config(a, tr[q]), 1));
        }
    }
    free(m);
    kb_asha_free(a);
}

static void test_asha_promotion_rule_holds_with_interleaved_workers(void)
{
    simulate(1, 0, 60, 3);
    simulate(4, 0, 150, 5);
    simulate(7, 1, 200, 11);
}

static void test_asha_rejects_bad_options_and_unknown_trials(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_asha *a = NULL;
    kb_asha_opts o = KB_ASHA_OPTS_INIT;
    o.eta = 1;
    CHECK_CODE(kb_asha_new(&a, 2, NULL, NULL, &o, &err), KB_EINVAL);
    o = (kb_asha_opts)KB_ASHA_OPTS_INIT;
    o.min_early_stopping_rate = 5; /* R / r = 81: s_max = 4 */
    CHECK_CODE(kb_asha_new(&a, 2, NULL, NULL, &o, &err), KB_EINVAL);
    o.min_early_stopping_rate = 2;
    CHECK_OK(kb_asha_new(&a, 2, NULL, NULL, &o, &err), err);
    CHECK(kb_asha_n_rungs(a) == 3 && kb_asha_rung_resource(a, 0) == 9);
    kb_hyperband_job j;
    CHECK_OK(kb_asha_get_job(&j, a, &err), err);
    CHECK(j.status == KB_HYPERBAND_JOB_RUN && j.rung == 0 && j.resource == 9);
    CHECK_CODE(kb_asha_report(a, j.trial + 1, 0.5, &err), KB_EINVAL);
    CHECK_CODE(kb_asha_best(NULL, NULL, NULL, a, &err), KB_ENOTFOUND);
    CHECK_OK(kb_asha_report(a, j.trial, NAN, &err), err);
    CHECK_CODE(kb_asha_report(a, j.trial, 0.5, &err), KB_EINVAL);
    CHECK_CODE(kb_asha_best(NULL, NULL, NULL, a, &err), KB_ENOTFOUND);
    /* two more failures: rung 0 has 3 results, its top third is a failure, no promotion */
    for (int k = 0; k < 2; k++) {
        CHECK_OK(kb_asha_get_job(&j, a, &err), err);
        CHECK(j.rung == 0);
        CHECK_OK(kb_asha_report(a, j.trial, INFINITY, &err), err);
    }
    CHECK_OK(kb_asha_get_job(&j, a, &err), err);
    CHECK(j.rung == 0 && j.trial == 3);
    kb_asha_free(a);
    kb_asha_free(NULL);
}

/* 300 configurations with one worker, model-based; the first error code. */
static int run_all(void)
{
    kb_asha *a = NULL;
    kb_asha_opts o = KB_ASHA_OPTS_INIT;
    o.max_configs = 300;
    o.model_based = 1;
    int rc = kb_asha_new(&a, 2, NULL, NULL, &o, NULL);
    while (rc == KB_OK) {
        kb_hyperband_job j;
        rc = kb_asha_get_job(&j, a, NULL);
        if (rc != KB_OK || j.status != KB_HYPERBAND_JOB_RUN) {
            break;
        }
        rc = kb_asha_report(a, j.trial, sim_loss(kb_asha_trial_config(a, j.trial), j.resource),
                            NULL);
    }
    kb_asha_free(a);
    return rc;
}

static void test_asha_each_failed_allocation_is_enomem_without_leaks(void)
{
    CHECK_ENOMEM_SWEEP(run_all, 10000);
}

int main(void)
{
    test_asha_promotion_rule_holds_with_interleaved_workers();
    test_asha_rejects_bad_options_and_unknown_trials();
    test_asha_each_failed_allocation_is_enomem_without_leaks();
    return check_exit();
}
