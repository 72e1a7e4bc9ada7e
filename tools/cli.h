/*
 * Shared pieces of the kb command-line program: option tables that drive both getopt_long and
 * the generated --help, the store path (--kb, KB_PATH, ./kb.lmdb), the interrupt flag, the
 * error line format, and the stderr log callback for the libraries.
 */
#ifndef KB_TOOLS_CLI_H
#define KB_TOOLS_CLI_H

#include <signal.h>
#include <stdio.h>

#include "engine/core/error.h"
#include "engine/core/log.h"

/* option keys above any short-option letter, for long-only options */
#define CLI_KEY(n) (256 + (n))
#define CLI_HELP_KEY 'h'

typedef struct cli_opt {
    const char *name;  /* long name, without "--"; NULL ends the table */
    int key;           /* short letter, or CLI_KEY(n) for long-only options */
    int has_arg;       /* 0 = flag, 1 = required argument */
    const char *arg;   /* argument name in the help text, e.g. "PATH" */
    const char *help;  /* one line */
} cli_opt;

typedef struct cli_spec {
    const char *name;        /* "ingest" */
    const char *usage;       /* "kb ingest [options] FILE..." (may hold several lines) */
    const char *description; /* one paragraph */
    const cli_opt *opts;     /* --help is added automatically */
    const char *examples;    /* lines of examples */
    const char *exit_codes;  /* NULL = the standard text */
} cli_spec;

/** Parser state for one command invocation. */
typedef struct cli_parser {
    const cli_spec *spec;
    int argc;
    char **argv;
    const char *arg; /* argument of the last option */
} cli_parser;

/** Start parsing argv (argv[0] is the command name). */
void cli_begin(cli_parser *p, const cli_spec *spec, int argc, char **argv);
/**
 * Next option key; -1 at the end of options (then cli_rest gives the operands).
 * --help prints the help to stdout and returns CLI_HELP_KEY: return KB_EXIT_OK then.
 * An unknown option or missing argument prints an error and returns '?': return
 * KB_EXIT_USAGE then.
 */
int cli_next(cli_parser *p);
/** Index of the first operand in argv after cli_next returned -1. */
int cli_rest(const cli_parser *p);
/** Print the full help of a command to `f`. */
void cli_print_help(const cli_spec *spec, FILE *f);

/** Print "kb <cmd>: <message>" to stderr; returns `code` for `return cli_error(...)`. */
int cli_error(const char *cmd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Print "kb <cmd>: <err->msg>" and map err->code to an exit code (1, or 3 for KB_EFORMAT). */
int cli_fail(const char *cmd, const kb_error *err);
/** Usage error: prints "kb <cmd>: <msg>" and a hint, returns KB_EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** The store path: the --kb value if given, else $KB_PATH, else "./kb.lmdb". */
const char *cli_store_path(const char *opt_kb);

/** Parse helpers; return 0 on success, print a usage error and return -1 otherwise. */
int cli_parse_size(const char *cmd, const char *opt, const char *s, size_t *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double *out);
int cli_parse_u64(const char *cmd, const char *opt, const char *s, unsigned long long *out);

/** Set by SIGINT/SIGTERM once cli_install_signals ran; loops poll it. */
extern volatile sig_atomic_t cli_interrupted;
void cli_install_signals(void);

/** Log verbosity for cli_log_stderr: quiet drops warnings, progress enables info lines. */
typedef struct cli_log_opts {
    const char *cmd;
    int quiet;
    int progress;
} cli_log_opts;
/** A kb_log_fn printing "kb <cmd>: warning: ..." / progress to stderr; payload = cli_log_opts. */
void cli_log_stderr(kb_log_level level, const char *msg, void *payload);

#include "kb/store.h"

#include <cjson/cJSON.h>

/**
 * Print `doc` as one line of JSON on stdout and free it (it may be NULL after an allocation
 * failure). Returns KB_EXIT_OK, or KB_EXIT_FAILURE when out of memory.
 */
int cli_emit_json(cJSON *doc);

/** A configuration value as JSON (number, string, bool; NONE as null). NULL when out of memory. */
cJSON *cli_value_json(const kb_value *v);
/** Add a configuration to `o` as the object `key` (name -> value, in the given order). */
void cli_add_config_json(cJSON *o, const char *key, const kb_param *config, size_t n);

/**
 * Open the store at cli_store_path(opt_kb) with `flags`; warnings go through `log`.
 * A missing store without KB_STORE_OPEN_CREATE gives a message that says how to create one.
 * Returns KB_EXIT_OK or an exit code after printing the error.
 */
int cli_open_store(kb_store **out, const char *cmd, const char *opt_kb, unsigned flags,
                   cli_log_opts *log);

#endif
