/*
 * bench_store_cache: what `kb recommend` pays per query to get its derived task-feature
 * matrix from the store's cache (kb_store_cache_*), as docs/BENCHMARKS.md ("Store cache")
 * reports it.
 *
 *   bench_store_cache [--rows N] [--cols D] [--reps R] [--dir DIR]
 *
 * Stores one N x D matrix of doubles (default 100,000 x 63, 50.4 MB) under a cache name, then
 * times, R times each (median reported), with the store's file in the page cache:
 *   (a) kb_store_tasks_generation;
 *   (b) kb_store_cache_get: a copy of the value into a new buffer;
 *   (c) kb_store_cache_view_open + reading every double (a sum, so the pages are touched) +
 *       close: the zero-copy path;
 *   (d) the same sum over a malloc'ed in-memory copy: the floor for touching the bytes;
 *   (e) kb_store_cache_view_open + close alone: the fixed cost of a query.
 * The put is timed once (a durable commit of the whole value).
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/core/alloc.h"
#include "kb/store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int die(const char *what, const kb_error *err)
{
    fprintf(stderr, "bench_store_cache: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
    return 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return t[n / 2];
}

static double sum_all(const double *d, size_t n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += d[i];
        s1 += d[i + 1];
        s2 += d[i + 2];
        s3 += d[i + 3];
    }
    for (; i < n; i++) {
        s0 += d[i];
    }
    return s0 + s1 + s2 + s3;
}

int main(int argc, char **argv)
{
    size_t rows = 100000, cols = 63;
    int reps = 21;
    const char *dir = NULL;
    static const struct option lopts[] = {{"rows", 1, NULL, 'n'},
                                          {"cols", 1, NULL, 'd'},
                                          {"reps", 1, NULL, 'r'},
                                          {"dir", 1, NULL, 'D'},
                                          {NULL, 0, NULL, 0}};
    for (int c; (c = getopt_long(argc, argv, "", lopts, NULL)) != -1;) {
        switch (c) {
        case 'n': rows = strtoull(optarg, NULL, 10); break;
        case 'd': cols = strtoull(optarg, NULL, 10); break;
        case 'r': reps = atoi(optarg); break;
        case 'D': dir = optarg; break;
        default: return 2;
        }
    }
    if (reps < 1 || reps > 1000 || rows == 0 || cols == 0 || rows > SIZE_MAX / 8 / cols) {
        return die("bad arguments", NULL);
    }
    char tmp[] = "/tmp/kb-bench-cache-XXXXXX";
    if (dir == NULL && (dir = mkdtemp(tmp)) == NULL) {
        return die("mkdtemp failed", NULL);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/kb", dir);
    size_t n = rows * cols, bytes = n * sizeof(double);
    double *m = kb_malloc(bytes), *copy = kb_malloc(bytes);
    if (m == NULL || copy == NULL) {
        return die("out of memory", NULL);
    }
    for (size_t i = 0; i < n; i++) {
        m[i] = (double)(i % 1000) * 1e-3;
    }
    kb_store *s = NULL;
    kb_error err = KB_ERROR_INIT;
    kb_store_opts o = KB_STORE_OPTS_INIT;
    o.flags = KB_STORE_OPEN_CREATE;
    if (kb_store_open(&s, path, &o, &err) != KB_OK) {
        return die("open", &err);
    }
    double t0 = now_s();
    if (kb_store_cache_put(s, "bench", m, bytes, 1, &err) != KB_OK) {
        return die("put", &err);
    }
    double t_put = now_s() - t0;

    double *t_gen = kb_malloc_array((size_t)reps, sizeof(double));
    double *t_get = kb_malloc_array((size_t)reps, sizeof(double));
    double *t_view = kb_malloc_array((size_t)reps, sizeof(double));
    double *t_mem = kb_malloc_array((size_t)reps, sizeof(double));
    double *t_open = kb_malloc_array((size_t)reps, sizeof(double));
    volatile double sink = 0;
    memcpy(copy, m, bytes);
    for (int r = 0; r < reps; r++) {
        uint64_t g;
        t0 = now_s();
        if (kb_store_tasks_generation(&g, s, &err) != KB_OK) {
            return die("generation", &err);
        }
        t_gen[r] = now_s() - t0;

        void *data = NULL;
        size_t len;
        t0 = now_s();
        if (kb_store_cache_get(s, "bench", &data, &len, &g, &err) != KB_OK) {
            return die("get", &err);
        }
        t_get[r] = now_s() - t0;
        kb_free(data);

        kb_store_cache_view *v = NULL;
        t0 = now_s();
        if (kb_store_cache_view_open(&v, s, "bench", &err) != KB_OK) {
            return die("view", &err);
        }
        sink += sum_all(kb_store_cache_view_data(v), kb_store_cache_view_len(v) / 8);
        kb_store_cache_view_close(v);
        t_view[r] = now_s() - t0;

        t0 = now_s();
        sink += sum_all(copy, n);
        t_mem[r] = now_s() - t0;

        t0 = now_s();
        if (kb_store_cache_view_open(&v, s, "bench", &err) != KB_OK) {
            return die("view", &err);
        }
        kb_store_cache_view_close(v);
        t_open[r] = now_s() - t0;
    }
    double view = median(t_view, reps), mem = median(t_mem, reps);
    printf("matrix %zu x %zu doubles (%.1f MB), %d repetitions, medians\n", rows, cols,
           (double)bytes / 1e6, reps);
    printf("put (one synced commit)            %9.3f ms\n", 1e3 * t_put);
    printf("tasks_generation                   %9.4f ms\n", 1e3 * median(t_gen, reps));
    printf("cache_get (copy out)               %9.3f ms\n", 1e3 * median(t_get, reps));
    printf("cache_view open + sum + close      %9.3f ms\n", 1e3 * view);
    printf("sum over a malloc'ed copy (floor)  %9.3f ms\n", 1e3 * mem);
    printf("view / floor                       %9.2fx\n", view / mem);
    printf("cache_view open + close alone      %9.4f ms\n", 1e3 * median(t_open, reps));
    kb_store_close(s);
    kb_free(m);
    kb_free(copy);
    kb_free(t_gen);
    kb_free(t_get);
    kb_free(t_view);
    kb_free(t_mem);
    kb_free(t_open);
    char cmd[4200];
    if (dir == tmp) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0) {
            fprintf(stderr, "bench_store_cache: could not remove %s\n", tmp);
        }
    }
    return sink == 12345.678 ? 3 : 0;
}
