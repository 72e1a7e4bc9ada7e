/*
 * kb_net snapshots: training e iterations, saving, loading into a fresh net and training on
 * to e + e' gives bit for bit the net and curve of one run of e + e' (with dropout, every
 * optimizer family, a stop in the middle of an epoch and of a curve interval); a snapshot
 * refuses other data, another optimizer, another architecture, a run with nothing left to
 * train, and corrupt or truncated files.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "engine/core/rng.h"
#include "engine/net.h"

static const char *tmp_path(const char *name)
{
    static char path[512];
    const char *dir = getenv("KB_BUILD");
    snprintf(path, sizeof path, "%s/test_net_snapshot_%s", dir ? dir : ".", name);
    return path;
}

typedef struct blobs {
    size_t n, dim;
    float *x, *y;
} blobs;

/* Gaussian blobs, one per class, in a 2x4x4 "image" so convolutions apply. */
static void make_blobs(blobs *b, size_t n, size_t classes, uint64_t seed)
{
    b->n = n;
    b->dim = 32;
    b->x = kb_malloc(n * b->dim * sizeof(float));
    b->y = kb_malloc(n * sizeof(float));
    kb_rng r;
    kb_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        size_t c = i % classes;
        b->y[i] = (float)c;
        for (size_t j = 0; j < b->dim; j++) {
            b->x[i * b->dim + j] = (float)(kb_rng_normal(&r) + (j % classes == c ? 1.5 : 0.0));
        }
    }
}

typedef struct curve {
    size_t n;
    kb_net_point p[64];
} curve;

static int record(const kb_net_point *p, void *payload)
{
    curve *c = payload;
    if (c->n < 64) {
        c->p[c->n++] = *p;
    }
    return 0;
}

static kb_net *make_net(const char *arch_text, const kb_net_opts *o)
{
    kb_error err = KB_ERROR_INIT;
    kb_net_arch arch;
    kb_net_input in = {1, 2, 4, 4};
    kb_net *net = NULL;
    CHECK_OK(kb_net_arch_parse(&arch, arch_text, &err), err);
    CHECK_OK(kb_net_new(&net, &arch, &in, KB_NET_TASK_CLASSIFICATION, 3, o, &err), err);
    return net;
}

static int same_point(const kb_net_point *a, const kb_net_point *b)
{
    return a->step == b->step && a->epoch == b->epoch && a->lr == b->lr &&
           a->train_loss == b->train_loss && a->val_loss == b->val_loss &&
           a->val_accuracy == b->val_accuracy && a->weight_norm == b->weight_norm &&
           a->grad_norm == b->grad_norm;
}

/*
 * One run to `total` iterations against a run to `first`, a snapshot, a fresh net loading it
 * and a run on to `total`: parameters and every curve point after `first` must be identical.
 */
static void check_resume_matches(const char *arch, kb_net_opts o, size_t first, size_t total)
{
    kb_error err = KB_ERROR_INIT;
    blobs tr, va;
    make_blobs(&tr, 45, 3, 11);
    make_blobs(&va, 30, 3, 12);
    kb_net_data dt = {tr.n, tr.dim, tr.x, tr.y}, dv = {va.n, va.dim, va.x, va.y};
    const char *path = tmp_path("s.kbs");
    kb_net_result r_full, r_a, r_b;
    curve c_full = {0}, c_a = {0}, c_b = {0};

    o.max_iter = total;
    kb_net *full = make_net(arch, &o);
    CHECK_OK(kb_net_train(&r_full, full, &dt, &dv, record, &c_full, &err), err);

    o.max_iter = first;
    kb_net *a = make_net(arch, &o);
    CHECK_OK(kb_net_train(&r_a, a, &dt, &dv, record, &c_a, &err), err);
    CHECK_OK(kb_net_snapshot_save(a, path, "image:2x4x4", "blobs-11", &err), err);

    o.max_iter = total;
    o.seed += 99; /* the snapshot's state wins over a fresh initialisation */
    kb_net *b = make_net(arch, &o);
    CHECK_OK(kb_net_snapshot_load(b, path, "image:2x4x4", "blobs-11", &err), err);
    CHECK_OK(kb_net_train(&r_b, b, &dt, &dv, record, &c_b, &err), err);

    CHECK(r_full.status == KB_NET_STATUS_OK && r_b.status == KB_NET_STATUS_OK);
    CHECK(r_b.iteration == total && r_full.iteration == total);
    CHECK(memcmp(kb_net_params(full), kb_net_params(b),
                 kb_net_n_params(full) * sizeof(float)) == 0);
    CHECK(same_point(&r_full.last, &r_b.last));
    /* the resumed curve is the tail of the full one */
    size_t head = c_a.n - (first % o.test_interval != 0); /* the first run's end point */
    CHECK(head + c_b.n == c_full.n);
    for (size_t i = 0; i < c_b.n && head + i < c_full.n; i++) {
        CHECK(same_point(&c_full.p[head + i], &c_b.p[i]));
    }
    /* and the first part is its head */
    for (size_t i = 0; i < head; i++) {
        CHECK(same_point(&c_full.p[i], &c_a.p[i]));
    }
    kb_net_free(full);
    kb_net_free(a);
    kb_net_free(b);
    remove(path);
    kb_free(tr.x);
    kb_free(tr.y);
    kb_free(va.x);
    kb_free(va.y);
}

static void test_net_snapshot_resume_is_bit_identical_to_one_run(void)
{
    kb_net_opts o = KB_NET_OPTS_INIT;
    o.batch_size = 10; /* 45 samples: 5 batches per epoch, the last one of 5 */
    o.optimizer = KB_NET_OPTIMIZER_MOMENTUM;
    o.base_lr = 0.05;
    o.dropout = 0.3;
    o.test_interval = 5;
    o.lr_policy = KB_NET_LR_POLICY_STEP;
    o.stepsize = 7;
    o.gamma = 0.5;
    o.weight_decay = 1e-3;
    o.seed = 5;
    /* at an epoch boundary and a curve point */
    check_resume_matches("C(3,4)+P(2,2)+FC(8)", o, 10, 25);
    /* mid-epoch and mid-interval: the sample order position and loss accumulator matter */
    check_resume_matches("C(3,4)+P(2,2)+FC(8)", o, 13, 24);
    o.optimizer = KB_NET_OPTIMIZER_ADAM; /* two history arrays and the bias correction */
    o.base_lr = 0.01;
    check_resume_matches("FC(16)+FC(8)", o, 7, 20);
    o.optimizer = KB_NET_OPTIMIZER_ADADELTA;
    o.base_lr = 1.0;
    o.momentum = 0.95;
    check_resume_matches("FC(8)", o, 12, 30);
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
    unsigned char *b = kb_malloc(len > 0 ? (size_t)len : 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

static void spill(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f != NULL) {
        fwrite(b, 1, n, f);
        fclose(f);
    }
}

static void test_net_snapshot_refuses_what_does_not_fit(void)
{
    kb_error err = KB_ERROR_INIT;
    blobs tr;
    make_blobs(&tr, 30, 3, 3);
    kb_net_data dt = {tr.n, tr.dim, tr.x, tr.y};
    kb_net_opts o = KB_NET_OPTS_INIT;
    o.batch_size = 8;
    o.max_iter = 6;
    o.optimizer = KB_NET_OPTIMIZER_NESTEROV;
    const char *path = tmp_path("r.kbs");
    kb_net_result res;

    kb_net *net = make_net("FC(8)", &o);
    CHECK_CODE(kb_net_snapshot_save(net, path, "image:2x4x4", "d", &err), KB_EINVAL);
    CHECK(strstr(err.msg, "not been trained") != NULL);
    CHECK_OK(kb_net_train(&res, net, &dt, NULL, NULL, NULL, &err), err);
    CHECK_OK(kb_net_snapshot_save(net, path, "image:2x4x4", "d", &err), err);

    kb_net_snapshot_info info;
    CHECK_OK(kb_net_snapshot_info_read(&info, path, &err), err);
    CHECK(info.version == KB_NET_SNAPSHOT_VERSION && info.iteration == 6 && info.n_train == 30);
    CHECK(info.optimizer == KB_NET_OPTIMIZER_NESTEROV);
    CHECK_NEAR(info.epoch, 46.0 / 30.0, 0, 1e-12); /* 8+8+8+6, then 8+8 */
    CHECK_STR(info.data_id, "d");
    CHECK_STR(info.weights.arch, "FC(8)");
    CHECK(info.weights.n_outputs == 3 && strlen(info.sha256) == 64);
    /* a snapshot is not a weights file and the other way round */
    CHECK_CODE(kb_net_weights_info_read(&info.weights, path, &err), KB_EFORMAT);

    o.max_iter = 12;
    kb_net *other = make_net("FC(8)", &o);
    CHECK_CODE(kb_net_snapshot_load(other, path, "image:2x4x4", "e", &err), KB_EINVAL);
    CHECK(strstr(err.msg, "data") != NULL);
    CHECK_CODE(kb_net_snapshot_load(other, path, "image:9x9x9", "d", &err), KB_EINVAL);
    kb_net_free(other);
    other = make_net("FC(9)", &o);
    CHECK_CODE(kb_net_snapshot_load(other, path, "image:2x4x4", "d", &err), KB_EINVAL);
    CHECK(strstr(err.msg, "architecture") != NULL);
    kb_net_free(other);
    o.optimizer = KB_NET_OPTIMIZER_ADAM;
    other = make_net("FC(8)", &o);
    CHECK_CODE(kb_net_snapshot_load(other, path, "image:2x4x4", "d", &err), KB_EINVAL);
    CHECK(strstr(err.msg, "nesterov") != NULL && strstr(err.msg, "adam") != NULL);
    kb_net_free(other);
    /* nothing left to train, and a training set of another size */
    o.optimizer = KB_NET_OPTIMIZER_NESTEROV;
    o.max_iter = 6;
    other = make_net("FC(8)", &o);
    CHECK_OK(kb_net_snapshot_load(other, path, "image:2x4x4", "d", &err), err);
    CHECK_CODE(kb_net_train(&res, other, &dt, NULL, NULL, NULL, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "nothing to train") != NULL);
    kb_net_data fewer = {29, tr.dim, tr.x, tr.y};
    CHECK_CODE(kb_net_train(&res, other, &fewer, NULL, NULL, NULL, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "30 samples") != NULL);
    kb_net_free(other);

    /* every flipped byte is caught by the checksum; every cut by the length checks */
    size_t n = 0;
    unsigned char *bytes = slurp(path, &n);
    CHECK(bytes != NULL && n > 100);
    const char *bad = tmp_path("bad.kbs");
    for (size_t at = 0; bytes != NULL && at < n; at += 1 + at / 4) {
        bytes[at] ^= 0x20;
        spill(bad, bytes, n);
        int rc = kb_net_snapshot_info_read(&info, bad, &err);
        CHECK(rc == KB_ECORRUPT || rc == KB_EFORMAT);
        bytes[at] ^= 0x20;
        spill(bad, bytes, at);
        rc = kb_net_snapshot_info_read(&info, bad, &err);
        CHECK(rc == KB_ECORRUPT || rc == KB_EFORMAT);
    }
    CHECK_CODE(kb_net_snapshot_info_read(&info, tmp_path("missing.kbs"), &err), KB_ENOTFOUND);
    kb_free(bytes);
    remove(bad);
    remove(path);
    kb_net_free(net);
    kb_free(tr.x);
    kb_free(tr.y);
}

/* A net that stopped at a callback can be snapshotted and resumed to the same end. */
static int stop_at_10(const kb_net_point *p, void *payload)
{
    (void)payload;
    return p->step >= 10;
}

static void test_net_snapshot_after_a_stop_resumes_to_the_same_end(void)
{
    kb_error err = KB_ERROR_INIT;
    blobs tr;
    make_blobs(&tr, 40, 3, 8);
    kb_net_data dt = {tr.n, tr.dim, tr.x, tr.y};
    kb_net_opts o = KB_NET_OPTS_INIT;
    o.batch_size = 8;
    o.max_iter = 20;
    o.test_interval = 5;
    o.optimizer = KB_NET_OPTIMIZER_RMSPROP;
    o.base_lr = 0.001;
    kb_net_result res;
    const char *path = tmp_path("stop.kbs");
    kb_net *full = make_net("FC(8)", &o), *a = make_net("FC(8)", &o), *b = make_net("FC(8)", &o);
    CHECK_OK(kb_net_train(&res, full, &dt, NULL, NULL, NULL, &err), err);
    CHECK_OK(kb_net_train(&res, a, &dt, NULL, stop_at_10, NULL, &err), err);
    CHECK(res.status == KB_NET_STATUS_STOPPED && res.iteration == 10);
    CHECK_OK(kb_net_snapshot_save(a, path, "s", "", &err), err);
    CHECK_OK(kb_net_snapshot_load(b, path, "s", "", &err), err);
    CHECK_OK(kb_net_train(&res, b, &dt, NULL, NULL, NULL, &err), err);
    CHECK(res.iteration == 20);
    CHECK(memcmp(kb_net_params(full), kb_net_params(b),
                 kb_net_n_params(full) * sizeof(float)) == 0);
    /* without a snapshot load, a second kb_net_train starts over at iteration 0 */
    CHECK_OK(kb_net_train(&res, b, &dt, NULL, NULL, NULL, &err), err);
    CHECK(res.iteration == 20);
    kb_net_free(full);
    kb_net_free(a);
    kb_net_free(b);
    remove(path);
    kb_free(tr.x);
    kb_free(tr.y);
}

static kb_net *sweep_net;

static int sweep_save_load(void)
{
    const char *path = tmp_path("oom.kbs");
    int rc = kb_net_snapshot_save(sweep_net, path, "s", "d", NULL);
    if (rc == KB_OK) {
        rc = kb_net_snapshot_load(sweep_net, path, "s", "d", NULL);
    }
    remove(path);
    return rc;
}

/* Saving and loading report KB_ENOMEM (and free everything) when any allocation fails. */
static void test_net_snapshot_cleans_up_when_allocation_fails(void)
{
    kb_error err = KB_ERROR_INIT;
    blobs tr;
    make_blobs(&tr, 20, 3, 2);
    kb_net_data dt = {tr.n, tr.dim, tr.x, tr.y};
    kb_net_opts o = KB_NET_OPTS_INIT;
    o.batch_size = 8;
    o.max_iter = 3;
    kb_net_result res;
    sweep_net = make_net("FC(4)", &o);
    CHECK_OK(kb_net_train(&res, sweep_net, &dt, NULL, NULL, NULL, &err), err);
    CHECK_ENOMEM_SWEEP(sweep_save_load, 40);
    kb_net_free(sweep_net);
    kb_free(tr.x);
    kb_free(tr.y);
}

int main(void)
{
    test_net_snapshot_resume_is_bit_identical_to_one_run();
    test_net_snapshot_refuses_what_does_not_fit();
    test_net_snapshot_after_a_stop_resumes_to_the_same_end();
    test_net_snapshot_cleans_up_when_allocation_fails();
    return check_exit();
}
