/*
 * kb/store: put/get/iterate, put outcomes, indexes after put and update, persistence, map
 * growth, integrity check against injected corruption, schema version, concurrency between
 * processes (a second writer waits; a reader keeps its snapshot).
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "engine/core/buf.h"
#include "kb/store.h"
#include "kb/store_priv.h"
#include "unit/record_fixtures.h"

/* --- temporary stores --------------------------------------------------------------------- */

static char tmp_root[64];
static char store_dir[128];

static const char *new_store_dir(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/kb-test-store-XXXXXX");
    if (mkdtemp(tmp_root) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(store_dir, sizeof store_dir, "%s/kb", tmp_root);
    return store_dir;
}

static void remove_store_dir(void)
{
    char p[256];
    const char *files[] = {"data.mdb", "lock.mdb"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", store_dir, files[i]);
        unlink(p);
    }
    rmdir(store_dir);
    rmdir(tmp_root);
}

static kb_store *open_store(const char *dir, unsigned flags, size_t map_bytes, kb_log log)
{
    kb_store_opts o = KB_STORE_OPTS_INIT;
    o.flags = flags;
    o.map_bytes = map_bytes;
    o.log = log;
    kb_store *s = NULL;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_store_open(&s, dir, &o, &err), err);
    return s;
}

static kb_store *create_store(void)
{
    kb_log quiet = {NULL, NULL};
    return open_store(new_store_dir(), KB_STORE_OPEN_CREATE | KB_STORE_OPEN_NOSYNC, 0, quiet);
}

/* --- record batches ----------------------------------------------------------------------- */

static void rec_task(kb_record *r, const char *id, const char *team)
{
    memset(r, 0, sizeof *r);
    r->kind = KB_RECORD_TASK;
    fx_task(&r->task, id, team);
}

static void rec_run(kb_record *r, const char *id, const char *task, const char *space,
                    const char *backbone, const char *team, kb_run_status st)
{
    memset(r, 0, sizeof *r);
    r->kind = KB_RECORD_RUN;
    fx_run(&r->run, id, task, space, backbone, team, st);
}

static void rec_backbone(kb_record *r, const char *id)
{
    memset(r, 0, sizeof *r);
    r->kind = KB_RECORD_BACKBONE;
    fx_backbone(&r->backbone, id, "vision");
}

static void rec_space(kb_record *r, const char *name)
{
    memset(r, 0, sizeof *r);
    r->kind = KB_RECORD_SPACE;
    fx_space(&r->space, name);
}

static void release_all(kb_record *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        kb_record_release(&recs[i]);
    }
}

static int put_all(kb_store *s, kb_record *recs, size_t n, kb_put_result *res)
{
    kb_error err = KB_ERROR_INIT;
    int rc = kb_store_put_batch(s, recs, n, res, NULL, &err);
    CHECK_OK(rc, err);
    return rc;
}

/* A small knowledge base: 2 tasks (teams a, b), a backbone, a space, 6 runs */
static void fill_small(kb_store *s)
{
    kb_record r[10];
    kb_put_result res[10];
    rec_task(&r[0], "t-1", "team-a");
    rec_task(&r[1], "t-2", "team-b");
    rec_backbone(&r[2], "bb-1");
    rec_space(&r[3], "sp-1");
    rec_run(&r[4], "r-1", "t-1", "sp-1", NULL, "team-a", KB_RUN_STATUS_OK);
    rec_run(&r[5], "r-2", "t-1", "sp-1", "bb-1", "team-a", KB_RUN_STATUS_FAILED);
    rec_run(&r[6], "r-3", "t-2", NULL, NULL, "team-b", KB_RUN_STATUS_OK);
    rec_run(&r[7], "r-4", "t-1", "sp-2", "bb-1", "team-b", KB_RUN_STATUS_PRUNED);
    rec_run(&r[8], "r-5", "t-2", "sp-1", NULL, NULL, KB_RUN_STATUS_OK);
    rec_run(&r[9], "r-6", "t-1", NULL, NULL, "team-a", KB_RUN_STATUS_RUNNING);
    put_all(s, r, 10, res);
    int all_added = 1;
    for (int i = 0; i < 10; i++) {
        all_added &= res[i] == KB_PUT_ADDED;
    }
    CHECK(all_added);
    release_all(r, 10);
}

static void on_problem(const char *msg, void *payload)
{
    int *n = payload;
    (*n)++;
    if (getenv("KB_TEST_VERBOSE") != NULL) {
        fprintf(stderr, "problem: %s\n", msg);
    }
}

static int check_store(kb_store *s, int *n_problems)
{
    *n_problems = 0;
    kb_error err = KB_ERROR_INIT;
    return kb_store_check(s, on_problem, n_problems, &err);
}

/* --- collecting iteration results ---------------------------------------------------------- */

typedef struct ids {
    char s[64][32];
    size_t n;
} ids;

static int collect_run(const kb_run *r, void *payload)
{
    ids *c = payload;
    if (c->n < 64) {
        snprintf(c->s[c->n++], 32, "%s", r->id);
    }
    return 0;
}

static int collect_task(const kb_task *t, void *payload)
{
    ids *c = payload;
    snprintf(c->s[c->n++], 32, "%s", t->id);
    return 0;
}

static int collect_backbone(const kb_backbone *b, void *payload)
{
    ids *c = payload;
    snprintf(c->s[c->n++], 32, "%s", b->id);
    return 0;
}

static int collect_space(const kb_space *sp, void *payload)
{
    ids *c = payload;
    snprintf(c->s[c->n++], 32, "%s", sp->name);
    return 0;
}

/* "r-1,r-2" */
static const char *joined(const ids *c)
{
    static char out[2048];
    out[0] = '\0';
    for (size_t i = 0; i < c->n; i++) {
        strcat(out, i ? "," : "");
        strcat(out, c->s[i]);
    }
    return out;
}

static const char *runs_where(kb_store *s, const kb_store_filter *f)
{
    ids c = {{{0}}, 0};
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_store_foreach_run(s, f, collect_run, &c, &err), err);
    return joined(&c);
}

/* --- tests -------------------------------------------------------------------------------- */

static void test_store_put_then_get_returns_equal_records(void)
{
    kb_store *s = create_store();
    kb_record r[4];
    kb_put_result res[4];
    rec_task(&r[0], "t-1", "team-a");
    rec_backbone(&r[1], "bb-1");
    rec_space(&r[2], "sp-1");
    rec_run(&r[3], "r-1", "t-1", "sp-1", "bb-1", "team-a", KB_RUN_STATUS_DIVERGED);
    put_all(s, r, 4, res);
    kb_error err = KB_ERROR_INIT;
    kb_task t;
    kb_run run;
    kb_backbone bb;
    kb_space sp;
    CHECK_OK(kb_store_get_task(&t, s, "t-1", &err), err);
    CHECK(fx_task_eq(&t, &r[0].task));
    CHECK_OK(kb_store_get_run(&run, s, "r-1", &err), err);
    CHECK(fx_run_eq(&run, &r[3].run));
    CHECK_OK(kb_store_get_backbone(&bb, s, "bb-1", &err), err);
    CHECK(fx_backbone_eq(&bb, &r[1].backbone));
    CHECK_OK(kb_store_get_space(&sp, s, "sp-1", &err), err);
    CHECK(fx_space_eq(&sp, &r[2].space));
    kb_task_release(&t);
    kb_run_release(&run);
    kb_backbone_release(&bb);
    kb_space_release(&sp);

    kb_record_kind kind;
    CHECK_OK(kb_store_find_kind(&kind, s, "bb-1", &err), err);
    CHECK(kind == KB_RECORD_BACKBONE);
    CHECK_OK(kb_store_find_kind(&kind, s, "r-1", &err), err);
    CHECK(kind == KB_RECORD_RUN);
    CHECK_CODE(kb_store_find_kind(&kind, s, "nope", &err), KB_ENOTFOUND);
    CHECK_CODE(kb_store_get_run(&run, s, "t-1", &err), KB_ENOTFOUND);
    CHECK(strstr(err.msg, "run 't-1' not found") != NULL);
    CHECK_CODE(kb_store_get_task(&t, s, "", &err), KB_ENOTFOUND);

    kb_store_stats st;
    CHECK_OK(kb_store_stats_get(&st, s, &err), err);
    CHECK(st.n_tasks == 1 && st.n_runs == 1 && st.n_backbones == 1 && st.n_spaces == 1);
    CHECK(st.n_runs_by_status[KB_RUN_STATUS_DIVERGED] == 1 && st.n_teams == 1);
    CHECK(st.schema_version == KB_STORE_SCHEMA_VERSION && st.used_bytes <= st.map_bytes);
    CHECK(st.map_bytes == 64u << 20);
    release_all(r, 4);
    kb_store_close(s);
    remove_store_dir();
}

static void test_store_put_outcomes_duplicate_conflict_rejected(void)
{
    kb_store *s = create_store();
    fill_small(s);
    enum { N = 12 };
    kb_record r[N];
    kb_put_result res[N];
    char reasons[N][KB_ERROR_MSG_SIZE];
    rec_run(&r[0], "r-1", "t-1", "sp-1", NULL, "team-a", KB_RUN_STATUS_OK); /* same */
    rec_run(&r[1], "r-2", "t-1", "sp-1", "bb-1", "team-a", KB_RUN_STATUS_OK); /* changed */
    rec_run(&r[2], "r-new", "t-missing", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    rec_run(&r[3], "r-new2", "t-1", NULL, "bb-missing", NULL, KB_RUN_STATUS_OK);
    rec_run(&r[4], "r-new3", "t-1", "sp-unknown", NULL, NULL, KB_RUN_STATUS_OK);
    rec_task(&r[5], "t-3", NULL);
    rec_run(&r[6], "r-new4", "t-3", NULL, NULL, NULL, KB_RUN_STATUS_OK); /* task earlier */
    rec_task(&r[7], "r-1", NULL); /* a task id equal to a run id */
    rec_run(&r[8], "r-new4", "t-3", NULL, NULL, NULL, KB_RUN_STATUS_OK); /* twice in batch */
    rec_run(&r[9], "", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    rec_task(&r[10], "t-1", "team-a"); /* same as stored */
    rec_run(&r[11], "t-3", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK); /* a task of this batch */
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_store_put_batch(s, r, N, res, reasons, &err), err);
    CHECK(res[0] == KB_PUT_DUPLICATE && reasons[0][0] == '\0');
    CHECK(res[1] == KB_PUT_CONFLICT);
    CHECK_STR(reasons[1], "run 'r-2': id exists with different content");
    CHECK(res[2] == KB_PUT_REJECTED);
    CHECK_STR(reasons[2], "run 'r-new': unknown task 't-missing'");
    CHECK(res[3] == KB_PUT_REJECTED);
    CHECK_STR(reasons[3], "run 'r-new2': unknown backbone 'bb-missing'");
    CHECK(res[4] == KB_PUT_ADDED);
    CHECK(res[5] == KB_PUT_ADDED && res[6] == KB_PUT_ADDED);
    CHECK(res[7] == KB_PUT_CONFLICT);
    CHECK_STR(reasons[7], "task 'r-1': id is already used by a run");
    CHECK(res[8] == KB_PUT_DUPLICATE);
    CHECK(res[9] == KB_PUT_REJECTED);
    CHECK(res[10] == KB_PUT_DUPLICATE);
    CHECK(res[11] == KB_PUT_CONFLICT);
    CHECK_STR(reasons[11], "run 't-3': id is already used by a task");

    kb_run got;
    CHECK_OK(kb_store_get_run(&got, s, "r-2", &err), err);
    CHECK(got.status == KB_RUN_STATUS_FAILED); /* the conflict did not overwrite */
    kb_run_release(&got);
    CHECK_CODE(kb_store_get_run(&got, s, "r-new", &err), KB_ENOTFOUND);
    kb_store_stats st;
    CHECK_OK(kb_store_stats_get(&st, s, &err), err);
    CHECK(st.n_runs == 8 && st.n_tasks == 3);
    int n_problems;
    CHECK_OK(check_store(s, &n_problems), err);
    release_all(r, N);

    /* an empty batch commits nothing and succeeds */
    CHECK_OK(kb_store_put_batch(s, NULL, 0, NULL, NULL, &err), err);
    kb_store_close(s);
    remove_store_dir();
}

static int stop_after_two(const kb_run *r, void *payload)
{
    (void)r;
    int *n = payload;
    return ++*n == 2 ? 42 : 0;
}

typedef struct nested {
    kb_store *s;
    int put_rc, get_rc;
} nested;

static int write_while_iterating(const kb_run *r, void *payload)
{
    nested *n = payload;
    kb_record rec;
    kb_put_result res;
    rec_task(&rec, "t-nested", NULL);
    n->put_rc = kb_store_put_batch(n->s, &rec, 1, &res, NULL, NULL);
    kb_record_release(&rec);
    kb_task t;
    n->get_rc = kb_store_get_task(&t, n->s, r->task_id, NULL);
    kb_task_release(&t);
    return 1;
}

/* reading inside a callback works; writing is refused (a map growth would move its pages) */
static void test_store_callback_may_read_but_not_write(void)
{
    kb_store *s = create_store();
    fill_small(s);
    nested n = {s, 0, 0};
    kb_error err = KB_ERROR_INIT;
    CHECK(kb_store_foreach_run(s, NULL, write_while_iterating, &n, &err) == 1);
    CHECK(n.put_rc == KB_EINVAL && n.get_rc == KB_OK);
    kb_record rec;
    kb_put_result res;
    rec_task(&rec, "t-after", NULL);
    CHECK_OK(kb_store_put_batch(s, &rec, 1, &res, NULL, &err), err);
    kb_record_release(&rec);
    kb_store_close(s);
    remove_store_dir();
}

static void test_store_foreach_filters_use_indexes_in_insertion_order(void)
{
    kb_store *s = create_store();
    fill_small(s);
    kb_store_filter f = KB_STORE_FILTER_INIT;
    CHECK_STR(runs_where(s, &f), "r-1,r-2,r-3,r-4,r-5,r-6");
    f.task_id = "t-1";
    CHECK_STR(runs_where(s, &f), "r-1,r-2,r-4,r-6");
    f.status = KB_RUN_STATUS_OK;
    CHECK_STR(runs_where(s, &f), "r-1");
    f = (kb_store_filter)KB_STORE_FILTER_INIT;
    f.space = "sp-1";
    CHECK_STR(runs_where(s, &f), "r-1,r-2,r-5");
    f.team = "team-a";
    CHECK_STR(runs_where(s, &f), "r-1,r-2");
    f = (kb_store_filter)KB_STORE_FILTER_INIT;
    f.backbone_id = "bb-1";
    CHECK_STR(runs_where(s, &f), "r-2,r-4");
    f.task_id = "t-2";
    CHECK_STR(runs_where(s, &f), "");
    f = (kb_store_filter)KB_STORE_FILTER_INIT;
    f.team = "team-b";
    CHECK_STR(runs_where(s, &f), "r-3,r-4");
    f.team = NULL;
    f.limit = 4;
    f.status = KB_RUN_STATUS_OK;
    CHECK_STR(runs_where(s, &f), "r-1,r-3,r-5");
    f.status = -1;
    CHECK_STR(runs_where(s, &f), "r-1,r-2,r-3,r-4");
    f.task_id = "no-such-task";
    CHECK_STR(runs_where(s, &f), "");

    kb_error err = KB_ERROR_INIT;
    int n = 0;
    CHECK(kb_store_foreach_run(s, NULL, stop_after_two, &n, &err) == 42 && n == 2);

    ids c = {{{0}}, 0};
    CHECK_OK(kb_store_foreach_task(s, NULL, collect_task, &c, &err), err);
    CHECK_STR(joined(&c), "t-1,t-2");
    c.n = 0;
    f = (kb_store_filter)KB_STORE_FILTER_INIT;
    f.team = "team-b";
    CHECK_OK(kb_store_foreach_task(s, &f, collect_task, &c, &err), err);
    CHECK_STR(joined(&c), "t-2");
    c.n = 0;
    CHECK_OK(kb_store_foreach_backbone(s, &f, collect_backbone, &c, &err), err);
    CHECK_STR(joined(&c), "");
    c.n = 0;
    CHECK_OK(kb_store_foreach_backbone(s, NULL, collect_backbone, &c, &err), err);
    CHECK_STR(joined(&c), "bb-1");
    c.n = 0;
    CHECK_OK(kb_store_foreach_space(s, NULL, collect_space, &c, &err), err);
    CHECK_STR(joined(&c), "sp-1");
    kb_store_close(s);
    remove_store_dir();
}

static void test_store_update_run_moves_index_entries(void)
{
    kb_store *s = create_store();
    fill_small(s);
    kb_error err = KB_ERROR_INIT;
    kb_run r;
    fx_run(&r, "r-2", "t-2", "sp-9", NULL, "team-b", KB_RUN_STATUS_OK);
    CHECK_OK(kb_store_update_run(s, &r, &err), err);
    kb_store_filter f = KB_STORE_FILTER_INIT;
    CHECK_STR(runs_where(s, &f), "r-1,r-2,r-3,r-4,r-5,r-6"); /* same place */
    f.task_id = "t-1";
    CHECK_STR(runs_where(s, &f), "r-1,r-4,r-6");
    f.task_id = "t-2";
    CHECK_STR(runs_where(s, &f), "r-2,r-3,r-5");
    f = (kb_store_filter)KB_STORE_FILTER_INIT;
    f.backbone_id = "bb-1";
    CHECK_STR(runs_where(s, &f), "r-4");
    f = (kb_store_filter)KB_STORE_FILTER_INIT;
    f.space = "sp-9";
    CHECK_STR(runs_where(s, &f), "r-2");
    f.space = "sp-1";
    CHECK_STR(runs_where(s, &f), "r-1,r-5");
    kb_run got;
    CHECK_OK(kb_store_get_run(&got, s, "r-2", &err), err);
    CHECK(fx_run_eq(&got, &r));
    kb_run_release(&got);
    kb_store_stats st;
    CHECK_OK(kb_store_stats_get(&st, s, &err), err);
    CHECK(st.n_runs_by_status[KB_RUN_STATUS_FAILED] == 0 &&
          st.n_runs_by_status[KB_RUN_STATUS_OK] == 4);
    int n_problems;
    CHECK_OK(check_store(s, &n_problems), err);

    /* the same content again is a no-op; unknown ids and tasks are not found */
    CHECK_OK(kb_store_update_run(s, &r, &err), err);
    kb_free(r.id);
    r.id = fx_str("r-none");
    CHECK_CODE(kb_store_update_run(s, &r, &err), KB_ENOTFOUND);
    kb_free(r.id);
    r.id = fx_str("r-3");
    kb_free(r.task_id);
    r.task_id = fx_str("t-none");
    CHECK_CODE(kb_store_update_run(s, &r, &err), KB_ENOTFOUND);
    CHECK(strstr(err.msg, "unknown task 't-none'") != NULL);
    kb_run_release(&r);
    CHECK_OK(check_store(s, &n_problems), err);
    kb_store_close(s);
    remove_store_dir();
}

static void test_store_reopen_keeps_everything_and_rdonly_cannot_write(void)
{
    kb_store *s = create_store();
    fill_small(s);
    kb_store_close(s);
    kb_log quiet = {NULL, NULL};
    s = open_store(store_dir, 0, 0, quiet);
    kb_store_filter f = KB_STORE_FILTER_INIT;
    CHECK_STR(runs_where(s, &f), "r-1,r-2,r-3,r-4,r-5,r-6");
    CHECK_STR(kb_store_path(s), store_dir);
    /* new runs continue the sequence after reopening */
    kb_record r;
    kb_put_result res;
    rec_run(&r, "r-7", "t-2", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    put_all(s, &r, 1, &res);
    kb_store_close(s);

    s = open_store(store_dir, KB_STORE_OPEN_RDONLY, 0, quiet);
    CHECK_STR(runs_where(s, &f), "r-1,r-2,r-3,r-4,r-5,r-6,r-7");
    kb_error err = KB_ERROR_INIT;
    CHECK_CODE(kb_store_put_batch(s, &r, 1, &res, NULL, &err), KB_EINVAL);
    int n_problems;
    CHECK_OK(check_store(s, &n_problems), err);
    kb_store_close(s);
    kb_record_release(&r);

    kb_store_opts o = KB_STORE_OPTS_INIT;
    CHECK_CODE(kb_store_open(&s, "/tmp/kb-no-such-store-dir", &o, &err), KB_ENOTFOUND);
    CHECK(s == NULL);
    o.flags = KB_STORE_OPEN_RDONLY;
    CHECK_CODE(kb_store_open(&s, tmp_root, &o, &err), KB_ENOTFOUND);
    remove_store_dir();
}

static void on_log(kb_log_level level, const char *msg, void *payload)
{
    (void)level;
    int *n_grown = payload;
    if (strncmp(msg, "map grown to ", 13) == 0) {
        (*n_grown)++;
    }
}

/* The id map's recent level is merged into the large one; lookups work across merges */
static void test_store_id_map_levels_merge_without_losing_ids(void)
{
    kb_store *s = create_store();
    kb_store__set_ids_merge_min(s, 100);
    fill_small(s);
    kb_record *r = kb_calloc(60, sizeof *r);
    kb_put_result res[60];
    int outcomes_ok = 1;
    for (int b = 0; b < 20; b++) {
        /* 50 new runs, then 10 repeats of runs from an earlier batch */
        for (int i = 0; i < 60; i++) {
            char id[32];
            int k = i < 50 ? b * 50 + i : (b / 2) * 50 + (i - 50);
            snprintf(id, sizeof id, "r-%08x", (unsigned)(k * 2654435761u));
            rec_run(&r[i], id, k % 2 ? "t-1" : "t-2", NULL, NULL, NULL, KB_RUN_STATUS_OK);
        }
        put_all(s, r, 60, res);
        for (int i = 0; i < 60; i++) {
            outcomes_ok &= res[i] == (i < 50 ? KB_PUT_ADDED : KB_PUT_DUPLICATE);
        }
        release_all(r, 60);
    }
    kb_free(r);
    CHECK(outcomes_ok);
    MDB_txn *txn;
    MDB_stat main_st, recent_st;
    CHECK(mdb_txn_begin(kb_store__env(s), NULL, MDB_RDONLY, &txn) == 0);
    mdb_stat(txn, kb_store__dbi(s, KB_STORE__DB_IDS), &main_st);
    mdb_stat(txn, kb_store__dbi(s, KB_STORE__DB_IDS_RECENT), &recent_st);
    mdb_txn_abort(txn);
    CHECK(main_st.ms_entries > 100 && recent_st.ms_entries <= 200);
    CHECK(main_st.ms_entries + recent_st.ms_entries == 1000 + 6 + 2 + 1 + 1);
    kb_error err = KB_ERROR_INIT;
    kb_run got;
    char id[32];
    snprintf(id, sizeof id, "r-%08x", (unsigned)(3u * 2654435761u));
    CHECK_OK(kb_store_get_run(&got, s, id, &err), err);
    kb_run_release(&got);
    snprintf(id, sizeof id, "r-%08x", (unsigned)(999u * 2654435761u));
    CHECK_OK(kb_store_get_run(&got, s, id, &err), err);
    kb_run_release(&got);
    int n_problems;
    CHECK_OK(check_store(s, &n_problems), err);
    kb_store_close(s);
    remove_store_dir();
}

static int count_each_run(const kb_run *r, void *payload)
{
    (void)r;
    (*(int *)payload)++;
    return 0;
}

static size_t ids_entries(kb_store *s, kb_store__db level)
{
    MDB_txn *txn;
    MDB_stat st;
    CHECK(mdb_txn_begin(kb_store__env(s), NULL, MDB_RDONLY, &txn) == 0);
    CHECK(mdb_stat(txn, kb_store__dbi(s, level), &st) == 0);
    mdb_txn_abort(txn);
    return st.ms_entries;
}

/* Put runs s-<first>..s-<first + n - 1> (plus `extra`, may be NULL) of t-1 in one batch */
static void put_numbered(kb_store *s, int first, int n, const char *extra, kb_put_result want)
{
    kb_record r[51];
    kb_put_result res[51];
    int m = 0;
    for (; m < n; m++) {
        char id[32];
        snprintf(id, sizeof id, "s-%04d", first + m);
        rec_run(&r[m], id, "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    }
    if (extra != NULL) {
        rec_run(&r[m++], extra, "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    }
    put_all(s, r, (size_t)m, res);
    int all = 1;
    for (int i = 0; i < m; i++) {
        all &= res[i] == want;
    }
    CHECK(all);
    release_all(r, (size_t)m);
}

/*
 * A batch of ids with no stored id between its first and its last (a source's own numbering)
 * goes straight into the large level; one that straddles stored ids goes to the recent one
 */
static void test_store_ids_in_order_skip_the_recent_level(void)
{
    kb_store *s = create_store();
    fill_small(s); /* into an empty tree */
    CHECK(ids_entries(s, KB_STORE__DB_IDS_RECENT) == 0 && ids_entries(s, KB_STORE__DB_IDS) == 10);
    put_numbered(s, 1, 50, NULL, KB_PUT_ADDED); /* between "r-6" and "sp-1" */
    put_numbered(s, 51, 50, NULL, KB_PUT_ADDED);
    CHECK(ids_entries(s, KB_STORE__DB_IDS_RECENT) == 0 && ids_entries(s, KB_STORE__DB_IDS) == 110);
    put_numbered(s, 101, 10, "a-1", KB_PUT_ADDED); /* "a-1" is below every stored id */
    CHECK(ids_entries(s, KB_STORE__DB_IDS_RECENT) == 11 &&
          ids_entries(s, KB_STORE__DB_IDS) == 110);
    put_numbered(s, 1, 50, NULL, KB_PUT_DUPLICATE);
    put_numbered(s, 100, 10, "a-1", KB_PUT_DUPLICATE);
    /* only the recent level holds an id between "a-0" and "a-2": still found */
    kb_record r[3];
    kb_put_result res[3];
    rec_run(&r[0], "a-0", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    rec_run(&r[1], "a-1", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    rec_run(&r[2], "a-2", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    put_all(s, r, 3, res);
    CHECK(res[0] == KB_PUT_ADDED && res[1] == KB_PUT_DUPLICATE && res[2] == KB_PUT_ADDED);
    release_all(r, 3);
    kb_error err = KB_ERROR_INIT;
    kb_run got;
    CHECK_OK(kb_store_get_run(&got, s, "s-0077", &err), err);
    CHECK_STR(got.id, "s-0077");
    kb_run_release(&got);
    kb_store_filter f = KB_STORE_FILTER_INIT;
    f.task_id = "t-1";
    int n = 0;
    CHECK_OK(kb_store_foreach_run(s, &f, count_each_run, &n, &err), err);
    CHECK(n == 4 + 113);
    int n_problems;
    CHECK_OK(check_store(s, &n_problems), err);
    kb_store_close(s);
    remove_store_dir();
}

static void test_store_map_grows_from_64_kib(void)
{
    int n_grown = 0;
    kb_log log = {on_log, &n_grown};
    kb_store *s = open_store(new_store_dir(), KB_STORE_OPEN_CREATE | KB_STORE_OPEN_NOSYNC,
                             64 << 10, log);
    kb_record t;
    kb_put_result res[500];
    rec_task(&t, "t-1", NULL);
    put_all(s, &t, 1, res);
    kb_record_release(&t);
    kb_record *r = kb_calloc(500, sizeof *r);
    int all_added = 1;
    for (int b = 0; b < 6; b++) {
        for (int i = 0; i < 500; i++) {
            char id[32];
            snprintf(id, sizeof id, "r-%05d", b * 500 + i);
            rec_run(&r[i], id, "t-1", "sp", NULL, NULL, KB_RUN_STATUS_OK);
        }
        put_all(s, r, 500, res);
        for (int i = 0; i < 500; i++) {
            all_added &= res[i] == KB_PUT_ADDED;
        }
        release_all(r, 500);
    }
    kb_free(r);
    CHECK(all_added);
    CHECK(n_grown >= 4);
    kb_error err = KB_ERROR_INIT;
    kb_store_stats st;
    CHECK_OK(kb_store_stats_get(&st, s, &err), err);
    CHECK(st.n_runs == 3000 && st.map_bytes > (64u << 10));
    size_t grown = st.map_bytes;
    int n_problems;
    CHECK_OK(check_store(s, &n_problems), err);
    kb_store_close(s);

    /* reopening keeps the grown map */
    kb_log quiet = {NULL, NULL};
    s = open_store(store_dir, 0, 0, quiet);
    CHECK_OK(kb_store_stats_get(&st, s, &err), err);
    CHECK(st.map_bytes == grown && st.n_runs == 3000);
    kb_store_close(s);
    remove_store_dir();
}

/* --- raw LMDB access for corruption tests ------------------------------------------------- */

typedef void (*raw_fn)(MDB_txn *txn, MDB_dbi *dbi);

static const char *const raw_names[KB_STORE__N_DBS] = {
    "meta", "ids", "tasks", "runs", "backbones", "spaces",
    "idx_task_runs", "idx_space_runs", "idx_backbone_runs", "idx_team_tasks", "ids_recent",
    "studies", "idx_study_runs", "cache"};

/* Open the store's environment with LMDB directly and run `fn` in a write transaction */
static void raw_write(const char *dir, raw_fn fn)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi[KB_STORE__N_DBS];
    CHECK(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 16);
    CHECK(mdb_env_open(env, dir, 0, 0664) == 0);
    CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
    for (int i = 0; i < KB_STORE__N_DBS; i++) {
        CHECK(mdb_dbi_open(txn, raw_names[i], 0, &dbi[i]) == 0);
        CHECK_STR(kb_store__db_name((kb_store__db)i), raw_names[i]);
    }
    fn(txn, dbi);
    CHECK(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
}

static void seq_key(unsigned char *b, uint64_t seq)
{
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(seq >> (56 - 8 * i));
    }
}

/* A run index's range value: first and last seq, big-endian */
static MDB_val range_val(unsigned char *b, uint64_t first, uint64_t last)
{
    seq_key(b, first);
    seq_key(b + 8, last);
    return (MDB_val){16, b};
}

/* Take `seq` out of the range [first, last] of `key` in a run index (raw) */
static void raw_drop_seq(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t first,
                         uint64_t last, uint64_t seq)
{
    unsigned char b[16];
    MDB_val k = {strlen(key), (void *)key}, v = range_val(b, first, last);
    CHECK(mdb_del(txn, dbi, &k, &v) == 0);
    if (seq > first) {
        v = range_val(b, first, seq - 1);
        CHECK(mdb_put(txn, dbi, &k, &v, 0) == 0);
    }
    if (seq < last) {
        v = range_val(b, seq + 1, last);
        CHECK(mdb_put(txn, dbi, &k, &v, 0) == 0);
    }
}

/* "k:1-2,4-4;..." : a run index's keys and ranges, read raw */
static const char *raw_ranges(MDB_txn *txn, MDB_dbi dbi)
{
    static char out[1024];
    out[0] = '\0';
    MDB_cursor *cur;
    MDB_val k, v, prev = {0, NULL};
    CHECK(mdb_cursor_open(txn, dbi, &cur) == 0);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        CHECK(v.mv_size == 16);
        int same = prev.mv_data != NULL && prev.mv_size == k.mv_size &&
                   memcmp(prev.mv_data, k.mv_data, k.mv_size) == 0;
        size_t n = strlen(out);
        snprintf(out + n, sizeof out - n, "%s%.*s%s%llu-%llu", same ? "," : n ? ";" : "",
                 same ? 0 : (int)k.mv_size, (const char *)k.mv_data, same ? "" : ":",
                 (unsigned long long)kb_be64_decode(v.mv_data),
                 (unsigned long long)kb_be64_decode((const char *)v.mv_data + 8));
        prev = k;
    }
    mdb_cursor_close(cur);
    return out;
}

static void drop_index_entry(MDB_txn *txn, MDB_dbi *dbi)
{
    raw_drop_seq(txn, dbi[KB_STORE__DB_IDX_TASK_RUNS], "t-1", 1, 2, 2); /* r-2 */
}

static void add_overlapping_range(MDB_txn *txn, MDB_dbi *dbi)
{
    unsigned char b[16];
    MDB_val k = {3, "t-2"}, v = range_val(b, 3, 4); /* t-2 holds 3-3 and 5-5; r-4 is t-1's */
    CHECK(mdb_put(txn, dbi[KB_STORE__DB_IDX_TASK_RUNS], &k, &v, 0) == 0);
}

static void add_range_past_next_seq(MDB_txn *txn, MDB_dbi *dbi)
{
    unsigned char b[16];
    MDB_val k = {4, "sp-1"}, v = range_val(b, 7, 1u << 30);
    CHECK(mdb_put(txn, dbi[KB_STORE__DB_IDX_SPACE_RUNS], &k, &v, 0) == 0);
}

static void add_dangling_id(MDB_txn *txn, MDB_dbi *dbi)
{
    unsigned char v[9] = {KB_RECORD_RUN};
    seq_key(v + 1, 999);
    MDB_val k = {5, "ghost"}, val = {9, v};
    CHECK(mdb_put(txn, dbi[KB_STORE__DB_IDS], &k, &val, 0) == 0);
}

static void garble_run(MDB_txn *txn, MDB_dbi *dbi)
{
    unsigned char seq[8];
    seq_key(seq, 3);
    MDB_val k = {8, seq}, v = {5, "\x01\x02\x7f\x7f\x7f"};
    CHECK(mdb_put(txn, dbi[KB_STORE__DB_RUNS], &k, &v, 0) == 0);
}

static void add_stray_team_entry(MDB_txn *txn, MDB_dbi *dbi)
{
    MDB_val k = {6, "team-z"}, v = {3, "t-1"};
    CHECK(mdb_put(txn, dbi[KB_STORE__DB_IDX_TEAM_TASKS], &k, &v, 0) == 0);
}

static void bump_schema(MDB_txn *txn, MDB_dbi *dbi)
{
    unsigned char b[8];
    seq_key(b, KB_STORE_SCHEMA_VERSION + 1);
    MDB_val k = {14, "schema_version"}, v = {8, b};
    CHECK(mdb_put(txn, dbi[KB_STORE__DB_META], &k, &v, 0) == 0);
}

static void dup_id_in_both_levels(MDB_txn *txn, MDB_dbi *dbi)
{
    MDB_val k = {3, "r-1"}, v;
    int in_recent = mdb_get(txn, dbi[KB_STORE__DB_IDS_RECENT], &k, &v) == 0;
    CHECK(in_recent || mdb_get(txn, dbi[KB_STORE__DB_IDS], &k, &v) == 0);
    CHECK(mdb_put(txn, dbi[in_recent ? KB_STORE__DB_IDS : KB_STORE__DB_IDS_RECENT], &k, &v, 0) ==
          0);
}

static void drop_study_index_entry(MDB_txn *txn, MDB_dbi *dbi)
{
    raw_drop_seq(txn, dbi[KB_STORE__DB_IDX_STUDY_RUNS], "study-1", 1, 6, 3); /* r-3 */
}

static void short_cache_entry(MDB_txn *txn, MDB_dbi *dbi)
{
    MDB_val k = {3, "knn"}, v = {4, "abcd"};
    CHECK(mdb_put(txn, dbi[KB_STORE__DB_CACHE], &k, &v, 0) == 0);
}

static int problems_after(raw_fn corrupt)
{
    kb_store *s = create_store();
    fill_small(s);
    int n = -1;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(check_store(s, &n), err);
    CHECK(n == 0);
    kb_store_close(s);
    raw_write(store_dir, corrupt);
    kb_log quiet = {NULL, NULL};
    s = open_store(store_dir, KB_STORE_OPEN_RDONLY, 0, quiet);
    n = 0;
    int rc = kb_store_check(s, on_problem, &n, &err);
    CHECK(rc == KB_ECORRUPT);
    CHECK(rc != KB_ECORRUPT || strstr(err.msg, "problem") != NULL);
    kb_store_close(s);
    remove_store_dir();
    return n;
}

static void test_store_check_detects_injected_corruption(void)
{
    /* the run misses its task index entry */
    CHECK(problems_after(drop_index_entry) == 1);
    /* an id pointing nowhere, and the id count no longer matches the runs */
    CHECK(problems_after(add_dangling_id) == 2);
    /* undecodable run: reported; its index entries no longer point at a matching record */
    CHECK(problems_after(garble_run) >= 1);
    /* a task listed under a team it does not have */
    CHECK(problems_after(add_stray_team_entry) == 1);
    /* an id in both levels of the id map (and so counted twice) */
    CHECK(problems_after(dup_id_in_both_levels) == 2);
    /* a run missing from the study index; a cache entry without its header */
    CHECK(problems_after(drop_study_index_entry) == 1);
    CHECK(problems_after(short_cache_entry) == 1);
    /* run index ranges: overlapping (and naming a run of another task), past next_seq */
    CHECK(problems_after(add_overlapping_range) == 2);
    CHECK(problems_after(add_range_past_next_seq) == 1);
}

/* Schema 3 and before: one 8-byte seq per run in the run indexes instead of ranges */
static void ranges_to_seqs(MDB_txn *txn, MDB_dbi dbi)
{
    struct {
        char key[32];
        uint64_t first, last;
    } e[64];
    int n = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    CHECK(mdb_cursor_open(txn, dbi, &cur) == 0);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && n < 64;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), n++) {
        CHECK(v.mv_size == 16 && k.mv_size < 32);
        snprintf(e[n].key, sizeof e[n].key, "%.*s", (int)k.mv_size, (const char *)k.mv_data);
        e[n].first = kb_be64_decode(v.mv_data);
        e[n].last = kb_be64_decode((const char *)v.mv_data + 8);
    }
    mdb_cursor_close(cur);
    CHECK(mdb_drop(txn, dbi, 0) == 0);
    for (int i = 0; i < n; i++) {
        for (uint64_t q = e[i].first; q <= e[i].last; q++) {
            unsigned char b[8];
            seq_key(b, q);
            MDB_val kk = {strlen(e[i].key), e[i].key}, vv = {8, b};
            CHECK(mdb_put(txn, dbi, &kk, &vv, 0) == 0);
        }
    }
}

static void make_version_3(MDB_txn *txn, MDB_dbi *dbi)
{
    const kb_store__db idx[4] = {KB_STORE__DB_IDX_TASK_RUNS, KB_STORE__DB_IDX_SPACE_RUNS,
                                 KB_STORE__DB_IDX_BACKBONE_RUNS, KB_STORE__DB_IDX_STUDY_RUNS};
    for (int j = 0; j < 4; j++) {
        ranges_to_seqs(txn, dbi[idx[j]]);
    }
    unsigned char b[8];
    seq_key(b, 3);
    MDB_val sk = {14, "schema_version"}, sv = {8, b};
    CHECK(mdb_put(txn, dbi[KB_STORE__DB_META], &sk, &sv, 0) == 0);
}

static void on_migrated_4(kb_log_level level, const char *msg, void *payload)
{
    (void)level;
    if (strcmp(msg, "store migrated to schema version 4") == 0) {
        (*(int *)payload)++;
    }
}

static const char *idx_task_ranges;
static const char *idx_study_ranges;

static void read_ranges(MDB_txn *txn, MDB_dbi *dbi)
{
    static char task[1024], study[1024];
    snprintf(task, sizeof task, "%s", raw_ranges(txn, dbi[KB_STORE__DB_IDX_TASK_RUNS]));
    snprintf(study, sizeof study, "%s", raw_ranges(txn, dbi[KB_STORE__DB_IDX_STUDY_RUNS]));
    idx_task_ranges = task;
    idx_study_ranges = study;
}

/*
 * A batch's runs of one key are one range; the next batch's runs extend it when their seqs
 * follow; an update that moves a run splits its old range and joins its new neighbours
 */
static void test_store_run_indexes_hold_ranges(void)
{
    kb_store *s = create_store();
    fill_small(s);
    kb_store_close(s);
    raw_write(store_dir, read_ranges);
    CHECK_STR(idx_task_ranges, "t-1:1-2,4-4,6-6;t-2:3-3,5-5");
    CHECK_STR(idx_study_ranges, "study-1:1-6");
    kb_log quiet = {NULL, NULL};
    s = open_store(store_dir, 0, 0, quiet);
    kb_record r[2];
    kb_put_result res[2];
    rec_run(&r[0], "r-7", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    rec_run(&r[1], "r-8", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    put_all(s, r, 2, res);
    CHECK(res[0] == KB_PUT_ADDED && res[1] == KB_PUT_ADDED);
    release_all(r, 2);
    kb_error err = KB_ERROR_INIT;
    kb_run u;
    fx_run(&u, "r-4", "t-2", "sp-2", "bb-1", "team-b", KB_RUN_STATUS_OK);
    CHECK_OK(kb_store_update_run(s, &u, &err), err);
    kb_run_release(&u);
    kb_store_filter f = KB_STORE_FILTER_INIT;
    f.task_id = "t-1";
    CHECK_STR(runs_where(s, &f), "r-1,r-2,r-6,r-7,r-8");
    f.task_id = "t-2";
    CHECK_STR(runs_where(s, &f), "r-3,r-4,r-5");
    int n_problems;
    CHECK_OK(check_store(s, &n_problems), err);
    kb_store_close(s);
    raw_write(store_dir, read_ranges);
    CHECK_STR(idx_task_ranges, "t-1:1-2,6-8;t-2:3-5");
    CHECK_STR(idx_study_ranges, "study-1:1-8");
    remove_store_dir();
}

static void test_store_version_3_is_migrated_on_open(void)
{
    kb_store *s = create_store();
    fill_small(s);
    kb_store_close(s);
    raw_write(store_dir, make_version_3);
    int n_migrated = 0;
    kb_log log = {on_migrated_4, &n_migrated};
    s = open_store(store_dir, 0, 0, log);
    CHECK(n_migrated == 1);
    kb_error err = KB_ERROR_INIT;
    kb_store_stats st;
    CHECK_OK(kb_store_stats_get(&st, s, &err), err);
    CHECK(st.schema_version == 4 && st.n_runs == 6);
    kb_store_filter f = KB_STORE_FILTER_INIT;
    f.task_id = "t-1";
    CHECK_STR(runs_where(s, &f), "r-1,r-2,r-4,r-6");
    f = (kb_store_filter)KB_STORE_FILTER_INIT;
    f.backbone_id = "bb-1";
    CHECK_STR(runs_where(s, &f), "r-2,r-4");
    int n_problems;
    CHECK_OK(check_store(s, &n_problems), err);
    kb_store_close(s);
    raw_write(store_dir, read_ranges);
    CHECK_STR(idx_task_ranges, "t-1:1-2,4-4,6-6;t-2:3-3,5-5");
    CHECK_STR(idx_study_ranges, "study-1:1-6");
    remove_store_dir();
}

/* Make the store look like schema version 1: one-level id map, no ids_recent, nothing of 3 */
static void make_version_1(MDB_txn *txn, MDB_dbi *dbi)
{
    MDB_cursor *cur;
    MDB_val k, v;
    CHECK(mdb_cursor_open(txn, dbi[KB_STORE__DB_IDS_RECENT], &cur) == 0);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        CHECK(mdb_put(txn, dbi[KB_STORE__DB_IDS], &k, &v, 0) == 0);
    }
    mdb_cursor_close(cur);
    CHECK(mdb_drop(txn, dbi[KB_STORE__DB_IDS_RECENT], 1) == 0);
    make_version_3(txn, dbi);
    CHECK(mdb_drop(txn, dbi[KB_STORE__DB_STUDIES], 1) == 0);
    CHECK(mdb_drop(txn, dbi[KB_STORE__DB_IDX_STUDY_RUNS], 1) == 0);
    CHECK(mdb_drop(txn, dbi[KB_STORE__DB_CACHE], 1) == 0);
    unsigned char b[8];
    seq_key(b, 1);
    MDB_val sk = {14, "schema_version"}, sv = {8, b};
    CHECK(mdb_put(txn, dbi[KB_STORE__DB_META], &sk, &sv, 0) == 0);
}

static void on_migrated(kb_log_level level, const char *msg, void *payload)
{
    (void)level;
    if (strcmp(msg, "store migrated to schema version 2") == 0) {
        (*(int *)payload)++;
    }
}

static void test_store_version_1_is_migrated_on_open(void)
{
    kb_store *s = create_store();
    fill_small(s);
    kb_store_close(s);
    raw_write(store_dir, make_version_1);
    kb_store_opts o = KB_STORE_OPTS_INIT;
    o.flags = KB_STORE_OPEN_RDONLY;
    kb_error err = KB_ERROR_INIT;
    CHECK_CODE(kb_store_open(&s, store_dir, &o, &err), KB_EVERSION);
    CHECK(strstr(err.msg, "migration") != NULL);
    int n_migrated = 0;
    kb_log log = {on_migrated, &n_migrated};
    s = open_store(store_dir, 0, 0, log);
    CHECK(n_migrated == 1);
    kb_store_stats st;
    CHECK_OK(kb_store_stats_get(&st, s, &err), err);
    CHECK(st.schema_version == KB_STORE_SCHEMA_VERSION && st.n_runs == 6);
    kb_store_filter f = KB_STORE_FILTER_INIT;
    f.task_id = "t-1";
    CHECK_STR(runs_where(s, &f), "r-1,r-2,r-4,r-6");
    f = (kb_store_filter)KB_STORE_FILTER_INIT;
    f.study_id = "study-1"; /* the index rebuilt by the 2 -> 3 step */
    CHECK_STR(runs_where(s, &f), "r-1,r-2,r-3,r-4,r-5,r-6");
    kb_record r;
    kb_put_result res;
    rec_run(&r, "r-1", "t-1", "sp-1", NULL, "team-a", KB_RUN_STATUS_OK);
    put_all(s, &r, 1, &res);
    CHECK(res == KB_PUT_DUPLICATE); /* found in the migrated id map */
    kb_record_release(&r);
    int n_problems;
    CHECK_OK(check_store(s, &n_problems), err);
    kb_store_close(s);
    n_migrated = 0;
    s = open_store(store_dir, KB_STORE_OPEN_RDONLY, 0, log); /* once is enough */
    CHECK(n_migrated == 0);
    kb_store_close(s);
    remove_store_dir();
}

static void test_store_newer_schema_is_eversion(void)
{
    kb_store *s = create_store();
    kb_store_close(s);
    raw_write(store_dir, bump_schema);
    kb_store_opts o = KB_STORE_OPTS_INIT;
    kb_error err = KB_ERROR_INIT;
    CHECK_CODE(kb_store_open(&s, store_dir, &o, &err), KB_EVERSION);
    CHECK(strstr(err.msg, "newer") != NULL);
    o.flags = KB_STORE_OPEN_RDONLY;
    CHECK_CODE(kb_store_open(&s, store_dir, &o, &err), KB_EVERSION);
    CHECK(s == NULL);
    remove_store_dir();
}

/* --- concurrency between processes -------------------------------------------------------- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/*
 * A child holds LMDB's write transaction; the parent's put must wait for it, then succeed.
 * The child writes 'C' to the pipe just before committing, so when the parent's put returns
 * the byte must already be there: the put began only after the child's commit.
 */
static void test_store_second_writer_waits_for_the_first(void)
{
    kb_store *s = create_store();
    fill_small(s);
    kb_store_close(s);
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        MDB_env *env;
        MDB_txn *txn;
        int ok = mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 16) == 0 &&
                 mdb_env_open(env, store_dir, 0, 0664) == 0 &&
                 mdb_txn_begin(env, NULL, 0, &txn) == 0;
        if (!ok || write(p[1], "H", 1) != 1) {
            _exit(1);
        }
        sleep_ms(300);
        if (write(p[1], "C", 1) != 1 || mdb_txn_commit(txn) != 0) {
            _exit(1);
        }
        mdb_env_close(env);
        _exit(0);
    }
    char c = 0;
    CHECK(read(p[0], &c, 1) == 1 && c == 'H');
    kb_log quiet = {NULL, NULL};
    s = open_store(store_dir, KB_STORE_OPEN_NOSYNC, 0, quiet); /* opening does not wait */
    kb_record r;
    kb_put_result res;
    rec_run(&r, "r-after", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    put_all(s, &r, 1, &res);
    CHECK(res == KB_PUT_ADDED);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    c = 0;
    CHECK(read(p[0], &c, 1) == 1 && c == 'C');
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    kb_record_release(&r);
    kb_store_close(s);
    close(p[0]);
    close(p[1]);
    remove_store_dir();
}

/* A map grown by another process is adopted by a handle that stayed open */
static void test_store_adopts_a_map_grown_by_another_process(void)
{
    kb_log quiet = {NULL, NULL};
    kb_store *s = open_store(new_store_dir(), KB_STORE_OPEN_CREATE | KB_STORE_OPEN_NOSYNC,
                             64 << 10, quiet);
    fill_small(s);
    pid_t pid = fork();
    if (pid == 0) {
        kb_store_opts o = KB_STORE_OPTS_INIT;
        o.flags = KB_STORE_OPEN_NOSYNC;
        kb_store *cs = NULL;
        if (kb_store_open(&cs, store_dir, &o, NULL) != KB_OK) {
            _exit(1);
        }
        kb_record *r = kb_calloc(500, sizeof *r);
        kb_put_result res[500];
        for (int b = 0; b < 4; b++) {
            for (int i = 0; i < 500; i++) {
                char id[32];
                snprintf(id, sizeof id, "r-child-%d", b * 500 + i);
                rec_run(&r[i], id, "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
            }
            if (kb_store_put_batch(cs, r, 500, res, NULL, NULL) != KB_OK) {
                _exit(2);
            }
            release_all(r, 500);
        }
        kb_free(r);
        kb_store_close(cs);
        _exit(0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    kb_error err = KB_ERROR_INIT;
    kb_run got;
    CHECK_OK(kb_store_get_run(&got, s, "r-child-1999", &err), err);
    kb_run_release(&got);
    kb_store_stats st;
    CHECK_OK(kb_store_stats_get(&st, s, &err), err);
    CHECK(st.n_runs == 2006 && st.map_bytes > (64u << 10));
    kb_record r;
    kb_put_result res;
    rec_run(&r, "r-parent", "t-2", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    put_all(s, &r, 1, &res);
    CHECK(res == KB_PUT_ADDED);
    kb_record_release(&r);
    int n_problems;
    CHECK_OK(check_store(s, &n_problems), err);
    kb_store_close(s);
    remove_store_dir();
}

typedef struct snapshot_child {
    int to_parent, from_parent;
    int n;
} snapshot_child;

static int count_and_pause(const kb_run *r, void *payload)
{
    (void)r;
    snapshot_child *c = payload;
    if (c->n++ == 0) {
        char b = 0;
        if (write(c->to_parent, "R", 1) != 1 || read(c->from_parent, &b, 1) != 1 || b != 'D') {
            return -1;
        }
    }
    return 0;
}

static int count_runs(const kb_run *r, void *payload)
{
    (void)r;
    (*(int *)payload)++;
    return 0;
}

/* A child iterating runs keeps seeing its snapshot while the parent commits more runs. */
static void test_store_reader_snapshot_is_stable_during_a_commit(void)
{
    kb_store *s = create_store();
    fill_small(s);
    kb_store_close(s);
    int up[2], down[2];
    CHECK(pipe(up) == 0 && pipe(down) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        kb_store_opts o = KB_STORE_OPTS_INIT;
        o.flags = KB_STORE_OPEN_RDONLY;
        kb_store *rs = NULL;
        if (kb_store_open(&rs, store_dir, &o, NULL) != KB_OK) {
            _exit(10);
        }
        snapshot_child c = {up[1], down[0], 0};
        int rc = kb_store_foreach_run(rs, NULL, count_and_pause, &c, NULL);
        int after = 0;
        int rc2 = kb_store_foreach_run(rs, NULL, count_runs, &after, NULL);
        kb_store_close(rs);
        _exit(rc != 0 ? 11 : rc2 != 0 ? 12 : c.n != 6 ? 13 : after != 16 ? 14 : 0);
    }
    char b = 0;
    CHECK(read(up[0], &b, 1) == 1 && b == 'R');
    kb_log quiet = {NULL, NULL};
    s = open_store(store_dir, 0, 0, quiet);
    kb_record r[10];
    kb_put_result res[10];
    for (int i = 0; i < 10; i++) {
        char id[32];
        snprintf(id, sizeof id, "r-more-%d", i);
        rec_run(&r[i], id, "t-2", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    }
    put_all(s, r, 10, res);
    release_all(r, 10);
    CHECK(write(down[1], "D", 1) == 1);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    if (WEXITSTATUS(status) != 0) {
        fprintf(stderr, "snapshot child exited with %d\n", WEXITSTATUS(status));
    }
    kb_store_close(s);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
    remove_store_dir();
}

static int count_decoded(const kb_run *r, void *payload)
{
    (void)r;
    (*(int *)payload)++;
    return 0;
}

static void test_store_cleans_up_on_each_failed_allocation(void)
{
    kb_store *s = create_store();
    kb_record r[4];
    kb_put_result res[4];
    rec_task(&r[0], "t-1", "team-a");
    rec_run(&r[1], "r-1", "t-1", "sp", NULL, "team-a", KB_RUN_STATUS_OK);
    rec_run(&r[2], "r-2", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    rec_run(&r[3], "r-1", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    int rc = KB_ENOMEM, only_nomem = 1;
    for (long fail = 0; rc == KB_ENOMEM && fail < 1000; fail++) {
        kb_alloc_fail_after(fail);
        rc = kb_store_put_batch(s, r, 4, res, NULL, NULL);
        kb_alloc_fail_after(-1);
        only_nomem &= rc == KB_ENOMEM || rc == KB_OK;
        if (rc == KB_ENOMEM) {
            kb_store_stats st;
            only_nomem &= kb_store_stats_get(&st, s, NULL) == KB_OK && st.n_runs == 0;
        }
    }
    CHECK(rc == KB_OK && only_nomem);
    CHECK(res[0] == KB_PUT_ADDED && res[1] == KB_PUT_ADDED && res[3] == KB_PUT_CONFLICT);
    rc = KB_ENOMEM;
    for (long fail = 0; rc == KB_ENOMEM && fail < 1000; fail++) {
        kb_run got;
        kb_alloc_fail_after(fail);
        rc = kb_store_get_run(&got, s, "r-1", NULL);
        kb_alloc_fail_after(-1);
        only_nomem &= rc == KB_ENOMEM || rc == KB_OK;
        only_nomem &= rc == KB_OK || got.id == NULL;
        if (rc == KB_OK) {
            CHECK(fx_run_eq(&got, &r[1].run));
            kb_run_release(&got);
        }
    }
    CHECK(rc == KB_OK && only_nomem);
    rc = KB_ENOMEM;
    for (long fail = 0; rc == KB_ENOMEM && fail < 1000; fail++) {
        int n = 0;
        kb_alloc_fail_after(fail);
        rc = kb_store_foreach_run(s, NULL, count_decoded, &n, NULL);
        kb_alloc_fail_after(-1);
        only_nomem &= rc == KB_ENOMEM || (rc == KB_OK && n == 2);
    }
    CHECK(rc == KB_OK && only_nomem);
    release_all(r, 4);
    kb_store_close(s);
    remove_store_dir();

    /* opening fails cleanly too */
    new_store_dir();
    rc = KB_ENOMEM;
    for (long fail = 0; rc == KB_ENOMEM && fail < 100; fail++) {
        kb_store_opts o = KB_STORE_OPTS_INIT;
        o.flags = KB_STORE_OPEN_CREATE | KB_STORE_OPEN_NOSYNC;
        kb_alloc_fail_after(fail);
        rc = kb_store_open(&s, store_dir, &o, NULL);
        kb_alloc_fail_after(-1);
        CHECK(rc == KB_OK || (rc == KB_ENOMEM && s == NULL));
    }
    kb_store_close(s);
    remove_store_dir();
}

/* --- task generation, cache, studies -------------------------------------------------------- */

static uint64_t generation(kb_store *s)
{
    uint64_t g = UINT64_MAX;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_store_tasks_generation(&g, s, &err), err);
    return g;
}

static void test_store_all_or_nothing_batch_writes_nothing_when_one_is_refused(void)
{
    kb_store *s = create_store();
    fill_small(s);
    kb_record r[3];
    kb_put_result res[3];
    char reasons[3][KB_ERROR_MSG_SIZE];
    rec_task(&r[0], "t-new", NULL);
    rec_run(&r[1], "r-new", "t-new", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    rec_run(&r[2], "r-1", "t-2", NULL, NULL, NULL, KB_RUN_STATUS_OK); /* conflicts */
    kb_error err = KB_ERROR_INIT;
    CHECK_CODE(kb_store_put_batch_flags(s, r, 3, KB_STORE_PUT_ALL_OR_NOTHING, res, reasons,
                                        &err),
               KB_ECANCELED);
    CHECK_STR(err.msg, "batch not written: 1 record refused");
    CHECK(res[0] == KB_PUT_ADDED && res[1] == KB_PUT_ADDED && res[2] == KB_PUT_CONFLICT);
    CHECK_STR(reasons[2], "run 'r-1': id exists with different content");
    kb_store_stats st;
    CHECK_OK(kb_store_stats_get(&st, s, &err), err);
    CHECK(st.n_tasks == 2 && st.n_runs == 6);
    CHECK(generation(s) == 1);
    /* without the refused record the same batch goes in whole */
    CHECK_OK(kb_store_put_batch_flags(s, r, 2, KB_STORE_PUT_ALL_OR_NOTHING, res, reasons, &err),
             err);
    CHECK_OK(kb_store_stats_get(&st, s, &err), err);
    CHECK(st.n_tasks == 3 && st.n_runs == 7);
    CHECK_CODE(kb_store_put_batch_flags(s, r, 2, 1u << 5, res, reasons, &err), KB_EINVAL);
    int n_problems;
    CHECK_OK(check_store(s, &n_problems), err);
    release_all(r, 3);
    kb_store_close(s);
    remove_store_dir();
}

static void test_store_tasks_generation_moves_only_when_tasks_change(void)
{
    kb_store *s = create_store();
    CHECK(generation(s) == 0);
    kb_record r[3];
    kb_put_result res[3];
    rec_task(&r[0], "t-1", "team-a");
    put_all(s, r, 1, res);
    CHECK(generation(s) == 1);
    put_all(s, r, 1, res); /* a duplicate adds nothing */
    CHECK(res[0] == KB_PUT_DUPLICATE && generation(s) == 1);
    release_all(r, 1);
    rec_run(&r[0], "r-1", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    rec_backbone(&r[1], "bb-1");
    put_all(s, r, 2, res);
    CHECK(generation(s) == 1);
    kb_error err = KB_ERROR_INIT;
    r[0].run.status = KB_RUN_STATUS_FAILED;
    CHECK_OK(kb_store_update_run(s, &r[0].run, &err), err);
    CHECK(generation(s) == 1);
    release_all(r, 2);
    /* two tasks in one batch: one transaction, one step */
    rec_task(&r[0], "t-2", NULL);
    rec_task(&r[1], "t-3", NULL);
    rec_run(&r[2], "r-2", "t-missing", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    put_all(s, r, 3, res);
    CHECK(res[2] == KB_PUT_REJECTED && generation(s) == 2);
    release_all(r, 3);
    kb_store_close(s);
    kb_log quiet = {NULL, NULL};
    s = open_store(store_dir, KB_STORE_OPEN_RDONLY, 0, quiet);
    CHECK(generation(s) == 2); /* persistent */
    kb_store_close(s);
    remove_store_dir();
}

static void test_store_cache_round_trips_and_views_in_place(void)
{
    kb_log quiet = {NULL, NULL};
    /* a small map, so a value of a few MB has to grow it */
    kb_store *s = open_store(new_store_dir(), KB_STORE_OPEN_CREATE | KB_STORE_OPEN_NOSYNC,
                             (size_t)1 << 20, quiet);
    kb_error err = KB_ERROR_INIT;
    void *data = NULL;
    size_t len = 1;
    uint64_t gen = 99;
    CHECK_CODE(kb_store_cache_get(s, "knn", &data, &len, &gen, &err), KB_ENOTFOUND);
    CHECK(data == NULL && len == 0 && gen == 99);
    kb_store_cache_view *v = NULL;
    CHECK_CODE(kb_store_cache_view_open(&v, s, "knn", &err), KB_ENOTFOUND);
    CHECK(v == NULL);

    size_t n = 400000; /* 3.2 MB of doubles */
    double *m = kb_malloc_array(n, sizeof *m);
    for (size_t i = 0; i < n; i++) {
        m[i] = (double)i * 0.5 - 7.0;
    }
    CHECK_OK(kb_store_cache_put(s, "knn", m, n * sizeof *m, 41, &err), err);
    CHECK_OK(kb_store_cache_get(s, "knn", &data, &len, &gen, &err), err);
    CHECK(len == n * sizeof *m && gen == 41 && memcmp(data, m, len) == 0);
    kb_free(data);

    CHECK_OK(kb_store_cache_view_open(&v, s, "knn", &err), err);
    const double *d = kb_store_cache_view_data(v);
    CHECK(kb_store_cache_view_len(v) == n * sizeof *m && kb_store_cache_view_generation(v) == 41);
    CHECK(kb_store_cache_view_tasks_generation(v) == 0);
    CHECK(((uintptr_t)d % 8) == 0 && d[n - 1] == m[n - 1] && d[0] == m[0]);
    /* the view pins the map: writes wait for its close */
    CHECK_CODE(kb_store_cache_put(s, "other", m, 8, 1, &err), KB_EINVAL);
    kb_record r;
    kb_put_result res;
    rec_task(&r, "t-1", NULL);
    CHECK_CODE(kb_store_put_batch(s, &r, 1, &res, NULL, &err), KB_EINVAL);
    kb_store_cache_view_close(v);
    put_all(s, &r, 1, &res);
    kb_record_release(&r);

    /* a small value (inside a leaf page) is still handed out 8-byte aligned */
    CHECK_OK(kb_store_cache_put(s, "small", m + 1, 3 * sizeof *m, 1, &err), err);
    CHECK_OK(kb_store_cache_view_open(&v, s, "small", &err), err);
    d = kb_store_cache_view_data(v);
    CHECK(((uintptr_t)d % 8) == 0 && d[2] == m[3] && kb_store_cache_view_tasks_generation(v) == 1);
    kb_store_cache_view_close(v);
    kb_store_cache_view_close(NULL);

    /* replacing, an empty value, bad names */
    CHECK_OK(kb_store_cache_put(s, "knn", NULL, 0, 42, &err), err);
    CHECK_OK(kb_store_cache_get(s, "knn", &data, &len, &gen, &err), err);
    CHECK(data == NULL && len == 0 && gen == 42);
    CHECK_CODE(kb_store_cache_put(s, "", m, 8, 1, &err), KB_EINVAL);
    CHECK_CODE(kb_store_cache_put(s, NULL, m, 8, 1, &err), KB_EINVAL);
    int n_problems;
    CHECK_OK(check_store(s, &n_problems), err);

    /* ENOMEM while copying out leaves nothing allocated */
    CHECK_OK(kb_store_cache_put(s, "knn", m, 1000, 7, &err), err);
    int rc = KB_ENOMEM, only_nomem = 1;
    for (long fail = 0; rc == KB_ENOMEM && fail < 100; fail++) {
        kb_alloc_fail_after(fail);
        rc = kb_store_cache_get(s, "knn", &data, &len, &gen, NULL);
        kb_alloc_fail_after(-1);
        only_nomem &= rc == KB_OK || (rc == KB_ENOMEM && data == NULL);
    }
    CHECK(rc == KB_OK && only_nomem && len == 1000);
    kb_free(data);
    kb_store_close(s);
    s = open_store(store_dir, KB_STORE_OPEN_RDONLY, 0, quiet);
    CHECK_CODE(kb_store_cache_put(s, "knn", m, 8, 1, &err), KB_EINVAL);
    CHECK_OK(kb_store_cache_get(s, "knn", &data, &len, &gen, &err), err);
    CHECK(gen == 7 && len == 1000);
    kb_free(data);
    kb_store_close(s);
    kb_free(m);
    remove_store_dir();
}

static void rec_study(kb_record *r, const char *id, const char *task, const char *team)
{
    memset(r, 0, sizeof *r);
    r->kind = KB_RECORD_STUDY;
    fx_study(&r->study, id, task, team);
}

static int collect_study(const kb_study *st, void *payload)
{
    ids *c = payload;
    snprintf(c->s[c->n++], 32, "%s", st->id);
    return 0;
}

static const char *studies_where(kb_store *s, const kb_store_filter *f)
{
    ids c = {{{0}}, 0};
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_store_foreach_study(s, f, collect_study, &c, &err), err);
    return joined(&c);
}

static void test_store_studies_put_get_update_and_filter(void)
{
    kb_store *s = create_store();
    fill_small(s);
    enum { N = 9 };
    kb_record r[N];
    kb_put_result res[N];
    char reasons[N][KB_ERROR_MSG_SIZE];
    rec_study(&r[0], "s-b", "t-1", "team-a");
    rec_study(&r[1], "s-a", "t-2", "team-b");
    rec_study(&r[2], "s-x", "t-missing", NULL);
    rec_task(&r[3], "t-9", NULL);
    rec_study(&r[4], "s-c", "t-9", "team-a"); /* its task earlier in the batch */
    rec_study(&r[5], "r-1", "t-1", NULL);     /* a run's id */
    rec_study(&r[6], "s-b", "t-1", "team-a"); /* the same again */
    rec_study(&r[7], "s-nospace", "t-1", NULL);
    kb_free(r[7].study.space);
    r[7].study.space = NULL;
    rec_study(&r[8], "s-a", "t-1", "team-b"); /* other content */
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_store_put_batch(s, r, N, res, reasons, &err), err);
    CHECK(res[0] == KB_PUT_ADDED && res[1] == KB_PUT_ADDED && res[4] == KB_PUT_ADDED);
    CHECK(res[2] == KB_PUT_REJECTED);
    CHECK_STR(reasons[2], "study 's-x': unknown task 't-missing'");
    CHECK(res[5] == KB_PUT_CONFLICT);
    CHECK_STR(reasons[5], "study 'r-1': id is already used by a run");
    CHECK(res[6] == KB_PUT_DUPLICATE);
    CHECK(res[7] == KB_PUT_REJECTED);
    CHECK_STR(reasons[7], "study 's-nospace': space is missing");
    CHECK(res[8] == KB_PUT_CONFLICT);

    kb_study got;
    CHECK_OK(kb_store_get_study(&got, s, "s-b", &err), err);
    CHECK(fx_study_eq(&got, &r[0].study));
    kb_study_release(&got);
    CHECK_CODE(kb_store_get_study(&got, s, "t-1", &err), KB_ENOTFOUND);
    kb_record_kind kind;
    CHECK_OK(kb_store_find_kind(&kind, s, "s-a", &err), err);
    CHECK(kind == KB_RECORD_STUDY);
    /* a run may not take a study's id either */
    kb_record run;
    rec_run(&run, "s-a", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    put_all(s, &run, 1, res);
    CHECK(res[0] == KB_PUT_CONFLICT);
    kb_record_release(&run);

    kb_store_filter f = KB_STORE_FILTER_INIT;
    CHECK_STR(studies_where(s, &f), "s-a,s-b,s-c");
    f.task_id = "t-1";
    CHECK_STR(studies_where(s, &f), "s-b");
    f.task_id = NULL;
    f.team = "team-a";
    CHECK_STR(studies_where(s, &f), "s-b,s-c");
    f.limit = 1;
    CHECK_STR(studies_where(s, &f), "s-b");

    /* update: new state in extra, another task; unknown ids and tasks are not found */
    kb_free(r[0].study.extra);
    r[0].study.extra = fx_str("{\"state\":\"done\"}");
    kb_free(r[0].study.task_id);
    r[0].study.task_id = fx_str("t-2");
    CHECK_OK(kb_store_update_study(s, &r[0].study, &err), err);
    CHECK_OK(kb_store_update_study(s, &r[0].study, &err), err); /* no-op */
    CHECK_OK(kb_store_get_study(&got, s, "s-b", &err), err);
    CHECK(fx_study_eq(&got, &r[0].study));
    kb_study_release(&got);
    f = (kb_store_filter)KB_STORE_FILTER_INIT;
    f.task_id = "t-2";
    CHECK_STR(studies_where(s, &f), "s-a,s-b");
    kb_free(r[0].study.task_id);
    r[0].study.task_id = fx_str("t-none");
    CHECK_CODE(kb_store_update_study(s, &r[0].study, &err), KB_ENOTFOUND);
    CHECK(strstr(err.msg, "unknown task 't-none'") != NULL);
    CHECK_CODE(kb_store_update_study(s, &r[2].study, &err), KB_ENOTFOUND);
    kb_free(r[1].study.space);
    r[1].study.space = NULL;
    CHECK_CODE(kb_store_update_study(s, &r[1].study, &err), KB_EINVAL);

    kb_store_stats st;
    CHECK_OK(kb_store_stats_get(&st, s, &err), err);
    CHECK(st.n_studies == 3 && st.n_tasks == 3);
    int n_problems;
    CHECK_OK(check_store(s, &n_problems), err);
    release_all(r, N);
    kb_store_close(s);
    remove_store_dir();
}

static void set_study(kb_record *r, const char *study)
{
    kb_free(r->run.study_id);
    r->run.study_id = fx_str(study);
}

static void test_store_study_index_follows_puts_and_updates(void)
{
    kb_store *s = create_store();
    kb_record r[6];
    kb_put_result res[6];
    rec_task(&r[0], "t-1", NULL);
    rec_run(&r[1], "r-1", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    rec_run(&r[2], "r-2", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    rec_run(&r[3], "r-3", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    rec_run(&r[4], "r-4", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    rec_run(&r[5], "r-5", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    set_study(&r[1], "optuna:a"); /* no such study record: indexed all the same */
    set_study(&r[2], "s-2");
    set_study(&r[3], "optuna:a");
    set_study(&r[4], NULL);
    set_study(&r[5], "");         /* not a usable key */
    kb_error err = KB_ERROR_INIT;
    char reasons[6][KB_ERROR_MSG_SIZE];
    CHECK_OK(kb_store_put_batch(s, r, 6, res, reasons, &err), err);
    CHECK(res[4] == KB_PUT_ADDED && res[5] == KB_PUT_REJECTED);
    CHECK_STR(reasons[5], "run 'r-5': study_id is empty or too long");
    kb_store_filter f = KB_STORE_FILTER_INIT;
    f.study_id = "optuna:a";
    CHECK_STR(runs_where(s, &f), "r-1,r-3");
    f.status = KB_RUN_STATUS_FAILED;
    CHECK_STR(runs_where(s, &f), "");
    f = (kb_store_filter)KB_STORE_FILTER_INIT;
    f.study_id = "none";
    CHECK_STR(runs_where(s, &f), "");
    /* with another index chosen first, study_id is still a filter */
    f.task_id = "t-1";
    f.study_id = "s-2";
    CHECK_STR(runs_where(s, &f), "r-2");

    /* moving r-1 to s-2, and dropping r-3's study */
    set_study(&r[1], "s-2");
    CHECK_OK(kb_store_update_run(s, &r[1].run, &err), err);
    set_study(&r[3], NULL);
    CHECK_OK(kb_store_update_run(s, &r[3].run, &err), err);
    set_study(&r[4], "optuna:a");
    CHECK_OK(kb_store_update_run(s, &r[4].run, &err), err);
    f = (kb_store_filter)KB_STORE_FILTER_INIT;
    f.study_id = "s-2";
    CHECK_STR(runs_where(s, &f), "r-1,r-2");
    f.study_id = "optuna:a";
    CHECK_STR(runs_where(s, &f), "r-4");
    set_study(&r[4], "");
    CHECK_CODE(kb_store_update_run(s, &r[4].run, &err), KB_EINVAL);
    int n_problems;
    CHECK_OK(check_store(s, &n_problems), err);
    release_all(r, 6);
    kb_store_close(s);
    remove_store_dir();
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    FILE *out = fopen(to, "wb");
    CHECK(in != NULL && out != NULL);
    char buf[8192];
    size_t n;
    while (in != NULL && out != NULL && (n = fread(buf, 1, sizeof buf, in)) > 0) {
        CHECK(fwrite(buf, 1, n, out) == n);
    }
    if (in != NULL) {
        fclose(in);
    }
    if (out != NULL) {
        fclose(out);
    }
}

static void on_migrated_3(kb_log_level level, const char *msg, void *payload)
{
    (void)level;
    if (strcmp(msg, "store migrated to schema version 3") == 0) {
        (*(int *)payload)++;
    }
}

/*
 * tests/data/store_v2/data.mdb was written by kb at schema version 2 (commit 52dcbf4) from
 * made_from.jsonl: tasks t1, t2; runs r1 (s1), r2, r3 (s2), r4 (s1).
 */
static void test_store_real_version_2_store_is_migrated(void)
{
    char file[256];
    new_store_dir();
    CHECK(mkdir(store_dir, 0777) == 0);
    snprintf(file, sizeof file, "%s/data.mdb", store_dir);
    copy_file(check_data_path("store_v2/data.mdb"), file);
    kb_store *s = NULL;
    kb_store_opts o = KB_STORE_OPTS_INIT;
    o.flags = KB_STORE_OPEN_RDONLY;
    kb_error err = KB_ERROR_INIT;
    CHECK_CODE(kb_store_open(&s, store_dir, &o, &err), KB_EVERSION);
    int n_migrated = 0;
    kb_log log = {on_migrated_3, &n_migrated};
    s = open_store(store_dir, 0, 0, log);
    CHECK(n_migrated == 1);
    kb_store_stats st;
    CHECK_OK(kb_store_stats_get(&st, s, &err), err);
    CHECK(st.schema_version == 4 && st.n_runs == 4 && st.n_tasks == 2 && st.n_studies == 0);
    kb_store_filter f = KB_STORE_FILTER_INIT;
    f.study_id = "s1";
    CHECK_STR(runs_where(s, &f), "r1,r4");
    f.study_id = "s2";
    CHECK_STR(runs_where(s, &f), "r3");
    CHECK(generation(s) == 0);
    int n_problems;
    CHECK_OK(check_store(s, &n_problems), err);
    /* it takes studies now */
    kb_record r;
    kb_put_result res;
    rec_study(&r, "s1", "t1", NULL);
    put_all(s, &r, 1, &res);
    CHECK(res == KB_PUT_ADDED);
    kb_record_release(&r);
    kb_store_close(s);
    n_migrated = 0;
    s = open_store(store_dir, KB_STORE_OPEN_RDONLY, 0, log);
    CHECK(n_migrated == 0);
    CHECK_OK(check_store(s, &n_problems), err);
    kb_store_close(s);
    remove_store_dir();
}

/*
 * tests/data/store_v3/data.mdb was written by kb at schema version 3 (commit d7a08cb, the last
 * with one 8-byte seq per run in the run indexes) from made_from.jsonl, as store_v2.
 */
static void test_store_real_version_3_store_is_migrated(void)
{
    char file[256];
    new_store_dir();
    CHECK(mkdir(store_dir, 0777) == 0);
    snprintf(file, sizeof file, "%s/data.mdb", store_dir);
    copy_file(check_data_path("store_v3/data.mdb"), file);
    int n_migrated = 0;
    kb_log log = {on_migrated_4, &n_migrated};
    kb_store *s = open_store(store_dir, 0, 0, log);
    CHECK(n_migrated == 1);
    kb_error err = KB_ERROR_INIT;
    kb_store_stats st;
    CHECK_OK(kb_store_stats_get(&st, s, &err), err);
    CHECK(st.schema_version == 4 && st.n_runs == 4 && st.n_tasks == 2);
    kb_store_filter f = KB_STORE_FILTER_INIT;
    f.task_id = "t1";
    CHECK_STR(runs_where(s, &f), "r1,r2,r4");
    f = (kb_store_filter)KB_STORE_FILTER_INIT;
    f.space = "svm";
    CHECK_STR(runs_where(s, &f), "r1,r2");
    f = (kb_store_filter)KB_STORE_FILTER_INIT;
    f.study_id = "s1";
    CHECK_STR(runs_where(s, &f), "r1,r4");
    int n_problems;
    CHECK_OK(check_store(s, &n_problems), err);
    kb_store_close(s);
    raw_write(store_dir, read_ranges);
    CHECK_STR(idx_task_ranges, "t1:1-2,4-4;t2:3-3");
    CHECK_STR(idx_study_ranges, "s1:1-1,4-4;s2:3-3");
    remove_store_dir();
}

static int count_studies(const kb_study *st, void *payload)
{
    (void)st;
    (*(int *)payload)++;
    return 0;
}

static void test_store_studies_clean_up_on_each_failed_allocation(void)
{
    kb_store *s = create_store();
    kb_record r[3];
    kb_put_result res[3];
    rec_task(&r[0], "t-1", "team-a");
    rec_study(&r[1], "s-1", "t-1", "team-a");
    rec_run(&r[2], "r-1", "t-1", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    set_study(&r[2], "s-1");
    int rc = KB_ENOMEM, only_nomem = 1;
    for (long fail = 0; rc == KB_ENOMEM && fail < 1000; fail++) {
        kb_alloc_fail_after(fail);
        rc = kb_store_put_batch(s, r, 3, res, NULL, NULL);
        kb_alloc_fail_after(-1);
        only_nomem &= rc == KB_ENOMEM || rc == KB_OK;
    }
    CHECK(rc == KB_OK && only_nomem && res[1] == KB_PUT_ADDED);
    rc = KB_ENOMEM;
    for (long fail = 0; rc == KB_ENOMEM && fail < 1000; fail++) {
        kb_study got;
        kb_alloc_fail_after(fail);
        rc = kb_store_get_study(&got, s, "s-1", NULL);
        kb_alloc_fail_after(-1);
        only_nomem &= rc == KB_ENOMEM || rc == KB_OK;
        only_nomem &= rc == KB_OK || got.id == NULL;
        if (rc == KB_OK) {
            CHECK(fx_study_eq(&got, &r[1].study));
            kb_study_release(&got);
        }
    }
    CHECK(rc == KB_OK && only_nomem);
    rc = KB_ENOMEM;
    for (long fail = 0; rc == KB_ENOMEM && fail < 1000; fail++) {
        int n = 0;
        kb_alloc_fail_after(fail);
        rc = kb_store_foreach_study(s, NULL, count_studies, &n, NULL);
        kb_alloc_fail_after(-1);
        only_nomem &= rc == KB_ENOMEM || (rc == KB_OK && n == 1);
    }
    CHECK(rc == KB_OK && only_nomem);
    rc = KB_ENOMEM;
    kb_free(r[1].study.method);
    r[1].study.method = fx_str("tpe");
    for (long fail = 0; rc == KB_ENOMEM && fail < 1000; fail++) {
        kb_alloc_fail_after(fail);
        rc = kb_store_update_study(s, &r[1].study, NULL);
        kb_alloc_fail_after(-1);
        only_nomem &= rc == KB_ENOMEM || rc == KB_OK;
    }
    CHECK(rc == KB_OK && only_nomem);
    release_all(r, 3);
    kb_store_close(s);
    remove_store_dir();
}

/* Child of the SIGKILL test: put batches of 200 runs forever, acknowledging each commit */
static void put_until_killed(int ack_fd)
{
    kb_store_opts o = KB_STORE_OPTS_INIT;
    kb_store *s = NULL;
    if (kb_store_open(&s, store_dir, &o, NULL) != KB_OK) {
        _exit(1);
    }
    kb_record *r = kb_calloc(200, sizeof *r);
    kb_put_result res[200];
    for (uint32_t b = 0;; b++) {
        for (int i = 0; i < 200; i++) {
            char id[32];
            snprintf(id, sizeof id, "r-%u-%d", b, i);
            rec_run(&r[i], id, "t-1", "sp-1", NULL, NULL, KB_RUN_STATUS_OK);
        }
        if (kb_store_put_batch(s, r, 200, res, NULL, NULL) != KB_OK ||
            write(ack_fd, &b, sizeof b) != (ssize_t)sizeof b) {
            _exit(2);
        }
        release_all(r, 200);
    }
}

/*
 * A writer killed with SIGKILL at any moment leaves a consistent store holding every batch it
 * saw committed, and only whole batches.
 */
static void test_store_survives_sigkill_during_puts(void)
{
    for (int round = 0; round < 3; round++) {
        kb_store *s = create_store();
        fill_small(s);
        kb_store_close(s);
        int p[2];
        CHECK(pipe(p) == 0);
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            put_until_killed(p[1]);
        }
        close(p[1]);
        uint32_t b = 0, last = 0;
        int n_acks = 0;
        while (n_acks < 2 + round && read(p[0], &b, sizeof b) == (ssize_t)sizeof b) {
            last = b;
            n_acks++;
        }
        sleep_ms(3 * round);
        kill(pid, SIGKILL);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
        while (read(p[0], &b, sizeof b) == (ssize_t)sizeof b) {
            last = b;
            n_acks++;
        }
        close(p[0]);
        CHECK(n_acks >= 2 + round);

        kb_log quiet = {NULL, NULL};
        s = open_store(store_dir, 0, 0, quiet);
        int n_problems;
        kb_error err = KB_ERROR_INIT;
        CHECK_OK(check_store(s, &n_problems), err);
        kb_store_stats st;
        CHECK_OK(kb_store_stats_get(&st, s, &err), err);
        CHECK((st.n_runs - 6) % 200 == 0);          /* whole batches only */
        CHECK(st.n_runs >= 6 + 200 * (size_t)(last + 1)); /* every acknowledged batch */
        kb_run got;
        char id[32];
        snprintf(id, sizeof id, "r-%u-199", last);
        CHECK_OK(kb_store_get_run(&got, s, id, &err), err);
        kb_run_release(&got);
        kb_store_close(s);
        remove_store_dir();
    }
}

int main(void)
{
    test_store_put_then_get_returns_equal_records();
    test_store_put_outcomes_duplicate_conflict_rejected();
    test_store_foreach_filters_use_indexes_in_insertion_order();
    test_store_callback_may_read_but_not_write();
    test_store_update_run_moves_index_entries();
    test_store_reopen_keeps_everything_and_rdonly_cannot_write();
    test_store_map_grows_from_64_kib();
    test_store_id_map_levels_merge_without_losing_ids();
    test_store_ids_in_order_skip_the_recent_level();
    test_store_check_detects_injected_corruption();
    test_store_newer_schema_is_eversion();
    test_store_version_1_is_migrated_on_open();
    test_store_version_3_is_migrated_on_open();
    test_store_run_indexes_hold_ranges();
    test_store_second_writer_waits_for_the_first();
    test_store_reader_snapshot_is_stable_during_a_commit();
    test_store_adopts_a_map_grown_by_another_process();
    test_store_cleans_up_on_each_failed_allocation();
    test_store_survives_sigkill_during_puts();
    test_store_tasks_generation_moves_only_when_tasks_change();
    test_store_all_or_nothing_batch_writes_nothing_when_one_is_refused();
    test_store_cache_round_trips_and_views_in_place();
    test_store_studies_put_get_update_and_filter();
    test_store_study_index_follows_puts_and_updates();
    test_store_real_version_2_store_is_migrated();
    test_store_real_version_3_store_is_migrated();
    test_store_studies_clean_up_on_each_failed_allocation();
    return check_exit();
}
