/*
 * The trial runner (tools/trial.h): rendering, and small shell trials run through the pool:
 * JSON lines, exit codes, a missing objective, NaN, timeouts, regex logs, three trials at
 * once, stop/prune with a grandchild, and XGBoost's command-line program driven by a
 * config-file template (skipped when /usr/bin/xgboost is absent).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "tools/trial.h"

static char work_root[256];

/* ---- helpers ---- */

static kb_param fparam(const char *name, double x)
{
    kb_param p = {(char *)name, {KB_VALUE_TYPE_FLOAT, x, 0, NULL, 0}};
    return p;
}

static kb_param iparam(const char *name, int64_t x)
{
    kb_param p = {(char *)name, {KB_VALUE_TYPE_INT, 0, x, NULL, 0}};
    return p;
}

static kb_param sparam(const char *name, const char *s)
{
    kb_param p = {(char *)name, {KB_VALUE_TYPE_STR, 0, 0, (char *)s, 0}};
    return p;
}

static kb_param bparam(const char *name, int b)
{
    kb_param p = {(char *)name, {KB_VALUE_TYPE_BOOL, 0, 0, NULL, b}};
    return p;
}

static char *read_text(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static const kb_series *series_named(const kb_trial_result *r, const char *name)
{
    for (size_t i = 0; i < r->n_curve; i++) {
        if (strcmp(r->curve[i].metric, name) == 0) {
            return &r->curve[i];
        }
    }
    return NULL;
}

static double metric_named(const kb_trial_result *r, const char *name)
{
    for (size_t i = 0; i < r->n_metrics; i++) {
        if (strcmp(r->metrics[i].name, name) == 0) {
            return r->metrics[i].value;
        }
    }
    return -12345.0;
}

/* A dead process: gone, or a zombie of some other parent (init may not reap in a container). */
static int process_gone(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 1;
    }
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    const char *p = strrchr(buf, ')');
    return p != NULL && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* SIGKILL is delivered asynchronously: allow the kernel up to 2 s to finish the process. */
static int process_dead(long pid)
{
    for (int k = 0; k < 200; k++) {
        if (process_gone(pid)) {
            return 1;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void no_zombies(void)
{
    errno = 0;
    pid_t p = waitpid(-1, NULL, WNOHANG);
    CHECK(p == -1 && errno == ECHILD);
}

/* Pool options for a test: a fresh work dir under work_root/<name>. */
static kb_trial_pool_opts opts_for(const char *name, const char *command, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/%s%s", work_root, getenv("KB_TRIAL_NO_PIDFD") ? "tick-" : "", name);
    kb_trial_pool_opts o = KB_TRIAL_POOL_OPTS_INIT;
    o.command = command;
    o.work_dir = dir;
    o.kill_grace_s = 0.3;
    return o;
}

/*
 * Run one trial to its end; counts PROGRESS events. The result is moved to `*res`.
 * Waits at most ~20 s in total (a hung test fails instead of hanging CTest).
 */
static int run_one(kb_trial_result *res, size_t *n_progress, const kb_trial_pool_opts *o,
                   const kb_param *config, size_t n_config, const kb_param *fid, size_t n_fid)
{
    kb_error err = KB_ERROR_INIT;
    kb_trial_pool *pool = NULL;
    memset(res, 0, sizeof *res);
    *n_progress = 0;
    int rc = kb_trial_pool_new(&pool, o, &err);
    CHECK_OK(rc, err);
    if (rc != KB_OK) {
        return rc;
    }
    rc = kb_trial_pool_start(pool, 1, config, n_config, fid, n_fid, 7, &err);
    CHECK_OK(rc, err);
    for (int k = 0; rc == KB_OK && k < 400; k++) {
        kb_trial_event ev = KB_TRIAL_EVENT_INIT;
        rc = kb_trial_pool_next(&ev, pool, 50, &err);
        CHECK_OK(rc, err);
        if (ev.kind == KB_TRIAL_EVENT_PROGRESS) {
            CHECK(ev.trial == 1);
            CHECK(ev.curve != NULL);
            (*n_progress)++;
        } else if (ev.kind == KB_TRIAL_EVENT_DONE) {
            *res = ev.result;
            memset(&ev.result, 0, sizeof ev.result);
            kb_trial_event_release(&ev);
            break;
        }
        kb_trial_event_release(&ev);
    }
    CHECK(kb_trial_pool_n_running(pool) == 0);
    kb_trial_pool_free(pool);
    no_zombies();
    return rc;
}

/* ---- rendering ---- */

static void test_render_placeholders_format_values_exactly(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_param config[] = {fparam("lr", 0.1), iparam("depth", 6), sparam("opt", "sgd"),
                         bparam("nesterov", 1), fparam("wd", 1.0), fparam("eps", 1e-5),
                         fparam("odd", 0.1 + 0.2)};
    kb_param fid[] = {iparam("epochs", 9)};
    kb_trial_vars v = KB_TRIAL_VARS_INIT;
    v.config = config;
    v.n_config = 7;
    v.fidelity = fid;
    v.n_fidelity = 1;
    v.trial = 3;
    v.seed = 42;
    v.trial_dir = "/w/trial-0003";
    char *out = NULL;
    CHECK_OK(kb_trial_render(&out,
                             "t --lr {lr} --depth {depth} --opt {opt} --n {nesterov} --wd {wd} "
                             "--eps {eps} --odd {odd} --e {budget} {epochs} #{trial} s{seed} "
                             "{trial_dir}",
                             NULL, &v, KB_TRIAL_RENDER_SHELL, &err),
             err);
    CHECK_STR(out, "t --lr 0.1 --depth 6 --opt sgd --n true --wd 1.0 --eps 1e-05 "
                   "--odd 0.30000000000000004 --e 9 9 #3 s42 /w/trial-0003");
    kb_free(out);

    /* every float comes back as the same double */
    double xs[] = {0.1, 1.0 / 3.0, 1e-300, 123456789.125, -2.5e17, 5e-324, 0.0};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        kb_value fv = {KB_VALUE_TYPE_FLOAT, xs[i], 0, NULL, 0};
        char *s = NULL;
        CHECK_OK(kb_trial_format_value(&s, &fv, &err), err);
        CHECK(s != NULL && strtod(s, NULL) == xs[i]);
        kb_free(s);
    }
    kb_value nan_v = {KB_VALUE_TYPE_FLOAT, NAN, 0, NULL, 0};
    kb_value inf_v = {KB_VALUE_TYPE_FLOAT, -INFINITY, 0, NULL, 0};
    char *s = NULL;
    CHECK_OK(kb_trial_format_value(&s, &nan_v, &err), err);
    CHECK_STR(s, "nan");
    kb_free(s);
    CHECK_OK(kb_trial_format_value(&s, &inf_v, &err), err);
    CHECK_STR(s, "-inf");
    kb_free(s);
    kb_value none = {KB_VALUE_TYPE_NONE, 0, 0, NULL, 0};
    CHECK_CODE(kb_trial_format_value(&s, &none, &err), KB_EINVAL);
}

static void test_render_quotes_shell_metacharacters_and_config_json(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_param config[] = {sparam("name", "a b'c;rm -rf x"), fparam("lr", 0.5),
                         sparam("q", "say \"hi\""), fparam("bad", NAN), bparam("on", 0)};
    kb_trial_vars v = KB_TRIAL_VARS_INIT;
    v.config = config;
    v.n_config = 5;
    char *out = NULL;
    CHECK_OK(kb_trial_render(&out, "run {name} {lr} {config_json}", NULL, &v,
                             KB_TRIAL_RENDER_SHELL, &err),
             err);
    CHECK_STR(out, "run 'a b'\\''c;rm -rf x' 0.5 "
                   "'{\"name\":\"a b'\\''c;rm -rf x\",\"lr\":0.5,\"q\":\"say \\\"hi\\\"\","
                   "\"bad\":null,\"on\":false}'");
    kb_free(out);

    /* the shell reads the quoted words back exactly */
    kb_param one[] = {sparam("s", "it's $HOME `x` \\ \"q\"")};
    v.config = one;
    v.n_config = 1;
    CHECK_OK(kb_trial_render(&out, "printf '%s' {s}", NULL, &v, KB_TRIAL_RENDER_SHELL, &err),
             err);
    FILE *p = popen(out, "r");
    char buf[128] = "";
    if (p != NULL) {
        size_t n = fread(buf, 1, sizeof buf - 1, p);
        buf[n] = '\0';
        pclose(p);
    }
    CHECK_STR(buf, "it's $HOME `x` \\ \"q\"");
    kb_free(out);

    /* without SHELL, values go in bare; config_json too */
    CHECK_OK(kb_trial_render(&out, "{s}|{config_json}", NULL, &v, 0, &err), err);
    CHECK_STR(out, "it's $HOME `x` \\ \"q\"|{\"s\":\"it's $HOME `x` \\\\ \\\"q\\\"\"}");
    kb_free(out);
}

static void test_render_caffe_tokens_are_whole_words(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_param config[] = {fparam("base_lr", 0.01), fparam("weight_decay", 0.0005),
                         fparam("momentum", 0.9)};
    kb_param fid[] = {iparam("max_iter", 1000)};
    kb_trial_vars v = KB_TRIAL_VARS_INIT;
    v.config = config;
    v.n_config = 3;
    v.fidelity = fid;
    v.n_fidelity = 1;
    v.config_file = "/w/solver.prototxt";
    const char *tmpl = "base_lr: BASE_LR\n"
                       "weight_decay: WEIGHT_DECAY  # not BASE_LR_MULT nor XBASE_LR\n"
                       "momentum: {momentum}\n"
                       "max_iter: MAX_ITER\n"
                       "layer {\n  name: \"ip\"\n  param { lr_mult: 1 }}\n"
                       "{{literal} ${HOME} awk '{print $1}' {config_file}\n";
    char *out = NULL;
    CHECK_OK(kb_trial_render(&out, tmpl, "solver.prototxt.tmpl", &v, KB_TRIAL_RENDER_TOKENS,
                             &err),
             err);
    CHECK_STR(out, "base_lr: 0.01\n"
                   "weight_decay: 0.0005  # not BASE_LR_MULT nor XBASE_LR\n"
                   "momentum: 0.9\n"
                   "max_iter: 1000\n"
                   "layer {\n  name: \"ip\"\n  param { lr_mult: 1 }}\n"
                   "{literal} ${HOME} awk '{print $1}' /w/solver.prototxt\n");
    kb_free(out);

    /* tokens are only for templates: a command keeps BASE_LR */
    CHECK_OK(kb_trial_render(&out, "echo BASE_LR {base_lr}", NULL, &v, KB_TRIAL_RENDER_SHELL,
                             &err),
             err);
    CHECK_STR(out, "echo BASE_LR 0.01");
    kb_free(out);
}

static void test_render_unknown_placeholder_names_it_and_its_position(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_param config[] = {fparam("lr", 0.1)};
    kb_trial_vars v = KB_TRIAL_VARS_INIT;
    v.config = config;
    v.n_config = 1;
    char *out = (char *)"x";
    CHECK_CODE(kb_trial_render(&out, "run {lr} {nope}", NULL, &v, KB_TRIAL_RENDER_SHELL, &err),
               KB_EFORMAT);
    CHECK(out == NULL);
    CHECK(strstr(err.msg, "command:1:10: unknown placeholder '{nope}'") != NULL);
    CHECK_CODE(kb_trial_render(&out, "a: 1\nb: {lr}\n  c: {Lr}\n", "s.tmpl", &v, 0, &err),
               KB_EFORMAT);
    CHECK(strstr(err.msg, "s.tmpl:3:6: unknown placeholder '{Lr}'") != NULL);
    /* built-ins without a value are unknown too, never an empty string */
    const char *unset[] = {"{trial_dir}", "{config_file}", "{budget}", "{cwd}"};
    for (size_t i = 0; i < 4; i++) {
        CHECK_CODE(kb_trial_render(&out, unset[i], NULL, &v, 0, &err), KB_EFORMAT);
        CHECK(strstr(err.msg, unset[i]) != NULL);
    }
    /* the extra constants and an inactive parameter (empty) */
    kb_param extra[] = {sparam("data", "/d/x.svm")};
    kb_param inactive[] = {{(char *)"mom", {KB_VALUE_TYPE_NONE, 0, 0, NULL, 0}}};
    v.extra = extra;
    v.n_extra = 1;
    v.config = inactive;
    CHECK_OK(kb_trial_render(&out, "t {data} [{mom}] {config_json}", NULL, &v,
                             KB_TRIAL_RENDER_SHELL, &err),
             err);
    CHECK_STR(out, "t /d/x.svm [''] '{}'");
    kb_free(out);
    /* a parameter named like a built-in wins over it; a constant does not */
    kb_param own_seed[] = {iparam("seed", 99)};
    kb_param const_trial[] = {iparam("trial", 5)};
    v.config = own_seed;
    v.extra = const_trial;
    v.seed = 1;
    v.trial = 2;
    CHECK_OK(kb_trial_render(&out, "{seed} {trial}", NULL, &v, 0, &err), err);
    CHECK_STR(out, "99 2");
    kb_free(out);
}

/* ---- shell trials ---- */

static void test_json_trial_reports_curve_and_final(void)
{
    char dir[512];
    kb_trial_pool_opts o =
        opts_for("json",
                 "printf '{\"step\":1,\"val_accuracy\":0.5,\"loss\":2}\\n"
                 "{\"step\":2,\"val_accuracy\":{acc},\"loss\":1}\\n"
                 "{\"final\":{\"val_accuracy\":{acc}},\"status\":\"ok\"}\\n'; echo to-stderr >&2",
                 dir, sizeof dir);
    o.objective = "val_accuracy";
    kb_param config[] = {fparam("acc", 0.75)};
    kb_trial_result r;
    size_t n_progress = 0;
    run_one(&r, &n_progress, &o, config, 1, NULL, 0);
    CHECK(r.status == KB_RUN_STATUS_OK);
    CHECK_STR(r.reason, "");
    CHECK(r.exit_code == 0 && r.term_signal == 0);
    CHECK(n_progress >= 1);
    CHECK(r.objective == 0.75);
    CHECK(r.n_metrics == 2);
    CHECK(metric_named(&r, "val_accuracy") == 0.75);
    CHECK(metric_named(&r, "loss") == 1.0); /* not in the final line: its last value */
    const kb_series *s = series_named(&r, "val_accuracy");
    CHECK(s != NULL && s->n == 2);
    if (s != NULL && s->n == 2) {
        CHECK(s->steps[0] == 1 && s->steps[1] == 2);
        CHECK(s->values[0] == 0.5 && s->values[1] == 0.75);
    }
    CHECK(r.n_curve == 2 && strcmp(r.curve[0].metric, "loss") == 0); /* sorted by name */
    CHECK(r.cost_s >= 0 && isfinite(r.cost_s));
    CHECK(r.started_at > 0 && r.finished_at >= r.started_at);
    CHECK(r.trial_dir != NULL && strncmp(r.trial_dir, dir, strlen(dir)) == 0);
    CHECK(r.command != NULL && strstr(r.command, "\"val_accuracy\":0.75,") != NULL);
    if (r.trial_dir != NULL) {
        const char *log = read_text(r.trial_dir, "stdout.log");
        CHECK(log != NULL && strstr(log, "{\"final\":{\"val_accuracy\":0.75}") != NULL);
        log = read_text(r.trial_dir, "stderr.log");
        CHECK(log != NULL && strcmp(log, "to-stderr\n") == 0);
    }

    /* into a run record */
    kb_run run;
    memset(&run, 0, sizeof run);
    kb_trial_result_move_to_run(&run, &r);
    CHECK(run.status == KB_RUN_STATUS_OK && run.n_metrics == 2 && run.n_curve == 2);
    CHECK(r.metrics == NULL && r.curve == NULL && r.trial_dir != NULL);
    kb_run_release(&run);
    kb_trial_result_release(&r);
}

/* Run `command` with objective `objective`; check status and reason; `*r` for more checks. */
static void expect_outcome(kb_trial_result *r, const char *name, const char *command,
                           const char *objective, const char *shell, kb_run_status status,
                           const char *reason)
{
    char dir[512];
    kb_trial_pool_opts o = opts_for(name, command, dir, sizeof dir);
    o.objective = objective;
    o.shell = shell;
    size_t n_progress;
    run_one(r, &n_progress, &o, NULL, 0, NULL, 0);
    CHECK(r->status == status);
    CHECK_STR(r->reason, reason);
}

static void test_failures_are_reported_with_their_reason(void)
{
    kb_trial_result r;
    expect_outcome(&r, "fail", "echo '{\"step\":1,\"val_accuracy\":0.5}'; exit 3",
                   "val_accuracy", NULL, KB_RUN_STATUS_FAILED, "exit status 3");
    CHECK(r.exit_code == 3);
    CHECK(r.n_curve == 1); /* the curve is kept */
    kb_trial_result_release(&r);

    expect_outcome(&r, "silent", "echo hello", "val_accuracy", NULL, KB_RUN_STATUS_FAILED,
                   "objective 'val_accuracy' never reported");
    CHECK(isnan(r.objective));
    kb_trial_result_release(&r);

    expect_outcome(&r, "nometric", "echo hello", NULL, NULL, KB_RUN_STATUS_FAILED,
                   "no metric reported");
    kb_trial_result_release(&r);

    expect_outcome(&r, "signal", "echo '{\"step\":1,\"v\":1}'; kill -SEGV $$", "v", NULL,
                   KB_RUN_STATUS_FAILED, "killed by signal 11 (SIGSEGV)");
    CHECK(r.exit_code == -1 && r.term_signal == 11);
    kb_trial_result_release(&r);

    expect_outcome(&r, "noshell", "true", NULL, "/nonexistent/sh", KB_RUN_STATUS_FAILED,
                   "exit status 127");
    kb_trial_result_release(&r);

    expect_outcome(&r, "said", "echo '{\"final\":{\"v\":1},\"status\":\"diverged\"}'", "v",
                   NULL, KB_RUN_STATUS_DIVERGED, "the trial reported status 'diverged'");
    kb_trial_result_release(&r);
}

static void test_nan_objective_is_diverged(void)
{
    kb_trial_result r;
    expect_outcome(&r, "nan",
                   "printf '{\"step\":1,\"val_loss\":1.5}\\n{\"step\":2,\"val_loss\":\"nan\"}\\n'",
                   "val_loss", NULL, KB_RUN_STATUS_DIVERGED,
                   "objective 'val_loss' is nan at step 2");
    CHECK(isnan(r.objective));
    const kb_series *s = series_named(&r, "val_loss");
    CHECK(s != NULL && s->n == 2);
    if (s != NULL && s->n == 2) {
        CHECK(s->steps[1] == 2 && isnan(s->values[1]) && s->values[0] == 1.5);
    }
    kb_trial_result_release(&r);

    expect_outcome(&r, "inf", "echo '{\"step\":4,\"val_loss\":1e999}'; exit 1", "val_loss",
                   NULL, KB_RUN_STATUS_DIVERGED,
                   "objective 'val_loss' is inf at step 4; exit status 1");
    kb_trial_result_release(&r);
}

static void test_timeout_kills_the_group_even_when_sigterm_is_ignored(void)
{
    char dir[512];
    /* the shell ignores SIGTERM and so does its sleep: SIGKILL after the grace period */
    kb_trial_pool_opts o =
        opts_for("timeout", "trap '' TERM; echo '{\"step\":1,\"v\":0.1}'; sleep 5; sleep 5",
                 dir, sizeof dir);
    o.objective = "v";
    o.timeout_s = 0.3;
    o.kill_grace_s = 0.2;
    kb_trial_result r;
    size_t n_progress;
    run_one(&r, &n_progress, &o, NULL, 0, NULL, 0);
    CHECK(r.status == KB_RUN_STATUS_FAILED);
    CHECK_STR(r.reason, "timeout after 0.3 s");
    CHECK(r.term_signal == SIGKILL);
    CHECK(r.cost_s >= 0.3); /* killed (SIGKILL above), not finished */
    CHECK(metric_named(&r, "v") == 0.1);
    kb_trial_result_release(&r);
}

static void test_idle_trial_is_stopped(void)
{
    char dir[512];
    /* silent after its first line: stopped by the idle timeout, long before its sleep ends */
    kb_trial_pool_opts o =
        opts_for("idle", "echo '{\"step\":1,\"v\":0.1}'; sleep 30", dir, sizeof dir);
    o.objective = "v";
    o.idle_timeout_s = 0.3;
    kb_trial_result r;
    size_t n_progress;
    run_one(&r, &n_progress, &o, NULL, 0, NULL, 0);
    CHECK(r.status == KB_RUN_STATUS_FAILED);
    CHECK_STR(r.reason, "no output for 0.3 s");
    CHECK(r.term_signal == SIGTERM && r.cost_s >= 0.3);
    kb_trial_result_release(&r);

    /* output on either stream resets the clock: 4 lines 50 ms apart, idle limit 1 s */
    o = opts_for("busy",
                 "for i in 1 2 3 4; do echo \"{\\\"step\\\":$i,\\\"v\\\":1}\"; sleep 0.05; "
                 "echo tick >&2; done",
                 dir, sizeof dir);
    o.objective = "v";
    o.idle_timeout_s = 1.0;
    run_one(&r, &n_progress, &o, NULL, 0, NULL, 0);
    CHECK(r.status == KB_RUN_STATUS_OK);
    CHECK(r.n_curve == 1 && r.curve[0].n == 4);
    kb_trial_result_release(&r);
}

static void test_regex_metrics_with_and_without_names(void)
{
    char dir[512];
    kb_trial_pool_opts o = opts_for(
        "regex",
        "printf '\\nepoch 1 loss=0.9 acc=0.5\\nnoise line\\n\\nepoch 2 loss=nan acc=0.7\\n"
        "epoch 3 loss=0.4 acc=bad\\n'",
        dir, sizeof dir);
    o.objective = "acc";
    o.metric_regex = "([a-z_]+)=([-+0-9.eE]+|nan|inf|bad)";
    o.step_regex = "^epoch ([0-9]+)";
    kb_trial_result r;
    size_t n_progress;
    run_one(&r, &n_progress, &o, NULL, 0, NULL, 0);
    CHECK(r.status == KB_RUN_STATUS_OK);
    CHECK(r.objective == 0.7);
    const kb_series *acc = series_named(&r, "acc");
    const kb_series *loss = series_named(&r, "loss");
    CHECK(acc != NULL && acc->n == 2 && loss != NULL && loss->n == 3);
    if (acc != NULL && acc->n == 2) {
        CHECK(acc->steps[0] == 1 && acc->steps[1] == 2 && acc->values[1] == 0.7);
    }
    if (loss != NULL && loss->n == 3) {
        CHECK(isnan(loss->values[1]) && loss->steps[2] == 3 && loss->values[2] == 0.4);
    }
    kb_trial_result_release(&r);

    /* one group: the value, named by the caller; steps count the metric lines; stderr */
    o = opts_for("regex1",
                 "echo 'val-auc:0.61' >&2; echo 'x'; echo 'round val-auc:0.72' >&2; "
                 "echo 'val-auc:0.70' >&2",
                 dir, sizeof dir);
    o.objective = "val_auc";
    o.metric_regex = "val-auc:([0-9.]+)";
    o.metric_name = "val_auc";
    o.parse = KB_TRIAL_PARSE_STDERR;
    run_one(&r, &n_progress, &o, NULL, 0, NULL, 0);
    CHECK(r.status == KB_RUN_STATUS_OK);
    CHECK(r.objective == 0.70);
    acc = series_named(&r, "val_auc");
    CHECK(acc != NULL && acc->n == 3);
    if (acc != NULL && acc->n == 3) {
        CHECK(acc->steps[0] == 1 && acc->steps[2] == 3 && acc->values[1] == 0.72);
    }
    kb_trial_result_release(&r);
}

static void test_lines_split_across_reads(void)
{
    /* each line arrives in two writes, 50 ms apart: parsed once whole */
    kb_trial_result r;
    expect_outcome(&r, "split-json",
                   "printf '{\"step\":1,\"v\":0.'; sleep 0.05; printf '25}\\n{\"st'; "
                   "sleep 0.05; printf 'ep\":2,\"v\":0.5}'",
                   "v", NULL, KB_RUN_STATUS_OK, "");
    const kb_series *v = series_named(&r, "v");
    CHECK(v != NULL && v->n == 2 && v->values[0] == 0.25 && v->values[1] == 0.5);
    kb_trial_result_release(&r);

    char dir[512];
    kb_trial_pool_opts o = opts_for(
        "split-regex", "printf 'acc=0.'; sleep 0.05; printf '75 loss=1\\nacc=0.8'", dir,
        sizeof dir);
    o.objective = "acc";
    o.metric_regex = "([a-z]+)=([0-9.]+)";
    size_t n_progress;
    run_one(&r, &n_progress, &o, NULL, 0, NULL, 0);
    CHECK(r.status == KB_RUN_STATUS_OK);
    v = series_named(&r, "acc");
    /* the last line has no newline: read when the trial ends */
    CHECK(v != NULL && v->n == 2 && v->values[0] == 0.75 && v->values[1] == 0.8);
    kb_trial_result_release(&r);
}

static void test_caffe_log_on_stderr(void)
{
    const char *data = getenv("KB_TEST_DATA");
    if (data == NULL) {
        fprintf(stderr, "test_caffe_log_on_stderr: skipped (no KB_TEST_DATA)\n");
        return;
    }
    char dir[512];
    kb_trial_pool_opts o = opts_for("caffe", "cat {data}/curve/lenet_solver.log >&2", dir,
                                    sizeof dir);
    kb_param extra[] = {sparam("data", data)};
    o.extra = extra;
    o.n_extra = 1;
    o.parse = KB_TRIAL_PARSE_STDERR; /* glog writes to stderr */
    o.objective = "val_accuracy";
    kb_trial_result r;
    size_t n_progress;
    run_one(&r, &n_progress, &o, NULL, 0, NULL, 0);
    CHECK(r.status == KB_RUN_STATUS_OK);
    const kb_series *acc = series_named(&r, "val_accuracy");
    CHECK(acc != NULL && acc->n >= 2 && acc->steps[0] == 0 && acc->values[0] == 0.0849);
    CHECK(acc != NULL && r.objective == acc->values[acc->n - 1]);
    CHECK(series_named(&r, "train_loss") != NULL && series_named(&r, "lr") != NULL);
    kb_trial_result_release(&r);

    o = opts_for("caffe-nan", "cat {data}/curve/caffe_nan.log >&2", dir, sizeof dir);
    o.extra = extra;
    o.n_extra = 1;
    o.parse = KB_TRIAL_PARSE_STDERR;
    o.objective = "val_loss";
    run_one(&r, &n_progress, &o, NULL, 0, NULL, 0);
    CHECK(r.status == KB_RUN_STATUS_DIVERGED);
    CHECK(strstr(r.reason, "objective 'val_loss' is nan at step") != NULL);
    kb_trial_result_release(&r);
}

static void test_bad_options_and_starts_are_rejected(void)
{
    kb_error err = KB_ERROR_INIT;
    char dir[512];
    kb_trial_pool *pool = NULL;
    kb_trial_pool_opts o = opts_for("bad", "run {x}", dir, sizeof dir);
    o.metric_regex = "([a-z";
    CHECK_CODE(kb_trial_pool_new(&pool, &o, &err), KB_EFORMAT);
    CHECK(pool == NULL && strstr(err.msg, "metric regex") != NULL);
    o.metric_regex = "val:([0-9.]+)";
    CHECK_CODE(kb_trial_pool_new(&pool, &o, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "one group") != NULL);
    o.metric_regex = NULL;
    o.template_path = "/nonexistent/solver.tmpl";
    CHECK_CODE(kb_trial_pool_new(&pool, &o, &err), KB_EIO);
    o.template_path = NULL;
    o.max_jobs = 0;
    CHECK_CODE(kb_trial_pool_new(&pool, &o, &err), KB_EINVAL);
    o.max_jobs = 1;
    CHECK_OK(kb_trial_pool_new(&pool, &o, &err), err);
    kb_param config[] = {fparam("y", 1)};
    CHECK_CODE(kb_trial_pool_start(pool, 1, config, 1, NULL, 0, 0, &err), KB_EFORMAT);
    CHECK(strstr(err.msg, "unknown placeholder '{x}'") != NULL);
    CHECK(kb_trial_pool_n_running(pool) == 0 && kb_trial_pool_n_free(pool) == 1);
    CHECK_CODE(kb_trial_pool_stop(pool, 1, KB_RUN_STATUS_PRUNED, "x", &err), KB_ENOTFOUND);
    kb_trial_event ev = KB_TRIAL_EVENT_INIT;
    CHECK_OK(kb_trial_pool_next(&ev, pool, -1, &err), err); /* nothing runs: returns at once */
    CHECK(ev.kind == KB_TRIAL_EVENT_NONE);
    kb_trial_pool_free(pool);
    kb_trial_pool_free(NULL);
}

static void test_three_trials_run_at_once(void)
{
    kb_error err = KB_ERROR_INIT;
    char dir[512];
    /* each trial reports step 1, then waits for the go file, then reports step 2 */
    kb_trial_pool_opts o = opts_for(
        "parallel",
        "echo '{\"step\":1,\"v\":{trial}}'; i=0; while [ ! -e {go} ] && [ $i -lt 500 ]; do "
        "sleep 0.02; i=$((i+1)); done; echo '{\"step\":2,\"v\":{x}}'",
        dir, sizeof dir);
    char go[600];
    snprintf(go, sizeof go, "%s/go", dir);
    kb_param extra[] = {sparam("go", go)};
    o.extra = extra;
    o.n_extra = 1;
    o.max_jobs = 3;
    o.objective = "v";
    kb_trial_pool *pool = NULL;
    CHECK_OK(kb_trial_pool_new(&pool, &o, &err), err);
    if (pool == NULL) {
        return;
    }
    for (size_t t = 1; t <= 3; t++) {
        kb_param config[] = {fparam("x", 10.0 * (double)t)};
        CHECK_OK(kb_trial_pool_start(pool, t, config, 1, NULL, 0, t, &err), err);
    }
    kb_param config[] = {fparam("x", 1)};
    CHECK_CODE(kb_trial_pool_start(pool, 4, config, 1, NULL, 0, 0, &err), KB_EINVAL);
    CHECK_CODE(kb_trial_pool_start(pool, 2, config, 1, NULL, 0, 0, &err), KB_EINVAL);
    CHECK(kb_trial_pool_n_running(pool) == 3 && kb_trial_pool_n_free(pool) == 0);
    int step1[4] = {0}, done[4] = {0};
    size_t n_done = 0, n_step1 = 0;
    for (int k = 0; n_done < 3 && k < 400; k++) {
        kb_trial_event ev = KB_TRIAL_EVENT_INIT;
        CHECK_OK(kb_trial_pool_next(&ev, pool, 50, &err), err);
        if (ev.kind == KB_TRIAL_EVENT_PROGRESS && ev.trial >= 1 && ev.trial <= 3) {
            if (ev.step == 1 && !step1[ev.trial]) {
                CHECK(ev.value == (double)ev.trial);
                CHECK(kb_trial_pool_curve(pool, ev.trial) == ev.curve);
                step1[ev.trial] = 1;
                if (++n_step1 == 3) {
                    /* every trial reported while all three were running */
                    CHECK(n_done == 0 && kb_trial_pool_n_running(pool) == 3);
                    FILE *f = fopen(go, "w");
                    CHECK(f != NULL);
                    if (f != NULL) {
                        fclose(f);
                    }
                }
            }
        } else if (ev.kind == KB_TRIAL_EVENT_DONE && ev.trial >= 1 && ev.trial <= 3) {
            CHECK(ev.result.status == KB_RUN_STATUS_OK);
            CHECK(ev.result.objective == 10.0 * (double)ev.trial);
            CHECK(ev.result.n_curve == 1 && ev.result.curve[0].n == 2);
            done[ev.trial]++;
            n_done++;
        }
        kb_trial_event_release(&ev);
    }
    CHECK(n_done == 3 && done[1] == 1 && done[2] == 1 && done[3] == 1);
    CHECK(kb_trial_pool_n_running(pool) == 0);
    kb_trial_pool_free(pool);
    no_zombies();
}

static void test_stop_prunes_and_kills_grandchildren(void)
{
    kb_error err = KB_ERROR_INIT;
    char dir[512];
    /* a grandchild that ignores SIGTERM, and a leader waiting for it */
    kb_trial_pool_opts o = opts_for(
        "prune",
        "sh -c 'trap \"\" TERM; sleep 30; sleep 30' & echo $! > gc.pid; "
        "echo '{\"step\":1,\"v\":0.2}'; wait",
        dir, sizeof dir);
    o.objective = "v";
    o.kill_grace_s = 0.2;
    kb_trial_pool *pool = NULL;
    CHECK_OK(kb_trial_pool_new(&pool, &o, &err), err);
    if (pool == NULL) {
        return;
    }
    CHECK_OK(kb_trial_pool_start(pool, 5, NULL, 0, NULL, 0, 0, &err), err);
    kb_trial_result r;
    memset(&r, 0, sizeof r);
    int stopped = 0;
    for (int k = 0; k < 400; k++) {
        kb_trial_event ev = KB_TRIAL_EVENT_INIT;
        CHECK_OK(kb_trial_pool_next(&ev, pool, 50, &err), err);
        if (ev.kind == KB_TRIAL_EVENT_PROGRESS && !stopped) {
            CHECK(ev.trial == 5 && ev.step == 1 && ev.value == 0.2);
            CHECK_OK(kb_trial_pool_stop(pool, 5, KB_RUN_STATUS_PRUNED, "pruned at step 1: test",
                                        &err),
                     err);
            /* a second stop keeps the first reason */
            CHECK_OK(kb_trial_pool_stop(pool, 5, KB_RUN_STATUS_FAILED, "other", &err), err);
            stopped = 1;
        } else if (ev.kind == KB_TRIAL_EVENT_DONE) {
            r = ev.result;
            memset(&ev.result, 0, sizeof ev.result);
            kb_trial_event_release(&ev);
            break;
        }
        kb_trial_event_release(&ev);
    }
    CHECK(stopped);
    CHECK(r.status == KB_RUN_STATUS_PRUNED);
    CHECK_STR(r.reason, "pruned at step 1: test");
    CHECK(metric_named(&r, "v") == 0.2);
    const char *pid_text = r.trial_dir != NULL ? read_text(r.trial_dir, "gc.pid") : NULL;
    CHECK(pid_text != NULL);
    if (pid_text != NULL) {
        long gc = strtol(pid_text, NULL, 10);
        CHECK(gc > 0 && process_dead(gc));
    }
    kb_trial_result_release(&r);
    kb_trial_pool_free(pool);
    no_zombies();

    /* a leader that exits normally leaves a background child holding the pipe: it is killed */
    o = opts_for("orphan", "sleep 30 & echo $! > gc.pid; echo '{\"step\":1,\"v\":1}'", dir,
                 sizeof dir);
    o.objective = "v";
    size_t n_progress;
    run_one(&r, &n_progress, &o, NULL, 0, NULL, 0);
    CHECK(r.status == KB_RUN_STATUS_OK);
    pid_text = r.trial_dir != NULL ? read_text(r.trial_dir, "gc.pid") : NULL;
    CHECK(pid_text != NULL);
    if (pid_text != NULL) {
        CHECK(process_dead(strtol(pid_text, NULL, 10)));
    }
    kb_trial_result_release(&r);

    /* freeing a pool with live trials kills and reaps them at once */
    o = opts_for("free", "sleep 30", dir, sizeof dir);
    o.max_jobs = 2;
    CHECK_OK(kb_trial_pool_new(&pool, &o, &err), err);
    if (pool != NULL) {
        CHECK_OK(kb_trial_pool_start(pool, 1, NULL, 0, NULL, 0, 0, &err), err);
        CHECK_OK(kb_trial_pool_start(pool, 2, NULL, 0, NULL, 0, 0, &err), err);
        kb_trial_pool_free(pool);
    }
    no_zombies();
}

static void test_template_is_rendered_into_the_trial_dir(void)
{
    char dir[512];
    kb_error err = KB_ERROR_INIT;
    char tmpl[600];
    snprintf(tmpl, sizeof tmpl, "%s/solver.prototxt.tmpl", work_root);
    FILE *f = fopen(tmpl, "w");
    CHECK(f != NULL);
    if (f == NULL) {
        return;
    }
    fputs("base_lr: BASE_LR\nmax_iter: {budget}\ntrial: {trial}\n", f);
    fclose(f);
    kb_trial_pool_opts o =
        opts_for("template", "cat {config_file} >&2; echo '{\"final\":{\"v\":1}}'", dir,
                 sizeof dir);
    o.template_path = tmpl;
    kb_param config[] = {fparam("base_lr", 0.001)};
    kb_param fid[] = {iparam("max_iter", 500)};
    kb_trial_result r;
    size_t n_progress;
    run_one(&r, &n_progress, &o, config, 1, fid, 1);
    CHECK(r.status == KB_RUN_STATUS_OK);
    if (r.trial_dir != NULL) {
        const char *text = read_text(r.trial_dir, "solver.prototxt");
        CHECK(text != NULL && strcmp(text, "base_lr: 0.001\nmax_iter: 500\ntrial: 1\n") == 0);
        text = read_text(r.trial_dir, "stderr.log");
        CHECK(text != NULL && strcmp(text, "base_lr: 0.001\nmax_iter: 500\ntrial: 1\n") == 0);
    }
    kb_trial_result_release(&r);

    /* a second trial 1 gets a fresh directory, not the old one */
    run_one(&r, &n_progress, &o, config, 1, fid, 1);
    CHECK(r.trial_dir != NULL && strstr(r.trial_dir, "/trial-0001-2") != NULL);
    kb_trial_result_release(&r);
    (void)err;
}

static void test_xgboost_cli_driven_by_a_template(void)
{
    const char *data = getenv("KB_TEST_DATA");
    if (access("/usr/bin/xgboost", X_OK) != 0 || data == NULL) {
        fprintf(stderr, "test_xgboost_cli_driven_by_a_template: skipped (no /usr/bin/xgboost "
                        "or KB_TEST_DATA)\n");
        return;
    }
    char data_dir[600], tmpl[700];
    snprintf(data_dir, sizeof data_dir, "%s/trial", data);
    snprintf(tmpl, sizeof tmpl, "%s/xgboost.conf.tmpl", data_dir);
    char dir[512];
    kb_trial_pool_opts o = opts_for("xgboost", "/usr/bin/xgboost {config_file}", dir,
                                    sizeof dir);
    o.template_path = tmpl;
    o.objective = "test-rmse";
    o.metric_regex = "([a-z]+-[a-z]+):([-+0-9.eE]+|nan|inf)";
    o.step_regex = "\\[([0-9]+)\\][[:space:]]";
    o.parse = KB_TRIAL_PARSE_STDERR; /* XGBoost logs its evaluation to stderr */
    kb_param extra[] = {sparam("data_dir", data_dir)};
    o.extra = extra;
    o.n_extra = 1;
    double rmse[2] = {NAN, NAN};
    for (int k = 0; k < 2; k++) {
        kb_param config[] = {fparam("eta", k == 0 ? 0.3 : 0.01), iparam("max_depth", 3)};
        kb_param fid[] = {iparam("num_round", 20)};
        kb_trial_result r;
        size_t n_progress;
        run_one(&r, &n_progress, &o, config, 2, fid, 1);
        CHECK(r.status == KB_RUN_STATUS_OK);
        CHECK(r.n_curve == 2);
        const kb_series *s = series_named(&r, "test-rmse");
        CHECK(s != NULL && s->n == 20);
        if (s != NULL && s->n == 20) {
            CHECK(s->steps[0] == 0 && s->steps[19] == 19);
            CHECK(s->values[19] < s->values[0]); /* boosting reduces the error */
            CHECK(r.objective == s->values[19]);
        }
        CHECK(isfinite(metric_named(&r, "train-rmse")));
        if (r.trial_dir != NULL) {
            const char *conf = read_text(r.trial_dir, "xgboost.conf");
            CHECK(conf != NULL && strstr(conf, k == 0 ? "eta = 0.3\n" : "eta = 0.01\n") != NULL);
            CHECK(conf != NULL && strstr(conf, "max_depth = 3\nnum_round = 20\n") != NULL);
            CHECK(access("model.bin", F_OK) != 0); /* written in the trial dir, not here */
        }
        rmse[k] = r.objective;
        kb_trial_result_release(&r);
    }
    /* 20 rounds at eta 0.01 barely move from the mean; eta 0.3 fits far better */
    CHECK(rmse[0] < 0.5 * rmse[1]);
}

static void test_kb_train_json_is_read_as_the_protocol(void)
{
    const char *kb = getenv("KB_BIN");
    const char *src = getenv("KB_SRC");
    if (kb == NULL || src == NULL || access(kb, X_OK) != 0) {
        fprintf(stderr, "test_kb_train_json_is_read_as_the_protocol: skipped (no KB_BIN)\n");
        return;
    }
    char dir[512];
    kb_trial_pool_opts o =
        opts_for("kbtrain", "{kb} train svm {src}/datasets/statlog_heart.csv.gz --config "
                            "{config_json} --folds {folds} --seed {seed} --json",
                 dir, sizeof dir);
    kb_param extra[] = {sparam("kb", kb), sparam("src", src)};
    o.extra = extra;
    o.n_extra = 2;
    o.objective = "accuracy";
    kb_param config[] = {fparam("C", 10.0), sparam("kernel", "rbf")};
    kb_param fid[] = {iparam("folds", 3)};
    kb_trial_result r;
    size_t n_progress;
    run_one(&r, &n_progress, &o, config, 2, fid, 1);
    CHECK(r.status == KB_RUN_STATUS_OK);
    CHECK_STR(r.reason, "");
    CHECK(r.objective > 0.5 && r.objective <= 1.0);
    const kb_series *s = series_named(&r, "accuracy");
    CHECK(s != NULL && s->n == 3 && s->steps[0] == 1 && s->steps[2] == 3);
    CHECK(n_progress >= 1);
    kb_trial_result_release(&r);
}

/* ---- robustness ---- */

static int sweep_render(void)
{
    kb_param config[] = {fparam("base_lr", 0.01), sparam("opt", "a b"), iparam("n", 3)};
    kb_param fid[] = {iparam("epochs", 9)};
    kb_trial_vars v = KB_TRIAL_VARS_INIT;
    v.config = config;
    v.n_config = 3;
    v.fidelity = fid;
    v.n_fidelity = 1;
    char *out = NULL;
    int rc = kb_trial_render(&out, "x BASE_LR {opt} {config_json} {budget} {{", NULL, &v,
                             KB_TRIAL_RENDER_SHELL | KB_TRIAL_RENDER_TOKENS, NULL);
    if (rc == KB_OK) {
        CHECK_STR(out, "x 0.01 'a b' '{\"base_lr\":0.01,\"opt\":\"a b\",\"n\":3}' 9 {");
    } else {
        CHECK(out == NULL);
    }
    kb_free(out);
    return rc;
}

/* One whole trial (regex or JSON lines) through the pool; KB_ENOMEM if any call said so. */
static int sweep_trial(int regex)
{
    char dir[512];
    kb_trial_pool_opts o = opts_for(
        regex ? "sweep-re" : "sweep",
        regex ? "printf 'it 1 a=0.5 b=1\\nit 2 a=0.25 b=nan\\n'"
              : "printf '{\"step\":1,\"a\":0.5}\\n{\"step\":2,\"a\":0.25,\"b\":null}\\n"
                "{\"final\":{\"a\":0.25}}\\n'",
        dir, sizeof dir);
    o.objective = "a";
    if (regex) {
        o.metric_regex = "([a-z])=([0-9.]+|nan)";
        o.step_regex = "^it ([0-9]+)";
    }
    kb_trial_pool *pool = NULL;
    int rc = kb_trial_pool_new(&pool, &o, NULL);
    if (rc != KB_OK) {
        CHECK(pool == NULL);
        return rc;
    }
    kb_param config[] = {fparam("x", 1)};
    rc = kb_trial_pool_start(pool, 1, config, 1, NULL, 0, 0, NULL);
    int bad = KB_OK, done = 0;
    for (int k = 0; rc == KB_OK && !done && k < 400; k++) {
        kb_trial_event ev = KB_TRIAL_EVENT_INIT;
        int nrc = kb_trial_pool_next(&ev, pool, 50, NULL);
        if (nrc != KB_OK) {
            bad = nrc;
        }
        if (ev.kind == KB_TRIAL_EVENT_DONE) {
            done = 1;
            /* a clean run gives the whole result */
            if (bad == KB_OK) {
                CHECK(ev.result.status == KB_RUN_STATUS_OK && ev.result.objective == 0.25);
                CHECK(ev.result.n_curve == 2);
            }
        }
        kb_trial_event_release(&ev);
    }
    CHECK(rc != KB_OK || done);
    kb_trial_pool_free(pool);
    no_zombies();
    return rc != KB_OK ? rc : bad;
}

static int sweep_trial_json(void)
{
    return sweep_trial(0);
}

static int sweep_trial_regex(void)
{
    return sweep_trial(1);
}

static void test_out_of_memory_is_reported_and_cleaned_up(void)
{
    CHECK_ENOMEM_SWEEP(sweep_render, 200);
    CHECK_ENOMEM_SWEEP(sweep_trial_json, 300);
    CHECK_ENOMEM_SWEEP(sweep_trial_regex, 300);
}

/* Random text with many braces and tokens renders or fails cleanly, never crashes. */
static void test_render_survives_random_text(void)
{
    static const char alphabet[] = "{}{}$$_ABLRbaselr_BASE_LR\n'\"x.-9";
    kb_param config[] = {fparam("base_lr", 0.5), sparam("x", "it's"), iparam("b", 1)};
    kb_trial_vars v = KB_TRIAL_VARS_INIT;
    v.config = config;
    v.n_config = 3;
    uint64_t state = 12345;
    char text[64];
    size_t n_ok = 0;
    for (int k = 0; k < 3000; k++) {
        size_t len = (size_t)(k % 40);
        for (size_t i = 0; i < len; i++) {
            state = state * 6364136223846793005u + 1442695040888963407u;
            text[i] = alphabet[(state >> 33) % (sizeof alphabet - 1)];
        }
        text[len] = '\0';
        char *out = NULL;
        kb_error err = KB_ERROR_INIT;
        int rc = kb_trial_render(&out, text, "fuzz", &v, (unsigned)(k % 4), &err);
        CHECK(rc == KB_OK || (rc == KB_EFORMAT && out == NULL && strstr(err.msg, "fuzz:") != NULL &&
                                   strstr(err.msg, "unknown placeholder") != NULL));
        n_ok += rc == KB_OK;
        kb_free(out);
    }
    CHECK(n_ok > 100);
}

static size_t open_fds(void)
{
    size_t n = 0;
    for (int fd = 0; fd < 1024; fd++) {
        n += fcntl(fd, F_GETFD) != -1;
    }
    return n;
}

int main(void)
{
    size_t fds_before = open_fds();
    const char *tmp = getenv("TMPDIR");
    snprintf(work_root, sizeof work_root, "%s/kb-test-trial-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(work_root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_render_placeholders_format_values_exactly();
    test_render_quotes_shell_metacharacters_and_config_json();
    test_render_caffe_tokens_are_whole_words();
    test_render_unknown_placeholder_names_it_and_its_position();
    test_json_trial_reports_curve_and_final();
    test_failures_are_reported_with_their_reason();
    test_nan_objective_is_diverged();
    test_timeout_kills_the_group_even_when_sigterm_is_ignored();
    test_idle_trial_is_stopped();
    test_regex_metrics_with_and_without_names();
    test_caffe_log_on_stderr();
    test_lines_split_across_reads();
    test_bad_options_and_starts_are_rejected();
    test_three_trials_run_at_once();
    test_stop_prunes_and_kills_grandchildren();
    test_template_is_rendered_into_the_trial_dir();
    test_xgboost_cli_driven_by_a_template();
    test_kb_train_json_is_read_as_the_protocol();
    /* again without pidfds: children found by the waitid tick, as on non-Linux systems */
    setenv("KB_TRIAL_NO_PIDFD", "1", 1);
    test_json_trial_reports_curve_and_final();
    test_failures_are_reported_with_their_reason();
    test_three_trials_run_at_once();
    test_stop_prunes_and_kills_grandchildren();
    unsetenv("KB_TRIAL_NO_PIDFD");
    test_out_of_memory_is_reported_and_cleaned_up();
    test_render_survives_random_text();
    CHECK(open_fds() == fds_before); /* no pipe or log file left open */
    if (check_failures == 0) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", work_root);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", work_root);
        }
    } else {
        fprintf(stderr, "trial directories kept in %s\n", work_root);
    }
    return check_exit();
}
