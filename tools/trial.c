/*
 * The trial runner: see trial.h. One poll loop over every child's stdout and stderr pipes
 * and, on Linux, a pidfd per child that becomes readable when it exits. A library may not
 * install a SIGCHLD handler, and a child's pipes can stay open after it exits (a grandchild
 * holds them), so without a pidfd children are found by polling waitid on a short tick.
 * Events are not queued: each slot carries "progress pending" and "done pending" flags, and
 * kb_trial_pool_next hands them out round-robin, a slot's progress before its DONE.
 */
#if defined(__linux__) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE /* syscall(): pidfd_open, close_range; the rest is POSIX */
#endif
#include "tools/trial.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/core/alloc.h"
#include "engine/core/buf.h"

#define READ_CHUNK (64u * 1024u)
#define READS_PER_ROUND 16     /* at most 1 MiB per stream per round: no child starves others */
#define MAX_LINE_BYTES (1u << 20)
#define MAX_WARNINGS 5         /* bad metric lines reported per trial stream */
#define TICK_MS 100            /* waitid poll while a child's pipes are still open */
#define TICK_CLOSED_MS 1       /* ... and once both are closed: the exit is imminent (no pidfd) */
#define MAX_DIR_TRIES 1000
#define CHILD_CLOSE_FDS 1024   /* fds above 2 closed in the child without close_range (ours
                                  are close-on-exec anyway) */

/* ------------------------------------------------------------------------------------------ */
/* Rendering                                                                                  */

/* The shortest %.Ng that reads back as the same double; an integral float keeps ".0". */
static void format_double(char *out, size_t cap, double x)
{
    if (isnan(x)) {
        snprintf(out, cap, "nan");
        return;
    }
    if (isinf(x)) {
        snprintf(out, cap, "%s", x < 0 ? "-inf" : "inf");
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(out, cap, "%.*g", p, x);
        if (strtod(out, NULL) == x) {
            break;
        }
    }
    if (strpbrk(out, ".eE") == NULL) {
        size_t n = strlen(out);
        if (n + 2 < cap) {
            memcpy(out + n, ".0", 3);
        }
    }
}

/* Append the text form of `v` (NONE: nothing). */
static int put_value(kb_buf *b, const kb_value *v)
{
    char num[64];
    switch (v->type) {
    case KB_VALUE_TYPE_NONE: return KB_OK;
    case KB_VALUE_TYPE_FLOAT: format_double(num, sizeof num, v->f); return kb_buf_puts(b, num);
    case KB_VALUE_TYPE_INT: return kb_buf_printf(b, "%" PRId64, v->i);
    case KB_VALUE_TYPE_STR: return kb_buf_puts(b, v->s != NULL ? v->s : "");
    case KB_VALUE_TYPE_BOOL: return kb_buf_puts(b, v->b ? "true" : "false");
    }
    return KB_OK;
}

int kb_trial_format_value(char **out, const kb_value *v, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    *out = NULL;
    KB_CHECK_ARG(v != NULL && v->type != KB_VALUE_TYPE_NONE);
    kb_buf b = KB_BUF_INIT;
    if (put_value(&b, v) != KB_OK || kb_buf_putc(&b, '\0') != KB_OK) {
        kb_buf_release(&b);
        return kb_error_set(err, KB_ENOMEM, "formatting a value: out of memory");
    }
    *out = b.data;
    return KB_OK;
}

static int put_json_string(kb_buf *b, const char *s)
{
    int rc = kb_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; rc == KB_OK && *p; p++) {
        if (*p == '"' || *p == '\\') {
            rc = kb_buf_putc(b, '\\');
            if (rc == KB_OK) {
                rc = kb_buf_putc(b, (char)*p);
            }
        } else if (*p < 0x20) {
            rc = kb_buf_printf(b, "\\u%04x", *p);
        } else {
            rc = kb_buf_putc(b, (char)*p);
        }
    }
    return rc == KB_OK ? kb_buf_putc(b, '"') : rc;
}

/* The configuration as one JSON object; inactive (NONE) parameters are left out. */
static int put_config_json(kb_buf *b, const kb_param *p, size_t n)
{
    int rc = kb_buf_putc(b, '{');
    int first = 1;
    for (size_t i = 0; rc == KB_OK && i < n; i++) {
        const kb_value *v = &p[i].value;
        if (v->type == KB_VALUE_TYPE_NONE) {
            continue;
        }
        if (!first) {
            rc = kb_buf_putc(b, ',');
        }
        first = 0;
        if (rc == KB_OK) {
            rc = put_json_string(b, p[i].name);
        }
        if (rc == KB_OK) {
            rc = kb_buf_putc(b, ':');
        }
        if (rc != KB_OK) {
            break;
        }
        if (v->type == KB_VALUE_TYPE_STR) {
            rc = put_json_string(b, v->s != NULL ? v->s : "");
        } else if (v->type == KB_VALUE_TYPE_FLOAT && !isfinite(v->f)) {
            rc = kb_buf_puts(b, "null");
        } else {
            rc = put_value(b, v);
        }
    }
    return rc == KB_OK ? kb_buf_putc(b, '}') : rc;
}

static int shell_safe(const char *s, size_t n)
{
    if (n == 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && strchr("_.,:/=+@%^-", c) == NULL) {
            return 0;
        }
    }
    return 1;
}

/* Append `s` (n bytes), single-quoted for the shell when it is not a safe bare word. */
static int put_shell_word(kb_buf *b, const char *s, size_t n, int force_quote)
{
    if (!force_quote && shell_safe(s, n)) {
        return kb_buf_append(b, s, n);
    }
    int rc = kb_buf_putc(b, '\'');
    for (size_t i = 0; rc == KB_OK && i < n; i++) {
        rc = s[i] == '\'' ? kb_buf_puts(b, "'\\''") : kb_buf_putc(b, s[i]);
    }
    return rc == KB_OK ? kb_buf_putc(b, '\'') : rc;
}

static const kb_param *find_param(const kb_param *p, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(p[i].name) == len && memcmp(p[i].name, name, len) == 0) {
            return &p[i];
        }
    }
    return NULL;
}

static int is_name(const char *name, size_t len, const char *s)
{
    return strlen(s) == len && memcmp(name, s, len) == 0;
}

/* The built-in `name` into `val`: KB_OK, KB_ENOTFOUND (not a built-in, or no value), KB_ENOMEM. */
static int lookup_builtin(kb_buf *val, int *force_quote, const kb_trial_vars *v,
                          const char *name, size_t len)
{
    const char *text = NULL;
    if (is_name(name, len, "trial")) {
        return kb_buf_printf(val, "%zu", v->trial);
    }
    if (is_name(name, len, "seed")) {
        return kb_buf_printf(val, "%" PRIu64, v->seed);
    }
    if (is_name(name, len, "config_json")) {
        *force_quote = 1;
        return put_config_json(val, v->config, v->n_config);
    }
    if (is_name(name, len, "budget")) {
        return v->n_fidelity == 0 ? KB_ENOTFOUND : put_value(val, &v->fidelity[0].value);
    }
    if (is_name(name, len, "trial_dir")) {
        text = v->trial_dir;
    } else if (is_name(name, len, "config_file")) {
        text = v->config_file;
    } else if (is_name(name, len, "cwd")) {
        text = v->cwd;
    }
    return text == NULL ? KB_ENOTFOUND : kb_buf_puts(val, text);
}

/*
 * The value of placeholder `name` into `val` (reset first): a configuration or fidelity
 * parameter (so a space's own `seed` wins), else a built-in, else a caller constant.
 * Returns KB_OK, KB_ENOTFOUND for an unknown name, KB_ENOMEM. `*force_quote` is set for
 * {config_json}.
 */
static int lookup(kb_buf *val, int *force_quote, const kb_trial_vars *v, const char *name,
                  size_t len)
{
    kb_buf_reset(val);
    *force_quote = 0;
    const kb_param *p = find_param(v->config, v->n_config, name, len);
    if (p == NULL) {
        p = find_param(v->fidelity, v->n_fidelity, name, len);
    }
    if (p != NULL) {
        return put_value(val, &p->value);
    }
    int rc = lookup_builtin(val, force_quote, v, name, len);
    if (rc != KB_ENOTFOUND) {
        return rc;
    }
    p = find_param(v->extra, v->n_extra, name, len);
    return p != NULL ? put_value(val, &p->value) : KB_ENOTFOUND;
}

static int word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* The parameter whose upper-cased name is the word `w` (len bytes), or NULL. */
static const kb_param *find_token(const kb_param *p, size_t n, const char *w, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        const char *name = p[i].name;
        if (strlen(name) != len) {
            continue;
        }
        size_t k = 0;
        while (k < len && word_char(name[k]) && toupper((unsigned char)name[k]) == w[k]) {
            k++;
        }
        if (k == len) {
            return &p[i];
        }
    }
    return NULL;
}

static const kb_param *lookup_token(const kb_trial_vars *v, const char *w, size_t len)
{
    const kb_param *p = find_token(v->config, v->n_config, w, len);
    if (p == NULL) {
        p = find_token(v->fidelity, v->n_fidelity, w, len);
    }
    if (p == NULL) {
        p = find_token(v->extra, v->n_extra, w, len);
    }
    return p;
}

/* Length of the placeholder name after the '{' at s[0], when s is "{IDENT}"; else 0. */
static size_t placeholder_len(const char *s)
{
    size_t k = 1;
    if (!(isalpha((unsigned char)s[k]) || s[k] == '_')) {
        return 0;
    }
    while (isalnum((unsigned char)s[k]) || strchr("_.-", s[k]) != NULL) {
        if (s[k] == '\0') {
            return 0;
        }
        k++;
    }
    return s[k] == '}' ? k - 1 : 0;
}

static void line_col(const char *text, size_t pos, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < pos; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

int kb_trial_render(char **out, const char *text, const char *source, const kb_trial_vars *vars,
                    unsigned flags, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    *out = NULL;
    KB_CHECK_ARG(text != NULL && vars != NULL);
    if (source == NULL) {
        source = "command";
    }
    kb_buf b = KB_BUF_INIT;
    kb_buf val = KB_BUF_INIT;
    int rc = KB_OK;
    size_t i = 0;
    while (rc == KB_OK && text[i] != '\0') {
        char c = text[i];
        if (c == '{' && text[i + 1] == '{') {
            rc = kb_buf_putc(&b, '{');
            i += 2;
            continue;
        }
        size_t len = c == '{' && (i == 0 || text[i - 1] != '$') ? placeholder_len(text + i) : 0;
        if (len > 0) {
            int force_quote = 0;
            rc = lookup(&val, &force_quote, vars, text + i + 1, len);
            if (rc == KB_ENOTFOUND) {
                size_t line, col;
                line_col(text, i, &line, &col);
                rc = kb_error_set(err, KB_EFORMAT,
                                  "%s:%zu:%zu: unknown placeholder '{%.*s}' (not a parameter "
                                  "or built-in)",
                                  source, line, col, (int)len, text + i + 1);
                break;
            }
            if (rc == KB_OK) {
                rc = (flags & KB_TRIAL_RENDER_SHELL)
                         ? put_shell_word(&b, val.data ? val.data : "", val.len, force_quote)
                         : kb_buf_append(&b, val.data, val.len);
            }
            i += len + 2;
            continue;
        }
        if ((flags & KB_TRIAL_RENDER_TOKENS) && word_char(c)) {
            size_t n = 1;
            while (word_char(text[i + n])) {
                n++;
            }
            const kb_param *p = lookup_token(vars, text + i, n);
            rc = p != NULL ? put_value(&b, &p->value) : kb_buf_append(&b, text + i, n);
            i += n;
            continue;
        }
        rc = kb_buf_putc(&b, c);
        i++;
    }
    if (rc == KB_OK) {
        rc = kb_buf_putc(&b, '\0'); /* an empty result is still a string */
        b.len--;
    }
    kb_buf_release(&val);
    if (rc != KB_OK) {
        kb_buf_release(&b);
        return rc == KB_ENOMEM ? kb_error_set(err, KB_ENOMEM, "rendering %s: out of memory", source)
                               : rc;
    }
    *out = b.data;
    return KB_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Results                                                                                    */

/* Free final metrics and a curve as a kb_run holds them. */
static void free_metrics_curve(kb_metric *m, size_t n_m, kb_series *c, size_t n_c)
{
    for (size_t i = 0; i < n_m; i++) {
        kb_free(m[i].name);
    }
    kb_free(m);
    for (size_t i = 0; i < n_c; i++) {
        kb_series_release(&c[i]);
    }
    kb_free(c);
}

void kb_trial_result_release(kb_trial_result *r)
{
    if (r == NULL) {
        return;
    }
    free_metrics_curve(r->metrics, r->n_metrics, r->curve, r->n_curve);
    kb_free(r->trial_dir);
    kb_free(r->command);
    memset(r, 0, sizeof *r);
}

void kb_trial_result_move_to_run(kb_run *run, kb_trial_result *r)
{
    free_metrics_curve(run->metrics, run->n_metrics, run->curve, run->n_curve);
    run->status = r->status;
    run->metrics = r->metrics;
    run->n_metrics = r->n_metrics;
    run->curve = r->curve;
    run->n_curve = r->n_curve;
    run->cost_s = r->cost_s;
    run->started_at = r->started_at;
    run->finished_at = r->finished_at;
    r->metrics = NULL;
    r->n_metrics = 0;
    r->curve = NULL;
    r->n_curve = 0;
}

void kb_trial_event_release(kb_trial_event *ev)
{
    if (ev == NULL) {
        return;
    }
    kb_trial_result_release(&ev->result);
    ev->kind = KB_TRIAL_EVENT_NONE;
    ev->curve = NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* The pool                                                                                   */

typedef struct stream {
    int fd;           /* read end of the pipe; -1 once closed */
    int log_fd;       /* stdout.log / stderr.log; -1 after a write error */
    int parse;        /* feeds the metric parser */
    kb_curveio *io;   /* format parser (no regex) */
    kb_buf line;      /* regex mode: the partial line */
    int skipping;     /* regex mode: inside an over-long line */
    size_t lineno, n_warned;
    const char *name; /* "stdout" / "stderr" */
} stream;

typedef enum slot_state {
    SLOT_FREE = 0,
    SLOT_RUNNING = 1,
    SLOT_FINISHED = 2 /* reaped; its DONE event is pending */
} slot_state;

typedef struct slot {
    slot_state state;
    size_t trial;
    pid_t pid;
    int pidfd;            /* readable when the child exits; -1 where unsupported */
    double t0;            /* monotonic start, s */
    int64_t started_at;
    double deadline;      /* monotonic time of the timeout; 0: none */
    double kill_at;       /* monotonic time of the SIGKILL after a SIGTERM; 0: none */
    int stopped;
    int timed_out;        /* 1: the timeout; 2: the idle timeout */
    double last_output;   /* monotonic time of the last bytes read from the child */
    kb_run_status stop_status;
    char stop_reason[KB_ERROR_MSG_SIZE];
    stream out, err;
    kb_curve curve;
    size_t seen;          /* values + reported NaNs + finals at the last PROGRESS */
    int progress_pending;
    double auto_step, cur_step; /* regex mode steps */
    int have_step;
    char *dir;
    char *command;
    kb_trial_result result; /* when FINISHED */
} slot;

struct kb_trial_pool {
    char *command;
    char *template_text;  /* NULL: no template */
    char *template_name;
    char *template_source;
    char *work_dir;       /* absolute */
    char *cwd;
    char *objective;
    char *metric_name;
    char *shell;
    double timeout_s, idle_timeout_s, kill_grace_s;
    kb_curveio_format format;
    regex_t metric_re, step_re;
    int have_metric_re, have_step_re;
    size_t metric_groups;
    unsigned parse;
    const kb_param *extra;
    size_t n_extra;
    kb_log log;
    slot *slots;
    size_t max_jobs;
    size_t rr;            /* next slot to look at for events */
    int use_pidfd;        /* 0 when KB_TRIAL_NO_PIDFD is set: tests the portable path */
    char *readbuf;        /* READ_CHUNK bytes */
    struct pollfd *fds;   /* 3 per slot: stdout, stderr, pidfd */
    struct slot **owners; /* the slot of each fds entry */
};

/* An empty slot: its closed fds are -1, not 0. */
static void slot_init(slot *t)
{
    memset(t, 0, sizeof *t);
    t->out.fd = t->out.log_fd = t->err.fd = t->err.log_fd = -1;
    t->pidfd = -1;
}

/*
 * Signal a trial's process group, and its main process directly in case it left the group
 * (setsid) — only while it is not yet reaped, so the pid cannot belong to someone else.
 */
static void signal_trial(const slot *t, int sig)
{
    kill(-t->pid, sig);
    kill(t->pid, sig);
}

/* A pidfd for `pid` (close-on-exec), or -1 when the kernel has none (before Linux 5.3). */
static int open_pidfd(pid_t pid)
{
#if defined(__linux__) && defined(SYS_pidfd_open)
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    return -1;
#endif
}


static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int dup_opt(char **out, const char *s)
{
    *out = NULL;
    if (s == NULL) {
        return 0;
    }
    *out = kb_strdup(s);
    return *out == NULL ? -1 : 0;
}

/* mkdir -p */
static int make_dirs(const char *path, kb_error *err)
{
    char *p = kb_strdup(path);
    if (p == NULL) {
        return kb_error_set(err, KB_ENOMEM, "work dir: out of memory");
    }
    int rc = KB_OK;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char saved = *s;
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                rc = kb_error_set_cause(err, KB_EIO, errno, "cannot make directory '%s': %s", p,
                                        strerror(errno));
                break;
            }
            *s = saved;
            if (saved == '\0') {
                break;
            }
        }
    }
    if (rc == KB_OK) {
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            rc = kb_error_set(err, KB_EIO, "work dir '%s' is not a directory", path);
        }
    }
    kb_free(p);
    return rc;
}

static char *join_path(const char *dir, const char *name)
{
    kb_buf b = KB_BUF_INIT;
    if (kb_buf_printf(&b, "%s/%s", dir, name) != KB_OK) {
        kb_buf_release(&b);
        return NULL;
    }
    return b.data;
}

static int read_file_text(char **out, const char *path, kb_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return kb_error_set_cause(err, KB_EIO, errno, "cannot open template '%s': %s", path,
                                  strerror(errno));
    }
    kb_buf b = KB_BUF_INIT;
    char chunk[4096];
    size_t n;
    int rc = KB_OK;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (kb_buf_append(&b, chunk, n) != KB_OK) {
            rc = kb_error_set(err, KB_ENOMEM, "reading template '%s': out of memory", path);
            break;
        }
    }
    if (rc == KB_OK && ferror(f)) {
        rc = kb_error_set(err, KB_EIO, "cannot read template '%s'", path);
    }
    fclose(f);
    if (rc == KB_OK && memchr(b.data != NULL ? b.data : "", '\0', b.len) != NULL) {
        rc = kb_error_set(err, KB_EFORMAT, "template '%s': a NUL byte (not a text file)", path);
    }
    if (rc == KB_OK && kb_buf_putc(&b, '\0') != KB_OK) {
        rc = kb_error_set(err, KB_ENOMEM, "reading template '%s': out of memory", path);
    }
    if (rc != KB_OK) {
        kb_buf_release(&b);
        return rc;
    }
    *out = b.data;
    return KB_OK;
}

/* The template's copy is named after it, without a ".tmpl" / ".in" suffix. */
static char *template_copy_name(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    size_t len = strlen(base);
    static const char *const suffixes[] = {".tmpl", ".template", ".in"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t k = strlen(suffixes[i]);
        if (len > k && strcmp(base + len - k, suffixes[i]) == 0) {
            len -= k;
            break;
        }
    }
    if (len == 0 || (len == 1 && base[0] == '.') ||
        (len == 10 && (strncmp(base, "stdout.log", len) == 0 ||
                       strncmp(base, "stderr.log", len) == 0))) {
        return kb_strdup("config");
    }
    return kb_strndup(base, len);
}

static int compile_regex(regex_t *re, const char *what, const char *pattern, kb_error *err)
{
    int rc = regcomp(re, pattern, REG_EXTENDED);
    if (rc != 0) {
        char msg[160];
        regerror(rc, re, msg, sizeof msg);
        return kb_error_set(err, KB_EFORMAT, "%s '%s': %s", what, pattern, msg);
    }
    return KB_OK;
}

int kb_trial_pool_new(kb_trial_pool **out, const kb_trial_pool_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    *out = NULL;
    KB_CHECK_ARG(opts != NULL && opts->command != NULL);
    KB_CHECK_ARG(opts->max_jobs > 0);
    KB_CHECK_ARG(opts->n_extra == 0 || opts->extra != NULL);
    kb_trial_pool *pool = kb_calloc(1, sizeof *pool);
    if (pool == NULL) {
        return kb_error_set(err, KB_ENOMEM, "trial pool: out of memory");
    }
    int rc = KB_OK;
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) {
        rc = kb_error_set_cause(err, KB_EIO, errno, "cannot get the working directory: %s",
                                strerror(errno));
        goto done;
    }
    const char *wd = opts->work_dir != NULL ? opts->work_dir : "kb-trials";
    if (dup_opt(&pool->command, opts->command) || dup_opt(&pool->cwd, cwd) ||
        dup_opt(&pool->objective, opts->objective) ||
        dup_opt(&pool->metric_name, opts->metric_name) ||
        dup_opt(&pool->shell, opts->shell != NULL ? opts->shell : "/bin/sh") ||
        (pool->work_dir = wd[0] == '/' ? kb_strdup(wd) : join_path(cwd, wd)) == NULL ||
        (pool->slots = kb_calloc(opts->max_jobs, sizeof *pool->slots)) == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "trial pool: out of memory");
        goto done;
    }
    pool->max_jobs = opts->max_jobs;
    for (size_t i = 0; i < pool->max_jobs; i++) {
        slot_init(&pool->slots[i]);
    }
    if ((pool->readbuf = kb_malloc(READ_CHUNK)) == NULL ||
        (pool->fds = kb_calloc(3 * pool->max_jobs, sizeof *pool->fds)) == NULL ||
        (pool->owners = kb_calloc(3 * pool->max_jobs, sizeof *pool->owners)) == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "trial pool: out of memory");
        goto done;
    }
    pool->timeout_s = opts->timeout_s;
    pool->idle_timeout_s = opts->idle_timeout_s;
    pool->kill_grace_s = opts->kill_grace_s >= 0 ? opts->kill_grace_s : 0;
    pool->format = opts->format;
    pool->parse = opts->parse != 0 ? opts->parse : KB_TRIAL_PARSE_STDOUT;
    pool->extra = opts->extra;
    pool->n_extra = opts->n_extra;
    pool->log = opts->log;
    const char *no_pidfd = getenv("KB_TRIAL_NO_PIDFD");
    pool->use_pidfd = no_pidfd == NULL || no_pidfd[0] == '\0';
    if (opts->metric_regex != NULL) {
        if ((rc = compile_regex(&pool->metric_re, "metric regex", opts->metric_regex, err)) !=
            KB_OK) {
            goto done;
        }
        pool->have_metric_re = 1;
        pool->metric_groups = pool->metric_re.re_nsub;
        if (pool->metric_groups == 0) {
            rc = kb_error_set(err, KB_EINVAL,
                              "metric regex '%s': needs a group: (NAME)(VALUE) or (VALUE)",
                              opts->metric_regex);
            goto done;
        }
        if (pool->metric_groups == 1 && pool->metric_name == NULL) {
            rc = kb_error_set(err, KB_EINVAL,
                              "metric regex '%s' has one group (the value): give the metric's "
                              "name",
                              opts->metric_regex);
            goto done;
        }
    }
    if (opts->step_regex != NULL) {
        if ((rc = compile_regex(&pool->step_re, "step regex", opts->step_regex, err)) != KB_OK) {
            goto done;
        }
        pool->have_step_re = 1;
        if (pool->step_re.re_nsub < 1) {
            rc = kb_error_set(err, KB_EINVAL, "step regex '%s': needs a group (the step)",
                              opts->step_regex);
            goto done;
        }
    }
    if (opts->template_path != NULL) {
        if ((rc = read_file_text(&pool->template_text, opts->template_path, err)) != KB_OK) {
            goto done;
        }
        if ((pool->template_name = template_copy_name(opts->template_path)) == NULL ||
            (pool->template_source = kb_strdup(opts->template_path)) == NULL) {
            rc = kb_error_set(err, KB_ENOMEM, "trial pool: out of memory");
            goto done;
        }
    }
    rc = make_dirs(pool->work_dir, err);
done:
    if (rc != KB_OK) {
        kb_trial_pool_free(pool);
        return rc;
    }
    *out = pool;
    return KB_OK;
}

static void stream_close(stream *s)
{
    if (s->fd >= 0) {
        close(s->fd);
    }
    if (s->log_fd >= 0) {
        close(s->log_fd);
    }
    s->fd = -1;
    s->log_fd = -1;
}

static void stream_release(stream *s)
{
    stream_close(s);
    kb_curveio_free(s->io);
    s->io = NULL;
    kb_buf_release(&s->line);
}

static void slot_release(slot *t)
{
    stream_release(&t->out);
    stream_release(&t->err);
    if (t->pidfd >= 0) {
        close(t->pidfd);
    }
    kb_curve_release(&t->curve);
    kb_free(t->dir);
    kb_free(t->command);
    kb_trial_result_release(&t->result);
    slot_init(t);
}

void kb_trial_pool_free(kb_trial_pool *pool)
{
    if (pool == NULL) {
        return;
    }
    for (size_t i = 0; pool->slots != NULL && i < pool->max_jobs; i++) {
        slot *t = &pool->slots[i];
        if (t->state == SLOT_RUNNING) {
            signal_trial(t, SIGKILL);
            while (waitpid(t->pid, NULL, 0) < 0 && errno == EINTR) {
            }
        }
        slot_release(t);
    }
    kb_free(pool->slots);
    kb_free(pool->command);
    kb_free(pool->template_text);
    kb_free(pool->template_name);
    kb_free(pool->template_source);
    kb_free(pool->work_dir);
    kb_free(pool->cwd);
    kb_free(pool->objective);
    kb_free(pool->metric_name);
    kb_free(pool->shell);
    kb_free(pool->readbuf);
    kb_free(pool->fds);
    kb_free(pool->owners);
    if (pool->have_metric_re) {
        regfree(&pool->metric_re);
    }
    if (pool->have_step_re) {
        regfree(&pool->step_re);
    }
    kb_free(pool);
}

size_t kb_trial_pool_n_running(const kb_trial_pool *pool)
{
    size_t n = 0;
    for (size_t i = 0; pool != NULL && i < pool->max_jobs; i++) {
        n += pool->slots[i].state != SLOT_FREE;
    }
    return n;
}

size_t kb_trial_pool_n_free(const kb_trial_pool *pool)
{
    return pool == NULL ? 0 : pool->max_jobs - kb_trial_pool_n_running(pool);
}

static slot *find_slot(const kb_trial_pool *pool, size_t trial)
{
    for (size_t i = 0; i < pool->max_jobs; i++) {
        if (pool->slots[i].state != SLOT_FREE && pool->slots[i].trial == trial) {
            return &pool->slots[i];
        }
    }
    return NULL;
}

const kb_curve *kb_trial_pool_curve(const kb_trial_pool *pool, size_t trial)
{
    if (pool == NULL) {
        return NULL;
    }
    const slot *t = find_slot(pool, trial);
    return t != NULL ? &t->curve : NULL;
}

/* A fresh directory work_dir/trial-NNNN[-k]; `*out` owned by the caller. */
static int make_trial_dir(char **out, const kb_trial_pool *pool, size_t trial, kb_error *err)
{
    *out = NULL;
    kb_buf b = KB_BUF_INIT;
    for (int k = 1; k <= MAX_DIR_TRIES; k++) {
        kb_buf_reset(&b);
        int rc = k == 1 ? kb_buf_printf(&b, "%s/trial-%04zu", pool->work_dir, trial)
                        : kb_buf_printf(&b, "%s/trial-%04zu-%d", pool->work_dir, trial, k);
        if (rc != KB_OK) {
            kb_buf_release(&b);
            return kb_error_set(err, KB_ENOMEM, "trial %zu: out of memory", trial);
        }
        if (mkdir(b.data, 0777) == 0) {
            *out = b.data;
            return KB_OK;
        }
        if (errno != EEXIST) {
            int e = errno;
            kb_error_set_cause(err, KB_EIO, e, "cannot make trial directory '%s': %s", b.data,
                               strerror(e));
            kb_buf_release(&b);
            return KB_EIO;
        }
    }
    kb_error_set(err, KB_EIO, "cannot make a fresh trial directory under '%s' for trial %zu",
                 pool->work_dir, trial);
    kb_buf_release(&b);
    return KB_EIO;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_text_file(const char *path, const char *text, kb_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return kb_error_set_cause(err, KB_EIO, errno, "cannot create '%s': %s", path,
                                  strerror(errno));
    }
    int bad = write_all(fd, text, strlen(text));
    int e = errno;
    if (close(fd) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        return kb_error_set_cause(err, KB_EIO, e, "cannot write '%s': %s", path, strerror(e));
    }
    return KB_OK;
}

static int set_fd_flags(int fd, int nonblock)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0) {
        return -1;
    }
    if (nonblock) {
        fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Only async-signal-safe calls between fork and exec. */
static void child_exec(const char *shell, const char *command, const char *dir, int in_fd,
                       int out_fd, int err_fd)
{
    setpgid(0, 0);
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) {
        _exit(126);
    }
    if (chdir(dir) != 0) {
        static const char msg[] = "kb trial: cannot enter the trial directory\n";
        (void)!write(2, msg, sizeof msg - 1);
        _exit(126);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    static const int sigs[] = {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGALRM};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        sigaction(sigs[i], &sa, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
#if defined(__linux__) && defined(SYS_close_range)
    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
#endif
    {
        for (int fd = 3; fd < CHILD_CLOSE_FDS; fd++) {
            close(fd);
        }
    }
    char *argv[] = {(char *)shell, (char *)"-c", (char *)command, NULL};
    execv(shell, argv);
    static const char msg[] = "kb trial: cannot run the shell\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(127);
}

static int stream_open(stream *s, const kb_trial_pool *pool, const slot *t, const char *name,
                       int parse, kb_error *err)
{
    s->name = name;
    s->parse = parse;
    char file[32];
    snprintf(file, sizeof file, "%s.log", name);
    char *path = join_path(t->dir, file);
    if (path == NULL) {
        return kb_error_set(err, KB_ENOMEM, "trial %zu: out of memory", t->trial);
    }
    s->log_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->log_fd < 0) {
        int e = errno;
        kb_error_set_cause(err, KB_EIO, e, "cannot create '%s': %s", path, strerror(e));
        kb_free(path);
        return KB_EIO;
    }
    int rc = KB_OK;
    if (parse && !pool->have_metric_re) {
        kb_curveio_opts io = KB_CURVEIO_OPTS_INIT;
        io.format = pool->format;
        io.source = path;
        io.max_warnings = MAX_WARNINGS;
        io.log = pool->log;
        rc = kb_curveio_new(&s->io, &io, err);
    }
    kb_free(path);
    return rc;
}

int kb_trial_pool_start(kb_trial_pool *pool, size_t trial, const kb_param *config,
                        size_t n_config, const kb_param *fidelity, size_t n_fidelity,
                        uint64_t seed, kb_error *err)
{
    KB_CHECK_ARG(pool != NULL);
    KB_CHECK_ARG(n_config == 0 || config != NULL);
    KB_CHECK_ARG(n_fidelity == 0 || fidelity != NULL);
    if (find_slot(pool, trial) != NULL) {
        return kb_error_set(err, KB_EINVAL, "trial %zu is already running", trial);
    }
    slot *t = NULL;
    for (size_t i = 0; i < pool->max_jobs && t == NULL; i++) {
        if (pool->slots[i].state == SLOT_FREE) {
            t = &pool->slots[i];
        }
    }
    if (t == NULL) {
        return kb_error_set(err, KB_EINVAL, "trial pool is full (%zu running)", pool->max_jobs);
    }
    slot_release(t);
    t->trial = trial;
    char *config_file = NULL;
    char *rendered = NULL;
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    int devnull = -1;
    int rc = make_trial_dir(&t->dir, pool, trial, err);
    if (rc != KB_OK) {
        goto done;
    }
    kb_trial_vars v = KB_TRIAL_VARS_INIT;
    v.config = config;
    v.n_config = n_config;
    v.fidelity = fidelity;
    v.n_fidelity = n_fidelity;
    v.extra = pool->extra;
    v.n_extra = pool->n_extra;
    v.trial = trial;
    v.seed = seed;
    v.trial_dir = t->dir;
    v.cwd = pool->cwd;
    if (pool->template_text != NULL) {
        if ((config_file = join_path(t->dir, pool->template_name)) == NULL) {
            rc = kb_error_set(err, KB_ENOMEM, "trial %zu: out of memory", trial);
            goto done;
        }
        v.config_file = config_file;
        if ((rc = kb_trial_render(&rendered, pool->template_text, pool->template_source, &v,
                                  KB_TRIAL_RENDER_TOKENS, err)) != KB_OK ||
            (rc = write_text_file(config_file, rendered, err)) != KB_OK) {
            goto done;
        }
    }
    if ((rc = kb_trial_render(&t->command, pool->command, "command", &v, KB_TRIAL_RENDER_SHELL,
                              err)) != KB_OK) {
        goto done;
    }
    if ((rc = stream_open(&t->out, pool, t, "stdout",
                          (pool->parse & KB_TRIAL_PARSE_STDOUT) != 0, err)) != KB_OK ||
        (rc = stream_open(&t->err, pool, t, "stderr",
                          (pool->parse & KB_TRIAL_PARSE_STDERR) != 0, err)) != KB_OK) {
        goto done;
    }
    if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0 ||
        (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0 ||
        set_fd_flags(out_pipe[0], 1) || set_fd_flags(out_pipe[1], 0) ||
        set_fd_flags(err_pipe[0], 1) || set_fd_flags(err_pipe[1], 0)) {
        rc = kb_error_set_cause(err, KB_EIO, errno, "trial %zu: cannot make pipes: %s", trial,
                                strerror(errno));
        goto done;
    }
    t->t0 = now_mono();
    t->started_at = now_us();
    pid_t pid = fork();
    if (pid < 0) {
        rc = kb_error_set_cause(err, KB_EIO, errno, "trial %zu: cannot fork: %s", trial,
                                strerror(errno));
        goto done;
    }
    if (pid == 0) {
        child_exec(pool->shell, t->command, t->dir, devnull, out_pipe[1], err_pipe[1]);
    }
    /* both sides set the group, so neither a signal nor the exec can race it */
    setpgid(pid, pid);
    t->pid = pid;
    t->pidfd = pool->use_pidfd ? open_pidfd(pid) : -1;
    t->state = SLOT_RUNNING;
    t->out.fd = out_pipe[0];
    t->err.fd = err_pipe[0];
    out_pipe[0] = err_pipe[0] = -1;
    t->deadline = pool->timeout_s > 0 ? t->t0 + pool->timeout_s : 0;
    t->last_output = t->t0;
    t->curve = (kb_curve)KB_CURVE_INIT;
done:
    for (int k = 0; k < 2; k++) {
        if (out_pipe[k] >= 0) {
            close(out_pipe[k]);
        }
        if (err_pipe[k] >= 0) {
            close(err_pipe[k]);
        }
    }
    if (devnull >= 0) {
        close(devnull);
    }
    kb_free(config_file);
    kb_free(rendered);
    if (rc != KB_OK) {
        slot_release(t);
    }
    return rc;
}

int kb_trial_pool_stop(kb_trial_pool *pool, size_t trial, kb_run_status status,
                       const char *reason, kb_error *err)
{
    KB_CHECK_ARG(pool != NULL);
    KB_CHECK_ARG(status != KB_RUN_STATUS_OK && status != KB_RUN_STATUS_RUNNING);
    slot *t = find_slot(pool, trial);
    if (t == NULL) {
        return kb_error_set(err, KB_ENOTFOUND, "trial %zu is not running", trial);
    }
    if (t->state != SLOT_RUNNING || t->stopped) {
        return KB_OK; /* already ended (its result stands) or already stopped */
    }
    t->stopped = 1;
    t->stop_status = status;
    snprintf(t->stop_reason, sizeof t->stop_reason, "%s",
             reason != NULL && reason[0] != '\0' ? reason : "stopped");
    if (t->kill_at == 0) {
        signal_trial(t, SIGTERM);
        t->kill_at = now_mono() + pool->kill_grace_s;
    }
    return KB_OK;
}

/* ---- parsing ---- */

static void warn_line(const kb_trial_pool *pool, const slot *t, stream *s, const char *what)
{
    if (s->n_warned++ < MAX_WARNINGS) {
        kb_log_printf(&pool->log, KB_LOG_LEVEL_WARNING, "%s/%s.log:%zu: %s", t->dir, s->name,
                      s->lineno, what);
    }
}

static int parse_number(double *out, const char *s, size_t n)
{
    char tmp[64];
    if (n == 0 || n >= sizeof tmp) {
        return -1;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end = NULL;
    errno = 0;
    double x = strtod(tmp, &end);
    if (end == tmp || *end != '\0') {
        return -1;
    }
    *out = x;
    return 0;
}

static int regex_line(const kb_trial_pool *pool, slot *t, stream *s, const char *line,
                      kb_error *err)
{
    regmatch_t m[3];
    if (pool->have_step_re && regexec(&pool->step_re, line, 2, m, 0) == 0 && m[1].rm_so >= 0) {
        double step;
        if (parse_number(&step, line + m[1].rm_so, (size_t)(m[1].rm_eo - m[1].rm_so)) == 0 &&
            isfinite(step)) {
            t->cur_step = step;
            t->have_step = 1;
        }
    }
    size_t off = 0;
    int eflags = 0;
    int first = 1;
    double step = 0;
    while (line[off] != '\0' && regexec(&pool->metric_re, line + off, 3, m, eflags) == 0) {
        if (m[0].rm_eo <= 0) {
            off++; /* an empty match: move on */
            eflags = REG_NOTBOL;
            continue;
        }
        size_t vg = pool->metric_groups >= 2 ? 2 : 1;
        char name[128];
        if (pool->metric_groups >= 2) {
            size_t nl = m[1].rm_so >= 0 ? (size_t)(m[1].rm_eo - m[1].rm_so) : 0;
            if (nl == 0 || nl >= sizeof name) {
                warn_line(pool, t, s, "metric name empty or too long");
                goto next;
            }
            memcpy(name, line + off + m[1].rm_so, nl);
            name[nl] = '\0';
        } else {
            snprintf(name, sizeof name, "%s", pool->metric_name);
        }
        double x;
        if (m[vg].rm_so < 0 ||
            parse_number(&x, line + off + m[vg].rm_so, (size_t)(m[vg].rm_eo - m[vg].rm_so))) {
            char what[200];
            snprintf(what, sizeof what, "metric '%s': value is not a number", name);
            warn_line(pool, t, s, what);
            goto next;
        }
        if (first) {
            step = t->have_step ? t->cur_step : ++t->auto_step;
            first = 0;
        }
        int rc = kb_curve_add(&t->curve, step, name, x, err);
        if (rc != KB_OK) {
            return rc;
        }
    next:
        off += (size_t)m[0].rm_eo;
        eflags = REG_NOTBOL;
    }
    return KB_OK;
}

/* Regex mode: split into lines (over-long lines are skipped) and match each. */
static int regex_feed(const kb_trial_pool *pool, slot *t, stream *s, const char *data, size_t n,
                      int final, kb_error *err)
{
    size_t i = 0;
    while (i < n || (final && s->line.len > 0)) {
        const char *nl = i < n ? memchr(data + i, '\n', n - i) : NULL;
        size_t seg = nl != NULL ? (size_t)(nl - (data + i)) : n - i;
        int complete = nl != NULL || (final && i + seg == n);
        if (s->skipping) {
            if (complete) {
                s->skipping = 0;
                s->lineno++;
                warn_line(pool, t, s, "line longer than 1 MiB skipped");
            }
        } else if (s->line.len + seg > MAX_LINE_BYTES) {
            s->skipping = !complete;
            kb_buf_reset(&s->line);
            if (complete) {
                s->lineno++;
                warn_line(pool, t, s, "line longer than 1 MiB skipped");
            }
        } else {
            if (seg > 0 && kb_buf_append(&s->line, data + i, seg) != KB_OK) {
                return kb_error_set(err, KB_ENOMEM, "trial %zu: out of memory", t->trial);
            }
            if (complete) {
                s->lineno++;
                int rc = KB_OK;
                /* a NUL inside the line would end it early for regexec: drop such lines */
                if (s->line.len > 0 && memchr(s->line.data, '\0', s->line.len) == NULL) {
                    rc = regex_line(pool, t, s, s->line.data, err);
                }
                kb_buf_reset(&s->line);
                if (rc != KB_OK) {
                    return rc;
                }
            }
        }
        i += seg + (nl != NULL);
        if (nl == NULL) {
            break;
        }
    }
    return KB_OK;
}

static size_t curve_mass(const kb_curve *c)
{
    size_t n = c->n_finals + (size_t)c->done;
    for (size_t i = 0; i < c->n_series; i++) {
        n += c->series[i].n_values + c->series[i].n_nan;
    }
    return n;
}

static int stream_parse(const kb_trial_pool *pool, slot *t, stream *s, const char *data,
                        size_t n, int final, kb_error *err)
{
    if (!s->parse) {
        return KB_OK;
    }
    int rc;
    if (pool->have_metric_re) {
        rc = regex_feed(pool, t, s, data, n, final, err);
    } else {
        rc = kb_curveio_feed(s->io, &t->curve, data, n, err);
        if (rc == KB_OK && final) {
            rc = kb_curveio_finish(s->io, &t->curve, err);
        }
    }
    size_t mass = curve_mass(&t->curve);
    if (mass != t->seen) {
        t->seen = mass;
        t->progress_pending = 1;
    }
    return rc;
}

/*
 * Read what the stream has now (up to READS_PER_ROUND chunks); closes it at EOF.
 * Returns KB_OK or the parser's KB_ENOMEM (the data is still logged).
 */
static int stream_read(kb_trial_pool *pool, slot *t, stream *s, kb_error *err)
{
    int rc = KB_OK;
    for (int k = 0; s->fd >= 0 && k < READS_PER_ROUND; k++) {
        ssize_t n = read(s->fd, pool->readbuf, READ_CHUNK);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (n <= 0) {
            close(s->fd);
            s->fd = -1;
            break;
        }
        t->last_output = now_mono();
        if (s->log_fd >= 0 && write_all(s->log_fd, pool->readbuf, (size_t)n) != 0) {
            kb_log_printf(&pool->log, KB_LOG_LEVEL_WARNING, "%s/%s.log: write failed: %s",
                          t->dir, s->name, strerror(errno));
            close(s->log_fd);
            s->log_fd = -1;
        }
        int prc = stream_parse(pool, t, s, pool->readbuf, (size_t)n, 0, err);
        if (prc != KB_OK && rc == KB_OK) {
            rc = prc;
        }
    }
    return rc;
}

/* ---- results ---- */

static int metric_cmp(const void *a, const void *b)
{
    return strcmp(((const kb_metric *)a)->name, ((const kb_metric *)b)->name);
}

static int series_cmp(const void *a, const void *b)
{
    return strcmp(((const kb_series *)a)->metric, ((const kb_series *)b)->metric);
}

/* The last reported value of a series: NaN when a NaN was reported after its last point. */
static double series_last(const kb_curve *c, const kb_curve_series *s, double *step_out)
{
    double last = NAN, last_step = NAN;
    for (size_t i = c->n_steps; i-- > 0;) {
        if (!isnan(s->values[i])) {
            last = s->values[i];
            last_step = c->steps[i];
            break;
        }
    }
    if (s->n_nan > 0 && (isnan(last_step) || s->first_nan_step >= last_step)) {
        last = NAN;
        last_step = s->first_nan_step;
    }
    if (step_out != NULL) {
        *step_out = last_step;
    }
    return last;
}

static int64_t step_to_int(double step)
{
    if (!(step > -9e18 && step < 9e18)) {
        return step < 0 ? INT64_MIN + 1 : INT64_MAX;
    }
    return (int64_t)llround(step);
}

/* The curve as kb_series, sorted by name; a reported NaN becomes a NaN point at its step. */
static int curve_to_series(kb_series **out, size_t *n_out, const kb_curve *c)
{
    *out = NULL;
    *n_out = 0;
    if (c->n_series == 0) {
        return KB_OK;
    }
    kb_series *ss = kb_calloc(c->n_series, sizeof *ss);
    if (ss == NULL) {
        return KB_ENOMEM;
    }
    size_t n = 0;
    for (size_t k = 0; k < c->n_series; k++) {
        const kb_curve_series *s = &c->series[k];
        size_t np = s->n_values + (s->n_nan > 0);
        if (np == 0) {
            continue;
        }
        kb_series *d = &ss[n++];
        d->metric = kb_strdup(s->name);
        d->steps = kb_malloc_array(np, sizeof *d->steps);
        d->values = kb_malloc_array(np, sizeof *d->values);
        if (d->metric == NULL || d->steps == NULL || d->values == NULL) {
            for (size_t i = 0; i < n; i++) {
                kb_series_release(&ss[i]);
            }
            kb_free(ss);
            return KB_ENOMEM;
        }
        int nan_done = s->n_nan == 0;
        for (size_t i = 0; i < c->n_steps && d->n < np; i++) {
            if (!nan_done && s->first_nan_step <= c->steps[i]) {
                d->steps[d->n] = step_to_int(s->first_nan_step);
                d->values[d->n++] = NAN;
                nan_done = 1;
            }
            if (!isnan(s->values[i]) && d->n < np) {
                d->steps[d->n] = step_to_int(c->steps[i]);
                d->values[d->n++] = s->values[i];
            }
        }
        if (!nan_done && d->n < np) {
            d->steps[d->n] = step_to_int(s->first_nan_step);
            d->values[d->n++] = NAN;
        }
    }
    qsort(ss, n, sizeof *ss, series_cmp);
    *out = ss;
    *n_out = n;
    return KB_OK;
}

/* Final metrics: the final line's, plus the last value of each series it does not name. */
static int final_metrics(kb_metric **out, size_t *n_out, const kb_curve *c)
{
    *out = NULL;
    *n_out = 0;
    size_t cap = c->n_finals + c->n_series;
    if (cap == 0) {
        return KB_OK;
    }
    kb_metric *m = kb_calloc(cap, sizeof *m);
    if (m == NULL) {
        return KB_ENOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < c->n_finals; i++) {
        m[n].value = c->finals[i].value;
        if ((m[n++].name = kb_strdup(c->finals[i].name)) == NULL) {
            goto oom;
        }
    }
    for (size_t i = 0; i < c->n_series; i++) {
        int named = 0;
        for (size_t j = 0; j < c->n_finals && !named; j++) {
            named = strcmp(c->finals[j].name, c->series[i].name) == 0;
        }
        if (named || (c->series[i].n_values == 0 && c->series[i].n_nan == 0)) {
            continue;
        }
        m[n].value = series_last(c, &c->series[i], NULL);
        if ((m[n++].name = kb_strdup(c->series[i].name)) == NULL) {
            goto oom;
        }
    }
    qsort(m, n, sizeof *m, metric_cmp);
    *out = m;
    *n_out = n;
    return KB_OK;
oom:
    for (size_t i = 0; i < n; i++) {
        kb_free(m[i].name);
    }
    kb_free(m);
    return KB_ENOMEM;
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGKILL: return "SIGKILL";
    case SIGINT: return "SIGINT";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGPIPE: return "SIGPIPE";
    case SIGHUP: return "SIGHUP";
    default: return "signal";
    }
}

/*
 * Decide status and reason: a stop or a timeout wins; then a non-finite objective
 * (diverged); then the exit status; then an objective (or, without one, any metric) never
 * reported; then a "status" the trial's final line gave.
 */
static void classify(kb_trial_result *r, const kb_trial_pool *pool, const slot *t,
                     int have_status, int wstatus)
{
    const kb_curve *c = &t->curve;
    char exit_text[64] = "";
    if (!have_status) {
        snprintf(exit_text, sizeof exit_text, "exit status unknown (reaped elsewhere)");
    } else if (WIFSIGNALED(wstatus)) {
        r->exit_code = -1;
        r->term_signal = WTERMSIG(wstatus);
        snprintf(exit_text, sizeof exit_text, "killed by signal %d (%s)", r->term_signal,
                 signal_name(r->term_signal));
    } else {
        r->exit_code = WEXITSTATUS(wstatus);
        if (r->exit_code != 0) {
            snprintf(exit_text, sizeof exit_text, "exit status %d", r->exit_code);
        }
    }
    /* the objective: the final line's value, else the series' last value */
    int obj_reported = 0;
    double obj = NAN, obj_step = NAN;
    if (pool->objective != NULL) {
        for (size_t i = 0; i < c->n_finals; i++) {
            if (strcmp(c->finals[i].name, pool->objective) == 0) {
                obj = c->finals[i].value;
                obj_reported = 1;
            }
        }
        const kb_curve_series *s = kb_curve_get(c, pool->objective);
        if (s != NULL && (s->n_values > 0 || s->n_nan > 0)) {
            double last = series_last(c, s, &obj_step);
            if (!obj_reported) {
                obj = last;
                obj_reported = 1;
            } else if (c->n_steps > 0) {
                obj_step = c->steps[c->n_steps - 1];
            }
        }
    }
    r->objective = isfinite(obj) ? obj : NAN;
    if (t->stopped) {
        r->status = t->stop_status;
        snprintf(r->reason, sizeof r->reason, "%s", t->stop_reason);
    } else if (t->timed_out) {
        r->status = KB_RUN_STATUS_FAILED;
        if (t->timed_out == 2) {
            snprintf(r->reason, sizeof r->reason, "no output for %g s", pool->idle_timeout_s);
        } else {
            snprintf(r->reason, sizeof r->reason, "timeout after %g s", pool->timeout_s);
        }
    } else if (obj_reported && !isfinite(obj)) {
        r->status = KB_RUN_STATUS_DIVERGED;
        char at[48] = "";
        if (!isnan(obj_step)) {
            snprintf(at, sizeof at, " at step %g", obj_step);
        }
        snprintf(r->reason, sizeof r->reason, "objective '%s' is %s%s%s%s", pool->objective,
                 isnan(obj) ? "nan" : obj > 0 ? "inf" : "-inf", at, exit_text[0] ? "; " : "",
                 exit_text);
    } else if (exit_text[0] != '\0') {
        r->status = KB_RUN_STATUS_FAILED;
        snprintf(r->reason, sizeof r->reason, "%s", exit_text);
    } else if (pool->objective != NULL && !obj_reported) {
        r->status = KB_RUN_STATUS_FAILED;
        snprintf(r->reason, sizeof r->reason, "objective '%s' never reported", pool->objective);
    } else if (pool->objective == NULL && curve_mass(c) == 0) {
        r->status = KB_RUN_STATUS_FAILED;
        snprintf(r->reason, sizeof r->reason, "no metric reported");
    } else if (c->status != NULL && strcmp(c->status, "ok") != 0) {
        r->status = strcmp(c->status, "diverged") == 0 ? KB_RUN_STATUS_DIVERGED
                                                        : KB_RUN_STATUS_FAILED;
        snprintf(r->reason, sizeof r->reason, "the trial reported status '%s'", c->status);
    } else {
        r->status = KB_RUN_STATUS_OK;
        r->reason[0] = '\0';
    }
}

/* The main process has exited (still a zombie): drain, kill the rest of its group, reap. */
static int finish_slot(kb_trial_pool *pool, slot *t, kb_error *err)
{
    int rc = KB_OK;
    for (stream *s = &t->out; s != NULL; s = s == &t->out ? &t->err : NULL) {
        int r = stream_read(pool, t, s, err);
        if (rc == KB_OK) {
            rc = r;
        }
    }
    /* the leader is a zombie, so its pid (the group id) cannot have been reused yet */
    kill(-t->pid, SIGKILL);
    int wstatus = 0, have_status = 1;
    while (waitpid(t->pid, &wstatus, 0) < 0) {
        if (errno != EINTR) {
            have_status = 0;
            break;
        }
    }
    double end = now_mono();
    for (stream *s = &t->out; s != NULL; s = s == &t->out ? &t->err : NULL) {
        int r = stream_parse(pool, t, s, NULL, 0, 1, err);
        if (rc == KB_OK) {
            rc = r;
        }
        stream_close(s);
    }
    kb_trial_result *r = &t->result;
    r->trial = t->trial;
    r->cost_s = end - t->t0;
    r->started_at = t->started_at;
    r->finished_at = now_us();
    classify(r, pool, t, have_status, wstatus);
    int mrc = final_metrics(&r->metrics, &r->n_metrics, &t->curve);
    if (mrc == KB_OK) {
        mrc = curve_to_series(&r->curve, &r->n_curve, &t->curve);
    }
    if (mrc == KB_OK) {
        r->trial_dir = t->dir;
        r->command = t->command;
        t->dir = NULL;
        t->command = NULL;
    } else if (rc == KB_OK) {
        rc = kb_error_set(err, KB_ENOMEM, "trial %zu: out of memory", t->trial);
    }
    if (t->stopped || t->timed_out) {
        kb_log_printf(&pool->log, KB_LOG_LEVEL_INFO, "trial %zu: %s", t->trial, r->reason);
    }
    t->state = SLOT_FINISHED;
    t->pid = 0;
    if (t->pidfd >= 0) {
        close(t->pidfd);
        t->pidfd = -1;
    }
    return rc;
}

static int slot_exited(slot *t)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)t->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
        return errno == ECHILD; /* someone else reaped it: treat as ended */
    }
    return si.si_pid == t->pid;
}

static void check_timers(kb_trial_pool *pool, slot *t, double now)
{
    int idle = pool->idle_timeout_s > 0 && now >= t->last_output + pool->idle_timeout_s;
    if (((t->deadline > 0 && now >= t->deadline) || idle) && !t->stopped && !t->timed_out) {
        t->timed_out = t->deadline > 0 && now >= t->deadline ? 1 : 2;
        signal_trial(t, SIGTERM);
        t->kill_at = now + pool->kill_grace_s;
    }
    if (t->kill_at > 0 && now >= t->kill_at) {
        signal_trial(t, SIGKILL);
        t->kill_at = 0;
    }
}

/* Hand out one pending event, round-robin over the slots; 1 if one was given. */
static int pop_event(kb_trial_event *ev, kb_trial_pool *pool)
{
    for (size_t k = 0; k < pool->max_jobs; k++) {
        size_t i = (pool->rr + k) % pool->max_jobs;
        slot *t = &pool->slots[i];
        if (t->state == SLOT_FREE) {
            continue;
        }
        if (t->progress_pending) {
            t->progress_pending = 0;
            ev->kind = KB_TRIAL_EVENT_PROGRESS;
            ev->trial = t->trial;
            ev->curve = &t->curve;
            ev->step = t->curve.n_steps > 0 ? t->curve.steps[t->curve.n_steps - 1] : NAN;
            ev->value = NAN;
            const kb_curve_series *s =
                pool->objective != NULL ? kb_curve_get(&t->curve, pool->objective) : NULL;
            if (s != NULL && t->curve.n_steps > 0) {
                ev->value = s->values[t->curve.n_steps - 1];
            }
            pool->rr = i + 1;
            return 1;
        }
        if (t->state == SLOT_FINISHED) {
            ev->kind = KB_TRIAL_EVENT_DONE;
            ev->trial = t->trial;
            ev->result = t->result;
            memset(&t->result, 0, sizeof t->result);
            slot_release(t);
            pool->rr = i + 1;
            return 1;
        }
    }
    return 0;
}

int kb_trial_pool_next(kb_trial_event *ev, kb_trial_pool *pool, int timeout_ms, kb_error *err)
{
    KB_CHECK_ARG(ev != NULL);
    memset(ev, 0, sizeof *ev);
    KB_CHECK_ARG(pool != NULL);
    double end = timeout_ms < 0 ? INFINITY : now_mono() + timeout_ms * 1e-3;
    struct pollfd *fds = pool->fds;
    slot **owners = pool->owners;
    int rc = KB_OK;
    for (;;) {
        if (pop_event(ev, pool)) {
            break;
        }
        if (kb_trial_pool_n_running(pool) == 0) {
            break;
        }
        /* wait for output, an exit, the next timer, or (without a pidfd) the reaping tick */
        double now = now_mono();
        double wake = end;
        nfds_t n = 0;
        for (size_t i = 0; i < pool->max_jobs; i++) {
            slot *t = &pool->slots[i];
            if (t->state != SLOT_RUNNING) {
                continue;
            }
            if (!t->timed_out && !t->stopped) {
                if (t->deadline > 0) {
                    wake = fmin(wake, t->deadline);
                }
                if (pool->idle_timeout_s > 0) {
                    wake = fmin(wake, t->last_output + pool->idle_timeout_s);
                }
            }
            if (t->kill_at > 0) {
                wake = fmin(wake, t->kill_at);
            }
            if (t->pidfd >= 0) {
                fds[n].fd = t->pidfd;
                fds[n].events = POLLIN;
                fds[n].revents = 0;
                owners[n++] = t;
            } else {
                int closed = t->out.fd < 0 && t->err.fd < 0;
                wake = fmin(wake, now + (closed ? TICK_CLOSED_MS : TICK_MS) * 1e-3);
            }
            for (stream *s = &t->out; s != NULL; s = s == &t->out ? &t->err : NULL) {
                if (s->fd >= 0) {
                    fds[n].fd = s->fd;
                    fds[n].events = POLLIN;
                    fds[n].revents = 0;
                    owners[n++] = t;
                }
            }
        }
        double wait_ms = ceil((wake - now) * 1e3);
        int prc = poll(fds, n,
                       isinf(wait_ms) ? -1
                       : wait_ms <= 0 ? 0
                       : wait_ms > INT_MAX ? INT_MAX
                                           : (int)wait_ms);
        if (prc < 0) {
            if (errno == EINTR) {
                break; /* a signal: the caller checks its flag */
            }
            rc = kb_error_set_cause(err, KB_EIO, errno, "trial pool: poll failed: %s",
                                    strerror(errno));
            break;
        }
        for (nfds_t k = 0; k < n; k++) {
            if (fds[k].revents == 0) {
                continue;
            }
            slot *t = owners[k];
            if (fds[k].fd == t->pidfd) {
                continue; /* the child exited: reaped below */
            }
            stream *s = fds[k].fd == t->out.fd ? &t->out : &t->err;
            int r = stream_read(pool, t, s, err);
            if (r != KB_OK && rc == KB_OK) {
                rc = r;
            }
        }
        now = now_mono();
        for (size_t i = 0; i < pool->max_jobs; i++) {
            slot *t = &pool->slots[i];
            if (t->state != SLOT_RUNNING) {
                continue;
            }
            check_timers(pool, t, now);
            if (slot_exited(t)) {
                int r = finish_slot(pool, t, err);
                if (r != KB_OK && rc == KB_OK) {
                    rc = r;
                }
            }
        }
        if (rc != KB_OK) {
            break;
        }
        if (pop_event(ev, pool) || now >= end) {
            break;
        }
    }
    return rc;
}
