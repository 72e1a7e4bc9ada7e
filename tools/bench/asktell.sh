#!/bin/sh
# Ask/tell overhead per trial: kb's study (in-process, every ask and tell a synced LMDB
# transaction) vs Optuna's in-memory study, same objective, same method, same command.
# Usage: tools/bench/asktell.sh BUILD_DIR [TRIALS (1000)] [METHOD (tpe)]
set -eu
build=$1
n=${2:-1000}
method=${3:-tpe}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/asktell.XXXXXX")
trap 'rm -rf "$work"' EXIT
export KB_PATH="$work/kb.lmdb"
"$build/kb" ingest --quiet "$here/../../datasets/spaces.jsonl" >/dev/null
task=$("$build/kb" add-task "$here/../../datasets/iris.csv.gz" --name iris --json --quiet |
       sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
"$build/bench_asktell" "$KB_PATH" "$task" svm "$n" "$method" > "$work/kb.csv"
/usr/bin/python3 "$here/asktell_peer.py" "$n" "$method" > "$work/optuna.csv"
echo "trials,kb_ms_per_trial,optuna_ms_per_trial,ratio"
paste -d, "$work/kb.csv" "$work/optuna.csv" | tail -n +2 |
    awk -F, '{printf "%s,%s,%s,%.1f\n", $1, $2, $4, $4 / $2}'
