/*
 * Speed of one GP suggestion: fit (Matern 5/2 ARD, hyperparameters by marginal likelihood,
 * --restarts random restarts) on n points in d dimensions, then expected improvement on m
 * random candidates. Prints "n,seconds_fit,seconds_acq,lml,n_evals". Peer: gp_peer.py
 * (scikit-learn), run by gp.sh in the same command.
 * Usage: bench_gp N [D] [RESTARTS] [M]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "engine/acq.h"
#include "engine/core/rng.h"
#include "engine/gp.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_gp N [D] [RESTARTS] [M]\n");
        return 2;
    }
    size_t n = (size_t)atol(argv[1]), d = argc > 2 ? (size_t)atol(argv[2]) : 8;
    size_t restarts = argc > 3 ? (size_t)atol(argv[3]) : 0, m = argc > 4 ? (size_t)atol(argv[4]) : 1000;
    double *x = malloc(n * d * sizeof(double)), *y = malloc(n * sizeof(double));
    double *xs = malloc(m * d * sizeof(double)), *mu = malloc(m * sizeof(double));
    double *var = malloc(m * sizeof(double)), *ei = malloc(m * sizeof(double));
    kb_rng rng;
    kb_rng_seed(&rng, 1);
    /* the same data as gp_peer.py: a smooth function of the first coordinates plus noise */
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t k = 0; k < d; k++) {
            x[i + k * n] = kb_rng_uniform(&rng);
            s += sin(3.0 * x[i + k * n] * (double)(k + 1)) / (double)(k + 1);
        }
        y[i] = s + 0.1 * kb_rng_normal(&rng);
    }
    for (size_t i = 0; i < m * d; i++) {
        xs[i] = kb_rng_uniform(&rng);
    }
    kb_gp_opts o = KB_GP_OPTS_INIT;
    /* scikit-learn's default bounds and start: l, sf2, sn2 in [1e-5, 1e5], all 1 */
    o.log_ls_min = o.log_sf2_min = o.log_sn2_min = log(1e-5);
    o.log_ls_max = o.log_sf2_max = o.log_sn2_max = log(1e5);
    double theta0[66];
    for (size_t k = 0; k < d + 2; k++) {
        theta0[k] = 0.0;
    }
    o.theta_init = theta0;
    o.n_restarts = restarts;
    o.max_iter = 15000;
    kb_gp *gp = NULL;
    kb_gp_fit_info info;
    kb_error err = KB_ERROR_INIT;
    double t0 = now();
    if (kb_gp_fit(&gp, x, n, n, d, y, &o, &info, &err) != KB_OK) {
        fprintf(stderr, "bench_gp: %s\n", err.msg);
        return 1;
    }
    double t1 = now();
    double tau = INFINITY;
    for (size_t i = 0; i < n; i++) {
        tau = fmin(tau, y[i]);
    }
    if (kb_gp_predict(mu, var, gp, xs, m, m, &err) != KB_OK) {
        fprintf(stderr, "bench_gp: %s\n", err.msg);
        return 1;
    }
    kb_acq_eval(ei, KB_ACQ_KIND_EI, mu, var, m, tau, 0.0);
    double t2 = now();
    printf("%zu,%.4f,%.4f,%.4f,%zu\n", n, t1 - t0, t2 - t1, info.lml, info.n_evals);
    kb_gp_free(gp);
    free(x);
    free(y);
    free(xs);
    free(mu);
    free(var);
    free(ei);
    return 0;
}
