#include "engine/recommend.h"

#include <math.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/stats.h"

#define LIST_TIE 1e-9

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
    }
    *n_out = 0;
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
     * neighbour tried cannot be credited with hedging for it.
     */
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
                    val += weights[t] * (sc > best[t] ? sc : best[t]);
                }
                val /= wsum;
            }
            /* equal list values (every neighbour already at its best) fall back to the mean */
            if (pick == (size_t)-1 || val > pick_val + LIST_TIE ||
                (val > pick_val - LIST_TIE && mean[c] > mean[pick])) {
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

int kb_recommend_tune(kb_recommend_weighting *out, const double *scores, const double *dist,
                      size_t n_tasks, size_t n_configs, size_t k_eval, kb_error *err)
{
    static const double bandwidths[] = {0.25, 0.5, 1.0, 2.0};
    static const double floors[] = {0.0, 0.02, 0.1, 0.5, 1e6};
    KB_CHECK_ARG(out != NULL && scores != NULL && dist != NULL && k_eval > 0);
    if (n_tasks < 3) {
        return kb_error_set(err, KB_EINVAL, "choosing task weights needs 3 or more tasks");
    }
    size_t m = n_tasks - 1;
    double *sub = kb_malloc_array(m * n_configs, sizeof *sub);
    double *d = kb_malloc_array(m, sizeof *d), *w = kb_malloc_array(m, sizeof *w);
    kb_recommend_item *items = kb_malloc_array(k_eval, sizeof *items);
    if (sub == NULL || d == NULL || w == NULL || items == NULL) {
        kb_free(sub);
        kb_free(d);
        kb_free(w);
        kb_free(items);
        return kb_error_set(err, KB_ENOMEM, "out of memory choosing task weights");
    }
    out->loo_regret = INFINITY;
    int rc = KB_OK;
    for (size_t bi = 0; bi < sizeof bandwidths / sizeof *bandwidths && rc == KB_OK; bi++) {
        for (size_t fi = 0; fi < sizeof floors / sizeof *floors && rc == KB_OK; fi++) {
            double total = 0;
            for (size_t t = 0; t < n_tasks && rc == KB_OK; t++) {
                /* the other tasks' scores and their distances to t */
                for (size_t c = 0; c < n_configs; c++) {
                    for (size_t r = 0, o = 0; r < n_tasks; r++) {
                        if (r != t) {
                            sub[o++ + c * m] = scores[r + c * n_tasks];
                        }
                    }
                }
                for (size_t r = 0, o = 0; r < n_tasks; r++) {
                    if (r != t) {
                        d[o++] = dist[t + r * n_tasks];
                    }
                }
                kb_recommend_weights(w, d, m, bandwidths[bi], floors[fi]);
                size_t n;
                rc = kb_recommend_rank(items, &n, sub, NULL, m, n_configs, w, k_eval, NULL, err);
                double best = 0, sum = 0;
                for (size_t i = 0; i < k_eval && rc == KB_OK; i++) {
                    if (i < n) {
                        double s = scores[t + items[i].config * n_tasks];
                        best = !isnan(s) && s > best ? s : best;
                    }
                    sum += 1.0 - best;
                }
                total += sum / (double)k_eval;
            }
            double mean = total / (double)n_tasks;
            if (rc == KB_OK && mean < out->loo_regret) {
                out->loo_regret = mean;
                out->bandwidth = bandwidths[bi];
                out->floor = floors[fi];
            }
        }
    }
    kb_free(sub);
    kb_free(d);
    kb_free(w);
    kb_free(items);
    return rc;
}
