/* The avx2 multiply-add rows of the kernel table, one file per type family. */
#include "../kernels.h"

void bl_kernels_register_avx2_bt2(bl_kernel_table *t);
void bl_kernels_register_avx2_bt1(bl_kernel_table *t);
void bl_kernels_register_avx2_bs1(bl_kernel_table *t);
void bl_kernels_register_avx2_float(bl_kernel_table *t);
void bl_kernels_register_avx2_quant(bl_kernel_table *t);

void bl_kernels_register_avx2_mad(bl_kernel_table *t) {
    bl_kernels_register_avx2_bt2(t);
    bl_kernels_register_avx2_bt1(t);
    bl_kernels_register_avx2_bs1(t);
    bl_kernels_register_avx2_float(t);
    bl_kernels_register_avx2_quant(t);
}
