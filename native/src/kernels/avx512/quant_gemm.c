/* AVX-512 GEMMs for q8_0 and q4_0 weights with Q8 activations: block dots in
 * lanes.
 *
 * The GEMVs (quant.c) get each block's dot by summing a row's vpdpbusd lanes
 * in a tree of unpacks and adds, 21 instructions per 8 rows and two blocks,
 * and a batch would pay that tree again for every token: with a few tokens it,
 * not the products, is most of the work. Here a tile of 16 rows turns each
 * block around first: vector v holds dword v (weights 4v .. 4v + 3) of every
 * row's block, lane i for row i. Eight vpdpbusd with a token's dwords
 * broadcast then leave in lane i row i's whole block dot, exact, with nothing
 * to sum. Counted per block and 16 rows, q8_0: 16 loads, 8 inserts, 24
 * shuffles, 8 xor and 16 word inserts for the scales to turn it (q4_0: 16
 * loads, 12 inserts, 8 shuffles, 12 to split nibbles), shared by the tile's 8
 * tokens; per token 8 vpdpbusd, 1 int->float, 1 mul and 1 fma, against about
 * 32 per token in a tile of quant.c's layout. Measured on Zen 4: 1.7-1.85x
 * that layout's GEMM at 8-64 tokens (BENCHMARKS.md, "Many sequences in one
 * pass"), less than counted: the per-token float work and broadcasts stay.
 *
 * The float order is quant.c's (see its header): per (row, token) each block's
 * exact int32 dot times (weight d * activation d) is FMA'd into the even or
 * the odd chain in block order from +0, result = even + odd; so a token's
 * logits are the same in any batch and equal the GEMV's. */
#include "../../types/quant_blocks.h"
#include "../kernels.h"
#include "../x86_block_scales.h"
#include "simd.h"

#define TILE_ROWS 16
#define TILE_TOKENS 8

/* q8_0: f16 d, then 32 int8 weights; q4_0: f16 d, then 16 bytes whose low
 * nibbles are weights 0-15 and high nibbles 16-31, each biased by +8. */
typedef enum block_type { Q8_0, Q4_0 } block_type;

BL_INLINE size_t block_bytes(const block_type type) {
    return type == Q8_0 ? BL_Q8_0_BYTES : BL_Q4_0_BYTES;
}

typedef struct turned_block {
    __m512i q[8];  /* q[v] lane i: weights 4v .. 4v + 3 of row i, unsigned (biased) */
    __m512 scale;  /* lane i: row i's d                                           */
} turned_block;

typedef struct row_tile {
    const uint8_t *w[TILE_ROWS]; /* the rows; rows past the slice repeat the last */
    size_t ahead;                /* prefetch distance, 0 for none                 */
} row_tile;

/* Each row's d of the block at byte `at`, lane i from row i. */
BL_INLINE __m512 turned_scales(const row_tile *rt, size_t at) {
    __m128i low = bl_eight_block_scales(rt->w, at), high = bl_eight_block_scales(rt->w + 8, at);
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(low), high, 1));
}

/* q8_0 block at byte `at` of the tile's 16 rows, turned: two rows per vector
 * (row k in the low 256 bits, row k + 8 in the high), then an 8 x 8 dword
 * transpose within each half. */
BL_INLINE void turn_q8_0(const row_tile *rt, size_t at, turned_block *tb) {
    __m512i z[8], t[8], s[8];
    for (int k = 0; k < 8; k++) {
        __m256i low = _mm256_loadu_si256((const __m256i *)(rt->w[k] + at + 2));
        __m256i high = _mm256_loadu_si256((const __m256i *)(rt->w[k + 8] + at + 2));
        z[k] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1),
                                _mm512_set1_epi8((char)0x80));
    }
    for (int k = 0; k < 4; k++) { /* rows 2k, 2k + 1 interleaved by dword */
        t[2 * k] = _mm512_unpacklo_epi32(z[2 * k], z[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_epi32(z[2 * k], z[2 * k + 1]);
    }
    for (int h = 0; h < 2; h++) { /* rows 4h .. 4h + 3: dwords (0,4) (1,5) (2,6) (3,7) */
        s[4 * h] = _mm512_unpacklo_epi64(t[4 * h], t[4 * h + 2]);
        s[4 * h + 1] = _mm512_unpackhi_epi64(t[4 * h], t[4 * h + 2]);
        s[4 * h + 2] = _mm512_unpacklo_epi64(t[4 * h + 1], t[4 * h + 3]);
        s[4 * h + 3] = _mm512_unpackhi_epi64(t[4 * h + 1], t[4 * h + 3]);
    }
    /* s[m] holds dword m in its 128-bit lanes 0 and 2 and dword m + 4 in lanes
     * 1 and 3, rows 0-3 (s[m]) and 4-7 (s[4 + m]) */
    const __m512i first = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    const __m512i second = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    for (int m = 0; m < 4; m++) {
        tb->q[m] = _mm512_permutex2var_epi64(s[m], first, s[4 + m]);
        tb->q[m + 4] = _mm512_permutex2var_epi64(s[m], second, s[4 + m]);
    }
}

/* q4_0 block at byte `at`, turned: four rows per vector (row k + 4L in 128-bit
 * lane L), a 4 x 4 dword transpose within each lane, then dword m's low
 * nibbles are weights 4m .. 4m + 3 and its high nibbles weights 16 + 4m .. ,
 * i.e. 4(m + 4) ..: the activation dwords m and m + 4. */
BL_INLINE void turn_q4_0(const row_tile *rt, size_t at, turned_block *tb) {
    __m512i z[4], t[4];
    for (int k = 0; k < 4; k++) {
        z[k] = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(rt->w[k] + at + 2)));
        for (int lane = 1; lane < 4; lane++)
            z[k] = _mm512_inserti32x4(
                z[k], _mm_loadu_si128((const __m128i *)(rt->w[k + 4 * lane] + at + 2)), lane);
    }
    t[0] = _mm512_unpacklo_epi32(z[0], z[1]);
    t[1] = _mm512_unpackhi_epi32(z[0], z[1]);
    t[2] = _mm512_unpacklo_epi32(z[2], z[3]);
    t[3] = _mm512_unpackhi_epi32(z[2], z[3]);
    __m512i dwords[4] = {
        _mm512_unpacklo_epi64(t[0], t[2]),
        _mm512_unpackhi_epi64(t[0], t[2]),
        _mm512_unpacklo_epi64(t[1], t[3]),
        _mm512_unpackhi_epi64(t[1], t[3]),
    };
    const __m512i low = _mm512_set1_epi8(0x0F);
    for (int m = 0; m < 4; m++) {
        tb->q[m] = _mm512_and_si512(dwords[m], low);
        tb->q[m + 4] = _mm512_and_si512(_mm512_srli_epi32(dwords[m], 4), low);
    }
}

BL_INLINE void turn_block(const row_tile *rt, size_t b, turned_block *tb, const block_type type) {
    size_t at = block_bytes(type) * b;
    if (type == Q8_0)
        turn_q8_0(rt, at, tb);
    else
        turn_q4_0(rt, at, tb);
    if (rt->ahead)
        for (int i = 0; i < TILE_ROWS; i++) bl_prefetch(rt->w[i] + at + rt->ahead);
    tb->scale = turned_scales(rt, at);
}

/* acc += u8 . (the 4 bytes at s8, broadcast): the broadcast rides on the
 * load of vpdpbusd's memory operand instead of taking a shuffle of its own. */
BL_INLINE __m512i dpbusd_broadcast(__m512i acc, __m512i u8, const int8_t *s8) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(u8), "m"(*(const int32_t *)s8));
    return acc;
}

/* One block of every token into its chain: chain += float(dot) * (w d * x d).
 * The products run weight vector by weight vector across the tokens, so
 * that `tokens` independent accumulators hide vpdpbusd's latency. */
BL_INLINE void block_into_chains(const turned_block *tb, const uint8_t *x, size_t x_row_bytes,
                                 size_t b, const int tokens, const block_type type,
                                 __m512 chain[TILE_TOKENS]) {
    const int32_t bias = type == Q8_0 ? 128 : 8; /* the weights' bias, times sum(x) */
    const bl_q8_block *xb[TILE_TOKENS];
    __m512i dot[TILE_TOKENS];
    for (int j = 0; j < tokens; j++) {
        xb[j] = (const bl_q8_block *)(x + (size_t)j * x_row_bytes) + b;
        dot[j] = _mm512_set1_epi32(-bias * xb[j]->sum);
    }
    for (int v = 0; v < 8; v++)
        for (int j = 0; j < tokens; j++)
            dot[j] = dpbusd_broadcast(dot[j], tb->q[v], xb[j]->q + 4 * v);
    for (int j = 0; j < tokens; j++) {
        __m512 scale = _mm512_mul_ps(tb->scale, _mm512_set1_ps(xb[j]->d));
        chain[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[j]), scale, chain[j]);
    }
}

/* 16 rows x `tokens` tokens (constant at each call) over the whole row. */
BL_INLINE void quant_tile(const bl_gemm_task *t, const row_tile *rt, size_t r, size_t tok,
                          const int tokens, const block_type type) {
    const uint8_t *x = t->x->data + tok * t->x->row_bytes;
    size_t x_row_bytes = t->x->row_bytes;
    __m512 even[TILE_TOKENS], odd[TILE_TOKENS];
#pragma GCC unroll 16 /* else both arrays are cleared in memory (rep stos) per tile */
    for (int j = 0; j < tokens; j++) even[j] = odd[j] = _mm512_setzero_ps();
    size_t blocks = t->cols / BL_Q_BLOCK, b = 0;
    turned_block tb;
    for (; b + 2 <= blocks; b += 2) {
        turn_block(rt, b, &tb, type);
        block_into_chains(&tb, x, x_row_bytes, b, tokens, type, even);
        turn_block(rt, b + 1, &tb, type);
        block_into_chains(&tb, x, x_row_bytes, b + 1, tokens, type, odd);
    }
    if (b < blocks) {
        turn_block(rt, b, &tb, type);
        block_into_chains(&tb, x, x_row_bytes, b, tokens, type, even);
    }
    size_t left = t->rows - r;
    __mmask16 rows = left >= TILE_ROWS ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
    for (int j = 0; j < tokens; j++)
        _mm512_mask_storeu_ps((float *)t->out + (tok + (size_t)j) * t->out_stride + r, rows,
                              _mm512_add_ps(even[j], odd[j]));
}

/* One instance per type and token count, so the chains stay in registers. */
#define TILE_INSTANCES(name, type)                                                                \
    __attribute__((noinline)) static void name(const bl_gemm_task *t, const row_tile *rt,         \
                                               size_t r, size_t tok, size_t tokens) {             \
        switch (tokens) {                                                                         \
        case 1: quant_tile(t, rt, r, tok, 1, type); break;                                        \
        case 2: quant_tile(t, rt, r, tok, 2, type); break;                                        \
        case 3: quant_tile(t, rt, r, tok, 3, type); break;                                        \
        case 4: quant_tile(t, rt, r, tok, 4, type); break;                                        \
        case 5: quant_tile(t, rt, r, tok, 5, type); break;                                        \
        case 6: quant_tile(t, rt, r, tok, 6, type); break;                                        \
        case 7: quant_tile(t, rt, r, tok, 7, type); break;                                        \
        default: quant_tile(t, rt, r, tok, 8, type); break;                                       \
        }                                                                                         \
    }
TILE_INSTANCES(run_q8_0_tile, Q8_0)
TILE_INSTANCES(run_q4_0_tile, Q4_0)

typedef void tile_fn(const bl_gemm_task *t, const row_tile *rt, size_t r, size_t tok,
                     size_t tokens);

/* Tiles of 16 rows x 8 tokens, then the tokens left over; the first tile of a
 * group of rows reads them from memory, so it prefetches the next group. */
static void quant_gemm(const bl_gemm_task *t, tile_fn *run_tile) {
    size_t ahead = bl_prefetch_ahead(TILE_ROWS * t->w_row_bytes);
    for (size_t r = 0; r < t->rows; r += TILE_ROWS) {
        row_tile rt;
        for (int i = 0; i < TILE_ROWS; i++)
            rt.w[i] = bl_group_row(t->w, t->w_row_bytes, r, (size_t)i, t->rows);
        for (size_t tok = 0; tok < t->x->n; tok += TILE_TOKENS) {
            rt.ahead = tok ? 0 : ahead;
            size_t tokens = t->x->n - tok < TILE_TOKENS ? t->x->n - tok : TILE_TOKENS;
            run_tile(t, &rt, r, tok, tokens);
        }
    }
}

void bl_gemm_q8_0_q8_mad__avx512(const bl_gemm_task *t) { quant_gemm(t, run_q8_0_tile); }
void bl_gemm_q4_0_q8_mad__avx512(const bl_gemm_task *t) { quant_gemm(t, run_q4_0_tile); }
