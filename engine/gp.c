#include "engine/gp.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "engine/core/alloc.h"
#include "engine/core/rng.h"
#include "engine/linalg.h"

#define LBFGS_MEMORY 10
#define LN_2PI 1.8378770664093453
#define LML_TOL_ITERS 5

struct kb_gp {
    size_t n, d;
    kb_gp_kernel kernel;
    double *theta;  /* d + 2 */
    double *x;      /* n x d, ld n */
    double *l;      /* n x n lower Cholesky factor of K + sn2 I */
    double *alpha;  /* (K + sn2 I)^-1 z */
    double *z;      /* standardised targets */
    double y_mean, y_sd;
};

size_t kb_gp_n_train(const kb_gp *gp) { return gp->n; }
size_t kb_gp_dim(const kb_gp *gp) { return gp->d; }
const double *kb_gp_theta(const kb_gp *gp) { return gp->theta; }
kb_gp_kernel kb_gp_kernel_of(const kb_gp *gp) { return gp->kernel; }

void kb_gp_y_scale(const kb_gp *gp, double *mean_out, double *sd_out)
{
    *mean_out = gp->y_mean;
    *sd_out = gp->y_sd;
}

void kb_gp_free(kb_gp *gp)
{
    if (gp == NULL) {
        return;
    }
    kb_free(gp->theta);
    kb_free(gp->x);
    kb_free(gp->l);
    kb_free(gp->alpha);
    kb_free(gp->z);
    kb_free(gp);
}

/*
 * exp(x) for the kernels' arguments x = -r or -r^2 / 2 (x <= 0), branch-free so that a whole
 * column of pairs is one vectorisable loop (libm's exp, one call per pair, was the largest
 * cost after LAPACK). x = k ln2 + t with |t| <= ln2 / 2 (Cody-Waite: ln2 split so that k ln2_hi
 * is exact), exp(t) by its Taylor series to degree 13 (truncation < 5e-18 relative), times 2^k
 * built in the exponent bits; about 1 ulp. Below EXP_MIN (exp < 3.3e-308) the result is 0; a NaN
 * stays NaN. exp_neg is the scalar form; exp_neg2 does two values in SSE2 with the same
 * operations in the same order, so both give identical bits for the same x.
 */
#define EXP_MIN (-708.0)
#define EXP_LOG2E 1.4426950408889634
#define EXP_LN2_HI 6.93147180369123816490e-01 /* 0x3fe62e42fee00000: 21 trailing zero bits */
#define EXP_LN2_LO 1.90821492927058770002e-10
#define EXP_SHIFT 6755399441055744.0          /* 1.5 * 2^52: t + SHIFT rounds t to an integer */
#define SQRT5 2.23606797749979

/* 1 / i!, i = 0..13 */
#define EXP_C2 0.5
#define EXP_C3 0.16666666666666666
#define EXP_C4 0.041666666666666664
#define EXP_C5 0.008333333333333333
#define EXP_C6 0.001388888888888889
#define EXP_C7 0.0001984126984126984
#define EXP_C8 2.48015873015873e-05
#define EXP_C9 2.7557319223985893e-06
#define EXP_C10 2.755731922398589e-07
#define EXP_C11 2.505210838544172e-08
#define EXP_C12 2.08767569878681e-09
#define EXP_C13 1.6059043836821613e-10

/* Horner's rule written out: no loop-carried branch, so pairs overlap in the pipeline */
static inline double exp_poly(double t)
{
    double p = EXP_C13 * t + EXP_C12;
    p = p * t + EXP_C11;
    p = p * t + EXP_C10;
    p = p * t + EXP_C9;
    p = p * t + EXP_C8;
    p = p * t + EXP_C7;
    p = p * t + EXP_C6;
    p = p * t + EXP_C5;
    p = p * t + EXP_C4;
    p = p * t + EXP_C3;
    p = p * t + EXP_C2;
    p = p * t + 1.0;
    return p * t + 1.0;
}

static inline double exp_neg(double x)
{
    double xc = x < EXP_MIN ? EXP_MIN : x; /* NaN passes through */
    double kd = xc * EXP_LOG2E + EXP_SHIFT;
    uint64_t kbits;
    memcpy(&kbits, &kd, sizeof kbits);
    kd -= EXP_SHIFT;
    double t = (xc - kd * EXP_LN2_HI) - kd * EXP_LN2_LO;
    double p = exp_poly(t);
    /* the low bits of kbits hold k (two's complement): (k + 1023) << 52 is 2^k */
    uint64_t sbits = (kbits + 1023u) << 52;
    double scale;
    memcpy(&scale, &sbits, sizeof scale);
    return x < EXP_MIN ? 0.0 : p * scale;
}

#if defined(__SSE2__)
static inline __m128d exp_neg2(__m128d x)
{
    __m128d xc = _mm_max_pd(_mm_set1_pd(EXP_MIN), x); /* maxpd gives its 2nd operand on NaN */
    __m128d shift = _mm_set1_pd(EXP_SHIFT);
    __m128d kd = _mm_add_pd(_mm_mul_pd(xc, _mm_set1_pd(EXP_LOG2E)), shift);
    __m128i kbits = _mm_castpd_si128(kd);
    kd = _mm_sub_pd(kd, shift);
    __m128d t = _mm_sub_pd(_mm_sub_pd(xc, _mm_mul_pd(kd, _mm_set1_pd(EXP_LN2_HI))),
                           _mm_mul_pd(kd, _mm_set1_pd(EXP_LN2_LO)));
    __m128d p = _mm_add_pd(_mm_mul_pd(_mm_set1_pd(EXP_C13), t), _mm_set1_pd(EXP_C12));
    p = _mm_add_pd(_mm_mul_pd(p, t), _mm_set1_pd(EXP_C11));
    p = _mm_add_pd(_mm_mul_pd(p, t), _mm_set1_pd(EXP_C10));
    p = _mm_add_pd(_mm_mul_pd(p, t), _mm_set1_pd(EXP_C9));
    p = _mm_add_pd(_mm_mul_pd(p, t), _mm_set1_pd(EXP_C8));
    p = _mm_add_pd(_mm_mul_pd(p, t), _mm_set1_pd(EXP_C7));
    p = _mm_add_pd(_mm_mul_pd(p, t), _mm_set1_pd(EXP_C6));
    p = _mm_add_pd(_mm_mul_pd(p, t), _mm_set1_pd(EXP_C5));
    p = _mm_add_pd(_mm_mul_pd(p, t), _mm_set1_pd(EXP_C4));
    p = _mm_add_pd(_mm_mul_pd(p, t), _mm_set1_pd(EXP_C3));
    p = _mm_add_pd(_mm_mul_pd(p, t), _mm_set1_pd(EXP_C2));
    p = _mm_add_pd(_mm_mul_pd(p, t), _mm_set1_pd(1.0));
    p = _mm_add_pd(_mm_mul_pd(p, t), _mm_set1_pd(1.0));
    __m128i sbits = _mm_slli_epi64(_mm_add_epi64(kbits, _mm_set1_epi64x(1023)), 52);
    __m128d e = _mm_mul_pd(p, _mm_castsi128_pd(sbits));
    return _mm_andnot_pd(_mm_cmplt_pd(x, _mm_set1_pd(EXP_MIN)), e);
}
#endif

/* k(r^2) / sf2, and into *g the factor with dk/dlog l_k = sf2 * g * (dx_k / l_k)^2 */
static inline double kernel_r2(kb_gp_kernel kernel, double r2, double *g)
{
    if (kernel == KB_GP_KERNEL_SE) {
        double e = exp_neg(-0.5 * r2);
        *g = e;
        return e;
    }
    double r = sqrt(r2) * SQRT5;
    double e = exp_neg(-r);
    *g = (5.0 / 3.0) * (1.0 + r) * e;
    return (1.0 + r + r * r * (1.0 / 3.0)) * e; /* a multiply: the divider is shared with sqrt */
}

/*
 * For i < m: k_out[i] = s * k(r2[i]) / sf2 and, when g_out != NULL, g_out[i] = s * g (see
 * kernel_r2): a column of pairs at once, two per SSE2 instruction when available, with the
 * same operations as kernel_r2 (so the bits do not depend on a pair's position).
 */
static void kernel_block(double *k_out, double *g_out, kb_gp_kernel kernel, const double *r2,
                         size_t m, double s)
{
    size_t i = 0;
#if defined(__SSE2__)
    __m128d vs = _mm_set1_pd(s), one = _mm_set1_pd(1.0);
    for (; i + 2 <= m; i += 2) {
        __m128d v2 = _mm_loadu_pd(r2 + i), k, g;
        if (kernel == KB_GP_KERNEL_SE) {
            k = g = exp_neg2(_mm_mul_pd(_mm_set1_pd(-0.5), v2));
        } else {
            __m128d r = _mm_mul_pd(_mm_sqrt_pd(v2), _mm_set1_pd(SQRT5));
            __m128d e = exp_neg2(_mm_xor_pd(r, _mm_set1_pd(-0.0)));
            __m128d r1 = _mm_add_pd(one, r);
            g = _mm_mul_pd(_mm_mul_pd(_mm_set1_pd(5.0 / 3.0), r1), e);
            __m128d r2_3 = _mm_mul_pd(_mm_mul_pd(r, r), _mm_set1_pd(1.0 / 3.0));
            k = _mm_mul_pd(_mm_add_pd(r1, r2_3), e);
        }
        _mm_storeu_pd(k_out + i, _mm_mul_pd(vs, k));
        if (g_out != NULL) {
            _mm_storeu_pd(g_out + i, _mm_mul_pd(vs, g));
        }
    }
#endif
    for (; i < m; i++) {
        double g;
        k_out[i] = s * kernel_r2(kernel, r2[i], &g);
        if (g_out != NULL) {
            g_out[i] = s * g;
        }
    }
}

/*
 * x scaled by the lengthscales, in both layouts: point-major p[i*d + k] = x_ik / l_k (the
 * gradient's pair pass reads a point's d values together) and column-major pc[i + k*n] (a
 * column of squared distances reads one dimension of many points).
 */
static void scale_points(double *p, double *pc, const double *x, size_t ld_x, size_t n,
                         size_t d, const double *theta)
{
    for (size_t k = 0; k < d; k++) {
        double inv = exp(-theta[k]);
        for (size_t i = 0; i < n; i++) {
            double v = x[i + k * ld_x] * inv;
            p[i * d + k] = v;
            pc[i + k * n] = v;
        }
    }
}

/*
 * r2[i] += sum_k (x[i + k*ld] * inv_l[k] - b[k])^2 for i < m (inv_l == NULL: x is already
 * scaled): squared scaled distances from m points (column-major) to one point b (scaled),
 * summed over k in order, so that the bits equal those of the same sum taken pair by pair.
 * Four points at a time in SSE2: the broadcasts of b[k] and inv_l[k] are shared.
 */
static void add_sqdist(double *r2, const double *x, size_t ld, const double *inv_l,
                       const double *b, size_t d, size_t m)
{
    size_t i = 0;
#if defined(__SSE2__)
    for (; i + 4 <= m; i += 4) {
        __m128d acc0 = _mm_loadu_pd(r2 + i), acc1 = _mm_loadu_pd(r2 + i + 2);
        for (size_t k = 0; k < d; k++) {
            const double *xk = x + i + k * ld;
            __m128d vb = _mm_set1_pd(b[k]), t0 = _mm_loadu_pd(xk), t1 = _mm_loadu_pd(xk + 2);
            if (inv_l != NULL) {
                __m128d vs = _mm_set1_pd(inv_l[k]);
                t0 = _mm_mul_pd(t0, vs);
                t1 = _mm_mul_pd(t1, vs);
            }
            t0 = _mm_sub_pd(t0, vb);
            t1 = _mm_sub_pd(t1, vb);
            acc0 = _mm_add_pd(acc0, _mm_mul_pd(t0, t0));
            acc1 = _mm_add_pd(acc1, _mm_mul_pd(t1, t1));
        }
        _mm_storeu_pd(r2 + i, acc0);
        _mm_storeu_pd(r2 + i + 2, acc1);
    }
#endif
    for (; i < m; i++) {
        double acc = r2[i];
        for (size_t k = 0; k < d; k++) {
            double xv = x[i + k * ld];
            double t = (inv_l != NULL ? xv * inv_l[k] : xv) - b[k];
            acc += t * t;
        }
        r2[i] = acc;
    }
}

/* Rows of x1 per block of kb_gp_kernel_matrix: bounds its stack buffer. */
#define KERNEL_BLOCK 256

void kb_gp_kernel_matrix(double *k_out, size_t ld_k, const double *x1, size_t ld_1, size_t n1,
                         const double *x2, size_t ld_2, size_t n2, size_t d, kb_gp_kernel kernel,
                         const double *theta)
{
    double sf2 = exp(theta[d]);
    /* the dimensions in chunks of 64: no allocation, any d (inv_l is kept when one chunk) */
    double r2[KERNEL_BLOCK], inv_l[64], b[64];
    for (size_t k = 0; k < d && k < 64; k++) {
        inv_l[k] = exp(-theta[k]);
    }
    for (size_t j = 0; j < n2; j++) {
        for (size_t i0 = 0; i0 < n1; i0 += KERNEL_BLOCK) {
            size_t m = n1 - i0 < KERNEL_BLOCK ? n1 - i0 : KERNEL_BLOCK;
            memset(r2, 0, m * sizeof(double));
            for (size_t k0 = 0; k0 < d; k0 += 64) {
                size_t dc = d - k0 < 64 ? d - k0 : 64;
                for (size_t k = 0; k < dc; k++) {
                    if (d > 64) {
                        inv_l[k] = exp(-theta[k0 + k]);
                    }
                    b[k] = x2[j + (k0 + k) * ld_2] * inv_l[k];
                }
                add_sqdist(r2, x1 + i0 + k0 * ld_1, ld_1, inv_l, b, dc, m);
            }
            kernel_block(k_out + i0 + j * ld_k, NULL, kernel, r2, m, sf2);
        }
    }
}

/* Workspace of one fit: allocated once, reused by every likelihood evaluation. */
typedef struct lml_ws {
    size_t n, d;
    const double *x;
    size_t ld_x;
    const double *y;
    kb_gp_kernel kernel;
    double *p;     /* n x d point-major scaled inputs */
    double *pc;    /* the same, column-major */
    double *col;   /* n: one column's squared distances, or its gradient weights */
    double *k;     /* n x n: K + sn2 I (lower) */
    double *l;     /* n x n: L, then K^-1 (lower) */
    double *alpha; /* n */
    double *dk;    /* n (n - 1) / 2: sf2 * g of every pair i > j, column by column (kernel_r2),
                      so that the gradient needs no second exp per pair */
    double jitter; /* of the last factorisation */
} lml_ws;

static void ws_release(lml_ws *w)
{
    kb_free(w->p);
    kb_free(w->pc);
    kb_free(w->col);
    kb_free(w->k);
    kb_free(w->l);
    kb_free(w->alpha);
    kb_free(w->dk);
    memset(w, 0, sizeof *w);
}

static int ws_init(lml_ws *w, const double *x, size_t ld_x, size_t n, size_t d, const double *y,
                   kb_gp_kernel kernel, kb_error *err)
{
    memset(w, 0, sizeof *w);
    if (!kb_linalg_size_ok(n, n) || !kb_linalg_size_ok(n, d)) {
        return kb_error_set(err, KB_EINVAL, "gp: %zu points are too many", n);
    }
    w->n = n;
    w->d = d;
    w->x = x;
    w->ld_x = ld_x;
    w->y = y;
    w->kernel = kernel;
    size_t nn = n * n > 0 ? n * n : 1;
    w->p = kb_malloc_array(n * d + 1, sizeof(double));
    w->pc = kb_malloc_array(n * d + 1, sizeof(double));
    w->col = kb_malloc_array(n + 1, sizeof(double));
    w->k = kb_malloc_array(nn, sizeof(double));
    w->l = kb_malloc_array(nn, sizeof(double));
    w->alpha = kb_malloc_array(n + 1, sizeof(double));
    w->dk = kb_malloc_array(nn / 2 + 1, sizeof(double));
    if (w->p == NULL || w->pc == NULL || w->col == NULL || w->k == NULL || w->l == NULL ||
        w->alpha == NULL || w->dk == NULL) {
        ws_release(w);
        return kb_error_set(err, KB_ENOMEM, "gp: out of memory for %zu points", n);
    }
    return KB_OK;
}

/*
 * lml at theta into *f; leaves L in w->l, alpha in w->alpha and the scaled points in w->p for
 * ws_grad at the same theta. Cost: the n^2 / 2 kernel values and one Cholesky (n^3 / 3).
 */
static int ws_value(lml_ws *w, const double *theta, double *f, kb_error *err)
{
    size_t n = w->n, d = w->d;
    double sf2 = exp(theta[d]), sn2 = exp(theta[d + 1]);
    scale_points(w->p, w->pc, w->x, w->ld_x, n, d, theta);
    double *dk = w->dk, *r2 = w->col;
    for (size_t j = 0; j < n; j++) {
        size_t m = n - j - 1;
        w->k[j + j * n] = sf2 + sn2;
        memset(r2, 0, m * sizeof(double));
        add_sqdist(r2, w->pc + j + 1, n, NULL, w->p + j * d, d, m);
        kernel_block(w->k + j + 1 + j * n, dk, w->kernel, r2, m, sf2);
        dk += m;
    }
    int rc = kb_linalg_cholesky(w->l, n, w->k, n, n, &w->jitter, err);
    if (rc != KB_OK) {
        return rc;
    }
    memcpy(w->alpha, w->y, n * sizeof(double));
    cblas_dtrsv(CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, (int)n, w->l, (int)n,
                w->alpha, 1);
    double quad = cblas_ddot((int)n, w->alpha, 1, w->alpha, 1);
    cblas_dtrsv(CblasColMajor, CblasLower, CblasTrans, CblasNonUnit, (int)n, w->l, (int)n,
                w->alpha, 1);
    double logdet = 0.0;
    for (size_t i = 0; i < n; i++) {
        logdet += log(w->l[i + i * n]);
    }
    *f = -0.5 * quad - logdet - 0.5 * (double)n * LN_2PI;
    return KB_OK;
}

/*
 * grad[k] += sum_{i < m} c[i] (q_ik - b_k)^2 for the m points q (point-major, d values each)
 * after the point b: the lengthscale terms of one column of pairs. Each grad[k] sums its
 * terms in pair order whatever the path (SSE2 two dimensions at a time, or scalar).
 */
static void add_weighted_sqdist(double *grad, const double *b, const double *q, const double *c,
                                size_t m, size_t d)
{
    size_t k = 0;
#if defined(__SSE2__)
    for (; k + 8 <= d; k += 8) {
        __m128d g0 = _mm_loadu_pd(grad + k), g1 = _mm_loadu_pd(grad + k + 2);
        __m128d g2 = _mm_loadu_pd(grad + k + 4), g3 = _mm_loadu_pd(grad + k + 6);
        __m128d b0 = _mm_loadu_pd(b + k), b1 = _mm_loadu_pd(b + k + 2);
        __m128d b2 = _mm_loadu_pd(b + k + 4), b3 = _mm_loadu_pd(b + k + 6);
        for (size_t i = 0; i < m; i++) {
            const double *qi = q + i * d + k;
            __m128d ci = _mm_set1_pd(c[i]);
            __m128d t0 = _mm_sub_pd(_mm_loadu_pd(qi), b0);
            __m128d t1 = _mm_sub_pd(_mm_loadu_pd(qi + 2), b1);
            __m128d t2 = _mm_sub_pd(_mm_loadu_pd(qi + 4), b2);
            __m128d t3 = _mm_sub_pd(_mm_loadu_pd(qi + 6), b3);
            g0 = _mm_add_pd(g0, _mm_mul_pd(_mm_mul_pd(ci, t0), t0));
            g1 = _mm_add_pd(g1, _mm_mul_pd(_mm_mul_pd(ci, t1), t1));
            g2 = _mm_add_pd(g2, _mm_mul_pd(_mm_mul_pd(ci, t2), t2));
            g3 = _mm_add_pd(g3, _mm_mul_pd(_mm_mul_pd(ci, t3), t3));
        }
        _mm_storeu_pd(grad + k, g0);
        _mm_storeu_pd(grad + k + 2, g1);
        _mm_storeu_pd(grad + k + 4, g2);
        _mm_storeu_pd(grad + k + 6, g3);
    }
    for (; k + 2 <= d; k += 2) {
        __m128d g0 = _mm_loadu_pd(grad + k), b0 = _mm_loadu_pd(b + k);
        for (size_t i = 0; i < m; i++) {
            __m128d ci = _mm_set1_pd(c[i]);
            __m128d t0 = _mm_sub_pd(_mm_loadu_pd(q + i * d + k), b0);
            g0 = _mm_add_pd(g0, _mm_mul_pd(_mm_mul_pd(ci, t0), t0));
        }
        _mm_storeu_pd(grad + k, g0);
    }
#endif
    for (; k < d; k++) {
        double g = grad[k];
        for (size_t i = 0; i < m; i++) {
            double t = q[i * d + k] - b[k];
            g += c[i] * t * t;
        }
        grad[k] = g;
    }
}

/*
 * Gradient of the lml at the theta of the last ws_value (R&W eq. 5.9):
 * dlml/dtheta_j = tr(W dK/dtheta_j) / 2 with W = alpha alpha^T - K^-1. Overwrites L with K^-1
 * (kb_linalg_cholesky_inverse, 2 n^3 / 3 flops: the one inverse, as no exact trace avoids
 * it). The signal and
 * noise terms need no pass over the pairs: with Ky = K + (sn2 + jitter) I, tr(W Ky) =
 * y^T alpha - n, so tr(W dK/dlog sf2) = tr(W K) = y^T alpha - n - (sn2 + jitter) tr(W), and
 * tr(W dK/dlog sn2) = sn2 tr(W). The lengthscale terms are one pass over the n^2 / 2 pairs.
 */
static int ws_grad(lml_ws *w, const double *theta, double *grad, kb_error *err)
{
    size_t n = w->n, d = w->d;
    double sn2 = exp(theta[d + 1]);
    double y_alpha = cblas_ddot((int)n, w->y, 1, w->alpha, 1);
    int rc = kb_linalg_cholesky_inverse(w->l, n, n, err);
    if (rc != KB_OK) {
        return rc;
    }
    for (size_t k = 0; k < d; k++) {
        grad[k] = 0.0;
    }
    double tr_w = 0.0;
    const double *dk = w->dk;
    for (size_t j = 0; j < n; j++) {
        const double *kinv = w->l + j * n;
        double aj = w->alpha[j];
        tr_w += aj * aj - kinv[j];
        /* W_ij = alpha_i alpha_j - [K^-1]_ij; off-diagonal pairs count twice, times 1/2 */
        size_t m = n - j - 1;
        for (size_t i = 0; i < m; i++) {
            w->col[i] = (w->alpha[j + 1 + i] * aj - kinv[j + 1 + i]) * dk[i];
        }
        add_weighted_sqdist(grad, w->p + j * d, w->p + (j + 1) * d, w->col, m, d);
        dk += m;
    }
    grad[d] = 0.5 * (y_alpha - (double)n - (sn2 + w->jitter) * tr_w);
    grad[d + 1] = 0.5 * sn2 * tr_w;
    return KB_OK;
}

int kb_gp_lml(double *lml_out, double *grad_out, const double *x, size_t ld_x, size_t n,
              size_t d, const double *y, kb_gp_kernel kernel, const double *theta,
              double *jitter_out, kb_error *err)
{
    KB_CHECK_ARG(lml_out != NULL && theta != NULL && (n == 0 || (x != NULL && y != NULL)));
    KB_CHECK_ARG(ld_x >= n && d > 0);
    lml_ws w;
    int rc = ws_init(&w, x, ld_x, n, d, y, kernel, err);
    if (rc == KB_OK) {
        rc = ws_value(&w, theta, lml_out, err);
    }
    if (rc == KB_OK && jitter_out != NULL) {
        *jitter_out = w.jitter;
    }
    if (rc == KB_OK && grad_out != NULL) {
        rc = ws_grad(&w, theta, grad_out, err);
    }
    ws_release(&w);
    return rc;
}

/* ---- objective: -lml - log prior, on bounded theta ---- */

typedef struct objective {
    lml_ws *w;
    const kb_gp_prior *priors;
    const double *lo, *hi;
    size_t n_theta;
    size_t n_evals; /* values (one Cholesky each) */
    size_t n_grads; /* gradients (one K^-1 each) */
} objective;

static double log_prior(const kb_gp_prior *priors, const double *theta, double *grad,
                        size_t n_theta)
{
    double lp = 0.0;
    for (size_t j = 0; priors != NULL && j < n_theta; j++) {
        const kb_gp_prior *p = &priors[j];
        if (p->kind == KB_GP_PRIOR_LOGNORMAL && p->b > 0.0) {
            double z = (theta[j] - p->a) / p->b;
            lp += -0.5 * z * z;
            if (grad != NULL) {
                grad[j] += -z / p->b;
            }
        } else if (p->kind == KB_GP_PRIOR_GAMMA && p->a > 0.0 && p->b > 0.0) {
            /* density of theta = log(param): Gamma pdf times the Jacobian exp(theta) */
            lp += p->a * theta[j] - p->b * exp(theta[j]);
            if (grad != NULL) {
                grad[j] += p->a - p->b * exp(theta[j]);
            }
        }
    }
    return lp;
}

/* Objective value at theta (+inf when the covariance cannot be factorised). */
static double obj_value(objective *o, const double *theta)
{
    o->n_evals++;
    double lml;
    if (ws_value(o->w, theta, &lml, NULL) != KB_OK || !isfinite(lml)) {
        return INFINITY;
    }
    return -(lml + log_prior(o->priors, theta, NULL, o->n_theta));
}

/* Gradient at the theta of the last obj_value; 0 when it is not finite. */
static int obj_grad(objective *o, const double *theta, double *grad)
{
    o->n_grads++;
    if (ws_grad(o->w, theta, grad, NULL) != KB_OK) {
        return 0;
    }
    log_prior(o->priors, theta, grad, o->n_theta);
    for (size_t j = 0; j < o->n_theta; j++) {
        grad[j] = -grad[j];
        if (!isfinite(grad[j])) {
            return 0;
        }
    }
    return 1;
}

static void project(double *x, const double *lo, const double *hi, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        x[j] = x[j] < lo[j] ? lo[j] : (x[j] > hi[j] ? hi[j] : x[j]);
    }
}

/* Max-norm of the projected gradient: the first-order optimality measure with bounds. */
static double pg_norm(const double *x, const double *g, const double *lo, const double *hi,
                      size_t n)
{
    double m = 0.0;
    for (size_t j = 0; j < n; j++) {
        double t = x[j] - g[j];
        t = t < lo[j] ? lo[j] : (t > hi[j] ? hi[j] : t);
        m = fmax(m, fabs(t - x[j]));
    }
    return m;
}

/*
 * Bounded L-BFGS: two-loop recursion on the free variables (those not at a bound with the
 * gradient pushing outwards), projected backtracking Armijo line search. Minimises in place;
 * returns 1 if converged (tol on relative decrease, lml_tol or pgtol), 0 otherwise; *f_io
 * in/out.
 */
static int lbfgs_min(objective *o, double *x, double *f_io, double *g, const kb_gp_opts *go,
                     double lml_tol, size_t *n_iter_out, double *work)
{
    size_t max_iter = go->max_iter;
    double tol = go->tol, pgtol = go->pgtol;
    double f_hist[LML_TOL_ITERS]; /* f after the last LML_TOL_ITERS accepted steps */
    for (size_t j = 0; j < LML_TOL_ITERS; j++) {
        f_hist[j] = INFINITY;
    }
    size_t n = o->n_theta;
    double *s = work, *yv = s + LBFGS_MEMORY * n, *rho = yv + LBFGS_MEMORY * n;
    double *dir = rho + LBFGS_MEMORY, *xn = dir + n, *gn = xn + n, *al = gn + n;
    size_t m = 0, head = 0, it = 0;
    double f = *f_io;
    int converged = 0;
    for (it = 0; it < max_iter; it++) {
        if (pg_norm(x, g, o->lo, o->hi, n) <= pgtol) {
            converged = 1;
            break;
        }
        for (size_t j = 0; j < n; j++) {
            int at_lo = x[j] <= o->lo[j] && g[j] > 0.0, at_hi = x[j] >= o->hi[j] && g[j] < 0.0;
            dir[j] = (at_lo || at_hi) ? 0.0 : -g[j];
        }
        for (size_t c = 0; c < m; c++) {
            size_t k = (head + LBFGS_MEMORY - 1 - c) % LBFGS_MEMORY;
            al[k] = rho[k] * cblas_ddot((int)n, s + k * n, 1, dir, 1);
            cblas_daxpy((int)n, -al[k], yv + k * n, 1, dir, 1);
        }
        if (m > 0) {
            size_t k = (head + LBFGS_MEMORY - 1) % LBFGS_MEMORY;
            double yy = cblas_ddot((int)n, yv + k * n, 1, yv + k * n, 1);
            cblas_dscal((int)n, 1.0 / (rho[k] * yy), dir, 1);
        } else {
            /* first step: at most 1 in log units on any coordinate */
            double gm = 0.0;
            for (size_t j = 0; j < n; j++) {
                gm = fmax(gm, fabs(dir[j]));
            }
            if (gm > 1.0) {
                cblas_dscal((int)n, 1.0 / gm, dir, 1);
            }
        }
        for (size_t c = m; c-- > 0;) {
            size_t k = (head + LBFGS_MEMORY - 1 - c) % LBFGS_MEMORY;
            double b = rho[k] * cblas_ddot((int)n, yv + k * n, 1, dir, 1);
            cblas_daxpy((int)n, al[k] - b, s + k * n, 1, dir, 1);
        }
        for (size_t j = 0; j < n; j++) {
            int at_lo = x[j] <= o->lo[j] && dir[j] < 0.0, at_hi = x[j] >= o->hi[j] && dir[j] > 0.0;
            if (at_lo || at_hi) {
                dir[j] = 0.0;
            }
        }
        double slope = cblas_ddot((int)n, g, 1, dir, 1);
        if (!(slope < 0.0)) {
            /* not a descent direction: fall back to steepest descent and forget curvature */
            for (size_t j = 0; j < n; j++) {
                dir[j] = -g[j];
            }
            m = 0;
            slope = cblas_ddot((int)n, g, 1, dir, 1);
        }
        double t = 1.0, fn = INFINITY;
        int ok = 0;
        for (int ls = 0; ls < 30; ls++) {
            for (size_t j = 0; j < n; j++) {
                xn[j] = x[j] + t * dir[j];
            }
            project(xn, o->lo, o->hi, n);
            /* the value alone first: a rejected step costs one Cholesky, not the inverse */
            fn = obj_value(o, xn);
            double dec = 0.0;
            for (size_t j = 0; j < n; j++) {
                dec += g[j] * (xn[j] - x[j]);
            }
            if (isfinite(fn) && fn <= f + 1e-4 * dec) {
                if (obj_grad(o, xn, gn)) {
                    ok = 1;
                    break;
                }
                fn = INFINITY;
            }
            t *= 0.5;
        }
        if (!ok) {
            if (m == 0) {
                break; /* steepest descent failed too: as good as we can do */
            }
            m = 0;
            continue;
        }
        double *sk = s + head * n, *yk = yv + head * n;
        for (size_t j = 0; j < n; j++) {
            sk[j] = xn[j] - x[j];
            yk[j] = gn[j] - g[j];
        }
        double sy = cblas_ddot((int)n, sk, 1, yk, 1);
        double ss = cblas_ddot((int)n, sk, 1, sk, 1), yy = cblas_ddot((int)n, yk, 1, yk, 1);
        /* curvature floor: skip pairs with s'y too small to keep the inverse Hessian PD */
        if (sy > 1e-10 * sqrt(ss * yy)) {
            rho[head] = 1.0 / sy;
            head = (head + 1) % LBFGS_MEMORY;
            if (m < LBFGS_MEMORY) {
                m++;
            }
        }
        double rel = (f - fn) / fmax(fmax(fabs(f), fabs(fn)), 1.0);
        memcpy(x, xn, n * sizeof(double));
        memcpy(g, gn, n * sizeof(double));
        f = fn;
        /* lml_tol: progress below it over several steps is noise in the lml's own units */
        int stalled = it >= LML_TOL_ITERS && f_hist[it % LML_TOL_ITERS] - f < lml_tol;
        f_hist[it % LML_TOL_ITERS] = f;
        if (rel <= tol || stalled) {
            converged = 1;
            it++;
            break;
        }
    }
    *f_io = f;
    *n_iter_out = it;
    return converged;
}

static int finish_model(kb_gp *gp, lml_ws *w, kb_gp_fit_info *info, kb_error *err)
{
    double f;
    int rc = ws_value(w, gp->theta, &f, err);
    if (rc != KB_OK) {
        return rc;
    }
    info->jitter = w->jitter;
    info->lml = f;
    size_t n = gp->n;
    memcpy(gp->l, w->l, n * n * sizeof(double));
    memcpy(gp->alpha, w->alpha, n * sizeof(double));
    return KB_OK;
}

/* Bounds and L-BFGS workspace of one fit (nt = d + 2 hyperparameters). */
typedef struct fit_space {
    size_t nt;
    const double *lo, *hi;
    double *cur, *g, *lb;
} fit_space;

/*
 * Multi-start L-BFGS on the first n points of (x, z): from theta_io, then n_restarts uniform
 * starts drawn from rng; the best result replaces theta_io. Counts into info; KB_ENUMERIC when
 * no start could be factorised.
 */
static int optimize_on(double *theta_io, kb_gp_fit_info *info, const double *x, size_t ld_x,
                       size_t n, size_t d, const double *z, const kb_gp_opts *o,
                       const fit_space *fs, size_t n_restarts, double lml_tol, kb_rng *rng,
                       kb_error *err)
{
    size_t nt = fs->nt;
    lml_ws w;
    int rc = ws_init(&w, x, ld_x, n, d, z, o->kernel, err);
    if (rc != KB_OK) {
        return rc;
    }
    objective ob = {&w, o->priors, fs->lo, fs->hi, nt, 0, 0};
    double f_best = INFINITY, *cur = fs->cur, *g = fs->g;
    for (size_t s = 0; s <= n_restarts; s++) {
        if (s == 0) {
            memcpy(cur, theta_io, nt * sizeof(double));
        } else {
            for (size_t k = 0; k < nt; k++) {
                cur[k] = fs->lo[k] + (fs->hi[k] - fs->lo[k]) * kb_rng_uniform(rng);
            }
        }
        double f = obj_value(&ob, cur);
        if (!isfinite(f) || !obj_grad(&ob, cur, g)) {
            info->n_failed++;
            continue;
        }
        size_t it = 0;
        int conv = lbfgs_min(&ob, cur, &f, g, o, lml_tol, &it, fs->lb);
        if (f < f_best) {
            f_best = f;
            memcpy(theta_io, cur, nt * sizeof(double));
            info->converged = conv;
            info->n_iter = it;
        }
    }
    info->n_evals += ob.n_evals;
    info->n_grads += ob.n_grads;
    ws_release(&w);
    if (!isfinite(f_best)) {
        return kb_error_set(err, KB_ENUMERIC,
                            "gp: no start gave a positive-definite covariance (%zu points)", n);
    }
    return KB_OK;
}

/*
 * Between ladder levels: a subset too small to see a weak dimension sends its lengthscale far
 * out, where the likelihood is flat and L-BFGS would never bring it back, so such lengthscales
 * are re-opened. A dimension counts as out when its lengthscale exceeds both the unit cube's
 * width and sqrt(sf2): for l >> 1 the kernels vary as sf2 r^2 / l^2 across the cube, so a large
 * signal variance with large lengthscales (a smooth, large-amplitude fit, common with many
 * points) is not a dimension gone. An out dimension comes back to the largest lengthscale of
 * those still in, at least 1 (the cube's width), so that it is as relevant as the weakest of
 * them. (Bringing every log l > 0 back to 0, as before, restarted n = 3,000 of bench_gp's data
 * at -lml 5,042 instead of 2,163 when sf2 had grown to e^8.5: 25 more full-size iterations.)
 */
static void reopen_lengthscales(double *theta, size_t d, const fit_space *fs)
{
    double out = fmax(0.0, 0.5 * theta[d]), back = 0.0;
    for (size_t k = 0; k < d; k++) {
        if (theta[k] <= out) {
            back = fmax(back, theta[k]);
        }
    }
    for (size_t k = 0; k < d; k++) {
        if (theta[k] > out) {
            theta[k] = fmin(fmax(back, fs->lo[k]), fs->hi[k]);
        }
    }
}

/*
 * Hyperparameters on nested random subsets before all points: n_subset points with every
 * start, then 3x more per level with one start from the level below, until the last level
 * (all n points). A level costs (m / n)^3 of the full one per evaluation. Between levels,
 * lengthscales gone out are re-opened (reopen_lengthscales; on bench_gp's data at n = 1,000:
 * lml -858 kept vs -802 re-opened, scikit-learn's single start -854). Every level stops at
 * lml_tol_per_point * m (1 nat per 5 iterations at m = 1,000 by default): on that data the
 * last full-size iterations of n = 3,000 gained 14 nats over 40 iterations and moved the
 * held-out log predictive density by 0.005.
 */
static int optimize_ladder(double *theta_io, kb_gp_fit_info *info, const kb_gp *gp,
                           const kb_gp_opts *o, const fit_space *fs, kb_rng *rng, kb_error *err)
{
    size_t n = gp->n, d = gp->d, m = o->n_subset;
    if (m < 2 || n < 2 * m) {
        return optimize_on(theta_io, info, gp->x, n, n, d, gp->z, o, fs, o->n_restarts,
                           o->lml_tol, rng, err);
    }
    size_t *perm = kb_malloc_array(n, sizeof(size_t));
    double *xp = kb_malloc_array(n * d, sizeof(double)), *zp = kb_malloc_array(n, sizeof(double));
    int rc = KB_OK;
    if (perm == NULL || xp == NULL || zp == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "gp: out of memory");
        goto done;
    }
    kb_rng sub;
    kb_rng_split(&sub, rng, 0x5eb5e7u);
    for (size_t i = 0; i < n; i++) {
        perm[i] = i;
    }
    kb_rng_shuffle(&sub, perm, n);
    for (size_t i = 0; i < n; i++) {
        zp[i] = gp->z[perm[i]];
        for (size_t k = 0; k < d; k++) {
            xp[i + k * n] = gp->x[perm[i] + k * n];
        }
    }
    size_t restarts = o->n_restarts;
    for (;;) {
        double tol = fmax(o->lml_tol, o->lml_tol_per_point * (double)m);
        rc = optimize_on(theta_io, info, xp, n, m, d, zp, o, fs, restarts, tol, rng, err);
        if (rc != KB_OK || m == n) {
            break;
        }
        restarts = 0;
        m = 3 * m <= n / 2 ? 3 * m : n;
        reopen_lengthscales(theta_io, d, fs);
    }
done:
    kb_free(perm);
    kb_free(xp);
    kb_free(zp);
    return rc;
}

int kb_gp_fit(kb_gp **out, const double *x, size_t ld_x, size_t n, size_t d, const double *y,
              const kb_gp_opts *opts, kb_gp_fit_info *info_out, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && d > 0 && ld_x >= n && (n == 0 || (x != NULL && y != NULL)));
    *out = NULL;
    kb_gp_opts defaults = KB_GP_OPTS_INIT;
    const kb_gp_opts *o = opts != NULL ? opts : &defaults;
    KB_CHECK_ARG(o->log_sn2_min > -INFINITY && o->log_sn2_min <= o->log_sn2_max);
    KB_CHECK_ARG(o->log_ls_min <= o->log_ls_max && o->log_sf2_min <= o->log_sf2_max);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i])) {
            return kb_error_set(err, KB_EINVAL, "gp: target %zu is not finite", i);
        }
        for (size_t k = 0; k < d; k++) {
            if (!isfinite(x[i + k * ld_x])) {
                return kb_error_set(err, KB_EINVAL, "gp: input (%zu, %zu) is not finite", i, k);
            }
        }
    }
    kb_gp_fit_info info = {0};
    size_t nt = d + 2;
    kb_gp *gp = NULL;
    lml_ws w = {0};
    double *work = NULL;
    int rc = KB_OK;
    gp = kb_calloc(1, sizeof *gp);
    if (gp == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "gp: out of memory");
        goto done;
    }
    gp->n = n;
    gp->d = d;
    gp->kernel = o->kernel;
    gp->theta = kb_malloc_array(nt, sizeof(double));
    gp->x = kb_malloc_array(n * d + 1, sizeof(double));
    gp->l = kb_malloc_array(n * n + 1, sizeof(double));
    gp->alpha = kb_malloc_array(n + 1, sizeof(double));
    gp->z = kb_malloc_array(n + 1, sizeof(double));
    /* theta x3 (lo, hi, best) + L-BFGS memory + cur/grad/start */
    work = kb_malloc_array(nt * (2 * LBFGS_MEMORY + 12) + LBFGS_MEMORY, sizeof(double));
    if (gp->theta == NULL || gp->x == NULL || gp->l == NULL || gp->alpha == NULL ||
        gp->z == NULL || work == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "gp: out of memory");
        goto done;
    }
    for (size_t k = 0; k < d; k++) {
        for (size_t i = 0; i < n; i++) {
            gp->x[i + k * n] = x[i + k * ld_x];
        }
    }
    gp->y_mean = 0.0;
    gp->y_sd = 1.0;
    if (o->normalize_y && n > 0) {
        double s = 0.0, ss = 0.0;
        for (size_t i = 0; i < n; i++) {
            s += y[i];
        }
        gp->y_mean = s / (double)n;
        for (size_t i = 0; i < n; i++) {
            ss += (y[i] - gp->y_mean) * (y[i] - gp->y_mean);
        }
        double sd = n > 1 ? sqrt(ss / (double)n) : 0.0;
        gp->y_sd = sd > 0.0 ? sd : 1.0; /* constant targets: keep the unit scale */
    }
    for (size_t i = 0; i < n; i++) {
        gp->z[i] = (y[i] - gp->y_mean) / gp->y_sd;
    }
    double *lo = work, *hi = lo + nt, *best = hi + nt, *cur = best + nt, *g = cur + nt;
    double *lb = g + nt;
    for (size_t k = 0; k < nt; k++) {
        lo[k] = k < d ? o->log_ls_min : (k == d ? o->log_sf2_min : o->log_sn2_min);
        hi[k] = k < d ? o->log_ls_max : (k == d ? o->log_sf2_max : o->log_sn2_max);
        double t0 = k < d ? log(0.5) : (k == d ? 0.0 : log(1e-3));
        best[k] = o->theta_init != NULL ? o->theta_init[k] : t0;
    }
    project(best, lo, hi, nt);
    memcpy(gp->theta, best, nt * sizeof(double));
    if (n == 0) {
        goto done;
    }
    if (o->optimize) {
        fit_space fs = {nt, lo, hi, cur, g, lb};
        kb_rng rng;
        kb_rng_seed(&rng, o->seed);
        rc = optimize_ladder(gp->theta, &info, gp, o, &fs, &rng, err);
        if (rc != KB_OK) {
            goto done;
        }
    } else {
        info.converged = 1;
    }
    info.log_prior = log_prior(o->priors, gp->theta, NULL, nt);
    rc = ws_init(&w, gp->x, n, n, d, gp->z, o->kernel, err);
    if (rc == KB_OK) {
        rc = finish_model(gp, &w, &info, err);
    }
done:
    ws_release(&w);
    kb_free(work);
    if (info_out != NULL) {
        *info_out = info;
    }
    if (rc != KB_OK) {
        kb_gp_free(gp);
        return rc;
    }
    *out = gp;
    return KB_OK;
}

/* Columns of X* per block: bounds the n x block workspace of a prediction. */
#define PREDICT_BLOCK 512

int kb_gp_predict(double *mean_out, double *var_out, const kb_gp *gp, const double *xs,
                  size_t ld_xs, size_t m, kb_error *err)
{
    KB_CHECK_ARG(mean_out != NULL && gp != NULL && (m == 0 || xs != NULL) && ld_xs >= m);
    size_t n = gp->n, d = gp->d;
    double sf2 = exp(gp->theta[d]);
    if (n == 0) {
        for (size_t j = 0; j < m; j++) {
            mean_out[j] = gp->y_mean;
            if (var_out != NULL) {
                var_out[j] = sf2 * gp->y_sd * gp->y_sd;
            }
        }
        return KB_OK;
    }
    size_t bs = m < PREDICT_BLOCK ? m : PREDICT_BLOCK;
    if (!kb_linalg_size_ok(n, bs)) {
        return kb_error_set(err, KB_EINVAL, "gp: prediction too large");
    }
    double *ks = kb_malloc_array(n * bs + 1, sizeof(double));
    if (ks == NULL) {
        return kb_error_set(err, KB_ENOMEM, "gp: out of memory predicting %zu points", m);
    }
    for (size_t j0 = 0; j0 < m; j0 += bs) {
        size_t b = m - j0 < bs ? m - j0 : bs;
        kb_gp_kernel_matrix(ks, n, gp->x, n, n, xs + j0, ld_xs, b, d, gp->kernel, gp->theta);
        cblas_dgemv(CblasColMajor, CblasTrans, (int)n, (int)b, 1.0, ks, (int)n, gp->alpha, 1,
                    0.0, mean_out + j0, 1);
        if (var_out != NULL) {
            cblas_dtrsm(CblasColMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit,
                        (int)n, (int)b, 1.0, gp->l, (int)n, ks, (int)n);
            for (size_t j = 0; j < b; j++) {
                double v = sf2 - cblas_ddot((int)n, ks + j * n, 1, ks + j * n, 1);
                var_out[j0 + j] = fmax(v, 0.0) * gp->y_sd * gp->y_sd;
            }
        }
        for (size_t j = 0; j < b; j++) {
            mean_out[j0 + j] = gp->y_mean + gp->y_sd * mean_out[j0 + j];
        }
    }
    kb_free(ks);
    return KB_OK;
}

int kb_gp_loo(double *mean_out, double *var_out, const kb_gp *gp, kb_error *err)
{
    KB_CHECK_ARG(mean_out != NULL && var_out != NULL && gp != NULL);
    size_t n = gp->n;
    if (n == 0) {
        return KB_OK;
    }
    double *kinv = kb_malloc_array(n * n, sizeof(double));
    if (kinv == NULL) {
        return kb_error_set(err, KB_ENOMEM, "gp: out of memory");
    }
    memcpy(kinv, gp->l, n * n * sizeof(double));
    int rc = kb_linalg_cholesky_inverse(kinv, n, n, err);
    if (rc != KB_OK) {
        kb_free(kinv);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        double kii = kinv[i + i * n];
        mean_out[i] = gp->y_mean + gp->y_sd * (gp->z[i] - gp->alpha[i] / kii);
        var_out[i] = gp->y_sd * gp->y_sd / kii;
    }
    kb_free(kinv);
    return KB_OK;
}
