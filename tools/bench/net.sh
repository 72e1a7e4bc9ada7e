#!/bin/sh
# Training throughput of `kb train net` against PyTorch on CPU (tools/bench/net_peer.py, Debian's
# python3-torch) for the reference CNN and MLP on Fashion-MNIST: same architecture, batch size,
# optimizer (Adam, lr 0.001), input scaling and thread count, in the same command. Only the
# training steps are timed on both sides (kb's final line reports them without data loading
# and evaluation; the peer times its loop alone).
#
#   tools/bench/net.sh BUILD_DIR [DATA_DIR] [ITERS] [THREADS] [REPEATS]
#   e.g. tools/bench/net.sh build/release /usr/share/datasets/fashion-mnist 200 1 3
#
# Prints one line per (model, batch size): images per second of each side, by wall time and
# by process CPU time (steadier on a shared machine), best of REPEATS, and the ratios
# kb / PyTorch (> 1: kb faster).
set -eu
build=${1:?usage: net.sh BUILD_DIR [DATA_DIR] [ITERS] [THREADS] [REPEATS]}
data=${2:-/usr/share/datasets/fashion-mnist}
iters=${3:-200}
threads=${4:-1}
repeats=${5:-3}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
images="$data/train-images-idx3-ubyte.gz"
labels="$data/train-labels-idx1-ubyte.gz"
[ -f "$images" ] || { echo "net.sh: no $images (apt-get install dataset-fashion-mnist)" >&2; exit 2; }
"$py" -c 'import torch' 2>/dev/null || { echo "net.sh: apt-get install python3-torch" >&2; exit 2; }

field() { # field JSON_LINE KEY.PATH
    printf '%s' "$1" | "$py" -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(v)' "$2"
}
best() { sort -g | tail -n 1; }

cnn='C(3,32)+P(2,2)+C(3,64)+P(2,2)+FC(64)'
mlp='FC(256)+FC(128)'
echo "# kb train net vs PyTorch $("$py" -c 'import torch; print(torch.__version__)') on CPU," \
    "Fashion-MNIST, Adam lr 0.001, $iters iterations, $threads thread(s), best of $repeats;" \
    "$(nproc) cores, shared machine"
echo "# images/s; ratio = kb / PyTorch (> 1: kb faster), by wall time and by CPU time"
printf '%-4s %5s %9s %9s %6s %9s %9s %6s\n' model batch kb_wall pt_wall ratio kb_cpu pt_cpu ratio
for model in cnn mlp; do
    arch=$cnn
    [ "$model" = mlp ] && arch=$mlp
    for batch in 32 128; do
        kw=""; kc=""; pw=""; pc=""
        i=0
        while [ "$i" -lt "$repeats" ]; do
            line=$(OPENBLAS_NUM_THREADS=$threads "$build/kb" train net "$images" --arch "$arch" \
                --val-fraction 0.01 --threads "$threads" --seed "$i" --set optimizer=adam \
                --set base_lr=0.001 --set batch_size="$batch" --set max_iter="$iters" \
                --set test_interval="$iters" | tail -n 1)
            kw="$kw $(field "$line" final.samples_per_second)"
            kc="$kc $(field "$line" final.samples_per_second_cpu)"
            line=$("$py" "$here/net_peer.py" "$images" "$labels" --arch "$arch" --batch "$batch" \
                --iters "$iters" --optimizer adam --lr 0.001 --threads "$threads" --seed "$i")
            pw="$pw $(field "$line" samples_per_second)"
            pc="$pc $(field "$line" samples_per_second_cpu)"
            i=$((i + 1))
        done
        kw=$(echo $kw | tr ' ' '\n' | best); kc=$(echo $kc | tr ' ' '\n' | best)
        pw=$(echo $pw | tr ' ' '\n' | best); pc=$(echo $pc | tr ' ' '\n' | best)
        awk -v m="$model" -v b="$batch" -v kw="$kw" -v pw="$pw" -v kc="$kc" -v pc="$pc" \
            'BEGIN { printf "%-4s %5d %9.0f %9.0f %6.2f %9.0f %9.0f %6.2f\n", m, b, kw, pw, kw / pw, kc, pc, kc / pc }'
    done
done
