/* The avx_vnni rows of the kernel table. It extends the AVX2 table
 * (kernels/registry.c): every slot it leaves empty keeps its AVX2 kernel,
 * and it lists only the kernels vpdpbusd makes faster. */
#include "../kernels.h"

bl_gemm_kernel bl_gemv_bt2_i8_mad__avx_vnni, bl_gemm_bt2_i8_mad__avx_vnni;

static const bl_kernel_row rows[] = {
    {BL_TYPE_BT2, BL_ACT_I8, BL_ALGO_MAD, bl_gemv_bt2_i8_mad__avx_vnni,
     bl_gemm_bt2_i8_mad__avx_vnni},
};

const bl_isa_kernels bl_kernels_avx_vnni = {
    .rows = rows,
    .n_rows = BL_COUNT(rows),
};
