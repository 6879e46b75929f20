/* The f16 scales of eight blocks that lie apart (one from each of eight rows),
 * in the eight words of one vector, for the x86 kernels that turn blocks
 * around (AVX-512 quant_gemm.c).
 *
 * Loaded one by one and inserted word by word: a vpgatherdd/vpgatherqd of the
 * blocks' first dwords is microcode on Zen 4, and took a fifth of the q8_0
 * GEMM's time there (BENCHMARKS.md, "Gathers and loads per vpdpbusd"); the
 * scalar loads go to load ports those kernels leave idle. */
#ifndef BL_X86_BLOCK_SCALES_H
#define BL_X86_BLOCK_SCALES_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline __attribute__((always_inline)) uint16_t bl_half_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

/* Word i: the f16 at block[i] + at. */
static inline __attribute__((always_inline)) __m128i bl_eight_block_scales(
    const uint8_t *const block[8], size_t at) {
    __m128i d = _mm_cvtsi32_si128(bl_half_at(block[0] + at));
    d = _mm_insert_epi16(d, bl_half_at(block[1] + at), 1);
    d = _mm_insert_epi16(d, bl_half_at(block[2] + at), 2);
    d = _mm_insert_epi16(d, bl_half_at(block[3] + at), 3);
    d = _mm_insert_epi16(d, bl_half_at(block[4] + at), 4);
    d = _mm_insert_epi16(d, bl_half_at(block[5] + at), 5);
    d = _mm_insert_epi16(d, bl_half_at(block[6] + at), 6);
    return _mm_insert_epi16(d, bl_half_at(block[7] + at), 7);
}

#endif
