/*
 * kb tell: record the result of a trial proposed by `kb ask` (or left running by a crashed
 * `kb search`): its objective value, status, other final metrics and learning curve.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/core/alloc.h"
#include "engine/core/buf.h"
#include "engine/curveio.h"
#include "tools/commands.h"
#include "kb/json.h"
#include "tools/exit.h"
#include "tools/study.h"

enum { OPT_KB = CLI_KEY(0), OPT_CURVE, OPT_STATUS, OPT_METRIC, OPT_COST, OPT_REASON, OPT_JSON };

#define MAX_METRICS 64

static const cli_opt opts[] = {
    {"curve", OPT_CURVE, 1, "FILE", "the trial's learning curve (JSON lines, CSV, Caffe log, "
                                    "MLflow metric file; as kb judge reads)"},
    {"status", OPT_STATUS, 1, "S", "ok (default), failed, diverged or pruned"},
    {"metric", OPT_METRIC, 1, "NAME=V", "another final metric (repeatable)"},
    {"cost", OPT_COST, 1, "SECONDS", "what the trial cost (wall clock)"},
    {"reason", OPT_REASON, 1, "TEXT", "why it failed or was pruned (stored with it)"},
    {"kb", OPT_KB, 1, "PATH", "knowledge base directory (default $KB_PATH or ./kb.lmdb)"},
    {"json", OPT_JSON, 0, NULL, "print the outcome as JSON (schema kb.tell/1)"},
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_tell_spec = {
    "tell",
    "kb tell STUDY TRIAL [VALUE] [--status S] [--curve FILE] [--metric NAME=V]... [--cost S]\n"
    "        [--reason TEXT] [--kb PATH] [--json]",
    "Record the result of trial TRIAL (its number, or its run id) of STUDY: VALUE is the "
    "study's objective (nan or inf marks a diverged trial). Without VALUE the trial must have "
    "a non-ok --status, or the objective must come from --curve (its last value). The trial "
    "and its curve are stored in the knowledge base, so later studies on similar tasks learn "
    "from it.",
    opts,
    "  kb tell s-5e1f00c2aa31 3 0.912\n"
    "  kb tell s-5e1f00c2aa31 4 --curve trial-4/stdout.log --cost 81.5\n"
    "  kb tell s-5e1f00c2aa31 5 --status failed --reason 'out of GPU memory'",
    "  0    recorded\n"
    "  1    the store failed, or the study or trial does not exist, or it was already told\n"
    "  2    usage error\n"
    "  3    the curve file is malformed"};

static int parse_value(double *out, const char *s)
{
    if (strcmp(s, "nan") == 0 || strcmp(s, "NaN") == 0) {
        *out = NAN;
        return 0;
    }
    char *end;
    *out = strtod(s, &end);
    return end != s && *end == '\0' ? 0 : -1;
}

/* the curve's series as kb_series (owned by the caller); a reported NaN is a NaN point */
static int curve_series(kb_series **out, size_t *n_out, const kb_curve *c)
{
    *out = NULL;
    *n_out = 0;
    kb_series *s = kb_calloc(c->n_series ? c->n_series : 1, sizeof *s);
    if (s == NULL) {
        return KB_ENOMEM;
    }
    size_t n = 0;
    for (size_t k = 0; k < c->n_series; k++) {
        const kb_curve_series *cs = &c->series[k];
        size_t m = kb_curve_points(c, cs, NULL, NULL, 0);
        size_t total = m + (cs->n_nan > 0);
        if (total == 0) {
            continue;
        }
        kb_series *x = &s[n++];
        double *px = kb_malloc_array(total, sizeof *px), *py = kb_malloc_array(total, sizeof *py);
        x->metric = kb_strdup(cs->name);
        x->steps = kb_malloc_array(total, sizeof *x->steps);
        x->values = kb_malloc_array(total, sizeof *x->values);
        if (px == NULL || py == NULL || x->metric == NULL || x->steps == NULL ||
            x->values == NULL) {
            kb_free(px);
            kb_free(py);
            for (size_t i = 0; i < n; i++) {
                kb_series_release(&s[i]);
            }
            kb_free(s);
            return KB_ENOMEM;
        }
        kb_curve_points(c, cs, px, py, m);
        int nan_done = cs->n_nan == 0;
        for (size_t i = 0; i < m; i++) {
            if (!nan_done && cs->first_nan_step < px[i]) {
                x->steps[x->n] = (int64_t)llround(cs->first_nan_step);
                x->values[x->n++] = NAN;
                nan_done = 1;
            }
            x->steps[x->n] = (int64_t)llround(px[i]);
            x->values[x->n++] = py[i];
        }
        if (!nan_done) {
            x->steps[x->n] = (int64_t)llround(cs->first_nan_step);
            x->values[x->n++] = NAN;
        }
        kb_free(px);
        kb_free(py);
    }
    *out = s;
    *n_out = n;
    return KB_OK;
}

int cmd_tell(int argc, char **argv)
{
    const char *opt_kb = NULL, *curve_path = NULL, *reason = NULL;
    kb_run_status status = KB_RUN_STATUS_OK;
    int json = 0, status_given = 0;
    double cost = NAN;
    const char *metric_args[MAX_METRICS];
    size_t n_metric_args = 0;
    cli_parser p;
    cli_begin(&p, &cmd_tell_spec, argc, argv);
    for (int c; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case OPT_KB: opt_kb = p.arg; break;
        case OPT_CURVE: curve_path = p.arg; break;
        case OPT_STATUS:
            if (kb_run_status_parse(&status, p.arg) != KB_OK ||
                status == KB_RUN_STATUS_RUNNING) {
                return cli_usage("tell", "--status: expected ok, failed, diverged or pruned, "
                                 "got '%s'", p.arg);
            }
            status_given = 1;
            break;
        case OPT_METRIC:
            if (n_metric_args == MAX_METRICS) {
                return cli_usage("tell", "at most %d --metric options", MAX_METRICS);
            }
            if (strchr(p.arg, '=') == NULL || p.arg[0] == '=') {
                return cli_usage("tell", "--metric: expected NAME=VALUE, got '%s'", p.arg);
            }
            metric_args[n_metric_args++] = p.arg;
            break;
        case OPT_COST:
            if (cli_parse_double("tell", "cost", p.arg, &cost) != 0) {
                return KB_EXIT_USAGE;
            }
            break;
        case OPT_REASON: reason = p.arg; break;
        case OPT_JSON: json = 1; break;
        case CLI_HELP_KEY: return KB_EXIT_OK;
        default: return KB_EXIT_USAGE;
        }
    }
    int first = cli_rest(&p);
    int n_args = argc - first;
    if (n_args < 2 || n_args > 3) {
        return cli_usage("tell", "expected STUDY TRIAL [VALUE]");
    }
    const char *study_id = argv[first], *trial_ref = argv[first + 1];
    double value = NAN;
    int have_value = n_args == 3;
    if (have_value && parse_value(&value, argv[first + 2]) != 0) {
        return cli_usage("tell", "VALUE: expected a number (or nan), got '%s'", argv[first + 2]);
    }
    if (!have_value && curve_path == NULL && (!status_given || status == KB_RUN_STATUS_OK)) {
        return cli_usage("tell", "give the trial's VALUE, a --curve, or a non-ok --status");
    }

    /* the curve first: a malformed file changes nothing in the store */
    kb_curve curve;
    memset(&curve, 0, sizeof curve);
    int have_curve = 0;
    if (curve_path != NULL) {
        kb_curveio_opts co = KB_CURVEIO_OPTS_INIT;
        kb_error cerr = KB_ERROR_INIT;
        kb_curveio_format used;
        if (kb_curveio_read(&curve, &used, curve_path, &co, &cerr) != KB_OK) {
            return cli_fail("tell", &cerr);
        }
        have_curve = 1;
    }
    cli_log_opts lo = {"tell", 0, 0};
    kb_store *store = NULL;
    int code = cli_open_store(&store, "tell", opt_kb, 0, &lo);
    if (code != KB_EXIT_OK) {
        kb_curve_release(&curve);
        return code;
    }
    kb_error err = KB_ERROR_INIT;
    study *s = NULL;
    kb_metric metrics[MAX_METRICS + 1];
    size_t n_metrics = 0;
    kb_series *series = NULL;
    size_t n_series = 0;
    char extra[KB_ERROR_MSG_SIZE + 64] = "";
    if (study_open(&s, store, study_id, &err) != KB_OK) {
        code = cli_fail("tell", &err);
        goto done;
    }
    const study_trial *t = study_find_trial(s, trial_ref);
    if (t == NULL) {
        code = cli_error("tell", KB_EXIT_FAILURE, "study '%s' has no trial '%s'", study_id,
                         trial_ref);
        goto done;
    }
    const char *objective = study_record(s)->objective;
    for (size_t i = 0; i < n_metric_args; i++) {
        const char *eq = strchr(metric_args[i], '=');
        double v;
        if (parse_value(&v, eq + 1) != 0) {
            code = cli_usage("tell", "--metric %s: the value is not a number", metric_args[i]);
            goto done;
        }
        metrics[n_metrics].name = kb_strndup(metric_args[i], (size_t)(eq - metric_args[i]));
        metrics[n_metrics++].value = v;
    }
    if (have_curve) {
        if (curve_series(&series, &n_series, &curve) != KB_OK) {
            code = cli_error("tell", KB_EXIT_FAILURE, "out of memory");
            goto done;
        }
        /* the objective's last value on the curve stands in for a missing VALUE */
        for (size_t k = 0; !have_value && k < n_series; k++) {
            if (strcmp(series[k].metric, objective) == 0 && series[k].n > 0) {
                value = series[k].values[series[k].n - 1];
                have_value = 1;
            }
        }
        if (!have_value && status == KB_RUN_STATUS_OK) {
            code = cli_error("tell", KB_EXIT_DATA, "%s: no series '%s' (the study's "
                             "objective); give VALUE", curve_path, objective);
            goto done;
        }
    }
    if (have_value) {
        for (size_t i = 0; i < n_metrics; i++) {
            if (strcmp(metrics[i].name, objective) == 0) {
                code = cli_usage("tell", "the objective '%s' is VALUE; do not repeat it with "
                                 "--metric", objective);
                goto done;
            }
        }
        metrics[n_metrics].name = kb_strdup(objective);
        metrics[n_metrics++].value = value;
    }
    for (size_t i = 0; i < n_metrics; i++) {
        if (metrics[i].name == NULL) {
            code = cli_error("tell", KB_EXIT_FAILURE, "out of memory");
            goto done;
        }
    }
    if (reason != NULL) {
        kb_buf b = KB_BUF_INIT;
        if (kb_buf_append(&b, "{\"reason\":", 10) == KB_OK &&
            kb_json_put_string(&b, reason) == KB_OK && kb_buf_append(&b, "}", 2) == KB_OK) {
            snprintf(extra, sizeof extra, "%s", (const char *)b.data);
        }
        kb_buf_release(&b);
    }
    size_t index = (size_t)(t - study_trial_at(s, 0));
    study_result res = {status, metrics, n_metrics, series, n_series, cost,
                        extra[0] ? extra : NULL};
    if (study_tell(s, store, index, &res, &err) != KB_OK) {
        code = cli_fail("tell", &err);
        goto done;
    }
    t = study_trial_at(s, index);
    size_t best = study_best(s);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "schema", "kb.tell/1");
        cJSON_AddStringToObject(o, "study", study_id);
        cJSON_AddNumberToObject(o, "trial", (double)t->number);
        cJSON_AddStringToObject(o, "status", kb_run_status_name(t->status));
        if (isfinite(t->value)) {
            cJSON_AddNumberToObject(o, "value", t->value);
        } else {
            cJSON_AddNullToObject(o, "value");
        }
        if (best != SIZE_MAX) {
            cJSON_AddNumberToObject(o, "best_trial", (double)study_trial_at(s, best)->number);
            cJSON_AddNumberToObject(o, "best_value", study_trial_at(s, best)->value);
        }
        code = cli_emit_json(o);
    } else {
        printf("trial %zu of %s: %s", t->number, study_id, kb_run_status_name(t->status));
        if (isfinite(t->value)) {
            printf(", %s = %.6g", objective, t->value);
        }
        if (best != SIZE_MAX) {
            printf("; best so far: trial %zu, %.6g", study_trial_at(s, best)->number,
                   study_trial_at(s, best)->value);
        }
        putchar('\n');
    }
done:
    for (size_t i = 0; i < n_metrics; i++) {
        kb_free(metrics[i].name);
    }
    for (size_t i = 0; i < n_series; i++) {
        kb_series_release(&series[i]);
    }
    kb_free(series);
    study_close(s);
    kb_store_close(store);
    kb_curve_release(&curve);
    return code;
}
