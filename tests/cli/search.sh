# kb search, kb ask, kb tell: studies in the store, trials as child processes, statuses,
# resume, determinism, schedulers, bad input.
. "$(dirname "$0")/lib.sh"
D="$SRC/datasets"

expect_code 0 $KB ingest "$D/spaces.jsonl"
for ds in iris wine zoo; do
    expect_code 0 $KB add-task "$D/$ds.csv.gz" --name "$ds" --groups general,statistical,info --json
    eval "id_$ds=\$("$JC" "$T/out" .id print)"
done
# neighbours: a few svm runs on wine and zoo, where C = 100 is best
run() { # task i C accuracy
    printf '{"kind":"run","id":"r-%s-%s","task_id":"%s","space":"svm","config":{"kernel":"rbf","C":%s,"gamma":0.01},"status":"ok","objective":"accuracy","direction":"maximize","metrics":{"accuracy":%s}}\n' "$1" "$2" "$1" "$3" "$4"
}
{
    run "$id_wine" 0 0.1 0.40; run "$id_wine" 1 1.0 0.80; run "$id_wine" 2 100.0 0.97; run "$id_wine" 3 5000.0 0.90
    run "$id_zoo" 0 0.1 0.50; run "$id_zoo" 1 1.0 0.85; run "$id_zoo" 2 100.0 0.96; run "$id_zoo" 3 5000.0 0.93
} > runs.jsonl
expect_code 0 $KB ingest runs.jsonl

# A trial: accuracy peaks at C = 100 (log10 C = 2), as a final JSON line.
cat > trial.sh <<'EOF'
c=$1
awk -v c="$c" 'BEGIN { x = log(c) / log(10) - 2; printf "{\"step\":1,\"accuracy\":%.6f}\n{\"final\":{\"accuracy\":%.6f}}\n", 0.5, 1 / (1 + x * x) }'
EOF

# ---- ask / tell ----
expect_code 0 $KB ask --task "$id_iris" --space svm --seed 3 --study s-ask --json
jsonl 0.schema == kb.ask/1
jsonl 0.study == s-ask
jsonl 0.trial == 0
jsonl 0.run == s-ask:0
jsonl 0.config.kernel exists
# warm start: the neighbours' best configuration comes first
jsonl 0.config.C ">" 50
jsonl 0.config.C "<" 200
expect_code 0 $KB ask s-ask --n 2 --json
[ "$(wc -l < "$T/out")" = 2 ] || fail "ask --n 2: expected 2 lines"
jsonl 0.trial == 1
jsonl 1.trial == 2
expect_code 0 $KB tell s-ask 0 0.95 --json
json .schema == kb.tell/1
json .status == ok
json .value == 0.95
json .best_trial == 0
expect_code 0 $KB tell s-ask s-ask:1 nan
expect_out "diverged"
expect_code 0 $KB tell s-ask 2 --status failed --reason "out of memory"
expect_out "failed"
expect_code 0 $KB show s-ask:2 --json
json .record.status == failed
json .record.extra.reason "==" "out of memory"
json .record.study_id == s-ask
# told twice, unknown trial, unknown study, bad value, nothing to tell
expect_code 1 $KB tell s-ask 0 0.5
expect_err "already told"
expect_code 1 $KB tell s-ask 99 0.5
expect_err "no trial '99'"
expect_code 1 $KB tell s-nope 0 0.5
expect_err "no study 's-nope'"
expect_code 2 $KB tell s-ask 0 abc
expect_err "VALUE"
expect_code 2 $KB tell s-ask 0
expect_code 2 $KB ask
expect_code 2 $KB ask --task "$id_iris"
expect_err "needs --space"
expect_code 2 $KB ask --task "$id_iris" --space svm --method bogus
expect_code 1 $KB ask --task t-missing --space svm
expect_err "no task 't-missing'"
# a curve file: the objective's last value is the result
expect_code 0 $KB ask s-ask --json
printf '{"step":1,"accuracy":0.6}\n{"step":2,"accuracy":0.7}\n' > curve.jsonl
expect_code 0 $KB tell s-ask 3 --curve curve.jsonl --json
json .value == 0.7
expect_code 0 $KB show s-ask:3 --json
json .record.curve.1.accuracy == 0.7

# ---- search with a shell trial ----
expect_code 0 $KB search --task "$id_iris" --space svm --objective accuracy --study s-1 \
    --trial "sh $T/trial.sh {C}" --budget 6 --seed 7 --json --quiet
[ "$(wc -l < "$T/out")" = 7 ] || fail "search --budget 6 --json: expected 6 trial lines and a result"
jsonl 0.schema == kb.search.trial/1
jsonl 0.status == ok
jsonl 6.schema == kb.search/1
jsonl 6.trials == 6
jsonl 6.ok == 6
jsonl 6.warm_start == auto
jsonl 6.neighbours len== 2
jsonl 6.best.value ">" 0.9
"$JC" -l "$T/out" 6.best.config print > best1.txt
expect_code 0 $KB list runs --json
grep -c '"study_id":"s-1"' "$T/out" | grep -qx 6 || fail "6 trials of s-1 stored"
# the same seed and data give the same configurations
expect_code 0 $KB search --task "$id_iris" --space svm --objective accuracy --study s-2 \
    --trial "sh $T/trial.sh {C}" --budget 6 --seed 7 --json --quiet
"$JC" -l "$T/out" 6.best.config print > best2.txt
cmp -s best1.txt best2.txt || fail "same seed, different best configuration"

# resume: a study searched to 3 trials goes on to 5
expect_code 0 $KB search --task "$id_iris" --space svm --objective accuracy --study s-3 \
    --trial "sh $T/trial.sh {C}" --budget 3 --quiet
expect_out "^study s-3: 3 trials"
expect_code 0 $KB search --resume s-3 --budget 5 --quiet
expect_out "^study s-3: 5 trials"
expect_code 1 $KB search --resume s-unknown
expect_err "no study 's-unknown'"
expect_code 1 $KB search --resume s-ask
expect_err "kb ask / kb tell"

# Ctrl-C: exit 130, the running trial stays "running" in the store; --resume runs it again
$KB search --task "$id_iris" --space svm --objective accuracy --study s-int \
    --trial "sleep 1; sh $T/trial.sh {C}" --budget 2 --quiet > int.out 2> int.err &
pid=$!
sleep 0.5
kill -INT $pid
wait $pid
code=$?
[ "$code" = 130 ] || fail "search after SIGINT exited $code, expected 130"
expect_code 0 $KB show s-int:0 --json
json .record.status == running
expect_code 0 $KB search --resume s-int --json --quiet
jsonl 2.trials == 2
jsonl 2.ok == 2
expect_code 0 $KB show s-int:0 --json
json .record.status == ok

# every outcome is recorded, never dropped: exit status, NaN, timeout, no objective
expect_code 0 $KB search --task "$id_iris" --space svm --objective accuracy --study s-bad \
    --trial 'case {trial} in 0) exit 3;; 1) echo "{\"final\":{\"accuracy\":\"nan\"}}";; 2) sleep 30;; *) echo hello;; esac' \
    --budget 4 --jobs 2 --timeout-per-trial 1 --json --quiet
jsonl 4.trials == 4
jsonl 4.ok == 0
grep '"trial":0,' "$T/out" | grep -q '"status":"failed"' || fail "exit 3 is failed"
grep '"trial":1,' "$T/out" | grep -q '"status":"diverged"' || fail "nan is diverged"
grep '"trial":2,' "$T/out" | grep -q 'timeout' || fail "sleep 30 timed out"
grep '"trial":3,' "$T/out" | grep -q '"status":"failed"' || fail "no objective is failed"

# --prune judge: a trial whose loss climbs is stopped while it runs, stored as pruned with
# the reason, its last metric and the monitor's verdict
cat > div.sh <<'EOF'
i=1
while [ $i -le 40 ]; do
  awk -v i=$i 'BEGIN { printf "{\"step\":%d,\"train_loss\":%.6g,\"val_loss\":%.6g}\n", i, 0.5 * exp(i / 4), 0.6 * exp(i / 4) }'
  sleep 0.05
  i=$((i + 1))
done
EOF
expect_code 0 $KB search --task "$id_iris" --space svm --objective val_loss --direction minimize \
    --study s-prune --trial "sh $T/div.sh" --budget 1 --prune judge --warm-start none --json --quiet
jsonl 0.status == pruned
jsonl 1.pruned == 1
expect_code 0 $KB show s-prune:0 --json
json .record.status == pruned
json .record.extra.reason exists
json .record.extra.judge.light == red
json .record.metrics.val_loss ">" 0.6
# the study's options are stored: --resume prunes too
expect_code 0 $KB show s-prune --json
json .record.extra.prune == judge

# a joint fine-tune space names the backbone as a parameter: the trial's run records it as
# its backbone_id (so the backbone -> runs index and kb recommend see fine-tune trials)
printf '{"kind":"backbone","id":"b-x","family":"kb-net","arch":"FC(8)","input_signature":"tabular:x","source_task":"%s","uri":"file:///nonexistent"}\n' "$id_wine" > bb.jsonl
printf '{"kind":"space","name":"ft","params":[{"name":"backbone","type":"categorical","choices":["none","b-x"]},{"name":"lr","type":"float","low":0.001,"high":0.1,"log":true}]}\n' >> bb.jsonl
expect_code 0 $KB ingest bb.jsonl
expect_code 0 $KB search --task "$id_iris" --space ft --objective accuracy --study s-ft \
    --trial 'echo "{\"final\":{\"accuracy\":0.5}}"' --budget 6 --warm-start none --quiet
expect_code 0 $KB export
grep '"study_id":"s-ft"' "$T/out" | grep -q '"backbone_id":"b-x"' || fail "no trial with backbone b-x recorded it as backbone_id"
grep '"study_id":"s-ft"' "$T/out" | grep '"backbone":"none"' | grep -q backbone_id && fail "backbone none recorded as a backbone_id"

# a scheduler: hyperband over {budget}
expect_code 0 $KB search --task "$id_iris" --space svm --objective accuracy --study s-hb \
    --trial "sh $T/trial.sh {C} {budget}" --method hyperband --max-resource 9 --eta 3 --budget 8 --json --quiet
jsonl 8.trials == 8
jsonl 8.method == hyperband
expect_code 0 $KB show s-hb:0 --json
json .record.fidelity.budget == 1
expect_code 0 $KB show s-hb --json
json .record.warm_start == auto
json .record.neighbours len== 2
# a scheduler's warm start: its first configurations are the neighbours' design (nearest: the
# best of wine and of zoo, both C = 100), then its own sampling
expect_code 0 $KB search --task "$id_iris" --space svm --objective accuracy --study s-hbw \
    --trial "sh $T/trial.sh {C} {budget}" --method hyperband --max-resource 9 --eta 3 --budget 4 \
    --warm-start nearest --json --quiet
jsonl 0.config.C ">" 99.999
jsonl 0.config.C "<" 100.001
jsonl 0.config.gamma ">" 0.009999
jsonl 0.config.gamma "<" 0.010001
jsonl 0.config.kernel == rbf
jsonl 4.warm_start == nearest
expect_code 2 $KB search --task "$id_iris" --space svm --objective accuracy \
    --trial "sh $T/trial.sh {C} {budget}" --method hyperband --warm-start stacked --quiet
expect_err "warm start 'stacked' shapes a GP; hyperband starts from an initial design"
# {checkpoint}: one file per configuration, the same at every rung it is promoted to (here
# 3 configurations at budget 1, the best promoted to 3: its file gets both budgets)
expect_code 0 $KB search --task "$id_iris" --space svm --objective accuracy --study s-ck \
    --trial "echo {budget} >> {checkpoint}; sh $T/trial.sh {C}" --method hyperband \
    --max-resource 3 --eta 3 --budget 4 --work-dir wd --quiet
n=$(ls wd/s-ck/checkpoints | wc -l)
[ "$n" = 3 ] || fail "expected 3 checkpoint files, got $n"
cat wd/s-ck/checkpoints/*.kbs | sort | tr '\n' ' ' > ck.txt
[ "$(cat ck.txt)" = "1 1 1 3 " ] || fail "checkpoint files hold '$(cat ck.txt)', not '1 1 1 3 '"
expect_code 2 $KB search --task "$id_iris" --space svm --objective accuracy \
    --trial "sh $T/trial.sh {C} {checkpoint}" --budget 2 --quiet
expect_err "unknown placeholder '\{checkpoint\}'"

# architecture search: adarandom / reinforce propose {arch} (convolutions for image data);
# each trial stores the architecture beside the space's defaults, and the study is not warmed
cp "$SRC"/tests/data/idx/tiny-* .
expect_code 0 $KB search tiny-images-idx3-ubyte --train net --epochs 1 --method adarandom \
    --budget 3 --seed 2 --json --quiet
jsonl 3.trials == 3
jsonl 3.method == adarandom
jsonl 3.warm_start == none
jsonl 0.config.arch exists
expect_code 0 $KB search --task "$id_iris" --space svm --objective accuracy --study s-rl \
    --trial 'echo "{\"final\":{\"accuracy\":0.5}}" # {arch}' --method reinforce --budget 2 --json --quiet
jsonl 2.trials == 2
"$JC" -l "$T/out" 0.config.arch print | grep -qE '^FC\([0-9]+\)' || fail "reinforce: no FC architecture for tabular trials"
expect_code 2 $KB search --task "$id_iris" --space svm --trial x --method adarandom
expect_err "\{arch\}"
# --train net under hyperband: the promoted configuration continues its checkpoint
expect_code 0 $KB search tiny-images-idx3-ubyte --train net --epochs 3 --method hyperband \
    --eta 3 --budget 4 --seed 2 --work-dir wdn --json --quiet
jsonl 4.trials == 4
grep -q '"resumed_from":' wdn/*/trial-0003/stdout.log || fail "the promoted net trial did not resume"
grep -q '"resumed_from":' wdn/*/trial-0000/stdout.log && fail "a first-rung net trial resumed"

# the built-in workload on real data
expect_code 0 $KB search "$D/iris.csv.gz" --train svm --budget 3 --max-rows 60 --warm-start none --json --quiet
jsonl 3.trials == 3
jsonl 3.objective == accuracy
jsonl 3.ok == 3
# a relative dataset path works although trials run in their own directories
cp "$D/iris.csv.gz" .
expect_code 0 $KB search iris.csv.gz --train svm --budget 1 --max-rows 60 --warm-start none --json --quiet
jsonl 1.ok == 1

# constants for the command (and templates): --const NAME=VALUE, stored for --resume
expect_code 0 $KB search --task "$id_iris" --space svm --objective accuracy --study s-const \
    --trial 'printf "{\"final\":{\"accuracy\":%s}}\n" {acc}' --const acc=0.25 --budget 1 --json --quiet
jsonl 1.best.value == 0.25
expect_code 0 $KB show s-const --json
json .record.extra.const.acc == 0.25
expect_code 0 $KB search --resume s-const --budget 2 --json --quiet
jsonl 1.trials == 2
jsonl 1.best.value == 0.25
# (tests/cli/trial_xgboost.sh drives Debian's xgboost through a config-file template)

# bad input
expect_code 2 $KB search --task "$id_iris" --space svm
expect_code 2 $KB search --task "$id_iris" --space svm --trial x --const novalue
expect_code 2 $KB search --resume s-1 --const a=1expect_err "--trial CMD or --train"
expect_code 2 $KB search --task "$id_iris" --space svm --trial x --prune maybe
expect_code 2 $KB search --task "$id_iris" --space svm --trial x --jobs 0
expect_code 2 $KB search --task "$id_iris" --trial x
expect_err "--space"
expect_code 2 $KB search --task "$id_iris" --space svm --trial x --method hyperband
expect_err "budget"
expect_code 1 $KB search --task "$id_iris" --space nospace --trial x
expect_err "no space 'nospace'"
expect_code 2 $KB search --task "$id_iris" --space svm --trial 'echo {nope}' --budget 1 --quiet
finish
