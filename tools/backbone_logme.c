#include "tools/backbone_logme.h"

#include <string.h>

#include "engine/core/alloc.h"
#include "engine/core/rng.h"
#include "engine/logme.h"
#include "engine/net.h"

/* rows[0..n) of d: all of them, or a seeded subset of max_rows in ascending order (the order
 * does not change LogME, but ascending keeps the reads cache-friendly) */
static size_t *pick_rows(size_t *n_out, const kb_dataset *d, size_t max_rows, uint64_t seed)
{
    size_t n = d->n_rows;
    size_t *rows = kb_malloc_array(n ? n : 1, sizeof *rows);
    if (rows == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        rows[i] = i;
    }
    if (max_rows > 0 && n > max_rows) {
        kb_rng rng;
        kb_rng_seed(&rng, seed);
        kb_rng_shuffle(&rng, rows, n);
        n = max_rows;
        /* insertion sort would be quadratic on 10k rows; counting marks are linear */
        unsigned char *keep = kb_calloc(d->n_rows, 1);
        if (keep == NULL) {
            kb_free(rows);
            return NULL;
        }
        for (size_t i = 0; i < n; i++) {
            keep[rows[i]] = 1;
        }
        for (size_t i = 0, k = 0; i < d->n_rows; i++) {
            if (keep[i]) {
                rows[k++] = i;
            }
        }
        kb_free(keep);
    }
    *n_out = n;
    return rows;
}

int backbone_logme(double *score_out, const kb_dataset *d, const char *weights, size_t max_rows,
                   uint64_t seed, kb_error *err)
{
    if (d->task != KB_DATASET_TASK_CLASSIFICATION) {
        return kb_error_set(err, KB_EINVAL, "LogME needs a classification dataset");
    }
    if (d->n_rows < 2) {
        return kb_error_set(err, KB_EINVAL, "LogME needs at least 2 rows (the dataset has %zu)",
                            d->n_rows);
    }
    kb_net_weights_info info;
    int rc = kb_net_weights_info_read(&info, weights, err);
    if (rc != KB_OK) {
        return rc;
    }
    size_t n = 0;
    size_t *rows = pick_rows(&n, d, max_rows, seed);
    if (rows == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    kb_net_scaler sc;
    memset(&sc, 0, sizeof sc);
    float *x = NULL, *y = NULL, *feat = NULL;
    double *f = NULL, *labels = NULL;
    kb_net *net = NULL;
    kb_net_arch arch;
    rc = kb_net_scaler_fit(&sc, d, rows, n, err);
    if (rc == KB_OK && strcmp(sc.signature, info.signature) != 0) {
        rc = kb_error_set(err, KB_EINVAL, "'%s' takes input %s, the data is %s", weights,
                          info.signature, sc.signature);
    }
    rc = rc ? rc : kb_net_scaler_apply(&x, &y, &sc, d, rows, n, err);
    rc = rc ? rc : kb_net_arch_parse(&arch, info.arch, err);
    if (rc == KB_OK) {
        /* only the forward pass runs: the options shape no computation here */
        kb_net_opts o = KB_NET_OPTS_INIT;
        kb_net_input in = kb_net_scaler_input(&sc);
        rc = kb_net_new(&net, &arch, &in, KB_NET_TASK_CLASSIFICATION, d->n_classes, &o, err);
    }
    int replaced = 0;
    rc = rc ? rc : kb_net_weights_load(&replaced, net, weights, sc.signature, err);
    size_t fd = rc == KB_OK ? kb_net_feature_dim(net) : 0;
    if (rc == KB_OK) {
        feat = kb_malloc_array(n * fd, sizeof *feat);
        f = kb_malloc_array(n * fd, sizeof *f);
        labels = kb_malloc_array(n, sizeof *labels);
        rc = feat && f && labels ? KB_OK : kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    rc = rc ? rc : kb_net_features(feat, net, x, n, err);
    if (rc == KB_OK) {
        /* kb_net_features keeps a sample contiguous; LogME takes a sample as a row of a
         * column-major matrix */
        for (size_t i = 0; i < n; i++) {
            labels[i] = y[i];
            for (size_t j = 0; j < fd; j++) {
                f[i + j * n] = feat[i * fd + j];
            }
        }
        kb_logme_result r;
        rc = kb_logme_score(&r, f, n, fd, n, labels, d->n_classes, NULL, err);
        if (rc == KB_OK) {
            *score_out = r.score;
        }
    }
    kb_free(labels);
    kb_free(f);
    kb_free(feat);
    kb_free(x);
    kb_free(y);
    kb_net_free(net);
    kb_net_scaler_release(&sc);
    kb_free(rows);
    return rc;
}
