/* f32, f16 and bf16: plain little-endian element arrays, one element a "block". */
#include <string.h>

#include "fp16.h"
#include "types.h"

static void f32_quantize(const float *src, int64_t cols, uint8_t *dst) {
    memcpy(dst, src, (size_t)cols * 4);
}
static void f32_dequantize(const uint8_t *src, int64_t cols, float *dst) {
    memcpy(dst, src, (size_t)cols * 4);
}

static void f16_quantize(const float *src, int64_t cols, uint8_t *dst) {
    for (int64_t i = 0; i < cols; i++) {
        uint16_t h = bl_f32_to_f16(src[i]);
        memcpy(dst + 2 * i, &h, 2);
    }
}
static void f16_dequantize(const uint8_t *src, int64_t cols, float *dst) {
    for (int64_t i = 0; i < cols; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = bl_f16_to_f32(h);
    }
}

static void bf16_quantize(const float *src, int64_t cols, uint8_t *dst) {
    for (int64_t i = 0; i < cols; i++) {
        uint16_t h = bl_f32_to_bf16(src[i]);
        memcpy(dst + 2 * i, &h, 2);
    }
}
static void bf16_dequantize(const uint8_t *src, int64_t cols, float *dst) {
    for (int64_t i = 0; i < cols; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = bl_bf16_to_f32(h);
    }
}

const bl_type_traits bl_type_f32 = {
    .info = {"f32", 0, BL_KIND_FLOAT, 1, 4, 0},
    .quantize_row = f32_quantize,
    .dequantize_row = f32_dequantize,
};
const bl_type_traits bl_type_f16 = {
    .info = {"f16", 1, BL_KIND_FLOAT, 1, 2, 0},
    .quantize_row = f16_quantize,
    .dequantize_row = f16_dequantize,
};
const bl_type_traits bl_type_bf16 = {
    .info = {"bf16", 30, BL_KIND_FLOAT, 1, 2, 0},
    .quantize_row = bf16_quantize,
    .dequantize_row = bf16_dequantize,
};
