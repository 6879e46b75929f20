/* The neon_dotprod rows of the kernel table. */
#include "../kernels.h"

void bl_kernels_register_neon_dotprod_mad(bl_kernel_table *t);
void bl_kernels_register_neon_dotprod_lut(bl_kernel_table *t);

void bl_kernels_register_neon_dotprod(bl_kernel_table *t) {
    bl_kernels_register_neon_dotprod_mad(t);
    bl_kernels_register_neon_dotprod_lut(t);
}
