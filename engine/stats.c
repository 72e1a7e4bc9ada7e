#include "engine/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/alloc.h"

void kb_stats_summarize(kb_stats_summary *out, const double *x, size_t n, size_t stride)
{
    size_t k = 0;
    double sum = 0, mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double v = x[i * stride];
        if (isnan(v)) {
            continue;
        }
        k++;
        sum += v;
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    out->n = k;
    out->mean = k > 0 ? sum / (double)k : NAN;
    out->min = k > 0 ? mn : NAN;
    out->max = k > 0 ? mx : NAN;
    double m2 = 0, m3 = 0, m4 = 0;
    for (size_t i = 0; i < n; i++) {
        double v = x[i * stride];
        if (isnan(v)) {
            continue;
        }
        double d = v - out->mean, d2 = d * d;
        m2 += d2;
        m3 += d2 * d;
        m4 += d2 * d2;
    }
    if (k == 0) {
        out->var = out->skewness = out->kurtosis = NAN;
        return;
    }
    m2 /= (double)k;
    m3 /= (double)k;
    m4 /= (double)k;
    out->var = m2;
    /*
     * Zero variance up to rounding: a constant column's moments are noise, so report them as
     * missing rather than as huge ratios of tiny numbers.
     */
    if (k < 2 || m2 <= 1e-300 || m2 <= 1e-28 * out->mean * out->mean) {
        out->skewness = out->kurtosis = NAN;
    } else {
        out->skewness = m3 / pow(m2, 1.5);
        out->kurtosis = m4 / (m2 * m2) - 3.0;
    }
}

double kb_stats_mean(const double *x, size_t n)
{
    kb_stats_summary s;
    kb_stats_summarize(&s, x, n, 1);
    return s.mean;
}

double kb_stats_std(const double *x, size_t n)
{
    kb_stats_summary s;
    kb_stats_summarize(&s, x, n, 1);
    return s.n < 2 ? NAN : sqrt(s.var * (double)s.n / (double)(s.n - 1));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double kb_stats_quantile(double *x, size_t n, double q, double *work)
{
    double *v = work != NULL ? work : x;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isnan(x[i])) {
            v[k++] = x[i];
        }
    }
    if (k == 0) {
        return NAN;
    }
    qsort(v, k, sizeof *v, cmp_double);
    double pos = q * (double)(k - 1);
    size_t lo = (size_t)floor(pos);
    size_t hi = lo + 1 < k ? lo + 1 : lo;
    double frac = pos - (double)lo;
    return v[lo] + (v[hi] - v[lo]) * frac;
}

double kb_stats_median(double *x, size_t n, double *work)
{
    return kb_stats_quantile(x, n, 0.5, work);
}

double kb_stats_pearson(const double *x, const double *y, size_t n)
{
    double sx = 0, sy = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isnan(x[i]) && !isnan(y[i])) {
            sx += x[i];
            sy += y[i];
            k++;
        }
    }
    if (k < 2) {
        return NAN;
    }
    double mx = sx / (double)k, my = sy / (double)k, sxx = 0, syy = 0, sxy = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isnan(x[i]) && !isnan(y[i])) {
            double a = x[i] - mx, b = y[i] - my;
            sxx += a * a;
            syy += b * b;
            sxy += a * b;
        }
    }
    if (sxx <= 0 || syy <= 0) {
        return NAN;
    }
    return sxy / sqrt(sxx * syy);
}

typedef struct idx_val {
    double v;
    size_t i;
} idx_val;

static int cmp_idx_val(const void *a, const void *b)
{
    const idx_val *x = a, *y = b;
    if (x->v != y->v) {
        return (x->v > y->v) - (x->v < y->v);
    }
    return (x->i > y->i) - (x->i < y->i);
}

int kb_stats_rank(double *ranks, const double *x, size_t n)
{
    idx_val *iv = kb_malloc_array(n, sizeof *iv);
    if (iv == NULL) {
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        ranks[i] = NAN;
        if (!isnan(x[i])) {
            iv[k].v = x[i];
            iv[k].i = i;
            k++;
        }
    }
    qsort(iv, k, sizeof *iv, cmp_idx_val);
    for (size_t a = 0; a < k;) {
        size_t b = a;
        while (b + 1 < k && iv[b + 1].v == iv[a].v) {
            b++;
        }
        double r = 0.5 * (double)(a + b) + 1.0;
        for (size_t j = a; j <= b; j++) {
            ranks[iv[j].i] = r;
        }
        a = b + 1;
    }
    kb_free(iv);
    return 0;
}

double kb_stats_spearman(const double *x, const double *y, size_t n)
{
    double *xx = kb_malloc_array(n, sizeof *xx), *yy = kb_malloc_array(n, sizeof *yy);
    double *rx = kb_malloc_array(n, sizeof *rx), *ry = kb_malloc_array(n, sizeof *ry);
    double r = NAN;
    if (xx && yy && rx && ry) {
        /* rank only the complete pairs, as scipy.stats.spearmanr with nan_policy='omit' */
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (!isnan(x[i]) && !isnan(y[i])) {
                xx[k] = x[i];
                yy[k] = y[i];
                k++;
            }
        }
        if (kb_stats_rank(rx, xx, k) == 0 && kb_stats_rank(ry, yy, k) == 0) {
            r = kb_stats_pearson(rx, ry, k);
        }
    }
    kb_free(xx);
    kb_free(yy);
    kb_free(rx);
    kb_free(ry);
    return r;
}
