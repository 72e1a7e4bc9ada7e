#!/bin/bash
# The training-monitor benchmark in one command: the peers' rules (Keras EarlyStopping and
# TerminateOnNaN semantics, Optuna's MedianPruner and ThresholdPruner) and kb on the same
# labelled curves, one table.
#   tools/bench/judge.sh BUILD_DIR [INDEX_CSV]    (default index: tests/data/curves/index.csv)
set -eu
B=${1:?usage: judge.sh BUILD_DIR [INDEX_CSV]}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
INDEX=${2:-$SRC/tests/data/curves/index.csv}
P=$(mktemp)
trap 'rm -f "$P"' EXIT
/usr/bin/python3 "$SRC/tools/bench/judge_peers.py" "$INDEX" > "$P"
"$B/bench_judge" "$INDEX" "$P"
