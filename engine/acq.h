/*
 * Acquisition functions and their maximisation over a mixed search space.
 *
 * Convention: the objective y is MINIMISED (negate a metric to maximise it) and every
 * acquisition is larger-is-better. With posterior mean mu, standard deviation s, incumbent
 * tau (best y so far) and imp = tau - mu - xi, z = imp / s:
 *   EI  = imp Phi(z) + s phi(z)            (Jones et al. 1998; computed without cancellation:
 *         for z < -6 through the Laplace continued fraction of Mills' ratio, and Phi with erfc)
 *   PI  = Phi(z)
 *   UCB = -(mu - kappa s)                  (lower confidence bound of a minimisation)
 * For a maximised metric m = -y these are exactly EI/PI/UCB of m with tau = best m.
 *
 * Maximisation: the acquisition is evaluated on random configurations (snapped, conditions
 * honoured) and the best few start a local search of neighbour moves in u (numeric parameters
 * +- a step that halves when no neighbour improves, every other choice of a categorical, bool
 * flips); or, given a pool, on every unused pool row. Batch proposals with pending trials use
 * fantasies (Ginsbourger et al. 2010): constant liar (min, mean or max of the observed y) or
 * kriging believer (the model's mean), see kb_acq_lie.
 */
#ifndef KB_ENGINE_ACQ_H
#define KB_ENGINE_ACQ_H

#include <stddef.h>

#include "engine/core/error.h"
#include "engine/core/rng.h"
#include "engine/encode.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kb_acq_kind {
    KB_ACQ_KIND_EI = 0,
    KB_ACQ_KIND_PI = 1,
    KB_ACQ_KIND_UCB = 2
} kb_acq_kind;

typedef enum kb_acq_liar {
    KB_ACQ_LIAR_MIN = 0,     /* constant liar, optimistic: the best observed y */
    KB_ACQ_LIAR_MEAN = 1,    /* constant liar: the mean observed y */
    KB_ACQ_LIAR_MAX = 2,     /* constant liar, pessimistic: the worst observed y */
    KB_ACQ_LIAR_BELIEVER = 3 /* kriging believer: the model's posterior mean */
} kb_acq_liar;

/** Expected improvement below tau (>= 0), stable in the far tail. */
double kb_acq_ei(double mu, double sigma, double tau, double xi);
/** Probability of improvement Phi((tau - mu - xi) / sigma). */
double kb_acq_pi(double mu, double sigma, double tau, double xi);
/** -(mu - kappa sigma). */
double kb_acq_ucb(double mu, double sigma, double kappa);
/**
 * Acquisition of `kind` for m points from posterior means and variances (var < 0 treated as
 * 0); `param` is xi for EI/PI and kappa for UCB.
 */
void kb_acq_eval(double *out, kb_acq_kind kind, const double *mean, const double *var, size_t m,
                 double tau, double param);

/**
 * Posterior of the surrogate at m points given by their kernel features x (m x D, ld_x).
 * Returns KB_OK or a KB_E* code (it may fill `err`).
 */
typedef int (*kb_acq_predict_fn)(double *mean_out, double *var_out, const double *x, size_t ld_x,
                                 size_t m, void *payload, kb_error *err);

typedef struct kb_acq_opts {
    int version;
    kb_acq_kind kind;
    double xi;            /* EI/PI margin */
    double kappa;         /* UCB width */
    size_t n_candidates;  /* random configurations scored first */
    size_t n_local;       /* best candidates refined by local search */
    size_t max_local_iter;
} kb_acq_opts;

#define KB_ACQ_OPTS_INIT {1, KB_ACQ_KIND_EI, 0.0, 2.0, 1000, 5, 30}

/**
 * The configuration (snapped u) maximising the acquisition; with a pool, the best unused row
 * (its index into *pool_index_out, else SIZE_MAX).
 * @param[out] value_out the acquisition there (may be NULL).
 * @return KB_OK; KB_ENOTFOUND when the pool has no unused row; the predictor's error;
 *         KB_ENOMEM.
 */
int kb_acq_maximize(double *u_out, double *value_out, size_t *pool_index_out, const kb_encode *e,
                    kb_acq_predict_fn predict, void *payload, double tau,
                    const kb_acq_opts *opts, const kb_encode_pool *pool, kb_rng *rng,
                    kb_error *err);

/**
 * Fantasy values for pending trials: constant liar from y_obs (n_obs values), or the model's
 * means (mean_pending, n_pending values) for the kriging believer.
 */
void kb_acq_lie(double *y_out, kb_acq_liar liar, const double *y_obs, size_t n_obs,
                const double *mean_pending, size_t n_pending);

#ifdef __cplusplus
}
#endif

#endif
