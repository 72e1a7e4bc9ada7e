/*
 * `kb train svm DATASET`: cross-validate a libsvm configuration on a dataset and report it in
 * the trial protocol (docs/FORMAT.md): with --json, one JSON line per fold ({"step": k, ...})
 * and a final line {"final": {...}, "status": "ok", "cost_s": ...}.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine/core/alloc.h"
#include "engine/dataset.h"
#include "engine/svm.h"
#include "tools/cli.h"
#include "tools/exit.h"
#include "tools/train.h"
#include "tools/train_config.h"
#include "tools/train_rows.h"

#define CMD "train svm"
#define SCHEMA "kb.train.svm/1"

enum {
    OPT_TEST_FRACTION = CLI_KEY(1),
    OPT_SEED = CLI_KEY(2),
    OPT_JSON = CLI_KEY(3),
    OPT_TASK_TYPE = CLI_KEY(4),
    OPT_PROGRESS = CLI_KEY(5),
    OPT_MAX_ROWS = CLI_KEY(6)
};

static const cli_opt options[] = {
    {"config", 'c', 1, "JSON", "configuration: a JSON object, inline or in a file"},
    {"set", 's', 1, "KEY=VALUE", "set one parameter (repeatable; applied after --config)"},
    {"folds", 'k', 1, "K", "cross-validation folds (default 5)"},
    {"test-fraction", OPT_TEST_FRACTION, 1, "F", "hold out a stratified fraction as a test set"},
    {"seed", OPT_SEED, 1, "S", "seed of the test split, the folds and libsvm (default 0)"},
    {"target", 't', 1, "NAME", "target column (default 'target', else the last column)"},
    {"task-type", OPT_TASK_TYPE, 1, "TYPE", "classification, regression or auto (default)"},
    {"json", OPT_JSON, 0, NULL, "JSON Lines: one line per fold, then the final line"},
    {"quiet", 'q', 0, NULL, "do not print warnings"},
    {"progress", OPT_PROGRESS, 0, NULL, "print progress to stderr"},
    {"max-rows", OPT_MAX_ROWS, 1, "N", "train on a seeded stratified sample of N rows (0 = all)"},
    {NULL, 0, 0, NULL, NULL}};

const cli_spec train_svm_spec = {
    CMD,
    "kb train svm DATASET [--config JSON] [--set KEY=VALUE]... [--folds K]\n"
    "       [--test-fraction F] [--seed S] [--target NAME] [--task-type TYPE] [--json]",
    "Train libsvm models on a dataset (CSV, svmlight or IDX; .gz read directly) and measure "
    "them by k-fold cross-validation, stratified by class: accuracy (and log-loss with "
    "probability=true) for classification, RMSE and R^2 for regression; optionally also on a "
    "held-out test split. Numeric features are imputed with the training mean and "
    "standardised, categorical ones imputed with the mode and one-hot encoded, fitted on each "
    "training fold. Parameters (--config, --set): svm_type (c_svc, nu_svc, epsilon_svr), "
    "kernel (linear, poly, rbf, sigmoid), C, gamma (default 1/features), degree, coef0, nu, "
    "epsilon, shrinking, probability, cache_mb, tolerance, scale (standard, minmax, none), "
    "scale_target, class_weight (balanced, none), class_weight.<class>; see docs/FORMAT.md. "
    "The same seed gives the same result.",
    options,
    "  kb train svm datasets/statlog_heart.csv.gz --set C=10 --set gamma=0.01\n"
    "  kb train svm data.csv --config '{\"kernel\": \"linear\", \"C\": 0.5}' --folds 10 --json\n"
    "  kb train svm concrete.csv.gz --set epsilon=0.2 --test-fraction 0.2 --seed 7",
    "  0    success\n"
    "  1    runtime failure (I/O, numeric)\n"
    "  2    usage error, or a configuration that is invalid or does not fit the data\n"
    "  3    input data rejected (unreadable dataset, a single class, ...)\n"
    "  130  interrupted"};

static double seconds_since(clockid_t clock, const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(clock, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0->tv_nsec);
}

/* Adds the metrics that apply (a NaN one becomes null, as cJSON prints it). */
static int add_metrics(cJSON *obj, const kb_svm_metrics *m, int classification, int with_prob,
                       const char *prefix)
{
    char key[64];
    const char *names[4] = {"accuracy", "log_loss", "rmse", "r2"};
    double values[4] = {m->accuracy, m->log_loss, m->rmse, m->r2};
    for (int i = 0; i < 4; i++) {
        int applies = classification ? (i == 0 || (i == 1 && with_prob)) : i >= 2;
        if (!applies) {
            continue;
        }
        snprintf(key, sizeof key, "%s%s", prefix, names[i]);
        cJSON *v = isfinite(values[i]) ? cJSON_CreateNumber(values[i]) : cJSON_CreateNull();
        if (v == NULL || !cJSON_AddItemToObject(obj, key, v)) {
            cJSON_Delete(v);
            return -1;
        }
    }
    return 0;
}

static void print_metrics_text(const kb_svm_metrics *m, int classification, int with_prob)
{
    if (!classification) {
        printf(" rmse %.6g, r2 %.4f", m->rmse, m->r2);
        return;
    }
    printf(" accuracy %.4f", m->accuracy);
    if (with_prob) {
        printf(", log-loss %.4f", m->log_loss);
    }
}

static int print_json_line(cJSON *obj)
{
    char *s = cJSON_PrintUnformatted(obj);
    if (s == NULL) {
        return -1;
    }
    fputs(s, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    cJSON_free(s);
    return 0;
}

typedef struct fold_payload {
    int json;
    int classification;
    int with_prob;
} fold_payload;

static int on_fold(const kb_svm_fold *f, void *payload)
{
    const fold_payload *p = payload;
    if (p->json) {
        cJSON *o = cJSON_CreateObject();
        int bad = o == NULL || !cJSON_AddNumberToObject(o, "step", (double)(f->fold + 1)) ||
                  !cJSON_AddNumberToObject(o, "fold", (double)(f->fold + 1)) ||
                  !cJSON_AddNumberToObject(o, "n_folds", (double)f->n_folds) ||
                  !cJSON_AddNumberToObject(o, "n_train", (double)f->n_train) ||
                  !cJSON_AddNumberToObject(o, "n_test", (double)f->n_test) ||
                  !cJSON_AddNumberToObject(o, "n_sv", (double)f->n_sv) ||
                  add_metrics(o, &f->metrics, p->classification, p->with_prob, "") != 0 ||
                  print_json_line(o) != 0;
        cJSON_Delete(o);
        if (bad) {
            return KB_ENOMEM;
        }
    } else {
        printf("fold %zu/%zu:", f->fold + 1, f->n_folds);
        print_metrics_text(&f->metrics, p->classification, p->with_prob);
        printf(" (%zu train, %zu test rows, %zu SVs)\n", f->n_train, f->n_test, f->n_sv);
    }
    return cli_interrupted ? KB_ECANCELED : 0;
}

static cJSON *config_json(const kb_param *params, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o != NULL && i < n; i++) {
        const kb_value *v = &params[i].value;
        cJSON *item = NULL;
        switch (v->type) {
        case KB_VALUE_TYPE_FLOAT: item = cJSON_CreateNumber(v->f); break;
        case KB_VALUE_TYPE_INT: item = cJSON_CreateNumber((double)v->i); break;
        case KB_VALUE_TYPE_BOOL: item = cJSON_CreateBool(v->b); break;
        case KB_VALUE_TYPE_STR: item = cJSON_CreateString(v->s ? v->s : ""); break;
        default: item = cJSON_CreateNull(); break;
        }
        if (item == NULL || !cJSON_AddItemToObject(o, params[i].name, item)) {
            cJSON_Delete(item);
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

static int print_final_json(const kb_svm_result *r, const kb_dataset *d,
                            const kb_svm_config *cfg, const kb_param *params, size_t n_params,
                            const double times[3])
{
    int classification = r->task == KB_DATASET_TASK_CLASSIFICATION;
    int with_prob = classification && cfg->probability;
    cJSON *root = cJSON_CreateObject();
    cJSON *final = cJSON_CreateObject();
    cJSON *model = cJSON_CreateObject();
    cJSON *config = config_json(params, n_params);
    int bad = root == NULL || final == NULL || model == NULL || config == NULL;
    if (!bad) {
        bad = add_metrics(final, &r->cv, classification, with_prob, "") != 0 ||
              (r->test.n > 0 && add_metrics(final, &r->test, classification, with_prob,
                                            "test_") != 0) ||
              !cJSON_AddStringToObject(model, "svm_type", kb_svm_type_name(r->type)) ||
              !cJSON_AddStringToObject(model, "kernel", kb_svm_kernel_name(cfg->kernel)) ||
              !cJSON_AddNumberToObject(model, "C", cfg->c) ||
              !cJSON_AddNumberToObject(model, "gamma", r->gamma) ||
              !cJSON_AddNumberToObject(model, "mean_n_sv", r->mean_n_sv);
    }
    if (!bad) {
        bad = !cJSON_AddStringToObject(root, "schema", SCHEMA) ||
              !cJSON_AddItemToObject(root, "final", final);
        final = bad ? final : NULL;
    }
    if (!bad) {
        bad = !cJSON_AddStringToObject(root, "status", "ok") ||
              !cJSON_AddNumberToObject(root, "cost_s", times[0]) ||
              !cJSON_AddNumberToObject(root, "cv_s", times[1]) ||
              !cJSON_AddNumberToObject(root, "cv_cpu_s", times[2]) ||
              !cJSON_AddStringToObject(root, "workload", "svm") ||
              !cJSON_AddStringToObject(root, "task", classification ? "classification"
                                                                    : "regression") ||
              !cJSON_AddNumberToObject(root, "n_rows", (double)d->n_rows) ||
              !cJSON_AddNumberToObject(root, "n_cv", (double)r->n_cv) ||
              !cJSON_AddNumberToObject(root, "n_test", (double)r->test.n) ||
              !cJSON_AddNumberToObject(root, "n_features", (double)r->n_features) ||
              !cJSON_AddNumberToObject(root, "n_folds", (double)r->n_folds) ||
              !cJSON_AddItemToObject(root, "model", model);
        model = bad ? model : NULL;
    }
    if (!bad) {
        bad = !cJSON_AddItemToObject(root, "config", config);
        config = bad ? config : NULL;
    }
    if (!bad && d->fingerprint[0] != '\0') {
        bad = !cJSON_AddStringToObject(root, "dataset_fingerprint", d->fingerprint);
    }
    bad = bad || print_json_line(root) != 0;
    cJSON_Delete(config);
    cJSON_Delete(model);
    cJSON_Delete(final);
    cJSON_Delete(root);
    return bad ? -1 : 0;
}

static void print_final_text(const kb_svm_result *r, const kb_svm_config *cfg, double cost_s)
{
    int classification = r->task == KB_DATASET_TASK_CLASSIFICATION;
    printf("%s, kernel %s, C %g, gamma %g: %zu-fold cross-validation on %zu rows:",
           kb_svm_type_name(r->type), kb_svm_kernel_name(cfg->kernel), cfg->c, r->gamma,
           r->n_folds, r->n_cv);
    print_metrics_text(&r->cv, classification, cfg->probability);
    printf("\n");
    if (r->test.n > 0) {
        printf("test split, %zu rows:", r->test.n);
        print_metrics_text(&r->test, classification, cfg->probability);
        printf("\n");
    }
    printf("time %.3f s\n", cost_s);
}

/* Configuration errors are usage errors (2); data errors 3; the rest runtime failures. */
static int fail(const kb_error *err)
{
    if (err->code == KB_EINVAL) {
        cli_error(CMD, KB_EXIT_USAGE, "%s", err->msg);
        return KB_EXIT_USAGE;
    }
    return cli_fail(CMD, err);
}

static int parse_task(kb_dataset_task *out, const char *s)
{
    static const char *const names[] = {"auto", "classification", "regression"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (kb_dataset_task)i;
            return 0;
        }
    }
    return -1;
}

int train_svm_main(int argc, char **argv)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kb_svm_quiet();
    cli_parser p;
    cli_log_opts log_opts = {CMD, 0, 0};
    kb_dataset_opts dopts = KB_DATASET_OPTS_INIT;
    kb_svm_cv_opts cv_opts = KB_SVM_CV_OPTS_INIT;
    size_t max_rows = 0;
    kb_error err = KB_ERROR_INIT;
    kb_param *params = NULL;
    size_t n_params = 0;
    kb_svm_config cfg = KB_SVM_CONFIG_INIT;
    kb_dataset d;
    memset(&d, 0, sizeof d);
    const char *config_text = NULL;
    const char **sets = NULL;
    size_t n_sets = 0;
    int json = 0, c, rc = KB_EXIT_OK;

    sets = kb_calloc((size_t)(argc > 0 ? argc : 1), sizeof *sets);
    if (sets == NULL) {
        return cli_error(CMD, KB_EXIT_FAILURE, "out of memory");
    }
    cli_begin(&p, &train_svm_spec, argc, argv);
    while ((c = cli_next(&p)) != -1) {
        switch (c) {
        case CLI_HELP_KEY: rc = KB_EXIT_OK; goto done;
        case '?': rc = KB_EXIT_USAGE; goto done;
        case 'c': config_text = p.arg; break;
        case 's': sets[n_sets++] = p.arg; break;
        case 'k':
            if (cli_parse_size(CMD, "folds", p.arg, &cv_opts.n_folds) != 0) {
                rc = KB_EXIT_USAGE;
                goto done;
            }
            if (cv_opts.n_folds < 2) {
                rc = cli_usage(CMD, "option '--folds': must be at least 2, got %zu",
                               cv_opts.n_folds);
                goto done;
            }
            break;
        case OPT_TEST_FRACTION:
            if (cli_parse_double(CMD, "test-fraction", p.arg, &cv_opts.test_fraction) != 0) {
                rc = KB_EXIT_USAGE;
                goto done;
            }
            if (!(cv_opts.test_fraction >= 0 && cv_opts.test_fraction < 1)) {
                rc = cli_usage(CMD, "option '--test-fraction': must be in [0, 1), got '%s'",
                               p.arg);
                goto done;
            }
            break;
        case OPT_SEED: {
            unsigned long long seed;
            if (cli_parse_u64(CMD, "seed", p.arg, &seed) != 0) {
                rc = KB_EXIT_USAGE;
                goto done;
            }
            cv_opts.seed = seed;
            break;
        }
        case 't': dopts.target = p.arg; break;
        case OPT_TASK_TYPE:
            if (parse_task(&dopts.task, p.arg) != 0) {
                rc = cli_usage(CMD, "option '--task-type': expected classification, regression"
                                    " or auto, got '%s'", p.arg);
                goto done;
            }
            break;
        case OPT_JSON: json = 1; break;
        case 'q': log_opts.quiet = 1; break;
        case OPT_PROGRESS: log_opts.progress = 1; break;
        case OPT_MAX_ROWS:
            if (cli_parse_size(CMD, "max-rows", p.arg, &max_rows) != 0) {
                rc = KB_EXIT_USAGE;
                goto done;
            }
            break;
        default: rc = KB_EXIT_USAGE; goto done;
        }
    }
    int first = cli_rest(&p);
    if (argc - first != 1) {
        rc = cli_usage(CMD, argc - first < 1 ? "missing DATASET" : "expected one DATASET");
        goto done;
    }
    const char *path = argv[first];

    /* the configuration first: a bad one is reported before any data is read */
    if (config_text != NULL &&
        train_config_add_json(&params, &n_params, config_text, &err) != KB_OK) {
        /* an unreadable --config file is the command's fault, like bad JSON */
        rc = err.code == KB_EIO ? cli_error(CMD, KB_EXIT_USAGE, "%s", err.msg) : fail(&err);
        goto done;
    }
    for (size_t i = 0; i < n_sets; i++) {
        if (train_config_add_set(&params, &n_params, sets[i], &err) != KB_OK) {
            rc = fail(&err);
            goto done;
        }
    }
    if (kb_svm_config_from_params(&cfg, params, n_params, &err) != KB_OK) {
        rc = fail(&err);
        goto done;
    }

    kb_log log = {cli_log_stderr, &log_opts};
    dopts.log = log;
    cv_opts.log = log;
    if (kb_dataset_read(&d, path, &dopts, &err) != KB_OK) {
        kb_error_prefix(&err, "reading '%s': ", path);
        rc = fail(&err);
        goto done;
    }
    if (train_rows_limit(&d, max_rows, cv_opts.seed, NULL, &err) != KB_OK) {
        rc = fail(&err);
        goto done;
    }
    int classification = d.task == KB_DATASET_TASK_CLASSIFICATION;
    fold_payload fp = {json, classification, classification && cfg.probability};
    cv_opts.on_fold = on_fold;
    cv_opts.payload = &fp;
    kb_svm_result result;
    struct timespec t_cv, t_cpu;
    clock_gettime(CLOCK_MONOTONIC, &t_cv);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t_cpu);
    if (kb_svm_cross_validate(&result, &d, &cfg, &cv_opts, &err) != KB_OK) {
        rc = fail(&err);
        goto done;
    }
    /* wall time of the command, wall and CPU time of the cross-validation alone */
    double times[3] = {0, seconds_since(CLOCK_MONOTONIC, &t_cv),
                       seconds_since(CLOCK_PROCESS_CPUTIME_ID, &t_cpu)};
    times[0] = seconds_since(CLOCK_MONOTONIC, &t0);
    if (json) {
        if (print_final_json(&result, &d, &cfg, params, n_params, times) != 0) {
            rc = cli_error(CMD, KB_EXIT_FAILURE, "out of memory");
        }
    } else {
        print_final_text(&result, &cfg, times[0]);
    }
done:
    kb_dataset_release(&d);
    kb_svm_config_release(&cfg);
    kb_params_free(params, n_params);
    kb_free(sets);
    return rc;
}
