#include "kv_cache.h"

#include <stdlib.h>
#include <string.h>

#include "bitllm.h"
#include "base/error.h"
#include "kernels/attention_chunk.h"
#include "types/fp16.h"
#include "types/quant_blocks.h"
#include "types/types.h"

size_t bl_kv_row_bytes(int type, size_t kv_dim) {
    switch (type) {
    case BL_KV_F16: return kv_dim * 2;
    case BL_KV_Q8_0: return (kv_dim + BL_Q_BLOCK - 1) / BL_Q_BLOCK * BL_Q8_0_BYTES;
    default: return kv_dim * 4;
    }
}

int bl_kv_cache_init(bl_kv_cache *c, int32_t n_layer, int32_t n_ctx, int32_t n_head_kv,
                     int32_t head_dim, int type_k, int type_v) {
    memset(c, 0, sizeof *c);
    if ((type_k == BL_KV_Q8_0 || type_v == BL_KV_Q8_0) && head_dim % BL_Q_BLOCK != 0)
        return bl_fail(BL_ERR_UNSUPPORTED,
                       "a q8_0 KV cache needs heads of a multiple of %d dimensions; this "
                       "model's have %d (use f16 or f32)",
                       BL_Q_BLOCK, head_dim);
    c->n_layer = n_layer;
    c->n_ctx = n_ctx;
    c->n_pos = (int32_t)(((int64_t)n_ctx + BL_KEY_TILE - 1) / BL_KEY_TILE * BL_KEY_TILE);
    c->n_head_kv = n_head_kv;
    c->head_dim = head_dim;
    c->kv_dim = n_head_kv * head_dim;
    c->type_k = type_k;
    c->type_v = type_v;
    c->k_head_bytes = bl_kv_head_bytes(type_k, (size_t)head_dim);
    c->v_head_bytes = bl_kv_head_bytes(type_v, (size_t)head_dim);
    size_t rows, heads, k_bytes, v_bytes;
    if (__builtin_mul_overflow((size_t)n_layer, (size_t)c->n_pos, &rows)
        || __builtin_mul_overflow(rows, (size_t)n_head_kv, &heads)
        || __builtin_mul_overflow(heads, c->k_head_bytes, &k_bytes)
        || __builtin_mul_overflow(heads, c->v_head_bytes, &v_bytes))
        return bl_fail(BL_ERR_OUT_OF_MEMORY, "a KV cache of %d positions is too large", n_ctx);
    c->k = calloc(k_bytes, 1);
    c->v = calloc(v_bytes, 1);
    if (c->k && c->v) return BL_OK;
    bl_kv_cache_free(c);
    return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory for a KV cache of %d positions (%.1f MB)",
                   n_ctx, (double)(k_bytes + v_bytes) / 1e6);
}

void bl_kv_cache_free(bl_kv_cache *c) {
    free(c->k);
    free(c->v);
    c->k = c->v = NULL;
}

static void store_row(int type, const float *src, size_t n, uint8_t *dst) {
    switch (type) {
    case BL_KV_F16: {
        uint16_t *out = (uint16_t *)dst; /* rows start 2-byte aligned */
        for (size_t i = 0; i < n; i++) out[i] = bl_f32_to_f16(src[i]);
        break;
    }
    case BL_KV_Q8_0: bl_type_q8_0.quantize_row(src, (int64_t)n, dst); break;
    default: memcpy(dst, src, n * sizeof *src);
    }
}

/* A q8_0 key of head_dim elements into its place in the tile of its position
 * (kernels/attention_chunk.h): each block's dwords and scale to their lane. */
static void store_turned_key(const float *src, int head_dim, int32_t pos, uint8_t *head) {
    int nb = head_dim / BL_Q_BLOCK;
    size_t lane = (size_t)(pos % BL_KEY_TILE);
    uint8_t *tile = head + (size_t)(pos - pos % BL_KEY_TILE) * (size_t)nb * BL_Q8_0_BYTES;
    for (int b = 0; b < nb; b++) {
        uint8_t block[BL_Q8_0_BYTES];
        bl_type_q8_0.quantize_row(src + (size_t)b * BL_Q_BLOCK, BL_Q_BLOCK, block);
        for (int w = 0; w < 8; w++)
            memcpy(tile + bl_key_tile_words(b, w) + 4 * lane, block + 2 + 4 * w, 4);
        memcpy(tile + bl_key_tile_scales(nb, b) + 2 * lane, block, 2);
    }
}

/* Each head goes to its own run of positions; q8_0 heads are whole blocks, so
 * the bytes of a head are those its part of the row would have had. */
void bl_kv_store(bl_kv_cache *c, int layer, int32_t pos, const float *k, const float *v) {
    size_t hd = (size_t)c->head_dim;
    for (int h = 0; h < c->n_head_kv; h++) {
        uint8_t *k_head = (uint8_t *)bl_kv_key_head(c, layer, h);
        uint8_t *v_at = (uint8_t *)bl_kv_value_head(c, layer, h) + (size_t)pos * c->v_head_bytes;
        if (c->type_k == BL_KV_Q8_0)
            store_turned_key(k + (size_t)h * hd, c->head_dim, pos, k_head);
        else
            store_row(c->type_k, k + (size_t)h * hd, hd, k_head + (size_t)pos * c->k_head_bytes);
        store_row(c->type_v, v + (size_t)h * hd, hd, v_at);
    }
}

void bl_kv_cache_copy(bl_kv_cache *dst, const bl_kv_cache *src, int32_t n) {
    /* whole tiles of keys (the positions past n come along and are overwritten
     * before anything reads them) */
    size_t key_positions = (size_t)(n + BL_KEY_TILE - 1) / BL_KEY_TILE * BL_KEY_TILE;
    for (int layer = 0; layer < src->n_layer; layer++)
        for (int h = 0; h < src->n_head_kv; h++) {
            memcpy((uint8_t *)bl_kv_key_head(dst, layer, h), bl_kv_key_head(src, layer, h),
                   key_positions * src->k_head_bytes);
            memcpy((uint8_t *)bl_kv_value_head(dst, layer, h), bl_kv_value_head(src, layer, h),
                   (size_t)n * src->v_head_bytes);
        }
}
