/*
 * Fuzz target: the Optuna CSV reader (kb/ingest.c parser layer). Every delivered run must pass
 * the shared run checks and survive a canonical JSON write; nothing may crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>

#include "engine/core/buf.h"
#include "kb/ingest.h"
#include "kb/json.h"

static int check_record(kb_record *rec, const char *file, size_t line, void *payload)
{
    (void)file;
    (void)line;
    (void)payload;
    kb_error err = KB_ERROR_INIT;
    if (rec->kind != KB_RECORD_RUN || kb_json_check_run(&rec->run, &err) != KB_OK) {
        abort();
    }
    kb_buf b = KB_BUF_INIT;
    kb_json_write_record(&b, rec, &err);
    kb_buf_release(&b);
    kb_record_release(rec);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kb_error err = KB_ERROR_INIT;
    kb_ingest_opts o = KB_INGEST_OPTS_INIT;
    o.format = KB_INGEST_FORMAT_OPTUNA_CSV;
    o.task_id = "fuzz";
    kb_ingest_parse_buffer(NULL, (const char *)data, size, "fuzz.csv", &o, check_record, NULL,
                           &err);
    return 0;
}
