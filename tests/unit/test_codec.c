/* kb/codec: binary record encoding round trips, canonical bytes, corrupt input rejected. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "engine/core/buf.h"
#include "engine/core/rng.h"
#include "kb/codec.h"
#include "kb/codec_priv.h"
#include "unit/record_fixtures.h"

static int sanitized(void)
{
    return getenv("KB_SANITIZED") != NULL;
}

static void test_codec_task_round_trips_every_field(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_task t, back;
    fx_task(&t, "t-iris", "vision");
    kb_buf b = KB_BUF_INIT, b2 = KB_BUF_INIT;
    CHECK_OK(kb_codec_encode_task(&b, &t, &err), err);
    CHECK((unsigned char)b.data[0] == KB_CODEC_VERSION);
    CHECK((unsigned char)b.data[1] == KB_RECORD_TASK);
    CHECK_OK(kb_codec_decode_task(&back, b.data, b.len, &err), err);
    CHECK(fx_task_eq(&t, &back));
    CHECK(isnan(back.features[2].value) && signbit(back.features[3].value));
    CHECK_OK(kb_codec_encode_task(&b2, &back, &err), err);
    CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
    kb_task_release(&back);
    kb_task_release(&t);
    kb_buf_release(&b);
    kb_buf_release(&b2);
}

static void test_codec_run_round_trips_every_field_with_nan_and_inf(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_run r, back;
    fx_run(&r, "r-1", "t-iris", "sp", "bb-1", "vision", KB_RUN_STATUS_DIVERGED);
    kb_buf b = KB_BUF_INIT, b2 = KB_BUF_INIT;
    CHECK_OK(kb_codec_encode_run(&b, &r, &err), err);
    CHECK_OK(kb_codec_decode_run(&back, b.data, b.len, &err), err);
    CHECK(fx_run_eq(&r, &back));
    CHECK(isnan(back.curve[0].values[3]));
    CHECK(isinf(back.curve[0].values[4]) && back.curve[0].values[4] < 0);
    CHECK(fx_bits_eq(back.curve[0].values[5], fx_odd_nan()));
    CHECK(signbit(back.curve[0].values[6]));
    CHECK(back.curve[0].steps[19] == INT64_MAX);
    CHECK(back.curve[1].n == 0 && back.curve[1].steps == NULL);
    CHECK(back.started_at == KB_TIME_UNKNOWN && isnan(back.cost_s));
    CHECK(back.config[1].value.b == 1 && back.config[3].value.type == KB_VALUE_TYPE_NONE);
    CHECK_STR(back.config[4].value.s, "adam");
    CHECK_OK(kb_codec_encode_run(&b2, &back, &err), err);
    CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);

    kb_codec_run_head h;
    CHECK_OK(kb_codec_peek_run(&h, b.data, b.len, &err), err);
    CHECK(h.id.len == 3 && memcmp(h.id.ptr, "r-1", 3) == 0);
    CHECK(h.task_id.len == 6 && memcmp(h.task_id.ptr, "t-iris", 6) == 0);
    CHECK(h.space.len == 2 && h.backbone_id.len == 4 && h.team.len == 6);
    CHECK(h.status == KB_RUN_STATUS_DIVERGED);
    kb_run_release(&back);
    kb_run_release(&r);
    kb_buf_release(&b);
    kb_buf_release(&b2);
}

static void test_codec_backbone_and_space_round_trip(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_backbone bb, bb2;
    kb_space sp, sp2;
    fx_backbone(&bb, "bb-1", NULL);
    fx_space(&sp, "cnn-space");
    kb_buf b = KB_BUF_INIT;
    CHECK_OK(kb_codec_encode_backbone(&b, &bb, &err), err);
    CHECK_OK(kb_codec_decode_backbone(&bb2, b.data, b.len, &err), err);
    CHECK(fx_backbone_eq(&bb, &bb2));
    kb_codec_str id, team;
    CHECK_OK(kb_codec_peek_id(&id, &team, KB_RECORD_BACKBONE, b.data, b.len, &err), err);
    CHECK(id.len == 4 && team.ptr == NULL);
    kb_backbone_release(&bb2);
    kb_buf_reset(&b);
    CHECK_OK(kb_codec_encode_space(&b, &sp, &err), err);
    CHECK_OK(kb_codec_decode_space(&sp2, b.data, b.len, &err), err);
    CHECK(fx_space_eq(&sp, &sp2));
    CHECK(isnan(sp2.params[1].low));
    /* a space's bytes are not a backbone's */
    CHECK_CODE(kb_codec_decode_backbone(&bb2, b.data, b.len, NULL), KB_ECORRUPT);
    CHECK_CODE(kb_codec_peek_id(&id, NULL, KB_RECORD_TASK, b.data, b.len, NULL), KB_ECORRUPT);
    kb_backbone_release(&bb);
    kb_space_release(&sp);
    kb_space_release(&sp2);
    kb_buf_release(&b);
}

static void test_codec_empty_records_round_trip_and_null_differs_from_empty(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_task t, t2;
    kb_run r, r2;
    kb_backbone bb, bb2;
    kb_space sp, sp2;
    memset(&t, 0, sizeof t);
    memset(&r, 0, sizeof r);
    memset(&bb, 0, sizeof bb);
    memset(&sp, 0, sizeof sp);
    kb_buf b = KB_BUF_INIT;
    CHECK_OK(kb_codec_encode_task(&b, &t, &err), err);
    CHECK_OK(kb_codec_decode_task(&t2, b.data, b.len, &err), err);
    CHECK(fx_task_eq(&t, &t2) && t2.id == NULL);
    kb_buf_reset(&b);
    CHECK_OK(kb_codec_encode_run(&b, &r, &err), err);
    CHECK_OK(kb_codec_decode_run(&r2, b.data, b.len, &err), err);
    CHECK(fx_run_eq(&r, &r2));
    kb_buf_reset(&b);
    CHECK_OK(kb_codec_encode_backbone(&b, &bb, &err), err);
    CHECK_OK(kb_codec_decode_backbone(&bb2, b.data, b.len, &err), err);
    CHECK(fx_backbone_eq(&bb, &bb2));
    kb_buf_reset(&b);
    CHECK_OK(kb_codec_encode_space(&b, &sp, &err), err);
    CHECK_OK(kb_codec_decode_space(&sp2, b.data, b.len, &err), err);
    CHECK(fx_space_eq(&sp, &sp2));

    /* "" and NULL are different records, so different bytes */
    kb_buf b2 = KB_BUF_INIT;
    kb_buf_reset(&b);
    r.id = "";
    CHECK_OK(kb_codec_encode_run(&b, &r, &err), err);
    r.id = NULL;
    CHECK_OK(kb_codec_encode_run(&b2, &r, &err), err);
    CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) != 0);
    CHECK_OK(kb_codec_decode_run(&r2, b.data, b.len, &err), err);
    CHECK(r2.id != NULL && r2.id[0] == '\0');
    kb_run_release(&r2);
    kb_task_release(&t2);
    kb_backbone_release(&bb2);
    kb_space_release(&sp2);
    kb_buf_release(&b);
    kb_buf_release(&b2);
}

static void test_codec_huge_configuration_and_long_curve_round_trip(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_run r, back;
    fx_run(&r, "r-big", "t", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    kb_params_free(r.config, r.n_config);
    r.n_config = 20000;
    r.config = kb_calloc(r.n_config, sizeof *r.config);
    for (size_t i = 0; i < r.n_config; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%05zu", i);
        if (i % 2 == 0) {
            fx_param_float(&r.config[i], name, (double)i * 0.5);
        } else {
            fx_param_int(&r.config[i], name, -(int64_t)i);
        }
    }
    kb_series_release(&r.curve[1]);
    fx_series(&r.curve[1], "val_accuracy", 100000);
    r.curve[1].values[99999] = NAN;
    kb_buf b = KB_BUF_INIT;
    CHECK_OK(kb_codec_encode_run(&b, &r, &err), err);
    CHECK_OK(kb_codec_decode_run(&back, b.data, b.len, &err), err);
    CHECK(fx_run_eq(&r, &back));
    CHECK(back.n_config == 20000 && back.curve[1].n == 100000);
    /* delta-encoded steps of 10 take one byte: 9 bytes per point */
    CHECK(b.len < 100000 * 9 + 20000 * 16 + 1000);
    kb_run_release(&back);
    kb_run_release(&r);
    kb_buf_release(&b);
}

typedef int (*decode_fn)(const void *p, size_t n);

static int dec_task(const void *p, size_t n)
{
    kb_task t;
    int rc = kb_codec_decode_task(&t, p, n, NULL);
    kb_task_release(&t);
    return rc;
}

static int dec_run(const void *p, size_t n)
{
    kb_run r;
    int rc = kb_codec_decode_run(&r, p, n, NULL);
    kb_run_release(&r);
    return rc;
}

static int dec_backbone(const void *p, size_t n)
{
    kb_backbone b;
    int rc = kb_codec_decode_backbone(&b, p, n, NULL);
    kb_backbone_release(&b);
    return rc;
}

static int dec_space(const void *p, size_t n)
{
    kb_space s;
    int rc = kb_codec_decode_space(&s, p, n, NULL);
    kb_space_release(&s);
    return rc;
}

static int dec_study(const void *p, size_t n)
{
    kb_study s;
    int rc = kb_codec_decode_study(&s, p, n, NULL);
    kb_study_release(&s);
    return rc;
}

#define N_KINDS 5

/* One valid encoding of each kind, in kind order (index kind - 1) */
static void encode_samples(kb_buf *b)
{
    kb_task t;
    kb_run r;
    kb_backbone bb;
    kb_space sp;
    kb_study st;
    fx_study(&st, "s-1", "t-1", "team");
    CHECK(kb_codec_encode_study(&b[4], &st, NULL) == KB_OK);
    kb_study_release(&st);
    fx_task(&t, "t-1", "team");
    fx_run(&r, "r-1", "t-1", "sp", "bb", "team", KB_RUN_STATUS_OK);
    fx_backbone(&bb, "bb", "team");
    fx_space(&sp, "sp");
    CHECK(kb_codec_encode_task(&b[0], &t, NULL) == KB_OK);
    CHECK(kb_codec_encode_run(&b[1], &r, NULL) == KB_OK);
    CHECK(kb_codec_encode_backbone(&b[2], &bb, NULL) == KB_OK);
    CHECK(kb_codec_encode_space(&b[3], &sp, NULL) == KB_OK);
    kb_task_release(&t);
    kb_run_release(&r);
    kb_backbone_release(&bb);
    kb_space_release(&sp);
}

static void test_codec_truncated_input_is_corrupt_at_every_length(void)
{
    kb_buf b[N_KINDS] = {KB_BUF_INIT, KB_BUF_INIT, KB_BUF_INIT, KB_BUF_INIT, KB_BUF_INIT};
    encode_samples(b);
    decode_fn dec[N_KINDS] = {dec_task, dec_run, dec_backbone, dec_space, dec_study};
    for (int k = 0; k < N_KINDS; k++) {
        int all_corrupt = 1;
        for (size_t n = 0; n < b[k].len; n++) {
            all_corrupt &= dec[k](b[k].data, n) == KB_ECORRUPT;
        }
        CHECK(all_corrupt);
        CHECK(dec[k](b[k].data, b[k].len) == KB_OK);
        /* one trailing byte is corrupt too */
        kb_buf_putc(&b[k], 0);
        CHECK(dec[k](b[k].data, b[k].len) == KB_ECORRUPT);
        kb_buf_release(&b[k]);
    }
}

/* decode; if it succeeds, re-encoding must give back exactly the input */
static int decode_is_sound(int kind, const unsigned char *p, size_t n)
{
    kb_record rec;
    memset(&rec, 0, sizeof rec);
    int rc;
    switch (kind) {
    case 0: rc = kb_codec_decode_task(&rec.task, p, n, NULL); break;
    case 1: rc = kb_codec_decode_run(&rec.run, p, n, NULL); break;
    case 2: rc = kb_codec_decode_backbone(&rec.backbone, p, n, NULL); break;
    case 4: rc = kb_codec_decode_study(&rec.study, p, n, NULL); break;
    default: rc = kb_codec_decode_space(&rec.space, p, n, NULL); break;
    }
    if (rc != KB_OK) {
        return rc == KB_ECORRUPT || rc == KB_EVERSION;
    }
    rec.kind = (kb_record_kind)(kind + 1);
    kb_buf b = KB_BUF_INIT;
    int ok = kb_codec_encode_record(&b, &rec, NULL) == KB_OK && b.len == n &&
             memcmp(b.data, p, n) == 0;
    kb_buf_release(&b);
    kb_record_release(&rec);
    return ok;
}

static void test_codec_random_and_mutated_bytes_never_crash(void)
{
    kb_rng rng;
    kb_rng_seed(&rng, 42);
    unsigned char buf[512];
    int rounds = sanitized() ? 2000 : 20000;
    int sound = 1;
    for (int i = 0; i < rounds; i++) {
        size_t n = (size_t)kb_rng_below(&rng, sizeof buf);
        for (size_t j = 0; j < n; j++) {
            buf[j] = (unsigned char)kb_rng_u64(&rng);
        }
        if (n >= 2 && i % 2 == 0) {
            buf[0] = KB_CODEC_VERSION; /* get past the header half of the time */
            buf[1] = (unsigned char)(1 + i % N_KINDS);
        }
        sound &= decode_is_sound(i % N_KINDS, buf, n);
    }
    CHECK(sound);

    /* single-byte mutations of valid encodings */
    kb_buf b[N_KINDS] = {KB_BUF_INIT, KB_BUF_INIT, KB_BUF_INIT, KB_BUF_INIT, KB_BUF_INIT};
    encode_samples(b);
    sound = 1;
    for (int k = 0; k < N_KINDS; k++) {
        unsigned char *p = (unsigned char *)b[k].data;
        for (size_t pos = 0; pos < b[k].len; pos++) {
            unsigned char keep = p[pos];
            for (int bit = 0; bit < 8; bit++) {
                p[pos] = (unsigned char)(keep ^ (1u << bit));
                sound &= decode_is_sound(k, p, b[k].len);
            }
            p[pos] = 0xff;
            sound &= decode_is_sound(k, p, b[k].len);
            p[pos] = keep;
        }
        kb_buf_release(&b[k]);
    }
    CHECK(sound);
}

static void test_codec_absurd_counts_are_corrupt_not_allocated(void)
{
    kb_buf b = KB_BUF_INIT;
    /* a space with 2^60 parameters in 20 bytes */
    kb_buf_putc(&b, KB_CODEC_VERSION);
    kb_buf_putc(&b, KB_RECORD_SPACE);
    kb_buf_put_varint(&b, 2);
    kb_buf_putc(&b, 'x');
    kb_buf_put_varint(&b, (uint64_t)1 << 60);
    kb_buf_append(&b, "\0\0\0\0\0\0\0\0\0\0", 10);
    kb_space s;
    kb_error err = KB_ERROR_INIT;
    CHECK_CODE(kb_codec_decode_space(&s, b.data, b.len, &err), KB_ECORRUPT);
    CHECK(strstr(err.msg, "space") != NULL);
    CHECK(s.params == NULL && s.name == NULL);

    /* a string longer than what is left */
    kb_buf_reset(&b);
    kb_buf_putc(&b, KB_CODEC_VERSION);
    kb_buf_putc(&b, KB_RECORD_BACKBONE);
    kb_buf_put_varint(&b, UINT64_MAX);
    CHECK(dec_backbone(b.data, b.len) == KB_ECORRUPT);

    /* an overlong varint (0 written in two bytes) is not canonical */
    kb_buf_reset(&b);
    kb_buf_putc(&b, KB_CODEC_VERSION);
    kb_buf_putc(&b, KB_RECORD_BACKBONE);
    for (int i = 0; i < 7; i++) {
        kb_buf_putc(&b, 0);
    }
    kb_buf_putc(&b, 0); /* created_at = 0 */
    kb_buf_putc(&b, 0); /* extra = NULL */
    CHECK(dec_backbone(b.data, b.len) == KB_OK);
    b.data[9] = (char)0x80;
    kb_buf_putc(&b, 0);
    b.data[10] = 0;
    CHECK(dec_backbone(b.data, b.len) == KB_ECORRUPT);

    /* a NUL inside a string is never written by the encoder */
    kb_buf_reset(&b);
    kb_buf_putc(&b, KB_CODEC_VERSION);
    kb_buf_putc(&b, KB_RECORD_BACKBONE);
    kb_buf_put_varint(&b, 3);
    kb_buf_append(&b, "a\0", 2);
    for (int i = 0; i < 8; i++) {
        kb_buf_putc(&b, 0);
    }
    CHECK(dec_backbone(b.data, b.len) == KB_ECORRUPT);
    kb_buf_release(&b);
}

static void test_codec_unknown_version_is_eversion(void)
{
    kb_buf b[N_KINDS] = {KB_BUF_INIT, KB_BUF_INIT, KB_BUF_INIT, KB_BUF_INIT, KB_BUF_INIT};
    encode_samples(b);
    b[1].data[0] = KB_CODEC_VERSION + 1;
    kb_run r;
    kb_error err = KB_ERROR_INIT;
    CHECK_CODE(kb_codec_decode_run(&r, b[1].data, b[1].len, &err), KB_EVERSION);
    CHECK(strstr(err.msg, "version") != NULL);
    kb_codec_run_head h;
    CHECK_CODE(kb_codec_peek_run(&h, b[1].data, b[1].len, NULL), KB_EVERSION);
    for (int k = 0; k < N_KINDS; k++) {
        kb_buf_release(&b[k]);
    }
}

static void test_codec_unrepresentable_fields_are_einval(void)
{
    kb_run r;
    fx_run(&r, "r", "t", NULL, NULL, NULL, KB_RUN_STATUS_OK);
    kb_buf b = KB_BUF_INIT;
    kb_error err = KB_ERROR_INIT;
    r.status = (kb_run_status)7;
    CHECK_CODE(kb_codec_encode_run(&b, &r, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "status") != NULL);
    r.status = KB_RUN_STATUS_OK;
    r.config[0].value.type = (kb_value_type)9;
    CHECK_CODE(kb_codec_encode_run(&b, &r, NULL), KB_EINVAL);
    r.config[0].value.type = KB_VALUE_TYPE_INT;
    size_t n = r.n_metrics;
    kb_metric *m = r.metrics;
    r.metrics = NULL;
    CHECK_CODE(kb_codec_encode_run(&b, &r, NULL), KB_EINVAL);
    r.metrics = m;
    r.n_metrics = n;
    kb_run_release(&r);
    kb_buf_release(&b);
}

static void test_codec_decode_cleans_up_on_each_failed_allocation(void)
{
    kb_buf b[N_KINDS] = {KB_BUF_INIT, KB_BUF_INIT, KB_BUF_INIT, KB_BUF_INIT, KB_BUF_INIT};
    encode_samples(b);
    decode_fn dec[N_KINDS] = {dec_task, dec_run, dec_backbone, dec_space, dec_study};
    for (int k = 0; k < N_KINDS; k++) {
        int rc = KB_ENOMEM, only_nomem = 1;
        for (long fail = 0; rc == KB_ENOMEM && fail < 10000; fail++) {
            kb_alloc_fail_after(fail);
            rc = dec[k](b[k].data, b[k].len);
            kb_alloc_fail_after(-1);
            only_nomem &= rc == KB_ENOMEM || rc == KB_OK;
        }
        CHECK(rc == KB_OK && only_nomem);
        kb_buf_release(&b[k]);
    }
}

static void test_codec_arena_decode_matches_heap_decode(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_codec__arena arena = KB_CODEC__ARENA_INIT;
    kb_run r, back;
    fx_run(&r, "r-1", "t-iris", "sp", "bb-1", "vision", KB_RUN_STATUS_DIVERGED);
    kb_buf b = KB_BUF_INIT;
    CHECK_OK(kb_codec_encode_run(&b, &r, &err), err);
    for (int i = 0; i < 3; i++) { /* reused after each reset */
        CHECK_OK(kb_codec__decode_run_in(&back, b.data, b.len, &arena, &err), err);
        CHECK(fx_run_eq(&r, &back));
        kb_codec__arena_reset(&arena);
    }
    /* a record larger than a block gets a block of its own */
    kb_series_release(&r.curve[1]);
    fx_series(&r.curve[1], "val_accuracy", 50000);
    kb_buf_reset(&b);
    CHECK_OK(kb_codec_encode_run(&b, &r, &err), err);
    CHECK_OK(kb_codec__decode_run_in(&back, b.data, b.len, &arena, &err), err);
    CHECK(fx_run_eq(&r, &back));
    CHECK_CODE(kb_codec__decode_run_in(&back, b.data, b.len - 1, &arena, &err), KB_ECORRUPT);
    CHECK(back.id == NULL && back.curve == NULL);
    kb_codec__arena_reset(&arena);
    int rc = KB_ENOMEM, only_nomem = 1;
    for (long fail = 0; rc == KB_ENOMEM && fail < 100; fail++) {
        kb_codec__arena_release(&arena);
        kb_alloc_fail_after(fail);
        rc = kb_codec__decode_run_in(&back, b.data, b.len, &arena, NULL);
        kb_alloc_fail_after(-1);
        only_nomem &= rc == KB_ENOMEM || rc == KB_OK;
    }
    CHECK(rc == KB_OK && only_nomem);
    kb_codec__arena_release(&arena);
    kb_codec__arena_release(&arena); /* releasing twice is harmless */
    kb_run_release(&r);
    kb_buf_release(&b);
}

static void test_codec_study_round_trips_every_field(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_study s, back;
    fx_study(&s, "study-1", "t-iris", "vision");
    kb_buf b = KB_BUF_INIT, again = KB_BUF_INIT;
    CHECK_OK(kb_codec_encode_study(&b, &s, &err), err);
    CHECK_OK(kb_codec_decode_study(&back, b.data, b.len, &err), err);
    CHECK(fx_study_eq(&s, &back));
    CHECK_OK(kb_codec_encode_study(&again, &back, &err), err);
    CHECK(again.len == b.len && memcmp(again.data, b.data, b.len) == 0);
    kb_codec_str id, team, task;
    CHECK_OK(kb_codec__peek_study(&id, &team, &task, b.data, b.len, &err), err);
    CHECK(id.len == 7 && memcmp(id.ptr, "study-1", 7) == 0);
    CHECK(team.len == 6 && memcmp(team.ptr, "vision", 6) == 0);
    CHECK(task.len == 6 && memcmp(task.ptr, "t-iris", 6) == 0);
    CHECK_OK(kb_codec_peek_id(&id, &team, KB_RECORD_STUDY, b.data, b.len, &err), err);
    CHECK(team.len == 6);
    /* a study is not a task: the kind byte is checked */
    kb_task t;
    CHECK_CODE(kb_codec_decode_task(&t, b.data, b.len, NULL), KB_ECORRUPT);
    kb_study_release(&back);

    /* an empty study (every optional field NULL, no neighbours) */
    kb_study_release(&s);
    memset(&s, 0, sizeof s);
    s.id = kb_strdup("s");
    kb_buf_reset(&b);
    CHECK_OK(kb_codec_encode_study(&b, &s, &err), err);
    CHECK_OK(kb_codec_decode_study(&back, b.data, b.len, &err), err);
    CHECK(fx_study_eq(&s, &back) && back.neighbours == NULL && back.task_id == NULL);
    kb_study_release(&back);

    /* neighbours without their weights cannot be encoded */
    s.n_neighbours = 1;
    s.neighbours = kb_calloc(1, sizeof *s.neighbours);
    s.neighbours[0] = kb_strdup("t");
    kb_buf_reset(&b);
    CHECK_CODE(kb_codec_encode_study(&b, &s, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "neighbours") != NULL);
    s.direction = (kb_direction)3;
    CHECK_CODE(kb_codec_encode_study(&b, &s, &err), KB_EINVAL);
    kb_study_release(&s);
    kb_buf_release(&b);
    kb_buf_release(&again);
}

static void test_codec_peek_run_study_finds_the_study_id(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_run r;
    fx_run(&r, "r-1", "t-1", "sp", "bb", "team", KB_RUN_STATUS_OK);
    kb_buf b = KB_BUF_INIT;
    CHECK_OK(kb_codec_encode_run(&b, &r, &err), err);
    kb_codec_str sid;
    CHECK_OK(kb_codec__peek_run_study(&sid, b.data, b.len, &err), err);
    CHECK(sid.len == strlen(r.study_id) && memcmp(sid.ptr, r.study_id, sid.len) == 0);
    /* cut anywhere before the study id: corrupt, never a read past the end */
    size_t where = (size_t)(sid.ptr - b.data);
    int all_corrupt = 1;
    for (size_t n = 0; n < where; n++) {
        all_corrupt &= kb_codec__peek_run_study(&sid, b.data, n, NULL) == KB_ECORRUPT;
    }
    CHECK(all_corrupt);
    kb_free(r.study_id);
    r.study_id = NULL;
    kb_buf_reset(&b);
    CHECK_OK(kb_codec_encode_run(&b, &r, &err), err);
    CHECK_OK(kb_codec__peek_run_study(&sid, b.data, b.len, &err), err);
    CHECK(sid.ptr == NULL);
    kb_run_release(&r);
    kb_buf_release(&b);
}

int main(void)
{
    test_codec_study_round_trips_every_field();
    test_codec_peek_run_study_finds_the_study_id();
    test_codec_task_round_trips_every_field();
    test_codec_run_round_trips_every_field_with_nan_and_inf();
    test_codec_backbone_and_space_round_trip();
    test_codec_empty_records_round_trip_and_null_differs_from_empty();
    test_codec_huge_configuration_and_long_curve_round_trip();
    test_codec_truncated_input_is_corrupt_at_every_length();
    test_codec_random_and_mutated_bytes_never_crash();
    test_codec_absurd_counts_are_corrupt_not_allocated();
    test_codec_unknown_version_is_eversion();
    test_codec_unrepresentable_fields_are_einval();
    test_codec_decode_cleans_up_on_each_failed_allocation();
    test_codec_arena_decode_matches_heap_decode();
    return check_exit();
}
