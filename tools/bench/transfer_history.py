#!/usr/bin/python3
"""The bundled history as a cross-evaluated table for bench_transfer (--table history).

    /usr/bin/python3 tools/bench/transfer_history.py datasets/history svm|mlp OUT_DIR

writes OUT_DIR/history_matrix.csv (dataset,config,<the space's parameters>,accuracy: the
space's runs with the classification objective — svm: accuracy, mlp: val_accuracy —,
config = design index i of run id hist:<space>:<dataset>:<i>; a parameter the configuration
does not set is empty; the parameter columns name the space, which bench_transfer reads from
the header) and OUT_DIR/metafeatures.csv (dataset + every kb-mf-1 meta-feature that all those
datasets have).
A design index whose run failed or diverged (status not ok) counts as the dataset's worst
accuracy (a wasted trial, never better than anything that ran); datasets with a missing
design index, or with fewer than half the design ok, are left out, so the table is complete.
"""
import gzip
import json
import os
import sys

OBJECTIVE = {"svm": "accuracy", "mlp": "val_accuracy"}


def space_params(hist, space):
    with open(f"{os.path.dirname(os.path.abspath(hist))}/spaces.jsonl") as f:
        for line in f:
            s = json.loads(line)
            if s.get("kind") == "space" and s.get("name") == space:
                return [p["name"] for p in s["params"]]
    sys.exit(f"transfer_history.py: space '{space}' not in spaces.jsonl")


def main():
    hist, space, out = sys.argv[1], sys.argv[2], sys.argv[3]
    if space not in OBJECTIVE:
        sys.exit("transfer_history.py: bench_transfer encodes the svm and mlp spaces only")
    objective = OBJECTIVE[space]
    keys = space_params(hist, space)
    tasks = {}
    with gzip.open(f"{hist}/tasks.jsonl.gz", "rt") as f:
        for line in f:
            t = json.loads(line)
            tasks[t["id"]] = t
    rows = {}
    failed = {}
    configs = {}
    with gzip.open(f"{hist}/{space}.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            if r.get("objective") != objective or r["task_id"] not in tasks:
                continue
            name = tasks[r["task_id"]]["name"]
            i = int(r["id"].rsplit(":", 1)[1])
            configs[i] = r["config"]
            value = (r.get("metrics") or {}).get(objective)
            if r.get("status") == "ok" and isinstance(value, (int, float)):
                rows.setdefault(name, {})[i] = value
            else:
                failed.setdefault(name, set()).add(i)
    n_cfg = len(configs)
    if sorted(configs) != list(range(n_cfg)):
        sys.exit("transfer_history.py: design indices are not 0..n-1")
    names = []
    n_filled = 0
    for name in sorted(rows):
        ok, bad = rows[name], failed.get(name, set())
        if len(ok) + len(bad - set(ok)) != n_cfg or 2 * len(ok) < n_cfg:
            continue
        worst = min(ok.values())
        for i in bad - set(ok):
            ok[i] = worst
            n_filled += 1
        names.append(name)
    os.makedirs(out, exist_ok=True)
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
    print(len(names), "datasets,", n_cfg, "configurations,", len(feats), "meta-features,",
          n_filled, "failed runs counted as the dataset's worst")


if __name__ == "__main__":
    main()
