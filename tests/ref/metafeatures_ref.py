#!/usr/bin/python3
"""Independent reference values for kb's meta-features (feature set kb-mf-1).

Run once with Debian's python (numpy/scipy/scikit-learn/pandas):

    /usr/bin/python3 tests/ref/metafeatures_ref.py DATASET_DIR [OUT_JSON]

DATASET_DIR holds <name>.csv or <name>.csv.gz (header, target last, named `target`) and
manifest.csv (name,task,...). OUT_JSON defaults to tests/ref/metafeatures_ref.json, which
tests/unit/test_metafeatures.c compares kb's values against.

The definitions are docs/META-FEATURES.md. Where a library implements the same definition
it is used (scipy.stats.skew/kurtosis/entropy, sklearn.metrics.mutual_info_score,
numpy.linalg.eigh, sklearn GaussianNB / SVC / SVR); the rest is written out in numpy. The
landmarkers' sample and folds replicate kb's seeded procedure exactly (xoshiro256** below),
so the comparison can be tight: the same rows in the same folds.
"""
import json
import math
import os
import sys

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.stats
from sklearn.metrics import mutual_info_score
from sklearn.naive_bayes import GaussianNB
from sklearn.svm import SVC, SVR

FEATURE_SET = "kb-mf-1"
SEED = 42
SAMPLE_ROWS = 2000
N_FOLDS = 5
N_BINS = 10
MAX_ONEHOT_LEVELS = 64
DATASETS = [
    "iris", "wine", "breast_cancer_wdbc", "ionosphere", "sonar", "vehicle", "credit_g",
    "pima_diabetes", "soybean", "penguins", "haberman", "zoo", "satellite", "concrete",
    "servo", "diabetes_progression",
]

M64 = (1 << 64) - 1


class Rng:
    """kb_rng: xoshiro256** seeded through splitmix64 (engine/core/rng.c)."""

    def __init__(self, seed):
        x = seed & M64
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & M64

    def u64(self):
        s = self.s
        result = (self._rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def below(self, n):
        if n == 0:
            return 0
        threshold = ((1 << 64) - n) % n
        while True:
            r = self.u64()
            if r >= threshold:
                return r % n

    def shuffle(self, a):
        for i in range(len(a), 1, -1):
            j = self.below(i)
            a[i - 1], a[j] = a[j], a[i - 1]


# ---- reading, with kb's CSV conventions (engine/csv.c) -----------------------------------

def read_dataset(directory, name, task):
    path = os.path.join(directory, name + ".csv")
    if not os.path.exists(path):
        path += ".gz"
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    cols = []
    for c in raw.columns[:-1]:
        s = raw[c].to_numpy()
        miss = np.array([v in ("", "NA", "?") for v in s])
        num = pd.to_numeric(pd.Series(np.where(miss, "nan", s)), errors="coerce").to_numpy()
        if np.all(~np.isnan(num) | miss):
            cols.append(("numeric", np.where(miss, np.nan, num), 0))
        else:
            levels = {}
            codes = np.full(len(s), np.nan)
            for i, v in enumerate(s):
                if not miss[i]:
                    codes[i] = levels.setdefault(v, len(levels))
            cols.append(("categorical", codes, len(levels)))
    t = raw.iloc[:, -1].to_numpy()
    keep = np.array([v not in ("", "NA", "?") for v in t])
    cols = [(k, v[keep], lv) for k, v, lv in cols]
    t = t[keep]
    if task == "classification":
        tn = pd.to_numeric(pd.Series(t), errors="coerce").to_numpy()
        if not np.any(np.isnan(tn)):
            classes = np.unique(tn)
            y = np.searchsorted(classes, tn).astype(float)
        else:
            classes = sorted(set(t), key=lambda v: v.encode("utf-8"))
            index = {c: i for i, c in enumerate(classes)}
            y = np.array([index[v] for v in t], dtype=float)
        k = len(classes)
    else:
        y = t.astype(float)
        k = 0
    return cols, y, k


# ---- helpers -----------------------------------------------------------------------------

def is_constant(mean, var):
    return not (var > 1e-300) or var <= 1e-28 * mean * mean


def moments(v):
    v = v[~np.isnan(v)]
    if len(v) < 2:
        return None
    mean, var = v.mean(), v.var()
    if is_constant(mean, var):
        return None
    return scipy.stats.skew(v, bias=True), scipy.stats.kurtosis(v, fisher=True, bias=True)


def summary4(vals):
    vals = np.asarray(vals, dtype=float)
    if len(vals) == 0:
        return None, None, None, None
    std = float(np.std(vals)) if len(vals) >= 2 else None
    return float(vals.min()), float(vals.max()), float(vals.mean()), std


def fnum(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# ---- groups ------------------------------------------------------------------------------

def general(cols, y, k, task):
    f = {}
    n, p = len(y), len(cols)
    f["n_rows"] = n
    f["n_features"] = p
    f["log_n_rows"] = math.log(n)
    f["log_n_features"] = math.log(p) if p else None
    f["dimensionality"] = p / n
    f["log_dimensionality"] = math.log(p / n) if p else None
    f["inverse_dimensionality"] = n / p if p else None
    f["log_inverse_dimensionality"] = math.log(n / p) if p else None
    ncat = sum(1 for c in cols if c[0] == "categorical")
    f["n_numeric"] = p - ncat
    f["n_categorical"] = ncat
    f["share_numeric"] = (p - ncat) / p
    f["share_categorical"] = ncat / p
    lv = [c[2] for c in cols if c[0] == "categorical"]
    mn, mx, me, sd = summary4(lv)
    f.update(cat_levels_min=mn, cat_levels_max=mx, cat_levels_mean=me, cat_levels_std=sd,
             cat_levels_sum=float(sum(lv)) if lv else None)
    miss = np.column_stack([np.isnan(c[1]) for c in cols])
    f["n_missing_cells"] = int(miss.sum())
    f["share_missing_cells"] = miss.sum() / (n * p)
    f["share_rows_with_missing"] = miss.any(axis=1).mean()
    f["share_features_with_missing"] = miss.any(axis=0).mean()
    names = ["class_prob_min", "class_prob_max", "class_prob_mean", "class_prob_std"]
    if task == "classification":
        counts = np.bincount(y.astype(int), minlength=k)
        counts = counts[counts > 0]
        f["n_classes"] = len(counts)
        f.update(zip(names, summary4(counts / n)))
        f["class_entropy"] = scipy.stats.entropy(counts, base=2)
    else:
        f["n_classes"] = None
        f.update({m: None for m in names})
        f["class_entropy"] = None
    return f


def standardised_numeric(cols):
    """Z: non-constant numeric columns standardised (population std), NaN -> 0."""
    zs = []
    for kind, v, _ in cols:
        if kind != "numeric":
            continue
        w = v[~np.isnan(v)]
        if len(w) < 2 or is_constant(w.mean(), w.var()):
            continue
        z = (v - w.mean()) / math.sqrt(w.var())
        zs.append(np.where(np.isnan(v), 0.0, z))
    return np.column_stack(zs) if zs else None


def statistical(cols):
    f = {}
    sk, ku = [], []
    for kind, v, _ in cols:
        if kind == "numeric":
            m = moments(v)
            if m is not None:
                sk.append(m[0])
                ku.append(m[1])
    for name, vals in (("skewness", sk), ("kurtosis", ku)):
        f.update(zip([name + s for s in ("_min", "_max", "_mean", "_std")], summary4(vals)))
    z = standardised_numeric(cols)
    for name in ("cor_abs_mean", "cor_abs_max", "pca_components_95", "pca_fraction_95",
                 "pca_first_share", "pca_first_skewness", "pca_first_kurtosis"):
        f[name] = None
    if z is None or z.shape[0] < 2:
        return f
    n, q = z.shape
    c = z.T @ z
    if q >= 2:
        d = np.sqrt(np.diag(c))
        r = np.abs(c / np.outer(d, d))[np.triu_indices(q, 1)]
        r = np.minimum(r, 1.0)
        f["cor_abs_mean"] = r.mean()
        f["cor_abs_max"] = r.max()
    w, v = np.linalg.eigh(c / n)
    w = np.maximum(w, 0)[::-1]
    total = w.sum()
    if total <= 0:
        return f
    k95 = int(np.argmax(np.cumsum(w) >= 0.95 * total)) + 1
    f["pca_components_95"] = k95
    f["pca_fraction_95"] = k95 / q
    f["pca_first_share"] = w[0] / total
    v1 = v[:, -1]
    if v1[np.argmax(np.abs(v1))] < 0:
        v1 = -v1
    m = moments(z @ v1)
    if m is not None:
        f["pca_first_skewness"], f["pca_first_kurtosis"] = m
    return f


def discretise(v, kind):
    out = np.full(len(v), -1, dtype=int)
    ok = ~np.isnan(v)
    if kind == "categorical":
        out[ok] = v[ok].astype(int)
        return out
    lo, hi = v[ok].min(), v[ok].max()
    if not hi - lo > 0:
        out[ok] = 0
        return out
    b = np.floor((v[ok] - lo) / (hi - lo) * N_BINS)
    out[ok] = np.clip(b, 0, N_BINS - 1).astype(int)
    return out


def info(cols, y, task):
    f = {}
    yb = y.astype(int) if task == "classification" else discretise(y, "numeric")
    hy = scipy.stats.entropy(np.bincount(yb), base=2)
    f["target_entropy"] = hy
    hx, mi = [], []
    for kind, v, _ in cols:
        xb = discretise(v, kind)
        ok = xb >= 0
        if not ok.any():
            continue
        hx.append(scipy.stats.entropy(np.bincount(xb[ok]), base=2))
        mi.append(max(mutual_info_score(yb[ok], xb[ok]) / math.log(2), 0.0))
    f["attr_entropy_mean"] = np.mean(hx) if hx else None
    f["mutual_info_mean"] = np.mean(mi) if mi else None
    f["mutual_info_max"] = np.max(mi) if mi else None
    f["equivalent_n_attributes"] = None
    f["noise_signal_ratio"] = None
    if mi and np.mean(mi) > 1e-12:
        f["equivalent_n_attributes"] = hy / np.mean(mi)
        f["noise_signal_ratio"] = (np.mean(hx) - np.mean(mi)) / np.mean(mi)
    return f


# ---- landmarkers -------------------------------------------------------------------------

def sample_rows(y, k, task, m, rng):
    n = len(y)
    if m >= n:
        return list(range(n))
    if task != "classification":
        a = list(range(n))
        rng.shuffle(a)
        return sorted(a[:m])
    groups = [[i for i in range(n) if y[i] == c] for c in range(k)]
    quota = [m * len(g) // n for g in groups]
    rem = [m * len(g) % n for g in groups]
    given = sum(quota)
    while given < m:
        best = None
        for c in range(k):
            if quota[c] < len(groups[c]) and (best is None or rem[c] > rem[best]):
                best = c
        if best is None:
            break
        quota[best] += 1
        rem[best] = 0
        given += 1
    rows = []
    for c in range(k):
        g = groups[c]
        rng.shuffle(g)
        rows += g[:quota[c]]
    return sorted(rows)


def assign_folds(ys, k_classes, task, k, rng):
    n = len(ys)
    fold = [0] * n
    if task != "classification":
        pos = list(range(n))
        rng.shuffle(pos)
        for i, p in enumerate(pos):
            fold[p] = i % k
        return np.array(fold)
    counter = 0
    for c in range(k_classes):
        g = [i for i in range(n) if ys[i] == c]
        rng.shuffle(g)
        for p in g:
            fold[p] = counter % k
            counter += 1
    return np.array(fold)


def design(cols, y, rows, task):
    xs = []
    for kind, v, nl in cols:
        v = v[rows]
        if kind == "categorical":
            ok = ~np.isnan(v)
            if not ok.any():
                continue
            counts = np.bincount(v[ok].astype(int), minlength=nl)
            mode = int(np.argmax(counts))
            codes = np.where(ok, v, mode).astype(int)
            counts[mode] += int((~ok).sum())
            present = [l for l in range(nl) if counts[l] > 0]
            keep = sorted(sorted(present, key=lambda l: (-counts[l], l))[:MAX_ONEHOT_LEVELS])
            if len(keep) < 2 and counts[keep[0]] == len(rows):
                continue
            for l in keep:
                xs.append((codes == l).astype(float))
            continue
        ok = ~np.isnan(v)
        if not ok.any():
            continue
        col = np.where(ok, v, v[ok].mean())
        mu, var = col.mean(), ((col - col.mean()) ** 2).mean()
        if is_constant(mu, var):
            continue
        xs.append((col - mu) / math.sqrt(var))
    x = np.column_stack(xs) if xs else np.zeros((len(rows), 0))
    ys = y[rows]
    if task != "classification":
        mu, var = ys.mean(), ((ys - ys.mean()) ** 2).mean()
        ys = (ys - mu) / math.sqrt(var) if not is_constant(mu, var) else ys * np.nan
    return x, ys


def nn1(xtr, ytr, xte):
    """1-NN; ties: the earliest training row within 1e-9 (|a|^2 + 1) of the minimum."""
    d = ((xte[:, None, :] - xtr[None, :, :]) ** 2).sum(axis=2) if xtr.shape[1] <= 64 else (
        (xte * xte).sum(axis=1)[:, None] + (xtr * xtr).sum(axis=1)[None, :] - 2 * xte @ xtr.T)
    tol = 1e-9 * ((xte * xte).sum(axis=1) + 1.0)
    near = d <= d.min(axis=1)[:, None] + tol[:, None]
    return ytr[np.argmax(near, axis=1)]


def stump(xtr, ytr, xte, k):
    """Depth-1 CART split, with kb's cost formulas so that exact ties stay exact."""
    n, p = xtr.shape
    best, bj, thr, pl, pr = math.inf, None, 0.0, None, None
    if k > 0:
        onehot = np.zeros((n, k))
        onehot[np.arange(n), ytr.astype(int)] = 1.0
        tot = onehot.sum(axis=0)
    else:
        ysum = np.cumsum(ytr)[-1]
        ysq = np.cumsum(ytr * ytr)[-1]
    nl = np.arange(1, n, dtype=float)
    nr = n - nl
    for j in range(p):
        order = np.lexsort((np.arange(n), xtr[:, j]))
        xv, yv = xtr[order, j], ytr[order]
        valid = xv[1:] > xv[:-1] + 1e-7
        if not valid.any():
            continue
        if k > 0:
            left = np.cumsum(onehot[order], axis=0)[:-1]
            right = tot[None, :] - left
            cost = n - (left * left).sum(axis=1) / nl - (right * right).sum(axis=1) / nr
        else:
            lsum = np.cumsum(yv)[:-1]
            rsum = ysum - lsum
            cost = ysq - lsum * lsum / nl - rsum * rsum / nr
        cost = np.where(valid, cost, np.inf)
        i = int(np.argmin(cost))
        if cost[i] < best:
            best, bj = cost[i], j
            t = 0.5 * (xv[i] + xv[i + 1])
            thr = xv[i] if t == xv[i + 1] else t
            if k > 0:
                pl, pr = float(np.argmax(left[i])), float(np.argmax(right[i]))
            else:
                pl, pr = lsum[i] / nl[i], rsum[i] / nr[i]
    if bj is None:
        c = float(np.argmax(np.bincount(ytr.astype(int), minlength=k))) if k else ysum / n
        return np.full(len(xte), c)
    return np.where(xte[:, bj] <= thr, pl, pr)


def lda(xtr, ytr, xte, k):
    n, p = xtr.shape
    cnt = np.bincount(ytr.astype(int), minlength=k).astype(float)
    mu = np.zeros((p, k))
    for c in range(k):
        if cnt[c] > 0:
            mu[:, c] = xtr[ytr == c].mean(axis=0)
    xc = xtr - mu[:, ytr.astype(int)].T
    s = xc.T @ xc / n
    tr = np.trace(s)
    s = s + (1e-6 * tr / p if tr > 0 else 1e-6) * np.eye(p)
    w = scipy.linalg.cho_solve(scipy.linalg.cho_factor(s), mu)
    with np.errstate(divide="ignore"):
        b = -0.5 * (mu * w).sum(axis=0) + np.log(cnt / n)
    b[cnt == 0] = -np.inf
    return np.argmax(xte @ w + b, axis=1).astype(float)


def landmarks(cols, y, k, task):
    rng = Rng(SEED)
    rows = sample_rows(y, k, task, SAMPLE_ROWS, rng)
    names = ["landmark_1nn", "landmark_naive_bayes", "landmark_stump", "landmark_lda",
             "landmark_linear_svm", "landmark_rbf_svm"]
    f = {m: None for m in names}
    n = len(rows)
    if n < 2 * N_FOLDS:
        return f
    x, ys = design(cols, y, rows, task)
    p = x.shape[1]
    if p == 0 or (task != "classification" and np.isnan(ys[0])):
        return f
    if task == "classification" and len(np.unique(ys)) < 2:
        return f
    folds = assign_folds(ys, k, task, N_FOLDS, rng)
    kk = k if task == "classification" else 0
    preds = {m: np.zeros(n) for m in names}
    for v in range(N_FOLDS):
        tr, te = folds != v, folds == v
        xtr, ytr, xte = x[tr], ys[tr], x[te]
        preds["landmark_1nn"][te] = nn1(xtr, ytr, xte)
        preds["landmark_stump"][te] = stump(xtr, ytr, xte, kk)
        svm = SVC if kk else SVR
        extra = {} if kk else {"epsilon": 0.1}
        for name, kern in (("landmark_linear_svm", "linear"), ("landmark_rbf_svm", "rbf")):
            model = svm(kernel=kern, C=1.0, gamma=1.0 / p, tol=1e-3, shrinking=True,
                        cache_size=100, **extra)
            preds[name][te] = model.fit(xtr, ytr).predict(xte)
        if kk:
            preds["landmark_naive_bayes"][te] = GaussianNB(var_smoothing=1e-9).fit(
                xtr, ytr).predict(xte)
            preds["landmark_lda"][te] = lda(xtr, ytr, xte, kk)
    for m in names:
        if not kk and m in ("landmark_naive_bayes", "landmark_lda"):
            continue
        if kk:
            f[m] = float(np.mean(preds[m] == ys))
        else:
            f[m] = float(np.sqrt(np.mean((preds[m] - ys) ** 2)))
    f["_landmark_rows"] = n
    f["_landmark_cols"] = p
    return f


def main():
    directory = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "metafeatures_ref.json")
    manifest = pd.read_csv(os.path.join(directory, "manifest.csv"))
    tasks = dict(zip(manifest["name"], manifest["task"]))
    doc = {"feature_set": FEATURE_SET,
           "generator": "tests/ref/metafeatures_ref.py",
           "params": {"seed": SEED, "sample_rows": SAMPLE_ROWS, "n_folds": N_FOLDS,
                      "n_bins": N_BINS},
           "datasets": {}}
    for name in DATASETS:
        task = tasks[name]
        cols, y, k = read_dataset(directory, name, task)
        f = general(cols, y, k, task)
        f.update(statistical(cols))
        f.update(info(cols, y, task))
        f.update(landmarks(cols, y, k, task))
        meta = {key: f.pop(key) for key in list(f) if key.startswith("_")}
        doc["datasets"][name] = {"task": task, "landmark_rows": meta.get("_landmark_rows"),
                                 "landmark_cols": meta.get("_landmark_cols"),
                                 "features": {key: fnum(val) for key, val in sorted(f.items())}}
        print(name, file=sys.stderr)
    with open(out, "w") as fh:
        json.dump(doc, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
