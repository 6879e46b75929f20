/* Inner loops shared by activation quantization and the ops. Reductions keep
 * VEC_LANES independent partial sums so that compilers vectorize them without
 * reassociating float math. */
#ifndef BL_BASE_VEC_H
#define BL_BASE_VEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bitllm.h"

#define VEC_LANES 16

/* Hot loops get one copy per x86 vector width, and bl_loops_isa() (cpu.c)
 * picks one: the CPU's widest, capped by $BITLLM_ISA. Every copy does the same
 * IEEE operations in the same order (the build has -ffp-contract=off, and
 * lanes are explicit), so results do not depend on it.
 *   BL_VECTOR_BODY void name_body(params) { ... }
 *   BL_VECTOR_VARIANTS(storage, name, (params), (args))
 * defines `storage void name(params)`, which runs the body's copy. */
#define BL_VECTOR_BODY static inline __attribute__((always_inline))
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BL_VECTOR_VARIANTS(storage, name, params, args)                                           \
    __attribute__((target("avx512f"))) static void name##_avx512 params { name##_body args; }   \
    __attribute__((target("avx2"))) static void name##_avx2 params { name##_body args; }        \
    static void name##_baseline params { name##_body args; }                                     \
    storage void name params {                                                                   \
        int isa = bl_loops_isa();                                                                \
        if (isa == BL_ISA_AVX512)                                                                \
            name##_avx512 args;                                                                  \
        else if (isa == BL_ISA_AVX2)                                                             \
            name##_avx2 args;                                                                    \
        else                                                                                     \
            name##_baseline args;                                                                \
    }
#else
#define BL_VECTOR_VARIANTS(storage, name, params, args)                                           \
    storage void name params { name##_body args; }
#endif

/* The lanes added pairwise, halving each step: a fixed order that vectorizes. */
static inline float bl_vec_reduce(float acc[VEC_LANES]) {
    for (int j = 0; j < 8; j++) acc[j] += acc[j + 8];
    for (int j = 0; j < 4; j++) acc[j] += acc[j + 4];
    for (int j = 0; j < 2; j++) acc[j] += acc[j + 2];
    return acc[0] + acc[1];
}

static inline float bl_vec_dot(const float *a, const float *b, size_t n) {
    float acc[VEC_LANES] = {0};
    size_t i = 0;
    for (; i + VEC_LANES <= n; i += VEC_LANES)
        for (int j = 0; j < VEC_LANES; j++) acc[j] += a[i + j] * b[i + j];
    for (; i < n; i++) acc[i % VEC_LANES] += a[i] * b[i];
    return bl_vec_reduce(acc);
}

static inline float bl_vec_sum(const float *a, size_t n) {
    float acc[VEC_LANES] = {0};
    size_t i = 0;
    for (; i + VEC_LANES <= n; i += VEC_LANES)
        for (int j = 0; j < VEC_LANES; j++) acc[j] += a[i + j];
    for (; i < n; i++) acc[i % VEC_LANES] += a[i];
    return bl_vec_reduce(acc);
}

/* e^x to about 1 ulp, in plain float operations that vectorize (libm's expf
 * does not): x = n ln2 + r with |r| <= ln2 / 2, a degree-6 polynomial for
 * e^r, and 2^n put into the exponent bits. Inputs are clamped to where e^x is
 * a normal float (NaN to the lower end, as converting NaN to int is undefined). */
static inline float bl_exp(float x) {
    x = x > -87.3365478515625f ? x : -87.3365478515625f;
    x = x < 88.3762626647949f ? x : 88.3762626647949f;
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return e * scale;
}

/* A softmax weight e^d for d = score - max <= 0. Below e^-64 (about 1.6e-28,
 * 2^-92 of the largest weight, which is 1) the weight is exactly 0: it cannot
 * move a float32 sum of any practical length, and bl_exp would have made it at
 * least FLT_MIN, whose products with cached values are subnormal floats; x86
 * cores take a microcode assist of about a hundred cycles for each of those,
 * which made prompt processing twice as slow (BENCHMARKS.md, AVX2). */
#define BL_SOFTMAX_NEGLIGIBLE -64.0f
static inline float bl_softmax_weight(float d) {
    return d < BL_SOFTMAX_NEGLIGIBLE ? 0.0f : bl_exp(d);
}

/* y += a * x */
static inline void bl_vec_axpy(float *restrict y, float a, const float *restrict x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

#endif
