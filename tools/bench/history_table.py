"""Turn the bundled history into the cross-evaluated table bench_recommend reads.

    /usr/bin/python3 tools/bench/history_table.py datasets/history svm accuracy OUT_PREFIX

writes OUT_PREFIX.table.csv (dataset,config,<objective>) from the space's runs with status ok
and that objective (classification datasets report accuracy, regression ones rmse)
(config = the design index i of run id hist:<space>:<dataset>:<i>) and OUT_PREFIX.mf.csv
(dataset + the tasks' meta-features, empty where missing), and prints the objective, its
direction and the number of datasets. Datasets are named by their task's name.
"""
import gzip
import json
import sys


def main():
    hist, space, want, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    tasks = {}
    with gzip.open(f"{hist}/tasks.jsonl.gz", "rt") as f:
        for line in f:
            t = json.loads(line)
            tasks[t["id"]] = t
    rows, objective, direction = [], None, None
    with gzip.open(f"{hist}/{space}.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            if r.get("status") != "ok" or r["task_id"] not in tasks:
                continue
            obj = r["objective"]
            if obj != want:
                continue
            value = r.get("metrics", {}).get(obj)
            if not isinstance(value, (int, float)):
                continue
            objective, direction = obj, r.get("direction", "minimize")
            name = tasks[r["task_id"]]["name"]
            rows.append((name, int(r["id"].rsplit(":", 1)[1]), value))
    used = sorted({name for name, _, _ in rows})
    features = sorted({k for t in tasks.values() for k in t.get("features", {})})
    with open(f"{out}.table.csv", "w") as f:
        f.write(f"dataset,config,{objective}\n")
        for name, i, value in rows:
            f.write(f"{name},{i},{value!r}\n")
    with open(f"{out}.mf.csv", "w") as f:
        f.write("dataset," + ",".join(features) + "\n")
        for t in tasks.values():
            if t["name"] not in used:
                continue
            vals = [t.get("features", {}).get(k) for k in features]
            f.write(t["name"] + "," + ",".join("" if v is None else repr(float(v)) for v in vals) + "\n")
    print(objective, direction, len(used))


if __name__ == "__main__":
    main()
