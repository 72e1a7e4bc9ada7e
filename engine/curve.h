/*
 * kb_curve: a learning curve in memory, its judgement (the training monitor's verdicts and
 * traffic light), a forecast of its final value, and tuning advice.
 *
 * A curve is a table: one row per step (sorted, unique), one column per named metric series
 * (train_loss, val_loss, val_accuracy, lr, weight_norm, grad_norm, nonfinite_weights, ...).
 * A cell is NaN when the metric was not reported at that step; +-inf are kept as seen. A NaN
 * that the source did report (a Caffe "loss = nan", a JSON null) cannot be a cell value, so
 * each series records the first step and the count of reported NaNs instead.
 *
 * Judgement (kb_curve_judge) works on whatever prefix of a run is available, so a monitor or
 * a pruner can call it after every new point; it costs O(n log n) in the number of points.
 * Rules use robust statistics: a running median to smooth, Theil-Sen slopes for trends, and
 * the noise level from the median absolute deviation (MAD) of second differences. Every
 * threshold is a field of kb_curve_opts with its default documented there.
 *
 * Forecast (kb_curve_forecast): an ensemble of parametric learning-curve models after
 * T. Domhan, J. T. Springenberg, F. Hutter, "Speeding up automatic hyperparameter
 * optimization of deep neural networks by extrapolation of learning curves", IJCAI 2015
 * (pow3, pow4, log-power, exp3, exp4, Janoschek, Weibull, MMF, vapor pressure,
 * log-log-linear, ilog2, Hill), each fitted by Levenberg-Marquardt least squares and combined
 * with tempered BIC weights exp(-dBIC / (2 max(1, n/10))) (no MCMC). Each model's predictive variance is its residual
 * variance plus the delta-method variance of the extrapolation; the ensemble is a mixture of
 * normals, from which the interval and the probability of beating an incumbent come.
 *
 * Advice (kb_curve_advise): rules that turn verdicts plus the run's configuration into
 * concrete changes with numbers; kb_curve_advise_history: which configuration change fixed
 * past runs whose curves went the same way (the caller fills the past runs from the store).
 */
#ifndef KB_ENGINE_CURVE_H
#define KB_ENGINE_CURVE_H

#include <math.h>
#include <stddef.h>

#include "engine/core/error.h"
#include "engine/core/space.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* The curve                                                                                  */

/** One metric: values[i] belongs to curve->steps[i]; NaN = not reported at that step. */
typedef struct kb_curve_series {
    char *name;           /* owned */
    double *values;       /* owned; curve->cap_steps entries, the first n_steps meaningful */
    size_t n_values;      /* cells that hold a value (finite or infinite) */
    size_t n_nan;         /* NaNs the source reported (not stored as cells) */
    double first_nan_step; /* step of the first reported NaN; NaN if none */
} kb_curve_series;

/** A named number of the final line (`{"final": {...}}`). */
typedef struct kb_curve_final {
    char *name;
    double value;
} kb_curve_final;

typedef struct kb_curve {
    size_t n_steps, cap_steps;
    double *steps;            /* sorted ascending, unique */
    kb_curve_series *series;  /* in order of first appearance */
    size_t n_series;
    kb_curve_final *finals;   /* the final line's metrics */
    size_t n_finals;
    char *status;             /* the final line's status ("ok", "diverged", ...) or NULL */
    int done;                 /* a final line (or Caffe's "Optimization Done") was seen */
} kb_curve;

#define KB_CURVE_INIT {0, 0, NULL, NULL, 0, NULL, 0, NULL, 0}

/** Free the contents; a zeroed curve is a no-op. */
void kb_curve_release(kb_curve *c);

/**
 * Record `value` for metric `name` at `step` (a new row is inserted in order when the step is
 * new; a later value for the same cell replaces the earlier one). A NaN value counts as a
 * reported NaN (see the file comment), +-inf is stored.
 * @return KB_OK; KB_EINVAL for a NULL or empty name or a non-finite step; KB_ENOMEM.
 */
int kb_curve_add(kb_curve *c, double step, const char *name, double value, kb_error *err);

/** Record a final metric (replacing one of the same name). KB_ENOMEM on failure. */
int kb_curve_add_final(kb_curve *c, const char *name, double value, kb_error *err);

/** Set the final status text (copied). KB_ENOMEM on failure. */
int kb_curve_set_status(kb_curve *c, const char *status, kb_error *err);

/** Index of the series named `name`, or -1. */
long kb_curve_find(const kb_curve *c, const char *name);

/** The series named `name` (borrowed), or NULL. */
const kb_curve_series *kb_curve_get(const kb_curve *c, const char *name);

/**
 * The reported points of series `s` of curve `c` (finite and infinite; reported NaNs are not
 * points): copies up to `cap` (step, value) pairs into x and y and returns how many there are
 * in total (call with cap 0 to size the arrays).
 */
size_t kb_curve_points(const kb_curve *c, const kb_curve_series *s, double *x, double *y,
                       size_t cap);

/* ------------------------------------------------------------------------------------------ */
/* Judgement                                                                                  */

typedef enum kb_curve_verdict_kind {
    KB_CURVE_VERDICT_OVERFLOW = 0,     /* non-finite loss or weights, or an absurd magnitude */
    KB_CURVE_VERDICT_DIVERGING = 1,    /* the loss rises beyond its early level */
    KB_CURVE_VERDICT_OSCILLATING = 2,  /* no trend, large swings */
    KB_CURVE_VERDICT_UNDERFITTING = 3, /* flat at a poor level */
    KB_CURVE_VERDICT_OVERFITTING = 4,  /* validation worsens while training improves */
    KB_CURVE_VERDICT_CONVERGED = 5,    /* plateau at a good (or unknown) level */
    KB_CURVE_VERDICT_IMPROVING = 6     /* still improving: continue */
} kb_curve_verdict_kind;

#define KB_CURVE_VERDICT_COUNT 7

typedef enum kb_curve_light {
    KB_CURVE_LIGHT_GREEN = 0,  /* improving, or converged at a good level */
    KB_CURVE_LIGHT_YELLOW = 1, /* look: oscillating, overfitting, underfitting */
    KB_CURVE_LIGHT_RED = 2     /* stop now: overflow, diverging */
} kb_curve_light;

typedef enum kb_curve_mode {
    KB_CURVE_MODE_AUTO = 0, /* from the metric's name: accuracy-like names maximise */
    KB_CURVE_MODE_MIN = 1,
    KB_CURVE_MODE_MAX = 2
} kb_curve_mode;

typedef struct kb_curve_verdict {
    kb_curve_verdict_kind kind;
    double step;          /* where it was first seen (onset), in the curve's step units */
    double detected_step; /* the last step of the data on which the rule fired */
    double confidence;    /* in [0, 1] */
    char metric[64];      /* the series it was seen on */
    char detail[192];     /* one line of evidence with numbers */
} kb_curve_verdict;

/**
 * Thresholds of the rules. Scales: sigma is the noise level of a series (1.4826 x MAD of second
 * differences / sqrt 6); "gain" is the improvement of the smoothed metric from its early level
 * to its best.
 */
typedef struct kb_curve_opts {
    int version;
    const char *metric;      /* the objective series; NULL: val_accuracy, val_loss, ... */
    kb_curve_mode mode;      /* direction of the objective */
    size_t n_classes;        /* classification: number of classes (0 = unknown) */
    double ref_best;         /* best value of the objective in the task's history (NaN: none) */
    double ref_median;       /* median value in the task's history (NaN: none) */
    size_t smooth_window;    /* running-median window, points (default 5) */
    size_t min_points;       /* no trend verdict before this many points (default 6) */
    double overflow_abs;     /* a last loss above this is diverging at once (default 1e8) */
    double diverge_rel;      /* smoothed loss above early level x (1 + this) (default 0.3) */
    double diverge_back;     /* or it gave back this fraction of its gain (default 0.6) */
    size_t diverge_persist;  /* ... for this many consecutive points (default 3); also the
                                points after a blow-up past 2 ln K, and after the best
                                validation point, that the chance and overfitting rules need */
    double converge_tol;     /* plateau: within this fraction of the gain (+ 3 sigma) of the
                                end level, and the recent trend projects less (default 0.02) */
    size_t converge_points;  /* plateau length needed, points (default 3) */
    double oscillate_rel;    /* noise above this fraction of the level (of half the range
                                for an accuracy) and above a fifth of the gain, with no trend
                                over the last half (default 0.06) */
    double overfit_rel;      /* validation worse than its best by this fraction of its gain
                                (default 0.1), by 3 sigma and by 2% of its level (by this
                                fraction of its level when its best was its first point or
                                the curve has fewer than min_points points), at each of the
                                last diverge_persist raw points, with a worsening trend since
                                the best; needs only the best and diverge_persist points */
    double poor_frac;        /* with n_classes: accuracy below chance + this x (1 - chance),
                                loss (or training loss) above (1 - this) x ln K, is poor
                                (default 0.25) */
    double poor_ref_rel;     /* with ref_best: worse by this fraction of |ref_best| (0.1) */
    double stall_rel;        /* no reference: a gain below this fraction of the early level
                                is "not learning" (default 0.05) */
} kb_curve_opts;

#define KB_CURVE_OPTS_VERSION 1
/* diverge_rel, converge_tol, converge_points, oscillate_rel and overfit_rel were chosen by
 * a grid search on the TRAIN half of the labelled curves (tools/bench/bench_judge --tune);
 * the benchmark reports the HELD-OUT half (docs/BENCHMARKS.md). */
#define KB_CURVE_OPTS_INIT                                                                   \
    {KB_CURVE_OPTS_VERSION, NULL, KB_CURVE_MODE_AUTO, 0, NAN, NAN, 5, 6, 1e8, 0.3, 0.6, 3,    \
     0.02, 3, 0.06, 0.1, 0.25, 0.1, 0.05}

/** The judgement of one curve (or prefix of one). */
typedef struct kb_curve_judgement {
    kb_curve_light light;
    kb_curve_verdict *verdicts; /* owned; most severe first; at least one when n_points > 0 */
    size_t n_verdicts;
    char metric[64];            /* the objective series judged ("" when none was found) */
    int maximize;               /* the objective's direction */
    double last_step, last_value; /* last finite point of the objective */
    double best_step, best_value; /* best point of the objective */
    double noise;               /* sigma of the objective */
    size_t n_points;            /* points of the objective */
} kb_curve_judgement;

/** Free the verdict list; a zeroed judgement is a no-op. */
void kb_curve_judgement_release(kb_curve_judgement *j);

/**
 * Judge a curve (any prefix of a run). A curve with no usable series gives no verdict and
 * light GREEN; the caller can tell by n_points == 0.
 * @return KB_OK; KB_EINVAL for NULL arguments or opts->metric naming no series; KB_ENOMEM.
 * Caller owns `out`; release with kb_curve_judgement_release().
 */
int kb_curve_judge(kb_curve_judgement *out, const kb_curve *c, const kb_curve_opts *opts,
                   kb_error *err);

/** "overflow", "diverging", ... */
const char *kb_curve_verdict_name(kb_curve_verdict_kind k);
/** Parse a name above; KB_EFORMAT if unknown. */
int kb_curve_verdict_parse(kb_curve_verdict_kind *out, const char *s, kb_error *err);
/** "green", "yellow", "red" */
const char *kb_curve_light_name(kb_curve_light l);
/** The light a verdict kind implies on its own (underfitting/converged-poor are YELLOW). */
kb_curve_light kb_curve_verdict_light(kb_curve_verdict_kind k);
/** 1 if a metric name reads as "higher is better" (accuracy, auc, f1, r2, ...), else 0. */
int kb_curve_name_maximizes(const char *name);

/* ------------------------------------------------------------------------------------------ */
/* Forecast                                                                                   */

#define KB_CURVE_N_MODELS 12

typedef struct kb_curve_forecast_opts {
    int version;
    size_t max_points;  /* points are averaged into at most this many bins (default 100) */
    size_t max_iter;    /* Levenberg-Marquardt iterations per start (default 60) */
    double tol;         /* relative change of the residual sum that stops LM (default 1e-10) */
    size_t min_points;  /* fewer points: no forecast (KB_ENUMERIC) (default 5) */
    double level;       /* interval probability (default 0.9) */
    int backtest;       /* 1 (default): with at least 2 x min_points points, first forecast the
                           last point from the first half; when the ensemble misses it by more
                           than the half's last level (persistence) does, the forecast falls
                           back to persistence (see kb_curve_pred.fallback); 0: ensemble only */
    double sd_scale;    /* each model's predictive sd is multiplied by this (default 2.75: the
                           smallest of 1, 2, 2.5, 2.75, 3 whose 90% interval covered >= 90% of
                           the TRAIN half of the labelled curves' final values; without it the
                           interval covered 58%) */
} kb_curve_forecast_opts;

#define KB_CURVE_FORECAST_OPTS_VERSION 1
#define KB_CURVE_FORECAST_OPTS_INIT                                                          \
    {KB_CURVE_FORECAST_OPTS_VERSION, 100, 60, 1e-10, 5, 0.9, 1, 2.75}

typedef struct kb_curve_forecast {
    double target_step;
    double mean;        /* ensemble mean at target_step */
    double sd;          /* ensemble standard deviation */
    double lo, hi;      /* central interval of probability opts->level */
    double p_beat;      /* P(final better than the incumbent); NaN when no incumbent */
    size_t n_models;    /* models that fitted and entered the ensemble */
    double weights[KB_CURVE_N_MODELS]; /* weight per model (0 if it did not fit) */
    double model_mean[KB_CURVE_N_MODELS]; /* each model's prediction (NaN if it did not fit) */
    int fallback;       /* 1: the ensemble lost the backtest and mean is the persistence level
                           (median of the last 3 points); sd = sqrt(noise^2 + drift^2), drift =
                           how far the curve moved over the backtest's horizon; weights and
                           model_mean still describe the ensemble */
    double backtest_err;      /* |ensemble - truth| in the backtest (NaN: no backtest) */
    double backtest_err_last; /* |persistence - truth| in the backtest (NaN: no backtest) */
} kb_curve_pred;

/** Name of model i (0 <= i < KB_CURVE_N_MODELS): "pow3", "pow4", "log_power", ... */
const char *kb_curve_model_name(size_t i);

/**
 * Forecast the value of a series at `target_step` from its points (x ascending, y finite; the
 * caller may pass kb_curve_points output). `maximize` says which way is better (the models
 * saturate in that direction). `incumbent` NaN: no p_beat. With opts->backtest (default) the
 * ensemble must first beat persistence on the curve's own data or the forecast falls back to
 * persistence: on kb's labelled curves the ensemble alone beats the last value by mean
 * absolute error but loses by the median (docs/BENCHMARKS.md, training monitor).
 * @return KB_OK; KB_EINVAL for bad arguments; KB_ENUMERIC when there are too few points or
 * no model fits; KB_ENOMEM.
 */
int kb_curve_forecast_points(kb_curve_pred *out, const double *x, const double *y, size_t n,
                             double target_step, int maximize, double incumbent,
                             const kb_curve_forecast_opts *opts, kb_error *err);

/** kb_curve_forecast_points on the judged objective series of `c` (j from kb_curve_judge). */
int kb_curve_forecast(kb_curve_pred *out, const kb_curve *c, const kb_curve_judgement *j,
                      double target_step, double incumbent, const kb_curve_forecast_opts *opts,
                      kb_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Pruning (for kb search): cheap enough to call after every new point                        */

/** Why kb_curve_prune_check stopped a trial. */
typedef enum kb_curve_prune_why {
    KB_CURVE_PRUNE_NONE = 0,     /* continue */
    KB_CURVE_PRUNE_RED = 1,      /* the light is red: overflow or diverging */
    KB_CURVE_PRUNE_PLATEAU = 2,  /* converged / underfitting / overfitting / oscillating, and
                                    its best is worse than the incumbent: it will not win */
    KB_CURVE_PRUNE_FORECAST = 3, /* the forecast beats the incumbent with P < p_min */
    KB_CURVE_PRUNE_VERDICT = 4   /* the primary verdict is converged, underfitting,
                                    overfitting or oscillating, on this curve and (but for
                                    overfitting) without its last point: nothing more to
                                    gain by going on */
} kb_curve_prune_why;

typedef struct kb_curve_prune {
    int prune;                  /* 1: stop the trial */
    kb_curve_prune_why why;     /* KB_CURVE_PRUNE_NONE when prune == 0 */
    kb_curve_verdict_kind kind; /* the primary verdict (IMPROVING when there is none) */
    kb_curve_light light;       /* the judgement's traffic light */
    double p_beat;              /* forecast probability of beating the incumbent, or NaN */
    char metric[64];            /* the objective series judged ("" when none) */
    int maximize;               /* its direction (from opts->mode or its name) */
    double last_step, last_value; /* the last finite point of the objective (NaN: none):
                                     the "last metric" to record with a pruned run */
    double best_value;          /* the best value of the objective so far (NaN: none) */
    char reason[320];           /* one line with the numbers; "" when prune == 0 */
} kb_curve_prune;

/**
 * Decide whether to stop a running trial now, from its curve so far (the call judges the
 * whole prefix: O(n log n), plus a forecast of at most opts->max_points bins when one is
 * needed; a few milliseconds for 1000 points). Rules, in order:
 * 1. RED: the judgement's light is red (non-finite values, diverging loss): stop at once.
 * 1b. VERDICT: the primary verdict is converged, underfitting, overfitting or oscillating (no
 *    trend over the last half), and (except overfitting, whose rule already needs
 *    diverge_persist worsening points) it was the primary verdict of the curve without its
 *    last point too (one noisy point does not stop a run; the call judges that prefix as
 *    well): nothing more to gain, whatever the incumbent.
 *    This is the "kb" detector of the monitor benchmark's online table.
 * 2. PLATEAU: the curve has a converged, underfitting, overfitting or oscillating verdict and
 *    its best value so far is worse than `incumbent` by more than 3 noise sigmas and 1% of
 *    |incumbent| (a plateau that cannot reach the incumbent). Needs a finite incumbent, p_min
 *    > 0, and (when target_step is finite) the curve past a quarter of target_step.
 * 3. FORECAST: with a finite incumbent and target_step, p_min > 0 and at least 5 points past
 *    a quarter of target_step: the forecast at target_step (kb_curve_forecast) beats the
 *    incumbent with probability below p_min. On kb's labelled curves the forecast beats the
 *    last value by mean absolute error but not by the median (docs/BENCHMARKS.md), so keep
 *    p_min small (0.01-0.05).
 * The incumbent is in the objective's units and direction: the objective is opts->metric (or
 * the first of val_accuracy, val_loss, ... present) and its direction opts->mode (or its
 * name). p_min <= 0 disables rules 2 and 3 (only rules 1 and 1b stop).
 * @param[out] out  the decision; filled (prune 0) on every KB_OK
 * @return KB_OK; KB_EINVAL for NULL arguments or opts->metric naming no series; KB_ENOMEM.
 * Thread-safe for distinct `out`; `c` is only read.
 */
int kb_curve_prune_check(kb_curve_prune *out, const kb_curve *c, const kb_curve_opts *opts,
                         double target_step, double incumbent, double p_min, kb_error *err);

/* ------------------------------------------------------------------------------------------ */
/* The stored verdict                                                                         */

#define KB_CURVE_VERDICT_JSON_SCHEMA "kb.verdict/1"

/**
 * The judgement and rule-based advice of a run as one compact canonical JSON object text, for
 * storing with the run (the integrator puts it into run.extra under "judge"). Canonical: keys
 * sorted bytewise at every level, no spaces, numbers as the shortest of %.15g/%.16g/%.17g
 * that reads back the same (integral values without a fraction), non-finite numbers as null,
 * strings escaped per RFC 8259 with invalid UTF-8 bytes replaced by U+FFFD; so kb's
 * kb_json_canonical_text leaves it unchanged and equal curves give equal bytes. Example
 * (one line in reality):
 *
 *     {"advice":[{"from":0.1,"param":"base_lr","reason":"diverging","text":"stop; learning
 *      rate 0.1 -> 0.033","to":0.033}],"best":{"step":40,"value":2.1},"last":{"step":200,
 *      "value":9.5},"light":"red","metric":"val_loss","mode":"min","n_points":41,
 *      "schema":"kb.verdict/1","verdicts":[{"confidence":0.9,"detail":"...",
 *      "kind":"diverging","metric":"train_loss","step":60}]}
 *
 * "verdicts" is most severe first (the first is the primary verdict; empty when the curve
 * has no usable series, and then "metric" is "" and the numbers are null); "step" is where a
 * verdict was first seen. "advice" entries as kb_curve_advise (text "" when the change is
 * spelled out in the previous entry's text). No forecast: it is not reliable enough to store.
 * @param[out] out  caller owns `*out` (a NUL-terminated string); free with kb_free(); NULL on
 *                  failure
 * @param config    the run's configuration for advice with numbers (may be NULL, n_config 0)
 * @return KB_OK; KB_EINVAL for NULL arguments or opts->metric naming no series; KB_ENOMEM.
 */
int kb_curve_verdict_json(char **out, const kb_curve *c, const kb_curve_opts *opts,
                          const kb_param *config, size_t n_config, kb_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Advice                                                                                     */

typedef struct kb_curve_advice {
    kb_curve_verdict_kind reason; /* the verdict it answers */
    char param[48];     /* the configuration key to change ("" for "stop" or structural) */
    double from, to;    /* old and new value (NaN when not numeric / not present) */
    char text[256];     /* one line for a person, with the numbers; "" when this change is
                           spelled out in the previous entry's text (lr and batch together) */
} kb_curve_advice;

/**
 * Rule-based advice for the verdicts of `j`, with numbers from the configuration (keys
 * base_lr or lr or learning_rate, batch_size, clip_gradients, weight_decay, dropout, ...).
 * @return KB_OK (possibly no advice); KB_ENOMEM. Caller owns `*out` (kb_free).
 */
int kb_curve_advise(kb_curve_advice **out, size_t *n_out, const kb_curve_judgement *j,
                    const kb_param *config, size_t n_config, kb_error *err);

/** A past run as the store describes it (borrowed pointers). */
typedef struct kb_curve_past_run {
    const char *id;
    const char *task_id;         /* runs are compared within a task; NULL = one task */
    const kb_param *config;
    size_t n_config;
    kb_curve_verdict_kind verdict; /* its primary verdict */
    double final_metric;         /* its final objective value (NaN if none) */
} kb_curve_past_run;

/** A configuration change that fixed runs with the same verdict. */
typedef struct kb_curve_fix {
    char param[48];
    double ratio;         /* geometric mean of new/old over the supporting pairs (numeric) */
    char to_value[48];    /* for a non-numeric change: the new value; "" otherwise */
    size_t n_support;     /* pairs (bad run, good run on the same task) showing it */
    double gain;          /* median improvement of the final metric (in the better direction) */
    char example_bad[64], example_good[64]; /* ids of one supporting pair */
} kb_curve_fix;

/**
 * For past runs whose verdict is `kind`, find runs on the same task that went well
 * (CONVERGED or IMPROVING, a finite final metric) and whose configuration differs in a few
 * parameters (at most 2); count, per parameter and direction of change, how often that
 * change appears, and report the changes sorted by support, then gain. `maximize` gives the
 * direction of final_metric.
 * @return KB_OK; KB_EINVAL; KB_ENOMEM. Caller owns `*out` (kb_free).
 */
int kb_curve_advise_history(kb_curve_fix **out, size_t *n_out, kb_curve_verdict_kind kind,
                            const kb_curve_past_run *runs, size_t n_runs, int maximize,
                            kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
