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
Output: "name count values..." records (tests/refdata.h). check_* (R4): kb_recommend_model_check
with each task's weights from a GP conditioned on the other tasks directly (the C code uses the
leave-one-out identity of R&W eq. 5.12 on one inverse) and kb_recommend_rank's greedy list
written as a plain loop.
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


def greedy(S, w, k, beta):
    """kb_recommend_rank's list, written plainly: first the best weighted mean (over the tasks
    with a score and a positive weight), then the best blend beta * (weighted expected best
    with NaN as 0) + (1 - beta) * (weighted mean with NaN as 0); keys within 1e-9 go to the
    higher mean, then the lower index (a scan in index order)."""
    n, C = S.shape
    S0 = np.nan_to_num(S, nan=0.0)
    mean = np.full(C, np.nan)
    for c in range(C):
        ok = ~np.isnan(S[:, c]) & (w > 0)
        if w[ok].sum() > 0:
            mean[c] = (w[ok] * S[ok, c]).sum() / w[ok].sum()
    best, out = np.zeros(n), []
    while len(out) < k:
        pick, pv = None, -np.inf
        for c in range(C):
            if c in out or np.isnan(mean[c]):
                continue
            if not out:
                v = mean[c]
            else:
                v = (w * (beta * np.maximum(S0[:, c], best) + (1 - beta) * S0[:, c])).sum() / w.sum()
            if pick is None or v > pv + 1e-9 or (v > pv - 1e-9 and mean[c] > mean[pick]):
                pick, pv = c, v
        if pick is None:
            break
        out.append(pick)
        best = np.maximum(best, S0[:, pick])
    return out


def check(S, D, h, r, hedge, K=10):
    """kb_recommend_model_check: every task as the query, its weights from a GP conditioned on
    the others only (posterior mean, negative weights dropped), against uniform weights."""
    n = S.shape[0]
    tot = np.zeros(4)
    for i in range(n):
        o = [t for t in range(n) if t != i]
        wm = np.maximum(alpha(D[np.ix_(o, o)], D[i, o], h, r), 0)
        for j, (w, b) in enumerate([(wm, hedge), (np.ones(n - 1), 1.0)]):
            lst = greedy(S[o], w, K, b)
            got, acc = 0.0, 0.0
            for q in range(K):
                v = S[i, lst[q]] if q < len(lst) else np.nan
                got = max(got, v) if not np.isnan(v) else got
                acc += 1 - got
                if q == 0:
                    tot[2 + j] += 1 - got
            tot[j] += acc / K
    return tot / n


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
    # kb_recommend_model_check: model regret, uniform regret (over list lengths 1..10), the
    # same for the first pick; the fitted model at hedge 1, and r = 3 at hedge 0.5
    emit('check_fit', check(S, D, h, r, 1.0))
    emit('check_r3', check(S, D, 0.5 * np.median(D[np.triu_indices(T, 1)]), 3.0, 0.5))


if __name__ == '__main__':
    main()
