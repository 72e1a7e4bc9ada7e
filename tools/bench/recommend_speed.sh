#!/bin/sh
# A whole `kb recommend --task ID` on a synthetic knowledge base of N tasks built from the
# bundled history's real tasks (tools/bench/bench_recommend_speed.c): through the derived table
# in the store's cache against --no-cache (every task and run read) in the same command, then
# the same query as a separate kb process (startup included).
#   sh tools/bench/recommend_speed.sh [BUILD_DIR] [N_TASKS] [CONFIGS]
# The synthetic knowledge base stays in BUILD_DIR/synth<N>.lmdb for re-runs (several GB at
# 100,000 tasks x 101 runs); remove it to rebuild.
set -e
cd "$(dirname "$0")/../.."
b=${1:-build/release} n=${2:-100000} c=${3:-30}
cmake --build "$b" --target kb bench_recommend_speed >/dev/null
src="$b/history.lmdb"
if [ ! -d "$src" ]; then
    "$b/kb" init --kb "$src" >/dev/null
    "$b/kb" ingest --kb "$src" --quiet datasets/spaces.jsonl >/dev/null
    for f in datasets/history/tasks.jsonl.gz datasets/history/svm.jsonl.gz; do
        gzip -dc "$f" | "$b/kb" ingest --kb "$src" --quiet - >/dev/null
    done
fi
out="$b/synth$n-$c.lmdb"
export OPENBLAS_NUM_THREADS=1
"$b/bench_recommend_speed" --source "$src" --kb "$out" --tasks "$n" --configs "$c"
# the same query as its own process, ten times (the first query above stored the table)
for i in 1 2 3 4 5 6 7 8 9 10; do
    t0=$(date +%s%N)
    "$b/kb" recommend --kb "$out" --task syn-0000042 --space svm --json >/dev/null
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000 ))
done | sort -n | awk '{ v[NR] = $1 } END {
  printf "  kb recommend as a process (startup included), 10 runs: median %.1f ms, min %.1f ms\n",
         (v[5] + v[6]) / 2000, v[1] / 1000 }'
