/*
 * kb_curveio: readers that turn a training log into a kb_curve, fed incrementally so that a
 * monitor can follow a growing file or a pipe (kb watch) as well as read a whole file
 * (kb judge).
 *
 * Formats (docs/FORMAT.md, "Learning curves"):
 * - JSONL: kb's trial protocol and `kb train` output: one object per line,
 *   {"step": 100, "train_loss": 1.9, "val_accuracy": 0.41, ...} (the step key may also be
 *   "iter", "iteration" or "epoch"); a number is a value, null or the strings "nan"/"inf" are
 *   reported non-finite values; the last line {"final": {...}, "status": "ok"} ends the run.
 * - CSV: a header, a step column ("step", "iter", "iteration" or "epoch"; else the first
 *   column) and one column per metric; an empty cell is missing, "nan"/"inf" are reported.
 * - Caffe training logs (glog): "Iteration N, loss = X" (also "Iteration N (... iter/s ...),
 *   loss = X") -> train_loss, "Iteration N, lr = Z" -> lr, "Iteration N, Testing net (#k)"
 *   followed by "Test net output #j: NAME = V" -> val_NAME (valK_NAME for test net k > 0),
 *   "Train net output #j: NAME = V" -> train_NAME (except the loss, which the Iteration line
 *   carries), "Optimization Done" ends the run. Other lines are ignored.
 * - MLflow metric files (mlruns/<exp>/<run>/metrics/<name>): "timestamp value step" per line
 *   (older files: "timestamp value", the step being the line's index); the metric's name is
 *   the file's name unless the caller gives one.
 *
 * A bad line is skipped with a warning "source:line: reason" through the log callback; no
 * input can crash the reader. Lines longer than 1 MiB are skipped whole.
 */
#ifndef KB_ENGINE_CURVEIO_H
#define KB_ENGINE_CURVEIO_H

#include <stddef.h>

#include "engine/core/error.h"
#include "engine/core/log.h"
#include "engine/curve.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kb_curveio_format {
    KB_CURVEIO_FORMAT_AUTO = 0, /* decided from the source's name, else its first line */
    KB_CURVEIO_FORMAT_JSONL = 1,
    KB_CURVEIO_FORMAT_CSV = 2,
    KB_CURVEIO_FORMAT_CAFFE = 3,
    KB_CURVEIO_FORMAT_MLFLOW = 4
} kb_curveio_format;

typedef struct kb_curveio_opts {
    int version;
    kb_curveio_format format;
    const char *source;   /* name in messages and for sniffing ("-" or NULL: stdin) */
    const char *metric;   /* MLflow: the metric's name (NULL: the source's base name) */
    size_t max_warnings;  /* warnings reported before the rest are counted silently (20) */
    kb_log log;           /* warnings */
} kb_curveio_opts;

#define KB_CURVEIO_OPTS_VERSION 1
#define KB_CURVEIO_OPTS_INIT                                                                 \
    {KB_CURVEIO_OPTS_VERSION, KB_CURVEIO_FORMAT_AUTO, NULL, NULL, 20, {NULL, NULL}}

/** An incremental reader (opaque). */
typedef struct kb_curveio kb_curveio;

/**
 * Create a reader. The opts strings are copied.
 * @return KB_OK; KB_ENOMEM. Caller owns `*out`; free with kb_curveio_free().
 */
int kb_curveio_new(kb_curveio **out, const kb_curveio_opts *opts, kb_error *err);
void kb_curveio_free(kb_curveio *r);

/**
 * Parse the complete lines in the next `n` bytes (a partial last line is kept for the next
 * call) into `c`. Bad lines become warnings.
 * @return KB_OK; KB_ENOMEM (the curve keeps what was added).
 */
int kb_curveio_feed(kb_curveio *r, kb_curve *c, const char *data, size_t n, kb_error *err);

/** Parse a pending partial line (the input ended without a newline). KB_OK or KB_ENOMEM. */
int kb_curveio_finish(kb_curveio *r, kb_curve *c, kb_error *err);

/** The format in use (AUTO until the first line that decides it). */
kb_curveio_format kb_curveio_format_used(const kb_curveio *r);
/** Lines seen, lines skipped with a warning, values (and reported NaNs) added. */
size_t kb_curveio_n_lines(const kb_curveio *r);
size_t kb_curveio_n_bad(const kb_curveio *r);
size_t kb_curveio_n_values(const kb_curveio *r);

/**
 * Read a whole file ("-" = stdin; gzip-compressed files are read transparently);
 * `*format_out` (may be NULL) receives the format used.
 * @return KB_OK; KB_EIO when it cannot be opened or read; KB_EFORMAT when it holds no
 * learning-curve value at all ("FILE: no learning-curve values (N lines, M bad)"); KB_ENOMEM.
 * Caller owns `out` (kb_curve_release), also on KB_EFORMAT.
 */
int kb_curveio_read(kb_curve *out, kb_curveio_format *format_out, const char *path,
                    const kb_curveio_opts *opts, kb_error *err);

/** "auto", "jsonl", "csv", "caffe", "mlflow" */
const char *kb_curveio_format_name(kb_curveio_format f);
/** Parse a name above; KB_EFORMAT when unknown. */
int kb_curveio_format_parse(kb_curveio_format *out, const char *s, kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
