/* Tests of engine/acq: closed forms against scipy/mpmath, maximisation, fantasies. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "refdata.h"
#include "engine/acq.h"

static double *ref(const char *name, size_t n)
{
    size_t got = 0;
    double *v = refdata_get(check_data_path("gp_ref.txt"), name, &got);
    CHECK(v != NULL && got == n);
    if (v == NULL || got != n) {
        exit(1);
    }
    return v;
}

static void test_acq_closed_forms_match_reference(void)
{
    double *c = ref("acq_cases", 24), *ei = ref("acq_ei_min", 8), *pi = ref("acq_pi_min", 8);
    double *ucb = ref("acq_lcb_min_kappa2", 8);
    for (int i = 0; i < 8; i++) {
        double mu = c[i], s = c[i + 8], tau = c[i + 16];
        CHECK_NEAR(kb_acq_ei(mu, s, tau, 0.0), ei[i], 1e-10, 0.0);
        CHECK_NEAR(kb_acq_pi(mu, s, tau, 0.0), pi[i], 1e-12, 1e-300);
        CHECK_NEAR(kb_acq_ucb(mu, s, 2.0), ucb[i], 1e-15, 1e-15);
        /* maximising m = -y: EI of m above -tau is the same number */
        CHECK_NEAR(kb_acq_ei(-(-mu), s, -(-tau), 0.0), ei[i], 1e-10, 0.0);
    }
    /* zero variance: the plain improvement; EI never negative */
    CHECK(kb_acq_ei(1.0, 0.0, 3.0, 0.0) == 2.0);
    CHECK(kb_acq_ei(3.0, 0.0, 1.0, 0.0) == 0.0);
    for (double z = -40; z < 10; z += 0.37) {
        CHECK(kb_acq_ei(-z, 1.0, 0.0, 0.0) >= 0.0);
    }
    /* continuity across the tail switch at z = -6 */
    CHECK_NEAR(kb_acq_ei(6.0 + 1e-9, 1.0, 0.0, 0.0), kb_acq_ei(6.0 - 1e-9, 1.0, 0.0, 0.0), 1e-6, 0);
    double mean[3] = {0, 1, 2}, var[3] = {1, -1e-18, 4}, out[3];
    kb_acq_eval(out, KB_ACQ_KIND_EI, mean, var, 3, 0.5, 0.0);
    CHECK_NEAR(out[0], kb_acq_ei(0, 1, 0.5, 0), 1e-15, 0);
    CHECK(out[1] == 0.0);
    free(c);
    free(ei);
    free(pi);
    free(ucb);
}

static char *colors[3] = {"red", "green", "blue"};

/* mean = (x - 0.3)^2 + (colour != blue); constant small variance */
static int toy_predict(double *mean, double *var, const double *x, size_t ld, size_t m,
                       void *payload, kb_error *err)
{
    (void)payload;
    (void)err;
    for (size_t i = 0; i < m; i++) {
        double t = x[i] - 0.3;
        mean[i] = t * t + (x[i + 3 * ld] == 1.0 ? 0.0 : 1.0);
        var[i] = 1e-4;
    }
    return KB_OK;
}

static void test_acq_maximize_finds_the_optimum_of_a_mixed_space(void)
{
    kb_space_param p[2] = {
        {.name = "x", .type = KB_SPACE_PARAM_FLOAT, .low = 0, .high = 1},
        {.name = "colour", .type = KB_SPACE_PARAM_CATEGORICAL, .choices = colors, .n_choices = 3},
    };
    kb_space s = {.name = "toy", .params = p, .n_params = 2};
    kb_encode *e = NULL;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_encode_new(&e, &s, &err), err);
    kb_rng rng;
    kb_rng_seed(&rng, 4);
    kb_acq_opts o = KB_ACQ_OPTS_INIT;
    o.n_candidates = 50;
    double u[2], val;
    size_t idx;
    CHECK_OK(kb_acq_maximize(u, &val, &idx, e, toy_predict, NULL, 0.5, &o, NULL, &rng, &err), err);
    CHECK_NEAR(u[0], 0.3, 0, 2e-3);
    CHECK_NEAR(u[1], 5.0 / 6.0, 0, 1e-12);
    CHECK(idx == SIZE_MAX && val > 0.4);
    /* pool: the best unused row */
    double pu[8] = {0.3, 0.31, 0.9, 0.5, 5.0 / 6.0, 5.0 / 6.0, 5.0 / 6.0, 0.5 / 3};
    unsigned char used[4] = {1, 0, 0, 0};
    kb_encode_pool pool = {pu, 4, 4, used};
    CHECK_OK(kb_acq_maximize(u, &val, &idx, e, toy_predict, NULL, 0.5, &o, &pool, &rng, &err), err);
    CHECK(idx == 1 && u[0] == 0.31);
    memset(used, 1, sizeof used);
    CHECK_CODE(kb_acq_maximize(u, &val, &idx, e, toy_predict, NULL, 0.5, &o, &pool, &rng, &err),
               KB_ENOTFOUND);
    kb_encode_free(e);
}

static void test_acq_lies(void)
{
    double y[3] = {2, -1, 5}, mp[2] = {0.5, 0.7}, out[2];
    kb_acq_lie(out, KB_ACQ_LIAR_MIN, y, 3, mp, 2);
    CHECK(out[0] == -1 && out[1] == -1);
    kb_acq_lie(out, KB_ACQ_LIAR_MAX, y, 3, mp, 2);
    CHECK(out[0] == 5);
    kb_acq_lie(out, KB_ACQ_LIAR_MEAN, y, 3, mp, 2);
    CHECK(out[1] == 2);
    kb_acq_lie(out, KB_ACQ_LIAR_BELIEVER, y, 3, mp, 2);
    CHECK(out[0] == 0.5 && out[1] == 0.7);
}

int main(void)
{
    test_acq_closed_forms_match_reference();
    test_acq_maximize_finds_the_optimum_of_a_mixed_space();
    test_acq_lies();
    return check_exit();
}
