#include "tools/curve_cli.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/metafeatures.h"
#include "engine/similarity.h"
#include "tools/exit.h"
#include "tools/train_config.h"

void curve_cli_init(curve_cli *cc, const char *cmd)
{
    memset(cc, 0, sizeof *cc);
    cc->cmd = cmd;
    kb_curveio_opts io = KB_CURVEIO_OPTS_INIT;
    kb_curve_opts jo = KB_CURVE_OPTS_INIT;
    cc->io = io;
    cc->judge = jo;
    cc->log.cmd = cmd;
    cc->io.log.fn = cli_log_stderr;
    cc->io.log.payload = &cc->log;
}

void curve_cli_release(curve_cli *cc)
{
    kb_params_free(cc->config, cc->n_config);
    cc->config = NULL;
    cc->n_config = 0;
}

int curve_cli_option(curve_cli *cc, int key, const char *arg)
{
    kb_error err = KB_ERROR_INIT;
    double v;
    size_t k;
    switch (key) {
    case CURVE_OPT_FORMAT:
        if (kb_curveio_format_parse(&cc->io.format, arg, &err) != KB_OK) {
            cli_usage(cc->cmd, "option '--format': %s", err.msg);
            return -1;
        }
        return 1;
    case CURVE_OPT_METRIC: cc->judge.metric = arg; return 1;
    case CURVE_OPT_MODE:
        if (strcmp(arg, "min") == 0) {
            cc->judge.mode = KB_CURVE_MODE_MIN;
        } else if (strcmp(arg, "max") == 0) {
            cc->judge.mode = KB_CURVE_MODE_MAX;
        } else {
            cli_usage(cc->cmd, "option '--mode': expected 'min' or 'max', got '%s'", arg);
            return -1;
        }
        return 1;
    case CURVE_OPT_CONFIG:
        if (train_config_add_json(&cc->config, &cc->n_config, arg, &err) != KB_OK) {
            cli_usage(cc->cmd, "%s", err.msg);
            return -1;
        }
        return 1;
    case CURVE_OPT_CLASSES:
        if (cli_parse_size(cc->cmd, "classes", arg, &k) != 0) {
            return -1;
        }
        cc->judge.n_classes = k;
        return 1;
    case CURVE_OPT_REF_BEST:
    case CURVE_OPT_REF_MEDIAN:
        if (cli_parse_double(cc->cmd, key == CURVE_OPT_REF_BEST ? "ref-best" : "ref-median", arg,
                             &v) != 0) {
            return -1;
        }
        if (key == CURVE_OPT_REF_BEST) {
            cc->judge.ref_best = v;
        } else {
            cc->judge.ref_median = v;
        }
        return 1;
    case CURVE_OPT_JSON: cc->json = 1; return 1;
    case CURVE_OPT_QUIET: cc->log.quiet = 1; return 1;
    default: return 0;
    }
}

/* a number, or null when it is not finite (the schema's rule) */
static void add_num(cJSON *o, const char *name, double v)
{
    if (isfinite(v)) {
        cJSON_AddNumberToObject(o, name, v);
    } else {
        cJSON_AddNullToObject(o, name);
    }
}

cJSON *curve_cli_json(const kb_curve_judgement *j, const kb_curve_pred *f, double incumbent,
                      double level, const kb_curve_advice *a, size_t n_a)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) {
        return NULL;
    }
    cJSON_AddStringToObject(o, "light", kb_curve_light_name(j->light));
    cJSON_AddStringToObject(o, "metric", j->metric);
    cJSON_AddStringToObject(o, "mode", j->maximize ? "max" : "min");
    cJSON_AddNumberToObject(o, "n_points", (double)j->n_points);
    cJSON *last = cJSON_AddObjectToObject(o, "last");
    if (last != NULL) {
        add_num(last, "step", j->last_step);
        add_num(last, "value", j->last_value);
    }
    cJSON *best = cJSON_AddObjectToObject(o, "best");
    if (best != NULL) {
        add_num(best, "step", j->best_step);
        add_num(best, "value", j->best_value);
    }
    add_num(o, "noise", j->noise);
    cJSON *vs = cJSON_AddArrayToObject(o, "verdicts");
    for (size_t i = 0; vs != NULL && i < j->n_verdicts; i++) {
        const kb_curve_verdict *v = &j->verdicts[i];
        cJSON *e = cJSON_CreateObject();
        if (e == NULL || !cJSON_AddItemToArray(vs, e)) {
            cJSON_Delete(e);
            break;
        }
        cJSON_AddStringToObject(e, "kind", kb_curve_verdict_name(v->kind));
        cJSON_AddStringToObject(e, "light", kb_curve_light_name(kb_curve_verdict_light(v->kind)));
        add_num(e, "step", v->step);
        add_num(e, "detected_step", v->detected_step);
        add_num(e, "confidence", v->confidence);
        cJSON_AddStringToObject(e, "metric", v->metric);
        cJSON_AddStringToObject(e, "detail", v->detail);
    }
    if (f != NULL) {
        cJSON *fo = cJSON_AddObjectToObject(o, "forecast");
        if (fo != NULL) {
            add_num(fo, "target_step", f->target_step);
            cJSON_AddStringToObject(fo, "method", f->fallback ? "persistence" : "ensemble");
            add_num(fo, "mean", f->mean);
            add_num(fo, "sd", f->sd);
            add_num(fo, "lo", f->lo);
            add_num(fo, "hi", f->hi);
            add_num(fo, "level", level);
            add_num(fo, "incumbent", incumbent);
            add_num(fo, "p_beat", f->p_beat);
            cJSON *ms = cJSON_AddArrayToObject(fo, "models");
            for (size_t m = 0; ms != NULL && m < KB_CURVE_N_MODELS; m++) {
                if (!(f->weights[m] > 0)) {
                    continue;
                }
                cJSON *e = cJSON_CreateObject();
                if (e == NULL || !cJSON_AddItemToArray(ms, e)) {
                    cJSON_Delete(e);
                    break;
                }
                cJSON_AddStringToObject(e, "name", kb_curve_model_name(m));
                add_num(e, "weight", f->weights[m]);
                add_num(e, "mean", f->model_mean[m]);
            }
        }
    } else {
        cJSON_AddNullToObject(o, "forecast");
    }
    cJSON *as = cJSON_AddArrayToObject(o, "advice");
    for (size_t i = 0; as != NULL && i < n_a; i++) {
        cJSON *e = cJSON_CreateObject();
        if (e == NULL || !cJSON_AddItemToArray(as, e)) {
            cJSON_Delete(e);
            break;
        }
        cJSON_AddStringToObject(e, "reason", kb_curve_verdict_name(a[i].reason));
        cJSON_AddStringToObject(e, "param", a[i].param);
        add_num(e, "from", a[i].from);
        add_num(e, "to", a[i].to);
        cJSON_AddStringToObject(e, "text", a[i].text);
    }
    return o;
}

void curve_cli_print_verdict(FILE *out, const kb_curve_verdict *v)
{
    fprintf(out, "verdict   %-12s at step %-8g (%s, confidence %.2f): %s\n",
            kb_curve_verdict_name(v->kind), v->step,
            kb_curve_light_name(kb_curve_verdict_light(v->kind)), v->confidence, v->detail);
}

void curve_cli_print_advice(FILE *out, const kb_curve_advice *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i].text[0] != '\0') {
            fprintf(out, "advice    %s\n", a[i].text);
        }
    }
}

void curve_cli_print_forecast(FILE *out, const char *metric, const kb_curve_pred *f,
                              double incumbent, double level)
{
    fprintf(out, "forecast  %s at step %g: %.4g [%.4g, %.4g] (%.0f%%, %zu models)", metric,
            f->target_step, f->mean, f->lo, f->hi, 100 * level, f->n_models);
    if (!isnan(incumbent)) {
        fprintf(out, "; P(beat %.4g) = %.3f", incumbent, f->p_beat);
    }
    fputc('\n', out);
}

int curve_cli_emit(cJSON *doc, int pretty)
{
    char *s = pretty ? cJSON_Print(doc) : cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (s == NULL) {
        return -1;
    }
    fputs(s, stdout);
    fputc('\n', stdout);
    cJSON_free(s);
    return 0;
}

void curve_cli_move_members(cJSON *to, cJSON *from, const char *skip)
{
    cJSON *it = from->child;
    from->child = NULL;
    while (it != NULL) {
        cJSON *next = it->next;
        it->next = it->prev = NULL;
        if (skip != NULL && strcmp(it->string, skip) == 0) {
            cJSON_Delete(it);
        } else {
            cJSON_AddItemToObject(to, it->string, it);
        }
        it = next;
    }
    cJSON_Delete(from);
}

/* ------------------------------------------------------------------------------------------ */
/* Advice from the knowledge base                                                             */

typedef struct history_ctx {
    curve_history *h;
    const kb_curve_opts *jo;
    kb_error *err;
    int rc;
} history_ctx;

/* The primary verdict in a run's extra "judge" (an object or a JSON text); -1 if none. */
static int stored_verdict(const char *extra)
{
    if (extra == NULL) {
        return -1;
    }
    cJSON *root = cJSON_Parse(extra);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(root, "judge");
    cJSON *inner = NULL;
    if (cJSON_IsString(jd) && jd->valuestring != NULL) {
        inner = cJSON_Parse(jd->valuestring);
        jd = inner;
    }
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(jd, "verdicts");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(vs, 0), "kind");
    kb_curve_verdict_kind k;
    int out = -1;
    if (cJSON_IsString(kind) && kind->valuestring != NULL &&
        kb_curve_verdict_parse(&k, kind->valuestring, NULL) == KB_OK) {
        out = (int)k;
    }
    cJSON_Delete(inner);
    cJSON_Delete(root);
    return out;
}

/* kb_curve_judge on a stored curve; -1 when it gives no verdict, -2 when out of memory */
static int judged_verdict(const kb_run *r, const kb_curve_opts *jo)
{
    kb_curve c = KB_CURVE_INIT;
    int out = -1, rc = KB_OK;
    for (size_t s = 0; rc == KB_OK && s < r->n_curve; s++) {
        const kb_series *se = &r->curve[s];
        for (size_t i = 0; rc == KB_OK && i < se->n; i++) {
            rc = kb_curve_add(&c, (double)se->steps[i], se->metric, se->values[i], NULL);
        }
    }
    if (rc == KB_OK && r->status == KB_RUN_STATUS_DIVERGED) {
        rc = kb_curve_set_status(&c, "diverged", NULL);
    }
    kb_curve_opts o = *jo;
    o.metric = r->objective != NULL && kb_curve_find(&c, r->objective) >= 0 ? r->objective
                                                                            : NULL;
    o.mode = r->objective == NULL               ? KB_CURVE_MODE_AUTO
             : r->direction == KB_DIRECTION_MAXIMIZE ? KB_CURVE_MODE_MAX
                                                     : KB_CURVE_MODE_MIN;
    kb_curve_judgement j;
    if (rc == KB_OK && (rc = kb_curve_judge(&j, &c, &o, NULL)) == KB_OK) {
        out = j.n_verdicts > 0 ? (int)j.verdicts[0].kind : -1;
        kb_curve_judgement_release(&j);
    }
    kb_curve_release(&c);
    return rc == KB_ENOMEM ? -2 : out;
}

static int history_add(history_ctx *x, const kb_run *r, kb_curve_verdict_kind kind)
{
    curve_history *h = x->h;
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        kb_curve_past_run *g = kb_realloc_array(h->runs, cap, sizeof *g);
        if (g == NULL) {
            return KB_ENOMEM;
        }
        h->runs = g;
        h->cap = cap;
    }
    kb_curve_past_run *p = &h->runs[h->n];
    memset(p, 0, sizeof *p);
    char *id = kb_strdup(r->id), *task = kb_strdup(r->task_id);
    kb_param *cfg = r->n_config ? kb_calloc(r->n_config, sizeof *cfg) : NULL;
    int rc = id == NULL || task == NULL || (r->n_config && cfg == NULL) ? KB_ENOMEM : KB_OK;
    size_t nc = 0;
    for (; rc == KB_OK && nc < r->n_config; nc++) {
        cfg[nc].name = kb_strdup(r->config[nc].name);
        if (cfg[nc].name == NULL || kb_value_copy(&cfg[nc].value, &r->config[nc].value) != KB_OK) {
            kb_free(cfg[nc].name);
            rc = KB_ENOMEM;
            break;
        }
    }
    if (rc != KB_OK) {
        kb_params_free(cfg, nc);
        kb_free(id);
        kb_free(task);
        return rc;
    }
    p->id = id;
    p->task_id = task;
    p->config = cfg;
    p->n_config = r->n_config;
    p->verdict = kind;
    p->final_metric = NAN;
    for (size_t m = 0; r->objective != NULL && m < r->n_metrics; m++) {
        if (strcmp(r->metrics[m].name, r->objective) == 0) {
            p->final_metric = r->metrics[m].value;
        }
    }
    if (r->objective != NULL && !h->have_direction) {
        h->maximize = r->direction == KB_DIRECTION_MAXIMIZE;
        h->have_direction = 1;
    }
    h->n++;
    return KB_OK;
}

static int on_history_run(const kb_run *r, void *payload)
{
    history_ctx *x = payload;
    if (r->status == KB_RUN_STATUS_FAILED || r->status == KB_RUN_STATUS_RUNNING) {
        return 0;
    }
    int v = stored_verdict(r->extra);
    if (v < 0 && r->n_curve > 0) {
        v = judged_verdict(r, x->jo);
    }
    if (v == -2) {
        x->rc = kb_error_set(x->err, KB_ENOMEM, "history: out of memory");
        return 1;
    }
    if (v < 0) {
        v = r->status == KB_RUN_STATUS_DIVERGED ? (int)KB_CURVE_VERDICT_OVERFLOW
            : r->status == KB_RUN_STATUS_OK     ? (int)KB_CURVE_VERDICT_CONVERGED
                                         : -1;
    }
    if (v >= 0 && history_add(x, r, (kb_curve_verdict_kind)v) != KB_OK) {
        x->rc = kb_error_set(x->err, KB_ENOMEM, "history: out of memory");
        return 1;
    }
    return 0;
}

int curve_history_load(curve_history *h, kb_store *store, const char *task_id,
                       const kb_curve_opts *judge_opts, kb_error *err)
{
    kb_store_filter f = KB_STORE_FILTER_INIT;
    f.task_id = task_id;
    history_ctx x = {h, judge_opts, err, KB_OK};
    int rc = kb_store_foreach_run(store, &f, on_history_run, &x, err);
    return x.rc != KB_OK ? x.rc : rc;
}

/* every stored task with meta-features: ids and task-contiguous raw feature rows */
typedef struct task_rows {
    char **ids;
    double *x;
    size_t n, cap, n_feat;
    int oom;
} task_rows;

static int on_feature_task(const kb_task *t, void *payload)
{
    task_rows *r = payload;
    if (t->n_features == 0) {
        return 0;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64;
        char **ids = kb_realloc_array(r->ids, cap, sizeof *ids);
        if (ids != NULL) {
            r->ids = ids;
        }
        double *x = ids != NULL && cap <= SIZE_MAX / r->n_feat
                        ? kb_realloc_array(r->x, cap * r->n_feat, sizeof *x)
                        : NULL;
        if (x == NULL) {
            r->oom = 1;
            return 1;
        }
        r->x = x;
        r->cap = cap;
    }
    double *row = r->x + r->n * r->n_feat;
    for (size_t j = 0; j < r->n_feat; j++) {
        row[j] = NAN;
    }
    for (size_t i = 0; i < t->n_features; i++) {
        int j = kb_metafeatures_index(t->features[i].name);
        if (j >= 0 && (size_t)j < r->n_feat) {
            row[j] = t->features[i].value;
        }
    }
    if ((r->ids[r->n] = kb_strdup(t->id)) == NULL) {
        r->oom = 1;
        return 1;
    }
    r->n++;
    return 0;
}

int curve_history_neighbours(char ***ids_out, size_t *n_out, kb_store *store,
                             const char *task_id, size_t k, kb_error *err)
{
    *ids_out = NULL;
    *n_out = 0;
    task_rows r = {NULL, NULL, 0, 0, kb_metafeatures_count(), 0};
    kb_similarity_scaler sc = {0, NULL, NULL};
    kb_similarity_index ix;
    memset(&ix, 0, sizeof ix);
    double *others = NULL;
    kb_similarity_hit *hits = NULL;
    int rc = kb_store_foreach_task(store, NULL, on_feature_task, &r, err);
    if (r.oom) {
        rc = kb_error_set(err, KB_ENOMEM, "similar tasks: out of memory");
    }
    size_t q = 0;
    while (q < r.n && strcmp(r.ids[q], task_id) != 0) {
        q++;
    }
    if (rc != KB_OK || q == r.n || r.n < 2 || k == 0) {
        goto done; /* no meta-features for the task, or no other task */
    }
    /* the scaler learns from the other tasks only, as kb recommend's does */
    others = kb_malloc_array((r.n - 1) * r.n_feat, sizeof *others);
    hits = kb_malloc_array(k, sizeof *hits);
    if (others == NULL || hits == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "similar tasks: out of memory");
        goto done;
    }
    for (size_t i = 0, o = 0; i < r.n; i++) {
        if (i != q) {
            memcpy(others + o++ * r.n_feat, r.x + i * r.n_feat, r.n_feat * sizeof *others);
        }
    }
    if ((rc = kb_similarity_scaler_fit(&sc, others, r.n - 1, r.n_feat, err)) != KB_OK) {
        goto done;
    }
    kb_similarity_scaler_apply(&sc, r.x, r.n);
    if ((rc = kb_similarity_index_build(&ix, r.x, r.n, r.n_feat, NULL, err)) != KB_OK) {
        goto done;
    }
    size_t n_hits = 0;
    if ((rc = kb_similarity_knn(hits, &n_hits, &ix, r.x + q * r.n_feat, k, KB_SIMILARITY_L1, q,
                                NULL, err)) != KB_OK) {
        goto done;
    }
    char **ids = kb_calloc(n_hits ? n_hits : 1, sizeof *ids);
    if (ids == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "similar tasks: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_hits; i++) {
        ids[i] = r.ids[hits[i].task];
        r.ids[hits[i].task] = NULL; /* moved */
    }
    *ids_out = ids;
    *n_out = n_hits;
done:
    kb_free(hits);
    kb_free(others);
    kb_similarity_index_release(&ix);
    kb_similarity_scaler_release(&sc);
    for (size_t i = 0; i < r.n; i++) {
        kb_free(r.ids[i]);
    }
    kb_free(r.ids);
    kb_free(r.x);
    return rc;
}

void curve_history_release(curve_history *h)
{
    for (size_t i = 0; i < h->n; i++) {
        kb_free((char *)h->runs[i].id);
        kb_free((char *)h->runs[i].task_id);
        kb_params_free((kb_param *)h->runs[i].config, h->runs[i].n_config);
    }
    kb_free(h->runs);
    memset(h, 0, sizeof *h);
}

void curve_cli_print_fix(FILE *out, const kb_curve_fix *f, kb_curve_verdict_kind kind,
                         const char *scope)
{
    fprintf(out, "advice    from the KB: ");
    if (f->to_value[0] != '\0') {
        fprintf(out, "%s -> %s", f->param, f->to_value);
    } else {
        fprintf(out, "%s x%.3g", f->param, f->ratio);
    }
    fprintf(out, " fixed %zu %s run%s of %s (e.g. %s -> %s", f->n_support,
            kb_curve_verdict_name(kind), f->n_support == 1 ? "" : "s", scope, f->example_bad,
            f->example_good);
    if (isfinite(f->gain)) {
        fprintf(out, "; median gain %+.4g", f->gain);
    }
    fprintf(out, ")\n");
}

cJSON *curve_cli_fixes_json(const char *task_id, char *const *similar, size_t n_similar,
                            size_t n_runs, kb_curve_verdict_kind kind, const kb_curve_fix *f,
                            size_t n)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) {
        return NULL;
    }
    cJSON_AddStringToObject(o, "task", task_id);
    cJSON *sim = cJSON_AddArrayToObject(o, "similar_tasks");
    for (size_t i = 0; sim != NULL && i < n_similar; i++) {
        cJSON *e = cJSON_CreateString(similar[i]);
        if (e == NULL || !cJSON_AddItemToArray(sim, e)) {
            cJSON_Delete(e);
            break;
        }
    }
    cJSON_AddNumberToObject(o, "runs", (double)n_runs);
    cJSON_AddStringToObject(o, "verdict", kb_curve_verdict_name(kind));
    cJSON *fs = cJSON_AddArrayToObject(o, "fixes");
    for (size_t i = 0; fs != NULL && i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        if (e == NULL || !cJSON_AddItemToArray(fs, e)) {
            cJSON_Delete(e);
            break;
        }
        cJSON_AddStringToObject(e, "param", f[i].param);
        if (f[i].to_value[0] != '\0') {
            cJSON_AddNullToObject(e, "ratio");
            cJSON_AddStringToObject(e, "to_value", f[i].to_value);
        } else {
            add_num(e, "ratio", f[i].ratio);
            cJSON_AddNullToObject(e, "to_value");
        }
        cJSON_AddNumberToObject(e, "support", (double)f[i].n_support);
        add_num(e, "gain", f[i].gain);
        cJSON_AddStringToObject(e, "example_bad", f[i].example_bad);
        cJSON_AddStringToObject(e, "example_good", f[i].example_good);
    }
    return o;
}
