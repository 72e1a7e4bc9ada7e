/*
 * kb_net inputs: turning a kb_dataset into the float matrices the net trains on, with the
 * scaling fitted on the training rows only (so validation and test data never leak into it).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/core/sha256.h"
#include "engine/net.h"

static size_t row_at(const size_t *rows, size_t i)
{
    return rows != NULL ? rows[i] : i;
}

void kb_net_scaler_release(kb_net_scaler *s)
{
    if (s == NULL) {
        return;
    }
    kb_free(s->mean);
    kb_free(s->std);
    for (size_t j = 0; s->level_pos != NULL && j < s->n_cols; j++) {
        kb_free(s->level_pos[j]);
    }
    kb_free(s->level_pos);
    kb_free(s->offset);
    memset(s, 0, sizeof *s);
}

static void tabular_signature(kb_net_scaler *s, const kb_dataset *d)
{
    /* the schema as text: one line per column "name\ttype\tlevel\x1flevel..." */
    kb_sha256 ctx;
    kb_sha256_init(&ctx);
    for (size_t j = 0; j < d->n_cols; j++) {
        const kb_column *c = &d->cols[j];
        const char *name = c->name ? c->name : "";
        kb_sha256_update(&ctx, name, strlen(name));
        kb_sha256_update(&ctx, c->type == KB_COLUMN_CATEGORICAL ? "\tcat\t" : "\tnum\t", 5);
        for (size_t r = 0; c->type == KB_COLUMN_CATEGORICAL && r < c->n_levels; r++) {
            /* the level whose one-hot position is r: the r-th name in sorted order */
            for (size_t l = 0; l < c->n_levels; l++) {
                if (s->level_pos[j][l] == r) {
                    const char *lv = c->levels[l] ? c->levels[l] : "";
                    kb_sha256_update(&ctx, lv, strlen(lv));
                    kb_sha256_update(&ctx, "\x1f", 1);
                }
            }
        }
        kb_sha256_update(&ctx, "\n", 1);
    }
    unsigned char digest[32];
    kb_sha256_final(&ctx, digest);
    char hex[33];
    kb_sha256_hex(hex, digest, 16);
    snprintf(s->signature, sizeof s->signature, "tabular:%s", hex);
}

int kb_net_scaler_fit(kb_net_scaler *out, const kb_dataset *d, const size_t *rows, size_t n,
                      kb_error *err)
{
    KB_CHECK_ARG(out != NULL && d != NULL);
    memset(out, 0, sizeof *out);
    if (rows == NULL) {
        n = d->n_rows;
    }
    if (n == 0 || d->n_cols == 0) {
        return kb_error_set(err, KB_EINVAL, "no training data to fit the input scaling");
    }
    out->y_mean = 0.0;
    out->y_std = 1.0;
    if (d->task == KB_DATASET_TASK_REGRESSION) {
        double sum = 0.0, ss = 0.0;
        for (size_t i = 0; i < n; i++) {
            sum += d->y[row_at(rows, i)];
        }
        out->y_mean = sum / (double)n;
        for (size_t i = 0; i < n; i++) {
            double e = d->y[row_at(rows, i)] - out->y_mean;
            ss += e * e;
        }
        out->y_std = sqrt(ss / (double)n) > 1e-12 ? sqrt(ss / (double)n) : 1.0;
    }
    size_t img = d->img_channels * d->img_height * d->img_width;
    out->image = img > 0 && img == d->n_cols;
    out->n_cols = d->n_cols;
    size_t n_stats = out->image ? d->img_channels : d->n_cols;
    out->mean = kb_calloc(n_stats, sizeof(double));
    out->std = kb_calloc(n_stats, sizeof(double));
    out->offset = kb_calloc(d->n_cols, sizeof(size_t));
    if (out->mean == NULL || out->std == NULL || out->offset == NULL) {
        kb_net_scaler_release(out);
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    if (out->image) {
        out->channels = d->img_channels;
        out->height = d->img_height;
        out->width = d->img_width;
        out->dim = img;
        size_t plane = d->img_height * d->img_width;
        for (size_t c = 0; c < out->channels; c++) {
            /* pixels / 255, then the training set's per-channel mean and std */
            double sum = 0.0, sq = 0.0, cnt = 0.0;
            for (size_t p = 0; p < plane; p++) {
                const double *col = kb_dataset_col(d, c * plane + p);
                for (size_t i = 0; i < n; i++) {
                    double v = col[row_at(rows, i)] / 255.0;
                    if (!isnan(v)) {
                        sum += v;
                        sq += v * v;
                        cnt += 1.0;
                    }
                }
            }
            double mean = cnt > 0 ? sum / cnt : 0.0;
            double var = cnt > 0 ? sq / cnt - mean * mean : 0.0;
            out->mean[c] = mean;
            out->std[c] = var > 1e-12 ? sqrt(var) : 1.0;
        }
        snprintf(out->signature, sizeof out->signature, "image:%zux%zux%zu", out->channels,
                 out->height, out->width);
        return KB_OK;
    }
    size_t dim = 0;
    out->level_pos = kb_calloc(d->n_cols, sizeof(size_t *));
    if (out->level_pos == NULL) {
        kb_net_scaler_release(out);
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    for (size_t j = 0; j < d->n_cols; j++) {
        out->offset[j] = dim;
        if (d->cols[j].type == KB_COLUMN_CATEGORICAL) {
            const kb_column *c = &d->cols[j];
            out->level_pos[j] = kb_calloc(c->n_levels ? c->n_levels : 1, sizeof(size_t));
            if (out->level_pos[j] == NULL) {
                kb_net_scaler_release(out);
                return kb_error_set(err, KB_ENOMEM, "out of memory");
            }
            for (size_t l = 0; l < c->n_levels; l++) {
                size_t rank = 0;
                for (size_t m = 0; m < c->n_levels; m++) {
                    int cmp = strcmp(c->levels[m] ? c->levels[m] : "",
                                     c->levels[l] ? c->levels[l] : "");
                    rank += cmp < 0 || (cmp == 0 && m < l);
                }
                out->level_pos[j][l] = rank;
            }
            dim += c->n_levels;
            continue;
        }
        const double *col = kb_dataset_col(d, j);
        double sum = 0.0, cnt = 0.0;
        for (size_t i = 0; i < n; i++) {
            double v = col[row_at(rows, i)];
            if (isfinite(v)) {
                sum += v;
                cnt += 1.0;
            }
        }
        double mean = cnt > 0 ? sum / cnt : 0.0, ss = 0.0;
        for (size_t i = 0; i < n; i++) {
            double v = col[row_at(rows, i)];
            if (isfinite(v)) {
                ss += (v - mean) * (v - mean);
            }
        }
        double sd = cnt > 0 ? sqrt(ss / cnt) : 0.0;
        out->mean[j] = mean;
        out->std[j] = sd > 1e-12 ? sd : 1.0; /* a constant column scales to 0 */
        dim += 1;
    }
    if (dim == 0) {
        kb_net_scaler_release(out);
        return kb_error_set(err, KB_EINVAL, "no usable input features");
    }
    out->dim = dim;
    out->channels = dim;
    out->height = out->width = 1;
    tabular_signature(out, d);
    return KB_OK;
}

kb_net_input kb_net_scaler_input(const kb_net_scaler *s)
{
    kb_net_input in = {s->image, s->channels, s->height, s->width};
    return in;
}

int kb_net_scaler_apply(float **x_out, float **y_out, const kb_net_scaler *s,
                        const kb_dataset *d, const size_t *rows, size_t n, kb_error *err)
{
    KB_CHECK_ARG(x_out != NULL && y_out != NULL && s != NULL && d != NULL);
    *x_out = NULL;
    *y_out = NULL;
    if (rows == NULL) {
        n = d->n_rows;
    }
    if (d->n_cols != s->n_cols) {
        return kb_error_set(err, KB_EINVAL, "data has %zu columns, the scaling was fitted on %zu",
                            d->n_cols, s->n_cols);
    }
    float *x = kb_malloc_array(n ? n : 1, s->dim * sizeof(float));
    float *y = kb_malloc_array(n ? n : 1, sizeof(float));
    if (x == NULL || y == NULL || (s->dim != 0 && SIZE_MAX / s->dim / sizeof(float) < n)) {
        kb_free(x);
        kb_free(y);
        return kb_error_set(err, KB_ENOMEM, "out of memory for %zu x %zu inputs", n, s->dim);
    }
    if (s->image) {
        size_t C = s->channels, plane = s->height * s->width;
        for (size_t c = 0; c < C; c++) {
            float mean = (float)s->mean[c], inv = (float)(1.0 / s->std[c]);
            for (size_t p = 0; p < plane; p++) {
                /* dataset pixel columns are channel-major (CHW); the net takes HWC */
                const double *col = kb_dataset_col(d, c * plane + p);
                for (size_t i = 0; i < n; i++) {
                    double v = col[row_at(rows, i)];
                    x[i * s->dim + p * C + c] =
                        isnan(v) ? 0.0f : ((float)(v / 255.0) - mean) * inv;
                }
            }
        }
    } else {
        memset(x, 0, n * s->dim * sizeof(float));
        for (size_t j = 0; j < d->n_cols; j++) {
            const double *col = kb_dataset_col(d, j);
            size_t off = s->offset[j];
            if (d->cols[j].type == KB_COLUMN_CATEGORICAL) {
                size_t levels = (j + 1 < d->n_cols ? s->offset[j + 1] : s->dim) - off;
                for (size_t i = 0; i < n; i++) {
                    double v = col[row_at(rows, i)];
                    if (v >= 0 && v < (double)levels) {
                        x[i * s->dim + off + s->level_pos[j][(size_t)v]] = 1.0f;
                    }
                }
                continue;
            }
            for (size_t i = 0; i < n; i++) {
                double v = col[row_at(rows, i)];
                x[i * s->dim + off] = isfinite(v) ? (float)((v - s->mean[j]) / s->std[j]) : 0.0f;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        y[i] = (float)((d->y[row_at(rows, i)] - s->y_mean) / s->y_std);
    }
    *x_out = x;
    *y_out = y;
    return KB_OK;
}
