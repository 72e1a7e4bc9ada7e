/* engine/curveio: each reader on small files in tests/data/curve, malformed input,
 * incremental feeding. */
#include <math.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "engine/curveio.h"

typedef struct warnings {
    int n;
    char last[320];
} warnings;

static void collect(kb_log_level level, const char *msg, void *payload)
{
    warnings *w = payload;
    if (level == KB_LOG_LEVEL_WARNING) {
        w->n++;
        snprintf(w->last, sizeof w->last, "%s", msg);
    }
}

static kb_curveio_opts collecting(warnings *w)
{
    kb_curveio_opts o = KB_CURVEIO_OPTS_INIT;
    w->n = 0;
    w->last[0] = '\0';
    o.log.fn = collect;
    o.log.payload = w;
    return o;
}

static double cell(const kb_curve *c, const char *name, double step)
{
    const kb_curve_series *s = kb_curve_get(c, name);
    for (size_t i = 0; s != NULL && i < c->n_steps; i++) {
        if (c->steps[i] == step) {
            return s->values[i];
        }
    }
    return -12345;
}

static void test_jsonl_reads_kb_train_output_and_final_line(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = KB_CURVE_INIT;
    CHECK_OK(kb_curveio_read(&c, NULL, check_data_path("curve/kb_train.jsonl"), NULL, &err), err);
    CHECK(c.n_steps == 4 && c.steps[3] == 300);
    CHECK(c.n_series == 8); /* epoch, lr, train_loss, val_loss, val_accuracy, 2 norms, count */
    CHECK(cell(&c, "train_loss", 100) == 1.10);
    CHECK(cell(&c, "val_accuracy", 300) == 0.78);
    CHECK(cell(&c, "epoch", 200) == 1);
    CHECK(kb_curve_get(&c, "step") == NULL);
    CHECK(c.done == 1);
    CHECK_STR(c.status, "ok");
    CHECK(c.n_finals == 3 && strcmp(c.finals[2].name, "test_accuracy") == 0 &&
          c.finals[2].value == 0.77);
    kb_curve_release(&c);
}

static void test_jsonl_keeps_nonfinite_values_as_reported(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = KB_CURVE_INIT;
    CHECK_OK(kb_curveio_read(&c, NULL, check_data_path("curve/diverged.jsonl"), NULL, &err), err);
    const kb_curve_series *l = kb_curve_get(&c, "train_loss");
    CHECK(l != NULL && l->n_nan == 1 && l->first_nan_step == 370 && l->n_values == 2);
    CHECK(cell(&c, "train_loss", 360) == 1e30);
    CHECK(isinf(cell(&c, "weight_norm", 370)));
    const kb_curve_series *a = kb_curve_get(&c, "val_accuracy");
    CHECK(a != NULL && a->n_nan == 1 && a->first_nan_step == 360);
    CHECK_STR(c.status, "diverged");
    CHECK(c.n_finals == 1 && isnan(c.finals[0].value));
    kb_curve_release(&c);
}

static void test_jsonl_bad_lines_are_warnings_with_file_and_line(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = KB_CURVE_INIT;
    warnings w;
    kb_curveio_opts o = collecting(&w);
    CHECK_OK(kb_curveio_read(&c, NULL, check_data_path("curve/bad.jsonl"), &o, &err), err);
    CHECK(w.n == 6);
    CHECK(strstr(w.last, "bad.jsonl:8: field 'final': expected an object") != NULL);
    CHECK(cell(&c, "train_loss", 0) == 2.0);
    CHECK(cell(&c, "val_loss", 20) == 1.3);
    CHECK(c.n_steps == 2 && c.done == 0);
    kb_curve_release(&c);

    /* max_warnings caps the messages (plus one "further ... not reported") */
    w.n = 0;
    o.max_warnings = 2;
    CHECK_OK(kb_curveio_read(&c, NULL, check_data_path("curve/bad.jsonl"), &o, &err), err);
    CHECK(w.n == 3 && strstr(w.last, "not reported") != NULL);
    kb_curve_release(&c);
}

static void test_csv_reads_steps_metrics_and_empty_cells(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = KB_CURVE_INIT;
    warnings w;
    kb_curveio_opts o = collecting(&w);
    kb_curveio *r = NULL;
    CHECK_OK(kb_curveio_new(&r, &o, &err), err);
    kb_curveio_free(r);
    CHECK_OK(kb_curveio_read(&c, NULL, check_data_path("curve/curve.csv"), &o, &err), err);
    CHECK(w.n == 3);
    CHECK(c.n_steps == 6 && c.steps[5] == 50);
    CHECK(cell(&c, "train_loss", 10) == 1.9);
    CHECK(isnan(cell(&c, "val_accuracy", 10))); /* empty: missing */
    CHECK(cell(&c, "lr", 10) == 0.1);           /* the CR of a CRLF line is dropped */
    CHECK(cell(&c, "lr", 50) == 0.05);          /* quoted */
    CHECK(kb_curve_get(&c, "train_loss")->n_nan == 1);
    CHECK(cell(&c, "train_loss", 40) == 1.4 && isnan(cell(&c, "val_accuracy", 40)));
    kb_curve_release(&c);
}

static void test_caffe_log_gives_train_test_and_lr_series(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = KB_CURVE_INIT;
    warnings w;
    kb_curveio_opts o = collecting(&w);
    kb_curveio_format fmt = KB_CURVEIO_FORMAT_AUTO;
    CHECK_OK(kb_curveio_read(&c, &fmt, check_data_path("curve/lenet_solver.log"), &o, &err), err);
    CHECK(fmt == KB_CURVEIO_FORMAT_CAFFE);
    CHECK(w.n == 0);
    CHECK(c.n_steps == 11 && c.steps[0] == 0 && c.steps[10] == 1000);
    CHECK(cell(&c, "train_loss", 0) == 2.30581);
    CHECK(cell(&c, "train_loss", 1000) == 0.00463716);
    CHECK(cell(&c, "lr", 100) == 0.00992565);
    CHECK(cell(&c, "val_accuracy", 500) == 0.9731);
    CHECK(cell(&c, "val_loss", 1000) == 0.0411283);
    CHECK(kb_curve_get(&c, "val_accuracy")->n_values == 3);
    CHECK(kb_curve_get(&c, "train_loss")->n_values == 11);
    CHECK(c.done == 1);
    kb_curve_release(&c);

    /* the newer "Iteration N (x iter/s, ...), loss = X" form, -nan and nan */
    w.n = 0;
    CHECK_OK(kb_curveio_read(&c, NULL, check_data_path("curve/caffe_nan.log"), &o, &err), err);
    CHECK(w.n == 1 && strstr(w.last, "caffe_nan.log:17: 'Test net output'") != NULL);
    CHECK(cell(&c, "train_loss", 20) == 87.3365);
    const kb_curve_series *l = kb_curve_get(&c, "train_loss");
    CHECK(l->n_nan == 2 && l->first_nan_step == 40);
    CHECK(kb_curve_get(&c, "val_loss")->first_nan_step == 60);
    CHECK(cell(&c, "val_accuracy", 60) == 0.098);
    CHECK(c.done == 0);
    kb_curve_judgement j;
    CHECK_OK(kb_curve_judge(&j, &c, NULL, &err), err);
    CHECK(j.verdicts[0].kind == KB_CURVE_VERDICT_OVERFLOW && j.verdicts[0].step == 40);
    kb_curve_judgement_release(&j);
    kb_curve_release(&c);
}

static void test_mlflow_metric_file_named_after_its_metric(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = KB_CURVE_INIT;
    warnings w;
    kb_curveio_opts o = collecting(&w);
    CHECK_OK(kb_curveio_read(&c, NULL, check_data_path("curve/mlruns/0/abc123/metrics/val_loss"), &o,
                             &err),
             err);
    CHECK(w.n == 1 && strstr(w.last, "val_loss:4:") != NULL);
    CHECK(c.n_series == 1 && c.n_steps == 4 && cell(&c, "val_loss", 3) == 0.5);
    kb_curve_release(&c);
    /* the two-column form, sniffed from content; the step is the line's index */
    o.format = KB_CURVEIO_FORMAT_AUTO;
    o.metric = "acc";
    CHECK_OK(kb_curveio_read(&c, NULL, check_data_path("curve/mlflow_old"), &o, &err), err);
    CHECK(c.n_steps == 2 && cell(&c, "acc", 1) == 0.7);
    kb_curve_release(&c);
}

static void test_feeding_byte_by_byte_gives_the_same_curve(void)
{
    kb_error err = KB_ERROR_INIT;
    const char *names[] = {"curve/lenet_solver.log", "curve/kb_train.jsonl", "curve/curve.csv"};
    for (size_t f = 0; f < 3; f++) {
        kb_curve whole = KB_CURVE_INIT, bytes = KB_CURVE_INIT;
        const char *path = check_data_path(names[f]);
        CHECK_OK(kb_curveio_read(&whole, NULL, path, NULL, &err), err);
        FILE *fp = fopen(path, "rb");
        CHECK(fp != NULL);
        kb_curveio_opts o = KB_CURVEIO_OPTS_INIT;
        o.source = names[f];
        kb_curveio *r = NULL;
        CHECK_OK(kb_curveio_new(&r, &o, &err), err);
        int ch;
        while (fp != NULL && (ch = fgetc(fp)) != EOF) {
            char b = (char)ch;
            CHECK_OK(kb_curveio_feed(r, &bytes, &b, 1, &err), err);
        }
        CHECK_OK(kb_curveio_finish(r, &bytes, &err), err);
        CHECK(kb_curveio_n_values(r) > 0);
        CHECK(kb_curveio_format_used(r) != KB_CURVEIO_FORMAT_AUTO);
        kb_curveio_free(r);
        if (fp != NULL) {
            fclose(fp);
        }
        CHECK(whole.n_steps == bytes.n_steps && whole.n_series == bytes.n_series);
        for (size_t s = 0; s < whole.n_series && s < bytes.n_series; s++) {
            CHECK_STR(whole.series[s].name, bytes.series[s].name);
            for (size_t i = 0; i < whole.n_steps && i < bytes.n_steps; i++) {
                double a = whole.series[s].values[i], b = bytes.series[s].values[i];
                CHECK((isnan(a) && isnan(b)) || a == b);
            }
        }
        kb_curve_release(&whole);
        kb_curve_release(&bytes);
    }
}

static void test_unreadable_and_empty_inputs_fail_cleanly(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = KB_CURVE_INIT;
    CHECK_CODE(kb_curveio_read(&c, NULL, check_data_path("curve/no-such-file.jsonl"), NULL, &err),
               KB_EIO);
    CHECK(strstr(err.msg, "no-such-file.jsonl") != NULL);
    kb_curve_release(&c);

    /* a partial last line without a newline is parsed by finish */
    kb_curveio *r = NULL;
    kb_curveio_opts o = KB_CURVEIO_OPTS_INIT;
    o.format = KB_CURVEIO_FORMAT_JSONL;
    CHECK_OK(kb_curveio_new(&r, &o, &err), err);
    const char *text = "\n\n{\"step\": 1, \"loss\": 0.5}";
    CHECK_OK(kb_curveio_feed(r, &c, text, strlen(text), &err), err);
    CHECK(c.n_steps == 0);
    CHECK_OK(kb_curveio_finish(r, &c, &err), err);
    CHECK(c.n_steps == 1 && kb_curveio_n_lines(r) == 3 && kb_curveio_n_bad(r) == 0);
    kb_curveio_free(r);
    kb_curve_release(&c);

    /* an over-long line is skipped whole, the next line still read */
    CHECK_OK(kb_curveio_new(&r, &o, &err), err);
    char *big = kb_malloc((1u << 20) + 64);
    CHECK(big != NULL);
    if (big != NULL) {
        memset(big, 'x', (1u << 20) + 10);
        CHECK_OK(kb_curveio_feed(r, &c, big, (1u << 20) + 10, &err), err);
        const char *tail = "xx\n{\"step\": 2, \"loss\": 0.4}\n";
        CHECK_OK(kb_curveio_feed(r, &c, tail, strlen(tail), &err), err);
        CHECK(kb_curveio_n_bad(r) == 1 && c.n_steps == 1 && c.steps[0] == 2);
    }
    kb_free(big);
    kb_curveio_free(r);
    kb_curve_release(&c);

    /* text of no known format: no values, KB_EFORMAT from read */
    CHECK_OK(kb_curveio_new(&r, NULL, &err), err);
    CHECK_OK(kb_curveio_feed(r, &c, "hello\nworld\n", 12, &err), err);
    CHECK(kb_curveio_n_bad(r) == 2 && kb_curveio_n_values(r) == 0);
    kb_curveio_free(r);
    kb_curve_release(&c);

    kb_curveio_format f;
    CHECK_OK(kb_curveio_format_parse(&f, "caffe", &err), err);
    CHECK(f == KB_CURVEIO_FORMAT_CAFFE);
    CHECK_CODE(kb_curveio_format_parse(&f, "xml", &err), KB_EFORMAT);
}

static void test_reader_survives_every_allocation_failure(void)
{
    const char *path = check_data_path("curve/lenet_solver.log");
    for (long n = 0; n < 60; n += 3) {
        kb_error err = KB_ERROR_INIT;
        kb_curve c = KB_CURVE_INIT;
        kb_alloc_fail_after(n);
        int rc = kb_curveio_read(&c, NULL, path, NULL, &err);
        kb_alloc_fail_after(-1);
        CHECK(rc == KB_OK || rc == KB_ENOMEM);
        kb_curve_release(&c);
    }
}

int main(void)
{
    test_jsonl_reads_kb_train_output_and_final_line();
    test_jsonl_keeps_nonfinite_values_as_reported();
    test_jsonl_bad_lines_are_warnings_with_file_and_line();
    test_csv_reads_steps_metrics_and_empty_cells();
    test_caffe_log_gives_train_test_and_lr_series();
    test_mlflow_metric_file_named_after_its_metric();
    test_feeding_byte_by_byte_gives_the_same_curve();
    test_unreadable_and_empty_inputs_fail_cleanly();
    test_reader_survives_every_allocation_failure();
    return check_exit();
}
