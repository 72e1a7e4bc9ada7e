/* Tests of kb_bo_suggest_design (engine/bo): the caller's warm design, e.g. kb recommend's
 * list, replaces the transfer's own portfolio for the first auto_design trials. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "engine/bo.h"

#define NT 3
#define NP 25

static kb_space_param xparam = {.name = "x", .type = KB_SPACE_PARAM_FLOAT, .low = 0, .high = 1};
static kb_space space1 = {.name = "one", .params = &xparam, .n_params = 1};

static double grid[NP], ys[NT][NP];

static double target_f(double x) { return (x - 0.1) * (x - 0.1); }

typedef struct setup {
    kb_encode *e;
    kb_transfer *tr;
    unsigned char used[NP];
    kb_encode_pool pool;
} setup;

/* Neighbours like the target with their optimum at `centre` (the target's is 0.1). */
static void setup_init(setup *s, double centre)
{
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_encode_new(&s->e, &space1, &err), err);
    kb_transfer_task tasks[NT];
    for (size_t i = 0; i < NP; i++) {
        grid[i] = (double)i / (NP - 1);
    }
    for (size_t t = 0; t < NT; t++) {
        for (size_t i = 0; i < NP; i++) {
            double c = centre + 0.02 * (double)t;
            ys[t][i] = (grid[i] - c) * (grid[i] - c);
        }
        tasks[t] = (kb_transfer_task){grid, NP, NP, ys[t], 1.0};
    }
    s->pool = (kb_encode_pool){grid, NP, NP, s->used};
    s->tr = NULL;
    CHECK_OK(kb_transfer_new(&s->tr, s->e, tasks, NT, NULL, &err), err);
    CHECK_OK(kb_transfer_cache_pool(s->tr, &s->pool, &err), err);
}

static void setup_release(setup *s)
{
    kb_transfer_free(s->tr);
    kb_encode_free(s->e);
}

/* One suggestion after observing target_f at the pool rows obs[0..n). */
static double suggest(setup *s, const size_t *obs, size_t n, const double *design,
                      size_t n_design, const kb_bo_opts *o, kb_bo_info *info)
{
    double u_obs[NP], y[NP], u = -1.0;
    memset(s->used, 0, NP);
    for (size_t k = 0; k < n; k++) {
        u_obs[k] = grid[obs[k]];
        y[k] = target_f(grid[obs[k]]);
        s->used[obs[k]] = 1;
    }
    kb_bo_problem pr = {s->e, u_obs, NP, n, y, NULL, 0, 0, &s->pool, s->tr};
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_bo_suggest_design(&u, info, &pr, design, n_design, n_design, o, &err), err);
    return u;
}

static void test_bo_design_comes_first_for_auto_design_trials(void)
{
    setup s;
    setup_init(&s, 0.5);
    double design[2] = {grid[7], grid[20]};
    size_t obs[2] = {7, 20};
    kb_bo_opts o = KB_BO_OPTS_INIT;
    o.seed = 3;
    o.rgpe_samples = 20;
    o.auto_design = 2;
    kb_bo_info info;
    CHECK(suggest(&s, obs, 0, design, 2, &o, &info) == grid[7]);
    CHECK(info.phase == KB_BO_PHASE_WARM_INIT && info.pool_index == 7);
    CHECK(suggest(&s, obs, 1, design, 2, &o, &info) == grid[20]);
    CHECK(info.phase == KB_BO_PHASE_WARM_INIT && info.pool_index == 20);
    suggest(&s, obs, 2, design, 2, &o, &info);
    CHECK(info.phase == KB_BO_PHASE_MODEL);
    /* auto_design 1: one design point, then the model */
    o.auto_design = 1;
    suggest(&s, obs, 1, design, 2, &o, &info);
    CHECK(info.phase == KB_BO_PHASE_MODEL);
    /* no design given: the transfer's own portfolio, as kb_bo_suggest */
    double u1 = suggest(&s, obs, 0, NULL, 0, &o, &info), u2 = -1.0;
    kb_bo_problem pr = {s.e, NULL, 0, 0, NULL, NULL, 0, 0, &s.pool, s.tr};
    kb_error err = KB_ERROR_INIT;
    memset(s.used, 0, NP);
    CHECK_OK(kb_bo_suggest(&u2, NULL, &pr, &o, &err), err);
    CHECK(u1 == u2 && info.phase == KB_BO_PHASE_WARM_INIT);
    /* a design without its rows is a bad argument */
    CHECK(kb_bo_suggest_design(&u2, NULL, &pr, NULL, 1, 1, &o, &err) == KB_EINVAL);
    CHECK(kb_bo_suggest_design(&u2, NULL, &pr, design, 1, 2, &o, &err) == KB_EINVAL);
    setup_release(&s);
}

int main(void)
{
    test_bo_design_comes_first_for_auto_design_trials();
    return check_exit();
}
