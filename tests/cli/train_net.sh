#!/bin/bash
# kb train net: the learning-curve protocol on CSV data, backbones (save, fine-tune with a
# replaced output layer and frozen layers), divergence, and every kind of bad input.
. "$(dirname "$0")/lib.sh"

if ! "$KB" train net --help >/dev/null 2>&1; then
    echo "skipped: this kb has no 'train net' workload"; exit 0
fi

# Deterministic data: 3 classes, two numeric features, one categorical, some missing values.
# An LCG keeps it identical on every machine.
gen() { # gen N SEED CLASSES
    awk -v n="$1" -v seed="$2" -v k="$3" 'BEGIN {
        s = seed; print "x1,x2,colour,target";
        for (i = 0; i < n; i++) {
            c = i % k;
            s = (s * 1103515245 + 12345) % 2147483648; u1 = s / 2147483648;
            s = (s * 1103515245 + 12345) % 2147483648; u2 = s / 2147483648;
            x1 = (c == 1 ? 2 : 0) + u1; x2 = (c == 2 ? 2 : 0) + u2;
            col = (c == 0 ? "red" : (u1 < 0.5 ? "green" : "blue"));
            if (i % 17 == 0) x2 = "";
            printf "%.4f,%s,%s,class%d\n", x1, x2, col, c;
        } }'
}
gen 240 7 3 > train.csv
gen 90 8 3 > test.csv
gen 200 9 2 > two.csv

final() { tail -n 1 "$T/out" > "$T/final"; "$JC" "$T/final" "$@" || fail "final $*"; }

# learning curve and final line on a validation split
expect_code 0 "$KB" train net train.csv --arch 'FC(16)' --set epochs=30 --set test_interval=50 \
    --set optimizer=adam --set base_lr=0.01 --seed 3
jsonl 0.step == 50
jsonl 0.epoch type number
jsonl 0.lr == 0.01
jsonl 0.train_loss type number
jsonl 0.val_loss type number
jsonl 0.val_accuracy type number
jsonl 0.weight_norm '>' 0
jsonl 0.grad_norm type number
jsonl 0.nonfinite_weights == 0
final .status == ok
final .final.val_accuracy '>' 0.8
final .final.epochs == 30
final .arch == 'FC(16)'
final .schema == kb.train.net/1
cp "$T/out" first.out
# the same seed gives the same output (timings aside)
expect_code 0 "$KB" train net train.csv --arch 'FC(16)' --set epochs=30 --set test_interval=50 \
    --set optimizer=adam --set base_lr=0.01 --seed 3
grep -v final first.out > a.txt; grep -v final "$T/out" > b.txt
cmp -s a.txt b.txt || fail "same seed, different curve"

# --config as inline JSON and as a file, --test with its own level/class numbering
echo '{"optimizer": "nesterov", "base_lr": 0.05, "epochs": 20, "lr_policy": "step",
       "stepsize": 50, "gamma": 0.5, "weight_decay": 0.0005, "lr_mult": [1, 1]}' > cfg.json
expect_code 0 "$KB" train net train.csv --test test.csv --arch 'FC(8)+FC(8)' --config cfg.json
final .status == ok
final .final.test_accuracy '>' 0.8
jsonl 0.lr == 0.05

# backbone: save, then fine-tune on a 2-class task with the first layer frozen
expect_code 0 "$KB" train net train.csv --arch 'FC(12)+FC(6)' --set epochs=5 --save-weights bb.kbw
[ -s bb.kbw ] || fail "no weights file"
expect_code 0 "$KB" train net two.csv --init-from bb.kbw --freeze 1 --set epochs=5
expect_err 'output layer replaced'
final .status == ok
final .arch == 'FC(12)+FC(6)'
expect_code 2 "$KB" train net two.csv --init-from bb.kbw --arch 'FC(12)' --set epochs=1
expect_err 'does not match'
# corrupt weights: a flipped byte near the end is caught by the checksum
cp bb.kbw bad.kbw
printf 'X' | dd of=bad.kbw bs=1 seek=100 conv=notrunc 2>/dev/null
expect_code 1 "$KB" train net two.csv --init-from bad.kbw --set epochs=1
expect_err 'checksum'
head -c 30 bb.kbw > cut.kbw
expect_code 3 "$KB" train net two.csv --init-from cut.kbw --set epochs=1
expect_err 'truncated'
echo 'not weights at all' > junk.kbw
expect_code 3 "$KB" train net two.csv --init-from junk.kbw --set epochs=1
expect_err 'bad magic'

# a far too high learning rate diverges; clipping keeps the same run finite
expect_code 0 "$KB" train net train.csv --arch 'FC(32)+FC(32)' --set optimizer=momentum \
    --set base_lr=50 --set max_iter=200 --set test_interval=10
final .status == diverged
final .iteration '<' 200
expect_err 'diverged at iteration'
grep -qiE 'nan|inf' "$T/out" && fail "non-finite number printed"
expect_code 0 "$KB" train net train.csv --arch 'FC(32)+FC(32)' --set optimizer=momentum \
    --set base_lr=50 --set max_iter=200 --set test_interval=10 --set clip_gradients=1
final .status == ok
final .final.train_loss type number

# regression: val_rmse instead of accuracy
awk -F, 'NR == 1 { print "x1,colour,y"; next } { print $1 "," $3 "," ($2 == "" ? 1 : 3 * $2 + 1) }' \
    train.csv > reg.csv
expect_code 0 "$KB" train net reg.csv --arch 'FC(8)' --set epochs=10 --set optimizer=adam
final .final.val_rmse type number
final .final.val_accuracy missing

# bad input, each with its own exit code and message
expect_code 2 "$KB" train net train.csv --arch 'FC(8' --set epochs=1
expect_err "arch 'FC\(8': at 5: expected"
expect_code 2 "$KB" train net train.csv --arch 'C(3,8)+FC(8)' --set epochs=1
expect_err 'FC layers only'
expect_code 2 "$KB" train net train.csv --arch 'FC(8)' --set nosuch=1
expect_err "config 'nosuch': unknown key"
expect_code 2 "$KB" train net train.csv --arch 'FC(8)' --set optimizer=lbfgs
expect_err 'one of sgd'
expect_code 2 "$KB" train net train.csv --arch 'FC(8)' --config '{"epochs": '
expect_err 'JSON object'
expect_code 2 "$KB" train net train.csv --set epochs=1
expect_err 'missing --arch'
expect_code 2 "$KB" train net --arch 'FC(8)'
expect_err 'missing DATASET'
expect_code 2 "$KB" train net train.csv --arch 'FC(8)' --val-fraction 1.5
expect_err 'val-fraction'
expect_code 1 "$KB" train net nosuch.csv --arch 'FC(8)'
expect_err 'nosuch.csv'
cut -d, -f1,2,4 test.csv > narrow.csv
expect_code 3 "$KB" train net train.csv --test narrow.csv --arch 'FC(8)' --set epochs=1
expect_err 'differ'
expect_code 0 "$KB" train net --help
expect_out 'C\(k,n\)'

finish
