#!/bin/sh
# Ingest throughput: `kb ingest` of N generated runs (6 hyperparameters, a final metric and a
# 20-point learning curve each, seeded) end to end into a fresh, durable (synced) knowledge
# base, against Optuna 3.1's SQLite storage (study.add_trials, tools/bench/ingest_peer.py run by
# /usr/bin/python3) on the first PEER_N of the same runs; read-back of all runs of the task
# against Optuna listing its PEER_N-trial study; and a bare LMDB put loop writing records of the
# same encoded size with the same key order (the floor kb's store builds on).
# Also the parser layer alone (kb_ingest_parse_file, no store) in CPU time.
#
#   tools/bench/ingest.sh BUILD_DIR [N] [PEER_N] [WORK_DIR]
#   e.g. tools/bench/ingest.sh build/release 1000000 10000
#
# Prints the raw figures, then rates and ratios (kb / peer > 1: kb faster), by wall time and by
# CPU time (steadier on a busy machine). WORK_DIR (default: a temp dir) needs ~2 GB for 1M runs.
set -eu
build=${1:?usage: ingest.sh BUILD_DIR [N] [PEER_N] [WORK_DIR]}
n=${2:-1000000}
peer_n=${3:-10000}
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${4:-}" ]; then w=$4; mkdir -p "$w"; else w=$(mktemp -d); trap 'rm -rf "$w"' EXIT; fi
b=$build/bench_ingest

gen=$("$b" gen "$w/runs.jsonl" "$n" 42)
ing=$("$b" ingest "$build/kb" "$w/runs.jsonl" "$w/kb.lmdb" | tail -1)
rd=$("$b" read "$w/kb.lmdb" bench-task)
run_bytes=$(echo "$rd" | sed 's/.*run_bytes=\([0-9]*\).*/\1/')
lm=$("$b" lmdb "$w/lmdb" "$n" "$run_bytes")
pa=$("$b" parse "$w/runs.jsonl")
peer=$(/usr/bin/python3 "$here/ingest_peer.py" "$w/runs.jsonl" "$peer_n" "$w/optuna.db")
echo "$gen"
echo "$ing"
echo "$rd"
echo "$lm"
echo "$pa"
echo "$peer"
echo "$ing $rd $lm $pa $peer" | tr ' ' '\n' | awk -F= -v n="$n" -v file_bytes="$(wc -c <"$w/runs.jsonl")" '
    { v[$1] = $2 }
    END {
        kb = n / v["ingest_s"]; kb_cpu = n / v["ingest_cpu_s"]
        op = v["optuna_trials"] / v["optuna_add_s"]; op_cpu = v["optuna_trials"] / v["optuna_add_cpu_s"]
        lmdb = n / v["lmdb_s"]
        printf "kb ingest: %.0f runs/s end to end (%.0f runs/s of CPU), %.1f MB/s of JSON, store %.0f MB (%.0f bytes/run)\n",
            kb, kb_cpu, file_bytes / v["ingest_s"] / 1e6, v["store_bytes"] / 1e6, v["store_bytes"] / n
        printf "optuna add_trials: %.1f trials/s (%.1f of CPU)  ->  kb / optuna = %.0fx wall, %.0fx CPU\n",
            op, op_cpu, kb / op, kb_cpu / op_cpu
        printf "bare LMDB put loop: %.0f puts/s  ->  kb ingest is %.1fx slower than the floor\n",
            lmdb, lmdb / kb
        printf "parser layer alone (no store): %.0f records/s of CPU\n", v["parse_records"] / v["parse_cpu_s"]
        tr = v["task_runs"] / v["task_read_s"]; sc = v["scan_runs"] / v["scan_s"]
        ol = v["optuna_trials"] / v["optuna_list_s"]
        printf "read back: all runs of the task %.0f runs/s, full scan %.0f runs/s; optuna get_trials %.0f trials/s  ->  kb / optuna = %.0fx\n",
            tr, sc, ol, tr / ol
    }'
