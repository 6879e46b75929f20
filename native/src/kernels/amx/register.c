/* The amx rows of the kernel table. It extends the AVX-512 table
 * (kernels/registry.c): every slot it leaves empty keeps its AVX-512 kernel,
 * and it lists only the products AMX tiles make faster. */
#include "../kernels.h"

bl_gemm_kernel bl_gemm_bt2_i8_mad__amx, bl_gemm_bt1_i8_mad__amx, bl_gemm_q8_0_q8_mad__amx;

static const bl_kernel_row rows[] = {
    /* the GEMM kernel hands one token (and a few) to the AVX-512 kernels */
    {BL_TYPE_BT2, BL_ACT_I8, BL_ALGO_MAD, bl_gemm_bt2_i8_mad__amx, bl_gemm_bt2_i8_mad__amx},
    {BL_TYPE_BT1, BL_ACT_I8, BL_ALGO_MAD, bl_gemm_bt1_i8_mad__amx, bl_gemm_bt1_i8_mad__amx},
    {BL_TYPE_Q8_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemm_q8_0_q8_mad__amx, bl_gemm_q8_0_q8_mad__amx},
};

const bl_isa_kernels bl_kernels_amx = {
    .rows = rows,
    .n_rows = BL_COUNT(rows),
};
