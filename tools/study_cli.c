/* Options shared by kb search and kb ask: see study_cli.h. */
#include "tools/study_cli.h"

#include <string.h>

#include "engine/core/alloc.h"
#include "tools/exit.h"
#include "tools/trial.h"

void study_cli_args_init(study_cli_args *a)
{
    memset(a, 0, sizeof *a);
    a->direction = -1;
}

int study_cli_option(study_cli_args *a, const char *cmd, int key, const char *arg)
{
    kb_bo_method m;
    kb_bo_warm w;
    kb_direction d;
    switch (key) {
    case STUDY_OPT_OBJECTIVE: a->objective = arg; return 1;
    case STUDY_OPT_DIRECTION:
        if (kb_direction_parse(&d, arg) != KB_OK) {
            cli_usage(cmd, "--direction: expected maximize or minimize, got '%s'", arg);
            return -1;
        }
        a->direction = (int)d;
        return 1;
    case STUDY_OPT_METHOD:
        if (study_method_parse(&m, NULL, arg) != 0) {
            cli_usage(cmd, "--method: expected gp, tpe, random, hyperband, bohb, asha, "
                           "adarandom or reinforce, got '%s'", arg);
            return -1;
        }
        a->method = arg;
        return 1;
    case STUDY_OPT_WARM:
        if (study_warm_parse(&w, arg) != 0) {
            cli_usage(cmd, "--warm-start: expected auto, none, nearest, portfolio, stacked, "
                           "priors or rgpe, got '%s'", arg);
            return -1;
        }
        a->warm_start = arg;
        return 1;
    case STUDY_OPT_NEIGHBORS:
        return cli_parse_size(cmd, "neighbors", arg, &a->n_neighbours) == 0 ? 1 : -1;
    case STUDY_OPT_SEED: return cli_parse_u64(cmd, "seed", arg, &a->seed) == 0 ? 1 : -1;
    case STUDY_OPT_STUDY:
        if (arg[0] == '\0' || strchr(arg, ':') != NULL) {
            cli_usage(cmd, "--study: an id must be non-empty and may not contain ':'");
            return -1;
        }
        a->study_id = arg;
        return 1;
    case STUDY_OPT_EXCLUDE:
        if (a->n_exclude == STUDY_CLI_MAX_EXCLUDE) {
            cli_usage(cmd, "at most %d --exclude options", STUDY_CLI_MAX_EXCLUDE);
            return -1;
        }
        a->exclude[a->n_exclude++] = arg;
        return 1;
    case STUDY_OPT_TEAM: a->team = arg; return 1;
    default: return 0;
    }
}

void study_cli_create_opts(study_create_opts *o, const study_cli_args *a, const char *task_id,
                           const char *space, const char *command)
{
    memset(o, 0, sizeof *o);
    o->id = a->study_id;
    o->task_id = task_id;
    o->space = space;
    o->objective = a->objective;
    o->direction = a->direction;
    o->method = a->method;
    o->warm_start = a->warm_start;
    o->n_neighbours = a->n_neighbours;
    o->exclude = a->exclude;
    o->n_exclude = a->n_exclude;
    o->seed = a->seed;
    o->command = command;
    o->team = a->team;
}

void study_cli_print_config(FILE *f, const kb_param *config, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        char *v = NULL;
        kb_error err = KB_ERROR_INIT;
        if (config[j].value.type == KB_VALUE_TYPE_NONE ||
            kb_trial_format_value(&v, &config[j].value, &err) != KB_OK) {
            continue;
        }
        fprintf(f, "%s%s=%s", j ? " " : "", config[j].name, v);
        kb_free(v);
    }
}
