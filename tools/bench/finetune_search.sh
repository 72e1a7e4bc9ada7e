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
# kb train net run) on the target's training images, scored on a validation split of them
# (objective val_accuracy); the best configuration is then trained once more with the same
# seed and scored on the target's test images (the number reported). (b) searches the space
# with backbone "none" only (space finetune-scratch); (e) searches it with the backbone among
# its choices: "none" and the KB's backbones with the target's input signature (space
# finetune-joint, written into the KB once), warm-started from the nearest tasks' runs.
# METHOD (environment, default gp) is kb search's --method; TARGETS (names, default all) and
# SEARCHES ("finetune-scratch finetune-joint" by default) narrow the runs; SEED_FROM (default
# 1) starts the seeds there, so seeds can run as separate calls (each call truncates OUT).
set -u
kb=${1:?usage: finetune_search.sh KB_BIN MANIFEST OUT.jsonl [SEEDS] [TRIALS]}
manifest=${2:?manifest} out=${3:?out} seeds=${4:-5} trials=${5:-20}
method=${METHOD:-gp}
here=$(cd "$(dirname "$0")" && pwd)
# trials run in their own directories: every path they see must be absolute
abs() { case $1 in /*) printf '%s' "$1" ;; */*) printf '%s/%s' "$PWD" "$1" ;; *) command -v "$1" ;; esac; }
kb=$(abs "$kb")
trial=$here/../backbones/finetune_trial.sh
kbdb=$(abs "$(dirname "$manifest")/kb.lmdb")
if ! "$kb" search --help >/dev/null 2>&1; then
    echo "finetune_search.sh: this kb has no 'search' command; (b) and (e) skipped" >&2
    exit 3
fi

# the two spaces, written into the KB once (ingest skips a space already there)
src=$here/../../datasets/spaces.jsonl
spaces=$(mktemp)
trap 'rm -f "$spaces"' EXIT
ids=$("$kb" backbone list --kb "$kbdb" --json | grep '"input_signature":"image:1x28x28"' |
      sed -n 's/.*"id":"\([^"]*\)".*/"\1"/p' | paste -sd, -)
grep '"name":"finetune"' "$src" | sed 's/"name":"finetune"/"name":"finetune-scratch"/' > "$spaces"
grep '"name":"finetune"' "$src" | sed 's/"name":"finetune"/"name":"finetune-joint"/' |
    sed "s/\"choices\":\[\"none\"\]/\"choices\":[\"none\",$ids]/" >> "$spaces"
"$kb" ingest "$spaces" --kb "$kbdb" >/dev/null || exit 1

run() { # run SPACE TRAIN TEST SEED -> test accuracy of the search's best configuration
    local cmd="$trial --kb-bin $kb --kb $kbdb --train $2 --config {config_json} -- --seed {seed} --quiet"
    local best
    best=$("$kb" search "$2" --kb "$kbdb" --space "$1" --method "$method" --budget "$trials" \
        --seed "$4" --objective val_accuracy --direction maximize --trial "$cmd" --json --quiet |
        tail -n 1 | sed -n 's/.*"best":{.*"config":\({[^}]*}\)}}$/\1/p')
    [ -n "$best" ] || return 1
    "$trial" --kb-bin "$kb" --kb "$kbdb" --train "$2" --test "$3" --config "$best" -- \
        --seed "$4" --quiet | tail -n 1 | sed -n 's/.*"test_accuracy":\([0-9.eE+-]*\).*/\1/p'
}

: > "$out"
while IFS=$'\t' read -r kind name _ train test _; do
    [ "$kind" = target ] || continue
    case " ${TARGETS:-$name} " in *" $name "*) ;; *) continue ;; esac
    for ((s = ${SEED_FROM:-1}; s <= seeds; s++)); do
        for m in "finetune-scratch:(b) automl scratch" "finetune-joint:(e) joint automl+finetune"; do
            case " ${SEARCHES:-finetune-scratch finetune-joint} " in *" ${m%%:*} "*) ;; *) continue ;; esac
            acc=$(run "${m%%:*}" "$(abs "$train")" "$(abs "$test")" "$s")
            [ -n "$acc" ] || { echo "finetune_search.sh: $name seed $s ${m%%:*}: no result" >&2; continue; }
            printf '{"target":"%s","method":"%s","seed":%d,"test_accuracy":%s}\n' \
                "$name" "${m#*:}" "$s" "$acc" >> "$out"
        done
    done
done < "$manifest"
