#!/usr/bin/python3
"""Summarise leave-one-task-out runs (CSV lines table,method,task,seed,trial,regret from
bench_transfer and optuna_peer.py) as BENCHMARK-PROTOCOL.md asks, and draw the regret
curves as a hand-written SVG (no matplotlib needed).

Usage: transfer_report.py [--default METHOD] OUT_PREFIX FILE.csv [FILE.csv ...]
Writes OUT_PREFIX.md (tables) and OUT_PREFIX.svg (mean regret per trial, one line per method).
METHOD (default auto) is the one the summary lines judge: worst tasks against cold gp, the
trial counts where it has the lowest mean regret, the best mean rank and the highest co-best
share (the share of runs in which its regret is the lowest, ties included: late in a search
most methods have solved a task and share the best, so mean ranks there are tie averages).
"""
import collections
import math
import sys

import numpy as np
from scipy.stats import rankdata, wilcoxon

KS = [1, 3, 5, 10, 20, 30, 50]
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#aa0000"]


def main():
    args = sys.argv[1:]
    dflt = "auto"
    if args[:1] == ["--default"]:
        dflt, args = args[1], args[2:]
    prefix, files = args[0], args[1:]
    reg = collections.defaultdict(dict)  # (method) -> (task, seed) -> array of regret
    table = None
    for fn in files:
        with open(fn) as f:
            for line in f:
                fields = line.strip().split(",")
                if len(fields) != 6:
                    continue  # a partial last line of a run still being written
                t, m, task, seed, k, r = fields
                table = t
                arr = reg[m].setdefault((task, int(seed)), np.full(50, np.nan))
                arr[int(k) - 1] = float(r)
    methods = list(reg)
    keys = sorted(set.intersection(*(set(v) for v in reg.values())))
    keys = [k for k in keys if all(not np.isnan(reg[m][k]).any() for m in methods)]
    tasks = sorted(set(k[0] for k in keys))
    seeds = sorted(set(k[1] for k in keys))
    R = np.array([[reg[m][k] for k in keys] for m in methods])  # methods x runs x 50
    # per-task means over seeds
    keyset = set(keys)
    T = np.array([[np.mean([reg[m][(t, s)] for s in seeds if (t, s) in keyset], axis=0)
                   for t in tasks] for m in methods])  # methods x tasks x 50
    ranks = np.zeros_like(R)
    for i in range(R.shape[1]):
        for k in range(50):
            ranks[:, i, k] = rankdata(R[:, i, k])
    cobest = np.isclose(R, R.min(axis=0, keepdims=True), rtol=0, atol=1e-12).mean(axis=1)
    auc_task = T.mean(axis=2)
    out = ["%s: %d target tasks x %d seeds, %d trials" % (table, len(tasks), len(seeds), 50), "",
           "| method | " + " | ".join("@%d" % k for k in KS) + " | AUC | rank " +
           " / ".join("@%d" % k for k in (1, 5, 10, 50)) + " | mean rank | solved@50 | "
           "co-best @1 / @10 / @50 | Wilcoxon AUC vs gp |",
           "| --- |" + " --- |" * (len(KS) + 6)]
    gi = methods.index("gp") if "gp" in methods else None
    order = np.argsort(auc_task.mean(axis=1))
    for mi in order:
        m = methods[mi]
        cells = []
        for k in KS:
            v = T[mi, :, k - 1]
            cells.append("%.3f ± %.3f" % (v.mean(), v.std(ddof=1) / math.sqrt(len(v))))
        auc = auc_task[mi]
        rk = " / ".join("%.2f" % ranks[mi, :, k - 1].mean() for k in (1, 5, 10, 50))
        solved = np.mean([(R[mi, [i for i, kk in enumerate(keys) if kk[1] == s], 49] == 0).sum()
                          for s in seeds])
        if gi is not None and mi != gi:
            d = auc_task[mi] - auc_task[gi]
            p = wilcoxon(auc_task[mi], auc_task[gi]).pvalue if np.any(d != 0) else 1.0
            wl = "p = %.3g (%s)" % (p, "better" if d.mean() < 0 else "worse")
        else:
            wl = "—"
        cb = " / ".join("%.2f" % cobest[mi, k - 1] for k in (1, 10, 50))
        out.append("| %s | %s | %.3f | %s | %.2f | %.1f | %s | %s |" % (
            m, " | ".join(cells), auc.mean(), rk, ranks[mi].mean(), solved, cb, wl))
    if gi is not None and dflt in methods:
        ai = methods.index(dflt)
        out += ["", "Worst tasks for the default (%s) against cold gp (per-task AUC difference):"
                % dflt]
        diff = auc_task[ai] - auc_task[gi]
        for j in np.argsort(-diff)[:5]:
            out.append("- %s: %s %.3f, gp %.3f (%+.3f)" % (tasks[j], dflt, auc_task[ai][j],
                                                            auc_task[gi][j], diff[j]))
    if dflt in methods:
        ai = methods.index(dflt)
        mean_rank = ranks.mean(axis=1)  # methods x 50
        mean_reg = T.mean(axis=1)
        def where(bad):
            miss = [k + 1 for k in range(50) if bad(k)]
            return "%d of 50 trial counts%s" % (
                50 - len(miss), "" if not miss else " (not at " + ", ".join(map(str, miss)) + ")")
        out += ["", "%s has the lowest mean regret (ties count) at " % dflt +
                where(lambda k: mean_reg[ai, k] > mean_reg[:, k].min() + 1e-12) +
                "; the best mean rank at " +
                where(lambda k: mean_rank[ai, k] > mean_rank[:, k].min() + 1e-12) +
                "; the highest co-best share at " +
                where(lambda k: cobest[ai, k] < cobest[:, k].max() - 1e-12) + "."]
        if gi is not None:
            g50 = mean_reg[gi, 49]
            hit = [k + 1 for k in range(50) if mean_reg[ai, k] <= g50]
            out.append("Cold gp's mean regret at 50 trials (%.4f): %s." % (
                g50, "%s reaches it at trial %d" % (dflt, hit[0]) if hit else
                "%s does not reach it within 50 trials (%s@50 = %.4f)" % (dflt, dflt,
                                                                         mean_reg[ai, 49])))
    with open(prefix + ".md", "w") as f:
        f.write("\n".join(out) + "\n")
    print("\n".join(out))
    # SVG: mean regret per trial
    W, H, L, B, Rm, Tp = 720, 420, 60, 40, 160, 20
    ymax = max(0.05, float(np.max(T.mean(axis=1)[:, 1:])) * 1.05)
    def px(k): return L + (k - 1) / 49.0 * (W - L - Rm)
    def py(v): return Tp + (1 - min(v, ymax) / ymax) * (H - Tp - B)
    s = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
         'font-family="sans-serif" font-size="12">' % (W, H),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="14">%s: mean normalised regret (%d tasks x %d seeds)</text>' % (
             L, table, len(tasks), len(seeds))]
    for i in range(6):
        v = ymax * i / 5
        s.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (L, py(v), W - Rm, py(v)))
        s.append('<text x="%d" y="%.1f" text-anchor="end">%.3f</text>' % (L - 4, py(v) + 4, v))
    for k in (1, 10, 20, 30, 40, 50):
        s.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (px(k), H - B + 16, k))
    s.append('<text x="%.1f" y="%d" text-anchor="middle">trial</text>' % ((L + W - Rm) / 2, H - 6))
    for n, mi in enumerate(order):
        c = COLORS[n % len(COLORS)]
        mean = T[mi].mean(axis=0)
        pts = " ".join("%.1f,%.1f" % (px(k + 1), py(mean[k])) for k in range(50))
        s.append('<polyline fill="none" stroke="%s" stroke-width="%s" points="%s"/>' % (
            c, "3" if methods[mi] == dflt else "1.5", pts))
        s.append('<text x="%d" y="%d" fill="%s">%s (%.3f)</text>' % (
            W - Rm + 8, Tp + 16 * (n + 1), c, methods[mi], auc_task[mi].mean()))
    s.append("</svg>")
    with open(prefix + ".svg", "w") as f:
        f.write("\n".join(s) + "\n")


if __name__ == "__main__":
    main()
