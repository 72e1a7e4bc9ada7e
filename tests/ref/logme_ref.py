#!/usr/bin/python3
"""Reference values for engine/logme.c (tests/unit/test_logme.c).

A direct numpy LogME (You et al., ICML 2021, Algorithm 1) in the textbook form: for every
class, solve (alpha I + beta F'F) m = beta F'y, take the residual from F m and the log
determinant from slogdet, and update alpha = gamma / (m'm + eps), beta = (n - gamma) /
(|y - Fm|^2 + eps) until both change by less than tol (relative); evaluate the evidence at the
final (alpha, beta). The C code uses one eigendecomposition and closed forms instead, so this
checks its algebra as well as its arithmetic.

Run once with Debian's python: /usr/bin/python3 tests/ref/logme_ref.py > tests/data/logme_ref.txt
Output: "name count values..." records (tests/refdata.h).
"""
import numpy as np

EPS = 1e-5


def logme(F, y, n_classes, max_iter=1000, tol=1e-8):
    n, d = F.shape
    FtF = F.T @ F
    evs = []
    for c in range(n_classes):
        yc = (y == c).astype(np.float64)
        Fty = F.T @ yc
        alpha, beta = 1.0, 1.0
        s = np.maximum(np.linalg.eigvalsh(FtF), 0.0)

        def fit(alpha, beta):
            A = alpha * np.eye(d) + beta * FtF
            m = beta * np.linalg.solve(A, Fty)
            res = float(np.sum((yc - F @ m) ** 2))
            gamma = float(np.sum(beta * s / (alpha + beta * s)))
            return A, m, res, gamma

        for _ in range(max_iter):
            _, m, res, gamma = fit(alpha, beta)
            na = gamma / (m @ m + EPS)
            nb = (n - gamma) / (res + EPS)
            done = abs(na - alpha) <= tol * alpha and abs(nb - beta) <= tol * beta
            alpha, beta = na, nb
            if done:
                break
        A, m, res, _ = fit(alpha, beta)
        sign, logdet = np.linalg.slogdet(A)
        assert sign > 0
        ev = (0.5 * d * np.log(alpha) + 0.5 * n * np.log(beta) - 0.5 * n * np.log(2 * np.pi)
              - 0.5 * alpha * (m @ m) - 0.5 * beta * res - 0.5 * logdet)
        evs.append(ev / n)
    return float(np.mean(evs))


def emit(name, values):
    values = np.asarray(values, dtype=np.float64).ravel(order="F")
    print(name, len(values), " ".join("%.17g" % v for v in values))


def case(name, F, y, n_classes):
    emit("f_" + name, F)  # n x d column-major, as kb_logme_score takes it
    emit("y_" + name, y)
    emit("dims_" + name, [F.shape[0], F.shape[1], n_classes])
    emit("score_" + name, [logme(F, y, n_classes)])


def main():
    rng = np.random.default_rng(20210101)
    # more samples than features: informative blobs, 3 classes
    n, d, k = 60, 5, 3
    y = np.arange(n) % k
    F = rng.normal(size=(n, d))
    F[np.arange(n), y] += 2.0
    case("tall", F, y, k)
    # fewer samples than features (the n x n branch), 2 classes
    n, d, k = 12, 30, 2
    y = np.arange(n) % k
    F = rng.normal(size=(n, d)) + 0.7 * y[:, None]
    case("wide", F, y, k)
    # uninformative features: noise only, 4 classes
    n, d, k = 40, 8, 4
    y = np.arange(n) % k
    F = rng.normal(size=(n, d))
    case("noise", F, y, k)
    # post-ReLU-like features: non-negative, many exact zeros, scaled up
    n, d, k = 50, 16, 5
    y = np.arange(n) % k
    F = np.maximum(rng.normal(size=(n, d)) + 0.8 * (np.arange(d)[None, :] % k == y[:, None]), 0)
    case("relu", 10.0 * F, y, k)


if __name__ == "__main__":
    main()
