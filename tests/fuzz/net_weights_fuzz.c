/*
 * Fuzz target: the kb_net weights-file header reader (docs/FORMAT.md, "Weights file"). Any
 * input must be accepted or rejected with an error, never crash; an accepted header must be
 * self-consistent.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kb_net_weights_info info;
    kb_error err = KB_ERROR_INIT;
    if (kb_net_weights_info_parse(&info, data, size, "fuzz", &err) != KB_OK) {
        if (err.msg[0] == '\0') {
            abort(); /* every rejection says why */
        }
        return 0;
    }
    kb_net_arch arch;
    if (info.n_param_layers == 0 || strlen(info.sha256) != 64 ||
        kb_net_arch_parse(&arch, info.arch, &err) != KB_OK ||
        size < 4 * info.n_params + 32) {
        abort();
    }
    return 0;
}
