/* NEON multiply-add kernels for the ternary (bt2, bt1) and sign (bs1) types
 * with int8 or int16 activations; included by mad.c after its dot steps.
 *
 * Every 16-byte load of a weight block yields several vectors of 16 codes,
 * each for 16 consecutive columns (bt2: the 4 bit pairs; bt1: the 5 base-3
 * digits; bs1: 8 spreads of 2 bytes' bits), dotted with those columns'
 * activations:
 *   bt2, bt1: codes c = trit + 1 in 0..2, and dot = sum(c * x) - sum(x);
 *   bs1:      int8 activations take codes -1 where a bit is set (weight -1),
 *             dot = sum(x) + 2 * sum(c * x); int16 ones take codes 1 there,
 *             dot = sum(x) - 2 * sum(c * x).
 * int16 activations x = 256 * hi + lo are split into a signed high-byte plane
 * and an unsigned low-byte plane (one de-interleaving load) and each plane is
 * dotted as bytes; the unsigned plane needs codes >= 0, hence the bs1 form.
 * Sums wrap in int32 lanes and the true result fits int32, so every output is
 * the scalar kernel's bit for bit.
 *
 * A tile of rows x tokens keeps one accumulator per pair in registers: codes
 * are decoded once per row and reused for every token of the tile, and
 * activations are loaded once per token for every row. */
#ifndef BL_NEON_BIT_MAD_H
#define BL_NEON_BIT_MAD_H

#include "mad_common.h"

typedef enum bit_type { BIT_BT2, BIT_BT1, BIT_BS1 } bit_type;

#define BIT_MAX_ROWS 4
#define BIT_MAX_TOKENS 4
#define BIT_GEMV_ROWS 4
#define BIT_GEMM_ROWS 2

/* GEMM tiles take 4 tokens, except where int16 planes and separate short
 * accumulators would need 32 accumulator registers for them. */
BL_NEON_INLINE int bit_gemm_tokens(bl_act_format act) {
    return act == BL_ACT_I16 && BL_DOT_SEPARATE_SHORT ? 2 : 4;
}

BL_NEON_INLINE size_t bit_block_cols(bit_type type) { return type == BIT_BT1 ? 320 : 256; }
BL_NEON_INLINE size_t bit_block_bytes(bit_type type) { return type == BIT_BS1 ? 32 : 64; }
BL_NEON_INLINE int bit_chunks(bit_type type) { return type == BIT_BS1 ? 2 : 4; }
BL_NEON_INLINE int bit_codes_per_chunk(bit_type type) {
    return type == BIT_BT2 ? 4 : type == BIT_BT1 ? 5 : 8;
}

/* First column, within the block, of code vector k of 16-byte chunk `chunk`:
 * bt2/bt1 byte j holds columns j + 64k; bs1 byte j holds columns 8j..8j+7. */
BL_NEON_INLINE size_t bit_code_column(bit_type type, int chunk, int k) {
    return type == BIT_BS1 ? (size_t)(128 * chunk + 16 * k) : (size_t)(64 * k + 16 * chunk);
}

/* Constants of the decoders, made once per tile and kept in registers. */
typedef struct bit_decoder {
    uint8x16_t three;     /* bt2: the bit-pair mask                 */
    uint8x16_t pow3[5];   /* bt1: 3^k for digit k = 1..4            */
    uint8x16_t spread[8]; /* bs1: tbl indices of code vector k      */
    uint8x16_t bit;       /* bs1: the bit lane i tests, 1 << (i % 8) */
} bit_decoder;

BL_NEON_INLINE bit_decoder bit_decoder_make(bit_type type) {
    bit_decoder d;
    d.three = vdupq_n_u8(3);
    if (type == BIT_BT1)
        for (int k = 1, p = 3; k < 5; k++, p *= 3)
            d.pow3[k] = bl_neon_opaque(vdupq_n_u8((uint8_t)p));
    if (type == BIT_BS1) {
        /* code vector k of a chunk covers bytes 2k and 2k+1, 8 lanes each */
        for (int k = 0; k < 8; k++)
            d.spread[k] = bl_neon_opaque(
                vcombine_u8(vdup_n_u8((uint8_t)(2 * k)), vdup_n_u8((uint8_t)(2 * k + 1))));
        const uint8x16_t bit = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
        d.bit = bl_neon_opaque(bit);
    }
    return d;
}

BL_NEON_INLINE uint8x16_t bt2_codes(const bit_decoder *d, uint8x16_t raw, int k) {
    switch (k) {
    case 0: return vandq_u8(raw, d->three);
    case 1: return vandq_u8(vshrq_n_u8(raw, 2), d->three);
    case 2: return vandq_u8(vshrq_n_u8(raw, 4), d->three);
    default: return vshrq_n_u8(raw, 6);
    }
}

/* Digit k = (((q * 3^k) mod 256) * 3) >> 8: vmulq_u8 wraps mod 256 by itself,
 * and (m * 3) >> 8 equals ((m + (m >> 1)) >> 1) >> 6 for every byte m (the
 * halving add never leaves 8 bits). */
BL_NEON_INLINE uint8x16_t bt1_codes(const bit_decoder *d, uint8x16_t raw, int k) {
    uint8x16_t m = k == 0 ? raw : vmulq_u8(raw, d->pow3[k]);
    return vshrq_n_u8(vhaddq_u8(m, vshrq_n_u8(m, 1)), 6);
}

/* Spreads the 2 bytes of code vector k over 8 lanes each (tbl) and tests
 * lane i's bit i % 8: 0xff where the weight is -1. */
BL_NEON_INLINE uint8x16_t bs1_masks(const bit_decoder *d, uint8x16_t raw, int k) {
    return vtstq_u8(vqtbl1q_u8(raw, d->spread[k]), d->bit);
}

BL_NEON_INLINE uint8x16_t bit_codes(const bit_decoder *d, bit_type type, bl_act_format act,
                                    uint8x16_t raw, int k) {
    switch (type) {
    case BIT_BT2: return bt2_codes(d, raw, k);
    case BIT_BT1: return bt1_codes(d, raw, k);
    default: {
        uint8x16_t masks = bs1_masks(d, raw, k);
        return act == BL_ACT_I16 ? vshrq_n_u8(masks, 7) : masks;
    }
    }
}

/* 16 activations from column col of one token: int8 ones whole in *high;
 * int16 ones as their high bytes (signed) and low bytes (unsigned). The
 * accumulators follow suit: `high` takes int8 activations or high bytes. */
BL_NEON_INLINE void bit_load_activations(const bl_activations *x, size_t token, size_t col,
                                         bl_act_format act, int8x16_t *high, uint8x16_t *low) {
    const uint8_t *row = x->data + token * x->row_bytes;
    if (act == BL_ACT_I8) {
        *high = vld1q_s8((const int8_t *)row + col);
        return;
    }
    uint8x16x2_t bytes = vld2q_u8(row + 2 * col);
    *low = bytes.val[0];
    *high = vreinterpretq_s8_u8(bytes.val[1]);
}

/* The final int32 result from a pair's plane accumulators and the token's sum(x). */
BL_NEON_INLINE int32_t bit_result(bit_type type, bl_act_format act, int32x4_t high,
                                  int32x4_t low, int32_t sum) {
    int32x4_t lanes = act == BL_ACT_I16 ? vaddq_s32(vshlq_n_s32(high, 8), low) : high;
    uint32_t dot = (uint32_t)vaddvq_s32(lanes), s = (uint32_t)sum;
    if (type != BIT_BS1) return (int32_t)(dot - s);
    return (int32_t)(act == BL_ACT_I8 ? s + 2 * dot : s - 2 * dot);
}

/* out for rows row0.. and tokens tok0.. of one tile. Short accumulators close
 * after every block: at most 20 steps of two products <= 510 per lane. */
BL_NEON_INLINE void bit_tile(const bl_gemm_task *t, bit_type type, bl_act_format act,
                             size_t row0, size_t tok0, int rows, int tokens) {
    const bl_activations *x = t->x;
    const size_t block_cols = bit_block_cols(type), block_bytes = bit_block_bytes(type);
    const bit_decoder decoder = bit_decoder_make(type);
    int32x4_t high[BIT_MAX_ROWS][BIT_MAX_TOKENS], low[BIT_MAX_ROWS][BIT_MAX_TOKENS];
#pragma GCC unroll 4
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 4
        for (int j = 0; j < tokens; j++) high[i][j] = low[i][j] = vdupq_n_s32(0);

    for (size_t b = 0; b < t->cols / block_cols; b++) {
        const uint8_t *block = t->w + row0 * t->w_row_bytes + b * block_bytes;
        bl_dot_acc short_high[BIT_MAX_ROWS][BIT_MAX_TOKENS];
        bl_dot_acc short_low[BIT_MAX_ROWS][BIT_MAX_TOKENS];
#pragma GCC unroll 4
        for (int i = 0; i < rows; i++)
#pragma GCC unroll 4
            for (int j = 0; j < tokens; j++) {
                short_high[i][j] = bl_dot_open(high[i][j]);
                short_low[i][j] = bl_dot_open(low[i][j]);
            }
        for (int chunk = 0; chunk < bit_chunks(type); chunk++) {
            uint8x16_t raw[BIT_MAX_ROWS];
#pragma GCC unroll 4
            for (int i = 0; i < rows; i++)
                raw[i] = vld1q_u8(block + i * t->w_row_bytes + 16 * chunk);
#pragma GCC unroll 8
            for (int k = 0; k < bit_codes_per_chunk(type); k++) {
                size_t col = b * block_cols + bit_code_column(type, chunk, k);
                int8x16_t x_high[BIT_MAX_TOKENS];
                uint8x16_t x_low[BIT_MAX_TOKENS];
#pragma GCC unroll 4
                for (int j = 0; j < tokens; j++)
                    bit_load_activations(x, tok0 + j, col, act, &x_high[j], &x_low[j]);
#pragma GCC unroll 4
                for (int i = 0; i < rows; i++) {
                    uint8x16_t codes = bit_codes(&decoder, type, act, raw[i], k);
#pragma GCC unroll 4
                    for (int j = 0; j < tokens; j++) {
                        short_high[i][j] =
                            bl_dot_s8(short_high[i][j], vreinterpretq_s8_u8(codes), x_high[j]);
                        if (act == BL_ACT_I16)
                            short_low[i][j] = bl_dot_u8(short_low[i][j], codes, x_low[j]);
                    }
                }
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < rows; i++)
#pragma GCC unroll 4
            for (int j = 0; j < tokens; j++) {
                high[i][j] = bl_dot_close(high[i][j], short_high[i][j]);
                low[i][j] = bl_dot_close(low[i][j], short_low[i][j]);
            }
    }

    int32_t *out = t->out;
#pragma GCC unroll 4
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 4
        for (int j = 0; j < tokens; j++)
            out[(tok0 + j) * t->out_stride + row0 + i] =
                bit_result(type, act, high[i][j], low[i][j], x->sums[tok0 + j]);
}

/* One band of `rows` rows against every token, in tiles of `tile_tokens`. */
BL_NEON_INLINE void bit_band(const bl_gemm_task *t, bit_type type, bl_act_format act,
                             size_t row0, int rows, int tile_tokens) {
    size_t j = 0;
    for (; j + (size_t)tile_tokens <= t->x->n; j += (size_t)tile_tokens)
        bit_tile(t, type, act, row0, j, rows, tile_tokens);
    if (tile_tokens > 1)
        for (; j < t->x->n; j++) bit_tile(t, type, act, row0, j, rows, 1);
}

BL_NEON_INLINE void bit_gemm(const bl_gemm_task *t, bit_type type, bl_act_format act,
                             int tile_rows, int tile_tokens) {
    size_t r = 0;
    for (; r + (size_t)tile_rows <= t->rows; r += (size_t)tile_rows)
        bit_band(t, type, act, r, tile_rows, tile_tokens);
    for (; r < t->rows; r++) bit_band(t, type, act, r, 1, tile_tokens);
}

#define BIT_KERNELS(name, type, act)                                                 \
    void BL_NEON_FN(gemv_##name##_mad)(const bl_gemm_task *t) {               \
        bit_gemm(t, type, act, BIT_GEMV_ROWS, 1);                                    \
    }                                                                                \
    void BL_NEON_FN(gemm_##name##_mad)(const bl_gemm_task *t) {               \
        bit_gemm(t, type, act, BIT_GEMM_ROWS, bit_gemm_tokens(act));                 \
    }

BIT_KERNELS(bt2_i8, BIT_BT2, BL_ACT_I8)
BIT_KERNELS(bt2_i16, BIT_BT2, BL_ACT_I16)
BIT_KERNELS(bt1_i8, BIT_BT1, BL_ACT_I8)
BIT_KERNELS(bt1_i16, BIT_BT1, BL_ACT_I16)
BIT_KERNELS(bs1_i8, BIT_BS1, BL_ACT_I8)
BIT_KERNELS(bs1_i16, BIT_BS1, BL_ACT_I16)

#endif
