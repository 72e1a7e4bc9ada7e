/*
 * kb_net weights files: the backbone format of docs/FORMAT.md ("Weights file"), version 1.
 * Little-endian throughout; a SHA-256 of every preceding byte closes the file, so a load
 * detects truncation, bit rot and foreign files before any value is used.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/core/buf.h"
#include "engine/core/sha256.h"
#include "engine/net_priv.h"

#define MAGIC "KBNETWT\0"
#define MAGIC_LEN 8

static int put_u32(kb_buf *b, uint32_t v)
{
    unsigned char le[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24)};
    return kb_buf_append(b, le, 4);
}

static int put_u64(kb_buf *b, uint64_t v)
{
    int rc = put_u32(b, (uint32_t)v);
    return rc != KB_OK ? rc : put_u32(b, (uint32_t)(v >> 32));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int put_text(kb_buf *b, const char *s)
{
    size_t n = strlen(s);
    int rc = put_u32(b, (uint32_t)n);
    return rc != KB_OK ? rc : kb_buf_append(b, s, n);
}

int kb_net__weights_encode(kb_buf *b, const kb_net *net, const char *signature)
{
    char arch[KB_NET_ARCH_MAX];
    kb_net_arch_format(arch, sizeof arch, &net->arch);
    size_t start = b->len;
    int rc = kb_buf_append(b, MAGIC, MAGIC_LEN);
    rc = rc ? rc : put_u32(b, KB_NET_WEIGHTS_VERSION);
    rc = rc ? rc : put_u32(b, (uint32_t)net->task);
    rc = rc ? rc : put_u32(b, (uint32_t)net->n_outputs);
    rc = rc ? rc : put_u32(b, (uint32_t)(net->input.image ? 1 : 0));
    rc = rc ? rc : put_u32(b, (uint32_t)net->input.channels);
    rc = rc ? rc : put_u32(b, (uint32_t)net->input.height);
    rc = rc ? rc : put_u32(b, (uint32_t)net->input.width);
    rc = rc ? rc : put_text(b, arch);
    rc = rc ? rc : put_text(b, signature);
    rc = rc ? rc : put_u32(b, (uint32_t)net->n_param_layers);
    for (size_t p = 0; rc == KB_OK && p < net->n_param_layers; p++) {
        const kb_net__layer *L = &net->layers[net->param_layer[p]];
        rc = put_u32(b, (uint32_t)L->kind);
        rc = rc ? rc : put_u32(b, (uint32_t)L->rows);
        rc = rc ? rc : put_u32(b, (uint32_t)L->fan_in);
    }
    rc = rc ? rc : put_u64(b, (uint64_t)net->n_params);
    rc = rc ? rc : kb_net__put_floats(b, net->params, net->n_params);
    if (rc != KB_OK) {
        return rc;
    }
    unsigned char digest[32];
    kb_sha256_digest(b->data + start, b->len - start, digest);
    return kb_buf_append(b, digest, 32);
}

int kb_net__put_floats(kb_buf *b, const float *v, size_t n)
{
    int rc = kb_buf_reserve(b, n * 4 + 32);
    for (size_t i = 0; rc == KB_OK && i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        rc = put_u32(b, bits);
    }
    return rc;
}

int kb_net__write_file(const char *path, const kb_buf *b, kb_error *err)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        int e = errno;
        return kb_error_set_cause(err, KB_EIO, e, "cannot create '%s': %s", path, strerror(e));
    }
    size_t w = fwrite(b->data, 1, b->len, f);
    int close_rc = fclose(f);
    if (w != b->len || close_rc != 0) {
        return kb_error_set(err, KB_EIO, "cannot write '%s'", path);
    }
    return KB_OK;
}

int kb_net_weights_save(const kb_net *net, const char *path, const char *signature,
                        kb_error *err)
{
    KB_CHECK_ARG(net != NULL && path != NULL && signature != NULL);
    KB_CHECK_ARG(strlen(signature) < KB_NET_SIGNATURE_MAX);
    kb_buf b = KB_BUF_INIT;
    int rc = kb_net__weights_encode(&b, net, signature);
    rc = rc != KB_OK ? kb_error_set(err, KB_ENOMEM, "out of memory writing '%s'", path)
                     : kb_net__write_file(path, &b, err);
    kb_buf_release(&b);
    return rc;
}

int kb_net__read_file(unsigned char **out, size_t *len_out, const char *path, kb_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        return kb_error_set_cause(err, e == ENOENT ? KB_ENOTFOUND : KB_EIO, e,
                                  "cannot open '%s': %s", path, strerror(e));
    }
    kb_buf b = KB_BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (kb_buf_append(&b, chunk, n) != KB_OK) {
            fclose(f);
            kb_buf_release(&b);
            return kb_error_set(err, KB_ENOMEM, "out of memory reading '%s'", path);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        kb_buf_release(&b);
        return kb_error_set(err, KB_EIO, "cannot read '%s'", path);
    }
    *out = (unsigned char *)b.data;
    *len_out = b.len;
    return KB_OK;
}

typedef struct layer_shape {
    uint32_t kind, rows, fan_in;
} layer_shape;

typedef struct parsed {
    kb_net_weights_info info;
    layer_shape shapes[KB_NET_MAX_LAYERS + 1];
    const unsigned char *data; /* n_params little-endian floats */
} parsed;

/* a bounded cursor: every read checks the bytes remain, so a cut file is "truncated" */
typedef struct cursor {
    const unsigned char *p, *end;
    int bad;
} cursor;

static uint32_t cur_u32(cursor *c)
{
    if (c->bad || c->end - c->p < 4) {
        c->bad = 1;
        return 0;
    }
    uint32_t v = get_u32(c->p);
    c->p += 4;
    return v;
}

static void cur_text(cursor *c, char *dst, size_t cap)
{
    uint32_t n = cur_u32(c);
    if (c->bad || n >= cap || (size_t)(c->end - c->p) < n) {
        c->bad = 1;
        dst[0] = '\0';
        return;
    }
    memcpy(dst, c->p, n);
    dst[n] = '\0';
    c->p += n;
}

static int parse(parsed *out, const unsigned char *buf, size_t len, const char *path,
                 kb_error *err)
{
    memset(out, 0, sizeof *out);
    if (len < MAGIC_LEN || memcmp(buf, MAGIC, MAGIC_LEN) != 0) {
        return kb_error_set(err, KB_EFORMAT, "'%s': not a kb weights file (bad magic)", path);
    }
    cursor c = {buf + MAGIC_LEN, buf + len, 0};
    kb_net_weights_info *info = &out->info;
    info->version = cur_u32(&c);
    if (!c.bad && info->version != KB_NET_WEIGHTS_VERSION) {
        return kb_error_set(err, KB_EVERSION,
                            "'%s': weights format version %u is not supported (this build "
                            "reads version %d)", path, (unsigned)info->version,
                            KB_NET_WEIGHTS_VERSION);
    }
    info->task = (kb_net_task)cur_u32(&c);
    info->n_outputs = cur_u32(&c);
    info->input.image = (int)cur_u32(&c);
    info->input.channels = cur_u32(&c);
    info->input.height = cur_u32(&c);
    info->input.width = cur_u32(&c);
    cur_text(&c, info->arch, sizeof info->arch);
    cur_text(&c, info->signature, sizeof info->signature);
    uint32_t n_layers = cur_u32(&c);
    if (!c.bad && (n_layers == 0 || n_layers > KB_NET_MAX_LAYERS + 1)) {
        return kb_error_set(err, KB_EFORMAT, "'%s': bad layer count %u", path,
                            (unsigned)n_layers);
    }
    info->n_param_layers = n_layers;
    uint64_t total = 0;
    for (uint32_t l = 0; l < n_layers && !c.bad; l++) {
        out->shapes[l].kind = cur_u32(&c);
        out->shapes[l].rows = cur_u32(&c);
        out->shapes[l].fan_in = cur_u32(&c);
        total += (uint64_t)out->shapes[l].rows * ((uint64_t)out->shapes[l].fan_in + 1);
    }
    uint64_t n_params = (uint64_t)cur_u32(&c);
    n_params |= (uint64_t)cur_u32(&c) << 32;
    if (c.bad) {
        return kb_error_set(err, KB_EFORMAT, "'%s': truncated header", path);
    }
    if (n_params != total || n_params > (uint64_t)(SIZE_MAX / 8)) {
        return kb_error_set(err, KB_EFORMAT,
                            "'%s': parameter count %llu does not match the layer shapes", path,
                            (unsigned long long)n_params);
    }
    size_t need = (size_t)(c.p - buf) + (size_t)n_params * 4 + 32;
    if (len < need) {
        return kb_error_set(err, KB_EFORMAT, "'%s': truncated (%zu of %zu bytes)", path, len,
                            need);
    }
    if (len > need) {
        return kb_error_set(err, KB_EFORMAT, "'%s': %zu unexpected bytes after the checksum",
                            path, len - need);
    }
    unsigned char digest[32];
    kb_sha256_digest(buf, len - 32, digest);
    if (memcmp(digest, buf + len - 32, 32) != 0) {
        return kb_error_set(err, KB_ECORRUPT, "'%s': checksum mismatch (the file is corrupt)",
                            path);
    }
    kb_sha256_digest(buf, len, digest);
    kb_sha256_hex(info->sha256, digest, 32);
    info->n_params = (size_t)n_params;
    out->data = c.p;
    kb_net_arch arch;
    if (kb_net_arch_parse(&arch, info->arch, err) != KB_OK) {
        return kb_error_prefix(err, "'%s': ", path);
    }
    return KB_OK;
}

/* Read and parse a file; on success the caller frees *buf_out and *p_out (kb_free). */
static int load_file(unsigned char **buf_out, parsed **p_out, const char *path, kb_error *err)
{
    size_t len = 0;
    *p_out = NULL;
    int rc = kb_net__read_file(buf_out, &len, path, err);
    if (rc != KB_OK) {
        return rc;
    }
    parsed *p = kb_malloc(sizeof *p);
    rc = p == NULL ? kb_error_set(err, KB_ENOMEM, "out of memory")
                   : parse(p, *buf_out, len, path, err);
    if (rc != KB_OK) {
        kb_free(p);
        kb_free(*buf_out);
        *buf_out = NULL;
        return rc;
    }
    *p_out = p;
    return KB_OK;
}

int kb_net_weights_info_parse(kb_net_weights_info *out, const void *buf, size_t len,
                              const char *name, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && (buf != NULL || len == 0) && name != NULL);
    parsed *p = kb_malloc(sizeof *p);
    if (p == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    int rc = parse(p, buf, len, name, err);
    if (rc == KB_OK) {
        *out = p->info;
    }
    kb_free(p);
    return rc;
}

int kb_net_weights_info_read(kb_net_weights_info *out, const char *path, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && path != NULL);
    unsigned char *buf = NULL;
    parsed *p = NULL;
    int rc = load_file(&buf, &p, path, err);
    if (rc == KB_OK) {
        *out = p->info;
    }
    kb_free(p);
    kb_free(buf);
    return rc;
}

/* Whether the file's hidden layers are the first layers of the net's (prefix) or all of them. */
static int arch_fits(const kb_net *net, const char *file_arch, int prefix)
{
    kb_net_arch a;
    if (kb_net_arch_parse(&a, file_arch, NULL) != KB_OK || a.n_layers > net->arch.n_layers ||
        (!prefix && a.n_layers != net->arch.n_layers)) {
        return 0;
    }
    for (size_t i = 0; i < a.n_layers; i++) {
        const kb_net_layer_spec *x = &a.layers[i], *y = &net->arch.layers[i];
        if (x->kind != y->kind || x->k != y->k || x->n != y->n) {
            return 0;
        }
    }
    return 1;
}

static int apply(size_t *n_loaded_out, int *replaced_out, kb_net *net, const unsigned char *buf,
                 size_t len, const char *path, const char *signature, int prefix, kb_error *err)
{
    *replaced_out = 0;
    *n_loaded_out = 0;
    parsed *p = kb_malloc(sizeof *p);
    if (p == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory");
    }
    int rc = parse(p, buf, len, path, err);
    if (rc != KB_OK) {
        goto done;
    }
    char arch[KB_NET_ARCH_MAX];
    kb_net_arch_format(arch, sizeof arch, &net->arch);
    if (!arch_fits(net, p->info.arch, prefix)) {
        rc = kb_error_set(err, KB_EINVAL, "'%s': backbone architecture '%s' %s '%s'", path,
                          p->info.arch, prefix ? "does not match the start of" : "does not match", arch);
        goto done;
    }
    if (strcmp(signature, p->info.signature) != 0) {
        rc = kb_error_set(err, KB_EINVAL, "'%s': backbone input '%s' does not match the data's "
                          "'%s'", path, p->info.signature, signature);
        goto done;
    }
    if (!prefix && p->info.n_param_layers != net->n_param_layers) {
        rc = kb_error_set(err, KB_EINVAL, "'%s': %zu parametrised layers, the net has %zu",
                          path, p->info.n_param_layers, net->n_param_layers);
        goto done;
    }
    const unsigned char *src = p->data;
    for (size_t l = 0; l < p->info.n_param_layers; l++) {
        const kb_net__layer *L = &net->layers[net->param_layer[l]];
        const layer_shape *s = &p->shapes[l];
        size_t count = (size_t)s->rows * ((size_t)s->fan_in + 1);
        int same = s->kind == (uint32_t)L->kind && s->rows == L->rows && s->fan_in == L->fan_in;
        /* the file's output layer only ever loads into the net's output layer */
        int file_output = l + 1 == p->info.n_param_layers;
        same = same && file_output == L->is_output;
        if (!same && !file_output) {
            rc = kb_error_set(err, KB_EINVAL, "'%s': layer %zu has shape %ux%u, the net's is "
                              "%zux%zu", path, l + 1, (unsigned)s->rows, (unsigned)s->fan_in,
                              L->rows, L->fan_in);
            goto done;
        }
        if (!same) {
            *replaced_out = 1; /* a new output layer: keep its fresh initialisation */
        } else {
            float *dst = net->params + L->w_off;
            for (size_t i = 0; i < count; i++) {
                uint32_t bits = get_u32(src + 4 * i);
                memcpy(&dst[i], &bits, 4);
            }
            (*n_loaded_out)++;
        }
        src += 4 * count;
    }
    memset(net->hist1, 0, net->n_params * sizeof(float));
    memset(net->hist2, 0, net->n_params * sizeof(float));
done:
    kb_free(p);
    return rc;
}

int kb_net__weights_apply(int *replaced_out, kb_net *net, const unsigned char *buf, size_t len,
                          const char *path, const char *signature, kb_error *err)
{
    size_t n_loaded;
    return apply(&n_loaded, replaced_out, net, buf, len, path, signature, 0, err);
}

static int load(size_t *n_loaded_out, int *replaced_out, kb_net *net, const char *path,
                const char *signature, int prefix, kb_error *err)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = kb_net__read_file(&buf, &len, path, err);
    if (rc == KB_OK) {
        rc = apply(n_loaded_out, replaced_out, net, buf, len, path, signature, prefix, err);
    }
    kb_free(buf);
    return rc;
}

int kb_net_weights_load(int *replaced_out, kb_net *net, const char *path,
                        const char *signature, kb_error *err)
{
    KB_CHECK_ARG(replaced_out != NULL && net != NULL && path != NULL && signature != NULL);
    *replaced_out = 0;
    size_t n_loaded;
    return load(&n_loaded, replaced_out, net, path, signature, 0, err);
}

int kb_net_weights_load_prefix(size_t *n_loaded_out, kb_net *net, const char *path,
                               const char *signature, kb_error *err)
{
    KB_CHECK_ARG(n_loaded_out != NULL && net != NULL && path != NULL && signature != NULL);
    *n_loaded_out = 0;
    int replaced;
    return load(n_loaded_out, &replaced, net, path, signature, 1, err);
}
