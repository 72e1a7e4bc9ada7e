#!/bin/bash
# kb train net --snapshot / --resume: 4 epochs then 6 more equals 10 in one go, bit for bit
# (curve lines and saved weights), on a validation split and with --test; a snapshot refuses
# other data, another split seed, another optimizer and a run with nothing left to train.
. "$(dirname "$0")/lib.sh"

if ! "$KB" train net --help 2>/dev/null | grep -q -- --resume; then
    echo "skipped: this kb has no 'train net --resume'"; exit 0
fi

gen() { # gen N SEED
    awk -v n="$1" -v seed="$2" 'BEGIN {
        s = seed; print "x1,x2,x3,target";
        for (i = 0; i < n; i++) {
            c = i % 3;
            s = (s * 1103515245 + 12345) % 2147483648; u1 = s / 2147483648;
            s = (s * 1103515245 + 12345) % 2147483648; u2 = s / 2147483648;
            printf "%.4f,%.4f,%.4f,k%d\n", (c == 1) + u1, (c == 2) + u2, u1 * u2, c;
        } }'
}
gen 150 7 > train.csv
gen 60 8 > test.csv
cfg='{"optimizer": "momentum", "base_lr": 0.05, "dropout": 0.2, "lr_policy": "step",
      "stepsize": 20, "gamma": 0.7, "batch_size": 16, "test_interval": 7}'
net() { "$KB" train net train.csv --arch 'FC(16)+FC(8)' --config "$cfg" --seed 4 "$@"; }
curve() { grep -v '"final"' "$1"; }

expect_code 0 net --set epochs=10 --save-weights full.kbw
cp "$T/out" full.out
expect_code 0 net --set epochs=4 --snapshot s4.kbs --save-weights part.kbw
cp "$T/out" part.out
test -s s4.kbs || fail "no snapshot written"
test -e s4.kbs.tmp && fail "temporary snapshot left behind"
expect_code 0 net --set epochs=10 --resume s4.kbs --save-weights resumed.kbw --snapshot s10.kbs
cp "$T/out" resumed.out
cmp -s full.kbw resumed.kbw || fail "resumed weights differ from one run's"
cmp -s part.kbw full.kbw && fail "the 4-epoch weights equal the 10-epoch ones"
# the resumed curve is exactly the one-go curve after epoch 4 (the 4-epoch run adds its own
# end point when 4 epochs are not a multiple of test_interval)
n_resumed=$(curve resumed.out | wc -l)
curve full.out | tail -n "$n_resumed" > want.txt
curve resumed.out > got.txt
cmp -s want.txt got.txt || { fail "resumed curve differs"; diff want.txt got.txt | head >&2; }
tail -n 1 resumed.out > "$T/out"
json .resumed_from == 32   # 120 training rows, batches of 16: 8 per epoch
json .iteration == 80
json .final.epochs == 10
json .status == ok
tail -n 1 full.out > full.final
for k in .final.val_accuracy .final.val_loss .final.train_loss; do
    v=$("$JC" full.final "$k" print 2>/dev/null) || { fail "no $k"; continue; }
    json "$k" == "$v"
done
# resume a resumed run again: 10 -> 12 equals 12 in one go
expect_code 0 net --set epochs=12 --resume s10.kbs --save-weights r12.kbw
expect_code 0 net --set epochs=12 --save-weights f12.kbw
cmp -s r12.kbw f12.kbw || fail "second resume differs"
# --arch may be left out: the snapshot has it
expect_code 0 "$KB" train net train.csv --config "$cfg" --seed 4 --set epochs=5 --resume s4.kbs
# with --test instead of a split
expect_code 0 net --test test.csv --set epochs=6 --save-weights t6.kbw
expect_code 0 net --test test.csv --set epochs=2 --snapshot t2.kbs
expect_code 0 net --test test.csv --set epochs=6 --resume t2.kbs --save-weights t6r.kbw
cmp -s t6.kbw t6r.kbw || fail "resume with --test differs"
json_last() { tail -n 1 "$T/out" > "$T/last"; "$JC" "$T/last" "$@" || fail "final $*"; }
json_last .final.test_accuracy type number

# refusals: usage errors (exit 2) with the reason
expect_code 2 net --set epochs=10 --resume t2.kbs
expect_err "trained on data"
expect_code 2 "$KB" train net train.csv --arch 'FC(16)+FC(8)' --config "$cfg" --seed 5 \
    --set epochs=10 --resume s4.kbs
expect_err "trained on data"
expect_code 2 net --set epochs=10 --set optimizer=adam --resume s4.kbs
expect_err "momentum state"
expect_code 2 net --set epochs=4 --resume s4.kbs
expect_err "nothing to train"
expect_code 2 net --set epochs=10 --arch 'FC(4)' --resume s4.kbs
expect_err "architecture"
expect_code 2 net --set epochs=10 --resume s4.kbs --init-from full.kbw
expect_err "exclude"
# not a snapshot, a corrupt one, a missing one
expect_code 3 net --set epochs=10 --resume full.kbw
expect_err "not a kb snapshot"
cp s4.kbs bad.kbs
printf 'X' | dd of=bad.kbs bs=1 seek=200 conv=notrunc 2>/dev/null
expect_code 1 net --set epochs=10 --resume bad.kbs
expect_err "checksum"
expect_code 1 net --set epochs=10 --resume missing.kbs
expect_err "missing.kbs"
# --checkpoint: the first run starts and writes the file, the next continues it (bit for bit
# the one-go run), a run that cannot continue it starts afresh with a note and rewrites it
expect_code 0 net --set epochs=4 --checkpoint ck.kbs
test -s ck.kbs || fail "--checkpoint wrote nothing"
expect_code 0 net --set epochs=10 --checkpoint ck.kbs --save-weights ck10.kbw
cmp -s full.kbw ck10.kbw || fail "--checkpoint continuation differs from one run"
tail -n 1 "$T/out" > "$T/last"
"$JC" "$T/last" .resumed_from == 32 || fail "checkpoint not resumed from iteration 32"
expect_code 0 net --set epochs=6 --checkpoint ck.kbs --save-weights ck6.kbw
expect_err "not resuming from checkpoint 'ck.kbs': .*nothing to train"
expect_code 0 net --set epochs=6 --save-weights f6.kbw
cmp -s ck6.kbw f6.kbw || fail "restart after an unusable checkpoint differs from a fresh run"
expect_code 0 net --set epochs=8 --set optimizer=adam --checkpoint ck.kbs --quiet
if [ -s "$T/err" ]; then fail "--quiet still printed the checkpoint note"; fi
printf 'not a snapshot' > junk.kbs
expect_code 0 net --set epochs=1 --checkpoint junk.kbs
expect_err "not resuming from checkpoint 'junk.kbs': .*not a kb snapshot"
test "$(head -c 14 junk.kbs)" = "not a snapshot" && fail "the unusable checkpoint was not rewritten"
expect_code 2 net --set epochs=1 --checkpoint ck.kbs --resume s4.kbs
expect_err "give it alone"
expect_code 2 "$KB" train net train.csv --checkpoint ck.kbs
expect_err "needs --arch"
finish
