/* AMX kernels for the ternary types (bt2, bt1) x int8 activations: prompt
 * processing's GEMM and batched decode.
 *
 * One TDPBUSD multiplies a 16 x 64 tile of unsigned bytes (A: 16 weight rows,
 * 64 columns of codes c = trit + 1) with a 64 x 16 tile of signed bytes (B: 16
 * tokens, stored as 16 rows of the 4-column groups of each token, "VNNI"
 * order) into 16 x 16 int32 sums: 16384 products in one instruction, where
 * vpdpbusd does 64. Packed codes are no operand of it, so the kernel
 * decodes 32 rows at a time into a slab of code bytes (the AVX-512 GEMM's
 * decoders, int_gemm.h) and packs the tokens' activations once per call;
 * every (32 rows, 32 tokens) block then runs 4 tiles of sums over the row.
 * Integer sums throughout: dot = sum(c * x) - sum(x), bit for bit the other
 * kernels' result. Up to 32 tokens (batched decode) make one pass over the
 * rows, decoding each block of codes (256 or 320 columns of 32 rows, in L1)
 * just before its tiles load it, while the same block of the next 32 rows is
 * prefetched (without, the decoder's loads wait on memory: a third of batched
 * decode's time in a profile); fewer
 * than AMX_MIN_TOKENS do not fill enough of a tile and go to the AVX-512
 * kernels. */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels.h"
#include "../avx512/int_gemm.h"
#include "tiles.h"

#define TILE_ROWS 16   /* rows of A and C, tokens of B and C                */
#define TILE_K 64      /* columns per tile: bytes of an A row               */
#define BLOCK_ROWS 32  /* weight rows per slab: two A tiles                 */
#define BLOCK_TOKENS 32 /* tokens per pass over the slab: two B tiles        */
#define AMX_MIN_TOKENS 8
#define MAX_BLOCK_COLS 320 /* the widest block of the types below (bt1's) */

bl_gemm_kernel bl_gemv_bt2_i8_mad__avx512, bl_gemm_bt2_i8_mad__avx512,
    bl_gemv_bt1_i8_mad__avx512, bl_gemm_bt1_i8_mad__avx512;

/* What differs between the types: the type (its block width), how a row
 * decodes, and the AVX-512 kernels that take one token and a few. */
typedef struct ternary_type {
    bl_type_id id;
    bl_avx512_decode_fn decode;
    bl_gemm_fn gemv, gemm;
} ternary_type;

static const ternary_type bt2 = {BL_TYPE_BT2, bl_avx512_decode_bt2, bl_gemv_bt2_i8_mad__avx512,
                                 bl_gemm_bt2_i8_mad__avx512};
static const ternary_type bt1 = {BL_TYPE_BT1, bl_avx512_decode_bt1, bl_gemv_bt1_i8_mad__avx512,
                                 bl_gemm_bt1_i8_mad__avx512};

/* Tiles 0-3: C (rows x 16 int32), 4-5: A, 6-7: B; all 16 rows of 64 bytes. */
static void configure_tiles(void) {
    bl_amx_shape shapes[BL_AMX_TILES];
    for (int t = 0; t < BL_AMX_TILES; t++) shapes[t] = (bl_amx_shape){TILE_ROWS, TILE_K};
    bl_amx_configure(shapes);
}

/* Codes of columns [first, first + cols) of rows r .. r + BLOCK_ROWS - 1
 * (zeros past the slice) into codes [BLOCK_ROWS][cols]. */
static void decode_rows(const bl_gemm_task *t, const ternary_type *type, size_t r, size_t first,
                        size_t cols, uint8_t *codes) {
    for (size_t i = 0; i < BLOCK_ROWS; i++) {
        if (r + i < t->rows)
            type->decode(t->w + (r + i) * t->w_row_bytes, first, cols, codes + i * cols);
        else
            memset(codes + i * cols, 0, cols);
    }
}

/* The 16 x 16 int32 matrix in r[0..15] (r[i] its row i) in place of its
 * transpose: 32-bit, then 64-bit interleaves, then two 128-bit lane shuffles. */
static inline void transpose16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            t[8 * i + j] = _mm512_shuffle_i32x4(r[8 * i + j], r[8 * i + 4 + j], 0x88);
            t[8 * i + 4 + j] = _mm512_shuffle_i32x4(r[8 * i + j], r[8 * i + 4 + j], 0xdd);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_i32x4(t[j], t[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_i32x4(t[j], t[8 + j], 0xdd);
    }
}

/* B tiles of every group of 16 tokens (zeros past the last token) and
 * 64-column chunk: tile row k holds columns 4k .. 4k + 3 of each of the 16
 * tokens, one after another, i.e. the transpose of the tokens' rows taken
 * as 16 dwords each. packed[group][chunk][16][64]. */
static void pack_tokens(const bl_activations *x, size_t cols, size_t groups, int8_t *packed) {
    size_t chunks = cols / TILE_K;
    for (size_t g = 0; g < groups; g++)
        for (size_t c = 0; c < chunks; c++) {
            __m512i r[TILE_ROWS];
            for (size_t n = 0; n < TILE_ROWS; n++) {
                size_t token = g * TILE_ROWS + n;
                r[n] = token < x->n ? _mm512_loadu_si512(x->data + token * x->row_bytes + c * TILE_K)
                                    : _mm512_setzero_si512();
            }
            transpose16(r);
            int8_t *tile = packed + (g * chunks + c) * TILE_ROWS * TILE_K;
            for (size_t k = 0; k < TILE_ROWS; k++) _mm512_store_si512(tile + k * TILE_K, r[k]);
        }
}

/* C tiles [2 row halves][2 token halves] out for the rows and tokens that
 * exist: each tile's columns (tokens) become contiguous runs of rows. */
static void store_block(const bl_gemm_task *t, size_t r, size_t token,
                        int32_t sums[2][2][TILE_ROWS][TILE_ROWS]) {
    int32_t *out = t->out;
    for (int h = 0; h < 2; h++) {
        size_t row = r + (size_t)h * TILE_ROWS;
        if (row >= t->rows) break;
        size_t left = t->rows - row;
        __mmask16 rows = left >= TILE_ROWS ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        for (int u = 0; u < 2 && token + (size_t)u * TILE_ROWS < t->x->n; u++) {
            __m512i c[TILE_ROWS];
            for (size_t i = 0; i < TILE_ROWS; i++) c[i] = _mm512_load_si512(sums[h][u][i]);
            transpose16(c);
            for (size_t n = 0; n < TILE_ROWS; n++) {
                size_t tok = token + (size_t)u * TILE_ROWS + n;
                if (tok >= t->x->n) break;
                __m512i dot = _mm512_sub_epi32(c[n], _mm512_set1_epi32(t->x->sums[tok]));
                _mm512_mask_storeu_epi32(out + tok * t->out_stride + row, rows, dot);
            }
        }
    }
}

/* Sums of one block: C tiles 0-3, rows h x tokens u at tile 2h + u. */
static void start_block(void) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
}

/* One 64-column chunk: A tiles of 16 rows each at a and a + 16 rows (a_stride
 * bytes between rows), B tiles of tokens b0 and (two_groups) b1. */
static inline void multiply_chunk(const uint8_t *a, size_t a_stride, const int8_t *b0,
                                  const int8_t *b1, const int two_groups) {
    _tile_loadd(4, a, a_stride);
    _tile_loadd(5, a + TILE_ROWS * a_stride, a_stride);
    _tile_loadd(6, b0, TILE_K);
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(2, 5, 6);
    if (two_groups) {
        _tile_loadd(7, b1, TILE_K);
        _tile_dpbusd(1, 4, 7);
        _tile_dpbusd(3, 5, 7);
    }
}

static void finish_block(const bl_gemm_task *t, size_t r, size_t token) {
    _Alignas(64) int32_t sums[2][2][TILE_ROWS][TILE_ROWS];
    _tile_stored(0, sums[0][0], TILE_ROWS * sizeof(int32_t));
    _tile_stored(1, sums[0][1], TILE_ROWS * sizeof(int32_t));
    _tile_stored(2, sums[1][0], TILE_ROWS * sizeof(int32_t));
    _tile_stored(3, sums[1][1], TILE_ROWS * sizeof(int32_t));
    store_block(t, r, token, sums);
}

/* The bytes [offset, offset + bytes) of rows r .. r + BLOCK_ROWS - 1 that
 * exist, towards L1: the next block of rows, while this one multiplies. */
static inline void prefetch_rows(const bl_gemm_task *t, size_t r, size_t offset, size_t bytes) {
    for (size_t i = 0; i < BLOCK_ROWS && r + i < t->rows; i++)
        for (size_t b = 0; b < bytes; b += 64)
            _mm_prefetch((const char *)t->w + (r + i) * t->w_row_bytes + offset + b, _MM_HINT_T0);
}

/* One pass of at most BLOCK_TOKENS tokens (two_groups: more than 16): each
 * block of codes is decoded into a buffer that stays in L1, just before its
 * tiles load it, rather than into a slab that several passes share. */
static void gemm_one_pass(const bl_gemm_task *t, const ternary_type *type, const int8_t *packed,
                          const int two_groups) {
    const size_t chunks = t->cols / TILE_K, tile_bytes = TILE_ROWS * TILE_K;
    const size_t block_cols = bl_traits(type->id)->info.block_weights;
    _Alignas(64) uint8_t block[BLOCK_ROWS * MAX_BLOCK_COLS];
    const size_t block_bytes = bl_traits(type->id)->info.block_bytes;
    for (size_t r = 0; r < t->rows; r += BLOCK_ROWS) {
        start_block();
        for (size_t first = 0; first < t->cols; first += block_cols) {
            prefetch_rows(t, r + BLOCK_ROWS, first / block_cols * block_bytes, block_bytes);
            decode_rows(t, type, r, first, block_cols, block);
            for (size_t j = 0, c = first / TILE_K; j < block_cols / TILE_K; j++, c++)
                multiply_chunk(block + j * TILE_K, block_cols, packed + c * tile_bytes,
                               packed + (chunks + c) * tile_bytes, two_groups);
        }
        finish_block(t, r, 0);
    }
}

/* Passes of BLOCK_TOKENS tokens over a slab of 32 decoded rows. */
static void gemm_blocks(const bl_gemm_task *t, const ternary_type *type, uint8_t *slab,
                        const int8_t *packed, size_t groups) {
    const size_t chunks = t->cols / TILE_K, tile_bytes = TILE_ROWS * TILE_K;
    for (size_t r = 0; r < t->rows; r += BLOCK_ROWS) {
        decode_rows(t, type, r, 0, t->cols, slab);
        for (size_t g = 0; g < groups; g += 2) {
            const int8_t *b0 = packed + g * chunks * tile_bytes;
            const int8_t *b1 = b0 + chunks * tile_bytes; /* a zero group when groups is odd */
            start_block();
            for (size_t c = 0; c < chunks; c++)
                multiply_chunk(slab + c * TILE_K, t->cols, b0 + c * tile_bytes,
                               b1 + c * tile_bytes, 1);
            finish_block(t, r, g * TILE_ROWS);
        }
    }
}

static void ternary_gemm(const bl_gemm_task *t, const ternary_type *type) {
    if (t->x->n == 1) {
        type->gemv(t);
        return;
    }
    if (t->x->n < AMX_MIN_TOKENS) {
        type->gemm(t);
        return;
    }
    /* groups of 16 tokens: one, or whole passes of BLOCK_TOKENS */
    size_t n = t->x->n, groups = n <= TILE_ROWS ? 1
                                 : (n + BLOCK_TOKENS - 1) / BLOCK_TOKENS * (BLOCK_TOKENS / TILE_ROWS);
    int one_pass = n <= BLOCK_TOKENS;
    uint8_t *slab = one_pass ? NULL : aligned_alloc(64, BLOCK_ROWS * t->cols);
    int8_t *packed = aligned_alloc(64, groups * TILE_ROWS * t->cols);
    if (!packed || (!one_pass && !slab)) { /* no memory for the tiles: AVX-512 needs none */
        free(slab);
        free(packed);
        type->gemm(t);
        return;
    }
    pack_tokens(t->x, t->cols, groups, packed);
    configure_tiles();
    if (one_pass)
        gemm_one_pass(t, type, packed, groups == 2);
    else
        gemm_blocks(t, type, slab, packed, groups);
    _tile_release();
    free(slab);
    free(packed);
}

void bl_gemm_bt2_i8_mad__amx(const bl_gemm_task *t) { ternary_gemm(t, &bt2); }
void bl_gemm_bt1_i8_mad__amx(const bl_gemm_task *t) { ternary_gemm(t, &bt1); }
