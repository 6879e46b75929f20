/* q1_0, llama.cpp's 1-bit layout (docs/INTEROP.md "Q1_0"): blocks of 128 = f16
 * scale d, then 16 bytes of sign bits; bit i % 8 of byte i / 8 is weight i,
 * set for +d, clear for -d (no zero). The quantizer is llama.cpp's reference:
 * d = mean |w| over the block (summed in order in float32), bit = w >= 0. A
 * block whose weights are all +-s with s an f16 value comes back exactly. */
#include <math.h>
#include <string.h>

#include "fp16.h"
#include "quant_blocks.h"
#include "types.h"

static void q1_0_quantize(const float *src, int64_t cols, uint8_t *dst) {
    for (int64_t b = 0; b < cols / BL_Q1_0_BLOCK;
         b++, src += BL_Q1_0_BLOCK, dst += BL_Q1_0_BYTES) {
        float sum = 0.0f;
        for (int i = 0; i < BL_Q1_0_BLOCK; i++) sum += fabsf(src[i]);
        uint16_t dh = bl_f32_to_f16(sum / (float)BL_Q1_0_BLOCK);
        memcpy(dst, &dh, 2);
        memset(dst + 2, 0, 16);
        for (int i = 0; i < BL_Q1_0_BLOCK; i++)
            if (src[i] >= 0.0f) dst[2 + i / 8] |= (uint8_t)(1u << (i % 8));
    }
}

static void q1_0_dequantize(const uint8_t *src, int64_t cols, float *dst) {
    for (int64_t b = 0; b < cols / BL_Q1_0_BLOCK;
         b++, src += BL_Q1_0_BYTES, dst += BL_Q1_0_BLOCK) {
        uint16_t dh;
        memcpy(&dh, src, 2);
        float d = bl_f16_to_f32(dh);
        for (int i = 0; i < BL_Q1_0_BLOCK; i++)
            dst[i] = (src[2 + i / 8] >> (i % 8)) & 1 ? d : -d;
    }
}

const bl_type_traits bl_type_q1_0 = {
    .info = {"q1_0", 41, BL_KIND_QUANT, BL_Q1_0_BLOCK, BL_Q1_0_BYTES, 0},
    .quantize_row = q1_0_quantize,
    .dequantize_row = q1_0_dequantize,
};
