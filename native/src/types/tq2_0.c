/* tq2_0, llama.cpp's layout: blocks of 256 = 64 bytes of 2-bit codes, then the
 * f16 scale d; w = (c - 1) * d (tq_common.h, docs/FORMAT.md). */
#include "tq_common.h"
#include "types.h"

static void tq2_0_quantize(const float *src, int64_t cols, uint8_t *dst) {
    for (int64_t b = 0; b < cols / BL_TQ_BLOCK; b++, src += BL_TQ_BLOCK, dst += BL_TQ2_0_BYTES) {
        uint8_t codes[BL_TQ_BLOCK];
        float d = bl_tq_codes(src, codes);
        memset(dst, 0, BL_TQ2_0_D);
        for (int e = 0; e < BL_TQ_BLOCK; e++)
            dst[32 * (e / 128) + e % 32] |= (uint8_t)(codes[e] << (2 * (e % 128 / 32)));
        bl_tq_store_d(dst + BL_TQ2_0_D, d);
    }
}

static void tq2_0_dequantize(const uint8_t *src, int64_t cols, float *dst) {
    for (int64_t b = 0; b < cols / BL_TQ_BLOCK; b++, src += BL_TQ2_0_BYTES, dst += BL_TQ_BLOCK) {
        float d = bl_f16_load(src + BL_TQ2_0_D);
        for (int e = 0; e < BL_TQ_BLOCK; e++) dst[e] = (float)(bl_tq2_0_code(src, e) - 1) * d;
    }
}

const bl_type_traits bl_type_tq2_0 = {
    .info = {"tq2_0", 35, BL_KIND_QUANT, BL_TQ_BLOCK, BL_TQ2_0_BYTES, 0},
    .quantize_row = tq2_0_quantize,
    .dequantize_row = tq2_0_dequantize,
};
