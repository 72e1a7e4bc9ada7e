/*
 * ASHA: asynchronous successive halving (Li, Jamieson, Rostamizadeh, Gonina, Ben-Tzur, Hardt,
 * Recht & Talwalkar, "A system for massively parallel hyperparameter tuning", MLSys 2020,
 * Algorithm 2), for any number of workers that ask for jobs and report results in any order.
 *
 * Rungs: s_max = floor(log_eta(R / r)); rung k = 0, ..., s_max - s trains for r eta^(s + k)
 * (r the minimum resource, R the maximum, s the minimum early-stopping rate).
 * get_job (Algorithm 2's get_job, verbatim):
 *   for k = top rung - 1 down to 0:
 *     candidates = the best floor(|rung k| / eta) of the results COMPLETED at rung k
 *                  (best by the objective direction; ties: the smaller trial id)
 *     if some candidate has not been promoted from rung k yet: promote the best such one
 *     to rung k + 1 (job: that trial at r_{k+1}, resume_from r_k)
 *   otherwise start a new configuration at rung 0 (from the sampler of engine/hyperband.h).
 * A trial is promoted at most once from each rung. Jobs still running count nowhere until
 * reported. With max_configs > 0, once that many configurations exist get_job only promotes;
 * it answers WAIT while jobs are pending and DONE when nothing is pending or promotable.
 * Non-finite results (failed trials) rank last and are never promoted. Same seed, same sampler, same report order: same jobs.
 */
#ifndef KB_ENGINE_ASHA_H
#define KB_ENGINE_ASHA_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/error.h"
#include "engine/hyperband.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kb_asha_opts {
    int version;
    int maximize;          /* 1: larger results are better */
    double min_resource;   /* r > 0 */
    double max_resource;   /* R >= r */
    double eta;            /* > 1 */
    size_t min_early_stopping_rate; /* s, <= s_max */
    size_t max_configs;    /* 0: unlimited (the caller stops) */
    int model_based;       /* 1: the sampler gets the observations per rung (BOHB-style) */
    uint64_t seed;
} kb_asha_opts;

#define KB_ASHA_OPTS_VERSION 1
#define KB_ASHA_OPTS_INIT {KB_ASHA_OPTS_VERSION, 0, 1.0, 81.0, 3.0, 0, 0, 0, 0}

typedef struct kb_asha kb_asha;

/**
 * An ASHA scheduler over configurations of `dim` parameters (`sample` NULL: uniform).
 * @return KB_OK; KB_EINVAL (dim 0, bad resources or eta, s > s_max, more than 32 rungs);
 * KB_ENOMEM. Caller owns `*out`; free with kb_asha_free().
 */
int kb_asha_new(kb_asha **out, size_t dim, kb_hyperband_sample_fn sample, void *payload,
                const kb_asha_opts *opts, kb_error *err);
void kb_asha_free(kb_asha *a);

/**
 * The next job for a free worker: a promotion or a new configuration (status RUN, with
 * bracket = s, iteration = 0), or WAIT / DONE (only with max_configs).
 * @return KB_OK; the sampler's code; KB_ENOMEM.
 */
int kb_asha_get_job(kb_hyperband_job *out, kb_asha *a, kb_error *err);

/**
 * The result of the pending job of `trial`.
 * @return KB_OK; KB_EINVAL if `trial` has no pending job; KB_ENOMEM.
 */
int kb_asha_report(kb_asha *a, size_t trial, double y, kb_error *err);

/** Number of rungs (s_max - s + 1). */
size_t kb_asha_n_rungs(const kb_asha *a);
/** Resource of rung k (0 if k is out of range). */
double kb_asha_rung_resource(const kb_asha *a, size_t k);
/** The trials with a completed result at rung k, best first; borrowed until the next report. */
const size_t *kb_asha_rung_trials(const kb_asha *a, size_t k, size_t *n_out);
/** Configurations sampled so far. */
size_t kb_asha_n_trials(const kb_asha *a);
/** Jobs handed out and not yet reported. */
size_t kb_asha_n_pending(const kb_asha *a);
/** The u point of `trial`, borrowed; NULL if out of range. */
const double *kb_asha_trial_config(const kb_asha *a, size_t trial);

/**
 * The best result at the highest rung that has one.
 * @return KB_OK; KB_ENOTFOUND if no finite result yet.
 */
int kb_asha_best(size_t *trial_out, double *y_out, double *resource_out, const kb_asha *a,
                 kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
