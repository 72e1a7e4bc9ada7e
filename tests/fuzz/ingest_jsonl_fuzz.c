/*
 * Fuzz target: kb's JSON Lines / JSON array reader (kb/ingest.c parser layer over kb/json.c).
 * Every delivered record is written back canonically, read again and written again; the two
 * texts must be equal (the writer's round-trip promise), and nothing may crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/buf.h"
#include "kb/ingest.h"
#include "kb/json.h"

static kb_json_reader *reader;

static int check_record(kb_record *rec, const char *file, size_t line, void *payload)
{
    (void)file;
    (void)line;
    (void)payload;
    kb_buf a = KB_BUF_INIT, b = KB_BUF_INIT;
    kb_error err = KB_ERROR_INIT;
    if (kb_json_write_record(&a, rec, &err) == KB_OK) {
        kb_record again;
        kb_task task;
        if (kb_json_read_record(&again, &task, reader, a.data, a.len, NULL, &err) != KB_OK) {
            abort(); /* the writer produced something the reader refuses */
        }
        if (kb_json_write_record(&b, &again, &err) == KB_OK && strcmp(a.data, b.data) != 0) {
            abort(); /* not canonical */
        }
        kb_record_release(&again);
        kb_task_release(&task);
    }
    kb_buf_release(&a);
    kb_buf_release(&b);
    kb_record_release(rec);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kb_error err = KB_ERROR_INIT;
    if (reader == NULL && kb_json_reader_new(&reader, &err) != KB_OK) {
        return 0;
    }
    kb_ingest_opts o = KB_INGEST_OPTS_INIT;
    o.format = KB_INGEST_FORMAT_JSON;
    kb_ingest_parse_buffer(NULL, (const char *)data, size, "fuzz.jsonl", &o, check_record, NULL,
                           &err);
    return 0;
}
