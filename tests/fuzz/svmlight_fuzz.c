/* Fuzz target: the svmlight reader on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "dataset_check.h"
#include "engine/svmlight.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kb_dataset d;
    if (kb_svmlight_read_mem(&d, data, size, "fuzz.svm", NULL, NULL) == KB_OK) {
        fuzz_check_dataset(&d);
        kb_dataset_release(&d);
    }
    (void)kb_svmlight_sniff((const char *)data, size);
    return 0;
}
