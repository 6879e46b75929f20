/* AVX-VNNI kernels for bt2 (layout in types/bt2.c) with int8 activations.
 *
 * AVX-VNNI is AVX2 plus the VEX form of vpdpbusd: four byte products of an
 * unsigned code and a signed activation added into an int32 lane in one
 * instruction, where AVX2 spends a vpmaddubsw, a vpaddw and a share of a
 * vpmaddwd (kernels/avx2/bt2.c). As there, the 64 bytes of a block shifted by
 * 2k give the codes c = trit + 1 of columns 64k .. 64k + 63, a 32-byte half h
 * serves columns 64k + 32h + i, and the kernels subtract sum(x) at the end.
 *
 * GEMV: a half masked with 3 << 2k leaves 4^k c, so one accumulator per k
 *   takes it unshifted and an exact arithmetic shift scales it back at the
 *   end (as the AVX-512 GEMV): per 128 weights and row 1 load, 4 vpand,
 *   4 vpdpbusd (AVX2: 0.109 vector instructions per weight, here 0.07).
 *   Two rows per tile: their eight accumulators, the four masks and the
 *   operands fill the sixteen ymm registers.
 * GEMM: exact codes, unpacked once per half (1 load, 3 shifts, 4 vpand) and
 *   used by up to 8 tokens at 4 vpdpbusd each (AVX2: 8 instructions each). */
#include <immintrin.h>

#include "../avx2/simd.h"
#include "../avx2/tiling.h"
#include "../kernels.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define GEMV_ROWS 2
#define GEMM_TOKENS 8

ALWAYS_INLINE const int8_t *x_row(const bl_gemm_task *t, size_t token) {
    return (const int8_t *)(t->x->data + token * t->x->row_bytes);
}

ALWAYS_INLINE __m256i load(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* rows (1 or 2) x 1 token over the whole row; each row prefetches the same
 * bytes of the next tile's rows, as the AVX2 GEMV does. */
ALWAYS_INLINE void gemv_tile(const bl_gemm_task *t, size_t row, const int rows) {
    const int8_t *x = x_row(t, 0);
    __m256i acc[GEMV_ROWS][4];
    for (int i = 0; i < rows; i++)
        for (int k = 0; k < 4; k++) acc[i][k] = _mm256_setzero_si256();
    for (size_t b = 0; b < t->cols / 256; b++) {
        for (int i = 0; i < rows; i++) {
            const uint8_t *block = t->w + (row + i) * t->w_row_bytes + 64 * b;
            bl_prefetch(block + bl_prefetch_ahead(rows * t->w_row_bytes)); /* x86_prefetch.h */
            for (int h = 0; h < 2; h++) {
                __m256i q = load(block + 32 * h);
                for (int k = 0; k < 4; k++) {
                    __m256i scaled = _mm256_and_si256(q, _mm256_set1_epi8((char)(3 << 2 * k)));
                    __m256i xk = load(x + 256 * b + 64 * k + 32 * h);
                    acc[i][k] = _mm256_dpbusd_avx_epi32(acc[i][k], scaled, xk);
                }
            }
        }
    }
    int32_t *out = t->out;
    for (int i = 0; i < rows; i++) {
        /* lane by lane, acc[i][k] holds 4^k times its share of sum(c * x) */
        __m256i dot = _mm256_add_epi32(
            _mm256_add_epi32(acc[i][0], _mm256_srai_epi32(acc[i][1], 2)),
            _mm256_add_epi32(_mm256_srai_epi32(acc[i][2], 4), _mm256_srai_epi32(acc[i][3], 6)));
        out[row + i] = bl_avx2_minus(bl_avx2_hsum_epi32(dot), t->x->sums[0]);
    }
}

/* 1 row x tokens (a constant at each call, so the accumulators stay in
 * registers). */
ALWAYS_INLINE void gemm_tile(const bl_gemm_task *t, size_t row, size_t token, const int tokens) {
    const __m256i three = _mm256_set1_epi8(3);
    const uint8_t *w = t->w + row * t->w_row_bytes;
    __m256i acc[GEMM_TOKENS];
    for (int j = 0; j < tokens; j++) acc[j] = _mm256_setzero_si256();
    for (size_t b = 0; b < t->cols / 256; b++) {
        for (int h = 0; h < 2; h++) {
            __m256i q = load(w + 64 * b + 32 * h), codes[4];
            for (int k = 0; k < 4; k++)
                codes[k] = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), three);
            for (int j = 0; j < tokens; j++) {
                /* two chains of two: four dependent vpdpbusd (5 cycles each)
                 * per token would outlast the tile's 32 at two per cycle */
                const int8_t *x = x_row(t, token + j) + 256 * b + 32 * h;
                __m256i low = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), codes[0], load(x));
                low = _mm256_dpbusd_avx_epi32(low, codes[1], load(x + 64));
                acc[j] = _mm256_dpbusd_avx_epi32(acc[j], codes[2], load(x + 128));
                acc[j] = _mm256_dpbusd_avx_epi32(acc[j], codes[3], load(x + 192));
                acc[j] = _mm256_add_epi32(acc[j], low);
            }
        }
    }
    int32_t *out = t->out;
    for (int j = 0; j < tokens; j++)
        out[(token + j) * t->out_stride + row] =
            bl_avx2_minus(bl_avx2_hsum_epi32(acc[j]), t->x->sums[token + j]);
}

static void gemv_rows(const bl_gemm_task *t, size_t r, size_t n) {
    (void)n;
    gemv_tile(t, r, GEMV_ROWS);
}
static void gemv_one(const bl_gemm_task *t, size_t r, size_t n) {
    (void)n;
    gemv_tile(t, r, 1);
}

void bl_gemv_bt2_i8_mad__avx_vnni(const bl_gemm_task *t) {
    bl_avx2_gemv(t, GEMV_ROWS, gemv_rows, gemv_one);
}

/* One instance per token count, out of line so each keeps its registers. */
__attribute__((noinline)) static void gemm_row(const bl_gemm_task *t, size_t r, size_t token,
                                               size_t tokens) {
    switch (tokens) {
    case 1: gemm_tile(t, r, token, 1); break;
    case 2: gemm_tile(t, r, token, 2); break;
    case 3: gemm_tile(t, r, token, 3); break;
    case 4: gemm_tile(t, r, token, 4); break;
    case 5: gemm_tile(t, r, token, 5); break;
    case 6: gemm_tile(t, r, token, 6); break;
    case 7: gemm_tile(t, r, token, 7); break;
    default: gemm_tile(t, r, token, GEMM_TOKENS); break;
    }
}

/* Rows in chunks that stay in L2 while every token tile passes over them. */
void bl_gemm_bt2_i8_mad__avx_vnni(const bl_gemm_task *t) {
    size_t chunk = BL_AVX2_GEMM_CHUNK_BYTES / t->w_row_bytes;
    if (chunk == 0) chunk = 1;
    for (size_t first = 0; first < t->rows; first += chunk) {
        size_t last = first + chunk < t->rows ? first + chunk : t->rows;
        for (size_t n = 0; n < t->x->n; n += GEMM_TOKENS) {
            size_t tokens = t->x->n - n < GEMM_TOKENS ? t->x->n - n : GEMM_TOKENS;
            for (size_t r = first; r < last; r++) gemm_row(t, r, n, tokens);
        }
    }
}
