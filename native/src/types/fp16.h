/* IEEE half and bfloat16 conversions in portable C, rounding to nearest even
 * (the same results as numpy's float16 and torch's bfloat16 casts). */
#ifndef BL_FP16_H
#define BL_FP16_H

#include <stdint.h>
#include <string.h>
#if defined(__F16C__)
#include <immintrin.h>
#endif

static inline uint32_t bl_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bl_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float bl_f16_to_f32(uint16_t h) {
#if defined(__F16C__)
    /* the x86 kernels' builds: one instruction, exact for every half (a
     * signaling NaN comes back quiet, which the portable code leaves as it is) */
    return _cvtsh_ss(h);
#endif
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) return bl_bits_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24 is exact in float32 */
        float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return bl_bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

/* The half stored (little-endian, unaligned) at p: every block type's scale. */
static inline float bl_f16_load(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return bl_f16_to_f32(h);
}

/* Without branches, so that loops over it vectorize: normal results round to
 * nearest even by integer addition on the rebiased bits (>= 65520 becomes inf);
 * subnormal ones by a float addition of 0.5, which leaves the half's bits,
 * rounded, in the low mantissa; a NaN stays a quiet NaN with its top payload. */
static inline uint16_t bl_f32_to_f16(float f) {
    uint32_t u = bl_f32_bits(f), sign = (u >> 16) & 0x8000u, abs = u & 0x7fffffffu;
    uint32_t normal = (abs - 0x38000000u + 0xfffu + ((abs >> 13) & 1u)) >> 13;
    uint32_t subnormal = bl_f32_bits(bl_bits_f32(abs) + 0.5f) - 0x3f000000u;
    uint32_t nan = 0x7e00u | ((abs >> 13) & 0x3ffu);
    uint32_t h = abs < 0x38800000u ? subnormal : normal;
    h = abs >= 0x477ff000u ? 0x7c00u : h;
    h = abs > 0x7f800000u ? nan : h;
    return (uint16_t)(h | sign);
}

static inline float bl_bf16_to_f32(uint16_t h) { return bl_bits_f32((uint32_t)h << 16); }

static inline uint16_t bl_f32_to_bf16(float f) {
    uint32_t u = bl_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet nan */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

#endif
