/*
 * engine/svm: folds, configuration checks, preprocessing, and agreement of kb's
 * cross-validation with libsvm's own svm-train -v 5 (tests/ref/make_svm_ref.sh).
 */
#include "engine/svm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/core/alloc.h"

/* ---- datasets built by hand (the tests do not depend on the readers) ---- */

static char *dup_name(const char *prefix, size_t i)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s%zu", prefix, i);
    return kb_strdup(buf);
}

/* n x p numeric dataset, zero-filled; classification when n_classes > 0 */
static void ds_init(kb_dataset *d, size_t n, size_t p, size_t n_classes)
{
    memset(d, 0, sizeof *d);
    d->n_rows = n;
    d->n_cols = p;
    d->cols = kb_calloc(p > 0 ? p : 1, sizeof *d->cols);
    d->x = kb_calloc(n * p > 0 ? n * p : 1, sizeof *d->x);
    d->y = kb_calloc(n > 0 ? n : 1, sizeof *d->y);
    for (size_t j = 0; j < p; j++) {
        d->cols[j].name = dup_name("f", j);
        d->cols[j].type = KB_COLUMN_NUMERIC;
    }
    d->task = n_classes > 0 ? KB_DATASET_TASK_CLASSIFICATION : KB_DATASET_TASK_REGRESSION;
    d->n_classes = n_classes;
    d->class_names = n_classes > 0 ? kb_calloc(n_classes, sizeof *d->class_names) : NULL;
    for (size_t c = 0; c < n_classes; c++) {
        d->class_names[c] = dup_name("c", c);
    }
}

/* make column j categorical with `n_levels` levels named l0, l1, ... */
static void ds_make_categorical(kb_dataset *d, size_t j, size_t n_levels)
{
    d->cols[j].type = KB_COLUMN_CATEGORICAL;
    d->cols[j].n_levels = n_levels;
    d->cols[j].levels = kb_calloc(n_levels, sizeof *d->cols[j].levels);
    for (size_t l = 0; l < n_levels; l++) {
        d->cols[j].levels[l] = dup_name("l", l);
    }
}

static void ds_free(kb_dataset *d)
{
    for (size_t j = 0; j < d->n_cols; j++) {
        kb_free(d->cols[j].name);
        for (size_t l = 0; l < d->cols[j].n_levels; l++) {
            kb_free(d->cols[j].levels[l]);
        }
        kb_free(d->cols[j].levels);
    }
    for (size_t c = 0; c < d->n_classes; c++) {
        kb_free(d->class_names[c]);
    }
    kb_free(d->class_names);
    kb_free(d->cols);
    kb_free(d->x);
    kb_free(d->y);
    memset(d, 0, sizeof *d);
}

/* Two Gaussian blobs in 2-D (class c centred at (2c, 2c)), with class sizes given. */
static void ds_blobs(kb_dataset *d, const size_t *sizes, size_t n_classes, uint64_t seed)
{
    size_t n = 0;
    for (size_t c = 0; c < n_classes; c++) {
        n += sizes[c];
    }
    ds_init(d, n, 2, n_classes);
    kb_rng rng;
    kb_rng_seed(&rng, seed);
    size_t i = 0;
    for (size_t c = 0; c < n_classes; c++) {
        for (size_t t = 0; t < sizes[c]; t++, i++) {
            d->y[i] = (double)c;
            d->x[i] = 2.0 * (double)c + kb_rng_normal(&rng);
            d->x[i + n] = 2.0 * (double)c + kb_rng_normal(&rng);
        }
    }
}

/* A minimal svmlight reader for the checked-in heart_scale (labels become sorted classes). */
static int ds_read_svmlight(kb_dataset *d, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    char line[4096];
    size_t n = 0, p = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char *s = line;
        strtod(s, &s);
        for (;;) {
            char *end;
            long idx = strtol(s, &end, 10);
            if (end == s || *end != ':') {
                break;
            }
            strtod(end + 1, &s);
            p = (size_t)idx > p ? (size_t)idx : p;
        }
        n++;
    }
    ds_init(d, n, p, 2);
    rewind(f);
    kb_free(d->class_names[0]);
    kb_free(d->class_names[1]);
    d->class_names[0] = kb_strdup("-1");
    d->class_names[1] = kb_strdup("1");
    for (size_t i = 0; i < n && fgets(line, sizeof line, f) != NULL; i++) {
        char *s = line;
        d->y[i] = strtod(s, &s) > 0 ? 1.0 : 0.0;
        for (;;) {
            char *end;
            long idx = strtol(s, &end, 10);
            if (end == s || *end != ':') {
                break;
            }
            d->x[i + (size_t)(idx - 1) * n] = strtod(end + 1, &s);
        }
    }
    fclose(f);
    return 0;
}

/* ---- log capture ---- */

typedef struct log_capture {
    int n_warnings;
    char last[256];
} log_capture;

static void capture(kb_log_level level, const char *msg, void *payload)
{
    log_capture *c = payload;
    if (level == KB_LOG_LEVEL_WARNING) {
        c->n_warnings++;
        snprintf(c->last, sizeof c->last, "%s", msg);
    }
}

/* ---- folds ---- */

static void test_svm_folds_are_stratified(void)
{
    size_t sizes[3] = {50, 31, 7};
    kb_dataset d;
    ds_blobs(&d, sizes, 3, 1);
    size_t *fold = kb_malloc_array(d.n_rows, sizeof *fold);
    size_t k = 0;
    kb_rng rng;
    kb_rng_seed(&rng, 42);
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_svm_folds(fold, &k, d.y, d.n_rows, 3, NULL, 5, &rng, NULL, &err), err);
    CHECK(k == 5);
    size_t fold_size[5] = {0};
    for (size_t f = 0; f < 5; f++) {
        for (size_t c = 0; c < 3; c++) {
            size_t count = 0;
            for (size_t i = 0; i < d.n_rows; i++) {
                count += fold[i] == f && d.y[i] == (double)c;
            }
            fold_size[f] += count;
            /* within 1 of proportional: floor or ceil of n_c / k */
            CHECK(fabs((double)count - (double)sizes[c] / 5.0) < 1.0);
        }
    }
    for (size_t f = 1; f < 5; f++) {
        CHECK(fold_size[f] + 1 >= fold_size[0] && fold_size[f] <= fold_size[0] + 1);
    }
    kb_free(fold);
    ds_free(&d);
}

static void test_svm_folds_are_deterministic_for_a_seed(void)
{
    size_t sizes[2] = {40, 23};
    kb_dataset d;
    ds_blobs(&d, sizes, 2, 2);
    size_t *a = kb_malloc_array(d.n_rows, sizeof *a);
    size_t *b = kb_malloc_array(d.n_rows, sizeof *b);
    size_t ka, kb_;
    kb_rng r1, r2;
    kb_error err = KB_ERROR_INIT;
    kb_rng_seed(&r1, 7);
    kb_rng_seed(&r2, 7);
    CHECK_OK(kb_svm_folds(a, &ka, d.y, d.n_rows, 2, NULL, 4, &r1, NULL, &err), err);
    CHECK_OK(kb_svm_folds(b, &kb_, d.y, d.n_rows, 2, NULL, 4, &r2, NULL, &err), err);
    CHECK(ka == kb_ && memcmp(a, b, d.n_rows * sizeof *a) == 0);
    kb_rng_seed(&r2, 8);
    CHECK_OK(kb_svm_folds(b, &kb_, d.y, d.n_rows, 2, NULL, 4, &r2, NULL, &err), err);
    CHECK(memcmp(a, b, d.n_rows * sizeof *a) != 0);
    /* regression: plain shuffled folds, sizes within one */
    CHECK_OK(kb_svm_folds(a, &ka, d.y, d.n_rows, 0, NULL, 4, &r1, NULL, &err), err);
    size_t counts[4] = {0};
    for (size_t i = 0; i < d.n_rows; i++) {
        counts[a[i]]++;
    }
    CHECK(ka == 4 && counts[0] == 16 && counts[1] == 16 && counts[2] == 16 && counts[3] == 15);
    kb_free(a);
    kb_free(b);
    ds_free(&d);
}

static void test_svm_folds_shrink_for_small_classes_with_a_warning(void)
{
    size_t sizes[2] = {30, 3};
    kb_dataset d;
    ds_blobs(&d, sizes, 2, 3);
    size_t *fold = kb_malloc_array(d.n_rows, sizeof *fold);
    size_t k = 0;
    kb_rng rng;
    kb_rng_seed(&rng, 1);
    log_capture cap = {0, ""};
    kb_log log = {capture, &cap};
    kb_error err = KB_ERROR_INIT;
    const char *names[2] = {"big", "tiny"};
    CHECK_OK(kb_svm_folds(fold, &k, d.y, d.n_rows, 2, names, 5, &rng, &log, &err), err);
    CHECK(k == 3);
    CHECK(cap.n_warnings == 1);
    CHECK(strstr(cap.last, "'tiny'") != NULL && strstr(cap.last, "using 3 folds") != NULL);

    /* a class of one member: 2 folds, a second warning, and cross-validation still runs */
    d.y[d.n_rows - 1] = 0.0;
    d.y[d.n_rows - 2] = 0.0;
    cap.n_warnings = 0;
    kb_svm_config cfg = KB_SVM_CONFIG_INIT;
    kb_svm_cv_opts opts = KB_SVM_CV_OPTS_INIT;
    opts.log = log;
    kb_svm_result r;
    CHECK_OK(kb_svm_cross_validate(&r, &d, &cfg, &opts, &err), err);
    CHECK(r.n_folds == 2);
    CHECK(cap.n_warnings == 2);
    CHECK(r.cv.n == d.n_rows && r.cv.accuracy > 0.8);
    kb_free(fold);
    ds_free(&d);
}

/* ---- errors ---- */

static void test_svm_single_class_is_an_error(void)
{
    size_t sizes[2] = {20, 0};
    kb_dataset d;
    ds_blobs(&d, sizes, 2, 4);
    kb_svm_config cfg = KB_SVM_CONFIG_INIT;
    kb_svm_result r;
    kb_error err = KB_ERROR_INIT;
    CHECK_CODE(kb_svm_cross_validate(&r, &d, &cfg, NULL, &err), KB_EFORMAT);
    CHECK(strstr(err.msg, "single class 'c0'") != NULL);
    ds_free(&d);
}

static kb_param param_num(const char *name, double v)
{
    kb_param p = {(char *)name, {KB_VALUE_TYPE_FLOAT, v, 0, NULL, 0}};
    return p;
}

static kb_param param_str(const char *name, const char *s)
{
    kb_param p = {(char *)name, {KB_VALUE_TYPE_STR, 0, 0, (char *)s, 0}};
    return p;
}

/* The error of kb_svm_config_from_params for one param names it. */
static void check_rejected(kb_param p, const char *expect)
{
    kb_svm_config cfg;
    kb_error err = KB_ERROR_INIT;
    check_count++;
    int rc = kb_svm_config_from_params(&cfg, &p, 1, &err);
    if (rc != KB_EINVAL || strstr(err.msg, expect) == NULL) {
        check_failures++;
        fprintf(stderr, "param '%s' not rejected as expected: rc %d, '%s'\n", p.name, rc,
                err.msg);
    }
    if (rc == KB_OK) {
        kb_svm_config_release(&cfg);
    }
}

static void test_svm_invalid_params_are_rejected_by_name(void)
{
    check_rejected(param_num("C", -1), "param 'C': must be > 0");
    check_rejected(param_num("C", 0), "param 'C'");
    check_rejected(param_str("C", "big"), "param 'C': expected a number");
    check_rejected(param_num("C", INFINITY), "param 'C': expected a finite number");
    check_rejected(param_num("gamma", 0), "param 'gamma'");
    check_rejected(param_str("gamma", "scale"), "param 'gamma'");
    check_rejected(param_num("degree", 2.5), "param 'degree': expected an integer");
    check_rejected(param_num("degree", 0), "param 'degree'");
    check_rejected(param_num("nu", 1.5), "param 'nu': must be in (0, 1]");
    check_rejected(param_num("epsilon", -0.1), "param 'epsilon'");
    check_rejected(param_num("cache_mb", 0), "param 'cache_mb'");
    check_rejected(param_num("tolerance", 0), "param 'tolerance'");
    check_rejected(param_str("kernel", "gaussian"), "param 'kernel': expected one of linear");
    check_rejected(param_str("svm_type", "one_class"), "param 'svm_type'");
    check_rejected(param_str("scale", "log"), "param 'scale'");
    check_rejected(param_num("shrinking", 2), "param 'shrinking': expected true or false");
    check_rejected(param_num("gama", 1), "param 'gama': unknown svm parameter");
    check_rejected(param_num("class_weight.c1", -2), "param 'class_weight.c1'");

    /* accepted forms */
    kb_param ok[6] = {param_str("kernel", "polynomial"), param_num("degree", 2),
                      param_str("gamma", "auto"), param_num("C", 3),
                      param_num("class_weight.c1", 2), param_str("class_weight", "balanced")};
    ok[1].value.type = KB_VALUE_TYPE_INT;
    ok[1].value.i = 2;
    kb_svm_config cfg;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_svm_config_from_params(&cfg, ok, 6, &err), err);
    CHECK(cfg.kernel == KB_SVM_KERNEL_POLY && cfg.degree == 2 && cfg.gamma == 0.0);
    CHECK(cfg.c == 3 && cfg.n_class_weights == 1 && cfg.balanced == 1);

    /* errors that need the data: the task, an unknown class, an infeasible nu */
    size_t sizes[2] = {40, 4};
    kb_dataset d;
    ds_blobs(&d, sizes, 2, 5);
    kb_svm_result r;
    CHECK_OK(kb_svm_cross_validate(&r, &d, &cfg, NULL, &err), err);
    kb_svm_config_release(&cfg);

    kb_param bad_class = param_num("class_weight.nosuch", 2);
    CHECK_OK(kb_svm_config_from_params(&cfg, &bad_class, 1, &err), err);
    CHECK_CODE(kb_svm_cross_validate(&r, &d, &cfg, NULL, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "param 'class_weight.nosuch'") != NULL);
    kb_svm_config_release(&cfg);

    kb_param svr = param_str("svm_type", "epsilon_svr");
    CHECK_OK(kb_svm_config_from_params(&cfg, &svr, 1, &err), err);
    CHECK_CODE(kb_svm_cross_validate(&r, &d, &cfg, NULL, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "param 'svm_type'") != NULL);

    kb_param nu[2] = {param_str("svm_type", "nu_svc"), param_num("nu", 0.9)};
    CHECK_OK(kb_svm_config_from_params(&cfg, nu, 2, &err), err);
    CHECK_CODE(kb_svm_cross_validate(&r, &d, &cfg, NULL, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "param 'nu': specified nu is infeasible") != NULL);
    ds_free(&d);
}

/* ---- cross-validation ---- */

static void test_svm_cv_is_deterministic_and_probability_keeps_accuracy(void)
{
    size_t sizes[3] = {40, 35, 25};
    kb_dataset d;
    ds_blobs(&d, sizes, 3, 6);
    kb_svm_config cfg = KB_SVM_CONFIG_INIT;
    kb_svm_cv_opts opts = KB_SVM_CV_OPTS_INIT;
    opts.seed = 11;
    opts.test_fraction = 0.2;
    kb_svm_result a, b, c;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_svm_cross_validate(&a, &d, &cfg, &opts, &err), err);
    cfg.probability = 1;
    CHECK_OK(kb_svm_cross_validate(&b, &d, &cfg, &opts, &err), err);
    CHECK_OK(kb_svm_cross_validate(&c, &d, &cfg, &opts, &err), err);
    CHECK(a.cv.accuracy == b.cv.accuracy);           /* same models, same votes */
    CHECK(isnan(a.cv.log_loss));
    CHECK(isfinite(b.cv.log_loss) && b.cv.log_loss > 0 && b.cv.log_loss < log(3.0));
    CHECK(b.cv.log_loss == c.cv.log_loss);           /* libsvm's rand() is seeded */
    CHECK(b.test.log_loss == c.test.log_loss);
    CHECK(a.test.n == 20 && a.n_cv == 80);           /* stratified: 8 + 7 + 5 */
    CHECK(a.cv.accuracy > 0.75 && a.test.accuracy > 0.75);
    CHECK(a.gamma == 0.5 && a.n_features == 2);
    opts.seed = 12;
    CHECK_OK(kb_svm_cross_validate(&c, &d, &cfg, &opts, &err), err);
    CHECK(c.cv.log_loss != b.cv.log_loss);
    ds_free(&d);
}

static int stop_after_first(const kb_svm_fold *f, void *payload)
{
    (void)f;
    (*(int *)payload)++;
    return KB_ECANCELED;
}

static void test_svm_fold_callback_can_stop(void)
{
    size_t sizes[2] = {20, 20};
    kb_dataset d;
    ds_blobs(&d, sizes, 2, 9);
    kb_svm_config cfg = KB_SVM_CONFIG_INIT;
    kb_svm_cv_opts opts = KB_SVM_CV_OPTS_INIT;
    int calls = 0;
    opts.on_fold = stop_after_first;
    opts.payload = &calls;
    kb_svm_result r;
    kb_error err = KB_ERROR_INIT;
    CHECK_CODE(kb_svm_cross_validate(&r, &d, &cfg, &opts, &err), KB_ECANCELED);
    CHECK(calls == 1);
    ds_free(&d);
}

/* Missing values and a categorical column that decides the class: imputation + one-hot. */
static void test_svm_preprocessing_one_hot_and_imputation(void)
{
    size_t n = 60;
    kb_dataset d;
    ds_init(&d, n, 2, 3);
    ds_make_categorical(&d, 1, 4);
    for (size_t i = 0; i < n; i++) {
        size_t c = i % 3;
        d.y[i] = (double)c;
        d.x[i] = i % 5 == 0 ? NAN : 1000.0 + (double)(i % 7); /* noise, with gaps */
        d.x[i + n] = i % 11 == 0 ? NAN : (double)c;            /* level = class */
    }
    CHECK(kb_svm_n_features(&d) == 5);
    kb_svm_config cfg = KB_SVM_CONFIG_INIT;
    cfg.kernel = KB_SVM_KERNEL_LINEAR;
    kb_svm_result r;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_svm_cross_validate(&r, &d, &cfg, NULL, &err), err);
    CHECK(r.n_features == 5);
    /* every row with its level present is classified right; imputed rows get the mode */
    CHECK(r.cv.accuracy >= 50.0 / 60.0);
    cfg.scale = KB_SVM_SCALE_MINMAX;
    CHECK_OK(kb_svm_cross_validate(&r, &d, &cfg, NULL, &err), err);
    CHECK(r.cv.accuracy >= 50.0 / 60.0);
    /* infinite values are rejected, naming the column */
    d.x[3] = INFINITY;
    CHECK_CODE(kb_svm_cross_validate(&r, &d, &cfg, NULL, &err), KB_EFORMAT);
    CHECK(strstr(err.msg, "column 'f0'") != NULL);
    ds_free(&d);
}

/* y = sin(x0) + x1^2 / 4 + noise: epsilon-SVR with an RBF kernel must explain most of it. */
static void test_svm_regression_fits(void)
{
    size_t n = 300;
    kb_dataset d;
    ds_init(&d, n, 3, 0);
    kb_rng rng;
    kb_rng_seed(&rng, 21);
    for (size_t i = 0; i < n; i++) {
        double x0 = 6.0 * kb_rng_uniform(&rng) - 3.0, x1 = 4.0 * kb_rng_uniform(&rng) - 2.0;
        d.x[i] = 100.0 * x0; /* scaled features: standardisation must undo this */
        d.x[i + n] = x1;
        d.x[i + 2 * n] = kb_rng_normal(&rng); /* irrelevant */
        d.y[i] = 50.0 + 10.0 * (sin(x0) + x1 * x1 / 4.0) + kb_rng_normal(&rng);
    }
    kb_svm_config cfg = KB_SVM_CONFIG_INIT;
    cfg.c = 10.0;
    kb_svm_cv_opts opts = KB_SVM_CV_OPTS_INIT;
    opts.test_fraction = 0.25;
    kb_svm_result r;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_svm_cross_validate(&r, &d, &cfg, &opts, &err), err);
    CHECK(r.type == KB_SVM_TYPE_EPSILON_SVR);
    CHECK(r.cv.r2 > 0.8 && r.test.r2 > 0.8);
    CHECK(r.cv.rmse > 0.5 && r.cv.rmse < 4.0);  /* in target units; noise sd is 1 */
    CHECK(isnan(r.cv.accuracy));
    ds_free(&d);
}

/* The bundled concrete-strength data (1030 rows, 8 features) through the CSV reader. */
static void test_svm_regression_on_bundled_concrete(void)
{
    char path[4096];
    const char *src = getenv("KB_SRC");
    snprintf(path, sizeof path, "%s/datasets/concrete.csv.gz", src ? src : ".");
    kb_dataset d;
    memset(&d, 0, sizeof d);
    kb_dataset_opts dopts = KB_DATASET_OPTS_INIT;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_dataset_read(&d, path, &dopts, &err), err);
    if (err.code != KB_OK) {
        return;
    }
    CHECK(d.task == KB_DATASET_TASK_REGRESSION && d.n_rows == 1030);
    kb_svm_config cfg = KB_SVM_CONFIG_INIT;
    cfg.c = 10.0;
    kb_svm_cv_opts opts = KB_SVM_CV_OPTS_INIT;
    opts.n_folds = 3;
    kb_svm_result r;
    CHECK_OK(kb_svm_cross_validate(&r, &d, &cfg, &opts, &err), err);
    fprintf(stderr, "concrete: 3-fold CV r2 %.4f, rmse %.3f\n", r.cv.r2, r.cv.rmse);
    CHECK(r.cv.r2 > 0.7);
    kb_dataset_release(&d);
}

/* ---- agreement with svm-train -v 5 on heart_scale ---- */

static void test_svm_cv_agrees_with_svm_train_on_heart_scale(void)
{
    kb_dataset d;
    if (ds_read_svmlight(&d, check_data_path("heart_scale.svm")) != 0) {
        CHECK(!"tests/data/heart_scale.svm readable");
        return;
    }
    CHECK(d.n_rows == 270 && d.n_cols == 13);
    char ref_path[4096];
    const char *src = getenv("KB_SRC");
    snprintf(ref_path, sizeof ref_path, "%s/tests/ref/svm_heart_ref.txt", src ? src : ".");
    FILE *f = fopen(ref_path, "r");
    CHECK(f != NULL);
    char line[512];
    int n_configs = 0;
    size_t n_seeds = getenv("KB_SANITIZED") ? 5 : 20;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        char kernel[32];
        double c, gamma, ref_mean, ref_sd, lo, hi;
        int runs;
        if (line[0] == '#' || sscanf(line, "%31s %lf %lf %d %lf %lf %lf %lf", kernel, &c,
                                     &gamma, &runs, &ref_mean, &ref_sd, &lo, &hi) != 8) {
            continue;
        }
        kb_svm_config cfg = KB_SVM_CONFIG_INIT;
        cfg.kernel = strcmp(kernel, "linear") == 0 ? KB_SVM_KERNEL_LINEAR : KB_SVM_KERNEL_RBF;
        cfg.c = c;
        cfg.gamma = gamma;
        cfg.scale = KB_SVM_SCALE_NONE; /* heart_scale is already scaled, as svm-train saw it */
        double sum = 0, ss = 0;
        for (size_t s = 0; s < n_seeds; s++) {
            kb_svm_cv_opts opts = KB_SVM_CV_OPTS_INIT;
            opts.seed = 1000 + s;
            kb_svm_result r;
            kb_error err = KB_ERROR_INIT;
            CHECK_OK(kb_svm_cross_validate(&r, &d, &cfg, &opts, &err), err);
            sum += r.cv.accuracy;
            ss += r.cv.accuracy * r.cv.accuracy;
        }
        double mean = sum / (double)n_seeds;
        double sd = sqrt(fmax(ss - (double)n_seeds * mean * mean, 0) / (double)(n_seeds - 1));
        /*
         * Both are means over random stratified splits of the same procedure: they must agree
         * within 3 standard errors of the difference, plus 0.005 for svm-scale's 6-digit
         * rounding and the finite reference sample.
         */
        double se = sqrt(ref_sd * ref_sd / runs + sd * sd / (double)n_seeds);
        double margin = 3.0 * se + 0.005;
        fprintf(stderr, "heart_scale %s C=%g gamma=%g: kb %.4f (sd %.4f), svm-train %.4f "
                        "(sd %.4f), margin %.4f\n",
                kernel, c, gamma, mean, sd, ref_mean, ref_sd, margin);
        CHECK(fabs(mean - ref_mean) <= margin);
        n_configs++;
    }
    if (f != NULL) {
        fclose(f);
    }
    CHECK(n_configs >= 6);
    ds_free(&d);
}

/* ---- dense prediction ---- */

/* kb_svm_predict against svm_predict on models trained here, for every type and kernel. */
static void test_svm_dense_predict_matches_libsvm(void)
{
    size_t n = 90, p = 5;
    kb_rng rng;
    kb_rng_seed(&rng, 77);
    struct svm_node *nodes = kb_malloc_array(n * (p + 1), sizeof *nodes);
    struct svm_node **x = kb_malloc_array(n, sizeof *x);
    double *y_cls = kb_malloc_array(n, sizeof *y_cls);
    double *y_reg = kb_malloc_array(n, sizeof *y_reg);
    double *out = kb_malloc_array(n, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        x[i] = nodes + i * (p + 1);
        size_t k = 0;
        double s = 0;
        for (size_t j = 0; j < p; j++) {
            double v = (j + i) % 4 == 0 ? 0.0 : kb_rng_normal(&rng); /* some sparsity */
            s += v * (double)(j + 1);
            if (v != 0.0) {
                x[i][k].index = (int)j + 1;
                x[i][k++].value = v;
            }
        }
        x[i][k].index = -1;
        y_cls[i] = (double)(i % 3) * 2.0 - 1.0;   /* labels -1, 1, 3 */
        y_reg[i] = s + 0.1 * kb_rng_normal(&rng);
    }
    static const int types[3] = {C_SVC, NU_SVC, EPSILON_SVR};
    static const int kernels[4] = {LINEAR, POLY, RBF, SIGMOID};
    for (int t = 0; t < 3; t++) {
        for (int k = 0; k < 4; k++) {
            struct svm_parameter param = {types[t], kernels[k], 3, 0.2, 0.5, 100, 1e-3, 1.0, 0,
                                          NULL, NULL, 0.5, 0.1, 1, 0};
            struct svm_problem prob = {(int)n, types[t] == EPSILON_SVR ? y_reg : y_cls, x};
            CHECK(svm_check_parameter(&prob, &param) == NULL);
            struct svm_model *m = svm_train(&prob, &param);
            kb_error err = KB_ERROR_INIT;
            CHECK_OK(kb_svm_predict(out, m, (const struct svm_node *const *)x, n, p, &err), err);
            size_t same = 0;
            double max_diff = 0;
            for (size_t i = 0; i < n; i++) {
                double ref = svm_predict(m, x[i]);
                same += out[i] == ref;
                max_diff = fmax(max_diff, fabs(out[i] - ref) / (1.0 + fabs(ref)));
            }
            if (types[t] == EPSILON_SVR) {
                CHECK(max_diff < 1e-9);
            } else {
                CHECK(same == n);
            }
            /* a feature index beyond n_features is refused */
            CHECK_CODE(kb_svm_predict(out, m, (const struct svm_node *const *)x, n, p - 1, &err),
                       KB_EINVAL);
            svm_free_and_destroy_model(&m);
        }
    }
    kb_free(out);
    kb_free(y_reg);
    kb_free(y_cls);
    kb_free(x);
    kb_free(nodes);
}

/* ---- allocation failures ---- */

static void test_svm_cv_survives_allocation_failures(void)
{
    size_t sizes[2] = {15, 12};
    kb_dataset d;
    ds_blobs(&d, sizes, 2, 31);
    kb_svm_config cfg = KB_SVM_CONFIG_INIT;
    kb_svm_cv_opts opts = KB_SVM_CV_OPTS_INIT;
    opts.test_fraction = 0.2;
    int failures = 0;
    for (long n = 0; n < 200; n++) {
        kb_svm_result r;
        kb_error err = KB_ERROR_INIT;
        kb_alloc_fail_after(n);
        int rc = kb_svm_cross_validate(&r, &d, &cfg, &opts, &err);
        kb_alloc_fail_after(-1);
        if (rc == KB_OK) {
            break;
        }
        CHECK(rc == KB_ENOMEM);
        failures++;
    }
    CHECK(failures > 5);
    ds_free(&d);
}

int main(void)
{
    kb_svm_quiet();
    test_svm_folds_are_stratified();
    test_svm_folds_are_deterministic_for_a_seed();
    test_svm_folds_shrink_for_small_classes_with_a_warning();
    test_svm_single_class_is_an_error();
    test_svm_invalid_params_are_rejected_by_name();
    test_svm_cv_is_deterministic_and_probability_keeps_accuracy();
    test_svm_fold_callback_can_stop();
    test_svm_preprocessing_one_hot_and_imputation();
    test_svm_regression_fits();
    test_svm_regression_on_bundled_concrete();
    test_svm_cv_agrees_with_svm_train_on_heart_scale();
    test_svm_dense_predict_matches_libsvm();
    test_svm_cv_survives_allocation_failures();
    return check_exit();
}
