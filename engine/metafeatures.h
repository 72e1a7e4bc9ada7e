/*
 * Meta-features: the numbers that describe a dataset to the similarity engine, so that a new
 * task can be matched with past tasks that behave alike.
 *
 * kb_metafeatures_compute() takes a kb_dataset (column-major, one feature contiguous) and fills
 * a fixed table of named values, grouped as in auto-sklearn (Feurer et al. 2015) and pymfe
 * (Alcobaca et al. 2020, JMLR 21(111)):
 *   general      sizes, log ratios, feature types, missing-value shares, class balance
 *   statistical  skewness/kurtosis summaries, absolute correlations, PCA (LAPACK dsyevd)
 *   info         entropies and mutual information after equal-width discretisation
 *   landmark     cross-validated scores of six cheap models (engine/landmark.h)
 *   image        image shape, pixel statistics, distances between per-class mean images
 * docs/META-FEATURES.md defines every feature (formula, reference). The set of names and
 * their definitions is versioned by KB_METAFEATURES_SET; change it whenever a definition
 * changes, since stored tasks are only comparable within one feature set.
 *
 * Invariant: a value that cannot be computed (one class, constant columns, one row, no
 * numeric feature, a group not requested) is NaN -- never a stand-in 0. Outputs print NaN as
 * null (JSON) or "-" (text).
 *
 * Work and memory: general/statistical/info stream over the columns of the dataset without
 * copying it (O(n*d) time; the correlation/PCA pass builds standardised row blocks of at most
 * a few hundred kilobytes and accumulates a d x d matrix with dsyrk). Landmarkers work on a
 * seeded stratified sample of at most `sample_rows` rows.
 *
 * Thread-safety: kb_metafeatures_compute is reentrant; calls on distinct outputs may run in
 * parallel.
 */
#ifndef KB_ENGINE_METAFEATURES_H
#define KB_ENGINE_METAFEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/error.h"
#include "engine/core/log.h"
#include "engine/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Version of the feature definitions (stored with every task as its feature_set). */
#define KB_METAFEATURES_SET "kb-mf-1"

/** Feature groups, as flags. */
enum kb_metafeatures_group {
    KB_METAFEATURES_GROUP_GENERAL = 1u << 0,
    KB_METAFEATURES_GROUP_STATISTICAL = 1u << 1,
    KB_METAFEATURES_GROUP_INFO = 1u << 2,
    KB_METAFEATURES_GROUP_LANDMARK = 1u << 3,
    KB_METAFEATURES_GROUP_IMAGE = 1u << 4
};

#define KB_METAFEATURES_GROUP_ALL 0x1fu

/** Upper bound on the number of features (the table holds kb_metafeatures_count()). */
#define KB_METAFEATURES_MAX 96

typedef struct kb_metafeatures_opts {
    int version;
    unsigned groups;    /* kb_metafeatures_group flags; 0 = all */
    size_t sample_rows; /* landmarkers: rows of the stratified sample; 0 = 2000 */
    size_t n_folds;     /* landmarkers: cross-validation folds; 0 = 5 */
    size_t n_bins;      /* info: equal-width bins per numeric feature; 0 = 10 */
    uint64_t seed;      /* landmarkers: sample and folds */
    kb_log log;         /* progress ("statistical: 50 of 50 columns") */
} kb_metafeatures_opts;

#define KB_METAFEATURES_OPTS_VERSION 1
#define KB_METAFEATURES_OPTS_INIT                                                                  \
    {                                                                                              \
        KB_METAFEATURES_OPTS_VERSION, 0, 0, 0, 0, 0,                                               \
        {                                                                                          \
            NULL, NULL                                                                             \
        }                                                                                          \
    }

/** The result: one value per feature of the table, in table order; NaN = missing. */
typedef struct kb_metafeatures {
    unsigned groups;                    /* the groups computed (image only for image data) */
    double values[KB_METAFEATURES_MAX]; /* kb_metafeatures_count() used */
    size_t landmark_rows;               /* rows of the landmarker sample (0 if not run) */
    size_t landmark_cols;               /* columns after one-hot encoding (0 if not run) */
    double landmark_time_s[8];          /* wall time per landmarker, in table order */
} kb_metafeatures;

/** Number of features in the table. */
size_t kb_metafeatures_count(void);
/** Name of feature `i` (static storage), e.g. "class_entropy"; NULL if out of range. */
const char *kb_metafeatures_name(size_t i);
/** Group flag of feature `i`; 0 if out of range. */
unsigned kb_metafeatures_group(size_t i);
/** Index of the feature called `name`, or -1. */
int kb_metafeatures_index(const char *name);
/** Value of the feature called `name` in `mf`; NaN if unknown or missing. */
double kb_metafeatures_get(const kb_metafeatures *mf, const char *name);

/** Name of one group flag ("general", "statistical", "info", "landmark", "image"). */
const char *kb_metafeatures_group_name(unsigned group);

/**
 * Parse a comma-separated group list ("general,info"; "all" = every group).
 * @return KB_OK; KB_EINVAL naming the unknown group.
 */
int kb_metafeatures_parse_groups(unsigned *out, const char *list, kb_error *err);

/**
 * Compute the requested groups of meta-features of `d`.
 * The image group needs d->img_channels > 0 (otherwise its features stay missing); the
 * landmark group needs at least two rows per fold and, for classification, two classes
 * (otherwise missing).
 * @param[out] out   filled completely (every value NaN first)
 * @param[in]  d     the dataset (read only; never copied)
 * @param[in]  opts  NULL = defaults
 * @return KB_OK; KB_EINVAL for an inconsistent dataset; KB_ENOMEM; KB_ENUMERIC (cause = LAPACK
 *         info) if an eigen-decomposition fails.
 */
int kb_metafeatures_compute(kb_metafeatures *out, const kb_dataset *d,
                            const kb_metafeatures_opts *opts, kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
