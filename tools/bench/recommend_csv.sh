#!/bin/sh
# Leave-one-task-out on the Wistuba SVM and AdaBoost grids through kb's Optuna CSV ingest:
# each dataset's grid becomes an Optuna trials CSV, `kb ingest` puts it into a temporary
# knowledge base under BUILD_DIR (never committed), `kb export` reads it back, and
# bench_recommend runs on what the store holds, next to bench_recommend on the matrices read
# directly; the two must print the same figures.
#   sh tools/bench/recommend_csv.sh WISTUBA_DIR [BUILD_DIR]
set -e
cd "$(dirname "$0")/../.."
w=${1:?usage: recommend_csv.sh WISTUBA_DIR [BUILD_DIR]} b=${2:-build/release}
cmake --build "$b" --target kb bench_recommend >/dev/null
tmp="$b/recommend_csv"
rm -rf "$tmp"
mkdir -p "$tmp"
kb="$b/kb"
db="$tmp/kb.lmdb"
"$kb" init --kb "$db" >/dev/null
for space in svm adaboost; do
    def=88; [ "$space" = adaboost ] && def=20
    n=$(/usr/bin/python3 tools/bench/recommend_csv.py split "$w/${space}_matrix.csv" "$w/metafeatures.csv" "w$space" "$tmp/$space")
    "$kb" ingest --kb "$db" --quiet "$tmp/$space/tasks.jsonl" >/dev/null
    for f in "$tmp/$space"/csv/*.csv; do
        d=$(basename "$f" .csv)
        "$kb" ingest --kb "$db" --quiet --task "w-w$space-$d" --space "w$space" --objective accuracy \
            --direction maximize --study "w$space-$d" "$f" >/dev/null
    done
    "$kb" export --kb "$db" > "$tmp/export.jsonl"
    /usr/bin/python3 tools/bench/recommend_csv.py table "$tmp/export.jsonl" "w$space" "$tmp/$space/store" >/dev/null
    echo "== $space: $n datasets, read back from the store after kb ingest (Optuna CSV)"
    "$b/bench_recommend" --table "$tmp/$space/store.table.csv" --metafeatures "$tmp/$space/store.mf.csv" --default $def > "$tmp/$space/store.txt"
    "$b/bench_recommend" --table "$w/${space}_matrix.csv" --metafeatures "$w/metafeatures.csv" --default $def > "$tmp/$space/direct.txt"
    cat "$tmp/$space/store.txt"
    if cmp -s "$tmp/$space/store.txt" "$tmp/$space/direct.txt"; then
        echo "   identical to bench_recommend on the matrix read directly"
    else
        echo "   DIFFERS from bench_recommend on the matrix read directly:"
        diff "$tmp/$space/direct.txt" "$tmp/$space/store.txt" || true
    fi
done
