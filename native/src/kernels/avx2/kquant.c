/* AVX2 kernels for the k-quants (q4_k, q5_k, q6_k; types/q*_k.c) against
 * 32-blocks of int8 activations.
 *
 * A 32-weight sub-block is one 32-byte vector of unsigned codes (q6_k 0..63,
 * q5_k 0..31, q4_k 0..15), so vpmaddubsw(q, x) adds column pairs without
 * saturating (2 * 63 * 127 < 32768). q6_k's offset of 32 is vpmaddubsw(32, x),
 * computed once per activation block for all rows of a tile, and vpmaddwd
 * against its two 16-weight int8 scales (low lanes, high lanes) gives eight
 * int32 lanes of scale * dot. q4_k / q5_k: vpmaddwd by the 6-bit scale; the
 * min term is min * sum(x), which the activation block carries. The int32
 * lanes are converted and accumulated with FMA; each (row, token) result
 * takes the same steps whatever tile it is computed in. */
#include <immintrin.h>

#include "../../types/kquant_common.h"
#include "../kernels.h"
#include "simd.h"
#include "tiling.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

typedef enum kquant_format { Q4_K, Q5_K, Q6_K } kquant_format;

ALWAYS_INLINE size_t superblock_bytes(kquant_format f) {
    return f == Q4_K ? 144 : f == Q5_K ? 176 : 210;
}

/* q6_k sub-block g as unsigned codes 0..63 (the -32 is applied to the dot).
 * g is a constant after unrolling, so every shift is an immediate. */
ALWAYS_INLINE __m256i q6_k_codes(const uint8_t *w, int g) {
    const __m256i nibble = _mm256_set1_epi8(15), bits_4_5 = _mm256_set1_epi8(0x30);
    int h = g / 4, k = g % 4;
    __m256i low = _mm256_loadu_si256((const __m256i *)(w + 64 * h + 32 * (k % 2)));
    __m256i high = _mm256_loadu_si256((const __m256i *)(w + 128 + 32 * h));
    if (k / 2) low = _mm256_srli_epi16(low, 4);
    /* bring bits 2k..2k+1 to bits 4..5 */
    if (k == 0) high = _mm256_slli_epi16(high, 4);
    if (k == 1) high = _mm256_slli_epi16(high, 2);
    if (k == 3) high = _mm256_srli_epi16(high, 2);
    return _mm256_or_si256(_mm256_and_si256(low, nibble), _mm256_and_si256(high, bits_4_5));
}

/* q6_k's two 16-weight scales of sub-block g as int16 lanes: the low 128 bits
 * (weights 0-15) take scale 2g, the high 128 bits (16-31) scale 2g+1. */
ALWAYS_INLINE __m256i q6_k_scales(const uint8_t *w, int g) {
    const __m128i pick = _mm_set_epi8(2 * g + 1, 2 * g + 1, 2 * g + 1, 2 * g + 1, 2 * g + 1,
                                      2 * g + 1, 2 * g + 1, 2 * g + 1, 2 * g, 2 * g, 2 * g, 2 * g,
                                      2 * g, 2 * g, 2 * g, 2 * g);
    __m128i bytes = _mm_loadu_si128((const __m128i *)(w + 192));
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(bytes, pick));
}

/* q4_k / q5_k sub-block g as unsigned codes. */
ALWAYS_INLINE __m256i asym_codes(const uint8_t *w, int g, kquant_format f) {
    const __m256i nibble = _mm256_set1_epi8(15), bit_4 = _mm256_set1_epi8(16);
    const uint8_t *codes = w + (f == Q5_K ? 48 : 16);
    __m256i q = _mm256_loadu_si256((const __m256i *)(codes + 32 * (g / 2)));
    if (g % 2) q = _mm256_srli_epi16(q, 4);
    q = _mm256_and_si256(q, nibble);
    if (f == Q5_K) {
        /* bit g of each high byte to bit 4 */
        __m256i high = _mm256_loadu_si256((const __m256i *)(w + 16));
        if (g < 4) high = _mm256_slli_epi16(high, 4 - g);
        if (g > 4) high = _mm256_srli_epi16(high, g - 4);
        q = _mm256_or_si256(q, _mm256_and_si256(high, bit_4));
    }
    return q;
}

/* The rows' mins as floats by sub-block: lane i of out[g] is row i's min g.
 * Four rows of eight, turned by two rounds of unpacks and shuffles. */
ALWAYS_INLINE void mins_by_subblock(const uint8_t min[][8], int rows, __m128 out[8]) {
    __m256 r[4];
    for (int i = 0; i < 4; i++)
        r[i] = i < rows ? _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(
                              (const __m128i *)min[i])))
                        : _mm256_setzero_ps();
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 g04 = _mm256_shuffle_ps(t0, t2, 0x44), g15 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 g26 = _mm256_shuffle_ps(t1, t3, 0x44), g37 = _mm256_shuffle_ps(t1, t3, 0xee);
    const __m256 pairs[4] = {g04, g15, g26, g37};
    for (int g = 0; g < 4; g++) {
        out[g] = _mm256_castps256_ps128(pairs[g]);
        out[g + 4] = _mm256_extractf128_ps(pairs[g], 1);
    }
}

/* q4_k / q5_k's min term of one super-block added into lane i * tokens + j of
 * mins for each (row i, token j) of the tile: m = sum over g in order of
 * min[g] * (d_x[g] * sum(x[g])), each product and sum rounded (no FMA), then
 * mins += dmin * m. A GEMV tile (rows x 1 token) runs its rows in the lanes, a
 * GEMM tile (1 row x tokens, tiling.h) each token in turn: the same roundings
 * either way, so a row's result does not depend on its tile. */
ALWAYS_INLINE __m128 add_min_terms(__m128 mins, const uint8_t min[][8], const uint8_t *const *w,
                                   const bl_q8_block *const *xb, int rows, int tokens) {
    _Static_assert(BL_AVX2_TILE_ROWS <= 4 && BL_AVX2_TILE_TOKENS <= 4, "one lane per pair");
    if (rows == 1) {
        _Alignas(16) float terms[4] = {0};
        float dmin = bl_f16_load(w[0] + 2);
        for (int j = 0; j < tokens; j++) {
            float m = 0.0f;
            for (int g = 0; g < 8; g++) m += (float)min[0][g] * (xb[j][g].d * (float)xb[j][g].sum);
            terms[j] = dmin * m;
        }
        return _mm_add_ps(mins, _mm_load_ps(terms));
    }
    __m128 by_row[8];
    mins_by_subblock(min, rows, by_row);
    _Alignas(16) float dmin[4] = {0};
    for (int i = 0; i < rows; i++) dmin[i] = bl_f16_load(w[i] + 2);
    __m128 m = _mm_setzero_ps();
    for (int g = 0; g < 8; g++)
        m = _mm_add_ps(m, _mm_mul_ps(by_row[g], _mm_set1_ps(xb[0][g].d * (float)xb[0][g].sum)));
    return _mm_add_ps(mins, _mm_mul_ps(_mm_load_ps(dmin), m));
}

ALWAYS_INLINE float superblock_d(const uint8_t *w, kquant_format f) {
    return bl_f16_load(w + (f == Q6_K ? 208 : 0));
}

/* rows x tokens results; the counts are constants at each call. Per sub-block
 * g the activations are loaded once for all rows; per super-block each
 * (row, token) sums sub-block dots times d_x, then adds that times d_w. */
ALWAYS_INLINE void tile(const bl_gemm_task *t, kquant_format f, size_t row, int rows, size_t token,
                        int tokens) {
    const bl_activations *x = t->x;
    const __m256i thirty_two = _mm256_set1_epi8(32);
    __m256 acc[BL_AVX2_TILE_ROWS][BL_AVX2_TILE_TOKENS];
    __m128 mins = _mm_setzero_ps(); /* lane i * tokens + j: (row i, token j) */
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++) acc[i][j] = _mm256_setzero_ps();
    for (size_t b = 0; b < t->cols / BL_QK_K; b++) {
        const uint8_t *w[BL_AVX2_TILE_ROWS];
        const bl_q8_block *xb[BL_AVX2_TILE_TOKENS];
        __m256 block_acc[BL_AVX2_TILE_ROWS][BL_AVX2_TILE_TOKENS];
        for (int i = 0; i < rows; i++) {
            w[i] = t->w + (row + i) * t->w_row_bytes + b * superblock_bytes(f);
            if (tokens == 1) /* GEMV: x86_prefetch.h */
                for (size_t line = 0; line < superblock_bytes(f); line += 64)
                    bl_prefetch(w[i] + bl_prefetch_ahead(rows * t->w_row_bytes) + line);
            for (int j = 0; j < tokens; j++) block_acc[i][j] = _mm256_setzero_ps();
        }
        for (int j = 0; j < tokens; j++)
            xb[j] = (const bl_q8_block *)(x->data + (token + j) * x->row_bytes) + 8 * b;
        /* q4_k / q5_k: unpack the 6-bit scales once per row, and add the min
         * term dmin * sum_g min[g] * d_x[g] * sum(x[g]) once per super-block */
        uint8_t scale[BL_AVX2_TILE_ROWS][8];
        if (f != Q6_K) {
            uint8_t min[BL_AVX2_TILE_ROWS][8];
            for (int i = 0; i < rows; i++) bl_kq_scales_mins(w[i] + 4, scale[i], min[i]);
            mins = add_min_terms(mins, min, w, xb, rows, tokens);
        }
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            __m256i xq[BL_AVX2_TILE_TOKENS], bias[BL_AVX2_TILE_TOKENS];
            __m256 xd[BL_AVX2_TILE_TOKENS];
            for (int j = 0; j < tokens; j++) {
                xq[j] = _mm256_loadu_si256((const __m256i *)xb[j][g].q);
                xd[j] = _mm256_set1_ps(xb[j][g].d);
                if (f == Q6_K) bias[j] = _mm256_maddubs_epi16(thirty_two, xq[j]);
            }
            for (int i = 0; i < rows; i++) {
                __m256i q, scales;
                if (f == Q6_K) {
                    q = q6_k_codes(w[i], g);
                    scales = q6_k_scales(w[i], g);
                } else {
                    q = asym_codes(w[i], g, f);
                    scales = _mm256_set1_epi16((int16_t)scale[i][g]);
                }
                for (int j = 0; j < tokens; j++) {
                    __m256i pairs = _mm256_maddubs_epi16(q, xq[j]);
                    if (f == Q6_K) pairs = _mm256_sub_epi16(pairs, bias[j]);
                    __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, scales));
                    block_acc[i][j] = _mm256_fmadd_ps(dot, xd[j], block_acc[i][j]);
                }
            }
        }
        for (int i = 0; i < rows; i++) {
            __m256 d = _mm256_set1_ps(superblock_d(w[i], f));
            for (int j = 0; j < tokens; j++) acc[i][j] = _mm256_fmadd_ps(block_acc[i][j], d, acc[i][j]);
        }
    }
    float *out = t->out, min_terms[4];
    _mm_storeu_ps(min_terms, mins);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++)
            out[(token + j) * t->out_stride + row + i] =
                bl_avx2_hsum_ps(acc[i][j]) - min_terms[i * tokens + j];
}

#define KQUANT_KERNELS(type, F)                                                                   \
    ALWAYS_INLINE void type##_tile(const bl_gemm_task *t, size_t r, int rows, size_t n, int tokens) {\
        tile(t, F, r, rows, n, tokens);                                                           \
    }                                                                                             \
    BL_AVX2_ROWS_OR_TOKENS_KERNELS(type##_tile, bl_gemv_##type##_q8_mad__avx2,                    \
                                   bl_gemm_##type##_q8_mad__avx2)

KQUANT_KERNELS(q4_k, Q4_K)
KQUANT_KERNELS(q5_k, Q5_K)
KQUANT_KERNELS(q6_k, Q6_K)
