#!/bin/sh
# SVM cross-validation time: `kb train svm` against scikit-learn's SVC (tools/bench/svm_peer.py)
# on the same data, the same 5 folds (bench_svm_folds prints kb's), the same preprocessing and
# libsvm settings (RBF, C, gamma = 1/features, tolerance 1e-3, cache 100 MB, shrinking, no
# probability estimates). Both wrap libsvm: Debian's libsvm3 for kb, scikit-learn's bundled
# copy for the peer. Each side runs REPEATS times; the best time counts. Both run with
# OPENBLAS_NUM_THREADS=1 (libsvm is single-threaded; kb's prediction calls dgemm).
#
#   tools/bench/svm.sh BUILD_DIR DATA_DIR [REPEATS] [C]
#   e.g. tools/bench/svm.sh build/release datasets 3
#
# DATA_DIR holds statlog_heart, satellite and letter as .csv or .csv.gz; letter is cut to its
# first 5000 rows. Prints one line per dataset with the ratios kb / scikit-learn (< 1: kb
# faster) of the best wall time and of the best CPU time (steadier on a busy machine), and both
# accuracies (same folds, same settings: they should agree to rounding).
set -eu
build=${1:?usage: svm.sh BUILD_DIR DATA_DIR [REPEATS] [C]}
data=${2:?usage: svm.sh BUILD_DIR DATA_DIR [REPEATS] [C]}
repeats=${3:-3}
c=${4:-1}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

find_data() {
    for f in "$data/$1.csv.gz" "$data/$1.csv"; do
        [ -f "$f" ] && { echo "$f"; return; }
    done
    echo "svm.sh: no $1.csv[.gz] in $data" >&2
    exit 2
}

field() { # field JSON_LINE KEY.PATH
    printf '%s' "$1" | "$py" -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(v)' "$2"
}

heart=$(find_data statlog_heart)
satellite=$(find_data satellite)
letter_full=$(find_data letter)
case "$letter_full" in
*.gz) gzip -dc "$letter_full" | head -n 5001 >"$tmp/letter_5000.csv" ;;
*) head -n 5001 "$letter_full" >"$tmp/letter_5000.csv" ;;
esac

echo "# kb train svm vs scikit-learn $("$py" -c 'import sklearn; print(sklearn.__version__)') SVC," \
    "5-fold CV, RBF, C=$c, gamma=1/features, best of $repeats; $(nproc) cores, shared machine"
echo "# ratio = kb / scikit-learn (< 1: kb faster), of wall time and of CPU time"
printf '%-14s %5s %4s %8s %8s %6s %8s %8s %6s %7s %7s\n' dataset rows feat kb_s sk_s ratio \
    kb_cpu sk_cpu ratio kb_acc sk_acc
for f in "$heart" "$satellite" "$tmp/letter_5000.csv"; do
    name=$(basename "$f" | sed 's/\.csv.*//')
    : >"$tmp/kb_times"
    i=0
    while [ "$i" -lt "$repeats" ]; do
        line=$(OPENBLAS_NUM_THREADS=1 "$build/kb" train svm "$f" --json --seed 0 \
            --set C="$c" --set cache_mb=100 --set tolerance=0.001 | tail -n 1)
        echo "$(field "$line" cv_s) $(field "$line" cv_cpu_s)" >>"$tmp/kb_times"
        i=$((i + 1))
    done
    gamma=$(field "$line" model.gamma)
    kb_acc=$(field "$line" final.accuracy)
    rows=$(field "$line" n_rows)
    feat=$(field "$line" n_features)
    "$build/bench_svm_folds" "$f" 5 0 >"$tmp/folds.txt"
    peer=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$py" "$here/svm_peer.py" "$f" \
        "$tmp/folds.txt" --C "$c" --gamma "$gamma" --tol 0.001 --cache-mb 100 --repeats "$repeats")
    "$py" -c 'import json, sys
n, rows, feat, times, peer, ka = sys.argv[1:]
t = [tuple(map(float, l.split())) for l in open(times)]
kb, kc = min(x[0] for x in t), min(x[1] for x in t)
p = json.loads(peer)
sk, sc = p["cv_s"], p["cv_cpu_s"]
print("%-14s %5s %4s %8.3f %8.3f %6.3f %8.3f %8.3f %6.3f %7.4f %7.4f" % (n, rows, feat, kb, sk,
      kb / sk, kc, sc, kc / sc, float(ka), p["accuracy"]))' "$name" "$rows" "$feat" \
        "$tmp/kb_times" "$peer" "$kb_acc"
done
