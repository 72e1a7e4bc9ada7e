#!/usr/bin/python3
"""Summarise bench_multifidelity runs: regret of the incumbent against spent epochs and against
wall-clock seconds, per method, averaged over seeds; tables (markdown) and an SVG.

Usage: multifidelity_report.py OUT_PREFIX FILE.csv [FILE.csv ...]
Regret of a seed = incumbent validation error - the lowest validation error any method
reached on that seed (any resource). Only seeds every method finished count.
"""
import collections
import sys

import numpy as np

ORDER = ["hyperband", "bohb", "gp", "random"]
LABEL = {"hyperband": "Hyperband", "bohb": "BOHB", "gp": "GP-BO (full epochs)",
         "random": "random search (full epochs)"}
COLORS = {"hyperband": "#1f77b4", "bohb": "#2ca02c", "gp": "#d62728", "random": "#7f7f7f"}


def read(files):
    runs = collections.defaultdict(list)  # (method, seed) -> [(epochs, seconds, inc, err)]
    header = ""
    for fn in files:
        with open(fn) as f:
            for line in f:
                if line.startswith("#"):
                    header = line[1:].strip()
                    continue
                p = line.strip().split(",")
                if len(p) != 7 or p[0] == "method":
                    continue
                runs[(p[0], int(p[1]))].append(tuple(float(v) for v in p[2:6]))
    return header, runs


def step_at(points, x, col):
    """Incumbent (column 2) of the last event with points[col] <= x; NaN before the first."""
    v = np.nan
    for p in points:
        if p[col] <= x:
            v = p[2]
        else:
            break
    return v


def main():
    prefix, files = sys.argv[1], sys.argv[2:]
    header, runs = read(files)
    methods = [m for m in ORDER if any(k[0] == m for k in runs)]
    seeds = sorted(set.intersection(*({s for (m, s) in runs if m == mm} for mm in methods)))
    budget = max(runs[(m, s)][-1][0] for m in methods for s in seeds)
    # a seed is complete when each method spent (nearly) the budget; the last one may be cut
    seeds = [s for s in seeds if all(runs[(m, s)][-1][0] >= budget - 27 for m in methods)]
    best = {s: min(p[3] for m in methods for p in runs[(m, s)]) for s in seeds}
    fr = [0.25, 0.5, 1.0]
    out = ["%s. Seeds: %d. Regret = incumbent validation error - the best validation error any "
           "method reached on the seed; mean over seeds (lower is better).\n"
           % (header, len(seeds)),
           "| method | " + " | ".join("regret at %d%% of the epochs" % (100 * f) for f in fr)
           + " | final incumbent error | wall-clock s per run (mean) | wall-clock / GP-BO's "
           "(geometric mean over seeds) | evaluations |",
           "| --- |" + " --- |" * (len(fr) + 4)]
    for m in methods:
        regs = [[step_at(runs[(m, s)], f * budget, 0) - best[s] for s in seeds] for f in fr]
        fin = np.mean([runs[(m, s)][-1][2] for s in seeds])
        sec = np.mean([runs[(m, s)][-1][1] for s in seeds])
        nev = np.mean([len(runs[(m, s)]) for s in seeds])
        ratio = "-"
        if "gp" in methods:
            # each seed's methods ran back to back, so their load was alike: compare per seed
            ratio = "%.2f" % np.exp(np.mean([np.log(runs[(m, s)][-1][1] / runs[("gp", s)][-1][1])
                                             for s in seeds]))
        out.append("| %s | %s | %.4f | %.0f | %s | %.0f |"
                   % (LABEL[m], " | ".join("%.4f" % np.nanmean(r) if not np.all(np.isnan(r))
                                           else "-" for r in regs), fin, sec, ratio, nev))
    out.append("")
    tmax = min(max(runs[(m, s)][-1][1] for s in seeds) for m in methods)
    out.append("Regret against wall-clock seconds (the same runs, on the common span of %.0f s; "
               "a shared, loaded machine):\n" % tmax)
    ts = [tmax * f for f in fr]
    out.append("| method | " + " | ".join("t = %.0f s" % t for t in ts) + " |")
    out.append("| --- |" + " --- |" * len(ts))
    for m in methods:
        vals = []
        for t in ts:
            r = np.array([step_at(runs[(m, s)], t, 1) - best[s] for s in seeds])
            vals.append("%.4f (%d/%d)" % (np.nanmean(r), np.sum(~np.isnan(r)), len(r))
                        if not np.all(np.isnan(r)) else "-")
        out.append("| %s | %s |" % (LABEL[m], " | ".join(vals)))
    out.append("\n(n/m: seeds with an incumbent by then; a method with none yet is left out of "
               "the mean.)")
    with open(prefix + ".md", "w") as f:
        f.write("\n".join(out) + "\n")
    print("\n".join(out))
    draw(prefix + ".svg", methods, seeds, runs, best, budget, tmax)


def draw(path, methods, seeds, runs, best, budget, tmax):
    import matplotlib
    matplotlib.use("svg")
    import matplotlib.pyplot as plt
    plt.rcParams["svg.hashsalt"] = "kb-multifidelity"
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, col, xmax, xl in ((axes[0], 0, budget, "epochs spent"),
                              (axes[1], 1, tmax, "wall-clock seconds (shared machine)")):
        xs = np.linspace(0, xmax, 200)[1:]
        for m in methods:
            ys = [np.nanmean([step_at(runs[(m, s)], x, col) - best[s] for s in seeds])
                  if any(runs[(m, s)][0][col] <= x for s in seeds) else np.nan for x in xs]
            ax.plot(xs, np.maximum(np.array(ys, dtype=float), 1e-4), color=COLORS[m],
                    label=LABEL[m])
        ax.set_yscale("log")
        ax.set_xlabel(xl)
        ax.set_ylabel("mean regret (validation error)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("MLP on a bundled dataset, epochs as the resource: regret of the incumbent")
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None})


if __name__ == "__main__":
    main()
