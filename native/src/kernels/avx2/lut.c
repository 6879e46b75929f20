/* avx2 lookup-table kernels.
 *
 * GEMM: the batched form of lut_gemm.h with 32-byte table rows, a tile of 16
 * tokens (int8 activations, int16 entries) or 8 (int16 activations).
 *
 * GEMV: in-register vpshufb tables, 16 weight rows at a time. Each 32-byte
 * half of a row's 64-byte chunk is transposed inside each 128-bit lane, so
 * that vector m holds, in lane L, byte 16 L + bitrev4(m) of the half of all 16
 * rows: every lane's 16 bytes then index the same 16-entry table. Entries are
 * int16 split in a low and a high byte plane; unpacking the two lookups byte
 * by byte gives the int16 sums of rows 0-7 and 8-15. int16 activations are
 * split as 256 xh + xl and run as two int8-like planes. One byte's lookups
 * add at most 2040 to a sum (two of at most 1020), so sums stay inside int16
 * for a half (16 bytes per lane) and are then widened into int32. */
#include <immintrin.h>

#include "../kernels.h"
#include "../lut_common.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

typedef __m256i lut_vec;
#define LUT_VEC_BYTES 32
#define LUT_VEC_SHIFT 5

ALWAYS_INLINE lut_vec lut_zero(void) { return _mm256_setzero_si256(); }
ALWAYS_INLINE lut_vec lut_load(const void *p) { return _mm256_load_si256((const __m256i *)p); }
ALWAYS_INLINE void lut_store(void *p, lut_vec v) { _mm256_store_si256((__m256i *)p, v); }
ALWAYS_INLINE void lut_prefetch(const void *p) { _mm_prefetch((const char *)p, _MM_HINT_T0); }
ALWAYS_INLINE lut_vec lut_add(lut_vec a, lut_vec b, int wide) {
    return wide ? _mm256_add_epi32(a, b) : _mm256_add_epi16(a, b);
}
ALWAYS_INLINE lut_vec lut_sub(lut_vec a, lut_vec b, int wide) {
    return wide ? _mm256_sub_epi32(a, b) : _mm256_sub_epi16(a, b);
}
ALWAYS_INLINE void lut_widen_add(lut_vec acc[2], lut_vec v, int wide) {
    if (wide) {
        acc[0] = _mm256_add_epi32(acc[0], v);
        return;
    }
    acc[0] = _mm256_add_epi32(acc[0], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(v)));
    acc[1] = _mm256_add_epi32(acc[1], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(v, 1)));
}

#include "../lut_gemm.h"

/* ---- GEMV ---- */

#define GEMV_ROWS 16
#define GEMV_TABLE_VECTORS 1024 /* 32 KB of tables, built for as many halves as fit */

static const int bitrev4[16] = {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15};

/* Rows r[i] in; out, r[m] holds byte bitrev4(m) of each lane of rows 0..15. */
ALWAYS_INLINE void transpose_lanes(__m256i r[16]) {
    __m256i t[16];
    for (int p = 0; p < 8; p++) {
        t[p] = _mm256_unpacklo_epi8(r[2 * p], r[2 * p + 1]);
        t[p + 8] = _mm256_unpackhi_epi8(r[2 * p], r[2 * p + 1]);
    }
    for (int p = 0; p < 8; p++) {
        r[p] = _mm256_unpacklo_epi16(t[2 * p], t[2 * p + 1]);
        r[p + 8] = _mm256_unpackhi_epi16(t[2 * p], t[2 * p + 1]);
    }
    for (int p = 0; p < 8; p++) {
        t[p] = _mm256_unpacklo_epi32(r[2 * p], r[2 * p + 1]);
        t[p + 8] = _mm256_unpackhi_epi32(r[2 * p], r[2 * p + 1]);
    }
    for (int p = 0; p < 8; p++) {
        r[p] = _mm256_unpacklo_epi64(t[2 * p], t[2 * p + 1]);
        r[p + 8] = _mm256_unpackhi_epi64(t[2 * p], t[2 * p + 1]);
    }
}

/* Vectors of tables per half: [m][kind][activation plane][byte plane]. */
ALWAYS_INLINE int gemv_half_vectors(int kinds, int planes) { return 16 * kinds * planes * 2; }

static void build_gemv_tables(const bl_activations *x, bl_type_id type, int planes, size_t first,
                              size_t count, __m256i *tables) {
    int kinds = bl_lut_kinds(type), cols = bl_lut_chunk_cols(type);
    int32_t xc[512];
    int16_t entries[16];
    uint8_t bytes[2][32] __attribute__((aligned(32)));
    for (size_t c = 0; c < count; c++) {
        size_t half = first + c;
        for (int plane = 0; plane < planes; plane++) {
            bl_lut_chunk_activations(x, half / 2 * (size_t)cols, cols, plane, xc);
            for (int m = 0; m < 16; m++) {
                for (int kind = 0; kind < kinds; kind++) {
                    for (int lane = 0; lane < 2; lane++) {
                        int j = 32 * (int)(half % 2) + 16 * lane + bitrev4[m];
                        bl_lut_nibble_entries(type, xc, j, kind, entries);
                        for (int e = 0; e < 16; e++) {
                            bytes[0][16 * lane + e] = (uint8_t)entries[e];
                            bytes[1][16 * lane + e] = (uint8_t)(entries[e] >> 8);
                        }
                    }
                    __m256i *v = tables + c * gemv_half_vectors(kinds, planes) +
                                 ((m * kinds + kind) * planes + plane) * 2;
                    v[0] = _mm256_load_si256((const __m256i *)bytes[0]);
                    v[1] = _mm256_load_si256((const __m256i *)bytes[1]);
                }
            }
        }
    }
}

/* The lookup indices of transposed vector v, one vector per kind. */
ALWAYS_INLINE void half_indices(bl_type_id type, __m256i v, __m256i idx[3]) {
    const __m256i nibble = _mm256_set1_epi8(15);
    if (type != BL_TYPE_BT1) {
        idx[0] = _mm256_and_si256(v, nibble);
        idx[1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
        return;
    }
    /* the bt1 digit rule of lut_common.h on 16-bit lanes; packus restores the byte order */
    const __m256i low_byte = _mm256_set1_epi16(255), zero = _mm256_setzero_si256();
    __m256i q[2] = {_mm256_unpacklo_epi8(v, zero), _mm256_unpackhi_epi8(v, zero)};
    __m256i d[3][2];
    for (int h = 0; h < 2; h++) {
        __m256i a = _mm256_mullo_epi16(q[h], _mm256_set1_epi16(9));
        __m256i b = _mm256_mullo_epi16(_mm256_and_si256(a, low_byte), _mm256_set1_epi16(9));
        __m256i c = _mm256_mullo_epi16(_mm256_and_si256(b, low_byte), _mm256_set1_epi16(3));
        d[0][h] = _mm256_srli_epi16(a, 8);
        d[1][h] = _mm256_srli_epi16(b, 8);
        d[2][h] = _mm256_srli_epi16(c, 8);
    }
    for (int k = 0; k < 3; k++) idx[k] = _mm256_packus_epi16(d[k][0], d[k][1]);
}

/* acc (int16: lane L, rows 0-7 / 8-15) += table lookups of idx. */
ALWAYS_INLINE void lookup_add(__m256i idx, const __m256i *planes, __m256i acc[2]) {
    __m256i lo = _mm256_shuffle_epi8(planes[0], idx), hi = _mm256_shuffle_epi8(planes[1], idx);
    acc[0] = _mm256_add_epi16(acc[0], _mm256_unpacklo_epi8(lo, hi));
    acc[1] = _mm256_add_epi16(acc[1], _mm256_unpackhi_epi8(lo, hi));
}

/* The 8 rows of a (int16, one word per row and lane) summed over lanes, int32. */
ALWAYS_INLINE __m256i sum_lanes(__m256i a) {
    return _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(a)),
                            _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a, 1)));
}

/* dots[0..1] (rows 0-7, 8-15) += the int32 dots of 16 rows with one half. */
ALWAYS_INLINE void half_dot(bl_type_id type, int planes, const uint8_t *w, size_t w_row_bytes,
                            size_t rows, const __m256i *tables, __m256i dots[2]) {
    int kinds = bl_lut_kinds(type);
    __m256i v[16];
    for (int r = 0; r < 16; r++)
        v[r] = (size_t)r < rows ? _mm256_loadu_si256((const __m256i *)(w + r * w_row_bytes))
                                : _mm256_setzero_si256();
    transpose_lanes(v);
    __m256i acc[2][2];
    for (int p = 0; p < planes; p++) acc[p][0] = acc[p][1] = _mm256_setzero_si256();
#pragma GCC unroll 16
    for (int m = 0; m < 16; m++) {
        __m256i idx[3];
        half_indices(type, v[m], idx);
        for (int kind = 0; kind < kinds; kind++)
            for (int p = 0; p < planes; p++)
                lookup_add(idx[kind], tables + ((m * kinds + kind) * planes + p) * 2, acc[p]);
    }
    for (int i = 0; i < 2; i++) {
        __m256i sum = sum_lanes(acc[0][i]);
        if (planes == 2) /* x = 256 xh + xl */
            sum = _mm256_add_epi32(_mm256_slli_epi32(sum, 8), sum_lanes(acc[1][i]));
        dots[i] = _mm256_add_epi32(dots[i], sum);
    }
}

ALWAYS_INLINE void lut_gemv(const bl_gemm_task *t, bl_type_id type, int planes) {
    int per_half = gemv_half_vectors(bl_lut_kinds(type), planes);
    size_t halves = t->w_row_bytes / 32, per_pass = GEMV_TABLE_VECTORS / per_half;
    __m256i tables[GEMV_TABLE_VECTORS];
    int32_t *out = t->out;
    for (size_t h0 = 0; h0 < halves; h0 += per_pass) {
        size_t count = halves - h0 < per_pass ? halves - h0 : per_pass;
        build_gemv_tables(t->x, type, planes, h0, count, tables);
        for (size_t r0 = 0; r0 < t->rows; r0 += GEMV_ROWS) {
            size_t rows = t->rows - r0 < GEMV_ROWS ? t->rows - r0 : GEMV_ROWS;
            __m256i dots[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
            for (size_t h = h0; h < h0 + count; h++)
                half_dot(type, planes, t->w + r0 * t->w_row_bytes + h * 32, t->w_row_bytes, rows,
                         tables + (h - h0) * per_half, dots);
            for (int i = 0; i < 2; i++) {
                int32_t sums[8];
                _mm256_storeu_si256((__m256i *)sums, dots[i]);
                for (size_t r = 8 * (size_t)i; r < rows && r < 8 * (size_t)i + 8; r++) {
                    uint32_t before = h0 ? (uint32_t)out[r0 + r] : 0u;
                    out[r0 + r] = (int32_t)(before + (uint32_t)sums[r - 8 * i]);
                }
            }
        }
    }
}

LUT_TYPE_KERNELS(avx2, bt2, BL_TYPE_BT2)
LUT_TYPE_KERNELS(avx2, bt1, BL_TYPE_BT1)

/* bs1 against int8 activations: the GEMV and batches under
 * BS1_BATCH_TABLES_FROM tokens look sixteen rows up at once (bs1_lut16.c);
 * larger batches build tables per batch like the other types. On Zen 4 the
 * sixteen-row kernel runs 1.3-1.5x multiply-add's speed for one token and
 * about the same at 4-10, the batch tables 0.75x at 8, equal at 12 and 1.26x
 * at 15 tokens (BENCHMARKS.md, "bs1 on AVX2 as sixteen-row lookups"). */
#define BS1_BATCH_TABLES_FROM 12
bl_gemm_kernel bl_gemv_bs1_i8_lut__avx2;
void bl_gemv_bs1_i16_lut__avx2(const bl_gemm_task *t) { lut_gemv(t, BL_TYPE_BS1, 2); }
void bl_gemm_bs1_i8_lut__avx2(const bl_gemm_task *t) {
    if (t->x->n < BS1_BATCH_TABLES_FROM)
        bl_gemv_bs1_i8_lut__avx2(t);
    else
        lut_gemm_run(t, BL_TYPE_BS1, 0, bl_gemv_bs1_i8_lut__avx2);
}
void bl_gemm_bs1_i16_lut__avx2(const bl_gemm_task *t) {
    lut_gemm_run(t, BL_TYPE_BS1, 1, bl_gemv_bs1_i16_lut__avx2);
}
