/* Dot-product steps of baseline ARMv8 NEON, which has no sdot: byte products
 * widen to int16 lanes with vmull/vmlal, and a short accumulator of int16
 * lanes folds into int32 lanes with vpadalq when it is closed.
 *
 * The kernel headers beside this one (bit_mad.h, quant_mad.h) are written
 * against these steps; neon_dotprod/dot_sdot.h gives the same names one
 * sdot/udot instruction each. */
#ifndef BL_NEON_DOT_WIDENING_H
#define BL_NEON_DOT_WIDENING_H

#include "mad_common.h"

/* A short accumulator: the caller keeps the sum of |products| reaching any
 * int16 lane below 2^15 between bl_dot_open and bl_dot_close. */
typedef int16x8_t bl_dot_acc;
/* Short accumulators are registers of their own beside the int32 totals. */
#define BL_DOT_SEPARATE_SHORT 1

static inline bl_dot_acc bl_dot_open(int32x4_t total) {
    (void)total;
    return vdupq_n_s16(0);
}

static inline int32x4_t bl_dot_close(int32x4_t total, bl_dot_acc acc) {
    return vpadalq_s16(total, acc);
}

/* acc += a . b over 16 signed bytes. */
static inline bl_dot_acc bl_dot_s8(bl_dot_acc acc, int8x16_t a, int8x16_t b) {
    acc = vmlal_s8(acc, vget_low_s8(a), vget_low_s8(b));
    return vmlal_high_s8(acc, a, b);
}

/* acc += a . b over 16 unsigned bytes; the lanes stay below 2^15, so the
 * unsigned sums read the same as signed ones. */
static inline bl_dot_acc bl_dot_u8(bl_dot_acc acc, uint8x16_t a, uint8x16_t b) {
    uint16x8_t sum = vreinterpretq_u16_s16(acc);
    sum = vmlal_u8(sum, vget_low_u8(a), vget_low_u8(b));
    return vreinterpretq_s16_u16(vmlal_high_u8(sum, a, b));
}

#endif
