#!/bin/bash
# kb add-task: store a dataset as a task; the same data twice is the same task (exit 0).
. "$KB_SRC/tests/cli/lib.sh"

{
    echo "x1,x2,kind,target"
    for i in $(seq 1 40); do
        c=$((i % 2))
        echo "$((i * 3 % 11)).25,$((c * 5 + i % 3)),k$((i % 4)),c$c"
    done
} >small.csv

expect_code 0 "$KB" add-task small.csv --name small --tags a,b --team ml --json --seed 1
json .schema == kb.add_task/1
json .status == added
json .name == small
json .task_type == classification
json .feature_set == kb-mf-1
json .n_features ">" 40
id=$("$JC" "$T/out" .id print)
fp=$("$JC" "$T/out" .fingerprint print)
case "$id" in t-????????????????) ;; *) fail "id '$id' is not t- + 16 hex digits" ;; esac
[ "$id" = "t-${fp:0:16}" ] || fail "id '$id' does not come from fingerprint '$fp'"
n_all=$("$JC" "$T/out" .n_features print)

# what was stored: the record as kb show returns it
expect_code 0 "$KB" show "$id" --json
json .record.kind == task
json .record.name == small
json .record.fingerprint == "$fp"
json .record.type == classification
json .record.target == target
json .record.feature_set == kb-mf-1
json .record.team == ml
json .record.tags len== 2
json .record.tags.0 == a
json .record.features len== "$n_all"
json .record.features.n_rows == 40
json .record.features.n_categorical == 1
json .record.features.landmark_lda type number
json .record.features.class_prob_std type number
json .record.created_at exists

# the same data again, under another name and gzip'd: already present, nothing changes
gzip -c small.csv >again.csv.gz
expect_code 0 "$KB" add-task again.csv.gz --name other --json
json .status == present
json .id == "$id"
json .name == small
json .n_features == "$n_all"
expect_code 0 "$KB" add-task small.csv --name small
expect_out "already present"

# a different dataset is a different task; --groups limits what is stored
sed 's/^1\./2./' small.csv >other.csv
expect_code 0 "$KB" add-task other.csv --name other --groups general --kb "$T/second.lmdb" --json
json .status == added
json .store == "$T/second.lmdb"
json .n_features "<" "$n_all"
expect_code 0 "$KB" add-task other.csv --name other2 --kb "$T/second.lmdb"
expect_out "^task t-[0-9a-f]{16} 'other' already present"

# bad inputs
expect_code 2 "$KB" add-task small.csv
expect_err "missing --name"
expect_code 2 "$KB" add-task --name x
expect_err "missing DATASET"
expect_code 2 "$KB" add-task small.csv --name x --groups nope
expect_err "unknown group 'nope'"
expect_code 2 "$KB" add-task small.csv --name x --sample -5
expect_code 1 "$KB" add-task missing.csv --name x
expect_err "^kb add-task: .*missing.csv"
printf 'a,b,target\n1,2,x\n3,4,y,5\n' >ragged.csv
expect_code 3 "$KB" add-task ragged.csv --name r
expect_err "ragged.csv:3"
finish
