#!/usr/bin/python3
"""scikit-learn peer of bench_gp: GaussianProcessRegressor with ConstantKernel * Matern(nu=2.5,
ARD) + WhiteKernel (default bounds 1e-5..1e5, start 1), normalize_y=True, the same number of
optimizer restarts, then predict(return_std=True) on M candidates and EI.
Usage: gp_peer.py N [D] [RESTARTS] [M]; prints "n,seconds_fit,seconds_acq,lml".
Data: uniform inputs and a smooth function like bench_gp's (not the same random numbers)."""
import sys
import time

import numpy as np
from scipy.stats import norm
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

n = int(sys.argv[1])
d = int(sys.argv[2]) if len(sys.argv) > 2 else 8
r = int(sys.argv[3]) if len(sys.argv) > 3 else 0
m = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
rng = np.random.default_rng(1)
X = rng.uniform(size=(n, d))
y = sum(np.sin(3 * X[:, k] * (k + 1)) / (k + 1) for k in range(d)) + 0.1 * rng.standard_normal(n)
Xs = rng.uniform(size=(m, d))
kern = ConstantKernel(1.0) * Matern(length_scale=np.ones(d), nu=2.5) + WhiteKernel(1.0)
t0 = time.perf_counter()
gp = GaussianProcessRegressor(kernel=kern, n_restarts_optimizer=r, normalize_y=True,
                              random_state=0).fit(X, y)
t1 = time.perf_counter()
mu, sd = gp.predict(Xs, return_std=True)
z = (y.min() - mu) / np.maximum(sd, 1e-300)
ei = (y.min() - mu) * norm.cdf(z) + sd * norm.pdf(z)
t2 = time.perf_counter()
print("%d,%.4f,%.4f,%.4f" % (n, t1 - t0, t2 - t1, gp.log_marginal_likelihood_value_))
