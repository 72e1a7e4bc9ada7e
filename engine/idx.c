/*
 * IDX reader: each file is read whole into memory (growing with the bytes actually present,
 * so a header claiming a huge size costs nothing), checked against its header, then the
 * images are spread into columns.
 */
#include "engine/idx.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/core/buf.h"
#include "engine/dataset_priv.h"

#define IDX_TYPE_U8 0x08

typedef struct idx_file {
    const char *name;
    const unsigned char *data; /* whole file */
    size_t n;
    size_t dims[3];
    size_t n_dims;
    const unsigned char *elems;
    size_t n_elems;
} idx_file;

/* Read a whole source into `b`; memory grows with the bytes present, not the header's claim. */
static int slurp(kb_buf *b, kb_dataset__src *src, kb_error *err)
{
    for (;;) {
        if (kb_buf_reserve(b, 1u << 20) != KB_OK) {
            return kb_error_set(err, KB_ENOMEM, "%s: out of memory", src->name);
        }
        size_t got = 0;
        int rc = kb_dataset__src_read(src, b->data + b->len, b->cap - b->len - 1, &got, err);
        if (rc != KB_OK) {
            return rc;
        }
        if (got == 0) {
            return KB_OK;
        }
        b->len += got;
    }
}

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Check the header of `f` against the expected number of dimensions and the data size. */
static int parse_header(idx_file *f, size_t want_dims, kb_error *err)
{
    const unsigned char *p = f->data;
    if (f->n < 4 || p[0] != 0 || p[1] != 0) {
        return kb_error_set(err, KB_EFORMAT, "%s: not an IDX file (bad magic)", f->name);
    }
    if (p[2] != IDX_TYPE_U8) {
        return kb_error_set(err, KB_EFORMAT,
                            "%s: unsupported IDX element type 0x%02x (only unsigned bytes, 0x08)",
                            f->name, p[2]);
    }
    if (p[3] != want_dims) {
        return kb_error_set(err, KB_EFORMAT,
                            "%s: IDX file has %u dimensions, expected %zu (magic 0x%08x)",
                            f->name, (unsigned)p[3], want_dims, (unsigned)(0x800 + want_dims));
    }
    size_t header = 4 + 4 * want_dims;
    if (f->n < header) {
        return kb_error_set(err, KB_EFORMAT, "%s: truncated IDX header (%zu of %zu bytes)",
                            f->name, f->n, header);
    }
    size_t count = 1;
    for (size_t k = 0; k < want_dims; k++) {
        f->dims[k] = be32(p + 4 + 4 * k);
        if (f->dims[k] != 0 && count > SIZE_MAX / f->dims[k]) {
            return kb_error_set(err, KB_EFORMAT, "%s: IDX dimensions overflow", f->name);
        }
        count *= f->dims[k];
    }
    f->n_dims = want_dims;
    if (f->n - header != count) {
        return kb_error_set(err, KB_EFORMAT,
                            "%s: file size does not match its header: %zu bytes of data, the "
                            "header says %zu",
                            f->name, f->n - header, count);
    }
    f->elems = p + header;
    f->n_elems = count;
    return KB_OK;
}

static int build(kb_dataset *d, idx_file *img, idx_file *lab, const kb_dataset_opts *opts,
                 kb_error *err)
{
    int rc;
    if ((rc = parse_header(img, 3, err)) != KB_OK || (rc = parse_header(lab, 1, err)) != KB_OK) {
        return rc;
    }
    size_t n = img->dims[0], h = img->dims[1], w = img->dims[2], np = h * w;
    if (lab->dims[0] != n) {
        return kb_error_set(err, KB_EFORMAT, "%s: %zu labels for %zu images in %s", lab->name,
                            lab->dims[0], n, img->name);
    }
    if (n == 0) {
        return kb_error_set(err, KB_EFORMAT, "%s: no images", img->name);
    }
    d->n_rows = n;
    d->n_cols = np;
    d->img_channels = 1;
    d->img_height = h;
    d->img_width = w;
    d->cols = kb_calloc(np > 0 ? np : 1, sizeof *d->cols);
    d->x = kb_malloc_array(np > 0 ? n : 1, (np > 0 ? np : 1) * sizeof(double));
    double *y = kb_malloc_array(n, sizeof *y);
    if (d->cols == NULL || d->x == NULL || y == NULL ||
        (d->target_name = kb_strdup("label")) == NULL) {
        kb_free(y);
        return kb_error_set(err, KB_ENOMEM, "%s: out of memory", img->name);
    }
    for (size_t j = 0; j < np; j++) {
        char name[32];
        snprintf(name, sizeof name, "pixel%zu", j + 1);
        d->cols[j].type = KB_COLUMN_NUMERIC;
        if ((d->cols[j].name = kb_strdup(name)) == NULL) {
            kb_free(y);
            return kb_error_set(err, KB_ENOMEM, "%s: out of memory", img->name);
        }
    }
    /* row-major bytes to column-major doubles, a block of rows at a time for locality */
    const size_t block = 64;
    for (size_t i0 = 0; i0 < n; i0 += block) {
        size_t i1 = i0 + block < n ? i0 + block : n;
        for (size_t j = 0; j < np; j++) {
            double *col = d->x + j * n;
            for (size_t i = i0; i < i1; i++) {
                col[i] = (double)img->elems[i * np + j];
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        y[i] = (double)lab->elems[i];
    }
    kb_dataset_opts o = KB_DATASET_OPTS_INIT;
    if (opts != NULL) {
        o = *opts;
    }
    if (o.task == KB_DATASET_TASK_AUTO) {
        o.task = KB_DATASET_TASK_CLASSIFICATION; /* IDX labels are classes */
    }
    return kb_dataset__finish(d, y, NULL, 0, &o, img->name, 0, NULL, err);
}

/* The labels file next to an images file: "images" -> "labels", "idx3" -> "idx1". */
static char *labels_path_for(const char *images)
{
    char *p = kb_strdup(images);
    if (p == NULL) {
        return NULL;
    }
    char *base = strrchr(p, '/');
    base = base != NULL ? base + 1 : p;
    char *s = strstr(base, "images");
    if (s != NULL) {
        memcpy(s, "labels", 6);
    }
    s = strstr(base, "idx3");
    if (s != NULL) {
        s[3] = '1';
    }
    return p;
}

static int read_file(kb_buf *b, const char *path, kb_error *err)
{
    kb_dataset__src src;
    int rc = kb_dataset__src_open(&src, path, err);
    if (rc != KB_OK) {
        return rc;
    }
    rc = slurp(b, &src, err);
    kb_dataset__src_close(&src);
    return rc;
}

int kb_idx_read(kb_dataset *out, const char *images_path, const char *labels_path,
                const kb_dataset_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    memset(out, 0, sizeof *out);
    KB_CHECK_ARG(images_path != NULL);
    kb_buf ib = KB_BUF_INIT, lb = KB_BUF_INIT;
    char *derived = NULL;
    int rc;
    if (labels_path == NULL) {
        if ((derived = labels_path_for(images_path)) == NULL) {
            rc = kb_error_set(err, KB_ENOMEM, "%s: out of memory", images_path);
            goto done;
        }
        if (strcmp(derived, images_path) == 0) {
            rc = kb_error_set(err, KB_EINVAL,
                              "%s: cannot tell the labels file's name (expected 'images' and "
                              "'idx3' in the name)",
                              images_path);
            goto done;
        }
        labels_path = derived;
    }
    if ((rc = read_file(&ib, images_path, err)) != KB_OK ||
        (rc = read_file(&lb, labels_path, err)) != KB_OK) {
        goto done;
    }
    idx_file img = {images_path, (const unsigned char *)ib.data, ib.len, {0}, 0, NULL, 0};
    idx_file lab = {labels_path, (const unsigned char *)lb.data, lb.len, {0}, 0, NULL, 0};
    if ((rc = build(out, &img, &lab, opts, err)) != KB_OK) {
        goto done;
    }
    if ((out->path = kb_strdup(images_path)) == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "%s: out of memory", images_path);
    }
done:
    if (rc != KB_OK) {
        kb_dataset_release(out);
    }
    kb_buf_release(&ib);
    kb_buf_release(&lb);
    kb_free(derived);
    return rc;
}

int kb_idx_read_mem(kb_dataset *out, const void *images, size_t n_images_bytes,
                    const void *labels, size_t n_labels_bytes, const char *name,
                    const kb_dataset_opts *opts, kb_error *err)
{
    KB_CHECK_ARG(out != NULL);
    memset(out, 0, sizeof *out);
    KB_CHECK_ARG(images != NULL || n_images_bytes == 0);
    KB_CHECK_ARG(labels != NULL || n_labels_bytes == 0);
    KB_CHECK_ARG(name != NULL);
    idx_file img = {name, images, n_images_bytes, {0}, 0, NULL, 0};
    idx_file lab = {name, labels, n_labels_bytes, {0}, 0, NULL, 0};
    int rc = build(out, &img, &lab, opts, err);
    if (rc == KB_OK && (out->path = kb_strdup(name)) == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "%s: out of memory", name);
    }
    if (rc != KB_OK) {
        kb_dataset_release(out);
    }
    return rc;
}
