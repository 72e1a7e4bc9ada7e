#include "tools/paths.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

const char *paths_datasets_dir(const char *opt_dir)
{
    if (opt_dir != NULL) {
        return opt_dir;
    }
    const char *env = getenv("KB_DATASETS");
    if (env != NULL && env[0] != '\0') {
        return env;
    }
#ifdef KB_SOURCE_DIR
    if (is_file(KB_SOURCE_DIR "/datasets/manifest.csv")) {
        return KB_SOURCE_DIR "/datasets";
    }
#endif
    return "./datasets";
}

int paths_dataset_file(char *out, size_t cap, const char *arg, const char *opt_dir)
{
    if (!is_file(arg)) {
        int n = snprintf(out, cap, "%s/%s.csv.gz", paths_datasets_dir(opt_dir), arg);
        if (n > 0 && (size_t)n < cap && is_file(out)) {
            return 0;
        }
    }
    snprintf(out, cap, "%s", arg);
    return is_file(arg) ? 0 : -1;
}
