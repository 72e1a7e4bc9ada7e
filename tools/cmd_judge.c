/* kb judge: read a learning curve, print its verdicts, traffic light, forecast and advice. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "tools/commands.h"
#include "tools/curve_cli.h"
#include "tools/exit.h"

enum { OPT_TARGET_STEP = CURVE_OPT_LAST, OPT_INCUMBENT, OPT_LEVEL, OPT_KB, OPT_TASK, OPT_SIMILAR };

static const cli_opt opts[] = {
    CURVE_CLI_OPTS,
    {"target-step", OPT_TARGET_STEP, 1, "N",
     "forecast the objective at step N (default: the config's max_iter, if any)"},
    {"incumbent", OPT_INCUMBENT, 1, "X", "best value so far: report P(this run beats it)"},
    {"level", OPT_LEVEL, 1, "P", "forecast interval probability (default 0.9)"},
    {"task", OPT_TASK, 1, "ID",
     "advice from the KB: which configuration change fixed this task's stored runs whose "
     "curves went the same way"},
    {"similar", OPT_SIMILAR, 1, "K",
     "with --task: also the runs of the K stored tasks nearest by meta-features (default 0)"},
    {"kb", OPT_KB, 1, "PATH", "the knowledge base for --task (default $KB_PATH or ./kb.lmdb)"},
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_judge_spec = {
    "judge",
    "kb judge FILE|- [--format F] [--metric NAME] [--mode min|max] [--config JSON]\n"
    "                [--target-step N] [--incumbent X] [--classes K]\n"
    "                [--task ID [--similar K] [--kb PATH]]\n"
    "                [--json]",
    "Judge a learning curve (kb's JSON lines, CSV, a Caffe training log or an MLflow metric "
    "file, gzip allowed) and print a traffic light (red: stop now; yellow: look; green), the "
    "verdicts with the step where each was first seen and a confidence (overflow, diverging, "
    "oscillating, underfitting, overfitting, converged, improving), a forecast of the "
    "objective at a target step from an ensemble of parametric curve models with the "
    "probability of beating an incumbent, and concrete advice computed from the run's "
    "configuration. With --task, also advice from the knowledge base: among the stored runs "
    "of the task (and of its --similar K nearest tasks by meta-features), those whose curves "
    "went the same way (their stored verdict, else their judged curve) and a run on the same "
    "task differing in one or two parameters that went well: which change fixed them, how "
    "often, and the median gain. A red light is a result, not "
    "a failure: the exit status is 0. With --json "
    "the output is one object with \"schema\": \"kb.judge/1\" (docs/FORMAT.md).",
    opts,
    "  kb judge run.jsonl --config '{\"base_lr\": 0.01, \"batch_size\": 128}'\n"
    "  kb judge caffe_train.log --classes 10 --target-step 10000 --incumbent 0.91\n"
    "  kb judge mlruns/0/abc/metrics/val_loss --json\n"
    "  kb judge run.jsonl --task letter --similar 5 --kb team.lmdb",
    "  0    judged (whatever the light)\n"
    "  1    the file or the knowledge base cannot be read\n"
    "  2    usage error\n"
    "  3    the file holds no learning-curve values"};

static double config_number(const curve_cli *cc, const char *name)
{
    const kb_param *p = kb_params_find(cc->config, cc->n_config, name);
    return p != NULL ? kb_value_as_double(&p->value) : NAN;
}

int cmd_judge(int argc, char **argv)
{
    curve_cli cc;
    curve_cli_init(&cc, "judge");
    double target = NAN, incumbent = NAN, level = 0.9;
    const char *opt_kb = NULL, *task_id = NULL;
    kb_store *store = NULL;
    curve_history hist;
    memset(&hist, 0, sizeof hist);
    kb_curve_fix *fixes = NULL;
    size_t n_fixes = 0;
    int have_hist = 0;
    size_t n_similar_want = 0, n_similar = 0;
    char **similar = NULL;
    char scope[256] = "";
    int rc = KB_EXIT_OK;
    kb_curve curve = KB_CURVE_INIT;
    kb_curve_judgement j;
    memset(&j, 0, sizeof j);
    kb_curve_advice *advice = NULL;
    size_t n_advice = 0;
    cli_parser p;
    cli_begin(&p, &cmd_judge_spec, argc, argv);
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
        case OPT_TARGET_STEP:
            if (cli_parse_double("judge", "target-step", p.arg, &target) != 0) {
                rc = KB_EXIT_USAGE;
                goto done;
            }
            if (!(target > 0) || !isfinite(target)) {
                rc = cli_usage("judge", "option '--target-step': expected a positive step");
                goto done;
            }
            break;
        case OPT_INCUMBENT:
            if (cli_parse_double("judge", "incumbent", p.arg, &incumbent) != 0) {
                rc = KB_EXIT_USAGE;
                goto done;
            }
            break;
        case OPT_LEVEL:
            if (cli_parse_double("judge", "level", p.arg, &level) != 0 || !(level > 0) ||
                !(level < 1)) {
                rc = cli_usage("judge", "option '--level': expected a probability in (0, 1)");
                goto done;
            }
            break;
        case OPT_KB: opt_kb = p.arg; break;
        case OPT_TASK: task_id = p.arg; break;
        case OPT_SIMILAR:
            if (cli_parse_size("judge", "similar", p.arg, &n_similar_want) != 0) {
                rc = KB_EXIT_USAGE;
                goto done;
            }
            break;
        case CLI_HELP_KEY: rc = KB_EXIT_OK; goto done;
        default: rc = KB_EXIT_USAGE; goto done;
        }
    }
    int rest = cli_rest(&p);
    if (argc - rest != 1) {
        rc = cli_usage("judge", argc == rest ? "missing FILE" : "expected one FILE");
        goto done;
    }
    const char *path = argv[rest];
    kb_error err = KB_ERROR_INIT;
    kb_curveio_format fmt = cc.io.format;
    if (kb_curveio_read(&curve, &fmt, path, &cc.io, &err) != KB_OK) {
        rc = cli_fail("judge", &err);
        goto done;
    }
    if (kb_curve_judge(&j, &curve, &cc.judge, &err) != KB_OK) {
        rc = err.code == KB_EINVAL ? cli_usage("judge", "%s", err.msg) : cli_fail("judge", &err);
        goto done;
    }
    if (isnan(target)) {
        target = config_number(&cc, "max_iter");
    }
    kb_curve_pred fc;
    int have_fc = 0;
    if (isfinite(target) && j.n_points > 0) {
        kb_curve_forecast_opts fo = KB_CURVE_FORECAST_OPTS_INIT;
        fo.level = level;
        kb_error ferr = KB_ERROR_INIT;
        if (kb_curve_forecast(&fc, &curve, &j, target, incumbent, &fo, &ferr) == KB_OK) {
            have_fc = 1;
        } else if (ferr.code == KB_ENOMEM) {
            rc = cli_fail("judge", &ferr);
            goto done;
        } else if (!cc.log.quiet) {
            fprintf(stderr, "kb judge: warning: no forecast: %s\n", ferr.msg);
        }
    }
    if (kb_curve_advise(&advice, &n_advice, &j, cc.config, cc.n_config, &err) != KB_OK) {
        rc = cli_fail("judge", &err);
        goto done;
    }
    kb_curve_verdict_kind primary =
        j.n_verdicts > 0 ? j.verdicts[0].kind : KB_CURVE_VERDICT_IMPROVING;
    if (task_id != NULL) {
        if ((rc = cli_open_store(&store, "judge", opt_kb, KB_STORE_OPEN_RDONLY, &cc.log)) !=
            KB_EXIT_OK) {
            goto done;
        }
        if (curve_history_neighbours(&similar, &n_similar, store, task_id, n_similar_want,
                                     &err) != KB_OK ||
            curve_history_load(&hist, store, task_id, &cc.judge, &err) != KB_OK) {
            rc = cli_fail("judge", &err);
            goto done;
        }
        for (size_t i = 0; i < n_similar; i++) {
            if (curve_history_load(&hist, store, similar[i], &cc.judge, &err) != KB_OK) {
                rc = cli_fail("judge", &err);
                goto done;
            }
        }
        if (n_similar > 0) {
            snprintf(scope, sizeof scope, "task %s and %zu similar task%s", task_id, n_similar,
                     n_similar == 1 ? "" : "s");
        } else {
            snprintf(scope, sizeof scope, "task %s", task_id);
        }
        int maximize = hist.have_direction ? hist.maximize : j.maximize;
        if (primary != KB_CURVE_VERDICT_CONVERGED && primary != KB_CURVE_VERDICT_IMPROVING &&
            kb_curve_advise_history(&fixes, &n_fixes, primary, hist.runs, hist.n, maximize,
                                    &err) != KB_OK) {
            rc = cli_fail("judge", &err);
            goto done;
        }
        have_hist = 1;
    }
    if (cc.json) {
        cJSON *o = curve_cli_json(&j, have_fc ? &fc : NULL, incumbent, level, advice, n_advice);
        cJSON *doc = cJSON_CreateObject();
        if (o == NULL || doc == NULL) {
            cJSON_Delete(o);
            cJSON_Delete(doc);
            rc = cli_error("judge", KB_EXIT_FAILURE, "out of memory");
            goto done;
        }
        cJSON_AddStringToObject(doc, "schema", "kb.judge/1");
        cJSON_AddStringToObject(doc, "source", path);
        cJSON_AddStringToObject(doc, "format", kb_curveio_format_name(fmt));
        /* the judgement's members after the header fields */
        curve_cli_move_members(doc, o, NULL);
        if (curve.status != NULL) {
            cJSON_AddStringToObject(doc, "run_status", curve.status);
        } else {
            cJSON_AddNullToObject(doc, "run_status");
        }
        cJSON_AddBoolToObject(doc, "done", curve.done);
        if (have_hist) {
            cJSON *hj = curve_cli_fixes_json(task_id, similar, n_similar, hist.n, primary, fixes,
                                             n_fixes);
            if (hj == NULL || !cJSON_AddItemToObject(doc, "history", hj)) {
                cJSON_Delete(hj);
                cJSON_Delete(doc);
                rc = cli_error("judge", KB_EXIT_FAILURE, "out of memory");
                goto done;
            }
        } else {
            cJSON_AddNullToObject(doc, "history");
        }
        if (curve_cli_emit(doc, 1) != 0) {
            rc = cli_error("judge", KB_EXIT_FAILURE, "out of memory");
        }
        goto done;
    }
    printf("light     %s\n", kb_curve_light_name(j.light));
    for (size_t i = 0; i < j.n_verdicts; i++) {
        curve_cli_print_verdict(stdout, &j.verdicts[i]);
    }
    if (j.n_points > 0) {
        printf("objective %s (%s): last %.4g at step %g, best %.4g at step %g, noise %.3g\n",
               j.metric, j.maximize ? "max" : "min", j.last_value, j.last_step, j.best_value,
               j.best_step, j.noise);
    } else {
        printf("objective %s: no finite point%s\n", j.metric[0] ? j.metric : "none",
               j.verdicts != NULL && j.verdicts[0].kind == KB_CURVE_VERDICT_OVERFLOW
                   ? " before the overflow" : "");
    }
    if (have_fc) {
        curve_cli_print_forecast(stdout, j.metric, &fc, incumbent, level);
    }
    curve_cli_print_advice(stdout, advice, n_advice);
    for (size_t i = 0; i < n_fixes; i++) {
        curve_cli_print_fix(stdout, &fixes[i], primary, scope);
    }
    if (have_hist && n_fixes == 0 && primary != KB_CURVE_VERDICT_CONVERGED &&
        primary != KB_CURVE_VERDICT_IMPROVING) {
        printf("advice    from the KB: no %s run of %s was fixed by a small change (%zu runs)\n",
               kb_curve_verdict_name(primary), scope, hist.n);
    }
done:
    kb_free(fixes);
    for (size_t i = 0; i < n_similar; i++) {
        kb_free(similar[i]);
    }
    kb_free(similar);
    curve_history_release(&hist);
    kb_store_close(store);
    kb_free(advice);
    kb_curve_judgement_release(&j);
    kb_curve_release(&curve);
    curve_cli_release(&cc);
    return rc;
}
