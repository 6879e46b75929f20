/* The batched lookup-table GEMM (T-MAC style), one body for every SIMD ISA.
 *
 * Activation rows (tokens) go in tiles as wide as one table row: a vector of
 * int16 (int8 activations) or int32 (int16 activations), one lane per token.
 * Each weight byte is a group of columns (bt2: 4, bt1: 5, bs1: 8) and indexes
 * its group's table, which has one row per pattern the byte can hold (bt2: 81,
 * bt1: 243, bs1: 256). A single vector add then counts 4, 5 or 8 weights for
 * every token of the tile. Tables are built for a segment of byte positions
 * at a time, sized to stay in L2, and swept by a chunk of up to LUT_ROW_CHUNK
 * weight rows, so building them costs little against the lookups.
 *
 * Tables hold negated partial sums: with int8 activations in [-128, 127] a
 * negated group sum lies in [-128 g, 127 g], so the sums of one segment (at
 * most 64 bt2, 32 bs1 or 32 bt1 lookups) stay inside int16 before they are
 * widened to int32.
 *
 * bt2 code 3 (invalid: the packer never writes it) has no row in the 81-row
 * tables and reads as code 2 here.
 *
 * The including file defines, before including this header:
 *   lut_vec, LUT_VEC_BYTES, LUT_VEC_SHIFT      one table row and log2 of its size
 *   lut_zero(), lut_load(p), lut_store(p, v)   (p aligned to LUT_VEC_BYTES)
 *   lut_add(a, b, wide), lut_sub(a, b, wide)   int16 lanes, or int32 when wide
 *   lut_widen_add(acc, v, wide)                acc[0..1] (int32) += v (int16);
 *                                              when wide, acc[0] += v
 *   lut_prefetch(p)                            a hint that never faults
 * and gets lut_gemm_run() and LUT_KERNELS(isa) (see below). */
#ifndef BL_LUT_GEMM_H
#define BL_LUT_GEMM_H

#include <stdlib.h>
#include <string.h>
#if defined(__AVX2__)
#include <immintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#include "kernels.h"
#include "lut_common.h"

#define LUT_INLINE static inline __attribute__((always_inline))
/* Tables of one segment: small enough to stay in a 1 MB L2 while weight rows
 * and results stream past (measured: 83 KB beat 332 KB for bt2 by about 7%).
 * bt1 and bs1 tables take more even at the smallest segment. */
#define LUT_TABLE_BUDGET (96 * 1024)
#define LUT_ROW_CHUNK 2048            /* weight rows whose int32 results stay in cache */
#define LUT_ROW_BATCH 8               /* weight rows whose table offsets are computed together */

typedef struct lut_layout {
    int block_cols, block_bytes;
    int group_cols; /* columns one weight byte holds                   */
    int entries;    /* table rows per group (per weight byte position) */
    int segment;    /* byte positions whose tables are built together  */
} lut_layout;

/* The segment: a power of two of byte positions, at least 16, whose tables
 * fit the budget and whose negated int8 sums cannot leave int16. */
LUT_INLINE lut_layout lut_gemm_layout(bl_type_id type) {
    lut_layout L = {256, 64, 4, 81, 0};
    if (type == BL_TYPE_BT1) L = (lut_layout){320, 64, 5, BL_LUT_BT1_PATTERNS, 0};
    if (type == BL_TYPE_BS1) L = (lut_layout){256, 32, 8, 256, 0};
    int fit = LUT_TABLE_BUDGET / (L.entries * LUT_VEC_BYTES), exact = 32768 / (128 * L.group_cols);
    L.segment = 16;
    while (L.segment * 2 <= fit && L.segment * 2 <= exact && L.segment * 2 <= L.block_bytes)
        L.segment *= 2;
    return L;
}

/* The block's activations of one token tile, column-major and negated:
 * xt[c] holds -x[t][c] for every token t of the tile (0 past the last token). */
static void lut_transpose_block(const bl_activations *x, size_t t0, size_t tokens, size_t col0,
                                int cols, int wide, lut_vec *xt) {
    memset(xt, 0, (size_t)cols * sizeof(lut_vec));
    for (size_t t = 0; t < tokens; t++) {
        const uint8_t *row = x->data + (t0 + t) * x->row_bytes;
        for (int c = 0; c < cols; c++) {
            if (wide)
                ((int32_t *)&xt[c])[t] = -((const int16_t *)row)[col0 + c];
            else
                ((int16_t *)&xt[c])[t] = (int16_t)-((const int8_t *)row)[col0 + c];
        }
    }
}

/* The nine sums (c0 - 1) v0 + (c1 - 1) v1, at index c0 + 3 c1. */
LUT_INLINE void lut_pair_sums(lut_vec v0, lut_vec v1, int wide, lut_vec out[9]) {
    lut_vec zero = lut_zero();
    lut_vec a[3] = {lut_sub(zero, v0, wide), zero, v0};
    lut_vec b[3] = {lut_sub(zero, v1, wide), zero, v1};
    for (int c1 = 0; c1 < 3; c1++)
        for (int c0 = 0; c0 < 3; c0++) out[c0 + 3 * c1] = lut_add(a[c0], b[c1], wide);
}

/* bt2: row c0 + 3 c1 + 9 c2 + 27 c3 for codes c_k of columns j + 64k. */
LUT_INLINE void lut_bt2_table(const lut_vec *xt, int j, int wide, lut_vec *table) {
    lut_vec lo[9], hi[9];
    lut_pair_sums(xt[j], xt[j + 64], wide, lo);
    lut_pair_sums(xt[j + 128], xt[j + 192], wide, hi);
    for (int h = 0; h < 9; h++)
        for (int l = 0; l < 9; l++) lut_store(&table[l + 9 * h], lut_add(lo[l], hi[h], wide));
}

/* bt1: row n = 81 d0 + 27 d1 + 9 d2 + 3 d3 + d4 for digits d_k of columns
 * j + 64k, as 9 (3 (3 d0 + d1) + d2) + (3 d3 + d4). */
LUT_INLINE void lut_bt1_table(const lut_vec *xt, int j, int wide, lut_vec *table) {
    lut_vec first[9], last[9];
    lut_pair_sums(xt[j + 64], xt[j], wide, first);       /* index d1 + 3 d0 */
    lut_pair_sums(xt[j + 256], xt[j + 192], wide, last); /* index d4 + 3 d3 */
    lut_vec zero = lut_zero();
    lut_vec third[3] = {lut_sub(zero, xt[j + 128], wide), zero, xt[j + 128]};
    for (int d01 = 0; d01 < 9; d01++) {
        for (int d2 = 0; d2 < 3; d2++) {
            lut_vec head = lut_add(first[d01], third[d2], wide);
            for (int l = 0; l < 9; l++)
                lut_store(&table[9 * (3 * d01 + d2) + l], lut_add(head, last[l], wide));
        }
    }
}

/* bs1: row = the byte itself; bit i (column 8j + i) set means weight -1. */
LUT_INLINE void lut_bs1_table(const lut_vec *xt, int j, int wide, lut_vec *table) {
    lut_vec lo[16], hi[16];
    const lut_vec *v = &xt[8 * j];
    lo[0] = lut_add(lut_add(v[0], v[1], wide), lut_add(v[2], v[3], wide), wide);
    hi[0] = lut_add(lut_add(v[4], v[5], wide), lut_add(v[6], v[7], wide), wide);
    for (int i = 0; i < 4; i++) {
        lut_vec twice_lo = lut_add(v[i], v[i], wide), twice_hi = lut_add(v[4 + i], v[4 + i], wide);
        for (int b = 0; b < (1 << i); b++) {
            lo[b + (1 << i)] = lut_sub(lo[b], twice_lo, wide);
            hi[b + (1 << i)] = lut_sub(hi[b], twice_hi, wide);
        }
    }
    for (int h = 0; h < 16; h++)
        for (int l = 0; l < 16; l++) lut_store(&table[l + 16 * h], lut_add(lo[l], hi[h], wide));
}

LUT_INLINE void lut_build_tables(bl_type_id type, const lut_vec *xt, int first, int count,
                                 int wide, int entries, lut_vec *tables) {
    for (int j = first; j < first + count; j++) {
        lut_vec *table = tables + (size_t)(j - first) * entries;
        if (type == BL_TYPE_BT2)
            lut_bt2_table(xt, j, wide, table);
        else if (type == BL_TYPE_BT1)
            lut_bt1_table(xt, j, wide, table);
        else
            lut_bs1_table(xt, j, wide, table);
    }
}

/* Byte offsets, within their group's table, of the rows that weight bytes
 * w[0..count) index (count a multiple of 16). */
LUT_INLINE void lut_row_offsets(bl_type_id type, const uint8_t *w, int count, uint16_t *off) {
#if defined(__AVX2__)
    /* bt2: c0 + 3 c1 from the low nibble plus 9 (c2 + 3 c3) from the high one */
    const __m128i lo_tab = _mm_setr_epi8(0, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 8, 6, 7, 8, 8);
    const __m128i hi_tab =
        _mm_setr_epi8(0, 9, 18, 18, 27, 36, 45, 45, 54, 63, 72, 72, 54, 63, 72, 72);
    const __m128i nibble = _mm_set1_epi8(15);
    for (int i = 0; i < count; i += 16) {
        __m128i q = _mm_loadu_si128((const __m128i *)(w + i));
        __m256i idx;
        __m128i low = _mm_and_si128(q, nibble), high = _mm_and_si128(_mm_srli_epi16(q, 4), nibble);
        if (type == BL_TYPE_BT2)
            idx = _mm256_cvtepu8_epi16(
                _mm_add_epi8(_mm_shuffle_epi8(lo_tab, low), _mm_shuffle_epi8(hi_tab, high)));
        else if (type == BL_TYPE_BT1) /* bl_lut_bt1_pattern */
            idx = _mm256_srli_epi16(
                _mm256_mullo_epi16(_mm256_cvtepu8_epi16(q), _mm256_set1_epi16(243)), 8);
        else
            idx = _mm256_cvtepu8_epi16(q);
        _mm256_storeu_si256((__m256i *)(off + i), _mm256_slli_epi16(idx, LUT_VEC_SHIFT));
    }
#elif defined(__ARM_NEON)
    const uint8x16_t lo_tab = {0, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 8, 6, 7, 8, 8};
    const uint8x16_t hi_tab = {0, 9, 18, 18, 27, 36, 45, 45, 54, 63, 72, 72, 54, 63, 72, 72};
    for (int i = 0; i < count; i += 16) {
        uint8x16_t q = vld1q_u8(w + i), idx;
        if (type == BL_TYPE_BT2)
            idx = vaddq_u8(vqtbl1q_u8(lo_tab, vandq_u8(q, vdupq_n_u8(15))),
                           vqtbl1q_u8(hi_tab, vshrq_n_u8(q, 4)));
        else if (type == BL_TYPE_BT1) /* bl_lut_bt1_pattern */
            idx = vcombine_u8(vshrn_n_u16(vmull_u8(vget_low_u8(q), vdup_n_u8(243)), 8),
                              vshrn_n_u16(vmull_high_u8(q, vdupq_n_u8(243)), 8));
        else
            idx = q;
        vst1q_u16(off + i, vshll_n_u8(vget_low_u8(idx), LUT_VEC_SHIFT));
        vst1q_u16(off + i + 8, vshll_high_n_u8(idx, LUT_VEC_SHIFT));
    }
#else
#error "lut_gemm.h needs AVX2 or NEON"
#endif
}

/* The sum of one table row per weight byte of a segment. */
LUT_INLINE lut_vec lut_lookup_segment(const lut_vec *tables, int entries, const uint16_t *off,
                                      int count, int wide) {
    lut_vec a0 = lut_zero(), a1 = lut_zero();
    const uint8_t *base = (const uint8_t *)tables;
    size_t group_bytes = (size_t)entries * LUT_VEC_BYTES;
#pragma GCC unroll 64
    for (int i = 0; i < count; i += 2) {
        a0 = lut_add(a0, lut_load(base + (size_t)i * group_bytes + off[i]), wide);
        a1 = lut_add(a1, lut_load(base + (size_t)(i + 1) * group_bytes + off[i + 1]), wide);
    }
    return lut_add(a0, a1, wide);
}

/* Lookups of a batch of weight rows in one segment, added to their results. */
LUT_INLINE void lut_sweep_rows(bl_type_id type, const lut_layout *L, int wide, const uint8_t *w,
                               size_t w_row_bytes, size_t rows, const lut_vec *tables,
                               lut_vec *acc) {
    uint16_t off[LUT_ROW_BATCH][64];
    for (size_t r = 0; r < rows; r++) {
        /* the rows two batches on come from far caches; prefetches never fault */
        lut_prefetch(w + (r + 2 * LUT_ROW_BATCH) * w_row_bytes);
        lut_row_offsets(type, w + r * w_row_bytes, L->segment, off[r]);
    }
    for (size_t r = 0; r < rows; r++)
        lut_widen_add(&acc[2 * r], lut_lookup_segment(tables, L->entries, off[r], L->segment, wide),
                      wide);
}

/* One token tile against the whole slice, a chunk of weight rows at a time:
 * per block and segment, build the tables, then sweep the chunk's rows.
 * acc holds two vectors of int32 per row (one when wide). */
LUT_INLINE void lut_gemm_tile(const bl_gemm_task *t, bl_type_id type, const lut_layout *L, int wide,
                              size_t t0, size_t tokens, lut_vec *xt, lut_vec *tables,
                              lut_vec *acc) {
    size_t blocks = t->cols / (size_t)L->block_cols;
    for (size_t b = 0; b < blocks; b++)
        lut_transpose_block(t->x, t0, tokens, b * L->block_cols, L->block_cols, wide,
                            xt + b * L->block_cols);
    int32_t *out = t->out;
    for (size_t r0 = 0; r0 < t->rows; r0 += LUT_ROW_CHUNK) {
        size_t rows = t->rows - r0 < LUT_ROW_CHUNK ? t->rows - r0 : LUT_ROW_CHUNK;
        memset(acc, 0, rows * 2 * sizeof(lut_vec));
        for (size_t b = 0; b < blocks; b++) {
            for (int s = 0; s < L->block_bytes; s += L->segment) {
                lut_build_tables(type, xt + b * L->block_cols, s, L->segment, wide, L->entries,
                                 tables);
                const uint8_t *w = t->w + r0 * t->w_row_bytes + b * L->block_bytes + s;
                for (size_t r = 0; r < rows; r += LUT_ROW_BATCH)
                    lut_sweep_rows(type, L, wide, w + r * t->w_row_bytes, t->w_row_bytes,
                                   rows - r < LUT_ROW_BATCH ? rows - r : LUT_ROW_BATCH, tables,
                                   &acc[2 * r]);
            }
        }
        for (size_t i = 0; i < tokens; i++)
            for (size_t r = 0; r < rows; r++) /* the tables were negated */
                out[(t0 + i) * t->out_stride + r0 + r] =
                    (int32_t)(0u - (uint32_t)((const int32_t *)&acc[2 * r])[i]);
    }
}

/* Without memory for the tables, GEMM runs as one GEMV per token. */
static void lut_gemv_by_token(const bl_gemm_task *t, bl_gemm_fn gemv) {
    bl_activations one = *t->x;
    one.n = 1;
    for (size_t i = 0; i < t->x->n; i++) {
        one.data = t->x->data + i * t->x->row_bytes;
        one.sums = t->x->sums + i;
        one.scales = t->x->scales + i;
        bl_gemm_task task = *t;
        task.x = &one;
        task.out = (int32_t *)t->out + i * t->out_stride;
        gemv(&task);
    }
}

LUT_INLINE void lut_gemm_run(const bl_gemm_task *t, bl_type_id type, int wide, bl_gemm_fn gemv) {
    lut_layout L = lut_gemm_layout(type);
    size_t tile = LUT_VEC_BYTES / (wide ? 4 : 2);
    size_t xt_bytes = t->cols * LUT_VEC_BYTES;
    size_t table_bytes = (size_t)L.segment * L.entries * LUT_VEC_BYTES;
    size_t acc_bytes = (t->rows < LUT_ROW_CHUNK ? t->rows : LUT_ROW_CHUNK) * 2 * LUT_VEC_BYTES;
    uint8_t *scratch = aligned_alloc(64, (xt_bytes + table_bytes + acc_bytes + 63) / 64 * 64);
    if (!scratch) {
        lut_gemv_by_token(t, gemv);
        return;
    }
    lut_vec *xt = (lut_vec *)scratch;
    lut_vec *tables = (lut_vec *)(scratch + xt_bytes);
    lut_vec *acc = (lut_vec *)(scratch + xt_bytes + table_bytes);
    for (size_t t0 = 0; t0 < t->x->n; t0 += tile) {
        size_t tokens = t->x->n - t0 < tile ? t->x->n - t0 : tile;
        lut_gemm_tile(t, type, &L, wide, t0, tokens, xt, tables, acc);
    }
    free(scratch);
}


/* The LUT kernels of one type for isa: GEMV the including file's
 * lut_gemv(t, type, act_bytes), GEMM lut_gemm_run. */
#define LUT_TYPE_KERNELS(isa, type, TYPE)                                                        \
    void bl_gemv_##type##_i8_lut__##isa(const bl_gemm_task *t) { lut_gemv(t, TYPE, 1); }        \
    void bl_gemv_##type##_i16_lut__##isa(const bl_gemm_task *t) { lut_gemv(t, TYPE, 2); }       \
    void bl_gemm_##type##_i8_lut__##isa(const bl_gemm_task *t) {                                \
        lut_gemm_run(t, TYPE, 0, bl_gemv_##type##_i8_lut__##isa);                                \
    }                                                                                            \
    void bl_gemm_##type##_i16_lut__##isa(const bl_gemm_task *t) {                               \
        lut_gemm_run(t, TYPE, 1, bl_gemv_##type##_i16_lut__##isa);                               \
    }

/* Every LUT kernel of isa: bl_<gemv|gemm>_<type>_<i8|i16>_lut__<isa>. */
#define LUT_KERNELS(isa)                                                                         \
    LUT_TYPE_KERNELS(isa, bt2, BL_TYPE_BT2)                                                      \
    LUT_TYPE_KERNELS(isa, bt1, BL_TYPE_BT1)                                                      \
    LUT_TYPE_KERNELS(isa, bs1, BL_TYPE_BS1)

#endif
