/*
 * A lower data fidelity for the built-in workloads: `--max-rows N` trains on a seeded
 * stratified sample of at most N rows (the same sample the landmark meta-features draw), so
 * a history or a multi-fidelity search can afford large datasets. Shared by kb train svm/net.
 */
#ifndef KB_TOOLS_TRAIN_ROWS_H
#define KB_TOOLS_TRAIN_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/error.h"
#include "engine/dataset.h"

/**
 * Replace `*d` by a seeded stratified sample of `max_rows` rows when it has more (rows keep
 * their order); a no-op otherwise or when max_rows is 0. `*n_before` (may be NULL) receives
 * the row count before sampling. @return KB_OK; KB_ENOMEM (then `*d` is unchanged).
 */
int train_rows_limit(kb_dataset *d, size_t max_rows, uint64_t seed, size_t *n_before,
                     kb_error *err);

#endif
