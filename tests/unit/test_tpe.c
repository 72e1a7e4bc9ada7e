/* Tests of engine/tpe: determinism, concentration on a toy optimum, pools, conditions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/tpe.h"

static char *kinds[3] = {"a", "b", "c"};
static char *only_b[1] = {"b"};

/* x in [1e-3, 1e3] log, kind in {a, b, c}, z in [0, 1] active only for kind b */
static void make_space(kb_space *s, kb_space_param p[3])
{
    memset(p, 0, 3 * sizeof *p);
    p[0] = (kb_space_param){.name = "x", .type = KB_SPACE_PARAM_FLOAT, .low = 1e-3, .high = 1e3,
                            .log = 1};
    p[1] = (kb_space_param){.name = "kind", .type = KB_SPACE_PARAM_CATEGORICAL, .choices = kinds,
                            .n_choices = 3};
    p[2] = (kb_space_param){.name = "z", .type = KB_SPACE_PARAM_FLOAT, .low = 0, .high = 1,
                            .cond_parent = "kind", .cond_in = only_b, .n_cond_in = 1};
    *s = (kb_space){.name = "toy", .params = p, .n_params = 3};
}

/* optimum at u_x = 0.7, kind b, z = 0.2 */
static double toy(const double *u)
{
    double f = (u[0] - 0.7) * (u[0] - 0.7);
    if (floor(u[1] * 3) != 1) {
        return f + 0.5;
    }
    return f + (u[2] - 0.2) * (u[2] - 0.2);
}

/* Run n TPE (or random) steps; U is n x 3; returns the best value. */
static double run(const kb_encode *e, double *U, double *y, size_t n, uint64_t seed, int random)
{
    kb_rng rng;
    kb_rng_seed(&rng, seed);
    kb_error err = KB_ERROR_INIT;
    double best = INFINITY, u[3];
    for (size_t i = 0; i < n; i++) {
        if (random) {
            CHECK_OK(kb_tpe_suggest_random(u, NULL, e, NULL, &rng, &err), err);
        } else {
            CHECK_OK(kb_tpe_suggest(u, NULL, e, U, n, i, y, NULL, NULL, &rng, &err), err);
        }
        for (int j = 0; j < 3; j++) {
            U[i + j * n] = u[j];
        }
        CHECK(isnan(u[2]) == (floor(u[1] * 3) != 1));
        y[i] = toy(u);
        best = fmin(best, y[i]);
    }
    return best;
}

static void test_tpe_is_deterministic_and_concentrates_on_the_optimum(void)
{
    kb_space s;
    kb_space_param p[3];
    make_space(&s, p);
    kb_encode *e = NULL;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_encode_new(&e, &s, &err), err);
    size_t n = 80;
    double *u1 = malloc(n * 3 * sizeof(double)), *u2 = malloc(n * 3 * sizeof(double));
    double y1[80], y2[80];
    run(e, u1, y1, n, 42, 0);
    run(e, u2, y2, n, 42, 0);
    CHECK(memcmp(y1, y2, sizeof y1) == 0);
    /* over 5 seeds, the last 30 TPE suggestions are better than random ones on average */
    double tpe_tail = 0.0, rnd_tail = 0.0, tpe_best = 0.0;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        tpe_best += run(e, u1, y1, n, seed, 0) / 5;
        run(e, u2, y2, n, seed, 1);
        for (size_t i = n - 30; i < n; i++) {
            tpe_tail += y1[i] / 150;
            rnd_tail += y2[i] / 150;
        }
    }
    CHECK(tpe_tail < 0.5 * rnd_tail);
    CHECK(tpe_best < 0.01);
    /* the late suggestions choose kind b most of the time */
    size_t n_b = 0;
    for (size_t i = n - 30; i < n; i++) {
        n_b += floor(u1[i + n] * 3) == 1;
    }
    CHECK(n_b >= 20);
    free(u1);
    free(u2);
    kb_encode_free(e);
}

static void test_tpe_pool_returns_best_unused_row(void)
{
    kb_space s;
    kb_space_param p[3];
    make_space(&s, p);
    kb_encode *e = NULL;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_encode_new(&e, &s, &err), err);
    kb_rng rng;
    kb_rng_seed(&rng, 3);
    size_t n = 40, m = 60;
    double U[120], y[40], P[180];
    run(e, U, y, n, 9, 1);
    CHECK_OK(kb_encode_sample(P, m, e, m, KB_ENCODE_DESIGN_LHS, &rng, &err), err);
    unsigned char used[60] = {0};
    kb_encode_pool pool = {P, m, m, used};
    kb_tpe_opts o = KB_TPE_OPTS_INIT;
    size_t idx = SIZE_MAX;
    double u[3];
    for (size_t k = 0; k < m; k++) {
        CHECK_OK(kb_tpe_suggest(u, &idx, e, U, n, n, y, &o, &pool, &rng, &err), err);
        CHECK(idx < m && !used[idx] && u[0] == P[idx]);
        used[idx] = 1;
    }
    CHECK_CODE(kb_tpe_suggest(u, &idx, e, U, n, n, y, &o, &pool, &rng, &err), KB_ENOTFOUND);
    CHECK_CODE(kb_tpe_suggest_random(u, &idx, e, &pool, &rng, &err), KB_ENOTFOUND);
    kb_encode_free(e);
}

int main(void)
{
    test_tpe_is_deterministic_and_concentrates_on_the_optimum();
    test_tpe_pool_returns_best_unused_row();
    return check_exit();
}
