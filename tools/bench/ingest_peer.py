#!/usr/bin/python3
"""The peer for tools/bench/ingest.sh: the same runs into Optuna's SQLite storage.

usage: /usr/bin/python3 tools/bench/ingest_peer.py RUNS.jsonl N DB_PATH

Reads the first N runs of the kb JSON Lines file that bench_ingest generated, turns each into
a finished Optuna trial with the same 6 parameters, final value and 20 intermediate values
(the learning curve), adds them with study.add_trials() to a fresh SQLite study, then lists the
study (study.get_trials(), as `optuna` users read one back). Prints one line of key=value pairs.
Run with Debian's /usr/bin/python3 (python3-optuna 3.1).
"""
import json
import os
import sys
import time

import optuna
from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                  IntDistribution)

DISTRIBUTIONS = {
    "batch_size": IntDistribution(16, 256),
    "dropout": FloatDistribution(0.0, 0.5),
    "layers": IntDistribution(1, 6),
    "lr": FloatDistribution(1e-5, 1.0, log=True),
    "momentum": FloatDistribution(0.0, 0.99),
    "optimizer": CategoricalDistribution(["sgd", "momentum", "adam", "rmsprop"]),
}


def main():
    path, n, db = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    runs = []
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("kind") == "run":
                runs.append(rec)
                if len(runs) == n:
                    break
    t0 = time.perf_counter()
    trials = [
        optuna.trial.create_trial(
            params=r["config"], distributions=DISTRIBUTIONS,
            value=r["metrics"]["val_accuracy"],
            intermediate_values={p["step"]: p["val_accuracy"] for p in r["curve"]})
        for r in runs]
    t_build = time.perf_counter() - t0

    if os.path.exists(db):
        os.remove(db)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    study = optuna.create_study(study_name="bench", storage=storage, direction="maximize")
    t0, c0 = time.perf_counter(), time.process_time()
    study.add_trials(trials)
    t_add, c_add = time.perf_counter() - t0, time.process_time() - c0

    # a fresh process-level view of the study, then read every trial back
    study = optuna.load_study(study_name="bench", storage=optuna.storages.RDBStorage(
        f"sqlite:///{db}"))
    t0, c0 = time.perf_counter(), time.process_time()
    listed = study.get_trials(deepcopy=False)
    t_list, c_list = time.perf_counter() - t0, time.process_time() - c0
    assert len(listed) == len(runs)
    print(f"optuna_trials={len(runs)} optuna_build_s={t_build:.3f} optuna_add_s={t_add:.3f} "
          f"optuna_add_cpu_s={c_add:.3f} optuna_list_s={t_list:.3f} "
          f"optuna_list_cpu_s={c_list:.3f} optuna_db_bytes={os.path.getsize(db)}")


if __name__ == "__main__":
    main()
