# Durability: an ingest killed with SIGKILL at random moments never leaves a broken store,
# never loses a batch it reported committed, and a rerun completes with the rest reported
# as duplicates.
. "$(dirname "$0")/lib.sh"
. "$SRC/tests/cli/gen_runs.sh"

tasks=20 per=1500
[ -n "${KB_SANITIZED:-}" ] && per=400
gen_runs $tasks $per 11 > big.jsonl
total=$((tasks + tasks * per))

seed=12345
for round in 1 2 3 4 5; do
    $KB ingest --progress --batch 1000 big.jsonl >/dev/null 2>progress.log &
    pid=$!
    # a pseudo-random delay between 0.05 and 1.2 s, different each round, same each run
    seed=$(( (seed * 1103515245 + 12345) % 2147483648 ))
    delay=$(awk -v s=$seed 'BEGIN { printf "%.2f", 0.05 + (s % 1000) / 1000 * 1.15 }')
    sleep "$delay"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    committed=$(grep -o 'committed [0-9]*' progress.log | tail -1 | awk '{print $2}')
    committed=${committed:-0}
    expect_code 0 $KB check --quiet
    expect_code 0 $KB stats --json
    have=$("$JC" "$T/out" .tasks print 2>/dev/null)
    runs=$("$JC" "$T/out" .runs print 2>/dev/null)
    [ -n "$have" ] || have=0
    [ -n "$runs" ] || runs=0
    present=$((have + runs))
    echo "round $round: killed after ${delay}s; reported committed $committed, present $present"
    [ "$present" -ge "$committed" ] || fail "round $round: $committed reported committed, only $present present"
    # whole batches only: what is present is a multiple of the batch size, or everything
    [ $((present % 1000)) = 0 ] || [ "$present" = "$total" ] || fail "round $round: $present is not whole batches"
    before=$present
done

expect_code 0 $KB ingest --json big.jsonl
json .accepted == $((total - before))
json .duplicate == $before
json .rejected == 0
expect_code 0 $KB check
expect_code 0 $KB stats --json
json .runs == $((tasks * per))
finish
