/*
 * Meta-features: exact values on hand-made datasets, and agreement with the independent
 * reference (tests/ref/metafeatures_ref.py -> tests/ref/metafeatures_ref.json, numpy/scipy/
 * scikit-learn) on bundled datasets read from $KB_SRC/datasets.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "engine/dataset.h"
#include "engine/landmark.h"
#include "engine/metafeatures.h"

/* ---- hand-made datasets ----------------------------------------------------------------- */

/* A dataset over caller arrays (not owned): cols[j] types from `types` ('n' or 'c'). */
typedef struct fake {
    kb_dataset d;
    kb_column cols[8];
    char *names[8];
} fake;

static void fake_init(fake *f, size_t n, size_t p, const char *types, double *x, double *y,
                      kb_dataset_task task, size_t n_classes)
{
    memset(f, 0, sizeof *f);
    static char name[] = "x";
    for (size_t j = 0; j < p; j++) {
        f->cols[j].name = name;
        f->cols[j].type = types[j] == 'c' ? KB_COLUMN_CATEGORICAL : KB_COLUMN_NUMERIC;
        f->cols[j].n_levels = 0;
        if (types[j] == 'c') {
            double mx = -1;
            for (size_t i = 0; i < n; i++) {
                mx = x[i + j * n] > mx ? x[i + j * n] : mx;
            }
            f->cols[j].n_levels = (size_t)(mx + 1);
        }
    }
    f->d.n_rows = n;
    f->d.n_cols = p;
    f->d.cols = f->cols;
    f->d.x = x;
    f->d.y = y;
    f->d.task = task;
    f->d.n_classes = n_classes;
}

static double mf(const kb_metafeatures *m, const char *name)
{
    int i = kb_metafeatures_index(name);
    if (i < 0) {
        fprintf(stderr, "unknown feature %s\n", name);
        return NAN;
    }
    return m->values[i];
}

#define CHECK_MISSING(m, name) CHECK(isnan(mf(m, name)))

static void test_names_are_unique_snake_case(void)
{
    size_t n = kb_metafeatures_count();
    CHECK(n > 50 && n <= KB_METAFEATURES_MAX);
    for (size_t i = 0; i < n; i++) {
        const char *s = kb_metafeatures_name(i);
        CHECK(s != NULL && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(s));
        CHECK(kb_metafeatures_index(s) == (int)i);
        CHECK(kb_metafeatures_group_name(kb_metafeatures_group(i)) != NULL);
    }
    CHECK(kb_metafeatures_name(n) == NULL);
    CHECK(kb_metafeatures_index("no_such_feature") == -1);
}

static void test_parse_groups(void)
{
    kb_error err = KB_ERROR_INIT;
    unsigned g = 0;
    CHECK_OK(kb_metafeatures_parse_groups(&g, "general,info", &err), err);
    CHECK(g == (KB_METAFEATURES_GROUP_GENERAL | KB_METAFEATURES_GROUP_INFO));
    CHECK_OK(kb_metafeatures_parse_groups(&g, "all", &err), err);
    CHECK(g == KB_METAFEATURES_GROUP_ALL);
    CHECK_CODE(kb_metafeatures_parse_groups(&g, "general,bogus", &err), KB_EINVAL);
    CHECK(strstr(err.msg, "'bogus'") != NULL);
    CHECK_CODE(kb_metafeatures_parse_groups(&g, "", &err), KB_EINVAL);
}

/* A 50/50 target has entropy log2 2 = 1 bit; classes are balanced. */
static void test_balanced_binary_target_has_one_bit(void)
{
    double x[] = {1, 2, 3, 4}, y[] = {0, 0, 1, 1};
    fake f;
    fake_init(&f, 4, 1, "n", x, y, KB_DATASET_TASK_CLASSIFICATION, 2);
    kb_metafeatures m;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_metafeatures_compute(&m, &f.d, NULL, &err), err);
    CHECK_NEAR(mf(&m, "class_entropy"), 1.0, 0, 1e-15);
    CHECK_NEAR(mf(&m, "target_entropy"), 1.0, 0, 1e-15);
    CHECK_NEAR(mf(&m, "class_prob_min"), 0.5, 0, 0);
    CHECK_NEAR(mf(&m, "class_prob_max"), 0.5, 0, 0);
    CHECK_NEAR(mf(&m, "class_prob_std"), 0.0, 0, 0);
    CHECK_NEAR(mf(&m, "n_classes"), 2, 0, 0);
    CHECK_NEAR(mf(&m, "log_n_rows"), log(4.0), 1e-15, 0);
    CHECK_NEAR(mf(&m, "dimensionality"), 0.25, 0, 0);
    CHECK_NEAR(mf(&m, "share_numeric"), 1.0, 0, 0);
    /* bins of [1,4] in 10: 1->0, 2->3, 3->6, 4->9: all distinct, so H(X) = 2 bits, MI = 1 */
    CHECK_NEAR(mf(&m, "attr_entropy_mean"), 2.0, 0, 1e-15);
    CHECK_NEAR(mf(&m, "mutual_info_mean"), 1.0, 0, 1e-15);
    CHECK_NEAR(mf(&m, "equivalent_n_attributes"), 1.0, 1e-14, 0);
    CHECK_NEAR(mf(&m, "noise_signal_ratio"), 1.0, 1e-14, 0);
    /* one numeric column: the std of one skewness is not a measurement */
    CHECK_NEAR(mf(&m, "skewness_mean"), 0.0, 0, 1e-15);
    CHECK_MISSING(&m, "skewness_std");
    CHECK_MISSING(&m, "cor_abs_mean");
    CHECK_MISSING(&m, "cat_levels_mean");
    CHECK_MISSING(&m, "img_height");
    /* 4 rows cannot make 5 folds of two */
    CHECK_MISSING(&m, "landmark_1nn");
}

/*
 * PCA of a known matrix: x2 = 2 x1 and x3 orthogonal to x1. The correlation matrix is
 * [[1,1,0],[1,1,0],[0,0,1]] with eigenvalues 2, 1, 0: the first component holds 2/3 of the
 * variance, 95% needs 2 of 3; the first component's scores are sqrt(2) z1, whose skewness is
 * 0 and excess kurtosis m4/m2^2 - 3 = 6.8/4 - 3 = -1.3.
 */
static void test_pca_of_known_matrix(void)
{
    double x[] = {-2, -1, 0, 1, 2, -4, -2, 0, 2, 4, 2, -1, -2, -1, 2};
    double y[] = {0, 1, 0, 1, 0};
    fake f;
    fake_init(&f, 5, 3, "nnn", x, y, KB_DATASET_TASK_CLASSIFICATION, 2);
    kb_metafeatures_opts o = KB_METAFEATURES_OPTS_INIT;
    o.groups = KB_METAFEATURES_GROUP_STATISTICAL;
    kb_metafeatures m;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_metafeatures_compute(&m, &f.d, &o, &err), err);
    CHECK_NEAR(mf(&m, "cor_abs_max"), 1.0, 1e-12, 0);
    CHECK_NEAR(mf(&m, "cor_abs_mean"), 1.0 / 3.0, 1e-12, 1e-15);
    CHECK_NEAR(mf(&m, "pca_first_share"), 2.0 / 3.0, 1e-12, 0);
    CHECK_NEAR(mf(&m, "pca_components_95"), 2, 0, 0);
    CHECK_NEAR(mf(&m, "pca_fraction_95"), 2.0 / 3.0, 1e-15, 0);
    CHECK_NEAR(mf(&m, "pca_first_skewness"), 0.0, 0, 1e-12);
    CHECK_NEAR(mf(&m, "pca_first_kurtosis"), -1.3, 1e-12, 0);
    CHECK_NEAR(mf(&m, "skewness_min"), 0.0, 0, 1e-12);
    /* only the requested group */
    CHECK(m.groups == KB_METAFEATURES_GROUP_STATISTICAL);
    CHECK_MISSING(&m, "n_rows");
    CHECK_MISSING(&m, "class_entropy");
}

/* One class: what needs two classes is missing; the entropy of a certain target is 0. */
static void test_one_class_gives_missing_not_zero(void)
{
    enum { N = 20 };
    double x[2 * N], y[N];
    for (size_t i = 0; i < N; i++) {
        x[i] = (double)(i * i % 7);
        x[i + N] = (double)(i % 3);
        y[i] = 0;
    }
    fake f;
    fake_init(&f, N, 2, "nc", x, y, KB_DATASET_TASK_CLASSIFICATION, 1);
    kb_metafeatures m;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_metafeatures_compute(&m, &f.d, NULL, &err), err);
    CHECK_NEAR(mf(&m, "n_classes"), 1, 0, 0);
    CHECK_NEAR(mf(&m, "class_entropy"), 0.0, 0, 0);
    CHECK_NEAR(mf(&m, "class_prob_max"), 1.0, 0, 0);
    CHECK_MISSING(&m, "class_prob_std");
    CHECK_NEAR(mf(&m, "mutual_info_max"), 0.0, 0, 0);
    CHECK_MISSING(&m, "equivalent_n_attributes");
    CHECK_MISSING(&m, "noise_signal_ratio");
    for (int k = 0; k < KB_LANDMARK_N_MODELS; k++) {
        char name[64];
        snprintf(name, sizeof name, "landmark_%s", kb_landmark_model_name(k));
        CHECK(isnan(mf(&m, name)));
    }
    CHECK_NEAR(mf(&m, "n_categorical"), 1, 0, 0);
    CHECK_NEAR(mf(&m, "cat_levels_sum"), 3, 0, 0);
}

/* Constant columns and one row: moments and correlations are missing, sizes are not. */
static void test_constant_columns_and_one_row(void)
{
    double x[] = {3, 3, 3, 3, 3, 3, 7, 7, 7, 7, 7, 7}, y[] = {1.5, 2, 3, 4, 5, 6};
    fake f;
    fake_init(&f, 6, 2, "nn", x, y, KB_DATASET_TASK_REGRESSION, 0);
    kb_metafeatures m;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_metafeatures_compute(&m, &f.d, NULL, &err), err);
    CHECK_MISSING(&m, "skewness_mean");
    CHECK_MISSING(&m, "kurtosis_max");
    CHECK_MISSING(&m, "cor_abs_mean");
    CHECK_MISSING(&m, "pca_components_95");
    CHECK_MISSING(&m, "n_classes");
    CHECK_MISSING(&m, "class_entropy");
    CHECK_NEAR(mf(&m, "attr_entropy_mean"), 0.0, 0, 0);
    CHECK_NEAR(mf(&m, "mutual_info_mean"), 0.0, 0, 0);
    CHECK_MISSING(&m, "equivalent_n_attributes");
    CHECK_NEAR(mf(&m, "n_rows"), 6, 0, 0);

    fake one;
    double x1[] = {1, 2}, y1[] = {0};
    fake_init(&one, 1, 2, "nn", x1, y1, KB_DATASET_TASK_CLASSIFICATION, 1);
    CHECK_OK(kb_metafeatures_compute(&m, &one.d, NULL, &err), err);
    CHECK_NEAR(mf(&m, "n_rows"), 1, 0, 0);
    CHECK_NEAR(mf(&m, "log_n_rows"), 0.0, 0, 0);
    CHECK_MISSING(&m, "skewness_min");
    CHECK_MISSING(&m, "pca_first_share");
    CHECK_MISSING(&m, "landmark_stump");
}

static void test_missing_value_shares(void)
{
    double x[] = {1, NAN, 3, 4, 0, 1, NAN, NAN}, y[] = {0, 1, 0, 1};
    fake f;
    fake_init(&f, 4, 2, "nc", x, y, KB_DATASET_TASK_CLASSIFICATION, 2);
    kb_metafeatures_opts o = KB_METAFEATURES_OPTS_INIT;
    o.groups = KB_METAFEATURES_GROUP_GENERAL;
    kb_metafeatures m;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_metafeatures_compute(&m, &f.d, &o, &err), err);
    CHECK_NEAR(mf(&m, "n_missing_cells"), 3, 0, 0);
    CHECK_NEAR(mf(&m, "share_missing_cells"), 3.0 / 8.0, 0, 0);
    CHECK_NEAR(mf(&m, "share_rows_with_missing"), 0.75, 0, 0);
    CHECK_NEAR(mf(&m, "share_features_with_missing"), 1.0, 0, 0);
}

/* Image group: 2 classes of 2x2 one-channel images differing by 2 in every pixel. */
static void test_image_group(void)
{
    double x[16] = {0}, y[] = {0, 0, 1, 1};
    for (size_t j = 0; j < 4; j++) {
        x[2 + j * 4] = x[3 + j * 4] = 2;
    }
    fake f;
    fake_init(&f, 4, 4, "nnnn", x, y, KB_DATASET_TASK_CLASSIFICATION, 2);
    f.d.img_channels = 1;
    f.d.img_height = 2;
    f.d.img_width = 2;
    kb_metafeatures_opts o = KB_METAFEATURES_OPTS_INIT;
    o.groups = KB_METAFEATURES_GROUP_IMAGE;
    kb_metafeatures m;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_metafeatures_compute(&m, &f.d, &o, &err), err);
    CHECK_NEAR(mf(&m, "img_height"), 2, 0, 0);
    CHECK_NEAR(mf(&m, "img_channels"), 1, 0, 0);
    CHECK_NEAR(mf(&m, "img_pixel_mean"), 1.0, 0, 1e-15);
    CHECK_NEAR(mf(&m, "img_pixel_std"), 1.0, 1e-15, 0);
    CHECK_NEAR(mf(&m, "img_class_dist_mean"), 2.0, 1e-15, 0);
    CHECK_MISSING(&m, "img_class_dist_std"); /* one pair of classes */
}

/* Landmarkers on separable data: perfect scores, and the same values for the same seed. */
static void test_landmarks_separable_and_deterministic(void)
{
    enum { N = 60 };
    double x[2 * N], y[N];
    kb_rng rng;
    kb_rng_seed(&rng, 7);
    for (size_t i = 0; i < N; i++) {
        y[i] = (double)(i % 3);
        x[i] = 10.0 * y[i] + kb_rng_uniform(&rng);
        x[i + N] = kb_rng_normal(&rng);
    }
    fake f;
    fake_init(&f, N, 2, "nn", x, y, KB_DATASET_TASK_CLASSIFICATION, 3);
    kb_metafeatures_opts o = KB_METAFEATURES_OPTS_INIT;
    o.groups = KB_METAFEATURES_GROUP_LANDMARK;
    o.seed = 3;
    o.sample_rows = 45; /* exercises the stratified sample */
    kb_metafeatures a, b;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_metafeatures_compute(&a, &f.d, &o, &err), err);
    CHECK_OK(kb_metafeatures_compute(&b, &f.d, &o, &err), err);
    CHECK(a.landmark_rows == 45 && a.landmark_cols == 2);
    CHECK_NEAR(mf(&a, "landmark_1nn"), 1.0, 0, 0);
    CHECK_NEAR(mf(&a, "landmark_lda"), 1.0, 0, 0);
    CHECK_NEAR(mf(&a, "landmark_naive_bayes"), 1.0, 0, 0);
    CHECK_NEAR(mf(&a, "landmark_linear_svm"), 1.0, 0, 0);
    CHECK_NEAR(mf(&a, "landmark_rbf_svm"), 1.0, 0, 0);
    /* one threshold separates one class from two: 2/3 */
    CHECK_NEAR(mf(&a, "landmark_stump"), 2.0 / 3.0, 1e-15, 0);
    for (size_t i = 0; i < kb_metafeatures_count(); i++) {
        CHECK(memcmp(&a.values[i], &b.values[i], sizeof(double)) == 0);
    }

    /* the stratified sample keeps the class shares: 15 of each class */
    size_t rows[45], n = 0, per[3] = {0, 0, 0};
    kb_rng_seed(&rng, 3);
    CHECK_OK(kb_landmark_sample(rows, &n, &f.d, 45, &rng, &err), err);
    CHECK(n == 45);
    for (size_t i = 0; i < n; i++) {
        per[(size_t)y[rows[i]]]++;
        CHECK(i == 0 || rows[i] > rows[i - 1]);
    }
    CHECK(per[0] == 15 && per[1] == 15 && per[2] == 15);
}

static void test_regression_landmarks(void)
{
    enum { N = 40 };
    double x[N], y[N];
    for (size_t i = 0; i < N; i++) {
        x[i] = (double)i;
        y[i] = (double)(i < N / 2 ? 0 : 10) + 0.001 * (double)i;
    }
    fake f;
    fake_init(&f, N, 1, "n", x, y, KB_DATASET_TASK_REGRESSION, 0);
    kb_metafeatures_opts o = KB_METAFEATURES_OPTS_INIT;
    o.groups = KB_METAFEATURES_GROUP_LANDMARK;
    kb_metafeatures m;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_metafeatures_compute(&m, &f.d, &o, &err), err);
    CHECK_MISSING(&m, "landmark_naive_bayes");
    CHECK_MISSING(&m, "landmark_lda");
    /* a step target: the stump is nearly exact (RMSE in units of the target's std) */
    CHECK(mf(&m, "landmark_stump") < 0.01);
    CHECK(mf(&m, "landmark_1nn") < 0.5);
    CHECK(mf(&m, "landmark_rbf_svm") > 0 && mf(&m, "landmark_rbf_svm") < 1);
}

static void count_warnings(kb_log_level level, const char *msg, void *payload)
{
    (void)msg;
    *(int *)payload += level == KB_LOG_LEVEL_WARNING;
}

/* Beyond 4096 usable columns, correlations and PCA are missing (with a warning), not huge. */
static void test_wide_data_skips_pca_with_warning(void)
{
    enum { N = 3, P = 4097 };
    double *x = malloc(sizeof(double) * N * P), y[N] = {0, 1, 0};
    kb_column *cols = calloc(P, sizeof *cols);
    CHECK(x != NULL && cols != NULL);
    if (x == NULL || cols == NULL) {
        free(x);
        free(cols);
        return;
    }
    static char name[] = "w";
    for (size_t j = 0; j < P; j++) {
        cols[j].name = name;
        cols[j].type = KB_COLUMN_NUMERIC;
        for (size_t i = 0; i < N; i++) {
            x[i + j * N] = (double)((i + 1) * (j % 7 + 1) + (i == 2 ? j % 3 : 0));
        }
    }
    kb_dataset d;
    memset(&d, 0, sizeof d);
    d.n_rows = N;
    d.n_cols = P;
    d.cols = cols;
    d.x = x;
    d.y = y;
    d.task = KB_DATASET_TASK_CLASSIFICATION;
    d.n_classes = 2;
    int warnings = 0;
    kb_metafeatures_opts o = KB_METAFEATURES_OPTS_INIT;
    o.groups = KB_METAFEATURES_GROUP_STATISTICAL;
    o.log.fn = count_warnings;
    o.log.payload = &warnings;
    kb_metafeatures m;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_metafeatures_compute(&m, &d, &o, &err), err);
    CHECK(warnings == 1);
    CHECK(!isnan(mf(&m, "skewness_mean")));
    CHECK_MISSING(&m, "cor_abs_mean");
    CHECK_MISSING(&m, "pca_components_95");
    free(x);
    free(cols);
}

static void test_rejects_bad_class_index(void)
{
    double x[] = {1, 2}, y[] = {0, 5};
    fake f;
    fake_init(&f, 2, 1, "n", x, y, KB_DATASET_TASK_CLASSIFICATION, 2);
    kb_metafeatures m;
    kb_error err = KB_ERROR_INIT;
    CHECK_CODE(kb_metafeatures_compute(&m, &f.d, NULL, &err), KB_EINVAL);
    CHECK(isnan(m.values[0]));
    kb_landmark_result r;
    CHECK_CODE(kb_landmark_compute(&r, &f.d, NULL, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "class index 5") != NULL);
    double bad_level[] = {0, 7}, y2[] = {0, 1};
    fake g;
    fake_init(&g, 2, 1, "c", bad_level, y2, KB_DATASET_TASK_CLASSIFICATION, 2);
    g.cols[0].n_levels = 2;
    CHECK_CODE(kb_landmark_compute(&r, &g.d, NULL, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "level index 7") != NULL);
}

static void test_out_of_memory_paths(void)
{
    enum { N = 30 };
    double x[3 * N], y[N];
    for (size_t i = 0; i < N; i++) {
        x[i] = (double)((i * 7) % 11);
        x[i + N] = (double)(i % 4);
        x[i + 2 * N] = i % 5 == 0 ? NAN : (double)(i * i % 13);
        y[i] = (double)(i % 2);
    }
    fake f;
    fake_init(&f, N, 3, "ncn", x, y, KB_DATASET_TASK_CLASSIFICATION, 2);
    kb_metafeatures_opts o = KB_METAFEATURES_OPTS_INIT;
    o.groups = KB_METAFEATURES_GROUP_ALL & ~(unsigned)KB_METAFEATURES_GROUP_LANDMARK;
    kb_metafeatures m;
    kb_error err = KB_ERROR_INIT;
    int ok = 0;
    for (long k = 0; k < 200 && !ok; k++) {
        kb_alloc_fail_after(k);
        int rc = kb_metafeatures_compute(&m, &f.d, &o, &err);
        kb_alloc_fail_after(-1);
        CHECK(rc == KB_OK || rc == KB_ENOMEM);
        ok = rc == KB_OK;
    }
    CHECK(ok);

    /* the landmarkers' own allocations (libsvm allocates outside kb's hooks: not the SVMs) */
    kb_landmark_opts lo = KB_LANDMARK_OPTS_INIT;
    lo.models = (1u << KB_LANDMARK_MODEL_1NN) | (1u << KB_LANDMARK_MODEL_NAIVE_BAYES) |
                (1u << KB_LANDMARK_MODEL_STUMP) | (1u << KB_LANDMARK_MODEL_LDA);
    kb_landmark_result lr;
    ok = 0;
    for (long k = 0; k < 2000 && !ok; k++) {
        kb_alloc_fail_after(k);
        int rc = kb_landmark_compute(&lr, &f.d, &lo, &err);
        kb_alloc_fail_after(-1);
        CHECK(rc == KB_OK || rc == KB_ENOMEM);
        ok = rc == KB_OK;
    }
    CHECK(ok && !isnan(lr.score[KB_LANDMARK_MODEL_LDA]) &&
          isnan(lr.score[KB_LANDMARK_MODEL_RBF_SVM]));
}

/* ---- bundled datasets against the reference --------------------------------------------- */

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        return NULL;
    }
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    if (buf != NULL && fread(buf, 1, (size_t)len, fp) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    if (buf != NULL) {
        buf[len] = '\0';
    }
    fclose(fp);
    return buf;
}

/*
 * Tolerances: deterministic statistics agree to rounding (rtol 1e-9); the landmarkers use
 * the same sample and folds as the reference, so kb's own models (1-NN, naive Bayes, stump,
 * LDA) agree exactly up to near-ties (atol 0.005 = one prediction in 200); the SVMs are
 * libsvm here and scikit-learn's patched libsvm copy there (atol 0.02).
 */
static double tolerance_abs(const char *name)
{
    if (strstr(name, "_svm") != NULL) {
        return 0.02;
    }
    if (strncmp(name, "landmark_", 9) == 0) {
        return 0.005;
    }
    return 1e-9;
}

static int compare_dataset(const char *src, const char *name, const cJSON *ref, const cJSON *params,
                           int with_landmarks)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/datasets/%s.csv.gz", src, name);
    FILE *probe = fopen(path, "rb");
    if (probe == NULL) {
        snprintf(path, sizeof path, "%s/datasets/%s.csv", src, name);
        probe = fopen(path, "rb");
    }
    if (probe == NULL) {
        /* the bundled datasets arrive with issue 3's datasets/ folder */
        fprintf(stderr, "note: %s/datasets/%s.csv.gz not present: not compared\n", src, name);
        return 0;
    }
    fclose(probe);
    const char *task = cJSON_GetStringValue(cJSON_GetObjectItem(ref, "task"));
    kb_dataset_opts dopts = KB_DATASET_OPTS_INIT;
    dopts.task = task != NULL && strcmp(task, "regression") == 0 ? KB_DATASET_TASK_REGRESSION
                                                                 : KB_DATASET_TASK_CLASSIFICATION;
    kb_dataset d;
    memset(&d, 0, sizeof d);
    kb_error err = KB_ERROR_INIT;
    int rc = kb_dataset_read(&d, path, &dopts, &err);
    CHECK_OK(rc, err);
    if (rc != KB_OK) {
        return 0;
    }
    kb_metafeatures_opts o = KB_METAFEATURES_OPTS_INIT;
    o.seed = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(params, "seed"));
    o.sample_rows = (size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(params, "sample_rows"));
    o.n_folds = (size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(params, "n_folds"));
    o.n_bins = (size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(params, "n_bins"));
    o.groups = KB_METAFEATURES_GROUP_ALL;
    if (!with_landmarks) {
        o.groups &= ~(unsigned)KB_METAFEATURES_GROUP_LANDMARK;
    }
    kb_metafeatures m;
    CHECK_OK(kb_metafeatures_compute(&m, &d, &o, &err), err);
    const cJSON *feats = cJSON_GetObjectItem(ref, "features");
    size_t compared = 0;
    for (const cJSON *it = feats != NULL ? feats->child : NULL; it != NULL; it = it->next) {
        int idx = kb_metafeatures_index(it->string);
        if (idx < 0) {
            fprintf(stderr, "%s: reference feature '%s' unknown to kb\n", name, it->string);
            CHECK(idx >= 0);
            continue;
        }
        if (!with_landmarks &&
            kb_metafeatures_group((size_t)idx) == KB_METAFEATURES_GROUP_LANDMARK) {
            continue;
        }
        double got = m.values[idx];
        if (cJSON_IsNull(it)) {
            if (!isnan(got)) {
                fprintf(stderr, "%s: %s = %.17g, reference: missing\n", name, it->string, got);
            }
            CHECK(isnan(got));
        } else {
            double want = it->valuedouble;
            double atol = tolerance_abs(it->string);
            if (!(fabs(got - want) <= atol + 1e-9 * fabs(want))) {
                fprintf(stderr, "%s: %s = %.17g, reference %.17g\n", name, it->string, got, want);
            }
            CHECK_NEAR(got, want, 1e-9, atol);
        }
        compared++;
    }
    CHECK(compared > 40);
    if (with_landmarks) {
        const cJSON *lr = cJSON_GetObjectItem(ref, "landmark_rows");
        if (cJSON_IsNumber(lr)) {
            CHECK(m.landmark_rows == (size_t)lr->valuedouble);
            CHECK(m.landmark_cols ==
                  (size_t)cJSON_GetObjectItem(ref, "landmark_cols")->valuedouble);
        }
    }
    kb_dataset_release(&d);
    return 1;
}

static void test_bundled_datasets_match_reference(void)
{
    const char *src = getenv("KB_SRC");
    src = src != NULL ? src : ".";
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/ref/metafeatures_ref.json", src);
    char *text = slurp(path);
    CHECK(text != NULL);
    if (text == NULL) {
        return;
    }
    cJSON *doc = cJSON_Parse(text);
    free(text);
    CHECK(doc != NULL);
    if (doc == NULL) {
        return;
    }
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "feature_set")), KB_METAFEATURES_SET);
    const cJSON *params = cJSON_GetObjectItem(doc, "params");
    const cJSON *sets = cJSON_GetObjectItem(doc, "datasets");
    /* under sanitizers the SVMs are slow: landmarkers on the small datasets only */
    int sanitized = getenv("KB_SANITIZED") != NULL;
    size_t n = 0;
    for (const cJSON *ds = sets != NULL ? sets->child : NULL; ds != NULL; ds = ds->next) {
        const cJSON *nr = cJSON_GetObjectItem(cJSON_GetObjectItem(ds, "features"), "n_rows");
        int small = cJSON_IsNumber(nr) && nr->valuedouble <= 400;
        n += (size_t)compare_dataset(src, ds->string, ds, params, !sanitized || small);
    }
    fprintf(stderr, "compared %zu bundled datasets with the reference\n", n);
    cJSON_Delete(doc);
}

int main(void)
{
    test_names_are_unique_snake_case();
    test_parse_groups();
    test_balanced_binary_target_has_one_bit();
    test_pca_of_known_matrix();
    test_one_class_gives_missing_not_zero();
    test_constant_columns_and_one_row();
    test_missing_value_shares();
    test_image_group();
    test_landmarks_separable_and_deterministic();
    test_regression_landmarks();
    test_wide_data_skips_pca_with_warning();
    test_rejects_bad_class_index();
    test_out_of_memory_paths();
    test_bundled_datasets_match_reference();
    return check_exit();
}
