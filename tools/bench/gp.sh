#!/bin/sh
# One GP suggestion (fit + EI on 1,000 candidates), 8 dimensions, kb vs scikit-learn on the
# same data in the same command, printed as ratios (wall and CPU time of fit + EI).
# Usage: tools/bench/gp.sh BUILD_DIR [N ...]   (default 200 1000 3000)
# Env: RESTARTS (default 0) random restarts for both; SUBSET (default: kb's n_subset default,
# 500) kb's subset ladder, 0 = off; OPENBLAS_NUM_THREADS as given (set 1 for one thread).
set -eu
build=$1
shift
sizes=${*:-200 1000 3000}
r=${RESTARTS:-0}
sub=${SUBSET:-500}
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "n,kb_fit_s,kb_fit_cpu_s,kb_acq_s,kb_lml,kb_evals,kb_grads,kb_test_lpd,sk_fit_s,sk_fit_cpu_s,sk_acq_s,sk_lml,sk_evals,sk_test_lpd,speedup_wall,speedup_cpu"
for n in $sizes; do
    kb=$("$build/bench_gp" "$n" 8 "$r" 1000 "$tmp/data.csv" "$sub")
    sk=$(/usr/bin/python3 "$here/gp_peer.py" "$tmp/data.csv" "$r")
    echo "$kb,${sk#*,}" | awk -F, '{printf "%s,%.1f,%.1f\n", $0, ($9 + $11) / ($2 + $4), ($10 + $11) / ($3 + $4)}'
done
