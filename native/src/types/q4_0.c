/* q4_0, llama.cpp's layout: blocks of 32 = f16 scale d, then 16 bytes; byte j
 * holds element j in its low nibble and element j+16 in its high nibble;
 * x = (q - 8) * d. */
#include <math.h>
#include <string.h>

#include "fp16.h"
#include "quant_blocks.h"
#include "types.h"

static void q4_0_quantize(const float *src, int64_t cols, uint8_t *dst) {
    for (int64_t b = 0; b < cols / BL_Q_BLOCK; b++, src += BL_Q_BLOCK, dst += BL_Q4_0_BYTES) {
        /* the element of largest magnitude maps to -8 exactly */
        float amax = 0.0f, max = 0.0f;
        for (int i = 0; i < BL_Q_BLOCK; i++) {
            if (fabsf(src[i]) > amax) {
                amax = fabsf(src[i]);
                max = src[i];
            }
        }
        float d = max / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = bl_f32_to_f16(d);
        memcpy(dst, &dh, 2);
        for (int j = 0; j < 16; j++) {
            int lo = (int)(src[j] * id + 8.5f);
            int hi = (int)(src[j + 16] * id + 8.5f);
            lo = lo > 15 ? 15 : lo;
            hi = hi > 15 ? 15 : hi;
            dst[2 + j] = (uint8_t)(lo | hi << 4);
        }
    }
}

static void q4_0_dequantize(const uint8_t *src, int64_t cols, float *dst) {
    for (int64_t b = 0; b < cols / BL_Q_BLOCK; b++, src += BL_Q4_0_BYTES, dst += BL_Q_BLOCK) {
        uint16_t dh;
        memcpy(&dh, src, 2);
        float d = bl_f16_to_f32(dh);
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)((src[2 + j] & 15) - 8) * d;
            dst[j + 16] = (float)((src[2 + j] >> 4) - 8) * d;
        }
    }
}

const bl_type_traits bl_type_q4_0 = {
    .info = {"q4_0", 2, BL_KIND_QUANT, BL_Q_BLOCK, BL_Q4_0_BYTES, 0},
    .quantize_row = q4_0_quantize,
    .dequantize_row = q4_0_dequantize,
};
