/*
 * kb_ingest: past runs from files into the knowledge base.
 *
 * Two layers. The parser layer reads one input and hands every good record to a callback and
 * every bad one (with FILE:LINE and "field 'x': reason") to a reject callback; it needs no
 * store, so tests and fuzz targets drive it directly. The writer layer feeds the parser's
 * records to kb_store_put_batch() in batches (one write transaction each) and counts what
 * happened: accepted (written), duplicate (same id, same content: nothing to do), rejected
 * (bad input, or refused by the store: conflicting content, missing task).
 *
 * Inputs (docs/FORMAT.md):
 *  - kb JSON Lines: one record per line, blank lines allowed, lines of any length (memory is
 *    proportional to the longest line); or one JSON array of records.
 *  - Optuna CSV: `study.trials_dataframe().to_csv()` (RFC 4180); needs opts.task_id.
 *  - an MLflow file store directory (mlruns/<experiment>/<run>/...), or one experiment or run
 *    directory inside it.
 * Detection: a directory is MLflow; else the first non-space byte '{' or '[' means JSON; a
 * first line with `number` and `state` columns means Optuna CSV; anything else is an error
 * naming the file. The path "-" is standard input.
 */
#ifndef KB_KB_INGEST_H
#define KB_KB_INGEST_H

#include <signal.h>
#include <stddef.h>

#include "engine/core/error.h"
#include "engine/core/log.h"
#include "kb/record.h"
#include "kb/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kb_ingest_format {
    KB_INGEST_FORMAT_AUTO = 0,       /* detect (see above) */
    KB_INGEST_FORMAT_JSON = 1,       /* JSON Lines, or one JSON array */
    KB_INGEST_FORMAT_OPTUNA_CSV = 2,
    KB_INGEST_FORMAT_MLFLOW = 3
} kb_ingest_format;

/** "json", "optuna-csv", "mlflow" ("auto" for AUTO). */
const char *kb_ingest_format_name(kb_ingest_format f);

typedef struct kb_ingest_counts {
    size_t accepted;  /* written to the store (the parser layer: records delivered) */
    size_t duplicate; /* already present with the same content */
    size_t rejected;  /* bad input, or refused by the store (conflict, missing task) */
} kb_ingest_counts;

/** A bad record: `file`:`line` and a reason such as "field 'cost_s': must be >= 0". */
typedef void (*kb_ingest_reject_fn)(const char *file, size_t line, const char *reason,
                                    void *payload);
/** After each committed batch: the file's counts so far (kb_ingest_file only). */
typedef void (*kb_ingest_progress_fn)(const kb_ingest_counts *so_far, void *payload);

typedef struct kb_ingest_opts {
    int version;
    kb_ingest_format format;  /* AUTO = detect */
    const char *task_id;      /* CSV: required, the runs' task; MLflow: unless tagged kb.task */
    const char *space;        /* CSV/MLflow: the runs' search space name, or NULL */
    const char *objective;    /* CSV: the objective's metric name (default "value") */
    int direction;            /* CSV/MLflow: a kb_direction, or -1 = not given (minimize) */
    const char *study;        /* CSV: study name in run ids; NULL = hash of the file */
    size_t batch_size;        /* records per write transaction; 0 = 10,000 */
    int strict;               /* a file is all-or-nothing: any rejection writes nothing */
    kb_ingest_reject_fn reject;
    kb_ingest_progress_fn progress;
    void *payload;            /* passed to reject and progress */
    kb_log log;               /* warnings, "FILE:LINE: field 'x': unknown field ..." */
    /* when *interrupt becomes non-zero, commit the records parsed so far (not with strict)
     * and return KB_ECANCELED; NULL = never */
    const volatile sig_atomic_t *interrupt;
} kb_ingest_opts;

#define KB_INGEST_OPTS_VERSION 1
#define KB_INGEST_OPTS_INIT                                                                  \
    {KB_INGEST_OPTS_VERSION, KB_INGEST_FORMAT_AUTO, NULL, NULL, NULL, -1, NULL, 0, 0, NULL,  \
     NULL, NULL, {NULL, NULL}, NULL}

#define KB_INGEST_DEFAULT_BATCH 10000

/**
 * Receives each good record from the parser layer, with where it came from. The callback owns
 * `*rec` afterwards (keep it or kb_record_release() it). A run's inline task arrives as its own
 * task record just before the run. Non-zero stops parsing and is returned.
 */
typedef int (*kb_ingest_record_fn)(kb_record *rec, const char *file, size_t line,
                                   void *payload);

/**
 * Parser layer: read `path` ("-" = stdin; a directory = MLflow) and deliver its records.
 * Bad records go to opts->reject and are counted in `counts->rejected` (if not NULL);
 * delivered ones in `counts->accepted`.
 * @return KB_OK (even if records were rejected); KB_EIO when the input cannot be read;
 *         KB_EFORMAT when the format is unknown or the file as a whole is unusable (an
 *         Optuna CSV without a `number` or `state` column, a JSON array that does not
 *         parse); KB_EINVAL when an option the format needs is missing (CSV without task);
 *         KB_ENOMEM; or the callback's non-zero return.
 */
int kb_ingest_parse_file(kb_ingest_counts *counts, const char *path,
                         const kb_ingest_opts *opts, kb_ingest_record_fn fn, void *payload,
                         kb_error *err);

/**
 * Parser layer on bytes in memory (JSON Lines, a JSON array or an Optuna CSV; not MLflow).
 * `name` is the file name used in messages. Same returns as kb_ingest_parse_file.
 */
int kb_ingest_parse_buffer(kb_ingest_counts *counts, const char *data, size_t n,
                           const char *name, const kb_ingest_opts *opts,
                           kb_ingest_record_fn fn, void *payload, kb_error *err);

/**
 * Writer layer: parse `path` and write its records to `store` in batches of
 * opts->batch_size, each one synced transaction; opts->progress is called after each commit
 * returned. With opts->strict the whole file is one transaction that is written only if no
 * record is rejected (by the parser or the store).
 * @param[out] counts this file's accepted / duplicate / rejected records
 * @return KB_OK when the file was processed (rejections are counted, not errors); the parser
 *         layer's errors; KB_ESTORE when a commit failed (batches committed before it stay);
 *         KB_ECANCELED when opts->interrupt was set (the batches before it stay).
 */
int kb_ingest_file(kb_ingest_counts *counts, kb_store *store, const char *path,
                   const kb_ingest_opts *opts, kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
