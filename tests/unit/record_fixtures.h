/*
 * Test fixtures for kb records: builders that fill every field (owned, so kb_*_release frees
 * them) and deep equality that compares reals bit for bit (NaN payloads and -0 included).
 * Shared by test_codec and test_store.
 */
#ifndef KB_TESTS_RECORD_FIXTURES_H
#define KB_TESTS_RECORD_FIXTURES_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "kb/record.h"

static inline char *fx_str(const char *s)
{
    return s == NULL ? NULL : kb_strdup(s);
}

static inline int fx_bits_eq(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static inline int fx_str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

/* A NaN with a payload and the sign bit set, to check bit-exact round trips */
static inline double fx_odd_nan(void)
{
    uint64_t u = 0xfff8000000c0ffeeull;
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static inline kb_metric *fx_metrics(size_t n, const char *prefix, double base)
{
    kb_metric *m = kb_calloc(n, sizeof *m);
    for (size_t i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%03zu", prefix, i);
        m[i].name = fx_str(name);
        m[i].value = base + (double)i / 7.0;
    }
    return m;
}

static inline void fx_task(kb_task *t, const char *id, const char *team)
{
    memset(t, 0, sizeof *t);
    t->id = fx_str(id);
    t->name = fx_str("iris, with \"quotes\" and ünïcode");
    t->fingerprint = fx_str("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    t->type = KB_TASK_TYPE_CLASSIFICATION;
    t->target = fx_str("species");
    t->n_features = 4;
    t->features = fx_metrics(4, "mf_", 0.5);
    t->features[2].value = NAN;
    t->features[3].value = -0.0;
    t->feature_set = fx_str("kb-mf-1");
    t->n_tags = 2;
    t->tags = kb_calloc(2, sizeof *t->tags);
    t->tags[0] = fx_str("tabular");
    t->tags[1] = fx_str("");
    t->team = fx_str(team);
    t->created_at = 1700000000123456;
    t->extra = fx_str("{\"source\":\"test\"}");
}

static inline void fx_param_float(kb_param *p, const char *name, double v)
{
    p->name = fx_str(name);
    p->value.type = KB_VALUE_TYPE_FLOAT;
    p->value.f = v;
}

static inline void fx_param_int(kb_param *p, const char *name, int64_t v)
{
    p->name = fx_str(name);
    p->value.type = KB_VALUE_TYPE_INT;
    p->value.i = v;
}

static inline void fx_series(kb_series *s, const char *metric, size_t n)
{
    s->metric = fx_str(metric);
    s->n = n;
    s->steps = kb_malloc_array(n > 0 ? n : 1, sizeof *s->steps);
    s->values = kb_malloc_array(n > 0 ? n : 1, sizeof *s->values);
    for (size_t i = 0; i < n; i++) {
        s->steps[i] = (int64_t)(i * 10);
        s->values[i] = 1.0 / (double)(i + 1);
    }
}

/* A run with every field set; `task_id` may be NULL */
static inline void fx_run(kb_run *r, const char *id, const char *task_id, const char *space,
                          const char *backbone_id, const char *team, kb_run_status status)
{
    memset(r, 0, sizeof *r);
    r->id = fx_str(id);
    r->task_id = fx_str(task_id);
    r->space = fx_str(space);
    r->backbone_id = fx_str(backbone_id);
    r->team = fx_str(team);
    r->status = status;
    r->n_config = 5;
    r->config = kb_calloc(5, sizeof *r->config);
    fx_param_int(&r->config[0], "batch_size", 128);
    r->config[1].name = fx_str("enabled");
    r->config[1].value.type = KB_VALUE_TYPE_BOOL;
    r->config[1].value.b = 1;
    fx_param_float(&r->config[2], "lr", 3e-4);
    r->config[3].name = fx_str("momentum");
    r->config[3].value.type = KB_VALUE_TYPE_NONE;
    r->config[4].name = fx_str("optimizer");
    r->config[4].value.type = KB_VALUE_TYPE_STR;
    r->config[4].value.s = fx_str("adam");
    r->n_fidelity = 1;
    r->fidelity = kb_calloc(1, sizeof *r->fidelity);
    fx_param_int(&r->fidelity[0], "epochs", 20);
    r->objective = fx_str("val_accuracy");
    r->direction = KB_DIRECTION_MAXIMIZE;
    r->n_metrics = 2;
    r->metrics = fx_metrics(2, "val_", 0.25);
    r->metrics[1].value = INFINITY;
    r->n_curve = 2;
    r->curve = kb_calloc(2, sizeof *r->curve);
    fx_series(&r->curve[0], "loss", 20);
    r->curve[0].values[3] = NAN;
    r->curve[0].values[4] = -INFINITY;
    r->curve[0].values[5] = fx_odd_nan();
    r->curve[0].values[6] = -0.0;
    r->curve[0].steps[7] = r->curve[0].steps[6]; /* repeated step */
    r->curve[0].steps[19] = INT64_MAX;
    fx_series(&r->curve[1], "val_accuracy", 0);
    r->cost_s = NAN;
    r->started_at = KB_TIME_UNKNOWN;
    r->finished_at = -5;
    r->study_id = fx_str("study-1");
    r->extra = fx_str("{}");
}

static inline void fx_backbone(kb_backbone *b, const char *id, const char *team)
{
    memset(b, 0, sizeof *b);
    b->id = fx_str(id);
    b->family = fx_str("kb-net");
    b->arch = fx_str("C(3,32)+P(2,2)+FC(64)");
    b->input_signature = fx_str("image:1x28x28");
    b->source_task = fx_str("t-fashion");
    b->uri = fx_str("file:///tmp/w.bin");
    b->team = fx_str(team);
    b->created_at = 0;
    b->extra = NULL;
}

static inline void fx_space(kb_space *s, const char *name)
{
    memset(s, 0, sizeof *s);
    s->name = fx_str(name);
    s->n_params = 3;
    s->params = kb_calloc(3, sizeof *s->params);
    kb_space_param *p = &s->params[0];
    p->name = fx_str("lr");
    p->type = KB_SPACE_PARAM_FLOAT;
    p->low = 1e-5;
    p->high = 1.0;
    p->log = 1;
    p->default_value.type = KB_VALUE_TYPE_FLOAT;
    p->default_value.f = 1e-3;
    p = &s->params[1];
    p->name = fx_str("optimizer");
    p->type = KB_SPACE_PARAM_CATEGORICAL;
    p->low = NAN;
    p->high = NAN;
    p->n_choices = 2;
    p->choices = kb_calloc(2, sizeof *p->choices);
    p->choices[0] = fx_str("sgd");
    p->choices[1] = fx_str("adam");
    p->default_value.type = KB_VALUE_TYPE_STR;
    p->default_value.s = fx_str("sgd");
    p = &s->params[2];
    p->name = fx_str("momentum");
    p->type = KB_SPACE_PARAM_FLOAT;
    p->low = 0.0;
    p->high = 0.99;
    p->cond_parent = fx_str("optimizer");
    p->n_cond_in = 1;
    p->cond_in = kb_calloc(1, sizeof *p->cond_in);
    p->cond_in[0] = fx_str("sgd");
}

static inline void fx_study(kb_study *s, const char *id, const char *task_id, const char *team)
{
    memset(s, 0, sizeof *s);
    s->id = fx_str(id);
    s->task_id = fx_str(task_id);
    s->space = fx_str("svm-rbf");
    s->objective = fx_str("val_accuracy");
    s->direction = KB_DIRECTION_MAXIMIZE;
    s->method = fx_str("gp");
    s->warm_start = fx_str("nearest");
    s->seed = UINT64_MAX - 7; /* the largest varints survive */
    s->n_neighbours = 3;
    s->neighbours = kb_calloc(3, sizeof *s->neighbours);
    s->neighbour_weights = kb_calloc(3, sizeof *s->neighbour_weights);
    const char *nb[3] = {"t-near", "t-mid", "t-far"};
    for (int i = 0; i < 3; i++) {
        s->neighbours[i] = fx_str(nb[i]);
        s->neighbour_weights[i] = 1.0 / (1.0 + i);
    }
    s->neighbour_weights[2] = fx_odd_nan();
    s->command = fx_str("kb train svm --data {data} --C {C}");
    s->team = fx_str(team);
    s->created_at = -1234567;
    s->extra = fx_str("{\"budget\":40}");
}

static inline int fx_study_eq(const kb_study *a, const kb_study *b)
{
    if (a->n_neighbours != b->n_neighbours) {
        return 0;
    }
    for (size_t i = 0; i < a->n_neighbours; i++) {
        if (!fx_str_eq(a->neighbours[i], b->neighbours[i]) ||
            !fx_bits_eq(a->neighbour_weights[i], b->neighbour_weights[i])) {
            return 0;
        }
    }
    return fx_str_eq(a->id, b->id) && fx_str_eq(a->task_id, b->task_id) &&
           fx_str_eq(a->space, b->space) && fx_str_eq(a->objective, b->objective) &&
           a->direction == b->direction && fx_str_eq(a->method, b->method) &&
           fx_str_eq(a->warm_start, b->warm_start) && a->seed == b->seed &&
           fx_str_eq(a->command, b->command) && fx_str_eq(a->team, b->team) &&
           a->created_at == b->created_at && fx_str_eq(a->extra, b->extra);
}

static inline int fx_value_eq(const kb_value *a, const kb_value *b)
{
    if (a->type != b->type) {
        return 0;
    }
    switch (a->type) {
    case KB_VALUE_TYPE_FLOAT: return fx_bits_eq(a->f, b->f);
    case KB_VALUE_TYPE_INT: return a->i == b->i;
    case KB_VALUE_TYPE_STR: return fx_str_eq(a->s, b->s);
    case KB_VALUE_TYPE_BOOL: return (a->b != 0) == (b->b != 0);
    default: return 1;
    }
}

static inline int fx_params_eq(const kb_param *a, size_t na, const kb_param *b, size_t nb)
{
    if (na != nb) {
        return 0;
    }
    for (size_t i = 0; i < na; i++) {
        if (!fx_str_eq(a[i].name, b[i].name) || !fx_value_eq(&a[i].value, &b[i].value)) {
            return 0;
        }
    }
    return 1;
}

static inline int fx_metrics_eq(const kb_metric *a, size_t na, const kb_metric *b, size_t nb)
{
    if (na != nb) {
        return 0;
    }
    for (size_t i = 0; i < na; i++) {
        if (!fx_str_eq(a[i].name, b[i].name) || !fx_bits_eq(a[i].value, b[i].value)) {
            return 0;
        }
    }
    return 1;
}

static inline int fx_strs_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb) {
        return 0;
    }
    for (size_t i = 0; i < na; i++) {
        if (!fx_str_eq(a[i], b[i])) {
            return 0;
        }
    }
    return 1;
}

static inline int fx_task_eq(const kb_task *a, const kb_task *b)
{
    return fx_str_eq(a->id, b->id) && fx_str_eq(a->name, b->name) &&
           fx_str_eq(a->fingerprint, b->fingerprint) && a->type == b->type &&
           fx_str_eq(a->target, b->target) &&
           fx_metrics_eq(a->features, a->n_features, b->features, b->n_features) &&
           fx_str_eq(a->feature_set, b->feature_set) &&
           fx_strs_eq(a->tags, a->n_tags, b->tags, b->n_tags) && fx_str_eq(a->team, b->team) &&
           a->created_at == b->created_at && fx_str_eq(a->extra, b->extra);
}

static inline int fx_run_eq(const kb_run *a, const kb_run *b)
{
    if (!(fx_str_eq(a->id, b->id) && fx_str_eq(a->task_id, b->task_id) &&
          fx_str_eq(a->space, b->space) &&
          fx_params_eq(a->config, a->n_config, b->config, b->n_config) &&
          fx_str_eq(a->backbone_id, b->backbone_id) &&
          fx_params_eq(a->fidelity, a->n_fidelity, b->fidelity, b->n_fidelity) &&
          a->status == b->status && fx_str_eq(a->objective, b->objective) &&
          a->direction == b->direction &&
          fx_metrics_eq(a->metrics, a->n_metrics, b->metrics, b->n_metrics) &&
          a->n_curve == b->n_curve && fx_bits_eq(a->cost_s, b->cost_s) &&
          fx_str_eq(a->team, b->team) && a->started_at == b->started_at &&
          a->finished_at == b->finished_at && fx_str_eq(a->study_id, b->study_id) &&
          fx_str_eq(a->extra, b->extra))) {
        return 0;
    }
    for (size_t i = 0; i < a->n_curve; i++) {
        const kb_series *x = &a->curve[i], *y = &b->curve[i];
        if (!fx_str_eq(x->metric, y->metric) || x->n != y->n) {
            return 0;
        }
        for (size_t j = 0; j < x->n; j++) {
            if (x->steps[j] != y->steps[j] || !fx_bits_eq(x->values[j], y->values[j])) {
                return 0;
            }
        }
    }
    return 1;
}

static inline int fx_backbone_eq(const kb_backbone *a, const kb_backbone *b)
{
    return fx_str_eq(a->id, b->id) && fx_str_eq(a->family, b->family) &&
           fx_str_eq(a->arch, b->arch) && fx_str_eq(a->input_signature, b->input_signature) &&
           fx_str_eq(a->source_task, b->source_task) && fx_str_eq(a->uri, b->uri) &&
           fx_str_eq(a->team, b->team) && a->created_at == b->created_at &&
           fx_str_eq(a->extra, b->extra);
}

static inline int fx_space_eq(const kb_space *a, const kb_space *b)
{
    if (!fx_str_eq(a->name, b->name) || a->n_params != b->n_params) {
        return 0;
    }
    for (size_t i = 0; i < a->n_params; i++) {
        const kb_space_param *x = &a->params[i], *y = &b->params[i];
        if (!fx_str_eq(x->name, y->name) || x->type != y->type || !fx_bits_eq(x->low, y->low) ||
            !fx_bits_eq(x->high, y->high) || (x->log != 0) != (y->log != 0) ||
            !fx_strs_eq(x->choices, x->n_choices, y->choices, y->n_choices) ||
            !fx_value_eq(&x->default_value, &y->default_value) ||
            !fx_str_eq(x->cond_parent, y->cond_parent) ||
            !fx_strs_eq(x->cond_in, x->n_cond_in, y->cond_in, y->n_cond_in)) {
            return 0;
        }
    }
    return 1;
}

#endif
