/* q5_k, llama.cpp's layout: super-blocks of 256 = f16 d, f16 dmin, 12 bytes of
 * 6-bit scales and mins (kquant_common.h), 32 bytes of fifth bits (bit g of
 * byte j belongs to weight 32*g + j), then the low 4 bits as in q4_k.
 * x = d * scale[g] * q - dmin * min[g], q in [0, 31]. */
#include "kquant_common.h"
#include "types.h"

enum { Q5_K_BYTES = 176, Q5_K_HIGH = 16, Q5_K_CODES = 48 };

static void q5_k_quantize(const float *src, int64_t cols, uint8_t *dst) {
    for (int64_t b = 0; b < cols / BL_QK_K; b++, src += BL_QK_K, dst += Q5_K_BYTES) {
        uint8_t q[BL_QK_K];
        bl_kq_quantize_asym(src, 31, dst, q);
        uint8_t *high = dst + Q5_K_HIGH, *codes = dst + Q5_K_CODES;
        memset(high, 0, 32);
        for (int e = 0; e < BL_QK_K; e++) high[e % 32] |= (uint8_t)((q[e] >> 4) << (e / 32));
        for (int c = 0; c < 4; c++)
            for (int j = 0; j < 32; j++)
                codes[32 * c + j] =
                    (uint8_t)((q[64 * c + j] & 15) | (q[64 * c + 32 + j] & 15) << 4);
    }
}

static void q5_k_dequantize(const uint8_t *src, int64_t cols, float *dst) {
    for (int64_t b = 0; b < cols / BL_QK_K; b++, src += Q5_K_BYTES, dst += BL_QK_K) {
        float d = bl_f16_load(src), dmin = bl_f16_load(src + 2);
        const uint8_t *high = src + Q5_K_HIGH, *codes = src + Q5_K_CODES;
        uint8_t scale[8], min[8];
        bl_kq_scales_mins(src + 4, scale, min);
        for (int g = 0; g < 8; g++) {
            float step = d * (float)scale[g], offset = dmin * (float)min[g];
            for (int j = 0; j < 32; j++) {
                int q = ((codes[32 * (g / 2) + j] >> (4 * (g % 2))) & 15) |
                        ((high[j] >> g) & 1) << 4;
                dst[32 * g + j] = step * (float)q - offset;
            }
        }
    }
}

const bl_type_traits bl_type_q5_k = {
    .info = {"q5_k", 13, BL_KIND_QUANT, BL_QK_K, Q5_K_BYTES, 0},
    .quantize_row = q5_k_quantize,
    .dequantize_row = q5_k_dequantize,
};
