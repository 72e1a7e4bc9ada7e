/*
 * kb_codec: kb's compact binary encoding of records (task, run, backbone, space, study), as
 * stored in
 * the LMDB databases of kb/store.h. Not JSON: a record is a few hundred bytes.
 *
 * Layout (docs/FORMAT.md, section "Binary record encoding"): byte 0 is the format version
 * (KB_CODEC_VERSION), byte 1 the record kind (kb_record_kind), then the fields in a fixed order.
 * Integers are LEB128 varints (signed ones zigzag-encoded), reals are 8-byte IEEE-754 bit
 * patterns (NaN payloads, infinities and -0 survive exactly), strings are varint(length + 1)
 * followed by the bytes, with 0 meaning NULL (so "" and NULL differ), arrays are a varint count
 * followed by the elements. Curve steps are delta-encoded (zigzag) from the previous step.
 *
 * Invariant: the encoding is canonical. Equal records encode to equal bytes, and a decoder
 * accepts only bytes the encoder can produce (no trailing bytes, booleans 0/1, enums in range,
 * no NUL inside strings), so decode-then-encode gives back the input. The store relies on this
 * to tell a duplicate (same bytes) from a conflict (same id, other bytes).
 *
 * Decoding never trusts a count or length: each is checked against the bytes left before
 * anything is allocated, so corrupt input yields KB_ECORRUPT, never a crash or a huge
 * allocation.
 */
#ifndef KB_KB_CODEC_H
#define KB_KB_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/buf.h"
#include "engine/core/error.h"
#include "kb/record.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The encoding version written in byte 0. */
#define KB_CODEC_VERSION 1

/**
 * Append the encoding of a record to `out` (which is not reset first, so a caller can reuse
 * one buffer: kb_buf_reset, then encode).
 * @return KB_OK; KB_EINVAL for a field the encoding cannot represent (an enum or value type out
 *         of range, counts with a NULL array); KB_ENOMEM. On failure `out` may hold a partial
 *         encoding after its old length.
 */
int kb_codec_encode_task(kb_buf *out, const kb_task *t, kb_error *err);
int kb_codec_encode_run(kb_buf *out, const kb_run *r, kb_error *err);
int kb_codec_encode_backbone(kb_buf *out, const kb_backbone *b, kb_error *err);
int kb_codec_encode_space(kb_buf *out, const kb_space *s, kb_error *err);
int kb_codec_encode_study(kb_buf *out, const kb_study *s, kb_error *err);
/** Encode the member of `rec` named by rec->kind. */
int kb_codec_encode_record(kb_buf *out, const kb_record *rec, kb_error *err);

/**
 * Decode `n` bytes at `p` into `*out` (overwritten, not released first).
 * @return KB_OK; KB_ECORRUPT for bytes that are not a valid encoding of that kind;
 *         KB_EVERSION for an unknown format version; KB_ENOMEM. On failure `*out` is zeroed
 *         and owns nothing. On success the caller owns `*out` (kb_*_release).
 */
int kb_codec_decode_task(kb_task *out, const void *p, size_t n, kb_error *err);
int kb_codec_decode_run(kb_run *out, const void *p, size_t n, kb_error *err);
int kb_codec_decode_backbone(kb_backbone *out, const void *p, size_t n, kb_error *err);
int kb_codec_decode_space(kb_space *out, const void *p, size_t n, kb_error *err);
int kb_codec_decode_study(kb_study *out, const void *p, size_t n, kb_error *err);

/** A borrowed string inside an encoding: not NUL-terminated; ptr NULL for a NULL string. */
typedef struct kb_codec_str {
    const char *ptr;
    size_t len;
} kb_codec_str;

/**
 * The leading fields of an encoded run, read without allocating: what the store needs for
 * its indexes and filters. Strings borrow from the encoded bytes.
 */
typedef struct kb_codec_run_head {
    kb_codec_str id, task_id, space, backbone_id, team;
    kb_run_status status;
} kb_codec_run_head;

/**
 * Read the head of an encoded run (only the head is validated).
 * @return KB_OK; KB_ECORRUPT; KB_EVERSION.
 */
int kb_codec_peek_run(kb_codec_run_head *out, const void *p, size_t n, kb_error *err);

/**
 * Read the id (for a space, the name) and, for tasks, backbones and studies, the team of an encoded
 * record of kind `kind`, without allocating. `team_out` may be NULL.
 * @return KB_OK; KB_ECORRUPT (also when the bytes are of another kind); KB_EVERSION.
 */
int kb_codec_peek_id(kb_codec_str *id_out, kb_codec_str *team_out, kb_record_kind kind,
                     const void *p, size_t n, kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
