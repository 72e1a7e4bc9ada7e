/*
 * Fuzz target: the architecture-search checkpoints for the default 28x28 space: an input
 * starting "KBAR" goes to kb_archsearch_adarandom_load, anything else to
 * kb_archsearch_reinforce_load. A state that loads must sample and learn without trouble.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/archsearch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kb_archsearch_space space = KB_ARCHSEARCH_SPACE_INIT;
    kb_net_arch a;
    if (size >= 4 && memcmp(data, "KBAR", 4) == 0) {
        kb_archsearch_adarandom *ar = NULL;
        if (kb_archsearch_adarandom_load(&ar, &space, data, size, NULL) != KB_OK) {
            return 0;
        }
        for (int i = 0; i < 4; i++) {
            if (kb_archsearch_adarandom_sample(&a, ar, NULL) != KB_OK ||
                kb_archsearch_adarandom_tell(ar, &a, 0.25 * i, NULL) != KB_OK) {
                break;
            }
        }
        kb_archsearch_adarandom_free(ar);
        return 0;
    }
    kb_archsearch_reinforce *rl = NULL;
    if (kb_archsearch_reinforce_load(&rl, &space, data, size, NULL) != KB_OK) {
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        if (kb_archsearch_reinforce_sample(&a, rl, NULL) != KB_OK ||
            kb_archsearch_reinforce_tell(rl, &a, 0.25 * i, NULL) != KB_OK) {
            break;
        }
    }
    kb_archsearch_reinforce_free(rl);
    return 0;
}
