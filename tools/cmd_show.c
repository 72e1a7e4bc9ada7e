/* kb show: one record by id, whatever its kind. */
#include <stdio.h>

#include <cjson/cJSON.h>

#include "kb/json.h"
#include "tools/commands.h"
#include "tools/exit.h"

enum { OPT_KB = CLI_KEY(0), OPT_JSON };

static const cli_opt opts[] = {
    {"kb", OPT_KB, 1, "PATH", "knowledge base directory (default $KB_PATH or ./kb.lmdb)"},
    {"json", OPT_JSON, 0, NULL, "print {\"schema\": \"kb.show/1\", \"record\": <canonical JSON>}"},
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_show_spec = {
    "show", "kb show [--kb PATH] [--json] ID",
    "Print the record with this id — a task, run, backbone, space (a space's id is its "
    "name) or study — with every field, its learning curve included, indented for reading. With "
    "--json the record is the canonical single-line JSON that kb export writes.",
    opts, "  kb show t-iris\n  kb show optuna:svc_wine:17 --json\n  kb show study-42",
    "  0    shown\n  1    no record has this id, or the store could not be read\n"
    "  2    usage error"};

/* Fetch the record with `id` into `rec`, whatever its kind. */
static int get_record(kb_record *rec, kb_store *store, const char *id, kb_error *err)
{
    kb_record_kind kind;
    int rc = kb_store_find_kind(&kind, store, id, err);
    if (rc != KB_OK) {
        return rc;
    }
    rec->kind = kind;
    switch (kind) {
    case KB_RECORD_TASK: return kb_store_get_task(&rec->task, store, id, err);
    case KB_RECORD_RUN: return kb_store_get_run(&rec->run, store, id, err);
    case KB_RECORD_BACKBONE: return kb_store_get_backbone(&rec->backbone, store, id, err);
    case KB_RECORD_SPACE: return kb_store_get_space(&rec->space, store, id, err);
    case KB_RECORD_STUDY: return kb_store_get_study(&rec->study, store, id, err);
    }
    return kb_error_set(err, KB_ECORRUPT, "record '%s' has an unknown kind", id);
}

int cmd_show(int argc, char **argv)
{
    const char *opt_kb = NULL;
    int json = 0;
    cli_parser p;
    cli_begin(&p, &cmd_show_spec, argc, argv);
    for (int c; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case OPT_KB: opt_kb = p.arg; break;
        case OPT_JSON: json = 1; break;
        case CLI_HELP_KEY: return KB_EXIT_OK;
        default: return KB_EXIT_USAGE;
        }
    }
    int first = cli_rest(&p);
    if (first != argc - 1) {
        return cli_usage("show", first >= argc ? "say which record: kb show ID"
                                               : "one id at a time");
    }
    const char *id = argv[first];
    cli_log_opts log = {"show", 0, 0};
    kb_store *store = NULL;
    int rc = cli_open_store(&store, "show", opt_kb, KB_STORE_OPEN_RDONLY, &log);
    if (rc != KB_EXIT_OK) {
        return rc;
    }
    kb_record rec = {0};
    kb_buf buf = KB_BUF_INIT;
    kb_error err = KB_ERROR_INIT;
    int src = get_record(&rec, store, id, &err);
    if (src == KB_OK) {
        src = kb_json_write_record(&buf, &rec, &err);
    }
    kb_store_close(store);
    kb_record_release(&rec);
    if (src == KB_ENOTFOUND) {
        kb_buf_release(&buf);
        return cli_error("show", KB_EXIT_FAILURE, "no record has id '%s'", id);
    }
    if (src != KB_OK) {
        kb_buf_release(&buf);
        return cli_fail("show", &err);
    }
    if (json) {
        printf("{\"schema\":\"kb.show/1\",\"record\":%s}\n", buf.data);
    } else {
        /* Re-indent the canonical text for reading; the canonical form stays the --json one. */
        cJSON *doc = cJSON_Parse(buf.data);
        char *pretty = doc != NULL ? cJSON_Print(doc) : NULL;
        puts(pretty != NULL ? pretty : buf.data);
        cJSON_free(pretty);
        cJSON_Delete(doc);
    }
    kb_buf_release(&buf);
    return KB_EXIT_OK;
}
