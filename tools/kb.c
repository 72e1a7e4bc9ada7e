/*
 * kb: the command-line program. main() and the one command table; each command lives in
 * tools/cmd_<name>.c. An entry is compiled in when its file exists (CMake defines
 * KB_HAVE_CMD_<NAME>), so the table shows the whole command set in its intended order.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/core/error.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/exit.h"

typedef struct kb_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const cli_spec *spec;
    const char *summary;
} kb_command;

#define KB_CMD(name, sym, summary) {name, cmd_##sym, &cmd_##sym##_spec, summary},

static const kb_command commands[] = {
#ifdef KB_HAVE_CMD_INIT
    KB_CMD("init", init, "Create an empty knowledge base")
#endif
#ifdef KB_HAVE_CMD_INGEST
    KB_CMD("ingest", ingest, "Add past runs from JSON Lines, Optuna CSV or an MLflow store")
#endif
#ifdef KB_HAVE_CMD_LIST
    KB_CMD("list", list, "List tasks, runs, backbones or spaces")
#endif
#ifdef KB_HAVE_CMD_SHOW
    KB_CMD("show", show, "Show one record by id")
#endif
#ifdef KB_HAVE_CMD_EXPORT
    KB_CMD("export", export, "Write records as JSON Lines that kb ingest takes back")
#endif
#ifdef KB_HAVE_CMD_STATS
    KB_CMD("stats", stats, "Summarise the knowledge base")
#endif
#ifdef KB_HAVE_CMD_CHECK
    KB_CMD("check", check, "Verify every record and index")
#endif
#ifdef KB_HAVE_CMD_SPACE
    KB_CMD("space", space, "Show a search space and sample designs from it")
#endif
#ifdef KB_HAVE_CMD_DATASETS
    KB_CMD("datasets", datasets, "List the bundled datasets")
#endif
#ifdef KB_HAVE_CMD_FEATURES
    KB_CMD("features", features, "Compute a dataset's meta-features")
#endif
#ifdef KB_HAVE_CMD_ADD_TASK
    KB_CMD("add-task", add_task, "Store a dataset as a task with its meta-features")
#endif
#ifdef KB_HAVE_CMD_TRAIN
    KB_CMD("train", train, "Train a built-in workload (svm, net)")
#endif
#ifdef KB_HAVE_CMD_BACKBONE
    KB_CMD("backbone", backbone, "Register pretrained backbones")
#endif
#ifdef KB_HAVE_CMD_RECOMMEND
    KB_CMD("recommend", recommend, "Recommend configurations and a backbone for a dataset")
#endif
#ifdef KB_HAVE_CMD_SEARCH
    KB_CMD("search", search, "Run a warm-started hyperparameter search")
#endif
#ifdef KB_HAVE_CMD_ASK
    KB_CMD("ask", ask, "Ask a study for the next trial")
#endif
#ifdef KB_HAVE_CMD_TELL
    KB_CMD("tell", tell, "Tell a study a trial's result")
#endif
#ifdef KB_HAVE_CMD_JUDGE
    KB_CMD("judge", judge, "Judge a learning curve and advise")
#endif
#ifdef KB_HAVE_CMD_WATCH
    KB_CMD("watch", watch, "Follow a learning curve as it grows")
#endif
    {NULL, NULL, NULL, NULL}};

static const kb_command *find_command(const char *name)
{
    for (const kb_command *c = commands; c->name != NULL; c++) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

static void print_overview(FILE *f)
{
    fprintf(f, "usage: kb [--version] [--help] COMMAND [ARGS]\n\n"
               "kb remembers past tuning runs and turns them into a head start for new "
               "datasets.\n\ncommands:\n");
    for (const kb_command *c = commands; c->name != NULL; c++) {
        fprintf(f, "  %-12s %s\n", c->name, c->summary);
    }
    fprintf(f, "\nThe knowledge base is ./kb.lmdb unless --kb PATH or KB_PATH says otherwise.\n"
               "See 'kb help COMMAND' for one command.\n");
}

static int run_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_overview(stdout);
        return argc < 2 ? KB_EXIT_USAGE : KB_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("kb %s\n", kb_version());
        return KB_EXIT_OK;
    }
    if (strcmp(argv[1], "help") == 0) {
        if (argc < 3) {
            print_overview(stdout);
            return KB_EXIT_OK;
        }
        const kb_command *c = find_command(argv[2]);
        if (c == NULL) {
            fprintf(stderr, "kb: '%s' is not a kb command; see 'kb help'\n", argv[2]);
            return KB_EXIT_USAGE;
        }
        cli_print_help(c->spec, stdout);
        return KB_EXIT_OK;
    }
    const kb_command *c = find_command(argv[1]);
    if (c == NULL) {
        fprintf(stderr, "kb: '%s' is not a kb command; see 'kb help'\n", argv[1]);
        return KB_EXIT_USAGE;
    }
    return c->fn(argc - 1, argv + 1);
}

static void *cjson_malloc(size_t n)
{
    return kb_malloc(n);
}

int main(int argc, char **argv)
{
    /* Third-party globals are set once, here: cJSON allocates through kb's hooks. */
    cJSON_Hooks hooks = {cjson_malloc, kb_free};
    cJSON_InitHooks(&hooks);
    cli_install_signals();

    int rc = run_main(argc, argv);
    /* A full disk must not look like success. */
    if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0) {
        fprintf(stderr, "kb: writing the output failed\n");
        return rc == KB_EXIT_OK ? KB_EXIT_FAILURE : rc;
    }
    return rc;
}
