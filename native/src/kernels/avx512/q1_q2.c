/* AVX-512 kernels for q1_0 and q2_0 (both packings; types/q1_0.c, q2_0.c)
 * against Q8 activations (blocks of 32: float d, int32 sum, int8 q[32]).
 *
 * 64 weights (two activation blocks) per step. The weights become 64 unsigned
 * bytes u with w = u - 1 (times the block's d): q1_0's 64 sign bits are a
 * mask register (kmovq from memory) that picks 2 or 0 per byte; q2_0's 16
 * code bytes go to their qwords with one vpermb (qword k gets bytes 2k, 2k+1),
 * vpmultishiftqb brings code j to byte j and an and keeps its two bits. Then
 * sum(w x) = sum(u x) - sum(x): vpdpbusd(u, x) starts from -sum(x) of each
 * activation block in lane 0 / 8 of the pair, so its 16 int32 lanes hold the
 * two blocks' dots (lanes 0-7, 8-15), which are converted and FMA'd with
 * d_w * d_x into one accumulator per (row, token): a row's result does not
 * depend on its tile or on the other tokens of the batch.
 * Per 64 weights and row: q1_0 1 mask load + 1 masked move, q2_0 1 load +
 * 1 vpermb + 1 vpmultishiftqb + 1 and; per row and token 1 vpdpbusd, 1
 * int->float, 1 mul, 1 fma. */
#include <string.h>

#include "../../types/fp16.h"
#include "../../types/quant_blocks.h"
#include "../kernels.h"
#include "float_tiling.h"
#include "simd.h"

static _Alignas(64) uint8_t code_bytes[64], code_shifts[64], act_bytes[64];

void bl_avx512_q1_q2_tables_init(void) {
    for (int i = 0; i < 64; i++) {
        /* qword k holds the code bytes 2k, 2k+1 (codes 8k .. 8k+7) in its low
         * 16 bits; byte j of it takes the 8 bits from bit 2j on */
        int k = i / 8, j = i % 8;
        code_bytes[i] = (uint8_t)(j < 2 ? 2 * k + j : 0);
        code_shifts[i] = (uint8_t)(2 * j);
        /* activation pair: q at bytes 8-39 and 48-79; the second load starts
         * 16 bytes in */
        act_bytes[i] = (uint8_t)(i < 32 ? 8 + i : 64 + i);
    }
}

typedef struct pair_acts {
    __m512i q;     /* 64 int8 activations                          */
    __m512 scale;  /* lanes 0-7: block 0's d, 8-15: block 1's d     */
    __m512i start; /* -sum of block 0 in lane 0, of block 1 in lane 8 */
} pair_acts;

/* Activation blocks 2p, 2p + 1 of a row. */
BL_INLINE pair_acts load_acts(const uint8_t *row, size_t p) {
    const uint8_t *at = row + 2 * sizeof(bl_q8_block) * p;
    __m512i c = bl_loadu(at), d = bl_loadu(at + 16);
    pair_acts x;
    x.q = _mm512_permutex2var_epi8(c, _mm512_load_si512(act_bytes), d);
    const __m512i scale_lanes =
        _mm512_set_epi32(10, 10, 10, 10, 10, 10, 10, 10, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i sum_lanes = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 1);
    x.scale = _mm512_permutexvar_ps(scale_lanes, _mm512_castsi512_ps(c));
    __m512i sums = _mm512_maskz_permutexvar_epi32(0x0101, sum_lanes, c);
    x.start = _mm512_sub_epi32(_mm512_setzero_si512(), sums);
    return x;
}

/* The 64 unsigned weights u (w = u - 1) of step h (0 or 1) of a block. */
BL_INLINE __m512i load_weights(const uint8_t *block, int h, bl_lowbit type) {
    if (type == BL_LOWBIT_Q1_0) {
        uint64_t bits;
        memcpy(&bits, block + 2 + 8 * h, 8);
        return _mm512_maskz_mov_epi8(_cvtu64_mask64(bits), _mm512_set1_epi8(2));
    }
    __m512i codes = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(block + 2 + 16 * h)));
    codes = _mm512_permutexvar_epi8(_mm512_load_si512(code_bytes), codes);
    codes = _mm512_multishift_epi64_epi8(_mm512_load_si512(code_shifts), codes);
    return _mm512_and_si512(codes, _mm512_set1_epi8(3));
}

/* As quant_tile in quant.c: ahead > 0 prefetches the weights (GEMV). */
BL_INLINE void lowbit_tile(const bl_gemm_task *t, size_t r, size_t tok, const int rows,
                           const int tokens, const int type_, size_t ahead) {
    const bl_lowbit type = (bl_lowbit)type_;
    const size_t group = (size_t)bl_lowbit_shapes[type].block;
    const size_t block_bytes = (size_t)bl_lowbit_shapes[type].bytes;
    const int steps = (int)(group / 64);
    const uint8_t *w[8], *x[4];
    __m512 acc[8][4];
    for (int i = 0; i < rows; i++) {
        w[i] = bl_group_row(t->w, t->w_row_bytes, r, (size_t)i, t->rows);
        for (int j = 0; j < tokens; j++) acc[i][j] = _mm512_setzero_ps();
    }
    for (int j = 0; j < tokens; j++) x[j] = t->x->data + (tok + (size_t)j) * t->x->row_bytes;
    for (size_t b = 0; b < t->cols / group; b++) {
        __m512 dw[8];
        for (int i = 0; i < rows; i++) {
            const uint8_t *block = w[i] + b * block_bytes;
            /* once per cache line: where a block starts a new one */
            if (ahead && (b * block_bytes) % 64 < block_bytes) bl_prefetch(block + ahead);
            dw[i] = _mm512_set1_ps(bl_f16_load(block));
        }
        for (int h = 0; h < steps; h++) {
            __m512i u[8];
            for (int i = 0; i < rows; i++) u[i] = load_weights(w[i] + b * block_bytes, h, type);
            for (int j = 0; j < tokens; j++) {
                pair_acts xv = load_acts(x[j], b * (size_t)steps + (size_t)h);
                for (int i = 0; i < rows; i++) {
                    __m512 dot = _mm512_cvtepi32_ps(bl_dpbusd(xv.start, u[i], xv.q));
                    acc[i][j] = _mm512_fmadd_ps(dot, _mm512_mul_ps(dw[i], xv.scale), acc[i][j]);
                }
            }
        }
    }
    bl_store_float_tile(t, acc, r, tok, rows, tokens);
}

/* The GEMV and GEMM of one type: lowbit_tile through float_tiling.h. */
#define LOWBIT_KERNELS(type, TYPE)                                                                 \
    void bl_gemv_##type##_q8_mad__avx512(const bl_gemm_task *t) {                                  \
        bl_float_gemv(t, lowbit_tile, TYPE);                                                       \
    }                                                                                              \
    void bl_gemm_##type##_q8_mad__avx512(const bl_gemm_task *t) {                                  \
        bl_float_gemm(t, lowbit_tile, TYPE);                                                       \
    }

LOWBIT_KERNELS(q1_0, BL_LOWBIT_Q1_0)
LOWBIT_KERNELS(q2_0, BL_LOWBIT_Q2_0)
LOWBIT_KERNELS(q2_0_g128, BL_LOWBIT_Q2_0_G128)
