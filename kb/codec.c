#include "kb/codec.h"

#include <string.h>

#include "engine/core/alloc.h"
#include "kb/codec_priv.h"

/*
 * Writers share a sticky status so that an encoder is a flat list of fields; the first failure
 * (out of memory, an unrepresentable field) wins and later writes are skipped. Each write
 * makes room once and stores bytes directly: encoding is on the store's put path.
 */
typedef struct writer {
    kb_buf *b;
    int rc;
    const char *why; /* for KB_EINVAL */
} writer;

/* Room for n more bytes (plus kb_buf's terminating NUL); the write pointer or NULL */
static inline unsigned char *w_room(writer *w, size_t n)
{
    if (w->rc != KB_OK) {
        return NULL;
    }
    kb_buf *b = w->b;
    if (b->cap - b->len < n + 1 || b->data == NULL) {
        w->rc = kb_buf_reserve(b, n);
        if (w->rc != KB_OK) {
            return NULL;
        }
    }
    return (unsigned char *)b->data + b->len;
}

static inline void w_done(writer *w, size_t n)
{
    w->b->len += n;
    w->b->data[w->b->len] = '\0';
}

static inline size_t put_varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

static void w_varint(writer *w, uint64_t v)
{
    unsigned char *p = w_room(w, 10);
    if (p != NULL) {
        w_done(w, put_varint(p, v));
    }
}

static void w_svarint(writer *w, int64_t v)
{
    w_varint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* 8 bytes, IEEE-754 bit pattern little-endian, as kb_buf_put_f64 */
static inline void put_f64(unsigned char *p, double v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, 8);
#else
    uint64_t u;
    memcpy(&u, &v, 8);
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(u >> (8 * i));
    }
#endif
}

static void w_f64(writer *w, double v)
{
    unsigned char *p = w_room(w, 8);
    if (p != NULL) {
        put_f64(p, v);
        w_done(w, 8);
    }
}

static void w_byte(writer *w, unsigned v)
{
    unsigned char *p = w_room(w, 1);
    if (p != NULL) {
        p[0] = (unsigned char)v;
        w_done(w, 1);
    }
}

/* varint(len + 1) + bytes; 0 for NULL */
static void w_str(writer *w, const char *s)
{
    if (s == NULL) {
        w_byte(w, 0);
        return;
    }
    size_t n = strlen(s);
    unsigned char *p = n < SIZE_MAX - 11 ? w_room(w, n + 10) : NULL;
    if (p != NULL) {
        size_t k = put_varint(p, (uint64_t)n + 1);
        memcpy(p + k, s, n);
        w_done(w, k + n);
    }
}

static void w_invalid(writer *w, const char *why)
{
    if (w->rc == KB_OK) {
        w->rc = KB_EINVAL;
        w->why = why;
    }
}

static void w_count(writer *w, size_t n, const void *arr, const char *why)
{
    if (n > 0 && arr == NULL) {
        w_invalid(w, why);
    }
    w_varint(w, n);
}

static void w_value(writer *w, const kb_value *v)
{
    if ((unsigned)v->type > KB_VALUE_TYPE_BOOL) {
        w_invalid(w, "value type out of range");
        return;
    }
    w_byte(w, (unsigned)v->type);
    switch (v->type) {
    case KB_VALUE_TYPE_FLOAT: w_f64(w, v->f); break;
    case KB_VALUE_TYPE_INT: w_svarint(w, v->i); break;
    case KB_VALUE_TYPE_STR: w_str(w, v->s); break;
    case KB_VALUE_TYPE_BOOL: w_byte(w, v->b != 0); break;
    default: break;
    }
}

static void w_params(writer *w, const kb_param *p, size_t n)
{
    w_count(w, n, p, "params: count without array");
    for (size_t i = 0; w->rc == KB_OK && i < n; i++) {
        w_str(w, p[i].name);
        w_value(w, &p[i].value);
    }
}

static void w_metrics(writer *w, const kb_metric *m, size_t n)
{
    w_count(w, n, m, "metrics: count without array");
    for (size_t i = 0; w->rc == KB_OK && i < n; i++) {
        w_str(w, m[i].name);
        w_f64(w, m[i].value);
    }
}

static void w_strs(writer *w, char *const *s, size_t n)
{
    w_count(w, n, s, "strings: count without array");
    for (size_t i = 0; w->rc == KB_OK && i < n; i++) {
        w_str(w, s[i]);
    }
}

static void w_series(writer *w, const kb_series *s)
{
    w_str(w, s->metric);
    if (s->n > 0 && (s->steps == NULL || s->values == NULL)) {
        w_invalid(w, "curve: count without arrays");
    }
    w_varint(w, s->n);
    if (w->rc != KB_OK) {
        return;
    }
    /* at most 10 bytes per step and 8 per value: make room once */
    unsigned char *p = s->n < SIZE_MAX / 32 ? w_room(w, s->n * 18) : NULL;
    if (p == NULL) {
        if (w->rc == KB_OK) {
            w->rc = KB_ENOMEM;
        }
        return;
    }
    size_t k = 0;
    uint64_t prev = 0;
    for (size_t i = 0; i < s->n; i++) {
        /* wrapping difference: exact for any int64 pair, decoded by wrapping addition */
        uint64_t d = (uint64_t)s->steps[i] - prev;
        k += put_varint(p + k, (d << 1) ^ (uint64_t)((int64_t)d >> 63));
        prev = (uint64_t)s->steps[i];
    }
    for (size_t i = 0; i < s->n; i++) {
        put_f64(p + k, s->values[i]);
        k += 8;
    }
    w_done(w, k);
}

static void w_head(writer *w, kb_record_kind kind)
{
    w_byte(w, KB_CODEC_VERSION);
    w_byte(w, (unsigned)kind);
}

static int w_finish(writer *w, const char *what, kb_error *err)
{
    if (w->rc == KB_EINVAL) {
        return kb_error_set(err, KB_EINVAL, "encoding %s: %s", what,
                            w->why != NULL ? w->why : "invalid value");
    }
    if (w->rc != KB_OK) {
        return kb_error_set(err, w->rc, "encoding %s: out of memory", what);
    }
    return KB_OK;
}

int kb_codec_encode_task(kb_buf *out, const kb_task *t, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && t != NULL);
    writer w = {out, KB_OK, NULL};
    w_head(&w, KB_RECORD_TASK);
    w_str(&w, t->id);
    w_str(&w, t->team);
    w_str(&w, t->name);
    w_str(&w, t->fingerprint);
    if ((unsigned)t->type > KB_TASK_TYPE_REGRESSION) {
        w_invalid(&w, "task type out of range");
    }
    w_byte(&w, (unsigned)t->type);
    w_str(&w, t->target);
    w_metrics(&w, t->features, t->n_features);
    w_str(&w, t->feature_set);
    w_strs(&w, t->tags, t->n_tags);
    w_svarint(&w, t->created_at);
    w_str(&w, t->extra);
    return w_finish(&w, "task", err);
}

int kb_codec_encode_run(kb_buf *out, const kb_run *r, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && r != NULL);
    writer w = {out, KB_OK, NULL};
    w_head(&w, KB_RECORD_RUN);
    /* the head (kb_codec_run_head): what indexes and filters need, readable without decoding */
    w_str(&w, r->id);
    w_str(&w, r->task_id);
    w_str(&w, r->space);
    w_str(&w, r->backbone_id);
    w_str(&w, r->team);
    if ((unsigned)r->status > KB_RUN_STATUS_RUNNING) {
        w_invalid(&w, "run status out of range");
    }
    w_byte(&w, (unsigned)r->status);
    w_params(&w, r->config, r->n_config);
    w_params(&w, r->fidelity, r->n_fidelity);
    w_str(&w, r->objective);
    if ((unsigned)r->direction > KB_DIRECTION_MAXIMIZE) {
        w_invalid(&w, "direction out of range");
    }
    w_byte(&w, (unsigned)r->direction);
    w_metrics(&w, r->metrics, r->n_metrics);
    w_count(&w, r->n_curve, r->curve, "curve: count without array");
    for (size_t i = 0; w.rc == KB_OK && i < r->n_curve; i++) {
        w_series(&w, &r->curve[i]);
    }
    w_f64(&w, r->cost_s);
    w_svarint(&w, r->started_at);
    w_svarint(&w, r->finished_at);
    w_str(&w, r->study_id);
    w_str(&w, r->extra);
    return w_finish(&w, "run", err);
}

int kb_codec_encode_backbone(kb_buf *out, const kb_backbone *b, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && b != NULL);
    writer w = {out, KB_OK, NULL};
    w_head(&w, KB_RECORD_BACKBONE);
    w_str(&w, b->id);
    w_str(&w, b->team);
    w_str(&w, b->family);
    w_str(&w, b->arch);
    w_str(&w, b->input_signature);
    w_str(&w, b->source_task);
    w_str(&w, b->uri);
    w_svarint(&w, b->created_at);
    w_str(&w, b->extra);
    return w_finish(&w, "backbone", err);
}

int kb_codec_encode_space(kb_buf *out, const kb_space *s, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && s != NULL);
    writer w = {out, KB_OK, NULL};
    w_head(&w, KB_RECORD_SPACE);
    w_str(&w, s->name);
    w_count(&w, s->n_params, s->params, "space: count without array");
    for (size_t i = 0; w.rc == KB_OK && i < s->n_params; i++) {
        const kb_space_param *p = &s->params[i];
        w_str(&w, p->name);
        if (p->type < KB_SPACE_PARAM_FLOAT || p->type > KB_SPACE_PARAM_BOOL) {
            w_invalid(&w, "space parameter type out of range");
        }
        w_byte(&w, (unsigned)p->type);
        w_f64(&w, p->low);
        w_f64(&w, p->high);
        w_byte(&w, p->log != 0);
        w_strs(&w, p->choices, p->n_choices);
        w_value(&w, &p->default_value);
        w_str(&w, p->cond_parent);
        w_strs(&w, p->cond_in, p->n_cond_in);
    }
    return w_finish(&w, "space", err);
}

int kb_codec_encode_study(kb_buf *out, const kb_study *s, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && s != NULL);
    writer w = {out, KB_OK, NULL};
    w_head(&w, KB_RECORD_STUDY);
    /* id and team first, as for tasks and backbones (kb_codec_peek_id), then the task */
    w_str(&w, s->id);
    w_str(&w, s->team);
    w_str(&w, s->task_id);
    w_str(&w, s->space);
    w_str(&w, s->objective);
    if ((unsigned)s->direction > KB_DIRECTION_MAXIMIZE) {
        w_invalid(&w, "direction out of range");
    }
    w_byte(&w, (unsigned)s->direction);
    w_str(&w, s->method);
    w_str(&w, s->warm_start);
    w_varint(&w, s->seed);
    if (s->n_neighbours > 0 && (s->neighbours == NULL || s->neighbour_weights == NULL)) {
        w_invalid(&w, "neighbours: count without arrays");
    }
    w_varint(&w, s->n_neighbours);
    for (size_t i = 0; w.rc == KB_OK && i < s->n_neighbours; i++) {
        w_str(&w, s->neighbours[i]);
        w_f64(&w, s->neighbour_weights[i]);
    }
    w_str(&w, s->command);
    w_svarint(&w, s->created_at);
    w_str(&w, s->extra);
    return w_finish(&w, "study", err);
}

int kb_codec_encode_record(kb_buf *out, const kb_record *rec, kb_error *err)
{
    KB_CHECK_ARG(rec != NULL);
    switch (rec->kind) {
    case KB_RECORD_TASK: return kb_codec_encode_task(out, &rec->task, err);
    case KB_RECORD_RUN: return kb_codec_encode_run(out, &rec->run, err);
    case KB_RECORD_BACKBONE: return kb_codec_encode_backbone(out, &rec->backbone, err);
    case KB_RECORD_SPACE: return kb_codec_encode_space(out, &rec->space, err);
    case KB_RECORD_STUDY: return kb_codec_encode_study(out, &rec->study, err);
    }
    return kb_error_set(err, KB_EINVAL, "encoding record: kind %d out of range", (int)rec->kind);
}

/*
 * Decoding: a bounded reader plus sticky flags. `bad` (from kb_reader) means corrupt input;
 * `nomem` an allocation failure. Every count is checked against the bytes left divided by the
 * smallest possible element size before anything is allocated.
 */
typedef struct reader {
    kb_reader r;
    int nomem;
    int version;             /* set when the version byte is unknown */
    kb_codec__arena *arena;  /* NULL: every string and array is its own heap allocation */
} reader;

#define ARENA_BLOCK_BYTES ((size_t)64 << 10)

/* Zeroed bytes from the arena, 16-byte granular; NULL when out of memory */
static void *arena_alloc(kb_codec__arena *a, size_t size)
{
    if (size > SIZE_MAX - ARENA_BLOCK_BYTES - sizeof(kb_codec__block)) {
        return NULL;
    }
    size = (size + 15) & ~(size_t)15;
    kb_codec__block *b = a->blocks;
    if (b == NULL || b->cap - b->used < size) {
        size_t cap = size > ARENA_BLOCK_BYTES ? size : ARENA_BLOCK_BYTES;
        b = kb_malloc(sizeof *b + cap);
        if (b == NULL) {
            return NULL;
        }
        b->next = a->blocks;
        b->cap = cap;
        b->used = 0;
        a->blocks = b;
    }
    unsigned char *p = (unsigned char *)(b + 1) + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

void kb_codec__arena_reset(kb_codec__arena *a)
{
    if (a->blocks == NULL) {
        return;
    }
    kb_codec__block *keep = a->blocks, *b = keep->next;
    while (b != NULL) {
        kb_codec__block *next = b->next;
        kb_free(b);
        b = next;
    }
    keep->next = NULL;
    keep->used = 0;
}

void kb_codec__arena_release(kb_codec__arena *a)
{
    kb_codec__arena_reset(a);
    kb_free(a->blocks);
    a->blocks = NULL;
}

/* n zeroed elements of `size` bytes from the heap or the reader's arena */
static void *r_mem(reader *d, size_t n, size_t size)
{
    if (d->arena == NULL) {
        return kb_calloc(n, size);
    }
    return size != 0 && n > SIZE_MAX / size ? NULL : arena_alloc(d->arena, n * size);
}

/*
 * kb_reader_varint accepts overlong forms (0x80 0x00 for 0); the encoder never writes them, so
 * they are rejected here to keep decode-then-encode an identity.
 */
static uint64_t r_varint(reader *d)
{
    const unsigned char *start = d->r.p;
    uint64_t v = kb_reader_varint(&d->r);
    size_t used = (size_t)(d->r.p - start);
    if (!d->r.bad && used > 1 && (start[used - 1] == 0 || (used == 10 && start[9] > 1))) {
        d->r.bad = 1;
    }
    return v;
}

static int64_t r_svarint(reader *d)
{
    uint64_t z = r_varint(d);
    return (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
}

static int r_ok(const reader *d)
{
    return !d->r.bad && !d->nomem;
}

static unsigned r_byte(reader *d)
{
    if (d->r.p >= d->r.end) {
        d->r.bad = 1;
        return 0;
    }
    return *d->r.p++;
}

static unsigned r_enum(reader *d, unsigned lo, unsigned hi)
{
    unsigned v = r_byte(d);
    if (v < lo || v > hi) {
        d->r.bad = 1;
        return lo;
    }
    return v;
}

/* Borrow a string: ptr NULL for NULL. Rejects NUL bytes inside (the encoder cannot write them). */
static kb_codec_str r_strview(reader *d)
{
    kb_codec_str s = {NULL, 0};
    uint64_t n = r_varint(d);
    if (d->r.bad || n == 0) {
        return s;
    }
    n -= 1;
    if (n > kb_reader_left(&d->r)) {
        d->r.bad = 1;
        return s;
    }
    s.ptr = (const char *)d->r.p;
    s.len = (size_t)n;
    if (memchr(s.ptr, '\0', s.len) != NULL) {
        d->r.bad = 1;
        s.ptr = NULL;
        s.len = 0;
        return s;
    }
    d->r.p += n;
    return s;
}

static char *r_str(reader *d)
{
    kb_codec_str s = r_strview(d);
    if (s.ptr == NULL || !r_ok(d)) {
        return NULL;
    }
    char *c = r_mem(d, s.len + 1, 1);
    if (c == NULL) {
        d->nomem = 1;
        return NULL;
    }
    memcpy(c, s.ptr, s.len);
    return c;
}

/* A count of elements at least `min_size` bytes each, bounded by the bytes left. */
static size_t r_count(reader *d, size_t min_size)
{
    uint64_t n = r_varint(d);
    if (d->r.bad) {
        return 0;
    }
    if (n > kb_reader_left(&d->r) / min_size) {
        d->r.bad = 1;
        return 0;
    }
    return (size_t)n;
}

/* Zeroed array of n elements; NULL for n == 0 */
static void *r_alloc(reader *d, size_t n, size_t size)
{
    if (n == 0 || !r_ok(d)) {
        return NULL;
    }
    void *p = r_mem(d, n, size);
    if (p == NULL) {
        d->nomem = 1;
    }
    return p;
}

static void r_value(reader *d, kb_value *v)
{
    memset(v, 0, sizeof *v);
    v->type = (kb_value_type)r_enum(d, KB_VALUE_TYPE_NONE, KB_VALUE_TYPE_BOOL);
    switch (v->type) {
    case KB_VALUE_TYPE_FLOAT: v->f = kb_reader_f64(&d->r); break;
    case KB_VALUE_TYPE_INT: v->i = r_svarint(d); break;
    case KB_VALUE_TYPE_STR:
        v->s = r_str(d);
        if (v->s == NULL && r_ok(d)) {
            /* a string value is never NULL in an encoding the encoder writes */
            d->r.bad = 1;
        }
        break;
    case KB_VALUE_TYPE_BOOL: v->b = (int)r_enum(d, 0, 1); break;
    default: break;
    }
}

static void r_params(reader *d, kb_param **out, size_t *n_out)
{
    size_t n = r_count(d, 2);
    kb_param *p = r_alloc(d, n, sizeof *p);
    if (p == NULL) {
        return;
    }
    *out = p;
    *n_out = n;
    for (size_t i = 0; i < n && r_ok(d); i++) {
        p[i].name = r_str(d);
        r_value(d, &p[i].value);
    }
}

static void r_metrics(reader *d, kb_metric **out, size_t *n_out)
{
    size_t n = r_count(d, 9);
    kb_metric *m = r_alloc(d, n, sizeof *m);
    if (m == NULL) {
        return;
    }
    *out = m;
    *n_out = n;
    for (size_t i = 0; i < n && r_ok(d); i++) {
        m[i].name = r_str(d);
        m[i].value = kb_reader_f64(&d->r);
    }
}

static void r_strs(reader *d, char ***out, size_t *n_out)
{
    size_t n = r_count(d, 1);
    char **s = r_alloc(d, n, sizeof *s);
    if (s == NULL) {
        return;
    }
    *out = s;
    *n_out = n;
    for (size_t i = 0; i < n && r_ok(d); i++) {
        s[i] = r_str(d);
    }
}

static void r_series(reader *d, kb_series *s)
{
    s->metric = r_str(d);
    size_t n = r_count(d, 9); /* a step (>= 1 byte) and a value (8 bytes) per point */
    if (n == 0 || !r_ok(d)) {
        return;
    }
    s->steps = r_mem(d, n, sizeof *s->steps);
    s->values = r_mem(d, n, sizeof *s->values);
    if (s->steps == NULL || s->values == NULL) {
        d->nomem = 1;
        return;
    }
    s->n = n;
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        prev += (uint64_t)r_svarint(d);
        s->steps[i] = (int64_t)prev;
    }
    for (size_t i = 0; i < n; i++) {
        s->values[i] = kb_reader_f64(&d->r);
    }
}

static void r_head(reader *d, kb_record_kind kind)
{
    unsigned v = r_byte(d);
    if (!d->r.bad && v != KB_CODEC_VERSION) {
        d->version = (int)v;
        d->r.bad = 1;
        return;
    }
    if (r_byte(d) != (unsigned)kind) {
        d->r.bad = 1;
    }
}

static int r_finish(reader *d, const char *what, kb_error *err)
{
    if (d->nomem) {
        return kb_error_set(err, KB_ENOMEM, "decoding %s: out of memory", what);
    }
    if (d->version != 0) {
        return kb_error_set(err, KB_EVERSION, "decoding %s: unknown encoding version %d", what,
                            d->version);
    }
    if (d->r.bad) {
        return kb_error_set(err, KB_ECORRUPT, "decoding %s: malformed bytes", what);
    }
    if (kb_reader_left(&d->r) != 0) {
        return kb_error_set(err, KB_ECORRUPT, "decoding %s: %zu trailing bytes", what,
                            kb_reader_left(&d->r));
    }
    return KB_OK;
}

int kb_codec_decode_task(kb_task *out, const void *p, size_t n, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && (p != NULL || n == 0));
    memset(out, 0, sizeof *out);
    reader d = {{0}, 0, 0, NULL};
    kb_reader_init(&d.r, p, n);
    r_head(&d, KB_RECORD_TASK);
    out->id = r_str(&d);
    out->team = r_str(&d);
    out->name = r_str(&d);
    out->fingerprint = r_str(&d);
    out->type = (kb_task_type)r_enum(&d, 0, KB_TASK_TYPE_REGRESSION);
    out->target = r_str(&d);
    r_metrics(&d, &out->features, &out->n_features);
    out->feature_set = r_str(&d);
    r_strs(&d, &out->tags, &out->n_tags);
    out->created_at = r_svarint(&d);
    out->extra = r_str(&d);
    int rc = r_finish(&d, "task", err);
    if (rc != KB_OK) {
        kb_task_release(out);
    }
    return rc;
}

static int decode_run(kb_run *out, const void *p, size_t n, kb_codec__arena *arena,
                      kb_error *err)
{
    memset(out, 0, sizeof *out);
    reader d = {{0}, 0, 0, arena};
    kb_reader_init(&d.r, p, n);
    r_head(&d, KB_RECORD_RUN);
    out->id = r_str(&d);
    out->task_id = r_str(&d);
    out->space = r_str(&d);
    out->backbone_id = r_str(&d);
    out->team = r_str(&d);
    out->status = (kb_run_status)r_enum(&d, 0, KB_RUN_STATUS_RUNNING);
    r_params(&d, &out->config, &out->n_config);
    r_params(&d, &out->fidelity, &out->n_fidelity);
    out->objective = r_str(&d);
    out->direction = (kb_direction)r_enum(&d, 0, KB_DIRECTION_MAXIMIZE);
    r_metrics(&d, &out->metrics, &out->n_metrics);
    size_t n_curve = r_count(&d, 2);
    out->curve = r_alloc(&d, n_curve, sizeof *out->curve);
    if (out->curve != NULL) {
        out->n_curve = n_curve;
        for (size_t i = 0; i < n_curve && r_ok(&d); i++) {
            r_series(&d, &out->curve[i]);
        }
    }
    out->cost_s = kb_reader_f64(&d.r);
    out->started_at = r_svarint(&d);
    out->finished_at = r_svarint(&d);
    out->study_id = r_str(&d);
    out->extra = r_str(&d);
    int rc = r_finish(&d, "run", err);
    if (rc != KB_OK && arena == NULL) {
        kb_run_release(out);
    } else if (rc != KB_OK) {
        memset(out, 0, sizeof *out);
    }
    return rc;
}

int kb_codec_decode_run(kb_run *out, const void *p, size_t n, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && (p != NULL || n == 0));
    return decode_run(out, p, n, NULL, err);
}

int kb_codec__decode_run_in(kb_run *out, const void *p, size_t n, kb_codec__arena *a,
                            kb_error *err)
{
    KB_CHECK_ARG(out != NULL && a != NULL && (p != NULL || n == 0));
    return decode_run(out, p, n, a, err);
}

int kb_codec_decode_backbone(kb_backbone *out, const void *p, size_t n, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && (p != NULL || n == 0));
    memset(out, 0, sizeof *out);
    reader d = {{0}, 0, 0, NULL};
    kb_reader_init(&d.r, p, n);
    r_head(&d, KB_RECORD_BACKBONE);
    out->id = r_str(&d);
    out->team = r_str(&d);
    out->family = r_str(&d);
    out->arch = r_str(&d);
    out->input_signature = r_str(&d);
    out->source_task = r_str(&d);
    out->uri = r_str(&d);
    out->created_at = r_svarint(&d);
    out->extra = r_str(&d);
    int rc = r_finish(&d, "backbone", err);
    if (rc != KB_OK) {
        kb_backbone_release(out);
    }
    return rc;
}

/* smallest encoded space parameter: name, type, low, high, log, choices, default, parent, cond */
#define SPACE_PARAM_MIN_BYTES 23

int kb_codec_decode_space(kb_space *out, const void *p, size_t n, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && (p != NULL || n == 0));
    memset(out, 0, sizeof *out);
    reader d = {{0}, 0, 0, NULL};
    kb_reader_init(&d.r, p, n);
    r_head(&d, KB_RECORD_SPACE);
    out->name = r_str(&d);
    size_t n_params = r_count(&d, SPACE_PARAM_MIN_BYTES);
    out->params = r_alloc(&d, n_params, sizeof *out->params);
    if (out->params != NULL) {
        out->n_params = n_params;
        for (size_t i = 0; i < n_params && r_ok(&d); i++) {
            kb_space_param *sp = &out->params[i];
            sp->name = r_str(&d);
            sp->type = (kb_space_param_type)r_enum(&d, KB_SPACE_PARAM_FLOAT, KB_SPACE_PARAM_BOOL);
            sp->low = kb_reader_f64(&d.r);
            sp->high = kb_reader_f64(&d.r);
            sp->log = (int)r_enum(&d, 0, 1);
            r_strs(&d, &sp->choices, &sp->n_choices);
            r_value(&d, &sp->default_value);
            sp->cond_parent = r_str(&d);
            r_strs(&d, &sp->cond_in, &sp->n_cond_in);
        }
    }
    int rc = r_finish(&d, "space", err);
    if (rc != KB_OK) {
        kb_space_release(out);
    }
    return rc;
}

/* smallest encoded neighbour: a string (>= 1 byte) and a weight (8 bytes) */
#define NEIGHBOUR_MIN_BYTES 9

int kb_codec_decode_study(kb_study *out, const void *p, size_t n, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && (p != NULL || n == 0));
    memset(out, 0, sizeof *out);
    reader d = {{0}, 0, 0, NULL};
    kb_reader_init(&d.r, p, n);
    r_head(&d, KB_RECORD_STUDY);
    out->id = r_str(&d);
    out->team = r_str(&d);
    out->task_id = r_str(&d);
    out->space = r_str(&d);
    out->objective = r_str(&d);
    out->direction = (kb_direction)r_enum(&d, 0, KB_DIRECTION_MAXIMIZE);
    out->method = r_str(&d);
    out->warm_start = r_str(&d);
    out->seed = r_varint(&d);
    size_t n_nb = r_count(&d, NEIGHBOUR_MIN_BYTES);
    out->neighbours = r_alloc(&d, n_nb, sizeof *out->neighbours);
    out->neighbour_weights = r_alloc(&d, n_nb, sizeof *out->neighbour_weights);
    if (out->neighbours != NULL && out->neighbour_weights != NULL) {
        out->n_neighbours = n_nb;
        for (size_t i = 0; i < n_nb && r_ok(&d); i++) {
            out->neighbours[i] = r_str(&d);
            out->neighbour_weights[i] = kb_reader_f64(&d.r);
        }
    }
    out->command = r_str(&d);
    out->created_at = r_svarint(&d);
    out->extra = r_str(&d);
    int rc = r_finish(&d, "study", err);
    if (rc != KB_OK) {
        /* one of the two arrays may be allocated without the other: free both */
        if (out->n_neighbours == 0) {
            kb_free(out->neighbours);
            kb_free(out->neighbour_weights);
            out->neighbours = NULL;
            out->neighbour_weights = NULL;
        }
        kb_study_release(out);
    }
    return rc;
}

static int peek_error(const reader *d, const char *what, kb_error *err)
{
    if (d->version != 0) {
        return kb_error_set(err, KB_EVERSION, "decoding %s: unknown encoding version %d", what,
                            d->version);
    }
    return kb_error_set(err, KB_ECORRUPT, "decoding %s: malformed head", what);
}

int kb_codec_peek_run(kb_codec_run_head *out, const void *p, size_t n, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && (p != NULL || n == 0));
    reader d = {{0}, 0, 0, NULL};
    kb_reader_init(&d.r, p, n);
    r_head(&d, KB_RECORD_RUN);
    out->id = r_strview(&d);
    out->task_id = r_strview(&d);
    out->space = r_strview(&d);
    out->backbone_id = r_strview(&d);
    out->team = r_strview(&d);
    out->status = (kb_run_status)r_enum(&d, 0, KB_RUN_STATUS_RUNNING);
    return d.r.bad ? peek_error(&d, "run", err) : KB_OK;
}

int kb_codec_peek_id(kb_codec_str *id_out, kb_codec_str *team_out, kb_record_kind kind,
                     const void *p, size_t n, kb_error *err)
{
    KB_CHECK_ARG(id_out != NULL && (p != NULL || n == 0));
    reader d = {{0}, 0, 0, NULL};
    kb_reader_init(&d.r, p, n);
    r_head(&d, kind);
    *id_out = r_strview(&d);
    kb_codec_str team = {NULL, 0};
    if (kind == KB_RECORD_TASK || kind == KB_RECORD_BACKBONE || kind == KB_RECORD_STUDY) {
        team = r_strview(&d);
    }
    if (team_out != NULL) {
        *team_out = team;
    }
    return d.r.bad ? peek_error(&d, "record", err) : KB_OK;
}

int kb_codec__peek_study(kb_codec_str *id_out, kb_codec_str *team_out, kb_codec_str *task_out,
                         const void *p, size_t n, kb_error *err)
{
    KB_CHECK_ARG(id_out != NULL && team_out != NULL && task_out != NULL && (p != NULL || n == 0));
    reader d = {{0}, 0, 0, NULL};
    kb_reader_init(&d.r, p, n);
    r_head(&d, KB_RECORD_STUDY);
    *id_out = r_strview(&d);
    *team_out = r_strview(&d);
    *task_out = r_strview(&d);
    return d.r.bad ? peek_error(&d, "study", err) : KB_OK;
}

/*
 * Skipping a run's body field by field, without allocating: the study_id sits near the end of
 * the encoding (after the curve), and the store needs it only to maintain its study index.
 */
static void skip_value(reader *d)
{
    unsigned t = r_enum(d, KB_VALUE_TYPE_NONE, KB_VALUE_TYPE_BOOL);
    switch (t) {
    case KB_VALUE_TYPE_FLOAT: (void)kb_reader_f64(&d->r); break;
    case KB_VALUE_TYPE_INT: (void)r_varint(d); break;
    case KB_VALUE_TYPE_STR: (void)r_strview(d); break;
    case KB_VALUE_TYPE_BOOL: (void)r_enum(d, 0, 1); break;
    default: break;
    }
}

static void skip_params(reader *d)
{
    size_t n = r_count(d, 2);
    for (size_t i = 0; i < n && !d->r.bad; i++) {
        (void)r_strview(d);
        skip_value(d);
    }
}

static void skip_bytes(reader *d, size_t n)
{
    if (n > kb_reader_left(&d->r)) {
        d->r.bad = 1;
        return;
    }
    d->r.p += n;
}

int kb_codec__peek_run_study(kb_codec_str *out, const void *p, size_t n, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && (p != NULL || n == 0));
    kb_codec_str none = {NULL, 0};
    *out = none;
    reader d = {{0}, 0, 0, NULL};
    kb_reader_init(&d.r, p, n);
    r_head(&d, KB_RECORD_RUN);
    for (int i = 0; i < 5; i++) { /* id, task_id, space, backbone_id, team */
        (void)r_strview(&d);
    }
    (void)r_enum(&d, 0, KB_RUN_STATUS_RUNNING);
    skip_params(&d);
    skip_params(&d);
    (void)r_strview(&d); /* objective */
    (void)r_enum(&d, 0, KB_DIRECTION_MAXIMIZE);
    size_t n_metrics = r_count(&d, 9);
    for (size_t i = 0; i < n_metrics && !d.r.bad; i++) {
        (void)r_strview(&d);
        skip_bytes(&d, 8);
    }
    size_t n_curve = r_count(&d, 2);
    for (size_t i = 0; i < n_curve && !d.r.bad; i++) {
        (void)r_strview(&d);
        size_t n_points = r_count(&d, 9);
        for (size_t j = 0; j < n_points && !d.r.bad; j++) {
            (void)r_varint(&d);
        }
        if (!d.r.bad) {
            skip_bytes(&d, 8 * n_points);
        }
    }
    skip_bytes(&d, 8); /* cost_s */
    (void)r_varint(&d); /* started_at */
    (void)r_varint(&d); /* finished_at */
    kb_codec_str sid = r_strview(&d);
    if (d.r.bad) {
        return peek_error(&d, "run", err);
    }
    *out = sid;
    return KB_OK;
}
