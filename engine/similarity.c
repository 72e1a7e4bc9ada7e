#include "engine/similarity.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/stats.h"

void kb_similarity_scaler_release(kb_similarity_scaler *s)
{
    kb_free(s->center);
    kb_free(s->scale);
    memset(s, 0, sizeof *s);
}

int kb_similarity_scaler_fit(kb_similarity_scaler *out, const double *x, size_t n_tasks,
                             size_t n_features, kb_error *err)
{
    memset(out, 0, sizeof *out);
    KB_CHECK_ARG(x != NULL || n_tasks == 0);
    double *col = kb_malloc_array(n_tasks, sizeof *col);
    double *work = kb_malloc_array(n_tasks, sizeof *work);
    out->center = kb_malloc_array(n_features, sizeof *out->center);
    out->scale = kb_malloc_array(n_features, sizeof *out->scale);
    if (col == NULL || work == NULL || out->center == NULL || out->scale == NULL) {
        kb_free(col);
        kb_free(work);
        kb_similarity_scaler_release(out);
        return kb_error_set(err, KB_ENOMEM, "out of memory for a %zu-task scaler", n_tasks);
    }
    out->n_features = n_features;
    for (size_t j = 0; j < n_features; j++) {
        for (size_t i = 0; i < n_tasks; i++) {
            col[i] = x[i * n_features + j];
        }
        double med = kb_stats_median(col, n_tasks, work);
        double q1 = kb_stats_quantile(col, n_tasks, 0.25, work);
        double q3 = kb_stats_quantile(col, n_tasks, 0.75, work);
        double scale = (q3 - q1) / 1.349;
        if (!(scale > 0) || !isfinite(scale)) {
            /* Over half the tasks share one value: fall back to the mean absolute deviation,
             * which still sees the minority that differs. */
            double sum = 0;
            size_t k = 0;
            for (size_t i = 0; i < n_tasks; i++) {
                if (!isnan(col[i])) {
                    sum += fabs(col[i] - med);
                    k++;
                }
            }
            scale = k > 0 ? sum / (double)k : 0;
        }
        out->center[j] = isnan(med) ? 0.0 : med;
        out->scale[j] = scale > 0 && isfinite(scale) ? scale : 1.0;
    }
    kb_free(col);
    kb_free(work);
    return KB_OK;
}

void kb_similarity_scaler_apply(const kb_similarity_scaler *s, double *x, size_t n_tasks)
{
    for (size_t i = 0; i < n_tasks; i++) {
        for (size_t j = 0; j < s->n_features; j++) {
            double *v = &x[i * s->n_features + j];
            *v = (*v - s->center[j]) / s->scale[j];
        }
    }
}

void kb_similarity_index_release(kb_similarity_index *ix)
{
    kb_free(ix->x);
    kb_free(ix->present);
    kb_free(ix->sqnorm);
    kb_free(ix->sqrt_w);
    memset(ix, 0, sizeof *ix);
}

int kb_similarity_index_build(kb_similarity_index *out, const double *z, size_t n_tasks,
                              size_t n_features, const double *weights, kb_error *err)
{
    memset(out, 0, sizeof *out);
    KB_CHECK_ARG(z != NULL || n_tasks == 0);
    if (n_features == 0 || n_tasks > SIZE_MAX / n_features) {
        return kb_error_set(err, KB_EINVAL, "similarity index needs 1 or more features");
    }
    size_t n = n_tasks * n_features;
    out->x = kb_malloc_array(n, sizeof *out->x);
    out->sqnorm = kb_malloc_array(n_tasks, sizeof *out->sqnorm);
    out->sqrt_w = kb_malloc_array(n_features, sizeof *out->sqrt_w);
    if (out->x == NULL || out->sqnorm == NULL || out->sqrt_w == NULL) {
        kb_similarity_index_release(out);
        return kb_error_set(err, KB_ENOMEM, "out of memory for a %zu x %zu similarity index",
                            n_tasks, n_features);
    }
    out->n_tasks = n_tasks;
    out->n_features = n_features;
    for (size_t j = 0; j < n_features; j++) {
        double w = weights != NULL ? weights[j] : 1.0;
        out->sqrt_w[j] = w > 0 && isfinite(w) ? sqrt(w) : 0.0;
    }
    int any_missing = 0;
    for (size_t i = 0; i < n && !any_missing; i++) {
        any_missing = isnan(z[i]);
    }
    if (any_missing) {
        out->present = kb_malloc(n);
        if (out->present == NULL) {
            kb_similarity_index_release(out);
            return kb_error_set(err, KB_ENOMEM, "out of memory for the missing-value mask");
        }
    }
    for (size_t i = 0; i < n_tasks; i++) {
        double s = 0;
        for (size_t j = 0; j < n_features; j++) {
            double v = z[i * n_features + j];
            int here = !isnan(v);
            if (out->present != NULL) {
                out->present[i * n_features + j] = (unsigned char)here;
            }
            double xv = here ? out->sqrt_w[j] * v : 0.0;
            out->x[i * n_features + j] = xv;
            s += xv * xv;
        }
        out->sqnorm[i] = s;
    }
    return KB_OK;
}

double kb_similarity_distance(const kb_similarity_index *ix, size_t task, const double *q,
                              kb_similarity_metric metric, size_t *n_shared)
{
    const double *x = ix->x + task * ix->n_features;
    const unsigned char *pr = ix->present ? ix->present + task * ix->n_features : NULL;
    double d = 0;
    size_t shared = 0;
    for (size_t j = 0; j < ix->n_features; j++) {
        if (isnan(q[j]) || (pr != NULL && !pr[j])) {
            continue;
        }
        double diff = x[j] - ix->sqrt_w[j] * q[j];
        d += metric == KB_SIMILARITY_L1 ? ix->sqrt_w[j] * fabs(diff) : diff * diff;
        shared++;
    }
    if (n_shared != NULL) {
        *n_shared = shared;
    }
    if (shared == 0) {
        return INFINITY;
    }
    d *= (double)ix->n_features / (double)shared;
    return metric == KB_SIMILARITY_L2 ? sqrt(d) : d;
}

double kb_similarity_distance_imputed(const double *a, const double *b, size_t n_features)
{
    double d = 0;
    for (size_t j = 0; j < n_features; j++) {
        double x = isnan(a[j]) ? 0.0 : a[j], y = isnan(b[j]) ? 0.0 : b[j];
        d += fabs(x - y);
    }
    return d;
}

/*
 * The 16-bit scan is the one loop of a large query that reads every task, so on x86-64 with
 * GCC or Clang it is also compiled for AVX2 and picked at load time (an ifunc; the default
 * build targets baseline x86-64, SSE2: 8 lanes instead of 4, and a one-instruction sign
 * extension). Same arithmetic, same results, either way. kb_similarity_pairs_imputed too
 * (kb recommend's 128 x 128 model distances: 4 doubles per instruction instead of 2).
 */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define SCAN_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef SCAN_CLONES
#define SCAN_CLONES
#endif

#define PAIR_LANES 8

SCAN_CLONES
int kb_similarity_pairs_imputed(double *out, const double *x, const size_t *pick, size_t n,
                                size_t n_features, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && (n == 0 || (x != NULL && pick != NULL)));
    /* the imputed tasks feature-major, padded to whole lanes with zero columns */
    size_t np = (n + PAIR_LANES - 1) / PAIR_LANES * PAIR_LANES, nf = n_features;
    double *f = kb_calloc(np * (nf ? nf : 1), sizeof *f);
    if (f == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory: %zu task distances", n);
    }
    for (size_t a = 0; a < n; a++) {
        const double *row = x + pick[a] * nf;
        for (size_t j = 0; j < nf; j++) {
            f[a + j * np] = isnan(row[j]) ? 0.0 : row[j];
        }
    }
    for (size_t a = 0; a < n; a++) {
        out[a + a * n] = 0.0;
        /* tasks b < a in blocks of PAIR_LANES: a constant trip count, so it vectorises */
        for (size_t b0 = 0; b0 < a; b0 += PAIR_LANES) {
            double acc[PAIR_LANES] = {0};
            for (size_t j = 0; j < nf; j++) {
                const double *col = f + j * np + b0;
                double ya = f[a + j * np];
                for (size_t l = 0; l < PAIR_LANES; l++) {
                    acc[l] += fabs(ya - col[l]);
                }
            }
            for (size_t l = 0; l < PAIR_LANES && b0 + l < a; l++) {
                out[a + (b0 + l) * n] = out[b0 + l + a * n] = acc[l];
            }
        }
    }
    kb_free(f);
    return KB_OK;
}

/* Max-heap on (distance, task) of the k best so far: the root is the worst kept. */
static int worse(const kb_similarity_hit *a, const kb_similarity_hit *b)
{
    return a->distance > b->distance || (a->distance == b->distance && a->task > b->task);
}

static void sift_down(kb_similarity_hit *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(&h[l], &h[m])) {
            m = l;
        }
        if (r < n && worse(&h[r], &h[m])) {
            m = r;
        }
        if (m == i) {
            return;
        }
        kb_similarity_hit t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_offer(kb_similarity_hit *h, size_t *n, size_t k, kb_similarity_hit hit)
{
    if (*n < k) {
        size_t i = (*n)++;
        h[i] = hit;
        while (i > 0 && worse(&h[i], &h[(i - 1) / 2])) {
            kb_similarity_hit t = h[i];
            h[i] = h[(i - 1) / 2];
            h[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (worse(&h[0], &hit)) {
        h[0] = hit;
        sift_down(h, *n, 0);
    }
}

static int hit_cmp(const void *a, const void *b)
{
    return worse(a, b) ? 1 : worse(b, a) ? -1 : 0;
}

int kb_similarity_knn(kb_similarity_hit *out, size_t *n_out, const kb_similarity_index *ix,
                      const double *q, size_t k, kb_similarity_metric metric, size_t exclude,
                      double *work, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && n_out != NULL && ix != NULL && q != NULL);
    KB_CHECK_ARG(metric == KB_SIMILARITY_L1 || metric == KB_SIMILARITY_L2);
    *n_out = 0;
    size_t d = ix->n_features, n = ix->n_tasks;
    int q_complete = 1;
    for (size_t j = 0; j < d; j++) {
        q_complete &= !isnan(q[j]);
    }
    double *own = NULL;
    size_t kept = 0;
    if (metric == KB_SIMILARITY_L2 && ix->present == NULL && q_complete && n > 0 &&
        n <= INT32_MAX && d <= INT32_MAX) {
        /* Dense fast path: one pass over the matrix through BLAS. */
        if (work == NULL) {
            work = own = kb_malloc_array(n, sizeof *work);
            if (own == NULL) {
                return kb_error_set(err, KB_ENOMEM, "out of memory for %zu distances", n);
            }
        }
        double qw[512], *qv = d <= 512 ? qw : kb_malloc_array(d, sizeof *qv);
        if (qv == NULL) {
            kb_free(own);
            return kb_error_set(err, KB_ENOMEM, "out of memory for the query");
        }
        double qq = 0;
        for (size_t j = 0; j < d; j++) {
            qv[j] = ix->sqrt_w[j] * q[j];
            qq += qv[j] * qv[j];
        }
        /* x is n x d row-major = d x n column-major: work = x^T q */
        cblas_dgemv(CblasColMajor, CblasTrans, (int)d, (int)n, 1.0, ix->x, (int)d, qv, 1, 0.0,
                    work, 1);
        for (size_t i = 0; i < n; i++) {
            if (i == exclude) {
                continue;
            }
            /* ||a||^2 + ||b||^2 - 2 a.b is >= 0 in exact arithmetic: clamp the rounding */
            double dd = ix->sqnorm[i] + qq - 2.0 * work[i];
            kb_similarity_hit h = {i, sqrt(dd > 0 ? dd : 0), d};
            heap_offer(out, &kept, k, h);
        }
        if (qv != qw) {
            kb_free(qv);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            if (i == exclude) {
                continue;
            }
            size_t shared;
            double dist = kb_similarity_distance(ix, i, q, metric, &shared);
            if (shared == 0) {
                continue;
            }
            kb_similarity_hit h = {i, dist, shared};
            heap_offer(out, &kept, k, h);
        }
    }
    kb_free(own);
    qsort(out, kept, sizeof *out, hit_cmp);
    *n_out = kept;
    return KB_OK;
}

typedef struct contrib {
    size_t j;
    double c;
} contrib;

static int contrib_cmp(const void *a, const void *b)
{
    const contrib *x = a, *y = b;
    if (x->c != y->c) {
        return (x->c > y->c) - (x->c < y->c);
    }
    return (x->j > y->j) - (x->j < y->j);
}

void kb_similarity_contributions(double *out, const kb_similarity_index *ix, size_t task,
                                 const double *q, kb_similarity_metric metric)
{
    const double *x = ix->x + task * ix->n_features;
    const unsigned char *pr = ix->present ? ix->present + task * ix->n_features : NULL;
    for (size_t j = 0; j < ix->n_features; j++) {
        if (isnan(q[j]) || (pr != NULL && !pr[j])) {
            out[j] = NAN;
            continue;
        }
        double diff = x[j] - ix->sqrt_w[j] * q[j];
        out[j] = metric == KB_SIMILARITY_L1 ? ix->sqrt_w[j] * fabs(diff) : diff * diff;
    }
}

size_t kb_similarity_explain(size_t *features_out, double *contrib_out, size_t n_out,
                             const kb_similarity_index *ix, size_t task, const double *q,
                             kb_similarity_metric metric, const double *typical)
{
    size_t d = ix->n_features;
    contrib *c = kb_malloc_array(d, sizeof *c);
    double *all = kb_malloc_array(d, sizeof *all);
    if (c == NULL || all == NULL) {
        kb_free(c);
        kb_free(all);
        return 0;
    }
    kb_similarity_contributions(all, ix, task, q, metric);
    size_t m = 0;
    for (size_t j = 0; j < d; j++) {
        if (isnan(all[j]) || ix->sqrt_w[j] == 0 || (typical != NULL && !(typical[j] > 0))) {
            continue;
        }
        c[m].j = j;
        c[m].c = typical != NULL ? all[j] / typical[j] : all[j];
        m++;
    }
    qsort(c, m, sizeof *c, contrib_cmp);
    size_t w = m < n_out ? m : n_out;
    for (size_t i = 0; i < w; i++) {
        features_out[i] = c[i].j;
        if (contrib_out != NULL) {
            contrib_out[i] = all[c[i].j];
        }
    }
    kb_free(c);
    kb_free(all);
    return w;
}

double kb_similarity_rank_agreement(const double *a, const double *b, size_t n)
{
    /* Kendall tau-b: (concordant - discordant) / sqrt((n0 - ties_a)(n0 - ties_b)) */
    double conc = 0, disc = 0, ties_a = 0, ties_b = 0, pairs = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) {
            continue;
        }
        for (size_t j = i + 1; j < n; j++) {
            if (isnan(a[j]) || isnan(b[j])) {
                continue;
            }
            double da = a[i] - a[j], db = b[i] - b[j];
            pairs++;
            if (da == 0 && db == 0) {
                ties_a++;
                ties_b++;
            } else if (da == 0) {
                ties_a++;
            } else if (db == 0) {
                ties_b++;
            } else if ((da > 0) == (db > 0)) {
                conc++;
            } else {
                disc++;
            }
        }
    }
    double den = sqrt((pairs - ties_a) * (pairs - ties_b));
    return den > 0 ? (conc - disc) / den : NAN;
}

int kb_similarity_learn_weights(double *w_out, const double *z, size_t n_tasks,
                                size_t n_features, const double *target, size_t max_iter,
                                kb_error *err)
{
    KB_CHECK_ARG(w_out != NULL && z != NULL && target != NULL);
    size_t d = n_features;
    /* Per-pair feature distances are the design matrix of a non-negative least squares. */
    size_t n_pairs = 0;
    for (size_t i = 0; i < n_tasks; i++) {
        for (size_t j = i + 1; j < n_tasks; j++) {
            n_pairs += !isnan(target[i + j * n_tasks]);
        }
    }
    if (n_pairs == 0) {
        return kb_error_set(err, KB_ENUMERIC, "no task pair has a performance similarity");
    }
    double *a = kb_malloc_array(n_pairs * d, sizeof *a);
    double *t = kb_malloc_array(n_pairs, sizeof *t);
    double *g = kb_malloc_array(d, sizeof *g), *wn = kb_malloc_array(d, sizeof *wn);
    double *r = kb_malloc_array(n_pairs, sizeof *r);
    if (a == NULL || t == NULL || g == NULL || wn == NULL || r == NULL) {
        kb_free(a);
        kb_free(t);
        kb_free(g);
        kb_free(wn);
        kb_free(r);
        return kb_error_set(err, KB_ENOMEM, "out of memory learning feature weights");
    }
    size_t p = 0;
    for (size_t i = 0; i < n_tasks; i++) {
        for (size_t j = i + 1; j < n_tasks; j++) {
            double tv = target[i + j * n_tasks];
            if (isnan(tv)) {
                continue;
            }
            for (size_t f = 0; f < d; f++) {
                double zi = z[i * d + f], zj = z[j * d + f];
                a[p * d + f] = isnan(zi) || isnan(zj) ? 0.0 : fabs(zi - zj);
            }
            t[p++] = tv;
        }
    }
    for (size_t f = 0; f < d; f++) {
        w_out[f] = 1.0;
    }
    /* Objective 0.5 ||A w - t||^2 over w >= 0; projected gradient with backtracking. */
    double step = 1.0, loss = INFINITY;
    for (size_t it = 0; it < max_iter; it++) {
        double cur = 0;
        for (size_t q = 0; q < n_pairs; q++) {
            double s = -t[q];
            for (size_t f = 0; f < d; f++) {
                s += a[q * d + f] * w_out[f];
            }
            r[q] = s;
            cur += 0.5 * s * s;
        }
        loss = cur;
        for (size_t f = 0; f < d; f++) {
            g[f] = 0;
        }
        for (size_t q = 0; q < n_pairs; q++) {
            for (size_t f = 0; f < d; f++) {
                g[f] += a[q * d + f] * r[q];
            }
        }
        int improved = 0;
        for (int tries = 0; tries < 30 && !improved; tries++) {
            double nl = 0;
            for (size_t f = 0; f < d; f++) {
                double v = w_out[f] - step * g[f];
                wn[f] = v > 0 ? v : 0;
            }
            for (size_t q = 0; q < n_pairs; q++) {
                double s = -t[q];
                for (size_t f = 0; f < d; f++) {
                    s += a[q * d + f] * wn[f];
                }
                nl += 0.5 * s * s;
            }
            if (nl < loss) {
                improved = 1;
                memcpy(w_out, wn, d * sizeof *wn);
                step *= 1.5;
            } else {
                step *= 0.5;
            }
        }
        if (!improved) {
            break; /* projected gradient stationary within the line search's resolution */
        }
    }
    double mean = 0;
    for (size_t f = 0; f < d; f++) {
        mean += w_out[f];
    }
    mean /= (double)d;
    for (size_t f = 0; f < d; f++) {
        w_out[f] = mean > 0 ? w_out[f] / mean : 1.0;
    }
    kb_free(a);
    kb_free(t);
    kb_free(g);
    kb_free(wn);
    kb_free(r);
    return KB_OK;
}

#define SCAN_BLOCK 1024

void kb_similarity_scan_l1_f32(float *dist_out, const float *x, size_t ld, size_t n_tasks,
                               size_t n_features, const double *q)
{
    float acc[SCAN_BLOCK], cnt[SCAN_BLOCK];
    for (size_t t0 = 0; t0 < n_tasks; t0 += SCAN_BLOCK) {
        size_t nb = n_tasks - t0 < SCAN_BLOCK ? n_tasks - t0 : SCAN_BLOCK;
        for (size_t i = 0; i < nb; i++) {
            acc[i] = 0.0f;
            cnt[i] = 0.0f;
        }
        for (size_t j = 0; j < n_features; j++) {
            if (isnan(q[j])) {
                continue;
            }
            const float *col = x + j * ld + t0;
            float qj = (float)q[j];
            for (size_t i = 0; i < nb; i++) {
                /*
                 * A missing value is NaN, and |NaN| is the only |x| whose bits exceed those
                 * of +inf: an integer mask drops it without a branch, so the loop vectorises.
                 */
                float d = fabsf(col[i] - qj);
                uint32_t bits;
                memcpy(&bits, &d, sizeof bits);
                uint32_t keep = bits <= 0x7f800000u ? 0xffffffffu : 0u;
                bits &= keep;
                memcpy(&d, &bits, sizeof d);
                acc[i] += d;
                cnt[i] += (float)(keep & 1u);
            }
        }
        for (size_t i = 0; i < nb; i++) {
            dist_out[t0 + i] = cnt[i] > 0 ? acc[i] * ((float)n_features / cnt[i]) : INFINITY;
        }
    }
}

SCAN_CLONES
void kb_similarity_scan_l1_i16(float *dist_out, const int16_t *x, size_t ld, size_t n_tasks,
                               size_t n_features, const double *q)
{
    /*
     * Sums in quantum units (|v - 256 q|, scaled back once per task): scaling by a power of
     * two is exact in float, so this equals |v / 256 - q| summed, without a multiply per value.
     */
    float acc[SCAN_BLOCK], cnt[SCAN_BLOCK];
    const float back = (float)n_features / (float)KB_SIMILARITY_I16_SCALE;
    for (size_t t0 = 0; t0 < n_tasks; t0 += SCAN_BLOCK) {
        size_t nb = n_tasks - t0 < SCAN_BLOCK ? n_tasks - t0 : SCAN_BLOCK;
        for (size_t i = 0; i < nb; i++) {
            acc[i] = 0.0f;
            cnt[i] = 0.0f;
        }
        for (size_t j = 0; j < n_features; j++) {
            if (isnan(q[j])) {
                continue;
            }
            const int16_t *col = x + j * ld + t0;
            float qj = (float)(q[j] * KB_SIMILARITY_I16_SCALE);
            /*
             * A full block has a constant trip count: GCC's -O2 (the default RelWithDebInfo
             * build) vectorises only such loops, and the scan is the query's largest loop
             * (scalar, it took 3-4 ms more per query at 100,000 tasks). Same arithmetic per
             * task, so the same results.
             */
            if (nb == SCAN_BLOCK) {
                for (size_t i = 0; i < SCAN_BLOCK; i++) {
                    int v = col[i];
                    float keep = v != KB_SIMILARITY_I16_MISSING ? 1.0f : 0.0f;
                    acc[i] += fabsf((float)v - qj) * keep;
                    cnt[i] += keep;
                }
                continue;
            }
            for (size_t i = 0; i < nb; i++) {
                /* a missing value gives a finite d times 0: branch-free, so it vectorises */
                int v = col[i];
                float keep = v != KB_SIMILARITY_I16_MISSING ? 1.0f : 0.0f;
                acc[i] += fabsf((float)v - qj) * keep;
                cnt[i] += keep;
            }
        }
        for (size_t i = 0; i < nb; i++) {
            dist_out[t0 + i] = cnt[i] > 0 ? acc[i] * (back / cnt[i]) : INFINITY;
        }
    }
}

double kb_similarity_i16_bound(size_t n_features)
{
    return (double)n_features * 0.5 / KB_SIMILARITY_I16_SCALE;
}
