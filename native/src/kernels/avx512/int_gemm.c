/* The shared integer GEMM: for each group of GEMM_ROWS weight rows and each
 * chunk of columns, the rows are decoded once into one byte per weight, then
 * a tile of GEMM_ROWS rows x up to GEMM_TOKENS tokens is multiplied with
 * vpdpbusd (I8) or vpdpwssd (I16) into 24 register accumulators, so every
 * decoded weight and every activation load is reused several times.
 * Chunks add their exact int32 partial dots into out. */
#include <string.h>

#include "int_gemm.h"
#include "simd.h"

#define GEMM_ROWS 4
#define GEMM_TOKENS 6
/* With I16 activations the codes are widened to int16 once per chunk, and
 * chunks are half as wide so codes and activations still fit in L1. */
#define I8_CHUNK_COLS BL_AVX512_CHUNK_COLS
#define I16_CHUNK_COLS (BL_AVX512_CHUNK_COLS / 2)

typedef struct tile {
    const uint8_t *codes; /* GEMM_ROWS rows of a chunk of codes (u8 or i16) */
    size_t cols;          /* columns in this chunk                          */
    const uint8_t *x;     /* the tile's first token, at the chunk's column  */
    size_t x_row_bytes;
    const int32_t *sums;  /* sum(x) of the tile's first token               */
    int32_t *out;         /* the tile's first token, at the group's row     */
    size_t out_stride;
    __mmask8 valid_rows;
    int first_chunk;
    bl_avx512_codes meaning;
} tile;

/* Adds one token's four code dots into out: the first chunk also sets the
 * type's offset, later chunks add to what earlier ones left. */
BL_INLINE void tile_store(const tile *a, int token, __m128i dots) {
    int32_t *out = a->out + (size_t)token * a->out_stride;
    __m128i base;
    if (a->first_chunk) {
        int32_t sum = a->sums[token];
        base = _mm_set1_epi32(a->meaning == BL_CODES_TERNARY ? -sum : sum);
    } else {
        base = _mm_maskz_loadu_epi32(a->valid_rows, out);
    }
    if (a->meaning == BL_CODES_SIGN) /* sum(x) - 2 * dots */
        dots = _mm_sub_epi32(_mm_setzero_si128(), _mm_add_epi32(dots, dots));
    _mm_mask_storeu_epi32(out, a->valid_rows, _mm_add_epi32(base, dots));
}

BL_INLINE void tile_i8(const tile *a, const int tokens) {
    __m512i acc[GEMM_ROWS][GEMM_TOKENS];
    /* every loop over the tile unrolled whole (16: more than any of its
     * counts): any left rolled (GCC's own unrolling stops short of some)
     * keeps acc[][] on the stack, cleared with 24 stores before the loop and
     * stored again after it at every call */
#pragma GCC unroll 16
    for (int i = 0; i < GEMM_ROWS; i++)
#pragma GCC unroll 16
        for (int j = 0; j < tokens; j++) acc[i][j] = _mm512_setzero_si512();
    for (size_t c = 0; c < a->cols; c += 64) {
        __m512i w[GEMM_ROWS];
        for (int i = 0; i < GEMM_ROWS; i++)
            w[i] = _mm512_load_si512(a->codes + i * I8_CHUNK_COLS + c);
        for (int j = 0; j < tokens; j++) {
            __m512i xv = _mm512_load_si512(a->x + j * a->x_row_bytes + c);
            for (int i = 0; i < GEMM_ROWS; i++) acc[i][j] = bl_dpbusd(acc[i][j], w[i], xv);
        }
    }
#pragma GCC unroll 16
    for (int j = 0; j < tokens; j++)
        tile_store(a, j, bl_sum4_epi32(acc[0][j], acc[1][j], acc[2][j], acc[3][j]));
}

BL_INLINE void tile_i16(const tile *a, const int tokens) {
    __m512i acc[GEMM_ROWS][GEMM_TOKENS];
#pragma GCC unroll 16
    for (int i = 0; i < GEMM_ROWS; i++)
#pragma GCC unroll 16
        for (int j = 0; j < tokens; j++) acc[i][j] = _mm512_setzero_si512();
    for (size_t c = 0; c < a->cols; c += 32) {
        __m512i w[GEMM_ROWS];
        for (int i = 0; i < GEMM_ROWS; i++)
            w[i] = _mm512_load_si512(a->codes + 2 * (i * I16_CHUNK_COLS + c));
        for (int j = 0; j < tokens; j++) {
            __m512i xv = _mm512_load_si512(a->x + j * a->x_row_bytes + 2 * c);
            for (int i = 0; i < GEMM_ROWS; i++) acc[i][j] = bl_dpwssd(acc[i][j], w[i], xv);
        }
    }
#pragma GCC unroll 16
    for (int j = 0; j < tokens; j++)
        tile_store(a, j, bl_sum4_epi32(acc[0][j], acc[1][j], acc[2][j], acc[3][j]));
}

/* One instance per token count, so the accumulators stay in registers; out of
 * line, since inlined into the driver GCC 12 copies them around every
 * vpdpbusd. */
__attribute__((noinline)) static void run_tile_i8(const tile *a, size_t tokens) {
    switch (tokens) {
    case 1: tile_i8(a, 1); break;
    case 2: tile_i8(a, 2); break;
    case 3: tile_i8(a, 3); break;
    case 4: tile_i8(a, 4); break;
    case 5: tile_i8(a, 5); break;
    default: tile_i8(a, 6); break;
    }
}

__attribute__((noinline)) static void run_tile_i16(const tile *a, size_t tokens) {
    switch (tokens) {
    case 1: tile_i16(a, 1); break;
    case 2: tile_i16(a, 2); break;
    case 3: tile_i16(a, 3); break;
    case 4: tile_i16(a, 4); break;
    case 5: tile_i16(a, 5); break;
    default: tile_i16(a, 6); break;
    }
}

/* Widens GEMM_ROWS rows of byte codes to int16. */
static void widen_codes(const uint8_t *codes, size_t cols, uint8_t *wide) {
    for (int i = 0; i < GEMM_ROWS; i++)
        for (size_t c = 0; c < cols; c += 32)
            _mm512_store_si512(wide + 2 * (i * I16_CHUNK_COLS + c),
                               _mm512_cvtepu8_epi16(_mm256_load_si256(
                                   (const __m256i *)(codes + i * I8_CHUNK_COLS + c))));
}

void bl_avx512_int_gemm(const bl_gemm_task *t, bl_avx512_decode_fn decode,
                        bl_avx512_codes meaning) {
    _Alignas(64) uint8_t codes[GEMM_ROWS * I8_CHUNK_COLS];
    _Alignas(64) uint8_t wide[GEMM_ROWS * I16_CHUNK_COLS * 2];
    const bl_activations *x = t->x;
    int i16 = x->format == BL_ACT_I16;
    size_t chunk = i16 ? I16_CHUNK_COLS : I8_CHUNK_COLS;
    /* The decoder is the first to touch the weights: ask for the same chunk of
     * the rows a few groups on while it decodes this one (a row's bytes are
     * proportional to its columns for every type here). */
    size_t ahead = bl_prefetch_ahead(GEMM_ROWS * t->w_row_bytes);
    for (size_t r = 0; r < t->rows; r += GEMM_ROWS) {
        size_t group = t->rows - r < GEMM_ROWS ? t->rows - r : GEMM_ROWS;
        /* rows past the end multiply as zero codes and are not stored */
        memset(codes + group * I8_CHUNK_COLS, 0, (GEMM_ROWS - group) * I8_CHUNK_COLS);
        for (size_t c = 0; c < t->cols; c += chunk) {
            size_t cols = t->cols - c < chunk ? t->cols - c : chunk;
            for (size_t i = 0; i < group; i++) {
                const uint8_t *row = t->w + (r + i) * t->w_row_bytes;
                bl_prefetch_block(row + c * t->w_row_bytes / t->cols + ahead,
                                  cols * t->w_row_bytes / t->cols);
                decode(row, c, cols, codes + i * I8_CHUNK_COLS);
            }
            if (i16) widen_codes(codes, cols, wide);
            for (size_t j = 0; j < x->n; j += GEMM_TOKENS) {
                tile a = {
                    .codes = i16 ? wide : codes,
                    .cols = cols,
                    .x = x->data + j * x->row_bytes + c * (i16 ? 2 : 1),
                    .x_row_bytes = x->row_bytes,
                    .sums = x->sums + j,
                    .out = (int32_t *)t->out + j * t->out_stride + r,
                    .out_stride = t->out_stride,
                    .valid_rows = bl_first_lanes(group),
                    .first_chunk = c == 0,
                    .meaning = meaning,
                };
                if (i16)
                    run_tile_i16(&a, x->n - j);
                else
                    run_tile_i8(&a, x->n - j);
            }
        }
    }
}
