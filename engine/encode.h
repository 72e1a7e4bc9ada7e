/*
 * Encoding of search-space configurations for the optimisers.
 *
 * Two representations of a configuration of a kb_space with P parameters:
 *  - u (P values, "unit parameters"): one number in [0, 1] per parameter. FLOAT/INT map their
 *    range linearly, or linearly in log space when `log` is set; INT values sit on the grid
 *    of the integers; CATEGORICAL/BOOL choice k of K is (k + 0.5) / K (BOOL: false = 0,
 *    true = 1). An inactive conditional parameter is NaN. TPE works on u, per parameter.
 *  - x (D features, "kernel features"): what the GP kernel sees. A numeric parameter is one
 *    feature (u, or 0.5 when inactive); a categorical one is K one-hot features (all 0 when
 *    inactive); a bool one feature (0/1, 0.5 when inactive). Two configurations in which a
 *    parameter is inactive therefore agree on its features, and an inactive parameter is at a
 *    fixed, bounded distance from every active value: the kernel treats activity consistently
 *    and stays stationary.
 * Matrices of points are column-major: point i, parameter j at U[i + j*ld] (STYLE.md 6).
 *
 * Sampling: uniform, Latin hypercube and Sobol (Joe & Kuo 2008 direction numbers, the ones
 * scipy.stats.qmc.Sobol uses, for up to KB_ENCODE_SOBOL_MAX_DIM parameters; beyond that LHS),
 * all from an explicit kb_rng, then snapped so conditions hold.
 */
#ifndef KB_ENGINE_ENCODE_H
#define KB_ENGINE_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/error.h"
#include "engine/core/rng.h"
#include "engine/core/space.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KB_ENCODE_SOBOL_MAX_DIM 21

typedef struct kb_encode kb_encode;

/**
 * A finite set of candidate configurations (u, n x P column-major, ld >= n), e.g. the rows of
 * a cross-evaluated table; used[i] != 0 marks a row that may not be proposed (NULL: none).
 * Optimisers given a pool choose among its unused rows instead of searching the space.
 */
typedef struct kb_encode_pool {
    const double *u;
    size_t ld, n;
    const unsigned char *used;
} kb_encode_pool;

typedef enum kb_encode_design {
    KB_ENCODE_DESIGN_UNIFORM = 0,
    KB_ENCODE_DESIGN_LHS = 1,
    KB_ENCODE_DESIGN_SOBOL = 2
} kb_encode_design;

/**
 * Build the encoder of `space` (validated with kb_space_validate).
 * @param[out] out caller owns; free with kb_encode_free(). The encoder borrows `space`,
 *                 which must outlive it.
 * @return KB_OK, KB_EFORMAT (invalid space), KB_ENOMEM.
 */
int kb_encode_new(kb_encode **out, const kb_space *space, kb_error *err);
void kb_encode_free(kb_encode *e);

/** Number of parameters P (length of u). */
size_t kb_encode_n_params(const kb_encode *e);
/** Number of kernel features D (length of x). */
size_t kb_encode_n_dims(const kb_encode *e);
/** The space parameter behind u[j] (borrowed). */
const kb_space_param *kb_encode_param(const kb_encode *e, size_t j);
/** Number of choices of parameter j (CATEGORICAL: n_choices, BOOL: 2), 0 if numeric. */
size_t kb_encode_n_choices(const kb_encode *e, size_t j);

/**
 * u of a configuration (checked with kb_space_check_config first).
 * @return KB_OK, KB_EFORMAT when the configuration does not fit the space.
 */
int kb_encode_config(double *u_out, const kb_encode *e, const kb_param *config, size_t n,
                     kb_error *err);
/**
 * The configuration of u (snapped first; inactive parameters omitted), sorted by name.
 * @param[out] config_out caller owns; free with kb_params_free(*config_out, *n_out).
 * @return KB_OK, KB_ENOMEM.
 */
int kb_encode_decode(kb_param **config_out, size_t *n_out, const kb_encode *e, const double *u,
                     kb_error *err);
/**
 * Make any vector a valid u in place: clamp to [0, 1] (NaN of an active parameter becomes
 * its default, or 0.5), round INT to its grid, choices to their centres, and set inactive
 * parameters to NaN (conditions applied in dependency order).
 */
void kb_encode_snap(const kb_encode *e, double *u);
/** Whether parameter j is active in the (snapped) u. */
int kb_encode_active(const kb_encode *e, const double *u, size_t j);
/** Largest difference of two u entries of the same configuration (round-off of a decode and
    encode round trip). */
#define KB_ENCODE_SAME_TOL 1e-9

/**
 * Whether two u vectors of P parameters are the same configuration: every entry within
 * KB_ENCODE_SAME_TOL (NaN equals NaN); their entries are a[j * inc_a] and b[j * inc_b], so
 * rows of column-major matrices compare too.
 */
int kb_encode_same(const double *a, size_t inc_a, const double *b, size_t inc_b, size_t p);
/** Kernel features x (D values) of a snapped u. */
void kb_encode_features(double *x_out, const kb_encode *e, const double *u);
/** Kernel features of n points: U (n x P, ld_u) to X (n x D, ld_x), column-major. */
void kb_encode_features_matrix(double *x_out, size_t ld_x, const kb_encode *e, const double *u,
                               size_t ld_u, size_t n);
/**
 * n configurations (u, snapped) into U (n x P, ld >= n) by `design`, from `rng`.
 * Sobol points get a random digital shift from rng, so different seeds give different sets.
 * @return KB_OK, KB_EINVAL (bad sizes).
 */
int kb_encode_sample(double *u_out, size_t ld, const kb_encode *e, size_t n,
                     kb_encode_design design, kb_rng *rng, kb_error *err);
/**
 * Raw Sobol points in [0, 1)^dim (n x dim, ld >= n), Gray-code order starting at the origin,
 * dim <= KB_ENCODE_SOBOL_MAX_DIM. rng == NULL: unscrambled (as scipy's Sobol with
 * scramble=False); otherwise with a random digital shift drawn from rng.
 */
int kb_encode_sobol(double *out, size_t ld, size_t n, size_t dim, kb_rng *rng, kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
