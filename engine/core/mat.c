#include "engine/core/mat.h"

#include "engine/core/alloc.h"

int kb_mat_init(kb_mat *m, size_t rows, size_t cols, kb_error *err)
{
    m->rows = m->cols = m->ld = 0;
    m->data = NULL;
    if (cols != 0 && rows > ((size_t)-1) / sizeof(double) / cols) {
        return kb_error_set(err, KB_ENOMEM, "matrix %zu x %zu is too large", rows, cols);
    }
    m->data = kb_calloc(rows * cols == 0 ? 1 : rows * cols, sizeof(double));
    if (m->data == NULL) {
        return kb_error_set(err, KB_ENOMEM, "out of memory for a %zu x %zu matrix", rows, cols);
    }
    m->rows = rows;
    m->cols = cols;
    m->ld = rows == 0 ? 1 : rows;
    return KB_OK;
}

void kb_mat_release(kb_mat *m)
{
    kb_free(m->data);
    m->data = NULL;
    m->rows = m->cols = m->ld = 0;
}
