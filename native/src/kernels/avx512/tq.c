/* AVX-512 kernels for llama.cpp's ternary block types tq1_0 and tq2_0
 * (types/tq*.c) against 32-blocks of int8 activations.
 *
 * Two sub-blocks (64 weights) per vector: a row's 256-block becomes four
 * vectors of unsigned codes, pair p holding sub-blocks 2p (low 32 bytes) and
 * 2p + 1 (high 32 bytes), and one vpdpbusd against the two activation blocks
 * gives 8 partial dots of each. tq2_0: a 32-byte half, broadcast to both
 * halves of a vector, is masked with 3 | 12 (sub-blocks 4h, 4h + 1) and
 * 48 | 192 (4h + 2, 4h + 3): codes at 1x, 4x, 16x, 64x, the factor folded into
 * the activation scale (exact: powers of two), so a block costs 2 loads + 4
 * ands. tq1_0: the digits of the base-3 fraction bytes in signed form
 * (avx2/tq.c), the next digit being p * 3 in byte lanes, the code
 * [p > -43] + [p > 42] from two mask compares.
 * A task first lays each token's activations out as the tile reads them
 * (tq_acts: pairs of q blocks side by side, their scales, the offset), so
 * per pair, row and token the tile runs vpdpbusd, int -> float and one FMA,
 * with both activation operands straight from memory; per block the codes'
 * offset -sum_g d_x * sum(x) starts the block sum in lane 0, which goes into
 * the row's accumulator with one FMA by d_w. Every (row, token) takes the same
 * steps in a GEMV (8 rows x 1 token) and a GEMM tile (4 rows x 4 tokens), so
 * batching never changes a result. */
#include <stdlib.h>

#include "../../types/tq_common.h"
#include "../kernels.h"
#include "float_tiling.h"
#include "simd.h"

typedef enum tq_format { TQ1_0, TQ2_0 } tq_format;

BL_INLINE size_t block_bytes(tq_format f) { return f == TQ1_0 ? BL_TQ1_0_BYTES : BL_TQ2_0_BYTES; }

/* 1 / the factor of the codes of pair p's low and high sub-blocks. */
BL_INLINE __m512 inverse_code_scales(tq_format f, int p) {
    if (f == TQ1_0) return _mm512_set1_ps(1.0f);
    const __m256 lo = _mm256_set1_ps(p % 2 ? 1.0f / 16 : 1.0f);
    const __m256 hi = _mm256_set1_ps(p % 2 ? 1.0f / 64 : 1.0f / 4);
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
}

BL_INLINE void tq2_0_codes(const uint8_t *w, __m512i codes[4]) {
    const __m512i low_pair = _mm512_inserti64x4(_mm512_set1_epi8(3), _mm256_set1_epi8(12), 1);
    const __m512i high_pair =
        _mm512_inserti64x4(_mm512_set1_epi8(48), _mm256_set1_epi8((char)192), 1);
    for (int h = 0; h < 2; h++) {
        __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(w + 32 * h)));
        codes[2 * h] = _mm512_and_si512(v, low_pair);
        codes[2 * h + 1] = _mm512_and_si512(v, high_pair);
    }
}

BL_INLINE __m512i next_digit(__m512i p) { return _mm512_add_epi8(_mm512_add_epi8(p, p), p); }
BL_INLINE __m128i next_digit128(__m128i p) { return _mm_add_epi8(_mm_add_epi8(p, p), p); }

/* p with the bytes of mask one digit further. */
BL_INLINE __m512i next_digit_where(__m512i p, __mmask64 mask) {
    return _mm512_mask_add_epi8(p, mask, p, _mm512_add_epi8(p, p));
}

BL_INLINE __m512i digit_codes(__m512i p) {
    const __m512i one = _mm512_set1_epi8(1);
    __mmask64 at_least_one = _mm512_cmpgt_epi8_mask(p, _mm512_set1_epi8(-43));
    __mmask64 two = _mm512_cmpgt_epi8_mask(p, _mm512_set1_epi8(42));
    __m512i c = _mm512_maskz_mov_epi8(at_least_one, one);
    return _mm512_mask_add_epi8(c, two, c, one);
}

BL_INLINE void tq1_0_codes(const uint8_t *w, __m512i codes[4]) {
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    const __mmask64 high_half = 0xFFFFFFFF00000000ull;
    /* bytes 0-31 in both halves, the high half one digit ahead: digits 0 | 1 */
    __m512i a = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)w));
    a = next_digit_where(_mm512_xor_si512(a, bias), high_half);
    codes[0] = digit_codes(a);
    a = next_digit(next_digit(a)); /* digits 2 | 3 */
    codes[1] = digit_codes(a);
    a = next_digit(next_digit(a)); /* digit 4 in the low half */
    /* bytes 32-47 in the four 128-bit lanes, lanes 1 and 3 one digit ahead */
    __m512i b = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(w + 32)));
    b = next_digit_where(_mm512_xor_si512(b, bias), 0xFFFF0000FFFF0000ull); /* 0 1 0 1 */
    codes[2] = digit_codes(_mm512_mask_blend_epi64(0xF0, a, b));          /* 4 of a | 0 1 */
    b = next_digit(next_digit(b));                                          /* 2 3 2 3 */
    __m512i b4 = next_digit(next_digit(b));                                 /* 4 5 4 5 */
    __m512i last = _mm512_mask_blend_epi64(0x30, b, b4);                    /* 2 3 4 . */
    /* bytes 48-51: weight 240 + 4k + j is digit k of byte j, dword k of the lane */
    uint32_t qh;
    memcpy(&qh, w + 48, 4);
    __m128i t = _mm_xor_si128(_mm_set1_epi32((int)qh), _mm512_castsi512_si128(bias));
    t = _mm_blend_epi32(t, next_digit128(t), 0xE);
    t = _mm_blend_epi32(t, next_digit128(t), 0xC);
    t = _mm_blend_epi32(t, next_digit128(t), 0x8);
    codes[3] = digit_codes(_mm512_inserti32x4(last, t, 3));
}

/* One token's activations for one 256-block, laid out for the tile: pair p's
 * 64 int8 (blocks 2p and 2p + 1), its scales (lanes 0-7: block 2p's d, 8-15:
 * block 2p + 1's, over the code factors), and the codes' offset in lane 0. A
 * task prepares each token once (not once per row tile), so the tile's
 * activation operands are plain loads. */
typedef struct tq_acts {
    int8_t q[4][64];
    float scale[4][16];
    float offset[16]; /* lane 0: -sum_g d_x[g] * sum(x[g]) */
} tq_acts;

/* One token's 256-block b (its eight activation blocks xb) as the tile reads it. */
static void prepare_block(const bl_q8_block *xb, tq_format f, tq_acts *a) {
    float sum = 0.0f;
    for (int g = 0; g < 8; g++) sum += xb[g].d * (float)xb[g].sum;
    memset(a->offset, 0, sizeof a->offset);
    a->offset[0] = -sum;
    for (int p = 0; p < 4; p++) {
        memcpy(a->q[p], xb[2 * p].q, 32);
        memcpy(a->q[p] + 32, xb[2 * p + 1].q, 32);
        __m512 d = _mm512_insertf32x8(_mm512_set1_ps(xb[2 * p].d),
                                      _mm256_set1_ps(xb[2 * p + 1].d), 1);
        _mm512_store_ps(a->scale[p], _mm512_mul_ps(d, inverse_code_scales(f, p)));
    }
}

static const bl_q8_block *token_blocks(const bl_activations *x, size_t token) {
    return (const bl_q8_block *)(x->data + token * x->row_bytes);
}

/* rows x tokens results (rows a multiple of 4; rows past the end repeat the
 * last row and are not stored) from prepared activations acts[token][block]
 * (tokens tok ..); ahead > 0 prefetches the weights. */
BL_INLINE void tq_tile(const bl_gemm_task *t, const tq_acts *acts, size_t r, size_t tok,
                       const int rows, const int tokens, const tq_format f, size_t ahead) {
    const size_t d_at = f == TQ1_0 ? BL_TQ1_0_D : BL_TQ2_0_D, blocks = t->cols / BL_TQ_BLOCK;
    const uint8_t *w[8];
    __m512 acc[8][4];
    for (int i = 0; i < rows; i++) {
        w[i] = bl_group_row(t->w, t->w_row_bytes, r, (size_t)i, t->rows);
        for (int j = 0; j < tokens; j++) acc[i][j] = _mm512_setzero_ps();
    }
    for (size_t b = 0; b < blocks; b++) {
        /* without a prepared buffer (no memory for one), this block's here */
        _Alignas(64) tq_acts local[4];
        if (!acts)
            for (int j = 0; j < tokens; j++)
                prepare_block(token_blocks(t->x, tok + (size_t)j) + 8 * b, f, &local[j]);
        for (int i = 0; i < rows; i++) {
            const uint8_t *block = w[i] + b * block_bytes(f);
            if (ahead) bl_prefetch_block(block + ahead, block_bytes(f));
            __m512i codes[4];
            if (f == TQ2_0)
                tq2_0_codes(block, codes);
            else
                tq1_0_codes(block, codes);
            __m512 d = _mm512_set1_ps(bl_f16_load(block + d_at));
            for (int j = 0; j < tokens; j++) {
                const tq_acts *a = acts ? &acts[(size_t)j * blocks + b] : &local[j];
                __m512 block_acc = _mm512_load_ps(a->offset);
                for (int p = 0; p < 4; p++) {
                    __m512i dot =
                        bl_dpbusd(_mm512_setzero_si512(), codes[p], _mm512_load_si512(a->q[p]));
                    block_acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                                                _mm512_load_ps(a->scale[p]), block_acc);
                }
                acc[i][j] = _mm512_fmadd_ps(block_acc, d, acc[i][j]);
            }
        }
    }
    bl_store_float_tile(t, acc, r, tok, rows, tokens);
}

/* The prepared activations of `tokens` tokens from tok on; NULL when there is
 * no memory for them (the tile then prepares each block as it goes: slower,
 * the same results). */
static tq_acts *acts_for(const bl_gemm_task *t, size_t tok, size_t tokens, tq_format f) {
    size_t blocks = t->cols / BL_TQ_BLOCK;
    tq_acts *acts = aligned_alloc(64, tokens * blocks * sizeof(tq_acts) + 64);
    for (size_t j = 0; acts && j < tokens; j++)
        for (size_t b = 0; b < blocks; b++)
            prepare_block(token_blocks(t->x, tok + j) + 8 * b, f, &acts[j * blocks + b]);
    return acts;
}

/* GEMV: 8 rows per tile. */
BL_INLINE void tq_gemv(const bl_gemm_task *t, tq_format f) {
    tq_acts *acts = acts_for(t, 0, 1, f);
    size_t ahead = bl_prefetch_ahead(8 * t->w_row_bytes);
    for (size_t r = 0; r < t->rows; r += 8) tq_tile(t, acts, r, 0, 8, 1, f, ahead);
    free(acts);
}

/* GEMM: tiles of 4 rows x 4 tokens over groups of tokens prepared at once. */
#define GEMM_TOKENS 64

BL_INLINE void tq_gemm(const bl_gemm_task *t, tq_format f) {
    size_t blocks = t->cols / BL_TQ_BLOCK;
    for (size_t first = 0; first < t->x->n; first += GEMM_TOKENS) {
        size_t count = t->x->n - first < GEMM_TOKENS ? t->x->n - first : GEMM_TOKENS;
        tq_acts *acts = acts_for(t, first, count, f);
        for (size_t r = 0; r < t->rows; r += 4) {
            size_t j = 0;
#define TQ_GEMM_TILE(n) tq_tile(t, acts ? acts + j * blocks : NULL, r, first + j, 4, n, f, 0)
            for (; j + 4 <= count; j += 4) TQ_GEMM_TILE(4);
            switch (count - j) {
            case 3: TQ_GEMM_TILE(3); break;
            case 2: TQ_GEMM_TILE(2); break;
            case 1: TQ_GEMM_TILE(1); break;
            default: break;
            }
#undef TQ_GEMM_TILE
        }
        free(acts);
    }
}

void bl_gemv_tq1_0_q8_mad__avx512(const bl_gemm_task *t) { tq_gemv(t, TQ1_0); }
void bl_gemm_tq1_0_q8_mad__avx512(const bl_gemm_task *t) { tq_gemm(t, TQ1_0); }
void bl_gemv_tq2_0_q8_mad__avx512(const bl_gemm_task *t) { tq_gemv(t, TQ2_0); }
void bl_gemm_tq2_0_q8_mad__avx512(const bl_gemm_task *t) { tq_gemm(t, TQ2_0); }
