/*
 * Minimal assertions for kb's unit tests. Each CHECK prints file:line and the expression on
 * failure and counts it; a test's main returns check_exit() so CTest sees the failure.
 */
#ifndef KB_TESTS_CHECK_H
#define KB_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/error.h"

static int check_failures;
static int check_count;

#define CHECK(expr)                                                                          \
    do {                                                                                     \
        check_count++;                                                                       \
        if (!(expr)) {                                                                       \
            check_failures++;                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr);         \
        }                                                                                    \
    } while (0)

/* expr returns a kb code; err is the kb_error it filled */
#define CHECK_OK(expr, err)                                                                  \
    do {                                                                                     \
        check_count++;                                                                       \
        int check_rc_ = (expr);                                                              \
        if (check_rc_ != KB_OK) {                                                            \
            check_failures++;                                                                \
            fprintf(stderr, "%s:%d: CHECK_OK failed: %s -> %d (%s): %s\n", __FILE__,         \
                    __LINE__, #expr, check_rc_, kb_strerror(check_rc_), (err).msg);          \
        }                                                                                    \
    } while (0)

#define CHECK_CODE(expr, code)                                                               \
    do {                                                                                     \
        check_count++;                                                                       \
        int check_rc_ = (expr);                                                              \
        if (check_rc_ != (code)) {                                                           \
            check_failures++;                                                                \
            fprintf(stderr, "%s:%d: CHECK_CODE failed: %s -> %d, expected %d\n", __FILE__,   \
                    __LINE__, #expr, check_rc_, (int)(code));                                \
        }                                                                                    \
    } while (0)

/* |a - b| <= atol + rtol * |b|; NaN never passes */
#define CHECK_NEAR(a, b, rtol, atol)                                                         \
    do {                                                                                     \
        check_count++;                                                                       \
        double check_a_ = (a), check_b_ = (b);                                               \
        if (!(fabs(check_a_ - check_b_) <= (atol) + (rtol) * fabs(check_b_))) {              \
            check_failures++;                                                                \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.17g, %s = %.17g\n", __FILE__,  \
                    __LINE__, #a, check_a_, #b, check_b_);                                   \
        }                                                                                    \
    } while (0)

#define CHECK_STR(a, b)                                                                      \
    do {                                                                                     \
        check_count++;                                                                       \
        const char *check_a_ = (a), *check_b_ = (b);                                         \
        if (check_a_ == NULL || check_b_ == NULL || strcmp(check_a_, check_b_) != 0) {       \
            check_failures++;                                                                \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s = \"%s\", %s = \"%s\"\n", __FILE__, \
                    __LINE__, #a, check_a_ ? check_a_ : "(null)", #b,                        \
                    check_b_ ? check_b_ : "(null)");                                         \
        }                                                                                    \
    } while (0)

static inline int check_exit(void)
{
    if (check_failures > 0) {
        fprintf(stderr, "%d of %d checks failed\n", check_failures, check_count);
        return 1;
    }
    fprintf(stderr, "all %d checks passed\n", check_count);
    return 0;
}

/*
 * Allocation-failure sweep: run `fn` with the Nth allocation failing, for N = 0, 1, ... until
 * it succeeds (at most `max_n` tries). Every failing run must return KB_ENOMEM (and, under
 * the sanitizers, leak nothing); the last one must succeed. Needs engine/core/alloc.h.
 */
#define CHECK_ENOMEM_SWEEP(fn, max_n)                                                        \
    do {                                                                                     \
        int sweep_rc_ = KB_ENOMEM, sweep_only_ = 1;                                          \
        for (long sweep_n_ = 0; sweep_rc_ == KB_ENOMEM && sweep_n_ < (max_n); sweep_n_++) {  \
            kb_alloc_fail_after(sweep_n_);                                                   \
            sweep_rc_ = (fn)();                                                              \
            kb_alloc_fail_after(-1);                                                         \
            sweep_only_ &= sweep_rc_ == KB_ENOMEM || sweep_rc_ == KB_OK;                     \
        }                                                                                    \
        CHECK(sweep_rc_ == KB_OK && sweep_only_);                                            \
    } while (0)

/* Path of a test data file: $KB_TEST_DATA/name (tests/data by default) */
static inline const char *check_data_path(const char *name)
{
    static char path[4096];
    const char *dir = getenv("KB_TEST_DATA");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", name);
    return path;
}

#endif
