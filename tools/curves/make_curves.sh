#!/bin/bash
# Make the labelled set of real learning curves for the training monitor (issue 8):
# runs `kb train net` on bundled datasets and a Fashion-MNIST subset with settings chosen to
# produce each kind of curve, and stores each run's JSON lines gzip-compressed with an index.
#
#   tools/curves/make_curves.sh [KB_BINARY] [OUT_DIR]     (defaults: kb on PATH, tests/data/curves)
#   KEEP=1 tools/curves/make_curves.sh ...   reuses the curves already in OUT_DIR (same ids)
#
# Labels are "how the run was made", fixed before it runs:
#   lr_far_too_high (SGD), lr_too_high (Adam / momentum 0.99 far past stable)
#                    -> overflow when the trainer reported status "diverged" (non-finite
#                       loss/weights), else diverging
#   lr_far_too_low   -> underfitting
#   small_data_long  -> overfitting (big MLP, no regularisation, long training, small data)
#   good             -> converged (sound settings, trained well past the plateau)
#   good_short       -> improving (the same settings, stopped early: no rule should stop it)
#   lr_swing         -> oscillating (Adam at lr 0.3 with batch 16, or plain SGD at lr 1 with
#                       batch 4: a step size just below divergence, so that each few batches
#                       throw the weights across the valley; the accuracy swings by several
#                       points between evaluations without a trend, the loss does not blow up)
# Deterministic: every run has its own --seed. Needs /usr/bin/python3 with numpy only for
# the Fashion-MNIST subset (skipped when /usr/share/datasets/fashion-mnist is absent).
set -eu
KB=${1:-kb}
OUT=${2:-tests/data/curves}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DS=$SRC/datasets
mkdir -p "$OUT"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
INDEX=$OUT/index.csv
echo "id,label,made_by,dataset,classes,arch,seed,config" > "$INDEX"
n=0

# run ID MADE_BY DATASET CLASSES ARCH SEED CONFIG_JSON [extra kb args...]
run() {
    local made=$1 data=$2 classes=$3 arch=$4 seed=$5 cfg=$6
    shift 6
    local id
    id=$(printf 'c%03d' "$n")
    n=$((n + 1))
    local path=$data
    case $data in /*) ;; *) path=$DS/$data.csv.gz ;; esac
    if [ "${KEEP:-0}" = 1 ] && [ -f "$OUT/$id.jsonl.gz" ]; then
        zcat "$OUT/$id.jsonl.gz" > "$TMP/$id.jsonl" # made by an earlier run of this script
    elif ! "$KB" train net "$path" --arch "$arch" --config "$cfg" --seed "$seed" --threads 1 \
        --quiet "$@" > "$TMP/$id.jsonl" 2> "$TMP/$id.err"; then
        if ! grep -q '"final"' "$TMP/$id.jsonl"; then
            echo "make_curves: $id ($made on $data) failed: $(head -c 300 "$TMP/$id.err")" >&2
            return 0
        fi
    fi
    if ! grep -q '"step"' "$TMP/$id.jsonl"; then
        echo "make_curves: $id ($made on ${data##*/}) ended before its first point: skipped" >&2
        return 0
    fi
    local label
    case $made in
    lr_far_too_high | lr_too_high)
        if grep -q '"status":"diverged"' "$TMP/$id.jsonl"; then label=overflow; else label=diverging; fi ;;
    lr_far_too_low | tiny_net) label=underfitting ;;
    small_data_long) label=overfitting ;;
    good) label=converged ;;
    good_short) label=improving ;;
    lr_swing) label=oscillating ;;
    *) echo "make_curves: unknown recipe $made" >&2; exit 2 ;;
    esac
    gzip -9 -n -c "$TMP/$id.jsonl" > "$OUT/$id.jsonl.gz"
    local data_name=${data##*/}
    echo "$id,$label,$made,$data_name,$classes,\"$arch\",$seed,\"$(echo "$cfg" | sed 's/"/""/g')\"" >> "$INDEX"
}

# dataset:classes pairs
BIG="letter:26 satellite:6 optdigits_8x8:10 cell_segmentation:2 vehicle:4 pima_diabetes:2 credit_g:2"
GOOD="letter:26 satellite:6 shuttle:7 optdigits_8x8:10"
SMALL="sonar:2 ionosphere:2 parkinsons_speech:2 wine:3 breast_cancer_wdbc:2 olive_oil:9 haberman:2 wpbc:2 promoters:2"

# Fashion-MNIST subset: 3000 training images as a CSV (pixels/255, label last)
FM=/usr/share/datasets/fashion-mnist
if [ -f "$FM/train-images-idx3-ubyte.gz" ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    /usr/bin/python3 - "$FM" "$TMP/fmnist3000.csv" <<'PY'
import gzip, sys
import numpy as np
d, out = sys.argv[1], sys.argv[2]
with gzip.open(d + "/train-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)[:3000]
with gzip.open(d + "/train-labels-idx1-ubyte.gz") as f:
    y = np.frombuffer(f.read(), np.uint8, offset=8)[:3000]
with open(out, "w") as f:
    f.write(",".join("p%d" % i for i in range(784)) + ",target\n")
    for r, t in zip(x, y):
        f.write(",".join("%d" % v for v in r) + ",%d\n" % t)
PY
    gzip "$TMP/fmnist3000.csv"
    BIG="$BIG $TMP/fmnist3000.csv.gz:10"
    GOOD="$GOOD $TMP/fmnist3000.csv.gz:10"
fi

seed=1
for dc in $BIG; do
    d=${dc%%:*}; k=${dc##*:}
    for lr in 3 10 30 100; do
        run lr_far_too_high "$d" "$k" "FC(64)" $seed "{\"optimizer\": \"sgd\", \"base_lr\": $lr, \"max_iter\": 1000, \"test_interval\": 5, \"batch_size\": 32}"
        seed=$((seed + 1))
    done
    for lr in 0.5 1 2; do
        run lr_too_high "$d" "$k" "FC(64)+FC(64)" $seed "{\"optimizer\": \"adam\", \"base_lr\": $lr, \"max_iter\": 1500, \"test_interval\": 15, \"batch_size\": 32}"
        seed=$((seed + 1))
    done
    run lr_too_high "$d" "$k" "FC(64)" $seed "{\"optimizer\": \"momentum\", \"momentum\": 0.99, \"base_lr\": 1, \"max_iter\": 1500, \"test_interval\": 15, \"batch_size\": 32}"
    seed=$((seed + 1))
    for lr in 0.000001 0.000003 0.00001; do
        run lr_far_too_low "$d" "$k" "FC(32)" $seed "{\"optimizer\": \"sgd\", \"base_lr\": $lr, \"max_iter\": 1500, \"test_interval\": 15, \"batch_size\": 32}"
        seed=$((seed + 1))
    done
done
# sound settings (Adam, weight decay, a step decay of the learning rate) on the larger sets,
# where a modest MLP does not overfit: trained well past the plateau, or stopped early
for dc in $GOOD; do
    d=${dc%%:*}; k=${dc##*:}
    for s in 0 1 2; do
        run good "$d" "$k" "FC(64)" $seed "{\"optimizer\": \"adam\", \"base_lr\": 0.003, \"weight_decay\": 0.0005, \"lr_policy\": \"step\", \"gamma\": 0.1, \"stepsize\": 1500, \"max_iter\": 6000, \"test_interval\": 60, \"batch_size\": 64}"
        seed=$((seed + 1))
        run good_short "$d" "$k" "FC(64)" $seed "{\"optimizer\": \"sgd\", \"base_lr\": 0.002, \"max_iter\": 600, \"test_interval\": 10, \"batch_size\": 64}"
        seed=$((seed + 1))
    done
done
for dc in $SMALL; do
    d=${dc%%:*}; k=${dc##*:}
    for s in 0 1 2 3 4; do
        run small_data_long "$d" "$k" "FC(256)+FC(256)" $seed "{\"optimizer\": \"adam\", \"base_lr\": 0.003, \"max_iter\": 3000, \"test_interval\": 30, \"batch_size\": 16}" --val-fraction 0.4
        seed=$((seed + 1))
    done
    for lr in 300 1000; do
        run lr_far_too_high "$d" "$k" "FC(64)" $seed "{\"optimizer\": \"sgd\", \"base_lr\": $lr, \"max_iter\": 1000, \"test_interval\": 5, \"batch_size\": 16}"
        seed=$((seed + 1))
    done
    for lr in 0.000001 0.000003; do
        run lr_far_too_low "$d" "$k" "FC(16)" $seed "{\"optimizer\": \"sgd\", \"base_lr\": $lr, \"max_iter\": 1500, \"test_interval\": 15, \"batch_size\": 16}"
        seed=$((seed + 1))
    done
done
# more sound runs (a second learning rate) on the sets where the modest MLP does not overfit
for dc in letter:26 satellite:6 shuttle:7 optdigits_8x8:10; do
    d=${dc%%:*}; k=${dc##*:}
    for s in 0 1; do
        run good "$d" "$k" "FC(64)" $seed "{\"optimizer\": \"adam\", \"base_lr\": 0.001, \"weight_decay\": 0.0005, \"lr_policy\": \"step\", \"gamma\": 0.1, \"stepsize\": 1500, \"max_iter\": 5000, \"test_interval\": 50, \"batch_size\": 64}"
        seed=$((seed + 1))
        run good_short "$d" "$k" "FC(64)" $seed "{\"optimizer\": \"sgd\", \"base_lr\": 0.003, \"max_iter\": 500, \"test_interval\": 10, \"batch_size\": 64}"
        seed=$((seed + 1))
    done
done
# oscillating: a step size just below divergence (lr 0.5 with two layers diverges, see
# lr_too_high), evaluated every 10 iterations so that the swings between evaluations show;
# 100 points per run, a fraction of a second each.
# swing OPTIMIZER LR BATCH DATASET:CLASSES...: two seeded lr_swing runs per dataset
swing() {
    local opt=$1 lr=$2 batch=$3 dc d k s
    shift 3
    for dc in "$@"; do
        d=${dc%%:*}; k=${dc##*:}
        for s in 0 1; do
            run lr_swing "$d" "$k" "FC(64)" $seed "{\"optimizer\": \"$opt\", \"base_lr\": $lr, \"max_iter\": 1000, \"test_interval\": 10, \"batch_size\": $batch}"
            seed=$((seed + 1))
        done
    done
}
swing adam 0.3 16 vehicle:4 satellite:6 cell_segmentation:2 pima_diabetes:2 fish_species:7
swing sgd 1 4 pima_diabetes:2 titanic:2 statlog_heart:2 fish_species:7
echo "make_curves: $(($(wc -l < "$INDEX") - 1)) curves in $OUT ($(du -sh "$OUT" | cut -f1))" >&2
