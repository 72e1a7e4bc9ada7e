#!/bin/bash
# Fine-tuning pieces of issue 7: finetune_cut (task cutting with domain shifts), kb train net
# --init-from under a new last stage, the bundled `finetune` space, make_backbones.sh usage.
. "$(dirname "$0")/lib.sh"

CUT=${KB_BUILD:-}/finetune_cut
if [ ! -x "$CUT" ]; then echo "skipped: no finetune_cut in \$KB_BUILD"; exit 0; fi

# A synthetic IDX set: 90 images 8x8, labels 0..2; class c lights up row band c (seeded LCG).
gen_idx() { # gen_idx PREFIX
    awk 'BEGIN {
        s = 5; n = 90;
        printf "\\000\\000\\010\\003\\000\\000\\000\\132\\000\\000\\000\\010\\000\\000\\000\\010";
        for (i = 0; i < n; i++) for (p = 0; p < 64; p++) {
            s = (s * 1103515245 + 12345) % 2147483648;
            v = int(s / 2147483648 * 60) + (int(p / 8) >= 2 * (i % 3) && int(p / 8) < 2 * (i % 3) + 3 ? 150 : 0);
            printf "\\%03o", v;
        } }' > img.esc
    awk 'BEGIN { printf "\\000\\000\\010\\001\\000\\000\\000\\132";
        for (i = 0; i < 90; i++) printf "\\%03o", i % 3 }' > lab.esc
    printf '%b' "$(cat img.esc)" > "$1-images-idx3-ubyte"
    printf '%b' "$(cat lab.esc)" > "$1-labels-idx1-ubyte"
}
gen_idx syn
expect_code 0 "$KB" features syn-images-idx3-ubyte
expect_out "90 rows x 64 features"

mkdir cut
expect_code 0 "$CUT" syn-images-idx3-ubyte cut a --classes 0,1,2 --train 20 --test 10 --seed 3
expect_out "^a 60 30$"
expect_code 0 "$CUT" syn-images-idx3-ubyte cut inv --classes 0,2 --train 30 --transform invert
expect_out "^inv 60 0$"
test -e cut/inv-test-images-idx3-ubyte.gz && fail "test part written without --test"
expect_code 0 "$CUT" syn-images-idx3-ubyte cut r --classes 1 --train 0 --transform rot90
expect_out "^r 30 0$"
# train and test parts are disjoint and together hold at most every row of each class
expect_code 0 "$KB" features cut/a-test-images-idx3-ubyte.gz
expect_out "30 rows x 64 features"
# inverting maps the pixel mean m to 255 - m
"$CUT" syn-images-idx3-ubyte cut plain --classes 0,2 --train 30 >/dev/null
mean() { "$KB" features "$1" --json | "$JC" - .features.img_pixel_mean print; }
m1=$(mean cut/plain-train-images-idx3-ubyte.gz) m2=$(mean cut/inv-train-images-idx3-ubyte.gz)
awk -v a="$m1" -v b="$m2" 'BEGIN { d = a + b - 255; exit !(d < 1e-9 && d > -1e-9) }' ||
    fail "inverted mean $m2 is not 255 - $m1"
# the same seed cuts the same task; another seed another one
"$CUT" syn-images-idx3-ubyte cut b --classes 0,1,2 --train 20 --test 10 --seed 3 >/dev/null
"$CUT" syn-images-idx3-ubyte cut c --classes 0,1,2 --train 20 --test 10 --seed 4 >/dev/null
cmp -s <(zcat cut/a-train-images-idx3-ubyte.gz) <(zcat cut/b-train-images-idx3-ubyte.gz) ||
    fail "same seed, different cut"
cmp -s <(zcat cut/a-train-images-idx3-ubyte.gz) <(zcat cut/c-train-images-idx3-ubyte.gz) &&
    fail "another seed, same cut"
expect_code 2 "$CUT" syn-images-idx3-ubyte cut x --classes 0 --transform shear
expect_code 1 "$CUT" missing-images-idx3-ubyte cut x --classes 0

# a backbone, fine-tuned under a new last stage
tr=cut/a-train-images-idx3-ubyte.gz te=cut/a-test-images-idx3-ubyte.gz
expect_code 0 "$KB" train net "$tr" --arch 'C(3,4)+P(2,2)+FC(8)' --set epochs=3 --seed 1 \
    --save-weights bb.kbw
expect_code 0 "$KB" train net "$tr" --test "$te" --init-from bb.kbw \
    --arch 'C(3,4)+P(2,2)+FC(8)+FC(6)' --set epochs=2 --freeze 1 --seed 2
expect_err "2 backbone layers loaded under the new last stage '\+FC\(6\)'"
tail -n 1 "$T/out" > fin.json
"$JC" fin.json .arch == 'C(3,4)+P(2,2)+FC(8)+FC(6)' || fail "extended arch"
"$JC" fin.json .final.test_accuracy type number || fail "test accuracy"
expect_code 2 "$KB" train net "$tr" --init-from bb.kbw --arch 'C(3,5)+P(2,2)+FC(8)+FC(6)' \
    --set epochs=1
expect_err "does not match the start of"

# the joint fine-tune space ships with kb
expect_code 0 "$KB" space show finetune --file "$SRC/datasets/spaces.jsonl"
expect_out "space finetune: 11 parameters"
expect_out "backbone +categorical +\{none\} +default none"
expect_out "head_units +int +\[16, 256\] log +default 64 +when head_layers in \{1, 2\}"
expect_out "stepsize .* when lr_policy in \{step\}"
expect_code 0 "$KB" space sample finetune --file "$SRC/datasets/spaces.jsonl" --n 5 --with-default
jsonl 0.config.max_iter == 150

# finetune_trial.sh: a configuration as a kb train net run; --checkpoint-dir resumes a
# promoted trial (budget 8 then 20) to the weights of one run of 20
FT=$SRC/tools/backbones/finetune_trial.sh
cfg='{"backbone":"none","base_lr":0.01,"freeze":0,"head_layers":1,"head_units":5,"lr_policy":"fixed","max_iter":150,"momentum":0.9,"weight_decay":0.0005}'
ft() { "$FT" --kb-bin "$KB" --train "$tr" --arch 'C(3,4)+P(2,2)+FC(8)' --config "$cfg" "$@"; }
expect_code 0 ft --checkpoint-dir ck -- --seed 1 --quiet --save-weights p.kbw --set max_iter=8
tail -n 1 "$T/out" > fin.json
"$JC" fin.json .arch == 'C(3,4)+P(2,2)+FC(8)+FC(5)' || fail "head appended"
"$JC" fin.json .config.optimizer == momentum || fail "momentum fixed"
expect_code 0 ft --checkpoint-dir ck -- --seed 1 --quiet --save-weights p.kbw --set max_iter=20
tail -n 1 "$T/out" > fin.json
"$JC" fin.json .resumed_from == 8 || fail "promotion did not resume"
expect_code 0 ft -- --seed 1 --quiet --save-weights one.kbw --set max_iter=20
cmp -s p.kbw one.kbw || fail "resumed promotion differs from one run"
expect_code 0 ft --checkpoint-dir ck -- --seed 1 --quiet --save-weights p.kbw --set max_iter=4
tail -n 1 "$T/out" > fin.json
"$JC" fin.json .iteration == 4 || fail "a smaller budget trains from the start"
expect_code 2 "$FT" --kb-bin "$KB" --train "$tr"
expect_err "need --train and --config"

# make_backbones.sh: usage errors before any work
expect_code 0 "$SRC/tools/backbones/make_backbones.sh" --help
expect_out "Source tasks"
expect_code 2 "$SRC/tools/backbones/make_backbones.sh" --kb-bin "$KB"
expect_err "missing --kb"
expect_code 2 "$SRC/tools/backbones/make_backbones.sh" --kb x --bogus 1
expect_err "unknown option"
finish
