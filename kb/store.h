/*
 * kb_store: the knowledge base, one LMDB environment with named databases.
 *
 * Records are stored in kb's compact binary encoding (kb/codec.h), never as JSON. Runs are
 * keyed by an internal sequence number assigned at insertion (big-endian, so inserts append at
 * the end of the B-tree: ordered keys are ~30x faster to put than random ones); a separate id
 * map (id -> kind and seq, in two levels so that random ids are inserted in bulk; see
 * docs/ARCHITECTURE.md) answers "is this id known, and as what" for deduplication. Secondary
 * indexes (task -> runs, space -> runs, backbone -> runs, study -> runs) are DUPSORT databases
 * keyed by the owner's id whose fixed-size duplicates are ranges of run sequence numbers (a
 * batch of one task's runs is one range); team -> tasks holds task ids. A small "cache" database keeps data derived from the store
 * (e.g. the recommender's task-feature matrix) with the generation it was derived from.
 *
 * Concurrency is LMDB's: any number of readers (threads or processes) with one writer at a
 * time; a second writer blocks until the first commits. Commits are synced (durable) unless
 * the store was opened with KB_STORE_OPEN_NOSYNC. When the map is full the store grows it and
 * retries the transaction, so callers never see MDB_MAP_FULL.
 *
 * Thread-safety: one kb_store may be used from one thread at a time. Open a store directory at
 * most once per process (LMDB's rule: its locks are per process); other processes and
 * kb_store handles in them may read and write concurrently. A foreach callback may read the
 * store (get, find_kind, a nested foreach) but not write to it: writes return KB_EINVAL while
 * an iteration is in progress (growing the map would move the pages its records point into).
 * Opening a store of the current schema never waits for a writer.
 *
 * Schema history: 1 one-level id map; 2 two-level id map; 3 studies, the study -> runs index,
 * the task generation counter and the cache database (migrating builds the study index from
 * the stored runs' study_id fields); 4 run indexes hold ranges of sequence numbers instead of
 * one entry per run (migrating rewrites them).
 */
#ifndef KB_KB_STORE_H
#define KB_KB_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/error.h"
#include "engine/core/log.h"
#include "kb/record.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The schema version this build writes; opening a newer store fails with KB_EVERSION. */
#define KB_STORE_SCHEMA_VERSION 4

typedef struct kb_store kb_store;

enum kb_store_open_flags {
    KB_STORE_OPEN_RDONLY = 1u << 0,  /* open an existing store read-only */
    KB_STORE_OPEN_CREATE = 1u << 1,  /* create the directory and the store if missing */
    KB_STORE_OPEN_NOSYNC = 1u << 2   /* no fsync on commit (benchmarks, tests); not durable */
};

typedef struct kb_store_opts {
    int version;
    unsigned flags;        /* kb_store_open_flags */
    size_t map_bytes;      /* initial map size; 0 = default (64 MiB); grows on demand */
    kb_log log;            /* warnings (e.g. "map grown to 256 MiB"); zero = silent */
} kb_store_opts;

#define KB_STORE_OPTS_VERSION 1
#define KB_STORE_OPTS_INIT {KB_STORE_OPTS_VERSION, 0, 0, {NULL, NULL}}

/**
 * Open (or with KB_STORE_OPEN_CREATE create) the store in directory `path`.
 * Migrates an older schema in place (one write transaction) before returning.
 * @return KB_OK; KB_ENOTFOUND if missing and not creating; KB_EVERSION for a newer schema;
 *         KB_ESTORE (cause = MDB code) for LMDB failures.
 * Caller owns `*out`; free with kb_store_close().
 */
int kb_store_open(kb_store **out, const char *path, const kb_store_opts *opts, kb_error *err);
void kb_store_close(kb_store *store);
/** The directory the store lives in (borrowed). */
const char *kb_store_path(const kb_store *store);

/** What happened to one record of a batch. */
typedef enum kb_put_result {
    KB_PUT_ADDED = 0,     /* written */
    KB_PUT_DUPLICATE = 1, /* a record with this id and the same content exists */
    KB_PUT_CONFLICT = 2,  /* a record with this id and different content exists: not written */
    KB_PUT_REJECTED = 3   /* refers to a missing record (e.g. a run's task): not written */
} kb_put_result;

/**
 * Write `n` records in one write transaction, in order (a run may refer to a task earlier in
 * the same batch). Each record's outcome goes to `results[i]` and, for CONFLICT and REJECTED,
 * a one-line reason to `reasons[i]` if `reasons` is not NULL (each KB_ERROR_MSG_SIZE bytes).
 * Nothing of the batch is visible to readers until the commit; on a crash either all or none
 * of the batch is present. Map growth retries the whole batch transparently.
 *
 * Outcomes: DUPLICATE when a record of the same kind and id exists with byte-identical
 * encoding; CONFLICT when the id exists with other content ("run 'x': id exists with different
 * content") or is used by a record of another kind ("task 'x': id is already used by a run");
 * REJECTED for a record without a usable id (NULL, empty or longer than LMDB's 511-byte key
 * limit), a field the encoding cannot represent, an empty or over-long key field (team, space,
 * task_id, backbone_id, study_id), a run whose task is neither stored nor earlier in the batch
 * ("run 'x': unknown task 'y'") and a run whose backbone_id is not a stored backbone; a study
 * without a space, with a NULL neighbour id, or whose task is neither stored nor earlier in the
 * batch ("study 'x': unknown task 'y'"). A run naming an unknown space is ADDED: spaces are
 * optional descriptions, not required parents; likewise a run's study_id need not name a
 * stored study (Optuna and MLflow imports set it), and such runs are in the study index too.
 * Ids are global: a study id may not equal the id of a task, run or backbone (CONFLICT).
 * @return KB_OK when the batch committed (whatever the per-record results); KB_ESTORE or
 *         KB_ENOMEM when nothing was committed.
 */
int kb_store_put_batch(kb_store *store, const kb_record *recs, size_t n,
                       kb_put_result *results, char (*reasons)[KB_ERROR_MSG_SIZE],
                       kb_error *err);

enum kb_store_put_flags {
    /*
     * If any record would be CONFLICT or REJECTED, abort the transaction: nothing of the batch
     * is written (`kb ingest --strict`, without a race against another writer)
     */
    KB_STORE_PUT_ALL_OR_NOTHING = 1u << 0
};

/**
 * kb_store_put_batch with kb_store_put_flags. With KB_STORE_PUT_ALL_OR_NOTHING, a batch with
 * a refused record returns KB_ECANCELED ("batch not written: N record(s) refused") and writes
 * nothing; `results` and `reasons` then say what each record's outcome would have been, so
 * the refused ones can be reported. The check and the write are one transaction.
 * @return as kb_store_put_batch, plus KB_ECANCELED.
 */
int kb_store_put_batch_flags(kb_store *store, const kb_record *recs, size_t n, unsigned flags,
                             kb_put_result *results, char (*reasons)[KB_ERROR_MSG_SIZE],
                             kb_error *err);

/**
 * Replace an existing run (same id), updating the indexes; used when a running trial finishes.
 * The run keeps its place in insertion order. Writing identical content is a no-op.
 * @return KB_OK; KB_ENOTFOUND if no run has that id, or the new task_id/backbone_id is not
 *         stored; KB_EINVAL for an unusable key field or an unencodable run.
 */
int kb_store_update_run(kb_store *store, const kb_run *run, kb_error *err);

/** Look up one record by id; the caller owns `*out` and releases it with kb_*_release. */
int kb_store_get_task(kb_task *out, kb_store *store, const char *id, kb_error *err);
int kb_store_get_run(kb_run *out, kb_store *store, const char *id, kb_error *err);
int kb_store_get_backbone(kb_backbone *out, kb_store *store, const char *id, kb_error *err);
int kb_store_get_space(kb_space *out, kb_store *store, const char *name, kb_error *err);
int kb_store_get_study(kb_study *out, kb_store *store, const char *id, kb_error *err);

/**
 * Replace an existing study (same id), e.g. to record its state or a controller checkpoint
 * in `extra`. Writing identical content is a no-op.
 * @return KB_OK; KB_ENOTFOUND if no study has that id or its (new) task_id is not a stored
 *         task; KB_EINVAL for a missing space, an unusable key field or an unencodable study.
 */
int kb_store_update_study(kb_store *store, const kb_study *study, kb_error *err);
/** Which kind of record has this id; KB_ENOTFOUND if none. */
int kb_store_find_kind(kb_record_kind *out, kb_store *store, const char *id, kb_error *err);

/**
 * Filter for iteration; NULL fields match everything. Runs honour every field (one index scan,
 * study_id first, then task_id, backbone_id, space; the other fields checked on each record).
 * Tasks honour task_id (that one task), team (index scan) and limit; backbones backbone_id,
 * team and limit; spaces space and limit; studies task_id, team and limit. Fields that do not
 * apply to a kind are ignored.
 */
typedef struct kb_store_filter {
    const char *task_id;     /* runs of this task (index scan) */
    const char *space;       /* runs in this space (index scan) */
    const char *backbone_id; /* runs fine-tuned from this backbone (index scan) */
    const char *team;        /* tasks/runs of this team */
    int status;              /* a kb_run_status, or -1 for any */
    size_t limit;            /* stop after this many matches; 0 = no limit */
    const char *study_id;    /* runs (trials) of this study (index scan); studies of
                                task_id are filtered on task_id */
} kb_store_filter;

#define KB_STORE_FILTER_INIT {NULL, NULL, NULL, NULL, -1, 0, NULL}

/**
 * Visit records in a stable order: tasks, backbones and spaces by id; runs by insertion
 * order (index scans visit a task's runs in insertion order too). The record passed to the
 * callback is borrowed and valid only during the call. A non-zero callback return stops the
 * iteration and is returned. All visits of one call see one consistent snapshot.
 */
typedef int (*kb_store_task_cb)(const kb_task *t, void *payload);
typedef int (*kb_store_run_cb)(const kb_run *r, void *payload);
typedef int (*kb_store_backbone_cb)(const kb_backbone *b, void *payload);
typedef int (*kb_store_space_cb)(const kb_space *s, void *payload);
typedef int (*kb_store_study_cb)(const kb_study *s, void *payload);

int kb_store_foreach_task(kb_store *store, const kb_store_filter *f, kb_store_task_cb cb,
                          void *payload, kb_error *err);
int kb_store_foreach_run(kb_store *store, const kb_store_filter *f, kb_store_run_cb cb,
                         void *payload, kb_error *err);
int kb_store_foreach_backbone(kb_store *store, const kb_store_filter *f,
                              kb_store_backbone_cb cb, void *payload, kb_error *err);
int kb_store_foreach_space(kb_store *store, const kb_store_filter *f, kb_store_space_cb cb,
                           void *payload, kb_error *err);
/** Studies by id; honours task_id, team and limit. */
int kb_store_foreach_study(kb_store *store, const kb_store_filter *f, kb_store_study_cb cb,
                           void *payload, kb_error *err);

typedef struct kb_store_stats {
    size_t n_tasks, n_runs, n_backbones, n_spaces;
    size_t n_runs_by_status[5]; /* indexed by kb_run_status */
    size_t n_teams;     /* distinct teams that own tasks */
    size_t map_bytes;   /* current map size */
    size_t used_bytes;  /* pages in use x page size */
    int schema_version;
    size_t n_studies;
} kb_store_stats;

int kb_store_stats_get(kb_store_stats *out, kb_store *store, kb_error *err);

/**
 * The generation of the task set: a counter kept in the store that changes (grows by one) in
 * every committed write transaction that adds, replaces or removes a task, and in no other.
 * It is persistent and never decreases; an empty or migrated store starts at 0. Data derived
 * from the tasks (see kb_store_cache_put) is current iff it was derived at this generation.
 * Read the generation BEFORE reading the tasks you derive from: if a task is added in
 * between, the derived data is labelled with the older generation and found stale later.
 * @return KB_OK; KB_ESTORE.
 */
int kb_store_tasks_generation(uint64_t *out, kb_store *store, kb_error *err);

/**
 * Read the cached value `name` (a non-empty key of at most 511 bytes) into a new buffer.
 * @param[out] data       caller owns `*data`; free with kb_free(). NULL when `len` is 0.
 * @param[out] len        its length in bytes
 * @param[out] generation the generation it was stored with (may be NULL)
 * @return KB_OK; KB_ENOTFOUND when no value has that name (outputs NULL/0); KB_ENOMEM;
 *         KB_ECORRUPT for a malformed entry; KB_ESTORE.
 */
int kb_store_cache_get(kb_store *store, const char *name, void **data, size_t *len,
                       uint64_t *generation, kb_error *err);

/**
 * Store `len` bytes under `name` with a caller-chosen `generation` (normally the
 * kb_store_tasks_generation the data was derived at), replacing any previous value, in one
 * durable write transaction. Values may be large (tens of MB); the map grows as needed.
 * Neither the value nor its generation is checked against anything: the cache is the
 * caller's. The cache is not exported and not part of the knowledge base's content.
 * @return KB_OK; KB_EINVAL for a bad name or a store opened read-only; KB_ENOMEM; KB_ESTORE.
 */
int kb_store_cache_put(kb_store *store, const char *name, const void *data, size_t len,
                       uint64_t generation, kb_error *err);

/**
 * A zero-copy view of a cached value: a read transaction held open so that the bytes are read
 * in place from the memory map (no copy of a 50 MB matrix per query). The view also reports
 * the task generation of the same snapshot, so one open answers "is it current?".
 * While any view is open, writes through its kb_store return KB_EINVAL (growing the map would
 * move the pages the view points into); other processes may write. Close it soon; close it
 * before closing the store.
 */
typedef struct kb_store_cache_view kb_store_cache_view;

/**
 * Open a view of the cached value `name`.
 * @return KB_OK; KB_ENOTFOUND when no value has that name (`*out` NULL: derive the data,
 *         having read kb_store_tasks_generation first, and kb_store_cache_put it);
 *         KB_ECORRUPT; KB_ENOMEM; KB_ESTORE. Caller owns `*out`; free with
 *         kb_store_cache_view_close().
 */
int kb_store_cache_view_open(kb_store_cache_view **out, kb_store *store, const char *name,
                             kb_error *err);
/** End the view's read transaction; NULL is a no-op. */
void kb_store_cache_view_close(kb_store_cache_view *view);
/**
 * The value's bytes, borrowed until the view is closed; 8-byte aligned (copied into the view
 * if the map's bytes are not, which happens only for values of a few KB).
 */
const void *kb_store_cache_view_data(const kb_store_cache_view *view);
size_t kb_store_cache_view_len(const kb_store_cache_view *view);
/** The generation the value was stored with. */
uint64_t kb_store_cache_view_generation(const kb_store_cache_view *view);
/** kb_store_tasks_generation in the view's snapshot. */
uint64_t kb_store_cache_view_tasks_generation(const kb_store_cache_view *view);

/** One inconsistency found by kb_store_check. */
typedef void (*kb_store_problem_fn)(const char *msg, void *payload);

/**
 * Walk every record and index and check they agree: every record decodes, its key matches its
 * id, every id map entry points at a record with that id, every index entry points at a record
 * that has the indexed field, every record is in every index it belongs in, and the counters
 * match. Each problem is reported through `problem` (may be NULL).
 * @return KB_OK if consistent; KB_ECORRUPT with the count in the message otherwise.
 */
int kb_store_check(kb_store *store, kb_store_problem_fn problem, void *payload, kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
