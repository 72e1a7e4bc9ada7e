/*
 * Descriptive statistics over arrays of doubles, shared by meta-features, similarity
 * normalisation and curve judgement. NaN entries are skipped (treated as missing) by every
 * function; a statistic that cannot be computed (too few values, zero variance) is NaN.
 *
 * Moments follow the population definitions used by scipy.stats (bias=True): skewness
 * g1 = m3 / m2^1.5 and excess kurtosis g2 = m4 / m2^2 - 3, with central moments computed in
 * two passes for accuracy.
 */
#ifndef KB_ENGINE_STATS_H
#define KB_ENGINE_STATS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Summary of the finite-or-infinite non-NaN values of an array. */
typedef struct kb_stats_summary {
    size_t n;          /* non-NaN values */
    double mean;
    double var;        /* population variance (divide by n) */
    double min, max;
    double skewness;   /* NaN when n < 2 or var == 0 */
    double kurtosis;   /* excess; NaN when n < 2 or var == 0 */
} kb_stats_summary;

/** Summarise x[0], x[stride], ... (n entries). */
void kb_stats_summarize(kb_stats_summary *out, const double *x, size_t n, size_t stride);

double kb_stats_mean(const double *x, size_t n);
/** Sample standard deviation (divide by n - 1); NaN when fewer than 2 values. */
double kb_stats_std(const double *x, size_t n);
/**
 * Quantile q in [0, 1] with linear interpolation between order statistics (numpy's default,
 * "linear"). Sorts a copy in `work` (n doubles, may be NULL: then x is sorted in place).
 */
double kb_stats_quantile(double *x, size_t n, double q, double *work);
/** Median: kb_stats_quantile(x, n, 0.5, work). */
double kb_stats_median(double *x, size_t n, double *work);
/** Pearson correlation of the pairs where both are non-NaN; NaN if a side is constant. */
double kb_stats_pearson(const double *x, const double *y, size_t n);
/** Spearman rank correlation (average ranks for ties) over pairs where both are non-NaN. */
double kb_stats_spearman(const double *x, const double *y, size_t n);
/**
 * Average ranks (1-based; ties get their mean rank) of x into `ranks`; NaN stays NaN.
 * Returns 0, or -1 when out of memory.
 */
int kb_stats_rank(double *ranks, const double *x, size_t n);

#ifdef __cplusplus
}
#endif

#endif
