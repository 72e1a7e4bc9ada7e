#!/usr/bin/python3
"""Summarise bench_archsearch runs (JSON lines) for docs/BENCHMARKS.md and draw the test-error
CDF of each method as an SVG.

Usage: archsearch_report.py OUT_PREFIX FILE.jsonl [FILE.jsonl ...]
Writes OUT_PREFIX.md (tables) and OUT_PREFIX.svg (empirical CDF of the chosen architecture's
test error over tries, one step line per method). Only complete searches count; paired
comparisons use the tries where every method finished.
"""
import collections
import json
import sys

import numpy as np
from scipy.stats import wilcoxon

ORDER = ["hand", "adarandom", "reinforce", "random"]
LABEL = {"hand": "hand-designed", "adarandom": "AdaRandom", "reinforce": "REINFORCE",
         "random": "uniform random search"}
COLORS = {"hand": "#000000", "adarandom": "#1f77b4", "reinforce": "#d62728",
          "random": "#7f7f7f"}


def read(files):
    protocol, searches, trials = None, {}, collections.defaultdict(dict)
    for fn in files:
        with open(fn) as f:
            for line in f:
                try:
                    d = json.loads(line)
                except ValueError:
                    continue  # a partial last line of a run still being written
                if d["kind"] == "protocol":
                    if protocol is not None and {k: v for k, v in d.items()} != protocol:
                        sys.exit("archsearch_report.py: runs with different protocols")
                    protocol = d
                elif d["kind"] == "search":
                    searches[(d["method"], d["try"])] = d
                elif d["kind"] == "trial":
                    trials[(d["method"], d["try"])][d["trial"]] = d
    return protocol, searches, trials


def fmt(x):
    return "%.4f" % x


def main():
    prefix, files = sys.argv[1], sys.argv[2:]
    protocol, searches, trials = read(files)
    methods = [m for m in ORDER if any(k[0] == m for k in searches)]
    tries = {m: sorted(t for (mm, t) in searches if mm == m) for m in methods}
    common = sorted(set.intersection(*(set(v) for v in tries.values())))
    out = []
    p = protocol
    out.append("Protocol: %d training / %d validation images (stratified, seeded per try) of the "
               "60,000 training images, a fixed stratified %d-image subset of the test set, "
               "%d epochs of Adam (lr %g, batch %d), search space `%s`, budget %d architectures "
               "per search; AdaRandom elite %d, alpha %g, p_min %g; REINFORCE lr %g, baseline "
               "decay %g; hand-designed net `%s`.\n"
               % (p["n_train"], p["n_val"], p["n_test"], p["epochs"], p["base_lr"],
                  p["batch_size"], p["space"], p["budget"], p["adarandom_elite"],
                  p["adarandom_alpha"], p["adarandom_p_min"], p["reinforce_lr"],
                  p["reinforce_baseline_decay"], p["hand"]))
    out.append("Test error of the architecture each search chose (best validation error of its "
               "trials), over tries:\n")
    out.append("| method | tries | best test error | mean test error | std | median | "
               "mean val error | nets trained per search | mean hidden layers of the choice | "
               "training s per search (all proposals, mean) |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    errs = {}
    for m in methods:
        te = np.array([searches[(m, t)]["test_error"] for t in tries[m]])
        ve = np.array([searches[(m, t)]["val_error"] for t in tries[m]])
        nt = np.mean([searches[(m, t)]["n_trained"] for t in tries[m]])
        depth = np.mean([searches[(m, t)]["arch"].count("+") + 1 for t in tries[m]])
        errs[m] = te
        # the training time of every proposal, cached or not: what the search would cost alone
        cost = np.mean([sum(d["seconds"] for d in trials[(m, t)].values()) for t in tries[m]])
        out.append("| %s | %d | %s | %s | %s | %s | %s | %.1f | %.1f | %.0f |"
                   % (LABEL[m], len(te), fmt(te.min()), fmt(te.mean()), fmt(te.std(ddof=1))
                      if len(te) > 1 else "-", fmt(np.median(te)), fmt(ve.mean()), nt, depth, cost))
    out.append("")
    if len(common) > 1:
        out.append("Paired over the %d tries every method finished (same data, seed and "
                   "test subset): wins / ties / losses on test error and the two-sided "
                   "Wilcoxon signed-rank p-value:\n" % len(common))
        out.append("| comparison | mean difference | wins | ties | losses | p |")
        out.append("| --- | --- | --- | --- | --- | --- |")
        pairs = [(a, "hand") for a in methods if a != "hand"]
        pairs += [(a, "random") for a in ("adarandom", "reinforce") if "random" in methods
                  and a in methods]
        if "adarandom" in methods and "reinforce" in methods:
            pairs.append(("adarandom", "reinforce"))
        for a, b in pairs:
            x = np.array([searches[(a, t)]["test_error"] for t in common])
            y = np.array([searches[(b, t)]["test_error"] for t in common])
            d = x - y
            pv = wilcoxon(x, y).pvalue if np.any(d != 0) else 1.0
            out.append("| %s vs %s | %+.4f | %d | %d | %d | %.3f |"
                       % (LABEL[a], LABEL[b], d.mean(), (d < 0).sum(), (d == 0).sum(),
                          (d > 0).sum(), pv))
        out.append("")
    ks = sorted({k for k in (1, 3, 5, 10, 15, 20) if k <= p["budget"]} | {p["budget"]})
    out.append("Mean best validation error so far after k proposals (anytime view; over the "
               "%d tries every method finished):\n" % len(common))
    out.append("| method | " + " | ".join("k=%d" % k for k in ks) + " |")
    out.append("| --- |" + " --- |" * len(ks))
    for m in methods:
        if m == "hand":
            continue
        row = []
        for k in ks:
            v = [trials[(m, t)][k]["best_val_error"] for t in common if k in trials[(m, t)]]
            row.append(fmt(np.mean(v)) if v else "-")
        out.append("| %s | %s |" % (LABEL[m], " | ".join(row)))
    out.append("")
    out.append("Architectures chosen most often:\n")
    for m in methods:
        c = collections.Counter(searches[(m, t)]["arch"] for t in tries[m]).most_common(3)
        out.append("- %s: %s" % (LABEL[m], ", ".join("`%s` (%d)" % (a, n) for a, n in c)))
    with open(prefix + ".md", "w") as f:
        f.write("\n".join(out) + "\n")
    draw(prefix + ".svg", methods, errs)
    print("\n".join(out))


def draw(path, methods, errs):
    import matplotlib
    matplotlib.use("svg")
    import matplotlib.pyplot as plt
    plt.rcParams["svg.hashsalt"] = "kb-archsearch"
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for m in methods:
        x = np.sort(errs[m])
        y = np.arange(1, len(x) + 1) / len(x)
        ax.step(np.concatenate([[x[0]], x]), np.concatenate([[0], y]), where="post",
                color=COLORS[m], label="%s (%d tries)" % (LABEL[m], len(x)))
    ax.set_xlabel("test error of the chosen architecture")
    ax.set_ylabel("fraction of tries with error <= x")
    ax.set_title("Architecture search on Fashion-MNIST: error CDF")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None})


if __name__ == "__main__":
    main()
