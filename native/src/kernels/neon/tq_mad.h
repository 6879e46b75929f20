/* NEON kernels for llama.cpp's ternary block types tq1_0 and tq2_0
 * (types/tq*.c) against 32-blocks of int8 activations; included by mad.c
 * after quant_mad.h, whose block dot (dot steps of mad.c's extension) it
 * takes. A 256-block's sub-block g (32 weights, one activation block) is
 * decoded to signed trits c - 1 (tq2_0's code 3: +2), so no offset is left:
 *   y = sum over blocks of d_w * sum_g d_x[g] * (integer sub-block dot),
 * one float multiply-add per sub-block and (row, token), the products of a
 * (row, token) gathered in a float32x4 and summed across lanes at the end.
 * tq2_0: sub-block 4h + l is bits 2l of bytes 32h .. 32h + 31. tq1_0: digit k
 * of a byte q is [m > 85] + [m > 170] with m = q * 3^k mod 256 (vmulq_u8);
 * sub-blocks 0-4 are the digits of bytes 0-31, 5 and 6 two digits of bytes
 * 32-47 each, 7 the last digit of bytes 32-47 and the four of bytes 48-51. */
#ifndef BL_NEON_TQ_MAD_H
#define BL_NEON_TQ_MAD_H

#include <string.h>

#include "../../types/tq_common.h"
#include "quant_mad.h"

typedef enum tq_type { TQ_TQ1_0, TQ_TQ2_0 } tq_type;

BL_NEON_INLINE size_t tq_block_bytes(tq_type type) {
    return type == TQ_TQ1_0 ? BL_TQ1_0_BYTES : BL_TQ2_0_BYTES;
}

/* Trits of the bytes m = q * 3^k mod 256: -1 + [m > 85] + [m > 170]. */
BL_NEON_INLINE int8x16_t tq_digit_trits(uint8x16_t m) {
    int8x16_t above_low = vreinterpretq_s8_u8(vcgtq_u8(m, vdupq_n_u8(85)));
    int8x16_t above_high = vreinterpretq_s8_u8(vcgtq_u8(m, vdupq_n_u8(170)));
    return vsubq_s8(vsubq_s8(vdupq_n_s8(-1), above_low), above_high);
}

/* The 32 trits of sub-block g of a block: weights 32g .. 32g + 15, then the next 16. */
BL_NEON_INLINE int8x16x2_t tq_trits(tq_type type, const uint8_t *block, int g) {
    int8x16x2_t w;
    if (type == TQ_TQ2_0) {
        const uint8_t *half = block + 32 * (g / 4);
        const int8x16_t shift = vdupq_n_s8((int8_t)(-2 * (g % 4)));
        const uint8x16_t three = vdupq_n_u8(3);
        for (int v = 0; v < 2; v++) {
            uint8x16_t codes = vandq_u8(vshlq_u8(vld1q_u8(half + 16 * v), shift), three);
            w.val[v] = vsubq_s8(vreinterpretq_s8_u8(codes), vdupq_n_s8(1));
        }
        return w;
    }
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    if (g < 5) {
        for (int v = 0; v < 2; v++)
            w.val[v] = tq_digit_trits(vmulq_u8(vld1q_u8(block + 16 * v), vdupq_n_u8(pow3[g])));
        return w;
    }
    uint8x16_t q = vld1q_u8(block + 32);
    if (g < 7) { /* digits 2(g - 5) and 2(g - 5) + 1 of bytes 32-47 */
        w.val[0] = tq_digit_trits(vmulq_u8(q, vdupq_n_u8(pow3[2 * (g - 5)])));
        w.val[1] = tq_digit_trits(vmulq_u8(q, vdupq_n_u8(pow3[2 * (g - 5) + 1])));
        return w;
    }
    w.val[0] = tq_digit_trits(vmulq_u8(q, vdupq_n_u8(81)));
    /* bytes 48-51: weight 240 + 4k + j is digit k of byte j */
    static const uint8_t tail_pow3[16] = {1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27};
    uint32_t qh;
    memcpy(&qh, block + 48, 4);
    uint8x16_t tail = vreinterpretq_u8_u32(vdupq_n_u32(qh));
    w.val[1] = tq_digit_trits(vmulq_u8(tail, vld1q_u8(tail_pow3)));
    return w;
}

BL_NEON_INLINE void tq_tile(const bl_gemm_task *t, tq_type type, size_t row0, size_t tok0,
                            int rows, int tokens) {
    const bl_activations *x = t->x;
    const size_t block_bytes = tq_block_bytes(type);
    const size_t d_at = type == TQ_TQ1_0 ? BL_TQ1_0_D : BL_TQ2_0_D;
    float32x4_t acc[QUANT_MAX_ROWS][QUANT_MAX_TOKENS];
#pragma GCC unroll 4
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 4
        for (int j = 0; j < tokens; j++) acc[i][j] = vdupq_n_f32(0.0f);

    for (size_t b = 0; b < t->cols / BL_TQ_BLOCK; b++) {
        float d[QUANT_MAX_ROWS];
#pragma GCC unroll 4
        for (int i = 0; i < rows; i++) {
            __fp16 h;
            memcpy(&h, t->w + (row0 + i) * t->w_row_bytes + b * block_bytes + d_at, 2);
            d[i] = (float)h;
        }
        for (int g = 0; g < 8; g++) {
            int8x16x2_t xq[QUANT_MAX_TOKENS];
            float xd[QUANT_MAX_TOKENS];
#pragma GCC unroll 4
            for (int j = 0; j < tokens; j++) {
                const bl_q8_block *xb =
                    (const bl_q8_block *)(const void *)(x->data + (tok0 + j) * x->row_bytes) +
                    8 * b + g;
                xq[j].val[0] = vld1q_s8(xb->q);
                xq[j].val[1] = vld1q_s8(xb->q + 16);
                xd[j] = xb->d;
            }
#pragma GCC unroll 4
            for (int i = 0; i < rows; i++) {
                const uint8_t *block = t->w + (row0 + i) * t->w_row_bytes + b * block_bytes;
                int8x16x2_t w = tq_trits(type, block, g);
#pragma GCC unroll 4
                for (int j = 0; j < tokens; j++)
                    acc[i][j] =
                        vfmaq_n_f32(acc[i][j],
                                    vcvtq_f32_s32(quant_block_dot(QUANT_Q4_0, w, xq[j])),
                                    d[i] * xd[j]);
            }
        }
    }

    float *out = t->out;
#pragma GCC unroll 4
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 4
        for (int j = 0; j < tokens; j++)
            out[(tok0 + j) * t->out_stride + row0 + i] = vaddvq_f32(acc[i][j]);
}

BL_NEON_INLINE void tq_band(const bl_gemm_task *t, tq_type type, size_t row0, int rows,
                            int tile_tokens) {
    size_t j = 0;
    for (; j + (size_t)tile_tokens <= t->x->n; j += (size_t)tile_tokens)
        tq_tile(t, type, row0, j, rows, tile_tokens);
    if (tile_tokens > 1)
        for (; j < t->x->n; j++) tq_tile(t, type, row0, j, rows, 1);
}

BL_NEON_INLINE void tq_gemm(const bl_gemm_task *t, tq_type type, int tile_rows, int tile_tokens) {
    size_t r = 0;
    for (; r + (size_t)tile_rows <= t->rows; r += (size_t)tile_rows)
        tq_band(t, type, r, tile_rows, tile_tokens);
    for (; r < t->rows; r++) tq_band(t, type, r, 1, tile_tokens);
}

#define TQ_KERNELS(name, type)                                                       \
    void BL_NEON_FN(gemv_##name##_q8_mad)(const bl_gemm_task *t) {                   \
        tq_gemm(t, type, QUANT_GEMV_ROWS, 1);                                        \
    }                                                                                \
    void BL_NEON_FN(gemm_##name##_q8_mad)(const bl_gemm_task *t) {                   \
        tq_gemm(t, type, QUANT_GEMM_ROWS, QUANT_GEMM_TOKENS);                        \
    }

TQ_KERNELS(tq1_0, TQ_TQ1_0)
TQ_KERNELS(tq2_0, TQ_TQ2_0)

#endif
