/* svmlight reader: sparse to dense, comments, qid, gz, sniffing, every error. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "engine/core/buf.h"
#include "engine/dataset.h"
#include "engine/svmlight.h"

static const char *svm_path(const char *name)
{
    static char path[8192];
    snprintf(path, sizeof path, "%s/%s", check_data_path("svmlight"), name);
    return path;
}

static void check_basic(const kb_dataset *d)
{
    CHECK(d->n_rows == 4 && d->n_cols == 4);
    if (d->n_rows != 4 || d->n_cols != 4) {
        return;
    }
    static const double want[4][4] = {
        {0.5, 0, 0, 1}, {0, 15, 0, 2}, {-2, 0, 0, 3}, {0, 0, 0, 4}};
    int bad = 0;
    for (size_t j = 0; j < 4; j++) {
        const double *c = kb_dataset_col(d, j);
        for (size_t i = 0; i < 4; i++) {
            bad += c[i] != want[j][i];
        }
        char name[8];
        snprintf(name, sizeof name, "f%zu", j + 1);
        CHECK_STR(d->cols[j].name, name);
        CHECK(d->cols[j].type == KB_COLUMN_NUMERIC && d->cols[j].n_missing == 0);
    }
    CHECK(bad == 0);
    CHECK_STR(d->target_name, "label");
    CHECK(d->task == KB_DATASET_TASK_CLASSIFICATION && d->n_classes == 2);
    if (d->n_classes == 2) {
        CHECK_STR(d->class_names[0], "-1");
        CHECK_STR(d->class_names[1], "1");
    }
    CHECK(d->y[0] == 1 && d->y[1] == 0 && d->y[2] == 1 && d->y[3] == 0);
}

static void test_svmlight_reads_sparse_rows_comments_qid_and_gz(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_dataset d, g;
    CHECK_OK(kb_svmlight_read(&d, svm_path("basic.svm"), NULL, &err), err);
    check_basic(&d);
    CHECK_OK(kb_dataset_read(&g, svm_path("basic.svm.gz"), NULL, &err), err);
    check_basic(&g);
    CHECK_STR(d.fingerprint, g.fingerprint);
    kb_dataset_release(&d);
    kb_dataset_release(&g);
}

static void test_svmlight_regression_labels_and_forced_task(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    CHECK_OK(kb_dataset_read(&d, svm_path("regression.txt"), NULL, &err), err);
    CHECK(d.task == KB_DATASET_TASK_REGRESSION && d.n_rows == 5 && d.n_cols == 2);
    CHECK(d.y[0] == 3.5 && d.y[4] == 10.5);
    CHECK(kb_dataset_col(&d, 1)[4] == 3 && kb_dataset_col(&d, 0)[1] == 0);
    kb_dataset_release(&d);
    kb_dataset_opts o = KB_DATASET_OPTS_INIT;
    o.task = KB_DATASET_TASK_CLASSIFICATION;
    CHECK_OK(kb_svmlight_read(&d, svm_path("regression.txt"), &o, &err), err);
    CHECK(d.n_classes == 5);
    if (d.n_classes == 5) {
        CHECK_STR(d.class_names[0], "1.125");
        CHECK_STR(d.class_names[4], "10.5");
    }
    kb_dataset_release(&d);
}

static void test_svmlight_is_sniffed_without_an_extension(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    CHECK_OK(kb_dataset_read(&d, svm_path("sniff_me"), NULL, &err), err);
    CHECK(d.n_rows == 4 && d.n_cols == 2 && d.n_classes == 2);
    kb_dataset_release(&d);
    CHECK(kb_svmlight_sniff("# c\n\n1 qid:3 1:2\n", 17) == 1);
    CHECK(kb_svmlight_sniff("a,b\n1,2\n", 8) == 0);
    CHECK(kb_svmlight_sniff("1\n", 2) == 0);
}

static void expect_error(const char *name, const char *msg)
{
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    CHECK_CODE(kb_svmlight_read(&d, svm_path(name), NULL, &err), KB_EFORMAT);
    const char *base = strrchr(err.msg, '/');
    CHECK_STR(base != NULL ? base + 1 : err.msg, msg);
    CHECK(d.x == NULL && d.cols == NULL && d.y == NULL);
}

static void test_svmlight_errors_name_file_line_and_column(void)
{
    expect_error("bad_value.svm", "bad_value.svm:2: column 'f2': not a number in '2:x'");
    expect_error("index_zero.svm",
                 "index_zero.svm:2: column 'f0': index 0 in '0:1' (indices start at 1)");
    expect_error("decreasing.svm",
                 "decreasing.svm:2: column 'f2': index not above the previous one in '2:1'");
    expect_error("repeated.svm",
                 "repeated.svm:2: column 'f2': index not above the previous one in '2:3'");
    expect_error("malformed.svm",
                 "malformed.svm:2: column '#1': malformed pair '1-1' (expected index:value)");
    expect_error("malformed2.svm",
                 "malformed2.svm:2: column '#1': malformed pair ':5' (expected index:value)");
    expect_error("bad_label.svm", "bad_label.svm:1: column 'label': not a number 'abc'");
    expect_error("empty.svm", "empty.svm:2: no examples (empty file)");
    expect_error("too_large.svm",
                 "too_large.svm:2: column 'f16777217': index too large in '16777217:1'");
}

static void test_svmlight_from_memory_and_long_lines(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    CHECK_OK(kb_svmlight_read_mem(&d, "1 2:3", 5, "m.svm", NULL, &err), err);
    CHECK(d.n_rows == 1 && d.n_cols == 2 && kb_dataset_col(&d, 1)[0] == 3);
    kb_dataset_release(&d);
    /* one line of 300,000 pairs (about 3 MB) spans several buffer refills */
    kb_buf b = KB_BUF_INIT;
    size_t n_pairs = 300000;
    int rc = kb_buf_puts(&b, "0 1:1\n2");
    for (size_t k = 1; rc == KB_OK && k <= n_pairs; k++) {
        rc = kb_buf_printf(&b, " %zu:%zu", k, k % 10);
    }
    rc |= kb_buf_puts(&b, "\n");
    CHECK(rc == KB_OK);
    CHECK_OK(kb_svmlight_read_mem(&d, b.data, b.len, "long.svm", NULL, &err), err);
    CHECK(d.n_rows == 2 && d.n_cols == n_pairs);
    if (d.n_cols == n_pairs) {
        size_t bad = 0;
        for (size_t k = 1; k <= n_pairs; k++) {
            bad += kb_dataset_col(&d, k - 1)[1] != (double)(k % 10);
        }
        CHECK(bad == 0);
    }
    kb_dataset_release(&d);
    kb_buf_release(&b);
}

static void test_svmlight_out_of_memory_paths(void)
{
    int bad = 0;
    for (long n = 0; n < 200; n++) {
        kb_error err = KB_ERROR_INIT;
        kb_dataset d;
        kb_alloc_fail_after(n);
        int rc = kb_svmlight_read(&d, svm_path("basic.svm"), NULL, &err);
        kb_alloc_fail_after(-1);
        if (rc == KB_OK) {
            check_basic(&d);
            kb_dataset_release(&d);
            break;
        }
        bad += rc != KB_ENOMEM;
    }
    CHECK(bad == 0);
}

int main(void)
{
    test_svmlight_reads_sparse_rows_comments_qid_and_gz();
    test_svmlight_regression_labels_and_forced_task();
    test_svmlight_is_sniffed_without_an_extension();
    test_svmlight_errors_name_file_line_and_column();
    test_svmlight_from_memory_and_long_lines();
    test_svmlight_out_of_memory_paths();
    return check_exit();
}
