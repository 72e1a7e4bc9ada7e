/* Tests of engine/archsearch: validity, determinism, AdaRandom and REINFORCE concentration,
 * the controller checkpoint. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/archsearch.h"
#include "engine/core/alloc.h"

static int sanitized(void)
{
    return getenv("KB_SANITIZED") != NULL;
}

/* Independent re-statement of the validity rules, with Caffe's pooled size. */
static int valid_for(const kb_net_arch *a, int image, size_t h, size_t w, size_t dmin,
                     size_t dmax)
{
    if (a->n_layers < dmin || a->n_layers > dmax) {
        return 0;
    }
    int seen_fc = 0;
    for (size_t i = 0; i < a->n_layers; i++) {
        const kb_net_layer_spec *s = &a->layers[i];
        if (s->kind == KB_NET_LAYER_FC) {
            seen_fc = 1;
            continue;
        }
        if (!image || seen_fc) {
            return 0;
        }
        if (s->kind == KB_NET_LAYER_POOL) {
            if (s->k > h || s->k > w) {
                return 0;
            }
            size_t oh = (size_t)ceil((double)(h - s->k) / (double)s->n) + 1;
            size_t ow = (size_t)ceil((double)(w - s->k) / (double)s->n) + 1;
            if ((oh - 1) * s->n >= h) {
                oh--;
            }
            if ((ow - 1) * s->n >= w) {
                ow--;
            }
            h = oh;
            w = ow;
            if (h < 1 || w < 1) {
                return 0;
            }
        }
    }
    return 1;
}

static int same_arch(const kb_net_arch *a, const kb_net_arch *b)
{
    if (a->n_layers != b->n_layers) {
        return 0;
    }
    for (size_t i = 0; i < a->n_layers; i++) {
        if (a->layers[i].kind != b->layers[i].kind || a->layers[i].n != b->layers[i].n ||
            (a->layers[i].kind != KB_NET_LAYER_FC && a->layers[i].k != b->layers[i].k)) {
            return 0;
        }
    }
    return 1;
}

/* Synthetic reward: the fraction of hidden layers with 64 filters or units. */
static double frac64(const kb_net_arch *a)
{
    if (a->n_layers == 0) {
        return 0;
    }
    size_t n = 0;
    for (size_t i = 0; i < a->n_layers; i++) {
        n += a->layers[i].kind != KB_NET_LAYER_POOL && a->layers[i].n == 64;
    }
    return (double)n / (double)a->n_layers;
}

static kb_archsearch_space tabular_space(void)
{
    kb_archsearch_space s = KB_ARCHSEARCH_SPACE_INIT;
    s.image = 0;
    s.height = s.width = 0;
    s.depth_min = 1;
    s.depth_max = 4;
    return s;
}

static void test_archsearch_samples_are_valid_for_images_and_tabular(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_archsearch_space img = KB_ARCHSEARCH_SPACE_INIT;
    kb_archsearch_space tab = tabular_space();
    CHECK_OK(kb_archsearch_space_check(&img, &err), err);
    CHECK(kb_archsearch_n_tokens(&img) == 1 + 2 * 3 + 2 + 3);
    CHECK(kb_archsearch_n_tokens(&tab) == 1 + 3);
    kb_net_layer_spec ls;
    CHECK_OK(kb_archsearch_token_layer(&ls, &img, 1, &err), err);
    CHECK(ls.kind == KB_NET_LAYER_CONV && ls.k == 3 && ls.n == 16);
    CHECK_CODE(kb_archsearch_token_layer(&ls, &img, 0, &err), KB_EINVAL);
    kb_rng rng;
    kb_rng_seed(&rng, 42);
    size_t n = sanitized() ? 500 : 3000, n_conv = 0, n_pool = 0, n_deep = 0;
    for (size_t t = 0; t < n; t++) {
        kb_net_arch a, b;
        CHECK_OK(kb_archsearch_sample(&a, &img, &rng, &err), err);
        CHECK(valid_for(&a, 1, 28, 28, 1, 6));
        CHECK_OK(kb_archsearch_check(&img, &a, &err), err);
        /* round trip through net.h's notation */
        char txt[KB_NET_ARCH_MAX];
        kb_net_arch_format(txt, sizeof txt, &a);
        CHECK_OK(kb_net_arch_parse(&b, txt, &err), err);
        CHECK(same_arch(&a, &b));
        for (size_t i = 0; i < a.n_layers; i++) {
            n_conv += a.layers[i].kind == KB_NET_LAYER_CONV;
            n_pool += a.layers[i].kind == KB_NET_LAYER_POOL;
        }
        n_deep += a.n_layers == 6;
        CHECK_OK(kb_archsearch_sample(&a, &tab, &rng, &err), err);
        CHECK(valid_for(&a, 0, 1, 1, 1, 4));
        CHECK_OK(kb_archsearch_check(&tab, &a, &err), err);
    }
    CHECK(n_conv > 0 && n_pool > 0 && n_deep > 0);
    /* invalid ones are rejected with a reason */
    kb_net_arch a;
    CHECK_OK(kb_net_arch_parse(&a, "FC(64)+C(3,32)", &err), err);
    CHECK_CODE(kb_archsearch_check(&img, &a, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "before FC") != NULL);
    CHECK_OK(kb_net_arch_parse(&a, "C(3,32)", &err), err);
    CHECK_CODE(kb_archsearch_check(&tab, &a, &err), KB_EINVAL);
    CHECK_OK(kb_net_arch_parse(&a, "C(7,32)", &err), err);
    CHECK_CODE(kb_archsearch_check(&img, &a, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "not a choice") != NULL);
    CHECK_OK(kb_net_arch_parse(&a, "", &err), err);
    CHECK_CODE(kb_archsearch_check(&img, &a, &err), KB_EINVAL);
    /* 28 -> 14 -> 7 -> 4 -> 2 -> 1: a sixth pooling would shrink below 1x1 */
    CHECK_OK(kb_net_arch_parse(&a, "P(2,2)+P(2,2)+P(2,2)+P(2,2)+P(2,2)", &err), err);
    CHECK_OK(kb_archsearch_check(&img, &a, &err), err);
    CHECK_OK(kb_net_arch_parse(&a, "P(2,2)+P(2,2)+P(2,2)+P(2,2)+P(2,2)+P(2,2)", &err), err);
    CHECK_CODE(kb_archsearch_check(&img, &a, &err), KB_EINVAL);
    CHECK(strstr(err.msg, "below 1x1") != NULL);
    kb_archsearch_space bad = img;
    bad.n_conv_filters = 0;
    CHECK_CODE(kb_archsearch_space_check(&bad, &err), KB_EINVAL);
    bad = img;
    bad.depth_min = 7;
    CHECK_CODE(kb_archsearch_space_check(&bad, &err), KB_EINVAL);
}

/* On a tiny map (where pooling often cannot fit) the sampler agrees with kb_net_new. */
static void test_archsearch_validity_agrees_with_net_on_a_small_map(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_archsearch_space s = {KB_ARCHSEARCH_SPACE_VERSION, 1, 5, 5, 0, 5, 2, {1, 3}, 1, {2},
                             2, {2, 3}, 2, {1, 2}, 1, {3}};
    kb_net_input in = {1, 1, 5, 5};
    kb_net_opts o = KB_NET_OPTS_INIT;
    o.batch_size = 1;
    kb_rng rng;
    kb_rng_seed(&rng, 3);
    size_t n = sanitized() ? 60 : 300;
    for (size_t t = 0; t < n; t++) {
        kb_net_arch a;
        CHECK_OK(kb_archsearch_sample(&a, &s, &rng, &err), err);
        kb_net *net = NULL;
        CHECK_OK(kb_net_new(&net, &a, &in, KB_NET_TASK_CLASSIFICATION, 2, &o, &err), err);
        kb_net_free(net);
    }
    /* 5 -> P(3,2) -> 2: P(3,1) no longer fits, for both */
    kb_net_arch a;
    CHECK_OK(kb_net_arch_parse(&a, "P(3,2)+P(3,1)", &err), err);
    CHECK_CODE(kb_archsearch_check(&s, &a, &err), KB_EINVAL);
    kb_net *net = NULL;
    CHECK_CODE(kb_net_new(&net, &a, &in, KB_NET_TASK_CLASSIFICATION, 2, &o, &err), KB_EINVAL);
    CHECK(net == NULL);
}

static void test_archsearch_same_seed_same_architectures(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_archsearch_space s = KB_ARCHSEARCH_SPACE_INIT;
    kb_archsearch_adarandom_opts ao = KB_ARCHSEARCH_ADARANDOM_OPTS_INIT;
    kb_archsearch_reinforce_opts ro = KB_ARCHSEARCH_REINFORCE_OPTS_INIT;
    ao.seed = ro.seed = 9;
    kb_archsearch_adarandom *a1 = NULL, *a2 = NULL;
    kb_archsearch_reinforce *r1 = NULL, *r2 = NULL;
    CHECK_OK(kb_archsearch_adarandom_new(&a1, &s, &ao, &err), err);
    CHECK_OK(kb_archsearch_adarandom_new(&a2, &s, &ao, &err), err);
    CHECK_OK(kb_archsearch_reinforce_new(&r1, &s, &ro, &err), err);
    CHECK_OK(kb_archsearch_reinforce_new(&r2, &s, &ro, &err), err);
    if (a1 && a2 && r1 && r2) {
        size_t differ = 0;
        for (size_t t = 0; t < 100; t++) {
            kb_net_arch x, y;
            CHECK_OK(kb_archsearch_adarandom_sample(&x, a1, &err), err);
            CHECK_OK(kb_archsearch_adarandom_sample(&y, a2, &err), err);
            differ += !same_arch(&x, &y);
            CHECK_OK(kb_archsearch_adarandom_tell(a1, &x, frac64(&x), &err), err);
            CHECK_OK(kb_archsearch_adarandom_tell(a2, &y, frac64(&y), &err), err);
            CHECK_OK(kb_archsearch_reinforce_sample(&x, r1, &err), err);
            CHECK_OK(kb_archsearch_reinforce_sample(&y, r2, &err), err);
            differ += !same_arch(&x, &y);
            CHECK_OK(kb_archsearch_reinforce_tell(r1, &x, frac64(&x), &err), err);
            CHECK_OK(kb_archsearch_reinforce_tell(r2, &y, frac64(&y), &err), err);
        }
        CHECK(differ == 0);
    }
    kb_archsearch_adarandom_free(a1);
    kb_archsearch_adarandom_free(a2);
    kb_archsearch_reinforce_free(r1);
    kb_archsearch_reinforce_free(r2);
}

/* Mean synthetic reward of n uniform samples. */
static double uniform_mean(const kb_archsearch_space *s, size_t n)
{
    kb_error err = KB_ERROR_INIT;
    kb_rng rng;
    kb_rng_seed(&rng, 1);
    double sum = 0;
    for (size_t t = 0; t < n; t++) {
        kb_net_arch a;
        CHECK_OK(kb_archsearch_sample(&a, s, &rng, &err), err);
        sum += frac64(&a);
    }
    return sum / (double)n;
}

/* Probability mass on 64-filter / 64-unit tokens at position p. */
static double mass64_ada(const kb_archsearch_adarandom *ar, const kb_archsearch_space *s,
                         size_t p)
{
    kb_error err = KB_ERROR_INIT;
    double m = 0;
    for (size_t j = 1; j < kb_archsearch_n_tokens(s); j++) {
        kb_net_layer_spec ls;
        CHECK_OK(kb_archsearch_token_layer(&ls, s, j, &err), err);
        if (ls.kind != KB_NET_LAYER_POOL && ls.n == 64) {
            m += kb_archsearch_adarandom_prob(ar, p, j);
        }
    }
    return m;
}

static void test_archsearch_adarandom_concentrates_on_the_best_token(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_archsearch_space s = KB_ARCHSEARCH_SPACE_INIT;
    kb_archsearch_adarandom *ar = NULL;
    kb_archsearch_adarandom_opts o = KB_ARCHSEARCH_ADARANDOM_OPTS_INIT;
    o.seed = 5;
    CHECK_OK(kb_archsearch_adarandom_new(&ar, &s, &o, &err), err);
    if (ar == NULL) {
        return;
    }
    double m0 = mass64_ada(ar, &s, 0);
    CHECK_NEAR(m0, 3.0 / 12.0, 1e-12, 0);
    for (size_t t = 0; t < 300; t++) {
        kb_net_arch a;
        CHECK_OK(kb_archsearch_adarandom_sample(&a, ar, &err), err);
        CHECK_OK(kb_archsearch_adarandom_tell(ar, &a, frac64(&a), &err), err);
    }
    /* rows stay distributions with the floor respected (up to the renormalisation) */
    for (size_t p = 0; p < s.depth_max; p++) {
        double sum = 0, mn = 1;
        for (size_t j = 0; j < 12; j++) {
            sum += kb_archsearch_adarandom_prob(ar, p, j);
            mn = fmin(mn, kb_archsearch_adarandom_prob(ar, p, j));
        }
        CHECK_NEAR(sum, 1, 1e-12, 0);
        CHECK(mn >= o.p_min / (1 + 12 * o.p_min));
    }
    CHECK(mass64_ada(ar, &s, 0) > 0.8);
    double mean = 0;
    for (size_t t = 0; t < 200; t++) {
        kb_net_arch a;
        CHECK_OK(kb_archsearch_adarandom_sample(&a, ar, &err), err);
        mean += frac64(&a) / 200;
    }
    double base = uniform_mean(&s, 2000);
    CHECK(base < 0.4);
    CHECK(mean > 0.8);
    kb_net_arch bad;
    CHECK_OK(kb_net_arch_parse(&bad, "C(3,32)", &err), err);
    CHECK_CODE(kb_archsearch_adarandom_tell(ar, &bad, NAN, &err), KB_EINVAL);
    CHECK_OK(kb_net_arch_parse(&bad, "C(3,48)", &err), err);
    CHECK_CODE(kb_archsearch_adarandom_tell(ar, &bad, 1, &err), KB_EINVAL);
    kb_archsearch_adarandom_free(ar);
    kb_archsearch_adarandom_free(NULL);
    o.alpha = 0;
    CHECK_CODE(kb_archsearch_adarandom_new(&ar, &s, &o, &err), KB_EINVAL);
    CHECK(ar == NULL);
}

/* A tabular space with vocabulary END, FC(32), FC(64), FC(128) and 1..2 hidden layers. */
static kb_archsearch_space tiny_space(void)
{
    kb_archsearch_space s = tabular_space();
    s.depth_max = 2;
    return s;
}

static kb_net_arch arch_of(const char *spec)
{
    kb_error err = KB_ERROR_INIT;
    kb_net_arch a;
    memset(&a, 0, sizeof a);
    CHECK_OK(kb_net_arch_parse(&a, spec, &err), err);
    return a;
}

/*
 * The header's AdaRandom rule worked by hand on the tiny space, n_elite 2, alpha 0.5,
 * p_min 0.05: no update until the elite is full; a worse architecture leaves the elite but
 * still triggers the update; a better one replaces the worst; the floor, then the
 * renormalisation.
 */
static void test_archsearch_adarandom_update_is_the_documented_rule(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_archsearch_space s = tiny_space();
    kb_archsearch_adarandom_opts o = KB_ARCHSEARCH_ADARANDOM_OPTS_INIT;
    o.n_elite = 2;
    o.alpha = 0.5;
    o.p_min = 0.05;
    kb_archsearch_adarandom *ar = NULL;
    CHECK_OK(kb_archsearch_adarandom_new(&ar, &s, &o, &err), err);
    if (ar == NULL) {
        return;
    }
    kb_net_arch a = arch_of("FC(32)"), b = arch_of("FC(64)+FC(128)");
    kb_net_arch c = arch_of("FC(128)"), d = arch_of("FC(128)+FC(32)");
    CHECK_OK(kb_archsearch_adarandom_tell(ar, &a, 1, &err), err);
    for (size_t j = 0; j < 4; j++) {
        CHECK_NEAR(kb_archsearch_adarandom_prob(ar, 0, j), 0.25, 1e-15, 0);
    }
    /* elite {a, b}: f[0] = (0, .5, .5, 0), f[1] = (.5, 0, 0, .5) (a has END at position 1) */
    CHECK_OK(kb_archsearch_adarandom_tell(ar, &b, 2, &err), err);
    static const double p1[2][4] = {{0.125, 0.375, 0.375, 0.125}, {0.375, 0.125, 0.125, 0.375}};
    /* c is worse than the elite's worst: the elite stays, the step is applied again */
    CHECK_OK(kb_archsearch_adarandom_tell(ar, &c, 0.5, &err), err);
    static const double p2[2][4] = {{0.0625, 0.4375, 0.4375, 0.0625},
                                    {0.4375, 0.0625, 0.0625, 0.4375}};
    for (size_t p = 0; p < 2; p++) {
        for (size_t j = 0; j < 4; j++) {
            CHECK_NEAR(kb_archsearch_adarandom_prob(ar, p, j), p2[p][j], 1e-15, 0);
            CHECK_NEAR(0.5 * p1[p][j] + 0.5 * (p == 0 ? (j == 1 || j == 2) : (j == 0 || j == 3)) *
                           0.5,
                       p2[p][j], 1e-15, 0);
        }
    }
    /* d replaces a (the worst): elite {d, b}; 0.03125 falls under the floor 0.05 */
    CHECK_OK(kb_archsearch_adarandom_tell(ar, &d, 3, &err), err);
    static const double p3[2][4] = {{0.05, 0.21875, 0.46875, 0.28125},
                                    {0.21875, 0.28125, 0.05, 0.46875}};
    for (size_t p = 0; p < 2; p++) {
        for (size_t j = 0; j < 4; j++) {
            CHECK_NEAR(kb_archsearch_adarandom_prob(ar, p, j), p3[p][j] / 1.01875, 1e-14, 0);
        }
    }
    kb_archsearch_adarandom_free(ar);
}

/* Softmax of `theta` over the tokens with mask[j] != 0. */
static void masked_softmax(double *pi, const double *theta, const int *mask, size_t n)
{
    double mx = -HUGE_VAL, sum = 0;
    for (size_t j = 0; j < n; j++) {
        mx = mask[j] && theta[j] > mx ? theta[j] : mx;
    }
    for (size_t j = 0; j < n; j++) {
        pi[j] = mask[j] ? exp(theta[j] - mx) : 0;
        sum += pi[j];
    }
    for (size_t j = 0; j < n; j++) {
        pi[j] /= sum;
    }
}

/* theta[p] += lr * A * (onehot(chosen) - pi) over the valid tokens, as the header says. */
static void reinforce_step(double *theta, const int *mask, size_t chosen, double lr, double adv)
{
    double pi[4];
    masked_softmax(pi, theta, mask, 4);
    for (size_t j = 0; j < 4; j++) {
        if (mask[j]) {
            theta[j] += lr * adv * ((j == chosen) - pi[j]);
        }
    }
}

/*
 * The header's REINFORCE rule re-stated on the tiny space (lr 0.5, beta 0.9): the first tell
 * only sets the baseline; END is masked at position 0 (depth_min 1) and sampled at position
 * L < depth_max; the baseline is a moving average.
 */
static void test_archsearch_reinforce_update_is_the_documented_rule(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_archsearch_space s = tiny_space();
    kb_archsearch_reinforce_opts o = KB_ARCHSEARCH_REINFORCE_OPTS_INIT;
    kb_archsearch_reinforce *rl = NULL;
    CHECK_OK(kb_archsearch_reinforce_new(&rl, &s, &o, &err), err);
    if (rl == NULL) {
        return;
    }
    double theta[2][4] = {{0}}, b;
    static const int first[4] = {0, 1, 1, 1}, after_fc[4] = {1, 1, 1, 1};
    kb_net_arch a = arch_of("FC(32)"), bb = arch_of("FC(64)+FC(128)");
    CHECK_OK(kb_archsearch_reinforce_tell(rl, &a, 1, &err), err);
    b = 1;
    CHECK_NEAR(kb_archsearch_reinforce_baseline(rl), b, 1e-15, 0);
    CHECK_NEAR(kb_archsearch_reinforce_prob(rl, 0, 1), 0.25, 1e-15, 0);
    CHECK_OK(kb_archsearch_reinforce_tell(rl, &bb, 2, &err), err);
    reinforce_step(theta[0], first, 2, 0.5, 2 - b);
    reinforce_step(theta[1], after_fc, 3, 0.5, 2 - b);
    b = 0.9 * b + 0.1 * 2;
    CHECK_NEAR(theta[0][2], 1.0 / 3, 1e-15, 0);
    CHECK_NEAR(theta[1][3], 0.375, 1e-15, 0);
    CHECK_OK(kb_archsearch_reinforce_tell(rl, &a, 0.1, &err), err);
    reinforce_step(theta[0], first, 1, 0.5, 0.1 - b);
    reinforce_step(theta[1], after_fc, 0, 0.5, 0.1 - b); /* END at position L = 1 */
    b = 0.9 * b + 0.1 * 0.1;
    CHECK_NEAR(kb_archsearch_reinforce_baseline(rl), b, 1e-15, 0);
    static const int all[4] = {1, 1, 1, 1};
    for (size_t p = 0; p < 2; p++) {
        double pi[4];
        masked_softmax(pi, theta[p], all, 4);
        for (size_t j = 0; j < 4; j++) {
            CHECK_NEAR(kb_archsearch_reinforce_prob(rl, p, j), pi[j], 1e-14, 0);
        }
    }
    kb_archsearch_reinforce_free(rl);
}

/*
 * Before any update both searches draw from the uniform masked distribution with the same
 * rng stream as kb_archsearch_sample, so under one seed their first proposals are uniform
 * random search's (bench_archsearch relies on this to reuse trainings).
 */
static void test_archsearch_first_proposals_are_uniform_samples(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_archsearch_space s = KB_ARCHSEARCH_SPACE_INIT;
    kb_archsearch_adarandom_opts ao = KB_ARCHSEARCH_ADARANDOM_OPTS_INIT;
    kb_archsearch_reinforce_opts ro = KB_ARCHSEARCH_REINFORCE_OPTS_INIT;
    ao.seed = ro.seed = 3;
    kb_archsearch_adarandom *ar = NULL;
    kb_archsearch_reinforce *rl = NULL;
    CHECK_OK(kb_archsearch_adarandom_new(&ar, &s, &ao, &err), err);
    CHECK_OK(kb_archsearch_reinforce_new(&rl, &s, &ro, &err), err);
    kb_rng rng;
    kb_rng_seed(&rng, 3);
    for (size_t t = 0; ar != NULL && rl != NULL && t < ao.n_elite; t++) {
        kb_net_arch u, x, y;
        CHECK_OK(kb_archsearch_sample(&u, &s, &rng, &err), err);
        CHECK_OK(kb_archsearch_adarandom_sample(&x, ar, &err), err);
        CHECK(same_arch(&u, &x));
        CHECK_OK(kb_archsearch_adarandom_tell(ar, &x, (double)t, &err), err);
        if (t == 0) {
            /* REINFORCE's first tell has advantage 0, so its second draw is uniform too */
            CHECK_OK(kb_archsearch_reinforce_sample(&y, rl, &err), err);
            CHECK(same_arch(&u, &y));
            CHECK_OK(kb_archsearch_reinforce_tell(rl, &y, 0.5, &err), err);
        } else if (t == 1) {
            CHECK_OK(kb_archsearch_reinforce_sample(&y, rl, &err), err);
            CHECK(same_arch(&u, &y));
        }
    }
    kb_archsearch_adarandom_free(ar);
    kb_archsearch_reinforce_free(rl);
}

static void run_reinforce(kb_archsearch_reinforce *rl, size_t n, double (*reward)(const kb_net_arch *))
{
    kb_error err = KB_ERROR_INIT;
    for (size_t t = 0; t < n; t++) {
        kb_net_arch a;
        CHECK_OK(kb_archsearch_reinforce_sample(&a, rl, &err), err);
        CHECK_OK(kb_archsearch_reinforce_tell(rl, &a, reward(&a), &err), err);
    }
}

static void test_archsearch_reinforce_concentrates_on_the_best_token(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_archsearch_space s = KB_ARCHSEARCH_SPACE_INIT;
    kb_archsearch_reinforce *rl = NULL;
    kb_archsearch_reinforce_opts o = KB_ARCHSEARCH_REINFORCE_OPTS_INIT;
    o.seed = 5;
    CHECK_OK(kb_archsearch_reinforce_new(&rl, &s, &o, &err), err);
    if (rl == NULL) {
        return;
    }
    CHECK_NEAR(kb_archsearch_reinforce_prob(rl, 0, 3), 1.0 / 12, 1e-12, 0);
    run_reinforce(rl, 600, frac64);
    double mean = 0;
    for (size_t t = 0; t < 200; t++) {
        kb_net_arch a;
        CHECK_OK(kb_archsearch_reinforce_sample(&a, rl, &err), err);
        mean += frac64(&a) / 200;
    }
    CHECK(mean > 0.8);
    double b = kb_archsearch_reinforce_baseline(rl);
    CHECK(b > 0.5 && b <= 1);
    /* tokens 3 = C(3,64), 6 = C(5,64), 10 = FC(64) hold most of position 0 */
    double m = kb_archsearch_reinforce_prob(rl, 0, 3) + kb_archsearch_reinforce_prob(rl, 0, 6) +
               kb_archsearch_reinforce_prob(rl, 0, 10);
    CHECK(m > 0.8);
    kb_archsearch_reinforce_free(rl);
    kb_archsearch_reinforce_free(NULL);
    o.learning_rate = 0;
    CHECK_CODE(kb_archsearch_reinforce_new(&rl, &s, &o, &err), KB_EINVAL);
}

static void test_archsearch_reinforce_checkpoint_round_trip(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_archsearch_space s = KB_ARCHSEARCH_SPACE_INIT;
    kb_archsearch_reinforce *rl = NULL, *back = NULL;
    kb_archsearch_reinforce_opts o = KB_ARCHSEARCH_REINFORCE_OPTS_INIT;
    o.seed = 77;
    o.learning_rate = 0.3;
    CHECK_OK(kb_archsearch_reinforce_new(&rl, &s, &o, &err), err);
    if (rl == NULL) {
        return;
    }
    run_reinforce(rl, 50, frac64);
    kb_buf buf = KB_BUF_INIT;
    CHECK_OK(kb_archsearch_reinforce_save(&buf, rl, &err), err);
    CHECK_OK(kb_archsearch_reinforce_load(&back, &s, buf.data, buf.len, &err), err);
    if (back != NULL) {
        CHECK(kb_archsearch_reinforce_baseline(back) == kb_archsearch_reinforce_baseline(rl));
        /* the restored controller continues exactly as the original */
        size_t differ = 0;
        for (size_t t = 0; t < 30; t++) {
            kb_net_arch x, y;
            CHECK_OK(kb_archsearch_reinforce_sample(&x, rl, &err), err);
            CHECK_OK(kb_archsearch_reinforce_sample(&y, back, &err), err);
            differ += !same_arch(&x, &y);
            CHECK_OK(kb_archsearch_reinforce_tell(rl, &x, frac64(&x), &err), err);
            CHECK_OK(kb_archsearch_reinforce_tell(back, &y, frac64(&y), &err), err);
        }
        CHECK(differ == 0);
        for (size_t p = 0; p < s.depth_max; p++) {
            for (size_t j = 0; j < 12; j++) {
                CHECK(kb_archsearch_reinforce_prob(rl, p, j) ==
                      kb_archsearch_reinforce_prob(back, p, j));
            }
        }
        kb_archsearch_reinforce_free(back);
        back = NULL;
    }
    /* every truncation and a trailing byte are format errors; never a crash */
    for (size_t n = 0; n < buf.len; n++) {
        int rc = kb_archsearch_reinforce_load(&back, &s, buf.data, n, &err);
        CHECK(rc == KB_EFORMAT || rc == KB_EINVAL);
        CHECK(back == NULL);
    }
    CHECK_OK(kb_buf_putc(&buf, 0), err);
    CHECK_CODE(kb_archsearch_reinforce_load(&back, &s, buf.data, buf.len, &err), KB_EFORMAT);
    buf.len--;
    kb_archsearch_space other = s;
    other.conv_filters[2] = 128;
    CHECK_CODE(kb_archsearch_reinforce_load(&back, &other, buf.data, buf.len, &err), KB_EINVAL);
    buf.data[0] = 'X';
    CHECK_CODE(kb_archsearch_reinforce_load(&back, &s, buf.data, buf.len, &err), KB_EFORMAT);
    kb_buf_release(&buf);
    kb_archsearch_reinforce_free(rl);
}

static void test_archsearch_adarandom_checkpoint_round_trip(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_archsearch_space s = KB_ARCHSEARCH_SPACE_INIT;
    kb_archsearch_adarandom *ar = NULL, *back = NULL;
    kb_archsearch_adarandom_opts o = KB_ARCHSEARCH_ADARANDOM_OPTS_INIT;
    o.seed = 31;
    o.n_elite = 5;
    CHECK_OK(kb_archsearch_adarandom_new(&ar, &s, &o, &err), err);
    if (ar == NULL) {
        return;
    }
    for (size_t t = 0; t < 3; t++) { /* a partly filled elite first */
        kb_net_arch a;
        CHECK_OK(kb_archsearch_adarandom_sample(&a, ar, &err), err);
        CHECK_OK(kb_archsearch_adarandom_tell(ar, &a, frac64(&a), &err), err);
    }
    kb_buf part = KB_BUF_INIT, buf = KB_BUF_INIT;
    CHECK_OK(kb_archsearch_adarandom_save(&part, ar, &err), err);
    CHECK_OK(kb_archsearch_adarandom_load(&back, &s, part.data, part.len, &err), err);
    kb_archsearch_adarandom_free(back);
    back = NULL;
    for (size_t t = 0; t < 40; t++) {
        kb_net_arch a;
        CHECK_OK(kb_archsearch_adarandom_sample(&a, ar, &err), err);
        CHECK_OK(kb_archsearch_adarandom_tell(ar, &a, frac64(&a), &err), err);
    }
    CHECK_OK(kb_archsearch_adarandom_save(&buf, ar, &err), err);
    CHECK_OK(kb_archsearch_adarandom_load(&back, &s, buf.data, buf.len, &err), err);
    if (back != NULL) {
        size_t differ = 0;
        for (size_t t = 0; t < 30; t++) {
            kb_net_arch x, y;
            CHECK_OK(kb_archsearch_adarandom_sample(&x, ar, &err), err);
            CHECK_OK(kb_archsearch_adarandom_sample(&y, back, &err), err);
            differ += !same_arch(&x, &y);
            CHECK_OK(kb_archsearch_adarandom_tell(ar, &x, frac64(&x), &err), err);
            CHECK_OK(kb_archsearch_adarandom_tell(back, &y, frac64(&y), &err), err);
        }
        CHECK(differ == 0);
        for (size_t p = 0; p < s.depth_max; p++) {
            for (size_t j = 0; j < 12; j++) {
                CHECK(kb_archsearch_adarandom_prob(ar, p, j) ==
                      kb_archsearch_adarandom_prob(back, p, j));
            }
        }
        kb_archsearch_adarandom_free(back);
        back = NULL;
    }
    for (size_t n = 0; n < buf.len; n++) {
        int rc = kb_archsearch_adarandom_load(&back, &s, buf.data, n, &err);
        CHECK(rc == KB_EFORMAT || rc == KB_EINVAL);
        CHECK(back == NULL);
    }
    kb_archsearch_space other = s;
    other.depth_max = 5;
    CHECK_CODE(kb_archsearch_adarandom_load(&back, &other, buf.data, buf.len, &err), KB_EINVAL);
    /* a REINFORCE state is not an AdaRandom state */
    buf.data[3] = 'L';
    CHECK_CODE(kb_archsearch_adarandom_load(&back, &s, buf.data, buf.len, &err), KB_EFORMAT);
    kb_buf_release(&part);
    kb_buf_release(&buf);
    kb_archsearch_adarandom_free(ar);
}

/* New, learn, save and load both searches; the first error code. */
static int run_all(void)
{
    kb_archsearch_space s = KB_ARCHSEARCH_SPACE_INIT;
    kb_archsearch_adarandom *ar = NULL;
    kb_archsearch_reinforce *rl = NULL, *back = NULL;
    kb_buf buf = KB_BUF_INIT;
    kb_net_arch a;
    int rc = kb_archsearch_adarandom_new(&ar, &s, NULL, NULL);
    rc = rc ? rc : kb_archsearch_reinforce_new(&rl, &s, NULL, NULL);
    for (int i = 0; i < 20 && rc == KB_OK; i++) {
        rc = kb_archsearch_adarandom_sample(&a, ar, NULL);
        rc = rc ? rc : kb_archsearch_adarandom_tell(ar, &a, frac64(&a), NULL);
        rc = rc ? rc : kb_archsearch_reinforce_sample(&a, rl, NULL);
        rc = rc ? rc : kb_archsearch_reinforce_tell(rl, &a, frac64(&a), NULL);
    }
    rc = rc ? rc : kb_archsearch_reinforce_save(&buf, rl, NULL);
    rc = rc ? rc : kb_archsearch_reinforce_load(&back, &s, buf.data, buf.len, NULL);
    kb_archsearch_adarandom *ar_back = NULL;
    kb_buf_reset(&buf);
    rc = rc ? rc : kb_archsearch_adarandom_save(&buf, ar, NULL);
    rc = rc ? rc : kb_archsearch_adarandom_load(&ar_back, &s, buf.data, buf.len, NULL);
    kb_archsearch_adarandom_free(ar_back);
    kb_buf_release(&buf);
    kb_archsearch_reinforce_free(back);
    kb_archsearch_reinforce_free(rl);
    kb_archsearch_adarandom_free(ar);
    return rc;
}

static void test_archsearch_each_failed_allocation_is_enomem_without_leaks(void)
{
    CHECK_ENOMEM_SWEEP(run_all, 1000);
}

int main(void)
{
    test_archsearch_samples_are_valid_for_images_and_tabular();
    test_archsearch_validity_agrees_with_net_on_a_small_map();
    test_archsearch_same_seed_same_architectures();
    test_archsearch_adarandom_concentrates_on_the_best_token();
    test_archsearch_reinforce_concentrates_on_the_best_token();
    test_archsearch_adarandom_update_is_the_documented_rule();
    test_archsearch_reinforce_update_is_the_documented_rule();
    test_archsearch_first_proposals_are_uniform_samples();
    test_archsearch_reinforce_checkpoint_round_trip();
    test_archsearch_adarandom_checkpoint_round_trip();
    test_archsearch_each_failed_allocation_is_enomem_without_leaks();
    return check_exit();
}
