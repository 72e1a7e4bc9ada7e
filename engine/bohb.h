/*
 * BOHB's proposal step (Falkner, Klein & Hutter, "BOHB: robust and efficient hyperparameter
 * optimization at scale", ICML 2018, Algorithm 2) as a sampler for engine/hyperband.h's
 * model-based mode (or ASHA's), with kb's TPE (engine/tpe.h) as the model:
 *   with probability random_fraction (rho): a random configuration;
 *   else b = the largest budget with at least n_min finite observations
 *        (n_min = N_min + 2 with N_min = P + 1, as BOHB and hpbandster's min_points_in_model);
 *        none: a random configuration;
 *        otherwise kb_tpe_suggest on that budget's observations only (results negated first
 *        when maximising, since TPE minimises).
 * Budgets above the first must hold an unbiased sample for this to work: in Hyperband every
 * budget also gets fresh configurations (bracket s starts at r_s), but in ASHA rungs above 0
 * hold only promoted, all-good trials, so TPE's g(x) is made of good configurations and it
 * steers away from them (measured in tests/unit/test_bohb.c: worse than random). With ASHA
 * set max_budget_index = 0.
 * Differences from the paper: the model is kb's univariate TPE (Optuna-style Parzen
 * estimators, per parameter) instead of BOHB's multivariate KDE; warm starting comes for free
 * by giving the scheduler's first configurations from the knowledge base.
 * Configurations are u vectors of `encode` (P = kb_encode_n_params values).
 */
#ifndef KB_ENGINE_BOHB_H
#define KB_ENGINE_BOHB_H

#include <stddef.h>

#include "engine/core/error.h"
#include "engine/core/rng.h"
#include "engine/encode.h"
#include "engine/hyperband.h"
#include "engine/tpe.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The payload of kb_bohb_sample; fill with kb_bohb_sampler_init, then adjust. */
typedef struct kb_bohb_sampler {
    const kb_encode *encode;  /* borrowed; must outlive the scheduler */
    kb_tpe_opts tpe;          /* n_startup is ignored: n_min decides when the model starts */
    double random_fraction;   /* rho in [0, 1]; BOHB's default 1/3 */
    size_t n_min;             /* 0: P + 3 */
    int maximize;             /* must equal the scheduler's opts.maximize */
    size_t max_budget_index;  /* model only budgets 0..this (SIZE_MAX: all); 0 for ASHA */
    size_t n_model;           /* out: proposals that came from the model */
    kb_error err;             /* out: why the last call failed */
} kb_bohb_sampler;

/** Defaults: TPE's defaults, rho = 1/3, n_min = P + 3, every budget. */
void kb_bohb_sampler_init(kb_bohb_sampler *s, const kb_encode *encode, int maximize);

/**
 * A kb_hyperband_sample_fn; payload = kb_bohb_sampler *. dim must be P.
 * @return 0; KB_EINVAL (dim is not P); KB_ENOMEM; the details in the sampler's err.
 */
int kb_bohb_sample(double *u_out, size_t dim, const kb_hyperband_budget_obs *budgets,
                   size_t n_budgets, kb_rng *rng, void *payload);

#ifdef __cplusplus
}
#endif

#endif
