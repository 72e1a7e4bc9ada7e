/*
 * Fuzz target for kb/codec's decoders: the input is decoded as each record kind. A decoder
 * must never crash, leak or allocate from an unchecked count; when it accepts the bytes,
 * re-encoding the record must give back exactly the input (the encoding is canonical), and the
 * allocation-free peek functions must agree with the full decode.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/buf.h"
#include "kb/codec.h"
#include "kb/codec_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok)
{
    if (!ok) {
        abort();
    }
}

static int view_is(kb_codec_str v, const char *s)
{
    if (v.ptr == NULL || s == NULL) {
        return v.ptr == NULL && s == NULL;
    }
    return strlen(s) == v.len && memcmp(v.ptr, s, v.len) == 0;
}

static void check_reencodes(const kb_record *rec, const uint8_t *data, size_t size)
{
    kb_buf b = KB_BUF_INIT;
    int rc = kb_codec_encode_record(&b, rec, NULL);
    require(rc == KB_OK || rc == KB_ENOMEM);
    require(rc != KB_OK || (b.len == size && memcmp(b.data, data, size) == 0));
    kb_buf_release(&b);
}

/* The arena decoder must agree with the owned one: same code, same record bytes */
static void check_arena_agrees(const uint8_t *data, size_t size, int heap_rc)
{
    kb_codec__arena arena = KB_CODEC__ARENA_INIT;
    kb_record rec;
    memset(&rec, 0, sizeof rec);
    rec.kind = KB_RECORD_RUN;
    int rc = kb_codec__decode_run_in(&rec.run, data, size, &arena, NULL);
    require(rc == heap_rc || rc == KB_ENOMEM || heap_rc == KB_ENOMEM);
    if (rc == KB_OK) {
        check_reencodes(&rec, data, size);
    }
    kb_codec__arena_release(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int kind = KB_RECORD_TASK; kind <= KB_RECORD_STUDY; kind++) {
        kb_record rec;
        memset(&rec, 0, sizeof rec);
        rec.kind = (kb_record_kind)kind;
        int rc;
        switch (kind) {
        case KB_RECORD_TASK: rc = kb_codec_decode_task(&rec.task, data, size, NULL); break;
        case KB_RECORD_RUN: rc = kb_codec_decode_run(&rec.run, data, size, NULL); break;
        case KB_RECORD_BACKBONE:
            rc = kb_codec_decode_backbone(&rec.backbone, data, size, NULL);
            break;
        case KB_RECORD_STUDY: rc = kb_codec_decode_study(&rec.study, data, size, NULL); break;
        default: rc = kb_codec_decode_space(&rec.space, data, size, NULL); break;
        }
        require(rc == KB_OK || rc == KB_ECORRUPT || rc == KB_EVERSION || rc == KB_ENOMEM);
        kb_codec_str id, team;
        int prc = kb_codec_peek_id(&id, &team, (kb_record_kind)kind, data, size, NULL);
        if (kind == KB_RECORD_RUN) {
            check_arena_agrees(data, size, rc);
        }
        if (rc == KB_OK) {
            check_reencodes(&rec, data, size);
            require(prc == KB_OK && view_is(id, kb_record_id(&rec)));
            if (kind == KB_RECORD_RUN) {
                kb_codec_run_head h;
                require(kb_codec_peek_run(&h, data, size, NULL) == KB_OK);
                require(view_is(h.task_id, rec.run.task_id) && view_is(h.team, rec.run.team) &&
                        view_is(h.space, rec.run.space) &&
                        view_is(h.backbone_id, rec.run.backbone_id) &&
                        h.status == rec.run.status);
                kb_codec_str sid;
                require(kb_codec__peek_run_study(&sid, data, size, NULL) == KB_OK &&
                        view_is(sid, rec.run.study_id));
            }
            if (kind == KB_RECORD_STUDY) {
                kb_codec_str sid, steam, stask;
                require(kb_codec__peek_study(&sid, &steam, &stask, data, size, NULL) == KB_OK);
                require(view_is(sid, rec.study.id) && view_is(steam, rec.study.team) &&
                        view_is(stask, rec.study.task_id) && view_is(team, rec.study.team));
            }
        }
        kb_record_release(&rec);
    }
    return 0;
}
