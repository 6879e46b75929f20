/* NEON kernels for q8_0, q4_0, q1_0 and q2_0 (both packings) weights against
 * 32-blocks of int8 activations (bl_q8_block); included by mad.c after its dot
 * steps.
 *   y = sum over 32-weight slices of d_w * d_x * (integer slice dot),
 * with the integer dot from the dot steps and the slice products gathered in
 * a float32x4 per (row, token), summed across lanes at the end. q4_0 nibbles
 * become signed codes q - 8 before the dot; q1_0's sign bits become +-1
 * (vqtbl1q spreads each byte over its 8 weights, vtstq tests each one's bit)
 * and q2_0's codes c - 1 (vqtbl1q spreads each byte over its 4 weights,
 * vshlq shifts each right by its bit offset). A q1_0 block holds 4 slices, a
 * q2_0 block 2 (groups of 64) or 4 (of 128), all under the block's d. */
#ifndef BL_NEON_QUANT_MAD_H
#define BL_NEON_QUANT_MAD_H

#include <string.h>

#include "../../types/quant_blocks.h"
#include "mad_common.h"

typedef enum quant_type {
    QUANT_Q8_0,
    QUANT_Q4_0,
    QUANT_Q1_0,
    QUANT_Q2_0,
    QUANT_Q2_0_G128
} quant_type;

#define QUANT_MAX_ROWS 4
#define QUANT_MAX_TOKENS 4
#define QUANT_GEMV_ROWS 4
#define QUANT_GEMM_ROWS 2
#define QUANT_GEMM_TOKENS 4

BL_NEON_INLINE size_t quant_block_bytes(quant_type type) {
    switch (type) {
    case QUANT_Q8_0: return BL_Q8_0_BYTES;
    case QUANT_Q4_0: return BL_Q4_0_BYTES;
    case QUANT_Q1_0: return BL_Q1_0_BYTES;
    case QUANT_Q2_0: return BL_Q2_0_BYTES;
    default: return BL_Q2_0_G128_BYTES;
    }
}

/* 32-weight slices per block. */
BL_NEON_INLINE size_t quant_slices(quant_type type) {
    return type == QUANT_Q1_0 || type == QUANT_Q2_0_G128 ? 4 : type == QUANT_Q2_0 ? 2 : 1;
}

/* A block's f16 scale, converted by one fcvt. */
BL_NEON_INLINE float quant_scale(const uint8_t *block) {
    __fp16 d;
    memcpy(&d, block, 2);
    return (float)d;
}

/* q1_0: the 32 weights of 4 bytes of sign bits as +-1. */
BL_NEON_INLINE int8x16x2_t q1_weights(const uint8_t *bits) {
    const uint8x16_t low = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    const uint8x16_t high = {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
    const uint8x16_t bit = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint32_t word;
    memcpy(&word, bits, 4);
    uint8x16_t v = vreinterpretq_u8_u32(vdupq_n_u32(word));
    int8x16x2_t q;
    /* set: 0xff & 2 - 1 = +1; clear: 0 - 1 = -1 */
    q.val[0] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(vtstq_u8(vqtbl1q_u8(v, low), bit),
                                                     vdupq_n_u8(2))),
                        vdupq_n_s8(1));
    q.val[1] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(vtstq_u8(vqtbl1q_u8(v, high), bit),
                                                     vdupq_n_u8(2))),
                        vdupq_n_s8(1));
    return q;
}

/* q2_0: the 32 weights of 8 bytes of 2-bit codes as c - 1. */
BL_NEON_INLINE int8x16x2_t q2_weights(const uint8_t *codes) {
    const uint8x16_t low = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};
    const uint8x16_t high = {4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7};
    const int8x16_t shift = {0, -2, -4, -6, 0, -2, -4, -6, 0, -2, -4, -6, 0, -2, -4, -6};
    uint64_t word;
    memcpy(&word, codes, 8);
    uint8x16_t v = vreinterpretq_u8_u64(vdupq_n_u64(word));
    int8x16x2_t q;
    q.val[0] = vsubq_s8(
        vreinterpretq_s8_u8(vandq_u8(vshlq_u8(vqtbl1q_u8(v, low), shift), vdupq_n_u8(3))),
        vdupq_n_s8(1));
    q.val[1] = vsubq_s8(
        vreinterpretq_s8_u8(vandq_u8(vshlq_u8(vqtbl1q_u8(v, high), shift), vdupq_n_u8(3))),
        vdupq_n_s8(1));
    return q;
}

/* The 32 weights of slice s of a block as signed bytes: elements 0..15 and 16..31. */
BL_NEON_INLINE int8x16x2_t quant_weights(quant_type type, const uint8_t *block, size_t s) {
    if (type == QUANT_Q1_0) return q1_weights(block + 2 + 4 * s);
    if (type == QUANT_Q2_0 || type == QUANT_Q2_0_G128) return q2_weights(block + 2 + 8 * s);
    int8x16x2_t q;
    if (type == QUANT_Q8_0) {
        q.val[0] = vld1q_s8((const int8_t *)block + 2);
        q.val[1] = vld1q_s8((const int8_t *)block + 18);
    } else {
        uint8x16_t packed = vld1q_u8(block + 2);
        const int8x16_t eight = vdupq_n_s8(8);
        q.val[0] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(packed, vdupq_n_u8(15))), eight);
        q.val[1] = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(packed, 4)), eight);
    }
    return q;
}

/* The integer dot of one slice. Activations stay in [-127, 127] (their block
 * maximum maps to 127), so one step of q8_0 products sums at most 2 * 128 * 127
 * per int16 lane and its short accumulator closes after each step; q4_0, q1_0
 * and q2_0 codes (|c| <= 8) take both steps in one. */
BL_NEON_INLINE int32x4_t quant_block_dot(quant_type type, int8x16x2_t w, int8x16x2_t x) {
    const int32x4_t zero = vdupq_n_s32(0);
    bl_dot_acc acc = bl_dot_s8(bl_dot_open(zero), w.val[0], x.val[0]);
    if (type == QUANT_Q8_0) {
        int32x4_t first = bl_dot_close(zero, acc);
        return bl_dot_close(first, bl_dot_s8(bl_dot_open(first), w.val[1], x.val[1]));
    }
    return bl_dot_close(zero, bl_dot_s8(acc, w.val[1], x.val[1]));
}

BL_NEON_INLINE void quant_tile(const bl_gemm_task *t, quant_type type, size_t row0, size_t tok0,
                               int rows, int tokens) {
    const bl_activations *x = t->x;
    const size_t block_bytes = quant_block_bytes(type), slices = quant_slices(type);
    float32x4_t acc[QUANT_MAX_ROWS][QUANT_MAX_TOKENS];
#pragma GCC unroll 4
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 4
        for (int j = 0; j < tokens; j++) acc[i][j] = vdupq_n_f32(0.0f);

    for (size_t b = 0; b < t->cols / 32; b++) {
        int8x16x2_t xq[QUANT_MAX_TOKENS];
        float xd[QUANT_MAX_TOKENS];
#pragma GCC unroll 4
        for (int j = 0; j < tokens; j++) {
            const bl_q8_block *xb =
                (const bl_q8_block *)(const void *)(x->data + (tok0 + j) * x->row_bytes) + b;
            xq[j].val[0] = vld1q_s8(xb->q);
            xq[j].val[1] = vld1q_s8(xb->q + 16);
            xd[j] = xb->d;
        }
#pragma GCC unroll 4
        for (int i = 0; i < rows; i++) {
            const uint8_t *block =
                t->w + (row0 + i) * t->w_row_bytes + b / slices * block_bytes;
            float d = quant_scale(block);
            int8x16x2_t w = quant_weights(type, block, b % slices);
#pragma GCC unroll 4
            for (int j = 0; j < tokens; j++)
                acc[i][j] = vfmaq_n_f32(acc[i][j], vcvtq_f32_s32(quant_block_dot(type, w, xq[j])),
                                        d * xd[j]);
        }
    }

    float *out = t->out;
#pragma GCC unroll 4
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 4
        for (int j = 0; j < tokens; j++)
            out[(tok0 + j) * t->out_stride + row0 + i] = vaddvq_f32(acc[i][j]);
}

BL_NEON_INLINE void quant_band(const bl_gemm_task *t, quant_type type, size_t row0, int rows,
                               int tile_tokens) {
    size_t j = 0;
    for (; j + (size_t)tile_tokens <= t->x->n; j += (size_t)tile_tokens)
        quant_tile(t, type, row0, j, rows, tile_tokens);
    if (tile_tokens > 1)
        for (; j < t->x->n; j++) quant_tile(t, type, row0, j, rows, 1);
}

BL_NEON_INLINE void quant_gemm(const bl_gemm_task *t, quant_type type, int tile_rows,
                               int tile_tokens) {
    size_t r = 0;
    for (; r + (size_t)tile_rows <= t->rows; r += (size_t)tile_rows)
        quant_band(t, type, r, tile_rows, tile_tokens);
    for (; r < t->rows; r++) quant_band(t, type, r, 1, tile_tokens);
}

#define QUANT_KERNELS(name, type)                                                    \
    void BL_NEON_FN(gemv_##name##_q8_mad)(const bl_gemm_task *t) {            \
        quant_gemm(t, type, QUANT_GEMV_ROWS, 1);                                     \
    }                                                                                \
    void BL_NEON_FN(gemm_##name##_q8_mad)(const bl_gemm_task *t) {            \
        quant_gemm(t, type, QUANT_GEMM_ROWS, QUANT_GEMM_TOKENS);                     \
    }

QUANT_KERNELS(q8_0, QUANT_Q8_0)
QUANT_KERNELS(q4_0, QUANT_Q4_0)
QUANT_KERNELS(q1_0, QUANT_Q1_0)
QUANT_KERNELS(q2_0, QUANT_Q2_0)
QUANT_KERNELS(q2_0_g128, QUANT_Q2_0_G128)

#endif
