/*
 * kb recommend: configurations (and a backbone) for a new dataset, from the most similar past
 * tasks in the knowledge base. The numerics live in engine/similarity and engine/recommend;
 * this file gathers the tasks and runs from the store into their arrays and prints the result.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <cjson/cJSON.h>

#include "engine/core/alloc.h"
#include "engine/core/buf.h"
#include "engine/encode.h"
#include "engine/gp.h"
#include "engine/metafeatures.h"
#include "engine/net.h"
#include "engine/recommend.h"
#include "engine/similarity.h"
#include "engine/stats.h"
#include "tools/backbone_logme.h"
#include "tools/commands.h"
#include "tools/exit.h"
#include "tools/features_cli.h"
#include "tools/paths.h"

enum { OPT_KB = CLI_KEY(0), OPT_TASK, OPT_SPACE, OPT_TOP, OPT_NEIGHBORS, OPT_JSON, OPT_EXCLUDE,
       OPT_NO_MODEL, OPT_HELD_OUT, OPT_CONFIGS, OPT_SIGNATURE, OPT_NEIGHBORHOOD, OPT_TUNE_TASKS,
       OPT_NO_CACHE, OPT_TRANSFER, OPT_TRANSFER_ROWS };

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
    {"signature", OPT_SIGNATURE, 1, "SIG", "input signature of the query for backbones (default: computed)"},
    {"neighborhood", OPT_NEIGHBORHOOD, 1, "N", "weigh only the N nearest tasks (default 256)"},
    {"tune-tasks", OPT_TUNE_TASKS, 1, "N", "fit the weighting model on the N nearest tasks (default 16)"},
    {"no-cache", OPT_NO_CACHE, 0, NULL, "read every task and run instead of the derived table"},
    {"transfer", OPT_TRANSFER, 1, "logme|none", "score compatible backbones on DATASET itself (default logme)"},
    {"transfer-rows", OPT_TRANSFER_ROWS, 1, "N", "rows of DATASET the transfer score reads (default 2000)"},
    {"json", OPT_JSON, 0, NULL, "print the result as JSON (schema kb.recommend/1)"},
    FEATURES_CLI_OPTS,
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_recommend_spec = {
    "recommend", "kb recommend DATASET [options]\n       kb recommend --task ID [options]",
    "Recommend configurations for a new dataset from the past tasks that behave most alike. "
    "kb computes the dataset's meta-features (or reads a stored task's), scales them robustly "
    "on the stored tasks, and weighs every stored task by a model fitted on the knowledge "
    "base itself: a Gaussian process over meta-features (Laplacian kernel of the L1 distance) "
    "whose fitted signal says how far similar tasks score alike; with no signal the weights "
    "are uniform. The model is then checked on the stored tasks themselves: each in turn is "
    "the query and the others its knowledge base; unless the model's weights beat uniform "
    "weights there, kb uses uniform weights (the greedy portfolio), and unless they also pick "
    "a better first configuration, the first pick is uniform weights'. Each "
    "task's results in the space are normalised to [0, 1] (1 = its best); configurations a "
    "task did not evaluate are filled from a GP fitted on that task's runs. The first "
    "recommendation has the best weighted mean score; the next ones maximise the expected "
    "best of the list, so the list hedges across neighbours (blended with the plain weighted "
    "mean as far as the same leave-one-out says hedging does not pay). Each comes with its predicted "
    "score and uncertainty, and the nearest tasks with the meta-features that make them "
    "near. Only the nearest tasks (--neighborhood) are weighed, and the model is fitted on "
    "the nearest few (--tune-tasks), so a large knowledge base costs one scan. Backbones whose "
    "input signature (image:CxHxW or tabular:<schema hash>, as kb train net computes it) "
    "matches the query's are ranked by their fine-tune results on the weighted tasks (each "
    "task's results normalised across backbones; runs with a backbone id, and runs of the "
    "space whose configuration names a backbone in a 'backbone' parameter), with the expected "
    "result and its "
    "uncertainty; a backbone never fine-tuned ranks after them by the similarity of its "
    "source task. For a DATASET, each compatible backbone is also scored on the data itself "
    "(LogME of its penultimate features, --transfer), and the rank key becomes the mean of "
    "the knowledge base's key and the LogME score, each scaled to [0, 1] across backbones.",
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
    int unsorted;           /* tasks are not in id order (find_task scans them) */
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
    if (c->n_tasks > 0 && strcmp(c->tasks[c->n_tasks - 1].id, t->id) >= 0) {
        c->unsorted = 1;
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

/* Binary search of `id` among n ids in strcmp order, id_at(set, i) giving the i-th; or -1. */
static long search_ids(const void *set, size_t n, const char *(*id_at)(const void *, size_t),
                       const char *id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(id_at(set, mid), id);
        if (cmp == 0) {
            return (long)mid;
        }
        if (cmp < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -1;
}

static const char *rtask_id(const void *tasks, size_t i)
{
    return ((const rtask *)tasks)[i].id;
}

/* Binary search while the tasks are in id order (the store's order), else a linear scan. */
static long find_task(const rctx *c, const char *id)
{
    if (!c->unsorted) {
        return search_ids(c->tasks, c->n_tasks, rtask_id, id);
    }
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

/* ---- the derived table for large knowledge bases (kept in the store's cache) ---- */

/*
 * Above `--neighborhood` tasks, kb recommend does not read every task and run per query. The
 * tasks of the query's kind with runs in the space, their meta-features, the robust scaler
 * fitted on all of them, a 16-bit quantised scaled copy for the scan, and each task's best result per
 * configuration are derived once into one flat blob (native byte order, 8-byte aligned), kept
 * in the store's cache under "recommend/2/<space>/<kind>" with the task generation and the run
 * counts it was derived at, and read in place through a zero-copy view. A query scans the
 * 16-bit quantised matrix, takes exact distances for the candidates and materialises only the
 * nearest `--neighborhood` tasks. A blob is current while the task generation, the number of
 * runs and the number of ok runs are unchanged (NEEDSWORK: an update that changes a run's
 * metrics but not its status is not seen until the next such change).
 */
#define RBLOB_MAGIC 0x314f4c4252424bull /* "KBRBLO1" in native order */
#define RBLOB_VERSION 3
/*
 * The cache name keeps layout 2's, so a blob of another layout fails rblob_parse and is
 * replaced in place rather than left behind. Layout 3: each task's meta-features sit just
 * before its cells (see rblob_feat), so a neighbour's exact distance and results share pages.
 */
#define RBLOB_NAME_VERSION 2

typedef struct rblob_head {
    uint64_t magic, version, len;
    uint64_t n_tasks, n_feat, n_confs, task_type;
    uint64_t n_runs, n_ok_runs; /* the store's run counts it was derived at */
    uint64_t objective, ids, names, feat, center, scale, scan, clamped, info, cells, confs;
} rblob_head;

typedef struct rblob_info {
    uint64_t cells; /* offset of the task's cells; its n_feat meta-features precede them */
    uint32_t n_cells, n_runs;
    int32_t direction, pad;
} rblob_info;

typedef struct rblob_cell {
    uint32_t conf, pad;
    double value;
} rblob_cell;

/* A parsed blob: pointers into its bytes. */
typedef struct rblob {
    const rblob_head *h;
    const char *base;
    const uint64_t *ids, *names, *confs; /* offsets */
    const double *center, *scale;
    const int16_t *scan;
    const unsigned char *clamped; /* n_tasks: 1 if a quantised feature was clamped */
    const rblob_info *info;
} rblob;

static int align8(kb_buf *b)
{
    static const char zero[8] = {0};
    return kb_buf_append(b, zero, (8 - b->len % 8) % 8);
}

static int put_str_table(kb_buf *b, uint64_t *off_out, const rtask *tasks, const size_t *rows,
                         size_t n, int names)
{
    int rc = align8(b);
    *off_out = b->len;
    size_t table = b->len;
    for (size_t i = 0; i < n && rc == KB_OK; i++) {
        uint64_t z = 0;
        rc = kb_buf_append(b, &z, sizeof z);
    }
    for (size_t i = 0; i < n && rc == KB_OK; i++) {
        uint64_t at = b->len;
        memcpy(b->data + table + i * 8, &at, 8);
        const rtask *t = &tasks[rows[i]];
        rc = kb_buf_append(b, names ? t->name : t->id, strlen(names ? t->name : t->id) + 1);
    }
    return rc;
}

/* Configuration: u32 n, then per parameter: name NUL, u8 type, value (f64 | i64 | str NUL | u8) */
static int put_config(kb_buf *b, const rconf *k)
{
    uint32_t n = (uint32_t)k->n_config;
    int rc = kb_buf_append(b, &n, sizeof n);
    for (size_t i = 0; i < k->n_config && rc == KB_OK; i++) {
        const kb_value *v = &k->config[i].value;
        unsigned char type = (unsigned char)v->type, bv = (unsigned char)(v->b != 0);
        rc = kb_buf_append(b, k->config[i].name, strlen(k->config[i].name) + 1);
        rc = rc ? rc : kb_buf_append(b, &type, 1);
        switch (v->type) {
        case KB_VALUE_TYPE_FLOAT: rc = rc ? rc : kb_buf_append(b, &v->f, 8); break;
        case KB_VALUE_TYPE_INT: rc = rc ? rc : kb_buf_append(b, &v->i, 8); break;
        case KB_VALUE_TYPE_STR: rc = rc ? rc : kb_buf_append(b, v->s, strlen(v->s) + 1); break;
        case KB_VALUE_TYPE_BOOL: rc = rc ? rc : kb_buf_append(b, &bv, 1); break;
        default: break;
        }
    }
    return rc;
}

/* Read a configuration written by put_config (the blob is ours: lengths are trusted). */
static int get_config(rconf *k, const char *p)
{
    uint32_t n;
    memcpy(&n, p, 4);
    p += 4;
    k->config = kb_calloc(n ? n : 1, sizeof *k->config);
    if (k->config == NULL) {
        return KB_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        kb_param *pa = &k->config[i];
        k->n_config = i + 1;
        if ((pa->name = kb_strdup(p)) == NULL) {
            return KB_ENOMEM;
        }
        p += strlen(p) + 1;
        pa->value.type = (kb_value_type)(unsigned char)*p++;
        switch (pa->value.type) {
        case KB_VALUE_TYPE_FLOAT: memcpy(&pa->value.f, p, 8); p += 8; break;
        case KB_VALUE_TYPE_INT: memcpy(&pa->value.i, p, 8); p += 8; break;
        case KB_VALUE_TYPE_STR:
            if ((pa->value.s = kb_strdup(p)) == NULL) {
                return KB_ENOMEM;
            }
            p += strlen(p) + 1;
            break;
        case KB_VALUE_TYPE_BOOL: pa->value.b = *p++ != 0; break;
        default: break;
        }
    }
    return KB_OK;
}

/*
 * Derive the blob from a gather with no task left out: the tasks with runs, in id order, the
 * scaler fitted on all of them. `counts` are the store's run counts read before the gather.
 */
static int rblob_build(kb_buf *b, const rctx *c, const uint64_t counts[2], kb_error *err)
{
    size_t nf = c->n_feat, nt = 0;
    size_t *rows = kb_malloc_array(c->n_tasks ? c->n_tasks : 1, sizeof *rows);
    if (rows == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory deriving the recommendation table");
    }
    for (size_t t = 0; t < c->n_tasks; t++) {
        if (c->tasks[t].n_runs > 0) {
            rows[nt++] = t;
        }
    }
    rblob_head h;
    memset(&h, 0, sizeof h);
    h.magic = RBLOB_MAGIC;
    h.version = RBLOB_VERSION;
    h.n_tasks = nt;
    h.n_feat = nf;
    h.n_confs = c->n_confs;
    h.task_type = (uint64_t)c->query_type;
    h.n_runs = counts[0];
    h.n_ok_runs = counts[1];
    kb_similarity_scaler sc = {0};
    double *z = kb_malloc_array((nt ? nt : 1) * nf, sizeof *z);
    int rc = z == NULL ? kb_error_set(err, KB_ENOMEM, "out of memory deriving the "
                                                      "recommendation table")
                       : KB_OK;
    for (size_t i = 0; i < nt && rc == KB_OK; i++) {
        memcpy(z + i * nf, c->tasks[rows[i]].f, nf * sizeof *z);
    }
    rc = rc ? rc : kb_similarity_scaler_fit(&sc, z, nt, nf, err);
    kb_buf_reset(b);
    rc = rc ? rc : kb_buf_append(b, &h, sizeof h);
    h.objective = b->len;
    rc = rc ? rc : kb_buf_append(b, c->objective ? c->objective : "", strlen(c->objective ? c->objective : "") + 1);
    rc = rc ? rc : put_str_table(b, &h.ids, c->tasks, rows, nt, 0);
    rc = rc ? rc : put_str_table(b, &h.names, c->tasks, rows, nt, 1);
    rc = rc ? rc : align8(b);
    h.feat = 0; /* with each task's cells */
    h.center = b->len;
    rc = rc ? rc : kb_buf_append(b, sc.center, nf * sizeof(double));
    h.scale = b->len;
    rc = rc ? rc : kb_buf_append(b, sc.scale, nf * sizeof(double));
    /* the scan matrix: scaled, quantised to 16 bits, feature-major; clamped tasks flagged */
    unsigned char *clamped = kb_calloc(nt ? nt : 1, 1);
    if (rc == KB_OK && clamped == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory deriving the recommendation table");
    }
    if (rc == KB_OK) {
        kb_similarity_scaler_apply(&sc, z, nt);
    }
    h.scan = b->len;
    for (size_t j = 0; j < nf && rc == KB_OK; j++) {
        for (size_t i = 0; i < nt && rc == KB_OK; i++) {
            double v = z[i * nf + j] * KB_SIMILARITY_I16_SCALE;
            int16_t q = KB_SIMILARITY_I16_MISSING;
            if (!isnan(v)) {
                clamped[i] |= !(fabs(v) <= 32767.0);
                q = (int16_t)(v > 32767.0 ? 32767 : v < -32767.0 ? -32767 : lround(v));
            }
            rc = kb_buf_append(b, &q, sizeof q);
        }
    }
    h.clamped = b->len;
    rc = rc ? rc : kb_buf_append(b, clamped, nt);
    kb_free(clamped);
    rc = rc ? rc : align8(b);
    h.info = b->len;
    for (size_t i = 0; i < nt && rc == KB_OK; i++) {
        rblob_info in = {0, 0, (uint32_t)c->tasks[rows[i]].n_runs, c->tasks[rows[i]].direction, 0};
        rc = kb_buf_append(b, &in, sizeof in);
    }
    h.cells = b->len;
    for (size_t i = 0; i < nt && rc == KB_OK; i++) {
        /* whole doubles and 16-byte cells keep the 8-byte alignment */
        rc = kb_buf_append(b, c->tasks[rows[i]].f, nf * sizeof(double));
        uint64_t at = b->len;
        uint32_t n = 0;
        for (size_t j = 0; j < c->n_confs && rc == KB_OK; j++) {
            double v = c->raw[rows[i] + j * c->cap_raw_tasks];
            if (!isnan(v)) {
                rblob_cell cell = {(uint32_t)j, 0, v};
                rc = kb_buf_append(b, &cell, sizeof cell);
                n++;
            }
        }
        if (rc == KB_OK) {
            rblob_info *in = (rblob_info *)(void *)(b->data + h.info) + i;
            in->cells = at;
            in->n_cells = n;
        }
    }
    h.confs = b->len;
    for (size_t j = 0; j < c->n_confs && rc == KB_OK; j++) {
        uint64_t z0 = 0;
        rc = kb_buf_append(b, &z0, sizeof z0);
    }
    for (size_t j = 0; j < c->n_confs && rc == KB_OK; j++) {
        uint64_t at = b->len;
        memcpy(b->data + h.confs + j * 8, &at, 8);
        rc = put_config(b, &c->confs[j]);
    }
    rc = rc ? rc : align8(b);
    if (rc == KB_OK) {
        h.len = b->len;
        memcpy(b->data, &h, sizeof h);
    } else if (rc == KB_ENOMEM && err != NULL && err->code == 0) {
        kb_error_set(err, KB_ENOMEM, "out of memory deriving the recommendation table");
    }
    kb_similarity_scaler_release(&sc);
    kb_free(z);
    kb_free(rows);
    return rc;
}

/* Point `r` into a blob; 0 if the bytes are not a blob of this version and length. */
static int rblob_parse(rblob *r, const void *data, size_t len)
{
    memset(r, 0, sizeof *r);
    if (data == NULL || len < sizeof(rblob_head) || ((uintptr_t)data & 7u) != 0) {
        return 0;
    }
    const rblob_head *h = data;
    if (h->magic != RBLOB_MAGIC || h->version != RBLOB_VERSION || h->len != len ||
        h->n_feat != kb_metafeatures_count()) {
        return 0;
    }
    r->h = h;
    r->base = data;
    r->ids = (const uint64_t *)(const void *)(r->base + h->ids);
    r->names = (const uint64_t *)(const void *)(r->base + h->names);
    r->confs = (const uint64_t *)(const void *)(r->base + h->confs);
    r->center = (const double *)(const void *)(r->base + h->center);
    r->scale = (const double *)(const void *)(r->base + h->scale);
    r->scan = (const int16_t *)(const void *)(r->base + h->scan);
    r->clamped = (const unsigned char *)(r->base + h->clamped);
    r->info = (const rblob_info *)(const void *)(r->base + h->info);
    return 1;
}

/* Task i's meta-features (n_feat doubles, just before its cells) */
static const double *rblob_feat(const rblob *r, size_t i)
{
    return (const double *)(const void *)(r->base + r->info[i].cells) - r->h->n_feat;
}

static const char *rblob_id(const rblob *r, size_t i)
{
    return r->base + r->ids[i];
}

/* Index of task `id` (ids are in store order, i.e. bytewise), or -1. */
static const char *rblob_id_at(const void *r, size_t i)
{
    return rblob_id(r, i);
}

static long rblob_find(const rblob *r, const char *id)
{
    return search_ids(r, r->h->n_tasks, rblob_id_at, id);
}

static int scaler_copy(kb_similarity_scaler *out, const double *center, const double *scale,
                       size_t nf)
{
    out->n_features = nf;
    out->center = kb_malloc_array(nf, sizeof *out->center);
    out->scale = kb_malloc_array(nf, sizeof *out->scale);
    if (out->center == NULL || out->scale == NULL) {
        kb_similarity_scaler_release(out);
        return KB_ENOMEM;
    }
    memcpy(out->center, center, nf * sizeof *center);
    memcpy(out->scale, scale, nf * sizeof *scale);
    return KB_OK;
}

/* Append blob task i to c->tasks (features copied; n_runs as given). */
static int rblob_add_task(rctx *c, const rblob *r, size_t i, size_t n_runs)
{
    if (c->n_tasks == c->cap_tasks) {
        size_t cap = c->cap_tasks ? 2 * c->cap_tasks : 64;
        rtask *nt = kb_realloc_array(c->tasks, cap, sizeof *nt);
        if (nt == NULL) {
            return KB_ENOMEM;
        }
        c->tasks = nt;
        c->cap_tasks = cap;
    }
    size_t nf = c->n_feat;
    if (c->n_tasks > 0 && strcmp(c->tasks[c->n_tasks - 1].id, rblob_id(r, i)) >= 0) {
        c->unsorted = 1;
    }
    rtask *t = &c->tasks[c->n_tasks];
    memset(t, 0, sizeof *t);
    t->id = kb_strdup(rblob_id(r, i));
    t->name = kb_strdup(r->base + r->names[i]);
    t->f = kb_malloc_array(nf, sizeof *t->f);
    t->n_runs = n_runs;
    t->direction = r->info[i].direction;
    t->type = (kb_task_type)r->h->task_type;
    if (t->id == NULL || t->name == NULL || t->f == NULL) {
        kb_free(t->id);
        kb_free(t->name);
        kb_free(t->f);
        return KB_ENOMEM;
    }
    memcpy(t->f, rblob_feat(r, i), nf * sizeof *t->f);
    c->n_tasks++;
    return KB_OK;
}

static int cmp_hit(const void *a, const void *b)
{
    const kb_similarity_hit *x = a, *y = b;
    if (x->distance != y->distance) {
        return x->distance < y->distance ? -1 : 1;
    }
    return x->task < y->task ? -1 : x->task > y->task;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * The k-th smallest of v[0..n) (k < n, no NaN), reordering v so that v[0..k) holds smaller
 * ones and v(k..n) larger ones. Quickselect with branch-free partitions (values below the
 * pivot to the front, then those equal to it): the branches of a three-way partition were
 * mispredicted on every other value. Any partition selects the same value.
 */
static double kth_smallest(double *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        /* pivot: the median of the first, middle and last values */
        double a = v[lo], b = v[lo + (hi - lo) / 2], e = v[hi - 1];
        double p = a < b ? (b < e ? b : (a < e ? e : a)) : (a < e ? a : (b < e ? e : b));
        size_t lt = lo;
        for (size_t i = lo; i < hi; i++) {
            double x = v[i];
            size_t below = x < p;
            v[i] = v[lt];
            v[lt] = x;
            lt += below;
        }
        if (k < lt) {
            hi = lt;
            continue;
        }
        size_t ge = lt;
        for (size_t i = lt; i < hi; i++) {
            double x = v[i];
            size_t equal = !(x > p);
            v[i] = v[ge];
            v[ge] = x;
            ge += equal;
        }
        if (k < ge) {
            return p;
        }
        lo = ge;
    }
    return v[lo];
}

/*
 * The k1-th and k2-th smallest (k1 <= k2 < n) of d[0..n) into *v1, *v2, without reordering d.
 * Selecting on all of d would copy and partition n values twice; instead a strided sample
 * (about 4,096 values) gives a threshold that should hold some 4 (k2 + 1) values, those are
 * gathered into `small` (cap values) and selected there: the j-th smallest of the values up
 * to a threshold is the j-th smallest of all while at least j + 1 of them are kept. Falls back
 * on the whole array (copied into `big`, n values) when the sample misjudges. Exact either
 * way (float to double is exact).
 */
static void select_two(float *v1, float *v2, const float *d, size_t n, size_t k1, size_t k2,
                       double *small, size_t cap, double *big)
{
    size_t step = n / 4096 > 1 ? n / 4096 : 1, m = 0;
    for (size_t i = 0; i < n && m < cap; i += step) {
        small[m++] = d[i];
    }
    /* the sample's quantile (k2 + 1) / n, four times over */
    size_t want = (size_t)((double)(4 * (k2 + 1)) / (double)n * (double)m);
    double thr = want < m ? kth_smallest(small, m, want) : INFINITY;
    size_t kept = 0;
    for (size_t i = 0; i < n && kept <= cap; i++) {
        if (d[i] <= thr) {
            if (kept < cap) {
                small[kept] = d[i];
            }
            kept++;
        }
    }
    double *v = small;
    if (kept > cap || kept <= k2) {
        for (size_t i = 0; i < n; i++) {
            big[i] = d[i];
        }
        v = big;
        kept = n;
    }
    *v2 = (float)kth_smallest(v, kept, k2);
    /* after the selection v[0..k2) holds the k2 smallest */
    *v1 = k1 < k2 ? (float)kth_smallest(v, k2, k1) : *v2;
}

/*
 * Fill `c` (empty, query set) with the `neighborhood` tasks of the blob nearest to the query,
 * in blob order, their configurations and results. Left-out tasks are skipped. Returns KB_OK,
 * KB_ENOMEM; `*n_candidates` = tasks the query could use.
 */
static int rblob_neighborhood(rctx *c, size_t *n_candidates, const rblob *r,
                              const kb_similarity_scaler *sc, size_t neighborhood, kb_error *err)
{
    size_t n = r->h->n_tasks, nf = c->n_feat;
    /* `tmp` (n floats) is only touched when the sampled selection falls back on it */
    size_t cap_small = neighborhood < n / 16 ? 16 * neighborhood + 8192 : n + 1;
    float *d = kb_malloc_array(n ? n : 1, sizeof *d);
    double *tmp = kb_malloc_array(n ? n : 1, sizeof *tmp);
    double *small = kb_malloc_array(cap_small, sizeof *small);
    double *q = kb_malloc_array(nf, sizeof *q), *z = kb_malloc_array(nf, sizeof *z);
    size_t *cand = NULL, *conf_map = NULL;
    kb_similarity_hit *hits = NULL;
    int rc = KB_ENOMEM;
    if (d == NULL || tmp == NULL || small == NULL || q == NULL || z == NULL) {
        goto done;
    }
    memcpy(q, c->query_f, nf * sizeof *q);
    kb_similarity_scaler_apply(sc, q, 1);
    kb_similarity_scan_l1_i16(d, r->scan, n, n, nf, q);
    /* left-out tasks and the query itself never count */
    size_t n_ok = n;
    for (size_t e = 0; e <= c->n_exclude; e++) {
        const char *id = e < c->n_exclude ? c->exclude[e] : c->query_id;
        long i = id != NULL ? rblob_find(r, id) : -1;
        if (i >= 0 && isfinite(d[i])) {
            d[i] = INFINITY;
            n_ok--;
        }
    }
    *n_candidates = n_ok;
    /*
     * Candidates: every task whose quantised distance is within twice the quantisation bound
     * of the N-th smallest (N = `neighborhood`), and every task with a clamped feature. The N
     * tasks with the smallest quantised distances are within cut + B exactly, so each exact N
     * nearest has a quantised distance <= cut + 2B: the set holds them all. Each candidate
     * costs a read of its row (a page of the map), so where more than 2N tasks crowd that
     * band (tasks at near-equal distances) the 2N nearest by quantised distance stand in:
     * their typical error (~0.01 for 54 features) is far below the bound.
     */
    float cut = INFINITY, cut2 = INFINITY;
    if (2 * neighborhood < n) {
        select_two(&cut, &cut2, d, n, neighborhood - 1, 2 * neighborhood - 1, small, cap_small,
                   tmp);
    } else if (neighborhood < n) {
        for (size_t i = 0; i < n; i++) {
            tmp[i] = d[i];
        }
        cut = (float)kth_smallest(tmp, n, neighborhood - 1);
    }
    float slack = (float)(2.0 * kb_similarity_i16_bound(nf) + 1e-5 * (isfinite(cut) ? cut : 0));
    /*
     * One branch-free pass gathers them (room for n; only the candidates' entries are
     * touched). In the crowded case the 2N band is a subset of them whenever cut + (cut2 -
     * cut) <= cut + slack, and is filtered out of them in order; else a second pass.
     */
    cand = kb_malloc_array(n ? n : 1, sizeof *cand);
    if (cand == NULL) {
        goto done;
    }
    size_t n_cand = 0;
    for (size_t i = 0; i < n; i++) {
        cand[n_cand] = i;
        n_cand += isfinite(d[i]) && (d[i] <= cut + slack || r->clamped[i]);
    }
    if (n_cand > 2 * neighborhood && 2 * neighborhood < n) {
        float band = cut2 - cut;
        size_t m = 0;
        if (cut + band <= cut + slack) {
            for (size_t a = 0; a < n_cand; a++) {
                cand[m] = cand[a];
                m += d[cand[a]] <= cut + band;
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                cand[m] = i;
                m += isfinite(d[i]) && d[i] <= cut + band;
            }
        }
        n_cand = m;
    }
    hits = kb_malloc_array(n_cand ? n_cand : 1, sizeof *hits);
    if (hits == NULL) {
        goto done;
    }
    for (size_t a = 0; a < n_cand; a++) {
        double dd = 0;
        size_t shared = 0;
        const double *f = rblob_feat(r, cand[a]);
        for (size_t j = 0; j < nf; j++) {
            z[j] = isnan(f[j]) ? NAN : (f[j] - sc->center[j]) / sc->scale[j];
            if (!isnan(z[j]) && !isnan(q[j])) {
                dd += fabs(z[j] - q[j]);
                shared++;
            }
        }
        hits[a].task = cand[a];
        hits[a].distance = shared ? dd * (double)nf / (double)shared : INFINITY;
        hits[a].n_shared = shared;
    }
    /* the nearest `neighborhood` by exact distance (ties: blob order), then in blob order */
    size_t keep = n_cand < neighborhood ? n_cand : neighborhood;
    qsort(hits, n_cand, sizeof *hits, cmp_hit);
    for (size_t a = 0; a < keep; a++) {
        cand[a] = hits[a].task;
    }
    qsort(cand, keep, sizeof *cand, cmp_size);
    /* configurations the neighbours evaluated, in the blob's (first seen) order */
    conf_map = kb_malloc_array(r->h->n_confs ? r->h->n_confs : 1, sizeof *conf_map);
    if (conf_map == NULL) {
        goto done;
    }
    for (size_t j = 0; j < r->h->n_confs; j++) {
        conf_map[j] = (size_t)-1;
    }
    for (size_t a = 0; a < keep; a++) {
        const rblob_info *in = &r->info[cand[a]];
        const rblob_cell *cells = (const rblob_cell *)(const void *)(r->base + in->cells);
        for (uint32_t k = 0; k < in->n_cells; k++) {
            conf_map[cells[k].conf] = 0;
        }
    }
    size_t nc = 0;
    for (size_t j = 0; j < r->h->n_confs; j++) {
        if (conf_map[j] == 0) {
            conf_map[j] = nc++;
        }
    }
    c->confs = kb_calloc(nc ? nc : 1, sizeof *c->confs);
    c->objective = kb_strdup(r->base + r->h->objective);
    c->raw = kb_malloc_array((keep ? keep : 1) * (nc ? nc : 1), sizeof *c->raw);
    if (c->confs == NULL || c->objective == NULL || c->raw == NULL) {
        goto done;
    }
    c->cap_confs = nc ? nc : 1;
    for (size_t j = 0; j < r->h->n_confs; j++) {
        if (conf_map[j] != (size_t)-1) {
            rconf *k = &c->confs[c->n_confs++];
            if (get_config(k, r->base + r->confs[j]) != KB_OK) {
                goto done;
            }
        }
    }
    c->cap_raw_tasks = keep ? keep : 1;
    c->cap_raw_confs = nc ? nc : 1;
    for (size_t i = 0; i < c->cap_raw_tasks * c->cap_raw_confs; i++) {
        c->raw[i] = NAN;
    }
    for (size_t a = 0; a < keep; a++) {
        const rblob_info *in = &r->info[cand[a]];
        if (rblob_add_task(c, r, cand[a], in->n_runs) != KB_OK) {
            goto done;
        }
        const rblob_cell *cells = (const rblob_cell *)(const void *)(r->base + in->cells);
        for (uint32_t k = 0; k < in->n_cells; k++) {
            c->raw[a + conf_map[cells[k].conf] * c->cap_raw_tasks] = cells[k].value;
        }
    }
    rc = KB_OK;
done:
    if (rc != KB_OK) {
        kb_error_set(err, KB_ENOMEM, "out of memory reading the recommendation table");
    }
    kb_free(d);
    kb_free(tmp);
    kb_free(small);
    kb_free(q);
    kb_free(z);
    kb_free(cand);
    kb_free(hits);
    kb_free(conf_map);
    return rc;
}

/* ---- backbones: compatible ones and their fine-tune results ---- */

typedef struct rbackbone {
    char *id, *family, *arch, *signature, *source_task, *uri;
} rbackbone;

typedef struct bctx {
    rctx *c;
    rbackbone *bb;       /* every stored backbone, then only the compatible ones */
    size_t n_bb, cap_bb;
    double *res;         /* c->n_tasks x n_bb column-major best results, NaN */
    size_t cur;          /* the backbone whose runs are being read */
    char *objective;     /* of the fine-tune runs; the first seen decides */
    int maximize;
    size_t n_runs;
    const char *query_id;
    char *query_sig;     /* a stored query task's signature, from its fine-tune runs */
    char **missing;      /* ids of tasks with fine-tune runs not yet in c (blob mode) */
    size_t n_missing, cap_missing;
    int failed;
} bctx;

static void rbackbone_free(rbackbone *b)
{
    kb_free(b->id);
    kb_free(b->family);
    kb_free(b->arch);
    kb_free(b->signature);
    kb_free(b->source_task);
    kb_free(b->uri);
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? kb_strdup(s) : NULL;
}

static int on_backbone(const kb_backbone *b, void *payload)
{
    bctx *x = payload;
    if (b->input_signature == NULL) {
        return 0;
    }
    if (x->n_bb == x->cap_bb) {
        size_t cap = x->cap_bb ? 2 * x->cap_bb : 16;
        rbackbone *nb = kb_realloc_array(x->bb, cap, sizeof *nb);
        if (nb == NULL) {
            x->failed = 1;
            return 1;
        }
        x->bb = nb;
        x->cap_bb = cap;
    }
    rbackbone *r = &x->bb[x->n_bb];
    r->id = kb_strdup(b->id);
    r->family = dup_or_null(b->family);
    r->arch = dup_or_null(b->arch);
    r->signature = kb_strdup(b->input_signature);
    r->source_task = dup_or_null(b->source_task);
    r->uri = dup_or_null(b->uri);
    x->n_bb++;
    if (r->id == NULL || r->signature == NULL || (b->family && !r->family) ||
        (b->arch && !r->arch) || (b->source_task && !r->source_task) || (b->uri && !r->uri)) {
        x->failed = 1;
        return 1;
    }
    return 0;
}

static long find_backbone(const bctx *x, const char *id)
{
    for (size_t b = 0; b < x->n_bb; b++) {
        if (strcmp(x->bb[b].id, id) == 0) {
            return (long)b;
        }
    }
    return -1;
}

/* The stored query task's own fine-tune runs tell its input signature. */
static int on_query_run(const kb_run *r, void *payload)
{
    bctx *x = payload;
    long b = r->backbone_id != NULL ? find_backbone(x, r->backbone_id) : -1;
    if (b >= 0 && x->query_sig == NULL) {
        x->query_sig = kb_strdup(x->bb[b].signature);
        x->failed = x->query_sig == NULL;
        return 1;
    }
    return 0;
}

static int on_finetune_run(const kb_run *r, void *payload)
{
    bctx *x = payload;
    if (r->status != KB_RUN_STATUS_OK || r->objective == NULL) {
        return 0;
    }
    long t = find_task(x->c, r->task_id);
    if (t < 0) {
        return 0; /* not a comparable task with meta-features, or left out */
    }
    if (x->objective == NULL) {
        if ((x->objective = kb_strdup(r->objective)) == NULL) {
            x->failed = 1;
            return 1;
        }
        x->maximize = r->direction == KB_DIRECTION_MAXIMIZE;
    }
    if (strcmp(r->objective, x->objective) != 0) {
        return 0;
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
    /* the best fine-tune result of the backbone on the task counts, as for configurations */
    double *cell = &x->res[(size_t)t + x->cur * x->c->n_tasks];
    if (isnan(*cell) || (x->maximize ? v > *cell : v < *cell)) {
        *cell = v;
    }
    x->n_runs++;
    return 0;
}

static int on_config_backbone_run(const kb_run *r, void *payload)
{
    bctx *x = payload;
    if (r->backbone_id != NULL) {
        return 0; /* counted by its backbone_id already */
    }
    for (size_t i = 0; i < r->n_config; i++) {
        const kb_value *v = &r->config[i].value;
        if (strcmp(r->config[i].name, "backbone") == 0 && v->type == KB_VALUE_TYPE_STR) {
            long b = find_backbone(x, v->s);
            if (b >= 0) {
                x->cur = (size_t)b;
                return on_finetune_run(r, payload);
            }
        }
    }
    return 0;
}

/* The input signature of a stored task: its "input_signature" extra field, else its own
 * fine-tune runs' backbones, else a backbone trained on it. */
static char *stored_task_signature(bctx *x, kb_store *store, const kb_task *t, kb_error *err)
{
    if (t->extra != NULL) {
        cJSON *o = cJSON_Parse(t->extra);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "input_signature");
        char *sig = cJSON_IsString(s) ? kb_strdup(s->valuestring) : NULL;
        cJSON_Delete(o);
        if (sig != NULL) {
            return sig;
        }
    }
    kb_store_filter f = KB_STORE_FILTER_INIT;
    f.task_id = t->id;
    if (kb_store_foreach_run(store, &f, on_query_run, x, err) < 0 || x->failed) {
        return NULL;
    }
    if (x->query_sig != NULL) {
        char *sig = x->query_sig;
        x->query_sig = NULL;
        return sig;
    }
    for (size_t b = 0; b < x->n_bb; b++) {
        if (x->bb[b].source_task != NULL && strcmp(x->bb[b].source_task, t->id) == 0) {
            return kb_strdup(x->bb[b].signature);
        }
    }
    return NULL;
}

static int note_missing(bctx *x, const char *id)
{
    if (id == NULL || find_task(x->c, id) >= 0) {
        return 0;
    }
    for (size_t i = 0; i < x->n_missing; i++) {
        if (strcmp(x->missing[i], id) == 0) {
            return 0;
        }
    }
    if (x->n_missing == x->cap_missing) {
        size_t cap = x->cap_missing ? 2 * x->cap_missing : 16;
        char **nm = kb_realloc_array(x->missing, cap, sizeof *nm);
        if (nm == NULL) {
            x->failed = 1;
            return 1;
        }
        x->missing = nm;
        x->cap_missing = cap;
    }
    if ((x->missing[x->n_missing] = kb_strdup(id)) == NULL) {
        x->failed = 1;
        return 1;
    }
    x->n_missing++;
    return 0;
}

static int on_finetune_task(const kb_run *r, void *payload)
{
    return note_missing(payload, r->task_id);
}

/*
 * With a neighbourhood from the blob, `c` holds only the nearest tasks: add the other tasks
 * the backbones' evidence needs (their fine-tune runs' tasks, their source tasks) from the
 * store, with no runs in the space so they never become configuration rows.
 */
static int complete_tasks(bctx *x, kb_store *store, kb_error *err)
{
    int rc = KB_OK;
    for (size_t b = 0; b < x->n_bb && rc == KB_OK && !x->failed; b++) {
        kb_store_filter f = KB_STORE_FILTER_INIT;
        f.backbone_id = x->bb[b].id;
        f.status = KB_RUN_STATUS_OK;
        rc = kb_store_foreach_run(store, &f, on_finetune_task, x, err);
        rc = rc < 0 ? rc : KB_OK;
        note_missing(x, x->bb[b].source_task);
    }
    for (size_t i = 0; i < x->n_missing && rc == KB_OK && !x->failed; i++) {
        kb_task t = {0};
        if (kb_store_get_task(&t, store, x->missing[i], NULL) == KB_OK) {
            on_task(&t, x->c);
            x->failed = x->c->failed;
        }
        kb_task_release(&t);
    }
    return rc;
}

/*
 * Keep the backbones whose input signature is `sig` and read their fine-tune runs into the
 * result table: runs with a backbone_id, and (without `complete`, i.e. when every task was
 * read) runs of `space` whose configuration names a compatible backbone in a string
 * parameter "backbone" (`complete`: first add the tasks they need, see complete_tasks). KB_OK
 * or a store error (x->failed for out of memory).
 */
static int gather_finetunes(bctx *x, kb_store *store, const char *sig, const char *space,
                            int complete, kb_error *err)
{
    size_t kept = 0;
    for (size_t b = 0; b < x->n_bb; b++) {
        if (sig != NULL && strcmp(x->bb[b].signature, sig) == 0) {
            x->bb[kept++] = x->bb[b];
        } else {
            rbackbone_free(&x->bb[b]);
        }
    }
    x->n_bb = kept;
    if (kept == 0) {
        return KB_OK;
    }
    if (complete) {
        int rc = complete_tasks(x, store, err);
        if (rc != KB_OK || x->failed) {
            return rc;
        }
    }
    size_t nt = x->c->n_tasks ? x->c->n_tasks : 1;
    x->res = kb_malloc_array(nt * kept, sizeof *x->res);
    if (x->res == NULL) {
        x->failed = 1;
        return KB_OK;
    }
    for (size_t i = 0; i < nt * kept; i++) {
        x->res[i] = NAN;
    }
    for (x->cur = 0; x->cur < kept; x->cur++) {
        kb_store_filter f = KB_STORE_FILTER_INIT;
        f.backbone_id = x->bb[x->cur].id;
        f.status = KB_RUN_STATUS_OK;
        int rc = kb_store_foreach_run(store, &f, on_finetune_run, x, err);
        if (rc < 0 || x->failed) {
            return rc < 0 ? rc : KB_OK;
        }
    }
    if (space != NULL && !complete) {
        /* runs of a joint space (e.g. `finetune`) name their backbone in the configuration */
        kb_store_filter f = KB_STORE_FILTER_INIT;
        f.space = space;
        f.status = KB_RUN_STATUS_OK;
        int rc = kb_store_foreach_run(store, &f, on_config_backbone_run, x, err);
        if (rc < 0) {
            return rc;
        }
    }
    return KB_OK;
}

static void release_bctx(bctx *x)
{
    for (size_t b = 0; b < x->n_bb; b++) {
        rbackbone_free(&x->bb[b]);
    }
    kb_free(x->bb);
    kb_free(x->res);
    kb_free(x->objective);
    kb_free(x->query_sig);
    for (size_t i = 0; i < x->n_missing; i++) {
        kb_free(x->missing[i]);
    }
    kb_free(x->missing);
}

/* Distance from the scaled query to a task's raw features under `scaler` (L1, shared). */
static double scaled_distance(const kb_similarity_scaler *scaler, const double *q,
                              const double *f, size_t nf)
{
    double *z = kb_malloc_array(nf, sizeof *z);
    kb_similarity_index ix = {0};
    double d = NAN;
    if (z != NULL) {
        memcpy(z, f, nf * sizeof *z);
        kb_similarity_scaler_apply(scaler, z, 1);
        if (kb_similarity_index_build(&ix, z, 1, nf, NULL, NULL) == KB_OK) {
            size_t shared = 0;
            d = kb_similarity_distance(&ix, 0, q, KB_SIMILARITY_L1, &shared);
            d = shared > 0 ? d : NAN;
        }
    }
    kb_similarity_index_release(&ix);
    kb_free(z);
    return d;
}

/* The ranked backbones: out/n_out into `items` (x->n_bb of them). */
static int rank_backbones(kb_recommend_backbone *items, size_t *n_out, const bctx *x,
                          const double *query_f, size_t nf, const kb_recommend_weighting *wt,
                          const kb_similarity_scaler *fixed, const double *transfer,
                          kb_error *err)
{
    const rctx *c = x->c;
    size_t nt = 0;
    for (size_t t = 0; t < c->n_tasks; t++) {
        int any = 0;
        for (size_t b = 0; b < x->n_bb && !any; b++) {
            any = !isnan(x->res[t + b * c->n_tasks]);
        }
        nt += any;
    }
    size_t *rows = kb_malloc_array(nt ? nt : 1, sizeof *rows);
    double *res = kb_malloc_array((nt ? nt : 1) * x->n_bb, sizeof *res);
    double *dist = kb_malloc_array(nt ? nt : 1, sizeof *dist);
    double *src = kb_malloc_array(x->n_bb, sizeof *src);
    double *z = kb_malloc_array((c->n_tasks ? c->n_tasks : 1) * nf, sizeof *z);
    double *q = kb_malloc_array(nf, sizeof *q);
    kb_similarity_scaler scaler = {0};
    int rc = KB_ENOMEM;
    if (rows == NULL || res == NULL || dist == NULL || src == NULL || z == NULL || q == NULL) {
        kb_error_set(err, KB_ENOMEM, "out of memory ranking backbones");
        goto done;
    }
    for (size_t t = 0, r = 0; t < c->n_tasks; t++) {
        for (size_t b = 0; b < x->n_bb; b++) {
            if (!isnan(x->res[t + b * c->n_tasks])) {
                rows[r++] = t;
                break;
            }
        }
    }
    for (size_t r = 0; r < nt; r++) {
        for (size_t b = 0; b < x->n_bb; b++) {
            res[r + b * nt] = x->res[rows[r] + b * c->n_tasks];
        }
    }
    /* every comparable task scales the meta-features, as the configurations' rows do */
    for (size_t t = 0; t < c->n_tasks; t++) {
        memcpy(z + t * nf, c->tasks[t].f, nf * sizeof *z);
    }
    rc = fixed != NULL ? scaler_copy(&scaler, fixed->center, fixed->scale, nf)
                       : kb_similarity_scaler_fit(&scaler, z, c->n_tasks, nf, err);
    if (rc != KB_OK) {
        if (fixed != NULL) {
            kb_error_set(err, rc, "out of memory ranking backbones");
        }
        goto done;
    }
    memcpy(q, query_f, nf * sizeof *q);
    kb_similarity_scaler_apply(&scaler, q, 1);
    for (size_t r = 0; r < nt; r++) {
        dist[r] = scaled_distance(&scaler, q, c->tasks[rows[r]].f, nf);
        dist[r] = isnan(dist[r]) ? INFINITY : dist[r];
    }
    for (size_t b = 0; b < x->n_bb; b++) {
        long t = x->bb[b].source_task != NULL ? find_task(c, x->bb[b].source_task) : -1;
        src[b] = t >= 0 ? scaled_distance(&scaler, q, c->tasks[t].f, nf) : NAN;
        if (x->bb[b].source_task != NULL && c->query_id != NULL &&
            strcmp(x->bb[b].source_task, c->query_id) == 0) {
            src[b] = 0; /* trained on the query task itself */
        }
    }
    rc = kb_recommend_backbones(items, n_out, res, dist, nt, x->n_bb, x->maximize, src, transfer,
                                wt, x->n_bb, NULL, err);
done:
    kb_similarity_scaler_release(&scaler);
    kb_free(rows);
    kb_free(res);
    kb_free(dist);
    kb_free(src);
    kb_free(z);
    kb_free(q);
    return rc;
}

/*
 * LogME of every compatible backbone on the query dataset itself (the second half of the
 * issue's "from the KB combined with a transferability score computed on the new data"):
 * into t[0..x->n_bb), NaN where a backbone cannot be scored (weights file gone, another
 * architecture, regression data), each such case a warning. The dataset is read again here
 * rather than kept from the meta-features step: only image-like queries with compatible
 * backbones get this far, and their files are small.
 */
static int score_transfer(double *t, const bctx *x, const char *path, size_t max_rows,
                          features_args *fa)
{
    for (size_t b = 0; b < x->n_bb; b++) {
        t[b] = NAN;
    }
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    if (kb_dataset_read(&d, path, &fa->dataset, &err) != KB_OK) {
        return cli_fail("recommend", &err);
    }
    if (d.task != KB_DATASET_TASK_CLASSIFICATION) {
        kb_dataset_release(&d);
        return KB_EXIT_OK; /* LogME scores class labels; a regression query has none */
    }
    if (!fa->log.quiet) {
        fprintf(stderr, "kb recommend: scoring %zu compatible backbone%s on '%s' (LogME)\n",
                x->n_bb, x->n_bb == 1 ? "" : "s", path);
    }
    for (size_t b = 0; b < x->n_bb; b++) {
        const char *uri = x->bb[b].uri;
        if (uri == NULL) {
            continue;
        }
        if (strncmp(uri, "file://", 7) == 0) {
            uri += 7;
        }
        if (backbone_logme(&t[b], &d, uri, max_rows, 1, &err) != KB_OK) {
            fprintf(stderr, "kb recommend: warning: backbone %s not scored: %s\n", x->bb[b].id,
                    err.msg);
            t[b] = NAN;
            kb_error_clear(&err);
        }
    }
    kb_dataset_release(&d);
    return KB_EXIT_OK;
}

static const char *basis_name(kb_recommend_basis b)
{
    return b == KB_RECOMMEND_BASIS_FINETUNE ? "finetune" : "source";
}

/* v with `prec` digits (%g when general, else %f) into buf, or "-" when it is not finite */
static const char *fmt_num(char *buf, size_t n, int general, int prec, double v)
{
    if (isfinite(v)) {
        snprintf(buf, n, general ? "%.*g" : "%.*f", prec, v);
    } else {
        snprintf(buf, n, "-");
    }
    return buf;
}

static void print_backbones(const bctx *x, const kb_recommend_backbone *items, size_t n,
                            const char *sig)
{
    printf("\nrecommended backbones (input signature %s; %zu compatible; expected %s from "
           "fine-tune runs on the weighted tasks):\n", sig, x->n_bb,
           x->objective != NULL ? x->objective : "result");
    printf("  %-4s %-20s %-8s %-6s %-9s %-7s %-5s %-8s %s\n", "rank", "backbone", "basis",
           "score", "expected", "+-", "tasks", "LogME", "source task (similarity)  arch");
    for (size_t i = 0; i < n; i++) {
        const kb_recommend_backbone *it = &items[i];
        const rbackbone *b = &x->bb[it->backbone];
        char e[32], sd[32], ss[32], tr[32];
        printf("  %-4zu %-20.20s %-8s %-6.3f %-9s %-7s %-5zu %-8s %s (%s)  %s\n", i + 1, b->id,
               basis_name(it->basis), it->score, fmt_num(e, sizeof e, 1, 4, it->expected),
               fmt_num(sd, sizeof sd, 0, 3, it->expected_sd), it->n_tasks,
               fmt_num(tr, sizeof tr, 0, 4, it->transfer),
               b->source_task != NULL ? b->source_task : "-",
               fmt_num(ss, sizeof ss, 0, 3, it->source_similarity),
               b->arch != NULL ? b->arch : "");
    }
}

static cJSON *backbones_json(const bctx *x, const kb_recommend_backbone *items, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a != NULL && i < n; i++) {
        const kb_recommend_backbone *it = &items[i];
        const rbackbone *b = &x->bb[it->backbone];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "rank", (double)(i + 1));
        cJSON_AddStringToObject(o, "backbone", b->id);
        cJSON_AddItemToObject(o, "family", b->family ? cJSON_CreateString(b->family) : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "arch", b->arch ? cJSON_CreateString(b->arch) : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "source_task",
                              b->source_task ? cJSON_CreateString(b->source_task) : cJSON_CreateNull());
        cJSON_AddStringToObject(o, "basis", basis_name(it->basis));
        cJSON_AddItemToObject(o, "score", num_or_null(it->score));
        cJSON_AddItemToObject(o, "expected_objective", num_or_null(it->expected));
        cJSON_AddItemToObject(o, "expected_sd", num_or_null(it->expected_sd));
        cJSON_AddItemToObject(o, "relative_score", num_or_null(it->relative));
        cJSON_AddItemToObject(o, "relative_sd", num_or_null(it->relative_sd));
        cJSON_AddNumberToObject(o, "finetuned_tasks", (double)it->n_tasks);
        cJSON_AddNumberToObject(o, "effective_tasks", json_num(it->n_eff));
        cJSON_AddItemToObject(o, "source_similarity", num_or_null(it->source_similarity));
        cJSON_AddItemToObject(o, "transferability", num_or_null(it->transfer));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* Every comparable task with meta-features, and their ok runs in the space. */
static int gather_scan(rctx *c, kb_store *store, const char *space_name, kb_error *err)
{
    kb_store_filter f = KB_STORE_FILTER_INIT;
    int rc = kb_store_foreach_task(store, &f, on_task, c, err);
    if (rc == KB_OK && !c->failed) {
        run_ctx rcx = {c, KB_BUF_INIT};
        f.space = space_name;
        f.status = KB_RUN_STATUS_OK;
        rc = kb_store_foreach_run(store, &f, on_run, &rcx, err);
        kb_buf_release(&rcx.key);
    }
    return rc < 0 ? rc : KB_OK;
}

/* Everything the configuration part computes, for printing. */
typedef struct cresult {
    size_t nt, nc, nf;
    size_t *rows;        /* nt rows of rctx.tasks used (the nearest N when there are more) */
    double *dist, *w;    /* nt */
    kb_recommend_weighting wt; /* the backbones' weighting (kb_recommend_tune) */
    kb_recommend_model model;  /* the configurations' similarity model */
    kb_recommend_check check;  /* its whole-knowledge-base check */
    double fitted_signal;      /* the model's fitted signal (model.signal: the one weighed by) */
    size_t first;              /* the first pick by uniform weights, or SIZE_MAX: the model's */
    kb_recommend_item *items;
    size_t n_items;
    size_t n_candidates; /* tasks with runs in the space before the neighbourhood cut */
    kb_similarity_scaler scaler;
    kb_similarity_index ix;
    double *q;           /* scaled query */
} cresult;

static void cresult_release(cresult *r)
{
    kb_free(r->rows);
    kb_free(r->dist);
    kb_free(r->w);
    kb_free(r->items);
    kb_free(r->q);
    kb_similarity_index_release(&r->ix);
    kb_similarity_scaler_release(&r->scaler);
}

/* What the configurations were weighed by, after the whole-knowledge-base check. */
static const char *weights_kind(const cresult *r)
{
    if (!r->check.signal) {
        return "uniform";
    }
    return r->first != SIZE_MAX ? "model, first pick uniform" : "model";
}

/* The n nearest of rows[0..nt) by dist (ties: earlier row), moved to the front in order. */
static void nearest_first(size_t *rows, double *dist, size_t nt, size_t n)
{
    for (size_t a = 0; a < n && a < nt; a++) {
        size_t b = a;
        for (size_t i = a + 1; i < nt; i++) {
            if (dist[i] < dist[b] || (dist[i] == dist[b] && rows[i] < rows[b])) {
                b = i;
            }
        }
        size_t tr = rows[a];
        double td = dist[a];
        rows[a] = rows[b];
        dist[a] = dist[b];
        rows[b] = tr;
        dist[b] = td;
    }
}

/*
 * The backbones' weighting, as before the similarity model: kb_recommend_tune on the
 * `nl` nearest tasks by the similarity distance, k_eval as there. Scratch: near, nd (nt), sub (nl x nc),
 * pair (nl x nl), row (nf). Returns an exit code (errors printed).
 */
static int tune_backbone_weighting(cresult *r, const rctx *c, const double *scores, size_t nt,
                                   size_t nc, size_t nl, size_t *near, double *nd, double *sub,
                                   double *pair, double *row, size_t k_eval)
{
    size_t nf = r->nf;
    kb_error err = KB_ERROR_INIT;
    for (size_t i = 0; i < nt; i++) {
        near[i] = i;
        nd[i] = r->dist[i];
    }
    if (nl < nt) {
        nearest_first(near, nd, nt, nl);
    }
    for (size_t i = 0; i < nl; i++) {
        for (size_t j = 0; j < nc; j++) {
            sub[i + j * nl] = scores[near[i] + j * nt];
        }
    }
    /* task a's scaled vector keeps its missing values (NaN), as a query does */
    for (size_t a = 0; a < nl; a++) {
        memcpy(row, c->tasks[r->rows[near[a]]].f, nf * sizeof *row);
        kb_similarity_scaler_apply(&r->scaler, row, 1);
        for (size_t b = 0; b < nl; b++) {
            pair[a + b * nl] = kb_similarity_distance(&r->ix, near[b], row, KB_SIMILARITY_L1,
                                                      NULL);
        }
    }
    if (nl >= 3 && kb_recommend_tune(&r->wt, sub, pair, nl, nc, k_eval, &err) != KB_OK) {
        return cli_fail("recommend", &err);
    }
    return KB_EXIT_OK;
}

/*
 * Task weights from the similarity model (engine/recommend.h) into r->w: its distance takes
 * missing meta-features at the median (a metric, so the kernel is positive semi-definite; the
 * index holds the scaled tasks with missing values as 0). Of the nt tasks it weighs the
 * KB_RECOMMEND_MODEL_MAX_TASKS nearest (the others get weight 0); kb_recommend_weigh fits it
 * on the `tune_tasks` nearest (O(N^3) per bandwidth; the nearest are where the weights
 * matter), chooses the hedge by leave-one-out on them and checks it on the
 * KB_RECOMMEND_CHECK_MAX_TASKS nearest.
 */
static int model_weights(cresult *r, const double *scores, size_t nt, size_t nc,
                         size_t tune_tasks, size_t k_eval, kb_error *err)
{
    size_t nf = r->nf;
    size_t nm = nt < KB_RECOMMEND_MODEL_MAX_TASKS ? nt : KB_RECOMMEND_MODEL_MAX_TASKS;
    size_t cap = nt ? nt : 1;
    size_t *idx = kb_malloc_array(cap, sizeof *idx);
    double *md = kb_malloc_array(cap, sizeof *md), *nd = kb_malloc_array(cap, sizeof *nd);
    double *mpair = kb_malloc_array(nm * nm + 1, sizeof *mpair);
    double *msc = kb_malloc_array(nm * nc + 1, sizeof *msc), *mw = kb_malloc_array(cap, sizeof *mw);
    int rc = KB_OK;
    if (idx == NULL || md == NULL || nd == NULL || mpair == NULL || msc == NULL || mw == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory weighting %zu tasks", nt);
        goto done;
    }
    for (size_t i = 0; i < nt; i++) {
        idx[i] = i;
        md[i] = kb_similarity_distance_imputed(r->ix.x + i * nf, r->q, nf);
        nd[i] = md[i];
    }
    if (nm < nt) {
        nearest_first(idx, nd, nt, nm);
    }
    for (size_t a = 0; a < nm; a++) {
        nd[a] = md[idx[a]];
        for (size_t j = 0; j < nc; j++) {
            msc[a + j * nm] = scores[idx[a] + j * nt];
        }
    }
    if ((rc = kb_similarity_pairs_imputed(mpair, r->ix.x, idx, nm, nf, err)) != KB_OK) {
        goto done;
    }
    for (size_t a = 0; a < nm; a++) {
        md[a] = nd[a]; /* the model tasks' query distances, in their order */
    }
    if (nm > 0) {
        /*
         * The model's matrices are at most 128 x 128: OpenBLAS's worker threads only add their
         * start-up and spinning there (~1 ms CPU per query at 100,000 tasks). One thread for
         * the fit, the weights and the check; the caller's setting back afterwards. A fitted
         * signal of 0 gives uniform weights, the check then finds no signal (its model and
         * uniform lists are the same) and weighs again with hedge 1: the hedge's leave-one-out
         * (5 x 16 lists over the model tasks) would be thrown away, so it is skipped.
         */
        kb_recommend_weigh_opts wo = {KB_RECOMMEND_WEIGH_OPTS_VERSION, tune_tasks,
                                      KB_RECOMMEND_CHECK_MAX_TASKS,
                                      KB_RECOMMEND_WEIGH_HEDGE_IF_SIGNAL, 0, 0};
        kb_recommend_weighed got;
        int blas_threads = openblas_get_num_threads();
        openblas_set_num_threads(1);
        rc = kb_recommend_weigh(mw, &got, msc, mpair, md, nm, nc, k_eval, &wo, err);
        openblas_set_num_threads(blas_threads);
        if (rc != KB_OK) {
            goto done;
        }
        r->model = got.model;
        r->fitted_signal = got.weights_signal;
        r->check = got.check;
        r->first = got.first;
    }
    for (size_t i = 0; i < nt; i++) {
        r->w[i] = 0.0;
    }
    for (size_t a = 0; a < nm; a++) {
        r->w[idx[a]] = mw[a];
    }
done:
    kb_free(idx);
    kb_free(md);
    kb_free(nd);
    kb_free(mpair);
    kb_free(msc);
    kb_free(mw);
    return rc;
}

/*
 * Rank configurations: scale on every task with runs (or with `fixed`, the blob's scaler),
 * keep the `neighborhood` nearest tasks, fit the similarity model on the `tune_tasks` nearest
 * of them (by the model's distance), weigh all of them by it, choose the hedge by its
 * leave-one-out on those nearest, rank. With `backbones`, also choose the backbones' weighting
 * by kb_recommend_tune on the `tune_tasks` nearest. Returns an exit code (errors printed).
 */
static int rank_configs(cresult *r, const rctx *c, const kb_space *space, int use_model,
                        size_t top, size_t neighborhood, size_t tune_tasks,
                        const kb_similarity_scaler *fixed, int backbones)
{
    size_t nf = c->n_feat, nc = c->n_confs, all = 0;
    kb_error err = KB_ERROR_INIT;
    r->nf = nf;
    r->nc = nc;
    r->wt = (kb_recommend_weighting){1.0, 0.1, NAN, 1.0};
    r->model = (kb_recommend_model){1.0, 1.0, 0.0, 1.0, NAN};
    r->check = (kb_recommend_check){NAN, NAN, NAN, NAN, 0, 0, 0};
    r->fitted_signal = 0.0;
    r->first = SIZE_MAX;
    size_t cap = c->n_tasks ? c->n_tasks : 1;
    r->rows = kb_malloc_array(cap, sizeof *r->rows);
    r->dist = kb_malloc_array(cap, sizeof *r->dist);
    r->q = kb_malloc_array(nf, sizeof *r->q);
    double *z = kb_malloc_array(cap * nf, sizeof *z);
    if (r->rows == NULL || r->dist == NULL || r->q == NULL || z == NULL) {
        kb_free(z);
        return cli_error("recommend", KB_EXIT_FAILURE, "out of memory");
    }
    for (size_t t = 0; t < c->n_tasks; t++) {
        if (c->tasks[t].n_runs > 0) {
            memcpy(z + all * nf, c->tasks[t].f, nf * sizeof *z);
            r->rows[all++] = t;
        }
    }
    r->n_candidates = all;
    memcpy(r->q, c->query_f, nf * sizeof *r->q);
    if ((fixed != NULL
             ? (scaler_copy(&r->scaler, fixed->center, fixed->scale, nf) == KB_OK
                    ? KB_OK
                    : kb_error_set(&err, KB_ENOMEM, "out of memory"))
             : kb_similarity_scaler_fit(&r->scaler, z, all, nf, &err)) != KB_OK ||
        (kb_similarity_scaler_apply(&r->scaler, z, all),
         kb_similarity_scaler_apply(&r->scaler, r->q, 1),
         kb_similarity_index_build(&r->ix, z, all, nf, NULL, &err)) != KB_OK) {
        kb_free(z);
        return cli_fail("recommend", &err);
    }
    kb_free(z);
    for (size_t i = 0; i < all; i++) {
        r->dist[i] = kb_similarity_distance(&r->ix, i, r->q, KB_SIMILARITY_L1, NULL);
    }
    size_t nt = all;
    if (all > neighborhood) {
        /* rows and the index agree until here: rebuild the index on the nearest tasks */
        nearest_first(r->rows, r->dist, all, neighborhood);
        nt = neighborhood;
        kb_similarity_index_release(&r->ix);
        z = kb_malloc_array(nt * nf, sizeof *z);
        if (z == NULL) {
            return cli_error("recommend", KB_EXIT_FAILURE, "out of memory");
        }
        for (size_t i = 0; i < nt; i++) {
            memcpy(z + i * nf, c->tasks[r->rows[i]].f, nf * sizeof *z);
        }
        kb_similarity_scaler_apply(&r->scaler, z, nt);
        int rc = kb_similarity_index_build(&r->ix, z, nt, nf, NULL, &err);
        kb_free(z);
        if (rc != KB_OK) {
            return cli_fail("recommend", &err);
        }
    }
    r->nt = nt;
    double *scores = kb_malloc_array(nt * nc, sizeof *scores);
    double *var = kb_calloc(nt * nc, sizeof *var);
    double *row = kb_malloc_array(nc > nf ? nc : nf, sizeof *row);
    r->w = kb_malloc_array(nt, sizeof *r->w);
    r->items = kb_malloc_array(top, sizeof *r->items);
    size_t nl = tune_tasks < nt ? tune_tasks : nt;
    size_t *near = kb_malloc_array(nt, sizeof *near);
    double *nd = kb_malloc_array(nt, sizeof *nd);
    double *sub = kb_malloc_array(nl * nc, sizeof *sub), *pair = kb_malloc_array(nl * nl, sizeof *pair);
    int code = KB_EXIT_OK;
    if (scores == NULL || var == NULL || row == NULL || r->w == NULL || r->items == NULL ||
        near == NULL || nd == NULL || sub == NULL || pair == NULL) {
        code = cli_error("recommend", KB_EXIT_FAILURE, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nt; i++) {
        const rtask *tk = &c->tasks[r->rows[i]];
        for (size_t j = 0; j < nc; j++) {
            row[j] = c->raw[r->rows[i] + j * c->cap_raw_tasks];
        }
        kb_recommend_normalize(row, nc, tk->direction != 0);
        for (size_t j = 0; j < nc; j++) {
            scores[i + j * nt] = row[j];
        }
    }
    if (use_model && space != NULL) {
        fill_with_models(scores, var, nt, nc, c, space);
    }
    if (model_weights(r, scores, nt, nc, tune_tasks, top < 10 ? 10 : top, &err) != KB_OK) {
        code = cli_fail("recommend", &err);
        goto done;
    }
    kb_recommend_opts ro = KB_RECOMMEND_OPTS_INIT;
    ro.hedge = r->model.hedge;
    ro.first = r->first;
    if (kb_recommend_rank(r->items, &r->n_items, scores, var, nt, nc, r->w, top, &ro, &err) !=
        KB_OK) {
        code = cli_fail("recommend", &err);
        goto done;
    }
    if (backbones) {
        code = tune_backbone_weighting(r, c, scores, nt, nc, nl, near, nd, sub, pair, row,
                                       top < 10 ? 10 : top);
    }
done:
    kb_free(scores);
    kb_free(var);
    kb_free(row);
    kb_free(near);
    kb_free(nd);
    kb_free(sub);
    kb_free(pair);
    return code;
}

/*
 * kb_stats_median(v, n, NULL) by selection instead of a sort (the same value: the NaN-free
 * values' middle one, or the two middle ones interpolated as kb_stats_quantile does), for the
 * explanations' per-feature medians over the neighbourhood. Reorders v.
 */
static double median_select(double *v, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isnan(v[i])) {
            v[k++] = v[i];
        }
    }
    if (k == 0) {
        return NAN;
    }
    double pos = 0.5 * (double)(k - 1);
    size_t lo = (size_t)floor(pos), hi = lo + 1 < k ? lo + 1 : lo;
    double a = kth_smallest(v, k, lo), b = a;
    if (hi != lo) {
        /* the next value up: the smallest of those after the lo-th */
        b = v[hi];
        for (size_t i = hi + 1; i < k; i++) {
            b = v[i] < b ? v[i] : b;
        }
    }
    return a + (b - a) * (pos - (double)lo);
}

/* The text or JSON report. Returns an exit code. */
static int print_result(const rctx *c, const cresult *r, const bctx *x,
                        const kb_recommend_backbone *bitems, size_t n_bitems, const char *sig,
                        const char *space_name, const char *task_id, const char *dataset_path,
                        const char *fingerprint, size_t n_show, int json, int configs_only)
{
    size_t nt = r->nt, nf = r->nf;
    if (configs_only) {
        int code = KB_EXIT_OK;
        for (size_t i = 0; i < r->n_items && code == KB_EXIT_OK; i++) {
            const rconf *k = &c->confs[r->items[i].config];
            cJSON *cfg = cJSON_CreateObject();
            for (size_t j = 0; j < k->n_config; j++) {
                cJSON_AddItemToObject(cfg, k->config[j].name, cli_value_json(&k->config[j].value));
            }
            code = cli_emit_json(cfg);
        }
        return code;
    }
    /* nearest tasks, closest first */
    size_t n_near = n_show < nt ? n_show : nt;
    size_t *near = kb_malloc_array(nt ? nt : 1, sizeof *near);
    double *nd = kb_malloc_array(nt ? nt : 1, sizeof *nd);
    double *typical = kb_malloc_array(nf, sizeof *typical);
    double *contrib = kb_malloc_array((nt ? nt : 1) * nf, sizeof *contrib);
    double *col = kb_malloc_array(nt ? nt : 1, sizeof *col);
    if (near == NULL || nd == NULL || typical == NULL || contrib == NULL || col == NULL) {
        kb_free(near);
        kb_free(nd);
        kb_free(typical);
        kb_free(contrib);
        kb_free(col);
        return cli_error("recommend", KB_EXIT_FAILURE, "out of memory");
    }
    for (size_t i = 0; i < nt; i++) {
        near[i] = i;
        nd[i] = r->dist[i];
    }
    /* selection by distance; equal distances keep the rows' order */
    for (size_t a = 0; a < n_near; a++) {
        for (size_t b = a + 1; b < nt; b++) {
            if (nd[b] < nd[a]) {
                size_t tmp = near[a];
                near[a] = near[b];
                near[b] = tmp;
                double td = nd[a];
                nd[a] = nd[b];
                nd[b] = td;
            }
        }
    }
    double wsum = 0;
    for (size_t i = 0; i < nt; i++) {
        wsum += r->w[i];
    }
    /* Reasons: the features where a neighbour is closer than the median task is. */
    for (size_t i = 0; i < nt; i++) {
        kb_similarity_contributions(contrib + i * nf, &r->ix, i, r->q, KB_SIMILARITY_L1);
    }
    for (size_t j = 0; j < nf && nt > 0; j++) {
        for (size_t i = 0; i < nt; i++) {
            col[i] = contrib[i * nf + j];
        }
        typical[j] = median_select(col, nt);
    }
    kb_free(contrib);
    kb_free(col);
    kb_free(nd);
    cJSON *doc = json ? cJSON_CreateObject() : NULL;
    cJSON *jn = NULL, *jr = NULL;
    if (json) {
        cJSON_AddStringToObject(doc, "schema", "kb.recommend/1");
        cJSON_AddStringToObject(doc, "space", space_name);
        cJSON_AddItemToObject(doc, "objective",
                              c->objective ? cJSON_CreateString(c->objective) : cJSON_CreateNull());
        cJSON *jq = cJSON_AddObjectToObject(doc, "query");
        if (task_id != NULL) {
            cJSON_AddStringToObject(jq, "task", task_id);
        } else {
            cJSON_AddStringToObject(jq, "dataset", dataset_path);
            cJSON_AddStringToObject(jq, "fingerprint", fingerprint);
        }
        cJSON_AddNumberToObject(doc, "tasks", (double)nt);
        cJSON_AddNumberToObject(doc, "candidate_tasks", (double)r->n_candidates);
        cJSON_AddNumberToObject(doc, "configurations", (double)r->nc);
        cJSON *jw = cJSON_AddObjectToObject(doc, "weighting");
        cJSON_AddStringToObject(jw, "model", "gp-laplace-l1");
        cJSON_AddNumberToObject(jw, "signal", r->fitted_signal);
        cJSON_AddNumberToObject(jw, "bandwidth", r->model.bandwidth);
        cJSON_AddItemToObject(jw, "loo_regret", num_or_null(r->model.loo_regret));
        cJSON_AddNumberToObject(jw, "hedge", r->model.hedge);
        cJSON_AddStringToObject(jw, "weights", weights_kind(r));
        cJSON *jc = cJSON_AddObjectToObject(jw, "check");
        cJSON_AddNumberToObject(jc, "tasks", (double)r->check.n_queries);
        cJSON_AddItemToObject(jc, "model_regret", num_or_null(r->check.model_regret));
        cJSON_AddItemToObject(jc, "uniform_regret", num_or_null(r->check.uniform_regret));
        cJSON_AddItemToObject(jc, "model_first", num_or_null(r->check.model_first));
        cJSON_AddItemToObject(jc, "uniform_first", num_or_null(r->check.uniform_first));
        jn = cJSON_AddArrayToObject(doc, "neighbors");
        jr = cJSON_AddArrayToObject(doc, "recommendations");
    } else if (nt > 0) {
        printf("nearest tasks (of %zu with runs in space '%s'", r->n_candidates, space_name);
        if (nt < r->n_candidates) {
            printf("; the nearest %zu weighed", nt);
        }
        printf("):\n  %-24s %-22s %9s %7s %5s  %s\n", "task", "name", "distance", "weight",
               "runs", "closest on");
    }
    for (size_t a = 0; a < n_near; a++) {
        size_t i = near[a];
        const rtask *tk = &c->tasks[r->rows[i]];
        size_t fe[3];
        size_t n_fe = kb_similarity_explain(fe, NULL, 3, &r->ix, i, r->q, KB_SIMILARITY_L1, typical);
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "task", tk->id);
            cJSON_AddStringToObject(o, "name", tk->name);
            cJSON_AddItemToObject(o, "distance", num_or_null(r->dist[i]));
            cJSON_AddNumberToObject(o, "weight", json_num(r->w[i] / wsum));
            cJSON_AddNumberToObject(o, "runs", (double)tk->n_runs);
            cJSON *why = cJSON_AddArrayToObject(o, "closest_features");
            for (size_t f = 0; f < n_fe; f++) {
                cJSON *fo = cJSON_CreateObject();
                cJSON_AddStringToObject(fo, "feature", kb_metafeatures_name(fe[f]));
                cJSON_AddItemToObject(fo, "query", num_or_null(c->query_f[fe[f]]));
                cJSON_AddItemToObject(fo, "neighbor", num_or_null(tk->f[fe[f]]));
                cJSON_AddItemToArray(why, fo);
            }
            cJSON_AddItemToArray(jn, o);
        } else {
            printf("  %-24s %-22.22s %9.3f %7.3f %5zu ", tk->id, tk->name, r->dist[i],
                   r->w[i] / wsum, tk->n_runs);
            for (size_t f = 0; f < n_fe; f++) {
                printf(" %s (%.3g vs %.3g)", kb_metafeatures_name(fe[f]), c->query_f[fe[f]],
                       tk->f[fe[f]]);
            }
            putchar('\n');
        }
    }
    if (!json && nt > 0) {
        printf("\nrecommended configurations (predicted normalised %s: 1 = a task's best, 0 = "
               "its worst):\n", c->objective);
        printf("  %-4s %-7s %-6s %-9s %-9s %s\n", "rank", "score", "+-", "coverage", c->objective,
               "configuration");
    }
    for (size_t i = 0; i < r->n_items; i++) {
        const rconf *k = &c->confs[r->items[i].config];
        /* the neighbours' own results for it, weighted: a raw-unit expectation */
        double rw = 0, rv = 0;
        for (size_t t = 0; t < nt; t++) {
            double v = c->raw[r->rows[t] + r->items[i].config * c->cap_raw_tasks];
            if (!isnan(v)) {
                rw += r->w[t];
                rv += r->w[t] * v;
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
            cJSON_AddItemToObject(o, "predicted_score", num_or_null(r->items[i].mean));
            cJSON_AddItemToObject(o, "sd", num_or_null(r->items[i].sd));
            cJSON_AddNumberToObject(o, "coverage", json_num(r->items[i].coverage));
            cJSON_AddItemToObject(o, "neighbors_mean_objective", num_or_null(raw_mean));
            cJSON_AddItemToObject(o, "list_value", num_or_null(r->items[i].list_value));
            cJSON_AddItemToArray(jr, o);
        } else {
            printf("  %-4zu %-7.3f %-6.3f %-9.2f %-9.4g ", i + 1, r->items[i].mean,
                   r->items[i].sd, r->items[i].coverage, raw_mean);
            print_config(k);
            putchar('\n');
        }
    }
    kb_free(near);
    kb_free(typical);
    if (json) {
        cJSON_AddItemToObject(doc, "input_signature", sig ? cJSON_CreateString(sig) : cJSON_CreateNull());
        cJSON_AddItemToObject(doc, "backbone_objective",
                              x->objective ? cJSON_CreateString(x->objective) : cJSON_CreateNull());
        cJSON_AddItemToObject(doc, "backbones", backbones_json(x, bitems, n_bitems));
        return cli_emit_json(doc);
    }
    if (nt > 0) {
        printf("\ntask weights from the similarity model fitted on the knowledge base: signal "
               "%.3g (0: meta-features do not predict scores, uniform weights), bandwidth %.2g x "
               "median distance; hedge %.2g by leave-one-out\n", r->fitted_signal,
               r->model.bandwidth, r->model.hedge);
        if (r->check.n_queries > 0) {
            printf("whole-knowledge-base check on %zu tasks (leave-one-out regret, model vs "
                   "uniform weights): %.4f vs %.4f over the list, %.4f vs %.4f for the first "
                   "pick; weights: %s\n", r->check.n_queries, r->check.model_regret,
                   r->check.uniform_regret, r->check.model_first, r->check.uniform_first,
                   weights_kind(r));
        }
    }
    if (n_bitems > 0) {
        print_backbones(x, bitems, n_bitems, sig);
    }
    return KB_EXIT_OK;
}

/* The input signature of a dataset as kb train net computes it; NULL if it has none. */
static char *dataset_signature(const kb_dataset *d)
{
    kb_net_scaler s;
    if (kb_net_scaler_fit(&s, d, NULL, 0, NULL) != KB_OK) {
        return NULL;
    }
    char *sig = kb_strdup(s.signature);
    kb_net_scaler_release(&s);
    return sig;
}

int cmd_recommend(int argc, char **argv)
{
    const char *opt_kb = NULL, *task_id = NULL, *space_name = NULL, *opt_sig = NULL;
    size_t top = 5, n_show = 5, neighborhood = 256, tune_tasks = 16;
    int json = 0, use_model = 1, held_out = 0, configs_only = 0, use_cache = 1, use_logme = 1;
    size_t transfer_rows = 2000;
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
        case OPT_SIGNATURE: opt_sig = p.arg; break;
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
        case OPT_NEIGHBORHOOD:
            if (cli_parse_size("recommend", "neighborhood", p.arg, &neighborhood) != 0 ||
                neighborhood == 0) {
                return neighborhood == 0 ? cli_usage("recommend", "--neighborhood must be at least 1")
                                         : KB_EXIT_USAGE;
            }
            break;
        case OPT_TUNE_TASKS:
            if (cli_parse_size("recommend", "tune-tasks", p.arg, &tune_tasks) != 0) {
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
        case OPT_NO_CACHE: use_cache = 0; break;
        case OPT_TRANSFER:
            if (strcmp(p.arg, "logme") != 0 && strcmp(p.arg, "none") != 0) {
                return cli_usage("recommend", "--transfer takes logme or none, not '%s'", p.arg);
            }
            use_logme = strcmp(p.arg, "logme") == 0;
            break;
        case OPT_TRANSFER_ROWS:
            if (cli_parse_size("recommend", "transfer-rows", p.arg, &transfer_rows) != 0 ||
                transfer_rows < 2) {
                return transfer_rows < 2 ? cli_usage("recommend", "--transfer-rows must be at least 2")
                                         : KB_EXIT_USAGE;
            }
            break;
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
    bctx x;
    memset(&x, 0, sizeof x);
    x.c = &c;
    char *sig = NULL;
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
        sig = opt_sig != NULL ? kb_strdup(opt_sig) : dataset_signature(&d);
        kb_dataset_release(&d);
        c.query_f = kb_malloc_array(c.n_feat, sizeof *c.query_f);
        if (c.query_f == NULL) {
            kb_free(sig);
            return cli_error("recommend", KB_EXIT_FAILURE, "out of memory");
        }
        memcpy(c.query_f, mf.values, c.n_feat * sizeof *c.query_f);
    }

    c.exclude = excl;
    c.n_exclude = n_excl;
    kb_store *store = NULL;
    int rc = cli_open_store(&store, "recommend", opt_kb, KB_STORE_OPEN_RDONLY, &fa.log);
    if (rc != KB_EXIT_OK) {
        kb_free(sig);
        release_ctx(&c);
        return rc;
    }
    kb_error err = KB_ERROR_INIT;
    kb_space space = {0};
    cresult res;
    memset(&res, 0, sizeof res);
    kb_recommend_backbone *bitems = NULL;
    double *transfer = NULL; /* LogME per compatible backbone (NaN: not scored) */
    size_t n_bitems = 0;
    kb_store_cache_view *view = NULL;
    kb_buf derived = KB_BUF_INIT;
    rblob blob;
    memset(&blob, 0, sizeof blob);
    kb_similarity_scaler blob_scaler = {0};
    size_t blob_candidates = 0;
    int blob_mode = 0;
    int code = KB_EXIT_OK;
    space_count sc = {0, ""};
    if (space_name == NULL) {
        kb_store_foreach_space(store, NULL, count_space, &sc, &err);
        if (sc.n != 1) {
            kb_store_close(store);
            kb_free(sig);
            release_ctx(&c);
            return cli_usage("recommend", sc.n == 0 ? "the knowledge base holds no search space"
                                                    : "say which space: --space NAME");
        }
        space_name = sc.name;
    }
    c.space = space_name;
    int have_space = kb_store_get_space(&space, store, space_name, &err) == KB_OK;
    rc = kb_store_foreach_backbone(store, NULL, on_backbone, &x, &err);
    if (rc == KB_OK && !x.failed && task_id != NULL) {
        /* the query task first: its type decides which tasks are comparable */
        kb_task qt = {0};
        if (kb_store_get_task(&qt, store, task_id, &err) == KB_OK && qt.n_features > 0) {
            c.query_f = task_features(&qt, c.n_feat);
            c.query_type = qt.type;
            sig = opt_sig != NULL ? kb_strdup(opt_sig) : stored_task_signature(&x, store, &qt, &err);
        }
        kb_task_release(&qt);
    }
    /*
     * Large knowledge bases read a derived table (see rblob) instead of every task and run:
     * from the cache when it is current and has more tasks than the neighbourhood.
     */
    char cache_name[160];
    snprintf(cache_name, sizeof cache_name, "recommend/%d/%s/%d", RBLOB_NAME_VERSION, space_name,
             (int)c.query_type);
    uint64_t gen = 0, counts[2] = {0, 0};
    kb_store_stats st;
    if (rc == KB_OK && !x.failed && c.query_f != NULL && use_cache &&
        kb_store_tasks_generation(&gen, store, &err) == KB_OK &&
        kb_store_stats_get(&st, store, &err) == KB_OK) {
        counts[0] = st.n_runs;
        counts[1] = st.n_runs_by_status[KB_RUN_STATUS_OK];
        if (kb_store_cache_view_open(&view, store, cache_name, NULL) == KB_OK &&
            rblob_parse(&blob, kb_store_cache_view_data(view), kb_store_cache_view_len(view)) &&
            kb_store_cache_view_generation(view) == kb_store_cache_view_tasks_generation(view) &&
            blob.h->n_runs == counts[0] && blob.h->n_ok_runs == counts[1] &&
            blob.h->n_tasks > neighborhood) {
            blob_mode = 1;
        } else {
            kb_store_cache_view_close(view);
            view = NULL;
        }
    }
    if (rc == KB_OK && !x.failed && !blob_mode) {
        rc = gather_scan(&c, store, space_name, &err);
        size_t rows = 0;
        for (size_t t = 0; rc == KB_OK && !c.failed && t < c.n_tasks; t++) {
            rows += c.tasks[t].n_runs > 0;
        }
        if (rc == KB_OK && !c.failed && rows > neighborhood) {
            /* derive the table from every task of the kind (none left out), keep it */
            rctx all;
            memset(&all, 0, sizeof all);
            all.n_feat = c.n_feat;
            all.query_type = c.query_type;
            rc = gather_scan(&all, store, space_name, &err);
            if (rc == KB_OK && all.failed) {
                err = all.err;
                rc = err.code;
            }
            rc = rc ? rc : rblob_build(&derived, &all, counts, &err);
            release_ctx(&all);
            if (rc == KB_OK && rblob_parse(&blob, derived.data, derived.len)) {
                blob_mode = 1;
            }
        }
    }
    if (rc == KB_OK && !c.failed && !x.failed && blob_mode) {
        /* the scan's tasks, runs and configurations give way to the neighbourhood */
        rctx keep = c;
        memset(&c, 0, sizeof c);
        c.n_feat = keep.n_feat;
        c.space = keep.space;
        c.exclude = keep.exclude;
        c.n_exclude = keep.n_exclude;
        c.query_id = keep.query_id;
        c.query_type = keep.query_type;
        c.query_f = keep.query_f;
        keep.query_f = NULL;
        release_ctx(&keep);
        rc = scaler_copy(&blob_scaler, blob.center, blob.scale, c.n_feat);
        if (rc != KB_OK) {
            kb_error_set(&err, rc, "out of memory");
        } else {
            rc = rblob_neighborhood(&c, &blob_candidates, &blob, &blob_scaler, neighborhood, &err);
        }
    }
    if (rc == KB_OK && !c.failed && !x.failed) {
        rc = gather_finetunes(&x, store, sig, space_name, blob_mode, &err);
    }
    kb_store_cache_view_close(view);
    view = NULL;
    kb_store_close(store);
    store = NULL;
    if (rc == KB_OK && derived.len > 0 && use_cache &&
        cli_open_store(&store, "recommend", opt_kb, 0, &fa.log) == KB_EXIT_OK) {
        /* best effort: a read-only or busy store only costs the next query a derivation */
        kb_store_cache_put(store, cache_name, derived.data, derived.len, gen, NULL);
        kb_store_close(store);
        store = NULL;
    }
    if (c.failed || x.failed || rc != KB_OK) {
        if (x.failed && !c.failed && rc == KB_OK) {
            kb_error_set(&c.err, KB_ENOMEM, "out of memory reading backbones");
            c.failed = 1;
        }
        code = cli_fail("recommend", c.failed ? &c.err : &err);
        goto done;
    }
    if (task_id != NULL && c.query_f == NULL) {
        code = cli_error("recommend", KB_EXIT_FAILURE, "no task '%s' with meta-features", task_id);
        goto done;
    }
    size_t n_rows = 0;
    for (size_t t = 0; t < c.n_tasks; t++) {
        n_rows += c.tasks[t].n_runs > 0;
    }
    if ((n_rows == 0 || c.n_confs == 0) && x.n_bb == 0) {
        code = cli_error("recommend", KB_EXIT_FAILURE,
                         "no stored task with meta-features has ok runs in space '%s' "
                         "(add tasks with 'kb add-task' and their runs with 'kb ingest')",
                         space_name);
        goto done;
    }
    if (n_rows > 0 && c.n_confs > 0) {
        code = rank_configs(&res, &c, have_space ? &space : NULL, use_model, top,
                            blob_mode ? SIZE_MAX : neighborhood, tune_tasks,
                            blob_mode ? &blob_scaler : NULL, x.n_bb > 0);
        if (blob_mode) {
            res.n_candidates = blob_candidates;
        }
    } else {
        res.wt = (kb_recommend_weighting){1.0, 0.1, NAN, 1.0};
        res.nf = c.n_feat;
        res.q = kb_malloc_array(c.n_feat, sizeof *res.q);
        if (res.q == NULL) {
            code = cli_error("recommend", KB_EXIT_FAILURE, "out of memory");
        }
        fprintf(stderr, "kb recommend: warning: no configurations: no stored task has ok runs "
                        "in space '%s'\n", space_name);
    }
    if (code == KB_EXIT_OK && x.n_bb > 0) {
        bitems = kb_malloc_array(x.n_bb, sizeof *bitems);
        transfer = kb_malloc_array(x.n_bb, sizeof *transfer);
        if (bitems == NULL || transfer == NULL) {
            code = cli_error("recommend", KB_EXIT_FAILURE, "out of memory");
        } else if (use_logme && dataset != NULL && !configs_only &&
                   (code = score_transfer(transfer, &x, dataset_path, transfer_rows, &fa)) !=
                       KB_EXIT_OK) {
            /* score_transfer printed why */
        } else if (rank_backbones(bitems, &n_bitems, &x, c.query_f, c.n_feat, &res.wt,
                                  blob_mode ? &blob_scaler : NULL,
                                  use_logme && dataset != NULL && !configs_only ? transfer : NULL,
                                  &err) != KB_OK) {
            code = cli_fail("recommend", &err);
        }
    }
    if (code == KB_EXIT_OK) {
        code = print_result(&c, &res, &x, bitems, n_bitems, sig, space_name, task_id,
                            dataset_path, fingerprint, n_show, json, configs_only);
    }
done:
    kb_store_cache_view_close(view);
    kb_store_close(store);
    kb_buf_release(&derived);
    kb_similarity_scaler_release(&blob_scaler);
    kb_free(bitems);
    kb_free(transfer);
    cresult_release(&res);
    release_bctx(&x);
    kb_free(sig);
    kb_space_release(&space);
    release_ctx(&c);
    return code;
}
