/*
 * Internals of kb_store shared with its tests and benchmarks (never installed): the named
 * databases and access to the LMDB environment, so a test can inject corruption with raw
 * LMDB writes and a benchmark can compare against bare LMDB puts.
 */
#ifndef KB_KB_STORE_PRIV_H
#define KB_KB_STORE_PRIV_H

#include <lmdb.h>

#include "kb/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kb_store__db {
    KB_STORE__DB_META = 0,            /* "schema_version", "next_seq", "runs_by_status",
                                         "tasks_generation" */
    KB_STORE__DB_IDS = 1,             /* id -> kind byte [+ 8-byte BE run seq]; large level */
    KB_STORE__DB_TASKS = 2,           /* task id -> encoded task */
    KB_STORE__DB_RUNS = 3,            /* 8-byte BE seq -> encoded run */
    KB_STORE__DB_BACKBONES = 4,       /* backbone id -> encoded backbone */
    KB_STORE__DB_SPACES = 5,          /* space name -> encoded space */
    KB_STORE__DB_IDX_TASK_RUNS = 6,   /* task id => run seqs (DUPSORT|DUPFIXED) */
    KB_STORE__DB_IDX_SPACE_RUNS = 7,  /* space name => run seqs (DUPSORT|DUPFIXED) */
    KB_STORE__DB_IDX_BACKBONE_RUNS = 8, /* backbone id => run seqs (DUPSORT|DUPFIXED) */
    KB_STORE__DB_IDX_TEAM_TASKS = 9,  /* team => task ids (DUPSORT) */
    KB_STORE__DB_IDS_RECENT = 10,     /* the id map's small level, merged into ids in bulk */
    KB_STORE__DB_STUDIES = 11,        /* study id -> encoded study (schema 3) */
    KB_STORE__DB_IDX_STUDY_RUNS = 12, /* run study_id => run seqs (DUPSORT|DUPFIXED; schema 3) */
    KB_STORE__DB_CACHE = 13,          /* name -> 8-byte BE generation, 8 zero bytes, data */
    KB_STORE__N_DBS = 14
} kb_store__db;

/** The store's environment (borrowed). */
MDB_env *kb_store__env(kb_store *store);
/** The handle of a named database, valid in any transaction on kb_store__env(store). */
unsigned kb_store__dbi(kb_store *store, kb_store__db db);
/** The LMDB name of a database ("runs", ...). */
const char *kb_store__db_name(kb_store__db db);
/** Tests: merge ids_recent into ids beyond max(n, |ids| / 8) entries (default 50,000). */
void kb_store__set_ids_merge_min(kb_store *store, size_t n);

/**
 * kb_store_put_batch_flags with records already encoded (kb_codec_encode_record, e.g. by
 * ingest's parser thread while this one writes): `enc[i]` holds `enc_len[i]` bytes, the exact
 * encoding of recs[i], or is NULL to encode it here. `enc` may be NULL (encode all here).
 * Results, messages and returns are those of kb_store_put_batch_flags.
 */
int kb_store__put_batch_encoded(kb_store *store, const kb_record *recs,
                                const unsigned char *const *enc, const size_t *enc_len,
                                size_t n, unsigned flags, kb_put_result *results,
                                char (*reasons)[KB_ERROR_MSG_SIZE], kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
