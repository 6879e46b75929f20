/* AVX-512 GEMVs for q8_0 and q4_0 weights with Q8 activations (blocks of
 * 32: float d, int32 sum, int8 q[32]). Their GEMMs, which turn blocks around
 * instead of summing trees, are in quant_gemm.c.
 *
 * The float order, which every kernel here, the GEMMs of quant_gemm.c and the
 * AMX q8_0 kernel (kernels/amx/quant.c) keep, so that a token's result is the same alone or in
 * any batch: per (row, token), each block's dot is an exact int32 sum; its
 * float value times (weight d * activation d) is FMA'd into one of two
 * chains, even blocks and odd blocks, in block order, from +0; the result is
 * even chain + odd chain.
 *
 * Two blocks (64 weights) at a time, 8 rows per tile: byte permutes gather
 * the two blocks' weights of a row into one vector, one vpdpbusd yields in
 * each half 8 partial dots of one block, and a tree of unpacks and adds over
 * the 8 rows' vectors sums them into one vector of block dots, in lanes
 *   0-3: rows 0-3 even block | 4-7: rows 0-3 odd | 8-11: rows 4-7 even | 12-15: rows 4-7 odd,
 * the layout of the chains (one accumulator per token). vpdpbusd takes
 * unsigned weights, so q8_0 weights are biased by +128 (xor 0x80) and q4_0
 * nibbles are unsigned already; the bias times the block's activation sum
 * (128 * sum or 8 * sum) is taken off by starting each of its 8 partial dots
 * from -bias / 8.
 * Per 64 weights and 8 rows: 8 vpdpbusd, 21 to sum, 1 int->float, 1 mul,
 * 1 fma, 8-16 loads, 16 permutes, 7 blends, 1 f16 convert. */
#include "../../types/quant_blocks.h"
#include "../kernels.h"
#include "simd.h"

typedef enum quant_type { Q8_0, Q4_0 } quant_type;

typedef struct pair_weights {
    __m512i q;     /* 64 unsigned weights                                  */
    __m256i scale; /* 16 f16: block 0's d in words 0-3 and 8-11, block 1's in
                    * words 4-7 and 12-15 (the chain layout; one row's) */
} pair_weights;

typedef struct pair_acts {
    __m512i q;     /* 64 int8 activations                                 */
    __m512 scale;  /* d in the chain layout, as for the weights           */
    __m512i start; /* -bias * sum / 8 in each lane of the block (0-7, 8-15) */
} pair_acts;

/* Byte index vectors, filled once when the avx512 table is built (register.c). */
static _Alignas(64) uint8_t q8_0_weights[64], q8_0_scales[64], q4_0_nibbles[64],
    q4_0_scales[64], act_bytes[64];

void bl_avx512_quant_tables_init(void) {
    for (int i = 0; i < 64; i++) {
        int word = i / 2, byte = i % 2;
        /* q8_0 pair: block 0 = bytes 0-33, block 1 = bytes 34-67; the second
         * load starts 4 bytes in, so byte 4 + i sits at i in it */
        q8_0_weights[i] = (uint8_t)(i < 32 ? 2 + i : 64 + i);
        int odd_word = word / 4 % 2; /* the chain layout */
        q8_0_scales[i] = (uint8_t)((odd_word ? BL_Q8_0_BYTES : 0) + byte);
        /* q4_0 pair: block 0 = bytes 0-17, block 1 = bytes 18-35; each block's
         * 16 bytes twice (low nibbles, then high nibbles); block 1's bytes
         * 20-35 come from the second load, which starts at byte 4 */
        q4_0_nibbles[i] = (uint8_t)(i < 32 ? 2 + i % 16 : 64 + 16 + i % 16);
        q4_0_scales[i] = (uint8_t)((odd_word ? BL_Q4_0_BYTES : 0) + byte);
        /* activation pair: q at bytes 8-39 and 48-79; the second load starts
         * 16 bytes in */
        act_bytes[i] = (uint8_t)(i < 32 ? 8 + i : 64 + i);
    }
}

/* The weights of blocks 2p and 2p + 1 of a row (`two` = 0: block 2p only,
 * the second reads as zero). */
BL_INLINE pair_weights load_weights(const uint8_t *row, size_t p, int two, const quant_type type) {
    pair_weights w;
    __m512i a;
    if (type == Q8_0) {
        const uint8_t *at = row + 2 * BL_Q8_0_BYTES * p;
        __m512i b;
        if (two) {
            a = bl_loadu(at);
            b = bl_loadu(at + 4);
        } else {
            a = _mm512_maskz_loadu_epi8((1ull << BL_Q8_0_BYTES) - 1, at);
            b = _mm512_setzero_si512();
        }
        __m512i q = _mm512_permutex2var_epi8(a, _mm512_load_si512(q8_0_weights), b);
        w.q = _mm512_xor_si512(q, _mm512_set1_epi8((char)0x80));
        w.scale =
            _mm512_castsi512_si256(_mm512_permutexvar_epi8(_mm512_load_si512(q8_0_scales), a));
    } else {
        /* a pair is 36 bytes: a holds bytes 0-31 and b bytes 4-35 (plain loads:
         * masked loads reaching over a page boundary are slow) */
        const uint8_t *at = row + 2 * BL_Q4_0_BYTES * p;
        __m512i b;
        if (two) {
            a = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)at));
            b = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(at + 4)));
        } else {
            a = _mm512_maskz_loadu_epi8((1ull << BL_Q4_0_BYTES) - 1, at);
            b = _mm512_setzero_si512();
        }
        __m512i nibbles = _mm512_permutex2var_epi8(a, _mm512_load_si512(q4_0_nibbles), b);
        /* the second 16 bytes of each block take the high nibbles */
        const long long high = 0x0004000400040004ll;
        const __m512i shift = _mm512_set_epi64(high, high, 0, 0, high, high, 0, 0);
        w.q = _mm512_and_si512(_mm512_srlv_epi16(nibbles, shift), _mm512_set1_epi8(0x0F));
        w.scale =
            _mm512_castsi512_si256(_mm512_permutexvar_epi8(_mm512_load_si512(q4_0_scales), a));
    }
    return w;
}

BL_INLINE pair_acts load_acts(const uint8_t *row, size_t p, int two, const quant_type type) {
    const uint8_t *at = row + 2 * sizeof(bl_q8_block) * p;
    __m512i c = two ? bl_loadu(at) : _mm512_maskz_loadu_epi8((1ull << 40) - 1, at);
    __m512i d = two ? bl_loadu(at + 16) : _mm512_maskz_loadu_epi8((1ull << 24) - 1, at + 16);
    pair_acts x;
    x.q = _mm512_permutex2var_epi8(c, _mm512_load_si512(act_bytes), d);
    /* 32-bit lanes 0 / 1 hold block 0's d / sum, lanes 10 / 11 block 1's */
    const __m512i scale_lanes =
        _mm512_set_epi32(10, 10, 10, 10, 0, 0, 0, 0, 10, 10, 10, 10, 0, 0, 0, 0);
    const __m512i sum_lanes =
        _mm512_set_epi32(11, 11, 11, 11, 11, 11, 11, 11, 1, 1, 1, 1, 1, 1, 1, 1);
    x.scale = _mm512_permutexvar_ps(scale_lanes, _mm512_castsi512_ps(c));
    __m512i sum = _mm512_permutexvar_epi32(sum_lanes, c);
    /* q8_0: -128 * sum / 8; q4_0: -8 * sum / 8 */
    x.start = _mm512_sub_epi32(_mm512_setzero_si512(),
                               type == Q8_0 ? _mm512_slli_epi32(sum, 4) : sum);
    return x;
}

/* The block dots of 8 rows (d[i]: row i's 16 partial dots, block 0 in lanes
 * 0-7, block 1 in 8-15) summed into the chain layout (header). */
BL_INLINE __m512i block_dots(const __m512i d[8]) {
    __m512i pairs[4];
    for (int i = 0; i < 4; i++) /* per 128-bit lane: 2 partial sums of each row */
        pairs[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(d[2 * i], d[2 * i + 1]),
                                    _mm512_unpackhi_epi32(d[2 * i], d[2 * i + 1]));
    __m512i quads[2]; /* per 128-bit lane L: rows 4h .. 4h + 3, summed over L */
    for (int h = 0; h < 2; h++)
        quads[h] = _mm512_add_epi32(_mm512_unpacklo_epi64(pairs[2 * h], pairs[2 * h + 1]),
                                    _mm512_unpackhi_epi64(pairs[2 * h], pairs[2 * h + 1]));
    /* lanes L0 + L1 are block 0, L2 + L3 block 1 */
    return _mm512_add_epi32(_mm512_shuffle_i32x4(quads[0], quads[1], 0x88),
                            _mm512_shuffle_i32x4(quads[0], quads[1], 0xdd));
}

/* The 8 rows' weight scales in the chain layout: row i's words from its own
 * vector (rows 0-3: words i, 4 + i; rows 4-7: words 4 + i, 8 + i). */
BL_INLINE __m512 chain_scales(const pair_weights w[8]) {
    __m256i words = w[0].scale;
    for (int i = 1; i < 8; i++) {
        int lane = i < 4 ? i : 4 + i;
        words = _mm256_mask_blend_epi16((__mmask16)(0x11u << lane), words, w[i].scale);
    }
    return _mm512_cvtph_ps(words);
}

/* One pair of blocks of 8 rows into the token's chains. */
BL_INLINE __m512 quant_step(__m512 acc, const uint8_t *const w[8], const uint8_t *x, size_t p,
                            int two, const quant_type type, size_t ahead) {
    const size_t pair_bytes = 2 * (type == Q8_0 ? BL_Q8_0_BYTES : BL_Q4_0_BYTES);
    pair_weights wv[8];
    for (int i = 0; i < 8; i++) {
        wv[i] = load_weights(w[i], p, two, type);
        bl_prefetch_block(w[i] + pair_bytes * p + ahead, pair_bytes);
    }
    __m512 w_scale = chain_scales(wv);
    pair_acts xv = load_acts(x, p, two, type);
    __m512i d[8];
    for (int i = 0; i < 8; i++) d[i] = bl_dpbusd(xv.start, wv[i].q, xv.q);
    __m512 dots = _mm512_cvtepi32_ps(block_dots(d));
    return _mm512_fmadd_ps(dots, _mm512_mul_ps(w_scale, xv.scale), acc);
}

/* out for rows r .. r + 7 (those that exist): each row's even chain + odd chain. */
BL_INLINE void store_chains(const bl_gemm_task *t, __m512 acc, size_t r) {
    size_t left = t->rows - r;
    __mmask8 rows = left >= 8 ? (__mmask8)0xff : (__mmask8)((1u << left) - 1);
    __m512 sum = _mm512_add_ps(acc, _mm512_shuffle_f32x4(acc, acc, 0xb1));
    __m256 out = _mm512_castps512_ps256(_mm512_maskz_compress_ps(0x0f0f, sum));
    _mm256_mask_storeu_ps((float *)t->out + r, rows, out);
}

/* 8 rows over the whole row, asking for the weights `ahead` bytes on. */
BL_INLINE void quant_tile(const bl_gemm_task *t, size_t r, const quant_type type, size_t ahead) {
    const uint8_t *w[8];
    for (int i = 0; i < 8; i++) w[i] = bl_group_row(t->w, t->w_row_bytes, r, (size_t)i, t->rows);
    const uint8_t *x = t->x->data;
    __m512 acc = _mm512_setzero_ps();
    size_t blocks = t->cols / BL_Q_BLOCK;
    for (size_t p = 0; p < blocks / 2; p++) acc = quant_step(acc, w, x, p, 1, type, ahead);
    if (blocks % 2) acc = quant_step(acc, w, x, blocks / 2, 0, type, ahead);
    store_chains(t, acc, r);
}

BL_INLINE void quant_gemv(const bl_gemm_task *t, const quant_type type) {
    size_t ahead = bl_prefetch_ahead(8 * t->w_row_bytes);
    for (size_t r = 0; r < t->rows; r += 8) quant_tile(t, r, type, ahead);
}

void bl_gemv_q8_0_q8_mad__avx512(const bl_gemm_task *t) { quant_gemv(t, Q8_0); }
void bl_gemv_q4_0_q8_mad__avx512(const bl_gemm_task *t) { quant_gemv(t, Q4_0); }
