/*
 * kb records <-> kb's JSON form (one record per line: the JSON Lines that `kb ingest` reads
 * and `kb export` writes). docs/FORMAT.md documents every field with examples.
 *
 * Reading: a small strict parser (RFC 8259) builds an arena-backed tree per record, which is
 * then checked field by field and turned into a kb_record. It is kb's own rather than cJSON
 * because the record format needs what cJSON drops: whether a number was written as an integer
 * (`3`) or a float (`3.0`) — configuration values are typed — and exact 64-bit integers; and
 * because ingest parses a million records a second-ish, where one malloc per node shows.
 * Invalid UTF-8, bare NaN/Infinity literals, duplicate keys and trailing bytes are rejected.
 * Non-finite metric and curve values are the strings "nan", "inf", "-inf", allowed only in a
 * run whose status is "diverged". Unknown fields are kept in the record's `extra` (canonical
 * JSON object text) with a warning.
 *
 * Writing: one canonical line per record, fixed key order, absent fields omitted, numbers in
 * the shortest of %.15g/%.16g/%.17g that reads back to the same double (a float whose text
 * would look like an integer gets ".0"), so that write(read(write(r))) == write(r) byte for
 * byte: export -> ingest into an empty KB -> export is the identity.
 *
 * Error messages name the field: "field 'config.lr': expected a number, string or bool";
 * the caller prefixes "FILE:LINE: ".
 */
#ifndef KB_KB_JSON_H
#define KB_KB_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/buf.h"
#include "engine/core/error.h"
#include "engine/core/log.h"
#include "kb/record.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Nesting deeper than this is rejected (bounds the parser's recursion). */
#define KB_JSON_MAX_DEPTH 64

/** Length of a derived run id: "r-" + 32 hex digits, plus the NUL. */
#define KB_JSON_RUN_ID_SIZE 35

/**
 * A reusable reader: owns the arena the parse trees live in, so parsing many lines allocates
 * only when a line is larger than any before. Memory is proportional to the largest record.
 * Not thread-safe; use one per thread.
 */
typedef struct kb_json_reader kb_json_reader;

/** Caller owns `*out`; free with kb_json_reader_free(). @return KB_OK or KB_ENOMEM. */
int kb_json_reader_new(kb_json_reader **out, kb_error *err);
void kb_json_reader_free(kb_json_reader *r);

/**
 * Parse `n` bytes holding exactly one JSON object (surrounding whitespace allowed) into a
 * record. A run that carries its task inline ("task": {...}) also yields that task in
 * `*task_out` (otherwise `task_out->id` is NULL); the run's task_id is then the task's id.
 * A run without an id gets kb_json_run_id(). Warnings (unknown fields) go to `warn`.
 * @param[out] out      the record; caller releases it with kb_record_release()
 * @param[out] task_out the inline task or a zeroed task; caller releases it (may be NULL:
 *                      then an inline task is an error)
 * @return KB_OK; KB_EFORMAT with "field 'x': reason" or "invalid JSON: ..." in err;
 *         KB_ENOMEM. On failure `*out` and `*task_out` are zeroed.
 */
int kb_json_read_record(kb_record *out, kb_task *task_out, kb_json_reader *r, const char *data,
                        size_t n, const kb_log *warn, kb_error *err);

/**
 * Called for each element of a JSON array of records (kb_json_read_array). `line` is the
 * 1-based line where the element starts. Exactly one of: `rec_err` == NULL and `rec`/`task`
 * hold the record and its inline task (the callback owns and must release both), or `rec_err`
 * says why this element was rejected (`rec`/`task` zeroed). Non-zero stops the walk.
 */
typedef int (*kb_json_element_fn)(kb_record *rec, kb_task *task, size_t line,
                                  const kb_error *rec_err, void *payload);

/**
 * Parse `n` bytes holding one JSON array of records and call `fn` per element.
 * @return KB_OK; KB_EFORMAT (with the line in `*line_out` if not NULL) when the text is not
 *         one valid JSON array (nothing was delivered then); KB_ENOMEM; or the callback's
 *         non-zero return.
 */
int kb_json_read_array(kb_json_reader *r, const char *data, size_t n, const kb_log *warn,
                       kb_json_element_fn fn, void *payload, size_t *line_out,
                       kb_error *err);

/**
 * Append the canonical JSON of one record (no newline) to `out`. For a run, `with_id` = 0
 * leaves the id out (that text is what kb_json_run_id hashes).
 * @return KB_OK; KB_ENOMEM; KB_EINVAL for a record that cannot be written (no id).
 */
int kb_json_write_record(kb_buf *out, const kb_record *rec, kb_error *err);
int kb_json_write_task(kb_buf *out, const kb_task *t, kb_error *err);
int kb_json_write_run(kb_buf *out, const kb_run *r, int with_id, kb_error *err);
int kb_json_write_backbone(kb_buf *out, const kb_backbone *b, kb_error *err);
int kb_json_write_space(kb_buf *out, const kb_space *s, kb_error *err);
int kb_json_write_study(kb_buf *out, const kb_study *s, kb_error *err);

/**
 * The content id of a run: "r-" + the first 32 hex digits of the SHA-256 of its canonical
 * JSON without the id, so the same content always gets the same id.
 * @return KB_OK or KB_ENOMEM.
 */
int kb_json_run_id(char out[KB_JSON_RUN_ID_SIZE], const kb_run *r, kb_error *err);

/**
 * Check a run built by any reader (JSON, CSV, MLflow): task id present, status and direction
 * in range, cost >= 0 or unknown, finite metrics and curve values unless diverged, curve steps
 * non-decreasing and >= 0, times in order if both known. KB_EFORMAT with "field 'x': reason".
 */
int kb_json_check_run(const kb_run *r, kb_error *err);

/**
 * Put a run built by another reader (CSV, MLflow) into canonical order: config, fidelity and
 * metrics sorted by name, each curve series sorted by step (stable), the series by metric.
 * @return KB_OK; KB_EFORMAT "field 'config.x': duplicate name"; KB_ENOMEM.
 */
int kb_json_canonicalize_run(kb_run *r, kb_error *err);

/**
 * Rewrite the JSON text `data` canonically (object keys sorted, no spaces, numbers reprinted)
 * into `out`, e.g. to build a record's `extra` text. @return KB_OK; KB_EFORMAT; KB_ENOMEM.
 */
int kb_json_canonical_text(kb_buf *out, kb_json_reader *r, const char *data, size_t n,
                           kb_error *err);

/**
 * Parse an ISO-8601 time "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" into microseconds
 * since the epoch (UTC). With `naive_utc`, a missing zone means UTC and a space may stand for
 * the 'T' (pandas' datetime text). @return KB_OK or KB_EFORMAT.
 */
int kb_json_parse_time(int64_t *out, const char *s, size_t n, int naive_utc);
/** Format microseconds since the epoch as "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" (32 bytes suffice). */
void kb_json_format_time(char out[32], int64_t us);

/** Append a double as the writer prints it (shortest round-trip of 15..17 digits). */
int kb_json_put_double(kb_buf *out, double v);
/** Append `s` as a JSON string literal with escapes. */
int kb_json_put_string(kb_buf *out, const char *s);
/** Whether `n` bytes are valid UTF-8 (no overlongs, surrogates or code points > U+10FFFF). */
int kb_json_utf8_valid(const char *s, size_t n);

#ifdef __cplusplus
}
#endif

#endif
