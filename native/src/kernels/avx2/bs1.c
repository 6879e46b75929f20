/* AVX2 multiply-add kernels for bs1 (layout in types/bs1.c): with a set bit
 * meaning -1, dot = sum(x) - 2 * sum(x where the bit is set).
 *
 * Bit i of the 32 bytes of a block is column 8j + i of byte j. The kernels
 * first copy a chunk of each activation row into bit-plane order (plane i of
 * a block holds x[8j + i] for j = 0..31), so that (w >> i) & 1 over the 32
 * weight bytes lines up with one plane: four operations per 32 weights, and
 * the reordering is paid once per chunk, not once per weight row.
 * int8: vpmaddubsw(bits, plane) adds column pairs, eight planes fit int16
 * (8 * 2 * 128), vpmaddwd with ones widens. int16: the planes are split into
 * low and high bytes, x = 256 * high + low, and each half goes through
 * vpmaddubsw like int8 (six operations per 32 weights instead of eight with
 * vpmaddwd on int16 lanes). */
#include <immintrin.h>

#include "../kernels.h"
#include "simd.h"
#include "tiling.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Bytes of reordered activations a kernel keeps on its stack. */
#define PLANE_BUFFER_BYTES (16 * 1024)

/* In: v[m] holds eight 16-bit words per 128-bit lane L, word i being element
 * (2m + L, i) of a 16 x 8 matrix. Out: v[i] holds column i, elements 0..15. */
ALWAYS_INLINE void transpose_words(__m256i v[8]) {
    __m256i a[8], b[8];
    for (int m = 0; m < 4; m++) {
        a[2 * m] = _mm256_unpacklo_epi16(v[2 * m], v[2 * m + 1]);
        a[2 * m + 1] = _mm256_unpackhi_epi16(v[2 * m], v[2 * m + 1]);
    }
    for (int h = 0; h < 2; h++) {
        for (int m = 0; m < 2; m++) {
            b[4 * h + 2 * m] = _mm256_unpacklo_epi32(a[4 * m + h], a[4 * m + 2 + h]);
            b[4 * h + 2 * m + 1] = _mm256_unpackhi_epi32(a[4 * m + h], a[4 * m + 2 + h]);
        }
    }
    /* b[4h + 2m + e], lane L: columns 4h + 2e and 4h + 2e + 1 of rows 8m + L + {0,2,4,6} */
    const __m256i lanes_to_pairs =
        _mm256_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15, 0, 1, 8, 9, 2, 3,
                         10, 11, 4, 5, 12, 13, 6, 7, 14, 15);
    for (int h = 0; h < 2; h++) {
        for (int e = 0; e < 2; e++) {
            __m256i lo = b[4 * h + e], hi = b[4 * h + 2 + e];
            __m256i cols[2] = {_mm256_unpacklo_epi64(lo, hi), _mm256_unpackhi_epi64(lo, hi)};
            for (int c = 0; c < 2; c++) {
                /* lane L holds rows 2m + L in order m; interleave the lanes */
                __m256i q = _mm256_permute4x64_epi64(cols[c], _MM_SHUFFLE(3, 1, 2, 0));
                v[4 * h + 2 * e + c] = _mm256_shuffle_epi8(q, lanes_to_pairs);
            }
        }
    }
}

/* int8 block: 256 bytes -> 8 planes of 32 bytes. */
static void planes_i8(const void *src, size_t blocks, void *dst) {
    const int8_t *x = src;
    int8_t *planes = dst;
    const __m256i pair_groups =
        _mm256_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15, 0, 8, 1, 9, 2, 10,
                         3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    for (size_t b = 0; b < blocks; b++, x += 256, planes += 256) {
        __m256i v[8];
        /* lane L of v[m] holds groups 4m + 2L and 4m + 2L + 1 of 8 columns;
         * word i of it pairs their columns i */
        for (int m = 0; m < 8; m++)
            v[m] = _mm256_shuffle_epi8(_mm256_load_si256((const __m256i *)(x + 32 * m)),
                                       pair_groups);
        transpose_words(v);
        for (int i = 0; i < 8; i++) _mm256_store_si256((__m256i *)(planes + 32 * i), v[i]);
    }
}

/* int16 block: 512 bytes -> 8 planes, each 32 low bytes (unsigned) then 32
 * high bytes (signed) of x[8j + i], j = 0..31: x = 256 * high + low. */
static void planes_i16(const void *src, size_t blocks, void *dst) {
    const __m256i bytes_apart = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13,
                                                 15, 0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11,
                                                 13, 15);
    enum { in_order = _MM_SHUFFLE(3, 1, 2, 0) };
    const int16_t *x = src;
    uint8_t *planes = dst;
    for (size_t b = 0; b < blocks; b++, x += 256, planes += 512) {
        __m256i v[2][8];
        for (int half = 0; half < 2; half++) {
            /* lane L of v[half][m] is group 16 half + 2m + L of 8 columns */
            for (int m = 0; m < 8; m++)
                v[half][m] = _mm256_load_si256((const __m256i *)(x + 128 * half + 16 * m));
            transpose_words(v[half]);
        }
        for (int i = 0; i < 8; i++) {
            /* per lane: the low bytes of 8 groups, then their high bytes */
            __m256i a = _mm256_shuffle_epi8(v[0][i], bytes_apart);
            __m256i c = _mm256_shuffle_epi8(v[1][i], bytes_apart);
            /* lanes hold groups 0-7, 16-23 | 8-15, 24-31: put them in order */
            __m256i low = _mm256_permute4x64_epi64(_mm256_unpacklo_epi64(a, c), in_order);
            __m256i high = _mm256_permute4x64_epi64(_mm256_unpackhi_epi64(a, c), in_order);
            _mm256_store_si256((__m256i *)(planes + 64 * i), low);
            _mm256_store_si256((__m256i *)(planes + 64 * i + 32), high);
        }
    }
}

/* Adds a chunk's sum of x over set bits to out; the last chunk turns the
 * total into sum(x) - 2 * total (wrapping like the scalar kernel). */
ALWAYS_INLINE void add_chunk(int32_t *out, __m256i negative, int first, int last, int32_t sum) {
    uint32_t total = (uint32_t)bl_avx2_hsum_epi32(negative);
    if (!first) total += (uint32_t)*out;
    *out = (int32_t)(last ? (uint32_t)sum - 2u * total : total);
}

/* One chunk of blocks [first, first + blocks) for rows x tokens, against the
 * planes of each token; the counts are constants at each call. */
ALWAYS_INLINE void tile_i8(const bl_gemm_task *t, size_t row, int rows, size_t token,
                           int tokens, const int8_t *planes, size_t first, size_t blocks,
                           int last) {
    const __m256i one = _mm256_set1_epi8(1), ones = _mm256_set1_epi16(1);
    __m256i acc[BL_AVX2_TILE_ROWS][BL_AVX2_TILE_TOKENS];
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++) acc[i][j] = _mm256_setzero_si256();
    for (size_t b = 0; b < blocks; b++) {
        for (int i = 0; i < rows; i++) {
            const uint8_t *block = t->w + (row + i) * t->w_row_bytes + 32 * (first + b);
            if (tokens == 1 && b % 2 == 0) /* GEMV: x86_prefetch.h */
                bl_prefetch(block + bl_prefetch_ahead(rows * t->w_row_bytes));
            __m256i w = _mm256_loadu_si256((const __m256i *)block);
            __m256i s[BL_AVX2_TILE_TOKENS];
#pragma GCC unroll 8
            for (int p = 0; p < 8; p++) {
                __m256i bits = _mm256_and_si256(_mm256_srli_epi16(w, p), one);
                for (int j = 0; j < tokens; j++) {
                    const int8_t *plane = planes + (j * blocks + b) * 256 + 32 * p;
                    __m256i d =
                        _mm256_maddubs_epi16(bits, _mm256_load_si256((const __m256i *)plane));
                    s[j] = p ? _mm256_add_epi16(s[j], d) : d;
                    bl_avx2_pin(&s[j]);
                }
            }
            for (int j = 0; j < tokens; j++)
                acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(s[j], ones));
        }
    }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++)
            add_chunk((int32_t *)t->out + (token + j) * t->out_stride + row + i, acc[i][j],
                      first == 0, last, t->x->sums[token + j]);
}

/* int16: sum(bits * x) = 256 * sum(bits * high) + sum(bits * low), the first
 * as vpmaddubsw(bits, high) (signed high), the second as vpmaddubsw(low, bits)
 * (unsigned low); eight planes fit int16 (8 * 2 * 255). */
ALWAYS_INLINE void tile_i16(const bl_gemm_task *t, size_t row, int rows, size_t token,
                            int tokens, const uint8_t *planes, size_t first, size_t blocks,
                            int last) {
    const __m256i one = _mm256_set1_epi8(1);
    const __m256i ones = _mm256_set1_epi16(1), high_weight = _mm256_set1_epi16(256);
    __m256i acc[BL_AVX2_TILE_ROWS][BL_AVX2_TILE_TOKENS];
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++) acc[i][j] = _mm256_setzero_si256();
    for (size_t b = 0; b < blocks; b++) {
        for (int i = 0; i < rows; i++) {
            __m256i w = _mm256_loadu_si256(
                (const __m256i *)(t->w + (row + i) * t->w_row_bytes + 32 * (first + b)));
            __m256i high[BL_AVX2_TILE_TOKENS], low[BL_AVX2_TILE_TOKENS];
#pragma GCC unroll 8
            for (int p = 0; p < 8; p++) {
                __m256i bits = _mm256_and_si256(_mm256_srli_epi16(w, p), one);
                for (int j = 0; j < tokens; j++) {
                    const uint8_t *plane = planes + (j * blocks + b) * 512 + 64 * p;
                    __m256i lo = _mm256_load_si256((const __m256i *)plane);
                    __m256i hi = _mm256_load_si256((const __m256i *)(plane + 32));
                    __m256i l = _mm256_maddubs_epi16(lo, bits), h = _mm256_maddubs_epi16(bits, hi);
                    low[j] = p ? _mm256_add_epi16(low[j], l) : l;
                    high[j] = p ? _mm256_add_epi16(high[j], h) : h;
                    bl_avx2_pin(&low[j]);
                    bl_avx2_pin(&high[j]);
                }
            }
            for (int j = 0; j < tokens; j++) {
                __m256i d = _mm256_add_epi32(_mm256_madd_epi16(high[j], high_weight),
                                             _mm256_madd_epi16(low[j], ones));
                acc[i][j] = _mm256_add_epi32(acc[i][j], d);
            }
        }
    }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < tokens; j++)
            add_chunk((int32_t *)t->out + (token + j) * t->out_stride + row + i, acc[i][j],
                      first == 0, last, t->x->sums[token + j]);
}

/* A tile's slice of the work: rows x tokens over blocks [first, first + blocks)
 * of the reordered chunk. */
typedef void (*chunk_tile_fn)(const bl_gemm_task *t, size_t row, size_t token,
                              const void *planes, size_t first, size_t blocks, int last);
typedef void (*planes_fn)(const void *x, size_t blocks, void *planes);

typedef struct bs1_kernel {
    size_t x_block_bytes; /* activation bytes of a block of 256 columns */
    planes_fn planes;
    chunk_tile_fn rows_tile, tokens_tile, one;
} bs1_kernel;

/* Walks column chunks whose planes (for `tokens` tokens) fit the stack buffer:
 * reorder the chunk, then run every row over it. GEMV tiles take
 * BL_AVX2_TILE_ROWS rows, GEMM tiles BL_AVX2_TILE_TOKENS tokens. */
static void run_chunks(const bl_gemm_task *t, const bs1_kernel *k, size_t token, size_t tokens) {
    _Alignas(32) uint8_t planes[PLANE_BUFFER_BYTES];
    size_t blocks = t->cols / 256;
    size_t chunk = PLANE_BUFFER_BYTES / k->x_block_bytes / tokens;
    for (size_t first = 0; first < blocks; first += chunk) {
        size_t count = blocks - first < chunk ? blocks - first : chunk;
        int last = first + count == blocks;
        for (size_t j = 0; j < tokens; j++)
            k->planes(t->x->data + (token + j) * t->x->row_bytes + first * k->x_block_bytes, count,
                      planes + j * count * k->x_block_bytes);
        size_t r = 0;
        if (tokens == BL_AVX2_TILE_TOKENS) {
            for (; r < t->rows; r++) k->tokens_tile(t, r, token, planes, first, count, last);
        } else {
            for (; r + BL_AVX2_TILE_ROWS <= t->rows; r += BL_AVX2_TILE_ROWS)
                k->rows_tile(t, r, token, planes, first, count, last);
            for (; r < t->rows; r++) k->one(t, r, token, planes, first, count, last);
        }
    }
}

static void run_gemm(const bl_gemm_task *t, const bs1_kernel *k) {
    size_t n = 0;
    for (; n + BL_AVX2_TILE_TOKENS <= t->x->n; n += BL_AVX2_TILE_TOKENS)
        run_chunks(t, k, n, BL_AVX2_TILE_TOKENS);
    for (; n < t->x->n; n++) run_chunks(t, k, n, 1);
}

static void i8_rows(const bl_gemm_task *t, size_t r, size_t n, const void *planes,
                    size_t first, size_t blocks, int last) {
    tile_i8(t, r, BL_AVX2_TILE_ROWS, n, 1, planes, first, blocks, last);
}
static void i8_tokens(const bl_gemm_task *t, size_t r, size_t n, const void *planes,
                      size_t first, size_t blocks, int last) {
    tile_i8(t, r, 1, n, BL_AVX2_TILE_TOKENS, planes, first, blocks, last);
}
static void i8_one(const bl_gemm_task *t, size_t r, size_t n, const void *planes,
                   size_t first, size_t blocks, int last) {
    tile_i8(t, r, 1, n, 1, planes, first, blocks, last);
}
static void i16_rows(const bl_gemm_task *t, size_t r, size_t n, const void *planes,
                     size_t first, size_t blocks, int last) {
    tile_i16(t, r, BL_AVX2_TILE_ROWS, n, 1, planes, first, blocks, last);
}
static void i16_tokens(const bl_gemm_task *t, size_t r, size_t n, const void *planes,
                       size_t first, size_t blocks, int last) {
    tile_i16(t, r, 1, n, BL_AVX2_TILE_TOKENS, planes, first, blocks, last);
}
static void i16_one(const bl_gemm_task *t, size_t r, size_t n, const void *planes,
                    size_t first, size_t blocks, int last) {
    tile_i16(t, r, 1, n, 1, planes, first, blocks, last);
}

static const bs1_kernel i8_kernel = {256, planes_i8, i8_rows, i8_tokens, i8_one};
static const bs1_kernel i16_kernel = {512, planes_i16, i16_rows, i16_tokens, i16_one};

void bl_gemv_bs1_i8_mad__avx2(const bl_gemm_task *t) { run_chunks(t, &i8_kernel, 0, 1); }
void bl_gemm_bs1_i8_mad__avx2(const bl_gemm_task *t) { run_gemm(t, &i8_kernel); }
void bl_gemv_bs1_i16_mad__avx2(const bl_gemm_task *t) { run_chunks(t, &i16_kernel, 0, 1); }
void bl_gemm_bs1_i16_mad__avx2(const bl_gemm_task *t) { run_gemm(t, &i16_kernel); }
