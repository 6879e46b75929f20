/* bl_attend: the attention op on its own, over caches filled for the call. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "bitllm.h"
#include "base/error.h"
#include "base/threadpool.h"
#include "linalg/linear.h"

static int check_rows(const int32_t *pos, const int32_t *seq, int32_t n, int32_t n_seq,
                      int32_t n_ctx) {
    for (int32_t t = 0; t < n; t++) {
        if (seq[t] < 0 || seq[t] >= n_seq)
            return bl_fail(BL_ERR_INVALID_ARGUMENT, "attend: row %d: sequence %d is not in [0, %d)",
                           t, seq[t], n_seq);
        if (pos[t] < 0 || pos[t] >= n_ctx)
            return bl_fail(BL_ERR_INVALID_ARGUMENT, "attend: row %d: position %d is not in [0, %d)",
                           t, pos[t], n_ctx);
        if (t > 0 && seq[t] == seq[t - 1] && pos[t] <= pos[t - 1])
            return bl_fail(BL_ERR_INVALID_ARGUMENT,
                           "attend: rows %d and %d of one sequence do not increase in position",
                           t - 1, t);
        for (int32_t u = 0; u + 1 < t; u++)
            if (seq[u] == seq[t] && seq[t - 1] != seq[t])
                return bl_fail(BL_ERR_INVALID_ARGUMENT,
                               "attend: the rows of sequence %d are not consecutive", seq[t]);
    }
    return BL_OK;
}

static int check_shape(int32_t n, int32_t n_seq, int32_t n_ctx, int32_t n_head, int32_t n_head_kv,
                       int32_t head_dim) {
    if (n <= 0 || n_seq <= 0 || n_ctx <= 0 || n_head <= 0 || n_head_kv <= 0 || head_dim <= 0)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "attend: sizes must be positive");
    if (n_head % n_head_kv != 0)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "attend: %d heads do not group over %d K/V heads",
                       n_head, n_head_kv);
    return BL_OK;
}

static void free_caches(bl_kv_cache *caches, int32_t count) {
    for (int32_t s = 0; s < count; s++) bl_kv_cache_free(&caches[s]);
    free(caches);
}

/* Every later layer of c becomes a copy of layer 0 (the layers lie one after
 * another, each its heads' positions). */
static void copy_first_layer(bl_kv_cache *c) {
    size_t k_bytes = (size_t)(bl_kv_key_head(c, 1, 0) - bl_kv_key_head(c, 0, 0));
    size_t v_bytes = (size_t)(bl_kv_value_head(c, 1, 0) - bl_kv_value_head(c, 0, 0));
    for (int32_t layer = 1; layer < c->n_layer; layer++) {
        memcpy(c->k + (size_t)layer * k_bytes, c->k, k_bytes);
        memcpy(c->v + (size_t)layer * v_bytes, c->v, v_bytes);
    }
}

int bl_attend(const float *q, int32_t n, const int32_t *pos, const int32_t *seq, const float *k,
              const float *v, int32_t n_seq, int32_t n_ctx, int32_t n_head, int32_t n_head_kv,
              int32_t head_dim, int type_k, int type_v, int isa, int threads, float *out) {
    return bl_attend_repeat(q, n, pos, seq, k, v, n_seq, n_ctx, n_head, n_head_kv, head_dim,
                            type_k, type_v, isa, threads, 1, 1, out);
}

int bl_attend_repeat(const float *q, int32_t n, const int32_t *pos, const int32_t *seq,
                     const float *k, const float *v, int32_t n_seq, int32_t n_ctx,
                     int32_t n_head, int32_t n_head_kv, int32_t head_dim, int type_k,
                     int type_v, int isa, int threads, int32_t layers, int repeat, float *out) {
    if (!q || !pos || !seq || !k || !v || !out)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "attend: NULL argument");
    if (repeat < 1)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "attend: repeat %d is not >= 1", repeat);
    if (layers < 1)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "attend: layers %d is not >= 1", layers);
    int rc = check_shape(n, n_seq, n_ctx, n_head, n_head_kv, head_dim);
    if (rc == BL_OK) rc = check_rows(pos, seq, n, n_seq, n_ctx);
    if (rc != BL_OK) return rc;
    if (!bl_kv_type_name(type_k) || !bl_kv_type_name(type_v))
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "attend: cache types %d/%d are not KV cache types",
                       type_k, type_v);
    bl_engine engine;
    if ((rc = bl_engine_init(&engine, isa, threads, 8, BL_ALGO_AUTO)) != BL_OK) return rc;
    if ((rc = bl_pool_shared(engine.threads, &engine.pool)) != BL_OK) return rc;

    bl_kv_cache *caches = calloc((size_t)n_seq, sizeof *caches);
    const bl_kv_cache **row_cache = calloc((size_t)n, sizeof *row_cache);
    size_t scratch_bytes =
        bl_attention_scratch_bytes(n, engine.threads, n_head, n_head_kv, head_dim);
    void *scratch = malloc(scratch_bytes);
    rc = caches && row_cache && scratch ? BL_OK : bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory");
    int32_t made = 0;
    size_t kv_dim = (size_t)n_head_kv * (size_t)head_dim;
    for (; rc == BL_OK && made < n_seq; made++) {
        rc = bl_kv_cache_init(&caches[made], layers, n_ctx, n_head_kv, head_dim, type_k, type_v);
        if (rc != BL_OK) break;
        for (int32_t p = 0; p < n_ctx; p++) {
            size_t at = ((size_t)made * (size_t)n_ctx + (size_t)p) * kv_dim;
            bl_kv_store(&caches[made], 0, p, k + at, v + at);
        }
        copy_first_layer(&caches[made]);
    }
    if (rc == BL_OK) {
        for (int32_t t = 0; t < n; t++) row_cache[t] = &caches[seq[t]];
        bl_attention a = {
            .q = q, .out = out, .pos = pos, .cache = row_cache, .layer = 0,
            .n = n, .n_head = n_head, .n_head_kv = n_head_kv, .head_dim = head_dim,
            .scale = (float)(1.0 / sqrt((double)head_dim)),
            .pool = engine.pool, .threads = engine.threads, .isa = engine.isa,
            .scratch = scratch,
        };
        for (int r = 0; rc == BL_OK && r < repeat; r++) {
            a.layer = r % layers;
            rc = bl_attention_run(&a);
        }
    }
    free_caches(caches, caches ? made : 0);
    free(row_cache);
    free(scratch);
    return rc;
}
