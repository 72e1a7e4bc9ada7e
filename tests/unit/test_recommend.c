/*
 * engine/recommend: normalisation, weighted prediction with uncertainty, hedged lists, tuning,
 * and the similarity model, whose fit and weights match a textbook numpy Gaussian process
 * (tests/ref/recommend_model_ref.py, output in tests/data/recommend_model_ref.txt), as does its
 * whole-knowledge-base check.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/core/rng.h"
#include "engine/recommend.h"
#include "refdata.h"

static void test_normalize_respects_direction_and_flat_tasks(void)
{
    double y[4] = {0.5, NAN, 0.9, 0.7};
    kb_recommend_normalize(y, 4, 1);
    CHECK(y[0] == 0.0 && isnan(y[1]) && y[2] == 1.0 && fabs(y[3] - 0.5) < 1e-12);
    double l[3] = {2, 4, 3};
    kb_recommend_normalize(l, 3, 0);
    CHECK(l[0] == 1.0 && l[1] == 0.0 && l[2] == 0.5);
    double f[2] = {7, 7};
    kb_recommend_normalize(f, 2, 1);
    CHECK(f[0] == 1.0 && f[1] == 1.0);
}

static void test_rank_mean_sd_and_hedging(void)
{
    /*
     * 2 tasks x 3 configs (column-major: scores[t + c*2]).
     * config 0: 1.0 on task 0, 0.0 on task 1   mean 0.5
     * config 1: 0.6 on both                    mean 0.6  <- first pick
     * config 2: 0.0 on task 0, 1.0 on task 1   mean 0.5
     * after config 1, adding config 0 gives (1 + 0.6)/2 = 0.8, config 2 the same 0.8:
     * tie -> lower index 0; then config 2 lifts task 1 to 1: list value 1.
     */
    double s[6] = {1.0, 0.0, 0.6, 0.6, 0.0, 1.0};
    double w[2] = {1, 1};
    kb_recommend_item it[3];
    size_t n;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_recommend_rank(it, &n, s, NULL, 2, 3, w, 3, NULL, &err), err);
    CHECK(n == 3 && it[0].config == 1 && it[1].config == 0 && it[2].config == 2);
    CHECK_NEAR(it[0].mean, 0.6, 0, 1e-12);
    CHECK_NEAR(it[0].sd, 0.0, 0, 1e-12);
    CHECK_NEAR(it[1].sd, 0.5, 0, 1e-12);
    CHECK_NEAR(it[1].list_value, 0.8, 0, 1e-12);
    CHECK_NEAR(it[2].list_value, 1.0, 0, 1e-12);
    /* a weight on task 1 makes config 2 the first pick */
    double w2[2] = {0.1, 1.0};
    CHECK_OK(kb_recommend_rank(it, &n, s, NULL, 2, 3, w2, 1, NULL, &err), err);
    CHECK(n == 1 && it[0].config == 2);
    CHECK_NEAR(it[0].mean, 1.0 / 1.1, 1e-12, 0);
}

static void test_rank_greedy_pick_differs_from_independent_pick(void)
{
    /*
     * 2 tasks, equal weights, 3 configs (scores[t + c*2]):
     * config 0: 1.0, 0.4   mean 0.7    <- first pick
     * config 1: 0.9, 0.45  mean 0.675  <- second by mean: what independent picks list next
     * config 2: 0.0, 1.0   mean 0.5
     * after config 0 the list's expected best (mean over tasks of the best so far) is 0.7;
     * adding config 1 makes it (1 + 0.45)/2 = 0.725, adding config 2 makes it (1 + 1)/2 = 1:
     * the greedy portfolio (hedge 1) takes config 2, which covers task 1. Hedge beta keys are
     * beta * list value + (1 - beta) * mean: at 0.5, 0.7 for config 1 and 0.75 for config 2;
     * at 0.25, 0.6875 and 0.625; at 0, the means.
     */
    double s[6] = {1.0, 0.4, 0.9, 0.45, 0.0, 1.0};
    double w[2] = {1, 1};
    kb_recommend_item it[3];
    size_t n;
    kb_error err = KB_ERROR_INIT;
    kb_recommend_opts o = KB_RECOMMEND_OPTS_INIT;
    CHECK(o.hedge == 1.0);
    CHECK_OK(kb_recommend_rank(it, &n, s, NULL, 2, 3, w, 3, &o, &err), err);
    CHECK(n == 3 && it[0].config == 0 && it[1].config == 2 && it[2].config == 1);
    CHECK_NEAR(it[0].list_value, 0.7, 0, 1e-12);
    CHECK_NEAR(it[1].list_value, 1.0, 0, 1e-12);
    CHECK_NEAR(it[2].list_value, 1.0, 0, 1e-12);
    /* each listed configuration keeps its own prediction and uncertainty */
    CHECK_NEAR(it[1].mean, 0.5, 0, 1e-12);
    CHECK_NEAR(it[1].sd, 0.5, 0, 1e-12);
    CHECK_NEAR(it[2].mean, 0.675, 0, 1e-12);
    CHECK_NEAR(it[2].sd, 0.225, 0, 1e-12);
    o.hedge = 0.5;
    CHECK_OK(kb_recommend_rank(it, &n, s, NULL, 2, 3, w, 3, &o, &err), err);
    CHECK(n == 3 && it[0].config == 0 && it[1].config == 2 && it[2].config == 1);
    o.hedge = 0.25;
    CHECK_OK(kb_recommend_rank(it, &n, s, NULL, 2, 3, w, 3, &o, &err), err);
    CHECK(n == 3 && it[0].config == 0 && it[1].config == 1 && it[2].config == 2);
    CHECK_NEAR(it[1].list_value, 0.725, 0, 1e-12);
    o.hedge = 0.0;
    CHECK_OK(kb_recommend_rank(it, &n, s, NULL, 2, 3, w, 3, &o, &err), err);
    CHECK(n == 3 && it[0].config == 0 && it[1].config == 1 && it[2].config == 2);
    /* sorting by mean (diversify 0) lists the same */
    o.diversify = 0;
    o.hedge = 1.0;
    CHECK_OK(kb_recommend_rank(it, &n, s, NULL, 2, 3, w, 3, &o, &err), err);
    CHECK(n == 3 && it[0].config == 0 && it[1].config == 1 && it[2].config == 2);
    o.diversify = 1;
    o.hedge = 1.5;
    CHECK_CODE(kb_recommend_rank(it, &n, s, NULL, 2, 3, w, 3, &o, &err), KB_EINVAL);
    /* a caller built against version 1 options gets the portfolio */
    o.version = 1;
    CHECK_OK(kb_recommend_rank(it, &n, s, NULL, 2, 3, w, 3, &o, &err), err);
    CHECK(n == 3 && it[1].config == 2);
}

static void test_rank_breaks_list_value_ties_by_mean(void)
{
    /* one task: after its best config, every other adds nothing; next is the better mean */
    double s[3] = {1.0, 0.0, 0.7};
    double w[1] = {1};
    kb_recommend_item it[3];
    size_t n;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_recommend_rank(it, &n, s, NULL, 1, 3, w, 3, NULL, &err), err);
    CHECK(n == 3 && it[0].config == 0 && it[1].config == 2 && it[2].config == 1);
}

static void test_rank_model_variance_and_unknown_scores(void)
{
    double s[4] = {0.5, NAN, NAN, NAN};
    double v[4] = {0.04, 0, 0, 0};
    double w[2] = {1, 1};
    kb_recommend_item it[2];
    size_t n;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_recommend_rank(it, &n, s, v, 2, 2, w, 2, NULL, &err), err);
    CHECK(n == 1 && it[0].config == 0); /* config 1 has no score anywhere */
    CHECK_NEAR(it[0].sd, 0.2, 1e-12, 0);
    CHECK_NEAR(it[0].coverage, 0.5, 0, 1e-12);
    double zero[2] = {0, 0};
    CHECK_CODE(kb_recommend_rank(it, &n, s, v, 2, 2, zero, 2, NULL, &err), KB_EINVAL);
}

static void test_weights_decay_with_distance(void)
{
    double d[3] = {0, 1, INFINITY}, w[3];
    kb_recommend_weights(w, d, 3, 1.0, 0.1);
    /* median of the finite distances is 0.5 */
    CHECK_NEAR(w[0], 1.1, 1e-12, 0);
    CHECK_NEAR(w[1], 0.1 + exp(-4.0), 1e-12, 0);
    CHECK_NEAR(w[2], 0.1, 1e-12, 0);
}

static void test_tune_prefers_local_weights_when_neighbours_agree(void)
{
    /*
     * 6 tasks in two clusters (0-2 near each other, 3-5 near each other). Cluster A's best
     * config is 0, cluster B's is 1: local weights predict each task's best, uniform does not.
     */
    enum { T = 6, C = 2 };
    double s[T * C], dist[T * T];
    for (int t = 0; t < T; t++) {
        s[t + 0 * T] = t < 3 ? 1.0 : 0.0;
        s[t + 1 * T] = t < 3 ? 0.0 : 1.0;
        for (int u = 0; u < T; u++) {
            dist[t + u * T] = (t < 3) == (u < 3) ? 0.1 : 5.0;
        }
    }
    kb_recommend_weighting wt;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_recommend_tune(&wt, s, dist, T, C, 1, &err), err);
    CHECK(wt.floor < 0.5);
    CHECK_NEAR(wt.loo_regret, 0.0, 0, 1e-12);
    CHECK(wt.hedge == 1.0); /* one pick: every hedge ties, and ties keep the portfolio */
}

static void test_backbones_rank_by_weighted_finetune_results(void)
{
    /*
     * 3 tasks at distances 0, 1 and 1e9 (median 1, bandwidth 1, floor 0: weights 1, e^-1, 0).
     * Backbone 0 beats backbone 1 on task 0, loses on task 1; task 2 (weight 0) is ignored.
     * Backbone 2 has no fine-tune result: it ranks after both on its source similarity.
     */
    double res[9] = {0.9, 0.8, 0.99, 0.7, 0.85, NAN, NAN, NAN, NAN};
    double dist[3] = {0, 1, 1e9}, src[3] = {NAN, 3.0, 0.5};
    kb_recommend_weighting wt = {1.0, 0.0, 0, 1.0};
    kb_recommend_backbone out[3];
    size_t n;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_recommend_backbones(out, &n, res, dist, 3, 3, 1, src, NULL, &wt, 3, NULL, &err),
             err);
    double e1 = exp(-1.0), W = 1 + e1;
    CHECK(n == 3 && out[0].backbone == 0 && out[1].backbone == 1 && out[2].backbone == 2);
    CHECK(out[0].basis == KB_RECOMMEND_BASIS_FINETUNE && out[2].basis == KB_RECOMMEND_BASIS_SOURCE);
    CHECK_NEAR(out[0].relative, 1 / W, 1e-12, 0);
    CHECK_NEAR(out[1].relative, e1 / W, 1e-12, 0);
    CHECK_NEAR(out[0].score, out[0].relative, 1e-15, 0);
    double m = (0.9 + e1 * 0.8) / W;
    CHECK_NEAR(out[0].expected, m, 1e-12, 0);
    double n_eff = W * W / (1 + e1 * e1);
    double spread = ((0.9 - m) * (0.9 - m) + e1 * (0.8 - m) * (0.8 - m)) / W;
    CHECK_NEAR(out[0].expected_sd, sqrt(spread * (1 + 1 / n_eff)), 1e-12, 0);
    CHECK(out[0].n_tasks == 2);
    CHECK_NEAR(out[0].n_eff, n_eff, 1e-12, 0);
    CHECK(isnan(out[0].source_similarity) && isnan(out[0].transfer));
    CHECK(isnan(out[2].relative) && isnan(out[2].expected) && isnan(out[2].expected_sd));
    CHECK(out[2].n_tasks == 0 && out[2].n_eff == 0);
    CHECK_NEAR(out[2].source_similarity, exp(-0.25), 1e-12, 0);
    CHECK_NEAR(out[2].score, exp(-0.25), 1e-12, 0);
    CHECK_NEAR(out[1].source_similarity, exp(-9.0), 1e-12, 0);

    /* transferability (lambda 0.5) lifts backbone 1: 0.5 e1/W + 0.5 vs 0.5/W; backbone 2
     * (no fine-tune runs) is keyed by its normalised score alone, 0.5, and with every backbone
     * scored it is no longer ranked after the fine-tuned ones */
    double tr[3] = {0, 10, 5};
    CHECK_OK(kb_recommend_backbones(out, &n, res, dist, 3, 3, 1, src, tr, &wt, 3, NULL, &err),
             err);
    CHECK(n == 3 && out[0].backbone == 1 && out[1].backbone == 2 && out[2].backbone == 0);
    CHECK_NEAR(out[0].score, 0.5 * e1 / W + 0.5, 1e-12, 0);
    CHECK_NEAR(out[1].score, 0.5, 1e-12, 0);
    CHECK_NEAR(out[2].score, 0.5 / W, 1e-12, 0);
    CHECK(out[0].transfer == 10 && out[1].basis == KB_RECOMMEND_BASIS_SOURCE);
    /* backbone 2 unscored: evidence before a guess again, so it ranks last */
    tr[2] = NAN;
    CHECK_OK(kb_recommend_backbones(out, &n, res, dist, 3, 3, 1, src, tr, &wt, 3, NULL, &err),
             err);
    CHECK(n == 3 && out[0].backbone == 1 && out[1].backbone == 0 && out[2].backbone == 2);
    CHECK_NEAR(out[2].score, exp(-0.25), 1e-12, 0);
    tr[2] = 5;
    kb_recommend_backbone_opts o = KB_RECOMMEND_BACKBONE_OPTS_INIT;
    o.transfer_weight = 2;
    CHECK_CODE(kb_recommend_backbones(out, &n, res, dist, 3, 3, 1, src, tr, &wt, 2, &o, &err),
               KB_EINVAL);
}

static void test_backbones_fall_back_on_source_similarity(void)
{
    /* no fine-tune runs at all: h = median source distance 1.5; unknown source last */
    double src[3] = {2.0, NAN, 1.0};
    kb_recommend_weighting wt = {1.0, 0.1, 0, 1.0};
    kb_recommend_backbone out[3];
    size_t n;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_recommend_backbones(out, &n, NULL, NULL, 0, 3, 1, src, NULL, &wt, 3, NULL, &err),
             err);
    CHECK(n == 3 && out[0].backbone == 2 && out[1].backbone == 0 && out[2].backbone == 1);
    CHECK_NEAR(out[0].source_similarity, exp(-(1 / 1.5) * (1 / 1.5)), 1e-12, 0);
    CHECK_NEAR(out[1].source_similarity, exp(-(2 / 1.5) * (2 / 1.5)), 1e-12, 0);
    CHECK(isnan(out[2].source_similarity) && out[2].score == 0);
    /* minimising: a backbone that fine-tunes to a lower loss on equal relative standing wins */
    double res[2] = {0.3, 0.2};
    double dist[1] = {1.0};
    CHECK_OK(kb_recommend_backbones(out, &n, res, dist, 1, 2, 0, NULL, NULL, &wt, 2, NULL, &err),
             err);
    CHECK(n == 2 && out[0].backbone == 1 && out[0].relative == 1.0 && out[1].relative == 0.0);
    CHECK(isnan(out[0].expected_sd));
}

/* One candidate's leave-one-out regret, written plainly with kb_recommend_rank */
static double brute_loo(const double *s, const double *dist, size_t T, size_t C, size_t k,
                        double bw, double fl, double hedge)
{
    double total = 0, sub[16 * 16], d[16], w[16];
    kb_recommend_item it[16];
    kb_recommend_opts o = KB_RECOMMEND_OPTS_INIT;
    o.hedge = hedge;
    for (size_t t = 0; t < T; t++) {
        size_t m = 0;
        for (size_t r = 0; r < T; r++) {
            if (r != t) {
                for (size_t c = 0; c < C; c++) {
                    sub[m + c * (T - 1)] = s[r + c * T];
                }
                d[m++] = dist[t + r * T];
            }
        }
        kb_recommend_weights(w, d, m, bw, fl);
        size_t n;
        kb_recommend_rank(it, &n, sub, NULL, m, C, w, k, &o, NULL);
        double b = 0, sum = 0;
        for (size_t i = 0; i < k; i++) {
            if (i < n && !isnan(s[t + it[i].config * T]) && s[t + it[i].config * T] > b) {
                b = s[t + it[i].config * T];
            }
            sum += 1 - b;
        }
        total += sum / (double)k;
    }
    return total / (double)T;
}

/* kb_recommend_tune's two steps: the weighting at hedge 1, then the hedge at that weighting */
static double brute_tune(double *bw_out, double *floor_out, double *hedge_out, const double *s,
                         const double *dist, size_t T, size_t C, size_t k)
{
    static const double bws[] = {0.25, 0.5, 1.0, 2.0};
    static const double floors[] = {0.0, 0.02, 0.1, 0.5, 1e6};
    static const double hedges[] = {1.0, 0.75, 0.5, 0.25, 0.0};
    double best = INFINITY;
    for (size_t bi = 0; bi < 4; bi++) {
        for (size_t fi = 0; fi < 5; fi++) {
            double r = brute_loo(s, dist, T, C, k, bws[bi], floors[fi], 1.0);
            if (r < best) {
                best = r;
                *bw_out = bws[bi];
                *floor_out = floors[fi];
            }
        }
    }
    *hedge_out = 1.0;
    for (size_t hi = 1; hi < 5; hi++) {
        double r = brute_loo(s, dist, T, C, k, *bw_out, *floor_out, hedges[hi]);
        if (r < best) {
            best = r;
            *hedge_out = hedges[hi];
        }
    }
    return best;
}

static void test_tune_matches_plain_grid_search(void)
{
    enum { T = 12, C = 15 };
    double s[T * C], dist[T * T], pt[T * 2];
    kb_rng rng;
    kb_rng_seed(&rng, 11);
    for (size_t t = 0; t < T; t++) {
        pt[2 * t] = kb_rng_uniform(&rng);
        pt[2 * t + 1] = kb_rng_uniform(&rng);
    }
    for (size_t t = 0; t < T; t++) {
        double row[C];
        for (size_t c = 0; c < C; c++) {
            /* tasks near each other prefer similar configurations; some results missing */
            row[c] = (c + t) % 7 == 0 ? NAN : sin(3 * pt[2 * t] + 0.4 * c) + 0.3 * kb_rng_uniform(&rng);
        }
        kb_recommend_normalize(row, C, 1);
        for (size_t c = 0; c < C; c++) {
            s[t + c * T] = row[c];
        }
        for (size_t u = 0; u < T; u++) {
            dist[t + u * T] = fabs(pt[2 * t] - pt[2 * u]) + fabs(pt[2 * t + 1] - pt[2 * u + 1]);
        }
    }
    for (size_t k = 1; k <= 10; k += 3) {
        kb_recommend_weighting wt;
        kb_error err = KB_ERROR_INIT;
        CHECK_OK(kb_recommend_tune(&wt, s, dist, T, C, k, &err), err);
        double bw = 0, fl = 0, hedge = 0;
        double want = brute_tune(&bw, &fl, &hedge, s, dist, T, C, k);
        CHECK_NEAR(wt.loo_regret, want, 1e-12, 1e-12);
        CHECK(wt.bandwidth == bw && wt.floor == fl && wt.hedge == hedge);
    }
}


/* The reference problem: 12 tasks x 15 configurations, one score missing, and a query. */
typedef struct model_ref {
    double *scores, *dist, *qdist, *fit, *alpha, *alpha_r3;
} model_ref;

enum { REF_T = 12, REF_C = 15 };

static int model_ref_load(model_ref *r)
{
    const char *path = check_data_path("recommend_model_ref.txt");
    size_t n[6];
    r->scores = refdata_get(path, "scores", &n[0]);
    r->dist = refdata_get(path, "dist", &n[1]);
    r->qdist = refdata_get(path, "query_dist", &n[2]);
    r->fit = refdata_get(path, "fit", &n[3]);
    r->alpha = refdata_get(path, "alpha", &n[4]);
    r->alpha_r3 = refdata_get(path, "alpha_r3", &n[5]);
    return r->scores != NULL && r->dist != NULL && r->qdist != NULL && r->fit != NULL &&
           r->alpha != NULL && r->alpha_r3 != NULL && n[0] == REF_T * REF_C &&
           n[1] == REF_T * REF_T && n[2] == REF_T && n[3] == 4 && n[4] == REF_T &&
           n[5] == REF_T;
}

static void model_ref_free(model_ref *r)
{
    free(r->scores);
    free(r->dist);
    free(r->qdist);
    free(r->fit);
    free(r->alpha);
    free(r->alpha_r3);
}

static void test_model_fit_and_weights_match_textbook_gp(void)
{
    model_ref r;
    CHECK(model_ref_load(&r));
    if (r.alpha_r3 == NULL) {
        model_ref_free(&r);
        return;
    }
    kb_recommend_model m;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_recommend_model_fit(&m, r.scores, r.dist, REF_T, REF_C, &err), err);
    CHECK(m.bandwidth == r.fit[0] && m.signal == r.fit[2]);
    CHECK_NEAR(m.length, r.fit[1], 1e-12, 0);
    CHECK(m.signal > 0 && m.hedge == 1.0 && isnan(m.loo_regret));
    double w[REF_T];
    CHECK_OK(kb_recommend_model_weights(w, &m, NULL, r.dist, r.qdist, REF_T, REF_C, NULL, 0, 0,
                                        &err),
             err);
    size_t n_neg = 0;
    for (size_t t = 0; t < REF_T; t++) {
        /* the posterior mean's weights, the negative ones dropped */
        CHECK_NEAR(w[t], r.alpha[t] > 0 ? r.alpha[t] : 0.0, 1e-9, 1e-12);
        n_neg += r.alpha[t] < 0;
    }
    CHECK(n_neg > 0); /* the clamp is exercised */
    double med = m.length / m.bandwidth;
    kb_recommend_model m3 = {0.5, 0.5 * med, 3.0, 1.0, NAN};
    CHECK_OK(kb_recommend_model_weights(w, &m3, NULL, r.dist, r.qdist, REF_T, REF_C, NULL, 0, 0,
                                        &err),
             err);
    for (size_t t = 0; t < REF_T; t++) {
        CHECK_NEAR(w[t], r.alpha_r3[t] > 0 ? r.alpha_r3[t] : 0.0, 1e-9, 1e-12);
    }
    model_ref_free(&r);
}

static void test_model_without_signal_weighs_uniformly(void)
{
    /* tasks that score every configuration alike: similarity cannot explain anything */
    enum { T = 6, C = 4 };
    double s[T * C], d[T * T], q[T], w[T];
    for (size_t t = 0; t < T; t++) {
        for (size_t c = 0; c < C; c++) {
            s[t + c * T] = (double)((c * 3) % C) / (C - 1);
        }
        for (size_t u = 0; u < T; u++) {
            d[t + u * T] = fabs((double)t - (double)u);
        }
        q[t] = (double)t + 0.5;
    }
    kb_recommend_model m;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_recommend_model_fit(&m, s, d, T, C, &err), err);
    CHECK(m.signal == 0.0 && m.bandwidth == 0.25);
    size_t inner[3] = {0, 2, 4};
    CHECK_OK(kb_recommend_model_weights(w, &m, s, d, q, T, C, inner, 3, 3, &err), err);
    for (size_t t = 0; t < T; t++) {
        CHECK_NEAR(w[t], 1.0 / T, 0, 1e-15);
    }
    CHECK(m.hedge == 1.0 && m.loo_regret == 0.0);
    /* fewer than 3 tasks: the uniform model without fitting */
    CHECK_OK(kb_recommend_model_fit(&m, s, d, 2, C, &err), err);
    CHECK(m.signal == 0.0 && m.bandwidth == 1.0);
}

static void test_model_falls_back_to_uniform_when_kernel_is_indefinite(void)
{
    /* not a metric: tasks 1 and 2 both at distance 0 from task 0, infinitely far apart */
    double d[9] = {0, 0, 0, 0, 0, INFINITY, 0, INFINITY, 0};
    double q[3] = {1, 1, 1}, w[3];
    kb_recommend_model m = {1.0, 1.0, 100.0, 1.0, NAN};
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_recommend_model_weights(w, &m, NULL, d, q, 3, 1, NULL, 0, 0, &err), err);
    CHECK(m.signal == 0.0);
    CHECK_NEAR(w[0], 1.0 / 3, 0, 1e-15);
    CHECK_NEAR(w[2], 1.0 / 3, 0, 1e-15);
    kb_recommend_model bad = {1.0, 1.0, -1.0, 1.0, NAN};
    CHECK_CODE(kb_recommend_model_weights(w, &bad, NULL, d, q, 3, 1, NULL, 0, 0, &err),
               KB_EINVAL);
}

/*
 * The hedge's leave-one-out, written plainly: each inner task's weights from a model on the
 * other tasks alone (no downdate), its list from kb_recommend_rank.
 */
static void test_model_hedge_matches_plain_leave_one_out(void)
{
    model_ref r;
    CHECK(model_ref_load(&r));
    if (r.alpha_r3 == NULL) {
        model_ref_free(&r);
        return;
    }
    enum { M = REF_T - 1, K = 10 };
    static const double hedges[5] = {0.0, 0.25, 0.5, 0.75, 1.0};
    kb_recommend_model m;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_recommend_model_fit(&m, r.scores, r.dist, REF_T, REF_C, &err), err);
    size_t inner[5] = {0, 3, 5, 8, 11};
    double total[5] = {0};
    for (size_t j = 0; j < 5; j++) {
        size_t i = inner[j];
        double sub[M * REF_C], d[M * M], q[M], w[M];
        for (size_t a = 0, o = 0; a < REF_T; a++) {
            if (a == i) {
                continue;
            }
            for (size_t c = 0; c < REF_C; c++) {
                sub[o + c * M] = r.scores[a + c * REF_T];
            }
            for (size_t b = 0, p = 0; b < REF_T; b++) {
                if (b != i) {
                    d[o + p++ * M] = r.dist[a + b * REF_T];
                }
            }
            q[o++] = r.dist[i + a * REF_T];
        }
        kb_recommend_model mi = m;
        CHECK_OK(kb_recommend_model_weights(w, &mi, NULL, d, q, M, REF_C, NULL, 0, 0, &err),
                 err);
        for (size_t hi = 0; hi < 5; hi++) {
            kb_recommend_opts o = KB_RECOMMEND_OPTS_INIT;
            o.hedge = hedges[hi];
            kb_recommend_item it[K];
            size_t n;
            CHECK_OK(kb_recommend_rank(it, &n, sub, NULL, M, REF_C, w, K, &o, &err), err);
            double b = 0, sum = 0;
            for (size_t k = 0; k < K; k++) {
                double v = k < n ? r.scores[i + it[k].config * REF_T] : NAN;
                b = !isnan(v) && v > b ? v : b;
                sum += 1 - b;
            }
            total[hi] += sum / K;
        }
    }
    size_t best = 4;
    for (size_t hi = 4; hi-- > 0;) {
        best = total[hi] < total[best] - 1e-12 ? hi : best;
    }
    double w[REF_T];
    CHECK_OK(kb_recommend_model_weights(w, &m, r.scores, r.dist, r.qdist, REF_T, REF_C, inner, 5,
                                        K, &err),
             err);
    CHECK(m.hedge == hedges[best]);
    CHECK_NEAR(m.loo_regret, total[best] / 5, 1e-9, 1e-12);
    model_ref_free(&r);
}

/*
 * The whole-knowledge-base check against the reference's plain version (each task's weights
 * from a GP conditioned on the others, the greedy list as a loop): the fitted model at hedge 1
 * and r = 3 at hedge 0.5; and a model without signal, whose weights are uniform: a tie, no
 * signal.
 */
static void test_model_check_matches_plain_leave_one_out(void)
{
    const char *path = check_data_path("recommend_model_ref.txt");
    size_t n1 = 0, n2 = 0;
    double *want_fit = refdata_get(path, "check_fit", &n1);
    double *want_r3 = refdata_get(path, "check_r3", &n2);
    model_ref r;
    CHECK(model_ref_load(&r) && want_fit != NULL && want_r3 != NULL && n1 == 4 && n2 == 4);
    if (r.alpha_r3 == NULL || want_fit == NULL || want_r3 == NULL) {
        model_ref_free(&r);
        free(want_fit);
        free(want_r3);
        return;
    }
    kb_recommend_model m;
    kb_recommend_check ck;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_recommend_model_fit(&m, r.scores, r.dist, REF_T, REF_C, &err), err);
    CHECK_OK(kb_recommend_model_check(&ck, &m, r.scores, r.dist, REF_T, REF_C, 10, &err), err);
    const double got[4] = {ck.model_regret, ck.uniform_regret, ck.model_first,
                           ck.uniform_first};
    for (size_t j = 0; j < 4; j++) {
        CHECK_NEAR(got[j], want_fit[j], 1e-9, 1e-12);
    }
    CHECK(ck.n_queries == REF_T && ck.signal == (want_fit[0] < want_fit[1]) &&
          ck.first_signal == (want_fit[2] < want_fit[3]));
    double med = m.length / m.bandwidth;
    kb_recommend_model m3 = {0.5, 0.5 * med, 3.0, 0.5, NAN};
    CHECK_OK(kb_recommend_model_check(&ck, &m3, r.scores, r.dist, REF_T, REF_C, 10, &err), err);
    CHECK_NEAR(ck.model_regret, want_r3[0], 1e-9, 1e-12);
    CHECK_NEAR(ck.uniform_regret, want_r3[1], 1e-9, 1e-12);
    CHECK_NEAR(ck.model_first, want_r3[2], 1e-9, 1e-12);
    CHECK_NEAR(ck.uniform_first, want_r3[3], 1e-9, 1e-12);
    CHECK(ck.signal == 1 && ck.first_signal == 1);
    /* no signal: the model's weights are the uniform ones, a tie */
    kb_recommend_model m0 = {1.0, med, 0.0, 1.0, NAN};
    CHECK_OK(kb_recommend_model_check(&ck, &m0, r.scores, r.dist, REF_T, REF_C, 10, &err), err);
    CHECK(ck.model_regret == ck.uniform_regret && ck.model_first == ck.uniform_first);
    CHECK_NEAR(ck.uniform_regret, want_fit[1], 1e-9, 1e-12);
    CHECK(ck.signal == 0 && ck.first_signal == 0);
    /* too few tasks: no evidence; a bad model is refused */
    CHECK_OK(kb_recommend_model_check(&ck, &m, r.scores, r.dist, 2, REF_C, 10, &err), err);
    CHECK(ck.n_queries == 0 && ck.signal == 0 && isnan(ck.model_regret));
    kb_recommend_model bad = m;
    bad.hedge = 2.0;
    CHECK_CODE(kb_recommend_model_check(&ck, &bad, r.scores, r.dist, REF_T, REF_C, 10, &err),
               KB_EINVAL);
    model_ref_free(&r);
    free(want_fit);
    free(want_r3);
}

/* opts.first: the caller's first item, the rest hedged around it. */
static void test_rank_with_a_fixed_first_item(void)
{
    /* the matrix of test_rank_mean_sd_and_hedging: config 1 first, then 0, then 2 */
    double s[6] = {1.0, 0.0, 0.6, 0.6, 0.0, 1.0};
    double w[2] = {1, 1};
    kb_recommend_item it[3];
    size_t n;
    kb_error err = KB_ERROR_INIT;
    kb_recommend_opts o = KB_RECOMMEND_OPTS_INIT;
    CHECK(o.first == SIZE_MAX);
    o.first = 2; /* config 2 first: task 1 at its best, so config 0 lifts task 0 to 1 */
    CHECK_OK(kb_recommend_rank(it, &n, s, NULL, 2, 3, w, 3, &o, &err), err);
    CHECK(n == 3 && it[0].config == 2 && it[1].config == 0 && it[2].config == 1);
    CHECK_NEAR(it[0].mean, 0.5, 0, 1e-12);
    CHECK_NEAR(it[0].list_value, 0.5, 0, 1e-12);
    CHECK_NEAR(it[1].list_value, 1.0, 0, 1e-12);
    /* out of range or below the coverage: ignored */
    o.first = 3;
    CHECK_OK(kb_recommend_rank(it, &n, s, NULL, 2, 3, w, 1, &o, &err), err);
    CHECK(n == 1 && it[0].config == 1);
    double u[6] = {1.0, 0.0, 0.6, 0.6, NAN, 1.0};
    o.first = 2;
    o.min_coverage = 0.75;
    CHECK_OK(kb_recommend_rank(it, &n, u, NULL, 2, 3, w, 1, &o, &err), err);
    CHECK(n == 1 && it[0].config == 1);
    /* an older caller's options (version 2) have no first item */
    kb_recommend_opts v2 = {2, 1, 0.0, 1.0, 2};
    CHECK_OK(kb_recommend_rank(it, &n, s, NULL, 2, 3, w, 1, &v2, &err), err);
    CHECK(n == 1 && it[0].config == 1);
}

/* Step by step as the callers composed it before kb_recommend_weigh: a stable order of the
 * tasks by query distance (all of them, or none when `order_all` is 0 and all are taken),
 * fit on the nl nearest, weights with the hedge's leave-one-out on them, the check on the nck
 * nearest, the fallbacks. */
static void weigh_by_steps(double *w, kb_recommend_weighed *out, const double *s,
                           const double *pair, const double *dist, size_t n, size_t nc,
                           size_t nl, size_t nck, int loo, int order_all, int first_rule,
                           size_t k_eval)
{
    size_t ord[32], fit[32], chk[32];
    double sub[32 * 32], sp[32 * 32], ones[32];
    kb_error err = KB_ERROR_INIT;
    for (size_t a = 0; a < n; a++) { /* a's place: the tasks before it, ties to the lower */
        size_t before = 0;
        for (size_t b = 0; b < n; b++) {
            before += dist[b] < dist[a] || (dist[b] == dist[a] && b < a);
        }
        ord[before] = a;
    }
    for (size_t a = 0; a < n; a++) {
        fit[a] = nl < n || order_all ? ord[a] : a;
        chk[a] = nck < n || order_all ? ord[a] : a;
    }
    for (size_t a = 0; a < nl; a++) {
        for (size_t j = 0; j < nc; j++) {
            sub[a + j * nl] = s[fit[a] + j * n];
        }
        for (size_t b = 0; b < nl; b++) {
            sp[a + b * nl] = pair[fit[a] + fit[b] * n];
        }
    }
    CHECK_OK(kb_recommend_model_fit(&out->model, sub, sp, nl, nc, &err), err);
    out->fitted_signal = out->model.signal;
    CHECK_OK(kb_recommend_model_weights(w, &out->model, s, pair, dist, n, nc, fit,
                                        loo && nl >= 3 ? nl : 0, k_eval, &err),
             err);
    out->weights_signal = out->model.signal;
    out->first = SIZE_MAX;
    for (size_t a = 0; a < nck; a++) {
        for (size_t j = 0; j < nc; j++) {
            sub[a + j * nck] = s[chk[a] + j * n];
        }
        for (size_t b = 0; b < nck; b++) {
            sp[a + b * nck] = pair[chk[a] + chk[b] * n];
        }
    }
    CHECK_OK(kb_recommend_model_check(&out->check, &out->model, sub, sp, nck, nc, k_eval, &err),
             err);
    if (!out->check.signal) {
        out->model.signal = 0.0;
        CHECK_OK(kb_recommend_model_weights(w, &out->model, NULL, pair, dist, n, nc, NULL, 0,
                                            k_eval, &err),
                 err);
    } else if (first_rule && !out->check.first_signal) {
        for (size_t a = 0; a < n; a++) {
            ones[a] = 1.0;
        }
        kb_recommend_item it;
        size_t got = 0;
        CHECK_OK(kb_recommend_rank(&it, &got, s, NULL, n, nc, ones, 1, NULL, &err), err);
        out->first = got == 1 ? it.config : SIZE_MAX;
    }
}

static int same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* kb_recommend_weigh gives bit for bit what the step-by-step composition gives. */
static void test_weigh_matches_the_steps(void)
{
    enum { T = 20, C = 12 };
    double s[T * C], pair[T * T], dist[T], pt[T * 2], q[2] = {0.3, 0.6};
    kb_rng rng;
    kb_rng_seed(&rng, 11);
    for (size_t t = 0; t < T; t++) {
        pt[t * 2] = kb_rng_uniform(&rng);
        pt[t * 2 + 1] = kb_rng_uniform(&rng);
        dist[t] = fabs(pt[t * 2] - q[0]) + fabs(pt[t * 2 + 1] - q[1]);
    }
    dist[7] = dist[3]; /* a tie: to the lower index */
    for (size_t a = 0; a < T; a++) {
        for (size_t b = 0; b < T; b++) {
            pair[a + b * T] = fabs(pt[a * 2] - pt[b * 2]) + fabs(pt[a * 2 + 1] - pt[b * 2 + 1]);
        }
        double row[C];
        for (size_t c = 0; c < C; c++) {
            /* scores that follow the points: a signal for the model to find */
            row[c] = sin(3.0 * pt[a * 2] * (double)(c + 1)) + cos(2.0 * pt[a * 2 + 1] * (double)c) +
                     0.3 * kb_rng_uniform(&rng);
        }
        kb_recommend_normalize(row, C, 1);
        for (size_t c = 0; c < C; c++) {
            s[a + c * T] = row[c];
        }
    }
    s[2 + 5 * T] = NAN;
    const struct {
        size_t n_tune, n_check;
        kb_recommend_weigh_hedge hedge;
        int order_all;
    } cases[] = {
        {6, 10, KB_RECOMMEND_WEIGH_HEDGE_LOO, 1},  {6, 10, KB_RECOMMEND_WEIGH_HEDGE_LOO, 0},
        {30, 64, KB_RECOMMEND_WEIGH_HEDGE_LOO, 0}, {30, 64, KB_RECOMMEND_WEIGH_HEDGE_LOO, 1},
        {8, 20, KB_RECOMMEND_WEIGH_HEDGE_NONE, 0}, {2, 5, KB_RECOMMEND_WEIGH_HEDGE_LOO, 1},
    };
    kb_error err = KB_ERROR_INIT;
    size_t n_first = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int first_rule = 0; first_rule <= 1; first_rule++) {
            kb_recommend_weigh_opts o = KB_RECOMMEND_WEIGH_OPTS_INIT;
            o.first_rule = first_rule;
            o.n_tune = cases[i].n_tune;
            o.n_check = cases[i].n_check;
            o.hedge = cases[i].hedge;
            o.order_all = cases[i].order_all;
            double w[T], want_w[T];
            kb_recommend_weighed got, want;
            CHECK_OK(kb_recommend_weigh(w, &got, s, pair, dist, T, C, 5, &o, &err), err);
            size_t nl = o.n_tune < T ? o.n_tune : T, nck = o.n_check < T ? o.n_check : T;
            weigh_by_steps(want_w, &want, s, pair, dist, T, C, nl, nck,
                           o.hedge == KB_RECOMMEND_WEIGH_HEDGE_LOO, o.order_all, o.first_rule, 5);
            for (size_t t = 0; t < T; t++) {
                CHECK(same_double(w[t], want_w[t]));
            }
            CHECK(same_double(got.model.signal, want.model.signal) &&
                  same_double(got.model.bandwidth, want.model.bandwidth) &&
                  same_double(got.model.length, want.model.length) &&
                  same_double(got.model.hedge, want.model.hedge) &&
                  same_double(got.model.loo_regret, want.model.loo_regret));
            CHECK(same_double(got.fitted_signal, want.fitted_signal) &&
                  same_double(got.weights_signal, want.weights_signal));
            CHECK(same_double(got.check.model_regret, want.check.model_regret) &&
                  same_double(got.check.uniform_regret, want.check.uniform_regret) &&
                  same_double(got.check.model_first, want.check.model_first) &&
                  same_double(got.check.uniform_first, want.check.uniform_first) &&
                  got.check.n_queries == want.check.n_queries &&
                  got.check.signal == want.check.signal &&
                  got.check.first_signal == want.check.first_signal && got.first == want.first);
            /* the rule is off by default: no first pick without it */
            CHECK(first_rule || got.first == SIZE_MAX);
            n_first += got.first != SIZE_MAX;
        }
    }
    CHECK(n_first > 0); /* the table exercises the rule */
    /* the hedge's leave-one-out only with a fitted signal: as HEDGE_LOO when there is one */
    kb_recommend_weigh_opts o = KB_RECOMMEND_WEIGH_OPTS_INIT;
    o.n_tune = 6;
    o.n_check = 10;
    o.hedge = KB_RECOMMEND_WEIGH_HEDGE_IF_SIGNAL;
    double w1[T], w2[T];
    kb_recommend_weighed g1, g2;
    CHECK_OK(kb_recommend_weigh(w1, &g1, s, pair, dist, T, C, 5, &o, &err), err);
    o.hedge = KB_RECOMMEND_WEIGH_HEDGE_LOO;
    CHECK_OK(kb_recommend_weigh(w2, &g2, s, pair, dist, T, C, 5, &o, &err), err);
    if (g1.fitted_signal > 0) {
        CHECK(memcmp(w1, w2, sizeof w1) == 0 && same_double(g1.model.hedge, g2.model.hedge));
    } else {
        CHECK(isnan(g1.model.loo_regret));
    }
    /* no check: no fallback, the check left empty */
    o.n_check = 0;
    CHECK_OK(kb_recommend_weigh(w1, &g1, s, pair, dist, T, C, 5, &o, &err), err);
    CHECK(g1.check.n_queries == 0 && isnan(g1.check.model_regret) && g1.first == SIZE_MAX &&
          same_double(g1.model.signal, g1.weights_signal));
    CHECK_CODE(kb_recommend_weigh(w1, &g1, s, pair, dist, 0, C, 5, &o, &err), KB_EINVAL);
}

int main(void)
{
    test_normalize_respects_direction_and_flat_tasks();
    test_rank_mean_sd_and_hedging();
    test_rank_greedy_pick_differs_from_independent_pick();
    test_rank_breaks_list_value_ties_by_mean();
    test_rank_model_variance_and_unknown_scores();
    test_weights_decay_with_distance();
    test_tune_prefers_local_weights_when_neighbours_agree();
    test_tune_matches_plain_grid_search();
    test_backbones_rank_by_weighted_finetune_results();
    test_backbones_fall_back_on_source_similarity();
    test_model_fit_and_weights_match_textbook_gp();
    test_model_without_signal_weighs_uniformly();
    test_model_falls_back_to_uniform_when_kernel_is_indefinite();
    test_model_hedge_matches_plain_leave_one_out();
    test_model_check_matches_plain_leave_one_out();
    test_rank_with_a_fixed_first_item();
    test_weigh_matches_the_steps();
    return check_exit();
}
