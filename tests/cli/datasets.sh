#!/bin/bash
# kb datasets: the bundled manifest as a table and as JSON; --dir and KB_DATASETS; bad input.
. "$(dirname "$0")/lib.sh"
unset KB_DATASETS

expect_code 0 "$KB" datasets --dir "$SRC/datasets"
expect_out '^name +task +rows +features +classes +license$'
expect_out '^iris +classification +150 +4 +3 +GPL-2 \| GPL-3 \(part of R\)$'
expect_out '^diamonds +regression +53940 +9 +0 '
[ "$(wc -l <"$T/out")" -eq 68 ] || fail "expected a header and 67 datasets, got $(wc -l <"$T/out") lines"
# every listed dataset is there
tail -n +2 "$T/out" | while read -r name _; do
    [ -f "$SRC/datasets/$name.csv.gz" ] || echo "missing $name" >>"$T/missing"
done
[ -f "$T/missing" ] && fail "listed but missing: $(cat "$T/missing")"

# default: the source tree's datasets/ compiled into kb
expect_code 0 "$KB" datasets --json
json .schema == kb.datasets/1
json .datasets 'len==' 67
json .datasets.0.name == alzheimer_smoking
json .datasets.0.task == classification
json .datasets.0.rows == 538
json .datasets.0.features == 2
json .datasets.0.classes == 3
json .datasets.0.missing_cells == 0
json .datasets.0.license == GPL-2
json .datasets.0.source == "r-cran-coin 1.4-2-1+b1: coin::alzheimer"

# a directory of one's own, by --dir and by KB_DATASETS; quoted fields with commas
mkdir -p "$T/mine"
printf 'name,task,rows,features,numeric_features,categorical_features,classes,missing_cells,source,original_reference,license,notes\r\ntoy,regression,3,1,1,0,0,0,"made here, by hand",,CC0,"a ""toy"""\r\n' >"$T/mine/manifest.csv"
expect_code 0 "$KB" datasets --dir "$T/mine" --json
json .datasets 'len==' 1
json .datasets.0.name == toy
json .datasets.0.source == "made here, by hand"
json .datasets.0.notes == 'a "toy"'
json .datasets.0.original_reference == ""
json .dir == "$T/mine"
KB_DATASETS="$T/mine" expect_code 0 "$KB" datasets
expect_out '^toy +regression +3 +1 +0 +CC0$'

# bad input
expect_code 1 "$KB" datasets --dir "$T/nowhere"
expect_err "^kb datasets: cannot open '$T/nowhere/manifest.csv': No such file or directory$"
printf 'name,task,rows\ntoy,regression\n' >"$T/mine/manifest.csv"
expect_code 3 "$KB" datasets --dir "$T/mine"
expect_err "manifest.csv:2: column 'rows': missing field"
expect_code 2 "$KB" datasets extra
expect_err "unexpected argument 'extra'"
expect_code 2 "$KB" datasets --bogus
expect_code 0 "$KB" datasets --help
expect_out '^usage: kb datasets'
finish
