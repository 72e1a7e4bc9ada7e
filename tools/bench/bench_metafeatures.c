/*
 * Benchmark helper for meta-features (run by tools/bench/metafeatures.sh):
 *
 *   bench_metafeatures generate OUT.csv ROWS COLS SEED
 *       write a seeded numeric CSV (COLS features with mixed distributions and correlations,
 *       a 3-class target) for the end-to-end comparison with pandas + numpy/scipy;
 *   bench_metafeatures landmarks DATASET SAMPLE SEED
 *       time each landmarker (5-fold CV on a SAMPLE-row stratified sample) and print one
 *       JSON line: {"rows":..,"cols":..,"time_s":{model:s},"score":{model:v}}.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/rng.h"
#include "engine/dataset.h"
#include "engine/landmark.h"

static int generate(const char *path, size_t rows, size_t cols, uint64_t seed)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    kb_rng rng;
    kb_rng_seed(&rng, seed);
    double *row = calloc(cols, sizeof *row);
    if (row == NULL) {
        fclose(f);
        return 1;
    }
    for (size_t j = 0; j < cols; j++) {
        fprintf(f, "f%zu,", j);
    }
    fprintf(f, "target\n");
    static char buf[1 << 16];
    for (size_t i = 0; i < rows; i++) {
        size_t len = 0;
        double score = 0;
        for (size_t j = 0; j < cols; j++) {
            double v;
            switch (j % 4) {
            case 0:
                v = kb_rng_normal(&rng);
                break;
            case 1:
                v = -log(1.0 - kb_rng_uniform(&rng));
                break; /* exponential: skewed */
            case 2:
                v = 10.0 * kb_rng_uniform(&rng);
                break; /* uniform */
            default:
                v = 0.7 * row[j - 1] + 0.3 * kb_rng_normal(&rng); /* correlated */
            }
            row[j] = v;
            score += (j % 3 == 0 ? 1.0 : -0.5) * v;
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%.6f,", v);
        }
        score += kb_rng_normal(&rng);
        const char *cls = score < -1.0 ? "a" : score < 1.0 ? "b" : "c";
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s\n", cls);
        fwrite(buf, 1, len, f);
    }
    free(row);
    if (fclose(f) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

static int landmarks(const char *path, size_t sample, uint64_t seed)
{
    kb_dataset d;
    kb_error err = KB_ERROR_INIT;
    if (kb_dataset_read(&d, path, NULL, &err) != KB_OK) {
        fprintf(stderr, "bench_metafeatures: %s\n", err.msg);
        return 1;
    }
    kb_landmark_opts o = KB_LANDMARK_OPTS_INIT;
    o.sample_rows = sample;
    o.seed = seed;
    kb_landmark_result r;
    if (kb_landmark_compute(&r, &d, &o, &err) != KB_OK) {
        fprintf(stderr, "bench_metafeatures: %s\n", err.msg);
        kb_dataset_release(&d);
        return 1;
    }
    printf("{\"rows\":%zu,\"cols\":%zu,\"time_s\":{", r.n_rows, r.n_cols);
    for (int m = 0; m < KB_LANDMARK_N_MODELS; m++) {
        printf("%s\"%s\":%.6f", m ? "," : "", kb_landmark_model_name(m),
               isnan(r.time_s[m]) ? -1.0 : r.time_s[m]);
    }
    printf("},\"score\":{");
    for (int m = 0; m < KB_LANDMARK_N_MODELS; m++) {
        printf("%s\"%s\":%.6f", m ? "," : "", kb_landmark_model_name(m),
               isnan(r.score[m]) ? -1.0 : r.score[m]);
    }
    printf("}}\n");
    kb_dataset_release(&d);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "generate") == 0) {
        return generate(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10),
                        strtoull(argv[5], NULL, 10));
    }
    if (argc == 5 && strcmp(argv[1], "landmarks") == 0) {
        return landmarks(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10));
    }
    fprintf(stderr, "usage: bench_metafeatures generate OUT.csv ROWS COLS SEED\n"
                    "       bench_metafeatures landmarks DATASET SAMPLE SEED\n");
    return 2;
}
