/* AVX2 kernels for the float types (f32, f16, bf16) with float activations.
 *
 * Eight weights are loaded and widened to float32 (vcvtph2ps for f16, a
 * 16-bit shift for bf16) and multiplied into one accumulator per (row, token)
 * with FMA; a tile has eight independent FMA chains to hide the FMA latency.
 * Every (row, token) result is summed in the same order whatever tile it
 * falls in, so results do not depend on how rows are split across threads.
 * A row's last cols % 8 weights are copied to a zeroed buffer (weight rows
 * may end the mapping); the activation rows are zero-padded to 64 bytes. */
#include <immintrin.h>
#include <string.h>

#include "../kernels.h"
#include "simd.h"
#include "tiling.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* GEMV: eight rows share each activation load. GEMM: two rows x four tokens
 * share weight conversions and activation loads, and keep the four tokens'
 * activations small enough for L1. Eight accumulators either way. */
#define GEMV_ROWS 8
#define GEMM_ROWS 2
#define GEMM_TOKENS 4

typedef enum weight_format { F32, F16, BF16 } weight_format;

ALWAYS_INLINE size_t weight_bytes(weight_format f) { return f == F32 ? 4 : 2; }

ALWAYS_INLINE __m256 load8(const uint8_t *w, weight_format f) {
    if (f == F32) return _mm256_loadu_ps((const float *)w);
    __m128i h = _mm_loadu_si128((const __m128i *)w);
    if (f == F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* Adds wv times eight columns (from c) of each token to acc[j]. */
ALWAYS_INLINE void multiply(const bl_activations *x, __m256 wv, size_t c, size_t token,
                            int tokens, __m256 *acc) {
    for (int j = 0; j < tokens; j++) {
        const float *xj = (const float *)(x->data + (token + j) * x->row_bytes) + c;
        acc[j] = _mm256_fmadd_ps(wv, _mm256_load_ps(xj), acc[j]);
    }
}

/* rows x tokens results; the counts are constants at each call. */
ALWAYS_INLINE void tile(const bl_gemm_task *t, weight_format f, size_t row, int rows,
                        size_t token, int tokens) {
    const size_t eb = weight_bytes(f), whole = t->cols / 8 * 8;
    __m256 acc[GEMV_ROWS][GEMM_TOKENS];
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++) acc[i][j] = _mm256_setzero_ps();
    for (size_t c = 0; c < whole; c += 8)
        for (int i = 0; i < rows; i++)
            multiply(t->x, load8(t->w + (row + i) * t->w_row_bytes + c * eb, f), c, token,
                     tokens, acc[i]);
    if (whole < t->cols) {
        for (int i = 0; i < rows; i++) {
            uint8_t tail[32] = {0};
            memcpy(tail, t->w + (row + i) * t->w_row_bytes + whole * eb, (t->cols - whole) * eb);
            multiply(t->x, load8(tail, f), whole, token, tokens, acc[i]);
        }
    }
    float *out = t->out;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++)
            out[(token + j) * t->out_stride + row + i] = bl_avx2_hsum_ps(acc[i][j]);
}

static void f32_rows(const bl_gemm_task *t, size_t r, size_t n) {
    tile(t, F32, r, GEMV_ROWS, n, 1);
}
static void f32_block(const bl_gemm_task *t, size_t r, size_t n) {
    tile(t, F32, r, GEMM_ROWS, n, GEMM_TOKENS);
}
static void f32_tokens(const bl_gemm_task *t, size_t r, size_t n) {
    tile(t, F32, r, 1, n, GEMM_TOKENS);
}
static void f32_one(const bl_gemm_task *t, size_t r, size_t n) { tile(t, F32, r, 1, n, 1); }
static void f16_rows(const bl_gemm_task *t, size_t r, size_t n) {
    tile(t, F16, r, GEMV_ROWS, n, 1);
}
static void f16_block(const bl_gemm_task *t, size_t r, size_t n) {
    tile(t, F16, r, GEMM_ROWS, n, GEMM_TOKENS);
}
static void f16_tokens(const bl_gemm_task *t, size_t r, size_t n) {
    tile(t, F16, r, 1, n, GEMM_TOKENS);
}
static void f16_one(const bl_gemm_task *t, size_t r, size_t n) { tile(t, F16, r, 1, n, 1); }
static void bf16_rows(const bl_gemm_task *t, size_t r, size_t n) {
    tile(t, BF16, r, GEMV_ROWS, n, 1);
}
static void bf16_block(const bl_gemm_task *t, size_t r, size_t n) {
    tile(t, BF16, r, GEMM_ROWS, n, GEMM_TOKENS);
}
static void bf16_tokens(const bl_gemm_task *t, size_t r, size_t n) {
    tile(t, BF16, r, 1, n, GEMM_TOKENS);
}
static void bf16_one(const bl_gemm_task *t, size_t r, size_t n) { tile(t, BF16, r, 1, n, 1); }

/* Float tiles take leftover tokens one at a time (no `few`): float heads are
 * the reference path, not the batched decode one. */
static const bl_avx2_gemm_tiles f32_tiles = {GEMM_ROWS, GEMM_TOKENS, f32_block,
                                             f32_tokens, f32_one, {NULL}};
static const bl_avx2_gemm_tiles f16_tiles = {GEMM_ROWS, GEMM_TOKENS, f16_block,
                                             f16_tokens, f16_one, {NULL}};
static const bl_avx2_gemm_tiles bf16_tiles = {GEMM_ROWS, GEMM_TOKENS, bf16_block,
                                              bf16_tokens, bf16_one, {NULL}};

void bl_gemv_f32_f32_mad__avx2(const bl_gemm_task *t) {
    bl_avx2_gemv(t, GEMV_ROWS, f32_rows, f32_one);
}
void bl_gemm_f32_f32_mad__avx2(const bl_gemm_task *t) { bl_avx2_gemm(t, &f32_tiles); }
void bl_gemv_f16_f32_mad__avx2(const bl_gemm_task *t) {
    bl_avx2_gemv(t, GEMV_ROWS, f16_rows, f16_one);
}
void bl_gemm_f16_f32_mad__avx2(const bl_gemm_task *t) { bl_avx2_gemm(t, &f16_tiles); }
void bl_gemv_bf16_f32_mad__avx2(const bl_gemm_task *t) {
    bl_avx2_gemv(t, GEMV_ROWS, bf16_rows, bf16_one);
}
void bl_gemm_bf16_f32_mad__avx2(const bl_gemm_task *t) { bl_avx2_gemm(t, &bf16_tiles); }
