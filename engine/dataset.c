/*
 * kb_dataset: lifetime, subsets, fingerprints, reader dispatch, and the pieces every reader
 * shares (input source, number parsing, target finishing).
 */
#include "engine/dataset.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/core/alloc.h"
#include "engine/core/sha256.h"
#include "engine/csv.h"
#include "engine/dataset_priv.h"
#include "engine/idx.h"
#include "engine/svmlight.h"

/* A numeric target with at most this many distinct integer values is a class label. */
#define KB_DATASET_MAX_AUTO_CLASSES 30

/* ---- input source ---------------------------------------------------------------------- */

int kb_dataset__src_open(kb_dataset__src *s, const char *path, kb_error *err)
{
    memset(s, 0, sizeof *s);
    s->name = path;
    errno = 0;
    s->gz = gzopen(path, "rb");
    if (s->gz == NULL) {
        int e = errno != 0 ? errno : ENOMEM;
        return kb_error_set_cause(err, KB_EIO, e, "cannot open '%s': %s", path, strerror(e));
    }
    /* zlib's input buffer; the parser has its own, larger one */
    gzbuffer(s->gz, 1u << 18);
    return KB_OK;
}

void kb_dataset__src_mem(kb_dataset__src *s, const void *p, size_t n, const char *name)
{
    memset(s, 0, sizeof *s);
    s->name = name;
    s->mem = p;
    s->mem_len = n;
}

int kb_dataset__src_read(kb_dataset__src *s, void *buf, size_t n, size_t *got, kb_error *err)
{
    *got = 0;
    if (s->gz == NULL) {
        size_t left = s->mem_len - s->mem_pos;
        size_t k = n < left ? n : left;
        if (k > 0) {
            memcpy(buf, s->mem + s->mem_pos, k);
        }
        s->mem_pos += k;
        *got = k;
        return KB_OK;
    }
    /* gzread takes an unsigned count */
    unsigned want = n > (1u << 30) ? (1u << 30) : (unsigned)n;
    int r = gzread(s->gz, buf, want);
    if (r < 0) {
        int zerr = 0;
        const char *msg = gzerror(s->gz, &zerr);
        return kb_error_set_cause(err, KB_EIO, zerr, "reading '%s' failed: %s", s->name,
                                  zerr == Z_ERRNO ? strerror(errno) : msg);
    }
    *got = (size_t)r;
    return KB_OK;
}

void kb_dataset__src_close(kb_dataset__src *s)
{
    if (s->gz != NULL) {
        gzclose(s->gz);
        s->gz = NULL;
    }
}

static int run_reader(kb_dataset *out, kb_dataset__src *src, const kb_dataset_opts *opts,
                      kb_dataset__reader_fn fn, kb_error *err)
{
    int rc = fn(out, src, opts, err);
    kb_dataset__src_close(src);
    if (rc != KB_OK) {
        kb_dataset_release(out);
    }
    return rc;
}

int kb_dataset__read_path(kb_dataset *out, const char *path, const kb_dataset_opts *opts,
                          kb_dataset__reader_fn fn, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    memset(out, 0, sizeof *out);
    KB_CHECK_ARG(path != NULL);
    kb_dataset__src src;
    int rc = kb_dataset__src_open(&src, path, err);
    return rc != KB_OK ? rc : run_reader(out, &src, opts, fn, err);
}

int kb_dataset__read_mem(kb_dataset *out, const void *data, size_t n, const char *name,
                         const kb_dataset_opts *opts, kb_dataset__reader_fn fn, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    memset(out, 0, sizeof *out);
    KB_CHECK_ARG(data != NULL || n == 0);
    KB_CHECK_ARG(name != NULL);
    kb_dataset__src src;
    kb_dataset__src_mem(&src, data, n, name);
    return run_reader(out, &src, opts, fn, err);
}

/* ---- numbers --------------------------------------------------------------------------- */

/* Powers of ten that are exact doubles (10^22 < 2^53 * 2^22). */
static const double exact_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int parse_slow(const char *s, size_t n, double *out)
{
    char stack[256];
    char *tmp = stack;
    if (n >= sizeof stack) {
        tmp = kb_malloc(n + 1);
        if (tmp == NULL) {
            return KB_ENOMEM;
        }
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end = NULL;
    double v = strtod(tmp, &end);
    int ok = end == tmp + n && n > 0 && isfinite(v);
    if (tmp != stack) {
        kb_free(tmp);
    }
    if (ok) {
        *out = v;
    }
    return ok;
}

/*
 * x = m * 10^e (or m / 10^-e) with m < 2^64 and |e| <= 22, correctly rounded to double, via
 * one x87 extended (64-bit significand) operation: m and 10^|e| (5^22 < 2^64) are exact there,
 * so q = RN64(x) is off by at most half a 64-bit ulp. Rounding q to 53 bits can differ from
 * rounding x only if a 53-bit midpoint lies within that distance of q, that is if q's 11 extra
 * bits are 0x3ff, 0x400 or 0x401; then we return 0 and the caller uses strtod.
 */
static int scale_exact(uint64_t m, long e, double *out)
{
#if defined(__x86_64__) && LDBL_MANT_DIG == 64
    static const long double p10[23] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,
                                        1e8L,  1e9L,  1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L,
                                        1e16L, 1e17L, 1e18L, 1e19L, 1e20L, 1e21L, 1e22L};
    long double q = e >= 0 ? (long double)m * p10[e] : (long double)m / p10[-e];
    uint64_t sig;
    memcpy(&sig, &q, sizeof sig); /* x87 layout: the 64-bit significand comes first */
    unsigned low = (unsigned)(sig & 0x7ff);
    if (low >= 0x3ff && low <= 0x401) {
        return 0;
    }
    *out = (double)q;
    return 1;
#else
    (void)m;
    (void)e;
    (void)out;
    return 0;
#endif
}

/*
 * Accumulate the decimal digits at *pp into *m: at most 19 (so *m < 10^19 < 2^64); later
 * digits only move the exponent (integer part) and set *lost when non-zero. `frac` marks
 * digits after the point, which lower the exponent. *nd counts the digits taken (leading
 * zeros may count: that only sends rare long inputs to strtod). Returns the digits scanned.
 */
static size_t scan_digits(const char **pp, const char *e, uint64_t *m, int *nd, int *lost,
                          long *exp10, int frac)
{
    const char *p = *pp, *start = p;
    uint64_t v = *m;
    if (e - p <= 19 - *nd) {
        /* the common case: the rest of the field cannot hold more than 19 digits */
        for (; p < e && (unsigned)(*p - '0') < 10; p++) {
            v = v * 10 + (unsigned)(*p - '0');
        }
        *nd += (int)(p - start);
        *exp10 -= frac ? (long)(p - start) : 0;
    } else {
        for (; p < e && (unsigned)(*p - '0') < 10; p++) {
            unsigned dgt = (unsigned)(*p - '0');
            if (*nd < 19) {
                if (v != 0 || dgt != 0) {
                    v = v * 10 + dgt;
                    (*nd)++;
                }
                *exp10 -= frac ? 1 : 0;
            } else {
                *exp10 += frac ? 0 : 1;
                *lost |= dgt != 0;
            }
        }
    }
    *m = v;
    *pp = p;
    return (size_t)(p - start);
}

/*
 * Clinger's fast path: a decimal with at most 19 significant digits whose mantissa is below
 * 2^53 and whose power of ten is exact (|e| <= 22) converts with one correctly rounded
 * multiplication or division, so the result equals strtod's. Larger mantissas (up to 19
 * digits) go through scale_exact. Everything else (more digits, big exponents, hex, "inf",
 * junk) goes to strtod.
 */
int kb_dataset__parse_double(const char *s, size_t n, double *out)
{
    while (n > 0 && is_blank(s[0])) {
        s++;
        n--;
    }
    while (n > 0 && is_blank(s[n - 1])) {
        n--;
    }
    if (n == 0) {
        return 0;
    }
    const char *p = s, *e = s + n;
    int neg = 0;
    if (*p == '-' || *p == '+') {
        neg = *p == '-';
        p++;
    }
    uint64_t m = 0;
    int nd = 0, lost = 0;
    long exp10 = 0;
    size_t n_digits = scan_digits(&p, e, &m, &nd, &lost, &exp10, 0);
    if (p < e && *p == '.') {
        p++;
        n_digits += scan_digits(&p, e, &m, &nd, &lost, &exp10, 1);
    }
    int any = n_digits > 0;
    if (!any) {
        return parse_slow(s, n, out);
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < e && (*p == '-' || *p == '+')) {
            eneg = *p == '-';
            p++;
        }
        if (p == e || *p < '0' || *p > '9') {
            return 0;
        }
        long x = 0;
        for (; p < e && *p >= '0' && *p <= '9'; p++) {
            if (x < 100000) {
                x = x * 10 + (*p - '0');
            }
        }
        exp10 += eneg ? -x : x;
    }
    if (p != e) {
        return parse_slow(s, n, out);
    }
    if (m == 0 && !lost) {
        *out = neg ? -0.0 : 0.0;
        return 1;
    }
    if (lost || exp10 < -22 || exp10 > 22) {
        return parse_slow(s, n, out);
    }
    double v;
    if (m <= ((uint64_t)1 << 53)) {
        v = (double)m;
        v = exp10 >= 0 ? v * exact_pow10[exp10] : v / exact_pow10[-exp10];
    } else if (!scale_exact(m, exp10, &v)) {
        return parse_slow(s, n, out);
    }
    *out = neg ? -v : v;
    return 1;
}

int kb_dataset__format_double(char *buf, size_t cap, double v)
{
    /* integers as integers: "100", not "1e+02" */
    if (v == floor(v) && fabs(v) < 1e17) {
        return snprintf(buf, cap, "%.0f", v == 0.0 ? 0.0 : v);
    }
    int len = 0;
    for (int prec = 1; prec <= 17; prec++) {
        len = snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) {
            break;
        }
    }
    return len;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

void kb_dataset__free_strings(char **s, size_t n)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        kb_free(s[i]);
    }
    kb_free(s);
}

void kb_dataset_release(kb_dataset *d)
{
    if (d == NULL) {
        return;
    }
    for (size_t j = 0; d->cols != NULL && j < d->n_cols; j++) {
        kb_free(d->cols[j].name);
        kb_dataset__free_strings(d->cols[j].levels, d->cols[j].n_levels);
    }
    kb_free(d->cols);
    kb_free(d->x);
    kb_free(d->y);
    kb_free(d->path);
    kb_free(d->target_name);
    kb_dataset__free_strings(d->class_names, d->n_classes);
    memset(d, 0, sizeof *d);
}

static char **copy_strings(char *const *s, size_t n)
{
    char **c = kb_calloc(n > 0 ? n : 1, sizeof *c);
    if (c == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        c[i] = kb_strdup(s[i] != NULL ? s[i] : "");
        if (c[i] == NULL) {
            kb_dataset__free_strings(c, n);
            return NULL;
        }
    }
    return c;
}

int kb_dataset_subset(kb_dataset *out, const kb_dataset *d, const size_t *rows, size_t n,
                      kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    memset(out, 0, sizeof *out);
    KB_CHECK_ARG(d != NULL);
    KB_CHECK_ARG(rows != NULL || n == 0);
    for (size_t i = 0; i < n; i++) {
        if (rows[i] >= d->n_rows) {
            return kb_error_set(err, KB_EINVAL, "invalid argument: row %zu of %zu", rows[i],
                                d->n_rows);
        }
    }
    out->n_rows = n;
    out->n_cols = d->n_cols;
    out->task = d->task;
    out->img_channels = d->img_channels;
    out->img_height = d->img_height;
    out->img_width = d->img_width;
    out->cols = kb_calloc(d->n_cols > 0 ? d->n_cols : 1, sizeof *out->cols);
    out->x = kb_malloc_array(n * d->n_cols > 0 ? n : 1, (d->n_cols > 0 ? d->n_cols : 1) *
                                                            sizeof(double));
    out->y = kb_malloc_array(n > 0 ? n : 1, sizeof(double));
    if (out->cols == NULL || out->x == NULL || out->y == NULL) {
        goto oom;
    }
    if (d->path != NULL && (out->path = kb_strdup(d->path)) == NULL) {
        goto oom;
    }
    if (d->target_name != NULL && (out->target_name = kb_strdup(d->target_name)) == NULL) {
        goto oom;
    }
    if (d->n_classes > 0) {
        if ((out->class_names = copy_strings(d->class_names, d->n_classes)) == NULL) {
            goto oom;
        }
        out->n_classes = d->n_classes;
    }
    for (size_t j = 0; j < d->n_cols; j++) {
        const kb_column *c = &d->cols[j];
        kb_column *o = &out->cols[j];
        o->type = c->type;
        if ((o->name = kb_strdup(c->name != NULL ? c->name : "")) == NULL) {
            goto oom;
        }
        if (c->n_levels > 0) {
            if ((o->levels = copy_strings(c->levels, c->n_levels)) == NULL) {
                goto oom;
            }
            o->n_levels = c->n_levels;
        }
        const double *src = kb_dataset_col(d, j);
        double *dst = out->x + j * n;
        for (size_t i = 0; i < n; i++) {
            dst[i] = src[rows[i]];
            o->n_missing += isnan(dst[i]) ? 1 : 0;
        }
    }
    for (size_t i = 0; i < n; i++) {
        out->y[i] = d->y[rows[i]];
    }
    kb_dataset_fingerprint(out->fingerprint, out);
    return KB_OK;
oom:
    kb_dataset_release(out);
    return kb_error_set(err, KB_ENOMEM, "out of memory copying a dataset subset");
}

/* ---- fingerprint ------------------------------------------------------------------------- */

static void put_u64(kb_sha256 *h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(v >> (8 * i));
    }
    kb_sha256_update(h, b, 8);
}

static void put_str(kb_sha256 *h, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    put_u64(h, n);
    kb_sha256_update(h, s, n);
}

static void put_f64s(kb_sha256 *h, const double *v, size_t n)
{
    uint64_t b[512];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t bits;
        memcpy(&bits, &v[i], 8);
        if (isnan(v[i])) {
            bits = UINT64_C(0x7ff8000000000000);
        } else if (bits == UINT64_C(0x8000000000000000)) {
            bits = 0; /* -0.0 -> +0.0 */
        }
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
        unsigned char le[8];
        for (int t = 0; t < 8; t++) {
            le[t] = (unsigned char)(bits >> (8 * t));
        }
        memcpy(&bits, le, 8);
#endif
        b[k++] = bits;
        if (k == 512) {
            kb_sha256_update(h, b, sizeof b);
            k = 0;
        }
    }
    kb_sha256_update(h, b, k * sizeof b[0]);
}

void kb_dataset_fingerprint(char out[65], const kb_dataset *d)
{
    kb_sha256 h;
    kb_sha256_init(&h);
    static const char magic[] = "kb-dataset-v1\n";
    kb_sha256_update(&h, magic, sizeof magic - 1);
    put_u64(&h, d->n_rows);
    put_u64(&h, d->n_cols);
    put_u64(&h, (uint64_t)d->task);
    put_u64(&h, d->n_classes);
    put_u64(&h, d->img_channels);
    put_u64(&h, d->img_height);
    put_u64(&h, d->img_width);
    put_str(&h, d->target_name);
    for (size_t k = 0; k < d->n_classes; k++) {
        put_str(&h, d->class_names[k]);
    }
    for (size_t j = 0; j < d->n_cols; j++) {
        const kb_column *c = &d->cols[j];
        put_str(&h, c->name);
        put_u64(&h, (uint64_t)c->type);
        put_u64(&h, c->n_levels);
        for (size_t k = 0; k < c->n_levels; k++) {
            put_str(&h, c->levels[k]);
        }
        put_f64s(&h, kb_dataset_col(d, j), d->n_rows);
    }
    put_f64s(&h, d->y, d->n_rows);
    unsigned char digest[32];
    kb_sha256_final(&h, digest);
    kb_sha256_hex(out, digest, 32);
}

/* ---- target ------------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct named_index {
    const char *name;
    size_t index;
} named_index;

static int cmp_named_index(const void *a, const void *b)
{
    return strcmp(((const named_index *)a)->name, ((const named_index *)b)->name);
}

/* Rows with a missing target go; every column is compacted in place. */
static size_t drop_missing_targets(kb_dataset *d, double *y)
{
    size_t n = d->n_rows, keep = 0;
    for (size_t i = 0; i < n; i++) {
        keep += isnan(y[i]) ? 0 : 1;
    }
    if (keep == n) {
        return keep;
    }
    double *dst = d->x;
    for (size_t j = 0; j < d->n_cols; j++) {
        const double *src = d->x + j * n;
        size_t k = 0, miss = 0;
        for (size_t i = 0; i < n; i++) {
            if (!isnan(y[i])) {
                double v = src[i];
                miss += isnan(v) ? 1 : 0;
                dst[k++] = v;
            }
        }
        d->cols[j].n_missing = miss;
        dst += keep;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isnan(y[i])) {
            y[k++] = y[i];
        }
    }
    d->n_rows = keep;
    return keep;
}

/* Levels sorted by name become the classes: y becomes the index into the sorted order. */
static int classes_from_levels(kb_dataset *d, double *y, char **levels, size_t n_levels)
{
    size_t m = n_levels > 0 ? n_levels : 1;
    named_index *order = kb_malloc_array(m, sizeof *order);
    size_t *rank = kb_malloc_array(m, sizeof *rank);
    char **sorted = kb_malloc_array(m, sizeof *sorted);
    if (order == NULL || rank == NULL || sorted == NULL) {
        kb_free(order);
        kb_free(rank);
        kb_free(sorted);
        return KB_ENOMEM;
    }
    for (size_t k = 0; k < n_levels; k++) {
        order[k].name = levels[k];
        order[k].index = k;
    }
    qsort(order, n_levels, sizeof *order, cmp_named_index);
    for (size_t k = 0; k < n_levels; k++) {
        sorted[k] = levels[order[k].index];
        rank[order[k].index] = k;
    }
    for (size_t i = 0; i < d->n_rows; i++) {
        y[i] = (double)rank[(size_t)y[i]];
    }
    kb_free(levels);
    kb_free(order);
    kb_free(rank);
    d->class_names = sorted;
    d->n_classes = n_levels;
    return KB_OK;
}

static size_t find_sorted(const double *v, size_t n, double x)
{
    size_t lo = 0, hi = n;
    while (lo + 1 < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] <= x) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Numeric target: classes are the distinct values, sorted numerically. */
static int numeric_is_classes(const double *distinct, size_t n_distinct, size_t n_rows,
                              kb_dataset_task task)
{
    if (task != KB_DATASET_TASK_AUTO) {
        return task == KB_DATASET_TASK_CLASSIFICATION;
    }
    if (n_distinct > KB_DATASET_MAX_AUTO_CLASSES || 2 * n_distinct > n_rows) {
        return 0;
    }
    for (size_t k = 0; k < n_distinct; k++) {
        if (distinct[k] != floor(distinct[k])) {
            return 0;
        }
    }
    return 1;
}

static int classes_from_numbers(kb_dataset *d, double *y, kb_dataset_task task)
{
    size_t n = d->n_rows;
    double *v = kb_malloc_array(n > 0 ? n : 1, sizeof *v);
    if (v == NULL) {
        return KB_ENOMEM;
    }
    memcpy(v, y, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_double);
    size_t nd = 0;
    for (size_t i = 0; i < n; i++) {
        if (nd == 0 || v[i] != v[nd - 1]) {
            v[nd++] = v[i];
        }
    }
    if (!numeric_is_classes(v, nd, n, task)) {
        kb_free(v);
        d->task = KB_DATASET_TASK_REGRESSION;
        return KB_OK;
    }
    char **names = kb_calloc(nd > 0 ? nd : 1, sizeof *names);
    if (names == NULL) {
        kb_free(v);
        return KB_ENOMEM;
    }
    for (size_t k = 0; k < nd; k++) {
        char tmp[40];
        int len = kb_dataset__format_double(tmp, sizeof tmp, v[k] == 0.0 ? 0.0 : v[k]);
        if ((names[k] = kb_strndup(tmp, (size_t)len)) == NULL) {
            kb_dataset__free_strings(names, nd);
            kb_free(v);
            return KB_ENOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        y[i] = (double)find_sorted(v, nd, y[i]);
    }
    kb_free(v);
    d->task = KB_DATASET_TASK_CLASSIFICATION;
    d->class_names = names;
    d->n_classes = nd;
    return KB_OK;
}

int kb_dataset__finish(kb_dataset *d, double *y, char **levels, size_t n_levels,
                       const kb_dataset_opts *opts, const char *file, size_t text_line,
                       const char *text_value, kb_error *err)
{
    kb_dataset_task task = opts != NULL ? opts->task : KB_DATASET_TASK_AUTO;
    const char *tname = d->target_name != NULL ? d->target_name : "";
    int rc = KB_OK;
    size_t n0 = d->n_rows;
    size_t keep = drop_missing_targets(d, y);
    if (keep < n0 && opts != NULL) {
        kb_log_printf(&opts->log, KB_LOG_LEVEL_WARNING,
                      "%s: dropped %zu row(s) with a missing target '%s'", file, n0 - keep,
                      tname);
    }
    if (keep == 0) {
        rc = kb_error_set(err, KB_EFORMAT, "%s: column '%s': no row has a target value", file,
                          tname);
        goto fail;
    }
    if (levels != NULL) {
        if (task == KB_DATASET_TASK_REGRESSION) {
            rc = kb_error_set(err, KB_EFORMAT,
                              "%s:%zu: column '%s': regression target is not numeric ('%s')",
                              file, text_line, tname, text_value != NULL ? text_value : "");
            goto fail;
        }
        if (classes_from_levels(d, y, levels, n_levels) != KB_OK) {
            goto oom;
        }
        levels = NULL; /* now the class names */
        d->task = KB_DATASET_TASK_CLASSIFICATION;
    } else if (classes_from_numbers(d, y, task) != KB_OK) {
        goto oom;
    }
    d->y = y;
    kb_dataset_fingerprint(d->fingerprint, d);
    return KB_OK;
oom:
    rc = kb_error_set(err, KB_ENOMEM, "%s: out of memory", file);
fail:
    kb_free(y);
    kb_dataset__free_strings(levels, n_levels);
    return rc;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static int has_suffix(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

typedef enum reader_kind { READER_CSV, READER_SVMLIGHT, READER_IDX } reader_kind;

static int kind_from_name(const char *path, reader_kind *kind)
{
    size_t n = strlen(path);
    if (has_suffix(path, n, ".gz")) {
        n -= 3;
    }
    if (has_suffix(path, n, ".csv")) {
        *kind = READER_CSV;
        return 1;
    }
    if (has_suffix(path, n, ".svm") || has_suffix(path, n, ".libsvm") ||
        has_suffix(path, n, ".svmlight") || has_suffix(path, n, ".txt")) {
        *kind = READER_SVMLIGHT;
        return 1;
    }
    if (has_suffix(path, n, "-idx3-ubyte") || has_suffix(path, n, ".idx3-ubyte")) {
        *kind = READER_IDX;
        return 1;
    }
    return 0;
}

/* Content sniffing: IDX magic, else a first data line shaped like "label idx:val", else CSV. */
static int kind_from_content(const char *path, reader_kind *kind, kb_error *err)
{
    kb_dataset__src src;
    int rc = kb_dataset__src_open(&src, path, err);
    if (rc != KB_OK) {
        return rc;
    }
    char head[4096];
    size_t got = 0;
    rc = kb_dataset__src_read(&src, head, sizeof head - 1, &got, err);
    kb_dataset__src_close(&src);
    if (rc != KB_OK) {
        return rc;
    }
    head[got] = '\0';
    const unsigned char *u = (const unsigned char *)head;
    if (got >= 4 && u[0] == 0 && u[1] == 0 && u[2] == 0x08 && u[3] == 0x01) {
        return kb_error_set(err, KB_EINVAL,
                            "%s: an IDX labels file; give the images file (idx3) instead", path);
    }
    if (got >= 4 && u[0] == 0 && u[1] == 0 && u[3] == 0x03) {
        *kind = READER_IDX;
        return KB_OK;
    }
    *kind = kb_svmlight_sniff(head, got) ? READER_SVMLIGHT : READER_CSV;
    return KB_OK;
}

int kb_dataset_read(kb_dataset *out, const char *path, const kb_dataset_opts *opts,
                    kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    memset(out, 0, sizeof *out);
    KB_CHECK_ARG(path != NULL);
    KB_CHECK_ARG(opts == NULL || opts->version == KB_DATASET_OPTS_VERSION);
    reader_kind kind;
    if (!kind_from_name(path, &kind)) {
        int rc = kind_from_content(path, &kind, err);
        if (rc != KB_OK) {
            return rc;
        }
    }
    switch (kind) {
    case READER_SVMLIGHT:
        return kb_svmlight_read(out, path, opts, err);
    case READER_IDX:
        return kb_idx_read(out, path, NULL, opts, err);
    case READER_CSV:
    default:
        return kb_csv_read(out, path, opts, err);
    }
}
