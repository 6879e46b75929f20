/* AVX-512 multiply-add kernels for the ternary types bt2 and bt1.
 *
 * All of them multiply codes c = trit + 1 in {0,1,2} with the activations and
 * subtract sum(x) at the end: dot = sum(c * x) - sum(x). Integer math
 * throughout, so results equal the scalar kernels bit for bit. GEMVs work on
 * GEMV_ROWS rows per activation load; GEMMs decode rows into byte codes and
 * share the tile in int_gemm.c.
 *
 * bt2 (byte j of a 64-byte block holds weights j + 64k in bits 2k, 2k+1):
 *   the I8 GEMV masks the block with 3 << 2k instead of shifting, which leaves
 *   4^k * c, and keeps one accumulator per k, scaled back exactly by an
 *   arithmetic shift at the end: per 256 weights 1 load + 4 and + 4 vpdpbusd.
 *
 * bt1 (byte q of a block holds the five base-3 digits of weights j + 64k as
 *   q = ceil(n * 256 / 243); digit k = floor(3 m_k / 256), m_k = q 3^k mod 256):
 *   the I8 GEMV never extracts a digit. With m_{k+1} = 3 m_k - 256 d_k,
 *     sum(d_k x) = (3 sum(m_k x) - sum(m_{k+1} x)) / 256,
 *   so it multiplies the bytes m_k themselves (m_{k+1} = m_k + m_k + m_k in
 *   byte lanes): per 320 weights 1 load + 10 add + 10 vpdpbusd, and one shift
 *   at the end. Decoding digits (for the GEMM and for I16) looks the low 7 bits
 *   of q up in 128-byte tables (vpermi2b) whose entries hold a digit for q and
 *   for q + 128, and vpmultishiftqb picks the right one by q's top bit.
 *
 * I16 activations: a 16-bit lane of packed bytes holds an even column (low
 * byte) and an odd column (high byte), so x is regrouped per 64 columns into
 * its even and its odd columns and the codes meet them without widening. */
#include "int_gemm.h"
#include "simd.h"

#define GEMV_ROWS 4

/* ---- bt2 ---- */

/* The four code vectors of a bt2 block, unscaled: weights 64k .. 64k + 63. */
BL_INLINE void bt2_codes(__m512i q, __m512i codes[4]) {
    const __m512i three = _mm512_set1_epi8(3);
    codes[0] = _mm512_and_si512(q, three);
    codes[1] = _mm512_and_si512(_mm512_srli_epi16(q, 2), three);
    codes[2] = _mm512_and_si512(_mm512_srli_epi16(q, 4), three);
    codes[3] = _mm512_and_si512(_mm512_srli_epi16(q, 6), three);
}

void bl_gemv_bt2_i8_mad__avx512(const bl_gemm_task *t) {
    const uint8_t *x = t->x->data;
    size_t blocks = t->cols / 256, ahead = bl_prefetch_ahead(GEMV_ROWS * t->w_row_bytes);
    __m128i offset = _mm_set1_epi32(-t->x->sums[0]);
    for (size_t r = 0; r < t->rows; r += GEMV_ROWS) {
        const uint8_t *w[GEMV_ROWS];
        __m512i acc[GEMV_ROWS][4];
        for (int i = 0; i < GEMV_ROWS; i++) {
            w[i] = bl_group_row(t->w, t->w_row_bytes, r, i, t->rows);
            for (int k = 0; k < 4; k++) acc[i][k] = _mm512_setzero_si512();
        }
        for (size_t b = 0; b < blocks; b++) {
            __m512i xk[4];
            for (int k = 0; k < 4; k++) xk[k] = _mm512_load_si512(x + 256 * b + 64 * k);
            for (int i = 0; i < GEMV_ROWS; i++) {
                __m512i q = bl_loadu(w[i] + 64 * b);
                bl_prefetch(w[i] + 64 * b + ahead);
                for (int k = 0; k < 4; k++) {
                    __m512i scaled = _mm512_and_si512(q, _mm512_set1_epi8((char)(3 << 2 * k)));
                    acc[i][k] = bl_dpbusd(acc[i][k], scaled, xk[k]);
                }
            }
        }
        __m512i dots[GEMV_ROWS];
        for (int i = 0; i < GEMV_ROWS; i++) dots[i] = bl_unscale4(acc[i], 2);
        __m128i sums = bl_sum4_epi32(dots[0], dots[1], dots[2], dots[3]);
        _mm_mask_storeu_epi32((int32_t *)t->out + r, bl_first_lanes(t->rows - r),
                              _mm_add_epi32(sums, offset));
    }
}

void bl_avx512_decode_bt2(const uint8_t *row, size_t first_col, size_t cols, uint8_t *codes) {
    for (size_t c = 0; c < cols; c += 256) {
        __m512i k[4];
        bt2_codes(bl_loadu(row + (first_col + c) / 4), k);
        for (int i = 0; i < 4; i++) _mm512_store_si512(codes + c + 64 * i, k[i]);
    }
}

/* GEMM for a few tokens (batched decode): the shared GEMM's decode pass, which
 * stores every code and loads it again, cost as much as the products up to 8
 * tokens (a 2-token GEMM took 5 GEMVs' time). Here the codes stay in
 * registers: per 256 weights and row 1 load, 3 shifts and 4 and, then 4
 * vpdpbusd per token; each 64 bytes of x is loaded once for the 4 rows (as a
 * memory operand of every vpdpbusd, 17 loads per 16 vpdpbusd filled L1's two
 * 32-byte ports; now 5: 1.02-1.14x on Zen 4). A tile is 4 rows x up to 4
 * tokens (16 accumulators); more tokens take more passes over the same 4 rows,
 * which the first pass left in L1. Passes of 4 tokens keep their activations
 * in L1 too: tiles of 2 rows x 8 tokens, whose 8 rows of x (55 KB for
 * ffn_down) did not fit, ran at 0.81x of two 4-token passes at 8 tokens. */
#define FEW_TOKENS 16
#define FEW_ROWS 4
#define FEW_PASS 4

BL_INLINE void bt2_few_tile(const bl_gemm_task *t, size_t r, size_t tok, const int tokens,
                            size_t ahead) {
    const int tile = (FEW_ROWS * tokens + 3) / 4 * 4; /* accumulators, padded to fours */
    const uint8_t *w[FEW_ROWS];
    __m512i acc[FEW_ROWS * FEW_PASS];
    for (int i = 0; i < FEW_ROWS; i++)
        w[i] = bl_group_row(t->w, t->w_row_bytes, r, (size_t)i, t->rows);
    /* unrolled, or GCC clears the whole array in memory (rep stos) at every
     * pass before zeroing the registers: 7% of the tile's time */
#pragma GCC unroll 16
    for (int a = 0; a < tile; a++) acc[a] = _mm512_setzero_si512();
    const uint8_t *x = t->x->data + tok * t->x->row_bytes;
    const size_t x_row_bytes = t->x->row_bytes;
    const __m512i three = _mm512_set1_epi8(3);
    for (size_t b = 0; b < t->cols / 256; b++) {
        __m512i q[FEW_ROWS];
        for (int i = 0; i < FEW_ROWS; i++) {
            q[i] = bl_loadu(w[i] + 64 * b);
            bl_prefetch(w[i] + 64 * b + ahead);
        }
        /* unrolled whole, or GCC keeps the accumulators in memory */
#pragma GCC unroll 16
        for (int k = 0; k < 4; k++) {
            __m512i xk[FEW_PASS];
#pragma GCC unroll 16
            for (int j = 0; j < tokens; j++)
                xk[j] = _mm512_load_si512(x + (size_t)j * x_row_bytes + 256 * b + 64 * k);
#pragma GCC unroll 16
            for (int i = 0; i < FEW_ROWS; i++) {
                __m512i codes = _mm512_and_si512(k ? _mm512_srli_epi16(q[i], 2 * k) : q[i], three);
#pragma GCC unroll 16
                for (int j = 0; j < tokens; j++)
                    acc[i * tokens + j] = bl_dpbusd(acc[i * tokens + j], codes, xk[j]);
            }
        }
    }
    _Alignas(16) int32_t dots[FEW_ROWS * FEW_PASS];
#pragma GCC unroll 16 /* likewise: a loop left rolled keeps acc[] on the stack */
    for (int a = 0; a < tile; a += 4)
        _mm_store_si128((__m128i *)(dots + a),
                        bl_sum4_epi32(acc[a], acc[a + 1], acc[a + 2], acc[a + 3]));
    int32_t *out = t->out;
    for (int i = 0; i < FEW_ROWS && r + (size_t)i < t->rows; i++)
        for (int j = 0; j < tokens; j++)
            out[(tok + (size_t)j) * t->out_stride + r + (size_t)i] =
                dots[i * tokens + j] - t->x->sums[tok + (size_t)j];
}

/* One instance per token count of a pass. */
__attribute__((noinline)) static void bt2_few_pass(const bl_gemm_task *t, size_t r, size_t tok,
                                                   size_t tokens, size_t ahead) {
    switch (tokens) {
    case 1: bt2_few_tile(t, r, tok, 1, ahead); break;
    case 2: bt2_few_tile(t, r, tok, 2, ahead); break;
    case 3: bt2_few_tile(t, r, tok, 3, ahead); break;
    default: bt2_few_tile(t, r, tok, 4, ahead); break;
    }
}

static void bt2_gemm_few(const bl_gemm_task *t) {
    size_t ahead = bl_prefetch_ahead(FEW_ROWS * t->w_row_bytes), n = t->x->n;
    for (size_t r = 0; r < t->rows; r += FEW_ROWS)
        for (size_t tok = 0; tok < n; tok += FEW_PASS)
            bt2_few_pass(t, r, tok, n - tok < FEW_PASS ? n - tok : FEW_PASS, ahead);
}

/* The shared GEMM reads x as I8 or I16 from the task; both widths share it. */
void bl_gemm_bt2_i8_mad__avx512(const bl_gemm_task *t) {
    if (t->x->n >= 2 && t->x->n <= FEW_TOKENS)
        bt2_gemm_few(t);
    else
        bl_avx512_int_gemm(t, bl_avx512_decode_bt2, BL_CODES_TERNARY);
}
void bl_gemm_bt2_i16_mad__avx512(const bl_gemm_task *t) {
    bl_avx512_int_gemm(t, bl_avx512_decode_bt2, BL_CODES_TERNARY);
}

/* ---- bt1 ---- */

/* For digit pairs (0,1), (2,3) and the last digit 4: entry i holds, in bit
 * pairs from the bottom, digit k of i, digit k of i + 128, digit k + 1 of i,
 * digit k + 1 of i + 128. Two 64-byte halves per table for vpermi2b. */
static _Alignas(64) uint8_t bt1_tables[3][128];

static unsigned bt1_digit(unsigned q, int k) {
    static const unsigned pow3[5] = {1, 3, 9, 27, 81};
    return (((q * pow3[k]) & 255u) * 3) >> 8;
}

/* Fills bt1_tables once when the avx512 table is built (register.c). */
void bl_avx512_bt1_tables_init(void) {
    for (int p = 0; p < 3; p++) {
        for (unsigned i = 0; i < 128; i++) {
            unsigned entry = bt1_digit(i, 2 * p) | bt1_digit(i + 128, 2 * p) << 2;
            if (p < 2) entry |= (bt1_digit(i, 2 * p + 1) | bt1_digit(i + 128, 2 * p + 1) << 2) << 4;
            bt1_tables[p][i] = (uint8_t)entry;
        }
    }
}

typedef struct bt1_luts {
    __m512i lo[3], hi[3];
} bt1_luts;

BL_INLINE bt1_luts bt1_luts_load(void) {
    bt1_luts l;
    for (int p = 0; p < 3; p++) {
        l.lo[p] = _mm512_load_si512(bt1_tables[p]);
        l.hi[p] = _mm512_load_si512(bt1_tables[p] + 64);
    }
    return l;
}

/* The multishift control that moves, in each byte, the bits for q (shift 0) or
 * q + 128 (shift 2) down to bit 0, plus `extra` (4 picks the pair's second
 * digit). */
BL_INLINE __m512i bt1_pick(__m512i q, int extra) {
    const __m512i byte_starts = _mm512_set1_epi64((long long)0x3830282018100800ull);
    __m512i start = _mm512_or_si512(byte_starts, _mm512_set1_epi8((char)extra));
    /* start | ((q >> 6) & 2): the top bit of each byte becomes a shift of 2 */
    return _mm512_ternarylogic_epi32(start, _mm512_srli_epi16(q, 6), _mm512_set1_epi8(2), 0xF8);
}

/* The five digit vectors of a bt1 block (weights 64k .. 64k + 63) in the low
 * 2 bits of each byte; the other bits are left over from the tables. */
BL_INLINE void bt1_digits(const bt1_luts *l, __m512i q, __m512i digits[5]) {
    __m512i pick = bt1_pick(q, 0), pick_second = bt1_pick(q, 4);
    for (int p = 0; p < 3; p++) {
        __m512i entry = _mm512_permutex2var_epi8(l->lo[p], q, l->hi[p]);
        digits[2 * p] = _mm512_multishift_epi64_epi8(pick, entry);
        if (p < 2) digits[2 * p + 1] = _mm512_multishift_epi64_epi8(pick_second, entry);
    }
}

/* The five code vectors of a bt1 block, one code per byte. */
BL_INLINE void bt1_codes(const bt1_luts *l, __m512i q, __m512i codes[5]) {
    bt1_digits(l, q, codes);
    for (int k = 0; k < 5; k++) codes[k] = _mm512_and_si512(codes[k], _mm512_set1_epi8(3));
}

/* The multiply trick of the header: `now` sums m_k x, `next` sums m_{k+1} x.
 * Per 32-bit lane 3 now - next = 256 * (the lane's digit dot) exactly, and
 * that dot stays far inside int32 (|x| <= 127, 8 products per block). */
void bl_gemv_bt1_i8_mad__avx512(const bl_gemm_task *t) {
    const uint8_t *x = t->x->data;
    size_t blocks = t->cols / 320, ahead = bl_prefetch_ahead(GEMV_ROWS * t->w_row_bytes);
    __m128i offset = _mm_set1_epi32(-t->x->sums[0]);
    for (size_t r = 0; r < t->rows; r += GEMV_ROWS) {
        const uint8_t *w[GEMV_ROWS];
        __m512i now[GEMV_ROWS], next[GEMV_ROWS];
        for (int i = 0; i < GEMV_ROWS; i++) {
            w[i] = bl_group_row(t->w, t->w_row_bytes, r, i, t->rows);
            now[i] = next[i] = _mm512_setzero_si512();
        }
        for (size_t b = 0; b < blocks; b++) {
            __m512i xk[5];
            for (int k = 0; k < 5; k++) xk[k] = _mm512_load_si512(x + 320 * b + 64 * k);
            for (int i = 0; i < GEMV_ROWS; i++) {
                __m512i m = bl_loadu(w[i] + 64 * b);
                bl_prefetch(w[i] + 64 * b + ahead);
                for (int k = 0; k < 5; k++) {
                    now[i] = bl_dpbusd(now[i], m, xk[k]);
                    m = _mm512_add_epi8(m, _mm512_add_epi8(m, m));
                    next[i] = bl_dpbusd(next[i], m, xk[k]);
                }
            }
        }
        __m512i dots[GEMV_ROWS];
        for (int i = 0; i < GEMV_ROWS; i++) {
            __m512i now3 = _mm512_add_epi32(now[i], _mm512_add_epi32(now[i], now[i]));
            dots[i] = _mm512_srai_epi32(_mm512_sub_epi32(now3, next[i]), 8);
        }
        __m128i sums = bl_sum4_epi32(dots[0], dots[1], dots[2], dots[3]);
        _mm_mask_storeu_epi32((int32_t *)t->out + r, bl_first_lanes(t->rows - r),
                              _mm_add_epi32(sums, offset));
    }
}

void bl_avx512_decode_bt1(const uint8_t *row, size_t first_col, size_t cols, uint8_t *codes) {
    const bt1_luts l = bt1_luts_load();
    for (size_t c = 0; c < cols; c += 320) {
        __m512i k[5];
        bt1_codes(&l, bl_loadu(row + (first_col + c) / 5), k);
        for (int i = 0; i < 5; i++) _mm512_store_si512(codes + c + 64 * i, k[i]);
    }
}

void bl_gemm_bt1_i8_mad__avx512(const bl_gemm_task *t) {
    bl_avx512_int_gemm(t, bl_avx512_decode_bt1, BL_CODES_TERNARY);
}
void bl_gemm_bt1_i16_mad__avx512(const bl_gemm_task *t) {
    bl_avx512_int_gemm(t, bl_avx512_decode_bt1, BL_CODES_TERNARY);
}

/* ---- 16-bit activations ---- */

#define I16_CHUNK_COLS 5120 /* regrouped x per pass: whole blocks of both types */

/* Per 64 columns: their 32 even, then their 32 odd activations. */
static void regroup_x_i16(const uint8_t *x, size_t cols, uint8_t *xt) {
    _Alignas(64) uint16_t even[32], odd[32];
    for (int j = 0; j < 32; j++) {
        even[j] = (uint16_t)(2 * j);
        odd[j] = (uint16_t)(2 * j + 1);
    }
    const __m512i even_lanes = _mm512_load_si512(even), odd_lanes = _mm512_load_si512(odd);
    for (size_t c = 0; c < cols; c += 64) {
        __m512i a = _mm512_load_si512(x + 2 * c), b = _mm512_load_si512(x + 2 * c + 64);
        _mm512_store_si512(xt + 2 * c, _mm512_permutex2var_epi16(a, even_lanes, b));
        _mm512_store_si512(xt + 2 * c + 64, _mm512_permutex2var_epi16(a, odd_lanes, b));
    }
}

/* Writes (first chunk: with -sum(x)) or adds the group's dots into out. */
BL_INLINE void store_ternary_dots(const bl_gemm_task *t, size_t r, const __m512i dots[4],
                                  int first_chunk) {
    __m128i sums = bl_sum4_epi32(dots[0], dots[1], dots[2], dots[3]);
    int32_t *out = (int32_t *)t->out + r;
    __mmask8 valid = bl_first_lanes(t->rows - r);
    __m128i base = first_chunk ? _mm_set1_epi32(-t->x->sums[0]) : _mm_maskz_loadu_epi32(valid, out);
    _mm_mask_storeu_epi32(out, valid, _mm_add_epi32(base, sums));
}

/* bt2: codes masked in place (scale 4^k, one accumulator per k) as in the I8
 * GEMV; per 16-bit lane an accumulator gains at most 4 * 128 * 32767 per
 * block, which stays in int32 for rows up to 32768 columns. */
BL_INLINE void bt2_block_i16(__m512i acc[4], const uint8_t *w, const uint8_t *xt,
                             size_t ahead) {
    __m512i even = bl_loadu(w), odd = _mm512_srli_epi16(even, 8);
    bl_prefetch(w + ahead);
    for (int k = 0; k < 4; k++) {
        const __m512i mask = _mm512_set1_epi16((short)(3 << 2 * k));
        const uint8_t *xk = xt + 128 * k;
        acc[k] = bl_dpwssd(acc[k], _mm512_and_si512(even, mask), _mm512_load_si512(xk));
        acc[k] = bl_dpwssd(acc[k], _mm512_and_si512(odd, mask), _mm512_load_si512(xk + 64));
    }
}

void bl_gemv_bt2_i16_mad__avx512(const bl_gemm_task *t) {
    _Alignas(64) uint8_t xt[2 * I16_CHUNK_COLS];
    size_t ahead = bl_prefetch_ahead(GEMV_ROWS * t->w_row_bytes);
    for (size_t c0 = 0; c0 < t->cols; c0 += I16_CHUNK_COLS) {
        size_t cols = t->cols - c0 < I16_CHUNK_COLS ? t->cols - c0 : I16_CHUNK_COLS;
        regroup_x_i16(t->x->data + 2 * c0, cols, xt);
        for (size_t r = 0; r < t->rows; r += GEMV_ROWS) {
            const uint8_t *w[GEMV_ROWS];
            __m512i acc[GEMV_ROWS][4];
            for (int i = 0; i < GEMV_ROWS; i++) {
                w[i] = bl_group_row(t->w, t->w_row_bytes, r, i, t->rows) + c0 / 4;
                for (int k = 0; k < 4; k++) acc[i][k] = _mm512_setzero_si512();
            }
            for (size_t c = 0; c < cols; c += 256)
                for (int i = 0; i < GEMV_ROWS; i++)
                    bt2_block_i16(acc[i], w[i] + c / 4, xt + 2 * c, ahead);
            __m512i dots[GEMV_ROWS];
            for (int i = 0; i < GEMV_ROWS; i++) dots[i] = bl_unscale4(acc[i], 2);
            store_ternary_dots(t, r, dots, c0 == 0);
        }
    }
}

/* bt1: the five digit vectors from the tables, unscaled (the multiply trick
 * would overflow with 16-bit activations). */
BL_INLINE __m512i bt1_block_i16(__m512i acc, const bt1_luts *l, const uint8_t *w,
                                const uint8_t *xt, size_t ahead) {
    const __m512i three = _mm512_set1_epi16(3);
    __m512i digits[5];
    bt1_digits(l, bl_loadu(w), digits);
    bl_prefetch(w + ahead);
    for (int k = 0; k < 5; k++) {
        __m512i even = _mm512_and_si512(digits[k], three);
        __m512i odd = _mm512_and_si512(_mm512_srli_epi16(digits[k], 8), three);
        acc = bl_dpwssd(acc, even, _mm512_load_si512(xt + 128 * k));
        acc = bl_dpwssd(acc, odd, _mm512_load_si512(xt + 128 * k + 64));
    }
    return acc;
}

void bl_gemv_bt1_i16_mad__avx512(const bl_gemm_task *t) {
    _Alignas(64) uint8_t xt[2 * I16_CHUNK_COLS];
    size_t ahead = bl_prefetch_ahead(GEMV_ROWS * t->w_row_bytes);
    const bt1_luts l = bt1_luts_load();
    for (size_t c0 = 0; c0 < t->cols; c0 += I16_CHUNK_COLS) {
        size_t cols = t->cols - c0 < I16_CHUNK_COLS ? t->cols - c0 : I16_CHUNK_COLS;
        regroup_x_i16(t->x->data + 2 * c0, cols, xt);
        for (size_t r = 0; r < t->rows; r += GEMV_ROWS) {
            const uint8_t *w[GEMV_ROWS];
            __m512i acc[GEMV_ROWS];
            for (int i = 0; i < GEMV_ROWS; i++) {
                w[i] = bl_group_row(t->w, t->w_row_bytes, r, i, t->rows) + c0 / 5;
                acc[i] = _mm512_setzero_si512();
            }
            for (size_t c = 0; c < cols; c += 320)
                for (int i = 0; i < GEMV_ROWS; i++)
                    acc[i] = bt1_block_i16(acc[i], &l, w[i] + c / 5, xt + 2 * c, ahead);
            store_ternary_dots(t, r, acc, c0 == 0);
        }
    }
}
