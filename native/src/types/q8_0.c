/* q8_0, llama.cpp's layout: blocks of 32 = f16 scale d, then 32 int8; x = q * d. */
#include <math.h>
#include <string.h>

#include "fp16.h"
#include "quant_blocks.h"
#include "types.h"

static void q8_0_quantize(const float *src, int64_t cols, uint8_t *dst) {
    for (int64_t b = 0; b < cols / BL_Q_BLOCK; b++, src += BL_Q_BLOCK, dst += BL_Q8_0_BYTES) {
        float amax = 0.0f;
        for (int i = 0; i < BL_Q_BLOCK; i++) amax = fmaxf(amax, fabsf(src[i]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = bl_f32_to_f16(d);
        memcpy(dst, &dh, 2);
        for (int i = 0; i < BL_Q_BLOCK; i++) dst[2 + i] = (uint8_t)(int8_t)roundf(src[i] * id);
    }
}

static void q8_0_dequantize(const uint8_t *src, int64_t cols, float *dst) {
    for (int64_t b = 0; b < cols / BL_Q_BLOCK; b++, src += BL_Q8_0_BYTES, dst += BL_Q_BLOCK) {
        uint16_t dh;
        memcpy(&dh, src, 2);
        float d = bl_f16_to_f32(dh);
        for (int i = 0; i < BL_Q_BLOCK; i++) dst[i] = (float)(int8_t)src[2 + i] * d;
    }
}

const bl_type_traits bl_type_q8_0 = {
    .info = {"q8_0", 8, BL_KIND_QUANT, BL_Q_BLOCK, BL_Q8_0_BYTES, 0},
    .quantize_row = q8_0_quantize,
    .dequantize_row = q8_0_dequantize,
};
