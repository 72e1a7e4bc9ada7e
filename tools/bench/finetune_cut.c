/*
 * finetune_cut: cut a task out of an IDX image set (Fashion-MNIST) for the backbone benchmark
 * (tools/backbones/make_backbones.sh): the rows of some classes, optionally a seeded sample of
 * N training and M test images per class (disjoint), optionally with a changed input domain.
 *
 *   finetune_cut IMAGES OUTDIR NAME --classes 0,2,4,6 [--train N] [--test M]
 *                [--transform none|invert|rot90|rot180] [--seed S]
 *
 * IMAGES is a *-images-idx3-ubyte[.gz] file with its *-labels-idx1-ubyte[.gz] next to it.
 * Writes OUTDIR/NAME-train-images-idx3-ubyte.gz and -labels- (N = 0: every row of those
 * classes), and with M > 0 OUTDIR/NAME-test-...; labels keep their original values. Per
 * class, the rows are shuffled with the seed and the first N train, the next M test.
 * Transforms: invert (255 - v), rot90 (a quarter turn clockwise), rot180.
 * Prints "NAME n_train n_test" on stdout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "engine/core/rng.h"

typedef struct idx_set {
    size_t n, rows, cols;
    unsigned char *pix, *lab;
} idx_set;

static unsigned be32(const unsigned char *p)
{
    return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

static int read_exact(gzFile f, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        unsigned chunk = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
        int r = gzread(f, (char *)buf + got, chunk);
        if (r <= 0) {
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static int load(idx_set *s, const char *images)
{
    char labels[4096];
    snprintf(labels, sizeof labels, "%s", images);
    char *at = strstr(labels, "images-idx3");
    if (at == NULL) {
        fprintf(stderr, "finetune_cut: '%s' is not named *images-idx3*\n", images);
        return -1;
    }
    memcpy(at, "labels-idx1", 11);
    gzFile fi = gzopen(images, "rb"), fl = gzopen(labels, "rb");
    unsigned char hi[16], hl[8];
    int rc = -1;
    if (fi == NULL || fl == NULL || read_exact(fi, hi, 16) || read_exact(fl, hl, 8) ||
        be32(hi) != 0x803 || be32(hl) != 0x801 || be32(hi + 4) != be32(hl + 4)) {
        fprintf(stderr, "finetune_cut: cannot read IDX images/labels '%s'\n", images);
        goto done;
    }
    s->n = be32(hi + 4);
    s->rows = be32(hi + 8);
    s->cols = be32(hi + 12);
    if (s->rows != s->cols || s->rows == 0 || s->rows > 1024) {
        fprintf(stderr, "finetune_cut: expected square images, got %zux%zu\n", s->rows, s->cols);
        goto done;
    }
    s->pix = malloc(s->n * s->rows * s->cols);
    s->lab = malloc(s->n);
    if (s->pix == NULL || s->lab == NULL || read_exact(fi, s->pix, s->n * s->rows * s->cols) ||
        read_exact(fl, s->lab, s->n)) {
        fprintf(stderr, "finetune_cut: '%s' is truncated\n", images);
        goto done;
    }
    rc = 0;
done:
    if (fi != NULL) {
        gzclose(fi);
    }
    if (fl != NULL) {
        gzclose(fl);
    }
    return rc;
}

static void put_be32(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void transform(unsigned char *dst, const unsigned char *src, size_t side, const char *t)
{
    for (size_t r = 0; r < side; r++) {
        for (size_t c = 0; c < side; c++) {
            unsigned char v = src[r * side + c];
            if (strcmp(t, "invert") == 0) {
                dst[r * side + c] = (unsigned char)(255 - v);
            } else if (strcmp(t, "rot90") == 0) {
                dst[c * side + (side - 1 - r)] = v; /* (r, c) -> (c, side-1-r): clockwise */
            } else if (strcmp(t, "rot180") == 0) {
                dst[(side - 1 - r) * side + (side - 1 - c)] = v;
            } else {
                dst[r * side + c] = v;
            }
        }
    }
}

static int write_part(const idx_set *s, const size_t *rows, size_t n, const char *dir,
                      const char *name, const char *part, const char *t)
{
    char ip[4096], lp[4096];
    snprintf(ip, sizeof ip, "%s/%s-%s-images-idx3-ubyte.gz", dir, name, part);
    snprintf(lp, sizeof lp, "%s/%s-%s-labels-idx1-ubyte.gz", dir, name, part);
    gzFile fi = gzopen(ip, "wb6"), fl = gzopen(lp, "wb6");
    if (fi == NULL || fl == NULL) {
        fprintf(stderr, "finetune_cut: cannot create '%s': %s\n", ip, strerror(errno));
        return -1;
    }
    unsigned char hi[16], hl[8];
    put_be32(hi, 0x803);
    put_be32(hi + 4, (unsigned)n);
    put_be32(hi + 8, (unsigned)s->rows);
    put_be32(hi + 12, (unsigned)s->cols);
    put_be32(hl, 0x801);
    put_be32(hl + 4, (unsigned)n);
    int ok = gzwrite(fi, hi, 16) == 16 && gzwrite(fl, hl, 8) == 8;
    size_t px = s->rows * s->cols;
    unsigned char img[1024 * 1024];
    for (size_t i = 0; ok && i < n; i++) {
        transform(img, s->pix + rows[i] * px, s->rows, t);
        ok = gzwrite(fi, img, (unsigned)px) == (int)px && gzwrite(fl, &s->lab[rows[i]], 1) == 1;
    }
    ok &= gzclose(fi) == Z_OK;
    ok &= gzclose(fl) == Z_OK;
    if (!ok) {
        fprintf(stderr, "finetune_cut: cannot write '%s'\n", ip);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: finetune_cut IMAGES OUTDIR NAME --classes L [--train N] "
                        "[--test M] [--transform T] [--seed S]\n");
        return 2;
    }
    const char *images = argv[1], *dir = argv[2], *name = argv[3], *classes = NULL;
    const char *t = "none";
    size_t n_train = 0, n_test = 0;
    unsigned long long seed = 1;
    for (int i = 4; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--classes") == 0) {
            classes = argv[i + 1];
        } else if (strcmp(argv[i], "--train") == 0) {
            n_train = strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--test") == 0) {
            n_test = strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--transform") == 0) {
            t = argv[i + 1];
        } else if (strcmp(argv[i], "--seed") == 0) {
            seed = strtoull(argv[i + 1], NULL, 10);
        } else {
            fprintf(stderr, "finetune_cut: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (classes == NULL || (strcmp(t, "none") != 0 && strcmp(t, "invert") != 0 &&
                            strcmp(t, "rot90") != 0 && strcmp(t, "rot180") != 0)) {
        fprintf(stderr, "finetune_cut: need --classes; transform none|invert|rot90|rot180\n");
        return 2;
    }
    int want[256] = {0};
    for (const char *p = classes; *p != '\0';) {
        char *end;
        unsigned long c = strtoul(p, &end, 10);
        if (end == p || c > 255) {
            fprintf(stderr, "finetune_cut: bad --classes '%s'\n", classes);
            return 2;
        }
        want[c] = 1;
        p = *end == ',' ? end + 1 : end;
    }
    idx_set s = {0};
    if (load(&s, images) != 0) {
        free(s.pix);
        free(s.lab);
        return 1;
    }
    size_t *tr = malloc(s.n * sizeof(size_t)), *te = malloc(s.n * sizeof(size_t));
    size_t *cls = malloc(s.n * sizeof(size_t));
    size_t ntr = 0, nte = 0;
    kb_rng base;
    kb_rng_seed(&base, seed);
    for (unsigned c = 0; c < 256 && tr != NULL && te != NULL && cls != NULL; c++) {
        if (!want[c]) {
            continue;
        }
        size_t m = 0;
        for (size_t i = 0; i < s.n; i++) {
            if (s.lab[i] == c) {
                cls[m++] = i;
            }
        }
        kb_rng r;
        kb_rng_split(&r, &base, c);
        kb_rng_shuffle(&r, cls, m);
        size_t a = n_train == 0 || n_train > m ? m : n_train;
        size_t b = a + n_test > m ? m - a : n_test;
        memcpy(tr + ntr, cls, a * sizeof(size_t));
        memcpy(te + nte, cls + a, b * sizeof(size_t));
        ntr += a;
        nte += b;
    }
    int rc = tr == NULL || te == NULL || cls == NULL ? 1 : 0;
    if (rc == 0 && (ntr == 0 || write_part(&s, tr, ntr, dir, name, "train", t) != 0 ||
                    (n_test > 0 && write_part(&s, te, nte, dir, name, "test", t) != 0))) {
        rc = 1;
    }
    if (rc == 0) {
        printf("%s %zu %zu\n", name, ntr, nte);
    }
    free(tr);
    free(te);
    free(cls);
    free(s.pix);
    free(s.lab);
    return rc;
}
