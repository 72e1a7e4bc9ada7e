#include "engine/recommend.h"

#include <math.h>
#include <string.h>

#include "engine/core/alloc.h"
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
 * The configurations kb_recommend_rank lists first (diversified with `beta`, no model
 * variance), without its sd and coverage: the inner loop of kb_recommend_tune. `s0` is `s`
 * with NaN as 0 (what the list value counts). Scratch: `mean`, `acc`, `lin` n_configs; `best`,
 * `changed` n_tasks; `taken` n_configs bytes.
 */
static size_t list_only(size_t *list, const double *s, const double *s0, size_t n_tasks,
                        size_t n_configs, const double *w, double wsum, size_t k, double beta,
                        double *mean, double *acc, double *lin, double *best, size_t *changed,
                        unsigned char *taken)
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
        mean[c] = wc > 0 ? m / wc : NAN;
        acc[c] = a; /* sum_t w_t max(s0[t, c], best_t), with every best_t = 0 so far */
        lin[c] = a; /* sum_t w_t s0[t, c]: the blend's other term, fixed */
        taken[c] = 0;
    }
    for (size_t t = 0; t < n_tasks; t++) {
        best[t] = 0;
    }
    size_t kept = 0;
    while (kept < k) {
        size_t pick = (size_t)-1;
        double pick_val = -INFINITY;
        for (size_t c = 0; c < n_configs; c++) {
            if (taken[c] || isnan(mean[c])) {
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
        taken[pick] = 1;
        list[kept++] = pick;
        /*
         * Only the tasks whose best the pick raised change anyone's list value: update the
         * sums there (rounding differs from a full recount by far less than LIST_TIE).
         */
        const double *zp = s0 + pick * n_tasks;
        size_t n_changed = 0;
        for (size_t t = 0; t < n_tasks; t++) {
            if (zp[t] > best[t]) {
                changed[n_changed++] = t;
            }
        }
        for (size_t c = 0; c < n_configs && kept < k; c++) {
            if (taken[c]) {
                continue;
            }
            const double *z = s0 + c * n_tasks;
            double delta = 0;
            for (size_t i = 0; i < n_changed; i++) {
                size_t t = changed[i];
                double old = z[t] > best[t] ? z[t] : best[t];
                double now = z[t] > zp[t] ? z[t] : zp[t];
                delta += w[t] * (now - old);
            }
            acc[c] += delta;
        }
        for (size_t i = 0; i < n_changed; i++) {
            best[changed[i]] = zp[changed[i]];
        }
    }
    return kept;
}

static double finite_median(const double *x, size_t n, double *work);

#define N_BANDWIDTHS 4
#define N_FLOORS 5
#define N_HEDGES 5

static const double bandwidths[N_BANDWIDTHS] = {0.25, 0.5, 1.0, 2.0};
static const double floors[N_FLOORS] = {0.0, 0.02, 0.1, 0.5, 1e6};
/* the last is 1: the first step runs with it */
static const double hedges[N_HEDGES] = {0.0, 0.25, 0.5, 0.75, 1.0};

/* kb_recommend_tune's scratch: one allocation set for every held-out task and grid point */
typedef struct tune_work {
    double *sub, *sub0, *d, *w, *mean, *best, *ex, *acc, *lin;
    unsigned char *taken;
    size_t *list, *changed;
} tune_work;

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
    size_t n = list_only(x->list, x->sub, x->sub0, m, n_configs, x->w, wsum, k_eval, beta,
                         x->mean, x->acc, x->lin, x->best, x->changed, x->taken);
    double bst = 0, sum = 0;
    for (size_t i = 0; i < k_eval; i++) {
        if (i < n) {
            double sv = scores[t + x->list[i] * n_tasks];
            bst = !isnan(sv) && sv > bst ? sv : bst;
        }
        sum += 1.0 - bst;
    }
    *out = sum / (double)k_eval;
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
        kb_malloc_array(m * nc, sizeof(double)), kb_malloc_array(m * nc, sizeof(double)),
        kb_malloc_array(m, sizeof(double)), kb_malloc_array(m, sizeof(double)),
        kb_malloc_array(nc, sizeof(double)), kb_malloc_array(m, sizeof(double)),
        kb_malloc_array(N_BANDWIDTHS * m, sizeof(double)), kb_malloc_array(nc, sizeof(double)),
        kb_malloc_array(nc, sizeof(double)), kb_malloc_array(nc, 1),
        kb_malloc_array(k_eval, sizeof(size_t)), kb_malloc_array(m, sizeof(size_t))};
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
