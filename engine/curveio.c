/*
 * Learning-curve readers. Input arrives in arbitrary chunks; complete lines are parsed at
 * once and a partial line waits in `line` for the rest. Each format keeps a little state
 * between lines (the CSV header, Caffe's current test iteration).
 */
#include "engine/curveio.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "engine/core/alloc.h"
#include "engine/core/buf.h"

#define MAX_LINE_BYTES (1u << 20)
#define MAX_CSV_COLS 256

struct kb_curveio {
    kb_curveio_format format;
    char *source;
    char *metric;
    size_t max_warnings;
    kb_log log;
    kb_buf line;       /* the partial line so far */
    int skipping;      /* the current line overflowed MAX_LINE_BYTES: drop until newline */
    size_t lineno;
    size_t n_bad, n_values, n_warned;
    /* CSV */
    char **cols;
    size_t n_cols;
    long step_col;
    char delim;
    /* Caffe */
    double test_iter;  /* iteration of the last "Testing net" line; NaN before one */
    int test_net;
    double train_iter; /* iteration of the last "Iteration N, loss" line */
    /* MLflow */
    size_t mlflow_index;
};

const char *kb_curveio_format_name(kb_curveio_format f)
{
    switch (f) {
    case KB_CURVEIO_FORMAT_AUTO: return "auto";
    case KB_CURVEIO_FORMAT_JSONL: return "jsonl";
    case KB_CURVEIO_FORMAT_CSV: return "csv";
    case KB_CURVEIO_FORMAT_CAFFE: return "caffe";
    case KB_CURVEIO_FORMAT_MLFLOW: return "mlflow";
    }
    return "unknown";
}

int kb_curveio_format_parse(kb_curveio_format *out, const char *s, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && s != NULL);
    for (int f = 0; f <= KB_CURVEIO_FORMAT_MLFLOW; f++) {
        if (strcmp(s, kb_curveio_format_name((kb_curveio_format)f)) == 0) {
            *out = (kb_curveio_format)f;
            return KB_OK;
        }
    }
    return kb_error_set(err, KB_EFORMAT,
                        "unknown curve format '%s' (auto, jsonl, csv, caffe, mlflow)", s);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int kb_curveio_new(kb_curveio **out, const kb_curveio_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    *out = NULL;
    kb_curveio_opts o = KB_CURVEIO_OPTS_INIT;
    if (opts != NULL) {
        o = *opts;
    }
    kb_curveio *r = kb_calloc(1, sizeof *r);
    if (r == NULL) {
        return kb_error_set(err, KB_ENOMEM, "curve reader: out of memory");
    }
    r->format = o.format;
    r->source = kb_strdup(o.source != NULL ? o.source : "-");
    if (o.metric != NULL) {
        r->metric = kb_strdup(o.metric);
    } else {
        /* an MLflow metric file is named after its metric; drop a compression suffix */
        const char *b = base_name(r->source ? r->source : "-");
        size_t len = strlen(b);
        if (len > 3 && strcmp(b + len - 3, ".gz") == 0) {
            len -= 3;
        }
        r->metric = strcmp(b, "-") == 0 || len == 0 ? kb_strdup("value") : kb_strndup(b, len);
    }
    if (r->source == NULL || r->metric == NULL) {
        kb_curveio_free(r);
        return kb_error_set(err, KB_ENOMEM, "curve reader: out of memory");
    }
    r->max_warnings = o.max_warnings;
    r->log = o.log;
    r->step_col = -1;
    r->test_iter = NAN;
    r->train_iter = NAN;
    *out = r;
    return KB_OK;
}

void kb_curveio_free(kb_curveio *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n_cols; i++) {
        kb_free(r->cols[i]);
    }
    kb_free(r->cols);
    kb_buf_release(&r->line);
    kb_free(r->source);
    kb_free(r->metric);
    kb_free(r);
}

kb_curveio_format kb_curveio_format_used(const kb_curveio *r)
{
    return r ? r->format : KB_CURVEIO_FORMAT_AUTO;
}

size_t kb_curveio_n_lines(const kb_curveio *r)
{
    return r ? r->lineno : 0;
}

size_t kb_curveio_n_bad(const kb_curveio *r)
{
    return r ? r->n_bad : 0;
}

size_t kb_curveio_n_values(const kb_curveio *r)
{
    return r ? r->n_values : 0;
}

static void warn(kb_curveio *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void warn(kb_curveio *r, const char *fmt, ...)
{
    r->n_bad++;
    if (r->log.fn == NULL) {
        return;
    }
    if (r->n_warned < r->max_warnings) {
        char msg[320];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        kb_log_printf(&r->log, KB_LOG_LEVEL_WARNING, "%s:%zu: %s", r->source, r->lineno, msg);
    } else if (r->n_warned == r->max_warnings) {
        kb_log_printf(&r->log, KB_LOG_LEVEL_WARNING, "%s: further bad lines are not reported",
                      r->source);
    }
    r->n_warned++;
}

static int add(kb_curveio *r, kb_curve *c, double step, const char *name, double v,
               kb_error *err)
{
    int rc = kb_curve_add(c, step, name, v, err);
    if (rc == KB_OK) {
        r->n_values++;
    }
    return rc;
}

/* Parse a whole token as a number (strtod: also "nan", "-nan", "inf", "Infinity"). */
static int parse_num(const char *s, size_t len, double *out)
{
    char tmp[64];
    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)s[len - 1])) {
        len--;
    }
    if (len == 0 || len >= sizeof tmp) {
        return -1;
    }
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end;
    errno = 0;
    double v = strtod(tmp, &end);
    if (end == tmp || *end != '\0') {
        return -1;
    }
    /* an out-of-range literal (1e999) is an overflow as the trainer saw it: keep +-inf */
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* JSON lines                                                                                 */

static const char *const step_keys[] = {"step", "iter", "iteration", "epoch", NULL};

static int json_value(const cJSON *it, double *out)
{
    if (cJSON_IsNumber(it)) {
        *out = it->valuedouble;
        return 0;
    }
    if (cJSON_IsNull(it)) {
        *out = NAN; /* cJSON (and so our trainers) print a non-finite number as null */
        return 0;
    }
    if (cJSON_IsString(it) && it->valuestring != NULL) {
        /* "nan", "inf", "-inf", "Infinity" from writers that quote them */
        return parse_num(it->valuestring, strlen(it->valuestring), out);
    }
    return -1;
}

static int is_step_key(const char *k)
{
    for (size_t i = 0; step_keys[i] != NULL; i++) {
        if (strcmp(k, step_keys[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int parse_jsonl(kb_curveio *r, kb_curve *c, const char *ln, size_t len, kb_error *err)
{
    cJSON *root = cJSON_ParseWithLength(ln, len);
    int rc = KB_OK;
    if (root == NULL) {
        warn(r, "not a JSON object");
        return KB_OK;
    }
    if (!cJSON_IsObject(root)) {
        warn(r, "expected a JSON object");
        goto done;
    }
    const cJSON *fin = cJSON_GetObjectItemCaseSensitive(root, "final");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "status");
    if (cJSON_IsString(st) && st->valuestring != NULL) {
        if ((rc = kb_curve_set_status(c, st->valuestring, err)) != KB_OK) {
            goto done;
        }
    }
    if (fin != NULL) {
        if (!cJSON_IsObject(fin)) {
            warn(r, "field 'final': expected an object");
            goto done;
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, fin)
        {
            double v;
            if (it->string != NULL && json_value(it, &v) == 0) {
                if ((rc = kb_curve_add_final(c, it->string, v, err)) != KB_OK) {
                    goto done;
                }
            }
        }
        c->done = 1;
        goto done;
    }
    double step = NAN;
    const char *step_key = NULL;
    for (size_t i = 0; step_keys[i] != NULL && step_key == NULL; i++) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, step_keys[i]);
        if (s != NULL) {
            if (!cJSON_IsNumber(s) || !isfinite(s->valuedouble)) {
                warn(r, "field '%s': expected a finite number", step_keys[i]);
                goto done;
            }
            step = s->valuedouble;
            step_key = step_keys[i];
        }
    }
    if (step_key == NULL) {
        if (cJSON_IsString(st)) {
            goto done; /* a status-only line */
        }
        warn(r, "no 'step' field");
        goto done;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, root)
    {
        double v;
        if (it->string == NULL || strcmp(it->string, step_key) == 0 ||
            strcmp(it->string, "status") == 0) {
            continue;
        }
        if (json_value(it, &v) != 0) {
            if (!cJSON_IsString(it) && !cJSON_IsBool(it) && !cJSON_IsObject(it) &&
                !cJSON_IsArray(it)) {
                warn(r, "field '%s': expected a number", it->string);
            }
            continue;
        }
        /* a second step-like key (epoch next to step) is a series of its own */
        (void)is_step_key;
        if ((rc = add(r, c, step, it->string, v, err)) != KB_OK) {
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* CSV                                                                                        */

/* Split one CSV line into fields (RFC 4180 quotes; "" inside quotes is a quote). The fields
 * are written NUL-terminated into `buf` (len + 1 bytes); returns the count, at most max. */
static size_t csv_split(char **fields, size_t max, char *buf, const char *ln, size_t len,
                        char delim)
{
    size_t nf = 0, o = 0;
    size_t i = 0;
    for (;;) {
        if (nf == max) {
            return nf + 1; /* too many: the caller reports it */
        }
        fields[nf++] = buf + o;
        int quoted = i < len && ln[i] == '"';
        if (quoted) {
            i++;
            while (i < len) {
                if (ln[i] == '"') {
                    if (i + 1 < len && ln[i + 1] == '"') {
                        buf[o++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                buf[o++] = ln[i++];
            }
        }
        while (i < len && ln[i] != delim) {
            buf[o++] = ln[i++];
        }
        buf[o++] = '\0';
        if (i >= len) {
            break;
        }
        i++; /* the delimiter */
    }
    return nf;
}

static int ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) {
            return 0;
        }
    }
    return *a == *b;
}

static int parse_csv(kb_curveio *r, kb_curve *c, const char *ln, size_t len, kb_error *err)
{
    char *fields[MAX_CSV_COLS + 1];
    char *buf = kb_malloc(len + MAX_CSV_COLS + 2);
    if (buf == NULL) {
        return kb_error_set(err, KB_ENOMEM, "curve reader: out of memory");
    }
    int rc = KB_OK;
    if (r->cols == NULL) {
        r->delim = memchr(ln, ',', len) ? ',' : memchr(ln, '\t', len) ? '\t'
                   : memchr(ln, ';', len) ? ';' : ',';
    }
    size_t nf = csv_split(fields, MAX_CSV_COLS, buf, ln, len, r->delim);
    if (nf > MAX_CSV_COLS) {
        warn(r, "more than %d columns", MAX_CSV_COLS);
        goto done;
    }
    if (r->cols == NULL) {
        r->cols = kb_calloc(nf, sizeof *r->cols);
        if (r->cols == NULL) {
            rc = kb_error_set(err, KB_ENOMEM, "curve reader: out of memory");
            goto done;
        }
        r->n_cols = nf;
        for (size_t j = 0; j < nf; j++) {
            char *f = fields[j];
            while (isspace((unsigned char)*f)) {
                f++;
            }
            size_t fl = strlen(f);
            while (fl > 0 && isspace((unsigned char)f[fl - 1])) {
                fl--;
            }
            r->cols[j] = fl > 0 ? kb_strndup(f, fl) : kb_strdup("col");
            if (r->cols[j] == NULL) {
                rc = kb_error_set(err, KB_ENOMEM, "curve reader: out of memory");
                goto done;
            }
        }
        for (size_t k = 0; step_keys[k] != NULL && r->step_col < 0; k++) {
            for (size_t j = 0; j < nf; j++) {
                if (ieq(r->cols[j], step_keys[k])) {
                    r->step_col = (long)j;
                    break;
                }
            }
        }
        if (r->step_col < 0) {
            r->step_col = 0;
        }
        double probe;
        if (parse_num(r->cols[r->step_col], strlen(r->cols[r->step_col]), &probe) == 0) {
            warn(r, "the header row is numbers; expected column names");
        }
        goto done;
    }
    if (nf != r->n_cols) {
        warn(r, "%zu fields, the header has %zu", nf, r->n_cols);
        if (nf < (size_t)r->step_col + 1) {
            goto done;
        }
    }
    double step;
    if (parse_num(fields[r->step_col], strlen(fields[r->step_col]), &step) != 0 ||
        !isfinite(step)) {
        warn(r, "column '%s': expected a finite step, got '%.40s'", r->cols[r->step_col],
             fields[r->step_col]);
        goto done;
    }
    for (size_t j = 0; j < nf && j < r->n_cols; j++) {
        if ((long)j == r->step_col) {
            continue;
        }
        const char *f = fields[j];
        size_t fl = strlen(f);
        size_t k = 0;
        while (k < fl && isspace((unsigned char)f[k])) {
            k++;
        }
        if (k == fl) {
            continue; /* empty cell: not reported */
        }
        double v;
        if (parse_num(f, fl, &v) != 0) {
            warn(r, "column '%s': expected a number, got '%.40s'", r->cols[j], f);
            continue;
        }
        if ((rc = add(r, c, step, r->cols[j], v, err)) != KB_OK) {
            goto done;
        }
    }
done:
    kb_free(buf);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Caffe logs                                                                                 */

/* A number right at s (after spaces), up to a space, comma or parenthesis. */
static int caffe_num(const char *s, const char *end, double *out, const char **after)
{
    while (s < end && *s == ' ') {
        s++;
    }
    const char *e = s;
    while (e < end && *e != ' ' && *e != ',' && *e != '(' && *e != ')') {
        e++;
    }
    if (after != NULL) {
        *after = e;
    }
    return parse_num(s, (size_t)(e - s), out);
}

static const char *find_in(const char *s, const char *end, const char *pat)
{
    size_t pl = strlen(pat);
    for (const char *p = s; p + pl <= end; p++) {
        if (memcmp(p, pat, pl) == 0) {
            return p;
        }
    }
    return NULL;
}

/* "NAME = V" after a "net output #k: " prefix: copies NAME and parses V. */
static int caffe_output(const char *s, const char *end, char *name, size_t nn, double *v)
{
    const char *eq = find_in(s, end, " = ");
    if (eq == NULL || eq == s) {
        return -1;
    }
    size_t len = (size_t)(eq - s);
    if (len >= nn) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (isspace((unsigned char)s[i]) || !isprint((unsigned char)s[i])) {
            return -1;
        }
    }
    memcpy(name, s, len);
    name[len] = '\0';
    return caffe_num(eq + 3, end, v, NULL);
}

static int parse_caffe(kb_curveio *r, kb_curve *c, const char *ln, size_t len, kb_error *err)
{
    const char *end = ln + len;
    const char *p;
    double v;
    char name[96], full[128];
    if (find_in(ln, end, "Optimization Done") != NULL) {
        c->done = 1;
        return KB_OK;
    }
    if ((p = find_in(ln, end, "Iteration ")) != NULL) {
        const char *after;
        double it;
        p += 10;
        if (caffe_num(p, end, &it, &after) != 0 || !isfinite(it) || it < 0) {
            warn(r, "'Iteration': expected an iteration number");
            return KB_OK;
        }
        const char *t;
        if ((t = find_in(after, end, "Testing net (#")) != NULL) {
            r->test_iter = it;
            /* the line is not NUL-terminated: read the digits within it (no atoi) */
            int net = 0;
            for (const char *q = t + 14; q < end && isdigit((unsigned char)*q) && net < 100; q++) {
                net = net * 10 + (*q - '0');
            }
            r->test_net = net < 100 ? net : 0;
            return KB_OK;
        }
        if ((t = find_in(after, end, "loss = ")) != NULL) {
            if (caffe_num(t + 7, end, &v, NULL) != 0) {
                warn(r, "'loss': expected a number");
                return KB_OK;
            }
            r->train_iter = it;
            return add(r, c, it, "train_loss", v, err);
        }
        if ((t = find_in(after, end, "lr = ")) != NULL) {
            if (caffe_num(t + 5, end, &v, NULL) != 0) {
                warn(r, "'lr': expected a number");
                return KB_OK;
            }
            return add(r, c, it, "lr", v, err);
        }
        return KB_OK; /* other Iteration lines (snapshots, "iter/s" without a loss) */
    }
    if ((p = find_in(ln, end, "Test net output #")) != NULL) {
        const char *colon = find_in(p, end, ": ");
        if (isnan(r->test_iter)) {
            warn(r, "a test output before any 'Testing net' line");
            return KB_OK;
        }
        if (colon == NULL || caffe_output(colon + 2, end, name, sizeof name, &v) != 0) {
            warn(r, "'Test net output': expected 'NAME = number'");
            return KB_OK;
        }
        if (r->test_net == 0) {
            snprintf(full, sizeof full, "val_%s", name);
        } else {
            snprintf(full, sizeof full, "val%d_%s", r->test_net, name);
        }
        return add(r, c, r->test_iter, full, v, err);
    }
    if ((p = find_in(ln, end, "Train net output #")) != NULL) {
        const char *colon = find_in(p, end, ": ");
        if (colon == NULL || caffe_output(colon + 2, end, name, sizeof name, &v) != 0) {
            warn(r, "'Train net output': expected 'NAME = number'");
            return KB_OK;
        }
        if (strcmp(name, "loss") == 0 || isnan(r->train_iter)) {
            return KB_OK; /* the Iteration line carries the (averaged) loss */
        }
        snprintf(full, sizeof full, "train_%s", name);
        return add(r, c, r->train_iter, full, v, err);
    }
    return KB_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* MLflow metric files                                                                        */

/* Whitespace-separated numbers: how many (at most max), or -1 if a token is not a number or
 * there are more than max. */
static int split_numbers(const char *ln, size_t len, double *out, size_t max)
{
    size_t nf = 0;
    const char *p = ln, *end = ln + len;
    for (;;) {
        while (p < end && isspace((unsigned char)*p)) {
            p++;
        }
        if (p == end) {
            return (int)nf;
        }
        const char *e = p;
        while (e < end && !isspace((unsigned char)*e)) {
            e++;
        }
        if (nf == max || parse_num(p, (size_t)(e - p), &out[nf]) != 0) {
            return -1;
        }
        nf++;
        p = e;
    }
}

static int parse_mlflow(kb_curveio *r, kb_curve *c, const char *ln, size_t len, kb_error *err)
{
    double f[3];
    int nf = split_numbers(ln, len, f, 3);
    if (nf < 2) {
        warn(r, "expected 'timestamp value step'");
        return KB_OK;
    }
    double step = nf == 3 ? f[2] : (double)r->mlflow_index;
    if (!isfinite(step)) {
        warn(r, "expected a finite step");
        return KB_OK;
    }
    r->mlflow_index++;
    return add(r, c, step, r->metric, f[1], err);
}

/* ------------------------------------------------------------------------------------------ */
/* Dispatch                                                                                   */

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static kb_curveio_format format_from_name(const char *src)
{
    char name[256];
    snprintf(name, sizeof name, "%s", base_name(src));
    size_t len = strlen(name);
    if (len > 3 && strcmp(name + len - 3, ".gz") == 0) {
        name[len - 3] = '\0';
    }
    if (ends_with(name, ".jsonl") || ends_with(name, ".json") || ends_with(name, ".ndjson")) {
        return KB_CURVEIO_FORMAT_JSONL;
    }
    if (ends_with(name, ".csv") || ends_with(name, ".tsv")) {
        return KB_CURVEIO_FORMAT_CSV;
    }
    if (strstr(src, "/metrics/") != NULL) {
        return KB_CURVEIO_FORMAT_MLFLOW;
    }
    return KB_CURVEIO_FORMAT_AUTO;
}

static int glog_prefix(const char *ln, size_t len)
{
    /* glog: "I1127 10:00:00.123456  1234 solver.cpp:218] ..." */
    if (len < 6 || strchr("IWEF", ln[0]) == NULL) {
        return 0;
    }
    for (int i = 1; i <= 4; i++) {
        if (!isdigit((unsigned char)ln[i])) {
            return 0;
        }
    }
    return ln[5] == ' ';
}

static kb_curveio_format format_from_line(const char *ln, size_t len)
{
    if (len > 0 && ln[0] == '{') {
        return KB_CURVEIO_FORMAT_JSONL;
    }
    if (glog_prefix(ln, len) || find_in(ln, ln + len, "Iteration ") != NULL) {
        return KB_CURVEIO_FORMAT_CAFFE;
    }
    /* two or three numbers separated by spaces: MLflow */
    double f[3];
    int nf = split_numbers(ln, len, f, 3);
    if (nf == 2 || nf == 3) {
        return KB_CURVEIO_FORMAT_MLFLOW;
    }
    if (memchr(ln, ',', len) != NULL || memchr(ln, '\t', len) != NULL ||
        memchr(ln, ';', len) != NULL) {
        return KB_CURVEIO_FORMAT_CSV;
    }
    return KB_CURVEIO_FORMAT_AUTO;
}

static int parse_line(kb_curveio *r, kb_curve *c, const char *ln, size_t len, kb_error *err)
{
    r->lineno++;
    if (len > 0 && ln[len - 1] == '\r') {
        len--;
    }
    size_t k = 0;
    while (k < len && isspace((unsigned char)ln[k])) {
        k++;
    }
    if (k == len) {
        return KB_OK; /* blank line */
    }
    if (memchr(ln, '\0', len) != NULL) {
        warn(r, "a NUL byte in the line");
        return KB_OK;
    }
    if (r->format == KB_CURVEIO_FORMAT_AUTO) {
        r->format = format_from_name(r->source);
    }
    if (r->format == KB_CURVEIO_FORMAT_AUTO) {
        if (ln[k] == '#') {
            return KB_OK;
        }
        r->format = format_from_line(ln + k, len - k);
        if (r->format == KB_CURVEIO_FORMAT_AUTO) {
            warn(r, "not a learning-curve line of any known format");
            return KB_OK;
        }
    }
    switch (r->format) {
    case KB_CURVEIO_FORMAT_JSONL: return parse_jsonl(r, c, ln + k, len - k, err);
    case KB_CURVEIO_FORMAT_CSV:
        if (ln[k] == '#') {
            return KB_OK;
        }
        return parse_csv(r, c, ln, len, err);
    case KB_CURVEIO_FORMAT_CAFFE: return parse_caffe(r, c, ln, len, err);
    case KB_CURVEIO_FORMAT_MLFLOW: return parse_mlflow(r, c, ln, len, err);
    default: return KB_OK;
    }
}

int kb_curveio_feed(kb_curveio *r, kb_curve *c, const char *data, size_t n, kb_error *err)
{
    KB_CHECK_ARG(r != NULL && c != NULL);
    KB_CHECK_ARG(data != NULL || n == 0);
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(data + i, '\n', n - i);
        size_t seg = nl ? (size_t)(nl - (data + i)) : n - i;
        int rc = KB_OK;
        if (r->skipping) {
            /* the rest of an over-long line */
        } else if (r->line.len + seg > MAX_LINE_BYTES) {
            r->skipping = 1;
            r->line.len = 0;
        } else if (nl != NULL && r->line.len == 0) {
            rc = parse_line(r, c, data + i, seg, err); /* common case: no copy */
        } else if ((rc = kb_buf_append(&r->line, data + i, seg)) != KB_OK) {
            return kb_error_set(err, KB_ENOMEM, "curve reader: out of memory");
        } else if (nl != NULL) {
            rc = parse_line(r, c, r->line.data, r->line.len, err);
            kb_buf_reset(&r->line);
        }
        if (rc != KB_OK) {
            return rc;
        }
        if (nl == NULL) {
            break;
        }
        if (r->skipping) {
            r->skipping = 0;
            r->lineno++;
            warn(r, "line longer than %u bytes skipped", MAX_LINE_BYTES);
        }
        i += seg + 1;
    }
    return KB_OK;
}

int kb_curveio_finish(kb_curveio *r, kb_curve *c, kb_error *err)
{
    KB_CHECK_ARG(r != NULL && c != NULL);
    int rc = KB_OK;
    if (r->skipping) {
        r->skipping = 0;
        r->lineno++;
        warn(r, "line longer than %u bytes skipped", MAX_LINE_BYTES);
    } else if (r->line.len > 0) {
        rc = parse_line(r, c, r->line.data, r->line.len, err);
    }
    kb_buf_reset(&r->line);
    return rc;
}

int kb_curveio_read(kb_curve *out, kb_curveio_format *format_out, const char *path,
                    const kb_curveio_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && path != NULL);
    kb_curveio_opts o = KB_CURVEIO_OPTS_INIT;
    if (opts != NULL) {
        o = *opts;
    }
    o.source = path;
    int is_stdin = strcmp(path, "-") == 0;
    gzFile gz = NULL;
    if (is_stdin) {
        int fd = dup(0);
        gz = fd >= 0 ? gzdopen(fd, "rb") : NULL;
        if (gz == NULL && fd >= 0) {
            close(fd);
        }
    } else {
        gz = gzopen(path, "rb");
    }
    if (gz == NULL) {
        return kb_error_set_cause(err, KB_EIO, errno, "cannot open '%s': %s", path,
                                  strerror(errno ? errno : ENOENT));
    }
    kb_curveio *r = NULL;
    char *buf = NULL;
    int rc = kb_curveio_new(&r, &o, err);
    if (rc != KB_OK) {
        goto done;
    }
    buf = kb_malloc(1 << 16);
    if (buf == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "curve reader: out of memory");
        goto done;
    }
    for (;;) {
        int got = gzread(gz, buf, 1 << 16);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(gz, &zerr);
            rc = kb_error_set_cause(err, KB_EIO, zerr == Z_ERRNO ? errno : 0,
                                    "reading '%s': %s", path,
                                    zerr == Z_ERRNO ? strerror(errno) : msg);
            goto done;
        }
        if (got == 0) {
            break;
        }
        if ((rc = kb_curveio_feed(r, out, buf, (size_t)got, err)) != KB_OK) {
            goto done;
        }
    }
    if ((rc = kb_curveio_finish(r, out, err)) != KB_OK) {
        goto done;
    }
    if (format_out != NULL) {
        *format_out = r->format;
    }
    if (r->n_values == 0) {
        rc = kb_error_set(err, KB_EFORMAT, "%s: no learning-curve values (%zu lines, %zu bad)",
                          path, r->lineno, r->n_bad);
    }
done:
    kb_free(buf);
    kb_curveio_free(r);
    gzclose(gz);
    return rc;
}
