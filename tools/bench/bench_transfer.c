/*
 * Leave-one-task-out transfer benchmark on a cross-evaluated table (BENCHMARK-PROTOCOL.md):
 * for every target task and seed, each method picks configurations of the target's table
 * one at a time (without repetition) for --trials trials through kb_bo_suggest, the other
 * tasks being the knowledge base. Prints one CSV line per (method, task, seed, trial):
 * table,method,task,seed,trial,regret (normalised regret of the best found so far).
 *
 * Usage: bench_transfer --data DIR --table svm|adaboost|history [--seeds N] [--trials T]
 *                       [--methods m1,m2,...] [--first-task I] [--tasks N]
 * DIR holds svm_matrix.csv / adaboost_matrix.csv and metafeatures.csv (the Wistuba data), or
 * history_matrix.csv and metafeatures.csv (tools/bench/transfer_history.py: the bundled
 * history's svm or mlp design in the bundled space, told apart by the file's header).
 * Methods: random gp tpe portfolio nearest5 stacked priors rgpe auto (kb's default) auto_r3
 * (round 3's default: auto without prior_spread); variants of auto: auto0 auto1 auto2 auto3
 * auto5 auto10 (that many portfolio points first), autos05 autos1 autos2 (prior_spread),
 * autoc3 autoc4 autoc5 (cold_every), autos1c4 (both); autor (what `kb search --warm-start
 * auto` does: the first trial is kb recommend's first configuration, task weights from the
 * similarity model on the meta-features; then auto's model) and autor3 (its first three);
 * autor20: autor with kb search's default neighbourhood, the 20 nearest tasks only.
 * --print-init prints task,seed,row of the 3 shared cold initial configurations instead.
 */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/bo.h"
#include "engine/core/alloc.h"
#include "engine/recommend.h"
#include "engine/similarity.h"

#define MAX_TASKS 128
#define MAX_CONFIGS 512
#define MAX_META 64
#define MAX_PARAMS 10

/* The tables: Wistuba's SVM and AdaBoost grids, and the bundled history's svm or mlp design
   (TABLE_HISTORY_MLP is chosen by the history file's header). */
enum { TABLE_ADABOOST = 0, TABLE_SVM = 1, TABLE_HISTORY = 2, TABLE_HISTORY_MLP = 3 };

typedef struct table {
    size_t n_tasks, n_configs, n_meta;
    char names[MAX_TASKS][64];
    double acc[MAX_TASKS][MAX_CONFIGS];
    double meta[MAX_TASKS][MAX_META];
    double *u; /* n_configs x P */
} table;

static char *svm_kernels[3] = {"rbf", "poly", "linear"};
static char *only_rbf[1] = {"rbf"};
static char *only_poly[1] = {"poly"};
/* the bundled svm space (datasets/spaces.jsonl) */
static char *hist_kernels[4] = {"rbf", "linear", "poly", "sigmoid"};
static char *hist_gamma_in[3] = {"rbf", "poly", "sigmoid"};
static char *hist_coef0_in[2] = {"poly", "sigmoid"};
/* the bundled mlp space (datasets/spaces.jsonl) */
static char *mlp_optimizers[7] = {"sgd", "momentum", "nesterov", "adagrad", "adadelta",
                                  "rmsprop", "adam"};
static char *mlp_momentum_in[2] = {"momentum", "nesterov"};
static char *mlp_policies[6] = {"fixed", "step", "exp", "inv", "poly", "cosine"};
static char *mlp_activations[3] = {"relu", "tanh", "sigmoid"};

static void make_space(kb_space *s, kb_space_param *p, int kind)
{
    memset(p, 0, MAX_PARAMS * sizeof *p);
    if (kind == TABLE_HISTORY_MLP) {
        p[0] = (kb_space_param){.name = "optimizer", .type = KB_SPACE_PARAM_CATEGORICAL,
                                .choices = mlp_optimizers, .n_choices = 7};
        p[1] = (kb_space_param){.name = "base_lr", .type = KB_SPACE_PARAM_FLOAT, .low = 1e-5,
                                .high = 1.0, .log = 1};
        p[2] = (kb_space_param){.name = "momentum", .type = KB_SPACE_PARAM_FLOAT, .low = 0,
                                .high = 0.99, .cond_parent = "optimizer",
                                .cond_in = mlp_momentum_in, .n_cond_in = 2};
        p[3] = (kb_space_param){.name = "weight_decay", .type = KB_SPACE_PARAM_FLOAT,
                                .low = 1e-7, .high = 0.1, .log = 1};
        p[4] = (kb_space_param){.name = "batch_size", .type = KB_SPACE_PARAM_INT, .low = 16,
                                .high = 256, .log = 1};
        p[5] = (kb_space_param){.name = "lr_policy", .type = KB_SPACE_PARAM_CATEGORICAL,
                                .choices = mlp_policies, .n_choices = 6};
        p[6] = (kb_space_param){.name = "layers", .type = KB_SPACE_PARAM_INT, .low = 1,
                                .high = 3};
        p[7] = (kb_space_param){.name = "units", .type = KB_SPACE_PARAM_INT, .low = 16,
                                .high = 512, .log = 1};
        p[8] = (kb_space_param){.name = "activation", .type = KB_SPACE_PARAM_CATEGORICAL,
                                .choices = mlp_activations, .n_choices = 3};
        p[9] = (kb_space_param){.name = "dropout", .type = KB_SPACE_PARAM_FLOAT, .low = 0,
                                .high = 0.5};
        *s = (kb_space){.name = "mlp", .params = p, .n_params = 10};
    } else if (kind == TABLE_HISTORY) {
        p[0] = (kb_space_param){.name = "kernel", .type = KB_SPACE_PARAM_CATEGORICAL,
                                .choices = hist_kernels, .n_choices = 4};
        p[1] = (kb_space_param){.name = "C", .type = KB_SPACE_PARAM_FLOAT, .low = 0.03125,
                                .high = 32768, .log = 1};
        p[2] = (kb_space_param){.name = "gamma", .type = KB_SPACE_PARAM_FLOAT,
                                .low = 3.0517578125e-05, .high = 8, .log = 1,
                                .cond_parent = "kernel", .cond_in = hist_gamma_in,
                                .n_cond_in = 3};
        p[3] = (kb_space_param){.name = "degree", .type = KB_SPACE_PARAM_INT, .low = 2,
                                .high = 5, .cond_parent = "kernel", .cond_in = only_poly,
                                .n_cond_in = 1};
        p[4] = (kb_space_param){.name = "coef0", .type = KB_SPACE_PARAM_FLOAT, .low = 0,
                                .high = 1, .cond_parent = "kernel", .cond_in = hist_coef0_in,
                                .n_cond_in = 2};
        *s = (kb_space){.name = "svm", .params = p, .n_params = 5};
    } else if (kind == TABLE_SVM) {
        p[0] = (kb_space_param){.name = "kernel", .type = KB_SPACE_PARAM_CATEGORICAL,
                                .choices = svm_kernels, .n_choices = 3};
        p[1] = (kb_space_param){.name = "C", .type = KB_SPACE_PARAM_FLOAT, .low = 0.03125,
                                .high = 64, .log = 1};
        p[2] = (kb_space_param){.name = "gamma", .type = KB_SPACE_PARAM_FLOAT, .low = 1e-4,
                                .high = 1000, .log = 1, .cond_parent = "kernel",
                                .cond_in = only_rbf, .n_cond_in = 1};
        p[3] = (kb_space_param){.name = "degree", .type = KB_SPACE_PARAM_INT, .low = 2,
                                .high = 10, .cond_parent = "kernel", .cond_in = only_poly,
                                .n_cond_in = 1};
        *s = (kb_space){.name = "svm", .params = p, .n_params = 4};
    } else {
        p[0] = (kb_space_param){.name = "iterations", .type = KB_SPACE_PARAM_INT, .low = 2,
                                .high = 10000, .log = 1};
        p[1] = (kb_space_param){.name = "product_terms", .type = KB_SPACE_PARAM_INT, .low = 2,
                                .high = 30, .log = 1};
        *s = (kb_space){.name = "adaboost", .params = p, .n_params = 2};
    }
}

static size_t task_index(table *t, const char *name)
{
    for (size_t i = 0; i < t->n_tasks; i++) {
        if (strcmp(t->names[i], name) == 0) {
            return i;
        }
    }
    if (t->n_tasks == MAX_TASKS) {
        return SIZE_MAX;
    }
    snprintf(t->names[t->n_tasks], 64, "%.63s", name); /* dataset names are short */
    return t->n_tasks++;
}

/* Split a CSV line in place (no quoting in these files). */
static size_t split(char *line, char **f, size_t max)
{
    size_t n = 0;
    line[strcspn(line, "\r\n")] = '\0';
    for (char *s = line; n < max;) {
        f[n++] = s;
        char *c = strchr(s, ',');
        if (c == NULL) {
            break;
        }
        *c = '\0';
        s = c + 1;
    }
    return n;
}

/* One table row's configuration as kb_params: columns 2.. named by the header (history) or
   fixed (Wistuba); an empty field is an inactive parameter. */
static size_t row_config(kb_param *cfg, char **fl, char **head, size_t n_cols, int kind,
                         const kb_space *s)
{
    static const char *const wistuba[2][4] = {{"iterations", "product_terms", NULL, NULL},
                                              {"kernel", "C", "gamma", "degree"}};
    size_t n = 0;
    for (size_t c = 2; c < n_cols; c++) {
        const char *name = kind >= TABLE_HISTORY ? head[c] : wistuba[kind][c - 2];
        if (name == NULL || fl[c][0] == '\0') {
            continue;
        }
        for (size_t j = 0; j < s->n_params; j++) {
            const kb_space_param *sp = &s->params[j];
            if (strcmp(sp->name, name) != 0) {
                continue;
            }
            cfg[n].name = sp->name;
            if (sp->type == KB_SPACE_PARAM_CATEGORICAL) {
                cfg[n].value = (kb_value){.type = KB_VALUE_TYPE_STR, .s = fl[c]};
            } else if (sp->type == KB_SPACE_PARAM_INT) {
                cfg[n].value = (kb_value){.type = KB_VALUE_TYPE_INT, .i = atol(fl[c])};
            } else {
                cfg[n].value = (kb_value){.type = KB_VALUE_TYPE_FLOAT, .f = atof(fl[c])};
            }
            n++;
        }
    }
    return n;
}

/* The history table's space, from its header: svm (column 2 "kernel") or mlp. */
static int history_kind(const char *dir)
{
    char path[4096], line[4096];
    snprintf(path, sizeof path, "%s/history_matrix.csv", dir);
    FILE *f = fopen(path, "r");
    int kind = TABLE_HISTORY;
    if (f != NULL && fgets(line, sizeof line, f) != NULL &&
        strncmp(line, "dataset,config,optimizer,", 25) == 0) {
        kind = TABLE_HISTORY_MLP;
    }
    if (f != NULL) {
        fclose(f);
    }
    return kind;
}

static int load(table *t, const char *dir, int kind, const kb_encode *e, const kb_space *s)
{
    char path[4096], line[4096], header[4096];
    static const char *const files[4] = {"adaboost_matrix.csv", "svm_matrix.csv",
                                         "history_matrix.csv", "history_matrix.csv"};
    snprintf(path, sizeof path, "%s/%s", dir, files[kind]);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "bench_transfer: cannot open %s\n", path);
        return -1;
    }
    size_t p = kb_encode_n_params(e);
    t->u = calloc(MAX_CONFIGS * p, sizeof(double));
    char *head[MAX_PARAMS + 3];
    if (t->u == NULL || fgets(header, sizeof header, f) == NULL) {
        fclose(f);
        return -1;
    }
    /* the accuracy is the last column */
    size_t n_cols = split(header, head, MAX_PARAMS + 3), acc_col = n_cols - 1;
    while (fgets(line, sizeof line, f) != NULL) {
        char *fl[MAX_PARAMS + 3];
        if (split(line, fl, MAX_PARAMS + 3) != n_cols || n_cols < 4) {
            continue;
        }
        size_t ti = task_index(t, fl[0]);
        size_t c = (size_t)atol(fl[1]);
        if (ti == SIZE_MAX || c >= MAX_CONFIGS) {
            continue;
        }
        t->acc[ti][c] = atof(fl[acc_col]);
        if (c + 1 > t->n_configs) {
            t->n_configs = c + 1;
        }
        if (ti != 0) {
            continue;
        }
        kb_param cfg[MAX_PARAMS];
        size_t n = row_config(cfg, fl, head, acc_col, kind, s);
        double u[MAX_PARAMS];
        kb_error err = KB_ERROR_INIT;
        if (kb_encode_config(u, e, cfg, n, &err) != KB_OK) {
            fprintf(stderr, "bench_transfer: config %zu: %s\n", c, err.msg);
            fclose(f);
            return -1;
        }
        for (size_t j = 0; j < p; j++) {
            t->u[c + j * MAX_CONFIGS] = u[j];
        }
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/metafeatures.csv", dir);
    f = fopen(path, "r");
    char *fl[MAX_META + 1];
    if (f == NULL || fgets(line, sizeof line, f) == NULL) {
        fprintf(stderr, "bench_transfer: cannot read %s\n", path);
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    t->n_meta = split(line, fl, MAX_META + 1) - 1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (split(line, fl, MAX_META + 1) != t->n_meta + 1) {
            continue;
        }
        for (size_t i = 0; i < t->n_tasks; i++) {
            if (strcmp(t->names[i], fl[0]) == 0) {
                for (size_t k = 0; k < t->n_meta; k++) {
                    t->meta[i][k] = atof(fl[k + 1]);
                }
            }
        }
    }
    fclose(f);
    return 0;
}

/* L1 distances from target to every task, meta-features min-max scaled on the other tasks. */
static void distances(double *dist, const table *t, size_t target)
{
    double lo[MAX_META], hi[MAX_META];
    for (size_t k = 0; k < t->n_meta; k++) {
        lo[k] = INFINITY;
        hi[k] = -INFINITY;
        for (size_t i = 0; i < t->n_tasks; i++) {
            if (i != target) {
                lo[k] = fmin(lo[k], t->meta[i][k]);
                hi[k] = fmax(hi[k], t->meta[i][k]);
            }
        }
    }
    for (size_t i = 0; i < t->n_tasks; i++) {
        double s = 0.0;
        for (size_t k = 0; k < t->n_meta; k++) {
            double span = hi[k] > lo[k] ? hi[k] - lo[k] : 1.0;
            s += fabs((t->meta[i][k] - t->meta[target][k]) / span);
        }
        dist[i] = i == target ? INFINITY : s;
    }
}

/* weights: the k nearest get 1 / (1 + rank) (k = 0: every other task gets 1) */
static void nearest_weights(double *w, const double *dist, size_t n, size_t target, size_t k)
{
    for (size_t i = 0; i < n; i++) {
        w[i] = i == target ? 0.0 : (k == 0 ? 1.0 : 0.0);
    }
    for (size_t r = 0; r < k; r++) {
        size_t bi = SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
            if (i != target && w[i] == 0.0 && (bi == SIZE_MAX || dist[i] < dist[bi])) {
                bi = i;
            }
        }
        if (bi != SIZE_MAX) {
            w[bi] = 1.0 / (1.0 + (double)r);
        }
    }
}

/*
 * kb recommend's list for `target` from the other tasks, as kb search's warm start takes it
 * (tools/study.c): task weights from the similarity model (kb_recommend_model_fit on the 16
 * nearest by its imputed meta-feature distance, scaled robustly on the other tasks;
 * kb_recommend_model_weights for all; uniform unless kb_recommend_model_check on the 64
 * nearest finds signal, and the first pick uniform weights' unless it finds signal there
 * too), then kb_recommend_rank over the normalised table with hedge 1. Writes up to k
 * configuration rows into rows_out; returns how many. k_near > 0: as kb search, only the
 * k_near nearest tasks (L1 on the meta-features scaled robustly on all other tasks) are the
 * knowledge base; mask_out (n_tasks) gets 1 for them, 0 for the rest.
 */
static size_t recommender_list(size_t *rows_out, size_t k, const table *t, size_t target,
                               size_t k_near, double *mask_out)
{
    size_t n_all = t->n_tasks - 1, nc = t->n_configs, d = t->n_meta, got = 0;
    size_t nt = k_near > 0 && k_near < n_all ? k_near : n_all;
    double *z = kb_malloc_array(nt * d + 1, sizeof *z), *q = kb_malloc_array(d + 1, sizeof *q);
    double *md = kb_malloc_array(nt + 1, sizeof *md), *mp = kb_malloc_array(nt * nt + 1, sizeof *mp);
    double *sc = kb_malloc_array(nt * nc + 1, sizeof *sc), *w = kb_malloc_array(nt + 1, sizeof *w);
    size_t *other = kb_malloc_array(nt + 1, sizeof *other);
    kb_recommend_item *items = kb_malloc_array(k + 1, sizeof *items);
    kb_similarity_scaler sca = {0};
    kb_error err = KB_ERROR_INIT;
    if (z == NULL || q == NULL || md == NULL || mp == NULL || sc == NULL || w == NULL ||
        other == NULL || items == NULL) {
        goto done;
    }
    if (nt < n_all) {
        /* the k_near nearest by the robustly scaled L1 distance (no missing meta-features in
           these tables, so kb_similarity_distance's and the imputed distance agree) */
        double *za = kb_malloc_array(n_all * d + 1, sizeof *za);
        size_t *all = kb_malloc_array(n_all + 1, sizeof *all);
        double *da = kb_malloc_array(n_all + 1, sizeof *da);
        if (za == NULL || all == NULL || da == NULL) {
            kb_free(za);
            kb_free(all);
            kb_free(da);
            goto done;
        }
        for (size_t i = 0, r = 0; i < t->n_tasks; i++) {
            if (i != target) {
                memcpy(za + r * d, t->meta[i], d * sizeof *za);
                all[r++] = i;
            }
        }
        memcpy(q, t->meta[target], d * sizeof *q);
        if (kb_similarity_scaler_fit(&sca, za, n_all, d, &err) == KB_OK) {
            kb_similarity_scaler_apply(&sca, za, n_all);
            kb_similarity_scaler_apply(&sca, q, 1);
        }
        for (size_t a = 0; a < n_all; a++) {
            da[a] = kb_similarity_distance_imputed(za + a * d, q, d);
            size_t i = a;
            while (i > 0 && da[all[i - 1]] > da[a]) {
                all[i] = all[i - 1];
                i--;
            }
            all[i] = a;
        }
        /* all[] now holds positions; map them back to task indices */
        for (size_t r = 0; r < nt; r++) {
            size_t pos = all[r];
            other[r] = pos < target ? pos : pos + 1;
        }
        kb_free(za);
        kb_free(all);
        kb_free(da);
    } else {
        for (size_t i = 0, r = 0; i < t->n_tasks; i++) {
            if (i != target) {
                other[r++] = i;
            }
        }
    }
    if (mask_out != NULL) {
        for (size_t i = 0; i < t->n_tasks; i++) {
            mask_out[i] = 0.0;
        }
        for (size_t r = 0; r < nt; r++) {
            mask_out[other[r]] = 1.0;
        }
    }
    for (size_t r = 0; r < nt; r++) {
        double lo = INFINITY, hi = -INFINITY;
        for (size_t j = 0; j < nc; j++) {
            lo = fmin(lo, t->acc[other[r]][j]);
            hi = fmax(hi, t->acc[other[r]][j]);
        }
        for (size_t j = 0; j < nc; j++) {
            sc[r + j * nt] = hi > lo ? (t->acc[other[r]][j] - lo) / (hi - lo) : 1.0;
        }
        memcpy(z + r * d, t->meta[other[r]], d * sizeof *z);
    }
    memcpy(q, t->meta[target], d * sizeof *q);
    if (sca.center == NULL && kb_similarity_scaler_fit(&sca, z, nt, d, &err) != KB_OK) {
        goto done;
    }
    kb_similarity_scaler_apply(&sca, z, nt);
    kb_similarity_scaler_apply(&sca, q, 1);
    for (size_t a = 0; a < nt; a++) {
        md[a] = kb_similarity_distance_imputed(z + a * d, q, d);
        for (size_t b = 0; b < nt; b++) {
            mp[a + b * nt] = kb_similarity_distance_imputed(z + a * d, z + b * d, d);
        }
    }
    /* as kb search's warm start (tools/study.c): fitted on the 16 nearest, hedge by their
       leave-one-out, R4's whole-knowledge-base check on the nearest: no signal, uniform */
    kb_recommend_weigh_opts wo = KB_RECOMMEND_WEIGH_OPTS_INIT; /* 16 nearest, check on 64 */
    kb_recommend_weighed wd;
    if (kb_recommend_weigh(w, &wd, sc, mp, md, nt, nc, 10, &wo, &err) != KB_OK) {
        goto done;
    }
    kb_recommend_opts ro = KB_RECOMMEND_OPTS_INIT;
    ro.first = wd.first; /* kb recommend's first pick is then uniform weights' */
    if (kb_recommend_rank(items, &got, sc, NULL, nt, nc, w, k, &ro, &err) != KB_OK) {
        got = 0;
        goto done;
    }
    for (size_t i = 0; i < got; i++) {
        rows_out[i] = items[i].config;
    }
done:
    kb_similarity_scaler_release(&sca);
    kb_free(z);
    kb_free(q);
    kb_free(md);
    kb_free(mp);
    kb_free(sc);
    kb_free(w);
    kb_free(other);
    kb_free(items);
    return got;
}

typedef struct method {
    const char *name;
    kb_bo_method method;
    kb_bo_warm warm;
    size_t n_warm_init;
    size_t k_nearest; /* weights: 0 = all other tasks */
    size_t auto_design; /* KB_BO_WARM_AUTO: portfolio points before the model (SIZE_MAX:
                           KB_BO_OPTS_INIT's) */
    double prior_spread;   /* < 0: KB_BO_OPTS_INIT's */
    size_t cold_every;     /* SIZE_MAX: KB_BO_OPTS_INIT's */
    int rec_design;        /* 1: the warm design is kb recommend's list (recommender_list) */
} method;

static const method methods[] = {
    {"random", KB_BO_METHOD_RANDOM, KB_BO_WARM_NONE, 0, 0, 0, -1, SIZE_MAX, 0},
    {"gp", KB_BO_METHOD_GP, KB_BO_WARM_NONE, 0, 0, 0, -1, SIZE_MAX, 0},
    {"tpe", KB_BO_METHOD_TPE, KB_BO_WARM_NONE, 0, 0, 0, -1, SIZE_MAX, 0},
    {"portfolio", KB_BO_METHOD_RANDOM, KB_BO_WARM_PORTFOLIO, 50, 0, 0, -1, SIZE_MAX, 0},
    {"nearest5", KB_BO_METHOD_GP, KB_BO_WARM_NEAREST, 5, 5, 0, -1, SIZE_MAX, 0},
    {"stacked", KB_BO_METHOD_GP, KB_BO_WARM_STACKED, 0, 5, 0, -1, SIZE_MAX, 0},
    {"priors", KB_BO_METHOD_GP, KB_BO_WARM_PRIORS, 0, 10, 0, -1, SIZE_MAX, 0},
    {"rgpe", KB_BO_METHOD_GP, KB_BO_WARM_RGPE, 0, 0, 0, -1, SIZE_MAX, 0},
    /* the library's default */
    {"auto", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 0, SIZE_MAX, -1, SIZE_MAX, 0},
    /* round 3's default: auto without the neighbours' spread (prior_spread 0) */
    {"auto_r3", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 0, SIZE_MAX, 0.0, SIZE_MAX, 0},
    /* variants of auto for choosing its default (auto_design) */
    {"auto0", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 0, 0, -1, SIZE_MAX, 0},
    {"auto3", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 0, 3, -1, SIZE_MAX, 0},
    {"auto1", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 0, 1, -1, SIZE_MAX, 0},
    {"auto2", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 0, 2, -1, SIZE_MAX, 0},
    {"auto5", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 0, 5, -1, SIZE_MAX, 0},
    {"auto10", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 0, 10, -1, SIZE_MAX, 0},
    /* variants: the neighbours' spread in the variance (prior_spread), and every k-th
       trial from the target's own GP (cold_every) */
    {"autos1", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 0, SIZE_MAX, 1.0, SIZE_MAX, 0},
    {"autos05", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 0, SIZE_MAX, 0.5, SIZE_MAX, 0},
    {"autoc3", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 0, SIZE_MAX, -1, 3, 0},
    {"autoc4", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 0, SIZE_MAX, -1, 4, 0},
    {"autoc5", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 0, SIZE_MAX, -1, 5, 0},
    {"autos2", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 0, SIZE_MAX, 2.0, SIZE_MAX, 0},
    {"autos1c4", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 0, SIZE_MAX, 1.0, 4, 0},
    /* kb search's auto: kb recommend's first configuration (similarity-model weights), then
       the model with every task (as auto) */
    {"autor", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 0, SIZE_MAX, -1, SIZE_MAX, 1},
    {"autor3", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 0, 3, -1, SIZE_MAX, 1},
    /* as kb search with its default 20 neighbours: autor on the 20 nearest tasks only */
    {"autor20", KB_BO_METHOD_GP, KB_BO_WARM_AUTO, 0, 20, SIZE_MAX, -1, SIZE_MAX, 1},
};

int main(int argc, char **argv)
{
    const char *dir = NULL, *tname = "svm", *mlist = "random,gp,tpe,portfolio,nearest5,stacked,priors,rgpe,auto";
    size_t n_seeds = 5, n_trials = 50, max_tasks = MAX_TASKS;
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'}, {"table", required_argument, NULL, 't'},
        {"seeds", required_argument, NULL, 's'}, {"trials", required_argument, NULL, 'n'},
        {"methods", required_argument, NULL, 'm'}, {"tasks", required_argument, NULL, 'k'},
        {"print-init", no_argument, NULL, 'i'}, {"first-task", required_argument, NULL, 'f'},
        {NULL, 0, NULL, 0}};
    size_t first_task = 0;
    int print_init = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 't': tname = optarg; break;
        case 's': n_seeds = (size_t)atol(optarg); break;
        case 'n': n_trials = (size_t)atol(optarg); break;
        case 'm': mlist = optarg; break;
        case 'k': max_tasks = (size_t)atol(optarg); break;
        case 'i': print_init = 1; break;
        case 'f': first_task = (size_t)atol(optarg); break;
        default: return 2;
        }
    }
    if (dir == NULL) {
        fprintf(stderr, "usage: bench_transfer --data DIR [--table svm|adaboost] [--seeds N] "
                        "[--trials T] [--methods a,b] [--tasks N]\n");
        return 2;
    }
    int kind = strcmp(tname, "svm") == 0       ? TABLE_SVM
               : strcmp(tname, "history") == 0 ? history_kind(dir)
                                               : TABLE_ADABOOST;
    kb_space space;
    kb_space_param sp[MAX_PARAMS];
    make_space(&space, sp, kind);
    kb_encode *e = NULL;
    kb_error err = KB_ERROR_INIT;
    if (kb_encode_new(&e, &space, &err) != KB_OK) {
        fprintf(stderr, "bench_transfer: %s\n", err.msg);
        return 1;
    }
    static table t;
    if (load(&t, dir, kind, e, &space) != 0) {
        return 1;
    }
    size_t p = kb_encode_n_params(e), nc = t.n_configs, nt = t.n_tasks;
    /* one GP per task, on its whole row of the table (y = -accuracy, minimised) */
    kb_transfer_task tasks[MAX_TASKS];
    static double ys[MAX_TASKS][MAX_CONFIGS];
    for (size_t i = 0; i < nt; i++) {
        for (size_t r = 0; r < nc; r++) {
            ys[i][r] = -t.acc[i][r];
        }
        tasks[i] = (kb_transfer_task){t.u, MAX_CONFIGS, nc, ys[i], 1.0};
    }
    kb_transfer_opts to = KB_TRANSFER_OPTS_INIT;
    to.gp.n_restarts = 0;
    kb_transfer *tr = NULL;
    kb_encode_pool pool = {t.u, MAX_CONFIGS, nc, NULL};
    if (kb_transfer_new(&tr, e, tasks, nt, &to, &err) != KB_OK ||
        kb_transfer_cache_pool(tr, &pool, &err) != KB_OK) {
        fprintf(stderr, "bench_transfer: %s\n", err.msg);
        return 1;
    }
    double *uo = kb_malloc_array(n_trials * p + 1, sizeof(double));
    double yo[512], w[MAX_TASKS], dist[MAX_TASKS], u[MAX_PARAMS];
    unsigned char used[MAX_CONFIGS];
    char mbuf[1024];
    snprintf(mbuf, sizeof mbuf, "%s", mlist);
    const method *ms[64];
    size_t n_ms = 0;
    if (print_init) {
        /* the shared cold initial design of every (task, seed), for the Optuna peer */
        snprintf(mbuf, sizeof mbuf, "random");
        n_trials = 3;
    }
    for (char *m = strtok(mbuf, ","); m != NULL && n_ms < 64; m = strtok(NULL, ",")) {
        const method *me = NULL;
        for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
            if (strcmp(methods[k].name, m) == 0) {
                me = &methods[k];
            }
        }
        if (me == NULL) {
            fprintf(stderr, "bench_transfer: unknown method '%s'\n", m);
            return 2;
        }
        ms[n_ms++] = me;
    }
    /* tasks outermost, so that a partial run covers every method on the tasks it reached */
    for (size_t target = first_task; target < nt && target < first_task + max_tasks; target++) {
        for (size_t mi = 0; mi < n_ms; mi++) {
            const method *me = ms[mi];
            const char *m = me->name;
            distances(dist, &t, target);
            nearest_weights(w, dist, nt, target, me->k_nearest);
            kb_transfer_set_weights(tr, w);
            double best = -INFINITY, worst = INFINITY;
            for (size_t r = 0; r < nc; r++) {
                best = fmax(best, t.acc[target][r]);
                worst = fmin(worst, t.acc[target][r]);
            }
            size_t n_seed_runs = me->method == KB_BO_METHOD_RANDOM && me->warm != KB_BO_WARM_NONE ? 1 : n_seeds;
            size_t rec_rows[16], n_rec = 0;
            double rec_u[16 * MAX_PARAMS];
            if (me->rec_design) {
                double mask[MAX_TASKS];
                n_rec = recommender_list(rec_rows, 16, &t, target, me->k_nearest, mask);
                if (me->k_nearest > 0) {
                    /* kb search: its neighbours take part in auto's model with weight 1 */
                    kb_transfer_set_weights(tr, mask);
                }
                for (size_t i = 0; i < n_rec; i++) {
                    for (size_t j = 0; j < p; j++) {
                        rec_u[i + j * 16] = t.u[rec_rows[i] + j * MAX_CONFIGS];
                    }
                }
            }
            for (size_t seed = 0; seed < n_seed_runs; seed++) {
                memset(used, 0, sizeof used);
                pool.used = used;
                double found = -INFINITY;
                for (size_t k = 0; k < n_trials && k < nc; k++) {
                    kb_bo_opts o = KB_BO_OPTS_INIT;
                    o.method = me->method;
                    o.warm = me->warm;
                    o.n_warm_init = me->n_warm_init;
                    if (me->auto_design != SIZE_MAX) {
                        o.auto_design = me->auto_design;
                    }
                    if (me->prior_spread >= 0.0) {
                        o.prior_spread = me->prior_spread;
                    }
                    if (me->cold_every != SIZE_MAX) {
                        o.cold_every = me->cold_every;
                    }
                    o.seed = 1000003u * (target + 1) + seed;
                    o.rgpe_samples = 100;
                    o.gp.n_restarts = 1;
                    o.gp.max_iter = 100;
                    kb_bo_problem pr = {e, uo, n_trials, k, yo, NULL, 0, 0, &pool, tr};
                    kb_bo_info info;
                    if (kb_bo_suggest_design(u, &info, &pr, rec_u, 16, n_rec, &o, &err) != KB_OK ||
                        info.pool_index == SIZE_MAX) {
                        fprintf(stderr, "bench_transfer: %s task %zu trial %zu: %s\n", m, target,
                                k, err.msg);
                        return 1;
                    }
                                    size_t r = info.pool_index;
                    used[r] = 1;

                    for (size_t j = 0; j < p; j++) {
                        uo[k + j * n_trials] = u[j];
                    }
                    yo[k] = -t.acc[target][r];
                    found = fmax(found, t.acc[target][r]);
                    if (print_init) {
                        printf("%s,%zu,%zu\n", t.names[target], seed, r);
                        continue;
                    }
                    double regret = best > worst ? (best - found) / (best - worst) : 0.0;
                    /* a deterministic method's single run stands for every seed */
                    size_t s_end = n_seed_runs == 1 ? n_seeds : seed + 1;
                    for (size_t s2 = seed; s2 < s_end; s2++) {
                        printf("%s,%s,%s,%zu,%zu,%.6f\n", tname, m, t.names[target], s2, k + 1,
                               regret);
                    }
                }
            }
        }
        fflush(stdout);
    }
    kb_free(uo);
    kb_transfer_free(tr);
    kb_encode_free(e);
    free(t.u);
    return 0;
}
