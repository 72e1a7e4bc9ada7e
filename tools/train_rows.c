#include "tools/train_rows.h"

#include "engine/core/alloc.h"
#include "engine/core/rng.h"
#include "engine/landmark.h"

int train_rows_limit(kb_dataset *d, size_t max_rows, uint64_t seed, size_t *n_before,
                     kb_error *err)
{
    if (n_before != NULL) {
        *n_before = d->n_rows;
    }
    if (max_rows == 0 || d->n_rows <= max_rows) {
        return KB_OK;
    }
    size_t *rows = kb_malloc_array(max_rows, sizeof *rows);
    if (rows == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory sampling %zu rows", max_rows);
    }
    kb_rng rng;
    kb_rng_seed(&rng, seed);
    size_t n = 0;
    kb_dataset sub = {0};
    int rc = kb_landmark_sample(rows, &n, d, max_rows, &rng, err);
    if (rc == KB_OK) {
        rc = kb_dataset_subset(&sub, d, rows, n, err);
    }
    kb_free(rows);
    if (rc == KB_OK) {
        kb_dataset_release(d);
        *d = sub;
    }
    return rc;
}
