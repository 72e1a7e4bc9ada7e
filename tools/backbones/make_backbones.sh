#!/bin/bash
# make_backbones.sh: source tasks, pretrained backbones and small target tasks from
# Fashion-MNIST, registered in a knowledge base (issue 7, "Backbones and the joint fine-tune
# space"; docs/BENCHMARKS.md, "Backbones and fine-tuning").
#
#   tools/backbones/make_backbones.sh --kb PATH [--kb-bin KB] [--cut-bin FINETUNE_CUT]
#       [--out DIR] [--fmnist DIR] [--seed S] [--epochs E] [--source-rows N] [--threads T]
#
# Source tasks (cut from the training set, N rows each, seeded): tops {0,2,4,6}, footwear and
# bags {5,7,8,9}, all ten classes, and all ten with a changed input domain (inverted, rotated a
# quarter turn). The built-in CNN (ARCH below) is pretrained on each for E epochs, and each
# source task (kb add-task) and backbone (kb backbone add --source-task) goes into the KB.
# Target tasks (from the test set, so never seen in pretraining): 14 small tasks of 3 classes,
# 20, 50 or 100 training images per class (seeded) and 100 test images per class, in five
# kinds: tops, footwear/bags, held-out classes mixed with others, inverted, rotated. Each is
# added as a task tagged with its kind. Everything lands in DIR (default build/backbones), with
# DIR/manifest.tsv listing backbones and targets for tools/bench/finetune_bench.c.
# Bounded CPU: one OpenBLAS thread; about a minute of CPU per backbone at the defaults.
set -eu

kb_path= kb_bin=${KB_BIN:-} cut_bin= out=build/backbones fmnist= seed=1 epochs=3 rows=12000
threads=1
ARCH='C(5,8)+P(2,2)+C(3,16)+P(2,2)+FC(64)'
while [ $# -gt 0 ]; do
    case $1 in
    --kb) kb_path=$2; shift 2 ;;
    --kb-bin) kb_bin=$2; shift 2 ;;
    --cut-bin) cut_bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --fmnist) fmnist=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --source-rows) rows=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "make_backbones.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
[ -n "$kb_path" ] || { echo "make_backbones.sh: missing --kb PATH" >&2; exit 2; }
if [ -z "$kb_bin" ]; then
    kb_bin=$(command -v kb || true)
    [ -n "$kb_bin" ] || { echo "make_backbones.sh: no kb on PATH; give --kb-bin" >&2; exit 2; }
fi
[ -n "$cut_bin" ] || cut_bin=$(dirname "$kb_bin")/finetune_cut
[ -x "$cut_bin" ] || { echo "make_backbones.sh: '$cut_bin' missing (build the finetune_cut bench)" >&2; exit 2; }
if [ -z "$fmnist" ]; then
    fmnist=$(dpkg -L dataset-fashion-mnist 2>/dev/null | grep 'train-images-idx3-ubyte.gz$' |
             xargs -r dirname || true)
    [ -n "$fmnist" ] || { echo "make_backbones.sh: Fashion-MNIST not found: apt-get install dataset-fashion-mnist, or give --fmnist DIR" >&2; exit 2; }
fi
train_src=$fmnist/train-images-idx3-ubyte.gz
test_src=$fmnist/t10k-images-idx3-ubyte.gz
mkdir -p "$out/data" "$out/weights" "$out/log"
export OPENBLAS_NUM_THREADS=$threads
manifest=$out/manifest.tsv
: > "$manifest.tmp"

task_id() { # add-task FILE NAME TAGS -> prints the task id
    "$kb_bin" add-task "$1" --name "$2" --tags "$3" --groups general,statistical,info,image \
        --kb "$kb_path" --json --quiet | sed -n 's/.*"id":"\([^"]*\)".*/\1/p'
}

# name classes transform
sources=(
    "src-tops 0,2,4,6 none"
    "src-footbags 5,7,8,9 none"
    "src-all 0,1,2,3,4,5,6,7,8,9 none"
    "src-all-inverted 0,1,2,3,4,5,6,7,8,9 invert"
    "src-all-rotated 0,1,2,3,4,5,6,7,8,9 rot90"
)
i=0
for s in "${sources[@]}"; do
    set -- $s
    name=$1 classes=$2 tf=$3
    n_classes=$(echo "$classes" | tr ',' '\n' | wc -l)
    "$cut_bin" "$train_src" "$out/data" "$name" --classes "$classes" \
        --train $((rows / n_classes)) --transform "$tf" --seed $((seed * 100 + i)) >/dev/null
    file=$out/data/$name-train-images-idx3-ubyte.gz
    id=$(task_id "$file" "$name" "fashion-mnist,source,$tf")
    w=$out/weights/$name.kbw
    if [ ! -s "$w" ]; then
        "$kb_bin" train net "$file" --arch "$ARCH" --set optimizer=adam --set base_lr=0.002 \
            --set batch_size=64 --set epochs="$epochs" --val-fraction 0.1 --seed "$seed" \
            --threads "$threads" --save-weights "$w" > "$out/log/$name.jsonl"
    fi
    bid=$("$kb_bin" backbone add "$w" --source-task "$id" --kb "$kb_path" --json |
          sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
    acc=$(tail -n 1 "$out/log/$name.jsonl" | sed -n 's/.*"val_accuracy":\([^,}]*\).*/\1/p')
    printf 'backbone\t%s\t%s\t%s\t%s\t%s\n' "$name" "$w" "$file" "$id" "$bid" >> "$manifest.tmp"
    echo "backbone $name: task $id, backbone $bid, source val_accuracy $acc" >&2
    i=$((i + 1))
done

# name kind classes transform
targets=(
    "t-tops-a tops 0,2,6 none" "t-tops-b tops 2,4,6 none" "t-tops-c tops 0,4,6 none"
    "t-foot-a footbags 5,7,9 none" "t-foot-b footbags 7,8,9 none" "t-foot-c footbags 5,8,9 none"
    "t-mix-a mixed 1,3,4 none" "t-mix-b mixed 1,3,8 none"
    "t-inv-a inverted 0,2,6 invert" "t-inv-b inverted 5,7,9 invert" "t-inv-c inverted 1,3,8 invert"
    "t-rot-a rotated 0,2,6 rot90" "t-rot-b rotated 7,8,9 rot90" "t-rot-c rotated 1,3,5 rot90"
)
sizes=(20 50 100)
j=0
for t in "${targets[@]}"; do
    set -- $t
    name=$1 kind=$2 classes=$3 tf=$4
    per=${sizes[$(( (j * 7 + seed) % 3 ))]}
    "$cut_bin" "$test_src" "$out/data" "$name" --classes "$classes" --train "$per" --test 100 \
        --transform "$tf" --seed $((seed * 1000 + j)) >/dev/null
    file=$out/data/$name-train-images-idx3-ubyte.gz
    id=$(task_id "$file" "$name" "fashion-mnist,target,$kind")
    printf 'target\t%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$file" \
        "$out/data/$name-test-images-idx3-ubyte.gz" "$id" >> "$manifest.tmp"
    echo "target $name ($kind, $per per class): task $id" >&2
    j=$((j + 1))
done
mv "$manifest.tmp" "$manifest"
echo "$manifest"
