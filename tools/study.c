/* Studies over the store and the engine: see study.h. */
#include "tools/study.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/core/alloc.h"
#include "engine/core/buf.h"
#include "engine/core/rng.h"
#include "engine/core/sha256.h"
#include "engine/metafeatures.h"
#include "engine/recommend.h"
#include "engine/similarity.h"
#include "engine/transfer.h"

/* ---- names ---- */

static const struct {
    const char *name;
    kb_bo_method method;
    int scheduler;
} method_names[] = {
    {"gp", KB_BO_METHOD_GP, 0},        {"tpe", KB_BO_METHOD_TPE, 0},
    {"random", KB_BO_METHOD_RANDOM, 0}, {"hyperband", KB_BO_METHOD_RANDOM, 1},
    {"bohb", KB_BO_METHOD_TPE, 1},      {"asha", KB_BO_METHOD_RANDOM, 1},
    {"adarandom", KB_BO_METHOD_RANDOM, 2}, {"reinforce", KB_BO_METHOD_RANDOM, 2},
};

static const char *const warm_names[] = {
    [KB_BO_WARM_NONE] = "none",         [KB_BO_WARM_NEAREST] = "nearest",
    [KB_BO_WARM_PORTFOLIO] = "portfolio", [KB_BO_WARM_STACKED] = "stacked",
    [KB_BO_WARM_PRIORS] = "priors",     [KB_BO_WARM_RGPE] = "rgpe",
    [KB_BO_WARM_AUTO] = "auto",
};

int study_method_parse(kb_bo_method *out, int *scheduler_out, const char *name)
{
    for (size_t i = 0; i < sizeof method_names / sizeof method_names[0]; i++) {
        if (strcmp(name, method_names[i].name) == 0) {
            *out = method_names[i].method;
            if (scheduler_out != NULL) {
                *scheduler_out = method_names[i].scheduler;
            }
            return 0;
        }
    }
    return -1;
}

int study_warm_parse(kb_bo_warm *out, const char *name)
{
    for (size_t i = 0; i < sizeof warm_names / sizeof warm_names[0]; i++) {
        if (strcmp(name, warm_names[i]) == 0) {
            *out = (kb_bo_warm)i;
            return 0;
        }
    }
    return -1;
}

kb_direction study_guess_direction(const char *objective)
{
    static const char *const minimised[] = {"loss", "error", "err", "rmse", "mae", "mse",
                                            "time", "cost", "regret"};
    for (size_t i = 0; i < sizeof minimised / sizeof minimised[0]; i++) {
        if (strstr(objective, minimised[i]) != NULL) {
            return KB_DIRECTION_MINIMIZE;
        }
    }
    return KB_DIRECTION_MAXIMIZE;
}

/* Make room for one more element in a growing array (doubling from `first`); -1 when out of
   memory, the array untouched. */
static int grow(void *array, size_t *cap, size_t n, size_t size, size_t first)
{
    if (n < *cap) {
        return 0;
    }
    size_t c = *cap ? 2 * *cap : first;
    void *p = kb_realloc_array(*(void **)array, c, size);
    if (p == NULL) {
        return -1;
    }
    *(void **)array = p;
    *cap = c;
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s == NULL ? NULL : kb_strdup(s);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The objective's value among a run's final metrics, or NaN. */
static double metric_value(const kb_metric *m, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m[i].name, name) == 0) {
            return m[i].value;
        }
    }
    return NAN;
}

/* ---- creating a study: candidate neighbours ---- */

typedef struct candidate {
    char *id;
    kb_task_type type;
    double *f;           /* meta-features in kb_metafeatures order (NaN missing), or NULL */
    size_t n_runs;       /* ok runs in the space reporting the objective */
} candidate;

typedef struct objective_count {
    char *name;
    int direction;
    size_t n;
} objective_count;

typedef struct create_ctx {
    const study_create_opts *o;
    kb_task_type type;
    candidate *c;
    size_t n, cap;
    objective_count *obj;
    size_t n_obj, cap_obj;
    int direction;         /* of the first run reporting the objective, or -1 */
    int nomem;
} create_ctx;

static double *task_feature_vector(const kb_task *t)
{
    size_t nf = kb_metafeatures_count();
    if (t->n_features == 0) {
        return NULL;
    }
    double *f = kb_malloc_array(nf, sizeof *f);
    if (f == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < nf; j++) {
        f[j] = NAN;
    }
    for (size_t i = 0; i < t->n_features; i++) {
        int j = kb_metafeatures_index(t->features[i].name);
        if (j >= 0 && (size_t)j < nf) {
            f[j] = t->features[i].value;
        }
    }
    return f;
}

static int is_excluded(const study_create_opts *o, const char *id)
{
    if (strcmp(id, o->task_id) == 0) {
        return 1;
    }
    for (size_t i = 0; i < o->n_exclude; i++) {
        if (strcmp(o->exclude[i], id) == 0) {
            return 1;
        }
    }
    return 0;
}

static int on_candidate_task(const kb_task *t, void *payload)
{
    create_ctx *c = payload;
    if (is_excluded(c->o, t->id) ||
        (c->type != KB_TASK_TYPE_UNKNOWN && t->type != KB_TASK_TYPE_UNKNOWN &&
         t->type != c->type)) {
        return 0;
    }
    if (grow(&c->c, &c->cap, c->n, sizeof *c->c, 64) != 0) {
        c->nomem = 1;
        return 1;
    }
    candidate *k = &c->c[c->n];
    memset(k, 0, sizeof *k);
    k->id = kb_strdup(t->id);
    k->type = t->type;
    k->f = task_feature_vector(t);
    if (k->id == NULL || (t->n_features > 0 && k->f == NULL)) {
        kb_free(k->id);
        kb_free(k->f);
        c->nomem = 1;
        return 1;
    }
    c->n++;
    return 0;
}

static candidate *find_candidate(create_ctx *c, const char *id)
{
    /* tasks arrive sorted by id (kb_store_foreach_task), so a binary search finds them */
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(c->c[mid].id, id);
        if (cmp == 0) {
            return &c->c[mid];
        }
        if (cmp < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

static int on_candidate_run(const kb_run *r, void *payload)
{
    create_ctx *c = payload;
    candidate *k = find_candidate(c, r->task_id);
    if (k == NULL || r->objective == NULL) {
        return 0;
    }
    if (c->o->objective != NULL) {
        if (strcmp(r->objective, c->o->objective) == 0) {
            if (c->direction < 0) {
                c->direction = (int)r->direction; /* the first comparable run's */
            }
            if (isfinite(metric_value(r->metrics, r->n_metrics, r->objective))) {
                k->n_runs++;
            }
        }
        return 0;
    }
    /* no objective given: count each objective's runs to pick the most common */
    for (size_t i = 0; i < c->n_obj; i++) {
        if (strcmp(c->obj[i].name, r->objective) == 0) {
            c->obj[i].n++;
            return 0;
        }
    }
    if (grow(&c->obj, &c->cap_obj, c->n_obj, sizeof *c->obj, 8) != 0) {
        c->nomem = 1;
        return 1;
    }
    c->obj[c->n_obj] = (objective_count){kb_strdup(r->objective), (int)r->direction, 1};
    if (c->obj[c->n_obj].name == NULL) {
        c->nomem = 1;
        return 1;
    }
    c->n_obj++;
    return 0;
}

static void release_create(create_ctx *c)
{
    for (size_t i = 0; i < c->n; i++) {
        kb_free(c->c[i].id);
        kb_free(c->c[i].f);
    }
    kb_free(c->c);
    for (size_t i = 0; i < c->n_obj; i++) {
        kb_free(c->obj[i].name);
    }
    kb_free(c->obj);
}

typedef struct ranked {
    size_t cand;
    double dist;
    size_t row; /* of the candidates with runs, before sorting */
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->dist < y->dist) {
        return -1;
    }
    if (x->dist > y->dist) {
        return 1;
    }
    return x->cand < y->cand ? -1 : x->cand > y->cand;
}

/*
 * Order the candidates with runs: by meta-feature distance to the query when it has
 * meta-features (robust scaling learned from the candidates themselves), else by run count.
 * Fills ranked[0..*n_out) and, for the first m = min(k, *n_out), weight 1 and, with
 * meta-features, the similarity model's distances (kb_similarity_distance_imputed, as
 * `kb recommend` computes them) to the query in md[0..m) and between the first
 * mm = min(m, KB_RECOMMEND_MODEL_MAX_TASKS) in mpair (mm x mm); *have_dist says whether they
 * were computed.
 */
static int rank_candidates(ranked *out, size_t *n_out, double *w, double *md, double *mpair,
                           int *have_dist, size_t k, create_ctx *c, const double *q,
                           kb_error *err)
{
    *have_dist = 0;
    size_t nf = kb_metafeatures_count(), n = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->c[i].n_runs > 0) {
            out[n] = (ranked){i, INFINITY, n};
            n++;
        }
    }
    *n_out = n;
    if (n == 0) {
        return KB_OK;
    }
    size_t n_feat_tasks = 0;
    for (size_t r = 0; r < n; r++) {
        n_feat_tasks += c->c[out[r].cand].f != NULL;
    }
    if (q != NULL && n_feat_tasks > 0) {
        double *z = kb_malloc_array(n * nf, sizeof *z), *qz = kb_malloc_array(nf, sizeof *qz);
        kb_similarity_scaler sc = {0};
        kb_similarity_index ix = {0};
        int rc = z == NULL || qz == NULL ? kb_error_set(err, KB_ENOMEM, "out of memory") : KB_OK;
        for (size_t r = 0; rc == KB_OK && r < n; r++) {
            const double *f = c->c[out[r].cand].f;
            for (size_t j = 0; j < nf; j++) {
                z[r * nf + j] = f != NULL ? f[j] : NAN;
            }
        }
        if (rc == KB_OK) {
            memcpy(qz, q, nf * sizeof *qz);
            rc = kb_similarity_scaler_fit(&sc, z, n, nf, err);
        }
        if (rc == KB_OK) {
            kb_similarity_scaler_apply(&sc, z, n);
            kb_similarity_scaler_apply(&sc, qz, 1);
            rc = kb_similarity_index_build(&ix, z, n, nf, NULL, err);
        }
        for (size_t r = 0; rc == KB_OK && r < n; r++) {
            size_t shared = 0;
            double d = kb_similarity_distance(&ix, r, qz, KB_SIMILARITY_L1, &shared);
            out[r].dist = shared > 0 ? d : INFINITY;
        }
        size_t m = k < n ? k : n;
        if (rc == KB_OK) {
            qsort(out, n, sizeof *out, cmp_ranked);
            /* the index holds the scaled tasks with missing values as 0, as kb recommend's */
            size_t mm = m < KB_RECOMMEND_MODEL_MAX_TASKS ? m : KB_RECOMMEND_MODEL_MAX_TASKS;
            for (size_t a = 0; a < m; a++) {
                const double *xa = ix.x + out[a].row * nf;
                w[a] = 1.0;
                md[a] = kb_similarity_distance_imputed(xa, qz, nf);
                for (size_t b = 0; a < mm && b <= a; b++) {
                    mpair[a + b * mm] = mpair[b + a * mm] =
                        kb_similarity_distance_imputed(xa, ix.x + out[b].row * nf, nf);
                }
            }
            *have_dist = 1;
        }
        kb_similarity_index_release(&ix);
        kb_similarity_scaler_release(&sc);
        kb_free(z);
        kb_free(qz);
        return rc;
    }
    /* no meta-features to compare: the tasks with the most runs, equally weighted */
    for (size_t r = 0; r < n; r++) {
        out[r].dist = -(double)c->c[out[r].cand].n_runs;
    }
    qsort(out, n, sizeof *out, cmp_ranked);
    for (size_t r = 0; r < n && r < k; r++) {
        out[r].dist = NAN;
        w[r] = 1.0;
    }
    return KB_OK;
}

/* ---- the recommender's view of the neighbours (engine/recommend.h) ---- */

/* kb recommend's --tune-tasks default: the similarity model is fitted on this many nearest */
#define STUDY_MODEL_TUNE_TASKS 16
/* kb recommend's list length for its leave-one-out choices (its default --top 5 -> 10) */
#define STUDY_MODEL_K_EVAL 10

/*
 * A score table as kb recommend builds it: the best (minimised) result of each distinct
 * configuration (kb_encode_same) per task, NaN where a task did not run it; configurations in
 * order of first appearance.
 */
typedef struct score_table {
    double *u;   /* n_configs x p, row-contiguous */
    double *raw; /* n_tasks x cap, column-major */
    size_t n_tasks, n_configs, cap, p;
} score_table;

static void score_table_release(score_table *t)
{
    kb_free(t->u);
    kb_free(t->raw);
}

/* NEEDSWORK: the linear search makes a table of R runs and C configurations O(R C); a hash
   of the snapped encoding would make it O(R) for neighbours with thousands of runs each. */
static int score_table_add(score_table *t, size_t task, const double *u, double y)
{
    size_t j = 0;
    while (j < t->n_configs && !kb_encode_same(t->u + j * t->p, 1, u, 1, t->p)) {
        j++;
    }
    if (j == t->n_configs) {
        if (j == t->cap) {
            size_t cap = t->cap ? 2 * t->cap : 64;
            double *nu = kb_realloc_array(t->u, cap * t->p + 1, sizeof *nu);
            if (nu == NULL) {
                return KB_ENOMEM;
            }
            t->u = nu;
            double *nr = kb_realloc_array(t->raw, cap * t->n_tasks + 1, sizeof *nr);
            if (nr == NULL) {
                return KB_ENOMEM;
            }
            t->raw = nr;
            t->cap = cap;
        }
        memcpy(t->u + j * t->p, u, t->p * sizeof *u);
        for (size_t i = 0; i < t->n_tasks; i++) {
            t->raw[i + j * t->n_tasks] = NAN;
        }
        t->n_configs++;
    }
    double *cell = &t->raw[task + j * t->n_tasks];
    if (isnan(*cell) || y < *cell) {
        *cell = y;
    }
    return KB_OK;
}

/* The table's scores normalised per task (1 = the task's best), n_tasks x n_configs. */
static double *score_table_scores(const score_table *t)
{
    size_t nt = t->n_tasks, nc = t->n_configs;
    double *sc = kb_malloc_array(nt * nc + 1, sizeof *sc), *row = kb_malloc_array(nc + 1, sizeof *row);
    if (sc == NULL || row == NULL) {
        kb_free(sc);
        kb_free(row);
        return NULL;
    }
    for (size_t i = 0; i < nt; i++) {
        for (size_t j = 0; j < nc; j++) {
            row[j] = t->raw[i + j * nt];
        }
        kb_recommend_normalize(row, nc, 0);
        for (size_t j = 0; j < nc; j++) {
            sc[i + j * nt] = row[j];
        }
    }
    kb_free(row);
    return sc;
}

typedef struct table_ctx {
    score_table *t;
    const kb_encode *enc;
    const char *objective;
    int maximize;
    size_t task;
    double *u; /* p values of scratch */
    int rc;
} table_ctx;

static int on_table_run(const kb_run *r, void *payload)
{
    table_ctx *c = payload;
    if (r->objective == NULL || strcmp(r->objective, c->objective) != 0) {
        return 0;
    }
    double v = metric_value(r->metrics, r->n_metrics, c->objective);
    kb_error e2 = KB_ERROR_INIT;
    if (!isfinite(v) || kb_encode_config(c->u, c->enc, r->config, r->n_config, &e2) != KB_OK) {
        return 0; /* no result, or a run from an older version of the space */
    }
    c->rc = score_table_add(c->t, c->task, c->u, c->maximize ? -v : v);
    return c->rc != KB_OK;
}

/*
 * The neighbours' task weights as `kb recommend` computes them: the similarity model
 * (kb_recommend_model_fit) fitted on the STUDY_MODEL_TUNE_TASKS nearest of the first
 * m <= KB_RECOMMEND_MODEL_MAX_TASKS neighbours by its distance md, then
 * kb_recommend_model_weights for all m (the rest get 0), uniform unless kb recommend's
 * whole-knowledge-base check finds signal (all in kb_recommend_weigh). Scores from the neighbours' ok runs
 * in the space; md, mpair (m x m): imputed distances (rank_candidates).
 */
static int model_weights(double *w, kb_store *store, const create_ctx *c,
                         const ranked *rk, size_t n_nb, const double *md, const double *mpair,
                         const kb_space *space, const char *objective, int maximize,
                         kb_error *err)
{
    size_t m = n_nb < KB_RECOMMEND_MODEL_MAX_TASKS ? n_nb : KB_RECOMMEND_MODEL_MAX_TASKS;
    kb_encode *enc = NULL;
    score_table t = {NULL, NULL, m, 0, 0, 0};
    double *u = NULL, *sc = NULL;
    int rc = kb_encode_new(&enc, space, err);
    if (rc != KB_OK) {
        return rc;
    }
    t.p = kb_encode_n_params(enc);
    u = kb_malloc_array(t.p + 1, sizeof *u);
    if (u == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < m && rc == KB_OK; i++) {
        table_ctx tc = {&t, enc, objective, maximize, i, u, KB_OK};
        kb_store_filter f = KB_STORE_FILTER_INIT;
        f.task_id = c->c[rk[i].cand].id;
        f.space = space->name;
        f.status = KB_RUN_STATUS_OK;
        rc = kb_store_foreach_run(store, &f, on_table_run, &tc, err);
        if (rc == 1 || tc.rc != KB_OK) {
            rc = kb_error_set(err, KB_ENOMEM, "out of memory");
        }
    }
    size_t nc = t.n_configs;
    if (rc != KB_OK || nc == 0) {
        goto done;
    }
    sc = score_table_scores(&t);
    if (sc == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory");
        goto done;
    }
    /* the model's tasks: the m nearest in the ranking; it is fitted on the nl nearest of
       them by its own distance (ties to the earlier), the hedge by the leave-one-out on those
       (as kb recommend: its check uses it), checked as kb recommend */
    kb_recommend_weigh_opts wo = KB_RECOMMEND_WEIGH_OPTS_INIT; /* hedge LOO, order all */
    wo.n_tune = STUDY_MODEL_TUNE_TASKS;
    kb_recommend_weighed got;
    rc = kb_recommend_weigh(w, &got, sc, mpair, md, m, nc, STUDY_MODEL_K_EVAL, &wo, err);
    for (size_t a = m; rc == KB_OK && a < n_nb; a++) {
        w[a] = 0.0;
    }
done:
    score_table_release(&t);
    kb_encode_free(enc);
    kb_free(u);
    kb_free(sc);
    return rc;
}

static int make_id(char out[16], const study_create_opts *o, int64_t created)
{
    char text[1024];
    snprintf(text, sizeof text, "%s\n%s\n%s\n%s\n%llu\n%lld", o->task_id, o->space,
             o->method ? o->method : "gp", o->warm_start ? o->warm_start : "auto",
             (unsigned long long)o->seed, (long long)created);
    unsigned char d[32];
    kb_sha256_digest(text, strlen(text), d);
    snprintf(out, 16, "s-%02x%02x%02x%02x%02x%02x", d[0], d[1], d[2], d[3], d[4], d[5]);
    return 0;
}

int study_create(kb_study *out, kb_store *store, const study_create_opts *o, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && store != NULL && o != NULL && o->task_id != NULL &&
                 o->space != NULL);
    memset(out, 0, sizeof *out);
    kb_bo_method m;
    kb_bo_warm wm;
    int scheduler = 0;
    if (study_method_parse(&m, &scheduler, o->method ? o->method : "gp") != 0) {
        return kb_error_set(err, KB_EINVAL, "unknown method '%s' (gp, tpe, random, hyperband, "
                            "bohb, asha, adarandom, reinforce)", o->method);
    }
    if (study_warm_parse(&wm, o->warm_start ? o->warm_start : "auto") != 0) {
        return kb_error_set(err, KB_EINVAL, "unknown warm start '%s' (auto, none, nearest, "
                            "portfolio, stacked, priors, rgpe)", o->warm_start);
    }
    if (scheduler == 1 && wm != KB_BO_WARM_AUTO && wm != KB_BO_WARM_NONE &&
        wm != KB_BO_WARM_NEAREST && wm != KB_BO_WARM_PORTFOLIO) {
        return kb_error_set(err, KB_EINVAL, "warm start '%s' shapes a GP; %s starts from an "
                            "initial design: auto, portfolio, nearest or none", o->warm_start,
                            o->method);
    }
    kb_task task = {0};
    int rc = kb_store_get_task(&task, store, o->task_id, err);
    if (rc != KB_OK) {
        return rc == KB_ENOTFOUND ? kb_error_set(err, KB_ENOTFOUND, "no task '%s' in the "
                                                 "knowledge base", o->task_id)
                                  : rc;
    }
    kb_space space = {0};
    rc = kb_store_get_space(&space, store, o->space, err);
    if (rc != KB_OK) {
        kb_task_release(&task);
        return rc == KB_ENOTFOUND ? kb_error_set(err, KB_ENOTFOUND, "no space '%s' in the "
                                                 "knowledge base (add it with kb ingest)",
                                                 o->space)
                                  : rc;
    }

    create_ctx c = {o, task.type, NULL, 0, 0, NULL, 0, 0, -1, 0};
    double *q = task_feature_vector(&task);
    kb_store_filter f = KB_STORE_FILTER_INIT;
    rc = kb_store_foreach_task(store, &f, on_candidate_task, &c, err);
    f.space = o->space;
    f.status = KB_RUN_STATUS_OK;
    if (rc == KB_OK && !c.nomem) {
        rc = kb_store_foreach_run(store, &f, on_candidate_run, &c, err);
    }
    const char *objective = o->objective;
    if (rc == KB_OK && !c.nomem && objective == NULL) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < c.n_obj; i++) {
            if (best == SIZE_MAX || c.obj[i].n > c.obj[best].n) {
                best = i;
            }
        }
        if (best == SIZE_MAX) {
            rc = kb_error_set(err, KB_EINVAL, "no comparable runs in space '%s' name an "
                              "objective: say which metric to optimise (--objective)", o->space);
        } else {
            objective = c.obj[best].name;
            c.direction = c.obj[best].direction;
            /* count again, now for the chosen objective */
            study_create_opts o2 = *o;
            o2.objective = objective;
            c.o = &o2;
            for (size_t i = 0; i < c.n; i++) {
                c.c[i].n_runs = 0;
            }
            rc = kb_store_foreach_run(store, &f, on_candidate_run, &c, err);
            c.o = o;
        }
    }
    if (rc == KB_OK && c.nomem) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    int direction = o->direction >= 0    ? o->direction
                    : c.direction >= 0 ? c.direction
                    : objective != NULL ? (int)study_guess_direction(objective)
                                        : 0;

    size_t k = o->n_neighbours ? o->n_neighbours : STUDY_DEFAULT_NEIGHBOURS;
    ranked *rk = NULL;
    double *w = NULL, *md = NULL, *mpair = NULL;
    size_t n_ranked = 0;
    int have_dist = 0;
    if (rc == KB_OK) {
        size_t nk = k < c.n ? k : c.n;
        size_t mm = nk < KB_RECOMMEND_MODEL_MAX_TASKS ? nk : KB_RECOMMEND_MODEL_MAX_TASKS;
        rk = kb_malloc_array(c.n ? c.n : 1, sizeof *rk);
        w = kb_malloc_array(nk + 1, sizeof *w);
        md = kb_malloc_array(nk + 1, sizeof *md);
        mpair = kb_malloc_array(mm * mm + 1, sizeof *mpair);
        rc = rk == NULL || w == NULL || md == NULL || mpair == NULL
                 ? kb_error_set(err, KB_ENOMEM, "out of memory")
                 : rank_candidates(rk, &n_ranked, w, md, mpair, &have_dist, k, &c, q, err);
    }
    size_t n_nb = n_ranked < k ? n_ranked : k;
    if (rc == KB_OK && have_dist && n_nb > 0 && wm != KB_BO_WARM_NONE && scheduler != 2) {
        /* the same task weights as kb recommend gives these neighbours */
        rc = model_weights(w, store, &c, rk, n_nb, md, mpair, &space, objective,
                           direction == KB_DIRECTION_MAXIMIZE, err);
    }
    /* the architecture searches sample on their own: no warm start; the schedulers start
       from the neighbours' initial design (study_initial_design), which needs no model */
    const char *warm_name = scheduler == 2 ? "none" : o->warm_start ? o->warm_start : "auto";
    if (wm == KB_BO_WARM_NONE || scheduler == 2) {
        n_nb = 0;
    }
    if (rc == KB_OK) {
        int64_t created = now_us();
        char idbuf[16];
        make_id(idbuf, o, created);
        out->id = kb_strdup(o->id != NULL ? o->id : idbuf);
        out->task_id = kb_strdup(o->task_id);
        out->space = kb_strdup(o->space);
        out->objective = kb_strdup(objective);
        out->direction = (kb_direction)direction;
        out->method = kb_strdup(o->method ? o->method : "gp");
        out->warm_start = kb_strdup(warm_name);
        out->seed = o->seed;
        out->command = dup_or_null(o->command);
        out->team = dup_or_null(o->team);
        out->created_at = created;
        out->extra = dup_or_null(o->extra);
        out->neighbours = kb_calloc(n_nb ? n_nb : 1, sizeof *out->neighbours);
        out->neighbour_weights = kb_malloc_array(n_nb ? n_nb : 1, sizeof *out->neighbour_weights);
        int nomem = out->id == NULL || out->task_id == NULL || out->space == NULL ||
                    out->objective == NULL || out->method == NULL || out->warm_start == NULL ||
                    (o->command && !out->command) || (o->team && !out->team) ||
                    (o->extra && !out->extra) || out->neighbours == NULL ||
                    out->neighbour_weights == NULL;
        for (size_t i = 0; !nomem && i < n_nb; i++) {
            out->neighbours[i] = kb_strdup(c.c[rk[i].cand].id);
            out->neighbour_weights[i] = w[i];
            out->n_neighbours = i + 1;
            nomem = out->neighbours[i] == NULL;
        }
        if (nomem) {
            rc = kb_error_set(err, KB_ENOMEM, "out of memory");
        }
    }
    if (rc == KB_OK) {
        kb_record rec;
        memset(&rec, 0, sizeof rec);
        rec.kind = KB_RECORD_STUDY;
        rec.study = *out;
        kb_put_result res = KB_PUT_ADDED;
        char reason[1][KB_ERROR_MSG_SIZE];
        reason[0][0] = '\0';
        rc = kb_store_put_batch(store, &rec, 1, &res, reason, err);
        if (rc == KB_OK && res != KB_PUT_ADDED) {
            rc = kb_error_set(err, KB_EEXISTS, "study '%s' not stored: %s", out->id,
                              res == KB_PUT_DUPLICATE ? "it exists already" : reason[0]);
        }
    }
    if (rc != KB_OK) {
        kb_study_release(out);
    }
    kb_free(rk);
    kb_free(w);
    kb_free(md);
    kb_free(mpair);
    kb_free(q);
    kb_space_release(&space);
    release_create(&c);
    kb_task_release(&task);
    return rc;
}

/* ---- an open study ---- */

struct study {
    kb_study rec;
    kb_space space;
    kb_encode *enc;
    size_t p;              /* encoded parameters */
    int scheduler;
    kb_bo_opts bo;
    study_trial *trials;   /* by trial number */
    size_t n_trials, cap_trials;
    kb_transfer *transfer; /* NULL until needed (or when there is no neighbour data) */
    int transfer_loaded;
    double *nb_u;          /* neighbour data, owned here (kb_transfer copies what it keeps) */
    double *nb_y;
    double *nb_rows;       /* the neighbours' configurations, row-contiguous (n_nb_rows x P) */
    size_t n_nb_rows;
    size_t *nb_start;      /* rec.n_neighbours + 1: neighbour i's rows of nb_rows / nb_y */
    double *design;        /* AUTO's warm design, kb recommend's list (STUDY_DESIGN_MAX x P) */
    size_t n_design;
    int design_built;
    int pool_built;
    kb_encode_pool pool;   /* the candidates (see build_pool); `used` refreshed per ask */
    double *pool_u;
    unsigned char *pool_used;
};

const kb_study *study_record(const study *s) { return &s->rec; }
const kb_space *study_space(const study *s) { return &s->space; }
const kb_encode *study_encode(const study *s) { return s->enc; }
size_t study_n_trials(const study *s) { return s->n_trials; }
const study_trial *study_trial_at(const study *s, size_t i)
{
    return i < s->n_trials ? &s->trials[i] : NULL;
}
int study_scheduler(const study *s) { return s->scheduler; }

static double minimised(const study *s, double value)
{
    return s->rec.direction == KB_DIRECTION_MAXIMIZE ? -value : value;
}

int study_trial_counts(const study_trial *t)
{
    return (t->status == KB_RUN_STATUS_OK || t->status == KB_RUN_STATUS_PRUNED) &&
           isfinite(t->value);
}

size_t study_best(const study *s)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < s->n_trials; i++) {
        const study_trial *t = &s->trials[i];
        if (study_trial_counts(t) &&
            (best == SIZE_MAX || minimised(s, t->value) < minimised(s, s->trials[best].value))) {
            best = i;
        }
    }
    return best;
}

size_t study_index_of(const study *s, size_t number)
{
    size_t lo = 0, hi = s->n_trials;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->trials[mid].number < number) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < s->n_trials && s->trials[lo].number == number ? lo : SIZE_MAX;
}

const study_trial *study_find_trial(const study *s, const char *ref)
{
    for (size_t i = 0; i < s->n_trials; i++) {
        if (strcmp(s->trials[i].run_id, ref) == 0) {
            return &s->trials[i];
        }
    }
    char *end;
    unsigned long long k = strtoull(ref, &end, 10);
    if (*ref >= '0' && *ref <= '9' && *end == '\0') {
        for (size_t i = 0; i < s->n_trials; i++) {
            if (s->trials[i].number == k) {
                return &s->trials[i];
            }
        }
    }
    return NULL;
}

static void trial_release(study_trial *t)
{
    kb_free(t->run_id);
    kb_params_free(t->config, t->n_config);
    kb_free(t->u);
}

/* the trial number in a run id "<study>:<k>", or -1 */
static long long trial_number(const char *run_id, const char *study_id)
{
    size_t n = strlen(study_id);
    if (strncmp(run_id, study_id, n) != 0 || run_id[n] != ':') {
        return -1;
    }
    char *end;
    const char *digits = run_id + n + 1;
    unsigned long long k = strtoull(digits, &end, 10);
    return *digits >= '0' && *digits <= '9' && *end == '\0' ? (long long)k : -1;
}

static int copy_params(kb_param **out, const kb_param *p, size_t n)
{
    *out = kb_calloc(n ? n : 1, sizeof **out);
    if (*out == NULL) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        (*out)[i].name = kb_strdup(p[i].name);
        if ((*out)[i].name == NULL || kb_value_copy(&(*out)[i].value, &p[i].value) != KB_OK) {
            kb_params_free(*out, n);
            *out = NULL;
            return -1;
        }
    }
    return 0;
}

/* append a trial (config copied); keeps trials sorted by number */
static int add_trial(study *s, size_t number, const char *run_id, const kb_param *config,
                     size_t n_config, kb_run_status status, double value, kb_error *err)
{
    if (grow(&s->trials, &s->cap_trials, s->n_trials, sizeof *s->trials, 32) != 0) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    study_trial t = {number, kb_strdup(run_id), NULL, n_config, status, value,
                     kb_malloc_array(s->p ? s->p : 1, sizeof(double)), 1, 0};
    if (t.run_id == NULL || t.u == NULL || copy_params(&t.config, config, n_config) != 0) {
        t.n_config = 0;
        trial_release(&t);
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    kb_error e2 = KB_ERROR_INIT;
    if (kb_encode_config(t.u, s->enc, config, n_config, &e2) != KB_OK) {
        /* a trial whose configuration no longer fits the space (edited by hand): keep it as
           tried but out of the models */
        t.encoded = 0;
    }
    size_t at = s->n_trials;
    while (at > 0 && s->trials[at - 1].number > number) {
        at--;
    }
    memmove(&s->trials[at + 1], &s->trials[at], (s->n_trials - at) * sizeof *s->trials);
    s->trials[at] = t;
    s->n_trials++;
    return KB_OK;
}

typedef struct load_ctx {
    study *s;
    kb_error *err;
    int rc;
} load_ctx;

static int on_trial_run(const kb_run *r, void *payload)
{
    load_ctx *c = payload;
    study *s = c->s;
    if (r->study_id == NULL || strcmp(r->study_id, s->rec.id) != 0) {
        return 0;
    }
    long long k = trial_number(r->id, s->rec.id);
    if (k < 0) {
        return 0; /* a run that names the study but is not one of its trials */
    }
    double v = metric_value(r->metrics, r->n_metrics, s->rec.objective);
    c->rc = add_trial(s, (size_t)k, r->id, r->config, r->n_config, r->status, v, c->err);
    return c->rc != KB_OK;
}

static void set_bo_opts(study *s)
{
    kb_bo_opts o = KB_BO_OPTS_INIT;
    kb_bo_method m = KB_BO_METHOD_GP;
    study_method_parse(&m, &s->scheduler, s->rec.method);
    o.method = m;
    if (study_warm_parse(&o.warm, s->rec.warm_start) != 0) {
        o.warm = KB_BO_WARM_NONE;
    }
    /* the settings the transfer benchmark measured (docs/BENCHMARKS.md) */
    o.seed = s->rec.seed;
    o.rgpe_samples = 100;
    o.gp.n_restarts = 1;
    o.gp.max_iter = 100;
    s->bo = o;
}

int study_open(study **out, kb_store *store, const char *id, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && store != NULL && id != NULL);
    *out = NULL;
    study *s = kb_calloc(1, sizeof *s);
    if (s == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    int rc = kb_store_get_study(&s->rec, store, id, err);
    if (rc == KB_ENOTFOUND) {
        rc = kb_error_set(err, KB_ENOTFOUND, "no study '%s' in the knowledge base", id);
    }
    if (rc == KB_OK) {
        rc = kb_store_get_space(&s->space, store, s->rec.space, err);
        if (rc == KB_ENOTFOUND) {
            rc = kb_error_set(err, KB_ENOTFOUND, "study '%s': its space '%s' is not stored", id,
                              s->rec.space);
        }
    }
    if (rc == KB_OK) {
        rc = kb_encode_new(&s->enc, &s->space, err);
    }
    if (rc == KB_OK) {
        s->p = kb_encode_n_params(s->enc);
        set_bo_opts(s);
        kb_store_filter f = KB_STORE_FILTER_INIT;
        f.study_id = s->rec.id;
        f.task_id = s->rec.task_id;
        load_ctx lc = {s, err, KB_OK};
        rc = kb_store_foreach_run(store, &f, on_trial_run, &lc, err);
        if (rc == 1) {
            rc = lc.rc;
        }
    }
    if (rc != KB_OK) {
        study_close(s);
        return rc;
    }
    *out = s;
    return KB_OK;
}

void study_close(study *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < s->n_trials; i++) {
        trial_release(&s->trials[i]);
    }
    kb_free(s->trials);
    kb_transfer_free(s->transfer);
    kb_free(s->nb_u);
    kb_free(s->nb_y);
    kb_free(s->nb_rows);
    kb_free(s->nb_start);
    kb_free(s->design);
    kb_free(s->pool_u);
    kb_free(s->pool_used);
    kb_encode_free(s->enc);
    kb_space_release(&s->space);
    kb_study_release(&s->rec);
    kb_free(s);
}

/* ---- neighbours' data for the transfer methods ---- */

typedef struct nb_ctx {
    study *s;
    double *u;      /* rows x P, row-contiguous while collecting */
    double *y;
    size_t n, cap;
    int nomem;
} nb_ctx;

static int on_neighbour_run(const kb_run *r, void *payload)
{
    nb_ctx *c = payload;
    study *s = c->s;
    if (r->objective == NULL || strcmp(r->objective, s->rec.objective) != 0) {
        return 0;
    }
    double v = metric_value(r->metrics, r->n_metrics, s->rec.objective);
    if (!isfinite(v)) {
        return 0;
    }
    /* y grows first; u (P values per row) follows to the same capacity */
    size_t cap = c->cap;
    if (grow(&c->y, &c->cap, c->n, sizeof *c->y, 256) != 0) {
        c->nomem = 1;
        return 1;
    }
    if (c->cap != cap) {
        double *nu = kb_realloc_array(c->u, c->cap * (s->p ? s->p : 1), sizeof *nu);
        if (nu == NULL) {
            c->cap = cap; /* u still holds the old capacity: grow again next time */
            c->nomem = 1;
            return 1;
        }
        c->u = nu;
    }
    kb_error e2 = KB_ERROR_INIT;
    if (kb_encode_config(c->u + c->n * s->p, s->enc, r->config, r->n_config, &e2) != KB_OK) {
        return 0; /* a run from an older version of the space */
    }
    c->y[c->n++] = minimised(s, v);
    return 0;
}

static int load_transfer(study *s, kb_store *store, kb_error *err)
{
    if (s->transfer_loaded) {
        return KB_OK;
    }
    size_t nn = s->rec.n_neighbours, p = s->p;
    size_t *start = kb_malloc_array(nn + 1, sizeof *start);
    nb_ctx c = {s, NULL, NULL, 0, 0, 0};
    int rc = start == NULL ? kb_error_set(err, KB_ENOMEM, "out of memory") : KB_OK;
    for (size_t i = 0; rc == KB_OK && i < nn; i++) {
        start[i] = c.n;
        kb_store_filter f = KB_STORE_FILTER_INIT;
        f.task_id = s->rec.neighbours[i];
        f.space = s->rec.space;
        f.status = KB_RUN_STATUS_OK;
        rc = kb_store_foreach_run(store, &f, on_neighbour_run, &c, err);
        if (rc == KB_OK && c.nomem) {
            rc = kb_error_set(err, KB_ENOMEM, "out of memory");
        }
    }
    if (rc == KB_OK) {
        start[nn] = c.n;
        /* column-major per task, as kb_transfer_task wants */
        s->nb_u = kb_malloc_array(c.n * p + 1, sizeof *s->nb_u);
        rc = s->nb_u == NULL ? kb_error_set(err, KB_ENOMEM, "out of memory") : KB_OK;
    }
    kb_transfer_task *tasks = rc == KB_OK ? kb_malloc_array(nn + 1, sizeof *tasks) : NULL;
    if (rc == KB_OK && tasks == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    size_t nt = 0;
    for (size_t i = 0; rc == KB_OK && i < nn; i++) {
        size_t n = start[i + 1] - start[i];
        if (n == 0) {
            continue;
        }
        double *u = s->nb_u + start[i] * p;
        for (size_t r = 0; r < n; r++) {
            for (size_t j = 0; j < p; j++) {
                u[r + j * n] = c.u[(start[i] + r) * p + j];
            }
        }
        double wgt = s->rec.neighbour_weights[i];
        /* RGPE judges the neighbours by their rankings itself: every one takes part */
        if (s->bo.warm == KB_BO_WARM_AUTO || s->bo.warm == KB_BO_WARM_RGPE) {
            wgt = 1.0;
        }
        tasks[nt++] = (kb_transfer_task){u, n, n, c.y + start[i], wgt};
    }
    if (rc == KB_OK && nt > 0) {
        kb_transfer_opts to = KB_TRANSFER_OPTS_INIT;
        to.gp.n_restarts = 0;
        to.max_points = 200;
        rc = kb_transfer_new(&s->transfer, s->enc, tasks, nt, &to, err);
    }
    kb_free(tasks);
    s->nb_start = start;
    s->nb_rows = c.u; /* the candidate pool starts with them */
    s->n_nb_rows = c.n;
    s->nb_y = c.y; /* the transfer copied them; kept for its lifetime all the same */
    if (rc == KB_OK) {
        s->transfer_loaded = 1;
    }
    return rc;
}

/*
 * The candidates a suggestion chooses from: every distinct configuration the neighbours ran
 * (so the warm start can propose exactly what worked on them), then STUDY_POOL_SOBOL points of
 * a scrambled Sobol design seeded by the study's seed. A finite pool is what the transfer
 * benchmarks measure, lets kb_transfer cache every neighbour's prediction once per study, and
 * keeps the search from proposing (nearly) the same configuration twice: a row as close as
 * kb_encode_same to a tried or pending trial is marked used.
 */
#define STUDY_POOL_SOBOL 2048

static int build_pool(study *s, kb_error *err)
{
    if (s->pool_built) {
        return KB_OK;
    }
    size_t p = s->p, nb = s->n_nb_rows;
    size_t *keep = kb_malloc_array(nb + 1, sizeof *keep);
    if (keep == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    size_t n_keep = 0;
    for (size_t r = 0; r < nb; r++) {
        int dup = 0;
        for (size_t k = 0; k < n_keep && !dup; k++) {
            dup = kb_encode_same(s->nb_rows + keep[k] * p, 1, s->nb_rows + r * p, 1, p);
        }
        if (!dup) {
            keep[n_keep++] = r;
        }
    }
    size_t m = n_keep + STUDY_POOL_SOBOL;
    s->pool_u = kb_malloc_array(m * p + 1, sizeof *s->pool_u);
    s->pool_used = kb_calloc(m + 1, 1);
    int rc = s->pool_u == NULL || s->pool_used == NULL
                 ? kb_error_set(err, KB_ENOMEM, "out of memory")
                 : KB_OK;
    for (size_t k = 0; rc == KB_OK && k < n_keep; k++) {
        for (size_t j = 0; j < p; j++) {
            s->pool_u[k + j * m] = s->nb_rows[keep[k] * p + j];
        }
    }
    if (rc == KB_OK) {
        kb_rng rng;
        kb_rng_seed(&rng, s->rec.seed ^ 0x706f6f6cu); /* "pool": its own stream of the seed */
        rc = kb_encode_sample(s->pool_u + n_keep, m, s->enc, STUDY_POOL_SOBOL,
                              KB_ENCODE_DESIGN_SOBOL, &rng, err);
    }
    kb_free(keep);
    if (rc != KB_OK) {
        return rc;
    }
    s->pool = (kb_encode_pool){s->pool_u, m, m, s->pool_used};
    if (s->transfer != NULL) {
        rc = kb_transfer_cache_pool(s->transfer, &s->pool, err);
    }
    if (rc == KB_OK) {
        s->pool_built = 1;
    }
    return rc;
}

/* Mark the pool rows that are (round-off) equal to a tried or pending trial. Trials never
   leave a study and their configurations never change, so each is marked once. */
static void mark_used(study *s)
{
    size_t p = s->p, m = s->pool.n;
    for (size_t i = 0; i < s->n_trials; i++) {
        study_trial *t = &s->trials[i];
        if (!t->encoded || t->pool_marked) {
            continue;
        }
        for (size_t r = 0; r < m; r++) {
            if (!s->pool_used[r] && kb_encode_same(s->pool_u + r, m, t->u, 1, p)) {
                s->pool_used[r] = 1;
            }
        }
        t->pool_marked = 1;
    }
}

/* ---- asking and telling ---- */

static int put_trial(size_t *index_out, study *s, kb_store *store, const kb_param *config,
                     size_t n_config, const kb_param *fidelity, size_t n_fidelity,
                     const char *extra, kb_error *err)
{
    size_t number = s->n_trials ? s->trials[s->n_trials - 1].number + 1 : 0;
    char run_id[512];
    int len = snprintf(run_id, sizeof run_id, "%s:%zu", s->rec.id, number);
    if (len < 0 || (size_t)len >= sizeof run_id) {
        return kb_error_set(err, KB_EINVAL, "study id '%s' is too long", s->rec.id);
    }
    kb_run r;
    memset(&r, 0, sizeof r);
    r.id = run_id;
    r.task_id = s->rec.task_id;
    r.space = s->rec.space;
    r.config = (kb_param *)config;
    r.n_config = n_config;
    r.fidelity = (kb_param *)fidelity;
    r.n_fidelity = n_fidelity;
    r.status = KB_RUN_STATUS_RUNNING;
    r.objective = s->rec.objective;
    r.direction = s->rec.direction;
    r.cost_s = NAN;
    r.team = s->rec.team;
    r.started_at = now_us();
    r.finished_at = KB_TIME_UNKNOWN;
    r.study_id = s->rec.id;
    r.extra = (char *)extra;
    /* a joint fine-tune space names the backbone as a parameter: record it as the run's
       backbone too, so the store's backbone -> runs index (and kb recommend) sees the trial */
    const kb_param *bb = kb_params_find(config, n_config, "backbone");
    kb_record_kind kind;
    kb_error e2 = KB_ERROR_INIT;
    if (bb != NULL && bb->value.type == KB_VALUE_TYPE_STR &&
        kb_store_find_kind(&kind, store, bb->value.s, &e2) == KB_OK &&
        kind == KB_RECORD_BACKBONE) {
        r.backbone_id = bb->value.s;
    }
    kb_record rec;
    memset(&rec, 0, sizeof rec);
    rec.kind = KB_RECORD_RUN;
    rec.run = r;
    kb_put_result res = KB_PUT_ADDED;
    char reason[1][KB_ERROR_MSG_SIZE];
    reason[0][0] = '\0';
    int rc = kb_store_put_batch(store, &rec, 1, &res, reason, err);
    if (rc == KB_OK && res != KB_PUT_ADDED) {
        return kb_error_set(err, KB_EEXISTS, "trial '%s' not stored: %s", run_id,
                            res == KB_PUT_DUPLICATE ? "it exists already" : reason[0]);
    }
    if (rc == KB_OK) {
        rc = add_trial(s, number, run_id, config, n_config, KB_RUN_STATUS_RUNNING, NAN, err);
    }
    if (rc == KB_OK && index_out != NULL) {
        *index_out = s->n_trials - 1;
    }
    return rc;
}

int study_add_trial(size_t *index_out, study *s, kb_store *store, const kb_param *config,
                    size_t n_config, const kb_param *fidelity, size_t n_fidelity,
                    const char *extra, kb_error *err)
{
    KB_CHECK_ARG(s != NULL && store != NULL && (config != NULL || n_config == 0));
    /* an architecture search adds the searched `arch` (a layer string) beside the space */
    kb_param *checked = kb_malloc_array(n_config + 1, sizeof *checked);
    if (checked == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    size_t n_checked = 0;
    for (size_t j = 0; j < n_config; j++) {
        if (!(s->scheduler == 2 && strcmp(config[j].name, STUDY_ARCH_PARAM) == 0)) {
            checked[n_checked++] = config[j];
        }
    }
    int rc = kb_space_check_config(&s->space, checked, n_checked, err);
    kb_free(checked);
    if (rc != KB_OK) {
        return rc;
    }
    return put_trial(index_out, s, store, config, n_config, fidelity, n_fidelity, extra, err);
}

/*
 * AUTO's warm initial design: the list `kb recommend` ranks from these neighbours
 * (kb_recommend_rank over their results, weighted by the study's neighbour weights, which
 * study_create took from the recommender's similarity model), so that a warm-started
 * search begins where kb recommend points. The list hedges as the greedy portfolio (hedge 1): the first
 * configuration is kb recommend's first whatever its hedge. No design (n_design 0) when
 * no neighbour with runs has weight.
 */
#define STUDY_DESIGN_MAX 32

static int build_design(study *s, kb_error *err)
{
    if (s->design_built || s->nb_start == NULL) {
        return KB_OK;
    }
    size_t nn = s->rec.n_neighbours, p = s->p;
    score_table t = {NULL, NULL, nn, 0, 0, p};
    double *w = kb_malloc_array(nn + 1, sizeof *w), *sc = NULL;
    kb_recommend_item *items = kb_malloc_array(STUDY_DESIGN_MAX, sizeof *items);
    int rc = w == NULL || items == NULL ? KB_ENOMEM : KB_OK;
    double w_sum = 0.0;
    for (size_t i = 0; rc == KB_OK && i < nn; i++) {
        w[i] = s->nb_start[i + 1] > s->nb_start[i] ? s->rec.neighbour_weights[i] : 0.0;
        w[i] = isfinite(w[i]) && w[i] > 0.0 ? w[i] : 0.0;
        w_sum += w[i];
        for (size_t r = s->nb_start[i]; rc == KB_OK && r < s->nb_start[i + 1]; r++) {
            rc = score_table_add(&t, i, s->nb_rows + r * p, s->nb_y[r]);
        }
    }
    if (rc == KB_OK && w_sum > 0.0 && t.n_configs > 0) {
        sc = score_table_scores(&t);
        rc = sc == NULL ? KB_ENOMEM : KB_OK;
        size_t n_items = 0;
        kb_recommend_opts ro = KB_RECOMMEND_OPTS_INIT;
        if (rc == KB_OK) {
            rc = kb_recommend_rank(items, &n_items, sc, NULL, nn, t.n_configs, w,
                                   STUDY_DESIGN_MAX, &ro, err);
        }
        if (rc == KB_OK && n_items > 0) {
            s->design = kb_malloc_array(n_items * p + 1, sizeof *s->design);
            rc = s->design == NULL ? KB_ENOMEM : KB_OK;
            for (size_t i = 0; rc == KB_OK && i < n_items; i++) {
                for (size_t j = 0; j < p; j++) {
                    s->design[i + j * n_items] = t.u[items[i].config * p + j];
                }
            }
            s->n_design = rc == KB_OK ? n_items : 0;
        }
    }
    score_table_release(&t);
    kb_free(w);
    kb_free(sc);
    kb_free(items);
    if (rc == KB_ENOMEM) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    if (rc == KB_OK) {
        s->design_built = 1;
    }
    return rc;
}

static const char *phase_name(kb_bo_phase p)
{
    switch (p) {
    case KB_BO_PHASE_WARM_INIT: return "warm_init";
    case KB_BO_PHASE_COLD_INIT: return "cold_init";
    case KB_BO_PHASE_MODEL: return "model";
    }
    return "model";
}

int study_initial_design(double *u_out, size_t *n_out, study *s, kb_store *store, size_t k,
                         kb_error *err)
{
    KB_CHECK_ARG(n_out != NULL && s != NULL && store != NULL && (u_out != NULL || k == 0));
    *n_out = 0;
    if (s->bo.warm == KB_BO_WARM_NONE || s->rec.n_neighbours == 0 || k == 0) {
        return KB_OK;
    }
    int rc = load_transfer(s, store, err);
    if (rc != KB_OK || s->transfer == NULL) {
        return rc; /* neighbours without runs in the space: nothing to start from */
    }
    rc = build_pool(s, err);
    if (rc != KB_OK) {
        return rc;
    }
    size_t p = s->p, got = 0;
    double *design = kb_malloc_array(k * p + 1, sizeof *design);
    if (design == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    /* as kb_bo_suggest's warm design: the neighbours' candidates, used marks ignored, so the
       design does not depend on what the study has tried (a resumed study gets the same) */
    kb_encode_pool all = s->pool;
    all.used = NULL;
    if (s->bo.warm == KB_BO_WARM_AUTO) {
        rc = build_design(s, err);
    }
    if (rc == KB_OK && s->bo.warm == KB_BO_WARM_AUTO && s->n_design > 0) {
        got = k < s->n_design ? k : s->n_design;
        for (size_t i = 0; i < got; i++) {
            for (size_t j = 0; j < p; j++) {
                design[i + j * k] = s->design[i + j * s->n_design];
            }
        }
    } else if (rc == KB_OK) {
        rc = kb_transfer_initial_design(design, k, &got, s->transfer, k,
                                        s->bo.warm != KB_BO_WARM_NEAREST, &all, err);
    }
    for (size_t i = 0; rc == KB_OK && i < got; i++) {
        for (size_t j = 0; j < p; j++) {
            u_out[i * p + j] = design[i + j * k];
        }
    }
    kb_free(design);
    if (rc == KB_OK) {
        *n_out = got;
    }
    return rc;
}

int study_ask(size_t *index_out, kb_bo_info *info_out, study *s, kb_store *store,
              const kb_param *fidelity, size_t n_fidelity, kb_error *err)
{
    KB_CHECK_ARG(s != NULL && store != NULL);
    if (s->scheduler) {
        return kb_error_set(err, KB_EINVAL, "study '%s' uses %s, which schedules its own "
                            "trials: run it with kb search --resume %s", s->rec.id,
                            s->rec.method, s->rec.id);
    }
    int rc = KB_OK;
    if (s->bo.warm != KB_BO_WARM_NONE && s->rec.n_neighbours > 0) {
        rc = load_transfer(s, store, err);
    }
    /* the pool serves the GP (cached neighbour predictions, no repeats) and the warm initial
       designs; TPE and random search score a few fresh candidates per suggestion, and scoring
       the whole pool against every observation would cost them O(pool x trials) instead */
    int use_pool = s->bo.method == KB_BO_METHOD_GP || s->bo.warm == KB_BO_WARM_NEAREST ||
                   s->bo.warm == KB_BO_WARM_PORTFOLIO;
    if (rc == KB_OK && use_pool) {
        rc = build_pool(s, err);
    }
    if (rc == KB_OK && use_pool) {
        mark_used(s);
    }
    if (rc == KB_OK && s->bo.warm == KB_BO_WARM_AUTO) {
        rc = build_design(s, err);
    }
    size_t p = s->p, n_obs = 0, n_pend = 0;
    for (size_t i = 0; i < s->n_trials; i++) {
        if (!s->trials[i].encoded) {
            continue;
        }
        if (s->trials[i].status == KB_RUN_STATUS_RUNNING) {
            n_pend++;
        } else {
            n_obs++;
        }
    }
    double *uo = kb_malloc_array(n_obs * p + 1, sizeof *uo);
    double *yo = kb_malloc_array(n_obs + 1, sizeof *yo);
    double *up = kb_malloc_array(n_pend * p + 1, sizeof *up);
    double *u = kb_malloc_array(p + 1, sizeof *u);
    if (rc == KB_OK && (uo == NULL || yo == NULL || up == NULL || u == NULL)) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    /* A trial that failed, timed out or diverged is observed at the worst value any trial
       reached (SMAC's rule for crashed runs; the benchmarks' tables count a failed design
       point the same way). Left out of the models, it would leave the region that failed
       looking as promising as before, and the search would propose its neighbours again,
       each costing a whole timeout. Before any trial succeeds there is no worst: NaN. */
    double worst = NAN;
    for (size_t i = 0; i < s->n_trials; i++) {
        const study_trial *t = &s->trials[i];
        if (t->encoded && study_trial_counts(t)) {
            double v = minimised(s, t->value);
            worst = isnan(worst) || v > worst ? v : worst;
        }
    }
    size_t io = 0, ip = 0;
    for (size_t i = 0; rc == KB_OK && i < s->n_trials; i++) {
        const study_trial *t = &s->trials[i];
        if (!t->encoded) {
            continue;
        }
        if (t->status == KB_RUN_STATUS_RUNNING) {
            for (size_t j = 0; j < p; j++) {
                up[ip + j * n_pend] = t->u[j];
            }
            ip++;
        } else {
            for (size_t j = 0; j < p; j++) {
                uo[io + j * n_obs] = t->u[j];
            }
            yo[io++] = study_trial_counts(t) ? minimised(s, t->value) : worst;
        }
    }
    kb_bo_info info;
    memset(&info, 0, sizeof info);
    if (rc == KB_OK) {
        kb_bo_problem pr = {s->enc, uo, n_obs ? n_obs : 1, n_obs, yo, up, n_pend ? n_pend : 1,
                            n_pend, use_pool ? &s->pool : NULL, s->transfer};
        rc = kb_bo_suggest_design(u, &info, &pr, s->design, s->n_design, s->n_design, &s->bo,
                                  err);
        if (rc == KB_ENOTFOUND) {
            /* every candidate tried: go on in the continuous space */
            pr.pool = NULL;
            rc = kb_bo_suggest_design(u, &info, &pr, s->design, s->n_design, s->n_design,
                                      &s->bo, err);
        }
    }
    kb_param *config = NULL;
    size_t n_config = 0;
    if (rc == KB_OK) {
        rc = kb_encode_decode(&config, &n_config, s->enc, u, err);
    }
    if (rc == KB_OK) {
        char extra[256];
        if (isfinite(info.acq_value)) {
            snprintf(extra, sizeof extra, "{\"phase\":\"%s\",\"acquisition\":%.17g}",
                     phase_name(info.phase), info.acq_value);
        } else {
            snprintf(extra, sizeof extra, "{\"phase\":\"%s\"}", phase_name(info.phase));
        }
        rc = put_trial(index_out, s, store, config, n_config, fidelity, n_fidelity, extra, err);
    }
    if (rc == KB_OK && info_out != NULL) {
        *info_out = info;
    }
    kb_params_free(config, n_config);
    kb_free(uo);
    kb_free(yo);
    kb_free(up);
    kb_free(u);
    return rc;
}

int study_tell(study *s, kb_store *store, size_t index, const study_result *res, kb_error *err)
{
    KB_CHECK_ARG(s != NULL && store != NULL && res != NULL);
    if (index >= s->n_trials) {
        return kb_error_set(err, KB_ENOTFOUND, "study '%s' has no trial %zu", s->rec.id, index);
    }
    study_trial *t = &s->trials[index];
    kb_run r;
    int rc = kb_store_get_run(&r, store, t->run_id, err);
    if (rc != KB_OK) {
        return rc;
    }
    if (r.status != KB_RUN_STATUS_RUNNING) {
        kb_run_release(&r);
        return kb_error_set(err, KB_EEXISTS, "trial %zu of study '%s' was already told (%s)",
                            t->number, s->rec.id, kb_run_status_name(t->status));
    }
    kb_run_status status = res->status;
    double v = metric_value(res->metrics, res->n_metrics, s->rec.objective);
    if (status == KB_RUN_STATUS_OK && !isfinite(v)) {
        /* a reported NaN/inf means the training blew up; an absent objective, a failure */
        int reported = 0;
        for (size_t i = 0; i < res->n_metrics; i++) {
            reported |= strcmp(res->metrics[i].name, s->rec.objective) == 0;
        }
        status = reported ? KB_RUN_STATUS_DIVERGED : KB_RUN_STATUS_FAILED;
    }
    /* the stored run takes borrowed views of the result; ownership stays with the caller */
    kb_metric *old_m = r.metrics;
    size_t old_nm = r.n_metrics;
    kb_series *old_c = r.curve;
    size_t old_nc = r.n_curve;
    char *old_extra = r.extra;
    r.metrics = (kb_metric *)res->metrics;
    r.n_metrics = res->n_metrics;
    r.curve = (kb_series *)res->curve;
    r.n_curve = res->n_curve;
    r.status = status;
    r.cost_s = res->cost_s;
    r.finished_at = now_us();
    r.extra = (char *)res->extra;
    /* the store wants final metrics sorted by name: sort a copy of the pointers' order */
    kb_metric *sorted = NULL;
    if (res->n_metrics > 1) {
        sorted = kb_malloc_array(res->n_metrics, sizeof *sorted);
        if (sorted == NULL) {
            rc = kb_error_set(err, KB_ENOMEM, "out of memory");
        } else {
            memcpy(sorted, res->metrics, res->n_metrics * sizeof *sorted);
            for (size_t i = 1; i < res->n_metrics; i++) {
                kb_metric m = sorted[i];
                size_t j = i;
                while (j > 0 && strcmp(sorted[j - 1].name, m.name) > 0) {
                    sorted[j] = sorted[j - 1];
                    j--;
                }
                sorted[j] = m;
            }
            r.metrics = sorted;
        }
    }
    if (rc == KB_OK) {
        rc = kb_store_update_run(store, &r, err);
    }
    kb_free(sorted);
    r.metrics = old_m;
    r.n_metrics = old_nm;
    r.curve = old_c;
    r.n_curve = old_nc;
    r.extra = old_extra;
    kb_run_release(&r);
    if (rc == KB_OK) {
        t->status = status;
        t->value = v;
    }
    return rc;
}
