#!/usr/bin/python3
"""Reference values for tests/unit/test_gp.c, test_acq.c and test_encode.c.

Run once with Debian's python (numpy, scipy, scikit-learn, mpmath):
    /usr/bin/python3 tests/ref/gp_ref.py > tests/data/gp_ref.txt
Output: one record per line, "name count v1 v2 ..." (values as %.17g), column-major matrices.

GP references use scikit-learn's GaussianProcessRegressor with FIXED hyperparameters
(optimizer=None): kernel ConstantKernel(sf2) * Matern(l, nu=2.5) or * RBF(l), and the noise
variance passed as alpha (added to the training diagonal only), so predictions are of the
latent f exactly as kb_gp_predict computes them.
"""
import numpy as np
import mpmath
from scipy.stats import norm, qmc
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Matern

out = []


def emit(name, values):
    v = np.asarray(values, dtype=float).ravel(order="F")
    out.append(name + " " + str(v.size) + " " + " ".join("%.17g" % x for x in v))


rng = np.random.default_rng(20261127)
n, m, d = 25, 7, 3
X = rng.uniform(size=(n, d))
Xs = rng.uniform(size=(m, d))
y = np.sin(6 * X[:, 0]) + X[:, 1] ** 2 - 0.5 * X[:, 2] + 0.05 * rng.standard_normal(n)
emit("x", X)
emit("xs", Xs)
emit("y", y)
ls = np.array([0.3, 0.7, 1.5])
sf2, sn2 = 1.7, 0.01
emit("theta", np.r_[np.log(ls), np.log(sf2), np.log(sn2)])
for kname, base in (("matern", Matern(length_scale=ls, nu=2.5)), ("se", RBF(length_scale=ls))):
    kern = ConstantKernel(sf2) * base
    emit(kname + "_kxs", kern(X, Xs))
    for norm_y in (0, 1):
        gpr = GaussianProcessRegressor(kernel=kern, alpha=sn2, optimizer=None,
                                       normalize_y=bool(norm_y))
        gpr.fit(X, y)
        mu, sd = gpr.predict(Xs, return_std=True)
        tag = "%s_norm%d" % (kname, norm_y)
        emit(tag + "_mean", mu)
        emit(tag + "_var", sd ** 2)
        emit(tag + "_lml", [gpr.log_marginal_likelihood_value_])

# acquisition closed forms: for minimisation, imp = tau - mu - xi, z = imp / sigma
cases = [(0.0, 1.0, 0.5), (1.0, 0.3, 0.2), (-0.4, 2.0, 0.0), (0.3, 0.1, 0.35),
         (2.0, 0.1, 0.0), (10.0, 1.0, 0.0), (30.0, 1.0, 0.0), (0.0, 1.0, 8.0)]
emit("acq_cases", np.array(cases))
mpmath.mp.dps = 50
ei, pi, ucb = [], [], []
for mu, s, tau in cases:
    z = mpmath.mpf(tau - mu) / s
    ei.append(float(s * (z * mpmath.ncdf(z) + mpmath.npdf(z))))
    pi.append(float(mpmath.ncdf(z)))
    ucb.append(-(mu - 2.0 * s))
emit("acq_ei_min", ei)
emit("acq_pi_min", pi)
emit("acq_lcb_min_kappa2", ucb)
emit("acq_pi_min_scipy", [norm.cdf((tau - mu) / s) for mu, s, tau in cases])

emit("sobol_21", qmc.Sobol(d=21, scramble=False).random(64))

print("\n".join(out))
