/*
 * Invariants every dataset a reader returns must satisfy; the fuzz targets call this on every
 * accepted input and abort (so libFuzzer and the replay driver report it) on a violation.
 */
#ifndef KB_TESTS_FUZZ_DATASET_CHECK_H
#define KB_TESTS_FUZZ_DATASET_CHECK_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dataset.h"

static inline void fuzz_check_dataset(const kb_dataset *d)
{
    if (d->n_rows == 0 || strlen(d->fingerprint) != 64 || d->y == NULL) {
        abort();
    }
    for (size_t j = 0; j < d->n_cols; j++) {
        const kb_column *c = &d->cols[j];
        const double *v = kb_dataset_col(d, j);
        size_t miss = 0;
        for (size_t i = 0; i < d->n_rows; i++) {
            if (isnan(v[i])) {
                miss++;
            } else if (!isfinite(v[i]) ||
                       (c->type == KB_COLUMN_CATEGORICAL && (v[i] < 0 || v[i] >= c->n_levels))) {
                abort();
            }
        }
        if (miss != c->n_missing || c->name == NULL) {
            abort();
        }
    }
    for (size_t i = 0; i < d->n_rows; i++) {
        double y = d->y[i];
        if (!isfinite(y) || (d->task == KB_DATASET_TASK_CLASSIFICATION &&
                             (y < 0 || y >= d->n_classes || y != floor(y)))) {
            abort();
        }
    }
    /* a subset of every row is the same data */
    size_t n = d->n_rows < 64 ? d->n_rows : 64;
    size_t rows[64];
    for (size_t i = 0; i < n; i++) {
        rows[i] = i;
    }
    kb_dataset s;
    if (kb_dataset_subset(&s, d, rows, n, NULL) == KB_OK) {
        if (n == d->n_rows && strcmp(s.fingerprint, d->fingerprint) != 0) {
            abort();
        }
        kb_dataset_release(&s);
    }
}

#endif
