/*
 * Gaussian-process regression for Bayesian optimisation.
 *
 * Model: y = f(x) + eps, f ~ GP(0, k), eps ~ N(0, sn2), on inputs in [0, 1]^d (kernel features
 * of engine/encode.h) and outputs standardised to zero mean, unit variance (undone when
 * predicting). Kernels, with r^2 = sum_k (x_k - x'_k)^2 / l_k^2 (ARD lengthscales l_k):
 *   Matern 5/2:  k = sf2 (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r)
 *   squared exponential: k = sf2 exp(-r^2 / 2)
 * Hyperparameters theta (length d + 2, all in natural log): log l_1..log l_d, log sf2,
 * log sn2. They maximise the log marginal likelihood (plus optional log priors) by a bounded
 * L-BFGS written here, from theta_init and n_restarts seeded random starts; with many points,
 * first on nested random subsets (opts.n_subset), so that the full data need few evaluations.
 *
 * Numerics (Rasmussen & Williams 2006, Algorithm 2.1 and eq. 5.9): L = chol(K + sn2 I) with
 * jitter escalation (engine/linalg.h), alpha = L^T \ (L \ y), lml = -y^T alpha / 2 -
 * sum log L_ii - n log(2 pi) / 2. The gradient 0.5 tr((alpha alpha^T - K^-1) dK/dtheta_j)
 * needs K^-1 itself: it is formed from L (kb_linalg_cholesky_inverse, 2 n^3 / 3 flops after the
 * n^3 / 3 of the Cholesky), the only place an inverse appears, and only at points the line
 * search accepts (a rejected step costs the Cholesky alone); the traces are then O(n^2 d), and
 * those of the signal and noise variances O(n). Memory per fit: two n x n matrices. Kernel
 * values come a column of pairs at a time (SSE2 where available, with an exp of the same
 * operations in both paths, ~1 ulp, so results do not depend on the path or a pair's place).
 * Prediction never inverts: V = L \ K(X, X*) by dtrsm (BLAS-3), mean = K*^T alpha,
 * var = sf2 - colsum(V .^ 2), clamped at 0.
 */
#ifndef KB_ENGINE_GP_H
#define KB_ENGINE_GP_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kb_gp kb_gp;

typedef enum kb_gp_kernel {
    KB_GP_KERNEL_MATERN52 = 0,
    KB_GP_KERNEL_SE = 1
} kb_gp_kernel;

typedef enum kb_gp_prior_kind {
    KB_GP_PRIOR_NONE = 0,
    KB_GP_PRIOR_LOGNORMAL = 1, /* log(param) ~ N(a, b^2): a = mean, b = sd of theta_j */
    KB_GP_PRIOR_GAMMA = 2      /* param = exp(theta_j) ~ Gamma(shape a, rate b) */
} kb_gp_prior_kind;

/** A prior on one hyperparameter (on exp(theta_j)); kind NONE = flat within the bounds. */
typedef struct kb_gp_prior {
    kb_gp_prior_kind kind;
    double a, b;
} kb_gp_prior;

typedef struct kb_gp_opts {
    int version;
    kb_gp_kernel kernel;
    int optimize;              /* 0: keep theta_init (fixed hyperparameters) */
    size_t n_restarts;         /* random starts after theta_init (sklearn's n_restarts_optimizer) */
    size_t max_iter;           /* L-BFGS iterations per start */
    double tol;                /* stop when the relative decrease of -lml is below tol */
    double pgtol;              /* ... or the projected gradient's max-norm is below pgtol */
    double log_ls_min, log_ls_max;   /* bounds of log lengthscales */
    double log_sf2_min, log_sf2_max; /* bounds of log signal variance (standardised y) */
    double log_sn2_min, log_sn2_max; /* bounds of log noise variance; min > -inf: sn2 > 0 */
    const double *theta_init;  /* d + 2 values, or NULL: l = 0.5, sf2 = 1, sn2 = 1e-3 */
    const kb_gp_prior *priors; /* d + 2 priors, or NULL (flat) */
    int normalize_y;           /* standardise outputs (1, default) or use them as given (0) */
    uint64_t seed;             /* random restarts */
    size_t n_subset;           /* n >= 2 n_subset: fit first on n_subset random points (all
                                  starts), then 3x larger nested subsets, then all points
                                  (one start each, from the level below); 0 = off */
    double lml_tol;            /* ... or when 5 iterations together gained less than lml_tol
                                  in the objective (nats); 0 = off */
    double lml_tol_per_point;  /* on a subset ladder (n >= 2 n_subset), the level on m points
                                  uses max(lml_tol, lml_tol_per_point * m): the lml is a sum
                                  over points, and per point such gains change no prediction */
} kb_gp_opts;

/* bounds: l in [1e-2, 1e2], sf2 in [1e-2, 1e2], sn2 in [1e-6, 1] */
#define KB_GP_OPTS_INIT                                                                      \
    {1, KB_GP_KERNEL_MATERN52, 1, 2, 200, 2.2e-9, 1e-5, -4.605170185988091,                  \
     4.605170185988091, -4.605170185988091, 4.605170185988091, -13.815510557964274, 0.0,     \
     NULL, NULL, 1, 0, 500, 1e-2, 1e-3}

/** What a fit did; filled even when it fails part-way. */
typedef struct kb_gp_fit_info {
    double lml;          /* log marginal likelihood at the result (standardised y) */
    double log_prior;    /* log prior density at the result (0 with flat priors) */
    int converged;       /* best start met tol/pgtol within max_iter */
    size_t n_iter;       /* iterations of the best start */
    size_t n_evals;      /* likelihood evaluations over all starts */
    size_t n_failed;     /* starts that failed numerically */
    double jitter;       /* jitter added by the final Cholesky */
    size_t n_grads;      /* gradient evaluations (one K^-1 each) over all starts and levels */
} kb_gp_fit_info;

/**
 * Fit a GP to n points x (n x d column-major, ld_x >= n) with targets y (n values).
 * n may be 0 (the prior is then used when predicting).
 * @param[out] out      caller owns; free with kb_gp_free().
 * @param[out] info_out may be NULL.
 * @return KB_OK; KB_EINVAL (bad sizes, non-finite inputs, bad bounds); KB_ENUMERIC (no start
 *         gave a positive-definite covariance); KB_ENOMEM.
 */
int kb_gp_fit(kb_gp **out, const double *x, size_t ld_x, size_t n, size_t d, const double *y,
              const kb_gp_opts *opts, kb_gp_fit_info *info_out, kb_error *err);
void kb_gp_free(kb_gp *gp);

size_t kb_gp_n_train(const kb_gp *gp);
size_t kb_gp_dim(const kb_gp *gp);
/** Fitted theta (d + 2 values, borrowed from gp). */
const double *kb_gp_theta(const kb_gp *gp);
kb_gp_kernel kb_gp_kernel_of(const kb_gp *gp);
/** Output standardisation: y = mean + sd * z. */
void kb_gp_y_scale(const kb_gp *gp, double *mean_out, double *sd_out);

/**
 * Posterior of the latent f at m points xs (m x d, ld_xs >= m), in the units of y.
 * @param[out] mean_out m values; var_out m values (>= 0, without noise) or NULL.
 * @return KB_OK, KB_ENOMEM.
 */
int kb_gp_predict(double *mean_out, double *var_out, const kb_gp *gp, const double *xs,
                  size_t ld_xs, size_t m, kb_error *err);
/**
 * Leave-one-out predictive mean and variance (with noise) of every training point, in the
 * units of y (R&W eq. 5.12: mu_i = y_i - alpha_i / [K^-1]_ii, var_i = 1 / [K^-1]_ii).
 * @return KB_OK, KB_ENOMEM, KB_ENUMERIC.
 */
int kb_gp_loo(double *mean_out, double *var_out, const kb_gp *gp, kb_error *err);

/**
 * Log marginal likelihood of y (as given, no standardisation) and its gradient w.r.t. theta.
 * @param[out] grad_out d + 2 values or NULL.
 * @param[out] jitter_out jitter the Cholesky needed, or NULL.
 * @return KB_OK, KB_ENUMERIC, KB_ENOMEM.
 */
int kb_gp_lml(double *lml_out, double *grad_out, const double *x, size_t ld_x, size_t n,
              size_t d, const double *y, kb_gp_kernel kernel, const double *theta,
              double *jitter_out, kb_error *err);
/**
 * Kernel matrix K(x1, x2) (n1 x n2, ld_k >= n1) without noise.
 */
void kb_gp_kernel_matrix(double *k_out, size_t ld_k, const double *x1, size_t ld_1, size_t n1,
                         const double *x2, size_t ld_2, size_t n2, size_t d, kb_gp_kernel kernel,
                         const double *theta);

#ifdef __cplusplus
}
#endif

#endif
