#!/bin/bash
# kb features: table and JSON output, group selection, determinism, and every kind of bad input.
. "$KB_SRC/tests/cli/lib.sh"

# a small mixed dataset: two numeric columns, one categorical, a 3-class target
{
    echo "a,b,colour,target"
    for i in $(seq 1 60); do
        c=$((i % 3))
        case $c in 0) col=red ;; 1) col=green ;; *) col=blue ;; esac
        echo "$((i * 7 % 13)).5,$((c * 10 + i % 4)),$col,k$c"
    done
} >mixed.csv

expect_code 0 "$KB" features mixed.csv --json --seed 3
json .schema == kb.features/1
json .feature_set == kb-mf-1
json .task_type == classification
json .target == target
json .n_rows == 60
json .n_features == 3
json .fingerprint exists
json .features.n_classes == 3
json .features.n_categorical == 1
json .features.class_entropy ">" 1.58
json .features.class_entropy "<" 1.59
json .features.landmark_1nn type number
json .features.landmark_lda ">=" 0.9
json .features.img_height missing
json .landmark.sample_rows == 60
json .missing type array
cp "$T/out" first.json

# same seed, same document; the gzip'd file has the same fingerprint
expect_code 0 "$KB" features mixed.csv --json --seed 3
cmp -s first.json "$T/out" || fail "same seed gave different output"
gzip -c mixed.csv >mixed.csv.gz
expect_code 0 "$KB" features mixed.csv.gz --json --seed 3 --groups general
fp=$("$JC" first.json .fingerprint print)
json .fingerprint == "$fp"

# group selection: only the requested groups appear
expect_code 0 "$KB" features mixed.csv --json --groups general,info
json .groups len== 2
json .features.mutual_info_max exists
json .features.skewness_mean missing
json .features.landmark_stump missing

# text table, a '-' for what cannot be computed (one categorical column: no levels std)
expect_code 0 "$KB" features mixed.csv --groups general
expect_out '^feature_set  kb-mf-1'
expect_out '^general +class_entropy +1\.58'
expect_out '^general +cat_levels_std +-$'

# one class: the class spread and the landmarkers are missing (null), not zero
printf 'x,target\n1,a\n2,a\n3,a\n4,a\n5,a\n6,a\n7,a\n8,a\n9,a\n10,a\n11,a\n' >one.csv
expect_code 0 "$KB" features one.csv --json --task-type classification
json .features.class_entropy == 0
json .features.class_prob_std type null
json .features.landmark_1nn type null
json .features.equivalent_n_attributes type null

# regression and --target
printf 'y,x1,x2\n1.5,1,0.3\n2.5,2,0.1\n3.1,3,0.4\n4.2,4,0.1\n5.9,5,0.5\n6.1,6,0.9\n7.3,7,0.2\n8.8,8,0.6\n9.2,9,0.5\n10.5,10,0.3\n11.1,11,0.5\n12.4,12,0.8\n' >reg.csv
expect_code 0 "$KB" features reg.csv --json --target y --task-type regression
json .task_type == regression
json .target == y
json .features.n_classes type null
json .features.landmark_naive_bayes type null
json .landmark.metric == rmse_standardised

# image data (IDX): three 2x2 images [0 1 2 3], [10 20 30 40], [255 254 253 252] with labels
# 7, 2, 7. Class means [10 20 30 40] and [127.5 x4]: RMS distance sqrt(42525 / 4)
expect_code 0 "$KB" features "$SRC/tests/data/idx/tiny-images-idx3-ubyte" --json --groups general,image
json .groups len== 2
json .features.img_height == 2
json .features.img_channels == 1
json .features.img_pixel_mean ">" 93.3333333
json .features.img_pixel_mean "<" 93.3333334
json .features.img_class_dist_mean ">" 103.1079531
json .features.img_class_dist_mean "<" 103.1079532
json .features.img_class_dist_std type null
expect_code 0 "$KB" features mixed.csv --json --groups image
json .groups len== 0
json .features len== 0

# bad inputs
expect_code 1 "$KB" features no-such-file.csv
expect_err "^kb features: .*no-such-file.csv"
expect_code 2 "$KB" features mixed.csv --groups general,bogus
expect_err "unknown group 'bogus'"
expect_code 2 "$KB" features mixed.csv --sample abc
expect_err "sample"
expect_code 2 "$KB" features mixed.csv --sample 0
expect_code 2 "$KB" features mixed.csv --task-type clustering
expect_code 2 "$KB" features
expect_err "missing DATASET"
expect_code 2 "$KB" features mixed.csv extra.csv
printf 'a,b,target\n1,2,x\n3,4\n' >ragged.csv
expect_code 3 "$KB" features ragged.csv
expect_err "ragged.csv:3"
: >empty.csv
expect_code 3 "$KB" features empty.csv

# stdout stays clean with --progress (progress goes to stderr)
expect_code 0 "$KB" features mixed.csv --json --groups general --progress
json .schema == kb.features/1
expect_err "reading 'mixed.csv'"
finish
