/*
 * Transfer from neighbour tasks: what past tasks of the same space say about a new one.
 *
 * A neighbour task is plain data: its configurations (u, engine/encode.h), their results y
 * (minimised; NaN = failed, skipped) and a similarity weight >= 0 (0 = ignore the task, e.g.
 * the held-out target in a leave-one-task-out run; weights may be changed between uses with
 * kb_transfer_set_weights). kb_transfer_new fits one GP per task, on its z-scored y, once.
 * The methods (Feurer, Springenberg & Hutter 2015; Golovin et al. 2017, "Google Vizier";
 * Feurer, Letham & Bakshy 2018, "RGPE"):
 *  1. initial design: the best configuration of each task, nearest (largest weight) first;
 *     or a greedy portfolio: configurations chosen one by one to minimise the sum over tasks
 *     of the best normalised regret of the chosen set;
 *  2. stacked prior mean: m(x) = sum_t w_t mu_t(x) / sum_t w_t in z units; the target's GP is
 *     fitted on the residuals z - m(x) (kb_bo does this);
 *  3. hyperparameter priors: log-normal priors centred on the weighted mean of the tasks'
 *     fitted log hyperparameters, with their weighted spread (floored) as width;
 *  4. RGPE: weights of the per-task GPs and the target's GP from ranking-loss sampling over
 *     the target's observations (the target model judged leave-one-out), with the paper's
 *     dilution guard; the ensemble has mean sum w_i mu_i and variance sum w_i^2 s_i^2.
 * Values of task t at a configuration: its observed y when the configuration is one of its
 * points, else its GP mean (so cross-evaluated tables are used exactly).
 */
#ifndef KB_ENGINE_TRANSFER_H
#define KB_ENGINE_TRANSFER_H

#include <stddef.h>

#include "engine/core/error.h"
#include "engine/core/rng.h"
#include "engine/encode.h"
#include "engine/gp.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kb_transfer kb_transfer;

/** One neighbour task (borrowed by kb_transfer_new only during the call). */
typedef struct kb_transfer_task {
    const double *u; /* n x P column-major, ld >= n */
    size_t ld, n;
    const double *y; /* n results, minimised */
    double weight;   /* similarity >= 0; 0 = not used */
} kb_transfer_task;

typedef struct kb_transfer_opts {
    int version;
    kb_gp_opts gp;     /* per-task GP fits */
    size_t max_points; /* per task: keep the best max_points / 2 and a spread of the rest (0 = all) */
} kb_transfer_opts;

#define KB_TRANSFER_OPTS_INIT {1, KB_GP_OPTS_INIT, 0}

/**
 * Copy the tasks and fit one GP per task with a non-empty finite y (tasks with fewer than 2
 * finite results get no model and only contribute their configurations).
 * @param[out] out caller owns; free with kb_transfer_free(). Borrows `e`.
 * @return KB_OK, KB_EINVAL, KB_ENOMEM, KB_ENUMERIC.
 */
int kb_transfer_new(kb_transfer **out, const kb_encode *e, const kb_transfer_task *tasks,
                    size_t n_tasks, const kb_transfer_opts *opts, kb_error *err);
void kb_transfer_free(kb_transfer *t);
size_t kb_transfer_n_tasks(const kb_transfer *t);
/** Replace the similarity weights (n_tasks values >= 0). */
void kb_transfer_set_weights(kb_transfer *t, const double *weights);
double kb_transfer_weight(const kb_transfer *t, size_t task);
/** The GP of task i, or NULL (borrowed). */
const kb_gp *kb_transfer_gp(const kb_transfer *t, size_t task);

/**
 * Precompute every task's z-unit posterior at the rows of `pool` (kept borrowed; used by
 * kb_transfer_predict when called with the same pool). Costs n_tasks GP predictions.
 * @return KB_OK, KB_ENOMEM.
 */
int kb_transfer_cache_pool(kb_transfer *t, const kb_encode_pool *pool, kb_error *err);

/**
 * z-unit posterior of every task with weight > 0 at m configurations u (m x P, ld_u) — or at
 * pool rows `rows` (m indices) when `rows` != NULL and the pool is cached. Output column t
 * of mean_out/var_out (m x n_tasks, ld m) is task t (unused tasks: zeros).
 * @return KB_OK, KB_ENOMEM, KB_EINVAL (rows without a cached pool).
 */
int kb_transfer_predict(double *mean_out, double *var_out, const kb_transfer *t,
                        const double *u, size_t ld_u, const size_t *rows, size_t m,
                        kb_error *err);

/**
 * Initial design: up to k configurations (u into u_out, k x P, ld_out) not used in `pool`
 * (if given) — best of each task by decreasing weight (portfolio = 0), or the greedy
 * portfolio over the pool rows (or, without a pool, over the tasks' own points).
 * @param[out] n_out how many were written.
 */
int kb_transfer_initial_design(double *u_out, size_t ld_out, size_t *n_out,
                               const kb_transfer *t, size_t k, int portfolio,
                               const kb_encode_pool *pool, kb_error *err);

/** Log-normal hyperparameter priors (d + 2, D = kernel features) and their centres. */
void kb_transfer_hyper_priors(kb_gp_prior *priors_out, double *theta_out, const kb_transfer *t);

/**
 * RGPE weights into w_out (n_tasks + 1 values; the last is the target model): fraction of
 * n_samples posterior draws at the target's n_obs observations in which each model has the
 * smallest number of misranked pairs. base_mean/base_var: n_obs x n_tasks z-unit posteriors
 * of the tasks at the observations (kb_transfer_predict); loo_mean/loo_var: the target's
 * leave-one-out posterior (kb_gp_loo); y_obs: target results.
 * @return KB_OK, KB_ENOMEM.
 */
int kb_transfer_rgpe_weights(double *w_out, const kb_transfer *t, const double *base_mean,
                             const double *base_var, const double *loo_mean,
                             const double *loo_var, const double *y_obs, size_t n_obs,
                             size_t n_samples, kb_rng *rng, kb_error *err);

/**
 * Spread of the tasks' values about their weighted mean at one configuration:
 * sum_t w_t (mu_t - mbar)^2 / sum_t w_t, mbar = sum_t w_t mu_t / sum_t w_t — the variance the
 * prior mean sum_t w_t mu_t / sum_t w_t would have if the target were one of the tasks, task
 * t with probability w_t / sum_t w_t. mu: n_tasks values, stride inc; w >= 0. 0 when the
 * weights sum to 0.
 */
double kb_transfer_spread(const double *mu, size_t inc, const double *w, size_t n_tasks);

#ifdef __cplusplus
}
#endif

#endif
