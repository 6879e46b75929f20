/* AVX2 kernels for llama.cpp's ternary block types tq1_0 and tq2_0
 * (types/tq*.c) against 32-blocks of int8 activations.
 *
 * A row's 256-block becomes eight 32-byte vectors of unsigned codes, one per
 * activation block. tq2_0: each 32-byte half holds four sub-blocks in its bit
 * pairs; v & 3 and v & 12 give sub-blocks 0 and 1 (the second at 4x its
 * codes), the same on v >> 4 sub-blocks 2 and 3, so a half costs one shift and
 * four ands; the 4x is folded into that sub-block's activation scale (exact:
 * a power of two). tq1_0: digits of base-3 fraction bytes, with bt1's trick
 * (avx2/bt1.c): in the signed form p = m - 128 of m = q * 3^k mod 256 the next
 * digit is p * 3 (two byte adds) and the code is [p > -43] + [p > 42].
 * Sub-blocks 0-4 are the digits of bytes 0-31; 5 and 6 take two digits of
 * bytes 32-47 each (one per 128-bit lane); 7 takes the last digit of bytes
 * 32-47 and the four digits of bytes 48-51.
 * Per sub-block and token: vpmaddubsw (codes <= 12, no saturation), vpmaddwd
 * by ones, int -> float and one FMA by the activation scale; the offset of the
 * codes (c - 1) is sum_g d_x * sum(x) per block, taken off lane 0 before the
 * block's FMA by d_w. Each (row, token) result takes the same steps whatever
 * tile computes it. */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "../../types/tq_common.h"
#include "../kernels.h"
#include "simd.h"
#include "tiling.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

typedef enum tq_format { TQ1_0, TQ2_0 } tq_format;

ALWAYS_INLINE size_t block_bytes(tq_format f) {
    return f == TQ1_0 ? BL_TQ1_0_BYTES : BL_TQ2_0_BYTES;
}

/* What sub-block g's codes are multiplied by in its code vector. */
ALWAYS_INLINE float code_scale(tq_format f, int g) { return f == TQ2_0 && g % 2 ? 4.0f : 1.0f; }

/* Hides a constant from the optimizer (see avx2/bt1.c: it would turn the
 * compare into two instructions). */
ALWAYS_INLINE __m256i opaque(__m256i v) {
    __asm__("" : "+x"(v));
    return v;
}

ALWAYS_INLINE __m256i next_digit(__m256i p) { return _mm256_add_epi8(_mm256_add_epi8(p, p), p); }
ALWAYS_INLINE __m128i next_digit128(__m128i p) { return _mm_add_epi8(_mm_add_epi8(p, p), p); }

/* Codes 0..2 of the digits in signed form p: (p > -43) + (p > 42) as 0 - mask - mask. */
ALWAYS_INLINE __m256i digit_codes(__m256i p) {
    __m256i above_bottom = _mm256_cmpgt_epi8(p, opaque(_mm256_set1_epi8(-43)));
    __m256i above_top = _mm256_cmpgt_epi8(p, opaque(_mm256_set1_epi8(42)));
    return _mm256_sub_epi8(_mm256_sub_epi8(_mm256_setzero_si256(), above_bottom), above_top);
}

ALWAYS_INLINE void tq2_0_codes(const uint8_t *w, __m256i codes[8]) {
    const __m256i three = _mm256_set1_epi8(3), twelve = _mm256_set1_epi8(12);
    for (int h = 0; h < 2; h++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(w + 32 * h));
        __m256i v4 = _mm256_srli_epi16(v, 4);
        codes[4 * h + 0] = _mm256_and_si256(v, three);
        codes[4 * h + 1] = _mm256_and_si256(v, twelve);
        codes[4 * h + 2] = _mm256_and_si256(v4, three);
        codes[4 * h + 3] = _mm256_and_si256(v4, twelve);
    }
}

ALWAYS_INLINE void tq1_0_codes(const uint8_t *w, __m256i codes[8]) {
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    __m256i p = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)w), bias);
    for (int k = 0; k < 5; k++) {
        if (k) p = next_digit(p);
        codes[k] = digit_codes(p);
    }
    /* bytes 32-47 in both lanes; the high lane one digit ahead */
    __m256i q = _mm256_xor_si256(
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(w + 32))), bias);
    q = _mm256_blend_epi32(q, next_digit(q), 0xF0);
    codes[5] = digit_codes(q);
    q = next_digit(next_digit(q));
    codes[6] = digit_codes(q);
    q = next_digit(next_digit(q)); /* low lane: digit 4 */
    /* bytes 48-51: weight 240 + 4k + j is digit k of byte j, so dword k of the
     * lane holds the four bytes k digits ahead */
    uint32_t qh;
    memcpy(&qh, w + 48, 4);
    __m128i t = _mm_xor_si128(_mm_set1_epi32((int)qh), _mm256_castsi256_si128(bias));
    t = _mm_blend_epi32(t, next_digit128(t), 0xE);
    t = _mm_blend_epi32(t, next_digit128(t), 0xC);
    t = _mm_blend_epi32(t, next_digit128(t), 0x8);
    codes[7] = digit_codes(_mm256_inserti128_si256(q, t, 1));
}

/* One token's activations for one 256-block as the tile reads them: the
 * eight q blocks, each block's scale over its code factor in all 8 lanes, and
 * the codes' offset in lane 0. A task prepares each token once, so the tile's
 * activation operands are plain loads (and the 16 registers hold codes and
 * accumulators only). */
typedef struct tq_acts {
    int8_t q[8][32];
    float d[8][8];
    float offset[8]; /* lane 0: -sum_g d_x[g] * sum(x[g]) */
} tq_acts;

static void prepare_block(const bl_q8_block *xb, tq_format f, tq_acts *a) {
    float sum = 0.0f;
    for (int g = 0; g < 8; g++) {
        sum += xb[g].d * (float)xb[g].sum;
        memcpy(a->q[g], xb[g].q, 32);
        _mm256_store_ps(a->d[g], _mm256_set1_ps(xb[g].d / code_scale(f, g)));
    }
    _mm256_store_ps(a->offset, _mm256_setr_ps(-sum, 0, 0, 0, 0, 0, 0, 0));
}

/* The prepared activations of `tokens` tokens from tok on, or NULL when there
 * is no memory for them (the tile then prepares each block as it goes). */
static tq_acts *acts_for(const bl_gemm_task *t, size_t tok, size_t tokens, tq_format f) {
    size_t blocks = t->cols / BL_TQ_BLOCK;
    tq_acts *acts = aligned_alloc(32, tokens * blocks * sizeof(tq_acts) + 32);
    for (size_t j = 0; acts && j < tokens; j++) {
        const bl_q8_block *xb = (const bl_q8_block *)(t->x->data + (tok + j) * t->x->row_bytes);
        for (size_t b = 0; b < blocks; b++) prepare_block(xb + 8 * b, f, &acts[j * blocks + b]);
    }
    return acts;
}

/* rows x tokens results from prepared activations acts[token][block] (tokens
 * token ..); the counts are constants at each call. */
ALWAYS_INLINE void tile(const bl_gemm_task *t, const tq_acts *acts, tq_format f, size_t row,
                        int rows, size_t token, int tokens) {
    const __m256i ones = _mm256_set1_epi16(1);
    const size_t d_at = f == TQ1_0 ? BL_TQ1_0_D : BL_TQ2_0_D, blocks = t->cols / BL_TQ_BLOCK;
    __m256 acc[BL_AVX2_TILE_ROWS][BL_AVX2_TILE_TOKENS];
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++) acc[i][j] = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        _Alignas(32) tq_acts local[BL_AVX2_TILE_TOKENS];
        const tq_acts *a[BL_AVX2_TILE_TOKENS];
        for (int j = 0; j < tokens; j++) {
            if (acts) {
                a[j] = &acts[(size_t)j * blocks + b];
            } else {
                const bl_q8_block *xb =
                    (const bl_q8_block *)(t->x->data + (token + j) * t->x->row_bytes);
                prepare_block(xb + 8 * b, f, &local[j]);
                a[j] = &local[j];
            }
        }
        /* Each (row, token) chains eight FMAs over the sub-blocks; with the rows'
         * chains interleaved (sub-block outside, rows inside) their latencies
         * overlap, where one row at a time left the GEMV waiting on them (tq2_0
         * GEMV 1.2x; BENCHMARKS.md, "Sub-block chains of four rows at once"). */
        const uint8_t *w[BL_AVX2_TILE_ROWS];
        __m256i codes[BL_AVX2_TILE_ROWS][8];
        __m256 block_acc[BL_AVX2_TILE_ROWS][BL_AVX2_TILE_TOKENS];
        for (int i = 0; i < rows; i++) {
            w[i] = t->w + (row + i) * t->w_row_bytes + b * block_bytes(f);
            if (tokens == 1) /* GEMV: x86_prefetch.h */
                bl_prefetch_block(w[i] + bl_prefetch_ahead(rows * t->w_row_bytes),
                                  block_bytes(f));
            if (f == TQ2_0)
                tq2_0_codes(w[i], codes[i]);
            else
                tq1_0_codes(w[i], codes[i]);
            for (int j = 0; j < tokens; j++) block_acc[i][j] = _mm256_load_ps(a[j]->offset);
        }
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < tokens; j++) {
                    __m256i xq = _mm256_load_si256((const __m256i *)a[j]->q[g]);
                    __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(codes[i][g], xq), ones);
                    block_acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                                                      _mm256_load_ps(a[j]->d[g]), block_acc[i][j]);
                }
            }
        }
        for (int i = 0; i < rows; i++) {
            __m256 d = _mm256_set1_ps(bl_f16_load(w[i] + d_at));
            for (int j = 0; j < tokens; j++)
                acc[i][j] = _mm256_fmadd_ps(block_acc[i][j], d, acc[i][j]);
        }
    }
    float *out = t->out;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++)
            out[(token + j) * t->out_stride + row + i] = bl_avx2_hsum_ps(acc[i][j]);
}

/* GEMV: tiles of BL_AVX2_TILE_ROWS rows, then single rows. */
ALWAYS_INLINE void tq_gemv(const bl_gemm_task *t, tq_format f) {
    tq_acts *acts = acts_for(t, 0, 1, f);
    size_t r = 0;
    for (; r + BL_AVX2_TILE_ROWS <= t->rows; r += BL_AVX2_TILE_ROWS)
        tile(t, acts, f, r, BL_AVX2_TILE_ROWS, 0, 1);
    for (; r < t->rows; r++) tile(t, acts, f, r, 1, 0, 1);
    free(acts);
}

/* GEMM: tiles of 1 row x BL_AVX2_TILE_TOKENS tokens over groups of tokens
 * prepared at once. */
#define GEMM_TOKENS 64

ALWAYS_INLINE void tq_gemm(const bl_gemm_task *t, tq_format f) {
    size_t blocks = t->cols / BL_TQ_BLOCK;
    for (size_t first = 0; first < t->x->n; first += GEMM_TOKENS) {
        size_t count = t->x->n - first < GEMM_TOKENS ? t->x->n - first : GEMM_TOKENS;
        tq_acts *acts = acts_for(t, first, count, f);
        for (size_t r = 0; r < t->rows; r++) {
            size_t j = 0;
            for (; j + BL_AVX2_TILE_TOKENS <= count; j += BL_AVX2_TILE_TOKENS)
                tile(t, acts ? acts + j * blocks : NULL, f, r, 1, first + j, BL_AVX2_TILE_TOKENS);
            for (; j < count; j++) tile(t, acts ? acts + j * blocks : NULL, f, r, 1, first + j, 1);
        }
        free(acts);
    }
}

void bl_gemv_tq1_0_q8_mad__avx2(const bl_gemm_task *t) { tq_gemv(t, TQ1_0); }
void bl_gemm_tq1_0_q8_mad__avx2(const bl_gemm_task *t) { tq_gemm(t, TQ1_0); }
void bl_gemv_tq2_0_q8_mad__avx2(const bl_gemm_task *t) { tq_gemv(t, TQ2_0); }
void bl_gemm_tq2_0_q8_mad__avx2(const bl_gemm_task *t) { tq_gemm(t, TQ2_0); }
