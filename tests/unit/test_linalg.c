/* Tests of engine/linalg: the Cholesky inverse against LAPACK's dpotri, and its errors. */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/core/rng.h"
#include "engine/linalg.h"

/* A random symmetric positive-definite n x n matrix: B B^T / n + I. */
static void random_spd(double *a, size_t n, kb_rng *rng)
{
    double *b = malloc(n * n * sizeof(double));
    for (size_t i = 0; i < n * n; i++) {
        b[i] = kb_rng_normal(rng);
    }
    for (size_t j = 0; j < n; j++) {
        for (size_t i = 0; i < n; i++) {
            double s = 0.0;
            for (size_t k = 0; k < n; k++) {
                s += b[i + k * n] * b[j + k * n];
            }
            a[i + j * n] = s / (double)n + (i == j ? 1.0 : 0.0);
        }
    }
    free(b);
}

static void test_linalg_cholesky_inverse_matches_dpotri(void)
{
    /* sizes around the recursion's base (32) and its 8-aligned splits, odd and even */
    const size_t sizes[] = {1, 2, 7, 31, 32, 33, 64, 65, 100, 261};
    kb_rng rng;
    kb_rng_seed(&rng, 17);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        double *a = malloc(n * n * sizeof(double)), *l = malloc(n * n * sizeof(double));
        double *want = malloc(n * n * sizeof(double));
        random_spd(a, n, &rng);
        kb_error err = KB_ERROR_INIT;
        CHECK_OK(kb_linalg_cholesky(l, n, a, n, n, NULL, &err), err);
        memcpy(want, l, n * n * sizeof(double));
        CHECK(LAPACKE_dpotri_work(LAPACK_COL_MAJOR, 'L', (lapack_int)n, want, (lapack_int)n) ==
              0);
        CHECK_OK(kb_linalg_cholesky_inverse(l, n, n, &err), err);
        double scale = 0.0;
        for (size_t j = 0; j < n; j++) {
            for (size_t i = j; i < n; i++) {
                scale = fmax(scale, fabs(want[i + j * n]));
            }
        }
        for (size_t j = 0; j < n; j++) {
            CHECK(l[j + j * n] > 0.0);
            for (size_t i = j; i < n; i++) {
                CHECK_NEAR(l[i + j * n], want[i + j * n], 0.0, 1e-12 * scale);
            }
        }
        /* and it is the inverse: (A K^-1)_ij = delta_ij, K^-1 read from its lower triangle */
        for (size_t j = 0; j < n; j += 1 + n / 7) {
            for (size_t i = 0; i < n; i++) {
                double s2 = 0.0;
                for (size_t k = 0; k < n; k++) {
                    double v = k >= j ? l[k + j * n] : l[j + k * n];
                    s2 += a[i + k * n] * v;
                }
                CHECK_NEAR(s2, i == j ? 1.0 : 0.0, 0.0, 1e-10);
            }
        }
        free(a);
        free(l);
        free(want);
    }
}

static void test_linalg_cholesky_inverse_reports_errors(void)
{
    kb_error err = KB_ERROR_INIT;
    double l[9] = {1, 2, 3, 0, 0, 4, 0, 0, 5}; /* the second pivot is zero */
    CHECK_CODE(kb_linalg_cholesky_inverse(l, 3, 3, &err), KB_ENUMERIC);
    CHECK(err.cause == 2);
    /* past the recursion's split (40 = 24 + 16): the pivot is numbered in the whole matrix */
    double big[1600] = {0};
    for (size_t i = 0; i < 40; i++) {
        big[i + i * 40] = i == 35 ? 0.0 : 1.0;
    }
    CHECK_CODE(kb_linalg_cholesky_inverse(big, 40, 40, &err), KB_ENUMERIC);
    CHECK(err.cause == 36);
    CHECK_CODE(kb_linalg_cholesky_inverse(l, 2, 3, &err), KB_EINVAL);
    CHECK_CODE(kb_linalg_cholesky_inverse(NULL, 3, 3, &err), KB_EINVAL);
    CHECK_OK(kb_linalg_cholesky_inverse(l, 1, 0, &err), err);
    double one = 4.0;
    CHECK_OK(kb_linalg_cholesky_inverse(&one, 1, 1, &err), err);
    CHECK(one == 1.0 / 16.0);
}

int main(void)
{
    test_linalg_cholesky_inverse_matches_dpotri();
    test_linalg_cholesky_inverse_reports_errors();
    return check_exit();
}
