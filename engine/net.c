/*
 * kb_net: the architecture notation, hyperparameters (config keys) and Caffe's learning-rate
 * policies. Layers, training and weights files are in net_layers.c, net_train.c, net_io.c.
 */
#include "engine/net.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KB_NET_PI 3.14159265358979323846

static void skip_space(const char **p)
{
    while (isspace((unsigned char)**p)) {
        (*p)++;
    }
}

static int parse_count(size_t *out, const char **p, const char *spec, kb_error *err)
{
    skip_space(p);
    if (!isdigit((unsigned char)**p)) {
        return kb_error_set(err, KB_EFORMAT, "arch '%s': at %zu: expected a number", spec,
                            (size_t)(*p - spec) + 1);
    }
    errno = 0;
    char *end;
    unsigned long long v = strtoull(*p, &end, 10);
    if (errno != 0 || v == 0 || v > 1000000) {
        return kb_error_set(err, KB_EFORMAT, "arch '%s': at %zu: expected 1..1000000", spec,
                            (size_t)(*p - spec) + 1);
    }
    *p = end;
    *out = (size_t)v;
    skip_space(p);
    return KB_OK;
}

static int expect_char(const char **p, char c, const char *spec, kb_error *err)
{
    skip_space(p);
    if (**p != c) {
        return kb_error_set(err, KB_EFORMAT, "arch '%s': at %zu: expected '%c'", spec,
                            (size_t)(*p - spec) + 1, c);
    }
    (*p)++;
    return KB_OK;
}

int kb_net_arch_parse(kb_net_arch *out, const char *spec, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && spec != NULL);
    memset(out, 0, sizeof *out);
    const char *p = spec;
    skip_space(&p);
    if (*p == '\0') {
        return KB_OK;
    }
    for (;;) {
        if (out->n_layers == KB_NET_MAX_LAYERS) {
            return kb_error_set(err, KB_EFORMAT, "arch '%s': more than %d layers", spec,
                                KB_NET_MAX_LAYERS);
        }
        kb_net_layer_spec *l = &out->layers[out->n_layers];
        skip_space(&p);
        int rc;
        if (strncasecmp(p, "FC", 2) == 0) {
            p += 2;
            l->kind = KB_NET_LAYER_FC;
            if ((rc = expect_char(&p, '(', spec, err)) != KB_OK ||
                (rc = parse_count(&l->n, &p, spec, err)) != KB_OK ||
                (rc = expect_char(&p, ')', spec, err)) != KB_OK) {
                return rc;
            }
        } else if (*p == 'C' || *p == 'c' || *p == 'P' || *p == 'p') {
            l->kind = (*p == 'C' || *p == 'c') ? KB_NET_LAYER_CONV : KB_NET_LAYER_POOL;
            p++;
            if ((rc = expect_char(&p, '(', spec, err)) != KB_OK ||
                (rc = parse_count(&l->k, &p, spec, err)) != KB_OK ||
                (rc = expect_char(&p, ',', spec, err)) != KB_OK ||
                (rc = parse_count(&l->n, &p, spec, err)) != KB_OK ||
                (rc = expect_char(&p, ')', spec, err)) != KB_OK) {
                return rc;
            }
        } else {
            return kb_error_set(err, KB_EFORMAT,
                                "arch '%s': at %zu: expected a layer C(k,n), P(k,s) or FC(n)",
                                spec, (size_t)(p - spec) + 1);
        }
        out->n_layers++;
        skip_space(&p);
        if (*p == '\0') {
            return KB_OK;
        }
        if (*p != '+') {
            return kb_error_set(err, KB_EFORMAT, "arch '%s': at %zu: expected '+' or the end",
                                spec, (size_t)(p - spec) + 1);
        }
        p++;
    }
}

void kb_net_arch_format(char *buf, size_t n, const kb_net_arch *arch)
{
    if (n == 0) {
        return;
    }
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < arch->n_layers && used < n; i++) {
        const kb_net_layer_spec *l = &arch->layers[i];
        const char *sep = i > 0 ? "+" : "";
        int w;
        if (l->kind == KB_NET_LAYER_FC) {
            w = snprintf(buf + used, n - used, "%sFC(%zu)", sep, l->n);
        } else {
            w = snprintf(buf + used, n - used, "%s%c(%zu,%zu)", sep,
                         l->kind == KB_NET_LAYER_CONV ? 'C' : 'P', l->k, l->n);
        }
        if (w < 0) {
            return;
        }
        used += (size_t)w;
    }
}

/* ---- hyperparameters ---- */

static const char *const optimizer_names[] = {"sgd",      "momentum", "nesterov", "adagrad",
                                              "adadelta", "rmsprop",  "adam"};
static const char *const policy_names[] = {"fixed", "step", "exp", "inv", "poly", "cosine"};
static const char *const activation_names[] = {"relu", "tanh", "sigmoid"};
static const char *const init_names[] = {"gaussian", "xavier", "msra"};

const char *kb_net_optimizer_name(kb_net_optimizer o)
{
    return (unsigned)o < 7 ? optimizer_names[o] : "?";
}

const char *kb_net_lr_policy_name(kb_net_lr_policy p)
{
    return (unsigned)p < 6 ? policy_names[p] : "?";
}

static int parse_name(int *out, const char *const *names, size_t n, const char *key,
                      const char *value, kb_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(value, names[i]) == 0) {
            *out = (int)i;
            return KB_OK;
        }
    }
    char list[160] = "";
    for (size_t i = 0; i < n; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, names[i], sizeof list - strlen(list) - 1);
    }
    return kb_error_set(err, KB_EINVAL, "config '%s': unknown value '%s' (one of %s)", key,
                        value, list);
}

static int parse_real(double *out, const char *key, const char *value, kb_error *err)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    while (isspace((unsigned char)*end)) {
        end++;
    }
    if (end == value || *end != '\0' || errno == ERANGE || !isfinite(v)) {
        return kb_error_set(err, KB_EINVAL, "config '%s': expected a number, got '%s'", key,
                            value);
    }
    *out = v;
    return KB_OK;
}

static int parse_size(size_t *out, const char *key, const char *value, kb_error *err)
{
    double v;
    if (parse_real(&v, key, value, err) != KB_OK || v < 0 || v != floor(v) || v > 1e15) {
        return kb_error_set(err, KB_EINVAL, "config '%s': expected a non-negative integer, "
                            "got '%s'", key, value);
    }
    *out = (size_t)v;
    return KB_OK;
}

static int parse_mults(double *vals, size_t *n_out, const char *key, const char *value,
                       kb_error *err)
{
    size_t n = 0;
    const char *p = value;
    while (*p != '\0') {
        if (n == KB_NET_MAX_LAYERS + 1) {
            return kb_error_set(err, KB_EINVAL, "config '%s': more than %d values", key,
                                KB_NET_MAX_LAYERS + 1);
        }
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno == ERANGE || !isfinite(v) || v < 0) {
            return kb_error_set(err, KB_EINVAL,
                                "config '%s': expected comma-separated numbers >= 0, got '%s'",
                                key, value);
        }
        vals[n++] = v;
        p = end;
        while (isspace((unsigned char)*p)) {
            p++;
        }
        if (*p == ',') {
            p++;
        } else if (*p != '\0') {
            return kb_error_set(err, KB_EINVAL,
                                "config '%s': expected comma-separated numbers, got '%s'", key,
                                value);
        }
    }
    *n_out = n;
    return KB_OK;
}

int kb_net_opts_set(kb_net_opts *o, const char *key, const char *value, kb_error *err)
{
    KB_CHECK_ARG(o != NULL && key != NULL && value != NULL);
    int e = 0, rc;
    size_t sz = 0;
    if (strcmp(key, "optimizer") == 0 || strcmp(key, "type") == 0) {
        rc = parse_name(&e, optimizer_names, 7, key, value, err);
        o->optimizer = (kb_net_optimizer)e;
        return rc;
    }
    if (strcmp(key, "lr_policy") == 0) {
        rc = parse_name(&e, policy_names, 6, key, value, err);
        o->lr_policy = (kb_net_lr_policy)e;
        return rc;
    }
    if (strcmp(key, "activation") == 0) {
        rc = parse_name(&e, activation_names, 3, key, value, err);
        o->activation = (kb_net_activation)e;
        return rc;
    }
    if (strcmp(key, "init") == 0 || strcmp(key, "weight_filler") == 0) {
        rc = parse_name(&e, init_names, 3, key, value, err);
        o->init = (kb_net_init)e;
        return rc;
    }
    if (strcmp(key, "lr_mult") == 0) {
        return parse_mults(o->lr_mult, &o->n_lr_mult, key, value, err);
    }
    if (strcmp(key, "decay_mult") == 0) {
        return parse_mults(o->decay_mult, &o->n_decay_mult, key, value, err);
    }
    static const struct {
        const char *name;
        size_t off;
    } reals[] = {
        {"base_lr", offsetof(kb_net_opts, base_lr)},
        {"lr", offsetof(kb_net_opts, base_lr)},
        {"momentum", offsetof(kb_net_opts, momentum)},
        {"momentum2", offsetof(kb_net_opts, momentum2)},
        {"delta", offsetof(kb_net_opts, delta)},
        {"rms_decay", offsetof(kb_net_opts, rms_decay)},
        {"weight_decay", offsetof(kb_net_opts, weight_decay)},
        {"gamma", offsetof(kb_net_opts, gamma)},
        {"power", offsetof(kb_net_opts, power)},
        {"dropout", offsetof(kb_net_opts, dropout)},
        {"init_std", offsetof(kb_net_opts, init_std)},
        {"clip_gradients", offsetof(kb_net_opts, clip_gradients)},
    };
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        if (strcmp(key, reals[i].name) == 0) {
            return parse_real((double *)((char *)o + reals[i].off), key, value, err);
        }
    }
    static const struct {
        const char *name;
        size_t off;
    } sizes[] = {
        {"stepsize", offsetof(kb_net_opts, stepsize)},
        {"max_iter", offsetof(kb_net_opts, max_iter)},
        {"epochs", offsetof(kb_net_opts, epochs)},
        {"batch_size", offsetof(kb_net_opts, batch_size)},
        {"test_interval", offsetof(kb_net_opts, test_interval)},
        {"freeze", offsetof(kb_net_opts, freeze)},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (strcmp(key, sizes[i].name) == 0) {
            rc = parse_size(&sz, key, value, err);
            if (rc == KB_OK) {
                *(size_t *)((char *)o + sizes[i].off) = sz;
            }
            return rc;
        }
    }
    if (strcmp(key, "seed") == 0) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (end == value || *end != '\0' || errno != 0 || value[0] == '-') {
            return kb_error_set(err, KB_EINVAL, "config 'seed': expected an integer, got '%s'",
                                value);
        }
        o->seed = v;
        return KB_OK;
    }
    return kb_error_set(err, KB_EINVAL, "config '%s': unknown key", key);
}

int kb_net_opts_set_json(kb_net_opts *opts, const char *json, kb_error *err)
{
    KB_CHECK_ARG(opts != NULL && json != NULL);
    cJSON *root = cJSON_Parse(json);
    if (root == NULL || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return kb_error_set(err, KB_EINVAL, "config: expected a JSON object");
    }
    int rc = KB_OK;
    for (cJSON *it = root->child; it != NULL && rc == KB_OK; it = it->next) {
        char text[1024];
        if (cJSON_IsNumber(it)) {
            snprintf(text, sizeof text, "%.17g", it->valuedouble);
        } else if (cJSON_IsString(it)) {
            snprintf(text, sizeof text, "%s", it->valuestring);
        } else if (cJSON_IsArray(it)) {
            size_t used = 0;
            text[0] = '\0';
            for (cJSON *e = it->child; e != NULL; e = e->next) {
                if (!cJSON_IsNumber(e)) {
                    rc = kb_error_set(err, KB_EINVAL, "config '%s': expected numbers",
                                      it->string);
                    break;
                }
                int w = snprintf(text + used, sizeof text - used, "%s%.17g", used ? "," : "",
                                 e->valuedouble);
                if (w < 0 || (size_t)w >= sizeof text - used) {
                    rc = kb_error_set(err, KB_EINVAL, "config '%s': too many values",
                                      it->string);
                    break;
                }
                used += (size_t)w;
            }
            if (rc != KB_OK) {
                break;
            }
        } else if (cJSON_IsBool(it)) {
            snprintf(text, sizeof text, "%d", cJSON_IsTrue(it) ? 1 : 0);
        } else {
            rc = kb_error_set(err, KB_EINVAL, "config '%s': unsupported value type",
                              it->string ? it->string : "");
            break;
        }
        rc = kb_net_opts_set(opts, it->string ? it->string : "", text, err);
    }
    cJSON_Delete(root);
    return rc;
}

int kb_net_opts_check(const kb_net_opts *o, kb_error *err)
{
    KB_CHECK_ARG(o != NULL);
    if (!(o->base_lr > 0)) {
        return kb_error_set(err, KB_EINVAL, "config 'base_lr': must be > 0");
    }
    if (o->batch_size < 1) {
        return kb_error_set(err, KB_EINVAL, "config 'batch_size': must be >= 1");
    }
    if (o->max_iter == 0 && o->epochs == 0) {
        return kb_error_set(err, KB_EINVAL, "config: set 'max_iter' or 'epochs' (>= 1)");
    }
    if (!(o->dropout >= 0 && o->dropout < 1)) {
        return kb_error_set(err, KB_EINVAL, "config 'dropout': must be in [0, 1)");
    }
    if (!(o->momentum >= 0 && o->momentum < 1) || !(o->momentum2 >= 0 && o->momentum2 < 1)) {
        return kb_error_set(err, KB_EINVAL, "config 'momentum', 'momentum2': must be in [0, 1)");
    }
    if (!(o->rms_decay >= 0 && o->rms_decay < 1)) {
        return kb_error_set(err, KB_EINVAL, "config 'rms_decay': must be in [0, 1)");
    }
    if (!(o->delta > 0) || !(o->weight_decay >= 0) || !(o->init_std > 0)) {
        return kb_error_set(err, KB_EINVAL,
                            "config 'delta', 'init_std' must be > 0, 'weight_decay' >= 0");
    }
    if (o->lr_policy == KB_NET_LR_POLICY_STEP && o->stepsize == 0) {
        return kb_error_set(err, KB_EINVAL, "config 'stepsize': must be >= 1 for lr_policy step");
    }
    if ((o->lr_policy == KB_NET_LR_POLICY_EXP || o->lr_policy == KB_NET_LR_POLICY_STEP ||
         o->lr_policy == KB_NET_LR_POLICY_INV) &&
        !(o->gamma >= 0)) {
        return kb_error_set(err, KB_EINVAL, "config 'gamma': must be >= 0");
    }
    return KB_OK;
}

double kb_net_lr_at(const kb_net_opts *o, size_t iter, size_t max_iter)
{
    double it = (double)iter;
    switch (o->lr_policy) {
    case KB_NET_LR_POLICY_FIXED:
        return o->base_lr;
    case KB_NET_LR_POLICY_STEP:
        return o->base_lr * pow(o->gamma, floor(it / (double)(o->stepsize ? o->stepsize : 1)));
    case KB_NET_LR_POLICY_EXP:
        return o->base_lr * pow(o->gamma, it);
    case KB_NET_LR_POLICY_INV:
        return o->base_lr * pow(1.0 + o->gamma * it, -o->power);
    case KB_NET_LR_POLICY_POLY: {
        /* Caffe lets the rate reach 0 at max_iter; clamp so a longer run never goes negative */
        double f = max_iter ? 1.0 - it / (double)max_iter : 0.0;
        return o->base_lr * pow(f > 0 ? f : 0.0, o->power);
    }
    case KB_NET_LR_POLICY_COSINE:
        if (max_iter == 0 || iter >= max_iter) {
            return 0.0;
        }
        return 0.5 * o->base_lr * (1.0 + cos(KB_NET_PI * it / (double)max_iter));
    }
    return o->base_lr;
}
