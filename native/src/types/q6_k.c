/* q6_k, llama.cpp's layout: super-blocks of 256 = 128 bytes of low 4 bits, 64
 * bytes of high 2 bits, 16 int8 scales (one per 16 weights), f16 d last.
 * Weight e = 128*h + 32*k + j (half h, quarter k, j < 32) keeps its low bits
 * in byte 64*h + 32*(k%2) + j, nibble k/2, and its high bits in byte 32*h + j
 * of the high part, bits 2k..2k+1; x = d * scale[e/16] * (q - 32). */
#include "kquant_common.h"
#include "types.h"

enum { Q6_K_BYTES = 210, Q6_K_HIGH = 128, Q6_K_SCALES = 192, Q6_K_D = 208 };

static int code_of(const uint8_t *block, int e) {
    int h = e / 128, k = e % 128 / 32, j = e % 32;
    int low = (block[64 * h + 32 * (k % 2) + j] >> (4 * (k / 2))) & 15;
    int high = (block[Q6_K_HIGH + 32 * h + j] >> (2 * k)) & 3;
    return low | high << 4;
}

/* The scale for 16 weights: the one of largest magnitude maps to -32 (the
 * code range is [-32, 31]); a few nearby scales are tried and the one with
 * the least squared error kept. */
static float sub_block_scale(const float *x) {
    float max = 0.0f;
    for (int i = 0; i < 16; i++)
        if (fabsf(x[i]) > fabsf(max)) max = x[i];
    if (max == 0.0f) return 0.0f;
    float best = max / -32.0f, best_err = INFINITY;
    for (int step = -4; step <= 4; step++) {
        float scale = max / (-32.0f + 0.25f * (float)step), err = 0.0f;
        for (int i = 0; i < 16; i++) {
            float q = (float)bl_kq_clamp((int)lrintf(x[i] / scale), -32, 31);
            err += (x[i] - q * scale) * (x[i] - q * scale);
        }
        if (err < best_err) best_err = err, best = scale;
    }
    return best;
}

static void q6_k_quantize(const float *src, int64_t cols, uint8_t *dst) {
    for (int64_t b = 0; b < cols / BL_QK_K; b++, src += BL_QK_K, dst += Q6_K_BYTES) {
        float scale_f[16], max = 0.0f;
        for (int s = 0; s < 16; s++) {
            scale_f[s] = sub_block_scale(src + 16 * s);
            if (fabsf(scale_f[s]) > fabsf(max)) max = scale_f[s];
        }
        float d = bl_kq_store_f16(dst + Q6_K_D, max / -128.0f);
        int8_t *scales = (int8_t *)(dst + Q6_K_SCALES);
        memset(dst, 0, Q6_K_SCALES);
        for (int s = 0; s < 16; s++) {
            int sc = d != 0.0f ? bl_kq_clamp((int)lrintf(scale_f[s] / d), -128, 127) : 0;
            scales[s] = (int8_t)sc;
            float step = d * (float)sc;
            for (int i = 0; i < 16; i++) {
                int e = 16 * s + i, h = e / 128, k = e % 128 / 32, j = e % 32;
                int q = step != 0.0f ? bl_kq_clamp((int)lrintf(src[e] / step), -32, 31) : 0;
                q += 32;
                dst[64 * h + 32 * (k % 2) + j] |= (uint8_t)((q & 15) << (4 * (k / 2)));
                dst[Q6_K_HIGH + 32 * h + j] |= (uint8_t)((q >> 4) << (2 * k));
            }
        }
    }
}

static void q6_k_dequantize(const uint8_t *src, int64_t cols, float *dst) {
    for (int64_t b = 0; b < cols / BL_QK_K; b++, src += Q6_K_BYTES, dst += BL_QK_K) {
        float d = bl_f16_load(src + Q6_K_D);
        const int8_t *scales = (const int8_t *)(src + Q6_K_SCALES);
        for (int e = 0; e < BL_QK_K; e++)
            dst[e] = d * (float)scales[e / 16] * (float)(code_of(src, e) - 32);
    }
}

const bl_type_traits bl_type_q6_k = {
    .info = {"q6_k", 14, BL_KIND_QUANT, BL_QK_K, Q6_K_BYTES, 0},
    .quantize_row = q6_k_quantize,
    .dequantize_row = q6_k_dequantize,
};
