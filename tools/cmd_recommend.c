/*
 * kb recommend: configurations (and a backbone) for a new dataset, from the most similar past
 * tasks in the knowledge base. The numerics live in engine/similarity and engine/recommend;
 * this file gathers the tasks and runs from the store into their arrays and prints the result.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/core/alloc.h"
#include "engine/core/buf.h"
#include "engine/encode.h"
#include "engine/gp.h"
#include "engine/metafeatures.h"
#include "engine/recommend.h"
#include "engine/similarity.h"
#include "engine/stats.h"
#include "tools/commands.h"
#include "tools/exit.h"
#include "tools/features_cli.h"
#include "tools/paths.h"

enum { OPT_KB = CLI_KEY(0), OPT_TASK, OPT_SPACE, OPT_TOP, OPT_NEIGHBORS, OPT_JSON, OPT_EXCLUDE,
       OPT_NO_MODEL, OPT_HELD_OUT, OPT_CONFIGS };

static const cli_opt opts[] = {
    {"kb", OPT_KB, 1, "PATH", "knowledge base directory (default $KB_PATH or ./kb.lmdb)"},
    {"task", OPT_TASK, 1, "ID", "recommend for a stored task instead of a dataset file"},
    {"space", OPT_SPACE, 1, "NAME", "search space of the configurations (default: the only one with runs)"},
    {"top", 'k', 1, "K", "how many configurations (default 5)"},
    {"neighbors", OPT_NEIGHBORS, 1, "N", "how many nearest tasks to show (default 5)"},
    {"exclude", OPT_EXCLUDE, 1, "ID", "leave this task out of the knowledge base (repeatable)"},
    {"held-out", OPT_HELD_OUT, 0, NULL, "leave out the stored task of DATASET itself (as if it were new)"},
    {"no-model", OPT_NO_MODEL, 0, NULL, "do not fill unevaluated configurations with per-task GPs"},
    {"configs", OPT_CONFIGS, 0, NULL, "print only the configurations, one JSON object per line"},
    {"json", OPT_JSON, 0, NULL, "print the result as JSON (schema kb.recommend/1)"},
    FEATURES_CLI_OPTS,
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_recommend_spec = {
    "recommend", "kb recommend DATASET [options]\n       kb recommend --task ID [options]",
    "Recommend configurations for a new dataset from the past tasks that behave most alike. "
    "kb computes the dataset's meta-features (or reads a stored task's), scales them robustly "
    "on the stored tasks, and weighs every stored task by its L1 distance, with a bandwidth "
    "and a floor of uniform weight chosen by leave-one-out on the knowledge base itself. Each "
    "task's results in the space are normalised to [0, 1] (1 = its best); configurations a "
    "task did not evaluate are filled from a GP fitted on that task's runs. The first "
    "recommendation has the best weighted mean score; the next ones maximise the expected "
    "best of the list, so the list hedges across neighbours. Each comes with its predicted "
    "score and uncertainty, and the nearest tasks with the meta-features that make them "
    "near. Where stored runs fine-tuned backbones, the backbone with the best weighted "
    "result is recommended too.",
    opts,
    "  kb recommend datasets/iris.csv.gz --space svm\n"
    "  kb recommend --task t-1a2b3c4d5e6f7a8b --space mlp --top 10 --json\n"
    "  kb recommend wine --space svm --held-out --configs > configs.jsonl",
    NULL};

#define MAX_EXCLUDE 64

/* One stored task with meta-features. */
typedef struct rtask {
    char *id, *name;
    double *f;       /* n_feat values, NaN missing */
    size_t n_runs;   /* runs in the space */
    int direction;   /* of its runs: 1 maximize, 0 minimize, -1 unknown */
    kb_task_type type;
} rtask;

/* One distinct configuration across the tasks' runs. */
typedef struct rconf {
    char *key;          /* canonical text */
    kb_param *config;   /* owned copy */
    size_t n_config;
} rconf;

typedef struct rctx {
    const char *space;
    size_t n_feat;
    rtask *tasks;
    size_t n_tasks, cap_tasks;
    rconf *confs;
    size_t n_confs, cap_confs;
    double *raw;        /* n_tasks x n_confs column-major raw objective (last seen), NaN */
    size_t cap_raw_tasks, cap_raw_confs;
    const char **exclude;
    size_t n_exclude;
    const char *query_id;   /* stored task used as the query (excluded from the KB) */
    double *query_f;        /* its features, when query_id is set */
    kb_task_type query_type; /* classification tasks learn from classification tasks */
    char *objective;
    int failed;
    kb_error err;
} rctx;

static int excluded(const rctx *c, const char *id)
{
    for (size_t i = 0; i < c->n_exclude; i++) {
        if (strcmp(c->exclude[i], id) == 0) {
            return 1;
        }
    }
    return c->query_id != NULL && strcmp(c->query_id, id) == 0;
}

static int fail(rctx *c, const char *what)
{
    c->failed = 1;
    kb_error_set(&c->err, KB_ENOMEM, "out of memory %s", what);
    return 1;
}

static double *task_features(const kb_task *t, size_t n_feat)
{
    double *f = kb_malloc_array(n_feat, sizeof *f);
    if (f == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < n_feat; j++) {
        f[j] = NAN;
    }
    for (size_t i = 0; i < t->n_features; i++) {
        int j = kb_metafeatures_index(t->features[i].name);
        if (j >= 0 && (size_t)j < n_feat) {
            f[j] = t->features[i].value;
        }
    }
    return f;
}

static int on_task(const kb_task *t, void *payload)
{
    rctx *c = payload;
    if (c->query_id != NULL && strcmp(t->id, c->query_id) == 0) {
        return 0; /* the query itself, read before the scan */
    }
    if (excluded(c, t->id) || t->n_features == 0) {
        return 0;
    }
    /* a task of the other kind (regression vs classification) has incomparable results */
    if (c->query_type != KB_TASK_TYPE_UNKNOWN && t->type != KB_TASK_TYPE_UNKNOWN &&
        t->type != c->query_type) {
        return 0;
    }
    if (c->n_tasks == c->cap_tasks) {
        size_t cap = c->cap_tasks ? 2 * c->cap_tasks : 64;
        rtask *nt = kb_realloc_array(c->tasks, cap, sizeof *nt);
        if (nt == NULL) {
            return fail(c, "loading tasks");
        }
        c->tasks = nt;
        c->cap_tasks = cap;
    }
    rtask *r = &c->tasks[c->n_tasks];
    memset(r, 0, sizeof *r);
    r->direction = -1;
    r->type = t->type;
    r->id = kb_strdup(t->id);
    r->name = kb_strdup(t->name != NULL ? t->name : t->id);
    r->f = task_features(t, c->n_feat);
    if (r->id == NULL || r->name == NULL || r->f == NULL) {
        kb_free(r->id);
        kb_free(r->name);
        kb_free(r->f);
        return fail(c, "loading tasks");
    }
    c->n_tasks++;
    return 0;
}

static long find_task(const rctx *c, const char *id)
{
    for (size_t i = 0; i < c->n_tasks; i++) {
        if (strcmp(c->tasks[i].id, id) == 0) {
            return (long)i;
        }
    }
    return -1;
}

/* Canonical text of a configuration (params are sorted by name in stored runs). */
static int config_key(kb_buf *b, const kb_param *p, size_t n)
{
    kb_buf_reset(b);
    int rc = KB_OK;
    for (size_t i = 0; i < n && rc == KB_OK; i++) {
        const kb_value *v = &p[i].value;
        switch (v->type) {
        case KB_VALUE_TYPE_FLOAT: rc = kb_buf_printf(b, "%s=%.17g;", p[i].name, v->f); break;
        case KB_VALUE_TYPE_INT: rc = kb_buf_printf(b, "%s=%lld;", p[i].name, (long long)v->i); break;
        case KB_VALUE_TYPE_STR: rc = kb_buf_printf(b, "%s='%s';", p[i].name, v->s); break;
        case KB_VALUE_TYPE_BOOL: rc = kb_buf_printf(b, "%s=%s;", p[i].name, v->b ? "true" : "false"); break;
        default: rc = kb_buf_printf(b, "%s=;", p[i].name);
        }
    }
    if (rc == KB_OK && b->data == NULL) {
        rc = kb_buf_puts(b, "");
    }
    return rc;
}

static int grow_raw(rctx *c, size_t need_confs)
{
    if (need_confs <= c->cap_raw_confs && c->n_tasks <= c->cap_raw_tasks) {
        return KB_OK;
    }
    size_t nc = c->cap_raw_confs ? c->cap_raw_confs : 256;
    while (nc < need_confs) {
        nc *= 2;
    }
    size_t nt = c->n_tasks > 0 ? c->n_tasks : 1;
    double *raw = kb_malloc_array(nt * nc, sizeof *raw);
    if (raw == NULL) {
        return KB_ENOMEM;
    }
    for (size_t i = 0; i < nt * nc; i++) {
        raw[i] = NAN;
    }
    for (size_t j = 0; j < c->n_confs; j++) {
        for (size_t t = 0; t < c->cap_raw_tasks && t < nt; t++) {
            raw[t + j * nt] = c->raw[t + j * c->cap_raw_tasks];
        }
    }
    kb_free(c->raw);
    c->raw = raw;
    c->cap_raw_confs = nc;
    c->cap_raw_tasks = nt;
    return KB_OK;
}

typedef struct run_ctx {
    rctx *c;
    kb_buf key;
} run_ctx;

static int on_run(const kb_run *r, void *payload)
{
    run_ctx *rc_ = payload;
    rctx *c = rc_->c;
    if (r->status != KB_RUN_STATUS_OK || r->objective == NULL || r->backbone_id != NULL) {
        return 0;
    }
    long t = find_task(c, r->task_id);
    if (t < 0) {
        return 0;
    }
    if (c->objective == NULL && (c->objective = kb_strdup(r->objective)) == NULL) {
        return fail(c, "reading runs");
    }
    if (strcmp(r->objective, c->objective) != 0) {
        return 0; /* one objective per recommendation; the first seen decides */
    }
    double v = NAN;
    for (size_t i = 0; i < r->n_metrics; i++) {
        if (strcmp(r->metrics[i].name, r->objective) == 0) {
            v = r->metrics[i].value;
        }
    }
    if (!isfinite(v)) {
        return 0;
    }
    if (config_key(&rc_->key, r->config, r->n_config) != KB_OK) {
        return fail(c, "reading runs");
    }
    size_t j = 0;
    while (j < c->n_confs && strcmp(c->confs[j].key, rc_->key.data) != 0) {
        j++;
    }
    if (j == c->n_confs) {
        if (c->n_confs == c->cap_confs) {
            size_t cap = c->cap_confs ? 2 * c->cap_confs : 256;
            rconf *nc = kb_realloc_array(c->confs, cap, sizeof *nc);
            if (nc == NULL) {
                return fail(c, "reading runs");
            }
            c->confs = nc;
            c->cap_confs = cap;
        }
        rconf *k = &c->confs[j];
        memset(k, 0, sizeof *k);
        k->key = kb_strdup(rc_->key.data);
        k->config = kb_calloc(r->n_config ? r->n_config : 1, sizeof *k->config);
        if (k->key == NULL || k->config == NULL || grow_raw(c, j + 1) != KB_OK) {
            kb_free(k->key);
            kb_free(k->config);
            return fail(c, "reading runs");
        }
        for (size_t i = 0; i < r->n_config; i++) {
            k->config[i].name = kb_strdup(r->config[i].name);
            if (k->config[i].name == NULL ||
                kb_value_copy(&k->config[i].value, &r->config[i].value) != KB_OK) {
                k->n_config = i + 1;
                c->n_confs++;
                return fail(c, "reading runs");
            }
        }
        k->n_config = r->n_config;
        c->n_confs++;
    }
    /* the best result of a repeated configuration counts */
    double *cell = &c->raw[(size_t)t + j * c->cap_raw_tasks];
    int maximize = r->direction == KB_DIRECTION_MAXIMIZE;
    if (isnan(*cell) || (maximize ? v > *cell : v < *cell)) {
        *cell = v;
    }
    c->tasks[t].n_runs++;
    c->tasks[t].direction = maximize;
    return 0;
}

/* Per-task GP fill-in: predicted normalised scores (and variances) where a task has none. */
static void fill_with_models(double *scores, double *var, size_t nt, size_t nc, const rctx *c,
                             const kb_space *space)
{
    kb_encode *enc = NULL;
    kb_error err = KB_ERROR_INIT;
    if (kb_encode_new(&enc, space, &err) != KB_OK) {
        return;
    }
    size_t d = kb_encode_n_dims(enc), p = kb_encode_n_params(enc);
    double *u = kb_malloc_array(p ? p : 1, sizeof *u);
    double *xall = kb_malloc_array(nc * (d ? d : 1), sizeof *xall);
    double *xt = kb_malloc_array(nc * (d ? d : 1), sizeof *xt);
    double *yt = kb_malloc_array(nc, sizeof *yt), *mu = kb_malloc_array(nc, sizeof *mu);
    double *vv = kb_malloc_array(nc, sizeof *vv);
    unsigned char *ok = kb_calloc(nc ? nc : 1, 1);
    if (u == NULL || xall == NULL || xt == NULL || yt == NULL || mu == NULL || vv == NULL ||
        ok == NULL) {
        goto done;
    }
    for (size_t j = 0; j < nc; j++) {
        if (kb_encode_config(u, enc, c->confs[j].config, c->confs[j].n_config, &err) == KB_OK) {
            kb_encode_snap(enc, u);
            double x[256];
            if (d <= 256) {
                kb_encode_features(x, enc, u);
                for (size_t k = 0; k < d; k++) {
                    xall[j + k * nc] = x[k];
                }
                ok[j] = 1;
            }
        }
    }
    for (size_t t = 0; t < nt; t++) {
        size_t n = 0, missing = 0;
        for (size_t j = 0; j < nc; j++) {
            double s = scores[t + j * nt];
            if (ok[j] && !isnan(s)) {
                for (size_t k = 0; k < d; k++) {
                    xt[n + k * nc] = xall[j + k * nc];
                }
                yt[n++] = s;
            }
            missing += ok[j] && isnan(s);
        }
        /* A model from fewer than 5 results says little; leave those cells unknown. */
        if (n < 5 || missing == 0) {
            continue;
        }
        kb_gp_opts go = KB_GP_OPTS_INIT;
        go.n_restarts = 1;
        go.seed = t;
        kb_gp *gp = NULL;
        if (kb_gp_fit(&gp, xt, nc, n, d, yt, &go, NULL, &err) != KB_OK) {
            continue;
        }
        if (kb_gp_predict(mu, vv, gp, xall, nc, nc, &err) == KB_OK) {
            for (size_t j = 0; j < nc; j++) {
                if (ok[j] && isnan(scores[t + j * nt])) {
                    scores[t + j * nt] = mu[j] < 0 ? 0 : mu[j] > 1 ? 1 : mu[j];
                    var[t + j * nt] = vv[j];
                }
            }
        }
        kb_gp_free(gp);
    }
done:
    kb_free(u);
    kb_free(xall);
    kb_free(xt);
    kb_free(yt);
    kb_free(mu);
    kb_free(vv);
    kb_free(ok);
    kb_encode_free(enc);
}

static void print_config(const rconf *k)
{
    for (size_t i = 0; i < k->n_config; i++) {
        const kb_value *v = &k->config[i].value;
        printf("%s%s=", i ? " " : "", k->config[i].name);
        switch (v->type) {
        case KB_VALUE_TYPE_FLOAT: printf("%.4g", v->f); break;
        case KB_VALUE_TYPE_INT: printf("%lld", (long long)v->i); break;
        case KB_VALUE_TYPE_STR: printf("%s", v->s); break;
        case KB_VALUE_TYPE_BOOL: printf("%s", v->b ? "true" : "false"); break;
        default: break;
        }
    }
}

static double json_num(double v)
{
    return isfinite(v) ? v : 0.0;
}

static cJSON *num_or_null(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static void release_ctx(rctx *c)
{
    for (size_t i = 0; i < c->n_tasks; i++) {
        kb_free(c->tasks[i].id);
        kb_free(c->tasks[i].name);
        kb_free(c->tasks[i].f);
    }
    kb_free(c->tasks);
    for (size_t j = 0; j < c->n_confs; j++) {
        kb_free(c->confs[j].key);
        kb_params_free(c->confs[j].config, c->confs[j].n_config);
    }
    kb_free(c->confs);
    kb_free(c->raw);
    kb_free(c->query_f);
    kb_free(c->objective);
}

typedef struct space_count {
    size_t n;
    char name[128];
} space_count;

static int count_space(const kb_space *s, void *payload)
{
    space_count *sc = payload;
    if (sc->n++ == 0) {
        snprintf(sc->name, sizeof sc->name, "%s", s->name);
    }
    return 0;
}

int cmd_recommend(int argc, char **argv)
{
    const char *opt_kb = NULL, *task_id = NULL, *space_name = NULL;
    size_t top = 5, n_show = 5;
    int json = 0, use_model = 1, held_out = 0, configs_only = 0;
    const char *excl[MAX_EXCLUDE];
    size_t n_excl = 0;
    features_args fa;
    features_args_init(&fa, "recommend");
    cli_parser p;
    cli_begin(&p, &cmd_recommend_spec, argc, argv);
    for (int c; (c = cli_next(&p)) != -1;) {
        int shared = features_args_option(&fa, c, p.arg);
        if (shared < 0) {
            return KB_EXIT_USAGE;
        }
        if (shared > 0) {
            continue;
        }
        switch (c) {
        case OPT_KB: opt_kb = p.arg; break;
        case OPT_TASK: task_id = p.arg; break;
        case OPT_SPACE: space_name = p.arg; break;
        case 'k':
            if (cli_parse_size("recommend", "top", p.arg, &top) != 0 || top == 0) {
                return top == 0 ? cli_usage("recommend", "--top must be at least 1")
                                : KB_EXIT_USAGE;
            }
            break;
        case OPT_NEIGHBORS:
            if (cli_parse_size("recommend", "neighbors", p.arg, &n_show) != 0) {
                return KB_EXIT_USAGE;
            }
            break;
        case OPT_EXCLUDE:
            if (n_excl == MAX_EXCLUDE) {
                return cli_usage("recommend", "at most %d --exclude options", MAX_EXCLUDE);
            }
            excl[n_excl++] = p.arg;
            break;
        case OPT_NO_MODEL: use_model = 0; break;
        case OPT_HELD_OUT: held_out = 1; break;
        case OPT_CONFIGS: configs_only = 1; break;
        case OPT_JSON: json = 1; break;
        case CLI_HELP_KEY: return KB_EXIT_OK;
        default: return KB_EXIT_USAGE;
        }
    }
    int first = cli_rest(&p);
    const char *dataset = first < argc ? argv[first] : NULL;
    if ((dataset == NULL) == (task_id == NULL) || argc - first > 1) {
        return cli_usage("recommend", "name one DATASET or --task ID");
    }
    if (held_out && dataset == NULL) {
        return cli_usage("recommend", "--held-out goes with a DATASET");
    }

    rctx c;
    memset(&c, 0, sizeof c);
    c.n_feat = kb_metafeatures_count();
    c.query_id = task_id;
    char dataset_path[4096] = "";
    char fingerprint[65] = "";
    if (dataset != NULL) {
        paths_dataset_file(dataset_path, sizeof dataset_path, dataset, NULL);
        kb_dataset d;
        kb_metafeatures mf;
        int rc = features_load(&d, &mf, dataset_path, &fa);
        if (rc != KB_EXIT_OK) {
            return rc;
        }
        memcpy(fingerprint, d.fingerprint, sizeof fingerprint);
        c.query_type = d.task == KB_DATASET_TASK_REGRESSION ? KB_TASK_TYPE_REGRESSION
                                                           : KB_TASK_TYPE_CLASSIFICATION;
        /* kb add-task names a dataset's task "t-" + the first 16 hex digits of its fingerprint */
        static char self_id[19];
        snprintf(self_id, sizeof self_id, "t-%.16s", fingerprint);
        if (held_out && n_excl < MAX_EXCLUDE) {
            excl[n_excl++] = self_id;
        }
        kb_dataset_release(&d);
        c.query_f = kb_malloc_array(c.n_feat, sizeof *c.query_f);
        if (c.query_f == NULL) {
            return cli_error("recommend", KB_EXIT_FAILURE, "out of memory");
        }
        memcpy(c.query_f, mf.values, c.n_feat * sizeof *c.query_f);
    }

    c.exclude = excl;
    c.n_exclude = n_excl;
    kb_store *store = NULL;
    int rc = cli_open_store(&store, "recommend", opt_kb, KB_STORE_OPEN_RDONLY, &fa.log);
    if (rc != KB_EXIT_OK) {
        release_ctx(&c);
        return rc;
    }
    kb_error err = KB_ERROR_INIT;
    kb_space space = {0};
    space_count sc = {0, ""};
    if (space_name == NULL) {
        kb_store_foreach_space(store, NULL, count_space, &sc, &err);
        if (sc.n != 1) {
            kb_store_close(store);
            release_ctx(&c);
            return cli_usage("recommend", sc.n == 0 ? "the knowledge base holds no search space"
                                                    : "say which space: --space NAME");
        }
        space_name = sc.name;
    }
    c.space = space_name;
    int have_space = kb_store_get_space(&space, store, space_name, &err) == KB_OK;
    if (task_id != NULL) {
        /* the query task first: its type decides which tasks are comparable */
        kb_task qt = {0};
        if (kb_store_get_task(&qt, store, task_id, &err) == KB_OK && qt.n_features > 0) {
            c.query_f = task_features(&qt, c.n_feat);
            c.query_type = qt.type;
        }
        kb_task_release(&qt);
    }
    kb_store_filter f = KB_STORE_FILTER_INIT;
    rc = kb_store_foreach_task(store, &f, on_task, &c, &err);
    if (rc == KB_OK && !c.failed) {
        run_ctx rcx = {&c, KB_BUF_INIT};
        f.space = space_name;
        f.status = KB_RUN_STATUS_OK;
        rc = kb_store_foreach_run(store, &f, on_run, &rcx, &err);
        kb_buf_release(&rcx.key);
    }
    kb_store_close(store);
    if (c.failed || rc != KB_OK) {
        int code = cli_fail("recommend", c.failed ? &c.err : &err);
        kb_space_release(&space);
        release_ctx(&c);
        return code;
    }
    if (task_id != NULL && c.query_f == NULL) {
        kb_space_release(&space);
        release_ctx(&c);
        return cli_error("recommend", KB_EXIT_FAILURE, "no task '%s' with meta-features", task_id);
    }

    /* The knowledge base for this query: tasks with runs in the space. */
    size_t nt = 0, nc = c.n_confs, nf = c.n_feat;
    size_t *rows = kb_malloc_array(c.n_tasks ? c.n_tasks : 1, sizeof *rows);
    for (size_t t = 0; rows != NULL && t < c.n_tasks; t++) {
        if (c.tasks[t].n_runs > 0) {
            rows[nt++] = t;
        }
    }
    if (nt == 0 || nc == 0) {
        kb_free(rows);
        kb_space_release(&space);
        release_ctx(&c);
        return cli_error("recommend", KB_EXIT_FAILURE,
                         "no stored task with meta-features has ok runs in space '%s' "
                         "(add tasks with 'kb add-task' and their runs with 'kb ingest')",
                         space_name);
    }
    double *scores = kb_malloc_array(nt * nc, sizeof *scores);
    double *var = kb_calloc(nt * nc, sizeof *var);
    double *z = kb_malloc_array(nt * nf, sizeof *z), *q = kb_malloc_array(nf, sizeof *q);
    double *dist = kb_malloc_array(nt, sizeof *dist), *w = kb_malloc_array(nt, sizeof *w);
    double *pair = kb_malloc_array(nt * nt, sizeof *pair), *row = kb_malloc_array(nc, sizeof *row);
    kb_recommend_item *items = kb_malloc_array(top, sizeof *items);
    kb_similarity_scaler scaler = {0};
    kb_similarity_index ix = {0};
    kb_recommend_weighting wt = {1.0, 0.1, NAN};
    int code = KB_EXIT_OK;
    if (scores == NULL || var == NULL || z == NULL || q == NULL || dist == NULL || w == NULL ||
        pair == NULL || row == NULL || items == NULL) {
        code = cli_error("recommend", KB_EXIT_FAILURE, "out of memory");
        goto done;
    }
    for (size_t r = 0; r < nt; r++) {
        const rtask *tk = &c.tasks[rows[r]];
        for (size_t j = 0; j < nc; j++) {
            row[j] = c.raw[rows[r] + j * c.cap_raw_tasks];
        }
        kb_recommend_normalize(row, nc, tk->direction != 0);
        for (size_t j = 0; j < nc; j++) {
            scores[r + j * nt] = row[j];
        }
        memcpy(z + r * nf, tk->f, nf * sizeof *z);
    }
    if (use_model && have_space) {
        fill_with_models(scores, var, nt, nc, &c, &space);
    }
    memcpy(q, c.query_f, nf * sizeof *q);
    if (kb_similarity_scaler_fit(&scaler, z, nt, nf, &err) != KB_OK ||
        (kb_similarity_scaler_apply(&scaler, z, nt), kb_similarity_scaler_apply(&scaler, q, 1),
         kb_similarity_index_build(&ix, z, nt, nf, NULL, &err)) != KB_OK) {
        code = cli_fail("recommend", &err);
        goto done;
    }
    for (size_t r = 0; r < nt; r++) {
        dist[r] = kb_similarity_distance(&ix, r, q, KB_SIMILARITY_L1, NULL);
        for (size_t o = 0; o < nt; o++) {
            pair[r + o * nt] = kb_similarity_distance(&ix, o, z + r * nf, KB_SIMILARITY_L1, NULL);
        }
    }
    if (nt >= 3 && kb_recommend_tune(&wt, scores, pair, nt, nc, top < 10 ? 10 : top, &err) != KB_OK) {
        code = cli_fail("recommend", &err);
        goto done;
    }
    kb_recommend_weights(w, dist, nt, wt.bandwidth, wt.floor);
    size_t n_items = 0;
    if (kb_recommend_rank(items, &n_items, scores, var, nt, nc, w, top, NULL, &err) != KB_OK) {
        code = cli_fail("recommend", &err);
        goto done;
    }

    /* nearest tasks, closest first */
    size_t n_near = n_show < nt ? n_show : nt;
    size_t *near = kb_malloc_array(nt, sizeof *near);
    if (near == NULL) {
        code = cli_error("recommend", KB_EXIT_FAILURE, "out of memory");
        goto done;
    }
    for (size_t r = 0; r < nt; r++) {
        near[r] = r;
    }
    for (size_t a = 0; a < n_near; a++) {
        for (size_t b = a + 1; b < nt; b++) {
            if (dist[near[b]] < dist[near[a]]) {
                size_t tmp = near[a];
                near[a] = near[b];
                near[b] = tmp;
            }
        }
    }
    double wsum = 0;
    for (size_t r = 0; r < nt; r++) {
        wsum += w[r];
    }
    /* Reasons: the features where a neighbour is closer than the median task is. */
    double *typical = kb_malloc_array(nf, sizeof *typical);
    double *contrib = kb_malloc_array(nt * nf, sizeof *contrib);
    double *col = kb_malloc_array(nt, sizeof *col);
    if (typical != NULL && contrib != NULL && col != NULL) {
        for (size_t r = 0; r < nt; r++) {
            kb_similarity_contributions(contrib + r * nf, &ix, r, q, KB_SIMILARITY_L1);
        }
        for (size_t j = 0; j < nf; j++) {
            for (size_t r = 0; r < nt; r++) {
                col[r] = contrib[r * nf + j];
            }
            typical[j] = kb_stats_median(col, nt, NULL);
        }
    }
    kb_free(contrib);
    kb_free(col);
    if (configs_only) {
        for (size_t i = 0; i < n_items && code == KB_EXIT_OK; i++) {
            const rconf *k = &c.confs[items[i].config];
            cJSON *cfg = cJSON_CreateObject();
            for (size_t j = 0; j < k->n_config; j++) {
                cJSON_AddItemToObject(cfg, k->config[j].name, cli_value_json(&k->config[j].value));
            }
            code = cli_emit_json(cfg);
        }
        kb_free(near);
        kb_free(typical);
        goto done;
    }
    cJSON *doc = json ? cJSON_CreateObject() : NULL;
    cJSON *jn = NULL, *jr = NULL;
    if (json) {
        cJSON_AddStringToObject(doc, "schema", "kb.recommend/1");
        cJSON_AddStringToObject(doc, "space", space_name);
        cJSON_AddStringToObject(doc, "objective", c.objective);
        cJSON *jq = cJSON_AddObjectToObject(doc, "query");
        if (task_id != NULL) {
            cJSON_AddStringToObject(jq, "task", task_id);
        } else {
            cJSON_AddStringToObject(jq, "dataset", dataset_path);
            cJSON_AddStringToObject(jq, "fingerprint", fingerprint);
        }
        cJSON_AddNumberToObject(doc, "tasks", (double)nt);
        cJSON_AddNumberToObject(doc, "configurations", (double)nc);
        cJSON *jw = cJSON_AddObjectToObject(doc, "weighting");
        cJSON_AddNumberToObject(jw, "bandwidth", wt.bandwidth);
        cJSON_AddNumberToObject(jw, "floor", wt.floor > 1e3 ? 1e3 : wt.floor);
        cJSON_AddItemToObject(jw, "loo_regret", num_or_null(wt.loo_regret));
        jn = cJSON_AddArrayToObject(doc, "neighbors");
        jr = cJSON_AddArrayToObject(doc, "recommendations");
    } else {
        printf("nearest tasks (of %zu with runs in space '%s'):\n", nt, space_name);
        printf("  %-24s %-22s %9s %7s %5s  %s\n", "task", "name", "distance", "weight", "runs",
               "closest on");
    }
    for (size_t a = 0; a < n_near; a++) {
        size_t r = near[a];
        const rtask *tk = &c.tasks[rows[r]];
        size_t fe[3];
        size_t n_fe = typical != NULL
                          ? kb_similarity_explain(fe, NULL, 3, &ix, r, q, KB_SIMILARITY_L1, typical)
                          : 0;
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "task", tk->id);
            cJSON_AddStringToObject(o, "name", tk->name);
            cJSON_AddItemToObject(o, "distance", num_or_null(dist[r]));
            cJSON_AddNumberToObject(o, "weight", json_num(w[r] / wsum));
            cJSON_AddNumberToObject(o, "runs", (double)tk->n_runs);
            cJSON *why = cJSON_AddArrayToObject(o, "closest_features");
            for (size_t i = 0; i < n_fe; i++) {
                cJSON *fo = cJSON_CreateObject();
                cJSON_AddStringToObject(fo, "feature", kb_metafeatures_name(fe[i]));
                cJSON_AddItemToObject(fo, "query", num_or_null(c.query_f[fe[i]]));
                cJSON_AddItemToObject(fo, "neighbor", num_or_null(tk->f[fe[i]]));
                cJSON_AddItemToArray(why, fo);
            }
            cJSON_AddItemToArray(jn, o);
        } else {
            printf("  %-24s %-22.22s %9.3f %7.3f %5zu ", tk->id, tk->name, dist[r], w[r] / wsum,
                   tk->n_runs);
            for (size_t i = 0; i < n_fe; i++) {
                printf(" %s (%.3g vs %.3g)", kb_metafeatures_name(fe[i]), c.query_f[fe[i]],
                       tk->f[fe[i]]);
            }
            putchar('\n');
        }
    }
    if (!json) {
        printf("\nrecommended configurations (predicted normalised %s: 1 = a task's best, 0 = "
               "its worst):\n", c.objective);
        printf("  %-4s %-7s %-6s %-9s %-9s %s\n", "rank", "score", "+-", "coverage", c.objective,
               "configuration");
    }
    for (size_t i = 0; i < n_items; i++) {
        const rconf *k = &c.confs[items[i].config];
        /* the neighbours' own results for it, weighted: a raw-unit expectation */
        double rw = 0, rv = 0;
        for (size_t r = 0; r < nt; r++) {
            double v = c.raw[rows[r] + items[i].config * c.cap_raw_tasks];
            if (!isnan(v)) {
                rw += w[r];
                rv += w[r] * v;
            }
        }
        double raw_mean = rw > 0 ? rv / rw : NAN;
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "rank", (double)(i + 1));
            cJSON *cfg = cJSON_AddObjectToObject(o, "config");
            for (size_t j = 0; j < k->n_config; j++) {
                cJSON_AddItemToObject(cfg, k->config[j].name, cli_value_json(&k->config[j].value));
            }
            cJSON_AddItemToObject(o, "predicted_score", num_or_null(items[i].mean));
            cJSON_AddItemToObject(o, "sd", num_or_null(items[i].sd));
            cJSON_AddNumberToObject(o, "coverage", json_num(items[i].coverage));
            cJSON_AddItemToObject(o, "neighbors_mean_objective", num_or_null(raw_mean));
            cJSON_AddItemToObject(o, "list_value", num_or_null(items[i].list_value));
            cJSON_AddItemToArray(jr, o);
        } else {
            printf("  %-4zu %-7.3f %-6.3f %-9.2f %-9.4g ", i + 1, items[i].mean, items[i].sd,
                   items[i].coverage, raw_mean);
            print_config(k);
            putchar('\n');
        }
    }
    kb_free(near);
    kb_free(typical);
    if (json) {
        code = cli_emit_json(doc);
    } else {
        printf("\nweighting chosen by leave-one-out on the knowledge base: bandwidth %.2g x "
               "median distance, uniform floor %.3g\n", wt.bandwidth, wt.floor);
    }
done:
    kb_similarity_index_release(&ix);
    kb_similarity_scaler_release(&scaler);
    kb_free(scores);
    kb_free(var);
    kb_free(z);
    kb_free(q);
    kb_free(dist);
    kb_free(w);
    kb_free(pair);
    kb_free(row);
    kb_free(items);
    kb_free(rows);
    kb_space_release(&space);
    release_ctx(&c);
    return code;
}
