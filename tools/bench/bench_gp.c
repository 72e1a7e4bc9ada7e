/*
 * Speed of one GP suggestion: fit (Matern 5/2 ARD, hyperparameters by marginal likelihood,
 * RESTARTS random restarts, scikit-learn's bounds and start) on n points in d dimensions, then
 * expected improvement on m random candidates. Writes the data (train, candidates, a held-out
 * test set of 1,000 points) to DATA so that the peer (gp_peer.py, run by gp.sh in the same
 * command) fits exactly the same numbers. Prints
 * "n,fit_s,fit_cpu_s,acq_s,lml,n_evals,n_grads,test_lpd" (test_lpd: mean log predictive
 * density of the held-out points, noise included: the quality check).
 * Usage: bench_gp N D RESTARTS M DATA [N_SUBSET]   (N_SUBSET: kb_gp_opts.n_subset, 0 = off)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "engine/acq.h"
#include "engine/core/rng.h"
#include "engine/gp.h"

#define N_TEST 1000

static double now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A smooth function of every coordinate, weaker for later ones, plus noise. */
static void make_points(double *x, double *y, size_t n, size_t d, kb_rng *rng)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t k = 0; k < d; k++) {
            x[i + k * n] = kb_rng_uniform(rng);
            s += sin(3.0 * x[i + k * n] * (double)(k + 1)) / (double)(k + 1);
        }
        y[i] = s + 0.1 * kb_rng_normal(rng);
    }
}

static void write_points(FILE *f, const char *set, const double *x, const double *y, size_t n,
                         size_t d)
{
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s", set);
        for (size_t k = 0; k < d; k++) {
            fprintf(f, ",%.17g", x[i + k * n]);
        }
        fprintf(f, ",%.17g\n", y[i]);
    }
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: bench_gp N D RESTARTS M DATA [N_SUBSET]\n");
        return 2;
    }
    size_t n = (size_t)atol(argv[1]), d = (size_t)atol(argv[2]);
    size_t restarts = (size_t)atol(argv[3]), m = (size_t)atol(argv[4]);
    if (d == 0 || d > 64) {
        fprintf(stderr, "bench_gp: D must be 1..64\n");
        return 2;
    }
    double *x = malloc(n * d * sizeof(double)), *y = malloc(n * sizeof(double));
    double *xs = malloc(m * d * sizeof(double)), *ys = malloc(m * sizeof(double));
    double *xt = malloc(N_TEST * d * sizeof(double)), *yt = malloc(N_TEST * sizeof(double));
    double *mu = malloc((m + N_TEST) * sizeof(double)), *var = malloc((m + N_TEST) * sizeof(double));
    double *ei = malloc(m * sizeof(double));
    if (x == NULL || y == NULL || xs == NULL || ys == NULL || xt == NULL || yt == NULL ||
        mu == NULL || var == NULL || ei == NULL) {
        fprintf(stderr, "bench_gp: out of memory\n");
        return 1;
    }
    kb_rng rng;
    kb_rng_seed(&rng, 1);
    make_points(x, y, n, d, &rng);
    make_points(xs, ys, m, d, &rng);
    make_points(xt, yt, N_TEST, d, &rng);
    FILE *f = fopen(argv[5], "w");
    if (f == NULL) {
        fprintf(stderr, "bench_gp: cannot write %s\n", argv[5]);
        return 1;
    }
    write_points(f, "train", x, y, n, d);
    write_points(f, "cand", xs, ys, m, d);
    write_points(f, "test", xt, yt, N_TEST, d);
    if (fclose(f) != 0) {
        fprintf(stderr, "bench_gp: cannot write %s\n", argv[5]);
        return 1;
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
    if (argc > 6) {
        o.n_subset = (size_t)atol(argv[6]);
    }
    kb_gp *gp = NULL;
    kb_gp_fit_info info;
    kb_error err = KB_ERROR_INIT;
    double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    if (kb_gp_fit(&gp, x, n, n, d, y, &o, &info, &err) != KB_OK) {
        fprintf(stderr, "bench_gp: %s\n", err.msg);
        return 1;
    }
    double t1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_PROCESS_CPUTIME_ID);
    double tau = INFINITY;
    for (size_t i = 0; i < n; i++) {
        tau = fmin(tau, y[i]);
    }
    if (kb_gp_predict(mu, var, gp, xs, m, m, &err) != KB_OK) {
        fprintf(stderr, "bench_gp: %s\n", err.msg);
        return 1;
    }
    kb_acq_eval(ei, KB_ACQ_KIND_EI, mu, var, m, tau, 0.0);
    double t2 = now(CLOCK_MONOTONIC);
    if (kb_gp_predict(mu, var, gp, xt, N_TEST, N_TEST, &err) != KB_OK) {
        fprintf(stderr, "bench_gp: %s\n", err.msg);
        return 1;
    }
    double y_mean, y_sd, lpd = 0.0;
    kb_gp_y_scale(gp, &y_mean, &y_sd);
    double sn2 = exp(kb_gp_theta(gp)[d + 1]) * y_sd * y_sd;
    for (size_t i = 0; i < N_TEST; i++) {
        double v = var[i] + sn2, r = yt[i] - mu[i];
        lpd += (-0.5 * log(6.283185307179586 * v) - 0.5 * r * r / v) / N_TEST;
    }
    printf("%zu,%.4f,%.4f,%.4f,%.4f,%zu,%zu,%.5f\n", n, t1 - t0, c1 - c0, t2 - t1, info.lml,
           info.n_evals, info.n_grads, lpd);
    kb_gp_free(gp);
    free(x);
    free(y);
    free(xs);
    free(ys);
    free(xt);
    free(yt);
    free(mu);
    free(var);
    free(ei);
    return 0;
}
