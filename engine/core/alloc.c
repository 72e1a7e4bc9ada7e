#include "engine/core/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * The failure countdown is the one mutable global of kbcore: a test-only hook, in the spirit
 * of libgit2's failalloc. Negative means "never fail".
 */
static long fail_countdown = -1;

static int should_fail(void)
{
    if (fail_countdown < 0) {
        return 0;
    }
    if (fail_countdown == 0) {
        return 1;
    }
    fail_countdown--;
    return 0;
}

void kb_alloc_fail_after(long n)
{
    fail_countdown = n;
}

void *kb_malloc(size_t n)
{
    if (should_fail()) {
        return NULL;
    }
    return malloc(n == 0 ? 1 : n);
}

void *kb_calloc(size_t count, size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    if (count == 0 || size == 0) {
        return calloc(1, 1);
    }
    return calloc(count, size);
}

void *kb_realloc(void *p, size_t n)
{
    if (should_fail()) {
        return NULL;
    }
    return realloc(p, n == 0 ? 1 : n);
}

void kb_free(void *p)
{
    free(p);
}

char *kb_strndup(const char *s, size_t n)
{
    if (s == NULL) {
        return NULL;
    }
    char *d = kb_malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *kb_strdup(const char *s)
{
    return s == NULL ? NULL : kb_strndup(s, strlen(s));
}

void *kb_malloc_array(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size) {
        return NULL;
    }
    return kb_malloc(count * size);
}

void *kb_realloc_array(void *p, size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size) {
        return NULL;
    }
    return kb_realloc(p, count * size);
}
