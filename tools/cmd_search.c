/*
 * kb search: a warm-started hyperparameter search. It creates a study on the task (warmed
 * from the nearest stored tasks, tools/study.h), then loops: ask the study for trials while
 * fewer than --jobs run, run them as child processes (tools/trial.h), watch their curves
 * (--prune judge stops hopeless ones, engine/curve.h), tell the study each result. Every
 * trial is a run in the knowledge base the moment it is proposed, so Ctrl-C or a crash loses
 * nothing: `kb search --resume STUDY` re-runs the trials that were running and goes on.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "engine/core/alloc.h"
#include "engine/core/buf.h"
#include "engine/core/rng.h"
#include "engine/curve.h"
#include "engine/archsearch.h"
#include "engine/asha.h"
#include "engine/bohb.h"
#include "engine/hyperband.h"
#include "kb/json.h"
#include "tools/commands.h"
#include "tools/exit.h"
#include "tools/features_cli.h"
#include "tools/paths.h"
#include "tools/study.h"
#include "tools/study_cli.h"
#include "tools/trial.h"

enum {
    OPT_KB = CLI_KEY(0), OPT_TASK, OPT_SPACE, OPT_TRIAL, OPT_TRAIN, OPT_TEMPLATE,
    OPT_METRIC_REGEX, OPT_METRIC_NAME, OPT_STEP_REGEX, OPT_PARSE_STDERR, OPT_BUDGET, OPT_JOBS,
    OPT_TIMEOUT, OPT_RESUME, OPT_PRUNE, OPT_WORK_DIR, OPT_MAX_ROWS, OPT_EPOCHS, OPT_JSON,
    OPT_QUIET, OPT_NAME, OPT_MAX_RESOURCE, OPT_ETA, OPT_CONST
};

#define MAX_CONSTS 32

static const cli_opt opts[] = {
    {"task", OPT_TASK, 1, "ID", "search for this stored task (instead of a DATASET)"},
    {"space", OPT_SPACE, 1, "S", "search space (default svm for --train svm, mlp for net)"},
    {"trial", OPT_TRIAL, 1, "CMD", "the trial command, with {name} placeholders (see "
                                   "docs/FORMAT.md, Trial protocol)"},
    {"train", OPT_TRAIN, 1, "W", "instead of --trial: kb's built-in workload svm or net on "
                                 "DATASET"},
    {"template", OPT_TEMPLATE, 1, "FILE", "a config file rendered per trial ({name} and "
                                          "BASE_LR-style tokens) as {config_file}"},
    {"metric-regex", OPT_METRIC_REGEX, 1, "RE", "read metrics from log lines with this POSIX "
                                                "regex: (name)(value), or (value) with "
                                                "--metric-name"},
    {"metric-name", OPT_METRIC_NAME, 1, "N", "the metric a one-group --metric-regex reads"},
    {"step-regex", OPT_STEP_REGEX, 1, "RE", "group 1 is the step of the following metric "
                                            "lines"},
    {"parse-stderr", OPT_PARSE_STDERR, 0, NULL, "read metrics from the trial's stderr too"},
    {"const", OPT_CONST, 1, "NAME=V", "a constant {NAME} for the command and template, e.g. a "
                                      "data directory (repeatable)"},
    {"budget", OPT_BUDGET, 1, "N", "trials in the study in all (default 20; with --resume, "
                                   "the stored budget)"},
    {"jobs", OPT_JOBS, 1, "P", "trials run at once (default 1)"},
    {"timeout-per-trial", OPT_TIMEOUT, 1, "SECONDS", "stop a trial after this long (failed)"},
    {"prune", OPT_PRUNE, 1, "P", "judge: stop a trial when its curve is red or cannot beat the "
                                 "best (pruned); none (default)"},
    {"resume", OPT_RESUME, 1, "STUDY", "continue a stored study where it stopped"},
    {"work-dir", OPT_WORK_DIR, 1, "DIR", "trial directories go here (default "
                                         "kb-trials/<study>)"},
    {"max-rows", OPT_MAX_ROWS, 1, "N", "--train: train on a seeded sample of N rows"},
    {"epochs", OPT_EPOCHS, 1, "N", "--train net: epochs per trial (default 10; the maximum "
                                   "resource of hyperband/bohb/asha)"},
    {"max-resource", OPT_MAX_RESOURCE, 1, "R", "hyperband/bohb/asha: the largest {budget} "
                                               "(default 27)"},
    {"eta", OPT_ETA, 1, "E", "hyperband/bohb/asha: the reduction factor (default 3)"},
    {"name", OPT_NAME, 1, "NAME", "the task's name when DATASET is new to the knowledge base"},
    STUDY_CLI_OPTS,
    {"kb", OPT_KB, 1, "PATH", "knowledge base directory (default $KB_PATH or ./kb.lmdb)"},
    {"json", OPT_JSON, 0, NULL, "stdout: one JSON line per trial, then the result "
                                "(schemas kb.search.trial/1, kb.search/1)"},
    {"quiet", OPT_QUIET, 0, NULL, "no live table on stderr"},
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_search_spec = {
    "search",
    "kb search DATASET|--task ID [--space S] (--trial CMD | --train svm|net) [options]\n"
    "       kb search --resume STUDY [--budget N] [--jobs P]",
    "Search the space for the configuration that optimises the objective on this task, "
    "warm-started from the most similar tasks in the knowledge base (--warm-start auto: their "
    "best portfolio point first, then a GP on the residuals of their models' mean, each model "
    "weighted by how well it ranks this task's results, as RGPE does). Trials run as child "
    "processes, P at a "
    "time; each prints its metrics (JSON lines as 'kb train --json' does, a Caffe log, CSV, or "
    "lines read with --metric-regex). Every trial, its curve and its status (ok, failed, "
    "diverged, pruned) are stored in the knowledge base as it happens. A live table goes to "
    "stderr; the best configuration to stdout. Ctrl-C stops cleanly; --resume continues. "
    "With hyperband, bohb and asha, {checkpoint} names one file per configuration, so a "
    "promoted configuration continues its run (--train net does this).",
    opts,
    "  kb search datasets/iris.csv.gz --train svm --budget 20\n"
    "  kb search --task t-0123abcd --space mlp --objective val_accuracy \\\n"
    "      --trial 'python3 train.py --lr {base_lr} --wd {weight_decay}' --jobs 2\n"
    "  kb search --task t-0123abcd --space xgb --objective test-rmse --direction minimize \\\n"
    "      --template xgb.conf.tmpl --trial 'xgboost {config_file}' --parse-stderr \\\n"
    "      --metric-regex '(test-rmse):([-+0-9.eE]+)'\n"
    "  kb search --resume s-5e1f00c2aa31",
    "  0    the search finished (failed trials are results, not errors)\n"
    "  1    the store or the trial runner failed\n"
    "  2    usage error\n"
    "  3    the dataset is malformed\n"
    "  130  interrupted (the study can be resumed)"};

/* How the trials of a study run: from the options, stored in the study's extra on creation
   and read back by --resume. */
typedef struct run_spec {
    char *command;        /* with placeholders */
    char *train;          /* "svm", "net" or NULL */
    char *dataset;        /* --train's dataset path */
    char *template_path;
    char *metric_regex, *metric_name, *step_regex;
    int parse_stderr;
    size_t budget, jobs;
    double timeout_s;
    int prune;
    size_t max_rows, epochs;
    double max_resource, eta;
    kb_param *consts;     /* --const NAME=VALUE, owned */
    size_t n_consts;
} run_spec;

static void run_spec_release(run_spec *r)
{
    kb_free(r->command);
    kb_free(r->train);
    kb_free(r->dataset);
    kb_free(r->template_path);
    kb_free(r->metric_regex);
    kb_free(r->metric_name);
    kb_free(r->step_regex);
    kb_params_free(r->consts, r->n_consts);
    memset(r, 0, sizeof *r);
}

static int set_str(char **dst, const char *s)
{
    kb_free(*dst);
    *dst = s != NULL ? kb_strdup(s) : NULL;
    return s != NULL && *dst == NULL ? -1 : 0;
}

/* Append a constant NAME=VALUE: a number when VALUE reads as one (an integer when it has no
   '.', 'e' or 'n'), else a string. */
static int add_const(run_spec *r, const char *name, size_t name_len, const char *value)
{
    if (r->n_consts == MAX_CONSTS) {
        return -1;
    }
    if (r->consts == NULL) {
        r->consts = kb_calloc(MAX_CONSTS, sizeof *r->consts);
        if (r->consts == NULL) {
            return -1;
        }
    }
    kb_param *c = &r->consts[r->n_consts];
    c->name = kb_strndup(name, name_len);
    char *end;
    double d = strtod(value, &end);
    if (*value != '\0' && *end == '\0' && isfinite(d)) {
        if (strpbrk(value, ".eEnN") == NULL && fabs(d) < 9e15) {
            c->value.type = KB_VALUE_TYPE_INT;
            c->value.i = (int64_t)d;
        } else {
            c->value.type = KB_VALUE_TYPE_FLOAT;
            c->value.f = d;
        }
    } else {
        c->value.type = KB_VALUE_TYPE_STR;
        c->value.s = kb_strdup(value);
    }
    if (c->name == NULL || (c->value.type == KB_VALUE_TYPE_STR && c->value.s == NULL)) {
        kb_params_free(c, 1);
        memset(c, 0, sizeof *c);
        return -1;
    }
    r->n_consts++;
    return 0;
}

/* the spec as a canonical JSON object text (owned) */
static char *run_spec_json(const run_spec *r)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) {
        return NULL;
    }
    cJSON_AddNumberToObject(o, "budget", (double)r->budget);
    if (r->n_consts > 0) {
        cli_add_config_json(o, "const", r->consts, r->n_consts);
    }
    if (r->dataset) cJSON_AddStringToObject(o, "dataset", r->dataset);
    if (r->epochs) cJSON_AddNumberToObject(o, "epochs", (double)r->epochs);
    cJSON_AddNumberToObject(o, "eta", r->eta);
    cJSON_AddNumberToObject(o, "jobs", (double)r->jobs);
    cJSON_AddNumberToObject(o, "max_resource", r->max_resource);
    if (r->max_rows) cJSON_AddNumberToObject(o, "max_rows", (double)r->max_rows);
    if (r->metric_name) cJSON_AddStringToObject(o, "metric_name", r->metric_name);
    if (r->metric_regex) cJSON_AddStringToObject(o, "metric_regex", r->metric_regex);
    if (r->parse_stderr) cJSON_AddBoolToObject(o, "parse_stderr", 1);
    cJSON_AddStringToObject(o, "prune", r->prune ? "judge" : "none");
    if (r->step_regex) cJSON_AddStringToObject(o, "step_regex", r->step_regex);
    if (r->template_path) cJSON_AddStringToObject(o, "template", r->template_path);
    if (r->timeout_s > 0) cJSON_AddNumberToObject(o, "timeout_s", r->timeout_s);
    if (r->train) cJSON_AddStringToObject(o, "train", r->train);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL) {
        return NULL;
    }
    kb_buf b = KB_BUF_INIT;
    kb_json_reader *rd = NULL;
    kb_error err = KB_ERROR_INIT;
    char *out = NULL;
    if (kb_json_reader_new(&rd, &err) == KB_OK &&
        kb_json_canonical_text(&b, rd, text, strlen(text), &err) == KB_OK &&
        kb_buf_append(&b, "", 1) == KB_OK) {
        out = kb_strdup((const char *)b.data);
    }
    kb_json_reader_free(rd);
    kb_buf_release(&b);
    free(text);
    return out;
}

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double json_num(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* read a stored spec back (--resume); options given on the command line win for budget/jobs */
static int run_spec_from_study(run_spec *r, const kb_study *st)
{
    cJSON *o = st->extra != NULL ? cJSON_Parse(st->extra) : NULL;
    if (o == NULL) {
        return -1;
    }
    int bad = set_str(&r->command, st->command) || set_str(&r->train, json_str(o, "train")) ||
              set_str(&r->dataset, json_str(o, "dataset")) ||
              set_str(&r->template_path, json_str(o, "template")) ||
              set_str(&r->metric_regex, json_str(o, "metric_regex")) ||
              set_str(&r->metric_name, json_str(o, "metric_name")) ||
              set_str(&r->step_regex, json_str(o, "step_regex"));
    r->parse_stderr = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "parse_stderr"));
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(o, "const");
    for (const cJSON *c = cJSON_IsObject(cs) ? cs->child : NULL; !bad && c != NULL; c = c->next) {
        char text[64];
        const char *v = c->valuestring;
        if (cJSON_IsNumber(c)) {
            snprintf(text, sizeof text, "%.17g", c->valuedouble);
            v = text;
        }
        bad = v == NULL || add_const(r, c->string, strlen(c->string), v) != 0;
    }
    if (r->budget == 0) {
        r->budget = (size_t)json_num(o, "budget", 20);
    }
    if (r->jobs == 0) {
        r->jobs = (size_t)json_num(o, "jobs", 1);
    }
    if (r->timeout_s <= 0) {
        r->timeout_s = json_num(o, "timeout_s", 0);
    }
    const char *pr = json_str(o, "prune");
    r->prune = r->prune || (pr != NULL && strcmp(pr, "judge") == 0);
    r->max_rows = (size_t)json_num(o, "max_rows", 0);
    r->epochs = (size_t)json_num(o, "epochs", 0);
    r->max_resource = json_num(o, "max_resource", 27);
    r->eta = json_num(o, "eta", 3);
    cJSON_Delete(o);
    return bad ? -1 : 0;
}

/* single-quote a string for /bin/sh */
static int shell_quote(kb_buf *b, const char *s)
{
    int rc = kb_buf_append(b, "'", 1);
    for (const char *p = s; rc == KB_OK && *p != '\0'; p++) {
        rc = *p == '\'' ? kb_buf_append(b, "'\\''", 4) : kb_buf_append(b, p, 1);
    }
    return rc == KB_OK ? kb_buf_append(b, "'", 1) : rc;
}

/* The command of a built-in workload: `kb train` of this very binary. */
/* hyperband, bohb and asha run a configuration again at a larger budget (a promotion) */
static int method_promotes(const char *method)
{
    return method != NULL && (strcmp(method, "hyperband") == 0 || strcmp(method, "bohb") == 0 ||
                              strcmp(method, "asha") == 0);
}

static char *builtin_command(const run_spec *r, kb_task_type type, int promotes)
{
    (void)type;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        return NULL;
    }
    exe[n] = '\0';
    kb_buf b = KB_BUF_INIT;
    char tail[256];
    int rc = shell_quote(&b, exe);
    if (rc == KB_OK) {
        rc = kb_buf_append(&b, strcmp(r->train, "svm") == 0 ? " train svm " : " train net ", 11);
    }
    if (rc == KB_OK) {
        rc = shell_quote(&b, r->dataset);
    }
    if (strcmp(r->train, "svm") == 0) {
        snprintf(tail, sizeof tail, " --config {config_json} --folds 3 --seed {seed} --json "
                                    "--quiet");
    } else {
        /* the mlp space's layers x units become the architecture ({arch}, see trainer_params);
           the budget is the number of epochs */
        snprintf(tail, sizeof tail, " --arch {arch} --config {config_json} --set "
                                    "epochs={budget} --seed {seed} --json --quiet%s",
                 /* a promoted configuration continues its last rung's run */
                 promotes ? " --checkpoint {checkpoint}" : "");
    }
    if (rc == KB_OK) {
        rc = kb_buf_append(&b, tail, strlen(tail));
    }
    if (rc == KB_OK && r->max_rows > 0) {
        snprintf(tail, sizeof tail, " --max-rows %zu", r->max_rows);
        rc = kb_buf_append(&b, tail, strlen(tail));
    }
    char *out = NULL;
    if (rc == KB_OK && kb_buf_append(&b, "", 1) == KB_OK) {
        out = kb_strdup((const char *)b.data);
    }
    kb_buf_release(&b);
    return out;
}

/* ---- the search loop ---- */

typedef struct search {
    study *st;
    kb_store *store;
    kb_trial_pool *pool;
    run_spec *spec;
    int json, quiet;
    size_t n_started;      /* trials started by this process */
    size_t n_pruned;
    double compute_s;      /* wall-clock seconds of all finished trials */
    kb_curve_opts judge;
    char ckpt_dir[PATH_MAX]; /* schedulers: {checkpoint} files live here; "" otherwise */
} search;

/* For --train net: the mlp space's `layers` and `units` are the architecture, not trainer
   settings: move them into {arch} (FC(units) repeated layers times) as a rendering-only
   parameter, and keep the rest as the trainer's configuration. */
static int trainer_params(kb_param **cfg_out, size_t *n_cfg, kb_param *extra_out,
                          char *arch_buf, size_t arch_cap, const study_trial *t,
                          const run_spec *spec)
{
    *cfg_out = t->config;
    *n_cfg = t->n_config;
    if (spec->train == NULL || strcmp(spec->train, "net") != 0) {
        return 0;
    }
    const kb_param *layers = kb_params_find(t->config, t->n_config, "layers");
    const kb_param *units = kb_params_find(t->config, t->n_config, "units");
    const kb_param *arch = kb_params_find(t->config, t->n_config, STUDY_ARCH_PARAM);
    if (arch != NULL && arch->value.type == KB_VALUE_TYPE_STR) {
        snprintf(arch_buf, arch_cap, "%s", arch->value.s); /* an architecture search's */
    } else if (layers == NULL || units == NULL) {
        snprintf(arch_buf, arch_cap, "FC(64)");
    } else {
        long long nl = (long long)kb_value_as_double(&layers->value);
        long long nu = (long long)kb_value_as_double(&units->value);
        size_t len = 0;
        arch_buf[0] = '\0';
        for (long long i = 0; i < nl && len + 24 < arch_cap; i++) {
            len += (size_t)snprintf(arch_buf + len, arch_cap - len, "%sFC(%lld)", i ? "+" : "",
                                    nu);
        }
    }
    kb_param *cfg = kb_calloc(t->n_config ? t->n_config : 1, sizeof *cfg);
    if (cfg == NULL) {
        return -1;
    }
    size_t n = 0;
    for (size_t j = 0; j < t->n_config; j++) {
        if (strcmp(t->config[j].name, "layers") != 0 && strcmp(t->config[j].name, "units") != 0 &&
            strcmp(t->config[j].name, STUDY_ARCH_PARAM) != 0) {
            cfg[n++] = t->config[j]; /* borrowed: freed with kb_free(cfg) only */
        }
    }
    *cfg_out = cfg;
    *n_cfg = n;
    extra_out->name = "arch";
    extra_out->value.type = KB_VALUE_TYPE_STR;
    extra_out->value.s = arch_buf;
    return 1;
}

/*
 * Start study trial `index` at `resource` ({budget}). `config_id` (a scheduler's configuration
 * number, SIZE_MAX for none) names its {checkpoint} file, the same for every rung the
 * configuration reaches, so a promotion continues the run of the rung below.
 */
static int start_trial(search *s, size_t index, double resource, size_t config_id,
                       kb_error *err)
{
    const study_trial *t = study_trial_at(s->st, index);
    kb_param *cfg;
    size_t n_cfg;
    kb_param fid[3];
    memset(fid, 0, sizeof fid);
    size_t n_fid = 0;
    char arch[512];
    /* {budget} is the first fidelity parameter */
    fid[0].name = "budget";
    fid[0].value.type = KB_VALUE_TYPE_INT;
    fid[0].value.i = (int64_t)llround(resource);
    n_fid = 1;
    int owned = trainer_params(&cfg, &n_cfg, &fid[1], arch, sizeof arch, t, s->spec);
    if (owned < 0) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    n_fid += owned;
    char ckpt[PATH_MAX + 32];
    if (s->ckpt_dir[0] != '\0' && config_id != SIZE_MAX) {
        snprintf(ckpt, sizeof ckpt, "%s/c%zu.kbs", s->ckpt_dir, config_id);
        fid[n_fid].name = "checkpoint";
        fid[n_fid].value.type = KB_VALUE_TYPE_STR;
        fid[n_fid].value.s = ckpt;
        n_fid++;
    }
    int rc = kb_trial_pool_start(s->pool, t->number, cfg, n_cfg, fid, n_fid,
                                 study_record(s->st)->seed, err);
    if (owned) {
        kb_free(cfg);
    }
    if (rc == KB_OK) {
        s->n_started++;
    }
    return rc;
}

static double incumbent(const search *s)
{
    size_t b = study_best(s->st);
    return b == SIZE_MAX ? NAN : study_trial_at(s->st, b)->value;
}

static void print_header(const search *s)
{
    if (!s->quiet) {
        fprintf(stderr, "%6s  %-9s %12s %12s %8s  %s\n", "trial", "status",
                study_record(s->st)->objective, "best", "cost_s", "configuration");
    }
}

static void print_row(const search *s, const study_trial *t, double cost, const char *reason)
{
    if (s->quiet) {
        return;
    }
    double best = incumbent(s);
    fprintf(stderr, "%6zu  %-9s %12.6g %12.6g %8.1f  ", t->number, kb_run_status_name(t->status),
            t->value, best, cost);
    study_cli_print_config(stderr, t->config, t->n_config);
    if (reason != NULL && reason[0] != '\0') {
        fprintf(stderr, "  (%s)", reason);
    }
    fputc('\n', stderr);
}

static int emit_trial_json(const search *s, const study_trial *t, const kb_trial_result *res)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "schema", "kb.search.trial/1");
    cJSON_AddStringToObject(o, "study", study_record(s->st)->id);
    cJSON_AddNumberToObject(o, "trial", (double)t->number);
    cJSON_AddStringToObject(o, "run", t->run_id);
    cJSON_AddStringToObject(o, "status", kb_run_status_name(t->status));
    if (isfinite(t->value)) {
        cJSON_AddNumberToObject(o, "value", t->value);
    } else {
        cJSON_AddNullToObject(o, "value");
    }
    cli_add_config_json(o, "config", t->config, t->n_config);
    cJSON_AddNumberToObject(o, "cost_s", isfinite(res->cost_s) ? res->cost_s : 0);
    if (res->reason[0] != '\0') {
        cJSON_AddStringToObject(o, "reason", res->reason);
    }
    return cli_emit_json(o);
}

/* The run's extra: the trial runner's reason, and the monitor's verdict and advice on the
   trial's curve (engine/curve.h kb_curve_verdict_json), so every stored run says how its
   training went. Canonical JSON with sorted keys: "judge" < "reason". */
static char *result_extra(const kb_trial_result *res, const study_trial *t, const search *s)
{
    kb_curve c = KB_CURVE_INIT;
    kb_error err = KB_ERROR_INIT;
    int ok = 1;
    for (size_t k = 0; ok && k < res->n_curve; k++) {
        const kb_series *x = &res->curve[k];
        for (size_t i = 0; ok && i < x->n; i++) {
            ok = kb_curve_add(&c, (double)x->steps[i], x->metric, x->values[i], &err) == KB_OK;
        }
    }
    char *verdict = NULL;
    if (ok && res->n_curve > 0 &&
        kb_curve_verdict_json(&verdict, &c, &s->judge, t->config, t->n_config, &err) != KB_OK) {
        verdict = NULL; /* no objective series on the curve: nothing to judge */
    }
    kb_curve_release(&c);
    if (verdict == NULL && res->reason[0] == '\0') {
        return NULL;
    }
    kb_buf b = KB_BUF_INIT;
    int rc = kb_buf_append(&b, "{", 1);
    if (rc == KB_OK && verdict != NULL) {
        rc = kb_buf_append(&b, "\"judge\":", 8);
        if (rc == KB_OK) {
            rc = kb_buf_append(&b, verdict, strlen(verdict));
        }
    }
    if (rc == KB_OK && res->reason[0] != '\0') {
        rc = kb_buf_append(&b, verdict != NULL ? ",\"reason\":" : "\"reason\":",
                           verdict != NULL ? 10 : 9);
        if (rc == KB_OK) {
            rc = kb_json_put_string(&b, res->reason);
        }
    }
    char *out = NULL;
    if (rc == KB_OK && kb_buf_append(&b, "}", 2) == KB_OK) {
        out = kb_strdup((const char *)b.data);
    }
    kb_buf_release(&b);
    kb_free(verdict);
    return out;
}

static int on_done(search *s, kb_trial_event *ev, kb_error *err)
{
    kb_trial_result *res = &ev->result;
    size_t index = study_index_of(s->st, ev->trial);
    if (index == SIZE_MAX) {
        return kb_error_set(err, KB_ENOTFOUND, "trial %zu finished but is not in the study",
                            ev->trial);
    }
    char *extra = result_extra(res, study_trial_at(s->st, index), s);
    study_result sr = {res->status, res->metrics, res->n_metrics, res->curve, res->n_curve,
                       res->cost_s, extra};
    /* a pruned trial's last objective value is its result in the store (status pruned keeps it
       out of the models) */
    int rc = study_tell(s->st, s->store, index, &sr, err);
    kb_free(extra);
    if (rc != KB_OK) {
        return rc;
    }
    if (isfinite(res->cost_s)) {
        s->compute_s += res->cost_s;
    }
    s->n_pruned += res->status == KB_RUN_STATUS_PRUNED;
    const study_trial *t = study_trial_at(s->st, index);
    print_row(s, t, res->cost_s, res->reason);
    return s->json ? (emit_trial_json(s, t, res) == KB_EXIT_OK ? KB_OK : KB_ENOMEM) : KB_OK;
}

static int on_progress(search *s, const kb_trial_event *ev, kb_error *err)
{
    if (!s->spec->prune || ev->curve == NULL) {
        return KB_OK;
    }
    kb_curve_prune pr;
    /* where the trial will end, in its curve's steps: kb train net counts iterations and
       reports the epoch beside them, so the last step per epoch scales to --epochs */
    double target = NAN;
    const kb_curve_series *ep = kb_curve_get(ev->curve, "epoch");
    if (ep != NULL && s->spec->epochs > 0) {
        double x[1], y[1];
        /* the first point gives the iterations per epoch */
        if (kb_curve_points(ev->curve, ep, x, y, 1) > 0 && y[0] > 0) {
            target = x[0] / y[0] * (double)s->spec->epochs;
        }
    }
    kb_error e2 = KB_ERROR_INIT;
    if (kb_curve_prune_check(&pr, ev->curve, &s->judge, target, incumbent(s), 0.05, &e2) !=
        KB_OK) {
        return KB_OK; /* the objective is not on the curve yet */
    }
    if (pr.prune) {
        int rc = kb_trial_pool_stop(s->pool, ev->trial, KB_RUN_STATUS_PRUNED, pr.reason, err);
        return rc == KB_ENOTFOUND ? KB_OK : rc;
    }
    return KB_OK;
}

/* Wait for the next event of the pool and handle it; *done_index is the study index of a
   trial that just finished, else SIZE_MAX. */
static int next_event(search *s, size_t *done_index, kb_error *err)
{
    *done_index = SIZE_MAX;
    kb_trial_event ev = KB_TRIAL_EVENT_INIT;
    int rc = kb_trial_pool_next(&ev, s->pool, 500, err);
    if (rc == KB_OK && ev.kind == KB_TRIAL_EVENT_PROGRESS) {
        rc = on_progress(s, &ev, err);
    } else if (rc == KB_OK && ev.kind == KB_TRIAL_EVENT_DONE) {
        *done_index = study_index_of(s->st, ev.trial);
        rc = on_done(s, &ev, err);
    }
    kb_trial_event_release(&ev);
    return rc;
}

/* Run model-based trials (gp, tpe, random) until the study holds `budget` trials. */
static int run_sequential(search *s, kb_error *err)
{
    int rc = KB_OK;
    /* first the trials a crashed or interrupted run left running */
    size_t n = study_n_trials(s->st);
    size_t *redo = kb_malloc_array(n ? n : 1, sizeof *redo);
    size_t n_redo = 0;
    if (redo == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (study_trial_at(s->st, i)->status == KB_RUN_STATUS_RUNNING) {
            redo[n_redo++] = i;
        }
    }
    size_t next_redo = 0;
    double resource = s->spec->epochs ? (double)s->spec->epochs : 1.0;
    while (rc == KB_OK && !cli_interrupted) {
        while (rc == KB_OK && kb_trial_pool_n_free(s->pool) > 0 && !cli_interrupted) {
            if (next_redo < n_redo) {
                rc = start_trial(s, redo[next_redo++], resource, SIZE_MAX, err);
                continue;
            }
            if (study_n_trials(s->st) >= s->spec->budget) {
                break;
            }
            size_t index;
            kb_bo_info info;
            kb_param fid = {"epochs", {KB_VALUE_TYPE_INT, 0, (int64_t)s->spec->epochs, NULL, 0}};
            rc = study_ask(&index, &info, s->st, s->store, s->spec->epochs ? &fid : NULL,
                           s->spec->epochs ? 1 : 0, err);
            if (rc == KB_OK) {
                rc = start_trial(s, index, resource, SIZE_MAX, err);
            }
        }
        if (rc != KB_OK || kb_trial_pool_n_running(s->pool) == 0) {
            break;
        }
        size_t done_index;
        rc = next_event(s, &done_index, err);
    }
    kb_free(redo);
    return rc;
}

/* ---- multi-fidelity schedulers: hyperband, bohb (engine/hyperband.h), asha (engine/asha.h) ---- */

/*
 * The schedulers' warm start: the first configurations they sample are the neighbours'
 * initial design (study_initial_design), then the scheduler's own sampler takes over (BOHB's
 * model, or uniform as engine/hyperband.c samples). Low-budget evaluations are cheap, so the
 * design is larger than the one point a GP search starts from.
 */
#define SCHED_WARM_DESIGN 5

typedef struct warm_sampler {
    double *design;        /* n x p, row-major, owned */
    size_t n, next;
    kb_hyperband_sample_fn inner; /* NULL: uniform */
    void *inner_payload;
} warm_sampler;

static int warm_sample(double *u_out, size_t dim, const kb_hyperband_budget_obs *budgets,
                       size_t n_budgets, kb_rng *rng, void *payload)
{
    warm_sampler *w = payload;
    if (w->next < w->n) {
        memcpy(u_out, w->design + w->next * dim, dim * sizeof *u_out);
        w->next++;
        return 0;
    }
    if (w->inner != NULL) {
        return w->inner(u_out, dim, budgets, n_budgets, rng, w->inner_payload);
    }
    for (size_t k = 0; k < dim; k++) {
        u_out[k] = kb_rng_uniform(rng);
    }
    return 0;
}

typedef struct sched {
    kb_hyperband *hb;
    kb_asha *asha;
    kb_bohb_sampler bohb;
    warm_sampler warm;
    size_t *of_trial;      /* scheduler trial of each study trial (by study index), SIZE_MAX */
    size_t cap;
} sched;

static int sched_get_job(kb_hyperband_job *job, sched *sc, kb_error *err)
{
    return sc->hb != NULL ? kb_hyperband_get_job(job, sc->hb, err)
                          : kb_asha_get_job(job, sc->asha, err);
}

static int sched_report(sched *sc, size_t trial, double y, kb_error *err)
{
    return sc->hb != NULL ? kb_hyperband_report(sc->hb, trial, y, err)
                          : kb_asha_report(sc->asha, trial, y, err);
}

static const double *sched_config(const sched *sc, size_t trial)
{
    return sc->hb != NULL ? kb_hyperband_trial_config(sc->hb, trial)
                          : kb_asha_trial_config(sc->asha, trial);
}

static int sched_map(sched *sc, size_t study_index, size_t trial)
{
    if (study_index >= sc->cap) {
        size_t cap = sc->cap ? 2 * sc->cap : 64;
        while (cap <= study_index) {
            cap *= 2;
        }
        size_t *n = kb_realloc_array(sc->of_trial, cap, sizeof *n);
        if (n == NULL) {
            return KB_ENOMEM;
        }
        for (size_t i = sc->cap; i < cap; i++) {
            n[i] = SIZE_MAX;
        }
        sc->of_trial = n;
        sc->cap = cap;
    }
    sc->of_trial[study_index] = trial;
    return KB_OK;
}

/* the study trial's value as the scheduler wants it: raw units, non-finite = failed */
static double sched_value(const study_trial *t)
{
    return t->status == KB_RUN_STATUS_OK ? t->value : NAN;
}

/* a job's configuration as a study trial: stored (running) with its resource as fidelity */
static int sched_add(size_t *index_out, search *s, sched *sc, const kb_hyperband_job *job,
                     kb_error *err)
{
    size_t p = kb_encode_n_params(study_encode(s->st));
    double *u = kb_malloc_array(p + 1, sizeof *u);
    if (u == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    memcpy(u, sched_config(sc, job->trial), p * sizeof *u);
    kb_encode_snap(study_encode(s->st), u);
    kb_param *config = NULL;
    size_t n_config = 0;
    int rc = kb_encode_decode(&config, &n_config, study_encode(s->st), u, err);
    kb_free(u);
    if (rc != KB_OK) {
        return rc;
    }
    kb_param fid = {"budget", {KB_VALUE_TYPE_FLOAT, job->resource, 0, NULL, 0}};
    char extra[160];
    snprintf(extra, sizeof extra,
             "{\"bracket\":%zu,\"config\":%zu,\"iteration\":%zu,\"rung\":%zu}", job->bracket,
             job->trial, job->iteration, job->rung);
    rc = study_add_trial(index_out, s->st, s->store, config, n_config, &fid, 1, extra, err);
    kb_params_free(config, n_config);
    if (rc == KB_OK && sched_map(sc, *index_out, job->trial) != KB_OK) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    return rc;
}

static int run_scheduled(search *s, kb_error *err)
{
    const kb_study *rec = study_record(s->st);
    const run_spec *sp = s->spec;
    int maximize = rec->direction == KB_DIRECTION_MAXIMIZE;
    sched sc;
    memset(&sc, 0, sizeof sc);
    size_t p = kb_encode_n_params(study_encode(s->st));
    int rc = KB_OK;
    int bohb = strcmp(rec->method, "bohb") == 0;
    kb_bohb_sampler_init(&sc.bohb, study_encode(s->st), maximize);
    kb_hyperband_sample_fn fn = bohb ? kb_bohb_sample : NULL;
    void *fn_payload = bohb ? &sc.bohb : NULL;
    sc.warm.design = kb_malloc_array(SCHED_WARM_DESIGN * p + 1, sizeof *sc.warm.design);
    if (sc.warm.design == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    rc = study_initial_design(sc.warm.design, &sc.warm.n, s->st, s->store, SCHED_WARM_DESIGN,
                              err);
    if (rc == KB_OK && sc.warm.n > 0) {
        sc.warm.inner = fn;
        sc.warm.inner_payload = fn_payload;
        fn = warm_sample;
        fn_payload = &sc.warm;
    }
    if (rc != KB_OK) {
        /* nothing to set up yet */
    } else if (strcmp(rec->method, "asha") == 0) {
        kb_asha_opts ao = KB_ASHA_OPTS_INIT;
        ao.maximize = maximize;
        ao.max_resource = sp->max_resource;
        ao.min_resource = 1.0;
        ao.eta = sp->eta;
        ao.seed = rec->seed;
        rc = kb_asha_new(&sc.asha, p, fn, fn_payload, &ao, err);
    } else {
        kb_hyperband_plan plan;
        kb_hyperband_opts ho = KB_HYPERBAND_OPTS_INIT;
        ho.maximize = maximize;
        ho.n_iterations = 1000; /* the budget ends the search, not the plan */
        ho.model_based = bohb;
        ho.seed = rec->seed;
        rc = kb_hyperband_plan_make(&plan, sp->max_resource, sp->eta, err);
        if (rc == KB_OK) {
            rc = kb_hyperband_new(&sc.hb, &plan, p, fn, fn_payload, &ho, err);
        }
    }
    /* Resume: replay the stored trials in order while they match the jobs the scheduler hands
       out (exact for --jobs 1; with parallel trials the report order may differ, and the
       replay stops at the first mismatch: the rest of the old trials stay in the store). */
    size_t replayed = 0, n_stored = study_n_trials(s->st);
    while (rc == KB_OK && replayed < n_stored) {
        kb_hyperband_job job;
        rc = sched_get_job(&job, &sc, err);
        if (rc != KB_OK || job.status != KB_HYPERBAND_JOB_RUN) {
            break;
        }
        const study_trial *t = study_trial_at(s->st, replayed);
        const double *u = sched_config(&sc, job.trial);
        double *us = kb_malloc_array(p + 1, sizeof *us);
        if (us == NULL) {
            rc = kb_error_set(err, KB_ENOMEM, "out of memory");
            break;
        }
        memcpy(us, u, p * sizeof *us);
        kb_encode_snap(study_encode(s->st), us);
        int same = t->encoded && kb_encode_same(us, 1, t->u, 1, p);
        kb_free(us);
        if (!same) {
            break;
        }
        if (sched_map(&sc, replayed, job.trial) != KB_OK) {
            rc = kb_error_set(err, KB_ENOMEM, "out of memory");
            break;
        }
        if (t->status == KB_RUN_STATUS_RUNNING) {
            /* left running: run it again */
            rc = start_trial(s, replayed, job.resource, job.trial, err);
        } else {
            rc = sched_report(&sc, job.trial, sched_value(t), err);
        }
        replayed++;
        if (kb_trial_pool_n_free(s->pool) == 0) {
            break;
        }
    }
    while (rc == KB_OK && !cli_interrupted) {
        while (rc == KB_OK && kb_trial_pool_n_free(s->pool) > 0 && !cli_interrupted &&
               study_n_trials(s->st) < sp->budget) {
            kb_hyperband_job job;
            rc = sched_get_job(&job, &sc, err);
            if (rc != KB_OK || job.status != KB_HYPERBAND_JOB_RUN) {
                break;
            }
            size_t index;
            rc = sched_add(&index, s, &sc, &job, err);
            if (rc == KB_OK) {
                rc = start_trial(s, index, job.resource, job.trial, err);
            }
        }
        if (rc != KB_OK || kb_trial_pool_n_running(s->pool) == 0) {
            break;
        }
        size_t index;
        rc = next_event(s, &index, err);
        if (rc == KB_OK && index < sc.cap && sc.of_trial[index] != SIZE_MAX) {
            rc = sched_report(&sc, sc.of_trial[index],
                              sched_value(study_trial_at(s->st, index)), err);
        }
    }
    kb_free(sc.of_trial);
    kb_hyperband_free(sc.hb);
    kb_asha_free(sc.asha);
    kb_free(sc.warm.design);
    return rc;
}

/* Render the command once with every parameter of the space, so that a misspelt placeholder
   is a usage error before any trial is stored. */
/* <work dir>/checkpoints, made and absolute (trials run in their own directories) */
static int checkpoint_dir(char out[PATH_MAX], const char *wd)
{
    char cwd[PATH_MAX] = "";
    if (wd[0] != '/' && getcwd(cwd, sizeof cwd) == NULL) {
        return cli_error("search", KB_EXIT_FAILURE, "cannot get the working directory: %s",
                         strerror(errno));
    }
    if ((size_t)snprintf(out, PATH_MAX, "%s%s%s/checkpoints", cwd, cwd[0] ? "/" : "", wd) >=
        PATH_MAX) {
        return cli_error("search", KB_EXIT_FAILURE, "work directory '%s': path too long", wd);
    }
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        return cli_error("search", KB_EXIT_FAILURE, "cannot make directory '%s': %s", out,
                         strerror(errno));
    }
    return KB_EXIT_OK;
}

static int check_command(const run_spec *spec, const study *st)
{
    const kb_space *sp = study_space(st);
    kb_param *cfg = kb_calloc(sp->n_params + 1, sizeof *cfg);
    if (cfg == NULL) {
        return cli_error("search", KB_EXIT_FAILURE, "out of memory");
    }
    for (size_t j = 0; j < sp->n_params; j++) {
        cfg[j].name = sp->params[j].name;
        cfg[j].value.type = KB_VALUE_TYPE_INT;
    }
    kb_param fid[3] = {{"budget", {KB_VALUE_TYPE_INT, 0, 1, NULL, 0}},
                       {"arch", {KB_VALUE_TYPE_STR, 0, 0, "FC(1)", 0}},
                       {"checkpoint", {KB_VALUE_TYPE_STR, 0, 0, "c0.kbs", 0}}};
    kb_trial_vars v = KB_TRIAL_VARS_INIT;
    v.config = cfg;
    v.n_config = sp->n_params;
    v.fidelity = fid;
    v.n_fidelity = spec->train != NULL || study_scheduler(st) == 2 ? 2 : 1; /* {arch} */
    if (study_scheduler(st) == 1) {
        fid[v.n_fidelity++] = fid[2]; /* {checkpoint} */
    }
    v.extra = spec->consts;
    v.n_extra = spec->n_consts;
    v.trial_dir = ".";
    v.config_file = spec->template_path != NULL ? "config" : NULL;
    v.cwd = ".";
    char *out = NULL;
    kb_error err = KB_ERROR_INIT;
    int rc = kb_trial_render(&out, spec->command, "--trial", &v, KB_TRIAL_RENDER_SHELL, &err);
    kb_free(out);
    kb_free(cfg);
    if (rc != KB_OK) {
        cli_usage("search", "%s", err.msg);
        return -1;
    }
    return 0;
}

/* ---- architecture search: adarandom, reinforce (engine/archsearch.h) ---- */

/* The layer space: convolutions and pooling for image data (the dataset's own size), fully
   connected layers otherwise. */
static int arch_space(kb_archsearch_space *out, const run_spec *sp)
{
    kb_archsearch_space img = KB_ARCHSEARCH_SPACE_INIT;
    kb_archsearch_space tab = {KB_ARCHSEARCH_SPACE_VERSION, 0, 0, 0, 1, 3, 0, {0}, 0, {0}, 0,
                               {0}, 0, {0}, 5, {16, 32, 64, 128, 256}};
    *out = tab;
    if (sp->train == NULL || strcmp(sp->train, "net") != 0 || sp->dataset == NULL) {
        return 0;
    }
    features_args fa;
    features_args_init(&fa, "search");
    fa.log.quiet = 1;
    kb_dataset d;
    if (features_read(&d, sp->dataset, &fa) != KB_EXIT_OK) {
        return -1;
    }
    if (d.img_height > 0 && d.img_width > 0) {
        img.height = d.img_height;
        img.width = d.img_width;
        *out = img;
    }
    kb_dataset_release(&d);
    return 0;
}

typedef struct arch_ctl {
    kb_archsearch_adarandom *ada;
    kb_archsearch_reinforce *rl;
    kb_archsearch_space space;
    double worst;          /* the worst reward so far: a failed trial's */
} arch_ctl;

static double arch_reward(const search *s, const study_trial *t, arch_ctl *c)
{
    if (!study_trial_counts(t)) {
        return isfinite(c->worst) ? c->worst : 0.0;
    }
    double r = study_record(s->st)->direction == KB_DIRECTION_MAXIMIZE ? t->value : -t->value;
    c->worst = isfinite(c->worst) ? fmin(c->worst, r) : r;
    return r;
}

static int arch_tell(search *s, arch_ctl *c, size_t index, kb_error *err)
{
    const study_trial *t = study_trial_at(s->st, index);
    const kb_param *a = kb_params_find(t->config, t->n_config, STUDY_ARCH_PARAM);
    if (a == NULL || a->value.type != KB_VALUE_TYPE_STR) {
        return KB_OK; /* not one of this search's trials */
    }
    kb_net_arch arch;
    if (kb_net_arch_parse(&arch, a->value.s, err) != KB_OK ||
        kb_archsearch_check(&c->space, &arch, err) != KB_OK) {
        return KB_OK; /* from another layer space: not evidence for this controller */
    }
    double r = arch_reward(s, t, c);
    return c->ada != NULL ? kb_archsearch_adarandom_tell(c->ada, &arch, r, err)
                          : kb_archsearch_reinforce_tell(c->rl, &arch, r, err);
}

/* a new trial: the space's defaults plus the sampled architecture */
static int arch_add(size_t *index_out, search *s, arch_ctl *c, kb_error *err)
{
    kb_net_arch arch;
    int rc = c->ada != NULL ? kb_archsearch_adarandom_sample(&arch, c->ada, err)
                            : kb_archsearch_reinforce_sample(&arch, c->rl, err);
    if (rc != KB_OK) {
        return rc;
    }
    char text[1024];
    kb_net_arch_format(text, sizeof text, &arch);
    const kb_space *sp = study_space(s->st);
    kb_param *cfg = kb_calloc(sp->n_params + 1, sizeof *cfg);
    if (cfg == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    size_t n = 0;
    for (size_t j = 0; j < sp->n_params; j++) {
        const kb_space_param *q = &sp->params[j];
        if (q->default_value.type == KB_VALUE_TYPE_NONE) {
            continue;
        }
        /* a conditional parameter keeps its default only where its parent's default allows */
        if (q->cond_parent != NULL) {
            const kb_space_param *par = kb_space_find(sp, q->cond_parent);
            int on = 0;
            char buf[64];
            const char *pv = NULL;
            if (par != NULL && par->default_value.type == KB_VALUE_TYPE_STR) {
                pv = par->default_value.s;
            } else if (par != NULL && par->default_value.type != KB_VALUE_TYPE_NONE) {
                snprintf(buf, sizeof buf, "%.17g", kb_value_as_double(&par->default_value));
                pv = buf;
            }
            for (size_t k = 0; pv != NULL && k < q->n_cond_in; k++) {
                on |= strcmp(q->cond_in[k], pv) == 0;
            }
            if (!on) {
                continue;
            }
        }
        cfg[n].name = q->name;
        cfg[n++].value = q->default_value;
    }
    cfg[n].name = STUDY_ARCH_PARAM;
    cfg[n].value.type = KB_VALUE_TYPE_STR;
    cfg[n++].value.s = text;
    kb_params_sort(cfg, n); /* by name, as runs store them (the entries are borrowed views) */
    rc = study_add_trial(index_out, s->st, s->store, cfg, n, NULL, 0, NULL, err);
    kb_free(cfg);
    return rc;
}

static int run_arch(search *s, kb_error *err)
{
    const kb_study *rec = study_record(s->st);
    arch_ctl c;
    memset(&c, 0, sizeof c);
    c.worst = NAN;
    if (arch_space(&c.space, s->spec) != 0) {
        return kb_error_set(err, KB_EFORMAT, "%s: cannot read the dataset for its input size",
                            s->spec->dataset);
    }
    int rc;
    if (strcmp(rec->method, "adarandom") == 0) {
        kb_archsearch_adarandom_opts o = KB_ARCHSEARCH_ADARANDOM_OPTS_INIT;
        /* an elite of a third of the budget (tools/bench/archsearch: 5 of 15) */
        o.n_elite = s->spec->budget / 3 > 2 ? s->spec->budget / 3 : 2;
        o.alpha = 0.2;
        o.seed = rec->seed;
        rc = kb_archsearch_adarandom_new(&c.ada, &c.space, &o, err);
    } else {
        kb_archsearch_reinforce_opts o = KB_ARCHSEARCH_REINFORCE_OPTS_INIT;
        /* rewards are metrics in [0, 1]: the default step barely moves the policy in tens of
           trials (tools/bench/archsearch used 5) */
        o.learning_rate = 5.0;
        o.seed = rec->seed;
        rc = kb_archsearch_reinforce_new(&c.rl, &c.space, &o, err);
    }
    /* resume: the stored trials, told in order, are the controller's checkpoint */
    size_t n = study_n_trials(s->st);
    for (size_t i = 0; rc == KB_OK && i < n; i++) {
        const study_trial *t = study_trial_at(s->st, i);
        rc = t->status == KB_RUN_STATUS_RUNNING ? start_trial(s, i, (double)s->spec->epochs,
                                                              SIZE_MAX, err)
                                                : arch_tell(s, &c, i, err);
    }
    while (rc == KB_OK && !cli_interrupted) {
        while (rc == KB_OK && kb_trial_pool_n_free(s->pool) > 0 && !cli_interrupted &&
               study_n_trials(s->st) < s->spec->budget) {
            size_t index;
            rc = arch_add(&index, s, &c, err);
            if (rc == KB_OK) {
                rc = start_trial(s, index, (double)s->spec->epochs, SIZE_MAX, err);
            }
        }
        if (rc != KB_OK || kb_trial_pool_n_running(s->pool) == 0) {
            break;
        }
        size_t index;
        rc = next_event(s, &index, err);
        if (rc == KB_OK && index != SIZE_MAX) {
            rc = arch_tell(s, &c, index, err);
        }
    }
    kb_archsearch_adarandom_free(c.ada);
    kb_archsearch_reinforce_free(c.rl);
    return rc;
}

static int print_result(const search *s, int interrupted)
{
    const kb_study *rec = study_record(s->st);
    size_t best = study_best(s->st);
    size_t n = study_n_trials(s->st), n_ok = 0;
    for (size_t i = 0; i < n; i++) {
        n_ok += study_trial_at(s->st, i)->status == KB_RUN_STATUS_OK;
    }
    if (s->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "schema", "kb.search/1");
        cJSON_AddStringToObject(o, "study", rec->id);
        cJSON_AddStringToObject(o, "task", rec->task_id);
        cJSON_AddStringToObject(o, "space", rec->space);
        cJSON_AddStringToObject(o, "objective", rec->objective);
        cJSON_AddStringToObject(o, "direction", kb_direction_name(rec->direction));
        cJSON_AddStringToObject(o, "method", rec->method);
        cJSON_AddStringToObject(o, "warm_start", rec->warm_start);
        cJSON *nb = cJSON_AddArrayToObject(o, "neighbours");
        for (size_t i = 0; i < rec->n_neighbours; i++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "task", rec->neighbours[i]);
            cJSON_AddNumberToObject(x, "weight", rec->neighbour_weights[i]);
            cJSON_AddItemToArray(nb, x);
        }
        cJSON_AddNumberToObject(o, "trials", (double)n);
        cJSON_AddNumberToObject(o, "ok", (double)n_ok);
        cJSON_AddNumberToObject(o, "pruned", (double)s->n_pruned);
        cJSON_AddNumberToObject(o, "compute_s", s->compute_s);
        cJSON_AddBoolToObject(o, "interrupted", interrupted);
        if (best != SIZE_MAX) {
            const study_trial *t = study_trial_at(s->st, best);
            cJSON *b = cJSON_AddObjectToObject(o, "best");
            cJSON_AddNumberToObject(b, "trial", (double)t->number);
            cJSON_AddStringToObject(b, "run", t->run_id);
            cJSON_AddNumberToObject(b, "value", t->value);
            cli_add_config_json(b, "config", t->config, t->n_config);
        } else {
            cJSON_AddNullToObject(o, "best");
        }
        return cli_emit_json(o);
    }
    printf("study %s: %zu trials (%zu ok, %zu pruned) on task %s, space %s, %s %s%s\n", rec->id,
           n, n_ok, s->n_pruned, rec->task_id, rec->space, rec->method,
           strcmp(rec->warm_start, "none") == 0 ? "cold" : "warm-started",
           interrupted ? " (interrupted: resume with kb search --resume)" : "");
    if (best == SIZE_MAX) {
        printf("no trial finished ok\n");
        return KB_EXIT_OK;
    }
    const study_trial *t = study_trial_at(s->st, best);
    printf("best: trial %zu, %s = %.6g\n  ", t->number, rec->objective, t->value);
    study_cli_print_config(stdout, t->config, t->n_config);
    putchar('\n');
    return KB_EXIT_OK;
}

int cmd_search(int argc, char **argv)
{
    const char *opt_kb = NULL, *task_arg = NULL, *space = NULL, *resume = NULL, *name = NULL;
    const char *work_dir = NULL;
    run_spec spec;
    memset(&spec, 0, sizeof spec);
    int json = 0, quiet = 0;
    size_t budget = 0, jobs = 0;
    study_cli_args sa;
    study_cli_args_init(&sa);
    const char *trial = NULL, *train = NULL, *tmpl = NULL, *mre = NULL, *mname = NULL,
               *sre = NULL, *prune = NULL;
    double timeout = 0, max_resource = 0, eta = 3;
    size_t max_rows = 0, epochs = 0;
    int parse_stderr = 0;
    const char *const_args[MAX_CONSTS];
    size_t n_const_args = 0;
    cli_parser p;
    cli_begin(&p, &cmd_search_spec, argc, argv);
    for (int c; (c = cli_next(&p)) != -1;) {
        int shared = study_cli_option(&sa, "search", c, p.arg);
        if (shared < 0) {
            return KB_EXIT_USAGE;
        }
        if (shared > 0) {
            continue;
        }
        switch (c) {
        case OPT_KB: opt_kb = p.arg; break;
        case OPT_TASK: task_arg = p.arg; break;
        case OPT_SPACE: space = p.arg; break;
        case OPT_TRIAL: trial = p.arg; break;
        case OPT_TRAIN:
            if (strcmp(p.arg, "svm") != 0 && strcmp(p.arg, "net") != 0) {
                return cli_usage("search", "--train: expected svm or net, got '%s'", p.arg);
            }
            train = p.arg;
            break;
        case OPT_TEMPLATE: tmpl = p.arg; break;
        case OPT_METRIC_REGEX: mre = p.arg; break;
        case OPT_METRIC_NAME: mname = p.arg; break;
        case OPT_STEP_REGEX: sre = p.arg; break;
        case OPT_PARSE_STDERR: parse_stderr = 1; break;
        case OPT_CONST:
            if (strchr(p.arg, '=') == NULL || p.arg[0] == '=') {
                return cli_usage("search", "--const: expected NAME=VALUE, got '%s'", p.arg);
            }
            if (n_const_args == MAX_CONSTS) {
                return cli_usage("search", "--const: at most %d constants", MAX_CONSTS);
            }
            const_args[n_const_args++] = p.arg;
            break;
        case OPT_BUDGET:
            if (cli_parse_size("search", "budget", p.arg, &budget) != 0 || budget == 0) {
                return budget == 0 ? cli_usage("search", "--budget must be at least 1")
                                   : KB_EXIT_USAGE;
            }
            break;
        case OPT_JOBS:
            if (cli_parse_size("search", "jobs", p.arg, &jobs) != 0 || jobs == 0 || jobs > 256) {
                return jobs == 0 || jobs > 256 ? cli_usage("search", "--jobs must be 1 to 256")
                                               : KB_EXIT_USAGE;
            }
            break;
        case OPT_TIMEOUT:
            if (cli_parse_double("search", "timeout-per-trial", p.arg, &timeout) != 0 ||
                !(timeout > 0)) {
                return cli_usage("search", "--timeout-per-trial must be a positive number");
            }
            break;
        case OPT_PRUNE:
            if (strcmp(p.arg, "judge") != 0 && strcmp(p.arg, "none") != 0) {
                return cli_usage("search", "--prune: expected judge or none, got '%s'", p.arg);
            }
            prune = p.arg;
            break;
        case OPT_RESUME: resume = p.arg; break;
        case OPT_WORK_DIR: work_dir = p.arg; break;
        case OPT_MAX_ROWS:
            if (cli_parse_size("search", "max-rows", p.arg, &max_rows) != 0) {
                return KB_EXIT_USAGE;
            }
            break;
        case OPT_EPOCHS:
            if (cli_parse_size("search", "epochs", p.arg, &epochs) != 0 || epochs == 0) {
                return epochs == 0 ? cli_usage("search", "--epochs must be at least 1")
                                   : KB_EXIT_USAGE;
            }
            break;
        case OPT_MAX_RESOURCE:
            if (cli_parse_double("search", "max-resource", p.arg, &max_resource) != 0 ||
                !(max_resource >= 1)) {
                return cli_usage("search", "--max-resource must be at least 1");
            }
            break;
        case OPT_ETA:
            if (cli_parse_double("search", "eta", p.arg, &eta) != 0 || !(eta > 1)) {
                return cli_usage("search", "--eta must be above 1");
            }
            break;
        case OPT_NAME: name = p.arg; break;
        case OPT_JSON: json = 1; break;
        case OPT_QUIET: quiet = 1; break;
        case CLI_HELP_KEY: return KB_EXIT_OK;
        default: return KB_EXIT_USAGE;
        }
    }
    int first = cli_rest(&p);
    const char *dataset = first < argc ? argv[first] : NULL;
    if (argc - first > 1) {
        return cli_usage("search", "unexpected argument '%s'", argv[first + 1]);
    }
    if (resume != NULL) {
        if (dataset != NULL || task_arg != NULL || trial != NULL || train != NULL ||
            n_const_args > 0) {
            return cli_usage("search", "--resume takes the study's own task, trial command "
                             "and constants");
        }
    } else {
        if ((dataset == NULL) == (task_arg == NULL)) {
            return cli_usage("search", "name one DATASET or --task ID (or --resume STUDY)");
        }
        if ((trial == NULL) == (train == NULL)) {
            return cli_usage("search", "say how to run a trial: --trial CMD or --train svm|net");
        }
        if (train != NULL && dataset == NULL) {
            return cli_usage("search", "--train needs the DATASET to train on");
        }
        if (tmpl != NULL && train != NULL) {
            return cli_usage("search", "--template goes with --trial");
        }
        if (space == NULL && train == NULL) {
            return cli_usage("search", "say which search space: --space S");
        }
        if ((epochs > 0) && (train == NULL || strcmp(train, "net") != 0)) {
            return cli_usage("search", "--epochs goes with --train net");
        }
    }
    if (mname != NULL && mre == NULL) {
        return cli_usage("search", "--metric-name goes with --metric-regex");
    }

    cli_install_signals();
    cli_log_opts lo = {"search", quiet, 0};
    kb_store *store = NULL;
    int code = cli_open_store(&store, "search", opt_kb, 0, &lo);
    if (code != KB_EXIT_OK) {
        return code;
    }
    kb_error err = KB_ERROR_INIT;
    study *st = NULL;
    kb_study created;
    memset(&created, 0, sizeof created);
    char dataset_path[4096] = "";
    search s;
    memset(&s, 0, sizeof s);
    spec.budget = budget;
    spec.jobs = jobs;
    spec.timeout_s = timeout;
    spec.prune = prune != NULL && strcmp(prune, "judge") == 0;
    if (resume != NULL) {
        if (study_open(&st, store, resume, &err) != KB_OK) {
            code = cli_fail("search", &err);
            goto done;
        }
        if (run_spec_from_study(&spec, study_record(st)) != 0 || spec.command == NULL) {
            code = cli_error("search", KB_EXIT_FAILURE, "study '%s' was not made by kb search "
                             "(no trial command stored): drive it with kb ask / kb tell",
                             resume);
            goto done;
        }
    } else {
        char task_id[FEATURES_TASK_ID_SIZE + 512];
        if (dataset != NULL) {
            paths_dataset_file(dataset_path, sizeof dataset_path, dataset, NULL);
            features_args fa;
            features_args_init(&fa, "search");
            fa.log.quiet = quiet;
            /* a new task is named after the file: iris for datasets/iris.csv.gz */
            const char *base = strrchr(dataset_path, '/');
            base = base != NULL ? base + 1 : dataset_path;
            char nm[256];
            size_t len = strcspn(base, ".");
            len = len < sizeof nm ? len : sizeof nm - 1;
            memcpy(nm, base, len);
            nm[len] = '\0';
            code = features_ensure_task(task_id, store, dataset_path, name ? name : nm, &fa);
            if (code != KB_EXIT_OK) {
                goto done;
            }
        } else {
            snprintf(task_id, sizeof task_id, "%s", task_arg);
        }
        kb_task task;
        memset(&task, 0, sizeof task);
        if (kb_store_get_task(&task, store, task_id, &err) != KB_OK) {
            code = err.code == KB_ENOTFOUND
                       ? cli_error("search", KB_EXIT_FAILURE, "no task '%s' in the knowledge "
                                   "base", task_id)
                       : cli_fail("search", &err);
            goto done;
        }
        kb_task_type type = task.type;
        kb_task_release(&task);
        /* the built-in net's resource is its epochs */
        spec.max_resource = max_resource > 0 ? max_resource
                            : train != NULL && strcmp(train, "net") == 0 ? (epochs ? (double)epochs : 10.0)
                                                                         : 27.0;
        spec.eta = eta;
        spec.max_rows = max_rows;
        spec.parse_stderr = parse_stderr;
        for (size_t i = 0; i < n_const_args; i++) {
            const char *eq = strchr(const_args[i], '=');
            if (add_const(&spec, const_args[i], (size_t)(eq - const_args[i]), eq + 1) != 0) {
                code = cli_error("search", KB_EXIT_FAILURE, "out of memory");
                goto done;
            }
        }
        if (spec.budget == 0) {
            spec.budget = 20;
        }
        /* trials run in their own directories: the built-in workload needs the absolute path */
        char dataset_abs[PATH_MAX + 4096] = "";
        char cwd[PATH_MAX];
        if (dataset_path[0] == '/') {
            snprintf(dataset_abs, sizeof dataset_abs, "%s", dataset_path);
        } else if (getcwd(cwd, sizeof cwd) != NULL) {
            snprintf(dataset_abs, sizeof dataset_abs, "%s/%s", cwd, dataset_path);
        } else if (train != NULL) {
            code = cli_error("search", KB_EXIT_FAILURE, "cannot get the working directory: %s",
                             strerror(errno));
            goto done;
        }
        if (spec.jobs == 0) {
            spec.jobs = 1;
        }
        if (set_str(&spec.train, train) || set_str(&spec.template_path, tmpl) ||
            set_str(&spec.metric_regex, mre) || set_str(&spec.metric_name, mname) ||
            set_str(&spec.step_regex, sre) ||
            set_str(&spec.dataset, train != NULL ? dataset_abs : NULL)) {
            code = cli_error("search", KB_EXIT_FAILURE, "out of memory");
            goto done;
        }
        if (train != NULL) {
            spec.epochs = strcmp(train, "net") == 0 ? (epochs ? epochs : 10) : 0;
            spec.command = builtin_command(&spec, type, method_promotes(sa.method));
            if (space == NULL) {
                space = strcmp(train, "svm") == 0 ? "svm" : "mlp";
            }
            if (sa.objective == NULL) {
                int reg = type == KB_TASK_TYPE_REGRESSION;
                sa.objective = strcmp(train, "svm") == 0 ? (reg ? "rmse" : "accuracy")
                                                         : (reg ? "val_loss" : "val_accuracy");
            }
        } else {
            spec.command = kb_strdup(trial);
        }
        char *extra = run_spec_json(&spec);
        if (spec.command == NULL || extra == NULL) {
            kb_free(extra);
            code = cli_error("search", KB_EXIT_FAILURE, "cannot build the trial command");
            goto done;
        }
        if (method_promotes(sa.method) && sa.warm_start != NULL &&
            strcmp(sa.warm_start, "auto") != 0 && strcmp(sa.warm_start, "portfolio") != 0 &&
            strcmp(sa.warm_start, "nearest") != 0 && strcmp(sa.warm_start, "none") != 0) {
            kb_free(extra);
            code = cli_usage("search", "warm start '%s' shapes a GP; %s starts from an initial "
                             "design: auto, portfolio, nearest or none", sa.warm_start, sa.method);
            goto done;
        }
        study_create_opts co;
        study_cli_create_opts(&co, &sa, task_id, space, spec.command);
        co.extra = extra;
        int rc = study_create(&created, store, &co, &err);
        kb_free(extra);
        if (rc != KB_OK) {
            code = cli_fail("search", &err);
            goto done;
        }
        if (study_open(&st, store, created.id, &err) != KB_OK) {
            code = cli_fail("search", &err);
            goto done;
        }
    }
    const kb_study *rec = study_record(st);
    if (study_scheduler(st) == 2 && strstr(spec.command, "{arch}") == NULL) {
        code = cli_usage("search", "--method %s searches architectures: put {arch} in the trial "
                         "command, or use --train net", rec->method);
        goto done;
    }
    if (study_scheduler(st) == 1 && strstr(spec.command, "{budget}") == NULL) {
        code = cli_usage("search", "--method %s needs a resource to schedule: put {budget} in "
                         "the trial command (e.g. its epochs), or use --train net", rec->method);
        goto done;
    }
    if (check_command(&spec, st) != 0) {
        code = KB_EXIT_USAGE;
        goto done;
    }
    if (!quiet) {
        fprintf(stderr, "kb search: study %s on task %s, space %s, objective %s (%s), method %s, "
                        "warm start %s from %zu neighbour tasks; budget %zu, %zu at a time\n",
                rec->id, rec->task_id, rec->space, rec->objective,
                kb_direction_name(rec->direction), rec->method, rec->warm_start,
                rec->n_neighbours, spec.budget, spec.jobs);
    }
    char wd[4096];
    snprintf(wd, sizeof wd, "%s/%s", work_dir != NULL ? work_dir : "kb-trials", rec->id);
    kb_trial_pool_opts po = KB_TRIAL_POOL_OPTS_INIT;
    po.command = spec.command;
    po.template_path = spec.template_path;
    po.work_dir = wd;
    po.max_jobs = spec.jobs;
    po.timeout_s = spec.timeout_s;
    po.objective = rec->objective;
    po.metric_regex = spec.metric_regex;
    po.metric_name = spec.metric_name;
    po.step_regex = spec.step_regex;
    po.parse = KB_TRIAL_PARSE_STDOUT | (spec.parse_stderr ? KB_TRIAL_PARSE_STDERR : 0u);
    po.extra = spec.consts;
    po.n_extra = spec.n_consts;
    po.log.fn = cli_log_stderr;
    po.log.payload = &lo;
    s.st = st;
    s.store = store;
    s.spec = &spec;
    s.json = json;
    s.quiet = quiet;
    kb_curve_opts jo = KB_CURVE_OPTS_INIT;
    jo.metric = rec->objective;
    jo.mode = rec->direction == KB_DIRECTION_MAXIMIZE ? KB_CURVE_MODE_MAX : KB_CURVE_MODE_MIN;
    s.judge = jo;
    if (kb_trial_pool_new(&s.pool, &po, &err) != KB_OK) {
        code = cli_fail("search", &err);
        goto done;
    }
    if (study_scheduler(st) == 1 && (code = checkpoint_dir(s.ckpt_dir, wd)) != KB_EXIT_OK) {
        goto done;
    }
    print_header(&s);
    int rc = study_scheduler(st) == 2   ? run_arch(&s, &err)
             : study_scheduler(st) == 1 ? run_scheduled(&s, &err)
                                        : run_sequential(&s, &err);
    int interrupted = cli_interrupted != 0;
    /* Ctrl-C: the running trials stay "running" in the store; --resume runs them again */
    kb_trial_pool_free(s.pool);
    s.pool = NULL;
    if (rc != KB_OK) {
        code = cli_fail("search", &err);
        goto done;
    }
    code = print_result(&s, interrupted);
    if (code == KB_EXIT_OK && interrupted) {
        code = KB_EXIT_INTERRUPTED;
    }
done:
    kb_trial_pool_free(s.pool);
    study_close(st);
    kb_study_release(&created);
    run_spec_release(&spec);
    kb_store_close(store);
    return code;
}
