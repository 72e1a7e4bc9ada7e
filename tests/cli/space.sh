# kb space: show and sample designs from the bundled spaces.
. "$(dirname "$0")/lib.sh"
S="$SRC/datasets/spaces.jsonl"

expect_code 0 $KB space show svm --file "$S"
expect_out "^space svm: 5 parameters"
expect_out "gamma +float +\\[3.05176e-05, 8\\] log +default 0.1 +when kernel in \\{rbf, poly, sigmoid\\}"
expect_code 0 $KB space show mlp --file "$S" --json
json .name == mlp
json .params len== 10

expect_code 0 $KB space sample svm --file "$S" --n 20 --seed 4 --with-default
cp "$T/out" a.jsonl
[ "$(wc -l < a.jsonl)" = 21 ] || fail "expected 21 configurations"
jsonl 0.config.kernel == rbf
jsonl 0.config.C == 1
jsonl 0.config.gamma == 0.1
jsonl 0.config.degree missing
jsonl 20.i == 20
# conditions hold in every sampled configuration: degree only with poly, gamma never with linear
grep -q '"kernel":"linear"' a.jsonl || fail "20 Sobol points should include a linear kernel"
if grep '"kernel":"linear"' a.jsonl | grep -q '"gamma"'; then fail "gamma set for a linear kernel"; fi
if grep -v '"kernel":"poly"' a.jsonl | grep -q '"degree"'; then fail "degree set without poly"; fi
# same seed, same design; another seed, another design
expect_code 0 $KB space sample svm --file "$S" --n 20 --seed 4 --with-default
cmp -s a.jsonl "$T/out" || fail "same seed gave a different design"
expect_code 0 $KB space sample svm --file "$S" --n 20 --seed 5 --with-default
cmp -s a.jsonl "$T/out" && fail "another seed gave the same design"
expect_code 0 $KB space sample mlp --file "$S" --n 8 --design lhs
[ "$(wc -l < "$T/out")" = 8 ] || fail "lhs: expected 8 lines"

expect_code 2 $KB space sample svm --file "$S" --design grid
expect_err "unknown design 'grid'"
expect_code 2 $KB space sample svm --file "$S" --n -3
expect_code 2 $KB space frobnicate svm
expect_code 1 $KB space show nope --file "$S"
expect_err "no space named 'nope'"
expect_code 1 $KB space show svm --file does-not-exist.jsonl
expect_err "cannot read 'does-not-exist.jsonl'"
printf '{"kind":"space","name":"bad","params":[{"name":"x","type":"float","low":2,"high":1}]}\n' > bad.jsonl
expect_code 3 $KB space sample bad --file bad.jsonl
finish
