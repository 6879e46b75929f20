/* Scalar kernels for q1_0 and q2_0 (both packings; types/q1_0.c, q2_0.c)
 * against 32-blocks of int8 activations. Each 32-weight slice of a block gives
 * an exact integer dot with its activation block, scaled to float once:
 * q1_0: sum over weights of +-x = 2 * (sum of x where the bit is set) - sum x;
 * q2_0: sum of (c - 1) x = sum of c x - sum x (c the unsigned code). */
#include "../../types/fp16.h"
#include "../../types/quant_blocks.h"
#include "../kernels.h"

/* bits: the 4 bytes of sign bits of 32 weights. */
static int32_t q1_dot(const uint8_t *bits, const bl_q8_block *x) {
    int32_t set = 0;
    for (int i = 0; i < 32; i++)
        if ((bits[i / 8] >> (i % 8)) & 1) set += x->q[i];
    return 2 * set - x->sum;
}

/* codes: the 8 bytes of 2-bit codes of 32 weights. */
static int32_t q2_dot(const uint8_t *codes, const bl_q8_block *x) {
    int32_t acc = 0;
    for (int i = 0; i < 32; i++) acc += ((codes[i / 4] >> (2 * (i % 4))) & 3) * x->q[i];
    return acc - x->sum;
}

/* bits_per_weight 1 (q1_0) or 2 (q2_0); group: weights per block. */
static void q1_q2_gemm(const bl_gemm_task *t, int bits_per_weight, int group) {
    const bl_activations *x = t->x;
    const size_t block_bytes = 2 + (size_t)(group * bits_per_weight / 8);
    const size_t slices = (size_t)group / 32, slice_bytes = (size_t)(4 * bits_per_weight);
    float *out = t->out;
    for (size_t r = 0; r < t->rows; r++) {
        const uint8_t *w = t->w + r * t->w_row_bytes;
        for (size_t n = 0; n < x->n; n++) {
            const bl_q8_block *xb = (const bl_q8_block *)(x->data + n * x->row_bytes);
            float acc = 0.0f;
            for (size_t b = 0; b < t->cols / (size_t)group; b++) {
                const uint8_t *block = w + b * block_bytes;
                float d = bl_f16_load(block);
                for (size_t s = 0; s < slices; s++) {
                    const bl_q8_block *xs = &xb[b * slices + s];
                    const uint8_t *q = block + 2 + s * slice_bytes;
                    int32_t dot = bits_per_weight == 1 ? q1_dot(q, xs) : q2_dot(q, xs);
                    acc += d * xs->d * (float)dot;
                }
            }
            out[n * t->out_stride + r] = acc;
        }
    }
}

/* GEMV and GEMM alike. */
void bl_gemm_q1_0_q8_mad__scalar(const bl_gemm_task *t) { q1_q2_gemm(t, 1, BL_Q1_0_BLOCK); }
void bl_gemm_q2_0_q8_mad__scalar(const bl_gemm_task *t) { q1_q2_gemm(t, 2, BL_Q2_0_BLOCK); }
void bl_gemm_q2_0_g128_q8_mad__scalar(const bl_gemm_task *t) {
    q1_q2_gemm(t, 2, BL_Q2_0_G128_BLOCK);
}
