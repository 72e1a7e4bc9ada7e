/*
 * Options shared by the commands that create studies (`kb search`, `kb ask`): objective,
 * direction, method, warm start, neighbours, seed, study id, exclusions, team — one table and
 * one parser, so both commands spell and check them the same way.
 */
#ifndef KB_TOOLS_STUDY_CLI_H
#define KB_TOOLS_STUDY_CLI_H

#include <stdio.h>

#include "tools/cli.h"
#include "tools/study.h"

#define STUDY_CLI_MAX_EXCLUDE 64

/* option keys, above any command's own CLI_KEY(n) */
enum {
    STUDY_OPT_OBJECTIVE = CLI_KEY(100),
    STUDY_OPT_DIRECTION,
    STUDY_OPT_METHOD,
    STUDY_OPT_WARM,
    STUDY_OPT_NEIGHBORS,
    STUDY_OPT_SEED,
    STUDY_OPT_STUDY,
    STUDY_OPT_EXCLUDE,
    STUDY_OPT_TEAM
};

#define STUDY_CLI_OPTS                                                                        \
    {"objective", STUDY_OPT_OBJECTIVE, 1, "M",                                               \
     "metric to optimise (default: the neighbours' objective)"},                             \
    {"direction", STUDY_OPT_DIRECTION, 1, "D",                                               \
     "maximize or minimize (default: the neighbours', else from the metric's name)"},        \
    {"method", STUDY_OPT_METHOD, 1, "M", "gp (default), tpe, random, hyperband, bohb, asha, adarandom, reinforce"}, \
    {"warm-start", STUDY_OPT_WARM, 1, "W",                                                   \
     "auto (default), none, nearest, portfolio, stacked, priors, rgpe"},                     \
    {"neighbors", STUDY_OPT_NEIGHBORS, 1, "N", "neighbour tasks to warm from (default 20)"}, \
    {"seed", STUDY_OPT_SEED, 1, "S", "seed of every random choice (default 0)"},             \
    {"study", STUDY_OPT_STUDY, 1, "ID", "the new study's id (default s-<12 hex digits>)"},    \
    {"exclude", STUDY_OPT_EXCLUDE, 1, "ID", "never warm from this task (repeatable)"},       \
    {"team", STUDY_OPT_TEAM, 1, "T", "owning team of the study and its trials"}

typedef struct study_cli_args {
    const char *objective;
    int direction;
    const char *method;
    const char *warm_start;
    size_t n_neighbours;
    unsigned long long seed;
    const char *study_id;
    const char *exclude[STUDY_CLI_MAX_EXCLUDE];
    size_t n_exclude;
    const char *team;
} study_cli_args;

void study_cli_args_init(study_cli_args *a);
/** 1 if `key` was one of the shared options (handled), 0 if not, -1 after a usage error. */
int study_cli_option(study_cli_args *a, const char *cmd, int key, const char *arg);
/** Fill `o` from the arguments (pointers borrowed from `a`). */
void study_cli_create_opts(study_create_opts *o, const study_cli_args *a, const char *task_id,
                           const char *space, const char *command);
/** A configuration as `name=value name=value` (values in the trial runner's text form). */
void study_cli_print_config(FILE *f, const kb_param *config, size_t n);

#endif
