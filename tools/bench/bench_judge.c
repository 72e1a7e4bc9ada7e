/*
 * bench_judge: the training monitor on the labelled set of real curves (tests/data/curves),
 * against the peers' stopping rules computed by tools/bench/judge_peers.py on the same curves.
 *
 *   bench_judge INDEX_CSV [PEERS_CSV]        (tools/bench/judge.sh runs both)
 *
 * For each curve (label = how it was made, see tools/curves/make_curves.sh):
 * - kb's class is the primary verdict of `kb judge` on the whole curve (with --classes K);
 *   per verdict: precision and recall against the labels.
 * - Online, kb is run on every prefix (as `kb watch` / a pruner would); kb "stops" at the
 *   first prefix whose primary verdict is overflow, diverging, underfitting, overfitting or
 *   converged (red at once; the others once they were the verdict on CONFIRM = 2
 *   consecutive prefixes). Peers stop where their rule fires (PEERS_CSV: id,detector,stop_step).
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
static int judge_prefix(kb_curve_judgement *j, const kb_curve *c, size_t k, kb_curve_series *tmp,
                        const kb_curve_opts *o)
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
    return kb_curve_judge(j, &p, o, NULL);
}

static int is_stop(kb_curve_verdict_kind k)
{
    return k != KB_CURVE_VERDICT_IMPROVING && k != KB_CURVE_VERDICT_OSCILLATING;
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

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_judge INDEX_CSV [PEERS_CSV]\n");
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
        for (size_t d = 0; d < MAX_DET; d++) {
            it->stop[d] = NAN;
        }
        find_onset(it);
        n++;
    }
    fclose(f);

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
            /* red stops at once; a stop for converged / under- / overfitting must be the
             * verdict on CONFIRM consecutive prefixes (one noisy point does not stop a run) */
            if (kind >= 0 && is_stop((kb_curve_verdict_kind)kind) && (red || same >= CONFIRM)) {
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

    /* classification table (kb) */
    printf("curves: %zu\n\n", n);
    printf("kb judge on whole curves (primary verdict vs label)\n");
    printf("%-13s %6s %6s %9s %7s\n", "verdict", "label", "said", "precision", "recall");
    for (int v = 0; v < N_LABELS; v++) {
        size_t tp = 0, lab = 0, said = 0;
        for (size_t i = 0; i < n; i++) {
            int is_l = strcmp(items[i].label, labels[v]) == 0, is_s = items[i].kb_class == v;
            lab += is_l;
            said += is_s;
            tp += is_l && is_s;
        }
        if (lab == 0 && said == 0) {
            continue;
        }
        printf("%-13s %6zu %6zu %9.3f %7.3f\n", labels[v], lab, said,
               said ? (double)tp / (double)said : NAN, lab ? (double)tp / (double)lab : NAN);
    }
    printf("\nconfusion (rows: label, columns: kb's verdict)\n%-13s", "");
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

    /* stopping table: every detector */
    printf("\nstopping online: per label, curves stopped, median delay in logged points after "
           "the onset over the stopped curves and (all) over every curve, a curve never stopped "
           "counting to its end; on improving curves every stop is a false stop\n");
    printf("%-22s", "detector");
    for (int l = 0; l < N_LABELS; l++) {
        if (l != 2) {
            printf(" %-22s", labels[l]);
        }
    }
    printf("\n");
    double *delays = kb_malloc_array(n ? n : 1, sizeof *delays);
    double *all = kb_malloc_array(n ? n : 1, sizeof *all);
    static double all_med[MAX_DET][N_LABELS];
    for (size_t d = 0; d < n_det; d++) {
        printf("%-22s", det_names[d]);
        for (int l = 0; l < N_LABELS; l++) {
            if (l == 2) {
                continue;
            }
            size_t tot = 0, stopped = 0, nd = 0, na = 0;
            for (size_t i = 0; i < n; i++) {
                item *it = &items[i];
                if (strcmp(it->label, labels[l]) != 0) {
                    continue;
                }
                tot++;
                if (!isnan(it->onset)) {
                    /* never stopped = ran to the end */
                    double st = isnan(it->stop[d]) ? it->curve.steps[it->curve.n_steps - 1]
                                                   : it->stop[d];
                    all[na++] = st >= it->onset
                                    ? (double)points_between(&it->curve, it->onset, st)
                                    : -(double)points_between(&it->curve, st, it->onset);
                }
                if (isnan(it->stop[d])) {
                    continue;
                }
                stopped++;
                if (!isnan(it->onset)) {
                    double pts = it->stop[d] >= it->onset
                                     ? (double)points_between(&it->curve, it->onset, it->stop[d])
                                     : -(double)points_between(&it->curve, it->stop[d], it->onset);
                    delays[nd++] = pts;
                }
            }
            char cellb[64];
            all_med[d][l] = na > 0 ? median(all, na) : NAN;
            if (tot == 0) {
                snprintf(cellb, sizeof cellb, "-");
            } else if (nd > 0) {
                double med = median(delays, nd);
                snprintf(cellb, sizeof cellb, "%zu/%zu %+.0f (all %+.0f)", stopped, tot, med,
                         median(all, na));
            } else if (na > 0) {
                snprintf(cellb, sizeof cellb, "%zu/%zu (all %+.0f)", stopped, tot,
                         median(all, na));
            } else {
                snprintf(cellb, sizeof cellb, "%zu/%zu", stopped, tot);
            }
            printf(" %-22s", cellb);
        }
        printf("\n");
    }
    kb_free(delays);
    kb_free(all);
    printf("\nratio of kb's delay (all curves) to each peer's: below 1 = kb stops sooner after "
           "the onset\n");
    const int ratio_labels[3] = {3, 4, 5};
    for (size_t d = 1; d < n_det; d++) {
        printf("%-24s", det_names[d]);
        for (int r = 0; r < 3; r++) {
            int l = ratio_labels[r];
            double a = all_med[0][l], b = all_med[d][l];
            printf(" %s ", labels[l]);
            if (b > 0 && a >= 0) {
                printf("%.2f", a / b);
            } else {
                printf("-");
            }
        }
        printf("\n");
    }

    /* forecast: from the first half of each converged / improving curve to its last step */
    double *err_kb = kb_malloc_array(n ? n : 1, sizeof *err_kb);
    double *err_last = kb_malloc_array(n ? n : 1, sizeof *err_last);
    size_t nf = 0, covered = 0;
    for (size_t i = 0; err_kb != NULL && err_last != NULL && i < n; i++) {
        item *it = &items[i];
        if (strcmp(it->label, "converged") != 0 && strcmp(it->label, "improving") != 0) {
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
        kb_curve_pred fc;
        if (kb_curve_forecast_points(&fc, x, y, np / 2, x[np - 1], 1, NAN, NULL, NULL) == KB_OK) {
            err_kb[nf] = fabs(fc.mean - truth);
            err_last[nf] = fabs(y[np / 2 - 1] - truth);
            covered += fc.lo <= truth && truth <= fc.hi;
            nf++;
        }
        kb_free(x);
        kb_free(y);
    }
    if (nf > 0) {
        double mk = median(err_kb, nf), ml = median(err_last, nf);
        printf("\nforecast of val_accuracy at the last step from the first half (%zu converged / "
               "improving curves): median |error| kb ensemble %.4f, last value %.4f, ratio %.2f; "
               "90%% interval covers %zu/%zu\n",
               nf, mk, ml, ml > 0 ? mk / ml : NAN, covered, nf);
    }
    kb_free(err_kb);
    kb_free(err_last);
    for (size_t i = 0; i < n; i++) {
        kb_curve_release(&items[i].curve);
    }
    for (size_t d = 1; d < n_det; d++) {
        kb_free((void *)det_names[d]);
    }
    return 0;
}
