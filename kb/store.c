#include "kb/store.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "engine/core/alloc.h"
#include "engine/core/buf.h"
#include "kb/codec.h"
#include "kb/codec_priv.h"
#include "kb/store_priv.h"

#define MIB ((size_t)1 << 20)
#define DEFAULT_MAP_BYTES (64 * MIB)
#define SEQ_BYTES 8
#define N_STATUS 5

/* Named databases; docs/ARCHITECTURE.md ("Store") explains each key layout. */
static const struct {
    const char *name;
    unsigned flags;
} db_defs[KB_STORE__N_DBS] = {
    [KB_STORE__DB_META] = {"meta", 0},
    [KB_STORE__DB_IDS] = {"ids", 0},
    [KB_STORE__DB_TASKS] = {"tasks", 0},
    [KB_STORE__DB_RUNS] = {"runs", 0},
    [KB_STORE__DB_BACKBONES] = {"backbones", 0},
    [KB_STORE__DB_SPACES] = {"spaces", 0},
    [KB_STORE__DB_IDX_TASK_RUNS] = {"idx_task_runs", MDB_DUPSORT | MDB_DUPFIXED},
    [KB_STORE__DB_IDX_SPACE_RUNS] = {"idx_space_runs", MDB_DUPSORT | MDB_DUPFIXED},
    [KB_STORE__DB_IDX_BACKBONE_RUNS] = {"idx_backbone_runs", MDB_DUPSORT | MDB_DUPFIXED},
    [KB_STORE__DB_IDX_TEAM_TASKS] = {"idx_team_tasks", MDB_DUPSORT},
    [KB_STORE__DB_IDS_RECENT] = {"ids_recent", 0},
    [KB_STORE__DB_STUDIES] = {"studies", 0},
    [KB_STORE__DB_IDX_STUDY_RUNS] = {"idx_study_runs", MDB_DUPSORT | MDB_DUPFIXED},
    [KB_STORE__DB_CACHE] = {"cache", 0},
};

static const char META_SCHEMA[] = "schema_version";
static const char META_NEXT_SEQ[] = "next_seq";
static const char META_STATUS[] = "runs_by_status";
static const char META_TASKS_GEN[] = "tasks_generation"; /* absent = 0 */

/*
 * A cache value: 8-byte BE generation, 8 reserved zero bytes (so the data of a value on its
 * own overflow pages starts 16-byte aligned), then the caller's bytes
 */
#define CACHE_HEADER_BYTES 16

struct kb_store {
    MDB_env *env;
    MDB_dbi dbi[KB_STORE__N_DBS];
    char *path;
    unsigned flags;
    kb_log log;
    int max_key;  /* LMDB's key size limit (also the limit for DUPSORT values) */
    kb_buf enc;   /* encode buffer reused by every put */
    int iterating; /* foreach/check calls in progress (their snapshots pin the map) */
    size_t ids_merge_min; /* ids_recent is merged into ids beyond max(this, |ids| / 8) */
    /* the batch id table (see "batch id table" below), reused across batches */
    uint32_t *tbl_index;
    size_t tbl_index_cap;
    struct batch_id *tbl_ent;
    struct batch_id **tbl_sorted;
    size_t tbl_ent_cap, tbl_n, tbl_mask;
    /* the batch's new run index entries, written at its end (see idx_flush) */
    struct idx_pend *idx;
    size_t idx_n, idx_cap;
    unsigned char *idx_vals; /* one key's ranges, contiguous for MDB_MULTIPLE */
    size_t idx_vals_cap;
    MDB_cursor *ids_cur[2]; /* during a put batch: on ids_recent and ids (see ids_seek) */
    int batch_fresh; /* during a put batch: no stored id lies within the batch's (ids_fresh) */
};

/* --- small helpers ------------------------------------------------------------------------ */

static MDB_val val_str(const char *s)
{
    MDB_val v = {strlen(s), (void *)s};
    return v;
}

static MDB_val val_view(kb_codec_str s)
{
    MDB_val v = {s.len, (void *)s.ptr};
    return v;
}

static int view_eq(kb_codec_str v, const char *s)
{
    if (v.ptr == NULL || s == NULL) {
        return v.ptr == NULL && s == NULL;
    }
    return strlen(s) == v.len && memcmp(v.ptr, s, v.len) == 0;
}

static int val_eq(const MDB_val *a, const MDB_val *b)
{
    return a->mv_size == b->mv_size && memcmp(a->mv_data, b->mv_data, a->mv_size) == 0;
}

static const char *kind_name(unsigned kind)
{
    switch (kind) {
    case KB_RECORD_TASK: return "task";
    case KB_RECORD_RUN: return "run";
    case KB_RECORD_BACKBONE: return "backbone";
    case KB_RECORD_SPACE: return "space";
    case KB_RECORD_STUDY: return "study";
    default: return "unknown kind";
    }
}

static kb_store__db kind_db(unsigned kind)
{
    switch (kind) {
    case KB_RECORD_TASK: return KB_STORE__DB_TASKS;
    case KB_RECORD_RUN: return KB_STORE__DB_RUNS;
    case KB_RECORD_BACKBONE: return KB_STORE__DB_BACKBONES;
    case KB_RECORD_STUDY: return KB_STORE__DB_STUDIES;
    default: return KB_STORE__DB_SPACES;
    }
}

static int mdb_fail(kb_error *err, int mrc, const char *what)
{
    return kb_error_set_cause(err, KB_ESTORE, mrc, "%s: %s", what, mdb_strerror(mrc));
}

/* Print a key for messages: at most 64 bytes, NUL-free by construction of ids */
static const char *key_text(char *out, size_t n, const MDB_val *k)
{
    size_t len = k->mv_size < n - 1 ? k->mv_size : n - 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = ((const unsigned char *)k->mv_data)[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[len] = '\0';
    return out;
}

MDB_env *kb_store__env(kb_store *store)
{
    return store->env;
}

void kb_store__set_ids_merge_min(kb_store *store, size_t n)
{
    store->ids_merge_min = n;
}

unsigned kb_store__dbi(kb_store *store, kb_store__db db)
{
    return store->dbi[db];
}

const char *kb_store__db_name(kb_store__db db)
{
    return db_defs[db].name;
}

/* --- meta --------------------------------------------------------------------------------- */

typedef struct meta {
    uint64_t schema_version;
    uint64_t next_seq;
    uint64_t by_status[N_STATUS];
} meta;

static int meta_get_u64(uint64_t *out, MDB_txn *txn, MDB_dbi dbi, const char *key,
                        kb_error *err)
{
    MDB_val k = val_str(key), v;
    int mrc = mdb_get(txn, dbi, &k, &v);
    if (mrc == MDB_NOTFOUND) {
        return kb_error_set(err, KB_ECORRUPT, "meta: '%s' is missing", key);
    }
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "reading meta");
    }
    if (v.mv_size != 8) {
        return kb_error_set(err, KB_ECORRUPT, "meta: '%s' has %zu bytes, expected 8", key,
                            v.mv_size);
    }
    *out = kb_be64_decode(v.mv_data);
    return KB_OK;
}

static int meta_load(meta *m, MDB_txn *txn, const kb_store *s, kb_error *err)
{
    MDB_dbi dbi = s->dbi[KB_STORE__DB_META];
    int rc = meta_get_u64(&m->schema_version, txn, dbi, META_SCHEMA, err);
    if (rc == KB_OK) {
        rc = meta_get_u64(&m->next_seq, txn, dbi, META_NEXT_SEQ, err);
    }
    if (rc != KB_OK) {
        return rc;
    }
    MDB_val k = val_str(META_STATUS), v;
    int mrc = mdb_get(txn, dbi, &k, &v);
    if (mrc == MDB_NOTFOUND || (mrc == MDB_SUCCESS && v.mv_size != 8 * N_STATUS)) {
        return kb_error_set(err, KB_ECORRUPT, "meta: '%s' is missing or malformed", META_STATUS);
    }
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "reading meta");
    }
    for (int i = 0; i < N_STATUS; i++) {
        m->by_status[i] = kb_be64_decode((const char *)v.mv_data + 8 * i);
    }
    return KB_OK;
}

static int meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t x, kb_error *err)
{
    unsigned char b[8];
    kb_be64_encode(b, x);
    MDB_val k = val_str(key), v = {8, b};
    int mrc = mdb_put(txn, dbi, &k, &v, 0);
    return mrc == MDB_SUCCESS ? KB_OK : mdb_fail(err, mrc, "writing meta");
}

static int meta_store(const meta *m, MDB_txn *txn, const kb_store *s, kb_error *err)
{
    MDB_dbi dbi = s->dbi[KB_STORE__DB_META];
    int rc = meta_put_u64(txn, dbi, META_SCHEMA, m->schema_version, err);
    if (rc == KB_OK) {
        rc = meta_put_u64(txn, dbi, META_NEXT_SEQ, m->next_seq, err);
    }
    if (rc != KB_OK) {
        return rc;
    }
    unsigned char b[8 * N_STATUS];
    for (int i = 0; i < N_STATUS; i++) {
        kb_be64_encode(b + 8 * i, m->by_status[i]);
    }
    MDB_val k = val_str(META_STATUS), v = {sizeof b, b};
    int mrc = mdb_put(txn, dbi, &k, &v, 0);
    return mrc == MDB_SUCCESS ? KB_OK : mdb_fail(err, mrc, "writing meta");
}

static int tasks_generation_load(uint64_t *out, MDB_txn *txn, const kb_store *s, kb_error *err)
{
    MDB_val k = val_str(META_TASKS_GEN), v;
    int mrc = mdb_get(txn, s->dbi[KB_STORE__DB_META], &k, &v);
    *out = 0;
    if (mrc == MDB_NOTFOUND) {
        return KB_OK;
    }
    return meta_get_u64(out, txn, s->dbi[KB_STORE__DB_META], META_TASKS_GEN, err);
}

/* Called once by every write transaction that changes the task set */
static int tasks_generation_bump(MDB_txn *txn, const kb_store *s, kb_error *err)
{
    uint64_t g;
    int rc = tasks_generation_load(&g, txn, s, err);
    return rc == KB_OK ? meta_put_u64(txn, s->dbi[KB_STORE__DB_META], META_TASKS_GEN, g + 1, err)
                       : rc;
}

/* --- transactions and map growth ---------------------------------------------------------- */

static int txn_begin(MDB_txn **out, kb_store *s, unsigned flags, kb_error *err)
{
    for (;;) {
        int mrc = mdb_txn_begin(s->env, NULL, flags, out);
        if (mrc == MDB_MAP_RESIZED && s->iterating == 0) {
            /*
             * Another process grew the map: adopt its size. Not inside an iteration (a get
             * from a callback): remapping would move the pages the iteration is reading.
             */
            mrc = mdb_env_set_mapsize(s->env, 0);
            if (mrc == MDB_SUCCESS) {
                continue;
            }
        }
        if (mrc != MDB_SUCCESS) {
            *out = NULL;
            return mdb_fail(err, mrc, "beginning a transaction");
        }
        return KB_OK;
    }
}

static int grow_map(kb_store *s, kb_error *err)
{
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    if (info.me_mapsize > SIZE_MAX / 2) {
        return kb_error_set_cause(err, KB_ESTORE, MDB_MAP_FULL, "store map is full");
    }
    size_t bytes = info.me_mapsize * 2;
    int mrc = mdb_env_set_mapsize(s->env, bytes);
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "growing the store map");
    }
    kb_log_printf(&s->log, KB_LOG_LEVEL_INFO, "map grown to %zu MiB", bytes / MIB);
    return KB_OK;
}

typedef int (*write_body)(kb_store *s, MDB_txn *txn, void *ctx, kb_error *err);

/*
 * Run `body` in one write transaction and commit. MDB_MAP_FULL anywhere (a put or the commit)
 * aborts, doubles the map and runs the whole body again, so a body must derive everything from
 * its inputs and the transaction (never from state it changed in an earlier attempt).
 */
static int write_txn(kb_store *s, write_body body, void *ctx, kb_error *err)
{
    if (s->flags & KB_STORE_OPEN_RDONLY) {
        return kb_error_set(err, KB_EINVAL, "store '%s' is open read-only", s->path);
    }
    if (s->iterating > 0) {
        /* growing the map would move the pages the iteration's records point into */
        return kb_error_set(err, KB_EINVAL, "store '%s': cannot write from inside an iteration",
                            s->path);
    }
    for (;;) {
        kb_error local = KB_ERROR_INIT;
        MDB_txn *txn = NULL;
        int rc = txn_begin(&txn, s, 0, &local);
        if (rc == KB_OK) {
            rc = body(s, txn, ctx, &local);
            if (rc == KB_OK) {
                int mrc = mdb_txn_commit(txn);
                rc = mrc == MDB_SUCCESS ? KB_OK : mdb_fail(&local, mrc, "committing");
            } else {
                mdb_txn_abort(txn);
            }
        }
        if (rc == KB_ESTORE && local.cause == MDB_MAP_FULL) {
            rc = grow_map(s, &local);
            if (rc == KB_OK) {
                continue;
            }
        }
        if (rc != KB_OK && err != NULL) {
            *err = local;
        }
        return rc;
    }
}

/* --- open / close ------------------------------------------------------------------------- */

/*
 * The run indexes (task, space, backbone, study -> runs) hold ranges of sequence numbers, not
 * one entry per run: each duplicate is RANGE_BYTES, the first and the last seq of a range
 * (inclusive, both 8-byte big-endian), so duplicates sort by their first seq; a key's ranges
 * are disjoint. Runs get consecutive seqs as they are added, so a batch of one task's runs adds
 * one range per index key (or extends the key's last one) instead of one B-tree entry per run
 * and index, and a task of a million runs is a handful of entries (schema 4; before, 8-byte
 * seqs). Adjacent ranges need not be merged: readers take any disjoint sorted set.
 */
#define RANGE_BYTES (2 * SEQ_BYTES)

static void range_encode(unsigned char *b, uint64_t first, uint64_t last)
{
    kb_be64_encode(b, first);
    kb_be64_encode(b + SEQ_BYTES, last);
}

static void range_decode(const MDB_val *v, uint64_t *first, uint64_t *last)
{
    *first = kb_be64_decode(v->mv_data);
    *last = kb_be64_decode((const unsigned char *)v->mv_data + SEQ_BYTES);
}

typedef int (*migration_fn)(kb_store *s, MDB_txn *txn, kb_error *err);

/*
 * Version 2 split the id map into `ids` and `ids_recent` (see merge_recent_ids). A version-1
 * store has every id in `ids` and no `ids_recent`; open_dbs has already created it empty in
 * this transaction, which is a valid version-2 state, so there is nothing to move.
 */
static int migrate_1_to_2(kb_store *s, MDB_txn *txn, kb_error *err)
{
    (void)s;
    (void)txn;
    (void)err;
    return KB_OK;
}

/*
 * Version 3 adds studies, the study -> runs index, the cache and the task generation (absent
 * means 0). open_dbs has created the new databases empty; the index is built from the runs'
 * study_id fields in sequence order, so each entry appends. A study_id that cannot be a key
 * (longer than LMDB's key limit; version 2 did not check it) is left out of the index, as
 * kb_store_check expects.
 */
static int migrate_2_to_3(kb_store *s, MDB_txn *txn, kb_error *err)
{
    MDB_cursor *cur = NULL, *idx = NULL;
    int mrc = mdb_cursor_open(txn, s->dbi[KB_STORE__DB_RUNS], &cur);
    if (mrc == MDB_SUCCESS) {
        mrc = mdb_cursor_open(txn, s->dbi[KB_STORE__DB_IDX_STUDY_RUNS], &idx);
    }
    int rc = KB_OK;
    MDB_val k, v;
    for (mrc = mrc != MDB_SUCCESS ? mrc : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         mrc == MDB_SUCCESS; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        kb_codec_str sid;
        rc = kb_codec__peek_run_study(&sid, v.mv_data, v.mv_size, err);
        if (rc != KB_OK) {
            kb_error_prefix(err, "migrating run #%llu",
                            (unsigned long long)(k.mv_size == SEQ_BYTES
                                                     ? kb_be64_decode(k.mv_data)
                                                     : 0));
            break;
        }
        if (sid.ptr == NULL || sid.len == 0 || sid.len > (size_t)s->max_key ||
            k.mv_size != SEQ_BYTES) {
            continue;
        }
        MDB_val ik = val_view(sid), iv = k;
        mrc = mdb_cursor_put(idx, &ik, &iv, MDB_APPENDDUP);
        if (mrc == MDB_KEYEXIST) { /* not past the key's last entry: an ordinary insert */
            mrc = mdb_put(txn, s->dbi[KB_STORE__DB_IDX_STUDY_RUNS], &ik, &iv, 0);
        }
        if (mrc != MDB_SUCCESS && mrc != MDB_KEYEXIST) {
            break;
        }
    }
    if (idx != NULL) {
        mdb_cursor_close(idx);
    }
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (rc == KB_OK && mrc != MDB_NOTFOUND) {
        rc = mdb_fail(err, mrc, "building the study index");
    }
    return rc;
}

/* One run index's (key, 8-byte seq) entries as (key, range) entries, in `out` (see below) */
static int collect_ranges(kb_buf *out, MDB_txn *txn, MDB_dbi dbi, kb_error *err)
{
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, dbi, &cur);
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "migrating an index");
    }
    MDB_val k, v, prev = {0, NULL};
    uint64_t first = 0, last = 0;
    int rc = KB_OK;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == MDB_SUCCESS && rc == KB_OK;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size != SEQ_BYTES) {
            continue; /* not a seq: left out (kb check reports the runs it misses) */
        }
        uint64_t seq = kb_be64_decode(v.mv_data);
        int same = prev.mv_data != NULL && val_eq(&k, &prev);
        if (same && seq == last + 1) {
            last = seq;
            continue;
        }
        if (prev.mv_data != NULL) {
            rc = kb_buf_put_bytes(out, prev.mv_data, prev.mv_size);
            rc = rc == KB_OK ? kb_buf_put_be64(out, first) : rc;
            rc = rc == KB_OK ? kb_buf_put_be64(out, last) : rc;
        }
        prev = k;
        first = last = seq;
    }
    if (rc == KB_OK && prev.mv_data != NULL) {
        rc = kb_buf_put_bytes(out, prev.mv_data, prev.mv_size);
        rc = rc == KB_OK ? kb_buf_put_be64(out, first) : rc;
        rc = rc == KB_OK ? kb_buf_put_be64(out, last) : rc;
    }
    mdb_cursor_close(cur);
    if (rc != KB_OK) {
        return kb_error_set(err, rc, "migrating an index: out of memory");
    }
    return mrc == MDB_NOTFOUND ? KB_OK : mdb_fail(err, mrc, "migrating an index");
}

/*
 * Version 4 turns the run indexes' entries (one 8-byte seq per run) into ranges of consecutive
 * seqs (see RANGE_BYTES): each index is read whole into memory as ranges, emptied, and
 * written back.
 */
static int migrate_3_to_4(kb_store *s, MDB_txn *txn, kb_error *err)
{
    static const kb_store__db dbs[4] = {KB_STORE__DB_IDX_TASK_RUNS, KB_STORE__DB_IDX_SPACE_RUNS,
                                        KB_STORE__DB_IDX_BACKBONE_RUNS,
                                        KB_STORE__DB_IDX_STUDY_RUNS};
    kb_buf b = KB_BUF_INIT;
    int rc = KB_OK;
    for (int j = 0; rc == KB_OK && j < 4; j++) {
        MDB_dbi dbi = s->dbi[dbs[j]];
        kb_buf_reset(&b);
        rc = collect_ranges(&b, txn, dbi, err);
        int mrc = rc == KB_OK ? mdb_drop(txn, dbi, 0) : MDB_SUCCESS;
        kb_reader r;
        kb_reader_init(&r, b.data, b.len);
        while (rc == KB_OK && mrc == MDB_SUCCESS && kb_reader_left(&r) > 0) {
            MDB_val k;
            k.mv_data = (void *)kb_reader_bytes(&r, &k.mv_size);
            uint64_t first = kb_reader_be64(&r);
            uint64_t last = kb_reader_be64(&r);
            assert(!r.bad);
            unsigned char range[RANGE_BYTES];
            range_encode(range, first, last);
            MDB_val v = {RANGE_BYTES, range};
            mrc = mdb_put(txn, dbi, &k, &v, 0);
        }
        if (rc == KB_OK && mrc != MDB_SUCCESS) {
            rc = mdb_fail(err, mrc, "migrating an index");
        }
    }
    kb_buf_release(&b);
    return rc;
}

/*
 * migrations[v] turns a version-v store into a version-(v + 1) store inside the open's write
 * transaction, after open_dbs created any database the new schema adds. A new schema adds its
 * function here and bumps KB_STORE_SCHEMA_VERSION.
 */
static const migration_fn migrations[KB_STORE_SCHEMA_VERSION + 1] = {
    [1] = migrate_1_to_2,
    [2] = migrate_2_to_3,
    [3] = migrate_3_to_4,
};

static int open_dbs(kb_store *s, MDB_txn *txn, int create, kb_error *err)
{
    for (int i = 0; i < KB_STORE__N_DBS; i++) {
        unsigned flags = db_defs[i].flags | (create ? MDB_CREATE : 0);
        int mrc = mdb_dbi_open(txn, db_defs[i].name, flags, &s->dbi[i]);
        if (mrc == MDB_NOTFOUND) {
            return kb_error_set(err, i == KB_STORE__DB_META ? KB_ENOTFOUND : KB_ECORRUPT,
                                "'%s' is not a kb store (database '%s' is missing)", s->path,
                                db_defs[i].name);
        }
        if (mrc != MDB_SUCCESS) {
            return mdb_fail(err, mrc, "opening a database");
        }
    }
    return KB_OK;
}

static int open_schema(kb_store *s, MDB_txn *txn, int writable, kb_error *err)
{
    MDB_val k = val_str(META_SCHEMA), v;
    int mrc = mdb_get(txn, s->dbi[KB_STORE__DB_META], &k, &v);
    if (mrc == MDB_NOTFOUND) {
        if (!writable) {
            return kb_error_set(err, KB_ENOTFOUND, "'%s' is not a kb store", s->path);
        }
        meta m = {KB_STORE_SCHEMA_VERSION, 1, {0}};
        return meta_store(&m, txn, s, err);
    }
    uint64_t version;
    int rc = meta_get_u64(&version, txn, s->dbi[KB_STORE__DB_META], META_SCHEMA, err);
    if (rc != KB_OK) {
        return rc;
    }
    if (version > KB_STORE_SCHEMA_VERSION) {
        return kb_error_set(err, KB_EVERSION,
                            "store '%s' has schema version %llu, newer than this kb's %d",
                            s->path, (unsigned long long)version, KB_STORE_SCHEMA_VERSION);
    }
    if (version == KB_STORE_SCHEMA_VERSION) {
        return KB_OK;
    }
    if (!writable || version == 0) {
        return kb_error_set(err, KB_EVERSION, "store '%s' has schema version %llu; %s", s->path,
                            (unsigned long long)version,
                            version == 0 ? "no migration exists"
                                         : "open it read-write once to migrate it");
    }
    for (uint64_t ver = version; ver < KB_STORE_SCHEMA_VERSION; ver++) {
        rc = migrations[ver] != NULL ? migrations[ver](s, txn, err)
                                      : kb_error_set(err, KB_EVERSION, "no migration from %llu",
                                                     (unsigned long long)ver);
        if (rc != KB_OK) {
            return rc;
        }
        kb_log_printf(&s->log, KB_LOG_LEVEL_INFO, "store migrated to schema version %llu",
                      (unsigned long long)ver + 1);
    }
    return meta_put_u64(txn, s->dbi[KB_STORE__DB_META], META_SCHEMA, KB_STORE_SCHEMA_VERSION,
                        err);
}

/*
 * Open the databases and check the schema in one transaction. In a read transaction, a store
 * that lacks its databases or has an older schema sets *need_write instead of failing.
 */
static int open_txn(kb_store *s, int write, int *need_write, kb_error *err)
{
    MDB_txn *txn = NULL;
    *need_write = 0;
    int rc = txn_begin(&txn, s, write ? 0 : MDB_RDONLY, err);
    if (rc != KB_OK) {
        return rc;
    }
    if (!write) {
        /* an older schema may lack databases a migration adds: check it before opening them */
        MDB_dbi meta_dbi;
        MDB_val k = val_str(META_SCHEMA), v;
        if (mdb_dbi_open(txn, db_defs[KB_STORE__DB_META].name, 0, &meta_dbi) == MDB_SUCCESS &&
            mdb_get(txn, meta_dbi, &k, &v) == MDB_SUCCESS && v.mv_size == 8 &&
            kb_be64_decode(v.mv_data) > 0 &&
            kb_be64_decode(v.mv_data) < KB_STORE_SCHEMA_VERSION) {
            *need_write = 1;
        }
    }
    if (!*need_write) {
        rc = open_dbs(s, txn, write, err);
    }
    if (rc == KB_OK && !*need_write) {
        rc = open_schema(s, txn, write, err);
    }
    if (!write && rc == KB_ENOTFOUND && (s->flags & KB_STORE_OPEN_CREATE) &&
        !(s->flags & KB_STORE_OPEN_RDONLY)) {
        *need_write = 1; /* a new environment: create the databases */
        rc = KB_OK;
    }
    if (rc != KB_OK || *need_write) {
        mdb_txn_abort(txn);
        return rc;
    }
    int mrc = mdb_txn_commit(txn);
    return mrc == MDB_SUCCESS ? KB_OK : mdb_fail(err, mrc, "opening the store");
}

static int check_dir(const char *path, unsigned flags, kb_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT) {
            return kb_error_set_cause(err, KB_EIO, errno, "store '%s': %s", path,
                                      strerror(errno));
        }
        if (!(flags & KB_STORE_OPEN_CREATE) || (flags & KB_STORE_OPEN_RDONLY)) {
            return kb_error_set(err, KB_ENOTFOUND, "no kb store at '%s'", path);
        }
        if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            return kb_error_set_cause(err, KB_EIO, errno, "creating '%s': %s", path,
                                      strerror(errno));
        }
        return KB_OK;
    }
    if (!S_ISDIR(st.st_mode)) {
        return kb_error_set(err, KB_EINVAL, "store '%s' is not a directory", path);
    }
    return KB_OK;
}

static int data_file_exists(const char *path)
{
    char file[4096];
    snprintf(file, sizeof file, "%s/data.mdb", path);
    struct stat st;
    return stat(file, &st) == 0;
}

int kb_store_open(kb_store **out, const char *path, const kb_store_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    *out = NULL;
    KB_CHECK_ARG(path != NULL && path[0] != '\0');
    kb_store_opts defaults = KB_STORE_OPTS_INIT;
    if (opts == NULL) {
        opts = &defaults;
    }
    KB_CHECK_ARG(opts->version == KB_STORE_OPTS_VERSION);

    kb_store *s = NULL;
    int rc = check_dir(path, opts->flags, err);
    if (rc != KB_OK) {
        return rc;
    }
    int exists = data_file_exists(path);
    if (!exists && !(opts->flags & KB_STORE_OPEN_CREATE)) {
        return kb_error_set(err, KB_ENOTFOUND, "no kb store at '%s'", path);
    }
    if (!exists && (opts->flags & KB_STORE_OPEN_RDONLY)) {
        return kb_error_set(err, KB_ENOTFOUND, "no kb store at '%s'", path);
    }

    s = kb_calloc(1, sizeof *s);
    if (s == NULL || (s->path = kb_strdup(path)) == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "opening '%s': out of memory", path);
        goto done;
    }
    s->flags = opts->flags;
    s->log = opts->log;
    s->ids_merge_min = 50000;
    int writable = !(opts->flags & KB_STORE_OPEN_RDONLY);

    int mrc = mdb_env_create(&s->env);
    if (mrc != MDB_SUCCESS) {
        s->env = NULL;
        rc = mdb_fail(err, mrc, "creating the LMDB environment");
        goto done;
    }
    mdb_env_set_maxdbs(s->env, KB_STORE__N_DBS + 2);
    /*
     * An existing store keeps the map size it grew to unless the caller asks for another;
     * LMDB takes the size recorded in the file when none is set.
     */
    if (opts->map_bytes > 0 || !exists) {
        mdb_env_set_mapsize(s->env, opts->map_bytes > 0 ? opts->map_bytes : DEFAULT_MAP_BYTES);
    }
    unsigned env_flags = MDB_NOTLS;
    env_flags |= writable ? 0 : MDB_RDONLY;
    env_flags |= (opts->flags & KB_STORE_OPEN_NOSYNC) ? MDB_NOSYNC : 0;
    mrc = mdb_env_open(s->env, path, env_flags, 0664);
    if (mrc != MDB_SUCCESS) {
        rc = mrc == ENOENT ? kb_error_set(err, KB_ENOTFOUND, "no kb store at '%s'", path)
                           : kb_error_set_cause(err, KB_ESTORE, mrc, "opening store '%s': %s",
                                                path, mdb_strerror(mrc));
        goto done;
    }
    s->max_key = mdb_env_get_maxkeysize(s->env);

    /*
     * A current store opens in a read transaction, so opening never waits for a writer in
     * another process. A new store's initial state, or the migrations of an older one, take
     * one write transaction.
     */
    int need_write = 0;
    rc = open_txn(s, 0, &need_write, err);
    if (rc == KB_OK && need_write && !writable) {
        rc = kb_error_set(err, KB_EVERSION, "store '%s' needs a migration; open it read-write once",
                          path);
    } else if (rc == KB_OK && need_write) {
        /* a migration may outgrow the map: grow it and run the whole transaction again */
        kb_error local = KB_ERROR_INIT;
        while ((rc = open_txn(s, 1, &need_write, &local)) == KB_ESTORE &&
               local.cause == MDB_MAP_FULL && grow_map(s, &local) == KB_OK) {
        }
        if (rc != KB_OK && err != NULL) {
            *err = local;
        }
    }

done:
    if (rc != KB_OK) {
        kb_store_close(s);
        return rc;
    }
    *out = s;
    return KB_OK;
}

void kb_store_close(kb_store *store)
{
    if (store == NULL) {
        return;
    }
    if (store->env != NULL) {
        mdb_env_close(store->env);
    }
    kb_buf_release(&store->enc);
    kb_free(store->tbl_index);
    kb_free(store->tbl_ent);
    kb_free(store->tbl_sorted);
    kb_free(store->idx);
    kb_free(store->idx_vals);
    kb_free(store->path);
    kb_free(store);
}

const char *kb_store_path(const kb_store *store)
{
    return store->path;
}

/* --- id map ------------------------------------------------------------------------------- */

/*
 * The id map: id -> kind byte, followed for runs by the run's 8-byte big-endian sequence
 * number. One lookup answers "is this id known, as what, and where". It has two levels: new
 * entries go to the small `ids_recent`, which is merged into `ids` in key order when it
 * outgrows an eighth of it (see merge_recent_ids). Content-hash ids arrive in random order;
 * inserting them straight into a large tree would copy most of its leaves in every batch,
 * while the small tree stays cached and the merge touches each leaf of the large one once.
 * Invariant: an id is in exactly one of the two.
 */
typedef struct id_entry {
    unsigned kind;
    uint64_t seq;
} id_entry;

/* Parse an id map value; KB_ECORRUPT for a malformed one */
static int ids_parse(id_entry *out, MDB_val key, MDB_val v, kb_error *err)
{
    const unsigned char *b = v.mv_data;
    if (v.mv_size < 1 || b[0] < KB_RECORD_TASK || b[0] > KB_RECORD_STUDY ||
        v.mv_size != (b[0] == KB_RECORD_RUN ? 1 + SEQ_BYTES : 1)) {
        char kt[80];
        return kb_error_set(err, KB_ECORRUPT, "ids: entry for '%s' is malformed",
                            key_text(kt, sizeof kt, &key));
    }
    out->kind = b[0];
    out->seq = b[0] == KB_RECORD_RUN ? kb_be64_decode(b + 1) : 0;
    return KB_OK;
}

/* KB_OK and *found (recent level first); KB_ECORRUPT for a malformed entry */
static int ids_get(id_entry *out, int *found, MDB_txn *txn, const kb_store *s, MDB_val key,
                   kb_error *err)
{
    *found = 0;
    const kb_store__db levels[2] = {KB_STORE__DB_IDS_RECENT, KB_STORE__DB_IDS};
    for (int i = 0; i < 2; i++) {
        MDB_val v;
        int mrc = mdb_get(txn, s->dbi[levels[i]], &key, &v);
        if (mrc == MDB_SUCCESS) {
            *found = 1;
            return ids_parse(out, key, v, err);
        }
        if (mrc != MDB_NOTFOUND) {
            return mdb_fail(err, mrc, "looking up an id");
        }
    }
    return KB_OK;
}

/* Put an id map entry through `cur` (on either level) */
static int ids_put(MDB_cursor *cur, MDB_val key, unsigned kind, uint64_t seq, kb_error *err)
{
    unsigned char b[1 + SEQ_BYTES];
    b[0] = (unsigned char)kind;
    kb_be64_encode(b + 1, seq);
    MDB_val v = {kind == KB_RECORD_RUN ? sizeof b : 1, b};
    int mrc = mdb_cursor_put(cur, &key, &v, 0);
    return mrc == MDB_SUCCESS ? KB_OK : mdb_fail(err, mrc, "writing the id map");
}

/* The stored encoding of the record an id entry names; KB_ECORRUPT if it is missing. */
static int record_bytes(MDB_val *out, MDB_txn *txn, const kb_store *s, MDB_val id,
                        const id_entry *e, kb_error *err)
{
    unsigned char seqkey[SEQ_BYTES];
    MDB_val key = id;
    if (e->kind == KB_RECORD_RUN) {
        kb_be64_encode(seqkey, e->seq);
        key.mv_size = SEQ_BYTES;
        key.mv_data = seqkey;
    }
    int mrc = mdb_get(txn, s->dbi[kind_db(e->kind)], &key, out);
    if (mrc == MDB_NOTFOUND) {
        char kt[80];
        return kb_error_set(err, KB_ECORRUPT,
                            "ids: '%s' names a %s that is not stored",
                            key_text(kt, sizeof kt, &id), kind_name(e->kind));
    }
    return mrc == MDB_SUCCESS ? KB_OK : mdb_fail(err, mrc, "reading a record");
}

/* --- put ---------------------------------------------------------------------------------- */

typedef struct batch {
    const kb_record *recs;
    const unsigned char *const *enc; /* per record: its encoding, or NULL; may be NULL */
    const size_t *enc_len;
    size_t n;
    kb_put_result *results;
    char (*reasons)[KB_ERROR_MSG_SIZE];
    unsigned flags; /* kb_store_put_flags */
} batch;

typedef struct put_state {
    meta m;
    int meta_dirty;
    int tasks_added; /* the batch added a task: the task generation moves on */
    MDB_cursor *runs; /* stays at the end of runs: appends need no search from the root */
} put_state;

/*
 * The batch id table: each id this batch added (pending: its ids entry is written at the end
 * of the batch, in key order) and each referenced id found in the store (a run's task or
 * backbone, looked up once per batch instead of once per run). Keys borrow from the batch's
 * records. Content-hash ids arrive in random order; writing the id map's entries sorted
 * touches its pages in order once per batch instead of jumping around the B-tree per run.
 * Open addressing over a dense entry array; at most 3 entries per record (its id, its task,
 * its backbone), with the index at most half full.
 */
typedef struct batch_id {
    const char *key;
    size_t len;
    uint64_t hash;
    uint64_t seq;
    unsigned char kind;
    unsigned char pending;
} batch_id;

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    }
    return h;
}

static int tbl_reset(kb_store *s, size_t n_recs, kb_error *err)
{
    if (n_recs > SIZE_MAX / 8) {
        return kb_error_set(err, KB_ENOMEM, "batch of %zu records is too large", n_recs);
    }
    size_t n_ent = 3 * n_recs + 1, cap = 64;
    while (cap < 2 * n_ent) {
        cap *= 2;
    }
    if (cap > s->tbl_index_cap) {
        uint32_t *idx = kb_malloc_array(cap, sizeof *idx);
        if (idx == NULL) {
            return kb_error_set(err, KB_ENOMEM, "batch id table: out of memory");
        }
        kb_free(s->tbl_index);
        s->tbl_index = idx;
        s->tbl_index_cap = cap;
    }
    if (n_ent > s->tbl_ent_cap || n_ent > UINT32_MAX - 1) {
        batch_id *e = kb_malloc_array(n_ent, sizeof *e);
        batch_id **sorted = kb_malloc_array(n_ent, sizeof *sorted);
        if (e == NULL || sorted == NULL || n_ent > UINT32_MAX - 1) {
            kb_free(e);
            kb_free(sorted);
            return kb_error_set(err, KB_ENOMEM, "batch id table: out of memory");
        }
        kb_free(s->tbl_ent);
        kb_free(s->tbl_sorted);
        s->tbl_ent = e;
        s->tbl_sorted = sorted;
        s->tbl_ent_cap = n_ent;
    }
    memset(s->tbl_index, 0, cap * sizeof *s->tbl_index);
    s->tbl_mask = cap - 1;
    s->tbl_n = 0;
    return KB_OK;
}

/* The slot where `key` is or would go */
static uint32_t *tbl_slot(kb_store *s, const char *key, size_t len, uint64_t h)
{
    for (size_t i = (size_t)h & s->tbl_mask;; i = (i + 1) & s->tbl_mask) {
        uint32_t *slot = &s->tbl_index[i];
        if (*slot == 0) {
            return slot;
        }
        const batch_id *e = &s->tbl_ent[*slot - 1];
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0) {
            return slot;
        }
    }
}

static void tbl_add(kb_store *s, uint32_t *slot, const char *key, size_t len, uint64_t h,
                    unsigned kind, uint64_t seq, int pending)
{
    assert(s->tbl_n < s->tbl_ent_cap);
    batch_id *e = &s->tbl_ent[s->tbl_n++];
    e->key = key;
    e->len = len;
    e->hash = h;
    e->seq = seq;
    e->kind = (unsigned char)kind;
    e->pending = (unsigned char)pending;
    *slot = (uint32_t)s->tbl_n;
}

/*
 * A batch's id lookups go through one cursor per id map level, opened for the batch. Neither
 * level changes during a batch (its new ids are written at its end), and LMDB's MDB_SET first
 * checks the page the cursor is on: ids that arrive in order (a source's own numbering) are
 * then found or ruled out on that leaf, without a search from the root per record.
 */
static int ids_cursors_open(kb_store *s, MDB_txn *txn, kb_error *err)
{
    const kb_store__db levels[2] = {KB_STORE__DB_IDS_RECENT, KB_STORE__DB_IDS};
    for (int i = 0; i < 2; i++) {
        int mrc = mdb_cursor_open(txn, s->dbi[levels[i]], &s->ids_cur[i]);
        if (mrc != MDB_SUCCESS) {
            s->ids_cur[i] = NULL;
            return mdb_fail(err, mrc, "reading the id map");
        }
    }
    return KB_OK;
}

static void ids_cursors_close(kb_store *s)
{
    for (int i = 0; i < 2; i++) {
        if (s->ids_cur[i] != NULL) {
            mdb_cursor_close(s->ids_cur[i]);
            s->ids_cur[i] = NULL;
        }
    }
}

/* ids_get through the batch's cursors */
static int ids_seek(id_entry *out, int *found, kb_store *s, MDB_val key, kb_error *err)
{
    *found = 0;
    for (int i = 0; i < 2; i++) {
        MDB_val k = key, v;
        int mrc = mdb_cursor_get(s->ids_cur[i], &k, &v, MDB_SET);
        if (mrc == MDB_SUCCESS) {
            *found = 1;
            return ids_parse(out, key, v, err);
        }
        if (mrc != MDB_NOTFOUND) {
            return mdb_fail(err, mrc, "looking up an id");
        }
    }
    return KB_OK;
}

enum lookup_flags {
    LOOKUP_CACHE = 1u << 0,     /* remember a store hit in the batch table */
    LOOKUP_OWN_ID = 1u << 1     /* a record's own id: not stored if the batch is fresh */
};

/* Look `key` up in the batch table, then in the store (lookup_flags) */
static int lookup_id(id_entry *out, int *found, kb_store *s, MDB_txn *txn, const char *key,
                     size_t len, unsigned flags, kb_error *err)
{
    uint64_t h = hash_bytes(key, len);
    uint32_t *slot = tbl_slot(s, key, len, h);
    *found = 0;
    if (*slot != 0) {
        const batch_id *e = &s->tbl_ent[*slot - 1];
        out->kind = e->kind;
        out->seq = e->seq;
        *found = 1;
        return KB_OK;
    }
    if ((flags & LOOKUP_OWN_ID) && s->batch_fresh) {
        return KB_OK;
    }
    MDB_val k = {len, (void *)key};
    int rc = s->ids_cur[0] != NULL ? ids_seek(out, found, s, k, err)
                                   : ids_get(out, found, txn, s, k, err);
    if (rc == KB_OK && *found && (flags & LOOKUP_CACHE)) {
        tbl_add(s, slot, key, len, h, out->kind, out->seq, 0);
    }
    return rc;
}

/* LMDB's default key order: bytes, then length */
static int key_cmp(const void *a, size_t a_len, const void *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    return c != 0 ? c : (a_len > b_len) - (a_len < b_len);
}

static int batch_id_cmp(const void *a, const void *b)
{
    const batch_id *x = *(const batch_id *const *)a, *y = *(const batch_id *const *)b;
    return key_cmp(x->key, x->len, y->key, y->len);
}

/*
 * Is no stored id (in either level) between the lowest and the highest id of the batch's
 * records? Then none of them is stored, and their own ids need no lookup in the store: the
 * common case of a source's own numbering, batch after batch. Two seeks per batch.
 */
static int ids_fresh(int *fresh, kb_store *s, const batch *b, kb_error *err)
{
    const char *lo = NULL, *hi = NULL;
    size_t lo_len = 0, hi_len = 0;
    *fresh = 0;
    for (size_t i = 0; i < b->n; i++) {
        const char *id = kb_record_id(&b->recs[i]);
        size_t n = id != NULL ? strlen(id) : 0;
        if (n == 0 || n > (size_t)s->max_key) {
            continue; /* rejected by put_one */
        }
        if (lo == NULL || key_cmp(id, n, lo, lo_len) < 0) {
            lo = id;
            lo_len = n;
        }
        if (hi == NULL || key_cmp(id, n, hi, hi_len) > 0) {
            hi = id;
            hi_len = n;
        }
    }
    if (lo == NULL) {
        return KB_OK;
    }
    for (int i = 0; i < 2; i++) {
        MDB_val k = {lo_len, (void *)lo}, v;
        int mrc = mdb_cursor_get(s->ids_cur[i], &k, &v, MDB_SET_RANGE);
        if (mrc == MDB_SUCCESS && key_cmp(k.mv_data, k.mv_size, hi, hi_len) <= 0) {
            return KB_OK;
        }
        if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND) {
            return mdb_fail(err, mrc, "looking up an id");
        }
    }
    *fresh = 1;
    return KB_OK;
}

/*
 * Move `ids_recent` into `ids` when it holds more than max(ids_merge_min, |ids| / 8) entries:
 * one pass in key order, so each leaf of `ids` is copied once per merge. With N ids and
 * batches of B, a recent level of ~N/8 keeps the per-batch copying at a fraction of the tree.
 */
static int merge_recent_ids(kb_store *s, MDB_txn *txn, kb_error *err)
{
    MDB_stat rs, ms;
    int mrc = mdb_stat(txn, s->dbi[KB_STORE__DB_IDS_RECENT], &rs);
    if (mrc == MDB_SUCCESS) {
        mrc = mdb_stat(txn, s->dbi[KB_STORE__DB_IDS], &ms);
    }
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "reading the id map's size");
    }
    size_t limit = ms.ms_entries / 8;
    if (limit < s->ids_merge_min) {
        limit = s->ids_merge_min;
    }
    if (rs.ms_entries <= limit) {
        return KB_OK;
    }
    MDB_cursor *cur = NULL, *dst = NULL;
    mrc = mdb_cursor_open(txn, s->dbi[KB_STORE__DB_IDS_RECENT], &cur);
    if (mrc == MDB_SUCCESS) {
        mrc = mdb_cursor_open(txn, s->dbi[KB_STORE__DB_IDS], &dst);
    }
    MDB_val k, v;
    for (mrc = mrc != MDB_SUCCESS ? mrc : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         mrc == MDB_SUCCESS; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        int prc = mdb_cursor_put(dst, &k, &v, 0);
        if (prc != MDB_SUCCESS) {
            mrc = prc;
            break;
        }
    }
    if (dst != NULL) {
        mdb_cursor_close(dst);
    }
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (mrc == MDB_NOTFOUND) {
        mrc = mdb_drop(txn, s->dbi[KB_STORE__DB_IDS_RECENT], 0);
    }
    return mrc == MDB_SUCCESS ? KB_OK : mdb_fail(err, mrc, "merging the id map");
}

/* Write the id map entries of the records this batch added, in key order */
static int tbl_flush(kb_store *s, MDB_txn *txn, kb_error *err)
{
    size_t n = 0;
    int sorted = 1; /* ids given in order (a source's own numbering) need no sort */
    for (size_t i = 0; i < s->tbl_n; i++) {
        if (s->tbl_ent[i].pending) {
            s->tbl_sorted[n] = &s->tbl_ent[i];
            sorted = sorted && (n == 0 || batch_id_cmp(&s->tbl_sorted[n - 1],
                                                       &s->tbl_sorted[n]) < 0);
            n++;
        }
    }
    if (!sorted) {
        qsort(s->tbl_sorted, n, sizeof *s->tbl_sorted, batch_id_cmp);
    }
    if (n == 0) {
        return KB_OK;
    }
    /*
     * The batch's ids go straight into `ids` when no key of it lies between their first and
     * their last (a source's own numbering: each batch goes on where the one before stopped,
     * into one spot of the tree), else into `ids_recent` to be merged later. Either way each
     * id is in exactly one level. One cursor for the whole sorted run of puts: LMDB's put
     * first checks the page the cursor is on, so consecutive keys that land on the same leaf
     * need no search from the root.
     */
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, s->dbi[KB_STORE__DB_IDS], &cur);
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "writing the id map");
    }
    const batch_id *lo = s->tbl_sorted[0], *hi = s->tbl_sorted[n - 1];
    MDB_val above = {lo->len, (void *)lo->key}, v;
    mrc = mdb_cursor_get(cur, &above, &v, MDB_SET_RANGE);
    if (mrc == MDB_SUCCESS) { /* the first stored key above `lo`: is it above `hi` too? */
        mrc = key_cmp(hi->key, hi->len, above.mv_data, above.mv_size) < 0 ? MDB_NOTFOUND
                                                                          : MDB_KEYEXIST;
    }
    if (mrc == MDB_KEYEXIST) {
        mdb_cursor_close(cur);
        mrc = mdb_cursor_open(txn, s->dbi[KB_STORE__DB_IDS_RECENT], &cur);
    } else if (mrc == MDB_NOTFOUND) {
        mrc = MDB_SUCCESS;
    } else {
        mdb_cursor_close(cur);
    }
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "writing the id map");
    }
    int rc = KB_OK;
    for (size_t i = 0; rc == KB_OK && i < n; i++) {
        const batch_id *e = s->tbl_sorted[i];
        MDB_val k = {e->len, (void *)e->key};
        rc = ids_put(cur, k, e->kind, e->seq, err);
    }
    mdb_cursor_close(cur);
    return rc;
}

static kb_put_result set_reason(const batch *b, size_t i, kb_put_result r, const char *fmt,
                                ...) __attribute__((format(printf, 4, 5)));

static kb_put_result set_reason(const batch *b, size_t i, kb_put_result r, const char *fmt, ...)
{
    if (b->reasons != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->reasons[i], KB_ERROR_MSG_SIZE, fmt, ap);
        va_end(ap);
    }
    return r;
}

/* A string used as a key must be non-empty and within LMDB's key size. */
static int key_ok(const kb_store *s, const char *k)
{
    size_t n = strlen(k);
    return n > 0 && n <= (size_t)s->max_key;
}

/* Is `id` stored as a record of `kind`? (KB_OK and *yes, or an error) */
static int has_kind(int *yes, MDB_txn *txn, const kb_store *s, const char *id, unsigned kind,
                    kb_error *err)
{
    id_entry e;
    int found;
    int rc = ids_get(&e, &found, txn, s, val_str(id), err);
    *yes = rc == KB_OK && found && e.kind == kind;
    return rc;
}

/*
 * Position `cur` on the range of `key` that holds `seq`: KB_OK with *found (and the range in
 * *first, *last) or not; KB_ECORRUPT for a duplicate that is not a range
 */
static int range_find(int *found, uint64_t *first, uint64_t *last, MDB_cursor *cur,
                      MDB_val key, uint64_t seq, kb_error *err)
{
    *found = 0;
    unsigned char probe[RANGE_BYTES];
    range_encode(probe, seq, UINT64_MAX); /* above every range that starts at or below seq */
    MDB_val k = key, v = {RANGE_BYTES, probe};
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
    if (mrc == MDB_SUCCESS && v.mv_size == RANGE_BYTES &&
        kb_be64_decode(v.mv_data) > seq) {
        mrc = mdb_cursor_get(cur, &k, &v, MDB_PREV_DUP);
    } else if (mrc == MDB_NOTFOUND) {
        k = key;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
        if (mrc == MDB_SUCCESS) {
            mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST_DUP);
        }
    }
    if (mrc == MDB_NOTFOUND) {
        return KB_OK;
    }
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "reading an index");
    }
    if (v.mv_size != RANGE_BYTES) {
        char kt[80];
        return kb_error_set(err, KB_ECORRUPT, "index entry for '%s' is not a range",
                            key_text(kt, sizeof kt, &key));
    }
    range_decode(&v, first, last);
    *found = *first <= seq && seq <= *last;
    return KB_OK;
}

/* Delete the range `cur` is on, then put [first, last] under `key` (if not empty) */
static int range_replace(MDB_txn *txn, MDB_cursor *cur, MDB_dbi dbi, MDB_val key, uint64_t first,
                         uint64_t last, int del, kb_error *err)
{
    int mrc = del ? mdb_cursor_del(cur, 0) : MDB_SUCCESS;
    if (mrc == MDB_SUCCESS && first <= last) {
        unsigned char b[RANGE_BYTES];
        range_encode(b, first, last);
        MDB_val k = key, v = {RANGE_BYTES, b};
        mrc = mdb_put(txn, dbi, &k, &v, 0);
    }
    return mrc == MDB_SUCCESS ? KB_OK : mdb_fail(err, mrc, "updating an index");
}

/* Add `seq` to `key`'s ranges in run index `db`, joining the ranges next to it */
static int idx_add(MDB_txn *txn, const kb_store *s, kb_store__db db, const char *key,
                   uint64_t seq, kb_error *err)
{
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, s->dbi[db], &cur);
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "updating an index");
    }
    MDB_val k = val_str(key);
    uint64_t first = seq, last = seq, f, l;
    int found;
    int rc = range_find(&found, &f, &l, cur, k, seq, err);
    if (rc != KB_OK || found) {
        mdb_cursor_close(cur);
        return rc;
    }
    if (seq > 0) {
        rc = range_find(&found, &f, &l, cur, k, seq - 1, err);
        if (rc == KB_OK && found) {
            first = f;
            rc = range_replace(txn, cur, s->dbi[db], k, 1, 0, 1, err);
        }
    }
    if (rc == KB_OK && seq < UINT64_MAX) {
        rc = range_find(&found, &f, &l, cur, k, seq + 1, err);
        if (rc == KB_OK && found) {
            last = l;
            rc = range_replace(txn, cur, s->dbi[db], k, 1, 0, 1, err);
        }
    }
    if (rc == KB_OK) {
        rc = range_replace(txn, cur, s->dbi[db], k, first, last, 0, err);
    }
    mdb_cursor_close(cur);
    return rc;
}

/* Add run `seq` to the task, space, backbone and study indexes it belongs in */
static int idx_put_run(MDB_txn *txn, const kb_store *s, const kb_run *r, uint64_t seq,
                       kb_error *err)
{
    int rc = idx_add(txn, s, KB_STORE__DB_IDX_TASK_RUNS, r->task_id, seq, err);
    if (rc == KB_OK && r->space != NULL) {
        rc = idx_add(txn, s, KB_STORE__DB_IDX_SPACE_RUNS, r->space, seq, err);
    }
    if (rc == KB_OK && r->backbone_id != NULL) {
        rc = idx_add(txn, s, KB_STORE__DB_IDX_BACKBONE_RUNS, r->backbone_id, seq, err);
    }
    if (rc == KB_OK && r->study_id != NULL) {
        rc = idx_add(txn, s, KB_STORE__DB_IDX_STUDY_RUNS, r->study_id, seq, err);
    }
    return rc;
}

/*
 * A new run's index entries are kept until the end of its batch (nothing reads the run
 * indexes in between) and then written a key at a time: one MDB_MULTIPLE put appends all of
 * a task's (space's, ...) new seqs, instead of a search from the root per run and index.
 */
typedef struct idx_pend {
    const char *key; /* borrowed from the batch's records */
    size_t len;
    uint64_t seq;
    kb_store__db db;
} idx_pend;

/* The run indexes, in the order of idx_defer's keys */
static const kb_store__db run_idx_dbs[4] = {KB_STORE__DB_IDX_TASK_RUNS, KB_STORE__DB_IDX_SPACE_RUNS,
                                            KB_STORE__DB_IDX_BACKBONE_RUNS,
                                            KB_STORE__DB_IDX_STUDY_RUNS};

static int idx_defer(kb_store *s, const kb_run *r, uint64_t seq, kb_error *err)
{
    if (s->idx_cap - s->idx_n < 4) {
        size_t cap = s->idx_cap < 1024 ? 1024 : s->idx_cap * 2;
        idx_pend *p = kb_realloc_array(s->idx, cap, sizeof *p);
        if (p == NULL) {
            return kb_error_set(err, KB_ENOMEM, "run index entries: out of memory");
        }
        s->idx = p;
        s->idx_cap = cap;
    }
    const char *keys[4] = {r->task_id, r->space, r->backbone_id, r->study_id};
    for (int j = 0; j < 4; j++) {
        if (keys[j] != NULL) {
            s->idx[s->idx_n++] = (idx_pend){keys[j], strlen(keys[j]), seq, run_idx_dbs[j]};
        }
    }
    return KB_OK;
}

/*
 * Append `n` ranges (RANGE_BYTES each, contiguous, above every stored one) to `key` in run
 * index `db`; the first joins the key's last stored range when they meet
 */
static int idx_put_many(MDB_txn *txn, const kb_store *s, kb_store__db db, const idx_pend *first,
                        unsigned char *vals, size_t n, kb_error *err)
{
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, s->dbi[db], &cur);
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "writing an index");
    }
    MDB_val k = {first->len, (void *)first->key}, v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    if (mrc == MDB_SUCCESS) {
        mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST_DUP);
    }
    uint64_t f = 0, l = 0, new_first = kb_be64_decode(vals);
    if (mrc == MDB_SUCCESS && v.mv_size == RANGE_BYTES) {
        range_decode(&v, &f, &l);
        mrc = l >= new_first ? MDB_KEYEXIST : l + 1 == new_first ? mdb_cursor_del(cur, 0)
                                                                 : MDB_SUCCESS;
        if (mrc == MDB_SUCCESS && l + 1 == new_first) {
            kb_be64_encode(vals, f); /* the stored range grows by this batch's first one */
        }
    } else if (mrc == MDB_SUCCESS) {
        mrc = MDB_KEYEXIST;
    } else if (mrc == MDB_NOTFOUND) {
        mrc = MDB_SUCCESS;
    }
    k.mv_size = first->len;
    k.mv_data = (void *)first->key;
    MDB_val data[2] = {{RANGE_BYTES, vals}, {n, NULL}};
    if (mrc == MDB_SUCCESS) {
        mrc = mdb_cursor_put(cur, &k, data, MDB_MULTIPLE | MDB_APPENDDUP);
    }
    mdb_cursor_close(cur);
    if (mrc == MDB_KEYEXIST) {
        char kt[80];
        return kb_error_set(err, KB_ECORRUPT, "%s: '%s' lists a run past next_seq",
                            db_defs[db].name, key_text(kt, sizeof kt, &k));
    }
    return mrc == MDB_SUCCESS ? KB_OK : mdb_fail(err, mrc, "writing an index");
}

/* Write the deferred entries: per index, each run of entries with the same key as ranges */
static int idx_flush(kb_store *s, MDB_txn *txn, kb_error *err)
{
    if (s->idx_n > s->idx_vals_cap) {
        unsigned char *v = kb_realloc_array(s->idx_vals, s->idx_n, RANGE_BYTES);
        if (v == NULL) {
            return kb_error_set(err, KB_ENOMEM, "run index entries: out of memory");
        }
        s->idx_vals = v;
        s->idx_vals_cap = s->idx_n;
    }
    int rc = KB_OK;
    for (int j = 0; rc == KB_OK && j < 4; j++) {
        kb_store__db db = run_idx_dbs[j];
        const idx_pend *first = NULL;
        size_t n = 0; /* ranges of the current key so far; the last is still open */
        uint64_t last = 0;
        for (size_t i = 0; rc == KB_OK && i <= s->idx_n; i++) {
            const idx_pend *e = i < s->idx_n ? &s->idx[i] : NULL;
            if (e != NULL && e->db != db) {
                continue;
            }
            if (first != NULL && (e == NULL || e->len != first->len ||
                                  memcmp(e->key, first->key, e->len) != 0)) {
                kb_be64_encode(s->idx_vals + (n - 1) * RANGE_BYTES + SEQ_BYTES, last);
                rc = idx_put_many(txn, s, db, first, s->idx_vals, n, err);
                first = NULL;
                n = 0;
            }
            if (e == NULL) {
                continue;
            }
            first = first != NULL ? first : e;
            /* seqs grow within a batch: a seq right after the open range extends it */
            if (n > 0 && e->seq == last + 1) {
                last = e->seq;
                continue;
            }
            if (n > 0) {
                kb_be64_encode(s->idx_vals + (n - 1) * RANGE_BYTES + SEQ_BYTES, last);
            }
            kb_be64_encode(s->idx_vals + n * RANGE_BYTES, e->seq);
            last = e->seq;
            n++;
        }
    }
    s->idx_n = 0;
    return rc;
}

/* Checks a new run's references; KB_OK with *res set to ADDED or REJECTED */
static int check_run_refs(kb_put_result *res, kb_store *s, MDB_txn *txn, const batch *b,
                          size_t i, kb_error *err)
{
    const kb_run *r = &b->recs[i].run;
    *res = KB_PUT_ADDED;
    if (r->task_id == NULL || !key_ok(s, r->task_id)) {
        *res = set_reason(b, i, KB_PUT_REJECTED, "run '%s': task_id is missing or too long",
                          r->id);
        return KB_OK;
    }
    const char *optional[4] = {r->space, r->backbone_id, r->team, r->study_id};
    const char *names[4] = {"space", "backbone_id", "team", "study_id"};
    for (int j = 0; j < 4; j++) {
        if (optional[j] != NULL && !key_ok(s, optional[j])) {
            *res = set_reason(b, i, KB_PUT_REJECTED, "run '%s': %s is empty or too long", r->id,
                              names[j]);
            return KB_OK;
        }
    }
    const char *refs[2] = {r->task_id, r->backbone_id};
    const unsigned kinds[2] = {KB_RECORD_TASK, KB_RECORD_BACKBONE};
    for (int j = 0; j < 2; j++) {
        if (refs[j] == NULL) {
            continue;
        }
        id_entry e;
        int found;
        int rc = lookup_id(&e, &found, s, txn, refs[j], strlen(refs[j]), LOOKUP_CACHE, err);
        if (rc != KB_OK) {
            return rc;
        }
        if (!found || e.kind != kinds[j]) {
            *res = set_reason(b, i, KB_PUT_REJECTED, "run '%s': unknown %s '%s'", r->id,
                              kind_name(kinds[j]), refs[j]);
            return KB_OK;
        }
    }
    return KB_OK;
}

/* Checks a new study's fields and task; KB_OK with *res set to ADDED or REJECTED */
static int check_study_refs(kb_put_result *res, kb_store *s, MDB_txn *txn, const batch *b,
                            size_t i, kb_error *err)
{
    const kb_study *st = &b->recs[i].study;
    *res = KB_PUT_ADDED;
    if (st->task_id == NULL || !key_ok(s, st->task_id)) {
        *res = set_reason(b, i, KB_PUT_REJECTED, "study '%s': task_id is missing or too long",
                          st->id);
        return KB_OK;
    }
    if (st->space == NULL || st->space[0] == '\0') {
        *res = set_reason(b, i, KB_PUT_REJECTED, "study '%s': space is missing", st->id);
        return KB_OK;
    }
    if (st->team != NULL && !key_ok(s, st->team)) {
        *res = set_reason(b, i, KB_PUT_REJECTED, "study '%s': team is empty or too long",
                          st->id);
        return KB_OK;
    }
    for (size_t j = 0; j < st->n_neighbours; j++) {
        if (st->neighbours[j] == NULL) {
            *res = set_reason(b, i, KB_PUT_REJECTED, "study '%s': neighbour %zu has no id",
                              st->id, j);
            return KB_OK;
        }
    }
    id_entry e;
    int found;
    int rc = lookup_id(&e, &found, s, txn, st->task_id, strlen(st->task_id), LOOKUP_CACHE, err);
    if (rc == KB_OK && (!found || e.kind != KB_RECORD_TASK)) {
        *res = set_reason(b, i, KB_PUT_REJECTED, "study '%s': unknown task '%s'", st->id,
                          st->task_id);
    }
    return rc;
}

static int add_run(kb_store *s, MDB_txn *txn, put_state *ps, const kb_run *r, MDB_val id,
                   uint64_t id_hash, MDB_val v, kb_error *err)
{
    uint64_t seq = ps->m.next_seq;
    unsigned char seqkey[SEQ_BYTES];
    kb_be64_encode(seqkey, seq);
    MDB_val k = {SEQ_BYTES, seqkey};
    /* sequence numbers only grow, so every run is appended at the end of the B-tree */
    int mrc = MDB_SUCCESS;
    if (ps->runs == NULL) {
        mrc = mdb_cursor_open(txn, s->dbi[KB_STORE__DB_RUNS], &ps->runs);
    }
    if (mrc == MDB_SUCCESS) {
        mrc = mdb_cursor_put(ps->runs, &k, &v, MDB_APPEND);
    }
    if (mrc == MDB_KEYEXIST) {
        return kb_error_set(err, KB_ECORRUPT, "meta: next_seq %llu is not past the last run",
                            (unsigned long long)seq);
    }
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "writing a run");
    }
    tbl_add(s, tbl_slot(s, id.mv_data, id.mv_size, id_hash), id.mv_data, id.mv_size, id_hash,
            KB_RECORD_RUN, seq, 1);
    int rc = idx_defer(s, r, seq, err);
    if (rc == KB_OK) {
        ps->m.next_seq = seq + 1;
        ps->m.by_status[r->status]++;
        ps->meta_dirty = 1;
    }
    return rc;
}

static int add_keyed(kb_store *s, MDB_txn *txn, const kb_record *rec, MDB_val id,
                     uint64_t id_hash, MDB_val v, kb_error *err)
{
    int mrc = mdb_put(txn, s->dbi[kind_db(rec->kind)], &id, &v, MDB_NOOVERWRITE);
    if (mrc == MDB_KEYEXIST) {
        char kt[80];
        return kb_error_set(err, KB_ECORRUPT, "%s '%s' is stored but missing from ids",
                            kind_name(rec->kind), key_text(kt, sizeof kt, &id));
    }
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "writing a record");
    }
    tbl_add(s, tbl_slot(s, id.mv_data, id.mv_size, id_hash), id.mv_data, id.mv_size, id_hash,
            rec->kind, 0, 1);
    int rc = KB_OK;
    if (rec->kind == KB_RECORD_TASK && rec->task.team != NULL) {
        MDB_val tk = val_str(rec->task.team);
        mrc = mdb_put(txn, s->dbi[KB_STORE__DB_IDX_TEAM_TASKS], &tk, &id, 0);
        if (mrc != MDB_SUCCESS && mrc != MDB_KEYEXIST) {
            rc = mdb_fail(err, mrc, "writing an index");
        }
    }
    return rc;
}

static int put_one(kb_put_result *res, kb_store *s, MDB_txn *txn, put_state *ps,
                   const batch *b, size_t i, kb_error *err)
{
    const kb_record *rec = &b->recs[i];
    const char *id = kb_record_id(rec);
    const char *kname = kind_name(rec->kind);
    if (id == NULL || !key_ok(s, id)) {
        *res = set_reason(b, i, KB_PUT_REJECTED, "%s: id is missing, empty or longer than %d bytes",
                          kname, s->max_key);
        return KB_OK;
    }
    if (rec->kind == KB_RECORD_TASK && rec->task.team != NULL && !key_ok(s, rec->task.team)) {
        *res = set_reason(b, i, KB_PUT_REJECTED, "task '%s': team is empty or too long", id);
        return KB_OK;
    }
    MDB_val now;
    int rc = KB_OK;
    if (b->enc != NULL && b->enc[i] != NULL) {
        now.mv_size = b->enc_len[i];
        now.mv_data = (void *)b->enc[i];
    } else {
        kb_buf_reset(&s->enc);
        kb_error e = KB_ERROR_INIT;
        rc = kb_codec_encode_record(&s->enc, rec, &e);
        if (rc == KB_EINVAL) {
            *res = set_reason(b, i, KB_PUT_REJECTED, "%s '%s': %s", kname, id, e.msg);
            return KB_OK;
        }
        if (rc != KB_OK) {
            if (err != NULL) {
                *err = e;
            }
            return rc;
        }
        now.mv_size = s->enc.len;
        now.mv_data = s->enc.data;
    }

    MDB_val key = val_str(id);
    id_entry ent;
    int found;
    rc = lookup_id(&ent, &found, s, txn, id, key.mv_size, LOOKUP_OWN_ID, err);
    if (rc != KB_OK) {
        return rc;
    }
    if (found) {
        if (ent.kind != (unsigned)rec->kind) {
            *res = set_reason(b, i, KB_PUT_CONFLICT, "%s '%s': id is already used by a %s",
                              kname, id, kind_name(ent.kind));
            return KB_OK;
        }
        MDB_val old;
        rc = record_bytes(&old, txn, s, key, &ent, err);
        if (rc != KB_OK) {
            return rc;
        }
        /* the encoding is canonical: equal bytes <=> equal records (kb/codec.h) */
        *res = val_eq(&old, &now) ? KB_PUT_DUPLICATE
                                  : set_reason(b, i, KB_PUT_CONFLICT,
                                               "%s '%s': id exists with different content",
                                               kname, id);
        return KB_OK;
    }
    if (rec->kind == KB_RECORD_RUN) {
        rc = check_run_refs(res, s, txn, b, i, err);
        if (rc != KB_OK || *res != KB_PUT_ADDED) {
            return rc;
        }
        rc = add_run(s, txn, ps, &rec->run, key, hash_bytes(id, key.mv_size), now, err);
    } else {
        if (rec->kind == KB_RECORD_STUDY) {
            rc = check_study_refs(res, s, txn, b, i, err);
            if (rc != KB_OK || *res != KB_PUT_ADDED) {
                return rc;
            }
        }
        rc = add_keyed(s, txn, rec, key, hash_bytes(id, key.mv_size), now, err);
        ps->tasks_added |= rec->kind == KB_RECORD_TASK;
    }
    *res = KB_PUT_ADDED;
    return rc;
}

static int put_batch_body(kb_store *s, MDB_txn *txn, void *ctx, kb_error *err)
{
    const batch *b = ctx;
    put_state ps;
    memset(&ps, 0, sizeof ps);
    s->idx_n = 0;
    int rc = tbl_reset(s, b->n, err);
    if (rc == KB_OK) {
        rc = meta_load(&ps.m, txn, s, err);
    }
    s->batch_fresh = 0;
    if (rc == KB_OK) {
        rc = ids_cursors_open(s, txn, err);
    }
    if (rc == KB_OK) {
        rc = ids_fresh(&s->batch_fresh, s, b, err);
    }
    for (size_t i = 0; rc == KB_OK && i < b->n; i++) {
        if (b->reasons != NULL) {
            b->reasons[i][0] = '\0';
        }
        rc = put_one(&b->results[i], s, txn, &ps, b, i, err);
    }
    if (ps.runs != NULL) {
        mdb_cursor_close(ps.runs);
    }
    ids_cursors_close(s); /* before tbl_flush writes the id map */
    s->batch_fresh = 0;
    if (rc == KB_OK && (b->flags & KB_STORE_PUT_ALL_OR_NOTHING)) {
        size_t n_refused = 0;
        for (size_t i = 0; i < b->n; i++) {
            n_refused += b->results[i] == KB_PUT_CONFLICT || b->results[i] == KB_PUT_REJECTED;
        }
        if (n_refused > 0) {
            return kb_error_set(err, KB_ECANCELED, "batch not written: %zu record%s refused",
                                n_refused, n_refused == 1 ? "" : "s");
        }
    }
    if (rc == KB_OK) {
        rc = idx_flush(s, txn, err);
    }
    if (rc == KB_OK) {
        rc = tbl_flush(s, txn, err);
    }
    if (rc == KB_OK) {
        rc = merge_recent_ids(s, txn, err);
    }
    if (rc == KB_OK && ps.meta_dirty) {
        rc = meta_store(&ps.m, txn, s, err);
    }
    if (rc == KB_OK && ps.tasks_added) {
        rc = tasks_generation_bump(txn, s, err);
    }
    return rc;
}

int kb_store_put_batch(kb_store *store, const kb_record *recs, size_t n, kb_put_result *results,
                       char (*reasons)[KB_ERROR_MSG_SIZE], kb_error *err)
{
    return kb_store_put_batch_flags(store, recs, n, 0, results, reasons, err);
}

int kb_store_put_batch_flags(kb_store *store, const kb_record *recs, size_t n, unsigned flags,
                             kb_put_result *results, char (*reasons)[KB_ERROR_MSG_SIZE],
                             kb_error *err)
{
    return kb_store__put_batch_encoded(store, recs, NULL, NULL, n, flags, results, reasons,
                                       err);
}

int kb_store__put_batch_encoded(kb_store *store, const kb_record *recs,
                                const unsigned char *const *enc, const size_t *enc_len,
                                size_t n, unsigned flags, kb_put_result *results,
                                char (*reasons)[KB_ERROR_MSG_SIZE], kb_error *err)
{
    KB_CHECK_ARG(store != NULL);
    KB_CHECK_ARG(n == 0 || (recs != NULL && results != NULL));
    KB_CHECK_ARG(enc == NULL || enc_len != NULL);
    KB_CHECK_ARG((flags & ~(unsigned)KB_STORE_PUT_ALL_OR_NOTHING) == 0);
    batch b = {recs, enc, enc_len, n, results, reasons, flags};
    return write_txn(store, put_batch_body, &b, err);
}

/* --- update ------------------------------------------------------------------------------- */

/* Take `seq` out of `key`'s ranges in run index `db` (splitting the range that holds it) */
static int idx_del(MDB_txn *txn, const kb_store *s, kb_store__db db, kb_codec_str key,
                   uint64_t seq, kb_error *err)
{
    if (key.ptr == NULL) {
        return KB_OK;
    }
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, s->dbi[db], &cur);
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "updating an index");
    }
    MDB_val k = val_view(key);
    uint64_t f, l;
    int found;
    int rc = range_find(&found, &f, &l, cur, k, seq, err);
    if (rc == KB_OK && found) {
        rc = seq > f ? range_replace(txn, cur, s->dbi[db], k, f, seq - 1, 1, err)
                     : range_replace(txn, cur, s->dbi[db], k, 1, 0, 1, err);
        if (rc == KB_OK && seq < l) {
            rc = range_replace(txn, cur, s->dbi[db], k, seq + 1, l, 0, err);
        }
    }
    mdb_cursor_close(cur);
    return rc;
}

/*
 * The stored record that an update of `id` (of `kind`, already encoded in s->enc) replaces:
 * KB_ENOTFOUND if there is none; *same when the new encoding is byte-identical (a no-op).
 */
static int stored_for_update(MDB_val *old, id_entry *ent, int *same, kb_store *s, MDB_txn *txn,
                             const char *id, unsigned kind, kb_error *err)
{
    MDB_val key = val_str(id);
    int found = 0, rc = KB_OK;
    if (key_ok(s, id)) {
        rc = ids_get(ent, &found, txn, s, key, err);
    }
    if (rc == KB_OK && (!found || ent->kind != kind)) {
        rc = kb_error_set(err, KB_ENOTFOUND, "%s '%s' not found", kind_name(kind), id);
    }
    if (rc == KB_OK) {
        rc = record_bytes(old, txn, s, key, ent, err);
    }
    MDB_val now = {s->enc.len, s->enc.data};
    *same = rc == KB_OK && val_eq(old, &now);
    return rc;
}

static int update_body(kb_store *s, MDB_txn *txn, void *ctx, kb_error *err)
{
    const kb_run *r = ctx;
    kb_buf_reset(&s->enc);
    int rc = kb_codec_encode_run(&s->enc, r, err);
    id_entry ent;
    MDB_val old, now = {s->enc.len, s->enc.data};
    int same = 0;
    if (rc == KB_OK) {
        rc = stored_for_update(&old, &ent, &same, s, txn, r->id, KB_RECORD_RUN, err);
    }
    if (rc != KB_OK || same) {
        return rc;
    }
    if (r->task_id == NULL || !key_ok(s, r->task_id)) {
        return kb_error_set(err, KB_EINVAL, "run '%s': task_id is missing or too long", r->id);
    }
    if ((r->space != NULL && !key_ok(s, r->space)) ||
        (r->backbone_id != NULL && !key_ok(s, r->backbone_id)) ||
        (r->team != NULL && !key_ok(s, r->team)) ||
        (r->study_id != NULL && !key_ok(s, r->study_id))) {
        return kb_error_set(err, KB_EINVAL, "run '%s': a space, backbone, team or study_id is "
                            "empty or too long", r->id);
    }
    int yes;
    rc = has_kind(&yes, txn, s, r->task_id, KB_RECORD_TASK, err);
    if (rc == KB_OK && !yes) {
        rc = kb_error_set(err, KB_ENOTFOUND, "run '%s': unknown task '%s'", r->id, r->task_id);
    }
    if (rc == KB_OK && r->backbone_id != NULL) {
        rc = has_kind(&yes, txn, s, r->backbone_id, KB_RECORD_BACKBONE, err);
        if (rc == KB_OK && !yes) {
            rc = kb_error_set(err, KB_ENOTFOUND, "run '%s': unknown backbone '%s'", r->id,
                              r->backbone_id);
        }
    }
    meta m;
    kb_codec_run_head h;
    kb_codec_str old_study;
    if (rc == KB_OK) {
        rc = meta_load(&m, txn, s, err);
    }
    if (rc == KB_OK) {
        rc = kb_codec_peek_run(&h, old.mv_data, old.mv_size, err);
    }
    if (rc == KB_OK) {
        rc = kb_codec__peek_run_study(&old_study, old.mv_data, old.mv_size, err);
    }
    if (rc != KB_OK) {
        return rc;
    }
    unsigned char seqkey[SEQ_BYTES];
    kb_be64_encode(seqkey, ent.seq);
    /* `h` borrows from the old record's page: drop its index entries before rewriting it */
    rc = idx_del(txn, s, KB_STORE__DB_IDX_TASK_RUNS, h.task_id, ent.seq, err);
    if (rc == KB_OK) {
        rc = idx_del(txn, s, KB_STORE__DB_IDX_SPACE_RUNS, h.space, ent.seq, err);
    }
    if (rc == KB_OK) {
        rc = idx_del(txn, s, KB_STORE__DB_IDX_BACKBONE_RUNS, h.backbone_id, ent.seq, err);
    }
    if (rc == KB_OK && old_study.len > 0 && old_study.len <= (size_t)s->max_key) {
        rc = idx_del(txn, s, KB_STORE__DB_IDX_STUDY_RUNS, old_study, ent.seq, err);
    }
    if (rc != KB_OK) {
        return rc;
    }
    if (m.by_status[h.status] > 0) {
        m.by_status[h.status]--;
    }
    m.by_status[r->status]++;
    MDB_val k = {SEQ_BYTES, seqkey};
    int mrc = mdb_put(txn, s->dbi[KB_STORE__DB_RUNS], &k, &now, 0);
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "writing a run");
    }
    rc = idx_put_run(txn, s, r, ent.seq, err);
    if (rc == KB_OK) {
        rc = meta_store(&m, txn, s, err);
    }
    return rc;
}

int kb_store_update_run(kb_store *store, const kb_run *run, kb_error *err)
{
    KB_CHECK_ARG(store != NULL && run != NULL && run->id != NULL);
    return write_txn(store, update_body, (void *)run, err);
}

static int update_study_body(kb_store *s, MDB_txn *txn, void *ctx, kb_error *err)
{
    const kb_study *st = ctx;
    kb_buf_reset(&s->enc);
    int rc = kb_codec_encode_study(&s->enc, st, err);
    id_entry ent;
    MDB_val old, key = val_str(st->id), now = {s->enc.len, s->enc.data};
    int same = 0;
    if (rc == KB_OK) {
        rc = stored_for_update(&old, &ent, &same, s, txn, st->id, KB_RECORD_STUDY, err);
    }
    if (rc != KB_OK || same) {
        return rc;
    }
    if (st->task_id == NULL || !key_ok(s, st->task_id) || st->space == NULL ||
        st->space[0] == '\0' || (st->team != NULL && !key_ok(s, st->team))) {
        return kb_error_set(err, KB_EINVAL,
                            "study '%s': task_id or space missing, or a key field too long",
                            st->id);
    }
    for (size_t j = 0; j < st->n_neighbours; j++) {
        if (st->neighbours[j] == NULL) {
            return kb_error_set(err, KB_EINVAL, "study '%s': neighbour %zu has no id", st->id,
                                j);
        }
    }
    int yes;
    rc = has_kind(&yes, txn, s, st->task_id, KB_RECORD_TASK, err);
    if (rc == KB_OK && !yes) {
        return kb_error_set(err, KB_ENOTFOUND, "study '%s': unknown task '%s'", st->id,
                            st->task_id);
    }
    if (rc != KB_OK) {
        return rc;
    }
    int mrc = mdb_put(txn, s->dbi[KB_STORE__DB_STUDIES], &key, &now, 0);
    return mrc == MDB_SUCCESS ? KB_OK : mdb_fail(err, mrc, "writing a study");
}

int kb_store_update_study(kb_store *store, const kb_study *study, kb_error *err)
{
    KB_CHECK_ARG(store != NULL && study != NULL && study->id != NULL);
    return write_txn(store, update_study_body, (void *)study, err);
}

/* --- get ---------------------------------------------------------------------------------- */

static int read_begin(MDB_txn **txn, kb_store *s, kb_error *err)
{
    return txn_begin(txn, s, MDB_RDONLY, err);
}

static int decode_kind(void *out, unsigned kind, const MDB_val *v, kb_error *err)
{
    switch (kind) {
    case KB_RECORD_TASK: return kb_codec_decode_task(out, v->mv_data, v->mv_size, err);
    case KB_RECORD_RUN: return kb_codec_decode_run(out, v->mv_data, v->mv_size, err);
    case KB_RECORD_BACKBONE: return kb_codec_decode_backbone(out, v->mv_data, v->mv_size, err);
    case KB_RECORD_STUDY: return kb_codec_decode_study(out, v->mv_data, v->mv_size, err);
    default: return kb_codec_decode_space(out, v->mv_data, v->mv_size, err);
    }
}

/* `out` (of `size` bytes) is zeroed first, so it owns nothing on failure */
static int get_record(void *out, size_t size, kb_store *s, const char *id, unsigned kind,
                      kb_error *err)
{
    KB_CHECK_ARG(out != NULL && s != NULL && id != NULL);
    memset(out, 0, size);
    MDB_txn *txn = NULL;
    int rc = read_begin(&txn, s, err);
    if (rc != KB_OK) {
        return rc;
    }
    id_entry ent;
    int found = 0;
    MDB_val key = val_str(id), v;
    if (key.mv_size == 0 || key.mv_size > (size_t)s->max_key) {
        rc = KB_OK; /* cannot be stored */
    } else {
        rc = ids_get(&ent, &found, txn, s, key, err);
    }
    if (rc == KB_OK && (!found || ent.kind != kind)) {
        rc = kb_error_set(err, KB_ENOTFOUND, "%s '%s' not found", kind_name(kind), id);
    }
    if (rc == KB_OK) {
        rc = record_bytes(&v, txn, s, key, &ent, err);
    }
    if (rc == KB_OK) {
        rc = decode_kind(out, kind, &v, err);
        if (rc != KB_OK) {
            kb_error_prefix(err, "%s '%s'", kind_name(kind), id);
        }
    }
    mdb_txn_abort(txn);
    return rc;
}

int kb_store_get_task(kb_task *out, kb_store *store, const char *id, kb_error *err)
{
    return get_record(out, sizeof *out, store, id, KB_RECORD_TASK, err);
}

int kb_store_get_run(kb_run *out, kb_store *store, const char *id, kb_error *err)
{
    return get_record(out, sizeof *out, store, id, KB_RECORD_RUN, err);
}

int kb_store_get_backbone(kb_backbone *out, kb_store *store, const char *id, kb_error *err)
{
    return get_record(out, sizeof *out, store, id, KB_RECORD_BACKBONE, err);
}

int kb_store_get_space(kb_space *out, kb_store *store, const char *name, kb_error *err)
{
    return get_record(out, sizeof *out, store, name, KB_RECORD_SPACE, err);
}

int kb_store_get_study(kb_study *out, kb_store *store, const char *id, kb_error *err)
{
    return get_record(out, sizeof *out, store, id, KB_RECORD_STUDY, err);
}

int kb_store_find_kind(kb_record_kind *out, kb_store *store, const char *id, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && store != NULL && id != NULL);
    MDB_txn *txn = NULL;
    int rc = read_begin(&txn, store, err);
    if (rc != KB_OK) {
        return rc;
    }
    id_entry ent;
    int found = 0;
    MDB_val key = val_str(id);
    if (key.mv_size > 0 && key.mv_size <= (size_t)store->max_key) {
        rc = ids_get(&ent, &found, txn, store, key, err);
    }
    mdb_txn_abort(txn);
    if (rc == KB_OK && !found) {
        rc = kb_error_set(err, KB_ENOTFOUND, "no record has id '%s'", id);
    }
    if (rc == KB_OK) {
        *out = (kb_record_kind)ent.kind;
    }
    return rc;
}

/* --- iteration ---------------------------------------------------------------------------- */

/*
 * One iteration: a read transaction, a decoded record reused for each visit, the caller's
 * callback and the match counter for `limit`.
 */
typedef struct visit {
    kb_store *s;
    MDB_txn *txn;
    const kb_store_filter *f;
    unsigned kind;
    kb_store_task_cb task_cb; /* the one matching `kind` is set */
    kb_store_run_cb run_cb;
    kb_store_backbone_cb backbone_cb;
    kb_store_space_cb space_cb;
    kb_store_study_cb study_cb;
    void *payload;
    size_t n_matched;
    int stop;              /* limit reached */
    kb_codec__arena arena; /* runs are decoded into it: one allocation per block, not per field */
} visit;

static int matches(const visit *vi, const MDB_val *v, kb_error *err)
{
    const kb_store_filter *f = vi->f;
    if (vi->kind == KB_RECORD_RUN) {
        kb_codec_run_head h;
        int rc = kb_codec_peek_run(&h, v->mv_data, v->mv_size, err);
        if (rc != KB_OK) {
            return rc;
        }
        int m = (f->task_id == NULL || view_eq(h.task_id, f->task_id)) &&
                (f->space == NULL || view_eq(h.space, f->space)) &&
                (f->backbone_id == NULL || view_eq(h.backbone_id, f->backbone_id)) &&
                (f->team == NULL || view_eq(h.team, f->team)) &&
                (f->status < 0 || (int)h.status == f->status);
        if (m && f->study_id != NULL) {
            kb_codec_str sid;
            rc = kb_codec__peek_run_study(&sid, v->mv_data, v->mv_size, err);
            if (rc != KB_OK) {
                return rc;
            }
            m = view_eq(sid, f->study_id);
        }
        return m;
    }
    if (vi->kind == KB_RECORD_STUDY) {
        kb_codec_str id, team, task;
        int rc = kb_codec__peek_study(&id, &team, &task, v->mv_data, v->mv_size, err);
        if (rc != KB_OK) {
            return rc;
        }
        return (f->team == NULL || view_eq(team, f->team)) &&
               (f->task_id == NULL || view_eq(task, f->task_id));
    }
    if (f->team != NULL && vi->kind != KB_RECORD_SPACE) {
        kb_codec_str id, team;
        int rc = kb_codec_peek_id(&id, &team, vi->kind, v->mv_data, v->mv_size, err);
        if (rc != KB_OK) {
            return rc;
        }
        return view_eq(team, f->team);
    }
    return 1;
}

/* Filter, decode and hand one stored record to the callback; non-zero stops the iteration */
static int visit_one(visit *vi, const MDB_val *v, kb_error *err)
{
    int m = matches(vi, v, err);
    if (m <= 0) {
        return m < 0 ? m : KB_OK;
    }
    union {
        kb_task t;
        kb_run r;
        kb_backbone b;
        kb_space sp;
        kb_study st;
    } rec;
    int rc = vi->kind == KB_RECORD_RUN
                 ? kb_codec__decode_run_in(&rec.r, v->mv_data, v->mv_size, &vi->arena, err)
                 : decode_kind(&rec, vi->kind, v, err);
    if (rc != KB_OK) {
        return rc;
    }
    switch (vi->kind) {
    case KB_RECORD_TASK:
        rc = vi->task_cb(&rec.t, vi->payload);
        kb_task_release(&rec.t);
        break;
    case KB_RECORD_RUN:
        rc = vi->run_cb(&rec.r, vi->payload);
        kb_codec__arena_reset(&vi->arena);
        break;
    case KB_RECORD_BACKBONE:
        rc = vi->backbone_cb(&rec.b, vi->payload);
        kb_backbone_release(&rec.b);
        break;
    case KB_RECORD_STUDY:
        rc = vi->study_cb(&rec.st, vi->payload);
        kb_study_release(&rec.st);
        break;
    default:
        rc = vi->space_cb(&rec.sp, vi->payload);
        kb_space_release(&rec.sp);
        break;
    }
    if (rc != 0) {
        return rc;
    }
    vi->n_matched++;
    if (vi->f->limit > 0 && vi->n_matched >= vi->f->limit) {
        vi->stop = 1;
    }
    return KB_OK;
}

static int scan_db(visit *vi, kb_store__db db, kb_error *err)
{
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(vi->txn, vi->s->dbi[db], &cur);
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "opening a cursor");
    }
    MDB_val k, v;
    int rc = KB_OK;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == MDB_SUCCESS && !vi->stop;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        rc = visit_one(vi, &v, err);
        if (rc != KB_OK) {
            break;
        }
    }
    if (rc == KB_OK && mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND) {
        rc = mdb_fail(err, mrc, "scanning");
    }
    mdb_cursor_close(cur);
    return rc;
}

/* Visit the records an index lists under `key` (run seqs, or task ids for team -> tasks) */
static int scan_index(visit *vi, kb_store__db idx, const char *key, kb_error *err)
{
    MDB_val k = val_str(key), v;
    if (k.mv_size == 0 || k.mv_size > (size_t)vi->s->max_key) {
        return KB_OK;
    }
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(vi->txn, vi->s->dbi[idx], &cur);
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "opening a cursor");
    }
    int to_tasks = idx == KB_STORE__DB_IDX_TEAM_TASKS;
    MDB_dbi target = vi->s->dbi[to_tasks ? KB_STORE__DB_TASKS : KB_STORE__DB_RUNS];
    int rc = KB_OK;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); mrc == MDB_SUCCESS && !vi->stop;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        uint64_t first = 0, last = 0;
        if (!to_tasks && v.mv_size != RANGE_BYTES) {
            rc = kb_error_set(err, KB_ECORRUPT, "%s: entry for '%s' is not a range",
                              db_defs[idx].name, key);
            break;
        }
        if (!to_tasks) {
            range_decode(&v, &first, &last);
        }
        /* a range's runs in seq order; a team's entry is one task id */
        for (uint64_t seq = first; rc == KB_OK && !vi->stop && seq <= last; seq++) {
            unsigned char seqkey[SEQ_BYTES];
            MDB_val id = v, rec;
            if (!to_tasks) {
                kb_be64_encode(seqkey, seq);
                id.mv_size = SEQ_BYTES;
                id.mv_data = seqkey;
            }
            int g = mdb_get(vi->txn, target, &id, &rec);
            if (g == MDB_NOTFOUND) {
                rc = kb_error_set(err, KB_ECORRUPT,
                                  "%s: entry for '%s' points to a missing record",
                                  db_defs[idx].name, key);
            } else if (g != MDB_SUCCESS) {
                rc = mdb_fail(err, g, "reading a record");
            } else {
                rc = visit_one(vi, &rec, err);
            }
            if (seq == UINT64_MAX) {
                break;
            }
        }
        if (rc != KB_OK) {
            break;
        }
    }
    if (rc == KB_OK && mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND) {
        rc = mdb_fail(err, mrc, "scanning an index");
    }
    mdb_cursor_close(cur);
    return rc;
}

/* Visit the single record `id` of the visit's kind, if it exists */
static int visit_id(visit *vi, const char *id, kb_error *err)
{
    MDB_val key = val_str(id), v;
    if (key.mv_size == 0 || key.mv_size > (size_t)vi->s->max_key) {
        return KB_OK;
    }
    int mrc = mdb_get(vi->txn, vi->s->dbi[kind_db(vi->kind)], &key, &v);
    if (mrc == MDB_NOTFOUND) {
        return KB_OK;
    }
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "reading a record");
    }
    return visit_one(vi, &v, err);
}

/* `vi` has its kind, callback and payload set */
static int foreach_kind(visit *vi_in, kb_store *s, const kb_store_filter *f, kb_error *err)
{
    kb_store_filter all = KB_STORE_FILTER_INIT;
    visit vi = *vi_in;
    unsigned kind = vi.kind;
    vi.s = s;
    vi.f = f != NULL ? f : &all;
    int rc = read_begin(&vi.txn, s, err);
    if (rc != KB_OK) {
        return rc;
    }
    f = vi.f;
    s->iterating++;
    switch (kind) {
    case KB_RECORD_RUN:
        if (f->study_id != NULL) {
            rc = scan_index(&vi, KB_STORE__DB_IDX_STUDY_RUNS, f->study_id, err);
        } else if (f->task_id != NULL) {
            rc = scan_index(&vi, KB_STORE__DB_IDX_TASK_RUNS, f->task_id, err);
        } else if (f->backbone_id != NULL) {
            rc = scan_index(&vi, KB_STORE__DB_IDX_BACKBONE_RUNS, f->backbone_id, err);
        } else if (f->space != NULL) {
            rc = scan_index(&vi, KB_STORE__DB_IDX_SPACE_RUNS, f->space, err);
        } else {
            rc = scan_db(&vi, KB_STORE__DB_RUNS, err);
        }
        break;
    case KB_RECORD_TASK:
        if (f->task_id != NULL) {
            rc = visit_id(&vi, f->task_id, err);
        } else if (f->team != NULL) {
            rc = scan_index(&vi, KB_STORE__DB_IDX_TEAM_TASKS, f->team, err);
        } else {
            rc = scan_db(&vi, KB_STORE__DB_TASKS, err);
        }
        break;
    case KB_RECORD_BACKBONE:
        rc = f->backbone_id != NULL ? visit_id(&vi, f->backbone_id, err)
                                    : scan_db(&vi, KB_STORE__DB_BACKBONES, err);
        break;
    case KB_RECORD_STUDY:
        rc = scan_db(&vi, KB_STORE__DB_STUDIES, err);
        break;
    default:
        rc = f->space != NULL ? visit_id(&vi, f->space, err)
                              : scan_db(&vi, KB_STORE__DB_SPACES, err);
        break;
    }
    s->iterating--;
    kb_codec__arena_release(&vi.arena);
    mdb_txn_abort(vi.txn);
    return rc;
}

int kb_store_foreach_task(kb_store *store, const kb_store_filter *f, kb_store_task_cb cb,
                          void *payload, kb_error *err)
{
    KB_CHECK_ARG(store != NULL && cb != NULL);
    visit vi = {.kind = KB_RECORD_TASK, .task_cb = cb, .payload = payload};
    return foreach_kind(&vi, store, f, err);
}

int kb_store_foreach_run(kb_store *store, const kb_store_filter *f, kb_store_run_cb cb,
                         void *payload, kb_error *err)
{
    KB_CHECK_ARG(store != NULL && cb != NULL);
    visit vi = {.kind = KB_RECORD_RUN, .run_cb = cb, .payload = payload};
    return foreach_kind(&vi, store, f, err);
}

int kb_store_foreach_backbone(kb_store *store, const kb_store_filter *f,
                              kb_store_backbone_cb cb, void *payload, kb_error *err)
{
    KB_CHECK_ARG(store != NULL && cb != NULL);
    visit vi = {.kind = KB_RECORD_BACKBONE, .backbone_cb = cb, .payload = payload};
    return foreach_kind(&vi, store, f, err);
}

int kb_store_foreach_space(kb_store *store, const kb_store_filter *f, kb_store_space_cb cb,
                           void *payload, kb_error *err)
{
    KB_CHECK_ARG(store != NULL && cb != NULL);
    visit vi = {.kind = KB_RECORD_SPACE, .space_cb = cb, .payload = payload};
    return foreach_kind(&vi, store, f, err);
}

int kb_store_foreach_study(kb_store *store, const kb_store_filter *f, kb_store_study_cb cb,
                           void *payload, kb_error *err)
{
    KB_CHECK_ARG(store != NULL && cb != NULL);
    visit vi = {.kind = KB_RECORD_STUDY, .study_cb = cb, .payload = payload};
    return foreach_kind(&vi, store, f, err);
}

/* --- stats -------------------------------------------------------------------------------- */

static size_t db_entries(MDB_txn *txn, const kb_store *s, kb_store__db db)
{
    MDB_stat st;
    return mdb_stat(txn, s->dbi[db], &st) == MDB_SUCCESS ? st.ms_entries : 0;
}

/* Distinct keys of a DUPSORT database */
static int count_keys(size_t *out, MDB_txn *txn, const kb_store *s, kb_store__db db,
                      kb_error *err)
{
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(txn, s->dbi[db], &cur);
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "opening a cursor");
    }
    MDB_val k, v;
    size_t n = 0;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == MDB_SUCCESS;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP)) {
        n++;
    }
    mdb_cursor_close(cur);
    *out = n;
    return mrc == MDB_NOTFOUND ? KB_OK : mdb_fail(err, mrc, "counting");
}

int kb_store_stats_get(kb_store_stats *out, kb_store *store, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && store != NULL);
    memset(out, 0, sizeof *out);
    MDB_txn *txn = NULL;
    int rc = read_begin(&txn, store, err);
    if (rc != KB_OK) {
        return rc;
    }
    meta m;
    rc = meta_load(&m, txn, store, err);
    if (rc == KB_OK) {
        rc = count_keys(&out->n_teams, txn, store, KB_STORE__DB_IDX_TEAM_TASKS, err);
    }
    if (rc == KB_OK) {
        out->n_tasks = db_entries(txn, store, KB_STORE__DB_TASKS);
        out->n_runs = db_entries(txn, store, KB_STORE__DB_RUNS);
        out->n_backbones = db_entries(txn, store, KB_STORE__DB_BACKBONES);
        out->n_spaces = db_entries(txn, store, KB_STORE__DB_SPACES);
        out->n_studies = db_entries(txn, store, KB_STORE__DB_STUDIES);
        for (int i = 0; i < N_STATUS; i++) {
            out->n_runs_by_status[i] = (size_t)m.by_status[i];
        }
        out->schema_version = (int)m.schema_version;
        MDB_envinfo info;
        MDB_stat st;
        mdb_env_info(store->env, &info);
        mdb_env_stat(store->env, &st);
        out->map_bytes = info.me_mapsize;
        out->used_bytes = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
    }
    mdb_txn_abort(txn);
    return rc;
}

/* --- task generation and cache ----------------------------------------------------------- */

int kb_store_tasks_generation(uint64_t *out, kb_store *store, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && store != NULL);
    *out = 0;
    MDB_txn *txn = NULL;
    int rc = read_begin(&txn, store, err);
    if (rc == KB_OK) {
        rc = tasks_generation_load(out, txn, store, err);
        mdb_txn_abort(txn);
    }
    return rc;
}

static int cache_name_ok(const kb_store *s, const char *name, kb_error *err)
{
    if (name == NULL || !key_ok(s, name)) {
        return kb_error_set(err, KB_EINVAL, "cache name is missing, empty or longer than %d "
                            "bytes", s->max_key);
    }
    return KB_OK;
}

/* The value under `name` split into generation and data; KB_ENOTFOUND / KB_ECORRUPT */
static int cache_read(MDB_val *data, uint64_t *gen, MDB_txn *txn, const kb_store *s,
                      const char *name, kb_error *err)
{
    MDB_val k = val_str(name), v;
    int mrc = mdb_get(txn, s->dbi[KB_STORE__DB_CACHE], &k, &v);
    if (mrc == MDB_NOTFOUND) {
        return kb_error_set(err, KB_ENOTFOUND, "cache: no value named '%s'", name);
    }
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "reading the cache");
    }
    if (v.mv_size < CACHE_HEADER_BYTES) {
        return kb_error_set(err, KB_ECORRUPT, "cache: '%s' has %zu bytes, less than its header",
                            name, v.mv_size);
    }
    *gen = kb_be64_decode(v.mv_data);
    data->mv_size = v.mv_size - CACHE_HEADER_BYTES;
    data->mv_data = (char *)v.mv_data + CACHE_HEADER_BYTES;
    return KB_OK;
}

int kb_store_cache_get(kb_store *store, const char *name, void **data, size_t *len,
                       uint64_t *generation, kb_error *err)
{
    KB_CHECK_ARG(store != NULL && data != NULL && len != NULL);
    *data = NULL;
    *len = 0;
    int rc = cache_name_ok(store, name, err);
    if (rc != KB_OK) {
        return rc == KB_EINVAL ? kb_error_set(err, KB_ENOTFOUND, "cache: no value named '%s'",
                                              name != NULL ? name : "(null)")
                               : rc;
    }
    MDB_txn *txn = NULL;
    rc = read_begin(&txn, store, err);
    if (rc != KB_OK) {
        return rc;
    }
    MDB_val v;
    uint64_t gen = 0;
    rc = cache_read(&v, &gen, txn, store, name, err);
    if (rc == KB_OK && v.mv_size > 0) {
        *data = kb_malloc(v.mv_size);
        if (*data == NULL) {
            rc = kb_error_set(err, KB_ENOMEM, "cache: out of memory for '%s' (%zu bytes)", name,
                              v.mv_size);
        } else {
            memcpy(*data, v.mv_data, v.mv_size);
            *len = v.mv_size;
        }
    }
    mdb_txn_abort(txn);
    if (rc == KB_OK && generation != NULL) {
        *generation = gen;
    }
    return rc;
}

typedef struct cache_put_args {
    const char *name;
    const void *data;
    size_t len;
    uint64_t generation;
} cache_put_args;

static int cache_put_body(kb_store *s, MDB_txn *txn, void *ctx, kb_error *err)
{
    const cache_put_args *a = ctx;
    MDB_val k = val_str(a->name), v = {a->len + CACHE_HEADER_BYTES, NULL};
    /* MDB_RESERVE: LMDB hands back the space and we write into it, saving one copy */
    int mrc = mdb_put(txn, s->dbi[KB_STORE__DB_CACHE], &k, &v, MDB_RESERVE);
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "writing the cache");
    }
    unsigned char *p = v.mv_data;
    kb_be64_encode(p, a->generation);
    memset(p + 8, 0, CACHE_HEADER_BYTES - 8);
    if (a->len > 0) {
        memcpy(p + CACHE_HEADER_BYTES, a->data, a->len);
    }
    return KB_OK;
}

int kb_store_cache_put(kb_store *store, const char *name, const void *data, size_t len,
                       uint64_t generation, kb_error *err)
{
    KB_CHECK_ARG(store != NULL && (data != NULL || len == 0));
    KB_CHECK_ARG(len <= SIZE_MAX - CACHE_HEADER_BYTES);
    int rc = cache_name_ok(store, name, err);
    if (rc != KB_OK) {
        return rc;
    }
    cache_put_args a = {name, data, len, generation};
    return write_txn(store, cache_put_body, &a, err);
}

struct kb_store_cache_view {
    kb_store *s;
    MDB_txn *txn;
    const void *data;
    size_t len;
    uint64_t generation, tasks_generation;
    void *copy; /* an aligned copy when the mapped bytes are not 8-byte aligned */
};

int kb_store_cache_view_open(kb_store_cache_view **out, kb_store *store, const char *name,
                             kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    *out = NULL;
    KB_CHECK_ARG(store != NULL);
    if (name == NULL || !key_ok(store, name)) {
        return kb_error_set(err, KB_ENOTFOUND, "cache: no value named '%s'",
                            name != NULL ? name : "(null)");
    }
    kb_store_cache_view *v = kb_calloc(1, sizeof *v);
    if (v == NULL) {
        return kb_error_set(err, KB_ENOMEM, "cache view: out of memory");
    }
    v->s = store;
    int rc = read_begin(&v->txn, store, err);
    if (rc != KB_OK) {
        kb_free(v);
        return rc;
    }
    store->iterating++; /* the view pins the map: no growth while it is open */
    rc = tasks_generation_load(&v->tasks_generation, v->txn, store, err);
    MDB_val data = {0, NULL};
    if (rc == KB_OK) {
        rc = cache_read(&data, &v->generation, v->txn, store, name, err);
    }
    if (rc == KB_OK && ((uintptr_t)data.mv_data % 8) != 0 && data.mv_size > 0) {
        /* values small enough to sit inside a B-tree leaf are only 2-byte aligned */
        v->copy = kb_malloc(data.mv_size);
        if (v->copy == NULL) {
            rc = kb_error_set(err, KB_ENOMEM, "cache view: out of memory");
        } else {
            memcpy(v->copy, data.mv_data, data.mv_size);
            data.mv_data = v->copy;
        }
    }
    if (rc != KB_OK) {
        kb_store_cache_view_close(v);
        return rc;
    }
    v->data = data.mv_data;
    v->len = data.mv_size;
    *out = v;
    return KB_OK;
}

void kb_store_cache_view_close(kb_store_cache_view *view)
{
    if (view == NULL) {
        return;
    }
    mdb_txn_abort(view->txn);
    view->s->iterating--;
    kb_free(view->copy);
    kb_free(view);
}

const void *kb_store_cache_view_data(const kb_store_cache_view *view)
{
    return view->data;
}

size_t kb_store_cache_view_len(const kb_store_cache_view *view)
{
    return view->len;
}

uint64_t kb_store_cache_view_generation(const kb_store_cache_view *view)
{
    return view->generation;
}

uint64_t kb_store_cache_view_tasks_generation(const kb_store_cache_view *view)
{
    return view->tasks_generation;
}

/* --- check -------------------------------------------------------------------------------- */

typedef struct checker {
    kb_store *s;
    MDB_txn *txn;
    kb_store_problem_fn fn;
    void *payload;
    size_t n_problems;
    meta m;
    uint64_t by_status[N_STATUS];
} checker;

static void problem(checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(checker *c, const char *fmt, ...)
{
    c->n_problems++;
    if (c->fn == NULL) {
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->fn(msg, c->payload);
}

/* Does the DUPSORT index `db` hold (key, val)? */
static int idx_has(checker *c, kb_store__db db, MDB_val key, MDB_val val, kb_error *err,
                   int *yes)
{
    *yes = 0;
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(c->txn, c->s->dbi[db], &cur);
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "opening a cursor");
    }
    if (db == KB_STORE__DB_IDX_TEAM_TASKS) {
        mrc = mdb_cursor_get(cur, &key, &val, MDB_GET_BOTH);
        mdb_cursor_close(cur);
        *yes = mrc == MDB_SUCCESS;
        return mrc == MDB_SUCCESS || mrc == MDB_NOTFOUND ? KB_OK : mdb_fail(err, mrc, "checking");
    }
    uint64_t f, l;
    kb_error local = KB_ERROR_INIT;
    int rc = range_find(yes, &f, &l, cur, key, kb_be64_decode(val.mv_data), &local);
    mdb_cursor_close(cur);
    if (rc == KB_ECORRUPT) {
        return KB_OK; /* reported when the index is walked */
    }
    if (rc != KB_OK && err != NULL) {
        *err = local;
    }
    return rc;
}

/* The id map must send `id` to (kind, seq) */
static int check_id_entry(checker *c, MDB_val id, unsigned kind, uint64_t seq, const char *what,
                          kb_error *err)
{
    id_entry e;
    int found;
    kb_error local = KB_ERROR_INIT;
    int rc = ids_get(&e, &found, c->txn, c->s, id, &local);
    char kt[80];
    key_text(kt, sizeof kt, &id);
    if (rc == KB_ECORRUPT) {
        problem(c, "%s", local.msg);
        return KB_OK;
    }
    if (rc != KB_OK) {
        if (err != NULL) {
            *err = local;
        }
        return rc;
    }
    if (!found) {
        problem(c, "%s '%s': missing from ids", what, kt);
    } else if (e.kind != kind || e.seq != seq) {
        problem(c, "%s '%s': ids says %s #%llu", what, kt, kind_name(e.kind),
                (unsigned long long)e.seq);
    }
    return KB_OK;
}

static int check_in_index(checker *c, kb_store__db idx, kb_codec_str key, MDB_val member,
                          const char *what, MDB_val id, kb_error *err)
{
    if (key.ptr == NULL) {
        return KB_OK;
    }
    int yes;
    int rc = idx_has(c, idx, val_view(key), member, err, &yes);
    if (rc == KB_OK && !yes) {
        char kt[80];
        problem(c, "%s '%s': missing from %s under '%.*s'", what, key_text(kt, sizeof kt, &id),
                db_defs[idx].name, (int)(key.len > 80 ? 80 : key.len), key.ptr);
    }
    return rc;
}

/* Is `id` stored as `kind`? Reports a dangling reference otherwise. */
static int check_ref(checker *c, kb_codec_str ref, unsigned kind, const char *what, MDB_val id,
                     const char *owner, kb_error *err)
{
    if (ref.ptr == NULL) {
        return KB_OK;
    }
    id_entry e;
    int found;
    int rc = ids_get(&e, &found, c->txn, c->s, val_view(ref), err);
    if (rc == KB_ECORRUPT) {
        return KB_OK; /* reported when ids is walked */
    }
    if (rc == KB_OK && (!found || e.kind != kind)) {
        char kt[80];
        problem(c, "%s '%s': %s '%.*s' is not stored", owner, key_text(kt, sizeof kt, &id), what,
                (int)(ref.len > 80 ? 80 : ref.len), ref.ptr);
    }
    return rc;
}

static int check_runs(checker *c, kb_error *err)
{
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(c->txn, c->s->dbi[KB_STORE__DB_RUNS], &cur);
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "opening a cursor");
    }
    MDB_val k, v;
    int rc = KB_OK;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == MDB_SUCCESS && rc == KB_OK;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != SEQ_BYTES) {
            problem(c, "runs: key of %zu bytes, expected %d", k.mv_size, SEQ_BYTES);
            continue;
        }
        uint64_t seq = kb_be64_decode(k.mv_data);
        kb_run r;
        kb_error e = KB_ERROR_INIT;
        if (kb_codec_decode_run(&r, v.mv_data, v.mv_size, &e) != KB_OK) {
            problem(c, "run #%llu: %s", (unsigned long long)seq, e.msg);
            continue;
        }
        kb_run_release(&r);
        kb_codec_run_head h;
        kb_codec_peek_run(&h, v.mv_data, v.mv_size, NULL);
        if (seq >= c->m.next_seq) {
            problem(c, "run #%llu: sequence number not below next_seq %llu",
                    (unsigned long long)seq, (unsigned long long)c->m.next_seq);
        }
        c->by_status[h.status]++;
        if (h.id.ptr == NULL || h.id.len == 0) {
            problem(c, "run #%llu: no id", (unsigned long long)seq);
            continue;
        }
        MDB_val id = val_view(h.id);
        rc = check_id_entry(c, id, KB_RECORD_RUN, seq, "run", err);
        if (rc == KB_OK) {
            rc = check_ref(c, h.task_id, KB_RECORD_TASK, "task", id, "run", err);
        }
        if (rc == KB_OK) {
            rc = check_ref(c, h.backbone_id, KB_RECORD_BACKBONE, "backbone", id, "run", err);
        }
        if (rc == KB_OK && h.task_id.ptr == NULL) {
            problem(c, "run '%.*s': no task_id", (int)h.id.len, h.id.ptr);
        }
        if (rc == KB_OK) {
            rc = check_in_index(c, KB_STORE__DB_IDX_TASK_RUNS, h.task_id, k, "run", id, err);
        }
        if (rc == KB_OK) {
            rc = check_in_index(c, KB_STORE__DB_IDX_SPACE_RUNS, h.space, k, "run", id, err);
        }
        if (rc == KB_OK) {
            rc = check_in_index(c, KB_STORE__DB_IDX_BACKBONE_RUNS, h.backbone_id, k, "run", id,
                                err);
        }
        kb_codec_str sid;
        if (rc == KB_OK && kb_codec__peek_run_study(&sid, v.mv_data, v.mv_size, NULL) == KB_OK &&
            sid.len > 0 && sid.len <= (size_t)c->s->max_key) {
            rc = check_in_index(c, KB_STORE__DB_IDX_STUDY_RUNS, sid, k, "run", id, err);
        }
    }
    if (rc == KB_OK && mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND) {
        rc = mdb_fail(err, mrc, "scanning runs");
    }
    mdb_cursor_close(cur);
    return rc;
}

/*
 * tasks, backbones, spaces, studies: decode, key = id, in ids, (tasks) in idx_team_tasks,
 * (studies) task stored
 */
static int check_keyed(checker *c, unsigned kind, kb_error *err)
{
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(c->txn, c->s->dbi[kind_db(kind)], &cur);
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "opening a cursor");
    }
    MDB_val k, v;
    int rc = KB_OK;
    const char *kname = kind_name(kind);
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == MDB_SUCCESS && rc == KB_OK;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char kt[80];
        key_text(kt, sizeof kt, &k);
        union {
            kb_task t;
            kb_backbone b;
            kb_space sp;
            kb_study st;
        } rec;
        kb_error e = KB_ERROR_INIT;
        if (decode_kind(&rec, kind, &v, &e) != KB_OK) {
            problem(c, "%s '%s': %s", kname, kt, e.msg);
            continue;
        }
        if (kind == KB_RECORD_TASK) {
            kb_task_release(&rec.t);
        } else if (kind == KB_RECORD_BACKBONE) {
            kb_backbone_release(&rec.b);
        } else if (kind == KB_RECORD_STUDY) {
            kb_study_release(&rec.st);
        } else {
            kb_space_release(&rec.sp);
        }
        kb_codec_str id, team;
        kb_codec_peek_id(&id, &team, kind, v.mv_data, v.mv_size, NULL);
        MDB_val idv = val_view(id);
        if (!val_eq(&idv, &k)) {
            problem(c, "%s '%s': stored under another key", kname, kt);
            continue;
        }
        rc = check_id_entry(c, k, kind, 0, kname, err);
        if (rc == KB_OK && kind == KB_RECORD_TASK) {
            rc = check_in_index(c, KB_STORE__DB_IDX_TEAM_TASKS, team, k, kname, k, err);
        }
        kb_codec_str sid, steam, stask;
        if (rc == KB_OK && kind == KB_RECORD_STUDY &&
            kb_codec__peek_study(&sid, &steam, &stask, v.mv_data, v.mv_size, NULL) == KB_OK) {
            if (stask.ptr == NULL) {
                problem(c, "study '%s': no task_id", kt);
            } else {
                rc = check_ref(c, stask, KB_RECORD_TASK, "task", k, "study", err);
            }
        }
    }
    if (rc == KB_OK && mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND) {
        rc = mdb_fail(err, mrc, "scanning");
    }
    mdb_cursor_close(cur);
    return rc;
}

/* every entry of one id map level names a stored record with that id; no id in both levels */
static int check_ids(checker *c, kb_store__db level, size_t *n_by_kind, kb_error *err)
{
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(c->txn, c->s->dbi[level], &cur);
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "opening a cursor");
    }
    MDB_val k, v;
    int rc = KB_OK;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == MDB_SUCCESS && rc == KB_OK;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        id_entry e;
        kb_error local = KB_ERROR_INIT;
        char kt[80];
        if (ids_parse(&e, k, v, &local) != KB_OK) {
            problem(c, "%s", local.msg);
            continue;
        }
        n_by_kind[e.kind]++;
        MDB_val other;
        if (level == KB_STORE__DB_IDS_RECENT &&
            mdb_get(c->txn, c->s->dbi[KB_STORE__DB_IDS], &k, &other) == MDB_SUCCESS) {
            problem(c, "ids: '%s' is in both levels of the id map", key_text(kt, sizeof kt, &k));
        }
        MDB_val rec;
        rc = record_bytes(&rec, c->txn, c->s, k, &e, &local);
        if (rc == KB_ECORRUPT) {
            problem(c, "%s", local.msg);
            rc = KB_OK;
            continue;
        }
        if (rc != KB_OK) {
            if (err != NULL) {
                *err = local;
            }
            break;
        }
        kb_codec_str id;
        if (kb_codec_peek_id(&id, NULL, e.kind, rec.mv_data, rec.mv_size, NULL) != KB_OK) {
            continue; /* reported by the record walk */
        }
        MDB_val idv = val_view(id);
        if (!val_eq(&idv, &k)) {
            problem(c, "ids: '%s' names a %s with id '%.*s'", key_text(kt, sizeof kt, &k),
                    kind_name(e.kind), (int)(id.len > 80 ? 80 : id.len), id.ptr ? id.ptr : "");
        }
    }
    if (rc == KB_OK && mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND) {
        rc = mdb_fail(err, mrc, "scanning ids");
    }
    mdb_cursor_close(cur);
    return rc;
}

/* The record an index entry under `k` names (`member`: a task id or an 8-byte seq) has `k` */
static int check_member(checker *c, kb_store__db idx, const MDB_val *k, MDB_val member,
                        kb_error *err)
{
    int to_tasks = idx == KB_STORE__DB_IDX_TEAM_TASKS;
    MDB_dbi target = c->s->dbi[to_tasks ? KB_STORE__DB_TASKS : KB_STORE__DB_RUNS];
    const char *name = db_defs[idx].name;
    char kt[80], vt[80];
    key_text(kt, sizeof kt, k);
    MDB_val rec;
    int g = mdb_get(c->txn, target, &member, &rec);
    if (g != MDB_SUCCESS && g != MDB_NOTFOUND) {
        return mdb_fail(err, g, "reading a record");
    }
    if (to_tasks) {
        key_text(vt, sizeof vt, &member);
    } else {
        snprintf(vt, sizeof vt, "run #%llu", (unsigned long long)kb_be64_decode(member.mv_data));
    }
    if (g == MDB_NOTFOUND) {
        problem(c, "%s: '%s' -> %s: no such record", name, kt, vt);
        return KB_OK;
    }
    kb_codec_str field = {NULL, 0};
    if (to_tasks) {
        kb_codec_str id;
        if (kb_codec_peek_id(&id, &field, KB_RECORD_TASK, rec.mv_data, rec.mv_size, NULL) !=
            KB_OK) {
            return KB_OK;
        }
    } else {
        kb_codec_run_head h;
        if (kb_codec_peek_run(&h, rec.mv_data, rec.mv_size, NULL) != KB_OK) {
            return KB_OK;
        }
        field = idx == KB_STORE__DB_IDX_TASK_RUNS    ? h.task_id
                : idx == KB_STORE__DB_IDX_SPACE_RUNS ? h.space
                                                     : h.backbone_id;
        if (idx == KB_STORE__DB_IDX_STUDY_RUNS &&
            kb_codec__peek_run_study(&field, rec.mv_data, rec.mv_size, NULL) != KB_OK) {
            return KB_OK;
        }
    }
    MDB_val fv = val_view(field);
    if (field.ptr == NULL || !val_eq(&fv, k)) {
        problem(c, "%s: '%s' -> %s, which does not have that value", name, kt, vt);
    }
    return KB_OK;
}

/*
 * every index entry names a stored record whose indexed field is the entry's key; a run
 * index's ranges are well formed, below next_seq and disjoint
 */
static int check_index(checker *c, kb_store__db idx, kb_error *err)
{
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(c->txn, c->s->dbi[idx], &cur);
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "opening a cursor");
    }
    int to_tasks = idx == KB_STORE__DB_IDX_TEAM_TASKS;
    const char *name = db_defs[idx].name;
    MDB_val k, v, prev_key = {0, NULL};
    uint64_t prev_last = 0;
    /* a range far longer than the runs stored is reported whole, not run by run */
    uint64_t max_span = (uint64_t)db_entries(c->txn, c->s, KB_STORE__DB_RUNS) + 1024;
    int rc = KB_OK;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == MDB_SUCCESS && rc == KB_OK;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (to_tasks) {
            rc = check_member(c, idx, &k, v, err);
            continue;
        }
        char kt[80];
        key_text(kt, sizeof kt, &k);
        if (v.mv_size != RANGE_BYTES) {
            problem(c, "%s: '%s' has a value of %zu bytes", name, kt, v.mv_size);
            continue;
        }
        uint64_t first, last;
        range_decode(&v, &first, &last);
        int same_key = val_eq(&k, &prev_key);
        prev_key = k;
        if (first > last || last >= c->m.next_seq || last - first >= max_span) {
            problem(c, "%s: '%s' has the range #%llu-#%llu (next_seq %llu)", name, kt,
                    (unsigned long long)first, (unsigned long long)last,
                    (unsigned long long)c->m.next_seq);
            continue;
        }
        if (same_key && first <= prev_last) {
            problem(c, "%s: '%s' has overlapping ranges at #%llu", name, kt,
                    (unsigned long long)first);
        }
        prev_last = last;
        for (uint64_t seq = first; rc == KB_OK && seq <= last; seq++) {
            unsigned char seqkey[SEQ_BYTES];
            kb_be64_encode(seqkey, seq);
            rc = check_member(c, idx, &k, (MDB_val){SEQ_BYTES, seqkey}, err);
        }
    }
    if (rc == KB_OK && mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND) {
        rc = mdb_fail(err, mrc, "scanning an index");
    }
    mdb_cursor_close(cur);
    return rc;
}

/* cache entries carry their header; the task generation is readable */
static int check_cache(checker *c, kb_error *err)
{
    uint64_t gen;
    kb_error local = KB_ERROR_INIT;
    if (tasks_generation_load(&gen, c->txn, c->s, &local) != KB_OK) {
        problem(c, "%s", local.msg);
    }
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(c->txn, c->s->dbi[KB_STORE__DB_CACHE], &cur);
    if (mrc != MDB_SUCCESS) {
        return mdb_fail(err, mrc, "opening a cursor");
    }
    MDB_val k, v;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == MDB_SUCCESS;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size < CACHE_HEADER_BYTES) {
            char kt[80];
            problem(c, "cache: '%s' has %zu bytes, less than its header",
                    key_text(kt, sizeof kt, &k), v.mv_size);
        }
    }
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND ? KB_OK : mdb_fail(err, mrc, "scanning the cache");
}

int kb_store_check(kb_store *store, kb_store_problem_fn fn, void *payload, kb_error *err)
{
    KB_CHECK_ARG(store != NULL);
    checker c;
    memset(&c, 0, sizeof c);
    c.s = store;
    c.fn = fn;
    c.payload = payload;
    int rc = read_begin(&c.txn, store, err);
    if (rc != KB_OK) {
        return rc;
    }
    kb_error local = KB_ERROR_INIT;
    int have_meta = meta_load(&c.m, c.txn, store, &local) == KB_OK;
    if (!have_meta) {
        problem(&c, "%s", local.msg);
        c.m.next_seq = UINT64_MAX;
    } else if (c.m.schema_version != KB_STORE_SCHEMA_VERSION) {
        problem(&c, "meta: schema version %llu, expected %d",
                (unsigned long long)c.m.schema_version, KB_STORE_SCHEMA_VERSION);
    }
    rc = check_keyed(&c, KB_RECORD_TASK, err);
    if (rc == KB_OK) {
        rc = check_keyed(&c, KB_RECORD_BACKBONE, err);
    }
    if (rc == KB_OK) {
        rc = check_keyed(&c, KB_RECORD_SPACE, err);
    }
    if (rc == KB_OK) {
        rc = check_keyed(&c, KB_RECORD_STUDY, err);
    }
    if (rc == KB_OK) {
        rc = check_runs(&c, err);
    }
    size_t n_by_kind[KB_RECORD_STUDY + 1] = {0};
    if (rc == KB_OK) {
        rc = check_ids(&c, KB_STORE__DB_IDS, n_by_kind, err);
    }
    if (rc == KB_OK) {
        rc = check_ids(&c, KB_STORE__DB_IDS_RECENT, n_by_kind, err);
    }
    for (int db = KB_STORE__DB_IDX_TASK_RUNS; rc == KB_OK && db <= KB_STORE__DB_IDX_TEAM_TASKS;
         db++) {
        rc = check_index(&c, (kb_store__db)db, err);
    }
    if (rc == KB_OK) {
        rc = check_index(&c, KB_STORE__DB_IDX_STUDY_RUNS, err);
    }
    if (rc == KB_OK) {
        rc = check_cache(&c, err);
    }
    if (rc == KB_OK) {
        for (unsigned kind = KB_RECORD_TASK; kind <= KB_RECORD_STUDY; kind++) {
            size_t n = db_entries(c.txn, store, kind_db(kind));
            if (n != n_by_kind[kind]) {
                problem(&c, "counts: %zu %ss stored, %zu in ids", n, kind_name(kind),
                        n_by_kind[kind]);
            }
        }
        for (int i = 0; have_meta && i < N_STATUS; i++) {
            if (c.by_status[i] != c.m.by_status[i]) {
                problem(&c, "counts: %llu runs with status %s, meta says %llu",
                        (unsigned long long)c.by_status[i],
                        kb_run_status_name((kb_run_status)i),
                        (unsigned long long)c.m.by_status[i]);
            }
        }
    }
    mdb_txn_abort(c.txn);
    if (rc != KB_OK) {
        return rc;
    }
    if (c.n_problems > 0) {
        return kb_error_set(err, KB_ECORRUPT, "store '%s': %zu problem%s found", store->path,
                            c.n_problems, c.n_problems == 1 ? "" : "s");
    }
    return KB_OK;
}
