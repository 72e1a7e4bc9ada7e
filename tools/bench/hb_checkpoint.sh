#!/bin/sh
# hb_checkpoint.sh: what continuing promoted configurations from their checkpoints saves in a
# Hyperband search. The same `kb search --method hyperband` (same seed, same jobs) runs twice
# on DATASET with the mlp space, its trials being the built-in net command: once with
# --checkpoint {checkpoint} (what `kb search --train net` does), once without (every job
# trains from scratch). Prints, per mode, the epochs actually trained, the trials' training
# CPU seconds and the best validation accuracy.
#
#   sh tools/bench/hb_checkpoint.sh KB_BIN DATASET [MAX_RESOURCE] [BUDGET] [OUT_DIR]
set -eu
[ $# -ge 2 ] || { echo "usage: hb_checkpoint.sh KB_BIN DATASET [MAX_RESOURCE] [BUDGET] [OUT_DIR]" >&2; exit 2; }
kb=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
data=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
R=${3:-27} budget=${4:-69} out=${5:-build/hb-checkpoint}
src=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$out" && mkdir -p "$out"
out=$(cd "$out" && pwd)
# the trial: kb search --train net's own command (layers x units become the architecture)
cat > "$out/trial.sh" <<'TRIAL'
#!/bin/sh
kb=$1 data=$2 layers=$3 units=$4 cfg=$5 budget=$6 seed=$7 ck=${8:-}
arch="" k=0
while [ "$k" -lt "$layers" ]; do arch="$arch${arch:++}FC($units)"; k=$((k + 1)); done
cfg=$(printf '%s' "$cfg" | sed 's/"layers":[0-9]*,\{0,1\}//; s/"units":[0-9]*,\{0,1\}//; s/,}/}/')
exec "$kb" train net "$data" --arch "$arch" --config "$cfg" --set epochs="$budget" --seed "$seed" \
    --json --quiet ${ck:+--checkpoint "$ck"}
TRIAL
for mode in checkpoint scratch; do
  export KB_PATH="$out/$mode.lmdb"
  "$kb" init > /dev/null
  "$kb" ingest --quiet "$src/datasets/spaces.jsonl" > /dev/null
  ck=""; [ "$mode" = checkpoint ] && ck="{checkpoint}"
  "$kb" search "$data" --space mlp --objective val_accuracy --method hyperband --seed 1 \
    --max-resource "$R" --budget "$budget" --work-dir "$out/wd-$mode" --json --quiet \
    --trial "sh $out/trial.sh $kb $data {layers} {units} {config_json} {budget} {seed} $ck" \
    > "$out/$mode.jsonl"
  for d in "$out/wd-$mode"/*/trial-*; do tail -n 1 "$d/stdout.log"; done > "$out/$mode.finals"
  best=$(tail -n 1 "$out/$mode.jsonl" | sed -n 's/.*"best":{[^}]*"value":\([0-9.eE+-]*\).*/\1/p')
  # epochs trained: a resumed run trained only the share of its iterations after the snapshot
  awk -v m="$mode" -v b="$best" '
    { e = $0; sub(/.*"epochs":/, "", e); sub(/[,}].*/, "", e)
      it = $0; sub(/.*"iteration":/, "", it); sub(/[,}].*/, "", it)
      r = 0; if ($0 ~ /"resumed_from":/) { r = $0; sub(/.*"resumed_from":/, "", r); sub(/[,}].*/, "", r) }
      c = $0; sub(/.*"train_cpu_seconds":/, "", c); sub(/[,}].*/, "", c)
      n++; asked += e; trained += e * (1 - r / it); cpu += c; res += (r > 0) }
    END { printf "%-10s jobs %d, resumed %d, epochs trained %.0f of %.0f, training CPU %.1f s, best val_accuracy %s\n",
                 m, n, res, trained, asked, cpu, b }' "$out/$mode.finals"
done
