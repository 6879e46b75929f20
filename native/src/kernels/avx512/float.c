/* AVX-512 kernels for the float types (f32, f16, bf16) with float
 * activations: 16 columns at a time, weights widened to float32 (vcvtph2ps
 * for f16, a 16-bit shift for bf16) and FMA'd into one accumulator per
 * (row, token). A tile of rows x tokens reuses each widened weight vector
 * across the tokens and each activation vector across the rows. A row's
 * result is summed in the same order whatever its tile, so GEMV, GEMM and
 * any thread split agree bit for bit. */
#include "../kernels.h"
#include "float_tiling.h"
#include "simd.h"

typedef enum float_type { F32, F16, BF16 } float_type;

/* 16 weights from column c on, the lanes outside `lanes` read as zero. */
BL_INLINE __m512 load_weights(const uint8_t *row, size_t c, __mmask16 lanes,
                              const float_type type) {
    const int whole = lanes == (__mmask16)0xFFFF;
    switch (type) {
    case F32:
        return whole ? _mm512_loadu_ps(row + 4 * c) : _mm512_maskz_loadu_ps(lanes, row + 4 * c);
    case F16: {
        __m256i h = whole ? _mm256_loadu_si256((const __m256i *)(row + 2 * c))
                          : _mm256_maskz_loadu_epi16(lanes, row + 2 * c);
        return _mm512_cvtph_ps(h);
    }
    default: {
        __m256i h = whole ? _mm256_loadu_si256((const __m256i *)(row + 2 * c))
                          : _mm256_maskz_loadu_epi16(lanes, row + 2 * c);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    }
}

/* One step of 16 columns (those in `lanes`) for a tile of rows x tokens. */
BL_INLINE void float_step(__m512 acc[8][4], const uint8_t *const w[8], const float *const x[4],
                          size_t c, __mmask16 lanes, const int rows, const int tokens,
                          const float_type type, size_t ahead) {
    __m512 wv[8];
    for (int i = 0; i < rows; i++) {
        wv[i] = load_weights(w[i], c, lanes, type);
        if (ahead) bl_prefetch(w[i] + (type == F32 ? 4 : 2) * c + ahead);
    }
    for (int j = 0; j < tokens; j++) {
        __m512 xv = lanes == (__mmask16)0xFFFF ? _mm512_loadu_ps(x[j] + c)
                                               : _mm512_maskz_loadu_ps(lanes, x[j] + c);
        for (int i = 0; i < rows; i++) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
    }
}

/* out for rows r .. r + rows - 1 (those that exist) and tokens tok .. tok + tokens - 1;
 * ahead > 0 prefetches the weights that far ahead (GEMV). */
BL_INLINE void float_tile(const bl_gemm_task *t, size_t r, size_t tok, const int rows,
                          const int tokens, const int type, size_t ahead) {
    const uint8_t *w[8];
    const float *x[4];
    __m512 acc[8][4];
    for (int i = 0; i < rows; i++) {
        w[i] = bl_group_row(t->w, t->w_row_bytes, r, (size_t)i, t->rows);
        for (int j = 0; j < tokens; j++) acc[i][j] = _mm512_setzero_ps();
    }
    for (int j = 0; j < tokens; j++)
        x[j] = (const float *)(t->x->data + (tok + (size_t)j) * t->x->row_bytes);
    size_t whole = t->cols / 16 * 16;
    for (size_t c = 0; c < whole; c += 16)
        float_step(acc, w, x, c, 0xFFFF, rows, tokens, type, ahead);
    if (whole < t->cols)
        float_step(acc, w, x, whole, (__mmask16)((1u << (t->cols - whole)) - 1), rows, tokens,
                   type, ahead);
    bl_store_float_tile(t, acc, r, tok, rows, tokens);
}

void bl_gemv_f32_f32_mad__avx512(const bl_gemm_task *t) {
    bl_float_gemv(t, float_tile, F32);
}
void bl_gemm_f32_f32_mad__avx512(const bl_gemm_task *t) {
    bl_float_gemm(t, float_tile, F32);
}
void bl_gemv_f16_f32_mad__avx512(const bl_gemm_task *t) {
    bl_float_gemv(t, float_tile, F16);
}
void bl_gemm_f16_f32_mad__avx512(const bl_gemm_task *t) {
    bl_float_gemm(t, float_tile, F16);
}
void bl_gemv_bf16_f32_mad__avx512(const bl_gemm_task *t) {
    bl_float_gemv(t, float_tile, BF16);
}
void bl_gemm_bf16_f32_mad__avx512(const bl_gemm_task *t) {
    bl_float_gemm(t, float_tile, BF16);
}
