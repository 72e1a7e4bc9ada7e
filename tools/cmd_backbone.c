/*
 * kb backbone: register pretrained weights (a `kb train net --save-weights` file) as backbone
 * records, which later tasks may fine-tune (`kb train net --init-from`), and list them.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/net.h"
#include "kb/json.h"
#include "tools/commands.h"
#include "tools/exit.h"

#define CMD "backbone"

enum { OPT_KB = CLI_KEY(0), OPT_JSON, OPT_SOURCE, OPT_ID, OPT_FAMILY, OPT_URI, OPT_TEAM };

static const cli_opt opts[] = {
    {"source-task", OPT_SOURCE, 1, "ID", "add: the task the weights were trained on (required)"},
    {"id", OPT_ID, 1, "ID", "add: backbone id (default b- and 16 hex digits of the file's SHA-256)"},
    {"family", OPT_FAMILY, 1, "F", "add: model family (default kb-net)"},
    {"uri", OPT_URI, 1, "URI", "add: where the weights live (default the file's absolute path)"},
    {"team", OPT_TEAM, 1, "TEAM", "add: owning team"},
    {"kb", OPT_KB, 1, "PATH", "knowledge base directory (default $KB_PATH or ./kb.lmdb)"},
    {"json", OPT_JSON, 0, NULL, "print JSON (add: one document; list: one record per line)"},
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_backbone_spec = {
    "backbone",
    "kb backbone add FILE --source-task ID [--id ID] [--family F] [--uri URI] [--kb PATH] "
    "[--json]\n       kb backbone list [--kb PATH] [--json]",
    "Register a weights file written by 'kb train net --save-weights' as a backbone: its header "
    "is read and verified (magic, version, sizes, SHA-256), and its architecture and input "
    "signature (image:CxHxW or tabular:<schema hash>) go into the knowledge base with the "
    "source task and the file's location. Adding the same file twice is a no-op. 'list' prints "
    "id, family, architecture, input signature, source task and URI, one backbone per line.",
    opts,
    "  kb train net train-images-idx3-ubyte.gz --arch 'C(3,32)+P(2,2)+FC(64)' "
    "--save-weights fm.kbw\n"
    "  kb backbone add fm.kbw --source-task t-fashion-mnist\n"
    "  kb backbone list --json",
    NULL};

typedef struct args {
    const char *kb, *source, *id, *family, *uri, *team;
    int json;
} args;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int print_record_json(const kb_backbone *b)
{
    kb_record rec;
    memset(&rec, 0, sizeof rec);
    rec.kind = KB_RECORD_BACKBONE;
    rec.backbone = *b;
    kb_buf buf = KB_BUF_INIT;
    kb_error err = KB_ERROR_INIT;
    if (kb_json_write_record(&buf, &rec, &err) != KB_OK) {
        kb_buf_release(&buf);
        return cli_fail(CMD, &err);
    }
    puts(buf.data);
    kb_buf_release(&buf);
    return KB_EXIT_OK;
}

static int backbone_add(const args *a, const char *file)
{
    if (a->source == NULL) {
        return cli_usage(CMD, "add: missing --source-task ID");
    }
    kb_error err = KB_ERROR_INIT;
    kb_net_weights_info info;
    if (kb_net_weights_info_read(&info, file, &err) != KB_OK) {
        return cli_fail(CMD, &err);
    }
    char id[20], uri[2 * PATH_MAX + 2];
    snprintf(id, sizeof id, "b-%.16s", info.sha256);
    char cwd[PATH_MAX];
    if (file[0] != '/' && getcwd(cwd, sizeof cwd) != NULL) {
        snprintf(uri, sizeof uri, "%s/%s", cwd, file);
    } else {
        snprintf(uri, sizeof uri, "%s", file);
    }
    kb_record rec;
    memset(&rec, 0, sizeof rec);
    rec.kind = KB_RECORD_BACKBONE;
    kb_backbone *b = &rec.backbone;
    /* borrowed strings: the record is only read by the store, never released */
    b->id = (char *)(a->id != NULL ? a->id : id);
    b->family = (char *)(a->family != NULL ? a->family : "kb-net");
    b->arch = info.arch;
    b->input_signature = info.signature;
    b->source_task = (char *)a->source;
    b->uri = (char *)(a->uri != NULL ? a->uri : uri);
    b->team = (char *)a->team;
    b->created_at = now_us();

    kb_store *store = NULL;
    cli_log_opts log = {CMD, 0, 0};
    int code = cli_open_store(&store, CMD, a->kb, KB_STORE_OPEN_CREATE, &log);
    if (code != KB_EXIT_OK) {
        return code;
    }
    kb_task task;
    memset(&task, 0, sizeof task);
    if (kb_store_get_task(&task, store, a->source, &err) == KB_OK) {
        kb_task_release(&task);
    } else {
        fprintf(stderr, "kb %s: warning: source task '%s' is not in the knowledge base\n", CMD,
                a->source);
    }
    kb_put_result result;
    char reason[1][KB_ERROR_MSG_SIZE];
    reason[0][0] = '\0';
    kb_backbone existing;
    memset(&existing, 0, sizeof existing);
    int have = kb_store_get_backbone(&existing, store, b->id, &err) == KB_OK;
    if (have) {
        /* the same file again: report the stored record instead of a content conflict */
        int same = existing.uri && existing.arch && strcmp(existing.arch, b->arch) == 0 &&
                   strcmp(existing.uri, b->uri) == 0;
        if (same) {
            code = a->json ? print_record_json(&existing)
                           : (printf("backbone %s already registered\n", b->id), KB_EXIT_OK);
            kb_backbone_release(&existing);
            kb_store_close(store);
            return code;
        }
        kb_backbone_release(&existing);
    }
    if (kb_store_put_batch(store, &rec, 1, &result, reason, &err) != KB_OK) {
        kb_store_close(store);
        return cli_fail(CMD, &err);
    }
    kb_store_close(store);
    if (result == KB_PUT_CONFLICT || result == KB_PUT_REJECTED) {
        return cli_error(CMD, KB_EXIT_DATA, "%s", reason[0]);
    }
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "schema", "kb.backbone.add/1");
        cJSON_AddStringToObject(o, "id", b->id);
        cJSON_AddStringToObject(o, "status", result == KB_PUT_ADDED ? "added" : "duplicate");
        cJSON_AddStringToObject(o, "family", b->family);
        cJSON_AddStringToObject(o, "arch", b->arch);
        cJSON_AddStringToObject(o, "input_signature", b->input_signature);
        cJSON_AddStringToObject(o, "source_task", b->source_task);
        cJSON_AddStringToObject(o, "uri", b->uri);
        cJSON_AddNumberToObject(o, "n_outputs", (double)info.n_outputs);
        cJSON_AddNumberToObject(o, "n_params", (double)info.n_params);
        cJSON_AddStringToObject(o, "sha256", info.sha256);
        return cli_emit_json(o);
    }
    printf("%s backbone %s: %s, %s, from task %s\n",
           result == KB_PUT_ADDED ? "added" : "already had", b->id, b->arch, b->input_signature,
           b->source_task);
    return KB_EXIT_OK;
}

typedef struct list_ctx {
    int json;
    int code;
} list_ctx;

static const char *or_dash(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "-";
}

static int on_backbone(const kb_backbone *b, void *payload)
{
    list_ctx *c = payload;
    if (c->json) {
        c->code = print_record_json(b);
        return c->code != KB_EXIT_OK;
    }
    printf("%s\t%s\t%s\t%s\t%s\t%s\n", or_dash(b->id), or_dash(b->family), or_dash(b->arch),
           or_dash(b->input_signature), or_dash(b->source_task), or_dash(b->uri));
    return 0;
}

static int backbone_list(const args *a)
{
    kb_store *store = NULL;
    cli_log_opts log = {CMD, 0, 0};
    int code = cli_open_store(&store, CMD, a->kb, KB_STORE_OPEN_RDONLY, &log);
    if (code != KB_EXIT_OK) {
        return code;
    }
    list_ctx c = {a->json, KB_EXIT_OK};
    kb_error err = KB_ERROR_INIT;
    int rc = kb_store_foreach_backbone(store, NULL, on_backbone, &c, &err);
    kb_store_close(store);
    if (rc < 0) {
        return cli_fail(CMD, &err);
    }
    return c.code;
}

int cmd_backbone(int argc, char **argv)
{
    args a;
    memset(&a, 0, sizeof a);
    cli_parser p;
    cli_begin(&p, &cmd_backbone_spec, argc, argv);
    for (int c; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case OPT_KB: a.kb = p.arg; break;
        case OPT_JSON: a.json = 1; break;
        case OPT_SOURCE: a.source = p.arg; break;
        case OPT_ID: a.id = p.arg; break;
        case OPT_FAMILY: a.family = p.arg; break;
        case OPT_URI: a.uri = p.arg; break;
        case OPT_TEAM: a.team = p.arg; break;
        case CLI_HELP_KEY: return KB_EXIT_OK;
        default: return KB_EXIT_USAGE;
        }
    }
    int rest = cli_rest(&p);
    if (rest >= argc) {
        return cli_usage(CMD, "missing 'add FILE' or 'list'");
    }
    const char *sub = argv[rest];
    if (strcmp(sub, "add") == 0) {
        if (rest + 2 != argc) {
            return cli_usage(CMD, "add: expected one FILE");
        }
        return backbone_add(&a, argv[rest + 1]);
    }
    if (strcmp(sub, "list") == 0) {
        if (rest + 1 != argc) {
            return cli_usage(CMD, "list: unexpected argument '%s'", argv[rest + 1]);
        }
        return backbone_list(&a);
    }
    return cli_usage(CMD, "unknown subcommand '%s' (add or list)", sub);
}
