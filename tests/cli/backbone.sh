#!/bin/bash
# kb backbone add/list: register a weights file from kb train net, duplicates, bad files.
. "$(dirname "$0")/lib.sh"

if ! "$KB" train net --help >/dev/null 2>&1; then
    echo "skipped: this kb has no 'train net' workload"; exit 0
fi

awk 'BEGIN { s = 5; print "a,b,target";
    for (i = 0; i < 120; i++) { c = i % 2;
        s = (s * 1103515245 + 12345) % 2147483648;
        printf "%.4f,%.4f,%s\n", c + s / 2147483648, i % 7, (c ? "yes" : "no") } }' > d.csv
expect_code 0 "$KB" train net d.csv --arch 'FC(6)' --set epochs=2 --save-weights w.kbw
[ -s w.kbw ] || fail "no weights file"

expect_code 0 "$KB" init
expect_code 0 "$KB" backbone add w.kbw --source-task t-demo --json
expect_err "warning: source task 't-demo' is not in the knowledge base"
json .schema == kb.backbone.add/1
json .status == added
json .arch == 'FC(6)'
json .input_signature type string
json .source_task == t-demo
json .family == kb-net
json .n_outputs == 2
"$JC" "$T/out" .id print > id.txt
id=$(cat id.txt)
case "$id" in b-????????????????) ;; *) fail "unexpected id '$id'" ;; esac
expect_out "\"uri\":\"$T/w.kbw\""

# the same file again: nothing changes
expect_code 0 "$KB" backbone add w.kbw --source-task t-demo
expect_out 'already registered'
# the same id for other weights: refused
expect_code 0 "$KB" train net d.csv --arch 'FC(4)' --set epochs=1 --save-weights v.kbw
expect_code 3 "$KB" backbone add v.kbw --source-task t-demo --id "$id"
expect_err 'different content'
expect_code 0 "$KB" backbone add v.kbw --source-task t-other --id b-second --family mlp \
    --uri file:///models/v.kbw

expect_code 0 "$KB" backbone list
expect_out "^$id	kb-net	FC\\(6\\)	tabular:"
expect_out '^b-second	mlp	FC\(4\)	.*	t-other	file:///models/v.kbw$'
[ "$(wc -l < "$T/out")" = 2 ] || fail "list: expected 2 lines"
expect_code 0 "$KB" backbone list --json
jsonl 0.id == "$id"   # by id: hex digits sort before 's'
jsonl 1.id == b-second
jsonl 1.arch == 'FC(4)'

# bad input
expect_code 2 "$KB" backbone add w.kbw
expect_err 'missing --source-task'
expect_code 2 "$KB" backbone
expect_err "missing 'add FILE' or 'list'"
expect_code 2 "$KB" backbone frob
expect_err "unknown subcommand 'frob'"
expect_code 1 "$KB" backbone add nosuch.kbw --source-task t
expect_err 'nosuch.kbw'
head -c 100 w.kbw > cut.kbw
expect_code 3 "$KB" backbone add cut.kbw --source-task t
expect_err 'truncated'
cp w.kbw flip.kbw
printf 'Z' | dd of=flip.kbw bs=1 seek=200 conv=notrunc 2>/dev/null
expect_code 1 "$KB" backbone add flip.kbw --source-task t
expect_err 'checksum'
expect_code 1 "$KB" backbone list --kb "$T/none.lmdb"
expect_err 'no knowledge base'

finish
