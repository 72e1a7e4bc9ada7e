/*
 * CSV reader (RFC 4180) producing a kb_dataset.
 *
 * Format: a header row of column names, then one record per row. Fields are separated by
 * commas; a field in double quotes may hold commas, line breaks and doubled quotes (""). Lines
 * end in LF, CRLF or CR; a UTF-8 byte order mark at the start is skipped; blank lines are
 * skipped. Files are read through zlib, so plain and gzip-compressed files both work.
 *
 * Types: a column is numeric when every non-missing value parses completely (surrounding
 * blanks aside) as a finite number (the correctly rounded double, as strtod), else
 * categorical, with its levels in order of first appearance. When a column turns categorical
 * after numeric values were seen, those earlier values become levels written in their
 * shortest round-trip form ("1.50" becomes the level "1.5"). Missing values are empty fields,
 * NA and ?, quoted or not.
 *
 * Target: opts->target, else a column named "target", else the last column. See
 * kb_dataset_read for the task rules. Progress: an INFO line "FILE: N rows read" through
 * opts->log every 2^20 rows; warnings (dropped rows) at WARNING. Memory is the parsed data (8 bytes per cell, plus the
 * distinct categorical strings) and a 1 MiB read buffer that grows only to hold one field.
 */
#ifndef KB_ENGINE_CSV_H
#define KB_ENGINE_CSV_H

#include <stddef.h>

#include "engine/core/error.h"
#include "engine/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Read the CSV file at `path` (plain or gzip) into `*out`.
 * @return KB_OK; KB_EIO if the file cannot be read; KB_ENOTFOUND if opts->target names no
 * column; KB_EFORMAT with "FILE:LINE: column 'c': reason" for a ragged row, an unterminated
 * quote, text after a closing quote, an empty or header-only file, or duplicate column names.
 * Caller owns `*out` (release with kb_dataset_release); on failure it is zeroed.
 */
int kb_csv_read(kb_dataset *out, const char *path, const kb_dataset_opts *opts, kb_error *err);

/**
 * As kb_csv_read, from `n` bytes at `data` (not compressed); `name` stands for the file in
 * messages and becomes out->path.
 */
int kb_csv_read_mem(kb_dataset *out, const void *data, size_t n, const char *name,
                    const kb_dataset_opts *opts, kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
