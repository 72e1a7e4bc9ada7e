/*
 * kb_net: architecture parsing and checks, gradients by central finite differences for every
 * layer type, activation and loss, each optimizer's update and lr policy against hand-computed
 * formulas, weights-file round trip and corruption, freezing, output-layer replacement,
 * divergence and clipping, and a small Fashion-MNIST run (skipped when the data is missing).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "engine/core/rng.h"
#include "engine/net.h"
#include "engine/net_priv.h"

static const char *tmp_path(const char *name)
{
    static char path[512];
    const char *dir = getenv("KB_BUILD");
    snprintf(path, sizeof path, "%s/test_net_%s", dir ? dir : ".", name);
    return path;
}

static void test_net_arch_parse_accepts_the_notation(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_net_arch a;
    CHECK_OK(kb_net_arch_parse(&a, " c(3,32) + P(2,2)+C(5, 64)+p(2,2)+fc(64) ", &err), err);
    CHECK(a.n_layers == 5);
    CHECK(a.layers[0].kind == KB_NET_LAYER_CONV && a.layers[0].k == 3 && a.layers[0].n == 32);
    CHECK(a.layers[1].kind == KB_NET_LAYER_POOL && a.layers[1].k == 2 && a.layers[1].n == 2);
    CHECK(a.layers[4].kind == KB_NET_LAYER_FC && a.layers[4].n == 64);
    char buf[KB_NET_ARCH_MAX];
    kb_net_arch_format(buf, sizeof buf, &a);
    CHECK_STR(buf, "C(3,32)+P(2,2)+C(5,64)+P(2,2)+FC(64)");
    CHECK_OK(kb_net_arch_parse(&a, "", &err), err);
    CHECK(a.n_layers == 0);
    const char *bad[] = {"C(3)", "FC(0)", "X(1)", "FC(3)+", "FC(3)FC(4)", "C(3,32", "FC(-1)",
                         "P(2,2)++FC(1)"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_CODE(kb_net_arch_parse(&a, bad[i], &err), KB_EFORMAT);
        CHECK(strstr(err.msg, "arch") != NULL);
    }
}

static void test_net_rejects_invalid_architectures(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_net_arch a;
    kb_net *net = NULL;
    kb_net_input tab = {0, 4, 1, 1}, img = {1, 1, 6, 6};
    kb_net_arch_parse(&a, "C(3,4)+FC(8)", &err);
    CHECK_CODE(kb_net_new(&net, &a, &tab, KB_NET_TASK_CLASSIFICATION, 3, NULL, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "FC layers only") != NULL);
    CHECK(net == NULL);
    kb_net_arch_parse(&a, "C(3,2)+P(3,3)+P(3,3)", &err);
    CHECK_CODE(kb_net_new(&net, &a, &img, KB_NET_TASK_CLASSIFICATION, 3, NULL, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "below 1x1") != NULL && strstr(err.msg, "layer 3") != NULL);
    kb_net_arch_parse(&a, "FC(4)+C(3,2)", &err);
    CHECK_CODE(kb_net_new(&net, &a, &img, KB_NET_TASK_CLASSIFICATION, 3, NULL, &err), KB_EINVAL);
    kb_net_arch_parse(&a, "FC(4)", &err);
    CHECK_CODE(kb_net_new(&net, &a, &img, KB_NET_TASK_CLASSIFICATION, 1, NULL, &err), KB_EINVAL);
    CHECK_CODE(kb_net_new(&net, &a, &img, KB_NET_TASK_REGRESSION, 2, NULL, &err), KB_EINVAL);
    /* P(2,2) on 6 -> 3, on 3 -> 2 (Caffe's ceil), on 2 -> 1: valid */
    kb_net_arch_parse(&a, "C(3,2)+P(2,2)+P(2,2)+P(2,2)", &err);
    CHECK_OK(kb_net_new(&net, &a, &img, KB_NET_TASK_CLASSIFICATION, 3, NULL, &err), err);
    CHECK(net != NULL && net->layers[3].out_h == 1 && net->layers[2].out_h == 2);
    kb_net_free(net);
}

static void fill_uniform(float *x, size_t n, kb_rng *r, double scale)
{
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(scale * (2.0 * kb_rng_uniform(r) - 1.0));
    }
}

/* Central differences of the loss against the analytic gradient for every parameter. */
static void gradient_check(const char *arch_text, kb_net_input in, kb_net_task task,
                           size_t n_out, kb_net_activation act, size_t n)
{
    kb_error err = KB_ERROR_INIT;
    kb_net_arch a;
    CHECK_OK(kb_net_arch_parse(&a, arch_text, &err), err);
    kb_net_opts o = KB_NET_OPTS_INIT;
    o.activation = act;
    o.init = KB_NET_INIT_GAUSSIAN;
    o.init_std = 0.3;
    o.seed = 7;
    kb_net *net = NULL;
    CHECK_OK(kb_net_new(&net, &a, &in, task, n_out, &o, &err), err);
    if (net == NULL) {
        return;
    }
    size_t dim = kb_net_input_dim(net), np = kb_net_n_params(net);
    float *x = kb_malloc_array(dim * n, sizeof(float));
    float *y = kb_malloc_array(n, sizeof(float));
    float *g = kb_malloc_array(np, sizeof(float));
    kb_rng r;
    kb_rng_seed(&r, 11);
    fill_uniform(x, dim * n, &r, 1.0);
    float *p = kb_net_params(net);
    for (size_t i = 0; i < np; i++) {
        p[i] += (float)(0.1 * (2.0 * kb_rng_uniform(&r) - 1.0)); /* non-zero biases too */
    }
    for (size_t i = 0; i < n; i++) {
        y[i] = task == KB_NET_TASK_REGRESSION ? (float)kb_rng_normal(&r)
                                              : (float)kb_rng_below(&r, n_out);
    }
    double loss;
    CHECK_OK(kb_net_loss_grad(&loss, net, x, y, n, 1, &err), err);
    memcpy(g, kb_net_grads(net), np * sizeof(float));
    size_t bad = 0;
    double worst = 0.0;
    for (size_t i = 0; i < np; i++) {
        /* h = 1e-2 keeps float rounding (~1e-7 |L| / h) far below the tolerance; where a kink
         * (ReLU, a tie in a max) lies within h, the smaller step avoids it */
        double an = g[i], e = INFINITY;
        for (int k = 0; k < 3 && e > 2e-2; k++) {
            double h = k == 0 ? 1e-2 : k == 1 ? 3e-3 : 1e-3, lp, lm;
            float keep = p[i];
            p[i] = keep + (float)h;
            kb_net_loss_grad(&lp, net, x, y, n, 1, &err);
            p[i] = keep - (float)h;
            kb_net_loss_grad(&lm, net, x, y, n, 1, &err);
            p[i] = keep;
            double fd = (lp - lm) / (2.0 * h);
            e = fabs(fd - an) / (1e-3 + fmax(fabs(fd), fabs(an)));
        }
        worst = fmax(worst, e);
        if (e > 2e-2) {
            bad++;
        }
    }
    /* ReLU and max pooling have kinks; a finite step may cross one for a rare parameter */
    size_t allowed = act == KB_NET_ACTIVATION_RELU || strchr(arch_text, 'P') ? np / 25 : 0;
    if (bad > allowed) {
        fprintf(stderr, "gradient check %s act %d: %zu of %zu parameters off (worst %g)\n",
                arch_text, (int)act, bad, np, worst);
    }
    CHECK(bad <= allowed);
    kb_free(x);
    kb_free(y);
    kb_free(g);
    kb_net_free(net);
}

static void test_net_gradients_match_finite_differences(void)
{
    kb_net_input img = {1, 2, 5, 5}, tab = {0, 6, 1, 1};
    for (int act = 0; act < 3; act++) {
        gradient_check("C(3,3)+P(2,2)+FC(5)", img, KB_NET_TASK_CLASSIFICATION, 3,
                       (kb_net_activation)act, 4);
        gradient_check("FC(7)+FC(5)", tab, KB_NET_TASK_CLASSIFICATION, 4,
                       (kb_net_activation)act, 5);
        gradient_check("FC(6)", tab, KB_NET_TASK_REGRESSION, 1, (kb_net_activation)act, 5);
    }
    /* an even kernel (asymmetric "same" padding), stride-1 overlapping pooling, two convs */
    gradient_check("C(2,2)", img, KB_NET_TASK_CLASSIFICATION, 2, KB_NET_ACTIVATION_TANH, 3);
    gradient_check("C(3,2)+C(3,2)", img, KB_NET_TASK_CLASSIFICATION, 2, KB_NET_ACTIVATION_TANH, 3);
    gradient_check("C(3,2)+P(3,1)", img, KB_NET_TASK_CLASSIFICATION, 2, KB_NET_ACTIVATION_TANH, 3);
    gradient_check("C(2,2)+C(3,2)+P(3,1)", img, KB_NET_TASK_CLASSIFICATION, 2,
                   KB_NET_ACTIVATION_TANH, 3);
    gradient_check("", tab, KB_NET_TASK_CLASSIFICATION, 3, KB_NET_ACTIVATION_TANH, 4);
}

static void test_net_dropout_scales_and_masks(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_net_arch a;
    kb_net_arch_parse(&a, "FC(200)", &err);
    kb_net_input tab = {0, 3, 1, 1};
    kb_net_opts o = KB_NET_OPTS_INIT;
    o.dropout = 0.5;
    kb_net *net = NULL;
    CHECK_OK(kb_net_new(&net, &a, &tab, KB_NET_TASK_CLASSIFICATION, 2, &o, &err), err);
    float x[3] = {1, 2, 3}, keep[200];
    kb_net__forward(net, x, 1, 0);
    memcpy(keep, net->layers[0].out, sizeof keep);
    kb_net__forward(net, x, 1, 1);
    size_t zeros = 0, scaled = 0;
    for (size_t i = 0; i < 200; i++) {
        float v = net->layers[0].out[i];
        zeros += v == 0.0f && keep[i] != 0.0f;
        scaled += keep[i] != 0.0f && v == 2.0f * keep[i];
    }
    CHECK(zeros > 20 && scaled > 20); /* about half of the non-zero units each way */
    kb_net_free(net);
}

/* ---- optimizers ---- */

static void test_net_optimizers_match_caffe_formulas(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_net_arch a;
    kb_net_arch_parse(&a, "", &err);
    kb_net_input tab = {0, 1, 1, 1};
    const double g_seq[3][4] = {{0.5, -1.0, 2.0, 0.1}, {0.3, -0.2, 1.0, -0.4}, {-0.6, 0.8, 0.0, 0.2}};
    for (int opt = 0; opt < 7; opt++) {
        kb_net_opts o = KB_NET_OPTS_INIT;
        o.optimizer = (kb_net_optimizer)opt;
        o.momentum = opt == KB_NET_OPTIMIZER_ADADELTA ? 0.95 : 0.9;
        o.weight_decay = 0.01;
        o.delta = 1e-6;
        kb_net *net = NULL;
        /* 2 classes on 1 input: 2 weights + 2 biases = 4 parameters */
        CHECK_OK(kb_net_new(&net, &a, &tab, KB_NET_TASK_CLASSIFICATION, 2, &o, &err), err);
        if (net == NULL) {
            continue;
        }
        CHECK(kb_net_n_params(net) == 4);
        double w[4] = {0.2, -0.3, 0.0, 0.1}, h[4] = {0}, h2[4] = {0};
        for (int i = 0; i < 4; i++) {
            net->params[i] = (float)w[i];
        }
        double lr = 0.1;
        for (int t = 0; t < 3; t++) {
            for (int i = 0; i < 4; i++) {
                net->grads[i] = (float)g_seq[t][i];
            }
            kb_net_update(net, (size_t)t, lr);
            for (int i = 0; i < 4; i++) {
                double g = g_seq[t][i] + o.weight_decay * w[i], upd = 0, m = o.momentum;
                switch (opt) {
                case KB_NET_OPTIMIZER_SGD: upd = lr * g; break;
                case KB_NET_OPTIMIZER_MOMENTUM: h[i] = m * h[i] + lr * g; upd = h[i]; break;
                case KB_NET_OPTIMIZER_NESTEROV: {
                    double prev = h[i];
                    h[i] = m * h[i] + lr * g;
                    upd = (1 + m) * h[i] - m * prev;
                    break;
                }
                case KB_NET_OPTIMIZER_ADAGRAD:
                    h[i] += g * g;
                    upd = lr * g / (sqrt(h[i]) + o.delta);
                    break;
                case KB_NET_OPTIMIZER_ADADELTA: {
                    h[i] = m * h[i] + (1 - m) * g * g;
                    double s = g * sqrt((h2[i] + o.delta) / (h[i] + o.delta));
                    h2[i] = m * h2[i] + (1 - m) * s * s;
                    upd = lr * s;
                    break;
                }
                case KB_NET_OPTIMIZER_RMSPROP:
                    h[i] = o.rms_decay * h[i] + (1 - o.rms_decay) * g * g;
                    upd = lr * g / (sqrt(h[i]) + o.delta);
                    break;
                case KB_NET_OPTIMIZER_ADAM: {
                    double b1 = o.momentum, b2 = o.momentum2, tt = t + 1;
                    h[i] = b1 * h[i] + (1 - b1) * g;
                    h2[i] = b2 * h2[i] + (1 - b2) * g * g;
                    upd = lr * sqrt(1 - pow(b2, tt)) / (1 - pow(b1, tt)) * h[i] /
                          (sqrt(h2[i]) + o.delta);
                    break;
                }
                }
                w[i] -= upd;
            }
            for (int i = 0; i < 4; i++) {
                CHECK_NEAR(net->params[i], w[i], 1e-5, 1e-6);
            }
        }
        kb_net_free(net);
    }
}

static void test_net_clip_gradients_scales_to_the_bound(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_net_arch a;
    kb_net_arch_parse(&a, "", &err);
    kb_net_input tab = {0, 1, 1, 1};
    kb_net_opts o = KB_NET_OPTS_INIT;
    o.clip_gradients = 1.0;
    kb_net *net = NULL;
    CHECK_OK(kb_net_new(&net, &a, &tab, KB_NET_TASK_CLASSIFICATION, 2, &o, &err), err);
    float g[4] = {3, 0, 4, 0}; /* norm 5 -> scaled by 1/5 */
    memset(net->params, 0, 4 * sizeof(float));
    memcpy(net->grads, g, sizeof g);
    kb_net_update(net, 0, 1.0);
    CHECK_NEAR(net->params[0], -0.6, 1e-6, 1e-7);
    CHECK_NEAR(net->params[2], -0.8, 1e-6, 1e-7);
    g[0] = 0.3f;
    g[2] = 0.4f; /* below the bound: unchanged */
    memset(net->params, 0, 4 * sizeof(float));
    memcpy(net->grads, g, sizeof g);
    kb_net_update(net, 1, 1.0);
    CHECK_NEAR(net->params[0], -0.3, 1e-6, 1e-7);
    kb_net_free(net);
}

static void test_net_lr_policies_match_formulas(void)
{
    kb_net_opts o = KB_NET_OPTS_INIT;
    o.base_lr = 0.05;
    o.gamma = 0.5;
    o.power = 0.75;
    o.stepsize = 10;
    size_t max_iter = 100, iters[] = {0, 1, 9, 10, 25, 99, 100};
    for (size_t k = 0; k < sizeof iters / sizeof iters[0]; k++) {
        double it = (double)iters[k];
        o.lr_policy = KB_NET_LR_POLICY_FIXED;
        CHECK_NEAR(kb_net_lr_at(&o, iters[k], max_iter), 0.05, 1e-15, 0);
        o.lr_policy = KB_NET_LR_POLICY_STEP;
        CHECK_NEAR(kb_net_lr_at(&o, iters[k], max_iter), 0.05 * pow(0.5, floor(it / 10)), 1e-12, 0);
        o.lr_policy = KB_NET_LR_POLICY_EXP;
        CHECK_NEAR(kb_net_lr_at(&o, iters[k], max_iter), 0.05 * pow(0.5, it), 1e-12, 0);
        o.lr_policy = KB_NET_LR_POLICY_INV;
        CHECK_NEAR(kb_net_lr_at(&o, iters[k], max_iter), 0.05 * pow(1 + 0.5 * it, -0.75), 1e-12,
                   0);
        o.lr_policy = KB_NET_LR_POLICY_POLY;
        CHECK_NEAR(kb_net_lr_at(&o, iters[k], max_iter), 0.05 * pow(1 - it / 100, 0.75), 1e-12,
                   1e-15);
        o.lr_policy = KB_NET_LR_POLICY_COSINE;
        CHECK_NEAR(kb_net_lr_at(&o, iters[k], max_iter),
                   0.5 * 0.05 * (1 + cos(3.14159265358979323846 * it / 100)), 1e-12, 1e-15);
    }
}

static void test_net_opts_set_parses_config_keys(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_net_opts o = KB_NET_OPTS_INIT;
    CHECK_OK(kb_net_opts_set(&o, "optimizer", "Adam", &err), err);
    CHECK(o.optimizer == KB_NET_OPTIMIZER_ADAM);
    CHECK_OK(kb_net_opts_set_json(&o, "{\"base_lr\": 0.5, \"lr_policy\": \"cosine\", "
                                      "\"lr_mult\": [1, 0, 2], \"batch_size\": 32}", &err), err);
    CHECK(o.base_lr == 0.5 && o.lr_policy == KB_NET_LR_POLICY_COSINE && o.batch_size == 32);
    CHECK(o.n_lr_mult == 3 && o.lr_mult[1] == 0.0 && o.lr_mult[2] == 2.0);
    CHECK_CODE(kb_net_opts_set(&o, "optimizer", "lbfgs", &err), KB_EINVAL);
    CHECK(strstr(err.msg, "adam") != NULL);
    CHECK_CODE(kb_net_opts_set(&o, "nope", "1", &err), KB_EINVAL);
    CHECK_CODE(kb_net_opts_set(&o, "batch_size", "1.5", &err), KB_EINVAL);
    CHECK_CODE(kb_net_opts_set_json(&o, "[1]", &err), KB_EINVAL);
    o.dropout = 1.0;
    CHECK_CODE(kb_net_opts_check(&o, &err), KB_EINVAL);
}

/* ---- synthetic data: two Gaussian blobs per class in `dim` dimensions ---- */

typedef struct blobs {
    size_t n, dim;
    float *x, *y;
} blobs;

static void make_blobs(blobs *b, size_t n, size_t dim, size_t classes, uint64_t seed)
{
    kb_rng r;
    kb_rng_seed(&r, seed);
    b->n = n;
    b->dim = dim;
    b->x = kb_malloc_array(n * dim, sizeof(float));
    b->y = kb_malloc_array(n, sizeof(float));
    for (size_t i = 0; i < n; i++) {
        size_t c = i % classes;
        b->y[i] = (float)c;
        for (size_t j = 0; j < dim; j++) {
            b->x[i * dim + j] = (float)((j % classes == c ? 1.5 : 0.0) + kb_rng_normal(&r));
        }
    }
}

static void free_blobs(blobs *b)
{
    kb_free(b->x);
    kb_free(b->y);
}

static void test_net_trains_and_is_deterministic(void)
{
    kb_error err = KB_ERROR_INIT;
    blobs tr, va;
    make_blobs(&tr, 300, 8, 3, 1);
    make_blobs(&va, 150, 8, 3, 2);
    kb_net_arch a;
    kb_net_arch_parse(&a, "FC(16)", &err);
    kb_net_input in = {0, 8, 1, 1};
    kb_net_opts o = KB_NET_OPTS_INIT;
    o.optimizer = KB_NET_OPTIMIZER_MOMENTUM;
    o.base_lr = 0.05;
    o.epochs = 20;
    o.batch_size = 32;
    o.dropout = 0.2;
    o.seed = 3;
    float *first = NULL;
    for (int rep = 0; rep < 2; rep++) {
        kb_net *net = NULL;
        CHECK_OK(kb_net_new(&net, &a, &in, KB_NET_TASK_CLASSIFICATION, 3, &o, &err), err);
        kb_net_data dt = {tr.n, tr.dim, tr.x, tr.y}, dv = {va.n, va.dim, va.x, va.y};
        double l0, acc0;
        kb_net_evaluate(&l0, &acc0, net, &dv, &err);
        kb_net_result res;
        CHECK_OK(kb_net_train(&res, net, &dt, &dv, NULL, NULL, &err), err);
        CHECK(res.status == KB_NET_STATUS_OK);
        CHECK(res.iteration == 20 * 10);
        CHECK_NEAR(res.last.epoch, 20.0, 1e-12, 0);
        CHECK(res.last.val_loss < l0);
        CHECK(res.last.val_accuracy > 0.8);
        if (rep == 0) {
            first = kb_malloc_array(kb_net_n_params(net), sizeof(float));
            memcpy(first, kb_net_params(net), kb_net_n_params(net) * sizeof(float));
        } else {
            CHECK(memcmp(first, kb_net_params(net), kb_net_n_params(net) * sizeof(float)) == 0);
        }
        kb_net_free(net);
    }
    kb_free(first);
    free_blobs(&tr);
    free_blobs(&va);
}

static int count_points(const kb_net_point *p, void *payload)
{
    (void)p;
    (*(int *)payload)++;
    return 0;
}

static void test_net_high_lr_diverges_and_clipping_keeps_it_finite(void)
{
    kb_error err = KB_ERROR_INIT;
    blobs tr;
    make_blobs(&tr, 256, 10, 4, 5);
    kb_net_arch a;
    kb_net_arch_parse(&a, "FC(32)+FC(32)", &err);
    kb_net_input in = {0, 10, 1, 1};
    kb_net_opts o = KB_NET_OPTS_INIT;
    o.optimizer = KB_NET_OPTIMIZER_MOMENTUM;
    o.base_lr = 50.0;
    o.max_iter = 200;
    o.test_interval = 10;
    o.batch_size = 32;
    kb_net_data dt = {tr.n, tr.dim, tr.x, tr.y};
    kb_net *net = NULL;
    kb_net_result res;
    int points = 0;
    CHECK_OK(kb_net_new(&net, &a, &in, KB_NET_TASK_CLASSIFICATION, 4, &o, &err), err);
    CHECK_OK(kb_net_train(&res, net, &dt, &dt, count_points, &points, &err), err);
    CHECK(res.status == KB_NET_STATUS_DIVERGED);
    CHECK(res.iteration >= 1 && res.iteration < 200);
    CHECK(!isfinite(res.last.train_loss) || res.last.nonfinite_weights > 0);
    kb_net_free(net);
    o.clip_gradients = 1.0;
    CHECK_OK(kb_net_new(&net, &a, &in, KB_NET_TASK_CLASSIFICATION, 4, &o, &err), err);
    CHECK_OK(kb_net_train(&res, net, &dt, &dt, NULL, NULL, &err), err);
    CHECK(res.status == KB_NET_STATUS_OK);
    CHECK(res.iteration == 200);
    CHECK(isfinite(res.last.train_loss) && isfinite(res.last.val_loss));
    CHECK(res.last.nonfinite_weights == 0);
    kb_net_free(net);
    free_blobs(&tr);
}

/* ---- weights files ---- */

static kb_net *small_net(const char *arch, size_t classes, size_t freeze, uint64_t seed)
{
    kb_error err = KB_ERROR_INIT;
    kb_net_arch a;
    kb_net_arch_parse(&a, arch, &err);
    kb_net_input in = {1, 1, 6, 6};
    kb_net_opts o = KB_NET_OPTS_INIT;
    o.seed = seed;
    o.freeze = freeze;
    o.batch_size = 8;
    kb_net *net = NULL;
    CHECK_OK(kb_net_new(&net, &a, &in, KB_NET_TASK_CLASSIFICATION, classes, &o, &err), err);
    return net;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

static void spill(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

/* Two nets of the same hidden layers (a: 3 classes; b: b_classes) and a's weights saved. */
static int saved_pair(kb_net **a, kb_net **b, size_t b_classes, const char *path)
{
    kb_error err = KB_ERROR_INIT;
    *a = small_net("C(3,2)+P(2,2)+FC(5)", 3, 0, 1);
    *b = small_net("C(3,2)+P(2,2)+FC(5)", b_classes, 0, 2);
    if (*a == NULL || *b == NULL) {
        kb_net_free(*a);
        kb_net_free(*b);
        return 0;
    }
    CHECK_OK(kb_net_weights_save(*a, path, "image:1x6x6", &err), err);
    return 1;
}

static void test_net_weights_round_trip_and_corruption(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_net *a, *b;
    const char *path = tmp_path("a.kbw");
    if (!saved_pair(&a, &b, 3, path)) {
        return;
    }
    kb_net_weights_info info;
    CHECK_OK(kb_net_weights_info_read(&info, path, &err), err);
    CHECK_STR(info.arch, "C(3,2)+P(2,2)+FC(5)");
    CHECK_STR(info.signature, "image:1x6x6");
    CHECK(info.version == KB_NET_WEIGHTS_VERSION && info.n_outputs == 3);
    CHECK(info.n_param_layers == 3 && info.n_params == kb_net_n_params(a));
    CHECK(info.input.image == 1 && info.input.height == 6 && strlen(info.sha256) == 64);
    int replaced = -1;
    CHECK(memcmp(kb_net_params(a), kb_net_params(b), kb_net_n_params(a) * 4) != 0);
    CHECK_OK(kb_net_weights_load(&replaced, b, path, "image:1x6x6", &err), err);
    CHECK(replaced == 0);
    CHECK(memcmp(kb_net_params(a), kb_net_params(b), kb_net_n_params(a) * 4) == 0);
    CHECK_CODE(kb_net_weights_load(&replaced, b, path, "image:1x7x7", &err), KB_EINVAL);
    CHECK(strstr(err.msg, "does not match") != NULL);
    kb_net *c = small_net("C(3,2)+P(2,2)+FC(6)", 3, 0, 2);
    CHECK_CODE(kb_net_weights_load(&replaced, c, path, "image:1x6x6", &err), KB_EINVAL);
    kb_net_free(c);

    size_t n = 0;
    unsigned char *good = slurp(path, &n);
    unsigned char *bad = malloc(n + 1);
    const char *p2 = tmp_path("bad.kbw");
    memcpy(bad, good, n);
    bad[0] = 'X';
    spill(p2, bad, n);
    CHECK_CODE(kb_net_weights_info_read(&info, p2, &err), KB_EFORMAT);
    CHECK(strstr(err.msg, "magic") != NULL);
    memcpy(bad, good, n);
    bad[8] = 2;
    spill(p2, bad, n);
    CHECK_CODE(kb_net_weights_info_read(&info, p2, &err), KB_EVERSION);
    CHECK_CODE(kb_net_weights_load(&replaced, b, p2, "image:1x6x6", &err), KB_EVERSION);
    memcpy(bad, good, n);
    size_t cuts[] = {4, 20, 60, n - 40, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        spill(p2, bad, cuts[i]);
        CHECK_CODE(kb_net_weights_info_read(&info, p2, &err), KB_EFORMAT);
    }
    CHECK(strstr(err.msg, "truncated") != NULL);
    bad[n - 50] ^= 0x10; /* a parameter bit */
    spill(p2, bad, n);
    CHECK_CODE(kb_net_weights_info_read(&info, p2, &err), KB_ECORRUPT);
    CHECK(strstr(err.msg, "checksum") != NULL);
    memcpy(bad, good, n);
    bad[n] = 0;
    spill(p2, bad, n + 1);
    CHECK_CODE(kb_net_weights_info_read(&info, p2, &err), KB_EFORMAT);
    CHECK_CODE(kb_net_weights_info_read(&info, tmp_path("missing.kbw"), &err), KB_ENOTFOUND);
    free(good);
    free(bad);
    remove(path);
    remove(p2);
    kb_net_free(a);
    kb_net_free(b);
}

static void test_net_output_layer_is_replaced_on_class_change(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_net *a, *b;
    const char *path = tmp_path("c.kbw");
    if (!saved_pair(&a, &b, 4, path)) {
        return;
    }
    size_t out_off, out_n, hidden;
    kb_net_param_layer(b, 2, &out_off, &out_n);
    hidden = out_off;
    float *before = kb_malloc_array(out_n, sizeof(float));
    memcpy(before, kb_net_params(b) + out_off, out_n * sizeof(float));
    int replaced = 0;
    CHECK_OK(kb_net_weights_load(&replaced, b, path, "image:1x6x6", &err), err);
    CHECK(replaced == 1);
    CHECK(memcmp(kb_net_params(a), kb_net_params(b), hidden * sizeof(float)) == 0);
    CHECK(memcmp(before, kb_net_params(b) + out_off, out_n * sizeof(float)) == 0);
    kb_free(before);
    remove(path);
    kb_net_free(a);
    kb_net_free(b);
}

static void test_net_freeze_keeps_weights_bit_identical(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_net *net = small_net("C(3,2)+P(2,2)+FC(5)", 3, 2, 4);
    if (net == NULL) {
        return;
    }
    blobs d;
    make_blobs(&d, 40, 36, 3, 9);
    size_t off, cnt;
    kb_net_param_layer(net, 2, &off, &cnt);
    size_t np = kb_net_n_params(net);
    float *before = kb_malloc_array(np, sizeof(float));
    memcpy(before, kb_net_params(net), np * sizeof(float));
    kb_net_data dt = {d.n, d.dim, d.x, d.y};
    kb_net_result res;
    CHECK_OK(kb_net_train(&res, net, &dt, NULL, NULL, NULL, &err), err);
    CHECK(res.status == KB_NET_STATUS_OK);
    CHECK(memcmp(before, kb_net_params(net), off * sizeof(float)) == 0);
    CHECK(memcmp(before + off, kb_net_params(net) + off, cnt * sizeof(float)) != 0);
    kb_free(before);
    kb_net_free(net);
    free_blobs(&d);
}

/* ---- scaling a kb_dataset ---- */

static void test_net_scaler_standardises_one_hots_and_imputes(void)
{
    kb_error err = KB_ERROR_INIT;
    char *levels[] = {"a", "b", "c"};
    kb_column cols[2] = {{"num", KB_COLUMN_NUMERIC, NULL, 0, 1},
                         {"cat", KB_COLUMN_CATEGORICAL, levels, 3, 1}};
    double x[8] = {1, 3, NAN, 100, /* num; row 3 is not a training row */
                   0, 2, NAN, 1};
    double y[4] = {0, 1, 0, 1};
    kb_dataset d = {0};
    d.n_rows = 4;
    d.n_cols = 2;
    d.cols = cols;
    d.x = x;
    d.y = y;
    d.task = KB_DATASET_TASK_CLASSIFICATION;
    d.n_classes = 2;
    size_t rows[3] = {0, 1, 2};
    kb_net_scaler s;
    CHECK_OK(kb_net_scaler_fit(&s, &d, rows, 3, &err), err);
    CHECK(s.dim == 4 && !s.image);
    CHECK(strncmp(s.signature, "tabular:", 8) == 0 && strlen(s.signature) == 8 + 32);
    float *xs = NULL, *ys = NULL;
    CHECK_OK(kb_net_scaler_apply(&xs, &ys, &s, &d, NULL, 0, &err), err);
    if (xs != NULL) {
        CHECK_NEAR(xs[0 * 4 + 0], -1.0, 1e-6, 0); /* mean 2, std 1 */
        CHECK_NEAR(xs[1 * 4 + 0], 1.0, 1e-6, 0);
        CHECK(xs[2 * 4 + 0] == 0.0f); /* missing -> the mean */
        CHECK_NEAR(xs[3 * 4 + 0], 98.0, 1e-6, 0);
        CHECK(xs[0 * 4 + 1] == 1.0f && xs[0 * 4 + 2] == 0.0f && xs[0 * 4 + 3] == 0.0f);
        CHECK(xs[1 * 4 + 3] == 1.0f);
        CHECK(xs[2 * 4 + 1] == 0.0f && xs[2 * 4 + 2] == 0.0f && xs[2 * 4 + 3] == 0.0f);
        CHECK(ys[1] == 1.0f);
    }
    /* the same levels numbered in another order: same features, same signature */
    char *levels3[] = {"b", "c", "a"};
    double x3[8] = {1, 3, NAN, 100, 2, 1, NAN, 0};
    cols[1].levels = levels3;
    d.x = x3;
    kb_net_scaler s3;
    float *xs3 = NULL, *ys3 = NULL;
    CHECK_OK(kb_net_scaler_fit(&s3, &d, rows, 3, &err), err);
    CHECK_STR(s3.signature, s.signature);
    CHECK_OK(kb_net_scaler_apply(&xs3, &ys3, &s3, &d, NULL, 0, &err), err);
    CHECK(xs != NULL && xs3 != NULL && memcmp(xs, xs3, 16 * sizeof(float)) == 0);
    char *levels2[] = {"a", "b", "d"};
    cols[1].levels = levels2;
    kb_net_scaler s2;
    CHECK_OK(kb_net_scaler_fit(&s2, &d, rows, 3, &err), err);
    CHECK(strcmp(s.signature, s2.signature) != 0);
    kb_free(xs);
    kb_free(ys);
    kb_free(xs3);
    kb_free(ys3);
    kb_net_scaler_release(&s3);
    kb_net_scaler_release(&s);
    kb_net_scaler_release(&s2);
}

/* ---- Fashion-MNIST subset ---- */

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Read the first n images (as 28x28 floats 0..255) and labels of an IDX pair. */
static int read_idx(float *x, float *y, size_t n, const char *images, const char *labels)
{
    gzFile fi = gzopen(images, "rb"), fl = gzopen(labels, "rb");
    unsigned char hi[16], hl[8], *row = malloc(784);
    int ok = fi != NULL && fl != NULL && row != NULL && gzread(fi, hi, 16) == 16 &&
             gzread(fl, hl, 8) == 8 && hi[3] == 3 && hl[3] == 1;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char lab;
        ok = gzread(fi, row, 784) == 784 && gzread(fl, &lab, 1) == 1;
        for (size_t j = 0; ok && j < 784; j++) {
            x[i * 784 + j] = row[j];
        }
        y[i] = lab;
    }
    free(row);
    if (fi != NULL) {
        gzclose(fi);
    }
    if (fl != NULL) {
        gzclose(fl);
    }
    return ok;
}

static void test_net_fashion_mnist_subset_learns(void)
{
    FILE *f = fopen(FMNIST_DIR "/train-images-idx3-ubyte.gz", "rb");
    if (f == NULL) {
        fprintf(stderr, "skipped: %s not installed (apt-get install dataset-fashion-mnist)\n",
                FMNIST_DIR);
        return;
    }
    fclose(f);
    int sanitized = getenv("KB_SANITIZED") != NULL;
    size_t n_train = sanitized ? 1000 : 2000, n_val = 500;
    float *x = kb_malloc_array((n_train + n_val) * 784, sizeof(float));
    float *y = kb_malloc_array(n_train + n_val, sizeof(float));
    CHECK(read_idx(x, y, n_train + n_val, FMNIST_DIR "/train-images-idx3-ubyte.gz",
                   FMNIST_DIR "/train-labels-idx1-ubyte.gz"));
    for (size_t i = 0; i < (n_train + n_val) * 784; i++) {
        x[i] = (x[i] / 255.0f - 0.286f) / 0.353f;
    }
    kb_error err = KB_ERROR_INIT;
    kb_net_arch a;
    kb_net_arch_parse(&a, sanitized ? "C(3,4)+P(2,2)+FC(32)" : "C(3,8)+P(2,2)+FC(32)", &err);
    kb_net_input in = {1, 1, 28, 28};
    kb_net_opts o = KB_NET_OPTS_INIT;
    o.optimizer = KB_NET_OPTIMIZER_ADAM;
    o.base_lr = 0.002;
    o.epochs = 3;
    o.batch_size = 32;
    o.seed = 1;
    kb_net *net = NULL;
    CHECK_OK(kb_net_new(&net, &a, &in, KB_NET_TASK_CLASSIFICATION, 10, &o, &err), err);
    kb_net_data dt = {n_train, 784, x, y}, dv = {n_val, 784, x + n_train * 784, y + n_train};
    double l0, a0;
    kb_net_evaluate(&l0, &a0, net, &dv, &err);
    kb_net_result res;
    CHECK_OK(kb_net_train(&res, net, &dt, &dv, NULL, NULL, &err), err);
    fprintf(stderr, "fashion-mnist subset: val loss %.3f -> %.3f, accuracy %.3f -> %.3f\n", l0,
            res.last.val_loss, a0, res.last.val_accuracy);
    CHECK(res.status == KB_NET_STATUS_OK);
    CHECK(res.last.val_loss < l0);
    CHECK(res.last.val_accuracy > 0.6); /* chance is 0.1 */
    kb_net_free(net);
    kb_free(x);
    kb_free(y);
}

static void test_net_new_cleans_up_when_allocation_fails(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_net_arch a;
    kb_net_arch_parse(&a, "C(3,2)+P(2,2)+FC(4)", &err);
    kb_net_input img = {1, 1, 6, 6};
    int failed = 0, succeeded = 0;
    for (long n = 0; n < 60 && !succeeded; n++) {
        kb_net *net = NULL;
        kb_alloc_fail_after(n);
        int rc = kb_net_new(&net, &a, &img, KB_NET_TASK_CLASSIFICATION, 3, NULL, &err);
        kb_alloc_fail_after(-1);
        if (rc == KB_OK) {
            succeeded = 1;
            kb_net_free(net);
        } else {
            failed++;
            CHECK(rc == KB_ENOMEM && net == NULL);
        }
    }
    CHECK(succeeded && failed > 5); /* leaks on the failure paths show under ASan */
}

/* Penultimate features: relu(W2 relu(W1 x + b1) + b2) by hand, in batches past max_batch. */
static void test_net_features_are_the_last_hidden_activations(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_net_arch arch;
    kb_net_input in = {0, 3, 1, 1};
    kb_net_opts o = KB_NET_OPTS_INIT;
    o.dropout = 0.5; /* evaluation mode: no dropout */
    kb_net *net = NULL;
    CHECK_OK(kb_net_arch_parse(&arch, "FC(4)+FC(2)", &err), err);
    CHECK_OK(kb_net_new(&net, &arch, &in, KB_NET_TASK_CLASSIFICATION, 3, &o, &err), err);
    CHECK(kb_net_feature_dim(net) == 2);
    size_t n = 300; /* more than one workspace batch (128) */
    float *x = kb_malloc(n * 3 * sizeof(float)), *f = kb_malloc(n * 2 * sizeof(float));
    kb_rng r;
    kb_rng_seed(&r, 4);
    fill_uniform(x, n * 3, &r, 2.0);
    CHECK_OK(kb_net_features(f, net, x, n, &err), err);
    size_t off1, cnt1, off2, cnt2;
    kb_net_param_layer(net, 0, &off1, &cnt1);
    kb_net_param_layer(net, 1, &off2, &cnt2);
    const float *p = kb_net_params(net), *w1 = p + off1, *b1 = w1 + 12, *w2 = p + off2,
                *b2 = w2 + 8;
    int all_close = 1;
    for (size_t s = 0; s < n; s++) {
        double h[4];
        for (size_t i = 0; i < 4; i++) {
            double z = b1[i];
            for (size_t j = 0; j < 3; j++) {
                z += (double)w1[i + 4 * j] * x[s * 3 + j];
            }
            h[i] = z > 0 ? z : 0;
        }
        for (size_t i = 0; i < 2; i++) {
            double z = b2[i];
            for (size_t j = 0; j < 4; j++) {
                z += (double)w2[i + 2 * j] * h[j];
            }
            all_close &= fabs((z > 0 ? z : 0) - f[s * 2 + i]) < 1e-5;
        }
    }
    CHECK(all_close);
    kb_net_free(net);
    /* no hidden layer: the inputs themselves */
    CHECK_OK(kb_net_arch_parse(&arch, "", &err), err);
    CHECK_OK(kb_net_new(&net, &arch, &in, KB_NET_TASK_CLASSIFICATION, 3, &o, &err), err);
    CHECK(kb_net_feature_dim(net) == 3);
    CHECK_OK(kb_net_features(f, net, x, 10, &err), err);
    CHECK(memcmp(f, x, 30 * sizeof(float)) == 0);
    kb_net_free(net);
    kb_free(x);
    kb_free(f);
}

/* A backbone under a new last stage: its layers load bit for bit, the new ones stay fresh. */
static void test_net_weights_load_prefix_keeps_the_new_last_stage(void)
{
    kb_error err = KB_ERROR_INIT;
    const char *path = tmp_path("prefix.kbw");
    kb_net *bb = small_net("FC(6)+FC(5)", 3, 0, 1);
    kb_net *head = small_net("FC(6)+FC(5)+FC(4)", 2, 0, 2);
    kb_net *fresh = small_net("FC(6)+FC(5)+FC(4)", 2, 0, 2);
    kb_net *other = small_net("FC(6)+FC(7)+FC(4)", 2, 0, 2);
    CHECK(bb && head && fresh && other);
    if (bb == NULL || head == NULL || fresh == NULL || other == NULL) {
        goto done;
    }
    CHECK_OK(kb_net_weights_save(bb, path, "sig", &err), err);
    size_t n_loaded = 0;
    CHECK_OK(kb_net_weights_load_prefix(&n_loaded, head, path, "sig", &err), err);
    CHECK(n_loaded == 2);
    for (size_t l = 0; l < 4; l++) {
        size_t off, cnt, off_b, cnt_b;
        kb_net_param_layer(head, l, &off, &cnt);
        const float *want = kb_net_params(fresh) + off;
        if (l < 2) {
            kb_net_param_layer(bb, l, &off_b, &cnt_b);
            CHECK(cnt == cnt_b);
            want = kb_net_params(bb) + off_b;
        }
        CHECK(memcmp(kb_net_params(head) + off, want, cnt * sizeof(float)) == 0);
    }
    /* the same architecture loads everything but a reshaped output, as kb_net_weights_load */
    kb_net *same = small_net("FC(6)+FC(5)", 3, 0, 9);
    CHECK_OK(kb_net_weights_load_prefix(&n_loaded, same, path, "sig", &err), err);
    CHECK(n_loaded == 3);
    CHECK(memcmp(kb_net_params(same), kb_net_params(bb), kb_net_n_params(bb) * sizeof(float)) == 0);
    kb_net_free(same);
    CHECK_CODE(kb_net_weights_load_prefix(&n_loaded, other, path, "sig", &err), KB_EINVAL);
    CHECK(strstr(err.msg, "start of") != NULL);
    CHECK_CODE(kb_net_weights_load_prefix(&n_loaded, head, path, "other", &err), KB_EINVAL);
    int replaced;
    CHECK_CODE(kb_net_weights_load(&replaced, head, path, "sig", &err), KB_EINVAL);
done:
    kb_net_free(bb);
    kb_net_free(head);
    kb_net_free(fresh);
    kb_net_free(other);
    remove(path);
}

int main(void)
{
    test_net_arch_parse_accepts_the_notation();
    test_net_rejects_invalid_architectures();
    test_net_new_cleans_up_when_allocation_fails();
    test_net_gradients_match_finite_differences();
    test_net_dropout_scales_and_masks();
    test_net_optimizers_match_caffe_formulas();
    test_net_clip_gradients_scales_to_the_bound();
    test_net_lr_policies_match_formulas();
    test_net_opts_set_parses_config_keys();
    test_net_trains_and_is_deterministic();
    test_net_high_lr_diverges_and_clipping_keeps_it_finite();
    test_net_weights_round_trip_and_corruption();
    test_net_output_layer_is_replaced_on_class_change();
    test_net_freeze_keeps_weights_bit_identical();
    test_net_scaler_standardises_one_hots_and_imputes();
    test_net_fashion_mnist_subset_learns();
    test_net_features_are_the_last_hidden_activations();
    test_net_weights_load_prefix_keeps_the_new_last_stage();
    return check_exit();
}
