/* kb/ingest: the parsers (JSON Lines, JSON arrays, Optuna CSV, MLflow) and store batches. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "kb/ingest.h"
#include "kb/json.h"
#include "kb/store.h"

/* Everything the callbacks saw. */
typedef struct seen {
    kb_record recs[64];
    size_t lines[64];
    size_t n, n_total;
    char rejects[16][300];
    size_t n_rejects;
    char warnings[8][300];
    size_t n_warnings;
    size_t n_progress;
    kb_ingest_counts last_progress;
} seen;

static int on_record(kb_record *rec, const char *file, size_t line, void *payload)
{
    seen *s = payload;
    (void)file;
    if (s->n < 64) {
        s->recs[s->n] = *rec;
        s->lines[s->n++] = line;
    } else {
        kb_record_release(rec);
    }
    s->n_total++;
    return 0;
}

static void on_reject(const char *file, size_t line, const char *reason, void *payload)
{
    seen *s = payload;
    const char *base = strrchr(file, '/');
    if (s->n_rejects < 16) {
        snprintf(s->rejects[s->n_rejects], sizeof s->rejects[0], "%s:%zu: %s",
                 base != NULL ? base + 1 : file, line, reason);
    }
    s->n_rejects++;
}

static void on_warn(kb_log_level level, const char *msg, void *payload)
{
    seen *s = payload;
    (void)level;
    if (s->n_warnings < 8) {
        snprintf(s->warnings[s->n_warnings], sizeof s->warnings[0], "%s", msg);
    }
    s->n_warnings++;
}

static void on_progress(const kb_ingest_counts *so_far, void *payload)
{
    seen *s = payload;
    s->n_progress++;
    s->last_progress = *so_far;
}

static void seen_release(seen *s)
{
    for (size_t i = 0; i < s->n && i < 64; i++) {
        kb_record_release(&s->recs[i]);
    }
    memset(s, 0, sizeof *s);
}

static kb_ingest_opts opts_for(seen *s)
{
    kb_ingest_opts o = KB_INGEST_OPTS_INIT;
    o.reject = on_reject;
    o.progress = on_progress;
    o.payload = s;
    o.log.fn = on_warn;
    o.log.payload = s;
    return o;
}

static int parse_text(seen *s, const char *text, const kb_ingest_opts *o, kb_ingest_counts *c,
                      kb_error *err)
{
    return kb_ingest_parse_buffer(c, text, strlen(text), "in.jsonl", o, on_record, s, err);
}

static const char *tmpdir(void)
{
    static char dir[64];
    if (dir[0] == '\0') {
        snprintf(dir, sizeof dir, "/tmp/kb-test-ingest-XXXXXX");
        if (mkdtemp(dir) == NULL) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return dir;
}

static const char *tmp_path(const char *name)
{
    static char path[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", tmpdir(), name);
    return path[k];
}

static void write_file(const char *path, const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, n, f) != n) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

static void test_json_lines_skip_bad_records_and_keep_good_ones(void)
{
    seen s;
    memset(&s, 0, sizeof s);
    kb_ingest_opts o = opts_for(&s);
    kb_ingest_counts c;
    kb_error err = KB_ERROR_INIT;
    const char *in = "{\"kind\":\"task\",\"id\":\"t\"}\r\n"
                     "\n"
                     "   \n"
                     "{\"kind\":\"run\",\"id\":\"r1\",\"task\":\"t\",\"status\":\"ok\"}\n"
                     "{\"kind\":\"run\",\"id\":\"r2\",\"task\":\"t\",\"status\":\"ok\",\"cost_s\":-2}\n"
                     "{\"kind\":\"run\",\"id\":\"r3\",\"task\":\"t\",\"status\":\"ok\",\"zz\":1}\n"
                     "{\"kind\":\"run\",\"id\":\"r4\",\"task\":\"t\",\"sta";
    CHECK_OK(parse_text(&s, in, &o, &c, &err), err);
    CHECK(c.accepted == 3 && c.rejected == 2);
    CHECK(s.n == 3 && s.lines[0] == 1 && s.lines[1] == 4 && s.lines[2] == 6);
    CHECK_STR(s.rejects[0], "in.jsonl:5: field 'cost_s': must be >= 0");
    CHECK_STR(s.rejects[1], "in.jsonl:7: invalid JSON: unterminated string at the end of the "
                            "input (truncated?)");
    CHECK(s.n_warnings == 1);
    CHECK_STR(s.warnings[0], "in.jsonl:6: field 'zz': unknown run field kept under 'extra'");
    seen_release(&s);
}

static void test_inline_tasks_are_delivered_once(void)
{
    seen s;
    memset(&s, 0, sizeof s);
    kb_ingest_opts o = opts_for(&s);
    kb_ingest_counts c;
    kb_error err = KB_ERROR_INIT;
    const char *in = "{\"kind\":\"run\",\"id\":\"a\",\"status\":\"ok\",\"task\":{\"id\":\"t\"}}\n"
                     "{\"kind\":\"run\",\"id\":\"b\",\"status\":\"ok\",\"task\":{\"id\":\"t\"}}\n"
                     "{\"kind\":\"run\",\"id\":\"c\",\"status\":\"ok\",\"task\":{\"id\":\"u\"}}\n";
    CHECK_OK(parse_text(&s, in, &o, &c, &err), err);
    CHECK(s.n == 5);
    CHECK(s.recs[0].kind == KB_RECORD_TASK && s.recs[1].kind == KB_RECORD_RUN);
    CHECK(s.recs[2].kind == KB_RECORD_RUN && s.recs[3].kind == KB_RECORD_TASK);
    CHECK_STR(s.recs[3].task.id, "u");
    seen_release(&s);
}

static void test_json_array_file(void)
{
    seen s;
    memset(&s, 0, sizeof s);
    kb_ingest_opts o = opts_for(&s);
    kb_ingest_counts c;
    kb_error err = KB_ERROR_INIT;
    const char *in = " [ {\"kind\":\"task\",\"id\":\"t\"},\n  {\"kind\":\"run\",\"task\":\"t\"},\n"
                     "  {\"kind\":\"run\",\"id\":\"r\",\"task\":\"t\",\"status\":\"pruned\"} ]";
    CHECK_OK(parse_text(&s, in, &o, &c, &err), err);
    CHECK(c.accepted == 2 && c.rejected == 1 && s.n == 2 && s.lines[1] == 3);
    CHECK_STR(s.rejects[0], "in.jsonl:2: field 'status': required (ok, failed, diverged, pruned "
                            "or running)");
    /* a truncated array is unusable as a whole */
    CHECK(parse_text(&s, "[{\"kind\":\"task\",\"id\":\"t\"},\n{", &o, &c, &err) == KB_EFORMAT);
    CHECK(strncmp(err.msg, "in.jsonl:2: invalid JSON", 24) == 0);
    seen_release(&s);
}

static void test_detection_of_empty_binary_and_unknown_inputs(void)
{
    seen s;
    memset(&s, 0, sizeof s);
    kb_ingest_opts o = opts_for(&s);
    kb_ingest_counts c;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(parse_text(&s, "\xEF\xBB\xBF{\"kind\":\"task\",\"id\":\"bom\"}\n", &o, &c, &err),
             err);
    CHECK(c.accepted == 1 && c.rejected == 0);
    seen_release(&s);
    CHECK_OK(parse_text(&s, " \n\n", &o, &c, &err), err);
    CHECK(c.accepted == 0 && c.rejected == 0 && s.n_warnings == 1);
    CHECK_STR(s.warnings[0], "in.jsonl: empty input: no records");
    const char bin[] = "\x7f" "ELF\x02\x01\x01\x00\x00\xff\xfe";
    CHECK(kb_ingest_parse_buffer(&c, bin, sizeof bin, "a.out", &o, on_record, &s, &err) ==
          KB_EFORMAT);
    CHECK_STR(err.msg, "a.out: unknown format: binary data (not UTF-8 text)");
    CHECK(parse_text(&s, "hello,world\n1,2\n", &o, &c, &err) == KB_EFORMAT);
    CHECK(strstr(err.msg, "in.jsonl: unknown format") == err.msg);
    seen_release(&s);
}

static void test_a_ten_megabyte_line_is_read(void)
{
    /* one run whose curve makes its line > 10 MB */
    kb_buf b = KB_BUF_INIT;
    kb_buf_puts(&b, "{\"kind\":\"task\",\"id\":\"t\"}\n{\"kind\":\"run\",\"id\":\"big\",\"task\":\"t\","
                    "\"status\":\"ok\",\"curve\":[");
    size_t n_points = getenv("KB_SANITIZED") != NULL ? 200000 : 400000;
    for (size_t i = 0; i < n_points; i++) {
        kb_buf_printf(&b, "%s{\"step\":%zu,\"loss\":0.%06zu}", i > 0 ? "," : "", i, i);
    }
    kb_buf_puts(&b, "]}\n{\"kind\":\"task\",\"id\":\"u\"}\n");
    CHECK(b.len > (getenv("KB_SANITIZED") != NULL ? 5u : 10u) * 1000 * 1000);
    const char *path = tmp_path("big.jsonl");
    write_file(path, b.data, b.len);
    kb_buf_release(&b);
    seen s;
    memset(&s, 0, sizeof s);
    kb_ingest_opts o = opts_for(&s);
    kb_ingest_counts c;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_ingest_parse_file(&c, path, &o, on_record, &s, &err), err);
    CHECK(c.accepted == 3 && c.rejected == 0);
    CHECK(s.n == 3 && s.recs[1].run.n_curve == 1 && s.recs[1].run.curve[0].n == n_points);
    CHECK(s.lines[2] == 3);
    seen_release(&s);
}

static void test_optuna_csv_from_a_real_study(void)
{
    seen s;
    memset(&s, 0, sizeof s);
    kb_ingest_opts o = opts_for(&s);
    o.task_id = "sklearn-wine";
    o.space = "svc";
    o.study = "svc-wine";
    o.objective = "accuracy";
    o.direction = KB_DIRECTION_MAXIMIZE;
    kb_ingest_counts c;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_ingest_parse_file(&c, check_data_path("examples/optuna_svc_wine.csv"), &o,
                                  on_record, &s, &err),
             err);
    CHECK(c.accepted == 12 && c.rejected == 0 && s.n == 12);
    size_t pruned = 0;
    for (size_t i = 0; i < s.n; i++) {
        const kb_run *r = &s.recs[i].run;
        char id[64];
        snprintf(id, sizeof id, "optuna:svc-wine:%zu", i);
        CHECK_STR(r->id, id);
        CHECK_STR(r->task_id, "sklearn-wine");
        CHECK_STR(r->space, "svc");
        CHECK_STR(r->study_id, "optuna:svc-wine");
        CHECK(r->direction == KB_DIRECTION_MAXIMIZE);
        CHECK(r->status == KB_RUN_STATUS_OK || r->status == KB_RUN_STATUS_PRUNED);
        pruned += r->status == KB_RUN_STATUS_PRUNED;
        CHECK(r->cost_s > 0 && r->cost_s < 60);
        CHECK(r->started_at != KB_TIME_UNKNOWN && r->finished_at >= r->started_at);
        const kb_param *C = kb_params_find(r->config, r->n_config, "C");
        const kb_param *kernel = kb_params_find(r->config, r->n_config, "kernel");
        const kb_param *shrink = kb_params_find(r->config, r->n_config, "shrinking");
        CHECK(C != NULL && C->value.type == KB_VALUE_TYPE_FLOAT);
        CHECK(kernel != NULL && kernel->value.type == KB_VALUE_TYPE_STR);
        CHECK(shrink != NULL && shrink->value.type == KB_VALUE_TYPE_BOOL);
        /* gamma is conditional: absent for the linear kernel */
        CHECK((kb_params_find(r->config, r->n_config, "gamma") == NULL) ==
              (strcmp(kernel->value.s, "linear") == 0));
        CHECK(r->n_metrics == 1 && strcmp(r->metrics[0].name, "accuracy") == 0);
    }
    CHECK(pruned == 5);
    seen_release(&s);
    /* without --task there is nothing to attach the runs to */
    o.task_id = NULL;
    CHECK(kb_ingest_parse_file(&c, check_data_path("examples/optuna_svc_wine.csv"), &o,
                               on_record, &s, &err) == KB_EINVAL);
    seen_release(&s);
}

static void test_optuna_csv_quoting_bad_rows_and_missing_columns(void)
{
    seen s;
    memset(&s, 0, sizeof s);
    kb_ingest_opts o = opts_for(&s);
    o.task_id = "t";
    kb_ingest_counts c;
    kb_error err = KB_ERROR_INIT;
    const char *in =
        ",number,value,params_opt,params_n,params_x,user_attrs_note,state,duration\r\n"
        "0,0,0.5,\"a,b\",3,1.5,\"say \"\"hi\"\"\nthere\",COMPLETE,1 days 00:00:01.5\r\n"
        "1,1,,sgd,,,,FAIL,\n"
        "2,2,0.7,sgd,4,2,,DONE,\n"
        "3,3,0.7,sgd\n"
        "4,4,inf,sgd,4,2,,COMPLETE,\n"
        "5,-5,0.7,sgd,4,2,,COMPLETE,\n"
        "6,6,0.1,\"x\"y,4,2,,COMPLETE,\n"
        "7,7,0.25,adam,True,1e-3,,PRUNED,0 days 00:00:00.25\n";
    CHECK_OK(kb_ingest_parse_buffer(&c, in, strlen(in), "s.csv", &o, on_record, &s, &err), err);
    CHECK(c.accepted == 3 && c.rejected == 5 && s.n == 3);
    const kb_run *r = &s.recs[0].run;
    CHECK(r->n_config == 3);
    CHECK(r->config[0].value.type == KB_VALUE_TYPE_INT && r->config[0].value.i == 3);
    CHECK_STR(r->config[1].value.s, "a,b");
    CHECK(r->config[2].value.type == KB_VALUE_TYPE_FLOAT && r->config[2].value.f == 1.5);
    CHECK(r->cost_s == 86401.5);
    CHECK_STR(r->extra, "{\"user_attrs\":{\"note\":\"say \\\"hi\\\"\\nthere\"}}");
    CHECK(s.recs[1].run.status == KB_RUN_STATUS_FAILED && s.recs[1].run.n_metrics == 0);
    CHECK(s.recs[2].run.status == KB_RUN_STATUS_PRUNED && s.recs[2].run.cost_s == 0.25);
    CHECK(s.recs[2].run.config[0].value.type == KB_VALUE_TYPE_BOOL);
    CHECK_STR(s.rejects[0], "s.csv:5: field 'state': expected COMPLETE, FAIL, PRUNED, RUNNING "
                            "or WAITING, got 'DONE'");
    CHECK_STR(s.rejects[1], "s.csv:6: expected 9 fields as in the header, got 4");
    CHECK_STR(s.rejects[2], "s.csv:7: field 'metrics.value': non-finite value needs status "
                            "'diverged'");
    CHECK_STR(s.rejects[3], "s.csv:8: field 'number': expected a non-negative integer, got "
                            "'-5'");
    CHECK_STR(s.rejects[4], "s.csv:9: unexpected character after a quoted field");
    /* ids use a hash of the file when no study name is given */
    CHECK(strncmp(r->id, "optuna:", 7) == 0 && strlen(r->id) == 7 + 16 + 2);
    seen_release(&s);

    const char *no_state = "number,value,params_x\n0,1,2\n";
    CHECK(kb_ingest_parse_buffer(&c, no_state, strlen(no_state), "m.csv", &o, on_record, &s,
                                 &err) == KB_EFORMAT);
    CHECK(strstr(err.msg, "m.csv: unknown format") == err.msg);
    o.format = KB_INGEST_FORMAT_OPTUNA_CSV;
    CHECK(kb_ingest_parse_buffer(&c, no_state, strlen(no_state), "m.csv", &o, on_record, &s,
                                 &err) == KB_EFORMAT);
    CHECK_STR(err.msg, "m.csv:1: not an Optuna CSV: missing column 'state'");
    seen_release(&s);
}

static int copy_tree(const char *from, const char *to)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", to, from, to);
    return system(cmd);
}

static void test_mlflow_store_runs_curves_and_half_written_files(void)
{
    seen s;
    memset(&s, 0, sizeof s);
    kb_ingest_opts o = opts_for(&s);
    kb_ingest_counts c;
    kb_error err = KB_ERROR_INIT;
    const char *store = tmp_path("mlruns");
    CHECK(copy_tree(check_data_path("examples/mlruns"), store) == 0);
    CHECK_OK(kb_ingest_parse_file(&c, store, &o, on_record, &s, &err), err);
    CHECK(c.accepted == 5 && c.rejected == 0 && s.n == 5);
    const kb_run *first = &s.recs[0].run;
    for (size_t i = 0; i < s.n; i++) {
        const kb_run *r = &s.recs[i].run;
        CHECK(strncmp(r->id, "mlflow:", 7) == 0 && strlen(r->id) == 7 + 32);
        CHECK_STR(r->task_id, "sklearn-digits");
        CHECK_STR(r->objective, "val_accuracy");
        CHECK(r->direction == KB_DIRECTION_MAXIMIZE);
        CHECK_STR(r->study_id, "mlflow:1");
        CHECK(r->status == KB_RUN_STATUS_OK);
        CHECK(r->n_curve == 2 && r->curve[1].n == 6 && r->curve[1].steps[5] == 5);
        CHECK(r->n_metrics == 2 && r->metrics[1].value == r->curve[1].values[5]);
        CHECK(r->started_at != KB_TIME_UNKNOWN && r->cost_s >= 0);
        CHECK(r->extra != NULL && strstr(r->extra, "\"mlflow.runName\"") != NULL);
    }
    /* cut the last line of one metrics file in half: that point is dropped, the run kept */
    char path[512], id[40];
    snprintf(id, sizeof id, "%s", first->id + 7);
    snprintf(path, sizeof path, "%s/1/%s/metrics/val_accuracy", store, id);
    FILE *f = fopen(path, "rb");
    char text[4096];
    size_t n = f != NULL ? fread(text, 1, sizeof text, f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    CHECK(n > 20);
    write_file(path, text, n - 6);
    seen_release(&s);
    o = opts_for(&s);
    CHECK_OK(kb_ingest_parse_file(&c, store, &o, on_record, &s, &err), err);
    CHECK(c.accepted == 5 && c.rejected == 0);
    CHECK(s.n_warnings == 1 && strstr(s.warnings[0], "/metrics/val_accuracy:6: incomplete last "
                                                     "line dropped") != NULL);
    CHECK(s.recs[0].run.curve[1].n == 5 && s.recs[0].run.curve[0].n == 6);
    /* a garbled line in the middle rejects the run, naming the file and line */
    write_file(path, "1 0.5 0\nnot a line\n", 19);
    seen_release(&s);
    o = opts_for(&s);
    CHECK_OK(kb_ingest_parse_file(&c, store, &o, on_record, &s, &err), err);
    CHECK(c.accepted == 4 && c.rejected == 1);
    CHECK_STR(s.rejects[0], "val_accuracy:2: field 'metrics.val_accuracy': expected 'timestamp "
                            "value step', got 'not a line'");
    seen_release(&s);
    /* runs without a task: the kb.task tag removed, no --task */
    write_file(path, "1 0.5 0\n", 8);
    snprintf(path, sizeof path, "%s/1/%s/tags/kb.task", store, id);
    CHECK(unlink(path) == 0);
    o = opts_for(&s);
    CHECK_OK(kb_ingest_parse_file(&c, store, &o, on_record, &s, &err), err);
    CHECK(c.rejected == 1);
    CHECK_STR(s.rejects[0], "meta.yaml:1: field 'task_id': required (a 'kb.task' tag on the "
                            "run, or --task)");
    seen_release(&s);
}

/* ---- store-backed ---- */

static kb_store *open_store(const char *name)
{
    kb_store *st = NULL;
    kb_store_opts so = KB_STORE_OPTS_INIT;
    so.flags = KB_STORE_OPEN_CREATE | KB_STORE_OPEN_NOSYNC;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_store_open(&st, tmp_path(name), &so, &err), err);
    return st;
}

static const char *runs_text =
    "{\"kind\":\"task\",\"id\":\"t\"}\n"
    "{\"kind\":\"run\",\"id\":\"r1\",\"task\":\"t\",\"status\":\"ok\"}\n"
    "{\"kind\":\"run\",\"id\":\"r2\",\"task\":\"t\",\"status\":\"ok\"}\n"
    "{\"kind\":\"run\",\"id\":\"r3\",\"task\":\"nope\",\"status\":\"ok\"}\n"
    "{\"kind\":\"run\",\"id\":\"r4\",\"task\":\"t\",\"status\":\"ok\",\"cost_s\":\"x\"}\n"
    "{\"kind\":\"run\",\"id\":\"r5\",\"task\":\"t\",\"status\":\"ok\"}\n";

static void test_store_batches_count_and_report_progress(void)
{
    kb_store *st = open_store("a.lmdb");
    const char *path = tmp_path("runs.jsonl");
    write_file(path, runs_text, strlen(runs_text));
    seen s;
    memset(&s, 0, sizeof s);
    kb_ingest_opts o = opts_for(&s);
    o.batch_size = 2;
    kb_ingest_counts c;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_ingest_file(&c, st, path, &o, &err), err);
    CHECK(c.accepted == 4 && c.duplicate == 0 && c.rejected == 2);
    CHECK(s.n_progress == 3 && s.last_progress.accepted == 4);
    CHECK(s.n_rejects == 2);
    /* parse errors are reported as they are read, store refusals when their batch commits */
    CHECK_STR(s.rejects[0], "runs.jsonl:4: run 'r3': unknown task 'nope'");
    CHECK_STR(s.rejects[1], "runs.jsonl:5: field 'cost_s': expected a number, got a string");
    kb_run r;
    memset(&r, 0, sizeof r);
    CHECK_OK(kb_store_get_run(&r, st, "r5", &err), err);
    kb_run_release(&r);
    /* again: everything known is a duplicate */
    memset(&s, 0, sizeof s);
    CHECK_OK(kb_ingest_file(&c, st, path, &o, &err), err);
    CHECK(c.accepted == 0 && c.duplicate == 4 && c.rejected == 2);
    /* changed content under a known id is a conflict, counted as rejected */
    const char *changed = "{\"kind\":\"run\",\"id\":\"r1\",\"task\":\"t\",\"status\":\"failed\"}\n";
    write_file(path, changed, strlen(changed));
    memset(&s, 0, sizeof s);
    CHECK_OK(kb_ingest_file(&c, st, path, &o, &err), err);
    CHECK(c.accepted == 0 && c.rejected == 1 && s.n_rejects == 1);
    CHECK(strstr(s.rejects[0], "runs.jsonl:1: ") == s.rejects[0]);
    kb_store_close(st);
}

static void test_strict_files_are_all_or_nothing(void)
{
    kb_store *st = open_store("b.lmdb");
    const char *path = tmp_path("strict.jsonl");
    write_file(path, runs_text, strlen(runs_text));
    seen s;
    memset(&s, 0, sizeof s);
    kb_ingest_opts o = opts_for(&s);
    o.strict = 1;
    o.batch_size = 2;
    kb_ingest_counts c;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_ingest_file(&c, st, path, &o, &err), err);
    CHECK(c.accepted == 0 && c.rejected == 1 && s.n_progress == 0);
    kb_store_stats stats;
    CHECK_OK(kb_store_stats_get(&stats, st, &err), err);
    CHECK(stats.n_tasks == 0 && stats.n_runs == 0);
    /* no parse error but a run whose task is nowhere: still nothing */
    const char *missing = "{\"kind\":\"task\",\"id\":\"t\"}\n"
                          "{\"kind\":\"run\",\"id\":\"r1\",\"task\":\"t\",\"status\":\"ok\"}\n"
                          "{\"kind\":\"run\",\"id\":\"r3\",\"task\":\"nope\",\"status\":\"ok\"}\n";
    write_file(path, missing, strlen(missing));
    memset(&s, 0, sizeof s);
    CHECK_OK(kb_ingest_file(&c, st, path, &o, &err), err);
    CHECK(c.accepted == 0 && c.rejected == 1);
    CHECK_STR(s.rejects[0], "strict.jsonl:3: run 'r3': unknown task 'nope'");
    CHECK_OK(kb_store_stats_get(&stats, st, &err), err);
    CHECK(stats.n_tasks == 0 && stats.n_runs == 0);
    /* a good file goes in whole, in one transaction */
    const char *good = "{\"kind\":\"task\",\"id\":\"t\"}\n"
                       "{\"kind\":\"run\",\"id\":\"r1\",\"task\":\"t\",\"status\":\"ok\"}\n";
    write_file(path, good, strlen(good));
    memset(&s, 0, sizeof s);
    CHECK_OK(kb_ingest_file(&c, st, path, &o, &err), err);
    CHECK(c.accepted == 2 && c.rejected == 0 && s.n_progress == 1);
    /* and a conflicting copy is refused before anything is written */
    const char *conflict = "{\"kind\":\"task\",\"id\":\"t2\"}\n"
                           "{\"kind\":\"run\",\"id\":\"r1\",\"task\":\"t\",\"status\":\"failed\"}\n";
    write_file(path, conflict, strlen(conflict));
    memset(&s, 0, sizeof s);
    CHECK_OK(kb_ingest_file(&c, st, path, &o, &err), err);
    CHECK(c.accepted == 0 && c.rejected == 1);
    CHECK_STR(s.rejects[0], "strict.jsonl:2: run 'r1': id exists with different content");
    CHECK_OK(kb_store_stats_get(&stats, st, &err), err);
    CHECK(stats.n_tasks == 1 && stats.n_runs == 1);
    /* two records of the file with one id and different content: the second is refused */
    const char *twice = "{\"kind\":\"task\",\"id\":\"t3\"}\n"
                        "{\"kind\":\"task\",\"id\":\"t3\",\"name\":\"other\"}\n";
    write_file(path, twice, strlen(twice));
    memset(&s, 0, sizeof s);
    CHECK_OK(kb_ingest_file(&c, st, path, &o, &err), err);
    CHECK(c.accepted == 0 && c.rejected == 1);
    CHECK_STR(s.rejects[0], "strict.jsonl:2: task 't3': id exists with different content");
    CHECK_OK(kb_store_stats_get(&stats, st, &err), err);
    CHECK(stats.n_tasks == 1 && stats.n_runs == 1);
    kb_store_close(st);
}

int main(void)
{
    test_json_lines_skip_bad_records_and_keep_good_ones();
    test_inline_tasks_are_delivered_once();
    test_json_array_file();
    test_detection_of_empty_binary_and_unknown_inputs();
    test_a_ten_megabyte_line_is_read();
    test_optuna_csv_from_a_real_study();
    test_optuna_csv_quoting_bad_rows_and_missing_columns();
    test_mlflow_store_runs_curves_and_half_written_files();
    test_store_batches_count_and_report_progress();
    test_strict_files_are_all_or_nothing();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir());
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", tmpdir());
    }
    return check_exit();
}
