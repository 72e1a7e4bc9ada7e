/*
 * svmlight reader: lines from a growable buffer, pairs kept sparse (index, value) until the
 * largest index is known, then one dense column-major matrix.
 */
#include "engine/svmlight.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/dataset_priv.h"

typedef struct svm_parser {
    kb_dataset__src *src;
    const char *file;
    char *buf;
    size_t cap, len, pos;
    int eof;
    size_t line;
    /* sparse rows: pairs row_start[i] .. row_start[i + 1] - 1 */
    uint32_t *idx;
    double *val;
    size_t n_pairs, cap_pairs;
    size_t *row_start;
    double *label;
    size_t n_rows, cap_rows;
    size_t max_index;
    kb_error *err;
} svm_parser;

static int oom(svm_parser *p)
{
    return kb_error_set(p->err, KB_ENOMEM, "%s: out of memory", p->file);
}

/* Next line (without its end) into line/n; *have = 0 at the end of the input. */
static int next_line(svm_parser *p, const char **line, size_t *n, int *have)
{
    size_t scanned = 0;
    *have = 0;
    for (;;) {
        const char *s = p->buf + p->pos;
        size_t avail = p->len - p->pos;
        const char *nl = avail > scanned ? memchr(s + scanned, '\n', avail - scanned) : NULL;
        if (nl != NULL || (p->eof && avail > 0)) {
            size_t k = nl != NULL ? (size_t)(nl - s) : avail;
            p->pos += nl != NULL ? k + 1 : k;
            if (k > 0 && s[k - 1] == '\r') {
                k--;
            }
            *line = s;
            *n = k;
            *have = 1;
            p->line++;
            return KB_OK;
        }
        if (p->eof) {
            return KB_OK;
        }
        scanned = avail;
        if (p->pos > 0) {
            memmove(p->buf, p->buf + p->pos, avail);
            p->len = avail;
            p->pos = 0;
        }
        if (p->len == p->cap) {
            char *nb = p->cap <= SIZE_MAX / 2 ? kb_realloc(p->buf, p->cap * 2) : NULL;
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
        p->len += got;
        p->eof = got == 0;
    }
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

/* Next blank-separated token of s[*i, n); returns its length (0 at the end). */
static size_t next_token(const char *s, size_t n, size_t *i, const char **tok)
{
    while (*i < n && is_space(s[*i])) {
        (*i)++;
    }
    size_t start = *i;
    while (*i < n && !is_space(s[*i])) {
        (*i)++;
    }
    *tok = s + start;
    return *i - start;
}

/* A line without its comment. */
static size_t strip_comment(const char *s, size_t n)
{
    const char *hash = memchr(s, '#', n);
    return hash != NULL ? (size_t)(hash - s) : n;
}

static int parse_index(const char *s, size_t n, size_t *out)
{
    if (n == 0 || n > 12) {
        return 0;
    }
    size_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
        v = v * 10 + (size_t)(s[i] - '0');
    }
    *out = v;
    return 1;
}

static int push_pair(svm_parser *p, size_t index, double v)
{
    if (p->n_pairs == p->cap_pairs) {
        size_t cap = p->cap_pairs == 0 ? 4096 : p->cap_pairs * 2;
        uint32_t *idx = kb_realloc_array(p->idx, cap, sizeof *idx);
        if (idx == NULL) {
            return oom(p);
        }
        p->idx = idx;
        double *val = kb_realloc_array(p->val, cap, sizeof *val);
        if (val == NULL) {
            return oom(p);
        }
        p->val = val;
        p->cap_pairs = cap;
    }
    p->idx[p->n_pairs] = (uint32_t)index;
    p->val[p->n_pairs] = v;
    p->n_pairs++;
    if (index > p->max_index) {
        p->max_index = index;
    }
    return KB_OK;
}

static int push_row(svm_parser *p, double label)
{
    if (p->n_rows + 1 >= p->cap_rows) {
        size_t cap = p->cap_rows == 0 ? 1024 : p->cap_rows * 2;
        size_t *rs = kb_realloc_array(p->row_start, cap, sizeof *rs);
        if (rs == NULL) {
            return oom(p);
        }
        p->row_start = rs;
        double *lb = kb_realloc_array(p->label, cap, sizeof *lb);
        if (lb == NULL) {
            return oom(p);
        }
        p->label = lb;
        p->cap_rows = cap;
    }
    p->label[p->n_rows] = label;
    p->row_start[p->n_rows] = p->n_pairs;
    return KB_OK;
}

/* "FILE:LINE: column 'col': what 'token'after" (the token cut to 40 bytes) */
static int bad(svm_parser *p, const char *col, const char *what, const char *tok, size_t n,
               const char *after)
{
    return kb_error_set(p->err, KB_EFORMAT, "%s:%zu: column '%s': %s '%.*s'%s", p->file,
                        p->line, col, what, (int)(n < 40 ? n : 40), tok, after);
}

static int parse_line(svm_parser *p, const char *s, size_t n)
{
    size_t i = 0;
    const char *tok;
    size_t k = next_token(s, n, &i, &tok);
    if (k == 0) {
        return KB_OK; /* blank or comment-only line */
    }
    double label;
    int r = kb_dataset__parse_double(tok, k, &label);
    if (r < 0) {
        return oom(p);
    }
    if (r == 0) {
        return bad(p, "label", "not a number", tok, k, "");
    }
    int rc = push_row(p, label);
    if (rc != KB_OK) {
        return rc;
    }
    size_t prev = 0, n_pairs = 0;
    while ((k = next_token(s, n, &i, &tok)) > 0) {
        const char *colon = memchr(tok, ':', k);
        if (colon == NULL || colon == tok || colon == tok + k - 1) {
            char col[32];
            snprintf(col, sizeof col, "#%zu", n_pairs + 1);
            return bad(p, col, "malformed pair", tok, k, " (expected index:value)");
        }
        size_t ik = (size_t)(colon - tok), index;
        if (n_pairs == 0 && ik == 3 && memcmp(tok, "qid", 3) == 0) {
            continue;
        }
        if (!parse_index(tok, ik, &index)) {
            char col[32];
            snprintf(col, sizeof col, "#%zu", n_pairs + 1);
            return bad(p, col, "malformed pair", tok, k, " (expected index:value)");
        }
        char col[32];
        snprintf(col, sizeof col, "f%zu", index);
        if (index == 0) {
            return bad(p, col, "index 0 in", tok, k, " (indices start at 1)");
        }
        if (index > KB_SVMLIGHT_MAX_INDEX) {
            return bad(p, col, "index too large in", tok, k, "");
        }
        if (index <= prev) {
            return bad(p, col, "index not above the previous one in", tok, k, "");
        }
        double v;
        r = kb_dataset__parse_double(colon + 1, k - ik - 1, &v);
        if (r < 0) {
            return oom(p);
        }
        if (r == 0) {
            return bad(p, col, "not a number in", tok, k, "");
        }
        if ((rc = push_pair(p, index, v)) != KB_OK) {
            return rc;
        }
        prev = index;
        n_pairs++;
    }
    p->n_rows++;
    return KB_OK;
}

static int densify(svm_parser *p, kb_dataset *d, const kb_dataset_opts *opts)
{
    size_t n = p->n_rows, dim = p->max_index;
    p->row_start[n] = p->n_pairs;
    d->n_rows = n;
    d->n_cols = dim;
    if (dim > 0 && n > SIZE_MAX / sizeof(double) / dim) {
        return oom(p);
    }
    d->cols = kb_calloc(dim > 0 ? dim : 1, sizeof *d->cols);
    d->x = kb_calloc(dim > 0 ? n * dim : 1, sizeof(double));
    if (d->cols == NULL || d->x == NULL || (d->target_name = kb_strdup("label")) == NULL ||
        (d->path = kb_strdup(p->file)) == NULL) {
        return oom(p);
    }
    for (size_t j = 0; j < dim; j++) {
        char name[32];
        snprintf(name, sizeof name, "f%zu", j + 1);
        if ((d->cols[j].name = kb_strdup(name)) == NULL) {
            return oom(p);
        }
        d->cols[j].type = KB_COLUMN_NUMERIC;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t t = p->row_start[i]; t < p->row_start[i + 1]; t++) {
            d->x[i + (size_t)(p->idx[t] - 1) * n] = p->val[t];
        }
    }
    double *y = p->label;
    p->label = NULL;
    return kb_dataset__finish(d, y, NULL, 0, opts, p->file, 0, NULL, p->err);
}

static int read_src(kb_dataset *out, svm_parser *p, const kb_dataset_opts *opts)
{
    p->cap = KB_DATASET__READ_BYTES;
    if ((p->buf = kb_malloc(p->cap)) == NULL) {
        return oom(p);
    }
    int rc, have;
    const char *s;
    size_t n;
    while ((rc = next_line(p, &s, &n, &have)) == KB_OK && have) {
        if ((rc = parse_line(p, s, strip_comment(s, n))) != KB_OK) {
            return rc;
        }
    }
    if (rc != KB_OK) {
        return rc;
    }
    if (p->n_rows == 0) {
        return kb_error_set(p->err, KB_EFORMAT, "%s:%zu: no examples (empty file)", p->file,
                            p->line > 0 ? p->line : 1);
    }
    return densify(p, out, opts);
}

static int read_svmlight(kb_dataset *out, kb_dataset__src *src, const kb_dataset_opts *opts,
                         kb_error *err)
{
    svm_parser p;
    memset(&p, 0, sizeof p);
    p.src = src;
    p.file = src->name;
    p.err = err;
    int rc = read_src(out, &p, opts);
    kb_free(p.buf);
    kb_free(p.idx);
    kb_free(p.val);
    kb_free(p.row_start);
    kb_free(p.label);
    return rc;
}

int kb_svmlight_read(kb_dataset *out, const char *path, const kb_dataset_opts *opts,
                     kb_error *err)
{
    return kb_dataset__read_path(out, path, opts, read_svmlight, err);
}

int kb_svmlight_read_mem(kb_dataset *out, const void *data, size_t n, const char *name,
                         const kb_dataset_opts *opts, kb_error *err)
{
    return kb_dataset__read_mem(out, data, n, name, opts, read_svmlight, err);
}

int kb_svmlight_sniff(const char *head, size_t n)
{
    size_t pos = 0;
    while (pos < n) {
        const char *s = head + pos;
        const char *nl = memchr(s, '\n', n - pos);
        size_t len = nl != NULL ? (size_t)(nl - s) : n - pos;
        pos += len + 1;
        size_t i = 0, k;
        const char *tok;
        len = strip_comment(s, len);
        if ((k = next_token(s, len, &i, &tok)) == 0) {
            continue;
        }
        double v;
        if (kb_dataset__parse_double(tok, k, &v) != 1) {
            return 0;
        }
        if ((k = next_token(s, len, &i, &tok)) == 0) {
            return 0;
        }
        const char *colon = memchr(tok, ':', k);
        size_t index;
        return colon != NULL && (parse_index(tok, (size_t)(colon - tok), &index) ||
                                 ((size_t)(colon - tok) == 3 && memcmp(tok, "qid", 3) == 0));
    }
    return 0;
}
