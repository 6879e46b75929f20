/* RMSNorm (every family) and the parameter-free LayerNorm (OneBit). */
#include <math.h>

#include "ops.h"
#include "base/vec.h"

BL_VECTOR_BODY void bl_rmsnorm_body(float *out, const float *x, const float *weight, size_t rows,
                                    size_t cols, float eps) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *o = out + r * cols;
        float mean_square = bl_vec_dot(xr, xr, cols) / (float)cols;
        float inv = 1.0f / sqrtf(mean_square + eps);
        for (size_t c = 0; c < cols; c++) o[c] = xr[c] * inv * weight[c];
    }
}

BL_VECTOR_VARIANTS(, bl_rmsnorm,
                   (float *out, const float *x, const float *weight, size_t rows, size_t cols,
                    float eps),
                   (out, x, weight, rows, cols, eps))

BL_VECTOR_BODY void bl_layernorm_body(float *x, size_t rows, size_t cols, float eps) {
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * cols;
        float mean = bl_vec_sum(xr, cols) / (float)cols;
        for (size_t c = 0; c < cols; c++) xr[c] -= mean;
        float var = bl_vec_dot(xr, xr, cols) / (float)cols;
        float inv = 1.0f / sqrtf(var + eps);
        for (size_t c = 0; c < cols; c++) xr[c] *= inv;
    }
}
BL_VECTOR_VARIANTS(, bl_layernorm, (float *x, size_t rows, size_t cols, float eps),
                   (x, rows, cols, eps))
