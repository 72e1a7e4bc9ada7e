# kb init, list, show, stats, check: results, --json, filters, exit codes.
. "$(dirname "$0")/lib.sh"
. "$SRC/tests/cli/gen_runs.sh"

# reading commands on a missing store fail with a hint, exit 1
for c in "stats" "list tasks" "show x" "check"; do
    expect_code 1 $KB $c
    expect_err "no knowledge base at .*kb init"
done

expect_code 0 $KB init --json
json .created == true
json .schema == kb.init/1
expect_code 0 $KB init
expect_out "existing knowledge base"
expect_code 2 $KB init extra-arg
expect_code 2 $KB init --no-such-option
expect_err "unknown option"

gen_runs 4 5 7 > runs.jsonl
printf '%s\n' '{"kind":"space","name":"mlp","params":[{"name":"base_lr","type":"float","low":1e-05,"high":1.0,"log":true}]}' >> runs.jsonl
printf '%s\n' '{"kind":"backbone","id":"bb-1","family":"kb-net","arch":"C(3,32)+FC(64)","input_signature":"image:1x28x28","source_task":"task-0","uri":"file:///tmp/bb1.kbw"}' >> runs.jsonl
expect_code 0 $KB ingest runs.jsonl

expect_code 0 $KB stats --json
json .tasks == 4
json .runs == 20
json .spaces == 1
json .backbones == 1
json .teams == 3
json .runs_by_status.ok == 20
expect_code 0 $KB stats
expect_out "^runs +20 \\(20 ok\\)"

expect_code 0 $KB list tasks
[ "$(wc -l < "$T/out")" = 4 ] || fail "list tasks: expected 4 lines"
expect_code 0 $KB list runs --task task-2 --json
[ "$(wc -l < "$T/out")" = 5 ] || fail "list runs --task: expected 5 lines"
jsonl 0.task_id == task-2
jsonl 4.id == run-2-4
expect_code 0 $KB list runs --limit 3
[ "$(wc -l < "$T/out")" = 3 ] || fail "list --limit 3"
expect_code 0 $KB list tasks --team team-1 --json
jsonl 0.id == task-1
[ "$(wc -l < "$T/out")" = 1 ] || fail "team filter: expected task-1 only"
expect_code 0 $KB list runs --status failed
expect_err "no runs"
expect_code 0 $KB list spaces --json
jsonl 0.name == mlp
expect_code 0 $KB list backbones
expect_out "bb-1 +kb-net"
expect_code 2 $KB list widgets
expect_code 2 $KB list
expect_code 2 $KB list tasks --status ok
expect_code 2 $KB list runs --status sideways
expect_code 2 $KB list runs --limit -1

expect_code 0 $KB show run-1-3 --json
json .schema == kb.show/1
json .record.kind == run
json .record.task_id == task-1
json .record.curve len== 20
expect_code 0 $KB show task-0
expect_out '"name":[[:space:]]+"synthetic 0"'
expect_code 0 $KB show mlp --json
json .record.kind == space
expect_code 1 $KB show no-such-id
expect_err "no record has id 'no-such-id'"
expect_code 2 $KB show
expect_code 2 $KB show a b

expect_code 0 $KB check --json
json .ok == true
json .runs == 20
expect_code 0 $KB check
expect_out "^ok: 4 tasks, 20 runs"

# --kb and KB_PATH both name the store
expect_code 0 env -u KB_PATH $KB stats --kb "$KB_PATH" --json
json .runs == 20
mkdir elsewhere && cd elsewhere
expect_code 1 env -u KB_PATH $KB stats
cd "$T"

# a read-only command on a store of an older schema migrates it first (a copy of the real v2
# fixture), instead of asking the user to open it read-write
cp -r "$SRC/tests/data/store_v2" v2
expect_code 0 $KB list tasks --kb v2
expect_out "wine"
expect_code 0 $KB stats --kb v2
expect_out "schema 4"

finish
