/*
 * Internals shared by engine/hyperband.c and engine/asha.c: the table of sampled trials,
 * the finite observations per budget (column-major, grown by doubling) and the ranking.
 */
#ifndef KB_ENGINE_HYPERBAND_PRIV_H
#define KB_ENGINE_HYPERBAND_PRIV_H

#include "engine/hyperband.h"

typedef struct kb_hyperband__store {
    size_t dim;
    int maximize;
    int model_based;
    kb_hyperband_sample_fn sample;
    void *payload;
    kb_rng rng;
    size_t n_trials, cap_trials;
    double *trial_u; /* trial t: trial_u[t * dim .. + dim) */
    size_t n_budgets;
    kb_hyperband_budget_obs *view; /* n_budgets, pointing into u / y below */
    double **u;
    double **y;
    size_t *cap;
} kb_hyperband__store;

/* A (key, trial) pair; key = the result turned into "smaller is better", +inf if failed. */
typedef struct kb_hyperband__ranked {
    double key;
    size_t trial;
} kb_hyperband__ranked;

int kb_hyperband__store_init(kb_hyperband__store *s, size_t dim, const double *resources,
                             size_t n_budgets, kb_error *err);
void kb_hyperband__store_release(kb_hyperband__store *s);
/* Sample a new trial's configuration (calls the sampler). */
int kb_hyperband__store_new_trial(size_t *trial_out, kb_hyperband__store *s, kb_error *err);
/* Record a finite result of `trial` at budget index b (non-finite results are skipped). */
int kb_hyperband__store_add_obs(kb_hyperband__store *s, size_t b, size_t trial, double y,
                                kb_error *err);
/* Index of `resource` among the budgets (relative slack 1e-9), SIZE_MAX if absent. */
size_t kb_hyperband__budget_index(const kb_hyperband__store *s, double resource);
double kb_hyperband__key(const kb_hyperband__store *s, double y);
/* Sort best first: by key, ties by the smaller trial id (deterministic). */
void kb_hyperband__rank(kb_hyperband__ranked *r, size_t n);

#endif
