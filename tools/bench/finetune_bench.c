/*
 * finetune_bench: backbone choice and fine-tuning on small Fashion-MNIST targets (issue 7,
 * "Backbones and the joint fine-tune space"; docs/BENCHMARKS.md, "Backbones and fine-tuning").
 *
 *   finetune_bench --manifest DIR/manifest.tsv [--seeds S] [--max-iter N] [--k K]
 *                  [--targets N] [--out RESULTS.jsonl] [--extra FILE.jsonl ...]
 *                  [--replay RESULTS.jsonl]
 *
 * The manifest comes from tools/backbones/make_backbones.sh. For every target task: the
 * LogME score (engine/logme.h) of every backbone's penultimate features on the target's
 * training images, then S fine-tunes of every backbone and S trainings from scratch with the
 * default hyperparameters below (seeds 1..S), each scored on the target's test images.
 *
 * Backbone choice, per target, against the best backbone (highest mean test accuracy over
 * the seeds):
 *   kb-source   the backbone whose source task is nearest by meta-features;
 *   kb-nn       the knowledge base's runs: leave this target out, take its K nearest other
 *               targets by meta-features and choose the backbone with the highest mean
 *               min-max-normalised accuracy there (the fine-tune runs a KB holds);
 *   logme       the highest LogME;
 *   kb-nn+logme the highest sum of the two scores, each standardised across backbones.
 * Meta-features: kb's general, statistical, info and image groups, robustly scaled over all
 * source and target tasks (engine/similarity.h), L2 distance.
 *
 * Evaluations, S seeds each: (a) scratch with the defaults, (c) the generic backbone (the
 * first source with all classes, "src-all") with the defaults, (d) the kb-nn+logme choice
 * with the defaults; (b) and (e) need kb search: --extra reads their runs, JSON lines
 * {"target", "method", "seed", "test_accuracy"} from tools/bench/finetune_search.sh.
 * --out writes every run the same way (plus LogME lines); --replay reads such a file back
 * instead of training (the meta-features are recomputed), to redo the report.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/core/alloc.h"
#include "engine/dataset.h"
#include "engine/metafeatures.h"
#include "engine/net.h"
#include "engine/similarity.h"
#include "tools/backbone_logme.h"

#define MAX_BB 16
#define MAX_T 64
#define MAX_SEEDS 20
#define MAX_EXTRA 8

typedef struct backbone {
    char name[64], weights[1024], source[1024];
    kb_net_weights_info info;
} backbone;

typedef struct target {
    char name[64], kind[32], train[1024], test[1024];
    double logme[MAX_BB];
    double acc[MAX_BB][MAX_SEEDS];   /* fine-tuned backbone b, seed s */
    double scratch[MAX_SEEDS];
    double mean[MAX_BB];             /* mean over seeds */
} target;

typedef struct bench {
    backbone bb[MAX_BB];
    size_t n_bb;
    target *t;
    size_t n_t;
    size_t seeds, max_iter, k;
    double *mf; /* (n_t + n_bb) x n_mf, task-contiguous, scaled */
    size_t n_mf;
    FILE *out;
} bench;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The fine-tune defaults: the `finetune` space's defaults in datasets/spaces.jsonl. */
static kb_net_opts default_opts(size_t max_iter, uint64_t seed)
{
    kb_net_opts o = KB_NET_OPTS_INIT;
    o.optimizer = KB_NET_OPTIMIZER_MOMENTUM;
    o.base_lr = 0.01;
    o.momentum = 0.9;
    o.weight_decay = 5e-4;
    o.lr_policy = KB_NET_LR_POLICY_FIXED;
    o.batch_size = 32;
    o.max_iter = max_iter;
    o.seed = seed;
    return o;
}

static int read_manifest(bench *b, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "finetune_bench: cannot open '%s'\n", path);
        return -1;
    }
    char line[4096];
    b->t = kb_calloc(MAX_T, sizeof(target));
    while (b->t != NULL && fgets(line, sizeof line, f) != NULL) {
        char *f1 = strtok(line, "\t\n"), *f2 = strtok(NULL, "\t\n"), *f3 = strtok(NULL, "\t\n");
        char *f4 = strtok(NULL, "\t\n"), *f5 = strtok(NULL, "\t\n");
        if (f1 && f2 && f3 && f4 && strcmp(f1, "backbone") == 0 && b->n_bb < MAX_BB) {
            backbone *x = &b->bb[b->n_bb++];
            snprintf(x->name, sizeof x->name, "%s", f2);
            snprintf(x->weights, sizeof x->weights, "%s", f3);
            snprintf(x->source, sizeof x->source, "%s", f4);
        } else if (f1 && f2 && f3 && f4 && f5 && strcmp(f1, "target") == 0 && b->n_t < MAX_T) {
            target *x = &b->t[b->n_t++];
            snprintf(x->name, sizeof x->name, "%s", f2);
            snprintf(x->kind, sizeof x->kind, "%s", f3);
            snprintf(x->train, sizeof x->train, "%s", f4);
            snprintf(x->test, sizeof x->test, "%s", f5);
        }
    }
    fclose(f);
    if (b->t == NULL || b->n_bb == 0 || b->n_t == 0) {
        fprintf(stderr, "finetune_bench: '%s' lists no backbone or no target\n", path);
        return -1;
    }
    return 0;
}

/* Meta-features of every target and source, scaled together. */
static int meta_features(bench *b)
{
    size_t n_all = b->n_t + b->n_bb;
    b->n_mf = kb_metafeatures_count();
    b->mf = kb_calloc(n_all * b->n_mf, sizeof(double));
    if (b->mf == NULL) {
        return -1;
    }
    kb_metafeatures_opts mo = KB_METAFEATURES_OPTS_INIT;
    mo.groups = KB_METAFEATURES_GROUP_GENERAL | KB_METAFEATURES_GROUP_STATISTICAL |
                KB_METAFEATURES_GROUP_INFO | KB_METAFEATURES_GROUP_IMAGE;
    for (size_t i = 0; i < n_all; i++) {
        const char *path = i < b->n_t ? b->t[i].train : b->bb[i - b->n_t].source;
        kb_dataset d = {0};
        kb_error err = KB_ERROR_INIT;
        kb_metafeatures mf;
        if (kb_dataset_read(&d, path, NULL, &err) != KB_OK ||
            kb_metafeatures_compute(&mf, &d, &mo, &err) != KB_OK) {
            fprintf(stderr, "finetune_bench: %s: %s\n", path, err.msg);
            kb_dataset_release(&d);
            return -1;
        }
        memcpy(b->mf + i * b->n_mf, mf.values, b->n_mf * sizeof(double));
        kb_dataset_release(&d);
    }
    kb_similarity_scaler sc;
    kb_error err = KB_ERROR_INIT;
    if (kb_similarity_scaler_fit(&sc, b->mf, n_all, b->n_mf, &err) != KB_OK) {
        return -1;
    }
    kb_similarity_scaler_apply(&sc, b->mf, n_all);
    kb_similarity_scaler_release(&sc);
    return 0;
}

/* L2 distance between scaled task vectors i and j over the features both have. */
static double mf_distance(const bench *b, size_t i, size_t j)
{
    double s = 0.0;
    size_t shared = 0;
    for (size_t f = 0; f < b->n_mf; f++) {
        double u = b->mf[i * b->n_mf + f], v = b->mf[j * b->n_mf + f];
        if (isfinite(u) && isfinite(v)) {
            s += (u - v) * (u - v);
            shared++;
        }
    }
    return shared > 0 ? sqrt(s * (double)b->n_mf / (double)shared) : INFINITY;
}

typedef struct tdata {
    kb_dataset tr, te;
    kb_net_scaler sc;
    float *xt, *yt, *xv, *yv;
} tdata;

static void tdata_release(tdata *d)
{
    kb_free(d->xt);
    kb_free(d->yt);
    kb_free(d->xv);
    kb_free(d->yv);
    kb_net_scaler_release(&d->sc);
    kb_dataset_release(&d->tr);
    kb_dataset_release(&d->te);
}

static int tdata_load(tdata *d, const target *t, kb_error *err)
{
    memset(d, 0, sizeof *d);
    int rc = kb_dataset_read(&d->tr, t->train, NULL, err);
    rc = rc ? rc : kb_dataset_read(&d->te, t->test, NULL, err);
    if (rc != KB_OK) {
        return rc;
    }
    /* the same classes on both sides (make_backbones.sh cuts them so): same indices */
    if (d->tr.n_classes != d->te.n_classes) {
        return kb_error_set(err, KB_EFORMAT, "'%s': train and test classes differ", t->name);
    }
    for (size_t c = 0; c < d->tr.n_classes; c++) {
        if (strcmp(d->tr.class_names[c], d->te.class_names[c]) != 0) {
            return kb_error_set(err, KB_EFORMAT, "'%s': train and test classes differ",
                                t->name);
        }
    }
    rc = kb_net_scaler_fit(&d->sc, &d->tr, NULL, d->tr.n_rows, err);
    rc = rc ? rc : kb_net_scaler_apply(&d->xt, &d->yt, &d->sc, &d->tr, NULL, d->tr.n_rows, err);
    rc = rc ? rc : kb_net_scaler_apply(&d->xv, &d->yv, &d->sc, &d->te, NULL, d->te.n_rows, err);
    return rc;
}

/* A net with the backbone's architecture, its weights loaded (weights NULL: from scratch). */
static int make_net(kb_net **out, const tdata *d, const char *arch_text, const char *weights,
                    const kb_net_opts *o, kb_error *err)
{
    kb_net_arch arch;
    kb_net_input in = kb_net_scaler_input(&d->sc);
    int rc = kb_net_arch_parse(&arch, arch_text, err);
    rc = rc ? rc : kb_net_new(out, &arch, &in, KB_NET_TASK_CLASSIFICATION, d->tr.n_classes, o,
                              err);
    if (rc == KB_OK && weights != NULL) {
        int replaced;
        rc = kb_net_weights_load(&replaced, *out, weights, d->sc.signature, err);
    }
    return rc;
}

static int finetune(double *acc_out, const tdata *d, const char *arch, const char *weights,
                    size_t max_iter, uint64_t seed, kb_error *err)
{
    kb_net_opts o = default_opts(max_iter, seed);
    kb_net *net = NULL;
    kb_net_result res;
    kb_net_data dt = {d->tr.n_rows, d->sc.dim, d->xt, d->yt};
    kb_net_data dv = {d->te.n_rows, d->sc.dim, d->xv, d->yv};
    double loss;
    int rc = make_net(&net, d, arch, weights, &o, err);
    rc = rc ? rc : kb_net_train(&res, net, &dt, NULL, NULL, NULL, err);
    rc = rc ? rc : kb_net_evaluate(&loss, acc_out, net, &dv, err);
    if (rc == KB_OK && res.status == KB_NET_STATUS_DIVERGED) {
        *acc_out = 1.0 / (double)d->tr.n_classes; /* a diverged run guesses */
    }
    kb_net_free(net);
    return rc;
}

/* the backbone scored as `kb recommend` scores it: on every training image of the target */
static int logme_of(double *out, const tdata *d, const backbone *bb, kb_error *err)
{
    return backbone_logme(out, &d->tr, bb->weights, 0, 1, err);
}

static void emit(bench *b, const char *tname, const char *method, size_t seed, double acc)
{
    if (b->out != NULL) {
        fprintf(b->out, "{\"target\":\"%s\",\"method\":\"%s\",\"seed\":%zu,"
                        "\"test_accuracy\":%.6f}\n", tname, method, seed, acc);
    }
}

static int run_target(bench *b, target *t)
{
    kb_error err = KB_ERROR_INIT;
    tdata d;
    int rc = tdata_load(&d, t, &err);
    double t0 = now_s();
    for (size_t j = 0; rc == KB_OK && j < b->n_bb; j++) {
        rc = logme_of(&t->logme[j], &d, &b->bb[j], &err);
        if (rc == KB_OK && b->out != NULL) {
            fprintf(b->out, "{\"target\":\"%s\",\"backbone\":\"%s\",\"logme\":%.9g}\n", t->name,
                    b->bb[j].name, t->logme[j]);
        }
        t->mean[j] = 0.0;
        for (size_t s = 0; rc == KB_OK && s < b->seeds; s++) {
            rc = finetune(&t->acc[j][s], &d, b->bb[j].info.arch, b->bb[j].weights, b->max_iter,
                          s + 1, &err);
            t->mean[j] += t->acc[j][s] / (double)b->seeds;
            char m[96];
            snprintf(m, sizeof m, "finetune:%s", b->bb[j].name);
            emit(b, t->name, m, s + 1, t->acc[j][s]);
        }
    }
    for (size_t s = 0; rc == KB_OK && s < b->seeds; s++) {
        rc = finetune(&t->scratch[s], &d, b->bb[0].info.arch, NULL, b->max_iter, s + 1, &err);
        emit(b, t->name, "scratch", s + 1, t->scratch[s]);
    }
    if (rc != KB_OK) {
        fprintf(stderr, "finetune_bench: %s: %s\n", t->name, err.msg);
    } else {
        fprintf(stderr, "finetune_bench: %s (%s, %zu train, %zu test): %.1f s\n", t->name,
                t->kind, d.tr.n_rows, d.te.n_rows, now_s() - t0);
    }
    tdata_release(&d);
    return rc;
}

static long find_bb(const bench *b, const char *name)
{
    for (size_t j = 0; j < b->n_bb; j++) {
        if (strcmp(b->bb[j].name, name) == 0) {
            return (long)j;
        }
    }
    return -1;
}

/* --replay: the runs of an earlier --out instead of training (the report only). */
static int replay(bench *b, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "finetune_bench: cannot open '%s'\n", path);
        return -1;
    }
    char line[4096];
    size_t n_runs = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(o, "target");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "method");
        const cJSON *bn = cJSON_GetObjectItemCaseSensitive(o, "backbone");
        const cJSON *lm = cJSON_GetObjectItemCaseSensitive(o, "logme");
        const cJSON *sd = cJSON_GetObjectItemCaseSensitive(o, "seed");
        const cJSON *acc = cJSON_GetObjectItemCaseSensitive(o, "test_accuracy");
        target *t = NULL;
        for (size_t i = 0; cJSON_IsString(tn) && i < b->n_t; i++) {
            t = strcmp(b->t[i].name, tn->valuestring) == 0 ? &b->t[i] : t;
        }
        if (t != NULL && cJSON_IsString(bn) && cJSON_IsNumber(lm) &&
            find_bb(b, bn->valuestring) >= 0) {
            t->logme[find_bb(b, bn->valuestring)] = lm->valuedouble;
        } else if (t != NULL && cJSON_IsString(m) && cJSON_IsNumber(sd) &&
                   cJSON_IsNumber(acc) && sd->valueint >= 1 &&
                   (size_t)sd->valueint <= b->seeds) {
            size_t s = (size_t)sd->valueint - 1;
            long j = strncmp(m->valuestring, "finetune:", 9) == 0
                         ? find_bb(b, m->valuestring + 9) : -1;
            if (strcmp(m->valuestring, "scratch") == 0) {
                t->scratch[s] = acc->valuedouble;
                n_runs++;
            } else if (j >= 0) {
                t->acc[j][s] = acc->valuedouble;
                n_runs++;
            }
        }
        cJSON_Delete(o);
    }
    fclose(f);
    for (size_t i = 0; i < b->n_t; i++) {
        for (size_t j = 0; j < b->n_bb; j++) {
            b->t[i].mean[j] = 0.0;
            for (size_t s = 0; s < b->seeds; s++) {
                b->t[i].mean[j] += b->t[i].acc[j][s] / (double)b->seeds;
            }
        }
    }
    if (n_runs != b->n_t * (b->n_bb + 1) * b->seeds) {
        fprintf(stderr, "finetune_bench: '%s' has %zu of the %zu runs expected\n", path, n_runs,
                b->n_t * (b->n_bb + 1) * b->seeds);
        return -1;
    }
    return 0;
}

static size_t argmax(const double *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++) {
        if (v[i] > v[best]) {
            best = i;
        }
    }
    return best;
}

/* Standardise v across backbones (sd floored, so equal scores give zeros). */
static void zscore(double *out, const double *v, size_t n)
{
    double m = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        m += v[i] / (double)n;
    }
    for (size_t i = 0; i < n; i++) {
        s += (v[i] - m) * (v[i] - m) / (double)n;
    }
    s = sqrt(s) > 1e-12 ? sqrt(s) : 1.0;
    for (size_t i = 0; i < n; i++) {
        out[i] = (v[i] - m) / s;
    }
}

/* kb-nn score of every backbone for target ti: its K nearest other targets' normalised means. */
static void kb_nn_scores(double *score, const bench *b, size_t ti)
{
    size_t order[MAX_T], n = 0;
    double dist[MAX_T];
    for (size_t j = 0; j < b->n_t; j++) {
        dist[j] = mf_distance(b, ti, j);
        if (j != ti) {
            order[n++] = j;
        }
    }
    for (size_t a = 1; a < n; a++) { /* insertion sort by distance, stable */
        size_t x = order[a], c = a;
        for (; c > 0 && dist[order[c - 1]] > dist[x]; c--) {
            order[c] = order[c - 1];
        }
        order[c] = x;
    }
    size_t k = b->k < n ? b->k : n;
    for (size_t j = 0; j < b->n_bb; j++) {
        score[j] = 0.0;
    }
    for (size_t q = 0; q < k; q++) {
        const target *nb = &b->t[order[q]];
        double lo = INFINITY, hi = -INFINITY;
        for (size_t j = 0; j < b->n_bb; j++) {
            lo = fmin(lo, nb->mean[j]);
            hi = fmax(hi, nb->mean[j]);
        }
        for (size_t j = 0; j < b->n_bb; j++) {
            score[j] += (hi > lo ? (nb->mean[j] - lo) / (hi - lo) : 1.0) / (double)k;
        }
    }
}

enum { SEL_SOURCE, SEL_NN, SEL_LOGME, SEL_COMBINED, N_SEL };
static const char *const sel_names[N_SEL] = {"kb-source", "kb-nn", "logme", "kb-nn+logme"};

static void choose(size_t *pick, const bench *b, size_t ti)
{
    double src[MAX_BB], nn[MAX_BB], z1[MAX_BB], z2[MAX_BB];
    for (size_t j = 0; j < b->n_bb; j++) {
        src[j] = -mf_distance(b, ti, b->n_t + j);
    }
    kb_nn_scores(nn, b, ti);
    zscore(z1, nn, b->n_bb);
    zscore(z2, b->t[ti].logme, b->n_bb);
    for (size_t j = 0; j < b->n_bb; j++) {
        z1[j] += z2[j];
    }
    pick[SEL_SOURCE] = argmax(src, b->n_bb);
    pick[SEL_NN] = argmax(nn, b->n_bb);
    pick[SEL_LOGME] = argmax(b->t[ti].logme, b->n_bb);
    pick[SEL_COMBINED] = argmax(z1, b->n_bb);
}

/* Mean, sd and quantiles of a pooled sample (sorted in place). */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/*
 * One row: pooled mean and std over targets x seeds, quantiles (the CDF), and, when the runs
 * are `seeds` consecutive values per target, the mean over targets of the std over seeds
 * (stability against the seed alone).
 */
static void summary_row(const char *name, double *v, size_t n, size_t seeds)
{
    if (n == 0) {
        return;
    }
    double within = 0.0;
    for (size_t t0 = 0; seeds > 1 && t0 + seeds <= n; t0 += seeds) {
        double mt = 0.0, st = 0.0;
        for (size_t s = 0; s < seeds; s++) {
            mt += v[t0 + s] / (double)seeds;
        }
        for (size_t s = 0; s < seeds; s++) {
            st += (v[t0 + s] - mt) * (v[t0 + s] - mt) / (double)(seeds - 1);
        }
        within += sqrt(st) / (double)(n / seeds);
    }
    double m = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        m += v[i] / (double)n;
    }
    for (size_t i = 0; i < n; i++) {
        s += (v[i] - m) * (v[i] - m) / (double)(n > 1 ? n - 1 : 1);
    }
    qsort(v, n, sizeof(double), cmp_double);
    char w[32] = "-";
    if (seeds > 1) {
        snprintf(w, sizeof w, "%.4f", within);
    }
    printf("| %-34s | %4zu | %.4f | %.4f | %s | %.3f | %.3f | %.3f | %.3f | %.3f |\n", name, n,
           m, sqrt(s), w, v[n / 10], v[n / 4], v[n / 2], v[(3 * n) / 4], v[(9 * n) / 10]);
}

/* --extra: method runs from other tools, pooled per method name. */
static void extra_rows(const char *path, const bench *b)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "finetune_bench: cannot open '%s'\n", path);
        return;
    }
    char line[4096], methods[MAX_EXTRA][64];
    size_t n_m = 0, n[MAX_EXTRA] = {0};
    double *v[MAX_EXTRA] = {0};
    while (fgets(line, sizeof line, f) != NULL) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "method");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "test_accuracy");
        if (cJSON_IsString(m) && cJSON_IsNumber(a)) {
            size_t i = 0;
            while (i < n_m && strcmp(methods[i], m->valuestring) != 0) {
                i++;
            }
            if (i == n_m && n_m < MAX_EXTRA) {
                snprintf(methods[n_m], sizeof methods[0], "%s", m->valuestring);
                v[n_m] = kb_calloc(b->n_t * MAX_SEEDS, sizeof(double));
                n_m++;
            }
            if (i < n_m && v[i] != NULL && n[i] < b->n_t * MAX_SEEDS) {
                v[i][n[i]++] = a->valuedouble;
            }
        }
        cJSON_Delete(o);
    }
    fclose(f);
    for (size_t i = 0; i < n_m; i++) {
        summary_row(methods[i], v[i], n[i], 0); /* pooled: no per-target order assumed */
        kb_free(v[i]);
    }
}

static void report(const bench *b, char **extra, size_t n_extra)
{
    size_t hits[N_SEL] = {0};
    double lost[N_SEL] = {0}, worst[N_SEL] = {0};
    size_t picks[MAX_T][N_SEL], best[MAX_T];
    printf("\n| target | kind | best backbone (mean acc) | kb-source | kb-nn | logme | "
           "kb-nn+logme | scratch |\n|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < b->n_t; i++) {
        const target *t = &b->t[i];
        best[i] = argmax(t->mean, b->n_bb);
        choose(picks[i], b, i);
        double sm = 0.0;
        for (size_t s = 0; s < b->seeds; s++) {
            sm += t->scratch[s] / (double)b->seeds;
        }
        printf("| %s | %s | %s (%.3f) |", t->name, t->kind, b->bb[best[i]].name,
               t->mean[best[i]]);
        for (int k = 0; k < N_SEL; k++) {
            size_t p = picks[i][k];
            double l = t->mean[best[i]] - t->mean[p];
            hits[k] += p == best[i];
            lost[k] += l / (double)b->n_t;
            worst[k] = fmax(worst[k], l);
            printf(" %s%s (%.3f) |", p == best[i] ? "**" : "", b->bb[p].name, t->mean[p]);
        }
        printf(" %.3f |\n", sm);
    }
    printf("\n| selector | picks the best | mean accuracy lost | largest loss |\n"
           "|---|---|---|---|\n");
    for (int k = 0; k < N_SEL; k++) {
        printf("| %s | %zu of %zu | %.4f | %.4f |\n", sel_names[k], hits[k], b->n_t, lost[k],
               worst[k]);
    }
    size_t generic = 0;
    for (size_t j = 0; j < b->n_bb; j++) {
        if (strcmp(b->bb[j].name, "src-all") == 0) {
            generic = j;
        }
    }
    size_t n = b->n_t * b->seeds;
    double *va = kb_malloc_array(n, sizeof(double)), *vc = kb_malloc_array(n, sizeof(double));
    double *vd = kb_malloc_array(n, sizeof(double)), *vo = kb_malloc_array(n, sizeof(double));
    if (va == NULL || vc == NULL || vd == NULL || vo == NULL) {
        goto done;
    }
    for (size_t i = 0; i < b->n_t; i++) {
        for (size_t s = 0; s < b->seeds; s++) {
            va[i * b->seeds + s] = b->t[i].scratch[s];
            vc[i * b->seeds + s] = b->t[i].acc[generic][s];
            vd[i * b->seeds + s] = b->t[i].acc[picks[i][SEL_COMBINED]][s];
            vo[i * b->seeds + s] = b->t[i].acc[best[i]][s];
        }
    }
    printf("\n| method (test accuracy, all targets x seeds) | runs | mean | std | std over seeds "
           "| p10 | p25 | median | p75 | p90 |\n|---|---|---|---|---|---|---|---|---|---|\n");
    summary_row("(a) scratch, defaults", va, n, b->seeds);
    summary_row("(c) generic backbone, defaults", vc, n, b->seeds);
    summary_row("(d) kb-chosen backbone, defaults", vd, n, b->seeds);
    summary_row("best backbone (oracle), defaults", vo, n, b->seeds);
    for (size_t e = 0; e < n_extra; e++) {
        extra_rows(extra[e], b);
    }
done:
    kb_free(va);
    kb_free(vc);
    kb_free(vd);
    kb_free(vo);
}

int main(int argc, char **argv)
{
    bench b;
    memset(&b, 0, sizeof b);
    b.seeds = 5;
    b.max_iter = 150;
    b.k = 3;
    const char *manifest = NULL, *out = NULL, *from = NULL;
    char *extra[MAX_EXTRA];
    size_t n_extra = 0, limit = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--manifest") == 0) {
            manifest = argv[i + 1];
        } else if (strcmp(argv[i], "--seeds") == 0) {
            b.seeds = strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--max-iter") == 0) {
            b.max_iter = strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--k") == 0) {
            b.k = strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--targets") == 0) {
            limit = strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--replay") == 0) {
            from = argv[i + 1];
        } else if (strcmp(argv[i], "--out") == 0) {
            out = argv[i + 1];
        } else if (strcmp(argv[i], "--extra") == 0 && n_extra < MAX_EXTRA) {
            extra[n_extra++] = argv[i + 1];
        } else {
            fprintf(stderr, "finetune_bench: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (manifest == NULL || b.seeds < 1 || b.seeds > MAX_SEEDS || b.max_iter < 1 || b.k < 1) {
        fprintf(stderr, "usage: finetune_bench --manifest FILE [--seeds 1..%d] [--max-iter N] "
                        "[--k K] [--targets N] [--out FILE] [--extra FILE ...] [--replay FILE]\n",
                MAX_SEEDS);
        return 2;
    }
    int code = 1;
    if (read_manifest(&b, manifest) != 0) {
        goto done;
    }
    if (limit > 0 && limit < b.n_t) {
        b.n_t = limit;
    }
    for (size_t j = 0; j < b.n_bb; j++) {
        kb_error err = KB_ERROR_INIT;
        if (kb_net_weights_info_read(&b.bb[j].info, b.bb[j].weights, &err) != KB_OK) {
            fprintf(stderr, "finetune_bench: %s\n", err.msg);
            goto done;
        }
    }
    if (out != NULL && (b.out = fopen(out, "w")) == NULL) {
        fprintf(stderr, "finetune_bench: cannot create '%s'\n", out);
        goto done;
    }
    double t0 = now_s();
    if (meta_features(&b) != 0) {
        goto done;
    }
    fprintf(stderr, "finetune_bench: meta-features of %zu tasks: %.1f s\n", b.n_t + b.n_bb,
            now_s() - t0);
    if (from != NULL && replay(&b, from) != 0) {
        goto done;
    }
    for (size_t i = 0; from == NULL && i < b.n_t; i++) {
        if (run_target(&b, &b.t[i]) != 0) {
            goto done;
        }
    }
    printf("finetune_bench: %zu targets, %zu backbones, %zu seeds, max_iter %zu, k %zu\n", b.n_t,
           b.n_bb, b.seeds, b.max_iter, b.k);
    report(&b, extra, n_extra);
    code = 0;
done:
    if (b.out != NULL && fclose(b.out) != 0) {
        code = 1;
    }
    kb_free(b.t);
    kb_free(b.mf);
    return code;
}
