/* NEON multiply-add kernels with the ARMv8.2 dotprod extension: the kernel
 * bodies of neon/ built on sdot/udot (dot_sdot.h). */
#define BL_NEON_ISA neon_dotprod

#include "dot_sdot.h"

#include "../neon/bit_mad.h"
#include "../neon/float_mad.h"
#include "../neon/quant_mad.h"

void bl_kernels_register_neon_dotprod_mad(bl_kernel_table *t) {
    bl_neon_register_bit_mad(t);
    bl_neon_register_float_mad(t);
    bl_neon_register_quant_mad(t);
}
