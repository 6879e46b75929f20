/* AVX2 kernels for q1_0 and q2_0 (both packings; types/q1_0.c, q2_0.c)
 * against 32-blocks of int8 activations, one activation block (32 weights)
 * per step.
 *
 * q1_0: the 4 bytes of sign bits go to the 32 bytes (vpshufb of the
 * broadcast dword), an and with each byte's bit and a compare make 0xff where
 * the bit is set, an or with 1 turns that into s = -1 (set) or +1 (clear);
 * then per token sum(w x) = -sum(sign(x, s)), vpsignb and vpmaddubsw(1, .)
 * (|x| <= 127 by the activation rule, so nothing saturates). q2_0: the 8 code
 * bytes go to the dwords of their 128-bit lane (vpermd), vpsrlvd shifts dword
 * k of a lane by 2k and an and keeps two bits, so byte i of dword k holds the
 * code of weight 4i + k; one vpshufb puts every code at its weight. Then
 * sum(w x) = vpmaddubsw(c, x) - sum(x). vpmaddwd with ones widens to eight
 * int32 lanes, which are converted and FMA'd with d_w * d_x (negated for
 * q1_0), so each (row, token) takes the same steps whatever its tile.
 * Per 32 weights and row: q1_0 1 broadcast + 1 vpshufb + 1 and + 1 compare +
 * 1 or; q2_0 1 broadcast + 1 vpermd + 1 vpsrlvd + 1 and + 1 vpshufb; per row
 * and token 2 (q2_0: 1 + 1 sub) integer ops + vpmaddwd + convert + FMA. */
#include <immintrin.h>
#include <string.h>

#include "../../types/fp16.h"
#include "../../types/quant_blocks.h"
#include "../kernels.h"
#include "simd.h"
#include "tiling.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* q1_0: -1 where a weight's bit is set, +1 where it is clear. */
ALWAYS_INLINE __m256i q1_signs(const uint8_t *bits) {
    const __m256i byte_of = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
                                             2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit_of = _mm256_set1_epi64x(0x8040201008040201ll);
    int32_t word;
    memcpy(&word, bits, 4);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(word), byte_of);
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit_of), bit_of);
    return _mm256_or_si256(set, _mm256_set1_epi8(1));
}

/* q2_0: the unsigned codes 0..3 of 32 weights, in weight order. */
ALWAYS_INLINE __m256i q2_codes(const uint8_t *codes) {
    const __m256i dwords = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    const __m256i shifts = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    /* byte i of dword k -> byte 4i + k */
    const __m256i order = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                                           0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    int64_t bytes;
    memcpy(&bytes, codes, 8);
    __m256i v = _mm256_permutevar8x32_epi32(_mm256_set1_epi64x(bytes), dwords);
    v = _mm256_and_si256(_mm256_srlv_epi32(v, shifts), _mm256_set1_epi8(3));
    return _mm256_shuffle_epi8(v, order);
}

/* rows x tokens results; the counts are constants at each call. Per slice,
 * each token's activations are loaded once for all rows and each row's
 * weights unpacked once for all tokens. */
ALWAYS_INLINE void tile(const bl_gemm_task *t, bl_lowbit f, size_t row, int rows, size_t token,
                        int tokens) {
    const bl_activations *x = t->x;
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    const size_t group = (size_t)bl_lowbit_shapes[f].block, slices = group / 32;
    const size_t block_bytes = (size_t)bl_lowbit_shapes[f].bytes;
    const size_t slice_bytes = 4 * (size_t)bl_lowbit_shapes[f].bits; /* per 32 weights */
    __m256 acc[BL_AVX2_TILE_ROWS][BL_AVX2_TILE_TOKENS];
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++) acc[i][j] = _mm256_setzero_ps();
    for (size_t b = 0; b < t->cols / group; b++) {
        const uint8_t *block[BL_AVX2_TILE_ROWS];
        __m256 dw[BL_AVX2_TILE_ROWS];
        for (int i = 0; i < rows; i++) {
            block[i] = t->w + (row + i) * t->w_row_bytes + b * block_bytes;
            if (tokens == 1 && (b * block_bytes) % 64 < block_bytes)
                bl_prefetch(block[i] + bl_prefetch_ahead(rows * t->w_row_bytes));
            float d = bl_f16_load(block[i]);
            dw[i] = _mm256_set1_ps(f == BL_LOWBIT_Q1_0 ? -d : d);
        }
        for (size_t s = 0; s < slices; s++) {
            __m256i xq[BL_AVX2_TILE_TOKENS], xsum[BL_AVX2_TILE_TOKENS];
            __m256 xd[BL_AVX2_TILE_TOKENS];
            for (int j = 0; j < tokens; j++) {
                const bl_q8_block *xb =
                    (const bl_q8_block *)(x->data + (token + j) * x->row_bytes) + b * slices + s;
                xq[j] = _mm256_loadu_si256((const __m256i *)xb->q);
                xd[j] = _mm256_set1_ps(xb->d);
                /* q2_0: sum(x) off one lane of the eight */
                xsum[j] = _mm256_setr_epi32(xb->sum, 0, 0, 0, 0, 0, 0, 0);
            }
            for (int i = 0; i < rows; i++) {
                const uint8_t *q = block[i] + 2 + s * slice_bytes;
                __m256i w = f == BL_LOWBIT_Q1_0 ? q1_signs(q) : q2_codes(q);
                for (int j = 0; j < tokens; j++) {
                    __m256i dot;
                    if (f == BL_LOWBIT_Q1_0) {
                        dot = _mm256_maddubs_epi16(ones8, _mm256_sign_epi8(xq[j], w));
                        dot = _mm256_madd_epi16(dot, ones16);
                    } else {
                        dot = _mm256_madd_epi16(_mm256_maddubs_epi16(w, xq[j]), ones16);
                        dot = _mm256_sub_epi32(dot, xsum[j]);
                    }
                    acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                                                _mm256_mul_ps(dw[i], xd[j]), acc[i][j]);
                }
            }
        }
    }
    float *out = t->out;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++)
            out[(token + j) * t->out_stride + row + i] = bl_avx2_hsum_ps(acc[i][j]);
}

ALWAYS_INLINE void q1_0_tile(const bl_gemm_task *t, size_t r, int rows, size_t n, int tokens) {
    tile(t, BL_LOWBIT_Q1_0, r, rows, n, tokens);
}
ALWAYS_INLINE void q2_0_tile(const bl_gemm_task *t, size_t r, int rows, size_t n, int tokens) {
    tile(t, BL_LOWBIT_Q2_0, r, rows, n, tokens);
}
ALWAYS_INLINE void q2_0_g128_tile(const bl_gemm_task *t, size_t r, int rows, size_t n,
                                  int tokens) {
    tile(t, BL_LOWBIT_Q2_0_G128, r, rows, n, tokens);
}

BL_AVX2_ROWS_OR_TOKENS_KERNELS(q1_0_tile, bl_gemv_q1_0_q8_mad__avx2, bl_gemm_q1_0_q8_mad__avx2)
BL_AVX2_ROWS_OR_TOKENS_KERNELS(q2_0_tile, bl_gemv_q2_0_q8_mad__avx2, bl_gemm_q2_0_q8_mad__avx2)
BL_AVX2_ROWS_OR_TOKENS_KERNELS(q2_0_g128_tile, bl_gemv_q2_0_g128_q8_mad__avx2,
                               bl_gemm_q2_0_g128_q8_mad__avx2)
