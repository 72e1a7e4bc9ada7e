#!/bin/sh
# Regenerate the bundled history of real runs (datasets/history/): every bundled dataset is
# added as a task (with its meta-features) and trained with `kb train` on one shared,
# seeded Sobol design per search space — the space's default configuration first — so the
# history is a cross-evaluated table (every configuration on every dataset), the form the
# leave-one-task-out evaluation needs.
#
#   sh tools/history/make_history.sh [--space svm|mlp|all] [--datasets "iris wine ..."]
#                                    [--svm-n 100] [--mlp-n 60] [--max-rows 1000] [--jobs 2]
#                                    [--package-only]
#
# Fidelity: datasets larger than --max-rows are trained on a seeded stratified sample of that
# many rows (recorded in each run's fidelity), with 3-fold CV (svm) or a 20% validation split
# and 10 epochs (mlp). Resumable: finished runs are kept in build/history/ and skipped; the
# bundled files are rewritten from them at the end. Cost on the 2-core reference machine is
# in datasets/history/README.md.
set -e
cd "$(dirname "$0")/../.."
space=all datasets="" svm_n=100 mlp_n=60 max_rows=1000 jobs=2 package_only=0 worker=0
# libsvm has no iteration budget of its own: a linear kernel with C near 1e4 can run for many
# minutes. A run cut off here is kept with status failed and the reason in extra. (kb finishes
# the current fold on SIGTERM, so timeout follows up with SIGKILL.)
svm_timeout=120 mlp_timeout=600
while [ $# -gt 0 ]; do
  case "$1" in
    --space) space=$2; shift 2 ;;
    --datasets) datasets=$2; shift 2 ;;
    --svm-n) svm_n=$2; shift 2 ;;
    --mlp-n) mlp_n=$2; shift 2 ;;
    --max-rows) max_rows=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --package-only) package_only=1; shift ;;
    --worker) worker=1; shift ;;
    *) echo "make_history: unknown option '$1'" >&2; exit 2 ;;
  esac
done
if [ "$worker" = 0 ]; then
  cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/release -j 2 >/dev/null
fi
KB=$PWD/build/release/kb
WORK=$PWD/build/history
OUT=$PWD/datasets/history
mkdir -p "$WORK/svm" "$WORK/mlp" "$WORK/tasks" "$OUT"
[ -n "$datasets" ] || datasets=$(tail -n +2 datasets/manifest.csv | cut -d, -f1)

# The designs: the same configurations for every dataset (written once, atomically).
for sp in svm mlp; do
  if [ "$sp" = svm ]; then n=$svm_n; else n=$mlp_n; fi
  if [ "$worker" = 0 ]; then
    $KB space sample "$sp" --file datasets/spaces.jsonl --n "$n" --seed 1 --with-default \
      > "$WORK/design-$sp.jsonl.tmp" && mv "$WORK/design-$sp.jsonl.tmp" "$WORK/design-$sp.jsonl"
  fi
done

# one_run SPACE DATASET TASK_ID TASK_TYPE LINE: train one configuration, print its run record
one_run() {
  sp=$1 ds=$2 tid=$3 ttype=$4 line=$5
  i=$(printf '%s' "$line" | sed 's/^{"i":\([0-9]*\),.*/\1/')
  cfg=$(printf '%s' "$line" | sed 's/^{"i":[0-9]*,"config":\(.*\)}$/\1/')
  # svm reports accuracy / rmse from cross-validation, net val_accuracy / val_loss
  case "$sp:$ttype" in
    svm:regression) obj=rmse dir=minimize ;;
    svm:*) obj=accuracy dir=maximize ;;
    *:regression) obj=val_loss dir=minimize ;;
    *) obj=val_accuracy dir=maximize ;;
  esac
  tmp=$(mktemp)
  if [ "$sp" = svm ]; then
    # `|| code=$?`: under set -e a bare failing command (a timeout: 124) would end the worker
    # silently after writing nothing for this line, and every later line of the dataset
    code=0
    timeout -k 5 "$svm_timeout" $KB train svm "datasets/$ds.csv.gz" --config "$cfg" --folds 3 --seed 1 \
      --max-rows "$max_rows" --json --quiet < /dev/null > "$tmp" 2>/dev/null || code=$?
    curve=""
  else
    layers=$(printf '%s' "$cfg" | sed 's/.*"layers":\([0-9]*\).*/\1/')
    units=$(printf '%s' "$cfg" | sed 's/.*"units":\([0-9]*\).*/\1/')
    arch="FC($units)"; k=1
    while [ $k -lt "$layers" ]; do arch="$arch+FC($units)"; k=$((k + 1)); done
    # the trainer's own keys: the space's minus layers/units (they became the architecture)
    ncfg=$(printf '%s' "$cfg" | sed 's/"layers":[0-9]*,\{0,1\}//; s/"units":[0-9]*,\{0,1\}//; s/,}/}/')
    code=0
    timeout -k 5 "$mlp_timeout" $KB train net "datasets/$ds.csv.gz" --arch "$arch" --config "$ncfg" \
      --set epochs=10 --seed 1 --max-rows "$max_rows" --quiet < /dev/null > "$tmp" 2>/dev/null || code=$?
    curve=$(grep '^{"step"' "$tmp" | sed 's/:null/:"nan"/g' | paste -sd, -)
  fi
  final=$(grep '"final"' "$tmp" | tail -1)
  rm -f "$tmp"
  metrics=$(printf '%s' "$final" | sed -n 's/.*"final":\({[^}]*}\).*/\1/p' | sed 's/:null/:"nan"/g')
  status=$(printf '%s' "$final" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
  cost=$(printf '%s' "$final" | sed -n 's/.*"cost_s":\([0-9.e+-]*\).*/\1/p')
  rows=$(printf '%s' "$final" | sed -n 's/.*"n_rows":\([0-9]*\).*/\1/p')
  extra=""
  if [ "$code" = 124 ] || [ "$code" = 137 ]; then extra=',"extra":{"failure":"timed out by make_history"}'; fi
  if [ "$code" != 0 ] || [ -z "$metrics" ]; then status=failed; metrics="{}"; fi
  [ -n "$status" ] || status=ok
  printf '{"kind":"run","id":"hist:%s:%s:%s","task_id":"%s","space":"%s","config":%s,' \
    "$sp" "$ds" "$i" "$tid" "$sp" "$cfg"
  printf '"fidelity":{"max_rows":%s%s},"status":"%s","objective":"%s","direction":"%s","metrics":%s' \
    "$max_rows" "${rows:+,\"rows\":$rows}" "$status" "$obj" "$dir" "$metrics"
  [ -n "$curve" ] && printf ',"curve":[%s]' "$curve"
  [ -n "$cost" ] && printf ',"cost_s":%s' "$cost"
  printf ',"team":"kb-history"%s}\n' "$extra"
}

# one_dataset SPACE DATASET: resume the dataset's runs in SPACE
one_dataset() {
  sp=$1 ds=$2
  task_json="$WORK/tasks/$ds.json"
  if [ ! -s "$task_json" ]; then
    $KB add-task "datasets/$ds.csv.gz" --name "$ds" --tags bundled --team kb-history \
      --kb "$WORK/tasks.lmdb" --json --quiet > "$task_json.tmp" && mv "$task_json.tmp" "$task_json"
  fi
  tid=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$task_json")
  ttype=$(sed -n 's/.*"task_type":"\([^"]*\)".*/\1/p' "$task_json")
  out="$WORK/$sp/$ds.jsonl"
  touch "$out"
  done_n=$(wc -l < "$out")
  tail -n +$((done_n + 1)) "$WORK/design-$sp.jsonl" | while IFS= read -r line; do
    one_run "$sp" "$ds" "$tid" "$ttype" "$line" >> "$out"
  done
  echo "make_history: $sp $ds done ($(wc -l < "$out") runs)" >&2
}

spaces="svm mlp"
[ "$space" = all ] || spaces=$space
if [ "$worker" = 1 ]; then
  # one pool worker: the named datasets of one space, then exit (no packaging)
  for ds in $datasets; do one_dataset "$space" "$ds"; done
  exit 0
fi
if [ "$package_only" = 0 ]; then
  for sp in $spaces; do
    # a pool of $jobs workers, each taking the next dataset, so one slow dataset does not
    # hold the others up
    printf '%s\n' $datasets | xargs -P "$jobs" -I{} sh "$0" --worker --space "$sp" \
      --datasets {} --svm-n "$svm_n" --mlp-n "$mlp_n" --max-rows "$max_rows"
  done
fi

# The bundled files: each space's runs of the datasets whose design is complete, and the tasks
# they belong to, compressed reproducibly. An interrupted dataset stays in build/history/ for
# the next run to finish.
ids=$(mktemp)
for sp in svm mlp; do
  want=$(wc -l < "$WORK/design-$sp.jsonl")
  files=""
  for f in "$WORK/$sp/"*.jsonl; do
    [ -f "$f" ] && [ "$(wc -l < "$f")" -eq "$want" ] && files="$files $f"
  done
  [ -n "$files" ] || continue
  # shellcheck disable=SC2086
  cat $files | gzip -9n > "$OUT/$sp.jsonl.gz"
  # shellcheck disable=SC2086
  sed -n 's/.*"task_id":"\([^"]*\)".*/"id":"\1"/p' $files | sort -u >> "$ids"
  echo "make_history: $sp: $(echo $files | wc -w) complete datasets bundled" >&2
done
$KB export --kb "$WORK/tasks.lmdb" --kind task | grep -F -f "$ids" | gzip -9n > "$OUT/tasks.jsonl.gz"
rm -f "$ids"
echo "make_history: wrote $OUT" >&2
