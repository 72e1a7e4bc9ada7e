/* Tests of the hedges of kb's default warm start (engine/transfer kb_transfer_spread, engine/bo
 * prior_spread and cold_every). */
#include <math.h>
#include <string.h>

#include "check.h"
#include "engine/bo.h"

#define NT 3
#define NP 25

static kb_space_param xparam = {.name = "x", .type = KB_SPACE_PARAM_FLOAT, .low = 0, .high = 1};
static kb_space space1 = {.name = "one", .params = &xparam, .n_params = 1};

static double grid[NP], ys[NT][NP];

static double target_f(double x) { return (x - 0.3) * (x - 0.3); }

static void test_transfer_spread_is_the_weighted_variance(void)
{
    /* values 1, 3, 5 at stride 2, weights 1, 1, 2: mean 3.5, spread (6.25 + 0.25 + 4.5) / 4 */
    double mu[6] = {1, -9, 3, -9, 5, -9}, w[3] = {1, 1, 2};
    CHECK(kb_transfer_spread(mu, 2, w, 3) == 2.75);
    double w1[3] = {0, 4, 0}, w0[3] = {0, 0, 0};
    CHECK(kb_transfer_spread(mu, 2, w1, 3) == 0.0); /* one task: no spread */
    CHECK(kb_transfer_spread(mu, 2, w0, 3) == 0.0);
    CHECK(kb_transfer_spread(mu, 1, w, 0) == 0.0);
}

/* One suggestion on a pool after n observations of target_f at pool rows 3k mod NP. */
static double suggest(const kb_encode *e, const kb_transfer *tr, kb_encode_pool *pool,
                      kb_bo_warm warm, double spread, size_t cold_every, size_t n)
{
    double u_obs[16], y[16], u = -1.0;
    unsigned char *used = (unsigned char *)pool->used;
    memset(used, 0, NP);
    for (size_t k = 0; k < n; k++) {
        size_t r = 3 * k % NP;
        u_obs[k] = grid[r];
        y[k] = target_f(grid[r]);
        used[r] = 1;
    }
    kb_bo_opts o = KB_BO_OPTS_INIT;
    o.warm = warm;
    o.seed = 5;
    o.prior_spread = spread;
    o.cold_every = cold_every;
    o.rgpe_samples = 50;
    o.auto_design = 0; /* the model from the first trial (no portfolio point in the way) */
    kb_bo_problem pr = {e, u_obs, 16, n, y, NULL, 0, 0, pool, tr};
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_bo_suggest(&u, NULL, &pr, &o, &err), err);
    return u;
}

static void test_bo_hedges(void)
{
    kb_encode *e = NULL;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_encode_new(&e, &space1, &err), err);
    kb_transfer_task tasks[NT];
    for (size_t i = 0; i < NP; i++) {
        grid[i] = (double)i / (NP - 1);
    }
    for (size_t t = 0; t < NT; t++) {
        for (size_t i = 0; i < NP; i++) {
            double c = t == 2 ? 0.9 : 0.25 + 0.05 * (double)t;
            ys[t][i] = (grid[i] - c) * (grid[i] - c);
        }
        tasks[t] = (kb_transfer_task){grid, NP, NP, ys[t], 1.0};
    }
    kb_transfer *tr = NULL;
    unsigned char used[NP];
    kb_encode_pool pool = {grid, NP, NP, used};
    CHECK_OK(kb_transfer_new(&tr, e, tasks, NT, NULL, &err), err);
    CHECK_OK(kb_transfer_cache_pool(tr, &pool, &err), err);
    /* cold_every = 2: after 5 results (5 mod 2 = 1) the trial is the target's own GP's, the
       same as warm NONE's; after 4 it is not a cold trial, so the same as without cold_every */
    double cold = suggest(e, tr, &pool, KB_BO_WARM_NONE, 0.0, 0, 5);
    CHECK(suggest(e, tr, &pool, KB_BO_WARM_AUTO, 0.0, 2, 5) == cold);
    CHECK(suggest(e, tr, &pool, KB_BO_WARM_AUTO, 0.0, 2, 4) ==
          suggest(e, tr, &pool, KB_BO_WARM_AUTO, 0.0, 0, 4));
    /* one neighbour with weight: no spread, so prior_spread changes nothing */
    double w_one[NT] = {0, 1, 0};
    kb_transfer_set_weights(tr, w_one);
    for (size_t n = 2; n <= 6; n++) {
        CHECK(suggest(e, tr, &pool, KB_BO_WARM_AUTO, 1.0, 0, n) ==
              suggest(e, tr, &pool, KB_BO_WARM_AUTO, 0.0, 0, n));
    }
    /* same inputs and seed, same answer */
    double w_all[NT] = {1, 1, 1};
    kb_transfer_set_weights(tr, w_all);
    CHECK(suggest(e, tr, &pool, KB_BO_WARM_AUTO, 1.0, 4, 6) ==
          suggest(e, tr, &pool, KB_BO_WARM_AUTO, 1.0, 4, 6));
    kb_transfer_free(tr);
    kb_encode_free(e);
}

int main(void)
{
    test_transfer_spread_is_the_weighted_variance();
    test_bo_hedges();
    return check_exit();
}
