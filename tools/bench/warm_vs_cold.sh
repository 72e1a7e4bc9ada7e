#!/bin/sh
# warm_vs_cold.sh: kb search on every dataset of the bundled history of one space, each held
# out, warm-started from its nearest tasks (--warm-start auto) and from a cold start
# (--warm-start none). Each search starts from a fresh copy of a knowledge base holding the
# bundled spaces, tasks and that space's history (a dataset's own history runs never enter its
# own study). Prints the best value so far after each of the checkpoints, per dataset and
# start, then how often each start is ahead and the means.
#
#   sh tools/bench/warm_vs_cold.sh KB_BIN SPACE "CHECKPOINTS" [kb search options...]
#   e.g. sh tools/bench/warm_vs_cold.sh build/release/kb svm "1 3 5 10" --train svm --budget 10 --max-rows 1000 --seed 1
#        sh tools/bench/warm_vs_cold.sh build/release/kb mlp "1 5 9 13" --train net --method hyperband --epochs 9 --budget 13 --max-rows 1000 --seed 1
#
# Environment: WORK (scratch directory, default build/warm-vs-cold), DATASETS (names to use
# instead of all of the space's history).
set -eu
[ $# -ge 3 ] || { echo "usage: warm_vs_cold.sh KB_BIN SPACE \"CHECKPOINTS\" [kb search options...]" >&2; exit 2; }
kb=$1 space=$2 at=$3
shift 3
case $kb in /*) ;; */*) kb=$PWD/$kb ;; esac
work=${WORK:-build/warm-vs-cold}
mkdir -p "$work" && work=$(cd "$work" && pwd)
cd "$(dirname "$0")/../.."
rm -rf "$work/base.lmdb" "$work/one.lmdb" "$work/trials" "$work/table.txt"
names=${DATASETS:-$(gzip -dc "datasets/history/$space.jsonl.gz" |
                     sed -n "s/^{\"kind\":\"run\",\"id\":\"hist:$space:\\([^:]*\\):.*/\\1/p" | sort -u)}
base=$work/base.lmdb
KB_PATH="$base" "$kb" init > /dev/null
KB_PATH="$base" "$kb" ingest --quiet datasets/spaces.jsonl > /dev/null
for f in datasets/history/tasks.jsonl.gz "datasets/history/$space.jsonl.gz"; do
  gzip -dc "$f" | KB_PATH="$base" "$kb" ingest --quiet - > /dev/null
done
printf '  %-24s %-5s best so far after %s trials\n' dataset start "$at"
for ds in $names; do
  for warm in auto none; do
    rm -rf "$work/one.lmdb" && cp -r "$base" "$work/one.lmdb"
    KB_PATH="$work/one.lmdb" "$kb" search "datasets/$ds.csv.gz" "$@" --warm-start "$warm" \
      --work-dir "$work/trials" --json --quiet > "$work/search.jsonl"
    # the best value so far at each checkpoint (each trial line carries its value)
    awk -v w="$warm" -v d="$ds" -v at="$at" -F'"value":' '
      BEGIN { n_at = split(at, ks, " "); for (i = 1; i <= n_at; i++) want[ks[i]] = 1 }
      /"kb.search.trial\/1"/ { n++; split($2, a, /[,}]/);
        v = a[1] + 0; if (a[1] != "null" && (!seen || v > best)) { best = v; seen = 1 }
        if (n in want) line = line sprintf(" %.4f", best) }
      END { printf "  %-24s %-5s%s\n", d, (w == "auto" ? "warm" : "cold"), line }' "$work/search.jsonl"
  done
done | tee "$work/table.txt"
awk -v at="$at" '
  $2 == "warm" { for (i = 3; i <= NF; i++) w[$1, i] = $i }
  $2 == "cold" { n++; for (i = 3; i <= NF; i++) { sw[i] += w[$1, i]; sc[i] += $i;
                   if (w[$1, i] > $i) win[i]++; else if (w[$1, i] < $i) loss[i]++ } }
  END { k = split(at, ks, " ");
        for (i = 3; i < 3 + k; i++)
          printf "  after %2d trials: warm ahead on %2d, cold on %2d of %d datasets; mean best, warm %.4f, cold %.4f\n",
                 ks[i - 2], win[i], loss[i], n, sw[i] / n, sc[i] / n }' "$work/table.txt"
rm -rf "$work/one.lmdb" "$work/search.jsonl"
