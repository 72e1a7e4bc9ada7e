/* Architecture spaces, uniform sampling, AdaRandom and REINFORCE (see archsearch.h). */
#include "engine/archsearch.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/core/alloc.h"

#define MAX_TOKENS (1 + 2 * KB_ARCHSEARCH_MAX_CHOICES * KB_ARCHSEARCH_MAX_CHOICES + \
                    KB_ARCHSEARCH_MAX_CHOICES)

/* A space with its vocabulary laid out (token 0 = END). */
typedef struct vocab {
    kb_archsearch_space space;
    size_t n_tokens;
    kb_net_layer_spec tok[MAX_TOKENS];
} vocab;

/* The map reached so far while walking a layer sequence. */
typedef struct walk {
    size_t h, w;
    int seen_fc;
} walk;

static int check_list(const size_t *v, size_t n, const char *name, kb_error *err)
{
    if (n == 0 || n > KB_ARCHSEARCH_MAX_CHOICES) {
        return kb_error_set(err, KB_EINVAL, "archsearch space: '%s' needs 1 to %d values", name,
                            KB_ARCHSEARCH_MAX_CHOICES);
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i] == 0) {
            return kb_error_set(err, KB_EINVAL, "archsearch space: '%s' values must be >= 1",
                                name);
        }
    }
    return KB_OK;
}

int kb_archsearch_space_check(const kb_archsearch_space *s, kb_error *err)
{
    KB_CHECK_ARG(s != NULL);
    if (s->depth_min > s->depth_max || s->depth_max > KB_NET_MAX_LAYERS || s->depth_max == 0) {
        return kb_error_set(err, KB_EINVAL,
                            "archsearch space: need depth_min <= depth_max, 1 <= depth_max <= %d",
                            KB_NET_MAX_LAYERS);
    }
    int rc = check_list(s->fc_units, s->n_fc_units, "fc_units", err);
    if (rc != KB_OK || !s->image) {
        return rc;
    }
    if (s->height == 0 || s->width == 0) {
        return kb_error_set(err, KB_EINVAL, "archsearch space: an image needs height, width >= 1");
    }
    if ((rc = check_list(s->conv_kernels, s->n_conv_kernels, "conv_kernels", err)) != KB_OK ||
        (rc = check_list(s->conv_filters, s->n_conv_filters, "conv_filters", err)) != KB_OK ||
        (rc = check_list(s->pool_kernels, s->n_pool_kernels, "pool_kernels", err)) != KB_OK ||
        (rc = check_list(s->pool_strides, s->n_pool_strides, "pool_strides", err)) != KB_OK) {
        return rc;
    }
    return KB_OK;
}

static int vocab_init(vocab *v, const kb_archsearch_space *s, kb_error *err)
{
    int rc = kb_archsearch_space_check(s, err);
    if (rc != KB_OK) {
        return rc;
    }
    memset(v, 0, sizeof *v);
    v->space = *s;
    size_t n = 1; /* END */
    if (s->image) {
        for (size_t i = 0; i < s->n_conv_kernels; i++) {
            for (size_t j = 0; j < s->n_conv_filters; j++) {
                v->tok[n++] = (kb_net_layer_spec){KB_NET_LAYER_CONV, s->conv_kernels[i],
                                                  s->conv_filters[j]};
            }
        }
        for (size_t i = 0; i < s->n_pool_kernels; i++) {
            for (size_t j = 0; j < s->n_pool_strides; j++) {
                v->tok[n++] = (kb_net_layer_spec){KB_NET_LAYER_POOL, s->pool_kernels[i],
                                                  s->pool_strides[j]};
            }
        }
    }
    for (size_t i = 0; i < s->n_fc_units; i++) {
        v->tok[n++] = (kb_net_layer_spec){KB_NET_LAYER_FC, 0, s->fc_units[i]};
    }
    v->n_tokens = n;
    return KB_OK;
}

size_t kb_archsearch_n_tokens(const kb_archsearch_space *space)
{
    vocab v;
    return vocab_init(&v, space, NULL) == KB_OK ? v.n_tokens : 0;
}

int kb_archsearch_token_layer(kb_net_layer_spec *out, const kb_archsearch_space *space,
                              size_t token, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    vocab v;
    int rc = vocab_init(&v, space, err);
    if (rc != KB_OK) {
        return rc;
    }
    if (token == 0 || token >= v.n_tokens) {
        return kb_error_set(err, KB_EINVAL, "archsearch: token %zu is not a layer", token);
    }
    *out = v.tok[token];
    return KB_OK;
}

static void walk_init(walk *wk, const vocab *v)
{
    wk->h = v->space.image ? v->space.height : 1;
    wk->w = v->space.image ? v->space.width : 1;
    wk->seen_fc = 0;
}

/* Caffe's pooled size, as engine/net_layers.c computes it (windows clipped at the edge). */
static size_t pool_out(size_t in, size_t k, size_t s)
{
    size_t out = (in - k + s - 1) / s + 1;
    if ((out - 1) * s >= in) {
        out--;
    }
    return out;
}

/* Why token j may not stand at position p after the walk so far; NULL if it may. */
static const char *invalid_why(const vocab *v, const walk *wk, size_t p, size_t j)
{
    if (j == 0) {
        return p >= v->space.depth_min ? NULL : "fewer layers than depth_min";
    }
    const kb_net_layer_spec *t = &v->tok[j];
    if (t->kind == KB_NET_LAYER_FC) {
        return NULL;
    }
    if (wk->seen_fc) {
        return "convolution and pooling must come before FC layers";
    }
    size_t m = wk->h > wk->w ? wk->h : wk->w;
    if (t->kind == KB_NET_LAYER_CONV) {
        return t->k <= 2 * m + 1 ? NULL : "kernel larger than the padded input map";
    }
    return t->k <= wk->h && t->k <= wk->w ? NULL : "pooling would shrink the map below 1x1";
}

static void walk_step(walk *wk, const kb_net_layer_spec *t)
{
    if (t->kind == KB_NET_LAYER_POOL) {
        wk->h = pool_out(wk->h, t->k, t->n);
        wk->w = pool_out(wk->w, t->k, t->n);
    } else if (t->kind == KB_NET_LAYER_FC) {
        wk->seen_fc = 1;
        wk->h = wk->w = 1;
    }
}

static size_t token_of(const vocab *v, const kb_net_layer_spec *s)
{
    for (size_t j = 1; j < v->n_tokens; j++) {
        if (v->tok[j].kind == s->kind && v->tok[j].n == s->n &&
            (s->kind == KB_NET_LAYER_FC || v->tok[j].k == s->k)) {
            return j;
        }
    }
    return 0;
}

/*
 * The token sequence of `arch` (depth_max entries: its layers, then END) after checking it
 * belongs to the space and is valid. *n_pos = positions that were sampled (L, plus the END
 * at L when L < depth_max).
 */
static int arch_tokens(size_t *tokens, size_t *n_pos, const vocab *v, const kb_net_arch *arch,
                       kb_error *err)
{
    size_t L = arch->n_layers;
    if (L < v->space.depth_min || L > v->space.depth_max) {
        return kb_error_set(err, KB_EINVAL, "arch: %zu layers, the space allows %zu to %zu", L,
                            v->space.depth_min, v->space.depth_max);
    }
    walk wk;
    walk_init(&wk, v);
    for (size_t p = 0; p < L; p++) {
        char txt[64];
        kb_net_arch one = {1, {arch->layers[p]}};
        kb_net_arch_format(txt, sizeof txt, &one);
        size_t j = token_of(v, &arch->layers[p]);
        if (j == 0) {
            return kb_error_set(err, KB_EINVAL, "arch: layer %zu %s: not a choice of the space",
                                p + 1, txt);
        }
        const char *why = invalid_why(v, &wk, p, j);
        if (why != NULL) {
            return kb_error_set(err, KB_EINVAL, "arch: layer %zu %s: %s", p + 1, txt, why);
        }
        tokens[p] = j;
        walk_step(&wk, &v->tok[j]);
    }
    for (size_t p = L; p < v->space.depth_max; p++) {
        tokens[p] = 0;
    }
    *n_pos = L < v->space.depth_max ? L + 1 : L;
    return KB_OK;
}

int kb_archsearch_check(const kb_archsearch_space *space, const kb_net_arch *arch,
                        kb_error *err)
{
    KB_CHECK_ARG(arch != NULL);
    vocab v;
    int rc = vocab_init(&v, space, err);
    if (rc != KB_OK) {
        return rc;
    }
    size_t tokens[KB_NET_MAX_LAYERS], n_pos;
    return arch_tokens(tokens, &n_pos, &v, arch, err);
}

/* The row's distribution masked to the valid tokens: probs (row = p), logits (softmax of
 * row, max-shifted) or uniform (row NULL). Sums to 1 over the valid tokens. */
static void masked_dist(double *pi, const vocab *v, const walk *wk, size_t p, const double *row,
                        int logits)
{
    double mx = -HUGE_VAL;
    for (size_t j = 0; j < v->n_tokens; j++) {
        if (logits && invalid_why(v, wk, p, j) == NULL && row[j] > mx) {
            mx = row[j];
        }
    }
    double sum = 0;
    for (size_t j = 0; j < v->n_tokens; j++) {
        double w = 0;
        if (invalid_why(v, wk, p, j) == NULL) {
            w = row == NULL ? 1.0 : logits ? exp(row[j] - mx) : row[j];
        }
        pi[j] = w;
        sum += w;
    }
    /* FC is always valid and every weight is > 0 (floor, exp), so sum > 0 */
    for (size_t j = 0; j < v->n_tokens; j++) {
        pi[j] /= sum;
    }
}

static size_t draw(const double *pi, size_t n, kb_rng *rng)
{
    double u = kb_rng_uniform(rng), c = 0;
    size_t last = 0;
    for (size_t j = 0; j < n; j++) {
        if (pi[j] > 0) {
            c += pi[j];
            last = j;
            if (u < c) {
                return j;
            }
        }
    }
    return last; /* rounding left u above the cumulative sum */
}

/* Sample position by position from `table` (depth_max x V rows, or NULL for uniform). */
static void sample_from(kb_net_arch *out, const vocab *v, const double *table, int logits,
                        kb_rng *rng)
{
    double pi[MAX_TOKENS];
    walk wk;
    walk_init(&wk, v);
    memset(out, 0, sizeof *out);
    for (size_t p = 0; p < v->space.depth_max; p++) {
        masked_dist(pi, v, &wk, p, table ? table + p * v->n_tokens : NULL, logits);
        size_t j = draw(pi, v->n_tokens, rng);
        if (j == 0) {
            break;
        }
        out->layers[out->n_layers++] = v->tok[j];
        walk_step(&wk, &v->tok[j]);
    }
}

int kb_archsearch_sample(kb_net_arch *out, const kb_archsearch_space *space, kb_rng *rng,
                         kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    KB_CHECK_ARG(rng != NULL);
    vocab v;
    int rc = vocab_init(&v, space, err);
    if (rc != KB_OK) {
        return rc;
    }
    sample_from(out, &v, NULL, 0, rng);
    return KB_OK;
}

/* ---- AdaRandom ---- */

struct kb_archsearch_adarandom {
    vocab v;
    kb_archsearch_adarandom_opts opts;
    kb_rng rng;
    double *p;          /* depth_max x V */
    size_t *elite;      /* n_elite x depth_max tokens */
    double *elite_reward;
    size_t n_elite;
};

int kb_archsearch_adarandom_new(kb_archsearch_adarandom **out, const kb_archsearch_space *space,
                                const kb_archsearch_adarandom_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    *out = NULL;
    kb_archsearch_adarandom_opts o = KB_ARCHSEARCH_ADARANDOM_OPTS_INIT;
    if (opts != NULL) {
        o = *opts;
    }
    kb_archsearch_adarandom *ar = kb_calloc(1, sizeof *ar);
    if (ar == NULL) {
        return kb_error_set(err, KB_ENOMEM, "adarandom: out of memory");
    }
    int rc = vocab_init(&ar->v, space, err);
    if (rc != KB_OK) {
        goto done;
    }
    size_t V = ar->v.n_tokens, D = ar->v.space.depth_max;
    if (o.n_elite == 0 || o.n_elite > KB_ARCHSEARCH_MAX_ELITE || !(o.alpha > 0 && o.alpha <= 1) ||
        !(o.p_min > 0 && o.p_min * (double)V < 1)) {
        rc = kb_error_set(err, KB_EINVAL, "adarandom: need n_elite in 1..%d, alpha in (0, 1], "
                          "p_min in (0, 1/V)", KB_ARCHSEARCH_MAX_ELITE);
        goto done;
    }
    ar->opts = o;
    kb_rng_seed(&ar->rng, o.seed);
    ar->p = kb_malloc_array(D * V, sizeof *ar->p);
    ar->elite = kb_malloc_array(o.n_elite * D, sizeof *ar->elite);
    ar->elite_reward = kb_malloc_array(o.n_elite, sizeof *ar->elite_reward);
    if (ar->p == NULL || ar->elite == NULL || ar->elite_reward == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "adarandom: out of memory");
        goto done;
    }
    for (size_t i = 0; i < D * V; i++) {
        ar->p[i] = 1.0 / (double)V;
    }
    *out = ar;
    ar = NULL;
done:
    kb_archsearch_adarandom_free(ar);
    return rc;
}

void kb_archsearch_adarandom_free(kb_archsearch_adarandom *ar)
{
    if (ar == NULL) {
        return;
    }
    kb_free(ar->p);
    kb_free(ar->elite);
    kb_free(ar->elite_reward);
    kb_free(ar);
}

int kb_archsearch_adarandom_sample(kb_net_arch *out, kb_archsearch_adarandom *ar,
                                   kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    KB_CHECK_ARG(ar != NULL);
    sample_from(out, &ar->v, ar->p, 0, &ar->rng);
    return KB_OK;
}

/* Elite insertion: append while not full, else replace the worst if strictly better (the
 * first worst, so ties keep the older). */
static void elite_insert(kb_archsearch_adarandom *ar, const size_t *tokens, double reward)
{
    size_t D = ar->v.space.depth_max, slot = ar->n_elite;
    if (ar->n_elite == ar->opts.n_elite) {
        slot = 0;
        for (size_t e = 1; e < ar->n_elite; e++) {
            if (ar->elite_reward[e] < ar->elite_reward[slot]) {
                slot = e;
            }
        }
        if (!(reward > ar->elite_reward[slot])) {
            return;
        }
    } else {
        ar->n_elite++;
    }
    memcpy(ar->elite + slot * D, tokens, D * sizeof *tokens);
    ar->elite_reward[slot] = reward;
}

int kb_archsearch_adarandom_tell(kb_archsearch_adarandom *ar, const kb_net_arch *arch,
                                 double reward, kb_error *err)
{
    KB_CHECK_ARG(ar != NULL);
    KB_CHECK_ARG(arch != NULL);
    if (!isfinite(reward)) {
        return kb_error_set(err, KB_EINVAL, "adarandom: reward must be finite");
    }
    size_t tokens[KB_NET_MAX_LAYERS], n_pos;
    int rc = arch_tokens(tokens, &n_pos, &ar->v, arch, err);
    if (rc != KB_OK) {
        return rc;
    }
    elite_insert(ar, tokens, reward);
    if (ar->n_elite < ar->opts.n_elite) {
        return KB_OK;
    }
    size_t V = ar->v.n_tokens, D = ar->v.space.depth_max;
    double a = ar->opts.alpha, inv_m = 1.0 / (double)ar->n_elite;
    for (size_t p = 0; p < D; p++) {
        double *row = ar->p + p * V;
        for (size_t j = 0; j < V; j++) {
            row[j] *= 1 - a;
        }
        for (size_t e = 0; e < ar->n_elite; e++) {
            row[ar->elite[e * D + p]] += a * inv_m;
        }
        double sum = 0;
        for (size_t j = 0; j < V; j++) {
            row[j] = fmax(row[j], ar->opts.p_min);
            sum += row[j];
        }
        for (size_t j = 0; j < V; j++) {
            row[j] /= sum;
        }
    }
    return KB_OK;
}

double kb_archsearch_adarandom_prob(const kb_archsearch_adarandom *ar, size_t position,
                                    size_t token)
{
    if (position >= ar->v.space.depth_max || token >= ar->v.n_tokens) {
        return 0;
    }
    return ar->p[position * ar->v.n_tokens + token];
}

/* ---- REINFORCE ---- */

struct kb_archsearch_reinforce {
    vocab v;
    kb_archsearch_reinforce_opts opts;
    kb_rng rng;
    double *theta; /* depth_max x V logits */
    double baseline;
    uint64_t n_tells;
};

static int reinforce_alloc(kb_archsearch_reinforce **out, const kb_archsearch_space *space,
                           const kb_archsearch_reinforce_opts *o, kb_error *err)
{
    *out = NULL;
    if (!(o->learning_rate > 0) || !isfinite(o->learning_rate) ||
        !(o->baseline_decay >= 0 && o->baseline_decay < 1)) {
        return kb_error_set(err, KB_EINVAL,
                            "reinforce: need learning_rate > 0 and baseline_decay in [0, 1)");
    }
    kb_archsearch_reinforce *rl = kb_calloc(1, sizeof *rl);
    if (rl == NULL) {
        return kb_error_set(err, KB_ENOMEM, "reinforce: out of memory");
    }
    int rc = vocab_init(&rl->v, space, err);
    if (rc != KB_OK) {
        kb_archsearch_reinforce_free(rl);
        return rc;
    }
    rl->opts = *o;
    rl->theta = kb_calloc(rl->v.space.depth_max * rl->v.n_tokens, sizeof *rl->theta);
    if (rl->theta == NULL) {
        kb_archsearch_reinforce_free(rl);
        return kb_error_set(err, KB_ENOMEM, "reinforce: out of memory");
    }
    kb_rng_seed(&rl->rng, o->seed);
    *out = rl;
    return KB_OK;
}

int kb_archsearch_reinforce_new(kb_archsearch_reinforce **out, const kb_archsearch_space *space,
                                const kb_archsearch_reinforce_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    kb_archsearch_reinforce_opts o = KB_ARCHSEARCH_REINFORCE_OPTS_INIT;
    if (opts != NULL) {
        o = *opts;
    }
    return reinforce_alloc(out, space, &o, err);
}

void kb_archsearch_reinforce_free(kb_archsearch_reinforce *rl)
{
    if (rl == NULL) {
        return;
    }
    kb_free(rl->theta);
    kb_free(rl);
}

int kb_archsearch_reinforce_sample(kb_net_arch *out, kb_archsearch_reinforce *rl,
                                   kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    KB_CHECK_ARG(rl != NULL);
    sample_from(out, &rl->v, rl->theta, 1, &rl->rng);
    return KB_OK;
}

int kb_archsearch_reinforce_tell(kb_archsearch_reinforce *rl, const kb_net_arch *arch,
                                 double reward, kb_error *err)
{
    KB_CHECK_ARG(rl != NULL);
    KB_CHECK_ARG(arch != NULL);
    if (!isfinite(reward)) {
        return kb_error_set(err, KB_EINVAL, "reinforce: reward must be finite");
    }
    size_t tokens[KB_NET_MAX_LAYERS], n_pos;
    int rc = arch_tokens(tokens, &n_pos, &rl->v, arch, err);
    if (rc != KB_OK) {
        return rc;
    }
    if (rl->n_tells == 0) {
        rl->baseline = reward;
    }
    double step = rl->opts.learning_rate * (reward - rl->baseline);
    size_t V = rl->v.n_tokens;
    double pi[MAX_TOKENS];
    walk wk;
    walk_init(&wk, &rl->v);
    for (size_t p = 0; p < n_pos; p++) {
        double *row = rl->theta + p * V;
        masked_dist(pi, &rl->v, &wk, p, row, 1);
        /* grad of log pi(a_p) w.r.t. the logits of the valid tokens: 1[j = a_p] - pi_j;
         * invalid tokens have pi_j = 0 and are not in the masked softmax */
        for (size_t j = 0; j < V; j++) {
            if (invalid_why(&rl->v, &wk, p, j) == NULL) {
                row[j] += step * ((j == tokens[p] ? 1.0 : 0.0) - pi[j]);
            }
        }
        if (tokens[p] != 0) {
            walk_step(&wk, &rl->v.tok[tokens[p]]);
        }
    }
    double beta = rl->opts.baseline_decay;
    rl->baseline = beta * rl->baseline + (1 - beta) * reward;
    rl->n_tells++;
    return KB_OK;
}

double kb_archsearch_reinforce_prob(const kb_archsearch_reinforce *rl, size_t position,
                                    size_t token)
{
    size_t V = rl->v.n_tokens;
    if (position >= rl->v.space.depth_max || token >= V) {
        return 0;
    }
    const double *row = rl->theta + position * V;
    double mx = row[0];
    for (size_t j = 1; j < V; j++) {
        mx = fmax(mx, row[j]);
    }
    double sum = 0;
    for (size_t j = 0; j < V; j++) {
        sum += exp(row[j] - mx);
    }
    return exp(row[token] - mx) / sum;
}

double kb_archsearch_reinforce_baseline(const kb_archsearch_reinforce *rl)
{
    return rl->baseline;
}

/* ---- checkpoints: magic, format version, the vocabulary, then the search's own state ---- */

#define FORMAT_VERSION 1

static int put_header(kb_buf *out, const char *magic, const vocab *v)
{
    int rc = kb_buf_append(out, magic, 4);
    rc = rc ? rc : kb_buf_put_varint(out, FORMAT_VERSION);
    rc = rc ? rc : kb_buf_put_varint(out, v->space.depth_max);
    rc = rc ? rc : kb_buf_put_varint(out, v->n_tokens);
    for (size_t j = 1; j < v->n_tokens && rc == KB_OK; j++) {
        rc = kb_buf_put_varint(out, (uint64_t)v->tok[j].kind);
        rc = rc ? rc : kb_buf_put_varint(out, v->tok[j].k);
        rc = rc ? rc : kb_buf_put_varint(out, v->tok[j].n);
    }
    return rc;
}

/* Lay out space's vocabulary into v, check magic, version and that the saved vocabulary is
 * v's; leaves r after the header. */
static int read_header(kb_reader *r, vocab *v, const kb_archsearch_space *space,
                       const void *data, size_t n, const char *magic, const char *what,
                       kb_error *err)
{
    int rc = vocab_init(v, space, err);
    if (rc != KB_OK) {
        return rc;
    }
    if (n < 4 || memcmp(data, magic, 4) != 0) {
        return kb_error_set(err, KB_EFORMAT, "%s state: bad magic", what);
    }
    kb_reader_init(r, (const unsigned char *)data + 4, n - 4);
    uint64_t version = kb_reader_varint(r);
    if (!r->bad && version != FORMAT_VERSION) {
        return kb_error_set(err, KB_EVERSION, "%s state: format version %llu, expected %d", what,
                            (unsigned long long)version, FORMAT_VERSION);
    }
    uint64_t D = kb_reader_varint(r), V = kb_reader_varint(r);
    int same = !r->bad && D == v->space.depth_max && V == v->n_tokens;
    for (size_t j = 1; same && j < V; j++) {
        uint64_t kind = kb_reader_varint(r), k = kb_reader_varint(r), nn = kb_reader_varint(r);
        same = kind == (uint64_t)v->tok[j].kind && k == v->tok[j].k && nn == v->tok[j].n;
    }
    if (r->bad) {
        return kb_error_set(err, KB_EFORMAT, "%s state: truncated header", what);
    }
    if (!same) {
        return kb_error_set(err, KB_EINVAL,
                            "%s state: saved for a different space (depth or tokens)", what);
    }
    return KB_OK;
}

static int put_rng(kb_buf *out, const kb_rng *rng)
{
    int rc = KB_OK;
    for (size_t i = 0; i < 4 && rc == KB_OK; i++) {
        rc = kb_buf_put_be64(out, rng->s[i]);
    }
    return rc;
}

static void read_rng(kb_rng *rng, kb_reader *r)
{
    for (size_t i = 0; i < 4; i++) {
        rng->s[i] = kb_reader_be64(r);
    }
}

/* The end of a state: nothing truncated, nothing trailing, every number finite. */
static int state_end(const kb_reader *r, const double *x, size_t n, const char *what,
                     kb_error *err)
{
    int finite = 1;
    for (size_t i = 0; i < n; i++) {
        finite = finite && isfinite(x[i]);
    }
    if (r->bad || kb_reader_left(r) != 0 || !finite) {
        return kb_error_set(err, KB_EFORMAT,
                            "%s state: truncated, trailing bytes or non-finite values", what);
    }
    return KB_OK;
}

static int save_failed(int rc, const char *what, kb_error *err)
{
    return kb_error_set(err, rc, "%s: saving the state: %s", what, kb_strerror(rc));
}

int kb_archsearch_reinforce_save(kb_buf *out, const kb_archsearch_reinforce *rl, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    KB_CHECK_ARG(rl != NULL);
    size_t DV = rl->v.n_tokens * rl->v.space.depth_max;
    int rc = put_header(out, "KBRL", &rl->v);
    rc = rc ? rc : kb_buf_put_f64(out, rl->opts.learning_rate);
    rc = rc ? rc : kb_buf_put_f64(out, rl->opts.baseline_decay);
    rc = rc ? rc : kb_buf_put_varint(out, rl->opts.seed);
    for (size_t i = 0; i < DV && rc == KB_OK; i++) {
        rc = kb_buf_put_f64(out, rl->theta[i]);
    }
    rc = rc ? rc : kb_buf_put_f64(out, rl->baseline);
    rc = rc ? rc : kb_buf_put_varint(out, rl->n_tells);
    rc = rc ? rc : put_rng(out, &rl->rng);
    return rc == KB_OK ? KB_OK : save_failed(rc, "reinforce", err);
}

int kb_archsearch_reinforce_load(kb_archsearch_reinforce **out, const kb_archsearch_space *space,
                                 const void *data, size_t n, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    *out = NULL;
    KB_CHECK_ARG(data != NULL || n == 0);
    vocab v;
    kb_reader r;
    int rc = read_header(&r, &v, space, data, n, "KBRL", "reinforce", err);
    if (rc != KB_OK) {
        return rc;
    }
    kb_archsearch_reinforce_opts o = KB_ARCHSEARCH_REINFORCE_OPTS_INIT;
    o.learning_rate = kb_reader_f64(&r);
    o.baseline_decay = kb_reader_f64(&r);
    o.seed = kb_reader_varint(&r);
    kb_archsearch_reinforce *rl = NULL;
    rc = r.bad ? KB_EFORMAT : reinforce_alloc(&rl, space, &o, err);
    if (rc != KB_OK) {
        /* bad options are bad bytes here; KB_ENOMEM stays itself */
        return rc == KB_ENOMEM ? rc
                               : kb_error_set(err, KB_EFORMAT,
                                              "reinforce state: truncated or bad options");
    }
    size_t DV = v.n_tokens * v.space.depth_max;
    for (size_t i = 0; i < DV; i++) {
        rl->theta[i] = kb_reader_f64(&r);
    }
    rl->baseline = kb_reader_f64(&r);
    rl->n_tells = kb_reader_varint(&r);
    read_rng(&rl->rng, &r);
    rc = state_end(&r, rl->theta, DV, "reinforce", err);
    if (rc == KB_OK && !isfinite(rl->baseline)) {
        rc = kb_error_set(err, KB_EFORMAT, "reinforce state: non-finite baseline");
    }
    if (rc != KB_OK) {
        kb_archsearch_reinforce_free(rl);
        return rc;
    }
    *out = rl;
    return KB_OK;
}

int kb_archsearch_adarandom_save(kb_buf *out, const kb_archsearch_adarandom *ar, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    KB_CHECK_ARG(ar != NULL);
    size_t D = ar->v.space.depth_max, DV = ar->v.n_tokens * D;
    int rc = put_header(out, "KBAR", &ar->v);
    rc = rc ? rc : kb_buf_put_varint(out, ar->opts.n_elite);
    rc = rc ? rc : kb_buf_put_f64(out, ar->opts.alpha);
    rc = rc ? rc : kb_buf_put_f64(out, ar->opts.p_min);
    rc = rc ? rc : kb_buf_put_varint(out, ar->opts.seed);
    for (size_t i = 0; i < DV && rc == KB_OK; i++) {
        rc = kb_buf_put_f64(out, ar->p[i]);
    }
    rc = rc ? rc : kb_buf_put_varint(out, ar->n_elite);
    for (size_t i = 0; i < ar->n_elite * D && rc == KB_OK; i++) {
        rc = kb_buf_put_varint(out, ar->elite[i]);
    }
    for (size_t e = 0; e < ar->n_elite && rc == KB_OK; e++) {
        rc = kb_buf_put_f64(out, ar->elite_reward[e]);
    }
    rc = rc ? rc : put_rng(out, &ar->rng);
    return rc == KB_OK ? KB_OK : save_failed(rc, "adarandom", err);
}

/* Every elite sequence must be one the space can produce. */
static int elite_valid(const kb_archsearch_adarandom *ar)
{
    size_t D = ar->v.space.depth_max;
    for (size_t e = 0; e < ar->n_elite; e++) {
        const size_t *t = ar->elite + e * D;
        kb_net_arch a = {0, {{0, 0, 0}}};
        size_t L = 0;
        while (L < D && t[L] != 0) {
            if (t[L] >= ar->v.n_tokens) {
                return 0;
            }
            a.layers[L] = ar->v.tok[t[L]];
            L++;
        }
        for (size_t p = L; p < D; p++) {
            if (t[p] != 0) {
                return 0;
            }
        }
        a.n_layers = L;
        size_t tokens[KB_NET_MAX_LAYERS], n_pos;
        if (arch_tokens(tokens, &n_pos, &ar->v, &a, NULL) != KB_OK) {
            return 0;
        }
    }
    return 1;
}

int kb_archsearch_adarandom_load(kb_archsearch_adarandom **out, const kb_archsearch_space *space,
                                 const void *data, size_t n, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    *out = NULL;
    KB_CHECK_ARG(data != NULL || n == 0);
    vocab v;
    kb_reader r;
    int rc = read_header(&r, &v, space, data, n, "KBAR", "adarandom", err);
    if (rc != KB_OK) {
        return rc;
    }
    kb_archsearch_adarandom_opts o = KB_ARCHSEARCH_ADARANDOM_OPTS_INIT;
    o.n_elite = kb_reader_varint(&r);
    o.alpha = kb_reader_f64(&r);
    o.p_min = kb_reader_f64(&r);
    o.seed = kb_reader_varint(&r);
    size_t D = v.space.depth_max, DV = v.n_tokens * D;
    kb_archsearch_adarandom *ar = NULL;
    rc = r.bad ? KB_EFORMAT : kb_archsearch_adarandom_new(&ar, space, &o, err);
    if (rc != KB_OK) {
        return rc == KB_ENOMEM ? rc
                               : kb_error_set(err, KB_EFORMAT,
                                              "adarandom state: truncated or bad options");
    }
    for (size_t i = 0; i < DV; i++) {
        ar->p[i] = kb_reader_f64(&r);
    }
    uint64_t n_elite = kb_reader_varint(&r);
    if (n_elite > o.n_elite) {
        r.bad = 1;
        n_elite = 0;
    }
    ar->n_elite = (size_t)n_elite;
    for (size_t i = 0; i < ar->n_elite * D; i++) {
        ar->elite[i] = (size_t)kb_reader_varint(&r);
    }
    for (size_t e = 0; e < ar->n_elite; e++) {
        ar->elite_reward[e] = kb_reader_f64(&r);
    }
    read_rng(&ar->rng, &r);
    rc = state_end(&r, ar->p, DV, "adarandom", err);
    rc = rc ? rc : state_end(&r, ar->elite_reward, ar->n_elite, "adarandom", err);
    if (rc == KB_OK && !elite_valid(ar)) {
        rc = kb_error_set(err, KB_EFORMAT, "adarandom state: an elite architecture is invalid");
    }
    for (size_t i = 0; rc == KB_OK && i < DV; i++) {
        if (!(ar->p[i] > 0 && ar->p[i] <= 1)) {
            rc = kb_error_set(err, KB_EFORMAT, "adarandom state: a probability is not in (0, 1]");
        }
    }
    if (rc != KB_OK) {
        kb_archsearch_adarandom_free(ar);
        return rc;
    }
    *out = ar;
    return KB_OK;
}
