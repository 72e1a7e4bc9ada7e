/* IDX reader: pixels to columns, labels to classes, gz, every error; Fashion-MNIST if present. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "engine/core/alloc.h"
#include "engine/dataset.h"
#include "engine/idx.h"

static const char *idx_path(const char *name)
{
    static char path[8192];
    snprintf(path, sizeof path, "%s/%s", check_data_path("idx"), name);
    return path;
}

static void check_tiny(const kb_dataset *d)
{
    CHECK(d->n_rows == 3 && d->n_cols == 4);
    CHECK(d->img_channels == 1 && d->img_height == 2 && d->img_width == 2);
    if (d->n_rows != 3 || d->n_cols != 4) {
        return;
    }
    static const double want[4][3] = {{0, 10, 255}, {1, 20, 254}, {2, 30, 253}, {3, 40, 252}};
    int bad = 0;
    for (size_t j = 0; j < 4; j++) {
        for (size_t i = 0; i < 3; i++) {
            bad += kb_dataset_col(d, j)[i] != want[j][i];
        }
    }
    CHECK(bad == 0);
    CHECK_STR(d->cols[0].name, "pixel1");
    CHECK_STR(d->cols[3].name, "pixel4");
    CHECK_STR(d->target_name, "label");
    CHECK(d->task == KB_DATASET_TASK_CLASSIFICATION && d->n_classes == 2);
    if (d->n_classes == 2) {
        CHECK_STR(d->class_names[0], "2");
        CHECK_STR(d->class_names[1], "7");
    }
    CHECK(d->y[0] == 1 && d->y[1] == 0 && d->y[2] == 1);
}

static void test_idx_reads_images_and_labels_plain_and_gz(void)
{
    kb_error err = KB_ERROR_INIT;
    kb_dataset d, g, e;
    CHECK_OK(kb_dataset_read(&d, idx_path("tiny-images-idx3-ubyte"), NULL, &err), err);
    check_tiny(&d);
    CHECK_OK(kb_dataset_read(&g, idx_path("tinygz-images-idx3-ubyte.gz"), NULL, &err), err);
    check_tiny(&g);
    CHECK_STR(d.fingerprint, g.fingerprint);
    /* explicit labels path */
    char images[8192];
    snprintf(images, sizeof images, "%s", idx_path("tinygz-images-idx3-ubyte.gz"));
    CHECK_OK(kb_idx_read(&e, images, idx_path("tiny-labels-idx1-ubyte"), NULL, &err), err);
    check_tiny(&e);
    kb_dataset_release(&d);
    kb_dataset_release(&g);
    kb_dataset_release(&e);
}

static void expect_error(const char *name, int code, const char *msg)
{
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    CHECK_CODE(kb_dataset_read(&d, idx_path(name), NULL, &err), code);
    const char *base = strrchr(err.msg, '/');
    CHECK_STR(base != NULL ? base + 1 : err.msg, msg);
    CHECK(d.x == NULL && d.cols == NULL);
}

static void test_idx_errors(void)
{
    expect_error("short-images-idx3-ubyte", KB_EFORMAT,
                 "short-images-idx3-ubyte: file size does not match its header: 11 bytes of "
                 "data, the header says 12");
    expect_error("long-images-idx3-ubyte", KB_EFORMAT,
                 "long-images-idx3-ubyte: file size does not match its header: 13 bytes of "
                 "data, the header says 12");
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    CHECK_CODE(kb_dataset_read(&d, idx_path("count-images-idx3-ubyte"), NULL, &err), KB_EFORMAT);
    CHECK(strstr(err.msg, "/count-labels-idx1-ubyte: 2 labels for 3 images in /") != NULL);
    expect_error("magic-images-idx3-ubyte", KB_EFORMAT,
                 "magic-images-idx3-ubyte: not an IDX file (bad magic)");
    expect_error("type-images-idx3-ubyte", KB_EFORMAT,
                 "type-images-idx3-ubyte: unsupported IDX element type 0x0d (only unsigned "
                 "bytes, 0x08)");
    expect_error("dims-images-idx3-ubyte", KB_EFORMAT,
                 "dims-labels-idx1-ubyte: IDX file has 2 dimensions, expected 1 (magic "
                 "0x00000801)");
    expect_error("huge-images-idx3-ubyte", KB_EFORMAT,
                 "huge-images-idx3-ubyte: IDX dimensions overflow");
    expect_error("tiny-labels-idx1-ubyte", KB_EINVAL,
                 "tiny-labels-idx1-ubyte: an IDX labels file; give the images file (idx3) "
                 "instead");
    expect_error("missing-images-idx3-ubyte", KB_EIO,
                 "missing-images-idx3-ubyte': No such file or directory");
}

static void test_idx_from_memory(void)
{
    static const unsigned char img[] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 5, 6};
    static const unsigned char lab[] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 0};
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    CHECK_OK(kb_idx_read_mem(&d, img, sizeof img, lab, sizeof lab, "m", NULL, &err), err);
    CHECK(d.n_rows == 2 && d.n_cols == 1 && kb_dataset_col(&d, 0)[1] == 6 && d.y[0] == 1);
    kb_dataset_release(&d);
    CHECK_CODE(kb_idx_read_mem(&d, img, sizeof img - 1, lab, sizeof lab, "m", NULL, &err),
               KB_EFORMAT);
}

static void test_idx_out_of_memory_paths(void)
{
    int bad = 0;
    for (long n = 0; n < 100; n++) {
        kb_error err = KB_ERROR_INIT;
        kb_dataset d;
        kb_alloc_fail_after(n);
        int rc = kb_dataset_read(&d, idx_path("tinygz-images-idx3-ubyte.gz"), NULL, &err);
        kb_alloc_fail_after(-1);
        if (rc == KB_OK) {
            check_tiny(&d);
            kb_dataset_release(&d);
            break;
        }
        bad += rc != KB_ENOMEM;
    }
    CHECK(bad == 0);
}

/* Debian's dataset-fashion-mnist: the test set is 10,000 28x28 images, 1,000 per class. */
static void test_idx_reads_fashion_mnist_when_installed(void)
{
    const char *path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "skip: %s not installed\n", path);
        return;
    }
    kb_error err = KB_ERROR_INIT;
    kb_dataset d;
    CHECK_OK(kb_dataset_read(&d, path, NULL, &err), err);
    CHECK(d.n_rows == 10000 && d.n_cols == 784 && d.img_height == 28 && d.img_width == 28);
    CHECK(d.n_classes == 10);
    if (d.n_classes == 10 && d.n_rows == 10000) {
        size_t count[10] = {0};
        for (size_t i = 0; i < d.n_rows; i++) {
            count[(size_t)d.y[i]]++;
        }
        int bad = 0;
        for (size_t k = 0; k < 10; k++) {
            char name[4];
            snprintf(name, sizeof name, "%zu", k);
            bad += count[k] != 1000 || strcmp(d.class_names[k], name) != 0;
        }
        CHECK(bad == 0);
        double lo = 255, hi = 0;
        for (size_t t = 0; t < d.n_rows * d.n_cols; t++) {
            lo = fmin(lo, d.x[t]);
            hi = fmax(hi, d.x[t]);
        }
        CHECK(lo == 0 && hi == 255);
    }
    kb_dataset_release(&d);
}

int main(void)
{
    test_idx_reads_images_and_labels_plain_and_gz();
    test_idx_errors();
    test_idx_from_memory();
    test_idx_out_of_memory_paths();
    test_idx_reads_fashion_mnist_when_installed();
    return check_exit();
}
