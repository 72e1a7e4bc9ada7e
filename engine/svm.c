#include "engine/svm.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/alloc.h"

/* ---- libsvm's print hook ---- */

static void print_nothing(const char *s)
{
    (void)s;
}

static void install_quiet(void)
{
    svm_set_print_string_function(print_nothing);
}

void kb_svm_quiet(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_quiet);
}

/* ---- names ---- */

static const char *const type_names[] = {"auto", "c_svc", "nu_svc", "epsilon_svr"};
static const char *const kernel_names[] = {"linear", "poly", "rbf", "sigmoid"};
static const char *const scale_names[] = {"standard", "minmax", "none"};

const char *kb_svm_type_name(kb_svm_type t)
{
    return (unsigned)t < 4 ? type_names[t] : "unknown";
}

const char *kb_svm_kernel_name(kb_svm_kernel k)
{
    return (unsigned)k < 4 ? kernel_names[k] : "unknown";
}

/* ---- configuration from named values ---- */

void kb_svm_config_release(kb_svm_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    for (size_t i = 0; i < cfg->n_class_weights; i++) {
        kb_free(cfg->class_weights[i].class_name);
    }
    kb_free(cfg->class_weights);
    cfg->class_weights = NULL;
    cfg->n_class_weights = 0;
}

static int get_number(double *out, const kb_param *p, kb_error *err)
{
    if (p->value.type != KB_VALUE_TYPE_FLOAT && p->value.type != KB_VALUE_TYPE_INT) {
        return kb_error_set(err, KB_EINVAL, "param '%s': expected a number", p->name);
    }
    *out = kb_value_as_double(&p->value);
    if (!isfinite(*out)) {
        return kb_error_set(err, KB_EINVAL, "param '%s': expected a finite number", p->name);
    }
    return KB_OK;
}

/* A number checked against (low, high) or [low, high]; `open_low` excludes low. */
static int get_ranged(double *out, const kb_param *p, double low, int open_low, double high,
                      kb_error *err)
{
    int rc = get_number(out, p, err);
    if (rc != KB_OK) {
        return rc;
    }
    if ((open_low ? !(*out > low) : !(*out >= low)) || !(*out <= high)) {
        if (isinf(high)) {
            return kb_error_set(err, KB_EINVAL, "param '%s': must be %s %g, got %g", p->name,
                                open_low ? ">" : ">=", low, *out);
        }
        return kb_error_set(err, KB_EINVAL, "param '%s': must be in %s%g, %g], got %g",
                            p->name, open_low ? "(" : "[", low, high, *out);
    }
    return KB_OK;
}

static int get_bool(int *out, const kb_param *p, kb_error *err)
{
    if (p->value.type == KB_VALUE_TYPE_BOOL) {
        *out = p->value.b != 0;
        return KB_OK;
    }
    if (p->value.type == KB_VALUE_TYPE_INT && (p->value.i == 0 || p->value.i == 1)) {
        *out = (int)p->value.i;
        return KB_OK;
    }
    return kb_error_set(err, KB_EINVAL, "param '%s': expected true or false", p->name);
}

static int get_choice(int *out, const kb_param *p, const char *const *names, size_t n,
                      kb_error *err)
{
    if (p->value.type == KB_VALUE_TYPE_STR && p->value.s != NULL) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(p->value.s, names[i]) == 0) {
                *out = (int)i;
                return KB_OK;
            }
        }
    }
    char list[160] = "";
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
    }
    if (p->value.type == KB_VALUE_TYPE_STR) {
        return kb_error_set(err, KB_EINVAL, "param '%s': expected one of %s, got '%s'", p->name,
                            list, p->value.s ? p->value.s : "");
    }
    return kb_error_set(err, KB_EINVAL, "param '%s': expected one of %s", p->name, list);
}

static int set_class_weight(kb_svm_config *cfg, const char *class_name, double w)
{
    for (size_t i = 0; i < cfg->n_class_weights; i++) {
        if (strcmp(cfg->class_weights[i].class_name, class_name) == 0) {
            cfg->class_weights[i].weight = w;
            return KB_OK;
        }
    }
    kb_svm_class_weight *nw = kb_realloc_array(cfg->class_weights, cfg->n_class_weights + 1,
                                               sizeof *nw);
    if (nw == NULL) {
        return KB_ENOMEM;
    }
    cfg->class_weights = nw;
    char *name = kb_strdup(class_name);
    if (name == NULL) {
        return KB_ENOMEM;
    }
    nw[cfg->n_class_weights].class_name = name;
    nw[cfg->n_class_weights].weight = w;
    cfg->n_class_weights++;
    return KB_OK;
}

#define CLASS_WEIGHT_PREFIX "class_weight."

static int apply_param(kb_svm_config *cfg, const kb_param *p, kb_error *err)
{
    const char *name = p->name;
    double v;
    int choice = 0, rc;
    if (strcmp(name, "svm_type") == 0) {
        rc = get_choice(&choice, p, type_names, 4, err);
        cfg->type = (kb_svm_type)choice;
    } else if (strcmp(name, "kernel") == 0) {
        if (p->value.type == KB_VALUE_TYPE_STR && p->value.s != NULL &&
            strcmp(p->value.s, "polynomial") == 0) {
            cfg->kernel = KB_SVM_KERNEL_POLY;
            return KB_OK;
        }
        rc = get_choice(&choice, p, kernel_names, 4, err);
        cfg->kernel = (kb_svm_kernel)choice;
    } else if (strcmp(name, "C") == 0) {
        rc = get_ranged(&cfg->c, p, 0.0, 1, INFINITY, err);
    } else if (strcmp(name, "gamma") == 0) {
        if (p->value.type == KB_VALUE_TYPE_STR && p->value.s != NULL &&
            strcmp(p->value.s, "auto") == 0) {
            cfg->gamma = 0.0;
            return KB_OK;
        }
        rc = get_ranged(&cfg->gamma, p, 0.0, 1, INFINITY, err);
    } else if (strcmp(name, "degree") == 0) {
        rc = get_ranged(&v, p, 1.0, 0, 1000.0, err);
        if (rc == KB_OK && v != floor(v)) {
            rc = kb_error_set(err, KB_EINVAL, "param 'degree': expected an integer, got %g", v);
        }
        cfg->degree = rc == KB_OK ? (int)v : cfg->degree;
    } else if (strcmp(name, "coef0") == 0) {
        rc = get_number(&cfg->coef0, p, err);
    } else if (strcmp(name, "nu") == 0) {
        rc = get_ranged(&cfg->nu, p, 0.0, 1, 1.0, err);
    } else if (strcmp(name, "epsilon") == 0) {
        rc = get_ranged(&cfg->epsilon, p, 0.0, 0, INFINITY, err);
    } else if (strcmp(name, "shrinking") == 0) {
        rc = get_bool(&cfg->shrinking, p, err);
    } else if (strcmp(name, "probability") == 0) {
        rc = get_bool(&cfg->probability, p, err);
    } else if (strcmp(name, "cache_mb") == 0) {
        rc = get_ranged(&cfg->cache_mb, p, 0.0, 1, INFINITY, err);
    } else if (strcmp(name, "tolerance") == 0) {
        rc = get_ranged(&cfg->tolerance, p, 0.0, 1, INFINITY, err);
    } else if (strcmp(name, "scale") == 0) {
        rc = get_choice(&choice, p, scale_names, 3, err);
        cfg->scale = (kb_svm_scale)choice;
    } else if (strcmp(name, "scale_target") == 0) {
        rc = get_bool(&cfg->scale_target, p, err);
    } else if (strcmp(name, "class_weight") == 0) {
        static const char *const modes[] = {"none", "balanced"};
        rc = get_choice(&choice, p, modes, 2, err);
        cfg->balanced = choice;
    } else if (strncmp(name, CLASS_WEIGHT_PREFIX, strlen(CLASS_WEIGHT_PREFIX)) == 0 &&
               name[strlen(CLASS_WEIGHT_PREFIX)] != '\0') {
        rc = get_ranged(&v, p, 0.0, 1, INFINITY, err);
        if (rc == KB_OK) {
            rc = set_class_weight(cfg, name + strlen(CLASS_WEIGHT_PREFIX), v);
            if (rc != KB_OK) {
                kb_error_set(err, rc, "param '%s': out of memory", name);
            }
        }
    } else {
        rc = kb_error_set(err, KB_EINVAL, "param '%s': unknown svm parameter", name);
    }
    return rc;
}

int kb_svm_config_from_params(kb_svm_config *out, const kb_param *params, size_t n,
                              kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    KB_CHECK_ARG(params != NULL || n == 0);
    *out = (kb_svm_config)KB_SVM_CONFIG_INIT;
    for (size_t i = 0; i < n; i++) {
        if (params[i].name == NULL) {
            kb_svm_config_release(out);
            return kb_error_set(err, KB_EINVAL, "param #%zu has no name", i);
        }
        int rc = apply_param(out, &params[i], err);
        if (rc != KB_OK) {
            kb_svm_config_release(out);
            return rc;
        }
    }
    return KB_OK;
}

/* ---- configuration to libsvm ---- */

size_t kb_svm_n_features(const kb_dataset *d)
{
    size_t n = 0;
    for (size_t j = 0; j < d->n_cols; j++) {
        n += d->cols[j].type == KB_COLUMN_CATEGORICAL ? d->cols[j].n_levels : 1;
    }
    return n;
}

static kb_svm_type resolve_type(kb_svm_type t, kb_dataset_task task)
{
    if (t != KB_SVM_TYPE_AUTO) {
        return t;
    }
    return task == KB_DATASET_TASK_REGRESSION ? KB_SVM_TYPE_EPSILON_SVR : KB_SVM_TYPE_C_SVC;
}

/* libsvm's svm_check_parameter messages start with the parameter they concern. */
static const char *libsvm_param_name(const char *msg)
{
    static const struct {
        const char *prefix, *name;
    } map[] = {{"unknown svm type", "svm_type"}, {"unknown kernel", "kernel"},
               {"gamma", "gamma"},              {"degree", "degree"},
               {"cache_size", "cache_mb"},      {"eps", "tolerance"},
               {"C ", "C"},                     {"nu", "nu"},
               {"specified nu", "nu"},          {"p ", "epsilon"},
               {"shrinking", "shrinking"},      {"probability", "probability"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strncmp(msg, map[i].prefix, strlen(map[i].prefix)) == 0) {
            return map[i].name;
        }
    }
    return "svm";
}

static int build_weights(struct svm_parameter *out, const kb_svm_config *cfg,
                         const kb_dataset *d, const size_t *class_counts, kb_error *err)
{
    size_t k = d->n_classes;
    out->weight_label = kb_malloc_array(k, sizeof *out->weight_label);
    out->weight = kb_malloc_array(k, sizeof *out->weight);
    if (out->weight_label == NULL || out->weight == NULL) {
        return kb_error_set(err, KB_ENOMEM, "svm class weights: out of memory");
    }
    out->nr_weight = (int)k;
    size_t n_total = 0, n_present = 0;
    for (size_t c = 0; cfg->balanced && c < k; c++) {
        n_total += class_counts[c];
        n_present += class_counts[c] > 0;
    }
    for (size_t c = 0; c < k; c++) {
        out->weight_label[c] = (int)c;
        out->weight[c] = 1.0;
        /* sklearn's "balanced": n / (n_classes * n_c), over the classes present */
        if (cfg->balanced && class_counts[c] > 0) {
            out->weight[c] = (double)n_total / ((double)n_present * (double)class_counts[c]);
        }
    }
    for (size_t i = 0; i < cfg->n_class_weights; i++) {
        const char *name = cfg->class_weights[i].class_name;
        size_t c = 0;
        while (c < k && strcmp(d->class_names[c], name) != 0) {
            c++;
        }
        if (c == k) {
            return kb_error_set(err, KB_EINVAL,
                                "param '" CLASS_WEIGHT_PREFIX "%s': no class '%s' in the dataset",
                                name, name);
        }
        out->weight[c] *= cfg->class_weights[i].weight;
    }
    return KB_OK;
}

int kb_svm_config_to_param(struct svm_parameter *out, const kb_svm_config *cfg,
                           const kb_dataset *d, size_t n_features, const size_t *class_counts,
                           const struct svm_problem *prob, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    memset(out, 0, sizeof *out);
    KB_CHECK_ARG(cfg != NULL && d != NULL);
    KB_CHECK_ARG(!cfg->balanced || d->task != KB_DATASET_TASK_CLASSIFICATION ||
                 class_counts != NULL);
    int classification = d->task == KB_DATASET_TASK_CLASSIFICATION;
    kb_svm_type type = resolve_type(cfg->type, d->task);
    if ((type == KB_SVM_TYPE_EPSILON_SVR) == classification) {
        return kb_error_set(err, KB_EINVAL, "param 'svm_type': '%s' needs a %s task",
                            kb_svm_type_name(type),
                            classification ? "regression" : "classification");
    }
    if (!classification && (cfg->balanced || cfg->n_class_weights > 0)) {
        return kb_error_set(err, KB_EINVAL, "param 'class_weight': needs a classification task");
    }
    if (n_features == 0) {
        return kb_error_set(err, KB_EFORMAT, "the dataset has no features");
    }
    static const int libsvm_types[] = {C_SVC, C_SVC, NU_SVC, EPSILON_SVR};
    static const int libsvm_kernels[] = {LINEAR, POLY, RBF, SIGMOID};
    out->svm_type = libsvm_types[type];
    out->kernel_type = (unsigned)cfg->kernel < 4 ? libsvm_kernels[cfg->kernel] : -1;
    out->degree = cfg->degree;
    out->gamma = cfg->gamma > 0 ? cfg->gamma : 1.0 / (double)n_features;
    out->coef0 = cfg->coef0;
    out->cache_size = cfg->cache_mb;
    out->eps = cfg->tolerance;
    out->C = cfg->c;
    out->nu = cfg->nu;
    out->p = cfg->epsilon;
    out->shrinking = cfg->shrinking;
    /* probability outputs are used for classification only (log-loss) */
    out->probability = classification ? cfg->probability : 0;
    if (classification && (cfg->balanced || cfg->n_class_weights > 0)) {
        int rc = build_weights(out, cfg, d, class_counts, err);
        if (rc != KB_OK) {
            kb_svm_param_release(out);
            return rc;
        }
    }
    if (out->kernel_type < 0) {
        kb_svm_param_release(out);
        return kb_error_set(err, KB_EINVAL, "param 'kernel': unknown kernel %d", (int)cfg->kernel);
    }
    if (prob != NULL) {
        const char *msg = svm_check_parameter(prob, out);
        if (msg != NULL) {
            kb_svm_param_release(out);
            return kb_error_set(err, KB_EINVAL, "param '%s': %s", libsvm_param_name(msg), msg);
        }
    }
    return KB_OK;
}

void kb_svm_param_release(struct svm_parameter *param)
{
    if (param == NULL) {
        return;
    }
    kb_free(param->weight_label);
    kb_free(param->weight);
    param->weight_label = NULL;
    param->weight = NULL;
    param->nr_weight = 0;
}

/* ---- folds ---- */

/* Rows of each class, grouped: order[start[c] .. start[c+1]) are class c's rows. */
static int group_by_class(size_t *order, size_t *start, const double *y, const size_t *rows,
                          size_t n, size_t n_classes)
{
    memset(start, 0, (n_classes + 1) * sizeof *start);
    for (size_t i = 0; i < n; i++) {
        start[(size_t)y[rows ? rows[i] : i] + 1]++;
    }
    for (size_t c = 0; c < n_classes; c++) {
        start[c + 1] += start[c];
    }
    size_t *pos = kb_malloc_array(n_classes + 1, sizeof *pos);
    if (pos == NULL) {
        return KB_ENOMEM;
    }
    memcpy(pos, start, (n_classes + 1) * sizeof *pos);
    for (size_t i = 0; i < n; i++) {
        size_t r = rows ? rows[i] : i;
        order[pos[(size_t)y[r]]++] = r;
    }
    kb_free(pos);
    return KB_OK;
}

static int check_labels(const double *y, size_t n, size_t n_classes, kb_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!(y[i] >= 0 && y[i] < (double)n_classes) || y[i] != floor(y[i])) {
            return kb_error_set(err, KB_EFORMAT, "row %zu: class index %g out of range", i + 1,
                                y[i]);
        }
    }
    return KB_OK;
}

int kb_svm_folds(size_t *fold, size_t *n_folds_out, const double *y, size_t n,
                 size_t n_classes, const char *const *class_names, size_t n_folds, kb_rng *rng,
                 const kb_log *log, kb_error *err)
{
    KB_CHECK_ARG(fold != NULL && n_folds_out != NULL && y != NULL && rng != NULL);
    if (n_folds < 2) {
        return kb_error_set(err, KB_EINVAL, "folds: must be at least 2, got %zu", n_folds);
    }
    if (n < 2) {
        return kb_error_set(err, KB_EFORMAT, "cross-validation needs at least 2 rows, got %zu",
                            n);
    }
    size_t k = n_folds;
    if (k > n) {
        kb_log_printf(log, KB_LOG_LEVEL_WARNING, "only %zu rows: using %zu folds instead of %zu",
                      n, n, k);
        k = n;
    }
    size_t *order = kb_malloc_array(n, sizeof *order);
    size_t *start = NULL;
    int rc = KB_OK;
    if (order == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "folds: out of memory");
        goto done;
    }
    if (n_classes == 0) {
        for (size_t i = 0; i < n; i++) {
            order[i] = i;
        }
        kb_rng_shuffle(rng, order, n);
        for (size_t i = 0; i < n; i++) {
            fold[order[i]] = i % k;
        }
        *n_folds_out = k;
        goto done;
    }
    rc = check_labels(y, n, n_classes, err);
    if (rc != KB_OK) {
        goto done;
    }
    start = kb_malloc_array(n_classes + 1, sizeof *start);
    if (start == NULL || group_by_class(order, start, y, NULL, n, n_classes) != KB_OK) {
        rc = kb_error_set(err, KB_ENOMEM, "folds: out of memory");
        goto done;
    }
    size_t smallest = 0; /* class index of the smallest present class */
    size_t n_smallest = (size_t)-1;
    for (size_t c = 0; c < n_classes; c++) {
        size_t nc = start[c + 1] - start[c];
        if (nc > 0 && nc < n_smallest) {
            n_smallest = nc;
            smallest = c;
        }
    }
    const char *cname = class_names != NULL ? class_names[smallest] : "?";
    if (n_smallest < k) {
        size_t k_new = n_smallest < 2 ? 2 : n_smallest;
        kb_log_printf(log, KB_LOG_LEVEL_WARNING,
                      "class '%s' has %zu member%s, fewer than %zu folds: using %zu folds", cname,
                      n_smallest, n_smallest == 1 ? "" : "s", k, k_new);
        k = k_new;
    }
    if (n_smallest == 1) {
        kb_log_printf(log, KB_LOG_LEVEL_WARNING,
                      "class '%s' has a single member: one training fold lacks it", cname);
    }
    /*
     * Deal each class's shuffled rows round-robin, continuing at the fold where the previous
     * class stopped: fold f gets floor or ceil of n_c / k rows of class c, and the fold sizes
     * differ by at most one.
     */
    size_t next = 0;
    for (size_t c = 0; c < n_classes; c++) {
        size_t nc = start[c + 1] - start[c];
        kb_rng_shuffle(rng, order + start[c], nc);
        for (size_t t = 0; t < nc; t++) {
            fold[order[start[c] + t]] = next;
            next = (next + 1) % k;
        }
    }
    *n_folds_out = k;
done:
    kb_free(start);
    kb_free(order);
    return rc;
}

/* ---- preprocessing ---- */

typedef struct prep_col {
    double fill;             /* imputed value: training mean, or the mode's level index */
    double shift, mul, add;  /* numeric: out = (x - shift) * mul + add */
    size_t offset;           /* first output feature (0-based) */
} prep_col;

typedef struct prep {
    prep_col *cols;          /* n_cols */
    size_t *level_counts;    /* workspace: max n_levels */
    double y_shift, y_mul;   /* regression target: y' = (y - y_shift) * y_mul */
} prep;

static void prep_fit_numeric(prep_col *pc, const double *x, const size_t *rows, size_t n,
                             kb_svm_scale scale)
{
    double sum = 0.0, lo = INFINITY, hi = -INFINITY;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        double v = x[rows[i]];
        if (!isnan(v)) {
            sum += v;
            m++;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    }
    double mean = m > 0 ? sum / (double)m : 0.0;
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) {
        double v = x[rows[i]];
        if (!isnan(v)) {
            ss += (v - mean) * (v - mean);
        }
    }
    pc->fill = mean;
    pc->shift = 0.0;
    pc->mul = 1.0;
    pc->add = 0.0;
    if (scale == KB_SVM_SCALE_STANDARD) {
        double sd = m > 0 ? sqrt(ss / (double)m) : 0.0;
        pc->shift = mean;
        /* a constant column is centred only (as scikit-learn's StandardScaler does) */
        pc->mul = sd > 0 ? 1.0 / sd : 1.0;
    } else if (scale == KB_SVM_SCALE_MINMAX) {
        /* svm-scale: lower + (upper - lower) (x - min) / (max - min); constant -> 0 */
        pc->shift = m > 0 ? lo : 0.0;
        pc->mul = m > 0 && hi > lo ? 2.0 / (hi - lo) : 0.0;
        pc->add = pc->mul > 0 ? -1.0 : 0.0;
    }
}

static void prep_fit_categorical(prep_col *pc, size_t *counts, const double *x,
                                 const size_t *rows, size_t n, size_t n_levels)
{
    memset(counts, 0, n_levels * sizeof *counts);
    for (size_t i = 0; i < n; i++) {
        double v = x[rows[i]];
        if (!isnan(v)) {
            counts[(size_t)v]++;
        }
    }
    size_t mode = 0;
    for (size_t l = 1; l < n_levels; l++) {
        if (counts[l] > counts[mode]) {
            mode = l;
        }
    }
    pc->fill = (double)mode;
}

static void prep_fit(prep *p, const kb_dataset *d, const kb_svm_config *cfg, const size_t *rows,
                     size_t n)
{
    size_t offset = 0;
    for (size_t j = 0; j < d->n_cols; j++) {
        prep_col *pc = &p->cols[j];
        const double *x = kb_dataset_col(d, j);
        pc->offset = offset;
        if (d->cols[j].type == KB_COLUMN_CATEGORICAL) {
            if (d->cols[j].n_levels > 0) {
                prep_fit_categorical(pc, p->level_counts, x, rows, n, d->cols[j].n_levels);
            }
            offset += d->cols[j].n_levels;
        } else {
            prep_fit_numeric(pc, x, rows, n, cfg->scale);
            offset++;
        }
    }
    p->y_shift = 0.0;
    p->y_mul = 1.0;
    if (d->task == KB_DATASET_TASK_REGRESSION && cfg->scale_target) {
        double sum = 0.0, ss = 0.0;
        for (size_t i = 0; i < n; i++) {
            sum += d->y[rows[i]];
        }
        double mean = sum / (double)n;
        for (size_t i = 0; i < n; i++) {
            ss += (d->y[rows[i]] - mean) * (d->y[rows[i]] - mean);
        }
        double sd = sqrt(ss / (double)n);
        p->y_shift = mean;
        p->y_mul = sd > 0 ? 1.0 / sd : 1.0;
    }
}

/* Row `r` as libsvm nodes (zeros omitted, 1-based indices, -1 terminated); returns the count. */
static size_t prep_row(struct svm_node *out, const prep *p, const kb_dataset *d, size_t r)
{
    size_t k = 0;
    for (size_t j = 0; j < d->n_cols; j++) {
        const prep_col *pc = &p->cols[j];
        double v = kb_dataset_col(d, j)[r];
        if (isnan(v)) {
            v = pc->fill;
        }
        if (d->cols[j].type == KB_COLUMN_CATEGORICAL) {
            if (d->cols[j].n_levels > 0) {
                out[k].index = (int)(pc->offset + (size_t)v + 1);
                out[k].value = 1.0;
                k++;
            }
            continue;
        }
        double z = (v - pc->shift) * pc->mul + pc->add;
        if (z != 0.0) {
            out[k].index = (int)(pc->offset + 1);
            out[k].value = z;
            k++;
        }
    }
    out[k].index = -1;
    out[k].value = 0.0;
    return k + 1;
}

/* ---- prediction with dense kernel blocks ---- */

/* Test rows per block: the kernel block is l x PREDICT_BLOCK doubles. */
#define PREDICT_BLOCK 256
/* Dense prediction when the support-vector matrix fits in this many doubles (256 MB). */
#define PREDICT_DENSE_MAX ((size_t)1 << 25)

/* base^times by repeated squaring, as libsvm's powi (same rounding as its poly kernel) */
static double powi(double base, int times)
{
    double tmp = base, ret = 1.0;
    for (int t = times; t > 0; t /= 2) {
        if (t % 2 == 1) {
            ret *= tmp;
        }
        tmp = tmp * tmp;
    }
    return ret;
}

/* Row `row` of a column-major matrix (leading dimension ld) from sparse nodes; returns x'x. */
static double scatter(double *dst, size_t ld, size_t row, const struct svm_node *x, size_t d,
                      int *bad_index)
{
    double sq = 0.0;
    for (; x->index != -1; x++) {
        if (x->index < 1 || (size_t)x->index > d) {
            *bad_index = x->index;
            continue;
        }
        dst[row + (size_t)(x->index - 1) * ld] = x->value;
        sq += x->value * x->value;
    }
    return sq;
}

/* Kernel values k[j] = K(x, sv_j) from the dot products g[j] = x'sv_j. */
static void kernel_from_dots(double *k, size_t l, const struct svm_parameter *p, double xsq,
                             const double *ssq)
{
    for (size_t j = 0; j < l; j++) {
        double g = k[j];
        switch (p->kernel_type) {
        case POLY: k[j] = powi(p->gamma * g + p->coef0, p->degree); break;
        case RBF:
            /* |x - s|^2 = x'x + s's - 2 x's, >= 0 in exact arithmetic */
            k[j] = exp(-p->gamma * fmax(xsq + ssq[j] - 2.0 * g, 0.0));
            break;
        case SIGMOID: k[j] = tanh(p->gamma * g + p->coef0); break;
        default: break; /* LINEAR: the dot product itself */
        }
    }
}

/* svm_predict_values' decision from the kernel values (libsvm 3.24, svm.cpp), for one row. */
static double decide(const struct svm_model *m, const double *k, const int *start, int *vote)
{
    int t = m->param.svm_type;
    if (t == ONE_CLASS || t == EPSILON_SVR || t == NU_SVR) {
        double sum = 0.0;
        for (int i = 0; i < m->l; i++) {
            sum += m->sv_coef[0][i] * k[i];
        }
        sum -= m->rho[0];
        return t == ONE_CLASS ? (sum > 0 ? 1.0 : -1.0) : sum;
    }
    int nr = m->nr_class, p = 0;
    memset(vote, 0, (size_t)nr * sizeof *vote);
    for (int i = 0; i < nr; i++) {
        for (int j = i + 1; j < nr; j++) {
            double sum = 0.0;
            const double *coef1 = m->sv_coef[j - 1], *coef2 = m->sv_coef[i];
            for (int s = 0; s < m->nSV[i]; s++) {
                sum += coef1[start[i] + s] * k[start[i] + s];
            }
            for (int s = 0; s < m->nSV[j]; s++) {
                sum += coef2[start[j] + s] * k[start[j] + s];
            }
            sum -= m->rho[p++];
            vote[sum > 0 ? i : j]++;
        }
    }
    int best = 0;
    for (int i = 1; i < nr; i++) {
        if (vote[i] > vote[best]) {
            best = i;
        }
    }
    return (double)m->label[best];
}

int kb_svm_predict(double *out, const struct svm_model *model, const struct svm_node *const *x,
                   size_t n, size_t n_features, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && model != NULL && (x != NULL || n == 0));
    size_t l = (size_t)model->l, d = n_features;
    int classification = model->param.svm_type == C_SVC || model->param.svm_type == NU_SVC;
    if (n == 0) {
        return KB_OK;
    }
    if (model->param.kernel_type == PRECOMPUTED || l == 0 || d == 0 || l > INT_MAX ||
        d > INT_MAX || l > PREDICT_DENSE_MAX / d || (classification && model->nSV == NULL)) {
        for (size_t i = 0; i < n; i++) {
            out[i] = svm_predict(model, x[i]);
        }
        return KB_OK;
    }
    int nr = classification ? model->nr_class : 1, bad_index = 0, rc = KB_OK;
    double *sv = kb_calloc(l * d, sizeof *sv);
    double *ssq = kb_malloc_array(l, sizeof *ssq);
    double *xb = kb_malloc_array(PREDICT_BLOCK * d, sizeof *xb);
    double *xsq = kb_malloc_array(PREDICT_BLOCK, sizeof *xsq);
    double *kv = kb_malloc_array(l * PREDICT_BLOCK, sizeof *kv);
    int *start = kb_malloc_array((size_t)nr, sizeof *start);
    int *vote = kb_malloc_array((size_t)nr, sizeof *vote);
    if (sv == NULL || ssq == NULL || xb == NULL || xsq == NULL || kv == NULL || start == NULL ||
        vote == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "svm prediction: out of memory");
        goto done;
    }
    for (size_t j = 0; j < l; j++) {
        ssq[j] = scatter(sv, l, j, model->SV[j], d, &bad_index);
    }
    start[0] = 0;
    for (int i = 1; i < nr; i++) {
        start[i] = start[i - 1] + model->nSV[i - 1];
    }
    for (size_t b0 = 0; b0 < n && bad_index == 0; b0 += PREDICT_BLOCK) {
        size_t nb = n - b0 < PREDICT_BLOCK ? n - b0 : PREDICT_BLOCK;
        memset(xb, 0, PREDICT_BLOCK * d * sizeof *xb);
        for (size_t i = 0; i < nb; i++) {
            xsq[i] = scatter(xb, PREDICT_BLOCK, i, x[b0 + i], d, &bad_index);
        }
        /* column i of kv (l x nb) = SV * x_i: every kernel value of row b0 + i, contiguous */
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (blasint)l, (blasint)nb,
                    (blasint)d, 1.0, sv, (blasint)l, xb, PREDICT_BLOCK, 0.0, kv, (blasint)l);
        for (size_t i = 0; i < nb; i++) {
            double *k = kv + i * l;
            kernel_from_dots(k, l, &model->param, xsq[i], ssq);
            out[b0 + i] = decide(model, k, start, vote);
        }
    }
    if (bad_index != 0) {
        rc = kb_error_set(err, KB_EINVAL, "svm prediction: feature index %d outside [1, %zu]",
                          bad_index, d);
    }
done:
    kb_free(vote);
    kb_free(start);
    kb_free(kv);
    kb_free(xsq);
    kb_free(xb);
    kb_free(ssq);
    kb_free(sv);
    return rc;
}

/* ---- cross-validation ---- */

/* What one run shares across folds; every buffer is allocated once, before the folds. */
typedef struct cv_ctx {
    const kb_dataset *d;
    const kb_svm_config *cfg;
    size_t n_features;
    prep prep;
    struct svm_node *nodes;  /* n_rows * (n_cols + 1) */
    struct svm_node **x;     /* n_rows: train rows first, then test rows */
    double *y;               /* n_rows: libsvm targets of the train rows */
    size_t *train, *test;    /* row lists of the current split */
    size_t *class_counts;    /* n_classes */
    double *pred;            /* n_rows, by row: the prediction */
    double *raw;             /* n_rows: libsvm's outputs for the current test rows */
    double *p_true;          /* n_rows, by row: probability of the true class */
    double *prob;            /* n_classes: workspace */
    int *labels;             /* n_classes: workspace */
    kb_rng prob_rng;         /* seeds libsvm's rand() for probability training */
    double gamma;
} cv_ctx;

static void metrics_compute(kb_svm_metrics *m, const cv_ctx *ctx, const size_t *rows, size_t n)
{
    const kb_dataset *d = ctx->d;
    m->n = n;
    m->accuracy = m->log_loss = m->rmse = m->r2 = NAN;
    if (n == 0) {
        return;
    }
    if (d->task == KB_DATASET_TASK_CLASSIFICATION) {
        size_t correct = 0;
        double ll = 0.0;
        for (size_t i = 0; i < n; i++) {
            size_t r = rows[i];
            correct += ctx->pred[r] == d->y[r];
            /* clipped as scikit-learn's log_loss does, so one confident miss stays finite */
            double p = fmin(fmax(ctx->p_true[r], 1e-15), 1.0 - 1e-15);
            ll -= log(p);
        }
        m->accuracy = (double)correct / (double)n;
        if (ctx->cfg->probability) {
            m->log_loss = ll / (double)n;
        }
        return;
    }
    double mean = 0.0, sse = 0.0, sst = 0.0;
    for (size_t i = 0; i < n; i++) {
        mean += d->y[rows[i]];
    }
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) {
        size_t r = rows[i];
        sse += (ctx->pred[r] - d->y[r]) * (ctx->pred[r] - d->y[r]);
        sst += (d->y[r] - mean) * (d->y[r] - mean);
    }
    m->rmse = sqrt(sse / (double)n);
    m->r2 = sst > 0 ? 1.0 - sse / sst : NAN;
}

/* A training split with a single class: predict it, with probability 1. */
static void predict_constant(cv_ctx *ctx, size_t n_test, double label)
{
    for (size_t i = 0; i < n_test; i++) {
        size_t r = ctx->test[i];
        ctx->pred[r] = label;
        ctx->p_true[r] = ctx->d->y[r] == label ? 1.0 : 0.0;
    }
}

static int predict_model(cv_ctx *ctx, const struct svm_model *model, size_t n_train,
                         size_t n_test, kb_error *err)
{
    const kb_dataset *d = ctx->d;
    int classification = d->task == KB_DATASET_TASK_CLASSIFICATION;
    int with_prob = classification && ctx->cfg->probability && svm_check_probability_model(model);
    int n_labels = svm_get_nr_class(model);
    const struct svm_node *const *xt = (const struct svm_node *const *)ctx->x + n_train;
    if (with_prob) {
        svm_get_labels(model, ctx->labels);
    } else {
        int rc = kb_svm_predict(ctx->raw, model, xt, n_test, ctx->n_features, err);
        if (rc != KB_OK) {
            return rc;
        }
    }
    for (size_t i = 0; i < n_test; i++) {
        size_t r = ctx->test[i];
        double v = with_prob ? svm_predict(model, xt[i]) : ctx->raw[i];
        if (!classification) {
            ctx->pred[r] = v / ctx->prep.y_mul + ctx->prep.y_shift;
            continue;
        }
        ctx->pred[r] = v;
        ctx->p_true[r] = v == d->y[r] ? 1.0 : 0.0;
        if (with_prob) {
            svm_predict_probability(model, xt[i], ctx->prob);
            ctx->p_true[r] = 0.0;
            for (int l = 0; l < n_labels; l++) {
                if ((double)ctx->labels[l] == d->y[r]) {
                    ctx->p_true[r] = ctx->prob[l];
                }
            }
        }
    }
    return KB_OK;
}

/*
 * Fit the preprocessing and a model on ctx->train, predict ctx->test into ctx->pred/p_true.
 * The svm_problem (ctx->x, ctx->y) stays untouched until the model is freed here.
 */
static int run_split(cv_ctx *ctx, size_t n_train, size_t n_test, size_t *n_sv_out,
                     kb_error *err)
{
    const kb_dataset *d = ctx->d;
    int classification = d->task == KB_DATASET_TASK_CLASSIFICATION;
    prep_fit(&ctx->prep, d, ctx->cfg, ctx->train, n_train);
    struct svm_node *next = ctx->nodes;
    for (size_t i = 0; i < n_train + n_test; i++) {
        size_t r = i < n_train ? ctx->train[i] : ctx->test[i - n_train];
        ctx->x[i] = next;
        next += prep_row(next, &ctx->prep, d, r);
    }
    size_t n_present = 0, only = 0;
    if (classification) {
        memset(ctx->class_counts, 0, d->n_classes * sizeof *ctx->class_counts);
        for (size_t i = 0; i < n_train; i++) {
            ctx->class_counts[(size_t)d->y[ctx->train[i]]]++;
        }
        for (size_t c = 0; c < d->n_classes; c++) {
            if (ctx->class_counts[c] > 0) {
                n_present++;
                only = c;
            }
        }
    }
    for (size_t i = 0; i < n_train; i++) {
        double yr = d->y[ctx->train[i]];
        ctx->y[i] = classification ? yr : (yr - ctx->prep.y_shift) * ctx->prep.y_mul;
    }
    *n_sv_out = 0;
    if (classification && n_present < 2) {
        predict_constant(ctx, n_test, (double)only);
        return KB_OK;
    }
    struct svm_problem prob = {(int)n_train, ctx->y, ctx->x};
    struct svm_parameter param;
    int rc = kb_svm_config_to_param(&param, ctx->cfg, d, ctx->n_features, ctx->class_counts,
                                    &prob, err);
    if (rc != KB_OK) {
        return rc;
    }
    ctx->gamma = param.gamma;
    if (param.probability) {
        /* libsvm splits for Platt scaling with rand(): seed it from our stream */
        srand((unsigned)(kb_rng_u64(&ctx->prob_rng) >> 32));
    }
    struct svm_model *model = svm_train(&prob, &param);
    if (model == NULL) {
        kb_svm_param_release(&param);
        return kb_error_set(err, KB_ENOMEM, "svm training: out of memory");
    }
    *n_sv_out = (size_t)svm_get_nr_sv(model);
    rc = predict_model(ctx, model, n_train, n_test, err);
    svm_free_and_destroy_model(&model);
    kb_svm_param_release(&param);
    return rc;
}

static int check_data(const kb_dataset *d, kb_error *err)
{
    if (d->task != KB_DATASET_TASK_CLASSIFICATION && d->task != KB_DATASET_TASK_REGRESSION) {
        return kb_error_set(err, KB_EINVAL, "the dataset's task is not set");
    }
    if (d->n_rows > (size_t)INT32_MAX / 2) {
        return kb_error_set(err, KB_EFORMAT, "%zu rows: too many for libsvm", d->n_rows);
    }
    for (size_t j = 0; j < d->n_cols; j++) {
        const double *x = kb_dataset_col(d, j);
        int categorical = d->cols[j].type == KB_COLUMN_CATEGORICAL;
        for (size_t i = 0; i < d->n_rows; i++) {
            if (isnan(x[i])) {
                continue;
            }
            int bad = categorical ? !(x[i] >= 0 && x[i] < (double)d->cols[j].n_levels) ||
                                        x[i] != floor(x[i])
                                  : !isfinite(x[i]);
            if (bad) {
                return kb_error_set(err, KB_EFORMAT, "row %zu: column '%s': %s %g", i + 1,
                                    d->cols[j].name ? d->cols[j].name : "?",
                                    categorical ? "level index out of range:" : "not finite:",
                                    x[i]);
            }
        }
    }
    if (d->task == KB_DATASET_TASK_CLASSIFICATION) {
        int rc = check_labels(d->y, d->n_rows, d->n_classes, err);
        if (rc != KB_OK) {
            return rc;
        }
        size_t first = d->n_rows > 0 ? (size_t)d->y[0] : 0;
        for (size_t i = 1; i < d->n_rows; i++) {
            if ((size_t)d->y[i] != first) {
                return KB_OK;
            }
        }
        if (d->n_rows == 0) {
            return kb_error_set(err, KB_EFORMAT, "the dataset has no rows");
        }
        return kb_error_set(err, KB_EFORMAT,
                            "the dataset has a single class '%s': classification needs two",
                            d->class_names ? d->class_names[first] : "?");
    }
    for (size_t i = 0; i < d->n_rows; i++) {
        if (!isfinite(d->y[i])) {
            return kb_error_set(err, KB_EFORMAT, "row %zu: target not finite: %g", i + 1,
                                d->y[i]);
        }
    }
    return KB_OK;
}

/*
 * Split rows into the cross-validation part and a held-out test part of about
 * `fraction` of the rows, stratified by class; every class keeps at least one row in the CV
 * part. Both lists come out in ascending row order.
 */
static int split_test(size_t *cv, size_t *n_cv, size_t *test, size_t *n_test,
                      const kb_dataset *d, double fraction, kb_rng *rng, kb_error *err)
{
    size_t n = d->n_rows;
    size_t k = d->task == KB_DATASET_TASK_CLASSIFICATION ? d->n_classes : 1;
    size_t *order = kb_malloc_array(n, sizeof *order);
    size_t *start = kb_malloc_array(k + 1, sizeof *start);
    unsigned char *is_test = kb_calloc(n > 0 ? n : 1, 1);
    int rc = KB_OK;
    if (order == NULL || start == NULL || is_test == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "test split: out of memory");
        goto done;
    }
    if (k > 1) {
        if (group_by_class(order, start, d->y, NULL, n, k) != KB_OK) {
            rc = kb_error_set(err, KB_ENOMEM, "test split: out of memory");
            goto done;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            order[i] = i;
        }
        start[0] = 0;
        start[1] = n;
    }
    for (size_t c = 0; c < k; c++) {
        size_t nc = start[c + 1] - start[c];
        size_t nt = (size_t)floor(fraction * (double)nc + 0.5);
        size_t keep = k > 1 ? 1 : 2;
        nt = nc >= keep && nt > nc - keep ? nc - keep : (nc < keep ? 0 : nt);
        kb_rng_shuffle(rng, order + start[c], nc);
        for (size_t t = 0; t < nt; t++) {
            is_test[order[start[c] + t]] = 1;
        }
    }
    *n_cv = *n_test = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_test[i]) {
            test[(*n_test)++] = i;
        } else {
            cv[(*n_cv)++] = i;
        }
    }
done:
    kb_free(is_test);
    kb_free(start);
    kb_free(order);
    return rc;
}

static void cv_ctx_release(cv_ctx *ctx)
{
    kb_free(ctx->prep.cols);
    kb_free(ctx->prep.level_counts);
    kb_free(ctx->nodes);
    kb_free(ctx->x);
    kb_free(ctx->y);
    kb_free(ctx->train);
    kb_free(ctx->test);
    kb_free(ctx->class_counts);
    kb_free(ctx->pred);
    kb_free(ctx->raw);
    kb_free(ctx->p_true);
    kb_free(ctx->prob);
    kb_free(ctx->labels);
}

static int cv_ctx_init(cv_ctx *ctx, const kb_dataset *d, const kb_svm_config *cfg,
                       kb_error *err)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->d = d;
    ctx->cfg = cfg;
    ctx->n_features = kb_svm_n_features(d);
    size_t n = d->n_rows, max_levels = 1, k = d->n_classes > 0 ? d->n_classes : 1;
    for (size_t j = 0; j < d->n_cols; j++) {
        if (d->cols[j].n_levels > max_levels) {
            max_levels = d->cols[j].n_levels;
        }
    }
    /* at most one node per column and the terminator; overflow-checked */
    size_t per_row = d->n_cols + 1;
    ctx->nodes = per_row <= SIZE_MAX / (n > 0 ? n : 1)
                     ? kb_malloc_array(n * per_row, sizeof *ctx->nodes)
                     : NULL;
    ctx->prep.cols = kb_calloc(d->n_cols > 0 ? d->n_cols : 1, sizeof *ctx->prep.cols);
    ctx->prep.level_counts = kb_malloc_array(max_levels, sizeof *ctx->prep.level_counts);
    ctx->x = kb_malloc_array(n, sizeof *ctx->x);
    ctx->y = kb_malloc_array(n, sizeof *ctx->y);
    ctx->train = kb_malloc_array(n, sizeof *ctx->train);
    ctx->test = kb_malloc_array(n, sizeof *ctx->test);
    ctx->class_counts = kb_calloc(k, sizeof *ctx->class_counts);
    ctx->pred = kb_malloc_array(n, sizeof *ctx->pred);
    ctx->raw = kb_malloc_array(n, sizeof *ctx->raw);
    ctx->p_true = kb_malloc_array(n, sizeof *ctx->p_true);
    ctx->prob = kb_malloc_array(k, sizeof *ctx->prob);
    ctx->labels = kb_malloc_array(k, sizeof *ctx->labels);
    if (ctx->nodes == NULL || ctx->prep.cols == NULL || ctx->prep.level_counts == NULL ||
        ctx->x == NULL || ctx->y == NULL || ctx->train == NULL || ctx->test == NULL ||
        ctx->class_counts == NULL || ctx->pred == NULL || ctx->raw == NULL || ctx->p_true == NULL ||
        ctx->prob == NULL || ctx->labels == NULL) {
        return kb_error_set(err, KB_ENOMEM, "svm cross-validation: out of memory");
    }
    return KB_OK;
}

/* The random streams of one run, each split from the run's seed. */
enum { STREAM_TEST_SPLIT = 1, STREAM_FOLDS = 2, STREAM_PROBABILITY = 3 };

int kb_svm_cv_folds(size_t *fold, size_t *n_folds_out, const kb_dataset *d, size_t n_folds,
                    uint64_t seed, const kb_log *log, kb_error *err)
{
    KB_CHECK_ARG(d != NULL);
    kb_rng root, fold_rng;
    kb_rng_seed(&root, seed);
    kb_rng_split(&fold_rng, &root, STREAM_FOLDS);
    size_t n_classes = d->task == KB_DATASET_TASK_CLASSIFICATION ? d->n_classes : 0;
    return kb_svm_folds(fold, n_folds_out, d->y, d->n_rows, n_classes,
                        (const char *const *)d->class_names, n_folds, &fold_rng, log, err);
}

int kb_svm_cross_validate(kb_svm_result *out, const kb_dataset *d, const kb_svm_config *cfg,
                          const kb_svm_cv_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    memset(out, 0, sizeof *out);
    KB_CHECK_ARG(d != NULL && cfg != NULL);
    KB_CHECK_ARG(d->n_rows == 0 || ((d->x != NULL || d->n_cols == 0) && d->y != NULL));
    kb_svm_cv_opts o = KB_SVM_CV_OPTS_INIT;
    if (opts != NULL) {
        o = *opts;
    }
    if (!(o.test_fraction >= 0.0 && o.test_fraction < 1.0)) {
        return kb_error_set(err, KB_EINVAL, "test_fraction: must be in [0, 1), got %g",
                            o.test_fraction);
    }
    if (o.n_folds < 2) {
        return kb_error_set(err, KB_EINVAL, "folds: must be at least 2, got %zu", o.n_folds);
    }
    kb_svm_quiet();
    int rc = check_data(d, err);
    if (rc != KB_OK) {
        return rc;
    }
    cv_ctx ctx;
    size_t *cv = NULL, *test = NULL, *fold = NULL;
    double *y_cv = NULL;
    rc = cv_ctx_init(&ctx, d, cfg, err);
    if (rc != KB_OK) {
        goto done;
    }
    /* an early check of the configuration against the task, before any work */
    struct svm_parameter param;
    rc = kb_svm_config_to_param(&param, cfg, d, ctx.n_features, ctx.class_counts, NULL, err);
    if (rc != KB_OK) {
        goto done;
    }
    kb_svm_param_release(&param);
    out->task = d->task;
    out->type = resolve_type(cfg->type, d->task);
    out->n_features = ctx.n_features;
    out->gamma = cfg->gamma > 0 ? cfg->gamma : 1.0 / (double)ctx.n_features;

    kb_rng root, split_rng, fold_rng;
    kb_rng_seed(&root, o.seed);
    kb_rng_split(&split_rng, &root, STREAM_TEST_SPLIT);
    kb_rng_split(&fold_rng, &root, STREAM_FOLDS);
    kb_rng_split(&ctx.prob_rng, &root, STREAM_PROBABILITY);

    size_t n = d->n_rows, n_cv = n, n_test = 0;
    cv = kb_malloc_array(n, sizeof *cv);
    test = kb_malloc_array(n, sizeof *test);
    fold = kb_malloc_array(n, sizeof *fold);
    y_cv = kb_malloc_array(n, sizeof *y_cv);
    if (cv == NULL || test == NULL || fold == NULL || y_cv == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "svm cross-validation: out of memory");
        goto done;
    }
    if (o.test_fraction > 0) {
        rc = split_test(cv, &n_cv, test, &n_test, d, o.test_fraction, &split_rng, err);
        if (rc != KB_OK) {
            goto done;
        }
        if (n_test == 0) {
            kb_log_printf(&o.log, KB_LOG_LEVEL_WARNING,
                          "test fraction %g of %zu rows leaves no test rows", o.test_fraction, n);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            cv[i] = i;
        }
    }
    for (size_t i = 0; i < n_cv; i++) {
        y_cv[i] = d->y[cv[i]];
    }
    size_t n_classes = d->task == KB_DATASET_TASK_CLASSIFICATION ? d->n_classes : 0;
    size_t k = 0;
    rc = kb_svm_folds(fold, &k, y_cv, n_cv, n_classes, (const char *const *)d->class_names,
                      o.n_folds, &fold_rng, &o.log, err);
    if (rc != KB_OK) {
        goto done;
    }
    out->n_folds = k;
    out->n_cv = n_cv;
    double sum_sv = 0.0;
    for (size_t f = 0; f < k; f++) {
        size_t n_train = 0, n_fold = 0;
        for (size_t i = 0; i < n_cv; i++) {
            if (fold[i] == f) {
                ctx.test[n_fold++] = cv[i];
            } else {
                ctx.train[n_train++] = cv[i];
            }
        }
        kb_svm_fold fr = {f, k, n_train, n_fold, 0, {0, NAN, NAN, NAN, NAN}};
        rc = run_split(&ctx, n_train, n_fold, &fr.n_sv, err);
        if (rc != KB_OK) {
            kb_error_prefix(err, "fold %zu of %zu: ", f + 1, k);
            goto done;
        }
        sum_sv += (double)fr.n_sv;
        metrics_compute(&fr.metrics, &ctx, ctx.test, n_fold);
        if (o.on_fold != NULL && (rc = o.on_fold(&fr, o.payload)) != 0) {
            kb_error_set(err, rc, "stopped by the caller after fold %zu of %zu", f + 1, k);
            goto done;
        }
    }
    out->mean_n_sv = sum_sv / (double)k;
    metrics_compute(&out->cv, &ctx, cv, n_cv);
    out->gamma = ctx.gamma > 0 ? ctx.gamma : out->gamma;
    out->test.accuracy = out->test.log_loss = out->test.rmse = out->test.r2 = NAN;
    if (n_test > 0) {
        memcpy(ctx.train, cv, n_cv * sizeof *cv);
        memcpy(ctx.test, test, n_test * sizeof *test);
        size_t n_sv;
        rc = run_split(&ctx, n_cv, n_test, &n_sv, err);
        if (rc != KB_OK) {
            kb_error_prefix(err, "test split: ");
            goto done;
        }
        metrics_compute(&out->test, &ctx, test, n_test);
    }
done:
    kb_free(y_cv);
    kb_free(fold);
    kb_free(test);
    kb_free(cv);
    cv_ctx_release(&ctx);
    return rc;
}
