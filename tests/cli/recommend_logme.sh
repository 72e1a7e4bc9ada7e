#!/bin/bash
# kb recommend --transfer logme: compatible backbones scored on the query dataset itself
# (LogME of their penultimate features) and ranked by it; unscorable ones warned about.
. "$(dirname "$0")/lib.sh"

if ! "$KB" train net --help >/dev/null 2>&1; then
    echo "skipped: this kb has no 'train net' workload"; exit 0
fi

# three classes, one informative column, one nuisance column
awk 'BEGIN { s = 5; print "a,b,target";
    for (i = 0; i < 120; i++) { c = i % 3;
        s = (s * 1103515245 + 12345) % 2147483648;
        printf "%.4f,%.4f,%s\n", c + s / 2147483648, i % 7, (c == 0 ? "no" : c == 1 ? "yes" : "maybe") } }' > d.csv
expect_code 0 "$KB" train net d.csv --arch 'FC(6)' --set epochs=3 --save-weights trained.kbw --quiet
expect_code 0 "$KB" train net d.csv --arch 'FC(6)' --set epochs=1 --set base_lr=0.0001 \
    --save-weights barely.kbw --quiet
expect_code 0 "$KB" init
expect_code 0 "$KB" ingest "$SRC/datasets/spaces.jsonl"
expect_code 0 "$KB" backbone add trained.kbw --source-task t-a --id b-trained
expect_code 0 "$KB" backbone add barely.kbw --source-task t-b --id b-barely
cp barely.kbw gone.kbw
expect_code 0 "$KB" backbone add gone.kbw --source-task t-c --id b-gone
rm gone.kbw

expect_code 0 "$KB" recommend d.csv --space svm --json
expect_err "scoring 3 compatible backbones on 'd.csv' \\(LogME\\)"
expect_err "warning: backbone b-gone not scored: cannot open '.*gone.kbw'"
json .backbones len== 3
json .backbones.0.transferability type number
json .backbones.1.transferability type number
json .backbones.2.backbone == b-gone
json .backbones.2.transferability == null
# no fine-tune runs anywhere: the LogME score alone orders the scored ones (min-max scaled)
json .backbones.0.score == 1
json .backbones.1.score == 0
t0=$("$JC" "$T/out" .backbones.0.transferability print)
t1=$("$JC" "$T/out" .backbones.1.transferability print)
awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(a > b && a < 0 && b > -10) }' ||
    fail "transferability not ordered or out of range: $t0 $t1"
cp "$T/out" first.json
# deterministic, and the text table has the column
expect_code 0 "$KB" recommend d.csv --space svm --json --quiet
cmp -s "$T/out" first.json || fail "two runs differ"
expect_code 0 "$KB" recommend d.csv --space svm --quiet
expect_out '^  rank backbone +basis +score +expected +\+- +tasks +LogME'
expect_out "^  3 +b-gone +source +0.000 +- +- +0 +- "
# a seeded subset of the rows gives another, still deterministic, score
expect_code 0 "$KB" recommend d.csv --space svm --json --quiet --transfer-rows 40
s1=$("$JC" "$T/out" .backbones.0.transferability print)
expect_code 0 "$KB" recommend d.csv --space svm --json --quiet --transfer-rows 40
s2=$("$JC" "$T/out" .backbones.0.transferability print)
[ "$s1" = "$s2" ] || fail "--transfer-rows not deterministic: $s1 vs $s2"
[ "$s1" != "$t0" ] || fail "--transfer-rows 40 read every row"

# --transfer none: the knowledge base alone (source-task guesses, all equal here)
expect_code 0 "$KB" recommend d.csv --space svm --json --transfer none
json .backbones.0.transferability == null
json .backbones.1.transferability == null
if grep -q 'LogME' "$T/err"; then fail "--transfer none still scored"; fi

# bad input
expect_code 2 "$KB" recommend d.csv --space svm --transfer frob
expect_err "--transfer takes logme or none, not 'frob'"
expect_code 2 "$KB" recommend d.csv --space svm --transfer-rows 1
expect_err 'transfer-rows must be at least 2'
expect_code 2 "$KB" recommend d.csv --space svm --transfer-rows x

finish
