/*
 * IDX reader (the MNIST / Fashion-MNIST format) producing a kb_dataset.
 *
 * An IDX file is a 4-byte magic (0, 0, element type, number of dimensions), one big-endian
 * u32 per dimension, then the elements in row-major order. kb reads unsigned-byte (type 0x08)
 * images, magic 0x00000803 with dimensions [n, rows, cols], and labels, magic 0x00000801
 * with dimension [n]. Files are read through zlib (plain or gzip). The data must be exactly
 * as long as the header says.
 *
 * The result has rows*cols numeric columns named pixel1..pixelP (row-major pixel order)
 * holding the raw values 0..255 as doubles, img_channels = 1, img_height = rows,
 * img_width = cols, and the labels as the target "label": a classification (class names
 * "0".."9" for the labels present) unless opts->task forces regression.
 * Memory: the file's bytes while reading, then 8 bytes per pixel.
 */
#ifndef KB_ENGINE_IDX_H
#define KB_ENGINE_IDX_H

#include <stddef.h>

#include "engine/core/error.h"
#include "engine/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Read IDX images and their labels into `*out`. `labels_path` NULL means the file next to
 * the images with "images" replaced by "labels" and "idx3" by "idx1" in its name
 * (train-images-idx3-ubyte.gz -> train-labels-idx1-ubyte.gz).
 * @return KB_OK; KB_EIO if a file cannot be read; KB_EFORMAT for a bad magic, an
 * unsupported element type, a size that does not match the header, or image and label
 * counts that differ. Caller owns `*out` (release with kb_dataset_release).
 */
int kb_idx_read(kb_dataset *out, const char *images_path, const char *labels_path,
                const kb_dataset_opts *opts, kb_error *err);

/** As kb_idx_read, from memory (not compressed); `name` stands for the files in messages. */
int kb_idx_read_mem(kb_dataset *out, const void *images, size_t n_images_bytes,
                    const void *labels, size_t n_labels_bytes, const char *name,
                    const kb_dataset_opts *opts, kb_error *err);

#ifdef __cplusplus
}
#endif

#endif
