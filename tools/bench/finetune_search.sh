#!/bin/bash
# finetune_search.sh: the hook for evaluations (b) AutoML from scratch and (e) joint AutoML +
# fine-tune with the kb-chosen backbone of docs/BENCHMARKS.md, "Backbones and fine-tuning".
# Runs `kb search` on every target of a make_backbones.sh manifest, SEEDS times, and writes
# one JSON line per search in finetune_bench's --extra format:
#   {"target": NAME, "method": "(b) automl scratch"|"(e) joint automl+finetune", "seed": S,
#    "test_accuracy": A}
#
#   tools/bench/finetune_search.sh KB_BIN MANIFEST OUT.jsonl [SEEDS] [TRIALS]
#   build/b1/finetune_bench --manifest MANIFEST --extra OUT.jsonl
#
# Each trial is tools/backbones/finetune_trial.sh (the `finetune` space's configuration as a
# kb train net run). For (b) the space's backbone stays "none"; for (e) its choices are the
# KB's backbones with the target's input signature (kb backbone list), and the search starts
# from the recommendation. The kb search options below are the ones planned in issue 7
# (--space, --method, --trials, --command); adjust SEARCH() when the command lands.
set -u
kb=${1:?usage: finetune_search.sh KB_BIN MANIFEST OUT.jsonl [SEEDS] [TRIALS]}
manifest=${2:?manifest} out=${3:?out} seeds=${4:-5} trials=${5:-20}
here=$(cd "$(dirname "$0")" && pwd)
trial=$here/../backbones/finetune_trial.sh
kbdb=$(dirname "$manifest")/kb.lmdb
if ! "$kb" search --help >/dev/null 2>&1; then
    echo "finetune_search.sh: this kb has no 'search' command yet; (b) and (e) skipped" >&2
    exit 3
fi

SEARCH() { # SEARCH TRAIN TEST SEED SPACE_FILE -> the best trial's final line on stdout
    "$kb" search --kb "$kbdb" --space finetune --space-file "$4" --method bohb \
        --trials "$trials" --seed "$3" --objective test_accuracy --direction maximize \
        --command "$trial --kb-bin $kb --kb $kbdb --train $1 --test $2 --config {config_json} -- --seed {seed} --quiet" \
        --json | tail -n 1
}

spaces=$(mktemp -d)
trap 'rm -rf "$spaces"' EXIT
src=$here/../../datasets/spaces.jsonl
grep '"name":"finetune"' "$src" > "$spaces/scratch.jsonl"
ids=$("$kb" backbone list --kb "$kbdb" --json | sed -n 's/.*"id":"\([^"]*\)".*/"\1"/p' | paste -sd, -)
sed "s/\"choices\":\[\"none\"\]/\"choices\":[\"none\",$ids]/" "$spaces/scratch.jsonl" > "$spaces/joint.jsonl"
: > "$out"
while IFS=$'\t' read -r kind name _ train test _; do
    [ "$kind" = target ] || continue
    for ((s = 1; s <= seeds; s++)); do
        for m in "b:scratch:(b) automl scratch" "e:joint:(e) joint automl+finetune"; do
            space=${m#*:}; space=${space%%:*}; label=${m#*:*:}
            acc=$(SEARCH "$train" "$test" "$s" "$spaces/$space.jsonl" |
                  sed -n 's/.*"test_accuracy":\([0-9.eE+-]*\).*/\1/p')
            [ -n "$acc" ] || { echo "finetune_search.sh: $name seed $s: no result" >&2; continue; }
            printf '{"target":"%s","method":"%s","seed":%d,"test_accuracy":%s}\n' \
                "$name" "$label" "$s" "$acc" >> "$out"
        done
    done
done < "$manifest"
