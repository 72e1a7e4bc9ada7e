#!/bin/bash
# kb judge: verdicts, light, forecast and advice on each input format; JSON schema; exit codes.
. "$(dirname "$0")/lib.sh"
D=$SRC/tests/data/curve

# a synthetic run: loss decays and plateaus (converged), written as kb JSON lines
awk 'BEGIN { for (t = 0; t <= 2000; t += 20) printf("{\"step\": %d, \"train_loss\": %.6f, \"lr\": 0.01}\n", t, 0.2 + 2 * exp(-t / 150)); print "{\"final\": {\"train_loss\": 0.2}, \"status\": \"ok\"}" }' > conv.jsonl
expect_code 0 "$KB" judge conv.jsonl --config '{"base_lr": 0.01, "max_iter": 5000}'
expect_out '^light +green'
expect_out 'verdict +converged +at step'
expect_out 'advice +stop now, nothing more to gain: converged at step [0-9]+ \(max_iter 5000 -> [0-9]+\)'
expect_out '^forecast +train_loss at step 5000: '

expect_code 0 "$KB" judge conv.jsonl --json --target-step 4000 --incumbent 0.1
json .schema == kb.judge/1
json .format == jsonl
json .light == green
json .metric == train_loss
json .mode == min
json .verdicts.0.kind == converged
json .verdicts.0.confidence '>' 0.5
json .forecast.target_step == 4000
json .forecast.method == ensemble
json .forecast.p_beat '<' 0.05
json .forecast.models type array
json .run_status == ok
json .done == true

# a diverging loss: red, exit 0, advice with numbers from the configuration
awk 'BEGIN { for (t = 0; t <= 400; t += 10) printf("%d,%.5f\n", t, t < 100 ? 2.3 - 0.008 * t : 1.5 + 0.02 * (t - 100)) }' > div.body
{ echo "step,train_loss"; cat div.body; } > div.csv
expect_code 0 "$KB" judge div.csv --config '{"base_lr": 0.001, "batch_size": 128}'
expect_out '^light +red'
expect_out 'verdict +diverging'
expect_out 'advice +stop; learning rate 0.001 -> 0.00033, batch size 128 -> 64'
expect_code 0 "$KB" judge div.csv --json --config '{"base_lr": 0.001, "batch_size": 128}'
json .format == csv
json .verdicts.0.kind == diverging
json .verdicts.0.light == red
json .advice.0.param == base_lr
json .advice.0.to == 0.00033

# Caffe logs: the LeNet log, and an overflow (nan) log
expect_code 0 "$KB" judge "$D/lenet_solver.log" --classes 10
expect_out '^light +green'
expect_code 0 "$KB" judge "$D/caffe_nan.log" --json --config '{"base_lr": 0.5}'
json .format == caffe
json .light == red
json .verdicts.0.kind == overflow
json .verdicts.0.step == 40
json .advice.0.text == 'stop; non-finite values at step 40: add clip_gradients 0.1'
expect_err "caffe_nan.log:17: 'Test net output'"
expect_code 0 "$KB" judge "$D/caffe_nan.log" --quiet
[ -s "$T/err" ] && fail "--quiet still warned"

# MLflow metric file (name from the file), gzip input, stdin
expect_code 0 "$KB" judge "$D/mlruns/0/abc123/metrics/val_loss" --json
json .metric == val_loss
gzip -c conv.jsonl > conv.jsonl.gz
expect_code 0 "$KB" judge conv.jsonl.gz --json
json .verdicts.0.kind == converged
expect_code 0 "$KB" judge - --format jsonl --json < conv.jsonl
json .verdicts.0.kind == converged

# flat near chance with the class count: underfitting, yellow
awk 'BEGIN { for (i = 0; i <= 60; i++) printf("{\"step\": %d, \"val_accuracy\": %.4f, \"train_loss\": %.4f}\n", i * 50, 0.1 + 0.004 * ((i * 7) % 5 - 2), 2.302 + 0.002 * ((i * 3) % 5 - 2)) }' > flat.jsonl
expect_code 0 "$KB" judge flat.jsonl --classes 10 --config '{"units": 8}'
expect_out '^light +yellow'
expect_out 'verdict +underfitting'
expect_out 'advice +stop; the model is too small: units 8 -> 16'

# real curves of the labelled set (kb train net output, gzip): one per kind
C=$SRC/tests/data/curves
for pair in c001:overflow:26 c004:diverging:26 c008:underfitting:26 c118:overfitting:2 c088:converged:26; do
    IFS=: read -r id want k <<< "$pair"
    expect_code 0 "$KB" judge "$C/$id.jsonl.gz" --classes "$k" --json
    json .verdicts.0.kind == "$want"
done

# errors: usage (2), unreadable (1), no curve in it (3)
expect_code 2 "$KB" judge
expect_err 'missing FILE'
expect_code 2 "$KB" judge conv.jsonl --mode up
expect_err "expected 'min' or 'max'"
expect_code 2 "$KB" judge conv.jsonl --format xml
expect_code 2 "$KB" judge conv.jsonl --metric val_accuracy
expect_err "no series named 'val_accuracy'"
expect_code 2 "$KB" judge conv.jsonl --config '{"lr": '
expect_code 2 "$KB" judge conv.jsonl --target-step -5
expect_code 2 "$KB" judge a b
expect_code 1 "$KB" judge no-such-file.jsonl
expect_err "kb judge: cannot open 'no-such-file.jsonl'"
printf 'hello\nworld\n' > junk.txt
expect_code 3 "$KB" judge junk.txt
expect_err 'no learning-curve values'
# advice from the KB: the task's stored runs that diverged and the one-parameter change that
# fixed them (curves judged on the fly; a stored kb.verdict/1 verdict wins over the curve)
curve_of() { # kind -> a JSON array of 41 points of train_loss
    awk -v k="$1" 'BEGIN { printf("["); for (i = 0; i <= 40; i++) { t = 10 * i;
        v = k == "div" ? (t < 100 ? 2.3 - 0.008 * t : 1.5 + 0.02 * (t - 100)) : 0.2 + 2 * exp(-t / 60);
        printf("%s{\"step\":%d,\"train_loss\":%.6f}", i ? "," : "", t, v) } printf("]") }'
}
run_line() { # id lr kind final [task]
    printf '{"kind":"run","id":"%s","task":"%s","config":{"base_lr":%s,"batch_size":128},"status":"ok","objective":"train_loss","direction":"minimize","metrics":{"train_loss":%s},"curve":%s}\n' "$1" "${5:-t1}" "$2" "$4" "$(curve_of "$3")"
}
{
    printf '%s\n' '{"kind":"task","id":"t1","name":"one","features":{"n_rows":100,"n_features":10,"n_classes":2}}'
    # t2 is near t1 by meta-features, t3 far
    printf '%s\n' '{"kind":"task","id":"t2","name":"two","features":{"n_rows":120,"n_features":12,"n_classes":2}}'
    printf '%s\n' '{"kind":"task","id":"t3","name":"three","features":{"n_rows":90000,"n_features":700,"n_classes":40}}'
    run_line b1 1.0 div 9.4 t2
    run_line b2 0.1 conv 0.25 t2
    run_line c1 1.0 div 9.4 t3
    run_line c2 0.1 conv 0.25 t3
    run_line a1 1.0 div 9.5
    run_line a2 0.1 conv 0.2
    run_line a3 2.0 div 9.9
    run_line a4 0.2 conv 0.21
    # no curve, but a stored verdict: diverging; fixed by base_lr 0.3 -> 0.03 (a5 -> a6)
    printf '%s\n' '{"kind":"run","id":"a5","task":"t1","config":{"base_lr":0.3,"batch_size":64},"status":"ok","objective":"train_loss","direction":"minimize","metrics":{"train_loss":5},"extra":{"judge":{"schema":"kb.verdict/1","verdicts":[{"kind":"diverging"}]}}}'
    printf '%s\n' '{"kind":"run","id":"a6","task":"t1","config":{"base_lr":0.03,"batch_size":64},"status":"ok","objective":"train_loss","direction":"minimize","metrics":{"train_loss":0.3}}'
} > hist.jsonl
expect_code 0 "$KB" init --kb h.lmdb
expect_code 0 "$KB" ingest --kb h.lmdb --quiet hist.jsonl
expect_code 0 "$KB" judge div.csv --task t1 --kb h.lmdb --config '{"base_lr": 0.001, "batch_size": 128}'
expect_out 'advice +stop; learning rate 0.001 -> 0.00033'
expect_out 'advice +from the KB: base_lr x0\.1 fixed 9 diverging runs of task t1 \(e\.g\. a[135] -> a[246]; median gain \+[0-9.]+\)'
expect_code 0 "$KB" judge div.csv --task t1 --kb h.lmdb --json
json .history.task == t1
json .history.similar_tasks len== 0
json .history.runs == 6
json .history.verdict == diverging
json .history.fixes.0.param == base_lr
json .history.fixes.0.support == 9
json .history.fixes.0.ratio '<' 0.11
json .history.fixes.0.ratio '>' 0.09
# with the nearest similar task: t2's pair counts too, t3's does not
expect_code 0 "$KB" judge div.csv --task t1 --similar 1 --kb h.lmdb
expect_out 'from the KB: base_lr x0\.1 fixed 10 diverging runs of task t1 and 1 similar task '
expect_code 0 "$KB" judge div.csv --task t1 --similar 1 --kb h.lmdb --json
json .history.similar_tasks.0 == t2
json .history.similar_tasks len== 1
json .history.runs == 8
json .history.fixes.0.support == 10
expect_code 0 "$KB" judge div.csv --task t1 --similar 5 --kb h.lmdb --json
json .history.similar_tasks len== 2
json .history.runs == 10
expect_code 2 "$KB" judge div.csv --task t1 --similar x --kb h.lmdb
expect_code 0 "$KB" judge conv.jsonl --task t1 --kb h.lmdb --json
json .history.verdict == converged
json .history.fixes len== 0
expect_code 0 "$KB" judge conv.jsonl --json
json .history == null
expect_code 0 "$KB" judge div.csv --task nosuch --kb h.lmdb
expect_out 'from the KB: no diverging run of task nosuch was fixed by a small change \(0 runs\)'
expect_code 1 "$KB" judge div.csv --task t1 --kb missing.lmdb
expect_err 'no knowledge base'

: > empty.jsonl
expect_code 3 "$KB" judge empty.jsonl
expect_code 0 "$KB" judge --help
expect_out 'exit codes'
finish
