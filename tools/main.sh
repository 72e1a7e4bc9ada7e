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

echo "== summary"
$KB stats
$KB list tasks
$KB check
