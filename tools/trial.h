/*
 * kb_trial: the process side of `kb search` (issue 6, "Running a search"; docs/FORMAT.md,
 * "Trial protocol"). A trial is any shell command. The runner
 *
 * 1. renders the command (and optionally a config-file template) for one configuration:
 *    `{name}` placeholders for every configuration and fidelity parameter, the built-ins
 *    `{trial}`, `{trial_dir}`, `{seed}`, `{config_json}`, `{config_file}`, `{budget}`, `{cwd}`,
 *    and caller-defined constants; in templates also Caffe-style tokens (`BASE_LR` for
 *    parameter `base_lr`, whole words only);
 * 2. runs up to P trials at once as `/bin/sh -c CMD`, each in its own process group with its
 *    own fresh directory as cwd, stdin from /dev/null, stdout and stderr saved to
 *    `stdout.log` / `stderr.log` in that directory;
 * 3. parses the output as it arrives (engine/curveio.h: JSON lines as `kb train --json`
 *    writes them, Caffe logs, CSV; or a POSIX extended regex for `name=value` style logs)
 *    into a learning curve, and reports PROGRESS events so the caller can judge and prune;
 * 4. ends every trial with a DONE event carrying a result: status ok / failed / diverged /
 *    pruned with a one-line reason, final metrics, the curve as kb_series, cost_s (wall
 *    clock), exit status. A trial that fails is reported, never dropped.
 *
 * Invariants: no threads and no signal handlers are installed; the loop notices a child's exit
 * through a pidfd in its poll set (Linux >= 5.3; elsewhere by polling waitid every 100 ms) and
 * reaps it with waitpid, so the pool never leaves a zombie once every trial has been DONE or
 * the pool is freed. When a trial's main process ends, whatever is left of its
 * process group (a backgrounded grandchild) is killed with SIGKILL before the main process is
 * reaped, so the group id cannot have been reused. A timeout or a stop sends SIGTERM to the
 * whole group and SIGKILL after a grace period.
 *
 * Use (error handling left out):
 *
 *     kb_trial_pool_opts o = KB_TRIAL_POOL_OPTS_INIT;
 *     o.command = "python train.py --lr {lr} --epochs {epochs} --out {trial_dir}";
 *     o.max_jobs = 4; o.timeout_s = 600; o.objective = "val_accuracy";
 *     kb_trial_pool_new(&pool, &o, &err);
 *     while (more trials to run || kb_trial_pool_n_running(pool) > 0) {
 *         while (more trials to run && kb_trial_pool_n_free(pool) > 0)
 *             kb_trial_pool_start(pool, k++, config, n_config, fidelity, n_fidelity, seed, &err);
 *         kb_trial_event ev = KB_TRIAL_EVENT_INIT;
 *         kb_trial_pool_next(&ev, pool, 200, &err);
 *         if (interrupted) { no more trials; stop each running one: FAILED, "interrupted"; }
 *         else if (ev.kind == KB_TRIAL_EVENT_PROGRESS && should_prune(ev.curve))
 *             kb_trial_pool_stop(pool, ev.trial, KB_RUN_STATUS_PRUNED, why, &err);
 *         else if (ev.kind == KB_TRIAL_EVENT_DONE)
 *             kb_trial_result_move_to_run(&run, &ev.result), store the run;
 *         kb_trial_event_release(&ev);
 *     }
 *     kb_trial_pool_free(pool);
 *
 * Children run in their own process groups, so a terminal's Ctrl-C (SIGINT to the foreground
 * group) reaches kb only: on interrupt the caller stops every trial (kb_trial_pool_stop with
 * FAILED, "interrupted") and drains their DONE events, or frees the pool. Do not reap children
 * elsewhere in the process (waitpid(-1, ...) or SIGCHLD set to SIG_IGN): the pool reaps its own.
 * A grandchild that starts its own session or process group (a daemon) escapes the group kill.
 *
 * Not thread-safe: one pool is driven by one thread. The pool forks, so call it from a
 * process that holds no lock another thread could need in the child (kb is single-threaded
 * where it runs trials).
 */
#ifndef KB_TOOLS_TRIAL_H
#define KB_TOOLS_TRIAL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/error.h"
#include "engine/core/log.h"
#include "engine/core/space.h"
#include "engine/curve.h"
#include "engine/curveio.h"
#include "kb/record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Rendering                                                                                  */

/** What `{name}` placeholders can refer to. Every pointer is borrowed. */
typedef struct kb_trial_vars {
    const kb_param *config;    /* the configuration; `{name}` for each */
    size_t n_config;
    const kb_param *fidelity;  /* e.g. epochs=9; `{name}` for each, `{budget}` = the first */
    size_t n_fidelity;
    const kb_param *extra;     /* caller constants (data paths, ...); `{name}` for each */
    size_t n_extra;
    size_t trial;              /* `{trial}` */
    uint64_t seed;             /* `{seed}` */
    const char *trial_dir;     /* `{trial_dir}`; NULL: not available */
    const char *config_file;   /* `{config_file}`; NULL: not available */
    const char *cwd;           /* `{cwd}`; NULL: not available */
} kb_trial_vars;

#define KB_TRIAL_VARS_INIT {NULL, 0, NULL, 0, NULL, 0, 0, 0, NULL, NULL, NULL}

enum kb_trial_render_flags {
    /*
     * The result is a shell command: a substituted value that holds any character outside
     * [A-Za-z0-9_.,:/=+@%^-] is single-quoted ('it'\''s'); `{config_json}` is always quoted.
     */
    KB_TRIAL_RENDER_SHELL = 1u << 0,
    /*
     * The result is a config file: also replace Caffe-style tokens, each parameter's name
     * upper-cased (`base_lr` -> `BASE_LR`), where the token is a whole word (not preceded or
     * followed by a letter, digit or '_'). Values are substituted bare.
     */
    KB_TRIAL_RENDER_TOKENS = 1u << 1
};

/**
 * Render `text` (named `source` in messages) with `vars`.
 *
 * A placeholder is `{` IDENT `}` with IDENT = [A-Za-z_][A-Za-z0-9_.-]*; `{{` is a literal `{`;
 * any other `{` (a prototxt block, awk's `{print}`, the shell's `${HOME}`) is copied as is.
 * Name lookup order: configuration, fidelity (so a space's own `seed` parameter wins),
 * built-ins, extra. An inactive parameter (type NONE) renders as an empty string ('' in a
 * shell command). Values: floats in the shortest form that parses back to the same double
 * (%.17g at most; an integral float keeps a ".0", non-finite ones are nan/inf/-inf), ints as
 * ints, strings as they are, booleans true/false; `{config_json}` is the configuration as one
 * JSON object in the same forms (keys in the configuration's order, inactive parameters left
 * out, non-finite numbers as null).
 *
 * @param[out] out    the rendered text; caller owns it, free with kb_free()
 * @param[in]  flags  kb_trial_render_flags
 * @return KB_OK; KB_EFORMAT for an unknown placeholder ("SOURCE:LINE:COL: unknown
 *         placeholder '{x}' (not a parameter or built-in)", also when `{trial_dir}`,
 *         `{config_file}`, `{cwd}` or `{budget}` have no value); KB_ENOMEM.
 */
int kb_trial_render(char **out, const char *text, const char *source, const kb_trial_vars *vars,
                    unsigned flags, kb_error *err);

/**
 * One value in the rendering's text form (see kb_trial_render), appended to nothing: caller
 * owns `*out` (kb_free). KB_OK; KB_EINVAL for a value of type NONE; KB_ENOMEM.
 */
int kb_trial_format_value(char **out, const kb_value *v, kb_error *err);

/* ------------------------------------------------------------------------------------------ */
/* The pool                                                                                   */

/** Which of a child's streams feed the metric parser (both are always saved to files). */
enum kb_trial_parse_flags {
    KB_TRIAL_PARSE_STDOUT = 1u << 0,
    KB_TRIAL_PARSE_STDERR = 1u << 1 /* e.g. XGBoost and glog write their logs to stderr */
};

typedef struct kb_trial_pool_opts {
    int version;
    const char *command;        /* required: the trial command with placeholders */
    const char *template_path;  /* a config file rendered into each trial dir, or NULL; the
                                   copy is named after it without a ".tmpl"/".in" suffix and
                                   is `{config_file}` */
    const char *work_dir;       /* trial dirs `trial-NNNN` are made under it (created if
                                   missing); NULL: "kb-trials" */
    size_t max_jobs;            /* P, trials running at once (default 1) */
    double timeout_s;           /* per trial, wall clock; <= 0: none (default 0) */
    double idle_timeout_s;      /* stop a trial that printed nothing (stdout or stderr) for
                                   this long: failed, "no output for T s"; <= 0: none (0) */
    double kill_grace_s;        /* SIGTERM to SIGKILL (default 5) */
    const char *objective;      /* the metric optimised; NULL: any metric will do */
    kb_curveio_format format;   /* stdout format without a regex (default AUTO) */
    const char *metric_regex;   /* POSIX ERE, or NULL: two groups = (name)(value), one group
                                   = (value) named `metric_name`; matched repeatedly per line */
    const char *metric_name;    /* the name for a one-group regex */
    const char *step_regex;     /* ERE whose group 1 is the step (e.g. "^\\[([0-9]+)\\]"); a
                                   metric line takes the last step seen; NULL or no step yet:
                                   each metric line is the previous step + 1, from 1 */
    unsigned parse;             /* kb_trial_parse_flags (default STDOUT) */
    const kb_param *extra;      /* constants for placeholders (borrowed until pool_free) */
    size_t n_extra;
    const char *shell;          /* default "/bin/sh" */
    kb_log log;                 /* warnings: bad metric lines, "trial 3: killed (timeout)" */
} kb_trial_pool_opts;

#define KB_TRIAL_POOL_OPTS_VERSION 1
#define KB_TRIAL_POOL_OPTS_INIT                                                              \
    {KB_TRIAL_POOL_OPTS_VERSION, NULL, NULL, NULL, 1, 0.0, 0.0, 5.0, NULL,                    \
     KB_CURVEIO_FORMAT_AUTO, NULL, NULL, NULL, KB_TRIAL_PARSE_STDOUT, NULL, 0, NULL,          \
     {NULL, NULL}}

/** The outcome of one trial. Every pointer is owned; a zeroed result is empty. */
typedef struct kb_trial_result {
    size_t trial;            /* the caller's trial number */
    kb_run_status status;    /* OK, FAILED, DIVERGED or PRUNED (never RUNNING) */
    char reason[KB_ERROR_MSG_SIZE]; /* "" when ok; else e.g. "exit status 1",
                                       "killed by signal 9", "timeout after 30 s",
                                       "no output for 60 s",
                                       "objective 'val_accuracy' never reported",
                                       "objective 'val_loss' is nan at step 12", or the
                                       stop reason */
    int exit_code;           /* the main process's exit status; -1 when killed by a signal */
    int term_signal;         /* the signal that killed it; 0 when it exited */
    double cost_s;           /* wall clock from start to exit */
    int64_t started_at, finished_at; /* microseconds since the Unix epoch */
    double objective;        /* the objective's final value (NaN: none or non-finite) */
    kb_metric *metrics;      /* final metrics sorted by name: the `{"final": {...}}` line
                                when present, else the last value of each series */
    size_t n_metrics;
    kb_series *curve;        /* the learning curve, sorted by metric name; a reported NaN
                                is a NaN point at its first step; steps rounded to integers */
    size_t n_curve;
    char *trial_dir;         /* absolute path of the trial's directory */
    char *command;           /* the rendered command */
} kb_trial_result;

/** Free the contents; the struct is zeroed. */
void kb_trial_result_release(kb_trial_result *r);

/**
 * Move status, final metrics, curve, cost and times from `r` into `run` (whose previous
 * values of those fields are freed); `r` keeps its reason and paths. The caller sets ids,
 * configuration, objective and direction. Never fails.
 */
void kb_trial_result_move_to_run(kb_run *run, kb_trial_result *r);

typedef enum kb_trial_event_kind {
    KB_TRIAL_EVENT_NONE = 0,     /* nothing happened before the timeout, or a signal came */
    KB_TRIAL_EVENT_PROGRESS = 1, /* a trial's curve grew */
    KB_TRIAL_EVENT_DONE = 2      /* a trial ended: `result` is filled */
} kb_trial_event_kind;

typedef struct kb_trial_event {
    kb_trial_event_kind kind;
    size_t trial;
    /*
     * PROGRESS: the last step of the curve and the objective's value there (NaN when not
     * reported at that step); several new steps read at once give one event. `curve` is the
     * trial's curve so far, borrowed: valid until the next call on the pool.
     */
    double step;
    double value;
    const kb_curve *curve;
    /* DONE: owned by the event; release with kb_trial_event_release (or move fields out) */
    kb_trial_result result;
} kb_trial_event;

#define KB_TRIAL_EVENT_INIT {KB_TRIAL_EVENT_NONE, 0, 0.0, 0.0, NULL, {0}}

/** Release an event's result; the event becomes NONE. */
void kb_trial_event_release(kb_trial_event *ev);

/** A pool of trial processes (opaque). */
typedef struct kb_trial_pool kb_trial_pool;

/**
 * Create a pool: checks the options, compiles the regexes, reads the template, creates the
 * work dir. No process is started.
 * @return KB_OK; KB_EINVAL (no command, max_jobs 0, a one-group regex without metric_name);
 *         KB_EFORMAT (a regex that does not compile: "metric regex: <regerror>");
 *         KB_EIO (the template cannot be read, the work dir cannot be made); KB_ENOMEM.
 * Caller owns `*out`; free with kb_trial_pool_free().
 */
int kb_trial_pool_new(kb_trial_pool **out, const kb_trial_pool_opts *opts, kb_error *err);

/**
 * Kill every live trial (SIGKILL to its group), reap it and free the pool. Results of
 * unfinished trials are dropped: to record them, stop them and drain the DONE events first.
 * NULL is a no-op.
 */
void kb_trial_pool_free(kb_trial_pool *pool);

/**
 * Start trial number `trial` (unique among running trials; also `{trial}` and the directory
 * name) with a configuration, its fidelity and seed: make a fresh directory
 * `work_dir/trial-NNNN` (`-2`, `-3`, ... appended if it exists), render the template and the
 * command, fork and exec. The arrays are copied.
 * @return KB_OK; KB_EINVAL when the pool is full (see kb_trial_pool_n_free) or `trial` is
 *         running; KB_EFORMAT when rendering fails (unknown placeholder); KB_EIO when the
 *         directory, the template copy, the log files, the pipes or fork fail; KB_ENOMEM.
 *         Nothing runs after a failure.
 */
int kb_trial_pool_start(kb_trial_pool *pool, size_t trial, const kb_param *config,
                        size_t n_config, const kb_param *fidelity, size_t n_fidelity,
                        uint64_t seed, kb_error *err);

/**
 * Wait up to `timeout_ms` (-1: until an event; 0: poll) for the next event. Timeouts and
 * grace periods are enforced inside this call, so call it regularly while trials run.
 * Returns at once with kind NONE when no trial is running and no event is pending, and with
 * kind NONE when a signal interrupts the wait (check your interrupt flag).
 * @param[out] ev  filled; release with kb_trial_event_release
 * @return KB_OK; KB_ENOMEM while parsing (the trial goes on; its curve keeps what it has);
 *         KB_EIO when polling fails.
 */
int kb_trial_pool_next(kb_trial_event *ev, kb_trial_pool *pool, int timeout_ms, kb_error *err);

/**
 * Stop trial `trial` (prune it, or shut down on Ctrl-C): SIGTERM to its process group now,
 * SIGKILL after the grace period. Its DONE event follows with `status` (e.g. PRUNED or
 * FAILED) and `reason` (copied; e.g. "pruned at step 30: diverging"), whatever its exit.
 * Stopping a trial twice keeps the first status and reason; a trial that has already ended
 * (its DONE event not yet taken) keeps its own result.
 * @return KB_OK; KB_ENOTFOUND when `trial` is not running; KB_EINVAL for status OK/RUNNING.
 */
int kb_trial_pool_stop(kb_trial_pool *pool, size_t trial, kb_run_status status,
                       const char *reason, kb_error *err);

/** Trials running (started and not yet DONE). */
size_t kb_trial_pool_n_running(const kb_trial_pool *pool);
/** Trials that can still be started now: max_jobs - n_running. */
size_t kb_trial_pool_n_free(const kb_trial_pool *pool);
/** The curve of a running trial so far (borrowed until the next call), or NULL. */
const kb_curve *kb_trial_pool_curve(const kb_trial_pool *pool, size_t trial);

#ifdef __cplusplus
}
#endif

#endif
