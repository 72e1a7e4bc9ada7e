#!/bin/sh
# Reference values for tests/unit/test_svm.c: libsvm's own 5-fold cross-validation
# (svm-train -v 5) on heart_scale, the Statlog heart data scaled to [-1, 1] by svm-scale.
#
# Needs Debian's libsvm-tools (svm-scale, svm-train); the tests do not. Run once from the
# repository root:
#     sh tests/ref/make_svm_ref.sh [statlog_heart.csv[.gz]]
# (default: datasets/statlog_heart.csv.gz). Writes tests/data/heart_scale.svm and
# tests/ref/svm_heart_ref.txt.
#
# heart_scale: label +1 = "present", -1 = "absent" (libsvm's classic heart_scale has the same
# rows in the same order and matches this output line for line); zero values are omitted, as
# svm-scale writes them.
#
# svm-train's cross-validation split comes from rand() without srand(), so for a given file it
# is always the same split. To sample the split's noise, each run feeds svm-train the rows in a
# different order: a permutation keyed by a Park-Miller generator (exact in double arithmetic,
# so any awk gives the same order) seeded with the run number.
set -eu
src=${1:-datasets/statlog_heart.csv.gz}
runs=20
out_data=tests/data/heart_scale.svm
out_ref=tests/ref/svm_heart_ref.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

case "$src" in
*.gz) gzip -dc "$src" >"$tmp/heart.csv" ;;
*) cp "$src" "$tmp/heart.csv" ;;
esac
# CSV -> svmlight: 13 numeric features, target present/absent in the last column
awk -F, 'NR > 1 {
    s = ($NF == "present") ? "+1" : "-1"
    for (i = 1; i < NF; i++) if ($i != 0) s = s " " i ":" $i
    print s
}' "$tmp/heart.csv" >"$tmp/heart.svm"
mkdir -p tests/data
svm-scale -l -1 -u 1 "$tmp/heart.svm" >"$out_data" 2>/dev/null

permute() { # permute SEED FILE
    awk -v seed="$1" 'BEGIN { x = seed } {
        x = (x * 16807) % 2147483647
        printf "%d\t%s\n", x, $0
    }' "$2" | sort -n -k1,1 | cut -f2-
}

# kernel (-t) C gamma: libsvm's default (gamma 1/13), and a spread from under- to overfitting
configs="2 1 0.0769230769
2 10 0.01
2 100 0.001
2 0.1 0.1
2 1000 0.1
2 1 1
0 1 0.0769230769
0 0.01 0.0769230769"

{
    echo "# svm-train -v 5 (libsvm $(dpkg-query -W -f '${Version}' libsvm-tools 2>/dev/null || echo '?'))" \
        "on tests/data/heart_scale.svm, $runs runs per row with the rows permuted (seeds 1..$runs)"
    echo "# made by tests/ref/make_svm_ref.sh; accuracy as a fraction; sd = sample standard deviation"
    echo "# kernel C gamma runs mean sd min max"
    echo "$configs" | while read -r t c g; do
        : >"$tmp/acc"
        seed=1
        while [ "$seed" -le "$runs" ]; do
            permute "$seed" "$out_data" >"$tmp/perm.svm"
            svm-train -q -v 5 -t "$t" -c "$c" -g "$g" "$tmp/perm.svm" |
                sed -n 's/^Cross Validation Accuracy = \([0-9.]*\)%.*/\1/p' >>"$tmp/acc"
            seed=$((seed + 1))
        done
        kernel=$([ "$t" = 0 ] && echo linear || echo rbf)
        awk -v k="$kernel" -v c="$c" -v g="$g" '{
            a = $1 / 100; s += a; ss += a * a; n++
            if (n == 1 || a < lo) lo = a
            if (n == 1 || a > hi) hi = a
        } END {
            m = s / n; v = (ss - n * m * m) / (n - 1); if (v < 0) v = 0
            printf "%s %s %s %d %.6f %.6f %.6f %.6f\n", k, c, g, n, m, sqrt(v), lo, hi
        }' "$tmp/acc"
    done
} >"$out_ref"
cat "$out_ref"
