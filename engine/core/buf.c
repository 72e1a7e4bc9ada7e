#include "engine/core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/core/alloc.h"

void kb_buf_release(kb_buf *b)
{
    kb_free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void kb_buf_reset(kb_buf *b)
{
    b->len = 0;
    if (b->data != NULL) {
        b->data[0] = '\0';
    }
}

int kb_buf_reserve(kb_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1) {
        return KB_ENOMEM;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) {
        return KB_OK;
    }
    size_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    char *d = kb_realloc(b->data, cap);
    if (d == NULL) {
        return KB_ENOMEM;
    }
    b->data = d;
    b->cap = cap;
    return KB_OK;
}

int kb_buf_append(kb_buf *b, const void *p, size_t n)
{
    if (kb_buf_reserve(b, n) != KB_OK) {
        return KB_ENOMEM;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return KB_OK;
}

int kb_buf_puts(kb_buf *b, const char *s)
{
    return kb_buf_append(b, s, strlen(s));
}

int kb_buf_putc(kb_buf *b, char c)
{
    return kb_buf_append(b, &c, 1);
}

int kb_buf_printf(kb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return KB_ERROR;
    }
    if (kb_buf_reserve(b, (size_t)n) != KB_OK) {
        return KB_ENOMEM;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return KB_OK;
}

int kb_buf_put_varint(kb_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (unsigned char)v;
    return kb_buf_append(b, tmp, n);
}

int kb_buf_put_svarint(kb_buf *b, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    return kb_buf_put_varint(b, z);
}

int kb_buf_put_f64(kb_buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    unsigned char tmp[8];
    for (int i = 0; i < 8; i++) {
        tmp[i] = (unsigned char)(u >> (8 * i));
    }
    return kb_buf_append(b, tmp, 8);
}

int kb_buf_put_bytes(kb_buf *b, const void *p, size_t n)
{
    int rc = kb_buf_put_varint(b, n);
    return rc != KB_OK ? rc : kb_buf_append(b, p, n);
}

int kb_buf_put_str(kb_buf *b, const char *s)
{
    return kb_buf_put_bytes(b, s == NULL ? "" : s, s == NULL ? 0 : strlen(s));
}

void kb_be64_encode(void *out, uint64_t v)
{
    unsigned char *o = out;
    for (int i = 0; i < 8; i++) {
        o[i] = (unsigned char)(v >> (56 - 8 * i));
    }
}

uint64_t kb_be64_decode(const void *p)
{
    const unsigned char *c = p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | c[i];
    }
    return v;
}

int kb_buf_put_be64(kb_buf *b, uint64_t v)
{
    unsigned char tmp[8];
    kb_be64_encode(tmp, v);
    return kb_buf_append(b, tmp, 8);
}

void kb_reader_init(kb_reader *r, const void *p, size_t n)
{
    r->p = p;
    r->end = r->p + n;
    r->bad = 0;
}

size_t kb_reader_left(const kb_reader *r)
{
    return (size_t)(r->end - r->p);
}

uint64_t kb_reader_varint(kb_reader *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->bad = 1;
            return 0;
        }
        unsigned char c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if ((c & 0x80) == 0) {
            return v;
        }
    }
    r->bad = 1;
    return 0;
}

int64_t kb_reader_svarint(kb_reader *r)
{
    uint64_t z = kb_reader_varint(r);
    return (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
}

double kb_reader_f64(kb_reader *r)
{
    if (kb_reader_left(r) < 8) {
        r->bad = 1;
        r->p = r->end;
        return 0.0;
    }
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) {
        u |= (uint64_t)r->p[i] << (8 * i);
    }
    r->p += 8;
    double v;
    memcpy(&v, &u, 8);
    return v;
}

uint64_t kb_reader_be64(kb_reader *r)
{
    if (kb_reader_left(r) < 8) {
        r->bad = 1;
        r->p = r->end;
        return 0;
    }
    uint64_t v = kb_be64_decode(r->p);
    r->p += 8;
    return v;
}

const char *kb_reader_bytes(kb_reader *r, size_t *n_out)
{
    uint64_t n = kb_reader_varint(r);
    if (r->bad || n > kb_reader_left(r)) {
        r->bad = 1;
        r->p = r->end;
        *n_out = 0;
        return NULL;
    }
    const char *s = (const char *)r->p;
    r->p += n;
    *n_out = (size_t)n;
    return s;
}
