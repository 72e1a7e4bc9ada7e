/* Tests of engine/gp: against scikit-learn (tests/ref/gp_ref.py), gradients, invariants. */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "refdata.h"
#include "engine/core/rng.h"
#include "engine/gp.h"
#include "engine/linalg.h"

static const char *ref_path(void)
{
    return check_data_path("gp_ref.txt");
}

static double *ref(const char *name, size_t expect_n)
{
    size_t n = 0;
    double *v = refdata_get(ref_path(), name, &n);
    CHECK(v != NULL && n == expect_n);
    if (v == NULL || n != expect_n) {
        fprintf(stderr, "reference '%s' missing\n", name);
        exit(1);
    }
    return v;
}

static void test_gp_kernel_matrix_matches_sklearn(void)
{
    double *x = ref("x", 75), *xs = ref("xs", 21), *theta = ref("theta", 5);
    const char *names[2] = {"matern_kxs", "se_kxs"};
    for (int kk = 0; kk < 2; kk++) {
        double *want = ref(names[kk], 175), k[175];
        kb_gp_kernel_matrix(k, 25, x, 25, 25, xs, 7, 7, 3, (kb_gp_kernel)kk, theta);
        for (int i = 0; i < 175; i++) {
            CHECK_NEAR(k[i], want[i], 1e-12, 1e-14);
        }
        free(want);
    }
    free(x);
    free(xs);
    free(theta);
}

static void test_gp_posterior_matches_sklearn_fixed_hyperparameters(void)
{
    double *x = ref("x", 75), *xs = ref("xs", 21), *y = ref("y", 25), *theta = ref("theta", 5);
    const char *kn[2] = {"matern", "se"};
    for (int kk = 0; kk < 2; kk++) {
        for (int norm = 0; norm < 2; norm++) {
            char name[64];
            snprintf(name, sizeof name, "%s_norm%d_mean", kn[kk], norm);
            double *wm = ref(name, 7);
            snprintf(name, sizeof name, "%s_norm%d_var", kn[kk], norm);
            double *wv = ref(name, 7);
            snprintf(name, sizeof name, "%s_norm%d_lml", kn[kk], norm);
            double *wl = ref(name, 1);
            kb_gp_opts o = KB_GP_OPTS_INIT;
            o.kernel = (kb_gp_kernel)kk;
            o.optimize = 0;
            o.theta_init = theta;
            o.normalize_y = norm;
            kb_gp *gp = NULL;
            kb_gp_fit_info info;
            kb_error err = KB_ERROR_INIT;
            CHECK_OK(kb_gp_fit(&gp, x, 25, 25, 3, y, &o, &info, &err), err);
            double mean[7], var[7];
            CHECK_OK(kb_gp_predict(mean, var, gp, xs, 7, 7, &err), err);
            for (int i = 0; i < 7; i++) {
                CHECK_NEAR(mean[i], wm[i], 1e-9, 1e-11);
                CHECK_NEAR(var[i], wv[i], 1e-7, 1e-11);
            }
            CHECK_NEAR(info.lml, wl[0], 1e-10, 1e-10);
            CHECK(info.jitter == 0.0);
            if (norm == 0) {
                double lml;
                CHECK_OK(kb_gp_lml(&lml, NULL, x, 25, 25, 3, y, o.kernel, theta, NULL, &err),
                         err);
                CHECK_NEAR(lml, wl[0], 1e-10, 1e-10);
            }
            kb_gp_free(gp);
            free(wm);
            free(wv);
            free(wl);
        }
    }
    free(x);
    free(xs);
    free(y);
    free(theta);
}

static void test_gp_lml_gradient_matches_central_differences(void)
{
    double *x = ref("x", 75), *y = ref("y", 25), *theta0 = ref("theta", 5);
    kb_rng rng;
    kb_rng_seed(&rng, 7);
    for (int kk = 0; kk < 2; kk++) {
        for (int trial = 0; trial < 4; trial++) {
            double theta[5], grad[5];
            for (int j = 0; j < 5; j++) {
                theta[j] = theta0[j] + (trial == 0 ? 0.0 : 0.8 * (kb_rng_uniform(&rng) - 0.5));
            }
            kb_error err = KB_ERROR_INIT;
            double f;
            CHECK_OK(kb_gp_lml(&f, grad, x, 25, 25, 3, y, (kb_gp_kernel)kk, theta, NULL, &err),
                     err);
            for (int j = 0; j < 5; j++) {
                double h = 1e-5, tp[5], tm[5], fp, fm;
                memcpy(tp, theta, sizeof tp);
                memcpy(tm, theta, sizeof tm);
                tp[j] += h;
                tm[j] -= h;
                CHECK_OK(kb_gp_lml(&fp, NULL, x, 25, 25, 3, y, (kb_gp_kernel)kk, tp, NULL, &err),
                         err);
                CHECK_OK(kb_gp_lml(&fm, NULL, x, 25, 25, 3, y, (kb_gp_kernel)kk, tm, NULL, &err),
                         err);
                CHECK_NEAR(grad[j], (fp - fm) / (2 * h), 1e-5, 1e-6);
            }
        }
    }
    free(x);
    free(y);
    free(theta0);
}

/* The kernels by their formulas with libm: the reference for the column-at-a-time code. */
static double ref_kernel(kb_gp_kernel kernel, const double *x1, size_t ld_1, size_t i,
                         const double *x2, size_t ld_2, size_t j, size_t d, const double *theta,
                         double *g_out)
{
    /* r as the code forms it (x / l as x * exp(-log l), sqrt5 r as sqrt(r2) * sqrt5): exp's
     * relative error is that of its argument times the argument, up to 1,500 here */
    double r2 = 0.0;
    for (size_t k = 0; k < d; k++) {
        double il = exp(-theta[k]), t = x1[i + k * ld_1] * il - x2[j + k * ld_2] * il;
        r2 += t * t;
    }
    double sf2 = exp(theta[d]);
    if (kernel == KB_GP_KERNEL_SE) {
        *g_out = sf2 * exp(-0.5 * r2);
        return sf2 * exp(-0.5 * r2);
    }
    double r = sqrt(r2) * 2.23606797749979;
    *g_out = sf2 * (5.0 / 3.0) * (1.0 + r) * exp(-r);
    return sf2 * (1.0 + r + r * r / 3.0) * exp(-r);
}

static void test_gp_kernel_matrix_matches_libm_over_the_whole_range(void)
{
    /* 301 rows (past one 256-row block, odd: the scalar tail), d = 3 and d = 70 (past the
     * 64-dimension chunk); lengthscales from 1e-3 to 10, so that r runs from 0 to ~1,500,
     * through the exp's underflow at 708 */
    size_t n1 = 301, n2 = 5;
    kb_rng rng;
    kb_rng_seed(&rng, 23);
    for (int dd = 0; dd < 2; dd++) {
        size_t d = dd == 0 ? 3 : 70;
        double *x1 = malloc(n1 * d * sizeof(double)), *x2 = malloc(n2 * d * sizeof(double));
        double *k = malloc(n1 * n2 * sizeof(double)), theta[72];
        for (size_t i = 0; i < n1 * d; i++) {
            x1[i] = kb_rng_uniform(&rng);
        }
        for (size_t i = 0; i < n2 * d; i++) {
            x2[i] = kb_rng_uniform(&rng);
        }
        for (size_t kk = 0; kk < 2; kk++) {
            for (size_t s = 0; s < 4; s++) {
                double log_l = log(10.0) - (double)s * log(10.0) * (dd == 0 ? 4.0 : 3.0) / 3.0;
                for (size_t j = 0; j < d; j++) {
                    theta[j] = log_l + 0.3 * kb_rng_uniform(&rng);
                }
                theta[d] = log(2.5);
                theta[d + 1] = log(1e-3);
                kb_gp_kernel_matrix(k, n1, x1, n1, n1, x2, n2, n2, d, (kb_gp_kernel)kk, theta);
                for (size_t j = 0; j < n2; j++) {
                    for (size_t i = 0; i < n1; i++) {
                        double g, want = ref_kernel((kb_gp_kernel)kk, x1, n1, i, x2, n2, j, d,
                                                    theta, &g);
                        CHECK_NEAR(k[i + j * n1], want, 1e-14, 1e-300);
                    }
                }
            }
        }
        free(x1);
        free(x2);
        free(k);
    }
}

/*
 * lml and gradient the plain way (the code before the column-at-a-time passes): K by libm,
 * LAPACK's dpotrf/dpotri, alpha by dpotrs, and 0.5 tr(W dK/dtheta_j) summed over all n^2 pairs
 * with dK/dlog l_k = sf2 g (dx_k / l_k)^2, dK/dlog sf2 = K - sn2 I, dK/dlog sn2 = sn2 I.
 */
static double ref_lml(double *grad, const double *x, size_t n, size_t d, const double *y,
                      kb_gp_kernel kernel, const double *theta)
{
    double *k = malloc(n * n * sizeof(double)), *g = malloc(n * n * sizeof(double));
    double *alpha = malloc(n * sizeof(double)), sn2 = exp(theta[d + 1]);
    for (size_t j = 0; j < n; j++) {
        for (size_t i = 0; i < n; i++) {
            k[i + j * n] = ref_kernel(kernel, x, n, i, x, n, j, d, theta, &g[i + j * n]) +
                           (i == j ? sn2 : 0.0);
        }
    }
    CHECK(LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', (lapack_int)n, k, (lapack_int)n) == 0);
    memcpy(alpha, y, n * sizeof(double));
    CHECK(LAPACKE_dpotrs_work(LAPACK_COL_MAJOR, 'L', (lapack_int)n, 1, k, (lapack_int)n, alpha,
                              (lapack_int)n) == 0);
    double lml = -0.5 * (double)n * log(6.283185307179586);
    for (size_t i = 0; i < n; i++) {
        lml += -0.5 * y[i] * alpha[i] - log(k[i + i * n]);
    }
    CHECK(LAPACKE_dpotri_work(LAPACK_COL_MAJOR, 'L', (lapack_int)n, k, (lapack_int)n) == 0);
    for (size_t t = 0; t < d + 2; t++) {
        grad[t] = 0.0;
    }
    for (size_t j = 0; j < n; j++) {
        for (size_t i = 0; i < n; i++) {
            double kinv = i >= j ? k[i + j * n] : k[j + i * n];
            double w = alpha[i] * alpha[j] - kinv;
            double kij, gij;
            kij = ref_kernel(kernel, x, n, i, x, n, j, d, theta, &gij);
            for (size_t t = 0; t < d; t++) {
                double dx = (x[i + t * n] - x[j + t * n]) / exp(theta[t]);
                grad[t] += 0.5 * w * gij * dx * dx;
            }
            grad[d] += 0.5 * w * kij;
            if (i == j) {
                grad[d + 1] += 0.5 * w * sn2;
            }
        }
    }
    free(k);
    free(g);
    free(alpha);
    return lml;
}

static void test_gp_lml_and_gradient_match_the_plain_computation(void)
{
    /* d = 9: one 8-dimension SIMD block and a scalar one; d = 3: a pair and a scalar; n odd */
    size_t n = 57;
    kb_rng rng;
    kb_rng_seed(&rng, 29);
    for (int dd = 0; dd < 2; dd++) {
        size_t d = dd == 0 ? 9 : 3;
        double *x = malloc(n * d * sizeof(double)), y[57], theta[11], grad[11], want[11];
        for (size_t i = 0; i < n * d; i++) {
            x[i] = kb_rng_uniform(&rng);
        }
        for (size_t i = 0; i < n; i++) {
            y[i] = sin(5.0 * x[i]) + 0.5 * x[i + n] + 0.1 * kb_rng_normal(&rng);
        }
        for (int kk = 0; kk < 2; kk++) {
            for (int trial = 0; trial < 3; trial++) {
                for (size_t j = 0; j < d; j++) {
                    theta[j] = log(0.2) + 1.5 * kb_rng_uniform(&rng);
                }
                theta[d] = 0.6 * (kb_rng_uniform(&rng) - 0.5);
                theta[d + 1] = log(1e-3) + 3.0 * kb_rng_uniform(&rng);
                kb_error err = KB_ERROR_INIT;
                double f, jitter = -1.0;
                CHECK_OK(kb_gp_lml(&f, grad, x, n, n, d, y, (kb_gp_kernel)kk, theta, &jitter,
                                   &err), err);
                CHECK(jitter == 0.0);
                double f_want = ref_lml(want, x, n, d, y, (kb_gp_kernel)kk, theta);
                CHECK_NEAR(f, f_want, 1e-11, 1e-11);
                for (size_t j = 0; j < d + 2; j++) {
                    CHECK_NEAR(grad[j], want[j], 1e-9, 1e-9);
                }
                /* and central differences, in the higher dimension too */
                for (size_t j = 0; j < d + 2; j += (dd == 0 ? 4 : 1)) {
                    double h = 1e-5, tp[11], tm[11], fp, fm;
                    memcpy(tp, theta, sizeof tp);
                    memcpy(tm, theta, sizeof tm);
                    tp[j] += h;
                    tm[j] -= h;
                    CHECK_OK(kb_gp_lml(&fp, NULL, x, n, n, d, y, (kb_gp_kernel)kk, tp, NULL,
                                       &err), err);
                    CHECK_OK(kb_gp_lml(&fm, NULL, x, n, n, d, y, (kb_gp_kernel)kk, tm, NULL,
                                       &err), err);
                    CHECK_NEAR(grad[j], (fp - fm) / (2 * h), 1e-5, 1e-6);
                }
            }
        }
        free(x);
    }
}

static void test_gp_posterior_variance_is_nonnegative_and_kernel_pd(void)
{
    /* duplicated and near-duplicated points with the smallest noise: ill-conditioned K */
    size_t n = 40, d = 2;
    double x[80], y[40];
    kb_rng rng;
    kb_rng_seed(&rng, 3);
    for (size_t i = 0; i < n; i++) {
        size_t src = i < 20 ? i : i - 20;
        x[i] = i < 20 ? kb_rng_uniform(&rng) : x[src] + 1e-12;
        x[i + n] = i < 20 ? kb_rng_uniform(&rng) : x[src + n];
        y[i] = sin(3 * x[i]) + x[i + n];
    }
    double theta[4] = {log(0.5), log(0.5), 0.0, log(1e-6)};
    double k[1600], l[1600], jitter = -1;
    kb_gp_kernel_matrix(k, n, x, n, n, x, n, n, d, KB_GP_KERNEL_SE, theta);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            CHECK(k[i + j * n] == k[j + i * n]);
        }
    }
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_linalg_cholesky(l, n, k, n, n, &jitter, &err), err);
    CHECK(jitter > 0.0);
    kb_gp_opts o = KB_GP_OPTS_INIT;
    o.kernel = KB_GP_KERNEL_SE;
    o.optimize = 0;
    o.theta_init = theta;
    o.log_sn2_min = log(1e-9);
    kb_gp *gp = NULL;
    CHECK_OK(kb_gp_fit(&gp, x, n, n, d, y, &o, NULL, &err), err);
    double mean[40], var[40];
    CHECK_OK(kb_gp_predict(mean, var, gp, x, n, n, &err), err);
    for (size_t i = 0; i < n; i++) {
        CHECK(var[i] >= 0.0 && isfinite(mean[i]));
    }
    kb_gp_free(gp);
    double bad[4] = {1, 0, 0, -1};
    CHECK_CODE(kb_linalg_cholesky(l, 2, bad, 2, 2, NULL, &err), KB_EINVAL);
    double indefinite[4] = {1, 2, 2, 1};
    CHECK_CODE(kb_linalg_cholesky(l, 2, indefinite, 2, 2, NULL, &err), KB_ENUMERIC);
}

static void test_gp_fit_improves_likelihood_and_is_deterministic(void)
{
    double *x = ref("x", 75), *y = ref("y", 25), *xs = ref("xs", 21);
    kb_gp_opts o = KB_GP_OPTS_INIT;
    o.n_restarts = 3;
    o.seed = 11;
    kb_gp *a = NULL, *b = NULL, *fixed = NULL;
    kb_gp_fit_info ia, ib, ifx;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_gp_fit(&a, x, 25, 25, 3, y, &o, &ia, &err), err);
    CHECK_OK(kb_gp_fit(&b, x, 25, 25, 3, y, &o, &ib, &err), err);
    o.optimize = 0;
    CHECK_OK(kb_gp_fit(&fixed, x, 25, 25, 3, y, &o, &ifx, &err), err);
    CHECK(ia.lml > ifx.lml);
    CHECK(ia.converged);
    CHECK(ia.n_evals > 4);
    for (int j = 0; j < 5; j++) {
        CHECK(kb_gp_theta(a)[j] == kb_gp_theta(b)[j]);
    }
    /* the optimum has (projected) zero gradient on the standardised targets */
    double m, sd, z[25], g[5], lml;
    kb_gp_y_scale(a, &m, &sd);
    for (int i = 0; i < 25; i++) {
        z[i] = (y[i] - m) / sd;
    }
    CHECK_OK(kb_gp_lml(&lml, g, x, 25, 25, 3, z, KB_GP_KERNEL_MATERN52, kb_gp_theta(a), NULL,
                       &err), err);
    CHECK_NEAR(lml, ia.lml, 1e-9, 1e-9);
    for (int j = 0; j < 5; j++) {
        double t = kb_gp_theta(a)[j];
        int at_bound = fabs(t - o.log_ls_min) < 1e-9 || fabs(t - o.log_ls_max) < 1e-9 ||
                       fabs(t - o.log_sn2_min) < 1e-9 || fabs(t - o.log_sn2_max) < 1e-9;
        CHECK(at_bound || fabs(g[j]) < 1e-2);
    }
    /* a tight log-normal prior on the first lengthscale pins it */
    kb_gp_prior pri[5] = {{KB_GP_PRIOR_LOGNORMAL, log(2.0), 0.01}};
    kb_gp *p = NULL;
    o.optimize = 1;
    o.priors = pri;
    kb_gp_fit_info ip;
    CHECK_OK(kb_gp_fit(&p, x, 25, 25, 3, y, &o, &ip, &err), err);
    CHECK_NEAR(kb_gp_theta(p)[0], log(2.0), 0, 0.05);
    CHECK(ip.log_prior < 0.0);
    kb_gp_free(p);
    kb_gp_free(a);
    kb_gp_free(b);
    kb_gp_free(fixed);
    free(x);
    free(y);
    free(xs);
}

/* Projected-gradient check of a fitted theta on the standardised targets. */
static int at_stationary_point(const kb_gp *gp, const kb_gp_opts *o, const double *x, size_t n,
                               size_t d, const double *y, double gtol)
{
    double m, sd, lml, g[10], *z = malloc(n * sizeof(double));
    kb_gp_y_scale(gp, &m, &sd);
    for (size_t i = 0; i < n; i++) {
        z[i] = (y[i] - m) / sd;
    }
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_gp_lml(&lml, g, x, n, n, d, z, o->kernel, kb_gp_theta(gp), NULL, &err), err);
    free(z);
    int ok = 1;
    for (size_t j = 0; j < d + 2; j++) {
        double t = kb_gp_theta(gp)[j];
        double lo = j < d ? o->log_ls_min : (j == d ? o->log_sf2_min : o->log_sn2_min);
        double hi = j < d ? o->log_ls_max : (j == d ? o->log_sf2_max : o->log_sn2_max);
        /* at a bound the optimizer stops once the projected step is below pgtol */
        double near = 10.0 * o->pgtol;
        int at_bound = (fabs(t - lo) < near && g[j] < 0) || (fabs(t - hi) < near && g[j] > 0);
        ok = ok && (at_bound || fabs(g[j]) < gtol);
    }
    return ok;
}

static void test_gp_subset_ladder_is_deterministic_and_ends_at_a_stationary_point(void)
{
    /* 150 points, levels 20 -> 60 -> 150: every level and the counts are exercised */
    size_t n = 150, d = 3;
    double x[450], y[150];
    kb_rng rng;
    kb_rng_seed(&rng, 5);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < d; k++) {
            x[i + k * n] = kb_rng_uniform(&rng);
        }
        y[i] = sin(4 * x[i]) + 0.3 * cos(9 * x[i + n]) + 0.05 * kb_rng_normal(&rng);
    }
    kb_gp_opts o = KB_GP_OPTS_INIT;
    o.n_subset = 20;
    o.lml_tol = 0.0; /* run to the usual tolerances: the stationarity check below is strict */
    o.lml_tol_per_point = 0.0;
    o.seed = 3;
    kb_gp *a = NULL, *b = NULL, *plain = NULL;
    kb_gp_fit_info ia, ib, ip;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_gp_fit(&a, x, n, n, d, y, &o, &ia, &err), err);
    CHECK_OK(kb_gp_fit(&b, x, n, n, d, y, &o, &ib, &err), err);
    for (size_t j = 0; j < d + 2; j++) {
        CHECK(kb_gp_theta(a)[j] == kb_gp_theta(b)[j]);
    }
    CHECK(ia.converged && ia.n_evals == ib.n_evals && ia.n_grads > 3 && ia.n_grads <= ia.n_evals);
    CHECK(at_stationary_point(a, &o, x, n, d, y, 1e-2));
    /* the ladder's optimum is as good as the plain multi-start fit's here */
    o.n_subset = 0;
    CHECK_OK(kb_gp_fit(&plain, x, n, n, d, y, &o, &ip, &err), err);
    CHECK(ia.lml > ip.lml - 1e-3);
    /* the default tolerances (per level max(0.01, 1e-3 m) nats over 5 iterations) stop sooner,
     * within a fraction of a nat of the strict optimum */
    kb_gp_opts od = KB_GP_OPTS_INIT;
    od.n_subset = 20;
    od.seed = 3;
    kb_gp *c = NULL;
    kb_gp_fit_info ic;
    CHECK_OK(kb_gp_fit(&c, x, n, n, d, y, &od, &ic, &err), err);
    CHECK(ic.n_evals < ia.n_evals && ic.lml > ia.lml - 0.15);
    kb_gp_free(c);
    kb_gp_free(a);
    kb_gp_free(b);
    kb_gp_free(plain);
}

static void test_gp_loo_matches_refits(void)
{
    double *x = ref("x", 75), *y = ref("y", 25), *theta = ref("theta", 5);
    kb_gp_opts o = KB_GP_OPTS_INIT;
    o.optimize = 0;
    o.theta_init = theta;
    o.normalize_y = 0;
    kb_gp *gp = NULL;
    kb_error err = KB_ERROR_INIT;
    CHECK_OK(kb_gp_fit(&gp, x, 25, 25, 3, y, &o, NULL, &err), err);
    double lm[25], lv[25];
    CHECK_OK(kb_gp_loo(lm, lv, gp, &err), err);
    for (int i = 0; i < 25; i += 6) {
        double xr[72], yr[24];
        int r = 0;
        for (int t = 0; t < 25; t++) {
            if (t == i) {
                continue;
            }
            for (int k = 0; k < 3; k++) {
                xr[r + k * 24] = x[t + k * 25];
            }
            yr[r++] = y[t];
        }
        kb_gp *g2 = NULL;
        CHECK_OK(kb_gp_fit(&g2, xr, 24, 24, 3, yr, &o, NULL, &err), err);
        double xi[3] = {x[i], x[i + 25], x[i + 50]}, mu, var;
        CHECK_OK(kb_gp_predict(&mu, &var, g2, xi, 1, 1, &err), err);
        CHECK_NEAR(lm[i], mu, 1e-8, 1e-10);
        CHECK_NEAR(lv[i], var + exp(theta[4]), 1e-8, 1e-10);
        kb_gp_free(g2);
    }
    kb_gp_free(gp);
    free(x);
    free(y);
    free(theta);
}

static void test_gp_rejects_bad_input_and_handles_empty(void)
{
    double x[2] = {0.5, NAN}, y[2] = {1, 2};
    kb_gp *gp = NULL;
    kb_error err = KB_ERROR_INIT;
    CHECK_CODE(kb_gp_fit(&gp, x, 2, 2, 1, y, NULL, NULL, &err), KB_EINVAL);
    CHECK(gp == NULL);
    CHECK_OK(kb_gp_fit(&gp, x, 0, 0, 1, y, NULL, NULL, &err), err);
    double mu, var;
    CHECK_OK(kb_gp_predict(&mu, &var, gp, x, 1, 1, &err), err);
    CHECK(mu == 0.0 && var > 0.0);
    kb_gp_free(gp);
}

int main(void)
{
    test_gp_kernel_matrix_matches_sklearn();
    test_gp_posterior_matches_sklearn_fixed_hyperparameters();
    test_gp_lml_gradient_matches_central_differences();
    test_gp_kernel_matrix_matches_libm_over_the_whole_range();
    test_gp_lml_and_gradient_match_the_plain_computation();
    test_gp_posterior_variance_is_nonnegative_and_kernel_pd();
    test_gp_fit_improves_likelihood_and_is_deterministic();
    test_gp_subset_ladder_is_deterministic_and_ends_at_a_stationary_point();
    test_gp_loo_matches_refits();
    test_gp_rejects_bad_input_and_handles_empty();
    return check_exit();
}
