# kb recommend: neighbours, ranked configurations with uncertainty, JSON, bad input.
. "$(dirname "$0")/lib.sh"
D="$SRC/datasets"

expect_code 0 $KB ingest "$D/spaces.jsonl"
for ds in iris wine zoo haberman; do
    expect_code 0 $KB add-task "$D/$ds.csv.gz" --name "$ds" --groups general,statistical,info --json
    eval "id_$ds=\$("$JC" "$T/out" .id print)"
done
# a shared design of 4 svm configurations; config 2 is best on iris, wine and zoo, config 3
# on haberman, config 0 worst everywhere
run() { # task config-index accuracy
    case $2 in
        0) cfg='{"kernel":"linear","C":0.03125}' ;;
        1) cfg='{"kernel":"rbf","C":1.0,"gamma":0.1}' ;;
        2) cfg='{"kernel":"rbf","C":100.0,"gamma":0.01}' ;;
        3) cfg='{"kernel":"poly","C":10.0,"gamma":0.5,"degree":3,"coef0":0.0}' ;;
    esac
    printf '{"kind":"run","id":"r-%s-%s","task_id":"%s","space":"svm","config":%s,"status":"ok","objective":"accuracy","direction":"maximize","metrics":{"accuracy":%s}}\n' "$1" "$2" "$1" "$cfg" "$3"
}
{
    run "$id_iris" 0 0.50; run "$id_iris" 1 0.90; run "$id_iris" 2 0.97; run "$id_iris" 3 0.80
    run "$id_wine" 0 0.40; run "$id_wine" 1 0.93; run "$id_wine" 2 0.98; run "$id_wine" 3 0.70
    run "$id_zoo" 0 0.40; run "$id_zoo" 1 0.80; run "$id_zoo" 2 0.97; run "$id_zoo" 3 0.85
    run "$id_haberman" 0 0.60; run "$id_haberman" 1 0.70; run "$id_haberman" 2 0.65; run "$id_haberman" 3 0.75
} > runs.jsonl
expect_code 0 $KB ingest runs.jsonl

# iris held out: its nearest task is wine (3 balanced classes); config 2 comes first
expect_code 0 $KB recommend --task "$id_iris" --space svm --top 3 --json
json .schema == kb.recommend/1
json .tasks == 3
json .configurations == 4
json .neighbors.0.name == wine
json .neighbors.0.closest_features len== 3
json .recommendations len== 3
json .recommendations.0.config.C == 100
json .recommendations.0.config.kernel == rbf
json .recommendations.0.predicted_score ">=" 0
json .recommendations.0.predicted_score "<=" 1
json .recommendations.0.sd ">=" 0
json .recommendations.0.coverage == 1
# three knowledge-base tasks that rank the four configurations differently: the similarity
# model finds no signal (signal 0), so every task weighs 1/3 and the first prediction is the
# plain mean of the normalised scores, (1 + 1 + 1/3) / 3 (haberman: 0.65 in [0.60, 0.75])
json .weighting.model == gp-laplace-l1
json .weighting.signal == 0
json .weighting.bandwidth == 0.25
json .weighting.hedge == 1
# the whole-knowledge-base check (each stored task as the query, the other two its knowledge
# base): with signal 0 the model's weights are the uniform ones, so no signal, uniform weights.
# By hand: first picks poly for wine (0.517 of its range), rbf C=1 for zoo (0.702), rbf C=100
# for haberman (0.333): mean first-pick regret (0.483 + 0.298 + 0.667) / 3 = 0.4826; the
# lists reach each task's best at item 2, 3, 3: (0.483 + (0.298 + 0.211) + (0.667 + 0.333))
# / 10 / 3 = 0.0664 over list lengths 1..10
json .weighting.weights == uniform
json .weighting.check.tasks == 3
json .weighting.check.uniform_first ">=" 0.4825
json .weighting.check.uniform_first "<=" 0.4826
json .weighting.check.model_first ">=" 0.4825
json .weighting.check.model_first "<=" 0.4826
json .weighting.check.uniform_regret ">=" 0.0663
json .weighting.check.uniform_regret "<=" 0.0664
json .neighbors.0.weight == 0.33333333333333331
json .neighbors.2.weight == 0.33333333333333331
json .recommendations.0.predicted_score == 0.77777777777777779
json .recommendations.1.config.kernel == poly
# the worst configuration everywhere is never in a 3-item list
"$JC" "$T/out" .recommendations print | grep -q '0.03125' && fail "the worst configuration was recommended"
expect_code 0 $KB recommend --task "$id_iris" --space svm
expect_out "^nearest tasks \\(of 3 with runs in space 'svm'\\)"
expect_out "^  1 +"
expect_out "^task weights from the similarity model fitted on the knowledge base: signal 0 "
expect_out "^whole-knowledge-base check on 3 tasks .*; weights: uniform$"
# a dataset file: the same meta-features as the stored task, so it is the nearest itself
expect_code 0 $KB recommend "$D/iris.csv.gz" --space svm --groups general,statistical,info --json
json .neighbors.0.name == iris
json .neighbors.0.distance == 0
# --held-out leaves the dataset's own task out: wine is the nearest again
expect_code 0 $KB recommend "$D/iris.csv.gz" --space svm --groups general,statistical,info --held-out --json
json .tasks == 3
json .neighbors.0.name == wine
# --configs: the configurations alone, one JSON object per line
expect_code 0 $KB recommend --task "$id_iris" --space svm --top 2 --configs
[ "$(wc -l < "$T/out")" = 2 ] || fail "--configs --top 2: expected 2 lines"
jsonl 0.C == 100
jsonl 0.kernel == rbf
expect_code 2 $KB recommend --task "$id_iris" --space svm --held-out
# excluding a neighbour leaves the others
expect_code 0 $KB recommend --task "$id_iris" --exclude "$id_wine" --space svm --json
json .tasks == 2

# a regression task is not a neighbour of a classification one: its results are incomparable
expect_code 0 $KB add-task "$D/concrete.csv.gz" --name concrete --groups general,statistical,info --json
id_concrete=$("$JC" "$T/out" .id print)
printf '{"kind":"run","id":"r-concrete-1","task_id":"%s","space":"svm","config":{"kernel":"linear","C":0.03125},"status":"ok","objective":"rmse","direction":"minimize","metrics":{"rmse":3.0}}\n' "$id_concrete" > reg.jsonl
expect_code 0 $KB ingest reg.jsonl
expect_code 0 $KB recommend --task "$id_iris" --space svm --json
json .tasks == 3
json .objective == accuracy
expect_code 1 $KB recommend --task "$id_concrete" --space svm
expect_err "no stored task with meta-features has ok runs in space 'svm'"

# backbones: three with the test signature (bb-c never fine-tuned), one of another signature;
# fine-tune runs do not change the configurations
{
    for b in "bb-a $id_wine" "bb-b $id_zoo" "bb-c $id_haberman" "bb-x $id_zoo"; do
        set -- $b
        sig=tabular:test; [ "$1" = bb-x ] && sig=image:1x28x28
        printf '{"kind":"backbone","id":"%s","family":"kb-net","arch":"FC(8)","input_signature":"%s","source_task":"%s","uri":"file:///%s.kbw"}\n' "$1" "$sig" "$2" "$1"
    done
    ft() { # id task backbone accuracy
        printf '{"kind":"run","id":"%s","task_id":"%s","backbone_id":"%s","config":{},"status":"ok","objective":"val_accuracy","direction":"maximize","metrics":{"val_accuracy":%s}}\n' "$1" "$2" "$3" "$4"
    }
    ft ft1 "$id_wine" bb-a 0.95; ft ft2 "$id_wine" bb-b 0.90; ft ft3 "$id_zoo" bb-a 0.80
    ft ft4 "$id_zoo" bb-b 0.85; ft ft5 "$id_haberman" bb-a 0.70; ft ft6 "$id_zoo" bb-x 0.99
    ft ft7 "$id_wine" bb-a 0.91
} > backbones.jsonl
expect_code 0 $KB ingest backbones.jsonl
expect_code 0 $KB recommend --task "$id_iris" --space svm --top 3 --json --signature tabular:test
json .tasks == 3
json .configurations == 4
json .recommendations.0.config.C == 100
json .input_signature == tabular:test
json .backbone_objective == val_accuracy
json .backbones len== 3
json .backbones.0.backbone == bb-a
json .backbones.0.basis == finetune
json .backbones.0.finetuned_tasks == 3
json .backbones.0.expected_objective ">=" 0.70
json .backbones.0.expected_objective "<=" 0.95
json .backbones.0.expected_sd ">" 0
json .backbones.1.backbone == bb-b
json .backbones.1.finetuned_tasks == 2
json .backbones.2.backbone == bb-c
json .backbones.2.basis == source
json .backbones.2.expected_objective == null
json .backbones.2.source_similarity ">" 0
expect_code 0 $KB recommend --task "$id_iris" --space svm --signature tabular:test
expect_out "^recommended backbones \\(input signature tabular:test; 3 compatible;"
expect_out "^  1 +bb-a +finetune"
# no signature known for iris: no backbone section
expect_code 0 $KB recommend --task "$id_iris" --space svm --json
json .input_signature == null
json .backbones len== 0
# a stored task's signature from the backbones trained on it; its own fine-tune runs are left
# out: zoo (bb-b beat bb-a there) is by far wine's nearest task with fine-tune results
expect_code 0 $KB recommend --task "$id_wine" --space svm --json
json .input_signature == tabular:test
json .backbones.0.backbone == bb-b
json .backbones.0.finetuned_tasks == 1
json .backbones.0.expected_objective == 0.85
json .backbones.0.expected_sd == null
json .backbones.1.backbone == bb-a
json .backbones.1.finetuned_tasks == 2
# a dataset's signature is computed as kb train net computes it
expect_code 0 $KB recommend "$D/iris.csv.gz" --space svm --groups general,statistical,info --json
json .input_signature type string
"$JC" "$T/out" .input_signature print | grep -q '^tabular:' || fail "dataset signature"
# backbones but no configurations in the space: the backbones alone, with a warning
expect_code 0 $KB recommend --task "$id_iris" --space mlp --signature tabular:test --json
expect_err "warning: no configurations"
json .recommendations len== 0
json .backbones len== 3
# a joint space's runs name their backbone in the configuration: bb-c gets fine-tune evidence
printf '{"kind":"run","id":"ft-cfg-1","task_id":"%s","space":"ftspace","config":{"backbone":"bb-c","lr":0.1},"status":"ok","objective":"val_accuracy","direction":"maximize","metrics":{"val_accuracy":0.99}}\n' "$id_haberman" > ftspace.jsonl
expect_code 0 $KB ingest ftspace.jsonl
expect_code 0 $KB recommend --task "$id_iris" --space ftspace --signature tabular:test --json
json .backbones len== 3
"$JC" "$T/out" .backbones print | grep -q '"source"' && fail "bb-c still ranked on its source task only"
expect_code 0 $KB recommend --task "$id_iris" --space svm --signature tabular:test --json
json .backbones.2.backbone == bb-c
json .backbones.2.basis == source
# --neighborhood 2 weighs the two nearest tasks only; --tune-tasks 0 keeps the default weighting
# with more tasks than the neighbourhood a derived table is kept in the store's cache: the
# first query derives and stores it, the next reads it, --no-cache derives it again; all agree
expect_code 0 $KB recommend --task "$id_iris" --space svm --neighborhood 2 --json
json .tasks == 2
json .candidate_tasks == 3
json .neighbors.0.name == wine
cp "$T/out" first.json
expect_code 0 $KB recommend --task "$id_iris" --space svm --neighborhood 2 --json
cmp -s "$T/out" first.json || fail "the cached table gave another answer"
expect_code 0 $KB recommend --task "$id_iris" --space svm --neighborhood 2 --json --no-cache
cmp -s "$T/out" first.json || fail "--no-cache gave another answer"
# a new run makes the table stale: its configuration is seen at once
printf '{"kind":"run","id":"r-wine-5","task_id":"%s","space":"svm","config":{"kernel":"sigmoid","C":2.0,"gamma":0.5,"coef0":0.0},"status":"ok","objective":"accuracy","direction":"maximize","metrics":{"accuracy":0.99}}\n' "$id_wine" > more.jsonl
expect_code 0 $KB ingest more.jsonl
expect_code 0 $KB recommend --task "$id_iris" --space svm --neighborhood 2 --json
json .configurations == 5
json .recommendations.0.config.kernel == sigmoid
expect_code 2 $KB recommend --task "$id_iris" --space svm --neighborhood 0

expect_code 2 $KB recommend --space svm
expect_code 2 $KB recommend "$D/iris.csv.gz" --task "$id_iris" --space svm
expect_code 2 $KB recommend --task "$id_iris" --space svm --top 0
expect_code 2 $KB recommend --task "$id_iris"
expect_err "say which space"
expect_code 1 $KB recommend --task t-0000000000000000 --space svm
expect_err "no task 't-0000000000000000'"
expect_code 1 $KB recommend --task "$id_iris" --space mlp
expect_err "no stored task with meta-features has ok runs in space 'mlp'"
expect_code 1 $KB recommend does-not-exist.csv --space svm
finish
