#include "tools/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/exit.h"

volatile sig_atomic_t cli_interrupted = 0;

static void on_signal(int sig)
{
    (void)sig;
    cli_interrupted = 1;
}

void cli_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static const char *standard_exit_codes =
    "  0    success\n"
    "  1    runtime failure (I/O, store, numeric)\n"
    "  2    usage error\n"
    "  3    input data rejected\n"
    "  130  interrupted";

/*
 * Print a description: text that holds its own line breaks is pre-formatted and printed as
 * it is; a single paragraph is wrapped at `width` columns.
 */
static void print_wrapped(FILE *f, const char *text, size_t width)
{
    if (strchr(text, '\n') != NULL) {
        fprintf(f, "%s\n", text);
        return;
    }
    size_t col = 0;
    const char *p = text;
    while (*p != '\0') {
        while (*p == ' ') {
            p++;
        }
        size_t n = strcspn(p, " ");
        if (n == 0) {
            break;
        }
        if (col > 0 && col + 1 + n > width) {
            fputc('\n', f);
            col = 0;
        } else if (col > 0) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, n, f);
        col += n;
        p += n;
    }
    fputc('\n', f);
}

void cli_print_help(const cli_spec *spec, FILE *f)
{
    fprintf(f, "usage: %s\n\n", spec->usage);
    print_wrapped(f, spec->description, 78);
    fprintf(f, "\noptions:\n");
    for (const cli_opt *o = spec->opts; o != NULL && o->name != NULL; o++) {
        char left[64];
        if (o->key < 256) {
            snprintf(left, sizeof left, "-%c, --%s%s%s", o->key, o->name, o->has_arg ? " " : "",
                     o->has_arg ? o->arg : "");
        } else {
            snprintf(left, sizeof left, "    --%s%s%s", o->name, o->has_arg ? " " : "",
                     o->has_arg ? o->arg : "");
        }
        fprintf(f, "  %-28s %s\n", left, o->help);
    }
    fprintf(f, "  %-28s %s\n", "-h, --help", "show this help");
    if (spec->examples != NULL) {
        fprintf(f, "\nexamples:\n%s\n", spec->examples);
    }
    fprintf(f, "\nexit codes:\n%s\n", spec->exit_codes ? spec->exit_codes : standard_exit_codes);
}

void cli_begin(cli_parser *p, const cli_spec *spec, int argc, char **argv)
{
    p->spec = spec;
    p->argc = argc;
    p->argv = argv;
    p->arg = NULL;
    optind = 0; /* glibc: 0 re-initialises getopt completely */
    opterr = 0;
}

int cli_next(cli_parser *p)
{
    struct option longs[96];
    char shorts[200];
    size_t nl = 0, ns = 0;
    shorts[ns++] = ':';
    for (const cli_opt *o = p->spec->opts; o && o->name && nl < 94; o++) {
        longs[nl].name = o->name;
        longs[nl].has_arg = o->has_arg ? required_argument : no_argument;
        longs[nl].flag = NULL;
        longs[nl].val = o->key;
        nl++;
        if (o->key < 256 && ns < sizeof shorts - 3) {
            shorts[ns++] = (char)o->key;
            if (o->has_arg) {
                shorts[ns++] = ':';
            }
        }
    }
    longs[nl++] = (struct option){"help", no_argument, NULL, CLI_HELP_KEY};
    longs[nl] = (struct option){NULL, 0, NULL, 0};
    shorts[ns++] = 'h';
    shorts[ns] = '\0';

    int c = getopt_long(p->argc, p->argv, shorts, longs, NULL);
    p->arg = optarg;
    if (c == CLI_HELP_KEY) {
        cli_print_help(p->spec, stdout);
        return CLI_HELP_KEY;
    }
    if (c == '?' || c == ':') {
        const char *bad = p->argv[optind - 1];
        if (c == ':') {
            fprintf(stderr, "kb %s: option '%s' needs an argument\n", p->spec->name, bad);
        } else {
            fprintf(stderr, "kb %s: unknown option '%s'\n", p->spec->name, bad);
        }
        fprintf(stderr, "usage: %s\nsee 'kb %s --help'\n", p->spec->usage, p->spec->name);
        return '?';
    }
    return c;
}

int cli_rest(const cli_parser *p)
{
    (void)p;
    return optind;
}

int cli_error(const char *cmd, int code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "kb %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int cli_fail(const char *cmd, const kb_error *err)
{
    fprintf(stderr, "kb %s: %s\n", cmd, err->msg[0] ? err->msg : kb_strerror(err->code));
    if (err->code == KB_ECANCELED) {
        return KB_EXIT_INTERRUPTED;
    }
    return err->code == KB_EFORMAT ? KB_EXIT_DATA : KB_EXIT_FAILURE;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "kb %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nsee 'kb %s --help'\n", cmd);
    return KB_EXIT_USAGE;
}

const char *cli_store_path(const char *opt_kb)
{
    if (opt_kb != NULL && opt_kb[0] != '\0') {
        return opt_kb;
    }
    const char *env = getenv("KB_PATH");
    if (env != NULL && env[0] != '\0') {
        return env;
    }
    return "kb.lmdb";
}

int cli_parse_size(const char *cmd, const char *opt, const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-') {
        cli_usage(cmd, "option '--%s': expected a non-negative integer, got '%s'", opt, s);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

int cli_parse_u64(const char *cmd, const char *opt, const char *s, unsigned long long *out)
{
    size_t v;
    if (cli_parse_size(cmd, opt, s, &v) != 0) {
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0') {
        cli_usage(cmd, "option '--%s': expected a number, got '%s'", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

void cli_log_stderr(kb_log_level level, const char *msg, void *payload)
{
    const cli_log_opts *o = payload;
    if (level == KB_LOG_LEVEL_WARNING) {
        if (o == NULL || !o->quiet) {
            fprintf(stderr, "kb %s: warning: %s\n", o ? o->cmd : "", msg);
        }
    } else if (level == KB_LOG_LEVEL_INFO) {
        if (o != NULL && o->progress) {
            fprintf(stderr, "kb %s: %s\n", o->cmd, msg);
        }
    }
}

int cli_open_store(kb_store **out, const char *cmd, const char *opt_kb, unsigned flags,
                   cli_log_opts *log)
{
    kb_store_opts opts = KB_STORE_OPTS_INIT;
    opts.flags = flags;
    opts.log.fn = cli_log_stderr;
    opts.log.payload = log;
    kb_error err = KB_ERROR_INIT;
    const char *path = cli_store_path(opt_kb);
    int rc = kb_store_open(out, path, &opts, &err);
    if (rc == KB_EVERSION && (flags & KB_STORE_OPEN_RDONLY)) {
        /* an older schema: a read-write open migrates it (one transaction; a newer schema
           fails again with the same message), then the read-only open goes ahead */
        kb_store_opts rw = opts;
        rw.flags = flags & ~(unsigned)KB_STORE_OPEN_RDONLY;
        kb_error err2 = KB_ERROR_INIT;
        kb_store *st = NULL;
        if (kb_store_open(&st, path, &rw, &err2) == KB_OK) {
            kb_store_close(st);
            err = (kb_error)KB_ERROR_INIT;
            rc = kb_store_open(out, path, &opts, &err);
        }
    }
    if (rc == KB_ENOTFOUND) {
        return cli_error(cmd, KB_EXIT_FAILURE,
                         "no knowledge base at '%s' (create one with 'kb init' or 'kb ingest', "
                         "or name it with --kb PATH or KB_PATH)",
                         path);
    }
    if (rc != KB_OK) {
        return cli_error(cmd, KB_EXIT_FAILURE, "opening '%s': %s", path, err.msg);
    }
    return KB_EXIT_OK;
}

int cli_emit_json(cJSON *doc)
{
    char *s = doc != NULL ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (s == NULL) {
        fprintf(stderr, "kb: out of memory while printing JSON\n");
        return KB_EXIT_FAILURE;
    }
    puts(s);
    cJSON_free(s);
    return KB_EXIT_OK;
}

cJSON *cli_value_json(const kb_value *v)
{
    switch (v->type) {
    case KB_VALUE_TYPE_FLOAT: return cJSON_CreateNumber(v->f);
    case KB_VALUE_TYPE_INT: return cJSON_CreateNumber((double)v->i);
    case KB_VALUE_TYPE_STR: return cJSON_CreateString(v->s);
    case KB_VALUE_TYPE_BOOL: return cJSON_CreateBool(v->b);
    default: return cJSON_CreateNull();
    }
}

void cli_add_config_json(cJSON *o, const char *key, const kb_param *config, size_t n)
{
    cJSON *cfg = cJSON_AddObjectToObject(o, key);
    for (size_t j = 0; cfg != NULL && j < n; j++) {
        cJSON_AddItemToObject(cfg, config[j].name, cli_value_json(&config[j].value));
    }
}
