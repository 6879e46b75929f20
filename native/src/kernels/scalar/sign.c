/* Scalar sign kernel (bs1): with bit set meaning -1,
 * dot = sum(x) - 2 * sum(x where the bit is set). */
#include "../kernels.h"

static void sign_gemm(const bl_gemm_task *t) {
    const bl_activations *x = t->x;
    int32_t *out = t->out;
    for (size_t r = 0; r < t->rows; r++) {
        const uint8_t *w = t->w + r * t->w_row_bytes;
        for (size_t n = 0; n < x->n; n++) {
            const uint8_t *xrow = x->data + n * x->row_bytes;
            int64_t negative = 0;
            for (size_t c = 0; c < t->cols; c++) {
                if (!((w[c / 8] >> (c % 8)) & 1)) continue;
                negative += x->format == BL_ACT_I8 ? ((const int8_t *)xrow)[c]
                                                   : ((const int16_t *)xrow)[c];
            }
            out[n * t->out_stride + r] = (int32_t)(x->sums[n] - 2 * negative);
        }
    }
}

/* One kernel per activation format, GEMV and GEMM alike (sign_gemm reads x->format). */
void bl_gemm_bs1_i8_mad__scalar(const bl_gemm_task *t) { sign_gemm(t); }
void bl_gemm_bs1_i16_mad__scalar(const bl_gemm_task *t) { sign_gemm(t); }
