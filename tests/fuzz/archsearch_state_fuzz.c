/*
 * Fuzz target: the REINFORCE controller checkpoint (kb_archsearch_reinforce_load) for the
 * default 28x28 space. A state that loads must sample and learn without trouble.
 */
#include <stddef.h>
#include <stdint.h>

#include "engine/archsearch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kb_archsearch_space space = KB_ARCHSEARCH_SPACE_INIT;
    kb_archsearch_reinforce *rl = NULL;
    if (kb_archsearch_reinforce_load(&rl, &space, data, size, NULL) != KB_OK) {
        return 0;
    }
    kb_net_arch a;
    for (int i = 0; i < 4; i++) {
        if (kb_archsearch_reinforce_sample(&a, rl, NULL) != KB_OK ||
            kb_archsearch_reinforce_tell(rl, &a, 0.25 * i, NULL) != KB_OK) {
            break;
        }
    }
    kb_archsearch_reinforce_free(rl);
    return 0;
}
