/*
 * kb add-task: store a dataset as a task with its meta-features. The task id is "t-" + the
 * first 16 hex digits of the dataset's fingerprint (a hash of its canonical content), so the
 * same data added twice is the same task: the second time is reported as already present.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "engine/core/alloc.h"
#include "kb/record.h"
#include "kb/store.h"
#include "tools/commands.h"
#include "tools/exit.h"
#include "tools/features_cli.h"

enum { OPT_NAME = CLI_KEY(0), OPT_TAGS, OPT_TEAM, OPT_KB, OPT_JSON };

static const cli_opt opts[] = {
    {"name", OPT_NAME, 1, "NAME", "the task's name (required)"},
    {"tags", OPT_TAGS, 1, "A,B", "comma-separated tags"},
    {"team", OPT_TEAM, 1, "T", "owning team"},
    {"kb", OPT_KB, 1, "PATH", "knowledge base directory (default $KB_PATH or ./kb.lmdb)"},
    {"json", OPT_JSON, 0, NULL, "print the outcome as JSON (schema kb.add_task/1)"},
    FEATURES_CLI_OPTS,
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_add_task_spec = {
    "add-task",
    "kb add-task DATASET --name NAME [--tags A,B] [--team T] [--kb PATH] [--json]\n"
    "                    [--groups LIST] [--sample N] [--seed S] [--target NAME]\n"
    "                    [--task-type classification|regression]",
    "Read DATASET, compute its meta-features (as 'kb features') and store it in the knowledge "
    "base as a task: id t-<first 16 hex digits of the dataset fingerprint>, name, tags, team, "
    "task type, target, feature set and the meta-features sorted by name. The store is created "
    "if missing. Adding the same data again changes nothing and reports the task as already "
    "present (exit 0).",
    opts,
    "  kb add-task datasets/iris.csv.gz --name iris --tags uci,tabular\n"
    "  kb add-task sales.csv --name sales-2024 --team forecasting --target revenue --json",
    "  0    added, or already present\n"
    "  1    the dataset or the store could not be read or written\n"
    "  2    usage error\n"
    "  3    the dataset is malformed"};

static int report(int json, const char *status, const kb_task *t, const char *store_path)
{
    if (!json) {
        if (strcmp(status, "added") == 0) {
            printf("added task %s '%s' (%s, %zu meta-features, %s)\n", t->id, t->name,
                   kb_task_type_name(t->type), t->n_features, t->feature_set);
        } else {
            printf("task %s '%s' already present (same dataset fingerprint)\n", t->id,
                   t->name != NULL ? t->name : "");
        }
        return KB_EXIT_OK;
    }
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL && cJSON_AddStringToObject(o, "schema", "kb.add_task/1") &&
             cJSON_AddStringToObject(o, "status", status) &&
             cJSON_AddStringToObject(o, "id", t->id) &&
             cJSON_AddStringToObject(o, "name", t->name != NULL ? t->name : "") &&
             cJSON_AddStringToObject(o, "fingerprint", t->fingerprint ? t->fingerprint : "") &&
             cJSON_AddStringToObject(o, "task_type", kb_task_type_name(t->type)) &&
             cJSON_AddStringToObject(o, "feature_set", t->feature_set ? t->feature_set : "") &&
             cJSON_AddNumberToObject(o, "n_features", (double)t->n_features) &&
             cJSON_AddStringToObject(o, "store", store_path);
    if (!ok) {
        cJSON_Delete(o);
        o = NULL;
    }
    return cli_emit_json(o);
}

int cmd_add_task(int argc, char **argv)
{
    const char *name = NULL, *tags = NULL, *team = NULL, *opt_kb = NULL;
    int json = 0;
    features_args a;
    features_args_init(&a, "add-task");
    cli_parser p;
    cli_begin(&p, &cmd_add_task_spec, argc, argv);
    for (int c; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case CLI_HELP_KEY:
            return KB_EXIT_OK;
        case OPT_NAME:
            name = p.arg;
            break;
        case OPT_TAGS:
            tags = p.arg;
            break;
        case OPT_TEAM:
            team = p.arg;
            break;
        case OPT_KB:
            opt_kb = p.arg;
            break;
        case OPT_JSON:
            json = 1;
            break;
        default: {
            int r = features_args_option(&a, c, p.arg);
            if (r <= 0) {
                return KB_EXIT_USAGE;
            }
        }
        }
    }
    int rest = cli_rest(&p);
    if (rest >= argc) {
        return cli_usage("add-task", "missing DATASET");
    }
    if (rest + 1 < argc) {
        return cli_usage("add-task", "unexpected argument '%s'", argv[rest + 1]);
    }
    if (name == NULL || name[0] == '\0') {
        return cli_usage("add-task", "missing --name");
    }
    const char *path = argv[rest];

    kb_dataset d;
    kb_metafeatures mf;
    kb_store *store = NULL;
    kb_task t;
    kb_record rec;
    kb_error err = KB_ERROR_INIT;
    memset(&t, 0, sizeof t);
    memset(&rec, 0, sizeof rec);
    int rc = features_read(&d, path, &a);
    if (rc != KB_EXIT_OK) {
        return rc;
    }
    char id[24];
    snprintf(id, sizeof id, "t-%.16s", d.fingerprint);

    kb_store_opts so = KB_STORE_OPTS_INIT;
    so.flags = KB_STORE_OPEN_CREATE;
    so.log.fn = cli_log_stderr;
    so.log.payload = &a.log;
    const char *store_path = cli_store_path(opt_kb);
    if (kb_store_open(&store, store_path, &so, &err) != KB_OK) {
        rc = cli_fail("add-task", &err);
        goto done;
    }
    /* known already: skip the (landmarker) work and change nothing */
    kb_task old;
    memset(&old, 0, sizeof old);
    int got = kb_store_get_task(&old, store, id, &err);
    if (got == KB_OK) {
        rc = report(json, "present", &old, store_path);
        kb_task_release(&old);
        goto done;
    }
    if (got != KB_ENOTFOUND) {
        rc = cli_fail("add-task", &err);
        goto done;
    }
    rc = features_compute(&mf, &d, path, &a);
    if (rc != KB_EXIT_OK) {
        goto done;
    }
    if (features_build_task(&rec.task, id, name, tags, team, &d, &mf) != KB_OK) {
        rc = cli_error("add-task", KB_EXIT_FAILURE, "out of memory building the task");
        goto done;
    }
    rec.kind = KB_RECORD_TASK;
    kb_put_result res;
    char reason[1][KB_ERROR_MSG_SIZE];
    if (kb_store_put_batch(store, &rec, 1, &res, reason, &err) != KB_OK) {
        rc = cli_fail("add-task", &err);
        goto done;
    }
    switch (res) {
    case KB_PUT_ADDED:
        rc = report(json, "added", &rec.task, store_path);
        break;
    case KB_PUT_DUPLICATE:
    case KB_PUT_CONFLICT: /* added by a concurrent writer since our lookup */
        rc = report(json, "present", &rec.task, store_path);
        break;
    case KB_PUT_REJECTED:
        rc = cli_error("add-task", KB_EXIT_DATA, "task '%s' rejected: %s", id, reason[0]);
        break;
    }
done:
    kb_record_release(&rec);
    kb_store_close(store);
    kb_dataset_release(&d);
    return rc;
}
