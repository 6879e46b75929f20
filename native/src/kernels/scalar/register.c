/* The scalar rows of the kernel table: every slot has a portable kernel. */
#include "../kernels.h"

void bl_kernels_register_scalar_ternary(bl_kernel_table *t);
void bl_kernels_register_scalar_sign(bl_kernel_table *t);
void bl_kernels_register_scalar_float(bl_kernel_table *t);
void bl_kernels_register_scalar_quant(bl_kernel_table *t);

void bl_kernels_register_scalar_lut(bl_kernel_table *t);

void bl_kernels_register_scalar(bl_kernel_table *t) {
    bl_kernels_register_scalar_ternary(t);
    bl_kernels_register_scalar_sign(t);
    bl_kernels_register_scalar_float(t);
    bl_kernels_register_scalar_quant(t);
    bl_kernels_register_scalar_lut(t);
}
