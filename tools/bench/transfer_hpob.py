#!/usr/bin/python3
"""HPO-B v3 published baselines, summarised with HPO-B's own protocol, for BENCHMARKS.md.

    /usr/bin/python3 tools/bench/transfer_hpob.py HPOB_RESULTS_DIR   # the HPO-B v3 results folder

Reads results/<METHOD>.json (results[space][task][seed] = best normalised accuracy after the
5 shared initial configurations and after each of 100 further trials) and prints a Markdown
table: mean normalised regret (1 - v) over all (space, task, seed) runs at trials 0 (the
initial design), 5, 10, 25, 50 and 100, and the mean rank among the listed methods (ties
averaged after rounding to 8 decimals, as HPO-B's plotting code does), averaged over runs and
over trials 1..100. kb cannot run on HPO-B here (the raw meta-dataset is not available), so
this is the published reference, not a kb measurement.
"""
import json
import sys

import numpy as np
from scipy.stats import rankdata

METHODS = ["Random", "GP", "DGP", "RGPE", "TST", "TAF", "FSBO"]
KS = [0, 5, 10, 25, 50, 100]


def main():
    root = sys.argv[1]
    res = {m: json.load(open(f"{root}/results/{m}.json")) for m in METHODS}
    keys = None
    for m in METHODS:
        k = {(s, t, seed) for s in res[m] for t in res[m][s] for seed in res[m][s][t]
             if len(res[m][s][t][seed]) >= 101}
        keys = k if keys is None else keys & k
    keys = sorted(keys)
    v = np.array([[res[m][s][t][seed][:101] for (s, t, seed) in keys] for m in METHODS])
    regret = 1.0 - v  # methods x runs x 101
    ranks = np.zeros_like(regret)
    for i in range(regret.shape[1]):
        for k in range(101):
            ranks[:, i, k] = rankdata(np.round(regret[:, i, k], 8))
    print("HPO-B v3 meta-test: %d runs (space x task x seed), %d methods" % (len(keys),
                                                                               len(METHODS)))
    print()
    print("| method | " + " | ".join("@%d" % k for k in KS) + " | mean rank @25 / @50 / @100 |"
          " mean rank 1..100 |")
    print("| --- |" + " --- |" * (len(KS) + 2))
    for mi, m in enumerate(METHODS):
        cells = ["%.3f" % regret[mi, :, k].mean() for k in KS]
        rk = " / ".join("%.2f" % ranks[mi, :, k].mean() for k in (25, 50, 100))
        print("| %s | %s | %s | %.2f |" % (m, " | ".join(cells), rk, ranks[mi, :, 1:].mean()))


if __name__ == "__main__":
    main()
