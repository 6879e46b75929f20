/* Baseline ARMv8 NEON multiply-add kernels: the shared kernel bodies built on
 * widening multiplies (dot_widening.h). */
#define BL_NEON_ISA neon

#include "dot_widening.h"

#include "bit_mad.h"
#include "float_mad.h"
#include "quant_mad.h"

void bl_kernels_register_neon_mad(bl_kernel_table *t) {
    bl_neon_register_bit_mad(t);
    bl_neon_register_float_mad(t);
    bl_neon_register_quant_mad(t);
}
