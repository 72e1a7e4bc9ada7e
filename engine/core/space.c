#include "engine/core/space.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/alloc.h"

void kb_value_release(kb_value *v)
{
    kb_free(v->s);
    memset(v, 0, sizeof *v);
}

int kb_value_copy(kb_value *out, const kb_value *v)
{
    *out = *v;
    out->s = NULL;
    if (v->type == KB_VALUE_TYPE_STR) {
        out->s = kb_strdup(v->s != NULL ? v->s : "");
        if (out->s == NULL) {
            memset(out, 0, sizeof *out);
            return KB_ENOMEM;
        }
    }
    return KB_OK;
}

double kb_value_as_double(const kb_value *v)
{
    switch (v->type) {
    case KB_VALUE_TYPE_FLOAT: return v->f;
    case KB_VALUE_TYPE_INT: return (double)v->i;
    case KB_VALUE_TYPE_BOOL: return v->b ? 1.0 : 0.0;
    default: return NAN;
    }
}

int kb_value_compare(const kb_value *a, const kb_value *b)
{
    if (a->type != b->type) {
        return a->type < b->type ? -1 : 1;
    }
    switch (a->type) {
    case KB_VALUE_TYPE_FLOAT:
        if (isnan(a->f) || isnan(b->f)) {
            return isnan(a->f) - isnan(b->f);
        }
        return (a->f > b->f) - (a->f < b->f);
    case KB_VALUE_TYPE_INT: return (a->i > b->i) - (a->i < b->i);
    case KB_VALUE_TYPE_BOOL: return (a->b != 0) - (b->b != 0);
    case KB_VALUE_TYPE_STR: return strcmp(a->s ? a->s : "", b->s ? b->s : "");
    default: return 0;
    }
}

void kb_params_free(kb_param *p, size_t n)
{
    for (size_t i = 0; p != NULL && i < n; i++) {
        kb_free(p[i].name);
        kb_value_release(&p[i].value);
    }
    kb_free(p);
}

const kb_param *kb_params_find(const kb_param *p, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i].name != NULL && strcmp(p[i].name, name) == 0) {
            return &p[i];
        }
    }
    return NULL;
}

static int param_cmp(const void *a, const void *b)
{
    const kb_param *x = a, *y = b;
    return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

void kb_params_sort(kb_param *p, size_t n)
{
    if (n > 1) {
        qsort(p, n, sizeof *p, param_cmp);
    }
}

void kb_space_release(kb_space *s)
{
    for (size_t i = 0; s->params != NULL && i < s->n_params; i++) {
        kb_space_param *p = &s->params[i];
        kb_free(p->name);
        for (size_t j = 0; j < p->n_choices; j++) {
            kb_free(p->choices[j]);
        }
        kb_free(p->choices);
        kb_value_release(&p->default_value);
        kb_free(p->cond_parent);
        for (size_t j = 0; j < p->n_cond_in; j++) {
            kb_free(p->cond_in[j]);
        }
        kb_free(p->cond_in);
    }
    kb_free(s->params);
    kb_free(s->name);
    memset(s, 0, sizeof *s);
}

const kb_space_param *kb_space_find(const kb_space *s, const char *name)
{
    for (size_t i = 0; i < s->n_params; i++) {
        if (strcmp(s->params[i].name, name) == 0) {
            return &s->params[i];
        }
    }
    return NULL;
}

/* A value as the text a condition compares with: the choice, "true"/"false", or %.17g. */
static void value_text(char *out, size_t n, const kb_value *v)
{
    switch (v->type) {
    case KB_VALUE_TYPE_STR: snprintf(out, n, "%s", v->s ? v->s : ""); break;
    case KB_VALUE_TYPE_BOOL: snprintf(out, n, "%s", v->b ? "true" : "false"); break;
    case KB_VALUE_TYPE_INT: snprintf(out, n, "%lld", (long long)v->i); break;
    case KB_VALUE_TYPE_FLOAT: snprintf(out, n, "%.17g", v->f); break;
    default: out[0] = '\0';
    }
}

/* Whether a value fits parameter `p` (type, range, choice); reason into `why`. */
static int value_fits(const kb_space_param *p, const kb_value *v, const char **why)
{
    switch (p->type) {
    case KB_SPACE_PARAM_FLOAT:
    case KB_SPACE_PARAM_INT: {
        if (v->type != KB_VALUE_TYPE_FLOAT && v->type != KB_VALUE_TYPE_INT) {
            *why = "expected a number";
            return 0;
        }
        if (p->type == KB_SPACE_PARAM_INT && v->type == KB_VALUE_TYPE_FLOAT &&
            v->f != floor(v->f)) {
            *why = "expected an integer";
            return 0;
        }
        double x = kb_value_as_double(v);
        if (!isfinite(x) || x < p->low || x > p->high) {
            *why = "outside the parameter's range";
            return 0;
        }
        return 1;
    }
    case KB_SPACE_PARAM_CATEGORICAL:
        for (size_t j = 0; j < p->n_choices; j++) {
            char t[64];
            value_text(t, sizeof t, v);
            if (strcmp(t, p->choices[j]) == 0) {
                return 1;
            }
        }
        *why = "not one of the choices";
        return 0;
    case KB_SPACE_PARAM_BOOL:
        if (v->type != KB_VALUE_TYPE_BOOL) {
            *why = "expected true or false";
            return 0;
        }
        return 1;
    }
    *why = "unknown parameter type";
    return 0;
}

int kb_space_validate(const kb_space *s, kb_error *err)
{
    KB_CHECK_ARG(s != NULL);
    if (s->name == NULL || s->name[0] == '\0') {
        return kb_error_set(err, KB_EFORMAT, "space: field 'name': must not be empty");
    }
    for (size_t i = 0; i < s->n_params; i++) {
        const kb_space_param *p = &s->params[i];
        if (p->name == NULL || p->name[0] == '\0') {
            return kb_error_set(err, KB_EFORMAT, "param %zu: name must not be empty", i);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->params[j].name, p->name) == 0) {
                return kb_error_set(err, KB_EFORMAT, "param '%s': defined twice", p->name);
            }
        }
        if (p->type == KB_SPACE_PARAM_FLOAT || p->type == KB_SPACE_PARAM_INT) {
            if (!isfinite(p->low) || !isfinite(p->high) || p->low > p->high) {
                return kb_error_set(err, KB_EFORMAT,
                                    "param '%s': range needs finite low <= high", p->name);
            }
            if (p->log && p->low <= 0) {
                return kb_error_set(err, KB_EFORMAT, "param '%s': log scale needs low > 0",
                                    p->name);
            }
        } else if (p->type == KB_SPACE_PARAM_CATEGORICAL) {
            if (p->n_choices == 0) {
                return kb_error_set(err, KB_EFORMAT, "param '%s': no choices", p->name);
            }
            for (size_t j = 0; j < p->n_choices; j++) {
                for (size_t k = 0; k < j; k++) {
                    if (strcmp(p->choices[j], p->choices[k]) == 0) {
                        return kb_error_set(err, KB_EFORMAT, "param '%s': choice '%s' twice",
                                            p->name, p->choices[j]);
                    }
                }
            }
        } else if (p->type != KB_SPACE_PARAM_BOOL) {
            return kb_error_set(err, KB_EFORMAT, "param '%s': unknown type", p->name);
        }
        const char *why = NULL;
        if (p->default_value.type != KB_VALUE_TYPE_NONE && !value_fits(p, &p->default_value, &why)) {
            return kb_error_set(err, KB_EFORMAT, "param '%s': default %s", p->name, why);
        }
        if (p->cond_parent != NULL) {
            const kb_space_param *parent = kb_space_find(s, p->cond_parent);
            if (parent == NULL || parent == p) {
                return kb_error_set(err, KB_EFORMAT, "param '%s': condition on unknown '%s'",
                                    p->name, p->cond_parent);
            }
            /* Conditions form a forest: walking up from p must end within n_params steps. */
            size_t steps = 0;
            for (const kb_space_param *q = parent; q != NULL && q->cond_parent != NULL;
                 q = kb_space_find(s, q->cond_parent)) {
                if (++steps > s->n_params) {
                    return kb_error_set(err, KB_EFORMAT, "param '%s': conditions form a cycle",
                                        p->name);
                }
            }
            if (p->n_cond_in == 0) {
                return kb_error_set(err, KB_EFORMAT, "param '%s': condition lists no values",
                                    p->name);
            }
        }
    }
    return KB_OK;
}

static int is_active(const kb_space *s, const kb_space_param *p, const kb_param *config,
                     size_t n)
{
    for (size_t depth = 0; p != NULL && p->cond_parent != NULL && depth <= s->n_params; depth++) {
        const kb_param *pv = kb_params_find(config, n, p->cond_parent);
        if (pv == NULL) {
            return 0;
        }
        char t[64];
        value_text(t, sizeof t, &pv->value);
        int hit = 0;
        for (size_t j = 0; j < p->n_cond_in && !hit; j++) {
            hit = strcmp(t, p->cond_in[j]) == 0;
        }
        if (!hit) {
            return 0;
        }
        p = kb_space_find(s, p->cond_parent);
    }
    return 1;
}

int kb_space_check_config(const kb_space *s, const kb_param *config, size_t n, kb_error *err)
{
    KB_CHECK_ARG(s != NULL);
    for (size_t i = 0; i < n; i++) {
        if (kb_space_find(s, config[i].name) == NULL) {
            return kb_error_set(err, KB_EFORMAT, "param '%s': not in space '%s'",
                                config[i].name, s->name);
        }
    }
    for (size_t i = 0; i < s->n_params; i++) {
        const kb_space_param *p = &s->params[i];
        const kb_param *v = kb_params_find(config, n, p->name);
        int active = is_active(s, p, config, n);
        if (!active) {
            if (v != NULL) {
                return kb_error_set(err, KB_EFORMAT, "param '%s': set but inactive", p->name);
            }
            continue;
        }
        if (v == NULL) {
            return kb_error_set(err, KB_EFORMAT, "param '%s': missing", p->name);
        }
        const char *why = NULL;
        if (!value_fits(p, &v->value, &why)) {
            return kb_error_set(err, KB_EFORMAT, "param '%s': %s", p->name, why);
        }
    }
    return KB_OK;
}
