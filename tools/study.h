/*
 * A search study on top of the store and the engine: create one (choosing and weighting the
 * neighbour tasks that will warm it), ask it for the next trial, tell it a trial's result.
 * `kb search`, `kb ask` and `kb tell` are thin layers over this module, and benchmarks drive it
 * in-process.
 *
 * Everything a study knows lives in the store: the study record (kb/record.h kb_study: task,
 * space, objective, method, warm start, seed, neighbours with weights) and its trials, which
 * are ordinary runs with study_id set and id "<study id>:<trial number>". A trial that was
 * asked but not yet told is a run with status running. Asking is deterministic: the same
 * stored trials and the same seed give the same next configuration (engine/bo.h is stateless),
 * so a crashed search resumes exactly by reopening the study.
 *
 * Results are modelled minimised: y = value for a minimised objective, -value for a
 * maximised one. A pruned trial counts with the last value it reached (the monitor stopped it
 * because it had converged or could not win, so that value is what it achieved); a trial that
 * failed or diverged has y = NaN and stays out of the models (it still counts as tried, so
 * its configuration is not proposed again).
 */
#ifndef KB_TOOLS_STUDY_H
#define KB_TOOLS_STUDY_H

#include <stddef.h>
#include <stdint.h>

#include "engine/bo.h"
#include "engine/core/error.h"
#include "kb/record.h"
#include "kb/store.h"

#define STUDY_DEFAULT_NEIGHBOURS 20
/* The configuration key of the architecture an architecture search (adarandom, reinforce)
   proposes: a layer string in the seed notation, beside the space's own parameters. */
#define STUDY_ARCH_PARAM "arch"

/** What `study_create` needs; zero/NULL fields take the defaults named. */
typedef struct study_create_opts {
    const char *id;          /* NULL: "s-" + 12 hex digits of a hash of the inputs and time */
    const char *task_id;     /* required: a stored task */
    const char *space;       /* required: a stored space */
    const char *objective;   /* NULL: the most common objective of comparable runs */
    int direction;           /* a kb_direction, or -1: from those runs, else from the name */
    const char *method;      /* NULL = "gp"; see study_method_parse */
    const char *warm_start;  /* NULL = "auto"; see study_warm_parse */
    size_t n_neighbours;     /* 0 = STUDY_DEFAULT_NEIGHBOURS */
    const char *const *exclude; /* task ids never used as neighbours */
    size_t n_exclude;
    uint64_t seed;
    const char *command;     /* recorded as is; may be NULL */
    const char *team;
    const char *extra;       /* canonical JSON object text of the other options, or NULL */
} study_create_opts;

/** Method names: random, gp, tpe (model-based, asked one trial at a time), the schedulers
 *  hyperband, bohb, asha, and the architecture searches adarandom, reinforce (the last five
 *  driven by `kb search` only). @return 0, or -1 for an unknown name. */
int study_method_parse(kb_bo_method *out, int *scheduler_out, const char *name);
/** Warm-start names: none, nearest, portfolio, stacked, priors, rgpe, auto. */
int study_warm_parse(kb_bo_warm *out, const char *name);
/** The direction a metric name suggests: minimize for loss/error/rmse/mae/mse/time names. */
kb_direction study_guess_direction(const char *objective);

/**
 * Create and store a study. Neighbours: the stored tasks of the same task type (when known)
 * with ok runs in the space that report the objective, excluding the study's own task and
 * `exclude`; when the task has meta-features, the `n_neighbours` nearest by L1 distance on
 * robustly scaled meta-features (engine/similarity.h), weighted as `kb recommend` weights
 * them (its similarity model, kb_recommend_model_fit on the 16 nearest by the model's distance
 * and kb_recommend_model_weights, on the neighbours' results in the space; the nearest
 * KB_RECOMMEND_MODEL_MAX_TASKS are weighed, the rest get 0); otherwise up to `n_neighbours`
 * of them (most runs first), weight 1.
 * @param[out] out the stored study (caller releases with kb_study_release).
 * @return KB_OK; KB_ENOTFOUND (task or space not stored); KB_EINVAL (bad option, no objective
 *         known); KB_ESTORE, KB_ENOMEM.
 */
int study_create(kb_study *out, kb_store *store, const study_create_opts *opts, kb_error *err);

/** One trial as the study holds it. */
typedef struct study_trial {
    size_t number;
    char *run_id;            /* "<study id>:<number>" */
    kb_param *config;        /* sorted by name */
    size_t n_config;
    kb_run_status status;
    double value;            /* the objective as reported (NaN if none) */
    double *u;               /* encoded configuration (engine/encode.h), P values */
    int encoded;             /* 0: the configuration does not fit the space (kept out of
                                the models) */
    int pool_marked;         /* internal: its candidate-pool rows are marked used */
} study_trial;

typedef struct study study;

/**
 * Load a study with its space and trials. Neighbour data and models are loaded at the first
 * ask that needs them.
 * @return KB_OK; KB_ENOTFOUND (no such study, or its space is missing); KB_ESTORE; KB_ENOMEM.
 */
int study_open(study **out, kb_store *store, const char *id, kb_error *err);
void study_close(study *s);

const kb_study *study_record(const study *s);
const kb_space *study_space(const study *s);
const kb_encode *study_encode(const study *s);
size_t study_n_trials(const study *s);
const study_trial *study_trial_at(const study *s, size_t i);
/** The trial with this number or run id ("7" or "<study>:7"), or NULL. */
const study_trial *study_find_trial(const study *s, const char *ref);
/** Index of the trial with this number, or SIZE_MAX. */
size_t study_index_of(const study *s, size_t number);
/** Whether a trial's value counts (ok or pruned, with a finite objective). */
int study_trial_counts(const study_trial *t);
/** Index of the best counting trial (by the study's direction), or SIZE_MAX if none. */
size_t study_best(const study *s);
int study_scheduler(const study *s); /* 1 for hyperband/bohb/asha, 2 for adarandom/reinforce */
/**
 * The first configurations of a scheduled study (hyperband, bohb, asha), warm-started from
 * its neighbours: up to `k` rows of the study's encoding (row i at u_out[i * p], p =
 * kb_encode_n_params) — for warm start auto the list kb recommend ranks from the
 * neighbours' results with the study's neighbour weights (as study_ask's first trials), for
 * portfolio the neighbours' greedy portfolio over their candidate pool, for nearest each
 * nearest neighbour's best. `*n_out` = 0 for warm start none, no neighbours, or neighbours
 * without runs in the space.
 * @return KB_OK; the store's errors; KB_ENOMEM.
 */
int study_initial_design(double *u_out, size_t *n_out, study *s, kb_store *store, size_t k,
                         kb_error *err);

/**
 * Propose the next trial and store it as a running run (pending trials are taken into account,
 * so several may be asked before any is told). `fidelity` (may be NULL) is recorded with it.
 * @param[out] info_out may be NULL.
 * @return index of the new trial via *index_out; KB_OK; KB_EINVAL (a scheduler method);
 *         KB_ENUMERIC; KB_ESTORE; KB_ENOMEM.
 */
int study_ask(size_t *index_out, kb_bo_info *info_out, study *s, kb_store *store,
              const kb_param *fidelity, size_t n_fidelity, kb_error *err);

/**
 * Store a given configuration as a new running trial (schedulers and externally chosen
 * configurations); it is validated against the space (an architecture search's
 * STUDY_ARCH_PARAM aside).
 */
int study_add_trial(size_t *index_out, study *s, kb_store *store, const kb_param *config,
                    size_t n_config, const kb_param *fidelity, size_t n_fidelity,
                    const char *extra, kb_error *err);

/** A finished trial. */
typedef struct study_result {
    kb_run_status status;    /* ok, failed, diverged or pruned */
    const kb_metric *metrics; /* final metrics (need not include the objective if not ok) */
    size_t n_metrics;
    const kb_series *curve;
    size_t n_curve;
    double cost_s;           /* NaN if unknown */
    const char *extra;       /* canonical JSON object text (reason, verdict, ...) or NULL */
} study_result;

/**
 * Record a trial's result: the running run becomes a finished one (kb_store_update_run). An
 * ok result without a finite objective is stored as failed (diverged when it is NaN/inf).
 * Telling a trial that is already finished is KB_EEXISTS unless the result is identical.
 * @return KB_OK; KB_ENOTFOUND (no such trial); KB_EEXISTS (already told); KB_ESTORE; KB_ENOMEM.
 */
int study_tell(study *s, kb_store *store, size_t index, const study_result *result,
               kb_error *err);

#endif
