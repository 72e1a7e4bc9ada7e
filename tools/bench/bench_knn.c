/*
 * bench_knn: the nearest-task scan of kb_similarity against the memory-bandwidth floor and
 * against numpy's brute-force 10-NN (tools/bench/knn_peer.py, run in the same command by
 * tools/bench/knn.sh on the same matrix and queries).
 *
 *   bench_knn --datasets DIR [--tasks N] [--features D] [--queries Q] [--out PREFIX]
 *
 * The knowledge base is synthetic but built from real tasks: the meta-features (general,
 * statistical, info) of the first bundled datasets of DIR, scaled as kb scales them, then
 * N rows each = one of those tasks + Gaussian noise (sd 0.1 per scaled feature), seeded.
 * With --out the matrix (N x D float64, task-contiguous) and the queries are written to
 * PREFIX.x.bin / PREFIX.q.bin for the peer. Prints ms per query for: the bandwidth floor (one
 * read pass summing the matrix), kb L2 (dense dgemv path), kb L1 (loop), each 10-NN.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/core/alloc.h"
#include "engine/core/rng.h"
#include "engine/dataset.h"
#include "engine/metafeatures.h"
#include "engine/similarity.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median of `n` timings */
static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL;
    size_t n_tasks = 1000000, d = 40, n_q = 20, n_real = 12;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--datasets") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--tasks") == 0 && i + 1 < argc) {
            n_tasks = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--features") == 0 && i + 1 < argc) {
            d = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--queries") == 0 && i + 1 < argc) {
            n_q = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_knn --datasets DIR [--tasks N] [--features D] "
                            "[--queries Q] [--out PREFIX]\n");
            return 2;
        }
    }
    if (dir == NULL || d == 0 || n_tasks == 0 || n_q == 0) {
        fprintf(stderr, "bench_knn: --datasets DIR is required\n");
        return 2;
    }
    /* real meta-feature vectors of the first bundled datasets that read */
    static const char *names[] = {"iris", "wine", "zoo", "haberman", "sonar", "ionosphere",
                                  "vehicle", "penguins", "breast_w", "glass", "heart",
                                  "olive_oil", "olitos", "servo", "cats", "fish_species",
                                  "diabetes_progression", "bank_wages", "concrete", "soybean"};
    size_t nm = kb_metafeatures_count();
    double *real = kb_malloc_array(n_real * nm, sizeof *real);
    size_t got = 0;
    kb_error err = KB_ERROR_INIT;
    for (size_t i = 0; i < sizeof names / sizeof *names && got < n_real; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.csv.gz", dir, names[i]);
        kb_dataset ds = {0};
        if (kb_dataset_read(&ds, path, NULL, &err) != KB_OK) {
            continue;
        }
        kb_metafeatures mf;
        kb_metafeatures_opts mo = KB_METAFEATURES_OPTS_INIT;
        mo.groups = 0x7; /* general, statistical, info: the non-landmark groups */
        if (kb_metafeatures_compute(&mf, &ds, &mo, &err) == KB_OK) {
            memcpy(real + got * nm, mf.values, nm * sizeof *real);
            got++;
        }
        kb_dataset_release(&ds);
    }
    if (got < 2) {
        fprintf(stderr, "bench_knn: could not read bundled datasets under '%s'\n", dir);
        return 1;
    }
    /* the first d features defined for most real tasks (the rest imputed at the median) */
    size_t *cols = kb_malloc_array(nm, sizeof *cols), nc = 0;
    for (size_t j = 0; j < nm && nc < d; j++) {
        size_t defined = 0;
        for (size_t t = 0; t < got; t++) {
            defined += isfinite(real[t * nm + j]);
        }
        if (3 * defined >= 2 * got) {
            cols[nc++] = j;
        }
    }
    d = nc;
    double *base = kb_malloc_array(got * d, sizeof *base);
    for (size_t t = 0; t < got; t++) {
        for (size_t j = 0; j < d; j++) {
            base[t * d + j] = real[t * nm + cols[j]];
        }
    }
    kb_similarity_scaler sc;
    kb_similarity_scaler_fit(&sc, base, got, d, &err);
    kb_similarity_scaler_apply(&sc, base, got);
    for (size_t i = 0; i < got * d; i++) {
        base[i] = isfinite(base[i]) ? base[i] : 0.0; /* scaled median */
    }
    double *x = kb_malloc_array(n_tasks * d, sizeof *x);
    double *q = kb_malloc_array(n_q * d, sizeof *q);
    if (x == NULL || q == NULL) {
        fprintf(stderr, "bench_knn: out of memory for %zu x %zu\n", n_tasks, d);
        return 1;
    }
    kb_rng rng;
    kb_rng_seed(&rng, 2026);
    for (size_t i = 0; i < n_tasks; i++) {
        const double *b = base + (size_t)kb_rng_below(&rng, got) * d;
        for (size_t j = 0; j < d; j++) {
            x[i * d + j] = b[j] + 0.1 * kb_rng_normal(&rng);
        }
    }
    for (size_t i = 0; i < n_q; i++) {
        const double *b = base + (size_t)kb_rng_below(&rng, got) * d;
        for (size_t j = 0; j < d; j++) {
            q[i * d + j] = b[j] + 0.1 * kb_rng_normal(&rng);
        }
    }
    if (out != NULL) {
        char p1[4096], p2[4096];
        snprintf(p1, sizeof p1, "%s.x.bin", out);
        snprintf(p2, sizeof p2, "%s.q.bin", out);
        FILE *f1 = fopen(p1, "wb"), *f2 = fopen(p2, "wb");
        if (f1 == NULL || f2 == NULL || fwrite(x, sizeof *x, n_tasks * d, f1) != n_tasks * d ||
            fwrite(q, sizeof *q, n_q * d, f2) != n_q * d) {
            fprintf(stderr, "bench_knn: writing '%s.*' failed\n", out);
            return 1;
        }
        fclose(f1);
        fclose(f2);
    }
    kb_similarity_index ix;
    if (kb_similarity_index_build(&ix, x, n_tasks, d, NULL, &err) != KB_OK) {
        fprintf(stderr, "bench_knn: %s\n", err.msg);
        return 1;
    }
    double *t_floor = kb_malloc_array(n_q, sizeof(double));
    double *t_l2 = kb_malloc_array(n_q, sizeof(double));
    double *t_l1 = kb_malloc_array(n_q, sizeof(double));
    double *work = kb_malloc_array(n_tasks, sizeof *work);
    kb_similarity_hit hits[10];
    size_t n_hits;
    volatile double sink = 0;
    unsigned long long checksum = 0;
    for (size_t r = 0; r < n_q; r++) {
        double t0 = now_s();
        /*
         * The floor: one pass reading the whole matrix (the scan cannot read less), with eight
         * independent sums so the loop is bound by memory, not by one addition chain.
         */
        double s8[8] = {0};
        size_t total = n_tasks * d, i = 0;
        for (; i + 8 <= total; i += 8) {
            for (int k = 0; k < 8; k++) {
                s8[k] += ix.x[i + (size_t)k];
            }
        }
        for (; i < total; i++) {
            s8[0] += ix.x[i];
        }
        sink += s8[0] + s8[1] + s8[2] + s8[3] + s8[4] + s8[5] + s8[6] + s8[7];
        double t1 = now_s();
        kb_similarity_knn(hits, &n_hits, &ix, q + r * d, 10, KB_SIMILARITY_L2, (size_t)-1, work,
                          &err);
        double t2 = now_s();
        for (size_t h = 0; h < n_hits; h++) {
            checksum += hits[h].task;
        }
        kb_similarity_knn(hits, &n_hits, &ix, q + r * d, 10, KB_SIMILARITY_L1, (size_t)-1, work,
                          &err);
        double t3 = now_s();
        t_floor[r] = t1 - t0;
        t_l2[r] = t2 - t1;
        t_l1[r] = t3 - t2;
    }
    double mf = median(t_floor, n_q) * 1e3, m2 = median(t_l2, n_q) * 1e3;
    double m1 = median(t_l1, n_q) * 1e3;
    printf("{\"tasks\":%zu,\"features\":%zu,\"queries\":%zu,\"real_tasks\":%zu,"
           "\"floor_ms\":%.3f,\"kb_l2_ms\":%.3f,\"kb_l1_ms\":%.3f,\"l2_over_floor\":%.3f,"
           "\"checksum_l2\":%llu}\n",
           n_tasks, d, n_q, got, mf, m2, m1, m2 / mf, checksum);
    (void)sink;
    kb_similarity_index_release(&ix);
    kb_similarity_scaler_release(&sc);
    kb_free(real);
    kb_free(cols);
    kb_free(base);
    kb_free(x);
    kb_free(q);
    kb_free(t_floor);
    kb_free(t_l2);
    kb_free(t_l1);
    kb_free(work);
    return 0;
}
