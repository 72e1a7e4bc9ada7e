/*
 * Internals of kb_codec shared with the store (never installed): peeks at fields the public
 * peeks do not cover, and decoding runs into a bump arena, for iterations that hand each
 * record to a callback as borrowed and then forget it. One allocation per block instead of
 * one per string and array; the decoded run's pointers stay valid until the arena is reset or
 * released, and the run must NOT be passed to kb_run_release.
 */
#ifndef KB_KB_CODEC_PRIV_H
#define KB_KB_CODEC_PRIV_H

#include <stddef.h>

#include "kb/codec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kb_codec__block {
    struct kb_codec__block *next;
    size_t cap, used;
    max_align_t align; /* the data after the header starts maximally aligned */
} kb_codec__block;

/** A list of blocks, newest first; a zeroed arena is empty. */
typedef struct kb_codec__arena {
    kb_codec__block *blocks;
} kb_codec__arena;

#define KB_CODEC__ARENA_INIT {NULL}

/** Forget every decoded record, keeping the newest block for reuse. */
void kb_codec__arena_reset(kb_codec__arena *a);
/** Free every block; the arena is empty and reusable. */
void kb_codec__arena_release(kb_codec__arena *a);

/**
 * kb_codec_decode_run, with every string and array carved from `a`. Same return codes; on
 * failure `*out` is zeroed (what was carved stays in the arena until its reset).
 */
int kb_codec__decode_run_in(kb_run *out, const void *p, size_t n, kb_codec__arena *a,
                            kb_error *err);

/**
 * The study_id of an encoded run (borrowed from the bytes; ptr NULL when the run has none),
 * found by skipping the fields before it without allocating. Validates the bytes up to it.
 * @return KB_OK; KB_ECORRUPT; KB_EVERSION.
 */
int kb_codec__peek_run_study(kb_codec_str *out, const void *p, size_t n, kb_error *err);

/**
 * The id, team and task_id of an encoded study, borrowed from the bytes.
 * @return KB_OK; KB_ECORRUPT (also for bytes of another kind); KB_EVERSION.
 */
int kb_codec__peek_study(kb_codec_str *id_out, kb_codec_str *team_out, kb_codec_str *task_out,
                         const void *p, size_t n, kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
