/*
 * kb_dataset: number parsing against strtod, fingerprints against an independent reference,
 * subsets, dispatch, and every bundled dataset against its manifest.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "engine/core/rng.h"
#include "engine/csv.h"
#include "engine/dataset.h"
#include "engine/dataset_priv.h"

static int same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* The fast path must give strtod's correctly rounded result, bit for bit. */
static void test_dataset_parse_double_matches_strtod(void)
{
    static const char *const cases[] = {
        "0", "-0", "+1", "1.", ".5", "0.1", "0.3", "1e22", "1e23", "9007199254740993",
        "123456789012345678901234567890", "0.0000000000000002220446", "2.2250738585072014e-308",
        "4.9e-324", "1.7976931348623157e308", "3.14159265358979323846", "-12.5e-3", "1E+2",
        " 7 ", "\t-8\t", "0x10", "1e", "1e+", "--1", "1.2.3", "abc", "", " ", ".", "-", "inf",
        "nan", "1e400", "0e999", "00012", "1_000", "12a", "99999999999999999999e-20"};
    int bad = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *s = cases[k];
        double got = 0, want;
        int ok = kb_dataset__parse_double(s, strlen(s), &got);
        char *end;
        want = strtod(s, &end);
        while (*end == ' ' || *end == '\t') {
            end++;
        }
        const char *p = s;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        int want_ok = *p != '\0' && *end == '\0' && end != p && isfinite(want);
        if (ok != want_ok || (ok && !same_double(got, want))) {
            fprintf(stderr, "parse '%s': got %d %.17g, strtod %d %.17g\n", s, ok, got, want_ok,
                    want);
            bad++;
        }
    }
    CHECK(bad == 0);

    /* random decimals of every length, in fixed and exponent notation */
    kb_rng rng;
    kb_rng_seed(&rng, 42);
    bad = 0;
    for (int t = 0; t < 200000; t++) {
        char s[64];
        uint64_t r = kb_rng_u64(&rng);
        int digits = 1 + (int)(r % 20), point = (int)((r >> 8) % 22), ex = (int)((r >> 16) % 60) - 30;
        int len = 0;
        if (r & (1u << 30)) {
            s[len++] = '-';
        }
        for (int i = 0; i < digits; i++) {
            if (i == point) {
                s[len++] = '.';
            }
            s[len++] = (char)('0' + kb_rng_u64(&rng) % 10);
        }
        if (r & (1u << 31)) {
            len += snprintf(s + len, sizeof s - (size_t)len, "e%d", ex);
        }
        s[len] = '\0';
        double got = 0, want = strtod(s, NULL);
        int ok = kb_dataset__parse_double(s, (size_t)len, &got);
        bad += ok != 1 || !same_double(got, want);
    }
    CHECK(bad == 0);

    /* doubles written with 15 to 17 significant digits (repr-like: mantissas beyond 2^53) */
    bad = 0;
    for (int t = 0; t < 300000; t++) {
        double x = kb_rng_uniform(&rng) * pow(10.0, (double)kb_rng_below(&rng, 30) - 15.0);
        char s[64];
        int len = snprintf(s, sizeof s, "%.*g", 15 + t % 3, x);
        double got = 0, want = strtod(s, NULL);
        bad += kb_dataset__parse_double(s, (size_t)len, &got) != 1 || !same_double(got, want);
    }
    CHECK(bad == 0);
    /* halfway cases: 2^53 + 1 and neighbours must round to even exactly as strtod */
    static const char *const halfway[] = {"9007199254740993", "9007199254740995",
                                          "9007199254740993.0", "18014398509481986",
                                          "18014398509481990", "4503599627370496.5",
                                          "9223372036854775807", "1844674407370955161"};
    bad = 0;
    for (size_t k = 0; k < sizeof halfway / sizeof halfway[0]; k++) {
        double got = 0;
        bad += kb_dataset__parse_double(halfway[k], strlen(halfway[k]), &got) != 1 ||
               !same_double(got, strtod(halfway[k], NULL));
    }
    CHECK(bad == 0);
}

static void test_dataset_format_double_round_trips(void)
{
    static const double v[] = {0, 1, -1, 100, 0.1, 1.5, 1e-300, 2.220446e-16, 123456.789,
                               1e17, 1e21, -7.125, 1.0 / 3.0};
    int bad = 0;
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        char buf[40];
        kb_dataset__format_double(buf, sizeof buf, v[k]);
        bad += strtod(buf, NULL) != v[k];
    }
    CHECK(bad == 0);
    char buf[40];
    kb_dataset__format_double(buf, sizeof buf, 100);
    CHECK_STR(buf, "100");
    kb_dataset__format_double(buf, sizeof buf, 0.1);
    CHECK_STR(buf, "0.1");
    kb_dataset__format_double(buf, sizeof buf, -0.0);
    CHECK_STR(buf, "0");
}

static const char *data_file(const char *rel)
{
    static char path[8192];
    snprintf(path, sizeof path, "%s/%s", check_data_path("csv"), rel);
    return path;
}

/* tests/ref/dataset_fingerprint.py computes the documented serialisation independently. */
static void test_dataset_fingerprint_matches_reference(void)
{
    char want[80] = {0};
    FILE *f = fopen(data_file("basic.fingerprint"), "r");
    CHECK(f != NULL);
    if (f == NULL) {
        return;
    }
    CHECK(fgets(want, sizeof want, f) != NULL);
    fclose(f);
    want[strcspn(want, "\n")] = '\0';
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    CHECK_OK(kb_dataset_read(&d, data_file("basic.csv"), NULL, &err), err);
    CHECK_STR(d.fingerprint, want);
    char again[65];
    kb_dataset_fingerprint(again, &d);
    CHECK_STR(again, want);
    kb_dataset_release(&d);
}

static void test_dataset_subset_copies_rows_in_order_with_repeats(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_dataset d, s, all;
    CHECK_OK(kb_dataset_read(&d, data_file("basic.csv"), NULL, &err), err);
    size_t rows[] = {4, 0, 4, 3};
    CHECK_OK(kb_dataset_subset(&s, &d, rows, 4, &err), err);
    CHECK(s.n_rows == 4 && s.n_cols == 3 && s.n_classes == 2 && s.task == d.task);
    CHECK(s.cols[1].n_levels == 3 && strcmp(s.cols[1].levels[2], "z") == 0);
    const double *a = kb_dataset_col(&s, 0), *c = kb_dataset_col(&s, 2);
    CHECK(a[0] == -300 && a[1] == 1 && a[2] == -300 && isnan(a[3]));
    CHECK(isnan(c[0]) && c[1] == 0 && c[3] == 3);
    CHECK(s.y[0] == 1 && s.y[1] == 1 && s.y[3] == 0);
    CHECK(s.cols[0].n_missing == 1 && s.cols[2].n_missing == 2);
    CHECK_STR(s.class_names[1], "yes");
    CHECK(strcmp(s.fingerprint, d.fingerprint) != 0);
    size_t id[] = {0, 1, 2, 3, 4};
    CHECK_OK(kb_dataset_subset(&all, &d, id, 5, &err), err);
    CHECK_STR(all.fingerprint, d.fingerprint);
    kb_dataset_release(&all);
    kb_dataset_release(&s);
    size_t bad_row[] = {5};
    CHECK_CODE(kb_dataset_subset(&s, &d, bad_row, 1, &err), KB_EINVAL);
    CHECK(s.x == NULL);
    CHECK_OK(kb_dataset_subset(&s, &d, NULL, 0, &err), err);
    CHECK(s.n_rows == 0 && s.n_cols == 3);
    kb_dataset_release(&s);
    kb_dataset_release(&d);
}

static void test_dataset_read_dispatch_sniffs_unknown_names(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    /* .csv.gz by name; a name without a known extension is sniffed (here: CSV, header only) */
    CHECK_OK(kb_dataset_read(&d, data_file("basic.csv.gz"), NULL, &err), err);
    CHECK(d.n_rows == 5);
    kb_dataset_release(&d);
    CHECK_CODE(kb_dataset_read(&d, data_file("basic.fingerprint"), NULL, &err), KB_EFORMAT);
    CHECK(strstr(err.msg, "basic.fingerprint:2: no data rows (header only)") != NULL);
    kb_dataset_opts o = KB_DATASET_OPTS_INIT;
    o.version = 99;
    CHECK_CODE(kb_dataset_read(&d, data_file("basic.csv"), &o, &err), KB_EINVAL);
}

/* One row of datasets/manifest.csv, read with the CSV reader itself (target = name). */
typedef struct manifest {
    kb_dataset d;
    const double *rows, *features, *numeric, *categorical, *classes, *missing;
    const double *task;
    const kb_column *task_col;
} manifest;

static const double *manifest_col(const kb_dataset *d, const char *name, const kb_column **col)
{
    for (size_t j = 0; j < d->n_cols; j++) {
        if (strcmp(d->cols[j].name, name) == 0) {
            if (col != NULL) {
                *col = &d->cols[j];
            }
            return kb_dataset_col(d, j);
        }
    }
    return NULL;
}

/* Every bundled dataset reads, with the manifest's counts: a strong check of the reader. */
static void test_dataset_reads_every_bundled_dataset_as_its_manifest_says(void)
{
    const char *src = getenv("KB_SRC");
    char path[8192];
    snprintf(path, sizeof path, "%s/datasets/manifest.csv", src != NULL ? src : ".");
    kb_error err = KB_ERROR_INIT;
    kb_dataset_opts o = KB_DATASET_OPTS_INIT;
    o.target = "name";
    manifest m;
    CHECK_OK(kb_csv_read(&m.d, path, &o, &err), err);
    m.rows = manifest_col(&m.d, "rows", NULL);
    m.features = manifest_col(&m.d, "features", NULL);
    m.numeric = manifest_col(&m.d, "numeric_features", NULL);
    m.categorical = manifest_col(&m.d, "categorical_features", NULL);
    m.classes = manifest_col(&m.d, "classes", NULL);
    m.missing = manifest_col(&m.d, "missing_cells", NULL);
    m.task = manifest_col(&m.d, "task", &m.task_col);
    CHECK(m.rows && m.features && m.numeric && m.categorical && m.classes && m.missing && m.task);
    CHECK(m.d.n_rows >= 60);
    if (!(m.rows && m.features && m.numeric && m.categorical && m.classes && m.missing &&
          m.task)) {
        kb_dataset_release(&m.d);
        return;
    }
    for (size_t i = 0; i < m.d.n_rows; i++) {
        const char *name = m.d.class_names[(size_t)m.d.y[i]];
        snprintf(path, sizeof path, "%s/datasets/%s.csv.gz", src != NULL ? src : ".", name);
        kb_dataset d;
        int rc = kb_dataset_read(&d, path, NULL, &err);
        CHECK_OK(rc, err);
        if (rc != KB_OK) {
            continue;
        }
        size_t num = 0, cat = 0, miss = 0;
        for (size_t j = 0; j < d.n_cols; j++) {
            num += d.cols[j].type == KB_COLUMN_NUMERIC;
            cat += d.cols[j].type == KB_COLUMN_CATEGORICAL;
            miss += d.cols[j].n_missing;
        }
        const char *task = m.task_col->levels[(size_t)m.task[i]];
        int want_cls = strcmp(task, "classification") == 0;
        int ok = d.n_rows == (size_t)m.rows[i] && d.n_cols == (size_t)m.features[i] &&
                 d.n_classes == (size_t)m.classes[i] && num == (size_t)m.numeric[i] &&
                 cat == (size_t)m.categorical[i] && miss == (size_t)m.missing[i] &&
                 (d.task == KB_DATASET_TASK_CLASSIFICATION) == want_cls;
        if (!ok) {
            fprintf(stderr,
                    "%s: read %zu rows, %zu features (%zu num, %zu cat), %zu classes, %zu "
                    "missing, task %d; manifest says %g, %g (%g, %g), %g, %g, %s\n",
                    name, d.n_rows, d.n_cols, num, cat, d.n_classes, miss, (int)d.task,
                    m.rows[i], m.features[i], m.numeric[i], m.categorical[i], m.classes[i],
                    m.missing[i], task);
        }
        CHECK(ok);
        kb_dataset_release(&d);
    }
    kb_dataset_release(&m.d);
}

int main(void)
{
    test_dataset_parse_double_matches_strtod();
    test_dataset_format_double_round_trips();
    test_dataset_fingerprint_matches_reference();
    test_dataset_subset_copies_rows_in_order_with_repeats();
    test_dataset_read_dispatch_sniffs_unknown_names();
    test_dataset_reads_every_bundled_dataset_as_its_manifest_says();
    return check_exit();
}
