"""The Wistuba leave-one-task-out through kb's Optuna CSV ingest (tools/bench/recommend_csv.sh).

    /usr/bin/python3 tools/bench/recommend_csv.py split MATRIX.csv META.csv SPACE OUT_DIR
        writes OUT_DIR/tasks.jsonl (one task per dataset: id w-<space>-<dataset>, its
        meta-features) and OUT_DIR/csv/<dataset>.csv in the format of Optuna's
        study.trials_dataframe().to_csv() (number = the grid row, value = accuracy,
        params_<name>, state COMPLETE), for `kb ingest --task ... --study ...`;
    /usr/bin/python3 tools/bench/recommend_csv.py table EXPORT.jsonl SPACE OUT_PREFIX
        turns `kb export` of that knowledge base back into OUT_PREFIX.table.csv
        (dataset,config,accuracy; config = the Optuna trial number of run id
        optuna:<study>:<number>) and OUT_PREFIX.mf.csv, the files bench_recommend reads.
Measurement only: the Wistuba data has no license and is never bundled.
"""
import csv
import json
import os
import sys


def split(matrix, meta, space, out):
    os.makedirs(f"{out}/csv", exist_ok=True)
    with open(matrix) as f:
        rows = list(csv.DictReader(f))
    params = [k for k in rows[0] if k not in ("dataset", "config", "accuracy")]
    by = {}
    for r in rows:
        by.setdefault(r["dataset"], []).append(r)
    with open(meta) as f, open(f"{out}/tasks.jsonl", "w") as t:
        for r in csv.DictReader(f):
            name = r.pop("dataset")
            feats = {k: float(v) for k, v in r.items() if v != ""}
            t.write(json.dumps({"kind": "task", "id": f"w-{space}-{name}", "name": name,
                                "type": "classification", "features": feats,
                                "tags": ["wistuba"]}) + "\n")
    for name, rs in by.items():
        with open(f"{out}/csv/{name}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["", "number", "value"] + [f"params_{p}" for p in params] + ["state"])
            for i, r in enumerate(rs):
                w.writerow([i, r["config"], r["accuracy"]] + [r[p] for p in params] + ["COMPLETE"])
    print(len(by))


def table(export, space, out):
    tasks, runs = {}, []
    with open(export) as f:
        for line in f:
            r = json.loads(line)
            if r["kind"] == "task" and r["id"].startswith(f"w-{space}-"):
                tasks[r["id"]] = r
            elif r["kind"] == "run" and r.get("space") == space and r.get("status") == "ok":
                runs.append(r)
    names = {tid: t["name"] for tid, t in tasks.items()}
    features = sorted({k for t in tasks.values() for k in t.get("features", {})})
    used = set()
    with open(f"{out}.table.csv", "w") as f:
        f.write("dataset,config,accuracy\n")
        for r in runs:
            value = r.get("metrics", {}).get("accuracy")
            if r["task_id"] not in names or not isinstance(value, (int, float)):
                continue
            used.add(r["task_id"])
            f.write(f"{names[r['task_id']]},{int(r['id'].rsplit(':', 1)[1])},{value!r}\n")
    with open(f"{out}.mf.csv", "w") as f:
        f.write("dataset," + ",".join(features) + "\n")
        for tid in sorted(used, key=lambda t: names[t]):
            fs = tasks[tid].get("features", {})
            f.write(names[tid] + "," + ",".join(
                "" if fs.get(k) is None else repr(float(fs[k])) for k in features) + "\n")
    print(len(used), len(runs))


if __name__ == "__main__":
    if sys.argv[1] == "split":
        split(*sys.argv[2:6])
    else:
        table(*sys.argv[2:5])
