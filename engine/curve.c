/*
 * The curve table, the judgement rules, the forecast ensemble and the advice. See curve.h for
 * the rules' definitions and references.
 */
#include "engine/curve.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/core/buf.h"

/* ------------------------------------------------------------------------------------------ */
/* The table                                                                                  */

void kb_curve_release(kb_curve *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->n_series; i++) {
        kb_free(c->series[i].name);
        kb_free(c->series[i].values);
    }
    for (size_t i = 0; i < c->n_finals; i++) {
        kb_free(c->finals[i].name);
    }
    kb_free(c->series);
    kb_free(c->finals);
    kb_free(c->steps);
    kb_free(c->status);
    memset(c, 0, sizeof *c);
}

long kb_curve_find(const kb_curve *c, const char *name)
{
    if (c == NULL || name == NULL) {
        return -1;
    }
    for (size_t i = 0; i < c->n_series; i++) {
        if (strcmp(c->series[i].name, name) == 0) {
            return (long)i;
        }
    }
    return -1;
}

const kb_curve_series *kb_curve_get(const kb_curve *c, const char *name)
{
    long i = kb_curve_find(c, name);
    return i < 0 ? NULL : &c->series[i];
}

/* Grow every column to hold `want` rows; new cells are NaN (missing). */
static int grow_rows(kb_curve *c, size_t want, kb_error *err)
{
    if (want <= c->cap_steps) {
        return KB_OK;
    }
    size_t cap = c->cap_steps ? c->cap_steps : 16;
    while (cap < want) {
        cap *= 2;
    }
    double *steps = kb_realloc_array(c->steps, cap, sizeof *steps);
    if (steps == NULL) {
        return kb_error_set(err, KB_ENOMEM, "curve: out of memory");
    }
    c->steps = steps;
    for (size_t s = 0; s < c->n_series; s++) {
        double *v = kb_realloc_array(c->series[s].values, cap, sizeof *v);
        if (v == NULL) {
            /* columns already grown keep their larger size; cap_steps stays the minimum */
            return kb_error_set(err, KB_ENOMEM, "curve: out of memory");
        }
        for (size_t i = c->cap_steps; i < cap; i++) {
            v[i] = NAN;
        }
        c->series[s].values = v;
    }
    c->cap_steps = cap;
    return KB_OK;
}

static int add_series(kb_curve *c, const char *name, kb_error *err)
{
    kb_curve_series *ss = kb_realloc_array(c->series, c->n_series + 1, sizeof *ss);
    if (ss == NULL) {
        return kb_error_set(err, KB_ENOMEM, "curve: out of memory");
    }
    c->series = ss;
    kb_curve_series *s = &ss[c->n_series];
    memset(s, 0, sizeof *s);
    s->first_nan_step = NAN;
    s->name = kb_strdup(name);
    size_t cap = c->cap_steps ? c->cap_steps : 16;
    s->values = kb_malloc_array(cap, sizeof *s->values);
    if (s->name == NULL || s->values == NULL) {
        kb_free(s->name);
        kb_free(s->values);
        return kb_error_set(err, KB_ENOMEM, "curve: out of memory");
    }
    for (size_t i = 0; i < cap; i++) {
        s->values[i] = NAN;
    }
    if (c->cap_steps == 0) {
        double *steps = kb_malloc_array(cap, sizeof *steps);
        if (steps == NULL) {
            kb_free(s->name);
            kb_free(s->values);
            return kb_error_set(err, KB_ENOMEM, "curve: out of memory");
        }
        c->steps = steps;
        c->cap_steps = cap;
    }
    c->n_series++;
    return KB_OK;
}

/* Row index of `step`, inserting a row of missing cells when it is new. */
static int row_for(size_t *out, kb_curve *c, double step, kb_error *err)
{
    /* Steps nearly always arrive in order: look from the end. */
    size_t i = c->n_steps;
    while (i > 0 && c->steps[i - 1] > step) {
        i--;
    }
    if (i > 0 && c->steps[i - 1] == step) {
        *out = i - 1;
        return KB_OK;
    }
    int rc = grow_rows(c, c->n_steps + 1, err);
    if (rc != KB_OK) {
        return rc;
    }
    size_t tail = c->n_steps - i;
    memmove(c->steps + i + 1, c->steps + i, tail * sizeof *c->steps);
    c->steps[i] = step;
    for (size_t s = 0; s < c->n_series; s++) {
        double *v = c->series[s].values;
        memmove(v + i + 1, v + i, tail * sizeof *v);
        v[i] = NAN;
    }
    c->n_steps++;
    *out = i;
    return KB_OK;
}

int kb_curve_add(kb_curve *c, double step, const char *name, double value, kb_error *err)
{
    KB_CHECK_ARG(c != NULL);
    KB_CHECK_ARG(name != NULL && name[0] != '\0');
    KB_CHECK_ARG(isfinite(step));
    long si = kb_curve_find(c, name);
    int rc;
    if (si < 0) {
        if ((rc = add_series(c, name, err)) != KB_OK) {
            return rc;
        }
        si = (long)c->n_series - 1;
    }
    size_t row;
    if ((rc = row_for(&row, c, step, err)) != KB_OK) {
        return rc;
    }
    kb_curve_series *s = &c->series[si];
    if (isnan(value)) {
        s->n_nan++;
        if (isnan(s->first_nan_step) || step < s->first_nan_step) {
            s->first_nan_step = step;
        }
        return KB_OK;
    }
    if (isnan(s->values[row])) {
        s->n_values++;
    }
    s->values[row] = value;
    return KB_OK;
}

int kb_curve_add_final(kb_curve *c, const char *name, double value, kb_error *err)
{
    KB_CHECK_ARG(c != NULL && name != NULL);
    for (size_t i = 0; i < c->n_finals; i++) {
        if (strcmp(c->finals[i].name, name) == 0) {
            c->finals[i].value = value;
            return KB_OK;
        }
    }
    kb_curve_final *f = kb_realloc_array(c->finals, c->n_finals + 1, sizeof *f);
    if (f == NULL) {
        return kb_error_set(err, KB_ENOMEM, "curve: out of memory");
    }
    c->finals = f;
    f[c->n_finals].name = kb_strdup(name);
    if (f[c->n_finals].name == NULL) {
        return kb_error_set(err, KB_ENOMEM, "curve: out of memory");
    }
    f[c->n_finals].value = value;
    c->n_finals++;
    return KB_OK;
}

int kb_curve_set_status(kb_curve *c, const char *status, kb_error *err)
{
    KB_CHECK_ARG(c != NULL && status != NULL);
    char *s = kb_strdup(status);
    if (s == NULL) {
        return kb_error_set(err, KB_ENOMEM, "curve: out of memory");
    }
    kb_free(c->status);
    c->status = s;
    return KB_OK;
}

size_t kb_curve_points(const kb_curve *c, const kb_curve_series *s, double *x, double *y,
                       size_t cap)
{
    size_t n = 0;
    if (c == NULL || s == NULL) {
        return 0;
    }
    for (size_t i = 0; i < c->n_steps; i++) {
        if (!isnan(s->values[i])) {
            if (n < cap) {
                x[n] = c->steps[i];
                y[n] = s->values[i];
            }
            n++;
        }
    }
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Names                                                                                      */

static const char *const verdict_names[KB_CURVE_VERDICT_COUNT] = {
    "overflow", "diverging", "oscillating", "underfitting", "overfitting", "converged",
    "improving"};

const char *kb_curve_verdict_name(kb_curve_verdict_kind k)
{
    return (unsigned)k < KB_CURVE_VERDICT_COUNT ? verdict_names[k] : "unknown";
}

int kb_curve_verdict_parse(kb_curve_verdict_kind *out, const char *s, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && s != NULL);
    for (int k = 0; k < KB_CURVE_VERDICT_COUNT; k++) {
        if (strcmp(s, verdict_names[k]) == 0) {
            *out = (kb_curve_verdict_kind)k;
            return KB_OK;
        }
    }
    return kb_error_set(err, KB_EFORMAT, "unknown verdict '%s'", s);
}

const char *kb_curve_light_name(kb_curve_light l)
{
    switch (l) {
    case KB_CURVE_LIGHT_GREEN: return "green";
    case KB_CURVE_LIGHT_YELLOW: return "yellow";
    case KB_CURVE_LIGHT_RED: return "red";
    }
    return "unknown";
}

kb_curve_light kb_curve_verdict_light(kb_curve_verdict_kind k)
{
    switch (k) {
    case KB_CURVE_VERDICT_OVERFLOW:
    case KB_CURVE_VERDICT_DIVERGING: return KB_CURVE_LIGHT_RED;
    case KB_CURVE_VERDICT_OSCILLATING:
    case KB_CURVE_VERDICT_UNDERFITTING:
    case KB_CURVE_VERDICT_OVERFITTING: return KB_CURVE_LIGHT_YELLOW;
    default: return KB_CURVE_LIGHT_GREEN;
    }
}

static int contains(const char *s, const char *part)
{
    return strstr(s, part) != NULL;
}

int kb_curve_name_maximizes(const char *name)
{
    char low[64];
    size_t i = 0;
    for (; name != NULL && name[i] != '\0' && i < sizeof low - 1; i++) {
        char ch = name[i];
        low[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
    low[i] = '\0';
    if (contains(low, "loss") || contains(low, "error") || contains(low, "err") ||
        contains(low, "rmse") || contains(low, "mae") || contains(low, "mse") ||
        contains(low, "perplexity")) {
        return 0;
    }
    return contains(low, "acc") || contains(low, "auc") || contains(low, "f1") ||
           contains(low, "r2") || contains(low, "score") || contains(low, "precision") ||
           contains(low, "recall") || contains(low, "map") || contains(low, "iou") ||
           contains(low, "bleu");
}

/* ------------------------------------------------------------------------------------------ */
/* Robust statistics                                                                          */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values, sorting `work` (a copy is made into work). */
static double median_of(const double *v, size_t n, double *work)
{
    if (n == 0) {
        return NAN;
    }
    memcpy(work, v, n * sizeof *work);
    qsort(work, n, sizeof *work, cmp_double);
    return n % 2 ? work[n / 2] : 0.5 * (work[n / 2 - 1] + work[n / 2]);
}

static void smooth(double *out, const double *y, size_t n, size_t w, double *work)
{
    size_t h = w / 2;
    for (size_t i = 0; i < n; i++) {
        size_t a = i >= h ? i - h : 0, b = i + h < n ? i + h : n - 1;
        out[i] = median_of(y + a, b - a + 1, work);
    }
}

static double noise_sigma(const double *y, size_t n, double *work, double *work2)
{
    if (n < 4) {
        return 0.0;
    }
    /* second differences cancel a locally linear trend (and most of a curve's bend), so a
     * smooth curve has no noise; iid noise of variance s^2 gives them variance 6 s^2 */
    for (size_t i = 1; i + 1 < n; i++) {
        work2[i - 1] = y[i + 1] - 2 * y[i] + y[i - 1];
    }
    size_t m = n - 2;
    double med = median_of(work2, m, work);
    for (size_t i = 0; i < m; i++) {
        work2[i] = fabs(work2[i] - med);
    }
    /* 1.4826 x MAD estimates a normal sigma */
    return 1.4826 * median_of(work2, m, work) / sqrt(6.0);
}

/* noise_sigma without the second differences that involve point `skip` (those centred on
 * skip - 1, skip and skip + 1); falls back to noise_sigma when fewer than 4 would remain. */
static double noise_sigma_except(const double *y, size_t n, size_t skip, double *work,
                                 double *work2)
{
    size_t m = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        if (i + 1 < skip || i > skip + 1) {
            work2[m++] = y[i + 1] - 2 * y[i] + y[i - 1];
        }
    }
    if (m < 4) {
        return noise_sigma(y, n, work, work2);
    }
    double med = median_of(work2, m, work);
    for (size_t i = 0; i < m; i++) {
        work2[i] = fabs(work2[i] - med);
    }
    return 1.4826 * median_of(work2, m, work) / sqrt(6.0);
}

static double theil_sen(const double *x, const double *y, size_t n, double *work)
{
    /* n is bounded by the caller's window; at most 64 points keep this O(2000) */
    size_t k = 0;
    size_t stride = n > 64 ? (n + 63) / 64 : 1;
    for (size_t i = 0; i < n; i += stride) {
        for (size_t j = i + stride; j < n; j += stride) {
            if (x[j] != x[i]) {
                work[k++] = (y[j] - y[i]) / (x[j] - x[i]);
            }
        }
    }
    if (k == 0) {
        return 0.0;
    }
    qsort(work, k, sizeof *work, cmp_double);
    return k % 2 ? work[k / 2] : 0.5 * (work[k / 2 - 1] + work[k / 2]);
}

/* ------------------------------------------------------------------------------------------ */
/* Judgement                                                                                  */

static const char *const objective_names[] = {
    "val_accuracy", "val_acc", "validation_accuracy", "test_accuracy", "val_loss",
    "valid_loss", "validation_loss", "test_loss", "accuracy", "acc", "train_loss", "loss",
    "training_loss", NULL};
static const char *const train_loss_names[] = {"train_loss", "loss", "training_loss", NULL};
static const char *const val_loss_names[] = {"val_loss", "valid_loss", "validation_loss",
                                             "test_loss", NULL};
static const char *const val_acc_names[] = {"val_accuracy", "val_acc", "validation_accuracy",
                                            "test_accuracy", NULL};
/* series that describe the optimiser, never an objective */
static const char *const aux_names[] = {"lr", "learning_rate", "weight_norm", "grad_norm",
                                        "nonfinite_weights", "epoch", "time", "time_s",
                                        "wall_time", "timestamp", "iter", "iteration", NULL};

/* The first of `names` with at least `min_values` values, else the first with any. */
static long find_first_n(const kb_curve *c, const char *const *names, size_t min_values)
{
    long any = -1;
    for (size_t i = 0; names[i] != NULL; i++) {
        long k = kb_curve_find(c, names[i]);
        if (k >= 0 && c->series[k].n_values >= min_values && c->series[k].n_values > 0) {
            return k;
        }
        if (k >= 0 && any < 0 && c->series[k].n_values > 0) {
            any = k;
        }
    }
    return any;
}

static long find_first(const kb_curve *c, const char *const *names)
{
    return find_first_n(c, names, 1);
}

static int is_aux(const char *name)
{
    for (size_t i = 0; aux_names[i] != NULL; i++) {
        if (strcmp(name, aux_names[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* A series' finite points before `limit` (a step), oriented so that larger is better. */
typedef struct pts {
    double *x, *y, *s; /* steps, oriented values, smoothed */
    size_t n;
    double sigma;      /* noise of y */
    double early;      /* early level: median of the first 3 points (oriented) */
    int maximize;
    const char *name;
} pts;

typedef struct judge_ws {
    double *work, *work2; /* n_steps each */
} judge_ws;

static void load_pts(pts *p, const kb_curve *c, long si, int maximize, double limit,
                     const kb_curve_opts *o, judge_ws *ws)
{
    const kb_curve_series *s = &c->series[si];
    p->n = 0;
    p->maximize = maximize;
    p->name = s->name;
    for (size_t i = 0; i < c->n_steps && c->steps[i] < limit; i++) {
        double v = s->values[i];
        if (isfinite(v)) {
            p->x[p->n] = c->steps[i];
            p->y[p->n] = maximize ? v : -v;
            p->n++;
        }
    }
    if (p->n == 0) {
        p->sigma = 0;
        p->early = NAN;
        return;
    }
    smooth(p->s, p->y, p->n, o->smooth_window ? o->smooth_window : 1, ws->work);
    p->sigma = noise_sigma(p->y, p->n, ws->work, ws->work2);
    p->early = median_of(p->y, p->n < 3 ? p->n : 3, ws->work);
}

/* Noise floor: a perfectly smooth curve still gets a tiny tolerance. */
static double sig_floor(const pts *p)
{
    double scale = fabs(p->early) > 1e-12 ? fabs(p->early) : 1.0;
    return fmax(p->sigma, 1e-6 * scale);
}

static int push_verdict(kb_curve_judgement *j, kb_curve_verdict_kind kind, double step,
                        double detected, double conf, const char *metric, kb_error *err,
                        const char *fmt, ...) __attribute__((format(printf, 8, 9)));

static int push_verdict(kb_curve_judgement *j, kb_curve_verdict_kind kind, double step,
                        double detected, double conf, const char *metric, kb_error *err,
                        const char *fmt, ...)
{
    kb_curve_verdict *v = kb_realloc_array(j->verdicts, j->n_verdicts + 1, sizeof *v);
    if (v == NULL) {
        return kb_error_set(err, KB_ENOMEM, "judge: out of memory");
    }
    j->verdicts = v;
    kb_curve_verdict *d = &v[j->n_verdicts++];
    memset(d, 0, sizeof *d);
    d->kind = kind;
    d->step = step;
    d->detected_step = detected;
    d->confidence = conf < 0 ? 0 : conf > 1 ? 1 : conf;
    snprintf(d->metric, sizeof d->metric, "%s", metric ? metric : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->detail, sizeof d->detail, fmt, ap);
    va_end(ap);
    return KB_OK;
}

static int is_loss_name(const char *name)
{
    return strstr(name, "loss") != NULL;
}

/* Overflow: the first step at which any series reported a non-finite value, or
 * nonfinite_weights > 0; a final status of "diverged" counts at the end. */
static double find_overflow(const kb_curve *c, char *what, size_t wn,
                            const char **metric)
{
    double first = INFINITY;
    *metric = NULL;
    for (size_t k = 0; k < c->n_series; k++) {
        const kb_curve_series *s = &c->series[k];
        if (strcmp(s->name, "lr") == 0 || strcmp(s->name, "learning_rate") == 0) {
            continue;
        }
        if (s->n_nan > 0 && s->first_nan_step < first) {
            first = s->first_nan_step;
            *metric = s->name;
            snprintf(what, wn, "%s is NaN at step %g", s->name, first);
        }
        int nfw = strcmp(s->name, "nonfinite_weights") == 0;
        for (size_t i = 0; i < c->n_steps && c->steps[i] < first; i++) {
            double v = s->values[i];
            if (isnan(v)) {
                continue;
            }
            if (isinf(v)) {
                snprintf(what, wn, "%s is %s at step %g", s->name, v > 0 ? "inf" : "-inf",
                         c->steps[i]);
            } else if (nfw && v > 0) {
                snprintf(what, wn, "%g non-finite weights at step %g", v, c->steps[i]);
            } else {
                continue;
            }
            first = c->steps[i];
            *metric = s->name;
            break;
        }
    }
    return first;
}

static int status_says_diverged(const char *st)
{
    return st != NULL && (strcmp(st, "diverged") == 0 || strcmp(st, "nan") == 0 ||
                          strcmp(st, "overflow") == 0);
}

/* The q-quantile (0 <= q <= 1, linear interpolation) of n values, sorting a copy in work. */
static double quantile_of(const double *v, size_t n, double q, double *work)
{
    if (n == 0) {
        return NAN;
    }
    memcpy(work, v, n * sizeof *work);
    qsort(work, n, sizeof *work, cmp_double);
    double k = q * (double)(n - 1);
    size_t f = (size_t)k;
    size_t c = f + 1 < n ? f + 1 : f;
    return work[f] + (work[c] - work[f]) * (k - (double)f);
}

/* A training loss that stays at its level after a blow-up swings by less than this fraction
 * of it (noise sigma / median): on the TRAIN half of the labelled curves, runs broken by a far
 * too high learning rate sit at the chance level with a relative noise of at most 0.05, runs
 * that swing without a trend (lr_swing) at 0.11 or more. */
#define CHANCE_STEADY_REL 0.08
/* ... or it is still far above chance: a median above this many times ln K (the TRAIN half's
 * runs stuck far above chance sit near 9 ln K and more, the swinging ones below 4 ln K) */
#define CHANCE_FAR_ABOVE 4.0
/* A network that predicts one class whatever the input has an accuracy pinned to a few values
 * (the class frequencies): at most this fraction of the evaluations give a new value. On the
 * TRAIN half, the broken runs give 0.02-0.34 distinct values per evaluation (letter's 26
 * classes the most), the runs made to swing whose loss also sits above chance 0.5-0.9. */
#define CHANCE_PINNED_FRAC 0.4
/* ... and in all at most this many times K distinct values: a network that predicts one class
 * whatever the input scores one of the K class frequencies, so a broken run's accuracy takes
 * about K values however many evaluations and however fine the validation set. The fraction
 * alone confuses a small validation set with a pinned accuracy: a run that swings on pima's
 * 154 validation rows repeats values because there are few to take (held-out lr_swing c222:
 * 0.34 distinct per evaluation, 17 values, 8.5 K). On the TRAIN half the broken runs give at
 * most 1.0 K distinct values, the swinging ones 6.7 K and more; 3 K lies between (their
 * geometric midpoint is 2.6 K). */
#define CHANCE_PINNED_K 3.0

/* Distinct values of the accuracy `a` at the steps [x0, x1], per evaluation; NaN when it has
 * fewer than 3 points there. *count gets the number of distinct values. */
static double distinct_frac(const pts *a, double x0, double x1, double *work, size_t *count)
{
    *count = 0;
    size_t m = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (a->x[i] >= x0 && a->x[i] <= x1) {
            work[m++] = a->y[i];
        }
    }
    if (m < 3) {
        return NAN;
    }
    qsort(work, m, sizeof *work, cmp_double);
    size_t d = 1;
    for (size_t i = 1; i < m; i++) {
        d += work[i] != work[i - 1];
    }
    *count = d;
    return (double)d / (double)m;
}

/*
 * Diverging against chance: with K classes a sound initialisation starts near the loss of a
 * uniform guess, ln K. A training loss that blew up past 2 ln K and has stayed above
 * (1 - poor_frac) ln K since then never recovered: the optimiser broke the network (a learning
 * rate far too high), even when the explosion happened before the first logged point and the
 * network now predicts one class with a flat, respectable-looking accuracy. A learning rate
 * far too low idles near ln K too, but never blows up.
 * "Stayed above": the lower quartile of the points after the blow-up (those of the last half
 * when there are more than diverge_persist of them) is above the bar, so a run that keeps
 * dipping below it does not count. "Broken", not swinging: the loss is still far above chance
 * (CHANCE_FAR_ABOVE), or it sits at its level steadily (CHANCE_STEADY_REL), or the logged
 * accuracy is pinned to a few values (CHANCE_PINNED_FRAC and CHANCE_PINNED_K): either of the
 * last two is the signature of a network that predicts the same class whatever the input. With fewer than 4
 * points after the blow-up the quartile alone decides: this lets the rule stop a broken run
 * diverge_persist points after its blow-up instead of after half a run (min_points); a run
 * that swings and then shows it loses the verdict again on later points.
 */
static int judge_above_chance(kb_curve_judgement *j, const pts *p, const pts *acc,
                              const kb_curve_opts *o, judge_ws *ws, kb_error *err)
{
    size_t persist = o->diverge_persist ? o->diverge_persist : 1;
    if (o->n_classes < 2 || p->maximize || strstr(p->name, "loss") == NULL ||
        p->n < persist + 1) {
        return KB_OK;
    }
    double chance = log((double)o->n_classes);
    double worst = 0;
    size_t worst_i = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (-p->y[i] > worst) {
            worst = -p->y[i];
            worst_i = i;
        }
    }
    if (!(worst > 2 * chance) || p->n - 1 - worst_i < persist) {
        return KB_OK;
    }
    /* the points after the blow-up, of the last half when there are enough of them */
    size_t from = p->n - (p->n / 2 > persist ? p->n / 2 : persist);
    if (from <= worst_i) {
        from = worst_i + 1;
    }
    size_t m = p->n - from;
    double *loss = ws->work2; /* losses (-y) of the window */
    for (size_t i = 0; i < m; i++) {
        loss[i] = -p->y[from + i];
    }
    double q25 = quantile_of(loss, m, 0.25, ws->work);
    double med = quantile_of(loss, m, 0.5, ws->work);
    double bar = (1 - o->poor_frac) * chance;
    if (!(q25 > bar)) {
        return KB_OK;
    }
    if (m >= 4 && !(med > CHANCE_FAR_ABOVE * chance)) {
        size_t n_distinct = 0;
        double pinned = acc != NULL ? distinct_frac(acc, p->x[from], p->x[p->n - 1], ws->work,
                                                    &n_distinct)
                                    : NAN;
        if ((double)n_distinct > CHANCE_PINNED_K * (double)o->n_classes) {
            pinned = NAN; /* many values, repeated only because the validation set is small */
        }
        /* noise_sigma overwrites work2: the window goes first into a copy */
        double *tmp = kb_malloc_array(m, sizeof *tmp);
        if (tmp == NULL) {
            return kb_error_set(err, KB_ENOMEM, "judge: out of memory");
        }
        memcpy(tmp, loss, m * sizeof *tmp);
        double noise = noise_sigma(tmp, m, ws->work, ws->work2);
        kb_free(tmp);
        if (!(pinned <= CHANCE_PINNED_FRAC) && !(noise < CHANCE_STEADY_REL * med)) {
            return KB_OK; /* swinging, not broken */
        }
    }
    return push_verdict(j, KB_CURVE_VERDICT_DIVERGING, p->x[worst_i], p->x[p->n - 1],
                        0.6 + 0.4 * fmin(1.0, (med - bar) / (0.25 * chance)), p->name, err,
                        "%s blew up to %.3g at step %g and stays at %.3g, near the chance level "
                        "ln %zu = %.3g",
                        p->name, worst, p->x[worst_i], med, o->n_classes, chance);
}

/*
 * Diverging, on a loss (oriented: larger is better, so a rising loss is a falling p->s):
 * the smoothed loss is above its early level by diverge_rel, or has given back diverge_back of
 * its gain (the gain being more than 3 sigma), at each of the last diverge_persist points.
 * Onset: the best point before that final run began.
 */
static int judge_diverging(kb_curve_judgement *j, const pts *p, const pts *acc,
                           const kb_curve_opts *o, judge_ws *ws, kb_error *err)
{
    if (p->n < o->min_points) {
        return judge_above_chance(j, p, acc, o, ws, err);
    }
    double sig = sig_floor(p);
    double best = -INFINITY;
    size_t best_i = 0, run = 0, run_start = 0;
    double worst_excess = 0;
    for (size_t i = 0; i < p->n; i++) {
        double lvl = p->s[i];
        if (lvl > best) {
            best = lvl;
            best_i = i;
        }
        double gain = best - p->early;
        /* (a) worse than the early level by diverge_rel of its magnitude and by 3 sigma */
        double above = p->early - lvl;
        int a = above > o->diverge_rel * fabs(p->early) && above > 3 * sig;
        /* (b) gave back most of a real gain */
        double back = best - lvl;
        int b = gain > 3 * sig && back > o->diverge_back * gain && back > 3 * sig;
        if (a || b) {
            if (run == 0) {
                run_start = i;
            }
            run++;
            double ex = a ? above / (o->diverge_rel * fabs(p->early) + 1e-300)
                          : back / (o->diverge_back * gain);
            worst_excess = fmax(worst_excess, ex);
        } else {
            run = 0;
            worst_excess = 0;
        }
    }
    size_t persist = o->diverge_persist ? o->diverge_persist : 1;
    double last = -p->y[p->n - 1];
    if (run < persist && p->n > 0 && fabs(last) > o->overflow_abs) {
        /* an absurd magnitude needs no persistence: it is on its way to overflow */
        run = persist;
        run_start = p->n - 1 >= persist - 1 ? p->n - persist : 0;
    }
    if (run < persist) {
        return judge_above_chance(j, p, acc, o, ws, err);
    }
    /* onset: the best smoothed point before the final run */
    size_t onset = 0;
    double ob = -INFINITY;
    for (size_t i = 0; i < run_start; i++) {
        if (p->s[i] > ob) {
            ob = p->s[i];
            onset = i;
        }
    }
    (void)best_i;
    double conf = 0.6 + 0.2 * fmin(2.0, worst_excess - 1.0) + 0.05 * fmin(4.0, (double)(run - persist));
    double from = p->maximize ? p->s[onset] : -p->s[onset];
    double to = p->maximize ? p->s[p->n - 1] : -p->s[p->n - 1];
    return push_verdict(j, KB_CURVE_VERDICT_DIVERGING, p->x[onset],
                        p->x[run_start + persist - 1], conf, p->name, err,
                        "%s rises from %.4g at step %g to %.4g at step %g", p->name, from,
                        p->x[onset], to, p->x[p->n - 1]);
}

/*
 * Overfitting: after its best point b, the validation series (oriented) worsens while the
 * training loss improves. On the raw points (a running median lags by half its window, which
 * was most of this rule's delay):
 * (1) the last diverge_persist points are each worse than the best by thr = overfit_rel of the
 *     gain (of the level when the best was the first point: the learning happened before it),
 *     and by 3 sigma, and by 2% of the level (a curve frozen by a decayed learning rate has no
 *     noise); so one noisy point, or two, is not a rise;
 * (2) a one-sided trend since the best: the Theil-Sen slope of the points after b is a
 *     worsening (the scatter of a plateau around an outlying best point has a slope of either
 *     sign, a step down that is already coming back an improving one);
 * (3) the training loss improved since the best validation step (see below).
 * Needs the best point and diverge_persist points after it, not min_points: the rule's own
 * evidence is those points, and waiting for min_points delayed the verdict on curves whose
 * best validation point is the first one by min_points - diverge_persist - 1 points.
 */
static int judge_overfitting(kb_curve_judgement *j, const pts *v, const pts *t,
                             const kb_curve_opts *o, judge_ws *ws, kb_error *err)
{
    size_t persist = o->diverge_persist ? o->diverge_persist : 1;
    if (v->n < persist + 1 || t->n < 2) {
        return KB_OK;
    }
    double sig = sig_floor(v);
    size_t bi = 0;
    for (size_t i = 1; i < v->n; i++) {
        if (v->y[i] > v->y[bi]) {
            bi = i;
        }
    }
    if (v->n - 1 - bi < persist) {
        return KB_OK;
    }
    /* Below min_points the noise estimate is the curvature of the turn at the best point
     * (second differences of a few points around a V), not noise: there 3 sigma is replaced
     * by order, the last diverge_persist points each worse than the one before (noise alone
     * puts 3 points in that order once in 6, and they must also clear overfit_rel of the
     * level: a gain measured on so few points is no scale). */
    int few = v->n < o->min_points;
    if (few) {
        sig = 0;
        for (size_t i = v->n - persist + 1; i < v->n; i++) {
            if (!(v->y[i] < v->y[i - 1])) {
                return KB_OK;
            }
        }
    }
    /* the second differences that involve the best point measure the turn there (its
     * curvature), not noise: sigma leaves them out (on the TRAIN half this moved the verdict
     * on slowly rising curves 1 point sooner; on a noisy plateau it changes sigma little) */
    if (!few) {
        sig = fmax(noise_sigma_except(v->y, v->n, bi, ws->work, ws->work2), 1e-6 * fabs(v->early));
    }
    double gain = v->y[bi] - v->early;
    double thr = gain >= 3 * sig && !few ? fmax(o->overfit_rel * gain, 3 * sig)
                                         : fmax(o->overfit_rel * fabs(v->y[bi]), 3 * sig);
    thr = fmax(thr, 0.02 * fabs(v->y[bi]));
    size_t first_hit = v->n;
    for (size_t i = v->n; i-- > bi + 1;) {
        if (v->y[bi] - v->y[i] > thr) {
            first_hit = i;
        } else {
            break;
        }
    }
    if (first_hit == v->n || v->n - first_hit < persist) {
        return KB_OK;
    }
    size_t k = v->n - 1 - bi;
    if (k >= 2 && !(theil_sen(v->x + bi + 1, v->y + bi + 1, k, ws->work) < 0)) {
        return KB_OK; /* flat or coming back since the best: no worsening trend */
    }
    /* training must still be improving since the best validation step: the median of its
     * points after that step is better than its (smoothed) level there by 2 sigma, or by 10%
     * of it (a few points into a run the noise estimate of a fast-falling training loss is
     * its curvature, far above its noise; a flat training loss does not drop 10%) */
    double tb = NAN;
    size_t ta = t->n;
    for (size_t i = 0; i < t->n; i++) {
        if (t->x[i] <= v->x[bi]) {
            tb = t->s[i];
        } else if (ta == t->n) {
            ta = i;
        }
    }
    double te = ta < t->n ? median_of(t->y + ta, t->n - ta, ws->work) : NAN;
    if (isnan(tb) || !(te - tb > fmin(2 * sig_floor(t), 0.1 * fabs(tb)))) {
        return KB_OK; /* training did not improve since the best validation step */
    }
    double drop = v->y[bi] - v->y[v->n - 1];
    double conf = 0.55 + 0.15 * fmin(3.0, drop / thr - 1.0);
    double best = v->maximize ? v->y[bi] : -v->y[bi];
    double now = v->maximize ? v->y[v->n - 1] : -v->y[v->n - 1];
    return push_verdict(j, KB_CURVE_VERDICT_OVERFITTING, v->x[bi],
                        v->x[first_hit + persist - 1], conf, v->name, err,
                        "%s best %.4g at step %g, now %.4g, while %s keeps improving", v->name,
                        best, v->x[bi], now, t->name);
}

/* Is the objective at a poor level? Returns 1/0 and writes why. */
static int level_is_poor(const pts *p, double level, int is_acc, int is_loss,
                         const kb_curve_opts *o, char *why, size_t wn)
{
    double raw = p->maximize ? level : -level;
    if (!isnan(o->ref_median) || !isnan(o->ref_best)) {
        if (!isnan(o->ref_median)) {
            double refo = p->maximize ? o->ref_median : -o->ref_median;
            if (level < refo) {
                snprintf(why, wn, "worse than the task's median %.4g", o->ref_median);
                return 1;
            }
        }
        if (!isnan(o->ref_best)) {
            double refo = p->maximize ? o->ref_best : -o->ref_best;
            if (refo - level > o->poor_ref_rel * fabs(o->ref_best)) {
                snprintf(why, wn, "%.0f%% worse than the task's best %.4g",
                         100 * (refo - level) / fmax(fabs(o->ref_best), 1e-300), o->ref_best);
                return 1;
            }
        }
        return 0;
    }
    if (o->n_classes >= 2) {
        double k = (double)o->n_classes;
        if (is_acc && p->maximize) {
            double chance = 1.0 / k, bar = chance + o->poor_frac * (1 - chance);
            if (raw < bar) {
                snprintf(why, wn, "accuracy %.3g is near chance %.3g (%zu classes)", raw,
                         chance, o->n_classes);
                return 1;
            }
            return 0;
        }
        if (is_loss && !p->maximize) {
            double bar = (1 - o->poor_frac) * log(k);
            if (raw > bar) {
                snprintf(why, wn, "loss %.3g is near chance ln %zu = %.3g", raw, o->n_classes,
                         log(k));
                return 1;
            }
            return 0;
        }
    }
    /* no reference: only "not learning at all" is poor */
    double gain = level - p->early;
    double scale = fabs(p->early) > 1e-12 ? fabs(p->early) : 1.0;
    if (gain < o->stall_rel * scale) {
        snprintf(why, wn, "no progress from its early level %.4g",
                 p->maximize ? p->early : -p->early);
        return 1;
    }
    return 0;
}

/*
 * Plateau: the final run of points whose smoothed value lies within converge_tol x gain
 * (+ 2 sigma) of the end level, at least converge_points long, with a recent Theil-Sen trend
 * that projects less than that band over the plateau's own span.
 * Returns the index where the plateau starts, or n when there is none.
 */
static size_t find_plateau(const pts *p, const kb_curve_opts *o, double *end_level,
                           double *band_out, double *proj_out, judge_ws *ws)
{
    size_t n = p->n;
    size_t k_end = n / 10 > 3 ? n / 10 : 3;
    if (k_end > n) {
        k_end = n;
    }
    double end = median_of(p->y + (n - k_end), k_end, ws->work);
    double best = p->s[0];
    for (size_t i = 1; i < n; i++) {
        best = fmax(best, p->s[i]);
    }
    double gain = fmax(fmax(best, end) - p->early, 0.0);
    /* 3 sigma: the smoothed values of a noisy plateau still scatter by about a sigma */
    double band = o->converge_tol * gain + 3 * sig_floor(p);
    size_t start = n;
    while (start > 0 && fabs(p->s[start - 1] - end) <= band) {
        start--;
    }
    *end_level = end;
    *band_out = band;
    size_t need = o->converge_points ? o->converge_points : 1;
    if (n - start < need) {
        *proj_out = NAN;
        return n;
    }
    /* the trend over the last quarter (at least the plateau's required length) */
    size_t w = n / 4 > need ? n / 4 : need;
    if (w > n - start) {
        w = n - start;
    }
    double slope = theil_sen(p->x + (n - w), p->y + (n - w), w, ws->work);
    /* projected over as many steps as the run has taken so far: would it gain the band? */
    double span = p->x[n - 1] - p->x[0];
    double proj = slope * span;
    *proj_out = proj;
    if (proj > band) {
        return n;
    }
    return start;
}

/* Is a companion loss still moving (no plateau by find_plateau's rule)? */
static int still_moving(const pts *c, const pts *p, const kb_curve_opts *o, judge_ws *ws)
{
    if (c == NULL || c->n < o->min_points || c->name == p->name) {
        return 0;
    }
    double e, b, pr;
    /* no plateau found (too short, or its trend still projects a gain): still moving */
    return find_plateau(c, o, &e, &b, &pr, ws) == c->n;
}

static int judge_trend(kb_curve_judgement *j, const pts *p, const pts *train, const pts *val,
                       const kb_curve_opts *o, judge_ws *ws, kb_error *err)
{
    const char *nm = p->name;
    int is_acc = strstr(nm, "acc") != NULL;
    int is_loss = is_loss_name(nm);
    double sig = sig_floor(p);
    if (p->n < o->min_points) {
        if (j->n_verdicts > 0) {
            return KB_OK; /* a red run needs no "too early" next to its verdict */
        }
        return push_verdict(j, KB_CURVE_VERDICT_IMPROVING, p->x[0], p->x[p->n - 1], 0.2, nm, err,
                            "only %zu points of %s: too early to judge", p->n, nm);
    }
    double end, band, proj;
    size_t start = find_plateau(p, o, &end, &band, &proj, ws);
    double best = p->s[0];
    for (size_t i = 1; i < p->n; i++) {
        best = fmax(best, p->s[i]);
    }
    double gain = best - p->early;
    double level = fabs(median_of(p->y, p->n, ws->work));
    /* an accuracy's swings are measured against half its range, a loss's against its level */
    double scale = is_acc ? 0.5 : fmax(level, 1e-12);

    /* oscillating: swings large against the level and against the progress made, no trend.
     * "Against the progress": the noise is at least a fifth of the gain. On the TRAIN half of
     * the labelled curves the runs made to swing (lr_swing) have a noise of 0.24-0.66 of their
     * gain; the curves of other kinds whose noise passes oscillate_rel have a non-finite or
     * diverging loss (judged before this), or are SGD runs at lr 3 that learn and then swing
     * (recipe "diverging", which fail that label's hindsight check). */
    if (p->sigma > o->oscillate_rel * scale && p->sigma > 0.2 * fmax(gain, 0.0)) {
        size_t w = p->n / 2;
        double slope = theil_sen(p->x + (p->n - w), p->y + (p->n - w), w, ws->work);
        double span = p->x[p->n - 1] - p->x[p->n - w];
        if (fabs(slope * span) < 2 * p->sigma) {
            double conf = 0.5 + 0.25 * fmin(2.0, p->sigma / (o->oscillate_rel * scale) - 1.0);
            return push_verdict(j, KB_CURVE_VERDICT_OSCILLATING, p->x[p->n - w], p->x[p->n - 1],
                                conf, nm, err,
                                "%s swings by %.3g (%.0f%% of its level) without a trend", nm,
                                p->sigma, 100 * p->sigma / scale);
        }
    }

    /* a training or validation loss still falling means the model is still learning, even
     * when the accuracy paused */
    int train_moving = still_moving(train, p, o, ws);
    int val_moving = still_moving(val, p, o, ws);

    char why[128] = "";
    int poor = level_is_poor(p, end, is_acc, is_loss, o, why, sizeof why);
    if (!poor && train != NULL && o->n_classes >= 2 && train->n >= o->min_points &&
        isnan(o->ref_best) && isnan(o->ref_median)) {
        /* the training loss tells what the accuracy of an imbalanced task hides: a model
         * whose training loss stays near ln K has learned almost nothing */
        size_t k = train->n / 10 > 3 ? train->n / 10 : 3;
        double tl = -median_of(train->y + (train->n - k), k, ws->work);
        double bar = (1 - o->poor_frac) * log((double)o->n_classes);
        if (tl > bar) {
            poor = 1;
            snprintf(why, sizeof why, "%s %.3g stays near the chance level ln %zu = %.3g",
                     train->name, tl, o->n_classes, log((double)o->n_classes));
        }
    }
    if (start < p->n && !train_moving && (poor || !val_moving)) {
        double lvl_raw = p->maximize ? end : -end;
        double conf = 0.6 + 0.4 * fmin(1.0, (double)(p->n - start) /
                                                (3.0 * (double)(o->converge_points + 1)));
        if (poor) {
            return push_verdict(j, KB_CURVE_VERDICT_UNDERFITTING, p->x[start],
                                p->x[start + o->converge_points - 1], conf, nm, err,
                                "%s flat at %.4g since step %g: %s", nm, lvl_raw, p->x[start],
                                why);
        }
        return push_verdict(j, KB_CURVE_VERDICT_CONVERGED, p->x[start],
                            p->x[start + o->converge_points - 1], conf, nm, err,
                            "%s at %.4g since step %g (within %.3g), trend %+.3g", nm, lvl_raw,
                            p->x[start], band, p->maximize ? proj : -proj);
    }
    /* not on a plateau: flat and poor from the start (never learned) is underfitting too */
    if (gain < 3 * sig && p->n >= 2 * o->min_points && !train_moving && poor) {
        return push_verdict(j, KB_CURVE_VERDICT_UNDERFITTING, p->x[0], p->x[p->n - 1], 0.55, nm,
                            err, "%s shows no progress: %s", nm, why);
    }
    double conf = isnan(proj) ? 0.5 : 0.5 + 0.5 * fmin(1.0, proj / fmax(band, 1e-300) / 4.0);
    return push_verdict(j, KB_CURVE_VERDICT_IMPROVING, p->x[0], p->x[p->n - 1], conf, nm, err,
                        "%s %s: %.4g at step %g", nm,
                        isnan(proj) || proj >= 0 ? "still improving" : "not settled yet",
                        p->maximize ? p->y[p->n - 1] : -p->y[p->n - 1], p->x[p->n - 1]);
}

void kb_curve_judgement_release(kb_curve_judgement *j)
{
    if (j == NULL) {
        return;
    }
    kb_free(j->verdicts);
    memset(j, 0, sizeof *j);
}

static int verdict_rank(const kb_curve_verdict *v)
{
    /* red first, then yellow, then green; inside, the enum order */
    return (2 - (int)kb_curve_verdict_light(v->kind)) * 16 + (int)v->kind;
}

static int cmp_verdict(const void *a, const void *b)
{
    int x = verdict_rank(a), y = verdict_rank(b);
    return (x > y) - (x < y);
}

int kb_curve_judge(kb_curve_judgement *out, const kb_curve *c, const kb_curve_opts *opts,
                   kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    memset(out, 0, sizeof *out);
    KB_CHECK_ARG(c != NULL);
    kb_curve_opts o = KB_CURVE_OPTS_INIT;
    if (opts != NULL) {
        o = *opts;
    }
    out->last_step = out->last_value = out->best_step = out->best_value = NAN;
    out->noise = NAN;

    long obj = -1;
    if (o.metric != NULL) {
        obj = kb_curve_find(c, o.metric);
        if (obj < 0) {
            return kb_error_set(err, KB_EINVAL, "judge: no series named '%s'", o.metric);
        }
    } else {
        /* a validation metric tested rarely is no objective yet while the loss has points */
        obj = find_first_n(c, objective_names, o.min_points);
        for (size_t k = 0; obj < 0 && k < c->n_series; k++) {
            if (!is_aux(c->series[k].name) && c->series[k].n_values > 0) {
                obj = (long)k;
            }
        }
    }
    int rc = KB_OK;
    judge_ws ws = {NULL, NULL};
    pts P[3];
    memset(P, 0, sizeof P);
    size_t n = c->n_steps ? c->n_steps : 1;
    /* theil_sen's pairwise slopes need up to 64*63/2 entries */
    ws.work = kb_malloc_array(n > 2048 ? n : 2048, sizeof(double));
    ws.work2 = kb_malloc_array(n, sizeof(double));
    for (int k = 0; k < 3; k++) {
        P[k].x = kb_malloc_array(n, sizeof(double));
        P[k].y = kb_malloc_array(n, sizeof(double));
        P[k].s = kb_malloc_array(n, sizeof(double));
        if (P[k].x == NULL || P[k].y == NULL || P[k].s == NULL) {
            rc = kb_error_set(err, KB_ENOMEM, "judge: out of memory");
        }
    }
    if (ws.work == NULL || ws.work2 == NULL || rc != KB_OK) {
        rc = kb_error_set(err, KB_ENOMEM, "judge: out of memory");
        goto done;
    }

    /* 1. overflow */
    char what[160] = "";
    const char *ometric = NULL;
    double ostep = find_overflow(c, what, sizeof what, &ometric);
    if (isinf(ostep) && status_says_diverged(c->status) && c->n_steps > 0) {
        ostep = c->steps[c->n_steps - 1];
        snprintf(what, sizeof what, "the run ended with status '%s'", c->status);
    }
    if (!isinf(ostep)) {
        rc = push_verdict(out, KB_CURVE_VERDICT_OVERFLOW, ostep, ostep,
                          ometric != NULL ? 1.0 : 0.9, ometric ? ometric : "", err, "%s", what);
        if (rc != KB_OK) {
            goto done;
        }
    }
    if (obj < 0) {
        goto finish;
    }

    /* 2. the objective and its companions, on the finite data before any overflow */
    const char *oname = c->series[obj].name;
    int maximize = o.mode == KB_CURVE_MODE_MAX   ? 1
                   : o.mode == KB_CURVE_MODE_MIN ? 0
                                                 : kb_curve_name_maximizes(oname);
    pts *po = &P[0], *pt = NULL, *pv = NULL;
    load_pts(po, c, obj, maximize, ostep, &o, &ws);
    snprintf(out->metric, sizeof out->metric, "%s", oname);
    out->maximize = maximize;
    out->n_points = po->n;
    if (po->n == 0) {
        goto finish;
    }
    out->noise = po->sigma;
    out->last_step = po->x[po->n - 1];
    out->last_value = maximize ? po->y[po->n - 1] : -po->y[po->n - 1];
    size_t bi = 0;
    for (size_t i = 1; i < po->n; i++) {
        if (po->y[i] > po->y[bi]) {
            bi = i;
        }
    }
    out->best_step = po->x[bi];
    out->best_value = maximize ? po->y[bi] : -po->y[bi];

    long tl = find_first(c, train_loss_names);
    if (tl == obj) {
        pt = po;
    } else if (tl >= 0) {
        pt = &P[1];
        load_pts(pt, c, tl, 0, ostep, &o, &ws);
    }

    /* 3. diverging: on the training loss, else on a loss-like objective */
    const pts *pd = pt != NULL ? pt : (!maximize ? po : NULL);
    /* an accuracy tells a broken network (pinned to the class frequencies) from a swinging one */
    const pts *pacc = maximize && strstr(oname, "acc") != NULL ? po : NULL;
    if (pd != NULL && (rc = judge_diverging(out, pd, pacc, &o, &ws, err)) != KB_OK) {
        goto done;
    }
    int red = out->n_verdicts > 0;

    /* 4. overfitting: validation loss (else accuracy) against the training loss */
    if (pt != NULL && !red) {
        long vl = find_first(c, val_loss_names);
        if (vl < 0) {
            vl = find_first(c, val_acc_names);
        }
        if (vl >= 0 && vl != tl) {
            pv = vl == obj ? po : &P[2];
            if (pv != po) {
                load_pts(pv, c, vl, kb_curve_name_maximizes(c->series[vl].name), ostep, &o, &ws);
            }
            if ((rc = judge_overfitting(out, pv, pt, &o, &ws, err)) != KB_OK) {
                goto done;
            }
            /* try the accuracy too when the loss showed nothing */
            long va = find_first(c, val_acc_names);
            if (out->n_verdicts == 0 && va >= 0 && va != vl) {
                pv = va == obj ? po : &P[2];
                if (pv != po) {
                    load_pts(pv, c, va, 1, ostep, &o, &ws);
                }
                if ((rc = judge_overfitting(out, pv, pt, &o, &ws, err)) != KB_OK) {
                    goto done;
                }
            }
        }
    }

    /* 5. the objective's own trend: oscillating, underfitting, converged or improving.
     * A red run still gets it (it says how the run looked before it broke) unless the
     * objective is the diverging loss itself. */
    if (!(red && pd == po)) {
        /* the validation loss as a companion when the objective is something else */
        const pts *pvl = NULL;
        long vl = find_first(c, val_loss_names);
        if (vl >= 0 && vl != obj) {
            pvl = &P[2];
            load_pts(&P[2], c, vl, 0, ostep, &o, &ws);
        }
        if ((rc = judge_trend(out, po, pt, pvl, &o, &ws, err)) != KB_OK) {
            goto done;
        }
    }

finish:
    if (out->n_verdicts > 1) {
        qsort(out->verdicts, out->n_verdicts, sizeof *out->verdicts, cmp_verdict);
    }
    out->light = KB_CURVE_LIGHT_GREEN;
    for (size_t i = 0; i < out->n_verdicts; i++) {
        kb_curve_light l = kb_curve_verdict_light(out->verdicts[i].kind);
        if (l > out->light) {
            out->light = l;
        }
    }
done:
    kb_free(ws.work);
    kb_free(ws.work2);
    for (int k = 0; k < 3; k++) {
        kb_free(P[k].x);
        kb_free(P[k].y);
        kb_free(P[k].s);
    }
    if (rc != KB_OK) {
        kb_curve_judgement_release(out);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Pruning                                                                                    */

/* 1 if a is worse than b in the objective's direction */
static int worse_than(double a, double b, int maximize)
{
    return maximize ? a < b : a > b;
}

static void prune_fill(kb_curve_prune *out, const kb_curve_judgement *j)
{
    out->kind = j->n_verdicts > 0 ? j->verdicts[0].kind : KB_CURVE_VERDICT_IMPROVING;
    out->light = j->light;
    snprintf(out->metric, sizeof out->metric, "%s", j->metric);
    out->maximize = j->maximize;
    out->last_step = j->last_step;
    out->last_value = j->last_value;
    out->best_value = j->best_value;
}

/* converged, underfitting, overfitting: a plateau, nothing more to gain by going on; and
 * oscillating, whose rule requires no trend over the last half: it swings around a level it
 * will not leave, so going on buys only more swings (its best point so far is the result) */
static int is_stop_verdict(kb_curve_verdict_kind k)
{
    return k == KB_CURVE_VERDICT_CONVERGED || k == KB_CURVE_VERDICT_UNDERFITTING ||
           k == KB_CURVE_VERDICT_OVERFITTING || k == KB_CURVE_VERDICT_OSCILLATING;
}

/* Does a stop verdict need a confirming point (the same primary verdict without the last
 * point)? Converged, underfitting and oscillating are read off a plateau or a swing whose
 * edge one noisy point can move, so they do. Overfitting does not: its rule already asks for
 * persistence, diverge_persist raw points each worse than the best by its margins, with a
 * worsening trend since the best while the training loss improves; a confirming point was a
 * fourth such point and made the earliest stop 4 points after the validation minimum, and
 * with it kb stopped no sooner than Keras' EarlyStopping(patience 5) on average. On the TRAIN
 * half of the labelled curves, stopping at once moved the overfitting stops 1 point sooner
 * (median +4 -> +3 after the minimum, verified mean +5.1 -> +3.9) and added no false stop
 * (0/12 improving curves); the only other curve it stopped sooner is c116, a "converged"
 * recipe whose val_loss rises (it fails that label's hindsight check), already stopped as
 * overfitting, now 3 points sooner. */
static int needs_confirmation(kb_curve_verdict_kind k)
{
    return k != KB_CURVE_VERDICT_OVERFITTING;
}

/* The first plateau verdict of j, or NULL. */
static const kb_curve_verdict *plateau_verdict(const kb_curve_judgement *j)
{
    for (size_t i = 0; i < j->n_verdicts; i++) {
        if (is_stop_verdict(j->verdicts[i].kind)) {
            return &j->verdicts[i];
        }
    }
    return NULL;
}

/* Is `kind` also the primary verdict of c without its last row? (*same_out 0/1) */
static int same_verdict_before(int *same_out, const kb_curve *c, const kb_curve_opts *opts,
                               kb_curve_verdict_kind kind, kb_error *err)
{
    *same_out = 0;
    size_t k = c->n_steps - 1;
    kb_curve p = *c;
    p.series = kb_malloc_array(c->n_series ? c->n_series : 1, sizeof *p.series);
    if (p.series == NULL) {
        return kb_error_set(err, KB_ENOMEM, "prune: out of memory");
    }
    p.n_steps = k;
    p.status = NULL; /* the final line's status belongs to the whole run */
    for (size_t s = 0; s < c->n_series; s++) {
        p.series[s] = c->series[s];
        if (!isnan(c->series[s].values[k])) {
            p.series[s].n_values--;
        }
        if (!(c->series[s].first_nan_step <= c->steps[k - 1])) {
            p.series[s].n_nan = 0;
            p.series[s].first_nan_step = NAN;
        }
    }
    kb_curve_judgement j;
    int rc = kb_curve_judge(&j, &p, opts, err);
    if (rc == KB_OK) {
        *same_out = j.n_verdicts > 0 && j.verdicts[0].kind == kind;
        kb_curve_judgement_release(&j);
    }
    kb_free(p.series);
    return rc;
}

int kb_curve_prune_check(kb_curve_prune *out, const kb_curve *c, const kb_curve_opts *opts,
                         double target_step, double incumbent, double p_min, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    memset(out, 0, sizeof *out);
    out->p_beat = out->last_step = out->last_value = out->best_value = NAN;
    out->kind = KB_CURVE_VERDICT_IMPROVING;
    KB_CHECK_ARG(c != NULL);
    kb_curve_judgement j;
    int rc = kb_curve_judge(&j, c, opts, err);
    if (rc != KB_OK) {
        return rc;
    }
    prune_fill(out, &j);
    int same = j.n_verdicts > 0 &&
               (j.light == KB_CURVE_LIGHT_RED ||
                (is_stop_verdict(j.verdicts[0].kind) && !needs_confirmation(j.verdicts[0].kind)));
    if (!same && j.n_verdicts > 0 && is_stop_verdict(j.verdicts[0].kind) && c->n_steps > 1 &&
        (rc = same_verdict_before(&same, c, opts, j.verdicts[0].kind, err)) != KB_OK) {
        goto done;
    }
    if (same) {
        /* red and overfitting at once; the other stop verdicts once confirmed */
        out->prune = 1;
        out->why = j.light == KB_CURVE_LIGHT_RED ? KB_CURVE_PRUNE_RED : KB_CURVE_PRUNE_VERDICT;
        snprintf(out->reason, sizeof out->reason, "%s at step %g: %s",
                 kb_curve_verdict_name(j.verdicts[0].kind), j.verdicts[0].step,
                 j.verdicts[0].detail);
        goto done;
    }
    if (!(p_min > 0) || !isfinite(incumbent) || j.n_points == 0) {
        goto done;
    }
    /* the "will not win" rules wait for a quarter of the run (no early lr-warm-up noise) */
    if (isfinite(target_step) && c->n_steps > 0 && j.last_step < 0.25 * target_step) {
        goto done;
    }
    const kb_curve_verdict *pv = plateau_verdict(&j);
    /* a margin of 3 sigma and 1% of the incumbent, so that noise and a small later rise
     * (e.g. a learning-rate step) do not stop a run that ties */
    double margin = 3 * (isfinite(j.noise) ? j.noise : 0) + 0.01 * fabs(incumbent);
    if (pv != NULL && isfinite(j.best_value) &&
        worse_than(j.best_value + (j.maximize ? margin : -margin), incumbent, j.maximize)) {
        out->prune = 1;
        out->why = KB_CURVE_PRUNE_PLATEAU;
        out->kind = pv->kind;
        snprintf(out->reason, sizeof out->reason,
                 "%s at step %g: best %s %.4g is worse than the incumbent %.4g", 
                 kb_curve_verdict_name(pv->kind), pv->step, j.metric, j.best_value, incumbent);
        goto done;
    }
    if (isfinite(target_step) && j.n_points >= 5) {
        kb_curve_pred f;
        kb_error ferr = KB_ERROR_INIT;
        rc = kb_curve_forecast(&f, c, &j, target_step, incumbent, NULL, &ferr);
        if (rc == KB_OK) {
            out->p_beat = f.p_beat;
            if (f.p_beat < p_min) {
                out->prune = 1;
                out->why = KB_CURVE_PRUNE_FORECAST;
                snprintf(out->reason, sizeof out->reason,
                         "forecast %s at step %g: %.4g [%.4g, %.4g]; P(beat %.4g) = %.3f < %.3f",
                         j.metric, target_step, f.mean, f.lo, f.hi, incumbent, f.p_beat, p_min);
            }
        } else if (rc == KB_ENOMEM) {
            rc = kb_error_set(err, rc, "%s", ferr.msg);
            goto done;
        }
        rc = KB_OK; /* too few points or no model fitted: no forecast, continue */
    }
done:
    kb_curve_judgement_release(&j);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The stored verdict: canonical JSON text                                                    */

typedef struct jtext {
    kb_buf b;
    int bad;
} jtext;

static void jt_raw(jtext *t, const char *s)
{
    if (!t->bad && kb_buf_puts(&t->b, s) != KB_OK) {
        t->bad = 1;
    }
}

/* integral values without a fraction; else the shortest %.15g..%.17g that reads back */
static void jt_num(jtext *t, double v)
{
    char tmp[40];
    if (!isfinite(v)) {
        snprintf(tmp, sizeof tmp, "null");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(tmp, sizeof tmp, "%.0f", v == 0 ? 0.0 : v); /* no "-0" */
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof tmp, "%.*g", prec, v);
            if (strtod(tmp, NULL) == v) {
                break;
            }
        }
    }
    jt_raw(t, tmp);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not one (RFC 3629). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                                                 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || (n == 2 && c < 0xC2) || (n == 4 && c > 0xF4)) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    /* overlong 3/4-byte forms, surrogates, and code points above U+10FFFF */
    if ((n == 3 && c == 0xE0 && s[1] < 0xA0) || (n == 3 && c == 0xED && s[1] >= 0xA0) ||
        (n == 4 && c == 0xF0 && s[1] < 0x90) || (n == 4 && c == 0xF4 && s[1] >= 0x90)) {
        return 0;
    }
    return n;
}

static void jt_str(jtext *t, const char *s)
{
    jt_raw(t, "\"");
    const unsigned char *p = (const unsigned char *)s;
    while (!t->bad && *p != '\0') {
        char tmp[8];
        if (*p == '"' || *p == '\\') {
            snprintf(tmp, sizeof tmp, "\\%c", *p);
        } else if (*p < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", *p);
        } else {
            size_t n = utf8_len(p);
            if (n == 0) {
                jt_raw(t, "\xEF\xBF\xBD"); /* U+FFFD for a byte that is not UTF-8 */
                p++;
            } else if (kb_buf_append(&t->b, p, n) != KB_OK) {
                t->bad = 1;
            } else {
                p += n;
            }
            continue;
        }
        jt_raw(t, tmp);
        p++;
    }
    jt_raw(t, "\"");
}

/* `"key":` (keys are written in bytewise order by the caller) */
static void jt_key(jtext *t, const char *key, int first)
{
    jt_raw(t, first ? "" : ",");
    jt_str(t, key);
    jt_raw(t, ":");
}

static void jt_point(jtext *t, const char *key, double step, double value)
{
    jt_key(t, key, 0);
    jt_raw(t, "{\"step\":");
    jt_num(t, step);
    jt_raw(t, ",\"value\":");
    jt_num(t, value);
    jt_raw(t, "}");
}

static void jt_verdict_doc(jtext *t, const kb_curve_judgement *j, const kb_curve_advice *a,
                           size_t n_a)
{
    jt_raw(t, "{\"advice\":[");
    for (size_t i = 0; i < n_a; i++) {
        jt_raw(t, i > 0 ? ",{" : "{");
        jt_key(t, "from", 1);
        jt_num(t, a[i].from);
        jt_key(t, "param", 0);
        jt_str(t, a[i].param);
        jt_key(t, "reason", 0);
        jt_str(t, kb_curve_verdict_name(a[i].reason));
        jt_key(t, "text", 0);
        jt_str(t, a[i].text);
        jt_key(t, "to", 0);
        jt_num(t, a[i].to);
        jt_raw(t, "}");
    }
    jt_raw(t, "]");
    jt_point(t, "best", j->best_step, j->best_value);
    jt_point(t, "last", j->last_step, j->last_value);
    jt_key(t, "light", 0);
    jt_str(t, kb_curve_light_name(j->light));
    jt_key(t, "metric", 0);
    jt_str(t, j->metric);
    jt_key(t, "mode", 0);
    jt_str(t, j->maximize ? "max" : "min");
    jt_key(t, "n_points", 0);
    jt_num(t, (double)j->n_points);
    jt_key(t, "schema", 0);
    jt_str(t, KB_CURVE_VERDICT_JSON_SCHEMA);
    jt_key(t, "verdicts", 0);
    jt_raw(t, "[");
    for (size_t i = 0; i < j->n_verdicts; i++) {
        const kb_curve_verdict *v = &j->verdicts[i];
        jt_raw(t, i > 0 ? ",{" : "{");
        jt_key(t, "confidence", 1);
        jt_num(t, v->confidence);
        jt_key(t, "detail", 0);
        jt_str(t, v->detail);
        jt_key(t, "kind", 0);
        jt_str(t, kb_curve_verdict_name(v->kind));
        jt_key(t, "metric", 0);
        jt_str(t, v->metric);
        jt_key(t, "step", 0);
        jt_num(t, v->step);
        jt_raw(t, "}");
    }
    jt_raw(t, "]}");
}

int kb_curve_verdict_json(char **out, const kb_curve *c, const kb_curve_opts *opts,
                          const kb_param *config, size_t n_config, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    *out = NULL;
    KB_CHECK_ARG(c != NULL && (config != NULL || n_config == 0));
    kb_curve_advice *a = NULL;
    size_t n_a = 0;
    jtext t = {KB_BUF_INIT, 0};
    kb_curve_judgement j;
    int rc = kb_curve_judge(&j, c, opts, err);
    if (rc != KB_OK) {
        return rc;
    }
    if ((rc = kb_curve_advise(&a, &n_a, &j, config, n_config, err)) != KB_OK) {
        goto done;
    }
    jt_verdict_doc(&t, &j, a, n_a);
    if (t.bad) {
        rc = kb_error_set(err, KB_ENOMEM, "verdict json: out of memory");
        goto done;
    }
    *out = t.b.data;
    t.b.data = NULL;
done:
    kb_buf_release(&t.b);
    kb_free(a);
    kb_curve_judgement_release(&j);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Rule-based advice                                                                          */

static const char *const lr_keys[] = {"base_lr", "lr", "learning_rate", "eta", NULL};
static const char *const batch_keys[] = {"batch_size", "batch", NULL};
static const char *const clip_keys[] = {"clip_gradients", "clip", "max_grad_norm",
                                        "gradient_clip", NULL};
static const char *const wd_keys[] = {"weight_decay", "wd", "l2", NULL};
static const char *const dropout_keys[] = {"dropout", NULL};
static const char *const iter_keys[] = {"max_iter", "iterations", "steps", "epochs", NULL};
static const char *const units_keys[] = {"units", "hidden", "n_units", "hidden_units", NULL};
static const char *const layers_keys[] = {"layers", "n_layers", "depth", NULL};

/* The first key present with a numeric value; *val NaN and NULL when none. */
static const char *find_num(const kb_param *cfg, size_t n, const char *const *keys, double *val)
{
    for (size_t i = 0; keys[i] != NULL; i++) {
        const kb_param *p = kb_params_find(cfg, n, keys[i]);
        if (p != NULL) {
            double v = kb_value_as_double(&p->value);
            if (isfinite(v)) {
                *val = v;
                return p->name;
            }
        }
    }
    *val = NAN;
    return NULL;
}

typedef struct advice_list {
    kb_curve_advice *a;
    size_t n;
    int oom;
} advice_list;

static void advise(advice_list *l, kb_curve_verdict_kind why, const char *param, double from,
                   double to, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void advise(advice_list *l, kb_curve_verdict_kind why, const char *param, double from,
                   double to, const char *fmt, ...)
{
    if (l->oom) {
        return;
    }
    kb_curve_advice *a = kb_realloc_array(l->a, l->n + 1, sizeof *a);
    if (a == NULL) {
        l->oom = 1;
        return;
    }
    l->a = a;
    kb_curve_advice *d = &a[l->n++];
    memset(d, 0, sizeof *d);
    d->reason = why;
    snprintf(d->param, sizeof d->param, "%s", param ? param : "");
    d->from = from;
    d->to = to;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->text, sizeof d->text, fmt, ap);
    va_end(ap);
}

/* Round a new value to 2 significant digits, as a person would write it. */
static double round2(double v)
{
    char t[32];
    snprintf(t, sizeof t, "%.2g", v);
    return strtod(t, NULL);
}

static void advise_lr_batch(advice_list *l, kb_curve_verdict_kind why, const kb_param *cfg,
                            size_t n, double lr_div, const char *prefix)
{
    double lr, bs;
    const char *lk = find_num(cfg, n, lr_keys, &lr);
    const char *bk = find_num(cfg, n, batch_keys, &bs);
    if (lk != NULL && bk != NULL && bs >= 2) {
        double nb = floor(bs / 2);
        advise(l, why, lk, lr, round2(lr / lr_div), "%slearning rate %g -> %.2g, batch size %g -> %g",
               prefix, lr, lr / lr_div, bs, nb);
        advise(l, why, bk, bs, nb, "%s", ""); /* part of the text above */
    } else if (lk != NULL) {
        advise(l, why, lk, lr, round2(lr / lr_div), "%slearning rate %g -> %.2g", prefix, lr,
               lr / lr_div);
    } else {
        advise(l, why, "learning_rate", NAN, NAN, "%slower the learning rate %gx", prefix, lr_div);
    }
}

int kb_curve_advise(kb_curve_advice **out, size_t *n_out, const kb_curve_judgement *j,
                    const kb_param *config, size_t n_config, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && n_out != NULL && j != NULL);
    *out = NULL;
    *n_out = 0;
    advice_list l = {NULL, 0, 0};
    double v;
    for (size_t i = 0; i < j->n_verdicts; i++) {
        const kb_curve_verdict *d = &j->verdicts[i];
        switch (d->kind) {
        case KB_CURVE_VERDICT_OVERFLOW: {
            const char *ck = find_num(config, n_config, clip_keys, &v);
            if (ck != NULL && v > 0) {
                advise(&l, d->kind, ck, v, round2(v / 2),
                       "stop; non-finite values at step %g: halve %s %g -> %.2g", d->step, ck, v,
                       v / 2);
            } else {
                advise(&l, d->kind, "clip_gradients", NAN, 0.1,
                       "stop; non-finite values at step %g: add clip_gradients 0.1", d->step);
            }
            advise_lr_batch(&l, d->kind, config, n_config, 3.0, "and/or: ");
            break;
        }
        case KB_CURVE_VERDICT_DIVERGING:
            advise_lr_batch(&l, d->kind, config, n_config, 3.0, "stop; ");
            break;
        case KB_CURVE_VERDICT_OSCILLATING:
            advise_lr_batch(&l, d->kind, config, n_config, 2.0, "");
            break;
        case KB_CURVE_VERDICT_UNDERFITTING: {
            double u, ly;
            const char *uk = find_num(config, n_config, units_keys, &u);
            const char *lk = find_num(config, n_config, layers_keys, &ly);
            if (uk != NULL) {
                advise(&l, d->kind, uk, u, 2 * u, "stop; the model is too small: %s %g -> %g", uk,
                       u, 2 * u);
            }
            if (lk != NULL) {
                advise(&l, d->kind, lk, ly, ly + 1, "add a layer: %s %g -> %g", lk, ly, ly + 1);
            }
            if (uk == NULL && lk == NULL) {
                advise(&l, d->kind, "arch", NAN, NAN,
                       "stop; the model is too small or not learning: add layers / units");
            }
            double lr;
            const char *lrk = find_num(config, n_config, lr_keys, &lr);
            if (lrk != NULL && lr < 1e-4) {
                advise(&l, d->kind, lrk, lr, round2(lr * 10),
                       "the learning rate is tiny: %s %g -> %.2g", lrk, lr, lr * 10);
            }
            double wd;
            const char *wk = find_num(config, n_config, wd_keys, &wd);
            if (wk != NULL && wd > 1e-3) {
                advise(&l, d->kind, wk, wd, round2(wd / 10),
                       "less regularisation: %s %g -> %.2g", wk, wd, wd / 10);
            }
            break;
        }
        case KB_CURVE_VERDICT_OVERFITTING: {
            double wd, dp, it;
            const char *wk = find_num(config, n_config, wd_keys, &wd);
            if (wk != NULL && wd > 0) {
                advise(&l, d->kind, wk, wd, round2(wd * 10), "%s %g -> %.2g", wk, wd, wd * 10);
            } else {
                advise(&l, d->kind, wk ? wk : "weight_decay", wk ? wd : NAN, 0.0005,
                       "add weight_decay 0.0005");
            }
            const char *dk = find_num(config, n_config, dropout_keys, &dp);
            if (dk != NULL && dp > 0) {
                double nd = fmin(0.5, dp + 0.2);
                if (nd > dp) {
                    advise(&l, d->kind, dk, dp, nd, "dropout %g -> %g", dp, nd);
                }
            } else {
                advise(&l, d->kind, "dropout", dk ? dp : NAN, 0.3, "add dropout 0.3");
            }
            const char *ik = find_num(config, n_config, iter_keys, &it);
            if (ik != NULL && strcmp(ik, "epochs") != 0) {
                advise(&l, d->kind, ik, it, d->step,
                       "stop at the best validation step: %s %g -> %g", ik, it, d->step);
            } else {
                advise(&l, d->kind, "", NAN, d->step, "stop at the best validation step %g",
                       d->step);
            }
            break;
        }
        case KB_CURVE_VERDICT_CONVERGED: {
            double it;
            const char *ik = find_num(config, n_config, iter_keys, &it);
            if (ik != NULL && strcmp(ik, "epochs") != 0 && it > d->step) {
                advise(&l, d->kind, ik, it, d->step,
                       "stop now, nothing more to gain: converged at step %g (%s %g -> %g)",
                       d->step, ik, it, d->step);
            } else {
                advise(&l, d->kind, "", NAN, NAN,
                       "stop now, nothing more to gain: converged at step %g", d->step);
            }
            break;
        }
        case KB_CURVE_VERDICT_IMPROVING:
            advise(&l, d->kind, "", NAN, NAN, "continue: %s", d->detail);
            break;
        }
    }
    if (l.oom) {
        kb_free(l.a);
        return kb_error_set(err, KB_ENOMEM, "advise: out of memory");
    }
    *out = l.a;
    *n_out = l.n;
    return KB_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Advice from past runs                                                                      */

static int good_verdict(kb_curve_verdict_kind k)
{
    return k == KB_CURVE_VERDICT_CONVERGED || k == KB_CURVE_VERDICT_IMPROVING;
}

static int same_task(const kb_curve_past_run *a, const kb_curve_past_run *b)
{
    if (a->task_id == NULL || b->task_id == NULL) {
        return a->task_id == b->task_id;
    }
    return strcmp(a->task_id, b->task_id) == 0;
}

static void value_text(char *out, size_t n, const kb_value *v)
{
    switch (v->type) {
    case KB_VALUE_TYPE_FLOAT: snprintf(out, n, "%.17g", v->f); break;
    case KB_VALUE_TYPE_INT: snprintf(out, n, "%lld", (long long)v->i); break;
    case KB_VALUE_TYPE_BOOL: snprintf(out, n, "%s", v->b ? "true" : "false"); break;
    case KB_VALUE_TYPE_STR: snprintf(out, n, "%s", v->s ? v->s : ""); break;
    default: out[0] = '\0'; break;
    }
}

/* One observed change: param, direction (+1/-1 for numbers, 0 for a new text value). */
typedef struct change {
    char param[48];
    int dir;
    char to_value[48];
    double log_ratio;
    double gain;
    const char *bad, *good;
} change;

/* Differences between two configurations (parameters of either side); -1 when more than
 * `max` differ or a parameter exists on one side only. */
static int diff_configs(change *out, size_t max, const kb_curve_past_run *b,
                        const kb_curve_past_run *g)
{
    size_t k = 0;
    for (size_t i = 0; i < b->n_config; i++) {
        const kb_param *pb = &b->config[i];
        const kb_param *pg = kb_params_find(g->config, g->n_config, pb->name);
        if (pg == NULL) {
            return -1;
        }
        if (kb_value_compare(&pb->value, &pg->value) == 0) {
            continue;
        }
        if (k == max) {
            return -1;
        }
        change *c = &out[k++];
        memset(c, 0, sizeof *c);
        snprintf(c->param, sizeof c->param, "%s", pb->name);
        double vb = kb_value_as_double(&pb->value), vg = kb_value_as_double(&pg->value);
        if (isfinite(vb) && isfinite(vg) && vb > 0 && vg > 0 &&
            pb->value.type != KB_VALUE_TYPE_BOOL) {
            c->log_ratio = log(vg / vb);
            c->dir = c->log_ratio > 0 ? 1 : -1;
        } else if (isfinite(vb) && isfinite(vg) && pb->value.type != KB_VALUE_TYPE_BOOL) {
            /* zero or negative values: direction only, ratio undefined */
            c->log_ratio = NAN;
            c->dir = vg > vb ? 1 : -1;
        } else {
            c->dir = 0;
            value_text(c->to_value, sizeof c->to_value, &pg->value);
        }
    }
    for (size_t i = 0; i < g->n_config; i++) {
        if (kb_params_find(b->config, b->n_config, g->config[i].name) == NULL) {
            return -1;
        }
    }
    return (int)k;
}

int kb_curve_advise_history(kb_curve_fix **out, size_t *n_out, kb_curve_verdict_kind kind,
                            const kb_curve_past_run *runs, size_t n_runs, int maximize,
                            kb_error *err)
{
    KB_CHECK_ARG(out != NULL && n_out != NULL);
    KB_CHECK_ARG(runs != NULL || n_runs == 0);
    *out = NULL;
    *n_out = 0;
    change *ch = NULL;
    size_t n_ch = 0, cap_ch = 0;
    kb_curve_fix *fix = NULL;
    double *gains = NULL;
    int rc = KB_OK;
    for (size_t i = 0; i < n_runs; i++) {
        const kb_curve_past_run *b = &runs[i];
        if (b->verdict != kind) {
            continue;
        }
        for (size_t k = 0; k < n_runs; k++) {
            const kb_curve_past_run *g = &runs[k];
            if (k == i || !good_verdict(g->verdict) || !isfinite(g->final_metric) ||
                !same_task(b, g)) {
                continue;
            }
            change d[2];
            int nd = diff_configs(d, 2, b, g);
            if (nd <= 0) {
                continue;
            }
            double gain = NAN;
            if (isfinite(b->final_metric)) {
                gain = maximize ? g->final_metric - b->final_metric
                                : b->final_metric - g->final_metric;
            }
            for (int m = 0; m < nd; m++) {
                if (n_ch == cap_ch) {
                    size_t nc = cap_ch ? 2 * cap_ch : 16;
                    change *t = kb_realloc_array(ch, nc, sizeof *t);
                    if (t == NULL) {
                        rc = kb_error_set(err, KB_ENOMEM, "advise: out of memory");
                        goto done;
                    }
                    ch = t;
                    cap_ch = nc;
                }
                ch[n_ch] = d[m];
                ch[n_ch].gain = gain;
                ch[n_ch].bad = b->id;
                ch[n_ch].good = g->id;
                n_ch++;
            }
        }
    }
    if (n_ch == 0) {
        goto done;
    }
    /* group by (param, dir, to_value) */
    fix = kb_calloc(n_ch, sizeof *fix);
    gains = kb_malloc_array(n_ch, sizeof *gains);
    int *used = kb_calloc(n_ch, sizeof *used);
    if (fix == NULL || gains == NULL || used == NULL) {
        kb_free(used);
        rc = kb_error_set(err, KB_ENOMEM, "advise: out of memory");
        goto done;
    }
    size_t n_fix = 0;
    for (size_t i = 0; i < n_ch; i++) {
        if (used[i]) {
            continue;
        }
        kb_curve_fix *f = &fix[n_fix++];
        snprintf(f->param, sizeof f->param, "%s", ch[i].param);
        snprintf(f->to_value, sizeof f->to_value, "%s", ch[i].to_value);
        snprintf(f->example_bad, sizeof f->example_bad, "%s", ch[i].bad ? ch[i].bad : "");
        snprintf(f->example_good, sizeof f->example_good, "%s", ch[i].good ? ch[i].good : "");
        double lr_sum = 0;
        size_t lr_n = 0, ng = 0;
        for (size_t k = i; k < n_ch; k++) {
            if (used[k] || strcmp(ch[k].param, ch[i].param) != 0 || ch[k].dir != ch[i].dir ||
                strcmp(ch[k].to_value, ch[i].to_value) != 0) {
                continue;
            }
            used[k] = 1;
            f->n_support++;
            if (isfinite(ch[k].log_ratio)) {
                lr_sum += ch[k].log_ratio;
                lr_n++;
            }
            if (isfinite(ch[k].gain)) {
                gains[ng++] = ch[k].gain;
            }
        }
        f->ratio = lr_n ? exp(lr_sum / (double)lr_n) : NAN;
        if (ng > 0) {
            double *w = kb_malloc_array(ng, sizeof *w);
            if (w == NULL) {
                kb_free(used);
                rc = kb_error_set(err, KB_ENOMEM, "advise: out of memory");
                goto done;
            }
            f->gain = median_of(gains, ng, w);
            kb_free(w);
        } else {
            f->gain = NAN;
        }
    }
    kb_free(used);
    /* sort: support, then gain (insertion sort; the list is short) */
    for (size_t i = 1; i < n_fix; i++) {
        kb_curve_fix t = fix[i];
        size_t k = i;
        while (k > 0 && (fix[k - 1].n_support < t.n_support ||
                         (fix[k - 1].n_support == t.n_support &&
                          (isnan(fix[k - 1].gain) ? -INFINITY : fix[k - 1].gain) <
                              (isnan(t.gain) ? -INFINITY : t.gain)))) {
            fix[k] = fix[k - 1];
            k--;
        }
        fix[k] = t;
    }
    *out = fix;
    *n_out = n_fix;
    fix = NULL;
done:
    kb_free(fix);
    kb_free(gains);
    kb_free(ch);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Forecast: an ensemble of parametric learning-curve models (Domhan et al. 2015)             */

/*
 * Every model is fitted to z (the oriented values scaled to [0, 1], larger is better) as a
 * function of u = (step + off) / scale >= 1. Positive parameters are fitted in log space (the
 * "l" prefixes below); an invalid parameter region evaluates to NaN, which LM rejects.
 */
enum {
    M_POW3, M_POW4, M_LOG_POWER, M_EXP3, M_EXP4, M_JANOSCHEK, M_WEIBULL, M_MMF, M_VAPOR,
    M_LOGLOG_LINEAR, M_ILOG2, M_HILL3
};

static const struct {
    const char *name;
    size_t k;
} models[KB_CURVE_N_MODELS] = {
    {"pow3", 3},      {"pow4", 4},     {"log_power", 3}, {"exp3", 3},
    {"exp4", 4},      {"janoschek", 4}, {"weibull", 4},  {"mmf", 4},
    {"vapor_pressure", 3}, {"log_log_linear", 2}, {"ilog2", 2}, {"hill3", 3}};

const char *kb_curve_model_name(size_t i)
{
    return i < KB_CURVE_N_MODELS ? models[i].name : "unknown";
}

/* exp() of a log-parameter, clamped so that a wild LM step cannot overflow */
static double pexp(double v)
{
    return exp(v < -30 ? -30 : v > 30 ? 30 : v);
}

static double model_eval(int m, const double *p, double u)
{
    switch (m) {
    case M_POW3: return p[0] - p[1] * pow(u, -pexp(p[2]));
    case M_POW4: return p[0] - pow(pexp(p[1]) * u + pexp(p[2]), -pexp(p[3]));
    case M_LOG_POWER: return p[0] / (1 + pow(u / pexp(p[1]), p[2]));
    case M_EXP3: return p[0] - exp(fmin(-pexp(p[1]) * u + p[2], 700));
    case M_EXP4: return p[0] - exp(fmin(-pexp(p[1]) * pow(u, pexp(p[2])) + p[3], 700));
    case M_JANOSCHEK: return p[0] - (p[0] - p[1]) * exp(-pexp(p[2]) * pow(u, pexp(p[3])));
    case M_WEIBULL: return p[0] - (p[0] - p[1]) * exp(-pow(pexp(p[2]) * u, pexp(p[3])));
    case M_MMF: return p[0] - (p[0] - p[1]) / (1 + pow(pexp(p[2]) * u, pexp(p[3])));
    case M_VAPOR: return exp(fmin(p[0] + p[1] / u + p[2] * log(u), 700)) - 1;
    case M_LOGLOG_LINEAR: {
        double a = p[0] * log(u) + p[1];
        return a > 0 ? log(a) - 1 : NAN;
    }
    case M_ILOG2: return p[0] - p[1] / log(u + 1);
    case M_HILL3: {
        double e = pexp(p[1]), ku = pow(pexp(p[2]), e), uu = pow(u, e);
        return p[0] * uu / (ku + uu);
    }
    }
    return NAN;
}

/* Up to 3 starting points for model m from the data's shape; returns how many. */
static size_t model_starts(double st[3][4], int m, const double *u, const double *z, size_t n)
{
    double z0 = z[0], zl = z[n - 1], u0 = u[0], ul = u[n - 1];
    double umid = u[n / 2];
    double c = zl + 0.1 * fmax(zl - z0, 0.05);
    double drop = fmax(c - z0, 1e-3);
    size_t s = 0;
    switch (m) {
    case M_POW3:
        for (int t = 0; t < 3; t++) {
            double al = t == 0 ? 0.5 : t == 1 ? 1.0 : 0.2;
            double cc = t == 2 ? zl + 0.5 * fmax(zl - z0, 0.05) : c;
            st[s][0] = cc;
            st[s][1] = fmax(cc - z0, 1e-3) * pow(u0, al);
            st[s][2] = log(al);
            s++;
        }
        break;
    case M_POW4:
        for (int t = 0; t < 2; t++) {
            double al = t == 0 ? 0.5 : 1.0;
            st[s][0] = c;
            st[s][1] = log(pow(drop, -1 / al) / u0 * 0.9);
            st[s][2] = log(pow(drop, -1 / al) * 0.1);
            st[s][3] = log(al);
            s++;
        }
        break;
    case M_LOG_POWER:
        st[s][0] = c;
        st[s][1] = log(umid);
        st[s][2] = -1;
        s++;
        st[s][0] = c;
        st[s][1] = log(u0 + 1);
        st[s][2] = -0.5;
        s++;
        break;
    case M_EXP3:
    case M_EXP4:
        for (int t = 0; t < 2; t++) {
            double a = (t == 0 ? 3.0 : 1.0) / (ul - u0 + 1e-9);
            st[s][0] = c;
            st[s][1] = log(a);
            if (m == M_EXP3) {
                st[s][2] = log(drop) + a * u0;
            } else {
                st[s][2] = 0;
                st[s][3] = log(drop) + a * u0;
            }
            s++;
        }
        break;
    case M_JANOSCHEK:
    case M_WEIBULL:
    case M_MMF:
        for (int t = 0; t < 2; t++) {
            st[s][0] = c;
            st[s][1] = z0;
            st[s][2] = log((t == 0 ? 3.0 : 1.0) / ul);
            st[s][3] = t == 0 ? 0 : log(0.5);
            if (m == M_MMF) {
                st[s][2] = log((t == 0 ? 1.0 : 3.0) / umid);
                st[s][3] = 0;
            }
            s++;
        }
        break;
    case M_VAPOR:
        st[s][0] = log(1 + c);
        st[s][1] = (log(1 + fmax(z0, -0.9)) - st[s][0]) * u0;
        st[s][2] = 0;
        s++;
        break;
    case M_LOGLOG_LINEAR:
    case M_ILOG2: {
        /* both are linear in their parameters after a transform: least squares start */
        double sx = 0, sy = 0, sxx = 0, sxy = 0;
        for (size_t i = 0; i < n; i++) {
            double xi = m == M_ILOG2 ? 1 / log(u[i] + 1) : log(u[i]);
            double yi = m == M_ILOG2 ? z[i] : exp(z[i] + 1);
            sx += xi;
            sy += yi;
            sxx += xi * xi;
            sxy += xi * yi;
        }
        double dn = (double)n, den = dn * sxx - sx * sx;
        double a = fabs(den) > 1e-300 ? (dn * sxy - sx * sy) / den : 0;
        double b = (sy - a * sx) / dn;
        if (m == M_ILOG2) {
            st[s][0] = b;
            st[s][1] = -a;
        } else {
            st[s][0] = a;
            st[s][1] = b;
        }
        s++;
        break;
    }
    case M_HILL3:
        st[s][0] = c;
        st[s][1] = 0;
        st[s][2] = log(umid);
        s++;
        break;
    }
    return s;
}

/* Solve the k x k SPD system a x = b by Cholesky (k <= 4); -1 if not positive definite. */
static int small_solve(double *x, const double *a, const double *b, size_t k)
{
    double l[16] = {0};
    for (size_t j = 0; j < k; j++) {
        double d = a[j + j * k];
        for (size_t t = 0; t < j; t++) {
            d -= l[j + t * k] * l[j + t * k];
        }
        if (!(d > 0) || !isfinite(d)) {
            return -1;
        }
        l[j + j * k] = sqrt(d);
        for (size_t i = j + 1; i < k; i++) {
            double s = a[i + j * k];
            for (size_t t = 0; t < j; t++) {
                s -= l[i + t * k] * l[j + t * k];
            }
            l[i + j * k] = s / l[j + j * k];
        }
    }
    double y[4];
    for (size_t i = 0; i < k; i++) {
        double s = b[i];
        for (size_t t = 0; t < i; t++) {
            s -= l[i + t * k] * y[t];
        }
        y[i] = s / l[i + i * k];
    }
    for (size_t i = k; i-- > 0;) {
        double s = y[i];
        for (size_t t = i + 1; t < k; t++) {
            s -= l[t + i * k] * x[t];
        }
        x[i] = s / l[i + i * k];
    }
    return 0;
}

static double residuals(double *r, int m, const double *p, const double *u, const double *z,
                        size_t n)
{
    double rss = 0;
    for (size_t i = 0; i < n; i++) {
        r[i] = model_eval(m, p, u[i]) - z[i];
        rss += r[i] * r[i];
    }
    return isfinite(rss) ? rss : INFINITY;
}

/* Forward-difference Jacobian of the model at p (column-major n x k). */
static int jacobian(double *jac, int m, const double *p, size_t k, const double *u, size_t n)
{
    for (size_t j = 0; j < k; j++) {
        double q[4];
        memcpy(q, p, k * sizeof *q);
        double h = 1e-7 * fmax(1.0, fabs(p[j]));
        q[j] += h;
        for (size_t i = 0; i < n; i++) {
            double f1 = model_eval(m, q, u[i]), f0 = model_eval(m, p, u[i]);
            jac[i + j * n] = (f1 - f0) / h;
            if (!isfinite(jac[i + j * n])) {
                return -1;
            }
        }
    }
    return 0;
}

static void normal_matrix(double *a, double *g, const double *jac, const double *r, size_t k,
                          size_t n)
{
    for (size_t i = 0; i < k; i++) {
        for (size_t j = 0; j <= i; j++) {
            double s = 0;
            for (size_t t = 0; t < n; t++) {
                s += jac[t + i * n] * jac[t + j * n];
            }
            a[i + j * k] = a[j + i * k] = s;
        }
        if (g != NULL) {
            double s = 0;
            for (size_t t = 0; t < n; t++) {
                s += jac[t + i * n] * r[t];
            }
            g[i] = s;
        }
    }
}

/*
 * Levenberg-Marquardt with Marquardt's diagonal scaling: solve (A + lambda diag(A)) d = -g,
 * accept when the residual sum falls (lambda /= 3), else lambda *= 4. Returns the residual sum
 * (INFINITY when the start is invalid); p holds the best parameters.
 */
static double lm_fit(double *p, int m, size_t k, const double *u, const double *z, size_t n,
                     const kb_curve_forecast_opts *o, double *r, double *jac)
{
    double rss = residuals(r, m, p, u, z, n);
    if (!isfinite(rss)) {
        return INFINITY;
    }
    double lambda = 1e-3;
    for (size_t it = 0; it < o->max_iter; it++) {
        if (jacobian(jac, m, p, k, u, n) != 0) {
            break;
        }
        double a[16], g[4], d[4], q[4], b[4];
        normal_matrix(a, g, jac, r, k, n);
        int improved = 0;
        while (lambda < 1e12) {
            double aa[16];
            memcpy(aa, a, sizeof aa);
            for (size_t i = 0; i < k; i++) {
                /* the floor keeps a parameter the data do not inform from a singular step */
                aa[i + i * k] += lambda * fmax(a[i + i * k], 1e-12);
                b[i] = -g[i];
            }
            if (small_solve(d, aa, b, k) == 0) {
                for (size_t i = 0; i < k; i++) {
                    q[i] = p[i] + d[i];
                }
                double rq = 0;
                int ok = 1;
                for (size_t i = 0; i < n && ok; i++) {
                    double e = model_eval(m, q, u[i]) - z[i];
                    ok = isfinite(e);
                    rq += e * e;
                }
                if (ok && rq < rss) {
                    double rel = (rss - rq) / fmax(rss, 1e-300);
                    memcpy(p, q, k * sizeof *p);
                    rss = residuals(r, m, p, u, z, n);
                    lambda = fmax(lambda / 3, 1e-12);
                    improved = rel > o->tol ? 1 : 2;
                    break;
                }
            }
            lambda *= 4;
        }
        if (improved != 1) {
            break;
        }
    }
    return rss;
}

static double phi(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0));
}

static double mixture_cdf(double q, const double *w, const double *mu, const double *sd, size_t m)
{
    double f = 0;
    for (size_t i = 0; i < m; i++) {
        if (w[i] > 0) {
            f += w[i] * phi((q - mu[i]) / sd[i]);
        }
    }
    return f;
}

static double mixture_quantile(double p, const double *w, const double *mu, const double *sd,
                               size_t m)
{
    double a = INFINITY, b = -INFINITY;
    for (size_t i = 0; i < m; i++) {
        if (w[i] > 0) {
            a = fmin(a, mu[i] - 10 * sd[i]);
            b = fmax(b, mu[i] + 10 * sd[i]);
        }
    }
    for (int it = 0; it < 100; it++) {
        double c = 0.5 * (a + b);
        if (mixture_cdf(c, w, mu, sd, m) < p) {
            a = c;
        } else {
            b = c;
        }
    }
    return 0.5 * (a + b);
}

/* The ensemble alone (no backtest). */
static int forecast_ensemble(kb_curve_pred *out, const double *x, const double *y, size_t n,
                             double target_step, int maximize, double incumbent,
                             const kb_curve_forecast_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    memset(out, 0, sizeof *out);
    out->target_step = target_step;
    out->mean = out->sd = out->lo = out->hi = out->p_beat = NAN;
    for (size_t i = 0; i < KB_CURVE_N_MODELS; i++) {
        out->model_mean[i] = NAN;
    }
    KB_CHECK_ARG(x != NULL || n == 0);
    KB_CHECK_ARG(y != NULL || n == 0);
    KB_CHECK_ARG(isfinite(target_step));
    kb_curve_forecast_opts o = KB_CURVE_FORECAST_OPTS_INIT;
    if (opts != NULL) {
        o = *opts;
    }
    if (o.max_points < 4) {
        o.max_points = 4;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        m += isfinite(x[i]) && isfinite(y[i]);
    }
    if (m < (o.min_points > 4 ? o.min_points : 4)) {
        return kb_error_set(err, KB_ENUMERIC, "forecast: %zu finite points, need %zu", m,
                            o.min_points > 4 ? o.min_points : 4);
    }
    size_t nb = m < o.max_points ? m : o.max_points;
    int rc = KB_OK;
    double *buf = kb_malloc_array(nb, 6 * sizeof(double) + 4 * sizeof(double));
    if (buf == NULL) {
        return kb_error_set(err, KB_ENOMEM, "forecast: out of memory");
    }
    double *u = buf, *z = buf + nb, *r = buf + 2 * nb, *jac = buf + 3 * nb; /* jac: 4 nb */
    double *bx = buf + 7 * nb, *by = buf + 8 * nb, *cnt = buf + 9 * nb;
    for (size_t i = 0; i < nb; i++) {
        bx[i] = by[i] = cnt[i] = 0;
    }
    /* average consecutive points into nb bins: the fit stays O(nb) however long the run */
    size_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(isfinite(x[i]) && isfinite(y[i]))) {
            continue;
        }
        size_t b = seen * nb / m;
        bx[b] += x[i];
        by[b] += maximize ? y[i] : -y[i];
        cnt[b] += 1;
        seen++;
    }
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < nb; i++) {
        bx[i] /= cnt[i];
        by[i] /= cnt[i];
        lo = fmin(lo, by[i]);
        hi = fmax(hi, by[i]);
    }
    double range = hi - lo;
    double incz = NAN;
    if (!(range > 1e-12 * fmax(1.0, fabs(hi)))) {
        /* a flat curve forecasts itself */
        out->mean = out->lo = out->hi = maximize ? by[nb - 1] : -by[nb - 1];
        out->sd = 0;
        if (!isnan(incumbent)) {
            out->p_beat = maximize ? (out->mean > incumbent) : (out->mean < incumbent);
        }
        goto done;
    }
    double off = bx[0] > 0 ? 0 : fmax((bx[nb - 1] - bx[0]) / (double)(nb - 1), 1e-12);
    double scale = bx[0] + off;
    for (size_t i = 0; i < nb; i++) {
        u[i] = (bx[i] + off) / scale;
        z[i] = (by[i] - lo) / range;
    }
    double ut = (target_step + off) / scale;
    if (!isnan(incumbent)) {
        incz = ((maximize ? incumbent : -incumbent) - lo) / range;
    }
    double bic[KB_CURVE_N_MODELS], mu[KB_CURVE_N_MODELS], sd[KB_CURVE_N_MODELS];
    double w[KB_CURVE_N_MODELS];
    double bic_min = INFINITY;
    double dn = (double)nb;
    for (int mi = 0; mi < KB_CURVE_N_MODELS; mi++) {
        size_t k = models[mi].k;
        bic[mi] = INFINITY;
        w[mi] = 0;
        if (nb <= k + 1) {
            continue;
        }
        double st[3][4] = {{0}};
        size_t ns = model_starts(st, mi, u, z, nb);
        double best_p[4] = {0}, best_rss = INFINITY;
        for (size_t s = 0; s < ns; s++) {
            double p[4];
            memcpy(p, st[s], sizeof p);
            double rss = lm_fit(p, mi, k, u, z, nb, &o, r, jac);
            if (rss < best_rss) {
                best_rss = rss;
                memcpy(best_p, p, sizeof p);
            }
        }
        if (!isfinite(best_rss)) {
            continue;
        }
        double pred = model_eval(mi, best_p, ut);
        double at_last = model_eval(mi, best_p, u[nb - 1]);
        /* Domhan et al.'s prior: curves improve (or hold) and stay in a plausible range */
        if (!isfinite(pred) || pred < at_last - 0.05 || pred < -0.5 || pred > 3.0) {
            continue;
        }
        residuals(r, mi, best_p, u, z, nb);
        if (jacobian(jac, mi, best_p, k, u, nb) != 0) {
            continue;
        }
        double a[16], g[4], v[4];
        normal_matrix(a, NULL, jac, r, k, nb);
        for (size_t i = 0; i < k; i++) {
            a[i + i * k] += 1e-9 * fmax(a[i + i * k], 1e-12); /* ridge: unidentified params */
        }
        double q[4];
        for (size_t j = 0; j < k; j++) {
            memcpy(q, best_p, sizeof q);
            double h = 1e-7 * fmax(1.0, fabs(best_p[j]));
            q[j] += h;
            g[j] = (model_eval(mi, q, ut) - pred) / h;
        }
        double s2 = fmax(best_rss / (dn - (double)k), 1e-12);
        double quad = 0;
        if (small_solve(v, a, g, k) == 0) {
            for (size_t j = 0; j < k; j++) {
                quad += g[j] * v[j];
            }
        } else {
            quad = 1e6;
        }
        double var = s2 * (1 + fmin(fmax(quad, 0), 1e6));
        if (!isfinite(var)) {
            continue;
        }
        mu[mi] = pred;
        /* the residual + delta-method sd is far too confident out of sample (calibration in
         * kb_curve_forecast_opts.sd_scale) */
        sd[mi] = sqrt(var) * (o.sd_scale > 0 ? o.sd_scale : 1.0);
        bic[mi] = dn * log(fmax(best_rss / dn, 1e-12)) + (double)k * log(dn);
        bic_min = fmin(bic_min, bic[mi]);
    }
    if (isinf(bic_min)) {
        rc = kb_error_set(err, KB_ENUMERIC, "forecast: no curve model fits the %zu points", m);
        goto done;
    }
    double wsum = 0;
    for (int mi = 0; mi < KB_CURVE_N_MODELS; mi++) {
        if (isfinite(bic[mi])) {
            /* tempered: a BIC gap is divided by n / 10 so that models that fit the past about
             * as well keep a say in the extrapolation (BIC alone makes one model take all) */
            w[mi] = exp(-0.5 * (bic[mi] - bic_min) / fmax(1.0, dn / 10));
            wsum += w[mi];
        } else {
            mu[mi] = 0;
            sd[mi] = 1;
        }
    }
    double mean = 0, m2 = 0;
    for (int mi = 0; mi < KB_CURVE_N_MODELS; mi++) {
        w[mi] /= wsum;
        if (w[mi] > 0) {
            out->n_models++;
            mean += w[mi] * mu[mi];
            m2 += w[mi] * (sd[mi] * sd[mi] + mu[mi] * mu[mi]);
            out->model_mean[mi] = lo + range * mu[mi];
            if (!maximize) {
                out->model_mean[mi] = -out->model_mean[mi];
            }
        }
        out->weights[mi] = w[mi];
    }
    double var = fmax(m2 - mean * mean, 0);
    double qa = mixture_quantile(0.5 - 0.5 * o.level, w, mu, sd, KB_CURVE_N_MODELS);
    double qb = mixture_quantile(0.5 + 0.5 * o.level, w, mu, sd, KB_CURVE_N_MODELS);
    double mean_o = lo + range * mean, qa_o = lo + range * qa, qb_o = lo + range * qb;
    out->mean = maximize ? mean_o : -mean_o;
    out->lo = maximize ? qa_o : -qb_o;
    out->hi = maximize ? qb_o : -qa_o;
    out->sd = range * sqrt(var);
    if (!isnan(incz)) {
        out->p_beat = 1 - mixture_cdf(incz, w, mu, sd, KB_CURVE_N_MODELS);
        out->p_beat = fmin(1, fmax(0, out->p_beat));
    }
done:
    kb_free(buf);
    return rc;
}

/* median of the last three of the k finite points (x, y): the persistence level */
static double last_level(const double *y, size_t k)
{
    double a = y[k - 1], b = k > 1 ? y[k - 2] : a, c = k > 2 ? y[k - 3] : a;
    return fmax(fmin(a, b), fmin(fmax(a, b), c));
}

int kb_curve_forecast_points(kb_curve_pred *out, const double *x, const double *y, size_t n,
                             double target_step, int maximize, double incumbent,
                             const kb_curve_forecast_opts *opts, kb_error *err)
{
    kb_curve_forecast_opts o = KB_CURVE_FORECAST_OPTS_INIT;
    if (opts != NULL) {
        o = *opts;
    }
    int rc = forecast_ensemble(out, x, y, n, target_step, maximize, incumbent, &o, err);
    out->backtest_err = out->backtest_err_last = NAN;
    if (rc != KB_OK || !o.backtest) {
        return rc;
    }
    /* the finite points, compacted (forecast_ensemble skips non-finite ones too) */
    double *fx = n < SIZE_MAX / 2 ? kb_malloc_array(n ? 2 * n : 1, sizeof *fx) : NULL;
    if (fx == NULL) {
        return kb_error_set(err, KB_ENOMEM, "forecast: out of memory");
    }
    double *fy = fx + n;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(x[i]) && isfinite(y[i])) {
            fx[m] = x[i];
            fy[m++] = y[i];
        }
    }
    size_t need = o.min_points > 4 ? o.min_points : 4;
    if (m >= 2 * need) {
        size_t h = m / 2;
        kb_curve_pred bt;
        kb_curve_forecast_opts bo = o;
        bo.backtest = 0;
        double truth = last_level(fy, m), level_h = last_level(fy, h);
        if (forecast_ensemble(&bt, fx, fy, h, fx[m - 1], maximize, NAN, &bo, NULL) == KB_OK) {
            out->backtest_err = fabs(bt.mean - truth);
            out->backtest_err_last = fabs(level_h - truth);
        }
        /* no backtest forecast counts as a lost backtest */
        if (!(out->backtest_err <= out->backtest_err_last)) {
            double drift = fabs(level_h - truth);
            double noise = 0;
            for (size_t i = 1; i < m; i++) {
                noise += fabs(fy[i] - fy[i - 1]);
            }
            /* mean absolute first difference / sqrt 2 ~ the point noise; the drift scales
             * with the horizon relative to the backtest's (never below it) */
            noise = noise / (double)(m - 1) / sqrt(2.0);
            double span_bt = fx[m - 1] - fx[h - 1];
            double ratio = span_bt > 0 ? fmax(1.0, (target_step - fx[m - 1]) / span_bt) : 1.0;
            double sd = sqrt(noise * noise + (drift * ratio) * (drift * ratio));
            static const double one = 1, zero = 0;
            double z = mixture_quantile(0.5 + 0.5 * o.level, &one, &zero, &one, 1);
            out->fallback = 1;
            out->mean = last_level(fy, m);
            out->sd = sd;
            out->lo = out->mean - z * sd;
            out->hi = out->mean + z * sd;
            if (!isnan(incumbent)) {
                double zi = sd > 0                      ? (out->mean - incumbent) / sd
                            : out->mean > incumbent ? INFINITY
                                                    : -INFINITY;
                out->p_beat = phi(maximize ? zi : -zi);
            }
        }
    }
    kb_free(fx);
    return KB_OK;
}

int kb_curve_forecast(kb_curve_pred *out, const kb_curve *c, const kb_curve_judgement *j,
                      double target_step, double incumbent, const kb_curve_forecast_opts *opts,
                      kb_error *err)
{
    KB_CHECK_ARG(out != NULL && c != NULL && j != NULL);
    const kb_curve_series *s = kb_curve_get(c, j->metric);
    if (s == NULL) {
        memset(out, 0, sizeof *out);
        return kb_error_set(err, KB_ENUMERIC, "forecast: no objective series to forecast");
    }
    size_t n = kb_curve_points(c, s, NULL, NULL, 0);
    double *x = kb_malloc_array(n ? n : 1, sizeof *x), *y = kb_malloc_array(n ? n : 1, sizeof *y);
    if (x == NULL || y == NULL) {
        kb_free(x);
        kb_free(y);
        return kb_error_set(err, KB_ENOMEM, "forecast: out of memory");
    }
    kb_curve_points(c, s, x, y, n);
    int rc = kb_curve_forecast_points(out, x, y, n, target_step, j->maximize, incumbent, opts,
                                      err);
    kb_free(x);
    kb_free(y);
    return rc;
}
