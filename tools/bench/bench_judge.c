/*
 * bench_judge: the training monitor on the labelled set of real curves (tests/data/curves),
 * against the peers' stopping rules computed by tools/bench/judge_peers.py on the same curves.
 *
 *   bench_judge [--tune] INDEX_CSV [PEERS_CSV]        (tools/bench/judge.sh runs both)
 *
 * Split: within each label, curves in index order alternate between TRAIN (1st, 3rd, ...) and
 * HELD-OUT (2nd, 4th, ...). kb's thresholds (KB_CURVE_OPTS_INIT) were chosen with --tune,
 * which grid-searches them on the TRAIN half only (whole-curve classification); every table
 * is printed for the HELD-OUT half and for all curves.
 * Verified labels: the recipe label is checked in hindsight against the issue's own
 * definitions, independently of kb's rules: an "overfitting" curve must end (median of its
 * last 5 val_loss points) at least 10% above its minimum val_loss (validation worsens); a
 * "converged" curve must end within 10% of it (no such rise). A curve failing its check is
 * "ambiguous" and left out of the verified table (the recipe table keeps it). An
 * "oscillating" curve must swing without a trend (see oscillation_verified), a "diverging"
 * one end with its training loss above its early level or the chance level
 * (divergence_verified).
 *
 * For each curve (label = how it was made, see tools/curves/make_curves.sh):
 * - kb's class is the primary verdict of `kb judge` on the whole curve (with --classes K);
 *   per verdict: precision and recall against the labels.
 * - Online, kb is run on every prefix (as `kb watch` / a pruner would); kb "stops" at the
 *   first prefix whose primary verdict is overflow, diverging, oscillating, underfitting,
 *   overfitting or converged (red and overfitting at once; the others once they were the
 *   verdict on CONFIRM = 2 consecutive prefixes), as kb_curve_prune_check does. Peers stop where their rule fires (PEERS_CSV: id,detector,stop_step).
 * - Onset (hindsight, independent of kb's rules): overflow = first non-finite value (else the
 *   iteration the trainer reported); diverging = the minimum training loss; converged = first
 *   step where the running best val_loss is within 5% of its total drop of the final best;
 *   overfitting = the minimum val_loss; underfitting = the first point.
 * - Delay = logged points from the onset to the stop (negative: stopped before the onset);
 *   "all" counts a curve never stopped as stopped at its last point.
 *   A stop on an "improving" curve (a sound run cut short) is a false stop.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/curve.h"
#include "engine/curveio.h"

#define MAX_CURVES 1000
#define MAX_DET 8
#define N_LABELS 7
#define CONFIRM 2

static const char *const labels[N_LABELS] = {"overflow",    "diverging", "oscillating",
                                             "underfitting", "overfitting", "converged",
                                             "improving"};

typedef struct item {
    char id[16], label[16];
    int held_out;        /* 1: HELD-OUT half, 0: TRAIN half */
    int verified;        /* the recipe label passes its hindsight check */
    char dataset[128];
    size_t classes;
    kb_curve curve;
    double onset;        /* step; NaN for improving */
    long onset_idx;      /* row index of the onset */
    int kb_class;        /* kb's verdict kind on the whole curve */
    double stop[MAX_DET]; /* stop step per detector; NaN = never */
} item;

static int label_index(const char *s)
{
    for (int i = 0; i < N_LABELS; i++) {
        if (strcmp(s, labels[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static double finite_or_nan(const kb_curve_series *s, size_t i)
{
    return s != NULL ? s->values[i] : NAN;
}

static void find_onset(item *it)
{
    const kb_curve *c = &it->curve;
    const kb_curve_series *tl = kb_curve_get(c, "train_loss");
    const kb_curve_series *vl = kb_curve_get(c, "val_loss");
    const kb_curve_series *nw = kb_curve_get(c, "nonfinite_weights");
    it->onset = NAN;
    it->onset_idx = -1;
    int lab = label_index(it->label);
    if (c->n_steps == 0 || lab < 0) {
        return;
    }
    long best = -1;
    switch (lab) {
    case 0: { /* overflow */
        double first = INFINITY;
        const kb_curve_series *all[3] = {tl, vl, nw};
        for (int k = 0; k < 3; k++) {
            if (all[k] != NULL && all[k]->n_nan > 0) {
                first = fmin(first, all[k]->first_nan_step);
            }
        }
        for (size_t i = 0; i < c->n_steps; i++) {
            if (isinf(finite_or_nan(tl, i)) || isinf(finite_or_nan(vl, i)) ||
                finite_or_nan(nw, i) > 0) {
                first = fmin(first, c->steps[i]);
                break;
            }
        }
        if (isinf(first)) {
            for (size_t f = 0; f < c->n_finals; f++) {
                (void)f;
            }
            first = c->steps[c->n_steps - 1]; /* after the last logged point */
        }
        it->onset = first;
        break;
    }
    case 1: /* diverging: the minimum training loss */
        for (size_t i = 0; i < c->n_steps; i++) {
            double v = finite_or_nan(tl, i);
            if (isfinite(v) && (best < 0 || v < tl->values[best])) {
                best = (long)i;
            }
        }
        it->onset = best >= 0 ? c->steps[best] : c->steps[0];
        break;
    case 3: /* underfitting */
        it->onset = c->steps[0];
        break;
    case 4: /* overfitting: the minimum val_loss */
        for (size_t i = 0; i < c->n_steps; i++) {
            double v = finite_or_nan(vl, i);
            if (isfinite(v) && (best < 0 || v < vl->values[best])) {
                best = (long)i;
            }
        }
        it->onset = best >= 0 ? c->steps[best] : c->steps[0];
        break;
    case 5: { /* converged */
        double v0 = NAN, vmin = INFINITY;
        for (size_t i = 0; i < c->n_steps; i++) {
            double v = finite_or_nan(vl, i);
            if (isfinite(v)) {
                if (isnan(v0)) {
                    v0 = v;
                }
                vmin = fmin(vmin, v);
            }
        }
        double run = INFINITY;
        for (size_t i = 0; i < c->n_steps; i++) {
            double v = finite_or_nan(vl, i);
            if (isfinite(v)) {
                run = fmin(run, v);
            }
            if (run <= vmin + 0.05 * (v0 - vmin)) {
                it->onset = c->steps[i];
                break;
            }
        }
        break;
    }
    default: break;
    }
    for (size_t i = 0; i < c->n_steps && !isnan(it->onset); i++) {
        if (c->steps[i] <= it->onset) {
            it->onset_idx = (long)i;
        }
    }
}

/* Prefix of the first k rows of c (shallow copy with n_steps = k; the NaN bookkeeping of the
 * series is redone so that a NaN after the prefix is not seen). */
static kb_curve prefix_view(const kb_curve *c, size_t k, kb_curve_series *tmp)
{
    kb_curve p = *c;
    p.n_steps = k;
    p.series = tmp;
    for (size_t s = 0; s < c->n_series; s++) {
        tmp[s] = c->series[s];
        if (!(tmp[s].first_nan_step <= c->steps[k - 1])) {
            tmp[s].n_nan = 0;
            tmp[s].first_nan_step = NAN;
        }
    }
    /* the final line's status belongs to the end of the run only */
    if (k < c->n_steps) {
        p.status = NULL;
    }
    return p;
}

static int judge_prefix(kb_curve_judgement *j, const kb_curve *c, size_t k, kb_curve_series *tmp,
                        const kb_curve_opts *o)
{
    kb_curve p = prefix_view(c, k, tmp);
    return kb_curve_judge(j, &p, o, NULL);
}

/* The last finite val_accuracy at or before step `upto` (0 when none: a broken run). */
static double acc_at(const kb_curve *c, double upto)
{
    const kb_curve_series *s = kb_curve_get(c, "val_accuracy");
    double v = 0;
    for (size_t i = 0; s != NULL && i < c->n_steps && c->steps[i] <= upto; i++) {
        if (isfinite(s->values[i])) {
            v = s->values[i];
        }
    }
    return v;
}


/* the verdicts that stop a run online: every one but improving (as kb_curve_prune_check) */
static int is_stop(kb_curve_verdict_kind k)
{
    return k != KB_CURVE_VERDICT_IMPROVING;
}


/* median of the last k finite values of series s, and the minimum over the whole series */
static void end_and_min(const kb_curve *c, const char *name, size_t k, double *end, double *min)
{
    const kb_curve_series *s = kb_curve_get(c, name);
    double last[16];
    size_t m = 0;
    *end = *min = NAN;
    for (size_t i = c->n_steps; s != NULL && i-- > 0;) {
        double v = s->values[i];
        if (isfinite(v)) {
            if (m < k && m < 16) {
                last[m++] = v;
            }
            *min = isnan(*min) ? v : fmin(*min, v);
        }
    }
    if (m > 0) {
        for (size_t a = 1; a < m; a++) {
            for (size_t b = a; b > 0 && last[b - 1] > last[b]; b--) {
                double t = last[b];
                last[b] = last[b - 1];
                last[b - 1] = t;
            }
        }
        *end = m % 2 ? last[m / 2] : 0.5 * (last[m / 2 - 1] + last[m / 2]);
    }
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/*
 * The oscillating check, on the second half of the run (after the first learning): "large
 * swings" = the median change of val_accuracy between consecutive evaluations is at least
 * 0.02 (a converged run's val_accuracy has a standard deviation of at most 0.002 there, an
 * overfitting one of at most 0.015); "no trend" = the Theil-Sen slope over that half, times
 * its span, is within 2 standard deviations of the values; and the training loss does not
 * rise (the median of that half at most the median of the first 3 points: not diverging).
 */
static int oscillation_verified(const kb_curve *c)
{
    const kb_curve_series *a = kb_curve_get(c, "val_accuracy");
    const kb_curve_series *t = kb_curve_get(c, "train_loss");
    if (a == NULL || t == NULL || c->n_steps < 20) {
        return 0;
    }
    size_t h = c->n_steps / 2, m = c->n_steps - h, k = 0;
    double x[512], y[512];
    if (m > 512) {
        return 0;
    }
    size_t n_w = m * (m - 1) / 2;
    double *w = kb_malloc_array(n_w, sizeof *w);
    if (w == NULL) {
        return 0;
    }
    for (size_t i = h; i < c->n_steps; i++) {
        if (!isfinite(a->values[i])) {
            kb_free(w);
            return 0;
        }
        x[i - h] = c->steps[i];
        y[i - h] = a->values[i];
    }
    double mean = 0, var = 0;
    for (size_t i = 0; i < m; i++) {
        mean += y[i] / (double)m;
    }
    for (size_t i = 0; i < m; i++) {
        var += (y[i] - mean) * (y[i] - mean) / (double)m;
    }
    for (size_t i = 0; i + 1 < m; i++) {
        w[i] = fabs(y[i + 1] - y[i]);
    }
    qsort(w, m - 1, sizeof *w, cmp_dbl);
    double swing = (m - 1) % 2 ? w[(m - 1) / 2] : 0.5 * (w[(m - 1) / 2 - 1] + w[(m - 1) / 2]);
    for (size_t i = 0; i < m && k < n_w; i++) {
        for (size_t j = i + 1; j < m && k < n_w; j++) {
            w[k++] = (y[j] - y[i]) / (x[j] - x[i]);
        }
    }
    qsort(w, k, sizeof *w, cmp_dbl);
    double trend = (k % 2 ? w[k / 2] : 0.5 * (w[k / 2 - 1] + w[k / 2])) * (x[m - 1] - x[0]);
    double t3[3], tl[512];
    size_t nt = 0;
    for (size_t i = 0; i < 3; i++) {
        t3[i] = t->values[i];
    }
    qsort(t3, 3, sizeof *t3, cmp_dbl);
    for (size_t i = h; i < c->n_steps; i++) {
        if (isfinite(t->values[i])) {
            tl[nt++] = t->values[i];
        }
    }
    kb_free(w);
    if (nt == 0) {
        return 0;
    }
    qsort(tl, nt, sizeof *tl, cmp_dbl);
    double t_half = nt % 2 ? tl[nt / 2] : 0.5 * (tl[nt / 2 - 1] + tl[nt / 2]);
    return swing >= 0.02 && fabs(trend) <= 2 * sqrt(var) && t_half <= t3[1];
}

/*
 * The diverging check: the "loss rising beyond its early level". The median training
 * loss of the second half is above the median of the first 3 points (it rose), or, with K
 * classes, above 0.75 ln K: a sound initialisation starts near ln K, so a run whose loss
 * blew up within the first logged interval and then sits at the chance level has not come
 * back below its true early level (the network is broken). A far-too-high-lr run whose loss
 * ends below both swings or learns: it is left out of the verified table.
 */
static int divergence_verified(const item *it)
{
    const kb_curve_series *t = kb_curve_get(&it->curve, "train_loss");
    if (t == NULL || it->curve.n_steps < 6) {
        return 0;
    }
    double v[4096], t3[3];
    size_t n = 0, n3 = 0;
    for (size_t i = 0; i < it->curve.n_steps && n3 < 3; i++) {
        if (isfinite(t->values[i])) {
            t3[n3++] = t->values[i];
        }
    }
    for (size_t i = it->curve.n_steps / 2; i < it->curve.n_steps && n < 4096; i++) {
        if (isfinite(t->values[i])) {
            v[n++] = t->values[i];
        }
    }
    if (n == 0 || n3 < 3) {
        return 0;
    }
    qsort(t3, 3, sizeof *t3, cmp_dbl);
    qsort(v, n, sizeof *v, cmp_dbl);
    double half = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    return half > t3[1] || (it->classes >= 2 && half > 0.75 * log((double)it->classes));
}

/* the hindsight check of the recipe label (see the file comment) */
static int label_verified(const item *it)
{
    double end, min;
    int over = strcmp(it->label, "overfitting") == 0;
    if (strcmp(it->label, "oscillating") == 0) {
        return oscillation_verified(&it->curve);
    }
    if (strcmp(it->label, "diverging") == 0) {
        return divergence_verified(it);
    }
    if (!over && strcmp(it->label, "converged") != 0) {
        return 1;
    }
    end_and_min(&it->curve, "val_loss", 5, &end, &min);
    if (!isfinite(end) || !isfinite(min)) {
        return 0;
    }
    int rose = end > min + 0.1 * fabs(min);
    return over ? rose : !rose;
}

/* counts of the whole-curve classification: [label][kb's class or N_LABELS for none] */
typedef struct confusion {
    size_t m[N_LABELS][N_LABELS + 1];
} confusion;

/* which curves a table covers */
enum { SET_TRAIN = 1, SET_HELD = 2, SET_ALL = 3, SET_VERIFIED = 4 };

static int in_set(const item *it, int set)
{
    int half = it->held_out ? SET_HELD : SET_TRAIN;
    return (set & half) != 0 && (!(set & SET_VERIFIED) || it->verified);
}

static void classify(confusion *cf, item *items, size_t n, const kb_curve_opts *base, int set)
{
    memset(cf, 0, sizeof *cf);
    for (size_t i = 0; i < n; i++) {
        item *it = &items[i];
        int l = label_index(it->label);
        if (l < 0 || !in_set(it, set)) {
            continue;
        }
        kb_curve_opts o = *base;
        o.n_classes = it->classes;
        kb_curve_judgement j;
        int k = N_LABELS;
        if (kb_curve_judge(&j, &it->curve, &o, NULL) == KB_OK && j.n_verdicts > 0) {
            k = (int)j.verdicts[0].kind;
        }
        kb_curve_judgement_release(&j);
        cf->m[l][k]++;
    }
}

static void prec_rec(const confusion *cf, int v, double *prec, double *rec, size_t *lab,
                     size_t *said)
{
    size_t tp = cf->m[v][v], l = 0, s = 0;
    for (int k = 0; k <= N_LABELS; k++) {
        l += cf->m[v][k];
    }
    for (int k = 0; k < N_LABELS; k++) {
        s += cf->m[k][v];
    }
    *prec = s ? (double)tp / (double)s : NAN;
    *rec = l ? (double)tp / (double)l : NAN;
    *lab = l;
    *said = s;
}

static void print_classification(const char *title, const confusion *cf)
{
    printf("%s\n", title);
    printf("%-13s %6s %6s %9s %7s\n", "verdict", "label", "said", "precision", "recall");
    for (int v = 0; v < N_LABELS; v++) {
        double p, r;
        size_t lab, said;
        prec_rec(cf, v, &p, &r, &lab, &said);
        if (lab == 0 && said == 0) {
            continue;
        }
        printf("%-13s %6zu %6zu %9.3f %7.3f\n", labels[v], lab, said, p, r);
    }
}

/* The tuning objective on a confusion: the number of target figures met (precision >= 0.95
 * and recall >= 0.9 for overflow, diverging, converged), then the macro F1 over all labels. */
static double objective(const confusion *cf)
{
    static const int targets[3] = {0, 1, 5};
    double met = 0, f1 = 0;
    int nl = 0;
    for (int t = 0; t < 3; t++) {
        double p, r;
        size_t lab, said;
        prec_rec(cf, targets[t], &p, &r, &lab, &said);
        met += (p >= 0.95) + (r >= 0.9);
    }
    for (int v = 0; v < N_LABELS; v++) {
        double p, r;
        size_t lab, said;
        prec_rec(cf, v, &p, &r, &lab, &said);
        if (lab == 0) {
            continue;
        }
        nl++;
        f1 += (p + r) > 0 && !isnan(p) ? 2 * p * r / (p + r) : 0;
    }
    return met + (nl ? f1 / nl : 0);
}

/* Grid search of the main thresholds on the TRAIN half (recipe labels); prints the best. */
static void tune(item *items, size_t n)
{
    static const double conv_tol[] = {0.02, 0.05, 0.1};
    static const size_t conv_pts[] = {3, 5, 8};
    static const double over_rel[] = {0.1, 0.2, 0.3};
    static const double div_rel[] = {0.3, 0.5, 0.8};
    static const double osc_rel[] = {0.06, 0.1, 0.15, 0.25};
    kb_curve_opts def = KB_CURVE_OPTS_INIT, best = def;
    confusion cf;
    classify(&cf, items, n, &def, SET_TRAIN);
    double best_obj = objective(&cf), def_obj = best_obj;
    for (size_t a = 0; a < 3; a++) {
        for (size_t b = 0; b < 3; b++) {
            for (size_t c = 0; c < 3; c++) {
                for (size_t d = 0; d < 3; d++) {
                    for (size_t e = 0; e < 4; e++) {
                        kb_curve_opts o = def;
                        o.converge_tol = conv_tol[a];
                        o.converge_points = conv_pts[b];
                        o.overfit_rel = over_rel[c];
                        o.diverge_rel = div_rel[d];
                        o.oscillate_rel = osc_rel[e];
                        classify(&cf, items, n, &o, SET_TRAIN);
                        double ob = objective(&cf);
                        if (ob > best_obj + 1e-9) {
                            best_obj = ob;
                            best = o;
                        }
                    }
                }
            }
        }
    }
    printf("tuning on the TRAIN half (324 settings): objective (targets met + macro F1) "
           "defaults %.3f, best %.3f at converge_tol %g converge_points %zu overfit_rel %g "
           "diverge_rel %g oscillate_rel %g\n",
           def_obj, best_obj, best.converge_tol, best.converge_points, best.overfit_rel,
           best.diverge_rel, best.oscillate_rel);
    classify(&cf, items, n, &best, SET_TRAIN);
    print_classification("the best setting on the TRAIN half, recipe labels", &cf);
    classify(&cf, items, n, &best, SET_HELD);
    print_classification("the best TRAIN setting on the HELD-OUT half, recipe labels", &cf);
    classify(&cf, items, n, &best, SET_HELD | SET_VERIFIED);
    print_classification("the best TRAIN setting on the HELD-OUT half, verified labels", &cf);
    printf("\n");
}

static const char *det_names[MAX_DET];
static size_t n_det = 1;

static int det_index(const char *name)
{
    for (size_t d = 0; d < n_det; d++) {
        if (strcmp(det_names[d], name) == 0) {
            return (int)d;
        }
    }
    if (n_det == MAX_DET) {
        return -1;
    }
    det_names[n_det] = kb_strdup(name);
    return (int)n_det++;
}

static size_t points_between(const kb_curve *c, double a, double b)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_steps; i++) {
        if (c->steps[i] > a && c->steps[i] <= b) {
            n++;
        }
    }
    return n;
}

static double median(double *v, size_t n)
{
    if (n == 0) {
        return NAN;
    }
    for (size_t i = 1; i < n; i++) {
        for (size_t k = i; k > 0 && v[k - 1] > v[k]; k--) {
            double t = v[k];
            v[k] = v[k - 1];
            v[k - 1] = t;
        }
    }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static const char *set_name(int set)
{
    const char *half = (set & SET_ALL) == SET_HELD    ? "HELD-OUT half"
                       : (set & SET_ALL) == SET_TRAIN ? "TRAIN half"
                                                      : "all curves";
    static char buf[64];
    snprintf(buf, sizeof buf, "%s%s", half, set & SET_VERIFIED ? ", verified labels" : "");
    return buf;
}

/* Delay of a stop at step `st` after the onset, in logged points (negative: before it). */
static double delay_points(const item *it, double st)
{
    return st >= it->onset ? (double)points_between(&it->curve, it->onset, st)
                           : -(double)points_between(&it->curve, st, it->onset);
}

/* The online stopping table of every detector over the curves of `set`, and kb's delays
 * against each peer's: the ratio of the medians (as before) and the difference of the means,
 * both over every curve of a label (a curve never stopped counts as stopped at its end). */
static void stopping_table(item *items, size_t n, int set)
{
    printf("\nstopping online (%s): per label, curves stopped, median delay in logged points "
           "after the onset over the stopped curves, and over every curve (a curve never "
           "stopped counting to its end) the median [mean]; on improving curves every stop is "
           "a false stop; oscillating curves have no onset (kb stops one once its verdict held "
           "on 2 points: no trend, nothing to gain)\n",
           set_name(set));
    printf("%-22s", "detector");
    for (int l = 0; l < N_LABELS; l++) {
        printf(" %-26s", labels[l]);
    }
    printf("\n");
    double *delays = kb_malloc_array(n ? n : 1, sizeof *delays);
    double *all = kb_malloc_array(n ? n : 1, sizeof *all);
    if (delays == NULL || all == NULL) {
        kb_free(delays);
        kb_free(all);
        return;
    }
    static double all_med[MAX_DET][N_LABELS], all_mean[MAX_DET][N_LABELS];
    for (size_t d = 0; d < n_det; d++) {
        printf("%-22s", det_names[d]);
        for (int l = 0; l < N_LABELS; l++) {
            size_t tot = 0, stopped = 0, nd = 0, na = 0;
            double sum = 0;
            for (size_t i = 0; i < n; i++) {
                item *it = &items[i];
                if (strcmp(it->label, labels[l]) != 0 || !in_set(it, set)) {
                    continue;
                }
                tot++;
                if (!isnan(it->onset)) {
                    /* never stopped = ran to the end */
                    double st = isnan(it->stop[d]) ? it->curve.steps[it->curve.n_steps - 1]
                                                   : it->stop[d];
                    all[na++] = delay_points(it, st);
                    sum += all[na - 1];
                }
                if (isnan(it->stop[d])) {
                    continue;
                }
                stopped++;
                if (!isnan(it->onset)) {
                    delays[nd++] = delay_points(it, it->stop[d]);
                }
            }
            char cellb[64];
            all_med[d][l] = na > 0 ? median(all, na) : NAN;
            all_mean[d][l] = na > 0 ? sum / (double)na : NAN;
            if (tot == 0) {
                snprintf(cellb, sizeof cellb, "-");
            } else if (nd > 0) {
                double med = median(delays, nd);
                snprintf(cellb, sizeof cellb, "%zu/%zu %+.0f (all %+.0f [%+.1f])", stopped, tot,
                         med, all_med[d][l], all_mean[d][l]);
            } else if (na > 0) {
                snprintf(cellb, sizeof cellb, "%zu/%zu (all %+.0f [%+.1f])", stopped, tot,
                         all_med[d][l], all_mean[d][l]);
            } else {
                snprintf(cellb, sizeof cellb, "%zu/%zu", stopped, tot);
            }
            printf(" %-26s", cellb);
        }
        printf("\n");
    }
    kb_free(delays);
    kb_free(all);
    printf("\nkb's delay (%s, all curves of a label) against each peer's: ratio of the medians "
           "(below 1 = kb stops sooner after the onset) and difference of the means in logged "
           "points (below 0 = kb sooner)\n", set_name(set));
    const int ratio_labels[4] = {1, 3, 4, 5};
    for (size_t d = 1; d < n_det; d++) {
        printf("%-24s", det_names[d]);
        for (int r = 0; r < 4; r++) {
            int l = ratio_labels[r];
            double a = all_med[0][l], b = all_med[d][l];
            printf(" %s ", labels[l]);
            if (b > 0 && a >= 0) {
                printf("%.2f", a / b);
            } else {
                printf("-");
            }
            printf(" [%+.1f]", all_mean[0][l] - all_mean[d][l]);
        }
        printf("\n");
    }
}

/*
 * A search replayed on the labelled curves: per dataset, the runs in index order are the
 * trials of one search maximising val_accuracy. A detector stops a trial at its stop step (kb:
 * kb_curve_prune_check after every logged point with the incumbent = the best final
 * val_accuracy of the trials finished so far, target_step = the run's last step, p_min 0.05;
 * peers: their stop steps). Compute = training steps run; a stopped trial's result is its
 * last val_accuracy and it never becomes the incumbent. Regret per dataset = best
 * val_accuracy of all full runs - best result of the replay. Printed: compute saved and the
 * mean regret over the datasets, per detector, for the set `set`.
 */
static void replay(item *items, size_t n, int set)
{
    double *kb_stop = kb_malloc_array(n ? n : 1, sizeof *kb_stop);
    if (kb_stop == NULL) {
        return;
    }
    /* kb: sequential within each dataset */
    for (size_t i = 0; i < n; i++) {
        kb_stop[i] = NAN;
    }
    for (size_t i = 0; i < n; i++) {
        if (!in_set(&items[i], set)) {
            continue;
        }
        double inc = NAN;
        for (size_t k = 0; k < i; k++) {
            if (in_set(&items[k], set) && strcmp(items[k].dataset, items[i].dataset) == 0 &&
                isnan(kb_stop[k])) {
                double v = acc_at(&items[k].curve, INFINITY);
                inc = isnan(inc) ? v : fmax(inc, v);
            }
        }
        item *it = &items[i];
        kb_curve_opts o = KB_CURVE_OPTS_INIT;
        o.n_classes = it->classes;
        if (kb_curve_get(&it->curve, "val_accuracy") != NULL) {
            o.metric = "val_accuracy";
            o.mode = KB_CURVE_MODE_MAX;
        }
        kb_curve_series *tmp = kb_calloc(it->curve.n_series + 1, sizeof *tmp);
        double target = it->curve.n_steps ? it->curve.steps[it->curve.n_steps - 1] : NAN;
        for (size_t k = 1; tmp != NULL && k < it->curve.n_steps; k++) {
            kb_curve p = prefix_view(&it->curve, k, tmp);
            kb_curve_prune pr;
            if (o.metric != NULL && kb_curve_get(&p, o.metric)->n_values == 0) {
                continue;
            }
            if (kb_curve_prune_check(&pr, &p, &o, target, inc, 0.05, NULL) == KB_OK && pr.prune) {
                kb_stop[i] = it->curve.steps[k - 1];
                break;
            }
        }
        kb_free(tmp);
    }
    printf("\nsearch replay (%s): per dataset, its runs in index order as one search "
           "maximising val_accuracy; compute = training steps run; regret = best val_accuracy "
           "of the full runs - best result found, mean over datasets\n",
           set_name(set));
    printf("%-26s %9s %14s %12s\n", "detector", "stopped", "compute saved", "mean regret");
    for (size_t d = 0; d < n_det; d++) {
        double total = 0, used = 0, regret = 0;
        size_t n_ds = 0, stopped = 0, n_runs = 0;
        for (size_t i = 0; i < n; i++) {
            if (!in_set(&items[i], set)) {
                continue;
            }
            const kb_curve *c = &items[i].curve;
            double last = c->n_steps ? c->steps[c->n_steps - 1] : 0;
            double st = d == 0 ? kb_stop[i] : items[i].stop[d];
            n_runs++;
            total += last;
            used += isnan(st) ? last : fmin(st, last);
            stopped += !isnan(st);
            /* the first run of a dataset closes the dataset's regret */
            int first = 1;
            for (size_t k = 0; k < i && first; k++) {
                first = !(in_set(&items[k], set) &&
                          strcmp(items[k].dataset, items[i].dataset) == 0);
            }
            if (!first) {
                continue;
            }
            double best_all = -INFINITY, best_found = -INFINITY;
            for (size_t k = i; k < n; k++) {
                if (!in_set(&items[k], set) || strcmp(items[k].dataset, items[i].dataset) != 0) {
                    continue;
                }
                double sk = d == 0 ? kb_stop[k] : items[k].stop[d];
                best_all = fmax(best_all, acc_at(&items[k].curve, INFINITY));
                best_found = fmax(best_found, acc_at(&items[k].curve, isnan(sk) ? INFINITY : sk));
            }
            regret += best_all - best_found;
            n_ds++;
        }
        printf("%-26s %4zu/%-4zu %13.1f%% %12.4f\n", det_names[d], stopped, n_runs,
               total > 0 ? 100 * (1 - used / total) : 0.0, n_ds ? regret / (double)n_ds : 0.0);
    }
    kb_free(kb_stop);
}

/* One line per curve: its label, half, onset and each detector's delay in logged points (an
 * empty cell: never stopped), to see where kb is sooner or later than a peer. */
static void per_curve(const item *items, size_t n)
{
    printf("per curve: id label half verified kb_whole_curve onset points");
    for (size_t d = 0; d < n_det; d++) {
        printf(" %s", det_names[d]);
    }
    printf("\n");
    for (size_t i = 0; i < n; i++) {
        const item *it = &items[i];
        const kb_curve *c = &it->curve;
        printf("%s %s %s %d %s %g %zu", it->id, it->label, it->held_out ? "held" : "train",
               it->verified,
               it->kb_class >= 0 ? kb_curve_verdict_name((kb_curve_verdict_kind)it->kb_class)
                                 : "none",
               it->onset, c->n_steps);
        for (size_t d = 0; d < n_det; d++) {
            double st = it->stop[d];
            if (isnan(st) || isnan(it->onset)) {
                printf(" %s", isnan(st) ? "-" : "stop");
                continue;
            }
            printf(" %+.0f", st >= it->onset ? (double)points_between(c, it->onset, st)
                                             : -(double)points_between(c, st, it->onset));
        }
        printf("\n");
    }
    printf("\n");
}

/* kb's primary verdict on every prefix of one curve (to see when a rule fires) */
static void trace(const item *it)
{
    kb_curve_opts o = KB_CURVE_OPTS_INIT;
    o.n_classes = it->classes;
    kb_curve_series *tmp = kb_calloc(it->curve.n_series + 1, sizeof *tmp);
    const kb_curve_series *tl = kb_curve_get(&it->curve, "train_loss");
    const kb_curve_series *vl = kb_curve_get(&it->curve, "val_loss");
    printf("trace %s (%s, onset %g)\n", it->id, it->label, it->onset);
    for (size_t k = 1; tmp != NULL && k <= it->curve.n_steps; k++) {
        kb_curve_judgement j;
        if (judge_prefix(&j, &it->curve, k, tmp, &o) != KB_OK) {
            break;
        }
        printf("%4zu %6g tl %-10.4g vl %-10.4g %s: %s\n", k, it->curve.steps[k - 1],
               finite_or_nan(tl, k - 1), finite_or_nan(vl, k - 1),
               j.n_verdicts ? kb_curve_verdict_name(j.verdicts[0].kind) : "-",
               j.n_verdicts ? j.verdicts[0].detail : "");
        kb_curve_judgement_release(&j);
    }
    kb_free(tmp);
}

int main(int argc, char **argv)
{
    int do_tune = 0, do_per_curve = 0;
    const char *trace_id = NULL;
    while (argc > 1 && argv[1][0] == '-' && argv[1][1] == '-') {
        if (strcmp(argv[1], "--tune") == 0) {
            do_tune = 1;
        } else if (strcmp(argv[1], "--per-curve") == 0) {
            do_per_curve = 1;
        } else if (strcmp(argv[1], "--trace") == 0 && argc > 2) {
            trace_id = argv[2];
            argv++;
            argc--;
        } else {
            break;
        }
        argv++;
        argc--;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: bench_judge [--tune] [--per-curve] [--trace ID] INDEX_CSV [PEERS_CSV]\n");
        return 2;
    }
    det_names[0] = "kb";
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", argv[1]);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
    } else {
        snprintf(dir, sizeof dir, ".");
    }
    FILE *f = fopen(argv[1], "r");
    if (f == NULL) {
        perror(argv[1]);
        return 1;
    }
    static item items[MAX_CURVES];
    size_t n = 0;
    char line[4096];
    if (fgets(line, sizeof line, f) == NULL) { /* header */
        fclose(f);
        return 1;
    }
    while (n < MAX_CURVES && fgets(line, sizeof line, f) != NULL) {
        item *it = &items[n];
        char made[32], ds[128];
        if (sscanf(line, "%15[^,],%15[^,],%31[^,],%127[^,],%zu", it->id, it->label, made, ds,
                   &it->classes) != 5) {
            continue;
        }
        char path[4600];
        snprintf(path, sizeof path, "%s/%s.jsonl.gz", dir, it->id);
        kb_curve c = KB_CURVE_INIT;
        kb_error err = KB_ERROR_INIT;
        if (kb_curveio_read(&c, NULL, path, NULL, &err) != KB_OK) {
            fprintf(stderr, "bench_judge: %s\n", err.msg);
            kb_curve_release(&c);
            continue;
        }
        it->curve = c;
        snprintf(it->dataset, sizeof it->dataset, "%s", ds);
        for (size_t d = 0; d < MAX_DET; d++) {
            it->stop[d] = NAN;
        }
        find_onset(it);
        it->verified = label_verified(it);
        size_t same_label = 0;
        for (size_t k = 0; k < n; k++) {
            same_label += strcmp(items[k].label, it->label) == 0;
        }
        it->held_out = (int)(same_label % 2);
        n++;
    }
    fclose(f);
    for (size_t i = 0; trace_id != NULL && i < n; i++) {
        if (strcmp(items[i].id, trace_id) == 0) {
            trace(&items[i]);
        }
    }
    if (trace_id != NULL) {
        return 0;
    }
    if (do_tune) {
        tune(items, n);
    }

    /* kb: whole-curve class and online stop */
    for (size_t i = 0; i < n; i++) {
        item *it = &items[i];
        kb_curve_opts o = KB_CURVE_OPTS_INIT;
        o.n_classes = it->classes;
        kb_curve_judgement j;
        it->kb_class = -1;
        if (kb_curve_judge(&j, &it->curve, &o, NULL) == KB_OK && j.n_verdicts > 0) {
            it->kb_class = (int)j.verdicts[0].kind;
        }
        kb_curve_judgement_release(&j);
        kb_curve_series *tmp = kb_calloc(it->curve.n_series + 1, sizeof *tmp);
        int last_kind = -1;
        size_t same = 0;
        for (size_t k = 1; tmp != NULL && k <= it->curve.n_steps; k++) {
            if (judge_prefix(&j, &it->curve, k, tmp, &o) != KB_OK) {
                break;
            }
            int kind = j.n_verdicts > 0 ? (int)j.verdicts[0].kind : -1;
            int red = j.light == KB_CURVE_LIGHT_RED;
            kb_curve_judgement_release(&j);
            same = kind == last_kind ? same + 1 : 1;
            last_kind = kind;
            /* red and overfitting stop at once (overfitting's rule has its own persistence);
             * a stop for converged / underfitting / oscillating must be the verdict on
             * CONFIRM consecutive prefixes (one noisy point does not stop a run); as
             * kb_curve_prune_check */
            int at_once = red || kind == (int)KB_CURVE_VERDICT_OVERFITTING;
            if (kind >= 0 && is_stop((kb_curve_verdict_kind)kind) &&
                (at_once || same >= CONFIRM)) {
                it->stop[0] = it->curve.steps[k - 1];
                break;
            }
        }
        kb_free(tmp);
    }

    /* peers */
    if (argc > 2) {
        FILE *pf = fopen(argv[2], "r");
        if (pf == NULL) {
            perror(argv[2]);
            return 1;
        }
        while (fgets(line, sizeof line, pf) != NULL) {
            char id[16], det[64], st[64] = "";
            if (sscanf(line, "%15[^,],%63[^,],%63[^\n]", id, det, st) < 2 ||
                strcmp(id, "id") == 0) {
                continue;
            }
            int d = det_index(det);
            for (size_t i = 0; d >= 0 && i < n; i++) {
                if (strcmp(items[i].id, id) == 0) {
                    items[i].stop[d] = st[0] ? strtod(st, NULL) : NAN;
                }
            }
        }
        fclose(pf);
    }

    /* classification tables (kb) */
    size_t n_held = 0, n_amb = 0;
    for (size_t i = 0; i < n; i++) {
        n_held += items[i].held_out;
        n_amb += !items[i].verified;
    }
    printf("curves: %zu (TRAIN %zu, HELD-OUT %zu); ambiguous recipe labels: %zu:", n, n - n_held,
           n_held, n_amb);
    for (size_t i = 0; i < n; i++) {
        if (!items[i].verified) {
            printf(" %s(%s%s)", items[i].id, items[i].label, items[i].held_out ? ", held-out" : "");
        }
    }
    printf("\n\n");
    kb_curve_opts defaults = KB_CURVE_OPTS_INIT;
    confusion cf;
    static const struct {
        int set;
        const char *title;
    } tables[4] = {
        {SET_HELD, "kb judge on whole curves, HELD-OUT half, recipe labels"},
        {SET_HELD | SET_VERIFIED, "kb judge on whole curves, HELD-OUT half, verified labels"},
        {SET_ALL, "kb judge on whole curves, all curves, recipe labels"},
        {SET_ALL | SET_VERIFIED, "kb judge on whole curves, all curves, verified labels"},
    };
    for (int t = 0; t < 4; t++) {
        classify(&cf, items, n, &defaults, tables[t].set);
        print_classification(tables[t].title, &cf);
        printf("\n");
    }
    printf("confusion, all curves, recipe labels (rows: label, columns: kb's verdict)\n%-13s", "");
    for (int v = 0; v < N_LABELS; v++) {
        printf(" %5.5s", labels[v]);
    }
    printf("  none\n");
    for (int l = 0; l < N_LABELS; l++) {
        size_t row[N_LABELS + 1] = {0}, tot = 0;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(items[i].label, labels[l]) == 0) {
                row[items[i].kb_class >= 0 ? items[i].kb_class : N_LABELS]++;
                tot++;
            }
        }
        if (tot == 0) {
            continue;
        }
        printf("%-13s", labels[l]);
        for (int v = 0; v <= N_LABELS; v++) {
            printf(" %5zu", row[v]);
        }
        printf("\n");
    }

    if (do_per_curve) {
        per_curve(items, n);
    }
    if (do_tune) {
        stopping_table(items, n, SET_TRAIN);
        stopping_table(items, n, SET_TRAIN | SET_VERIFIED);
    }
    stopping_table(items, n, SET_HELD);
    stopping_table(items, n, SET_HELD | SET_VERIFIED);
    stopping_table(items, n, SET_ALL);

    replay(items, n, SET_HELD);
    replay(items, n, SET_ALL);

    /* forecast: from the first half of each converged / improving curve to its last step;
     * the ensemble alone, kb's forecast (ensemble with the backtest fallback), and the last
     * observed value, on the HELD-OUT half and on all curves */
    for (int set = SET_HELD; set <= SET_ALL; set++) {
        if (set == SET_TRAIN) {
            continue;
        }
        double *e_ens = kb_malloc_array(n ? 3 * n : 3, sizeof *e_ens);
        if (e_ens == NULL) {
            break;
        }
        double *e_kb = e_ens + n, *e_last = e_ens + 2 * n;
        size_t nf = 0, cov_ens = 0, cov_kb = 0, n_fb = 0;
        for (size_t i = 0; i < n; i++) {
            item *it = &items[i];
            if ((strcmp(it->label, "converged") != 0 && strcmp(it->label, "improving") != 0) ||
                !in_set(it, set)) {
                continue;
            }
            const kb_curve_series *s = kb_curve_get(&it->curve, "val_accuracy");
            if (s == NULL || s->n_values < 20) {
                continue;
            }
            size_t np = kb_curve_points(&it->curve, s, NULL, NULL, 0);
            double *x = kb_malloc_array(np, sizeof *x), *y = kb_malloc_array(np, sizeof *y);
            if (x == NULL || y == NULL) {
                kb_free(x);
                kb_free(y);
                continue;
            }
            kb_curve_points(&it->curve, s, x, y, np);
            double truth = (y[np - 1] + y[np - 2] + y[np - 3]) / 3;
            kb_curve_forecast_opts fo = KB_CURVE_FORECAST_OPTS_INIT;
            kb_curve_pred fe, fk;
            fo.backtest = 0;
            int ok = kb_curve_forecast_points(&fe, x, y, np / 2, x[np - 1], 1, NAN, &fo, NULL) ==
                     KB_OK;
            ok = ok && kb_curve_forecast_points(&fk, x, y, np / 2, x[np - 1], 1, NAN, NULL,
                                                NULL) == KB_OK;
            if (ok) {
                e_ens[nf] = fabs(fe.mean - truth);
                e_kb[nf] = fabs(fk.mean - truth);
                e_last[nf] = fabs(y[np / 2 - 1] - truth);
                cov_ens += fe.lo <= truth && truth <= fe.hi;
                cov_kb += fk.lo <= truth && truth <= fk.hi;
                n_fb += fk.fallback;
                nf++;
            }
            kb_free(x);
            kb_free(y);
        }
        if (nf > 0) {
            double ae = 0, ak = 0, al = 0;
            for (size_t i = 0; i < nf; i++) {
                ae += e_ens[i] / (double)nf;
                ak += e_kb[i] / (double)nf;
                al += e_last[i] / (double)nf;
            }
            printf("\nforecast MAE (%s): ensemble alone %.4f, kb forecast %.4f, last value "
                   "%.4f; ratio to the last value %.2f and %.2f",
                   set == SET_HELD ? "HELD-OUT half" : "all curves", ae, ak, al,
                   al > 0 ? ae / al : NAN, al > 0 ? ak / al : NAN);
            double me = median(e_ens, nf), mk = median(e_kb, nf), ml = median(e_last, nf);
            printf("\nforecast of val_accuracy at the last step from the first half (%s, %zu "
                   "converged / improving curves): median |error| ensemble alone %.4f (ratio "
                   "to last value %.2f, 90%% interval covers %zu/%zu); kb forecast with the "
                   "backtest fallback %.4f (ratio %.2f, covers %zu/%zu, fell back on %zu); last "
                   "value %.4f\n",
                   set == SET_HELD ? "HELD-OUT half" : "all curves", nf, me,
                   ml > 0 ? me / ml : NAN, cov_ens, nf, mk, ml > 0 ? mk / ml : NAN, cov_kb, nf,
                   n_fb, ml);
        }
        kb_free(e_ens);
    }
    for (size_t i = 0; i < n; i++) {
        kb_curve_release(&items[i].curve);
    }
    for (size_t d = 1; d < n_det; d++) {
        kb_free((void *)det_names[d]);
    }
    return 0;
}
