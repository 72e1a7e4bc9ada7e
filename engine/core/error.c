#include "engine/core/error.h"

#include <stdio.h>
#include <string.h>

#define KB_STR2(x) #x
#define KB_STR(x) KB_STR2(x)

const char *kb_version(void)
{
    return KB_STR(KB_VERSION_MAJOR) "." KB_STR(KB_VERSION_MINOR) "." KB_STR(KB_VERSION_PATCH);
}

static void one_line(char *s)
{
    for (; *s; s++) {
        if (*s == '\n' || *s == '\r') {
            *s = ' ';
        }
    }
}

int kb_error_vset(kb_error *err, int code, int cause, const char *fmt, va_list ap)
{
    if (err == NULL) {
        return code;
    }
    err->code = code;
    err->cause = cause;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    one_line(err->msg);
    return code;
}

int kb_error_set(kb_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kb_error_vset(err, code, 0, fmt, ap);
    va_end(ap);
    return code;
}

int kb_error_set_cause(kb_error *err, int code, int cause, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kb_error_vset(err, code, cause, fmt, ap);
    va_end(ap);
    return code;
}

int kb_error_prefix(kb_error *err, const char *fmt, ...)
{
    if (err == NULL) {
        return KB_OK;
    }
    char old[KB_ERROR_MSG_SIZE];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof err->msg) {
        snprintf(err->msg + n, sizeof err->msg - (size_t)n, "%s", old);
    }
    one_line(err->msg);
    return err->code;
}

void kb_error_clear(kb_error *err)
{
    if (err != NULL) {
        err->code = KB_OK;
        err->cause = 0;
        err->msg[0] = '\0';
    }
}

const char *kb_strerror(int code)
{
    switch (code) {
    case KB_OK: return "success";
    case KB_ERROR: return "error";
    case KB_ENOMEM: return "out of memory";
    case KB_EINVAL: return "invalid argument";
    case KB_ENOTFOUND: return "not found";
    case KB_EEXISTS: return "already exists";
    case KB_EIO: return "input/output error";
    case KB_EFORMAT: return "bad format";
    case KB_ESTORE: return "store failure";
    case KB_ECORRUPT: return "store inconsistent";
    case KB_EVERSION: return "unsupported version";
    case KB_ENUMERIC: return "numeric failure";
    case KB_ECANCELED: return "canceled";
    default: return "unknown error";
    }
}
