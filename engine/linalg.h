/*
 * Dense linear algebra helpers shared by the GP and the similarity engine: the one Cholesky
 * factorisation with jitter escalation (STYLE.md section 6) and size checks before BLAS/LAPACK.
 *
 * Invariant: every BLAS/LAPACK call made through this module has validated sizes (they fit in
 * an int, ld >= max(1, rows)), so a bad size never reaches xerbla, which would exit.
 * Reference for the jitter policy: GPy's jitchol (GPy/util/linalg.py).
 */
#ifndef KB_ENGINE_LINALG_H
#define KB_ENGINE_LINALG_H

#include <stddef.h>

#include "engine/core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Retries after the first failed factorisation; jitter = 1e-6 * mean(diag) * 10^k. */
#define KB_LINALG_CHOLESKY_MAX_RETRIES 5

/**
 * Lower Cholesky factor of the symmetric n x n matrix `a` (lower triangle read) into `l_out`
 * (ld `ld_l`; the strict upper triangle is zeroed). When the matrix is not numerically
 * positive definite, retries with jitter 1e-6 * mean(diag(a)) added to the diagonal, x10 per
 * retry, at most KB_LINALG_CHOLESKY_MAX_RETRIES times.
 *
 * @param[out] l_out      n x n lower factor; may equal `a` only if ld_l == ld_a and the
 *                        caller accepts that `a` is lost (then no retry is possible and a
 *                        failure is final).
 * @param[out] jitter_out jitter that was added (0 when none); may be NULL.
 * @return KB_OK; KB_EINVAL for bad sizes or non-finite / non-positive diagonal entries;
 *         KB_ENUMERIC (cause = LAPACK info) when every retry failed.
 */
int kb_linalg_cholesky(double *l_out, size_t ld_l, const double *a, size_t ld_a, size_t n,
                       double *jitter_out, kb_error *err);

/**
 * In place, the lower Cholesky factor L of a matrix K (as from kb_linalg_cholesky) becomes the
 * lower triangle of K^-1 = L^-T L^-1: LAPACK's dpotri, but with the triangular inverse taken
 * recursively in BLAS-3 halves (L^-1 = [A^-1 0; -C^-1 B A^-1 C^-1] for L = [A 0; B C]), which
 * is 1.2-3x faster than OpenBLAS's dtrtri below a few thousand rows; same flops (n^3 / 3),
 * then dlauum (n^3 / 3). The strict upper triangle is not touched.
 * @return KB_OK; KB_EINVAL for bad sizes; KB_ENUMERIC (cause = LAPACK info) for a zero pivot.
 */
int kb_linalg_cholesky_inverse(double *l, size_t ld_l, size_t n, kb_error *err);

/** Whether n x m fits BLAS/LAPACK int arguments (and n*m doubles fit size_t). */
int kb_linalg_size_ok(size_t n, size_t m);

#ifdef __cplusplus
}
#endif

#endif
