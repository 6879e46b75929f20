/* AVX2 lookup-table GEMV (and batches under 12 tokens, in passes of 4: lut.c)
 * for bs1 against int8 activations, sixteen weight rows at a time (lut16.h):
 * one vpshufb looks up four sign weights of sixteen rows.
 *
 * Why: multiply-add (bs1.c) takes four operations per 32 weights (shift and
 * mask a bit plane, vpmaddubsw, add) and reaches 40-47% of the read bandwidth
 * with two threads. Here sixteen rows by sixteen columns (one transposed
 * vector y) take 3 index operations, 4 vpshufb and 4 byte adds, 5 more for
 * their share of the transpose and under 2 for joining and widening: about
 * 18 operations per 256 weights instead of 32.
 *
 * A set bit is -1 (types/bs1.c), so the tables hold q1_0's entries with the
 * sign turned, sum_b (bit b of e ? -1 : +1) x[4g + b], and their sums are the
 * dots themselves. Integer throughout: four joins of a lane's 8 groups (at
 * most 8 x 1020 each) fit int16 (32640), so a block's sums widen to int32
 * once; the bias of 512 per group comes off at the end of a chunk, modulo
 * 2^32 like the scalar kernel's wrap-around. Rows past the last whole tile of
 * sixteen look their entries up one at a time. */
#include <immintrin.h>
#include <stdlib.h>

#include "../kernels.h"
#include "../x86_prefetch.h"
#include "lut16.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

#define BLOCK_COLS 256
#define BLOCK_BYTES 32
#define QUAD_COLS 16 /* four groups of four columns */
#define QUADS_PER_BLOCK (BLOCK_COLS / QUAD_COLS)

/* Tables of one token's columns [first, first + cols). */
static void build_tables(const int8_t *x, size_t first, size_t cols, lut16_quad *quad) {
    for (size_t q = 0; q < cols / QUAD_COLS; q++) {
        const int8_t *xq = x + first + QUAD_COLS * q;
        lut16_store_quad(lut16_sign_entries(xq, -1), lut16_sign_entries(xq + 4, -1),
                         lut16_sign_entries(xq + 8, -1), lut16_sign_entries(xq + 12, -1),
                         quad[q]);
    }
}

/* rows 0..7 (int32) of a join sum whose lanes hold different groups */
ALWAYS_INLINE __m256i widen_lanes(__m256i v) {
    return _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(v)),
                            _mm256_cvtepi16_epi32(_mm256_extracti128_si256(v, 1)));
}

/* out[row .. row + 15] of `tokens` tokens (a constant at each call) over the
 * chunk's blocks, against the tables of tokens tab_token onwards. */
ALWAYS_INLINE void tile(const bl_gemm_task *t, size_t row, size_t token, const int tokens,
                        size_t first_col, size_t cols, const lut16_tables *tab, int tab_token) {
    const size_t stride = t->w_row_bytes;
    const uint8_t *w = t->w + row * stride;
    const size_t ahead = bl_prefetch_ahead(LUT16_ROWS * stride);
    __m256i acc[LUT16_PASS_TOKENS][2];
    for (int tt = 0; tt < tokens; tt++) acc[tt][0] = acc[tt][1] = _mm256_setzero_si256();
    for (size_t bb = 0; bb < cols / BLOCK_COLS; bb++) {
        size_t b = first_col / BLOCK_COLS + bb;
        /* the next tiles' rows (contiguous), a block's share of them at a
         * time (x86_prefetch.h) */
        const uint8_t *next = w + ahead + b * LUT16_ROWS * BLOCK_BYTES;
        for (size_t k = 0; k < LUT16_ROWS * BLOCK_BYTES; k += 64) bl_prefetch(next + k);
        __m256i y[QUADS_PER_BLOCK];
        lut16_transpose(w + b * BLOCK_BYTES, stride, y);
        lut16_transpose(w + b * BLOCK_BYTES + LUT16_UNIT_BYTES, stride, y + 8);
        for (int tt = 0; tt < tokens; tt++) {
            const lut16_quad *quad =
                lut16_token_quads(tab, tab_token + tt) + bb * QUADS_PER_BLOCK;
            __m256i sum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
#pragma GCC unroll 4
            for (int s = 0; s < QUADS_PER_BLOCK; s += 4) {
                __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
#pragma GCC unroll 4
                for (int j = s; j < s + 4; j++) lut16_lookup(y[j], quad[j], &lo, &hi);
                __m256i rows[2];
                lut16_join(lo, hi, rows);
                sum[0] = _mm256_add_epi16(sum[0], rows[0]);
                sum[1] = _mm256_add_epi16(sum[1], rows[1]);
            }
            acc[tt][0] = _mm256_add_epi32(acc[tt][0], widen_lanes(sum[0]));
            acc[tt][1] = _mm256_add_epi32(acc[tt][1], widen_lanes(sum[1]));
        }
    }
    const __m256i bias = _mm256_set1_epi32((int32_t)(uint32_t)(cols / 4 * LUT16_ENTRY_BIAS));
    for (int tt = 0; tt < tokens; tt++) {
        int32_t *out = (int32_t *)t->out + (token + tt) * t->out_stride + row;
        for (int h = 0; h < 2; h++) {
            __m256i before = first_col ? _mm256_loadu_si256((const __m256i *)(out + 8 * h))
                                       : _mm256_setzero_si256();
            __m256i dots = _mm256_sub_epi32(acc[tt][h], bias);
            _mm256_storeu_si256((__m256i *)(out + 8 * h), _mm256_add_epi32(before, dots));
        }
    }
}

/* One row the same way, an entry at a time. */
static void one_row(const bl_gemm_task *t, size_t row, size_t token, int tokens,
                    size_t first_col, size_t cols, const lut16_tables *tab) {
    const uint8_t *codes = t->w + row * t->w_row_bytes + first_col / 8;
    for (int tt = 0; tt < tokens; tt++) {
        const lut16_quad *quads = lut16_token_quads(tab, tt);
        uint32_t dot = 0;
        for (size_t k = 0; k < cols / 8; k++) {
            dot += (uint32_t)lut16_entry(quads, 2 * k, codes[k] & 15u);
            dot += (uint32_t)lut16_entry(quads, 2 * k + 1, codes[k] >> 4);
        }
        int32_t *out = (int32_t *)t->out + (token + tt) * t->out_stride + row;
        *out = (int32_t)((first_col ? (uint32_t)*out : 0u) + dot);
    }
}

/* Passes of up to LUT16_PASS_TOKENS tokens, each over the columns in one
 * chunk (or, with stack tables, several), each chunk over every row. */
static void bs1_lut16(const bl_gemm_task *t) {
    _Alignas(32) lut16_quad stack_quads[LUT16_STACK_QUADS];
    const size_t n = t->x->n, whole = t->rows / LUT16_ROWS * LUT16_ROWS;
    const lut16_tables tab = lut16_tables_for(n, t->cols, QUAD_COLS, BLOCK_COLS, stack_quads);
    for (size_t token = 0; token < n; token += LUT16_PASS_TOKENS) {
        int tokens = n - token < LUT16_PASS_TOKENS ? (int)(n - token) : LUT16_PASS_TOKENS;
        for (size_t first = 0; first < t->cols; first += tab.chunk) {
            size_t cols = t->cols - first < tab.chunk ? t->cols - first : tab.chunk;
            for (int tt = 0; tt < tokens; tt++)
                build_tables((const int8_t *)(t->x->data + (token + tt) * t->x->row_bytes),
                             first, cols, lut16_token_quads(&tab, tt));
            for (size_t r = 0; r < whole; r += LUT16_ROWS) {
                if (tokens == LUT16_PASS_TOKENS) {
                    tile(t, r, token, LUT16_PASS_TOKENS, first, cols, &tab, 0);
                } else {
                    for (int tt = 0; tt < tokens; tt++)
                        tile(t, r, token + tt, 1, first, cols, &tab, tt);
                }
            }
            for (size_t r = whole; r < t->rows; r++)
                one_row(t, r, token, tokens, first, cols, &tab);
        }
    }
    free(tab.heap);
}

void bl_gemv_bs1_i8_lut__avx2(const bl_gemm_task *t) { bs1_lut16(t); }
