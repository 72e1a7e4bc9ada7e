#!/usr/bin/python3
"""scikit-learn peer of bench_gp: GaussianProcessRegressor with ConstantKernel * Matern(nu=2.5,
ARD) + WhiteKernel (default bounds 1e-5..1e5, start 1), normalize_y=True, the same number of
optimizer restarts, then predict(return_std=True) on the candidates and EI; the held-out
log predictive density as the quality check. The optimizer is scikit-learn's own default
(scipy L-BFGS-B with jac=True), wrapped only to count likelihood evaluations.
Usage: gp_peer.py DATA RESTARTS   (DATA written by bench_gp: set,x0..,y)
Prints "n,fit_s,fit_cpu_s,acq_s,lml,n_evals,test_lpd"."""
import sys
import time

import numpy as np
import scipy.optimize
from scipy.stats import norm
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

path, r = sys.argv[1], int(sys.argv[2])
sets = np.genfromtxt(path, delimiter=",", dtype=None, encoding=None)
names = np.array([row[0] for row in sets])
vals = np.array([list(row)[1:] for row in sets], dtype=float)
X, y = vals[names == "train", :-1], vals[names == "train", -1]
Xs = vals[names == "cand", :-1]
Xt, yt = vals[names == "test", :-1], vals[names == "test", -1]
n, d = X.shape
evals = [0]


def optimizer(obj_func, initial_theta, bounds):
    """scikit-learn's default 'fmin_l_bfgs_b' path, counting evaluations."""
    def counted(theta):
        evals[0] += 1
        return obj_func(theta, eval_gradient=True)
    res = scipy.optimize.minimize(counted, initial_theta, method="L-BFGS-B", jac=True,
                                  bounds=bounds)
    return res.x, res.fun


kern = ConstantKernel(1.0) * Matern(length_scale=np.ones(d), nu=2.5) + WhiteKernel(1.0)
t0, c0 = time.perf_counter(), time.process_time()
gp = GaussianProcessRegressor(kernel=kern, optimizer=optimizer, n_restarts_optimizer=r,
                              normalize_y=True, random_state=0).fit(X, y)
t1, c1 = time.perf_counter(), time.process_time()
mu, sd = gp.predict(Xs, return_std=True)
z = (y.min() - mu) / np.maximum(sd, 1e-300)
ei = (y.min() - mu) * norm.cdf(z) + sd * norm.pdf(z)
t2 = time.perf_counter()
mt, st = gp.predict(Xt, return_std=True)  # WhiteKernel: std includes the noise
lpd = np.mean(norm.logpdf(yt, mt, st))
print("%d,%.4f,%.4f,%.4f,%.4f,%d,%.5f" % (n, t1 - t0, c1 - c0, t2 - t1,
                                           gp.log_marginal_likelihood_value_, evals[0], lpd))
