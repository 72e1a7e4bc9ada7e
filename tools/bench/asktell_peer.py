"""Optuna's ask/tell loop on the same objective and a space like kb's svm space (TPE, seed 1):
prints trials so far and mean ms per ask+tell over the last block, as bench_asktell does."""
import math
import sys
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)
n = int(sys.argv[1])
sampler = optuna.samplers.TPESampler(seed=1) if sys.argv[2] == "tpe" else optuna.samplers.RandomSampler(seed=1)
study = optuna.create_study(sampler=sampler)
dist = {
    "kernel": optuna.distributions.CategoricalDistribution(["linear", "poly", "rbf", "sigmoid"]),
    "C": optuna.distributions.FloatDistribution(2 ** -5, 2 ** 15, log=True),
    "gamma": optuna.distributions.FloatDistribution(2 ** -15, 2 ** 3, log=True),
    "degree": optuna.distributions.IntDistribution(2, 5),
    "coef0": optuna.distributions.FloatDistribution(-1.0, 1.0),
}
block = 100 if n >= 100 else n
print("trials,optuna_ms_per_trial")
t0 = time.perf_counter()
for k in range(n):
    trial = study.ask(dist)
    y = 0.0
    for name in ("C", "gamma", "degree", "coef0"):
        x = math.log10(abs(trial.params[name]) + 1e-3)
        y += (x - 0.5) ** 2
    study.tell(trial, y)
    if (k + 1) % block == 0:
        t1 = time.perf_counter()
        print(f"{k + 1},{1e3 * (t1 - t0) / block:.4f}", flush=True)
        t0 = t1
