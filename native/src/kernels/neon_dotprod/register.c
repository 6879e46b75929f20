/* The neon_dotprod rows of the kernel table. It extends the NEON table
 * (kernels/registry.c), so its LUT slots keep the plain NEON kernels, which
 * run on every ARMv8 core (sdot would only replace adds the tables already
 * do). */
#include "../kernels.h"

bl_gemm_kernel bl_gemv_bt2_i8_mad__neon_dotprod, bl_gemm_bt2_i8_mad__neon_dotprod,
    bl_gemv_bt2_i16_mad__neon_dotprod, bl_gemm_bt2_i16_mad__neon_dotprod,
    bl_gemv_bt1_i8_mad__neon_dotprod, bl_gemm_bt1_i8_mad__neon_dotprod,
    bl_gemv_bt1_i16_mad__neon_dotprod, bl_gemm_bt1_i16_mad__neon_dotprod,
    bl_gemv_bs1_i8_mad__neon_dotprod, bl_gemm_bs1_i8_mad__neon_dotprod,
    bl_gemv_bs1_i16_mad__neon_dotprod, bl_gemm_bs1_i16_mad__neon_dotprod,
    bl_gemv_f32_f32_mad__neon_dotprod, bl_gemm_f32_f32_mad__neon_dotprod,
    bl_gemv_f16_f32_mad__neon_dotprod, bl_gemm_f16_f32_mad__neon_dotprod,
    bl_gemv_bf16_f32_mad__neon_dotprod, bl_gemm_bf16_f32_mad__neon_dotprod,
    bl_gemv_q8_0_q8_mad__neon_dotprod, bl_gemm_q8_0_q8_mad__neon_dotprod,
    bl_gemv_q4_0_q8_mad__neon_dotprod, bl_gemm_q4_0_q8_mad__neon_dotprod,
    bl_gemv_tq1_0_q8_mad__neon_dotprod, bl_gemm_tq1_0_q8_mad__neon_dotprod,
    bl_gemv_tq2_0_q8_mad__neon_dotprod, bl_gemm_tq2_0_q8_mad__neon_dotprod,
    bl_gemv_q1_0_q8_mad__neon_dotprod, bl_gemm_q1_0_q8_mad__neon_dotprod,
    bl_gemv_q2_0_q8_mad__neon_dotprod, bl_gemm_q2_0_q8_mad__neon_dotprod,
    bl_gemv_q2_0_g128_q8_mad__neon_dotprod, bl_gemm_q2_0_g128_q8_mad__neon_dotprod;

static const bl_kernel_row rows[] = {
    {BL_TYPE_BT2, BL_ACT_I8, BL_ALGO_MAD, bl_gemv_bt2_i8_mad__neon_dotprod,
     bl_gemm_bt2_i8_mad__neon_dotprod},
    {BL_TYPE_BT2, BL_ACT_I16, BL_ALGO_MAD, bl_gemv_bt2_i16_mad__neon_dotprod,
     bl_gemm_bt2_i16_mad__neon_dotprod},
    {BL_TYPE_BT1, BL_ACT_I8, BL_ALGO_MAD, bl_gemv_bt1_i8_mad__neon_dotprod,
     bl_gemm_bt1_i8_mad__neon_dotprod},
    {BL_TYPE_BT1, BL_ACT_I16, BL_ALGO_MAD, bl_gemv_bt1_i16_mad__neon_dotprod,
     bl_gemm_bt1_i16_mad__neon_dotprod},
    {BL_TYPE_BS1, BL_ACT_I8, BL_ALGO_MAD, bl_gemv_bs1_i8_mad__neon_dotprod,
     bl_gemm_bs1_i8_mad__neon_dotprod},
    {BL_TYPE_BS1, BL_ACT_I16, BL_ALGO_MAD, bl_gemv_bs1_i16_mad__neon_dotprod,
     bl_gemm_bs1_i16_mad__neon_dotprod},
    {BL_TYPE_F32, BL_ACT_F32, BL_ALGO_MAD, bl_gemv_f32_f32_mad__neon_dotprod,
     bl_gemm_f32_f32_mad__neon_dotprod},
    {BL_TYPE_F16, BL_ACT_F32, BL_ALGO_MAD, bl_gemv_f16_f32_mad__neon_dotprod,
     bl_gemm_f16_f32_mad__neon_dotprod},
    {BL_TYPE_BF16, BL_ACT_F32, BL_ALGO_MAD, bl_gemv_bf16_f32_mad__neon_dotprod,
     bl_gemm_bf16_f32_mad__neon_dotprod},
    {BL_TYPE_Q8_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q8_0_q8_mad__neon_dotprod,
     bl_gemm_q8_0_q8_mad__neon_dotprod},
    {BL_TYPE_Q4_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q4_0_q8_mad__neon_dotprod,
     bl_gemm_q4_0_q8_mad__neon_dotprod},
    {BL_TYPE_TQ1_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_tq1_0_q8_mad__neon_dotprod,
     bl_gemm_tq1_0_q8_mad__neon_dotprod},
    {BL_TYPE_TQ2_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_tq2_0_q8_mad__neon_dotprod,
     bl_gemm_tq2_0_q8_mad__neon_dotprod},
    {BL_TYPE_Q1_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q1_0_q8_mad__neon_dotprod,
     bl_gemm_q1_0_q8_mad__neon_dotprod},
    {BL_TYPE_Q2_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q2_0_q8_mad__neon_dotprod,
     bl_gemm_q2_0_q8_mad__neon_dotprod},
    {BL_TYPE_Q2_0_G128, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q2_0_g128_q8_mad__neon_dotprod,
     bl_gemm_q2_0_g128_q8_mad__neon_dotprod},
};

const bl_isa_kernels bl_kernels_neon_dotprod = {
    .rows = rows,
    .n_rows = BL_COUNT(rows),
};
