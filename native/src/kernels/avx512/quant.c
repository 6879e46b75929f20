/* AVX-512 kernels for q8_0 and q4_0 weights with Q8 activations (blocks of
 * 32: float d, int32 sum, int8 q[32]).
 *
 * Two blocks (64 weights) at a time: byte permutes gather the two blocks'
 * weights into one vector and their f16 scales into lanes 0-7 / 8-15, so one
 * vpdpbusd yields, in each half, 8 partial dots of one block. vpdpbusd takes
 * unsigned weights, so q8_0 weights are biased by +128 (xor 0x80) and q4_0
 * nibbles are unsigned already; the bias times the block's activation sum
 * (128 * sum or 8 * sum) is taken off by starting the dot from -bias / 8 in
 * each of its 8 lanes. The int32 lanes become float and are FMA'd with the
 * product of both scales into one accumulator per (row, token), so a row's
 * result does not depend on its tile.
 * Per 64 weights and row: 1-2 loads, 2 permutes, 1 f16 convert, (1 xor or
 * 1 shift + 1 and), 1 vpdpbusd, 1 int->float, 1 mul, 1 fma. */
#include "../kernels.h"
#include "float_tiling.h"
#include "simd.h"

typedef enum quant_type { Q8_0, Q4_0 } quant_type;

typedef struct pair_weights {
    __m512i q;     /* 64 unsigned weights                    */
    __m512 scale;  /* lanes 0-7: block 0's d, 8-15: block 1's */
} pair_weights;

typedef struct pair_acts {
    __m512i q;     /* 64 int8 activations                                 */
    __m512 scale;  /* as for the weights                                  */
    __m512i start; /* -bias * sum / 8 in each lane of the block           */
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
        q8_0_scales[i] = (uint8_t)((word < 8 ? 0 : 34) + byte);
        /* q4_0 pair: block 0 = bytes 0-17, block 1 = bytes 18-35; each block's
         * 16 bytes twice (low nibbles, then high nibbles); block 1's bytes
         * 20-35 come from the second load, which starts at byte 4 */
        q4_0_nibbles[i] = (uint8_t)(i < 32 ? 2 + i % 16 : 64 + 16 + i % 16);
        q4_0_scales[i] = (uint8_t)((word < 8 ? 0 : 18) + byte);
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
        const uint8_t *at = row + 68 * p;
        __m512i b;
        if (two) {
            a = bl_loadu(at);
            b = bl_loadu(at + 4);
        } else {
            a = _mm512_maskz_loadu_epi8((1ull << 34) - 1, at);
            b = _mm512_setzero_si512();
        }
        __m512i q = _mm512_permutex2var_epi8(a, _mm512_load_si512(q8_0_weights), b);
        w.q = _mm512_xor_si512(q, _mm512_set1_epi8((char)0x80));
        w.scale = _mm512_cvtph_ps(
            _mm512_castsi512_si256(_mm512_permutexvar_epi8(_mm512_load_si512(q8_0_scales), a)));
    } else {
        /* a pair is 36 bytes: a holds bytes 0-31 and b bytes 4-35 (plain loads:
         * masked loads reaching over a page boundary are slow) */
        const uint8_t *at = row + 36 * p;
        __m512i b;
        if (two) {
            a = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)at));
            b = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(at + 4)));
        } else {
            a = _mm512_maskz_loadu_epi8((1ull << 18) - 1, at);
            b = _mm512_setzero_si512();
        }
        __m512i nibbles = _mm512_permutex2var_epi8(a, _mm512_load_si512(q4_0_nibbles), b);
        /* the second 16 bytes of each block take the high nibbles */
        const long long high = 0x0004000400040004ll;
        const __m512i shift = _mm512_set_epi64(high, high, 0, 0, high, high, 0, 0);
        w.q = _mm512_and_si512(_mm512_srlv_epi16(nibbles, shift), _mm512_set1_epi8(0x0F));
        w.scale = _mm512_cvtph_ps(
            _mm512_castsi512_si256(_mm512_permutexvar_epi8(_mm512_load_si512(q4_0_scales), a)));
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
        _mm512_set_epi32(10, 10, 10, 10, 10, 10, 10, 10, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i sum_lanes =
        _mm512_set_epi32(11, 11, 11, 11, 11, 11, 11, 11, 1, 1, 1, 1, 1, 1, 1, 1);
    x.scale = _mm512_permutexvar_ps(scale_lanes, _mm512_castsi512_ps(c));
    __m512i sum = _mm512_permutexvar_epi32(sum_lanes, c);
    /* q8_0: -128 * sum / 8; q4_0: -8 * sum / 8 */
    x.start = _mm512_sub_epi32(_mm512_setzero_si512(),
                               type == Q8_0 ? _mm512_slli_epi32(sum, 4) : sum);
    return x;
}

BL_INLINE void quant_step(__m512 acc[8][4], const uint8_t *const w[8], const uint8_t *const x[4],
                          size_t p, int two, const int rows, const int tokens,
                          const quant_type type, size_t ahead) {
    pair_weights wv[8];
    for (int i = 0; i < rows; i++) {
        wv[i] = load_weights(w[i], p, two, type);
        if (ahead) bl_prefetch(w[i] + (type == Q8_0 ? 68 : 36) * p + ahead);
    }
    for (int j = 0; j < tokens; j++) {
        pair_acts xv = load_acts(x[j], p, two, type);
        for (int i = 0; i < rows; i++) {
            __m512 dot = _mm512_cvtepi32_ps(bl_dpbusd(xv.start, wv[i].q, xv.q));
            acc[i][j] = _mm512_fmadd_ps(dot, _mm512_mul_ps(wv[i].scale, xv.scale), acc[i][j]);
        }
    }
}

/* As float_tile in float.c: ahead > 0 prefetches the weights (GEMV). */
BL_INLINE void quant_tile(const bl_gemm_task *t, size_t r, size_t tok, const int rows,
                          const int tokens, const int type, size_t ahead) {
    const uint8_t *w[8], *x[4];
    __m512 acc[8][4];
    for (int i = 0; i < rows; i++) {
        w[i] = bl_group_row(t->w, t->w_row_bytes, r, (size_t)i, t->rows);
        for (int j = 0; j < tokens; j++) acc[i][j] = _mm512_setzero_ps();
    }
    for (int j = 0; j < tokens; j++) x[j] = t->x->data + (tok + (size_t)j) * t->x->row_bytes;
    size_t blocks = t->cols / 32;
    for (size_t p = 0; p < blocks / 2; p++) quant_step(acc, w, x, p, 1, rows, tokens, type, ahead);
    if (blocks % 2) quant_step(acc, w, x, blocks / 2, 0, rows, tokens, type, ahead);
    bl_store_float_tile(t, acc, r, tok, rows, tokens);
}

void bl_gemv_q8_0_q8_mad__avx512(const bl_gemm_task *t) {
    bl_float_gemv(t, quant_tile, Q8_0);
}
void bl_gemm_q8_0_q8_mad__avx512(const bl_gemm_task *t) {
    bl_float_gemm(t, quant_tile, Q8_0);
}
void bl_gemv_q4_0_q8_mad__avx512(const bl_gemm_task *t) {
    bl_float_gemv(t, quant_tile, Q4_0);
}
void bl_gemm_q4_0_q8_mad__avx512(const bl_gemm_task *t) {
    bl_float_gemm(t, quant_tile, Q4_0);
}
