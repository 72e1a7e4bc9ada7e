#!/bin/sh
# Meta-feature benchmark (issue 3): kb against pandas read_csv + numpy/scipy (same features)
# and kb's landmarkers against scikit-learn's, in one command.
#
#   sh tools/bench/metafeatures.sh [BUILD_DIR] [WORK_DIR]
#
# BUILD_DIR (default build/release) holds kb and bench_metafeatures; WORK_DIR (default
# /tmp/kb-bench-mf) receives the generated 1,000,000 x 50 CSV (~460 MB, seeded, kept between
# runs). End to end = process start to exit (reading + general/statistical/info groups),
# timed with /usr/bin/time, which also gives CPU time (user + system, steadier than wall time
# on a loaded machine) and the peak resident memory. Bundled datasets: best
# of 3 runs; the generated file: one run. Landmarkers: per-model time of 5-fold CV on the same
# stratified sample, letter (26 classes, 16 features) at 1k and 10k rows.
set -e
cd "$(dirname "$0")/../.."
B=${1:-build/release}
W=${2:-/tmp/kb-bench-mf}
PY=/usr/bin/python3
PEER=tools/bench/metafeatures_peer.py
mkdir -p "$W"
export OPENBLAS_NUM_THREADS=1
GEN="$W/gen_1m_50.csv"
[ -s "$GEN" ] || "$B/bench_metafeatures" generate "$GEN" 1000000 50 1

# run3 N OUT TIMEFILE CMD...: best wall time of N runs; peak memory of that run
run() {
    n=$1 out=$2 tf=$3; shift 3
    best=""
    i=0
    while [ $i -lt "$n" ]; do
        /usr/bin/time -f "%e %M %U %S" -o "$tf.1" "$@" >"$out"
        if [ -z "$best" ] || awk -v a="$(cut -d' ' -f1 "$tf.1")" -v b="$best" 'BEGIN{exit !(a<b)}'; then
            best=$(cut -d' ' -f1 "$tf.1")
            cp "$tf.1" "$tf"
        fi
        i=$((i + 1))
    done
}

echo "## end to end: read + general/statistical/info meta-features"
printf "%-24s %7s %8s %7s %7s %8s %7s %7s %8s %6s %s\n" dataset kb_s pandas_s speedup \
    kb_cpu pd_cpu cpu_x kb_MiB pd_MiB mem_x max_rel_diff
for f in "$GEN" datasets/mpls_stops.csv.gz datasets/shuttle.csv.gz datasets/letter.csv.gz \
    datasets/satellite.csv.gz datasets/cell_segmentation.csv.gz datasets/parkinsons_speech.csv.gz; do
    n=3
    [ "$f" = "$GEN" ] && n=1
    run $n "$W/kb.json" "$W/kb.time" "$B/kb" features "$f" --json --groups general,statistical,info
    run $n "$W/py.json" "$W/py.time" $PY $PEER features "$f"
    diff=$($PY -c '
import json, sys
k = json.load(open(sys.argv[1]))["features"]; p = json.loads(open(sys.argv[2]).read())
d = [abs(k[n] - v) / max(abs(v), 1e-12) for n, v in p.items()
     if v is not None and k.get(n) is not None and abs(v) > 1e-9]
print("%.1e over %d features" % (max(d), len(d)))' "$W/kb.json" "$W/py.json")
    read kt km ku ks <"$W/kb.time"
    read pt pm pu ps <"$W/py.time"
    awk -v f="$(basename "$f")" -v kt="$kt" -v km="$km" -v pt="$pt" -v pm="$pm" -v d="$diff" \
        -v ku="$ku" -v ks="$ks" -v pu="$pu" -v ps="$ps" \
        'BEGIN{kc = ku + ks; pc = pu + ps; printf "%-24s %7.2f %8.2f %6.1fx %7.2f %8.2f %6.1fx %7.1f %8.1f %5.1fx %s\n",
               f, kt, pt, pt/kt, kc, pc, pc/kc, km/1024, pm/1024, pm/km, d}'
done

echo
echo "## landmarkers: seconds for 5-fold CV on letter (same sample and folds)"
printf "%-8s %-12s %9s %9s %8s %9s %9s\n" rows model kb_s sklearn_s speedup kb_acc sk_acc
for n in 1000 10000; do
    "$B/bench_metafeatures" landmarks datasets/letter.csv.gz $n 1 >"$W/lk.json"
    $PY $PEER landmarks datasets/letter.csv.gz $n 1 >"$W/lp.json"
    $PY -c '
import json, sys
k = json.load(open(sys.argv[1])); p = json.load(open(sys.argv[2]))
for m in ["1nn", "naive_bayes", "stump", "lda", "linear_svm", "rbf_svm"]:
    kt, pt = k["time_s"][m], p["time_s"][m]
    print("%-8d %-12s %9.3f %9.3f %7.1fx %9.4f %9.4f" % (k["rows"], m, kt, pt, pt / kt,
          k["score"][m], p["score"][m]))' "$W/lk.json" "$W/lp.json"
done
