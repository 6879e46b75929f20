/* The avx2 rows of the kernel table. */
#include "../kernels.h"

void bl_kernels_register_avx2_mad(bl_kernel_table *t);
void bl_kernels_register_avx2_lut(bl_kernel_table *t);

void bl_kernels_register_avx2(bl_kernel_table *t) {
    bl_kernels_register_avx2_mad(t);
    bl_kernels_register_avx2_lut(t);
}
