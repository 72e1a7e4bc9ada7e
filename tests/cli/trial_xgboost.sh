# The trial protocol end to end with a real external trainer: kb search drives Debian's xgboost
# command-line program through a config-file template (Caffe-style tokens ETA, MAX_DEPTH and
# {placeholders}), reads its evaluation log from stderr with a regex, and stores every trial
# with its curve. Skipped when /usr/bin/xgboost is absent (Debian package xgboost).
. "$(dirname "$0")/lib.sh"
if [ ! -x /usr/bin/xgboost ]; then echo "skipped: no /usr/bin/xgboost"; exit 0; fi
D="$SRC/tests/data/trial"

# the space, and the task (the bundled concrete dataset the fixtures were made from)
printf '{"kind":"space","name":"xgb","params":[{"name":"eta","type":"float","low":0.01,"high":0.5,"log":true},{"name":"max_depth","type":"int","low":2,"high":6}]}\n' > xgb.jsonl
expect_code 0 $KB ingest xgb.jsonl
expect_code 0 $KB add-task "$SRC/datasets/concrete.csv.gz" --name concrete --json
task=$("$JC" "$T/out" .id print)

# the fixture template with the data next to kb ({cwd}) and 10 rounds
cp "$D/concrete.train.svm" "$D/concrete.test.svm" .
sed -e 's/{data_dir}/{cwd}/' -e 's/{num_round}/10/' "$D/xgboost.conf.tmpl" > xgb.conf.tmpl
expect_code 0 $KB search --task "$task" --space xgb --template xgb.conf.tmpl \
    --trial '/usr/bin/xgboost {config_file}' --parse-stderr \
    --metric-regex '(test-rmse):([-+0-9.eE]+)' --step-regex '\[([0-9]+)\][[:space:]]' \
    --objective test-rmse --direction minimize --warm-start none --budget 3 --jobs 2 \
    --study s-xgb --work-dir work --json --quiet
for i in 0 1 2; do
    jsonl $i.schema == kb.search.trial/1
    jsonl $i.status == ok
    jsonl $i.value ">" 0
done
jsonl 3.schema == kb.search/1
# each trial ran in its own directory with its rendered config and its logs
for k in 0 1 2; do
    d=work/s-xgb/trial-000$k
    [ -f "$d/xgb.conf" ] || fail "$d/xgb.conf missing"
    grep -qE '^eta = [0-9.e-]+$' "$d/xgb.conf" || fail "$d/xgb.conf: eta not rendered"
    grep -qE '^max_depth = [2-6]$' "$d/xgb.conf" || fail "$d/xgb.conf: max_depth not rendered"
    grep -q "test-rmse" "$d/stderr.log" || fail "$d/stderr.log lacks xgboost's log"
    [ -f "$d/model.bin" ] || fail "$d/model.bin missing (xgboost ran elsewhere)"
done
# the stored run: its curve is xgboost's 10 rounds, steps 0..9, ending at the final value
expect_code 0 $KB show s-xgb:0 --json
json .record.status == ok
json .record.curve.9.step == 9
json .record.curve len== 10
json .record.metrics.test-rmse ">" 0

# an unknown placeholder is an error naming it and its place; nothing runs
printf 'eta = ETA\nx = {nope}\n' > bad.tmpl
expect_code 3 $KB search --task "$task" --space xgb --template bad.tmpl \
    --trial '/usr/bin/xgboost {config_file}' --objective test-rmse --budget 1 --quiet
expect_err "bad.tmpl:2:5: unknown placeholder '\{nope\}'"
finish
