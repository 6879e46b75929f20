/* The avx512 rows of the kernel table. */
#include "../kernels.h"

void bl_kernels_register_avx512_mad(bl_kernel_table *t);
void bl_kernels_register_avx512_lut(bl_kernel_table *t);

void bl_kernels_register_avx512(bl_kernel_table *t) {
    bl_kernels_register_avx512_mad(t);
    bl_kernels_register_avx512_lut(t);
    /* Batched GEMM: the LUT kernels win from one full token tile on
     * (BENCHMARKS.md, kernel table); GEMV stays multiply-add. */
    t->auto_lut_min_rows[BL_TYPE_BS1][BL_ACT_I8] = 32;
    t->auto_lut_min_rows[BL_TYPE_BS1][BL_ACT_I16] = 16;
}
