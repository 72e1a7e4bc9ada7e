/*
 * libsvm / svmlight sparse format reader producing a dense kb_dataset.
 *
 * Format: one example per line, `label [qid:N] index:value index:value ... [# comment]`,
 * fields separated by blanks, indices 1-based and strictly increasing within a line. Lines
 * that are blank or start with `#` are skipped; a label with no pairs is a row of zeros; a
 * qid is accepted and ignored. Files are read through zlib (plain or gzip).
 *
 * The result has D = the largest index seen numeric columns named f1..fD (absent pairs are
 * 0), and the label as the target, named "label" (task rules as in kb_dataset_read).
 * Memory while reading: 12 bytes per stored pair; then the dense n x D matrix.
 */
#ifndef KB_ENGINE_SVMLIGHT_H
#define KB_ENGINE_SVMLIGHT_H

#include <stddef.h>

#include "engine/core/error.h"
#include "engine/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest feature index accepted, so that a stray huge index cannot ask for a huge matrix. */
#define KB_SVMLIGHT_MAX_INDEX ((size_t)1 << 24)

/**
 * Read the svmlight file at `path` into `*out` (opts->target is ignored).
 * @return KB_OK; KB_EIO if unreadable; KB_EFORMAT with "FILE:LINE: column 'c': reason" for a
 * non-numeric label or value, a malformed pair, index 0, an index not above the previous one,
 * an index above KB_SVMLIGHT_MAX_INDEX, or a file without examples. Caller owns `*out`
 * (release with kb_dataset_release); on failure it is zeroed.
 */
int kb_svmlight_read(kb_dataset *out, const char *path, const kb_dataset_opts *opts,
                     kb_error *err);

/** As kb_svmlight_read, from `n` bytes at `data`; `name` stands for the file in messages. */
int kb_svmlight_read_mem(kb_dataset *out, const void *data, size_t n, const char *name,
                         const kb_dataset_opts *opts, kb_error *err);

/**
 * 1 if the first example line in `head[0..n)` (after blank and comment lines) looks like
 * svmlight: a number followed by an `index:value` or `qid:` token; 0 otherwise.
 */
int kb_svmlight_sniff(const char *head, size_t n);

#ifdef __cplusplus
}
#endif

#endif
