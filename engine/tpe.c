#include "engine/tpe.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/alloc.h"

#define INV_SQRT2 0.70710678118654752
#define LN_SQRT2PI 0.91893853320467274

/* One parameter's Parzen estimator: numeric (mus/sigmas/weights) or categorical (probs). */
typedef struct parzen {
    size_t n;        /* components (numeric) or choices (categorical) */
    double *mu, *sigma, *logw; /* numeric: n; logw normalised, incl. truncation mass */
    double *lws;     /* numeric: logw - log(sigma), so a density needs no log per component */
    double *logp;    /* categorical: n log probabilities */
} parzen;

static double norm_cdf(double z)
{
    return 0.5 * erfc(-z * INV_SQRT2);
}

static int cmp_idx_by_key(const void *a, const void *b, const double *key)
{
    double x = key[*(const size_t *)a], y = key[*(const size_t *)b];
    return x < y ? -1 : (x > y ? 1 : (*(const size_t *)a < *(const size_t *)b ? -1 : 1));
}

static void sift_down(size_t *idx, size_t root, size_t n, const double *key)
{
    for (size_t child; (child = 2 * root + 1) < n; root = child) {
        if (child + 1 < n && cmp_idx_by_key(&idx[child], &idx[child + 1], key) < 0) {
            child++;
        }
        if (cmp_idx_by_key(&idx[root], &idx[child], key) >= 0) {
            return;
        }
        size_t t = idx[root];
        idx[root] = idx[child];
        idx[child] = t;
    }
}

/* qsort has no payload argument: an in-place heap sort keeps this reentrant and O(n log n)
   (the insertion sort it replaces was O(n^2), a tenth of a suggestion's time at 1,000
   observations). The comparison is a strict total order (ties by index), so the result is
   the same whatever the algorithm. */
static void sort_idx(size_t *idx, size_t n, const double *key)
{
    for (size_t i = n / 2; i-- > 0;) {
        sift_down(idx, i, n, key);
    }
    for (size_t end = n; end-- > 1;) {
        size_t t = idx[0];
        idx[0] = idx[end];
        idx[end] = t;
        sift_down(idx, 0, end, key);
    }
}

/*
 * Build the estimator of parameter j from observations obs[0..m) (indices into U) with
 * weights w. Workspace `buf` holds 4 (m + 1) doubles, `ord` m + 1 indices.
 */
static void build(parzen *pz, const kb_encode *e, size_t j, const double *u, size_t ld,
                  const size_t *obs, const double *w, size_t m, double prior_weight,
                  double *buf, size_t *ord)
{
    size_t k = kb_encode_n_choices(e, j);
    if (k > 0) {
        pz->n = k;
        pz->logp = buf;
        double total = prior_weight;
        for (size_t c = 0; c < k; c++) {
            buf[c] = prior_weight / (double)k;
        }
        for (size_t i = 0; i < m; i++) {
            double v = u[obs[i] + j * ld];
            size_t c = (size_t)fmin(floor(v * (double)k), (double)(k - 1));
            buf[c] += w[i];
            total += w[i];
        }
        for (size_t c = 0; c < k; c++) {
            buf[c] = log(buf[c] / total);
        }
        return;
    }
    size_t n = m + 1;
    pz->n = n;
    pz->mu = buf;
    pz->sigma = buf + n;
    pz->logw = buf + 2 * n;
    double *key = buf + 3 * n;
    for (size_t i = 0; i < m; i++) {
        pz->mu[i] = u[obs[i] + j * ld];
        pz->logw[i] = w[i];
    }
    pz->mu[m] = 0.5; /* prior component */
    pz->logw[m] = prior_weight;
    for (size_t i = 0; i < n; i++) {
        ord[i] = i;
        key[i] = pz->mu[i];
    }
    sort_idx(ord, n, key);
    /* bandwidth: the larger gap to the sorted neighbours, clipped ("magic clip") */
    double minsigma = 1.0 / fmin(100.0, 1.0 + (double)n);
    for (size_t r = 0; r < n; r++) {
        double left = r > 0 ? key[ord[r]] - key[ord[r - 1]] : 0.0;
        double right = r + 1 < n ? key[ord[r + 1]] - key[ord[r]] : 0.0;
        double s = fmax(left, right);
        pz->sigma[ord[r]] = fmin(fmax(s, minsigma), 1.0);
    }
    pz->sigma[m] = 1.0;
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        total += pz->logw[i];
    }
    for (size_t i = 0; i < n; i++) {
        /* weight, and the mass of the component inside [0, 1] (truncation) */
        double mass = norm_cdf((1.0 - pz->mu[i]) / pz->sigma[i]) -
                      norm_cdf(-pz->mu[i] / pz->sigma[i]);
        pz->logw[i] = log(pz->logw[i] / total) - log(fmax(mass, 1e-300));
    }
    pz->lws = key; /* the sort keys are no longer needed */
    for (size_t i = 0; i < n; i++) {
        pz->lws[i] = pz->logw[i] - log(pz->sigma[i]);
    }
}

static double parzen_logpdf(const parzen *pz, size_t k, double v)
{
    if (k > 0) {
        size_t c = (size_t)fmin(floor(v * (double)k), (double)(k - 1));
        return pz->logp[c];
    }
    double mx = -INFINITY;
    for (size_t i = 0; i < pz->n; i++) {
        double z = (v - pz->mu[i]) / pz->sigma[i];
        mx = fmax(mx, pz->lws[i] - 0.5 * z * z);
    }
    double s = 0.0;
    for (size_t i = 0; i < pz->n; i++) {
        double z = (v - pz->mu[i]) / pz->sigma[i];
        s += exp(pz->lws[i] - 0.5 * z * z - mx);
    }
    return mx + log(s) - LN_SQRT2PI;
}

static double parzen_sample(const parzen *pz, size_t k, kb_rng *rng)
{
    double r = kb_rng_uniform(rng);
    if (k > 0) {
        for (size_t c = 0; c < k; c++) {
            r -= exp(pz->logp[c]);
            if (r < 0.0) {
                return ((double)c + 0.5) / (double)k;
            }
        }
        return ((double)k - 0.5) / (double)k;
    }
    /* pick a component by its (untruncated-mass) weight, then rejection-sample into [0, 1] */
    size_t comp = pz->n - 1;
    double acc = 0.0, total = 0.0;
    for (size_t i = 0; i < pz->n; i++) {
        double mass = norm_cdf((1.0 - pz->mu[i]) / pz->sigma[i]) -
                      norm_cdf(-pz->mu[i] / pz->sigma[i]);
        total += exp(pz->logw[i]) * mass;
    }
    r *= total;
    for (size_t i = 0; i < pz->n; i++) {
        double mass = norm_cdf((1.0 - pz->mu[i]) / pz->sigma[i]) -
                      norm_cdf(-pz->mu[i] / pz->sigma[i]);
        acc += exp(pz->logw[i]) * mass;
        if (r < acc) {
            comp = i;
            break;
        }
    }
    for (int t = 0; t < 100; t++) {
        double v = pz->mu[comp] + pz->sigma[comp] * kb_rng_normal(rng);
        if (v >= 0.0 && v <= 1.0) {
            return v;
        }
    }
    return fmin(fmax(pz->mu[comp], 0.0), 1.0);
}

int kb_tpe_suggest_random(double *u_out, size_t *pool_index_out, const kb_encode *e,
                          const kb_encode_pool *pool, kb_rng *rng, kb_error *err)
{
    KB_CHECK_ARG(u_out != NULL && e != NULL && rng != NULL);
    size_t p = kb_encode_n_params(e);
    if (pool_index_out != NULL) {
        *pool_index_out = SIZE_MAX;
    }
    if (pool == NULL) {
        return kb_encode_sample(u_out, 1, e, 1, KB_ENCODE_DESIGN_UNIFORM, rng, err);
    }
    size_t n_free = 0;
    for (size_t i = 0; i < pool->n; i++) {
        n_free += pool->used == NULL || !pool->used[i];
    }
    if (n_free == 0) {
        return kb_error_set(err, KB_ENOTFOUND, "tpe: every pool configuration is used");
    }
    size_t pick = (size_t)kb_rng_below(rng, n_free);
    for (size_t i = 0; i < pool->n; i++) {
        if (pool->used != NULL && pool->used[i]) {
            continue;
        }
        if (pick-- == 0) {
            for (size_t j = 0; j < p; j++) {
                u_out[j] = pool->u[i + j * pool->ld];
            }
            if (pool_index_out != NULL) {
                *pool_index_out = i;
            }
            break;
        }
    }
    return KB_OK;
}

/* Optuna's default_weights: ones for the newest 25, a ramp from 1/n for older ones. */
static void trial_weights(double *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (n < 25 || i >= n - 25) {
            w[i] = 1.0;
        } else {
            size_t r = n - 25;
            w[i] = r > 1 ? 1.0 / (double)n + (1.0 - 1.0 / (double)n) * (double)i / (double)(r - 1)
                         : 1.0 / (double)n;
        }
    }
}

int kb_tpe_suggest(double *u_out, size_t *pool_index_out, const kb_encode *e,
                   const double *u_obs, size_t ld_obs, size_t n_obs, const double *y_obs,
                   const kb_tpe_opts *opts, const kb_encode_pool *pool, kb_rng *rng,
                   kb_error *err)
{
    KB_CHECK_ARG(u_out != NULL && e != NULL && rng != NULL && ld_obs >= n_obs);
    KB_CHECK_ARG(n_obs == 0 || (u_obs != NULL && y_obs != NULL));
    kb_tpe_opts defaults = KB_TPE_OPTS_INIT;
    const kb_tpe_opts *o = opts != NULL ? opts : &defaults;
    size_t p = kb_encode_n_params(e);
    size_t n_fin = 0;
    for (size_t i = 0; i < n_obs; i++) {
        n_fin += isfinite(y_obs[i]) != 0;
    }
    if (n_fin < o->n_startup || n_fin < 2) {
        return kb_tpe_suggest_random(u_out, pool_index_out, e, pool, rng, err);
    }
    size_t n = n_fin, nc = o->n_ei_candidates > 0 ? o->n_ei_candidates : 1;
    size_t *idx = kb_malloc_array(3 * (n + 1), sizeof(size_t));
    double *w = kb_malloc_array(n + 1, sizeof(double));
    double *wsub = kb_malloc_array(n + 1, sizeof(double));
    double *bl = kb_malloc_array(4 * (n + 2), sizeof(double));
    double *bg = kb_malloc_array(4 * (n + 2), sizeof(double));
    size_t n_score = pool != NULL ? pool->n : nc;
    double *scores = kb_calloc(n_score + 1, sizeof(double));
    double *cand = pool != NULL ? NULL : kb_malloc_array(nc * p + 1, sizeof(double));
    int rc = KB_OK;
    if (idx == NULL || w == NULL || wsub == NULL || bl == NULL || bg == NULL || scores == NULL ||
        (pool == NULL && cand == NULL)) {
        rc = kb_error_set(err, KB_ENOMEM, "tpe: out of memory");
        goto done;
    }
    /* finite observations in trial order; their rank by y decides below / above */
    size_t *fin = idx, *below = idx + (n + 1), *ord = idx + 2 * (n + 1);
    size_t m = 0;
    for (size_t i = 0; i < n_obs; i++) {
        if (isfinite(y_obs[i])) {
            fin[m++] = i;
        }
    }
    double *yk = wsub; /* scratch: y in trial order, for the ranking */
    for (size_t i = 0; i < n; i++) {
        ord[i] = i;
        yk[i] = y_obs[fin[i]];
    }
    sort_idx(ord, n, yk);
    size_t n_below = (size_t)ceil(o->gamma_frac * (double)n);
    n_below = n_below > o->gamma_max ? o->gamma_max : (n_below == 0 ? 1 : n_below);
    unsigned char *is_below = (unsigned char *)bl; /* temporary, before bl is used */
    memset(is_below, 0, n);
    for (size_t r = 0; r < n_below; r++) {
        is_below[ord[r]] = 1;
    }
    for (size_t i = 0; i < n; i++) {
        below[i] = is_below[i];
    }
    trial_weights(w, n);
    for (size_t j = 0; j < p; j++) {
        size_t k = kb_encode_n_choices(e, j);
        /* observations where parameter j is active, split into l and g */
        size_t nl = 0, ng = 0;
        size_t *tmp_l = kb_malloc_array(n + 1, sizeof(size_t));
        size_t *tmp_g = kb_malloc_array(n + 1, sizeof(size_t));
        double *tw_l = kb_malloc_array(n + 1, sizeof(double));
        double *tw_g = kb_malloc_array(n + 1, sizeof(double));
        size_t *sort_buf = kb_malloc_array(n + 2, sizeof(size_t));
        if (tmp_l == NULL || tmp_g == NULL || tw_l == NULL || tw_g == NULL || sort_buf == NULL) {
            kb_free(tmp_l);
            kb_free(tmp_g);
            kb_free(tw_l);
            kb_free(tw_g);
            kb_free(sort_buf);
            rc = kb_error_set(err, KB_ENOMEM, "tpe: out of memory");
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            if (isnan(u_obs[fin[i] + j * ld_obs])) {
                continue;
            }
            if (below[i]) {
                tw_l[nl] = w[i];
                tmp_l[nl++] = fin[i];
            } else {
                tw_g[ng] = w[i];
                tmp_g[ng++] = fin[i];
            }
        }
        parzen pl = {0}, pg = {0};
        build(&pl, e, j, u_obs, ld_obs, tmp_l, tw_l, nl, o->prior_weight, bl, sort_buf);
        build(&pg, e, j, u_obs, ld_obs, tmp_g, tw_g, ng, o->prior_weight, bg, sort_buf);
        if (pool != NULL) {
            for (size_t i = 0; i < pool->n; i++) {
                double v = pool->u[i + j * pool->ld];
                if (!isnan(v)) {
                    scores[i] += parzen_logpdf(&pl, k, v) - parzen_logpdf(&pg, k, v);
                }
            }
        } else {
            /* draw candidates for parameter j from l and keep the best ratio */
            double best_v = 0.5, best_s = -INFINITY;
            for (size_t c = 0; c < nc; c++) {
                double v = parzen_sample(&pl, k, rng);
                double sc = parzen_logpdf(&pl, k, v) - parzen_logpdf(&pg, k, v);
                if (sc > best_s) {
                    best_s = sc;
                    best_v = v;
                }
            }
            u_out[j] = best_v;
        }
        kb_free(tmp_l);
        kb_free(tmp_g);
        kb_free(tw_l);
        kb_free(tw_g);
        kb_free(sort_buf);
    }
    if (pool_index_out != NULL) {
        *pool_index_out = SIZE_MAX;
    }
    if (pool == NULL) {
        kb_encode_snap(e, u_out);
        goto done;
    }
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < pool->n; i++) {
        if ((pool->used == NULL || !pool->used[i]) && (best == SIZE_MAX || scores[i] > scores[best])) {
            best = i;
        }
    }
    if (best == SIZE_MAX) {
        rc = kb_error_set(err, KB_ENOTFOUND, "tpe: every pool configuration is used");
        goto done;
    }
    for (size_t j = 0; j < p; j++) {
        u_out[j] = pool->u[best + j * pool->ld];
    }
    if (pool_index_out != NULL) {
        *pool_index_out = best;
    }
done:
    kb_free(idx);
    kb_free(w);
    kb_free(wsub);
    kb_free(bl);
    kb_free(bg);
    kb_free(scores);
    kb_free(cand);
    return rc;
}
