/* AMX kernel for q8_0 weights x Q8 activations: the output head of batched
 * decode (8 or 16 sequences) and prompt processing of q8_0 models.
 *
 * One TDPBSSD multiplies a tile of 8 weight rows x one 32-weight block (A:
 * signed bytes, read in place: a q8_0 block is its f16 scale and then its 32
 * weights) with the same block of 16 tokens (B, "VNNI" order: row k holds
 * columns 4k .. 4k + 3 of each token) into 8 x 16 exact int32 block dots.
 * Those are what the AVX-512 kernels' float order (kernels/avx512/quant.c)
 * starts from: per (row, token), block dot x (weight d * activation d) FMA'd
 * into an even-block and an odd-block chain, in block order, result = even +
 * odd. Here the chains run over 16 tokens at once (one vector per row and
 * chain), where AVX-512 spends a vpdpbusd, a share of a reduction tree, a
 * conversion and an FMA per 64 weights, row and token; so a token's logits are
 * the same bits alone (the AVX-512 GEMV) or in any batch.
 * Passes of up to 32 tokens (two B tiles); rows past the last whole tile of 8,
 * and fewer than MIN_TOKENS tokens, go to the AVX-512 kernels. */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "../../types/quant_blocks.h"
#include "../kernels.h"
#include "tiles.h"

#define ROWS 8        /* weight rows per A and C tile                  */
#define TOKENS 16     /* tokens per B and C tile                       */
#define GROUPS 2      /* B tiles per pass                              */
#define MIN_TOKENS 6  /* below, the AVX-512 GEMM is as fast (measured)  */

bl_gemm_kernel bl_gemv_q8_0_q8_mad__avx512, bl_gemm_q8_0_q8_mad__avx512;

/* Tile numbers (the intrinsics take them as literal register names). */
#define TILE_C0 0
#define TILE_C1 1
#define TILE_A 2
#define TILE_B0 3
#define TILE_B1 4

static void configure_tiles(void) {
    const bl_amx_shape c = {ROWS, TOKENS * 4}, a = {ROWS, BL_Q_BLOCK},
                       b = {BL_Q_BLOCK / 4, TOKENS * 4};
    bl_amx_shape shapes[BL_AMX_TILES] = {{0, 0}};
    shapes[TILE_C0] = shapes[TILE_C1] = c;
    shapes[TILE_A] = a;
    shapes[TILE_B0] = shapes[TILE_B1] = b;
    bl_amx_configure(shapes);
}

/* One pass's activations: B tiles [group][block][8][64] and the activation
 * scales [group][block][16], zeros past the last token. */
typedef struct packed_tokens {
    int8_t *tiles;
    float *scales;
    size_t tokens;        /* in this pass */
    float *weight_scales; /* scratch: [ROWS][blocks], one tile's */
} packed_tokens;

static void pack_tokens(const bl_activations *x, size_t first, size_t blocks, packed_tokens *p) {
    memset(p->tiles, 0, GROUPS * blocks * BL_Q_BLOCK * TOKENS);
    memset(p->scales, 0, GROUPS * blocks * TOKENS * sizeof(float));
    for (size_t n = 0; n < p->tokens; n++) {
        const bl_q8_block *row = (const bl_q8_block *)(x->data + (first + n) * x->row_bytes);
        size_t g = n / TOKENS, lane = n % TOKENS;
        for (size_t b = 0; b < blocks; b++) {
            int8_t *tile = p->tiles + (g * blocks + b) * BL_Q_BLOCK * TOKENS;
            for (size_t k = 0; k < BL_Q_BLOCK / 4; k++)
                memcpy(tile + k * TOKENS * 4 + lane * 4, row[b].q + 4 * k, 4);
            p->scales[(g * blocks + b) * TOKENS + lane] = row[b].d;
        }
    }
}

/* The weight rows r .. r + ROWS - 1 of the next tile, block b, towards L1. */
static inline void prefetch_tile(const bl_gemm_task *t, size_t r, size_t b) {
    if (r + ROWS > t->rows) return;
    for (size_t i = 0; i < ROWS; i++)
        _mm_prefetch((const char *)t->w + (r + i) * t->w_row_bytes + b * BL_Q8_0_BYTES,
                     _MM_HINT_T0);
}

/* The f16 scales of a tile's rows as float, [ROWS][blocks]: 16 blocks per
 * gather (4 bytes from each block's start, the scale in the low half). */
static void weight_scales(const bl_gemm_task *t, const uint8_t *w, size_t blocks, float *out) {
    const __m512i starts = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32(BL_Q8_0_BYTES));
    for (size_t i = 0; i < ROWS; i++)
        for (size_t b = 0; b < blocks; b += 16) {
            __mmask16 in = blocks - b >= 16 ? (__mmask16)0xffff
                                            : (__mmask16)((1u << (blocks - b)) - 1);
            const uint8_t *at = w + i * t->w_row_bytes + b * BL_Q8_0_BYTES;
            __m512i words = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), in, starts, at, 1);
            _mm512_mask_storeu_ps(out + i * blocks + b, in,
                                  _mm512_cvtph_ps(_mm512_cvtepi32_epi16(words)));
        }
}

/* Rows r .. r + ROWS - 1 for the pass's tokens (first .. first + tokens - 1). */
static void multiply_tile(const bl_gemm_task *t, size_t r, size_t first, const packed_tokens *p,
                          size_t blocks, int groups) {
    __m512 chains[2][GROUPS][ROWS]; /* [even / odd block][group][row] */
    for (int c = 0; c < 2; c++)
        for (int g = 0; g < groups; g++)
            for (int i = 0; i < ROWS; i++) chains[c][g][i] = _mm512_setzero_ps();
    const uint8_t *w = t->w + r * t->w_row_bytes;
    weight_scales(t, w, blocks, p->weight_scales);
    for (size_t b = 0; b < blocks; b++) {
        prefetch_tile(t, r + ROWS, b);
        _Alignas(64) int32_t dots[GROUPS][ROWS][TOKENS];
        _tile_loadd(TILE_A, w + b * BL_Q8_0_BYTES + 2, t->w_row_bytes);
        _tile_zero(TILE_C0);
        _tile_loadd(TILE_B0, p->tiles + b * BL_Q_BLOCK * TOKENS, TOKENS * 4);
        _tile_dpbssd(TILE_C0, TILE_A, TILE_B0);
        _tile_stored(TILE_C0, dots[0], TOKENS * 4);
        if (groups == 2) {
            _tile_zero(TILE_C1);
            _tile_loadd(TILE_B1, p->tiles + (blocks + b) * BL_Q_BLOCK * TOKENS, TOKENS * 4);
            _tile_dpbssd(TILE_C1, TILE_A, TILE_B1);
            _tile_stored(TILE_C1, dots[1], TOKENS * 4);
        }
        for (int g = 0; g < groups; g++) {
            const __m512 x_scale = _mm512_loadu_ps(p->scales + (g * blocks + b) * TOKENS);
            for (int i = 0; i < ROWS; i++) {
                __m512 scale = _mm512_mul_ps(
                    _mm512_set1_ps(p->weight_scales[(size_t)i * blocks + b]), x_scale);
                __m512 dot = _mm512_cvtepi32_ps(_mm512_load_si512(dots[g][i]));
                chains[b % 2][g][i] = _mm512_fmadd_ps(dot, scale, chains[b % 2][g][i]);
            }
        }
    }
    float *out = t->out;
    for (int g = 0; g < groups; g++)
        for (int i = 0; i < ROWS; i++) {
            _Alignas(64) float sums[TOKENS];
            _mm512_store_ps(sums, _mm512_add_ps(chains[0][g][i], chains[1][g][i]));
            for (size_t n = g * TOKENS; n < p->tokens && n < (size_t)(g + 1) * TOKENS; n++)
                out[(first + n) * t->out_stride + r + i] = sums[n % TOKENS];
        }
}

/* Rows from `first_row` on, by the AVX-512 kernel: the same float order. */
static void rows_by_avx512(const bl_gemm_task *t, size_t first_row) {
    if (first_row >= t->rows) return;
    bl_gemm_task rest = *t;
    rest.w = t->w + first_row * t->w_row_bytes;
    rest.rows = t->rows - first_row;
    rest.out = (float *)t->out + first_row;
    bl_gemm_q8_0_q8_mad__avx512(&rest);
}

void bl_gemm_q8_0_q8_mad__amx(const bl_gemm_task *t) {
    size_t n = t->x->n, blocks = t->cols / BL_Q_BLOCK, whole = t->rows / ROWS * ROWS;
    if (n == 1) {
        bl_gemv_q8_0_q8_mad__avx512(t);
        return;
    }
    if (n < MIN_TOKENS || whole == 0) {
        bl_gemm_q8_0_q8_mad__avx512(t);
        return;
    }
    packed_tokens p = {
        .tiles = aligned_alloc(64, GROUPS * blocks * BL_Q_BLOCK * TOKENS),
        .scales = aligned_alloc(64, GROUPS * blocks * TOKENS * sizeof(float)),
        .weight_scales = malloc(ROWS * blocks * sizeof(float)),
    };
    if (!p.tiles || !p.scales || !p.weight_scales) { /* AVX-512 needs no buffers */
        free(p.tiles);
        free(p.scales);
        free(p.weight_scales);
        bl_gemm_q8_0_q8_mad__avx512(t);
        return;
    }
    configure_tiles();
    for (size_t first = 0; first < n; first += GROUPS * TOKENS) {
        p.tokens = n - first < GROUPS * TOKENS ? n - first : GROUPS * TOKENS;
        pack_tokens(t->x, first, blocks, &p);
        int groups = p.tokens > TOKENS ? 2 : 1;
        for (size_t r = 0; r < whole; r += ROWS) multiply_tile(t, r, first, &p, blocks, groups);
    }
    _tile_release();
    free(p.tiles);
    free(p.scales);
    free(p.weight_scales);
    rows_by_avx512(t, whole);
}
