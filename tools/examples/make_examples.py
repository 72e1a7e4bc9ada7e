#!/usr/bin/python3
"""Make kb's bundled example runs from real training (run with Debian's /usr/bin/python3).

Writes, under the output directory (default: datasets/examples):
  tasks.jsonl                   the three tasks the runs belong to (kb JSON Lines)
  optuna_svc_<dataset>.csv      a real Optuna study (TPE, median pruning) tuning scikit-learn's
                                SVC on the dataset, exported with study.trials_dataframe().to_csv()
  mlruns/                       an MLflow file store of real SGDClassifier / MLPClassifier runs
                                on scikit-learn's digits with per-epoch metrics. MLflow itself is
                                not packaged in Debian 12, so this script writes MLflow's
                                documented file-store layout (mlruns/<experiment>/<run>/meta.yaml,
                                params/<k>, metrics/<k> as "timestamp value step" lines, tags/<k>).

Everything is seeded; the times (datetime_*, start/end_time) are the real wall-clock times of
this run, so files differ between runs only in those and in durations.

usage: /usr/bin/python3 tools/examples/make_examples.py [OUTDIR] [--small]
  --small   fewer trials and runs (the copy in tests/data)
"""
import json
import os
import shutil
import sys
import time
import uuid
import warnings

import numpy as np
import optuna
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

DATASETS = {"wine": load_wine, "breast_cancer": load_breast_cancer}


def write_tasks(out):
    tasks = [
        {"kind": "task", "id": "sklearn-wine", "name": "wine", "type": "classification",
         "target": "class", "tags": ["sklearn", "uci"], "team": "examples"},
        {"kind": "task", "id": "sklearn-breast_cancer", "name": "breast_cancer",
         "type": "classification", "target": "diagnosis", "tags": ["sklearn", "uci"],
         "team": "examples"},
        {"kind": "task", "id": "sklearn-digits", "name": "digits", "type": "classification",
         "target": "digit", "tags": ["sklearn", "image"], "team": "examples"},
    ]
    with open(os.path.join(out, "tasks.jsonl"), "w") as f:
        for t in tasks:
            f.write(json.dumps(t) + "\n")


def optuna_study(out, name, n_trials):
    X, y = DATASETS[name](return_X_y=True)
    X = StandardScaler().fit_transform(X)
    folds = list(StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(X, y))

    def objective(trial):
        kernel = trial.suggest_categorical("kernel", ["rbf", "linear", "poly", "sigmoid"])
        C = trial.suggest_float("C", 1e-3, 1e3, log=True)
        params = {"kernel": kernel, "C": C,
                  "shrinking": trial.suggest_categorical("shrinking", [True, False])}
        if kernel != "linear":
            params["gamma"] = trial.suggest_float("gamma", 1e-4, 1e1, log=True)
        if kernel == "poly":
            params["degree"] = trial.suggest_int("degree", 2, 5)
        scores = []
        for k, (tr, te) in enumerate(folds):
            model = SVC(max_iter=20000, **params).fit(X[tr], y[tr])
            scores.append(model.score(X[te], y[te]))
            trial.report(float(np.mean(scores)), k)
            if trial.should_prune():
                raise optuna.TrialPruned()
        trial.set_user_attr("n_support", int(model.n_support_.sum()))
        return float(np.mean(scores))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=f"svc-{name}", direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        study.optimize(objective, n_trials=n_trials)
    path = os.path.join(out, f"optuna_svc_{name}.csv")
    study.trials_dataframe().to_csv(path)
    return study


def write_lines(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(lines))


def write_value(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(str(value))


def mlflow_store(out, n_sgd, n_mlp, epochs):
    root = os.path.join(out, "mlruns")
    shutil.rmtree(root, ignore_errors=True)
    exp_id = "1"
    exp_dir = os.path.join(root, exp_id)
    os.makedirs(exp_dir)
    now_ms = int(time.time() * 1000)
    write_lines(os.path.join(exp_dir, "meta.yaml"), [
        f"artifact_location: mlruns/{exp_id}\n", f"creation_time: {now_ms}\n",
        f"experiment_id: '{exp_id}'\n", f"last_update_time: {now_ms}\n",
        "lifecycle_stage: active\n", "name: digits-epochs\n"])
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    Xtr, Xva, ytr, yva = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    classes = np.unique(y)
    rng = np.random.default_rng(0)

    configs = []
    for i in range(n_sgd):
        configs.append(("sgd", {"loss": ["hinge", "log_loss", "modified_huber"][i % 3],
                                "alpha": float(10 ** rng.uniform(-6, -1)),
                                "eta0": float(10 ** rng.uniform(-3, 0)),
                                "learning_rate": ["constant", "invscaling", "adaptive"][i % 3]}))
    for i in range(n_mlp):
        configs.append(("mlp", {"hidden_layer_sizes": int(rng.choice([16, 32, 64, 128])),
                                "alpha": float(10 ** rng.uniform(-5, -1)),
                                "learning_rate_init": float(10 ** rng.uniform(-4, -1)),
                                "batch_size": int(rng.choice([32, 64, 128]))}))
    for k, (family, params) in enumerate(configs):
        run_uuid = uuid.UUID(bytes=rng.bytes(16), version=4).hex
        run_dir = os.path.join(exp_dir, run_uuid)
        start = int(time.time() * 1000)
        status = 3  # FINISHED
        metrics = {"train_loss": [], "val_accuracy": []}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                if family == "sgd":
                    model = SGDClassifier(random_state=k, **params)
                else:
                    model = MLPClassifier(hidden_layer_sizes=(params["hidden_layer_sizes"],),
                                          alpha=params["alpha"],
                                          learning_rate_init=params["learning_rate_init"],
                                          batch_size=params["batch_size"], random_state=k)
                for epoch in range(epochs):
                    model.partial_fit(Xtr, ytr, classes=classes)
                    ts = int(time.time() * 1000)
                    if family == "mlp":
                        loss = float(model.loss_)
                    else:
                        dec = model.decision_function(Xtr)
                        margin = dec[np.arange(len(ytr)), np.searchsorted(classes, ytr)]
                        loss = float(np.mean(np.maximum(0, 1 - margin)))
                    acc = float(model.score(Xva, yva))
                    metrics["train_loss"].append(f"{ts} {loss!r} {epoch}\n")
                    metrics["val_accuracy"].append(f"{ts} {acc!r} {epoch}\n")
        except (ValueError, FloatingPointError):
            status = 4  # FAILED
        end = int(time.time() * 1000)
        write_lines(os.path.join(run_dir, "meta.yaml"), [
            f"artifact_uri: mlruns/{exp_id}/{run_uuid}/artifacts\n", f"end_time: {end}\n",
            "entry_point_name: ''\n", f"experiment_id: '{exp_id}'\n",
            "lifecycle_stage: active\n", f"run_id: {run_uuid}\n",
            f"run_name: {family}-{k}\n", f"run_uuid: {run_uuid}\n", "source_name: ''\n",
            "source_type: 4\n", "source_version: ''\n", f"start_time: {start}\n",
            f"status: {status}\n", "tags: []\n", "user_id: examples\n"])
        for key, value in params.items():
            write_value(os.path.join(run_dir, "params", key), value)
        for key, lines in metrics.items():
            if lines:
                write_lines(os.path.join(run_dir, "metrics", key), lines)
        tags = {"mlflow.runName": f"{family}-{k}", "mlflow.user": "examples",
                "kb.task": "sklearn-digits", "kb.space": f"sklearn-{family}",
                "kb.objective": "val_accuracy", "kb.direction": "maximize"}
        for key, value in tags.items():
            write_value(os.path.join(run_dir, "tags", key), value)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    small = "--small" in sys.argv
    out = args[0] if args else "datasets/examples"
    os.makedirs(out, exist_ok=True)
    write_tasks(out)
    for name in (["wine"] if small else ["wine", "breast_cancer"]):
        study = optuna_study(out, name, 12 if small else 60)
        states = [t.state.name for t in study.trials]
        print(f"optuna svc-{name}: {len(states)} trials, "
              f"{states.count('PRUNED')} pruned, best {study.best_value:.4f}")
    mlflow_store(out, 3 if small else 8, 2 if small else 6, 6 if small else 20)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
