/*
 * kb_net training snapshots: everything kb_net_train needs to continue a run exactly where
 * it stopped (docs/FORMAT.md, "Snapshot file"), version 1. Little-endian throughout; the
 * weights travel as an embedded weights file (so a snapshot is checked the same way and its
 * weights can be extracted as a backbone), and a SHA-256 of every preceding byte closes the
 * file.
 *
 * Bit-for-bit resumption needs every input of the next iteration: parameters, optimizer
 * history (hist1, hist2), the RNG state (shuffles and dropout draw from it), the iteration
 * (learning-rate schedule, Adam's bias correction), the current epoch's sample order and
 * position, samples seen (the epoch count) and the train-loss accumulator since the last
 * curve point. Floats are stored as their bit patterns, never printed and re-parsed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine/core/alloc.h"
#include "engine/core/buf.h"
#include "engine/core/sha256.h"
#include "engine/net_priv.h"

#define MAGIC "KBNETSN\0"
#define MAGIC_LEN 8

static int put_u64(kb_buf *b, uint64_t v)
{
    unsigned char le[8];
    for (int i = 0; i < 8; i++) {
        le[i] = (unsigned char)(v >> (8 * i));
    }
    return kb_buf_append(b, le, 8);
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static uint64_t f64_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static double bits_f64(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static int encode(kb_buf *b, const kb_net *net, const char *signature, const char *data_id)
{
    size_t id_len = strlen(data_id);
    int rc = kb_buf_append(b, MAGIC, MAGIC_LEN);
    rc = rc ? rc : put_u64(b, KB_NET_SNAPSHOT_VERSION);
    rc = rc ? rc : put_u64(b, (uint64_t)net->opts.optimizer);
    rc = rc ? rc : put_u64(b, (uint64_t)id_len);
    rc = rc ? rc : kb_buf_append(b, data_id, id_len);
    rc = rc ? rc : put_u64(b, (uint64_t)net->iter);
    rc = rc ? rc : put_u64(b, (uint64_t)net->n_perm);
    rc = rc ? rc : put_u64(b, (uint64_t)net->pos);
    rc = rc ? rc : put_u64(b, (uint64_t)net->seen);
    rc = rc ? rc : put_u64(b, (uint64_t)net->loss_n);
    rc = rc ? rc : put_u64(b, f64_bits(net->loss_sum));
    for (int i = 0; rc == KB_OK && i < 4; i++) {
        rc = put_u64(b, net->rng.s[i]);
    }
    /* the embedded weights file, prefixed by its length */
    size_t len_at = b->len;
    rc = rc ? rc : put_u64(b, 0);
    size_t start = b->len;
    rc = rc ? rc : kb_net__weights_encode(b, net, signature);
    if (rc != KB_OK) {
        return rc;
    }
    uint64_t w_len = (uint64_t)(b->len - start);
    for (int i = 0; i < 8; i++) {
        ((unsigned char *)b->data)[len_at + (size_t)i] = (unsigned char)(w_len >> (8 * i));
    }
    rc = kb_net__put_floats(b, net->hist1, net->n_params);
    rc = rc ? rc : kb_net__put_floats(b, net->hist2, net->n_params);
    rc = rc ? rc : kb_buf_reserve(b, net->n_perm * 8 + 32);
    for (size_t i = 0; rc == KB_OK && i < net->n_perm; i++) {
        rc = put_u64(b, (uint64_t)net->perm[i]);
    }
    if (rc != KB_OK) {
        return rc;
    }
    unsigned char digest[32];
    kb_sha256_digest(b->data, b->len, digest);
    return kb_buf_append(b, digest, 32);
}

int kb_net_snapshot_save(const kb_net *net, const char *path, const char *signature,
                         const char *data_id, kb_error *err)
{
    KB_CHECK_ARG(net != NULL && path != NULL && signature != NULL && data_id != NULL);
    KB_CHECK_ARG(strlen(signature) < KB_NET_SIGNATURE_MAX);
    KB_CHECK_ARG(strlen(data_id) < KB_NET_DATA_ID_MAX);
    if (net->perm == NULL || net->iter == 0) {
        return kb_error_set(err, KB_EINVAL, "snapshot '%s': the net has not been trained", path);
    }
    kb_buf b = KB_BUF_INIT;
    char *tmp = NULL;
    int rc = encode(&b, net, signature, data_id);
    if (rc != KB_OK) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory writing '%s'", path);
        goto done;
    }
    size_t n = strlen(path) + 5;
    tmp = kb_malloc(n);
    if (tmp == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(tmp, n, "%s.tmp", path);
    if ((rc = kb_net__write_file(tmp, &b, err)) != KB_OK) {
        remove(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        rc = kb_error_set_cause(err, KB_EIO, e, "cannot rename '%s' to '%s': %s", tmp, path,
                                strerror(e));
    }
done:
    kb_free(tmp);
    kb_buf_release(&b);
    return rc;
}

/* a parsed snapshot: pointers into the caller's buffer */
typedef struct parsed {
    kb_net_snapshot_info info;
    size_t pos, seen, loss_n;
    double loss_sum;
    uint64_t rng[4];
    const unsigned char *weights;
    size_t weights_len;
    const unsigned char *hist; /* 2 * n_params little-endian floats */
    const unsigned char *perm; /* n_train little-endian u64 */
} parsed;

typedef struct cursor {
    const unsigned char *p, *end;
    int bad;
} cursor;

static uint64_t cur_u64(cursor *c)
{
    if (c->bad || c->end - c->p < 8) {
        c->bad = 1;
        return 0;
    }
    uint64_t v = get_u64(c->p);
    c->p += 8;
    return v;
}

/* n bytes at the cursor, or NULL (and bad) when fewer remain */
static const unsigned char *cur_bytes(cursor *c, uint64_t n)
{
    if (c->bad || (uint64_t)(c->end - c->p) < n) {
        c->bad = 1;
        return NULL;
    }
    const unsigned char *at = c->p;
    c->p += n;
    return at;
}

static int parse(parsed *out, const unsigned char *buf, size_t len, const char *name,
                 kb_error *err)
{
    memset(out, 0, sizeof *out);
    kb_net_snapshot_info *info = &out->info;
    if (len < MAGIC_LEN || memcmp(buf, MAGIC, MAGIC_LEN) != 0) {
        return kb_error_set(err, KB_EFORMAT, "'%s': not a kb snapshot file (bad magic)", name);
    }
    if (len < MAGIC_LEN + 8 + 32) {
        return kb_error_set(err, KB_EFORMAT, "'%s': truncated header", name);
    }
    /* the checksum first: nothing below is trusted before it matches */
    unsigned char digest[32];
    kb_sha256_digest(buf, len - 32, digest);
    int sum_ok = memcmp(digest, buf + len - 32, 32) == 0;
    cursor c = {buf + MAGIC_LEN, buf + len - 32, 0};
    uint64_t version = cur_u64(&c);
    if (version != KB_NET_SNAPSHOT_VERSION && sum_ok) {
        return kb_error_set(err, KB_EVERSION,
                            "'%s': snapshot format version %llu is not supported (this build "
                            "reads version %d)", name, (unsigned long long)version,
                            KB_NET_SNAPSHOT_VERSION);
    }
    if (!sum_ok) {
        return kb_error_set(err, KB_ECORRUPT, "'%s': checksum mismatch (the file is corrupt or "
                            "truncated)", name);
    }
    info->version = (uint32_t)version;
    uint64_t optimizer = cur_u64(&c);
    uint64_t id_len = cur_u64(&c);
    if (!c.bad && (optimizer > KB_NET_OPTIMIZER_ADAM || id_len >= KB_NET_DATA_ID_MAX)) {
        return kb_error_set(err, KB_EFORMAT, "'%s': bad optimizer or data id length", name);
    }
    info->optimizer = (kb_net_optimizer)optimizer;
    const unsigned char *id = cur_bytes(&c, id_len);
    if (id != NULL) {
        memcpy(info->data_id, id, (size_t)id_len);
        info->data_id[id_len] = '\0';
    }
    uint64_t iter = cur_u64(&c), n_train = cur_u64(&c), pos = cur_u64(&c);
    uint64_t seen = cur_u64(&c), loss_n = cur_u64(&c);
    out->loss_sum = bits_f64(cur_u64(&c));
    for (int i = 0; i < 4; i++) {
        out->rng[i] = cur_u64(&c);
    }
    uint64_t w_len = cur_u64(&c);
    out->weights = cur_bytes(&c, w_len);
    if (c.bad) {
        return kb_error_set(err, KB_EFORMAT, "'%s': truncated header", name);
    }
    out->weights_len = (size_t)w_len;
    int rc = kb_net_weights_info_parse(&info->weights, out->weights, out->weights_len, name, err);
    if (rc != KB_OK) {
        return rc;
    }
    size_t n_params = info->weights.n_params;
    /* n_params <= SIZE_MAX / 8 (the weights parser checked), so 8 * n_params cannot wrap */
    out->hist = cur_bytes(&c, (uint64_t)n_params * 8);
    if (!c.bad && (n_train == 0 || n_train > (uint64_t)(c.end - c.p) / 8 || pos > n_train ||
                   loss_n > iter)) {
        return kb_error_set(err, KB_EFORMAT, "'%s': bad training position", name);
    }
    out->perm = cur_bytes(&c, n_train * 8);
    if (c.bad) {
        return kb_error_set(err, KB_EFORMAT, "'%s': truncated", name);
    }
    if (c.p != c.end) {
        return kb_error_set(err, KB_EFORMAT, "'%s': %zu unexpected bytes before the checksum",
                            name, (size_t)(c.end - c.p));
    }
    for (uint64_t i = 0; i < n_train; i++) {
        if (get_u64(out->perm + 8 * i) >= n_train) {
            return kb_error_set(err, KB_EFORMAT, "'%s': sample order out of range", name);
        }
    }
    info->iteration = (size_t)iter;
    info->n_train = (size_t)n_train;
    info->epoch = (double)seen / (double)n_train;
    out->pos = (size_t)pos;
    out->seen = (size_t)seen;
    out->loss_n = (size_t)loss_n;
    kb_sha256_digest(buf, len, digest);
    kb_sha256_hex(info->sha256, digest, 32);
    return KB_OK;
}

int kb_net_snapshot_info_parse(kb_net_snapshot_info *out, const void *buf, size_t len,
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

int kb_net_snapshot_info_read(kb_net_snapshot_info *out, const char *path, kb_error *err)
{
    KB_CHECK_ARG(out != NULL && path != NULL);
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = kb_net__read_file(&buf, &len, path, err);
    if (rc == KB_OK) {
        rc = kb_net_snapshot_info_parse(out, buf, len, path, err);
    }
    kb_free(buf);
    return rc;
}

static void get_floats(float *dst, const unsigned char *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 |
                        (uint32_t)src[4 * i + 2] << 16 | (uint32_t)src[4 * i + 3] << 24;
        memcpy(&dst[i], &bits, 4);
    }
}

int kb_net_snapshot_load(kb_net *net, const char *path, const char *signature,
                         const char *data_id, kb_error *err)
{
    KB_CHECK_ARG(net != NULL && path != NULL && signature != NULL && data_id != NULL);
    unsigned char *buf = NULL;
    size_t len = 0;
    parsed *p = NULL;
    size_t *perm = NULL;
    int rc = kb_net__read_file(&buf, &len, path, err);
    if (rc != KB_OK) {
        goto done;
    }
    p = kb_malloc(sizeof *p);
    if (p == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = parse(p, buf, len, path, err)) != KB_OK) {
        goto done;
    }
    if (p->info.optimizer != net->opts.optimizer) {
        rc = kb_error_set(err, KB_EINVAL, "'%s': the snapshot holds %s state, the run uses %s",
                          path, kb_net_optimizer_name(p->info.optimizer),
                          kb_net_optimizer_name(net->opts.optimizer));
        goto done;
    }
    if (strcmp(p->info.data_id, data_id) != 0) {
        rc = kb_error_set(err, KB_EINVAL, "'%s': the snapshot was trained on data '%s', not '%s'",
                          path, p->info.data_id, data_id);
        goto done;
    }
    if (p->info.weights.task != net->task || p->info.weights.n_outputs != net->n_outputs) {
        rc = kb_error_set(err, KB_EINVAL, "'%s': the snapshot has %zu outputs, the net %zu",
                          path, p->info.weights.n_outputs, net->n_outputs);
        goto done;
    }
    perm = kb_malloc_array(p->info.n_train, sizeof(size_t));
    if (perm == NULL) {
        rc = kb_error_set(err, KB_ENOMEM, "out of memory");
        goto done;
    }
    int replaced = 0;
    rc = kb_net__weights_apply(&replaced, net, p->weights, p->weights_len, path, signature, err);
    if (rc != KB_OK) {
        goto done;
    }
    get_floats(net->hist1, p->hist, net->n_params);
    get_floats(net->hist2, p->hist + 4 * net->n_params, net->n_params);
    for (size_t i = 0; i < p->info.n_train; i++) {
        perm[i] = (size_t)get_u64(p->perm + 8 * i);
    }
    kb_free(net->perm);
    net->perm = perm;
    perm = NULL;
    net->n_perm = p->info.n_train;
    net->iter = p->info.iteration;
    net->pos = p->pos;
    net->seen = p->seen;
    net->loss_n = p->loss_n;
    net->loss_sum = p->loss_sum;
    memcpy(net->rng.s, p->rng, sizeof net->rng.s);
    net->resume = 1;
done:
    kb_free(perm);
    kb_free(p);
    kb_free(buf);
    return rc;
}
