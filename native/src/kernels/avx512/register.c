/* The avx512 rows of the kernel table. */
#include "../kernels.h"

bl_gemm_kernel bl_gemv_bt2_i8_mad__avx512, bl_gemm_bt2_i8_mad__avx512,
    bl_gemv_bt2_i16_mad__avx512, bl_gemm_bt2_i16_mad__avx512,
    bl_gemv_bt1_i8_mad__avx512, bl_gemm_bt1_i8_mad__avx512,
    bl_gemv_bt1_i16_mad__avx512, bl_gemm_bt1_i16_mad__avx512,
    bl_gemv_bs1_i8_mad__avx512, bl_gemm_bs1_i8_mad__avx512,
    bl_gemv_bs1_i16_mad__avx512, bl_gemm_bs1_i16_mad__avx512,
    bl_gemv_f32_f32_mad__avx512, bl_gemm_f32_f32_mad__avx512,
    bl_gemv_f16_f32_mad__avx512, bl_gemm_f16_f32_mad__avx512,
    bl_gemv_bf16_f32_mad__avx512, bl_gemm_bf16_f32_mad__avx512,
    bl_gemv_q8_0_q8_mad__avx512, bl_gemm_q8_0_q8_mad__avx512,
    bl_gemv_q4_0_q8_mad__avx512, bl_gemm_q4_0_q8_mad__avx512,
    bl_gemv_tq1_0_q8_mad__avx512, bl_gemm_tq1_0_q8_mad__avx512,
    bl_gemv_tq2_0_q8_mad__avx512, bl_gemm_tq2_0_q8_mad__avx512,
    bl_gemv_q1_0_q8_mad__avx512, bl_gemm_q1_0_q8_mad__avx512,
    bl_gemv_q2_0_q8_mad__avx512, bl_gemm_q2_0_q8_mad__avx512,
    bl_gemv_q2_0_g128_q8_mad__avx512, bl_gemm_q2_0_g128_q8_mad__avx512,
    bl_gemv_bt2_i8_lut__avx512, bl_gemm_bt2_i8_lut__avx512,
    bl_gemv_bt2_i16_lut__avx512, bl_gemm_bt2_i16_lut__avx512,
    bl_gemv_bt1_i8_lut__avx512, bl_gemm_bt1_i8_lut__avx512,
    bl_gemv_bt1_i16_lut__avx512, bl_gemm_bt1_i16_lut__avx512,
    bl_gemv_bs1_i8_lut__avx512, bl_gemm_bs1_i8_lut__avx512,
    bl_gemv_bs1_i16_lut__avx512, bl_gemm_bs1_i16_lut__avx512;
bl_attn_chunk_kernel bl_attn_chunk__avx512;

void bl_avx512_bt1_tables_init(void);
void bl_avx512_quant_tables_init(void);
void bl_avx512_q1_q2_tables_init(void);

static void init(void) {
    bl_avx512_bt1_tables_init();
    bl_avx512_quant_tables_init();
    bl_avx512_q1_q2_tables_init();
}

static const bl_kernel_row rows[] = {
    {BL_TYPE_BT2, BL_ACT_I8, BL_ALGO_MAD, bl_gemv_bt2_i8_mad__avx512,
     bl_gemm_bt2_i8_mad__avx512},
    {BL_TYPE_BT2, BL_ACT_I16, BL_ALGO_MAD, bl_gemv_bt2_i16_mad__avx512,
     bl_gemm_bt2_i16_mad__avx512},
    {BL_TYPE_BT1, BL_ACT_I8, BL_ALGO_MAD, bl_gemv_bt1_i8_mad__avx512,
     bl_gemm_bt1_i8_mad__avx512},
    {BL_TYPE_BT1, BL_ACT_I16, BL_ALGO_MAD, bl_gemv_bt1_i16_mad__avx512,
     bl_gemm_bt1_i16_mad__avx512},
    {BL_TYPE_BS1, BL_ACT_I8, BL_ALGO_MAD, bl_gemv_bs1_i8_mad__avx512,
     bl_gemm_bs1_i8_mad__avx512},
    {BL_TYPE_BS1, BL_ACT_I16, BL_ALGO_MAD, bl_gemv_bs1_i16_mad__avx512,
     bl_gemm_bs1_i16_mad__avx512},
    {BL_TYPE_F32, BL_ACT_F32, BL_ALGO_MAD, bl_gemv_f32_f32_mad__avx512,
     bl_gemm_f32_f32_mad__avx512},
    {BL_TYPE_F16, BL_ACT_F32, BL_ALGO_MAD, bl_gemv_f16_f32_mad__avx512,
     bl_gemm_f16_f32_mad__avx512},
    {BL_TYPE_BF16, BL_ACT_F32, BL_ALGO_MAD, bl_gemv_bf16_f32_mad__avx512,
     bl_gemm_bf16_f32_mad__avx512},
    {BL_TYPE_Q8_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q8_0_q8_mad__avx512,
     bl_gemm_q8_0_q8_mad__avx512},
    {BL_TYPE_Q4_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q4_0_q8_mad__avx512,
     bl_gemm_q4_0_q8_mad__avx512},
    {BL_TYPE_TQ1_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_tq1_0_q8_mad__avx512,
     bl_gemm_tq1_0_q8_mad__avx512},
    {BL_TYPE_TQ2_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_tq2_0_q8_mad__avx512,
     bl_gemm_tq2_0_q8_mad__avx512},
    {BL_TYPE_Q1_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q1_0_q8_mad__avx512,
     bl_gemm_q1_0_q8_mad__avx512},
    {BL_TYPE_Q2_0, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q2_0_q8_mad__avx512,
     bl_gemm_q2_0_q8_mad__avx512},
    {BL_TYPE_Q2_0_G128, BL_ACT_Q8, BL_ALGO_MAD, bl_gemv_q2_0_g128_q8_mad__avx512,
     bl_gemm_q2_0_g128_q8_mad__avx512},
    {BL_TYPE_BT2, BL_ACT_I8, BL_ALGO_LUT, bl_gemv_bt2_i8_lut__avx512,
     bl_gemm_bt2_i8_lut__avx512},
    {BL_TYPE_BT2, BL_ACT_I16, BL_ALGO_LUT, bl_gemv_bt2_i16_lut__avx512,
     bl_gemm_bt2_i16_lut__avx512},
    {BL_TYPE_BT1, BL_ACT_I8, BL_ALGO_LUT, bl_gemv_bt1_i8_lut__avx512,
     bl_gemm_bt1_i8_lut__avx512},
    {BL_TYPE_BT1, BL_ACT_I16, BL_ALGO_LUT, bl_gemv_bt1_i16_lut__avx512,
     bl_gemm_bt1_i16_lut__avx512},
    {BL_TYPE_BS1, BL_ACT_I8, BL_ALGO_LUT, bl_gemv_bs1_i8_lut__avx512,
     bl_gemm_bs1_i8_lut__avx512},
    {BL_TYPE_BS1, BL_ACT_I16, BL_ALGO_LUT, bl_gemv_bs1_i16_lut__avx512,
     bl_gemm_bs1_i16_lut__avx512},
};

/* Batched GEMM: the bs1 LUT kernels win from one full token tile on
 * (BENCHMARKS.md, kernel table); its GEMV stays multiply-add. */
static const bl_auto_lut_row auto_lut[] = {
    {BL_TYPE_BS1, BL_ACT_I8, 32},
    {BL_TYPE_BS1, BL_ACT_I16, 16},
    /* q1_0's LUT slot holds AVX2's sixteen-row kernels (avx2/q1_q2_lut.c); on
     * Sapphire Rapids they decode a q1_0 model 1.2-1.7x and prompts 1.4-1.7x
     * faster than this ISA's multiply-add (BENCHMARKS.md) */
    {BL_TYPE_Q1_0, BL_ACT_Q8, 1},
};

const bl_isa_kernels bl_kernels_avx512 = {
    .rows = rows,
    .n_rows = BL_COUNT(rows),
    .attn_chunk = bl_attn_chunk__avx512,
    .auto_lut = auto_lut,
    .n_auto_lut = BL_COUNT(auto_lut),
    .init = init,
};
