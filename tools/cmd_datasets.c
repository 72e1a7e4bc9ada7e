/*
 * kb datasets: list the bundled datasets from their manifest.csv (read with kb's own CSV
 * reader, the dataset name as the "target", so every field gets typed and quoted fields are
 * handled like any dataset's).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/csv.h"
#include "engine/dataset.h"
#include "tools/commands.h"
#include "tools/exit.h"
#include "tools/paths.h"

enum { OPT_JSON = CLI_KEY(0), OPT_DIR };

static const cli_opt opts[] = {
    {"dir", OPT_DIR, 1, "DIR",
     "datasets directory (default $KB_DATASETS, else the bundled datasets/)"},
    {"json", OPT_JSON, 0, NULL, "print the list as JSON (schema kb.datasets/1)"},
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_datasets_spec = {
    "datasets", "kb datasets [--dir DIR] [--json]",
    "List the real datasets bundled with kb, from DIR/manifest.csv: name, task type, rows, "
    "features, classes (0 for regression) and license. Each is DIR/<name>.csv.gz, a CSV with "
    "the target last, which kb features and kb add-task read directly.",
    opts,
    "  kb datasets\n  kb datasets --json\n  KB_DATASETS=/data/mine kb datasets",
    NULL};

static const kb_column *find_col(const kb_dataset *d, const char *name, const double **values)
{
    for (size_t j = 0; j < d->n_cols; j++) {
        if (strcmp(d->cols[j].name, name) == 0) {
            *values = kb_dataset_col(d, j);
            return &d->cols[j];
        }
    }
    *values = NULL;
    return NULL;
}

/* Field `name` of row i as text ("" if missing or absent). */
static const char *text(const kb_dataset *d, const char *name, size_t i, char *buf, size_t cap)
{
    const double *v;
    const kb_column *c = find_col(d, name, &v);
    if (c == NULL || isnan(v[i])) {
        return "";
    }
    if (c->type == KB_COLUMN_CATEGORICAL) {
        return c->levels[(size_t)v[i]];
    }
    snprintf(buf, cap, "%.17g", v[i]);
    return buf;
}

/* Field `name` of row i as a count, -1 if missing or absent. */
static double count(const kb_dataset *d, const char *name, size_t i)
{
    const double *v;
    const kb_column *c = find_col(d, name, &v);
    if (c == NULL || c->type != KB_COLUMN_NUMERIC || isnan(v[i])) {
        return -1;
    }
    return v[i];
}

static void add_count(cJSON *o, const char *key, double v)
{
    if (v >= 0) {
        cJSON_AddNumberToObject(o, key, v);
    } else {
        cJSON_AddNullToObject(o, key);
    }
}

static int print_json(const kb_dataset *m, const char *dir)
{
    static const char *const counts[] = {"rows",          "features",
                                         "numeric_features", "categorical_features",
                                         "classes",       "missing_cells"};
    static const char *const texts[] = {"task", "license", "source", "original_reference",
                                        "notes"};
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "schema", "kb.datasets/1");
    cJSON_AddStringToObject(doc, "dir", dir);
    cJSON *list = cJSON_AddArrayToObject(doc, "datasets");
    for (size_t i = 0; i < m->n_rows; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(list, o);
        const char *name = m->class_names[(size_t)m->y[i]];
        char file[4096], buf[64];
        snprintf(file, sizeof file, "%s/%s.csv.gz", dir, name);
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddStringToObject(o, "file", file);
        for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
            add_count(o, counts[k], count(m, counts[k], i));
        }
        for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
            cJSON_AddStringToObject(o, texts[k], text(m, texts[k], i, buf, sizeof buf));
        }
    }
    char *s = cJSON_Print(doc);
    cJSON_Delete(doc);
    if (s == NULL) {
        return cli_error("datasets", KB_EXIT_FAILURE, "building the JSON output: out of memory");
    }
    fputs(s, stdout);
    fputc('\n', stdout);
    cJSON_free(s);
    return KB_EXIT_OK;
}

static void print_table(const kb_dataset *m)
{
    printf("%-24s %-14s %7s %8s %7s  %s\n", "name", "task", "rows", "features", "classes",
           "license");
    for (size_t i = 0; i < m->n_rows; i++) {
        char buf[64];
        printf("%-24s %-14s %7.0f %8.0f %7.0f  %s\n", m->class_names[(size_t)m->y[i]],
               text(m, "task", i, buf, sizeof buf), count(m, "rows", i),
               count(m, "features", i), count(m, "classes", i),
               text(m, "license", i, buf, sizeof buf));
    }
}

int cmd_datasets(int argc, char **argv)
{
    const char *opt_dir = NULL;
    int json = 0;
    cli_parser p;
    cli_begin(&p, &cmd_datasets_spec, argc, argv);
    for (int c; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case OPT_DIR: opt_dir = p.arg; break;
        case OPT_JSON: json = 1; break;
        case CLI_HELP_KEY: return KB_EXIT_OK;
        default: return KB_EXIT_USAGE;
        }
    }
    if (cli_rest(&p) != argc) {
        return cli_usage("datasets", "unexpected argument '%s'", argv[cli_rest(&p)]);
    }
    const char *dir = paths_datasets_dir(opt_dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.csv", dir);
    kb_dataset_opts o = KB_DATASET_OPTS_INIT;
    o.target = "name";
    o.task = KB_DATASET_TASK_CLASSIFICATION;
    kb_error err = KB_ERROR_INIT;
    kb_dataset m;
    if (kb_csv_read(&m, path, &o, &err) != KB_OK) {
        return cli_fail("datasets", &err);
    }
    int rc = KB_EXIT_OK;
    if (json) {
        rc = print_json(&m, dir);
    } else {
        print_table(&m);
    }
    kb_dataset_release(&m);
    return rc;
}
