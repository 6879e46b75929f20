/* avx512 lookup-table kernels.
 *
 * GEMM: the batched form of lut_gemm.h with 64-byte table rows, a tile of 32
 * tokens (int8 activations, int16 entries) or 16 (int16 activations).
 * GEMV: in-register vpermb tables, below. */
#include <immintrin.h>

#include "../kernels.h"
#include "../lut_common.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

typedef __m512i lut_vec;
#define LUT_VEC_BYTES 64
#define LUT_VEC_SHIFT 6

ALWAYS_INLINE lut_vec lut_zero(void) { return _mm512_setzero_si512(); }
ALWAYS_INLINE lut_vec lut_load(const void *p) { return _mm512_load_si512(p); }
ALWAYS_INLINE void lut_store(void *p, lut_vec v) { _mm512_store_si512(p, v); }
ALWAYS_INLINE void lut_prefetch(const void *p) { _mm_prefetch((const char *)p, _MM_HINT_T0); }
ALWAYS_INLINE lut_vec lut_add(lut_vec a, lut_vec b, int wide) {
    return wide ? _mm512_add_epi32(a, b) : _mm512_add_epi16(a, b);
}
ALWAYS_INLINE lut_vec lut_sub(lut_vec a, lut_vec b, int wide) {
    return wide ? _mm512_sub_epi32(a, b) : _mm512_sub_epi16(a, b);
}
ALWAYS_INLINE void lut_widen_add(lut_vec acc[2], lut_vec v, int wide) {
    if (wide) {
        acc[0] = _mm512_add_epi32(acc[0], v);
        return;
    }
    acc[0] = _mm512_add_epi32(acc[0], _mm512_cvtepi16_epi32(_mm512_castsi512_si256(v)));
    acc[1] = _mm512_add_epi32(acc[1], _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(v, 1)));
}

#include "../lut_gemm.h"

/* ---- GEMV: in-register tables, 16 weight rows at a time ----
 *
 * The 64-byte chunks of 16 weight rows are transposed as a 16 x 16 matrix of
 * dwords, so that vector d holds dword d of every row: its byte b, in every
 * row, is byte 4d + b of the chunk. One 64-entry vpermb table then serves the
 * whole vector: entries 16b .. 16b + 15 are the 16-entry table of byte 4d + b,
 * and the index is the nibble (or digit pair) plus 16b. Entries are int16,
 * split in a low (unsigned) and a high (signed) byte plane; vpdpbusd against
 * ones adds each row's four looked-up bytes into its int32 lane, so no sum is
 * ever narrower than int32. int16 activations are split as 256 xh + xl and
 * run as two int8-like planes. */

#define GEMV_ROWS 16
#define GEMV_TABLE_VECTORS 512 /* 32 KB of tables, built for as many chunks as fit */

/* Rows r[i] in, dwords out: r[4L + k] becomes dword 4L + k of rows 0..15. */
ALWAYS_INLINE void transpose_dwords(__m512i r[16]) {
    __m512i u[4][4];
    for (int q = 0; q < 4; q++) { /* 4 x 4 dword transposes inside each lane */
        __m512i t0 = _mm512_unpacklo_epi32(r[4 * q], r[4 * q + 1]);
        __m512i t1 = _mm512_unpackhi_epi32(r[4 * q], r[4 * q + 1]);
        __m512i t2 = _mm512_unpacklo_epi32(r[4 * q + 2], r[4 * q + 3]);
        __m512i t3 = _mm512_unpackhi_epi32(r[4 * q + 2], r[4 * q + 3]);
        u[q][0] = _mm512_unpacklo_epi64(t0, t2);
        u[q][1] = _mm512_unpackhi_epi64(t0, t2);
        u[q][2] = _mm512_unpacklo_epi64(t1, t3);
        u[q][3] = _mm512_unpackhi_epi64(t1, t3);
    }
    for (int k = 0; k < 4; k++) { /* then a 4 x 4 transpose of the lanes */
        __m512i a0 = _mm512_shuffle_i32x4(u[0][k], u[1][k], 0x44);
        __m512i a1 = _mm512_shuffle_i32x4(u[0][k], u[1][k], 0xee);
        __m512i a2 = _mm512_shuffle_i32x4(u[2][k], u[3][k], 0x44);
        __m512i a3 = _mm512_shuffle_i32x4(u[2][k], u[3][k], 0xee);
        r[k] = _mm512_shuffle_i32x4(a0, a2, 0x88);
        r[4 + k] = _mm512_shuffle_i32x4(a0, a2, 0xdd);
        r[8 + k] = _mm512_shuffle_i32x4(a1, a3, 0x88);
        r[12 + k] = _mm512_shuffle_i32x4(a1, a3, 0xdd);
    }
}

/* Vectors of tables per chunk: [d][kind][activation plane][byte plane]. */
ALWAYS_INLINE int gemv_chunk_vectors(int kinds, int planes) { return 16 * kinds * planes * 2; }

static void build_gemv_tables(const bl_activations *x, bl_type_id type, int planes, size_t first,
                              size_t count, __m512i *tables) {
    int kinds = bl_lut_kinds(type), cols = bl_lut_chunk_cols(type);
    int32_t xc[512];
    int16_t entries[64] __attribute__((aligned(64)));
    for (size_t c = 0; c < count; c++) {
        for (int plane = 0; plane < planes; plane++) {
            bl_lut_chunk_activations(x, (first + c) * (size_t)cols, cols, plane, xc);
            for (int d = 0; d < 16; d++) {
                for (int kind = 0; kind < kinds; kind++) {
                    for (int b = 0; b < 4; b++)
                        bl_lut_nibble_entries(type, xc, 4 * d + b, kind, entries + 16 * b);
                    __m512i lo = _mm512_load_si512(entries), hi = _mm512_load_si512(entries + 32);
                    __m512i *v = tables + c * gemv_chunk_vectors(kinds, planes) +
                                 ((d * kinds + kind) * planes + plane) * 2;
                    v[0] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi16_epi8(lo)),
                                              _mm512_cvtepi16_epi8(hi), 1);
                    v[1] = _mm512_inserti64x4(
                        _mm512_castsi256_si512(_mm512_cvtepi16_epi8(_mm512_srai_epi16(lo, 8))),
                        _mm512_cvtepi16_epi8(_mm512_srai_epi16(hi, 8)), 1);
                }
            }
        }
    }
}

/* The vpermb indices of transposed vector v, one vector per kind: the
 * nibble or bt1 index, plus 16 times the byte's place in its dword. */
ALWAYS_INLINE void chunk_indices(bl_type_id type, __m512i v, __m512i idx[3]) {
    const __m512i place = _mm512_set1_epi32(0x30201000), nibble = _mm512_set1_epi8(15);
    if (type != BL_TYPE_BT1) {
        idx[0] = _mm512_ternarylogic_epi32(v, nibble, place, 0xea); /* (v & nibble) | place */
        idx[1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 4), nibble, place, 0xea);
        return;
    }
    /* the bt1 digit rule of lut_common.h on 16-bit lanes; packus restores the byte order */
    const __m512i low_byte = _mm512_set1_epi16(255), zero = _mm512_setzero_si512();
    __m512i q[2] = {_mm512_unpacklo_epi8(v, zero), _mm512_unpackhi_epi8(v, zero)};
    __m512i d[3][2];
    for (int h = 0; h < 2; h++) {
        __m512i a = _mm512_mullo_epi16(q[h], _mm512_set1_epi16(9));
        __m512i b = _mm512_mullo_epi16(_mm512_and_si512(a, low_byte), _mm512_set1_epi16(9));
        __m512i c = _mm512_mullo_epi16(_mm512_and_si512(b, low_byte), _mm512_set1_epi16(3));
        d[0][h] = _mm512_srli_epi16(a, 8);
        d[1][h] = _mm512_srli_epi16(b, 8);
        d[2][h] = _mm512_srli_epi16(c, 8);
    }
    for (int k = 0; k < 3; k++)
        idx[k] = _mm512_or_si512(_mm512_packus_epi16(d[k][0], d[k][1]), place);
}

/* Independent accumulators per activation plane and byte plane, so that
 * vpdpbusd latency never chains one lookup to the next. */
#define GEMV_CHAINS 4

/* acc[plane][byte plane][chain] += the lookups of 16 rows' chunk: each row's
 * four looked-up bytes of the low plane (unsigned) and the high plane (signed). */
ALWAYS_INLINE void chunk_lookups(bl_type_id type, int planes, const uint8_t *w, size_t w_row_bytes,
                                 size_t rows, __mmask64 valid_bytes, const __m512i *tables,
                                 __m512i acc[2][2][GEMV_CHAINS]) {
    const __m512i ones = _mm512_set1_epi8(1);
    int kinds = bl_lut_kinds(type);
    __m512i v[16];
    for (int r = 0; r < 16; r++)
        v[r] = (size_t)r < rows ? _mm512_maskz_loadu_epi8(valid_bytes, w + r * w_row_bytes)
                                : _mm512_setzero_si512();
    transpose_dwords(v);
#pragma GCC unroll 16
    for (int d = 0; d < 16; d++) {
        __m512i idx[3];
        chunk_indices(type, v[d], idx);
        for (int kind = 0; kind < kinds; kind++) {
            int chain = (d * kinds + kind) % GEMV_CHAINS;
            for (int p = 0; p < planes; p++) {
                const __m512i *table = tables + ((d * kinds + kind) * planes + p) * 2;
                acc[p][0][chain] = _mm512_dpbusd_epi32(
                    acc[p][0][chain], _mm512_permutexvar_epi8(idx[kind], table[0]), ones);
                acc[p][1][chain] = _mm512_dpbusd_epi32(
                    acc[p][1][chain], ones, _mm512_permutexvar_epi8(idx[kind], table[1]));
            }
        }
    }
}

/* The int32 dots of one activation plane: low plane + 256 x high plane. */
ALWAYS_INLINE __m512i plane_dots(__m512i acc[2][GEMV_CHAINS]) {
    __m512i sum[2];
    for (int bp = 0; bp < 2; bp++)
        sum[bp] = _mm512_add_epi32(_mm512_add_epi32(acc[bp][0], acc[bp][1]),
                                   _mm512_add_epi32(acc[bp][2], acc[bp][3]));
    return _mm512_add_epi32(sum[0], _mm512_slli_epi32(sum[1], 8));
}

ALWAYS_INLINE void lut_gemv(const bl_gemm_task *t, bl_type_id type, int planes) {
    int kinds = bl_lut_kinds(type), per_chunk = gemv_chunk_vectors(kinds, planes);
    size_t cols = (size_t)bl_lut_chunk_cols(type);
    size_t chunks = (t->cols + cols - 1) / cols, per_pass = GEMV_TABLE_VECTORS / per_chunk;
    __m512i tables[GEMV_TABLE_VECTORS];
    int32_t *out = t->out;
    for (size_t c0 = 0; c0 < chunks; c0 += per_pass) {
        size_t count = chunks - c0 < per_pass ? chunks - c0 : per_pass;
        build_gemv_tables(t->x, type, planes, c0, count, tables);
        for (size_t r0 = 0; r0 < t->rows; r0 += GEMV_ROWS) {
            size_t rows = t->rows - r0 < GEMV_ROWS ? t->rows - r0 : GEMV_ROWS;
            __m512i acc[2][2][GEMV_CHAINS];
            for (int p = 0; p < planes; p++)
                for (int bp = 0; bp < 2; bp++)
                    for (int i = 0; i < GEMV_CHAINS; i++) acc[p][bp][i] = _mm512_setzero_si512();
            for (size_t c = c0; c < c0 + count; c++) {
                size_t bytes = t->w_row_bytes - c * 64 < 64 ? t->w_row_bytes - c * 64 : 64;
                __mmask64 valid_bytes = bytes == 64 ? ~(__mmask64)0 : ((__mmask64)1 << bytes) - 1;
                chunk_lookups(type, planes, t->w + r0 * t->w_row_bytes + c * 64, t->w_row_bytes,
                              rows, valid_bytes, tables + (c - c0) * per_chunk, acc);
            }
            __m512i dots = plane_dots(acc[0]);
            if (planes == 2) /* x = 256 xh + xl */
                dots = _mm512_add_epi32(_mm512_slli_epi32(dots, 8), plane_dots(acc[1]));
            __mmask16 valid_rows = (__mmask16)((1u << rows) - 1);
            if (c0) dots = _mm512_add_epi32(dots, _mm512_maskz_loadu_epi32(valid_rows, out + r0));
            _mm512_mask_storeu_epi32(out + r0, valid_rows, dots);
        }
    }
}

LUT_KERNELS(avx512)
