/*
 * Shared pieces of `kb judge` and `kb watch`: the curve options both take, and the verdict,
 * forecast and advice as text lines or cJSON objects (schema kb.judge/1, docs/FORMAT.md).
 */
#ifndef KB_TOOLS_CURVE_CLI_H
#define KB_TOOLS_CURVE_CLI_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "engine/curve.h"
#include "engine/curveio.h"
#include "kb/store.h"
#include "tools/cli.h"

/* option keys shared by both commands (each command adds its own above CURVE_OPT_LAST) */
enum {
    CURVE_OPT_FORMAT = CLI_KEY(0),
    CURVE_OPT_METRIC,
    CURVE_OPT_MODE,
    CURVE_OPT_CONFIG,
    CURVE_OPT_CLASSES,
    CURVE_OPT_REF_BEST,
    CURVE_OPT_REF_MEDIAN,
    CURVE_OPT_JSON,
    CURVE_OPT_QUIET,
    CURVE_OPT_LAST
};

#define CURVE_CLI_OPTS                                                                       \
    {"format", CURVE_OPT_FORMAT, 1, "F", "auto (default), jsonl, csv, caffe or mlflow"},     \
        {"metric", CURVE_OPT_METRIC, 1, "NAME",                                              \
         "the objective series (default: val_accuracy, val_loss, ..., train_loss)"},         \
        {"mode", CURVE_OPT_MODE, 1, "min|max", "the objective's direction (default: from its name)"}, \
        {"config", CURVE_OPT_CONFIG, 1, "JSON",                                              \
         "the run's configuration (object or file) for advice with numbers"},                \
        {"classes", CURVE_OPT_CLASSES, 1, "K", "number of classes: chance level for 'poor'"}, \
        {"ref-best", CURVE_OPT_REF_BEST, 1, "X", "best objective value in the task's history"}, \
        {"ref-median", CURVE_OPT_REF_MEDIAN, 1, "X",                                         \
         "median objective value in the task's history"},                                    \
        {"json", CURVE_OPT_JSON, 0, NULL, "machine-readable output"},                       \
        {"quiet", CURVE_OPT_QUIET, 0, NULL, "no warnings about bad lines"}

typedef struct curve_cli {
    const char *cmd;
    kb_curveio_opts io;
    kb_curve_opts judge;
    kb_param *config;
    size_t n_config;
    int json;
    cli_log_opts log;
} curve_cli;

/** Defaults for command `cmd`. */
void curve_cli_init(curve_cli *cc, const char *cmd);
void curve_cli_release(curve_cli *cc);
/**
 * Handle a shared option key; returns 1 when handled, 0 when the key is not a shared one,
 * -1 on a usage error (already printed: return KB_EXIT_USAGE).
 */
int curve_cli_option(curve_cli *cc, int key, const char *arg);

/**
 * Past runs of one task from the store, as kb_curve_advise_history wants them. A run's verdict
 * is the primary verdict stored with it (run.extra "judge", schema kb.verdict/1) if any; else
 * kb_curve_judge on its stored curve (objective: the run's objective series when present,
 * its direction, judge_opts' n_classes); else OVERFLOW for status diverged and CONVERGED for
 * status ok (a finished run without a curve went well). Failed and running runs are left out.
 */
typedef struct curve_history {
    kb_curve_past_run *runs; /* n entries; their strings and configs are owned here */
    size_t n, cap;
    int maximize;            /* direction of the runs' objective (the first run that has one) */
    int have_direction;
} curve_history;

/**
 * Append the runs of `task_id` to `h` (zero it first); KB_OK (maybe none), KB_ENOMEM, a store
 * error. Changes are only ever compared between runs of one task.
 */
int curve_history_load(curve_history *h, kb_store *store, const char *task_id,
                       const kb_curve_opts *judge_opts, kb_error *err);
/**
 * The ids of the `k` stored tasks nearest to task `task_id` by meta-features (engine/similarity:
 * robust scaler fitted on the other tasks, L1 distance over shared features), nearest first;
 * none when `task_id` has no meta-features. Caller owns `*ids_out` (each id and the array:
 * kb_free). KB_OK, KB_ENOMEM, a store error.
 */
int curve_history_neighbours(char ***ids_out, size_t *n_out, kb_store *store,
                             const char *task_id, size_t k, kb_error *err);
void curve_history_release(curve_history *h);
/** One KB fix as a text line to `out` ("advice   from the KB: ..."); `scope` names the tasks
 * ("task t1", "task t1 and 3 similar tasks"). */
void curve_cli_print_fix(FILE *out, const kb_curve_fix *f, kb_curve_verdict_kind kind,
                         const char *scope);
/** The fixes as a JSON object {"task", "similar_tasks", "runs", "verdict", "fixes": [...]};
 * NULL on OOM. */
cJSON *curve_cli_fixes_json(const char *task_id, char *const *similar, size_t n_similar,
                            size_t n_runs, kb_curve_verdict_kind kind, const kb_curve_fix *f,
                            size_t n);

/** The judgement (and optional forecast / advice) as a JSON object; NULL when out of memory. */
cJSON *curve_cli_json(const kb_curve_judgement *j, const kb_curve_pred *f, double incumbent,
                      double level, const kb_curve_advice *a, size_t n_a);
/** One verdict / advice list / forecast as text lines to `out`. */
void curve_cli_print_verdict(FILE *out, const kb_curve_verdict *v);
void curve_cli_print_advice(FILE *out, const kb_curve_advice *a, size_t n);
void curve_cli_print_forecast(FILE *out, const char *metric, const kb_curve_pred *f,
                              double incumbent, double level);
/** Move every member of object `from` (but `skip`, may be NULL) to the end of `to`, in order,
 * and free `from`. */
void curve_cli_move_members(cJSON *to, cJSON *from, const char *skip);
/** Print a cJSON document on one line (or pretty) and free it; 0 or -1 when out of memory. */
int curve_cli_emit(cJSON *doc, int pretty);

#endif
