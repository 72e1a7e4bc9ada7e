/*
 * kb_logme: scores match a direct numpy implementation (tests/ref/logme_ref.py, output in
 * tests/data/logme_ref.txt) on both branches (n > d: F'F; n <= d: F F'), are invariant to
 * the order of samples, rank informative features above the same features with scrambled
 * labels, and every bad input is an error, never a crash; allocation failures clean up.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "engine/logme.h"
#include "refdata.h"

typedef struct ref_case {
    double *f, *y;
    size_t n, d, k;
    double score;
} ref_case;

static int load(ref_case *c, const char *name)
{
    char key[64];
    size_t nf = 0, ny = 0, nd = 0, ns = 0;
    memset(c, 0, sizeof *c);
    snprintf(key, sizeof key, "f_%s", name);
    c->f = refdata_get(check_data_path("logme_ref.txt"), key, &nf);
    snprintf(key, sizeof key, "y_%s", name);
    c->y = refdata_get(check_data_path("logme_ref.txt"), key, &ny);
    snprintf(key, sizeof key, "dims_%s", name);
    double *dims = refdata_get(check_data_path("logme_ref.txt"), key, &nd);
    snprintf(key, sizeof key, "score_%s", name);
    double *score = refdata_get(check_data_path("logme_ref.txt"), key, &ns);
    int ok = c->f != NULL && c->y != NULL && dims != NULL && score != NULL && nd == 3 &&
             ns == 1;
    if (ok) {
        c->n = (size_t)dims[0];
        c->d = (size_t)dims[1];
        c->k = (size_t)dims[2];
        c->score = score[0];
        ok = nf == c->n * c->d && ny == c->n;
    }
    free(dims);
    free(score);
    CHECK(ok);
    return ok;
}

static void release(ref_case *c)
{
    free(c->f);
    free(c->y);
}

static void test_logme_matches_the_numpy_reference(void)
{
    const char *names[] = {"tall", "wide", "noise", "relu"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        ref_case c;
        if (!load(&c, names[i])) {
            release(&c);
            continue;
        }
        kb_error err = KB_ERROR_INIT;
        kb_logme_result r;
        CHECK_OK(kb_logme_score(&r, c.f, c.n, c.d, c.n, c.y, c.k, NULL, &err), err);
        CHECK_NEAR(r.score, c.score, 1e-7, 1e-9);
        CHECK(r.converged && r.n_classes == c.k && r.max_iterations >= 1);
        release(&c);
    }
}

static void test_logme_ignores_sample_order_and_ld(void)
{
    ref_case c;
    if (!load(&c, "tall")) {
        release(&c);
        return;
    }
    kb_error err = KB_ERROR_INIT;
    size_t ld = c.n + 3;
    double *f = calloc(ld * c.d, sizeof(double)), *y = malloc(c.n * sizeof(double));
    for (size_t i = 0; i < c.n; i++) {
        size_t from = (i * 7 + 3) % c.n; /* 7 is prime to n = 60: a permutation */
        y[i] = c.y[from];
        for (size_t j = 0; j < c.d; j++) {
            f[i + j * ld] = c.f[from + j * c.n];
        }
    }
    kb_logme_result a, b;
    CHECK_OK(kb_logme_score(&a, c.f, c.n, c.d, c.n, c.y, c.k, NULL, &err), err);
    CHECK_OK(kb_logme_score(&b, f, c.n, c.d, ld, y, c.k, NULL, &err), err);
    CHECK_NEAR(a.score, b.score, 1e-10, 1e-12);
    free(f);
    free(y);
    release(&c);
}

static void test_logme_prefers_features_that_carry_the_labels(void)
{
    ref_case c;
    if (!load(&c, "tall")) {
        release(&c);
        return;
    }
    kb_error err = KB_ERROR_INIT;
    double *y = malloc(c.n * sizeof(double));
    for (size_t i = 0; i < c.n; i++) {
        y[i] = (double)((i / 3) % c.k); /* labels independent of the features' classes */
    }
    kb_logme_result good, bad;
    CHECK_OK(kb_logme_score(&good, c.f, c.n, c.d, c.n, c.y, c.k, NULL, &err), err);
    CHECK_OK(kb_logme_score(&bad, c.f, c.n, c.d, c.n, y, c.k, NULL, &err), err);
    CHECK(good.score > bad.score + 0.05);
    free(y);
    release(&c);
}

static void test_logme_rejects_bad_input(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_logme_result r;
    double f[8] = {1, 2, 3, 4, 0.5, 0.1, 0.2, 0.9}, y[4] = {0, 1, 0, 1};
    CHECK_OK(kb_logme_score(&r, f, 4, 2, 4, y, 2, NULL, &err), err);
    CHECK_CODE(kb_logme_score(&r, f, 4, 2, 3, y, 2, NULL, &err), KB_EINVAL);
    CHECK_CODE(kb_logme_score(&r, f, 1, 2, 4, y, 2, NULL, &err), KB_EINVAL);
    CHECK_CODE(kb_logme_score(&r, f, 4, 0, 4, y, 2, NULL, &err), KB_EINVAL);
    CHECK_CODE(kb_logme_score(&r, f, 4, 2, 4, y, 3, NULL, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "class 2 has no samples") != NULL);
    y[2] = 2;
    CHECK_CODE(kb_logme_score(&r, f, 4, 2, 4, y, 2, NULL, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "label 3") != NULL);
    y[2] = 0.5;
    CHECK_CODE(kb_logme_score(&r, f, 4, 2, 4, y, 2, NULL, &err), KB_EINVAL);
    y[2] = 0;
    f[5] = NAN;
    CHECK_CODE(kb_logme_score(&r, f, 4, 2, 4, y, 2, NULL, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "not finite") != NULL);
    f[5] = 0.1;
    kb_logme_opts o = KB_LOGME_OPTS_INIT;
    o.max_iter = 0;
    CHECK_CODE(kb_logme_score(&r, f, 4, 2, 4, y, 2, &o, &err), KB_EINVAL);
    o.max_iter = 1; /* one iteration: a score, flagged as not converged */
    CHECK_OK(kb_logme_score(&r, f, 4, 2, 4, y, 2, &o, &err), err);
    CHECK(!r.converged && r.max_iterations == 1 && isfinite(r.score));
    /* all-zero features: every evidence term stays finite (the epsilon guard) */
    double z[8] = {0};
    CHECK_OK(kb_logme_score(&r, z, 4, 2, 4, y, 2, NULL, &err), err);
    CHECK(isfinite(r.score));
    CHECK_CODE(kb_logme_score(NULL, f, 4, 2, 4, y, 2, NULL, &err), KB_EINVAL);
}

static ref_case sweep_case;

static int sweep_once(void)
{
    kb_logme_result r;
    return kb_logme_score(&r, sweep_case.f, sweep_case.n, sweep_case.d, sweep_case.n,
                          sweep_case.y, sweep_case.k, NULL, NULL);
}

static void test_logme_cleans_up_when_allocation_fails(void)
{
    const char *names[] = {"tall", "wide"};
    for (size_t i = 0; i < 2; i++) {
        if (load(&sweep_case, names[i])) {
            CHECK_ENOMEM_SWEEP(sweep_once, 20);
        }
        release(&sweep_case);
    }
}

int main(void)
{
    test_logme_matches_the_numpy_reference();
    test_logme_ignores_sample_order_and_ld();
    test_logme_prefers_features_that_carry_the_labels();
    test_logme_rejects_bad_input();
    test_logme_cleans_up_when_allocation_fails();
    return check_exit();
}
