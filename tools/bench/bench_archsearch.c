/*
 * Architecture search on Fashion-MNIST (issue 7): a hand-designed CNN against AdaRandom,
 * REINFORCE (engine/archsearch.h) and, optionally, uniform random search, at the same trial
 * budget, over several tries.
 *
 * Protocol of one try t (everything seeded from t, so a try is one paired comparison):
 *   - train and validation sets: a stratified sample of --n-train and --n-val disjoint images
 *     of the 60,000 training images (seed t); the scaling (/255, then the train sample's mean
 *     and std) is fitted on the train sample;
 *   - test set: a fixed stratified --n-test images of the 10,000 test images (the same in
 *     every try);
 *   - every architecture is trained by kb_net (Adam, lr 0.001, batch 64, relu, xavier,
 *     --epochs epochs, init/shuffle seed t) and scored by its validation accuracy;
 *   - each search (seed t) proposes --budget architectures one at a time and is told each
 *     validation accuracy; its result is the architecture with the best validation accuracy
 *     (the first one on ties) and that architecture's test error;
 *   - the hand-designed net is trained once on the same data with the same seed.
 * Within a try an architecture is trained once and its scores reused when another method (or
 * the same one) proposes it again: the training is deterministic given (arch, data, seed), so
 * this only saves time. AdaRandom and REINFORCE start from the uniform distribution with the
 * same seed, so their first proposals coincide with uniform random search's.
 *
 * Output (stdout): JSON lines, {"kind":"trial",...} per proposal and {"kind":"search",...} per
 * (try, method). Progress on stderr.
 *
 * Usage: bench_archsearch --data DIR [--tries 20] [--first-try 0] [--budget 15]
 *            [--n-train 3000] [--n-val 1000] [--n-test 2000] [--epochs 2]
 *            [--methods hand,adarandom,reinforce,random] [--hand ARCH] [--space default|small|tiny]
 *            [--cost N]
 * --cost N prints the forward multiply-adds per image of N uniform samples of the space and
 * of the hand-designed net, and exits (to size a protocol before running it).
 */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/archsearch.h"
#include "engine/core/alloc.h"
#include "engine/idx.h"
#include "engine/net.h"

#define MAX_CACHE 512
#define MAX_CLASSES 16

typedef struct split {
    float *x_train, *y_train, *x_val, *y_val, *x_test, *y_test;
    size_t n_train, n_val, n_test, dim;
    kb_net_input input;
} split;

typedef struct cached {
    char arch[KB_NET_ARCH_MAX];
    double val_error, test_error, seconds;
} cached;

typedef struct bench {
    const kb_dataset *train, *test;
    const size_t *test_rows;
    split sp;
    size_t epochs;
    uint64_t seed;
    size_t n_cache;
    cached cache[MAX_CACHE];
    size_t n_trained;
} bench;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/*
 * A stratified sample: for each class, `quota(c)` rows (n split as evenly as the classes
 * allow) taken in a seeded random order, skipping the first `skip(c)` of that order, so two
 * calls with the same seed and skip = the first call's quota give disjoint samples.
 */
static int stratified(size_t *rows, size_t n, size_t skip_n, const kb_dataset *d, uint64_t seed,
                      kb_error *err)
{
    size_t K = d->n_classes;
    if (K == 0 || K > MAX_CLASSES) {
        return kb_error_set(err, KB_EINVAL, "stratified: need 1..%d classes", MAX_CLASSES);
    }
    size_t *order = kb_malloc_array(d->n_rows, sizeof *order);
    if (order == NULL) {
        return kb_error_set(err, KB_ENOMEM, "stratified: out of memory");
    }
    for (size_t i = 0; i < d->n_rows; i++) {
        order[i] = i;
    }
    kb_rng rng;
    kb_rng_seed(&rng, seed);
    kb_rng_shuffle(&rng, order, d->n_rows);
    size_t got = 0;
    int rc = KB_OK;
    for (size_t c = 0; c < K; c++) {
        size_t want = n / K + (c < n % K), skip = skip_n / K + (c < skip_n % K), seen = 0;
        for (size_t i = 0; i < d->n_rows && want > 0; i++) {
            if ((size_t)d->y[order[i]] != c) {
                continue;
            }
            if (seen++ < skip) {
                continue;
            }
            rows[got++] = order[i];
            want--;
        }
        if (want > 0) {
            rc = kb_error_set(err, KB_EINVAL, "stratified: class %zu has too few rows", c);
            break;
        }
    }
    kb_free(order);
    return rc;
}

static void split_release(split *sp)
{
    kb_free(sp->x_train);
    kb_free(sp->y_train);
    kb_free(sp->x_val);
    kb_free(sp->y_val);
    kb_free(sp->x_test);
    kb_free(sp->y_test);
    memset(sp, 0, sizeof *sp);
}

static int split_make(split *sp, const kb_dataset *train, const kb_dataset *test,
                      const size_t *test_rows, size_t n_test, size_t n_train, size_t n_val,
                      uint64_t seed, kb_error *err)
{
    kb_net_scaler sc;
    memset(&sc, 0, sizeof sc);
    memset(sp, 0, sizeof *sp);
    size_t *rows = kb_malloc_array(n_train + n_val, sizeof *rows);
    if (rows == NULL) {
        return kb_error_set(err, KB_ENOMEM, "split: out of memory");
    }
    int rc;
    if ((rc = stratified(rows, n_train, 0, train, seed, err)) != KB_OK ||
        (rc = stratified(rows + n_train, n_val, n_train, train, seed, err)) != KB_OK ||
        (rc = kb_net_scaler_fit(&sc, train, rows, n_train, err)) != KB_OK ||
        (rc = kb_net_scaler_apply(&sp->x_train, &sp->y_train, &sc, train, rows, n_train,
                                  err)) != KB_OK ||
        (rc = kb_net_scaler_apply(&sp->x_val, &sp->y_val, &sc, train, rows + n_train, n_val,
                                  err)) != KB_OK ||
        (rc = kb_net_scaler_apply(&sp->x_test, &sp->y_test, &sc, test, test_rows, n_test,
                                  err)) != KB_OK) {
        split_release(sp);
        goto done;
    }
    sp->n_train = n_train;
    sp->n_val = n_val;
    sp->n_test = n_test;
    sp->dim = sc.dim;
    sp->input = kb_net_scaler_input(&sc);
done:
    kb_net_scaler_release(&sc);
    kb_free(rows);
    return rc;
}

/* Train `arch` on the try's data; validation and test error (1 - accuracy). */
static int train_arch(cached *out, bench *b, const kb_net_arch *arch, kb_error *err)
{
    kb_net_opts o = KB_NET_OPTS_INIT;
    o.optimizer = KB_NET_OPTIMIZER_ADAM;
    o.base_lr = 0.001;
    o.batch_size = 64;
    o.epochs = b->epochs;
    o.seed = b->seed;
    kb_net *net = NULL;
    double t0 = now_s();
    int rc = kb_net_new(&net, arch, &b->sp.input, KB_NET_TASK_CLASSIFICATION, 10, &o, err);
    if (rc != KB_OK) {
        return rc;
    }
    kb_net_data tr = {b->sp.n_train, b->sp.dim, b->sp.x_train, b->sp.y_train};
    kb_net_data va = {b->sp.n_val, b->sp.dim, b->sp.x_val, b->sp.y_val};
    kb_net_data te = {b->sp.n_test, b->sp.dim, b->sp.x_test, b->sp.y_test};
    kb_net_result res;
    double loss, acc_val, acc_test;
    if ((rc = kb_net_train(&res, net, &tr, NULL, NULL, NULL, err)) != KB_OK ||
        (rc = kb_net_evaluate(&loss, &acc_val, net, &va, err)) != KB_OK ||
        (rc = kb_net_evaluate(&loss, &acc_test, net, &te, err)) != KB_OK) {
        kb_net_free(net);
        return rc;
    }
    kb_net_free(net);
    /* a diverged net scores as chance would not be honest either: it counts as all wrong */
    out->val_error = res.status == KB_NET_STATUS_OK && isfinite(acc_val) ? 1 - acc_val : 1;
    out->test_error = res.status == KB_NET_STATUS_OK && isfinite(acc_test) ? 1 - acc_test : 1;
    out->seconds = now_s() - t0;
    return KB_OK;
}

/* Scores of `arch` in this try: from the cache, or trained now. *hit tells which. */
static int score(const cached **out, int *hit, bench *b, const kb_net_arch *arch, kb_error *err)
{
    char txt[KB_NET_ARCH_MAX];
    kb_net_arch_format(txt, sizeof txt, arch);
    for (size_t i = 0; i < b->n_cache; i++) {
        if (strcmp(b->cache[i].arch, txt) == 0) {
            *out = &b->cache[i];
            *hit = 1;
            return KB_OK;
        }
    }
    if (b->n_cache == MAX_CACHE) {
        return kb_error_set(err, KB_ENOMEM, "bench: architecture cache full");
    }
    cached *c = &b->cache[b->n_cache];
    int rc = train_arch(c, b, arch, err);
    if (rc != KB_OK) {
        return rc;
    }
    memcpy(c->arch, txt, sizeof txt);
    b->n_cache++;
    b->n_trained++;
    *out = c;
    *hit = 0;
    return KB_OK;
}

typedef enum method { HAND, ADARANDOM, REINFORCE, RANDOM } method;
static const char *method_names[] = {"hand", "adarandom", "reinforce", "random"};

typedef struct searcher {
    method m;
    kb_archsearch_adarandom *ar;
    kb_archsearch_reinforce *rl;
    kb_rng rng;
} searcher;

typedef struct params {
    kb_archsearch_space space;
    kb_archsearch_adarandom_opts ar;
    kb_archsearch_reinforce_opts rl;
    size_t budget;
    kb_net_arch hand;
    char hand_txt[KB_NET_ARCH_MAX];
} params;

static int run_search(bench *b, const params *pr, method m, size_t t, kb_error *err)
{
    searcher s = {m, NULL, NULL, {{0}}};
    kb_archsearch_adarandom_opts ao = pr->ar;
    kb_archsearch_reinforce_opts ro = pr->rl;
    ao.seed = ro.seed = b->seed;
    kb_rng_seed(&s.rng, b->seed);
    int rc = KB_OK;
    if (m == ADARANDOM) {
        rc = kb_archsearch_adarandom_new(&s.ar, &pr->space, &ao, err);
    } else if (m == REINFORCE) {
        rc = kb_archsearch_reinforce_new(&s.rl, &pr->space, &ro, err);
    }
    size_t n = m == HAND ? 1 : pr->budget;
    double best_val = HUGE_VAL, best_test = HUGE_VAL, t0 = now_s();
    char best_arch[KB_NET_ARCH_MAX] = "";
    size_t n_new = 0;
    for (size_t i = 0; i < n && rc == KB_OK; i++) {
        kb_net_arch a;
        if (m == HAND) {
            a = pr->hand;
        } else if (m == ADARANDOM) {
            rc = kb_archsearch_adarandom_sample(&a, s.ar, err);
        } else if (m == REINFORCE) {
            rc = kb_archsearch_reinforce_sample(&a, s.rl, err);
        } else {
            rc = kb_archsearch_sample(&a, &pr->space, &s.rng, err);
        }
        const cached *c = NULL;
        int hit = 0;
        if (rc != KB_OK || (rc = score(&c, &hit, b, &a, err)) != KB_OK) {
            break;
        }
        n_new += !hit;
        /* the reward is the validation accuracy, larger is better */
        if (m == ADARANDOM) {
            rc = kb_archsearch_adarandom_tell(s.ar, &a, 1 - c->val_error, err);
        } else if (m == REINFORCE) {
            rc = kb_archsearch_reinforce_tell(s.rl, &a, 1 - c->val_error, err);
        }
        if (c->val_error < best_val) {
            best_val = c->val_error;
            best_test = c->test_error;
            memcpy(best_arch, c->arch, sizeof best_arch);
        }
        printf("{\"kind\":\"trial\",\"try\":%zu,\"method\":\"%s\",\"trial\":%zu,\"arch\":\"%s\","
               "\"val_error\":%.6f,\"test_error\":%.6f,\"seconds\":%.3f,\"cached\":%s,"
               "\"best_val_error\":%.6f,\"best_test_error\":%.6f}\n",
               t, method_names[m], i + 1, c->arch, c->val_error, c->test_error, c->seconds,
               hit ? "true" : "false", best_val, best_test);
        fflush(stdout);
    }
    if (rc == KB_OK) {
        printf("{\"kind\":\"search\",\"try\":%zu,\"method\":\"%s\",\"n_trials\":%zu,"
               "\"n_trained\":%zu,\"arch\":\"%s\",\"val_error\":%.6f,\"test_error\":%.6f,"
               "\"seconds\":%.3f}\n",
               t, method_names[m], n, n_new, best_arch, best_val, best_test, now_s() - t0);
        fflush(stdout);
        fprintf(stderr, "try %zu %-9s best %s val %.4f test %.4f (%zu trained, %.0f s)\n", t,
                method_names[m], best_arch, best_val, best_test, n_new, now_s() - t0);
    }
    kb_archsearch_adarandom_free(s.ar);
    kb_archsearch_reinforce_free(s.rl);
    return rc;
}

/* Forward multiply-adds per image of `arch` on a 1 x h x w input, 10 outputs. */
static double arch_macs(const kb_net_arch *a, size_t h, size_t w)
{
    double macs = 0;
    size_t c = 1, in = 0;
    for (size_t i = 0; i < a->n_layers; i++) {
        const kb_net_layer_spec *l = &a->layers[i];
        if (l->kind == KB_NET_LAYER_CONV) {
            macs += (double)(h * w * l->k * l->k * c * l->n);
            c = l->n;
        } else if (l->kind == KB_NET_LAYER_POOL) {
            h = h <= l->k ? 1 : (h - l->k + l->n - 1) / l->n + 1;
            w = w <= l->k ? 1 : (w - l->k + l->n - 1) / l->n + 1;
        } else {
            in = in ? in : h * w * c;
            macs += (double)(in * l->n);
            in = l->n;
        }
    }
    return macs + (double)((in ? in : h * w * c) * 10);
}

static int print_cost(const params *pr, size_t n, kb_error *err)
{
    kb_rng rng;
    kb_rng_seed(&rng, 1);
    double *m = kb_malloc_array(n, sizeof *m);
    if (m == NULL) {
        return kb_error_set(err, KB_ENOMEM, "cost: out of memory");
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        kb_net_arch a;
        int rc = kb_archsearch_sample(&a, &pr->space, &rng, err);
        if (rc != KB_OK) {
            kb_free(m);
            return rc;
        }
        m[i] = arch_macs(&a, pr->space.height, pr->space.width);
        sum += m[i];
    }
    size_t above = 0;
    double hand = arch_macs(&pr->hand, pr->space.height, pr->space.width);
    for (size_t i = 0; i < n; i++) {
        above += m[i] > 4 * hand;
    }
    printf("hand %s: %.3g MMAC/image; uniform samples of the space: mean %.3g MMAC/image, "
           "%zu of %zu above 4x the hand net\n",
           pr->hand_txt, hand / 1e6, sum / (double)n / 1e6, above, n);
    kb_free(m);
    return KB_OK;
}

static int parse_methods(int *on, const char *s)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok != NULL; tok = strtok(NULL, ",")) {
        size_t k = 0;
        while (k < 4 && strcmp(tok, method_names[k]) != 0) {
            k++;
        }
        if (k == 4) {
            return -1;
        }
        on[k] = 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *data = NULL, *methods = "hand,adarandom,reinforce", *space_name = "tiny";
    const char *hand = "C(3,32)+P(2,2)+C(3,64)+P(2,2)+FC(64)";
    size_t tries = 20, first = 0, n_train = 3000, n_val = 1000, n_test = 2000, epochs = 2;
    size_t cost = 0;
    params pr;
    memset(&pr, 0, sizeof pr);
    pr.budget = 15;
    kb_archsearch_adarandom_opts ao = KB_ARCHSEARCH_ADARANDOM_OPTS_INIT;
    kb_archsearch_reinforce_opts ro = KB_ARCHSEARCH_REINFORCE_OPTS_INIT;
    /*
     * Settings for a 15-trial budget: AdaRandom adapts once its elite is full, so an elite of
     * 5 (not 10) leaves 10 adaptive proposals; REINFORCE's rewards are accuracies in [0, 1]
     * whose spread is a few hundredths, so the default lr 0.5 would move a logit by ~0.01 per
     * tell: lr 5 moves the chosen token's logit by ~0.25 for a 5-point advantage.
     */
    ao.n_elite = 5;
    ao.alpha = 0.2;
    ro.learning_rate = 5;
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},    {"tries", required_argument, NULL, 't'},
        {"first-try", required_argument, NULL, 'f'}, {"budget", required_argument, NULL, 'b'},
        {"n-train", required_argument, NULL, 'n'}, {"n-val", required_argument, NULL, 'v'},
        {"n-test", required_argument, NULL, 'T'},  {"epochs", required_argument, NULL, 'e'},
        {"methods", required_argument, NULL, 'm'}, {"hand", required_argument, NULL, 'H'},
        {"space", required_argument, NULL, 's'},   {"cost", required_argument, NULL, 'c'},
        {"elite", required_argument, NULL, 'E'},   {"alpha", required_argument, NULL, 'a'},
        {"rl-lr", required_argument, NULL, 'l'},   {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'd': data = optarg; break;
        case 't': tries = strtoul(optarg, NULL, 10); break;
        case 'f': first = strtoul(optarg, NULL, 10); break;
        case 'b': pr.budget = strtoul(optarg, NULL, 10); break;
        case 'n': n_train = strtoul(optarg, NULL, 10); break;
        case 'v': n_val = strtoul(optarg, NULL, 10); break;
        case 'T': n_test = strtoul(optarg, NULL, 10); break;
        case 'e': epochs = strtoul(optarg, NULL, 10); break;
        case 'm': methods = optarg; break;
        case 'H': hand = optarg; break;
        case 's': space_name = optarg; break;
        case 'c': cost = strtoul(optarg, NULL, 10); break;
        case 'E': ao.n_elite = strtoul(optarg, NULL, 10); break;
        case 'a': ao.alpha = strtod(optarg, NULL); break;
        case 'l': ro.learning_rate = strtod(optarg, NULL); break;
        default: return 2;
        }
    }
    int on[4] = {0, 0, 0, 0};
    if ((data == NULL && cost == 0) || parse_methods(on, methods) != 0 || pr.budget == 0 ||
        epochs == 0 || n_train == 0 || n_val == 0 || n_test == 0 || tries == 0) {
        fprintf(stderr, "usage: bench_archsearch --data DIR [--tries N] [--first-try I] "
                        "[--budget B] [--n-train N] [--n-val N] [--n-test N] [--epochs E] "
                        "[--methods hand,adarandom,reinforce,random] [--hand ARCH] "
                        "[--space default|small|tiny] [--cost N]\n");
        return 2;
    }
    pr.ar = ao;
    pr.rl = ro;
    kb_archsearch_space def = KB_ARCHSEARCH_SPACE_INIT;
    pr.space = def;
    if (strcmp(space_name, "small") == 0) {
        /*
         * The default space's filters (16|32|64) at 28x28 with up to 6 layers cost up to
         * ~50x the hand net per image; on a shared 2-core machine the bench trims the widest
         * choice: filters 8|16|32 with kernels 3|5, at most 5 hidden layers.
         */
        kb_archsearch_space sm = {KB_ARCHSEARCH_SPACE_VERSION, 1, 28, 28, 1, 5, 2, {3, 5}, 3,
                                  {8, 16, 32}, 2, {2, 3}, 1, {2}, 3, {32, 64, 128}};
        pr.space = sm;
    } else if (strcmp(space_name, "tiny") == 0) {
        /* the same choices with filters 4|8|16 and at most 4 hidden layers */
        kb_archsearch_space ti = {KB_ARCHSEARCH_SPACE_VERSION, 1, 28, 28, 1, 4, 2, {3, 5}, 3,
                                  {4, 8, 16}, 2, {2, 3}, 1, {2}, 3, {32, 64, 128}};
        pr.space = ti;
    } else if (strcmp(space_name, "default") != 0) {
        fprintf(stderr, "bench_archsearch: --space: expected default, small or tiny\n");
        return 2;
    }
    kb_error err = {0};
    if (kb_net_arch_parse(&pr.hand, hand, &err) != KB_OK) {
        fprintf(stderr, "bench_archsearch: --hand: %s\n", err.msg);
        return 2;
    }
    kb_net_arch_format(pr.hand_txt, sizeof pr.hand_txt, &pr.hand);
    if (cost > 0) {
        if (print_cost(&pr, cost, &err) != KB_OK) {
            fprintf(stderr, "bench_archsearch: %s\n", err.msg);
            return 1;
        }
        return 0;
    }

    kb_dataset train, test;
    memset(&train, 0, sizeof train);
    memset(&test, 0, sizeof test);
    size_t *test_rows = NULL;
    int rc = KB_OK, status = 1;
    char p1[1024], p2[1024];
    snprintf(p1, sizeof p1, "%s/train-images-idx3-ubyte.gz", data);
    snprintf(p2, sizeof p2, "%s/t10k-images-idx3-ubyte.gz", data);
    if ((rc = kb_idx_read(&train, p1, NULL, NULL, &err)) != KB_OK ||
        (rc = kb_idx_read(&test, p2, NULL, NULL, &err)) != KB_OK) {
        goto done;
    }
    test_rows = kb_malloc_array(n_test, sizeof *test_rows);
    if (test_rows == NULL) {
        rc = kb_error_set(&err, KB_ENOMEM, "out of memory");
        goto done;
    }
    /* the test subset is fixed across tries: its own seed, independent of the try seeds */
    if ((rc = stratified(test_rows, n_test, 0, &test, UINT64_C(0x7e57), &err)) != KB_OK) {
        goto done;
    }
    printf("{\"kind\":\"protocol\",\"n_train\":%zu,\"n_val\":%zu,\"n_test\":%zu,\"epochs\":%zu,"
           "\"budget\":%zu,\"space\":\"%s\",\"hand\":\"%s\",\"adarandom_elite\":%zu,"
           "\"adarandom_alpha\":%g,\"adarandom_p_min\":%g,\"reinforce_lr\":%g,"
           "\"reinforce_baseline_decay\":%g,\"optimizer\":\"adam\",\"base_lr\":0.001,"
           "\"batch_size\":64}\n",
           n_train, n_val, n_test, epochs, pr.budget, space_name, pr.hand_txt, ao.n_elite,
           ao.alpha, ao.p_min, ro.learning_rate, ro.baseline_decay);
    fflush(stdout);
    for (size_t t = first; t < first + tries && rc == KB_OK; t++) {
        bench *b = kb_calloc(1, sizeof *b);
        if (b == NULL) {
            rc = kb_error_set(&err, KB_ENOMEM, "out of memory");
            break;
        }
        b->train = &train;
        b->test = &test;
        b->test_rows = test_rows;
        b->epochs = epochs;
        b->seed = (uint64_t)t + 1;
        rc = split_make(&b->sp, &train, &test, test_rows, n_test, n_train, n_val, b->seed, &err);
        for (int m = 0; m < 4 && rc == KB_OK; m++) {
            if (on[m]) {
                rc = run_search(b, &pr, (method)m, t, &err);
            }
        }
        split_release(&b->sp);
        kb_free(b);
    }
    status = rc == KB_OK ? 0 : 1;
done:
    if (rc != KB_OK) {
        fprintf(stderr, "bench_archsearch: %s\n", err.msg);
    }
    kb_free(test_rows);
    kb_dataset_release(&train);
    kb_dataset_release(&test);
    return status;
}
