/* The avx512 rows of the kernel table. */
#include "../kernels.h"

void bl_kernels_register_avx512_mad(bl_kernel_table *t);
void bl_kernels_register_avx512_lut(bl_kernel_table *t);

void bl_kernels_register_avx512(bl_kernel_table *t) {
    bl_kernels_register_avx512_mad(t);
    bl_kernels_register_avx512_lut(t);
}
