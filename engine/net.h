/*
 * kb_net: a small convolutional / fully connected network trainer for CPU, in float32 on
 * OpenBLAS, for the built-in `net` workload.
 *
 * Architecture notation (the project's seed): layers joined by '+':
 *   C(k,n)  k x k convolution with n filters, padding "same", stride 1, activation after it
 *   P(k,s)  max pooling, kernel k, stride s (output ceil((h - k) / s) + 1, windows clipped)
 *   FC(n)   fully connected layer with n units, activation (and dropout) after it
 * The output layer (FC with n_classes units and softmax cross-entropy, or 1 unit and squared
 * error for regression) is appended by kb_net_new. Tabular inputs allow FC layers only.
 *
 * Layout: activations are column-major "feature x sample" matrices; an image batch is NHWC
 * (channel fastest), so a conv layer is one sgemm over the whole batch
 * (F x CKK) * (CKK x N*H*W) after im2col, and flattening into an FC layer is free.
 * Parameters of all layers live in one contiguous float array (per layer: weights, F x K
 * column-major, then biases), as do their gradients and optimizer state.
 *
 * Optimizers and learning-rate policies follow Caffe (BVLC/caffe: src/caffe/solvers/,
 * src/caffe/solvers/sgd_solver.cpp GetLearningRate, ClipGradients, Regularize), with
 * cosine = 0.5 * base_lr * (1 + cos(pi * iter / max_iter)). Weight fillers follow Caffe's
 * gaussian, xavier (uniform, scale sqrt(3 / fan_in)) and msra (gaussian, std sqrt(2 / fan_in)).
 *
 * Everything random (initialisation, shuffling, dropout, the validation split) comes from
 * the seed in kb_net_opts, so one seed gives one result (with OPENBLAS_NUM_THREADS=1).
 * docs/FORMAT.md ("Weights file") documents the weights format.
 */
#ifndef KB_ENGINE_NET_H
#define KB_ENGINE_NET_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/error.h"
#include "engine/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KB_NET_MAX_LAYERS 32   /* hidden layers in an architecture string */
#define KB_NET_ARCH_MAX 512    /* bytes of an architecture string, with its NUL */
#define KB_NET_SIGNATURE_MAX 96 /* bytes of an input signature, with its NUL */

typedef enum kb_net_layer_kind {
    KB_NET_LAYER_CONV = 1,
    KB_NET_LAYER_POOL = 2,
    KB_NET_LAYER_FC = 3
} kb_net_layer_kind;

/** One layer of the notation: C(k,n) -> {CONV,k,n}; P(k,s) -> {POOL,k,s}; FC(n) -> {FC,0,n}. */
typedef struct kb_net_layer_spec {
    kb_net_layer_kind kind;
    size_t k;
    size_t n;
} kb_net_layer_spec;

/** A parsed architecture: hidden layers only (the output layer is implicit). */
typedef struct kb_net_arch {
    size_t n_layers;
    kb_net_layer_spec layers[KB_NET_MAX_LAYERS];
} kb_net_arch;

/**
 * Parse "C(3,32)+P(2,2)+FC(64)" (spaces allowed, case-insensitive, "" = no hidden layer).
 * @return KB_OK; KB_EFORMAT with the offending position ("arch: at 7: expected ')'").
 */
int kb_net_arch_parse(kb_net_arch *out, const char *spec, kb_error *err);
/** Canonical text of `arch` into `buf` (KB_NET_ARCH_MAX bytes always suffice). */
void kb_net_arch_format(char *buf, size_t n, const kb_net_arch *arch);

/** The input of a net: an image C x H x W, or a tabular vector (channels = d, h = w = 1). */
typedef struct kb_net_input {
    int image;               /* 1 for images (conv/pool allowed), 0 for tabular */
    size_t channels, height, width;
} kb_net_input;

typedef enum kb_net_task {
    KB_NET_TASK_CLASSIFICATION = 1, /* softmax cross-entropy over n_outputs classes */
    KB_NET_TASK_REGRESSION = 2      /* one output, mean squared error */
} kb_net_task;

typedef enum kb_net_optimizer {
    KB_NET_OPTIMIZER_SGD = 0,      /* w -= lr * g */
    KB_NET_OPTIMIZER_MOMENTUM = 1, /* Caffe SGD: v = m v + lr g; w -= v */
    KB_NET_OPTIMIZER_NESTEROV = 2,
    KB_NET_OPTIMIZER_ADAGRAD = 3,
    KB_NET_OPTIMIZER_ADADELTA = 4,
    KB_NET_OPTIMIZER_RMSPROP = 5,
    KB_NET_OPTIMIZER_ADAM = 6
} kb_net_optimizer;

typedef enum kb_net_lr_policy {
    KB_NET_LR_POLICY_FIXED = 0,  /* base_lr */
    KB_NET_LR_POLICY_STEP = 1,   /* base_lr * gamma ^ floor(iter / stepsize) */
    KB_NET_LR_POLICY_EXP = 2,    /* base_lr * gamma ^ iter */
    KB_NET_LR_POLICY_INV = 3,    /* base_lr * (1 + gamma * iter) ^ (-power) */
    KB_NET_LR_POLICY_POLY = 4,   /* base_lr * (1 - iter / max_iter) ^ power */
    KB_NET_LR_POLICY_COSINE = 5  /* 0.5 * base_lr * (1 + cos(pi * iter / max_iter)) */
} kb_net_lr_policy;

typedef enum kb_net_activation {
    KB_NET_ACTIVATION_RELU = 0,
    KB_NET_ACTIVATION_TANH = 1,
    KB_NET_ACTIVATION_SIGMOID = 2
} kb_net_activation;

typedef enum kb_net_init {
    KB_NET_INIT_GAUSSIAN = 0, /* N(0, init_std^2) */
    KB_NET_INIT_XAVIER = 1,   /* U(-sqrt(3/fan_in), sqrt(3/fan_in)) */
    KB_NET_INIT_MSRA = 2      /* N(0, 2/fan_in) */
} kb_net_init;

/**
 * Hyperparameters; the config keys of `kb train net` have the same names (see
 * kb_net_opts_set). Multipliers are per parametrised layer (conv and FC layers in order,
 * the output layer last); entries past n_lr_mult / n_decay_mult are 1.
 */
typedef struct kb_net_opts {
    int version;
    kb_net_optimizer optimizer;
    double base_lr;
    double momentum;       /* Momentum, Nesterov; AdaDelta's decay; Adam's beta1 */
    double momentum2;      /* Adam's beta2 */
    double delta;          /* AdaGrad, AdaDelta, RMSProp, Adam: the denominator guard */
    double rms_decay;      /* RMSProp */
    double weight_decay;   /* L2, times each layer's decay_mult */
    kb_net_lr_policy lr_policy;
    double gamma;
    double power;
    size_t stepsize;
    size_t max_iter;       /* 0: epochs * ceil(n_train / batch_size) */
    size_t epochs;         /* used when max_iter is 0 */
    size_t batch_size;
    size_t test_interval;  /* 0: once per epoch */
    kb_net_activation activation;
    double dropout;        /* drop probability after each hidden FC layer, in [0, 1) */
    kb_net_init init;
    double init_std;       /* gaussian filler */
    double clip_gradients; /* global L2 norm bound; <= 0 disables */
    size_t n_lr_mult;
    double lr_mult[KB_NET_MAX_LAYERS + 1];
    size_t n_decay_mult;
    double decay_mult[KB_NET_MAX_LAYERS + 1];
    size_t freeze;         /* the first `freeze` parametrised layers get lr_mult 0 */
    uint64_t seed;
} kb_net_opts;

#define KB_NET_OPTS_VERSION 1
#define KB_NET_OPTS_INIT                                                                     \
    {KB_NET_OPTS_VERSION, KB_NET_OPTIMIZER_SGD, 0.01, 0.9, 0.999, 1e-8, 0.99, 0.0,            \
     KB_NET_LR_POLICY_FIXED, 0.1, 1.0, 1000, 0, 10, 64, 0, KB_NET_ACTIVATION_RELU, 0.0,     \
     KB_NET_INIT_XAVIER, 0.01, 0.0, 0, {0}, 0, {0}, 0, 0}

/**
 * Set one hyperparameter from text: key is a field name above (`lr_mult` / `decay_mult`
 * take a comma-separated list; enums take their lower-case names, e.g. optimizer=adam,
 * lr_policy=step, activation=tanh, init=msra; optimizer names are case-insensitive).
 * @return KB_OK; KB_EINVAL "config 'key': ..." for an unknown key or bad value.
 */
int kb_net_opts_set(kb_net_opts *opts, const char *key, const char *value, kb_error *err);
/** Apply every member of a JSON object (numbers, strings, arrays for the multipliers). */
int kb_net_opts_set_json(kb_net_opts *opts, const char *json, kb_error *err);
/** Check ranges (base_lr > 0, batch_size >= 1, dropout in [0,1), ...); KB_EINVAL. */
int kb_net_opts_check(const kb_net_opts *opts, kb_error *err);
/** The learning rate at `iter` under `opts`' policy (Caffe's GetLearningRate). */
double kb_net_lr_at(const kb_net_opts *opts, size_t iter, size_t max_iter);

const char *kb_net_optimizer_name(kb_net_optimizer o);
const char *kb_net_lr_policy_name(kb_net_lr_policy p);

typedef struct kb_net kb_net;

/**
 * Build a net: check the architecture against the input (only FC on tabular data; a
 * convolution or pooling may not shrink the map below 1x1), allocate parameters, optimizer
 * state and the workspace for batches up to max(batch_size, 256), and initialise weights
 * from opts->seed. `n_outputs` is the class count (>= 2) or 1 for regression.
 * @return KB_OK; KB_EINVAL with a clear reason for an invalid architecture; KB_ENOMEM.
 * Caller owns `*out`; free with kb_net_free().
 */
int kb_net_new(kb_net **out, const kb_net_arch *arch, const kb_net_input *input,
               kb_net_task task, size_t n_outputs, const kb_net_opts *opts, kb_error *err);
void kb_net_free(kb_net *net);

/** Parameter access: all parameters / gradients as one array of kb_net_n_params floats. */
size_t kb_net_n_params(const kb_net *net);
float *kb_net_params(kb_net *net);
const float *kb_net_grads(const kb_net *net);
/** Parametrised layers (conv and FC, the output layer last). */
size_t kb_net_n_param_layers(const kb_net *net);
/** Offset into the parameter array and count (weights then biases) of param layer `l`. */
void kb_net_param_layer(const kb_net *net, size_t l, size_t *offset_out, size_t *count_out);
/** Flattened input size (C*H*W). */
size_t kb_net_input_dim(const kb_net *net);

/**
 * Training data for a net: n samples of dim floats each, column-major dim x n (a sample is
 * contiguous; images NHWC). Classification targets are class indices 0..n_outputs-1 stored
 * as floats; regression targets are values.
 */
typedef struct kb_net_data {
    size_t n;
    size_t dim;
    const float *x;
    const float *y;
} kb_net_data;

/**
 * Forward and backward pass on n samples (n <= the workspace batch); fills the gradients
 * (kb_net_grads) of the mean loss. `train` enables dropout. Loss is the mean softmax
 * cross-entropy or mean squared error.
 */
int kb_net_loss_grad(double *loss_out, kb_net *net, const float *x, const float *y, size_t n,
                     int train, kb_error *err);
/** Mean loss and accuracy (classification; NaN for regression) over a data set. */
int kb_net_evaluate(double *loss_out, double *accuracy_out, kb_net *net,
                    const kb_net_data *data, kb_error *err);
/**
 * One optimizer update from the current gradients at iteration `iter` (0-based) with
 * learning rate `lr`: clip_gradients, then weight decay, then the optimizer (Caffe's order).
 * Returns the count of non-finite parameters after the update.
 */
size_t kb_net_update(kb_net *net, size_t iter, double lr);
/** Global L2 norm of the current gradients / of the parameters. */
double kb_net_grad_norm(const kb_net *net);
double kb_net_weight_norm(const kb_net *net);

/** One learning-curve point (what `kb train net` prints every test_interval). */
typedef struct kb_net_point {
    size_t step;
    double epoch;
    double lr;
    double train_loss;      /* mean minibatch loss since the previous point */
    double val_loss;        /* NaN without validation data */
    double val_accuracy;    /* NaN for regression or without validation data */
    double weight_norm;
    double grad_norm;       /* before clipping */
    size_t nonfinite_weights;
} kb_net_point;

/** Receives each point; a non-zero return stops training (status KB_NET_STATUS_STOPPED). */
typedef int (*kb_net_point_fn)(const kb_net_point *p, void *payload);

typedef enum kb_net_status {
    KB_NET_STATUS_OK = 0,
    KB_NET_STATUS_DIVERGED = 1, /* a non-finite loss or weight */
    KB_NET_STATUS_STOPPED = 2   /* the callback asked to stop */
} kb_net_status;

typedef struct kb_net_result {
    kb_net_status status;
    size_t iteration;       /* iterations done; for DIVERGED the iteration where it was seen */
    size_t max_iter;
    kb_net_point last;      /* the final point (evaluated at the end) */
    double train_seconds;   /* wall time of the training steps, evaluation excluded */
    double eval_seconds;    /* wall time of the validation passes */
    double train_cpu_seconds; /* process CPU time of the training steps (all threads) */
} kb_net_result;

/**
 * Train for max_iter iterations (or epochs), shuffling each epoch, reporting a point every
 * test_interval iterations and at the end. `val` may be NULL.
 * @return KB_OK (see out->status for divergence); KB_EINVAL for mismatched data.
 */
int kb_net_train(kb_net_result *out, kb_net *net, const kb_net_data *train,
                 const kb_net_data *val, kb_net_point_fn fn, void *payload, kb_error *err);

/**
 * Predict: n_outputs floats per sample into `out` (class probabilities, or the value).
 */
int kb_net_predict(float *out, kb_net *net, const float *x, size_t n, kb_error *err);

/** Width of kb_net_features' output: the last hidden layer's size (the input's if none). */
size_t kb_net_feature_dim(const kb_net *net);
/**
 * Penultimate features (a backbone's representation, e.g. for engine/logme.h): the last
 * hidden layer's activations of n samples, evaluation mode (no dropout), as
 * kb_net_feature_dim x n floats into `out` (a sample is contiguous; a conv or pooling map is
 * flattened NHWC). With no hidden layer the inputs are copied.
 * @return KB_OK; KB_EINVAL for NULL arguments.
 */
int kb_net_features(float *out, kb_net *net, const float *x, size_t n, kb_error *err);

/* ---- inputs: scaling a kb_dataset into float matrices ---- */

/**
 * Scaling fitted on training rows: tabular numeric columns standardised (missing -> mean,
 * i.e. 0 after scaling), categorical columns one-hot (missing -> all zeros); images divided
 * by 255 then standardised per channel with the training mean and std; regression targets
 * standardised (classification targets are class indices, unscaled).
 */
typedef struct kb_net_scaler {
    int image;
    size_t n_cols;
    size_t dim;          /* scaled width */
    double *mean, *std;  /* tabular: per column; image: per channel */
    size_t *offset;      /* tabular: first scaled feature of each column */
    size_t **level_pos;  /* tabular: one-hot position of each level (levels sorted by name) */
    size_t channels, height, width;
    double y_mean, y_std;  /* regression targets are scaled to (y - y_mean) / y_std */
    char signature[KB_NET_SIGNATURE_MAX];
} kb_net_scaler;

/**
 * Fit on rows `rows[0..n)` of `d` (all rows when rows is NULL). The input signature is
 * "image:CxHxW" or "tabular:" + 16 hex digits of the SHA-256 of the feature schema (names,
 * types, level names sorted). One-hot features follow the sorted level names, so files that
 * list the same levels in another order get the same inputs and signature.
 * Release with kb_net_scaler_release.
 */
int kb_net_scaler_fit(kb_net_scaler *out, const kb_dataset *d, const size_t *rows, size_t n,
                      kb_error *err);
void kb_net_scaler_release(kb_net_scaler *s);
/**
 * Scaled rows into a new dim x n float matrix `*x_out` and targets `*y_out` (both owned by
 * the caller, kb_free). The dataset must have the fitted schema.
 */
int kb_net_scaler_apply(float **x_out, float **y_out, const kb_net_scaler *s,
                        const kb_dataset *d, const size_t *rows, size_t n, kb_error *err);
/** The net input matching a fitted scaler. */
kb_net_input kb_net_scaler_input(const kb_net_scaler *s);

/* ---- weights files (backbones) ---- */

#define KB_NET_WEIGHTS_VERSION 1

/** What a weights file's header says. */
typedef struct kb_net_weights_info {
    uint32_t version;
    char arch[KB_NET_ARCH_MAX];            /* hidden layers, canonical */
    char signature[KB_NET_SIGNATURE_MAX];  /* input signature */
    kb_net_input input;
    kb_net_task task;
    size_t n_outputs;
    size_t n_param_layers;
    size_t n_params;
    char sha256[65];                       /* hex SHA-256 of the whole file */
} kb_net_weights_info;

/**
 * Write the net's parameters with its architecture and `signature` (docs/FORMAT.md,
 * "Weights file"). @return KB_OK; KB_EIO.
 */
int kb_net_weights_save(const kb_net *net, const char *path, const char *signature,
                        kb_error *err);
/**
 * Read and verify a weights file's header and checksum.
 * @return KB_OK; KB_EIO; KB_EFORMAT (bad magic, truncated, bad sizes); KB_EVERSION;
 *         KB_ECORRUPT (checksum mismatch).
 */
int kb_net_weights_info_read(kb_net_weights_info *out, const char *path, kb_error *err);
/**
 * As kb_net_weights_info_read, on a weights file already in memory (`name` names it in
 * messages).
 */
int kb_net_weights_info_parse(kb_net_weights_info *out, const void *buf, size_t len,
                              const char *name, kb_error *err);
/**
 * Load a weights file into `net` (fine-tuning): the hidden architecture and `signature` must
 * match the file's; the output layer is loaded when its shape matches and otherwise kept as
 * initialised (`*replaced_out` = 1).
 * @return as kb_net_weights_info_read; KB_EINVAL when incompatible.
 */
int kb_net_weights_load(int *replaced_out, kb_net *net, const char *path,
                        const char *signature, kb_error *err);
/**
 * Load a backbone under a new last stage: the file's hidden layers must be the first hidden
 * layers of the net's architecture (e.g. file 'C(3,8)+P(2,2)+FC(64)', net
 * 'C(3,8)+P(2,2)+FC(64)+FC(32)'); they are loaded, and the layers after them keep their
 * initialisation (the file's output layer loads only when the net adds no layer and its shape
 * matches). `*n_loaded_out` = parametrised layers loaded. Optimizer state is reset.
 * @return as kb_net_weights_load.
 */
int kb_net_weights_load_prefix(size_t *n_loaded_out, kb_net *net, const char *path,
                               const char *signature, kb_error *err);

/* ---- training snapshots (resume) ---- */

#define KB_NET_SNAPSHOT_VERSION 1
#define KB_NET_DATA_ID_MAX 256 /* bytes of a snapshot's data id, with its NUL */

/** What a snapshot file's header says. */
typedef struct kb_net_snapshot_info {
    uint32_t version;
    kb_net_weights_info weights;   /* the embedded weights file (its sha256 is its own) */
    kb_net_optimizer optimizer;    /* the optimizer whose state the snapshot holds */
    size_t iteration;              /* iterations done */
    size_t n_train;                /* training samples the sample order indexes */
    double epoch;                  /* samples seen / n_train */
    char data_id[KB_NET_DATA_ID_MAX];
    char sha256[65];               /* hex SHA-256 of the whole snapshot file */
} kb_net_snapshot_info;

/**
 * Write the full training state after kb_net_train (docs/FORMAT.md, "Snapshot file"): the
 * weights (as an embedded weights file, so the snapshot is also a backbone), the optimizer
 * state, the iteration, the current epoch's sample order and position, the train-loss
 * accumulator and the RNG state. `data_id` (< KB_NET_DATA_ID_MAX bytes; may be "") names the
 * training data; kb_net_snapshot_load refuses another. The file is written to a temporary
 * name and renamed, so a crash never leaves a half-written snapshot under `path`.
 * @return KB_OK; KB_EINVAL when the net has not been trained; KB_EIO; KB_ENOMEM.
 */
int kb_net_snapshot_save(const kb_net *net, const char *path, const char *signature,
                         const char *data_id, kb_error *err);
/**
 * Read and verify a snapshot's header, embedded weights and checksum.
 * @return KB_OK; KB_ENOTFOUND; KB_EIO; KB_EFORMAT (bad magic, truncated, bad sizes);
 *         KB_EVERSION; KB_ECORRUPT (checksum mismatch).
 */
int kb_net_snapshot_info_read(kb_net_snapshot_info *out, const char *path, kb_error *err);
/** As kb_net_snapshot_info_read, on a snapshot already in memory (`name` for messages). */
int kb_net_snapshot_info_parse(kb_net_snapshot_info *out, const void *buf, size_t len,
                               const char *name, kb_error *err);
/**
 * Restore a snapshot into a net built with the same architecture, outputs and optimizer
 * (hyperparameters such as the learning rate may differ: they apply from the snapshot's
 * iteration on). The next kb_net_train then continues from the snapshot's iteration up to
 * its max_iter (which must be larger) instead of starting over: with the same seed, data and
 * hyperparameters, training e epochs, saving, loading and training to e + e' epochs gives
 * bit for bit the weights and curve of training e + e' epochs in one go, for learning-rate
 * policies that do not depend on max_iter (fixed, step, exp, inv); poly and cosine decay
 * towards the max_iter of each run.
 * @return as kb_net_snapshot_info_read; KB_EINVAL when the snapshot does not fit the net,
 *         `signature` or `data_id`.
 */
int kb_net_snapshot_load(kb_net *net, const char *path, const char *signature,
                         const char *data_id, kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
