/* Exit codes of the kb program: scripts can tell "fix the command" from "fix the data". */
#ifndef KB_TOOLS_EXIT_H
#define KB_TOOLS_EXIT_H

#define KB_EXIT_OK 0           /* success */
#define KB_EXIT_FAILURE 1      /* runtime failure: I/O, store, numeric, internal */
#define KB_EXIT_USAGE 2        /* usage error: fix the command line */
#define KB_EXIT_DATA 3         /* input data rejected (ingest: the good records committed) */
#define KB_EXIT_INTERRUPTED 130 /* interrupted after a clean shutdown */

#endif
