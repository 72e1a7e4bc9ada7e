/*
 * kb_svm: the built-in libsvm workload. Trains C-SVC / nu-SVC (classification) and epsilon-SVR
 * (regression) models from libsvm (Chang & Lin, "LIBSVM: a library for support vector
 * machines", ACM TIST 2(3), 2011) on a kb_dataset and measures them by k-fold
 * cross-validation, stratified by class for classification, plus an optional held-out test
 * split. Everything random (the test split, the fold assignment, libsvm's internal split for
 * probability estimates) derives from one seed: the same seed gives the same result.
 *
 * Preprocessing (fitted on the training rows of each fold only, then applied to its test rows;
 * docs/FORMAT.md, "SVM workload"):
 *   - numeric columns: missing values (NaN) are imputed with the training mean, then the column
 *     is scaled: `standard` (default) to zero mean and unit population variance (a constant
 *     column becomes 0), `minmax` to [-1, 1] as libsvm's svm-scale does, `none` left as is;
 *   - categorical columns: missing values are imputed with the training mode (ties: the first
 *     level), then one-hot encoded over all the column's levels (one 0/1 feature per level);
 *   - regression target: with `scale_target` (default on) standardised with the training
 *     mean and standard deviation, so that C and epsilon mean the same on every dataset;
 *     predictions and metrics are in the target's own units.
 * The default gamma is 1 / (number of features after preprocessing), as in libsvm.
 *
 * Metrics: accuracy (and log-loss when probability estimates are on) for classification,
 * RMSE and R^2 for regression, pooled over the out-of-fold predictions of all folds (as
 * svm-train -v pools them). Classes with fewer members than folds reduce the fold count (a
 * warning through the log); a dataset with a single class is an error.
 *
 * libsvm prints progress to stdout through a global hook; kb_svm_quiet() silences it. The
 * trainers here call it themselves (it is idempotent and thread-safe), so libsvm never writes
 * into a caller's output (stdout). NEEDSWORK: libsvm 3.24 writes one message straight to
 * stderr, bypassing the hook and any API: "WARNING: reaching max number of iterations" when
 * its solver stops at max(10^7, 100 l) iterations (a tolerance far below rounding, e.g. 1e-17,
 * provokes it); such a model is used as is and kb cannot report it.
 *
 * With probability estimates on, libsvm draws its internal split from the C library's rand();
 * kb seeds it with srand() from the run's seed before each training, so such runs must not
 * overlap with other users of rand() in other threads.
 */
#ifndef KB_ENGINE_SVM_H
#define KB_ENGINE_SVM_H

#include <libsvm/svm.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/core/error.h"
#include "engine/core/log.h"
#include "engine/core/rng.h"
#include "engine/core/space.h"
#include "engine/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kb_svm_type {
    KB_SVM_TYPE_AUTO = 0,        /* C_SVC for classification, EPSILON_SVR for regression */
    KB_SVM_TYPE_C_SVC = 1,
    KB_SVM_TYPE_NU_SVC = 2,
    KB_SVM_TYPE_EPSILON_SVR = 3
} kb_svm_type;

typedef enum kb_svm_kernel {
    KB_SVM_KERNEL_LINEAR = 0,    /* u'v */
    KB_SVM_KERNEL_POLY = 1,      /* (gamma u'v + coef0)^degree */
    KB_SVM_KERNEL_RBF = 2,       /* exp(-gamma |u - v|^2) */
    KB_SVM_KERNEL_SIGMOID = 3    /* tanh(gamma u'v + coef0) */
} kb_svm_kernel;

typedef enum kb_svm_scale {
    KB_SVM_SCALE_STANDARD = 0,   /* zero mean, unit variance */
    KB_SVM_SCALE_MINMAX = 1,     /* [-1, 1] (svm-scale's default) */
    KB_SVM_SCALE_NONE = 2
} kb_svm_scale;

/** A per-class weight: C of class `class_name` is multiplied by `weight`. */
typedef struct kb_svm_class_weight {
    char *class_name;            /* owned */
    double weight;               /* > 0 */
} kb_svm_class_weight;

/**
 * One SVM configuration. Plain data; `class_weights` is owned (kb_svm_config_release).
 * Parameters that the chosen type or kernel does not use are ignored.
 */
typedef struct kb_svm_config {
    int version;
    kb_svm_type type;
    kb_svm_kernel kernel;
    double c;                    /* C_SVC, EPSILON_SVR: > 0 */
    double gamma;                /* POLY/RBF/SIGMOID: > 0; 0 = 1 / n_features */
    int degree;                  /* POLY: >= 1 */
    double coef0;                /* POLY/SIGMOID */
    double nu;                   /* NU_SVC: in (0, 1] */
    double epsilon;              /* EPSILON_SVR: >= 0 (target std units with scale_target) */
    int shrinking;               /* 0/1: libsvm's shrinking heuristics */
    int probability;             /* 0/1: probability estimates (classification: log-loss) */
    double cache_mb;             /* kernel cache, MB: > 0 */
    double tolerance;            /* stopping tolerance (libsvm's eps): > 0 */
    kb_svm_scale scale;          /* numeric feature scaling */
    int scale_target;            /* 0/1: standardise a regression target */
    int balanced;                /* 0/1: class weights n / (n_classes * n_c) per training fold */
    kb_svm_class_weight *class_weights; /* n_class_weights, owned */
    size_t n_class_weights;
} kb_svm_config;

#define KB_SVM_CONFIG_VERSION 1
/* libsvm's defaults (svm-train), with standardised features and target */
#define KB_SVM_CONFIG_INIT                                                                   \
    {KB_SVM_CONFIG_VERSION, KB_SVM_TYPE_AUTO, KB_SVM_KERNEL_RBF, 1.0, 0.0, 3, 0.0, 0.5, 0.1, \
     1, 0, 100.0, 1e-3, KB_SVM_SCALE_STANDARD, 1, 0, NULL, 0}

/** Free the class weights; the rest of the struct is left as is. NULL-safe. */
void kb_svm_config_release(kb_svm_config *cfg);

/**
 * Build a configuration from named values (a search's trial, `--config`, `--set`), starting
 * from KB_SVM_CONFIG_INIT. Names and accepted values:
 *   svm_type     "c_svc" | "nu_svc" | "epsilon_svr" | "auto"
 *   kernel       "linear" | "poly" (or "polynomial") | "rbf" | "sigmoid"
 *   C            number > 0               gamma      number > 0, or "auto" (1/n_features)
 *   degree       integer >= 1             coef0      number
 *   nu           number in (0, 1]         epsilon    number >= 0
 *   shrinking    bool (or 0/1)            probability  bool (or 0/1)
 *   cache_mb     number > 0               tolerance  number > 0
 *   scale        "standard" | "minmax" | "none"      scale_target  bool (or 0/1)
 *   class_weight "balanced" | "none"      class_weight.<class>  number > 0
 * Numbers may be FLOAT or INT values; an integer parameter given as FLOAT must be integral.
 * @param[out] out    the configuration; caller releases it with kb_svm_config_release().
 * @return KB_OK; KB_EINVAL with "param 'name': reason" for an unknown name, a wrong type or
 *         a value out of range (then `out` holds nothing to release); KB_ENOMEM.
 */
int kb_svm_config_from_params(kb_svm_config *out, const kb_param *params, size_t n,
                              kb_error *err);

/**
 * Map a configuration to libsvm's parameters for a dataset with `n_features` features after
 * preprocessing, then check them with svm_check_parameter() against `prob` when it is not NULL
 * (libsvm's nu-feasibility check needs the training problem).
 * Class labels given to libsvm are the class indices (d->y). `class_counts` (d->n_classes
 * entries: the training rows per class) is needed when cfg->balanced is set, else may be NULL.
 * @param[out] out  libsvm parameters; release with kb_svm_param_release() (not
 *                  svm_destroy_param: the weight arrays come from kb_malloc).
 * @return KB_OK; KB_EINVAL with "param 'name': reason" when the configuration does not fit the
 *         task (e.g. svm_type 'epsilon_svr' on a classification task), names an unknown class,
 *         or libsvm rejects it; KB_ENOMEM.
 */
int kb_svm_config_to_param(struct svm_parameter *out, const kb_svm_config *cfg,
                           const kb_dataset *d, size_t n_features, const size_t *class_counts,
                           const struct svm_problem *prob, kb_error *err);

/** Free the weight arrays of a parameter set filled by kb_svm_config_to_param. NULL-safe. */
void kb_svm_param_release(struct svm_parameter *param);

/** The number of features after preprocessing: numeric columns + levels of categoricals. */
size_t kb_svm_n_features(const kb_dataset *d);

/**
 * Silence libsvm's printing (svm_set_print_string_function with a function that drops the
 * text). Idempotent and thread-safe; call it once at program start. The trainers below call
 * it too, so that libsvm never writes to stdout.
 */
void kb_svm_quiet(void);

/**
 * Assign each of `n` rows to a fold. Classification (`n_classes` > 0, y[i] the class index):
 * each class's rows are shuffled and dealt round-robin over the folds, continuing where the
 * previous class stopped, so every fold holds floor or ceil of n_c / k rows of class c and the
 * fold sizes differ by at most one. Regression (`n_classes` == 0): rows are shuffled and dealt.
 * When the smallest class has fewer members than `n_folds`, the fold count drops to
 * max(2, smallest class size) with a warning through `log`; a class of one member then is
 * missing from one training fold (a second warning). Fewer rows than folds likewise reduce it.
 * `class_names` (n_classes entries, may be NULL) name the class in the warning.
 * @param[out] fold        n entries in [0, *n_folds_out)
 * @param[out] n_folds_out the fold count used
 * @return KB_OK; KB_EFORMAT when n < 2 or a class index is out of range; KB_EINVAL when
 *         n_folds < 2; KB_ENOMEM.
 */
int kb_svm_folds(size_t *fold, size_t *n_folds_out, const double *y, size_t n,
                 size_t n_classes, const char *const *class_names, size_t n_folds, kb_rng *rng,
                 const kb_log *log, kb_error *err);

/**
 * The folds kb_svm_cross_validate uses for `d` with this seed when there is no test split
 * (kb_svm_folds on the run's fold stream): lets another tool cross-validate on the same folds.
 * Outputs and errors as kb_svm_folds.
 */
int kb_svm_cv_folds(size_t *fold, size_t *n_folds_out, const kb_dataset *d, size_t n_folds,
                    uint64_t seed, const kb_log *log, kb_error *err);

/**
 * Predict `n` rows with a trained model: the values svm_predict() returns (class labels,
 * regression values), but with the kernel between the rows and the support vectors computed
 * as dense matrix products (BLAS dgemm, blocks of 256 rows) instead of libsvm's sparse loop,
 * which is much faster on dense data. Feature indices must lie in [1, n_features]. Falls back
 * to svm_predict() for a precomputed kernel or when the dense support-vector matrix would
 * exceed 256 MB. Equal to svm_predict() up to rounding of the kernel values (a decision value
 * within rounding of zero may vote the other way). Cross-validation uses it unless
 * probability estimates are on.
 * @param[out] out  n values
 * @return KB_OK; KB_EINVAL for a feature index outside [1, n_features]; KB_ENOMEM.
 */
int kb_svm_predict(double *out, const struct svm_model *model, const struct svm_node *const *x,
                   size_t n, size_t n_features, kb_error *err);

/** Quality of predictions; a metric that does not apply is NaN. */
typedef struct kb_svm_metrics {
    size_t n;                    /* rows evaluated; 0 = nothing was evaluated */
    double accuracy;             /* classification: fraction correct */
    double log_loss;             /* classification with probability: mean -log p(true class),
                                    p clipped to [1e-15, 1 - 1e-15] */
    double rmse;                 /* regression, in target units */
    double r2;                   /* regression: 1 - SSE / SST (SST around the rows' mean) */
} kb_svm_metrics;

/** One finished fold, reported to kb_svm_cv_opts.on_fold. */
typedef struct kb_svm_fold {
    size_t fold;                 /* 0-based */
    size_t n_folds;
    size_t n_train, n_test;
    size_t n_sv;                 /* support vectors of the fold's model */
    kb_svm_metrics metrics;      /* on the fold's test rows */
} kb_svm_fold;

/** Called after each fold; a non-zero return stops the run and is returned by it. */
typedef int (*kb_svm_fold_fn)(const kb_svm_fold *fold, void *payload);

typedef struct kb_svm_cv_opts {
    int version;
    size_t n_folds;              /* >= 2 */
    double test_fraction;        /* in [0, 1): rows held out (stratified) before CV; 0 = none */
    uint64_t seed;
    kb_svm_fold_fn on_fold;      /* may be NULL */
    void *payload;
    kb_log log;                  /* warnings */
} kb_svm_cv_opts;

#define KB_SVM_CV_OPTS_VERSION 1
#define KB_SVM_CV_OPTS_INIT {KB_SVM_CV_OPTS_VERSION, 5, 0.0, 0, NULL, NULL, {NULL, NULL}}

typedef struct kb_svm_result {
    kb_dataset_task task;
    kb_svm_type type;            /* resolved (never AUTO) */
    size_t n_folds;              /* used; may be fewer than asked */
    size_t n_features;           /* after preprocessing */
    double gamma;                /* used */
    size_t n_cv;                 /* rows in the cross-validation part */
    kb_svm_metrics cv;           /* pooled out-of-fold predictions */
    double mean_n_sv;            /* support vectors per fold model */
    kb_svm_metrics test;         /* model trained on the CV part, on the held-out rows;
                                    test.n == 0 without a test split */
} kb_svm_result;

/**
 * Cross-validate `cfg` on `d` (and evaluate on a held-out split when opts->test_fraction > 0).
 * @param[out] out  the metrics (plain data, nothing to release)
 * @return KB_OK; KB_EINVAL with "param 'name': reason" for a configuration that does not fit
 *         the data (including libsvm's own checks, e.g. an infeasible nu); KB_EFORMAT for
 *         data that cannot be trained on (a single class, fewer than 2 rows, no features,
 *         infinite values); the callback's non-zero return when on_fold stopped the run;
 *         KB_ENOMEM.
 * Not thread-safe with probability estimates on (libsvm uses rand()).
 */
int kb_svm_cross_validate(kb_svm_result *out, const kb_dataset *d, const kb_svm_config *cfg,
                          const kb_svm_cv_opts *opts, kb_error *err);

/** "c_svc", "nu_svc", "epsilon_svr" ("auto" for AUTO). */
const char *kb_svm_type_name(kb_svm_type t);
/** "linear", "poly", "rbf", "sigmoid". */
const char *kb_svm_kernel_name(kb_svm_kernel k);

#ifdef __cplusplus
}
#endif

#endif
