/* engine/curve: the table, the judgement rules on synthetic curves, the forecast, advice. */
#include <math.h>
#include <stdint.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "engine/curve.h"
#include "kb/json.h"

static const kb_curve_verdict *find_verdict(const kb_curve_judgement *j, kb_curve_verdict_kind k)
{
    for (size_t i = 0; i < j->n_verdicts; i++) {
        if (j->verdicts[i].kind == k) {
            return &j->verdicts[i];
        }
    }
    return NULL;
}

/* A deterministic pseudo-noise in [-1, 1] (no RNG: the expectations below are exact). */
static double wiggle(size_t i)
{
    uint32_t h = (uint32_t)i * 2654435761u;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    return (double)(h & 0xffff) / 32767.5 - 1.0;
}

static void test_curve_table_keeps_rows_sorted_and_cells_missing(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = KB_CURVE_INIT;
    CHECK_OK(kb_curve_add(&c, 20, "loss", 1.0, &err), err);
    CHECK_OK(kb_curve_add(&c, 10, "loss", 2.0, &err), err);
    CHECK_OK(kb_curve_add(&c, 10, "val_accuracy", 0.3, &err), err);
    CHECK_OK(kb_curve_add(&c, 30, "loss", INFINITY, &err), err);
    CHECK_OK(kb_curve_add(&c, 40, "loss", NAN, &err), err);
    CHECK(c.n_steps == 4 && c.steps[0] == 10 && c.steps[1] == 20 && c.steps[3] == 40);
    const kb_curve_series *l = kb_curve_get(&c, "loss");
    const kb_curve_series *a = kb_curve_get(&c, "val_accuracy");
    CHECK(l != NULL && a != NULL);
    CHECK(l->values[0] == 2.0 && l->values[1] == 1.0 && isinf(l->values[2]));
    CHECK(isnan(l->values[3]) && l->n_nan == 1 && l->first_nan_step == 40);
    CHECK(l->n_values == 3 && a->n_values == 1 && isnan(a->values[1]));
    double x[8], y[8];
    CHECK(kb_curve_points(&c, l, x, y, 8) == 3 && x[2] == 30 && isinf(y[2]));
    CHECK_CODE(kb_curve_add(&c, NAN, "loss", 1, &err), KB_EINVAL);
    CHECK_CODE(kb_curve_add(&c, 1, "", 1, &err), KB_EINVAL);
    kb_curve_release(&c);
    kb_curve_release(&c);
}

static void test_curve_table_survives_every_allocation_failure(void)
{
    for (long n = 0; n < 40; n++) {
        kb_error err = KB_ERROR_INIT;
        kb_curve c = KB_CURVE_INIT;
        kb_alloc_fail_after(n);
        int rc = KB_OK;
        for (int i = 0; i < 40 && rc == KB_OK; i++) {
            rc = kb_curve_add(&c, i, i % 2 ? "a" : "b", i, &err);
        }
        if (rc == KB_OK) {
            rc = kb_curve_add_final(&c, "acc", 1, &err);
        }
        kb_alloc_fail_after(-1);
        CHECK(rc == KB_OK || rc == KB_ENOMEM);
        kb_curve_release(&c);
    }
}

static kb_curve make(size_t n, double dx, const char *name, double (*f)(double))
{
    kb_curve c = KB_CURVE_INIT;
    for (size_t i = 0; i < n; i++) {
        kb_curve_add(&c, (double)i * dx, name, f((double)i * dx), NULL);
    }
    return c;
}

static double exp_decay(double t)
{
    return 1 + 2 * exp(-t / 50);
}

/*
 * 1 + 2 exp(-t/50) at t = 0, 10, ..., 1000. Early level y(10) (median of the first three
 * points), end level ~1 (median of the last ten), gain 2 exp(-0.2) = 1.6375; the band is
 * 2% of the gain, 0.03275 (the noise of a smooth curve is ~0). The first grid step with
 * 2 exp(-t/50) <= 0.03275 is t = 210 (t >= 50 ln(61.07) = 205.6).
 */
static void test_judge_clean_exponential_decay_converges_at_step_210(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = make(101, 10, "train_loss", exp_decay);
    kb_curve_judgement j;
    CHECK_OK(kb_curve_judge(&j, &c, NULL, &err), err);
    CHECK(j.n_verdicts == 1);
    CHECK(j.verdicts[0].kind == KB_CURVE_VERDICT_CONVERGED);
    CHECK(j.verdicts[0].step == 210);
    CHECK(j.light == KB_CURVE_LIGHT_GREEN);
    CHECK_STR(j.metric, "train_loss");
    CHECK(j.maximize == 0);
    CHECK(j.verdicts[0].confidence > 0.5 && j.verdicts[0].confidence <= 1);
    kb_curve_judgement_release(&j);

    /* the first 12 points (t <= 110) are still falling: improving, green */
    kb_curve p = make(12, 10, "train_loss", exp_decay);
    CHECK_OK(kb_curve_judge(&j, &p, NULL, &err), err);
    CHECK(j.n_verdicts == 1 && j.verdicts[0].kind == KB_CURVE_VERDICT_IMPROVING);
    CHECK(j.light == KB_CURVE_LIGHT_GREEN);
    kb_curve_judgement_release(&j);
    kb_curve_release(&p);
    kb_curve_release(&c);
}

static void test_judge_nan_at_step_370_is_overflow_at_370(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = KB_CURVE_INIT;
    for (int t = 0; t <= 360; t += 10) {
        kb_curve_add(&c, t, "train_loss", 2.3 - 0.002 * t, NULL);
        kb_curve_add(&c, t, "weight_norm", 10 + t, NULL);
    }
    kb_curve_add(&c, 370, "train_loss", NAN, NULL);
    kb_curve_judgement j;
    CHECK_OK(kb_curve_judge(&j, &c, NULL, &err), err);
    CHECK(j.n_verdicts >= 1 && j.verdicts[0].kind == KB_CURVE_VERDICT_OVERFLOW);
    CHECK(j.verdicts[0].step == 370);
    CHECK(j.verdicts[0].confidence == 1.0);
    CHECK(j.light == KB_CURVE_LIGHT_RED);
    CHECK(strstr(j.verdicts[0].detail, "NaN at step 370") != NULL);
    kb_curve_judgement_release(&j);

    /* an infinite weight norm, and non-finite weights counted by the trainer, count too */
    kb_curve d = KB_CURVE_INIT;
    for (int t = 0; t <= 200; t += 10) {
        kb_curve_add(&d, t, "train_loss", 2.3 - 0.002 * t, NULL);
        kb_curve_add(&d, t, "nonfinite_weights", t >= 150 ? 3 : 0, NULL);
    }
    CHECK_OK(kb_curve_judge(&j, &d, NULL, &err), err);
    CHECK(j.verdicts[0].kind == KB_CURVE_VERDICT_OVERFLOW && j.verdicts[0].step == 150);
    kb_curve_judgement_release(&j);
    kb_curve_release(&d);

    /* a final status "diverged" with no non-finite value seen: overflow at the last step */
    kb_curve e = make(30, 10, "train_loss", exp_decay);
    kb_curve_set_status(&e, "diverged", NULL);
    CHECK_OK(kb_curve_judge(&j, &e, NULL, &err), err);
    CHECK(j.verdicts[0].kind == KB_CURVE_VERDICT_OVERFLOW && j.verdicts[0].step == 290);
    CHECK(j.verdicts[0].confidence < 1.0);
    kb_curve_judgement_release(&j);
    kb_curve_release(&e);
    kb_curve_release(&c);
}

static double v_shape(double t)
{
    return t < 50 ? 2 - 0.01 * t : 1.5 + 0.05 * (t - 50);
}

static void test_judge_loss_rising_from_step_50_is_diverging_near_50(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = make(41, 5, "train_loss", v_shape); /* t = 0..200 */
    kb_curve_judgement j;
    CHECK_OK(kb_curve_judge(&j, &c, NULL, &err), err);
    CHECK(j.n_verdicts >= 1 && j.verdicts[0].kind == KB_CURVE_VERDICT_DIVERGING);
    CHECK(fabs(j.verdicts[0].step - 50) <= 10);
    CHECK(j.light == KB_CURVE_LIGHT_RED);
    /* detected once the smoothed loss was back above 60% of its gain for 3 points */
    CHECK(j.verdicts[0].detected_step > 50 && j.verdicts[0].detected_step <= 80);
    kb_curve_judgement_release(&j);
    kb_curve_release(&c);
}

static void test_judge_loss_above_chance_after_a_blow_up_is_diverging(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = KB_CURVE_INIT;
    /* an Adam step far too large: 31 at the first evaluation, then idling 4% above ln 10 */
    kb_curve_add(&c, 15, "train_loss", 31.0, NULL);
    for (size_t i = 2; i <= 40; i++) {
        kb_curve_add(&c, 15.0 * (double)i, "train_loss", 2.40 + 0.02 * wiggle(i), NULL);
    }
    kb_curve_opts o = KB_CURVE_OPTS_INIT;
    o.n_classes = 10;
    kb_curve_judgement j;
    CHECK_OK(kb_curve_judge(&j, &c, &o, &err), err);
    CHECK(j.verdicts[0].kind == KB_CURVE_VERDICT_DIVERGING && j.verdicts[0].step == 15);
    CHECK(strstr(j.verdicts[0].detail, "blew up to 31") != NULL);
    kb_curve_judgement_release(&j);
    /* the same level without the early blow-up is a learning rate too low, not divergence */
    kb_curve d = KB_CURVE_INIT;
    for (size_t i = 1; i <= 40; i++) {
        kb_curve_add(&d, 15.0 * (double)i, "train_loss", 2.40 + 0.02 * wiggle(i), NULL);
    }
    CHECK_OK(kb_curve_judge(&j, &d, &o, &err), err);
    CHECK(j.verdicts[0].kind == KB_CURVE_VERDICT_UNDERFITTING);
    kb_curve_judgement_release(&j);
    /* a last loss above overflow_abs is diverging at once */
    kb_curve_add(&d, 615, "train_loss", 3e9, NULL);
    CHECK_OK(kb_curve_judge(&j, &d, &o, &err), err);
    CHECK(j.verdicts[0].kind == KB_CURVE_VERDICT_DIVERGING && j.light == KB_CURVE_LIGHT_RED);
    kb_curve_judgement_release(&j);
    kb_curve_release(&d);
    kb_curve_release(&c);
}

static void test_judge_train_down_val_up_is_overfitting(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = KB_CURVE_INIT;
    for (int t = 0; t <= 1000; t += 20) {
        kb_curve_add(&c, t, "train_loss", 0.05 + 2 * exp(-t / 150.0), NULL);
        double v = 0.6 + 1.7 * exp(-t / 100.0) + (t > 300 ? 0.0006 * (t - 300) : 0);
        kb_curve_add(&c, t, "val_loss", v + 0.003 * wiggle((size_t)t), NULL);
    }
    kb_curve_judgement j;
    CHECK_OK(kb_curve_judge(&j, &c, NULL, &err), err);
    const kb_curve_verdict *v = find_verdict(&j, KB_CURVE_VERDICT_OVERFITTING);
    CHECK(v != NULL);
    CHECK(v != NULL && v->step >= 280 && v->step <= 400);
    CHECK_STR(v ? v->metric : "", "val_loss");
    CHECK(j.light == KB_CURVE_LIGHT_YELLOW);
    CHECK(find_verdict(&j, KB_CURVE_VERDICT_DIVERGING) == NULL);
    kb_curve_judgement_release(&j);
    kb_curve_release(&c);
}

static void test_judge_flat_near_chance_is_underfitting(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = KB_CURVE_INIT;
    for (size_t i = 0; i <= 60; i++) {
        double t = (double)i * 50;
        kb_curve_add(&c, t, "train_loss", 2.302 + 0.004 * wiggle(i), NULL);
        kb_curve_add(&c, t, "val_accuracy", 0.10 + 0.006 * wiggle(i + 1000), NULL);
    }
    kb_curve_opts o = KB_CURVE_OPTS_INIT;
    o.n_classes = 10;
    kb_curve_judgement j;
    CHECK_OK(kb_curve_judge(&j, &c, &o, &err), err);
    CHECK(j.n_verdicts == 1 && j.verdicts[0].kind == KB_CURVE_VERDICT_UNDERFITTING);
    CHECK(j.light == KB_CURVE_LIGHT_YELLOW);
    CHECK_STR(j.metric, "val_accuracy");
    CHECK(j.maximize == 1);
    CHECK(strstr(j.verdicts[0].detail, "chance") != NULL);
    kb_curve_judgement_release(&j);

    /* without the class count it is still poor: no progress at all */
    CHECK_OK(kb_curve_judge(&j, &c, NULL, &err), err);
    CHECK(j.n_verdicts == 1 && j.verdicts[0].kind == KB_CURVE_VERDICT_UNDERFITTING);
    kb_curve_judgement_release(&j);
    kb_curve_release(&c);
}

static double acc_curve(double t)
{
    return 0.85 - 0.7 * exp(-t / 200);
}

static void test_judge_plateau_is_poor_only_against_the_task_history(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = make(101, 20, "val_accuracy", acc_curve); /* plateau at 0.85 */
    kb_curve_opts o = KB_CURVE_OPTS_INIT;
    kb_curve_judgement j;
    CHECK_OK(kb_curve_judge(&j, &c, &o, &err), err);
    CHECK(j.verdicts[0].kind == KB_CURVE_VERDICT_CONVERGED);
    kb_curve_judgement_release(&j);
    o.ref_best = 0.97; /* the KB knows this task reaches 0.97: 0.85 is 12% worse */
    CHECK_OK(kb_curve_judge(&j, &c, &o, &err), err);
    CHECK(j.verdicts[0].kind == KB_CURVE_VERDICT_UNDERFITTING);
    CHECK(strstr(j.verdicts[0].detail, "task's best") != NULL);
    kb_curve_judgement_release(&j);
    o.ref_best = 0.88;
    CHECK_OK(kb_curve_judge(&j, &c, &o, &err), err);
    CHECK(j.verdicts[0].kind == KB_CURVE_VERDICT_CONVERGED);
    kb_curve_judgement_release(&j);
    kb_curve_release(&c);
}

static double osc(double t)
{
    return 1.2 + 0.5 * (((int)(t / 10)) % 2 ? 1 : -1);
}

static void test_judge_swinging_loss_is_oscillating(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = make(60, 10, "train_loss", osc);
    kb_curve_judgement j;
    CHECK_OK(kb_curve_judge(&j, &c, NULL, &err), err);
    CHECK(j.n_verdicts >= 1 && j.verdicts[0].kind == KB_CURVE_VERDICT_OSCILLATING);
    CHECK(j.light == KB_CURVE_LIGHT_YELLOW);
    kb_curve_judgement_release(&j);
    kb_curve_release(&c);
}

/* The primary verdict of the prefix of c with its first k rows (k >= 1), or -1 for none. */
static int primary_of_prefix(const kb_curve *c, size_t k, const kb_curve_opts *o, double *step)
{
    kb_curve p = *c;
    kb_curve_series tmp[8];
    CHECK(c->n_series <= 8);
    p.n_steps = k;
    p.series = tmp;
    for (size_t s = 0; s < c->n_series && s < 8; s++) {
        tmp[s] = c->series[s];
    }
    kb_curve_judgement j;
    int kind = -1;
    if (kb_curve_judge(&j, &p, o, NULL) == KB_OK && j.n_verdicts > 0) {
        kind = (int)j.verdicts[0].kind;
        if (step != NULL) {
            *step = j.verdicts[0].step;
        }
    }
    kb_curve_judgement_release(&j);
    return kind;
}

/*
 * Overfitting with an exactly known onset: val_loss falls by 0.1 per point to its minimum
 * 0.5 at point 5 (step 50), then rises by 0.05 per point; a +-0.003 wiggle cannot move the
 * minimum. Judged online, the rule needs the minimum and diverge_persist (3) points after it,
 * each worse than the best by overfit_rel of the gain (0.1 x 0.4 = 0.04): the first prefix
 * with the verdict ends at point 8 (step 80), and the verdict's onset is step 50 exactly.
 * The pruner stops on that same point (overfitting needs no confirming point: its rule has
 * its own persistence), 3 points after the onset, two sooner than Keras'
 * EarlyStopping(patience 5) on the same curve.
 */
static void test_judge_overfitting_onset_is_exact_and_seen_3_points_later(void)
{
    kb_curve c = KB_CURVE_INIT;
    for (size_t i = 0; i <= 40; i++) {
        double v = i <= 5 ? 1.0 - 0.1 * (double)i : 0.5 + 0.05 * (double)(i - 5);
        kb_curve_add(&c, 10.0 * (double)i, "train_loss", 2 * exp(-(double)i / 3) + 0.01, NULL);
        kb_curve_add(&c, 10.0 * (double)i, "val_loss", v + 0.003 * wiggle(i), NULL);
    }
    size_t first = 0;
    double onset = NAN;
    for (size_t k = 1; k <= c.n_steps && first == 0; k++) {
        double st = NAN;
        if (primary_of_prefix(&c, k, NULL, &st) == KB_CURVE_VERDICT_OVERFITTING) {
            first = k;
            onset = st;
        }
    }
    CHECK(first == 9);  /* rows 0..8: the prefix ending at step 80 */
    CHECK(onset == 50); /* the minimum of val_loss */
    kb_error err = KB_ERROR_INIT;
    size_t stop = 0;
    for (size_t k = 2; k <= c.n_steps && stop == 0; k++) {
        kb_curve p = c;
        p.n_steps = k;
        kb_curve_prune pr;
        CHECK_OK(kb_curve_prune_check(&pr, &p, NULL, NAN, NAN, 0, &err), err);
        if (pr.prune) {
            stop = k;
            CHECK(pr.why == KB_CURVE_PRUNE_VERDICT && pr.kind == KB_CURVE_VERDICT_OVERFITTING);
        }
    }
    CHECK(stop == 9); /* step 80: 3 points after the onset */
    kb_curve_release(&c);
}

/*
 * Noise alone must not look like overfitting: val_loss flat at 0.5 with a +-0.1 wiggle (its
 * running minimum is always an outlier of the noise) while the training loss falls; on no
 * prefix is the verdict overfitting, so the pruner, which stops on an overfitting verdict at
 * once (no confirming point), never stops this run for overfitting.
 */
static void test_judge_noisy_flat_validation_is_never_overfitting(void)
{
    kb_curve c = KB_CURVE_INIT;
    for (size_t i = 0; i <= 80; i++) {
        kb_curve_add(&c, 10.0 * (double)i, "train_loss", 2 * exp(-(double)i / 20) + 0.01, NULL);
        kb_curve_add(&c, 10.0 * (double)i, "val_loss", 0.5 + 0.1 * wiggle(i + 77), NULL);
    }
    size_t hits = 0;
    for (size_t k = 1; k <= c.n_steps; k++) {
        kb_curve p = c;
        p.n_steps = k;
        kb_curve_judgement j;
        CHECK(kb_curve_judge(&j, &p, NULL, NULL) == KB_OK);
        hits += find_verdict(&j, KB_CURVE_VERDICT_OVERFITTING) != NULL;
        kb_curve_judgement_release(&j);
        kb_curve_prune pr;
        CHECK(kb_curve_prune_check(&pr, &p, NULL, NAN, NAN, 0, NULL) == KB_OK);
        hits += pr.prune && pr.kind == KB_CURVE_VERDICT_OVERFITTING;
    }
    CHECK(hits == 0);
    kb_curve_release(&c);
}

/*
 * A network broken by a far too high learning rate: the training loss blows up to 31 at the
 * first evaluation (past 2 ln 10) and then idles at the chance level. The rule needs the
 * blow-up and diverge_persist (3) points after it: the first diverging prefix has 4 points,
 * and the verdict's onset is the blow-up, step 15.
 */
static void test_judge_blow_up_then_chance_is_diverging_3_points_later(void)
{
    kb_curve c = KB_CURVE_INIT;
    kb_curve_add(&c, 15, "train_loss", 31.0, NULL);
    for (size_t i = 2; i <= 40; i++) {
        kb_curve_add(&c, 15.0 * (double)i, "train_loss", 2.40 + 0.02 * wiggle(i), NULL);
    }
    kb_curve_opts o = KB_CURVE_OPTS_INIT;
    o.n_classes = 10;
    double st = NAN;
    CHECK(primary_of_prefix(&c, 3, &o, NULL) != KB_CURVE_VERDICT_DIVERGING);
    CHECK(primary_of_prefix(&c, 4, &o, &st) == KB_CURVE_VERDICT_DIVERGING);
    CHECK(st == 15);
    kb_curve_release(&c);
}

/*
 * Swinging is not broken: after the same kind of blow-up (to 9 with 2 classes) the training
 * loss swings between 0.35 and 1.6 around the chance level ln 2 and the accuracy moves with
 * it; the run is oscillating, not diverging. The same loss with an accuracy pinned to the
 * class frequencies (0.65 or 0.35: the network predicts one class) is diverging.
 * A small validation set repeats accuracy values without pinning them: the swinging run's
 * accuracy rounded to 1/50 (a 50-row validation set) takes 8 distinct values on its last 30
 * points (0.27 per evaluation, within CHANCE_PINNED_FRAC) but 4 K of them, more than a network
 * predicting one class can score (about K); it is oscillating, not diverging.
 */
static void test_judge_swinging_after_a_blow_up_is_not_diverging_unless_pinned(void)
{
    kb_curve c = KB_CURVE_INIT, d = KB_CURVE_INIT, e = KB_CURVE_INIT;
    for (size_t i = 1; i <= 60; i++) {
        double t = 10.0 * (double)i;
        double loss = i == 1 ? 9.0 : 0.95 + 0.6 * wiggle(i);
        kb_curve_add(&c, t, "train_loss", loss, NULL);
        kb_curve_add(&d, t, "train_loss", loss, NULL);
        kb_curve_add(&e, t, "train_loss", loss, NULL);
        kb_curve_add(&c, t, "val_accuracy", 0.7 + 0.08 * wiggle(i + 500), NULL);
        kb_curve_add(&d, t, "val_accuracy", wiggle(i + 500) > -0.6 ? 0.65 : 0.35, NULL);
        kb_curve_add(&e, t, "val_accuracy", round(50 * (0.65 + 0.08 * wiggle(i + 500))) / 50,
                     NULL);
    }
    kb_curve_opts o = KB_CURVE_OPTS_INIT;
    o.n_classes = 2;
    kb_curve_judgement j;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_curve_judge(&j, &c, &o, &err), err);
    CHECK(find_verdict(&j, KB_CURVE_VERDICT_DIVERGING) == NULL);
    CHECK(j.verdicts[0].kind == KB_CURVE_VERDICT_OSCILLATING);
    kb_curve_judgement_release(&j);
    CHECK_OK(kb_curve_judge(&j, &d, &o, &err), err);
    CHECK(j.verdicts[0].kind == KB_CURVE_VERDICT_DIVERGING && j.verdicts[0].step == 10);
    kb_curve_judgement_release(&j);
    CHECK_OK(kb_curve_judge(&j, &e, &o, &err), err);
    CHECK(find_verdict(&j, KB_CURVE_VERDICT_DIVERGING) == NULL);
    CHECK(j.verdicts[0].kind == KB_CURVE_VERDICT_OSCILLATING);
    kb_curve_judgement_release(&j);
    kb_curve_release(&e);
    kb_curve_release(&d);
    kb_curve_release(&c);
}

/* An oscillating run has no trend to wait for: the pruner stops it once the verdict held on
 * two consecutive points. */
static void test_prune_check_stops_a_confirmed_oscillation(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = KB_CURVE_INIT;
    for (size_t i = 0; i < 60; i++) {
        kb_curve_add(&c, 10.0 * (double)i, "train_loss", 1.2 + 0.5 * wiggle(i + 300), NULL);
    }
    CHECK(primary_of_prefix(&c, 59, NULL, NULL) == KB_CURVE_VERDICT_OSCILLATING);
    kb_curve_prune pr;
    CHECK_OK(kb_curve_prune_check(&pr, &c, NULL, NAN, NAN, 0, &err), err);
    CHECK(pr.prune == 1 && pr.why == KB_CURVE_PRUNE_VERDICT);
    CHECK(pr.kind == KB_CURVE_VERDICT_OSCILLATING);
    kb_curve_release(&c);
}

static void test_judge_rejects_unknown_metric_and_handles_empty_curve(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = KB_CURVE_INIT;
    kb_curve_judgement j;
    CHECK_OK(kb_curve_judge(&j, &c, NULL, &err), err);
    CHECK(j.n_verdicts == 0 && j.n_points == 0 && j.light == KB_CURVE_LIGHT_GREEN);
    kb_curve_judgement_release(&j);
    kb_curve_add(&c, 0, "lr", 0.1, NULL);
    kb_curve_opts o = KB_CURVE_OPTS_INIT;
    o.metric = "val_accuracy";
    CHECK_CODE(kb_curve_judge(&j, &c, &o, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "val_accuracy") != NULL);
    kb_curve_release(&c);
}

static void test_judge_survives_every_allocation_failure(void)
{
    kb_curve c = make(101, 10, "train_loss", exp_decay);
    for (long n = 0; n < 16; n++) {
        kb_error err = KB_ERROR_INIT;
        kb_curve_judgement j;
        kb_alloc_fail_after(n);
        int rc = kb_curve_judge(&j, &c, NULL, &err);
        kb_alloc_fail_after(-1);
        CHECK(rc == KB_OK || rc == KB_ENOMEM);
        kb_curve_judgement_release(&j);
    }
    kb_curve_release(&c);
}

/* pow3 as Domhan et al. write it: y = c - a x^-alpha */
static double pow3(double x)
{
    return 0.9 - 0.5 * pow(x, -0.5);
}

static void test_forecast_recovers_the_closed_form_curve(void)
{
    kb_error err = KB_ERROR_INIT;
    double x[100], y[100];
    for (size_t i = 0; i < 100; i++) {
        x[i] = 10.0 * (double)(i + 1); /* steps 10 .. 1000 */
        y[i] = pow3(x[i] / 10);
    }
    kb_curve_pred f;
    CHECK_OK(kb_curve_forecast_points(&f, x, y, 100, 5000, 1, 0.95, NULL, &err), err);
    double truth = pow3(500);
    CHECK_NEAR(f.mean, truth, 0, 0.003);
    CHECK(f.lo <= truth + 1e-9 && truth - 1e-9 <= f.hi);
    CHECK(f.lo <= f.mean && f.mean <= f.hi);
    CHECK(f.n_models >= 2);
    CHECK(f.p_beat >= 0 && f.p_beat < 0.05); /* 0.95 is out of reach */
    CHECK_OK(kb_curve_forecast_points(&f, x, y, 100, 5000, 1, 0.80, NULL, &err), err);
    CHECK(f.p_beat > 0.95);

    /* a loss (minimised): the exponential decay, forecast from its first 300 steps */
    double lx[31], ly[31];
    for (size_t i = 0; i < 31; i++) {
        lx[i] = 10.0 * (double)i;
        ly[i] = exp_decay(lx[i]);
    }
    CHECK_OK(kb_curve_forecast_points(&f, lx, ly, 31, 1000, 0, NAN, NULL, &err), err);
    CHECK_NEAR(f.mean, exp_decay(1000), 0, 0.01);
    CHECK(isnan(f.p_beat));
    CHECK(f.lo <= f.hi);

    /* too few points */
    CHECK_CODE(kb_curve_forecast_points(&f, x, y, 3, 5000, 1, NAN, NULL, &err), KB_ENUMERIC);
}

static void test_forecast_of_noisy_curve_has_an_honest_interval(void)
{
    kb_error err = KB_ERROR_INIT;
    double x[200], y[200];
    for (size_t i = 0; i < 200; i++) {
        x[i] = 5.0 * (double)(i + 1);
        y[i] = 0.8 - 0.6 * exp(-x[i] / 300) + 0.01 * wiggle(i);
    }
    kb_curve_pred f;
    CHECK_OK(kb_curve_forecast_points(&f, x, y, 200, 3000, 1, NAN, NULL, &err), err);
    CHECK_NEAR(f.mean, 0.8, 0, 0.02);
    CHECK(f.hi - f.lo > 0.001 && f.hi - f.lo < 0.2);
}

static kb_param fparam(const char *name, double v)
{
    kb_param p;
    memset(&p, 0, sizeof p);
    p.name = (char *)name;
    p.value.type = KB_VALUE_TYPE_FLOAT;
    p.value.f = v;
    return p;
}

static kb_param iparam(const char *name, long v)
{
    kb_param p;
    memset(&p, 0, sizeof p);
    p.name = (char *)name;
    p.value.type = KB_VALUE_TYPE_INT;
    p.value.i = v;
    return p;
}

static int has_text(const kb_curve_advice *a, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strstr(a[i].text, s) != NULL) {
            return 1;
        }
    }
    return 0;
}

static void test_advice_computes_numbers_from_the_configuration(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve_verdict v;
    memset(&v, 0, sizeof v);
    kb_curve_judgement j;
    memset(&j, 0, sizeof j);
    j.verdicts = &v;
    j.n_verdicts = 1;
    kb_param cfg[3] = {fparam("base_lr", 0.001), iparam("batch_size", 128),
                       fparam("weight_decay", 0.0005)};
    kb_curve_advice *a = NULL;
    size_t n = 0;

    v.kind = KB_CURVE_VERDICT_DIVERGING;
    CHECK_OK(kb_curve_advise(&a, &n, &j, cfg, 3, &err), err);
    CHECK(has_text(a, n, "stop; learning rate 0.001 -> 0.00033, batch size 128 -> 64"));
    CHECK(n >= 1 && strcmp(a[0].param, "base_lr") == 0 && a[0].to == 0.00033);
    kb_free(a);

    v.kind = KB_CURVE_VERDICT_OVERFLOW;
    v.step = 370;
    CHECK_OK(kb_curve_advise(&a, &n, &j, cfg, 3, &err), err);
    CHECK(has_text(a, n, "add clip_gradients 0.1"));
    CHECK(strcmp(a[0].param, "clip_gradients") == 0 && a[0].to == 0.1);
    kb_free(a);
    kb_param cfg2[2] = {fparam("base_lr", 0.01), fparam("clip_gradients", 0.5)};
    CHECK_OK(kb_curve_advise(&a, &n, &j, cfg2, 2, &err), err);
    CHECK(has_text(a, n, "halve clip_gradients 0.5 -> 0.25"));
    kb_free(a);

    v.kind = KB_CURVE_VERDICT_OVERFITTING;
    v.step = 300;
    CHECK_OK(kb_curve_advise(&a, &n, &j, cfg, 3, &err), err);
    CHECK(has_text(a, n, "weight_decay 0.0005 -> 0.005"));
    CHECK(has_text(a, n, "add dropout"));
    CHECK(has_text(a, n, "best validation step 300"));
    kb_free(a);

    v.kind = KB_CURVE_VERDICT_UNDERFITTING;
    kb_param cfg3[2] = {fparam("lr", 1e-6), iparam("units", 16)};
    CHECK_OK(kb_curve_advise(&a, &n, &j, cfg3, 2, &err), err);
    CHECK(has_text(a, n, "units 16 -> 32"));
    CHECK(has_text(a, n, "lr 1e-06 -> 1e-05"));
    kb_free(a);
    CHECK_OK(kb_curve_advise(&a, &n, &j, NULL, 0, &err), err);
    CHECK(has_text(a, n, "add layers / units"));
    kb_free(a);

    v.kind = KB_CURVE_VERDICT_CONVERGED;
    v.step = 1600;
    kb_param cfg4[1] = {iparam("max_iter", 5000)};
    CHECK_OK(kb_curve_advise(&a, &n, &j, cfg4, 1, &err), err);
    CHECK(n == 1 && has_text(a, n, "stop now, nothing more to gain"));
    CHECK(has_text(a, n, "max_iter 5000 -> 1600"));
    kb_free(a);
}

static void test_history_advice_finds_the_change_that_fixed_diverging_runs(void)
{
    kb_error err = KB_ERROR_INIT;
    /* task A: lr 0.1 diverged, lr 0.01 converged; task B: the same with batch 64 -> 32 too;
     * task C: a diverged run fixed by clipping (a text value) */
    kb_param a1[2] = {fparam("lr", 0.1), iparam("batch_size", 64)};
    kb_param a2[2] = {fparam("lr", 0.01), iparam("batch_size", 64)};
    kb_param b1[2] = {fparam("lr", 0.3), iparam("batch_size", 64)};
    kb_param b2[2] = {fparam("lr", 0.03), iparam("batch_size", 32)};
    kb_param b3[2] = {fparam("lr", 0.3), iparam("batch_size", 64)};
    kb_param c1[2] = {fparam("lr", 0.1), fparam("momentum", 0.9)};
    kb_param c2[2] = {fparam("lr", 0.1), fparam("momentum", 0.5)};
    kb_param d1[2] = {fparam("lr", 0.1), iparam("batch_size", 64)};
    kb_curve_past_run runs[] = {
        {"a1", "A", a1, 2, KB_CURVE_VERDICT_DIVERGING, 0.10},
        {"a2", "A", a2, 2, KB_CURVE_VERDICT_CONVERGED, 0.90},
        {"b1", "B", b1, 2, KB_CURVE_VERDICT_DIVERGING, NAN},
        {"b2", "B", b2, 2, KB_CURVE_VERDICT_CONVERGED, 0.85},
        {"b3", "B", b3, 2, KB_CURVE_VERDICT_OVERFITTING, 0.50}, /* not good: ignored */
        {"c1", "C", c1, 2, KB_CURVE_VERDICT_DIVERGING, 0.10},
        {"c2", "C", c2, 2, KB_CURVE_VERDICT_IMPROVING, 0.70},
        {"d1", "D", d1, 2, KB_CURVE_VERDICT_CONVERGED, 0.95}, /* another task: no pair */
    };
    kb_curve_fix *fix = NULL;
    size_t n = 0;
    CHECK_OK(kb_curve_advise_history(&fix, &n, KB_CURVE_VERDICT_DIVERGING, runs, 8, 1, &err),
             err);
    CHECK(n == 3);
    if (n == 3) {
        CHECK_STR(fix[0].param, "lr");
        CHECK(fix[0].n_support == 2);
        CHECK_NEAR(fix[0].ratio, 0.1, 1e-12, 0);
        CHECK_NEAR(fix[0].gain, 0.8, 1e-12, 0); /* only a1 -> a2 has both finals */
        CHECK_STR(fix[0].example_bad, "a1");
        CHECK(fix[1].n_support == 1 && fix[2].n_support == 1);
        /* the two single-support changes: batch_size halved (no gain known), momentum down */
        int bs = strcmp(fix[1].param, "batch_size") == 0 ? 1 : 2;
        CHECK_STR(fix[bs].param, "batch_size");
        CHECK_NEAR(fix[bs].ratio, 0.5, 1e-12, 0);
        CHECK_STR(fix[3 - bs].param, "momentum");
    }
    kb_free(fix);
    CHECK_OK(kb_curve_advise_history(&fix, &n, KB_CURVE_VERDICT_OVERFLOW, runs, 8, 1, &err),
             err);
    CHECK(n == 0 && fix == NULL);
}

static void test_prune_check_stops_red_runs_and_hopeless_ones(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = make(41, 5, "train_loss", v_shape);
    kb_curve_prune pr;
    CHECK_OK(kb_curve_prune_check(&pr, &c, NULL, 1000, NAN, 0.05, &err), err);
    CHECK(pr.prune == 1 && pr.kind == KB_CURVE_VERDICT_DIVERGING);
    kb_curve_release(&c);

    kb_curve a = make(30, 20, "val_accuracy", acc_curve); /* heads for 0.85 */
    CHECK_OK(kb_curve_prune_check(&pr, &a, NULL, 2000, 0.95, 0.05, &err), err);
    CHECK(pr.prune == 1 && pr.p_beat < 0.05);
    CHECK(strstr(pr.reason, "P(beat") != NULL);
    CHECK_OK(kb_curve_prune_check(&pr, &a, NULL, 2000, 0.70, 0.05, &err), err);
    CHECK(pr.prune == 0 && pr.p_beat > 0.5);
    kb_curve_release(&a);
}

/*
 * A curve that rises for 30 points, then sags (a learning-rate or overfitting bend): the
 * ensemble fitted on its first half extrapolates the rise and misses its last point by far
 * more than persistence does, so the forecast falls back to the median of the last 3 points
 * (0.736, 0.734, 0.732 -> 0.734). A clean saturating curve keeps the ensemble.
 */
static void test_forecast_falls_back_to_persistence_when_it_loses_the_backtest(void)
{
    kb_error err = KB_ERROR_INIT;
    double x[60], y[60];
    for (int i = 0; i < 60; i++) {
        x[i] = 10.0 * (i + 1);
        y[i] = i < 30 ? 0.5 + 0.01 * i : 0.79 - 0.002 * (i - 30);
    }
    kb_curve_pred f;
    CHECK_OK(kb_curve_forecast_points(&f, x, y, 60, 1200, 1, 0.8, NULL, &err), err);
    CHECK(f.fallback == 1);
    CHECK(f.backtest_err > f.backtest_err_last);
    CHECK_NEAR(f.mean, 0.734, 1e-12, 0);
    CHECK(f.sd > 0 && f.lo < f.mean && f.mean < f.hi);
    CHECK(f.p_beat > 0 && f.p_beat < 0.5); /* 0.734 is below the incumbent 0.8 */
    kb_curve_forecast_opts o = KB_CURVE_FORECAST_OPTS_INIT;
    o.backtest = 0;
    CHECK_OK(kb_curve_forecast_points(&f, x, y, 60, 1200, 1, 0.8, &o, &err), err);
    CHECK(f.fallback == 0 && isnan(f.backtest_err) && f.mean > 0.734);

    for (int i = 0; i < 60; i++) {
        y[i] = 0.9 - 0.4 * exp(-x[i] / 100);
    }
    CHECK_OK(kb_curve_forecast_points(&f, x, y, 60, 1200, 1, 0.8, NULL, &err), err);
    CHECK(f.fallback == 0 && f.backtest_err < f.backtest_err_last);
    CHECK_NEAR(f.mean, 0.9, 0, 1e-3);
}

static void test_prune_check_stops_a_plateau_that_cannot_reach_the_incumbent(void)
{
    kb_error err = KB_ERROR_INIT;
    /* 34 points (t <= 330): converged at 200 is the verdict for the first time (not yet on
     * the first 33), so only the incumbent rules can stop it */
    kb_curve c = make(34, 10, "train_loss", exp_decay);
    kb_curve_prune pr;
    CHECK_OK(kb_curve_prune_check(&pr, &c, NULL, 330, 0.5, 0.05, &err), err);
    CHECK(pr.prune == 1 && pr.why == KB_CURVE_PRUNE_PLATEAU);
    CHECK(pr.kind == KB_CURVE_VERDICT_CONVERGED && pr.light == KB_CURVE_LIGHT_GREEN);
    CHECK(strstr(pr.reason, "worse than the incumbent 0.5") != NULL);
    /* the last metric to record with the pruned run */
    CHECK_STR(pr.metric, "train_loss");
    CHECK(pr.maximize == 0 && pr.last_step == 330);
    CHECK_NEAR(pr.last_value, exp_decay(330), 1e-12, 0);
    CHECK_NEAR(pr.best_value, exp_decay(330), 1e-12, 0);

    /* within 1% of the incumbent the plateau rule waits and the forecast decides: a curve
     * flattening at 1.003 cannot beat 0.995, but it does beat 1.01 */
    CHECK_OK(kb_curve_prune_check(&pr, &c, NULL, 330, 0.995, 0.05, &err), err);
    CHECK(pr.prune == 1 && pr.why == KB_CURVE_PRUNE_FORECAST && pr.p_beat < 0.05);
    CHECK_OK(kb_curve_prune_check(&pr, &c, NULL, 330, 1.01, 0.05, &err), err);
    CHECK(pr.prune == 0 && pr.why == KB_CURVE_PRUNE_NONE && pr.reason[0] == '\0');
    CHECK(pr.p_beat > 0.95);
    /* so does p_min 0, and a run not yet a quarter of the way to its target step */
    CHECK_OK(kb_curve_prune_check(&pr, &c, NULL, 330, 0.5, 0, &err), err);
    CHECK(pr.prune == 0);
    CHECK_OK(kb_curve_prune_check(&pr, &c, NULL, 1400, 0.5, 0.05, &err), err);
    CHECK(pr.prune == 0);
    /* the direction comes from opts: maximising, 1.003 beats an incumbent of 0.5 */
    kb_curve_opts o = KB_CURVE_OPTS_INIT;
    o.mode = KB_CURVE_MODE_MAX;
    CHECK_OK(kb_curve_prune_check(&pr, &c, &o, 330, 0.5, 0.05, &err), err);
    CHECK(pr.maximize == 1 && !(pr.prune && pr.why == KB_CURVE_PRUNE_PLATEAU));
    kb_curve_release(&c);

    /* an empty curve: continue, nothing known */
    kb_curve e = KB_CURVE_INIT;
    CHECK_OK(kb_curve_prune_check(&pr, &e, NULL, 1000, 0.5, 0.05, &err), err);
    CHECK(pr.prune == 0 && isnan(pr.last_value) && pr.metric[0] == '\0');
    CHECK_CODE(kb_curve_prune_check(NULL, &e, NULL, 1000, 0.5, 0.05, &err), KB_EINVAL);
}

static void test_prune_check_stops_a_confirmed_plateau_whatever_the_incumbent(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = make(35, 10, "train_loss", exp_decay); /* converged on 34 and 35 points */
    kb_curve_prune pr;
    CHECK_OK(kb_curve_prune_check(&pr, &c, NULL, NAN, NAN, 0, &err), err);
    CHECK(pr.prune == 1 && pr.why == KB_CURVE_PRUNE_VERDICT);
    CHECK(pr.kind == KB_CURVE_VERDICT_CONVERGED);
    CHECK(strncmp(pr.reason, "converged at step 200: ", 23) == 0);
    kb_curve_release(&c);

    /* a run still improving is not stopped */
    kb_curve d = make(20, 10, "train_loss", exp_decay);
    CHECK_OK(kb_curve_prune_check(&pr, &d, NULL, NAN, NAN, 0, &err), err);
    CHECK(pr.prune == 0 && pr.kind == KB_CURVE_VERDICT_IMPROVING);
    kb_curve_release(&d);
}

/* the NaN-at-370 run of test_judge_nan_at_step_370_is_overflow_at_370 */
static kb_curve overflow_curve(const char *loss_name)
{
    kb_curve c = KB_CURVE_INIT;
    for (int t = 0; t <= 360; t += 10) {
        kb_curve_add(&c, t, loss_name, 2.3 - 0.002 * t, NULL);
    }
    kb_curve_add(&c, 370, loss_name, NAN, NULL);
    return c;
}

static int canonical_equal(const char *text)
{
    kb_json_reader *r = NULL;
    kb_buf b = KB_BUF_INIT;
    int same = kb_json_reader_new(&r, NULL) == KB_OK &&
               kb_json_canonical_text(&b, r, text, strlen(text), NULL) == KB_OK &&
               strcmp(b.data, text) == 0;
    if (!same) {
        fprintf(stderr, "not canonical: %s\n   canonical: %s\n", text, b.data ? b.data : "-");
    }
    kb_buf_release(&b);
    kb_json_reader_free(r);
    return same;
}

static int verdict_json_once(void)
{
    kb_curve c = overflow_curve("train_loss");
    kb_param cfg[2] = {fparam("base_lr", 0.001), iparam("batch_size", 128)};
    char *s = NULL;
    int rc = kb_curve_verdict_json(&s, &c, NULL, cfg, 2, NULL);
    CHECK(rc == KB_OK ? s != NULL : s == NULL);
    kb_free(s);
    kb_curve_release(&c);
    return rc;
}

static void test_verdict_json_is_canonical_and_names_verdict_step_and_advice(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_curve c = overflow_curve("train_loss");
    kb_param cfg[2] = {fparam("base_lr", 0.001), iparam("batch_size", 128)};
    char *s = NULL, *s2 = NULL;
    CHECK_OK(kb_curve_verdict_json(&s, &c, NULL, cfg, 2, &err), err);
    CHECK_OK(kb_curve_verdict_json(&s2, &c, NULL, cfg, 2, &err), err);
    CHECK(s != NULL && s2 != NULL && strcmp(s, s2) == 0);
    if (s != NULL) {
        CHECK(strncmp(s, "{\"advice\":[{\"from\":null,\"param\":\"clip_gradients\","
                         "\"reason\":\"overflow\",\"text\":\"stop; non-finite values at step 370: "
                         "add clip_gradients 0.1\",\"to\":0.1}",
                      120) == 0);
        CHECK(strstr(s, "\"light\":\"red\",\"metric\":\"train_loss\",\"mode\":\"min\"") != NULL);
        CHECK(strstr(s, "\"schema\":\"kb.verdict/1\",\"verdicts\":[{\"confidence\":1,") != NULL);
        CHECK(strstr(s, "\"kind\":\"overflow\",\"metric\":\"train_loss\",\"step\":370}") != NULL);
        CHECK(strstr(s, "\"last\":{\"step\":360,\"value\":1.57999999") != NULL);
        CHECK(strstr(s, "\"from\":0.001,\"param\":\"base_lr\"") != NULL);
        CHECK(strchr(s, ' ') == NULL || strstr(s, "\"text\"") != NULL);
        CHECK(canonical_equal(s));
    }
    kb_free(s);
    kb_free(s2);
    kb_curve_release(&c);

    /* no usable series: no verdicts, nulls for the numbers, still canonical */
    kb_curve e = KB_CURVE_INIT;
    CHECK_OK(kb_curve_verdict_json(&s, &e, NULL, NULL, 0, &err), err);
    CHECK_STR(s, "{\"advice\":[],\"best\":{\"step\":null,\"value\":null},\"last\":{\"step\":null,"
                 "\"value\":null},\"light\":\"green\",\"metric\":\"\",\"mode\":\"min\","
                 "\"n_points\":0,\"schema\":\"kb.verdict/1\",\"verdicts\":[]}");
    CHECK(canonical_equal(s));
    kb_free(s);

    /* a metric name that is not UTF-8 (from a trainer's output) and needs escaping */
    kb_curve u = overflow_curve("lo\xff\"ss\x01\xc3\xa9");
    CHECK_OK(kb_curve_verdict_json(&s, &u, NULL, NULL, 0, &err), err);
    CHECK(s != NULL && strstr(s, "\"metric\":\"lo\xef\xbf\xbd\\\"ss\\u0001\xc3\xa9\"") != NULL);
    CHECK(s != NULL && canonical_equal(s));
    kb_free(s);
    kb_curve_release(&u);

    CHECK_CODE(kb_curve_verdict_json(NULL, &e, NULL, NULL, 0, &err), KB_EINVAL);
    s = (char *)1;
    CHECK_CODE(kb_curve_verdict_json(&s, NULL, NULL, NULL, 0, &err), KB_EINVAL);
    CHECK(s == NULL);
    CHECK_ENOMEM_SWEEP(verdict_json_once, 200);
}

static void test_names_and_directions(void)
{
    kb_error err = KB_ERROR_INIT;
    CHECK(kb_curve_name_maximizes("val_accuracy") == 1);
    CHECK(kb_curve_name_maximizes("val_loss") == 0);
    CHECK(kb_curve_name_maximizes("test_error") == 0);
    CHECK(kb_curve_name_maximizes("auc") == 1);
    kb_curve_verdict_kind k;
    CHECK_OK(kb_curve_verdict_parse(&k, "overfitting", &err), err);
    CHECK(k == KB_CURVE_VERDICT_OVERFITTING);
    CHECK_CODE(kb_curve_verdict_parse(&k, "bogus", &err), KB_EFORMAT);
    CHECK_STR(kb_curve_light_name(KB_CURVE_LIGHT_RED), "red");
    CHECK_STR(kb_curve_model_name(0), "pow3");
    CHECK(kb_curve_verdict_light(KB_CURVE_VERDICT_UNDERFITTING) == KB_CURVE_LIGHT_YELLOW);
}

int main(void)
{
    test_curve_table_keeps_rows_sorted_and_cells_missing();
    test_curve_table_survives_every_allocation_failure();
    test_judge_clean_exponential_decay_converges_at_step_210();
    test_judge_nan_at_step_370_is_overflow_at_370();
    test_judge_loss_rising_from_step_50_is_diverging_near_50();
    test_judge_loss_above_chance_after_a_blow_up_is_diverging();
    test_judge_train_down_val_up_is_overfitting();
    test_judge_flat_near_chance_is_underfitting();
    test_judge_plateau_is_poor_only_against_the_task_history();
    test_judge_swinging_loss_is_oscillating();
    test_judge_overfitting_onset_is_exact_and_seen_3_points_later();
    test_judge_noisy_flat_validation_is_never_overfitting();
    test_judge_blow_up_then_chance_is_diverging_3_points_later();
    test_judge_swinging_after_a_blow_up_is_not_diverging_unless_pinned();
    test_prune_check_stops_a_confirmed_oscillation();
    test_judge_rejects_unknown_metric_and_handles_empty_curve();
    test_judge_survives_every_allocation_failure();
    test_forecast_recovers_the_closed_form_curve();
    test_forecast_of_noisy_curve_has_an_honest_interval();
    test_advice_computes_numbers_from_the_configuration();
    test_history_advice_finds_the_change_that_fixed_diverging_runs();
    test_prune_check_stops_red_runs_and_hopeless_ones();
    test_forecast_falls_back_to_persistence_when_it_loses_the_backtest();
    test_prune_check_stops_a_plateau_that_cannot_reach_the_incumbent();
    test_prune_check_stops_a_confirmed_plateau_whatever_the_incumbent();
    test_verdict_json_is_canonical_and_names_verdict_step_and_advice();
    test_names_and_directions();
    return check_exit();
}
