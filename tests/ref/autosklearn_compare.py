#!/usr/bin/python3
"""Compare kb's meta-features with the values auto-sklearn publishes for the same datasets.

    /usr/bin/python3 tests/ref/autosklearn_compare.py ASKL_FILES_DIR DATASETS_DIR KB_BIN

ASKL_FILES_DIR is auto-sklearn's metalearning `files/` folder (one sub-folder per metric,
each with feature_values.arff); DATASETS_DIR holds kb's bundled <name>.csv.gz; KB_BIN is
the built `kb`. Prints a Markdown table (each cell "auto-sklearn / kb") for the bundled
datasets that correspond to an OpenML dataset in auto-sklearn's meta-data, for
docs/META-FEATURES.md. Only the standard library is needed.
"""
import json
import os
import subprocess
import sys

# kb bundled name -> (auto-sklearn instance_id, sub-folder)
PAIRS = [
    ("breast_w", "breast-w", "accuracy_binary.classification_dense"),
    ("breast_cancer_wdbc", "wdbc", "accuracy_binary.classification_dense"),
    ("pima_diabetes", "diabetes", "accuracy_binary.classification_dense"),
    ("churn_mlc", "churn", "accuracy_binary.classification_dense"),
    ("dna_splice", "dna", "accuracy_binary.classification_dense"),
    ("soybean", "soybean", "accuracy_binary.classification_dense"),
    ("letter", "letter", "accuracy_binary.classification_dense"),
    ("satellite", "satimage", "accuracy_binary.classification_dense"),
    ("optdigits_8x8", "optdigits", "accuracy_binary.classification_dense"),
    ("diamonds", "diamonds", "r2_regression_dense"),
]

# column title, auto-sklearn feature, kb feature, printf format
COLUMNS = [
    ("rows", "NumberOfInstances", "n_rows", "{:.0f}"),
    ("num/cat features", None, None, None),
    ("classes", "NumberOfClasses", "n_classes", "{:.0f}"),
    ("class entropy (bits)", "ClassEntropy", "class_entropy", "{:.3f}"),
    ("min class share", "ClassProbabilityMin", "class_prob_min", "{:.3f}"),
    ("missing cells", "PercentageOfMissingValues", "share_missing_cells", "{:.3f}"),
    ("skewness mean", "SkewnessMean", "skewness_mean", "{:.2f}"),
    ("kurtosis mean", "KurtosisMean", "kurtosis_mean", "{:.2f}"),
    ("kurtosis max", "KurtosisMax", "kurtosis_max", "{:.1f}"),
]


def read_arff(path):
    names, rows = [], {}
    with open(path) as fh:
        data = False
        for line in fh:
            line = line.strip()
            if not line or line.startswith("%"):
                continue
            if line.upper().startswith("@ATTRIBUTE"):
                names.append(line.split()[1])
            elif line.upper().startswith("@DATA"):
                data = True
            elif data:
                vals = line.split(",")
                rows[vals[0]] = dict(zip(names[1:], (float(v) for v in vals[1:])))
    return rows


def fmt(fmtstr, v):
    return "-" if v is None else fmtstr.format(v)


def main():
    askl_dir, data_dir, kb = sys.argv[1:4]
    cache = {}
    print("| kb dataset / OpenML | " + " | ".join(c[0] for c in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for ours, theirs, folder in PAIRS:
        if folder not in cache:
            cache[folder] = read_arff(os.path.join(askl_dir, folder, "feature_values.arff"))
        a = cache[folder].get(theirs)
        path = os.path.join(data_dir, ours + ".csv.gz")
        if a is None or not os.path.exists(path):
            continue
        out = subprocess.run([kb, "features", path, "--json", "--groups",
                              "general,statistical"], check=True, capture_output=True)
        k = json.loads(out.stdout)["features"]
        cells = []
        for title, an, kn, f in COLUMNS:
            if an is None:
                cells.append("{:.0f}/{:.0f} / {:.0f}/{:.0f}".format(
                    a["NumberOfNumericFeatures"], a["NumberOfCategoricalFeatures"],
                    k["n_numeric"], k["n_categorical"]))
                continue
            av = a.get(an)
            kv = k.get(kn)
            if an == "PercentageOfMissingValues" and av is not None:
                av = av  # both are shares in [0, 1]
            cells.append(fmt(f, av) + " / " + fmt(f, kv))
        print("| {} / {} | {} |".format(ours, theirs, " | ".join(cells)))


if __name__ == "__main__":
    main()
