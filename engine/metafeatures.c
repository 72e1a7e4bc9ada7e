#include "engine/metafeatures.h"

#include <cblas.h>
#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/landmark.h"
#include "engine/landmark_priv.h"
#include "engine/stats.h"

/* Correlations and PCA only up to this many usable numeric features (see correlation_pca). */
#define MAX_PCA_COLUMNS 4096

/*
 * The feature table. The order is the output order of `kb features` (grouped); stored tasks
 * sort by name. Adding, removing or redefining a feature means a new KB_METAFEATURES_SET.
 */
enum feature {
    F_N_ROWS,
    F_N_FEATURES,
    F_N_CLASSES,
    F_LOG_N_ROWS,
    F_LOG_N_FEATURES,
    F_DIMENSIONALITY,
    F_LOG_DIMENSIONALITY,
    F_INVERSE_DIMENSIONALITY,
    F_LOG_INVERSE_DIMENSIONALITY,
    F_N_NUMERIC,
    F_N_CATEGORICAL,
    F_SHARE_NUMERIC,
    F_SHARE_CATEGORICAL,
    F_CAT_LEVELS_MIN,
    F_CAT_LEVELS_MAX,
    F_CAT_LEVELS_MEAN,
    F_CAT_LEVELS_STD,
    F_CAT_LEVELS_SUM,
    F_N_MISSING_CELLS,
    F_SHARE_MISSING_CELLS,
    F_SHARE_ROWS_WITH_MISSING,
    F_SHARE_FEATURES_WITH_MISSING,
    F_CLASS_PROB_MIN,
    F_CLASS_PROB_MAX,
    F_CLASS_PROB_MEAN,
    F_CLASS_PROB_STD,
    F_CLASS_ENTROPY,
    F_SKEWNESS_MIN,
    F_SKEWNESS_MAX,
    F_SKEWNESS_MEAN,
    F_SKEWNESS_STD,
    F_KURTOSIS_MIN,
    F_KURTOSIS_MAX,
    F_KURTOSIS_MEAN,
    F_KURTOSIS_STD,
    F_COR_ABS_MEAN,
    F_COR_ABS_MAX,
    F_PCA_COMPONENTS_95,
    F_PCA_FRACTION_95,
    F_PCA_FIRST_SHARE,
    F_PCA_FIRST_SKEWNESS,
    F_PCA_FIRST_KURTOSIS,
    F_ATTR_ENTROPY_MEAN,
    F_TARGET_ENTROPY,
    F_MUTUAL_INFO_MEAN,
    F_MUTUAL_INFO_MAX,
    F_EQUIVALENT_N_ATTRIBUTES,
    F_NOISE_SIGNAL_RATIO,
    F_LANDMARK_1NN,
    F_LANDMARK_NAIVE_BAYES,
    F_LANDMARK_STUMP,
    F_LANDMARK_LDA,
    F_LANDMARK_LINEAR_SVM,
    F_LANDMARK_RBF_SVM,
    F_IMG_HEIGHT,
    F_IMG_WIDTH,
    F_IMG_CHANNELS,
    F_IMG_PIXEL_MEAN,
    F_IMG_PIXEL_STD,
    F_IMG_CLASS_DIST_MIN,
    F_IMG_CLASS_DIST_MAX,
    F_IMG_CLASS_DIST_MEAN,
    F_IMG_CLASS_DIST_STD,
    F_COUNT
};

#define G_GEN KB_METAFEATURES_GROUP_GENERAL
#define G_STA KB_METAFEATURES_GROUP_STATISTICAL
#define G_INF KB_METAFEATURES_GROUP_INFO
#define G_LMK KB_METAFEATURES_GROUP_LANDMARK
#define G_IMG KB_METAFEATURES_GROUP_IMAGE

static const struct {
    const char *name;
    unsigned group;
} table[F_COUNT] = {
    [F_N_ROWS] = {"n_rows", G_GEN},
    [F_N_FEATURES] = {"n_features", G_GEN},
    [F_N_CLASSES] = {"n_classes", G_GEN},
    [F_LOG_N_ROWS] = {"log_n_rows", G_GEN},
    [F_LOG_N_FEATURES] = {"log_n_features", G_GEN},
    [F_DIMENSIONALITY] = {"dimensionality", G_GEN},
    [F_LOG_DIMENSIONALITY] = {"log_dimensionality", G_GEN},
    [F_INVERSE_DIMENSIONALITY] = {"inverse_dimensionality", G_GEN},
    [F_LOG_INVERSE_DIMENSIONALITY] = {"log_inverse_dimensionality", G_GEN},
    [F_N_NUMERIC] = {"n_numeric", G_GEN},
    [F_N_CATEGORICAL] = {"n_categorical", G_GEN},
    [F_SHARE_NUMERIC] = {"share_numeric", G_GEN},
    [F_SHARE_CATEGORICAL] = {"share_categorical", G_GEN},
    [F_CAT_LEVELS_MIN] = {"cat_levels_min", G_GEN},
    [F_CAT_LEVELS_MAX] = {"cat_levels_max", G_GEN},
    [F_CAT_LEVELS_MEAN] = {"cat_levels_mean", G_GEN},
    [F_CAT_LEVELS_STD] = {"cat_levels_std", G_GEN},
    [F_CAT_LEVELS_SUM] = {"cat_levels_sum", G_GEN},
    [F_N_MISSING_CELLS] = {"n_missing_cells", G_GEN},
    [F_SHARE_MISSING_CELLS] = {"share_missing_cells", G_GEN},
    [F_SHARE_ROWS_WITH_MISSING] = {"share_rows_with_missing", G_GEN},
    [F_SHARE_FEATURES_WITH_MISSING] = {"share_features_with_missing", G_GEN},
    [F_CLASS_PROB_MIN] = {"class_prob_min", G_GEN},
    [F_CLASS_PROB_MAX] = {"class_prob_max", G_GEN},
    [F_CLASS_PROB_MEAN] = {"class_prob_mean", G_GEN},
    [F_CLASS_PROB_STD] = {"class_prob_std", G_GEN},
    [F_CLASS_ENTROPY] = {"class_entropy", G_GEN},
    [F_SKEWNESS_MIN] = {"skewness_min", G_STA},
    [F_SKEWNESS_MAX] = {"skewness_max", G_STA},
    [F_SKEWNESS_MEAN] = {"skewness_mean", G_STA},
    [F_SKEWNESS_STD] = {"skewness_std", G_STA},
    [F_KURTOSIS_MIN] = {"kurtosis_min", G_STA},
    [F_KURTOSIS_MAX] = {"kurtosis_max", G_STA},
    [F_KURTOSIS_MEAN] = {"kurtosis_mean", G_STA},
    [F_KURTOSIS_STD] = {"kurtosis_std", G_STA},
    [F_COR_ABS_MEAN] = {"cor_abs_mean", G_STA},
    [F_COR_ABS_MAX] = {"cor_abs_max", G_STA},
    [F_PCA_COMPONENTS_95] = {"pca_components_95", G_STA},
    [F_PCA_FRACTION_95] = {"pca_fraction_95", G_STA},
    [F_PCA_FIRST_SHARE] = {"pca_first_share", G_STA},
    [F_PCA_FIRST_SKEWNESS] = {"pca_first_skewness", G_STA},
    [F_PCA_FIRST_KURTOSIS] = {"pca_first_kurtosis", G_STA},
    [F_ATTR_ENTROPY_MEAN] = {"attr_entropy_mean", G_INF},
    [F_TARGET_ENTROPY] = {"target_entropy", G_INF},
    [F_MUTUAL_INFO_MEAN] = {"mutual_info_mean", G_INF},
    [F_MUTUAL_INFO_MAX] = {"mutual_info_max", G_INF},
    [F_EQUIVALENT_N_ATTRIBUTES] = {"equivalent_n_attributes", G_INF},
    [F_NOISE_SIGNAL_RATIO] = {"noise_signal_ratio", G_INF},
    [F_LANDMARK_1NN] = {"landmark_1nn", G_LMK},
    [F_LANDMARK_NAIVE_BAYES] = {"landmark_naive_bayes", G_LMK},
    [F_LANDMARK_STUMP] = {"landmark_stump", G_LMK},
    [F_LANDMARK_LDA] = {"landmark_lda", G_LMK},
    [F_LANDMARK_LINEAR_SVM] = {"landmark_linear_svm", G_LMK},
    [F_LANDMARK_RBF_SVM] = {"landmark_rbf_svm", G_LMK},
    [F_IMG_HEIGHT] = {"img_height", G_IMG},
    [F_IMG_WIDTH] = {"img_width", G_IMG},
    [F_IMG_CHANNELS] = {"img_channels", G_IMG},
    [F_IMG_PIXEL_MEAN] = {"img_pixel_mean", G_IMG},
    [F_IMG_PIXEL_STD] = {"img_pixel_std", G_IMG},
    [F_IMG_CLASS_DIST_MIN] = {"img_class_dist_min", G_IMG},
    [F_IMG_CLASS_DIST_MAX] = {"img_class_dist_max", G_IMG},
    [F_IMG_CLASS_DIST_MEAN] = {"img_class_dist_mean", G_IMG},
    [F_IMG_CLASS_DIST_STD] = {"img_class_dist_std", G_IMG},
};

_Static_assert(F_COUNT <= KB_METAFEATURES_MAX, "raise KB_METAFEATURES_MAX");

size_t kb_metafeatures_count(void)
{
    return F_COUNT;
}

const char *kb_metafeatures_name(size_t i)
{
    return i < F_COUNT ? table[i].name : NULL;
}

unsigned kb_metafeatures_group(size_t i)
{
    return i < F_COUNT ? table[i].group : 0;
}

int kb_metafeatures_index(const char *name)
{
    for (size_t i = 0; name != NULL && i < F_COUNT; i++) {
        if (strcmp(table[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

double kb_metafeatures_get(const kb_metafeatures *mf, const char *name)
{
    int i = kb_metafeatures_index(name);
    return i < 0 ? NAN : mf->values[i];
}

static const struct {
    const char *name;
    unsigned flag;
} group_names[] = {
    {"general", G_GEN},  {"statistical", G_STA}, {"info", G_INF},
    {"landmark", G_LMK}, {"image", G_IMG},
};

const char *kb_metafeatures_group_name(unsigned group)
{
    for (size_t i = 0; i < sizeof group_names / sizeof group_names[0]; i++) {
        if (group_names[i].flag == group) {
            return group_names[i].name;
        }
    }
    return NULL;
}

int kb_metafeatures_parse_groups(unsigned *out, const char *list, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && list != NULL);
    unsigned g = 0;
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        int found = 0;
        if (len == 3 && strncmp(p, "all", 3) == 0) {
            g |= KB_METAFEATURES_GROUP_ALL;
            found = 1;
        }
        for (size_t i = 0; !found && i < sizeof group_names / sizeof group_names[0]; i++) {
            if (strlen(group_names[i].name) == len && strncmp(p, group_names[i].name, len) == 0) {
                g |= group_names[i].flag;
                found = 1;
            }
        }
        if (!found) {
            return kb_error_set(err, KB_EINVAL,
                                "unknown group '%.*s' (general, statistical, info, landmark, "
                                "image, all)",
                                (int)(len > 64 ? 64 : len), p);
        }
        if (p[len] == '\0') {
            break;
        }
        p += len + 1;
    }
    *out = g;
    return KB_OK;
}

/*
 * min/max/mean/std of the non-NaN values of v. std is the population standard deviation (as
 * numpy's np.std and auto-sklearn's *STD features) and needs two values: the spread of a
 * single value is not a measurement, so it stays missing.
 */
static void summarize4(double *dst_min, double *dst_max, double *dst_mean, double *dst_std,
                       const double *v, size_t n)
{
    kb_stats_summary s;
    kb_stats_summarize(&s, v, n, 1);
    *dst_min = s.min;
    *dst_max = s.max;
    *dst_mean = s.mean;
    *dst_std = s.n >= 2 ? sqrt(fmax(s.var, 0.0)) : NAN;
}

/* Whether a column summary describes a usable, non-constant column (same rule as stats.c). */
static int is_varying(const kb_stats_summary *s)
{
    return s->n >= 2 && !isnan(s->skewness);
}

/* Per-column facts gathered in one streaming pass and shared by the groups. */
typedef struct col_info {
    kb_stats_summary s; /* numeric columns; for categorical only n is used */
} col_info;

/* Entropy in bits of a count vector with total `total`. */
static double entropy_bits(const size_t *count, size_t k, size_t total)
{
    double h = 0;
    for (size_t c = 0; c < k; c++) {
        if (count[c] > 0) {
            double p = (double)count[c] / (double)total;
            h -= p * log2(p);
        }
    }
    return h;
}

static int general_group(double *v, const kb_dataset *d, const col_info *ci, kb_error *err)
{
    size_t n = d->n_rows, p = d->n_cols;
    v[F_N_ROWS] = (double)n;
    v[F_N_FEATURES] = (double)p;
    v[F_LOG_N_ROWS] = n > 0 ? log((double)n) : NAN;
    v[F_LOG_N_FEATURES] = p > 0 ? log((double)p) : NAN;
    if (n > 0) {
        v[F_DIMENSIONALITY] = (double)p / (double)n;
        v[F_LOG_DIMENSIONALITY] = p > 0 ? log(v[F_DIMENSIONALITY]) : NAN;
    }
    if (p > 0) {
        v[F_INVERSE_DIMENSIONALITY] = (double)n / (double)p;
        v[F_LOG_INVERSE_DIMENSIONALITY] = n > 0 ? log(v[F_INVERSE_DIMENSIONALITY]) : NAN;
    }

    size_t n_cat = 0, n_missing = 0, n_cols_missing = 0;
    double *levels = kb_malloc_array(p > 0 ? p : 1, sizeof *levels);
    unsigned char *row_missing = NULL;
    if (levels == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory for column summaries");
    }
    for (size_t j = 0; j < p; j++) {
        if (d->cols[j].type == KB_COLUMN_CATEGORICAL) {
            levels[n_cat++] = (double)d->cols[j].n_levels;
        }
        size_t miss = n - ci[j].s.n;
        n_missing += miss;
        n_cols_missing += miss > 0;
    }
    v[F_N_NUMERIC] = (double)(p - n_cat);
    v[F_N_CATEGORICAL] = (double)n_cat;
    if (p > 0) {
        v[F_SHARE_NUMERIC] = (double)(p - n_cat) / (double)p;
        v[F_SHARE_CATEGORICAL] = (double)n_cat / (double)p;
        v[F_SHARE_FEATURES_WITH_MISSING] = (double)n_cols_missing / (double)p;
    }
    if (n_cat > 0) {
        summarize4(&v[F_CAT_LEVELS_MIN], &v[F_CAT_LEVELS_MAX], &v[F_CAT_LEVELS_MEAN],
                   &v[F_CAT_LEVELS_STD], levels, n_cat);
        v[F_CAT_LEVELS_SUM] = v[F_CAT_LEVELS_MEAN] * (double)n_cat;
    }
    kb_free(levels);
    v[F_N_MISSING_CELLS] = (double)n_missing;
    if (n > 0 && p > 0) {
        v[F_SHARE_MISSING_CELLS] = (double)n_missing / ((double)n * (double)p);
    }
    if (n > 0) {
        size_t rows_missing = 0;
        if (n_missing > 0) {
            /* one byte per row, filled column by column so columns are read contiguously */
            row_missing = kb_calloc(n, 1);
            if (row_missing == NULL) {
                return kb_error_set(err, KB_ENOMEM, "out of memory for row flags");
            }
            for (size_t j = 0; j < p; j++) {
                if (ci[j].s.n == n) {
                    continue;
                }
                const double *x = kb_dataset_col(d, j);
                for (size_t i = 0; i < n; i++) {
                    row_missing[i] |= (unsigned char)isnan(x[i]);
                }
            }
            for (size_t i = 0; i < n; i++) {
                rows_missing += row_missing[i] != 0;
            }
            kb_free(row_missing);
        }
        v[F_SHARE_ROWS_WITH_MISSING] = (double)rows_missing / (double)n;
    }

    if (d->task != KB_DATASET_TASK_CLASSIFICATION || n == 0) {
        return KB_OK;
    }
    size_t k = d->n_classes;
    size_t *count = kb_calloc(k > 0 ? k : 1, sizeof *count);
    double *prob = kb_malloc_array(k > 0 ? k : 1, sizeof *prob);
    if (count == NULL || prob == NULL) {
        kb_free(count);
        kb_free(prob);
        return kb_error_set(err, KB_ENOMEM, "out of memory for class counts");
    }
    for (size_t i = 0; i < n; i++) {
        count[(size_t)d->y[i]]++;
    }
    size_t present = 0;
    for (size_t c = 0; c < k; c++) {
        if (count[c] > 0) {
            prob[present++] = (double)count[c] / (double)n;
        }
    }
    v[F_N_CLASSES] = (double)present;
    summarize4(&v[F_CLASS_PROB_MIN], &v[F_CLASS_PROB_MAX], &v[F_CLASS_PROB_MEAN],
               &v[F_CLASS_PROB_STD], prob, present);
    v[F_CLASS_ENTROPY] = entropy_bits(count, k, n);
    kb_free(count);
    kb_free(prob);
    return KB_OK;
}

/*
 * Correlations and PCA of the standardised numeric columns (the non-constant ones), missing
 * values imputed by the column mean, i.e. standardised value 0. C = Z'Z accumulates over row
 * blocks with dsyrk, so memory is one block plus q x q, never a copy of the data. C/n is the
 * covariance of Z (Z has mean 0 exactly); correlations renormalise by the diagonal, which is
 * below n when values were imputed.
 */
static int correlation_pca(double *v, const kb_dataset *d, const col_info *ci,
                           const kb_metafeatures_opts *o, kb_error *err)
{
    size_t n = d->n_rows, q = 0;
    size_t *use = NULL;
    double *c = NULL, *blk = NULL, *w = NULL, *scores = NULL;
    int rc = KB_OK;

    use = kb_malloc_array(d->n_cols > 0 ? d->n_cols : 1, sizeof *use);
    if (use == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory for the correlation pass");
        goto done;
    }
    for (size_t j = 0; j < d->n_cols; j++) {
        if (d->cols[j].type != KB_COLUMN_CATEGORICAL && is_varying(&ci[j].s)) {
            use[q++] = j;
        }
    }
    if (q == 0 || n < 2) {
        goto done;
    }
    /*
     * Bound on the work: C is q x q (8 q^2 bytes) and dsyevd costs O(q^3); beyond
     * MAX_PCA_COLUMNS the correlation and PCA features stay missing and a warning says why.
     */
    if (q > MAX_PCA_COLUMNS) {
        kb_log_printf(&o->log, KB_LOG_LEVEL_WARNING,
                      "%zu usable numeric features (more than %d): correlation and PCA features "
                      "not computed",
                      q, MAX_PCA_COLUMNS);
        goto done;
    }
    /* rows per block: about 512 KiB of doubles, at least 64 rows */
    size_t bs = 65536 / q;
    bs = bs < 64 ? 64 : bs > 8192 ? 8192 : bs;
    bs = bs > n ? n : bs;
    c = kb_calloc(q * q, sizeof *c);
    blk = kb_malloc_array(bs * q, sizeof *blk);
    w = kb_malloc_array(q, sizeof *w);
    scores = kb_malloc_array(n, sizeof *scores);
    if (c == NULL || blk == NULL || w == NULL || scores == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory for a %zu x %zu correlation matrix", q, q);
        goto done;
    }
    for (size_t r0 = 0; r0 < n; r0 += bs) {
        size_t nb = n - r0 < bs ? n - r0 : bs;
        for (size_t a = 0; a < q; a++) {
            const kb_stats_summary *s = &ci[use[a]].s;
            const double *x = kb_dataset_col(d, use[a]) + r0;
            double mu = s->mean, inv = 1.0 / sqrt(s->var);
            double *z = blk + a * nb;
            for (size_t i = 0; i < nb; i++) {
                z[i] = isnan(x[i]) ? 0.0 : (x[i] - mu) * inv;
            }
        }
        cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, (blasint)q, (blasint)nb, 1.0, blk,
                    (blasint)nb, 1.0, c, (blasint)q);
        /* a progress line per quarter, for inputs large enough to take a while */
        size_t quarter = n / 4 + 1;
        if (n >= 1000000 && (r0 + nb) / quarter != r0 / quarter) {
            kb_log_printf(&o->log, KB_LOG_LEVEL_INFO, "correlations: %zu of %zu rows", r0 + nb, n);
        }
    }
    if (q >= 2) {
        double sum = 0, mx = 0;
        size_t np = 0;
        for (size_t b = 1; b < q; b++) {
            for (size_t a = 0; a < b; a++) {
                double den = sqrt(c[a + a * q] * c[b + b * q]);
                if (den > 0) {
                    double r = fabs(c[a + b * q] / den);
                    r = r > 1 ? 1 : r;
                    sum += r;
                    mx = r > mx ? r : mx;
                    np++;
                }
            }
        }
        if (np > 0) {
            v[F_COR_ABS_MEAN] = sum / (double)np;
            v[F_COR_ABS_MAX] = mx;
        }
    }

    /* PCA: eigen-decomposition of the covariance C / n (upper triangle filled by dsyrk) */
    for (size_t k = 0; k < q * q; k++) {
        c[k] /= (double)n;
    }
    lapack_int info =
        LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', (lapack_int)q, c, (lapack_int)q, w);
    if (info != 0) {
        rc = kb_error_set_cause(err, KB_ENUMERIC, (int)info,
                                "eigen-decomposition of the %zu x %zu covariance failed (info %d)",
                                q, q, (int)info);
        goto done;
    }
    double total = 0;
    for (size_t k = 0; k < q; k++) {
        w[k] = fmax(w[k], 0.0); /* eigenvalues of a PSD matrix; negatives are rounding */
        total += w[k];
    }
    if (!(total > 0)) {
        goto done;
    }
    /* eigenvalues ascending: count components from the largest down */
    double cum = 0;
    size_t k95 = 0;
    for (size_t k = q; k-- > 0;) {
        cum += w[k];
        k95++;
        if (cum >= 0.95 * total) {
            break;
        }
    }
    v[F_PCA_COMPONENTS_95] = (double)k95;
    v[F_PCA_FRACTION_95] = (double)k95 / (double)q;
    v[F_PCA_FIRST_SHARE] = w[q - 1] / total;

    /*
     * First-component scores Z v1. An eigenvector's sign is arbitrary and flips the skewness,
     * so fix it: the loading of largest magnitude is positive (the first one on ties).
     */
    double *v1 = c + (q - 1) * q;
    size_t amax = 0;
    for (size_t a = 1; a < q; a++) {
        if (fabs(v1[a]) > fabs(v1[amax])) {
            amax = a;
        }
    }
    if (v1[amax] < 0) {
        for (size_t a = 0; a < q; a++) {
            v1[a] = -v1[a];
        }
    }
    for (size_t r0 = 0; r0 < n; r0 += bs) {
        size_t nb = n - r0 < bs ? n - r0 : bs;
        double *sc = scores + r0;
        memset(sc, 0, nb * sizeof *sc);
        for (size_t a = 0; a < q; a++) {
            const kb_stats_summary *s = &ci[use[a]].s;
            const double *x = kb_dataset_col(d, use[a]) + r0;
            double mu = s->mean, f = v1[a] / sqrt(s->var);
            for (size_t i = 0; i < nb; i++) {
                sc[i] += isnan(x[i]) ? 0.0 : (x[i] - mu) * f;
            }
        }
    }
    kb_stats_summary ss;
    kb_stats_summarize(&ss, scores, n, 1);
    v[F_PCA_FIRST_SKEWNESS] = ss.skewness;
    v[F_PCA_FIRST_KURTOSIS] = ss.kurtosis;

done:
    kb_free(scores);
    kb_free(w);
    kb_free(blk);
    kb_free(c);
    kb_free(use);
    return rc;
}

static int statistical_group(double *v, const kb_dataset *d, const col_info *ci,
                             const kb_metafeatures_opts *o, kb_error *err)
{
    size_t p = d->n_cols, m = 0;
    double *sk = kb_malloc_array(2 * (p > 0 ? p : 1), sizeof *sk);
    if (sk == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory for column moments");
    }
    double *ku = sk + (p > 0 ? p : 1);
    for (size_t j = 0; j < p; j++) {
        if (d->cols[j].type != KB_COLUMN_CATEGORICAL && is_varying(&ci[j].s)) {
            sk[m] = ci[j].s.skewness;
            ku[m] = ci[j].s.kurtosis;
            m++;
        }
    }
    if (m > 0) {
        summarize4(&v[F_SKEWNESS_MIN], &v[F_SKEWNESS_MAX], &v[F_SKEWNESS_MEAN], &v[F_SKEWNESS_STD],
                   sk, m);
        summarize4(&v[F_KURTOSIS_MIN], &v[F_KURTOSIS_MAX], &v[F_KURTOSIS_MEAN], &v[F_KURTOSIS_STD],
                   ku, m);
    }
    kb_free(sk);
    return correlation_pca(v, d, ci, o, err);
}

/*
 * Discretised value of column j at row i: categorical level, or the equal-width bin of a
 * numeric value between the column's min and max (the maximum falls in the last bin; a
 * constant column is one bin). Returns -1 for a missing value.
 */
static long bin_of(double x, const kb_column *col, const kb_stats_summary *s, size_t n_bins)
{
    if (isnan(x)) {
        return -1;
    }
    if (col->type == KB_COLUMN_CATEGORICAL) {
        return (long)x;
    }
    double range = s->max - s->min;
    if (!(range > 0)) {
        return 0;
    }
    double b = floor((x - s->min) / range * (double)n_bins);
    return b >= (double)n_bins ? (long)n_bins - 1 : b < 0 ? 0 : (long)b;
}

static int info_group(double *v, const kb_dataset *d, const col_info *ci,
                      const kb_metafeatures_opts *o, kb_error *err)
{
    size_t n = d->n_rows, p = d->n_cols, nb = o->n_bins;
    size_t k;
    long *ybin = NULL;
    size_t *table_xy = NULL, *cx = NULL, *cy = NULL;
    int rc = KB_OK;

    if (n == 0) {
        return KB_OK;
    }
    ybin = kb_malloc_array(n, sizeof *ybin);
    if (ybin == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory for the binned target");
    }
    if (d->task == KB_DATASET_TASK_CLASSIFICATION) {
        k = d->n_classes;
        for (size_t i = 0; i < n; i++) {
            ybin[i] = (long)d->y[i];
        }
    } else {
        /* a regression target is discretised like a numeric feature */
        kb_stats_summary ys;
        kb_stats_summarize(&ys, d->y, n, 1);
        kb_column ycol = {NULL, KB_COLUMN_NUMERIC, NULL, 0, 0};
        k = nb;
        for (size_t i = 0; i < n; i++) {
            ybin[i] = bin_of(d->y[i], &ycol, &ys, nb);
        }
    }
    size_t max_levels = nb;
    for (size_t j = 0; j < p; j++) {
        if (d->cols[j].type == KB_COLUMN_CATEGORICAL && d->cols[j].n_levels > max_levels) {
            max_levels = d->cols[j].n_levels;
        }
    }
    if (k == 0 || max_levels > ((size_t)-1) / sizeof(size_t) / k) {
        rc = kb_error_set(err, KB_EINVAL, "contingency table too large");
        goto done;
    }
    table_xy = kb_malloc_array(max_levels * k, sizeof *table_xy);
    cx = kb_malloc_array(max_levels, sizeof *cx);
    cy = kb_malloc_array(k, sizeof *cy);
    if (table_xy == NULL || cx == NULL || cy == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory for a contingency table");
        goto done;
    }
    memset(cy, 0, k * sizeof *cy);
    for (size_t i = 0; i < n; i++) {
        if (ybin[i] >= 0) {
            cy[ybin[i]]++;
        }
    }
    double hy = entropy_bits(cy, k, n);
    v[F_TARGET_ENTROPY] = hy;

    double sum_hx = 0, sum_mi = 0, max_mi = 0;
    size_t n_used = 0;
    for (size_t j = 0; j < p; j++) {
        const kb_column *col = &d->cols[j];
        size_t lv = col->type == KB_COLUMN_CATEGORICAL ? col->n_levels : nb;
        if (ci[j].s.n == 0 || lv == 0) {
            continue; /* an all-missing column carries no information to measure */
        }
        memset(table_xy, 0, lv * k * sizeof *table_xy);
        const double *x = kb_dataset_col(d, j);
        if (col->type == KB_COLUMN_CATEGORICAL || !(ci[j].s.max > ci[j].s.min)) {
            for (size_t i = 0; i < n; i++) {
                long b = bin_of(x[i], col, &ci[j].s, nb);
                if (b >= 0 && ybin[i] >= 0) {
                    table_xy[(size_t)b * k + (size_t)ybin[i]]++;
                }
            }
        } else {
            /* bin_of inlined for the hot numeric case: same expression, same rounding */
            double mn = ci[j].s.min, range = ci[j].s.max - ci[j].s.min, fb = (double)nb;
            for (size_t i = 0; i < n; i++) {
                double xi = x[i];
                if (isnan(xi) || ybin[i] < 0) {
                    continue;
                }
                double b = floor((xi - mn) / range * fb);
                size_t bi = b >= fb ? nb - 1 : b < 0 ? 0 : (size_t)b;
                table_xy[bi * k + (size_t)ybin[i]]++;
            }
        }
        memset(cx, 0, lv * sizeof *cx);
        memset(cy, 0, k * sizeof *cy);
        size_t m = 0;
        for (size_t b = 0; b < lv; b++) {
            for (size_t c = 0; c < k; c++) {
                size_t t = table_xy[b * k + c];
                cx[b] += t;
                cy[c] += t;
                m += t;
            }
        }
        if (m == 0) {
            continue;
        }
        double hx = entropy_bits(cx, lv, m);
        /* I(X;Y) = sum p(x,y) log2(p(x,y) / (p(x) p(y))) over the rows where X is present */
        double mi = 0;
        for (size_t b = 0; b < lv; b++) {
            for (size_t c = 0; c < k; c++) {
                size_t nxy = table_xy[b * k + c];
                if (nxy > 0) {
                    mi += (double)nxy / (double)m *
                          log2((double)nxy * (double)m / ((double)cx[b] * (double)cy[c]));
                }
            }
        }
        mi = fmax(mi, 0.0); /* >= 0 in exact arithmetic */
        sum_hx += hx;
        sum_mi += mi;
        max_mi = mi > max_mi ? mi : max_mi;
        n_used++;
    }
    if (n_used > 0) {
        double mean_hx = sum_hx / (double)n_used, mean_mi = sum_mi / (double)n_used;
        v[F_ATTR_ENTROPY_MEAN] = mean_hx;
        v[F_MUTUAL_INFO_MEAN] = mean_mi;
        v[F_MUTUAL_INFO_MAX] = max_mi;
        /*
         * Both ratios divide by the mean mutual information; below 1e-12 bits it is zero up
         * to rounding (e.g. a one-class target) and the ratios do not exist.
         */
        if (mean_mi > 1e-12) {
            v[F_EQUIVALENT_N_ATTRIBUTES] = hy / mean_mi;
            v[F_NOISE_SIGNAL_RATIO] = (mean_hx - mean_mi) / mean_mi;
        }
    }

done:
    kb_free(cy);
    kb_free(cx);
    kb_free(table_xy);
    kb_free(ybin);
    return rc;
}

/* Image group: pixel statistics and RMS distances between per-class mean images. */
static int image_group(double *v, const kb_dataset *d, const col_info *ci, kb_error *err)
{
    size_t n = d->n_rows, p = d->n_cols;
    if (d->img_channels == 0) {
        return KB_OK;
    }
    v[F_IMG_HEIGHT] = (double)d->img_height;
    v[F_IMG_WIDTH] = (double)d->img_width;
    v[F_IMG_CHANNELS] = (double)d->img_channels;
    /* pooled mean and variance over every pixel of every image, from the column summaries */
    double sum = 0, sumsq = 0;
    size_t cnt = 0;
    for (size_t j = 0; j < p; j++) {
        const kb_stats_summary *s = &ci[j].s;
        if (s->n == 0) {
            continue;
        }
        sum += s->mean * (double)s->n;
        cnt += s->n;
    }
    if (cnt == 0) {
        return KB_OK;
    }
    double mean = sum / (double)cnt;
    for (size_t j = 0; j < p; j++) {
        const kb_stats_summary *s = &ci[j].s;
        if (s->n > 0) {
            double dm = s->mean - mean;
            sumsq += (double)s->n * (s->var + dm * dm);
        }
    }
    v[F_IMG_PIXEL_MEAN] = mean;
    v[F_IMG_PIXEL_STD] = sqrt(fmax(sumsq / (double)cnt, 0.0));

    size_t k = d->n_classes;
    if (d->task != KB_DATASET_TASK_CLASSIFICATION || k < 2 || p == 0) {
        return KB_OK;
    }
    if (k > ((size_t)-1) / sizeof(double) / p) {
        return kb_error_set(err, KB_EINVAL, "too many classes for mean images");
    }
    double *means = kb_calloc(k * p, sizeof *means);
    size_t *counts = kb_calloc(k * p, sizeof *counts);
    size_t n_pairs = k * (k - 1) / 2;
    double *dist = kb_malloc_array(n_pairs, sizeof *dist);
    if (means == NULL || counts == NULL || dist == NULL) {
        kb_free(means);
        kb_free(counts);
        kb_free(dist);
        return kb_error_set(err, KB_ENOMEM, "out of memory for class mean images");
    }
    /* means[c + j*k]: class c's mean of pixel j over its non-missing values */
    for (size_t j = 0; j < p; j++) {
        const double *x = kb_dataset_col(d, j);
        for (size_t i = 0; i < n; i++) {
            if (!isnan(x[i])) {
                size_t c = (size_t)d->y[i];
                means[c + j * k] += x[i];
                counts[c + j * k]++;
            }
        }
    }
    for (size_t t = 0; t < k * p; t++) {
        means[t] = counts[t] > 0 ? means[t] / (double)counts[t] : NAN;
    }
    size_t m = 0;
    for (size_t a = 0; a < k; a++) {
        for (size_t b = a + 1; b < k; b++) {
            double s2 = 0;
            size_t used = 0;
            for (size_t j = 0; j < p; j++) {
                double da = means[a + j * k], db = means[b + j * k];
                if (!isnan(da) && !isnan(db)) {
                    s2 += (da - db) * (da - db);
                    used++;
                }
            }
            if (used > 0) {
                dist[m++] = sqrt(s2 / (double)used);
            }
        }
    }
    if (m > 0) {
        summarize4(&v[F_IMG_CLASS_DIST_MIN], &v[F_IMG_CLASS_DIST_MAX], &v[F_IMG_CLASS_DIST_MEAN],
                   &v[F_IMG_CLASS_DIST_STD], dist, m);
    }
    kb_free(means);
    kb_free(counts);
    kb_free(dist);
    return KB_OK;
}

static int landmark_group(kb_metafeatures *out, const kb_dataset *d, const kb_metafeatures_opts *o,
                          kb_error *err)
{
    kb_landmark_opts lo = KB_LANDMARK_OPTS_INIT;
    lo.sample_rows = o->sample_rows;
    lo.n_folds = o->n_folds;
    lo.seed = o->seed;
    lo.log = o->log;
    kb_landmark_result r;
    int rc = kb_landmark_compute(&r, d, &lo, err);
    if (rc != KB_OK) {
        return rc;
    }
    for (int m = 0; m < KB_LANDMARK_N_MODELS; m++) {
        out->values[F_LANDMARK_1NN + m] = r.score[m];
        out->landmark_time_s[m] = r.time_s[m];
    }
    out->landmark_rows = r.n_rows;
    out->landmark_cols = r.n_cols;
    return KB_OK;
}

int kb_metafeatures_compute(kb_metafeatures *out, const kb_dataset *d,
                            const kb_metafeatures_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    for (size_t i = 0; i < KB_METAFEATURES_MAX; i++) {
        out->values[i] = NAN;
    }
    for (size_t i = 0; i < sizeof out->landmark_time_s / sizeof out->landmark_time_s[0]; i++) {
        out->landmark_time_s[i] = NAN;
    }
    out->groups = 0;
    out->landmark_rows = out->landmark_cols = 0;
    int rc = kb_landmark__check_dataset(d, err);
    if (rc != KB_OK) {
        return rc;
    }
    kb_metafeatures_opts o = KB_METAFEATURES_OPTS_INIT;
    if (opts != NULL) {
        o = *opts;
    }
    o.groups = o.groups == 0 ? KB_METAFEATURES_GROUP_ALL : o.groups & KB_METAFEATURES_GROUP_ALL;
    o.sample_rows = o.sample_rows == 0 ? 2000 : o.sample_rows;
    o.n_folds = o.n_folds == 0 ? 5 : o.n_folds;
    o.n_bins = o.n_bins == 0 ? 10 : o.n_bins;
    if (o.n_bins > (size_t)LONG_MAX) {
        return kb_error_set(err, KB_EINVAL, "too many bins: %zu", o.n_bins);
    }

    /* one streaming pass per column: count, mean, variance, min/max, skewness, kurtosis */
    col_info *ci = kb_calloc(d->n_cols > 0 ? d->n_cols : 1, sizeof *ci);
    if (ci == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory for %zu column summaries", d->n_cols);
    }
    for (size_t j = 0; j < d->n_cols; j++) {
        kb_stats_summarize(&ci[j].s, kb_dataset_col(d, j), d->n_rows, 1);
    }
    double *v = out->values;
    if (o.groups & G_GEN) {
        rc = general_group(v, d, ci, err);
    }
    if (rc == KB_OK && (o.groups & G_STA)) {
        kb_log_printf(&o.log, KB_LOG_LEVEL_INFO, "statistical: %zu columns", d->n_cols);
        rc = statistical_group(v, d, ci, &o, err);
    }
    if (rc == KB_OK && (o.groups & G_INF)) {
        kb_log_printf(&o.log, KB_LOG_LEVEL_INFO, "info: %zu columns", d->n_cols);
        rc = info_group(v, d, ci, &o, err);
    }
    if (rc == KB_OK && (o.groups & G_IMG)) {
        rc = image_group(v, d, ci, err);
    }
    if (rc == KB_OK && (o.groups & G_LMK)) {
        rc = landmark_group(out, d, &o, err);
    }
    kb_free(ci);
    if (rc != KB_OK) {
        for (size_t i = 0; i < KB_METAFEATURES_MAX; i++) {
            out->values[i] = NAN;
        }
        return rc;
    }
    /* the image group exists only for image data: absent, not missing, elsewhere */
    out->groups = d->img_channels > 0 ? o.groups : o.groups & ~(unsigned)G_IMG;
    return KB_OK;
}
