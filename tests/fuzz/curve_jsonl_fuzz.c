/* Fuzz target: the jsonl learning-curve reader, then judge, advise and forecast. */
#include "curve_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return curve_fuzz_run(data, size, KB_CURVEIO_FORMAT_JSONL);
}
