/* How the avx2 kernels walk a task. A tile multiplies a few weight rows with
 * a few activation rows over the whole row length and writes their results;
 * GEMV puts several rows in a tile so they share activation loads, GEMM puts
 * several tokens in a tile so they share each unpacked weight vector. */
#ifndef BL_AVX2_TILING_H
#define BL_AVX2_TILING_H

#include "../kernels.h"

typedef void (*bl_avx2_tile_fn)(const bl_gemm_task *t, size_t row, size_t token);

/* Rows per GEMV tile and tokens per GEMM tile (float.c picks its own). */
#define BL_AVX2_TILE_ROWS 4
#define BL_AVX2_TILE_TOKENS 4

/* Weight bytes a GEMM row chunk may take so that it stays in L2 while every
 * token tile passes over it. */
#define BL_AVX2_GEMM_CHUNK_BYTES (128 * 1024)

/* A GEMM's tiles: `full` covers rows x tokens, `row` 1 x tokens (the rows
 * left over), `one` 1 x 1; `few[k]`, where a kernel has it, 1 x k for the
 * k < tokens tokens left over (else `one` takes them one at a time: a batch of
 * 2 or 3 tokens then cost 2 or 3 passes over the weights). */
typedef struct bl_avx2_gemm_tiles {
    size_t rows, tokens;
    bl_avx2_tile_fn full, row, one;
    bl_avx2_tile_fn few[BL_AVX2_TILE_TOKENS];
} bl_avx2_gemm_tiles;

static inline void bl_avx2_gemv(const bl_gemm_task *t, size_t tile_rows, bl_avx2_tile_fn rows_tile,
                                bl_avx2_tile_fn one_row) {
    size_t r = 0;
    for (; r + tile_rows <= t->rows; r += tile_rows) rows_tile(t, r, 0);
    for (; r < t->rows; r++) one_row(t, r, 0);
}

static inline void bl_avx2_gemm(const bl_gemm_task *t, const bl_avx2_gemm_tiles *tiles) {
    size_t chunk = BL_AVX2_GEMM_CHUNK_BYTES / t->w_row_bytes / tiles->rows * tiles->rows;
    if (chunk == 0) chunk = tiles->rows;
    for (size_t first = 0; first < t->rows; first += chunk) {
        size_t last = first + chunk < t->rows ? first + chunk : t->rows;
        size_t n = 0;
        for (; n + tiles->tokens <= t->x->n; n += tiles->tokens) {
            size_t r = first;
            for (; r + tiles->rows <= last; r += tiles->rows) tiles->full(t, r, n);
            for (; r < last; r++) tiles->row(t, r, n);
        }
        size_t left = t->x->n - n;
        if (left < BL_AVX2_TILE_TOKENS && tiles->few[left])
            for (size_t r = first; r < last; r++) tiles->few[left](t, r, n);
        else
            for (; n < t->x->n; n++)
                for (size_t r = first; r < last; r++) tiles->one(t, r, n);
    }
}

/* Defines the GEMV entry point `gemv` and the GEMM entry point `gemm` of a
 * kernel whose tile(t, row, rows, token, tokens) unrolls over constant
 * counts: GEMV tiles of BL_AVX2_TILE_ROWS rows x 1 token, GEMM tiles of
 * 1 row x BL_AVX2_TILE_TOKENS tokens, 1 x 1, 1 x 2 and 1 x 3 tiles for what is
 * left over. */
_Static_assert(BL_AVX2_TILE_TOKENS == 4, "BL_AVX2_ROWS_OR_TOKENS_KERNELS makes tiles of 1-3");
#define BL_AVX2_ROWS_OR_TOKENS_KERNELS(tile, gemv, gemm)                                          \
    static void tile##_rows(const bl_gemm_task *t, size_t r, size_t n) {                          \
        tile(t, r, BL_AVX2_TILE_ROWS, n, 1);                                                      \
    }                                                                                             \
    static void tile##_tokens(const bl_gemm_task *t, size_t r, size_t n) {                        \
        tile(t, r, 1, n, BL_AVX2_TILE_TOKENS);                                                    \
    }                                                                                             \
    static void tile##_one(const bl_gemm_task *t, size_t r, size_t n) { tile(t, r, 1, n, 1); }   \
    static void tile##_two(const bl_gemm_task *t, size_t r, size_t n) { tile(t, r, 1, n, 2); }   \
    static void tile##_three(const bl_gemm_task *t, size_t r, size_t n) { tile(t, r, 1, n, 3); } \
    static const bl_avx2_gemm_tiles tile##_tiles = {                                              \
        1, BL_AVX2_TILE_TOKENS, tile##_tokens, tile##_tokens, tile##_one,                         \
        {NULL, tile##_one, tile##_two, tile##_three}};                                            \
    void gemv(const bl_gemm_task *t) {                                                            \
        bl_avx2_gemv(t, BL_AVX2_TILE_ROWS, tile##_rows, tile##_one);                              \
    }                                                                                             \
    void gemm(const bl_gemm_task *t) { bl_avx2_gemm(t, &tile##_tiles); }

#endif
