#include "engine/recommend.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/linalg.h"
#include "engine/stats.h"

#define LIST_TIE 1e-9

/* Does a configuration with list value `val` and mean `mean_c` beat the pick so far? */
static int beats_pick(double val, double mean_c, size_t pick, double pick_val, const double *mean)
{
    return pick == (size_t)-1 || val > pick_val + LIST_TIE ||
           (val > pick_val - LIST_TIE && mean_c > mean[pick]);
}

void kb_recommend_normalize(double *y, size_t n, int maximize)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isnan(y[i])) {
            lo = y[i] < lo ? y[i] : lo;
            hi = y[i] > hi ? y[i] : hi;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (isnan(y[i])) {
            continue;
        }
        if (!(hi > lo) || !isfinite(hi - lo)) {
            y[i] = 1.0;
        } else {
            double s = (y[i] - lo) / (hi - lo);
            y[i] = maximize ? s : 1.0 - s;
        }
    }
}

void kb_recommend_weights(double *w_out, const double *dist, size_t n, double bandwidth,
                          double floor)
{
    double *tmp = kb_malloc_array(n, sizeof *tmp);
    double h = 1.0;
    if (tmp != NULL) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (isfinite(dist[i])) {
                tmp[m++] = dist[i];
            }
        }
        double med = m > 0 ? kb_stats_median(tmp, m, NULL) : NAN;
        h = (med > 0 && isfinite(med) ? med : 1.0) * (bandwidth > 0 ? bandwidth : 1.0);
        kb_free(tmp);
    }
    for (size_t i = 0; i < n; i++) {
        double r = dist[i] / h;
        w_out[i] = floor + (isfinite(r) ? exp(-r * r) : 0.0);
    }
}

int kb_recommend_rank(kb_recommend_item *out, size_t *n_out, const double *scores,
                      const double *var, size_t n_tasks, size_t n_configs,
                      const double *weights, size_t k, const kb_recommend_opts *opts,
                      kb_error *err)
{
    KB_CHECK_ARG(out != NULL && n_out != NULL && scores != NULL && weights != NULL);
    kb_recommend_opts o = KB_RECOMMEND_OPTS_INIT;
    if (opts != NULL) {
        o = *opts;
        if (opts->version < 2) {
            o.hedge = 1.0;
        }
        if (opts->version < 3) {
            o.first = SIZE_MAX;
        }
    }
    *n_out = 0;
    if (!(o.hedge >= 0 && o.hedge <= 1)) {
        return kb_error_set(err, KB_EINVAL, "hedge %g is outside [0, 1]", o.hedge);
    }
    double wsum = 0;
    for (size_t t = 0; t < n_tasks; t++) {
        if (!(weights[t] >= 0) || !isfinite(weights[t])) {
            return kb_error_set(err, KB_EINVAL, "task weight %zu is not a finite non-negative "
                                                "number", t);
        }
        wsum += weights[t];
    }
    if (!(wsum > 0)) {
        return kb_error_set(err, KB_EINVAL, "every task weight is zero");
    }
    double *mean = kb_malloc_array(n_configs, sizeof *mean);
    double *sd = kb_malloc_array(n_configs, sizeof *sd);
    double *cov = kb_malloc_array(n_configs, sizeof *cov);
    double *best = kb_calloc(n_tasks ? n_tasks : 1, sizeof *best);
    unsigned char *taken = kb_calloc(n_configs ? n_configs : 1, 1);
    if (mean == NULL || sd == NULL || cov == NULL || best == NULL || taken == NULL) {
        kb_free(mean);
        kb_free(sd);
        kb_free(cov);
        kb_free(best);
        kb_free(taken);
        return kb_error_set(err, KB_ENOMEM, "out of memory ranking %zu configurations",
                            n_configs);
    }
    for (size_t c = 0; c < n_configs; c++) {
        const double *s = scores + c * n_tasks;
        double w = 0, m = 0;
        for (size_t t = 0; t < n_tasks; t++) {
            if (!isnan(s[t]) && weights[t] > 0) {
                w += weights[t];
                m += weights[t] * s[t];
            }
        }
        cov[c] = w / wsum;
        if (!(w > 0)) {
            mean[c] = NAN;
            sd[c] = NAN;
            continue;
        }
        m /= w;
        double spread = 0, model = 0;
        for (size_t t = 0; t < n_tasks; t++) {
            if (!isnan(s[t]) && weights[t] > 0) {
                spread += weights[t] * (s[t] - m) * (s[t] - m);
                double v = var != NULL ? var[t + c * n_tasks] : 0.0;
                model += weights[t] * weights[t] * (v > 0 ? v : 0.0);
            }
        }
        mean[c] = m;
        sd[c] = sqrt(spread / w + model / (w * w));
    }
    /*
     * Unknown scores count as 0 (the task's worst) in the list value: a configuration no
     * neighbour tried cannot be credited with hedging for it. With hedge 1 the key is exactly
     * the list value (1 * max + 0 * s adds no rounding).
     */
    const double beta = o.hedge;
    size_t kept = 0;
    double list_value = 0;
    while (kept < k) {
        size_t pick = (size_t)-1;
        double pick_val = -INFINITY;
        for (size_t c = 0; c < n_configs; c++) {
            if (taken[c] || isnan(mean[c]) || cov[c] < o.min_coverage) {
                continue;
            }
            double val;
            if (!o.diversify || kept == 0) {
                val = mean[c];
            } else {
                val = 0;
                const double *s = scores + c * n_tasks;
                for (size_t t = 0; t < n_tasks; t++) {
                    double sc = isnan(s[t]) ? 0.0 : s[t];
                    val += weights[t] * (beta * (sc > best[t] ? sc : best[t]) + (1.0 - beta) * sc);
                }
                val /= wsum;
            }
            /* equal list values (every neighbour already at its best) fall back to the mean */
            if (beats_pick(val, mean[c], pick, pick_val, mean)) {
                pick_val = val;
                pick = c;
            }
        }
        if (kept == 0 && o.first < n_configs && !isnan(mean[o.first]) &&
            cov[o.first] >= o.min_coverage) {
            pick = o.first; /* the caller's first item; the rest continue from it */
        }
        if (pick == (size_t)-1) {
            break;
        }
        taken[pick] = 1;
        const double *s = scores + pick * n_tasks;
        list_value = 0;
        for (size_t t = 0; t < n_tasks; t++) {
            double sc = isnan(s[t]) ? 0.0 : s[t];
            best[t] = sc > best[t] ? sc : best[t];
            list_value += weights[t] * best[t];
        }
        out[kept].config = pick;
        out[kept].mean = mean[pick];
        out[kept].sd = sd[pick];
        out[kept].coverage = cov[pick];
        out[kept].list_value = list_value / wsum;
        kept++;
    }
    *n_out = kept;
    kb_free(mean);
    kb_free(sd);
    kb_free(cov);
    kb_free(best);
    kb_free(taken);
    return KB_OK;
}

/*
 * The scratch of kb_recommend_tune and of the leave-one-outs over lists: one allocation set
 * for every held-out task and grid point. acc0, best0, taken0: a list's state after its first
 * item (list_snapshot), shared by lists that differ only in the hedge.
 */
typedef struct tune_work {
    double *sub, *sub0, *d, *w, *mean, *best, *ex, *acc, *lin, *acc0, *best0;
    unsigned char *taken, *taken0;
    size_t *list, *changed;
} tune_work;

/*
 * The configurations kb_recommend_rank lists first (diversified with `beta`, no model
 * variance), without its sd and coverage: the inner loop of the leave-one-outs, in two steps.
 * list_begin: each configuration's weighted mean of s (NaN unknown) and sum_t w_t s0[t, c]
 * (`s0` is `s` with NaN as 0, what the list value counts), nothing listed yet. list_extend:
 * greedy picks into x->list[kept..stop) of a list of k items (stop <= k; the running sums are
 * kept up to date only while the list is shorter than k); returns the new length, shorter
 * when no configuration is left. Scratch (tune_work): mean, acc, lin, taken n_configs; best,
 * changed n_tasks.
 */
static void list_begin(tune_work *x, const double *s, const double *s0, size_t n_tasks,
                       size_t n_configs, const double *w)
{
    for (size_t c = 0; c < n_configs; c++) {
        const double *sc = s + c * n_tasks, *z = s0 + c * n_tasks;
        double wc = 0, m = 0, a = 0;
        for (size_t t = 0; t < n_tasks; t++) {
            if (!isnan(sc[t]) && w[t] > 0) {
                wc += w[t];
                m += w[t] * sc[t];
            }
            a += w[t] * (z[t] > 0 ? z[t] : 0.0);
        }
        x->mean[c] = wc > 0 ? m / wc : NAN;
        x->acc[c] = a; /* sum_t w_t max(s0[t, c], best_t), with every best_t = 0 so far */
        x->lin[c] = a; /* sum_t w_t s0[t, c]: the blend's other term, fixed */
        x->taken[c] = 0;
    }
    for (size_t t = 0; t < n_tasks; t++) {
        x->best[t] = 0;
    }
}

static size_t list_extend(tune_work *x, size_t kept, size_t stop, const double *s0,
                          size_t n_tasks, size_t n_configs, const double *w, double wsum,
                          size_t k, double beta)
{
    const double *mean = x->mean, *lin = x->lin;
    double *acc = x->acc, *best = x->best;
    while (kept < stop) {
        size_t pick = (size_t)-1;
        double pick_val = -INFINITY;
        for (size_t c = 0; c < n_configs; c++) {
            if (x->taken[c] || isnan(mean[c])) {
                continue;
            }
            double val = kept == 0 ? mean[c] : (beta * acc[c] + (1.0 - beta) * lin[c]) / wsum;
            if (beats_pick(val, mean[c], pick, pick_val, mean)) {
                pick_val = val;
                pick = c;
            }
        }
        if (pick == (size_t)-1) {
            break;
        }
        x->taken[pick] = 1;
        x->list[kept++] = pick;
        /*
         * Only the tasks whose best the pick raised change anyone's list value: update the
         * sums there (rounding differs from a full recount by far less than LIST_TIE).
         */
        const double *zp = s0 + pick * n_tasks;
        size_t n_changed = 0;
        for (size_t t = 0; t < n_tasks; t++) {
            x->changed[n_changed] = t; /* kept when the pick raised t's best: no branch */
            n_changed += zp[t] > best[t];
        }
        size_t c = 0;
        /*
         * Four configurations per pass over the changed tasks: four independent sums (each
         * still adds its terms in task order, as one at a time would) instead of one chain
         * of dependent additions. A taken configuration's sum is computed and not used.
         */
        for (; c + 4 <= n_configs && kept < k; c += 4) {
            const double *z0 = s0 + c * n_tasks, *z1 = z0 + n_tasks, *z2 = z1 + n_tasks,
                         *z3 = z2 + n_tasks;
            double d0 = 0, d1 = 0, d2 = 0, d3 = 0;
            for (size_t i = 0; i < n_changed; i++) {
                size_t t = x->changed[i];
                double b = best[t], p = zp[t], wt = w[t];
                d0 += wt * ((z0[t] > p ? z0[t] : p) - (z0[t] > b ? z0[t] : b));
                d1 += wt * ((z1[t] > p ? z1[t] : p) - (z1[t] > b ? z1[t] : b));
                d2 += wt * ((z2[t] > p ? z2[t] : p) - (z2[t] > b ? z2[t] : b));
                d3 += wt * ((z3[t] > p ? z3[t] : p) - (z3[t] > b ? z3[t] : b));
            }
            const double dl[4] = {d0, d1, d2, d3};
            for (size_t l = 0; l < 4; l++) {
                acc[c + l] += x->taken[c + l] ? 0.0 : dl[l];
            }
        }
        for (; c < n_configs && kept < k; c++) {
            if (x->taken[c]) {
                continue;
            }
            const double *z = s0 + c * n_tasks;
            double delta = 0;
            for (size_t i = 0; i < n_changed; i++) {
                size_t t = x->changed[i];
                double old = z[t] > best[t] ? z[t] : best[t];
                double now = z[t] > zp[t] ? z[t] : zp[t];
                delta += w[t] * (now - old);
            }
            acc[c] += delta;
        }
        for (size_t i = 0; i < n_changed; i++) {
            best[x->changed[i]] = zp[x->changed[i]];
        }
    }
    return kept;
}

/* The whole list of k items: list_begin, then list_extend. */
static size_t list_only(tune_work *x, const double *s, const double *s0, size_t n_tasks,
                        size_t n_configs, const double *w, double wsum, size_t k, double beta)
{
    list_begin(x, s, s0, n_tasks, n_configs, w);
    return list_extend(x, 0, k, s0, n_tasks, n_configs, w, wsum, k, beta);
}

/* Save (to = 0) or restore (to = 1) a list's state after its first item. */
static void list_snapshot(tune_work *x, size_t n_tasks, size_t n_configs, int restore)
{
    double *acc = restore ? x->acc : x->acc0, *best = restore ? x->best : x->best0;
    unsigned char *taken = restore ? x->taken : x->taken0;
    memcpy(acc, restore ? x->acc0 : x->acc, n_configs * sizeof *acc);
    memcpy(best, restore ? x->best0 : x->best, n_tasks * sizeof *best);
    memcpy(taken, restore ? x->taken0 : x->taken, n_configs);
}

static double finite_median(const double *x, size_t n, double *work);

#define N_BANDWIDTHS 4
#define N_FLOORS 5
#define N_HEDGES 5

static const double bandwidths[N_BANDWIDTHS] = {0.25, 0.5, 1.0, 2.0};
static const double floors[N_FLOORS] = {0.0, 0.02, 0.1, 0.5, 1e6};
/* the last is 1: the first step runs with it */
static const double hedges[N_HEDGES] = {0.0, 0.25, 0.5, 0.75, 1.0};

static void tune_work_release(tune_work *x)
{
    kb_free(x->sub);
    kb_free(x->sub0);
    kb_free(x->d);
    kb_free(x->w);
    kb_free(x->mean);
    kb_free(x->best);
    kb_free(x->ex);
    kb_free(x->acc);
    kb_free(x->lin);
    kb_free(x->taken);
    kb_free(x->list);
    kb_free(x->changed);
    kb_free(x->acc0);
    kb_free(x->best0);
    kb_free(x->taken0);
}

/*
 * Held-out task t's sub-table (the other tasks' scores, and with NaN as 0), its distances to
 * them, and exp(-(d/h)^2) for every bandwidth (one median and 4 m exponentials).
 */
static void tune_held_out(tune_work *x, const double *scores, const double *dist,
                          size_t n_tasks, size_t n_configs, size_t t)
{
    size_t m = n_tasks - 1;
    for (size_t c = 0; c < n_configs; c++) {
        for (size_t r = 0, o = 0; r < n_tasks; r++) {
            if (r != t) {
                double v = scores[r + c * n_tasks];
                x->sub[o + c * m] = v;
                x->sub0[o++ + c * m] = isnan(v) ? 0.0 : v;
            }
        }
    }
    for (size_t r = 0, o = 0; r < n_tasks; r++) {
        if (r != t) {
            x->d[o++] = dist[t + r * n_tasks];
        }
    }
    double med = finite_median(x->d, m, x->w);
    for (size_t bi = 0; bi < N_BANDWIDTHS; bi++) {
        double h = (med > 0 && isfinite(med) ? med : 1.0) * bandwidths[bi];
        for (size_t r = 0; r < m; r++) {
            double z = x->d[r] / h;
            x->ex[bi * m + r] = isfinite(z) ? exp(-z * z) : 0.0;
        }
    }
}

/* Task t's regret 1 - max(score) of list[0..n), averaged over list lengths 1..k_eval. */
static double list_regret(const double *scores, size_t n_tasks, size_t t, const size_t *list,
                          size_t n, size_t k_eval)
{
    double bst = 0, sum = 0;
    for (size_t i = 0; i < k_eval; i++) {
        if (i < n) {
            double sv = scores[t + list[i] * n_tasks];
            bst = !isnan(sv) && sv > bst ? sv : bst;
        }
        sum += 1.0 - bst;
    }
    return sum / (double)k_eval;
}

/*
 * Held-out task t's regret, averaged over list lengths 1..k_eval, under grid weighting g and
 * hedge beta (its sub-table prepared by tune_held_out). KB_EINVAL if every weight is zero.
 */
static int tune_regret(double *out, tune_work *x, const double *scores, size_t n_tasks,
                       size_t n_configs, size_t t, size_t g, double beta, size_t k_eval,
                       kb_error *err)
{
    size_t m = n_tasks - 1;
    double wsum = 0;
    for (size_t r = 0; r < m; r++) {
        x->w[r] = floors[g % N_FLOORS] + x->ex[(g / N_FLOORS) * m + r];
        wsum += x->w[r];
    }
    if (!(wsum > 0)) {
        return kb_error_set(err, KB_EINVAL, "every task weight is zero");
    }
    size_t n = list_only(x, x->sub, x->sub0, m, n_configs, x->w, wsum, k_eval, beta);
    *out = list_regret(scores, n_tasks, t, x->list, n, k_eval);
    return KB_OK;
}

int kb_recommend_tune(kb_recommend_weighting *out, const double *scores, const double *dist,
                      size_t n_tasks, size_t n_configs, size_t k_eval, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && scores != NULL && dist != NULL && k_eval > 0);
    if (n_tasks < 3) {
        return kb_error_set(err, KB_EINVAL, "choosing task weights needs 3 or more tasks");
    }
    size_t m = n_tasks - 1, nc = n_configs ? n_configs : 1;
    tune_work x = {
        .sub = kb_malloc_array(m * nc, sizeof(double)),
        .sub0 = kb_malloc_array(m * nc, sizeof(double)),
        .d = kb_malloc_array(m, sizeof(double)), .w = kb_malloc_array(m, sizeof(double)),
        .mean = kb_malloc_array(nc, sizeof(double)), .best = kb_malloc_array(m, sizeof(double)),
        .ex = kb_malloc_array(N_BANDWIDTHS * m, sizeof(double)),
        .acc = kb_malloc_array(nc, sizeof(double)), .lin = kb_malloc_array(nc, sizeof(double)),
        .taken = kb_malloc_array(nc, 1), .list = kb_malloc_array(k_eval, sizeof(size_t)),
        .changed = kb_malloc_array(m, sizeof(size_t))};
    if (x.sub == NULL || x.sub0 == NULL || x.d == NULL || x.w == NULL || x.mean == NULL ||
        x.best == NULL || x.ex == NULL || x.acc == NULL || x.lin == NULL || x.taken == NULL ||
        x.list == NULL || x.changed == NULL) {
        tune_work_release(&x);
        return kb_error_set(err, KB_ENOMEM, "out of memory choosing task weights");
    }
    /*
     * Step 1, the weighting at hedge 1. Held-out task outermost, so its sub-table is built
     * once for all grid points; each grid point's total still adds the tasks in order, as a
     * grid-outer loop would.
     */
    double total[N_BANDWIDTHS * N_FLOORS] = {0}, htotal[N_HEDGES] = {0};
    int rc = KB_OK;
    for (size_t t = 0; t < n_tasks && rc == KB_OK; t++) {
        tune_held_out(&x, scores, dist, n_tasks, n_configs, t);
        for (size_t g = 0; g < N_BANDWIDTHS * N_FLOORS && rc == KB_OK; g++) {
            double r;
            rc = tune_regret(&r, &x, scores, n_tasks, n_configs, t, g, 1.0, k_eval, err);
            total[g] += r;
        }
    }
    size_t gbest = 0;
    for (size_t g = 1; g < N_BANDWIDTHS * N_FLOORS; g++) {
        gbest = total[g] < total[gbest] ? g : gbest;
    }
    /* Step 2, the hedge at that weighting (hedge 1's total is step 1's) */
    htotal[N_HEDGES - 1] = total[gbest];
    for (size_t t = 0; t < n_tasks && rc == KB_OK; t++) {
        tune_held_out(&x, scores, dist, n_tasks, n_configs, t);
        for (size_t hi = 0; hi + 1 < N_HEDGES && rc == KB_OK; hi++) {
            double r;
            rc = tune_regret(&r, &x, scores, n_tasks, n_configs, t, gbest, hedges[hi], k_eval,
                             err);
            htotal[hi] += r;
        }
    }
    size_t hbest = N_HEDGES - 1;
    for (size_t hi = N_HEDGES - 1; hi-- > 0;) {
        hbest = htotal[hi] < htotal[hbest] ? hi : hbest;
    }
    if (rc == KB_OK) {
        out->bandwidth = bandwidths[gbest / N_FLOORS];
        out->floor = floors[gbest % N_FLOORS];
        out->hedge = hedges[hbest];
        out->loo_regret = htotal[hbest] / (double)n_tasks;
    }
    tune_work_release(&x);
    return rc;
}

/* Median of the finite values of x[0..n) (sorted in work), NaN when none. */
static double finite_median(const double *x, size_t n, double *work)
{
    size_t m = 0;
    for (size_t i = 0; x != NULL && i < n; i++) {
        if (isfinite(x[i])) {
            work[m++] = x[i];
        }
    }
    return m > 0 ? kb_stats_median(work, m, NULL) : NAN;
}

/* Weighted mean and predictive sd of x over the entries with w > 0 and x not NaN. */
static void weighted_summary(double *mean_out, double *sd_out, const double *x, size_t stride,
                             const double *w, size_t n)
{
    double sw = 0, sw2 = 0, sx = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        double v = x[i * stride];
        if (w[i] > 0 && !isnan(v)) {
            sw += w[i];
            sw2 += w[i] * w[i];
            sx += w[i] * v;
            k++;
        }
    }
    if (k == 0) {
        *mean_out = *sd_out = NAN;
        return;
    }
    double m = sx / sw, ss = 0;
    for (size_t i = 0; i < n; i++) {
        double v = x[i * stride];
        if (w[i] > 0 && !isnan(v)) {
            ss += w[i] * (v - m) * (v - m);
        }
    }
    *mean_out = m;
    /* the spread a new task sees, plus the weighted mean's own variance (spread / n_eff) */
    *sd_out = k < 2 ? NAN : sqrt(ss / sw * (1.0 + sw2 / (sw * sw)));
}

/* a before b in the backbone list */
static int backbone_before(const kb_recommend_backbone *a, const kb_recommend_backbone *b,
                           int maximize)
{
    /* evidence before a guess, unless both were scored on the new data itself */
    if (a->basis != b->basis && !(isfinite(a->transfer) && isfinite(b->transfer))) {
        return a->basis == KB_RECOMMEND_BASIS_FINETUNE;
    }
    if (a->score != b->score) {
        return a->score > b->score;
    }
    double ea = isnan(a->expected) ? (maximize ? -INFINITY : INFINITY) : a->expected;
    double eb = isnan(b->expected) ? (maximize ? -INFINITY : INFINITY) : b->expected;
    if (ea != eb) {
        return maximize ? ea > eb : ea < eb;
    }
    double sa = isnan(a->source_similarity) ? -1 : a->source_similarity;
    double sb = isnan(b->source_similarity) ? -1 : b->source_similarity;
    if (sa != sb) {
        return sa > sb;
    }
    return a->backbone < b->backbone;
}

int kb_recommend_backbones(kb_recommend_backbone *out, size_t *n_out, const double *results,
                           const double *task_dist, size_t n_tasks, size_t n_backbones,
                           int maximize, const double *source_dist, const double *transfer,
                           const kb_recommend_weighting *weighting, size_t k,
                           const kb_recommend_backbone_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && n_out != NULL && weighting != NULL);
    KB_CHECK_ARG(n_tasks == 0 || (results != NULL && task_dist != NULL));
    kb_recommend_backbone_opts o = KB_RECOMMEND_BACKBONE_OPTS_INIT;
    if (opts != NULL) {
        o = *opts;
    }
    *n_out = 0;
    if (!(o.transfer_weight >= 0 && o.transfer_weight <= 1)) {
        return kb_error_set(err, KB_EINVAL, "transfer weight %g is outside [0, 1]",
                            o.transfer_weight);
    }
    size_t nb = n_backbones ? n_backbones : 1, nt = n_tasks ? n_tasks : 1;
    size_t work_n = n_tasks > n_backbones ? n_tasks : n_backbones;
    double *w = kb_malloc_array(nt, sizeof *w);
    double *rel = kb_malloc_array(nt * nb, sizeof *rel);
    double *row = kb_malloc_array(nb, sizeof *row);
    double *work = kb_malloc_array(work_n ? work_n : 1, sizeof *work);
    kb_recommend_backbone *all = kb_malloc_array(nb, sizeof *all);
    if (w == NULL || rel == NULL || row == NULL || work == NULL || all == NULL) {
        kb_free(w);
        kb_free(rel);
        kb_free(row);
        kb_free(work);
        kb_free(all);
        return kb_error_set(err, KB_ENOMEM, "out of memory ranking %zu backbones", n_backbones);
    }
    if (n_tasks > 0) {
        kb_recommend_weights(w, task_dist, n_tasks, weighting->bandwidth, weighting->floor);
    }
    for (size_t t = 0; t < n_tasks; t++) {
        for (size_t b = 0; b < n_backbones; b++) {
            row[b] = results[t + b * n_tasks];
        }
        kb_recommend_normalize(row, n_backbones, maximize);
        for (size_t b = 0; b < n_backbones; b++) {
            rel[t + b * n_tasks] = row[b];
        }
    }
    double h = finite_median(task_dist, n_tasks, work);
    if (!(h > 0)) {
        h = finite_median(source_dist, n_backbones, work);
    }
    h = (h > 0 && isfinite(h) ? h : 1.0) *
        (weighting->bandwidth > 0 ? weighting->bandwidth : 1.0);
    double t_lo = INFINITY, t_hi = -INFINITY;
    for (size_t b = 0; transfer != NULL && b < n_backbones; b++) {
        if (isfinite(transfer[b])) {
            t_lo = transfer[b] < t_lo ? transfer[b] : t_lo;
            t_hi = transfer[b] > t_hi ? transfer[b] : t_hi;
        }
    }
    for (size_t b = 0; b < n_backbones; b++) {
        kb_recommend_backbone *a = &all[b];
        memset(a, 0, sizeof *a);
        a->backbone = b;
        double sw = 0, sw2 = 0;
        for (size_t t = 0; t < n_tasks; t++) {
            if (w[t] > 0 && !isnan(results[t + b * n_tasks])) {
                sw += w[t];
                sw2 += w[t] * w[t];
                a->n_tasks++;
            }
        }
        a->n_eff = sw > 0 ? sw * sw / sw2 : 0.0;
        weighted_summary(&a->relative, &a->relative_sd, rel + b * n_tasks, 1, w, n_tasks);
        weighted_summary(&a->expected, &a->expected_sd, n_tasks ? results + b * n_tasks : NULL,
                         1, w, n_tasks);
        double d = source_dist != NULL ? source_dist[b] : NAN;
        double r = d / h;
        a->source_similarity = isfinite(r) ? exp(-r * r) : (isnan(d) ? NAN : 0.0);
        a->basis = a->n_tasks > 0 ? KB_RECOMMEND_BASIS_FINETUNE : KB_RECOMMEND_BASIS_SOURCE;
        double key = a->basis == KB_RECOMMEND_BASIS_FINETUNE
                         ? a->relative
                         : (isnan(a->source_similarity) ? 0.0 : a->source_similarity);
        a->transfer = transfer != NULL ? transfer[b] : NAN;
        if (isfinite(a->transfer)) {
            /* a SOURCE key (source-task similarity) is a guess that picked the best backbone
             * on 3 of 14 Fashion-MNIST targets where LogME picked 12 (docs/BENCHMARKS.md):
             * it gives way to the score measured on the new data */
            double tn = t_hi > t_lo ? (a->transfer - t_lo) / (t_hi - t_lo) : 1.0;
            key = a->basis == KB_RECOMMEND_BASIS_FINETUNE
                      ? (1.0 - o.transfer_weight) * key + o.transfer_weight * tn
                      : tn;
        }
        a->score = key;
    }
    /* selection of the best k: B is a handful of backbones */
    size_t kept = 0;
    for (; kept < k && kept < n_backbones; kept++) {
        size_t best = kept;
        for (size_t b = kept + 1; b < n_backbones; b++) {
            if (backbone_before(&all[b], &all[best], maximize)) {
                best = b;
            }
        }
        kb_recommend_backbone tmp = all[kept];
        all[kept] = all[best];
        all[best] = tmp;
        out[kept] = all[kept];
    }
    *n_out = kept;
    kb_free(w);
    kb_free(rel);
    kb_free(row);
    kb_free(work);
    kb_free(all);
    return KB_OK;
}

/* ---- the similarity model (kb_recommend_model_fit, kb_recommend_model_weights) ---- */

#define N_MODEL_BANDWIDTHS 5
#define N_SIGNALS 10

static const double model_bandwidths[N_MODEL_BANDWIDTHS] = {0.25, 0.5, 1.0, 2.0, 4.0};
/* r = 0 first: the uniform model wins every tie, so the data must ask for similarity */
static const double signals[N_SIGNALS] = {0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0,
                                          100.0};
/* floor on a configuration's residual variance: a configuration equal on every task adds the
 * same constant to every grid point's likelihood instead of log 0 */
#define MODEL_VAR_FLOOR 1e-12

/* Laplacian kernel exp(-d / h) of an L1 distance (positive semi-definite: a product of 1-D
 * Laplacian kernels); an infinite or NaN distance (no shared feature) gives 0. */
static double laplace(double d, double h)
{
    double z = d / h;
    return isfinite(z) ? exp(-z) : 0.0;
}

/* Median of the finite off-diagonal distances of the n x n matrix `pair`, or 1 if none. */
static int pair_median(double *out, const double *pair, size_t n, kb_error *err)
{
    size_t m = n * (n - 1) / 2, k = 0;
    double *v = kb_malloc_array(m ? m : 1, sizeof *v);
    if (v == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory for %zu task distances", m);
    }
    for (size_t j = 0; j < n; j++) {
        for (size_t i = 0; i < j; i++) {
            if (isfinite(pair[i + j * n])) {
                v[k++] = pair[i + j * n];
            }
        }
    }
    double med = k > 0 ? kb_stats_median(v, k, NULL) : NAN;
    kb_free(v);
    *out = med > 0 && isfinite(med) ? med : 1.0;
    return KB_OK;
}

int kb_recommend_model_fit(kb_recommend_model *out, const double *scores, const double *pair,
                           size_t n_tasks, size_t n_configs, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && (n_tasks == 0 || (scores != NULL && pair != NULL)));
    size_t n = n_tasks;
    *out = (kb_recommend_model){1.0, 1.0, 0.0, 1.0, NAN};
    if (n < 3) {
        return KB_OK; /* REML needs n - 1 >= 2 residual degrees of freedom */
    }
    if (!kb_linalg_size_ok(n, n) || !kb_linalg_size_ok(n, n_configs)) {
        return kb_error_set(err, KB_EINVAL, "%zu tasks x %zu configurations is too large",
                            n, n_configs);
    }
    double med = 1.0;
    int rc = pair_median(&med, pair, n, err);
    if (rc != KB_OK) {
        return rc;
    }
    out->length = med;
    /* only configurations every task evaluated: each is one draw of the n-task model */
    size_t nc = 0;
    double *y = kb_malloc_array(n * (n_configs ? n_configs : 1), sizeof *y);
    double *k = kb_malloc_array(n * n, sizeof *k);
    double *lam = kb_malloc_array(n, sizeof *lam), *ot = kb_malloc_array(n, sizeof *ot);
    double *one = kb_malloc_array(n, sizeof *one);
    double *yt = kb_malloc_array(n * (n_configs ? n_configs : 1), sizeof *yt);
    if (y == NULL || k == NULL || lam == NULL || ot == NULL || one == NULL || yt == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory fitting the similarity model");
        goto done;
    }
    for (size_t c = 0; c < n_configs; c++) {
        const double *s = scores + c * n;
        size_t t = 0;
        while (t < n && !isnan(s[t])) {
            t++;
        }
        if (t == n) {
            memcpy(y + nc++ * n, s, n * sizeof *y);
        }
    }
    if (nc == 0) {
        goto done; /* nothing every task evaluated: no evidence, the uniform model */
    }
    for (size_t i = 0; i < n; i++) {
        one[i] = 1.0;
    }
    double best_ll = -INFINITY;
    for (size_t bi = 0; bi < N_MODEL_BANDWIDTHS; bi++) {
        double h = med * model_bandwidths[bi];
        for (size_t j = 0; j < n; j++) {
            for (size_t i = 0; i < n; i++) {
                k[i + j * n] = i == j ? 1.0 : laplace(pair[i + j * n], h);
            }
        }
        /* K = V diag(lam) V'; then every A = r K + I shares V and has eigenvalues r lam + 1 */
        lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', (lapack_int)n, k,
                                         (lapack_int)n, lam);
        if (info != 0) {
            rc = kb_error_set(err, KB_ENUMERIC, "similarity model: eigendecomposition failed "
                                                "(info %d)", (int)info);
            if (err != NULL) {
                err->cause = (int)info;
            }
            goto done;
        }
        cblas_dgemv(CblasColMajor, CblasTrans, (blasint)n, (blasint)n, 1.0, k, (blasint)n, one,
                    1, 0.0, ot, 1);
        cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (blasint)n, (blasint)nc,
                    (blasint)n, 1.0, k, (blasint)n, y, (blasint)n, 0.0, yt, (blasint)n);
        for (size_t i = 0; i < n; i++) {
            lam[i] = lam[i] > 0 ? lam[i] : 0.0; /* rounding: K is PSD where no feature is missing */
        }
        for (size_t ri = 0; ri < N_SIGNALS; ri++) {
            double r = signals[ri], logdet = 0, s = 0, sum_logvar = 0;
            for (size_t i = 0; i < n; i++) {
                double a = r * lam[i] + 1.0;
                logdet += log(a);
                s += ot[i] * ot[i] / a;
            }
            for (size_t c = 0; c < nc; c++) {
                const double *yc = yt + c * n;
                double m = 0, q = 0;
                for (size_t i = 0; i < n; i++) {
                    m += ot[i] * yc[i] / (r * lam[i] + 1.0);
                }
                m /= s; /* the configuration's generalised least-squares mean */
                for (size_t i = 0; i < n; i++) {
                    double e = yc[i] - ot[i] * m;
                    q += e * e / (r * lam[i] + 1.0);
                }
                double v = q / (double)(n - 1);
                sum_logvar += log(v > MODEL_VAR_FLOOR ? v : MODEL_VAR_FLOOR);
            }
            /* restricted log likelihood, each configuration's variance profiled out */
            double ll = -0.5 * ((double)nc * (logdet + log(s)) + (double)(n - 1) * sum_logvar);
            if (ll > best_ll + 1e-9) {
                best_ll = ll;
                out->bandwidth = model_bandwidths[bi];
                out->length = h;
                out->signal = r;
            }
        }
    }
done:
    kb_free(y);
    kb_free(k);
    kb_free(lam);
    kb_free(ot);
    kb_free(one);
    kb_free(yt);
    return rc;
}

/*
 * Task `held`'s regret (its own scores), averaged over list lengths 1..k_eval, of the list
 * ranked for it from the other tasks with weights x->w (x->w[held] = 0) and each hedge,
 * added to total[0..N_HEDGES); the table with NaN as 0 in x->sub0 (loo_work_alloc). The
 * first item and the sums after it do not depend on the hedge: computed once, each hedge's
 * list continues from them (the same operations in the same order as a list of its own).
 */
static void held_out_hedges(double *total, tune_work *x, const double *scores, size_t n,
                            size_t n_configs, size_t held, size_t k_eval)
{
    double wsum = 0;
    for (size_t t = 0; t < n; t++) {
        wsum += x->w[t];
    }
    list_begin(x, scores, x->sub0, n, n_configs, x->w);
    size_t first = list_extend(x, 0, 1, x->sub0, n, n_configs, x->w, wsum, k_eval, 1.0);
    list_snapshot(x, n, n_configs, 0);
    for (size_t hi = 0; hi < N_HEDGES; hi++) {
        if (hi > 0) {
            list_snapshot(x, n, n_configs, 1);
        }
        size_t m = list_extend(x, first, k_eval, x->sub0, n, n_configs, x->w, wsum, k_eval,
                               hedges[hi]);
        total[hi] += list_regret(scores, n, held, x->list, m, k_eval);
    }
}

/*
 * The scratch of a leave-one-out over n tasks' lists (held_out_hedges, check_regrets): x->sub0 = scores with
 * NaN as 0, and the list buffers. 0 when out of memory (tune_work_release frees what was got).
 */
static int loo_work_alloc(tune_work *x, const double *scores, size_t n, size_t n_configs,
                          size_t k_eval)
{
    size_t nc = n_configs ? n_configs : 1;
    x->sub0 = kb_malloc_array(n * nc, sizeof(double));
    x->w = kb_malloc_array(n, sizeof(double));
    x->mean = kb_malloc_array(nc, sizeof(double));
    x->acc = kb_malloc_array(nc, sizeof(double));
    x->lin = kb_malloc_array(nc, sizeof(double));
    x->best = kb_malloc_array(n, sizeof(double));
    x->list = kb_malloc_array(k_eval, sizeof(size_t));
    x->changed = kb_malloc_array(n, sizeof(size_t));
    x->taken = kb_malloc_array(nc, 1);
    x->acc0 = kb_malloc_array(nc, sizeof(double));
    x->best0 = kb_malloc_array(n, sizeof(double));
    x->taken0 = kb_malloc_array(nc, 1);
    if (x->sub0 == NULL || x->w == NULL || x->mean == NULL || x->acc == NULL ||
        x->lin == NULL || x->best == NULL || x->list == NULL || x->changed == NULL ||
        x->taken == NULL || x->acc0 == NULL || x->best0 == NULL || x->taken0 == NULL) {
        return 0;
    }
    for (size_t i = 0; i < n * n_configs; i++) {
        x->sub0[i] = isnan(scores[i]) ? 0.0 : scores[i];
    }
    return 1;
}

int kb_recommend_model_weights(double *w_out, kb_recommend_model *model, const double *scores,
                               const double *pair, const double *dist, size_t n_tasks,
                               size_t n_configs, const size_t *inner, size_t n_inner,
                               size_t k_eval, kb_error *err)
{
    KB_CHECK_ARG(w_out != NULL && model != NULL && pair != NULL && dist != NULL);
    KB_CHECK_ARG(n_inner == 0 || (inner != NULL && scores != NULL && k_eval > 0));
    size_t n = n_tasks, nr = 2 + n_inner;
    if (n == 0) {
        return kb_error_set(err, KB_EINVAL, "weighting needs 1 or more tasks");
    }
    if (!kb_linalg_size_ok(n, n) || !kb_linalg_size_ok(n, nr)) {
        return kb_error_set(err, KB_EINVAL, "%zu tasks is too many for the similarity model", n);
    }
    for (size_t j = 0; j < n_inner; j++) {
        KB_CHECK_ARG(inner[j] < n);
    }
    if (!(model->signal >= 0) || !(model->length > 0) || !isfinite(model->length)) {
        return kb_error_set(err, KB_EINVAL, "similarity model signal %g, length %g are invalid",
                            model->signal, model->length);
    }
    int rc = KB_OK;
    double *a = kb_malloc_array(n * n, sizeof *a), *l = kb_malloc_array(n * n, sizeof *l);
    double *b = kb_malloc_array(n * nr, sizeof *b);
    tune_work x = {0};
    if (a == NULL || l == NULL || b == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory weighting %zu tasks", n);
        goto done;
    }
    /*
     * The Gaussian-process smoother (Rasmussen & Williams 2006, eq. 2.23 with a constant mean
     * estimated by generalised least squares, sec. 2.7): A = r K + I, u = A^-1 1, s = 1'u;
     * the query's prediction of every configuration is sum_t alpha_t y_t with
     *   alpha = u / s + r (A^-1 k - (k'u / s) u),   sum_t alpha_t = 1.
     * A fails to factor only where missing meta-features made K indefinite: then the uniform
     * model (r = 0, A = I), which always factors.
     */
    double r = model->signal, h = model->length;
    for (int attempt = 0; attempt < 2; attempt++) {
        for (size_t j = 0; j < n; j++) {
            for (size_t i = j; i < n; i++) {
                a[i + j * n] = i == j ? r + 1.0 : r * laplace(pair[i + j * n], h);
            }
        }
        kb_error cerr = KB_ERROR_INIT;
        if (kb_linalg_cholesky(l, n, a, n, n, NULL, &cerr) == KB_OK) {
            break;
        }
        if (cerr.code != KB_ENUMERIC && cerr.code != KB_EINVAL) {
            rc = kb_error_set(err, cerr.code, "%s", cerr.msg);
            goto done;
        }
        r = model->signal = 0.0;
    }
    for (size_t i = 0; i < n; i++) {
        b[i] = 1.0;
        b[i + n] = laplace(dist[i], h);
    }
    memset(b + 2 * n, 0, n * n_inner * sizeof *b);
    for (size_t j = 0; j < n_inner; j++) {
        b[inner[j] + (2 + j) * n] = 1.0;
    }
    lapack_int info = LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'L', (lapack_int)n, (lapack_int)nr, l,
                                     (lapack_int)n, b, (lapack_int)n);
    if (info != 0) {
        rc = kb_error_set(err, KB_ENUMERIC, "similarity model: solve failed (info %d)",
                          (int)info);
        if (err != NULL) {
            err->cause = (int)info;
        }
        goto done;
    }
    const double *u = b, *g = b + n;
    double s = 0, ku = 0;
    for (size_t i = 0; i < n; i++) {
        s += u[i];
        ku += laplace(dist[i], h) * u[i];
    }
    for (size_t i = 0; i < n; i++) {
        double al = u[i] / s + r * (g[i] - ku * u[i] / s);
        /* a negative weight would reward configurations for doing badly on a task; the
         * smoother's few small negative weights are dropped (kb_recommend_rank rescales) */
        w_out[i] = al > 0 ? al : 0.0;
    }
    model->hedge = 1.0;
    model->loo_regret = NAN;
    if (n_inner == 0 || n < 2) {
        goto done;
    }
    if (!loo_work_alloc(&x, scores, n, n_configs, k_eval)) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory choosing the hedge");
        goto done;
    }
    double total[N_HEDGES] = {0};
    for (size_t j = 0; j < n_inner; j++) {
        /*
         * Leave-one-out without refitting: with M = A^-1 - u u' / s (the constant mean
         * integrated out), task i's prediction from the others weighs task t by
         * -M_it / M_ii (R&W eq. 5.12), and those weights sum to 1 since M 1 = 0.
         */
        size_t i = inner[j];
        const double *xi = b + (2 + j) * n;
        double mii = xi[i] - u[i] * u[i] / s, wsum = 0;
        for (size_t t = 0; t < n; t++) {
            double al = t == i || !(mii > 0) ? 0.0 : -(xi[t] - u[i] * u[t] / s) / mii;
            x.w[t] = al > 0 ? al : 0.0;
            wsum += x.w[t];
        }
        if (!(wsum > 0)) {
            continue;
        }
        held_out_hedges(total, &x, scores, n, n_configs, i, k_eval);
    }
    size_t hbest = N_HEDGES - 1;
    for (size_t hi = N_HEDGES - 1; hi-- > 0;) {
        hbest = total[hi] < total[hbest] - 1e-12 ? hi : hbest;
    }
    model->hedge = hedges[hbest];
    model->loo_regret = total[hbest] / (double)n_inner;
done:
    tune_work_release(&x);
    kb_free(a);
    kb_free(l);
    kb_free(b);
    return rc;
}

/* ---- the whole-knowledge-base check (kb_recommend_model_check) ---- */

/* Task `held`'s regret of the list x->w and beta rank from the others (x->w[held] = 0): of
 * its first item in *r1, averaged over list lengths 1..k_eval in *rk (one list: the first
 * pick does not depend on the list's length). */
static void check_regrets(double *r1, double *rk, tune_work *x, const double *scores, size_t n,
                          size_t n_configs, size_t held, size_t k_eval, double beta)
{
    double wsum = 0;
    for (size_t t = 0; t < n; t++) {
        wsum += x->w[t];
    }
    size_t m = list_only(x, scores, x->sub0, n, n_configs, x->w, wsum, k_eval, beta);
    *r1 = list_regret(scores, n, held, x->list, m, 1);
    *rk = list_regret(scores, n, held, x->list, m, k_eval);
}

int kb_recommend_model_check(kb_recommend_check *out, const kb_recommend_model *model,
                             const double *scores, const double *pair, size_t n_tasks,
                             size_t n_configs, size_t k_eval, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && model != NULL && k_eval > 0);
    KB_CHECK_ARG(n_tasks == 0 || (scores != NULL && pair != NULL));
    size_t n = n_tasks;
    *out = (kb_recommend_check){NAN, NAN, NAN, NAN, 0, 0, 0};
    if (n < 3) {
        return KB_OK; /* no evidence: uniform */
    }
    if (!kb_linalg_size_ok(n, n) || !kb_linalg_size_ok(n, n_configs)) {
        return kb_error_set(err, KB_EINVAL, "%zu tasks x %zu configurations is too large",
                            n, n_configs);
    }
    if (!(model->signal >= 0) || !(model->length > 0) || !isfinite(model->length) ||
        !(model->hedge >= 0 && model->hedge <= 1)) {
        return kb_error_set(err, KB_EINVAL, "similarity model signal %g, length %g, hedge %g "
                            "are invalid", model->signal, model->length, model->hedge);
    }
    double r = model->signal, h = model->length;
    double *a = kb_malloc_array(n * n, sizeof *a), *l = kb_malloc_array(n * n, sizeof *l);
    double *u = kb_malloc_array(n, sizeof *u);
    tune_work x = {0};
    int rc = KB_OK;
    if (!loo_work_alloc(&x, scores, n, n_configs, k_eval) || a == NULL || l == NULL ||
        u == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory checking the similarity model");
        goto done;
    }
    /* A^-1 of A = r K + I (lower triangle), as kb_recommend_model_weights factors it */
    int model_ok = r > 0;
    if (model_ok) {
        for (size_t j = 0; j < n; j++) {
            for (size_t i = j; i < n; i++) {
                a[i + j * n] = i == j ? r + 1.0 : r * laplace(pair[i + j * n], h);
            }
        }
        kb_error cerr = KB_ERROR_INIT;
        if (kb_linalg_cholesky(l, n, a, n, n, NULL, &cerr) != KB_OK) {
            if (cerr.code != KB_ENUMERIC && cerr.code != KB_EINVAL) {
                rc = kb_error_set(err, cerr.code, "%s", cerr.msg);
                goto done;
            }
            model_ok = 0; /* indefinite: the weights are uniform, so is the check */
        } else if (LAPACKE_dpotri(LAPACK_COL_MAJOR, 'L', (lapack_int)n, l, (lapack_int)n) != 0) {
            model_ok = 0;
        }
    }
    double s = 0;
    if (model_ok) {
        for (size_t i = 0; i < n; i++) {
            u[i] = 0;
            for (size_t t = 0; t < n; t++) {
                u[i] += t <= i ? l[i + t * n] : l[t + i * n];
            }
            s += u[i];
        }
    }
    double sm = 0, su = 0, sm1 = 0, su1 = 0;
    for (size_t i = 0; i < n; i++) {
        /* uniform: the greedy portfolio of the others */
        for (size_t t = 0; t < n; t++) {
            x.w[t] = t == i ? 0.0 : 1.0;
        }
        double ru1, ruk, rm1, rmk;
        check_regrets(&ru1, &ruk, &x, scores, n, n_configs, i, k_eval, 1.0);
        su1 += ru1;
        su += ruk;
        if (!model_ok) {
            sm1 += ru1;
            sm += ruk;
            continue;
        }
        /* the model's exact leave-one-out weights (as kb_recommend_model_weights' hedge) */
        double mii = l[i + i * n] - u[i] * u[i] / s, wsum = 0;
        for (size_t t = 0; t < n; t++) {
            double ait = t <= i ? l[i + t * n] : l[t + i * n];
            double al = t == i || !(mii > 0) ? 0.0 : -(ait - u[i] * u[t] / s) / mii;
            x.w[t] = al > 0 ? al : 0.0;
            wsum += x.w[t];
        }
        if (!(wsum > 0)) {
            sm1 += ru1;
            sm += ruk;
            continue;
        }
        check_regrets(&rm1, &rmk, &x, scores, n, n_configs, i, k_eval, model->hedge);
        sm1 += rm1;
        sm += rmk;
    }
    out->model_regret = sm / (double)n;
    out->uniform_regret = su / (double)n;
    out->model_first = sm1 / (double)n;
    out->uniform_first = su1 / (double)n;
    out->n_queries = n;
    out->signal = sm < su - 1e-12;
    out->first_signal = sm1 < su1 - 1e-12;
done:
    tune_work_release(&x);
    kb_free(a);
    kb_free(l);
    kb_free(u);
    return rc;
}

/* ---- the whole weighting for a query (kb_recommend_weigh) ---- */

void kb_recommend_nearest(size_t *rows, const double *dist, size_t n, size_t k)
{
    for (size_t a = 0; a < k && a < n; a++) {
        size_t b = a;
        for (size_t i = a + 1; i < n; i++) {
            if (dist[rows[i]] < dist[rows[b]] ||
                (dist[rows[i]] == dist[rows[b]] && rows[i] < rows[b])) {
                b = i;
            }
        }
        size_t t = rows[a];
        rows[a] = rows[b];
        rows[b] = t;
    }
}

/* Tasks pick[0..m) of an n-task score table (n x nc) and distance matrix into sub (m x nc)
 * and sub_pair (m x m), all column-major. */
static void weigh_gather(double *sub, double *sub_pair, const double *scores, const double *pair,
                         size_t n, size_t nc, const size_t *pick, size_t m)
{
    for (size_t a = 0; a < m; a++) {
        for (size_t j = 0; j < nc; j++) {
            sub[a + j * m] = scores[pick[a] + j * n];
        }
        for (size_t b = 0; b < m; b++) {
            sub_pair[a + b * m] = pair[pick[a] + pick[b] * n];
        }
    }
}

int kb_recommend_weigh(double *w_out, kb_recommend_weighed *out, const double *scores,
                       const double *pair, const double *dist, size_t n_tasks, size_t n_configs,
                       size_t k_eval, const kb_recommend_weigh_opts *opts, kb_error *err)
{
    static const kb_recommend_weigh_opts defaults = KB_RECOMMEND_WEIGH_OPTS_INIT;
    const kb_recommend_weigh_opts *o = opts != NULL ? opts : &defaults;
    KB_CHECK_ARG(w_out != NULL && out != NULL && scores != NULL && pair != NULL &&
                 dist != NULL && n_tasks > 0 && k_eval > 0);
    KB_CHECK_ARG(o->version >= 1 && o->version <= KB_RECOMMEND_WEIGH_OPTS_VERSION);
    size_t n = n_tasks, nc = n_configs;
    size_t nl = o->n_tune < n ? o->n_tune : n, nck = o->n_check < n ? o->n_check : n;
    size_t ns = nl > nck ? nl : nck;
    out->check = (kb_recommend_check){NAN, NAN, NAN, NAN, 0, 0, 0};
    out->first = SIZE_MAX;
    out->fitted_signal = 0.0;
    out->weights_signal = 0.0;
    size_t *fit = kb_malloc_array(n, sizeof *fit), *chk = kb_malloc_array(n, sizeof *chk);
    double *ones = kb_malloc_array(n, sizeof *ones);
    double *sub = kb_malloc_array(ns * nc + 1, sizeof *sub);
    double *sub_pair = kb_malloc_array(ns * ns + 1, sizeof *sub_pair);
    int rc = KB_OK;
    if (fit == NULL || chk == NULL || ones == NULL || sub == NULL || sub_pair == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory weighting %zu tasks", n);
        goto done;
    }
    for (size_t a = 0; a < n; a++) {
        fit[a] = a;
        chk[a] = a;
    }
    if (nl < n || o->order_all) {
        kb_recommend_nearest(fit, dist, n, nl);
    }
    weigh_gather(sub, sub_pair, scores, pair, n, nc, fit, nl);
    if ((rc = kb_recommend_model_fit(&out->model, sub, sub_pair, nl, nc, err)) != KB_OK) {
        goto done;
    }
    out->fitted_signal = out->model.signal;
    size_t n_inner = nl >= 3 ? nl : 0;
    if (o->hedge == KB_RECOMMEND_WEIGH_HEDGE_NONE ||
        (o->hedge == KB_RECOMMEND_WEIGH_HEDGE_IF_SIGNAL && out->model.signal == 0.0)) {
        n_inner = 0;
    }
    if ((rc = kb_recommend_model_weights(w_out, &out->model, scores, pair, dist, n, nc, fit,
                                         n_inner, k_eval, err)) != KB_OK) {
        goto done;
    }
    out->weights_signal = out->model.signal;
    if (nck == 0) {
        goto done;
    }
    if (nck < n || o->order_all) {
        kb_recommend_nearest(chk, dist, n, nck);
    }
    weigh_gather(sub, sub_pair, scores, pair, n, nc, chk, nck);
    if ((rc = kb_recommend_model_check(&out->check, &out->model, sub, sub_pair, nck, nc, k_eval,
                                       err)) != KB_OK) {
        goto done;
    }
    if (!out->check.signal) {
        out->model.signal = 0.0; /* uniform weights, hedge 1: the greedy portfolio */
        rc = kb_recommend_model_weights(w_out, &out->model, NULL, pair, dist, n, nc, NULL, 0,
                                        k_eval, err);
    } else if (o->version >= 2 && o->first_rule && !out->check.first_signal) {
        for (size_t a = 0; a < n; a++) {
            ones[a] = 1.0;
        }
        kb_recommend_item it;
        size_t got = 0;
        rc = kb_recommend_rank(&it, &got, scores, NULL, n, nc, ones, 1, NULL, err);
        out->first = rc == KB_OK && got == 1 ? it.config : SIZE_MAX;
    }
done:
    kb_free(ones);
    kb_free(fit);
    kb_free(chk);
    kb_free(sub);
    kb_free(sub_pair);
    return rc;
}
