/* Lookups of sixteen weight rows at once, the pieces the AVX2 kernels of the
 * 1- and 2-bit types share (q1_q2_lut.c, bs1_lut16.c): the transpose that puts
 * sixteen rows in the lanes of a vector, and the tables a nibble looks up.
 *
 * Transpose: byte k of 16 code bytes holds nibble groups 2k (low nibble) and
 * 2k + 1 (high). Rows i and i + 8 share a vector (one per 128-bit lane);
 * three unpack stages and a vpermq turn sixteen rows into y[j] = [byte 2j of
 * rows 0..15 | byte 2j + 1 of rows 0..15], so the low nibbles of y[j] index
 * groups 4j (lane 0) and 4j + 2 (lane 1), its high nibbles groups 4j + 1 and
 * 4j + 3.
 *
 * Tables, per token and nibble group g (the columns one nibble covers): the
 * 16 partial dots the nibble's values give, each in [-508, 508], plus 512 so
 * that they lie in [4, 1020], split into 5-bit halves lo + 32 hi. One vpshufb
 * finds each half; up to 8 groups add up in a byte (8 x 31 <= 255), and
 * vpmaddubsw joins lo + 32 hi into int16. The tables of a quad of groups are
 * stored in the transpose's order, 128 bytes:
 * [lo 4j | lo 4j+2] [hi 4j | hi 4j+2] [lo 4j+1 | lo 4j+3] [hi 4j+1 | hi 4j+3]. */
#ifndef BL_AVX2_LUT16_H
#define BL_AVX2_LUT16_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define LUT16_ROWS 16
#define LUT16_UNIT_BYTES 16 /* code bytes of a row that one transpose takes */
#define LUT16_QUAD_BYTES 128
/* Added to every entry so that both 5-bit halves are unsigned. */
#define LUT16_ENTRY_BIAS 512

typedef uint8_t lut16_quad[LUT16_QUAD_BYTES]; /* the tables of four groups */

/* Tokens whose tables one pass over the rows uses. The tables of whole rows,
 * up to LUT16_HEAP_QUADS (2 MiB), come from the heap, so that a pass reads
 * each weight row once, front to back; wider rows (or a failed allocation)
 * take passes over chunks of columns with the caller's LUT16_STACK_QUADS
 * (32 KiB) of tables on the stack, with the same results. */
#define LUT16_PASS_TOKENS 4
#define LUT16_HEAP_QUADS 16384
#define LUT16_STACK_QUADS 256

typedef struct lut16_tables {
    lut16_quad *quad; /* token t's tables at quad + t * per_token    */
    size_t per_token;
    size_t chunk;     /* columns (whole blocks) the tables of a pass cover */
    lut16_quad *heap; /* what to free: NULL when the tables are on the stack */
} lut16_tables;

/* The tables of a GEMV/GEMM of n tokens over cols columns, quad_cols of them
 * to a quad, in blocks of block_cols; free with free(tables.heap). */
static inline lut16_tables lut16_tables_for(size_t n, size_t cols, size_t quad_cols,
                                            size_t block_cols,
                                            lut16_quad stack[LUT16_STACK_QUADS]) {
    size_t pass = n < LUT16_PASS_TOKENS ? n : LUT16_PASS_TOKENS, quads = pass * (cols / quad_cols);
    lut16_tables t;
    t.heap = quads <= LUT16_HEAP_QUADS ? aligned_alloc(32, quads * sizeof(lut16_quad)) : NULL;
    t.chunk = t.heap ? cols
                     : LUT16_STACK_QUADS / LUT16_PASS_TOKENS * quad_cols / block_cols * block_cols;
    t.quad = t.heap ? t.heap : stack;
    t.per_token = t.chunk / quad_cols;
    return t;
}

static inline lut16_quad *lut16_token_quads(const lut16_tables *t, int token) {
    return t->quad + (size_t)token * t->per_token;
}

/* The 16 bytes at `bytes` of sixteen rows (stride apart) into y[0..7]. */
static inline __attribute__((always_inline)) void lut16_transpose(const uint8_t *bytes,
                                                                  size_t stride, __m256i y[8]) {
    __m256i a[8], p[8], q[8];
    const size_t half = 8 * stride;
    for (int i = 0; i < 8; i++, bytes += stride)
        a[i] = _mm256_loadu2_m128i((const __m128i *)(bytes + half), (const __m128i *)bytes);
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

/* Entries e (one per 16-bit lane) biased and split into 5-bit halves, as
 * [lo 0..15 | hi 0..15]. */
static inline __attribute__((always_inline)) __m256i lut16_halves(__m256i e) {
    e = _mm256_add_epi16(e, _mm256_set1_epi16(LUT16_ENTRY_BIAS));
    /* per lane: its eight entries' low halves, then their high halves */
    __m256i halves = _mm256_packus_epi16(_mm256_and_si256(e, _mm256_set1_epi16(31)),
                                         _mm256_srli_epi16(e, 5));
    return _mm256_permute4x64_epi64(halves, _MM_SHUFFLE(3, 1, 2, 0));
}

/* The 16 entries of a group of four sign weights, bit b of e being column b:
 * sum_b (bit b of e ? set : -set) x[b], set = +1 or -1. */
static inline __attribute__((always_inline)) __m256i lut16_sign_entries(const int8_t *x,
                                                                        int set) {
    /* lane e of sign_b: +1 where bit b of e is set, -1 where clear */
    const __m256i sign[4] = {
        _mm256_setr_epi16(-1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1),
        _mm256_setr_epi16(-1, -1, 1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1, 1, 1),
        _mm256_setr_epi16(-1, -1, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1),
        _mm256_setr_epi16(-1, -1, -1, -1, -1, -1, -1, -1, 1, 1, 1, 1, 1, 1, 1, 1)};
    __m256i e = _mm256_setzero_si256();
    for (int b = 0; b < 4; b++)
        e = _mm256_add_epi16(e, _mm256_sign_epi16(_mm256_set1_epi16((int16_t)(set * x[b])),
                                                  sign[b]));
    return lut16_halves(e);
}

/* Stores the halves of groups 4j .. 4j + 3 as one quad. */
static inline __attribute__((always_inline)) void lut16_store_quad(__m256i g0, __m256i g1,
                                                                   __m256i g2, __m256i g3,
                                                                   uint8_t *quad) {
    __m256i *dst = (__m256i *)quad;
    _mm256_store_si256(dst + 0, _mm256_permute2x128_si256(g0, g2, 0x20));
    _mm256_store_si256(dst + 1, _mm256_permute2x128_si256(g0, g2, 0x31));
    _mm256_store_si256(dst + 2, _mm256_permute2x128_si256(g1, g3, 0x20));
    _mm256_store_si256(dst + 3, _mm256_permute2x128_si256(g1, g3, 0x31));
}

/* Entry e of group g (counted from the quads' first column), unbiased. */
static inline int32_t lut16_entry(const lut16_quad *quad, size_t g, unsigned e) {
    const uint8_t *lo = quad[g / 4] + (g & 1) * 64 + (g & 2) * 8;
    return 32 * lo[32 + e] + lo[e] - LUT16_ENTRY_BIAS;
}

/* Adds y's lookups (both nibbles) in the quad's tables to the byte sums lo, hi. */
static inline __attribute__((always_inline)) void lut16_lookup(__m256i y, const uint8_t *quad,
                                                               __m256i *lo, __m256i *hi) {
    const __m256i low_nibbles = _mm256_set1_epi8(15);
    const __m256i *tq = (const __m256i *)quad;
    __m256i lo_idx = _mm256_and_si256(y, low_nibbles);
    __m256i hi_idx = _mm256_and_si256(_mm256_srli_epi16(y, 4), low_nibbles);
    *lo = _mm256_add_epi8(*lo, _mm256_add_epi8(_mm256_shuffle_epi8(_mm256_load_si256(tq), lo_idx),
                                               _mm256_shuffle_epi8(_mm256_load_si256(tq + 2),
                                                                   hi_idx)));
    *hi = _mm256_add_epi8(*hi, _mm256_add_epi8(
                                   _mm256_shuffle_epi8(_mm256_load_si256(tq + 1), lo_idx),
                                   _mm256_shuffle_epi8(_mm256_load_si256(tq + 3), hi_idx)));
}

/* Byte sums lo, hi joined into lo + 32 hi per row: rows 0..7 and 8..15, each
 * lane still holding its own groups' sums (int16). */
static inline __attribute__((always_inline)) void lut16_join(__m256i lo, __m256i hi,
                                                             __m256i rows[2]) {
    const __m256i halves = _mm256_set1_epi16(32 << 8 | 1); /* lo + 32 hi */
    rows[0] = _mm256_maddubs_epi16(_mm256_unpacklo_epi8(lo, hi), halves);
    rows[1] = _mm256_maddubs_epi16(_mm256_unpackhi_epi8(lo, hi), halves);
}

#endif
