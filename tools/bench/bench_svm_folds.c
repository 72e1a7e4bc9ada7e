/*
 * bench_svm_folds DATASET FOLDS SEED: print the fold (0-based) of each row, one per line, as
 * `kb train svm DATASET --folds FOLDS --seed SEED` assigns them without a test split, so that
 * tools/bench/svm_peer.py can cross-validate scikit-learn on exactly the same folds.
 */
#include <stdio.h>
#include <stdlib.h>

#include "engine/core/alloc.h"
#include "engine/dataset.h"
#include "engine/svm.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_svm_folds DATASET FOLDS SEED\n");
        return 2;
    }
    kb_dataset d = {0};
    kb_error err = KB_ERROR_INIT;
    kb_dataset_opts opts = KB_DATASET_OPTS_INIT;
    if (kb_dataset_read(&d, argv[1], &opts, &err) != KB_OK) {
        fprintf(stderr, "bench_svm_folds: %s\n", err.msg);
        return 1;
    }
    size_t *fold = kb_malloc_array(d.n_rows, sizeof *fold);
    size_t k = 0;
    int rc = fold == NULL ? KB_ENOMEM
                          : kb_svm_cv_folds(fold, &k, &d, strtoull(argv[2], NULL, 10),
                                            strtoull(argv[3], NULL, 10), NULL, &err);
    if (rc == KB_OK) {
        for (size_t i = 0; i < d.n_rows; i++) {
            printf("%zu\n", fold[i]);
        }
    } else {
        fprintf(stderr, "bench_svm_folds: %s\n", err.msg);
    }
    kb_free(fold);
    kb_dataset_release(&d);
    return rc == KB_OK ? 0 : 1;
}
