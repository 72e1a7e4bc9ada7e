#!/bin/sh
# One GP suggestion (fit + EI on 1000 candidates), 8 dimensions, kb vs scikit-learn in the
# same command, printed as a ratio. Usage: tools/bench/gp.sh BUILD_DIR [N ...] (default 200 1000 3000)
# RESTARTS (env, default 0) random restarts for both.
set -eu
build=$1
shift
sizes=${*:-200 1000 3000}
r=${RESTARTS:-0}
here=$(dirname "$0")
echo "n,kb_fit_s,kb_acq_s,kb_lml,kb_evals,sk_fit_s,sk_acq_s,sk_lml,speedup"
for n in $sizes; do
    kb=$("$build/bench_gp" "$n" 8 "$r" 1000)
    sk=$(/usr/bin/python3 "$here/gp_peer.py" "$n" 8 "$r" 1000)
    echo "$kb,${sk#*,}" | awk -F, '{printf "%s,%.3f\n", $0, ($6 + $7) / ($2 + $3)}'
done
