#include "engine/bo.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/core/alloc.h"

/* The surrogate the acquisition sees: target GP, plus neighbour models by `warm`. */
typedef struct surrogate {
    kb_bo_warm warm;
    const kb_gp *gp;          /* target (or residual) GP in z units; may be NULL */
    const kb_transfer *t;
    const double *w;          /* RGPE: n_tasks + 1 weights; STACKED: n_tasks */
    double w_sum;             /* STACKED */
    double spread;            /* STACKED: factor of the neighbours' spread added to var */
    double *bm, *bv;          /* scratch for base predictions */
    size_t cap;
    double *tm, *tv;          /* scratch for target predictions */
} surrogate;

static int uses_base(kb_bo_warm warm)
{
    return warm == KB_BO_WARM_STACKED || warm == KB_BO_WARM_RGPE || warm == KB_BO_WARM_AUTO ||
           warm == KB_BO_WARM_STACKED_RGPE;
}

/* Combine target predictions (tm, tv) with base ones (bm, bv: m x n_tasks) into mean/var. */
static void combine(double *mean, double *var, const surrogate *s, const double *tm,
                    const double *tv, const double *bm, const double *bv, size_t m)
{
    size_t nt = s->t != NULL ? kb_transfer_n_tasks(s->t) : 0;
    for (size_t r = 0; r < m; r++) {
        if (s->warm == KB_BO_WARM_STACKED) {
            double pm = 0.0;
            for (size_t i = 0; i < nt && s->w_sum > 0.0; i++) {
                pm += s->w[i] * bm[r + i * m] / s->w_sum;
            }
            mean[r] = pm + tm[r];
            var[r] = tv[r];
            if (s->spread > 0.0) {
                /* the prior as a mixture of its tasks: their spread about its mean */
                var[r] += s->spread * kb_transfer_spread(bm + r, m, s->w, nt);
            }
        } else if (uses_base(s->warm)) {
            double mu = s->w[nt] * tm[r], v = s->w[nt] * s->w[nt] * tv[r];
            for (size_t i = 0; i < nt; i++) {
                if (s->w[i] > 0.0) {
                    mu += s->w[i] * bm[r + i * m];
                    v += s->w[i] * s->w[i] * bv[r + i * m];
                }
            }
            mean[r] = mu;
            var[r] = v;
        } else {
            mean[r] = tm[r];
            var[r] = tv[r];
        }
    }
}

static int target_predict(double *tm, double *tv, const surrogate *s, const double *x,
                          size_t ld_x, size_t m, kb_error *err)
{
    if (s->gp != NULL) {
        return kb_gp_predict(tm, tv, s->gp, x, ld_x, m, err);
    }
    for (size_t r = 0; r < m; r++) {
        tm[r] = 0.0;
        tv[r] = 1.0;
    }
    return KB_OK;
}

static int surrogate_predict(double *mean, double *var, const double *x, size_t ld_x, size_t m,
                             void *payload, kb_error *err)
{
    surrogate *s = payload;
    if (m > s->cap) {
        return kb_error_set(err, KB_EINVAL, "bo: prediction block too large");
    }
    int rc = target_predict(s->tm, s->tv, s, x, ld_x, m, err);
    if (rc == KB_OK && uses_base(s->warm)) {
        size_t nt = kb_transfer_n_tasks(s->t);
        for (size_t i = 0; i < nt && rc == KB_OK; i++) {
            const kb_gp *g = kb_transfer_gp(s->t, i);
            if (g != NULL && s->w[i] > 0.0) {
                rc = kb_gp_predict(s->bm + i * m, s->bv + i * m, g, x, ld_x, m, err);
            } else {
                memset(s->bm + i * m, 0, m * sizeof(double));
                memset(s->bv + i * m, 0, m * sizeof(double));
            }
        }
    }
    if (rc == KB_OK) {
        combine(mean, var, s, s->tm, s->tv, s->bm, s->bv, m);
    }
    return rc;
}

/* Whether u (inc) is among the observed or pending configurations. */
static int seen(const kb_bo_problem *pr, const double *u, size_t inc, size_t p)
{
    for (size_t i = 0; i < pr->n_obs; i++) {
        if (kb_encode_same(pr->u_obs + i, pr->ld_obs, u, inc, p)) {
            return 1;
        }
    }
    for (size_t i = 0; i < pr->n_pending; i++) {
        if (kb_encode_same(pr->u_pending + i, pr->ld_pending, u, inc, p)) {
            return 1;
        }
    }
    return 0;
}

static size_t pool_row_of(const kb_encode_pool *pool, const double *u, size_t inc, size_t p)
{
    for (size_t r = 0; pool != NULL && r < pool->n; r++) {
        if (kb_encode_same(pool->u + r, pool->ld, u, inc, p)) {
            return r;
        }
    }
    return SIZE_MAX;
}

static void copy_point(double *u_out, const double *u, size_t inc, size_t p)
{
    for (size_t j = 0; j < p; j++) {
        u_out[j] = u[j * inc];
    }
}

/* Phase 1/2: a design point not seen yet, or 0 when the design is exhausted. */
static int from_design(double *u_out, const kb_bo_problem *pr, const double *design, size_t ld,
                       size_t n)
{
    size_t p = kb_encode_n_params(pr->enc);
    for (size_t i = 0; i < n; i++) {
        if (!seen(pr, design + i, ld, p)) {
            copy_point(u_out, design + i, ld, p);
            return 1;
        }
    }
    return 0;
}

static int cold_design(double *design, const kb_bo_problem *pr, const kb_bo_opts *o,
                       kb_error *err)
{
    size_t p = kb_encode_n_params(pr->enc), k = o->n_init;
    kb_rng rng;
    kb_rng_seed(&rng, o->seed);
    if (pr->pool == NULL) {
        return kb_encode_sample(design, k, pr->enc, k, KB_ENCODE_DESIGN_UNIFORM, &rng, err);
    }
    /* k distinct pool rows drawn from the seed alone (used marks are ignored on purpose) */
    size_t n = pr->pool->n;
    for (size_t i = 0; i < k; i++) {
        size_t r;
        int dup;
        do {
            r = (size_t)kb_rng_below(&rng, n);
            dup = 0;
            for (size_t c = 0; c < i; c++) {
                dup |= kb_encode_same(design + c, k, pr->pool->u + r, pr->pool->ld, p);
            }
        } while (dup && i < n);
        for (size_t j = 0; j < p; j++) {
            design[i + j * k] = pr->pool->u[r + j * pr->pool->ld];
        }
    }
    return KB_OK;
}

typedef struct fit_state {
    double *x;      /* (n_fin + n_pending) x D features */
    double *z;      /* targets of the GP (z, residuals, fantasies) */
    double *zobs;   /* z-scored finite observations */
    size_t *fin;    /* indices of finite observations */
    size_t n_fin;
    double *bm, *bv; /* base predictions at the finite observations */
    double *w;       /* n_tasks + 1 */
    double *lm, *lv; /* LOO */
    kb_gp *gp;
} fit_state;

static void fit_state_release(fit_state *f)
{
    kb_free(f->x);
    kb_free(f->z);
    kb_free(f->zobs);
    kb_free(f->fin);
    kb_free(f->bm);
    kb_free(f->bv);
    kb_free(f->w);
    kb_free(f->lm);
    kb_free(f->lv);
    kb_gp_free(f->gp);
}

/* Base-model posteriors at the finite observations (z units), from the pool cache if possible. */
static int base_at_obs(fit_state *f, const kb_bo_problem *pr, kb_error *err)
{
    size_t p = kb_encode_n_params(pr->enc), n = f->n_fin;
    size_t *rows = kb_malloc_array(n + 1, sizeof(size_t));
    double *u = kb_malloc_array(n * p + 1, sizeof(double));
    if (rows == NULL || u == NULL) {
        kb_free(rows);
        kb_free(u);
        return kb_error_set(err, KB_ENOMEM, "bo: out of memory");
    }
    int all_rows = pr->pool != NULL;
    for (size_t i = 0; i < n; i++) {
        const double *ui = pr->u_obs + f->fin[i];
        for (size_t j = 0; j < p; j++) {
            u[i + j * n] = ui[j * pr->ld_obs];
        }
        rows[i] = all_rows ? pool_row_of(pr->pool, ui, pr->ld_obs, p) : SIZE_MAX;
        all_rows = all_rows && rows[i] != SIZE_MAX;
    }
    kb_error sub = KB_ERROR_INIT;
    int rc = kb_transfer_predict(f->bm, f->bv, pr->transfer, u, n, all_rows ? rows : NULL, n,
                                 &sub);
    if (rc == KB_EINVAL && all_rows) {
        rc = kb_transfer_predict(f->bm, f->bv, pr->transfer, u, n, NULL, n, err);
    } else if (rc != KB_OK && err != NULL) {
        *err = sub;
    }
    kb_free(rows);
    kb_free(u);
    return rc;
}

/*
 * Weights of the stacked prior mean from the target's own results: the RGPE weights
 * (kb_transfer_rgpe_weights) of the neighbour GPs against a GP fitted on the target's raw z,
 * judged leave-one-out. The target's share is left out of the mean, so the prior fades as the
 * target's own model ranks its results best; neighbours that rank them wrongly lose weight.
 * Before two results nothing can be ranked: similarity weights, normalised.
 */
static int stacked_rgpe_weights(fit_state *f, const kb_bo_problem *pr, const kb_bo_opts *o,
                                double w_sum, kb_rng *rng, kb_error *err)
{
    size_t nt = kb_transfer_n_tasks(pr->transfer), n = f->n_fin;
    size_t d = kb_encode_n_dims(pr->enc), ld = pr->n_obs + pr->n_pending;
    if (n < 2) {
        for (size_t i = 0; i < nt; i++) {
            f->w[i] = w_sum > 0.0 ? kb_transfer_weight(pr->transfer, i) / w_sum : 0.0;
        }
        f->w[nt] = 0.0;
        return KB_OK;
    }
    kb_gp_opts go = o->gp;
    go.seed = o->seed + ld;
    kb_gp *raw = NULL;
    int rc = kb_gp_fit(&raw, f->x, ld, n, d, f->zobs, &go, NULL, err);
    if (rc == KB_OK) {
        rc = kb_gp_loo(f->lm, f->lv, raw, err);
    }
    if (rc == KB_OK) {
        rc = kb_transfer_rgpe_weights(f->w, pr->transfer, f->bm, f->bv, f->lm, f->lv, f->zobs, n,
                                      o->rgpe_samples, rng, err);
    }
    kb_gp_free(raw);
    return rc;
}

static int model_suggest(double *u_out, kb_bo_info *info, const kb_bo_problem *pr,
                         const kb_bo_opts *o, kb_rng *rng, kb_error *err)
{
    const kb_encode *e = pr->enc;
    size_t p = kb_encode_n_params(e), d = kb_encode_n_dims(e);
    size_t nt = pr->transfer != NULL ? kb_transfer_n_tasks(pr->transfer) : 0;
    kb_bo_warm warm = o->warm;
    if (nt == 0 && warm != KB_BO_WARM_NONE) {
        warm = KB_BO_WARM_NONE; /* no neighbours: a plain GP */
    }
    if (warm == KB_BO_WARM_AUTO) {
        warm = KB_BO_WARM_STACKED_RGPE;
    }
    if (warm == KB_BO_WARM_STACKED_RGPE && o->cold_every > 0 &&
        (pr->n_obs + pr->n_pending) % o->cold_every == o->cold_every - 1) {
        warm = KB_BO_WARM_NONE; /* a trial of the target's own model, for coverage */
    }
    fit_state f = {0};
    surrogate s = {warm, NULL, pr->transfer, NULL, 0.0, 0.0, NULL, NULL, 256, NULL, NULL};
    double *pm = NULL, *pv = NULL, *acq = NULL, *pbm = NULL, *pbv = NULL;
    size_t *rows = NULL;
    int rc = KB_OK;
    size_t n_all = pr->n_obs + pr->n_pending;
    f.x = kb_malloc_array(n_all * d + 1, sizeof(double));
    f.z = kb_malloc_array(n_all + 1, sizeof(double));
    f.zobs = kb_malloc_array(n_all + 1, sizeof(double));
    f.fin = kb_malloc_array(n_all + 1, sizeof(size_t));
    f.bm = kb_malloc_array(n_all * nt + 1, sizeof(double));
    f.bv = kb_malloc_array(n_all * nt + 1, sizeof(double));
    f.w = kb_calloc(nt + 2, sizeof(double));
    f.lm = kb_malloc_array(n_all + 1, sizeof(double));
    f.lv = kb_malloc_array(n_all + 1, sizeof(double));
    s.bm = kb_malloc_array(s.cap * nt + 1, sizeof(double));
    s.bv = kb_malloc_array(s.cap * nt + 1, sizeof(double));
    s.tm = kb_malloc_array(s.cap, sizeof(double));
    s.tv = kb_malloc_array(s.cap, sizeof(double));
    if (f.x == NULL || f.z == NULL || f.zobs == NULL || f.fin == NULL || f.bm == NULL ||
        f.bv == NULL || f.w == NULL || f.lm == NULL || f.lv == NULL || s.bm == NULL ||
        s.bv == NULL || s.tm == NULL || s.tv == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "bo: out of memory");
        goto done;
    }
    /* z-score the finite observations */
    double mean = 0.0, ss = 0.0;
    for (size_t i = 0; i < pr->n_obs; i++) {
        if (isfinite(pr->y_obs[i])) {
            f.fin[f.n_fin++] = i;
            mean += pr->y_obs[i];
        }
    }
    size_t n = f.n_fin;
    mean = n > 0 ? mean / (double)n : 0.0;
    for (size_t i = 0; i < n; i++) {
        ss += (pr->y_obs[f.fin[i]] - mean) * (pr->y_obs[f.fin[i]] - mean);
    }
    double sd = n > 1 && ss > 0.0 ? sqrt(ss / (double)n) : 1.0;
    double tau = 0.0;
    for (size_t i = 0; i < n; i++) {
        f.zobs[i] = (pr->y_obs[f.fin[i]] - mean) / sd;
        tau = i == 0 ? f.zobs[i] : fmin(tau, f.zobs[i]);
    }
    {
        double *ui = kb_malloc_array(p + 1, sizeof(double)), *xi = kb_malloc_array(d + 1, sizeof(double));
        if (ui == NULL || xi == NULL) {
            kb_free(ui);
            kb_free(xi);
            rc = kb_error_set(err, KB_ENOMEM, "bo: out of memory");
            goto done;
        }
        for (size_t i = 0; i < n_all; i++) {
            const double *src = i < n ? pr->u_obs + f.fin[i] : pr->u_pending + (i - n);
            size_t ld = i < n ? pr->ld_obs : pr->ld_pending;
            if (i >= n + pr->n_pending) {
                break;
            }
            copy_point(ui, src, ld, p);
            kb_encode_features(xi, e, ui);
            for (size_t k = 0; k < d; k++) {
                f.x[i + k * n_all] = xi[k];
            }
        }
        kb_free(ui);
        kb_free(xi);
    }
    size_t n_model = n + pr->n_pending; /* rows of f.x in use; ld is n_all */
    /* targets of the target GP */
    if (uses_base(warm) && n > 0) {
        rc = base_at_obs(&f, pr, err);
        if (rc != KB_OK) {
            goto done;
        }
    }
    double w_sum = 0.0;
    for (size_t i = 0; i < nt; i++) {
        w_sum += kb_transfer_weight(pr->transfer, i);
    }
    if (warm == KB_BO_WARM_STACKED_RGPE) {
        rc = stacked_rgpe_weights(&f, pr, o, w_sum, rng, err);
        if (rc != KB_OK) {
            goto done;
        }
        info->target_weight = f.w[nt];
    }
    for (size_t i = 0; i < n; i++) {
        f.z[i] = f.zobs[i];
        if (warm == KB_BO_WARM_STACKED_RGPE) {
            for (size_t t = 0; t < nt; t++) {
                f.z[i] -= f.w[t] * f.bm[i + t * n];
            }
        } else if (warm == KB_BO_WARM_STACKED && w_sum > 0.0) {
            double m = 0.0;
            for (size_t t = 0; t < nt; t++) {
                m += kb_transfer_weight(pr->transfer, t) * f.bm[i + t * n] / w_sum;
            }
            f.z[i] -= m;
        }
    }
    kb_gp_opts go = o->gp;
    go.seed = o->seed + n_all;
    kb_gp_prior priors[130];
    double theta0[130];
    if (warm == KB_BO_WARM_PRIORS && d + 2 <= 130) {
        kb_transfer_hyper_priors(priors, theta0, pr->transfer);
        int ok = 1;
        for (size_t j = 0; j < d + 2; j++) {
            ok = ok && isfinite(theta0[j]);
        }
        if (ok) {
            go.priors = priors;
            go.theta_init = theta0;
        }
    }
    kb_gp_fit_info gi = {0};
    gi.converged = 1;
    if (n > 0) {
        /* with one point there is nothing to learn the hyperparameters from */
        go.optimize = go.optimize && n >= 2;
        rc = kb_gp_fit(&f.gp, f.x, n_all, n, d, f.z, &go, &gi, err);
        if (rc != KB_OK) {
            goto done;
        }
        if (pr->n_pending > 0) {
            /* fantasies for the pending trials, then refit with the hyperparameters fixed */
            double *pmean = kb_malloc_array(pr->n_pending, sizeof(double));
            double *pvar = kb_malloc_array(pr->n_pending, sizeof(double));
            double *xp = kb_malloc_array(pr->n_pending * d, sizeof(double));
            if (pmean == NULL || pvar == NULL || xp == NULL) {
                kb_free(pmean);
                kb_free(pvar);
                kb_free(xp);
                rc = kb_error_set(err, KB_ENOMEM, "bo: out of memory");
                goto done;
            }
            for (size_t k = 0; k < d; k++) {
                for (size_t i = 0; i < pr->n_pending; i++) {
                    xp[i + k * pr->n_pending] = f.x[n + i + k * n_all];
                }
            }
            rc = kb_gp_predict(pmean, pvar, f.gp, xp, pr->n_pending, pr->n_pending, err);
            if (rc == KB_OK) {
                kb_acq_lie(f.z + n, o->liar, f.z, n, pmean, pr->n_pending);
                kb_gp_opts fo = go;
                fo.optimize = 0;
                fo.theta_init = kb_gp_theta(f.gp);
                fo.priors = NULL;
                kb_gp *g2 = NULL;
                rc = kb_gp_fit(&g2, f.x, n_all, n_model, d, f.z, &fo, NULL, err);
                if (rc == KB_OK) {
                    kb_gp_free(f.gp);
                    f.gp = g2;
                }
            }
            kb_free(pmean);
            kb_free(pvar);
            kb_free(xp);
            if (rc != KB_OK) {
                goto done;
            }
        }
    }
    info->gp_converged = gi.converged;
    s.gp = f.gp;
    if (warm == KB_BO_WARM_RGPE) {
        if (n >= 2) {
            rc = kb_gp_loo(f.lm, f.lv, f.gp, err);
            if (rc == KB_OK) {
                rc = kb_transfer_rgpe_weights(f.w, pr->transfer, f.bm, f.bv, f.lm, f.lv, f.zobs,
                                              n, o->rgpe_samples, rng, err);
            }
            if (rc != KB_OK) {
                goto done;
            }
        } else {
            /* no ranking to judge by yet: the neighbours by similarity weight */
            for (size_t i = 0; i < nt; i++) {
                f.w[i] = w_sum > 0.0 ? kb_transfer_weight(pr->transfer, i) / w_sum : 0.0;
            }
        }
        info->target_weight = f.w[nt];
        s.w = f.w;
    } else if (warm == KB_BO_WARM_STACKED) {
        for (size_t i = 0; i < nt; i++) {
            f.w[i] = kb_transfer_weight(pr->transfer, i);
        }
        s.w = f.w;
        s.w_sum = w_sum;
    } else if (warm == KB_BO_WARM_STACKED_RGPE) {
        /* the prior mean sum_t w_t mu_t (weights sum to 1 - the target's): combine as STACKED */
        s.warm = KB_BO_WARM_STACKED;
        s.w = f.w;
        s.w_sum = 1.0;
        s.spread = o->prior_spread;
    }
    for (size_t i = 0; i < nt; i++) {
        info->n_neighbours += kb_transfer_weight(pr->transfer, i) > 0.0;
    }
    if (n == 0) {
        tau = 0.0; /* no incumbent: improvement over the mean */
    }
    double param = o->acq.kind == KB_ACQ_KIND_UCB ? o->acq.kappa : o->acq.xi;
    if (pr->pool != NULL && uses_base(warm)) {
        /* pool with cached neighbour predictions: score every row directly */
        size_t m = pr->pool->n;
        pm = kb_malloc_array(m + 1, sizeof(double));
        pv = kb_malloc_array(m + 1, sizeof(double));
        acq = kb_malloc_array(m + 1, sizeof(double));
        pbm = kb_malloc_array(m * nt + 1, sizeof(double));
        pbv = kb_malloc_array(m * nt + 1, sizeof(double));
        rows = kb_malloc_array(m + 1, sizeof(size_t));
        double *xm = kb_malloc_array(m * d + 1, sizeof(double));
        double *tm = kb_malloc_array(m + 1, sizeof(double)), *tv = kb_malloc_array(m + 1, sizeof(double));
        if (pm == NULL || pv == NULL || acq == NULL || pbm == NULL || pbv == NULL ||
            rows == NULL || xm == NULL || tm == NULL || tv == NULL) {
            kb_free(xm);
            kb_free(tm);
            kb_free(tv);
            rc = kb_error_set(err, KB_ENOMEM, "bo: out of memory");
            goto done;
        }
        for (size_t r = 0; r < m; r++) {
            rows[r] = r;
        }
        kb_encode_features_matrix(xm, m, e, pr->pool->u, pr->pool->ld, m);
        kb_error sub = KB_ERROR_INIT;
        rc = kb_transfer_predict(pbm, pbv, pr->transfer, NULL, 0, rows, m, &sub);
        if (rc != KB_OK) {
            rc = kb_transfer_predict(pbm, pbv, pr->transfer, pr->pool->u, pr->pool->ld, NULL, m,
                                     err);
        }
        if (rc == KB_OK) {
            rc = target_predict(tm, tv, &s, xm, m, m, err);
        }
        if (rc == KB_OK) {
            combine(pm, pv, &s, tm, tv, pbm, pbv, m);
            kb_acq_eval(acq, o->acq.kind, pm, pv, m, tau, param);
            size_t best = SIZE_MAX;
            for (size_t r = 0; r < m; r++) {
                if ((pr->pool->used == NULL || !pr->pool->used[r]) &&
                    (best == SIZE_MAX || acq[r] > acq[best])) {
                    best = r;
                }
            }
            if (best == SIZE_MAX) {
                rc = kb_error_set(err, KB_ENOTFOUND, "bo: every pool configuration is used");
            } else {
                copy_point(u_out, pr->pool->u + best, pr->pool->ld, p);
                info->pool_index = best;
                info->acq_value = acq[best];
            }
        }
        kb_free(xm);
        kb_free(tm);
        kb_free(tv);
        goto done;
    }
    rc = kb_acq_maximize(u_out, &info->acq_value, &info->pool_index, e, surrogate_predict, &s, tau,
                         &o->acq, pr->pool, rng, err);
done:
    fit_state_release(&f);
    kb_free(s.bm);
    kb_free(s.bv);
    kb_free(s.tm);
    kb_free(s.tv);
    kb_free(pm);
    kb_free(pv);
    kb_free(acq);
    kb_free(pbm);
    kb_free(pbv);
    kb_free(rows);
    return rc;
}

int kb_bo_suggest(double *u_out, kb_bo_info *info_out, const kb_bo_problem *prob,
                  const kb_bo_opts *opts, kb_error *err)
{
    return kb_bo_suggest_design(u_out, info_out, prob, NULL, 0, 0, opts, err);
}

int kb_bo_suggest_design(double *u_out, kb_bo_info *info_out, const kb_bo_problem *prob,
                         const double *u_design, size_t ld_design, size_t n_design,
                         const kb_bo_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(u_out != NULL && prob != NULL && prob->enc != NULL);
    KB_CHECK_ARG(prob->n_obs == 0 || (prob->u_obs != NULL && prob->y_obs != NULL));
    KB_CHECK_ARG(prob->ld_obs >= prob->n_obs && prob->ld_pending >= prob->n_pending);
    KB_CHECK_ARG(prob->n_pending == 0 || prob->u_pending != NULL);
    KB_CHECK_ARG(n_design == 0 || (u_design != NULL && ld_design >= n_design));
    kb_bo_opts defaults = KB_BO_OPTS_INIT;
    const kb_bo_opts *o = opts != NULL ? opts : &defaults;
    kb_bo_info info = {KB_BO_PHASE_MODEL, SIZE_MAX, NAN, 1, NAN, 0};
    size_t p = kb_encode_n_params(prob->enc);
    size_t n_hist = prob->n_obs + prob->n_pending;
    kb_rng rng, base;
    kb_rng_seed(&base, o->seed);
    kb_rng_split(&rng, &base, 1000 + (uint64_t)n_hist);
    double *design = NULL;
    int rc = KB_OK;
    int has_tasks = (prob->transfer != NULL && kb_transfer_n_tasks(prob->transfer) > 0) ||
                    n_design > 0;
    int warm_design = has_tasks &&
                      (o->warm == KB_BO_WARM_NEAREST || o->warm == KB_BO_WARM_PORTFOLIO ||
                       (o->warm == KB_BO_WARM_AUTO && o->auto_design > 0));
    /* auto: a short greedy portfolio, then the stacked model (KB_BO_WARM_AUTO above) */
    size_t n_first = o->warm == KB_BO_WARM_AUTO ? o->auto_design : o->n_warm_init;
    int cold_init = o->warm == KB_BO_WARM_NONE || o->warm == KB_BO_WARM_PRIORS ||
                    o->warm == KB_BO_WARM_RGPE || prob->transfer == NULL ||
                    (warm_design && n_first == 0);
    if (warm_design && n_first > 0 && n_design > 0) {
        size_t k = n_first < n_design ? n_first : n_design;
        if (from_design(u_out, prob, u_design, ld_design, k)) {
            info.phase = KB_BO_PHASE_WARM_INIT;
            info.pool_index = pool_row_of(prob->pool, u_out, 1, p);
            goto done;
        }
    } else if (warm_design && n_first > 0) {
        size_t k = n_first, got = 0;
        design = kb_malloc_array(k * p + 1, sizeof(double));
        if (design == NULL) {
            rc = kb_error_set(err, KB_ENOMEM, "bo: out of memory");
            goto done;
        }
        /* the design of the neighbours alone (ignoring used marks), so that it is stable */
        kb_encode_pool all = {0};
        if (prob->pool != NULL) {
            all = *prob->pool;
            all.used = NULL;
        }
        rc = kb_transfer_initial_design(design, k, &got, prob->transfer, k,
                                        o->warm != KB_BO_WARM_NEAREST,
                                        prob->pool != NULL ? &all : NULL, err);
        if (rc == KB_EINVAL) {
            /* no pool, or the transfer has no cache of it: the portfolio needs the tasks'
               values at common candidates, so fall back to the nearest tasks' best */
            rc = kb_transfer_initial_design(design, k, &got, prob->transfer, k, 0, NULL, err);
        }
        if (rc != KB_OK) {
            goto done;
        }
        if (from_design(u_out, prob, design, k, got)) {
            info.phase = KB_BO_PHASE_WARM_INIT;
            info.pool_index = pool_row_of(prob->pool, u_out, 1, p);
            goto done;
        }
        kb_free(design);
        design = NULL;
    }
    if (cold_init && n_hist < o->n_init) {
        design = kb_malloc_array(o->n_init * p + 1, sizeof(double));
        if (design == NULL) {
            rc = kb_error_set(err, KB_ENOMEM, "bo: out of memory");
            goto done;
        }
        rc = cold_design(design, prob, o, err);
        if (rc != KB_OK) {
            goto done;
        }
        if (from_design(u_out, prob, design, o->n_init, o->n_init)) {
            info.phase = KB_BO_PHASE_COLD_INIT;
            info.pool_index = pool_row_of(prob->pool, u_out, 1, p);
            goto done;
        }
    }
    switch (o->method) {
    case KB_BO_METHOD_RANDOM:
        rc = kb_tpe_suggest_random(u_out, &info.pool_index, prob->enc, prob->pool, &rng, err);
        break;
    case KB_BO_METHOD_TPE: {
        kb_tpe_opts to = o->tpe;
        to.n_startup = 0;
        rc = kb_tpe_suggest(u_out, &info.pool_index, prob->enc, prob->u_obs, prob->ld_obs,
                            prob->n_obs, prob->y_obs, &to, prob->pool, &rng, err);
        break;
    }
    default:
        rc = model_suggest(u_out, &info, prob, o, &rng, err);
    }
done:
    kb_free(design);
    if (info_out != NULL) {
        *info_out = info;
    }
    return rc;
}
