#!/usr/bin/python3
"""Reference values for kb_recommend_model_fit / kb_recommend_model_weights
(tests/unit/test_recommend.c).

A textbook Gaussian process in numpy: for every configuration every task evaluated, the
restricted log likelihood of y_c ~ N(m_c 1, s_c^2 (r K + I)), K_ij = exp(-d_ij / h), with m_c
(generalised least squares) and s_c^2 profiled out,
  -1/2 [log|A| + log(1'A^-1 1) + (n - 1) log s_c^2],  s_c^2 = e'A^-1 e / (n - 1),
summed over the configurations, maximised over the grid h = b x median(d), b in {0.25, 0.5, 1,
2, 4}, r in {0, 0.01, ..., 100} (strict improvement by 1e-9 in that order); then the
posterior-mean weights of a query by conditioning directly:
  mu = m + r k' A^-1 (y - m 1), m = 1'A^-1 y / 1'A^-1 1, written as alpha'y.
The C code uses one eigendecomposition per bandwidth and closed forms instead, so this checks
its algebra as well as its arithmetic.

Run once with Debian's python:
  /usr/bin/python3 tests/ref/recommend_model_ref.py > tests/data/recommend_model_ref.txt
Output: "name count values..." records (tests/refdata.h).
"""
import numpy as np

BANDWIDTHS = [0.25, 0.5, 1.0, 2.0, 4.0]
SIGNALS = [0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]


def reml(S, D, h, r):
    n = S.shape[0]
    A = r * np.exp(-D / h) + np.eye(n)
    one = np.ones(n)
    _, logdet = np.linalg.slogdet(A)
    Ai1 = np.linalg.solve(A, one)
    ll = 0.0
    for c in range(S.shape[1]):
        y = S[:, c]
        if np.isnan(y).any():
            continue
        m = Ai1 @ y / (one @ Ai1)
        e = y - m
        s2 = max(e @ np.linalg.solve(A, e) / (n - 1), 1e-12)
        ll += -0.5 * (logdet + np.log(one @ Ai1) + (n - 1) * np.log(s2))
    return ll


def fit(S, D):
    n = D.shape[0]
    med = np.median(D[np.triu_indices(n, 1)])
    best = (-np.inf, 1.0, med, 0.0)
    for b in BANDWIDTHS:
        for r in SIGNALS:
            ll = reml(S, D, b * med, r)
            if ll > best[0] + 1e-9:
                best = (ll, b, b * med, r)
    return best


def alpha(D, dq, h, r):
    n = D.shape[0]
    A = r * np.exp(-D / h) + np.eye(n)
    k = np.exp(-dq / h)
    one = np.ones(n)
    # alpha' y = m + r k'A^-1 (y - m 1) with m = u'y / s: differentiate in y
    u = np.linalg.solve(A, one)
    s = one @ u
    g = np.linalg.solve(A, k)
    return u / s + r * g - r * (k @ u) / s * u


def emit(name, values):
    values = np.asarray(values, dtype=float).ravel(order='F')
    print(name, len(values), ' '.join(repr(float(v)) if np.isfinite(v) else 'nan'
                                      for v in values))


def main():
    rng = np.random.default_rng(5)
    T, C = 12, 15
    pts = rng.uniform(0, 1, size=(T + 1, 2))  # the last point is the query
    D_all = np.abs(pts[:, None, :] - pts[None, :, :]).sum(-1)
    S = np.empty((T, C))
    for t in range(T):
        # nearby tasks prefer nearby configurations, plus each task's own noise
        row = np.sin(4 * pts[t, 0] + 0.5 * np.arange(C)) + 0.4 * rng.standard_normal(C)
        row = (row - row.min()) / (row.max() - row.min())
        S[t] = row
    S[3, 7] = np.nan  # a configuration one task lacks: left out of the fit
    D, dq = D_all[:T, :T], D_all[T, :T]
    ll, b, h, r = fit(S, D)
    emit('scores', S)          # T x C column-major
    emit('dist', D)            # T x T
    emit('query_dist', dq)
    emit('fit', [b, h, r, ll])
    emit('alpha', alpha(D, dq, h, r))
    # the same query at a fixed model with a larger signal, for the weights alone
    emit('alpha_r3', alpha(D, dq, 0.5 * np.median(D[np.triu_indices(T, 1)]), 3.0))


if __name__ == '__main__':
    main()
