/*
 * CSV reader: a streaming field scanner over a growable buffer, and per-column accumulators
 * that keep numbers as doubles and strings as interned level indices.
 *
 * Bounds on work: every input byte is scanned once (a refill keeps the scan offset of the
 * field in progress); the buffer grows only while one field does not fit. Memory: 8 bytes per
 * cell while reading, plus the distinct categorical values; assembling the final column-major
 * matrix briefly holds both the accumulators and the matrix.
 */
#include "engine/csv.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/dataset_priv.h"

typedef struct col_acc {
    char *name;
    int categorical;
    double *v;            /* one value per row read so far (capacity: parser's cap_rows) */
    size_t n_missing;
    char **levels;
    size_t n_levels, cap_levels;
    uint32_t *slots;      /* open-addressing hash of levels: index + 1, 0 = empty */
    size_t n_slots;
    size_t text_line;     /* where the first non-numeric value was seen */
    char *text_value;
} col_acc;

typedef enum field_end { FIELD_COMMA, FIELD_EOL, FIELD_EOF } field_end;

typedef struct csv_parser {
    kb_dataset__src *src;
    const char *file;
    char *buf;
    size_t cap, len, pos; /* buf[0, len) holds input; pos is the next byte to parse */
    int eof;
    size_t line;          /* physical line of buf[pos], 1-based */
    col_acc *cols;
    size_t n_cols;
    size_t n_rows, cap_rows;
    const kb_log *log;    /* progress (INFO) every CSV_PROGRESS_ROWS rows; may be NULL */
    kb_error *err;
} csv_parser;

#define CSV_PROGRESS_ROWS ((size_t)1 << 20)

static int oom(csv_parser *p)
{
    return kb_error_set(p->err, KB_ENOMEM, "%s: out of memory", p->file);
}

/*
 * Make more input available: keep buf[keep, len) (moved to the front), grow the buffer if it
 * is full, read. Sets *more to 0 at the end of the input. Offsets into the buffer held by the
 * caller must be reduced by the returned shift.
 */
static int refill(csv_parser *p, size_t keep, size_t *shift, int *more)
{
    *shift = keep;
    *more = 0;
    if (p->eof) {
        *shift = 0;
        return KB_OK;
    }
    if (keep > 0) {
        memmove(p->buf, p->buf + keep, p->len - keep);
        p->len -= keep;
        p->pos -= keep;
    }
    if (p->len == p->cap) {
        if (p->cap > SIZE_MAX / 2) {
            return oom(p);
        }
        char *nb = kb_realloc(p->buf, p->cap * 2);
        if (nb == NULL) {
            return oom(p);
        }
        p->buf = nb;
        p->cap *= 2;
    }
    size_t got = 0;
    int rc = kb_dataset__src_read(p->src, p->buf + p->len, p->cap - p->len, &got, p->err);
    if (rc != KB_OK) {
        return rc;
    }
    if (got == 0) {
        p->eof = 1;
        return KB_OK;
    }
    p->len += got;
    *more = 1;
    return KB_OK;
}

/* Ensure at least one byte at pos unless at the end; returns 1 if there is one. */
static int peek(csv_parser *p, int *rc)
{
    while (p->pos >= p->len) {
        size_t shift;
        int more;
        *rc = refill(p, p->pos, &shift, &more);
        if (*rc != KB_OK || !more) {
            return 0;
        }
    }
    return 1;
}

static const char *col_label(const csv_parser *p, size_t j, char *tmp, size_t cap)
{
    if (j < p->n_cols && p->cols[j].name != NULL) {
        return p->cols[j].name;
    }
    snprintf(tmp, cap, "#%zu", j + 1);
    return tmp;
}

/* Consume a line ending at pos ('\n', '\r\n' or a lone '\r'). */
static int eat_eol(csv_parser *p)
{
    int rc = KB_OK;
    if (p->buf[p->pos] == '\n') {
        p->pos++;
    } else {
        p->pos++;
        if (peek(p, &rc) && p->buf[p->pos] == '\n') {
            p->pos++;
        }
    }
    p->line++;
    return rc;
}

/* Words whose bytes are all `c`, for the separator scan below. */
#define CSV_BYTES(c) (UINT64_C(0x0101010101010101) * (uint64_t)(c))

/*
 * Non-zero iff some byte of v is zero (Mycroft's trick). Bytes above a zero byte may be
 * flagged falsely, but the lowest flagged byte is always the first zero byte.
 */
static uint64_t has_zero_byte(uint64_t v)
{
    return (v - CSV_BYTES(0x01)) & ~v & CSV_BYTES(0x80);
}

/*
 * Offset of the first ',', '\n' or '\r' in b[off, avail), or avail: eight bytes at a time
 * while a whole word is available (fields are mostly short numbers, so this matters), then
 * byte by byte.
 */
static size_t scan_unquoted(const char *b, size_t off, size_t avail)
{
    while (off + 8 <= avail) {
        uint64_t w;
        memcpy(&w, b + off, 8);
        uint64_t hit = has_zero_byte(w ^ CSV_BYTES(',')) | has_zero_byte(w ^ CSV_BYTES('\n')) |
                       has_zero_byte(w ^ CSV_BYTES('\r'));
        if (hit != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return off + (size_t)(__builtin_ctzll(hit) / 8); /* first byte = lowest bits */
#else
            break;
#endif
        }
        off += 8;
    }
    while (off < avail && b[off] != ',' && b[off] != '\n' && b[off] != '\r') {
        off++;
    }
    return off;
}

/*
 * Scan one field starting at pos. On success `text` and `n` give its (unescaped) contents
 * inside the buffer, valid until the next scan; a comma is consumed, a line end is left at
 * pos for the caller to consume once the field is stored (consuming may refill the buffer).
 */
static int next_field(csv_parser *p, size_t col, const char **text, size_t *n, int *quoted,
                      field_end *end)
{
    int rc = KB_OK;
    size_t start = p->pos, off = 0, shift;
    int more;
    *quoted = 0;
    if (!peek(p, &rc)) {
        if (rc != KB_OK) {
            return rc;
        }
        *text = p->buf + p->pos;
        *n = 0;
        *end = FIELD_EOF;
        return KB_OK;
    }
    start = p->pos;
    if (p->buf[start] != '"') {
        for (;;) {
            const char *b = p->buf + start;
            size_t avail = p->len - start;
            off = scan_unquoted(b, off, avail);
            if (off < avail) {
                break;
            }
            if ((rc = refill(p, start, &shift, &more)) != KB_OK) {
                return rc;
            }
            start -= shift;
            if (!more) {
                break;
            }
        }
        *text = p->buf + start;
        *n = off;
        p->pos = start + off;
    } else {
        size_t open_line = p->line, newlines = 0;
        int escaped = 0;
        off = 1;
        for (;;) {
            const char *b = p->buf + start;
            size_t avail = p->len - start;
            int closed = 0;
            while (off < avail) {
                char c = b[off];
                if (c == '"') {
                    if (off + 1 >= avail && !p->eof) {
                        break; /* need the next byte to tell "" from a closing quote */
                    }
                    if (off + 1 < avail && b[off + 1] == '"') {
                        escaped = 1;
                        off += 2;
                        continue;
                    }
                    closed = 1;
                    break;
                }
                newlines += c == '\n' ? 1 : 0;
                off++;
            }
            if (closed) {
                break;
            }
            if (p->eof) {
                char tmp[32];
                return kb_error_set(p->err, KB_EFORMAT,
                                    "%s:%zu: column '%s': unterminated quoted field", p->file,
                                    open_line, col_label(p, col, tmp, sizeof tmp));
            }
            /* at the end of the input this sets eof, and the scan above runs once more */
            if ((rc = refill(p, start, &shift, &more)) != KB_OK) {
                return rc;
            }
            start -= shift;
        }
        char *t = p->buf + start + 1;
        size_t len = off - 1;
        if (escaped) {
            size_t w = 0;
            for (size_t r = 0; r < len; r++) {
                t[w++] = t[r];
                if (t[r] == '"') {
                    r++; /* the second quote of a pair */
                }
            }
            len = w;
        }
        *text = t;
        *n = len;
        *quoted = 1;
        p->line += newlines;
        p->pos = start + off + 1;
        /* the byte after the closing quote is in the buffer (or the input ended): see above */
        if (p->pos < p->len) {
            char c = p->buf[p->pos];
            if (c != ',' && c != '\n' && c != '\r') {
                char tmp[32];
                return kb_error_set(p->err, KB_EFORMAT,
                                    "%s:%zu: column '%s': unexpected text after a closing quote",
                                    p->file, p->line, col_label(p, col, tmp, sizeof tmp));
            }
        }
    }
    if (p->pos >= p->len) {
        *end = FIELD_EOF;
        return KB_OK;
    }
    if (p->buf[p->pos] == ',') {
        p->pos++;
        *end = FIELD_COMMA;
        return KB_OK;
    }
    *end = FIELD_EOL; /* the caller consumes it once the field is stored */
    return KB_OK;
}

/* ---- column accumulators ---------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = UINT64_C(1469598103934665603); /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

/* Fields never hold NUL bytes (store rejects them), so levels are plain C strings. */
static int level_equals(const char *level, const char *s, size_t n)
{
    return strlen(level) == n && memcmp(level, s, n) == 0;
}

static int grow_slots(col_acc *c)
{
    size_t n_slots = c->n_slots == 0 ? 64 : c->n_slots * 2;
    uint32_t *slots = kb_calloc(n_slots, sizeof *slots);
    if (slots == NULL) {
        return KB_ENOMEM;
    }
    for (size_t k = 0; k < c->n_levels; k++) {
        size_t h = (size_t)hash_bytes(c->levels[k], strlen(c->levels[k])) & (n_slots - 1);
        while (slots[h] != 0) {
            h = (h + 1) & (n_slots - 1);
        }
        slots[h] = (uint32_t)(k + 1);
    }
    kb_free(c->slots);
    c->slots = slots;
    c->n_slots = n_slots;
    return KB_OK;
}

/* Index of the level spelled s[0..n), added at the end if new. */
static int intern(col_acc *c, const char *s, size_t n, size_t *index)
{
    if (2 * (c->n_levels + 1) > c->n_slots && grow_slots(c) != KB_OK) {
        return KB_ENOMEM;
    }
    size_t mask = c->n_slots - 1, h = (size_t)hash_bytes(s, n) & mask;
    while (c->slots[h] != 0) {
        size_t k = c->slots[h] - 1;
        if (level_equals(c->levels[k], s, n)) {
            *index = k;
            return KB_OK;
        }
        h = (h + 1) & mask;
    }
    if (c->n_levels >= UINT32_MAX - 1) {
        return KB_ENOMEM;
    }
    if (c->n_levels == c->cap_levels) {
        size_t cap = c->cap_levels == 0 ? 16 : c->cap_levels * 2;
        char **lv = kb_realloc_array(c->levels, cap, sizeof *lv);
        if (lv == NULL) {
            return KB_ENOMEM;
        }
        c->levels = lv;
        c->cap_levels = cap;
    }
    char *copy = kb_strndup(s, n);
    if (copy == NULL) {
        return KB_ENOMEM;
    }
    c->levels[c->n_levels] = copy;
    c->slots[h] = (uint32_t)(c->n_levels + 1);
    *index = c->n_levels++;
    return KB_OK;
}

/* The numbers seen so far become levels, in their shortest round-trip spelling. */
static int to_categorical(col_acc *c, size_t n_rows)
{
    c->categorical = 1;
    for (size_t i = 0; i < n_rows; i++) {
        if (isnan(c->v[i])) {
            continue;
        }
        char tmp[40];
        int len = kb_dataset__format_double(tmp, sizeof tmp, c->v[i]);
        size_t k;
        if (intern(c, tmp, (size_t)len, &k) != KB_OK) {
            return KB_ENOMEM;
        }
        c->v[i] = (double)k;
    }
    return KB_OK;
}

static int is_missing(const char *s, size_t n)
{
    return n == 0 || (n == 2 && s[0] == 'N' && s[1] == 'A') || (n == 1 && s[0] == '?');
}

static int store(csv_parser *p, size_t j, const char *s, size_t n, size_t line)
{
    col_acc *c = &p->cols[j];
    double *slot = &c->v[p->n_rows];
    if (is_missing(s, n)) {
        *slot = NAN;
        c->n_missing++;
        return KB_OK;
    }
    if (!c->categorical) {
        int r = kb_dataset__parse_double(s, n, slot);
        if (r == 1) {
            return KB_OK;
        }
        if (r < 0 || to_categorical(c, p->n_rows) != KB_OK) {
            return oom(p);
        }
        c->text_line = line;
        if ((c->text_value = kb_strndup(s, n < 64 ? n : 64)) == NULL) {
            return oom(p);
        }
    }
    if (memchr(s, '\0', n) != NULL) {
        return kb_error_set(p->err, KB_EFORMAT, "%s:%zu: column '%s': NUL byte in a field",
                            p->file, line, c->name);
    }
    size_t k;
    if (intern(c, s, n, &k) != KB_OK) {
        return oom(p);
    }
    *slot = (double)k;
    return KB_OK;
}

static int grow_rows(csv_parser *p)
{
    size_t cap = p->cap_rows == 0 ? 1024 : p->cap_rows * 2;
    for (size_t j = 0; j < p->n_cols; j++) {
        double *v = kb_realloc_array(p->cols[j].v, cap, sizeof(double));
        if (v == NULL) {
            return oom(p);
        }
        p->cols[j].v = v;
    }
    p->cap_rows = cap;
    return KB_OK;
}

static void free_cols(csv_parser *p)
{
    for (size_t j = 0; p->cols != NULL && j < p->n_cols; j++) {
        col_acc *c = &p->cols[j];
        kb_free(c->name);
        kb_free(c->v);
        kb_dataset__free_strings(c->levels, c->n_levels);
        kb_free(c->slots);
        kb_free(c->text_value);
    }
    kb_free(p->cols);
    p->cols = NULL;
    p->n_cols = 0;
}

/* ---- records ---------------------------------------------------------------------------- */

/* Skip blank lines; returns 1 if a record starts at pos, 0 at the end of the input. */
static int skip_blank_lines(csv_parser *p, int *rc)
{
    while (peek(p, rc)) {
        char c = p->buf[p->pos];
        if (c != '\n' && c != '\r') {
            return 1;
        }
        if ((*rc = eat_eol(p)) != KB_OK) {
            return 0;
        }
    }
    return 0;
}

static int read_header(csv_parser *p)
{
    int rc = KB_OK;
    /* UTF-8 byte order mark */
    while (p->len < 3 && !p->eof) {
        size_t shift;
        int more;
        if ((rc = refill(p, 0, &shift, &more)) != KB_OK) {
            return rc;
        }
    }
    if (p->len >= 3 && memcmp(p->buf, "\xEF\xBB\xBF", 3) == 0) {
        p->pos = 3;
    }
    if (!skip_blank_lines(p, &rc)) {
        return rc != KB_OK ? rc
                           : kb_error_set(p->err, KB_EFORMAT, "%s:%zu: empty file", p->file,
                                          p->line);
    }
    size_t cap = 0;
    field_end end = FIELD_COMMA;
    while (end == FIELD_COMMA) {
        const char *s;
        size_t n;
        int quoted;
        if ((rc = next_field(p, p->n_cols, &s, &n, &quoted, &end)) != KB_OK) {
            return rc;
        }
        if (p->n_cols == cap) {
            size_t ncap = cap == 0 ? 16 : cap * 2;
            col_acc *cols = kb_realloc_array(p->cols, ncap, sizeof *cols);
            if (cols == NULL) {
                return oom(p);
            }
            p->cols = cols;
            cap = ncap;
        }
        col_acc *c = &p->cols[p->n_cols];
        memset(c, 0, sizeof *c);
        p->n_cols++;
        if ((c->name = kb_strndup(s, n)) == NULL) {
            return oom(p);
        }
    }
    size_t header_line = p->line;
    if (end == FIELD_EOL && (rc = eat_eol(p)) != KB_OK) {
        return rc;
    }
    for (size_t j = 1; j < p->n_cols; j++) {
        for (size_t k = 0; k < j; k++) {
            if (strcmp(p->cols[j].name, p->cols[k].name) == 0) {
                return kb_error_set(p->err, KB_EFORMAT,
                                    "%s:%zu: column '%s': duplicate column name", p->file,
                                    header_line, p->cols[j].name);
            }
        }
    }
    return KB_OK;
}

static int read_records(csv_parser *p)
{
    int rc = KB_OK;
    while (skip_blank_lines(p, &rc)) {
        if (p->n_rows == p->cap_rows && (rc = grow_rows(p)) != KB_OK) {
            return rc;
        }
        size_t line = p->line, j = 0;
        field_end end = FIELD_COMMA;
        while (end == FIELD_COMMA) {
            const char *s;
            size_t n;
            int quoted;
            if ((rc = next_field(p, j, &s, &n, &quoted, &end)) != KB_OK) {
                return rc;
            }
            if (j >= p->n_cols) {
                return kb_error_set(p->err, KB_EFORMAT,
                                    "%s:%zu: column #%zu: extra field (the header has %zu "
                                    "columns)",
                                    p->file, line, j + 1, p->n_cols);
            }
            if ((rc = store(p, j, s, n, line)) != KB_OK) {
                return rc;
            }
            j++;
        }
        if (j < p->n_cols) {
            return kb_error_set(p->err, KB_EFORMAT,
                                "%s:%zu: column '%s': missing field (row has %zu of %zu "
                                "columns)",
                                p->file, line, p->cols[j].name, j, p->n_cols);
        }
        p->n_rows++;
        if (p->n_rows % CSV_PROGRESS_ROWS == 0) {
            kb_log_printf(p->log, KB_LOG_LEVEL_INFO, "%s: %zu rows read", p->file, p->n_rows);
        }
        if (end == FIELD_EOL && (rc = eat_eol(p)) != KB_OK) {
            return rc;
        }
    }
    return rc;
}

static size_t find_target(const csv_parser *p, const char *name)
{
    for (size_t j = 0; j < p->n_cols; j++) {
        if (strcmp(p->cols[j].name, name) == 0) {
            return j;
        }
    }
    return p->n_cols;
}

/* Move the accumulators into `d` (features column-major, target apart) and finish it. */
static int assemble(csv_parser *p, kb_dataset *d, const kb_dataset_opts *opts, size_t t)
{
    size_t n = p->n_rows, nf = p->n_cols - 1;
    d->n_rows = n;
    d->n_cols = nf;
    d->cols = kb_calloc(nf > 0 ? nf : 1, sizeof *d->cols);
    d->x = kb_malloc_array(n > 0 && nf > 0 ? n : 1, (nf > 0 ? nf : 1) * sizeof(double));
    if (d->cols == NULL || d->x == NULL || (d->target_name = kb_strdup(p->cols[t].name)) == NULL) {
        return oom(p);
    }
    for (size_t j = 0, k = 0; j < p->n_cols; j++) {
        col_acc *c = &p->cols[j];
        if (j == t) {
            continue;
        }
        kb_column *o = &d->cols[k];
        o->name = c->name;
        c->name = NULL;
        o->type = c->categorical ? KB_COLUMN_CATEGORICAL : KB_COLUMN_NUMERIC;
        o->levels = c->levels;
        o->n_levels = c->n_levels;
        c->levels = NULL;
        c->n_levels = 0;
        o->n_missing = c->n_missing;
        if (n > 0) {
            memcpy(d->x + k * n, c->v, n * sizeof(double));
        }
        kb_free(c->v);
        c->v = NULL;
        k++;
    }
    col_acc *tc = &p->cols[t];
    double *y = tc->v;
    char **levels = tc->categorical ? tc->levels : NULL;
    size_t n_levels = tc->n_levels;
    tc->v = NULL;
    if (tc->categorical) {
        tc->levels = NULL;
        tc->n_levels = 0;
    }
    if (y == NULL) {
        y = kb_malloc(sizeof(double));
        if (y == NULL) {
            kb_dataset__free_strings(levels, n_levels);
            return oom(p);
        }
    }
    return kb_dataset__finish(d, y, levels, n_levels, opts, p->file, tc->text_line,
                              tc->text_value, p->err);
}

static int read_src(kb_dataset *out, csv_parser *p, const kb_dataset_opts *opts)
{
    int rc = KB_OK;
    p->line = 1;
    p->cap = KB_DATASET__READ_BYTES;
    if ((p->buf = kb_malloc(p->cap)) == NULL) {
        return oom(p);
    }
    if ((rc = read_header(p)) != KB_OK || (rc = read_records(p)) != KB_OK) {
        return rc;
    }
    if (p->n_rows == 0) {
        return kb_error_set(p->err, KB_EFORMAT, "%s:%zu: no data rows (header only)", p->file,
                            p->line);
    }
    const char *want = opts != NULL && opts->target != NULL ? opts->target : NULL;
    size_t t = find_target(p, want != NULL ? want : "target");
    if (t == p->n_cols) {
        if (want != NULL) {
            return kb_error_set(p->err, KB_ENOTFOUND, "%s:1: column '%s': no such column",
                                p->file, want);
        }
        t = p->n_cols - 1;
    }
    if ((out->path = kb_strdup(p->file)) == NULL) {
        return oom(p);
    }
    return assemble(p, out, opts, t);
}

static int read_csv(kb_dataset *out, kb_dataset__src *src, const kb_dataset_opts *opts,
                    kb_error *err)
{
    csv_parser p;
    memset(&p, 0, sizeof p);
    p.src = src;
    p.file = src->name;
    p.err = err;
    p.log = opts != NULL ? &opts->log : NULL;
    int rc = read_src(out, &p, opts);
    kb_free(p.buf);
    free_cols(&p);
    return rc;
}

int kb_csv_read(kb_dataset *out, const char *path, const kb_dataset_opts *opts, kb_error *err)
{
    return kb_dataset__read_path(out, path, opts, read_csv, err);
}

int kb_csv_read_mem(kb_dataset *out, const void *data, size_t n, const char *name,
                    const kb_dataset_opts *opts, kb_error *err)
{
    return kb_dataset__read_mem(out, data, n, name, opts, read_csv, err);
}
