#!/usr/bin/python3
"""Independent reference for kb_dataset_fingerprint (engine/dataset.h documents the canonical
serialisation). Parses tests/data/csv/basic.csv with Python's csv module, applies the reader's
documented rules (types, missing values, class order), serialises as documented and prints the
SHA-256. Run once with /usr/bin/python3; the output is checked in as
tests/data/csv/basic.fingerprint.

usage: tests/ref/dataset_fingerprint.py tests/data/csv/basic.csv > tests/data/csv/basic.fingerprint
"""
import csv
import hashlib
import math
import struct
import sys

MISSING = {"", "NA", "?"}


def as_number(s):
    try:
        v = float(s.strip(" \t"))
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def main(path):
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f) if r]
    header, data = rows[0], rows[1:]
    t = header.index("target") if "target" in header else len(header) - 1
    cols = []
    for j, name in enumerate(header):
        vals = [r[j] for r in data]
        present = [v for v in vals if v not in MISSING]
        if all(as_number(v) is not None for v in present):
            cols.append((name, 1, [], [math.nan if v in MISSING else as_number(v) for v in vals]))
        else:
            levels = []
            for v in present:
                if v not in levels:
                    levels.append(v)
            cols.append((name, 2, levels,
                         [math.nan if v in MISSING else float(levels.index(v)) for v in vals]))
    tname, _, tlevels, ycodes = cols[t]
    feats = [c for j, c in enumerate(cols) if j != t]
    assert tlevels, "this reference handles a categorical target only"
    classes = sorted(tlevels)
    y = [float(classes.index(tlevels[int(c)])) for c in ycodes]

    h = hashlib.sha256()
    u64 = lambda v: h.update(struct.pack("<Q", v))

    def s(x):
        b = x.encode()
        u64(len(b))
        h.update(b)

    def f64(v):
        if math.isnan(v):
            h.update(struct.pack("<Q", 0x7FF8000000000000))
        else:
            h.update(struct.pack("<d", v + 0.0 if v != 0 else 0.0))

    h.update(b"kb-dataset-v1\n")
    for v in (len(data), len(feats), 1, len(classes), 0, 0, 0):
        u64(v)
    s(tname)
    for c in classes:
        s(c)
    for name, typ, levels, vals in feats:
        s(name)
        u64(typ)
        u64(len(levels))
        for lv in levels:
            s(lv)
        for v in vals:
            f64(v)
    for v in y:
        f64(v)
    print(h.hexdigest())


if __name__ == "__main__":
    main(sys.argv[1])
