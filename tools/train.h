/* The built-in workloads behind `kb train`: one entry per workload, dispatched by cmd_train. */
#ifndef KB_TOOLS_TRAIN_H
#define KB_TOOLS_TRAIN_H

#include "tools/cli.h"

/** `kb train svm ...`: argv[0] is "svm". Returns an exit code. */
int train_svm_main(int argc, char **argv);
extern const cli_spec train_svm_spec;
/** `kb train net ...`: argv[0] is "net". Returns an exit code. */
int train_net_main(int argc, char **argv);
extern const cli_spec train_net_spec;

#endif
