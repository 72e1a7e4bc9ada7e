/* kb space: show a search space and sample designs of configurations from it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/core/alloc.h"
#include "engine/core/rng.h"
#include "engine/encode.h"
#include "kb/json.h"
#include "tools/commands.h"
#include "tools/exit.h"

enum { OPT_KB = CLI_KEY(0), OPT_FILE, OPT_N, OPT_DESIGN, OPT_SEED, OPT_DEFAULT, OPT_JSON };

static const cli_opt opts[] = {
    {"kb", OPT_KB, 1, "PATH", "knowledge base holding the space (default $KB_PATH or ./kb.lmdb)"},
    {"file", OPT_FILE, 1, "FILE", "read the space from kb JSON Lines instead of the knowledge base"},
    {"n", 'n', 1, "N", "sample: number of configurations (default 10)"},
    {"design", OPT_DESIGN, 1, "KIND", "sample: sobol (default), lhs or random"},
    {"seed", OPT_SEED, 1, "S", "sample: random seed (default 1)"},
    {"with-default", OPT_DEFAULT, 0, NULL, "sample: put the space's default configuration first"},
    {"json", OPT_JSON, 0, NULL, "show: print the space's canonical JSON"},
    {NULL, 0, 0, NULL, NULL}};

const cli_spec cmd_space_spec = {
    "space", "kb space show NAME [options]\n       kb space sample NAME [options]",
    "Work with a search space stored in the knowledge base (or, with --file, one in a kb JSON "
    "Lines file). 'show' prints its parameters: type, range or choices, scale, default and "
    "condition. 'sample' prints a seeded space-filling design of configurations — a "
    "scrambled Sobol sequence, a Latin hypercube or uniform draws, with conditions honoured — "
    "as JSON Lines {\"i\": 0, \"config\": {...}}: the same seed gives the same design.",
    opts,
    "  kb space show svm\n"
    "  kb space sample svm --file datasets/spaces.jsonl --n 100 --seed 1 --with-default\n"
    "  kb space sample mlp --design lhs --n 60 > design.jsonl",
    NULL};

/* Find space `name` in a kb JSON Lines file. */
static int space_from_file(kb_space *out, const char *path, const char *name, kb_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return kb_error_set(err, KB_EIO, "cannot read '%s'", path);
    }
    kb_json_reader *rd = NULL;
    int rc = kb_json_reader_new(&rd, err);
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    int found = 0;
    while (rc == KB_OK && !found && (len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)len) {
            continue;
        }
        kb_record rec = {0};
        kb_task inline_task = {0};
        rc = kb_json_read_record(&rec, &inline_task, rd, line, (size_t)len, NULL, err);
        if (rc != KB_OK) {
            kb_error_prefix(err, "%s:%zu: ", path, lineno);
            break;
        }
        if (rec.kind == KB_RECORD_SPACE && strcmp(rec.space.name, name) == 0) {
            *out = rec.space;
            memset(&rec.space, 0, sizeof rec.space);
            found = 1;
        }
        kb_record_release(&rec);
        kb_task_release(&inline_task);
    }
    free(line);
    fclose(f);
    kb_json_reader_free(rd);
    if (rc == KB_OK && !found) {
        rc = kb_error_set(err, KB_ENOTFOUND, "'%s' has no space named '%s'", path, name);
    }
    return rc;
}

static int print_config(size_t i, const kb_param *cfg, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "i", (double)i);
    cJSON *c = cJSON_AddObjectToObject(o, "config");
    for (size_t j = 0; c != NULL && j < n; j++) {
        cJSON_AddItemToObject(c, cfg[j].name, cli_value_json(&cfg[j].value));
    }
    return cli_emit_json(o);
}

/* The default configuration: every active parameter at its default (or its range's middle). */
static int default_config(kb_param **out, size_t *n_out, const kb_encode *enc, kb_error *err)
{
    size_t p = kb_encode_n_params(enc);
    double *u = kb_malloc_array(p, sizeof *u);
    if (u == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    for (size_t j = 0; j < p; j++) {
        u[j] = NAN; /* snap turns NaN of an active parameter into its default */
    }
    kb_encode_snap(enc, u);
    int rc = kb_encode_decode(out, n_out, enc, u, err);
    kb_free(u);
    /* The decoded values went through the unit cube; put back the exact defaults. */
    for (size_t i = 0; rc == KB_OK && i < *n_out; i++) {
        const kb_value *d = NULL;
        for (size_t j = 0; j < p; j++) {
            const kb_space_param *sp = kb_encode_param(enc, j);
            if (strcmp(sp->name, (*out)[i].name) == 0 &&
                sp->default_value.type != KB_VALUE_TYPE_NONE) {
                d = &sp->default_value;
            }
        }
        if (d != NULL) {
            kb_value_release(&(*out)[i].value);
            if (kb_value_copy(&(*out)[i].value, d) != KB_OK) {
                rc = kb_error_set(err, KB_ENOMEM, "out of memory");
            }
        }
    }
    return rc;
}

static int sample(const kb_space *space, size_t n, kb_encode_design design, uint64_t seed,
                  int with_default)
{
    kb_error err = KB_ERROR_INIT;
    kb_encode *enc = NULL;
    if (kb_encode_new(&enc, space, &err) != KB_OK) {
        return cli_fail("space", &err);
    }
    size_t p = kb_encode_n_params(enc);
    double *u = kb_malloc_array(n * (p ? p : 1), sizeof *u);
    int rc = KB_EXIT_OK;
    kb_rng rng;
    kb_rng_seed(&rng, seed);
    if (u == NULL || kb_encode_sample(u, n ? n : 1, enc, n, design, &rng, &err) != KB_OK) {
        rc = cli_fail("space", &err);
    }
    size_t index = 0;
    if (rc == KB_EXIT_OK && with_default) {
        kb_param *cfg = NULL;
        size_t nc = 0;
        if (default_config(&cfg, &nc, enc, &err) != KB_OK) {
            rc = cli_fail("space", &err);
        } else {
            rc = print_config(index++, cfg, nc);
        }
        kb_params_free(cfg, nc);
    }
    double *row = rc == KB_EXIT_OK ? kb_malloc_array(p ? p : 1, sizeof *row) : NULL;
    for (size_t i = 0; row != NULL && rc == KB_EXIT_OK && i < n; i++) {
        for (size_t j = 0; j < p; j++) {
            row[j] = u[i + j * n];
        }
        kb_param *cfg = NULL;
        size_t nc = 0;
        if (kb_encode_decode(&cfg, &nc, enc, row, &err) != KB_OK) {
            rc = cli_fail("space", &err);
        } else {
            rc = print_config(index++, cfg, nc);
        }
        kb_params_free(cfg, nc);
    }
    kb_free(row);
    kb_free(u);
    kb_encode_free(enc);
    return rc;
}

static void show(const kb_space *s)
{
    static const char *const types[] = {"?", "float", "int", "categorical", "bool"};
    printf("space %s: %zu parameters\n", s->name, s->n_params);
    for (size_t i = 0; i < s->n_params; i++) {
        const kb_space_param *p = &s->params[i];
        printf("  %-16s %-12s", p->name, types[(unsigned)p->type <= 4 ? p->type : 0]);
        if (p->type == KB_SPACE_PARAM_FLOAT || p->type == KB_SPACE_PARAM_INT) {
            printf(" [%g, %g]%s", p->low, p->high, p->log ? " log" : "");
        }
        for (size_t j = 0; j < p->n_choices; j++) {
            printf("%s%s", j == 0 ? " {" : ", ", p->choices[j]);
        }
        printf("%s", p->n_choices ? "}" : "");
        const kb_value *d = &p->default_value;
        if (d->type == KB_VALUE_TYPE_FLOAT || d->type == KB_VALUE_TYPE_INT) {
            printf("  default %g", kb_value_as_double(d));
        } else if (d->type == KB_VALUE_TYPE_STR) {
            printf("  default %s", d->s);
        } else if (d->type == KB_VALUE_TYPE_BOOL) {
            printf("  default %s", d->b ? "true" : "false");
        }
        if (p->cond_parent != NULL) {
            printf("  when %s in", p->cond_parent);
            for (size_t j = 0; j < p->n_cond_in; j++) {
                printf("%s%s", j == 0 ? " {" : ", ", p->cond_in[j]);
            }
            printf("}");
        }
        putchar('\n');
    }
}

int cmd_space(int argc, char **argv)
{
    const char *opt_kb = NULL, *file = NULL;
    size_t n = 10;
    unsigned long long seed = 1;
    int with_default = 0, json = 0;
    kb_encode_design design = KB_ENCODE_DESIGN_SOBOL;
    cli_parser p;
    cli_begin(&p, &cmd_space_spec, argc, argv);
    for (int c; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case OPT_KB: opt_kb = p.arg; break;
        case OPT_FILE: file = p.arg; break;
        case 'n':
            if (cli_parse_size("space", "n", p.arg, &n) != 0) {
                return KB_EXIT_USAGE;
            }
            break;
        case OPT_SEED:
            if (cli_parse_u64("space", "seed", p.arg, &seed) != 0) {
                return KB_EXIT_USAGE;
            }
            break;
        case OPT_DESIGN:
            if (strcmp(p.arg, "sobol") == 0) {
                design = KB_ENCODE_DESIGN_SOBOL;
            } else if (strcmp(p.arg, "lhs") == 0) {
                design = KB_ENCODE_DESIGN_LHS;
            } else if (strcmp(p.arg, "random") == 0) {
                design = KB_ENCODE_DESIGN_UNIFORM;
            } else {
                return cli_usage("space", "unknown design '%s' (sobol, lhs, random)", p.arg);
            }
            break;
        case OPT_DEFAULT: with_default = 1; break;
        case OPT_JSON: json = 1; break;
        case CLI_HELP_KEY: return KB_EXIT_OK;
        default: return KB_EXIT_USAGE;
        }
    }
    int first = cli_rest(&p);
    if (argc - first != 2 || (strcmp(argv[first], "show") != 0 &&
                              strcmp(argv[first], "sample") != 0)) {
        return cli_usage("space", "expected 'show NAME' or 'sample NAME'");
    }
    const char *name = argv[first + 1];
    kb_space space = {0};
    kb_error err = KB_ERROR_INIT;
    if (file != NULL) {
        if (space_from_file(&space, file, name, &err) != KB_OK) {
            return cli_fail("space", &err);
        }
    } else {
        cli_log_opts log = {"space", 0, 0};
        kb_store *store = NULL;
        int rc = cli_open_store(&store, "space", opt_kb, KB_STORE_OPEN_RDONLY, &log);
        if (rc != KB_EXIT_OK) {
            return rc;
        }
        rc = kb_store_get_space(&space, store, name, &err);
        kb_store_close(store);
        if (rc == KB_ENOTFOUND) {
            return cli_error("space", KB_EXIT_FAILURE, "no space named '%s'", name);
        }
        if (rc != KB_OK) {
            return cli_fail("space", &err);
        }
    }
    int rc = KB_EXIT_OK;
    if (strcmp(argv[first], "sample") == 0) {
        rc = sample(&space, n, design, seed, with_default);
    } else if (json) {
        kb_buf b = KB_BUF_INIT;
        if (kb_json_write_space(&b, &space, &err) != KB_OK) {
            rc = cli_fail("space", &err);
        } else {
            puts(b.data);
        }
        kb_buf_release(&b);
    } else {
        show(&space);
    }
    kb_space_release(&space);
    return rc;
}
