/*
 * Fuzz target: the IDX reader. The first two bytes (little-endian) give the length of the
 * images file; the rest of the input after it is the labels file.
 */
#include <stddef.h>
#include <stdint.h>

#include "dataset_check.h"
#include "engine/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    size_t n_img = (size_t)data[0] | ((size_t)data[1] << 8);
    data += 2;
    size -= 2;
    if (n_img > size) {
        n_img = size;
    }
    kb_dataset d;
    if (kb_idx_read_mem(&d, data, n_img, data + n_img, size - n_img, "fuzz", NULL, NULL) ==
        KB_OK) {
        fuzz_check_dataset(&d);
        kb_dataset_release(&d);
    }
    return 0;
}
