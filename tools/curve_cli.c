#include "tools/curve_cli.h"

#include <math.h>
#include <string.h>

#include "engine/core/alloc.h"
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
