/*
 * Configurations for the built-in workloads from the command line: `--config JSON` (a JSON
 * object, inline or in a file) and `--set key=value` overrides, as a kb_param array that the
 * workload maps to its own parameters (kb_svm_config_from_params, ...).
 */
#ifndef KB_TOOLS_TRAIN_CONFIG_H
#define KB_TOOLS_TRAIN_CONFIG_H

#include <stddef.h>

#include "engine/core/error.h"
#include "engine/core/space.h"

/**
 * Add the members of a JSON object to `*params` (replacing same-named entries). `text` is the
 * object itself when it starts with '{' (after blanks), else the path of a file holding one.
 * Numbers become INT when integral and within +-2^53, else FLOAT; strings STR; booleans BOOL;
 * null is skipped. @return KB_OK; KB_EINVAL ("--config: ...") for bad JSON or a nested value;
 * KB_EIO for an unreadable file; KB_ENOMEM. `*params` stays owned by the caller
 * (kb_params_free) on every path.
 */
int train_config_add_json(kb_param **params, size_t *n, const char *text, kb_error *err);

/**
 * Add one `key=value` (replacing a same-named entry). The value's type is inferred: true/false
 * -> BOOL, an integer -> INT, another finite number -> FLOAT, anything else -> STR.
 * @return KB_OK; KB_EINVAL ("--set 'x': ...") without '=' or with an empty key; KB_ENOMEM.
 */
int train_config_add_set(kb_param **params, size_t *n, const char *kv, kb_error *err);

#endif
