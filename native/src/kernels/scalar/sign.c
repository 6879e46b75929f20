/* Scalar sign kernel (bs1): with bit set meaning -1,
 * dot = sum(x) - 2 * sum(x where the bit is set). */
#include "../kernels.h"

static void bs1_gemm(const bl_gemm_task *t) {
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

void bl_kernels_register_scalar_sign(bl_kernel_table *t) {
    for (int act = BL_ACT_I8; act <= BL_ACT_I16; act++)
        bl_kernel_set(t, BL_TYPE_BS1, act, BL_ALGO_MAD, bs1_gemm, bs1_gemm);
}
