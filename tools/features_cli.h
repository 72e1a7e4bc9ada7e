/*
 * What `kb features` and `kb add-task` share: the dataset/meta-feature options, reading the
 * dataset and computing its meta-features with errors printed the kb way, and the JSON form
 * of a meta-feature table (name -> value, null when missing).
 */
#ifndef KB_TOOLS_FEATURES_CLI_H
#define KB_TOOLS_FEATURES_CLI_H

#include <cjson/cJSON.h>

#include "engine/dataset.h"
#include "engine/metafeatures.h"
#include "kb/record.h"
#include "kb/store.h"
#include "tools/cli.h"

/* Option keys used by both commands (long-only, above the command's own keys). */
enum {
    FEATURES_OPT_GROUPS = CLI_KEY(40),
    FEATURES_OPT_SAMPLE,
    FEATURES_OPT_SEED,
    FEATURES_OPT_TARGET,
    FEATURES_OPT_TASK_TYPE,
    FEATURES_OPT_PROGRESS,
    FEATURES_OPT_QUIET
};

/* The option table rows for the keys above (7 rows). */
#define FEATURES_CLI_OPTS                                                                          \
    {"groups", FEATURES_OPT_GROUPS, 1, "LIST",                                                     \
     "general,statistical,info,landmark,image or all (default all)"},                              \
        {"sample", FEATURES_OPT_SAMPLE, 1, "N", "landmarker sample rows (default 2000)"},          \
        {"seed", FEATURES_OPT_SEED, 1, "S", "seed of the landmarker sample and folds (0)"},        \
        {"target", FEATURES_OPT_TARGET, 1, "NAME",                                                 \
         "target column (default 'target', else the last)"},                                       \
        {"task-type", FEATURES_OPT_TASK_TYPE, 1, "TYPE",                                           \
         "classification or regression (default: from the target)"},                               \
        {"progress", FEATURES_OPT_PROGRESS, 0, NULL, "progress lines on stderr"},                  \
    {                                                                                              \
        "quiet", FEATURES_OPT_QUIET, 0, NULL, "no warnings"                                        \
    }

typedef struct features_args {
    const char *cmd;
    kb_dataset_opts dataset;
    kb_metafeatures_opts mf;
    cli_log_opts log;
} features_args;

/** Defaults: every group, progress when stderr is a terminal. */
void features_args_init(features_args *a, const char *cmd);

/**
 * Handle one of the shared option keys. Returns 1 if `key` was one of them and parsed, 0 if
 * not a shared key, -1 after printing a usage error.
 */
int features_args_option(features_args *a, int key, const char *arg);

/**
 * Read `path` and compute its meta-features. Prints errors as "kb <cmd>: ...".
 * Returns KB_EXIT_OK (the caller releases `d`) or an exit code (nothing to release).
 */
int features_load(kb_dataset *d, kb_metafeatures *mf, const char *path, features_args *a);

/** Read `path` only (errors printed); KB_EXIT_OK or an exit code. */
int features_read(kb_dataset *d, const char *path, features_args *a);

/** Compute the meta-features of a dataset read by features_read (errors printed). */
int features_compute(kb_metafeatures *mf, const kb_dataset *d, const char *path, features_args *a);

/**
 * Indices of the features of the computed groups, sorted by name, into `order`
 * (KB_METAFEATURES_MAX entries); returns how many.
 */
size_t features_sorted(size_t *order, const kb_metafeatures *mf);

/** Object name -> number|null of the features of the computed groups, sorted by name. */
cJSON *features_json(const kb_metafeatures *mf);

/** Size of a task id made from a dataset: "t-" + 16 hex digits of its fingerprint. */
#define FEATURES_TASK_ID_SIZE 24

/**
 * Fill `t` (zeroed by the caller) as `kb add-task` stores a dataset: id, name, fingerprint,
 * task type, target, feature set, the meta-features sorted by name, tags (comma-separated,
 * may be NULL) and team (may be NULL). @return KB_OK; KB_ENOMEM (release `t` either way).
 */
int features_build_task(kb_task *t, const char *id, const char *name, const char *tags,
                        const char *team, const kb_dataset *d, const kb_metafeatures *mf);

/**
 * The stored task of dataset `path` ("t-" + its fingerprint's first 16 hex digits), computed
 * and stored (named `name`) when the store does not hold it yet. Errors are printed.
 * @return KB_EXIT_OK or an exit code.
 */
int features_ensure_task(char id_out[FEATURES_TASK_ID_SIZE], kb_store *store, const char *path,
                         const char *name, features_args *a);

/** "classification" / "regression". */
const char *features_task_name(kb_dataset_task t);

#endif
