#include "kb/record.h"

#include <string.h>

#include "engine/core/alloc.h"

static void metrics_free(kb_metric *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        kb_free(m[i].name);
    }
    kb_free(m);
}

void kb_series_release(kb_series *s)
{
    kb_free(s->metric);
    kb_free(s->steps);
    kb_free(s->values);
    memset(s, 0, sizeof *s);
}

void kb_task_release(kb_task *t)
{
    kb_free(t->id);
    kb_free(t->name);
    kb_free(t->fingerprint);
    kb_free(t->target);
    metrics_free(t->features, t->n_features);
    kb_free(t->feature_set);
    for (size_t i = 0; i < t->n_tags; i++) {
        kb_free(t->tags[i]);
    }
    kb_free(t->tags);
    kb_free(t->team);
    kb_free(t->extra);
    memset(t, 0, sizeof *t);
}

void kb_run_release(kb_run *r)
{
    kb_free(r->id);
    kb_free(r->task_id);
    kb_free(r->space);
    kb_params_free(r->config, r->n_config);
    kb_free(r->backbone_id);
    kb_params_free(r->fidelity, r->n_fidelity);
    kb_free(r->objective);
    metrics_free(r->metrics, r->n_metrics);
    for (size_t i = 0; i < r->n_curve; i++) {
        kb_series_release(&r->curve[i]);
    }
    kb_free(r->curve);
    kb_free(r->team);
    kb_free(r->study_id);
    kb_free(r->extra);
    memset(r, 0, sizeof *r);
}

void kb_backbone_release(kb_backbone *b)
{
    kb_free(b->id);
    kb_free(b->family);
    kb_free(b->arch);
    kb_free(b->input_signature);
    kb_free(b->source_task);
    kb_free(b->uri);
    kb_free(b->team);
    kb_free(b->extra);
    memset(b, 0, sizeof *b);
}

void kb_study_release(kb_study *s)
{
    kb_free(s->id);
    kb_free(s->task_id);
    kb_free(s->space);
    kb_free(s->objective);
    kb_free(s->method);
    kb_free(s->warm_start);
    for (size_t i = 0; i < s->n_neighbours; i++) {
        kb_free(s->neighbours[i]);
    }
    kb_free(s->neighbours);
    kb_free(s->neighbour_weights);
    kb_free(s->command);
    kb_free(s->team);
    kb_free(s->extra);
    memset(s, 0, sizeof *s);
}

void kb_record_release(kb_record *rec)
{
    kb_task_release(&rec->task);
    kb_run_release(&rec->run);
    kb_backbone_release(&rec->backbone);
    kb_space_release(&rec->space);
    kb_study_release(&rec->study);
}

const char *kb_record_id(const kb_record *rec)
{
    switch (rec->kind) {
    case KB_RECORD_TASK: return rec->task.id;
    case KB_RECORD_RUN: return rec->run.id;
    case KB_RECORD_BACKBONE: return rec->backbone.id;
    case KB_RECORD_SPACE: return rec->space.name;
    case KB_RECORD_STUDY: return rec->study.id;
    }
    return NULL;
}

static const char *const task_types[] = {"unknown", "classification", "regression"};
static const char *const statuses[] = {"ok", "failed", "diverged", "pruned", "running"};
static const char *const directions[] = {"minimize", "maximize"};

const char *kb_task_type_name(kb_task_type t)
{
    return (unsigned)t < 3 ? task_types[t] : "unknown";
}

const char *kb_run_status_name(kb_run_status s)
{
    return (unsigned)s < 5 ? statuses[s] : "unknown";
}

const char *kb_direction_name(kb_direction d)
{
    return (unsigned)d < 2 ? directions[d] : "unknown";
}

static int parse_name(int *out, const char *s, const char *const *names, int n)
{
    for (int i = 0; s != NULL && i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return KB_OK;
        }
    }
    return KB_EFORMAT;
}

int kb_task_type_parse(kb_task_type *out, const char *s)
{
    int v;
    int rc = parse_name(&v, s, task_types, 3);
    if (rc == KB_OK) {
        *out = (kb_task_type)v;
    }
    return rc;
}

int kb_run_status_parse(kb_run_status *out, const char *s)
{
    int v;
    int rc = parse_name(&v, s, statuses, 5);
    if (rc == KB_OK) {
        *out = (kb_run_status)v;
    }
    return rc;
}

int kb_direction_parse(kb_direction *out, const char *s)
{
    int v;
    int rc = parse_name(&v, s, directions, 2);
    if (rc == KB_OK) {
        *out = (kb_direction)v;
    }
    return rc;
}
