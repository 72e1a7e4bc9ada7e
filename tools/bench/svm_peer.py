"""Peer of `kb train svm` for tools/bench/svm.sh: scikit-learn's SVC cross-validated on the
same folds with the same preprocessing (per-fold StandardScaler on numeric columns, one-hot
on categorical ones, mean/mode imputation) and the same libsvm settings.

Run with Debian's python (/usr/bin/python3: numpy, pandas, scikit-learn):
    /usr/bin/python3 tools/bench/svm_peer.py DATA.csv[.gz] FOLDS.txt --C 1 --gamma G \
        [--kernel rbf] [--tol 1e-3] [--cache-mb 100] [--repeats 3]
FOLDS.txt holds one fold index per data row (from bench_svm_folds). Prints one JSON line:
{"cv_s": best wall time of the cross-validation over the repeats, "cv_cpu_s": best CPU
time, "accuracy": pooled}.
"""
import argparse
import json
import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("folds")
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--gamma", type=float, required=True)
    ap.add_argument("--kernel", default="rbf")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--cache-mb", type=float, default=100.0)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()

    df = pd.read_csv(a.data, float_precision="round_trip")
    y = df.iloc[:, -1].astype(str).to_numpy()
    X = df.iloc[:, :-1]
    fold = np.loadtxt(a.folds, dtype=int)
    assert len(fold) == len(y), "fold file and data disagree"
    num = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    cat = [c for c in X.columns if c not in num]

    def model():
        prep = ColumnTransformer(
            [("num", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()), num),
             ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                   OneHotEncoder(handle_unknown="ignore")), cat)],
            sparse_threshold=0)
        svc = SVC(C=a.C, kernel=a.kernel, gamma=a.gamma, tol=a.tol, cache_size=a.cache_mb,
                  shrinking=True, probability=False)
        return make_pipeline(prep, svc)

    best = best_cpu = float("inf")
    correct = 0
    for _ in range(a.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        correct = 0
        for f in range(fold.max() + 1):
            tr, te = fold != f, fold == f
            m = model().fit(X[tr], y[tr])
            correct += int((m.predict(X[te]) == y[te]).sum())
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    print(json.dumps({"cv_s": best, "cv_cpu_s": best_cpu, "accuracy": correct / len(y)}))


if __name__ == "__main__":
    main()
