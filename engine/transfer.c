#include "engine/transfer.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/alloc.h"

typedef struct task_data {
    size_t n;
    double *u; /* n x P */
    double *z; /* z-scored y (NaN kept for failed) */
    double z_min, z_max;
    size_t best; /* index of the smallest z, SIZE_MAX if none */
    kb_gp *gp;
} task_data;

struct kb_transfer {
    const kb_encode *e;
    size_t n_tasks, p, d;
    task_data *tasks;
    double *w;
    const kb_encode_pool *pool;
    double *pool_mean, *pool_var, *pool_val; /* pool->n x n_tasks */
};

size_t kb_transfer_n_tasks(const kb_transfer *t) { return t->n_tasks; }
double kb_transfer_weight(const kb_transfer *t, size_t i) { return t->w[i]; }
const kb_gp *kb_transfer_gp(const kb_transfer *t, size_t i) { return t->tasks[i].gp; }

void kb_transfer_set_weights(kb_transfer *t, const double *weights)
{
    for (size_t i = 0; i < t->n_tasks; i++) {
        t->w[i] = weights[i] > 0.0 && isfinite(weights[i]) ? weights[i] : 0.0;
    }
}

void kb_transfer_free(kb_transfer *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; t->tasks != NULL && i < t->n_tasks; i++) {
        kb_free(t->tasks[i].u);
        kb_free(t->tasks[i].z);
        kb_gp_free(t->tasks[i].gp);
    }
    kb_free(t->tasks);
    kb_free(t->w);
    kb_free(t->pool_mean);
    kb_free(t->pool_var);
    kb_free(t->pool_val);
    kb_free(t);
}

/* Rows kept from a task: all, or the best half of max_points plus an even spread of the rest. */
static size_t select_rows(size_t *keep, const kb_transfer_task *s, size_t max_points)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (isfinite(s->y[i])) {
            keep[n++] = i;
        }
    }
    if (max_points == 0 || n <= max_points) {
        return n;
    }
    /* sort kept rows by y (insertion sort: tasks are small) */
    for (size_t i = 1; i < n; i++) {
        size_t v = keep[i], j = i;
        while (j > 0 && s->y[keep[j - 1]] > s->y[v]) {
            keep[j] = keep[j - 1];
            j--;
        }
        keep[j] = v;
    }
    size_t n_best = max_points / 2, n_rest = max_points - n_best;
    for (size_t r = 0; r < n_rest; r++) {
        keep[n_best + r] = keep[n_best + (r * (n - n_best)) / n_rest];
    }
    return max_points;
}

static int load_task(task_data *td, const kb_transfer *t, const kb_transfer_task *s,
                     const kb_transfer_opts *o, kb_error *err)
{
    size_t p = t->p, d = t->d;
    size_t *keep = kb_malloc_array(s->n + 1, sizeof(size_t));
    double *x = NULL;
    int rc = KB_OK;
    if (keep == NULL) {
        return kb_error_set(err, KB_ENOMEM, "transfer: out of memory");
    }
    size_t n = select_rows(keep, s, o->max_points);
    td->n = n;
    td->best = SIZE_MAX;
    td->u = kb_malloc_array(n * p + 1, sizeof(double));
    td->z = kb_malloc_array(n + 1, sizeof(double));
    x = kb_malloc_array(n * d + 1, sizeof(double));
    if (td->u == NULL || td->z == NULL || x == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "transfer: out of memory");
        goto done;
    }
    double mean = 0.0, ss = 0.0;
    for (size_t r = 0; r < n; r++) {
        for (size_t j = 0; j < p; j++) {
            td->u[r + j * n] = s->u[keep[r] + j * s->ld];
        }
        mean += s->y[keep[r]] / (double)n;
    }
    for (size_t r = 0; r < n; r++) {
        ss += (s->y[keep[r]] - mean) * (s->y[keep[r]] - mean);
    }
    double sd = n > 1 && ss > 0.0 ? sqrt(ss / (double)n) : 1.0;
    td->z_min = INFINITY;
    td->z_max = -INFINITY;
    for (size_t r = 0; r < n; r++) {
        td->z[r] = (s->y[keep[r]] - mean) / sd;
        if (td->z[r] < td->z_min) {
            td->z_min = td->z[r];
            td->best = r;
        }
        td->z_max = fmax(td->z_max, td->z[r]);
    }
    if (n < 2) {
        goto done;
    }
    kb_encode_features_matrix(x, n, t->e, td->u, n, n);
    rc = kb_gp_fit(&td->gp, x, n, n, d, td->z, &o->gp, NULL, err);
done:
    kb_free(keep);
    kb_free(x);
    return rc;
}

int kb_transfer_new(kb_transfer **out, const kb_encode *e, const kb_transfer_task *tasks,
                    size_t n_tasks, const kb_transfer_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && e != NULL && (tasks != NULL || n_tasks == 0));
    *out = NULL;
    kb_transfer_opts defaults = KB_TRANSFER_OPTS_INIT;
    const kb_transfer_opts *o = opts != NULL ? opts : &defaults;
    kb_transfer *t = kb_calloc(1, sizeof *t);
    if (t == NULL) {
        return kb_error_set(err, KB_ENOMEM, "transfer: out of memory");
    }
    t->e = e;
    t->n_tasks = n_tasks;
    t->p = kb_encode_n_params(e);
    t->d = kb_encode_n_dims(e);
    t->tasks = kb_calloc(n_tasks + 1, sizeof(task_data));
    t->w = kb_calloc(n_tasks + 1, sizeof(double));
    if (t->tasks == NULL || t->w == NULL) {
        kb_transfer_free(t);
        return kb_error_set(err, KB_ENOMEM, "transfer: out of memory");
    }
    for (size_t i = 0; i < n_tasks; i++) {
        KB_CHECK_ARG(tasks[i].n == 0 || (tasks[i].u != NULL && tasks[i].y != NULL));
        int rc = load_task(&t->tasks[i], t, &tasks[i], o, err);
        if (rc != KB_OK) {
            kb_error_prefix(err, "task %zu: ", i);
            kb_transfer_free(t);
            return rc;
        }
        t->w[i] = tasks[i].weight > 0.0 && isfinite(tasks[i].weight) ? tasks[i].weight : 0.0;
    }
    *out = t;
    return KB_OK;
}

/* Row of task td equal to u (P values at stride inc), or SIZE_MAX. */
static size_t find_row(const task_data *td, size_t p, const double *u, size_t inc)
{
    for (size_t r = 0; r < td->n; r++) {
        if (kb_encode_same(td->u + r, td->n, u, inc, p)) {
            return r;
        }
    }
    return SIZE_MAX;
}

static int predict_task(double *mean, double *var, const kb_transfer *t, size_t i,
                        const double *x, size_t ld_x, size_t m, kb_error *err)
{
    if (t->tasks[i].gp == NULL) {
        for (size_t r = 0; r < m; r++) {
            mean[r] = 0.0;
            var[r] = 1.0;
        }
        return KB_OK;
    }
    return kb_gp_predict(mean, var, t->tasks[i].gp, x, ld_x, m, err);
}

int kb_transfer_cache_pool(kb_transfer *t, const kb_encode_pool *pool, kb_error *err)
{
    KB_CHECK_ARG(t != NULL && pool != NULL);
    size_t m = pool->n, nt = t->n_tasks;
    kb_free(t->pool_mean);
    kb_free(t->pool_var);
    kb_free(t->pool_val);
    t->pool = NULL;
    t->pool_mean = kb_malloc_array(m * nt + 1, sizeof(double));
    t->pool_var = kb_malloc_array(m * nt + 1, sizeof(double));
    t->pool_val = kb_malloc_array(m * nt + 1, sizeof(double));
    double *x = kb_malloc_array(m * t->d + 1, sizeof(double));
    if (t->pool_mean == NULL || t->pool_var == NULL || t->pool_val == NULL || x == NULL) {
        kb_free(x);
        return kb_error_set(err, KB_ENOMEM, "transfer: out of memory");
    }
    kb_encode_features_matrix(x, m, t->e, pool->u, pool->ld, m);
    for (size_t i = 0; i < nt; i++) {
        int rc = predict_task(t->pool_mean + i * m, t->pool_var + i * m, t, i, x, m, m, err);
        if (rc != KB_OK) {
            kb_free(x);
            return rc;
        }
        for (size_t r = 0; r < m; r++) {
            size_t row = find_row(&t->tasks[i], t->p, pool->u + r, pool->ld);
            t->pool_val[r + i * m] = row != SIZE_MAX ? t->tasks[i].z[row] : t->pool_mean[r + i * m];
        }
    }
    kb_free(x);
    t->pool = pool;
    return KB_OK;
}

int kb_transfer_predict(double *mean_out, double *var_out, const kb_transfer *t,
                        const double *u, size_t ld_u, const size_t *rows, size_t m,
                        kb_error *err)
{
    KB_CHECK_ARG(mean_out != NULL && var_out != NULL && t != NULL);
    KB_CHECK_ARG(rows == NULL || t->pool != NULL);
    size_t nt = t->n_tasks;
    if (rows != NULL) {
        size_t pm = t->pool->n;
        for (size_t i = 0; i < nt; i++) {
            for (size_t r = 0; r < m; r++) {
                mean_out[r + i * m] = t->w[i] > 0.0 ? t->pool_mean[rows[r] + i * pm] : 0.0;
                var_out[r + i * m] = t->w[i] > 0.0 ? t->pool_var[rows[r] + i * pm] : 0.0;
            }
        }
        return KB_OK;
    }
    double *x = kb_malloc_array(m * t->d + 1, sizeof(double));
    if (x == NULL) {
        return kb_error_set(err, KB_ENOMEM, "transfer: out of memory");
    }
    kb_encode_features_matrix(x, m, t->e, u, ld_u, m);
    int rc = KB_OK;
    for (size_t i = 0; i < nt && rc == KB_OK; i++) {
        if (t->w[i] > 0.0) {
            rc = predict_task(mean_out + i * m, var_out + i * m, t, i, x, m, m, err);
        } else {
            memset(mean_out + i * m, 0, m * sizeof(double));
            memset(var_out + i * m, 0, m * sizeof(double));
        }
    }
    kb_free(x);
    return rc;
}

static int is_used(const kb_encode_pool *pool, size_t r)
{
    return pool->used != NULL && pool->used[r];
}

/* Whether u (inc) is a used pool row, or already among the n chosen rows of out. */
static int taken(const kb_encode_pool *pool, const double *u, size_t inc, const double *out,
                 size_t ld_out, size_t n, size_t p)
{
    for (size_t c = 0; c < n; c++) {
        if (kb_encode_same(out + c, ld_out, u, inc, p)) {
            return 1;
        }
    }
    if (pool == NULL) {
        return 0;
    }
    for (size_t r = 0; r < pool->n; r++) {
        if (is_used(pool, r) && kb_encode_same(pool->u + r, pool->ld, u, inc, p)) {
            return 1;
        }
    }
    return 0;
}

/*
 * Whether `pool` has the rows of the cached pool: callers pass copies of the pool struct with
 * other used marks (kb_bo builds the design ignoring them), so compare rows, not structs.
 */
static int same_rows(const kb_encode_pool *cached, const kb_encode_pool *pool)
{
    return cached != NULL && pool != NULL && cached->u == pool->u && cached->ld == pool->ld &&
           cached->n == pool->n;
}

static int greedy_portfolio(double *u_out, size_t ld_out, size_t *n_out, const kb_transfer *t,
                            size_t k, const kb_encode_pool *pool, kb_error *err)
{
    size_t nt = t->n_tasks, p = t->p;
    if (!same_rows(t->pool, pool)) {
        return kb_error_set(err, KB_EINVAL, "transfer: the portfolio needs a cached pool");
    }
    size_t m = pool->n;
    double *cur = kb_malloc_array(nt + 1, sizeof(double));
    unsigned char *chosen = kb_calloc(m + 1, 1);
    if (cur == NULL || chosen == NULL) {
        kb_free(cur);
        kb_free(chosen);
        return kb_error_set(err, KB_ENOMEM, "transfer: out of memory");
    }
    /* cur[i]: best normalised regret on task i of the rows chosen so far (1 = worst) */
    for (size_t i = 0; i < nt; i++) {
        cur[i] = 1.0;
    }
    size_t n = 0;
    while (n < k) {
        size_t best = SIZE_MAX;
        double best_v = INFINITY;
        for (size_t r = 0; r < m; r++) {
            if (chosen[r] || is_used(pool, r)) {
                continue;
            }
            double v = 0.0;
            for (size_t i = 0; i < nt; i++) {
                const task_data *td = &t->tasks[i];
                if (t->w[i] <= 0.0 || !(td->z_max > td->z_min)) {
                    continue;
                }
                double reg = (t->pool_val[r + i * m] - td->z_min) / (td->z_max - td->z_min);
                v += t->w[i] * fmin(cur[i], fmax(reg, 0.0));
            }
            if (v < best_v) {
                best_v = v;
                best = r;
            }
        }
        if (best == SIZE_MAX) {
            break;
        }
        chosen[best] = 1;
        for (size_t i = 0; i < nt; i++) {
            const task_data *td = &t->tasks[i];
            if (td->z_max > td->z_min) {
                double reg = (t->pool_val[best + i * m] - td->z_min) / (td->z_max - td->z_min);
                cur[i] = fmin(cur[i], fmax(reg, 0.0));
            }
        }
        for (size_t j = 0; j < p; j++) {
            u_out[n + j * ld_out] = pool->u[best + j * pool->ld];
        }
        n++;
    }
    kb_free(cur);
    kb_free(chosen);
    *n_out = n;
    return KB_OK;
}

int kb_transfer_initial_design(double *u_out, size_t ld_out, size_t *n_out,
                               const kb_transfer *t, size_t k, int portfolio,
                               const kb_encode_pool *pool, kb_error *err)
{
    KB_CHECK_ARG(u_out != NULL && n_out != NULL && t != NULL && ld_out >= k);
    *n_out = 0;
    if (portfolio) {
        return greedy_portfolio(u_out, ld_out, n_out, t, k, pool, err);
    }
    size_t nt = t->n_tasks, p = t->p, n = 0;
    unsigned char *done = kb_calloc(nt + 1, 1);
    if (done == NULL) {
        return kb_error_set(err, KB_ENOMEM, "transfer: out of memory");
    }
    while (n < k) {
        size_t bi = SIZE_MAX;
        for (size_t i = 0; i < nt; i++) {
            if (!done[i] && t->w[i] > 0.0 && t->tasks[i].best != SIZE_MAX &&
                (bi == SIZE_MAX || t->w[i] > t->w[bi])) {
                bi = i;
            }
        }
        if (bi == SIZE_MAX) {
            break;
        }
        done[bi] = 1;
        const task_data *td = &t->tasks[bi];
        const double *ub = td->u + td->best;
        if (taken(pool, ub, td->n, u_out, ld_out, n, p)) {
            continue;
        }
        for (size_t j = 0; j < p; j++) {
            u_out[n + j * ld_out] = ub[j * td->n];
        }
        n++;
    }
    kb_free(done);
    *n_out = n;
    return KB_OK;
}

void kb_transfer_hyper_priors(kb_gp_prior *priors_out, double *theta_out, const kb_transfer *t)
{
    size_t nh = t->d + 2;
    for (size_t j = 0; j < nh; j++) {
        double sw = 0.0, m = 0.0, v = 0.0;
        for (size_t i = 0; i < t->n_tasks; i++) {
            if (t->w[i] > 0.0 && t->tasks[i].gp != NULL) {
                sw += t->w[i];
                m += t->w[i] * kb_gp_theta(t->tasks[i].gp)[j];
            }
        }
        if (!(sw > 0.0)) {
            priors_out[j] = (kb_gp_prior){KB_GP_PRIOR_NONE, 0.0, 0.0};
            theta_out[j] = NAN;
            continue;
        }
        m /= sw;
        for (size_t i = 0; i < t->n_tasks; i++) {
            if (t->w[i] > 0.0 && t->tasks[i].gp != NULL) {
                double dv = kb_gp_theta(t->tasks[i].gp)[j] - m;
                v += t->w[i] * dv * dv / sw;
            }
        }
        /* width floor 0.5 (a factor 1.65 in the hyperparameter): neighbours are not the target */
        priors_out[j] = (kb_gp_prior){KB_GP_PRIOR_LOGNORMAL, m, fmax(sqrt(v), 0.5)};
        theta_out[j] = m;
    }
}

/* Misranked pairs of the sample f (n values): ylt[a + b n] = (y_a < y_b), counted both ways. */
static size_t rank_loss(const double *f, const unsigned char *ylt, size_t n)
{
    size_t loss = 0;
    for (size_t b = 0; b < n; b++) {
        const unsigned char *yb = ylt + b * n;
        double fb = f[b];
        for (size_t a = 0; a < b; a++) {
            loss += (size_t)((f[a] < fb) != yb[a]) + (size_t)((fb < f[a]) != ylt[b + a * n]);
        }
    }
    return loss;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

int kb_transfer_rgpe_weights(double *w_out, const kb_transfer *t, const double *base_mean,
                             const double *base_var, const double *loo_mean,
                             const double *loo_var, const double *y_obs, size_t n_obs,
                             size_t n_samples, kb_rng *rng, kb_error *err)
{
    KB_CHECK_ARG(w_out != NULL && t != NULL && rng != NULL && n_samples > 0);
    size_t nt = t->n_tasks, nm = nt + 1;
    size_t *loss = kb_malloc_array(nm * n_samples + 1, sizeof(size_t));
    size_t *sorted = kb_malloc_array(n_samples + 1, sizeof(size_t));
    double *f = kb_malloc_array(n_obs + 1, sizeof(double));
    unsigned char *keep = kb_calloc(nm, 1);
    unsigned char *ylt = kb_malloc_array(n_obs * n_obs + 1, 1);
    if (loss == NULL || sorted == NULL || f == NULL || keep == NULL || ylt == NULL) {
        kb_free(ylt);
        kb_free(loss);
        kb_free(sorted);
        kb_free(f);
        kb_free(keep);
        return kb_error_set(err, KB_ENOMEM, "transfer: out of memory");
    }
    for (size_t i = 0; i < nm; i++) {
        keep[i] = i == nt || (t->w[i] > 0.0 && t->tasks[i].gp != NULL);
    }
    for (size_t b = 0; b < n_obs; b++) {
        for (size_t a = 0; a < n_obs; a++) {
            ylt[a + b * n_obs] = y_obs[a] < y_obs[b];
        }
    }
    for (size_t s = 0; s < n_samples; s++) {
        for (size_t i = 0; i < nm; i++) {
            if (!keep[i]) {
                continue;
            }
            for (size_t r = 0; r < n_obs; r++) {
                double mu = i < nt ? base_mean[r + i * n_obs] : loo_mean[r];
                double v = i < nt ? base_var[r + i * n_obs] : loo_var[r];
                f[r] = mu + sqrt(fmax(v, 0.0)) * kb_rng_normal(rng);
            }
            loss[i * n_samples + s] = rank_loss(f, ylt, n_obs);
        }
    }
    /* dilution guard: drop base models whose median loss exceeds the target's 95th percentile */
    memcpy(sorted, loss + nt * n_samples, n_samples * sizeof(size_t));
    qsort(sorted, n_samples, sizeof(size_t), cmp_size);
    size_t p95 = sorted[(size_t)floor(0.95 * (double)(n_samples - 1))];
    for (size_t i = 0; i < nt; i++) {
        if (!keep[i]) {
            continue;
        }
        memcpy(sorted, loss + i * n_samples, n_samples * sizeof(size_t));
        qsort(sorted, n_samples, sizeof(size_t), cmp_size);
        if (n_obs >= 3 && sorted[n_samples / 2] > p95) {
            keep[i] = 0;
        }
    }
    for (size_t i = 0; i < nm; i++) {
        w_out[i] = 0.0;
    }
    for (size_t s = 0; s < n_samples; s++) {
        size_t best = SIZE_MAX, n_ties = 0;
        for (size_t i = 0; i < nm; i++) {
            if (!keep[i]) {
                continue;
            }
            size_t l = loss[i * n_samples + s];
            if (best == SIZE_MAX || l < loss[best * n_samples + s]) {
                best = i;
                n_ties = 1;
            } else if (l == loss[best * n_samples + s] && kb_rng_below(rng, ++n_ties) == 0) {
                best = i; /* reservoir choice: ties broken uniformly at random */
            }
        }
        w_out[best] += 1.0 / (double)n_samples;
    }
    kb_free(loss);
    kb_free(sorted);
    kb_free(f);
    kb_free(keep);
    kb_free(ylt);
    return KB_OK;
}

double kb_transfer_spread(const double *mu, size_t inc, const double *w, size_t n_tasks)
{
    double sw = 0.0, mbar = 0.0, ss = 0.0;
    for (size_t t = 0; t < n_tasks; t++) {
        sw += w[t];
        mbar += w[t] * mu[t * inc];
    }
    if (!(sw > 0.0)) {
        return 0.0;
    }
    mbar /= sw;
    for (size_t t = 0; t < n_tasks; t++) {
        double d = mu[t * inc] - mbar;
        ss += w[t] * d * d;
    }
    return ss / sw;
}
