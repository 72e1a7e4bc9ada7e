#!/usr/bin/python3
"""The peers' stopping rules on the labelled curves, for tools/bench/bench_judge.c.

    /usr/bin/python3 tools/bench/judge_peers.py INDEX_CSV > peers.csv

Writes id,detector,stop_step (empty: never stopped) for each curve and detector:
- keras_terminate_on_nan: Keras' TerminateOnNaN stops at the first batch whose loss is NaN or
  inf; on a logged curve that is the first non-finite train_loss, or, when the trainer
  stopped on a non-finite value between two logged points, the iteration it reported.
- keras_early_stopping_p5 / _p10: Keras' EarlyStopping(monitor="val_loss", min_delta=0,
  patience=p, mode="min"): after each evaluation, an improvement is `value - min_delta < best`
  (False for NaN); otherwise wait += 1, and training stops when wait >= patience.
- optuna_median: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0) in one
  study per dataset (trials in index order), reporting val_loss at each logged step;
  should_prune() ends the trial.
- optuna_threshold: optuna.pruners.ThresholdPruner(upper=1.5 * ln K) on val_loss (K classes:
  1.5 times the loss of a uniform guess); it also prunes on NaN.
Both Optuna pruners are Debian's python3-optuna, run as documented.
"""
import csv
import gzip
import json
import math
import os
import sys

import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)


def load(path):
    pts, final = [], None
    with gzip.open(path, "rt") as f:
        for line in f:
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if "final" in o:
                final = o
            elif "step" in o:
                pts.append(o)
    return pts, final


def num(v):
    if isinstance(v, (int, float)):
        return float(v)
    return float("nan")  # null: the trainer's non-finite value


def terminate_on_nan(pts, final):
    for p in pts:
        v = num(p.get("train_loss"))
        if not math.isfinite(v):
            return p["step"]
    if final is not None and final.get("status") == "diverged":
        return final.get("iteration", pts[-1]["step"] if pts else 0)
    return None


def early_stopping(pts, patience, min_delta=0.0):
    best, wait = math.inf, 0
    for p in pts:
        v = num(p.get("val_loss"))
        if v - min_delta < best:  # Keras: np.less(current - min_delta, best); NaN -> False
            best, wait = v, 0
        else:
            wait += 1
            if wait >= patience:
                return p["step"]
    return None


def optuna_run(pruner_factory, groups, index_rows, curves):
    out = {}
    for key, ids in groups.items():
        study = optuna.create_study(direction="minimize", pruner=pruner_factory(key),
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        for cid in ids:
            pts, _ = curves[cid]
            trial = study.ask()
            stop, last = None, None
            for p in pts:
                v = num(p.get("val_loss"))
                trial.report(v, p["step"])
                last = v
                if trial.should_prune():
                    stop = p["step"]
                    break
            if stop is not None:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            elif last is not None and math.isfinite(last):
                study.tell(trial, last)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            out[cid] = stop
    return out


def main():
    index = sys.argv[1]
    base = os.path.dirname(index)
    rows = list(csv.DictReader(open(index)))
    curves, classes, groups = {}, {}, {}
    for r in rows:
        pts, final = load(os.path.join(base, r["id"] + ".jsonl.gz"))
        if not pts:
            continue
        curves[r["id"]] = (pts, final)
        classes[r["id"]] = int(r["classes"])
        groups.setdefault(r["dataset"], []).append(r["id"])
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["id", "detector", "stop_step"])
    med = optuna_run(lambda k: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0),
                     groups, rows, curves)
    thr = {}
    for cid in curves:
        k = max(2, classes[cid])
        thr.update(optuna_run(lambda _k, k=k: optuna.pruners.ThresholdPruner(upper=1.5 * math.log(k)),
                              {cid: [cid]}, rows, curves))
    for cid, (pts, final) in curves.items():
        for name, stop in (("keras_terminate_on_nan", terminate_on_nan(pts, final)),
                           ("keras_early_stopping_p5", early_stopping(pts, 5)),
                           ("keras_early_stopping_p10", early_stopping(pts, 10)),
                           ("optuna_median", med.get(cid)),
                           ("optuna_threshold", thr.get(cid))):
            w.writerow([cid, name, "" if stop is None else stop])


if __name__ == "__main__":
    main()
