/*
 * kb_buf: a growable byte buffer (always NUL-terminated after its contents, so text built in
 * it can be used as a C string), with little-endian and varint writers and a bounded reader
 * for decoding. Record codecs, JSON output and readers build on it.
 */
#ifndef KB_ENGINE_CORE_BUF_H
#define KB_ENGINE_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kb_buf {
    char *data;  /* owned; NULL until the first write */
    size_t len;  /* bytes used, excluding the terminating NUL */
    size_t cap;  /* bytes allocated */
} kb_buf;

#define KB_BUF_INIT {NULL, 0, 0}

/** Free the contents; the buffer is empty and reusable afterwards. */
void kb_buf_release(kb_buf *b);
/** Forget the contents but keep the allocation. */
void kb_buf_reset(kb_buf *b);
/** Make room for `extra` more bytes; KB_ENOMEM on failure (contents unchanged). */
int kb_buf_reserve(kb_buf *b, size_t extra);
int kb_buf_append(kb_buf *b, const void *p, size_t n);
int kb_buf_puts(kb_buf *b, const char *s);
int kb_buf_putc(kb_buf *b, char c);
int kb_buf_printf(kb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Unsigned LEB128 varint. */
int kb_buf_put_varint(kb_buf *b, uint64_t v);
/** Signed varint, zigzag-encoded. */
int kb_buf_put_svarint(kb_buf *b, int64_t v);
/** 8 bytes, IEEE-754 bit pattern little-endian (NaN payloads and signs preserved). */
int kb_buf_put_f64(kb_buf *b, double v);
/** varint length + bytes; NULL is written as length 0 with kb_buf_put_str. */
int kb_buf_put_bytes(kb_buf *b, const void *p, size_t n);
int kb_buf_put_str(kb_buf *b, const char *s);
/** Big-endian 64-bit, for keys that must sort as integers. */
int kb_buf_put_be64(kb_buf *b, uint64_t v);

/** A bounded reader over bytes it does not own. Reads past the end set `bad`. */
typedef struct kb_reader {
    const unsigned char *p;
    const unsigned char *end;
    int bad;
} kb_reader;

void kb_reader_init(kb_reader *r, const void *p, size_t n);
uint64_t kb_reader_varint(kb_reader *r);
int64_t kb_reader_svarint(kb_reader *r);
double kb_reader_f64(kb_reader *r);
uint64_t kb_reader_be64(kb_reader *r);
/** Borrow `*n_out` bytes of a length-prefixed field; NULL (and bad) on overrun. */
const char *kb_reader_bytes(kb_reader *r, size_t *n_out);
/** Bytes left. */
size_t kb_reader_left(const kb_reader *r);

/** Big-endian 64-bit decode of 8 bytes. */
uint64_t kb_be64_decode(const void *p);
void kb_be64_encode(void *out, uint64_t v);

#ifdef __cplusplus
}
#endif

#endif
