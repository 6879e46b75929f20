/* What the NEON multiply-add headers share. A mad.c defines BL_NEON_ISA (its
 * folder's name) and includes its dot-step header before these, so the same
 * kernel bodies compile once per ISA under that ISA's names. */
#ifndef BL_NEON_MAD_COMMON_H
#define BL_NEON_MAD_COMMON_H

#include <arm_neon.h>

#include "../kernels.h"

#define BL_NEON_PASTE(name, isa) bl_##name##__##isa
#define BL_NEON_NAME(name, isa) BL_NEON_PASTE(name, isa)
/* BL_NEON_FN(gemv_bt2_i8_mad) is bl_gemv_bt2_i8_mad__neon in neon/mad.c. */
#define BL_NEON_FN(name) BL_NEON_NAME(name, BL_NEON_ISA)

/* GCC's scheduler before register allocation hoists the decoding of a whole
 * tile ahead of its dot steps and then spills; without it the kernels'
 * straight-line order keeps accumulators and constants in registers. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-schedule-insns")
#endif

/* Tile sizes and code positions are constants in every call; inlining turns
 * the loops over them into straight code with accumulators in registers. */
#define BL_NEON_INLINE static inline __attribute__((always_inline))

/* Hides a constant's value from the compiler, which would otherwise rebuild
 * it at every use (a multiply by 3 turns into shift + add, a tbl index into a
 * reload) instead of keeping it in a register. */
BL_NEON_INLINE uint8x16_t bl_neon_opaque(uint8x16_t v) {
    __asm__("" : "+w"(v));
    return v;
}

#endif
