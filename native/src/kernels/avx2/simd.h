/* Small AVX2 helpers shared by the avx2 kernels. */
#ifndef BL_AVX2_SIMD_H
#define BL_AVX2_SIMD_H

#include <immintrin.h>
#include <stdint.h>

#include "../x86_prefetch.h"

static inline int32_t bl_avx2_hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

static inline float bl_avx2_hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Integer kernels write dot - sum(x) with two's complement wrap-around, the
 * same low 32 bits as the scalar kernels' int64 arithmetic. */
static inline int32_t bl_avx2_minus(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* Pins a running integer sum in a register at this point. Without it GCC
 * reassociates a chain of vector adds into a tree, computes every product
 * first and spills them to the stack. */
static inline __attribute__((always_inline)) void bl_avx2_pin(__m256i *v) {
    __asm__("" : "+x"(*v));
}

#endif
