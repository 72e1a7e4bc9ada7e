/*
 * Recommending configurations for a new task from its neighbours' results.
 *
 * Input is a score table: for each of T neighbour tasks and C candidate configurations, the
 * task's normalised score s[t, c] in [0, 1] (1 = the best result seen on that task, 0 = the
 * worst; kb_recommend_normalize makes it from raw results and their direction), NaN where the
 * task has no result for that configuration (a caller may fill those from a per-task model and
 * pass the model's variance), and a non-negative weight per task (its similarity to the new
 * task).
 *
 * Prediction for the new task, per configuration: the weighted mean score over the tasks that
 * have it, mu(c) = sum_t w_t s[t,c] / sum_t w_t, and an uncertainty that adds the weighted
 * spread across tasks to the propagated model variance,
 *   sd(c)^2 = sum_t w_t (s[t,c] - mu)^2 / sum_t w_t + sum_t w_t^2 v[t,c] / (sum_t w_t)^2.
 *
 * Ranking: the first pick maximises mu. Later picks are chosen greedily for the expected best
 * of the list — pick c maximising sum_t w_t max(s[t,c], b_t), where b_t is the best score task
 * t already gets from the list — so the list hedges across neighbours instead of repeating
 * near-identical configurations (a similarity-weighted version of the greedy portfolio of
 * Feurer et al. 2015 / Wistuba et al. 2015): this minimises the weighted mean normalised regret
 * 1 - b_t of the list so far over the neighbours. How much to hedge is a blend, `hedge` = beta
 * in [0, 1]: the greedy key is
 *   sum_t w_t (beta max(s[t,c], b_t) + (1 - beta) s[t,c]) / sum_t w_t,
 * so beta = 1 is the weighted greedy portfolio and beta = 0 lists by weighted mean alone (each
 * configuration on its own merit; unknown scores count as 0 in both terms). Where the
 * neighbours' results are noisy, hedging for each neighbour's idiosyncrasies can do worse on a
 * new task than the plain ranking; kb_recommend_tune chooses beta by leave-one-out. Keys within
 * 1e-9 count as equal and go to the higher mean, then to the lower configuration index.
 */
#ifndef KB_ENGINE_RECOMMEND_H
#define KB_ENGINE_RECOMMEND_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kb_recommend_item {
    size_t config;     /* column of the score table */
    double mean;       /* predicted normalised score on the new task, in [0, 1] */
    double sd;         /* its uncertainty */
    double coverage;   /* share of the total weight from tasks that evaluated it */
    double list_value; /* weighted expected best score of the list up to this item */
} kb_recommend_item;

typedef struct kb_recommend_opts {
    int version;
    int diversify;          /* 1: greedy expected-best list (default); 0: sort by mean */
    double min_coverage;    /* skip configurations evaluated by less than this weight share */
    double hedge;           /* beta in [0, 1] of the greedy key (version 2; 1 = portfolio) */
    size_t first;           /* version 3: the configuration to list first (its mean, sd and
                             * list value as any item's; ignored when out of range, unknown to
                             * every weighted task or below min_coverage); SIZE_MAX: none */
} kb_recommend_opts;

#define KB_RECOMMEND_OPTS_VERSION 3
#define KB_RECOMMEND_OPTS_INIT {KB_RECOMMEND_OPTS_VERSION, 1, 0.0, 1.0, SIZE_MAX}

/**
 * Min-max normalise one task's raw results y[0..n) in place into [0, 1], 1 = best for the
 * direction (maximize != 0: larger is better). NaN stays NaN; a task whose results are all
 * equal gets 1 everywhere (every configuration is the best there).
 */
void kb_recommend_normalize(double *y, size_t n, int maximize);

/**
 * Rank up to `k` configurations for the new task.
 * @param scores  T x C column-major (scores[t + c * n_tasks]), NaN = unknown
 * @param var     the same shape of model variances for filled-in scores, or NULL (all 0)
 * @param weights T non-negative task weights (not all zero)
 * @param[out] out k items, best first; `*n_out` says how many were filled
 * @return KB_OK; KB_EINVAL for a bad argument (e.g. all weights zero, hedge outside [0, 1]);
 *         KB_ENOMEM.
 */
int kb_recommend_rank(kb_recommend_item *out, size_t *n_out, const double *scores,
                      const double *var, size_t n_tasks, size_t n_configs,
                      const double *weights, size_t k, const kb_recommend_opts *opts,
                      kb_error *err);

/**
 * Task weights from distances: w_t = floor + exp(-(d_t / h)^2), h = bandwidth times the
 * median of the finite distances (or 1). The floor is a share of uniform weight that keeps
 * every task in play when the meta-features mislead. Infinite distances get only the floor.
 */
void kb_recommend_weights(double *w_out, const double *dist, size_t n, double bandwidth,
                          double floor);

/** How kb_recommend_weights should weight tasks and how much the list hedges. */
typedef struct kb_recommend_weighting {
    double bandwidth;
    double floor;
    double loo_regret; /* the inner leave-one-out regret that chose it */
    double hedge;      /* kb_recommend_opts.hedge to rank with (1 when not chosen) */
} kb_recommend_weighting;

/**
 * Choose the weighting from the knowledge base alone, in two steps by leave-one-out: hold out
 * each knowledge-base task in turn, rank configurations for it from the others, and average its
 * regret 1 - max(score) over list lengths 1..k_eval. First, with hedge 1, every (bandwidth,
 * floor) on a fixed grid; keep the lowest mean (ties to the earlier grid point). Then, with
 * that weighting, hedge in {0, 0.25, 0.5, 0.75, 1}; keep the lowest mean, ties to the larger
 * hedge (so hedge stays 1 unless less hedging does strictly better). `loo_regret` is the mean
 * of the final choice. Nested inside an outer leave-one-out it never sees the outer target.
 * @param scores T x C column-major normalised scores (kb_recommend_normalize), NaN unknown
 * @param dist   T x T column-major meta-feature distances between the knowledge-base tasks
 * @return KB_OK; KB_EINVAL with fewer than 3 tasks; KB_ENOMEM.
 */
int kb_recommend_tune(kb_recommend_weighting *out, const double *scores, const double *dist,
                      size_t n_tasks, size_t n_configs, size_t k_eval, kb_error *err);

/* ---- the similarity model: task weights from a Gaussian process over meta-features ---- */

/**
 * How far meta-feature similarity predicts a task's scores, fitted on the knowledge base.
 *
 * Model: for every configuration c, the normalised scores of the n tasks are
 *   y_c ~ N(m_c 1, sigma_c^2 (r K + I)),   K_ij = exp(-d_ij / h)
 * (d = L1 meta-feature distance: the Laplacian kernel, positive semi-definite for L1), with its
 * own mean m_c and variance sigma_c^2 per configuration and one (h, r) shared by all. r is the
 * signal: the share of a task's deviation from the configuration's mean that similar tasks
 * share, over the share that is the task's own; r = 0 says the meta-features do not predict
 * scores, and the model's weights are then uniform (the greedy portfolio). (h, r) maximise the
 * restricted likelihood (m_c and sigma_c^2 profiled out) summed over the configurations every
 * task evaluated, on a grid: h = bandwidth x the median task distance, bandwidth in {0.25, 0.5,
 * 1, 2, 4}, r in {0, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100}; ties keep r = 0 and the smaller
 * bandwidth. Pooling the configurations gives the fit C draws of the same n-task structure,
 * which is what lets it say "no signal" on a few dozen tasks where a leave-one-out choice among
 * weightings mostly picks noise.
 */
typedef struct kb_recommend_model {
    double bandwidth;  /* h as a multiple of the median task distance */
    double length;     /* h itself */
    double signal;     /* r (0: meta-features uninformative; uniform weights) */
    double hedge;      /* kb_recommend_opts.hedge, chosen by kb_recommend_model_weights */
    double loo_regret; /* the leave-one-out regret that chose the hedge; NaN when not chosen */
} kb_recommend_model;

/**
 * How many of its nearest tasks `kb recommend` lets the similarity model weigh (the rest of
 * the neighbourhood gets weight 0): a bound on the work per query, O(M^2) distances, an O(M^3)
 * factorisation and a leave-one-out over M tasks.
 */
#define KB_RECOMMEND_MODEL_MAX_TASKS 128

/**
 * Fit the similarity model's (h, r) on n knowledge-base tasks (see kb_recommend_model).
 * With fewer than 3 tasks, or no configuration evaluated on all of them, the uniform model
 * (r = 0, bandwidth 1, h = the median distance or 1). `hedge` is set to 1, `loo_regret` NaN.
 * @param scores T x C column-major normalised scores (kb_recommend_normalize), NaN unknown
 * @param pair   T x T column-major meta-feature distances between the tasks
 * @return KB_OK; KB_EINVAL; KB_ENOMEM; KB_ENUMERIC (eigendecomposition failed, cause = info).
 */
int kb_recommend_model_fit(kb_recommend_model *out, const double *scores, const double *pair,
                           size_t n_tasks, size_t n_configs, kb_error *err);

/**
 * Task weights for a new task from the fitted model, and the hedge.
 *
 * Weights: the Gaussian-process posterior mean of the new task's score on any configuration is
 * sum_t alpha_t y_t (alpha sums to 1; with r = 0 every alpha_t = 1/n); w_out[t] = max(alpha_t,
 * 0). The model's tasks may be more than it was fitted on (e.g. fitted on the nearest 16, used
 * on all). If r K + I does not factor (possible only where missing meta-features make the L1
 * kernel indefinite), the uniform model is used and `model->signal` becomes 0.
 *
 * Hedge: for each task listed in `inner`, its own weights from the other tasks (the exact
 * leave-one-out of the same model, no refit) rank a list with each hedge in {0, 0.25, 0.5,
 * 0.75, 1}; the hedge with the lowest regret 1 - max(score), averaged over list lengths
 * 1..k_eval and the inner tasks, is kept (ties to the larger) in `model->hedge`, its mean
 * regret in `model->loo_regret`. n_inner = 0: hedge 1, loo_regret NaN.
 *
 * @param[out] w_out  n_tasks non-negative weights for kb_recommend_rank
 * @param scores T x C normalised scores (NaN unknown); may be NULL when n_inner is 0
 * @param pair   T x T distances between the tasks; dist: T distances from the new task
 * @return KB_OK; KB_EINVAL (bad argument, invalid model); KB_ENOMEM; KB_ENUMERIC.
 */
int kb_recommend_model_weights(double *w_out, kb_recommend_model *model, const double *scores,
                               const double *pair, const double *dist, size_t n_tasks,
                               size_t n_configs, const size_t *inner, size_t n_inner,
                               size_t k_eval, kb_error *err);

/**
 * The whole-knowledge-base check of a fitted similarity model (R4): do its weights beat
 * uniform weights on the stored tasks, or did its likelihood find structure that does not
 * carry over to a new task?
 *
 * Each of the n tasks in turn plays the query and the others the knowledge base: its weights
 * are the model's exact leave-one-out coefficients from the others (as the hedge's
 * leave-one-out in kb_recommend_model_weights: -M_it / M_ii, negative ones dropped), its list
 * the k_eval configurations kb_recommend_rank makes with them and `model->hedge`, and its
 * regret 1 - max(own score) is averaged over list lengths 1..k_eval (model_regret) and taken at
 * length 1 (model_first). The same with uniform weights and hedge 1 — the greedy portfolio of
 * the others — gives uniform_regret and uniform_first. signal = 1 when model_regret <
 * uniform_regret - 1e-12: only then should a caller weigh by the model; otherwise uniform
 * weights and hedge 1, so that where the meta-features say nothing the list is the portfolio.
 * first_signal: the same comparison at length 1. A model with signal 0 (or whose r K + I does
 * not factor) has uniform weights: both regrets are equal, signal 0.
 *
 * The n tasks need not be those the model was fitted on (kb recommend: fitted on the 16
 * nearest, checked on the KB_RECOMMEND_CHECK_MAX_TASKS nearest, a cost bound: O(n^3) + 2n
 * lists). The check uses no query result. With fewer than 3 tasks: signal 0, regrets NaN.
 * @param scores T x C column-major normalised scores (kb_recommend_normalize), NaN unknown
 * @param pair   T x T column-major distances (the model's, kb_similarity_distance_imputed)
 * @return KB_OK; KB_EINVAL (bad argument, invalid model); KB_ENOMEM.
 */
typedef struct kb_recommend_check {
    double model_regret;   /* mean leave-one-out regret over list lengths 1..k_eval, model */
    double uniform_regret; /* the same with uniform weights and hedge 1 (the portfolio) */
    double model_first;    /* mean regret of the first pick, model */
    double uniform_first;  /* the same, uniform */
    size_t n_queries;      /* tasks that played the query (n, or 0 with fewer than 3) */
    int signal;            /* 1: model_regret < uniform_regret: weigh by the model */
    int first_signal;      /* 1: model_first < uniform_first */
} kb_recommend_check;

/** How many of the query's nearest tasks `kb recommend` runs kb_recommend_model_check on. */
#define KB_RECOMMEND_CHECK_MAX_TASKS 64

int kb_recommend_model_check(kb_recommend_check *out, const kb_recommend_model *model,
                             const double *scores, const double *pair, size_t n_tasks,
                             size_t n_configs, size_t k_eval, kb_error *err);

/**
 * The k nearest of rows[0..n) by dist[rows[i]] (ties: the lower row; NaN-free distances),
 * moved to the front of rows in order by a selection; the rest of rows in some order.
 */
void kb_recommend_nearest(size_t *rows, const double *dist, size_t n, size_t k);

/** How kb_recommend_weigh runs the hedge's leave-one-out on the nearest tasks. */
typedef enum kb_recommend_weigh_hedge {
    KB_RECOMMEND_WEIGH_HEDGE_LOO = 0,       /* always (n_tune >= 3) */
    KB_RECOMMEND_WEIGH_HEDGE_IF_SIGNAL = 1, /* only when the fitted signal is not 0 */
    KB_RECOMMEND_WEIGH_HEDGE_NONE = 2       /* never: hedge 1 */
} kb_recommend_weigh_hedge;

typedef struct kb_recommend_weigh_opts {
    int version;
    size_t n_tune;  /* fit on (and run the hedge's leave-one-out on) this many nearest */
    size_t n_check; /* check on this many nearest; 0: no check (no fallback) */
    kb_recommend_weigh_hedge hedge;
    int order_all;  /* 1: order the nearest by distance even when all the tasks are taken;
                     * 0: then keep the given order */
    int first_rule; /* version 2: 1 = where the check finds signal on the list but not on
                     * its first pick, out->first = uniform weights' first pick. Off by
                     * default: measured without a benchmark bug that had read the previous
                     * query's check, it lost more first picks than it won (BENCHMARKS,
                     * issue 5, "The first-pick rule re-measured") */
} kb_recommend_weigh_opts;

#define KB_RECOMMEND_WEIGH_OPTS_VERSION 2
#define KB_RECOMMEND_WEIGH_OPTS_INIT                                                          \
    {KB_RECOMMEND_WEIGH_OPTS_VERSION, 16, KB_RECOMMEND_CHECK_MAX_TASKS,                      \
     KB_RECOMMEND_WEIGH_HEDGE_LOO, 1, 0}

/** What kb_recommend_weigh found. */
typedef struct kb_recommend_weighed {
    kb_recommend_model model; /* as weighed at the end (signal 0 after a fallback) */
    double fitted_signal;     /* the signal kb_recommend_model_fit chose */
    double weights_signal;    /* model.signal after kb_recommend_model_weights, before the
                               * check (0 with a fitted signal: r K + I did not factor) */
    kb_recommend_check check; /* NaN regrets, n_queries 0 and no signal when not run */
    size_t first;             /* with opts->first_rule, the check's signal on the list but
                               * not on its first pick: uniform weights' first pick
                               * (kb_recommend_rank); else SIZE_MAX */
} kb_recommend_weighed;

/**
 * The similarity model's task weights for a query, as `kb recommend` composes them: order the
 * n tasks by their distance `dist` to the query (ties to the lower index; NaN-free distances),
 * fit the model (kb_recommend_model_fit) on the n_tune nearest, weigh all n
 * (kb_recommend_model_weights, the hedge's leave-one-out on those nearest as opts->hedge
 * says), check it (kb_recommend_model_check) on the n_check nearest and fall back as the check
 * says: no signal, uniform weights and hedge 1 (the greedy portfolio); with opts->first_rule,
 * signal on the list but not on its first pick, out->first = uniform weights' first pick.
 * @param[out] w_out  n_tasks non-negative weights
 * @param scores T x C column-major normalised scores, NaN unknown
 * @param pair   T x T column-major model distances (kb_similarity_distance_imputed)
 * @param dist   T model distances to the query
 * @param opts   NULL: KB_RECOMMEND_WEIGH_OPTS_INIT
 * @return KB_OK; KB_EINVAL; KB_ENOMEM; KB_ENUMERIC.
 */
int kb_recommend_weigh(double *w_out, kb_recommend_weighed *out, const double *scores,
                       const double *pair, const double *dist, size_t n_tasks, size_t n_configs,
                       size_t k_eval, const kb_recommend_weigh_opts *opts, kb_error *err);

/* ---- backbones ---- */

/** What a backbone's ranking rests on. */
typedef enum kb_recommend_basis {
    KB_RECOMMEND_BASIS_FINETUNE = 1, /* fine-tune results on weighted knowledge-base tasks */
    KB_RECOMMEND_BASIS_SOURCE = 2    /* none: the similarity of its source task only */
} kb_recommend_basis;

/** One compatible backbone's standing for the new task. */
typedef struct kb_recommend_backbone {
    size_t backbone;          /* column of the result table */
    kb_recommend_basis basis;
    double score;             /* the ranking key, in [0, 1] (see kb_recommend_backbones) */
    double relative;          /* weighted mean per-task normalised result; NaN for SOURCE */
    double relative_sd;       /* its predictive sd; NaN with fewer than 2 tasks */
    double expected;          /* weighted mean raw result (the objective's units); NaN */
    double expected_sd;       /* its predictive sd; NaN with fewer than 2 tasks */
    size_t n_tasks;           /* tasks with a fine-tune result and a non-zero weight */
    double n_eff;             /* their effective number, (sum w)^2 / sum w^2; 0 if none */
    double source_similarity; /* exp(-(d/h)^2) of its source task; NaN when unknown */
    double transfer;          /* the transferability score given; NaN when none */
} kb_recommend_backbone;

typedef struct kb_recommend_backbone_opts {
    int version;
    double transfer_weight; /* share lambda in [0, 1] of the key from transferability */
} kb_recommend_backbone_opts;

#define KB_RECOMMEND_BACKBONE_OPTS_VERSION 1
#define KB_RECOMMEND_BACKBONE_OPTS_INIT {KB_RECOMMEND_BACKBONE_OPTS_VERSION, 0.5}

/**
 * Rank backbones (all already compatible with the new task's input signature) for the new
 * task.
 *
 * Evidence is a T x B table of fine-tune results: results[t + b * n_tasks] is the best result
 * of a run fine-tuned from backbone b on knowledge-base task t (NaN: none). Task weights come
 * from `task_dist` (the tasks' meta-feature distances to the new task) through
 * kb_recommend_weights(bandwidth, floor). Each task's results are min-max normalised across
 * the backbones it fine-tuned (kb_recommend_normalize; a task with one backbone gives it 1),
 * so a backbone is credited for beating the others on the same task, not for having been
 * tried on easy tasks. Per backbone, over the n tasks with a result and weight w_t > 0:
 *   relative = sum w r / W, expected = sum w y / W (W = sum w),
 *   sd^2 = (sum w (x - mean)^2 / W) (1 + 1 / n_eff), n_eff = W^2 / sum w^2
 * (the weighted spread across tasks plus the mean's own uncertainty; NaN when n < 2).
 *
 * A backbone with no such result falls back on its source task: source_similarity =
 * exp(-(source_dist / h)^2) with h = bandwidth times the median finite task distance (the
 * median finite source distance when no task has results; 1 if none); unknown (NaN or
 * infinite) distances give 0.
 *
 * Key: relative (FINETUNE) or source_similarity (SOURCE). With `transfer` (B scores, larger =
 * better, e.g. LogME on the new data; NaN = not computed), the finite ones are min-max
 * normalised to [0, 1] across the backbones (a single one gives 1) and the key becomes
 * (1 - lambda) key + lambda t for FINETUNE backbones and t alone for SOURCE ones (a score
 * measured on the new data replaces the source-task guess). Order: FINETUNE before SOURCE
 * (evidence before a guess) unless both have a finite transfer score, then key, then expected
 * result (by `maximize`), then source similarity, all descending, then the lower column.
 *
 * @param[out] out   up to k backbones, best first; `*n_out` says how many (min(k, B))
 * @param results    T x B column-major raw results (NaN none); may be NULL when n_tasks is 0
 * @param task_dist  T finite or infinite distances (infinite: floor weight only)
 * @param source_dist B distances of the backbones' source tasks (NaN unknown), or NULL
 * @param transfer   B transferability scores, or NULL
 * @return KB_OK; KB_EINVAL (bad argument, lambda outside [0, 1]); KB_ENOMEM.
 */
int kb_recommend_backbones(kb_recommend_backbone *out, size_t *n_out, const double *results,
                           const double *task_dist, size_t n_tasks, size_t n_backbones,
                           int maximize, const double *source_dist, const double *transfer,
                           const kb_recommend_weighting *weighting, size_t k,
                           const kb_recommend_backbone_opts *opts, kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
