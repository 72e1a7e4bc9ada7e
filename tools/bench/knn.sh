#!/bin/sh
# Nearest-task scan: kb (tools/bench/bench_knn.c) against the bandwidth floor and numpy's
# brute-force 10-NN in the same command, on the same 1,000,000 x 40 matrix and queries.
#   sh tools/bench/knn.sh [BUILD_DIR] [N_TASKS]
set -e
cd "$(dirname "$0")/../.."
b=${1:-build/release} n=${2:-1000000}
cmake --build "$b" --target bench_knn >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
kb=$("$b/bench_knn" --datasets datasets --tasks "$n" --features 40 --queries 20 --out "$tmp/m")
echo "kb:    $kb"
d=$(printf '%s' "$kb" | sed 's/.*"features":\([0-9]*\).*/\1/')
peer=$(/usr/bin/python3 tools/bench/knn_peer.py "$tmp/m" "$n" "$d")
echo "numpy: $peer"
k=$(printf '%s' "$kb" | sed 's/.*"kb_l2_ms":\([0-9.]*\).*/\1/')
f=$(printf '%s' "$kb" | sed 's/.*"floor_ms":\([0-9.]*\).*/\1/')
p=$(printf '%s' "$peer" | sed 's/.*"numpy_ms": *\([0-9.]*\).*/\1/')
awk -v k="$k" -v f="$f" -v p="$p" 'BEGIN {
  printf "kb L2 10-NN %.2f ms/query = %.2fx the one-pass read floor (%.2f ms); numpy %.2f ms: kb %.1fx faster\n", k, k / f, f, p, p / k }'
