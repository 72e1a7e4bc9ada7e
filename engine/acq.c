#include "engine/acq.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/core/alloc.h"

#define INV_SQRT2 0.70710678118654752
#define INV_SQRT2PI 0.39894228040143268

static double norm_cdf(double z)
{
    return 0.5 * erfc(-z * INV_SQRT2);
}

static double norm_pdf(double z)
{
    return INV_SQRT2PI * exp(-0.5 * z * z);
}

/* z Phi(z) + phi(z), the EI of a unit-variance improvement z. */
static double ei_unit(double z)
{
    if (z >= -6.0) {
        return z * norm_cdf(z) + norm_pdf(z);
    }
    /*
     * Far tail: both terms are ~phi(z) and cancel. With x = -z and Mills' ratio
     * R(x) = Phi(-x) / phi(x) = 1 / (x + c), c = 1 / (x + 2 / (x + 3 / (x + ...))) (Laplace's
     * continued fraction), z Phi(z) + phi(z) = phi(z) (1 - x R(x)) = phi(z) c / (x + c).
     * 60 terms converge to double precision for x >= 6.
     */
    double x = -z, t = x;
    for (int k = 60; k >= 2; k--) {
        t = x + (double)k / t;
    }
    double c = 1.0 / t;
    return norm_pdf(z) * c / (x + c);
}

double kb_acq_ei(double mu, double sigma, double tau, double xi)
{
    double imp = tau - mu - xi;
    if (!(sigma > 0.0)) {
        return imp > 0.0 ? imp : 0.0;
    }
    return sigma * ei_unit(imp / sigma);
}

double kb_acq_pi(double mu, double sigma, double tau, double xi)
{
    double imp = tau - mu - xi;
    if (!(sigma > 0.0)) {
        return imp > 0.0 ? 1.0 : 0.0;
    }
    return norm_cdf(imp / sigma);
}

double kb_acq_ucb(double mu, double sigma, double kappa)
{
    return -(mu - kappa * sigma);
}

void kb_acq_eval(double *out, kb_acq_kind kind, const double *mean, const double *var, size_t m,
                 double tau, double param)
{
    for (size_t i = 0; i < m; i++) {
        double s = sqrt(fmax(var[i], 0.0));
        switch (kind) {
        case KB_ACQ_KIND_PI: out[i] = kb_acq_pi(mean[i], s, tau, param); break;
        case KB_ACQ_KIND_UCB: out[i] = kb_acq_ucb(mean[i], s, param); break;
        default: out[i] = kb_acq_ei(mean[i], s, tau, param);
        }
        if (!isfinite(out[i])) {
            out[i] = -INFINITY;
        }
    }
}

void kb_acq_lie(double *y_out, kb_acq_liar liar, const double *y_obs, size_t n_obs,
                const double *mean_pending, size_t n_pending)
{
    double lo = INFINITY, hi = -INFINITY, sum = 0.0;
    for (size_t i = 0; i < n_obs; i++) {
        lo = fmin(lo, y_obs[i]);
        hi = fmax(hi, y_obs[i]);
        sum += y_obs[i];
    }
    double v = liar == KB_ACQ_LIAR_MIN ? lo : (liar == KB_ACQ_LIAR_MAX ? hi : sum / (double)n_obs);
    for (size_t i = 0; i < n_pending; i++) {
        y_out[i] = liar == KB_ACQ_LIAR_BELIEVER || n_obs == 0 ? mean_pending[i] : v;
    }
}

/* Scores m points of U (ld_u): features into x (m x D), posterior, acquisition into out. */
typedef struct scorer {
    const kb_encode *e;
    kb_acq_predict_fn predict;
    void *payload;
    const kb_acq_opts *o;
    double tau;
    double *x, *mean, *var; /* capacity cap */
    size_t cap;
} scorer;

static int score(scorer *s, double *out, const double *u, size_t ld_u, size_t m, kb_error *err)
{
    for (size_t i0 = 0; i0 < m; i0 += s->cap) {
        size_t b = m - i0 < s->cap ? m - i0 : s->cap;
        kb_encode_features_matrix(s->x, b, s->e, u + i0, ld_u, b);
        int rc = s->predict(s->mean, s->var, s->x, b, b, s->payload, err);
        if (rc != KB_OK) {
            return rc;
        }
        double param = s->o->kind == KB_ACQ_KIND_UCB ? s->o->kappa : s->o->xi;
        kb_acq_eval(out + i0, s->o->kind, s->mean, s->var, b, s->tau, param);
    }
    return KB_OK;
}

static int score_pool(scorer *s, double *u_out, double *value_out, size_t *index_out,
                      const kb_encode_pool *pool, double *vals, kb_error *err)
{
    size_t p = kb_encode_n_params(s->e);
    int rc = score(s, vals, pool->u, pool->ld, pool->n, err);
    if (rc != KB_OK) {
        return rc;
    }
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < pool->n; i++) {
        if ((pool->used == NULL || !pool->used[i]) && (best == SIZE_MAX || vals[i] > vals[best])) {
            best = i;
        }
    }
    if (best == SIZE_MAX) {
        return kb_error_set(err, KB_ENOTFOUND, "acq: every pool configuration is used");
    }
    for (size_t j = 0; j < p; j++) {
        u_out[j] = pool->u[best + j * pool->ld];
    }
    *value_out = vals[best];
    *index_out = best;
    return KB_OK;
}

/* Neighbours of point c (P values) into nb (column-major, ld cap); returns how many. */
static size_t neighbours(double *nb, size_t cap, const kb_encode *e, const double *c, double step,
                         double *row)
{
    size_t p = kb_encode_n_params(e), m = 0;
    for (size_t j = 0; j < p && m < cap; j++) {
        if (isnan(c[j])) {
            continue;
        }
        size_t k = kb_encode_n_choices(e, j);
        size_t n_moves = k > 0 ? k : 2;
        for (size_t t = 0; t < n_moves && m < cap; t++) {
            memcpy(row, c, p * sizeof(double));
            if (k > 0) {
                row[j] = ((double)t + 0.5) / (double)k;
            } else {
                row[j] = c[j] + (t == 0 ? -step : step);
            }
            kb_encode_snap(e, row);
            if (memcmp(row, c, p * sizeof(double)) == 0) {
                continue;
            }
            for (size_t q = 0; q < p; q++) {
                nb[m + q * cap] = row[q];
            }
            m++;
        }
    }
    return m;
}

int kb_acq_maximize(double *u_out, double *value_out, size_t *pool_index_out, const kb_encode *e,
                    kb_acq_predict_fn predict, void *payload, double tau,
                    const kb_acq_opts *opts, const kb_encode_pool *pool, kb_rng *rng,
                    kb_error *err)
{
    KB_CHECK_ARG(u_out != NULL && e != NULL && predict != NULL && rng != NULL);
    kb_acq_opts defaults = KB_ACQ_OPTS_INIT;
    const kb_acq_opts *o = opts != NULL ? opts : &defaults;
    size_t p = kb_encode_n_params(e), d = kb_encode_n_dims(e);
    size_t n_cand = o->n_candidates > 0 ? o->n_candidates : 1;
    size_t nb_cap = 0;
    for (size_t j = 0; j < p; j++) {
        size_t k = kb_encode_n_choices(e, j);
        nb_cap += k > 0 ? k : 2;
    }
    size_t cap = 256;
    size_t n_vals = pool != NULL ? pool->n : n_cand;
    double *x = kb_malloc_array(cap * d + 1, sizeof(double));
    double *mean = kb_malloc_array(cap, sizeof(double));
    double *var = kb_malloc_array(cap, sizeof(double));
    double *vals = kb_malloc_array(n_vals + nb_cap + 1, sizeof(double));
    double *cand = pool != NULL ? NULL : kb_malloc_array(n_cand * p + 1, sizeof(double));
    double *nb = kb_malloc_array(nb_cap * p + 1, sizeof(double));
    double *row = kb_malloc_array(2 * p + 1, sizeof(double));
    double best_val = -INFINITY;
    int rc = KB_OK;
    if (x == NULL || mean == NULL || var == NULL || vals == NULL || nb == NULL || row == NULL ||
        (pool == NULL && cand == NULL)) {
        rc = kb_error_set(err, KB_ENOMEM, "acq: out of memory");
        goto done;
    }
    scorer s = {e, predict, payload, o, tau, x, mean, var, cap};
    if (pool_index_out != NULL) {
        *pool_index_out = SIZE_MAX;
    }
    if (pool != NULL) {
        size_t idx = SIZE_MAX;
        rc = score_pool(&s, u_out, &best_val, &idx, pool, vals, err);
        if (pool_index_out != NULL) {
            *pool_index_out = idx;
        }
        goto done;
    }
    rc = kb_encode_sample(cand, n_cand, e, n_cand, KB_ENCODE_DESIGN_UNIFORM, rng, err);
    if (rc == KB_OK) {
        rc = score(&s, vals, cand, n_cand, n_cand, err);
    }
    if (rc != KB_OK) {
        goto done;
    }
    /* pick the n_local best candidates by partial selection */
    size_t n_local = o->n_local < n_cand ? o->n_local : n_cand;
    if (n_local == 0) {
        n_local = 1;
    }
    double *cur = row + p;
    for (size_t l = 0; l < n_local; l++) {
        size_t bi = 0;
        for (size_t i = 1; i < n_cand; i++) {
            if (vals[i] > vals[bi]) {
                bi = i;
            }
        }
        double cur_val = vals[bi];
        vals[bi] = -INFINITY;
        for (size_t j = 0; j < p; j++) {
            cur[j] = cand[bi + j * n_cand];
        }
        double step = 0.1;
        for (size_t it = 0; it < o->max_local_iter && step > 1e-3; it++) {
            size_t m = neighbours(nb, nb_cap, e, cur, step, row);
            double *nv = vals + n_cand;
            if (m == 0) {
                break;
            }
            rc = score(&s, nv, nb, nb_cap, m, err);
            if (rc != KB_OK) {
                goto done;
            }
            size_t bn = 0;
            for (size_t i = 1; i < m; i++) {
                if (nv[i] > nv[bn]) {
                    bn = i;
                }
            }
            if (nv[bn] > cur_val) {
                cur_val = nv[bn];
                for (size_t j = 0; j < p; j++) {
                    cur[j] = nb[bn + j * nb_cap];
                }
            } else {
                step *= 0.5;
            }
        }
        if (cur_val > best_val || l == 0) {
            best_val = cur_val;
            memcpy(u_out, cur, p * sizeof(double));
        }
    }
done:
    if (rc == KB_OK && value_out != NULL) {
        *value_out = best_val;
    }
    kb_free(x);
    kb_free(mean);
    kb_free(var);
    kb_free(vals);
    kb_free(cand);
    kb_free(nb);
    kb_free(row);
    return rc;
}
