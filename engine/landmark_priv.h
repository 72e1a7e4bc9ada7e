/*
 * Internals shared by engine/landmark.c and engine/metafeatures.c (not installed).
 */
#ifndef KB_ENGINE_LANDMARK_PRIV_H
#define KB_ENGINE_LANDMARK_PRIV_H

#include "engine/core/error.h"
#include "engine/dataset.h"

/**
 * Validate a dataset handed to the public entry points: pointers, task, sizes, class indices
 * in [0, n_classes) and integral, categorical level indices in [0, n_levels) or NaN.
 * @return KB_OK; KB_EINVAL naming the first bad row/column.
 */
int kb_landmark__check_dataset(const kb_dataset *d, kb_error *err);

#endif
