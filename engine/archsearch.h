/*
 * Architecture search over layer sequences in the seed notation of engine/net.h
 * (C(k,n), P(k,s), FC(n); kb_net_arch holds them, kb_net_arch_parse / kb_net_arch_format
 * read and write the text): a space, uniform sampling, AdaRandom and REINFORCE.
 *
 * Tokens. A space lists choices: convolution kernels x filters, pooling kernels x strides,
 * FC units, and a depth range. Its vocabulary is V tokens: token 0 = END, then every C(k,n)
 * (kernel-major), every P(k,s), every FC(n); images have all of them, tabular data only END
 * and FC. An architecture of L hidden layers is the token sequence a_0..a_{L-1}, followed by
 * END at position L when L < depth_max. Positions run 0..depth_max-1.
 *
 * Validity (the same rules kb_net_new enforces): at position p with the map h x w reached so
 * far, END needs p >= depth_min; C(k,n) and P(k,s) need an image input and no FC before
 * them; C(k,n) needs k <= 2 max(h, w) + 1 (same padding); P(k,s) needs k <= h and k <= w
 * (so the map never shrinks below 1x1; the output is Caffe's ceil((h - k) / s) + 1, windows
 * clipped, as in engine/net_layers.c). FC is always valid. Every sampler draws position by
 * position from its distribution restricted to the valid tokens and renormalised ("masked"),
 * so every sample is valid; an FC token is always available, so sampling never gets stuck.
 *
 * Uniform sampling: each position uniform over its valid tokens.
 *
 * AdaRandom (adaptive random search): a table p[position][token] of probabilities, uniform
 * at the start. tell(arch, reward) keeps an elite: the n_elite best architectures by reward
 * (larger is better; a new one enters only if strictly better than the worst; ties keep the
 * older). Once the elite is full, every tell applies, for each position p and token j,
 *     p[p][j] <- (1 - alpha) p[p][j] + alpha f[p][j]
 *     p[p][j] <- max(p[p][j], p_min), then each row is divided by its sum
 * where f[p][j] is the fraction of elite architectures whose token at p is j (END at and
 * beyond their length). The floor keeps every token reachable. The state (p, the elite, rng,
 * options) serialises to bytes like REINFORCE's.
 *
 * REINFORCE (Williams 1992; the controller update of Zoph & Le 2017 with a factorised policy,
 * as in Baker et al.'s and Zoph & Le's use of the validation metric as the reward): logits
 * theta[p][j], zero at the start (uniform). The policy samples each position from
 * softmax(theta[p]) masked to the valid tokens. tell(arch, R) for reward R:
 *     b <- R at the first tell (so the first advantage is 0)
 *     A = R - b
 *     for each sampled position p (the L layer tokens, and END at L if L < depth_max),
 *     with pi = the masked softmax at p given the prefix, and the chosen token a_p:
 *         theta[p][j] += lr * A * (1[j = a_p] - pi_j)   for valid j (others unchanged)
 *     b <- beta b + (1 - beta) R                         (moving-average baseline)
 * i.e. theta += lr * A * grad log pi(arch). pi is recomputed with the current theta, so
 * results told out of order (parallel trials) use the current policy. The state (theta, b,
 * tells, rng, options) serialises to bytes for a study's checkpoint.
 *
 * Rewards must be finite: pass the worst value for a failed trial. Everything random comes
 * from the seed in the options.
 */
#ifndef KB_ENGINE_ARCHSEARCH_H
#define KB_ENGINE_ARCHSEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/buf.h"
#include "engine/core/error.h"
#include "engine/core/rng.h"
#include "engine/net.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KB_ARCHSEARCH_MAX_CHOICES 8

/** The search space. Lists hold n_* values (each 1..KB_ARCHSEARCH_MAX_CHOICES, >= 1). */
typedef struct kb_archsearch_space {
    int version;
    int image;             /* 1: an image input height x width (C, P, FC); 0: tabular (FC) */
    size_t height, width;  /* images only */
    size_t depth_min, depth_max; /* hidden layers, depth_min <= depth_max <= KB_NET_MAX_LAYERS */
    size_t n_conv_kernels;
    size_t conv_kernels[KB_ARCHSEARCH_MAX_CHOICES];
    size_t n_conv_filters;
    size_t conv_filters[KB_ARCHSEARCH_MAX_CHOICES];
    size_t n_pool_kernels;
    size_t pool_kernels[KB_ARCHSEARCH_MAX_CHOICES];
    size_t n_pool_strides;
    size_t pool_strides[KB_ARCHSEARCH_MAX_CHOICES];
    size_t n_fc_units;
    size_t fc_units[KB_ARCHSEARCH_MAX_CHOICES];
} kb_archsearch_space;

#define KB_ARCHSEARCH_SPACE_VERSION 1
/* 28x28 images, 1 to 6 hidden layers, C(3|5, 16|32|64), P(2|3, 2), FC(32|64|128) */
#define KB_ARCHSEARCH_SPACE_INIT                                                             \
    {KB_ARCHSEARCH_SPACE_VERSION, 1, 28, 28, 1, 6, 2, {3, 5}, 3, {16, 32, 64}, 2, {2, 3}, 1,  \
     {2}, 3, {32, 64, 128}}

/**
 * Check a space (list sizes, positive values, depth range; images need height, width >= 1).
 * @return KB_OK; KB_EINVAL naming the bad field.
 */
int kb_archsearch_space_check(const kb_archsearch_space *space, kb_error *err);

/** Vocabulary size V of a valid space (END, then C, P, FC tokens as above). */
size_t kb_archsearch_n_tokens(const kb_archsearch_space *space);

/**
 * The layer of token `token` (1..V-1) into *out; token 0 (END) and out-of-range give
 * KB_EINVAL.
 */
int kb_archsearch_token_layer(kb_net_layer_spec *out, const kb_archsearch_space *space,
                              size_t token, kb_error *err);

/**
 * Whether `arch` belongs to `space` and is valid for its input: depth in range, every layer
 * one of the space's tokens, the validity rules above.
 * @return KB_OK; KB_EINVAL with the layer and reason ("arch: layer 3 P(3,2): ...").
 */
int kb_archsearch_check(const kb_archsearch_space *space, const kb_net_arch *arch,
                        kb_error *err);

/**
 * A uniform sample (each position uniform over its valid tokens).
 * @return KB_OK; KB_EINVAL for an invalid space.
 */
int kb_archsearch_sample(kb_net_arch *out, const kb_archsearch_space *space, kb_rng *rng,
                         kb_error *err);

/* ---- AdaRandom ---- */

#define KB_ARCHSEARCH_MAX_ELITE 4096

typedef struct kb_archsearch_adarandom_opts {
    int version;
    size_t n_elite; /* m, 1..KB_ARCHSEARCH_MAX_ELITE */
    double alpha;   /* step toward the elite frequencies, in (0, 1] */
    double p_min;   /* probability floor, in (0, 1 / V) */
    uint64_t seed;
} kb_archsearch_adarandom_opts;

#define KB_ARCHSEARCH_ADARANDOM_OPTS_VERSION 1
#define KB_ARCHSEARCH_ADARANDOM_OPTS_INIT {KB_ARCHSEARCH_ADARANDOM_OPTS_VERSION, 10, 0.1, 0.005, 0}

typedef struct kb_archsearch_adarandom kb_archsearch_adarandom;

/**
 * AdaRandom over `space` (copied).
 * @return KB_OK; KB_EINVAL (bad space or options); KB_ENOMEM.
 * Caller owns `*out`; free with kb_archsearch_adarandom_free().
 */
int kb_archsearch_adarandom_new(kb_archsearch_adarandom **out, const kb_archsearch_space *space,
                                const kb_archsearch_adarandom_opts *opts, kb_error *err);
void kb_archsearch_adarandom_free(kb_archsearch_adarandom *ar);
/** Draw an architecture from the current distribution. @return KB_OK. */
int kb_archsearch_adarandom_sample(kb_net_arch *out, kb_archsearch_adarandom *ar,
                                   kb_error *err);
/**
 * Report the reward (larger is better) of `arch` (any valid member of the space, sampled
 * or not: a warm start may tell past results).
 * @return KB_OK; KB_EINVAL (arch not in the space, non-finite reward).
 */
int kb_archsearch_adarandom_tell(kb_archsearch_adarandom *ar, const kb_net_arch *arch,
                                 double reward, kb_error *err);
/** Current p[position][token] (0 when out of range). */
double kb_archsearch_adarandom_prob(const kb_archsearch_adarandom *ar, size_t position,
                                    size_t token);

/**
 * Append the search's state to `out` (magic "KBAR", the space's vocabulary, options, p, the
 * elite, rng).
 * @return KB_OK; KB_ENOMEM.
 */
int kb_archsearch_adarandom_save(kb_buf *out, const kb_archsearch_adarandom *ar, kb_error *err);
/**
 * Rebuild an AdaRandom search from bytes written by kb_archsearch_adarandom_save for the same
 * space; it then continues exactly as the saved one would have.
 * @return KB_OK; KB_EFORMAT (truncated, not a state, invalid contents); KB_EVERSION; KB_EINVAL
 * (the vocabulary differs from `space`'s); KB_ENOMEM. Caller owns `*out`.
 */
int kb_archsearch_adarandom_load(kb_archsearch_adarandom **out, const kb_archsearch_space *space,
                                 const void *data, size_t n, kb_error *err);

/* ---- REINFORCE ---- */

typedef struct kb_archsearch_reinforce_opts {
    int version;
    double learning_rate;  /* lr > 0 */
    double baseline_decay; /* beta in [0, 1) */
    uint64_t seed;
} kb_archsearch_reinforce_opts;

#define KB_ARCHSEARCH_REINFORCE_OPTS_VERSION 1
#define KB_ARCHSEARCH_REINFORCE_OPTS_INIT {KB_ARCHSEARCH_REINFORCE_OPTS_VERSION, 0.5, 0.9, 0}

typedef struct kb_archsearch_reinforce kb_archsearch_reinforce;

/**
 * A REINFORCE controller over `space` (copied).
 * @return KB_OK; KB_EINVAL (bad space or options); KB_ENOMEM.
 * Caller owns `*out`; free with kb_archsearch_reinforce_free().
 */
int kb_archsearch_reinforce_new(kb_archsearch_reinforce **out, const kb_archsearch_space *space,
                                const kb_archsearch_reinforce_opts *opts, kb_error *err);
void kb_archsearch_reinforce_free(kb_archsearch_reinforce *rl);
/** Draw an architecture from the policy. @return KB_OK. */
int kb_archsearch_reinforce_sample(kb_net_arch *out, kb_archsearch_reinforce *rl,
                                   kb_error *err);
/**
 * One policy-gradient step for `arch` with reward `reward` (larger is better).
 * @return KB_OK; KB_EINVAL (arch not in the space, non-finite reward).
 */
int kb_archsearch_reinforce_tell(kb_archsearch_reinforce *rl, const kb_net_arch *arch,
                                 double reward, kb_error *err);
/** The policy's unmasked probability softmax(theta[position])[token] (0 out of range). */
double kb_archsearch_reinforce_prob(const kb_archsearch_reinforce *rl, size_t position,
                                    size_t token);
/** The moving-average baseline b (0 before the first tell). */
double kb_archsearch_reinforce_baseline(const kb_archsearch_reinforce *rl);

/**
 * Append the controller's state to `out` (a versioned byte format: magic "KBRL", the
 * space's vocabulary, options, theta, baseline, tells, rng).
 * @return KB_OK; KB_ENOMEM.
 */
int kb_archsearch_reinforce_save(kb_buf *out, const kb_archsearch_reinforce *rl, kb_error *err);
/**
 * Rebuild a controller from bytes written by kb_archsearch_reinforce_save for the same
 * space; it then continues exactly as the saved one would have.
 * @return KB_OK; KB_EFORMAT (truncated or not a controller); KB_EVERSION; KB_EINVAL (the
 * vocabulary differs from `space`'s); KB_ENOMEM. Caller owns `*out`.
 */
int kb_archsearch_reinforce_load(kb_archsearch_reinforce **out, const kb_archsearch_space *space,
                                 const void *data, size_t n, kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
