/* Fuzz target: the CSV reader on arbitrary bytes, with the task chosen by the first byte. */
#include <stddef.h>
#include <stdint.h>

#include "dataset_check.h"
#include "engine/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kb_dataset_opts o = KB_DATASET_OPTS_INIT;
    if (size > 0) {
        o.task = (kb_dataset_task)(data[0] % 3);
    }
    kb_dataset d;
    if (kb_csv_read_mem(&d, data, size, "fuzz.csv", &o, NULL) == KB_OK) {
        fuzz_check_dataset(&d);
        kb_dataset_release(&d);
    }
    return 0;
}
