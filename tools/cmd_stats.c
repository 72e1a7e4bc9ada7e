/* kb stats: counts of each record kind, runs by status, and the store's size. */
#include <stdio.h>

#include <cjson/cJSON.h>

#include "tools/commands.h"
#include "tools/exit.h"

enum { OPT_KB = CLI_KEY(0), OPT_JSON };

static const cli_opt opts[] = {
    {"kb", OPT_KB, 1, "PATH", "knowledge base directory (default $KB_PATH or ./kb.lmdb)"},
    {"json", OPT_JSON, 0, NULL, "print the summary as JSON"},
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_stats_spec = {
    "stats", "kb stats [--kb PATH] [--json]",
    "Summarise the knowledge base: how many tasks, runs (by status), backbones, spaces and "
    "teams it holds, its schema version, and how much of its map is in use.",
    opts, "  kb stats\n  kb stats --json", NULL};

int cmd_stats(int argc, char **argv)
{
    const char *opt_kb = NULL;
    int json = 0;
    cli_parser p;
    cli_begin(&p, &cmd_stats_spec, argc, argv);
    for (int c; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case OPT_KB: opt_kb = p.arg; break;
        case OPT_JSON: json = 1; break;
        case CLI_HELP_KEY: return KB_EXIT_OK;
        default: return KB_EXIT_USAGE;
        }
    }
    if (cli_rest(&p) != argc) {
        return cli_usage("stats", "unexpected argument '%s'", argv[cli_rest(&p)]);
    }
    cli_log_opts log = {"stats", 0, 0};
    kb_store *store = NULL;
    int rc = cli_open_store(&store, "stats", opt_kb, KB_STORE_OPEN_RDONLY, &log);
    if (rc != KB_EXIT_OK) {
        return rc;
    }
    kb_store_stats st;
    kb_error err = KB_ERROR_INIT;
    if (kb_store_stats_get(&st, store, &err) != KB_OK) {
        kb_store_close(store);
        return cli_fail("stats", &err);
    }
    const char *path = kb_store_path(store);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "schema", "kb.stats/1");
        cJSON_AddStringToObject(o, "path", path);
        cJSON_AddNumberToObject(o, "schema_version", st.schema_version);
        cJSON_AddNumberToObject(o, "tasks", (double)st.n_tasks);
        cJSON_AddNumberToObject(o, "runs", (double)st.n_runs);
        cJSON_AddNumberToObject(o, "backbones", (double)st.n_backbones);
        cJSON_AddNumberToObject(o, "spaces", (double)st.n_spaces);
        cJSON_AddNumberToObject(o, "studies", (double)st.n_studies);
        cJSON_AddNumberToObject(o, "teams", (double)st.n_teams);
        cJSON *by = cJSON_AddObjectToObject(o, "runs_by_status");
        for (int s = 0; s < 5; s++) {
            cJSON_AddNumberToObject(by, kb_run_status_name((kb_run_status)s),
                                    (double)st.n_runs_by_status[s]);
        }
        cJSON_AddNumberToObject(o, "map_bytes", (double)st.map_bytes);
        cJSON_AddNumberToObject(o, "used_bytes", (double)st.used_bytes);
        cli_emit_json(o);
    } else {
        printf("knowledge base  %s (schema %d)\n", path, st.schema_version);
        printf("tasks           %zu\n", st.n_tasks);
        printf("runs            %zu", st.n_runs);
        const char *sep = " (";
        for (int s = 0; s < 5; s++) {
            if (st.n_runs_by_status[s] > 0) {
                printf("%s%zu %s", sep, st.n_runs_by_status[s],
                       kb_run_status_name((kb_run_status)s));
                sep = ", ";
            }
        }
        printf("%s\n", sep[0] == ',' ? ")" : "");
        printf("backbones       %zu\n", st.n_backbones);
        printf("spaces          %zu\n", st.n_spaces);
        printf("studies         %zu\n", st.n_studies);
        printf("teams           %zu\n", st.n_teams);
        printf("size            %.1f MiB used of a %.1f MiB map\n", (double)st.used_bytes / 1048576.0,
               (double)st.map_bytes / 1048576.0);
    }
    kb_store_close(store);
    return KB_EXIT_OK;
}
