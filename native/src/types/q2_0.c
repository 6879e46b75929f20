/* q2_0, llama.cpp's 2-bit layout (docs/INTEROP.md "Q2_0"), in its two packings
 * under GGUF id 42: upstream's groups of 64 (18-byte blocks) and PrismML's
 * older groups of 128 (34-byte blocks, `q2_0_g128`). A block is an f16 scale
 * d, then the 2-bit codes c of its weights, weight i in bits 2 (i % 4) of byte
 * i / 4 (lowest pair first); w = (c - 1) d, so codes 0..3 mean -d, 0, +d, +2d.
 * The quantizer is llama.cpp's reference: d = max |w| over the block,
 * c = clamp(roundf(w * (1 / d)) + 1, 0, 3). A block of trits times an f16
 * scale comes back exactly. */
#include <math.h>
#include <string.h>

#include "fp16.h"
#include "quant_blocks.h"
#include "types.h"

static void quantize_groups(const float *src, int64_t cols, uint8_t *dst, int group) {
    const int block_bytes = 2 + group / 4;
    for (int64_t b = 0; b < cols / group; b++, src += group, dst += block_bytes) {
        float amax = 0.0f;
        for (int i = 0; i < group; i++)
            if (fabsf(src[i]) > amax) amax = fabsf(src[i]);
        float id = amax > 0.0f ? 1.0f / amax : 0.0f;
        uint16_t dh = bl_f32_to_f16(amax);
        memcpy(dst, &dh, 2);
        memset(dst + 2, 0, (size_t)group / 4);
        for (int i = 0; i < group; i++) {
            int c = (int)roundf(src[i] * id) + 1;
            c = c < 0 ? 0 : c > 3 ? 3 : c;
            dst[2 + i / 4] |= (uint8_t)(c << (2 * (i % 4)));
        }
    }
}

static void dequantize_groups(const uint8_t *src, int64_t cols, float *dst, int group) {
    const int block_bytes = 2 + group / 4;
    for (int64_t b = 0; b < cols / group; b++, src += block_bytes, dst += group) {
        uint16_t dh;
        memcpy(&dh, src, 2);
        float d = bl_f16_to_f32(dh);
        for (int i = 0; i < group; i++)
            dst[i] = (float)(((src[2 + i / 4] >> (2 * (i % 4))) & 3) - 1) * d;
    }
}

static void q2_0_quantize(const float *src, int64_t cols, uint8_t *dst) {
    quantize_groups(src, cols, dst, BL_Q2_0_BLOCK);
}
static void q2_0_dequantize(const uint8_t *src, int64_t cols, float *dst) {
    dequantize_groups(src, cols, dst, BL_Q2_0_BLOCK);
}
static void q2_0_g128_quantize(const float *src, int64_t cols, uint8_t *dst) {
    quantize_groups(src, cols, dst, BL_Q2_0_G128_BLOCK);
}
static void q2_0_g128_dequantize(const uint8_t *src, int64_t cols, float *dst) {
    dequantize_groups(src, cols, dst, BL_Q2_0_G128_BLOCK);
}

const bl_type_traits bl_type_q2_0 = {
    .info = {"q2_0", 42, BL_KIND_QUANT, BL_Q2_0_BLOCK, BL_Q2_0_BYTES, 0},
    .quantize_row = q2_0_quantize,
    .dequantize_row = q2_0_dequantize,
};

/* The same GGUF id: a loader tells the two apart by the tensor's byte size
 * (types/registry.c, bl_type_layouts). */
const bl_type_traits bl_type_q2_0_g128 = {
    .info = {"q2_0_g128", 42, BL_KIND_QUANT, BL_Q2_0_G128_BLOCK, BL_Q2_0_G128_BYTES, 0},
    .quantize_row = q2_0_g128_quantize,
    .dequantize_row = q2_0_g128_dequantize,
};
