/* AVX2 lookup-table kernels for q1_0 (llama.cpp's 1-bit layout, types/q1_0.c)
 * against 32-blocks of int8 activations, with sixteen weight rows in the
 * lanes of a vector: one vpshufb looks up four columns of sixteen rows.
 *
 * Why: multiply-add (q1_q2.c) spends about 0.34 vector instructions per
 * weight (sign bits to bytes, vpsignb, vpmaddubsw, widening, and the float
 * work of every 32-block) and streams q1_0's 0.14 bytes per weight at a
 * fifth of the read bandwidth. Here a 256-weight step (two bytes of sixteen
 * rows) takes 3 index operations, 4 vpshufb and 4 byte adds; each 32-column
 * slice 17 operations to turn its sums into floats, and each 128-column block
 * a 16 x 16 byte transpose (40) and its rows' scales: about 0.15 instructions
 * per weight in all, measured 2.5-2.9x multiply-add's speed (BENCHMARKS.md).
 *
 * Tables, per token and group g of four columns: the 16 sums
 * sum_b (bit b of e ? +x : -x)[4g + b] (|sum| <= 508), plus 512 so that they
 * lie in [4, 1020], split into 5-bit halves lo + 32 hi. One vpshufb finds each
 * half; the eight groups of a slice add up in bytes (8 x 31 <= 255), and one
 * vpmaddubsw per eight rows joins lo + 32 hi into int16.
 *
 * Transpose: a row holds 16 bytes of sign bits per block; byte k holds columns
 * 8k .. 8k + 7, its low nibble group 2k and its high nibble group 2k + 1.
 * Rows i and i + 8 share a vector (one per 128-bit lane); three unpack stages
 * and a vpermq turn sixteen rows into y[j] = [byte 2j of rows 0..15 | byte
 * 2j + 1 of rows 0..15], so the low nibbles of y[j] index groups 4j (lane 0)
 * and 4j + 2 (lane 1), its high nibbles groups 4j + 1 and 4j + 3. The tables
 * of a quad of groups (16 columns) are stored in that order, 128 bytes:
 * [lo 4j | lo 4j+2] [hi 4j | hi 4j+2] [lo 4j+1 | lo 4j+3] [hi 4j+1 | hi 4j+3].
 *
 * Float order, the same for every (row, token) whatever its tile, batch or
 * thread: each 32-column slice gives its exact int32 dot D (|D| <= 4064);
 * a block's blk = fma(D_s, d_x(s), blk) over its four slices from 0, and the
 * result = fma(blk, d_w, result) over the blocks from 0. Rows past the last
 * whole tile of sixteen take the same steps one at a time, from the tables. */
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

#define BLOCK_COLS 128
#define BLOCK_BYTES 18
#define TILE_ROWS 16
/* Tokens whose tables one pass over the rows uses (8 bytes of tables per
 * column and token). The tables of whole rows come from the heap, so that a
 * pass reads each weight row once, front to back; if that allocation fails,
 * passes over chunks of CHUNK_COLS columns with tables on the stack (32 KiB)
 * give the same results. */
#define PASS_TOKENS 4
#define CHUNK_COLS 1024
#define QUAD_COLS 16
#define QUAD_BYTES 128
/* Added to every entry so that both 5-bit halves are unsigned. */
#define ENTRY_BIAS 512

/* The tables of PASS_TOKENS tokens over a chunk of columns. */
typedef struct tables {
    uint8_t (*quad)[QUAD_BYTES];
    size_t quads_per_token;
} tables;

static uint8_t (*token_quads(const tables *tab, int token))[QUAD_BYTES] {
    return tab->quad + (size_t)token * tab->quads_per_token;
}

/* ---- tables ----------------------------------------------------------- */

/* The 16 entries of one group, biased by +512 into [4, 1020] and split into
 * 5-bit halves as [lo 0..15 | hi 0..15]: e + 512 = 32 hi + lo. */
ALWAYS_INLINE __m256i group_entries(const int8_t *x) {
    /* lane e of sign_b: +1 where bit b of e is set, -1 where it is clear */
    const __m256i sign0 = _mm256_setr_epi16(-1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1);
    const __m256i sign1 = _mm256_setr_epi16(-1, -1, 1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1, 1, 1);
    const __m256i sign2 = _mm256_setr_epi16(-1, -1, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1);
    const __m256i sign3 = _mm256_setr_epi16(-1, -1, -1, -1, -1, -1, -1, -1, 1, 1, 1, 1, 1, 1, 1, 1);
    __m256i e = _mm256_set1_epi16(ENTRY_BIAS);
    e = _mm256_add_epi16(e, _mm256_sign_epi16(_mm256_set1_epi16(x[0]), sign0));
    e = _mm256_add_epi16(e, _mm256_sign_epi16(_mm256_set1_epi16(x[1]), sign1));
    e = _mm256_add_epi16(e, _mm256_sign_epi16(_mm256_set1_epi16(x[2]), sign2));
    e = _mm256_add_epi16(e, _mm256_sign_epi16(_mm256_set1_epi16(x[3]), sign3));
    /* per lane: its eight entries' low halves, then their high halves */
    __m256i halves = _mm256_packus_epi16(_mm256_and_si256(e, _mm256_set1_epi16(31)),
                                         _mm256_srli_epi16(e, 5));
    return _mm256_permute4x64_epi64(halves, _MM_SHUFFLE(3, 1, 2, 0));
}

/* Tables of one token's columns [first, first + cols). */
static void build_tables(const bl_q8_block *x, size_t first, size_t cols,
                         uint8_t (*quad)[QUAD_BYTES]) {
    for (size_t q = 0; q < cols / QUAD_COLS; q++) {
        size_t c = first + q * QUAD_COLS;
        const int8_t *xq = x[c / 32].q + c % 32;
        __m256i g0 = group_entries(xq), g1 = group_entries(xq + 4);
        __m256i g2 = group_entries(xq + 8), g3 = group_entries(xq + 12);
        __m256i *dst = (__m256i *)quad[q];
        _mm256_store_si256(dst + 0, _mm256_permute2x128_si256(g0, g2, 0x20));
        _mm256_store_si256(dst + 1, _mm256_permute2x128_si256(g0, g2, 0x31));
        _mm256_store_si256(dst + 2, _mm256_permute2x128_si256(g1, g3, 0x20));
        _mm256_store_si256(dst + 3, _mm256_permute2x128_si256(g1, g3, 0x31));
    }
}

/* Entry e of group g (counted from the chunk's first column), as the tile reads it. */
static int32_t table_entry(const uint8_t (*quad)[QUAD_BYTES], size_t g, unsigned e) {
    const uint8_t *lo = quad[g / 4] + (g & 1) * 64 + (g & 2) * 8;
    return 32 * lo[32 + e] + lo[e] - ENTRY_BIAS;
}

/* ---- sixteen rows ----------------------------------------------------- */

/* Block b of sixteen rows into y[0..7] (see the top of the file). */
ALWAYS_INLINE void transpose_block(const uint8_t *w, size_t stride, size_t b, __m256i y[8]) {
    __m256i a[8], p[8], q[8];
    const uint8_t *row = w + b * BLOCK_BYTES + 2;
    const size_t half = 8 * stride;
    for (int i = 0; i < 8; i++, row += stride)
        a[i] = _mm256_loadu2_m128i((const __m128i *)(row + half), (const __m128i *)row);
    for (int i = 0; i < 4; i++) { /* 16-bit k: rows 2i, 2i + 1 of byte k (p[2i]) or k + 8 */
        p[2 * i] = _mm256_unpacklo_epi8(a[2 * i], a[2 * i + 1]);
        p[2 * i + 1] = _mm256_unpackhi_epi8(a[2 * i], a[2 * i + 1]);
    }
    for (int h = 0; h < 2; h++) { /* 32-bit k: rows 4h .. 4h + 3 of byte 4m + k (q[4h + m]) */
        q[4 * h + 0] = _mm256_unpacklo_epi16(p[4 * h + 0], p[4 * h + 2]);
        q[4 * h + 1] = _mm256_unpackhi_epi16(p[4 * h + 0], p[4 * h + 2]);
        q[4 * h + 2] = _mm256_unpacklo_epi16(p[4 * h + 1], p[4 * h + 3]);
        q[4 * h + 3] = _mm256_unpackhi_epi16(p[4 * h + 1], p[4 * h + 3]);
    }
    for (int m = 0; m < 4; m++) { /* 64-bit k: rows 0..7 (lane 1: 8..15) of byte 2j + k */
        __m256i even = _mm256_unpacklo_epi32(q[m], q[m + 4]);
        __m256i odd = _mm256_unpackhi_epi32(q[m], q[m + 4]);
        y[2 * m] = _mm256_permute4x64_epi64(even, _MM_SHUFFLE(3, 1, 2, 0));
        y[2 * m + 1] = _mm256_permute4x64_epi64(odd, _MM_SHUFFLE(3, 1, 2, 0));
    }
}

/* The f16 scales of sixteen rows' block b, rows 0..7 and 8..15. */
ALWAYS_INLINE void block_scales(const uint8_t *w, size_t stride, size_t b, __m256 dw[2]) {
    uint16_t h[TILE_ROWS];
    for (int i = 0; i < TILE_ROWS; i++) memcpy(&h[i], w + i * stride + b * BLOCK_BYTES, 2);
    dw[0] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
    dw[1] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + 8)));
}

/* Sixteen rows from `row` times `tokens` tokens (a constant at each call)
 * over the chunk's blocks; out (already holding the earlier chunks' results)
 * gets the chain's next steps. */
ALWAYS_INLINE void tile(const bl_gemm_task *t, size_t row, size_t token, const int tokens,
                        size_t first_col, size_t cols, const tables *tab, int tab_token) {
    const __m256i low_nibbles = _mm256_set1_epi8(15);
    const uint8_t *w = t->w + row * t->w_row_bytes;
    const size_t stride = t->w_row_bytes;
    const bl_q8_block *x[PASS_TOKENS];
    float *out[PASS_TOKENS];
    for (int tt = 0; tt < tokens; tt++) {
        x[tt] = (const bl_q8_block *)(t->x->data + (token + tt) * t->x->row_bytes);
        out[tt] = (float *)t->out + (token + tt) * t->out_stride + row;
    }
    for (size_t bb = 0; bb < cols / BLOCK_COLS; bb++) {
        size_t b = first_col / BLOCK_COLS + bb;
        /* the next tile's bytes (contiguous), a block's share of them at a time */
        const uint8_t *next = w + TILE_ROWS * stride + b * TILE_ROWS * BLOCK_BYTES;
        for (int k = 0; k < TILE_ROWS * BLOCK_BYTES; k += 64)
            _mm_prefetch((const char *)next + k, _MM_HINT_T0);
        __m256i y[8];
        transpose_block(w, stride, b, y);
        __m256 dw[2];
        block_scales(w, stride, b, dw);
        for (int tt = 0; tt < tokens; tt++) {
            const uint8_t(*quad)[QUAD_BYTES] = token_quads(tab, tab_token + tt) + bb * 8;
            __m256 blk0 = _mm256_setzero_ps(), blk1 = _mm256_setzero_ps();
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                /* 5-bit halves of the slice's 8 groups: at most 8 x 31 per byte */
                __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
#pragma GCC unroll 2
                for (int j = 2 * s; j < 2 * s + 2; j++) {
                    const __m256i *tq = (const __m256i *)quad[j];
                    __m256i lo_idx = _mm256_and_si256(y[j], low_nibbles);
                    __m256i hi_idx = _mm256_and_si256(_mm256_srli_epi16(y[j], 4), low_nibbles);
                    lo = _mm256_add_epi8(lo, _mm256_add_epi8(
                                                 _mm256_shuffle_epi8(_mm256_load_si256(tq + 0), lo_idx),
                                                 _mm256_shuffle_epi8(_mm256_load_si256(tq + 2), hi_idx)));
                    hi = _mm256_add_epi8(hi, _mm256_add_epi8(
                                                 _mm256_shuffle_epi8(_mm256_load_si256(tq + 1), lo_idx),
                                                 _mm256_shuffle_epi8(_mm256_load_si256(tq + 3), hi_idx)));
                }
                /* the two lanes hold different groups of the same rows */
                __m128i lo16 = _mm_add_epi8(_mm256_castsi256_si128(lo), _mm256_extracti128_si256(lo, 1));
                __m128i hi16 = _mm_add_epi8(_mm256_castsi256_si128(hi), _mm256_extracti128_si256(hi, 1));
                /* lo + 32 hi - 8 x bias: the slice's exact dots, rows 0..7 and 8..15 */
                const __m128i weights = _mm_set1_epi16(32 << 8 | 1);
                const __m128i bias = _mm_set1_epi16(8 * ENTRY_BIAS);
                __m128i d0 = _mm_sub_epi16(_mm_maddubs_epi16(_mm_unpacklo_epi8(lo16, hi16), weights), bias);
                __m128i d1 = _mm_sub_epi16(_mm_maddubs_epi16(_mm_unpackhi_epi8(lo16, hi16), weights), bias);
                __m256 dx = _mm256_set1_ps(x[tt][4 * b + s].d);
                blk0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(d0)), dx, blk0);
                blk1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(d1)), dx, blk1);
            }
            float *o = out[tt];
            _mm256_storeu_ps(o, _mm256_fmadd_ps(blk0, dw[0], _mm256_loadu_ps(o)));
            _mm256_storeu_ps(o + 8, _mm256_fmadd_ps(blk1, dw[1], _mm256_loadu_ps(o + 8)));
        }
    }
}

/* One row the same way, a lookup at a time. */
static void one_row(const bl_gemm_task *t, size_t row, size_t token, int tokens, size_t first_col,
                    size_t cols, const tables *tab) {
    const uint8_t *w = t->w + row * t->w_row_bytes;
    for (int tt = 0; tt < tokens; tt++) {
        const bl_q8_block *x = (const bl_q8_block *)(t->x->data + (token + tt) * t->x->row_bytes);
        float *out = (float *)t->out + (token + tt) * t->out_stride + row;
        for (size_t bb = 0; bb < cols / BLOCK_COLS; bb++) {
            size_t b = first_col / BLOCK_COLS + bb;
            const uint8_t *bits = w + b * BLOCK_BYTES + 2;
            float blk = 0.0f;
            for (int s = 0; s < 4; s++) {
                int32_t dot = 0;
                for (int k = 4 * s; k < 4 * s + 4; k++) {
                    dot += table_entry(token_quads(tab, tt), bb * 32 + 2 * k, bits[k] & 15u);
                    dot += table_entry(token_quads(tab, tt), bb * 32 + 2 * k + 1, bits[k] >> 4);
                }
                blk = fmaf((float)dot, x[4 * b + s].d, blk);
            }
            uint16_t h;
            memcpy(&h, w + b * BLOCK_BYTES, 2);
            *out = fmaf(blk, _cvtsh_ss(h), *out);
        }
    }
}

/* GEMV and GEMM alike: passes of up to PASS_TOKENS tokens, each over the
 * columns in one chunk (or, without heap tables, chunks of CHUNK_COLS), each
 * chunk over every row. */
static void q1_0_lut(const bl_gemm_task *t) {
    _Alignas(32) uint8_t stack_quads[PASS_TOKENS * CHUNK_COLS / QUAD_COLS][QUAD_BYTES];
    const size_t n = t->x->n, whole = t->rows / TILE_ROWS * TILE_ROWS;
    size_t chunk = t->cols, pass = n < PASS_TOKENS ? n : PASS_TOKENS;
    uint8_t(*heap_quads)[QUAD_BYTES] = aligned_alloc(32, pass * (chunk / QUAD_COLS) * QUAD_BYTES);
    if (!heap_quads) chunk = CHUNK_COLS;
    tables tab = {heap_quads ? heap_quads : stack_quads, chunk / QUAD_COLS};
    for (size_t token = 0; token < n; token++)
        memset((float *)t->out + token * t->out_stride, 0, t->rows * sizeof(float));
    for (size_t token = 0; token < n; token += PASS_TOKENS) {
        int tokens = n - token < PASS_TOKENS ? (int)(n - token) : PASS_TOKENS;
        for (size_t first = 0; first < t->cols; first += chunk) {
            size_t cols = t->cols - first < chunk ? t->cols - first : chunk;
            for (int tt = 0; tt < tokens; tt++) {
                const bl_q8_block *x =
                    (const bl_q8_block *)(t->x->data + (token + tt) * t->x->row_bytes);
                build_tables(x, first, cols, token_quads(&tab, tt));
            }
            for (size_t r = 0; r < whole; r += TILE_ROWS) {
                if (tokens == PASS_TOKENS) {
                    tile(t, r, token, PASS_TOKENS, first, cols, &tab, 0);
                } else {
                    for (int tt = 0; tt < tokens; tt++)
                        tile(t, r, token + tt, 1, first, cols, &tab, tt);
                }
            }
            for (size_t r = whole; r < t->rows; r++)
                one_row(t, r, token, tokens, first, cols, &tab);
        }
    }
    free(heap_quads);
}

void bl_gemv_q1_0_q8_lut__avx2(const bl_gemm_task *t) { q1_0_lut(t); }
void bl_gemm_q1_0_q8_lut__avx2(const bl_gemm_task *t) { q1_0_lut(t); }
