/* AVX2 multiply-add kernels for bt1 (layout in types/bt1.c).
 *
 * Byte j of a block holds the digits of columns j + 64k, k = 0..4: digit k of
 * byte q is floor(3 m / 256) with m = q * 3^k mod 256. With p = m - 128 as a
 * signed byte, p_{k+1} = 3 p_k mod 256 (two byte adds); digit 2 is p > 42,
 * digit 0 is p < -42, so with compare masks (0 or -1)
 *   trit = digit - 1 = cmpgt(43, p) - cmpgt(p, -43):
 * no multiplies, and every operation works on all 32 bytes (about 0.25
 * instructions per weight). A 32-byte half h serves columns 64k + 32h + i.
 * int8 activations: vpmaddubsw(trit + 1, x) adds column pairs (|2*2*128|),
 * five of them fit int16, and dot = sum((trit + 1) * x) - sum(x).
 * int16 activations: the trits are sign-extended to int16 lanes and
 * vpmaddwd(trit, x) gives dot directly. */
#include <immintrin.h>

#include "../kernels.h"
#include "simd.h"
#include "tiling.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Hides a constant from the optimizer: GCC rewrites a compare against a
 * known constant (p > -43 into p >= -42) and then needs two instructions
 * (vpminsb + vpcmpeqb) where vpcmpgtb alone would do. */
ALWAYS_INLINE __m256i opaque(__m256i v) {
    __asm__("" : "+x"(v));
    return v;
}

/* The trits of one digit of 32 bytes in the signed form p (see above). */
ALWAYS_INLINE __m256i trits(__m256i p) {
    __m256i below_top = _mm256_cmpgt_epi8(opaque(_mm256_set1_epi8(43)), p);
    __m256i above_bottom = _mm256_cmpgt_epi8(p, opaque(_mm256_set1_epi8(-43)));
    return _mm256_sub_epi8(below_top, above_bottom);
}

ALWAYS_INLINE __m256i next_digit(__m256i p) { return _mm256_add_epi8(_mm256_add_epi8(p, p), p); }

ALWAYS_INLINE __m256i load_signed_form(const uint8_t *half) {
    __m256i q = _mm256_loadu_si256((const __m256i *)half);
    return _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80));
}

/* int8 activations: the codes trit + 1 of a half for k = 0..4. */
ALWAYS_INLINE void unpack_half_codes(const uint8_t *half, __m256i codes[5]) {
    const __m256i one = _mm256_set1_epi8(1);
    __m256i p = load_signed_form(half);
    for (int k = 0; k < 5; k++) {
        if (k) p = next_digit(p);
        codes[k] = _mm256_add_epi8(trits(p), one);
    }
}

/* rows x tokens dot products over the whole row; the counts are constants at
 * each call so the compiler keeps the accumulators in registers. */
ALWAYS_INLINE void tile_i8(const bl_gemm_task *t, size_t row, int rows, size_t token,
                           int tokens) {
    const bl_activations *x = t->x;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[BL_AVX2_TILE_ROWS][BL_AVX2_TILE_TOKENS];
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++) acc[i][j] = _mm256_setzero_si256();
    for (size_t b = 0; b < t->cols / 320; b++) {
        for (int h = 0; h < 2; h++) {
            for (int i = 0; i < rows; i++) {
                __m256i codes[5];
                const uint8_t *half = t->w + (row + i) * t->w_row_bytes + 64 * b + 32 * h;
                if (tokens == 1 && h == 0) /* GEMV: x86_prefetch.h */
                    bl_prefetch(half + bl_prefetch_ahead(rows * t->w_row_bytes));
                unpack_half_codes(half, codes);
                for (int j = 0; j < tokens; j++) {
                    const int8_t *xj =
                        (const int8_t *)(x->data + (token + j) * x->row_bytes) + 320 * b + 32 * h;
                    __m256i s =
                        _mm256_maddubs_epi16(codes[0], _mm256_load_si256((const __m256i *)xj));
                    for (int k = 1; k < 5; k++) {
                        __m256i xk = _mm256_load_si256((const __m256i *)(xj + 64 * k));
                        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(codes[k], xk));
                    }
                    acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(s, ones));
                }
            }
        }
    }
    int32_t *out = t->out;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++)
            out[(token + j) * t->out_stride + row + i] =
                bl_avx2_minus(bl_avx2_hsum_epi32(acc[i][j]), x->sums[token + j]);
}

/* int16 activations: one digit at a time, trits widened to int16 lanes. */
ALWAYS_INLINE void tile_i16(const bl_gemm_task *t, size_t row, int rows, size_t token,
                            int tokens) {
    const bl_activations *x = t->x;
    __m256i acc[BL_AVX2_TILE_ROWS][BL_AVX2_TILE_TOKENS];
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++) acc[i][j] = _mm256_setzero_si256();
    const int16_t *xr[BL_AVX2_TILE_TOKENS];
    for (int j = 0; j < tokens; j++)
        xr[j] = (const int16_t *)(x->data + (token + j) * x->row_bytes);
    for (size_t b = 0; b < t->cols / 320; b++) {
        for (int h = 0; h < 2; h++) {
            for (int i = 0; i < rows; i++) {
                __m256i p = load_signed_form(t->w + (row + i) * t->w_row_bytes + 64 * b + 32 * h);
#pragma GCC unroll 5
                for (int k = 0; k < 5; k++) {
                    if (k) p = next_digit(p);
                    __m256i tr = trits(p);
                    __m256i low = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(tr));
                    __m256i high = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(tr, 1));
                    for (int j = 0; j < tokens; j++) {
                        const int16_t *xj = xr[j] + 320 * b + 64 * k + 32 * h;
                        __m256i s = _mm256_add_epi32(
                            _mm256_madd_epi16(low, _mm256_load_si256((const __m256i *)xj)),
                            _mm256_madd_epi16(high, _mm256_load_si256((const __m256i *)(xj + 16))));
                        acc[i][j] = _mm256_add_epi32(acc[i][j], s);
                        bl_avx2_pin(&acc[i][j]);
                    }
                }
            }
        }
    }
    int32_t *out = t->out;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++)
            out[(token + j) * t->out_stride + row + i] = bl_avx2_hsum_epi32(acc[i][j]);
}

BL_AVX2_ROWS_OR_TOKENS_KERNELS(tile_i8, bl_gemv_bt1_i8_mad__avx2, bl_gemm_bt1_i8_mad__avx2)
BL_AVX2_ROWS_OR_TOKENS_KERNELS(tile_i16, bl_gemv_bt1_i16_mad__avx2,
                               bl_gemm_bt1_i16_mad__avx2)
