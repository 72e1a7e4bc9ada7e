/*
 * Hyperband and successive halving (Li, Jamieson, DeSalvo, Rostamizadeh & Talwalkar,
 * "Hyperband: a novel bandit-based approach to hyperparameter optimization", ICLR 2017 /
 * JMLR 18(185), 2018, Algorithm 1), with a model-based sampler hook for BOHB (Falkner, Klein
 * & Hutter, ICML 2018).
 *
 * The plan (Algorithm 1, for maximum resource R and proportion eta > 1):
 *   s_max = floor(log_eta(R)),  B = (s_max + 1) R
 *   for s = s_max, ..., 0 (one bracket each):
 *     n = ceil(B / R * eta^s / (s + 1)),  r = R eta^-s
 *     successive halving: for i = 0, ..., s:  n_i = floor(n eta^-i),  r_i = r eta^i,
 *       run the n_i configurations for r_i, keep the best floor(n_i / eta) (= n_{i+1}).
 * For R = 81, eta = 3 this gives the paper's Table 1 (s=4: 81x1, 27x3, 9x9, 3x27, 1x81;
 * s=3: 34x3, 11x9, 3x27, 1x81; ...; s=0: 5x81). Powers and logs are computed with a 1e-9
 * relative slack so that exact powers (log_3 81 = 4) are not lost to rounding.
 *
 * The scheduler is driven by a search loop: kb_hyperband_get_job() hands out (trial,
 * resource) jobs, kb_hyperband_report() takes each result. A rung's promotions happen when
 * all of its jobs are reported (synchronous successive halving): the n_{i+1} best trials by
 * the objective direction (ties: the smaller trial id) go on to r_{i+1}, and their jobs say
 * how much resource they already had (`resume_from`) so a trainer can resume a snapshot.
 * Brackets run one after another; while a rung waits for results the scheduler answers
 * KB_HYPERBAND_JOB_WAIT (ASHA, engine/asha.h, is the asynchronous alternative).
 *
 * New configurations come from a sampler callback as points u in [0, 1]^dim (the u
 * representation of engine/encode.h). In model-based mode (BOHB) the sampler also gets every
 * finite result so far grouped by resource (kb_hyperband_budget_obs, column-major, ready for
 * kb_tpe_suggest); BOHB fits its model on the largest budget with enough observations
 * (kb_hyperband_bohb_budget, engine/bohb.h). Non-finite results (failed trials) rank last
 * and are left out of the observations; the plan's rung sizes are kept, so a failed trial is
 * promoted only when fewer than n_{i+1} trials of its rung succeeded. Same seed, same sampler: same jobs.
 */
#ifndef KB_ENGINE_HYPERBAND_H
#define KB_ENGINE_HYPERBAND_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/error.h"
#include "engine/core/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KB_HYPERBAND_MAX_BRACKETS 32
#define KB_HYPERBAND_MAX_RUNGS 32
#define KB_HYPERBAND_MAX_CONFIGS 100000000 /* configurations in one bracket's first rung */

/** One rung of a bracket: n_configs configurations each run for `resource`. */
typedef struct kb_hyperband_rung {
    size_t n_configs;
    double resource;
} kb_hyperband_rung;

/** One bracket (one run of successive halving); s = n_rungs - 1 for a Hyperband bracket. */
typedef struct kb_hyperband_bracket {
    size_t s;
    size_t n_rungs;
    kb_hyperband_rung rungs[KB_HYPERBAND_MAX_RUNGS];
} kb_hyperband_bracket;

/** A plan: the brackets in the order they run (s = s_max first for Hyperband). */
typedef struct kb_hyperband_plan {
    double max_resource; /* R */
    double eta;
    size_t s_max;
    double budget;       /* B = (s_max + 1) R */
    size_t n_brackets;
    kb_hyperband_bracket brackets[KB_HYPERBAND_MAX_BRACKETS];
} kb_hyperband_plan;

/**
 * The Hyperband plan for maximum resource R (in units of the minimum resource, so R >= 1)
 * and eta > 1.
 * @return KB_OK; KB_EINVAL for R < 1, eta <= 1, non-finite values, s_max >= 32 or a bracket
 * of more than KB_HYPERBAND_MAX_CONFIGS configurations.
 */
int kb_hyperband_plan_make(kb_hyperband_plan *out, double max_resource, double eta,
                           kb_error *err);

/**
 * A one-bracket plan: successive halving of n configurations from min_resource up to at most
 * max_resource (rungs i = 0.. while r_i = min_resource eta^i <= R and n_i = floor(n eta^-i)
 * >= 1).
 * @return KB_OK; KB_EINVAL for n = 0 or > KB_HYPERBAND_MAX_CONFIGS, min_resource <= 0 or >
 * max_resource, eta <= 1.
 */
int kb_hyperband_plan_sh(kb_hyperband_plan *out, size_t n, double min_resource,
                         double max_resource, double eta, kb_error *err);

/** Jobs handed out over one pass of `plan` (sum of n_i over all rungs). */
size_t kb_hyperband_plan_n_jobs(const kb_hyperband_plan *plan);
/** New configurations over one pass of `plan` (sum of n_0 over brackets). */
size_t kb_hyperband_plan_n_configs(const kb_hyperband_plan *plan);

/** The finite results at one resource: n points u (column-major, ld >= n, dim rows). */
typedef struct kb_hyperband_budget_obs {
    double resource;
    size_t n;
    size_t ld;
    const double *u; /* element (j, k) of observation j, parameter k: u[j + k * ld] */
    const double *y;
} kb_hyperband_budget_obs;

/**
 * Sampler: write a new configuration u in [0, 1]^dim into u_out. `budgets` (ascending
 * resource) is NULL with n_budgets 0 unless the scheduler is model-based. Return 0, or a
 * non-zero code that stops the scheduler's call and is returned by it (KB_ECANCELED for a
 * positive value).
 */
typedef int (*kb_hyperband_sample_fn)(double *u_out, size_t dim,
                                      const kb_hyperband_budget_obs *budgets, size_t n_budgets,
                                      kb_rng *rng, void *payload);

/**
 * BOHB's choice of model budget: the index of the largest resource with at least `n_min`
 * observations, or SIZE_MAX if none (then sample at random). BOHB uses n_min = dim + 3
 * (engine/bohb.h).
 */
size_t kb_hyperband_bohb_budget(const kb_hyperband_budget_obs *budgets, size_t n_budgets,
                                size_t n_min);

typedef struct kb_hyperband_opts {
    int version;
    int maximize;         /* 1: larger results are better; 0: smaller (a loss) */
    size_t n_iterations;  /* passes over the plan (Hyperband's outer loop); 0 means 1 */
    int model_based;      /* 1: the sampler gets the observations per budget (BOHB) */
    uint64_t seed;
} kb_hyperband_opts;

#define KB_HYPERBAND_OPTS_VERSION 1
#define KB_HYPERBAND_OPTS_INIT {KB_HYPERBAND_OPTS_VERSION, 0, 1, 0, 0}

typedef enum kb_hyperband_job_status {
    KB_HYPERBAND_JOB_RUN = 0,  /* run the job described */
    KB_HYPERBAND_JOB_WAIT = 1, /* nothing to start until a pending job is reported */
    KB_HYPERBAND_JOB_DONE = 2  /* the schedule is finished */
} kb_hyperband_job_status;

/** A job: train `trial` up to `resource` (it has already had `resume_from`). */
typedef struct kb_hyperband_job {
    kb_hyperband_job_status status;
    size_t trial;        /* index of the configuration; see kb_hyperband_trial_config */
    size_t iteration;    /* pass over the plan */
    size_t bracket;      /* index into plan.brackets */
    size_t rung;
    double resource;
    double resume_from;  /* 0 for a new configuration */
} kb_hyperband_job;

typedef struct kb_hyperband kb_hyperband;

/**
 * A scheduler for `plan` over configurations of `dim` parameters, sampled by `sample`
 * (NULL: uniform on [0, 1]^dim). `plan` and opts are copied; `payload` is borrowed.
 * @return KB_OK; KB_EINVAL (dim 0, an empty or increasing plan); KB_ENOMEM.
 * Caller owns `*out`; free with kb_hyperband_free().
 */
int kb_hyperband_new(kb_hyperband **out, const kb_hyperband_plan *plan, size_t dim,
                     kb_hyperband_sample_fn sample, void *payload,
                     const kb_hyperband_opts *opts, kb_error *err);
void kb_hyperband_free(kb_hyperband *hb);

/**
 * The next job (status RUN), or WAIT / DONE. Samples the configuration of a new trial.
 * @return KB_OK; the sampler's code; KB_ENOMEM.
 */
int kb_hyperband_get_job(kb_hyperband_job *out, kb_hyperband *hb, kb_error *err);

/**
 * The result of the pending job of `trial` (non-finite = failed, ranks last). When it
 * completes a rung, the rung's promotions are made (kb_hyperband_promotions).
 * @return KB_OK; KB_EINVAL if `trial` has no pending job; KB_ENOMEM.
 */
int kb_hyperband_report(kb_hyperband *hb, size_t trial, double y, kb_error *err);

/**
 * Trials promoted when the last rung completed, best first; borrowed until the next
 * report. *n_out = 0 if none (also after a bracket's last rung).
 */
const size_t *kb_hyperband_promotions(const kb_hyperband *hb, size_t *n_out);

/** Configurations sampled so far. */
size_t kb_hyperband_n_trials(const kb_hyperband *hb);
/** The u point of `trial` (dim values), borrowed from hb; NULL if out of range. */
const double *kb_hyperband_trial_config(const kb_hyperband *hb, size_t trial);
/** The observations per budget so far (ascending resource), borrowed until the next call. */
const kb_hyperband_budget_obs *kb_hyperband_budgets(const kb_hyperband *hb, size_t *n_out);

/**
 * The best result at the largest resource reached so far.
 * @return KB_OK; KB_ENOTFOUND if no finite result yet.
 */
int kb_hyperband_best(size_t *trial_out, double *y_out, double *resource_out,
                      const kb_hyperband *hb, kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
