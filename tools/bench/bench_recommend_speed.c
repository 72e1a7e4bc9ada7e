/*
 * bench_recommend_speed: a whole `kb recommend --task ID` on a large synthetic knowledge base,
 * driven in-process (cmd_recommend, stdout to /dev/null), as docs/BENCHMARKS.md reports it.
 *
 *   bench_recommend_speed --source KB --kb OUT [--tasks 100000] [--configs 30] [--queries 20]
 *                         [--peer-queries 3] [--seed 1] [--json]
 *
 * The synthetic knowledge base OUT is built from the real tasks of KB (the bundled history):
 * task i copies real task i mod S with Gaussian noise of 0.1 robust scales (median / IQR, as
 * kb scales meta-features) on every present meta-feature, and gets that task's first
 * `--configs` svm runs with Gaussian noise of 0.01 on the accuracy. An existing OUT with the
 * right number of tasks is reused. Then: the first query (it derives the table and keeps it in
 * the store's cache), `--queries` queries on random stored tasks through the cache (median,
 * min, p90 wall ms), and `--peer-queries` of the same queries with --no-cache (every task and
 * run read from the store, the table derived again), whose JSON output must be identical.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "engine/core/alloc.h"
#include "engine/core/rng.h"
#include "engine/similarity.h"
#include "engine/stats.h"
#include "kb/store.h"
#include "tools/commands.h"

typedef struct src_task {
    kb_task t;         /* deep copy */
    kb_run *runs;      /* deep copies, first `configs` ok svm runs */
    size_t n_runs;
} src_task;

typedef struct src {
    src_task *tasks;
    size_t n, cap, configs;
    int failed;
} src;

static int die(const char *what, const kb_error *err)
{
    fprintf(stderr, "bench_recommend_speed: %s%s%s\n", what, err ? ": " : "",
            err ? err->msg : "");
    return 1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time of the process: steadier than wall time on a shared, loaded machine */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double last_cpu_ms;

static int copy_metrics(kb_metric **out, const kb_metric *m, size_t n)
{
    *out = kb_calloc(n ? n : 1, sizeof **out);
    for (size_t i = 0; *out != NULL && i < n; i++) {
        (*out)[i].name = kb_strdup(m[i].name);
        (*out)[i].value = m[i].value;
    }
    return *out != NULL ? KB_OK : KB_ENOMEM;
}

static int on_task(const kb_task *t, void *payload)
{
    src *s = payload;
    if (t->n_features == 0 || t->type != KB_TASK_TYPE_CLASSIFICATION) {
        return 0;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->tasks = kb_realloc_array(s->tasks, s->cap, sizeof *s->tasks);
        if (s->tasks == NULL) {
            return s->failed = 1;
        }
    }
    src_task *d = &s->tasks[s->n++];
    memset(d, 0, sizeof *d);
    d->t.id = kb_strdup(t->id);
    d->t.name = kb_strdup(t->name ? t->name : t->id);
    d->t.type = t->type;
    d->t.feature_set = t->feature_set ? kb_strdup(t->feature_set) : NULL;
    d->t.n_features = t->n_features;
    d->t.created_at = KB_TIME_UNKNOWN;
    d->runs = kb_calloc(s->configs, sizeof *d->runs);
    if (copy_metrics(&d->t.features, t->features, t->n_features) != KB_OK || d->runs == NULL) {
        return s->failed = 1;
    }
    return 0;
}

static int on_run(const kb_run *r, void *payload)
{
    src *s = payload;
    src_task *d = NULL;
    for (size_t i = 0; i < s->n && d == NULL; i++) {
        d = strcmp(s->tasks[i].t.id, r->task_id) == 0 ? &s->tasks[i] : NULL;
    }
    if (d == NULL || d->n_runs == s->configs || r->objective == NULL) {
        return 0;
    }
    kb_run *o = &d->runs[d->n_runs++];
    o->space = kb_strdup(r->space);
    o->objective = kb_strdup(r->objective);
    o->direction = r->direction;
    o->status = KB_RUN_STATUS_OK;
    o->cost_s = NAN;
    o->started_at = o->finished_at = KB_TIME_UNKNOWN;
    o->n_config = r->n_config;
    o->config = kb_calloc(r->n_config ? r->n_config : 1, sizeof *o->config);
    for (size_t i = 0; o->config != NULL && i < r->n_config; i++) {
        o->config[i].name = kb_strdup(r->config[i].name);
        kb_value_copy(&o->config[i].value, &r->config[i].value);
    }
    o->n_metrics = r->n_metrics;
    if (o->config == NULL || copy_metrics(&o->metrics, r->metrics, r->n_metrics) != KB_OK) {
        return s->failed = 1;
    }
    return 0;
}

/* Build the synthetic knowledge base: n_tasks tasks, each with its source's runs. */
static int build(const char *out, const src *s, size_t n_tasks, uint64_t seed)
{
    kb_error err = KB_ERROR_INIT;
    size_t nf = s->tasks[0].t.n_features;
    /* the robust scale of each feature over the source tasks (same feature list everywhere) */
    double *x = kb_malloc_array(s->n * nf, sizeof *x);
    for (size_t i = 0; i < s->n; i++) {
        for (size_t j = 0; j < nf; j++) {
            x[i * nf + j] = s->tasks[i].t.n_features == nf ? s->tasks[i].t.features[j].value : NAN;
        }
    }
    kb_similarity_scaler sc;
    if (kb_similarity_scaler_fit(&sc, x, s->n, nf, &err) != KB_OK) {
        return die("scaling the source features", &err);
    }
    kb_free(x);
    kb_store *st = NULL;
    kb_store_opts o = KB_STORE_OPTS_INIT;
    o.flags = KB_STORE_OPEN_CREATE | KB_STORE_OPEN_NOSYNC;
    o.map_bytes = (size_t)4 << 30;
    if (kb_store_open(&st, out, &o, &err) != KB_OK) {
        return die("creating the synthetic knowledge base", &err);
    }
    size_t per = 1 + s->configs, batch_tasks = 256;
    kb_record *recs = kb_calloc(batch_tasks * per, sizeof *recs);
    kb_put_result *res = kb_malloc_array(batch_tasks * per, sizeof *res);
    kb_metric *feats = kb_malloc_array(batch_tasks * nf, sizeof *feats);
    kb_metric *accs = kb_malloc_array(batch_tasks * per, sizeof *accs);
    char (*ids)[40] = kb_malloc_array(batch_tasks * per, sizeof *ids);
    char (*names)[64] = kb_malloc_array(batch_tasks, sizeof *names);
    kb_rng rng;
    kb_rng_seed(&rng, seed);
    int rc = KB_OK;
    for (size_t t0 = 0; t0 < n_tasks && rc == KB_OK; t0 += batch_tasks) {
        size_t nb = n_tasks - t0 < batch_tasks ? n_tasks - t0 : batch_tasks, n = 0;
        for (size_t b = 0; b < nb; b++) {
            size_t ti = t0 + b;
            const src_task *sk = &s->tasks[ti % s->n];
            kb_record *r = &recs[n];
            memset(r, 0, sizeof *r);
            r->kind = KB_RECORD_TASK;
            r->task = sk->t;
            snprintf(ids[n], sizeof ids[n], "syn-%07zu", ti);
            snprintf(names[b], sizeof names[b], "%.40s-%zu", sk->t.name, ti);
            r->task.id = ids[n];
            r->task.name = names[b];
            r->task.fingerprint = NULL;
            kb_metric *f = feats + b * nf;
            for (size_t j = 0; j < nf; j++) {
                f[j] = sk->t.features[j];
                if (!isnan(f[j].value)) {
                    f[j].value += 0.1 * sc.scale[j] * kb_rng_normal(&rng);
                }
            }
            r->task.features = f;
            const char *task_id = ids[n];
            n++;
            for (size_t k = 0; k < sk->n_runs; k++) {
                kb_record *rr = &recs[n];
                memset(rr, 0, sizeof *rr);
                rr->kind = KB_RECORD_RUN;
                rr->run = sk->runs[k];
                snprintf(ids[n], sizeof ids[n], "syn-%07zu:%zu", ti, k);
                rr->run.id = ids[n];
                rr->run.task_id = (char *)task_id;
                /* one metric: the objective, with noise */
                kb_metric *m = &accs[n];
                *m = sk->runs[k].metrics[0];
                for (size_t i = 0; i < sk->runs[k].n_metrics; i++) {
                    if (strcmp(sk->runs[k].metrics[i].name, sk->runs[k].objective) == 0) {
                        *m = sk->runs[k].metrics[i];
                    }
                }
                m->value += 0.01 * kb_rng_normal(&rng);
                rr->run.metrics = m;
                rr->run.n_metrics = 1;
                n++;
            }
        }
        rc = kb_store_put_batch(st, recs, n, res, NULL, &err);
    }
    kb_store_close(st);
    kb_similarity_scaler_release(&sc);
    kb_free(recs);
    kb_free(res);
    kb_free(feats);
    kb_free(accs);
    kb_free(ids);
    kb_free(names);
    return rc == KB_OK ? 0 : die("writing the synthetic knowledge base", &err);
}

/* One kb recommend in-process, stdout to `sink`; returns wall ms, or -1 on a failure. */
static double run_query(const char *kb, const char *task, int no_cache, const char *sink)
{
    char *argv[12];
    int argc = 0;
    argv[argc++] = "recommend";
    argv[argc++] = "--kb";
    argv[argc++] = (char *)kb;
    argv[argc++] = "--task";
    argv[argc++] = (char *)task;
    argv[argc++] = "--space";
    argv[argc++] = "svm";
    argv[argc++] = "--json";
    argv[argc++] = "--quiet";
    if (no_cache) {
        argv[argc++] = "--no-cache";
    }
    argv[argc] = NULL;
    fflush(stdout);
    int saved = dup(1);
    int fd = open(sink, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    close(fd);
    double t0 = now_ms(), c0 = cpu_ms();
    int code = cmd_recommend(argc, argv);
    fflush(stdout);
    double dt = now_ms() - t0;
    last_cpu_ms = cpu_ms() - c0;
    dup2(saved, 1);
    close(saved);
    return code == 0 ? dt : -1;
}

static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa != NULL && fb != NULL;
    for (int ca = 0, cb = 0; same && ca != EOF;) {
        ca = fgetc(fa);
        cb = fgetc(fb);
        same = ca == cb;
    }
    if (fa) {
        fclose(fa);
    }
    if (fb) {
        fclose(fb);
    }
    return same;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *source = NULL, *out = NULL;
    size_t n_tasks = 100000, configs = 30, queries = 20, peer = 3;
    uint64_t seed = 1;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--source") == 0 && i + 1 < argc) {
            source = argv[++i];
        } else if (strcmp(argv[i], "--kb") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--tasks") == 0 && i + 1 < argc) {
            n_tasks = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--configs") == 0 && i + 1 < argc) {
            configs = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--queries") == 0 && i + 1 < argc) {
            queries = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--peer-queries") == 0 && i + 1 < argc) {
            peer = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else {
            fprintf(stderr, "usage: bench_recommend_speed --source KB --kb OUT [--tasks N] "
                            "[--configs C] [--queries Q] [--peer-queries P] [--seed S] [--json]\n");
            return 2;
        }
    }
    if (source == NULL || out == NULL || n_tasks == 0 || queries == 0 || configs == 0) {
        return die("--source and --kb are required; counts must be positive", NULL);
    }
    kb_error err = KB_ERROR_INIT;
    kb_store *st = NULL;
    kb_store_opts o = KB_STORE_OPTS_INIT;
    o.flags = KB_STORE_OPEN_RDONLY;
    size_t have = 0;
    if (kb_store_open(&st, out, &o, NULL) == KB_OK) {
        kb_store_stats ss;
        if (kb_store_stats_get(&ss, st, &err) == KB_OK) {
            have = ss.n_tasks;
        }
        kb_store_close(st);
    }
    double build_s = 0;
    if (have != n_tasks) {
        if (have != 0) {
            return die("--kb holds another knowledge base: remove it first", NULL);
        }
        src s = {NULL, 0, 0, configs, 0};
        if (kb_store_open(&st, source, &o, &err) != KB_OK) {
            return die("opening --source", &err);
        }
        kb_store_filter f = KB_STORE_FILTER_INIT;
        int rc = kb_store_foreach_task(st, &f, on_task, &s, &err);
        f.space = "svm";
        f.status = KB_RUN_STATUS_OK;
        rc = rc ? rc : kb_store_foreach_run(st, &f, on_run, &s, &err);
        kb_store_close(st);
        if (rc != KB_OK || s.failed || s.n == 0) {
            return die("reading the source tasks and runs", rc ? &err : NULL);
        }
        double t0 = now_ms();
        if (build(out, &s, n_tasks, seed) != 0) {
            return 1;
        }
        build_s = (now_ms() - t0) / 1e3;
        for (size_t i = 0; i < s.n; i++) {
            kb_task_release(&s.tasks[i].t);
            for (size_t k = 0; k < s.configs; k++) {
                kb_run_release(&s.tasks[i].runs[k]);
            }
            kb_free(s.tasks[i].runs);
        }
        kb_free(s.tasks);
    }
    kb_rng rng;
    kb_rng_seed(&rng, seed + 1);
    char sink_a[4096], sink_b[4096], id[40];
    snprintf(sink_a, sizeof sink_a, "%s.query.json", out);
    snprintf(sink_b, sizeof sink_b, "%s.peer.json", out);
    size_t *picks = kb_malloc_array(queries, sizeof *picks);
    double *ms = kb_malloc_array(queries, sizeof *ms), *pms = kb_malloc_array(peer + 1, sizeof *pms);
    double *cms = kb_malloc_array(queries, sizeof *cms), *pcms = kb_malloc_array(peer + 1, sizeof *pcms);
    for (size_t q = 0; q < queries; q++) {
        picks[q] = (size_t)(kb_rng_uniform(&rng) * (double)n_tasks) % n_tasks;
    }
    snprintf(id, sizeof id, "syn-%07zu", picks[0]);
    double first = run_query(out, id, 0, sink_a);
    for (size_t q = 0; q < queries && first >= 0; q++) {
        snprintf(id, sizeof id, "syn-%07zu", picks[q]);
        ms[q] = run_query(out, id, 0, sink_a);
        cms[q] = last_cpu_ms;
        if (ms[q] < 0) {
            return die("a cached query failed", NULL);
        }
    }
    if (first < 0) {
        return die("the first query failed", NULL);
    }
    int agree = 1;
    size_t np = peer < queries ? peer : queries;
    for (size_t q = 0; q < np; q++) {
        snprintf(id, sizeof id, "syn-%07zu", picks[q]);
        pms[q] = run_query(out, id, 1, sink_b);
        pcms[q] = last_cpu_ms;
        run_query(out, id, 0, sink_a);
        agree = agree && pms[q] >= 0 && same_file(sink_a, sink_b);
    }
    qsort(ms, queries, sizeof *ms, cmp_double);
    qsort(pms, np, sizeof *pms, cmp_double);
    qsort(cms, queries, sizeof *cms, cmp_double);
    qsort(pcms, np, sizeof *pcms, cmp_double);
    double med = ms[queries / 2], p90 = ms[(size_t)(0.9 * (double)(queries - 1))];
    double pmed = np > 0 ? pms[np / 2] : NAN;
    double cmed = cms[queries / 2], pcmed = np > 0 ? pcms[np / 2] : NAN;
    if (json) {
        printf("{\"schema\":\"kb.bench.recommend_speed/1\",\"tasks\":%zu,\"configs\":%zu,"
               "\"build_s\":%.1f,\"first_ms\":%.2f,\"median_ms\":%.3f,\"min_ms\":%.3f,"
               "\"p90_ms\":%.3f,\"cpu_median_ms\":%.3f,\"no_cache_median_ms\":%.1f,"
               "\"no_cache_cpu_median_ms\":%.1f,\"speedup\":%.1f,\"agree\":%s}\n",
               n_tasks, configs, build_s, first, med, ms[0], p90, cmed, pmed, pcmed, pmed / med,
               agree ? "true" : "false");
    } else {
        printf("kb recommend --task ID --space svm --json, %zu synthetic tasks x %zu svm runs"
               "%s\n", n_tasks, configs, build_s > 0 ? "" : " (knowledge base reused)");
        if (build_s > 0) {
            printf("  building the knowledge base        %8.1f s\n", build_s);
        }
        printf("  first query (derives the table)    %8.1f ms\n", first);
        printf("  cached, %zu queries: median %.2f ms wall (min %.2f, p90 %.2f), %.2f ms CPU\n",
               queries, med, ms[0], p90, cmed);
        printf("  --no-cache, %zu queries: median %.1f ms wall, %.1f ms CPU  (%.0fx the cached "
               "median wall, %.0fx CPU)\n", np, pmed, pcmed, pmed / med, pcmed / cmed);
        printf("  cached and --no-cache answers identical: %s\n", agree ? "yes" : "NO");
    }
    kb_free(picks);
    kb_free(ms);
    kb_free(pms);
    kb_free(cms);
    kb_free(pcms);
    return agree ? 0 : 1;
}
