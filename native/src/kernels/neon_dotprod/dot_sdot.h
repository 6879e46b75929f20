/* Dot-product steps of NEON with the ARMv8.2 dotprod extension: each step is
 * one sdot or udot, which sums four byte products into each int32 lane. The
 * same names as neon/dot_widening.h, so neon/'s kernel headers serve both. */
#ifndef BL_NEON_DOT_SDOT_H
#define BL_NEON_DOT_SDOT_H

#include "../neon/mad_common.h"

/* sdot accumulates in int32 lanes directly: the short accumulator is the
 * total itself, and opening and closing it cost nothing. */
typedef int32x4_t bl_dot_acc;
#define BL_DOT_SEPARATE_SHORT 0

static inline bl_dot_acc bl_dot_open(int32x4_t total) { return total; }

static inline int32x4_t bl_dot_close(int32x4_t total, bl_dot_acc acc) {
    (void)total;
    return acc;
}

static inline bl_dot_acc bl_dot_s8(bl_dot_acc acc, int8x16_t a, int8x16_t b) {
    return vdotq_s32(acc, a, b);
}

/* Unsigned sums wrap like signed ones, so they share the int32 lanes. */
static inline bl_dot_acc bl_dot_u8(bl_dot_acc acc, uint8x16_t a, uint8x16_t b) {
    return vreinterpretq_s32_u32(vdotq_u32(vreinterpretq_u32_s32(acc), a, b));
}

#endif
