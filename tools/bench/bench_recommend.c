/*
 * bench_recommend: leave-one-task-out quality of kb's recommendations on a cross-evaluated
 * table (every configuration evaluated on every task), as docs/BENCHMARKS.md reports it.
 *
 *   bench_recommend --table T.csv --metafeatures M.csv --objective accuracy
 *                   [--default CONFIG] [--minimize] [--seeds N] [--json]
 *
 * T.csv has columns `dataset`, `config` (an integer id shared across datasets) and the
 * objective; M.csv has `dataset` and one column per meta-feature. For each held-out dataset
 * the knowledge base is every other dataset; each method lists K configurations and the
 * normalised regret (best - best listed) / (best - worst) on the held-out dataset is averaged
 * over datasets, at K = 1, 3, 5, 10. Methods: the default configuration, random
 * configurations (mean over seeds), the greedy portfolio built on the other datasets, the best
 * configurations of the 5 nearest datasets by L1 on meta-features (round-robin), and kb as
 * `kb recommend` ranks: kb_recommend_rank with task weights from the similarity model
 * (kb_recommend_model_fit on the --tune-tasks nearest datasets, 16 as in kb recommend, by the
 * model's distance kb_similarity_distance_imputed; kb_recommend_model_weights over all, which
 * also chooses the hedge by leave-one-out on those nearest; --hedge B fixes it). Meta-features
 * are scaled on the knowledge-base datasets only.
 *
 * Earlier rankings, for comparison: --grid-weighting is the one before 2026-11-28 (R3): weights
 * floor + exp(-(d/h)^2) with (bandwidth, floor), then the hedge, chosen by kb_recommend_tune's
 * leave-one-out (--hedge 1 with it: the ranking before R2's hedge); --floor W fixes the
 * weighting instead (bandwidth 1); --learned (with --grid-weighting) measures distances with
 * meta-feature weights learned on the knowledge-base datasets (kb_similarity_learn_weights).
 * --per-task prints kb's regret on each held-out dataset to stderr.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/core/rng.h"
#include "engine/csv.h"
#include "engine/recommend.h"
#include "engine/similarity.h"
#include "engine/stats.h"

#define N_K 4
static const size_t ks[N_K] = {1, 3, 5, 10};

typedef struct table {
    size_t n_tasks, n_configs;
    char **names;   /* n_tasks dataset names (borrowed from the dataset) */
    double *y;      /* n_tasks x n_configs, row-major by task; NaN = missing */
    double *mf;     /* n_tasks x n_features, task-contiguous */
    size_t n_features;
} table;

static int die(const char *msg, const kb_error *err)
{
    fprintf(stderr, "bench_recommend: %s%s%s\n", msg, err ? ": " : "", err ? err->msg : "");
    return 1;
}

static size_t col_index(const kb_dataset *d, const char *name)
{
    for (size_t j = 0; j < d->n_cols; j++) {
        if (strcmp(d->cols[j].name, name) == 0) {
            return j;
        }
    }
    return (size_t)-1;
}

/* Load the table (target = objective) and the meta-features (target = dataset). */
static int load(table *tb, kb_dataset *dt, kb_dataset *dm, const char *tpath, const char *mpath,
                const char *objective)
{
    kb_error err = KB_ERROR_INIT;
    kb_dataset_opts o = KB_DATASET_OPTS_INIT;
    o.target = objective;
    o.task = KB_DATASET_TASK_REGRESSION;
    if (kb_dataset_read(dt, tpath, &o, &err) != KB_OK) {
        return die("reading the table", &err);
    }
    o.target = "dataset";
    o.task = KB_DATASET_TASK_CLASSIFICATION;
    if (kb_dataset_read(dm, mpath, &o, &err) != KB_OK) {
        return die("reading the meta-features", &err);
    }
    size_t jd = col_index(dt, "dataset"), jc = col_index(dt, "config");
    if (jd == (size_t)-1 || jc == (size_t)-1 || dt->cols[jd].type != KB_COLUMN_CATEGORICAL) {
        return die("the table needs columns 'dataset' and 'config'", NULL);
    }
    tb->n_tasks = dm->n_classes;
    tb->names = dm->class_names;
    tb->n_features = dm->n_cols;
    size_t max_c = 0;
    for (size_t i = 0; i < dt->n_rows; i++) {
        double c = kb_dataset_col(dt, jc)[i];
        if (!(c >= 0) || c != floor(c)) {
            return die("config ids must be non-negative integers", NULL);
        }
        max_c = (size_t)c > max_c ? (size_t)c : max_c;
    }
    tb->n_configs = max_c + 1;
    tb->y = kb_malloc_array(tb->n_tasks * tb->n_configs, sizeof *tb->y);
    tb->mf = kb_malloc_array(tb->n_tasks * tb->n_features, sizeof *tb->mf);
    if (tb->y == NULL || tb->mf == NULL) {
        return die("out of memory", NULL);
    }
    for (size_t i = 0; i < tb->n_tasks * tb->n_configs; i++) {
        tb->y[i] = NAN;
    }
    for (size_t i = 0; i < dm->n_rows; i++) {
        size_t t = (size_t)dm->y[i];
        for (size_t j = 0; j < dm->n_cols; j++) {
            tb->mf[t * tb->n_features + j] = kb_dataset_col(dm, j)[i];
        }
    }
    for (size_t i = 0; i < dt->n_rows; i++) {
        const char *name = dt->cols[jd].levels[(size_t)kb_dataset_col(dt, jd)[i]];
        size_t t = 0;
        while (t < tb->n_tasks && strcmp(tb->names[t], name) != 0) {
            t++;
        }
        if (t == tb->n_tasks) {
            fprintf(stderr, "bench_recommend: dataset '%s' has no meta-features\n", name);
            return 1;
        }
        tb->y[t * tb->n_configs + (size_t)kb_dataset_col(dt, jc)[i]] = dt->y[i];
    }
    return 0;
}

/* Normalised regret of the best of list[0..k) on task t. */
static double regret(const table *tb, size_t t, const size_t *list, size_t k, int maximize)
{
    const double *y = tb->y + t * tb->n_configs;
    double best = maximize ? -INFINITY : INFINITY, worst = -best, got = best;
    for (size_t c = 0; c < tb->n_configs; c++) {
        if (isnan(y[c])) {
            continue;
        }
        best = maximize ? fmax(best, y[c]) : fmin(best, y[c]);
        worst = maximize ? fmin(worst, y[c]) : fmax(worst, y[c]);
    }
    for (size_t i = 0; i < k; i++) {
        double v = y[list[i]];
        if (!isnan(v)) {
            got = maximize ? fmax(got, v) : fmin(got, v);
        }
    }
    if (best == worst) {
        return 0.0;
    }
    if (!isfinite(got)) {
        return 1.0; /* nothing listed: as bad as the worst */
    }
    return fabs(best - got) / fabs(best - worst);
}

enum { M_DEFAULT, M_RANDOM, M_PORTFOLIO, M_NEAREST5, M_KB, N_METHODS };
static const char *method_names[N_METHODS] = {"default", "random", "greedy portfolio",
                                              "nearest-5 (L1)", "kb"};

typedef struct ctx {
    const table *tb;
    int maximize;
    double *scores;  /* (n_tasks-1) x n_configs column-major for the KB tasks */
    size_t *kb_rows; /* KB task -> table row */
} ctx;

/* Normalised scores of the KB tasks (all but `held`). */
static void fill_scores(ctx *c, size_t held)
{
    const table *tb = c->tb;
    size_t nt = tb->n_tasks - 1, r = 0;
    double *row = kb_malloc_array(tb->n_configs, sizeof *row);
    for (size_t t = 0; t < tb->n_tasks; t++) {
        if (t == held) {
            continue;
        }
        memcpy(row, tb->y + t * tb->n_configs, tb->n_configs * sizeof *row);
        kb_recommend_normalize(row, tb->n_configs, c->maximize);
        for (size_t cfg = 0; cfg < tb->n_configs; cfg++) {
            c->scores[r + cfg * nt] = row[cfg];
        }
        c->kb_rows[r++] = t;
    }
    kb_free(row);
}

/*
 * Meta-feature distances, scaled on the KB tasks only: from task `held` to the KB tasks into
 * `dist`, and between the KB tasks into `pair` (nt x nt column-major); the same with missing
 * values imputed (kb_similarity_distance_imputed, the similarity model's) into `mdist`, `mpair`.
 */
static int learned = 0;

static void distances(const ctx *c, size_t held, double *dist, double *pair, double *mdist,
                      double *mpair)
{
    const table *tb = c->tb;
    size_t nt = tb->n_tasks - 1, d = tb->n_features;
    double *z = kb_malloc_array(nt * d, sizeof *z), *q = kb_malloc_array(d, sizeof *q);
    for (size_t r = 0; r < nt; r++) {
        memcpy(z + r * d, tb->mf + c->kb_rows[r] * d, d * sizeof *z);
    }
    memcpy(q, tb->mf + held * d, d * sizeof *q);
    kb_similarity_scaler sc;
    kb_similarity_index ix;
    kb_error err = KB_ERROR_INIT;
    kb_similarity_scaler_fit(&sc, z, nt, d, &err);
    kb_similarity_scaler_apply(&sc, z, nt);
    kb_similarity_scaler_apply(&sc, q, 1);
    double *fw = NULL;
    if (learned) {
        double *tg = kb_malloc_array(nt * nt, sizeof *tg);
        fw = kb_malloc_array(d, sizeof *fw);
        for (size_t a = 0; a < nt; a++) {
            for (size_t b = 0; b < nt; b++) {
                tg[a + b * nt] = a == b ? NAN : 1.0 - kb_similarity_rank_agreement(
                    tb->y + c->kb_rows[a] * tb->n_configs, tb->y + c->kb_rows[b] * tb->n_configs,
                    tb->n_configs);
            }
        }
        if (kb_similarity_learn_weights(fw, z, nt, d, tg, 300, &err) != KB_OK) {
            kb_free(fw);
            fw = NULL;
        }
        kb_free(tg);
    }
    kb_similarity_index_build(&ix, z, nt, d, fw, &err);
    kb_free(fw);
    for (size_t r = 0; r < nt; r++) {
        mdist[r] = kb_similarity_distance_imputed(z + r * d, q, d);
        for (size_t o = 0; o < nt; o++) {
            mpair[r + o * nt] = kb_similarity_distance_imputed(z + r * d, z + o * d, d);
        }
        dist[r] = kb_similarity_distance(&ix, r, q, KB_SIMILARITY_L1, NULL);
        for (size_t o = 0; o < nt; o++) {
            pair[r + o * nt] = kb_similarity_distance(&ix, o, z + r * d, KB_SIMILARITY_L1, NULL);
        }
    }
    kb_similarity_index_release(&ix);
    kb_similarity_scaler_release(&sc);
    kb_free(z);
    kb_free(q);
}

static void list_from_items(size_t *list, const kb_recommend_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        list[i] = items[i].config;
    }
}

/* nearest-5: best config of each of the 5 nearest in turn, then their second best, ... */
static size_t nearest5(const ctx *c, const double *dist, size_t *list, size_t kmax)
{
    const table *tb = c->tb;
    size_t nt = tb->n_tasks - 1, order[5], n_near = 0;
    unsigned char *used = kb_calloc(nt, 1), *taken = kb_calloc(tb->n_configs, 1);
    for (; n_near < 5 && n_near < nt; n_near++) {
        size_t b = (size_t)-1;
        for (size_t r = 0; r < nt; r++) {
            if (!used[r] && (b == (size_t)-1 || dist[r] < dist[b])) {
                b = r;
            }
        }
        used[b] = 1;
        order[n_near] = b;
    }
    size_t n = 0;
    for (size_t round = 0; n < kmax && round < tb->n_configs; round++) {
        for (size_t i = 0; i < n_near && n < kmax; i++) {
            const double *s = c->scores + order[i];
            /* the (round+1)-th best untaken config of neighbour i */
            size_t b = (size_t)-1;
            for (size_t cfg = 0; cfg < tb->n_configs; cfg++) {
                double v = s[cfg * nt];
                if (!taken[cfg] && !isnan(v) && (b == (size_t)-1 || v > s[b * nt])) {
                    b = cfg;
                }
            }
            if (b != (size_t)-1) {
                taken[b] = 1;
                list[n++] = b;
            }
        }
    }
    kb_free(used);
    kb_free(taken);
    return n;
}

/*
 * How well each similarity predicts performance similarity, over all task pairs: the target is
 * Kendall's tau between the two tasks' results on every configuration (tau_full). Reported as
 * Spearman correlations with tau_full of: minus the L1 meta-feature distance (scaled on all
 * tasks); minus the weighted L1 distance with weights learned on the other half of the tasks
 * (two-fold over tasks, so no pair's own tau is used to learn its weights); and tau measured
 * on only m random shared configurations (m = 5, 10, 20; mean over seeds), as a search sees
 * after m trials.
 */
static void similarity_quality(const table *tb, int json)
{
    size_t T = tb->n_tasks, d = tb->n_features, C = tb->n_configs;
    size_t n_pairs = T * (T - 1) / 2;
    double *tau = kb_malloc_array(T * T, sizeof *tau);
    double *z = kb_malloc_array(T * d, sizeof *z);
    double *pa = kb_malloc_array(n_pairs, sizeof *pa), *pb = kb_malloc_array(n_pairs, sizeof *pb);
    double *ya = kb_malloc_array(C, sizeof *ya), *yb = kb_malloc_array(C, sizeof *yb);
    size_t *perm = kb_malloc_array(C, sizeof *perm);
    double *w = kb_malloc_array(d, sizeof *w), *half = kb_malloc_array(T * T, sizeof *half);
    kb_error err = KB_ERROR_INIT;
    for (size_t a = 0; a < T; a++) {
        for (size_t b = 0; b < T; b++) {
            tau[a + b * T] = a == b ? 1.0 : kb_similarity_rank_agreement(
                tb->y + a * C, tb->y + b * C, C);
        }
    }
    memcpy(z, tb->mf, T * d * sizeof *z);
    kb_similarity_scaler sc;
    kb_similarity_scaler_fit(&sc, z, T, d, &err);
    kb_similarity_scaler_apply(&sc, z, T);
    kb_similarity_index ix;
    kb_similarity_index_build(&ix, z, T, d, NULL, &err);
    size_t p = 0;
    for (size_t a = 0; a < T; a++) {
        for (size_t b = a + 1; b < T; b++, p++) {
            pa[p] = -kb_similarity_distance(&ix, a, z + b * d, KB_SIMILARITY_L1, NULL);
            pb[p] = tau[a + b * T];
        }
    }
    double r_meta = kb_stats_spearman(pa, pb, n_pairs);
    kb_similarity_index_release(&ix);

    /* learned weights, two-fold over tasks: pairs within fold f use weights from fold 1-f */
    p = 0;
    double *pl = kb_malloc_array(n_pairs, sizeof *pl), *tl = kb_malloc_array(n_pairs, sizeof *tl);
    size_t n_learned = 0;
    for (int fold = 0; fold < 2; fold++) {
        for (size_t a = 0; a < T * T; a++) {
            half[a] = NAN;
        }
        for (size_t a = 0; a < T; a++) {
            for (size_t b = 0; b < T; b++) {
                if (a != b && (int)(a % 2) != fold && (int)(b % 2) != fold) {
                    half[a + b * T] = 1.0 - tau[a + b * T];
                }
            }
        }
        if (kb_similarity_learn_weights(w, z, T, d, half, 300, &err) != KB_OK) {
            continue;
        }
        kb_similarity_index_build(&ix, z, T, d, w, &err);
        for (size_t a = 0; a < T; a++) {
            for (size_t b = a + 1; b < T; b++) {
                if ((int)(a % 2) == fold && (int)(b % 2) == fold) {
                    pl[n_learned] = -kb_similarity_distance(&ix, a, z + b * d, KB_SIMILARITY_L1,
                                                            NULL);
                    tl[n_learned++] = tau[a + b * T];
                }
            }
        }
        kb_similarity_index_release(&ix);
    }
    double r_learned = kb_stats_spearman(pl, tl, n_learned);

    static const size_t ms[3] = {5, 10, 20};
    double r_perf[3];
    for (int mi = 0; mi < 3; mi++) {
        double acc = 0;
        int seeds = 10;
        for (int s = 0; s < seeds; s++) {
            kb_rng rng;
            kb_rng_seed(&rng, 77 + (uint64_t)s);
            for (size_t i = 0; i < C; i++) {
                perm[i] = i;
            }
            kb_rng_shuffle(&rng, perm, C);
            p = 0;
            for (size_t a = 0; a < T; a++) {
                for (size_t b = a + 1; b < T; b++, p++) {
                    for (size_t i = 0; i < ms[mi]; i++) {
                        ya[i] = tb->y[a * C + perm[i]];
                        yb[i] = tb->y[b * C + perm[i]];
                    }
                    pa[p] = kb_similarity_rank_agreement(ya, yb, ms[mi]);
                    pb[p] = tau[a + b * T];
                }
            }
            acc += kb_stats_spearman(pa, pb, n_pairs);
        }
        r_perf[mi] = acc / seeds;
    }
    if (json) {
        printf("{\"schema\":\"kb.bench.similarity/1\",\"pairs\":%zu,\"meta_l1\":%.4f,"
               "\"meta_l1_learned\":%.4f,\"perf_tau_5\":%.4f,\"perf_tau_10\":%.4f,"
               "\"perf_tau_20\":%.4f}\n",
               n_pairs, r_meta, r_learned, r_perf[0], r_perf[1], r_perf[2]);
    } else {
        printf("\nhow well a similarity predicts performance similarity (Spearman with the "
               "tau of full result vectors, %zu task pairs):\n", n_pairs);
        printf("  meta-features, L1 (negated distance)          %6.3f\n", r_meta);
        printf("  meta-features, learned weights (2-fold tasks) %6.3f\n", r_learned);
        printf("  performance tau on  5 shared configurations   %6.3f\n", r_perf[0]);
        printf("  performance tau on 10 shared configurations   %6.3f\n", r_perf[1]);
        printf("  performance tau on 20 shared configurations   %6.3f\n", r_perf[2]);
    }
    kb_similarity_scaler_release(&sc);
    kb_free(tau);
    kb_free(z);
    kb_free(pa);
    kb_free(pb);
    kb_free(ya);
    kb_free(yb);
    kb_free(perm);
    kb_free(w);
    kb_free(half);
    kb_free(pl);
    kb_free(tl);
}

int main(int argc, char **argv)
{
    const char *tpath = NULL, *mpath = NULL, *objective = "accuracy";
    long def = 0;
    int maximize = 1, seeds = 100, json = 0, tune = 1, per_task = 0, old_weighting = 0;
    size_t signal_zero = 0, signal_fallback = 0, check_signal = 0, check_first = 0;
    int check = 1, first_rule = 0;
    double check_model_sum = 0, check_uniform_sum = 0;
    kb_recommend_check ck = {0};
    size_t tune_tasks = 16;
    double floor_w = 0.05, hedge_fixed = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--table") == 0 && i + 1 < argc) {
            tpath = argv[++i];
        } else if (strcmp(argv[i], "--metafeatures") == 0 && i + 1 < argc) {
            mpath = argv[++i];
        } else if (strcmp(argv[i], "--objective") == 0 && i + 1 < argc) {
            objective = argv[++i];
        } else if (strcmp(argv[i], "--default") == 0 && i + 1 < argc) {
            def = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) {
            seeds = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--floor") == 0 && i + 1 < argc) {
            floor_w = atof(argv[++i]);
            tune = 0;
            old_weighting = 1;
        } else if (strcmp(argv[i], "--hedge") == 0 && i + 1 < argc) {
            hedge_fixed = atof(argv[++i]);
        } else if (strcmp(argv[i], "--tune-tasks") == 0 && i + 1 < argc) {
            tune_tasks = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--grid-weighting") == 0) {
            old_weighting = 1;
        } else if (strcmp(argv[i], "--no-check") == 0) {
            check = 0;
        } else if (strcmp(argv[i], "--first-check") == 0) {
            first_rule = 1;
        } else if (strcmp(argv[i], "--per-task") == 0) {
            per_task = 1;
        } else if (strcmp(argv[i], "--learned") == 0) {
            learned = 1;
        } else if (strcmp(argv[i], "--minimize") == 0) {
            maximize = 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else {
            fprintf(stderr, "usage: bench_recommend --table T.csv --metafeatures M.csv "
                            "[--objective NAME] [--default CONFIG] [--minimize] [--seeds N] "
                            "[--hedge B] [--tune-tasks N] [--no-check] [--first-check] [--grid-weighting [--floor W] "
                            "[--learned]] [--per-task] [--json]\n");
            return 2;
        }
    }
    if (tpath == NULL || mpath == NULL) {
        fprintf(stderr, "bench_recommend: --table and --metafeatures are required\n");
        return 2;
    }
    table tb = {0};
    kb_dataset dt = {0}, dm = {0};
    if (load(&tb, &dt, &dm, tpath, mpath, objective) != 0) {
        return 1;
    }
    if (tb.n_tasks > KB_RECOMMEND_MODEL_MAX_TASKS + 1) {
        fprintf(stderr, "bench_recommend: warning: %zu tasks: kb recommend lets its similarity "
                        "model weigh only the %d nearest, which this benchmark does not "
                        "mirror\n", tb.n_tasks - 1, KB_RECOMMEND_MODEL_MAX_TASKS);
    }
    size_t nt = tb.n_tasks - 1, C = tb.n_configs, kmax = ks[N_K - 1];
    ctx c = {&tb, maximize, kb_malloc_array(nt * C, sizeof(double)),
             kb_malloc_array(nt, sizeof(size_t))};
    double sum[N_METHODS][N_K] = {{0}};
    double *dist = kb_malloc_array(nt, sizeof *dist), *w = kb_malloc_array(nt, sizeof *w);
    double *pair = kb_malloc_array(nt * nt, sizeof *pair);
    double *mdist = kb_malloc_array(nt, sizeof *mdist);
    double *mpair = kb_malloc_array(nt * nt, sizeof *mpair);
    double *subpair = kb_malloc_array(nt * nt, sizeof *subpair);
    double *sub = kb_malloc_array(nt * C, sizeof *sub);
    size_t *near = kb_malloc_array(nt, sizeof *near);
    double bw_sum = 0, floor_sum = 0, hedge_sum = 0;
    double *ones = kb_malloc_array(nt, sizeof *ones);
    size_t *list = kb_malloc_array(C, sizeof *list), *perm = kb_malloc_array(C, sizeof *perm);
    kb_recommend_item *items = kb_malloc_array(kmax, sizeof *items);
    for (size_t r = 0; r < nt; r++) {
        ones[r] = 1.0;
    }
    kb_error err = KB_ERROR_INIT;
    for (size_t held = 0; held < tb.n_tasks; held++) {
        fill_scores(&c, held);
        distances(&c, held, dist, pair, mdist, mpair);
        size_t n;
        for (size_t ki = 0; ki < N_K; ki++) {
            size_t d1 = (size_t)def;
            sum[M_DEFAULT][ki] += regret(&tb, held, &d1, 1, maximize);
        }
        kb_rng rng;
        kb_rng_seed(&rng, 1000 + held);
        for (int s = 0; s < seeds; s++) {
            for (size_t i = 0; i < C; i++) {
                perm[i] = i;
            }
            kb_rng_shuffle(&rng, perm, C);
            for (size_t ki = 0; ki < N_K; ki++) {
                sum[M_RANDOM][ki] += regret(&tb, held, perm, ks[ki], maximize) / seeds;
            }
        }
        if (kb_recommend_rank(items, &n, c.scores, NULL, nt, C, ones, kmax, NULL, &err) != KB_OK) {
            return die("portfolio", &err);
        }
        list_from_items(list, items, n);
        for (size_t ki = 0; ki < N_K; ki++) {
            sum[M_PORTFOLIO][ki] += regret(&tb, held, list, ks[ki] < n ? ks[ki] : n, maximize);
        }
        n = nearest5(&c, dist, list, kmax);
        for (size_t ki = 0; ki < N_K; ki++) {
            sum[M_NEAREST5][ki] += regret(&tb, held, list, ks[ki] < n ? ks[ki] : n, maximize);
        }
        kb_recommend_weighting wt = {1.0, floor_w, 0, hedge_fixed >= 0 ? hedge_fixed : 1.0};
        kb_recommend_opts ro = KB_RECOMMEND_OPTS_INIT;
        if (old_weighting) {
            /* the ranking before 2026-11-28 (R3): weighting chosen by leave-one-out on a grid,
             * fitted on the tune_tasks nearest tasks only */
            size_t nl = tune_tasks < nt ? tune_tasks : nt;
            for (size_t r = 0; r < nt; r++) {
                near[r] = r;
            }
            if (nl < nt) {
                kb_recommend_nearest(near, dist, nt, nl);
            }
            for (size_t a = 0; a < nl; a++) {
                for (size_t cfg = 0; cfg < C; cfg++) {
                    sub[a + cfg * nl] = c.scores[near[a] + cfg * nt];
                }
                for (size_t b = 0; b < nl; b++) {
                    subpair[a + b * nl] = pair[near[a] + near[b] * nt];
                }
            }
            if (tune && nl >= 3 &&
                kb_recommend_tune(&wt, sub, subpair, nl, C, kmax, &err) != KB_OK) {
                return die("tuning the weights", &err);
            }
            if (hedge_fixed >= 0) {
                wt.hedge = hedge_fixed;
            }
            kb_recommend_weights(w, dist, nt, wt.bandwidth, wt.floor);
        } else {
            /* as kb recommend (kb_recommend_weigh): the similarity model fitted on the
             * tune_tasks nearest tasks by its own distance, its weights over all, the hedge by
             * its leave-one-out on those nearest, checked on the KB_RECOMMEND_CHECK_MAX_TASKS
             * nearest (no signal: uniform weights, hedge 1) */
            kb_recommend_weigh_opts wo = KB_RECOMMEND_WEIGH_OPTS_INIT;
            wo.n_tune = tune_tasks;
            wo.n_check = check ? KB_RECOMMEND_CHECK_MAX_TASKS : 0;
            wo.hedge = hedge_fixed >= 0 ? KB_RECOMMEND_WEIGH_HEDGE_NONE
                                        : KB_RECOMMEND_WEIGH_HEDGE_LOO;
            wo.order_all = 0;
            wo.first_rule = first_rule;
            kb_recommend_weighed wd;
            if (kb_recommend_weigh(w, &wd, c.scores, mpair, mdist, nt, C, kmax, &wo, &err) !=
                KB_OK) {
                return die("the similarity model's weights", &err);
            }
            signal_fallback += wd.weights_signal == 0 && wd.fitted_signal > 0;
            if (check) {
                ck = wd.check;
                ro.first = wd.first; /* --first-check: the rule's first pick, as kb recommend */
                check_first += wd.first != SIZE_MAX;
                check_model_sum += ck.model_regret;
                check_uniform_sum += ck.uniform_regret;
                check_signal += (size_t)ck.signal;
            }
            wt.bandwidth = wd.model.bandwidth;
            wt.floor = wd.model.signal; /* reported as the mean signal below */
            wt.hedge = hedge_fixed >= 0 ? hedge_fixed : wd.model.hedge;
            signal_zero += wd.model.signal == 0;
        }
        bw_sum += wt.bandwidth;
        floor_sum += old_weighting && wt.floor > 1 ? 1 : wt.floor;
        hedge_sum += wt.hedge;
        ro.hedge = wt.hedge;
        if (kb_recommend_rank(items, &n, c.scores, NULL, nt, C, w, kmax, &ro, &err) != KB_OK) {
            return die("kb", &err);
        }
        list_from_items(list, items, n);
        for (size_t ki = 0; ki < N_K; ki++) {
            double rk = regret(&tb, held, list, ks[ki] < n ? ks[ki] : n, maximize);
            sum[M_KB][ki] += rk;
            if (per_task) {
                fprintf(stderr, "%s%s %.3f", ki ? "" : tb.names[held], ki ? "" : " kb", rk);
            }
        }
        if (per_task) {
            fprintf(stderr, "  bandwidth %.2f %s %.3g hedge %.2f", wt.bandwidth,
                    old_weighting ? "floor" : "signal", wt.floor, wt.hedge);
            if (check && !old_weighting) {
                fprintf(stderr, "  check model %.4f uniform %.4f (first %.4f %.4f)",
                        ck.model_regret, ck.uniform_regret, ck.model_first, ck.uniform_first);
            }
            fprintf(stderr, "\n");
        }
    }
    if (json) {
        printf("{\"schema\":\"kb.bench.recommend/1\",\"tasks\":%zu,\"configs\":%zu,\"methods\":{",
               tb.n_tasks, C);
        for (int m = 0; m < N_METHODS; m++) {
            printf("%s\"%s\":[", m ? "," : "", method_names[m]);
            for (size_t ki = 0; ki < N_K; ki++) {
                printf("%s%.4f", ki ? "," : "", sum[m][ki] / tb.n_tasks);
            }
            printf("]");
        }
        printf("}}\n");
    } else {
        printf("leave-one-task-out over %zu tasks x %zu configurations: mean normalised regret\n",
               tb.n_tasks, C);
        printf("%-20s %8s %8s %8s %8s\n", "method", "@1", "@3", "@5", "@10");
        for (int m = 0; m < N_METHODS; m++) {
            printf("%-20s", method_names[m]);
            for (size_t ki = 0; ki < N_K; ki++) {
                printf(" %8.3f", sum[m][ki] / tb.n_tasks);
            }
            printf("\n");
        }
    }
    kb_free(c.scores);
    kb_free(c.kb_rows);
    if (!json && old_weighting) {
        printf("kb's weighting chosen by inner leave-one-out: mean bandwidth %.2f, mean floor "
               "%.3f (floors above 1 count as 1, i.e. uniform), mean hedge %.3f\n",
               bw_sum / tb.n_tasks, floor_sum / tb.n_tasks, hedge_sum / tb.n_tasks);
    } else if (!json) {
        printf("kb's similarity model: mean bandwidth %.2f, mean signal %.3f (0 on %zu of %zu "
               "held-out tasks: uniform weights; %zu of them not positive definite), mean hedge %.3f\n",
               bw_sum / tb.n_tasks, floor_sum / tb.n_tasks, signal_zero, tb.n_tasks, signal_fallback,
               hedge_sum / tb.n_tasks);
    }
    if (!json && !old_weighting && check) {
        printf("whole-knowledge-base check: the model beat uniform weights for %zu of %zu "
               "held-out tasks (mean leave-one-out regret over K = 1..10: model %.4f, uniform "
               "%.4f); uniform weights, hedge 1 for the others",
               check_signal, tb.n_tasks, check_model_sum / tb.n_tasks,
               check_uniform_sum / tb.n_tasks);
        if (first_rule) {
            printf("; the first pick by uniform weights for %zu of the %zu\n", check_first,
                   check_signal);
        } else {
            printf("\n");
        }
    }
    similarity_quality(&tb, json);
    kb_free(dist);
    kb_free(pair);
    kb_free(mdist);
    kb_free(mpair);
    kb_free(subpair);
    kb_free(sub);
    kb_free(near);
    kb_free(w);
    kb_free(ones);
    kb_free(list);
    kb_free(perm);
    kb_free(items);
    kb_free(tb.y);
    kb_free(tb.mf);
    kb_dataset_release(&dt);
    kb_dataset_release(&dm);
    return 0;
}
