/*
 * Search spaces and configurations as plain data, shared by the store (kb/), which keeps them,
 * and the engine, which samples, encodes and models them. No parsing here: kb/ reads and writes
 * their JSON form (docs/FORMAT.md), engine/ works on these structs.
 *
 * A configuration is a list of named typed values (kb_param). A space is a list of parameter
 * definitions: float or int ranges (optionally log-scaled), categorical choices, booleans, an
 * optional default and an optional condition "active only when parent's value is one of ...".
 */
#ifndef KB_ENGINE_CORE_SPACE_H
#define KB_ENGINE_CORE_SPACE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kb_value_type {
    KB_VALUE_TYPE_NONE = 0, /* absent (e.g. an inactive conditional parameter) */
    KB_VALUE_TYPE_FLOAT = 1,
    KB_VALUE_TYPE_INT = 2,
    KB_VALUE_TYPE_STR = 3,
    KB_VALUE_TYPE_BOOL = 4
} kb_value_type;

/** A typed value; only the member named by `type` is meaningful. `s` is owned. */
typedef struct kb_value {
    kb_value_type type;
    double f;
    int64_t i;
    char *s;
    int b;
} kb_value;

/** A named value: one entry of a configuration, a metric, a fidelity. Owns name and value. */
typedef struct kb_param {
    char *name;
    kb_value value;
} kb_param;

typedef enum kb_space_param_type {
    KB_SPACE_PARAM_FLOAT = 1,
    KB_SPACE_PARAM_INT = 2,
    KB_SPACE_PARAM_CATEGORICAL = 3,
    KB_SPACE_PARAM_BOOL = 4
} kb_space_param_type;

typedef struct kb_space_param {
    char *name;
    kb_space_param_type type;
    double low, high;      /* FLOAT/INT: inclusive range */
    int log;               /* FLOAT/INT: sample and model in log space (low > 0) */
    char **choices;        /* CATEGORICAL: n_choices owned strings */
    size_t n_choices;
    kb_value default_value; /* type NONE when there is no default */
    char *cond_parent;     /* NULL: always active; else active only when the parent's value */
    char **cond_in;        /* (as text: a choice, "true"/"false" or a number) is in cond_in */
    size_t n_cond_in;
} kb_space_param;

typedef struct kb_space {
    char *name;            /* the space's id */
    kb_space_param *params;
    size_t n_params;
} kb_space;

/** Free a value's string; the value becomes NONE. */
void kb_value_release(kb_value *v);
/** Deep copy; KB_ENOMEM on failure (`out` is then NONE). */
int kb_value_copy(kb_value *out, const kb_value *v);
/** Total order used for canonical output: by type, then value (NaN after numbers). */
int kb_value_compare(const kb_value *a, const kb_value *b);
/** The value as a double for FLOAT, INT and BOOL; NaN otherwise. */
double kb_value_as_double(const kb_value *v);

/** Free `n` params and the array itself. */
void kb_params_free(kb_param *p, size_t n);
/** The param named `name`, or NULL. */
const kb_param *kb_params_find(const kb_param *p, size_t n, const char *name);
/** Sort params by name (canonical order for hashing and output). */
void kb_params_sort(kb_param *p, size_t n);

void kb_space_release(kb_space *s);
/** The parameter named `name`, or NULL. */
const kb_space_param *kb_space_find(const kb_space *s, const char *name);
/**
 * Check a space definition: names unique and non-empty, low <= high, log ranges positive,
 * categorical choices non-empty and unique, defaults inside the range, condition parents exist
 * and are not conditional cycles. KB_EFORMAT with "param 'x': reason" on failure.
 */
int kb_space_validate(const kb_space *s, kb_error *err);
/**
 * Check a configuration against a space: every active parameter present with a value of the
 * right type inside its range, no inactive or unknown parameter. KB_EFORMAT with
 * "param 'x': reason" on failure.
 */
int kb_space_check_config(const kb_space *s, const kb_param *config, size_t n, kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
