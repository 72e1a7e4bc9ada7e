#!/bin/bash
# kb watch: follows a file that another process appends to, a pipe, stops on the final line,
# on --timeout and on SIGINT (130); prints a line only when the judgement changes.
. "$(dirname "$0")/lib.sh"

# a run that improves, plateaus, then blows up: written in bursts by a background writer
awk 'BEGIN { for (t = 0; t <= 1200; t += 20) printf("{\"step\": %d, \"train_loss\": %.6f}\n", t, 0.3 + 2 * exp(-t / 100)); print "{\"step\": 1220, \"train_loss\": null}"; print "{\"final\": {}, \"status\": \"diverged\"}" }' > full.jsonl
: > run.jsonl
(
    # 63 lines in 7 bursts, with pauses longer than the poll interval
    for i in 0 1 2 3 4 5 6; do
        sed -n "$((i * 9 + 1)),$((i * 9 + 9))p" full.jsonl >> run.jsonl
        sleep 0.3
    done
) &
writer=$!
expect_code 0 "$KB" watch run.jsonl --interval-ms 50 --timeout 60 --config '{"base_lr": 0.1}'
wait "$writer"
expect_out '^step [0-9]+: green improving'
expect_out '^step [0-9]+: green converged'
expect_out '^step 1220: red overflow at step 1220 .*add clip_gradients 0.1'
# one line per change, not per point
n=$(wc -l < "$T/out")
[ "$n" -ge 3 ] && [ "$n" -le 6 ] || fail "expected 3-6 lines, got $n"

# JSON Lines, from a pipe that a slow writer feeds
expect_code 0 bash -c "for i in 0 1 2 3 4 5 6; do sed -n \"\$((i * 9 + 1)),\$((i * 9 + 9))p\" full.jsonl; sleep 0.2; done | '$KB' watch - --json"
jsonl 0.schema == kb.watch/1
jsonl 0.verdicts.0.kind == improving

last=$(($(wc -l < "$T/out") - 1))
jsonl "$last.light" == red
jsonl "$last.verdicts.0.kind" == overflow
jsonl "$last.step" == 1220

# a Caffe log through a pipe ends at "Optimization Done"
expect_code 0 bash -c "cat '$SRC/tests/data/curve/lenet_solver.log' | '$KB' watch - --format caffe"
expect_out '^step [0-9]+: green'

# a run that never ends: --timeout stops it (exit 0), SIGINT gives 130
head -20 full.jsonl > open.jsonl
expect_code 0 "$KB" watch open.jsonl --timeout 0.5 --interval-ms 50
expect_err 'stopped after 0.5 s'
"$KB" watch open.jsonl --interval-ms 50 > sig.out 2> sig.err &
pid=$!
sleep 0.5
kill -INT "$pid"
wait "$pid"
code=$?
[ "$code" = 130 ] || fail "SIGINT: exit $code, expected 130"
grep -q '^step' sig.out || fail "SIGINT: nothing printed before the interrupt"

# errors
expect_code 2 "$KB" watch
expect_code 2 "$KB" watch run.jsonl --interval-ms 0
expect_code 2 "$KB" watch run.jsonl --timeout -1
expect_code 1 "$KB" watch no-such-file.jsonl
expect_err "cannot open 'no-such-file.jsonl'"
expect_code 3 bash -c "printf 'junk\n' | '$KB' watch -"
expect_err 'no learning-curve values'
finish
