/*
 * Fuzz target: the kb_net snapshot reader (docs/FORMAT.md, "Snapshot file"). Any input must
 * be accepted or rejected with an error, never crash; an accepted snapshot must be
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
    kb_net_snapshot_info info;
    kb_error err = KB_ERROR_INIT;
    if (kb_net_snapshot_info_parse(&info, data, size, "fuzz", &err) != KB_OK) {
        if (err.msg[0] == '\0') {
            abort(); /* every rejection says why */
        }
        return 0;
    }
    if (info.n_train == 0 || strlen(info.sha256) != 64 || strlen(info.weights.sha256) != 64 ||
        info.weights.n_param_layers == 0 || info.optimizer > KB_NET_OPTIMIZER_ADAM ||
        size < 8 * info.n_train + 8 * info.weights.n_params + 32) {
        abort();
    }
    return 0;
}
