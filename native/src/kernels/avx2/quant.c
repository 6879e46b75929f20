/* AVX2 kernels for q8_0 and q4_0 weights (llama.cpp layouts, types/q8_0.c and
 * types/q4_0.c) against 32-blocks of int8 activations.
 *
 * One 32-byte vector holds a block. q8_0: vpmaddubsw(|w|, sign(x, w)) adds
 * column pairs (|w| <= 128, |x| <= 127 from the activation rule, so no
 * saturation). q4_0: the nibbles are unsigned 0..15, so vpmaddubsw(q, x)
 * works directly and the -8 offset is 8 * sum(x), which the activation block
 * carries. vpmaddwd with ones widens to int32, and the block's eight int32
 * lanes are converted and accumulated with FMA times d_w * d_x. */
#include <immintrin.h>

#include "../../types/fp16.h"
#include "../../types/quant_blocks.h"
#include "../kernels.h"
#include "simd.h"
#include "tiling.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

typedef enum quant_format { Q8_0, Q4_0 } quant_format;

ALWAYS_INLINE size_t block_bytes(quant_format f) {
    return f == Q8_0 ? BL_Q8_0_BYTES : BL_Q4_0_BYTES;
}

/* The weights of a block in the form vpmaddubsw takes: q8_0 keeps the signed
 * values (their magnitudes and signs are applied per token), q4_0 unpacks
 * nibbles to elements 0..15 (low) and 16..31 (high). */
ALWAYS_INLINE __m256i load_block(const uint8_t *block, quant_format f) {
    if (f == Q8_0) return _mm256_loadu_si256((const __m256i *)(block + 2));
    /* the 16 bytes in both lanes (a load), the high lane's dwords shifted down by a
     * nibble, one and: 2 operations where shift, 2 ands and an insert took 4 */
    const __m256i nibble_shift = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
    __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(block + 2)));
    return _mm256_and_si256(_mm256_srlv_epi32(v, nibble_shift), _mm256_set1_epi8(15));
}

/* Integer block dot as eight int32 lanes. */
ALWAYS_INLINE __m256i block_dot(__m256i w, __m256i w_abs, const bl_q8_block *xb,
                                quant_format f) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i xq = _mm256_loadu_si256((const __m256i *)xb->q);
    if (f == Q8_0)
        return _mm256_madd_epi16(_mm256_maddubs_epi16(w_abs, _mm256_sign_epi8(xq, w)), ones);
    __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(w, xq), ones);
    return _mm256_sub_epi32(dot, _mm256_set1_epi32(xb->sum));
}

/* rows x tokens results; the counts are constants at each call. */
ALWAYS_INLINE void tile(const bl_gemm_task *t, quant_format f, size_t row, int rows, size_t token,
                        int tokens) {
    const bl_activations *x = t->x;
    __m256 acc[BL_AVX2_TILE_ROWS][BL_AVX2_TILE_TOKENS];
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++) acc[i][j] = _mm256_setzero_ps();
    for (size_t b = 0; b < t->cols / BL_Q_BLOCK; b++) {
        for (int i = 0; i < rows; i++) {
            const uint8_t *block = t->w + (row + i) * t->w_row_bytes + b * block_bytes(f);
            if (tokens == 1) /* GEMV: x86_prefetch.h (every block: 1.1-1.3x once a line) */
                bl_prefetch(block + bl_prefetch_ahead(rows * t->w_row_bytes));
            float dw = bl_f16_load(block);
            __m256i w = load_block(block, f);
            __m256i w_abs = _mm256_abs_epi8(w);
            for (int j = 0; j < tokens; j++) {
                const bl_q8_block *xb =
                    (const bl_q8_block *)(x->data + (token + j) * x->row_bytes) + b;
                __m256 dot = _mm256_cvtepi32_ps(block_dot(w, w_abs, xb, f));
                acc[i][j] = _mm256_fmadd_ps(dot, _mm256_set1_ps(dw * xb->d), acc[i][j]);
            }
        }
    }
    float *out = t->out;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++)
            out[(token + j) * t->out_stride + row + i] = bl_avx2_hsum_ps(acc[i][j]);
}

static void q8_0_rows(const bl_gemm_task *t, size_t r, size_t n) {
    tile(t, Q8_0, r, BL_AVX2_TILE_ROWS, n, 1);
}
static void q8_0_tokens(const bl_gemm_task *t, size_t r, size_t n) {
    tile(t, Q8_0, r, 1, n, BL_AVX2_TILE_TOKENS);
}
static void q8_0_one(const bl_gemm_task *t, size_t r, size_t n) { tile(t, Q8_0, r, 1, n, 1); }
static void q4_0_rows(const bl_gemm_task *t, size_t r, size_t n) {
    tile(t, Q4_0, r, BL_AVX2_TILE_ROWS, n, 1);
}
static void q4_0_tokens(const bl_gemm_task *t, size_t r, size_t n) {
    tile(t, Q4_0, r, 1, n, BL_AVX2_TILE_TOKENS);
}
static void q4_0_one(const bl_gemm_task *t, size_t r, size_t n) { tile(t, Q4_0, r, 1, n, 1); }

static void q8_0_two(const bl_gemm_task *t, size_t r, size_t n) { tile(t, Q8_0, r, 1, n, 2); }
static void q8_0_three(const bl_gemm_task *t, size_t r, size_t n) { tile(t, Q8_0, r, 1, n, 3); }
static void q4_0_two(const bl_gemm_task *t, size_t r, size_t n) { tile(t, Q4_0, r, 1, n, 2); }
static void q4_0_three(const bl_gemm_task *t, size_t r, size_t n) { tile(t, Q4_0, r, 1, n, 3); }

static const bl_avx2_gemm_tiles q8_0_tiles = {1, BL_AVX2_TILE_TOKENS, q8_0_tokens, q8_0_tokens,
                                              q8_0_one, {NULL, q8_0_one, q8_0_two, q8_0_three}};
static const bl_avx2_gemm_tiles q4_0_tiles = {1, BL_AVX2_TILE_TOKENS, q4_0_tokens, q4_0_tokens,
                                              q4_0_one, {NULL, q4_0_one, q4_0_two, q4_0_three}};

void bl_gemv_q8_0_q8_mad__avx2(const bl_gemm_task *t) {
    bl_avx2_gemv(t, BL_AVX2_TILE_ROWS, q8_0_rows, q8_0_one);
}
void bl_gemm_q8_0_q8_mad__avx2(const bl_gemm_task *t) { bl_avx2_gemm(t, &q8_0_tiles); }
void bl_gemv_q4_0_q8_mad__avx2(const bl_gemm_task *t) {
    bl_avx2_gemv(t, BL_AVX2_TILE_ROWS, q4_0_rows, q4_0_one);
}
void bl_gemm_q4_0_q8_mad__avx2(const bl_gemm_task *t) { bl_avx2_gemm(t, &q4_0_tiles); }
