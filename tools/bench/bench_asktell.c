/*
 * Ask/tell overhead of a study (tools/study.h), in-process: T trials of a synthetic objective
 * on the bundled svm space, each ask and each tell one durable (synced) LMDB transaction, as
 * `kb ask` / `kb tell` do. Prints CSV: trials so far, mean ms per ask+tell over the last block.
 * The Optuna peer (asktell_peer.py) runs the same loop; tools/bench/asktell.sh prints both and
 * the ratio.
 *
 *   bench_asktell KB_DIR TASK_ID SPACE TRIALS METHOD
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kb/store.h"
#include "tools/study.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* a smooth synthetic objective of the numeric parameters (minimised) */
static double objective(const study_trial *t)
{
    double y = 0.0;
    for (size_t j = 0; j < t->n_config; j++) {
        const kb_value *v = &t->config[j].value;
        if (v->type == KB_VALUE_TYPE_FLOAT || v->type == KB_VALUE_TYPE_INT) {
            double x = log10(fabs(kb_value_as_double(v)) + 1e-3);
            y += (x - 0.5) * (x - 0.5);
        }
    }
    return y;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: bench_asktell KB_DIR TASK_ID SPACE TRIALS METHOD\n");
        return 2;
    }
    size_t n = (size_t)atol(argv[4]);
    kb_error err = KB_ERROR_INIT;
    kb_store *store = NULL;
    kb_store_opts so = KB_STORE_OPTS_INIT;
    if (kb_store_open(&store, argv[1], &so, &err) != KB_OK) {
        fprintf(stderr, "bench_asktell: %s\n", err.msg);
        return 1;
    }
    study_create_opts co;
    memset(&co, 0, sizeof co);
    co.task_id = argv[2];
    co.space = argv[3];
    co.objective = "loss";
    co.direction = KB_DIRECTION_MINIMIZE;
    co.method = argv[5];
    co.warm_start = "none";
    co.seed = 1;
    kb_study rec;
    study *st = NULL;
    if (study_create(&rec, store, &co, &err) != KB_OK ||
        study_open(&st, store, rec.id, &err) != KB_OK) {
        fprintf(stderr, "bench_asktell: %s\n", err.msg);
        return 1;
    }
    printf("trials,kb_ms_per_trial\n");
    double t0 = now_s();
    size_t block = n >= 100 ? 100 : n;
    for (size_t k = 0; k < n; k++) {
        size_t index;
        if (study_ask(&index, NULL, st, store, NULL, 0, &err) != KB_OK) {
            fprintf(stderr, "bench_asktell: ask %zu: %s\n", k, err.msg);
            return 1;
        }
        kb_metric m = {"loss", objective(study_trial_at(st, index))};
        study_result r = {KB_RUN_STATUS_OK, &m, 1, NULL, 0, NAN, NULL};
        if (study_tell(st, store, index, &r, &err) != KB_OK) {
            fprintf(stderr, "bench_asktell: tell %zu: %s\n", k, err.msg);
            return 1;
        }
        if ((k + 1) % block == 0) {
            double t1 = now_s();
            printf("%zu,%.4f\n", k + 1, 1e3 * (t1 - t0) / (double)block);
            fflush(stdout);
            t0 = t1;
        }
    }
    study_close(st);
    kb_study_release(&rec);
    kb_store_close(store);
    return 0;
}
