#!/bin/sh
# Architecture search on Fashion-MNIST (issue 7): the hand-designed CNN vs AdaRandom vs
# REINFORCE vs uniform random search at the same trial budget, TRIES tries split over PROCS
# niced single-threaded processes (tools/bench/bench_archsearch.c documents the protocol), then
# the tables and the error CDF (tools/bench/archsearch_report.py).
#
#   tools/bench/archsearch.sh BUILD_DIR OUT_DIR [DATA_DIR] [TRIES] [PROCS] [-- BENCH_OPTIONS]
#   e.g. tools/bench/archsearch.sh build/release /tmp/archsearch \
#            /usr/share/datasets/fashion-mnist 20 2
#
# Writes OUT_DIR/run<first-try>.jsonl (one JSON line per trial and per search) and .log
# (progress), then OUT_DIR/archsearch.md and OUT_DIR/archsearch.svg. A run that was cut short
# still reports every search it completed: re-run the report alone with
#   /usr/bin/python3 tools/bench/archsearch_report.py OUT_DIR/archsearch OUT_DIR/run*.jsonl
set -eu
build=${1:?usage: archsearch.sh BUILD_DIR OUT_DIR [DATA_DIR] [TRIES] [PROCS] [-- OPTIONS]}
out=${2:?usage: archsearch.sh BUILD_DIR OUT_DIR [DATA_DIR] [TRIES] [PROCS] [-- OPTIONS]}
data=${3:-/usr/share/datasets/fashion-mnist}
tries=${4:-20}
procs=${5:-2}
shift $(($# < 5 ? $# : 5))
[ "${1:-}" = "--" ] && shift
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$data/train-images-idx3-ubyte.gz" ] ||
    { echo "archsearch.sh: no $data/train-images-idx3-ubyte.gz (apt-get install dataset-fashion-mnist)" >&2; exit 2; }
mkdir -p "$out"
per=$(((tries + procs - 1) / procs))
first=0
pids=""
while [ "$first" -lt "$tries" ]; do
    n=$per
    [ $((first + n)) -gt "$tries" ] && n=$((tries - first))
    OPENBLAS_NUM_THREADS=1 nice -n 10 "$build/bench_archsearch" --data "$data" \
        --first-try "$first" --tries "$n" --methods hand,adarandom,reinforce,random "$@" \
        >"$out/run$first.jsonl" 2>"$out/run$first.log" &
    pids="$pids $!"
    first=$((first + n))
done
status=0
for p in $pids; do
    wait "$p" || status=1
done
/usr/bin/python3 "$here/archsearch_report.py" "$out/archsearch" "$out"/run*.jsonl
exit $status
