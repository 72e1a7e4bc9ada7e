/*
 * kb_dataset: a learning problem in memory, as the readers produce it and every consumer
 * (meta-features, trainers, landmarkers) takes it.
 *
 * Features are an n_rows x n_cols column-major matrix of doubles (one feature contiguous):
 * a numeric column holds its values; a categorical column holds the level index (0-based,
 * into cols[j].levels) as a double. Missing values are NaN in both. The target is separate:
 * for classification y[i] is the class index (0-based, into class_names), for regression the
 * value; rows with a missing target are dropped by the readers.
 *
 * Readers: CSV (RFC 4180), libsvm/svmlight, IDX (MNIST/Fashion-MNIST); all read .gz directly.
 * They stream: memory is proportional to the data kept, not to line length. Errors name the
 * file, line and column.
 */
#ifndef KB_ENGINE_DATASET_H
#define KB_ENGINE_DATASET_H

#include <stddef.h>

#include "engine/core/error.h"
#include "engine/core/log.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kb_dataset_task {
    KB_DATASET_TASK_AUTO = 0,           /* decide from the target (readers only) */
    KB_DATASET_TASK_CLASSIFICATION = 1,
    KB_DATASET_TASK_REGRESSION = 2
} kb_dataset_task;

typedef enum kb_column_type {
    KB_COLUMN_NUMERIC = 1,
    KB_COLUMN_CATEGORICAL = 2
} kb_column_type;

typedef struct kb_column {
    char *name;
    kb_column_type type;
    char **levels;     /* CATEGORICAL: level names, in order of first appearance */
    size_t n_levels;
    size_t n_missing;
} kb_column;

typedef struct kb_dataset {
    char *path;              /* where it was read from (owned), or NULL */
    size_t n_rows, n_cols;   /* features only */
    kb_column *cols;         /* n_cols */
    double *x;               /* n_rows x n_cols, column-major, ld = n_rows */
    kb_dataset_task task;    /* CLASSIFICATION or REGRESSION */
    char *target_name;
    double *y;               /* n_rows */
    size_t n_classes;        /* classification: number of classes; 0 for regression */
    char **class_names;      /* n_classes, in sorted order (numeric labels numerically) */
    size_t img_channels, img_height, img_width; /* image data (IDX): pixel layout; else 0 */
    char fingerprint[65];    /* hex SHA-256 of the canonical content (see kb_dataset_fingerprint) */
} kb_dataset;

typedef struct kb_dataset_opts {
    int version;
    const char *target;      /* target column name; NULL: "target", else the last column */
    kb_dataset_task task;    /* AUTO: classification for non-numeric or few distinct integer targets */
    kb_log log;              /* warnings and progress */
} kb_dataset_opts;

#define KB_DATASET_OPTS_VERSION 1
#define KB_DATASET_OPTS_INIT {KB_DATASET_OPTS_VERSION, NULL, KB_DATASET_TASK_AUTO, {NULL, NULL}}

/**
 * Read a dataset, choosing the reader by name: `*.csv[.gz]` CSV; `*.svm`, `*.libsvm`,
 * `*.svmlight`, `*.txt` (and .gz) svmlight; `*-idx3-ubyte[.gz]` IDX images (labels read from
 * the matching `*-idx1-ubyte[.gz]` file next to it); otherwise sniffed from the content.
 * Task (opts->task AUTO): classification when the target is non-numeric, or numeric with at
 * most 30 distinct values, all integers, and at most half as many distinct values as rows
 * (IDX labels: always); else regression. Class names are sorted, numeric ones numerically
 * and spelled in shortest round-trip form. Rows with a missing target are dropped (warning).
 * @return KB_OK; KB_EIO if unreadable; KB_EFORMAT with "FILE:LINE: column 'c': reason".
 * Caller owns `*out`; release with kb_dataset_release().
 */
int kb_dataset_read(kb_dataset *out, const char *path, const kb_dataset_opts *opts,
                    kb_error *err);

/** Free the contents; a zeroed dataset is a no-op. */
void kb_dataset_release(kb_dataset *d);

/**
 * Copy the rows listed in `rows` (any order, repeats allowed) into a new dataset with the same
 * columns, levels and classes. Caller owns `*out`.
 */
int kb_dataset_subset(kb_dataset *out, const kb_dataset *d, const size_t *rows, size_t n,
                      kb_error *err);

/**
 * Compute `d`'s fingerprint: lower-case hex SHA-256 (64 chars + NUL) of this canonical
 * serialisation of the parsed content, so that the same data gives the same fingerprint
 * whatever its quoting, line endings, compression or file name:
 *
 *   "kb-dataset-v1\n"
 *   u64 n_rows, u64 n_cols, u64 task, u64 n_classes,
 *   u64 img_channels, u64 img_height, u64 img_width,
 *   str target_name, n_classes x str class_name,
 *   for each column: str name, u64 type, u64 n_levels, n_levels x str level,
 *                    n_rows x f64 value,
 *   n_rows x f64 y
 *
 * where u64 is 8 bytes little-endian, str is u64 length + bytes (NULL = length 0), and f64 is
 * the IEEE-754 bit pattern little-endian with every NaN written as 0x7ff8000000000000 and
 * -0.0 as +0.0. The path is not part of it. Readers fill d->fingerprint with it.
 */
void kb_dataset_fingerprint(char out[65], const kb_dataset *d);

/** Column j's values (n_rows contiguous doubles). */
static inline double *kb_dataset_col(const kb_dataset *d, size_t j)
{
    return d->x + j * d->n_rows;
}

#ifdef __cplusplus
}
#endif

#endif
