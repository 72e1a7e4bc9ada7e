/*
 * Task similarity: which past tasks behave like a new one.
 *
 * Meta-feature similarity. Each task is a vector of meta-features (NaN = missing). A robust
 * scaler learned from the knowledge base's tasks only (never the query) centres each feature
 * on its median and divides by its interquartile range / 1.349 (the normal-consistent IQR;
 * falling back to the mean absolute deviation around the median, then to 1 for a constant
 * feature), so that heavy-tailed features such as row counts do not dominate. Distances are
 * L1 (as auto-sklearn's meta-learning uses), L2, or either with per-feature weights, computed
 * over the features present in both vectors and rescaled to the full dimension
 * (d * n_features / n_shared), so a task with missing features is not artificially near.
 * k nearest tasks come from one dense scan of the task-contiguous matrix: for L2 with no
 * missing values a single BLAS dgemv (||x||^2 - 2 x.q + ||q||^2, clamped at 0), otherwise a
 * straight loop; selection keeps a k-heap, so the scan is O(n d) time and O(k) extra memory.
 *
 * Performance similarity. Once the new task has results for configurations the other tasks
 * also evaluated, two tasks are alike when they rank those configurations alike (the idea
 * behind RGPE and TST-R): kb_similarity_rank_agreement is Kendall's tau-b over the shared
 * configurations, in [-1, 1].
 *
 * Learned weights. kb_similarity_learn_weights fits non-negative per-feature weights so that
 * weighted L1 meta-feature distance predicts performance dissimilarity (1 - tau) between pairs
 * of knowledge-base tasks, by projected gradient on the squared error; it lets the data say
 * which meta-features matter for a given search space.
 */
#ifndef KB_ENGINE_SIMILARITY_H
#define KB_ENGINE_SIMILARITY_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kb_similarity_metric {
    KB_SIMILARITY_L1 = 1,
    KB_SIMILARITY_L2 = 2
} kb_similarity_metric;

/** Per-feature robust scaling: z = (x - center) / scale. */
typedef struct kb_similarity_scaler {
    size_t n_features;
    double *center; /* n_features medians */
    double *scale;  /* n_features positive scales */
} kb_similarity_scaler;

/**
 * Learn the scaler from `n_tasks` task vectors (task-contiguous: task i's features at
 * x[i * n_features ...]). Features missing in every task get center 0, scale 1.
 * @return KB_OK; KB_ENOMEM. Caller releases `out` with kb_similarity_scaler_release().
 */
int kb_similarity_scaler_fit(kb_similarity_scaler *out, const double *x, size_t n_tasks,
                             size_t n_features, kb_error *err);
/** Scale `n_tasks` task vectors in place (NaN stays NaN). */
void kb_similarity_scaler_apply(const kb_similarity_scaler *s, double *x, size_t n_tasks);
void kb_similarity_scaler_release(kb_similarity_scaler *s);

/** The scaled knowledge base, ready for scans. */
typedef struct kb_similarity_index {
    size_t n_tasks, n_features;
    double *x;       /* n_tasks x n_features task-contiguous: sqrt(w_j) z_ij, missing as 0 */
    unsigned char *present; /* n_tasks x n_features, 1 = present; NULL if none is missing */
    double *sqnorm;  /* n_tasks: ||x_i||^2 (L2 fast path) */
    double *sqrt_w;  /* n_features: sqrt of the non-negative feature weights */
} kb_similarity_index;

/**
 * Build the index from scaled task vectors and optional weights (NULL = all 1).
 * Caller releases `out` with kb_similarity_index_release().
 */
int kb_similarity_index_build(kb_similarity_index *out, const double *z, size_t n_tasks,
                              size_t n_features, const double *weights, kb_error *err);
void kb_similarity_index_release(kb_similarity_index *ix);

/** One neighbour. */
typedef struct kb_similarity_hit {
    size_t task;       /* row in the index */
    double distance;   /* rescaled to the full dimension */
    size_t n_shared;   /* features present in both */
} kb_similarity_hit;

/**
 * L1 distance between two scaled task vectors (n_features each, NaN = missing) with every
 * missing value taken as 0, the knowledge base's median after scaling, and no rescaling: a
 * metric on the imputed vectors, so exp(-d / h) is a positive semi-definite (Laplacian)
 * kernel, which kb_similarity_distance's rescaling to the shared features does not guarantee.
 * The two agree where no feature is missing.
 */
double kb_similarity_distance_imputed(const double *a, const double *b, size_t n_features);

/**
 * Every pairwise kb_similarity_distance_imputed of n tasks, x + pick[a] * n_features for a <
 * n, into out (n x n column-major, symmetric, zero diagonal); each value bit-identical to
 * the single call (the same terms added in the same order), computed eight pairs at a time.
 * @return KB_OK; KB_ENOMEM.
 */
int kb_similarity_pairs_imputed(double *out, const double *x, const size_t *pick, size_t n,
                                size_t n_features, kb_error *err);

/**
 * The k nearest tasks to the scaled query `q` (NaN = missing), nearest first (ties by task
 * index). `exclude` (or (size_t)-1) skips one task, for leave-one-out. `work` is n_tasks
 * doubles of scratch or NULL (then allocated). Tasks sharing no feature with q are skipped.
 * @param[out] out   k hits; `*n_out` says how many were filled (fewer if the index is small)
 * @return KB_OK; KB_EINVAL; KB_ENOMEM.
 */
int kb_similarity_knn(kb_similarity_hit *out, size_t *n_out, const kb_similarity_index *ix,
                      const double *q, size_t k, kb_similarity_metric metric, size_t exclude,
                      double *work, kb_error *err);

/** Distance between the query and one task of the index (as kb_similarity_knn computes it). */
double kb_similarity_distance(const kb_similarity_index *ix, size_t task, const double *q,
                              kb_similarity_metric metric, size_t *n_shared);

/**
 * Why task `task` is near `q`: the `n_out` features (present in both, non-zero weight) where
 * the task is closest to the query, closest first, into features_out/contrib_out. With
 * `typical` (n_features values, e.g. each feature's median contribution over all tasks) a
 * feature ranks by contribution / typical, so the reasons are the features in which this
 * task is unusually close rather than ones every task shares; features whose typical
 * contribution is 0 are then skipped. NULL ranks by the contribution itself.
 * @return how many were written.
 */
size_t kb_similarity_explain(size_t *features_out, double *contrib_out, size_t n_out,
                             const kb_similarity_index *ix, size_t task, const double *q,
                             kb_similarity_metric metric, const double *typical);

/** Per-feature contribution of `task` to its distance from `q` (NaN where not shared). */
void kb_similarity_contributions(double *out, const kb_similarity_index *ix, size_t task,
                                 const double *q, kb_similarity_metric metric);

/**
 * A fast approximate L1 scan for large knowledge bases: distances from the scaled query `q`
 * (n_features doubles, NaN = missing) to every task of a float32 feature-major matrix
 * (task t's feature j at x[j * ld + t], NaN = missing, unweighted), over the features present
 * in both and rescaled to the full dimension as kb_similarity_distance does; INFINITY for a
 * task sharing no feature. Float32 and a different summation order make it agree with the
 * float64 distance to about 1e-6 relative: use it to pick candidates, then compute their exact
 * distances. Tasks are processed in blocks so the accumulators stay in L1 cache and the inner
 * loop is branch-free (it vectorises); the cost is one pass over n_tasks x (features present
 * in q) floats.
 */
void kb_similarity_scan_l1_f32(float *dist_out, const float *x, size_t ld, size_t n_tasks,
                               size_t n_features, const double *q);

/** Missing value and scale of kb_similarity_scan_l1_i16's quantised features. */
#define KB_SIMILARITY_I16_MISSING (-32768)
#define KB_SIMILARITY_I16_SCALE 256.0

/**
 * As kb_similarity_scan_l1_f32 on 16-bit quantised features: x holds round(z * 256) clamped
 * to [-32767, 32767] (KB_SIMILARITY_I16_MISSING = missing), half the bytes of float32. For a
 * task with no clamped value each distance is within kb_similarity_i16_bound(n_features) (plus
 * float32 rounding, ~1e-6 relative) of the exact one, which lets a caller pick a candidate set
 * guaranteed to contain the exact nearest tasks.
 */
void kb_similarity_scan_l1_i16(float *dist_out, const int16_t *x, size_t ld, size_t n_tasks,
                               size_t n_features, const double *q);
/** Bound on |scan - exact| for unclamped tasks: n_features * 0.5 / 256 (rescaled L1). */
double kb_similarity_i16_bound(size_t n_features);

/**
 * Kendall's tau-b between a[i] and b[i] over the i where both are non-NaN; NaN when fewer than
 * two pairs or either side is constant. O(n^2), meant for tens to hundreds of configurations.
 */
double kb_similarity_rank_agreement(const double *a, const double *b, size_t n);

/**
 * Learn non-negative feature weights so that weighted L1 distance between scaled tasks i, j
 * approximates target[i + j * n_tasks] (e.g. 1 - tau_ij; NaN pairs ignored), by projected
 * gradient with a backtracking step, at most max_iter iterations. Weights are normalised to
 * mean 1. @return KB_OK; KB_ENOMEM; KB_ENUMERIC when no pair has a target.
 */
int kb_similarity_learn_weights(double *w_out, const double *z, size_t n_tasks,
                                size_t n_features, const double *target, size_t max_iter,
                                kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
