/*
 * kb_error: how every kb library call reports failure.
 *
 * A fallible call returns KB_OK (0) or a negative KB_E* code and, when the caller passed a
 * non-NULL kb_error, fills it with the code, the foreign cause (errno, an MDB_* code or a
 * LAPACK info) and a one-line message. The lowest level that knows the details writes the
 * message; callers propagate it unchanged and may prefix context once at an API boundary.
 * No allocation happens on the error path, so the struct works in out-of-memory handling and
 * in handle-less numeric code alike.
 */
#ifndef KB_ENGINE_CORE_ERROR_H
#define KB_ENGINE_CORE_ERROR_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KB_VERSION_MAJOR 0
#define KB_VERSION_MINOR 1
#define KB_VERSION_PATCH 0

/** The library version as "MAJOR.MINOR.PATCH" (static storage). */
const char *kb_version(void);

enum {
    KB_OK = 0,
    KB_ERROR = -1,      /* generic failure */
    KB_ENOMEM = -2,     /* an allocation failed */
    KB_EINVAL = -3,     /* invalid argument (a caller's bug) */
    KB_ENOTFOUND = -4,  /* no such record, file or key */
    KB_EEXISTS = -5,    /* already present */
    KB_EIO = -6,        /* reading or writing a file failed */
    KB_EFORMAT = -7,    /* input does not follow its format */
    KB_ESTORE = -8,     /* the LMDB store failed */
    KB_ECORRUPT = -9,   /* stored data is inconsistent */
    KB_EVERSION = -10,  /* unsupported format or schema version */
    KB_ENUMERIC = -11,  /* a numeric method failed (not positive definite, no convergence) */
    KB_ECANCELED = -12  /* stopped by the caller (a callback or an interrupt) */
};

#define KB_ERROR_MSG_SIZE 256

typedef struct kb_error {
    int code;                    /* KB_E* (negative), KB_OK when clear */
    int cause;                   /* errno, MDB_* code or LAPACK info behind it; 0 if none */
    char msg[KB_ERROR_MSG_SIZE]; /* one line: no newline, no trailing period */
} kb_error;

#define KB_ERROR_INIT {0, 0, {0}}

/**
 * Fill `err` (NULL-safe) with `code` and a printf-style message; returns `code`.
 * The message is truncated to fit and any newline in it is replaced by a space.
 */
int kb_error_set(kb_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** As kb_error_set, also recording the foreign `cause` (errno, MDB_* code, LAPACK info). */
int kb_error_set_cause(kb_error *err, int code, int cause, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** va_list form of kb_error_set_cause. */
int kb_error_vset(kb_error *err, int code, int cause, const char *fmt, va_list ap);

/**
 * Prefix the message already in `err` with context ("reading 'x.csv': " + old message).
 * Returns err->code (KB_OK if err is NULL). Use once, at an API boundary.
 */
int kb_error_prefix(kb_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Reset `err` to KB_OK with an empty message (NULL-safe). */
void kb_error_clear(kb_error *err);

/** Static text for a KB_E* code ("out of memory", ...). */
const char *kb_strerror(int code);

/**
 * Argument check at a public entry point: on failure sets "invalid argument: 'expr'" and
 * returns KB_EINVAL from the enclosing function, which must have a `kb_error *err` in scope.
 */
#define KB_CHECK_ARG(expr)                                                                   \
    do {                                                                                     \
        if (!(expr)) {                                                                       \
            return kb_error_set(err, KB_EINVAL, "invalid argument: '%s'", #expr);            \
        }                                                                                    \
    } while (0)

#ifdef __cplusplus
}
#endif

#endif
