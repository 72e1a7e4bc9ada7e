/* Tests of engine/transfer and the suggest entry point engine/bo. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/bo.h"

#define NT 4
#define NP 30

static kb_space_param xparam = {.name = "x", .type = KB_SPACE_PARAM_FLOAT, .low = 0, .high = 1};
static kb_space space1 = {.name = "one", .params = &xparam, .n_params = 1};

static double target_f(double x) { return (x - 0.2) * (x - 0.2); }

/* tasks 0..2 mislead (optimum at 0.9), task 3 agrees with the target up to scale */
static double task_f(size_t t, double x)
{
    return t < 3 ? (x - 0.9) * (x - 0.9) + 0.1 * (double)t : 5.0 * (x - 0.22) * (x - 0.22) + 1.0;
}

static double grid[NP], ys[NT][NP];

static kb_transfer *make_transfer(const kb_encode *e, const double *w)
{
    kb_transfer_task tasks[NT];
    for (size_t i = 0; i < NP; i++) {
        grid[i] = (double)i / (NP - 1);
    }
    for (size_t t = 0; t < NT; t++) {
        for (size_t i = 0; i < NP; i++) {
            ys[t][i] = task_f(t, grid[i]);
        }
        tasks[t] = (kb_transfer_task){grid, NP, NP, ys[t], w[t]};
    }
    kb_transfer *tr = NULL;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_transfer_new(&tr, e, tasks, NT, NULL, &err), err);
    return tr;
}

static void rgpe_weights(double *w, kb_transfer *tr, const kb_encode *e, size_t n)
{
    double u[NP], y[NP], x[NP];
    for (size_t i = 0; i < n; i++) {
        u[i] = (double)(i * 7 % 13) / 12.0;
        y[i] = target_f(u[i]);
    }
    kb_encode_features_matrix(x, n, e, u, n, n);
    kb_gp *gp = NULL;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_gp_fit(&gp, x, n, n, 1, y, NULL, NULL, &err), err);
    double bm[NP * NT], bv[NP * NT], lm[NP], lv[NP];
    CHECK_OK(kb_transfer_predict(bm, bv, tr, u, n, NULL, n, &err), err);
    CHECK_OK(kb_gp_loo(lm, lv, gp, &err), err);
    kb_rng rng;
    kb_rng_seed(&rng, 1);
    CHECK_OK(kb_transfer_rgpe_weights(w, tr, bm, bv, lm, lv, y, n, 500, &rng, &err), err);
    double s = 0.0;
    for (size_t i = 0; i <= NT; i++) {
        s += w[i];
    }
    CHECK_NEAR(s, 1.0, 1e-12, 1e-12);
    kb_gp_free(gp);
}

static void test_transfer_rgpe_weights_move_away_from_misleading_tasks(void)
{
    kb_encode *e = NULL;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_encode_new(&e, &space1, &err), err);
    double w_all[NT] = {1, 1, 1, 1};
    kb_transfer *tr = make_transfer(e, w_all);
    double w[NT + 1];
    rgpe_weights(w, tr, e, 10);
    CHECK(w[0] + w[1] + w[2] < 0.05);
    CHECK(w[3] + w[NT] > 0.95);
    /* only misleading neighbours: the target's own model takes over */
    double w_bad[NT] = {1, 1, 1, 0};
    kb_transfer_set_weights(tr, w_bad);
    rgpe_weights(w, tr, e, 10);
    CHECK(w[NT] > 0.95);
    rgpe_weights(w, tr, e, 2);
    CHECK(w[NT] < 0.9); /* with one pair, neighbours still share the weight */
    kb_transfer_free(tr);
    kb_encode_free(e);
}

static void test_transfer_initial_design_and_priors(void)
{
    kb_encode *e = NULL;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_encode_new(&e, &space1, &err), err);
    double w[NT] = {0.5, 0, 0.2, 3};
    kb_transfer *tr = make_transfer(e, w);
    double u[4];
    size_t n = 0;
    CHECK_OK(kb_transfer_initial_design(u, 4, &n, tr, 4, 0, NULL, &err), err);
    CHECK(n == 2); /* tasks 0 and 2 share their best configuration, task 1 is unused */
    CHECK(u[0] == grid[6] && u[1] == grid[26]);
    unsigned char used[NP] = {0};
    kb_encode_pool pool = {grid, NP, NP, used};
    CHECK_CODE(kb_transfer_initial_design(u, 4, &n, tr, 4, 1, &pool, &err), KB_EINVAL);
    CHECK_OK(kb_transfer_cache_pool(tr, &pool, &err), err);
    CHECK_OK(kb_transfer_initial_design(u, 4, &n, tr, 2, 1, &pool, &err), err);
    /* the weighted sum of regrets puts the first pick between the two optima */
    CHECK(n == 2 && u[0] == grid[9] && u[1] == grid[26]);
    /* a copy of the pool struct (other used marks, same rows) still uses the cache */
    kb_encode_pool copy = {grid, NP, NP, NULL};
    u[0] = u[1] = -1.0;
    CHECK_OK(kb_transfer_initial_design(u, 4, &n, tr, 2, 1, &copy, &err), err);
    CHECK(n == 2 && u[0] == grid[9] && u[1] == grid[26]);
    kb_gp_prior pri[3];
    double th[3];
    kb_transfer_hyper_priors(pri, th, tr);
    double m = 0.0;
    for (size_t t = 0; t < NT; t++) {
        m += w[t] * kb_gp_theta(kb_transfer_gp(tr, t))[0] / 3.7;
    }
    CHECK(pri[0].kind == KB_GP_PRIOR_LOGNORMAL && pri[0].b >= 0.5);
    CHECK_NEAR(th[0], m, 1e-12, 1e-12);
    kb_transfer_free(tr);
    kb_encode_free(e);
}

/* Runs n steps of kb_bo_suggest on target_f; returns the best y. */
static double search(const kb_encode *e, const kb_transfer *tr, kb_bo_warm warm,
                     kb_bo_method method, size_t n, double *u_hist, kb_bo_phase *phases)
{
    double y[64], best = INFINITY;
    kb_error err = KB_ERROR_INIT;
    for (size_t k = 0; k < n; k++) {
        kb_bo_opts o = KB_BO_OPTS_INIT;
        o.warm = warm;
        o.method = method;
        o.seed = 77;
        o.acq.n_candidates = 200;
        kb_bo_problem pr = {e, u_hist, 64, k, y, NULL, 0, 0, NULL, tr};
        kb_bo_info info;
        double u;
        CHECK_OK(kb_bo_suggest(&u, &info, &pr, &o, &err), err);
        u_hist[k] = u;
        y[k] = target_f(u);
        if (phases != NULL) {
            phases[k] = info.phase;
        }
        best = fmin(best, y[k]);
    }
    return best;
}

static void test_bo_suggest_phases_and_robustness(void)
{
    kb_encode *e = NULL;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_encode_new(&e, &space1, &err), err);
    double w_bad[NT] = {1, 1, 1, 0};
    kb_transfer *tr = make_transfer(e, w_bad);
    double ua[64], ub[64], uc[64];
    kb_bo_phase pa[64], pb[64];
    search(e, NULL, KB_BO_WARM_NONE, KB_BO_METHOD_GP, 5, ua, pa);
    search(e, NULL, KB_BO_WARM_NONE, KB_BO_METHOD_TPE, 5, ub, pb);
    for (int k = 0; k < 3; k++) {
        CHECK(pa[k] == KB_BO_PHASE_COLD_INIT && ua[k] == ub[k]); /* shared initial design */
    }
    CHECK(pa[3] == KB_BO_PHASE_MODEL);
    /* AUTO with neighbours that all mislead still finds the target's optimum */
    double best = search(e, tr, KB_BO_WARM_AUTO, KB_BO_METHOD_GP, 15, uc, pa);
    CHECK(best < 1e-3);
    /* auto: its short portfolio (without a pool: the nearest tasks' best; one distinct
       configuration here), then the model */
    CHECK(pa[0] == KB_BO_PHASE_WARM_INIT && pa[1] == KB_BO_PHASE_MODEL &&
          pa[14] == KB_BO_PHASE_MODEL);
    double again = search(e, tr, KB_BO_WARM_AUTO, KB_BO_METHOD_GP, 15, ub, NULL);
    CHECK(again == best && memcmp(ub, uc, 15 * sizeof(double)) == 0);
    CHECK(search(e, tr, KB_BO_WARM_NEAREST, KB_BO_METHOD_GP, 1, ub, pb) >= 0 &&
          pb[0] == KB_BO_PHASE_WARM_INIT && ub[0] == grid[26]);
    /* a pending trial changes the next proposal (kriging believer) */
    double y[8];
    for (int k = 0; k < 8; k++) {
        y[k] = target_f(ua[k % 5] * 0.9 + 0.01 * k);
        uc[k] = ua[k % 5] * 0.9 + 0.01 * k;
    }
    kb_bo_opts o = KB_BO_OPTS_INIT;
    o.warm = KB_BO_WARM_NONE;
    kb_bo_problem pr = {e, uc, 8, 8, y, NULL, 0, 0, NULL, NULL};
    double u1, u2;
    CHECK_OK(kb_bo_suggest(&u1, NULL, &pr, &o, &err), err);
    pr.u_pending = &u1;
    pr.ld_pending = 1;
    pr.n_pending = 1;
    CHECK_OK(kb_bo_suggest(&u2, NULL, &pr, &o, &err), err);
    CHECK(fabs(u1 - u2) > 1e-3);
    /* a failed (NaN) trial is skipped, a used-up pool is an error */
    y[2] = NAN;
    pr.n_pending = 0;
    CHECK_OK(kb_bo_suggest(&u2, NULL, &pr, &o, &err), err);
    unsigned char used[NP];
    memset(used, 1, sizeof used);
    kb_encode_pool pool = {grid, NP, NP, used};
    pr.pool = &pool;
    CHECK_CODE(kb_bo_suggest(&u2, NULL, &pr, &o, &err), KB_ENOTFOUND);
    kb_transfer_free(tr);
    kb_encode_free(e);
}

int main(void)
{
    test_transfer_rgpe_weights_move_away_from_misleading_tasks();
    test_transfer_initial_design_and_priors();
    test_bo_suggest_phases_and_robustness();
    return check_exit();
}
