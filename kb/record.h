/*
 * The knowledge base's record kinds as plain C structs: task, run, backbone, space (the space
 * struct lives in engine/core/space.h because the engine samples from it too).
 *
 * Every record has a global string id. Every pointer inside a record is owned by the record
 * and freed by its _release function; a zeroed record is empty and safe to release.
 * Timestamps are microseconds since the Unix epoch, UTC; KB_TIME_UNKNOWN when not known.
 * Real numbers that are unknown are NaN in memory (cost, a missing meta-feature) and JSON null.
 * docs/FORMAT.md documents each field's JSON form.
 */
#ifndef KB_KB_RECORD_H
#define KB_KB_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/space.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KB_TIME_UNKNOWN INT64_MIN

typedef enum kb_task_type {
    KB_TASK_TYPE_UNKNOWN = 0,
    KB_TASK_TYPE_CLASSIFICATION = 1,
    KB_TASK_TYPE_REGRESSION = 2
} kb_task_type;

typedef enum kb_run_status {
    KB_RUN_STATUS_OK = 0,
    KB_RUN_STATUS_FAILED = 1,
    KB_RUN_STATUS_DIVERGED = 2,
    KB_RUN_STATUS_PRUNED = 3,
    KB_RUN_STATUS_RUNNING = 4
} kb_run_status;

typedef enum kb_direction {
    KB_DIRECTION_MINIMIZE = 0,
    KB_DIRECTION_MAXIMIZE = 1
} kb_direction;

/** A named real number: a final metric or a meta-feature (NaN = missing). */
typedef struct kb_metric {
    char *name;
    double value;
} kb_metric;

/**
 * One metric's learning curve: n points (step, value), steps non-decreasing. Values may be
 * non-finite (a diverged run). A run's curve is an array of series sorted by metric name.
 */
typedef struct kb_series {
    char *metric;
    size_t n;
    int64_t *steps;
    double *values;
} kb_series;

typedef struct kb_task {
    char *id;           /* global id: given, or "t-" + fingerprint prefix */
    char *name;
    char *fingerprint;  /* hex SHA-256 of the dataset's canonical content; NULL if unknown */
    kb_task_type type;
    char *target;       /* target column; NULL if unknown */
    kb_metric *features; /* meta-features, sorted by name; value NaN = missing */
    size_t n_features;
    char *feature_set;  /* version of the extractor that produced them, e.g. "kb-mf-1" */
    char **tags;
    size_t n_tags;
    char *team;
    int64_t created_at;
    char *extra;        /* unknown input fields as a canonical JSON object text, or NULL */
} kb_task;

typedef struct kb_run {
    char *id;           /* global id: given by the source, or "r-" + content hash */
    char *task_id;      /* required */
    char *space;        /* search space name, or NULL */
    kb_param *config;   /* sorted by name */
    size_t n_config;
    char *backbone_id;  /* NULL: trained from scratch */
    kb_param *fidelity; /* e.g. epochs=20, data_fraction=0.1; sorted by name */
    size_t n_fidelity;
    kb_run_status status;
    char *objective;    /* the metric optimised, e.g. "val_accuracy"; NULL if unknown */
    kb_direction direction;
    kb_metric *metrics; /* final metrics, sorted by name */
    size_t n_metrics;
    kb_series *curve;   /* sorted by metric name */
    size_t n_curve;
    double cost_s;      /* NaN if unknown */
    char *team;
    int64_t started_at;
    int64_t finished_at;
    char *study_id;
    char *extra;
} kb_run;

typedef struct kb_backbone {
    char *id;
    char *family;          /* e.g. "kb-net", "resnet" */
    char *arch;            /* architecture string, e.g. "C(3,32)+P(2,2)+FC(64)" */
    char *input_signature; /* e.g. "image:1x28x28", "tabular:<schema-hash>" */
    char *source_task;     /* task id it was trained on, or NULL */
    char *uri;             /* where the weights are */
    char *team;
    int64_t created_at;
    char *extra;
} kb_backbone;

/*
 * A search study: one `kb search` (or `kb ask`/`kb tell` session) on one task and space. Its
 * trials are runs whose study_id is the study's id (run id "<study id>:<trial number>"); a
 * proposed trial not yet told is a run with status running. The study records how it was
 * warmed, so every result can be traced to the neighbours that shaped it.
 */
typedef struct kb_study {
    char *id;
    char *task_id;          /* required: a stored task */
    char *space;            /* required: the search space's name */
    char *objective;        /* the metric optimised, e.g. "val_accuracy" */
    kb_direction direction;
    char *method;           /* "gp", "tpe", "random", "hyperband", "bohb", "asha", ... */
    char *warm_start;       /* "auto", "none", "nearest", ... */
    uint64_t seed;
    char **neighbours;      /* ids of the tasks that warmed it, nearest first */
    double *neighbour_weights; /* their weights (same length) */
    size_t n_neighbours;
    char *command;          /* the trial command or built-in workload; NULL for ask/tell */
    char *team;
    int64_t created_at;
    char *extra;            /* the other options as a canonical JSON object text, or NULL */
} kb_study;

typedef enum kb_record_kind {
    KB_RECORD_TASK = 1,
    KB_RECORD_RUN = 2,
    KB_RECORD_BACKBONE = 3,
    KB_RECORD_SPACE = 4,
    KB_RECORD_STUDY = 5
} kb_record_kind;

/** One record of any kind, as ingest produces them. Owns the member named by `kind`. */
typedef struct kb_record {
    kb_record_kind kind;
    kb_task task;
    kb_run run;
    kb_backbone backbone;
    kb_space space;
    kb_study study;
} kb_record;

void kb_task_release(kb_task *t);
void kb_run_release(kb_run *r);
void kb_backbone_release(kb_backbone *b);
void kb_study_release(kb_study *s);
void kb_record_release(kb_record *rec);
void kb_series_release(kb_series *s);

const char *kb_task_type_name(kb_task_type t);       /* "classification", ... */
const char *kb_run_status_name(kb_run_status s);     /* "ok", "failed", ... */
const char *kb_direction_name(kb_direction d);       /* "minimize" / "maximize" */
/** Parse the names above; KB_EFORMAT if unknown. */
int kb_task_type_parse(kb_task_type *out, const char *s);
int kb_run_status_parse(kb_run_status *out, const char *s);
int kb_direction_parse(kb_direction *out, const char *s);

/** The id of any record (borrowed). */
const char *kb_record_id(const kb_record *rec);

#ifdef __cplusplus
}
#endif

#endif
