#!/usr/bin/python3
"""Optuna's TPE on a cross-evaluated table, the peer of tools/bench/bench_transfer.

Usage: optuna_peer.py DATA_DIR svm|adaboost|history INIT_CSV SEEDS TRIALS > out.csv
(history: DATA_DIR from tools/bench/transfer_history.py)
INIT_CSV: task,seed,row lines from `bench_transfer --print-init` (the 3 shared cold initial
configurations of every (task, seed), enqueued first so that Optuna starts where kb's cold
methods start). Optuna's TPESampler (Debian python3-optuna, defaults except
n_startup_trials=3 and the seed) suggests in the continuous/conditional space; each
suggestion is snapped to the nearest unused configuration of the table (distance in the
encoded space kb uses: log-scaled ranges mapped to [0, 1], a different kernel counts 1), and
the snapped configuration's accuracy is told for the trial. Output lines match
bench_transfer's: table,method,task,seed,trial,regret.
"""
import csv
import math
import sys

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


def load(data_dir, table):
    rows = {}
    with open("%s/%s_matrix.csv" % (data_dir, table)) as f:
        for r in csv.DictReader(f):
            rows.setdefault(r["dataset"], {})[int(r["config"])] = r
    return rows


def unit_log(v, lo, hi):
    return (math.log(float(v)) - math.log(lo)) / (math.log(hi) - math.log(lo))


def encode(r, table):
    if table == "history":  # the bundled svm space (datasets/spaces.jsonl)
        g = unit_log(r["gamma"], 3.0517578125e-05, 8) if r["gamma"] else None
        d = (float(r["degree"]) - 2) / 3 if r["degree"] else None
        c0 = float(r["coef0"]) if r["coef0"] else None
        return (r["kernel"], unit_log(r["C"], 0.03125, 32768), g, d, c0)
    if table == "svm":
        k = r["kernel"]
        c = (math.log(float(r["C"])) - math.log(0.03125)) / (math.log(64) - math.log(0.03125))
        g = (math.log(float(r["gamma"])) - math.log(1e-4)) / (math.log(1000) - math.log(1e-4)) \
            if r["gamma"] else None
        d = (float(r["degree"]) - 2) / 8 if r["degree"] else None
        return (k, c, g, d)
    i = (math.log(float(r["iterations"])) - math.log(2)) / (math.log(10000) - math.log(2))
    p = (math.log(float(r["product_terms"])) - math.log(2)) / (math.log(30) - math.log(2))
    return (i, p)


def distance(a, b, table):
    if table in ("svm", "history"):
        if a[0] != b[0]:
            return 1.0 + abs(a[1] - b[1])
        s = abs(a[1] - b[1])
        for x, y in zip(a[2:], b[2:]):
            if x is not None and y is not None:
                s += abs(x - y)
        return s
    return abs(a[0] - b[0]) + abs(a[1] - b[1])


def params_of(r, table):
    if table == "history":
        p = {"kernel": r["kernel"], "C": float(r["C"])}
        for k, conv in (("gamma", float), ("degree", int), ("coef0", float)):
            if r[k]:
                p[k] = conv(r[k])
        return p
    if table == "svm":
        p = {"kernel": r["kernel"], "C": float(r["C"])}
        if r["gamma"]:
            p["gamma"] = float(r["gamma"])
        if r["degree"]:
            p["degree"] = int(r["degree"])
        return p
    return {"iterations": int(r["iterations"]), "product_terms": int(r["product_terms"])}


def suggest(trial, table):
    if table == "history":
        k = trial.suggest_categorical("kernel", ["rbf", "linear", "poly", "sigmoid"])
        p = {"kernel": k, "C": trial.suggest_float("C", 0.03125, 32768, log=True)}
        if k != "linear":
            p["gamma"] = trial.suggest_float("gamma", 3.0517578125e-05, 8, log=True)
        if k == "poly":
            p["degree"] = trial.suggest_int("degree", 2, 5)
        if k in ("poly", "sigmoid"):
            p["coef0"] = trial.suggest_float("coef0", 0, 1)
        return p
    if table == "svm":
        k = trial.suggest_categorical("kernel", ["rbf", "poly", "linear"])
        p = {"kernel": k, "C": trial.suggest_float("C", 0.03125, 64, log=True)}
        if k == "rbf":
            p["gamma"] = trial.suggest_float("gamma", 1e-4, 1000, log=True)
        if k == "poly":
            p["degree"] = trial.suggest_int("degree", 2, 10)
        return p
    return {"iterations": trial.suggest_int("iterations", 2, 10000, log=True),
            "product_terms": trial.suggest_int("product_terms", 2, 30, log=True)}


def encode_params(p, table):
    if table == "history":
        r = {k: p.get(k, "") for k in ("kernel", "C", "gamma", "degree", "coef0")}
        return encode({k: str(v) for k, v in r.items()}, table)
    if table == "svm":
        r = {"kernel": p["kernel"], "C": p["C"], "gamma": p.get("gamma", ""),
             "degree": p.get("degree", "")}
        return encode({k: str(v) for k, v in r.items()}, table)
    return encode({k: str(v) for k, v in p.items()}, table)


def main():
    data_dir, table, init_csv = sys.argv[1], sys.argv[2], sys.argv[3]
    n_seeds, n_trials = int(sys.argv[4]), int(sys.argv[5])
    rows = load(data_dir, table)
    init = {}
    with open(init_csv) as f:
        for line in f:
            t, s, r = line.strip().split(",")
            init.setdefault((t, int(s)), []).append(int(r))
    for task, cfgs in rows.items():
        idx = sorted(cfgs)
        enc = {i: encode(cfgs[i], table) for i in idx}
        acc = {i: float(cfgs[i]["accuracy"]) for i in idx}
        best, worst = max(acc.values()), min(acc.values())
        for seed in range(n_seeds):
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=3)
            study = optuna.create_study(direction="maximize", sampler=sampler)
            for r in init.get((task, seed), []):
                study.enqueue_trial(params_of(cfgs[r], table))
            used, found = set(), -math.inf
            for k in range(n_trials):
                trial = study.ask()
                e = encode_params(suggest(trial, table), table)
                r = min((i for i in idx if i not in used), key=lambda i: distance(e, enc[i], table))
                used.add(r)
                study.tell(trial, acc[r])
                found = max(found, acc[r])
                reg = (best - found) / (best - worst) if best > worst else 0.0
                print("%s,optuna_tpe,%s,%d,%d,%.6f" % (table, task, seed, k + 1, reg))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
