#include "engine/encode.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/alloc.h"

#define NONE ((size_t)-1)

typedef struct enc_param {
    const kb_space_param *p;
    size_t n_choices;      /* 0 numeric */
    size_t x_offset;       /* first kernel feature */
    double t_low, t_high;  /* range in model space (log when p->log) */
    size_t parent;         /* NONE when unconditional */
    unsigned char *cond_choice; /* parent categorical/bool: choice k activates */
    double *cond_values;   /* parent numeric: accepted values */
    size_t n_cond_values;
    double u_default;      /* u of the default, or 0.5 */
} enc_param;

struct kb_encode {
    const kb_space *space;
    size_t n_params, n_dims;
    enc_param *params;
    size_t *order; /* parents before children */
};

size_t kb_encode_n_params(const kb_encode *e) { return e->n_params; }
size_t kb_encode_n_dims(const kb_encode *e) { return e->n_dims; }
const kb_space_param *kb_encode_param(const kb_encode *e, size_t j) { return e->params[j].p; }
size_t kb_encode_n_choices(const kb_encode *e, size_t j) { return e->params[j].n_choices; }

static double to_model(const enc_param *q, double v)
{
    return q->p->log ? log(v) : v;
}

static double numeric_u(const enc_param *q, double v)
{
    double span = q->t_high - q->t_low;
    if (!(span > 0.0)) {
        return 0.5;
    }
    double u = (to_model(q, v) - q->t_low) / span;
    return u < 0.0 ? 0.0 : (u > 1.0 ? 1.0 : u);
}

static double numeric_value(const enc_param *q, double u)
{
    double t = q->t_low + u * (q->t_high - q->t_low);
    double v = q->p->log ? exp(t) : t;
    if (q->p->type == KB_SPACE_PARAM_INT) {
        v = round(v);
    }
    return v < q->p->low ? q->p->low : (v > q->p->high ? q->p->high : v);
}

static size_t choice_of(const enc_param *q, double u)
{
    double k = floor(u * (double)q->n_choices);
    if (!(k >= 0.0)) {
        return 0;
    }
    return k >= (double)q->n_choices ? q->n_choices - 1 : (size_t)k;
}

static double choice_u(const enc_param *q, size_t k)
{
    return ((double)k + 0.5) / (double)q->n_choices;
}

static size_t find_choice(const kb_space_param *p, const char *s)
{
    for (size_t k = 0; k < p->n_choices; k++) {
        if (strcmp(p->choices[k], s) == 0) {
            return k;
        }
    }
    return NONE;
}

void kb_encode_free(kb_encode *e)
{
    if (e == NULL) {
        return;
    }
    for (size_t j = 0; e->params != NULL && j < e->n_params; j++) {
        kb_free(e->params[j].cond_choice);
        kb_free(e->params[j].cond_values);
    }
    kb_free(e->params);
    kb_free(e->order);
    kb_free(e);
}

static size_t depth_of(const kb_encode *e, size_t j)
{
    size_t d = 0;
    while (e->params[j].parent != NONE && d <= e->n_params) {
        j = e->params[j].parent;
        d++;
    }
    return d;
}

static int setup_condition(kb_encode *e, enc_param *q, kb_error *err)
{
    const kb_space *s = e->space;
    const kb_space_param *par = kb_space_find(s, q->p->cond_parent);
    q->parent = (size_t)(par - s->params);
    const enc_param *pq = &e->params[q->parent];
    if (pq->n_choices > 0) {
        q->cond_choice = kb_calloc(pq->n_choices, 1);
        if (q->cond_choice == NULL) {
            return kb_error_set(err, KB_ENOMEM, "encode: out of memory");
        }
        for (size_t c = 0; c < q->p->n_cond_in; c++) {
            const char *t = q->p->cond_in[c];
            if (par->type == KB_SPACE_PARAM_BOOL) {
                if (strcmp(t, "true") == 0) {
                    q->cond_choice[1] = 1;
                } else if (strcmp(t, "false") == 0) {
                    q->cond_choice[0] = 1;
                }
            } else {
                size_t k = find_choice(par, t);
                if (k != NONE) {
                    q->cond_choice[k] = 1;
                }
            }
        }
        return KB_OK;
    }
    q->cond_values = kb_malloc_array(q->p->n_cond_in, sizeof(double));
    if (q->cond_values == NULL) {
        return kb_error_set(err, KB_ENOMEM, "encode: out of memory");
    }
    for (size_t c = 0; c < q->p->n_cond_in; c++) {
        char *end = NULL;
        double v = strtod(q->p->cond_in[c], &end);
        if (end != q->p->cond_in[c] && *end == '\0') {
            q->cond_values[q->n_cond_values++] = v;
        }
    }
    return KB_OK;
}

int kb_encode_new(kb_encode **out, const kb_space *space, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && space != NULL);
    *out = NULL;
    int rc = kb_space_validate(space, err);
    if (rc != KB_OK) {
        return rc;
    }
    kb_encode *e = kb_calloc(1, sizeof *e);
    if (e == NULL) {
        return kb_error_set(err, KB_ENOMEM, "encode: out of memory");
    }
    e->space = space;
    e->n_params = space->n_params;
    e->params = kb_calloc(e->n_params > 0 ? e->n_params : 1, sizeof *e->params);
    e->order = kb_malloc_array(e->n_params > 0 ? e->n_params : 1, sizeof *e->order);
    if (e->params == NULL || e->order == NULL) {
        kb_encode_free(e);
        return kb_error_set(err, KB_ENOMEM, "encode: out of memory");
    }
    for (size_t j = 0; j < e->n_params; j++) {
        enc_param *q = &e->params[j];
        q->p = &space->params[j];
        q->parent = NONE;
        q->x_offset = e->n_dims;
        switch (q->p->type) {
        case KB_SPACE_PARAM_CATEGORICAL:
            q->n_choices = q->p->n_choices;
            e->n_dims += q->n_choices;
            break;
        case KB_SPACE_PARAM_BOOL:
            q->n_choices = 2;
            e->n_dims += 1;
            break;
        default:
            q->t_low = to_model(q, q->p->low);
            q->t_high = to_model(q, q->p->high);
            e->n_dims += 1;
        }
    }
    for (size_t j = 0; j < e->n_params; j++) {
        enc_param *q = &e->params[j];
        if (q->p->cond_parent != NULL && (rc = setup_condition(e, q, err)) != KB_OK) {
            kb_encode_free(e);
            return rc;
        }
        const kb_value *dv = &q->p->default_value;
        q->u_default = 0.5;
        if (q->n_choices == 0 && (dv->type == KB_VALUE_TYPE_FLOAT || dv->type == KB_VALUE_TYPE_INT)) {
            q->u_default = numeric_u(q, kb_value_as_double(dv));
        } else if (dv->type == KB_VALUE_TYPE_BOOL && q->p->type == KB_SPACE_PARAM_BOOL) {
            q->u_default = choice_u(q, dv->b ? 1 : 0);
        } else if (dv->type == KB_VALUE_TYPE_STR && q->p->type == KB_SPACE_PARAM_CATEGORICAL) {
            size_t k = find_choice(q->p, dv->s);
            q->u_default = k != NONE ? choice_u(q, k) : 0.5;
        }
    }
    /* order parameters by condition depth so parents are decided before their children */
    size_t n_done = 0;
    for (size_t d = 0; n_done < e->n_params && d <= e->n_params; d++) {
        for (size_t j = 0; j < e->n_params; j++) {
            if (depth_of(e, j) == d) {
                e->order[n_done++] = j;
            }
        }
    }
    *out = e;
    return KB_OK;
}

/* Whether q's condition holds given its parent's (snapped, active) u value. */
static int condition_holds(const kb_encode *e, const enc_param *q, double parent_u)
{
    const enc_param *pq = &e->params[q->parent];
    if (isnan(parent_u)) {
        return 0;
    }
    if (pq->n_choices > 0) {
        return q->cond_choice[choice_of(pq, parent_u)] != 0;
    }
    double v = numeric_value(pq, parent_u);
    for (size_t c = 0; c < q->n_cond_values; c++) {
        if (fabs(v - q->cond_values[c]) <= 1e-12 * fmax(1.0, fabs(v))) {
            return 1;
        }
    }
    return 0;
}

int kb_encode_active(const kb_encode *e, const double *u, size_t j)
{
    (void)e;
    return !isnan(u[j]);
}

void kb_encode_snap(const kb_encode *e, double *u)
{
    for (size_t o = 0; o < e->n_params; o++) {
        size_t j = e->order[o];
        const enc_param *q = &e->params[j];
        if (q->parent != NONE && !condition_holds(e, q, u[q->parent])) {
            u[j] = NAN;
            continue;
        }
        double v = u[j];
        if (isnan(v)) {
            v = q->u_default;
        }
        v = v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
        if (q->n_choices > 0) {
            v = choice_u(q, choice_of(q, v));
        } else if (q->p->type == KB_SPACE_PARAM_INT) {
            v = numeric_u(q, numeric_value(q, v));
        }
        u[j] = v;
    }
}

int kb_encode_same(const double *a, size_t inc_a, const double *b, size_t inc_b, size_t p)
{
    /* u lives in [0, 1]: a configuration that went through decode and encode again (as a
       stored trial does, log scales and all) differs from its u by round-off only */
    for (size_t j = 0; j < p; j++) {
        double x = a[j * inc_a], y = b[j * inc_b];
        if (!(fabs(x - y) <= KB_ENCODE_SAME_TOL || (isnan(x) && isnan(y)))) {
            return 0;
        }
    }
    return 1;
}

void kb_encode_features(double *x_out, const kb_encode *e, const double *u)
{
    kb_encode_features_matrix(x_out, 1, e, u, 1, 1);
}

void kb_encode_features_matrix(double *x_out, size_t ld_x, const kb_encode *e, const double *u,
                               size_t ld_u, size_t n)
{
    for (size_t j = 0; j < e->n_params; j++) {
        const enc_param *q = &e->params[j];
        for (size_t i = 0; i < n; i++) {
            double v = u[i + j * ld_u];
            double *x = x_out + i + q->x_offset * ld_x;
            if (q->p->type == KB_SPACE_PARAM_CATEGORICAL) {
                size_t k = isnan(v) ? NONE : choice_of(q, v);
                for (size_t c = 0; c < q->n_choices; c++) {
                    x[c * ld_x] = c == k ? 1.0 : 0.0;
                }
            } else if (q->p->type == KB_SPACE_PARAM_BOOL) {
                x[0] = isnan(v) ? 0.5 : (double)choice_of(q, v);
            } else {
                x[0] = isnan(v) ? 0.5 : v;
            }
        }
    }
}

int kb_encode_config(double *u_out, const kb_encode *e, const kb_param *config, size_t n,
                     kb_error *err)
{
    KB_CHECK_ARG(u_out != NULL && e != NULL && (config != NULL || n == 0));
    int rc = kb_space_check_config(e->space, config, n, err);
    if (rc != KB_OK) {
        return rc;
    }
    for (size_t j = 0; j < e->n_params; j++) {
        const enc_param *q = &e->params[j];
        const kb_param *pv = kb_params_find(config, n, q->p->name);
        if (pv == NULL) {
            u_out[j] = NAN;
        } else if (q->p->type == KB_SPACE_PARAM_CATEGORICAL) {
            u_out[j] = choice_u(q, find_choice(q->p, pv->value.s));
        } else if (q->p->type == KB_SPACE_PARAM_BOOL) {
            u_out[j] = choice_u(q, pv->value.b ? 1 : 0);
        } else {
            u_out[j] = numeric_u(q, kb_value_as_double(&pv->value));
        }
    }
    return KB_OK;
}

int kb_encode_decode(kb_param **config_out, size_t *n_out, const kb_encode *e, const double *u,
                     kb_error *err)
{
    KB_CHECK_ARG(config_out != NULL && n_out != NULL && e != NULL && u != NULL);
    *config_out = NULL;
    *n_out = 0;
    double *us = kb_malloc_array(e->n_params + 1, sizeof(double));
    kb_param *cfg = kb_calloc(e->n_params + 1, sizeof(kb_param));
    if (us == NULL || cfg == NULL) {
        kb_free(us);
        kb_free(cfg);
        return kb_error_set(err, KB_ENOMEM, "encode: out of memory");
    }
    memcpy(us, u, e->n_params * sizeof(double));
    kb_encode_snap(e, us);
    size_t m = 0;
    for (size_t j = 0; j < e->n_params; j++) {
        const enc_param *q = &e->params[j];
        if (isnan(us[j])) {
            continue;
        }
        kb_param *c = &cfg[m++];
        c->name = kb_strdup(q->p->name);
        if (c->name == NULL) {
            goto oom;
        }
        switch (q->p->type) {
        case KB_SPACE_PARAM_CATEGORICAL:
            c->value.type = KB_VALUE_TYPE_STR;
            c->value.s = kb_strdup(q->p->choices[choice_of(q, us[j])]);
            if (c->value.s == NULL) {
                goto oom;
            }
            break;
        case KB_SPACE_PARAM_BOOL:
            c->value.type = KB_VALUE_TYPE_BOOL;
            c->value.b = (int)choice_of(q, us[j]);
            break;
        case KB_SPACE_PARAM_INT:
            c->value.type = KB_VALUE_TYPE_INT;
            c->value.i = (int64_t)numeric_value(q, us[j]);
            break;
        default:
            c->value.type = KB_VALUE_TYPE_FLOAT;
            c->value.f = numeric_value(q, us[j]);
        }
    }
    kb_free(us);
    kb_params_sort(cfg, m);
    *config_out = cfg;
    *n_out = m;
    return KB_OK;
oom:
    kb_free(us);
    kb_params_free(cfg, m);
    return kb_error_set(err, KB_ENOMEM, "encode: out of memory");
}

/*
 * Joe & Kuo (2008) direction numbers, file new-joe-kuo-6.21201, dimensions 2..21:
 * degree s, coefficient a, initial m_1..m_s. Dimension 1 is the van der Corput sequence.
 */
static const struct {
    unsigned s, a, m[8];
} joe_kuo[KB_ENCODE_SOBOL_MAX_DIM - 1] = {
    {1, 0, {1}},
    {2, 1, {1, 3}},
    {3, 1, {1, 3, 1}},
    {3, 2, {1, 1, 1}},
    {4, 1, {1, 1, 3, 3}},
    {4, 4, {1, 3, 5, 13}},
    {5, 2, {1, 1, 5, 5, 17}},
    {5, 4, {1, 1, 5, 5, 5}},
    {5, 7, {1, 1, 7, 11, 19}},
    {5, 11, {1, 1, 5, 1, 1}},
    {5, 13, {1, 1, 1, 3, 11}},
    {5, 14, {1, 3, 5, 5, 31}},
    {6, 1, {1, 3, 3, 9, 7, 49}},
    {6, 13, {1, 1, 1, 15, 21, 21}},
    {6, 16, {1, 3, 1, 13, 27, 49}},
    {6, 19, {1, 1, 1, 15, 7, 5}},
    {6, 22, {1, 3, 1, 15, 13, 25}},
    {6, 25, {1, 1, 5, 5, 19, 61}},
    {7, 1, {1, 3, 7, 11, 23, 15, 103}},
    {7, 4, {1, 3, 7, 13, 13, 15, 69}},
};

#define SOBOL_BITS 32

static void sobol_directions(uint32_t v[SOBOL_BITS], size_t dim)
{
    if (dim == 0) {
        for (unsigned b = 0; b < SOBOL_BITS; b++) {
            v[b] = (uint32_t)1u << (SOBOL_BITS - 1 - b);
        }
        return;
    }
    unsigned s = joe_kuo[dim - 1].s, a = joe_kuo[dim - 1].a;
    for (unsigned b = 0; b < SOBOL_BITS; b++) {
        if (b < s) {
            v[b] = joe_kuo[dim - 1].m[b] << (SOBOL_BITS - 1 - b);
        } else {
            uint32_t x = v[b - s] ^ (v[b - s] >> s);
            for (unsigned k = 1; k < s; k++) {
                x ^= ((a >> (s - 1 - k)) & 1u) * v[b - k];
            }
            v[b] = x;
        }
    }
}

int kb_encode_sobol(double *out, size_t ld, size_t n, size_t dim, kb_rng *rng, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && ld >= n && dim <= KB_ENCODE_SOBOL_MAX_DIM);
    KB_CHECK_ARG(n <= ((size_t)1 << 31));
    for (size_t j = 0; j < dim; j++) {
        uint32_t v[SOBOL_BITS];
        sobol_directions(v, j);
        uint32_t shift = rng != NULL ? (uint32_t)(kb_rng_u64(rng) >> 32) : 0u;
        uint32_t x = 0;
        for (size_t i = 0; i < n; i++) {
            if (i > 0) {
                /* Gray-code update: flip the direction of the lowest zero bit of i - 1 */
                size_t c = 0;
                for (size_t k = i - 1; k & 1u; k >>= 1) {
                    c++;
                }
                x ^= v[c];
            }
            out[i + j * ld] = (double)(x ^ shift) / 4294967296.0;
        }
    }
    return KB_OK;
}

int kb_encode_sample(double *u_out, size_t ld, const kb_encode *e, size_t n,
                     kb_encode_design design, kb_rng *rng, kb_error *err)
{
    KB_CHECK_ARG(u_out != NULL && e != NULL && rng != NULL && ld >= n);
    size_t p = e->n_params;
    if (design == KB_ENCODE_DESIGN_SOBOL && p <= KB_ENCODE_SOBOL_MAX_DIM) {
        int rc = kb_encode_sobol(u_out, ld, n, p, rng, err);
        if (rc != KB_OK) {
            return rc;
        }
    } else if (design == KB_ENCODE_DESIGN_LHS || design == KB_ENCODE_DESIGN_SOBOL) {
        size_t *perm = kb_malloc_array(n + 1, sizeof(size_t));
        if (perm == NULL) {
            return kb_error_set(err, KB_ENOMEM, "encode: out of memory");
        }
        for (size_t j = 0; j < p; j++) {
            for (size_t i = 0; i < n; i++) {
                perm[i] = i;
            }
            kb_rng_shuffle(rng, perm, n);
            for (size_t i = 0; i < n; i++) {
                u_out[i + j * ld] = ((double)perm[i] + kb_rng_uniform(rng)) / (double)n;
            }
        }
        kb_free(perm);
    } else {
        for (size_t j = 0; j < p; j++) {
            for (size_t i = 0; i < n; i++) {
                u_out[i + j * ld] = kb_rng_uniform(rng);
            }
        }
    }
    double buf[64];
    double *row = p <= 64 ? buf : kb_malloc_array(p, sizeof(double));
    if (row == NULL) {
        return kb_error_set(err, KB_ENOMEM, "encode: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < p; j++) {
            row[j] = u_out[i + j * ld];
        }
        kb_encode_snap(e, row);
        for (size_t j = 0; j < p; j++) {
            u_out[i + j * ld] = row[j];
        }
    }
    if (row != buf) {
        kb_free(row);
    }
    return KB_OK;
}
