#include "kv_cache.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

int bl_kv_cache_init(bl_kv_cache *c, int32_t n_layer, int32_t n_ctx, int32_t kv_dim) {
    size_t floats;
    if (__builtin_mul_overflow((size_t)n_layer * (size_t)n_ctx, (size_t)kv_dim, &floats))
        return bl_fail(BL_ERR_OUT_OF_MEMORY, "a KV cache of %d positions is too large", n_ctx);
    c->n_layer = n_layer;
    c->n_ctx = n_ctx;
    c->kv_dim = kv_dim;
    c->k = calloc(floats, sizeof(float));
    c->v = calloc(floats, sizeof(float));
    if (c->k && c->v) return BL_OK;
    bl_kv_cache_free(c);
    return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory for a KV cache of %d positions (%.1f MB)",
                   n_ctx, 2.0 * (double)floats * sizeof(float) / 1e6);
}

void bl_kv_cache_free(bl_kv_cache *c) {
    free(c->k);
    free(c->v);
    c->k = c->v = NULL;
}

void bl_kv_cache_copy(bl_kv_cache *dst, const bl_kv_cache *src, int32_t n) {
    size_t bytes = (size_t)n * (size_t)src->kv_dim * sizeof(float);
    for (int layer = 0; layer < src->n_layer; layer++) {
        memcpy(bl_kv_keys(dst, layer), bl_kv_keys(src, layer), bytes);
        memcpy(bl_kv_values(dst, layer), bl_kv_values(src, layer), bytes);
    }
}
