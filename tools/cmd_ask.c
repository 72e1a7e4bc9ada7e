/*
 * kb ask: the next trial of a study, for a search driven from outside (any language, any
 * scheduler). The trial is stored as a running run, so several asks before any tell give
 * different configurations, and `kb tell` later records the result.
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/core/alloc.h"
#include "tools/commands.h"
#include "tools/exit.h"
#include "tools/study.h"
#include "tools/study_cli.h"

enum { OPT_KB = CLI_KEY(0), OPT_TASK, OPT_SPACE, OPT_N, OPT_JSON };

static const cli_opt opts[] = {
    {"task", OPT_TASK, 1, "ID", "create a new study on this stored task (with --space)"},
    {"space", OPT_SPACE, 1, "S", "the new study's search space"},
    {"n", OPT_N, 1, "K", "ask for K trials at once (default 1; pending ones are taken into "
                         "account)"},
    STUDY_CLI_OPTS,
    {"kb", OPT_KB, 1, "PATH", "knowledge base directory (default $KB_PATH or ./kb.lmdb)"},
    {"json", OPT_JSON, 0, NULL, "one JSON line per trial (schema kb.ask/1)"},
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_ask_spec = {
    "ask",
    "kb ask STUDY [--n K] [--kb PATH] [--json]\n"
    "       kb ask --task ID --space S [--objective M] [--direction D] [--method M]\n"
    "              [--warm-start W] [--neighbors N] [--seed S] [--study ID] [--n K] [--json]",
    "Propose the next configuration of a study and store it as a running trial: print its "
    "trial number and configuration. Run the trial yourself, then report with 'kb tell STUDY "
    "TRIAL VALUE'. With --task and --space a new study is created first (its id is printed) "
    "and warmed from the nearest stored tasks as kb search would be.",
    opts,
    "  kb ask --task t-0123abcd --space svm --objective accuracy --json\n"
    "  kb ask s-5e1f00c2aa31 --n 4",
    NULL};

static int print_trial(const study *s, size_t index, const kb_bo_info *info, int json)
{
    const study_trial *t = study_trial_at(s, index);
    if (!json) {
        printf("%s %zu ", study_record(s)->id, t->number);
        study_cli_print_config(stdout, t->config, t->n_config);
        putchar('\n');
        return KB_EXIT_OK;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "schema", "kb.ask/1");
    cJSON_AddStringToObject(o, "study", study_record(s)->id);
    cJSON_AddNumberToObject(o, "trial", (double)t->number);
    cJSON_AddStringToObject(o, "run", t->run_id);
    cli_add_config_json(o, "config", t->config, t->n_config);
    static const char *const phases[] = {"warm_init", "cold_init", "model"};
    cJSON_AddStringToObject(o, "phase", phases[info->phase]);
    return cli_emit_json(o);
}

int cmd_ask(int argc, char **argv)
{
    const char *opt_kb = NULL, *task_id = NULL, *space = NULL;
    size_t n = 1;
    int json = 0;
    study_cli_args sa;
    study_cli_args_init(&sa);
    cli_parser p;
    cli_begin(&p, &cmd_ask_spec, argc, argv);
    for (int c; (c = cli_next(&p)) != -1;) {
        int shared = study_cli_option(&sa, "ask", c, p.arg);
        if (shared < 0) {
            return KB_EXIT_USAGE;
        }
        if (shared > 0) {
            continue;
        }
        switch (c) {
        case OPT_KB: opt_kb = p.arg; break;
        case OPT_TASK: task_id = p.arg; break;
        case OPT_SPACE: space = p.arg; break;
        case OPT_N:
            if (cli_parse_size("ask", "n", p.arg, &n) != 0 || n == 0) {
                return n == 0 ? cli_usage("ask", "--n must be at least 1") : KB_EXIT_USAGE;
            }
            break;
        case OPT_JSON: json = 1; break;
        case CLI_HELP_KEY: return KB_EXIT_OK;
        default: return KB_EXIT_USAGE;
        }
    }
    int first = cli_rest(&p);
    const char *study_id = first < argc ? argv[first] : NULL;
    if (argc - first > 1) {
        return cli_usage("ask", "unexpected argument '%s'", argv[first + 1]);
    }
    if ((study_id == NULL) == (task_id == NULL)) {
        return cli_usage("ask", "name one STUDY, or --task ID --space S for a new study");
    }
    if (task_id != NULL && space == NULL) {
        return cli_usage("ask", "a new study needs --space");
    }
    cli_log_opts lo = {"ask", 0, 0};
    kb_store *store = NULL;
    int rc = cli_open_store(&store, "ask", opt_kb, 0, &lo);
    if (rc != KB_EXIT_OK) {
        return rc;
    }
    kb_error err = KB_ERROR_INIT;
    kb_study created;
    memset(&created, 0, sizeof created);
    if (task_id != NULL) {
        study_create_opts co;
        study_cli_create_opts(&co, &sa, task_id, space, NULL);
        if (study_create(&created, store, &co, &err) != KB_OK) {
            kb_store_close(store);
            return cli_fail("ask", &err);
        }
        study_id = created.id;
        if (!json) {
            fprintf(stderr, "kb ask: created study %s (%s, warm start %s, %zu neighbour tasks)\n",
                    created.id, created.method, created.warm_start, created.n_neighbours);
        }
    }
    study *s = NULL;
    int code = KB_EXIT_OK;
    if (study_open(&s, store, study_id, &err) != KB_OK) {
        code = cli_fail("ask", &err);
    }
    for (size_t k = 0; code == KB_EXIT_OK && k < n; k++) {
        size_t index;
        kb_bo_info info;
        if (study_ask(&index, &info, s, store, NULL, 0, &err) != KB_OK) {
            code = cli_fail("ask", &err);
            break;
        }
        code = print_trial(s, index, &info, json);
    }
    study_close(s);
    kb_study_release(&created);
    kb_store_close(store);
    return code;
}
