/*
 * kb_log: libraries never print. Diagnostics (warnings, progress) go to a callback the caller
 * sets; the default (NULL) is silent, so `--json` output stays clean.
 */
#ifndef KB_ENGINE_CORE_LOG_H
#define KB_ENGINE_CORE_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kb_log_level {
    KB_LOG_LEVEL_DEBUG = 0,
    KB_LOG_LEVEL_INFO = 1,     /* progress */
    KB_LOG_LEVEL_WARNING = 2
} kb_log_level;

/** Receives one message line (no newline); `payload` is the caller's pointer. */
typedef void (*kb_log_fn)(kb_log_level level, const char *msg, void *payload);

/** A log target: function plus payload; a zeroed struct is silent. */
typedef struct kb_log {
    kb_log_fn fn;
    void *payload;
} kb_log;

/** Format and deliver one message; a no-op when `log` or `log->fn` is NULL. */
void kb_log_printf(const kb_log *log, kb_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
