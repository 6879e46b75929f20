/* Small AVX-512 helpers shared by the avx512 multiply-add kernels. */
#ifndef BL_AVX512_SIMD_H
#define BL_AVX512_SIMD_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "../x86_prefetch.h"

#define BL_INLINE static inline __attribute__((always_inline))

/* acc += u8 . s8 (vpdpbusd) and acc += s16 . s16 (vpdpwssd), updating acc in
 * place: with the intrinsics GCC 12 copies every accumulator around each
 * instruction, which costs a third of the issue slots in the inner loops. */
BL_INLINE __m512i bl_dpbusd(__m512i acc, __m512i u8, __m512i s8) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "vm"(s8));
    return acc;
}

BL_INLINE __m512i bl_dpwssd(__m512i acc, __m512i a, __m512i b) {
    __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "vm"(b));
    return acc;
}

/* The four lane sums of a, b, c, d as one vector {sum a, sum b, sum c, sum d}.
 * Every input goes through the same tree of adds, whatever its position, so a
 * row's float result does not depend on which rows share its group. */
BL_INLINE __m128i bl_sum4_epi32(__m512i a, __m512i b, __m512i c, __m512i d) {
    __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
    __m512i abcd =
        _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
    __m256i half = _mm256_add_epi32(_mm512_castsi512_si256(abcd),
                                    _mm512_extracti64x4_epi64(abcd, 1));
    return _mm_add_epi32(_mm256_castsi256_si128(half), _mm256_extracti128_si256(half, 1));
}

BL_INLINE __m128 bl_sum4_ps(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    __m512d abd = _mm512_castps_pd(ab), cdd = _mm512_castps_pd(cd);
    __m512 abcd = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(abd, cdd)),
                                _mm512_castpd_ps(_mm512_unpackhi_pd(abd, cdd)));
    __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(abcd), 1));
    __m256 half = _mm256_add_ps(_mm512_castps512_ps256(abcd), high);
    return _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
}

/* acc[0] + acc[1] / 2^shift + acc[2] / 2^(2 shift) + acc[3] / 2^(3 shift), lane
 * by lane: accumulators of codes kept at scale 2^(k shift), whose every term
 * is a multiple of that scale, so the arithmetic shifts are exact. */
BL_INLINE __m512i bl_unscale4(const __m512i acc[4], const int shift) {
    __m512i low = _mm512_add_epi32(acc[0], _mm512_srai_epi32(acc[1], shift));
    __m512i high = _mm512_add_epi32(_mm512_srai_epi32(acc[2], 2 * shift),
                                    _mm512_srai_epi32(acc[3], 3 * shift));
    return _mm512_add_epi32(low, high);
}

/* Row i of a group starting at row r; rows past the end repeat the last row so
 * a group always reads valid memory (their results are not stored). */
BL_INLINE const uint8_t *bl_group_row(const uint8_t *w, size_t row_bytes, size_t r, size_t i,
                                      size_t rows) {
    size_t row = r + i < rows ? r + i : rows - 1;
    return w + row * row_bytes;
}

/* Mask of the first n (<= 4) of four lanes. */
BL_INLINE __mmask8 bl_first_lanes(size_t n) { return (__mmask8)((1u << (n < 4 ? n : 4)) - 1); }

BL_INLINE __m512i bl_loadu(const void *p) { return _mm512_loadu_si512(p); }

#endif
