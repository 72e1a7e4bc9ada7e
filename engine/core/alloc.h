/*
 * Allocation hooks: every allocation in kb's libraries goes through these, so that a test can
 * make the Nth allocation fail and check that each out-of-memory path cleans up and reports
 * KB_ENOMEM. The functions behave like their libc namesakes.
 */
#ifndef KB_ENGINE_CORE_ALLOC_H
#define KB_ENGINE_CORE_ALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

void *kb_malloc(size_t n);
void *kb_calloc(size_t count, size_t size);
void *kb_realloc(void *p, size_t n);
void kb_free(void *p);

/** Duplicate a NUL-terminated string (NULL in, NULL out); NULL when out of memory. */
char *kb_strdup(const char *s);
/** Duplicate the first `n` bytes of `s` and terminate them. */
char *kb_strndup(const char *s, size_t n);

/**
 * kb_malloc(count * size), or NULL if the product overflows or memory runs out.
 * Use it for every array allocation: `kb_malloc_array(n, sizeof(double))`.
 */
void *kb_malloc_array(size_t count, size_t size);
/** kb_realloc(p, count * size) with the same overflow check. */
void *kb_realloc_array(void *p, size_t count, size_t size);

/**
 * Test hook: after `n` more successful allocations, every allocation fails (returns NULL)
 * until the hook is reset with a negative `n`. Not thread-safe; for tests only.
 */
void kb_alloc_fail_after(long n);

#ifdef __cplusplus
}
#endif

#endif
