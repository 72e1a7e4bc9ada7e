/*
 * kb_bo_suggest: the one "what next?" entry point of a search. Stateless: the caller passes
 * everything known (observations, pending trials, the space, optionally a finite pool of
 * candidates and the neighbour tasks) and gets the next configuration, so `kb search`,
 * `kb ask` and a crashed-and-resumed study all rebuild the same call from stored trials and
 * a seed. Same inputs and seed, same answer.
 *
 * Phases of a study (y minimised; NaN y = failed trial, kept out of every model):
 *  1. warm initial design (warm NEAREST or PORTFOLIO with neighbours, AUTO's short
 *     portfolio): the next configuration of the caller's design (kb_bo_suggest_design) or
 *     else of kb_transfer_initial_design, not yet observed or pending;
 *  2. cold initial design (warm NONE, PRIORS or RGPE): n_init configurations drawn from
 *     `seed` alone, so every method shares them for a seed (BENCHMARK-PROTOCOL.md);
 *  3. the method: RANDOM; TPE (engine/tpe.h); GP with expected improvement (or PI/UCB) on
 *     the surrogate chosen by `warm`: plain GP (NONE, NEAREST, PORTFOLIO), GP with hyper-
 *     parameter priors from the neighbours (PRIORS), stacked prior mean + residual GP
 *     (STACKED; STACKED_RGPE and AUTO with weights from the target's results), RGPE ensemble
 *     (RGPE). Pending trials enter the target GP as fantasies
 *     (kb_acq_lie) with its hyperparameters fixed (constant liar / kriging believer).
 */
#ifndef KB_ENGINE_BO_H
#define KB_ENGINE_BO_H

#include <stddef.h>
#include <stdint.h>

#include "engine/acq.h"
#include "engine/core/error.h"
#include "engine/encode.h"
#include "engine/gp.h"
#include "engine/tpe.h"
#include "engine/transfer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kb_bo_method {
    KB_BO_METHOD_RANDOM = 0,
    KB_BO_METHOD_GP = 1,
    KB_BO_METHOD_TPE = 2
} kb_bo_method;

typedef enum kb_bo_warm {
    KB_BO_WARM_NONE = 0,
    KB_BO_WARM_NEAREST = 1,   /* best configurations of the nearest tasks, then the method */
    KB_BO_WARM_PORTFOLIO = 2, /* greedy portfolio, then the method */
    KB_BO_WARM_STACKED = 3,   /* GP on residuals of the neighbours' weighted mean */
    KB_BO_WARM_PRIORS = 4,    /* GP hyperparameter priors from the neighbours */
    KB_BO_WARM_RGPE = 5,      /* cold initial design, then the ranking-weighted ensemble */
    KB_BO_WARM_AUTO = 6,      /* kb's default: a greedy portfolio of auto_design points (or
                                 the caller's design, kb_bo_suggest_design), then
                                 STACKED_RGPE (no random points) with the neighbours' spread
                                 in its variance (prior_spread) */
    KB_BO_WARM_STACKED_RGPE = 7 /* GP on residuals of a prior mean sum_t w_t mu_t whose weights
                                   are the RGPE weights of the neighbour GPs on the target's
                                   results (the target's own share left out, so the prior fades
                                   when the neighbours mislead); similarity weights before two
                                   results */
} kb_bo_warm;

typedef struct kb_bo_opts {
    int version;
    kb_bo_method method;
    kb_bo_warm warm;
    size_t n_init;       /* cold initial design (3, the protocol's shared random points) */
    size_t n_warm_init;  /* warm initial design length */
    kb_acq_opts acq;
    kb_acq_liar liar;
    kb_gp_opts gp;
    kb_tpe_opts tpe;     /* n_startup is ignored: the initial design is phase 2 */
    size_t rgpe_samples;
    uint64_t seed;
    size_t auto_design;  /* KB_BO_WARM_AUTO: greedy-portfolio points before the model (1:
                            chosen on Wistuba SVM among 0, 1, 3, 5 by AUC; docs/BENCHMARKS.md) */
    double prior_spread;   /* STACKED_RGPE/AUTO: adds this times the weighted spread of the
                              neighbours' means about the prior mean (kb_transfer_spread) to
                              the predictive variance: the prior as a mixture of its tasks,
                              so the search looks where some neighbours disagree with the
                              rest; 0 = off (round 3's default); 1 chosen on Wistuba SVM and
                              half of AdaBoost among 0, 0.5, 1, 2 (docs/BENCHMARKS.md) */
    size_t cold_every;     /* STACKED_RGPE/AUTO: every cold_every-th model trial (n_obs +
                              n_pending = cold_every - 1 mod cold_every) uses the target's own
                              GP without the prior; 0 = never */
} kb_bo_opts;

#define KB_BO_OPTS_INIT                                                                      \
    {1, KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 3, 5, KB_ACQ_OPTS_INIT, KB_ACQ_LIAR_BELIEVER,      \
     KB_GP_OPTS_INIT, KB_TPE_OPTS_INIT, 256, 0, 1, 1.0, 0}

typedef struct kb_bo_problem {
    const kb_encode *enc;
    const double *u_obs;      /* n_obs x P column-major, ld_obs >= n_obs */
    size_t ld_obs, n_obs;
    const double *y_obs;      /* minimised; NaN = failed */
    const double *u_pending;  /* n_pending x P, proposed but not yet told */
    size_t ld_pending, n_pending;
    const kb_encode_pool *pool;     /* optional: choose among unused rows (observed and
                                       pending rows must be marked used by the caller) */
    const kb_transfer *transfer;    /* optional: neighbour tasks with weights; when it has
                                       cached `pool`, its predictions are reused */
} kb_bo_problem;

typedef enum kb_bo_phase {
    KB_BO_PHASE_WARM_INIT = 0,
    KB_BO_PHASE_COLD_INIT = 1,
    KB_BO_PHASE_MODEL = 2
} kb_bo_phase;

/** What a suggestion was based on, for the study record. */
typedef struct kb_bo_info {
    kb_bo_phase phase;
    size_t pool_index;     /* row of the pool, or SIZE_MAX */
    double acq_value;      /* acquisition at the suggestion (NaN outside the GP phase) */
    int gp_converged;      /* of the target GP's hyperparameter fit (1 when not fitted) */
    double target_weight;  /* RGPE weight of the target's own model (NaN if not RGPE) */
    size_t n_neighbours;   /* neighbour tasks with weight > 0 that were used */
} kb_bo_info;

/**
 * The next configuration to evaluate (snapped u, P values).
 * @param[out] info_out may be NULL.
 * @return KB_OK; KB_EINVAL (bad problem); KB_ENOTFOUND (pool exhausted); KB_ENUMERIC;
 *         KB_ENOMEM.
 */
int kb_bo_suggest(double *u_out, kb_bo_info *info_out, const kb_bo_problem *prob,
                  const kb_bo_opts *opts, kb_error *err);

/**
 * kb_bo_suggest with the caller's warm initial design: u_design (n_design x P, column-major,
 * ld_design >= n_design), best first — e.g. the list kb recommend ranks for the task — in
 * place of kb_transfer_initial_design for phase 1 (warm NEAREST, PORTFOLIO, AUTO: its first
 * n_warm_init or auto_design rows not yet observed or pending). n_design 0 = kb_bo_suggest.
 * @return as kb_bo_suggest.
 */
int kb_bo_suggest_design(double *u_out, kb_bo_info *info_out, const kb_bo_problem *prob,
                         const double *u_design, size_t ld_design, size_t n_design,
                         const kb_bo_opts *opts, kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
