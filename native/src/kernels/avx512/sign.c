/* AVX-512 multiply-add kernels for the sign type bs1: a set bit means -1, so
 * dot = sum(x) - 2 * sum(x where the bit is set), in exact integers.
 *
 * I8 GEMV: 512 columns of bits (64 bytes) at a time, with x regrouped once
 *   per call so that 64-byte lane k holds x[8b + k] at byte b; then
 *   `bits & (1 << k)` selects, in byte b, column 8b + k at scale 2^k, and one
 *   and + one vpdpbusd cover 64 weights (no mask registers, which cost more).
 * I16 GEMV: the 32 bits of 32 columns are a word mask as they lie in memory; a
 *   zero-masked move keeps the selected activations and vpdpwssd with ones
 *   sums them.
 * GEMM: bits become byte codes 0/1 for the shared tile in int_gemm.c. */
#include <string.h>

#include "int_gemm.h"
#include "simd.h"

#define GEMV_ROWS 4

BL_INLINE __mmask64 mask64_at(const uint8_t *p) {
    uint64_t m;
    memcpy(&m, p, 8);
    return _cvtu64_mask64(m);
}

BL_INLINE __mmask32 mask32_at(const uint8_t *p) {
    uint32_t m;
    memcpy(&m, p, 4);
    return _cvtu32_mask32(m);
}

/* Writes (first_chunk) or adds the group's sum(x) - 2 * selected into out. */
BL_INLINE void store_sign_dots(const bl_gemm_task *t, size_t r, const __m512i selected[4],
                               int first_chunk) {
    __m128i sums = bl_sum4_epi32(selected[0], selected[1], selected[2], selected[3]);
    int32_t *out = (int32_t *)t->out + r;
    __mmask8 valid = bl_first_lanes(t->rows - r);
    __m128i base = first_chunk ? _mm_set1_epi32(t->x->sums[0]) : _mm_maskz_loadu_epi32(valid, out);
    _mm_mask_storeu_epi32(out, valid, _mm_sub_epi32(base, _mm_add_epi32(sums, sums)));
}

#define SIGN_CHUNK_COLS 8192 /* regrouped x per pass */

/* xt[64k + b] = x[8b + k] for each 512 columns (cols is a multiple of 256):
 * a byte transpose within each 64-byte vector, then an 8 x 8 transpose of
 * 64-bit lanes across the eight. */
static void regroup_x(const uint8_t *x, size_t cols, uint8_t *xt) {
    _Alignas(64) uint8_t byte_order[64];
    for (int i = 0; i < 64; i++) byte_order[i] = (uint8_t)(i % 8 * 8 + i / 8);
    const __m512i bytes = _mm512_load_si512(byte_order);
    const __m512i pairs_lo = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    const __m512i pairs_hi = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    for (size_t c = 0; c < cols; c += 512) {
        __m512i y[8], a[8], b[8];
        for (int i = 0; i < 8; i++) /* a last half step of 256 columns reads zeros beyond */
            y[i] = c + 64 * i < cols
                       ? _mm512_permutexvar_epi8(bytes, _mm512_load_si512(x + c + 64 * i))
                       : _mm512_setzero_si512();
        for (int i = 0; i < 8; i += 2) {
            a[i] = _mm512_unpacklo_epi64(y[i], y[i + 1]);
            a[i + 1] = _mm512_unpackhi_epi64(y[i], y[i + 1]);
        }
        for (int i = 0; i < 8; i += 4) {
            for (int j = 0; j < 2; j++) {
                b[i + j] = _mm512_permutex2var_epi64(a[i + j], pairs_lo, a[i + j + 2]);
                b[i + j + 2] = _mm512_permutex2var_epi64(a[i + j], pairs_hi, a[i + j + 2]);
            }
        }
        for (int k = 0; k < 4; k++) {
            _mm512_store_si512(xt + c + 64 * k, _mm512_shuffle_i64x2(b[k], b[k + 4], 0x44));
            _mm512_store_si512(xt + c + 64 * (k + 4), _mm512_shuffle_i64x2(b[k], b[k + 4], 0xEE));
        }
    }
}

/* One step of 512 columns for the group's rows; `bits` masks the bytes of
 * sign bits read (all 64, or 32 for a last half step of 256 columns). Lanes
 * k and k + 4 (from bits >> 4) share the accumulator of scale 2^k. */
BL_INLINE void sign_step_i8(__m512i acc[GEMV_ROWS][4], const uint8_t *const w[GEMV_ROWS],
                            const uint8_t *xt, const __m512i bit[4], __mmask64 bits,
                            size_t ahead) {
    __m512i xk[8];
    for (int k = 0; k < 8; k++) xk[k] = _mm512_load_si512(xt + 64 * k);
    for (int i = 0; i < GEMV_ROWS; i++) {
        __m512i low = bits == ~(__mmask64)0 ? bl_loadu(w[i]) : _mm512_maskz_loadu_epi8(bits, w[i]);
        __m512i high = _mm512_srli_epi16(low, 4);
        bl_prefetch(w[i] + ahead);
        for (int k = 0; k < 4; k++) {
            acc[i][k] = bl_dpbusd(acc[i][k], _mm512_and_si512(low, bit[k]), xk[k]);
            acc[i][k] = bl_dpbusd(acc[i][k], _mm512_and_si512(high, bit[k]), xk[k + 4]);
        }
    }
}

void bl_gemv_bs1_i8_mad__avx512(const bl_gemm_task *t) {
    _Alignas(64) uint8_t xt[SIGN_CHUNK_COLS];
    size_t ahead = bl_prefetch_ahead(GEMV_ROWS * t->w_row_bytes);
    __m512i bit[4];
    for (int k = 0; k < 4; k++) bit[k] = _mm512_set1_epi8((char)(1 << k));
    for (size_t c0 = 0; c0 < t->cols; c0 += SIGN_CHUNK_COLS) {
        size_t cols = t->cols - c0 < SIGN_CHUNK_COLS ? t->cols - c0 : SIGN_CHUNK_COLS;
        size_t whole = cols / 512 * 512;
        regroup_x(t->x->data + c0, cols, xt);
        for (size_t r = 0; r < t->rows; r += GEMV_ROWS) {
            const uint8_t *w[GEMV_ROWS];
            __m512i acc[GEMV_ROWS][4];
            for (int i = 0; i < GEMV_ROWS; i++) {
                w[i] = bl_group_row(t->w, t->w_row_bytes, r, i, t->rows) + c0 / 8;
                for (int k = 0; k < 4; k++) acc[i][k] = _mm512_setzero_si512();
            }
            for (size_t c = 0; c < whole; c += 512) {
                sign_step_i8(acc, w, xt + c, bit, ~(__mmask64)0, ahead);
                for (int i = 0; i < GEMV_ROWS; i++) w[i] += 64;
            }
            if (whole < cols) sign_step_i8(acc, w, xt + whole, bit, 0xFFFFFFFFu, ahead);
            __m512i selected[GEMV_ROWS];
            for (int i = 0; i < GEMV_ROWS; i++) selected[i] = bl_unscale4(acc[i], 1);
            store_sign_dots(t, r, selected, c0 == 0);
        }
    }
}

void bl_gemv_bs1_i16_mad__avx512(const bl_gemm_task *t) {
    const uint8_t *x = t->x->data;
    const __m512i ones = _mm512_set1_epi16(1);
    for (size_t r = 0; r < t->rows; r += GEMV_ROWS) {
        const uint8_t *w[GEMV_ROWS];
        __m512i acc[GEMV_ROWS][2];
        for (int i = 0; i < GEMV_ROWS; i++) {
            w[i] = bl_group_row(t->w, t->w_row_bytes, r, i, t->rows);
            acc[i][0] = acc[i][1] = _mm512_setzero_si512();
        }
        for (size_t c = 0; c < t->cols; c += 64) {
            __m512i x0 = _mm512_load_si512(x + 2 * c), x1 = _mm512_load_si512(x + 2 * c + 64);
            for (int i = 0; i < GEMV_ROWS; i++) {
                __m512i s0 = _mm512_maskz_mov_epi16(mask32_at(w[i] + c / 8), x0);
                __m512i s1 = _mm512_maskz_mov_epi16(mask32_at(w[i] + c / 8 + 4), x1);
                acc[i][0] = bl_dpwssd(acc[i][0], ones, s0);
                acc[i][1] = bl_dpwssd(acc[i][1], ones, s1);
            }
        }
        __m512i selected[GEMV_ROWS];
        for (int i = 0; i < GEMV_ROWS; i++) selected[i] = _mm512_add_epi32(acc[i][0], acc[i][1]);
        store_sign_dots(t, r, selected, 1);
    }
}

/* Codes for the shared GEMM: 1 where the bit is set. */
static void decode_bs1(const uint8_t *row, size_t first_col, size_t cols, uint8_t *codes) {
    const __m512i ones = _mm512_set1_epi8(1);
    for (size_t c = 0; c < cols; c += 64) {
        __mmask64 bits = mask64_at(row + (first_col + c) / 8);
        _mm512_store_si512(codes + c, _mm512_maskz_mov_epi8(bits, ones));
    }
}

/* The shared GEMM reads x as I8 or I16 from the task; both widths share it. */
void bl_gemm_bs1_i8_mad__avx512(const bl_gemm_task *t) {
    bl_avx512_int_gemm(t, decode_bs1, BL_CODES_SIGN);
}
void bl_gemm_bs1_i16_mad__avx512(const bl_gemm_task *t) {
    bl_avx512_int_gemm(t, decode_bs1, BL_CODES_SIGN);
}
