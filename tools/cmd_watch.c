/*
 * kb watch: follow a learning curve as it grows (a file another process appends to, or a
 * pipe) and print a line whenever the verdict changes.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/core/alloc.h"
#include "tools/commands.h"
#include "tools/curve_cli.h"
#include "tools/exit.h"

enum { OPT_INTERVAL = CURVE_OPT_LAST, OPT_TIMEOUT };

static const cli_opt opts[] = {
    CURVE_CLI_OPTS,
    {"interval-ms", OPT_INTERVAL, 1, "MS", "poll a file this often for new lines (default 200)"},
    {"timeout", OPT_TIMEOUT, 1, "S", "stop after S seconds without the run ending (default: none)"},
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_watch_spec = {
    "watch",
    "kb watch FILE|- [--format F] [--metric NAME] [--mode min|max] [--config JSON]\n"
    "                [--classes K] [--interval-ms MS] [--timeout S] [--json]",
    "Follow a learning curve while the run writes it and print one line whenever the "
    "judgement changes (the light or the set of verdicts): the last step, the light, the "
    "verdicts and the first piece of advice. A FILE is polled for new lines; '-' reads a pipe. "
    "Watching stops at the run's final line (kb's {\"final\": ...} or Caffe's \"Optimization "
    "Done\"), at the end of a pipe, after --timeout seconds, or on Ctrl-C (exit 130). With "
    "--json each line is a JSON object with \"schema\": \"kb.watch/1\" (JSON Lines).",
    opts,
    "  kb train net data.csv --arch 'FC(64)' > run.jsonl & kb watch run.jsonl\n"
    "  caffe train -solver solver.prototxt 2>&1 | kb watch - --format caffe\n"
    "  kb watch run.jsonl --json --timeout 600",
    "  0    the run ended (or --timeout passed) and was judged\n"
    "  1    the file cannot be read\n"
    "  2    usage error\n"
    "  3    the input ended without any learning-curve value\n"
    "  130  interrupted"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The light and the verdict kinds: a new line is printed when this changes. */
static unsigned signature(const kb_curve_judgement *j)
{
    unsigned s = (unsigned)j->light << 8;
    for (size_t i = 0; i < j->n_verdicts; i++) {
        s |= 1u << j->verdicts[i].kind;
    }
    return s;
}

typedef struct watch_state {
    curve_cli *cc;
    kb_curve curve;
    unsigned last_sig;
    int printed;
} watch_state;

static int report(watch_state *w, kb_error *err)
{
    kb_curve_judgement j;
    int rc = kb_curve_judge(&j, &w->curve, &w->cc->judge, err);
    if (rc != KB_OK) {
        return rc;
    }
    if (j.n_verdicts == 0 || (w->printed && signature(&j) == w->last_sig)) {
        kb_curve_judgement_release(&j);
        return KB_OK;
    }
    kb_curve_advice *a = NULL;
    size_t na = 0;
    if ((rc = kb_curve_advise(&a, &na, &j, w->cc->config, w->cc->n_config, err)) != KB_OK) {
        kb_curve_judgement_release(&j);
        return rc;
    }
    double step = w->curve.n_steps ? w->curve.steps[w->curve.n_steps - 1] : NAN;
    if (w->cc->json) {
        cJSON *o = curve_cli_json(&j, NULL, NAN, NAN, a, na);
        cJSON *doc = cJSON_CreateObject();
        if (o == NULL || doc == NULL) {
            cJSON_Delete(o);
            cJSON_Delete(doc);
            rc = kb_error_set(err, KB_ENOMEM, "out of memory");
        } else {
            cJSON_AddStringToObject(doc, "schema", "kb.watch/1");
            cJSON_AddNumberToObject(doc, "step", step);
            curve_cli_move_members(doc, o, "forecast");
            if (curve_cli_emit(doc, 0) != 0) {
                rc = kb_error_set(err, KB_ENOMEM, "out of memory");
            }
        }
    } else {
        const kb_curve_verdict *v = &j.verdicts[0];
        printf("step %g: %s %s at step %g (%.2f): %s", step, kb_curve_light_name(j.light),
               kb_curve_verdict_name(v->kind), v->step, v->confidence, v->detail);
        for (size_t i = 1; i < j.n_verdicts; i++) {
            printf("; also %s at step %g", kb_curve_verdict_name(j.verdicts[i].kind),
                   j.verdicts[i].step);
        }
        if (na > 0) {
            printf(" -- %s", a[0].text);
        }
        putchar('\n');
    }
    fflush(stdout);
    w->last_sig = signature(&j);
    w->printed = 1;
    kb_free(a);
    kb_curve_judgement_release(&j);
    return rc;
}

int cmd_watch(int argc, char **argv)
{
    curve_cli cc;
    curve_cli_init(&cc, "watch");
    size_t interval_ms = 200;
    double timeout_s = INFINITY;
    int rc = KB_EXIT_OK, fd = -1;
    kb_curveio *reader = NULL;
    char *buf = NULL;
    watch_state w;
    memset(&w, 0, sizeof w);
    w.cc = &cc;
    cli_parser p;
    cli_begin(&p, &cmd_watch_spec, argc, argv);
    for (int c; (c = cli_next(&p)) != -1;) {
        int h = curve_cli_option(&cc, c, p.arg);
        if (h < 0) {
            rc = KB_EXIT_USAGE;
            goto done;
        }
        if (h > 0) {
            continue;
        }
        switch (c) {
        case OPT_INTERVAL:
            if (cli_parse_size("watch", "interval-ms", p.arg, &interval_ms) != 0) {
                rc = KB_EXIT_USAGE;
                goto done;
            }
            if (interval_ms == 0 || interval_ms > 60000) {
                rc = cli_usage("watch", "option '--interval-ms': expected 1 to 60000");
                goto done;
            }
            break;
        case OPT_TIMEOUT:
            if (cli_parse_double("watch", "timeout", p.arg, &timeout_s) != 0) {
                rc = KB_EXIT_USAGE;
                goto done;
            }
            if (!(timeout_s > 0)) {
                rc = cli_usage("watch", "option '--timeout': expected a positive number");
                goto done;
            }
            break;
        case CLI_HELP_KEY: rc = KB_EXIT_OK; goto done;
        default: rc = KB_EXIT_USAGE; goto done;
        }
    }
    int rest = cli_rest(&p);
    if (argc - rest != 1) {
        rc = cli_usage("watch", argc == rest ? "missing FILE" : "expected one FILE");
        goto done;
    }
    const char *path = argv[rest];
    kb_error err = KB_ERROR_INIT;
    int is_pipe = strcmp(path, "-") == 0;
    fd = is_pipe ? 0 : open(path, O_RDONLY);
    if (fd < 0) {
        rc = cli_error("watch", KB_EXIT_FAILURE, "cannot open '%s': %s", path, strerror(errno));
        goto done;
    }
    struct stat st;
    if (!is_pipe && fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        is_pipe = 1; /* a FIFO given by name: read to its end */
    }
    cc.io.source = path;
    if (kb_curveio_new(&reader, &cc.io, &err) != KB_OK || (buf = kb_malloc(1 << 16)) == NULL) {
        rc = cli_error("watch", KB_EXIT_FAILURE, "out of memory");
        goto done;
    }
    double start = now_s();
    for (;;) {
        if (cli_interrupted) {
            rc = KB_EXIT_INTERRUPTED;
            break;
        }
        if (now_s() - start > timeout_s) {
            if (!cc.log.quiet) {
                fprintf(stderr, "kb watch: stopped after %g s without the run ending\n",
                        timeout_s);
            }
            break;
        }
        if (is_pipe) {
            struct pollfd pf = {fd, POLLIN, 0};
            int pr = poll(&pf, 1, (int)interval_ms);
            if (pr <= 0) {
                continue; /* timeout or EINTR: check the flags again */
            }
        }
        ssize_t got = read(fd, buf, 1 << 16);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = cli_error("watch", KB_EXIT_FAILURE, "reading '%s': %s", path, strerror(errno));
            break;
        }
        if (got == 0) {
            if (is_pipe) {
                break; /* the writer closed the pipe */
            }
            struct timespec ts = {(time_t)(interval_ms / 1000),
                                  (long)(interval_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        size_t before = kb_curveio_n_values(reader);
        if (kb_curveio_feed(reader, &w.curve, buf, (size_t)got, &err) != KB_OK ||
            (kb_curveio_n_values(reader) != before && report(&w, &err) != KB_OK)) {
            rc = cli_fail("watch", &err);
            goto done;
        }
        if (w.curve.done) {
            break;
        }
    }
    if (rc == KB_EXIT_OK || rc == KB_EXIT_INTERRUPTED) {
        size_t before = kb_curveio_n_values(reader);
        if (kb_curveio_finish(reader, &w.curve, &err) != KB_OK ||
            (kb_curveio_n_values(reader) != before && report(&w, &err) != KB_OK)) {
            rc = cli_fail("watch", &err);
            goto done;
        }
        if (rc == KB_EXIT_OK && kb_curveio_n_values(reader) == 0) {
            rc = cli_error("watch", KB_EXIT_DATA, "%s: no learning-curve values (%zu lines, %zu bad)",
                           path, kb_curveio_n_lines(reader), kb_curveio_n_bad(reader));
        }
    }
done:
    if (fd > 0) {
        close(fd);
    }
    kb_free(buf);
    kb_curveio_free(reader);
    kb_curve_release(&w.curve);
    curve_cli_release(&cc);
    return rc;
}
