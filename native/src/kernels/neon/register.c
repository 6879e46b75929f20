/* The neon rows of the kernel table. */
#include "../kernels.h"

void bl_kernels_register_neon_mad(bl_kernel_table *t);
void bl_kernels_register_neon_lut(bl_kernel_table *t);

void bl_kernels_register_neon(bl_kernel_table *t) {
    bl_kernels_register_neon_mad(t);
    bl_kernels_register_neon_lut(t);
}
