/* The key/value cache of one sequence: [layer][K/V head][position][head_dim]
 * for keys and for values, so that the positions of one head, which attention
 * reads in order, lie one after another; each is stored in its bl_kv_type
 * (docs/FORMAT.md, "KV cache"):
 *   f32   kv_dim floats;
 *   f16   kv_dim IEEE halves, rounded to nearest even;
 *   q8_0  kv_dim / 32 blocks of llama.cpp's q8_0 (f16 scale, 32 int8), so a
 *         head of head_dim (a multiple of 32) is whole blocks; keys turned in
 *         tiles of 16 positions (kernels/attention_chunk.h, BL_KEY_TILE), each
 *         tile in the bytes of its 16 rows, so strides and sizes stay those
 *         of rows. A head's run of positions is n_ctx rounded up to a whole
 *         tile.
 * New rows arrive as float32 and are converted as they are stored. The cache
 * is allocated zeroed and untouched, so pages become resident only as
 * positions fill. */
#ifndef BL_KV_CACHE_H
#define BL_KV_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct bl_kv_cache {
    uint8_t *k, *v;
    int32_t n_ctx, n_layer, n_head_kv, kv_dim, head_dim;
    int32_t n_pos;                    /* positions of a head's run: n_ctx in whole tiles */
    int type_k, type_v;               /* bl_kv_type, resolved                 */
    size_t k_head_bytes, v_head_bytes; /* one head at one position: the stride
                                          between positions of a head          */
} bl_kv_cache;

/* Bytes of one row of kv_dim elements in a cache type. */
size_t bl_kv_row_bytes(int type, size_t kv_dim);

/* Bytes of head_dim elements (one head of a row) in a cache type. */
static inline size_t bl_kv_head_bytes(int type, size_t head_dim) {
    return bl_kv_row_bytes(type, head_dim);
}

/* A q8_0 cache needs heads of whole blocks: BL_ERR_UNSUPPORTED otherwise. */
int bl_kv_cache_init(bl_kv_cache *c, int32_t n_layer, int32_t n_ctx, int32_t n_head_kv,
                     int32_t head_dim, int type_k, int type_v);
void bl_kv_cache_free(bl_kv_cache *c);
/* dst's first n positions of every layer become src's (same shape). */
void bl_kv_cache_copy(bl_kv_cache *dst, const bl_kv_cache *src, int32_t n);

/* Stores one position's key and value rows (kv_dim floats each, heads one
 * after another) of a layer. */
void bl_kv_store(bl_kv_cache *c, int layer, int32_t pos, const float *k, const float *v);

/* Where K/V head `head` of a layer starts (position 0); its position p is
 * k_head_bytes (v_head_bytes) further on per position. */
static inline size_t bl_kv_head_index(const bl_kv_cache *c, int layer, int head) {
    return ((size_t)layer * (size_t)c->n_head_kv + (size_t)head) * (size_t)c->n_pos;
}
static inline const uint8_t *bl_kv_key_head(const bl_kv_cache *c, int layer, int head) {
    return c->k + bl_kv_head_index(c, layer, head) * c->k_head_bytes;
}
static inline const uint8_t *bl_kv_value_head(const bl_kv_cache *c, int layer, int head) {
    return c->v + bl_kv_head_index(c, layer, head) * c->v_head_bytes;
}

#endif
