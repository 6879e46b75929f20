/* Shared pieces of llama.cpp's ternary block types tq1_0 and tq2_0 (PR #8151):
 * blocks of 256 weights with one f16 scale d stored after the codes,
 * w = (c - 1) * d. Byte layouts: docs/FORMAT.md (and docs/INTEROP.md). */
#ifndef BL_TQ_COMMON_H
#define BL_TQ_COMMON_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fp16.h"

#define BL_TQ_BLOCK 256
#define BL_TQ1_0_BYTES 54 /* qs[48], qh[4], d */
#define BL_TQ2_0_BYTES 66 /* qs[64], d */
#define BL_TQ1_0_D 52
#define BL_TQ2_0_D 64

/* tq2_0: weight 128h + 32l + m (half h, l < 4, m < 32) is the bit pair 2l of
 * byte 32h + m; code 3 decodes as +2 (no encoder writes it). */
static inline int bl_tq2_0_code(const uint8_t *block, int e) {
    return (block[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3;
}

/* Digit k (0 most significant) of a base-3 fraction byte: ((q * 3^k) mod 256) * 3 >> 8. */
static inline int bl_tq_digit(uint8_t q, int k) {
    static const unsigned pow3[5] = {1, 3, 9, 27, 81};
    return (int)((((q * pow3[k]) & 255u) * 3u) >> 8);
}

/* tq1_0: bytes 0-31 hold weights 32k + m as digit k of byte m; bytes 32-47
 * weights 160 + 16k + m as digit k of byte 32 + m; qh (bytes 48-51) weights
 * 240 + 4k + j as digit k (k < 4) of byte 48 + j. */
static inline int bl_tq1_0_code(const uint8_t *block, int e) {
    if (e < 160) return bl_tq_digit(block[e % 32], e / 32);
    if (e < 240) return bl_tq_digit(block[32 + (e - 160) % 16], (e - 160) / 16);
    return bl_tq_digit(block[48 + (e - 240) % 4], (e - 240) / 4);
}

/* PrismML's ptq1_0 (GGUF id 143, group 128: qs[24], qh[2], then d): the tq1_0
 * digits in stages of 16 and 8 bytes. Bytes 0-15 hold weights 16k + m as digit
 * k of byte m; bytes 16-23 weights 80 + 8k + m as digit k of byte 16 + m; qh
 * (bytes 24-25) weights 120 + 2k + j as digit k (k < 4) of byte 24 + j. */
#define BL_PTQ1_0_BLOCK 128
#define BL_PTQ1_0_BYTES 28
#define BL_PTQ1_0_D 26

static inline int bl_ptq1_0_code(const uint8_t *block, int e) {
    if (e < 80) return bl_tq_digit(block[e % 16], e / 16);
    if (e < 120) return bl_tq_digit(block[16 + (e - 80) % 8], (e - 80) / 8);
    return bl_tq_digit(block[24 + (e - 120) % 2], (e - 120) / 2);
}

/* llama.cpp's reference rule: d = max|w| over the block, code = round(w / d) + 1
 * with w multiplied by the float reciprocal and rounded half away from zero.
 * Returns d; codes[] gets the 256 codes (clamped, so a NaN cannot leave 0..2). */
static inline float bl_tq_codes(const float *x, uint8_t codes[BL_TQ_BLOCK]) {
    float amax = 0.0f;
    for (int i = 0; i < BL_TQ_BLOCK; i++) amax = fmaxf(amax, fabsf(x[i]));
    float id = amax != 0.0f ? 1.0f / amax : 0.0f;
    for (int i = 0; i < BL_TQ_BLOCK; i++) {
        float r = roundf(x[i] * id);
        codes[i] = (uint8_t)(r >= 1.0f ? 2 : r <= -1.0f ? 0 : 1);
    }
    return amax;
}

static inline void bl_tq_store_d(uint8_t *p, float d) {
    uint16_t h = bl_f32_to_f16(d);
    memcpy(p, &h, 2);
}

#endif
