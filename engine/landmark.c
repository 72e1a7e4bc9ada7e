#include "engine/landmark.h"

#include <cblas.h>
#include <lapacke.h>
#include <libsvm/svm.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/core/alloc.h"
#include "engine/landmark_priv.h"
#include "engine/linalg.h"

/* At most this many one-hot columns per categorical feature (the most frequent levels). */
#define MAX_ONEHOT_LEVELS 64

#define TWO_PI 6.283185307179586476925286766559

static const char *model_names[KB_LANDMARK_N_MODELS] = {
    "1nn", "naive_bayes", "stump", "lda", "linear_svm", "rbf_svm",
};

const char *kb_landmark_model_name(kb_landmark_model m)
{
    return (unsigned)m < KB_LANDMARK_N_MODELS ? model_names[m] : NULL;
}

/*
 * libsvm prints progress to stdout through a process-wide hook; silence it once, before the
 * first libsvm call (kb's stdout carries results only). Setting it again from another module
 * to the same effect is harmless.
 */
static void svm_quiet(const char *s)
{
    (void)s;
}

static pthread_once_t svm_quiet_once = PTHREAD_ONCE_INIT;

static void svm_quiet_install(void)
{
    svm_set_print_string_function(svm_quiet);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

int kb_landmark__check_dataset(const kb_dataset *d, kb_error *err)
{
    KB_CHECK_ARG(d != NULL);
    KB_CHECK_ARG(d->n_cols == 0 || d->cols != NULL);
    KB_CHECK_ARG(d->n_rows == 0 || d->n_cols == 0 || d->x != NULL);
    KB_CHECK_ARG(d->n_rows == 0 || d->y != NULL);
    KB_CHECK_ARG(d->task == KB_DATASET_TASK_CLASSIFICATION ||
                 d->task == KB_DATASET_TASK_REGRESSION);
    if (d->n_cols != 0 && d->n_rows > ((size_t)-1) / sizeof(double) / d->n_cols) {
        return kb_error_set(err, KB_EINVAL, "dataset of %zu x %zu is too large", d->n_rows,
                            d->n_cols);
    }
    if (d->task == KB_DATASET_TASK_CLASSIFICATION) {
        for (size_t i = 0; i < d->n_rows; i++) {
            double c = d->y[i];
            if (!(c >= 0 && c < (double)d->n_classes) || c != floor(c)) {
                return kb_error_set(err, KB_EINVAL, "row %zu: class index %g not in [0, %zu)", i, c,
                                    d->n_classes);
            }
        }
    }
    for (size_t j = 0; j < d->n_cols; j++) {
        if (d->cols[j].type != KB_COLUMN_CATEGORICAL) {
            continue;
        }
        const double *x = kb_dataset_col(d, j);
        for (size_t i = 0; i < d->n_rows; i++) {
            if (!isnan(x[i]) && !(x[i] >= 0 && x[i] < (double)d->cols[j].n_levels)) {
                return kb_error_set(
                    err, KB_EINVAL, "column '%s' row %zu: level index %g not in [0, %zu)",
                    d->cols[j].name ? d->cols[j].name : "?", i, x[i], d->cols[j].n_levels);
            }
        }
    }
    return KB_OK;
}

/* Rows of each class in ascending order: order[start[c] .. start[c+1]) are class c's rows. */
static int group_by_class(size_t **order_out, size_t **start_out, const double *y, size_t n,
                          size_t k, kb_error *err)
{
    size_t *order = kb_malloc_array(n > 0 ? n : 1, sizeof *order);
    size_t *start = kb_calloc(k + 2, sizeof *start);
    if (order == NULL || start == NULL) {
        kb_free(order);
        kb_free(start);
        return kb_error_set(err, KB_ENOMEM, "out of memory grouping %zu rows by class", n);
    }
    for (size_t i = 0; i < n; i++) {
        start[(size_t)y[i] + 2]++;
    }
    for (size_t c = 0; c < k; c++) {
        start[c + 2] += start[c + 1];
    }
    for (size_t i = 0; i < n; i++) {
        order[start[(size_t)y[i] + 1]++] = i;
    }
    *order_out = order;
    *start_out = start;
    return KB_OK;
}

int kb_landmark_sample(size_t *rows, size_t *n_out, const kb_dataset *d, size_t sample_rows,
                       kb_rng *rng, kb_error *err)
{
    KB_CHECK_ARG(rows != NULL && n_out != NULL && d != NULL && rng != NULL);
    size_t n = d->n_rows, m = sample_rows < n ? sample_rows : n;
    *n_out = m;
    if (m == n) {
        for (size_t i = 0; i < n; i++) {
            rows[i] = i;
        }
        return KB_OK;
    }
    if (d->task != KB_DATASET_TASK_CLASSIFICATION || d->n_classes == 0) {
        size_t *all = kb_malloc_array(n, sizeof *all);
        if (all == NULL) {
            return kb_error_set(err, KB_ENOMEM, "out of memory sampling %zu rows", n);
        }
        for (size_t i = 0; i < n; i++) {
            all[i] = i;
        }
        kb_rng_shuffle(rng, all, n);
        memcpy(rows, all, m * sizeof *rows);
        kb_free(all);
        qsort(rows, m, sizeof *rows, cmp_size);
        return KB_OK;
    }
    size_t k = d->n_classes, *order = NULL, *start = NULL;
    int rc = group_by_class(&order, &start, d->y, n, k, err);
    if (rc != KB_OK) {
        return rc;
    }
    /*
     * Quotas proportional to class sizes, floor(m n_c / n), the remaining rows going to the
     * largest remainders (m n_c mod n), lower class index first on ties.
     */
    size_t *quota = kb_malloc_array(k, sizeof *quota);
    size_t *rem = kb_malloc_array(k, sizeof *rem);
    if (quota == NULL || rem == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory sampling %zu classes", k);
        goto done;
    }
    size_t given = 0;
    for (size_t c = 0; c < k; c++) {
        size_t nc = start[c + 1] - start[c];
        if (nc == 0 || m <= ((size_t)-1) / nc) {
            quota[c] = m * nc / n;
            rem[c] = m * nc % n;
        } else { /* beyond 2^64 row products: the nearest double is close enough */
            double q = (double)m * (double)nc / (double)n;
            quota[c] = (size_t)q;
            rem[c] = (size_t)((q - floor(q)) * (double)n);
        }
        given += quota[c];
    }
    while (given < m) {
        size_t best = k;
        for (size_t c = 0; c < k; c++) {
            if (quota[c] < start[c + 1] - start[c] && (best == k || rem[c] > rem[best])) {
                best = c;
            }
        }
        if (best == k) {
            break;
        }
        quota[best]++;
        rem[best] = 0;
        given++;
    }
    size_t t = 0;
    for (size_t c = 0; c < k; c++) {
        size_t *cls = order + start[c], nc = start[c + 1] - start[c];
        kb_rng_shuffle(rng, cls, nc);
        for (size_t i = 0; i < quota[c]; i++) {
            rows[t++] = cls[i];
        }
    }
    *n_out = t;
    qsort(rows, t, sizeof *rows, cmp_size);
done:
    kb_free(rem);
    kb_free(quota);
    kb_free(order);
    kb_free(start);
    return rc;
}

int kb_landmark_folds(size_t *fold, const double *y, size_t n, size_t n_classes, size_t k,
                      kb_rng *rng, kb_error *err)
{
    KB_CHECK_ARG(fold != NULL && (y != NULL || n == 0) && rng != NULL && k >= 1);
    if (n_classes == 0) {
        size_t *pos = kb_malloc_array(n > 0 ? n : 1, sizeof *pos);
        if (pos == NULL) {
            return kb_error_set(err, KB_ENOMEM, "out of memory assigning folds");
        }
        for (size_t i = 0; i < n; i++) {
            pos[i] = i;
        }
        kb_rng_shuffle(rng, pos, n);
        for (size_t i = 0; i < n; i++) {
            fold[pos[i]] = i % k;
        }
        kb_free(pos);
        return KB_OK;
    }
    size_t *order = NULL, *start = NULL;
    int rc = group_by_class(&order, &start, y, n, n_classes, err);
    if (rc != KB_OK) {
        return rc;
    }
    size_t counter = 0;
    for (size_t c = 0; c < n_classes; c++) {
        size_t *cls = order + start[c], nc = start[c + 1] - start[c];
        kb_rng_shuffle(rng, cls, nc);
        for (size_t i = 0; i < nc; i++) {
            fold[cls[i]] = counter++ % k;
        }
    }
    kb_free(order);
    kb_free(start);
    return KB_OK;
}

/* Population variance small enough to call the values constant (as engine/stats.c). */
static int is_constant(double mean, double var)
{
    return !(var > 1e-300) || var <= 1e-28 * mean * mean;
}

/* Kept levels of a categorical column in the sample: up to MAX_ONEHOT_LEVELS, by count. */
static size_t pick_levels(size_t *keep, const size_t *count, size_t n_levels)
{
    size_t n_keep = 0;
    for (size_t l = 0; l < n_levels; l++) {
        if (count[l] == 0) {
            continue;
        }
        if (n_keep < MAX_ONEHOT_LEVELS) {
            keep[n_keep++] = l;
            continue;
        }
        /* replace the least frequent kept level (the highest index among equals) if rarer */
        size_t worst = 0;
        for (size_t t = 1; t < n_keep; t++) {
            if (count[keep[t]] < count[keep[worst]] ||
                (count[keep[t]] == count[keep[worst]] && keep[t] > keep[worst])) {
                worst = t;
            }
        }
        if (count[l] > count[keep[worst]]) {
            memmove(keep + worst, keep + worst + 1, (n_keep - worst - 1) * sizeof *keep);
            keep[n_keep - 1] = l;
        }
    }
    qsort(keep, n_keep, sizeof *keep, cmp_size);
    return n_keep;
}

int kb_landmark_design(kb_mat *x_out, double *y_out, const kb_dataset *d, const size_t *rows,
                       size_t n, kb_error *err)
{
    KB_CHECK_ARG(x_out != NULL && y_out != NULL && d != NULL && (rows != NULL || n == 0));
    *x_out = (kb_mat)KB_MAT_INIT;
    size_t max_lv = 1, p = 0;
    for (size_t j = 0; j < d->n_cols; j++) {
        max_lv = d->cols[j].n_levels > max_lv ? d->cols[j].n_levels : max_lv;
    }
    size_t *count = kb_malloc_array(max_lv, sizeof *count);
    size_t *keep = kb_malloc_array(MAX_ONEHOT_LEVELS, sizeof *keep);
    double *col = kb_malloc_array(n > 0 ? n : 1, sizeof *col);
    int rc = KB_OK;
    if (count == NULL || keep == NULL || col == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory preprocessing the sample");
        goto done;
    }
    /* first pass: count output columns; second pass: fill them */
    for (int pass = 0; pass < 2; pass++) {
        size_t out_j = 0;
        for (size_t j = 0; j < d->n_cols; j++) {
            const double *x = kb_dataset_col(d, j);
            if (d->cols[j].type == KB_COLUMN_CATEGORICAL) {
                size_t lv = d->cols[j].n_levels;
                memset(count, 0, (lv > 0 ? lv : 1) * sizeof *count);
                for (size_t i = 0; i < n; i++) {
                    if (!isnan(x[rows[i]])) {
                        count[(size_t)x[rows[i]]]++;
                    }
                }
                size_t mode = lv;
                for (size_t l = 0; l < lv; l++) {
                    if (count[l] > 0 && (mode == lv || count[l] > count[mode])) {
                        mode = l;
                    }
                }
                if (mode == lv) {
                    continue; /* all missing */
                }
                size_t n_missing = 0;
                for (size_t i = 0; i < n; i++) {
                    n_missing += isnan(x[rows[i]]);
                }
                count[mode] += n_missing;
                size_t n_keep = pick_levels(keep, count, lv);
                if (n_keep < 2 && count[keep[0]] == n) {
                    continue; /* one level present: constant */
                }
                if (pass == 1) {
                    for (size_t t = 0; t < n_keep; t++) {
                        double *z = kb_mat_col(x_out, out_j + t);
                        for (size_t i = 0; i < n; i++) {
                            double v = x[rows[i]];
                            size_t l = isnan(v) ? mode : (size_t)v;
                            z[i] = l == keep[t] ? 1.0 : 0.0;
                        }
                    }
                }
                out_j += n_keep;
                continue;
            }
            double sum = 0;
            size_t m = 0;
            for (size_t i = 0; i < n; i++) {
                double v = x[rows[i]];
                if (!isnan(v)) {
                    sum += v;
                    m++;
                }
            }
            if (m == 0) {
                continue;
            }
            double mean = sum / (double)m;
            for (size_t i = 0; i < n; i++) {
                double v = x[rows[i]];
                col[i] = isnan(v) ? mean : v;
            }
            /* standardise the imputed column (impute, then scale, as a pipeline would) */
            double s = 0;
            for (size_t i = 0; i < n; i++) {
                s += col[i];
            }
            double mu = s / (double)n, ss = 0;
            for (size_t i = 0; i < n; i++) {
                ss += (col[i] - mu) * (col[i] - mu);
            }
            double var = ss / (double)n;
            if (is_constant(mu, var)) {
                continue;
            }
            if (pass == 1) {
                double inv = 1.0 / sqrt(var), *z = kb_mat_col(x_out, out_j);
                for (size_t i = 0; i < n; i++) {
                    z[i] = (col[i] - mu) * inv;
                }
            }
            out_j++;
        }
        if (pass == 0) {
            p = out_j;
            rc = kb_mat_init(x_out, n, p, err);
            if (rc != KB_OK) {
                goto done;
            }
        }
    }
    if (d->task == KB_DATASET_TASK_CLASSIFICATION) {
        for (size_t i = 0; i < n; i++) {
            y_out[i] = d->y[rows[i]];
        }
    } else {
        double s = 0, ss = 0;
        for (size_t i = 0; i < n; i++) {
            s += d->y[rows[i]];
        }
        double mu = n > 0 ? s / (double)n : 0;
        for (size_t i = 0; i < n; i++) {
            ss += (d->y[rows[i]] - mu) * (d->y[rows[i]] - mu);
        }
        double var = n > 0 ? ss / (double)n : 0;
        /* a constant target has no scale: all NaN, and the caller reports missing scores */
        double inv = is_constant(mu, var) ? NAN : 1.0 / sqrt(var);
        for (size_t i = 0; i < n; i++) {
            y_out[i] = (d->y[rows[i]] - mu) * inv;
        }
    }
done:
    kb_free(col);
    kb_free(keep);
    kb_free(count);
    if (rc != KB_OK) {
        kb_mat_release(x_out);
    }
    return rc;
}

/* ---- models: each predicts the test rows from the training rows of one fold ---- */

typedef struct fold_data {
    const kb_mat *x; /* the whole sample, n x p */
    const double *y;
    const size_t *train; /* positions */
    size_t n_train;
    const size_t *test;
    size_t n_test;
    size_t n_classes;   /* 0 = regression */
    kb_mat xtr, xte;    /* gathered copies, for the BLAS-based models */
    const size_t *fold; /* fold of each sample position; the test fold is `test_fold` */
    size_t test_fold;
    const size_t *sorted; /* stump: per column, positions by (value, position); or NULL */
} fold_data;

static int gather(kb_mat *out, const kb_mat *x, const size_t *idx, size_t m, kb_error *err)
{
    int rc = kb_mat_init(out, m, x->cols, err);
    if (rc != KB_OK) {
        return rc;
    }
    for (size_t j = 0; j < x->cols; j++) {
        const double *src = kb_mat_col(x, j);
        double *dst = kb_mat_col(out, j);
        for (size_t i = 0; i < m; i++) {
            dst[i] = src[idx[i]];
        }
    }
    return KB_OK;
}

/* Index of the largest value, the first on ties. */
static size_t argmax(const double *v, size_t n, size_t stride)
{
    size_t b = 0;
    for (size_t i = 1; i < n; i++) {
        if (v[i * stride] > v[b * stride]) {
            b = i;
        }
    }
    return b;
}

/*
 * 1-NN with squared Euclidean distances |a|^2 + |b|^2 - 2 a.b, the cross terms by dgemm over
 * blocks of test rows (memory: block x n_train). Ties: the earliest training row within
 * 1e-9 (|a|^2 + 1) of the minimum, so that rounding in the expansion (which differs between
 * BLAS kernels) cannot pick a different neighbour among equidistant ones -- duplicated rows
 * are common after one-hot encoding.
 */
static int predict_1nn(double *pred, fold_data *f, kb_error *err)
{
    size_t ntr = f->n_train, nte = f->n_test, p = f->x->cols;
    size_t bs = 256;
    double *g = kb_malloc_array(bs * ntr, sizeof *g);
    double *ntr2 = kb_malloc_array(ntr, sizeof *ntr2);
    if (g == NULL || ntr2 == NULL) {
        kb_free(g);
        kb_free(ntr2);
        return kb_error_set(err, KB_ENOMEM, "out of memory for 1-NN distances");
    }
    for (size_t i = 0; i < ntr; i++) {
        double s = 0;
        for (size_t j = 0; j < p; j++) {
            double v = f->xtr.data[i + j * f->xtr.ld];
            s += v * v;
        }
        ntr2[i] = s;
    }
    for (size_t r0 = 0; r0 < nte; r0 += bs) {
        size_t nb = nte - r0 < bs ? nte - r0 : bs;
        /* g (ntr x nb) = Xtr * Xte[r0:r0+nb]': one test row's cross terms are contiguous */
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (blasint)ntr, (blasint)nb, (blasint)p,
                    1.0, f->xtr.data, (blasint)f->xtr.ld, f->xte.data + r0, (blasint)f->xte.ld, 0.0,
                    g, (blasint)ntr);
        for (size_t i = 0; i < nb; i++) {
            double te2 = 0;
            for (size_t j = 0; j < p; j++) {
                double v = f->xte.data[r0 + i + j * f->xte.ld];
                te2 += v * v;
            }
            const double *gi = g + i * ntr;
            double bd = INFINITY;
            for (size_t t = 0; t < ntr; t++) {
                double dd = ntr2[t] - 2.0 * gi[t];
                bd = dd < bd ? dd : bd;
            }
            double tol = 1e-9 * (te2 + 1.0);
            size_t best = 0;
            for (size_t t = 0; t < ntr; t++) {
                if (ntr2[t] - 2.0 * gi[t] <= bd + tol) {
                    best = t;
                    break;
                }
            }
            pred[i + r0] = f->y[f->train[best]];
        }
    }
    kb_free(g);
    kb_free(ntr2);
    return KB_OK;
}

/*
 * Gaussian naive Bayes as scikit-learn's GaussianNB: per-class means and population
 * variances, every variance raised by 1e-9 x the largest feature variance (var_smoothing),
 * priors from the training fold; classes absent from the fold are not predicted.
 */
static int predict_nb(double *pred, fold_data *f, kb_error *err)
{
    size_t k = f->n_classes, p = f->x->cols, ntr = f->n_train;
    double *mu = kb_calloc(k * (p > 0 ? p : 1), sizeof *mu);
    double *var = kb_calloc(k * (p > 0 ? p : 1), sizeof *var);
    double *cnt = kb_calloc(k, sizeof *cnt);
    double *jll = kb_malloc_array(2 * k, sizeof *jll);
    if (mu == NULL || var == NULL || cnt == NULL || jll == NULL) {
        kb_free(mu);
        kb_free(var);
        kb_free(cnt);
        kb_free(jll);
        return kb_error_set(err, KB_ENOMEM, "out of memory for naive Bayes");
    }
    for (size_t i = 0; i < ntr; i++) {
        cnt[(size_t)f->y[f->train[i]]] += 1;
    }
    double eps = 0;
    for (size_t j = 0; j < p; j++) {
        const double *x = kb_mat_col(f->x, j);
        double s = 0, ss = 0;
        for (size_t i = 0; i < ntr; i++) {
            size_t c = (size_t)f->y[f->train[i]];
            mu[c + j * k] += x[f->train[i]];
            s += x[f->train[i]];
        }
        double m_all = s / (double)ntr;
        for (size_t c = 0; c < k; c++) {
            if (cnt[c] > 0) {
                mu[c + j * k] /= cnt[c];
            }
        }
        for (size_t i = 0; i < ntr; i++) {
            size_t c = (size_t)f->y[f->train[i]];
            double dv = x[f->train[i]] - mu[c + j * k], da = x[f->train[i]] - m_all;
            var[c + j * k] += dv * dv;
            ss += da * da;
        }
        eps = fmax(eps, ss / (double)ntr);
        for (size_t c = 0; c < k; c++) {
            if (cnt[c] > 0) {
                var[c + j * k] /= cnt[c];
            }
        }
    }
    eps *= 1e-9;
    /*
     * log N(x; mu, v) summed over features = base_c - sum_j (x_j - mu_cj)^2 / (2 v_cj), with
     * base_c = log prior_c - sum_j log(2 pi v_cj) / 2 computed once per fold; var then holds
     * 1 / (2 v). A zero variance cannot occur: design drops constant columns, so eps > 0.
     */
    double *base = jll + k;
    for (size_t c = 0; c < k; c++) {
        double half_log = 0;
        for (size_t j = 0; j < p; j++) {
            double v = var[c + j * k] + eps;
            half_log += 0.5 * log(TWO_PI * v);
            var[c + j * k] = 0.5 / v;
        }
        base[c] = cnt[c] > 0 ? log(cnt[c] / (double)ntr) - half_log : -INFINITY;
    }
    for (size_t i = 0; i < f->n_test; i++) {
        size_t r = f->test[i];
        for (size_t c = 0; c < k; c++) {
            double q = 0;
            for (size_t j = 0; j < p && cnt[c] > 0; j++) {
                double dx = f->x->data[r + j * f->x->ld] - mu[c + j * k];
                q += dx * dx * var[c + j * k];
            }
            jll[c] = base[c] - q;
        }
        pred[i] = (double)argmax(jll, k, 1);
    }
    kb_free(mu);
    kb_free(var);
    kb_free(cnt);
    kb_free(jll);
    return KB_OK;
}

typedef struct val_pos {
    double v;
    size_t pos; /* position of the row in the sample */
} val_pos;

static int cmp_val_pos(const void *a, const void *b)
{
    const val_pos *x = a, *y = b;
    if (x->v != y->v) {
        return (x->v > y->v) - (x->v < y->v);
    }
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Per column of x, the row positions sorted by (value, position): n x p size_t. */
static int sort_columns(size_t **out, const kb_mat *x, kb_error *err)
{
    size_t n = x->rows, p = x->cols;
    if (p > 0 && n > ((size_t)-1) / sizeof(size_t) / p) {
        return kb_error_set(err, KB_ENOMEM, "sample of %zu x %zu too large to sort", n, p);
    }
    size_t *sorted = kb_malloc_array(n * p > 0 ? n * p : 1, sizeof *sorted);
    val_pos *vp = kb_malloc_array(n > 0 ? n : 1, sizeof *vp);
    if (sorted == NULL || vp == NULL) {
        kb_free(sorted);
        kb_free(vp);
        return kb_error_set(err, KB_ENOMEM, "out of memory sorting the sample");
    }
    for (size_t j = 0; j < p; j++) {
        const double *c = kb_mat_col(x, j);
        for (size_t i = 0; i < n; i++) {
            vp[i].v = c[i];
            vp[i].pos = i;
        }
        qsort(vp, n, sizeof *vp, cmp_val_pos);
        for (size_t i = 0; i < n; i++) {
            sorted[i + j * n] = vp[i].pos;
        }
    }
    kb_free(vp);
    *out = sorted;
    return KB_OK;
}

/*
 * Decision stump: the single split "x_j <= t" minimising the weighted impurity of the two
 * sides (Gini n_L G_L + n_R G_R for classes, squared error for regression), as a depth-1
 * CART tree. Thresholds are midpoints between consecutive distinct values more than 1e-7
 * apart (scikit-learn's FEATURE_THRESHOLD); ties go to the lower feature, then the lower
 * threshold. Leaves predict the majority class (lowest index on ties) or the mean.
 */
static int predict_stump(double *pred, fold_data *f, kb_error *err)
{
    size_t k = f->n_classes, p = f->x->cols, ntr = f->n_train;
    size_t kk = k > 0 ? k : 1;
    val_pos *vp = kb_malloc_array(ntr, sizeof *vp);
    double *left = kb_malloc_array(kk, sizeof *left), *tot = kb_calloc(kk, sizeof *tot);
    double *lbest = kb_malloc_array(kk, sizeof *lbest);
    if (vp == NULL || left == NULL || tot == NULL || lbest == NULL) {
        kb_free(vp);
        kb_free(left);
        kb_free(tot);
        kb_free(lbest);
        return kb_error_set(err, KB_ENOMEM, "out of memory for the decision stump");
    }
    double ysum = 0, ysq = 0;
    for (size_t i = 0; i < ntr; i++) {
        double yv = f->y[f->train[i]];
        if (k > 0) {
            tot[(size_t)yv] += 1;
        } else {
            ysum += yv;
            ysq += yv * yv;
        }
    }
    double best = INFINITY, thr = 0;
    size_t bj = p; /* p = no split */
    double best_lsum = 0, best_nl = 0;
    for (size_t j = 0; j < p; j++) {
        const double *x = kb_mat_col(f->x, j);
        if (f->sorted != NULL) {
            /* the sample sorted once per column; a fold's training rows keep that order */
            const size_t *order = f->sorted + j * f->x->rows;
            size_t t = 0;
            for (size_t i = 0; i < f->x->rows; i++) {
                if (f->fold[order[i]] != f->test_fold) {
                    vp[t].v = x[order[i]];
                    vp[t].pos = order[i];
                    t++;
                }
            }
        } else {
            for (size_t i = 0; i < ntr; i++) {
                vp[i].v = x[f->train[i]];
                vp[i].pos = f->train[i];
            }
            qsort(vp, ntr, sizeof *vp, cmp_val_pos);
        }
        memset(left, 0, kk * sizeof *left);
        /* sl = sum_c l_c^2, sr = sum_c r_c^2, updated in O(1) per row (exact integers) */
        double lsum = 0, sl = 0, sr = 0;
        for (size_t c = 0; c < k; c++) {
            sr += tot[c] * tot[c];
        }
        for (size_t i = 0; i + 1 < ntr; i++) {
            double yv = f->y[vp[i].pos];
            if (k > 0) {
                size_t c = (size_t)yv;
                double r = tot[c] - left[c];
                sl += 2.0 * left[c] + 1.0;
                sr -= 2.0 * r - 1.0;
                left[c] += 1;
            } else {
                lsum += yv;
            }
            if (!(vp[i + 1].v > vp[i].v + 1e-7)) {
                continue;
            }
            double nl = (double)(i + 1), nr = (double)(ntr - i - 1), cost;
            if (k > 0) {
                /* n_L G_L + n_R G_R = n_L + n_R - sum_c (l_c^2 / n_L + r_c^2 / n_R) */
                cost = (double)ntr - sl / nl - sr / nr;
            } else {
                double rsum = ysum - lsum;
                cost = ysq - lsum * lsum / nl - rsum * rsum / nr;
            }
            if (cost < best) {
                best = cost;
                bj = j;
                double t = 0.5 * (vp[i].v + vp[i + 1].v);
                thr = t == vp[i + 1].v ? vp[i].v : t;
                best_nl = nl;
                best_lsum = lsum;
                if (k > 0) {
                    memcpy(lbest, left, k * sizeof *left);
                }
            }
        }
    }
    double pl, pr;
    if (k > 0) {
        if (bj == p) {
            pl = pr = (double)argmax(tot, k, 1);
        } else {
            for (size_t c = 0; c < k; c++) {
                left[c] = tot[c] - lbest[c];
            }
            pl = (double)argmax(lbest, k, 1);
            pr = (double)argmax(left, k, 1);
        }
    } else {
        pl = pr = ysum / (double)ntr;
        if (bj != p) {
            pl = best_lsum / best_nl;
            pr = (ysum - best_lsum) / ((double)ntr - best_nl);
        }
    }
    for (size_t i = 0; i < f->n_test; i++) {
        pred[i] = (bj == p || f->x->data[f->test[i] + bj * f->x->ld] <= thr) ? pl : pr;
    }
    kb_free(vp);
    kb_free(left);
    kb_free(tot);
    kb_free(lbest);
    return KB_OK;
}

/*
 * Linear discriminant analysis: class priors pi_c and means mu_c from the fold, pooled
 * covariance S = sum_c pi_c Cov_c (population covariances, as scikit-learn's lsqr/eigen
 * solvers), a ridge 1e-6 trace(S)/p on the diagonal (one-hot blocks make S singular), then
 * W = S^-1 M by Cholesky (kb_linalg_cholesky, dpotrs) and score_c(x) = x.w_c - mu_c.w_c / 2 + log
 * pi_c (Hastie, Tibshirani & Friedman, ESL 2nd ed., eq. 4.10).
 */
static int predict_lda(double *pred, fold_data *f, kb_error *err)
{
    size_t k = f->n_classes, p = f->x->cols, ntr = f->n_train, nte = f->n_test;
    double *mu = kb_calloc(p * k, sizeof *mu), *cnt = kb_calloc(k, sizeof *cnt);
    double *s = kb_calloc(p * p, sizeof *s), *w = kb_malloc_array(p * k, sizeof *w);
    double *l = kb_malloc_array(p * p, sizeof *l);
    double *b = kb_malloc_array(k, sizeof *b), *sc = kb_malloc_array(nte * k, sizeof *sc);
    int rc = KB_OK;
    if (mu == NULL || cnt == NULL || s == NULL || w == NULL || l == NULL || b == NULL ||
        sc == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory for LDA");
        goto done;
    }
    for (size_t i = 0; i < ntr; i++) {
        cnt[(size_t)f->y[f->train[i]]] += 1;
    }
    /* mu is p x k (column c = class c's mean); xtr becomes the class-centred copy */
    for (size_t j = 0; j < p; j++) {
        double *x = kb_mat_col(&f->xtr, j);
        for (size_t i = 0; i < ntr; i++) {
            mu[j + (size_t)f->y[f->train[i]] * p] += x[i];
        }
        for (size_t c = 0; c < k; c++) {
            mu[j + c * p] = cnt[c] > 0 ? mu[j + c * p] / cnt[c] : 0;
        }
        for (size_t i = 0; i < ntr; i++) {
            x[i] -= mu[j + (size_t)f->y[f->train[i]] * p];
        }
    }
    cblas_dsyrk(CblasColMajor, CblasLower, CblasTrans, (blasint)p, (blasint)ntr, 1.0 / (double)ntr,
                f->xtr.data, (blasint)f->xtr.ld, 0.0, s, (blasint)p);
    double tr = 0;
    for (size_t j = 0; j < p; j++) {
        tr += s[j + j * p];
    }
    /* the ridge is part of the model (and of the reference); jitter is only the fallback */
    double ridge = tr > 0 ? 1e-6 * tr / (double)p : 1e-6;
    for (size_t j = 0; j < p; j++) {
        s[j + j * p] += ridge;
    }
    rc = kb_linalg_cholesky(l, p, s, p, p, NULL, err);
    if (rc != KB_OK) {
        goto done;
    }
    memcpy(w, mu, p * k * sizeof *w);
    lapack_int info = LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'L', (lapack_int)p, (lapack_int)k, l,
                                     (lapack_int)p, w, (lapack_int)p);
    if (info != 0) {
        rc = kb_error_set_cause(err, KB_ENUMERIC, (int)info, "LDA: solve failed (info %d)",
                                (int)info);
        goto done;
    }
    for (size_t c = 0; c < k; c++) {
        double dot = 0;
        for (size_t j = 0; j < p; j++) {
            dot += mu[j + c * p] * w[j + c * p];
        }
        b[c] = cnt[c] > 0 ? -0.5 * dot + log(cnt[c] / (double)ntr) : -INFINITY;
    }
    /* sc (nte x k) = Xte W */
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (blasint)nte, (blasint)k, (blasint)p,
                1.0, f->xte.data, (blasint)f->xte.ld, w, (blasint)p, 0.0, sc, (blasint)nte);
    for (size_t i = 0; i < nte; i++) {
        for (size_t c = 0; c < k; c++) {
            sc[i + c * nte] += b[c];
        }
        pred[i] = (double)argmax(sc + i, k, nte);
    }
done:
    kb_free(mu);
    kb_free(cnt);
    kb_free(s);
    kb_free(l);
    kb_free(w);
    kb_free(b);
    kb_free(sc);
    return rc;
}

/* libsvm rows of the sample: sparse nodes (zeros skipped: the same dot products). */
typedef struct svm_rows {
    struct svm_node *nodes;
    struct svm_node **row;
} svm_rows;

static int svm_rows_build(svm_rows *r, const kb_mat *x, kb_error *err)
{
    size_t n = x->rows, p = x->cols;
    r->nodes = NULL;
    r->row = NULL;
    if (p >= (size_t)INT_MAX || n > ((size_t)-1) / sizeof(struct svm_node) / (p + 1)) {
        return kb_error_set(err, KB_EINVAL, "sample too large for libsvm");
    }
    r->nodes = kb_malloc_array(n * (p + 1) + 1, sizeof *r->nodes);
    r->row = kb_malloc_array(n > 0 ? n : 1, sizeof *r->row);
    if (r->nodes == NULL || r->row == NULL) {
        kb_free(r->nodes);
        kb_free(r->row);
        r->nodes = NULL;
        r->row = NULL;
        return kb_error_set(err, KB_ENOMEM, "out of memory for libsvm rows");
    }
    struct svm_node *t = r->nodes;
    for (size_t i = 0; i < n; i++) {
        r->row[i] = t;
        for (size_t j = 0; j < p; j++) {
            double v = x->data[i + j * x->ld];
            if (v != 0) {
                t->index = (int)j + 1;
                t->value = v;
                t++;
            }
        }
        t->index = -1;
        t->value = 0;
        t++;
    }
    return KB_OK;
}

static void svm_rows_release(svm_rows *r)
{
    kb_free(r->nodes);
    kb_free(r->row);
}

/*
 * libsvm C-SVC (classification) or epsilon-SVR (regression, epsilon 0.1), C = 1,
 * eps = 1e-3, shrinking on: scikit-learn's SVC/SVR defaults, with gamma = 1 / p.
 */
static int predict_svm(double *pred, fold_data *f, const svm_rows *rows, int kernel, kb_error *err)
{
    size_t ntr = f->n_train;
    struct svm_node **xs = kb_malloc_array(ntr, sizeof *xs);
    double *ys = kb_malloc_array(ntr, sizeof *ys);
    if (xs == NULL || ys == NULL) {
        kb_free(xs);
        kb_free(ys);
        return kb_error_set(err, KB_ENOMEM, "out of memory for an SVM problem");
    }
    for (size_t i = 0; i < ntr; i++) {
        xs[i] = rows->row[f->train[i]];
        ys[i] = f->y[f->train[i]];
    }
    struct svm_problem prob = {(int)ntr, ys, xs};
    struct svm_parameter par;
    memset(&par, 0, sizeof par);
    par.svm_type = f->n_classes > 0 ? C_SVC : EPSILON_SVR;
    par.kernel_type = kernel;
    par.degree = 3;
    par.gamma = 1.0 / (double)(f->x->cols > 0 ? f->x->cols : 1);
    par.cache_size = 100;
    par.eps = 1e-3;
    par.C = 1.0;
    par.p = 0.1;
    par.shrinking = 1;
    int rc = KB_OK;
    const char *msg = svm_check_parameter(&prob, &par);
    if (msg != NULL) {
        rc = kb_error_set(err, KB_EINVAL, "libsvm: %s", msg);
    } else {
        struct svm_model *model = svm_train(&prob, &par);
        if (model == NULL) {
            rc = kb_error_set(err, KB_ENOMEM, "libsvm: training failed");
        } else {
            for (size_t i = 0; i < f->n_test; i++) {
                pred[i] = svm_predict(model, rows->row[f->test[i]]);
            }
            svm_free_and_destroy_model(&model);
        }
    }
    kb_free(xs);
    kb_free(ys);
    return rc;
}

static int run_model(double *pred, kb_landmark_model m, fold_data *f, const svm_rows *rows,
                     kb_error *err)
{
    switch (m) {
    case KB_LANDMARK_MODEL_1NN:
        return predict_1nn(pred, f, err);
    case KB_LANDMARK_MODEL_NAIVE_BAYES:
        return predict_nb(pred, f, err);
    case KB_LANDMARK_MODEL_STUMP:
        return predict_stump(pred, f, err);
    case KB_LANDMARK_MODEL_LDA:
        return predict_lda(pred, f, err);
    case KB_LANDMARK_MODEL_LINEAR_SVM:
        return predict_svm(pred, f, rows, LINEAR, err);
    case KB_LANDMARK_MODEL_RBF_SVM:
        return predict_svm(pred, f, rows, RBF, err);
    }
    return kb_error_set(err, KB_EINVAL, "unknown landmark model %d", (int)m);
}

int kb_landmark_compute(kb_landmark_result *out, const kb_dataset *d, const kb_landmark_opts *opts,
                        kb_error *err)
{
    KB_CHECK_ARG(out != NULL && d != NULL);
    for (int m = 0; m < KB_LANDMARK_N_MODELS; m++) {
        out->score[m] = NAN;
        out->time_s[m] = NAN;
    }
    out->n_rows = out->n_cols = 0;
    int rc = kb_landmark__check_dataset(d, err);
    if (rc != KB_OK) {
        return rc;
    }
    kb_landmark_opts o = KB_LANDMARK_OPTS_INIT;
    if (opts != NULL) {
        o = *opts;
    }
    size_t sample = o.sample_rows == 0 ? 2000 : o.sample_rows;
    size_t k = o.n_folds == 0 ? 5 : o.n_folds;
    unsigned models = o.models == 0 ? (1u << KB_LANDMARK_N_MODELS) - 1 : o.models;
    KB_CHECK_ARG(k >= 2);
    size_t n_classes = d->task == KB_DATASET_TASK_CLASSIFICATION ? d->n_classes : 0;

    size_t *rows = NULL, *fold = NULL, *train = NULL, *test = NULL, *sorted = NULL;
    double *y = NULL, *pred = NULL, *pred_fold = NULL;
    kb_mat x = KB_MAT_INIT;
    svm_rows srows = {NULL, NULL};
    fold_data f;
    memset(&f, 0, sizeof f);
    size_t n = sample < d->n_rows ? sample : d->n_rows;
    if (n < 2 * k) {
        return KB_OK; /* too few rows for k folds of two: every score missing */
    }
    rows = kb_malloc_array(n, sizeof *rows);
    fold = kb_malloc_array(n, sizeof *fold);
    train = kb_malloc_array(n, sizeof *train);
    test = kb_malloc_array(n, sizeof *test);
    y = kb_malloc_array(n, sizeof *y);
    pred = kb_malloc_array(n, sizeof *pred);
    pred_fold = kb_malloc_array(n, sizeof *pred_fold);
    if (!rows || !fold || !train || !test || !y || !pred || !pred_fold) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory for a %zu-row sample", n);
        goto done;
    }
    kb_rng rng;
    kb_rng_seed(&rng, o.seed);
    rc = kb_landmark_sample(rows, &n, d, sample, &rng, err);
    if (rc != KB_OK) {
        goto done;
    }
    rc = kb_landmark_design(&x, y, d, rows, n, err);
    if (rc != KB_OK) {
        goto done;
    }
    out->n_rows = n;
    out->n_cols = x.cols;
    if (x.cols == 0 || (n_classes == 0 && isnan(y[0]))) {
        goto done;
    }
    if (n_classes > 0) {
        size_t first = (size_t)y[0], distinct = 0;
        for (size_t i = 1; i < n && !distinct; i++) {
            distinct = (size_t)y[i] != first;
        }
        if (!distinct) {
            goto done; /* one class in the sample: nothing to discriminate */
        }
    }
    if (x.cols >= (size_t)INT_MAX || n >= (size_t)INT_MAX) {
        rc = kb_error_set(err, KB_EINVAL, "sample of %zu x %zu too large for BLAS", n, x.cols);
        goto done;
    }
    rc = kb_landmark_folds(fold, y, n, n_classes, k, &rng, err);
    if (rc != KB_OK) {
        goto done;
    }
    if (models & ((1u << KB_LANDMARK_MODEL_LINEAR_SVM) | (1u << KB_LANDMARK_MODEL_RBF_SVM))) {
        pthread_once(&svm_quiet_once, svm_quiet_install);
        rc = svm_rows_build(&srows, &x, err);
        if (rc != KB_OK) {
            goto done;
        }
    }
    f.x = &x;
    f.y = y;
    f.train = train;
    f.test = test;
    f.n_classes = n_classes;
    f.fold = fold;
    for (int m = 0; m < KB_LANDMARK_N_MODELS; m++) {
        if (!(models & (1u << m))) {
            continue;
        }
        if (n_classes == 0 && (m == KB_LANDMARK_MODEL_NAIVE_BAYES || m == KB_LANDMARK_MODEL_LDA)) {
            continue; /* classification-only models */
        }
        kb_log_printf(&o.log, KB_LOG_LEVEL_INFO, "landmark %s: %zu rows x %zu columns, %zu folds",
                      model_names[m], n, x.cols, k);
        double t0 = now_s();
        if (m == KB_LANDMARK_MODEL_STUMP) {
            /* sorted once for all folds (and timed with the stump) */
            rc = sort_columns(&sorted, &x, err);
            if (rc != KB_OK) {
                goto done;
            }
            f.sorted = sorted;
        }
        int ok = 1;
        for (size_t v = 0; v < k && ok; v++) {
            f.n_train = f.n_test = 0;
            f.test_fold = v;
            for (size_t i = 0; i < n; i++) {
                if (fold[i] == v) {
                    test[f.n_test++] = i;
                } else {
                    train[f.n_train++] = i;
                }
            }
            if (f.n_train == 0 || f.n_test == 0) {
                ok = 0;
                break;
            }
            int blas = m == KB_LANDMARK_MODEL_1NN || m == KB_LANDMARK_MODEL_LDA;
            if (blas) {
                rc = gather(&f.xtr, &x, train, f.n_train, err);
                if (rc == KB_OK) {
                    rc = gather(&f.xte, &x, test, f.n_test, err);
                }
            }
            if (rc == KB_OK) {
                rc = run_model(pred_fold, (kb_landmark_model)m, &f, &srows, err);
            }
            kb_mat_release(&f.xtr);
            kb_mat_release(&f.xte);
            if (rc != KB_OK) {
                goto done;
            }
            for (size_t i = 0; i < f.n_test; i++) {
                pred[test[i]] = pred_fold[i];
            }
        }
        if (!ok) {
            continue;
        }
        double acc = 0;
        for (size_t i = 0; i < n; i++) {
            if (n_classes > 0) {
                acc += pred[i] == y[i];
            } else {
                acc += (pred[i] - y[i]) * (pred[i] - y[i]);
            }
        }
        out->score[m] = n_classes > 0 ? acc / (double)n : sqrt(acc / (double)n);
        out->time_s[m] = now_s() - t0;
    }
done:
    kb_free(sorted);
    svm_rows_release(&srows);
    kb_mat_release(&x);
    kb_free(rows);
    kb_free(fold);
    kb_free(train);
    kb_free(test);
    kb_free(y);
    kb_free(pred);
    kb_free(pred_fold);
    return rc;
}
