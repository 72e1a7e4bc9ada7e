/*
 * bench_ingest: how fast `kb ingest` turns JSON Lines into a durable knowledge base.
 *
 *   bench_ingest gen FILE N SEED        write N runs (6 hyperparameters, a final metric and a
 *                                       20-point learning curve each) of one task as JSON Lines
 *   bench_ingest ingest KB_BIN FILE DIR time `KB_BIN ingest --kb DIR FILE` end to end (fresh DIR)
 *   bench_ingest lmdb DIR N BYTES       a bare LMDB put loop: N records of BYTES bytes, keys in
 *                                       insertion order (big-endian sequence numbers), 10,000
 *                                       per synced commit: the floor the store builds on
 *   bench_ingest read DIR TASK          read back all runs of TASK, then a full scan
 *   bench_ingest parse FILE             kb's parser layer alone (read, parse, validate, build
 *                                       and free the records; no store): its CPU time
 *
 * Each mode prints one line of `key=value` pairs; tools/bench/ingest.sh runs them next to
 * Optuna's SQLite storage (tools/bench/ingest_peer.py) and prints the ratios.
 */
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/core/buf.h"
#include "engine/core/rng.h"
#include "kb/codec.h"
#include "kb/ingest.h"
#include "kb/store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long long dir_bytes(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_blocks * 512 : -1;
}

static int gen(const char *path, long n, unsigned long long seed)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    kb_rng rng;
    kb_rng_seed(&rng, seed);
    static const char *const opt[] = {"sgd", "momentum", "adam", "rmsprop"};
    fprintf(f, "{\"kind\":\"task\",\"id\":\"bench-task\",\"name\":\"bench\",\"type\":"
               "\"classification\"}\n");
    for (long i = 0; i < n; i++) {
        double lr = exp(log(1e-5) + kb_rng_uniform(&rng) * (log(1.0) - log(1e-5)));
        double momentum = kb_rng_uniform(&rng) * 0.99;
        double dropout = kb_rng_uniform(&rng) * 0.5;
        long batch = 16L << kb_rng_below(&rng, 5);
        long layers = 1 + (long)kb_rng_below(&rng, 6);
        const char *o = opt[kb_rng_below(&rng, 4)];
        double ceiling = 0.5 + 0.45 * kb_rng_uniform(&rng), speed = 0.05 + 0.3 * kb_rng_uniform(&rng);
        fprintf(f, "{\"kind\":\"run\",\"id\":\"bench-%08ld\",\"task_id\":\"bench-task\","
                   "\"space\":\"bench\",\"config\":{\"batch_size\":%ld,\"dropout\":%.6g,"
                   "\"layers\":%ld,\"lr\":%.6g,\"momentum\":%.6g,\"optimizer\":\"%s\"},"
                   "\"status\":\"ok\",\"objective\":\"val_accuracy\",\"direction\":\"maximize\","
                   "\"curve\":[",
                i, batch, dropout, layers, lr, momentum, o);
        double acc = 0;
        for (int s = 0; s < 20; s++) {
            acc = ceiling * (1 - exp(-speed * (s + 1))) + 0.01 * kb_rng_normal(&rng);
            fprintf(f, "%s{\"step\":%d,\"val_accuracy\":%.6g}", s > 0 ? "," : "", s, acc);
        }
        fprintf(f, "],\"metrics\":{\"val_accuracy\":%.6g},\"cost_s\":%.4g}\n", acc,
                10 + 100 * kb_rng_uniform(&rng));
    }
    if (fclose(f) != 0) {
        perror(path);
        return 1;
    }
    printf("generated=%ld file=%s\n", n, path);
    return 0;
}

static int ingest(const char *kb_bin, const char *file, const char *dir)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        return 1;
    }
    double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) {
        execl(kb_bin, kb_bin, "ingest", "--quiet", "--kb", dir, file, (char *)NULL);
        _exit(127);
    }
    int status;
    struct rusage ru; /* the only child waited for, so RUSAGE_CHILDREN is its usage */
    waitpid(pid, &status, 0);
    getrusage(RUSAGE_CHILDREN, &ru);
    double dt = now_s() - t0;
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "kb ingest failed (status %d)\n", status);
        return 1;
    }
    printf("ingest_s=%.3f ingest_cpu_s=%.3f store_bytes=%lld\n", dt, cpu, dir_bytes(dir));
    return 0;
}

static int mdb_check(int rc, const char *what)
{
    if (rc != MDB_SUCCESS) {
        fprintf(stderr, "%s: %s\n", what, mdb_strerror(rc));
        return 1;
    }
    return 0;
}

static int lmdb_loop(const char *dir, long n, size_t bytes)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0) {
        return 1;
    }
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *txn;
    if (mdb_check(mdb_env_create(&env), "env") ||
        mdb_check(mdb_env_set_mapsize(env, (size_t)n * (bytes + 64) * 2 + (64u << 20)), "map") ||
        mdb_check(mdb_env_open(env, dir, 0, 0644), "open")) {
        return 1;
    }
    unsigned char *val = malloc(bytes);
    kb_rng rng;
    kb_rng_seed(&rng, 1);
    for (size_t i = 0; i < bytes; i++) {
        val[i] = (unsigned char)kb_rng_below(&rng, 256);
    }
    double t0 = now_s();
    long done = 0;
    while (done < n) {
        if (mdb_check(mdb_txn_begin(env, NULL, 0, &txn), "begin") ||
            mdb_check(mdb_dbi_open(txn, NULL, 0, &dbi), "dbi")) {
            return 1;
        }
        for (long k = 0; k < 10000 && done < n; k++, done++) {
            unsigned char key[8];
            kb_be64_encode(key, (uint64_t)done);
            MDB_val mk = {8, key}, mv = {bytes, val};
            if (mdb_check(mdb_put(txn, dbi, &mk, &mv, MDB_APPEND), "put")) {
                return 1;
            }
        }
        if (mdb_check(mdb_txn_commit(txn), "commit")) {
            return 1;
        }
    }
    double dt = now_s() - t0;
    mdb_env_close(env);
    free(val);
    printf("lmdb_s=%.3f lmdb_puts_per_s=%.0f\n", dt, (double)n / dt);
    return 0;
}

static int count_run(const kb_run *r, void *payload)
{
    (void)r;
    (*(long *)payload)++;
    return 0;
}

typedef struct sizes {
    kb_buf buf;
    double total;
    long n;
} sizes;

/* The encoded size of each run, for the bare LMDB loop's record size. */
static int measure_run(const kb_run *r, void *payload)
{
    sizes *s = payload;
    kb_buf_reset(&s->buf);
    kb_error err = KB_ERROR_INIT;
    if (kb_codec_encode_run(&s->buf, r, &err) == KB_OK) {
        s->total += (double)s->buf.len;
        s->n++;
    }
    return s->n >= 10000; /* a sample is enough */
}

static int read_back(const char *dir, const char *task)
{
    kb_store *st;
    kb_store_opts so = KB_STORE_OPTS_INIT;
    so.flags = KB_STORE_OPEN_RDONLY;
    kb_error err = KB_ERROR_INIT;
    if (kb_store_open(&st, dir, &so, &err) != KB_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    kb_store_filter f = KB_STORE_FILTER_INIT;
    f.task_id = task;
    long n_task = 0, n_all = 0;
    double t0 = now_s();
    int rc = kb_store_foreach_run(st, &f, count_run, &n_task, &err);
    double t1 = now_s();
    kb_store_filter all = KB_STORE_FILTER_INIT;
    if (rc == KB_OK) {
        rc = kb_store_foreach_run(st, &all, count_run, &n_all, &err);
    }
    double t2 = now_s();
    sizes sz = {KB_BUF_INIT, 0, 0};
    if (rc == KB_OK) {
        rc = kb_store_foreach_run(st, &all, measure_run, &sz, &err);
        rc = rc == 1 ? KB_OK : rc;
    }
    kb_buf_release(&sz.buf);
    kb_store_close(st);
    if (rc != KB_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("task_runs=%ld task_read_s=%.3f scan_runs=%ld scan_s=%.3f run_bytes=%.0f\n", n_task,
           t1 - t0, n_all, t2 - t1, sz.n > 0 ? sz.total / (double)sz.n : 0.0);
    return 0;
}

static int drop_record(kb_record *rec, const char *file, size_t line, void *payload)
{
    (void)file;
    (void)line;
    (*(long *)payload)++;
    kb_record_release(rec);
    return 0;
}

static int parse_only(const char *file)
{
    long n = 0;
    kb_ingest_counts c;
    kb_error err = KB_ERROR_INIT;
    clock_t t0 = clock();
    int rc = kb_ingest_parse_file(&c, file, NULL, drop_record, &n, &err);
    double cpu = (double)(clock() - t0) / CLOCKS_PER_SEC;
    if (rc != KB_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("parse_records=%ld parse_cpu_s=%.3f\n", n, cpu);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "parse") == 0) {
        return parse_only(argv[2]);
    }
    if (argc == 5 && strcmp(argv[1], "gen") == 0) {
        return gen(argv[2], atol(argv[3]), strtoull(argv[4], NULL, 10));
    }
    if (argc == 5 && strcmp(argv[1], "ingest") == 0) {
        return ingest(argv[2], argv[3], argv[4]);
    }
    if (argc == 5 && strcmp(argv[1], "lmdb") == 0) {
        return lmdb_loop(argv[2], atol(argv[3]), (size_t)atol(argv[4]));
    }
    if (argc == 4 && strcmp(argv[1], "read") == 0) {
        return read_back(argv[2], argv[3]);
    }
    fprintf(stderr, "usage: bench_ingest gen FILE N SEED | ingest KB_BIN FILE DIR | "
                    "lmdb DIR N BYTES | read DIR TASK | parse FILE\n");
    return 2;
}
