#include "tools/train_config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/core/buf.h"

/* Take ownership of `name` and `v` as the entry `name` (replacing an old one). */
static int put_param(kb_param **params, size_t *n, char *name, kb_value v)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*params)[i].name, name) == 0) {
            kb_free(name);
            kb_value_release(&(*params)[i].value);
            (*params)[i].value = v;
            return KB_OK;
        }
    }
    kb_param *np = kb_realloc_array(*params, *n + 1, sizeof *np);
    if (np == NULL) {
        kb_free(name);
        kb_value_release(&v);
        return KB_ENOMEM;
    }
    *params = np;
    np[*n].name = name;
    np[*n].value = v;
    (*n)++;
    return KB_OK;
}

/* 2^53: integral doubles up to here convert to int64 exactly */
#define EXACT_INT_LIMIT 9007199254740992.0

static kb_value number_value(double d)
{
    kb_value v = {KB_VALUE_TYPE_FLOAT, d, 0, NULL, 0};
    if (d == floor(d) && fabs(d) <= EXACT_INT_LIMIT) {
        v.type = KB_VALUE_TYPE_INT;
        v.i = (int64_t)d;
    }
    return v;
}

static int read_text(kb_buf *out, const char *path, kb_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return kb_error_set_cause(err, KB_EIO, errno, "--config: cannot open '%s': %s", path,
                                  strerror(errno));
    }
    char chunk[4096];
    size_t got;
    int rc = KB_OK;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (kb_buf_append(out, chunk, got) != KB_OK) {
            rc = kb_error_set(err, KB_ENOMEM, "--config: out of memory");
            break;
        }
    }
    if (rc == KB_OK && ferror(f)) {
        rc = kb_error_set(err, KB_EIO, "--config: reading '%s' failed", path);
    }
    fclose(f);
    if (rc == KB_OK && out->data == NULL && kb_buf_puts(out, "") != KB_OK) {
        rc = kb_error_set(err, KB_ENOMEM, "--config: out of memory");
    }
    return rc;
}

int train_config_add_json(kb_param **params, size_t *n, const char *text, kb_error *err)
{
    KB_CHECK_ARG(params != NULL && n != NULL && text != NULL);
    kb_buf file = KB_BUF_INIT;
    cJSON *root = NULL;
    const char *p = text + strspn(text, " \t\r\n");
    int rc = KB_OK;
    if (*p != '{') {
        rc = read_text(&file, text, err);
        if (rc != KB_OK) {
            goto done;
        }
        p = file.data;
    }
    root = cJSON_Parse(p);
    if (root == NULL || !cJSON_IsObject(root)) {
        rc = kb_error_set(err, KB_EINVAL, "--config: expected a JSON object%s%s",
                          p == text ? "" : " in ", p == text ? "" : text);
        goto done;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        kb_value v = {KB_VALUE_TYPE_NONE, 0.0, 0, NULL, 0};
        if (cJSON_IsNull(item)) {
            continue;
        } else if (cJSON_IsBool(item)) {
            v.type = KB_VALUE_TYPE_BOOL;
            v.b = cJSON_IsTrue(item);
        } else if (cJSON_IsNumber(item)) {
            v = number_value(item->valuedouble);
        } else if (cJSON_IsString(item)) {
            v.type = KB_VALUE_TYPE_STR;
            v.s = kb_strdup(item->valuestring);
            if (v.s == NULL) {
                rc = kb_error_set(err, KB_ENOMEM, "--config: out of memory");
                goto done;
            }
        } else {
            rc = kb_error_set(err, KB_EINVAL,
                              "--config: param '%s': expected a number, string or bool",
                              item->string);
            goto done;
        }
        char *name = kb_strdup(item->string);
        if (name == NULL) {
            kb_value_release(&v);
            rc = kb_error_set(err, KB_ENOMEM, "--config: out of memory");
            goto done;
        }
        if (put_param(params, n, name, v) != KB_OK) {
            rc = kb_error_set(err, KB_ENOMEM, "--config: out of memory");
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    kb_buf_release(&file);
    return rc;
}

int train_config_add_set(kb_param **params, size_t *n, const char *kv, kb_error *err)
{
    KB_CHECK_ARG(params != NULL && n != NULL && kv != NULL);
    const char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv) {
        return kb_error_set(err, KB_EINVAL, "--set '%s': expected KEY=VALUE", kv);
    }
    const char *s = eq + 1;
    kb_value v = {KB_VALUE_TYPE_STR, 0.0, 0, NULL, 0};
    char *end;
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        v.type = KB_VALUE_TYPE_BOOL;
        v.b = s[0] == 't';
    } else if (*s != '\0') {
        errno = 0;
        long long i = strtoll(s, &end, 10);
        if (*end == '\0' && errno == 0) {
            v.type = KB_VALUE_TYPE_INT;
            v.i = i;
        } else {
            double d = strtod(s, &end);
            if (*end == '\0' && isfinite(d)) {
                v.type = KB_VALUE_TYPE_FLOAT;
                v.f = d;
            }
        }
    }
    if (v.type == KB_VALUE_TYPE_STR && (v.s = kb_strdup(s)) == NULL) {
        return kb_error_set(err, KB_ENOMEM, "--set: out of memory");
    }
    char *name = kb_strndup(kv, (size_t)(eq - kv));
    if (name == NULL) {
        kb_value_release(&v);
        return kb_error_set(err, KB_ENOMEM, "--set: out of memory");
    }
    if (put_param(params, n, name, v) != KB_OK) {
        return kb_error_set(err, KB_ENOMEM, "--set: out of memory");
    }
    return KB_OK;
}
