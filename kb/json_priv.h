/*
 * Internals of kb/json.c shared with kb/ingest.c and the tests (never installed): the record
 * arena used by ingest's batches and the choice of reading path.
 *
 * kb_json_read_record first tries a streaming reader for the common run record (kb's own
 * JSON Lines: known fields, plain strings without escapes, finite numbers). It fills the
 * kb_run directly, without the parse tree, and declines anything else — an unknown field, an
 * escape, null, an inline task, a non-finite metric, any error — which then goes through the
 * tree path unchanged. Declining is always correct: the streaming reader never reports an
 * error or a warning of its own, so every message comes from the tree path; when it accepts a
 * line, the record equals the tree path's one (tests/unit/test_json.c checks both paths on
 * every fixture line and on mutations of a run line).
 */
#ifndef KB_KB_JSON_PRIV_H
#define KB_KB_JSON_PRIV_H

#include "kb/json.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Memory for the records of one ingest batch: chunks that are kept across resets, so a
 * steady stream of batches allocates nothing. One owner (the batch); not thread-safe.
 */
typedef struct kb_json__arena kb_json__arena;

/** Caller owns `*out`; free with kb_json__arena_free(). @return KB_OK or KB_ENOMEM. */
int kb_json__arena_new(kb_json__arena **out, kb_error *err);
/** Forget every record built in the arena (their memory is reused). */
void kb_json__arena_reset(kb_json__arena *a);
void kb_json__arena_free(kb_json__arena *a);

typedef enum kb_json__path {
    KB_JSON__PATH_AUTO = 0, /* streaming reader, the tree path for what it declines */
    KB_JSON__PATH_TREE = 1  /* the tree path only (tests compare the two) */
} kb_json__path;

/**
 * kb_json_read_record with the path chosen. `*fast_out` (may be NULL) is set to 1 when the
 * streaming reader built the record, else 0. With `arena` != NULL such a record lives in the
 * arena: the caller must not kb_record_release() it (it goes with kb_json__arena_reset);
 * records from the tree path are owned as usual.
 */
int kb_json__read_record(kb_record *out, kb_task *task_out, kb_json_reader *r,
                         const char *data, size_t n, const kb_log *warn, kb_json__path path,
                         kb_json__arena *arena, int *fast_out, kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
