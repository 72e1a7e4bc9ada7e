/* engine/similarity: scaling, distances with missing values, k-NN, explanations, tau, weights. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "engine/core/rng.h"
#include "engine/similarity.h"

static void test_scaler_uses_median_and_iqr(void)
{
    /* one feature over 5 tasks: 1 2 3 4 100 -> median 3, IQR 4-2 = 2 */
    double x[5] = {1, 2, 3, 4, 100};
    kb_similarity_scaler s;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_similarity_scaler_fit(&s, x, 5, 1, &err), err);
    CHECK_NEAR(s.center[0], 3.0, 0, 1e-12);
    CHECK_NEAR(s.scale[0], 2.0 / 1.349, 1e-12, 0);
    kb_similarity_scaler_apply(&s, x, 5);
    CHECK_NEAR(x[4], 97.0 * 1.349 / 2.0, 1e-12, 0);
    kb_similarity_scaler_release(&s);
}

static void test_scaler_constant_and_missing_features(void)
{
    double nan = NAN;
    /* feature 0 constant except one task; feature 1 all missing */
    double x[10] = {5, nan, 5, nan, 5, nan, 5, nan, 9, nan};
    kb_similarity_scaler s;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_similarity_scaler_fit(&s, x, 5, 2, &err), err);
    CHECK_NEAR(s.center[0], 5.0, 0, 0);
    CHECK_NEAR(s.scale[0], 0.8, 0, 1e-12); /* IQR 0, so mean |x - 5| = 4/5 */
    CHECK_NEAR(s.center[1], 0.0, 0, 0);
    CHECK_NEAR(s.scale[1], 1.0, 0, 0);
    kb_similarity_scaler_release(&s);
}

static void test_knn_l1_l2_exact_and_rescaled_for_missing(void)
{
    double nan = NAN;
    double z[4 * 3] = {0, 0, 0, /* task 0 */
                       1, 1, 1, /* task 1 */
                       3, 0, 0, /* task 2 */
                       nan, 0.5, 0.5}; /* task 3: first feature missing */
    kb_similarity_index ix;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_similarity_index_build(&ix, z, 4, 3, NULL, &err), err);
    double q[3] = {0.5, 0.5, 0.5};
    kb_similarity_hit hits[4];
    size_t n;
    CHECK_OK(kb_similarity_knn(hits, &n, &ix, q, 4, KB_SIMILARITY_L1, (size_t)-1, NULL, &err),
             err);
    CHECK(n == 4);
    /* task 3: 0 over 2 shared features -> 0; tasks 0 and 1: 1.5; task 2: 2.5 + 1 = 3.5 */
    CHECK(hits[0].task == 3 && hits[0].distance == 0.0 && hits[0].n_shared == 2);
    CHECK(hits[1].task == 0 && fabs(hits[1].distance - 1.5) < 1e-12);
    CHECK(hits[2].task == 1 && fabs(hits[2].distance - 1.5) < 1e-12);
    CHECK(hits[3].task == 2 && fabs(hits[3].distance - 3.5) < 1e-12);
    CHECK_OK(kb_similarity_knn(hits, &n, &ix, q, 2, KB_SIMILARITY_L2, 3, NULL, &err), err);
    CHECK(n == 2 && hits[0].task == 0 && hits[1].task == 1);
    CHECK_NEAR(hits[0].distance, sqrt(0.75), 1e-12, 0);
    kb_similarity_index_release(&ix);
}

static void test_knn_dense_blas_path_matches_loop(void)
{
    enum { N = 500, D = 7 };
    double *z = kb_malloc_array(N * D, sizeof *z);
    kb_rng rng;
    kb_rng_seed(&rng, 7);
    for (size_t i = 0; i < N * D; i++) {
        z[i] = kb_rng_normal(&rng);
    }
    double w[D] = {1, 2, 0.5, 1, 0, 3, 1};
    kb_similarity_index ix;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_similarity_index_build(&ix, z, N, D, w, &err), err);
    double q[D];
    for (size_t j = 0; j < D; j++) {
        q[j] = kb_rng_normal(&rng);
    }
    kb_similarity_hit hits[10];
    size_t n;
    CHECK_OK(kb_similarity_knn(hits, &n, &ix, q, 10, KB_SIMILARITY_L2, (size_t)-1, NULL, &err),
             err);
    CHECK(n == 10);
    /* brute force in the plainest way */
    for (size_t r = 0; r < n; r++) {
        double ref = 0;
        for (size_t j = 0; j < D; j++) {
            double d = z[hits[r].task * D + j] - q[j];
            ref += w[j] * d * d;
        }
        CHECK_NEAR(hits[r].distance, sqrt(ref), 1e-9, 1e-12);
        if (r > 0) {
            CHECK(hits[r].distance >= hits[r - 1].distance);
        }
    }
    size_t better = 0;
    for (size_t i = 0; i < N; i++) {
        double ref = 0;
        for (size_t j = 0; j < D; j++) {
            double d = z[i * D + j] - q[j];
            ref += w[j] * d * d;
        }
        better += sqrt(ref) < hits[9].distance - 1e-12;
    }
    CHECK(better == 9);
    kb_similarity_index_release(&ix);
    kb_free(z);
}

static void test_explain_orders_features_by_contribution(void)
{
    double z[3] = {0, 5, 1};
    kb_similarity_index ix;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_similarity_index_build(&ix, z, 1, 3, NULL, &err), err);
    double q[3] = {0, 0, 0};
    size_t f[3];
    double c[3];
    CHECK(kb_similarity_explain(f, c, 3, &ix, 0, q, KB_SIMILARITY_L1, NULL) == 3);
    CHECK(f[0] == 0 && f[1] == 2 && f[2] == 1);
    CHECK(c[0] == 0 && c[1] == 1 && c[2] == 5);
    /* relative to typical contributions: feature 0 is shared by everyone (typical 0: skipped),
     * feature 1 (5 vs typical 50) is unusually close, feature 2 (1 vs typical 1) is not */
    double typical[3] = {0, 50, 1};
    CHECK(kb_similarity_explain(f, c, 3, &ix, 0, q, KB_SIMILARITY_L1, typical) == 2);
    CHECK(f[0] == 1 && f[1] == 2);
    CHECK(c[0] == 5 && c[1] == 1);
    kb_similarity_index_release(&ix);
}

static void test_kendall_tau_b_matches_scipy(void)
{
    /* scipy.stats.kendalltau([1,2,3,4,5],[3,1,2,5,4]) = 0.4; with ties below = 0.7378647873726218 */
    double a[5] = {1, 2, 3, 4, 5}, b[5] = {3, 1, 2, 5, 4};
    CHECK_NEAR(kb_similarity_rank_agreement(a, b, 5), 0.4, 1e-12, 0);
    double c[5] = {1, 1, 2, 3, 4}, d[5] = {1, 2, 2, 3, 4};
    CHECK_NEAR(kb_similarity_rank_agreement(c, d, 5), 0.8888888888888888, 1e-12, 0);
    double e[3] = {1, 1, 1};
    CHECK(isnan(kb_similarity_rank_agreement(a, e, 3)));
}

static void test_learned_weights_find_the_informative_feature(void)
{
    /* feature 0 decides the target distance, feature 1 is noise */
    enum { N = 30 };
    double z[N * 2], t[N * N];
    kb_rng rng;
    kb_rng_seed(&rng, 3);
    for (size_t i = 0; i < N; i++) {
        z[i * 2] = kb_rng_uniform(&rng);
        z[i * 2 + 1] = kb_rng_uniform(&rng);
    }
    for (size_t i = 0; i < N; i++) {
        for (size_t j = 0; j < N; j++) {
            t[i + j * N] = fabs(z[i * 2] - z[j * 2]);
        }
    }
    double w[2];
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_similarity_learn_weights(w, z, N, 2, t, 500, &err), err);
    CHECK(w[0] > 1.9 && w[1] < 0.1);
}

static void test_f32_scan_matches_exact_l1_over_blocks_and_missing(void)
{
    /*
     * 2500 tasks (three blocks of the scan) x 5 features, feature-major float32, some values
     * missing; the query misses feature 3. Each distance equals the float64 L1 distance of
     * kb_similarity_distance to float32 rounding; a task sharing nothing is infinitely far.
     */
    enum { T = 2500, D = 5 };
    float *x = kb_malloc_array(T * D, sizeof *x);
    double *z = kb_malloc_array(T * D, sizeof *z);
    float *d = kb_malloc_array(T, sizeof *d);
    kb_rng rng;
    kb_rng_seed(&rng, 5);
    for (size_t t = 0; t < T; t++) {
        for (size_t j = 0; j < D; j++) {
            double v = kb_rng_uniform(&rng) * 4 - 2;
            if ((t * 7 + j) % 11 == 0 || t == 1234) {
                v = NAN;
            }
            z[t * D + j] = (double)(float)v;
            x[j * T + t] = (float)v;
        }
    }
    double q[D] = {0.5, -1.0, 0.25, NAN, 1.5};
    kb_similarity_index ix;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_similarity_index_build(&ix, z, T, D, NULL, &err), err);
    kb_similarity_scan_l1_f32(d, x, T, T, D, q);
    int bad = 0;
    for (size_t t = 0; t < T; t++) {
        double e = kb_similarity_distance(&ix, t, q, KB_SIMILARITY_L1, NULL);
        if (t == 1234) {
            bad += !(isinf(d[t]) && isinf(e));
        } else {
            bad += !(fabs(d[t] - e) <= 1e-5 * e + 1e-6);
        }
    }
    CHECK(bad == 0);
    kb_similarity_index_release(&ix);
    kb_free(x);
    kb_free(z);
    kb_free(d);
}

static void test_i16_scan_is_within_its_bound_of_exact_l1(void)
{
    /* quantised copy of random scaled features (a few missing); query misses feature 1 */
    enum { T = 1500, D = 6 };
    int16_t *x = kb_malloc_array(T * D, sizeof *x);
    double *z = kb_malloc_array(T * D, sizeof *z);
    float *d = kb_malloc_array(T, sizeof *d);
    kb_rng rng;
    kb_rng_seed(&rng, 9);
    for (size_t t = 0; t < T; t++) {
        for (size_t j = 0; j < D; j++) {
            double v = (kb_rng_uniform(&rng) - 0.5) * 20;
            if ((t + 3 * j) % 13 == 0 || t == 77) {
                v = NAN;
            }
            z[t * D + j] = v;
            x[j * T + t] = isnan(v) ? KB_SIMILARITY_I16_MISSING
                                    : (int16_t)lround(v * KB_SIMILARITY_I16_SCALE);
        }
    }
    double q[D] = {1.0, NAN, -2.5, 0.125, 3.0, -7.0};
    kb_similarity_index ix;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_similarity_index_build(&ix, z, T, D, NULL, &err), err);
    kb_similarity_scan_l1_i16(d, x, T, T, D, q);
    double bound = kb_similarity_i16_bound(D);
    CHECK_NEAR(bound, D * 0.5 / 256, 1e-15, 0);
    int bad = 0;
    for (size_t t = 0; t < T; t++) {
        double e = kb_similarity_distance(&ix, t, q, KB_SIMILARITY_L1, NULL);
        bad += t == 77 ? !(isinf(d[t]) && isinf(e)) : !(fabs(d[t] - e) <= bound + 1e-5 * e);
    }
    CHECK(bad == 0);
    /* the full blocks (vectorised) and the tail give exactly the scalar sum, in feature order */
    int differ = 0;
    const float back = (float)D / (float)KB_SIMILARITY_I16_SCALE;
    for (size_t t = 0; t < T; t++) {
        float acc = 0.0f, cnt = 0.0f;
        for (size_t j = 0; j < D; j++) {
            int v = x[j * T + t];
            if (!isnan(q[j]) && v != KB_SIMILARITY_I16_MISSING) {
                acc += fabsf((float)v - (float)(q[j] * KB_SIMILARITY_I16_SCALE));
                cnt += 1.0f;
            }
        }
        float want = cnt > 0 ? acc * (back / cnt) : INFINITY;
        differ += memcmp(&want, &d[t], sizeof want) != 0;
    }
    CHECK(differ == 0);
    kb_similarity_index_release(&ix);
    kb_free(x);
    kb_free(z);
    kb_free(d);
}

static void test_pairs_imputed_equal_single_distances_bit_for_bit(void)
{
    /* 21 tasks picked in scrambled order from 30 (lanes of 8 and a partial one), some NaN */
    enum { T = 30, D = 7, N = 21 };
    double x[T * D], out[N * N];
    size_t pick[N];
    kb_rng rng;
    kb_rng_seed(&rng, 4);
    for (size_t i = 0; i < T * D; i++) {
        x[i] = i % 11 == 3 ? NAN : (kb_rng_uniform(&rng) - 0.5) * 6;
    }
    for (size_t a = 0; a < N; a++) {
        pick[a] = (a * 7 + 2) % T;
    }
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_similarity_pairs_imputed(out, x, pick, N, D, &err), err);
    int differ = 0;
    for (size_t a = 0; a < N; a++) {
        for (size_t b = 0; b < N; b++) {
            double want = a == b ? 0.0
                                 : kb_similarity_distance_imputed(x + pick[a] * D,
                                                                  x + pick[b] * D, D);
            differ += memcmp(&want, &out[a + b * N], sizeof want) != 0;
        }
    }
    CHECK(differ == 0);
    CHECK_OK(kb_similarity_pairs_imputed(out, x, pick, 0, D, &err), err);
}

static void test_imputed_distance_takes_missing_as_the_median(void)
{
    /* scaled vectors: a missing value counts as 0 (the median), nothing is rescaled */
    double a[3] = {1.0, NAN, 3.0}, b[3] = {NAN, 2.0, 1.0}, c[3] = {1.0, 2.0, 3.0};
    CHECK(kb_similarity_distance_imputed(a, b, 3) == 5.0);
    CHECK(kb_similarity_distance_imputed(b, a, 3) == 5.0);
    CHECK(kb_similarity_distance_imputed(a, a, 3) == 0.0);
    /* no missing value: the plain L1 distance, as kb_similarity_distance gives it */
    kb_similarity_index ix;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_similarity_index_build(&ix, c, 1, 3, NULL, &err), err);
    double q[3] = {0.5, -1.0, 3.25};
    CHECK(kb_similarity_distance_imputed(c, q, 3) ==
          kb_similarity_distance(&ix, 0, q, KB_SIMILARITY_L1, NULL));
    kb_similarity_index_release(&ix);
}

int main(void)
{
    test_scaler_uses_median_and_iqr();
    test_scaler_constant_and_missing_features();
    test_knn_l1_l2_exact_and_rescaled_for_missing();
    test_knn_dense_blas_path_matches_loop();
    test_explain_orders_features_by_contribution();
    test_kendall_tau_b_matches_scipy();
    test_learned_weights_find_the_informative_feature();
    test_f32_scan_matches_exact_l1_over_blocks_and_missing();
    test_i16_scan_is_within_its_bound_of_exact_l1();
    test_imputed_distance_takes_missing_as_the_median();
    test_pairs_imputed_equal_single_distances_bit_for_bit();
    return check_exit();
}
