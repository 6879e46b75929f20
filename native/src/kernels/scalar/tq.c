/* Scalar kernels for llama.cpp's ternary block types tq1_0 and tq2_0
 * (types/tq*.c) against 32-blocks of int8 activations. A 32-weight sub-block
 * gives the exact integer dot sum(c * q) - sum(q) (codes c = trit + 1), which
 * is scaled by d_w * d_x: one float multiply-add per 32 weights. */
#include "../../types/tq_common.h"
#include "../kernels.h"

typedef int (*code_fn)(const uint8_t *block, int e);

static void tq_gemm(const bl_gemm_task *t, size_t block_bytes, size_t d_offset, code_fn code) {
    const bl_activations *x = t->x;
    float *out = t->out;
    size_t nblocks = t->cols / BL_TQ_BLOCK;
    for (size_t r = 0; r < t->rows; r++) {
        const uint8_t *w = t->w + r * t->w_row_bytes;
        for (size_t n = 0; n < x->n; n++) {
            const bl_q8_block *xb = (const bl_q8_block *)(x->data + n * x->row_bytes);
            float acc = 0.0f;
            for (size_t b = 0; b < nblocks; b++) {
                const uint8_t *block = w + b * block_bytes;
                float d = bl_f16_load(block + d_offset);
                for (int g = 0; g < 8; g++) {
                    const bl_q8_block *xg = &xb[8 * b + (size_t)g];
                    int32_t dot = 0;
                    for (int j = 0; j < 32; j++) dot += code(block, 32 * g + j) * xg->q[j];
                    acc += d * xg->d * (float)(dot - xg->sum);
                }
            }
            out[n * t->out_stride + r] = acc;
        }
    }
}

/* GEMV and GEMM alike. */
void bl_gemm_tq1_0_q8_mad__scalar(const bl_gemm_task *t) {
    tq_gemm(t, BL_TQ1_0_BYTES, BL_TQ1_0_D, bl_tq1_0_code);
}
void bl_gemm_tq2_0_q8_mad__scalar(const bl_gemm_task *t) {
    tq_gemm(t, BL_TQ2_0_BYTES, BL_TQ2_0_D, bl_tq2_0_code);
}
