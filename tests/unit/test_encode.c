/* Tests of engine/encode: round trips, conditions, designs, Sobol against scipy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "refdata.h"
#include "engine/encode.h"

static char *kernels[3] = {"rbf", "poly", "linear"};
static char *only_rbf[1] = {"rbf"};
static char *only_poly[1] = {"poly"};
static char *only_true[1] = {"true"};
static char *deg3[2] = {"3", "4"};

/* svm-like space with a chain of conditions: kernel -> degree -> coef0, shrinking -> tol */
static void make_space(kb_space *s, kb_space_param p[7])
{
    memset(p, 0, 7 * sizeof *p);
    p[0] = (kb_space_param){.name = "kernel", .type = KB_SPACE_PARAM_CATEGORICAL,
                            .choices = kernels, .n_choices = 3};
    p[1] = (kb_space_param){.name = "C", .type = KB_SPACE_PARAM_FLOAT, .low = 1e-3,
                            .high = 1e3, .log = 1};
    p[2] = (kb_space_param){.name = "gamma", .type = KB_SPACE_PARAM_FLOAT, .low = 1e-4,
                            .high = 10, .log = 1, .cond_parent = "kernel", .cond_in = only_rbf,
                            .n_cond_in = 1};
    p[3] = (kb_space_param){.name = "degree", .type = KB_SPACE_PARAM_INT, .low = 2, .high = 5,
                            .cond_parent = "kernel", .cond_in = only_poly, .n_cond_in = 1};
    p[4] = (kb_space_param){.name = "coef0", .type = KB_SPACE_PARAM_FLOAT, .low = 0, .high = 1,
                            .cond_parent = "degree", .cond_in = deg3, .n_cond_in = 2};
    p[5] = (kb_space_param){.name = "shrinking", .type = KB_SPACE_PARAM_BOOL};
    p[6] = (kb_space_param){.name = "tol", .type = KB_SPACE_PARAM_INT, .low = 1, .high = 1000,
                            .log = 1, .cond_parent = "shrinking", .cond_in = only_true,
                            .n_cond_in = 1};
    *s = (kb_space){.name = "svm", .params = p, .n_params = 7};
}

static int active_expected(const double *u, size_t j, const kb_encode *e)
{
    size_t k = (size_t)floor(u[0] * 3);
    switch (j) {
    case 2: return k == 0;
    case 3: return k == 1;
    case 4: {
        if (k != 1) {
            return 0;
        }
        kb_param *cfg = NULL;
        size_t n = 0;
        kb_error err = KB_ERROR_INIT;
        kb_encode_decode(&cfg, &n, e, u, &err);
        const kb_param *dg = kb_params_find(cfg, n, "degree");
        int r = dg != NULL && (dg->value.i == 3 || dg->value.i == 4);
        kb_params_free(cfg, n);
        return r;
    }
    case 6: return u[5] > 0.5;
    default: return 1;
    }
}

static void test_encode_dims_and_features(void)
{
    kb_space s;
    kb_space_param p[7];
    make_space(&s, p);
    kb_encode *e = NULL;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_encode_new(&e, &s, &err), err);
    CHECK(kb_encode_n_params(e) == 7);
    CHECK(kb_encode_n_dims(e) == 9);
    CHECK(kb_encode_n_choices(e, 0) == 3 && kb_encode_n_choices(e, 5) == 2);
    double u[7] = {0.9, 0.25, 0.3, 0.1, 0.2, 0.1, 0.9};
    kb_encode_snap(e, u);
    CHECK(isnan(u[2]) && isnan(u[3]) && isnan(u[4]) && isnan(u[6]));
    double x[9];
    kb_encode_features(x, e, u);
    double want[9] = {0, 0, 1, 0.25, 0.5, 0.5, 0.5, 0, 0.5};
    for (int i = 0; i < 9; i++) {
        CHECK(x[i] == want[i]);
    }
    kb_encode_free(e);
}

static void test_encode_round_trip_with_conditions(void)
{
    kb_space s;
    kb_space_param p[7];
    make_space(&s, p);
    kb_encode *e = NULL;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_encode_new(&e, &s, &err), err);
    kb_rng rng;
    kb_rng_seed(&rng, 5);
    double u[200 * 7];
    for (int design = 0; design < 3; design++) {
        CHECK_OK(kb_encode_sample(u, 200, e, 200, (kb_encode_design)design, &rng, &err), err);
        size_t n_active[7] = {0};
        for (size_t i = 0; i < 200; i++) {
            double ui[7], back[7];
            for (size_t j = 0; j < 7; j++) {
                ui[j] = u[i + j * 200];
                n_active[j] += !isnan(ui[j]);
            }
            for (size_t j = 0; j < 7; j++) {
                CHECK(kb_encode_active(e, ui, j) == active_expected(ui, j, e));
            }
            kb_param *cfg = NULL;
            size_t n = 0;
            CHECK_OK(kb_encode_decode(&cfg, &n, e, ui, &err), err);
            CHECK_OK(kb_space_check_config(&s, cfg, n, &err), err);
            CHECK_OK(kb_encode_config(back, e, cfg, n, &err), err);
            for (size_t j = 0; j < 7; j++) {
                CHECK((isnan(back[j]) && isnan(ui[j])) || fabs(back[j] - ui[j]) < 1e-12);
            }
            /* a stored configuration is the same point as the one proposed */
            CHECK(kb_encode_same(back, 1, ui, 1, 7));
            back[1] += 1e-6;
            CHECK(!kb_encode_same(back, 1, ui, 1, 7));
            /* snapping a snapped point changes nothing */
            memcpy(back, ui, sizeof back);
            kb_encode_snap(e, back);
            CHECK(memcmp(back, ui, sizeof back) == 0);
            kb_params_free(cfg, n);
        }
        CHECK(n_active[0] == 200 && n_active[2] > 30 && n_active[3] > 30 && n_active[4] > 5);
    }
    /* a hand-written configuration */
    kb_param cfg[4] = {
        {"kernel", {.type = KB_VALUE_TYPE_STR, .s = "poly"}},
        {"C", {.type = KB_VALUE_TYPE_FLOAT, .f = 1.0}},
        {"degree", {.type = KB_VALUE_TYPE_INT, .i = 2}},
        {"shrinking", {.type = KB_VALUE_TYPE_BOOL, .b = 0}},
    };
    double uc[7];
    CHECK_OK(kb_encode_config(uc, e, cfg, 4, &err), err);
    CHECK_NEAR(uc[0], 0.5, 0, 1e-15);
    CHECK_NEAR(uc[1], 0.5, 0, 1e-12);
    CHECK_NEAR(uc[3], 0.0, 0, 1e-15);
    CHECK(isnan(uc[2]) && isnan(uc[4]) && isnan(uc[6]) && uc[5] == 0.25);
    /* gamma is inactive for poly: rejected */
    kb_param bad[5] = {cfg[0], cfg[1], cfg[2], cfg[3],
                       {"gamma", {.type = KB_VALUE_TYPE_FLOAT, .f = 1.0}}};
    CHECK_CODE(kb_encode_config(uc, e, bad, 5, &err), KB_EFORMAT);
    kb_encode_free(e);
}

static void test_encode_designs_are_seeded_and_stratified(void)
{
    kb_space s;
    kb_space_param p[7];
    make_space(&s, p);
    kb_encode *e = NULL;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_encode_new(&e, &s, &err), err);
    double a[50 * 7], b[50 * 7];
    for (int design = 0; design < 3; design++) {
        kb_rng r1, r2;
        kb_rng_seed(&r1, 9);
        kb_rng_seed(&r2, 9);
        CHECK_OK(kb_encode_sample(a, 50, e, 50, (kb_encode_design)design, &r1, &err), err);
        CHECK_OK(kb_encode_sample(b, 50, e, 50, (kb_encode_design)design, &r2, &err), err);
        CHECK(memcmp(a, b, sizeof a) == 0);
    }
    /* LHS: each of the 50 strata of the (unconditional) C holds exactly one point */
    kb_rng r;
    kb_rng_seed(&r, 1);
    CHECK_OK(kb_encode_sample(a, 50, e, 50, KB_ENCODE_DESIGN_LHS, &r, &err), err);
    int seen[50] = {0};
    for (int i = 0; i < 50; i++) {
        seen[(int)floor(a[i + 50] * 50)]++;
    }
    for (int i = 0; i < 50; i++) {
        CHECK(seen[i] == 1);
    }
    kb_encode_free(e);
}

static void test_encode_sobol_matches_scipy(void)
{
    size_t n = 0;
    double *want = refdata_get(check_data_path("gp_ref.txt"), "sobol_21", &n);
    CHECK(want != NULL && n == 64 * 21);
    if (want == NULL) {
        return;
    }
    double got[64 * 21];
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_encode_sobol(got, 64, 64, 21, NULL, &err), err);
    for (size_t i = 0; i < 64 * 21; i++) {
        CHECK(got[i] == want[i]);
    }
    free(want);
}

int main(void)
{
    test_encode_dims_and_features();
    test_encode_round_trip_with_conditions();
    test_encode_designs_are_seeded_and_stratified();
    test_encode_sobol_matches_scipy();
    return check_exit();
}
