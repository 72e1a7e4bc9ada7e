/*
 * kb_net layers: construction, initialisation, forward and backward passes (im2col + sgemm
 * for convolutions, sgemm for FC layers, max pooling with recorded argmax), the losses, and
 * the Caffe optimizer updates.
 *
 * Every buffer is allocated once in kb_net_new for max_batch samples; the passes allocate
 * nothing. Matrices are column-major (CBLAS ColMajor): a layer's output is rows x columns
 * with one column per sample (FC) or per output pixel (conv, NHWC order).
 */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/net_priv.h"

/* im2col chunk size in floats: 512 KiB, within a core's L2 cache next to the weights */
#define KB_NET_COL_FLOATS ((size_t)131072)

static void gemm(int ta, int tb, size_t m, size_t n, size_t k, const float *a, size_t lda,
                 const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    /* kb_net_new checked that every dimension and leading dimension fits in an int */
    cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (blasint)m, (blasint)n, (blasint)k, 1.0f, a, (blasint)lda, b, (blasint)ldb,
                beta, c, (blasint)ldc);
}

/* ---- construction ---- */

static int shape_error(kb_error *err, size_t i, const kb_net_layer_spec *s, const char *why)
{
    char name[64];
    if (s->kind == KB_NET_LAYER_FC) {
        snprintf(name, sizeof name, "FC(%zu)", s->n);
    } else {
        snprintf(name, sizeof name, "%c(%zu,%zu)", s->kind == KB_NET_LAYER_CONV ? 'C' : 'P',
                 s->k, s->n);
    }
    return kb_error_set(err, KB_EINVAL, "arch: layer %zu %s: %s", i + 1, name, why);
}

static size_t pool_out(size_t in, size_t k, size_t s)
{
    /* Caffe's pooled size: ceil((in - k) / s) + 1, minus one if the last window would start
     * past the input (src/caffe/layers/pooling_layer.cpp, Reshape) */
    size_t out = (in - k + s - 1) / s + 1;
    if ((out - 1) * s >= in) {
        out--;
    }
    return out;
}

static int plan_layers(kb_net *net, kb_error *err)
{
    size_t c = net->input.channels, h = net->input.height, w = net->input.width;
    int seen_fc = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        kb_net__layer *L = &net->layers[i];
        int is_out = i + 1 == net->n_layers;
        kb_net_layer_spec s = {KB_NET_LAYER_FC, 0, net->n_outputs};
        if (!is_out) {
            s = net->arch.layers[i];
        }
        L->kind = s.kind;
        L->k = s.k;
        L->n = s.n;
        L->is_output = is_out;
        L->in_c = c;
        L->in_h = h;
        L->in_w = w;
        if (s.kind != KB_NET_LAYER_FC && !net->input.image) {
            return shape_error(err, i, &s, "tabular data allows FC layers only (an MLP)");
        }
        if (s.kind != KB_NET_LAYER_FC && seen_fc) {
            return shape_error(err, i, &s, "convolution and pooling must come before FC layers");
        }
        switch (s.kind) {
        case KB_NET_LAYER_CONV:
            if (s.k > 2 * (h > w ? h : w) + 1) {
                return shape_error(err, i, &s, "kernel larger than the padded input map");
            }
            L->pad = (s.k - 1) / 2;
            L->has_params = 1;
            L->activated = 1;
            L->rows = s.n;
            L->fan_in = s.k * s.k * c;
            c = s.n;
            break;
        case KB_NET_LAYER_POOL:
            if (s.k > h || s.k > w) {
                char why[128];
                snprintf(why, sizeof why, "pooling the %zux%zu map with kernel %zu would shrink "
                         "it below 1x1", h, w, s.k);
                return shape_error(err, i, &s, why);
            }
            h = pool_out(h, s.k, s.n);
            w = pool_out(w, s.k, s.n);
            break;
        case KB_NET_LAYER_FC:
            seen_fc = 1;
            L->has_params = 1;
            L->activated = !is_out;
            L->dropout = !is_out && net->opts.dropout > 0;
            L->rows = s.n;
            L->fan_in = c * h * w;
            c = s.n;
            h = w = 1;
            break;
        }
        L->out_c = c;
        L->out_h = h;
        L->out_w = w;
        L->in_dim = L->in_c * L->in_h * L->in_w;
        L->out_dim = c * h * w;
    }
    return KB_OK;
}

static int fits_int(size_t a, size_t b)
{
    return b == 0 || a <= (size_t)INT_MAX / b;
}

static int alloc_workspace(kb_net *net, kb_error *err)
{
    size_t B = net->max_batch;
    size_t n_params = 0;
    net->n_param_layers = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        kb_net__layer *L = &net->layers[i];
        size_t pixels = L->out_h * L->out_w;
        if (!fits_int(L->out_dim, B) || !fits_int(L->in_dim, B) ||
            (L->kind == KB_NET_LAYER_CONV && (!fits_int(L->fan_in, pixels * B) ||
                                              !fits_int(pixels, B))) ||
            !fits_int(L->rows, L->fan_in)) {
            return kb_error_set(err, KB_EINVAL, "arch: layer %zu is too large for batch %zu",
                                i + 1, B);
        }
        L->out = kb_malloc_array(L->out_dim * B, sizeof(float));
        L->dout = kb_malloc_array(L->out_dim * B, sizeof(float));
        if (L->out == NULL || L->dout == NULL) {
            return kb_error_set(err, KB_ENOMEM, "out of memory for the net's workspace");
        }
        if (L->kind == KB_NET_LAYER_CONV) {
            /* im2col chunks of about KB_NET_COL_FLOATS floats (at least one image) */
            L->chunk = KB_NET_COL_FLOATS / (L->fan_in * pixels);
            L->chunk = L->chunk < 1 ? 1 : L->chunk > B ? B : L->chunk;
            L->col = kb_malloc_array(L->fan_in * pixels * L->chunk, sizeof(float));
            if (L->col == NULL) {
                return kb_error_set(err, KB_ENOMEM, "out of memory for the net's workspace");
            }
        }
        if (L->kind == KB_NET_LAYER_POOL) {
            L->argmax = kb_malloc_array(L->out_dim * B, sizeof(uint32_t));
            if (L->argmax == NULL) {
                return kb_error_set(err, KB_ENOMEM, "out of memory for the net's workspace");
            }
        }
        if (L->dropout) {
            L->mask = kb_malloc_array(L->out_dim * B, sizeof(float));
            if (L->mask == NULL) {
                return kb_error_set(err, KB_ENOMEM, "out of memory for the net's workspace");
            }
        }
        if (L->has_params) {
            L->param_index = net->n_param_layers++;
            L->w_off = n_params;
            L->b_off = n_params + L->rows * L->fan_in;
            n_params = L->b_off + L->rows;
        }
    }
    net->n_params = n_params;
    net->params = kb_calloc(n_params, sizeof(float));
    net->grads = kb_calloc(n_params, sizeof(float));
    net->hist1 = kb_calloc(n_params, sizeof(float));
    net->hist2 = kb_calloc(n_params, sizeof(float));
    net->xb = kb_malloc_array(net->layers[0].in_dim * B, sizeof(float));
    net->yb = kb_malloc_array(B, sizeof(float));
    net->param_layer = kb_calloc(net->n_param_layers, sizeof(size_t));
    net->lr_mult = kb_calloc(net->n_param_layers, sizeof(double));
    net->decay_mult = kb_calloc(net->n_param_layers, sizeof(double));
    if (net->params == NULL || net->grads == NULL || net->hist1 == NULL ||
        net->hist2 == NULL || net->xb == NULL || net->yb == NULL || net->param_layer == NULL ||
        net->lr_mult == NULL || net->decay_mult == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory for the net's parameters");
    }
    return KB_OK;
}

static void set_multipliers(kb_net *net)
{
    const kb_net_opts *o = &net->opts;
    net->first_trainable = -1;
    for (size_t i = 0; i < net->n_layers; i++) {
        const kb_net__layer *L = &net->layers[i];
        if (!L->has_params) {
            continue;
        }
        size_t p = L->param_index;
        net->param_layer[p] = i;
        net->lr_mult[p] = p < o->n_lr_mult ? o->lr_mult[p] : 1.0;
        net->decay_mult[p] = p < o->n_decay_mult ? o->decay_mult[p] : 1.0;
        if (p < o->freeze) {
            net->lr_mult[p] = 0.0;
        }
        if (net->lr_mult[p] > 0 && net->first_trainable < 0) {
            net->first_trainable = (int)i;
        }
    }
}

void kb_net_free(kb_net *net)
{
    if (net == NULL) {
        return;
    }
    for (size_t i = 0; net->layers != NULL && i < net->n_layers; i++) {
        kb_net__layer *L = &net->layers[i];
        kb_free(L->out);
        kb_free(L->dout);
        kb_free(L->col);
        kb_free(L->mask);
        kb_free(L->argmax);
    }
    kb_free(net->layers);
    kb_free(net->param_layer);
    kb_free(net->lr_mult);
    kb_free(net->decay_mult);
    kb_free(net->params);
    kb_free(net->grads);
    kb_free(net->hist1);
    kb_free(net->hist2);
    kb_free(net->xb);
    kb_free(net->yb);
    kb_free(net->perm);
    kb_free(net);
}

int kb_net_new(kb_net **out, const kb_net_arch *arch, const kb_net_input *input,
               kb_net_task task, size_t n_outputs, const kb_net_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    *out = NULL;
    KB_CHECK_ARG(arch != NULL && input != NULL && arch->n_layers <= KB_NET_MAX_LAYERS);
    KB_CHECK_ARG(task == KB_NET_TASK_CLASSIFICATION || task == KB_NET_TASK_REGRESSION);
    kb_net_opts defaults = KB_NET_OPTS_INIT;
    if (opts == NULL) {
        opts = &defaults;
    }
    int rc = kb_net_opts_check(opts, err);
    if (rc != KB_OK) {
        return rc;
    }
    if (task == KB_NET_TASK_CLASSIFICATION && n_outputs < 2) {
        return kb_error_set(err, KB_EINVAL, "classification needs at least 2 classes, got %zu",
                            n_outputs);
    }
    if (task == KB_NET_TASK_REGRESSION && n_outputs != 1) {
        return kb_error_set(err, KB_EINVAL, "regression has 1 output, got %zu", n_outputs);
    }
    if (input->channels < 1 || input->height < 1 || input->width < 1 ||
        (!input->image && (input->height != 1 || input->width != 1)) ||
        !fits_int(input->channels * input->height, input->width)) {
        return kb_error_set(err, KB_EINVAL, "invalid input shape %zux%zux%zu", input->channels,
                            input->height, input->width);
    }
    kb_net *net = kb_calloc(1, sizeof *net);
    if (net == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    net->arch = *arch;
    net->input = *input;
    net->task = task;
    net->n_outputs = n_outputs;
    net->opts = *opts;
    net->n_layers = arch->n_layers + 1;
    net->max_batch = opts->batch_size < 128 ? 128 : opts->batch_size;
    net->layers = kb_calloc(net->n_layers, sizeof(kb_net__layer));
    if (net->layers == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = plan_layers(net, err)) != KB_OK || (rc = alloc_workspace(net, err)) != KB_OK) {
        goto fail;
    }
    set_multipliers(net);
    kb_net__init_params(net);
    *out = net;
    return KB_OK;
fail:
    kb_net_free(net);
    return rc;
}

void kb_net__init_params(kb_net *net)
{
    kb_rng base, init;
    kb_rng_seed(&base, net->opts.seed);
    kb_rng_split(&init, &base, 1);
    kb_rng_split(&net->rng, &base, 2);
    for (size_t i = 0; i < net->n_layers; i++) {
        const kb_net__layer *L = &net->layers[i];
        if (!L->has_params) {
            continue;
        }
        /* each layer its own substream, so replacing one layer leaves the others unchanged */
        kb_rng r;
        kb_rng_split(&r, &init, L->param_index);
        float *w = net->params + L->w_off;
        size_t n = L->rows * L->fan_in;
        double fan_in = (double)L->fan_in;
        for (size_t j = 0; j < n; j++) {
            switch (net->opts.init) {
            case KB_NET_INIT_GAUSSIAN:
                w[j] = (float)(net->opts.init_std * kb_rng_normal(&r));
                break;
            case KB_NET_INIT_XAVIER: {
                double scale = sqrt(3.0 / fan_in);
                w[j] = (float)(scale * (2.0 * kb_rng_uniform(&r) - 1.0));
                break;
            }
            case KB_NET_INIT_MSRA:
                w[j] = (float)(sqrt(2.0 / fan_in) * kb_rng_normal(&r));
                break;
            }
        }
        memset(net->params + L->b_off, 0, L->rows * sizeof(float));
    }
    memset(net->hist1, 0, net->n_params * sizeof(float));
    memset(net->hist2, 0, net->n_params * sizeof(float));
}

size_t kb_net_n_params(const kb_net *net)
{
    return net->n_params;
}

float *kb_net_params(kb_net *net)
{
    return net->params;
}

const float *kb_net_grads(const kb_net *net)
{
    return net->grads;
}

size_t kb_net_n_param_layers(const kb_net *net)
{
    return net->n_param_layers;
}

void kb_net_param_layer(const kb_net *net, size_t l, size_t *offset_out, size_t *count_out)
{
    const kb_net__layer *L = &net->layers[net->param_layer[l]];
    *offset_out = L->w_off;
    *count_out = L->rows * L->fan_in + L->rows;
}

size_t kb_net_input_dim(const kb_net *net)
{
    return net->layers[0].in_dim;
}

/* ---- forward ---- */

static void im2col(const kb_net__layer *L, const float *in, size_t n, float *col)
{
    size_t C = L->in_c, H = L->in_h, W = L->in_w, k = L->k;
    ptrdiff_t pad = (ptrdiff_t)L->pad;
    float *dst = col;
    for (size_t s = 0; s < n; s++) {
        const float *img = in + s * H * W * C;
        for (size_t oh = 0; oh < H; oh++) {
            for (size_t ow = 0; ow < W; ow++) {
                for (size_t kh = 0; kh < k; kh++) {
                    ptrdiff_t ih = (ptrdiff_t)(oh + kh) - pad;
                    if (ih < 0 || ih >= (ptrdiff_t)H) {
                        memset(dst, 0, k * C * sizeof(float));
                        dst += k * C;
                        continue;
                    }
                    for (size_t kw = 0; kw < k; kw++) {
                        ptrdiff_t iw = (ptrdiff_t)(ow + kw) - pad;
                        if (iw < 0 || iw >= (ptrdiff_t)W) {
                            memset(dst, 0, C * sizeof(float));
                        } else if (C == 1) {
                            *dst = img[(size_t)ih * W + (size_t)iw];
                        } else {
                            memcpy(dst, img + ((size_t)ih * W + (size_t)iw) * C,
                                   C * sizeof(float));
                        }
                        dst += C;
                    }
                }
            }
        }
    }
}

static void col2im(const kb_net__layer *L, const float *col, size_t n, float *dx)
{
    size_t C = L->in_c, H = L->in_h, W = L->in_w, k = L->k;
    ptrdiff_t pad = (ptrdiff_t)L->pad;
    memset(dx, 0, n * H * W * C * sizeof(float));
    const float *src = col;
    for (size_t s = 0; s < n; s++) {
        float *img = dx + s * H * W * C;
        for (size_t oh = 0; oh < H; oh++) {
            for (size_t ow = 0; ow < W; ow++) {
                for (size_t kh = 0; kh < k; kh++) {
                    ptrdiff_t ih = (ptrdiff_t)(oh + kh) - pad;
                    if (ih < 0 || ih >= (ptrdiff_t)H) {
                        src += k * C;
                        continue;
                    }
                    for (size_t kw = 0; kw < k; kw++) {
                        ptrdiff_t iw = (ptrdiff_t)(ow + kw) - pad;
                        if (iw >= 0 && iw < (ptrdiff_t)W) {
                            float *d = img + ((size_t)ih * W + (size_t)iw) * C;
                            for (size_t c = 0; c < C; c++) {
                                d[c] += src[c];
                            }
                        }
                        src += C;
                    }
                }
            }
        }
    }
}

/* out (rows x cols) += bias per row, then the activation: one pass over the output */
static void bias_activate(float *out, const float *b, size_t rows, size_t cols, int activated,
                          kb_net_activation act)
{
    if (!activated) {
        for (size_t j = 0; j < cols; j++) {
            float *o = out + j * rows;
            for (size_t r = 0; r < rows; r++) {
                o[r] += b[r];
            }
        }
        return;
    }
    switch (act) {
    case KB_NET_ACTIVATION_RELU:
        for (size_t j = 0; j < cols; j++) {
            float *o = out + j * rows;
            for (size_t r = 0; r < rows; r++) {
                float v = o[r] + b[r];
                o[r] = v > 0.0f ? v : 0.0f;
            }
        }
        break;
    case KB_NET_ACTIVATION_TANH:
        for (size_t j = 0; j < cols; j++) {
            float *o = out + j * rows;
            for (size_t r = 0; r < rows; r++) {
                o[r] = tanhf(o[r] + b[r]);
            }
        }
        break;
    case KB_NET_ACTIVATION_SIGMOID:
        for (size_t j = 0; j < cols; j++) {
            float *o = out + j * rows;
            for (size_t r = 0; r < rows; r++) {
                /* 0.5 + 0.5 tanh(v/2) = 1 / (1 + e^-v), without overflow for large |v| */
                o[r] = 0.5f + 0.5f * tanhf(0.5f * (o[r] + b[r]));
            }
        }
        break;
    }
}

/* Running max over channels, branch-free so that it vectorises (channels are contiguous). */
static void pool_max_into(float *restrict out, uint32_t *restrict arg, const float *restrict src,
                          uint32_t base, size_t C)
{
    for (size_t c = 0; c < C; c++) {
        int gt = src[c] > out[c];
        out[c] = gt ? src[c] : out[c];
        arg[c] = gt ? base + (uint32_t)c : arg[c];
    }
}

static void maxpool(const kb_net__layer *L, const float *in, size_t n, float *out,
                    uint32_t *arg)
{
    size_t C = L->in_c, H = L->in_h, W = L->in_w, OH = L->out_h, OW = L->out_w;
    size_t k = L->k, st = L->n;
    for (size_t s = 0; s < n; s++) {
        for (size_t oh = 0; oh < OH; oh++) {
            size_t h0 = oh * st, h1 = h0 + k < H ? h0 + k : H;
            for (size_t ow = 0; ow < OW; ow++) {
                size_t w0 = ow * st, w1 = w0 + k < W ? w0 + k : W;
                size_t o = ((s * OH + oh) * OW + ow) * C;
                size_t first = ((s * H + h0) * W + w0) * C;
                for (size_t c = 0; c < C; c++) {
                    out[o + c] = in[first + c];
                    arg[o + c] = (uint32_t)(first + c);
                }
                for (size_t ih = h0; ih < h1; ih++) {
                    for (size_t iw = w0; iw < w1; iw++) {
                        size_t base = ((s * H + ih) * W + iw) * C;
                        pool_max_into(out + o, arg + o, in + base, (uint32_t)base, C);
                    }
                }
            }
        }
    }
}

static void dropout_forward(kb_net *net, kb_net__layer *L, size_t n)
{
    double p = net->opts.dropout;
    float scale = (float)(1.0 / (1.0 - p));
    size_t m = L->out_dim * n;
    for (size_t i = 0; i < m; i++) {
        L->mask[i] = kb_rng_uniform(&net->rng) < p ? 0.0f : scale;
        L->out[i] *= L->mask[i];
    }
}

void kb_net__forward(kb_net *net, const float *x, size_t n, int train)
{
    const float *in = x;
    for (size_t i = 0; i < net->n_layers; i++) {
        kb_net__layer *L = &net->layers[i];
        const float *w = net->params + L->w_off, *b = net->params + L->b_off;
        switch (L->kind) {
        case KB_NET_LAYER_CONV: {
            /* im2col a few images at a time, so the column buffer stays in cache */
            size_t pix = L->out_h * L->out_w;
            for (size_t s0 = 0; s0 < n; s0 += L->chunk) {
                size_t m = n - s0 < L->chunk ? n - s0 : L->chunk;
                im2col(L, in + s0 * L->in_dim, m, L->col);
                gemm(0, 0, L->rows, m * pix, L->fan_in, w, L->rows, L->col, L->fan_in, 0.0f,
                     L->out + s0 * L->out_dim, L->rows);
            }
            bias_activate(L->out, b, L->rows, n * pix, 1, net->opts.activation);
            break;
        }
        case KB_NET_LAYER_POOL:
            maxpool(L, in, n, L->out, L->argmax);
            break;
        case KB_NET_LAYER_FC:
            gemm(0, 0, L->rows, n, L->fan_in, w, L->rows, in, L->fan_in, 0.0f, L->out, L->rows);
            bias_activate(L->out, b, L->rows, n, L->activated, net->opts.activation);
            if (train && L->dropout) {
                dropout_forward(net, L, n);
            }
            break;
        }
        in = L->out;
    }
}

/* ---- loss ---- */

double kb_net__loss(kb_net *net, const float *y, size_t n, int grad)
{
    kb_net__layer *L = &net->layers[net->n_layers - 1];
    size_t K = net->n_outputs;
    double total = 0.0, inv_n = 1.0 / (double)n;
    for (size_t s = 0; s < n; s++) {
        const float *z = L->out + s * K;
        float *g = L->dout + s * K;
        if (net->task == KB_NET_TASK_REGRESSION) {
            double d = (double)z[0] - (double)y[s];
            total += d * d;
            if (grad) {
                g[0] = (float)(2.0 * d * inv_n);
            }
            continue;
        }
        size_t label = (size_t)y[s];
        double zmax = z[0];
        for (size_t k = 1; k < K; k++) {
            zmax = z[k] > zmax ? z[k] : zmax;
        }
        double sum = 0.0;
        for (size_t k = 0; k < K; k++) {
            sum += exp((double)z[k] - zmax);
        }
        /* log-sum-exp: loss = log sum exp z - z_label, finite for any finite logits */
        total += zmax + log(sum) - (double)z[label];
        if (grad) {
            for (size_t k = 0; k < K; k++) {
                double p = exp((double)z[k] - zmax) / sum;
                g[k] = (float)((p - (k == label ? 1.0 : 0.0)) * inv_n);
            }
        }
    }
    return total * inv_n;
}

/* ---- backward ---- */

/* dz *= f'(a) with a the activation output; a = out / mask where dropout scaled it */
static void activation_backward(kb_net *net, kb_net__layer *L, size_t m)
{
    float *dz = L->dout;
    const float *a = L->out;
    float keep = (float)(1.0 - net->opts.dropout);
    if (L->dropout) {
        for (size_t i = 0; i < m; i++) {
            dz[i] *= L->mask[i];
        }
    }
    switch (net->opts.activation) {
    case KB_NET_ACTIVATION_RELU:
        for (size_t i = 0; i < m; i++) {
            dz[i] = a[i] > 0.0f ? dz[i] : 0.0f;
        }
        break;
    case KB_NET_ACTIVATION_TANH:
        for (size_t i = 0; i < m; i++) {
            float v = L->dropout ? a[i] * keep : a[i];
            dz[i] *= 1.0f - v * v;
        }
        break;
    case KB_NET_ACTIVATION_SIGMOID:
        for (size_t i = 0; i < m; i++) {
            float v = L->dropout ? a[i] * keep : a[i];
            dz[i] *= v * (1.0f - v);
        }
        break;
    }
}

static void bias_grad(float *gb, const float *dz, size_t rows, size_t cols)
{
    memset(gb, 0, rows * sizeof(float));
    for (size_t j = 0; j < cols; j++) {
        const float *d = dz + j * rows;
        for (size_t r = 0; r < rows; r++) {
            gb[r] += d[r];
        }
    }
}

/*
 * Convolution backward, chunk by chunk as in the forward pass: the chunk's im2col is rebuilt
 * (cheaper than keeping the whole batch's, which would not fit in cache), the weight gradient
 * accumulates over chunks, and the same buffer then takes W' dz for col2im into `dprev`.
 */
static void conv_backward(kb_net *net, kb_net__layer *L, const float *in, size_t n,
                          int trainable, float *dprev)
{
    size_t pix = L->out_h * L->out_w;
    const float *w = net->params + L->w_off;
    float *gw = net->grads + L->w_off;
    for (size_t s0 = 0; s0 < n; s0 += L->chunk) {
        size_t m = n - s0 < L->chunk ? n - s0 : L->chunk;
        const float *dz = L->dout + s0 * L->out_dim;
        im2col(L, in + s0 * L->in_dim, m, L->col);
        if (trainable) {
            gemm(0, 1, L->rows, L->fan_in, m * pix, dz, L->rows, L->col, L->fan_in,
                 s0 > 0 ? 1.0f : 0.0f, gw, L->rows);
        }
        if (dprev != NULL) {
            gemm(1, 0, L->fan_in, m * pix, L->rows, w, L->rows, dz, L->rows, 0.0f, L->col,
                 L->fan_in);
            col2im(L, L->col, m, dprev + s0 * L->in_dim);
        }
    }
    if (trainable) {
        bias_grad(net->grads + L->b_off, L->dout, L->rows, n * pix);
    }
}

static void backward(kb_net *net, const float *x, size_t n)
{
    if (net->first_trainable < 0) {
        return;
    }
    for (size_t i = net->n_layers; i-- > 0;) {
        kb_net__layer *L = &net->layers[i];
        const float *in = i > 0 ? net->layers[i - 1].out : x;
        if (L->activated) {
            activation_backward(net, L, L->out_dim * n);
        }
        int trainable = L->has_params && net->lr_mult[L->param_index] > 0;
        int propagate = (int)i > net->first_trainable;
        float *dprev = propagate ? net->layers[i - 1].dout : NULL;
        const float *w = net->params + L->w_off;
        switch (L->kind) {
        case KB_NET_LAYER_CONV:
            conv_backward(net, L, in, n, trainable, dprev);
            break;
        case KB_NET_LAYER_POOL:
            if (propagate) {
                memset(dprev, 0, L->in_dim * n * sizeof(float));
                size_t m = L->out_dim * n;
                for (size_t j = 0; j < m; j++) {
                    dprev[L->argmax[j]] += L->dout[j];
                }
            }
            break;
        case KB_NET_LAYER_FC:
            if (trainable) {
                gemm(0, 1, L->rows, L->fan_in, n, L->dout, L->rows, in, L->fan_in, 0.0f,
                     net->grads + L->w_off, L->rows);
                bias_grad(net->grads + L->b_off, L->dout, L->rows, n);
            }
            if (propagate) {
                gemm(1, 0, L->fan_in, n, L->rows, w, L->rows, L->dout, L->rows, 0.0f, dprev,
                     L->fan_in);
            }
            break;
        }
        if (!propagate) {
            break;
        }
    }
}

int kb_net_loss_grad(double *loss_out, kb_net *net, const float *x, const float *y, size_t n,
                     int train, kb_error *err)
{
    KB_CHECK_ARG(loss_out != NULL && net != NULL && x != NULL && y != NULL);
    KB_CHECK_ARG(n >= 1 && n <= net->max_batch);
    kb_net__forward(net, x, n, train);
    *loss_out = kb_net__loss(net, y, n, 1);
    backward(net, x, n);
    return KB_OK;
}

/* ---- norms and the optimizer update ---- */

double kb_net_grad_norm(const kb_net *net)
{
    double s = 0.0;
    for (size_t i = 0; i < net->n_params; i++) {
        s += (double)net->grads[i] * (double)net->grads[i];
    }
    return sqrt(s);
}

double kb_net_weight_norm(const kb_net *net)
{
    double s = 0.0;
    for (size_t i = 0; i < net->n_params; i++) {
        s += (double)net->params[i] * (double)net->params[i];
    }
    return sqrt(s);
}

size_t kb_net_update(kb_net *net, size_t iter, double lr)
{
    const kb_net_opts *o = &net->opts;
    /* Caffe's ClipGradients: scale every gradient by clip / ||g|| when ||g|| > clip */
    if (o->clip_gradients > 0) {
        double norm = kb_net_grad_norm(net);
        if (norm > o->clip_gradients) {
            float scale = (float)(o->clip_gradients / norm);
            for (size_t i = 0; i < net->n_params; i++) {
                net->grads[i] *= scale;
            }
        }
    }
    float mom = (float)o->momentum, mom2 = (float)o->momentum2, delta = (float)o->delta;
    float rms = (float)o->rms_decay;
    /* 1 - beta in double first: (1.0f - 0.999f) is off by 1e-5 relative */
    float one_m = (float)(1.0 - o->momentum), one_m2 = (float)(1.0 - o->momentum2);
    float one_rms = (float)(1.0 - o->rms_decay);
    /* Adam's bias correction with t = iter + 1 (Caffe's adam_solver.cpp) */
    double t = (double)iter + 1.0;
    double correction = sqrt(1.0 - pow(o->momentum2, t)) / (1.0 - pow(o->momentum, t));
    size_t nonfinite = 0;
    for (size_t p = 0; p < net->n_param_layers; p++) {
        if (net->lr_mult[p] <= 0) {
            continue; /* frozen: parameters and state stay bit-identical */
        }
        const kb_net__layer *L = &net->layers[net->param_layer[p]];
        size_t begin = L->w_off, end = L->b_off + L->rows;
        float rate = (float)(lr * net->lr_mult[p]);
        float decay = (float)(o->weight_decay * net->decay_mult[p]);
        float *w = net->params, *g = net->grads, *h = net->hist1, *h2 = net->hist2;
        float adam_rate = (float)(lr * net->lr_mult[p] * correction);
        for (size_t i = begin; i < end; i++) {
            float gi = g[i] + decay * w[i];
            float upd;
            switch (o->optimizer) {
            case KB_NET_OPTIMIZER_SGD:
                upd = rate * gi;
                break;
            case KB_NET_OPTIMIZER_MOMENTUM:
                h[i] = mom * h[i] + rate * gi;
                upd = h[i];
                break;
            case KB_NET_OPTIMIZER_NESTEROV: {
                float prev = h[i];
                h[i] = mom * h[i] + rate * gi;
                upd = (1.0f + mom) * h[i] - mom * prev;
                break;
            }
            case KB_NET_OPTIMIZER_ADAGRAD:
                h[i] += gi * gi;
                upd = rate * gi / (sqrtf(h[i]) + delta);
                break;
            case KB_NET_OPTIMIZER_ADADELTA: {
                h[i] = mom * h[i] + one_m * gi * gi;
                float step = gi * sqrtf((h2[i] + delta) / (h[i] + delta));
                h2[i] = mom * h2[i] + one_m * step * step;
                upd = rate * step;
                break;
            }
            case KB_NET_OPTIMIZER_RMSPROP:
                h[i] = rms * h[i] + one_rms * gi * gi;
                upd = rate * gi / (sqrtf(h[i]) + delta);
                break;
            case KB_NET_OPTIMIZER_ADAM:
                h[i] = mom * h[i] + one_m * gi;
                h2[i] = mom2 * h2[i] + one_m2 * gi * gi;
                upd = adam_rate * h[i] / (sqrtf(h2[i]) + delta);
                break;
            default:
                upd = 0.0f;
                break;
            }
            w[i] -= upd;
            nonfinite += !isfinite(w[i]);
        }
    }
    return nonfinite;
}

/* ---- evaluation ---- */

static int check_labels(const kb_net *net, const kb_net_data *d, kb_error *err)
{
    if (d->dim != net->layers[0].in_dim) {
        return kb_error_set(err, KB_EINVAL, "data has %zu inputs per sample, the net takes %zu",
                            d->dim, net->layers[0].in_dim);
    }
    if (net->task != KB_NET_TASK_CLASSIFICATION) {
        return KB_OK;
    }
    for (size_t i = 0; i < d->n; i++) {
        float v = d->y[i];
        if (!(v >= 0 && v < (float)net->n_outputs) || v != floorf(v)) {
            return kb_error_set(err, KB_EINVAL, "sample %zu: label %g is not a class 0..%zu", i,
                                (double)v, net->n_outputs - 1);
        }
    }
    return KB_OK;
}

int kb_net__check_data(const kb_net *net, const kb_net_data *d, kb_error *err)
{
    return check_labels(net, d, err);
}

int kb_net_evaluate(double *loss_out, double *accuracy_out, kb_net *net,
                    const kb_net_data *data, kb_error *err)
{
    KB_CHECK_ARG(loss_out != NULL && accuracy_out != NULL && net != NULL && data != NULL);
    *loss_out = NAN;
    *accuracy_out = NAN;
    int rc = check_labels(net, data, err);
    if (rc != KB_OK || data->n == 0) {
        return rc;
    }
    const kb_net__layer *out = &net->layers[net->n_layers - 1];
    size_t K = net->n_outputs, dim = data->dim;
    double loss = 0.0;
    size_t correct = 0;
    for (size_t s0 = 0; s0 < data->n; s0 += net->max_batch) {
        size_t m = data->n - s0 < net->max_batch ? data->n - s0 : net->max_batch;
        kb_net__forward(net, data->x + s0 * dim, m, 0);
        loss += kb_net__loss(net, data->y + s0, m, 0) * (double)m;
        if (net->task != KB_NET_TASK_CLASSIFICATION) {
            continue;
        }
        for (size_t s = 0; s < m; s++) {
            const float *z = out->out + s * K;
            size_t best = 0;
            for (size_t k = 1; k < K; k++) {
                best = z[k] > z[best] ? k : best;
            }
            correct += best == (size_t)data->y[s0 + s];
        }
    }
    *loss_out = loss / (double)data->n;
    if (net->task == KB_NET_TASK_CLASSIFICATION) {
        *accuracy_out = (double)correct / (double)data->n;
    }
    return KB_OK;
}

int kb_net_predict(float *out, kb_net *net, const float *x, size_t n, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && net != NULL && (x != NULL || n == 0));
    const kb_net__layer *L = &net->layers[net->n_layers - 1];
    size_t K = net->n_outputs, dim = net->layers[0].in_dim;
    for (size_t s0 = 0; s0 < n; s0 += net->max_batch) {
        size_t m = n - s0 < net->max_batch ? n - s0 : net->max_batch;
        kb_net__forward(net, x + s0 * dim, m, 0);
        for (size_t s = 0; s < m; s++) {
            const float *z = L->out + s * K;
            float *o = out + (s0 + s) * K;
            if (net->task == KB_NET_TASK_REGRESSION) {
                o[0] = z[0];
                continue;
            }
            float zmax = z[0];
            for (size_t k = 1; k < K; k++) {
                zmax = z[k] > zmax ? z[k] : zmax;
            }
            double sum = 0.0;
            for (size_t k = 0; k < K; k++) {
                sum += exp((double)(z[k] - zmax));
            }
            for (size_t k = 0; k < K; k++) {
                o[k] = (float)(exp((double)(z[k] - zmax)) / sum);
            }
        }
    }
    return KB_OK;
}

size_t kb_net_feature_dim(const kb_net *net)
{
    return net->n_layers >= 2 ? net->layers[net->n_layers - 2].out_dim : net->layers[0].in_dim;
}

int kb_net_features(float *out, kb_net *net, const float *x, size_t n, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && net != NULL && (x != NULL || n == 0));
    size_t dim = net->layers[0].in_dim, fd = kb_net_feature_dim(net);
    if (net->n_layers < 2) {
        memcpy(out, x, n * dim * sizeof(float));
        return KB_OK;
    }
    const kb_net__layer *L = &net->layers[net->n_layers - 2];
    for (size_t s0 = 0; s0 < n; s0 += net->max_batch) {
        size_t m = n - s0 < net->max_batch ? n - s0 : net->max_batch;
        kb_net__forward(net, x + s0 * dim, m, 0);
        memcpy(out + s0 * fd, L->out, m * fd * sizeof(float));
    }
    return KB_OK;
}
