#!/bin/bash
# kb ingest end to end: every input format, every kind of bad input, exit codes 0/1/2/3,
# --strict, duplicates on re-ingest, progress lines.
. "$(dirname "$0")/lib.sh"
D=$KB_TEST_DATA/examples

cat >good.jsonl <<'EOF'
{"kind":"task","id":"t1","name":"wine","type":"classification"}

{"kind":"space","name":"svm","params":[{"name":"C","type":"float","low":0.001,"high":1000,"log":true}]}
{"kind":"run","id":"r1","task":"t1","space":"svm","config":{"C":1.5},"status":"ok","objective":"acc","direction":"maximize","metrics":{"acc":0.9},"curve":[{"step":0,"acc":0.5},{"step":1,"acc":0.9}]}
{"kind":"run","task":{"id":"t2","name":"inline"},"status":"diverged","metrics":{"loss":"nan"},"curve":[{"step":0,"loss":1.5},{"step":1,"loss":"inf"}]}
EOF
expect_code 0 "$KB" ingest good.jsonl
expect_out '^5 accepted, 0 duplicate, 0 rejected$'
# duplicates on re-ingest, with the JSON summary
expect_code 0 "$KB" ingest --json good.jsonl
json .schema == kb.ingest/1
json .accepted == 0
json .duplicate == 5
json .rejected == 0
json .files.0.file == good.jsonl
json .files.0.error type null

# --- bad inputs: each is reported as FILE:LINE: reason, the good records around it kept ---
printf '%s\n' '{"kind":"run","id":"a1","task":"t1","status":"ok"}' \
    '{"kind":"run","id":"a2","task":"t1","sta' \
    '{"kind":"run","id":"a3","task":"t1","status":"ok"}' >truncated.jsonl
expect_code 3 "$KB" ingest truncated.jsonl
expect_err '^kb ingest: truncated.jsonl:2: invalid JSON: unterminated string'
expect_out '^2 accepted, 0 duplicate, 1 rejected$'

printf '{"kind":"task","id":"bad\xff\xfe"}\n{"kind":"task","id":"ok-utf8-\xc3\xa9"}\n' >utf8.jsonl
expect_code 3 "$KB" ingest utf8.jsonl
expect_err '^kb ingest: utf8.jsonl:1: invalid UTF-8 at column 25$'
expect_out '^1 accepted'

cat >types.jsonl <<'EOF'
{"kind":"run","id":"b1","task":"t1","status":"ok","cost_s":"12"}
{"kind":"run","id":"b2","task":"t1","status":"ok","config":{"lr":[0.1]}}
{"kind":"run","id":"b3","task":"t1","status":"ok","curve":[{"step":0.5,"loss":1}]}
{"kind":"run","id":"b4","task":"t1","status":7}
{"kind":"run","id":"b5","task":"t1","status":"ok","started_at":"yesterday"}
EOF
expect_code 3 "$KB" ingest types.jsonl
expect_err "types.jsonl:1: field 'cost_s': expected a number, got a string"
expect_err "types.jsonl:2: field 'config.lr': expected a number, string or bool, got an array"
expect_err "types.jsonl:3: field 'curve\[0\].step': expected a non-negative integer"
expect_err "types.jsonl:4: field 'status': expected a string, got a number"
expect_err "types.jsonl:5: field 'started_at': expected an ISO-8601 UTC time"
expect_out '^0 accepted, 0 duplicate, 5 rejected$'

cat >nan.jsonl <<'EOF'
{"kind":"run","id":"c1","task":"t1","status":"diverged","metrics":{"loss":NaN}}
{"kind":"run","id":"c2","task":"t1","status":"diverged","metrics":{"loss":Infinity}}
{"kind":"run","id":"c3","task":"t1","status":"diverged","metrics":{"loss":-Infinity}}
{"kind":"run","id":"c4","task":"t1","status":"ok","metrics":{"loss":"nan"}}
EOF
expect_code 3 "$KB" ingest nan.jsonl
expect_err 'nan.jsonl:1: invalid JSON: NaN and Infinity are not JSON'
expect_err 'nan.jsonl:2: invalid JSON: NaN and Infinity are not JSON'
expect_err 'nan.jsonl:3: invalid JSON: NaN and Infinity are not JSON'
expect_err "nan.jsonl:4: field 'metrics.loss': non-finite value needs status 'diverged'"

cat >missing.jsonl <<'EOF'
{"id":"d0","task":"t1","status":"ok"}
{"kind":"run","id":"d1","status":"ok"}
{"kind":"run","id":"d2","task":"t1"}
{"kind":"backbone","family":"kb-net"}
EOF
expect_code 3 "$KB" ingest missing.jsonl
expect_err "missing.jsonl:1: field 'kind': required"
expect_err "missing.jsonl:2: field 'task_id': required"
expect_err "missing.jsonl:3: field 'status': required"
expect_err "missing.jsonl:4: field 'id': required"

# unknown fields are kept under "extra" with a warning (--quiet drops the warning)
echo '{"kind":"task","id":"t3","colour":"blue"}' >unknown.jsonl
expect_code 0 "$KB" ingest unknown.jsonl
expect_err "warning: unknown.jsonl:1: field 'colour': unknown task field kept under 'extra'"
expect_code 0 "$KB" ingest --quiet unknown.jsonl
[ -s "$T/err" ] && fail "--quiet still printed: $(cat "$T/err")"

# a 10 MB line (a run with a 400,000-point learning curve)
awk 'BEGIN { printf "{\"kind\":\"run\",\"id\":\"big\",\"task\":\"t1\",\"status\":\"ok\",\"curve\":[";
             for (i = 0; i < 400000; i++) printf "%s{\"step\":%d,\"loss\":0.%06d}", (i ? "," : ""), i, i;
             printf "]}\n" }' >big.jsonl
[ "$(wc -c <big.jsonl)" -gt 10000000 ] || fail "big.jsonl is not over 10 MB"
expect_code 0 "$KB" ingest big.jsonl
expect_out '^1 accepted'

: >empty.jsonl
expect_code 0 "$KB" ingest empty.jsonl
expect_out '^0 accepted, 0 duplicate, 0 rejected$'
expect_err 'empty.jsonl: empty input: no records'

head -c 4096 "$KB" >binary.bin
expect_code 3 "$KB" ingest binary.bin
expect_err '^kb ingest: binary.bin: unknown format: binary data'
printf 'just some text\n' >text.txt
expect_code 3 "$KB" ingest text.txt
expect_err '^kb ingest: text.txt: unknown format \(expected kb JSON Lines'

# duplicate ids: the same content twice is a duplicate, different content a conflict
cat >dups.jsonl <<'EOF'
{"kind":"run","id":"e1","task":"t1","status":"ok","metrics":{"acc":0.5}}
{"kind":"run","id":"e1","task":"t1","status":"ok","metrics":{"acc":0.5}}
{"kind":"run","id":"e1","task":"t1","status":"ok","metrics":{"acc":0.7}}
EOF
expect_code 3 "$KB" ingest dups.jsonl
expect_out '^1 accepted, 1 duplicate, 1 rejected$'
expect_err "dups.jsonl:3: .*e1"

# a run whose task is unknown is refused by the store
echo '{"kind":"run","id":"f1","task":"no-such-task","status":"ok"}' >orphan.jsonl
expect_code 3 "$KB" ingest orphan.jsonl
expect_err "orphan.jsonl:1: run 'f1': unknown task 'no-such-task'"

# --- Optuna CSV (a real study) ---
expect_code 2 "$KB" ingest "$D/optuna_svc_wine.csv"
expect_err 'an Optuna CSV needs the task its runs belong to \(--task ID\)'
expect_code 0 "$KB" ingest --task t1 --space svm --objective accuracy --direction maximize \
    --study svc-wine --json "$D/optuna_svc_wine.csv"
json .accepted == 12
expect_code 0 "$KB" ingest --task t1 --space svm --objective accuracy --direction maximize \
    --study svc-wine "$D/optuna_svc_wine.csv"
expect_out '^0 accepted, 12 duplicate, 0 rejected$'
# a CSV with a missing column
cut -d, -f1-12 "$D/optuna_svc_wine.csv" >nostate.csv
expect_code 3 "$KB" ingest --task t1 nostate.csv
expect_err '^kb ingest: nostate.csv: unknown format'
expect_code 3 "$KB" ingest --task t1 --format optuna-csv nostate.csv
expect_err "^kb ingest: nostate.csv:1: not an Optuna CSV: missing column 'state'"
# a row with a field too few
{ head -3 "$D/optuna_svc_wine.csv"; sed -n 4p "$D/optuna_svc_wine.csv" | cut -d, -f1-5; } >short.csv
expect_code 3 "$KB" ingest --task t1 --study short short.csv
expect_err 'short.csv:4: expected 13 fields as in the header, got 5'
expect_out '^2 accepted'

# --- MLflow file store ---
cp -r "$D/mlruns" mlruns
expect_code 3 "$KB" ingest --json mlruns
json .accepted == 0
json .rejected == 5
expect_err "meta.yaml:1: run 'mlflow:[0-9a-f]+': unknown task 'sklearn-digits'"
echo '{"kind":"task","id":"sklearn-digits"}' | expect_code 0 "$KB" ingest -
expect_code 0 "$KB" ingest mlruns
expect_out '^5 accepted'
# a half-written metrics file: the incomplete last line is dropped with a warning
run=$(ls mlruns/1 | grep -v meta.yaml | head -1)
f=mlruns/1/$run/metrics/val_accuracy
head -c -5 "$f" >"$f.tmp" && mv "$f.tmp" "$f"
rm -f kb2.lmdb; rm -rf kb2.lmdb
echo '{"kind":"task","id":"sklearn-digits"}' >digits.jsonl
expect_code 0 "$KB" ingest --kb kb2.lmdb digits.jsonl mlruns
expect_err "warning: mlruns/1/$run/metrics/val_accuracy:6: incomplete last line dropped"
expect_out '^mlruns: 5 accepted, 0 duplicate, 0 rejected$'

mkdir emptydir
expect_code 0 "$KB" ingest emptydir
expect_err 'warning: emptydir: no MLflow runs found'

# --- --strict: a file with one bad record writes nothing; the next good file is written ---
cat >strict.jsonl <<'EOF'
{"kind":"task","id":"s1"}
{"kind":"run","id":"s1r1","task":"s1","status":"ok"}
{"kind":"run","id":"s1r2","task":"s1","status":"bogus"}
EOF
echo '{"kind":"task","id":"s2"}' >strict2.jsonl
expect_code 3 "$KB" ingest --strict strict.jsonl strict2.jsonl
expect_err "strict.jsonl:3: field 'status': unknown status 'bogus'"
expect_err 'strict.jsonl: --strict: nothing written \(1 record\(s\) rejected\)'
expect_out '^strict.jsonl: 0 accepted, 0 duplicate, 1 rejected$'
expect_out '^strict2.jsonl: 1 accepted'
expect_code 0 "$KB" export --kind task
grep -q '"id":"s1"' "$T/out" && fail "--strict wrote part of a rejected file"
grep -q '"id":"s2"' "$T/out" || fail "--strict dropped a good file"

# --- progress after each committed batch ---
for i in 1 2 3 4 5; do echo "{\"kind\":\"run\",\"id\":\"p$i\",\"task\":\"t1\",\"status\":\"ok\"}"; done >p.jsonl
expect_code 0 "$KB" ingest --batch 2 --progress p.jsonl
[ "$(grep -c '^kb ingest: committed [0-9]* records$' "$T/err")" = 3 ] || fail "expected 3 progress lines"
expect_err '^kb ingest: committed 5 records$'

# --- usage and runtime failures ---
expect_code 2 "$KB" ingest
expect_err 'no input'
expect_code 2 "$KB" ingest --bogus x.jsonl
expect_code 2 "$KB" ingest --direction up good.jsonl
expect_err "option '--direction': expected minimize or maximize, got 'up'"
expect_code 2 "$KB" ingest --batch 0 good.jsonl
expect_code 2 "$KB" ingest - -
expect_code 1 "$KB" ingest no-such-file.jsonl
expect_err "^kb ingest: cannot open 'no-such-file.jsonl': No such file or directory"
touch notadir
expect_code 1 "$KB" ingest --kb notadir/kb.lmdb good.jsonl
expect_err "^kb ingest: opening 'notadir/kb.lmdb'"
expect_code 0 "$KB" ingest --help
expect_out '^usage: kb ingest'

finish
