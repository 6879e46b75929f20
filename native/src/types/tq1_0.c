/* tq1_0, llama.cpp's layout: blocks of 256 = 48 bytes of five base-3 digits,
 * 4 bytes of four, then the f16 scale d; w = (c - 1) * d (tq_common.h,
 * docs/FORMAT.md). */
#include "tq_common.h"
#include "types.h"

/* Digits c[0] (most significant) .. c[count-1], then zeros up to five, as the
 * base-3 fraction byte ceil(n * 256 / 243). */
static uint8_t fraction_byte(const uint8_t *c, int stride, int count) {
    unsigned n = 0;
    for (int k = 0; k < 5; k++) n = n * 3 + (k < count ? c[k * stride] : 0);
    return (uint8_t)((n * 256 + 242) / 243);
}

static void tq1_0_quantize(const float *src, int64_t cols, uint8_t *dst) {
    for (int64_t b = 0; b < cols / BL_TQ_BLOCK; b++, src += BL_TQ_BLOCK, dst += BL_TQ1_0_BYTES) {
        uint8_t codes[BL_TQ_BLOCK];
        float d = bl_tq_codes(src, codes);
        for (int m = 0; m < 32; m++) dst[m] = fraction_byte(codes + m, 32, 5);
        for (int m = 0; m < 16; m++) dst[32 + m] = fraction_byte(codes + 160 + m, 16, 5);
        for (int j = 0; j < 4; j++) dst[48 + j] = fraction_byte(codes + 240 + j, 4, 4);
        bl_tq_store_d(dst + BL_TQ1_0_D, d);
    }
}

static void tq1_0_dequantize(const uint8_t *src, int64_t cols, float *dst) {
    for (int64_t b = 0; b < cols / BL_TQ_BLOCK; b++, src += BL_TQ1_0_BYTES, dst += BL_TQ_BLOCK) {
        float d = bl_f16_load(src + BL_TQ1_0_D);
        for (int e = 0; e < BL_TQ_BLOCK; e++) dst[e] = (float)(bl_tq1_0_code(src, e) - 1) * d;
    }
}

const bl_type_traits bl_type_tq1_0 = {
    .info = {"tq1_0", 34, BL_KIND_QUANT, BL_TQ_BLOCK, BL_TQ1_0_BYTES, 0},
    .quantize_row = tq1_0_quantize,
    .dequantize_row = tq1_0_dequantize,
};
