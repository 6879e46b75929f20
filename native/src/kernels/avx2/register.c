/* The avx2 rows of the kernel table. */
#include "../kernels.h"

bl_gemm_kernel bl_gemv_bt2_i8_mad__avx2, bl_gemm_bt2_i8_mad__avx2,
    bl_gemv_bt2_i16_mad__avx2, bl_gemm_bt2_i16_mad__avx2,
    bl_gemv_bt1_i8_mad__avx2, bl_gemm_bt1_i8_mad__avx2,
    bl_gemv_bt1_i16_mad__avx2, bl_gemm_bt1_i16_mad__avx2,
    bl_gemv_bs1_i8_mad__avx2, bl_gemm_bs1_i8_mad__avx2,
    bl_gemv_bs1_i16_mad__avx2, bl_gemm_bs1_i16_mad__avx2,
    bl_gemv_f32_f32_mad__avx2, bl_gemm_f32_f32_mad__avx2,
    bl_gemv_f16_f32_mad__avx2, bl_gemm_f16_f32_mad__avx2,
    bl_gemv_bf16_f32_mad__avx2, bl_gemm_bf16_f32_mad__avx2,
    bl_gemv_q8_0_q8_mad__avx2, bl_gemm_q8_0_q8_mad__avx2,
    bl_gemv_q4_0_q8_mad__avx2, bl_gemm_q4_0_q8_mad__avx2,
    bl_gemv_q4_k_q8_mad__avx2, bl_gemm_q4_k_q8_mad__avx2,
    bl_gemv_q5_k_q8_mad__avx2, bl_gemm_q5_k_q8_mad__avx2,
    bl_gemv_q6_k_q8_mad__avx2, bl_gemm_q6_k_q8_mad__avx2,
    bl_gemv_tq1_0_q8_mad__avx2, bl_gemm_tq1_0_q8_mad__avx2,
    bl_gemv_tq2_0_q8_mad__avx2, bl_gemm_tq2_0_q8_mad__avx2,
    bl_gemv_q1_0_q8_mad__avx2, bl_gemm_q1_0_q8_mad__avx2,
    bl_gemv_q2_0_q8_mad__avx2, bl_gemm_q2_0_q8_mad__avx2,
    bl_gemv_q2_0_g128_q8_mad__avx2, bl_gemm_q2_0_g128_q8_mad__avx2,
    bl_gemv_bt2_i8_lut__avx2, bl_gemm_bt2_i8_lut__avx2,
    bl_gemv_bt2_i16_lut__avx2, bl_gemm_bt2_i16_lut__avx2,
    bl_gemv_bt1_i8_lut__avx2, bl_gemm_bt1_i8_lut__avx2,
    bl_gemv_bt1_i16_lut__avx2, bl_gemm_bt1_i16_lut__avx2,
    bl_gemv_bs1_i8_lut__avx2, bl_gemm_bs1_i8_lut__avx2,
    bl_gemv_bs1_i16_lut__avx2, bl_gemm_bs1_i16_lut__avx2,
    bl_gemv_q1_0_q8_lut__avx2, bl_gemm_q1_0_q8_lut__avx2,
    bl_gemv_q2_0_q8_lut__avx2, bl_gemm_q2_0_q8_lut__avx2,
    bl_gemv_q2_0_g128_q8_lut__avx2, bl_gemm_q2_0_g128_q8_lut__avx2;
bl_attn_chunk_kernel bl_attn_chunk__avx2;

static const bl_kernel_row rows[] = {
    {BL_TYPE_BT2, BL_ACT_I8, BL_ALGO_MAD, bl_gemv_bt2_i8_mad__avx2,
     bl_gemm_bt2_i8_mad__avx2},
    {BL_TYPE_BT2, BL_ACT_I16, BL_ALGO_MAD, bl_gemv_bt2_i16_mad__avx2,
     bl_gemm_bt2_i16_mad__avx2},
    {BL_TYPE_BT1, BL_ACT_I8, BL_ALGO_MAD, bl_gemv_bt1_i8_mad__avx2,
     bl_gemm_bt1_i8_mad__avx2},
    {BL_TYPE_BT1, BL_ACT_I16, BL_ALGO_MAD, bl_gemv_bt1_i16_mad__avx2,
     bl_gemm_bt1_i16_mad__avx2},
    {BL_TYPE_BS1, BL_ACT_I8, BL_ALGO_MAD, bl_gemv_bs1_i8_mad__avx2,
     bl_gemm_bs1_i8_mad__avx2},
    {BL_TYPE_BS1, BL_ACT_I16, BL_ALGO_MAD, bl_gemv_bs1_i16_mad__avx2,
     bl_gemm_bs1_i16_mad__avx2},
    {BL_TYPE_F32, BL_ACT_F32, BL_ALGO_MAD, bl_gemv_f32_f32_mad__avx2,
     bl_gemm_f32_f32_mad__avx2},
    {BL_TYPE_F16, BL_ACT_F32, BL_ALGO_MAD, bl_gemv_f16_f32_mad__avx2,
     bl_gemm_f16_f32_mad__avx2},
    {BL_TYPE_BF16, BL_ACT_F32, BL_ALGO_MAD, bl_gemv_bf16_f32_mad__avx2,
     bl_gemm_bf16_f32_mad__avx2},
    {BL_TYPE_Q8_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q8_0_q8_mad__avx2,
     bl_gemm_q8_0_q8_mad__avx2},
    {BL_TYPE_Q4_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q4_0_q8_mad__avx2,
     bl_gemm_q4_0_q8_mad__avx2},
    {BL_TYPE_Q4_K, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q4_k_q8_mad__avx2,
     bl_gemm_q4_k_q8_mad__avx2},
    {BL_TYPE_Q5_K, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q5_k_q8_mad__avx2,
     bl_gemm_q5_k_q8_mad__avx2},
    {BL_TYPE_Q6_K, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q6_k_q8_mad__avx2,
     bl_gemm_q6_k_q8_mad__avx2},
    {BL_TYPE_TQ1_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_tq1_0_q8_mad__avx2,
     bl_gemm_tq1_0_q8_mad__avx2},
    {BL_TYPE_TQ2_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_tq2_0_q8_mad__avx2,
     bl_gemm_tq2_0_q8_mad__avx2},
    {BL_TYPE_Q1_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q1_0_q8_mad__avx2,
     bl_gemm_q1_0_q8_mad__avx2},
    {BL_TYPE_Q2_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q2_0_q8_mad__avx2,
     bl_gemm_q2_0_q8_mad__avx2},
    {BL_TYPE_Q2_0_G128, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q2_0_g128_q8_mad__avx2,
     bl_gemm_q2_0_g128_q8_mad__avx2},
    {BL_TYPE_BT2, BL_ACT_I8, BL_ALGO_LUT, bl_gemv_bt2_i8_lut__avx2,
     bl_gemm_bt2_i8_lut__avx2},
    {BL_TYPE_BT2, BL_ACT_I16, BL_ALGO_LUT, bl_gemv_bt2_i16_lut__avx2,
     bl_gemm_bt2_i16_lut__avx2},
    {BL_TYPE_BT1, BL_ACT_I8, BL_ALGO_LUT, bl_gemv_bt1_i8_lut__avx2,
     bl_gemm_bt1_i8_lut__avx2},
    {BL_TYPE_BT1, BL_ACT_I16, BL_ALGO_LUT, bl_gemv_bt1_i16_lut__avx2,
     bl_gemm_bt1_i16_lut__avx2},
    {BL_TYPE_BS1, BL_ACT_I8, BL_ALGO_LUT, bl_gemv_bs1_i8_lut__avx2,
     bl_gemm_bs1_i8_lut__avx2},
    {BL_TYPE_BS1, BL_ACT_I16, BL_ALGO_LUT, bl_gemv_bs1_i16_lut__avx2,
     bl_gemm_bs1_i16_lut__avx2},
    {BL_TYPE_Q1_0, BL_ACT_Q8, BL_ALGO_LUT, bl_gemv_q1_0_q8_lut__avx2,
     bl_gemm_q1_0_q8_lut__avx2},
    {BL_TYPE_Q2_0, BL_ACT_Q8, BL_ALGO_LUT, bl_gemv_q2_0_q8_lut__avx2,
     bl_gemm_q2_0_q8_lut__avx2},
    {BL_TYPE_Q2_0_G128, BL_ACT_Q8, BL_ALGO_LUT, bl_gemv_q2_0_g128_q8_lut__avx2,
     bl_gemm_q2_0_g128_q8_lut__avx2},
};

/* Batched GEMM: the bt1 LUT kernels win from one full token tile on
 * (BENCHMARKS.md, kernel table); its GEMV stays multiply-add. bs1's LUT
 * kernels win from one token on (lut.c, bs1_lut16.c). q1_0 and
 * q2_0 look sixteen rows up at once (q1_q2_lut.c): GEMV 2.5-2.8x (q1_0)
 * and 1.6-1.9x (q2_0) multiply-add's speed, batches of 8 and 16 1.4-2.8x
 * (BENCHMARKS.md, "q1_0 and q2_0 as lookup tables"). */
static const bl_auto_lut_row auto_lut[] = {
    {BL_TYPE_BT1, BL_ACT_I8, 16},
    {BL_TYPE_BS1, BL_ACT_I8, 1},
    {BL_TYPE_Q1_0, BL_ACT_Q8, 1},
    {BL_TYPE_Q2_0, BL_ACT_Q8, 1},
    {BL_TYPE_Q2_0_G128, BL_ACT_Q8, 1},
};

/* bt1's GEMV decodes base-3 digits at about 0.25 vector instructions per
 * weight and streams at 38% of the read bandwidth with two threads; bt2's
 * reads 25% more bytes at 76-93% (BENCHMARKS.md, "bt1 runs as bt2 on AVX2"). */
static const bl_runs_as_row runs_as[] = {
    {BL_TYPE_BT1, BL_TYPE_BT2},
};

const bl_isa_kernels bl_kernels_avx2 = {
    .rows = rows,
    .n_rows = BL_COUNT(rows),
    .attn_chunk = bl_attn_chunk__avx2,
    .auto_lut = auto_lut,
    .n_auto_lut = BL_COUNT(auto_lut),
    .runs_as = runs_as,
    .n_runs_as = BL_COUNT(runs_as),
};
