#!/usr/bin/python3
"""Peer for the meta-feature benchmark: pandas read_csv + numpy/scipy computing kb's
non-landmark meta-features (general, statistical, info; docs/META-FEATURES.md), written the
way a data scientist would (vectorised numpy, scipy.stats), and scikit-learn's equivalents of
kb's landmarkers.

    metafeatures_peer.py features DATASET          -> one JSON line of features
    metafeatures_peer.py landmarks DATASET SAMPLE SEED  -> per-model seconds (5-fold CV)

Timing and peak memory of the `features` mode are taken from outside (/usr/bin/time) by
tools/bench/metafeatures.sh, so interpreter start-up and imports count, as kb's do.
"""
import json
import math
import os
import sys
import time

import numpy as np
import pandas as pd
import scipy.stats


def entropy_bits(counts):
    counts = counts[counts > 0]
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def binned(x, n_bins=10):
    ok = ~np.isnan(x)
    lo, hi = np.nanmin(x), np.nanmax(x)
    b = np.full(x.shape, -1, dtype=np.int64)
    if hi > lo:
        b[ok] = np.clip(np.floor((x[ok] - lo) / (hi - lo) * n_bins), 0, n_bins - 1)
    else:
        b[ok] = 0
    return b


def summary(v, prefix, f):
    v = np.asarray(v, dtype=float)
    f[prefix + "_min"] = float(v.min()) if len(v) else None
    f[prefix + "_max"] = float(v.max()) if len(v) else None
    f[prefix + "_mean"] = float(v.mean()) if len(v) else None
    f[prefix + "_std"] = float(v.std()) if len(v) >= 2 else None


def features(path):
    df = pd.read_csv(path, keep_default_na=False, na_values=["", "NA", "?"],
                     float_precision="round_trip")
    target = "target" if "target" in df.columns else df.columns[-1]
    y_raw = df.pop(target)
    y_codes, classes = pd.factorize(y_raw, sort=True)
    n, p = df.shape
    num = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    cat = [c for c in df.columns if c not in num]
    f = {"n_rows": n, "n_features": p, "n_numeric": len(num), "n_categorical": len(cat)}
    f["log_n_rows"] = math.log(n)
    f["dimensionality"] = p / n
    miss = df.isna()
    f["n_missing_cells"] = int(miss.values.sum())
    f["share_missing_cells"] = f["n_missing_cells"] / (n * p)
    f["share_rows_with_missing"] = float(miss.any(axis=1).mean())
    f["share_features_with_missing"] = float(miss.any(axis=0).mean())
    counts = np.bincount(y_codes)
    summary(counts / n, "class_prob", f)
    f["class_entropy"] = entropy_bits(counts)
    f["n_classes"] = int((counts > 0).sum())
    if cat:
        summary([df[c].nunique() for c in cat], "cat_levels", f)

    # statistical: moments of non-constant numeric columns, correlations, PCA
    x = df[num].to_numpy(dtype=np.float64)
    has_nan = np.isnan(x).any(axis=0)
    mean = np.nanmean(x, axis=0)
    var = np.nanvar(x, axis=0)
    keep = (var > 1e-300) & (var > 1e-28 * mean * mean)
    sk, ku = [], []
    for j in np.flatnonzero(keep):
        col = x[:, j][~np.isnan(x[:, j])] if has_nan[j] else x[:, j]
        sk.append(scipy.stats.skew(col))
        ku.append(scipy.stats.kurtosis(col))
    summary(sk, "skewness", f)
    summary(ku, "kurtosis", f)
    z = (x[:, keep] - mean[keep]) / np.sqrt(var[keep])
    z = np.nan_to_num(z, copy=False)
    c = z.T @ z
    d = np.sqrt(np.diag(c))
    r = np.abs(c / np.outer(d, d))[np.triu_indices(c.shape[0], 1)]
    f["cor_abs_mean"] = float(r.mean())
    f["cor_abs_max"] = float(r.max())
    w, v = np.linalg.eigh(c / n)
    w = np.maximum(w, 0)[::-1]
    f["pca_components_95"] = int(np.argmax(np.cumsum(w) >= 0.95 * w.sum())) + 1
    f["pca_first_share"] = float(w[0] / w.sum())
    v1 = v[:, -1]
    v1 = -v1 if v1[np.argmax(np.abs(v1))] < 0 else v1
    s = z @ v1
    f["pca_first_skewness"] = float(scipy.stats.skew(s))
    f["pca_first_kurtosis"] = float(scipy.stats.kurtosis(s))

    # information-theoretic: equal-width 10 bins, entropies and MI in bits
    k = len(classes)
    hx, mi = [], []
    for col in df.columns:
        b = binned(df[col].to_numpy(dtype=np.float64)) if col in num else \
            pd.factorize(df[col])[0].astype(np.int64)
        ok = b >= 0
        b, yy = b[ok], y_codes[ok]
        joint = np.bincount(b * k + yy).astype(float)
        h_x = entropy_bits(np.bincount(b).astype(float))
        h_y = entropy_bits(np.bincount(yy).astype(float))
        hx.append(h_x)
        mi.append(max(h_x + h_y - entropy_bits(joint), 0.0))
    f["attr_entropy_mean"] = float(np.mean(hx))
    f["mutual_info_mean"] = float(np.mean(mi))
    f["mutual_info_max"] = float(np.max(mi))
    f["equivalent_n_attributes"] = f["class_entropy"] / f["mutual_info_mean"]
    f["noise_signal_ratio"] = (f["attr_entropy_mean"] - f["mutual_info_mean"]) / f["mutual_info_mean"]
    print(json.dumps(f))


def landmarks(path, sample, seed):
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "..", "tests", "ref"))
    import metafeatures_ref as ref  # kb's sample, folds and preprocessing, replicated
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    directory, base = os.path.split(path)
    name = base.split(".csv")[0]
    cols, y, k = ref.read_dataset(directory, name, "classification")
    rng = ref.Rng(seed)
    rows = ref.sample_rows(y, k, "classification", sample, rng)
    x, ys = ref.design(cols, y, rows, "classification")
    folds = ref.assign_folds(ys, k, "classification", 5, rng)
    p = x.shape[1]
    models = {
        "1nn": lambda: KNeighborsClassifier(n_neighbors=1, algorithm="brute"),
        "naive_bayes": lambda: GaussianNB(),
        "stump": lambda: DecisionTreeClassifier(max_depth=1, random_state=0),
        "lda": lambda: LinearDiscriminantAnalysis(solver="lsqr"),
        "linear_svm": lambda: SVC(kernel="linear", C=1.0, cache_size=100),
        "rbf_svm": lambda: SVC(kernel="rbf", C=1.0, gamma=1.0 / p, cache_size=100),
    }
    times, scores = {}, {}
    for m, make in models.items():
        t0 = time.perf_counter()
        correct = 0
        for v in range(5):
            tr, te = folds != v, folds == v
            pred = make().fit(x[tr], ys[tr]).predict(x[te])
            correct += int((pred == ys[te]).sum())
        times[m] = time.perf_counter() - t0
        scores[m] = correct / len(ys)
    print(json.dumps({"rows": len(rows), "cols": p, "time_s": times, "score": scores}))


if __name__ == "__main__":
    if sys.argv[1] == "features":
        features(sys.argv[2])
    else:
        landmarks(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
