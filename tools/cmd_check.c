/* kb check: verify that every record decodes and every index agrees with the records. */
#include <stdio.h>

#include <cjson/cJSON.h>

#include "tools/commands.h"
#include "tools/exit.h"

enum { OPT_KB = CLI_KEY(0), OPT_JSON, OPT_QUIET };

static const cli_opt opts[] = {
    {"kb", OPT_KB, 1, "PATH", "knowledge base directory (default $KB_PATH or ./kb.lmdb)"},
    {"json", OPT_JSON, 0, NULL, "print the result as JSON"},
    {"quiet", 'q', 0, NULL, "print nothing; the exit code tells"},
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_check_spec = {
    "check", "kb check [--kb PATH] [--json] [--quiet]",
    "Walk every record and every index of the knowledge base and verify that they agree: each "
    "record decodes and sits under its own id, each id-map and index entry points at a record "
    "that has the indexed field, each record is in every index it belongs in, and the counters "
    "match. Each problem is printed on stderr. Reads only; safe while another process writes.",
    opts, "  kb check\n  kb check --kb team.lmdb --json",
    "  0    consistent\n  1    inconsistencies found, or the store could not be read\n"
    "  2    usage error"};

typedef struct problems {
    cJSON *list; /* NULL unless --json */
    int quiet;
    size_t n;
} problems;

static void on_problem(const char *msg, void *payload)
{
    problems *pr = payload;
    pr->n++;
    if (pr->list != NULL) {
        cJSON_AddItemToArray(pr->list, cJSON_CreateString(msg));
    } else if (!pr->quiet) {
        fprintf(stderr, "kb check: %s\n", msg);
    }
}

int cmd_check(int argc, char **argv)
{
    const char *opt_kb = NULL;
    int json = 0, quiet = 0;
    cli_parser p;
    cli_begin(&p, &cmd_check_spec, argc, argv);
    for (int c; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case OPT_KB: opt_kb = p.arg; break;
        case OPT_JSON: json = 1; break;
        case 'q': quiet = 1; break;
        case CLI_HELP_KEY: return KB_EXIT_OK;
        default: return KB_EXIT_USAGE;
        }
    }
    if (cli_rest(&p) != argc) {
        return cli_usage("check", "unexpected argument '%s'", argv[cli_rest(&p)]);
    }
    cli_log_opts log = {"check", quiet, 0};
    kb_store *store = NULL;
    int rc = cli_open_store(&store, "check", opt_kb, KB_STORE_OPEN_RDONLY, &log);
    if (rc != KB_EXIT_OK) {
        return rc;
    }
    problems pr = {json ? cJSON_CreateArray() : NULL, quiet, 0};
    kb_error err = KB_ERROR_INIT;
    int src = kb_store_check(store, on_problem, &pr, &err);
    kb_store_stats st = {0};
    kb_error err2 = KB_ERROR_INIT;
    kb_store_stats_get(&st, store, &err2);
    kb_store_close(store);
    if (src != KB_OK && src != KB_ECORRUPT) {
        cJSON_Delete(pr.list);
        return cli_fail("check", &err);
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "schema", "kb.check/1");
        cJSON_AddBoolToObject(o, "ok", src == KB_OK);
        cJSON_AddNumberToObject(o, "tasks", (double)st.n_tasks);
        cJSON_AddNumberToObject(o, "runs", (double)st.n_runs);
        cJSON_AddNumberToObject(o, "backbones", (double)st.n_backbones);
        cJSON_AddNumberToObject(o, "spaces", (double)st.n_spaces);
        cJSON_AddNumberToObject(o, "studies", (double)st.n_studies);
        cJSON_AddItemToObject(o, "problems", pr.list);
        cli_emit_json(o);
    } else if (!quiet) {
        if (src == KB_OK) {
            printf("ok: %zu tasks, %zu runs, %zu backbones, %zu spaces, %zu studies; every index "
                   "agrees\n", st.n_tasks, st.n_runs, st.n_backbones, st.n_spaces, st.n_studies);
        } else {
            printf("%zu problem(s) found\n", pr.n);
        }
    }
    return src == KB_OK ? KB_EXIT_OK : KB_EXIT_FAILURE;
}
