/*
 * kb train net: train the built-in CNN/MLP (engine/net.h) on a dataset, printing the
 * learning curve as JSON Lines (the trial protocol of docs/FORMAT.md), optionally starting
 * from a backbone (--init-from) and saving one (--save-weights).
 */
#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/core/alloc.h"
#include "engine/core/rng.h"
#include "engine/dataset.h"
#include "engine/net.h"
#include "tools/exit.h"
#include "tools/train.h"
#include "tools/train_rows.h"

#define CMD "train net"

enum {
    OPT_ARCH = CLI_KEY(0),
    OPT_CONFIG,
    OPT_SET,
    OPT_TEST,
    OPT_VAL,
    OPT_SAVE,
    OPT_INIT,
    OPT_FREEZE,
    OPT_SEED,
    OPT_THREADS,
    OPT_TARGET,
    OPT_QUIET,
    OPT_JSON,
    OPT_MAX_ROWS,
    OPT_SNAPSHOT,
    OPT_RESUME,
    OPT_CHECKPOINT
};

static const cli_opt opts[] = {
    {"arch", OPT_ARCH, 1, "SPEC", "hidden layers, e.g. 'C(3,32)+P(2,2)+FC(64)' (output appended)"},
    {"config", OPT_CONFIG, 1, "JSON", "hyperparameters: a JSON object, inline or a file path"},
    {"set", OPT_SET, 1, "K=V", "one hyperparameter (repeatable; applied after --config)"},
    {"test", OPT_TEST, 1, "FILE", "evaluate on this dataset instead of a validation split"},
    {"val-fraction", OPT_VAL, 1, "F", "fraction of DATASET held out for validation (0.2)"},
    {"save-weights", OPT_SAVE, 1, "FILE", "write the trained weights (a backbone)"},
    {"init-from", OPT_INIT, 1, "FILE", "start from a backbone's weights (fine-tuning); an --arch "
     "that extends the backbone's adds a fresh last stage"},
    {"snapshot", OPT_SNAPSHOT, 1, "FILE", "write the full training state at the end (for --resume)"},
    {"resume", OPT_RESUME, 1, "FILE", "continue a --snapshot run to this run's epochs/max_iter"},
    {"checkpoint", OPT_CHECKPOINT, 1, "FILE", "resume from FILE if it holds a usable snapshot, and snapshot to it at the end"},
    {"freeze", OPT_FREEZE, 1, "N", "keep the first N conv/FC layers fixed (lr_mult 0)"},
    {"seed", OPT_SEED, 1, "S", "random seed (initialisation, split, shuffling, dropout)"},
    {"threads", OPT_THREADS, 1, "T", "OpenBLAS threads (default: OpenBLAS's own choice)"},
    {"max-rows", OPT_MAX_ROWS, 1, "N", "train on a seeded stratified sample of N rows (0 = all)"},
    {"target", OPT_TARGET, 1, "NAME", "target column of a CSV dataset"},
    {"quiet", OPT_QUIET, 0, NULL, "no warnings or notes on stderr"},
    {"json", OPT_JSON, 0, NULL, "accepted for symmetry with 'kb train svm': output is always JSON"},
    {NULL, 0, 0, NULL, NULL}};

const cli_spec train_net_spec = {
    "train net",
    "kb train net DATASET --arch SPEC [--config JSON] [--set K=V ...] [--test FILE]\n"
    "       [--val-fraction F] [--save-weights FILE] [--init-from FILE] [--freeze N]\n"
    "       [--seed S] [--threads T] [--snapshot FILE] [--resume FILE] [--checkpoint FILE]",
    "Train a small CNN or MLP written on OpenBLAS. SPEC joins layers with '+': C(k,n) a k x k "
    "convolution with n filters (same padding, activation after it), P(k,s) max pooling, "
    "FC(n) a fully connected layer; the output layer is appended. Tabular data (CSV, svmlight) "
    "allows FC layers only. Inputs are scaled with statistics of the training rows. Every "
    "test_interval iterations one JSON line goes to stdout (step, epoch, lr, train_loss, "
    "val_loss, val_accuracy, weight_norm, grad_norm, nonfinite_weights), then a final line "
    "{\"final\": {...}, \"status\": \"ok\"|\"diverged\", \"iteration\": N}. Config keys: "
    "optimizer (sgd momentum nesterov adagrad adadelta rmsprop adam), base_lr, momentum, "
    "momentum2, delta, rms_decay, weight_decay, lr_policy (fixed step exp inv poly cosine), "
    "gamma, power, stepsize, max_iter, epochs, batch_size, test_interval, activation (relu "
    "tanh sigmoid), dropout, init (gaussian xavier msra), init_std, clip_gradients, lr_mult, "
    "decay_mult (lists, one per conv/FC layer, output last), freeze, seed. --snapshot writes "
    "weights, optimizer state, iteration, sample order and RNG state when training ends (or is "
    "interrupted); --resume continues from one with the same data, seed and optimizer up to "
    "the new epochs or max_iter, giving bit for bit the run that trained that long in one go "
    "(for lr policies that do not depend on max_iter: fixed, step, exp, inv). --checkpoint "
    "FILE is both for a run that may be continued: it resumes from FILE when FILE holds a "
    "snapshot this run can continue (same data, seed, optimizer; fewer iterations than "
    "asked), else trains from the start (--init-from applies then), and writes FILE at the "
    "end; kb search's hyperband, bohb and asha use it so that a promoted trial trains only "
    "its new epochs.",
    opts,
    "  kb train net data.csv --arch 'FC(64)+FC(32)' --set optimizer=adam --set base_lr=0.001\n"
    "  kb train net /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz \\\n"
    "      --test /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz \\\n"
    "      --arch 'C(3,32)+P(2,2)+C(3,64)+P(2,2)+FC(64)' --config '{\"epochs\": 5}' \\\n"
    "      --save-weights fmnist.kbw\n"
    "  kb train net new.idx3-ubyte.gz --init-from fmnist.kbw --freeze 2 --set epochs=2\n"
    "  kb train net new.idx3-ubyte.gz --arch 'FC(64)' --set epochs=3 --snapshot s.kbs && \\\n"
    "      kb train net new.idx3-ubyte.gz --set epochs=9 --resume s.kbs",
    NULL};

static int read_text_file(char **out, const char *path, kb_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return kb_error_set(err, KB_EIO, "--config: cannot open '%s'", path);
    }
    size_t cap = 4096, len = 0;
    char *s = kb_malloc(cap);
    for (size_t n; s != NULL && (n = fread(s + len, 1, cap - len - 1, f)) > 0;) {
        len += n;
        if (len + 1 == cap) {
            char *t = kb_realloc(s, cap * 2);
            if (t == NULL) {
                kb_free(s);
                s = NULL;
            }
            s = t;
            cap *= 2;
        }
    }
    fclose(f);
    if (s == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    s[len] = '\0';
    *out = s;
    return KB_OK;
}

static void add_real(cJSON *o, const char *key, double v)
{
    if (isfinite(v)) {
        /* 7 significant digits: float precision, and lines a person can read */
        char text[32];
        snprintf(text, sizeof text, "%.7g", v);
        cJSON_AddNumberToObject(o, key, strtod(text, NULL));
    } else {
        cJSON_AddNullToObject(o, key);
    }
}

static int print_json(cJSON *o)
{
    char *s = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (s == NULL) {
        return -1;
    }
    puts(s);
    fflush(stdout);
    cJSON_free(s);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The hyperparameters in effect, under their config names. */
static cJSON *config_json(const kb_net_opts *o, size_t max_iter)
{
    static const char *const activations[] = {"relu", "tanh", "sigmoid"};
    static const char *const inits[] = {"gaussian", "xavier", "msra"};
    cJSON *c = cJSON_CreateObject();
    if (c == NULL) {
        return NULL;
    }
    cJSON_AddStringToObject(c, "optimizer", kb_net_optimizer_name(o->optimizer));
    cJSON_AddNumberToObject(c, "base_lr", o->base_lr);
    cJSON_AddNumberToObject(c, "momentum", o->momentum);
    cJSON_AddNumberToObject(c, "weight_decay", o->weight_decay);
    cJSON_AddStringToObject(c, "lr_policy", kb_net_lr_policy_name(o->lr_policy));
    cJSON_AddNumberToObject(c, "gamma", o->gamma);
    cJSON_AddNumberToObject(c, "power", o->power);
    cJSON_AddNumberToObject(c, "stepsize", (double)o->stepsize);
    cJSON_AddNumberToObject(c, "max_iter", (double)max_iter);
    cJSON_AddNumberToObject(c, "batch_size", (double)o->batch_size);
    cJSON_AddStringToObject(c, "activation", activations[o->activation]);
    cJSON_AddNumberToObject(c, "dropout", o->dropout);
    cJSON_AddStringToObject(c, "init", inits[o->init]);
    cJSON_AddNumberToObject(c, "clip_gradients", o->clip_gradients);
    cJSON_AddNumberToObject(c, "freeze", (double)o->freeze);
    cJSON_AddNumberToObject(c, "seed", (double)o->seed);
    return c;
}

typedef struct curve_ctx {
    int regression;
    double y_std;
} curve_ctx;

static void add_val_metrics(cJSON *o, const kb_net_point *p, const curve_ctx *c)
{
    add_real(o, "val_loss", p->val_loss);
    if (c->regression) {
        add_real(o, "val_rmse", sqrt(p->val_loss) * c->y_std);
    } else {
        add_real(o, "val_accuracy", p->val_accuracy);
    }
}

static int on_point(const kb_net_point *p, void *payload)
{
    const curve_ctx *c = payload;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) {
        return 1;
    }
    cJSON_AddNumberToObject(o, "step", (double)p->step);
    add_real(o, "epoch", p->epoch);
    add_real(o, "lr", p->lr);
    add_real(o, "train_loss", p->train_loss);
    add_val_metrics(o, p, c);
    add_real(o, "weight_norm", p->weight_norm);
    add_real(o, "grad_norm", p->grad_norm);
    cJSON_AddNumberToObject(o, "nonfinite_weights", (double)p->nonfinite_weights);
    if (print_json(o) != 0) {
        return 1;
    }
    return cli_interrupted ? 1 : 0;
}

typedef struct net_args {
    const char *dataset, *arch, *config, *test, *save, *init, *target, *snapshot, *resume;
    const char *checkpoint;
    const char **sets;
    size_t n_sets;
    double val_fraction;
    int has_seed, has_freeze, quiet;
    unsigned long long seed;
    size_t freeze, threads, max_rows;
} net_args;

static int parse_args(net_args *a, int argc, char **argv)
{
    cli_parser p;
    cli_begin(&p, &train_net_spec, argc, argv);
    for (int c; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case OPT_ARCH: a->arch = p.arg; break;
        case OPT_CONFIG: a->config = p.arg; break;
        case OPT_SET: a->sets[a->n_sets++] = p.arg; break;
        case OPT_TEST: a->test = p.arg; break;
        case OPT_SAVE: a->save = p.arg; break;
        case OPT_INIT: a->init = p.arg; break;
        case OPT_SNAPSHOT: a->snapshot = p.arg; break;
        case OPT_RESUME: a->resume = p.arg; break;
        case OPT_CHECKPOINT: a->checkpoint = p.arg; break;
        case OPT_TARGET: a->target = p.arg; break;
        case OPT_QUIET: a->quiet = 1; break;
        case OPT_JSON: break;
        case OPT_VAL:
            if (cli_parse_double(CMD, "val-fraction", p.arg, &a->val_fraction) != 0) {
                return KB_EXIT_USAGE;
            }
            if (!(a->val_fraction > 0 && a->val_fraction < 1)) {
                return cli_usage(CMD, "option '--val-fraction': must be in (0, 1), got '%s'",
                                 p.arg);
            }
            break;
        case OPT_FREEZE:
            if (cli_parse_size(CMD, "freeze", p.arg, &a->freeze) != 0) {
                return KB_EXIT_USAGE;
            }
            a->has_freeze = 1;
            break;
        case OPT_SEED:
            if (cli_parse_u64(CMD, "seed", p.arg, &a->seed) != 0) {
                return KB_EXIT_USAGE;
            }
            a->has_seed = 1;
            break;
        case OPT_MAX_ROWS:
            if (cli_parse_size(CMD, "max-rows", p.arg, &a->max_rows) != 0) {
                return KB_EXIT_USAGE;
            }
            break;
        case OPT_THREADS:
            if (cli_parse_size(CMD, "threads", p.arg, &a->threads) != 0) {
                return KB_EXIT_USAGE;
            }
            if (a->threads < 1 || a->threads > 1024) {
                return cli_usage(CMD, "option '--threads': must be in 1..1024");
            }
            break;
        case CLI_HELP_KEY: return -1;
        default: return KB_EXIT_USAGE;
        }
    }
    int rest = cli_rest(&p);
    if (rest >= argc) {
        return cli_usage(CMD, "missing DATASET");
    }
    if (rest + 1 < argc) {
        return cli_usage(CMD, "unexpected argument '%s'", argv[rest + 1]);
    }
    a->dataset = argv[rest];
    if (a->init != NULL && a->resume != NULL) {
        return cli_usage(CMD, "--init-from and --resume exclude each other (a snapshot holds "
                         "its weights)");
    }
    if (a->checkpoint != NULL && (a->resume != NULL || a->snapshot != NULL)) {
        return cli_usage(CMD, "--checkpoint is --resume and --snapshot in one: give it alone");
    }
    if (a->checkpoint != NULL && a->arch == NULL && a->init == NULL) {
        /* the checkpoint may not exist yet: the first run needs an architecture */
        return cli_usage(CMD, "--checkpoint needs --arch SPEC or --init-from FILE");
    }
    if (a->arch == NULL && a->init == NULL && a->resume == NULL) {
        return cli_usage(CMD, "missing --arch SPEC (or --init-from FILE to take a backbone's)");
    }
    return KB_EXIT_OK;
}

static int build_opts(kb_net_opts *o, const net_args *a, kb_error *err)
{
    int rc = KB_OK;
    if (a->config != NULL) {
        const char *s = a->config;
        while (*s == ' ' || *s == '\t' || *s == '\n') {
            s++;
        }
        char *text = NULL;
        if (*s != '{') {
            if ((rc = read_text_file(&text, a->config, err)) != KB_OK) {
                return rc;
            }
            s = text;
        }
        rc = kb_net_opts_set_json(o, s, err);
        kb_free(text);
        if (rc != KB_OK) {
            return rc;
        }
    }
    for (size_t i = 0; i < a->n_sets; i++) {
        const char *eq = strchr(a->sets[i], '=');
        if (eq == NULL || eq == a->sets[i]) {
            return kb_error_set(err, KB_EINVAL, "--set '%s': expected KEY=VALUE", a->sets[i]);
        }
        char key[64];
        size_t kl = (size_t)(eq - a->sets[i]);
        if (kl >= sizeof key) {
            return kb_error_set(err, KB_EINVAL, "--set '%s': key too long", a->sets[i]);
        }
        memcpy(key, a->sets[i], kl);
        key[kl] = '\0';
        if ((rc = kb_net_opts_set(o, key, eq + 1, err)) != KB_OK) {
            return rc;
        }
    }
    if (a->has_seed) {
        o->seed = a->seed;
    }
    if (a->has_freeze) {
        o->freeze = a->freeze;
    }
    return kb_net_opts_check(o, err);
}

static long find_name(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (names[i] != NULL && name != NULL && strcmp(names[i], name) == 0) {
            return (long)i;
        }
    }
    return -1;
}

/*
 * Express a test set in the training set's terms: readers number categorical levels and
 * classes per file, so map them by name (an unseen level becomes missing; an unseen class is
 * an error).
 */
static int align_test(kb_dataset *test, const kb_dataset *train, const char *path)
{
    if (test->n_cols != train->n_cols || test->task != train->task) {
        return cli_error(CMD, KB_EXIT_DATA, "'%s': its columns or task differ from the "
                         "training data's", path);
    }
    for (size_t j = 0; j < test->n_cols; j++) {
        const kb_column *a = &train->cols[j], *b = &test->cols[j];
        if (a->type != b->type || (a->name && b->name && strcmp(a->name, b->name) != 0)) {
            return cli_error(CMD, KB_EXIT_DATA, "'%s': column %zu '%s' differs from the "
                             "training data's '%s'", path, j + 1, b->name ? b->name : "",
                             a->name ? a->name : "");
        }
        if (a->type != KB_COLUMN_CATEGORICAL) {
            continue;
        }
        double *col = kb_dataset_col(test, j);
        for (size_t i = 0; i < test->n_rows; i++) {
            double v = col[i];
            if (v >= 0 && v < (double)b->n_levels) {
                long k = find_name(a->levels, a->n_levels, b->levels[(size_t)v]);
                col[i] = k < 0 ? NAN : (double)k;
            }
        }
    }
    if (test->task != KB_DATASET_TASK_CLASSIFICATION) {
        return KB_EXIT_OK;
    }
    for (size_t i = 0; i < test->n_rows; i++) {
        const char *name = test->class_names[(size_t)test->y[i]];
        long k = find_name(train->class_names, train->n_classes, name);
        if (k < 0) {
            return cli_error(CMD, KB_EXIT_DATA, "'%s': class '%s' does not occur in the "
                             "training data", path, name);
        }
        test->y[i] = (double)k;
    }
    return KB_EXIT_OK;
}

/* Split rows into training and validation with a seeded shuffle (validation first). */
static int split_rows(size_t **perm_out, size_t n, double fraction, uint64_t seed, size_t *n_val)
{
    size_t *perm = kb_malloc_array(n, sizeof(size_t));
    if (perm == NULL) {
        return KB_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        perm[i] = i;
    }
    kb_rng base, r;
    kb_rng_seed(&base, seed);
    kb_rng_split(&r, &base, 3);
    kb_rng_shuffle(&r, perm, n);
    *n_val = (size_t)floor(fraction * (double)n + 0.5);
    if (*n_val >= n) {
        *n_val = n - 1;
    }
    *perm_out = perm;
    return KB_OK;
}

/*
 * What a snapshot must be resumed with: the same training rows, i.e. the same file content,
 * row limit and validation split (fraction and seed) or a separate test file.
 */
static void snapshot_data_id(char *buf, const net_args *a, const kb_dataset *train,
                             const kb_net_opts *o)
{
    if (a->test != NULL) {
        snprintf(buf, KB_NET_DATA_ID_MAX, "%.80s max_rows=%zu rows_seed=%llu", train->fingerprint,
                 a->max_rows, a->seed);
    } else {
        snprintf(buf, KB_NET_DATA_ID_MAX, "%.80s max_rows=%zu rows_seed=%llu val=%.17g split_seed=%llu",
                 train->fingerprint, a->max_rows, a->seed, a->val_fraction,
                 (unsigned long long)o->seed);
    }
}

/* A --checkpoint file this run cannot continue: said once, then the run starts afresh. */
static void checkpoint_ignored(const net_args *a, kb_error *err)
{
    if (!a->quiet) {
        fprintf(stderr, "kb %s: note: not resuming from checkpoint '%s': %s\n", CMD,
                a->checkpoint, err->msg);
    }
    kb_error_clear(err);
}

int train_net_main(int argc, char **argv)
{
    const char **sets = kb_calloc((size_t)(argc > 0 ? argc : 1), sizeof(char *));
    if (sets == NULL) {
        return cli_error(CMD, KB_EXIT_FAILURE, "out of memory");
    }
    double t_start = now_s();
    net_args a = {0};
    a.sets = sets;
    a.val_fraction = 0.2;
    int code = parse_args(&a, argc, argv);
    if (code != KB_EXIT_OK) {
        kb_free(sets);
        return code < 0 ? KB_EXIT_OK : code;
    }
    kb_error err = KB_ERROR_INIT;
    kb_dataset train_ds = {0}, test_ds = {0};
    kb_net_scaler scaler = {0};
    kb_net *net = NULL;
    size_t *perm = NULL;
    float *xt = NULL, *yt = NULL, *xv = NULL, *yv = NULL;
    kb_net_opts o = KB_NET_OPTS_INIT;
    kb_net_arch arch;
    kb_net_weights_info info;
    kb_net_snapshot_info snap;
    char data_id[KB_NET_DATA_ID_MAX];
    code = KB_EXIT_FAILURE;
    if (build_opts(&o, &a, &err) != KB_OK) {
        code = cli_usage(CMD, "%s", err.msg);
        goto done;
    }
    /* --checkpoint: resume when the file holds a snapshot (whether this run can continue it is
       known only once the data and the net are: see below), else start as without it */
    const char *init_arg = a.init;
    int from_ckpt = 0;
    if (a.checkpoint != NULL) {
        a.snapshot = a.checkpoint;
        if (access(a.checkpoint, F_OK) == 0) {
            if (kb_net_snapshot_info_read(&snap, a.checkpoint, &err) == KB_OK) {
                a.resume = a.checkpoint;
                a.init = NULL;
                from_ckpt = 1;
            } else {
                checkpoint_ignored(&a, &err);
            }
        }
    }
    if (a.init != NULL && kb_net_weights_info_read(&info, a.init, &err) != KB_OK) {
        code = cli_fail(CMD, &err);
        goto done;
    }
    if (a.resume != NULL) {
        if (!from_ckpt && kb_net_snapshot_info_read(&snap, a.resume, &err) != KB_OK) {
            code = cli_fail(CMD, &err);
            goto done;
        }
        info = snap.weights;
    }
    if (kb_net_arch_parse(&arch, a.arch != NULL ? a.arch : info.arch, &err) != KB_OK) {
        code = cli_usage(CMD, "%s", err.msg);
        goto done;
    }
    if (a.threads > 0) {
        openblas_set_num_threads((int)a.threads);
    }
    kb_dataset_opts dopts = KB_DATASET_OPTS_INIT;
    dopts.target = a.target;
    if (kb_dataset_read(&train_ds, a.dataset, &dopts, &err) != KB_OK ||
        (a.test != NULL && kb_dataset_read(&test_ds, a.test, &dopts, &err) != KB_OK)) {
        code = cli_fail(CMD, &err);
        goto done;
    }
    if (train_rows_limit(&train_ds, a.max_rows, a.seed, NULL, &err) != KB_OK) {
        code = cli_fail(CMD, &err);
        goto done;
    }
    if (train_ds.n_rows < 2) {
        code = cli_error(CMD, KB_EXIT_DATA, "'%s': needs at least 2 rows", a.dataset);
        goto done;
    }
    int regression = train_ds.task == KB_DATASET_TASK_REGRESSION;
    if (a.test != NULL && (code = align_test(&test_ds, &train_ds, a.test)) != KB_EXIT_OK) {
        goto done;
    }
    code = KB_EXIT_FAILURE;
    size_t n_val = 0;
    const size_t *train_rows = NULL;
    size_t n_train = train_ds.n_rows;
    if (a.test == NULL) {
        if (split_rows(&perm, train_ds.n_rows, a.val_fraction, o.seed, &n_val) != KB_OK) {
            code = cli_error(CMD, KB_EXIT_FAILURE, "out of memory");
            goto done;
        }
        train_rows = perm + n_val;
        n_train = train_ds.n_rows - n_val;
    }
    if (kb_net_scaler_fit(&scaler, &train_ds, train_rows, n_train, &err) != KB_OK ||
        kb_net_scaler_apply(&xt, &yt, &scaler, &train_ds, train_rows, n_train, &err) != KB_OK) {
        code = cli_fail(CMD, &err);
        goto done;
    }
    int val_rc = a.test != NULL
                     ? kb_net_scaler_apply(&xv, &yv, &scaler, &test_ds, NULL, 0, &err)
                     : kb_net_scaler_apply(&xv, &yv, &scaler, &train_ds, perm, n_val, &err);
    if (val_rc != KB_OK) {
        code = cli_fail(CMD, &err);
        goto done;
    }
    kb_net_input input = kb_net_scaler_input(&scaler);
    size_t n_out = regression ? 1 : train_ds.n_classes;
fresh:
    if (kb_net_new(&net, &arch, &input,
                   regression ? KB_NET_TASK_REGRESSION : KB_NET_TASK_CLASSIFICATION, n_out, &o,
                   &err) != KB_OK) {
        code = err.code == KB_EINVAL ? cli_usage(CMD, "%s", err.msg) : cli_fail(CMD, &err);
        goto done;
    }
    snapshot_data_id(data_id, &a, &train_ds, &o);
    if (a.resume != NULL && kb_net_snapshot_load(net, a.resume, scaler.signature, data_id,
                                                 &err) != KB_OK) {
        if (from_ckpt && err.code == KB_EINVAL) {
            goto restart; /* another run's checkpoint */
        }
        code = err.code == KB_EINVAL ? cli_error(CMD, KB_EXIT_USAGE, "%s", err.msg)
                                     : cli_fail(CMD, &err);
        goto done;
    }
    char arch_text[KB_NET_ARCH_MAX];
    kb_net_arch_format(arch_text, sizeof arch_text, &arch);
    if (a.init != NULL && strcmp(arch_text, info.arch) != 0) {
        /* --arch extends the backbone: its layers load, the new last stage starts fresh */
        size_t n_loaded = 0;
        if (kb_net_weights_load_prefix(&n_loaded, net, a.init, scaler.signature, &err) !=
            KB_OK) {
            code = err.code == KB_EINVAL ? cli_error(CMD, KB_EXIT_USAGE, "%s", err.msg)
                                         : cli_fail(CMD, &err);
            goto done;
        }
        if (!a.quiet) {
            fprintf(stderr, "kb %s: note: %zu backbone layers loaded under the new last stage "
                    "'%s'\n", CMD, n_loaded, arch_text + strlen(info.arch));
        }
    } else if (a.init != NULL) {
        int replaced = 0;
        if (kb_net_weights_load(&replaced, net, a.init, scaler.signature, &err) != KB_OK) {
            /* an incompatible backbone is fixed on the command line (--arch, the data) */
            code = err.code == KB_EINVAL ? cli_error(CMD, KB_EXIT_USAGE, "%s", err.msg)
                                         : cli_fail(CMD, &err);
            goto done;
        }
        if (replaced && !a.quiet) {
            fprintf(stderr, "kb %s: note: output layer replaced (%zu outputs, backbone had %zu)\n",
                    CMD, n_out, info.n_outputs);
        }
    }
    kb_net_data dt = {n_train, scaler.dim, xt, yt};
    kb_net_data dv = {a.test != NULL ? test_ds.n_rows : n_val, scaler.dim, xv, yv};
    curve_ctx cc = {regression, scaler.y_std};
    kb_net_result res;
    cli_install_signals();
    if (kb_net_train(&res, net, &dt, dv.n > 0 ? &dv : NULL, on_point, &cc, &err) != KB_OK) {
        if (from_ckpt && err.code == KB_EINVAL) {
            goto restart; /* trained as far as asked already, or on other rows */
        }
        code = err.code == KB_EINVAL && a.resume != NULL ? cli_usage(CMD, "%s", err.msg)
                                                         : cli_fail(CMD, &err);
        goto done;
    }
    const char *status = res.status == KB_NET_STATUS_DIVERGED ? "diverged"
                         : res.status == KB_NET_STATUS_STOPPED ? "interrupted"
                                                               : "ok";
    cJSON *fin = cJSON_CreateObject(), *m = cJSON_CreateObject();
    if (fin == NULL || m == NULL || !cJSON_AddItemToObject(fin, "final", m)) {
        cJSON_Delete(fin);
        cJSON_Delete(m);
        code = cli_error(CMD, KB_EXIT_FAILURE, "out of memory");
        goto done;
    }
    add_real(m, "train_loss", res.last.train_loss);
    add_val_metrics(m, &res.last, &cc);
    if (a.test != NULL) {
        add_real(m, "test_loss", res.last.val_loss);
        if (regression) {
            add_real(m, "test_rmse", sqrt(res.last.val_loss) * scaler.y_std);
        } else {
            add_real(m, "test_accuracy", res.last.val_accuracy);
        }
    }
    add_real(m, "epochs", res.last.epoch);
    add_real(m, "train_seconds", res.train_seconds);
    double samples = res.last.epoch * (double)n_train;
    add_real(m, "train_cpu_seconds", res.train_cpu_seconds);
    add_real(m, "samples_per_second", res.train_seconds > 0 ? samples / res.train_seconds : NAN);
    add_real(m, "samples_per_second_cpu",
             res.train_cpu_seconds > 0 ? samples / res.train_cpu_seconds : NAN);
    cJSON_AddStringToObject(fin, "status", status);
    cJSON_AddNumberToObject(fin, "iteration", (double)res.iteration);
    if (a.resume != NULL) {
        cJSON_AddNumberToObject(fin, "resumed_from", (double)snap.iteration);
    }
    cJSON_AddStringToObject(fin, "arch", arch_text);
    cJSON_AddStringToObject(fin, "input_signature", scaler.signature);
    cJSON_AddStringToObject(fin, "schema", "kb.train.net/1");
    cJSON_AddStringToObject(fin, "workload", "net");
    cJSON_AddStringToObject(fin, "task", regression ? "regression" : "classification");
    cJSON_AddNumberToObject(fin, "n_train", (double)n_train);
    cJSON_AddNumberToObject(fin, "n_val", (double)dv.n);
    cJSON_AddNumberToObject(fin, "n_params", (double)kb_net_n_params(net));
    add_real(fin, "cost_s", now_s() - t_start);
    cJSON_AddStringToObject(fin, "dataset_fingerprint", train_ds.fingerprint);
    cJSON_AddItemToObject(fin, "config", config_json(&o, res.max_iter));
    print_json(fin);
    if (res.status == KB_NET_STATUS_DIVERGED) {
        fprintf(stderr, "kb %s: diverged at iteration %zu (non-finite %s)\n", CMD,
                res.iteration, res.last.nonfinite_weights > 0 ? "weights" : "loss");
        if (a.save != NULL) {
            fprintf(stderr, "kb %s: weights not saved: the run diverged\n", CMD);
        }
        code = KB_EXIT_OK;
        goto done;
    }
    if (a.snapshot != NULL &&
        kb_net_snapshot_save(net, a.snapshot, scaler.signature, data_id, &err) != KB_OK) {
        code = cli_fail(CMD, &err);
        goto done;
    }
    if (res.status == KB_NET_STATUS_STOPPED) {
        code = cli_error(CMD, KB_EXIT_INTERRUPTED, "interrupted at iteration %zu",
                         res.iteration);
        goto done;
    }
    if (a.save != NULL && kb_net_weights_save(net, a.save, scaler.signature, &err) != KB_OK) {
        code = cli_fail(CMD, &err);
        goto done;
    }
    code = KB_EXIT_OK;
    goto done;
restart:
    /* the checkpoint cannot be continued by this run: start from the beginning (nothing was
       trained or printed yet), from --init-from if given; the end of the run overwrites it */
    checkpoint_ignored(&a, &err);
    kb_net_free(net);
    net = NULL;
    a.resume = NULL;
    a.init = init_arg;
    from_ckpt = 0;
    if ((a.init != NULL && kb_net_weights_info_read(&info, a.init, &err) != KB_OK) ||
        kb_net_arch_parse(&arch, a.arch != NULL ? a.arch : info.arch, &err) != KB_OK) {
        code = cli_fail(CMD, &err);
        goto done;
    }
    goto fresh;
done:
    kb_net_free(net);
    kb_free(xt);
    kb_free(yt);
    kb_free(xv);
    kb_free(yv);
    kb_free(perm);
    kb_net_scaler_release(&scaler);
    kb_dataset_release(&train_ds);
    kb_dataset_release(&test_ds);
    kb_free(sets);
    return code;
}
