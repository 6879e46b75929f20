/* How the avx512 kernels with float results (float.c, quant.c) walk a task
 * and store a tile. A tile is rows x tokens over the whole row, its
 * accumulators acc[row][token] with one lane sum each. */
#ifndef BL_AVX512_FLOAT_TILING_H
#define BL_AVX512_FLOAT_TILING_H

#include "../kernels.h"
#include "simd.h"

/* out for rows r .. r + rows - 1 (those that exist) and tokens tok .. tok +
 * tokens - 1; type picks the weight type, ahead > 0 prefetches the weights
 * that far ahead. The drivers below pass rows and tokens as constants. */
typedef void (*bl_float_tile_fn)(const bl_gemm_task *t, size_t r, size_t tok, const int rows,
                                 const int tokens, const int type, size_t ahead);

/* Stores the lane sums of acc for rows r .. r + rows - 1 (rows a multiple of
 * 4), leaving out the rows past the end. */
BL_INLINE void bl_store_float_tile(const bl_gemm_task *t, __m512 acc[8][4], size_t r, size_t tok,
                                   const int rows, const int tokens) {
    for (int j = 0; j < tokens; j++) {
        float *out = (float *)t->out + (tok + (size_t)j) * t->out_stride + r;
        for (int i = 0; i < rows; i += 4) {
            if (r + (size_t)i >= t->rows) break;
            __m128 sums = bl_sum4_ps(acc[i][j], acc[i + 1][j], acc[i + 2][j], acc[i + 3][j]);
            _mm_mask_storeu_ps(out + i, bl_first_lanes(t->rows - r - (size_t)i), sums);
        }
    }
}

/* GEMV: 8 rows per activation load, 8 independent chains. */
BL_INLINE void bl_float_gemv(const bl_gemm_task *t, bl_float_tile_fn tile, const int type) {
    size_t ahead = bl_prefetch_ahead(8 * t->w_row_bytes);
    for (size_t r = 0; r < t->rows; r += 8) tile(t, r, 0, 8, 1, type, ahead);
}

/* GEMM: tiles of 4 rows x 4 tokens (16 accumulators). */
BL_INLINE void bl_float_gemm(const bl_gemm_task *t, bl_float_tile_fn tile, const int type) {
    for (size_t r = 0; r < t->rows; r += 4) {
        size_t tok = 0;
        for (; tok + 4 <= t->x->n; tok += 4) tile(t, r, tok, 4, 4, type, 0);
        switch (t->x->n - tok) {
        case 3: tile(t, r, tok, 4, 3, type, 0); break;
        case 2: tile(t, r, tok, 4, 2, type, 0); break;
        case 1: tile(t, r, tok, 4, 1, type, 0); break;
        default: break;
        }
    }
}

#endif
