/* kb ingest: add past runs from JSON Lines, Optuna CSV or an MLflow store (kb/ingest.h). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kb/ingest.h"
#include "kb/store.h"
#include "tools/commands.h"
#include "tools/exit.h"

enum {
    OPT_BATCH = CLI_KEY(1),
    OPT_STRICT,
    OPT_TASK,
    OPT_SPACE,
    OPT_OBJECTIVE,
    OPT_DIRECTION,
    OPT_STUDY,
    OPT_FORMAT,
    OPT_JSON,
    OPT_PROGRESS,
    OPT_KB
};

static const cli_opt opts[] = {
    {"kb", OPT_KB, 1, "PATH", "knowledge base directory (default $KB_PATH or ./kb.lmdb)"},
    {"batch", OPT_BATCH, 1, "N", "records per write transaction (default 10000)"},
    {"strict", OPT_STRICT, 0, NULL, "a file is all-or-nothing: any rejected record writes none"},
    {"task", OPT_TASK, 1, "ID", "task of the runs (Optuna CSV: required; MLflow: default)"},
    {"space", OPT_SPACE, 1, "NAME", "search space of the runs (Optuna CSV, MLflow)"},
    {"objective", OPT_OBJECTIVE, 1, "NAME", "objective metric name (Optuna CSV: 'value')"},
    {"direction", OPT_DIRECTION, 1, "DIR", "minimize or maximize (Optuna CSV, MLflow)"},
    {"study", OPT_STUDY, 1, "NAME", "study name in Optuna run ids (default: file hash)"},
    {"format", OPT_FORMAT, 1, "FMT", "auto, json, optuna-csv or mlflow (default auto)"},
    {"json", OPT_JSON, 0, NULL, "print the summary as JSON"},
    {"quiet", 'q', 0, NULL, "no warnings"},
    {"progress", OPT_PROGRESS, 0, NULL, "print 'committed N records' after each commit"},
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_ingest_spec = {
    "ingest",
    "kb ingest [options] FILE...\n       kb ingest [options] -",
    "Read past runs and add them to the knowledge base (created if missing). A FILE is kb's "
    "JSON Lines (one task, run, backbone or space per line) or a JSON array of such records, "
    "an Optuna trials_dataframe() CSV (with --task), or an MLflow file store directory; '-' "
    "reads standard input. Every record is validated; a bad one is reported on stderr as "
    "FILE:LINE: field 'x': reason and skipped while the good ones are committed in batches. "
    "Records already present with the same content count as duplicates, so ingesting a file "
    "twice adds nothing. The summary (accepted, duplicate, rejected) goes to stdout.",
    opts,
    "  kb ingest runs.jsonl\n"
    "  kb ingest --task sklearn-wine --direction maximize --study svc-wine optuna.csv\n"
    "  kb export --kb a.lmdb | kb ingest --kb b.lmdb --strict -",
    "  0    every record accepted (duplicates included)\n"
    "  1    I/O or store failure\n"
    "  2    usage error\n"
    "  3    some records rejected (the good ones were committed)\n"
    "  130  interrupted (committed batches stay)"};

typedef struct ingest_ui {
    cli_log_opts log;
    int show_progress;
    size_t base;          /* records committed by earlier files */
    const char *cmd;
} ingest_ui;

static void on_reject(const char *file, size_t line, const char *reason, void *payload)
{
    (void)payload;
    fprintf(stderr, "kb ingest: %s:%zu: %s\n", file, line, reason);
}

static void on_progress(const kb_ingest_counts *so_far, void *payload)
{
    const ingest_ui *ui = payload;
    if (ui->show_progress) {
        fprintf(stderr, "kb ingest: committed %zu records\n",
                ui->base + so_far->accepted + so_far->duplicate);
        fflush(stderr);
    }
}

/* Exit code precedence: a failure beats a usage error beats rejected data. */
static int worse(int a, int b)
{
    static const int rank[4] = {0, 3, 2, 1}; /* by exit code 0..3 */
    int ra = a >= 0 && a <= 3 ? rank[a] : 4, rb = b >= 0 && b <= 3 ? rank[b] : 4;
    return ra >= rb ? a : b;
}

static int exit_for(int code)
{
    switch (code) {
    case KB_EFORMAT: return KB_EXIT_DATA;
    case KB_EINVAL: return KB_EXIT_USAGE;
    case KB_ECANCELED: return KB_EXIT_INTERRUPTED;
    default: return KB_EXIT_FAILURE;
    }
}

static cJSON *file_json(const char *path, const kb_ingest_counts *c, const char *error)
{
    cJSON *o = cJSON_CreateObject();
    if (o != NULL) {
        cJSON_AddStringToObject(o, "file", path);
        cJSON_AddNumberToObject(o, "accepted", (double)c->accepted);
        cJSON_AddNumberToObject(o, "duplicate", (double)c->duplicate);
        cJSON_AddNumberToObject(o, "rejected", (double)c->rejected);
        if (error != NULL) {
            cJSON_AddStringToObject(o, "error", error);
        } else {
            cJSON_AddNullToObject(o, "error");
        }
    }
    return o;
}

int cmd_ingest(int argc, char **argv)
{
    kb_ingest_opts io = KB_INGEST_OPTS_INIT;
    ingest_ui ui = {{"ingest", 0, 0}, isatty(STDERR_FILENO), 0, "ingest"};
    const char *kb_path = NULL;
    int json = 0;
    cli_parser p;
    cli_begin(&p, &cmd_ingest_spec, argc, argv);
    int c;
    while ((c = cli_next(&p)) != -1) {
        switch (c) {
        case CLI_HELP_KEY: return KB_EXIT_OK;
        case OPT_KB: kb_path = p.arg; break;
        case OPT_BATCH:
            if (cli_parse_size("ingest", "batch", p.arg, &io.batch_size) != 0) {
                return KB_EXIT_USAGE;
            }
            if (io.batch_size == 0) {
                return cli_usage("ingest", "option '--batch': must be at least 1");
            }
            break;
        case OPT_STRICT: io.strict = 1; break;
        case OPT_TASK: io.task_id = p.arg; break;
        case OPT_SPACE: io.space = p.arg; break;
        case OPT_OBJECTIVE: io.objective = p.arg; break;
        case OPT_DIRECTION: {
            kb_direction d;
            if (kb_direction_parse(&d, p.arg) != KB_OK) {
                return cli_usage("ingest", "option '--direction': expected minimize or "
                                 "maximize, got '%s'", p.arg);
            }
            io.direction = (int)d;
            break;
        }
        case OPT_STUDY: io.study = p.arg; break;
        case OPT_FORMAT: {
            int f;
            for (f = 0; f <= KB_INGEST_FORMAT_MLFLOW; f++) {
                if (strcmp(p.arg, kb_ingest_format_name((kb_ingest_format)f)) == 0) {
                    break;
                }
            }
            if (f > KB_INGEST_FORMAT_MLFLOW) {
                return cli_usage("ingest", "option '--format': expected auto, json, optuna-csv "
                                 "or mlflow, got '%s'", p.arg);
            }
            io.format = (kb_ingest_format)f;
            break;
        }
        case OPT_JSON: json = 1; break;
        case 'q': ui.log.quiet = 1; break;
        case OPT_PROGRESS: ui.show_progress = 1; break;
        default: return KB_EXIT_USAGE;
        }
    }
    int first = cli_rest(&p);
    if (first >= argc) {
        return cli_usage("ingest", "no input: name one or more files, directories or '-'");
    }
    int n_stdin = 0;
    for (int i = first; i < argc; i++) {
        n_stdin += strcmp(argv[i], "-") == 0;
    }
    if (n_stdin > 1) {
        return cli_usage("ingest", "'-' (standard input) can be named only once");
    }

    kb_store *store = NULL;
    int open_rc = cli_open_store(&store, "ingest", kb_path, KB_STORE_OPEN_CREATE, &ui.log);
    if (open_rc != KB_EXIT_OK) {
        return open_rc;
    }
    kb_error err = KB_ERROR_INIT;
    const char *path = cli_store_path(kb_path);
    io.reject = on_reject;
    io.progress = on_progress;
    io.payload = &ui;
    io.log.fn = cli_log_stderr;
    io.log.payload = &ui.log;
    io.interrupt = &cli_interrupted;

    cJSON *files = json ? cJSON_CreateArray() : NULL;
    kb_ingest_counts total = {0, 0, 0};
    int rc = KB_EXIT_OK;
    for (int i = first; i < argc && rc != KB_EXIT_INTERRUPTED; i++) {
        kb_ingest_counts n = {0, 0, 0};
        kb_error_clear(&err);
        int code = kb_ingest_file(&n, store, argv[i], &io, &err);
        total.accepted += n.accepted;
        total.duplicate += n.duplicate;
        total.rejected += n.rejected;
        ui.base += n.accepted + n.duplicate;
        if (code != KB_OK) {
            fprintf(stderr, "kb ingest: %s\n", err.msg);
            rc = worse(rc, exit_for(code));
            if (code == KB_ECANCELED) {
                rc = KB_EXIT_INTERRUPTED;
            }
        } else if (n.rejected > 0) {
            rc = worse(rc, KB_EXIT_DATA);
        }
        if (files != NULL) {
            cJSON_AddItemToArray(files, file_json(argv[i], &n, code != KB_OK ? err.msg : NULL));
        } else if (argc - first > 1) {
            printf("%s: %zu accepted, %zu duplicate, %zu rejected\n", argv[i], n.accepted,
                   n.duplicate, n.rejected);
        }
    }
    kb_store_close(store);

    if (json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "schema", "kb.ingest/1");
        cJSON_AddStringToObject(doc, "kb", path);
        cJSON_AddNumberToObject(doc, "accepted", (double)total.accepted);
        cJSON_AddNumberToObject(doc, "duplicate", (double)total.duplicate);
        cJSON_AddNumberToObject(doc, "rejected", (double)total.rejected);
        cJSON_AddItemToObject(doc, "files", files);
        char *text = cJSON_PrintUnformatted(doc);
        if (text != NULL) {
            puts(text);
            cJSON_free(text);
        } else {
            rc = cli_error("ingest", KB_EXIT_FAILURE, "out of memory");
        }
        cJSON_Delete(doc);
    } else {
        printf("%zu accepted, %zu duplicate, %zu rejected\n", total.accepted, total.duplicate,
               total.rejected);
    }
    return rc;
}
