/*
 * Internals of kb_net shared by engine/net*.c: the layer table and the net struct.
 * Not installed; see engine/net.h for the model.
 */
#ifndef KB_ENGINE_NET_PRIV_H
#define KB_ENGINE_NET_PRIV_H

#include <stdint.h>

#include "engine/core/buf.h"
#include "engine/core/rng.h"
#include "engine/net.h"

typedef struct kb_net__layer {
    kb_net_layer_kind kind;
    int is_output;
    size_t k, n;                    /* as in kb_net_layer_spec; output: FC(n_outputs) */
    size_t in_c, in_h, in_w;        /* input map (tabular: in_c = d, 1 x 1) */
    size_t out_c, out_h, out_w;
    size_t in_dim, out_dim;         /* per sample */
    size_t pad;                     /* conv: top/left padding ("same") */
    /* parameters: weights rows x fan_in (column-major, ld = rows), then rows biases */
    int has_params;
    size_t param_index;             /* among parametrised layers */
    size_t w_off, b_off, rows, fan_in;
    int activated;                  /* activation after it (all but pooling and output) */
    int dropout;                    /* dropout after it (hidden FC when opts.dropout > 0) */
    /* workspace for max_batch samples */
    float *out;                     /* out_dim x batch */
    float *dout;                    /* gradient of the loss w.r.t. out */
    float *col;                     /* conv: im2col of `chunk` inputs, fan_in x chunk*out_h*out_w */
    size_t chunk;                   /* conv: images per im2col chunk */
    float *mask;                    /* dropout: 0 or 1/(1-p) */
    uint32_t *argmax;               /* pool: index into the input batch of each output */
} kb_net__layer;

struct kb_net {
    kb_net_arch arch;
    kb_net_input input;
    kb_net_task task;
    size_t n_outputs;
    kb_net_opts opts;
    size_t n_layers;                /* hidden + output */
    kb_net__layer *layers;
    size_t n_param_layers;
    size_t *param_layer;            /* layer index of each parametrised layer */
    double *lr_mult, *decay_mult;   /* per parametrised layer, after freeze */
    size_t n_params;
    float *params, *grads, *hist1, *hist2;
    size_t max_batch;
    float *xb, *yb;                 /* a gathered minibatch */
    kb_rng rng;                     /* dropout and shuffling */
    int first_trainable;            /* lowest layer index whose parameters train */
    /*
     * Where training stands (kb_net_train keeps it; a snapshot saves and restores it): the
     * iterations done, the current epoch's sample order and position in it, samples seen and
     * the train-loss accumulator since the last point. `resume` makes the next kb_net_train
     * continue from here instead of starting at iteration 0.
     */
    int resume;
    size_t iter;
    size_t *perm, n_perm, pos, seen, loss_n;
    double loss_sum;
};

/** Forward pass of n samples (n <= max_batch); the output layer's `out` holds the logits. */
void kb_net__forward(kb_net *net, const float *x, size_t n, int train);
/** Mean loss of the current logits; with `grad` also dL/dlogits into the output's dout. */
double kb_net__loss(kb_net *net, const float *y, size_t n, int grad);
/** KB_EINVAL unless `d` has the net's input width and valid class labels. */
int kb_net__check_data(const kb_net *net, const kb_net_data *d, kb_error *err);
/** Initialise parameters from opts (seeded). */
void kb_net__init_params(kb_net *net);

/* weights files in memory (net_io.c), shared with snapshots (net_snapshot.c) */
/** Append a complete weights file image (header, floats, SHA-256) to `b`; KB_ENOMEM. */
int kb_net__weights_encode(kb_buf *b, const kb_net *net, const char *signature);
/** Append n floats little-endian; KB_ENOMEM. */
int kb_net__put_floats(kb_buf *b, const float *v, size_t n);
/** Load a weights file image (as kb_net_weights_load; `path` names it in messages). */
int kb_net__weights_apply(int *replaced_out, kb_net *net, const unsigned char *buf, size_t len,
                          const char *path, const char *signature, kb_error *err);
/** Whole file into `*out` (caller kb_free); KB_ENOTFOUND, KB_EIO, KB_ENOMEM. */
int kb_net__read_file(unsigned char **out, size_t *len_out, const char *path, kb_error *err);
/** Write `b` to `path`; KB_EIO. */
int kb_net__write_file(const char *path, const kb_buf *b, kb_error *err);

#endif
