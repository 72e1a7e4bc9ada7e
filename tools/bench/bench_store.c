/*
 * bench_store: write and read throughput of kb_store against a bare LMDB put loop, as
 * docs/BENCHMARKS.md ("Store (issue 2)") reports it.
 *
 *   bench_store [-n RUNS] [--tasks N] [--batch N] [--dir DIR] [--seq-ids] [--nosync]
 *               [--only-kb]   (skip the bare LMDB loops, e.g. for profiling)
 *
 * Runs have the shape: 6 hyperparameters, 1 final metric, a 20-point learning curve of
 * one metric, ~100 tasks; ids are "r-" + 16 hex digits of a hash (content-hash ids arrive in
 * random order), or sequential with --seq-ids. Measured, each in a fresh environment under DIR
 * (default: a mkdtemp directory in /tmp, removed at the end):
 *   (a) a bare LMDB loop putting values of the same encoded size, with sequential big-endian
 *       keys and with random keys, in 1,000-record synced commits (and sequential in batches of
 *       the kb batch size);
 *   (b) kb_store_put_batch in batches of --batch (10,000) records, synced: runs/s, store size;
 *   (c) read-back: all runs of one task (index scan + decode), and a full scan with decode,
 *       against a bare cursor walk over the same runs database;
 *   (d) decoding one encoded run into owned fields vs into the arena iterations use.
 * Generating the records is not timed; encoding, dedup, indexes and commits are.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "engine/core/alloc.h"
#include "engine/core/buf.h"
#include "engine/core/rng.h"
#include "kb/codec.h"
#include "kb/codec_priv.h"
#include "kb/store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int die(const char *what, const kb_error *err)
{
    fprintf(stderr, "bench_store: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
    return 1;
}

/* splitmix64: a stable hash so that run ids look like content-hash ids */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static char *dup_str(const char *s)
{
    return kb_strdup(s);
}

static void set_float(kb_param *p, const char *name, double v)
{
    p->name = dup_str(name);
    p->value.type = KB_VALUE_TYPE_FLOAT;
    p->value.f = v;
}

/* Run number i of the synthetic history */
static void make_run(kb_run *r, uint64_t i, size_t n_tasks, int seq_ids, kb_rng *rng)
{
    memset(r, 0, sizeof *r);
    char buf[64];
    if (seq_ids) {
        snprintf(buf, sizeof buf, "r-%016llx", (unsigned long long)i);
    } else {
        snprintf(buf, sizeof buf, "r-%016llx", (unsigned long long)mix(i));
    }
    r->id = dup_str(buf);
    snprintf(buf, sizeof buf, "t-%04llu", (unsigned long long)(mix(i ^ 0xabcdef) % n_tasks));
    r->task_id = dup_str(buf);
    r->space = dup_str("mlp-space");
    r->team = dup_str("vision");
    r->status = KB_RUN_STATUS_OK;
    r->n_config = 6;
    r->config = kb_calloc(6, sizeof *r->config);
    r->config[0].name = dup_str("batch_size");
    r->config[0].value.type = KB_VALUE_TYPE_INT;
    r->config[0].value.i = 32 << kb_rng_below(rng, 4);
    set_float(&r->config[1], "dropout", 0.5 * kb_rng_uniform(rng));
    set_float(&r->config[2], "lr", 1e-4 * (1 + 1000 * kb_rng_uniform(rng)));
    set_float(&r->config[3], "momentum", 0.9 * kb_rng_uniform(rng));
    r->config[4].name = dup_str("optimizer");
    r->config[4].value.type = KB_VALUE_TYPE_STR;
    r->config[4].value.s = dup_str(kb_rng_below(rng, 2) ? "sgd" : "adam");
    set_float(&r->config[5], "weight_decay", 1e-5 * kb_rng_uniform(rng));
    r->objective = dup_str("val_accuracy");
    r->direction = KB_DIRECTION_MAXIMIZE;
    r->n_metrics = 1;
    r->metrics = kb_calloc(1, sizeof *r->metrics);
    r->metrics[0].name = dup_str("val_accuracy");
    r->metrics[0].value = kb_rng_uniform(rng);
    r->n_curve = 1;
    r->curve = kb_calloc(1, sizeof *r->curve);
    kb_series *s = &r->curve[0];
    s->metric = dup_str("val_accuracy");
    s->n = 20;
    s->steps = kb_malloc_array(20, sizeof *s->steps);
    s->values = kb_malloc_array(20, sizeof *s->values);
    for (size_t j = 0; j < 20; j++) {
        s->steps[j] = (int64_t)(j + 1);
        s->values[j] = r->metrics[0].value * (1.0 - 1.0 / (double)(j + 2));
    }
    r->cost_s = 10 + 100 * kb_rng_uniform(rng);
    r->started_at = 1700000000000000 + (int64_t)i * 1000000;
    r->finished_at = r->started_at + (int64_t)(r->cost_s * 1e6);
    snprintf(buf, sizeof buf, "study-%llu", (unsigned long long)(i / 1000));
    r->study_id = dup_str(buf);
}

static void make_task(kb_task *t, size_t i)
{
    memset(t, 0, sizeof *t);
    char buf[32];
    snprintf(buf, sizeof buf, "t-%04zu", i);
    t->id = dup_str(buf);
    t->name = dup_str(buf);
    t->type = KB_TASK_TYPE_CLASSIFICATION;
    t->team = dup_str("vision");
    t->created_at = KB_TIME_UNKNOWN;
}

static int make_env(MDB_env **env, const char *dir, size_t map_bytes)
{
    mkdir(dir, 0777);
    if (mdb_env_create(env) != 0) {
        return -1;
    }
    mdb_env_set_mapsize(*env, map_bytes);
    return mdb_env_open(*env, dir, 0, 0664);
}

static void remove_env(const char *dir)
{
    char p[4400];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

static size_t file_bytes(const char *dir)
{
    char p[4400];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    struct stat st;
    return stat(p, &st) == 0 ? (size_t)st.st_blocks * 512 : 0;
}

/* A rate measured by the wall clock and by the process's CPU time (user + system) */
typedef struct rate {
    double wall, cpu;
} rate;

/* (a): n puts of `val_bytes`-byte values in commits of `per_commit`: puts/s */
static rate bare_put(const char *dir, size_t n, size_t val_bytes, size_t per_commit,
                       int random_keys)
{
    MDB_env *env;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    rate bad = {-1, -1};
    if (make_env(&env, dir, (size_t)64 << 30) != 0) {
        return bad;
    }
    unsigned char *val = kb_malloc(val_bytes);
    for (size_t i = 0; i < val_bytes; i++) {
        val[i] = (unsigned char)mix(i);
    }
    double t0 = now_s(), c0 = cpu_s();
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (txn == NULL) {
            rc = mdb_txn_begin(env, NULL, 0, &txn);
            if (rc == 0) {
                rc = mdb_dbi_open(txn, NULL, 0, &dbi);
            }
        }
        unsigned char key[8];
        kb_be64_encode(key, random_keys ? mix(i) : i);
        MDB_val k = {8, key}, v = {val_bytes, val};
        if (rc == 0) {
            rc = mdb_put(txn, dbi, &k, &v, 0);
        }
        if (rc == 0 && ((i + 1) % per_commit == 0 || i + 1 == n)) {
            rc = mdb_txn_commit(txn);
            txn = NULL;
        }
    }
    rate r = {(double)n / (now_s() - t0), (double)n / (cpu_s() - c0)};
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    mdb_env_close(env);
    kb_free(val);
    remove_env(dir);
    return rc == 0 ? r : bad;
}

typedef struct counter {
    size_t n;
    double sum;
} counter;

static int count_run(const kb_run *r, void *payload)
{
    counter *c = payload;
    c->n++;
    c->sum += r->n_metrics > 0 ? r->metrics[0].value : 0;
    return 0;
}

/* Bare cursor walk over the store's runs database, touching every value: runs/s */
static double bare_scan(const char *dir, size_t *n_out)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    if (mdb_env_create(&env) != 0) {
        return -1;
    }
    mdb_env_set_maxdbs(env, 16);
    if (mdb_env_open(env, dir, MDB_RDONLY, 0664) != 0 ||
        mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0 || mdb_dbi_open(txn, "runs", 0, &dbi) ||
        mdb_cursor_open(txn, dbi, &cur) != 0) {
        mdb_env_close(env);
        return -1;
    }
    double t0 = now_s();
    MDB_val k, v;
    size_t n = 0, sum = 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        sum += ((const unsigned char *)v.mv_data)[v.mv_size - 1];
        n++;
    }
    double dt = now_s() - t0;
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    *n_out = n + (sum & 0);
    return (double)n / dt;
}

static void on_log(kb_log_level level, const char *msg, void *payload)
{
    (void)level;
    (void)msg;
    (*(int *)payload)++;
}

int main(int argc, char **argv)
{
    size_t n = 1000000, n_tasks = 100, batch = 10000;
    int seq_ids = 0, nosync = 0, only_kb = 0;
    const char *dir_arg = NULL;
    static const struct option longopts[] = {
        {"runs", required_argument, NULL, 'n'}, {"tasks", required_argument, NULL, 't'},
        {"batch", required_argument, NULL, 'b'}, {"dir", required_argument, NULL, 'd'},
        {"seq-ids", no_argument, NULL, 's'},     {"nosync", no_argument, NULL, 'S'},
        {"only-kb", no_argument, NULL, 'k'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "n:t:b:d:", longopts, NULL)) != -1) {
        switch (c) {
        case 'n': n = strtoull(optarg, NULL, 10); break;
        case 't': n_tasks = strtoull(optarg, NULL, 10); break;
        case 'b': batch = strtoull(optarg, NULL, 10); break;
        case 'd': dir_arg = optarg; break;
        case 's': seq_ids = 1; break;
        case 'S': nosync = 1; break;
        case 'k': only_kb = 1; break;
        default:
            fprintf(stderr, "usage: bench_store [-n RUNS] [--tasks N] [--batch N] [--dir DIR] "
                            "[--seq-ids] [--nosync] [--only-kb]\n");
            return 2;
        }
    }
    if (n == 0 || n_tasks == 0 || batch == 0) {
        return die("-n, --tasks and --batch must be positive", NULL);
    }
    char root[4096];
    if (dir_arg != NULL) {
        snprintf(root, sizeof root, "%s", dir_arg);
        mkdir(root, 0777);
    } else {
        snprintf(root, sizeof root, "/tmp/kb-bench-store-XXXXXX");
        if (mkdtemp(root) == NULL) {
            return die("mkdtemp failed", NULL);
        }
    }
    char bare_dir[4200], kb_dir[4200];
    snprintf(bare_dir, sizeof bare_dir, "%s/bare", root);
    snprintf(kb_dir, sizeof kb_dir, "%s/kb", root);

    /* the encoded size of a typical run, for the bare loop's values */
    kb_rng rng;
    kb_rng_seed(&rng, 1);
    kb_buf enc = KB_BUF_INIT;
    kb_run sample;
    make_run(&sample, 0, n_tasks, seq_ids, &rng);
    kb_codec_encode_run(&enc, &sample, NULL);
    size_t val_bytes = enc.len;
    kb_run_release(&sample);

    /* (d) decoding one run: owned (kb_codec_decode_run) vs the iterations' arena */
    size_t n_dec = n < 300000 ? n : 300000;
    double t_dec = now_s();
    for (size_t i = 0; i < n_dec; i++) {
        kb_run back;
        kb_codec_decode_run(&back, enc.data, enc.len, NULL);
        kb_run_release(&back);
    }
    double dec_heap = (double)n_dec / (now_s() - t_dec);
    kb_codec__arena arena = KB_CODEC__ARENA_INIT;
    t_dec = now_s();
    for (size_t i = 0; i < n_dec; i++) {
        kb_run back;
        kb_codec__decode_run_in(&back, enc.data, enc.len, &arena, NULL);
        kb_codec__arena_reset(&arena);
    }
    double dec_arena = (double)n_dec / (now_s() - t_dec);
    kb_codec__arena_release(&arena);
    kb_buf_release(&enc);

    printf("bench_store: %zu runs, %zu tasks, kb batches of %zu, run value %zu bytes, %s ids, "
           "%s commits\n",
           n, n_tasks, batch, val_bytes, seq_ids ? "sequential" : "hashed",
           nosync ? "unsynced" : "synced");
    fflush(stdout);

    /* random keys are slow: a subsample */
    size_t n_rand = n < 200000 ? n : 200000;
    rate zero = {0, 0};
    rate bare_seq = only_kb ? zero : bare_put(bare_dir, n, val_bytes, 1000, 0);
    rate bare_seq_b = only_kb ? zero : bare_put(bare_dir, n, val_bytes, batch, 0);
    rate bare_rand = only_kb ? zero : bare_put(bare_dir, n_rand, val_bytes, 1000, 1);

    /* (b) kb_store_put_batch */
    int n_grown = 0;
    kb_store_opts o = KB_STORE_OPTS_INIT;
    o.flags = KB_STORE_OPEN_CREATE | (nosync ? KB_STORE_OPEN_NOSYNC : 0);
    o.log.fn = on_log;
    o.log.payload = &n_grown;
    kb_store *s = NULL;
    kb_error err = KB_ERROR_INIT;
    if (kb_store_open(&s, kb_dir, &o, &err) != KB_OK) {
        return die("opening the store", &err);
    }
    kb_record *recs = kb_calloc(batch > n_tasks ? batch : n_tasks, sizeof *recs);
    kb_put_result *res = kb_calloc(batch > n_tasks ? batch : n_tasks, sizeof *res);
    for (size_t i = 0; i < n_tasks; i++) {
        recs[i].kind = KB_RECORD_TASK;
        make_task(&recs[i].task, i);
    }
    if (kb_store_put_batch(s, recs, n_tasks, res, NULL, &err) != KB_OK) {
        return die("putting tasks", &err);
    }
    for (size_t i = 0; i < n_tasks; i++) {
        kb_record_release(&recs[i]);
    }
    double put_s = 0, put_cpu = 0;
    size_t n_added = 0;
    for (size_t done = 0; done < n; done += batch) {
        size_t m = n - done < batch ? n - done : batch;
        for (size_t i = 0; i < m; i++) {
            recs[i].kind = KB_RECORD_RUN;
            make_run(&recs[i].run, done + i, n_tasks, seq_ids, &rng);
        }
        double t0 = now_s(), c0 = cpu_s();
        if (kb_store_put_batch(s, recs, m, res, NULL, &err) != KB_OK) {
            return die("putting runs", &err);
        }
        put_s += now_s() - t0;
        put_cpu += cpu_s() - c0;
        for (size_t i = 0; i < m; i++) {
            n_added += res[i] == KB_PUT_ADDED;
            kb_record_release(&recs[i]);
        }
    }
    rate kb_put = {(double)n_added / put_s, (double)n_added / put_cpu};
    kb_store_stats st;
    if (kb_store_stats_get(&st, s, &err) != KB_OK) {
        return die("stats", &err);
    }
    size_t disk = file_bytes(kb_dir);

    /* (c) read-back */
    size_t n_queries = n_tasks < 20 ? n_tasks : 20, n_task_runs = 0;
    double t0 = now_s();
    for (size_t q = 0; q < n_queries; q++) {
        char tid[32];
        snprintf(tid, sizeof tid, "t-%04zu", q * (n_tasks / n_queries));
        kb_store_filter f = KB_STORE_FILTER_INIT;
        f.task_id = tid;
        counter cnt = {0, 0};
        if (kb_store_foreach_run(s, &f, count_run, &cnt, &err) != KB_OK) {
            return die("reading a task's runs", &err);
        }
        n_task_runs += cnt.n;
    }
    double task_s = (now_s() - t0) / (double)n_queries;
    counter all = {0, 0};
    t0 = now_s();
    if (kb_store_foreach_run(s, NULL, count_run, &all, &err) != KB_OK) {
        return die("scanning", &err);
    }
    double scan = (double)all.n / (now_s() - t0);
    kb_store_close(s);
    size_t n_bare_scan = 0;
    double bare_scan_rate = bare_scan(kb_dir, &n_bare_scan);

    printf("\n%-56s %12s %12s\n", "measurement", "wall", "cpu");
    printf("%-56s %12.0f %12.0f\n", "(a) bare LMDB put, sequential keys, 1,000/commit (/s)",
           bare_seq.wall, bare_seq.cpu);
    printf("%-56s %12.0f %12.0f\n", "(a) bare LMDB put, sequential keys, batch/commit (/s)",
           bare_seq_b.wall, bare_seq_b.cpu);
    printf("%-56s %12.0f %12.0f  (%zu puts)\n",
           "(a) bare LMDB put, random keys, 1,000/commit (/s)", bare_rand.wall, bare_rand.cpu,
           n_rand);
    printf("%-56s %12.0f %12.0f  (%zu added)\n", "(b) kb_store_put_batch (runs/s)", kb_put.wall,
           kb_put.cpu, n_added);
    printf("%-56s %12.1f\n", "(b) store file on disk (MiB)", (double)disk / (1 << 20));
    printf("%-56s %12.1f\n", "(b) store pages in use (MiB)", (double)st.used_bytes / (1 << 20));
    printf("%-56s %12.1f\n", "(b) bytes on disk per run", (double)disk / (double)st.n_runs);
    printf("%-56s %12d\n", "(b) map growths", n_grown);
    printf("%-56s %12.1f  (%zu runs/task)\n", "(c) all runs of one task (queries/s)",
           1.0 / task_s, n_task_runs / n_queries);
    printf("%-56s %12.0f\n", "(c) runs of one task, decoded (runs/s)",
           (double)(n_task_runs / n_queries) / task_s);
    printf("%-56s %12.0f\n", "(c) full scan with decode (runs/s)", scan);
    printf("%-56s %12.0f\n", "(c) bare LMDB cursor walk of the runs (runs/s)", bare_scan_rate);
    printf("%-56s %12.0f\n", "(d) decode one run, owned fields (runs/s)", dec_heap);
    printf("%-56s %12.0f\n", "(d) decode one run into the iteration arena (runs/s)",
           dec_arena);
    printf("\nratios (wall / cpu)\n");
    printf("  bare sequential (1,000/commit) / kb put:   %6.2fx %6.2fx\n",
           bare_seq.wall / kb_put.wall, bare_seq.cpu / kb_put.cpu);
    printf("  bare sequential (batch/commit) / kb put:   %6.2fx %6.2fx\n",
           bare_seq_b.wall / kb_put.wall, bare_seq_b.cpu / kb_put.cpu);
    printf("  kb put / bare random keys (1,000/commit):  %6.2fx %6.2fx\n",
           kb_put.wall / bare_rand.wall, kb_put.cpu / bare_rand.cpu);
    printf("  bare cursor walk / kb full scan:           %6.2fx\n", bare_scan_rate / scan);
    printf("  arena decode / owned decode:               %6.2fx\n", dec_arena / dec_heap);

    kb_free(recs);
    kb_free(res);
    if (dir_arg == NULL) {
        remove_env(kb_dir);
        rmdir(root);
    }
    return 0;
}
