/*
 * Hyperband and BOHB against plain GP-BO (and random search) at equal budgets on a real
 * multi-fidelity problem (issue 7): an MLP (kb_net, Adam) on a bundled tabular dataset, with
 * the training epochs as the resource.
 *
 * Per seed s: a stratified 70/30 train/validation split of the dataset (seed s); every method
 * gets the same budget in epochs, one Hyperband pass (R = --max-epochs, eta = --eta, minimum
 * 1 epoch; engine/hyperband.h's plan). Jobs train from scratch (the scheduler's resume_from is
 * not used), so a promoted trial pays its full resource again: Hyperband's cost is counted
 * conservatively. GP-BO (kb_bo_suggest, GP + EI, 3 shared random initial points, no warm
 * start) and random search run every configuration for R epochs until the budget is spent.
 * BOHB is Hyperband with kb_bohb_sample (TPE on the largest budget with enough results).
 *
 * The space (6 parameters): base_lr log [1e-4, 0.3], weight_decay log [1e-7, 1e-2],
 * batch_size int log [16, 256], layers int [1, 3], units int log [16, 256], dropout [0, 0.5].
 * The objective is the validation error (minimised). After every job a line
 *     method,seed,epochs_so_far,seconds_so_far,incumbent_error,evaluated_error,resource
 * is printed (CSV); the incumbent is the best error at full resource for GP/random and
 * kb_hyperband_best (the best at the largest resource reached so far) for Hyperband/BOHB.
 *
 * Usage: bench_multifidelity --data FILE.csv[.gz] [--seeds N] [--first-seed S]
 *            [--max-epochs 27] [--eta 3] [--methods hyperband,bohb,gp,random]
 */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/bo.h"
#include "engine/bohb.h"
#include "engine/core/alloc.h"
#include "engine/encode.h"
#include "engine/hyperband.h"
#include "engine/net.h"

#define N_PARAMS 6
#define MAX_EVALS 4096

typedef struct problem {
    float *x_tr, *y_tr, *x_va, *y_va;
    size_t n_tr, n_va, dim, n_classes;
    kb_net_input input;
    kb_net_task task;
} problem;

typedef struct runner {
    const problem *pb;
    const kb_encode *enc;
    const char *method;
    uint64_t seed;
    double epochs, t0, incumbent;
} runner;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double param(const kb_param *p, size_t n, const char *name)
{
    const kb_param *q = kb_params_find(p, n, name);
    return q != NULL ? kb_value_as_double(&q->value) : NAN;
}

/* Train configuration u for `epochs` epochs from scratch; validation error (1 if diverged). */
static int evaluate(double *err_out, runner *r, const double *u, double epochs, kb_error *err)
{
    kb_param *cfg = NULL;
    size_t n_cfg = 0;
    int rc = kb_encode_decode(&cfg, &n_cfg, r->enc, u, err);
    if (rc != KB_OK) {
        return rc;
    }
    kb_net_opts o = KB_NET_OPTS_INIT;
    o.optimizer = KB_NET_OPTIMIZER_ADAM;
    o.base_lr = param(cfg, n_cfg, "base_lr");
    o.weight_decay = param(cfg, n_cfg, "weight_decay");
    o.batch_size = (size_t)param(cfg, n_cfg, "batch_size");
    o.dropout = param(cfg, n_cfg, "dropout");
    o.epochs = (size_t)lround(epochs);
    o.seed = r->seed;
    kb_net_arch arch;
    memset(&arch, 0, sizeof arch);
    arch.n_layers = (size_t)param(cfg, n_cfg, "layers");
    for (size_t l = 0; l < arch.n_layers; l++) {
        arch.layers[l] = (kb_net_layer_spec){KB_NET_LAYER_FC, 0,
                                             (size_t)param(cfg, n_cfg, "units")};
    }
    kb_params_free(cfg, n_cfg);
    kb_net *net = NULL;
    const problem *pb = r->pb;
    rc = kb_net_new(&net, &arch, &pb->input, pb->task, pb->n_classes, &o, err);
    if (rc != KB_OK) {
        return rc;
    }
    kb_net_data tr = {pb->n_tr, pb->dim, pb->x_tr, pb->y_tr};
    kb_net_data va = {pb->n_va, pb->dim, pb->x_va, pb->y_va};
    kb_net_result res;
    double loss, acc;
    rc = kb_net_train(&res, net, &tr, NULL, NULL, NULL, err);
    if (rc == KB_OK) {
        rc = kb_net_evaluate(&loss, &acc, net, &va, err);
    }
    kb_net_free(net);
    *err_out = rc == KB_OK && res.status == KB_NET_STATUS_OK && isfinite(acc) ? 1 - acc : 1;
    r->epochs += epochs;
    return rc;
}

static void emit(const runner *r, double y, double resource)
{
    printf("%s,%llu,%.0f,%.3f,%.6f,%.6f,%.0f\n", r->method, (unsigned long long)r->seed,
           r->epochs, now_s() - r->t0, r->incumbent, y, resource);
    fflush(stdout);
}

static int run_hyperband(runner *r, const kb_hyperband_plan *plan, int bohb, kb_error *err)
{
    kb_bohb_sampler bs;
    kb_bohb_sampler_init(&bs, r->enc, 0);
    kb_hyperband_opts o = KB_HYPERBAND_OPTS_INIT;
    o.model_based = bohb;
    o.seed = r->seed;
    kb_hyperband *hb = NULL;
    int rc = kb_hyperband_new(&hb, plan, N_PARAMS, bohb ? kb_bohb_sample : NULL, &bs, &o, err);
    while (rc == KB_OK) {
        kb_hyperband_job j;
        if ((rc = kb_hyperband_get_job(&j, hb, err)) != KB_OK || j.status != KB_HYPERBAND_JOB_RUN) {
            break;
        }
        double u[N_PARAMS], y;
        memcpy(u, kb_hyperband_trial_config(hb, j.trial), sizeof u);
        if ((rc = evaluate(&y, r, u, j.resource, err)) != KB_OK ||
            (rc = kb_hyperband_report(hb, j.trial, y, err)) != KB_OK) {
            break;
        }
        size_t best;
        double by, bres;
        if (kb_hyperband_best(&best, &by, &bres, hb, NULL) == KB_OK) {
            r->incumbent = by;
        }
        emit(r, y, j.resource);
    }
    kb_hyperband_free(hb);
    return rc;
}

/* GP-BO or random search at full resource until `budget` epochs are spent. */
static int run_full(runner *r, kb_bo_method method, double max_epochs, double budget,
                    kb_error *err)
{
    size_t n_max = (size_t)(budget / max_epochs);
    double *u = kb_malloc_array(n_max * N_PARAMS + 1, sizeof *u);
    double *y = kb_malloc_array(n_max + 1, sizeof *y);
    int rc = u != NULL && y != NULL ? KB_OK : kb_error_set(err, KB_ENOMEM, "out of memory");
    kb_bo_opts o = KB_BO_OPTS_INIT;
    o.method = method;
    o.warm = KB_BO_WARM_NONE;
    o.seed = r->seed;
    for (size_t n = 0; n < n_max && rc == KB_OK; n++) {
        /* the observations are n x P column-major with ld = n_max */
        kb_bo_problem prob = {r->enc, u, n_max, n, y, NULL, 0, 0, NULL, NULL};
        double next[N_PARAMS];
        if ((rc = kb_bo_suggest(next, NULL, &prob, &o, err)) != KB_OK) {
            break;
        }
        for (size_t k = 0; k < N_PARAMS; k++) {
            u[n + k * n_max] = next[k];
        }
        if ((rc = evaluate(&y[n], r, next, max_epochs, err)) != KB_OK) {
            break;
        }
        r->incumbent = fmin(r->incumbent, y[n]);
        emit(r, y[n], max_epochs);
    }
    kb_free(u);
    kb_free(y);
    return rc;
}

static int make_space(kb_encode **out, kb_error *err)
{
    static kb_space_param p[N_PARAMS];
    p[0] = (kb_space_param){.name = "base_lr", .type = KB_SPACE_PARAM_FLOAT, .low = 1e-4,
                            .high = 0.3, .log = 1};
    p[1] = (kb_space_param){.name = "weight_decay", .type = KB_SPACE_PARAM_FLOAT, .low = 1e-7,
                            .high = 1e-2, .log = 1};
    p[2] = (kb_space_param){.name = "batch_size", .type = KB_SPACE_PARAM_INT, .low = 16,
                            .high = 256, .log = 1};
    p[3] = (kb_space_param){.name = "layers", .type = KB_SPACE_PARAM_INT, .low = 1, .high = 3};
    p[4] = (kb_space_param){.name = "units", .type = KB_SPACE_PARAM_INT, .low = 16, .high = 256,
                            .log = 1};
    p[5] = (kb_space_param){.name = "dropout", .type = KB_SPACE_PARAM_FLOAT, .low = 0,
                            .high = 0.5};
    kb_space s = {.name = "mlp_mf", .params = p, .n_params = N_PARAMS};
    return kb_encode_new(out, &s, err);
}

static void problem_release(problem *pb)
{
    kb_free(pb->x_tr);
    kb_free(pb->y_tr);
    kb_free(pb->x_va);
    kb_free(pb->y_va);
    memset(pb, 0, sizeof *pb);
}

/* A stratified 70/30 split of `d` (seeded), scaled on the training part. */
static int problem_make(problem *pb, const kb_dataset *d, uint64_t seed, kb_error *err)
{
    memset(pb, 0, sizeof *pb);
    size_t n = d->n_rows, *rows = kb_malloc_array(n, sizeof *rows);
    if (rows == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        rows[i] = i;
    }
    kb_rng rng;
    kb_rng_seed(&rng, seed);
    kb_rng_shuffle(&rng, rows, n);
    /* stable partition by class keeps the shuffled order inside each class; every class's
     * first 70% go to training */
    size_t n_tr = 0, *tr = kb_malloc_array(n, sizeof *tr), *va = kb_malloc_array(n, sizeof *va);
    size_t n_va = 0;
    int rc = tr != NULL && va != NULL ? KB_OK : kb_error_set(err, KB_ENOMEM, "out of memory");
    for (size_t c = 0; c < d->n_classes && rc == KB_OK; c++) {
        size_t n_c = 0, k = 0;
        for (size_t i = 0; i < n; i++) {
            n_c += (size_t)d->y[rows[i]] == c;
        }
        for (size_t i = 0; i < n; i++) {
            if ((size_t)d->y[rows[i]] == c) {
                if (10 * k++ < 7 * n_c) {
                    tr[n_tr++] = rows[i];
                } else {
                    va[n_va++] = rows[i];
                }
            }
        }
    }
    kb_net_scaler sc;
    memset(&sc, 0, sizeof sc);
    if (rc == KB_OK && (rc = kb_net_scaler_fit(&sc, d, tr, n_tr, err)) == KB_OK &&
        (rc = kb_net_scaler_apply(&pb->x_tr, &pb->y_tr, &sc, d, tr, n_tr, err)) == KB_OK &&
        (rc = kb_net_scaler_apply(&pb->x_va, &pb->y_va, &sc, d, va, n_va, err)) == KB_OK) {
        pb->n_tr = n_tr;
        pb->n_va = n_va;
        pb->dim = sc.dim;
        pb->n_classes = d->n_classes;
        pb->input = kb_net_scaler_input(&sc);
        pb->task = KB_NET_TASK_CLASSIFICATION;
    } else {
        problem_release(pb);
    }
    kb_net_scaler_release(&sc);
    kb_free(rows);
    kb_free(tr);
    kb_free(va);
    return rc;
}

int main(int argc, char **argv)
{
    const char *data = NULL, *methods = "hyperband,bohb,gp,random";
    size_t seeds = 10, first = 0;
    double max_epochs = 27, eta = 3;
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},      {"seeds", required_argument, NULL, 's'},
        {"first-seed", required_argument, NULL, 'f'}, {"max-epochs", required_argument, NULL, 'R'},
        {"eta", required_argument, NULL, 'e'},       {"methods", required_argument, NULL, 'm'},
        {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'd': data = optarg; break;
        case 's': seeds = strtoul(optarg, NULL, 10); break;
        case 'f': first = strtoul(optarg, NULL, 10); break;
        case 'R': max_epochs = strtod(optarg, NULL); break;
        case 'e': eta = strtod(optarg, NULL); break;
        case 'm': methods = optarg; break;
        default: return 2;
        }
    }
    if (data == NULL || !(max_epochs >= 1) || !(eta > 1)) {
        fprintf(stderr, "usage: bench_multifidelity --data FILE.csv[.gz] [--seeds N] "
                        "[--first-seed S] [--max-epochs R] [--eta ETA] "
                        "[--methods hyperband,bohb,gp,random]\n");
        return 2;
    }
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    memset(&d, 0, sizeof d);
    kb_encode *enc = NULL;
    kb_hyperband_plan plan;
    int rc;
    if ((rc = kb_dataset_read(&d, data, NULL, &err)) != KB_OK ||
        (rc = make_space(&enc, &err)) != KB_OK ||
        (rc = kb_hyperband_plan_make(&plan, max_epochs, eta, &err)) != KB_OK) {
        goto done;
    }
    if (d.task != KB_DATASET_TASK_CLASSIFICATION) {
        rc = kb_error_set(&err, KB_EINVAL, "'%s': a classification dataset is needed", data);
        goto done;
    }
    double budget = 0;
    for (size_t b = 0; b < plan.n_brackets; b++) {
        for (size_t i = 0; i < plan.brackets[b].n_rungs; i++) {
            budget += (double)plan.brackets[b].rungs[i].n_configs *
                      plan.brackets[b].rungs[i].resource;
        }
    }
    printf("# %s: %zu rows; budget %.0f epochs per method and seed (one Hyperband pass, R %g, "
           "eta %g)\n", data, d.n_rows, budget, max_epochs, eta);
    printf("method,seed,epochs,seconds,incumbent_error,error,resource\n");
    for (size_t s = first; s < first + seeds && rc == KB_OK; s++) {
        problem pb;
        if ((rc = problem_make(&pb, &d, (uint64_t)s + 1, &err)) != KB_OK) {
            break;
        }
        static const char *names[] = {"hyperband", "bohb", "gp", "random"};
        for (size_t m = 0; m < 4 && rc == KB_OK; m++) {
            if (strstr(methods, names[m]) == NULL) {
                continue;
            }
            runner r = {&pb, enc, names[m], (uint64_t)s + 1, 0, now_s(), 1};
            rc = m < 2 ? run_hyperband(&r, &plan, m == 1, &err)
                       : run_full(&r, m == 2 ? KB_BO_METHOD_GP : KB_BO_METHOD_RANDOM,
                                  max_epochs, budget, &err);
            fprintf(stderr, "seed %zu %-9s incumbent %.4f after %.0f epochs, %.0f s\n", s,
                    names[m], r.incumbent, r.epochs, now_s() - r.t0);
        }
        problem_release(&pb);
    }
done:
    if (rc != KB_OK) {
        fprintf(stderr, "bench_multifidelity: %s\n", err.msg);
    }
    kb_encode_free(enc);
    kb_dataset_release(&d);
    return rc == KB_OK ? 0 : 1;
}
