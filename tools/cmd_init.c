/* kb init: create an empty knowledge base (or confirm an existing one). */
#include <stdio.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tools/commands.h"
#include "tools/exit.h"

enum { OPT_KB = CLI_KEY(0), OPT_JSON, OPT_MAP };

static const cli_opt opts[] = {
    {"kb", OPT_KB, 1, "PATH", "knowledge base directory (default $KB_PATH or ./kb.lmdb)"},
    {"map-size", OPT_MAP, 1, "MIB", "initial map size in MiB (it grows by itself; default 64)"},
    {"json", OPT_JSON, 0, NULL, "print the result as JSON"},
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_init_spec = {
    "init", "kb init [--kb PATH] [--json]",
    "Create an empty knowledge base: an LMDB environment in directory PATH with kb's named "
    "databases and schema version. Running it on an existing knowledge base changes nothing "
    "and succeeds.",
    opts,
    "  kb init\n  kb init --kb /data/team.lmdb\n  KB_PATH=/data/team.lmdb kb init --json",
    NULL};

int cmd_init(int argc, char **argv)
{
    const char *opt_kb = NULL;
    int json = 0;
    size_t map_mib = 0;
    cli_parser p;
    cli_begin(&p, &cmd_init_spec, argc, argv);
    for (int c; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case OPT_KB: opt_kb = p.arg; break;
        case OPT_JSON: json = 1; break;
        case OPT_MAP:
            if (cli_parse_size("init", "map-size", p.arg, &map_mib) != 0) {
                return KB_EXIT_USAGE;
            }
            break;
        case CLI_HELP_KEY: return KB_EXIT_OK;
        default: return KB_EXIT_USAGE;
        }
    }
    if (cli_rest(&p) != argc) {
        return cli_usage("init", "unexpected argument '%s'", argv[cli_rest(&p)]);
    }
    const char *path = cli_store_path(opt_kb);
    int existed = access(path, F_OK) == 0;
    cli_log_opts log = {"init", 0, 0};
    kb_store_opts so = KB_STORE_OPTS_INIT;
    so.flags = KB_STORE_OPEN_CREATE;
    so.map_bytes = map_mib << 20;
    so.log.fn = cli_log_stderr;
    so.log.payload = &log;
    kb_store *store = NULL;
    kb_error err = KB_ERROR_INIT;
    if (kb_store_open(&store, path, &so, &err) != KB_OK) {
        return cli_error("init", KB_EXIT_FAILURE, "creating '%s': %s", path, err.msg);
    }
    kb_store_close(store);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "schema", "kb.init/1");
        cJSON_AddStringToObject(o, "path", path);
        cJSON_AddBoolToObject(o, "created", !existed);
        cJSON_AddNumberToObject(o, "schema_version", KB_STORE_SCHEMA_VERSION);
        cli_emit_json(o);
    } else {
        printf("%s knowledge base at %s\n", existed ? "existing" : "created", path);
    }
    return KB_EXIT_OK;
}
