#!/usr/bin/python3
"""Plot a sample of the labelled curves as SVG files, to check the labels by eye.

    /usr/bin/python3 tools/curves/plot_svg.py [INDEX_CSV] [OUT_DIR] [PER_LABEL]

Defaults: tests/data/curves/index.csv, docs/curves, 3 curves per label. One SVG per curve
(train_loss and val_loss on a log axis at the left, val_accuracy on a linear axis at the
right), plus docs/curves/index.md listing them. Standard library only: no matplotlib.
"""
import csv
import gzip
import json
import math
import os
import sys

W, H, PAD = 560, 300, 48


def load(path):
    pts, final = [], None
    with gzip.open(path, "rt") as f:
        for line in f:
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if "final" in o:
                final = o
            elif "step" in o:
                pts.append(o)
    return pts, final


def polyline(xs, ys, fx, fy, color, dash=""):
    segs, cur = [], []
    for x, y in zip(xs, ys):
        if y is None or not math.isfinite(y):
            if cur:
                segs.append(cur)
            cur = []
            continue
        cur.append("%.1f,%.1f" % (fx(x), fy(y)))
    if cur:
        segs.append(cur)
    d = ' stroke-dasharray="4 3"' if dash else ""
    return "".join('<polyline fill="none" stroke="%s" stroke-width="1.5"%s points="%s"/>\n'
                   % (color, d, " ".join(s)) for s in segs)


def svg(row, pts, final):
    xs = [p["step"] for p in pts]
    x0, x1 = (min(xs), max(xs)) if xs else (0, 1)
    x1 = x1 if x1 > x0 else x0 + 1
    losses = [p.get(k) for p in pts for k in ("train_loss", "val_loss")]
    losses = [v for v in losses if isinstance(v, (int, float)) and math.isfinite(v) and v > 0]
    lo = math.log10(min(losses)) if losses else -1
    hi = math.log10(max(losses)) if losses else 1
    hi = hi if hi > lo else lo + 1
    fx = lambda x: PAD + (x - x0) / (x1 - x0) * (W - 2 * PAD)
    fl = lambda v: H - PAD - (math.log10(v) - lo) / (hi - lo) * (H - 2 * PAD) if v and v > 0 else None
    fa = lambda v: H - PAD - v * (H - 2 * PAD)
    def col(k, f):
        out = []
        for p in pts:
            v = p.get(k)
            out.append(f(v) if isinstance(v, (int, float)) and math.isfinite(v) and v > 0 else None)
        return out
    tl = [p.get("train_loss") for p in pts]
    vl = [p.get("val_loss") for p in pts]
    va = [p.get("val_accuracy") for p in pts]
    ident = lambda v: v
    s = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">\n' % (W, H),
         '<rect width="100%" height="100%" fill="white"/>\n',
         '<text x="%d" y="16" font-size="12">%s: %s (%s on %s, %s, seed %s)%s</text>\n'
         % (PAD, row["id"], row["label"], row["made_by"], row["dataset"], row["arch"], row["seed"],
            "; status " + final.get("status", "") if final else ""),
         '<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>\n' % (PAD, PAD, W - 2 * PAD, H - 2 * PAD),
         '<text x="%d" y="%d">step %g</text><text x="%d" y="%d" text-anchor="end">%g</text>\n'
         % (PAD, H - PAD + 14, x0, W - PAD, H - PAD + 14, x1),
         '<text x="4" y="%d">1e%.1f</text><text x="4" y="%d">1e%.1f</text>\n' % (PAD + 4, hi, H - PAD, lo),
         '<text x="%d" y="%d" text-anchor="end">acc 1</text><text x="%d" y="%d" text-anchor="end">0</text>\n'
         % (W - 2, PAD + 4, W - 2, H - PAD)]
    fly = lambda v: fl(v)
    for name, ys, f, c, dash in (("train_loss", tl, fly, "#1f77b4", ""), ("val_loss", vl, fly, "#d62728", ""),
                                 ("val_accuracy", va, fa, "#2ca02c", "d")):
        mapped = [f(v) if isinstance(v, (int, float)) and math.isfinite(v) and (v > 0 or f is fa) else None for v in ys]
        s.append(polyline(xs, mapped, fx, ident, c, dash))
    bad = [p["step"] for p in pts if any(p.get(k) is None for k in ("train_loss",))]
    for b in bad[:1]:
        s.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="black" stroke-dasharray="2 2"/>'
                 '<text x="%.1f" y="%d">non-finite</text>\n' % (fx(b), fx(b), PAD, H - PAD, fx(b) + 3, PAD + 12))
    s.append('<text x="%d" y="%d" fill="#1f77b4">train_loss</text><text x="%d" y="%d" fill="#d62728">val_loss</text>'
             '<text x="%d" y="%d" fill="#2ca02c">val_accuracy</text>\n' % (PAD, H - 8, PAD + 80, H - 8, PAD + 150, H - 8))
    s.append("</svg>\n")
    return "".join(s)


def main():
    index = sys.argv[1] if len(sys.argv) > 1 else "tests/data/curves/index.csv"
    out = sys.argv[2] if len(sys.argv) > 2 else "docs/curves"
    per = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    base = os.path.dirname(index)
    os.makedirs(out, exist_ok=True)
    rows = list(csv.DictReader(open(index)))
    seen, listed = {}, []
    for row in rows:
        if seen.get(row["label"], 0) >= per:
            continue
        pts, final = load(os.path.join(base, row["id"] + ".jsonl.gz"))
        if len(pts) < 3:
            continue
        seen[row["label"]] = seen.get(row["label"], 0) + 1
        name = "%s_%s.svg" % (row["label"], row["id"])
        with open(os.path.join(out, name), "w") as f:
            f.write(svg(row, pts, final))
        listed.append((row["label"], name, row))
    with open(os.path.join(out, "index.md"), "w") as f:
        f.write("# A sample of the labelled learning curves\n\nMade by `tools/curves/plot_svg.py` "
                "from `tests/data/curves/` (see docs/BENCHMARKS.md, \"Training monitor\").\n\n")
        for label, name, row in sorted(listed):
            f.write("- %s: ![%s](%s) %s, %s on %s\n" % (label, name, name, row["id"], row["made_by"], row["dataset"]))
    print("plot_svg: %d plots in %s" % (len(listed), out), file=sys.stderr)


if __name__ == "__main__":
    main()
