#!/usr/bin/python3
"""The bundled history as a cross-evaluated table for bench_transfer (--table history).

    /usr/bin/python3 tools/bench/transfer_history.py datasets/history svm OUT_DIR

writes OUT_DIR/history_matrix.csv (dataset,config,kernel,C,gamma,degree,coef0,accuracy: the
svm space's runs with status ok and objective accuracy, config = design index i of run id
hist:svm:<dataset>:<i>; a parameter the configuration does not set is empty) and
OUT_DIR/metafeatures.csv (dataset + every kb-mf-1 meta-feature that all those datasets have).
Only datasets with every design index evaluated are kept, so the table is complete.
"""
import gzip
import json
import os
import sys


def main():
    hist, space, out = sys.argv[1], sys.argv[2], sys.argv[3]
    if space != "svm":
        sys.exit("transfer_history.py: only the svm space has a bench_transfer encoding")
    tasks = {}
    with gzip.open(f"{hist}/tasks.jsonl.gz", "rt") as f:
        for line in f:
            t = json.loads(line)
            tasks[t["id"]] = t
    rows = {}
    configs = {}
    with gzip.open(f"{hist}/{space}.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            if r.get("status") != "ok" or r.get("objective") != "accuracy":
                continue
            value = r.get("metrics", {}).get("accuracy")
            if r["task_id"] not in tasks or not isinstance(value, (int, float)):
                continue
            i = int(r["id"].rsplit(":", 1)[1])
            rows.setdefault(tasks[r["task_id"]]["name"], {})[i] = value
            configs[i] = r["config"]
    n_cfg = len(configs)
    if sorted(configs) != list(range(n_cfg)):
        sys.exit("transfer_history.py: design indices are not 0..n-1")
    names = sorted(n for n, v in rows.items() if len(v) == n_cfg)
    os.makedirs(out, exist_ok=True)
    keys = ["kernel", "C", "gamma", "degree", "coef0"]
    with open(f"{out}/history_matrix.csv", "w") as f:
        f.write("dataset,config," + ",".join(keys) + ",accuracy\n")
        for name in names:
            for i in range(n_cfg):
                c = configs[i]
                vals = ["" if c.get(k) is None else str(c[k]) for k in keys]
                f.write(f"{name},{i}," + ",".join(vals) + f",{rows[name][i]!r}\n")
    by_name = {t["name"]: t for t in tasks.values()}
    feats = sorted(k for k in by_name[names[0]].get("features", {})
                   if all(isinstance(by_name[n]["features"].get(k), (int, float))
                          for n in names))
    with open(f"{out}/metafeatures.csv", "w") as f:
        f.write("dataset," + ",".join(feats) + "\n")
        for n in names:
            f.write(n + "," + ",".join(repr(float(by_name[n]["features"][k])) for k in feats)
                    + "\n")
    print(len(names), "datasets,", n_cfg, "configurations,", len(feats), "meta-features")


if __name__ == "__main__":
    main()
