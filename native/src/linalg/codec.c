/* bl_pack / bl_quantize / bl_unpack / bl_dequantize: whole tensors through the
 * reference row codecs of each type, with every argument checked. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "types/types.h"
#include "base/error.h"

static int resolve(const char *type, int64_t rows, int64_t cols, const void *buf,
                   int64_t buf_bytes, const bl_type_traits **out) {
    bl_type_id id;
    int rc = bl_type_find(type, &id);
    if (rc != BL_OK) return rc;
    const bl_type_traits *t = bl_traits(id);
    if (rows <= 0 || cols <= 0)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "%s: shape must be positive, got %lld x %lld",
                       type, (long long)rows, (long long)cols);
    if (!buf) return bl_fail(BL_ERR_INVALID_ARGUMENT, "%s: packed buffer is NULL", type);
    int64_t need = bl_tensor_size(t, rows, cols);
    if (buf_bytes != need)
        return bl_fail(BL_ERR_INVALID_ARGUMENT,
                       "%s: a %lld x %lld tensor takes %lld bytes, buffer has %lld", type,
                       (long long)rows, (long long)cols, (long long)need, (long long)buf_bytes);
    *out = t;
    return BL_OK;
}

static int is_bit_kind(const bl_type_traits *t) {
    return t->info.kind == BL_KIND_TERNARY || t->info.kind == BL_KIND_SIGN;
}

int bl_pack(const char *type, const int8_t *values, const float *row_scale, int64_t rows,
            int64_t cols, void *dst, int64_t dst_bytes) {
    const bl_type_traits *t;
    int rc = resolve(type, rows, cols, dst, dst_bytes, &t);
    if (rc != BL_OK) return rc;
    if (!is_bit_kind(t))
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "%s is not a ternary or sign type: use quantize",
                       type);
    if (!values || !row_scale)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "%s: values or row_scale is NULL", type);
    for (int64_t i = 0; i < rows * cols; i++) {
        int v = values[i];
        int ok = t->info.kind == BL_KIND_SIGN ? (v == 1 || v == -1) : (v >= -1 && v <= 1);
        if (!ok)
            return bl_fail(BL_ERR_INVALID_ARGUMENT, "%s: value %d at row %lld, column %lld is not %s",
                           type, v, (long long)(i / cols), (long long)(i % cols),
                           t->info.kind == BL_KIND_SIGN ? "-1 or 1" : "-1, 0 or 1");
    }
    for (int64_t r = 0; r < rows; r++)
        if (!isfinite(row_scale[r]))
            return bl_fail(BL_ERR_INVALID_ARGUMENT, "%s: row scale %lld is not finite", type,
                           (long long)r);
    uint8_t *out = dst;
    int64_t row_bytes = bl_row_data_bytes(t, cols);
    for (int64_t r = 0; r < rows; r++) t->pack_row(values + r * cols, cols, out + r * row_bytes);
    memcpy(out + rows * row_bytes, row_scale, (size_t)rows * 4);
    return BL_OK;
}

int bl_unpack(const char *type, const void *src, int64_t src_bytes, int64_t rows, int64_t cols,
              int8_t *values, float *row_scale) {
    const bl_type_traits *t;
    int rc = resolve(type, rows, cols, src, src_bytes, &t);
    if (rc != BL_OK) return rc;
    if (!is_bit_kind(t))
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "%s is not a ternary or sign type: use dequantize",
                       type);
    if (!values || !row_scale)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "%s: values or row_scale is NULL", type);
    const uint8_t *in = src;
    int64_t row_bytes = bl_row_data_bytes(t, cols);
    for (int64_t r = 0; r < rows; r++) {
        int64_t invalid = t->unpack_row(in + r * row_bytes, cols, values + r * cols);
        if (invalid)
            return bl_fail(BL_ERR_INVALID_ARGUMENT, "%s: row %lld holds %lld invalid codes", type,
                           (long long)r, (long long)invalid);
    }
    memcpy(row_scale, in + rows * row_bytes, (size_t)rows * 4);
    return BL_OK;
}

int bl_quantize(const char *type, const float *src, int64_t rows, int64_t cols, void *dst,
                int64_t dst_bytes) {
    const bl_type_traits *t;
    int rc = resolve(type, rows, cols, dst, dst_bytes, &t);
    if (rc != BL_OK) return rc;
    if (is_bit_kind(t))
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "%s is a ternary or sign type: use pack", type);
    if (!src) return bl_fail(BL_ERR_INVALID_ARGUMENT, "%s: source is NULL", type);
    int64_t padded = bl_padded_cols(t, cols), row_bytes = bl_row_data_bytes(t, cols);
    float *row = calloc((size_t)padded, sizeof(float));
    if (!row) return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t r = 0; r < rows; r++) {
        memcpy(row, src + r * cols, (size_t)cols * 4);
        t->quantize_row(row, padded, (uint8_t *)dst + r * row_bytes);
    }
    free(row);
    return BL_OK;
}

int bl_dequantize(const char *type, const void *src, int64_t src_bytes, int64_t rows,
                  int64_t cols, float *dst) {
    const bl_type_traits *t;
    int rc = resolve(type, rows, cols, src, src_bytes, &t);
    if (rc != BL_OK) return rc;
    if (!dst) return bl_fail(BL_ERR_INVALID_ARGUMENT, "%s: destination is NULL", type);
    const uint8_t *in = src;
    int64_t padded = bl_padded_cols(t, cols), row_bytes = bl_row_data_bytes(t, cols);
    if (is_bit_kind(t)) {
        int8_t *values = malloc((size_t)cols);
        if (!values) return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory");
        for (int64_t r = 0; r < rows; r++) {
            float scale;
            memcpy(&scale, in + rows * row_bytes + r * 4, 4);
            int64_t invalid = t->unpack_row(in + r * row_bytes, cols, values);
            if (invalid) {
                free(values);
                return bl_fail(BL_ERR_INVALID_ARGUMENT, "%s: row %lld holds %lld invalid codes",
                               type, (long long)r, (long long)invalid);
            }
            for (int64_t c = 0; c < cols; c++) dst[r * cols + c] = (float)values[c] * scale;
        }
        free(values);
        return BL_OK;
    }
    float *row = malloc((size_t)padded * sizeof(float));
    if (!row) return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t r = 0; r < rows; r++) {
        t->dequantize_row(in + r * row_bytes, padded, row);
        memcpy(dst + r * cols, row, (size_t)cols * 4);
    }
    free(row);
    return BL_OK;
}
