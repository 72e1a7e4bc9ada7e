/* kb list: one line per task, run, backbone, space or study, with filters. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kb/json.h"
#include "tools/commands.h"
#include "tools/exit.h"

enum { OPT_KB = CLI_KEY(0), OPT_JSON, OPT_TASK, OPT_SPACE, OPT_TEAM, OPT_STATUS, OPT_LIMIT,
       OPT_BACKBONE, OPT_STUDY };

static const cli_opt opts[] = {
    {"kb", OPT_KB, 1, "PATH", "knowledge base directory (default $KB_PATH or ./kb.lmdb)"},
    {"task", OPT_TASK, 1, "ID", "runs (or studies) of this task only"},
    {"space", OPT_SPACE, 1, "NAME", "runs in this search space only"},
    {"backbone", OPT_BACKBONE, 1, "ID", "runs fine-tuned from this backbone only"},
    {"study", OPT_STUDY, 1, "ID", "runs (trials) of this study only"},
    {"team", OPT_TEAM, 1, "TEAM", "tasks, runs or studies of this team only"},
    {"status", OPT_STATUS, 1, "STATUS", "runs with this status (ok, failed, diverged, pruned, running)"},
    {"limit", 'n', 1, "N", "print at most N records"},
    {"json", OPT_JSON, 0, NULL, "print JSON Lines: one canonical record per line (as kb export)"},
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_list_spec = {
    "list", "kb list tasks|runs|backbones|spaces|studies [options]",
    "List the records of one kind, one per line: tasks, spaces and studies by id, runs in the "
    "order they were added. Filters combine; --task, --space, --backbone and --study read an "
    "index, so listing one task's runs does not scan the others. A study's line counts its "
    "trials (runs with its study_id). With --json each line is the record's canonical JSON, "
    "the form kb export writes and kb ingest reads.",
    opts,
    "  kb list tasks\n  kb list runs --task t-iris --status ok --limit 10\n"
    "  kb list studies --task t-iris\n  kb list runs --study study-42 --json > trials.jsonl",
    NULL};

typedef struct list_ctx {
    int json;
    kb_buf buf;
    int failed;
    size_t n;
} list_ctx;

static const char *or_dash(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "-";
}

static int emit_json(list_ctx *c, const kb_record *rec)
{
    kb_error err = KB_ERROR_INIT;
    kb_buf_reset(&c->buf);
    if (kb_json_write_record(&c->buf, rec, &err) != KB_OK) {
        fprintf(stderr, "kb list: %s\n", err.msg);
        c->failed = 1;
        return 1;
    }
    puts(c->buf.data);
    return 0;
}

static int on_task(const kb_task *t, void *payload)
{
    list_ctx *c = payload;
    c->n++;
    if (c->json) {
        kb_record rec = {.kind = KB_RECORD_TASK, .task = *t};
        return emit_json(c, &rec);
    }
    printf("%-28s %-28s %-15s %-10s %3zu features", t->id, or_dash(t->name),
           kb_task_type_name(t->type), or_dash(t->team), t->n_features);
    for (size_t i = 0; i < t->n_tags; i++) {
        printf("%s%s", i == 0 ? "  tags: " : ",", t->tags[i]);
    }
    putchar('\n');
    return 0;
}

/* The objective's final value, or NaN when the run has none. */
static double objective_value(const kb_run *r)
{
    for (size_t i = 0; r->objective != NULL && i < r->n_metrics; i++) {
        if (strcmp(r->metrics[i].name, r->objective) == 0) {
            return r->metrics[i].value;
        }
    }
    return NAN;
}

static int on_run(const kb_run *r, void *payload)
{
    list_ctx *c = payload;
    c->n++;
    if (c->json) {
        kb_record rec = {.kind = KB_RECORD_RUN, .run = *r};
        return emit_json(c, &rec);
    }
    double v = objective_value(r);
    char value[48];
    if (isnan(v) && r->objective == NULL) {
        snprintf(value, sizeof value, "-");
    } else {
        snprintf(value, sizeof value, "%s=%.6g", r->objective, v);
    }
    printf("%-36s %-24s %-10s %-8s %-28s", r->id, r->task_id, or_dash(r->space),
           kb_run_status_name(r->status), value);
    if (!isnan(r->cost_s)) {
        printf(" %9.2fs", r->cost_s);
    }
    putchar('\n');
    return 0;
}

static int on_backbone(const kb_backbone *b, void *payload)
{
    list_ctx *c = payload;
    c->n++;
    if (c->json) {
        kb_record rec = {.kind = KB_RECORD_BACKBONE, .backbone = *b};
        return emit_json(c, &rec);
    }
    printf("%-28s %-10s %-40s %-18s %s\n", b->id, or_dash(b->family), or_dash(b->arch),
           or_dash(b->input_signature), or_dash(b->source_task));
    return 0;
}

static int on_space(const kb_space *s, void *payload)
{
    list_ctx *c = payload;
    c->n++;
    if (c->json) {
        kb_record rec = {.kind = KB_RECORD_SPACE, .space = *s};
        return emit_json(c, &rec);
    }
    printf("%-20s %zu parameters:", s->name, s->n_params);
    for (size_t i = 0; i < s->n_params; i++) {
        printf(" %s", s->params[i].name);
    }
    putchar('\n');
    return 0;
}

typedef struct list_study_ctx {
    list_ctx *c;
    kb_store *store;
} list_study_ctx;

/* [0] every trial, [1] those still running (proposed, not yet told) */
static int count_trial(const kb_run *r, void *payload)
{
    size_t *n = payload;
    n[0]++;
    n[1] += r->status == KB_RUN_STATUS_RUNNING;
    return 0;
}

static int on_study(const kb_study *s, void *payload)
{
    list_study_ctx *sc = payload;
    list_ctx *c = sc->c;
    c->n++;
    if (c->json) {
        kb_record rec = {.kind = KB_RECORD_STUDY, .study = *s};
        return emit_json(c, &rec);
    }
    /* the trials: a nested read of the study index (reads are allowed inside a foreach) */
    kb_store_filter f = KB_STORE_FILTER_INIT;
    f.study_id = s->id;
    size_t n[2] = {0, 0};
    kb_error err = KB_ERROR_INIT;
    if (kb_store_foreach_run(sc->store, &f, count_trial, n, &err) != KB_OK) {
        fprintf(stderr, "kb list: %s\n", err.msg);
        c->failed = 1;
        return 1;
    }
    char objective[64];
    snprintf(objective, sizeof objective, "%s%s", s->objective == NULL ? "-" : s->objective,
             s->objective == NULL ? "" : s->direction == KB_DIRECTION_MAXIMIZE ? " (max)"
                                                                               : " (min)");
    printf("%-28s %-24s %-12s %-10s %-24s %6zu trials, %zu running\n", s->id,
           or_dash(s->task_id), or_dash(s->space), or_dash(s->method), objective, n[0], n[1]);
    return 0;
}

int cmd_list(int argc, char **argv)
{
    const char *opt_kb = NULL;
    kb_store_filter f = KB_STORE_FILTER_INIT;
    list_ctx ctx = {0, KB_BUF_INIT, 0, 0};
    cli_parser p;
    cli_begin(&p, &cmd_list_spec, argc, argv);
    for (int c; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case OPT_KB: opt_kb = p.arg; break;
        case OPT_TASK: f.task_id = p.arg; break;
        case OPT_SPACE: f.space = p.arg; break;
        case OPT_BACKBONE: f.backbone_id = p.arg; break;
        case OPT_STUDY: f.study_id = p.arg; break;
        case OPT_TEAM: f.team = p.arg; break;
        case OPT_STATUS: {
            kb_run_status s;
            if (kb_run_status_parse(&s, p.arg) != KB_OK) {
                return cli_usage("list", "unknown status '%s' (ok, failed, diverged, pruned, "
                                         "running)", p.arg);
            }
            f.status = (int)s;
            break;
        }
        case 'n':
            if (cli_parse_size("list", "limit", p.arg, &f.limit) != 0) {
                return KB_EXIT_USAGE;
            }
            break;
        case OPT_JSON: ctx.json = 1; break;
        case CLI_HELP_KEY: return KB_EXIT_OK;
        default: return KB_EXIT_USAGE;
        }
    }
    int first = cli_rest(&p);
    if (first != argc - 1) {
        return cli_usage("list", first >= argc ? "say what to list: tasks, runs, backbones, "
                                                 "spaces or studies"
                                               : "too many arguments");
    }
    const char *what = argv[first];
    int kind = strcmp(what, "tasks") == 0       ? KB_RECORD_TASK
               : strcmp(what, "runs") == 0      ? KB_RECORD_RUN
               : strcmp(what, "backbones") == 0 ? KB_RECORD_BACKBONE
               : strcmp(what, "spaces") == 0    ? KB_RECORD_SPACE
               : strcmp(what, "studies") == 0   ? KB_RECORD_STUDY
                                                : 0;
    if (kind == 0) {
        return cli_usage("list", "cannot list '%s': say tasks, runs, backbones, spaces or "
                                 "studies", what);
    }
    if (kind == KB_RECORD_STUDY && (f.space || f.backbone_id || f.status >= 0 || f.study_id)) {
        return cli_usage("list", "studies take --task, --team and --limit only");
    }
    if (kind != KB_RECORD_RUN && kind != KB_RECORD_STUDY &&
        (f.task_id || f.space || f.backbone_id || f.status >= 0 || f.study_id)) {
        return cli_usage("list", "--task, --space, --backbone, --study and --status filter runs "
                                 "only");
    }
    cli_log_opts log = {"list", 0, 0};
    kb_store *store = NULL;
    int rc = cli_open_store(&store, "list", opt_kb, KB_STORE_OPEN_RDONLY, &log);
    if (rc != KB_EXIT_OK) {
        return rc;
    }
    kb_error err = KB_ERROR_INIT;
    int src;
    switch (kind) {
    case KB_RECORD_TASK: src = kb_store_foreach_task(store, &f, on_task, &ctx, &err); break;
    case KB_RECORD_RUN: src = kb_store_foreach_run(store, &f, on_run, &ctx, &err); break;
    case KB_RECORD_BACKBONE:
        src = kb_store_foreach_backbone(store, &f, on_backbone, &ctx, &err);
        break;
    case KB_RECORD_STUDY: {
        list_study_ctx sc = {&ctx, store};
        src = kb_store_foreach_study(store, &f, on_study, &sc, &err);
        break;
    }
    default: src = kb_store_foreach_space(store, &f, on_space, &ctx, &err); break;
    }
    kb_store_close(store);
    kb_buf_release(&ctx.buf);
    if (ctx.failed) {
        return KB_EXIT_FAILURE;
    }
    if (src != KB_OK) {
        return cli_fail("list", &err);
    }
    if (!ctx.json && ctx.n == 0) {
        fprintf(stderr, "kb list: no %s\n", what);
    }
    return KB_EXIT_OK;
}
