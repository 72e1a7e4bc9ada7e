/* kb/json: records <-> kb JSON, canonical output, run ids, every validation error. */
#include <math.h>
#include <stdint.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "engine/core/sha256.h"
#include "kb/codec.h"
#include "kb/json.h"
#include "kb/json_priv.h"

static kb_json_reader *reader;

/* Read one line; returns the code and leaves the error message in *err. */
static int read1(kb_record *rec, kb_task *task, const char *text, kb_error *err)
{
    return kb_json_read_record(rec, task, reader, text, strlen(text), NULL, err);
}

/* Read `text` and write it back; returns the canonical line (static). */
static const char *canon(const char *text)
{
    static char out[8192];
    kb_record rec;
    kb_task task;
    kb_error err = KB_ERROR_INIT;
    out[0] = '\0';
    int rc = read1(&rec, &task, text, &err);
    if (rc != KB_OK) {
        snprintf(out, sizeof out, "ERROR %s", err.msg);
        return out;
    }
    kb_buf b = KB_BUF_INIT;
    if (task.id != NULL) {
        kb_json_write_task(&b, &task, &err);
        kb_buf_putc(&b, '\n');
    }
    kb_json_write_record(&b, &rec, &err);
    snprintf(out, sizeof out, "%s", b.data);
    kb_buf_release(&b);
    kb_record_release(&rec);
    kb_task_release(&task);
    return out;
}

/* The error message for `text`, which must be rejected with KB_EFORMAT. */
static const char *error_of(const char *text)
{
    static kb_error err;
    kb_record rec;
    kb_task task;
    kb_error_clear(&err);
    int rc = read1(&rec, &task, text, &err);
    if (rc == KB_OK) {
        kb_record_release(&rec);
        kb_task_release(&task);
        return "(accepted)";
    }
    CHECK(rc == KB_EFORMAT);
    return err.msg;
}

static const char *full_run =
    "{\"kind\":\"run\",\"id\":\"r1\",\"task_id\":\"t1\",\"space\":\"svm\","
    "\"config\":{\"C\":1.5,\"degree\":3,\"kernel\":\"rbf\",\"shrinking\":true,\"w\":2.0},"
    "\"backbone_id\":\"b1\",\"fidelity\":{\"epochs\":20,\"frac\":0.5},\"status\":\"ok\","
    "\"objective\":\"val_accuracy\",\"direction\":\"maximize\","
    "\"metrics\":{\"loss\":0.25,\"val_accuracy\":0.93},"
    "\"curve\":[{\"step\":0,\"loss\":1.9,\"val_accuracy\":0.4},{\"step\":1,\"loss\":0.5}],"
    "\"cost_s\":12.5,\"team\":\"ml\",\"started_at\":\"2024-05-01T12:00:00Z\","
    "\"finished_at\":\"2024-05-01T12:00:12.500000Z\",\"study_id\":\"s1\","
    "\"extra\":{\"a\":[1,2.5,\"x\"],\"b\":{\"c\":null}}}";

static void test_run_round_trip_keeps_every_field(void)
{
    kb_record rec;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(read1(&rec, NULL, full_run, &err), err);
    const kb_run *r = &rec.run;
    CHECK(rec.kind == KB_RECORD_RUN);
    CHECK_STR(r->id, "r1");
    CHECK_STR(r->task_id, "t1");
    CHECK_STR(r->space, "svm");
    CHECK(r->n_config == 5);
    CHECK_STR(r->config[0].name, "C");
    CHECK(r->config[0].value.type == KB_VALUE_TYPE_FLOAT && r->config[0].value.f == 1.5);
    CHECK(r->config[1].value.type == KB_VALUE_TYPE_INT && r->config[1].value.i == 3);
    CHECK(r->config[2].value.type == KB_VALUE_TYPE_STR);
    CHECK_STR(r->config[2].value.s, "rbf");
    CHECK(r->config[3].value.type == KB_VALUE_TYPE_BOOL && r->config[3].value.b == 1);
    CHECK(r->config[4].value.type == KB_VALUE_TYPE_FLOAT && r->config[4].value.f == 2.0);
    CHECK_STR(r->backbone_id, "b1");
    CHECK(r->n_fidelity == 2 && r->fidelity[0].value.i == 20);
    CHECK(r->status == KB_RUN_STATUS_OK);
    CHECK_STR(r->objective, "val_accuracy");
    CHECK(r->direction == KB_DIRECTION_MAXIMIZE);
    CHECK(r->n_metrics == 2 && r->metrics[1].value == 0.93);
    CHECK(r->n_curve == 2);
    CHECK_STR(r->curve[0].metric, "loss");
    CHECK(r->curve[0].n == 2 && r->curve[0].steps[1] == 1 && r->curve[0].values[1] == 0.5);
    CHECK_STR(r->curve[1].metric, "val_accuracy");
    CHECK(r->curve[1].n == 1 && r->curve[1].values[0] == 0.4);
    CHECK(r->cost_s == 12.5);
    CHECK_STR(r->team, "ml");
    CHECK(r->started_at == INT64_C(1714564800) * 1000000);
    CHECK(r->finished_at == INT64_C(1714564812) * 1000000 + 500000);
    CHECK_STR(r->study_id, "s1");
    CHECK_STR(r->extra, "{\"a\":[1,2.5,\"x\"],\"b\":{\"c\":null}}");
    kb_record_release(&rec);
    /* the input is already canonical: writing it back gives the same bytes */
    CHECK_STR(canon(full_run), full_run);
}

static void test_other_kinds_round_trip(void)
{
    const char *task =
        "{\"kind\":\"task\",\"id\":\"t1\",\"name\":\"wine\",\"fingerprint\":\"abc\","
        "\"type\":\"classification\",\"target\":\"class\",\"features\":{\"a\":1,\"b\":null},"
        "\"feature_set\":\"kb-mf-1\",\"tags\":[\"uci\",\"small\"],\"team\":\"ml\","
        "\"created_at\":\"2024-01-02T03:04:05.000001Z\",\"extra\":{\"k\":true}}";
    CHECK_STR(canon(task), task);
    const char *bb =
        "{\"kind\":\"backbone\",\"id\":\"b1\",\"family\":\"kb-net\",\"arch\":\"C(3,32)+FC(64)\","
        "\"input_signature\":\"image:1x28x28\",\"source_task\":\"t1\",\"uri\":\"file:///w\","
        "\"team\":\"ml\",\"created_at\":\"1999-12-31T23:59:59Z\"}";
    CHECK_STR(canon(bb), bb);
    const char *space =
        "{\"kind\":\"space\",\"name\":\"svm\",\"params\":[{\"name\":\"C\",\"type\":\"float\","
        "\"low\":0.001,\"high\":1000,\"log\":true,\"default_value\":1.0},{\"name\":\"kernel\","
        "\"type\":\"categorical\",\"choices\":[\"rbf\",\"linear\"],\"default_value\":\"rbf\"},"
        "{\"name\":\"gamma\",\"type\":\"float\",\"low\":0.0001,\"high\":10,\"log\":true,"
        "\"cond_parent\":\"kernel\",\"cond_in\":[\"rbf\"]},{\"name\":\"shrink\",\"type\":"
        "\"bool\"},{\"name\":\"degree\",\"type\":\"int\",\"low\":1,\"high\":5}]}";
    CHECK_STR(canon(space), space);
}

static void test_writer_is_canonical(void)
{
    /* key order, spacing, float typing and number printing are fixed */
    CHECK_STR(canon("{ \"status\" : \"ok\", \"task\" : \"t\", \"kind\":\"run\", \"id\":\"x\","
                    " \"config\": {\"b\": 1e2, \"a\": 0.1000, \"n\": null}, \"cost_s\": 3 }"),
              "{\"kind\":\"run\",\"id\":\"x\",\"task_id\":\"t\",\"config\":{\"a\":0.1,\"b\":100.0},"
              "\"status\":\"ok\",\"direction\":\"minimize\",\"cost_s\":3}");
    /* curve rows: sorted by step (stable), metrics sorted by name; repeated steps kept */
    CHECK_STR(canon("{\"kind\":\"run\",\"id\":\"x\",\"task\":\"t\",\"status\":\"ok\",\"curve\":"
                    "[{\"step\":2,\"b\":1},{\"step\":1,\"b\":2,\"a\":3},{\"step\":2,\"b\":4}]}"),
              "{\"kind\":\"run\",\"id\":\"x\",\"task_id\":\"t\",\"status\":\"ok\",\"direction\":"
              "\"minimize\",\"curve\":[{\"step\":1,\"a\":3,\"b\":2},{\"step\":2,\"b\":1},"
              "{\"step\":2,\"b\":4}]}");
    /* doubles: shortest of 15..17 digits that reads back exactly */
    kb_buf b = KB_BUF_INIT;
    kb_json_put_double(&b, 0.1);
    kb_buf_putc(&b, ' ');
    kb_json_put_double(&b, 1.0 / 3.0);
    kb_buf_putc(&b, ' ');
    kb_json_put_double(&b, 1e300);
    kb_buf_putc(&b, ' ');
    kb_json_put_double(&b, NAN);
    CHECK_STR(b.data, "0.1 0.3333333333333333 1e+300 \"nan\"");
    kb_buf_reset(&b);
    kb_json_put_string(&b, "a\"b\\c\n\x01\xc3\xa9");
    CHECK_STR(b.data, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"");
    kb_buf_release(&b);
    /* escapes decode, including a surrogate pair */
    CHECK_STR(canon("{\"kind\":\"task\",\"id\":\"\\u00e9\\ud83d\\ude00\\/\"}"),
              "{\"kind\":\"task\",\"id\":\"\xc3\xa9\xf0\x9f\x98\x80/\"}");
}

static void test_inline_task_and_task_id_forms(void)
{
    CHECK_STR(canon("{\"kind\":\"run\",\"id\":\"r\",\"status\":\"ok\",\"task\":{\"id\":\"t9\","
                    "\"name\":\"n\"}}"),
              "{\"kind\":\"task\",\"id\":\"t9\",\"name\":\"n\"}\n"
              "{\"kind\":\"run\",\"id\":\"r\",\"task_id\":\"t9\",\"status\":\"ok\","
              "\"direction\":\"minimize\"}");
    CHECK_STR(canon("{\"kind\":\"run\",\"id\":\"r\",\"status\":\"ok\",\"task_id\":\"t\"}"),
              "{\"kind\":\"run\",\"id\":\"r\",\"task_id\":\"t\",\"status\":\"ok\","
              "\"direction\":\"minimize\"}");
    CHECK_STR(error_of("{\"kind\":\"run\",\"status\":\"ok\",\"task\":{\"name\":\"n\"}}"),
              "field 'task.id': required (or a 'fingerprint' to derive it from)");
    /* a task without id takes it from its fingerprint */
    CHECK_STR(canon("{\"kind\":\"task\",\"fingerprint\":\"0123456789abcdef0123\"}"),
              "{\"kind\":\"task\",\"id\":\"t-0123456789abcdef\",\"fingerprint\":"
              "\"0123456789abcdef0123\"}");
}

static void test_run_id_is_derived_from_content(void)
{
    const char *a = "{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\",\"metrics\":{\"m\":1}}";
    const char *b = "{\"metrics\":{\"m\":1.0}, \"status\":\"ok\",\"task_id\":\"t\",\"kind\":\"run\"}";
    const char *c = "{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\",\"metrics\":{\"m\":2}}";
    kb_record ra, rb, rc_;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(read1(&ra, NULL, a, &err), err);
    CHECK_OK(read1(&rb, NULL, b, &err), err);
    CHECK_OK(read1(&rc_, NULL, c, &err), err);
    CHECK(strlen(ra.run.id) == 34 && strncmp(ra.run.id, "r-", 2) == 0);
    CHECK_STR(ra.run.id, rb.run.id);
    CHECK(strcmp(ra.run.id, rc_.run.id) != 0);
    /* the id is the hash of the canonical text without the id */
    kb_buf buf = KB_BUF_INIT;
    kb_json_write_run(&buf, &ra.run, 0, &err);
    CHECK_STR(buf.data, "{\"kind\":\"run\",\"task_id\":\"t\",\"status\":\"ok\",\"direction\":"
                        "\"minimize\",\"metrics\":{\"m\":1}}");
    unsigned char d[32];
    char hex[65];
    kb_sha256_digest(buf.data, buf.len, d);
    kb_sha256_hex(hex, d, 16);
    CHECK(strcmp(ra.run.id + 2, hex) == 0);
    kb_buf_release(&buf);
    kb_record_release(&ra);
    kb_record_release(&rb);
    kb_record_release(&rc_);
}

static void test_non_finite_values_only_when_diverged(void)
{
    const char *ok = "{\"kind\":\"run\",\"id\":\"r\",\"task\":\"t\",\"status\":\"diverged\","
                     "\"metrics\":{\"loss\":\"nan\"},\"curve\":[{\"step\":0,\"loss\":\"inf\"},"
                     "{\"step\":1,\"loss\":\"-inf\"}]}";
    CHECK_STR(canon(ok), "{\"kind\":\"run\",\"id\":\"r\",\"task_id\":\"t\",\"status\":"
                         "\"diverged\",\"direction\":\"minimize\",\"metrics\":{\"loss\":\"nan\"},"
                         "\"curve\":[{\"step\":0,\"loss\":\"inf\"},{\"step\":1,\"loss\":\"-inf\"}]}");
    CHECK_STR(error_of("{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\","
                       "\"metrics\":{\"loss\":\"nan\"}}"),
              "field 'metrics.loss': non-finite value needs status 'diverged'");
    CHECK_STR(error_of("{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\","
                       "\"curve\":[{\"step\":4,\"loss\":\"inf\"}]}"),
              "field 'curve.loss': non-finite value at step 4 needs status 'diverged'");
    CHECK_STR(error_of("{\"kind\":\"run\",\"task\":\"t\",\"status\":\"diverged\","
                       "\"metrics\":{\"loss\":NaN}}"),
              "invalid JSON: NaN and Infinity are not JSON (write \"nan\", \"inf\") at "
              "column 64");
    CHECK(strstr(error_of("{\"kind\":\"run\",\"metrics\":{\"loss\":-Infinity}}"),
                 "not JSON") != NULL);
    CHECK(strstr(error_of("{\"kind\":\"run\",\"metrics\":{\"loss\":Infinity}}"),
                 "not JSON") != NULL);
    CHECK_STR(error_of("{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\","
                       "\"metrics\":{\"loss\":1e999}}"),
              "field 'metrics.loss': number out of range");
}

static void test_each_validation_error_names_the_field(void)
{
    struct {
        const char *in, *msg;
    } cases[] = {
        {"{\"id\":\"x\"}", "field 'kind': required (task, run, backbone, space or study)"},
        {"{\"kind\":\"trial\"}",
         "field 'kind': unknown kind 'trial' (expected task, run, backbone, space or study)"},
        {"{\"kind\":3}", "field 'kind': expected a string, got a number"},
        {"{\"kind\":\"run\",\"status\":\"ok\"}",
         "field 'task_id': required (a task id, or the task inline as 'task')"},
        {"{\"kind\":\"run\",\"task\":\"t\"}",
         "field 'status': required (ok, failed, diverged, pruned or running)"},
        {"{\"kind\":\"run\",\"task\":\"t\",\"status\":\"done\"}",
         "field 'status': unknown status 'done' (expected ok, failed, diverged, pruned or "
         "running)"},
        {"{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\",\"cost_s\":-1}",
         "field 'cost_s': must be >= 0"},
        {"{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\",\"cost_s\":\"3\"}",
         "field 'cost_s': expected a number, got a string"},
        {"{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\",\"config\":{\"lr\":[1]}}",
         "field 'config.lr': expected a number, string or bool, got an array"},
        {"{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\",\"config\":[]}",
         "field 'config': expected an object, got an array"},
        {"{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\",\"curve\":[{\"loss\":1}]}",
         "field 'curve[0].step': required"},
        {"{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\",\"curve\":[{\"step\":1.5}]}",
         "field 'curve[0].step': expected a non-negative integer"},
        {"{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\",\"curve\":[{\"step\":-1}]}",
         "field 'curve[0].step': expected a non-negative integer"},
        {"{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\",\"curve\":[{\"step\":1,\"l\":true}]}",
         "field 'curve[0].l': expected a number or \"nan\", \"inf\", \"-inf\", got true"},
        {"{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\",\"started_at\":\"2024-05-01\"}",
         "field 'started_at': expected an ISO-8601 UTC time like 2024-05-01T12:00:00.5Z, got "
         "'2024-05-01'"},
        {"{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\",\"started_at\":"
         "\"2024-02-30T00:00:00Z\"}",
         "field 'started_at': expected an ISO-8601 UTC time like 2024-05-01T12:00:00.5Z, got "
         "'2024-02-30T00:00:00Z'"},
        {"{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\",\"started_at\":"
         "\"2024-01-02T00:00:00Z\",\"finished_at\":\"2024-01-01T00:00:00Z\"}",
         "field 'finished_at': is before started_at"},
        {"{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\",\"objective\":\"acc\"}",
         "field 'direction': required when 'objective' is set"},
        {"{\"kind\":\"run\",\"task\":\"t\",\"status\":\"ok\",\"direction\":\"up\"}",
         "field 'direction': unknown direction 'up' (expected minimize or maximize)"},
        {"{\"kind\":\"run\",\"task\":\"t\",\"task_id\":\"t\",\"status\":\"ok\"}",
         "field 'task_id': the task is given twice ('task' and 'task_id')"},
        {"{\"kind\":\"run\",\"task\":\"\",\"status\":\"ok\"}", "field 'task': must not be empty"},
        {"{\"kind\":\"run\",\"task\":\"a\\u0000b\",\"status\":\"ok\"}",
         "field 'task': contains a NUL character"},
        {"{\"kind\":\"task\",\"id\":\"t\",\"tags\":[1]}",
         "field 'tags[0]': expected a string, got a number"},
        {"{\"kind\":\"task\",\"id\":\"t\",\"type\":\"ranking\"}",
         "field 'type': unknown task type 'ranking' (expected classification, regression or "
         "unknown)"},
        {"{\"kind\":\"task\",\"id\":\"t\",\"features\":{\"a\":\"nan\"}}",
         "field 'features.a': expected a number, got a string"},
        {"{\"kind\":\"backbone\",\"family\":\"f\"}", "field 'id': required"},
        {"{\"kind\":\"space\",\"params\":[]}", "field 'name': required"},
        {"{\"kind\":\"space\",\"name\":\"s\",\"params\":[{\"name\":\"x\",\"type\":\"float\","
         "\"low\":1}]}",
         "field 'params[0].high': required for a float or int parameter"},
        {"{\"kind\":\"space\",\"name\":\"s\",\"params\":[{\"name\":\"x\",\"type\":\"real\"}]}",
         "field 'params[0].type': unknown parameter type 'real' (expected float, int, "
         "categorical or bool)"},
        {"{\"kind\":\"task\",\"id\":\"t\",\"id\":\"u\"}", "field 'id': duplicate key"},
        {"{\"kind\":\"task\",\"id\":\"t\",\"x\":1,\"extra\":{\"x\":2}}",
         "field 'x': given both as a field and inside 'extra'"},
        {"{\"kind\":\"task\",\"id\":\"t\"", "invalid JSON: expected ',' or '}' at the end of "
                                            "the input (truncated?)"},
        {"{\"kind\":\"task\",\"id\":\"t", "invalid JSON: unterminated string at the end of the "
                                          "input (truncated?)"},
        {"{\"kind\":\"task\",\"id\":\"\xff\"}", "invalid UTF-8 at column 22"},
        {"{\"kind\":\"task\",\"id\":\"\xc0\xaf\"}", "invalid UTF-8 at column 22"},
        {"{\"kind\":\"task\",\"id\":\"\xed\xa0\x80\"}", "invalid UTF-8 at column 22"},
        {"{\"kind\":\"task\",\"id\":\"\\ud800\"}",
         "invalid JSON: lone high surrogate in \\u escape at column 22"},
        {"{\"kind\":\"task\",\"id\":\"t\"} x",
         "invalid JSON: unexpected data after the JSON value at column 26"},
        {"[1]", "expected a record object, got an array"},
        {"{\"kind\":\"task\",\"id\":01}", "invalid JSON: leading zero in number at column 22"},
        {"", "invalid JSON: expected a value at the end of the input (truncated?)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = error_of(cases[i].in);
        if (strcmp(got, cases[i].msg) != 0) {
            fprintf(stderr, "case %zu: %s\n  got:  %s\n  want: %s\n", i, cases[i].in, got,
                    cases[i].msg);
        }
        CHECK_STR(got, cases[i].msg);
    }
}

typedef struct warn_log {
    int n;
    char last[256];
} warn_log;

static void on_warn(kb_log_level level, const char *msg, void *payload)
{
    warn_log *w = payload;
    (void)level;
    w->n++;
    snprintf(w->last, sizeof w->last, "%s", msg);
}

static void test_unknown_fields_go_to_extra_with_a_warning(void)
{
    warn_log w = {0, {0}};
    kb_log log = {on_warn, &w};
    kb_record rec;
    kb_error err = KB_ERROR_INIT;
    const char *in = "{\"kind\":\"run\",\"id\":\"r\",\"task\":\"t\",\"status\":\"ok\","
                     "\"zeta\":{\"b\":1,\"a\":[true]},\"alpha\":\"x\",\"extra\":{\"m\":0.5}}";
    CHECK_OK(kb_json_read_record(&rec, NULL, reader, in, strlen(in), &log, &err), err);
    CHECK(w.n == 2);
    CHECK_STR(w.last, "field 'alpha': unknown run field kept under 'extra'");
    CHECK_STR(rec.run.extra, "{\"alpha\":\"x\",\"m\":0.5,\"zeta\":{\"a\":[true],\"b\":1}}");
    kb_record_release(&rec);
}

static void test_times_parse_and_format(void)
{
    int64_t t;
    CHECK(kb_json_parse_time(&t, "1970-01-01T00:00:00Z", 20, 0) == KB_OK && t == 0);
    CHECK(kb_json_parse_time(&t, "1969-12-31T23:59:59.5Z", 22, 0) == KB_OK && t == -500000);
    CHECK(kb_json_parse_time(&t, "2024-05-01T14:00:00+02:00", 25, 0) == KB_OK &&
          t == INT64_C(1714564800) * 1000000);
    CHECK(kb_json_parse_time(&t, "2024-05-01 12:00:00.25", 22, 0) == KB_EFORMAT);
    CHECK(kb_json_parse_time(&t, "2024-05-01 12:00:00.25", 22, 1) == KB_OK &&
          t == INT64_C(1714564800) * 1000000 + 250000);
    char s[32];
    kb_json_format_time(s, -500000);
    CHECK_STR(s, "1969-12-31T23:59:59.500000Z");
    kb_json_format_time(s, INT64_C(951782400) * 1000000); /* a leap day */
    CHECK_STR(s, "2000-02-29T00:00:00Z");
}

static void test_numbers_keep_int_and_float_apart(void)
{
    kb_record rec;
    kb_error err = KB_ERROR_INIT;
    const char *in = "{\"kind\":\"run\",\"id\":\"r\",\"task\":\"t\",\"status\":\"ok\",\"config\":"
                     "{\"a\":9007199254740993,\"b\":-9223372036854775808,\"c\":1E3,"
                     "\"d\":123456789012345678901234,\"e\":-0.0,\"f\":2.5e-3}}";
    CHECK_OK(read1(&rec, NULL, in, &err), err);
    const kb_param *p = rec.run.config;
    CHECK(p[0].value.type == KB_VALUE_TYPE_INT && p[0].value.i == INT64_C(9007199254740993));
    CHECK(p[1].value.type == KB_VALUE_TYPE_INT && p[1].value.i == INT64_MIN);
    CHECK(p[2].value.type == KB_VALUE_TYPE_FLOAT && p[2].value.f == 1000.0);
    CHECK(p[3].value.type == KB_VALUE_TYPE_FLOAT && p[3].value.f == 1.2345678901234568e23);
    CHECK(p[4].value.type == KB_VALUE_TYPE_FLOAT && p[4].value.f == 0.0 && signbit(p[4].value.f));
    CHECK(p[5].value.type == KB_VALUE_TYPE_FLOAT && p[5].value.f == 0.0025);
    kb_record_release(&rec);
}

typedef struct arr_seen {
    size_t good, bad, lines[8];
} arr_seen;

static int on_element(kb_record *rec, kb_task *task, size_t line, const kb_error *rec_err,
                      void *payload)
{
    arr_seen *s = payload;
    if (s->good + s->bad < 8) {
        s->lines[s->good + s->bad] = line;
    }
    if (rec_err == NULL) {
        s->good++;
    } else {
        s->bad++;
    }
    kb_record_release(rec);
    kb_task_release(task);
    return 0;
}

static void test_array_file_reports_lines(void)
{
    const char *in = "[\n {\"kind\":\"task\",\"id\":\"a\"},\n\n {\"kind\":\"nope\"},\n"
                     " {\"kind\":\"task\",\"id\":\"b\"}\n]\n";
    arr_seen s = {0, 0, {0}};
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_json_read_array(reader, in, strlen(in), NULL, on_element, &s, NULL, &err), err);
    CHECK(s.good == 2 && s.bad == 1);
    CHECK(s.lines[0] == 2 && s.lines[1] == 4 && s.lines[2] == 5);
    size_t line = 0;
    CHECK(kb_json_read_array(reader, "[\n{}\n,", 6, NULL, on_element, &s, &line, &err) ==
          KB_EFORMAT);
    CHECK(line == 3);
}

static void test_out_of_memory_is_reported_and_leaks_nothing(void)
{
    /* fail every allocation in turn: each fails cleanly or succeeds */
    for (long n = 0; n < 400; n++) {
        kb_json_reader *r = NULL;
        kb_error err = KB_ERROR_INIT;
        kb_alloc_fail_after(n);
        int rc = kb_json_reader_new(&r, &err);
        if (rc == KB_OK) {
            kb_record rec;
            kb_task task;
            rc = kb_json_read_record(&rec, &task, r, full_run, strlen(full_run), NULL, &err);
            if (rc == KB_OK) {
                kb_buf b = KB_BUF_INIT;
                rc = kb_json_write_record(&b, &rec, &err);
                kb_buf_release(&b);
                kb_record_release(&rec);
                kb_task_release(&task);
            }
        }
        kb_alloc_fail_after(-1);
        kb_json_reader_free(r);
        CHECK(rc == KB_OK || rc == KB_ENOMEM);
        if (rc == KB_OK) {
            break;
        }
    }
}

static const char full_study[] =
    "{\"kind\":\"study\",\"id\":\"st-1\",\"task_id\":\"t1\",\"space\":\"svm\","
    "\"objective\":\"acc\",\"direction\":\"maximize\",\"method\":\"gp\","
    "\"warm_start\":\"nearest\",\"seed\":42,\"neighbours\":[{\"task\":\"t0\",\"weight\":0.7},"
    "{\"task\":\"t2\",\"weight\":\"nan\"}],\"command\":\"kb train svm --C {C}\",\"team\":\"a\","
    "\"created_at\":\"2024-01-02T03:04:05Z\",\"extra\":{\"budget\":40}}";

static void test_study_round_trip_and_errors(void)
{
    CHECK_STR(canon(full_study), full_study);
    kb_record rec;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(read1(&rec, NULL, full_study, &err), err);
    CHECK(rec.kind == KB_RECORD_STUDY && rec.study.seed == 42 && rec.study.n_neighbours == 2);
    CHECK(rec.study.neighbour_weights[0] == 0.7 && isnan(rec.study.neighbour_weights[1]));
    CHECK_STR(rec.study.neighbours[1], "t2");
    CHECK(rec.study.direction == KB_DIRECTION_MAXIMIZE);
    kb_record_release(&rec);
    /* the least a study needs; "task" is accepted for "task_id"; seeds above 2^63 - 1 */
    CHECK_STR(canon("{\"kind\":\"study\",\"id\":\"s\",\"task\":\"t\",\"space\":\"sp\"}"),
              "{\"kind\":\"study\",\"id\":\"s\",\"task_id\":\"t\",\"space\":\"sp\","
              "\"direction\":\"minimize\",\"seed\":0}");
    CHECK_STR(canon("{\"kind\":\"study\",\"id\":\"s\",\"task_id\":\"t\",\"space\":\"sp\","
                    "\"seed\":\"18446744073709551615\"}"),
              "{\"kind\":\"study\",\"id\":\"s\",\"task_id\":\"t\",\"space\":\"sp\","
              "\"direction\":\"minimize\",\"seed\":\"18446744073709551615\"}");
    CHECK_STR(canon("{\"kind\":\"study\",\"id\":\"s\",\"task_id\":\"t\",\"space\":\"sp\","
                    "\"seed\":9223372036854775807}"),
              "{\"kind\":\"study\",\"id\":\"s\",\"task_id\":\"t\",\"space\":\"sp\","
              "\"direction\":\"minimize\",\"seed\":9223372036854775807}");
#define ST(rest) "{\"kind\":\"study\",\"id\":\"s\",\"task_id\":\"t\",\"space\":\"sp\"," rest "}"
    CHECK_STR(error_of("{\"kind\":\"study\",\"task_id\":\"t\",\"space\":\"sp\"}"),
              "field 'id': required");
    CHECK_STR(error_of("{\"kind\":\"study\",\"id\":\"s\",\"space\":\"sp\"}"),
              "field 'task_id': required");
    CHECK_STR(error_of("{\"kind\":\"study\",\"id\":\"s\",\"task_id\":\"t\"}"),
              "field 'space': required");
    CHECK_STR(error_of(ST("\"seed\":-1")),
              "field 'seed': expected a non-negative integer (or a decimal string above "
              "2^63 - 1), got a number");
    CHECK_STR(error_of(ST("\"seed\":\"18446744073709551616\"")),
              "field 'seed': out of range (at most 2^64 - 1)");
    CHECK_STR(error_of(ST("\"seed\":1.5")),
              "field 'seed': expected a non-negative integer (or a decimal string above "
              "2^63 - 1), got a number");
    CHECK_STR(error_of(ST("\"neighbours\":{}")),
              "field 'neighbours': expected an array of {\"task\": id, \"weight\": w}, got an "
              "object");
    CHECK_STR(error_of(ST("\"neighbours\":[{\"task\":\"a\"}]")),
              "field 'neighbours[0].weight': required");
    CHECK_STR(error_of(ST("\"neighbours\":[{\"weight\":1},{\"task\":\"b\",\"w\":1}]")),
              "field 'neighbours[0].task': required");
    CHECK_STR(error_of(ST("\"neighbours\":[{\"task\":\"b\",\"w\":1}]")),
              "field 'neighbours[0].w': unknown field (expected 'task' and 'weight')");
    CHECK_STR(error_of(ST("\"neighbours\":[1]")),
              "field 'neighbours[0]': expected an object, got a number");
    CHECK_STR(error_of(ST("\"direction\":\"up\"")),
              "field 'direction': unknown direction 'up' (expected minimize or maximize)");
    CHECK_STR(error_of(ST("\"task\":\"u\"")),
              "field 'task': the task is given twice ('task' and 'task_id')");
    CHECK_STR(error_of("{\"kind\":\"studies\"}"),
              "field 'kind': unknown kind 'studies' (expected task, run, backbone, space or "
              "study)");
#undef ST
    /* every allocation failing in turn: clean failure or success */
    for (long n = 0; n < 400; n++) {
        kb_alloc_fail_after(n);
        int rc = read1(&rec, NULL, full_study, &err);
        if (rc == KB_OK) {
            kb_buf b = KB_BUF_INIT;
            rc = kb_json_write_record(&b, &rec, &err);
            kb_buf_release(&b);
            kb_record_release(&rec);
        }
        kb_alloc_fail_after(-1);
        CHECK(rc == KB_OK || rc == KB_ENOMEM);
        if (rc == KB_OK) {
            break;
        }
    }
}

/* The string scanner skips plain ASCII 8 bytes at a time: a special byte at any position,
 * at any distance from the end of the input, is still seen */
static void test_string_scanner_sees_special_bytes_anywhere(void)
{
    int ok = 1;
    for (int len = 0; len <= 20; len++) {
        for (int pos = 0; pos <= len; pos++) {
            for (int kind = 0; kind < 4; kind++) {
                char id[64], line[128];
                int k = 0;
                for (int i = 0; i < len; i++) {
                    if (i == pos) {
                        const char *ins[4] = {"\\\"", "\xc3\xa9", "\x01", "\xff"};
                        k += snprintf(id + k, sizeof id - (size_t)k, "%s", ins[kind]);
                    }
                    id[k++] = 'a';
                }
                id[k] = '\0';
                snprintf(line, sizeof line, "{\"kind\":\"task\",\"id\":\"x%s\"}", id);
                kb_record rec;
                kb_error err = KB_ERROR_INIT;
                int rc = read1(&rec, NULL, line, &err);
                int special = pos < len;
                if (!special || kind < 2) {
                    ok &= rc == KB_OK;
                    if (rc == KB_OK) {
                        ok &= strlen(rec.task.id) == 1 + (size_t)len + (special ? 1u + (kind == 1) : 0u);
                        kb_record_release(&rec);
                    }
                } else {
                    ok &= rc == KB_EFORMAT &&
                          strstr(err.msg, kind == 2 ? "control character" : "UTF-8") != NULL;
                }
            }
        }
    }
    CHECK(ok);
}


/* ------------------------------------------------------------------------------------------
 * The streaming run reader against the tree path (kb/json_priv.h): same record, same error,
 * same warnings, for every line it is given.
 */

static void collect_warning(kb_log_level level, const char *msg, void *payload)
{
    kb_buf_printf(payload, "%d:%s\n", (int)level, msg);
}

/* Everything a read produces, as text: code, message, warnings, JSON and codec bytes. */
static void read_outcome(kb_buf *out, const char *text, size_t n, kb_json__path path,
                         kb_json__arena *arena, int *fast)
{
    kb_record rec;
    kb_task task;
    kb_error err = KB_ERROR_INIT;
    kb_buf warnings = KB_BUF_INIT;
    kb_log warn = {collect_warning, &warnings};
    int rc = kb_json__read_record(&rec, &task, reader, text, n, &warn, path, arena, fast, &err);
    kb_buf_printf(out, "rc=%d msg=%s\nwarnings=%s\n", rc, rc == KB_OK ? "" : err.msg,
                  warnings.data != NULL ? warnings.data : "");
    if (rc == KB_OK) {
        if (task.id != NULL) {
            kb_json_write_task(out, &task, &err);
        }
        kb_buf_putc(out, '\n');
        kb_json_write_record(out, &rec, &err);
        kb_buf enc = KB_BUF_INIT;
        CHECK_OK(kb_codec_encode_record(&enc, &rec, &err), err);
        kb_buf_puts(out, "\ncodec=");
        for (size_t i = 0; i < enc.len; i++) {
            kb_buf_printf(out, "%02x", (unsigned char)enc.data[i]);
        }
        kb_buf_release(&enc);
        if (fast == NULL || !*fast || arena == NULL) {
            kb_record_release(&rec);
        }
        kb_task_release(&task);
    }
    kb_buf_release(&warnings);
}

static size_t n_compared, n_fast;

/* One line through the tree path, the streaming reader and the streaming reader in an arena */
static void compare_paths(const char *text, size_t n, kb_json__arena *arena)
{
    kb_buf tree = KB_BUF_INIT, fast = KB_BUF_INIT, in_arena = KB_BUF_INIT;
    int was_fast = 0, was_fast_arena = 0;
    read_outcome(&tree, text, n, KB_JSON__PATH_TREE, NULL, NULL);
    read_outcome(&fast, text, n, KB_JSON__PATH_AUTO, NULL, &was_fast);
    read_outcome(&in_arena, text, n, KB_JSON__PATH_AUTO, arena, &was_fast_arena);
    kb_json__arena_reset(arena);
    int same = strcmp(tree.data, fast.data) == 0 && strcmp(tree.data, in_arena.data) == 0;
    CHECK(same);
    CHECK(was_fast == was_fast_arena);
    if (!same) {
        fprintf(stderr, "line: %.*s\ntree:  %s\nfast:  %s\narena: %s\n", (int)n, text,
                tree.data, fast.data, in_arena.data);
    }
    n_compared++;
    n_fast += (size_t)was_fast;
    kb_buf_release(&tree);
    kb_buf_release(&fast);
    kb_buf_release(&in_arena);
}

/* Every line of a file; in shell scripts, the text from a line's first '{' to its last '}' */
static void compare_file_lines(const char *path, int script, kb_json__arena *arena)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (f == NULL) {
        return;
    }
    kb_buf all = KB_BUF_INIT;
    char tmp[4096];
    size_t got;
    while ((got = fread(tmp, 1, sizeof tmp, f)) > 0) {
        kb_buf_append(&all, tmp, got);
    }
    fclose(f);
    const char *p = all.data, *end = all.data + all.len;
    while (p != NULL && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl != NULL ? nl : end;
        const char *a = p, *b = e;
        if (script) {
            a = memchr(p, '{', (size_t)(e - p));
            while (a != NULL && b > a && b[-1] != '}') {
                b--;
            }
        }
        if (a != NULL && b > a) {
            compare_paths(a, (size_t)(b - a), arena);
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    kb_buf_release(&all);
}

static void test_streaming_reader_matches_the_tree_on_fixtures(kb_json__arena *arena)
{
    const char *src = getenv("KB_SRC");
    CHECK(src != NULL);
    if (src == NULL) {
        return;
    }
    static const char *const corpus[] = {"all_kinds.jsonl",    "edge.jsonl",
                                         "runs_compact.jsonl", "space_backbone.jsonl",
                                         "study.jsonl",        "study_bad.jsonl"};
    static const char *const scripts[] = {"ingest.sh", "export.sh", "store_cmds.sh",
                                          "durability.sh", "kb.sh"};
    char path[4096];
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        snprintf(path, sizeof path, "%s/tests/fuzz/corpus/ingest_jsonl/%s", src, corpus[i]);
        compare_file_lines(path, 0, arena);
    }
    snprintf(path, sizeof path, "%s/tests/data/examples/tasks.jsonl", src);
    compare_file_lines(path, 0, arena);
    for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
        snprintf(path, sizeof path, "%s/tests/cli/%s", src, scripts[i]);
        compare_file_lines(path, 1, arena);
    }
    CHECK(n_compared > 50);
}

/* Run lines the streaming reader takes, and every one-byte mutation of them */
static const char *const fast_lines[] = {
    "{\"kind\":\"run\",\"id\":\"bench-00000001\",\"task_id\":\"bench-task\",\"space\":\"bench\","
    "\"config\":{\"batch_size\":128,\"dropout\":0.25,\"layers\":3,\"lr\":2.6e-05,"
    "\"optimizer\":\"sgd\"},\"status\":\"ok\",\"objective\":\"val_accuracy\","
    "\"direction\":\"maximize\",\"curve\":[{\"step\":0,\"val_accuracy\":0.231287},"
    "{\"step\":1,\"val_accuracy\":0.386207}],\"metrics\":{\"val_accuracy\":0.386207},"
    "\"cost_s\":66.93}",
    " { \"task_id\" : \"t1\" , \"kind\" : \"run\" , \"status\" : \"diverged\" ,\t"
    "\"config\" : { \"z\" : true , \"a\" : -0 , \"m\" : 1E2 , \"\xc3\xa9\" : \"caf\xc3\xa9\" } , "
    "\"curve\" : [ { \"loss\" : 2 , \"step\" : 5 , \"acc\" : 0.5 } , { \"step\" : 6 , "
    "\"acc\" : 0.75 } , { \"step\" : 6 } ] , \"metrics\" : { \"z\" : 1 , \"a\" : 0.5 } } ",
    "{\"kind\":\"run\",\"id\":\"r9\",\"task_id\":\"t1\",\"backbone_id\":\"b1\","
    "\"fidelity\":{\"epochs\":20,\"frac\":0.5},\"status\":\"pruned\",\"team\":\"\","
    "\"started_at\":\"2024-05-01T12:00:00Z\",\"finished_at\":\"2024-05-01T12:00:12.5Z\","
    "\"study_id\":\"s1\",\"cost_s\":0,\"config\":{},\"metrics\":{},\"curve\":[]}",
};

static void test_streaming_reader_matches_the_tree_on_mutations(kb_json__arena *arena)
{
    static const char subst[] = {'"', '\\', ',', '}', ']', '{', '[', ':', ' ', '0', '9', '-',
                                 'e', '.', 'n', 'x', '\x80', '\xff', '\x01', '\n'};
    size_t n_subst = getenv("KB_SANITIZED") != NULL ? 8 : sizeof subst;
    size_t fast_before = n_fast;
    for (size_t l = 0; l < sizeof fast_lines / sizeof fast_lines[0]; l++) {
        const char *line = fast_lines[l];
        size_t n = strlen(line);
        size_t before = n_fast;
        compare_paths(line, n, arena);
        CHECK(n_fast == before + 1); /* the base line itself goes the streaming way */
        char *buf = kb_malloc(n + 2);
        for (size_t i = 0; i < n; i++) {
            compare_paths(line, i, arena); /* truncated */
            memcpy(buf, line, i); /* byte i deleted */
            memcpy(buf + i, line + i + 1, n - i - 1);
            compare_paths(buf, n - 1, arena);
            memcpy(buf, line, i + 1); /* byte i doubled */
            memcpy(buf + i + 1, line + i, n - i);
            compare_paths(buf, n + 1, arena);
            memcpy(buf, line, n);
            for (size_t k = 0; k < n_subst; k++) {
                buf[i] = subst[k];
                compare_paths(buf, n, arena);
            }
        }
        kb_free(buf);
    }
    CHECK(n_fast > fast_before + 100); /* many mutations are still good runs */
}

/* Numbers of every shape in the positions the streaming reader reads them from */
static void test_streaming_reader_numbers_match_the_tree(kb_json__arena *arena)
{
    static const char *const numbers[] = {
        "0", "-0", "7", "-7", "1234567", "12345678", "123456789", "0.5", "-0.5", "0.1234567",
        "0.12345678", "1.123456789012", "12345670.1234567", "1234567.1234567", "1e5", "1E-5",
        "2.5e-05", "1.", "01", "-", "-a", "1.5e", "1.5e+", "123456789012345678",
        "1234567890123456789", "-9223372036854775808", "9223372036854775808",
        "9007199254740993", "0.30000000000000004", "1e400", "-1e400", "4.9e-324",
        "1.7976931348623157e308", "0.000001", "100000000.5", "3.0", "1.0e0", "00.5", "-.5",
        "0x10", "1_000", "+1", "1.5.5", "1e5.5", "2e22", "2e23", "0.0000000000000000000001"};
    size_t before = n_fast;
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        char line[1024];
        const char *x = numbers[i];
        /* as a config value, a metric and a curve value; then as steps and cost_s */
        for (int k = 0; k < 2; k++) {
            int len = k == 0 ? snprintf(line, sizeof line,
                                        "{\"kind\":\"run\",\"task_id\":\"t\",\"status\":\"ok\","
                                        "\"config\":{\"a\":%s,\"b\":1},\"metrics\":{\"m\":%s},"
                                        "\"curve\":[{\"step\":1,\"m\":%s},{\"step\":2,\"m\":%s}],",
                                        x, x, x, x)
                             : snprintf(line, sizeof line,
                                        "{\"kind\":\"run\",\"task_id\":\"t\",\"status\":\"ok\","
                                        "\"curve\":[{\"step\":%s,\"m\":1},{\"step\":%s,\"m\":2}],"
                                        "\"cost_s\":%s,\"space\":\"%s\",",
                                        x, x, x, x);
            /* every number more than 64 bytes before the end of the line */
            snprintf(line + len, sizeof line - (size_t)len,
                     "\"team\":\"padding padding padding padding padding padding padding\"}");
            compare_paths(line, strlen(line), arena);
        }
    }
    CHECK(n_fast > before + 30);
}

int main(void)
{
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_json_reader_new(&reader, &err), err);
    test_run_round_trip_keeps_every_field();
    test_other_kinds_round_trip();
    test_writer_is_canonical();
    test_inline_task_and_task_id_forms();
    test_run_id_is_derived_from_content();
    test_non_finite_values_only_when_diverged();
    test_each_validation_error_names_the_field();
    test_unknown_fields_go_to_extra_with_a_warning();
    test_times_parse_and_format();
    test_numbers_keep_int_and_float_apart();
    test_array_file_reports_lines();
    test_out_of_memory_is_reported_and_leaks_nothing();
    test_study_round_trip_and_errors();
    test_string_scanner_sees_special_bytes_anywhere();
    kb_json__arena *arena = NULL;
    CHECK_OK(kb_json__arena_new(&arena, &err), err);
    test_streaming_reader_matches_the_tree_on_fixtures(arena);
    test_streaming_reader_matches_the_tree_on_mutations(arena);
    test_streaming_reader_numbers_match_the_tree(arena);
    kb_json__arena_free(arena);
    kb_json_reader_free(reader);
    return check_exit();
}
