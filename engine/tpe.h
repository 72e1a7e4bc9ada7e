/*
 * Tree-structured Parzen estimator (Bergstra, Bardenet, Bengio & Kegl, NeurIPS 2011) and
 * random search, on the u representation of engine/encode.h.
 *
 * Observations are split at the gamma quantile of y (minimised): the n_below = min(ceil(
 * gamma_frac n), gamma_max) best form l(x), the rest g(x) (Optuna's default gamma). Each
 * parameter has its own pair of estimators built only from the observations in which it is
 * active (conditional parameters are handled per parameter, as in the paper's tree):
 *  - numeric: a mixture of normals truncated to [0, 1], one per observation plus a prior
 *    component N(0.5, 1); bandwidth of a point = the larger gap to its sorted neighbours,
 *    clipped to [1 / min(100, 1 + n), 1] ("magic clip", Optuna's univariate defaults);
 *  - categorical / bool: weighted counts plus prior_weight spread over the choices.
 * Observation weights follow Optuna: 1 for the 25 most recent, a linear ramp for older ones.
 * The suggestion maximises sum_j log l_j(u_j) - log g_j(u_j) over n_ei_candidates draws from
 * l (per parameter, independently: univariate TPE), or over the unused rows of a pool.
 */
#ifndef KB_ENGINE_TPE_H
#define KB_ENGINE_TPE_H

#include <stddef.h>

#include "engine/core/error.h"
#include "engine/core/rng.h"
#include "engine/encode.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kb_tpe_opts {
    int version;
    size_t n_startup;        /* random suggestions before the model is used */
    size_t n_ei_candidates;  /* draws from l(x) per parameter */
    double gamma_frac;       /* fraction of observations in l(x) */
    size_t gamma_max;        /* at most this many */
    double prior_weight;
} kb_tpe_opts;

#define KB_TPE_OPTS_INIT {1, 10, 24, 0.1, 25, 1.0}

/**
 * Next configuration (snapped u into u_out, P values) given n_obs observations (U_obs n x P
 * column-major, ld_obs >= n_obs; y_obs minimised; non-finite y are ignored). With a pool,
 * the best unused row (index into *pool_index_out, else SIZE_MAX).
 * @return KB_OK; KB_ENOTFOUND (pool exhausted); KB_ENOMEM.
 */
int kb_tpe_suggest(double *u_out, size_t *pool_index_out, const kb_encode *e,
                   const double *u_obs, size_t ld_obs, size_t n_obs, const double *y_obs,
                   const kb_tpe_opts *opts, const kb_encode_pool *pool, kb_rng *rng,
                   kb_error *err);

/**
 * Random search: a uniform configuration, or a uniform unused pool row.
 * @return KB_OK; KB_ENOTFOUND (pool exhausted).
 */
int kb_tpe_suggest_random(double *u_out, size_t *pool_index_out, const kb_encode *e,
                          const kb_encode_pool *pool, kb_rng *rng, kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
