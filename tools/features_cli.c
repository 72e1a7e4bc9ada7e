#include "tools/features_cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/core/alloc.h"
#include "tools/exit.h"

void features_args_init(features_args *a, const char *cmd)
{
    kb_dataset_opts d = KB_DATASET_OPTS_INIT;
    kb_metafeatures_opts m = KB_METAFEATURES_OPTS_INIT;
    a->cmd = cmd;
    a->dataset = d;
    a->mf = m;
    a->mf.groups = KB_METAFEATURES_GROUP_ALL;
    a->log.cmd = cmd;
    a->log.quiet = 0;
    a->log.progress = isatty(STDERR_FILENO);
}

int features_args_option(features_args *a, int key, const char *arg)
{
    kb_error err = KB_ERROR_INIT;
    switch (key) {
    case FEATURES_OPT_GROUPS:
        if (kb_metafeatures_parse_groups(&a->mf.groups, arg, &err) != KB_OK) {
            cli_usage(a->cmd, "option '--groups': %s", err.msg);
            return -1;
        }
        return 1;
    case FEATURES_OPT_SAMPLE:
        if (cli_parse_size(a->cmd, "sample", arg, &a->mf.sample_rows) != 0) {
            return -1;
        }
        if (a->mf.sample_rows == 0) {
            cli_usage(a->cmd, "option '--sample': must be at least 1");
            return -1;
        }
        return 1;
    case FEATURES_OPT_SEED: {
        unsigned long long s;
        if (cli_parse_u64(a->cmd, "seed", arg, &s) != 0) {
            return -1;
        }
        a->mf.seed = (uint64_t)s;
        return 1;
    }
    case FEATURES_OPT_TARGET:
        a->dataset.target = arg;
        return 1;
    case FEATURES_OPT_TASK_TYPE:
        if (strcmp(arg, "classification") == 0) {
            a->dataset.task = KB_DATASET_TASK_CLASSIFICATION;
        } else if (strcmp(arg, "regression") == 0) {
            a->dataset.task = KB_DATASET_TASK_REGRESSION;
        } else {
            cli_usage(a->cmd,
                      "option '--task-type': expected classification or regression, "
                      "got '%s'",
                      arg);
            return -1;
        }
        return 1;
    case FEATURES_OPT_PROGRESS:
        a->log.progress = 1;
        return 1;
    case FEATURES_OPT_QUIET:
        a->log.quiet = 1;
        return 1;
    default:
        return 0;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_name(const void *x, const void *y)
{
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    return strcmp(kb_metafeatures_name(a), kb_metafeatures_name(b));
}

int features_read(kb_dataset *d, const char *path, features_args *a)
{
    kb_error err = KB_ERROR_INIT;
    kb_log log = {cli_log_stderr, &a->log};
    a->dataset.log = log;
    a->mf.log = log;
    memset(d, 0, sizeof *d);
    kb_log_printf(&log, KB_LOG_LEVEL_INFO, "reading '%s'", path);
    double t0 = now_s();
    if (kb_dataset_read(d, path, &a->dataset, &err) != KB_OK) {
        return cli_fail(a->cmd, &err);
    }
    kb_log_printf(&log, KB_LOG_LEVEL_INFO, "read %zu rows x %zu features in %.2f s", d->n_rows,
                  d->n_cols, now_s() - t0);
    return KB_EXIT_OK;
}

int features_compute(kb_metafeatures *mf, const kb_dataset *d, const char *path, features_args *a)
{
    kb_error err = KB_ERROR_INIT;
    double t0 = now_s();
    if (kb_metafeatures_compute(mf, d, &a->mf, &err) != KB_OK) {
        kb_error_prefix(&err, "'%s': ", path);
        return cli_fail(a->cmd, &err);
    }
    kb_log_printf(&a->mf.log, KB_LOG_LEVEL_INFO, "meta-features in %.2f s", now_s() - t0);
    return KB_EXIT_OK;
}

int features_load(kb_dataset *d, kb_metafeatures *mf, const char *path, features_args *a)
{
    int rc = features_read(d, path, a);
    if (rc == KB_EXIT_OK && (rc = features_compute(mf, d, path, a)) != KB_EXIT_OK) {
        kb_dataset_release(d);
    }
    return rc;
}

size_t features_sorted(size_t *order, const kb_metafeatures *mf)
{
    size_t n = 0;
    for (size_t i = 0; i < kb_metafeatures_count(); i++) {
        if (kb_metafeatures_group(i) & mf->groups) {
            order[n++] = i;
        }
    }
    qsort(order, n, sizeof order[0], cmp_name);
    return n;
}

cJSON *features_json(const kb_metafeatures *mf)
{
    size_t order[KB_METAFEATURES_MAX];
    size_t n = features_sorted(order, mf);
    cJSON *o = cJSON_CreateObject();
    for (size_t t = 0; o != NULL && t < n; t++) {
        double v = mf->values[order[t]];
        cJSON *item = isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
        if (item == NULL || !cJSON_AddItemToObject(o, kb_metafeatures_name(order[t]), item)) {
            cJSON_Delete(item);
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}


const char *features_task_name(kb_dataset_task t)
{
    return t == KB_DATASET_TASK_REGRESSION ? "regression" : "classification";
}

/* Split "a,b,,c" into owned strings, skipping empty items. */
static int split_tags(char ***out, size_t *n_out, const char *list)
{
    size_t cap = 1;
    for (const char *p = list; *p != '\0'; p++) {
        cap += *p == ',';
    }
    char **v = kb_calloc(cap, sizeof *v);
    size_t n = 0;
    if (v == NULL) {
        return KB_ENOMEM;
    }
    for (const char *p = list;;) {
        size_t len = strcspn(p, ",");
        if (len > 0 && (v[n++] = kb_strndup(p, len)) == NULL) {
            for (size_t i = 0; i + 1 < n; i++) {
                kb_free(v[i]);
            }
            kb_free(v);
            return KB_ENOMEM;
        }
        if (p[len] == '\0') {
            break;
        }
        p += len + 1;
    }
    *out = v;
    *n_out = n;
    return KB_OK;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int features_build_task(kb_task *t, const char *id, const char *name, const char *tags,
                      const char *team, const kb_dataset *d, const kb_metafeatures *mf)
{
    size_t order[KB_METAFEATURES_MAX];
    size_t n = features_sorted(order, mf);
    t->id = kb_strdup(id);
    t->name = kb_strdup(name);
    t->fingerprint = kb_strdup(d->fingerprint);
    t->type = d->task == KB_DATASET_TASK_REGRESSION ? KB_TASK_TYPE_REGRESSION
                                                    : KB_TASK_TYPE_CLASSIFICATION;
    t->target = d->target_name != NULL ? kb_strdup(d->target_name) : NULL;
    t->feature_set = kb_strdup(KB_METAFEATURES_SET);
    t->team = team != NULL ? kb_strdup(team) : NULL;
    t->created_at = now_us();
    t->features = kb_calloc(n > 0 ? n : 1, sizeof *t->features);
    if (t->id == NULL || t->name == NULL || t->fingerprint == NULL || t->feature_set == NULL ||
        (d->target_name != NULL && t->target == NULL) || (team != NULL && t->team == NULL) ||
        t->features == NULL) {
        return KB_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        t->features[i].name = kb_strdup(kb_metafeatures_name(order[i]));
        t->features[i].value = mf->values[order[i]];
        t->n_features = i + 1;
        if (t->features[i].name == NULL) {
            return KB_ENOMEM;
        }
    }
    if (tags != NULL && split_tags(&t->tags, &t->n_tags, tags) != KB_OK) {
        return KB_ENOMEM;
    }
    return KB_OK;
}

int features_ensure_task(char id_out[FEATURES_TASK_ID_SIZE], kb_store *store, const char *path,
                         const char *name, features_args *a)
{
    kb_dataset d;
    int rc = features_read(&d, path, a);
    if (rc != KB_EXIT_OK) {
        return rc;
    }
    snprintf(id_out, FEATURES_TASK_ID_SIZE, "t-%.16s", d.fingerprint);
    kb_error err = KB_ERROR_INIT;
    kb_task old;
    memset(&old, 0, sizeof old);
    int got = kb_store_get_task(&old, store, id_out, &err);
    kb_task_release(&old);
    if (got == KB_OK || got != KB_ENOTFOUND) {
        kb_dataset_release(&d);
        return got == KB_OK ? KB_EXIT_OK : cli_fail(a->cmd, &err);
    }
    kb_metafeatures mf;
    rc = features_compute(&mf, &d, path, a);
    kb_record rec;
    memset(&rec, 0, sizeof rec);
    rec.kind = KB_RECORD_TASK;
    if (rc == KB_EXIT_OK &&
        features_build_task(&rec.task, id_out, name, NULL, NULL, &d, &mf) != KB_OK) {
        rc = cli_error(a->cmd, KB_EXIT_FAILURE, "out of memory building the task");
    }
    if (rc == KB_EXIT_OK) {
        kb_put_result res;
        char reason[1][KB_ERROR_MSG_SIZE];
        if (kb_store_put_batch(store, &rec, 1, &res, reason, &err) != KB_OK) {
            rc = cli_fail(a->cmd, &err);
        } else if (res == KB_PUT_REJECTED) {
            rc = cli_error(a->cmd, KB_EXIT_DATA, "task '%s' rejected: %s", id_out, reason[0]);
        }
    }
    kb_task_release(&rec.task);
    kb_dataset_release(&d);
    return rc;
}
