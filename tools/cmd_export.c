/* kb export: records as kb JSON Lines that kb ingest takes back (kb/json.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine/core/buf.h"
#include "kb/json.h"
#include "kb/store.h"
#include "tools/commands.h"
#include "tools/exit.h"

enum { OPT_KB = CLI_KEY(1), OPT_TASK, OPT_KIND };

static const cli_opt opts[] = {
    {"kb", OPT_KB, 1, "PATH", "knowledge base directory (default $KB_PATH or ./kb.lmdb)"},
    {"task", OPT_TASK, 1, "ID", "only this task, its studies and its runs"},
    {"kind", OPT_KIND, 1, "KIND",
     "only records of this kind: task, run, backbone, space or study"},
    {"output", 'o', 1, "FILE", "write to FILE instead of standard output"},
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_export_spec = {
    "export",
    "kb export [--kb PATH] [--task ID] [--kind KIND] [-o FILE]",
    "Write the knowledge base as kb JSON Lines, one canonical line per record: spaces, tasks, "
    "backbones and studies by id, then runs in insertion order. The output is deterministic and "
    "'kb ingest' takes it back: exporting, ingesting into an empty knowledge base and "
    "exporting again gives the same bytes, and ingesting it into another knowledge base "
    "merges the two (ids are global).",
    opts,
    "  kb export > kb.jsonl\n"
    "  kb export --task sklearn-wine -o wine.jsonl\n"
    "  kb export --kb team-a.lmdb | kb ingest --kb team-b.lmdb -",
    NULL};

typedef struct exporter {
    FILE *out;
    kb_buf buf;
    kb_error err;
    int failed;
} exporter;

/* Move the buffered lines to the file once they pass 1 MiB (and at the end). */
static int drain(exporter *x, int force)
{
    if (x->buf.len == 0 || (!force && x->buf.len < (1u << 20))) {
        return 0;
    }
    if (fwrite(x->buf.data, 1, x->buf.len, x->out) != x->buf.len) {
        int e = errno;
        kb_error_set_cause(&x->err, KB_EIO, e, "writing: %s", strerror(e));
        return KB_EIO;
    }
    kb_buf_reset(&x->buf);
    return 0;
}

static int line_done(exporter *x, int rc)
{
    if (rc != KB_OK) {
        return rc;
    }
    if (kb_buf_putc(&x->buf, '\n') != KB_OK) {
        return kb_error_set(&x->err, KB_ENOMEM, "out of memory");
    }
    return drain(x, 0);
}

static int put_space(const kb_space *s, void *payload)
{
    exporter *x = payload;
    return line_done(x, kb_json_write_space(&x->buf, s, &x->err));
}

static int put_task(const kb_task *t, void *payload)
{
    exporter *x = payload;
    return line_done(x, kb_json_write_task(&x->buf, t, &x->err));
}

static int put_backbone(const kb_backbone *b, void *payload)
{
    exporter *x = payload;
    return line_done(x, kb_json_write_backbone(&x->buf, b, &x->err));
}

static int put_study(const kb_study *s, void *payload)
{
    exporter *x = payload;
    return line_done(x, kb_json_write_study(&x->buf, s, &x->err));
}

static int put_run(const kb_run *r, void *payload)
{
    exporter *x = payload;
    if (cli_interrupted) {
        return kb_error_set(&x->err, KB_ECANCELED, "interrupted");
    }
    return line_done(x, kb_json_write_run(&x->buf, r, 1, &x->err));
}

static int export_all(exporter *x, kb_store *store, const char *task, int kind, kb_error *err)
{
    kb_store_filter f = KB_STORE_FILTER_INIT;
    int rc = KB_OK;
    if (task != NULL) {
        if (kind == 0 || kind == KB_RECORD_TASK) {
            kb_task t;
            memset(&t, 0, sizeof t);
            rc = kb_store_get_task(&t, store, task, err);
            if (rc == KB_OK) {
                rc = put_task(&t, x);
            }
            kb_task_release(&t);
        } else {
            kb_record_kind k;
            rc = kb_store_find_kind(&k, store, task, err);
            if (rc == KB_OK && k != KB_RECORD_TASK) {
                rc = kb_error_set(err, KB_ENOTFOUND, "'%s' is not a task", task);
            }
        }
        f.task_id = task;
        if (rc == KB_OK && (kind == 0 || kind == KB_RECORD_STUDY)) {
            rc = kb_store_foreach_study(store, &f, put_study, x, err);
        }
        if (rc == KB_OK && (kind == 0 || kind == KB_RECORD_RUN)) {
            rc = kb_store_foreach_run(store, &f, put_run, x, err);
        }
        return rc;
    }
    if (kind == 0 || kind == KB_RECORD_SPACE) {
        rc = kb_store_foreach_space(store, &f, put_space, x, err);
    }
    if (rc == KB_OK && (kind == 0 || kind == KB_RECORD_TASK)) {
        rc = kb_store_foreach_task(store, &f, put_task, x, err);
    }
    if (rc == KB_OK && (kind == 0 || kind == KB_RECORD_BACKBONE)) {
        rc = kb_store_foreach_backbone(store, &f, put_backbone, x, err);
    }
    /* after tasks (a study needs its task) and before runs (its trials) */
    if (rc == KB_OK && (kind == 0 || kind == KB_RECORD_STUDY)) {
        rc = kb_store_foreach_study(store, &f, put_study, x, err);
    }
    if (rc == KB_OK && (kind == 0 || kind == KB_RECORD_RUN)) {
        rc = kb_store_foreach_run(store, &f, put_run, x, err);
    }
    return rc;
}

int cmd_export(int argc, char **argv)
{
    const char *kb_path = NULL, *task = NULL, *output = NULL;
    int kind = 0;
    cli_parser p;
    cli_begin(&p, &cmd_export_spec, argc, argv);
    int c;
    while ((c = cli_next(&p)) != -1) {
        switch (c) {
        case CLI_HELP_KEY: return KB_EXIT_OK;
        case OPT_KB: kb_path = p.arg; break;
        case OPT_TASK: task = p.arg; break;
        case 'o': output = p.arg; break;
        case OPT_KIND: {
            static const char *const kinds[] = {"task", "run", "backbone", "space", "study"};
            kind = 0;
            for (int k = 0; k < 5; k++) {
                if (strcmp(p.arg, kinds[k]) == 0) {
                    kind = k + 1; /* KB_RECORD_* order */
                }
            }
            if (kind == 0) {
                return cli_usage("export", "option '--kind': expected task, run, backbone, "
                                 "space or study, got '%s'", p.arg);
            }
            break;
        }
        default: return KB_EXIT_USAGE;
        }
    }
    if (cli_rest(&p) < argc) {
        return cli_usage("export", "unexpected argument '%s'", argv[cli_rest(&p)]);
    }
    kb_store *store = NULL;
    cli_log_opts log = {"export", 0, 0};
    int rc = cli_open_store(&store, "export", kb_path, KB_STORE_OPEN_RDONLY, &log);
    if (rc != KB_EXIT_OK) {
        return rc;
    }
    kb_error err = KB_ERROR_INIT;
    exporter x = {stdout, KB_BUF_INIT, KB_ERROR_INIT, 0};
    if (output != NULL && (x.out = fopen(output, "wb")) == NULL) {
        int e = errno;
        kb_store_close(store);
        return cli_error("export", KB_EXIT_FAILURE, "cannot create '%s': %s", output,
                         strerror(e));
    }
    rc = export_all(&x, store, task, kind, &err);
    if (rc != KB_OK && x.err.code != KB_OK) {
        err = x.err; /* the callback's own error */
    }
    if (rc == KB_OK) {
        rc = drain(&x, 1);
        err = x.err;
    }
    kb_store_close(store);
    kb_buf_release(&x.buf);
    if (output != NULL && fclose(x.out) != 0 && rc == KB_OK) {
        rc = kb_error_set(&err, KB_EIO, "writing '%s' failed", output);
    }
    if (rc != KB_OK) {
        if (rc == KB_ENOTFOUND) {
            return cli_error("export", KB_EXIT_FAILURE, "%s", err.msg);
        }
        return cli_fail("export", &err);
    }
    return KB_EXIT_OK;
}
