/*
 * Internals shared by the dataset readers (dataset.c, csv.c, svmlight.c, idx.c): one input
 * source over a (possibly gzipped) file or a memory block, the number parser, the shortest
 * round-trip formatter and the common target finishing step. Not installed.
 */
#ifndef KB_ENGINE_DATASET_PRIV_H
#define KB_ENGINE_DATASET_PRIV_H

#include <stddef.h>
#include <zlib.h>

#include "engine/dataset.h"

/* Reader buffer: large reads keep zlib and the parser out of each other's way. */
#define KB_DATASET__READ_BYTES ((size_t)1 << 20)

/** A byte source: a file read through zlib (plain or gzip, transparently) or a memory block. */
typedef struct kb_dataset__src {
    const char *name;            /* for messages (borrowed) */
    gzFile gz;                   /* file source, or NULL */
    const unsigned char *mem;    /* memory source */
    size_t mem_len, mem_pos;
} kb_dataset__src;

/** Open `path` for reading; KB_EIO (with errno as cause) if it cannot be opened. */
int kb_dataset__src_open(kb_dataset__src *s, const char *path, kb_error *err);
/** A source over `n` bytes at `p` (borrowed); `name` is used in messages. */
void kb_dataset__src_mem(kb_dataset__src *s, const void *p, size_t n, const char *name);
/** Read up to `n` bytes into `buf`; sets `*got` (0 at the end). KB_EIO on a read error. */
int kb_dataset__src_read(kb_dataset__src *s, void *buf, size_t n, size_t *got, kb_error *err);
/** Close a source (no-op for memory and for a zeroed struct). */
void kb_dataset__src_close(kb_dataset__src *s);

/**
 * A streaming reader's body: parse `src` into `out` (zeroed on entry). On failure it may
 * leave `out` partly filled: the caller releases it.
 */
typedef int (*kb_dataset__reader_fn)(kb_dataset *out, kb_dataset__src *src,
                                     const kb_dataset_opts *opts, kb_error *err);

/**
 * The public entry of a streaming reader over a file: check the arguments, open `path`, run
 * `fn`, close, and leave `*out` zeroed on failure.
 */
int kb_dataset__read_path(kb_dataset *out, const char *path, const kb_dataset_opts *opts,
                          kb_dataset__reader_fn fn, kb_error *err);

/** The same over `n` bytes at `data`, `name` standing for the file in messages. */
int kb_dataset__read_mem(kb_dataset *out, const void *data, size_t n, const char *name,
                         const kb_dataset_opts *opts, kb_dataset__reader_fn fn, kb_error *err);

/**
 * Parse the whole of s[0..n) as a finite decimal number. Returns 1 and sets `*out` if it is
 * one (the result is the correctly rounded double, as strtod gives), 0 if not. Leading and
 * trailing ASCII blanks are ignored.
 */
int kb_dataset__parse_double(const char *s, size_t n, double *out);

/** Shortest "%.*g" text of a finite `v` that reads back to the same double; returns length. */
int kb_dataset__format_double(char *buf, size_t cap, double v);

/**
 * Finish a dataset whose features (n_rows, n_cols, cols, x) are filled: take `y` (n_rows
 * values; NaN = missing) and, for a categorical target, its `levels` (y holds level indices);
 * ownership of both passes to this function, which frees them on failure. Drops rows with a
 * missing target (warning through opts->log), decides the task, builds the sorted class
 * names, remaps y to class indices, and computes the fingerprint. `file` names the input in
 * messages; `text_line`/`text_value` locate the first non-numeric target value (categorical
 * target) for the error when REGRESSION is forced.
 */
int kb_dataset__finish(kb_dataset *d, double *y, char **levels, size_t n_levels,
                       const kb_dataset_opts *opts, const char *file, size_t text_line,
                       const char *text_value, kb_error *err);

/** Free an array of `n` strings and the array. */
void kb_dataset__free_strings(char **s, size_t n);

#endif
