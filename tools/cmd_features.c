/* kb features: a dataset's meta-features (engine/metafeatures.h), as a table or JSON. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tools/commands.h"
#include "tools/exit.h"
#include "tools/features_cli.h"

enum { OPT_JSON = CLI_KEY(0) };

static const cli_opt opts[] = {
    {"json", OPT_JSON, 0, NULL, "print one JSON document (schema kb.features/1)"},
    FEATURES_CLI_OPTS,
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_features_spec = {
    "features",
    "kb features DATASET [--json] [--groups LIST] [--sample N] [--seed S] [--target NAME]\n"
    "                    [--task-type classification|regression] [--progress] [--quiet]",
    "Read DATASET (CSV, svmlight or IDX, .gz too) and print its meta-features (feature "
    "set " KB_METAFEATURES_SET "): general, statistical, information-theoretic, landmarkers and, "
    "for images, image features; docs/META-FEATURES.md defines each one. A value that cannot "
    "be computed (one class, constant columns, ...) is printed as '-' (null in JSON). "
    "Landmarkers use a seeded stratified sample of --sample rows and 5-fold cross-validation; "
    "the same seed gives the same values.",
    opts,
    "  kb features datasets/iris.csv.gz\n"
    "  kb features data.csv --target label --groups general,statistical --json\n"
    "  kb features train-images-idx3-ubyte.gz --groups general,image",
    "  0    success\n"
    "  1    the dataset could not be read (I/O) or a computation failed\n"
    "  2    usage error (unknown group, bad number)\n"
    "  3    the dataset is malformed (ragged row, bad value)"};

static cJSON *build_json(const char *path, const kb_dataset *d, const kb_metafeatures *mf,
                         const features_args *a)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL && cJSON_AddStringToObject(o, "schema", "kb.features/1") != NULL;
    ok = ok && cJSON_AddStringToObject(o, "dataset", path) != NULL;
    ok = ok && cJSON_AddStringToObject(o, "fingerprint", d->fingerprint) != NULL;
    ok = ok && cJSON_AddStringToObject(o, "feature_set", KB_METAFEATURES_SET) != NULL;
    ok = ok && cJSON_AddStringToObject(o, "task_type", features_task_name(d->task)) != NULL;
    ok =
        ok && (d->target_name != NULL ? cJSON_AddStringToObject(o, "target", d->target_name) != NULL
                                      : cJSON_AddNullToObject(o, "target") != NULL);
    ok = ok && cJSON_AddNumberToObject(o, "n_rows", (double)d->n_rows) != NULL;
    ok = ok && cJSON_AddNumberToObject(o, "n_features", (double)d->n_cols) != NULL;
    cJSON *groups = ok ? cJSON_AddArrayToObject(o, "groups") : NULL;
    ok = groups != NULL;
    for (unsigned g = 1; ok && g <= KB_METAFEATURES_GROUP_ALL; g <<= 1) {
        if (mf->groups & g) {
            cJSON *s = cJSON_CreateString(kb_metafeatures_group_name(g));
            ok = s != NULL && cJSON_AddItemToArray(groups, s);
            if (!ok) {
                cJSON_Delete(s);
            }
        }
    }
    if (ok && (mf->groups & KB_METAFEATURES_GROUP_LANDMARK)) {
        cJSON *l = cJSON_AddObjectToObject(o, "landmark");
        ok = l != NULL && cJSON_AddNumberToObject(l, "sample_rows", (double)mf->landmark_rows) &&
             cJSON_AddNumberToObject(l, "columns", (double)mf->landmark_cols) &&
             cJSON_AddNumberToObject(l, "folds", 5) &&
             cJSON_AddNumberToObject(l, "seed", (double)a->mf.seed) &&
             cJSON_AddStringToObject(l, "metric",
                                     d->task == KB_DATASET_TASK_REGRESSION ? "rmse_standardised"
                                                                           : "accuracy");
    }
    cJSON *f = ok ? features_json(mf) : NULL;
    ok = f != NULL && cJSON_AddItemToObject(o, "features", f);
    if (!ok) {
        cJSON_Delete(f);
    }
    cJSON *missing = ok ? cJSON_AddArrayToObject(o, "missing") : NULL;
    ok = missing != NULL;
    for (const cJSON *it = ok ? f->child : NULL; ok && it != NULL; it = it->next) {
        if (cJSON_IsNull(it)) {
            cJSON *s = cJSON_CreateString(it->string);
            ok = s != NULL && cJSON_AddItemToArray(missing, s);
            if (!ok) {
                cJSON_Delete(s);
            }
        }
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void print_table(const char *path, const kb_dataset *d, const kb_metafeatures *mf)
{
    printf("dataset      %s\n", path);
    printf("fingerprint  %s\n", d->fingerprint);
    printf("task         %s, target '%s'", features_task_name(d->task),
           d->target_name != NULL ? d->target_name : "?");
    if (d->task == KB_DATASET_TASK_CLASSIFICATION) {
        printf(", %zu classes", d->n_classes);
    }
    printf("\nshape        %zu rows x %zu features\n", d->n_rows, d->n_cols);
    printf("feature_set  %s\n", KB_METAFEATURES_SET);
    if (mf->groups & KB_METAFEATURES_GROUP_LANDMARK) {
        printf("landmarks    %zu-row sample, %zu columns, 5 folds, %s\n", mf->landmark_rows,
               mf->landmark_cols,
               d->task == KB_DATASET_TASK_REGRESSION ? "RMSE (target std units)" : "accuracy");
    }
    printf("\n%-12s %-28s %s\n", "GROUP", "FEATURE", "VALUE");
    for (size_t i = 0; i < kb_metafeatures_count(); i++) {
        unsigned g = kb_metafeatures_group(i);
        if (!(g & mf->groups)) {
            continue;
        }
        double v = mf->values[i];
        printf("%-12s %-28s ", kb_metafeatures_group_name(g), kb_metafeatures_name(i));
        if (isfinite(v)) {
            printf("%.10g\n", v);
        } else {
            printf("-\n");
        }
    }
}

int cmd_features(int argc, char **argv)
{
    int json = 0;
    features_args a;
    features_args_init(&a, "features");
    cli_parser p;
    cli_begin(&p, &cmd_features_spec, argc, argv);
    for (int c; (c = cli_next(&p)) != -1;) {
        if (c == CLI_HELP_KEY) {
            return KB_EXIT_OK;
        }
        if (c == OPT_JSON) {
            json = 1;
            continue;
        }
        int r = features_args_option(&a, c, p.arg);
        if (r < 0 || (r == 0 && c == '?')) {
            return KB_EXIT_USAGE;
        }
        if (r == 0) {
            return cli_usage("features", "unhandled option");
        }
    }
    int rest = cli_rest(&p);
    if (rest >= argc) {
        return cli_usage("features", "missing DATASET");
    }
    if (rest + 1 < argc) {
        return cli_usage("features", "unexpected argument '%s'", argv[rest + 1]);
    }
    const char *path = argv[rest];
    kb_dataset d;
    kb_metafeatures mf;
    int rc = features_load(&d, &mf, path, &a);
    if (rc != KB_EXIT_OK) {
        return rc;
    }
    if (json) {
        cJSON *doc = build_json(path, &d, &mf, &a);
        rc = cli_emit_json(doc);
    } else {
        print_table(path, &d, &mf);
    }
    kb_dataset_release(&d);
    return rc;
}
