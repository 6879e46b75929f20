/* q4_k, llama.cpp's layout: super-blocks of 256 = f16 d, f16 dmin, 12 bytes of
 * 6-bit scales and mins (kquant_common.h), then 128 bytes of 4-bit codes.
 * Sub-block g (32 weights) sits in bytes 32*(g/2) .. +31, low nibbles for even
 * g, high for odd; x = d * scale[g] * q - dmin * min[g]. */
#include "kquant_common.h"
#include "types.h"

enum { Q4_K_BYTES = 144, Q4_K_CODES = 16 };

static void q4_k_quantize(const float *src, int64_t cols, uint8_t *dst) {
    for (int64_t b = 0; b < cols / BL_QK_K; b++, src += BL_QK_K, dst += Q4_K_BYTES) {
        uint8_t q[BL_QK_K];
        bl_kq_quantize_asym(src, 15, dst, q);
        uint8_t *codes = dst + Q4_K_CODES;
        for (int c = 0; c < 4; c++)
            for (int j = 0; j < 32; j++)
                codes[32 * c + j] = (uint8_t)(q[64 * c + j] | q[64 * c + 32 + j] << 4);
    }
}

static void q4_k_dequantize(const uint8_t *src, int64_t cols, float *dst) {
    for (int64_t b = 0; b < cols / BL_QK_K; b++, src += Q4_K_BYTES, dst += BL_QK_K) {
        float d = bl_f16_load(src), dmin = bl_f16_load(src + 2);
        const uint8_t *codes = src + Q4_K_CODES;
        uint8_t scale[8], min[8];
        bl_kq_scales_mins(src + 4, scale, min);
        for (int g = 0; g < 8; g++) {
            float step = d * (float)scale[g], offset = dmin * (float)min[g];
            for (int j = 0; j < 32; j++) {
                int q = (codes[32 * (g / 2) + j] >> (4 * (g % 2))) & 15;
                dst[32 * g + j] = step * (float)q - offset;
            }
        }
    }
}

const bl_type_traits bl_type_q4_k = {
    .info = {"q4_k", 12, BL_KIND_QUANT, BL_QK_K, Q4_K_BYTES, 0},
    .quantize_row = q4_k_quantize,
    .dequantize_row = q4_k_dequantize,
};
