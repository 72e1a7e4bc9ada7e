/*
 * Landmarkers: cross-validated scores of six cheap models on a dataset, used as meta-features
 * (Pfahringer, Bensusan & Giraud-Carrier, "Meta-learning by landmarking various learning
 * algorithms", ICML 2000; the set follows pymfe's "landmarking" group with libsvm SVMs added).
 *
 * Procedure (docs/META-FEATURES.md, "Landmarkers", is the normative text):
 *  1. Sample: when the dataset has more than `sample_rows` rows, a seeded stratified sample
 *     (classification: per-class quotas proportional to class sizes, largest remainder; each
 *     class's rows shuffled by kb_rng and the first quota taken; regression: a shuffled prefix),
 *     kept in the original row order.
 *  2. Preprocess on the sample: numeric columns mean-imputed then standardised (population
 *     std; constant columns dropped); categorical columns mode-imputed and one-hot encoded over
 *     the levels present (one level present: dropped). Regression targets standardised, so
 *     RMSE is in units of the target's standard deviation.
 *  3. Folds: k-fold, stratified for classification (each class's positions shuffled and dealt
 *     round-robin, the counter continuing across classes).
 *  4. Models: 1-NN (Euclidean), Gaussian naive Bayes (var_smoothing 1e-9), a decision stump
 *     (Gini / squared error), LDA (pooled class covariance + 1e-6 ridge), linear and RBF SVMs
 *     (libsvm C-SVC / epsilon-SVR, C = 1, gamma = 1 / columns, eps = 1e-3, epsilon = 0.1).
 *  5. Score: pooled accuracy over all test folds (classification) or pooled RMSE (regression).
 * Naive Bayes and LDA are classification-only: missing for regression.
 *
 * Deterministic for a seed: every random choice comes from a kb_rng seeded with opts->seed, and
 * dense linear algebra is OpenBLAS (set OPENBLAS_NUM_THREADS=1 for bit-identical sums).
 */
#ifndef KB_ENGINE_LANDMARK_H
#define KB_ENGINE_LANDMARK_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/error.h"
#include "engine/core/log.h"
#include "engine/core/mat.h"
#include "engine/core/rng.h"
#include "engine/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kb_landmark_model {
    KB_LANDMARK_MODEL_1NN = 0,
    KB_LANDMARK_MODEL_NAIVE_BAYES = 1,
    KB_LANDMARK_MODEL_STUMP = 2,
    KB_LANDMARK_MODEL_LDA = 3,
    KB_LANDMARK_MODEL_LINEAR_SVM = 4,
    KB_LANDMARK_MODEL_RBF_SVM = 5
} kb_landmark_model;

#define KB_LANDMARK_N_MODELS 6

typedef struct kb_landmark_opts {
    int version;
    size_t sample_rows; /* 0 = 2000 */
    size_t n_folds;     /* 0 = 5; at least 2 */
    uint64_t seed;
    unsigned models; /* bit (1u << kb_landmark_model) per model; 0 = all */
    kb_log log;      /* progress, one line per model */
} kb_landmark_opts;

#define KB_LANDMARK_OPTS_VERSION 1
#define KB_LANDMARK_OPTS_INIT                                                                      \
    {                                                                                              \
        KB_LANDMARK_OPTS_VERSION, 0, 0, 0, 0,                                                      \
        {                                                                                          \
            NULL, NULL                                                                             \
        }                                                                                          \
    }

typedef struct kb_landmark_result {
    double score[KB_LANDMARK_N_MODELS];  /* accuracy or RMSE; NaN = missing / not run */
    double time_s[KB_LANDMARK_N_MODELS]; /* wall time of the model's cross-validation */
    size_t n_rows;                       /* rows of the sample */
    size_t n_cols;                       /* columns after preprocessing */
} kb_landmark_result;

/** Short name of a model ("1nn", "naive_bayes", "stump", "lda", "linear_svm", "rbf_svm"). */
const char *kb_landmark_model_name(kb_landmark_model m);

/**
 * Choose the sample rows (step 1). `rows` must hold min(d->n_rows, sample_rows) entries;
 * `*n_out` receives that count; rows come out ascending.
 * @return KB_OK; KB_ENOMEM.
 */
int kb_landmark_sample(size_t *rows, size_t *n_out, const kb_dataset *d, size_t sample_rows,
                       kb_rng *rng, kb_error *err);

/**
 * Assign folds 0..k-1 to the n positions of a sample (step 3). `y` holds the sample's
 * targets (class indices for classification, n_classes > 0; anything for regression,
 * n_classes == 0).
 * @return KB_OK; KB_ENOMEM.
 */
int kb_landmark_folds(size_t *fold, const double *y, size_t n, size_t n_classes, size_t k,
                      kb_rng *rng, kb_error *err);

/**
 * Build the preprocessed design matrix of the sample rows (step 2): `x_out` n x p
 * column-major (caller releases with kb_mat_release), `y_out` (n doubles, caller-allocated)
 * the targets (standardised for regression; NaN-free).
 * @return KB_OK; KB_ENOMEM.
 */
int kb_landmark_design(kb_mat *x_out, double *y_out, const kb_dataset *d, const size_t *rows,
                       size_t n, kb_error *err);

/**
 * Run the landmarkers on `d`. Models that cannot run (fewer than two classes in the sample,
 * a constant regression target, no usable column, a fold without training rows) give NaN.
 * @return KB_OK; KB_ENOMEM; KB_ENUMERIC (cause = LAPACK info) if LDA's factorisation fails
 *         after regularisation.
 */
int kb_landmark_compute(kb_landmark_result *out, const kb_dataset *d, const kb_landmark_opts *opts,
                        kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
