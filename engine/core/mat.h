/*
 * kb_mat: a dense column-major matrix of doubles. Element (i, j) is data[i + j*ld], ld >= rows.
 * Datasets are n x d with one feature per column, so per-feature statistics read contiguous
 * memory, and every BLAS/LAPACK call uses CblasColMajor / LAPACK_COL_MAJOR without copies.
 */
#ifndef KB_ENGINE_CORE_MAT_H
#define KB_ENGINE_CORE_MAT_H

#include <stddef.h>

#include "engine/core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kb_mat {
    size_t rows, cols, ld;
    double *data; /* owned when made by kb_mat_init */
} kb_mat;

#define KB_MAT_INIT {0, 0, 0, NULL}

/** Allocate a zeroed rows x cols matrix (ld = rows); KB_ENOMEM on overflow or failure. */
int kb_mat_init(kb_mat *m, size_t rows, size_t cols, kb_error *err);
/** Free the contents; a zeroed matrix is a no-op. */
void kb_mat_release(kb_mat *m);

static inline double *kb_mat_at(const kb_mat *m, size_t i, size_t j)
{
    return m->data + i + j * m->ld;
}

static inline double *kb_mat_col(const kb_mat *m, size_t j)
{
    return m->data + j * m->ld;
}

#ifdef __cplusplus
}
#endif

#endif
