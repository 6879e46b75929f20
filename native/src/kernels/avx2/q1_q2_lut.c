/* AVX2 lookup-table kernels for q1_0 and q2_0 (both packings; types/q1_0.c,
 * q2_0.c) against 32-blocks of int8 activations, with sixteen weight rows in
 * the lanes of a vector: one vpshufb looks up one nibble (four q1_0 weights,
 * two q2_0 weights) of sixteen rows.
 *
 * Why: multiply-add (q1_q2.c) spends about 0.34 vector instructions per
 * weight (bits or codes to bytes, vpmaddubsw, widening, and the float work of
 * every 32-block) and streams these types' 0.14 / 0.28 bytes per weight at a
 * fifth / a third of the read bandwidth. Here two bytes of sixteen rows take
 * 3 index operations, 4 vpshufb and 4 byte adds; each 32-column slice 17
 * operations to turn its sums into floats; each 16 code bytes of sixteen rows
 * a 16 x 16 byte transpose (40), and each block its rows' scales
 * (BENCHMARKS.md counts and measures them).
 *
 * Tables and transpose: lut16.h (q1_0: sum_b (bit b of e ? +1 : -1) x[4g + b];
 * q2_0: ((e & 3) - 1) x[2g] + ((e >> 2) - 1) x[2g + 1]).
 *
 * Float order, the same for every (row, token) whatever its tile, batch or
 * thread: each 32-column slice gives its exact int32 dot D; a block's
 * blk = fma(D_s, d_x(s), blk) over its slices from 0, and the result =
 * fma(blk, d_w, result) over the blocks from 0. Rows past the last whole tile
 * of sixteen take the same steps one at a time, from the tables. */
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../types/fp16.h"
#include "../../types/quant_blocks.h"
#include "../kernels.h"
#include "../x86_prefetch.h"
#include "lut16.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Columns of one nibble group. */
ALWAYS_INLINE int group_cols_of(bl_lowbit f) { return 4 / bl_lowbit_shapes[f].bits; }
ALWAYS_INLINE int quad_cols_of(bl_lowbit f) { return 4 * group_cols_of(f); }
ALWAYS_INLINE int slices_per_block(bl_lowbit f) { return bl_lowbit_shapes[f].block / 32; }
ALWAYS_INLINE int units_per_block(bl_lowbit f) {
    return (bl_lowbit_shapes[f].bytes - 2) / LUT16_UNIT_BYTES;
}
/* y vectors (two bytes of sixteen rows) per 32-column slice. */
ALWAYS_INLINE int ys_per_slice(bl_lowbit f) { return 32 / (2 * 2 * group_cols_of(f)); }

/* ---- tables ----------------------------------------------------------- */

/* The 16 entries of one group from its activations x, as lut16.h stores them. */
ALWAYS_INLINE __m256i group_entries(bl_lowbit f, const int8_t *x) {
    if (f == BL_LOWBIT_Q1_0) return lut16_sign_entries(x, 1);
    /* lane e: codes e & 3 and e >> 2, weights one less */
    const __m256i first = _mm256_setr_epi16(-1, 0, 1, 2, -1, 0, 1, 2, -1, 0, 1, 2, -1, 0, 1, 2);
    const __m256i second = _mm256_setr_epi16(-1, -1, -1, -1, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2);
    __m256i e = _mm256_mullo_epi16(_mm256_set1_epi16(x[0]), first);
    e = _mm256_add_epi16(e, _mm256_mullo_epi16(_mm256_set1_epi16(x[1]), second));
    return lut16_halves(e);
}

/* Tables of one token's columns [first, first + cols). */
ALWAYS_INLINE void build_tables(bl_lowbit f, const bl_q8_block *x, size_t first, size_t cols,
                                lut16_quad *quad) {
    const int g = group_cols_of(f);
    for (size_t q = 0; q < cols / (size_t)quad_cols_of(f); q++) {
        size_t c = first + q * (size_t)quad_cols_of(f);
        const int8_t *xq = x[c / 32].q + c % 32;
        lut16_store_quad(group_entries(f, xq), group_entries(f, xq + g),
                         group_entries(f, xq + 2 * g), group_entries(f, xq + 3 * g), quad[q]);
    }
}

/* ---- sixteen rows ----------------------------------------------------- */

/* The f16 scales at `block` of sixteen rows, rows 0..7 and 8..15. */
ALWAYS_INLINE void block_scales(const uint8_t *block, size_t stride, __m256 dw[2]) {
    uint16_t h[LUT16_ROWS];
    for (int i = 0; i < LUT16_ROWS; i++) memcpy(&h[i], block + i * stride, 2);
    dw[0] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
    dw[1] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + 8)));
}

/* One slice's exact dots of sixteen rows from its 5-bit sums (lanes: the two
 * halves of its groups; at most 8 groups each), rows 0..7 and 8..15. */
ALWAYS_INLINE void slice_dots(bl_lowbit f, __m256i lo, __m256i hi, __m256 d[2]) {
    const __m128i bias = _mm_set1_epi16((short)(32 / group_cols_of(f) * LUT16_ENTRY_BIAS));
    __m256i rows[2];
    lut16_join(lo, hi, rows);
    for (int h = 0; h < 2; h++) {
        __m128i sum = _mm_add_epi16(_mm256_castsi256_si128(rows[h]),
                                    _mm256_extracti128_si256(rows[h], 1));
        d[h] = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm_sub_epi16(sum, bias)));
    }
}

/* Sixteen rows from `row` times `tokens` tokens (a constant at each call)
 * over the chunk's blocks; out (already holding the earlier chunks' results)
 * gets the chain's next steps. */
ALWAYS_INLINE void tile(bl_lowbit f, const bl_gemm_task *t, size_t row, size_t token,
                        const int tokens, size_t first_col, size_t cols, const lut16_tables *tab,
                        int tab_token) {
    const int units = units_per_block(f), slices = slices_per_block(f), ys = ys_per_slice(f);
    const size_t block_bytes = (size_t)bl_lowbit_shapes[f].bytes, stride = t->w_row_bytes;
    const uint8_t *w = t->w + row * stride;
    const size_t ahead = bl_prefetch_ahead(LUT16_ROWS * stride);
    const bl_q8_block *x[LUT16_PASS_TOKENS];
    float *out[LUT16_PASS_TOKENS];
    for (int tt = 0; tt < tokens; tt++) {
        x[tt] = (const bl_q8_block *)(t->x->data + (token + tt) * t->x->row_bytes);
        out[tt] = (float *)t->out + (token + tt) * t->out_stride + row;
    }
    for (size_t bb = 0; bb < cols / (size_t)bl_lowbit_shapes[f].block; bb++) {
        size_t b = first_col / (size_t)bl_lowbit_shapes[f].block + bb;
        const uint8_t *block = w + b * block_bytes;
        /* the tiles' bytes (contiguous) ahead, a block's share of them at a
         * time (x86_prefetch.h) */
        const uint8_t *next = w + ahead + b * LUT16_ROWS * block_bytes;
        for (size_t k = 0; k < LUT16_ROWS * block_bytes; k += 64) bl_prefetch(next + k);
        __m256i y[2][8];
        for (int u = 0; u < units; u++)
            lut16_transpose(block + 2 + u * LUT16_UNIT_BYTES, stride, y[u]);
        __m256 dw[2];
        block_scales(block, stride, dw);
        for (int tt = 0; tt < tokens; tt++) {
            const lut16_quad *quad =
                lut16_token_quads(tab, tab_token + tt) + bb * (size_t)(8 * units);
            __m256 blk0 = _mm256_setzero_ps(), blk1 = _mm256_setzero_ps();
#pragma GCC unroll 4
            for (int s = 0; s < slices; s++) {
                __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
#pragma GCC unroll 4
                for (int j = s * ys; j < (s + 1) * ys; j++)
                    lut16_lookup(y[j / 8][j % 8], quad[j], &lo, &hi);
                __m256 d[2];
                slice_dots(f, lo, hi, d);
                __m256 dx = _mm256_set1_ps(x[tt][b * (size_t)slices + s].d);
                blk0 = _mm256_fmadd_ps(d[0], dx, blk0);
                blk1 = _mm256_fmadd_ps(d[1], dx, blk1);
            }
            float *o = out[tt];
            _mm256_storeu_ps(o, _mm256_fmadd_ps(blk0, dw[0], _mm256_loadu_ps(o)));
            _mm256_storeu_ps(o + 8, _mm256_fmadd_ps(blk1, dw[1], _mm256_loadu_ps(o + 8)));
        }
    }
}

/* One row the same way, a lookup at a time. */
ALWAYS_INLINE void one_row(bl_lowbit f, const bl_gemm_task *t, size_t row, size_t token,
                           int tokens, size_t first_col, size_t cols, const lut16_tables *tab) {
    const int slices = slices_per_block(f), bytes_per_slice = 32 / (2 * group_cols_of(f));
    const size_t block_bytes = (size_t)bl_lowbit_shapes[f].bytes, groups = 2 * (block_bytes - 2);
    const uint8_t *w = t->w + row * t->w_row_bytes;
    for (int tt = 0; tt < tokens; tt++) {
        const bl_q8_block *x = (const bl_q8_block *)(t->x->data + (token + tt) * t->x->row_bytes);
        float *out = (float *)t->out + (token + tt) * t->out_stride + row;
        for (size_t bb = 0; bb < cols / (size_t)bl_lowbit_shapes[f].block; bb++) {
            size_t b = first_col / (size_t)bl_lowbit_shapes[f].block + bb;
            const uint8_t *codes = w + b * block_bytes + 2;
            float blk = 0.0f;
            for (int s = 0; s < slices; s++) {
                int32_t dot = 0;
                for (int k = s * bytes_per_slice; k < (s + 1) * bytes_per_slice; k++) {
                    size_t g = bb * groups + 2 * (size_t)k;
                    dot += lut16_entry(lut16_token_quads(tab, tt), g, codes[k] & 15u);
                    dot += lut16_entry(lut16_token_quads(tab, tt), g + 1, codes[k] >> 4);
                }
                blk = fmaf((float)dot, x[b * (size_t)slices + s].d, blk);
            }
            *out = fmaf(blk, bl_f16_load(w + b * block_bytes), *out);
        }
    }
}

/* GEMV and GEMM alike: passes of up to LUT16_PASS_TOKENS tokens, each over the
 * columns in one chunk (or, with stack tables, several), each chunk over
 * every row. */
ALWAYS_INLINE void lowbit_lut(bl_lowbit f, const bl_gemm_task *t) {
    _Alignas(32) lut16_quad stack_quads[LUT16_STACK_QUADS];
    const size_t n = t->x->n, whole = t->rows / LUT16_ROWS * LUT16_ROWS;
    const lut16_tables tab = lut16_tables_for(n, t->cols, (size_t)quad_cols_of(f),
                                              (size_t)bl_lowbit_shapes[f].block, stack_quads);
    for (size_t token = 0; token < n; token++)
        memset((float *)t->out + token * t->out_stride, 0, t->rows * sizeof(float));
    for (size_t token = 0; token < n; token += LUT16_PASS_TOKENS) {
        int tokens = n - token < LUT16_PASS_TOKENS ? (int)(n - token) : LUT16_PASS_TOKENS;
        for (size_t first = 0; first < t->cols; first += tab.chunk) {
            size_t cols = t->cols - first < tab.chunk ? t->cols - first : tab.chunk;
            for (int tt = 0; tt < tokens; tt++) {
                const bl_q8_block *x =
                    (const bl_q8_block *)(t->x->data + (token + tt) * t->x->row_bytes);
                build_tables(f, x, first, cols, lut16_token_quads(&tab, tt));
            }
            for (size_t r = 0; r < whole; r += LUT16_ROWS) {
                if (tokens == LUT16_PASS_TOKENS) {
                    tile(f, t, r, token, LUT16_PASS_TOKENS, first, cols, &tab, 0);
                } else {
                    for (int tt = 0; tt < tokens; tt++)
                        tile(f, t, r, token + tt, 1, first, cols, &tab, tt);
                }
            }
            for (size_t r = whole; r < t->rows; r++)
                one_row(f, t, r, token, tokens, first, cols, &tab);
        }
    }
    free(tab.heap);
}

static void q1_0_lut(const bl_gemm_task *t) { lowbit_lut(BL_LOWBIT_Q1_0, t); }
static void q2_0_lut(const bl_gemm_task *t) { lowbit_lut(BL_LOWBIT_Q2_0, t); }
static void q2_0_g128_lut(const bl_gemm_task *t) { lowbit_lut(BL_LOWBIT_Q2_0_G128, t); }

void bl_gemv_q1_0_q8_lut__avx2(const bl_gemm_task *t) { q1_0_lut(t); }
void bl_gemm_q1_0_q8_lut__avx2(const bl_gemm_task *t) { q1_0_lut(t); }
void bl_gemv_q2_0_q8_lut__avx2(const bl_gemm_task *t) { q2_0_lut(t); }
void bl_gemm_q2_0_q8_lut__avx2(const bl_gemm_task *t) { q2_0_lut(t); }
void bl_gemv_q2_0_g128_q8_lut__avx2(const bl_gemm_task *t) { q2_0_g128_lut(t); }
void bl_gemm_q2_0_g128_q8_lut__avx2(const bl_gemm_task *t) { q2_0_g128_lut(t); }
