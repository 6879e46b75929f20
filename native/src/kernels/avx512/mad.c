/* The avx512 multiply-add rows of the kernel table, one file per kind. */
#include "../kernels.h"

void bl_kernels_register_avx512_ternary(bl_kernel_table *t);
void bl_kernels_register_avx512_sign(bl_kernel_table *t);
void bl_kernels_register_avx512_float(bl_kernel_table *t);
void bl_kernels_register_avx512_quant(bl_kernel_table *t);

void bl_kernels_register_avx512_mad(bl_kernel_table *t) {
    bl_kernels_register_avx512_ternary(t);
    bl_kernels_register_avx512_sign(t);
    bl_kernels_register_avx512_float(t);
    bl_kernels_register_avx512_quant(t);
}
