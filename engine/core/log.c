#include "engine/core/log.h"

#include <stdarg.h>
#include <stdio.h>

void kb_log_printf(const kb_log *log, kb_log_level level, const char *fmt, ...)
{
    if (log == NULL || log->fn == NULL) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log->fn(level, msg, log->payload);
}
