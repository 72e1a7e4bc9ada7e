/*
 * jsoncheck: assertions on JSON for the CLI tests (cJSON-based, so tests need no jq).
 *
 *   jsoncheck FILE|- PATH OP [VALUE]
 *
 * PATH is dot-separated: `.accepted`, `.runs.0.id`, `.` for the root; numbers index arrays.
 * OP: `==` (string or number equality), `!=`, `>=`, `<=`, `>`, `<` (numbers), `exists`,
 * `missing`, `len==` (array/object size), `type` (null|bool|number|string|array|object),
 * `print` (prints the value, always succeeds). With `-l` the input is JSON Lines and PATH
 * starts with the line index: `-l 0.id`. Exit 0 when the assertion holds, 1 otherwise.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap + 1);
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (f != stdin) {
        fclose(f);
    }
    if (buf) {
        buf[len] = '\0';
    }
    return buf;
}

static cJSON *walk(cJSON *node, const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    char *save = NULL;
    for (char *tok = strtok_r(tmp, ".", &save); tok && node; tok = strtok_r(NULL, ".", &save)) {
        char *end;
        long idx = strtol(tok, &end, 10);
        if (*end == '\0' && cJSON_IsArray(node)) {
            node = cJSON_GetArrayItem(node, (int)idx);
        } else {
            node = cJSON_GetObjectItemCaseSensitive(node, tok);
        }
    }
    return node;
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "bool";
    if (cJSON_IsNumber(v)) return "number";
    if (cJSON_IsString(v)) return "string";
    if (cJSON_IsArray(v)) return "array";
    return "object";
}

int main(int argc, char **argv)
{
    int lines = 0, a = 1;
    if (a < argc && strcmp(argv[a], "-l") == 0) {
        lines = 1;
        a++;
    }
    if (argc - a < 3) {
        fprintf(stderr, "usage: jsoncheck [-l] FILE|- PATH OP [VALUE]\n");
        return 2;
    }
    const char *file = argv[a], *path = argv[a + 1], *op = argv[a + 2];
    const char *want = argc - a > 3 ? argv[a + 3] : NULL;
    char *text = slurp(file);
    if (!text) {
        return 2;
    }
    cJSON *root;
    if (lines) {
        root = cJSON_CreateArray();
        char *save = NULL;
        for (char *ln = strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
            cJSON *item = cJSON_Parse(ln);
            if (!item) {
                fprintf(stderr, "jsoncheck: invalid JSON line: %.80s\n", ln);
                return 1;
            }
            cJSON_AddItemToArray(root, item);
        }
    } else {
        root = cJSON_Parse(text);
        if (!root) {
            fprintf(stderr, "jsoncheck: invalid JSON in %s\n", file);
            return 1;
        }
    }
    cJSON *v = strcmp(path, ".") == 0 ? root : walk(root, path[0] == '.' ? path + 1 : path);
    int ok = 0;
    if (strcmp(op, "exists") == 0) {
        ok = v != NULL;
    } else if (strcmp(op, "missing") == 0) {
        ok = v == NULL;
    } else if (v == NULL) {
        fprintf(stderr, "jsoncheck: %s: no such path\n", path);
        ok = 0;
    } else if (strcmp(op, "print") == 0) {
        char *s = cJSON_PrintUnformatted(v);
        printf("%s\n", cJSON_IsString(v) ? v->valuestring : s);
        cJSON_free(s);
        ok = 1;
    } else if (strcmp(op, "type") == 0 && want) {
        ok = strcmp(type_name(v), want) == 0;
    } else if (strcmp(op, "len==") == 0 && want) {
        ok = cJSON_GetArraySize(v) == atoi(want);
    } else if (want && (strcmp(op, "==") == 0 || strcmp(op, "!=") == 0)) {
        int eq;
        if (cJSON_IsString(v)) {
            eq = strcmp(v->valuestring, want) == 0;
        } else if (cJSON_IsNumber(v)) {
            eq = v->valuedouble == strtod(want, NULL);
        } else if (cJSON_IsBool(v)) {
            eq = strcmp(want, cJSON_IsTrue(v) ? "true" : "false") == 0;
        } else {
            eq = cJSON_IsNull(v) && strcmp(want, "null") == 0;
        }
        ok = op[0] == '=' ? eq : !eq;
    } else if (want && cJSON_IsNumber(v)) {
        double x = v->valuedouble, y = strtod(want, NULL);
        ok = strcmp(op, ">=") == 0 ? x >= y : strcmp(op, "<=") == 0 ? x <= y
           : strcmp(op, ">") == 0 ? x > y : strcmp(op, "<") == 0 ? x < y : 0;
    }
    if (!ok && strcmp(op, "print") != 0) {
        char *s = v ? cJSON_PrintUnformatted(v) : NULL;
        fprintf(stderr, "jsoncheck: %s %s %s failed (value: %s)\n", path, op, want ? want : "",
                s ? s : "missing");
        cJSON_free(s);
    }
    cJSON_Delete(root);
    free(text);
    return ok ? 0 : 1;
}
