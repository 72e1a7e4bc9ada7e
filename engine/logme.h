/*
 * LogME: how well a backbone's features suit a new classification task, without fine-tuning
 * (You, Liu, Wang, Long, "LogME: Practical Assessment of Pre-trained Models for Transfer
 * Learning", ICML 2021, Algorithm 1).
 *
 * For features F (n x d, one row per sample, e.g. a backbone's penultimate activations) and
 * each class c, the one-hot target y_c in {0,1}^n is modelled as a Bayesian linear regression
 * y = F w + noise, w ~ N(0, I / alpha), noise ~ N(0, I / beta). The log evidence
 *
 *   L(alpha, beta) = d/2 log alpha + n/2 log beta - n/2 log 2pi - alpha/2 m'm
 *                    - beta/2 |y - F m|^2 - 1/2 log det(alpha I + beta F'F),
 *   m = beta (alpha I + beta F'F)^-1 F'y,
 *
 * is maximised by MacKay's fixed-point updates (Bishop, PRML 3.5.2):
 *   gamma = sum_i beta s_i / (alpha + beta s_i),  alpha <- gamma / m'm,
 *   beta <- (n - gamma) / |y - F m|^2,
 * with s_i the eigenvalues of F'F, until both alpha and beta change by less than `tol`
 * (relative). The score is mean over classes of L / n at the fixed point (larger = better
 * transfer expected); it is comparable across backbones on the same data.
 *
 * One eigendecomposition serves every class and iteration: of F F' (n x n) when n <= d, else
 * of F'F (d x d) (LAPACKE dsyevd). With t_j the projection of F'y on eigenvector j,
 *   m'm = beta^2 sum_j t_j^2 / (alpha + beta s_j)^2,
 *   |y - F m|^2 = |y|^2 - beta sum_j t_j^2 (2 alpha + beta s_j) / (alpha + beta s_j)^2,
 * so an iteration costs O(min(n, d)) per class. Unlike the authors' code, which evaluates
 * L with m from the previous iterate, L is evaluated at the final (alpha, beta) and its m.
 * Reference values: tests/ref/logme_ref.py (a direct numpy implementation).
 */
#ifndef KB_ENGINE_LOGME_H
#define KB_ENGINE_LOGME_H

#include <stddef.h>

#include "engine/core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kb_logme_opts {
    int version;
    size_t max_iter; /* fixed-point iterations per class */
    double tol;      /* relative change of alpha and beta that counts as converged */
} kb_logme_opts;

#define KB_LOGME_OPTS_VERSION 1
#define KB_LOGME_OPTS_INIT {KB_LOGME_OPTS_VERSION, 1000, 1e-8}

typedef struct kb_logme_result {
    double score;        /* mean over classes of the maximised log evidence / n */
    size_t n_classes;
    size_t max_iterations; /* most fixed-point iterations any class needed */
    int converged;       /* 1 if every class converged within max_iter */
} kb_logme_result;

/**
 * LogME of features `f` (n x d column-major, leading dimension ld >= n; a sample is a row)
 * for class labels `y` (n values 0..n_classes-1 as doubles).
 * @param opts NULL for KB_LOGME_OPTS_INIT.
 * @return KB_OK (see out->converged); KB_EINVAL for bad sizes, non-finite features, labels
 *         out of range or n < 2; KB_ENUMERIC (cause = LAPACK info) when the
 *         eigendecomposition fails; KB_ENOMEM.
 */
int kb_logme_score(kb_logme_result *out, const double *f, size_t n, size_t d, size_t ld,
                   const double *y, size_t n_classes, const kb_logme_opts *opts,
                   kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
