/* CSV reader: RFC 4180 details, types, missing values, targets, streaming, every error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "engine/csv.h"
#include "engine/dataset.h"

static const char *csv_path(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s", check_data_path("csv"));
    size_t n = strlen(path);
    snprintf(path + n, sizeof path - n, "/%s", name);
    return path;
}

static int read_csv(kb_dataset *d, const char *name, const kb_dataset_opts *o, kb_error *err)
{
    return kb_csv_read(d, csv_path(name), o, err);
}

static int is_nan(double v)
{
    return isnan(v);
}

static void check_basic(const kb_dataset *d)
{
    CHECK(d->n_rows == 5);
    CHECK(d->n_cols == 3);
    CHECK_STR(d->cols[0].name, "a");
    CHECK_STR(d->cols[1].name, "b");
    CHECK_STR(d->cols[2].name, "c");
    CHECK_STR(d->target_name, "target");
    CHECK(d->cols[0].type == KB_COLUMN_NUMERIC);
    CHECK(d->cols[1].type == KB_COLUMN_CATEGORICAL);
    CHECK(d->cols[2].type == KB_COLUMN_CATEGORICAL);
    const double *a = kb_dataset_col(d, 0), *b = kb_dataset_col(d, 1), *c = kb_dataset_col(d, 2);
    CHECK(a[0] == 1.0 && a[1] == 2.5 && is_nan(a[2]) && is_nan(a[3]) && a[4] == -300.0);
    CHECK(d->cols[0].n_missing == 2);
    CHECK(d->cols[1].n_levels == 3);
    if (d->cols[1].n_levels == 3) {
        CHECK_STR(d->cols[1].levels[0], "x");
        CHECK_STR(d->cols[1].levels[1], "y");
        CHECK_STR(d->cols[1].levels[2], "z");
    }
    CHECK(b[0] == 0 && b[1] == 1 && b[2] == 0 && is_nan(b[3]) && b[4] == 2);
    CHECK(d->cols[1].n_missing == 1);
    CHECK(d->cols[2].n_levels == 4);
    if (d->cols[2].n_levels == 4) {
        CHECK_STR(d->cols[2].levels[0], "hello, world");
        CHECK_STR(d->cols[2].levels[1], "say \"hi\"");
        CHECK_STR(d->cols[2].levels[2], "two\nlines");
        CHECK_STR(d->cols[2].levels[3], "plain");
    }
    CHECK(c[0] == 0 && c[1] == 1 && c[2] == 2 && c[3] == 3 && is_nan(c[4]));
    CHECK(d->task == KB_DATASET_TASK_CLASSIFICATION);
    CHECK(d->n_classes == 2);
    if (d->n_classes == 2) {
        CHECK_STR(d->class_names[0], "no");
        CHECK_STR(d->class_names[1], "yes");
    }
    CHECK(d->y[0] == 1 && d->y[1] == 0 && d->y[2] == 1 && d->y[3] == 0 && d->y[4] == 1);
    CHECK(strlen(d->fingerprint) == 64);
}

static void test_csv_reads_quotes_commas_newlines_and_missing(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    CHECK_OK(read_csv(&d, "basic.csv", NULL, &err), err);
    check_basic(&d);
    CHECK(d.path != NULL && strstr(d.path, "basic.csv") != NULL);
    kb_dataset_release(&d);
    kb_dataset_release(&d); /* released twice: a zeroed struct is a no-op */
}

static void test_csv_same_data_same_fingerprint_whatever_the_encoding(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_dataset plain, gz, variant, other;
    CHECK_OK(read_csv(&plain, "basic.csv", NULL, &err), err);
    CHECK_OK(read_csv(&gz, "basic.csv.gz", NULL, &err), err);
    CHECK_OK(read_csv(&variant, "basic_variant.csv", NULL, &err), err);
    CHECK_OK(read_csv(&other, "crlf_bom.csv", NULL, &err), err);
    check_basic(&gz);
    check_basic(&variant);
    CHECK_STR(plain.fingerprint, gz.fingerprint);
    CHECK_STR(plain.fingerprint, variant.fingerprint);
    CHECK(strcmp(plain.fingerprint, other.fingerprint) != 0);
    kb_dataset_release(&plain);
    kb_dataset_release(&gz);
    kb_dataset_release(&variant);
    kb_dataset_release(&other);
}

static void test_csv_reads_crlf_bom_blank_lines_and_no_final_newline(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    CHECK_OK(read_csv(&d, "crlf_bom.csv", NULL, &err), err);
    CHECK(d.n_rows == 4 && d.n_cols == 2);
    CHECK_STR(d.cols[0].name, "a");
    const double *a = kb_dataset_col(&d, 0), *b = kb_dataset_col(&d, 1);
    CHECK(a[0] == 1 && a[1] == 2 && a[2] == 3 && a[3] == 4);
    CHECK(d.cols[1].n_levels == 3);
    if (d.cols[1].n_levels == 3) {
        CHECK_STR(d.cols[1].levels[0], "p,q");
        CHECK_STR(d.cols[1].levels[1], "r");
        CHECK_STR(d.cols[1].levels[2], "s\r\nt");
    }
    CHECK(b[0] == 0 && b[1] == 1 && b[2] == 2 && b[3] == 1);
    CHECK(d.task == KB_DATASET_TASK_CLASSIFICATION && d.n_classes == 2);
    CHECK(d.y[0] == 0 && d.y[1] == 1 && d.y[2] == 1 && d.y[3] == 0);
    kb_dataset_release(&d);
}

static void test_csv_numeric_target_rules(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    CHECK_OK(read_csv(&d, "regression.csv", NULL, &err), err);
    CHECK(d.task == KB_DATASET_TASK_REGRESSION && d.n_classes == 0 && d.class_names == NULL);
    CHECK_STR(d.target_name, "price");
    CHECK(d.n_rows == 5 && d.y[0] == 10.5 && d.y[4] == 7.125);
    kb_dataset_release(&d);

    kb_dataset_opts o = KB_DATASET_OPTS_INIT;
    o.task = KB_DATASET_TASK_CLASSIFICATION;
    CHECK_OK(read_csv(&d, "regression.csv", &o, &err), err);
    CHECK(d.task == KB_DATASET_TASK_CLASSIFICATION && d.n_classes == 5);
    if (d.n_classes == 5) {
        CHECK_STR(d.class_names[0], "7.125");
        CHECK_STR(d.class_names[1], "10.5");
        CHECK_STR(d.class_names[2], "11.25");
        CHECK_STR(d.class_names[3], "12");
        CHECK_STR(d.class_names[4], "100");
    }
    CHECK(d.y[0] == 1 && d.y[3] == 4 && d.y[4] == 0);
    kb_dataset_release(&d);

    o.task = KB_DATASET_TASK_AUTO;
    o.target = "label";
    CHECK_OK(read_csv(&d, "numeric_classes.csv", &o, &err), err);
    CHECK(d.task == KB_DATASET_TASK_CLASSIFICATION && d.n_classes == 3);
    if (d.n_classes == 3) {
        CHECK_STR(d.class_names[0], "2"); /* numerically sorted: 2 < 3 < 10 */
        CHECK_STR(d.class_names[1], "3");
        CHECK_STR(d.class_names[2], "10");
    }
    CHECK(d.n_cols == 2);
    CHECK_STR(d.cols[0].name, "x");
    CHECK_STR(d.cols[1].name, "z");
    CHECK(d.y[0] == 1 && d.y[1] == 2 && d.y[2] == 1 && d.y[3] == 0 && d.y[4] == 2 && d.y[5] == 0);
    kb_dataset_release(&d);

    o.task = KB_DATASET_TASK_REGRESSION;
    CHECK_OK(read_csv(&d, "numeric_classes.csv", &o, &err), err);
    CHECK(d.task == KB_DATASET_TASK_REGRESSION && d.y[1] == 10);
    kb_dataset_release(&d);

    o.target = NULL;
    CHECK_CODE(read_csv(&d, "basic.csv", &o, &err), KB_EFORMAT);
    CHECK(strstr(err.msg, "basic.csv:2: column 'target': regression target is not numeric "
                          "('yes')") != NULL);
    CHECK(d.x == NULL && d.cols == NULL);
}

static int n_warnings;
static void count_warning(kb_log_level level, const char *msg, void *payload)
{
    (void)msg;
    (void)payload;
    n_warnings += level == KB_LOG_LEVEL_WARNING;
}

static void test_csv_drops_rows_with_missing_target(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    kb_dataset_opts o = KB_DATASET_OPTS_INIT;
    o.log.fn = count_warning;
    n_warnings = 0;
    CHECK_OK(read_csv(&d, "missing_target.csv", &o, &err), err);
    CHECK(n_warnings == 1);
    CHECK(d.n_rows == 3);
    const double *x = kb_dataset_col(&d, 0);
    CHECK(x[0] == 1 && x[1] == 3 && x[2] == 5);
    CHECK(d.n_classes == 2 && d.y[0] == 0 && d.y[1] == 1 && d.y[2] == 0);
    kb_dataset_release(&d);
}

static void test_csv_mixed_column_becomes_categorical(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    CHECK_OK(read_csv(&d, "mixed.csv", NULL, &err), err);
    CHECK(d.cols[0].type == KB_COLUMN_CATEGORICAL && d.cols[0].n_levels == 4);
    if (d.cols[0].n_levels == 4) {
        CHECK_STR(d.cols[0].levels[0], "1");
        CHECK_STR(d.cols[0].levels[1], "2");
        CHECK_STR(d.cols[0].levels[2], "abc");
        CHECK_STR(d.cols[0].levels[3], "1.50");
    }
    const double *a = kb_dataset_col(&d, 0);
    CHECK(a[0] == 0 && a[1] == 1 && a[2] == 2 && a[3] == 3);
    kb_dataset_release(&d);
}

static void expect_error(const char *name, int code, const char *msg)
{
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    CHECK_CODE(read_csv(&d, name, NULL, &err), code);
    const char *base = strrchr(err.msg, '/');
    base = base != NULL ? base + 1 : err.msg;
    CHECK_STR(base, msg);
    CHECK(d.x == NULL && d.cols == NULL && d.y == NULL);
}

static void test_csv_errors_name_file_line_and_column(void)
{
    expect_error("ragged_short.csv", KB_EFORMAT,
                 "ragged_short.csv:3: column 'target': missing field (row has 2 of 3 columns)");
    expect_error("ragged_long.csv", KB_EFORMAT,
                 "ragged_long.csv:4: column #4: extra field (the header has 3 columns)");
    expect_error("unterminated.csv", KB_EFORMAT,
                 "unterminated.csv:2: column 'b': unterminated quoted field");
    expect_error("empty.csv", KB_EFORMAT, "empty.csv:1: empty file");
    expect_error("header_only.csv", KB_EFORMAT, "header_only.csv:2: no data rows (header only)");
    expect_error("duplicate.csv", KB_EFORMAT, "duplicate.csv:1: column 'a': duplicate column name");
    expect_error("after_quote.csv", KB_EFORMAT,
                 "after_quote.csv:2: column 'b': unexpected text after a closing quote");

    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    kb_dataset_opts o = KB_DATASET_OPTS_INIT;
    o.target = "nope";
    CHECK_CODE(read_csv(&d, "basic.csv", &o, &err), KB_ENOTFOUND);
    CHECK(strstr(err.msg, "basic.csv:1: column 'nope': no such column") != NULL);
    CHECK_CODE(read_csv(&d, "does-not-exist.csv", NULL, &err), KB_EIO);
    CHECK(strstr(err.msg, "does-not-exist.csv") != NULL);
}

static void test_csv_from_memory(void)
{
    static const char text[] = "u,v\n1,a\n2,b\n3,a\n4,b\n";
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    CHECK_OK(kb_csv_read_mem(&d, text, sizeof text - 1, "mem.csv", NULL, &err), err);
    CHECK(d.n_rows == 4 && d.n_cols == 1 && d.n_classes == 2);
    CHECK_STR(d.path, "mem.csv");
    kb_dataset_release(&d);
    CHECK_CODE(kb_csv_read_mem(&d, "a,b\n1", 5, "short.csv", NULL, &err), KB_EFORMAT);
    CHECK_STR(err.msg, "short.csv:2: column 'b': missing field (row has 1 of 2 columns)");
    /* a quoted field closing the input, with no line end after it */
    static const char end[] = "a,b\n1,\"x\"\n2,\"y\"";
    CHECK_OK(kb_csv_read_mem(&d, end, sizeof end - 1, "end.csv", NULL, &err), err);
    CHECK(d.n_rows == 2 && d.n_classes == 2);
    kb_dataset_release(&d);
    /* found by fuzzing: a NUL inside a text field */
    CHECK_CODE(kb_csv_read_mem(&d, "a,b\n1,x\n2,x\0y\n", 14, "nul.csv", NULL, &err),
               KB_EFORMAT);
    CHECK_STR(err.msg, "nul.csv:3: column 'b': NUL byte in a field");
}

/* A 10 MB quoted field and a 3 MB plain one cross many buffer refills; rows around them too. */
static void test_csv_streams_huge_fields_and_many_rows(void)
{
    char path[] = "/tmp/kb_test_csv_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) {
        return;
    }
    FILE *f = fdopen(fd, "w");
    size_t big = 10u << 20, plain = 3u << 20, rows = 200000;
    fprintf(f, "id,text,target\n");
    for (size_t i = 0; i < rows; i++) {
        if (i == 1000) {
            fputs("1000,\"", f);
            for (size_t k = 0; k < big; k++) {
                fputc(k % 1000 == 999 ? '\n' : (k % 100 == 0 ? '"' : (k % 7 == 0 ? ',' : 'a')), f);
                if (k % 100 == 0) {
                    fputc('"', f); /* doubled */
                }
            }
            fputs("\",1\n", f);
        } else if (i == 150000) {
            fputs("150000,", f);
            for (size_t k = 0; k < plain; k++) {
                fputc('b', f);
            }
            fputs(",0\n", f);
        } else {
            fprintf(f, "%zu,t%zu,%zu\n", i, i % 3, i % 2);
        }
    }
    fclose(f);
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    CHECK_OK(kb_csv_read(&d, path, NULL, &err), err);
    CHECK(d.n_rows == rows && d.n_cols == 2);
    if (d.n_rows == rows) {
        const double *id = kb_dataset_col(&d, 0), *text = kb_dataset_col(&d, 1);
        size_t bad = 0;
        for (size_t i = 0; i < rows; i++) {
            bad += id[i] != (double)i;
            bad += d.y[i] != (double)(i == 1000 ? 1 : i == 150000 ? 0 : i % 2);
        }
        CHECK(bad == 0);
        CHECK(d.cols[1].n_levels == 5);
        const char *lv = d.cols[1].levels[(size_t)text[1000]];
        CHECK(strlen(lv) == big);
        size_t quotes = 0, newlines = 0;
        for (size_t k = 0; k < big; k++) {
            quotes += lv[k] == '"';
            newlines += lv[k] == '\n';
        }
        CHECK(quotes == (big + 99) / 100 && newlines == big / 1000);
        CHECK(strlen(d.cols[1].levels[(size_t)text[150000]]) == plain);
    }
    kb_dataset_release(&d);
    unlink(path);
}

/* Failing each allocation in turn never leaks or crashes, and reports KB_ENOMEM. */
static void test_csv_out_of_memory_paths(void)
{
    int bad = 0;
    for (long n = 0; n < 200; n++) {
        kb_error err = KB_ERROR_INIT;
        kb_dataset d;
        kb_alloc_fail_after(n);
        int rc = read_csv(&d, "basic.csv", NULL, &err);
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
    test_csv_reads_quotes_commas_newlines_and_missing();
    test_csv_same_data_same_fingerprint_whatever_the_encoding();
    test_csv_reads_crlf_bom_blank_lines_and_no_final_newline();
    test_csv_numeric_target_rules();
    test_csv_drops_rows_with_missing_target();
    test_csv_mixed_column_becomes_categorical();
    test_csv_errors_name_file_line_and_column();
    test_csv_from_memory();
    test_csv_streams_huge_fields_and_many_rows();
    test_csv_out_of_memory_paths();
    return check_exit();
}
