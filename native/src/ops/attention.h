/* Causal multi-head attention with grouped K/V heads over typed KV caches,
 * for query rows of one or several sequences in one call.
 *
 * Query row t sits at position pos[t] of the sequence whose cache is
 * cache[t] and sees that cache's positions [0, pos[t]]. Rows of one sequence
 * are consecutive with increasing positions; rows may point at different
 * caches.
 *
 * How (flash-decoding): positions fall in chunks of BL_ATTN_CHUNK at fixed
 * absolute boundaries. For each (row, query head, chunk) the chunk kernel
 * computes the scores, their max m, l = sum e^(s - m) and acc = sum e^(s - m) v;
 * these partials are then folded chunk by chunk in increasing order into the
 * row's running (max, sum, acc), and out = acc / sum. Each K/V row a kernel
 * reads is converted once for every query head of its GQA group and every
 * query row of its tile. Work is split over (tile, K/V head) for prefill and
 * over (row, K/V head, chunk) for decode, but the arithmetic of a (row, head)
 * is the same sequence of float operations either way, so its bits depend
 * neither on the thread count, nor on the other rows of the call, nor on the
 * ISA (every kernel keeps 16 partial sums per dot product, uses fused
 * multiply-adds and the same exp).
 *
 * Against a q8_0 key cache the queries are first rounded to q8 blocks of 32
 * (llama.cpp's CPU attention also rounds them to q8_0), so that each block's product with a key
 * is an exact integer, formed with vpdpbusd or vpmaddubsw on x86: such scores
 * are those of the rounded queries, within float rounding. */
#ifndef BL_OPS_ATTENTION_H
#define BL_OPS_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/attention_chunk.h"
#include "kv_cache.h"

struct bl_pool;

typedef struct bl_attention {
    const float *q;                     /* [n, n_head * head_dim] (RoPE applied)  */
    float *out;                         /* [n, n_head * head_dim]                 */
    const int32_t *pos;                 /* [n]                                     */
    const bl_kv_cache *const *cache;    /* [n] the cache of each row's sequence    */
    int layer;
    int n, n_head, n_head_kv, head_dim;
    float scale;                        /* 1 / sqrt(head_dim)                     */
    struct bl_pool *pool;               /* runs the splits over threads           */
    int threads;
    int isa;                            /* bl_isa, resolved: picks the chunk kernel */
    void *scratch;                      /* bl_attention_scratch_bytes()           */
} bl_attention;

/* Scratch for calls of up to max_rows rows: independent of the context length. */
size_t bl_attention_scratch_bytes(int max_rows, int threads, int n_head, int n_head_kv,
                                  int head_dim);

int bl_attention_run(const bl_attention *a);

#endif
