# kb train / kb train svm: dispatch, help, the trial protocol (JSON Lines), exit codes.
. "$(dirname "$0")/lib.sh"

# two numeric features and a categorical one; class b sits at +3 on both numeric features
awk 'BEGIN {
    print "x1,x2,colour,target"
    for (i = 0; i < 80; i++) {
        c = i % 2; n1 = sin(i * 1.7); n2 = cos(i * 2.3)
        printf "%.4f,%.4f,%s,%s\n", n1 + 3 * c, n2 + 3 * c, (i % 3 == 0 ? "red" : "blue"), (c ? "b" : "a")
    }
}' >cls.csv
# regression: y = 5 x1 - 2 x2 + small noise
awk 'BEGIN {
    print "x1,x2,y"
    for (i = 0; i < 120; i++) {
        x1 = sin(i * 0.37) * 2; x2 = cos(i * 0.91)
        printf "%.4f,%.4f,%.4f\n", x1, x2, 5 * x1 - 2 * x2 + 0.1 * sin(i * 7.1)
    }
}' >reg.csv
# one class has 3 members: the fold count drops to 3 with a warning
awk 'BEGIN { print "x,target"; for (i = 0; i < 40; i++) printf "%d,%s\n", i, (i < 3 ? "rare" : "common") }' >rare.csv
printf 'x,target\n1,a\n2,a\n3,a\n4,a\n' >one.csv
printf 'x,target\n1,a\n2,b,7\n' >ragged.csv

# dispatch and help
expect_code 0 "$KB" train --help
expect_out '^  svm '
expect_out '^  net '
expect_code 0 "$KB" help train
expect_out 'Workloads: svm'
expect_code 2 "$KB" train
expect_err 'missing WORKLOAD'
expect_code 2 "$KB" train nosuch
expect_err "'nosuch' is not a workload"
expect_code 0 "$KB" train svm --help
expect_out '^usage: kb train svm DATASET'
expect_out 'class_weight'

# classification, JSON Lines: 5 fold lines then the final line
expect_code 0 "$KB" train svm cls.csv --json --seed 1
jsonl 0.step == 1
jsonl 4.step == 5
jsonl 0.accuracy '>=' 0
jsonl 5.schema == kb.train.svm/1
jsonl 5.status == ok
jsonl 5.final.accuracy '>=' 0.95
jsonl 5.final.log_loss missing
jsonl 5.cost_s ">=" 0
jsonl 5.cv_cpu_s ">=" 0
jsonl 5.n_folds == 5
jsonl 5.n_features == 4
jsonl 5.model.svm_type == c_svc
jsonl 5.model.gamma == 0.25
sed 's/"cost_s":[^,]*,"cv_s":[^,]*,"cv_cpu_s":[^,]*,//' "$T/out" >run1.jsonl

# the same seed gives the same output (timings aside)
expect_code 0 "$KB" train svm cls.csv --json --seed 1
sed 's/"cost_s":[^,]*,"cv_s":[^,]*,"cv_cpu_s":[^,]*,//' "$T/out" >run2.jsonl
cmp -s run1.jsonl run2.jsonl || fail "same seed, different output"

# probability estimates, a test split, a configuration in JSON plus an override
expect_code 0 "$KB" train svm cls.csv --json --config '{"kernel": "linear", "C": 2}' \
    --set probability=true --set C=0.5 --test-fraction 0.25 --folds 3 --seed 4
jsonl 3.final.log_loss '>' 0
jsonl 3.final.test_accuracy '>=' 0.9
jsonl 3.final.test_log_loss '>' 0
jsonl 3.n_test == 20
jsonl 3.model.kernel == linear
jsonl 3.model.C == 0.5
jsonl 3.config.probability == true
echo '{"svm_type": "nu_svc", "nu": 0.3}' >cfg.json
expect_code 0 "$KB" train svm cls.csv --json --config cfg.json
jsonl 5.model.svm_type == nu_svc

# svmlight input: libsvm's heart_scale, already scaled (5-fold CV accuracy about 0.83)
expect_code 0 "$KB" train svm "$SRC/tests/data/heart_scale.svm" --set scale=none --json
jsonl 5.n_features == 13
jsonl 5.final.accuracy '>' 0.78
jsonl 5.final.accuracy '<' 0.88

# --max-rows: a seeded sample of the rows (0 or more than there are: all of them)
expect_code 0 "$KB" train svm cls.csv --json --max-rows 40 --seed 2
jsonl 5.n_rows == 40
jsonl 0.n_train == 32
expect_code 0 "$KB" train svm cls.csv --json --max-rows 0
jsonl 5.n_rows == 80
expect_code 0 "$KB" train svm cls.csv --json --max-rows 1000
jsonl 5.n_rows == 80
expect_code 2 "$KB" train svm cls.csv --max-rows -5

# text output
expect_code 0 "$KB" train svm cls.csv --set kernel=poly --set degree=2
expect_out '^fold 1/5: accuracy'
expect_out 'cross-validation on 80 rows: accuracy'

# regression: epsilon-SVR by default
expect_code 0 "$KB" train svm reg.csv --target y --json --set C=10
jsonl 5.task == regression
jsonl 5.final.r2 '>' 0.9
jsonl 5.final.rmse '>' 0
jsonl 5.final.accuracy missing
jsonl 5.model.svm_type == epsilon_svr

# a class smaller than the fold count: fewer folds and a warning, never a crash
expect_code 0 "$KB" train svm rare.csv --json
expect_err "warning: class 'rare' has 3 members, fewer than 5 folds: using 3 folds"
jsonl 3.n_folds == 3
expect_code 0 "$KB" train svm rare.csv --json --quiet
[ -s "$T/err" ] && fail "--quiet still printed warnings"

# bad configuration: exit 2, naming the parameter
expect_code 2 "$KB" train svm cls.csv --set C=-1
expect_err "^kb train svm: param 'C': must be > 0"
expect_code 2 "$KB" train svm cls.csv --set kernel=gaussian
expect_err "param 'kernel': expected one of linear, poly, rbf, sigmoid, got 'gaussian'"
expect_code 2 "$KB" train svm cls.csv --set gama=0.1
expect_err "param 'gama': unknown svm parameter"
expect_code 2 "$KB" train svm cls.csv --set svm_type=epsilon_svr
expect_err "param 'svm_type'"
expect_code 2 "$KB" train svm cls.csv --set class_weight.c=2
expect_err "param 'class_weight.c': no class 'c'"
expect_code 2 "$KB" train svm cls.csv --config '{"C": [1]}'
expect_err "param 'C': expected a number, string or bool"
expect_code 2 "$KB" train svm cls.csv --config '{"C": 1'
expect_err 'expected a JSON object'
expect_code 2 "$KB" train svm cls.csv --config no-such-config.json
expect_err "^kb train svm: --config: cannot open 'no-such-config.json'"
expect_code 2 "$KB" train svm cls.csv --set C
expect_err "expected KEY=VALUE"
[ -s "$T/out" ] && fail "a failed run printed to stdout"

# usage errors
expect_code 2 "$KB" train svm
expect_err 'missing DATASET'
expect_code 2 "$KB" train svm cls.csv --folds 1
expect_err "'--folds': must be at least 2"
expect_code 2 "$KB" train svm cls.csv --test-fraction 1.5
expect_err "'--test-fraction'"
expect_code 2 "$KB" train svm cls.csv --task-type ranking
expect_code 2 "$KB" train svm cls.csv --bogus

# bad data: exit 3
expect_code 3 "$KB" train svm one.csv
expect_err "single class 'a'"
expect_code 3 "$KB" train svm ragged.csv
expect_err "ragged.csv"
expect_code 1 "$KB" train svm missing.csv
expect_err "missing.csv"

finish
