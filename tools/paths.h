/*
 * Where the kb program finds its bundled files: the datasets directory (--dir, $KB_DATASETS,
 * the source tree's datasets/ the binary was built from, ./datasets) and dataset files named
 * by their bundled name.
 */
#ifndef KB_TOOLS_PATHS_H
#define KB_TOOLS_PATHS_H

#include <stddef.h>

/**
 * The bundled datasets directory: `opt_dir` if not NULL, else $KB_DATASETS if set and
 * non-empty, else KB_SOURCE_DIR "/datasets" (compiled in) if it holds a manifest.csv, else
 * "./datasets". Returns a pointer to `opt_dir`, the environment or static storage.
 */
const char *paths_datasets_dir(const char *opt_dir);

/**
 * Resolve a dataset argument: `arg` itself if it names an existing file, else the bundled
 * "<dir>/<arg>.csv.gz" if that exists (dir from paths_datasets_dir(opt_dir)). Writes the path
 * into `out` (`cap` bytes) and returns 0, or returns -1 (leaving `arg` in `out`) when neither
 * exists, so the reader reports the original name.
 */
int paths_dataset_file(char *out, size_t cap, const char *arg, const char *opt_dir);

#endif
