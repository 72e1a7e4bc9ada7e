#!/bin/bash
# Studies in the knowledge base: ingest (with FILE:LINE errors for bad study records), kb list
# studies, kb list runs --study, kb show of a study and of a trial, kb export (studies after
# tasks, before runs) round-tripping through kb ingest, kb stats and kb check.
. "$(dirname "$0")/lib.sh"

cat >in.jsonl <<'JSONL'
{"kind":"task","id":"t1","name":"wine","team":"a"}
{"kind":"task","id":"t2","name":"iris"}
{"kind":"study","id":"st-1","task_id":"t1","space":"svm","objective":"acc","direction":"maximize","method":"gp","warm_start":"nearest","seed":42,"neighbours":[{"task":"t2","weight":0.75}],"command":"kb train svm --C {C}","team":"a","created_at":"2024-01-02T03:04:05Z","extra":{"budget":40}}
{"kind":"study","id":"st-2","task":"t2","space":"svm","method":"tpe","seed":"18446744073709551615"}
{"kind":"run","id":"st-1:0","task":"t1","space":"svm","config":{"C":1.0},"status":"ok","objective":"acc","direction":"maximize","metrics":{"acc":0.9},"study_id":"st-1"}
{"kind":"run","id":"st-1:1","task":"t1","space":"svm","config":{"C":10.0},"status":"running","study_id":"st-1"}
{"kind":"run","id":"optuna:x:0","task":"t2","status":"ok","study_id":"optuna:x"}
JSONL
expect_code 0 "$KB" ingest in.jsonl
expect_out '^7 accepted, 0 duplicate, 0 rejected$'

expect_code 0 "$KB" list studies
expect_out '^st-1 +t1 +svm +gp +acc \(max\) +2 trials, 1 running$'
expect_out '^st-2 +t2 +svm +tpe +- +0 trials, 0 running$'
expect_code 0 "$KB" list studies --task t2 --json
jsonl 0.id == st-2
jsonl 0.seed == 18446744073709551615
[ "$(wc -l <"$T/out")" = 1 ] || fail "--task t2: expected 1 study"
expect_code 0 "$KB" list studies --team a --json
jsonl 0.id == st-1
expect_code 0 "$KB" list runs --study st-1
expect_out '^st-1:0 '
expect_out '^st-1:1 '
# a study_id without a study record (an Optuna import) is indexed too
expect_code 0 "$KB" list runs --study optuna:x --json
jsonl 0.id == optuna:x:0
expect_code 2 "$KB" list studies --status ok
expect_err "studies take --task, --team and --limit only"

expect_code 0 "$KB" show st-1 --json
json schema == kb.show/1
json record.kind == study
json record.neighbours.0.task == t2
json record.neighbours.0.weight == 0.75
json record.extra.budget == 40
expect_code 0 "$KB" show st-1:1
expect_out '"study_id":[[:space:]]+"st-1"'

expect_code 0 "$KB" stats --json
json studies == 2
json schema_version == 4
expect_code 0 "$KB" check
expect_out '2 studies; every index agrees'

# export: studies after tasks (and backbones), before runs; round trip through ingest
expect_code 0 "$KB" export
cp "$T/out" e1.jsonl
jsonl 2.id == st-1
jsonl 3.id == st-2
jsonl 4.id == st-1:0
expect_code 0 "$KB" ingest --kb copy.lmdb --strict e1.jsonl
expect_out '^7 accepted, 0 duplicate, 0 rejected$'
expect_code 0 "$KB" export --kb copy.lmdb
cmp e1.jsonl "$T/out" || fail "export -> ingest -> export is not byte-identical"
expect_code 0 "$KB" export --kind study
[ "$(wc -l <"$T/out")" = 2 ] || fail "--kind study: expected 2 lines"
expect_code 0 "$KB" export --task t1
jsonl 0.id == t1
jsonl 1.id == st-1
jsonl 2.id == st-1:0

# bad study records: each named by FILE:LINE, the good ones kept
cat >bad.jsonl <<'JSONL'
{"kind":"study","id":"st-3","task_id":"t1"}
{"kind":"study","id":"st-4","task_id":"t1","space":"svm","seed":-3}
{"kind":"study","id":"st-5","task_id":"t1","space":"svm","neighbours":[{"task":"t2"}]}
{"kind":"study","id":"st-6","task_id":"t-none","space":"svm"}
{"kind":"study","id":"t2","task_id":"t1","space":"svm"}
{"kind":"study","id":"st-1","task_id":"t1","space":"other"}
{"kind":"study","id":"st-7","task_id":"t1","space":"svm"}
JSONL
expect_code 3 "$KB" ingest bad.jsonl
expect_out '^1 accepted, 0 duplicate, 6 rejected$'
expect_err "bad.jsonl:1: field 'space': required"
expect_err "bad.jsonl:2: field 'seed': expected a non-negative integer"
expect_err "bad.jsonl:3: field 'neighbours\[0\]\.weight': required"
expect_err "bad.jsonl:4: study 'st-6': unknown task 't-none'"
expect_err "bad.jsonl:5: study 't2': id is already used by a task"
expect_err "bad.jsonl:6: study 'st-1': id exists with different content"
# --strict refuses the whole file, a study with an unknown task included
printf '%s\n' '{"kind":"study","id":"st-8","task_id":"t1","space":"svm"}' \
    '{"kind":"study","id":"st-9","task_id":"t-none","space":"svm"}' >strict.jsonl
expect_code 3 "$KB" ingest --strict strict.jsonl
expect_err "strict.jsonl:2: study 'st-9': unknown task 't-none'"
expect_code 1 "$KB" show st-8
expect_err "no record has id 'st-8'"

finish
