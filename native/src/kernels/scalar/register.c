/* The scalar rows of the kernel table: every slot has a portable kernel, one
 * GEMM for GEMV and GEMM alike. */
#include "../kernels.h"

bl_gemm_kernel bl_gemm_bt2_i8_mad__scalar, bl_gemm_bt2_i16_mad__scalar,
    bl_gemm_bt1_i8_mad__scalar, bl_gemm_bt1_i16_mad__scalar,
    bl_gemm_bs1_i8_mad__scalar, bl_gemm_bs1_i16_mad__scalar,
    bl_gemm_f32_f32_mad__scalar, bl_gemm_f16_f32_mad__scalar,
    bl_gemm_bf16_f32_mad__scalar, bl_gemm_q8_0_q8_mad__scalar,
    bl_gemm_q4_0_q8_mad__scalar, bl_gemm_bt2_i8_lut__scalar,
    bl_gemm_bt2_i16_lut__scalar, bl_gemm_bt1_i8_lut__scalar,
    bl_gemm_bt1_i16_lut__scalar, bl_gemm_bs1_i8_lut__scalar,
    bl_gemm_bs1_i16_lut__scalar, bl_gemm_q4_k_q8_mad__scalar, bl_gemm_q5_k_q8_mad__scalar,
    bl_gemm_q6_k_q8_mad__scalar;
bl_attn_chunk_kernel bl_attn_chunk__scalar;

static const bl_kernel_row rows[] = {
    {BL_TYPE_BT2, BL_ACT_I8, BL_ALGO_MAD, bl_gemm_bt2_i8_mad__scalar,
     bl_gemm_bt2_i8_mad__scalar},
    {BL_TYPE_BT2, BL_ACT_I16, BL_ALGO_MAD, bl_gemm_bt2_i16_mad__scalar,
     bl_gemm_bt2_i16_mad__scalar},
    {BL_TYPE_BT1, BL_ACT_I8, BL_ALGO_MAD, bl_gemm_bt1_i8_mad__scalar,
     bl_gemm_bt1_i8_mad__scalar},
    {BL_TYPE_BT1, BL_ACT_I16, BL_ALGO_MAD, bl_gemm_bt1_i16_mad__scalar,
     bl_gemm_bt1_i16_mad__scalar},
    {BL_TYPE_BS1, BL_ACT_I8, BL_ALGO_MAD, bl_gemm_bs1_i8_mad__scalar,
     bl_gemm_bs1_i8_mad__scalar},
    {BL_TYPE_BS1, BL_ACT_I16, BL_ALGO_MAD, bl_gemm_bs1_i16_mad__scalar,
     bl_gemm_bs1_i16_mad__scalar},
    {BL_TYPE_F32, BL_ACT_F32, BL_ALGO_MAD, bl_gemm_f32_f32_mad__scalar,
     bl_gemm_f32_f32_mad__scalar},
    {BL_TYPE_F16, BL_ACT_F32, BL_ALGO_MAD, bl_gemm_f16_f32_mad__scalar,
     bl_gemm_f16_f32_mad__scalar},
    {BL_TYPE_BF16, BL_ACT_F32, BL_ALGO_MAD, bl_gemm_bf16_f32_mad__scalar,
     bl_gemm_bf16_f32_mad__scalar},
    {BL_TYPE_Q8_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemm_q8_0_q8_mad__scalar,
     bl_gemm_q8_0_q8_mad__scalar},
    {BL_TYPE_Q4_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemm_q4_0_q8_mad__scalar,
     bl_gemm_q4_0_q8_mad__scalar},
    {BL_TYPE_Q4_K, BL_ACT_Q8, BL_ALGO_MAD, bl_gemm_q4_k_q8_mad__scalar,
     bl_gemm_q4_k_q8_mad__scalar},
    {BL_TYPE_Q5_K, BL_ACT_Q8, BL_ALGO_MAD, bl_gemm_q5_k_q8_mad__scalar,
     bl_gemm_q5_k_q8_mad__scalar},
    {BL_TYPE_Q6_K, BL_ACT_Q8, BL_ALGO_MAD, bl_gemm_q6_k_q8_mad__scalar,
     bl_gemm_q6_k_q8_mad__scalar},
    {BL_TYPE_BT2, BL_ACT_I8, BL_ALGO_LUT, bl_gemm_bt2_i8_lut__scalar,
     bl_gemm_bt2_i8_lut__scalar},
    {BL_TYPE_BT2, BL_ACT_I16, BL_ALGO_LUT, bl_gemm_bt2_i16_lut__scalar,
     bl_gemm_bt2_i16_lut__scalar},
    {BL_TYPE_BT1, BL_ACT_I8, BL_ALGO_LUT, bl_gemm_bt1_i8_lut__scalar,
     bl_gemm_bt1_i8_lut__scalar},
    {BL_TYPE_BT1, BL_ACT_I16, BL_ALGO_LUT, bl_gemm_bt1_i16_lut__scalar,
     bl_gemm_bt1_i16_lut__scalar},
    {BL_TYPE_BS1, BL_ACT_I8, BL_ALGO_LUT, bl_gemm_bs1_i8_lut__scalar,
     bl_gemm_bs1_i8_lut__scalar},
    {BL_TYPE_BS1, BL_ACT_I16, BL_ALGO_LUT, bl_gemm_bs1_i16_lut__scalar,
     bl_gemm_bs1_i16_lut__scalar},
};

const bl_isa_kernels bl_kernels_scalar = {
    .rows = rows,
    .n_rows = BL_COUNT(rows),
    .attn_chunk = bl_attn_chunk__scalar,
};
