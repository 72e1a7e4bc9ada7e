#!/bin/sh
# The main job on the bundled data (the README's first command, after tools/setup.sh):
# build kb, create a knowledge base, ingest the bundled example runs, and summarise it.
set -e
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$jobs" >/dev/null
KB=build/release/kb
export KB_PATH="${KB_PATH:-$PWD/kb.lmdb}"

echo "== knowledge base: $KB_PATH"
$KB init

echo "== ingest the bundled example runs (real Optuna studies and an MLflow file store)"
$KB ingest datasets/spaces.jsonl datasets/examples/tasks.jsonl
for f in datasets/examples/optuna_svc_*.csv; do
  name=$(basename "$f" .csv)       # optuna_svc_<dataset>
  $KB ingest --task "sklearn-${name#optuna_svc_}" --space sklearn-svc --study "$name" \
    --objective accuracy --direction maximize "$f"
done
$KB ingest datasets/examples/mlruns

if [ -f datasets/history/tasks.jsonl.gz ]; then
  echo "== the bundled history: real kb train runs on every bundled dataset"
  for f in datasets/history/tasks.jsonl.gz datasets/history/svm.jsonl.gz datasets/history/mlp.jsonl.gz; do
    [ -f "$f" ] && gzip -dc "$f" | $KB ingest --quiet -
  done
  held=${KB_HELD_OUT:-fish_species}
  echo "== recommend SVM configurations for '$held' as if it were new (its own runs left out)"
  $KB recommend "datasets/$held.csv.gz" --space svm --held-out --top 3 --quiet
  echo "== train them on '$held' next to the space's default (same fidelity as the history)"
  configs=$(mktemp)
  $KB space sample svm --n 0 --with-default | sed 's/^{"i":0,"config":\(.*\)}$/\1/' > "$configs"
  $KB recommend "datasets/$held.csv.gz" --space svm --held-out --top 3 --configs --quiet >> "$configs"
  n=0
  while IFS= read -r cfg; do
    acc=$($KB train svm "datasets/$held.csv.gz" --config "$cfg" --folds 3 --seed 1 --max-rows 1000 \
          --json --quiet | tail -1 | sed -n 's/.*"final":{"accuracy":\([0-9.]*\).*/\1/p')
    if [ $n -eq 0 ]; then label="default      "; else label="recommended $n"; fi
    printf '  %s  accuracy %.4f  %s\n' "$label" "${acc:-0}" "$cfg"
    n=$((n + 1))
  done < "$configs"
  rm -f "$configs"
  # 24 classification datasets of the svm history, named here so that the set (and the job's
  # time) stays fixed as the history grows (they were its first 24 by name; the regression
  # datasets added later would mix RMSE into an accuracy table). tools/bench/warm_vs_cold.sh
  # without DATASETS takes every dataset of the history.
  first24="alzheimer_smoking alzheimers_csf arrests autos_symboling bank_wages beps
           breast_cancer_ljubljana breast_cancer_wdbc breast_w cats cell_segmentation churn_mlc
           cox2 credit_card credit_g credit_scoring dhfr dna_splice fish_species flchain
           fruit_spectra haberman health_insurance hmda"
  echo "== search 24 datasets of the svm history for 10 trials, each held out: warm-started from its nearest tasks vs a cold start"
  DATASETS="$first24" sh tools/bench/warm_vs_cold.sh "$KB" svm "1 3 5 10" --train svm \
    --budget 10 --max-rows 1000 --seed 1 --timeout-per-trial 120
fi

if dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then
  echo "== images: backbones pretrained on Fashion-MNIST, one chosen for a small new task, a joint search"
  IMG=$PWD/build/backbones
  rm -rf "$IMG" && mkdir -p "$IMG"
  cmake --build build/release -j "$jobs" --target finetune_cut >/dev/null
  # five source tasks (1 epoch on 3,000 images each: a demonstration; BENCHMARKS.md has the
  # full protocol) and fourteen small targets cut from the test set, in their own KB
  bash tools/backbones/make_backbones.sh --kb "$IMG/kb.lmdb" --kb-bin "$PWD/$KB" --out "$IMG" \
    --epochs 1 --source-rows 3000 > /dev/null 2> "$IMG/make.log"
  $KB ingest --kb "$IMG/kb.lmdb" --quiet datasets/spaces.jsonl > /dev/null
  row=$(awk -F'\t' '$1 == "target" && $2 == "t-foot-b"' "$IMG/manifest.tsv")
  train=$(printf '%s' "$row" | cut -f4) test=$(printf '%s' "$row" | cut -f5)
  echo "-- the backbone kb recommends for t-foot-b (sandals, bags, ankle boots; 50 images a class)"
  $KB recommend "$train" --kb "$IMG/kb.lmdb" --space finetune --top 3 --quiet 2>/dev/null | sed -n '/recommended backbones/,$p'
  bid=$($KB recommend "$train" --kb "$IMG/kb.lmdb" --space finetune --json --quiet 2>/dev/null |
        sed -n 's/.*"backbones":\[{[^}]*"backbone":"\([^"]*\)".*/\1/p')
  echo "-- test accuracy on its 300 held-out images"
  for cfg in '{"backbone":"none"}' "{\"backbone\":\"$bid\"}"; do
    acc=$(bash tools/backbones/finetune_trial.sh --kb-bin "$PWD/$KB" --kb "$IMG/kb.lmdb" --train "$train" \
          --test "$test" --config "$cfg" -- --seed 1 --quiet | tail -n 1 |
          sed -n 's/.*"test_accuracy":\([0-9.eE+-]*\).*/\1/p')
    printf '  defaults, %-40s %s\n' "$cfg" "$acc"
  done
  TARGETS=t-foot-b SEARCHES=finetune-joint bash tools/bench/finetune_search.sh "$PWD/$KB" \
    "$IMG/manifest.tsv" "$IMG/search.jsonl" 1 6
  printf '  joint search (backbone x last stage x solver, 6 trials): %s\n' \
    "$(sed -n 's/.*"test_accuracy":\([0-9.eE+-]*\).*/\1/p' "$IMG/search.jsonl")"
fi

echo "== summary"
$KB stats
$KB list tasks
$KB check
