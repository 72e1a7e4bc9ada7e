#include "kb/json.h"
#include "kb/json_priv.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/core/sha256.h"

/* ------------------------------------------------------------------------------------------
 * Arena: the parse tree of one record lives in chunks that are reused for the next record.
 */

typedef struct chunk {
    struct chunk *next;
    size_t cap, used;
    /* data follows, 16-byte aligned */
} chunk;

#define CHUNK_HEADER ((sizeof(chunk) + 15u) & ~(size_t)15u)
#define CHUNK_MIN (64u * 1024u)

/* A curve point collected by the streaming run reader: its series (index), step and value */
typedef struct fpoint {
    int64_t step;
    double value;
    size_t series;
} fpoint;

struct kb_json_reader {
    chunk *first, *cur;
    fpoint *points; /* the streaming reader's curve points, reused from record to record */
    size_t cap_points;
};

int kb_json_reader_new(kb_json_reader **out, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    *out = kb_calloc(1, sizeof **out);
    if (*out == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    return KB_OK;
}

void kb_json_reader_free(kb_json_reader *r)
{
    if (r == NULL) {
        return;
    }
    chunk *c = r->first;
    while (c != NULL) {
        chunk *next = c->next;
        kb_free(c);
        c = next;
    }
    kb_free(r->points);
    kb_free(r);
}

static void arena_reset(kb_json_reader *r)
{
    for (chunk *c = r->first; c != NULL; c = c->next) {
        c->used = 0;
    }
    r->cur = r->first;
}

static void *arena_alloc_slow(kb_json_reader *r, size_t n)
{
    while (r->cur != NULL && r->cur->cap - r->cur->used < n) {
        r->cur = r->cur->next;
    }
    if (r->cur == NULL) {
        size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
        chunk *c = kb_malloc(CHUNK_HEADER + cap);
        if (c == NULL) {
            return NULL;
        }
        c->cap = cap;
        c->used = 0;
        /* new chunks go first in the walk order after the current ones: append at the end */
        c->next = NULL;
        if (r->first == NULL) {
            r->first = c;
        } else {
            chunk *last = r->first;
            while (last->next != NULL) {
                last = last->next;
            }
            last->next = c;
        }
        r->cur = c;
    }
    void *p = (char *)r->cur + CHUNK_HEADER + r->cur->used;
    r->cur->used += n;
    return p;
}

/* Every JSON node and string comes from here: the common case is inline */
static inline void *arena_alloc(kb_json_reader *r, size_t n)
{
    n = (n + 15u) & ~(size_t)15u;
    chunk *c = r->cur;
    if (c != NULL && c->cap - c->used >= n) {
        void *p = (char *)c + CHUNK_HEADER + c->used;
        c->used += n;
        return p;
    }
    return arena_alloc_slow(r, n);
}

/* ------------------------------------------------------------------------------------------
 * Parse tree.
 */

enum { JV_NULL, JV_FALSE, JV_TRUE, JV_NUM, JV_STR, JV_ARR, JV_OBJ };

typedef struct jv {
    int type;
    int is_int;          /* JV_NUM written without fraction or exponent and fits int64 */
    int has_nul;         /* JV_STR decoded a \u0000 (C strings cannot hold it) */
    size_t line;         /* 1-based line where the value starts */
    const char *key;     /* member name when inside an object */
    size_t key_n;        /* its length */
    const char *s;       /* JV_STR: decoded, NUL-terminated */
    size_t n;            /* JV_STR: length; JV_ARR/JV_OBJ: number of children */
    double d;
    int64_t i;
    struct jv *child, *last, *next;
} jv;

typedef struct jparse {
    kb_json_reader *r;
    const char *p, *end, *line_start;
    size_t line;
    int depth;
    kb_error *err;
} jparse;

static int jfail(jparse *ps, const char *what)
{
    size_t col = (size_t)(ps->p - ps->line_start) + 1;
    if (ps->p >= ps->end) {
        return kb_error_set(ps->err, KB_EFORMAT, "invalid JSON: %s at the end of the input "
                            "(truncated?)", what);
    }
    return kb_error_set(ps->err, KB_EFORMAT, "invalid JSON: %s at column %zu", what, col);
}

static int nomem(kb_error *err)
{
    return kb_error_set(err, KB_ENOMEM, "out of memory");
}

static void skip_ws_slow(jparse *ps)
{
    const char *p = ps->p;
    while (p < ps->end) {
        char c = *p;
        if (c == ' ' || c == '\t' || c == '\r') {
            p++;
        } else if (c == '\n') {
            p++;
            ps->line++;
            ps->line_start = p;
        } else {
            break;
        }
    }
    ps->p = p;
}

/* compact JSON: almost every call finds no white space, so that test is inline */
static inline void skip_ws(jparse *ps)
{
    if (ps->p < ps->end && (unsigned char)*ps->p > ' ') {
        return;
    }
    skip_ws_slow(ps);
}

/* Length of the valid UTF-8 sequence at p (p < end, *p >= 0x80), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) {
            lo = 0xA0; /* no overlongs */
        } else if (c == 0xED) {
            hi = 0x9F; /* no surrogates */
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) {
            lo = 0x90;
        } else if (c == 0xF4) {
            hi = 0x8F; /* <= U+10FFFF */
        }
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t k = 2; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return n;
}

int kb_json_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t k = utf8_seq(p, end);
        if (k == 0) {
            return 0;
        }
        p += k;
    }
    return 1;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= (unsigned)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= (unsigned)(c - 'A' + 10);
        } else {
            return -1;
        }
    }
    *out = v;
    return 0;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Parse a string literal at ps->p (which is '"'); *out is arena text, *n_out its length. */
/*
 * The bytes of `x` (8 string bytes, the first in the low byte) that need a closer look: '"',
 * '\\', a control character (< 0x20) or a non-ASCII byte (>= 0x80), as their high bits. The
 * classic "has a zero byte" test ((v - 0x01..) & ~v & 0x80..) on x ^ '"', x ^ '\\' and, for
 * < 0x20, on x against 0x20..: a borrow can flag a byte above a flagged one, never below, so
 * the lowest flag is exact. Plain ASCII text then costs a few instructions per 8 bytes.
 */
static inline uint64_t word_specials(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    uint64_t has_q = (q - ones) & ~q & highs;
    uint64_t has_b = (b - ones) & ~b & highs;
    uint64_t has_ctl = (x - ones * 0x20) & ~x & highs;
    return has_q | has_b | has_ctl | (x & highs);
}

/* The first byte at or after p that word_specials flags (or a byte near the end) */
static inline const unsigned char *skip_plain(const unsigned char *p, const unsigned char *end)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__)
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t special = word_specials(x);
        if (special != 0) {
            return p + (unsigned)__builtin_ctzll(special) / 8;
        }
        p += 8;
    }
#else
    (void)end;
#endif
    return p;
}

static int parse_string(jparse *ps, const char **out, size_t *n_out, int *has_nul)
{
    *has_nul = 0;
    const unsigned char *p = (const unsigned char *)ps->p + 1;
    const unsigned char *end = (const unsigned char *)ps->end;
    const unsigned char *start = p;
    int escaped = 0;
    /* skip to the first byte that is not plain ASCII text; the loop below takes it from there */
    p = skip_plain(p, end);
    /* pass 1: find the end, validate UTF-8 and control characters */
    for (;;) {
        if (p >= end) {
            ps->p = (const char *)p;
            return jfail(ps, "unterminated string");
        }
        unsigned c = *p;
        if (c == '"') {
            break;
        }
        if (c == '\\') {
            escaped = 1;
            p += 2;
            continue;
        }
        if (c < 0x20) {
            ps->p = (const char *)p;
            return jfail(ps, "control character in string");
        }
        if (c >= 0x80) {
            size_t k = utf8_seq(p, end);
            if (k == 0) {
                ps->p = (const char *)p;
                size_t col = (size_t)(ps->p - ps->line_start) + 1;
                return kb_error_set(ps->err, KB_EFORMAT, "invalid UTF-8 at column %zu", col);
            }
            p += k;
            continue;
        }
        p++;
    }
    size_t raw = (size_t)(p - start);
    char *o = arena_alloc(ps->r, raw + 1);
    if (o == NULL) {
        return nomem(ps->err);
    }
    *out = o;
    if (!escaped) {
        memcpy(o, start, raw);
        o[raw] = '\0';
        *n_out = raw;
        ps->p = (const char *)p + 1;
        return KB_OK;
    }
    /* pass 2: decode escapes; the output is never longer than the input */
    char *o0 = o;
    const unsigned char *q = start;
    while (q < p) {
        if (*q != '\\') {
            *o++ = (char)*q++;
            continue;
        }
        ps->p = (const char *)q;
        if (q + 1 >= p) {
            return jfail(ps, "bad escape");
        }
        char e = (char)q[1];
        q += 2;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp;
            if (p - q < 4 || hex4((const char *)q, &cp) != 0) {
                return jfail(ps, "bad \\u escape");
            }
            q += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return jfail(ps, "lone low surrogate in \\u escape");
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (p - q < 6 || q[0] != '\\' || q[1] != 'u' ||
                    hex4((const char *)q + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF) {
                    return jfail(ps, "lone high surrogate in \\u escape");
                }
                q += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            *has_nul |= cp == 0;
            o = put_utf8(o, cp);
            break;
        }
        default: return jfail(ps, "bad escape");
        }
    }
    *o = '\0';
    *n_out = (size_t)(o - o0);
    ps->p = (const char *)p + 1;
    return KB_OK;
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int parse_number(jparse *ps, jv *v)
{
    const char *p = ps->p, *end = ps->end, *start = p;
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9') {
        ps->p = p;
        return jfail(ps, "bad number");
    }
    uint64_t mant = 0;
    int digits = 0, drop = 0; /* significant digits kept; integer digits not kept */
    if (*p == '0') {
        p++;
        if (p < end && *p >= '0' && *p <= '9') {
            ps->p = p;
            return jfail(ps, "leading zero in number");
        }
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                digits += mant != 0;
            } else {
                drop++;
            }
            p++;
        }
    }
    int is_int = 1, frac = 0;
    if (p < end && *p == '.') {
        is_int = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9') {
            ps->p = p;
            return jfail(ps, "bad number");
        }
        while (p < end && *p >= '0' && *p <= '9') {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                digits += mant != 0;
                frac++;
            }
            p++;
        }
    }
    long exp10 = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        is_int = 0;
        p++;
        int eneg = 0;
        if (p < end && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p >= end || *p < '0' || *p > '9') {
            ps->p = p;
            return jfail(ps, "bad number");
        }
        while (p < end && *p >= '0' && *p <= '9') {
            if (exp10 < 100000) {
                exp10 = exp10 * 10 + (*p - '0');
            }
            p++;
        }
        if (eneg) {
            exp10 = -exp10;
        }
    }
    ps->p = p;
    v->type = JV_NUM;
    long e = exp10 - frac + drop;
    if (is_int && drop == 0 && (mant <= (uint64_t)INT64_MAX || (neg && mant == (uint64_t)INT64_MAX + 1))) {
        v->is_int = 1;
        v->i = neg ? (int64_t)(0 - mant) : (int64_t)mant;
        v->d = (double)v->i;
        return KB_OK;
    }
    /* Clinger's fast path: both factors exact doubles, one correctly rounded operation */
    if (drop == 0 && mant < (1ull << 53) && e >= -22 && e <= 22) {
        double d = (double)mant;
        d = e < 0 ? d / pow10_exact[-e] : d * pow10_exact[e];
        v->d = neg ? -d : d;
        return KB_OK;
    }
    char tmp[64];
    size_t len = (size_t)(p - start);
    char *heap = NULL, *txt = tmp;
    if (len >= sizeof tmp) {
        heap = kb_malloc(len + 1);
        if (heap == NULL) {
            return nomem(ps->err);
        }
        txt = heap;
    }
    memcpy(txt, start, len);
    txt[len] = '\0';
    v->d = strtod(txt, NULL);
    kb_free(heap);
    return KB_OK;
}

static int parse_value(jparse *ps, jv **out);

static int literal(jparse *ps, const char *word, size_t n)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
        return jfail(ps, "unexpected character");
    }
    ps->p += n;
    return KB_OK;
}

static int key_cmp(const void *a, const void *b)
{
    const jv *x = *(const jv *const *)a, *y = *(const jv *const *)b;
    return strcmp(x->key, y->key);
}

static int check_duplicate_keys(jparse *ps, jv *obj)
{
    if (obj->n < 2) {
        return KB_OK;
    }
    if (obj->n <= 16) {
        for (jv *a = obj->child; a != NULL; a = a->next) {
            for (jv *b = a->next; b != NULL; b = b->next) {
                if (a->key_n == b->key_n && memcmp(a->key, b->key, a->key_n) == 0) {
                    return kb_error_set(ps->err, KB_EFORMAT, "field '%s': duplicate key",
                                        a->key);
                }
            }
        }
        return KB_OK;
    }
    jv **v = kb_malloc_array(obj->n, sizeof *v);
    if (v == NULL) {
        return nomem(ps->err);
    }
    size_t k = 0;
    for (jv *a = obj->child; a != NULL; a = a->next) {
        v[k++] = a;
    }
    qsort(v, k, sizeof *v, key_cmp);
    int rc = KB_OK;
    for (size_t j = 1; j < k; j++) {
        if (strcmp(v[j - 1]->key, v[j]->key) == 0) {
            rc = kb_error_set(ps->err, KB_EFORMAT, "field '%s': duplicate key", v[j]->key);
            break;
        }
    }
    kb_free(v);
    return rc;
}

static int parse_container(jparse *ps, jv *v, int is_obj)
{
    if (++ps->depth > KB_JSON_MAX_DEPTH) {
        return jfail(ps, "nesting too deep");
    }
    v->type = is_obj ? JV_OBJ : JV_ARR;
    char close = is_obj ? '}' : ']';
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return KB_OK;
    }
    for (;;) {
        const char *key = NULL;
        size_t key_n = 0;
        if (is_obj) {
            if (ps->p >= ps->end || *ps->p != '"') {
                return jfail(ps, "expected a string key");
            }
            int key_nul;
            int rc = parse_string(ps, &key, &key_n, &key_nul);
            if (rc != KB_OK) {
                return rc;
            }
            if (key_nul) {
                return jfail(ps, "NUL character in key");
            }
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                return jfail(ps, "expected ':'");
            }
            ps->p++;
            skip_ws(ps);
        }
        jv *child;
        int rc = parse_value(ps, &child);
        if (rc != KB_OK) {
            return rc;
        }
        child->key = key;
        child->key_n = key_n;
        if (v->last == NULL) {
            v->child = child;
        } else {
            v->last->next = child;
        }
        v->last = child;
        v->n++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            break;
        }
        return jfail(ps, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    ps->depth--;
    return is_obj ? check_duplicate_keys(ps, v) : KB_OK;
}

static int parse_value(jparse *ps, jv **out)
{
    jv *v = arena_alloc(ps->r, sizeof *v);
    if (v == NULL) {
        return nomem(ps->err);
    }
    *v = (jv){.line = ps->line};
    *out = v;
    if (ps->p >= ps->end) {
        return jfail(ps, "expected a value");
    }
    switch (*ps->p) {
    case '{': return parse_container(ps, v, 1);
    case '[': return parse_container(ps, v, 0);
    case '"': v->type = JV_STR; return parse_string(ps, &v->s, &v->n, &v->has_nul);
    case 't': v->type = JV_TRUE; return literal(ps, "true", 4);
    case 'f': v->type = JV_FALSE; return literal(ps, "false", 5);
    case 'n': v->type = JV_NULL; return literal(ps, "null", 4);
    case 'N':
    case 'I': return jfail(ps, "NaN and Infinity are not JSON (write \"nan\", \"inf\")");
    default:
        if (*ps->p == '-' && ps->end - ps->p > 1 && ps->p[1] == 'I') {
            return jfail(ps, "NaN and Infinity are not JSON (write \"-inf\")");
        }
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) {
            return parse_number(ps, v);
        }
        return jfail(ps, "unexpected character");
    }
}

/* Parse a whole text as one JSON value; trailing non-space bytes are an error. */
static int parse_text(jv **out, kb_json_reader *r, const char *data, size_t n, kb_error *err)
{
    arena_reset(r);
    jparse ps = {r, data, data + n, data, 1, 0, err};
    skip_ws(&ps);
    int rc = parse_value(&ps, out);
    if (rc != KB_OK) {
        return rc;
    }
    skip_ws(&ps);
    if (ps.p != ps.end) {
        return jfail(&ps, "unexpected data after the JSON value");
    }
    return KB_OK;
}

/* ------------------------------------------------------------------------------------------
 * Tree -> record.
 */

static int field_err(kb_error *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int field_err(kb_error *err, const char *field, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return kb_error_set(err, KB_EFORMAT, "field '%s': %s", field, why);
}

static const char *type_name(const jv *v)
{
    static const char *const names[] = {"null", "false", "true", "a number",
                                        "a string", "an array", "an object"};
    return names[v->type];
}

static int want(const jv *v, int type, const char *field, const char *what, kb_error *err)
{
    if (v->type != type) {
        char why[96];
        snprintf(why, sizeof why, "expected %s, got %s", what, type_name(v));
        return field_err(err, field, "%s", why);
    }
    return KB_OK;
}

/* A string field: NULL when JSON null and `nullable`; non-empty when `nonempty`. */
static int get_str(char **out, const jv *v, const char *field, int nullable, int nonempty,
                   kb_error *err)
{
    if (v->type == JV_NULL && nullable) {
        kb_free(*out);
        *out = NULL;
        return KB_OK;
    }
    int rc = want(v, JV_STR, field, "a string", err);
    if (rc != KB_OK) {
        return rc;
    }
    if (v->has_nul) {
        return field_err(err, field, "contains a NUL character");
    }
    if (nonempty && v->n == 0) {
        return field_err(err, field, "must not be empty");
    }
    char *s = kb_strndup(v->s, v->n);
    if (s == NULL) {
        return nomem(err);
    }
    kb_free(*out);
    *out = s;
    return KB_OK;
}

static int get_finite(double *out, const jv *v, const char *field, kb_error *err)
{
    int rc = want(v, JV_NUM, field, "a number", err);
    if (rc != KB_OK) {
        return rc;
    }
    if (!isfinite(v->d)) {
        return field_err(err, field, "number out of range");
    }
    *out = v->d;
    return KB_OK;
}

/* A metric or curve value: a finite number or "nan", "inf", "-inf". */
static int get_metric(double *out, const jv *v, const char *field, kb_error *err)
{
    if (v->type == JV_STR) {
        if (strcmp(v->s, "nan") == 0) {
            *out = NAN;
            return KB_OK;
        }
        if (strcmp(v->s, "inf") == 0) {
            *out = INFINITY;
            return KB_OK;
        }
        if (strcmp(v->s, "-inf") == 0) {
            *out = -INFINITY;
            return KB_OK;
        }
    } else if (v->type == JV_NUM) {
        return get_finite(out, v, field, err);
    }
    return field_err(err, field, "expected a number or \"nan\", \"inf\", \"-inf\", got %s",
                     v->type == JV_STR ? "another string" : type_name(v));
}

static int get_time(int64_t *out, const jv *v, const char *field, kb_error *err)
{
    if (v->type == JV_NULL) {
        *out = KB_TIME_UNKNOWN;
        return KB_OK;
    }
    int rc = want(v, JV_STR, field, "a time string", err);
    if (rc == KB_OK && kb_json_parse_time(out, v->s, v->n, 0) != KB_OK) {
        rc = field_err(err, field,
                       "expected an ISO-8601 UTC time like 2024-05-01T12:00:00.5Z, got '%.40s'",
                       v->s);
    }
    return rc;
}

static int get_value(kb_value *out, const jv *v, const char *field, kb_error *err)
{
    memset(out, 0, sizeof *out);
    switch (v->type) {
    case JV_NULL: return KB_OK; /* not set */
    case JV_TRUE:
    case JV_FALSE:
        out->type = KB_VALUE_TYPE_BOOL;
        out->b = v->type == JV_TRUE;
        return KB_OK;
    case JV_NUM:
        if (v->is_int) {
            out->type = KB_VALUE_TYPE_INT;
            out->i = v->i;
            return KB_OK;
        }
        out->type = KB_VALUE_TYPE_FLOAT;
        return get_finite(&out->f, v, field, err);
    case JV_STR:
        if (v->has_nul) {
            return field_err(err, field, "contains a NUL character");
        }
        out->type = KB_VALUE_TYPE_STR;
        out->s = kb_strndup(v->s, v->n);
        return out->s == NULL ? nomem(err) : KB_OK;
    default:
        return field_err(err, field, "expected a number, string or bool, got %s", type_name(v));
    }
}

static void path2(char *out, size_t n, const char *a, const char *b)
{
    snprintf(out, n, "%s.%s", a, b);
}

/* A value get_value accepts without an error (so without needing the field's path). */
static int simple_value(const jv *m)
{
    switch (m->type) {
    case JV_NULL:
    case JV_TRUE:
    case JV_FALSE: return 1;
    case JV_NUM: return m->is_int || isfinite(m->d);
    case JV_STR: return !m->has_nul;
    default: return 0;
    }
}

/* An object of typed values (config, fidelity) -> params sorted by name; null = not set. */
static int get_params(kb_param **out, size_t *n_out, const jv *v, const char *field,
                      kb_error *err)
{
    kb_params_free(*out, *n_out);
    *out = NULL;
    *n_out = 0;
    if (v->type == JV_NULL) {
        return KB_OK;
    }
    int rc = want(v, JV_OBJ, field, "an object", err);
    if (rc != KB_OK || v->n == 0) {
        return rc;
    }
    kb_param *p = kb_calloc(v->n, sizeof *p);
    if (p == NULL) {
        return nomem(err);
    }
    size_t k = 0;
    for (const jv *m = v->child; m != NULL; m = m->next) {
        char path[160] = "";
        if (!simple_value(m)) { /* the path is needed only for an error message */
            path2(path, sizeof path, field, m->key);
        }
        rc = get_value(&p[k].value, m, path, err);
        if (rc != KB_OK) {
            break;
        }
        if (p[k].value.type == KB_VALUE_TYPE_NONE) {
            continue;
        }
        p[k].name = kb_strndup(m->key, m->key_n);
        if (p[k].name == NULL) {
            kb_value_release(&p[k].value);
            rc = nomem(err);
            break;
        }
        k++;
    }
    if (rc != KB_OK) {
        kb_params_free(p, k);
        return rc;
    }
    /* exports (and most writers) already list the names in order: skip the sort then */
    size_t i = 1;
    while (i < k && strcmp(p[i - 1].name, p[i].name) < 0) {
        i++;
    }
    if (i < k) {
        kb_params_sort(p, k);
    }
    *out = p;
    *n_out = k;
    return KB_OK;
}

static int metric_cmp(const void *a, const void *b)
{
    return strcmp(((const kb_metric *)a)->name, ((const kb_metric *)b)->name);
}

static void metrics_free(kb_metric *m, size_t n)
{
    for (size_t i = 0; m != NULL && i < n; i++) {
        kb_free(m[i].name);
    }
    kb_free(m);
}

/* name -> number object (metrics, meta-features). `nullable_values`: null = NaN (missing). */
static int get_metrics(kb_metric **out, size_t *n_out, const jv *v, const char *field,
                       int features, kb_error *err)
{
    metrics_free(*out, *n_out);
    *out = NULL;
    *n_out = 0;
    if (v->type == JV_NULL) {
        return KB_OK;
    }
    int rc = want(v, JV_OBJ, field, "an object", err);
    if (rc != KB_OK || v->n == 0) {
        return rc;
    }
    kb_metric *m = kb_calloc(v->n, sizeof *m);
    if (m == NULL) {
        return nomem(err);
    }
    size_t k = 0;
    for (const jv *c = v->child; c != NULL; c = c->next) {
        char path[160];
        m[k].value = c->d;
        if (c->type != JV_NUM || !isfinite(c->d)) { /* slow path: null, strings, errors */
            path2(path, sizeof path, field, c->key);
            if (features) {
                m[k].value = NAN;
                rc = c->type == JV_NULL ? KB_OK : get_finite(&m[k].value, c, path, err);
            } else {
                rc = get_metric(&m[k].value, c, path, err);
            }
        }
        if (rc != KB_OK) {
            break;
        }
        m[k].name = kb_strndup(c->key, c->key_n);
        if (m[k].name == NULL) {
            rc = nomem(err);
            break;
        }
        k++;
    }
    if (rc != KB_OK) {
        metrics_free(m, k);
        return rc;
    }
    qsort(m, k, sizeof *m, metric_cmp);
    *out = m;
    *n_out = k;
    return KB_OK;
}

/* Growable series used while reading curve rows. */
typedef struct series_b {
    kb_series s;
    size_t cap;
} series_b;

/* `first_cap`: the number of rows, so a metric present in every row allocates once */
static int series_push(series_b *b, int64_t step, double value, size_t first_cap)
{
    if (b->s.n == b->cap) {
        size_t cap = b->cap == 0 ? (first_cap > 4 ? first_cap : 4) : b->cap * 2;
        int64_t *st = kb_realloc_array(b->s.steps, cap, sizeof *st);
        if (st == NULL) {
            return KB_ENOMEM;
        }
        b->s.steps = st;
        double *va = kb_realloc_array(b->s.values, cap, sizeof *va);
        if (va == NULL) {
            return KB_ENOMEM;
        }
        b->s.values = va;
        b->cap = cap;
    }
    b->s.steps[b->s.n] = step;
    b->s.values[b->s.n] = value;
    b->s.n++;
    return KB_OK;
}

typedef struct point {
    int64_t step;
    double value;
    size_t seq;
} point;

static int point_cmp(const void *a, const void *b)
{
    const point *x = a, *y = b;
    if (x->step != y->step) {
        return x->step < y->step ? -1 : 1;
    }
    return (x->seq > y->seq) - (x->seq < y->seq); /* stable */
}

/* Sort a series by step, keeping the input order of equal steps. */
static int series_sort(kb_series *s)
{
    size_t i = 1;
    while (i < s->n && s->steps[i - 1] <= s->steps[i]) {
        i++;
    }
    if (i >= s->n) {
        return KB_OK;
    }
    point *p = kb_malloc_array(s->n, sizeof *p);
    if (p == NULL) {
        return KB_ENOMEM;
    }
    for (size_t k = 0; k < s->n; k++) {
        p[k] = (point){s->steps[k], s->values[k], k};
    }
    qsort(p, s->n, sizeof *p, point_cmp);
    for (size_t k = 0; k < s->n; k++) {
        s->steps[k] = p[k].step;
        s->values[k] = p[k].value;
    }
    kb_free(p);
    return KB_OK;
}

static int series_cmp(const void *a, const void *b)
{
    return strcmp(((const kb_series *)a)->metric, ((const kb_series *)b)->metric);
}

/* Rows [{"step": 0, "loss": 1.9}, ...] -> one series per metric, sorted by metric name. */
static int get_curve(kb_run *run, const jv *v, kb_error *err)
{
    if (v->type == JV_NULL) {
        return KB_OK;
    }
    int rc = want(v, JV_ARR, "curve", "an array of {\"step\": ...} rows", err);
    if (rc != KB_OK) {
        return rc;
    }
    series_b *sb = NULL;
    size_t n_sb = 0, cap_sb = 0, row = 0;
    for (const jv *r = v->child; r != NULL && rc == KB_OK; r = r->next, row++) {
        char path[160];
        if (r->type != JV_OBJ) {
            snprintf(path, sizeof path, "curve[%zu]", row);
            rc = want(r, JV_OBJ, path, "an object", err);
            break;
        }
        const jv *step = NULL;
        for (const jv *c = r->child; c != NULL && step == NULL; c = c->next) {
            if (c->key_n == 4 && memcmp(c->key, "step", 4) == 0) {
                step = c;
            }
        }
        if (step == NULL || step->type != JV_NUM || !step->is_int || step->i < 0) {
            snprintf(path, sizeof path, "curve[%zu].step", row);
            rc = field_err(err, path, step == NULL ? "required" : "expected a non-negative "
                           "integer");
            break;
        }
        size_t hint = 0;
        for (const jv *c = r->child; c != NULL; c = c->next) {
            if (c == step || c->type == JV_NULL) {
                continue;
            }
            hint++;
            double val = c->d;
            if (c->type != JV_NUM || !isfinite(c->d)) {
                snprintf(path, sizeof path, "curve[%zu].%s", row, c->key);
                rc = get_metric(&val, c, path, err);
                if (rc != KB_OK) {
                    break;
                }
            }
            /* rows usually repeat the same keys in the same order: try the hinted slot first */
            size_t j = hint - 1 < n_sb && strcmp(sb[hint - 1].s.metric, c->key) == 0 ? hint - 1 : n_sb;
            for (size_t k = 0; j == n_sb && k < n_sb; k++) {
                if (strcmp(sb[k].s.metric, c->key) == 0) {
                    j = k;
                }
            }
            if (j == n_sb) {
                if (n_sb == cap_sb) {
                    size_t cap = cap_sb < 4 ? 4 : cap_sb * 2;
                    series_b *nb = kb_realloc_array(sb, cap, sizeof *nb);
                    if (nb == NULL) {
                        rc = nomem(err);
                        break;
                    }
                    sb = nb;
                    cap_sb = cap;
                }
                memset(&sb[n_sb], 0, sizeof sb[n_sb]);
                sb[n_sb].s.metric = kb_strndup(c->key, c->key_n);
                if (sb[n_sb].s.metric == NULL) {
                    rc = nomem(err);
                    break;
                }
                n_sb++;
            }
            if (series_push(&sb[j], step->i, val, v->n) != KB_OK) {
                rc = nomem(err);
                break;
            }
        }
    }
    kb_series *curve = NULL;
    if (rc == KB_OK && n_sb > 0) {
        curve = kb_malloc_array(n_sb, sizeof *curve);
        if (curve == NULL) {
            rc = nomem(err);
        }
    }
    if (rc != KB_OK) {
        for (size_t k = 0; k < n_sb; k++) {
            kb_series_release(&sb[k].s);
        }
        kb_free(sb);
        return rc;
    }
    for (size_t k = 0; k < n_sb; k++) {
        curve[k] = sb[k].s;
    }
    kb_free(sb);
    run->curve = curve;
    run->n_curve = n_sb;
    for (size_t k = 0; k < n_sb; k++) {
        if (series_sort(&curve[k]) != KB_OK) {
            return nomem(err);
        }
    }
    if (n_sb > 1) {
        qsort(curve, n_sb, sizeof *curve, series_cmp);
    }
    return KB_OK;
}

static int get_strings(char ***out, size_t *n_out, const jv *v, const char *field,
                       kb_error *err)
{
    if (v->type == JV_NULL) {
        return KB_OK;
    }
    int rc = want(v, JV_ARR, field, "an array of strings", err);
    if (rc != KB_OK || v->n == 0) {
        return rc;
    }
    char **s = kb_calloc(v->n, sizeof *s);
    if (s == NULL) {
        return nomem(err);
    }
    size_t k = 0;
    for (const jv *c = v->child; c != NULL; c = c->next) {
        char path[160];
        snprintf(path, sizeof path, "%s[%zu]", field, k);
        rc = get_str(&s[k], c, path, 0, 0, err);
        if (rc != KB_OK) {
            break;
        }
        k++;
    }
    if (rc != KB_OK) {
        for (size_t j = 0; j < k; j++) {
            kb_free(s[j]);
        }
        kb_free(s);
        return rc;
    }
    *out = s;
    *n_out = k;
    return KB_OK;
}

/* Unknown members collected for `extra`, plus the input's own "extra" object. */
typedef struct extras {
    const jv *items[64];
    size_t n;
    const jv *given; /* the "extra" member, an object, or NULL */
} extras;

static int add_unknown(extras *x, const jv *m, const char *kind, const kb_log *warn,
                       kb_error *err)
{
    if (x == NULL) {
        kb_log_printf(warn, KB_LOG_LEVEL_WARNING, "field '%s': unknown %s field ignored",
                      m->key, kind);
        return KB_OK;
    }
    if (x->n == sizeof x->items / sizeof x->items[0]) {
        return field_err(err, m->key, "too many unknown fields (at most 64)");
    }
    x->items[x->n++] = m;
    kb_log_printf(warn, KB_LOG_LEVEL_WARNING, "field '%s': unknown %s field kept under 'extra'",
                  m->key, kind);
    return KB_OK;
}

typedef struct jw {
    kb_buf *b;
    int bad;
} jw;

static void w_raw(jw *w, const char *s, size_t n)
{
    if (!w->bad && kb_buf_append(w->b, s, n) != KB_OK) {
        w->bad = 1;
    }
}

static void w_str(jw *w, const char *s)
{
    if (!w->bad && kb_json_put_string(w->b, s) != KB_OK) {
        w->bad = 1;
    }
}

static void w_double(jw *w, double d)
{
    if (!w->bad && kb_json_put_double(w->b, d) != KB_OK) {
        w->bad = 1;
    }
}

static void w_float_typed(jw *w, double d);
static void w_int(jw *w, int64_t i)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)i);
    w_raw(w, tmp, (size_t)n);
}

static int jv_ptr_cmp(const void *a, const void *b)
{
    return key_cmp(a, b);
}

/* Canonical JSON of a parsed value: keys sorted, no spaces, numbers reprinted. */
static void w_jv(jw *w, const jv *v, kb_json_reader *r)
{
    switch (v->type) {
    case JV_NULL: w_raw(w, "null", 4); return;
    case JV_TRUE: w_raw(w, "true", 4); return;
    case JV_FALSE: w_raw(w, "false", 5); return;
    case JV_NUM:
        if (v->is_int) {
            w_int(w, v->i);
        } else {
            w_float_typed(w, v->d);
        }
        return;
    case JV_STR: w_str(w, v->s); return;
    case JV_ARR:
        w_raw(w, "[", 1);
        for (const jv *c = v->child; c != NULL; c = c->next) {
            if (c != v->child) {
                w_raw(w, ",", 1);
            }
            w_jv(w, c, r);
        }
        w_raw(w, "]", 1);
        return;
    default: {
        const jv **items = v->n > 0 ? arena_alloc(r, v->n * sizeof *items) : NULL;
        if (v->n > 0 && items == NULL) {
            w->bad = 1;
            return;
        }
        size_t k = 0;
        for (const jv *c = v->child; c != NULL; c = c->next) {
            items[k++] = c;
        }
        if (k > 1) {
            qsort(items, k, sizeof *items, jv_ptr_cmp);
        }
        w_raw(w, "{", 1);
        for (size_t j = 0; j < k; j++) {
            if (j > 0) {
                w_raw(w, ",", 1);
            }
            w_str(w, items[j]->key);
            w_raw(w, ":", 1);
            w_jv(w, items[j], r);
        }
        w_raw(w, "}", 1);
        return;
    }
    }
}

/* Build the canonical `extra` text from the "extra" object and the unknown fields. */
static int build_extra(char **out, extras *x, kb_json_reader *r, kb_error *err)
{
    size_t n = x->n + (x->given != NULL ? x->given->n : 0);
    if (n == 0) {
        return KB_OK;
    }
    const jv **items = arena_alloc(r, n * sizeof *items);
    if (items == NULL) {
        return nomem(err);
    }
    size_t k = 0;
    if (x->given != NULL) {
        for (const jv *c = x->given->child; c != NULL; c = c->next) {
            items[k++] = c;
        }
    }
    for (size_t j = 0; j < x->n; j++) {
        items[k++] = x->items[j];
    }
    qsort(items, k, sizeof *items, jv_ptr_cmp);
    for (size_t j = 1; j < k; j++) {
        if (strcmp(items[j - 1]->key, items[j]->key) == 0) {
            return field_err(err, items[j]->key, "given both as a field and inside 'extra'");
        }
    }
    kb_buf b = KB_BUF_INIT;
    jw w = {&b, 0};
    w_raw(&w, "{", 1);
    for (size_t j = 0; j < k; j++) {
        if (j > 0) {
            w_raw(&w, ",", 1);
        }
        w_str(&w, items[j]->key);
        w_raw(&w, ":", 1);
        w_jv(&w, items[j], r);
    }
    w_raw(&w, "}", 1);
    if (w.bad) {
        kb_buf_release(&b);
        return nomem(err);
    }
    kb_free(*out);
    *out = b.data;
    return KB_OK;
}

static int take_extra(extras *x, const jv *m, kb_error *err)
{
    if (m->type == JV_NULL) {
        return KB_OK;
    }
    int rc = want(m, JV_OBJ, "extra", "an object", err);
    if (rc == KB_OK) {
        x->given = m;
    }
    return rc;
}

#define KEY(name) (m->key_n == sizeof(name) - 1 && memcmp(m->key, name, sizeof(name) - 1) == 0)

static int read_task(kb_task *t, const jv *o, kb_json_reader *r, const kb_log *warn,
                     kb_error *err)
{
    extras x = {{0}, 0, NULL};
    t->created_at = KB_TIME_UNKNOWN;
    int rc = KB_OK;
    for (const jv *m = o->child; m != NULL && rc == KB_OK; m = m->next) {
        if (KEY("kind")) {
            continue;
        } else if (KEY("id")) {
            rc = get_str(&t->id, m, "id", 0, 1, err);
        } else if (KEY("name")) {
            rc = get_str(&t->name, m, "name", 1, 0, err);
        } else if (KEY("fingerprint")) {
            rc = get_str(&t->fingerprint, m, "fingerprint", 1, 1, err);
        } else if (KEY("type")) {
            char *s = NULL;
            rc = get_str(&s, m, "type", 1, 0, err);
            if (rc == KB_OK && s != NULL && kb_task_type_parse(&t->type, s) != KB_OK) {
                rc = field_err(err, "type",
                               "unknown task type '%.40s' (expected classification, "
                               "regression or unknown)",
                               s);
            }
            kb_free(s);
        } else if (KEY("target")) {
            rc = get_str(&t->target, m, "target", 1, 0, err);
        } else if (KEY("features")) {
            rc = get_metrics(&t->features, &t->n_features, m, "features", 1, err);
        } else if (KEY("feature_set")) {
            rc = get_str(&t->feature_set, m, "feature_set", 1, 0, err);
        } else if (KEY("tags")) {
            rc = get_strings(&t->tags, &t->n_tags, m, "tags", err);
        } else if (KEY("team")) {
            rc = get_str(&t->team, m, "team", 1, 0, err);
        } else if (KEY("created_at")) {
            rc = get_time(&t->created_at, m, "created_at", err);
        } else if (KEY("extra")) {
            rc = take_extra(&x, m, err);
        } else {
            rc = add_unknown(&x, m, "task", warn, err);
        }
    }
    if (rc == KB_OK && t->id == NULL) {
        if (t->fingerprint == NULL) {
            return field_err(err, "id", "required (or a 'fingerprint' to derive it from)");
        }
        char id[19];
        snprintf(id, sizeof id, "t-%.16s", t->fingerprint);
        t->id = kb_strdup(id);
        if (t->id == NULL) {
            return nomem(err);
        }
    }
    return rc == KB_OK ? build_extra(&t->extra, &x, r, err) : rc;
}

static int read_backbone(kb_backbone *b, const jv *o, kb_json_reader *r, const kb_log *warn,
                         kb_error *err)
{
    extras x = {{0}, 0, NULL};
    b->created_at = KB_TIME_UNKNOWN;
    int rc = KB_OK;
    for (const jv *m = o->child; m != NULL && rc == KB_OK; m = m->next) {
        if (KEY("kind")) {
            continue;
        } else if (KEY("id")) {
            rc = get_str(&b->id, m, "id", 0, 1, err);
        } else if (KEY("family")) {
            rc = get_str(&b->family, m, "family", 1, 0, err);
        } else if (KEY("arch")) {
            rc = get_str(&b->arch, m, "arch", 1, 0, err);
        } else if (KEY("input_signature")) {
            rc = get_str(&b->input_signature, m, "input_signature", 1, 0, err);
        } else if (KEY("source_task")) {
            rc = get_str(&b->source_task, m, "source_task", 1, 1, err);
        } else if (KEY("uri")) {
            rc = get_str(&b->uri, m, "uri", 1, 0, err);
        } else if (KEY("team")) {
            rc = get_str(&b->team, m, "team", 1, 0, err);
        } else if (KEY("created_at")) {
            rc = get_time(&b->created_at, m, "created_at", err);
        } else if (KEY("extra")) {
            rc = take_extra(&x, m, err);
        } else {
            rc = add_unknown(&x, m, "backbone", warn, err);
        }
    }
    if (rc == KB_OK && b->id == NULL) {
        return field_err(err, "id", "required");
    }
    return rc == KB_OK ? build_extra(&b->extra, &x, r, err) : rc;
}

static int read_space_param(kb_space_param *p, const jv *o, const char *field,
                            const kb_log *warn, kb_error *err)
{
    char path[160];
    int rc = want(o, JV_OBJ, field, "an object", err);
    int have_low = 0, have_high = 0;
    for (const jv *m = o != NULL ? o->child : NULL; m != NULL && rc == KB_OK; m = m->next) {
        path2(path, sizeof path, field, m->key);
        if (KEY("name")) {
            rc = get_str(&p->name, m, path, 0, 1, err);
        } else if (KEY("type")) {
            rc = want(m, JV_STR, path, "a string", err);
            if (rc != KB_OK) {
                break;
            }
            static const char *const types[] = {"float", "int", "categorical", "bool"};
            p->type = 0;
            for (int k = 0; k < 4; k++) {
                if (strcmp(m->s, types[k]) == 0) {
                    p->type = (kb_space_param_type)(k + 1);
                }
            }
            if (p->type == 0) {
                rc = field_err(err, path,
                               "unknown parameter type '%.40s' (expected float, int, "
                               "categorical or bool)",
                               m->s);
            }
        } else if (KEY("low")) {
            rc = get_finite(&p->low, m, path, err);
            have_low = 1;
        } else if (KEY("high")) {
            rc = get_finite(&p->high, m, path, err);
            have_high = 1;
        } else if (KEY("log")) {
            if (m->type != JV_TRUE && m->type != JV_FALSE) {
                rc = want(m, JV_TRUE, path, "a bool", err);
            }
            p->log = m->type == JV_TRUE;
        } else if (KEY("choices")) {
            rc = get_strings(&p->choices, &p->n_choices, m, path, err);
        } else if (KEY("default_value")) {
            rc = get_value(&p->default_value, m, path, err);
        } else if (KEY("cond_parent")) {
            rc = get_str(&p->cond_parent, m, path, 1, 1, err);
        } else if (KEY("cond_in")) {
            rc = get_strings(&p->cond_in, &p->n_cond_in, m, path, err);
        } else {
            kb_log_printf(warn, KB_LOG_LEVEL_WARNING, "field '%s': unknown field ignored",
                          path);
        }
    }
    if (rc != KB_OK) {
        return rc;
    }
    if (p->name == NULL) {
        path2(path, sizeof path, field, "name");
        return field_err(err, path, "required");
    }
    if (p->type == 0) {
        path2(path, sizeof path, field, "type");
        return field_err(err, path, "required");
    }
    if ((p->type == KB_SPACE_PARAM_FLOAT || p->type == KB_SPACE_PARAM_INT) &&
        (!have_low || !have_high)) {
        path2(path, sizeof path, field, have_low ? "high" : "low");
        return field_err(err, path, "required for a float or int parameter");
    }
    return KB_OK;
}

static int read_space(kb_space *s, const jv *o, const kb_log *warn, kb_error *err)
{
    int rc = KB_OK;
    for (const jv *m = o->child; m != NULL && rc == KB_OK; m = m->next) {
        if (KEY("kind")) {
            continue;
        } else if (KEY("name")) {
            rc = get_str(&s->name, m, "name", 0, 1, err);
        } else if (KEY("params")) {
            rc = want(m, JV_ARR, "params", "an array", err);
            if (rc != KB_OK || m->n == 0) {
                continue;
            }
            s->params = kb_calloc(m->n, sizeof *s->params);
            if (s->params == NULL) {
                return nomem(err);
            }
            for (const jv *c = m->child; c != NULL && rc == KB_OK; c = c->next) {
                char path[64];
                snprintf(path, sizeof path, "params[%zu]", s->n_params);
                rc = read_space_param(&s->params[s->n_params++], c, path, warn, err);
            }
        } else {
            kb_log_printf(warn, KB_LOG_LEVEL_WARNING,
                          "field '%s': unknown space field ignored (spaces have no 'extra')",
                          m->key);
        }
    }
    if (rc == KB_OK && s->name == NULL) {
        return field_err(err, "name", "required");
    }
    if (rc == KB_OK) {
        kb_error sub = KB_ERROR_INIT;
        rc = kb_space_validate(s, &sub);
        if (rc != KB_OK) {
            rc = kb_error_set(err, rc, "field 'params': %s", sub.msg);
        }
    }
    return rc;
}

static int read_run(kb_run *run, kb_task *task_out, const jv *o, kb_json_reader *r,
                    const kb_log *warn, kb_error *err)
{
    extras x = {{0}, 0, NULL};
    run->started_at = KB_TIME_UNKNOWN;
    run->finished_at = KB_TIME_UNKNOWN;
    run->cost_s = NAN;
    run->status = (kb_run_status)-1;
    int rc = KB_OK, have_direction = 0;
    const jv *task = NULL;
    for (const jv *m = o->child; m != NULL && rc == KB_OK; m = m->next) {
        if (KEY("kind")) {
            continue;
        } else if (KEY("id")) {
            rc = get_str(&run->id, m, "id", 0, 1, err);
        } else if (KEY("task") || KEY("task_id")) {
            if (task != NULL) {
                rc = field_err(err, m->key, "the task is given twice ('task' and 'task_id')");
            }
            task = m;
        } else if (KEY("space")) {
            rc = get_str(&run->space, m, "space", 1, 1, err);
        } else if (KEY("config")) {
            rc = get_params(&run->config, &run->n_config, m, "config", err);
        } else if (KEY("backbone_id")) {
            rc = get_str(&run->backbone_id, m, "backbone_id", 1, 1, err);
        } else if (KEY("fidelity")) {
            rc = get_params(&run->fidelity, &run->n_fidelity, m, "fidelity", err);
        } else if (KEY("status")) {
            rc = want(m, JV_STR, "status", "a string", err);
            if (rc == KB_OK && kb_run_status_parse(&run->status, m->s) != KB_OK) {
                rc = field_err(err, "status",
                               "unknown status '%.40s' (expected ok, failed, diverged, pruned "
                               "or running)",
                               m->s);
            }
        } else if (KEY("objective")) {
            rc = get_str(&run->objective, m, "objective", 1, 1, err);
        } else if (KEY("direction")) {
            rc = want(m, JV_STR, "direction", "a string", err);
            if (rc == KB_OK && kb_direction_parse(&run->direction, m->s) != KB_OK) {
                rc = field_err(err, "direction",
                               "unknown direction '%.40s' (expected minimize or maximize)",
                               m->s);
            }
            have_direction = 1;
        } else if (KEY("metrics")) {
            rc = get_metrics(&run->metrics, &run->n_metrics, m, "metrics", 0, err);
        } else if (KEY("curve")) {
            rc = get_curve(run, m, err);
        } else if (KEY("cost_s")) {
            if (m->type != JV_NULL) {
                rc = get_finite(&run->cost_s, m, "cost_s", err);
                if (rc == KB_OK && run->cost_s < 0) {
                    rc = field_err(err, "cost_s", "must be >= 0");
                }
            }
        } else if (KEY("team")) {
            rc = get_str(&run->team, m, "team", 1, 0, err);
        } else if (KEY("started_at")) {
            rc = get_time(&run->started_at, m, "started_at", err);
        } else if (KEY("finished_at")) {
            rc = get_time(&run->finished_at, m, "finished_at", err);
        } else if (KEY("study_id")) {
            rc = get_str(&run->study_id, m, "study_id", 1, 1, err);
        } else if (KEY("extra")) {
            rc = take_extra(&x, m, err);
        } else {
            rc = add_unknown(&x, m, "run", warn, err);
        }
    }
    if (rc != KB_OK) {
        return rc;
    }
    if (task == NULL) {
        return field_err(err, "task_id", "required (a task id, or the task inline as 'task')");
    }
    if (task->type == JV_OBJ) {
        if (task_out == NULL) {
            return field_err(err, "task", "an inline task is not allowed here");
        }
        kb_error sub = KB_ERROR_INIT;
        rc = read_task(task_out, task, r, warn, &sub);
        if (rc != KB_OK) {
            /* "field 'x': why" -> "field 'task.x': why" */
            const char *msg = strncmp(sub.msg, "field '", 7) == 0 ? sub.msg + 7 : NULL;
            return msg != NULL ? kb_error_set(err, rc, "field 'task.%s", msg)
                               : kb_error_set(err, rc, "field 'task': %s", sub.msg);
        }
        run->task_id = kb_strdup(task_out->id);
        if (run->task_id == NULL) {
            return nomem(err);
        }
    } else {
        rc = get_str(&run->task_id, task, task->key, 0, 1, err);
        if (rc != KB_OK) {
            return rc;
        }
    }
    if (run->status == (kb_run_status)-1) {
        return field_err(err, "status", "required (ok, failed, diverged, pruned or running)");
    }
    if (run->objective != NULL && !have_direction) {
        return field_err(err, "direction", "required when 'objective' is set");
    }
    rc = build_extra(&run->extra, &x, r, err);
    if (rc == KB_OK) {
        rc = kb_json_check_run(run, err);
    }
    if (rc == KB_OK && run->id == NULL) {
        char id[KB_JSON_RUN_ID_SIZE];
        rc = kb_json_run_id(id, run, err);
        if (rc == KB_OK && (run->id = kb_strdup(id)) == NULL) {
            rc = nomem(err);
        }
    }
    return rc;
}

/* A seed: an integer in [0, 2^63), or a decimal string for the rest of the uint64 range */
static int get_seed(uint64_t *out, const jv *v, kb_error *err)
{
    if (v->type == JV_NUM && v->is_int && v->i >= 0) {
        *out = (uint64_t)v->i;
        return KB_OK;
    }
    if (v->type == JV_STR && v->n > 0 && v->n <= 20 && strspn(v->s, "0123456789") == v->n &&
        (v->n == 1 || v->s[0] != '0')) {
        uint64_t x = 0;
        for (size_t i = 0; i < v->n; i++) {
            unsigned d = (unsigned)(v->s[i] - '0');
            if (x > (UINT64_MAX - d) / 10) {
                return field_err(err, "seed", "out of range (at most 2^64 - 1)");
            }
            x = x * 10 + d;
        }
        *out = x;
        return KB_OK;
    }
    return field_err(err, "seed", "expected a non-negative integer (or a decimal string above "
                     "2^63 - 1), got %s", type_name(v));
}

static int get_neighbours(kb_study *st, const jv *v, kb_error *err)
{
    if (v->type == JV_NULL) {
        return KB_OK;
    }
    int rc = want(v, JV_ARR, "neighbours", "an array of {\"task\": id, \"weight\": w}", err);
    if (rc != KB_OK || v->n == 0) {
        return rc;
    }
    st->neighbours = kb_calloc(v->n, sizeof *st->neighbours);
    st->neighbour_weights = kb_calloc(v->n, sizeof *st->neighbour_weights);
    if (st->neighbours == NULL || st->neighbour_weights == NULL) {
        return nomem(err); /* kb_study_release frees both */
    }
    for (const jv *c = v->child; c != NULL && rc == KB_OK; c = c->next) {
        char path[64], sub[80];
        size_t k = st->n_neighbours++;
        snprintf(path, sizeof path, "neighbours[%zu]", k);
        st->neighbour_weights[k] = NAN;
        rc = want(c, JV_OBJ, path, "an object", err);
        int have_weight = 0;
        for (const jv *m = rc == KB_OK ? c->child : NULL; m != NULL && rc == KB_OK;
             m = m->next) {
            path2(sub, sizeof sub, path, m->key);
            if (KEY("task")) {
                rc = get_str(&st->neighbours[k], m, sub, 0, 1, err);
            } else if (KEY("weight")) {
                rc = get_metric(&st->neighbour_weights[k], m, sub, err);
                have_weight = 1;
            } else {
                rc = field_err(err, sub, "unknown field (expected 'task' and 'weight')");
            }
        }
        if (rc == KB_OK && (st->neighbours[k] == NULL || !have_weight)) {
            path2(sub, sizeof sub, path, st->neighbours[k] == NULL ? "task" : "weight");
            rc = field_err(err, sub, "required");
        }
    }
    return rc;
}

static int read_study(kb_study *st, const jv *o, kb_json_reader *r, const kb_log *warn,
                      kb_error *err)
{
    extras x = {{0}, 0, NULL};
    st->created_at = KB_TIME_UNKNOWN;
    int rc = KB_OK;
    const jv *task = NULL;
    for (const jv *m = o->child; m != NULL && rc == KB_OK; m = m->next) {
        if (KEY("kind")) {
            continue;
        } else if (KEY("id")) {
            rc = get_str(&st->id, m, "id", 0, 1, err);
        } else if (KEY("task") || KEY("task_id")) {
            if (task != NULL) {
                rc = field_err(err, m->key, "the task is given twice ('task' and 'task_id')");
            }
            task = m;
            if (rc == KB_OK) {
                rc = get_str(&st->task_id, m, m->key, 0, 1, err);
            }
        } else if (KEY("space")) {
            rc = get_str(&st->space, m, "space", 0, 1, err);
        } else if (KEY("objective")) {
            rc = get_str(&st->objective, m, "objective", 1, 1, err);
        } else if (KEY("direction")) {
            rc = want(m, JV_STR, "direction", "a string", err);
            if (rc == KB_OK && kb_direction_parse(&st->direction, m->s) != KB_OK) {
                rc = field_err(err, "direction",
                               "unknown direction '%.40s' (expected minimize or maximize)",
                               m->s);
            }
        } else if (KEY("method")) {
            rc = get_str(&st->method, m, "method", 1, 1, err);
        } else if (KEY("warm_start")) {
            rc = get_str(&st->warm_start, m, "warm_start", 1, 1, err);
        } else if (KEY("seed")) {
            rc = get_seed(&st->seed, m, err);
        } else if (KEY("neighbours")) {
            rc = get_neighbours(st, m, err);
        } else if (KEY("command")) {
            rc = get_str(&st->command, m, "command", 1, 0, err);
        } else if (KEY("team")) {
            rc = get_str(&st->team, m, "team", 1, 1, err);
        } else if (KEY("created_at")) {
            rc = get_time(&st->created_at, m, "created_at", err);
        } else if (KEY("extra")) {
            rc = take_extra(&x, m, err);
        } else {
            rc = add_unknown(&x, m, "study", warn, err);
        }
    }
    if (rc == KB_OK && st->id == NULL) {
        rc = field_err(err, "id", "required");
    }
    if (rc == KB_OK && task == NULL) {
        rc = field_err(err, "task_id", "required");
    }
    if (rc == KB_OK && st->space == NULL) {
        rc = field_err(err, "space", "required");
    }
    return rc == KB_OK ? build_extra(&st->extra, &x, r, err) : rc;
}

static int read_object(kb_record *out, kb_task *task_out, const jv *o, kb_json_reader *r,
                       const kb_log *warn, kb_error *err)
{
    memset(out, 0, sizeof *out);
    if (task_out != NULL) {
        memset(task_out, 0, sizeof *task_out);
    }
    if (o->type != JV_OBJ) {
        char why[64];
        snprintf(why, sizeof why, "expected a record object, got %s", type_name(o));
        return kb_error_set(err, KB_EFORMAT, "%s", why);
    }
    const jv *kind = NULL;
    for (const jv *m = o->child; m != NULL && kind == NULL; m = m->next) {
        if (KEY("kind")) {
            kind = m;
        }
    }
    if (kind == NULL) {
        return field_err(err, "kind", "required (task, run, backbone, space or study)");
    }
    int rc = want(kind, JV_STR, "kind", "a string", err);
    if (rc != KB_OK) {
        return rc;
    }
    if (strcmp(kind->s, "run") == 0) {
        out->kind = KB_RECORD_RUN;
        rc = read_run(&out->run, task_out, o, r, warn, err);
    } else if (strcmp(kind->s, "task") == 0) {
        out->kind = KB_RECORD_TASK;
        rc = read_task(&out->task, o, r, warn, err);
    } else if (strcmp(kind->s, "backbone") == 0) {
        out->kind = KB_RECORD_BACKBONE;
        rc = read_backbone(&out->backbone, o, r, warn, err);
    } else if (strcmp(kind->s, "space") == 0) {
        out->kind = KB_RECORD_SPACE;
        rc = read_space(&out->space, o, warn, err);
    } else if (strcmp(kind->s, "study") == 0) {
        out->kind = KB_RECORD_STUDY;
        rc = read_study(&out->study, o, r, warn, err);
    } else {
        rc = field_err(err, "kind",
                       "unknown kind '%.40s' (expected task, run, backbone, space or study)",
                       kind->s);
    }
    if (rc != KB_OK) {
        kb_record_release(out);
        memset(out, 0, sizeof *out);
        if (task_out != NULL) {
            kb_task_release(task_out);
        }
    }
    return rc;
}

#undef KEY

/* ------------------------------------------------------------------------------------------
 * Streaming reader for the common run record (see kb/json_priv.h): no parse tree; declines
 * (returns 0) whatever it does not handle, and the tree path reads that line instead.
 */

struct kb_json__arena {
    kb_json_reader chunks; /* only its arena part is used */
};

int kb_json__arena_new(kb_json__arena **out, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    *out = kb_calloc(1, sizeof **out);
    return *out == NULL ? nomem(err) : KB_OK;
}

void kb_json__arena_reset(kb_json__arena *a)
{
    if (a != NULL) {
        arena_reset(&a->chunks);
    }
}

void kb_json__arena_free(kb_json__arena *a)
{
    if (a == NULL) {
        return;
    }
    for (chunk *c = a->chunks.first; c != NULL;) {
        chunk *next = c->next;
        kb_free(c);
        c = next;
    }
    kb_free(a);
}

/* Chunks after `cur` are unused (allocation only moves forward), so a mark is (cur, used). */
typedef struct arena_mark {
    chunk *c;
    size_t used;
} arena_mark;

static arena_mark arena_get_mark(const kb_json_reader *r)
{
    arena_mark m = {r->cur, r->cur != NULL ? r->cur->used : 0};
    return m;
}

static void arena_rollback(kb_json_reader *r, arena_mark m)
{
    if (m.c == NULL) {
        arena_reset(r);
        return;
    }
    for (chunk *c = m.c->next; c != NULL; c = c->next) {
        c->used = 0;
    }
    m.c->used = m.used;
    r->cur = m.c;
}

/* Bytes of the input: a string's content (no escapes) or a key */
typedef struct fstr {
    const char *p;
    size_t n;
} fstr;

/* Order of names as strcmp sees them (names hold no NUL: escapes are declined) */
static int fstr_cmp(fstr a, fstr b)
{
    int c = memcmp(a.p, b.p, a.n < b.n ? a.n : b.n);
    return c != 0 ? c : (a.n > b.n) - (a.n < b.n);
}

/* Short byte strings (names, keys): a call to memcmp costs more than comparing them here */
static inline int bytes_eq(const char *a, const char *b, size_t n)
{
    uint64_t x, y;
    if (n >= 8) {
        for (size_t i = 0; i + 8 <= n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, b + i, 8);
            if (x != y) {
                return 0;
            }
        }
        memcpy(&x, a + n - 8, 8); /* the tail, overlapping what was compared */
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        uint32_t u, v, w, z;
        memcpy(&u, a, 4);
        memcpy(&v, b, 4);
        memcpy(&w, a + n - 4, 4);
        memcpy(&z, b + n - 4, 4);
        return u == v && w == z;
    }
    for (; n > 0; a++, b++, n--) {
        if (*a != *b) {
            return 0;
        }
    }
    return 1;
}

static inline int fstr_is(fstr a, const char *s, size_t n)
{
    return a.n == n && bytes_eq(a.p, s, n);
}

/* A config or fidelity member: the value as get_value would build it, a string's bytes in s */
typedef struct fparam {
    fstr name;
    kb_value v;
    fstr s;
} fparam;

#define FAST_MAX_MEMBERS 32 /* config, fidelity or metrics members; more: the tree path */
#define FAST_MAX_SERIES 16  /* curve metrics */

typedef struct fast {
    const char *p, *end;
    kb_json_reader *r;     /* curve point scratch */
    kb_json_reader *arena; /* record memory, or NULL for kb_malloc */
} fast;

/* compact JSON: almost every call finds no white space, so that test comes first */
static inline void f_ws(fast *f)
{
    if (f->p < f->end && (unsigned char)*f->p > ' ') {
        return;
    }
    while (f->p < f->end && (*f->p == ' ' || *f->p == '\t' || *f->p == '\r' || *f->p == '\n')) {
        f->p++;
    }
}

/* Skip white space, then take `ch` if it comes next */
static inline int f_take(fast *f, char ch)
{
    f_ws(f);
    if (f->p < f->end && *f->p == ch) {
        f->p++;
        return 1;
    }
    return 0;
}

/*
 * A string at f->p without escapes: its bytes (validated as parse_string does: UTF-8, no
 * control characters). 0 for anything else, including an escape.
 */
static int f_string(fast *f, fstr *out)
{
    if (f->p >= f->end || *f->p != '"') {
        return 0;
    }
    const unsigned char *p = (const unsigned char *)f->p + 1;
    const unsigned char *end = (const unsigned char *)f->end;
    const unsigned char *start = p;
    for (;;) {
        p = skip_plain(p, end);
        if (p >= end) {
            return 0;
        }
        unsigned c = *p;
        if (c == '"') {
            break;
        }
        if (c == '\\' || c < 0x20) {
            return 0;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq(p, end);
            if (k == 0) {
                return 0;
            }
            p += k;
        } else {
            p++;
        }
    }
    out->p = (const char *)start;
    out->n = (size_t)(p - start);
    f->p = (const char *)p + 1;
    return 1;
}

/* A number exactly as the tree path reads it: parse_number itself */
static int f_number_slow(fast *f, jv *v)
{
    kb_error ignored;
    jparse ps = {f->r, f->p, f->end, f->p, 1, 0, &ignored};
    v->is_int = 0;
    if (parse_number(&ps, v) != KB_OK) {
        return 0;
    }
    f->p = ps.p;
    return 1;
}

/*
 * The value of the first digits of the 8 bytes at p (little-endian word x), and how many
 * there are (*n, 0..8): the SWAR digit test and 8-digit combination (as in simdjson's
 * parse_eight_digits_unrolled), on the digits shifted up so that leading zeros fill in.
 */
static inline uint64_t word_digits(uint64_t x, unsigned *n)
{
    const uint64_t highs = 0x8080808080808080ull;
    uint64_t sub = x - 0x3030303030303030ull; /* a borrow only reaches bytes after a non-digit */
    uint64_t nondigit = (sub | (x + 0x4646464646464646ull) | x) & highs;
    unsigned k = nondigit != 0 ? (unsigned)__builtin_ctzll(nondigit) / 8 : 8;
    *n = k;
    if (k == 0) {
        return 0;
    }
    uint64_t v = k == 8 ? sub : sub << (8 * (8 - k));
    v = v * 10 + (v >> 8);
    v = (((v & 0x000000FF000000FFull) * 0x000F424000000064ull) +
         (((v >> 16) & 0x000000FF000000FFull) * 0x0000271000000001ull)) >> 32;
    return v;
}

/*
 * A number exactly as the tree path reads it. The common short forms are done inline with
 * parse_number's own arithmetic: at most 18 digits in all (so parse_number would keep every
 * one: its mantissa, `frac` and `drop` are the same) and a small exponent; the rest go
 * through parse_number itself.
 */
static inline int f_number(fast *f, jv *v)
{
    static const uint64_t pow10_u64[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                          100000000};
    const char *p = f->p, *end = f->end;
    int neg = p < end && *p == '-';
    p += neg;
    /* every read below is bounded, so 64 bytes of input need no end checks */
    if (end - p <= 64 || *p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9')) {
        return f_number_slow(f, v);
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__)
    uint64_t x;
    unsigned n_int, n_frac = 0;
    memcpy(&x, p, 8);
    uint64_t mant = word_digits(x, &n_int);
    p += n_int;
    int is_int = *p != '.';
    if (!is_int) {
        memcpy(&x, p + 1, 8);
        uint64_t fr = word_digits(x, &n_frac);
        mant = mant * pow10_u64[n_frac] + fr;
        p += 1 + n_frac;
    }
    /* 8 digits in either part may go on: parse_number then; likewise "1." and exponents */
    if (n_int == 8 || n_frac == 8 || (!is_int && n_frac == 0) || *p == 'e' || *p == 'E') {
        return f_number_slow(f, v);
    }
    if (is_int) {
        v->is_int = 1;
        v->i = neg ? (int64_t)(0 - mant) : (int64_t)mant;
        v->d = (double)v->i;
        f->p = p;
        return 1;
    }
    /* Clinger's fast path, as parse_number: mant < 10^15 < 2^53, 10^n_frac exact */
    double d = (double)mant / pow10_exact[n_frac];
    v->is_int = 0;
    v->d = neg ? -d : d;
    f->p = p;
    return 1;
#else
    return f_number_slow(f, v);
#endif
}

/* `"key":` (white space allowed around it) */
static int f_key(fast *f, fstr *key)
{
    f_ws(f);
    if (!f_string(f, key) || !f_take(f, ':')) {
        return 0;
    }
    f_ws(f);
    return 1;
}

/* After a member: 1 = another follows, 0 = the object or array ended, -1 = bad */
static int f_next(fast *f, char close)
{
    if (f_take(f, ',')) {
        return 1;
    }
    return f_take(f, close) ? 0 : -1;
}

/* An object or array opening: 1 = members follow, 0 = it is empty (and read), -1 = bad */
static int f_open(fast *f, char open, char close)
{
    if (!f_take(f, open)) {
        return -1;
    }
    return f_take(f, close) ? 0 : 1;
}

/* A non-empty string field */
static int f_nonempty(fast *f, fstr *out)
{
    return f_string(f, out) && out->n > 0;
}

/* A typed value as get_value builds it; null (not set), arrays and objects are declined */
static int f_value(fast *f, fparam *out)
{
    memset(&out->v, 0, sizeof out->v);
    const char *p = f->p;
    if (p >= f->end) {
        return 0;
    }
    if (*p == '"') {
        out->v.type = KB_VALUE_TYPE_STR;
        return f_string(f, &out->s);
    }
    if (*p == 't' || *p == 'f') {
        size_t n = *p == 't' ? 4 : 5;
        if ((size_t)(f->end - p) < n || memcmp(p, *p == 't' ? "true" : "false", n) != 0) {
            return 0;
        }
        out->v.type = KB_VALUE_TYPE_BOOL;
        out->v.b = *p == 't';
        f->p += n;
        return 1;
    }
    jv num;
    if (!f_number(f, &num)) {
        return 0;
    }
    if (num.is_int) {
        out->v.type = KB_VALUE_TYPE_INT;
        out->v.i = num.i;
        return 1;
    }
    out->v.type = KB_VALUE_TYPE_FLOAT;
    out->v.f = num.d;
    return isfinite(num.d);
}

static void fparams_sort(fparam *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        fparam x = a[i];
        size_t j = i;
        while (j > 0 && fstr_cmp(a[j - 1].name, x.name) > 0) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

/*
 * A config or fidelity object (typed values), or with `metrics` a metrics object (finite
 * numbers, in v.f): members sorted by name; a repeated name or anything else is declined.
 */
static int f_members(fast *f, fparam *out, size_t *n_out, int metrics)
{
    *n_out = 0;
    int more = f_open(f, '{', '}');
    if (more <= 0) {
        return more == 0;
    }
    size_t n = 0;
    while (more == 1) {
        if (n == FAST_MAX_MEMBERS || !f_key(f, &out[n].name)) {
            return 0;
        }
        if (metrics) {
            jv num;
            if (!f_number(f, &num) || !isfinite(num.d)) {
                return 0;
            }
            out[n].v.f = num.d;
        } else if (!f_value(f, &out[n])) {
            return 0;
        }
        n++;
        more = f_next(f, '}');
    }
    if (more < 0) {
        return 0;
    }
    size_t i = 1;
    while (i < n && fstr_cmp(out[i - 1].name, out[i].name) < 0) {
        i++;
    }
    if (i < n) {
        fparams_sort(out, n);
        for (i = 1; i < n; i++) {
            if (fstr_cmp(out[i - 1].name, out[i].name) == 0) {
                return 0; /* a duplicate key: the tree path reports it */
            }
        }
    }
    *n_out = n;
    return 1;
}

/* Curve series while reading: the metric and how many points it has */
typedef struct fseries {
    fstr metric;
    size_t n;
} fseries;

static int f_push_point(fast *f, size_t *n_points, int64_t step, double value, size_t series)
{
    kb_json_reader *r = f->r;
    if (*n_points == r->cap_points) {
        size_t cap = r->cap_points < 64 ? 64 : r->cap_points * 2;
        fpoint *p = kb_realloc_array(r->points, cap, sizeof *p);
        if (p == NULL) {
            return 0;
        }
        r->points = p;
        r->cap_points = cap;
    }
    r->points[*n_points] = (fpoint){step, value, series};
    (*n_points)++;
    return 1;
}

/*
 * A compact row with the keys of the series so far, in their order ({"step":N,"m1":V,...}),
 * as kb's writer prints them: read without the general loop's white-space and key handling.
 * 1 = read (step and one value per series); 0 = anything else, nothing consumed.
 */
static int f_row_compact(fast *f, const fseries *ser, size_t n_ser, int64_t *step,
                         double *values)
{
    const char *start = f->p;
    jv num;
    if (f->end - f->p < 9 || !bytes_eq(f->p, "{\"step\":", 8)) {
        return 0;
    }
    f->p += 8;
    int ok = f_number(f, &num) && num.is_int && num.i >= 0;
    *step = ok ? num.i : 0;
    for (size_t j = 0; ok && j < n_ser; j++) {
        size_t n = ser[j].metric.n;
        const char *p = f->p;
        ok = (size_t)(f->end - p) > n + 4 && p[0] == ',' && p[1] == '"' && p[n + 2] == '"' &&
             p[n + 3] == ':' && bytes_eq(p + 2, ser[j].metric.p, n);
        f->p += ok ? n + 4 : 0;
        ok = ok && f_number(f, &num) && isfinite(num.d);
        values[j] = ok ? num.d : 0;
    }
    if (ok && f->p < f->end && *f->p == '}') {
        f->p++;
        return 1;
    }
    f->p = start;
    return 0;
}

/*
 * Curve rows [{"step": 0, "loss": 1.9}, ...]: points in input order and their series in
 * order of first appearance (as get_curve builds them). Declined: null members, non-finite
 * or string values, a repeated key in a row, more than FAST_MAX_SERIES metrics.
 */
static int f_curve(fast *f, fseries *ser, size_t *n_ser, size_t *n_points)
{
    *n_ser = 0;
    *n_points = 0;
    static const fstr step_key = {"step", 4};
    int more_rows = f_open(f, '[', ']');
    while (more_rows == 1) {
        int have_step = 0;
        int64_t step = 0;
        size_t row_ser[FAST_MAX_SERIES];
        double row_val[FAST_MAX_SERIES];
        size_t n_row = 0;
        unsigned seen = 0; /* series already in this row */
        if (*n_ser > 0 && f_row_compact(f, ser, *n_ser, &step, row_val)) {
            for (size_t j = 0; j < *n_ser; j++) {
                if (!f_push_point(f, n_points, step, row_val[j], j)) {
                    return 0;
                }
                ser[j].n++;
            }
            more_rows = f_next(f, ']');
            continue;
        }
        int more = f_open(f, '{', '}');
        while (more == 1) {
            fstr key;
            jv num;
            f_ws(f);
            /* the keys of the row before, in the same order, need no scan: same bytes */
            const fstr *want = have_step ? (n_row < *n_ser ? &ser[n_row].metric : NULL)
                                         : &step_key;
            if (want != NULL && (size_t)(f->end - f->p) > want->n + 2 && f->p[0] == '"' &&
                f->p[want->n + 1] == '"' && bytes_eq(f->p + 1, want->p, want->n)) {
                key = *want;
                f->p += want->n + 2;
                if (!f_take(f, ':')) {
                    return 0;
                }
                f_ws(f);
            } else if (!f_key(f, &key)) {
                return 0;
            }
            if (!f_number(f, &num)) {
                return 0;
            }
            if (fstr_is(key, "step", 4)) {
                if (have_step || !num.is_int || num.i < 0) {
                    return 0;
                }
                have_step = 1;
                step = num.i;
            } else {
                if (!isfinite(num.d)) {
                    return 0;
                }
                /* rows usually repeat the same keys in the same order: try that slot first */
                size_t j = n_row < *n_ser && fstr_is(ser[n_row].metric, key.p, key.n) ? n_row
                                                                                     : *n_ser;
                for (size_t k = 0; j == *n_ser && k < *n_ser; k++) {
                    if (fstr_is(ser[k].metric, key.p, key.n)) {
                        j = k;
                    }
                }
                if (j == *n_ser) {
                    if (*n_ser == FAST_MAX_SERIES) {
                        return 0;
                    }
                    ser[j].metric = key;
                    ser[j].n = 0;
                    (*n_ser)++;
                }
                if (seen & (1u << j)) {
                    return 0;
                }
                seen |= 1u << j;
                row_ser[n_row] = j;
                row_val[n_row] = num.d;
                n_row++;
            }
            more = f_next(f, '}');
        }
        if (more < 0 || !have_step) {
            return 0;
        }
        for (size_t k = 0; k < n_row; k++) {
            if (!f_push_point(f, n_points, step, row_val[k], row_ser[k])) {
                return 0;
            }
            ser[row_ser[k]].n++;
        }
        more_rows = f_next(f, ']');
    }
    return more_rows == 0;
}

static void *f_alloc(fast *f, size_t n)
{
    void *p = f->arena != NULL ? arena_alloc(f->arena, n) : kb_malloc(n);
    if (p != NULL) {
        memset(p, 0, n);
    }
    return p;
}

static char *f_dup(fast *f, fstr s)
{
    char *o = f->arena != NULL ? arena_alloc(f->arena, s.n + 1) : kb_malloc(s.n + 1);
    if (o != NULL) {
        memcpy(o, s.p, s.n);
        o[s.n] = '\0';
    }
    return o;
}

/* An optional string field: NULL when absent */
static int f_dup_opt(fast *f, char **out, fstr s)
{
    if (s.p == NULL) {
        return 1;
    }
    *out = f_dup(f, s);
    return *out != NULL;
}

static int f_build_params(fast *f, kb_param **out, size_t *n_out, const fparam *in, size_t n)
{
    if (n == 0) {
        return 1;
    }
    kb_param *p = f_alloc(f, n * sizeof *p);
    if (p == NULL) {
        return 0;
    }
    *out = p;
    for (size_t i = 0; i < n; i++) {
        p[i].value = in[i].v;
        if ((p[i].name = f_dup(f, in[i].name)) == NULL) {
            return 0;
        }
        *n_out = i + 1; /* name owned: released with the run if a later step fails */
        if (in[i].v.type == KB_VALUE_TYPE_STR && (p[i].value.s = f_dup(f, in[i].s)) == NULL) {
            return 0;
        }
    }
    return 1;
}

static int f_build_curve(fast *f, kb_run *run, fseries *ser, size_t n_ser, size_t n_points)
{
    if (n_ser == 0) {
        return 1;
    }
    /* the series sorted by metric (names are distinct); order[k] = the k-th in that order */
    size_t order[FAST_MAX_SERIES], rank[FAST_MAX_SERIES];
    for (size_t i = 0; i < n_ser; i++) {
        size_t j = i;
        while (j > 0 && fstr_cmp(ser[order[j - 1]].metric, ser[i].metric) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (size_t k = 0; k < n_ser; k++) {
        rank[order[k]] = k;
    }
    kb_series *c = f_alloc(f, n_ser * sizeof *c);
    if (c == NULL) {
        return 0;
    }
    run->curve = c;
    run->n_curve = n_ser;
    for (size_t k = 0; k < n_ser; k++) {
        const fseries *s = &ser[order[k]];
        c[k].metric = f_dup(f, s->metric);
        c[k].steps = f_alloc(f, s->n * sizeof *c[k].steps);
        c[k].values = f_alloc(f, s->n * sizeof *c[k].values);
        if (c[k].metric == NULL || c[k].steps == NULL || c[k].values == NULL) {
            return 0;
        }
    }
    const fpoint *pt = f->r->points;
    for (size_t i = 0; i < n_points; i++) {
        kb_series *s = &c[rank[pt[i].series]];
        if (s->n > 0 && s->steps[s->n - 1] > pt[i].step) {
            return 0; /* steps out of order: the tree path sorts them */
        }
        s->steps[s->n] = pt[i].step;
        s->values[s->n] = pt[i].value;
        s->n++;
    }
    return 1;
}

enum {
    FK_KIND, FK_ID, FK_TASK_ID, FK_SPACE, FK_CONFIG, FK_BACKBONE_ID, FK_FIDELITY, FK_STATUS,
    FK_OBJECTIVE, FK_DIRECTION, FK_METRICS, FK_CURVE, FK_COST_S, FK_TEAM, FK_STARTED_AT,
    FK_FINISHED_AT, FK_STUDY_ID, FK_OTHER
};

static int f_field(fstr k)
{
#define F_NAME(s, f) {s, sizeof(s) - 1, f}
    static const struct {
        const char *name;
        size_t n;
        int field;
    } names[] = {
        F_NAME("kind", FK_KIND), F_NAME("id", FK_ID), F_NAME("task_id", FK_TASK_ID),
        F_NAME("space", FK_SPACE), F_NAME("config", FK_CONFIG),
        F_NAME("backbone_id", FK_BACKBONE_ID), F_NAME("fidelity", FK_FIDELITY),
        F_NAME("status", FK_STATUS), F_NAME("objective", FK_OBJECTIVE),
        F_NAME("direction", FK_DIRECTION), F_NAME("metrics", FK_METRICS),
        F_NAME("curve", FK_CURVE), F_NAME("cost_s", FK_COST_S), F_NAME("team", FK_TEAM),
        F_NAME("started_at", FK_STARTED_AT), F_NAME("finished_at", FK_FINISHED_AT),
        F_NAME("study_id", FK_STUDY_ID),
    };
#undef F_NAME
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (k.n == names[i].n && bytes_eq(k.p, names[i].name, k.n)) {
            return names[i].field;
        }
    }
    return FK_OTHER;
}

static int f_enum(int *out, fstr s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        if (fstr_is(s, names[i], strlen(names[i]))) {
            *out = i;
            return 1;
        }
    }
    return 0;
}

/* The run's fields as found in the input, before anything is allocated */
typedef struct frun {
    fstr id, task_id, space, backbone_id, objective, team, study_id;
    fparam config[FAST_MAX_MEMBERS], fidelity[FAST_MAX_MEMBERS];
    size_t n_config, n_fidelity;
    fparam metrics[FAST_MAX_MEMBERS];
    size_t n_metrics;
    fseries series[FAST_MAX_SERIES];
    size_t n_series, n_points;
} frun;

static int f_fields(fast *f, frun *x, kb_run *run)
{
    static const char *const statuses[] = {"ok", "failed", "diverged", "pruned", "running"};
    static const char *const directions[] = {"minimize", "maximize"};
    if (!f_take(f, '{')) {
        return 0;
    }
    unsigned seen = 0;
    int more = 1;
    while (more == 1) {
        fstr key, s;
        jv num;
        if (!f_key(f, &key)) {
            return 0;
        }
        int k = f_field(key);
        if (k == FK_OTHER || (seen & (1u << k))) {
            return 0; /* unknown (kept under extra, with a warning) or repeated */
        }
        seen |= 1u << k;
        int ok = 0, e;
        switch (k) {
        case FK_KIND: ok = f_string(f, &s) && fstr_is(s, "run", 3); break;
        case FK_ID: ok = f_nonempty(f, &x->id); break;
        case FK_TASK_ID: ok = f_nonempty(f, &x->task_id); break;
        case FK_SPACE: ok = f_nonempty(f, &x->space); break;
        case FK_BACKBONE_ID: ok = f_nonempty(f, &x->backbone_id); break;
        case FK_OBJECTIVE: ok = f_nonempty(f, &x->objective); break;
        case FK_STUDY_ID: ok = f_nonempty(f, &x->study_id); break;
        case FK_TEAM: ok = f_string(f, &x->team); break;
        case FK_CONFIG: ok = f_members(f, x->config, &x->n_config, 0); break;
        case FK_FIDELITY: ok = f_members(f, x->fidelity, &x->n_fidelity, 0); break;
        case FK_METRICS: ok = f_members(f, x->metrics, &x->n_metrics, 1); break;
        case FK_CURVE: ok = f_curve(f, x->series, &x->n_series, &x->n_points); break;
        case FK_STATUS:
            ok = f_string(f, &s) && f_enum(&e, s, statuses, 5);
            run->status = ok ? (kb_run_status)e : run->status;
            break;
        case FK_DIRECTION:
            ok = f_string(f, &s) && f_enum(&e, s, directions, 2);
            run->direction = ok ? (kb_direction)e : run->direction;
            break;
        case FK_COST_S:
            ok = f_number(f, &num) && isfinite(num.d) && num.d >= 0;
            run->cost_s = ok ? num.d : run->cost_s;
            break;
        case FK_STARTED_AT:
        case FK_FINISHED_AT:
            ok = f_string(f, &s) &&
                 kb_json_parse_time(k == FK_STARTED_AT ? &run->started_at : &run->finished_at,
                                    s.p, s.n, 0) == KB_OK;
            break;
        }
        if (!ok) {
            return 0;
        }
        more = f_next(f, '}');
    }
    f_ws(f);
    /* required as read_run requires them; an objective needs its direction */
    return more == 0 && f->p == f->end && (seen & (1u << FK_KIND)) &&
           (seen & (1u << FK_TASK_ID)) && (seen & (1u << FK_STATUS)) &&
           (!(seen & (1u << FK_OBJECTIVE)) || (seen & (1u << FK_DIRECTION)));
}

static int f_build(fast *f, const frun *x, kb_run *run)
{
    if (!f_dup_opt(f, &run->id, x->id) || !f_dup_opt(f, &run->task_id, x->task_id) ||
        !f_dup_opt(f, &run->space, x->space) ||
        !f_dup_opt(f, &run->backbone_id, x->backbone_id) ||
        !f_dup_opt(f, &run->objective, x->objective) || !f_dup_opt(f, &run->team, x->team) ||
        !f_dup_opt(f, &run->study_id, x->study_id) ||
        !f_build_params(f, &run->config, &run->n_config, x->config, x->n_config) ||
        !f_build_params(f, &run->fidelity, &run->n_fidelity, x->fidelity, x->n_fidelity)) {
        return 0;
    }
    if (x->n_metrics > 0) {
        run->metrics = f_alloc(f, x->n_metrics * sizeof *run->metrics);
        if (run->metrics == NULL) {
            return 0;
        }
        for (size_t i = 0; i < x->n_metrics; i++) {
            run->metrics[i].value = x->metrics[i].v.f;
            if ((run->metrics[i].name = f_dup(f, x->metrics[i].name)) == NULL) {
                return 0;
            }
            run->n_metrics = i + 1;
        }
    }
    return f_build_curve(f, run, (fseries *)x->series, x->n_series, x->n_points);
}

/*
 * The streaming reader: 1 = `*run` built (from kb_malloc, or from `arena`), 0 = declined
 * (nothing left allocated). Same defaults and checks as read_run.
 */
static int fast_run(kb_run *run, kb_json_reader *r, kb_json_reader *arena, const char *data,
                    size_t n)
{
    fast f = {data, data + n, r, arena};
    arena_reset(r);
    frun *x = (frun *)arena_alloc(r, sizeof *x); /* scratch in the reader: reset per record */
    if (x == NULL) {
        return 0;
    }
    x->id = x->task_id = x->space = x->backbone_id = x->objective = x->team = x->study_id =
        (fstr){NULL, 0};
    x->n_config = x->n_fidelity = x->n_metrics = x->n_series = x->n_points = 0;
    memset(run, 0, sizeof *run);
    run->started_at = KB_TIME_UNKNOWN;
    run->finished_at = KB_TIME_UNKNOWN;
    run->cost_s = NAN;
    arena_mark mark = arena != NULL ? arena_get_mark(arena) : (arena_mark){NULL, 0};
    kb_error ignored;
    int ok = f_fields(&f, x, run) && f_build(&f, x, run) &&
             kb_json_check_run(run, &ignored) == KB_OK;
    if (ok && run->id == NULL) {
        char id[KB_JSON_RUN_ID_SIZE];
        ok = kb_json_run_id(id, run, &ignored) == KB_OK &&
             (run->id = f_dup(&f, (fstr){id, strlen(id)})) != NULL;
    }
    if (!ok) {
        if (arena != NULL) {
            arena_rollback(arena, mark);
            memset(run, 0, sizeof *run);
        } else {
            kb_run_release(run);
        }
    }
    return ok;
}

int kb_json__read_record(kb_record *out, kb_task *task_out, kb_json_reader *r,
                         const char *data, size_t n, const kb_log *warn, kb_json__path path,
                         kb_json__arena *arena, int *fast_out, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && r != NULL && (data != NULL || n == 0));
    memset(out, 0, sizeof *out);
    if (task_out != NULL) {
        memset(task_out, 0, sizeof *task_out);
    }
    if (fast_out != NULL) {
        *fast_out = 0;
    }
    if (path == KB_JSON__PATH_AUTO &&
        fast_run(&out->run, r, arena != NULL ? &arena->chunks : NULL, data, n)) {
        out->kind = KB_RECORD_RUN;
        if (fast_out != NULL) {
            *fast_out = 1;
        }
        return KB_OK;
    }
    jv *root = NULL;
    int rc = parse_text(&root, r, data, n, err);
    if (rc != KB_OK) {
        return rc;
    }
    return read_object(out, task_out, root, r, warn, err);
}

int kb_json_read_record(kb_record *out, kb_task *task_out, kb_json_reader *r, const char *data,
                        size_t n, const kb_log *warn, kb_error *err)
{
    return kb_json__read_record(out, task_out, r, data, n, warn, KB_JSON__PATH_AUTO, NULL, NULL,
                                err);
}

int kb_json_read_array(kb_json_reader *r, const char *data, size_t n, const kb_log *warn,
                       kb_json_element_fn fn, void *payload, size_t *line_out, kb_error *err)
{
    KB_CHECK_ARG(r != NULL && fn != NULL && (data != NULL || n == 0));
    jv *root = NULL;
    arena_reset(r);
    jparse ps = {r, data, data + n, data, 1, 0, err};
    skip_ws(&ps);
    int rc = parse_value(&ps, &root);
    if (rc == KB_OK) {
        skip_ws(&ps);
        if (ps.p != ps.end) {
            rc = jfail(&ps, "unexpected data after the JSON value");
        }
    }
    if (rc == KB_OK && root->type != JV_ARR) {
        rc = kb_error_set(err, KB_EFORMAT, "expected a JSON array of records");
    }
    if (rc != KB_OK) {
        if (line_out != NULL) {
            *line_out = ps.line;
        }
        return rc;
    }
    /* The tree stays in the arena while elements are converted; extra text is built in it
     * too, so it grows but is never reset during the walk. */
    for (const jv *e = root->child; e != NULL; e = e->next) {
        kb_record rec;
        kb_task task;
        kb_error rec_err = KB_ERROR_INIT;
        rc = read_object(&rec, &task, e, r, warn, &rec_err);
        if (rc == KB_ENOMEM) {
            *err = rec_err;
            return rc;
        }
        rc = fn(&rec, &task, e->line, rc == KB_OK ? NULL : &rec_err, payload);
        if (rc != 0) {
            return rc;
        }
    }
    return KB_OK;
}

/* ------------------------------------------------------------------------------------------
 * Checks shared by every reader.
 */

int kb_json_check_run(const kb_run *r, kb_error *err)
{
    KB_CHECK_ARG(r != NULL);
    if (r->task_id == NULL || r->task_id[0] == '\0') {
        return field_err(err, "task_id", "required");
    }
    if ((unsigned)r->status > KB_RUN_STATUS_RUNNING) {
        return field_err(err, "status", "unknown status");
    }
    if ((unsigned)r->direction > KB_DIRECTION_MAXIMIZE) {
        return field_err(err, "direction", "unknown direction");
    }
    if (!isnan(r->cost_s) && !(r->cost_s >= 0 && isfinite(r->cost_s))) {
        return field_err(err, "cost_s", "must be a finite number >= 0");
    }
    if (r->started_at != KB_TIME_UNKNOWN && r->finished_at != KB_TIME_UNKNOWN &&
        r->finished_at < r->started_at) {
        return field_err(err, "finished_at", "is before started_at");
    }
    int diverged = r->status == KB_RUN_STATUS_DIVERGED;
    for (size_t i = 0; i < r->n_metrics; i++) {
        if (!diverged && !isfinite(r->metrics[i].value)) {
            char path[160];
            path2(path, sizeof path, "metrics", r->metrics[i].name);
            return field_err(err, path, "non-finite value needs status 'diverged'");
        }
    }
    for (size_t i = 0; i < r->n_curve; i++) {
        const kb_series *s = &r->curve[i];
        char path[160]; /* formatted only for a message: this runs for every ingested run */
        for (size_t k = 0; k < s->n; k++) {
            if (s->steps[k] < 0 || (k > 0 && s->steps[k] < s->steps[k - 1])) {
                path2(path, sizeof path, "curve", s->metric);
                return field_err(err, path, "steps must be >= 0 and non-decreasing");
            }
            if (!diverged && !isfinite(s->values[k])) {
                char why[96];
                path2(path, sizeof path, "curve", s->metric);
                snprintf(why, sizeof why, "non-finite value at step %lld needs status "
                         "'diverged'", (long long)s->steps[k]);
                return field_err(err, path, "%s", why);
            }
        }
    }
    for (size_t i = 0; i < r->n_config; i++) {
        const kb_value *v = &r->config[i].value;
        if (v->type == KB_VALUE_TYPE_FLOAT && !isfinite(v->f)) {
            char path[160];
            path2(path, sizeof path, "config", r->config[i].name);
            return field_err(err, path, "must be finite");
        }
    }
    return KB_OK;
}

/* ------------------------------------------------------------------------------------------
 * Times.
 */

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (s[k] < '0' || s[k] > '9') {
            return -1;
        }
        v = v * 10 + (s[k] - '0');
    }
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y_out, unsigned *m_out, unsigned *d_out)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t y = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    *y_out = (int)(y + (m <= 2));
    *m_out = m;
    *d_out = d;
}

int kb_json_parse_time(int64_t *out, const char *s, size_t n, int naive_utc)
{
    int Y, M, D, h, mi, se;
    if (n < 19 || digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
        digits(s + 8, 2, &D) || (s[10] != 'T' && !(naive_utc && s[10] == ' ')) ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &se)) {
        return KB_EFORMAT;
    }
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || (M == 2 && D == 29 && !leap) ||
        h > 23 || mi > 59 || se > 60) {
        return KB_EFORMAT;
    }
    size_t k = 19;
    int64_t frac_us = 0;
    if (k < n && s[k] == '.') {
        k++;
        int nd = 0;
        int64_t scale = 100000;
        while (k < n && s[k] >= '0' && s[k] <= '9') {
            if (nd < 6) {
                frac_us += (s[k] - '0') * scale;
                scale /= 10;
            }
            nd++;
            k++;
        }
        if (nd == 0) {
            return KB_EFORMAT;
        }
    }
    int64_t offset_s = 0;
    if (k < n && s[k] == 'Z') {
        k++;
    } else if (k < n && (s[k] == '+' || s[k] == '-')) {
        int oh, om;
        if (n - k < 6 || digits(s + k + 1, 2, &oh) || s[k + 3] != ':' ||
            digits(s + k + 4, 2, &om) || oh > 23 || om > 59) {
            return KB_EFORMAT;
        }
        offset_s = (oh * 3600 + om * 60) * (s[k] == '+' ? 1 : -1);
        k += 6;
    } else if (!naive_utc) {
        return KB_EFORMAT;
    }
    if (k != n) {
        return KB_EFORMAT;
    }
    int64_t days = days_from_civil(Y, (unsigned)M, (unsigned)D);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - offset_s;
    *out = secs * 1000000 + frac_us;
    return KB_OK;
}

void kb_json_format_time(char out[32], int64_t us)
{
    int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    int64_t frac = us - secs * 1000000;
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400;
    int y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int h = (int)(rem / 3600), mi = (int)(rem / 60 % 60), se = (int)(rem % 60);
    /* years beyond 9999 cannot come from the parser; the wide buffer keeps gcc content */
    char tmp[96];
    if (frac != 0) {
        snprintf(tmp, sizeof tmp, "%04d-%02u-%02uT%02d:%02d:%02d.%06lldZ", y, m, d, h, mi, se,
                 (long long)frac);
    } else {
        snprintf(tmp, sizeof tmp, "%04d-%02u-%02uT%02d:%02d:%02dZ", y, m, d, h, mi, se);
    }
    snprintf(out, 32, "%.31s", tmp);
}

/* ------------------------------------------------------------------------------------------
 * Writer.
 */

int kb_json_put_double(kb_buf *out, double v)
{
    if (!isfinite(v)) {
        return kb_buf_puts(out, isnan(v) ? "\"nan\"" : v > 0 ? "\"inf\"" : "\"-inf\"");
    }
    char tmp[32];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) {
            break;
        }
    }
    return kb_buf_append(out, tmp, (size_t)n);
}

/* A float-typed value: like put_double, but "3" becomes "3.0" so it reads back as a float. */
static void w_float_typed(jw *w, double d)
{
    if (w->bad) {
        return;
    }
    size_t before = w->b->len;
    if (kb_json_put_double(w->b, d) != KB_OK) {
        w->bad = 1;
        return;
    }
    const char *s = w->b->data + before;
    if (s[0] != '"' && strpbrk(s, ".eE") == NULL) {
        w_raw(w, ".0", 2);
    }
}

int kb_json_put_string(kb_buf *out, const char *s)
{
    static const char hexd[] = "0123456789abcdef";
    size_t n = strlen(s);
    if (kb_buf_reserve(out, n + 2) != KB_OK) {
        return KB_ENOMEM;
    }
    out->data[out->len++] = '"';
    const char *run = s;
    for (const char *p = s;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        if (kb_buf_append(out, run, (size_t)(p - run)) != KB_OK) {
            return KB_ENOMEM;
        }
        if (c == '\0') {
            break;
        }
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t k = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hexd[c >> 4];
            esc[5] = hexd[c & 15];
            k = 6;
        }
        if (kb_buf_append(out, esc, k) != KB_OK) {
            return KB_ENOMEM;
        }
        run = p + 1;
    }
    return kb_buf_putc(out, '"');
}

static void w_key(jw *w, const char *key)
{
    /* keys are fixed identifiers without characters to escape */
    w_raw(w, ",\"", 2);
    w_raw(w, key, strlen(key));
    w_raw(w, "\":", 2);
}

static void w_field_str(jw *w, const char *key, const char *v)
{
    if (v != NULL) {
        w_key(w, key);
        w_str(w, v);
    }
}

static void w_field_time(jw *w, const char *key, int64_t t)
{
    if (t != KB_TIME_UNKNOWN) {
        char tmp[32];
        kb_json_format_time(tmp, t);
        w_key(w, key);
        w_raw(w, "\"", 1);
        w_raw(w, tmp, strlen(tmp));
        w_raw(w, "\"", 1);
    }
}

static void w_value(jw *w, const kb_value *v)
{
    switch (v->type) {
    case KB_VALUE_TYPE_FLOAT: w_float_typed(w, v->f); break;
    case KB_VALUE_TYPE_INT: w_int(w, v->i); break;
    case KB_VALUE_TYPE_STR: w_str(w, v->s != NULL ? v->s : ""); break;
    case KB_VALUE_TYPE_BOOL: w_raw(w, v->b ? "true" : "false", v->b ? 4 : 5); break;
    default: w_raw(w, "null", 4); break;
    }
}

static void w_params(jw *w, const char *key, const kb_param *p, size_t n)
{
    if (n == 0) {
        return;
    }
    w_key(w, key);
    w_raw(w, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            w_raw(w, ",", 1);
        }
        w_str(w, p[i].name);
        w_raw(w, ":", 1);
        w_value(w, &p[i].value);
    }
    w_raw(w, "}", 1);
}

/* name -> value objects; features write NaN (missing) as null, metrics as "nan". */
static void w_metrics(jw *w, const char *key, const kb_metric *m, size_t n, int features)
{
    if (n == 0) {
        return;
    }
    w_key(w, key);
    w_raw(w, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            w_raw(w, ",", 1);
        }
        w_str(w, m[i].name);
        w_raw(w, ":", 1);
        if (features && isnan(m[i].value)) {
            w_raw(w, "null", 4);
        } else {
            w_double(w, m[i].value);
        }
    }
    w_raw(w, "}", 1);
}

static void w_strings(jw *w, const char *key, char *const *s, size_t n)
{
    if (n == 0) {
        return;
    }
    w_key(w, key);
    w_raw(w, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            w_raw(w, ",", 1);
        }
        w_str(w, s[i]);
    }
    w_raw(w, "]", 1);
}

/*
 * Series -> rows: a k-way merge by step; each row takes the next point of every series whose
 * next step is the smallest, so repeated steps become repeated rows and reading the rows back
 * gives the same series.
 */
static void w_curve(jw *w, const kb_series *c, size_t n)
{
    if (n == 0) {
        return;
    }
    size_t pos_small[16];
    size_t *pos = n <= 16 ? pos_small : kb_calloc(n, sizeof *pos);
    if (pos == NULL) {
        w->bad = 1;
        return;
    }
    memset(pos, 0, (n <= 16 ? 16 : n) * sizeof *pos);
    w_key(w, "curve");
    w_raw(w, "[", 1);
    int first_row = 1;
    for (;;) {
        int have = 0;
        int64_t step = 0;
        for (size_t i = 0; i < n; i++) {
            if (pos[i] < c[i].n && (!have || c[i].steps[pos[i]] < step)) {
                step = c[i].steps[pos[i]];
                have = 1;
            }
        }
        if (!have || w->bad) {
            break;
        }
        w_raw(w, first_row ? "{\"step\":" : ",{\"step\":", first_row ? 8 : 9);
        first_row = 0;
        w_int(w, step);
        for (size_t i = 0; i < n; i++) {
            if (pos[i] < c[i].n && c[i].steps[pos[i]] == step) {
                w_raw(w, ",", 1);
                w_str(w, c[i].metric);
                w_raw(w, ":", 1);
                w_double(w, c[i].values[pos[i]]);
                pos[i]++;
            }
        }
        w_raw(w, "}", 1);
    }
    w_raw(w, "]", 1);
    if (pos != pos_small) {
        kb_free(pos);
    }
}

static void w_extra(jw *w, const char *extra)
{
    if (extra != NULL) {
        w_key(w, "extra");
        w_raw(w, extra, strlen(extra));
    }
}

static int w_done(jw *w, kb_error *err)
{
    w_raw(w, "}", 1);
    return w->bad ? nomem(err) : KB_OK;
}

int kb_json_write_task(kb_buf *out, const kb_task *t, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && t != NULL && t->id != NULL);
    jw w = {out, 0};
    w_raw(&w, "{\"kind\":\"task\"", 14);
    w_field_str(&w, "id", t->id);
    w_field_str(&w, "name", t->name);
    w_field_str(&w, "fingerprint", t->fingerprint);
    if (t->type != KB_TASK_TYPE_UNKNOWN) {
        w_field_str(&w, "type", kb_task_type_name(t->type));
    }
    w_field_str(&w, "target", t->target);
    w_metrics(&w, "features", t->features, t->n_features, 1);
    w_field_str(&w, "feature_set", t->feature_set);
    w_strings(&w, "tags", t->tags, t->n_tags);
    w_field_str(&w, "team", t->team);
    w_field_time(&w, "created_at", t->created_at);
    w_extra(&w, t->extra);
    return w_done(&w, err);
}

int kb_json_write_run(kb_buf *out, const kb_run *r, int with_id, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && r != NULL && (r->id != NULL || !with_id));
    jw w = {out, 0};
    w_raw(&w, "{\"kind\":\"run\"", 13);
    if (with_id) {
        w_field_str(&w, "id", r->id);
    }
    w_field_str(&w, "task_id", r->task_id);
    w_field_str(&w, "space", r->space);
    w_params(&w, "config", r->config, r->n_config);
    w_field_str(&w, "backbone_id", r->backbone_id);
    w_params(&w, "fidelity", r->fidelity, r->n_fidelity);
    w_field_str(&w, "status", kb_run_status_name(r->status));
    w_field_str(&w, "objective", r->objective);
    w_field_str(&w, "direction", kb_direction_name(r->direction));
    w_metrics(&w, "metrics", r->metrics, r->n_metrics, 0);
    w_curve(&w, r->curve, r->n_curve);
    if (!isnan(r->cost_s)) {
        w_key(&w, "cost_s");
        w_double(&w, r->cost_s);
    }
    w_field_str(&w, "team", r->team);
    w_field_time(&w, "started_at", r->started_at);
    w_field_time(&w, "finished_at", r->finished_at);
    w_field_str(&w, "study_id", r->study_id);
    w_extra(&w, r->extra);
    return w_done(&w, err);
}

int kb_json_write_backbone(kb_buf *out, const kb_backbone *b, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && b != NULL && b->id != NULL);
    jw w = {out, 0};
    w_raw(&w, "{\"kind\":\"backbone\"", 18);
    w_field_str(&w, "id", b->id);
    w_field_str(&w, "family", b->family);
    w_field_str(&w, "arch", b->arch);
    w_field_str(&w, "input_signature", b->input_signature);
    w_field_str(&w, "source_task", b->source_task);
    w_field_str(&w, "uri", b->uri);
    w_field_str(&w, "team", b->team);
    w_field_time(&w, "created_at", b->created_at);
    w_extra(&w, b->extra);
    return w_done(&w, err);
}

int kb_json_write_space(kb_buf *out, const kb_space *s, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && s != NULL && s->name != NULL);
    static const char *const types[] = {"?", "float", "int", "categorical", "bool"};
    jw w = {out, 0};
    w_raw(&w, "{\"kind\":\"space\"", 15);
    w_field_str(&w, "name", s->name);
    w_key(&w, "params");
    w_raw(&w, "[", 1);
    for (size_t i = 0; i < s->n_params; i++) {
        const kb_space_param *p = &s->params[i];
        w_raw(&w, i > 0 ? ",{\"name\":" : "{\"name\":", i > 0 ? 9 : 8);
        w_str(&w, p->name);
        w_field_str(&w, "type", types[(unsigned)p->type <= 4 ? p->type : 0]);
        if (p->type == KB_SPACE_PARAM_FLOAT || p->type == KB_SPACE_PARAM_INT) {
            w_key(&w, "low");
            w_double(&w, p->low);
            w_key(&w, "high");
            w_double(&w, p->high);
            if (p->log) {
                w_raw(&w, ",\"log\":true", 11);
            }
        }
        w_strings(&w, "choices", p->choices, p->n_choices);
        if (p->default_value.type != KB_VALUE_TYPE_NONE) {
            w_key(&w, "default_value");
            w_value(&w, &p->default_value);
        }
        w_field_str(&w, "cond_parent", p->cond_parent);
        w_strings(&w, "cond_in", p->cond_in, p->n_cond_in);
        w_raw(&w, "}", 1);
    }
    w_raw(&w, "]", 1);
    return w_done(&w, err);
}

int kb_json_write_study(kb_buf *out, const kb_study *s, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && s != NULL && s->id != NULL);
    KB_CHECK_ARG(s->n_neighbours == 0 || (s->neighbours != NULL && s->neighbour_weights != NULL));
    jw w = {out, 0};
    w_raw(&w, "{\"kind\":\"study\"", 15);
    w_field_str(&w, "id", s->id);
    w_field_str(&w, "task_id", s->task_id);
    w_field_str(&w, "space", s->space);
    w_field_str(&w, "objective", s->objective);
    w_field_str(&w, "direction", kb_direction_name(s->direction));
    w_field_str(&w, "method", s->method);
    w_field_str(&w, "warm_start", s->warm_start);
    w_key(&w, "seed");
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)s->seed);
    if (s->seed > INT64_MAX) { /* beyond a JSON reader's int64: a string (see get_seed) */
        w_str(&w, tmp);
    } else {
        w_raw(&w, tmp, (size_t)n);
    }
    if (s->n_neighbours > 0) {
        w_key(&w, "neighbours");
        w_raw(&w, "[", 1);
        for (size_t i = 0; i < s->n_neighbours; i++) {
            w_raw(&w, i > 0 ? ",{\"task\":" : "{\"task\":", i > 0 ? 9 : 8);
            w_str(&w, s->neighbours[i] != NULL ? s->neighbours[i] : "");
            w_key(&w, "weight");
            w_double(&w, s->neighbour_weights[i]);
            w_raw(&w, "}", 1);
        }
        w_raw(&w, "]", 1);
    }
    w_field_str(&w, "command", s->command);
    w_field_str(&w, "team", s->team);
    w_field_time(&w, "created_at", s->created_at);
    w_extra(&w, s->extra);
    return w_done(&w, err);
}

int kb_json_write_record(kb_buf *out, const kb_record *rec, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && rec != NULL);
    switch (rec->kind) {
    case KB_RECORD_TASK: return kb_json_write_task(out, &rec->task, err);
    case KB_RECORD_RUN: return kb_json_write_run(out, &rec->run, 1, err);
    case KB_RECORD_BACKBONE: return kb_json_write_backbone(out, &rec->backbone, err);
    case KB_RECORD_SPACE: return kb_json_write_space(out, &rec->space, err);
    case KB_RECORD_STUDY: return kb_json_write_study(out, &rec->study, err);
    }
    return kb_error_set(err, KB_EINVAL, "invalid argument: unknown record kind %d",
                        (int)rec->kind);
}

int kb_json_run_id(char out[KB_JSON_RUN_ID_SIZE], const kb_run *r, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && r != NULL);
    kb_buf b = KB_BUF_INIT;
    int rc = kb_json_write_run(&b, r, 0, err);
    if (rc != KB_OK) {
        kb_buf_release(&b);
        return rc;
    }
    unsigned char digest[32];
    kb_sha256_digest(b.data, b.len, digest);
    kb_buf_release(&b);
    out[0] = 'r';
    out[1] = '-';
    kb_sha256_hex(out + 2, digest, 16);
    return KB_OK;
}

static int same_name(const char *field, const char *a, const char *b, kb_error *err)
{
    if (strcmp(a, b) != 0) {
        return KB_OK;
    }
    char path[160];
    path2(path, sizeof path, field, b);
    return field_err(err, path, "duplicate name");
}

int kb_json_canonicalize_run(kb_run *r, kb_error *err)
{
    KB_CHECK_ARG(r != NULL);
    kb_params_sort(r->config, r->n_config);
    kb_params_sort(r->fidelity, r->n_fidelity);
    if (r->n_metrics > 1) {
        qsort(r->metrics, r->n_metrics, sizeof *r->metrics, metric_cmp);
    }
    for (size_t i = 0; i < r->n_curve; i++) {
        if (series_sort(&r->curve[i]) != KB_OK) {
            return nomem(err);
        }
    }
    if (r->n_curve > 1) {
        qsort(r->curve, r->n_curve, sizeof *r->curve, series_cmp);
    }
    int rc = KB_OK;
    for (size_t i = 1; rc == KB_OK && i < r->n_config; i++) {
        rc = same_name("config", r->config[i - 1].name, r->config[i].name, err);
    }
    for (size_t i = 1; rc == KB_OK && i < r->n_fidelity; i++) {
        rc = same_name("fidelity", r->fidelity[i - 1].name, r->fidelity[i].name, err);
    }
    for (size_t i = 1; rc == KB_OK && i < r->n_metrics; i++) {
        rc = same_name("metrics", r->metrics[i - 1].name, r->metrics[i].name, err);
    }
    for (size_t i = 1; rc == KB_OK && i < r->n_curve; i++) {
        rc = same_name("curve", r->curve[i - 1].metric, r->curve[i].metric, err);
    }
    return rc;
}

int kb_json_canonical_text(kb_buf *out, kb_json_reader *r, const char *data, size_t n,
                           kb_error *err)
{
    KB_CHECK_ARG(out != NULL && r != NULL && (data != NULL || n == 0));
    jv *root = NULL;
    int rc = parse_text(&root, r, data, n, err);
    if (rc != KB_OK) {
        return rc;
    }
    jw w = {out, 0};
    w_jv(&w, root, r);
    return w.bad ? nomem(err) : KB_OK;
}
