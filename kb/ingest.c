#include "kb/ingest.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/core/alloc.h"
#include "engine/core/buf.h"
#include "engine/core/sha256.h"
#include "kb/codec.h"
#include "kb/json.h"
#include "kb/json_priv.h"
#include "kb/store_priv.h"

const char *kb_ingest_format_name(kb_ingest_format f)
{
    switch (f) {
    case KB_INGEST_FORMAT_JSON: return "json";
    case KB_INGEST_FORMAT_OPTUNA_CSV: return "optuna-csv";
    case KB_INGEST_FORMAT_MLFLOW: return "mlflow";
    default: return "auto";
    }
}

static int nomem(kb_error *err)
{
    return kb_error_set(err, KB_ENOMEM, "out of memory");
}

/* ------------------------------------------------------------------------------------------
 * Parser context: delivery, rejection, warnings prefixed with FILE:LINE.
 */

/*
 * The writer layer's record callback: like kb_ingest_record_fn, but `in_arena` says the record
 * lives in the arena that `arena_fn` gave for it (the callback must not release it then).
 */
typedef int (*record_in_fn)(kb_record *rec, const char *file, size_t line, int in_arena,
                            void *payload);
/* The arena that records built now may use (NULL: allocate them one by one) */
typedef kb_json__arena *(*arena_fn)(void *payload);

typedef struct pctx {
    const kb_ingest_opts *opts;
    kb_ingest_record_fn fn;
    record_in_fn fn_in;   /* used instead of fn when set */
    arena_fn arena_of;    /* with fn_in: where JSON Lines runs may be built */
    void *payload;
    kb_ingest_counts *counts;
    const char *file;
    size_t line;          /* current line, for warnings */
    kb_log warn;          /* prefixes opts->log messages with file:line */
    kb_json_reader *jr;
    kb_buf last_task;     /* canonical text of the last inline task delivered */
    kb_buf scratch;
} pctx;

static void warn_prefixed(kb_log_level level, const char *msg, void *payload)
{
    const pctx *c = payload;
    if (c->line > 0) {
        kb_log_printf(&c->opts->log, level, "%s:%zu: %s", c->file, c->line, msg);
    } else {
        kb_log_printf(&c->opts->log, level, "%s: %s", c->file, msg);
    }
}

static void reject(pctx *c, size_t line, const char *reason)
{
    c->counts->rejected++;
    if (c->opts->reject != NULL) {
        c->opts->reject(c->file, line, reason, c->opts->payload);
    }
}

static int deliver_in(pctx *c, kb_record *rec, size_t line, int in_arena)
{
    c->counts->accepted++;
    return c->fn_in != NULL ? c->fn_in(rec, c->file, line, in_arena, c->payload)
                            : c->fn(rec, c->file, line, c->payload);
}

static int deliver(pctx *c, kb_record *rec, size_t line)
{
    return deliver_in(c, rec, line, 0);
}

/*
 * Deliver a run's inline task unless it is the same as the previous one: files that repeat
 * the task on every run line would otherwise send every copy to the store.
 */
static int deliver_inline_task(pctx *c, kb_task *task, size_t line, kb_error *err)
{
    kb_buf_reset(&c->scratch);
    int rc = kb_json_write_task(&c->scratch, task, err);
    if (rc != KB_OK) {
        kb_task_release(task);
        return rc;
    }
    if (c->last_task.len == c->scratch.len &&
        memcmp(c->last_task.data, c->scratch.data, c->scratch.len) == 0) {
        kb_task_release(task);
        return KB_OK;
    }
    kb_buf tmp = c->last_task;
    c->last_task = c->scratch;
    c->scratch = tmp;
    kb_record rec;
    memset(&rec, 0, sizeof rec);
    rec.kind = KB_RECORD_TASK;
    rec.task = *task;
    memset(task, 0, sizeof *task);
    return deliver(c, &rec, line);
}

/* One JSON record from one line or array element; rejects go to the reject callback. */
static int handle_json(pctx *c, kb_record *rec, kb_task *task, size_t line, int rc,
                       const kb_error *rec_err, int in_arena, kb_error *err)
{
    if (rc == KB_ENOMEM) {
        *err = *rec_err;
        return rc;
    }
    if (rc != KB_OK) {
        reject(c, line, rec_err->msg);
        return KB_OK;
    }
    if (task->id != NULL) { /* never with in_arena: the streaming reader declines them */
        rc = deliver_inline_task(c, task, line, err);
        if (rc != KB_OK) {
            kb_record_release(rec);
            return rc;
        }
    }
    return deliver_in(c, rec, line, in_arena);
}

static int json_line(pctx *c, const char *p, size_t n, size_t line, kb_error *err)
{
    while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t')) {
        n--;
    }
    size_t k = 0;
    while (k < n && (p[k] == ' ' || p[k] == '\t')) {
        k++;
    }
    if (k == n) {
        return KB_OK; /* blank line */
    }
    c->line = line;
    kb_record rec;
    kb_task task;
    kb_error rec_err = KB_ERROR_INIT;
    kb_json__arena *arena = c->arena_of != NULL ? c->arena_of(c->payload) : NULL;
    int fast = 0;
    int rc = kb_json__read_record(&rec, &task, c->jr, p + k, n - k, &c->warn,
                                  KB_JSON__PATH_AUTO, arena, &fast, &rec_err);
    return handle_json(c, &rec, &task, line, rc, &rec_err, fast && arena != NULL, err);
}

typedef struct array_ctx {
    pctx *c;
    kb_error *err;
} array_ctx;

static int array_element(kb_record *rec, kb_task *task, size_t line, const kb_error *rec_err,
                         void *payload)
{
    array_ctx *a = payload;
    a->c->line = line;
    return handle_json(a->c, rec, task, line, rec_err == NULL ? KB_OK : KB_EFORMAT, rec_err, 0,
                       a->err);
}

/* ------------------------------------------------------------------------------------------
 * Input: a stream read in chunks (JSON Lines) or slurped whole (arrays, CSV, MLflow files).
 */

#define READ_CHUNK (1u << 20)

typedef struct src {
    FILE *f;
    int own;
    char *buf;
    size_t len, pos, cap;
    int eof;
} src;

static int src_open(src *s, const char *path, kb_error *err)
{
    memset(s, 0, sizeof *s);
    if (strcmp(path, "-") == 0) {
        s->f = stdin;
        return KB_OK;
    }
    s->f = fopen(path, "rb");
    if (s->f == NULL) {
        int e = errno;
        return kb_error_set_cause(err, e == ENOENT ? KB_ENOTFOUND : KB_EIO, e,
                                  "cannot open '%s': %s", path, strerror(e));
    }
    s->own = 1;
    return KB_OK;
}

static void src_close(src *s)
{
    if (s->own && s->f != NULL) {
        fclose(s->f);
    }
    kb_free(s->buf);
    memset(s, 0, sizeof *s);
}

/* Read more bytes after the buffered ones, growing the buffer when it is full. */
static int src_fill(src *s, const char *name, kb_error *err)
{
    if (s->eof) {
        return KB_OK;
    }
    if (s->pos > 0 && s->pos == s->len) {
        s->pos = s->len = 0;
    } else if (s->pos > 0 && s->len == s->cap) {
        memmove(s->buf, s->buf + s->pos, s->len - s->pos);
        s->len -= s->pos;
        s->pos = 0;
    }
    if (s->len == s->cap) {
        size_t cap = s->cap == 0 ? READ_CHUNK : s->cap * 2;
        char *b = kb_realloc(s->buf, cap + 1);
        if (b == NULL) {
            return nomem(err);
        }
        s->buf = b;
        s->cap = cap;
    }
    size_t got = fread(s->buf + s->len, 1, s->cap - s->len, s->f);
    s->len += got;
    if (got == 0) {
        if (ferror(s->f)) {
            int e = errno;
            return kb_error_set_cause(err, KB_EIO, e, "reading '%s': %s", name, strerror(e));
        }
        s->eof = 1;
    }
    return KB_OK;
}

static int src_slurp(src *s, const char *name, kb_error *err)
{
    while (!s->eof) {
        int rc = src_fill(s, name, err);
        if (rc != KB_OK) {
            return rc;
        }
    }
    return KB_OK;
}

static int json_lines_stream(pctx *c, src *s, kb_error *err)
{
    size_t line = 1;
    for (;;) {
        char *start = s->buf + s->pos;
        char *nl = s->pos < s->len ? memchr(start, '\n', s->len - s->pos) : NULL;
        if (nl != NULL) {
            int rc = json_line(c, start, (size_t)(nl - start), line, err);
            if (rc != KB_OK) {
                return rc;
            }
            s->pos += (size_t)(nl - start) + 1;
            line++;
            continue;
        }
        if (s->eof) {
            /* a last line without its newline is still a line (truncated ones fail to parse) */
            return s->pos < s->len ? json_line(c, start, s->len - s->pos, line, err) : KB_OK;
        }
        int rc = src_fill(s, c->file, err);
        if (rc != KB_OK) {
            return rc;
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * Values as text (CSV cells, MLflow params): int, float, bool or string.
 */

static int parse_int64(int64_t *out, const char *s)
{
    if (*s == '\0') {
        return -1;
    }
    const char *p = s + (*s == '-' || *s == '+');
    if (*p < '0' || *p > '9') {
        return -1;
    }
    for (const char *q = p; *q != '\0'; q++) {
        if (*q < '0' || *q > '9') {
            return -1;
        }
    }
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_double(double *out, const char *s)
{
    if (*s == '\0' || *s == ' ') {
        return -1;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

static int infer_value(kb_value *out, const char *s)
{
    memset(out, 0, sizeof *out);
    if (parse_int64(&out->i, s) == 0) {
        out->type = KB_VALUE_TYPE_INT;
        return KB_OK;
    }
    if (parse_double(&out->f, s) == 0 && isfinite(out->f)) {
        out->type = KB_VALUE_TYPE_FLOAT;
        return KB_OK;
    }
    if (strcmp(s, "True") == 0 || strcmp(s, "true") == 0 || strcmp(s, "False") == 0 ||
        strcmp(s, "false") == 0) {
        out->type = KB_VALUE_TYPE_BOOL;
        out->b = s[0] == 'T' || s[0] == 't';
        return KB_OK;
    }
    out->type = KB_VALUE_TYPE_STR;
    out->s = kb_strdup(s);
    return out->s == NULL ? KB_ENOMEM : KB_OK;
}

static void put_value_json(kb_buf *b, const kb_value *v)
{
    switch (v->type) {
    case KB_VALUE_TYPE_INT: kb_buf_printf(b, "%lld", (long long)v->i); break;
    case KB_VALUE_TYPE_FLOAT: kb_json_put_double(b, v->f); break;
    case KB_VALUE_TYPE_BOOL: kb_buf_puts(b, v->b ? "true" : "false"); break;
    case KB_VALUE_TYPE_STR: kb_json_put_string(b, v->s); break;
    default: kb_buf_puts(b, "null"); break;
    }
}

/* Append a param (takes ownership of name on success). */
static int params_push(kb_param **p, size_t *n, size_t *cap, const char *name, const char *text)
{
    if (*n == *cap) {
        size_t nc = *cap < 8 ? 8 : *cap * 2;
        kb_param *np = kb_realloc_array(*p, nc, sizeof *np);
        if (np == NULL) {
            return KB_ENOMEM;
        }
        *p = np;
        *cap = nc;
    }
    kb_param *q = &(*p)[*n];
    memset(q, 0, sizeof *q);
    if (infer_value(&q->value, text) != KB_OK) {
        return KB_ENOMEM;
    }
    q->name = kb_strdup(name);
    if (q->name == NULL) {
        kb_value_release(&q->value);
        return KB_ENOMEM;
    }
    (*n)++;
    return KB_OK;
}

/* ------------------------------------------------------------------------------------------
 * CSV (RFC 4180): fields separated by commas, optionally quoted with "" as an escaped quote;
 * quoted fields may span lines; CRLF or LF line ends.
 */

typedef struct csv {
    const char *p, *end;
    size_t line;
    kb_buf cells;    /* NUL-separated cell texts of the current record */
    size_t *offs;    /* cell start offsets */
    size_t n, cap;
} csv;

/* Next record: 1 = got one, 0 = end of input, KB_EFORMAT (msg in err) or KB_ENOMEM. */
static int csv_next(csv *c, size_t *line_out, kb_error *err)
{
    while (c->p < c->end && (*c->p == '\n' || *c->p == '\r')) {
        c->line += *c->p == '\n';
        c->p++;
    }
    if (c->p >= c->end) {
        return 0;
    }
    *line_out = c->line;
    kb_buf_reset(&c->cells);
    c->n = 0;
    for (;;) {
        if (c->n == c->cap) {
            size_t nc = c->cap < 16 ? 16 : c->cap * 2;
            size_t *no = kb_realloc_array(c->offs, nc, sizeof *no);
            if (no == NULL) {
                return nomem(err);
            }
            c->offs = no;
            c->cap = nc;
        }
        c->offs[c->n++] = c->cells.len;
        if (c->p < c->end && *c->p == '"') {
            c->p++;
            for (;;) {
                if (c->p >= c->end) {
                    return kb_error_set(err, KB_EFORMAT, "unterminated quoted field");
                }
                const char *q = c->p;
                while (q < c->end && *q != '"') {
                    c->line += *q == '\n';
                    q++;
                }
                if (kb_buf_append(&c->cells, c->p, (size_t)(q - c->p)) != KB_OK) {
                    return nomem(err);
                }
                c->p = q;
                if (q >= c->end) {
                    continue;
                }
                if (q + 1 < c->end && q[1] == '"') {
                    if (kb_buf_putc(&c->cells, '"') != KB_OK) {
                        return nomem(err);
                    }
                    c->p = q + 2;
                    continue;
                }
                c->p = q + 1;
                break;
            }
            if (c->p < c->end && *c->p != ',' && *c->p != '\n' && *c->p != '\r') {
                return kb_error_set(err, KB_EFORMAT, "unexpected character after a quoted "
                                    "field");
            }
        } else {
            const char *q = c->p;
            while (q < c->end && *q != ',' && *q != '\n' && *q != '\r') {
                if (*q == '"') {
                    return kb_error_set(err, KB_EFORMAT, "quote inside an unquoted field");
                }
                q++;
            }
            if (kb_buf_append(&c->cells, c->p, (size_t)(q - c->p)) != KB_OK) {
                return nomem(err);
            }
            c->p = q;
        }
        if (kb_buf_putc(&c->cells, '\0') != KB_OK) {
            return nomem(err);
        }
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '\r') {
            c->p++;
        }
        if (c->p < c->end && *c->p == '\n') {
            c->p++;
            c->line++;
        }
        return 1;
    }
}

/* Skip the rest of a bad record: up to the next line end outside quotes (best effort). */
static void csv_skip_line(csv *c)
{
    while (c->p < c->end && *c->p != '\n') {
        c->p++;
    }
}

static const char *csv_cell(const csv *c, size_t i)
{
    return c->cells.data + c->offs[i];
}

static void csv_release(csv *c)
{
    kb_buf_release(&c->cells);
    kb_free(c->offs);
}

/* Column roles of an Optuna trials_dataframe() CSV. */
enum {
    COL_IGNORE, COL_NUMBER, COL_VALUE, COL_VALUES, COL_PARAM, COL_USER, COL_SYSTEM, COL_STATE,
    COL_START, COL_COMPLETE, COL_DURATION, COL_OTHER
};

typedef struct optuna {
    int *role;
    size_t n_cols;
    char **names;     /* header cells */
    char study[80];
    const char *objective;
} optuna;

static int prefix_is(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "0 days 00:00:01.234567" (pandas Timedelta) or plain seconds -> seconds. */
static int parse_duration(double *out, const char *s)
{
    if (parse_double(out, s) == 0) {
        return isfinite(*out) && *out >= 0 ? 0 : -1;
    }
    long days = 0;
    int h = 0, m = 0, used = 0;
    double sec = 0;
    if (sscanf(s, "%ld days %d:%d:%lf%n", &days, &h, &m, &sec, &used) != 4 ||
        s[used] != '\0' || days < 0 || h < 0 || m < 0 || sec < 0) {
        return -1;
    }
    *out = (double)days * 86400.0 + h * 3600.0 + m * 60.0 + sec;
    return 0;
}

static int state_status(kb_run_status *out, const char *s)
{
    static const struct {
        const char *name;
        kb_run_status st;
    } map[] = {{"COMPLETE", KB_RUN_STATUS_OK},      {"FAIL", KB_RUN_STATUS_FAILED},
               {"PRUNED", KB_RUN_STATUS_PRUNED},    {"RUNNING", KB_RUN_STATUS_RUNNING},
               {"WAITING", KB_RUN_STATUS_RUNNING},  {"TrialState.COMPLETE", KB_RUN_STATUS_OK},
               {"TrialState.FAIL", KB_RUN_STATUS_FAILED},
               {"TrialState.PRUNED", KB_RUN_STATUS_PRUNED},
               {"TrialState.RUNNING", KB_RUN_STATUS_RUNNING},
               {"TrialState.WAITING", KB_RUN_STATUS_RUNNING}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(s, map[i].name) == 0) {
            *out = map[i].st;
            return 0;
        }
    }
    return -1;
}

static int metrics_push(kb_metric **m, size_t *n, const char *name, double v)
{
    kb_metric *nm = kb_realloc_array(*m, *n + 1, sizeof *nm);
    if (nm == NULL) {
        return KB_ENOMEM;
    }
    *m = nm;
    nm[*n].name = kb_strdup(name);
    if (nm[*n].name == NULL) {
        return KB_ENOMEM;
    }
    nm[*n].value = v;
    (*n)++;
    return KB_OK;
}

/*
 * The extra text of a CSV row: {"system_attrs":{...},"user_attrs":{...},"<other>":v}, written
 * group by group and then made canonical (sorted keys) by the JSON writer.
 */
static int optuna_extra(char **out, pctx *c, const optuna *o, const csv *cv, kb_error *err)
{
    static const char *const groups[] = {"system_attrs", "user_attrs", NULL};
    static const int group_role[] = {COL_SYSTEM, COL_USER};
    kb_buf b = KB_BUF_INIT;
    int rc = kb_buf_putc(&b, '{');
    int n_items = 0;
    for (int g = 0; g < 3 && rc == KB_OK; g++) {
        int wrote_group = 0;
        for (size_t i = 0; i < o->n_cols && rc == KB_OK; i++) {
            const char *cell = csv_cell(cv, i);
            int role = o->role[i];
            int in_group = g < 2 ? role == group_role[g] : role == COL_OTHER;
            if (!in_group || cell[0] == '\0') {
                continue;
            }
            kb_value v;
            if (infer_value(&v, cell) != KB_OK) {
                rc = KB_ENOMEM;
                break;
            }
            if (g < 2) {
                const char *key = o->names[i] + strlen(groups[g]) + 1;
                if (!wrote_group) {
                    if (n_items++ > 0) {
                        kb_buf_putc(&b, ',');
                    }
                    kb_json_put_string(&b, groups[g]);
                    kb_buf_puts(&b, ":{");
                    wrote_group = 1;
                } else {
                    kb_buf_putc(&b, ',');
                }
                kb_json_put_string(&b, key);
                kb_buf_putc(&b, ':');
                put_value_json(&b, &v);
            } else {
                if (n_items++ > 0) {
                    kb_buf_putc(&b, ',');
                }
                kb_json_put_string(&b, o->names[i]);
                kb_buf_putc(&b, ':');
                put_value_json(&b, &v);
            }
            kb_value_release(&v);
        }
        if (wrote_group) {
            kb_buf_putc(&b, '}');
        }
    }
    kb_buf_putc(&b, '}');
    if (rc == KB_OK && b.data == NULL) {
        rc = KB_ENOMEM;
    }
    if (rc == KB_OK && n_items > 0) {
        kb_buf_reset(&c->scratch);
        rc = kb_json_canonical_text(&c->scratch, c->jr, b.data, b.len, err);
        if (rc == KB_OK) {
            *out = kb_strdup(c->scratch.data);
            rc = *out == NULL ? KB_ENOMEM : KB_OK;
        }
    }
    kb_buf_release(&b);
    return rc == KB_ENOMEM ? nomem(err) : rc;
}

static int row_err(kb_error *err, const char *col, const char *what, const char *cell)
{
    return kb_error_set(err, KB_EFORMAT, "field '%s': %s, got '%.40s'", col, what, cell);
}

/* One CSV row -> one run; KB_EFORMAT for a bad row. */
static int optuna_row(kb_run *r, pctx *c, const optuna *o, const csv *cv, kb_error *err)
{
    const kb_ingest_opts *opts = c->opts;
    memset(r, 0, sizeof *r);
    r->cost_s = NAN;
    r->started_at = KB_TIME_UNKNOWN;
    r->finished_at = KB_TIME_UNKNOWN;
    r->direction = opts->direction == KB_DIRECTION_MAXIMIZE ? KB_DIRECTION_MAXIMIZE
                                                            : KB_DIRECTION_MINIMIZE;
    size_t cap_config = 0;
    int64_t number = -1;
    int have_state = 0;
    for (size_t i = 0; i < o->n_cols; i++) {
        const char *cell = csv_cell(cv, i);
        const char *name = o->names[i];
        int rc = KB_OK;
        switch (o->role[i]) {
        case COL_NUMBER:
            if (parse_int64(&number, cell) != 0 || number < 0) {
                return row_err(err, name, "expected a non-negative integer", cell);
            }
            break;
        case COL_VALUE:
        case COL_VALUES:
            if (cell[0] != '\0') {
                double v;
                if (parse_double(&v, cell) != 0) {
                    return row_err(err, name, "expected a number", cell);
                }
                const char *mname = o->role[i] == COL_VALUE ? o->objective : name;
                rc = metrics_push(&r->metrics, &r->n_metrics, mname, v);
            }
            break;
        case COL_PARAM:
            if (cell[0] != '\0') {
                rc = params_push(&r->config, &r->n_config, &cap_config, name + 7, cell);
            }
            break;
        case COL_STATE:
            if (state_status(&r->status, cell) != 0) {
                return row_err(err, name,
                               "expected COMPLETE, FAIL, PRUNED, RUNNING or WAITING", cell);
            }
            have_state = 1;
            break;
        case COL_START:
        case COL_COMPLETE:
            if (cell[0] != '\0') {
                int64_t *t = o->role[i] == COL_START ? &r->started_at : &r->finished_at;
                if (kb_json_parse_time(t, cell, strlen(cell), 1) != KB_OK) {
                    return row_err(err, name, "expected a date and time", cell);
                }
            }
            break;
        case COL_DURATION:
            if (cell[0] != '\0' && parse_duration(&r->cost_s, cell) != 0) {
                return row_err(err, name, "expected a duration like '0 days 00:00:01.5'",
                               cell);
            }
            break;
        default: break;
        }
        if (rc != KB_OK) {
            return nomem(err);
        }
    }
    if (number < 0) {
        return kb_error_set(err, KB_EFORMAT, "field 'number': required");
    }
    if (!have_state) {
        return kb_error_set(err, KB_EFORMAT, "field 'state': required");
    }
    if (isnan(r->cost_s) && r->started_at != KB_TIME_UNKNOWN &&
        r->finished_at != KB_TIME_UNKNOWN && r->finished_at >= r->started_at) {
        r->cost_s = (double)(r->finished_at - r->started_at) / 1e6;
    }
    char id[128];
    snprintf(id, sizeof id, "optuna:%s:%lld", o->study, (long long)number);
    char study_id[96];
    snprintf(study_id, sizeof study_id, "optuna:%s", o->study);
    r->id = kb_strdup(id);
    r->task_id = kb_strdup(opts->task_id);
    r->study_id = kb_strdup(study_id);
    r->objective = kb_strdup(o->objective);
    if (r->id == NULL || r->task_id == NULL || r->study_id == NULL || r->objective == NULL) {
        return nomem(err);
    }
    if (opts->space != NULL && (r->space = kb_strdup(opts->space)) == NULL) {
        return nomem(err);
    }
    int rc = optuna_extra(&r->extra, c, o, cv, err);
    if (rc == KB_OK) {
        rc = kb_json_canonicalize_run(r, err);
    }
    if (rc == KB_OK) {
        rc = kb_json_check_run(r, err);
    }
    return rc;
}

static int optuna_header(optuna *o, pctx *c, const csv *cv, kb_error *err)
{
    o->n_cols = cv->n;
    o->role = kb_calloc(cv->n, sizeof *o->role);
    o->names = kb_calloc(cv->n, sizeof *o->names);
    if (o->role == NULL || o->names == NULL) {
        return nomem(err);
    }
    int have_number = 0, have_state = 0, have_value = 0;
    for (size_t i = 0; i < cv->n; i++) {
        const char *h = csv_cell(cv, i);
        o->names[i] = kb_strdup(h);
        if (o->names[i] == NULL) {
            return nomem(err);
        }
        int role = COL_OTHER;
        if (i == 0 && h[0] == '\0') {
            role = COL_IGNORE; /* pandas' index column */
        } else if (strcmp(h, "number") == 0) {
            role = COL_NUMBER;
            have_number = 1;
        } else if (strcmp(h, "value") == 0) {
            role = COL_VALUE;
            have_value = 1;
        } else if (prefix_is(h, "values_")) {
            role = COL_VALUES;
            have_value = 1;
        } else if (prefix_is(h, "params_") && h[7] != '\0') {
            role = COL_PARAM;
        } else if (prefix_is(h, "user_attrs_") && h[11] != '\0') {
            role = COL_USER;
        } else if (prefix_is(h, "system_attrs_") && h[13] != '\0') {
            role = COL_SYSTEM;
        } else if (strcmp(h, "state") == 0) {
            role = COL_STATE;
            have_state = 1;
        } else if (strcmp(h, "datetime_start") == 0) {
            role = COL_START;
        } else if (strcmp(h, "datetime_complete") == 0) {
            role = COL_COMPLETE;
        } else if (strcmp(h, "duration") == 0) {
            role = COL_DURATION;
        } else {
            c->line = 1;
            kb_log_printf(&c->warn, KB_LOG_LEVEL_WARNING,
                          "column '%s': unknown column kept under 'extra'", h);
        }
        o->role[i] = role;
    }
    if (!have_number || !have_state) {
        return kb_error_set(err, KB_EFORMAT, "%s:1: not an Optuna CSV: missing column '%s'",
                            c->file, have_number ? "state" : "number");
    }
    if (!have_value) {
        c->line = 1;
        kb_log_printf(&c->warn, KB_LOG_LEVEL_WARNING,
                      "no 'value' or 'values_N' column: runs get no metrics");
    }
    return KB_OK;
}

static void optuna_release(optuna *o)
{
    for (size_t i = 0; o->names != NULL && i < o->n_cols; i++) {
        kb_free(o->names[i]);
    }
    kb_free(o->names);
    kb_free(o->role);
}

static int optuna_csv(pctx *c, const char *data, size_t n, kb_error *err)
{
    const kb_ingest_opts *opts = c->opts;
    if (opts->task_id == NULL || opts->task_id[0] == '\0') {
        return kb_error_set(err, KB_EINVAL, "%s: an Optuna CSV needs the task its runs belong "
                            "to (--task ID)", c->file);
    }
    optuna o;
    memset(&o, 0, sizeof o);
    o.objective = opts->objective != NULL ? opts->objective : "value";
    if (opts->study != NULL) {
        snprintf(o.study, sizeof o.study, "%s", opts->study);
    } else {
        unsigned char d[32];
        kb_sha256_digest(data, n, d);
        kb_sha256_hex(o.study, d, 8);
    }
    csv cv = {data, data + n, 1, KB_BUF_INIT, NULL, 0, 0};
    /* a UTF-8 byte order mark is not part of the first column's name */
    if (n >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        cv.p += 3;
    }
    size_t line = 1;
    int rc = csv_next(&cv, &line, err);
    if (rc == 1) {
        rc = optuna_header(&o, c, &cv, err);
    } else if (rc == 0) {
        rc = kb_error_set(err, KB_EFORMAT, "%s: empty CSV", c->file);
    } else if (rc == KB_EFORMAT) {
        kb_error_prefix(err, "%s:1: ", c->file);
    }
    while (rc == KB_OK) {
        kb_error row_e = KB_ERROR_INIT;
        int got = csv_next(&cv, &line, &row_e);
        if (got == 0) {
            break;
        }
        if (got == KB_ENOMEM) {
            *err = row_e;
            rc = KB_ENOMEM;
            break;
        }
        c->line = line;
        if (got == KB_EFORMAT) {
            reject(c, line, row_e.msg);
            csv_skip_line(&cv);
            continue;
        }
        if (cv.n != o.n_cols) {
            char why[96];
            snprintf(why, sizeof why, "expected %zu fields as in the header, got %zu", o.n_cols,
                     cv.n);
            reject(c, line, why);
            continue;
        }
        if (!kb_json_utf8_valid(cv.cells.data, cv.cells.len)) {
            reject(c, line, "invalid UTF-8");
            continue;
        }
        kb_record rec;
        memset(&rec, 0, sizeof rec);
        rec.kind = KB_RECORD_RUN;
        int rrc = optuna_row(&rec.run, c, &o, &cv, &row_e);
        if (rrc == KB_ENOMEM) {
            kb_record_release(&rec);
            *err = row_e;
            rc = rrc;
            break;
        }
        if (rrc != KB_OK) {
            kb_record_release(&rec);
            reject(c, line, row_e.msg);
            continue;
        }
        rc = deliver(c, &rec, line);
    }
    csv_release(&cv);
    optuna_release(&o);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Detection and the parser layer's entry points.
 */

static size_t skip_space(const char *p, size_t n, size_t k)
{
    while (k < n && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r' || p[k] == '\n')) {
        k++;
    }
    return k;
}

/* Whether the first line has the columns `number` and `state` (an Optuna CSV header). */
static int looks_like_optuna(const char *p, size_t n)
{
    const char *nl = memchr(p, '\n', n);
    size_t len = nl != NULL ? (size_t)(nl - p) : n;
    int number = 0, state = 0;
    size_t k = 0;
    while (k <= len) {
        size_t e = k;
        while (e < len && p[e] != ',') {
            e++;
        }
        size_t fl = e - k;
        const char *f = p + k;
        if (fl > 0 && f[fl - 1] == '\r') {
            fl--;
        }
        if (fl >= 2 && f[0] == '"' && f[fl - 1] == '"') {
            f++;
            fl -= 2;
        }
        number |= fl == 6 && memcmp(f, "number", 6) == 0;
        state |= fl == 5 && memcmp(f, "state", 5) == 0;
        k = e + 1;
    }
    return number && state;
}

static int unknown_format(const char *name, kb_error *err)
{
    return kb_error_set(err, KB_EFORMAT,
                        "%s: unknown format (expected kb JSON Lines, a JSON array of records, "
                        "an Optuna CSV with 'number' and 'state' columns, or an MLflow "
                        "directory)",
                        name);
}

/* Parse `n` bytes already in memory (the whole input). */
static int parse_memory(pctx *c, const char *data, size_t n, kb_ingest_format fmt,
                        kb_error *err)
{
    size_t k = n >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    k = skip_space(data, n, k);
    if (fmt == KB_INGEST_FORMAT_AUTO || fmt == KB_INGEST_FORMAT_JSON) {
        if (k == n && fmt == KB_INGEST_FORMAT_AUTO) {
            c->line = 0;
            kb_log_printf(&c->warn, KB_LOG_LEVEL_WARNING, "empty input: no records");
            return KB_OK;
        }
        if (k < n && data[k] == '[') {
            array_ctx a = {c, err};
            size_t line = 0;
            int rc = kb_json_read_array(c->jr, data, n, &c->warn, array_element, &a, &line, err);
            if (rc == KB_EFORMAT) {
                kb_error_prefix(err, "%s:%zu: ", c->file, line);
            }
            return rc;
        }
        if ((k < n && data[k] == '{') || fmt == KB_INGEST_FORMAT_JSON) {
            src s;
            memset(&s, 0, sizeof s);
            s.buf = (char *)data;
            s.len = n;
            s.eof = 1;
            s.pos = n >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
            return json_lines_stream(c, &s, err);
        }
    }
    if (fmt == KB_INGEST_FORMAT_OPTUNA_CSV ||
        (fmt == KB_INGEST_FORMAT_AUTO && looks_like_optuna(data, n))) {
        return optuna_csv(c, data, n, err);
    }
    if (fmt == KB_INGEST_FORMAT_MLFLOW) {
        return kb_error_set(err, KB_EINVAL, "%s: an MLflow store is a directory", c->file);
    }
    if (!kb_json_utf8_valid(data, n < 4096 ? n : 4096)) {
        return kb_error_set(err, KB_EFORMAT,
                            "%s: unknown format: binary data (not UTF-8 text)", c->file);
    }
    return unknown_format(c->file, err);
}

static int pctx_init(pctx *c, kb_ingest_counts *counts, const char *file,
                     const kb_ingest_opts *opts, kb_ingest_record_fn fn, void *payload,
                     kb_error *err)
{
    memset(c, 0, sizeof *c);
    memset(counts, 0, sizeof *counts);
    c->opts = opts;
    c->fn = fn;
    c->payload = payload;
    c->counts = counts;
    c->file = file;
    c->warn.fn = warn_prefixed;
    c->warn.payload = c;
    return kb_json_reader_new(&c->jr, err);
}

static void pctx_release(pctx *c)
{
    kb_json_reader_free(c->jr);
    kb_buf_release(&c->last_task);
    kb_buf_release(&c->scratch);
}

int kb_ingest_parse_buffer(kb_ingest_counts *counts, const char *data, size_t n,
                           const char *name, const kb_ingest_opts *opts,
                           kb_ingest_record_fn fn, void *payload, kb_error *err)
{
    KB_CHECK_ARG(fn != NULL && (data != NULL || n == 0));
    kb_ingest_opts defaults = KB_INGEST_OPTS_INIT;
    kb_ingest_counts local;
    pctx c;
    int rc = pctx_init(&c, counts != NULL ? counts : &local, name != NULL ? name : "-",
                       opts != NULL ? opts : &defaults, fn, payload, err);
    if (rc == KB_OK) {
        rc = parse_memory(&c, data != NULL ? data : "", n, c.opts->format, err);
    }
    pctx_release(&c);
    return rc;
}

static int mlflow_dir(pctx *c, const char *path, int depth, kb_error *err);

/* kb_ingest_parse_file, delivering through `fn` or (when set) `fn_in` with `arena_of` */
static int parse_file(kb_ingest_counts *counts, const char *path, const kb_ingest_opts *opts,
                      kb_ingest_record_fn fn, record_in_fn fn_in, arena_fn arena_of,
                      void *payload, kb_error *err)
{
    kb_ingest_opts defaults = KB_INGEST_OPTS_INIT;
    kb_ingest_counts local;
    pctx c;
    int rc = pctx_init(&c, counts != NULL ? counts : &local, path,
                       opts != NULL ? opts : &defaults, fn, payload, err);
    c.fn_in = fn_in;
    c.arena_of = arena_of;
    if (rc != KB_OK) {
        pctx_release(&c);
        return rc;
    }
    kb_ingest_format fmt = c.opts->format;
    struct stat st;
    if (strcmp(path, "-") != 0 && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = fmt == KB_INGEST_FORMAT_AUTO || fmt == KB_INGEST_FORMAT_MLFLOW
                 ? mlflow_dir(&c, path, 0, err)
                 : kb_error_set(err, KB_EINVAL, "%s: is a directory", path);
        if (rc == KB_OK && c.counts->accepted + c.counts->rejected == 0) {
            c.line = 0;
            kb_log_printf(&c.warn, KB_LOG_LEVEL_WARNING,
                          "no MLflow runs found (a run is a directory with meta.yaml and "
                          "params/, metrics/ or tags/)");
        }
        pctx_release(&c);
        return rc;
    }
    src s;
    rc = src_open(&s, path, err);
    /* Detect from the first non-space byte; JSON Lines then stream, the rest are slurped. */
    size_t k = 0;
    while (rc == KB_OK) {
        if (k == 0 && s.len >= 3 && memcmp(s.buf, "\xEF\xBB\xBF", 3) == 0) {
            k = 3;
        }
        k = skip_space(s.buf, s.len, k);
        if (k < s.len || s.eof) {
            break;
        }
        rc = src_fill(&s, path, err);
    }
    if (rc == KB_OK) {
        int lines = (fmt == KB_INGEST_FORMAT_AUTO && k < s.len && s.buf[k] == '{') ||
                    (fmt == KB_INGEST_FORMAT_JSON && !(k < s.len && s.buf[k] == '['));
        if (lines) {
            if (s.len >= 3 && memcmp(s.buf, "\xEF\xBB\xBF", 3) == 0) {
                s.pos = 3; /* a UTF-8 byte order mark is not part of the first line */
            }
            rc = json_lines_stream(&c, &s, err);
        } else {
            rc = src_slurp(&s, path, err);
            if (rc == KB_OK) {
                rc = parse_memory(&c, s.buf != NULL ? s.buf : "", s.len, fmt, err);
            }
        }
    }
    src_close(&s);
    pctx_release(&c);
    return rc;
}

int kb_ingest_parse_file(kb_ingest_counts *counts, const char *path,
                         const kb_ingest_opts *opts, kb_ingest_record_fn fn, void *payload,
                         kb_error *err)
{
    KB_CHECK_ARG(path != NULL && fn != NULL);
    return parse_file(counts, path, opts, fn, NULL, NULL, payload, err);
}

/* ------------------------------------------------------------------------------------------
 * MLflow file store.
 */

/* Read a whole small file into a NUL-terminated buffer owned by the caller. */
static int slurp_path(char **out, size_t *n_out, const char *path, kb_error *err)
{
    src s;
    int rc = src_open(&s, path, err);
    if (rc == KB_OK) {
        rc = src_slurp(&s, path, err);
    }
    if (rc == KB_OK && s.buf == NULL) {
        s.buf = kb_malloc(1);
        rc = s.buf == NULL ? nomem(err) : KB_OK;
    }
    if (rc != KB_OK) {
        src_close(&s);
        return rc;
    }
    s.buf[s.len] = '\0';
    *out = s.buf;
    *n_out = s.len;
    s.buf = NULL;
    src_close(&s);
    return KB_OK;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entry names of a directory (without "." entries); caller frees with names_free. */
static int list_dir(char ***out, size_t *n_out, const char *path, kb_error *err)
{
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(path);
    if (d == NULL) {
        int e = errno;
        return kb_error_set_cause(err, KB_EIO, e, "cannot open directory '%s': %s", path,
                                  strerror(e));
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = KB_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        if (n == cap) {
            cap = cap < 16 ? 16 : cap * 2;
            char **nn = kb_realloc_array(names, cap, sizeof *nn);
            if (nn == NULL) {
                rc = nomem(err);
                break;
            }
            names = nn;
        }
        names[n] = kb_strdup(e->d_name);
        if (names[n] == NULL) {
            rc = nomem(err);
            break;
        }
        n++;
    }
    closedir(d);
    if (n > 1) {
        qsort(names, n, sizeof *names, name_cmp);
    }
    *out = names;
    *n_out = n;
    return rc;
}

static void names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        kb_free(names[i]);
    }
    kb_free(names);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int join(kb_buf *b, const char *dir, const char *name)
{
    kb_buf_reset(b);
    return kb_buf_printf(b, "%s/%s", dir, name);
}

/* A file tree under `dir` (params/, tags/, metrics/): names are paths relative to it. */
typedef int (*tree_fn)(const char *rel, const char *path, void *payload, kb_error *err);

static int walk_tree(const char *dir, const char *rel, tree_fn fn, void *payload, int depth,
                     kb_error *err)
{
    char **names;
    size_t n;
    int rc = list_dir(&names, &n, dir, err);
    kb_buf path = KB_BUF_INIT, sub = KB_BUF_INIT;
    for (size_t i = 0; rc == KB_OK && i < n; i++) {
        kb_buf_reset(&sub);
        int brc = rel[0] != '\0' ? join(&sub, rel, names[i]) : kb_buf_puts(&sub, names[i]);
        if (brc != KB_OK || join(&path, dir, names[i]) != KB_OK) {
            rc = nomem(err);
            break;
        }
        if (is_dir(path.data)) {
            if (depth < 8) {
                rc = walk_tree(path.data, sub.data, fn, payload, depth + 1, err);
            }
        } else {
            rc = fn(sub.data, path.data, payload, err);
        }
    }
    kb_buf_release(&path);
    kb_buf_release(&sub);
    names_free(names, n);
    return rc;
}

typedef struct mlrun {
    pctx *c;
    kb_run *run;
    size_t cap_config;
    kb_buf extra_tags;   /* "k":"v",... of tags that are not kb.* */
    char *tag_task, *tag_space, *tag_objective, *tag_direction, *tag_status;
    char bad_file[1024];  /* where a rejection happened, or empty */
    size_t bad_line;
} mlrun;

static int trim_value(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) {
        s[--n] = '\0';
    }
    return (int)n;
}

static int ml_param(const char *rel, const char *path, void *payload, kb_error *err)
{
    mlrun *m = payload;
    char *text;
    size_t n;
    int rc = slurp_path(&text, &n, path, err);
    if (rc != KB_OK) {
        return rc;
    }
    trim_value(text);
    if (strlen(text) != n && strlen(text) + 1 < n) {
        kb_free(text);
        snprintf(m->bad_file, sizeof m->bad_file, "%s", path);
        return kb_error_set(err, KB_EFORMAT, "field 'config.%s': contains a NUL byte", rel);
    }
    if (!kb_json_utf8_valid(text, strlen(text))) {
        kb_free(text);
        snprintf(m->bad_file, sizeof m->bad_file, "%s", path);
        return kb_error_set(err, KB_EFORMAT, "field 'config.%s': invalid UTF-8", rel);
    }
    rc = params_push(&m->run->config, &m->run->n_config, &m->cap_config, rel, text);
    kb_free(text);
    return rc == KB_OK ? KB_OK : nomem(err);
}

static int ml_tag(const char *rel, const char *path, void *payload, kb_error *err)
{
    mlrun *m = payload;
    char *text;
    size_t n;
    int rc = slurp_path(&text, &n, path, err);
    if (rc != KB_OK) {
        return rc;
    }
    if (!kb_json_utf8_valid(text, n) || strlen(text) != n) {
        kb_free(text);
        snprintf(m->bad_file, sizeof m->bad_file, "%s", path);
        return kb_error_set(err, KB_EFORMAT, "field 'tags.%s': invalid UTF-8 or NUL", rel);
    }
    char **slot = NULL;
    if (strcmp(rel, "kb.task") == 0) {
        slot = &m->tag_task;
    } else if (strcmp(rel, "kb.space") == 0) {
        slot = &m->tag_space;
    } else if (strcmp(rel, "kb.objective") == 0) {
        slot = &m->tag_objective;
    } else if (strcmp(rel, "kb.direction") == 0) {
        slot = &m->tag_direction;
    } else if (strcmp(rel, "kb.status") == 0) {
        slot = &m->tag_status;
    }
    if (slot != NULL) {
        trim_value(text);
        kb_free(*slot);
        *slot = text;
        return KB_OK;
    }
    if (m->extra_tags.len > 0) {
        rc = kb_buf_putc(&m->extra_tags, ',');
    }
    if (rc == KB_OK) {
        rc = kb_json_put_string(&m->extra_tags, rel);
    }
    if (rc == KB_OK) {
        rc = kb_buf_putc(&m->extra_tags, ':');
    }
    if (rc == KB_OK) {
        rc = kb_json_put_string(&m->extra_tags, text);
    }
    kb_free(text);
    return rc == KB_OK ? KB_OK : nomem(err);
}

/* metrics/<key>: "timestamp value step" lines -> one curve series and the final value. */
static int ml_metric(const char *rel, const char *path, void *payload, kb_error *err)
{
    mlrun *m = payload;
    char *text;
    size_t n;
    int rc = slurp_path(&text, &n, path, err);
    if (rc != KB_OK) {
        return rc;
    }
    kb_series s;
    memset(&s, 0, sizeof s);
    size_t cap = 0, line = 0;
    char *p = text, *end = text + n;
    while (rc == KB_OK && p < end) {
        line++;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) {
            /* MLflow ends every line with a newline: one without is being written */
            m->c->line = line;
            const char *saved = m->c->file;
            m->c->file = path;
            kb_log_printf(&m->c->warn, KB_LOG_LEVEL_WARNING,
                          "incomplete last line dropped (a half-written metrics file?)");
            m->c->file = saved;
            break;
        }
        *nl = '\0';
        if (nl > p && nl[-1] == '\r') {
            nl[-1] = '\0';
        }
        long long ts, step = 0;
        char vbuf[64];
        int used = 0;
        int got = sscanf(p, "%lld %63s %lld %n", &ts, vbuf, &step, &used);
        if (got == 2) {
            used = 0;
            got = sscanf(p, "%lld %63s %n", &ts, vbuf, &used) == 2 ? 3 : 0;
            step = 0;
        }
        double v;
        if (got != 3 || p[used] != '\0' || parse_double(&v, vbuf) != 0 || step < 0) {
            snprintf(m->bad_file, sizeof m->bad_file, "%s", path);
            m->bad_line = line;
            rc = kb_error_set(err, KB_EFORMAT,
                              "field 'metrics.%s': expected 'timestamp value step', got "
                              "'%.40s'",
                              rel, p);
            break;
        }
        if (s.n == cap) {
            cap = cap < 16 ? 16 : cap * 2;
            int64_t *st = kb_realloc_array(s.steps, cap, sizeof *st);
            double *va = st != NULL ? kb_realloc_array(s.values, cap, sizeof *va) : NULL;
            if (st != NULL) {
                s.steps = st;
            }
            if (va == NULL) {
                rc = nomem(err);
                break;
            }
            s.values = va;
        }
        s.steps[s.n] = step;
        s.values[s.n] = v;
        s.n++;
        p = nl + 1;
    }
    kb_free(text);
    if (rc == KB_OK && s.n > 0) {
        kb_run *r = m->run;
        rc = metrics_push(&r->metrics, &r->n_metrics, rel, s.values[s.n - 1]);
        kb_series *c = rc == KB_OK ? kb_realloc_array(r->curve, r->n_curve + 1, sizeof *c)
                                   : NULL;
        if (c == NULL) {
            rc = nomem(err);
        } else {
            r->curve = c;
            s.metric = kb_strdup(rel);
            if (s.metric == NULL) {
                rc = nomem(err);
            } else {
                c[r->n_curve++] = s;
                memset(&s, 0, sizeof s);
            }
        }
    }
    kb_series_release(&s);
    return rc;
}

/* Top-level "key: value" pairs of meta.yaml (MLflow writes flat YAML). */
static const char *yaml_get(const char *text, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if (len > kl + 1 && memcmp(p, key, kl) == 0 && p[kl] == ':') {
            const char *v = p + kl + 1;
            size_t vl = len - kl - 1;
            while (vl > 0 && (*v == ' ' || *v == '\t')) {
                v++;
                vl--;
            }
            while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == ' ')) {
                vl--;
            }
            if (vl >= 2 && (v[0] == '\'' || v[0] == '"') && v[vl - 1] == v[0]) {
                v++;
                vl -= 2;
            }
            if (vl >= cap) {
                vl = cap - 1;
            }
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    return NULL;
}

static int ml_status(kb_run_status *out, const char *s)
{
    static const struct {
        const char *name;
        kb_run_status st;
    } map[] = {{"FINISHED", KB_RUN_STATUS_OK}, {"3", KB_RUN_STATUS_OK},
               {"FAILED", KB_RUN_STATUS_FAILED}, {"4", KB_RUN_STATUS_FAILED},
               {"KILLED", KB_RUN_STATUS_FAILED}, {"5", KB_RUN_STATUS_FAILED},
               {"RUNNING", KB_RUN_STATUS_RUNNING}, {"1", KB_RUN_STATUS_RUNNING},
               {"SCHEDULED", KB_RUN_STATUS_RUNNING}, {"2", KB_RUN_STATUS_RUNNING}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(s, map[i].name) == 0) {
            *out = map[i].st;
            return 0;
        }
    }
    return -1;
}

static int ml_time(int64_t *out, const char *meta, const char *key)
{
    char v[64];
    int64_t ms;
    if (yaml_get(meta, key, v, sizeof v) == NULL || parse_int64(&ms, v) != 0 ||
        ms < -INT64_C(9000000000000) || ms > INT64_C(9000000000000000)) {
        *out = KB_TIME_UNKNOWN;
        return -1;
    }
    *out = ms * 1000;
    return 0;
}

/* Fill m->run from one run directory; KB_EFORMAT for a bad run. */
static int ml_build(mlrun *m, const char *dir, const char *meta, kb_error *err)
{
    pctx *c = m->c;
    kb_run *r = m->run;
    char v[256];
    if (yaml_get(meta, "run_uuid", v, sizeof v) == NULL &&
        yaml_get(meta, "run_id", v, sizeof v) == NULL) {
        return kb_error_set(err, KB_EFORMAT, "field 'run_uuid': required in meta.yaml");
    }
    char id[300];
    snprintf(id, sizeof id, "mlflow:%s", v);
    if ((r->id = kb_strdup(id)) == NULL) {
        return nomem(err);
    }
    if (yaml_get(meta, "experiment_id", v, sizeof v) != NULL) {
        snprintf(id, sizeof id, "mlflow:%s", v);
        if ((r->study_id = kb_strdup(id)) == NULL) {
            return nomem(err);
        }
    }
    if (yaml_get(meta, "status", v, sizeof v) == NULL || ml_status(&r->status, v) != 0) {
        return kb_error_set(err, KB_EFORMAT,
                            "field 'status': expected FINISHED, FAILED, KILLED, RUNNING or "
                            "SCHEDULED in meta.yaml");
    }
    ml_time(&r->started_at, meta, "start_time");
    ml_time(&r->finished_at, meta, "end_time");
    if (r->status == KB_RUN_STATUS_RUNNING) {
        r->finished_at = KB_TIME_UNKNOWN;
    }
    if (r->started_at != KB_TIME_UNKNOWN && r->finished_at != KB_TIME_UNKNOWN &&
        r->finished_at >= r->started_at) {
        r->cost_s = (double)(r->finished_at - r->started_at) / 1e6;
    }
    kb_buf path = KB_BUF_INIT;
    int rc = KB_OK;
    static const char *const sub[] = {"params", "tags", "metrics"};
    static const tree_fn fns[] = {ml_param, ml_tag, ml_metric};
    for (int i = 0; i < 3 && rc == KB_OK; i++) {
        if (join(&path, dir, sub[i]) != KB_OK) {
            rc = nomem(err);
        } else if (is_dir(path.data)) {
            rc = walk_tree(path.data, "", fns[i], m, 0, err);
        }
    }
    kb_buf_release(&path);
    if (rc != KB_OK) {
        return rc;
    }
    const kb_ingest_opts *o = c->opts;
    const char *task = m->tag_task != NULL ? m->tag_task : o->task_id;
    if (task == NULL || task[0] == '\0') {
        return kb_error_set(err, KB_EFORMAT,
                            "field 'task_id': required (a 'kb.task' tag on the run, or --task)");
    }
    const char *space = m->tag_space != NULL ? m->tag_space : o->space;
    const char *objective = m->tag_objective != NULL ? m->tag_objective : o->objective;
    if ((r->task_id = kb_strdup(task)) == NULL ||
        (space != NULL && (r->space = kb_strdup(space)) == NULL) ||
        (objective != NULL && (r->objective = kb_strdup(objective)) == NULL)) {
        return nomem(err);
    }
    r->direction = o->direction == KB_DIRECTION_MAXIMIZE ? KB_DIRECTION_MAXIMIZE
                                                         : KB_DIRECTION_MINIMIZE;
    if (m->tag_direction != NULL && kb_direction_parse(&r->direction, m->tag_direction) != 0) {
        return kb_error_set(err, KB_EFORMAT,
                            "field 'tags.kb.direction': expected minimize or maximize, got "
                            "'%.40s'",
                            m->tag_direction);
    }
    if (m->tag_status != NULL && kb_run_status_parse(&r->status, m->tag_status) != 0) {
        return kb_error_set(err, KB_EFORMAT,
                            "field 'tags.kb.status': unknown status '%.40s'", m->tag_status);
    }
    if (m->extra_tags.len > 0) {
        kb_buf b = KB_BUF_INIT;
        rc = kb_buf_printf(&b, "{\"tags\":{%s}}", m->extra_tags.data);
        kb_buf_reset(&c->scratch);
        if (rc == KB_OK) {
            rc = kb_json_canonical_text(&c->scratch, c->jr, b.data, b.len, err);
        }
        kb_buf_release(&b);
        if (rc == KB_OK && (r->extra = kb_strdup(c->scratch.data)) == NULL) {
            rc = nomem(err);
        }
        if (rc != KB_OK) {
            return rc;
        }
    }
    rc = kb_json_canonicalize_run(r, err);
    return rc == KB_OK ? kb_json_check_run(r, err) : rc;
}

static int mlflow_run(pctx *c, const char *dir, const char *meta_path, kb_error *err)
{
    char *meta;
    size_t n;
    int rc = slurp_path(&meta, &n, meta_path, err);
    if (rc != KB_OK) {
        return rc;
    }
    char stage[32];
    if (yaml_get(meta, "lifecycle_stage", stage, sizeof stage) != NULL &&
        strcmp(stage, "deleted") == 0) {
        c->line = 0;
        const char *saved = c->file;
        c->file = dir;
        kb_log_printf(&c->warn, KB_LOG_LEVEL_WARNING, "deleted run skipped");
        c->file = saved;
        kb_free(meta);
        return KB_OK;
    }
    kb_record rec;
    memset(&rec, 0, sizeof rec);
    rec.kind = KB_RECORD_RUN;
    rec.run.cost_s = NAN;
    mlrun m;
    memset(&m, 0, sizeof m);
    m.c = c;
    m.run = &rec.run;
    kb_error run_err = KB_ERROR_INIT;
    rc = ml_build(&m, dir, meta, &run_err);
    kb_free(meta);
    kb_free(m.tag_task);
    kb_free(m.tag_space);
    kb_free(m.tag_objective);
    kb_free(m.tag_direction);
    kb_free(m.tag_status);
    kb_buf_release(&m.extra_tags);
    if (rc == KB_EFORMAT) {
        kb_record_release(&rec);
        const char *saved = c->file;
        c->file = m.bad_file[0] != '\0' ? m.bad_file : meta_path;
        reject(c, m.bad_line > 0 ? m.bad_line : 1, run_err.msg);
        c->file = saved;
        return KB_OK;
    }
    if (rc != KB_OK) {
        kb_record_release(&rec);
        *err = run_err;
        return rc;
    }
    const char *saved = c->file;
    c->file = meta_path;
    rc = deliver(c, &rec, 1);
    c->file = saved;
    return rc;
}

static int mlflow_dir(pctx *c, const char *path, int depth, kb_error *err)
{
    kb_buf meta = KB_BUF_INIT, sub = KB_BUF_INIT;
    int rc = join(&meta, path, "meta.yaml") == KB_OK ? KB_OK : nomem(err);
    int run_dir = 0;
    if (rc == KB_OK && is_file(meta.data)) {
        static const char *const parts[] = {"metrics", "params", "tags"};
        for (int i = 0; i < 3 && rc == KB_OK && !run_dir; i++) {
            rc = join(&sub, path, parts[i]) == KB_OK ? KB_OK : nomem(err);
            run_dir = rc == KB_OK && is_dir(sub.data);
        }
    }
    if (rc == KB_OK && run_dir) {
        rc = mlflow_run(c, path, meta.data, err);
    } else if (rc == KB_OK && depth < 2) {
        char **names;
        size_t n;
        rc = list_dir(&names, &n, path, err);
        for (size_t i = 0; rc == KB_OK && i < n; i++) {
            if (join(&sub, path, names[i]) != KB_OK) {
                rc = nomem(err);
            } else if (strcmp(names[i], "models") != 0 && is_dir(sub.data)) {
                char *child = kb_strdup(sub.data);
                rc = child == NULL ? nomem(err) : mlflow_dir(c, child, depth + 1, err);
                kb_free(child);
            }
        }
        names_free(names, n);
    }
    kb_buf_release(&meta);
    kb_buf_release(&sub);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Writer layer: batches into the store.
 */

/* A parser-side message (rejection or warning) kept with the batch it belongs to. */
typedef struct note {
    int warning;
    size_t line;
    char *file; /* NULL: the input's own name */
    char *text;
} note;

#define NO_ENC SIZE_MAX

/* Records parsed for one write transaction, with where each came from. */
typedef struct batch {
    kb_record *recs;
    size_t *lines;
    char **files; /* per record: its file when not the input's name (MLflow), else NULL */
    unsigned char *in_arena; /* per record: it lives in `arena` (not released one by one) */
    kb_json__arena *arena;   /* the batch's records from the streaming JSON reader */
    kb_buf enc;              /* records encoded by the parser thread, back to back */
    size_t *enc_off;         /* per record: where its encoding starts in enc, or NO_ENC */
    size_t *enc_len;
    size_t n, cap;
    note *notes;
    size_t n_notes, cap_notes;
    size_t n_rejected; /* parser rejections among the notes (counted even if a note is lost) */
} batch;

static void batch_drop(batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        if (!b->in_arena[i]) {
            kb_record_release(&b->recs[i]);
        }
        kb_free(b->files[i]);
        b->files[i] = NULL;
    }
    b->n = 0;
    kb_json__arena_reset(b->arena);
    kb_buf_reset(&b->enc);
    for (size_t i = 0; i < b->n_notes; i++) {
        kb_free(b->notes[i].file);
        kb_free(b->notes[i].text);
    }
    b->n_notes = 0;
    b->n_rejected = 0;
}

static void batch_release(batch *b)
{
    batch_drop(b);
    kb_free(b->recs);
    kb_free(b->lines);
    kb_free(b->files);
    kb_free(b->in_arena);
    kb_json__arena_free(b->arena);
    kb_buf_release(&b->enc);
    kb_free(b->enc_off);
    kb_free(b->enc_len);
    kb_free(b->notes);
    memset(b, 0, sizeof *b);
}

static int batch_grow(batch *b)
{
    size_t cap = b->cap < 64 ? 64 : b->cap * 2;
    kb_record *r = kb_realloc_array(b->recs, cap, sizeof *r);
    if (r == NULL) {
        return KB_ENOMEM;
    }
    b->recs = r;
    size_t *l = kb_realloc_array(b->lines, cap, sizeof *l);
    if (l == NULL) {
        return KB_ENOMEM;
    }
    b->lines = l;
    char **f = kb_realloc_array(b->files, cap, sizeof *f);
    if (f == NULL) {
        return KB_ENOMEM;
    }
    b->files = f;
    unsigned char *a = kb_realloc(b->in_arena, cap);
    if (a == NULL) {
        return KB_ENOMEM;
    }
    b->in_arena = a;
    size_t *o = kb_realloc_array(b->enc_off, cap, sizeof *o);
    if (o == NULL) {
        return KB_ENOMEM;
    }
    b->enc_off = o;
    o = kb_realloc_array(b->enc_len, cap, sizeof *o);
    if (o == NULL) {
        return KB_ENOMEM;
    }
    b->enc_len = o;
    b->cap = cap;
    return KB_OK;
}

/*
 * Move `*rec` into the batch; `file` is copied unless it is the input's name `own`.
 * `in_arena`: the record lives in b->arena.
 */
static int batch_push(batch *b, kb_record *rec, const char *file, const char *own, size_t line,
                      int in_arena)
{
    char *copy = NULL;
    if ((b->n == b->cap && batch_grow(b) != KB_OK) ||
        (file != own && strcmp(file, own) != 0 && (copy = kb_strdup(file)) == NULL)) {
        if (!in_arena) {
            kb_record_release(rec);
        }
        return KB_ENOMEM;
    }
    b->recs[b->n] = *rec;
    memset(rec, 0, sizeof *rec);
    b->lines[b->n] = line;
    b->files[b->n] = copy;
    b->in_arena[b->n] = (unsigned char)(in_arena != 0);
    b->enc_off[b->n] = NO_ENC;
    b->n++;
    return KB_OK;
}

/*
 * Encode the batch's last record in the calling (parser) thread, so the writing thread only
 * puts bytes. A record that does not encode is left for the store, which reports it.
 */
static void batch_encode_last(batch *b)
{
    size_t i = b->n - 1, off = b->enc.len;
    kb_error ignored;
    if (kb_codec_encode_record(&b->enc, &b->recs[i], &ignored) == KB_OK) {
        b->enc_off[i] = off;
        b->enc_len[i] = b->enc.len - off;
    } else {
        b->enc.len = off;
    }
}

static void batch_note(batch *b, int warning, const char *file, const char *own, size_t line,
                       const char *text)
{
    b->n_rejected += !warning;
    if (b->n_notes == b->cap_notes) {
        size_t cap = b->cap_notes < 16 ? 16 : b->cap_notes * 2;
        note *nn = kb_realloc_array(b->notes, cap, sizeof *nn);
        if (nn == NULL) {
            return; /* out of memory: the message is lost, the count is not */
        }
        b->notes = nn;
        b->cap_notes = cap;
    }
    note *n = &b->notes[b->n_notes];
    n->warning = warning;
    n->line = line;
    n->file = file != NULL && strcmp(file, own) != 0 ? kb_strdup(file) : NULL;
    n->text = kb_strdup(text);
    if (n->text == NULL) {
        kb_free(n->file);
        return;
    }
    b->n_notes++;
}

typedef struct writer {
    kb_store *store;
    const kb_ingest_opts *opts;
    const char *file;
    size_t parse_rejected;    /* the parser's rejections so far */
    kb_ingest_counts stored;  /* the store's outcomes */
    batch own;                /* the batch when parsing and writing in one thread */
    batch *b;                 /* the batch being written */
    size_t batch_size;
    kb_put_result *results;
    char (*reasons)[KB_ERROR_MSG_SIZE];
    const unsigned char **enc; /* per record of the batch: its encoding or NULL */
    size_t *enc_len;
    size_t cap_results;
    int keep;                 /* leave the records for the parser thread to free */
    kb_error *err;
} writer;

static void report_progress(writer *w)
{
    if (w->opts->progress != NULL) {
        kb_ingest_counts so_far = w->stored;
        so_far.rejected += w->parse_rejected;
        w->opts->progress(&so_far, w->opts->payload);
    }
}

static void store_reject(writer *w, size_t i, const char *reason)
{
    w->stored.rejected++;
    if (w->opts->reject != NULL) {
        w->opts->reject(w->b->files[i] != NULL ? w->b->files[i] : w->file, w->b->lines[i],
                        reason, w->opts->payload);
    }
}

/* Write the batch in one transaction, count the outcomes, release its records. */
static int writer_flush(writer *w)
{
    batch *b = w->b;
    if (b->n == 0) {
        return KB_OK;
    }
    if (b->n > w->cap_results) {
        kb_put_result *res = kb_realloc_array(w->results, b->n, sizeof *res);
        if (res != NULL) {
            w->results = res;
        }
        char(*why)[KB_ERROR_MSG_SIZE] = res != NULL ? kb_realloc_array(w->reasons, b->n,
                                                                        sizeof *why)
                                                     : NULL;
        if (why != NULL) {
            w->reasons = why;
        }
        const unsigned char **enc = why != NULL ? kb_realloc_array(w->enc, b->n, sizeof *enc)
                                                : NULL;
        if (enc != NULL) {
            w->enc = enc;
        }
        size_t *enc_len = enc != NULL ? kb_realloc_array(w->enc_len, b->n, sizeof *enc_len)
                                      : NULL;
        if (enc_len == NULL) {
            if (!w->keep) {
                batch_drop(b);
            }
            return nomem(w->err);
        }
        w->enc_len = enc_len;
        w->cap_results = b->n;
    }
    for (size_t i = 0; i < b->n; i++) {
        size_t off = b->enc_off[i];
        w->enc[i] = off != NO_ENC ? (const unsigned char *)b->enc.data + off : NULL;
        w->enc_len[i] = off != NO_ENC ? b->enc_len[i] : 0;
    }
    /*
     * --strict: the store checks and writes in one transaction, so a record refused because
     * of another writer's commit still leaves the file unwritten
     */
    unsigned flags = w->opts->strict ? KB_STORE_PUT_ALL_OR_NOTHING : 0;
    int rc = kb_store__put_batch_encoded(w->store, b->recs, w->enc, w->enc_len, b->n, flags,
                                         w->results, w->reasons, w->err);
    int aborted = rc == KB_ECANCELED && w->opts->strict;
    if (aborted) {
        size_t n_bad = 0;
        for (size_t i = 0; i < b->n; i++) {
            if (w->results[i] == KB_PUT_CONFLICT || w->results[i] == KB_PUT_REJECTED) {
                store_reject(w, i, w->reasons[i]);
                n_bad++;
            }
        }
        kb_error_clear(w->err);
        kb_log_printf(&w->opts->log, KB_LOG_LEVEL_WARNING,
                      "%s: --strict: nothing written (%zu record(s) rejected)", w->file,
                      n_bad + w->parse_rejected);
        rc = KB_OK;
    }
    if (rc != KB_OK || aborted) {
        if (!w->keep) {
            batch_drop(b);
        }
        return rc;
    }
    for (size_t i = 0; i < b->n; i++) {
        switch (w->results[i]) {
        case KB_PUT_ADDED: w->stored.accepted++; break;
        case KB_PUT_DUPLICATE: w->stored.duplicate++; break;
        default: store_reject(w, i, w->reasons[i]); break;
        }
    }
    if (!w->keep) {
        batch_drop(b);
    }
    report_progress(w);
    return KB_OK;
}

static int interrupted(const kb_ingest_opts *o, kb_error *err)
{
    if (o->interrupt != NULL && *o->interrupt) {
        return kb_error_set(err, KB_ECANCELED, "interrupted");
    }
    return KB_OK;
}

/* The parser's record callback when one thread parses and writes (and for --strict). */
static int writer_add(kb_record *rec, const char *file, size_t line, void *payload)
{
    writer *w = payload;
    if (batch_push(w->b, rec, file, w->file, line, 0) != KB_OK) {
        return nomem(w->err);
    }
    if (interrupted(w->opts, w->err) != KB_OK) {
        int rc = w->opts->strict ? KB_OK : writer_flush(w);
        batch_drop(w->b);
        return rc != KB_OK ? rc : KB_ECANCELED;
    }
    if (!w->opts->strict && w->b->n >= w->batch_size) {
        return writer_flush(w);
    }
    return KB_OK;
}

/*
 * Two threads: a parser thread fills batches while the calling thread writes the previous
 * one, so JSON parsing overlaps LMDB's encoding, indexing and synced commits. Three batches
 * circulate (one being parsed, one queued, one being written). The parser's rejections and
 * warnings travel with their batch and are reported by the writing thread, so every callback
 * runs in the caller's thread, in input order within a batch.
 */
#define PIPE_SLOTS 3

typedef struct pipeline {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    batch slots[PIPE_SLOTS];
    int full[PIPE_SLOTS]; /* FIFO of filled slots */
    size_t n_full, head;
    int free_slots[PIPE_SLOTS];
    size_t n_free;
    int done, stop;
    /* parser thread */
    kb_ingest_opts popts;
    const kb_ingest_opts *user;
    const char *path;
    size_t batch_size;
    int cur;
    int encode_here; /* the parser encodes the batch it fills (see pipe_push_full) */
    int parse_rc;
    kb_error parse_err;
} pipeline;

static int pipe_take_free(pipeline *pl)
{
    pthread_mutex_lock(&pl->mu);
    while (pl->n_free == 0 && !pl->stop) {
        pthread_cond_wait(&pl->cond, &pl->mu);
    }
    int slot = pl->stop ? -1 : pl->free_slots[--pl->n_free];
    pthread_mutex_unlock(&pl->mu);
    if (slot >= 0) {
        /* records are freed by the thread that allocated them: glibc's per-thread caches
         * make that much cheaper than freeing them in the writing thread */
        batch_drop(&pl->slots[slot]);
    }
    return slot;
}

/*
 * Queue a filled batch for the writer. Who encodes the next batch's records follows the
 * writer's backlog: while a filled batch still waits for it (the writer is the slower
 * thread), the parser thread encodes, as the writer then only puts bytes; otherwise the
 * writer encodes them itself (kb_store__put_batch_encoded with no encoding), taking work off
 * the parser thread, which is then the slower one. Either way the bytes are the same.
 */
static void pipe_push_full(pipeline *pl, int slot)
{
    pthread_mutex_lock(&pl->mu);
    pl->encode_here = pl->n_full > 0;
    pl->full[(pl->head + pl->n_full) % PIPE_SLOTS] = slot;
    pl->n_full++;
    pthread_cond_broadcast(&pl->cond);
    pthread_mutex_unlock(&pl->mu);
}

static int pipe_add(kb_record *rec, const char *file, size_t line, int in_arena, void *payload)
{
    pipeline *pl = payload;
    if (batch_push(&pl->slots[pl->cur], rec, file, pl->path, line, in_arena) != KB_OK) {
        return nomem(&pl->parse_err);
    }
    if (pl->encode_here) {
        batch_encode_last(&pl->slots[pl->cur]);
    }
    if (interrupted(pl->user, &pl->parse_err) != KB_OK) {
        return KB_ECANCELED;
    }
    if (pl->slots[pl->cur].n >= pl->batch_size) {
        pipe_push_full(pl, pl->cur);
        pl->cur = pipe_take_free(pl);
        if (pl->cur < 0) {
            return kb_error_set(&pl->parse_err, KB_ECANCELED, "stopped");
        }
    }
    return KB_OK;
}

/* The batch being filled owns the records the streaming reader builds */
static kb_json__arena *pipe_arena(void *payload)
{
    pipeline *pl = payload;
    batch *b = &pl->slots[pl->cur];
    kb_error ignored;
    if (b->arena == NULL && kb_json__arena_new(&b->arena, &ignored) != KB_OK) {
        return NULL; /* records are then allocated one by one */
    }
    return b->arena;
}

static void pipe_reject(const char *file, size_t line, const char *reason, void *payload)
{
    pipeline *pl = payload;
    batch_note(&pl->slots[pl->cur], 0, file, pl->path, line, reason);
}

static void pipe_warn(kb_log_level level, const char *msg, void *payload)
{
    pipeline *pl = payload;
    if (level == KB_LOG_LEVEL_WARNING) {
        batch_note(&pl->slots[pl->cur], 1, NULL, pl->path, 0, msg);
    }
}

static void *pipe_parser(void *arg)
{
    pipeline *pl = arg;
    kb_ingest_counts counts;
    pl->cur = pipe_take_free(pl);
    int rc = pl->cur < 0 ? KB_ECANCELED
                         : parse_file(&counts, pl->path, &pl->popts, NULL, pipe_add,
                                      pipe_arena, pl, &pl->parse_err);
    if (pl->cur >= 0) {
        pipe_push_full(pl, pl->cur); /* the last batch, maybe only notes */
    }
    pthread_mutex_lock(&pl->mu);
    pl->parse_rc = rc;
    pl->done = 1;
    pthread_cond_broadcast(&pl->cond);
    pthread_mutex_unlock(&pl->mu);
    return NULL;
}

/* Report a batch's parser notes through the user's callbacks (in the caller's thread). */
static void emit_notes(writer *w, const batch *b)
{
    const kb_ingest_opts *o = w->opts;
    w->parse_rejected += b->n_rejected;
    for (size_t i = 0; i < b->n_notes; i++) {
        const note *n = &b->notes[i];
        if (n->warning) {
            kb_log_printf(&o->log, KB_LOG_LEVEL_WARNING, "%s", n->text);
        } else if (o->reject != NULL) {
            o->reject(n->file != NULL ? n->file : w->file, n->line, n->text, o->payload);
        }
    }
}

/* KB_OK etc., or 1 when no second thread could be started (nothing was read then). */
static int ingest_pipelined(writer *w, kb_error *err)
{
    pipeline *pl = kb_calloc(1, sizeof *pl);
    if (pl == NULL) {
        return nomem(err);
    }
    pl->user = w->opts;
    pl->popts = *w->opts;
    pl->popts.reject = pipe_reject;
    pl->popts.payload = pl;
    pl->popts.log.fn = pipe_warn;
    pl->popts.log.payload = pl;
    pl->path = w->file;
    pl->batch_size = w->batch_size;
    for (int i = 0; i < PIPE_SLOTS; i++) {
        pl->free_slots[pl->n_free++] = i;
    }
    w->keep = 1;
    pthread_t tid;
    if (pthread_mutex_init(&pl->mu, NULL) != 0) {
        kb_free(pl);
        return kb_error_set(err, KB_ERROR, "cannot create a mutex");
    }
    if (pthread_cond_init(&pl->cond, NULL) != 0) {
        pthread_mutex_destroy(&pl->mu);
        kb_free(pl);
        return kb_error_set(err, KB_ERROR, "cannot create a condition variable");
    }
    if (pthread_create(&tid, NULL, pipe_parser, pl) != 0) {
        pthread_cond_destroy(&pl->cond);
        pthread_mutex_destroy(&pl->mu);
        kb_free(pl);
        return 1;
    }
    int rc = KB_OK;
    for (;;) {
        pthread_mutex_lock(&pl->mu);
        while (pl->n_full == 0 && !pl->done) {
            pthread_cond_wait(&pl->cond, &pl->mu);
        }
        if (pl->n_full == 0) {
            pthread_mutex_unlock(&pl->mu);
            break;
        }
        int slot = pl->full[pl->head];
        pl->head = (pl->head + 1) % PIPE_SLOTS;
        pl->n_full--;
        pthread_mutex_unlock(&pl->mu);

        batch *b = &pl->slots[slot];
        emit_notes(w, b);
        w->b = b;
        if (rc == KB_OK) {
            rc = writer_flush(w);
            if (rc != KB_OK) {
                pthread_mutex_lock(&pl->mu);
                pl->stop = 1;
                pthread_cond_broadcast(&pl->cond);
                pthread_mutex_unlock(&pl->mu);
            }
        }
        w->b = NULL;
        pthread_mutex_lock(&pl->mu);
        pl->free_slots[pl->n_free++] = slot;
        pthread_cond_broadcast(&pl->cond);
        pthread_mutex_unlock(&pl->mu);
    }
    pthread_join(tid, NULL);
    w->keep = 0;
    if (rc == KB_OK && pl->parse_rc != KB_OK) {
        rc = pl->parse_rc;
        *err = pl->parse_err;
    }
    for (int i = 0; i < PIPE_SLOTS; i++) {
        batch_release(&pl->slots[i]);
    }
    pthread_cond_destroy(&pl->cond);
    pthread_mutex_destroy(&pl->mu);
    kb_free(pl);
    return rc;
}

int kb_ingest_file(kb_ingest_counts *counts, kb_store *store, const char *path,
                   const kb_ingest_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(counts != NULL && store != NULL && path != NULL);
    kb_ingest_opts defaults = KB_INGEST_OPTS_INIT;
    if (opts == NULL) {
        opts = &defaults;
    }
    memset(counts, 0, sizeof *counts);
    writer w;
    memset(&w, 0, sizeof w);
    w.store = store;
    w.opts = opts;
    w.file = path;
    w.b = &w.own;
    w.batch_size = opts->batch_size > 0 ? opts->batch_size : KB_INGEST_DEFAULT_BATCH;
    w.err = err;
    int rc = opts->strict ? 1 : ingest_pipelined(&w, err);
    if (rc == 1) { /* --strict, or no second thread: parse and write in this one */
        kb_ingest_counts parsed;
        rc = kb_ingest_parse_file(&parsed, path, opts, writer_add, &w, err);
        w.parse_rejected = parsed.rejected;
        if (rc == KB_OK && opts->strict && parsed.rejected > 0) {
            kb_log_printf(&opts->log, KB_LOG_LEVEL_WARNING,
                          "%s: --strict: nothing written (%zu record(s) rejected)", path,
                          parsed.rejected);
            batch_drop(&w.own);
        }
        if (rc == KB_OK) {
            rc = writer_flush(&w);
        }
    }
    batch_release(&w.own);
    kb_free(w.results);
    kb_free(w.reasons);
    kb_free(w.enc);
    kb_free(w.enc_len);
    counts->accepted = w.stored.accepted;
    counts->duplicate = w.stored.duplicate;
    counts->rejected = w.stored.rejected + w.parse_rejected;
    return rc;
}
