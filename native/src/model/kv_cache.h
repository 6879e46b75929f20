/* The key/value cache of one sequence: float32, [layer][position][kv_dim]
 * for keys and for values. Allocated zeroed and untouched, so pages become
 * resident only as positions fill. */
#ifndef BL_KV_CACHE_H
#define BL_KV_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct bl_kv_cache {
    float *k, *v;
    int32_t n_ctx, n_layer, kv_dim;
} bl_kv_cache;

int bl_kv_cache_init(bl_kv_cache *c, int32_t n_layer, int32_t n_ctx, int32_t kv_dim);
void bl_kv_cache_free(bl_kv_cache *c);
/* dst's first n positions of every layer become src's (same shape). */
void bl_kv_cache_copy(bl_kv_cache *dst, const bl_kv_cache *src, int32_t n);

/* Keys / values of layer, from position 0, rows of kv_dim floats. */
static inline float *bl_kv_keys(const bl_kv_cache *c, int layer) {
    return c->k + (size_t)layer * (size_t)c->n_ctx * (size_t)c->kv_dim;
}
static inline float *bl_kv_values(const bl_kv_cache *c, int layer) {
    return c->v + (size_t)layer * (size_t)c->n_ctx * (size_t)c->kv_dim;
}

#endif
