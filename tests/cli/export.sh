#!/bin/bash
# kb export: deterministic JSON Lines that kb ingest takes back; export -> ingest into an
# empty KB -> export is byte-identical; --task, --kind, -o; exit codes.
. "$(dirname "$0")/lib.sh"
D=$KB_TEST_DATA/examples

cat >in.jsonl <<'EOF'
{"kind":"space","name":"svm","params":[{"name":"kernel","type":"categorical","choices":["rbf","linear"]},{"name":"gamma","type":"float","low":1e-4,"high":10,"log":true,"cond_parent":"kernel","cond_in":["rbf"]}]}
{"kind":"task","id":"t1","name":"wine","fingerprint":"ab12","type":"classification","target":"class","features":{"n":178,"skew":null},"feature_set":"kb-mf-1","tags":["uci"],"team":"a","created_at":"2024-01-02T03:04:05.25Z","note":"kept"}
{"kind":"backbone","id":"b1","family":"kb-net","arch":"C(3,32)+FC(64)","input_signature":"image:1x28x28","source_task":"t1","uri":"file:///w.bin","team":"a","created_at":"2024-01-02T03:04:05Z"}
{"kind":"run","id":"r1","task":"t1","space":"svm","config":{"kernel":"rbf","gamma":0.5,"n":3,"flag":false,"w":2.0},"backbone_id":"b1","fidelity":{"epochs":5},"status":"ok","objective":"acc","direction":"maximize","metrics":{"acc":0.91},"curve":[{"step":0,"acc":0.5,"loss":2},{"step":5,"acc":0.91}],"cost_s":1.25,"team":"a","started_at":"2024-01-02T03:04:05Z","finished_at":"2024-01-02T03:04:06.25Z","study_id":"s1","extra":{"z":[1,{"b":2,"a":1}]}}
{"kind":"run","task":{"id":"t2","name":"inline"},"status":"diverged","metrics":{"loss":"nan"},"curve":[{"step":0,"loss":1.5},{"step":1,"loss":"inf"},{"step":2,"loss":"-inf"}]}
EOF
expect_code 0 "$KB" ingest --quiet in.jsonl
expect_code 0 "$KB" ingest --quiet --task t1 --study svc --direction maximize "$D/optuna_svc_wine.csv"
echo '{"kind":"task","id":"sklearn-digits"}' >digits.jsonl
expect_code 0 "$KB" ingest --quiet digits.jsonl "$D/mlruns"

expect_code 0 "$KB" export
cp "$T/out" e1.jsonl
[ "$(wc -l <e1.jsonl)" = 24 ] || fail "expected 24 lines, got $(wc -l <e1.jsonl)"
# order: spaces, tasks (by id), backbones, runs (in insertion order)
jsonl 0.kind == space
jsonl 1.id == sklearn-digits
jsonl 2.id == t1
jsonl 3.id == t2
jsonl 4.kind == backbone
jsonl 5.id == r1
jsonl 6.status == diverged
jsonl 6.metrics.loss == nan
jsonl 6.curve.2.loss == -inf
jsonl 7.id == optuna:svc:0
jsonl 5.extra.z.1.a == 1
jsonl 2.extra.note == kept

# export -> ingest into an empty KB -> export: the same bytes
expect_code 0 "$KB" ingest --kb copy.lmdb e1.jsonl
expect_out '^24 accepted, 0 duplicate, 0 rejected$'
expect_code 0 "$KB" export --kb copy.lmdb -o e2.jsonl
[ -s "$T/out" ] && fail "-o still wrote to stdout"
cmp e1.jsonl e2.jsonl || fail "export -> ingest -> export is not byte-identical"
# and through a pipe, into a third KB
"$KB" export --kb copy.lmdb | "$KB" ingest --kb third.lmdb --strict - >/dev/null 2>&1 ||
    fail "piping an export into ingest failed"
expect_code 0 "$KB" export --kb third.lmdb
cmp e1.jsonl "$T/out" || fail "export of the piped copy differs"
# re-ingesting an export adds nothing
expect_code 0 "$KB" ingest e1.jsonl
expect_out '^0 accepted, 24 duplicate, 0 rejected$'
# deterministic
expect_code 0 "$KB" export
cmp e1.jsonl "$T/out" || fail "two exports differ"

# --task: that task and its runs
expect_code 0 "$KB" export --task t1
[ "$(wc -l <"$T/out")" = 14 ] || fail "--task t1: expected 14 lines, got $(wc -l <"$T/out")"
jsonl 0.id == t1
jsonl 1.id == r1
jsonl 13.id == optuna:svc:11
expect_code 0 "$KB" export --task t1 --kind run
[ "$(wc -l <"$T/out")" = 13 ] || fail "--task t1 --kind run: expected 13 lines"
expect_code 0 "$KB" export --kind backbone
[ "$(wc -l <"$T/out")" = 1 ] || fail "--kind backbone: expected 1 line"
jsonl 0.id == b1
expect_code 0 "$KB" export --kind space
jsonl 0.params.1.cond_in.0 == rbf

# failures
expect_code 1 "$KB" export --task no-such-task
expect_err "^kb export: "
expect_code 1 "$KB" export --kb missing.lmdb
expect_err "^kb export: no knowledge base at 'missing.lmdb'"
expect_code 2 "$KB" export --kind trial
expect_err "option '--kind': expected task, run, backbone, space or study, got 'trial'"
expect_code 2 "$KB" export extra-arg
expect_code 1 "$KB" export -o no-such-dir/out.jsonl
expect_err "cannot create 'no-such-dir/out.jsonl'"

finish
