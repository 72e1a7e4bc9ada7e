/*
 * Shared body of the learning-curve fuzz targets: the reader for one format, fed in two chunks
 * split at a point taken from the input, then the judgement, advice, forecast, pruning decision
 * and stored-verdict JSON on whatever curve came out. Nothing may crash, leak or trip a
 * sanitizer, and the verdict JSON must parse.
 */
#ifndef KB_TESTS_FUZZ_CURVE_FUZZ_H
#define KB_TESTS_FUZZ_CURVE_FUZZ_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/curve.h"
#include "engine/curveio.h"

static inline int curve_fuzz_run(const uint8_t *data, size_t size, kb_curveio_format format)
{
    kb_curveio_opts o = KB_CURVEIO_OPTS_INIT;
    o.format = format;
    o.source = "fuzz";
    kb_curveio *r = NULL;
    kb_curve c = KB_CURVE_INIT;
    if (kb_curveio_new(&r, &o, NULL) != KB_OK) {
        return 0;
    }
    size_t cut = size > 0 ? data[0] % (size + 1) : 0;
    kb_curveio_feed(r, &c, (const char *)data, cut, NULL);
    kb_curveio_feed(r, &c, (const char *)data + cut, size - cut, NULL);
    kb_curveio_finish(r, &c, NULL);
    kb_curveio_free(r);

    kb_curve_judgement j;
    if (kb_curve_judge(&j, &c, NULL, NULL) == KB_OK) {
        kb_curve_advice *a = NULL;
        size_t n = 0;
        if (kb_curve_advise(&a, &n, &j, NULL, 0, NULL) == KB_OK) {
            kb_free(a);
        }
        if (j.n_points >= 5 && j.n_points <= 400) {
            kb_curve_pred f;
            kb_curve_forecast(&f, &c, &j, j.last_step * 2 + 1, 0.5, NULL, NULL);
            kb_curve_prune pr;
            kb_curve_prune_check(&pr, &c, NULL, j.last_step * 2 + 1, 0.5, 0.05, NULL);
        }
        char *text = NULL;
        if (kb_curve_verdict_json(&text, &c, NULL, NULL, 0, NULL) == KB_OK) {
            cJSON *doc = cJSON_Parse(text);
            if (doc == NULL) {
                abort(); /* the stored verdict must be valid JSON */
            }
            cJSON_Delete(doc);
            kb_free(text);
        }
        kb_curve_judgement_release(&j);
    }
    kb_curve_release(&c);
    return 0;
}

#endif
