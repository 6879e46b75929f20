/* Scalar kernels for q8_0 and q4_0 weights against 32-blocks of int8
 * activations: y = sum over blocks of d_w * d_x * (integer block dot). */
#include "../../types/fp16.h"
#include "../../types/quant_blocks.h"
#include "../kernels.h"

static int32_t q8_0_block_dot(const uint8_t *w, const bl_q8_block *x) {
    int32_t acc = 0;
    for (int i = 0; i < BL_Q_BLOCK; i++) acc += (int8_t)w[2 + i] * x->q[i];
    return acc;
}

static int32_t q4_0_block_dot(const uint8_t *w, const bl_q8_block *x) {
    int32_t acc = 0;
    for (int j = 0; j < 16; j++) acc += (w[2 + j] & 15) * x->q[j] + (w[2 + j] >> 4) * x->q[j + 16];
    return acc - 8 * x->sum;
}

static void quant_gemm(const bl_gemm_task *t, size_t block_bytes,
                       int32_t (*block_dot)(const uint8_t *, const bl_q8_block *)) {
    const bl_activations *x = t->x;
    float *out = t->out;
    size_t nblocks = t->cols / BL_Q_BLOCK;
    for (size_t r = 0; r < t->rows; r++) {
        const uint8_t *w = t->w + r * t->w_row_bytes;
        for (size_t n = 0; n < x->n; n++) {
            const bl_q8_block *xb = (const bl_q8_block *)(x->data + n * x->row_bytes);
            float acc = 0.0f;
            for (size_t b = 0; b < nblocks; b++)
                acc += bl_f16_load(w + b * block_bytes) * xb[b].d *
                       (float)block_dot(w + b * block_bytes, &xb[b]);
            out[n * t->out_stride + r] = acc;
        }
    }
}

/* GEMV and GEMM alike. */
void bl_gemm_q8_0_q8_mad__scalar(const bl_gemm_task *t) {
    quant_gemm(t, BL_Q8_0_BYTES, q8_0_block_dot);
}
void bl_gemm_q4_0_q8_mad__scalar(const bl_gemm_task *t) {
    quant_gemm(t, BL_Q4_0_BYTES, q4_0_block_dot);
}
