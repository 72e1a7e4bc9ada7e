#!/bin/sh
# What --prune judge saves in a real search: kb search --train net on bundled datasets, the
# same seed and budget with and without pruning; compute (sum of the trials' wall clock),
# the best value found, and the number of pruned trials, per dataset and in total.
# Usage: tools/bench/prune.sh BUILD_DIR [BUDGET (20)] [EPOCHS (30)] [DATASETS...]
# (MAX_ROWS, default 1000: the rows each trial trains on; METHOD, default random: with random
# search both runs train the same configurations, so the saving is the pruning alone)
set -eu
build=$(cd "$1" && pwd)
budget=${2:-20}
epochs=${3:-30}
rows=${MAX_ROWS:-1000}
method=${METHOD:-random}
shift $(( $# < 3 ? $# : 3 ))
here=$(cd "$(dirname "$0")/../.." && pwd)
datasets=${*:-"breast_w credit_g dna_splice ionosphere pima_diabetes vehicle"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export KB_PATH="$work/kb.lmdb"
"$build/kb" ingest --quiet "$here/datasets/spaces.jsonl" >/dev/null
echo "dataset,prune,trials,pruned,compute_s,best"
for ds in $datasets; do
  for prune in none judge; do
    "$build/kb" search "$here/datasets/$ds.csv.gz" --train net --epochs "$epochs" \
      --budget "$budget" --max-rows "$rows" --seed 1 --method "$method" --warm-start none --prune "$prune" \
      --work-dir "$work/trials" --json --quiet > "$work/out.jsonl"
    tail -1 "$work/out.jsonl" | /usr/bin/python3 "$here/tools/bench/prune_row.py" "$ds" "$prune"
  done
done
