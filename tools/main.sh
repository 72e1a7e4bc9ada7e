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

echo "== ingest the bundled example runs (a real Optuna export and an MLflow file store)"
for f in datasets/examples/*.csv; do
  [ -e "$f" ] || continue
  name=$(basename "$f" .csv)
  # Optuna CSV exports carry no task; the file name says which dataset the study tuned.
  $KB ingest --task "${name#optuna_*_}" --space "${name#optuna_}" --study "$name" \
    --objective accuracy --direction maximize "$f" || [ $? -eq 3 ]
done
[ -d datasets/examples/mlruns ] && { $KB ingest datasets/examples/mlruns || [ $? -eq 3 ]; }

echo "== summary"
$KB stats
$KB list tasks
$KB check
