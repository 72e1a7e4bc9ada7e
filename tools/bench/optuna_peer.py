#!/usr/bin/python3
"""Optuna's TPE on a cross-evaluated table, the peer of tools/bench/bench_transfer.

Usage: optuna_peer.py DATA_DIR svm|adaboost|history INIT_CSV SEEDS TRIALS > out.csv
(history: DATA_DIR from tools/bench/transfer_history.py, the svm or the mlp space — told
apart by the table's header, as bench_transfer does; in the mlp space the snapping distance
sums |difference| of the unit-scaled numbers that both configurations set, 1 per differing
categorical and 1 per parameter only one of them sets)
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


# the bundled mlp space (datasets/spaces.jsonl): name, type, low, high, log, choices, active-if
MLP = [("optimizer", "cat", 0, 0, False,
        ["sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam"], None),
       ("base_lr", "float", 1e-5, 1.0, True, None, None),
       ("momentum", "float", 0.0, 0.99, False, None, ("optimizer", ("momentum", "nesterov"))),
       ("weight_decay", "float", 1e-7, 0.1, True, None, None),
       ("batch_size", "int", 16, 256, True, None, None),
       ("lr_policy", "cat", 0, 0, False, ["fixed", "step", "exp", "inv", "poly", "cosine"], None),
       ("layers", "int", 1, 3, False, None, None),
       ("units", "int", 16, 512, True, None, None),
       ("activation", "cat", 0, 0, False, ["relu", "tanh", "sigmoid"], None),
       ("dropout", "float", 0.0, 0.5, False, None, None)]


def mlp_encode(r):
    out = []
    for name, kind, lo, hi, log, _, _ in MLP:
        v = r.get(name, "")
        if v == "" or kind == "cat":
            out.append(v if v != "" else None)
        elif log:
            out.append(unit_log(v, lo, hi))
        else:
            out.append((float(v) - lo) / (hi - lo))
    return tuple(out)


def mlp_distance(a, b):
    s = 0.0
    for (_, kind, *_), x, y in zip(MLP, a, b):
        if x is None or y is None:
            s += 0.0 if x is y else 1.0
        elif kind == "cat":
            s += 0.0 if x == y else 1.0
        else:
            s += abs(x - y)
    return s


def mlp_params(r):
    p = {}
    for name, kind, *_ in MLP:
        if r.get(name, "") != "":
            p[name] = r[name] if kind == "cat" else int(r[name]) if kind == "int" \
                else float(r[name])
    return p


def mlp_suggest(trial):
    p = {}
    for name, kind, lo, hi, log, choices, cond in MLP:
        if cond is not None and p.get(cond[0]) not in cond[1]:
            continue
        if kind == "cat":
            p[name] = trial.suggest_categorical(name, choices)
        elif kind == "int":
            p[name] = trial.suggest_int(name, lo, hi, log=log)
        else:
            p[name] = trial.suggest_float(name, lo, hi, log=log)
    return p


def unit_log(v, lo, hi):
    return (math.log(float(v)) - math.log(lo)) / (math.log(hi) - math.log(lo))


def encode(r, table):
    if table == "mlp":
        return mlp_encode(r)
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
    if table == "mlp":
        return mlp_distance(a, b)
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
    if table == "mlp":
        return mlp_params(r)
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
    if table == "mlp":
        return mlp_suggest(trial)
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
    if table == "mlp":
        return mlp_encode({k: str(v) for k, v in p.items()})
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
    # the history's space, from its columns; output lines keep the table's name
    space = "mlp" if table == "history" and "optimizer" in next(iter(
        next(iter(rows.values())).values())) else table
    init = {}
    with open(init_csv) as f:
        for line in f:
            t, s, r = line.strip().split(",")
            init.setdefault((t, int(s)), []).append(int(r))
    for task, cfgs in rows.items():
        idx = sorted(cfgs)
        enc = {i: encode(cfgs[i], space) for i in idx}
        acc = {i: float(cfgs[i]["accuracy"]) for i in idx}
        best, worst = max(acc.values()), min(acc.values())
        for seed in range(n_seeds):
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=3)
            study = optuna.create_study(direction="maximize", sampler=sampler)
            for r in init.get((task, seed), []):
                study.enqueue_trial(params_of(cfgs[r], space))
            used, found = set(), -math.inf
            for k in range(n_trials):
                trial = study.ask()
                e = encode_params(suggest(trial, space), space)
                r = min((i for i in idx if i not in used), key=lambda i: distance(e, enc[i], space))
                used.add(r)
                study.tell(trial, acc[r])
                found = max(found, acc[r])
                reg = (best - found) / (best - worst) if best > worst else 0.0
                print("%s,optuna_tpe,%s,%d,%d,%.6f" % (table, task, seed, k + 1, reg))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
