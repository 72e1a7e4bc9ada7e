#include "engine/linalg.h"

#include <cblas.h>
#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <string.h>

int kb_linalg_size_ok(size_t n, size_t m)
{
    if (n > (size_t)INT_MAX || m > (size_t)INT_MAX) {
        return 0;
    }
    return m == 0 || n <= SIZE_MAX / sizeof(double) / m;
}

static void copy_lower(double *l, size_t ld_l, const double *a, size_t ld_a, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        for (size_t i = 0; i < j; i++) {
            l[i + j * ld_l] = 0.0;
        }
        memmove(l + j + j * ld_l, a + j + j * ld_a, (n - j) * sizeof(double));
    }
}

int kb_linalg_cholesky(double *l_out, size_t ld_l, const double *a, size_t ld_a, size_t n,
                       double *jitter_out, kb_error *err)
{
    KB_CHECK_ARG(l_out != NULL && a != NULL);
    KB_CHECK_ARG(ld_l >= (n > 0 ? n : 1) && ld_a >= (n > 0 ? n : 1));
    KB_CHECK_ARG(kb_linalg_size_ok(ld_l, n) && kb_linalg_size_ok(ld_a, n));
    if (jitter_out != NULL) {
        *jitter_out = 0.0;
    }
    if (n == 0) {
        return KB_OK;
    }
    double mean_diag = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = a[i + i * ld_a];
        if (!isfinite(d) || d <= 0.0) {
            return kb_error_set(err, KB_EINVAL, "cholesky: diagonal entry %zu is %g", i, d);
        }
        mean_diag += d / (double)n;
    }
    int in_place = l_out == a;
    double jitter = 0.0;
    lapack_int info = 0;
    for (int attempt = 0; attempt <= KB_LINALG_CHOLESKY_MAX_RETRIES; attempt++) {
        if (attempt > 0) {
            if (in_place) {
                break;
            }
            jitter = attempt == 1 ? 1e-6 * mean_diag : jitter * 10.0;
        }
        if (!in_place) {
            copy_lower(l_out, ld_l, a, ld_a, n);
        } else {
            for (size_t j = 0; j < n; j++) {
                for (size_t i = 0; i < j; i++) {
                    l_out[i + j * ld_l] = 0.0;
                }
            }
        }
        for (size_t i = 0; i < n; i++) {
            l_out[i + i * ld_l] += jitter;
        }
        info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', (lapack_int)n, l_out, (lapack_int)ld_l);
        if (info == 0) {
            if (jitter_out != NULL) {
                *jitter_out = jitter;
            }
            return KB_OK;
        }
        if (info < 0) {
            break; /* a NaN off the diagonal, or our bug: jitter cannot help */
        }
    }
    return kb_error_set_cause(err, KB_ENUMERIC, (int)info,
                              "cholesky: matrix of size %zu not positive definite "
                              "(info %d, last jitter %g)",
                              n, (int)info, jitter);
}

/* Below this order the triangular inverse is LAPACK's own (its unblocked code is fine there). */
#define TRTRI_BASE 32

/* Lower-triangular inverse in place, recursively; LAPACK info convention (> 0: zero pivot). */
static lapack_int trtri_lower(double *a, size_t ld, size_t n)
{
    if (n <= TRTRI_BASE) {
        return LAPACKE_dtrtri_work(LAPACK_COL_MAJOR, 'L', 'N', (lapack_int)n, a, (lapack_int)ld);
    }
    size_t n1 = (n / 2 + 7) / 8 * 8, n2 = n - n1; /* 8-aligned split: whole SIMD blocks */
    double *c = a + n1 + n1 * ld, *b = a + n1;
    lapack_int info = trtri_lower(a, ld, n1);
    if (info != 0) {
        return info;
    }
    info = trtri_lower(c, ld, n2);
    if (info != 0) {
        return info + (lapack_int)n1;
    }
    /* B <- -C^-1 B A^-1 */
    cblas_dtrmm(CblasColMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, (int)n2,
                (int)n1, 1.0, a, (int)ld, b, (int)ld);
    cblas_dtrmm(CblasColMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, (int)n2,
                (int)n1, -1.0, c, (int)ld, b, (int)ld);
    return 0;
}

int kb_linalg_cholesky_inverse(double *l, size_t ld_l, size_t n, kb_error *err)
{
    KB_CHECK_ARG(l != NULL && ld_l >= (n > 0 ? n : 1) && kb_linalg_size_ok(ld_l, n));
    if (n == 0) {
        return KB_OK;
    }
    lapack_int info = trtri_lower(l, ld_l, n);
    if (info == 0) {
        info = LAPACKE_dlauum_work(LAPACK_COL_MAJOR, 'L', (lapack_int)n, l, (lapack_int)ld_l);
    }
    if (info != 0) {
        return kb_error_set_cause(err, KB_ENUMERIC, (int)info,
                                  "cholesky inverse: zero pivot %d of %zu", (int)info, n);
    }
    return KB_OK;
}
