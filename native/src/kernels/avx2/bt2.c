/* AVX2 multiply-add kernels for bt2 (layout in types/bt2.c).
 *
 * The 64 bytes of a block, shifted right by 2k and masked, give the codes
 * c = trit + 1 of columns 64k .. 64k + 63, so a 32-byte half h serves columns
 * 64k + 32h + i and a 16-byte quarter q columns 64k + 16q + i; the kernels
 * compute sum(c * x) and subtract sum(x).
 * int8 activations: vpmaddubsw(codes, x) adds column pairs without saturating
 * (|2 * 2 * 128| = 512), several such sums still fit int16, and vpmaddwd with
 * ones widens to int32 once per two blocks (GEMV) or four (GEMM). GEMV counts
 * 0.11 vector instructions per weight: per 512 weights and row 4 loads, 4
 * shifts, 16 vpand, 16 vpmaddubsw, 16 vpaddw, then 1 vpsraw, 1 vpaddw,
 * 1 vpmaddwd, 1 vpaddd (BENCHMARKS.md, AVX2).
 * int16 activations: a quarter is widened to int16 lanes first, then
 * vpmaddwd(codes, x) sums in int32. */
#include <immintrin.h>

#include "../kernels.h"
#include "simd.h"
#include "tiling.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* GEMV: the codes of a half with codes 1 and 3 left four times too large:
 * masking w and w >> 4 with 3 and 12 needs one shift, not three. */
ALWAYS_INLINE void unpack_half_scaled(const uint8_t *half, __m256i codes[4]) {
    const __m256i low = _mm256_set1_epi8(3), high = _mm256_set1_epi8(12);
    __m256i w = _mm256_loadu_si256((const __m256i *)half);
    __m256i w4 = _mm256_srli_epi16(w, 4);
    codes[0] = _mm256_and_si256(w, low);
    codes[1] = _mm256_and_si256(w, high);
    codes[2] = _mm256_and_si256(w4, low);
    codes[3] = _mm256_and_si256(w4, high);
}

/* int16 column-pair sums over `blocks` (1 or 2) consecutive blocks, widened
 * to int32 once: plain holds codes 0 and 2, quadruple codes 1 and 3 times
 * four. Any byte (code 3 included, |x| <= 128) keeps one vpmaddubsw within
 * 2 * 12 * 128 = 3072, and two blocks' eight of them within int16;
 * quadruple is a multiple of four, so shifting it back is exact. */
ALWAYS_INLINE __m256i blocks_dot_scaled(const uint8_t *block, const int8_t *x, int blocks) {
    __m256i plain = _mm256_setzero_si256(), quadruple = _mm256_setzero_si256();
    for (int b = 0; b < blocks; b++) {
        for (int h = 0; h < 2; h++) {
            __m256i c[4];
            const int8_t *xh = x + 256 * b + 32 * h;
            unpack_half_scaled(block + 64 * b + 32 * h, c);
            plain = _mm256_add_epi16(
                plain,
                _mm256_add_epi16(
                    _mm256_maddubs_epi16(c[0], _mm256_load_si256((const __m256i *)xh)),
                    _mm256_maddubs_epi16(c[2], _mm256_load_si256((const __m256i *)(xh + 128)))));
            quadruple = _mm256_add_epi16(
                quadruple,
                _mm256_add_epi16(
                    _mm256_maddubs_epi16(c[1], _mm256_load_si256((const __m256i *)(xh + 64))),
                    _mm256_maddubs_epi16(c[3], _mm256_load_si256((const __m256i *)(xh + 192)))));
        }
    }
    __m256i sum = _mm256_add_epi16(plain, _mm256_srai_epi16(quadruple, 2));
    return _mm256_madd_epi16(sum, _mm256_set1_epi16(1));
}

/* GEMM: exact codes, unpacked once per half and used by every token. */
ALWAYS_INLINE void unpack_half(const uint8_t *half, __m256i codes[4]) {
    const __m256i three = _mm256_set1_epi8(3);
    __m256i w = _mm256_loadu_si256((const __m256i *)half);
    codes[0] = _mm256_and_si256(w, three);
    codes[1] = _mm256_and_si256(_mm256_srli_epi16(w, 2), three);
    codes[2] = _mm256_and_si256(_mm256_srli_epi16(w, 4), three);
    codes[3] = _mm256_and_si256(_mm256_srli_epi16(w, 6), three);
}

/* The four codes of a half against x, as int16 column pairs (at most 4 * 512). */
ALWAYS_INLINE __m256i half_dot(const __m256i codes[4], const int8_t *x) {
    __m256i s = _mm256_maddubs_epi16(codes[0], _mm256_load_si256((const __m256i *)x));
    for (int k = 1; k < 4; k++)
        s = _mm256_add_epi16(
            s, _mm256_maddubs_epi16(codes[k], _mm256_load_si256((const __m256i *)(x + 64 * k))));
    return s;
}

ALWAYS_INLINE const int8_t *x_row_i8(const bl_gemm_task *t, size_t token) {
    return (const int8_t *)(t->x->data + token * t->x->row_bytes);
}

/* GEMV: rows x 1 token over the whole row, two blocks at a time. Each row
 * asks for the bytes bl_prefetch_ahead on (x86_prefetch.h). */
ALWAYS_INLINE void gemv_tile_i8(const bl_gemm_task *t, size_t row, int rows) {
    const int8_t *x = x_row_i8(t, 0);
    const size_t blocks = t->cols / 256;
    __m256i acc[BL_AVX2_TILE_ROWS];
    for (int i = 0; i < rows; i++) acc[i] = _mm256_setzero_si256();
    const size_t ahead = bl_prefetch_ahead(rows * t->w_row_bytes);
    size_t b = 0;
    for (; b + 2 <= blocks; b += 2) {
        for (int i = 0; i < rows; i++) {
            const uint8_t *block = t->w + (row + i) * t->w_row_bytes + 64 * b;
            bl_prefetch(block + ahead);
            bl_prefetch(block + ahead + 64);
            acc[i] = _mm256_add_epi32(acc[i], blocks_dot_scaled(block, x + 256 * b, 2));
        }
    }
    if (b < blocks)
        for (int i = 0; i < rows; i++) {
            const uint8_t *block = t->w + (row + i) * t->w_row_bytes + 64 * b;
            acc[i] = _mm256_add_epi32(acc[i], blocks_dot_scaled(block, x + 256 * b, 1));
        }
    int32_t *out = t->out;
    for (int i = 0; i < rows; i++)
        out[row + i] = bl_avx2_minus(bl_avx2_hsum_epi32(acc[i]), t->x->sums[0]);
}

/* Blocks whose int16 half sums a GEMM token adds up before widening: any
 * byte keeps a half's sum within 4 * 2 * 3 * 128 = 3072, eight halves within
 * int16. Widening is a multiply like vpmaddubsw, so doing it once per four
 * blocks rather than per half leaves the multiply ports to the products. */
#define GEMM_BLOCKS_PER_WIDEN 4

/* GEMM: 1 row x tokens over the whole row (constant counts at each call, so
 * the accumulators stay in registers). */
ALWAYS_INLINE void gemm_tile_i8(const bl_gemm_task *t, size_t row, size_t token, int tokens) {
    const __m256i ones = _mm256_set1_epi16(1);
    const uint8_t *w = t->w + row * t->w_row_bytes;
    const size_t blocks = t->cols / 256;
    __m256i acc[BL_AVX2_TILE_TOKENS];
    for (int j = 0; j < tokens; j++) acc[j] = _mm256_setzero_si256();
    for (size_t first = 0; first < blocks; first += GEMM_BLOCKS_PER_WIDEN) {
        size_t last = first + GEMM_BLOCKS_PER_WIDEN;
        if (last > blocks) last = blocks;
        __m256i sum[BL_AVX2_TILE_TOKENS];
        for (int j = 0; j < tokens; j++) sum[j] = _mm256_setzero_si256();
        for (size_t b = first; b < last; b++) {
            for (int h = 0; h < 2; h++) {
                __m256i codes[4];
                unpack_half(w + 64 * b + 32 * h, codes);
                for (int j = 0; j < tokens; j++) {
                    sum[j] = _mm256_add_epi16(
                        sum[j], half_dot(codes, x_row_i8(t, token + j) + 256 * b + 32 * h));
                    bl_avx2_pin(&sum[j]);
                }
            }
        }
        for (int j = 0; j < tokens; j++)
            acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(sum[j], ones));
    }
    int32_t *out = t->out;
    for (int j = 0; j < tokens; j++)
        out[(token + j) * t->out_stride + row] =
            bl_avx2_minus(bl_avx2_hsum_epi32(acc[j]), t->x->sums[token + j]);
}

/* The tile shape BL_AVX2_ROWS_OR_TOKENS_KERNELS asks for. */
ALWAYS_INLINE void tile_i8(const bl_gemm_task *t, size_t row, int rows, size_t token,
                           int tokens) {
    if (tokens == 1 && token == 0 && t->x->n == 1)
        gemv_tile_i8(t, row, rows);
    else
        gemm_tile_i8(t, row, token, tokens);
}

/* int16 activations: the codes of a quarter in int16 lanes. */
ALWAYS_INLINE void unpack_quarter(const uint8_t *quarter, __m256i codes[4]) {
    const __m256i three = _mm256_set1_epi16(3);
    __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)quarter));
    codes[0] = _mm256_and_si256(w, three);
    codes[1] = _mm256_and_si256(_mm256_srli_epi16(w, 2), three);
    codes[2] = _mm256_and_si256(_mm256_srli_epi16(w, 4), three);
    codes[3] = _mm256_srli_epi16(w, 6);
}

/* rows x tokens dot products over the whole row (constant counts). */
ALWAYS_INLINE void tile_i16(const bl_gemm_task *t, size_t row, int rows, size_t token,
                            int tokens) {
    const bl_activations *x = t->x;
    __m256i acc[BL_AVX2_TILE_ROWS][BL_AVX2_TILE_TOKENS];
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++) acc[i][j] = _mm256_setzero_si256();
    for (size_t b = 0; b < t->cols / 256; b++) {
        for (int q = 0; q < 4; q++) {
            for (int i = 0; i < rows; i++) {
                __m256i codes[4];
                unpack_quarter(t->w + (row + i) * t->w_row_bytes + 64 * b + 16 * q, codes);
                for (int j = 0; j < tokens; j++) {
                    const int16_t *xj =
                        (const int16_t *)(x->data + (token + j) * x->row_bytes) + 256 * b + 16 * q;
                    for (int k = 0; k < 4; k++) {
                        __m256i xk = _mm256_load_si256((const __m256i *)(xj + 64 * k));
                        acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(codes[k], xk));
                    }
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

BL_AVX2_ROWS_OR_TOKENS_KERNELS(tile_i8, bl_gemv_bt2_i8_mad__avx2, bl_gemm_bt2_i8_mad__avx2)
BL_AVX2_ROWS_OR_TOKENS_KERNELS(tile_i16, bl_gemv_bt2_i16_mad__avx2,
                               bl_gemm_bt2_i16_mad__avx2)
