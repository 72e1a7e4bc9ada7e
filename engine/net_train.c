/*
 * kb_net training loop: minibatches from a per-epoch shuffle, Caffe's solver step (learning
 * rate, clipping, decay, update), a learning-curve point every test_interval iterations, and
 * divergence detection (a non-finite loss or weight stops the run at once).
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "engine/core/alloc.h"
#include "engine/net_priv.h"

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* process CPU time (all threads): steadier than wall time on a shared machine */
static double cpu_s(void)
{
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

static void gather(kb_net *net, const kb_net_data *d, const size_t *idx, size_t m)
{
    size_t dim = d->dim;
    for (size_t s = 0; s < m; s++) {
        memcpy(net->xb + s * dim, d->x + idx[s] * dim, dim * sizeof(float));
        net->yb[s] = d->y[idx[s]];
    }
}

int kb_net_train(kb_net_result *out, kb_net *net, const kb_net_data *train,
                 const kb_net_data *val, kb_net_point_fn fn, void *payload, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && net != NULL && train != NULL);
    memset(out, 0, sizeof *out);
    if (train->n == 0) {
        return kb_error_set(err, KB_EINVAL, "no training samples");
    }
    int rc = kb_net__check_data(net, train, err);
    if (rc == KB_OK && val != NULL) {
        rc = kb_net__check_data(net, val, err);
    }
    if (rc != KB_OK) {
        return rc;
    }
    const kb_net_opts *o = &net->opts;
    size_t batch = o->batch_size < train->n ? o->batch_size : train->n;
    size_t per_epoch = (train->n + batch - 1) / batch;
    size_t max_iter = o->max_iter ? o->max_iter : o->epochs * per_epoch;
    size_t interval = o->test_interval ? o->test_interval : per_epoch;
    if (net->resume) {
        /* continue a snapshot: its order of samples must index this training set */
        if (net->n_perm != train->n) {
            return kb_error_set(err, KB_EINVAL, "resume: the snapshot was trained on %zu "
                                "samples, this training set has %zu", net->n_perm, train->n);
        }
        if (net->iter >= max_iter) {
            return kb_error_set(err, KB_EINVAL, "resume: the snapshot is at iteration %zu, "
                                "max_iter is %zu: nothing to train", net->iter, max_iter);
        }
    } else {
        size_t *perm = kb_malloc_array(train->n, sizeof(size_t));
        if (perm == NULL) {
            return kb_error_set(err, KB_ENOMEM, "out of memory");
        }
        kb_free(net->perm);
        net->perm = perm;
        net->n_perm = train->n;
        for (size_t i = 0; i < train->n; i++) {
            perm[i] = i;
        }
        kb_rng_shuffle(&net->rng, perm, train->n);
        net->iter = 0;
        net->pos = 0;
        net->seen = 0;
        net->loss_sum = 0.0;
        net->loss_n = 0;
    }
    net->resume = 0;
    size_t *perm = net->perm;
    out->max_iter = max_iter;
    out->iteration = net->iter;
    double t0 = now_s(), c0 = cpu_s(), eval_cpu = 0.0, grad_norm = NAN;
    kb_net_point pt;
    memset(&pt, 0, sizeof pt);
    for (size_t iter = net->iter; iter < max_iter; iter++) {
        if (net->pos == train->n) {
            kb_rng_shuffle(&net->rng, perm, train->n);
            net->pos = 0;
        }
        /* the last batch of an epoch takes the remainder, so epochs are exact */
        size_t m = train->n - net->pos < batch ? train->n - net->pos : batch;
        gather(net, train, perm + net->pos, m);
        net->pos += m;
        net->seen += m;
        double loss, lr = kb_net_lr_at(o, iter, max_iter);
        kb_net_loss_grad(&loss, net, net->xb, net->yb, m, 1, NULL);
        grad_norm = kb_net_grad_norm(net);
        size_t bad = isfinite(loss) ? kb_net_update(net, iter, lr) : 0;
        net->loss_sum += loss;
        net->loss_n++;
        net->iter = iter + 1;
        int report = (iter + 1) % interval == 0 || iter + 1 == max_iter;
        int diverged = !isfinite(loss) || bad > 0;
        if (!report && !diverged) {
            continue;
        }
        pt.step = iter + 1;
        pt.epoch = (double)net->seen / (double)train->n;
        pt.lr = lr;
        pt.train_loss = net->loss_sum / (double)net->loss_n;
        pt.val_loss = NAN;
        pt.val_accuracy = NAN;
        pt.weight_norm = kb_net_weight_norm(net);
        pt.grad_norm = grad_norm;
        pt.nonfinite_weights = bad;
        if (diverged) {
            out->status = KB_NET_STATUS_DIVERGED;
            out->iteration = iter + 1;
            break;
        }
        if (val != NULL && val->n > 0) {
            double e0 = now_s(), ec0 = cpu_s();
            kb_net_evaluate(&pt.val_loss, &pt.val_accuracy, net, val, NULL);
            out->eval_seconds += now_s() - e0;
            eval_cpu += cpu_s() - ec0;
        }
        /*
         * Only interval points restart the train-loss mean: a run that ends between them and
         * is resumed then reports the same means as one that never stopped.
         */
        if ((iter + 1) % interval == 0) {
            net->loss_sum = 0.0;
            net->loss_n = 0;
        }
        out->iteration = iter + 1;
        if (fn != NULL && fn(&pt, payload) != 0) {
            out->status = KB_NET_STATUS_STOPPED;
            break;
        }
    }
    out->last = pt;
    out->train_seconds = now_s() - t0 - out->eval_seconds;
    out->train_cpu_seconds = cpu_s() - c0 - eval_cpu;
    return KB_OK;
}
