/* The attention chunk kernel (the op is ops/attention.h): one chunk of
 * positions against a tile of query rows of one sequence and the query heads
 * of one K/V head. One portable body (attention_chunk_body.h) is compiled per
 * ISA under kernels/<isa>/ with that ISA's flags. */
#ifndef BL_KERNELS_ATTENTION_CHUNK_H
#define BL_KERNELS_ATTENTION_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "base/activations.h"

#define BL_ATTN_CHUNK 256 /* positions per chunk; boundaries at multiples of it */

/* q8_0 keys are stored turned, in tiles of BL_KEY_TILE positions, so that the
 * score kernels find each block's words of 16 positions side by side instead
 * of transposing them at every token (24 shuffles per block and tile). Tile t
 * of a K/V head holds positions 16t .. 16t + 15 in the bytes those 16 q8_0
 * rows would take (16 x nb x 34, nb blocks a row): first, for each block b
 * and dword w (the block's int8 weights 4w .. 4w + 3), the 16 positions'
 * dwords (position i at byte 4i), then each block's 16 f16 scales. */
#define BL_KEY_TILE 16

/* Byte of a tile where block b's dword w of its 16 positions starts. */
static inline size_t bl_key_tile_words(int b, int w) {
    return ((size_t)b * 8 + (size_t)w) * 4 * BL_KEY_TILE;
}

/* Byte of a tile where block b's 16 scales start (nb blocks a row). */
static inline size_t bl_key_tile_scales(int nb, int b) {
    return bl_key_tile_words(nb, 0) + (size_t)b * 2 * BL_KEY_TILE;
}
#define BL_ATTN_STEP 4 /* positions a kernel converts and uses together */
#define BL_ATTN_COLUMNS 32 /* value elements a tile's weighted sums take at a time */

/* Floats of a chunk task's row scratch: BL_ATTN_STEP rows of keys or values,
 * or BL_ATTN_COLUMNS elements of the chunk's every value row, in float32. */
static inline size_t bl_attn_row_floats(int head_dim) {
    size_t rows = (size_t)BL_ATTN_STEP * (size_t)head_dim;
    size_t columns = (size_t)BL_ATTN_CHUNK * BL_ATTN_COLUMNS;
    return rows > columns ? rows : columns;
}

typedef struct bl_attn_chunk {
    const float *q;         /* row r, head g of the group: q + r * q_stride + g * head_dim */
    size_t q_stride;
    const bl_q8_block *q8;  /* for a q8_0 key cache, the same queries in q8 blocks: row r,
                               head g at q8 + r * q8_stride + g * head_dim / 32      */
    size_t q8_stride;
    const int32_t *pos;     /* [rows], increasing                                  */
    int rows, group, head_dim;
    float scale;
    const uint8_t *k, *v;   /* this K/V head's elements at position 0              */
    size_t k_stride, v_stride; /* bytes between positions                          */
    int type_k, type_v;     /* bl_kv_type                                          */
    int32_t start, end;     /* the chunk: positions [start, end)                   */
    float *scores;          /* scratch [rows * group * BL_ATTN_CHUNK]              */
    float *row;             /* scratch [bl_attn_row_floats(head_dim)]                */
    /* Out, for (r, g) at index i = r * group + g with pos[r] >= start (other
     * rows see nothing of the chunk and are left alone): */
    float *m, *l;           /* [rows * group] max score, sum of e^(s - m)          */
    float *acc;             /* [rows * group, head_dim] sum of e^(s - m) v         */
} bl_attn_chunk;

typedef void (*bl_attn_chunk_fn)(const bl_attn_chunk *c);

/* One per ISA folder, named bl_attn_chunk__<isa>, listed in its register.c. */
typedef void bl_attn_chunk_kernel(const bl_attn_chunk *c);

#endif
