/*
 * Every kb subcommand: int cmd_<name>(int argc, char **argv), argv[0] being the command name.
 * Each returns an exit code from tools/exit.h; only main exits. Each file also defines its
 * cli_spec as cmd_<name>_spec, from which `kb help <name>` and `kb <name> --help` come.
 */
#ifndef KB_TOOLS_COMMANDS_H
#define KB_TOOLS_COMMANDS_H

#include "tools/cli.h"

#define KB_DECLARE_CMD(name)                                                                 \
    int cmd_##name(int argc, char **argv);                                                   \
    extern const cli_spec cmd_##name##_spec

KB_DECLARE_CMD(init);
KB_DECLARE_CMD(ingest);
KB_DECLARE_CMD(list);
KB_DECLARE_CMD(show);
KB_DECLARE_CMD(export);
KB_DECLARE_CMD(stats);
KB_DECLARE_CMD(check);
KB_DECLARE_CMD(space);
KB_DECLARE_CMD(datasets);
KB_DECLARE_CMD(features);
KB_DECLARE_CMD(add_task);
KB_DECLARE_CMD(train);
KB_DECLARE_CMD(backbone);
KB_DECLARE_CMD(recommend);
KB_DECLARE_CMD(search);
KB_DECLARE_CMD(ask);
KB_DECLARE_CMD(tell);
KB_DECLARE_CMD(judge);
KB_DECLARE_CMD(watch);

#endif
