/*
 * `kb train WORKLOAD ...`: run one of the built-in workloads (tools/train.h). Each workload
 * parses its own options; this file only dispatches and lists them.
 */
#include <stdio.h>
#include <string.h>

#include "tools/commands.h"
#include "tools/exit.h"
#include "tools/train.h"

typedef struct workload {
    const char *name;
    int (*main)(int argc, char **argv);
    const cli_spec *spec;
    const char *summary;
} workload;

/* The spec's description names the same workloads: keep the two in step. */
static const workload workloads[] = {
    {"svm", train_svm_main, &train_svm_spec, "libsvm: C-SVC, nu-SVC, epsilon-SVR, k-fold CV"},
    {"net", train_net_main, &train_net_spec, "a CNN or MLP on OpenBLAS, with a learning curve"},
    {NULL, NULL, NULL, NULL}};

static const cli_opt no_options[] = {{NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_train_spec = {
    "train",
    "kb train WORKLOAD [options] DATASET",
    "Train one of kb's built-in workloads on a dataset and report its metrics in the trial "
    "protocol (with --json: one JSON line per step, then a final {\"final\": {...}} line), so "
    "that kb search can drive it like any external trainer. Workloads: svm (libsvm), net (a "
    "CNN/MLP). See 'kb train WORKLOAD --help' for a workload's options.",
    no_options,
    "  kb train svm datasets/statlog_heart.csv.gz --set C=10 --json\n"
    "  kb train svm --help",
    NULL};

static void print_workloads(FILE *f)
{
    fprintf(f, "\nworkloads:\n");
    for (const workload *w = workloads; w->name != NULL; w++) {
        fprintf(f, "  %-6s %s\n", w->name, w->summary);
    }
}

int cmd_train(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "kb train: missing WORKLOAD\nusage: %s\n", cmd_train_spec.usage);
        print_workloads(stderr);
        return KB_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        if (argc > 2 && argv[1][0] != '-') {
            for (const workload *w = workloads; w->name != NULL; w++) {
                if (strcmp(w->name, argv[2]) == 0) {
                    cli_print_help(w->spec, stdout);
                    return KB_EXIT_OK;
                }
            }
        }
        cli_print_help(&cmd_train_spec, stdout);
        print_workloads(stdout);
        return KB_EXIT_OK;
    }
    for (const workload *w = workloads; w->name != NULL; w++) {
        if (strcmp(w->name, argv[1]) == 0) {
            return w->main(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "kb train: '%s' is not a workload; see 'kb train --help'\n", argv[1]);
    return KB_EXIT_USAGE;
}
