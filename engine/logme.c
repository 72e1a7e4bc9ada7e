/*
 * LogME (engine/logme.h): one symmetric eigendecomposition, then per class a fixed-point
 * loop on (alpha, beta) that touches only the eigenvalues and the projections of F'y.
 */
#include "engine/logme.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/linalg.h"

#define KB_LOGME_TWO_PI 6.28318530717958647692

/*
 * The authors' guard (thuml/LogME, epsilon = 1e-5) added to both denominators: it keeps
 * alpha finite when m vanishes (features orthogonal to a class) and beta finite when a class
 * is fitted exactly (n <= d makes interpolation possible).
 */
#define KB_LOGME_EPS 1e-5
#define KB_LOGME_FLOOR 1e-100 /* (alpha + beta s)^2 must not underflow */

typedef struct class_fit {
    double evidence; /* L / n */
    size_t iterations;
    int converged;
} class_fit;

/* m'm and |y - F m|^2 at (alpha, beta) from the spectrum s and squared projections t2. */
static void moments(double *mm, double *res, double *gamma, const double *s, const double *t2,
                    size_t k, double y2, double alpha, double beta)
{
    double a = 0.0, r = 0.0, g = 0.0;
    for (size_t j = 0; j < k; j++) {
        double den = alpha + beta * s[j];
        a += t2[j] / (den * den);
        r += t2[j] * (2.0 * alpha + beta * s[j]) / (den * den);
        g += beta * s[j] / den;
    }
    *mm = beta * beta * a;
    /* |y - Fm|^2 >= 0 in exact arithmetic; the subtraction may round below 0 */
    *res = fmax(y2 - beta * r, 0.0);
    *gamma = g;
}

static int fit_class(class_fit *out, const double *s, const double *t2, size_t k, size_t n,
                     size_t d, double y2, const kb_logme_opts *o)
{
    double alpha = 1.0, beta = 1.0, mm, res, gamma;
    out->converged = 0;
    out->iterations = 0;
    for (size_t it = 0; it < o->max_iter; it++) {
        moments(&mm, &res, &gamma, s, t2, k, y2, alpha, beta);
        /*
         * gamma is 0 when every eigenvalue is (features all zero): alpha's fixed point is then
         * 0, where L does not depend on alpha (its two log alpha terms cancel); the floor
         * keeps the logs finite.
         */
        double na = fmax(gamma / (mm + KB_LOGME_EPS), KB_LOGME_FLOOR);
        double nb = fmax(((double)n - gamma) / (res + KB_LOGME_EPS), KB_LOGME_FLOOR);
        if (!isfinite(na) || !isfinite(nb)) {
            return KB_ENUMERIC;
        }
        int done = fabs(na - alpha) <= o->tol * alpha && fabs(nb - beta) <= o->tol * beta;
        alpha = na;
        beta = nb;
        out->iterations = it + 1;
        if (done) {
            out->converged = 1;
            break;
        }
    }
    moments(&mm, &res, &gamma, s, t2, k, y2, alpha, beta);
    double logdet = (double)(d - k) * log(alpha);
    for (size_t j = 0; j < k; j++) {
        logdet += log(alpha + beta * s[j]);
    }
    double dn = (double)n;
    double ev = 0.5 * (double)d * log(alpha) + 0.5 * dn * log(beta) -
                0.5 * dn * log(KB_LOGME_TWO_PI) - 0.5 * alpha * mm - 0.5 * beta * res -
                0.5 * logdet;
    out->evidence = ev / dn;
    return isfinite(out->evidence) ? KB_OK : KB_ENUMERIC;
}

static int check_inputs(size_t *counts, const double *f, size_t n, size_t d, size_t ld,
                        const double *y, size_t n_classes, kb_error *err)
{
    for (size_t j = 0; j < d; j++) {
        for (size_t i = 0; i < n; i++) {
            if (!isfinite(f[i + j * ld])) {
                return kb_error_set(err, KB_EINVAL, "logme: feature %zu of sample %zu is not "
                                    "finite", j + 1, i + 1);
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!(y[i] >= 0 && y[i] < (double)n_classes && y[i] == floor(y[i]))) {
            return kb_error_set(err, KB_EINVAL, "logme: label %zu is %g, expected 0..%zu",
                                i + 1, y[i], n_classes - 1);
        }
        counts[(size_t)y[i]]++;
    }
    for (size_t c = 0; c < n_classes; c++) {
        if (counts[c] == 0) {
            return kb_error_set(err, KB_EINVAL, "logme: class %zu has no samples", c);
        }
    }
    return KB_OK;
}

/*
 * Squared projections t2 (k x C) of each class's F'y on the eigenvectors in `g` (k x k).
 * n <= d: g holds U (eigenvectors of F F'), and t_j = s_j^(1/2) u_j'y, so t_j^2 = s_j (u_j'y)^2.
 * n > d:  g holds V (eigenvectors of F'F), and t_j = v_j'F'y.
 */
static int projections(double *t2, const double *g, const double *s, size_t k, const double *f,
                       size_t n, size_t d, size_t ld, const double *y, size_t n_classes)
{
    if (n <= d) {
        for (size_t c = 0; c < n_classes; c++) {
            for (size_t j = 0; j < k; j++) {
                double z = 0.0;
                for (size_t i = 0; i < n; i++) {
                    z += (size_t)y[i] == c ? g[i + j * k] : 0.0;
                }
                t2[j + c * k] = s[j] * z * z;
            }
        }
        return KB_OK;
    }
    double *fy = kb_calloc(d * n_classes, sizeof(double));
    double *t = kb_malloc_array(k * n_classes, sizeof(double));
    if (fy == NULL || t == NULL) {
        kb_free(fy);
        kb_free(t);
        return KB_ENOMEM;
    }
    for (size_t j = 0; j < d; j++) {
        for (size_t i = 0; i < n; i++) {
            fy[j + (size_t)y[i] * d] += f[i + j * ld];
        }
    }
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)k, (int)n_classes, (int)d, 1.0, g,
                (int)k, fy, (int)d, 0.0, t, (int)k);
    for (size_t i = 0; i < k * n_classes; i++) {
        t2[i] = t[i] * t[i];
    }
    kb_free(fy);
    kb_free(t);
    return KB_OK;
}

int kb_logme_score(kb_logme_result *out, const double *f, size_t n, size_t d, size_t ld,
                   const double *y, size_t n_classes, const kb_logme_opts *opts,
                   kb_error *err)
{
    KB_CHECK_ARG(out != NULL && f != NULL && y != NULL);
    memset(out, 0, sizeof *out);
    kb_logme_opts defaults = KB_LOGME_OPTS_INIT;
    const kb_logme_opts *o = opts != NULL ? opts : &defaults;
    if (n < 2 || d < 1 || n_classes < 1 || ld < n || !kb_linalg_size_ok(ld, d) ||
        !kb_linalg_size_ok(n, n_classes) || !kb_linalg_size_ok(d, n_classes)) {
        return kb_error_set(err, KB_EINVAL, "logme: bad sizes n=%zu d=%zu ld=%zu classes=%zu",
                            n, d, ld, n_classes);
    }
    if (o->max_iter < 1 || !(o->tol >= 0)) {
        return kb_error_set(err, KB_EINVAL, "logme: max_iter must be >= 1 and tol >= 0");
    }
    size_t k = n <= d ? n : d;
    int rc = KB_OK;
    size_t *counts = kb_calloc(n_classes, sizeof(size_t));
    double *g = kb_malloc_array(k * k, sizeof(double));
    double *s = kb_malloc_array(k, sizeof(double));
    double *t2 = kb_malloc_array(k * n_classes, sizeof(double));
    if (counts == NULL || g == NULL || s == NULL || t2 == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = check_inputs(counts, f, n, d, ld, y, n_classes, err)) != KB_OK) {
        goto done;
    }
    /* the smaller Gram matrix: F F' (n x n) or F'F (d x d), lower triangle */
    if (n <= d) {
        cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, (int)n, (int)d, 1.0, f, (int)ld,
                    0.0, g, (int)k);
    } else {
        cblas_dsyrk(CblasColMajor, CblasLower, CblasTrans, (int)d, (int)n, 1.0, f, (int)ld, 0.0,
                    g, (int)k);
    }
    lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', (lapack_int)k, g,
                                     (lapack_int)k, s);
    if (info != 0) {
        rc = kb_error_set_cause(err, KB_ENUMERIC, (int)info,
                                "logme: eigendecomposition failed (info %d)", (int)info);
        goto done;
    }
    for (size_t j = 0; j < k; j++) {
        s[j] = fmax(s[j], 0.0); /* a Gram matrix is PSD; rounding may leave tiny negatives */
    }
    if (projections(t2, g, s, k, f, n, d, ld, y, n_classes) != KB_OK) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory");
        goto done;
    }
    double sum = 0.0;
    out->converged = 1;
    for (size_t c = 0; c < n_classes; c++) {
        class_fit cf;
        if (fit_class(&cf, s, t2 + c * k, k, n, d, (double)counts[c], o) != KB_OK) {
            rc = kb_error_set(err, KB_ENUMERIC, "logme: class %zu: the evidence is not finite",
                              c);
            goto done;
        }
        sum += cf.evidence;
        out->converged &= cf.converged;
        if (cf.iterations > out->max_iterations) {
            out->max_iterations = cf.iterations;
        }
    }
    out->score = sum / (double)n_classes;
    out->n_classes = n_classes;
done:
    kb_free(counts);
    kb_free(g);
    kb_free(s);
    kb_free(t2);
    return rc;
}
