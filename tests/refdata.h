/*
 * Reader of reference files written by the scripts in tests/ref: one record per line,
 * "name count v1 v2 ...". refdata_get returns a malloc'd array (caller frees) or NULL.
 */
#ifndef KB_TESTS_REFDATA_H
#define KB_TESTS_REFDATA_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double *refdata_get(const char *path, const char *name, size_t *n_out)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    char key[128];
    size_t n;
    double *v = NULL;
    while (fscanf(f, "%127s %zu", key, &n) == 2) {
        int hit = strcmp(key, name) == 0;
        double *buf = hit ? malloc((n + 1) * sizeof(double)) : NULL;
        for (size_t i = 0; i < n; i++) {
            double t;
            if (fscanf(f, "%lf", &t) != 1) {
                free(buf);
                fclose(f);
                return NULL;
            }
            if (buf != NULL) {
                buf[i] = t;
            }
        }
        if (hit) {
            v = buf;
            *n_out = n;
            break;
        }
    }
    fclose(f);
    if (v == NULL) {
        fprintf(stderr, "%s: no record '%s'\n", path, name);
    }
    return v;
}

#endif
