"""One CSV row of tools/bench/prune.sh from kb search's last --json line (kb.search/1)."""
import json
import sys

d = json.load(sys.stdin)
best = d["best"]["value"] if d["best"] else float("nan")
print("{},{},{},{},{:.2f},{:.4f}".format(sys.argv[1], sys.argv[2], d["trials"], d["pruned"],
                                         d["compute_s"], best))
