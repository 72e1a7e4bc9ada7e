/* ASHA (Li et al. 2020, Algorithm 2) on the trial store shared with engine/hyperband.c. */
#include "engine/asha.h"

#include <math.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/hyperband_priv.h"

typedef struct asha_rung {
    double resource;
    size_t n, cap;
    size_t *trials; /* completed, best first */
    double *keys;   /* matching kb_hyperband__key values */
    double *ys;
} asha_rung;

struct kb_asha {
    kb_asha_opts opts;
    kb_hyperband__store st;
    size_t n_rungs;
    asha_rung rungs[KB_HYPERBAND_MAX_RUNGS];
    /* per trial (capacity st.cap_trials) */
    uint32_t *promoted;   /* bit k: promoted out of rung k */
    size_t *pending_rung; /* SIZE_MAX when idle */
    size_t cap_trials;
    size_t n_pending;
};

int kb_asha_new(kb_asha **out, size_t dim, kb_hyperband_sample_fn sample, void *payload,
                const kb_asha_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    *out = NULL;
    KB_CHECK_ARG(dim > 0);
    kb_asha_opts o = KB_ASHA_OPTS_INIT;
    if (opts != NULL) {
        o = *opts;
    }
    if (!isfinite(o.min_resource) || !isfinite(o.max_resource) || !isfinite(o.eta) ||
        o.min_resource <= 0 || o.max_resource < o.min_resource || o.eta <= 1) {
        return kb_error_set(err, KB_EINVAL, "asha: need 0 < r <= R and eta > 1");
    }
    /* s_max = floor(log_eta(R / r)) as the largest power that fits, so exact powers count */
    size_t s_max = 0;
    while (o.min_resource * pow(o.eta, (double)(s_max + 1)) <= o.max_resource * (1 + 1e-9)) {
        if (++s_max >= KB_HYPERBAND_MAX_RUNGS) {
            return kb_error_set(err, KB_EINVAL, "asha: more than %d rungs",
                                KB_HYPERBAND_MAX_RUNGS);
        }
    }
    if (o.min_early_stopping_rate > s_max) {
        return kb_error_set(err, KB_EINVAL, "asha: s = %zu is above s_max = %zu",
                            o.min_early_stopping_rate, s_max);
    }
    kb_asha *a = kb_calloc(1, sizeof *a);
    if (a == NULL) {
        return kb_error_set(err, KB_ENOMEM, "asha: out of memory");
    }
    a->opts = o;
    a->n_rungs = s_max - o.min_early_stopping_rate + 1;
    double res[KB_HYPERBAND_MAX_RUNGS];
    for (size_t k = 0; k < a->n_rungs; k++) {
        res[k] = o.min_resource * pow(o.eta, (double)(o.min_early_stopping_rate + k));
        a->rungs[k].resource = res[k];
    }
    int rc = kb_hyperband__store_init(&a->st, dim, res, a->n_rungs, err);
    if (rc != KB_OK) {
        kb_asha_free(a);
        return rc;
    }
    a->st.maximize = o.maximize != 0;
    a->st.model_based = o.model_based != 0;
    a->st.sample = sample;
    a->st.payload = payload;
    kb_rng_seed(&a->st.rng, o.seed);
    *out = a;
    return KB_OK;
}

void kb_asha_free(kb_asha *a)
{
    if (a == NULL) {
        return;
    }
    for (size_t k = 0; k < a->n_rungs; k++) {
        kb_free(a->rungs[k].trials);
        kb_free(a->rungs[k].keys);
        kb_free(a->rungs[k].ys);
    }
    kb_hyperband__store_release(&a->st);
    kb_free(a->promoted);
    kb_free(a->pending_rung);
    kb_free(a);
}

static int grow_trials(kb_asha *a, kb_error *err)
{
    size_t cap = a->st.cap_trials;
    if (cap <= a->cap_trials) {
        return KB_OK;
    }
    uint32_t *p = kb_realloc_array(a->promoted, cap, sizeof *p);
    if (p == NULL) {
        return kb_error_set(err, KB_ENOMEM, "asha: out of memory");
    }
    a->promoted = p;
    size_t *r = kb_realloc_array(a->pending_rung, cap, sizeof *r);
    if (r == NULL) {
        return kb_error_set(err, KB_ENOMEM, "asha: out of memory");
    }
    a->pending_rung = r;
    for (size_t t = a->cap_trials; t < cap; t++) {
        a->promoted[t] = 0;
        a->pending_rung[t] = SIZE_MAX;
    }
    a->cap_trials = cap;
    return KB_OK;
}

/* The best trial among the top floor(n_k / eta) of rung k not yet promoted from it. */
static size_t promotable(const kb_asha *a, size_t k)
{
    const asha_rung *rg = &a->rungs[k];
    size_t top = (size_t)floor((double)rg->n / a->opts.eta + 1e-9);
    /* failed trials (key +inf) sort last and are never promoted */
    for (size_t j = 0; j < top && isfinite(rg->keys[j]); j++) {
        size_t t = rg->trials[j];
        if (!(a->promoted[t] & (UINT32_C(1) << k))) {
            return t;
        }
    }
    return SIZE_MAX;
}

static void set_job(kb_hyperband_job *out, const kb_asha *a, size_t trial, size_t k)
{
    out->status = KB_HYPERBAND_JOB_RUN;
    out->trial = trial;
    out->iteration = 0;
    out->bracket = a->opts.min_early_stopping_rate;
    out->rung = k;
    out->resource = a->rungs[k].resource;
    out->resume_from = k > 0 ? a->rungs[k - 1].resource : 0;
}

int kb_asha_get_job(kb_hyperband_job *out, kb_asha *a, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    KB_CHECK_ARG(a != NULL);
    memset(out, 0, sizeof *out);
    for (size_t k = a->n_rungs - 1; k-- > 0;) {
        size_t t = promotable(a, k);
        if (t != SIZE_MAX) {
            a->promoted[t] |= UINT32_C(1) << k;
            a->pending_rung[t] = k + 1;
            a->n_pending++;
            set_job(out, a, t, k + 1);
            return KB_OK;
        }
    }
    if (a->opts.max_configs > 0 && a->st.n_trials >= a->opts.max_configs) {
        out->status = a->n_pending > 0 ? KB_HYPERBAND_JOB_WAIT : KB_HYPERBAND_JOB_DONE;
        return KB_OK;
    }
    size_t t;
    int rc = kb_hyperband__store_new_trial(&t, &a->st, err);
    if (rc != KB_OK) {
        return rc;
    }
    rc = grow_trials(a, err);
    if (rc != KB_OK) {
        a->st.n_trials--;
        return rc;
    }
    a->pending_rung[t] = 0;
    a->n_pending++;
    set_job(out, a, t, 0);
    return KB_OK;
}

/* Insert keeping the rung sorted best first (by key, then trial id): binary search. */
static int rung_insert(asha_rung *rg, size_t trial, double key, double y, kb_error *err)
{
    if (rg->n == rg->cap) {
        size_t cap = rg->cap ? 2 * rg->cap : 64;
        size_t *t = kb_realloc_array(rg->trials, cap, sizeof *t);
        if (t == NULL) {
            return kb_error_set(err, KB_ENOMEM, "asha: out of memory");
        }
        rg->trials = t;
        double *kk = kb_realloc_array(rg->keys, cap, sizeof *kk);
        if (kk == NULL) {
            return kb_error_set(err, KB_ENOMEM, "asha: out of memory");
        }
        rg->keys = kk;
        double *yy = kb_realloc_array(rg->ys, cap, sizeof *yy);
        if (yy == NULL) {
            return kb_error_set(err, KB_ENOMEM, "asha: out of memory");
        }
        rg->ys = yy;
        rg->cap = cap;
    }
    size_t lo = 0, hi = rg->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rg->keys[mid] < key || (rg->keys[mid] == key && rg->trials[mid] < trial)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    size_t tail = rg->n - lo;
    memmove(rg->trials + lo + 1, rg->trials + lo, tail * sizeof *rg->trials);
    memmove(rg->keys + lo + 1, rg->keys + lo, tail * sizeof *rg->keys);
    memmove(rg->ys + lo + 1, rg->ys + lo, tail * sizeof *rg->ys);
    rg->trials[lo] = trial;
    rg->keys[lo] = key;
    rg->ys[lo] = y;
    rg->n++;
    return KB_OK;
}

int kb_asha_report(kb_asha *a, size_t trial, double y, kb_error *err)
{
    KB_CHECK_ARG(a != NULL);
    if (trial >= a->st.n_trials || a->pending_rung[trial] == SIZE_MAX) {
        return kb_error_set(err, KB_EINVAL, "asha: trial %zu has no pending job", trial);
    }
    size_t k = a->pending_rung[trial];
    int rc = rung_insert(&a->rungs[k], trial, kb_hyperband__key(&a->st, y), y, err);
    if (rc != KB_OK) {
        return rc;
    }
    rc = kb_hyperband__store_add_obs(&a->st, k, trial, y, err);
    if (rc != KB_OK) {
        return rc;
    }
    a->pending_rung[trial] = SIZE_MAX;
    a->n_pending--;
    return KB_OK;
}

size_t kb_asha_n_rungs(const kb_asha *a)
{
    return a->n_rungs;
}

double kb_asha_rung_resource(const kb_asha *a, size_t k)
{
    return k < a->n_rungs ? a->rungs[k].resource : 0;
}

const size_t *kb_asha_rung_trials(const kb_asha *a, size_t k, size_t *n_out)
{
    if (k >= a->n_rungs) {
        *n_out = 0;
        return NULL;
    }
    *n_out = a->rungs[k].n;
    return a->rungs[k].trials;
}

size_t kb_asha_n_trials(const kb_asha *a)
{
    return a->st.n_trials;
}

size_t kb_asha_n_pending(const kb_asha *a)
{
    return a->n_pending;
}

const double *kb_asha_trial_config(const kb_asha *a, size_t trial)
{
    if (trial >= a->st.n_trials) {
        return NULL;
    }
    return a->st.trial_u + trial * a->st.dim;
}

int kb_asha_best(size_t *trial_out, double *y_out, double *resource_out, const kb_asha *a,
                 kb_error *err)
{
    KB_CHECK_ARG(a != NULL);
    for (size_t k = a->n_rungs; k-- > 0;) {
        const asha_rung *rg = &a->rungs[k];
        if (rg->n > 0 && isfinite(rg->keys[0])) {
            if (trial_out) {
                *trial_out = rg->trials[0];
            }
            if (y_out) {
                *y_out = rg->ys[0];
            }
            if (resource_out) {
                *resource_out = rg->resource;
            }
            return KB_OK;
        }
    }
    return kb_error_set(err, KB_ENOTFOUND, "asha: no finite result yet");
}
