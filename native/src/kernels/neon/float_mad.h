/* NEON kernels for the float types (f32, f16, bf16) with float activations;
 * included by mad.c. Weights widen to float32 (f16 with fcvtl, bf16 by a
 * 16-bit shift) and meet the activations in fused multiply-adds, 8 columns
 * per step in two accumulators; the last cols % 8 columns are summed in
 * scalar code. Each row's order of operations does not depend on the tile it
 * falls in, so results are the same for any thread count. */
#ifndef BL_NEON_FLOAT_MAD_H
#define BL_NEON_FLOAT_MAD_H

#include <string.h>

#include "../../types/fp16.h"
#include "mad_common.h"

typedef enum float_type { FLOAT_F32, FLOAT_F16, FLOAT_BF16 } float_type;

#define FLOAT_MAX_ROWS 4
#define FLOAT_MAX_TOKENS 4
#define FLOAT_GEMV_ROWS 4
#define FLOAT_GEMM_ROWS 2
#define FLOAT_GEMM_TOKENS 4

/* Weights c..c+7 of a row as two float32x4. */
BL_NEON_INLINE float32x4x2_t float_load8(float_type type, const uint8_t *row, size_t c) {
    float32x4x2_t w;
    if (type == FLOAT_F32) {
        w.val[0] = vld1q_f32((const float *)(const void *)row + c);
        w.val[1] = vld1q_f32((const float *)(const void *)row + c + 4);
    } else if (type == FLOAT_F16) {
        float16x8_t h = vreinterpretq_f16_u8(vld1q_u8(row + 2 * c));
        w.val[0] = vcvt_f32_f16(vget_low_f16(h));
        w.val[1] = vcvt_high_f32_f16(h);
    } else {
        uint16x8_t h = vreinterpretq_u16_u8(vld1q_u8(row + 2 * c));
        w.val[0] = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
        w.val[1] = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
    }
    return w;
}

BL_NEON_INLINE float float_load1(float_type type, const uint8_t *row, size_t c) {
    uint16_t h;
    if (type == FLOAT_F32) {
        float v;
        memcpy(&v, row + 4 * c, 4);
        return v;
    }
    memcpy(&h, row + 2 * c, 2);
    return type == FLOAT_F16 ? bl_f16_to_f32(h) : bl_bf16_to_f32(h);
}

BL_NEON_INLINE void float_tile(const bl_gemm_task *t, float_type type, size_t row0, size_t tok0,
                               int rows, int tokens) {
    const bl_activations *x = t->x;
    const size_t main_cols = t->cols / 8 * 8;
    const uint8_t *w[FLOAT_MAX_ROWS];
    const float *xr[FLOAT_MAX_TOKENS];
    float32x4_t acc0[FLOAT_MAX_ROWS][FLOAT_MAX_TOKENS], acc1[FLOAT_MAX_ROWS][FLOAT_MAX_TOKENS];
#pragma GCC unroll 4
    for (int i = 0; i < rows; i++) w[i] = t->w + (row0 + i) * t->w_row_bytes;
#pragma GCC unroll 4
    for (int j = 0; j < tokens; j++)
        xr[j] = (const float *)(const void *)(x->data + (tok0 + j) * x->row_bytes);
#pragma GCC unroll 4
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 4
        for (int j = 0; j < tokens; j++) acc0[i][j] = acc1[i][j] = vdupq_n_f32(0.0f);

    for (size_t c = 0; c < main_cols; c += 8) {
        float32x4_t x0[FLOAT_MAX_TOKENS], x1[FLOAT_MAX_TOKENS];
#pragma GCC unroll 4
        for (int j = 0; j < tokens; j++) {
            x0[j] = vld1q_f32(xr[j] + c);
            x1[j] = vld1q_f32(xr[j] + c + 4);
        }
#pragma GCC unroll 4
        for (int i = 0; i < rows; i++) {
            float32x4x2_t wv = float_load8(type, w[i], c);
#pragma GCC unroll 4
            for (int j = 0; j < tokens; j++) {
                acc0[i][j] = vfmaq_f32(acc0[i][j], wv.val[0], x0[j]);
                acc1[i][j] = vfmaq_f32(acc1[i][j], wv.val[1], x1[j]);
            }
        }
    }

    float *out = t->out;
#pragma GCC unroll 4
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 4
        for (int j = 0; j < tokens; j++) {
            float tail = 0.0f;
            for (size_t c = main_cols; c < t->cols; c++)
                tail += float_load1(type, w[i], c) * xr[j][c];
            out[(tok0 + j) * t->out_stride + row0 + i] =
                vaddvq_f32(vaddq_f32(acc0[i][j], acc1[i][j])) + tail;
        }
}

BL_NEON_INLINE void float_band(const bl_gemm_task *t, float_type type, size_t row0, int rows,
                               int tile_tokens) {
    size_t j = 0;
    for (; j + (size_t)tile_tokens <= t->x->n; j += (size_t)tile_tokens)
        float_tile(t, type, row0, j, rows, tile_tokens);
    if (tile_tokens > 1)
        for (; j < t->x->n; j++) float_tile(t, type, row0, j, rows, 1);
}

BL_NEON_INLINE void float_gemm(const bl_gemm_task *t, float_type type, int tile_rows,
                               int tile_tokens) {
    size_t r = 0;
    for (; r + (size_t)tile_rows <= t->rows; r += (size_t)tile_rows)
        float_band(t, type, r, tile_rows, tile_tokens);
    for (; r < t->rows; r++) float_band(t, type, r, 1, tile_tokens);
}

#define FLOAT_KERNELS(name, type)                                                    \
    void BL_NEON_FN(gemv_##name##_f32_mad)(const bl_gemm_task *t) {           \
        float_gemm(t, type, FLOAT_GEMV_ROWS, 1);                                     \
    }                                                                                \
    void BL_NEON_FN(gemm_##name##_f32_mad)(const bl_gemm_task *t) {           \
        float_gemm(t, type, FLOAT_GEMM_ROWS, FLOAT_GEMM_TOKENS);                     \
    }

FLOAT_KERNELS(f32, FLOAT_F32)
FLOAT_KERNELS(f16, FLOAT_F16)
FLOAT_KERNELS(bf16, FLOAT_BF16)

#endif
