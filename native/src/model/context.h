/* The state of n_seq sequences: their KV caches and the scratch every eval
 * reuses, sized for a batch of up to `batch` tokens, on the model's backend
 * (on the CPU, pages are touched only as used). */
#ifndef BL_CONTEXT_H
#define BL_CONTEXT_H

#include "ops/kv_cache.h"
#include "model.h"

/* Sequences one context may hold (each has its own cache, filled lazily). */
#define BL_MAX_SEQ 256

struct bl_context {
    bl_model *model;
    int32_t n_ctx;           /* positions each sequence's KV cache holds            */
    int32_t *n_past;         /* [n_seq] positions each sequence has cached          */
    int32_t batch;           /* most tokens one forward pass takes                  */
    int32_t n_seq;           /* sequences, each with its own KV cache               */
    int type_k, type_v;      /* bl_kv_type of the caches (resolved, never DEFAULT)  */
    void *device_state;      /* a device backend's cache and scratch                */
    /* The CPU backend's cache and scratch: */
    bl_kv_cache *kv;         /* [n_seq] one cache per sequence                      */
    int8_t *want;            /* [batch] rows whose logits are asked for             */
    int32_t *seq_ids;        /* [batch] (bl_context_eval's rows: all sequence 0)    */
    float *x;                /* [batch, n_embd]  the residual stream                */
    float *xn;               /* [batch, n_embd]  normed input, projection outputs   */
    float *q;                /* [batch, q_dim]                                      */
    float *k, *v;            /* [batch, kv_dim]  new keys and values, then cached   */
    float *att;              /* [batch, q_dim]   attention output                   */
    float *gate, *up;        /* [batch, n_ff]                                       */
    float *scaled;           /* [batch, max in]  x * in_scale, or rotated x          */
    float *rope_cos, *rope_sin; /* [batch, n_rot / 2]                               */
    int32_t *positions;      /* [batch]                                             */
    const bl_kv_cache **row_cache; /* [batch] each row's sequence's cache           */
    void *att_scratch;       /* bl_attention_scratch_bytes(batch, ...)              */
    bl_activations act;      /* quantized inputs of the current projection; grows
                                to its largest use on the first eval that needs it  */
};

/* A slice of a batch that one forward pass takes (n <= c->batch), checked:
 * each sequence's rows are consecutive, at consecutive positions from at
 * most what it has cached. */
typedef struct bl_ubatch {
    int32_t n;
    const int32_t *tokens, *pos, *seq;
    const int8_t *want; /* rows whose logits are written, in order; NULL: none */
} bl_ubatch;

/* The CPU forward pass of a batch: stores the rows' keys and values in their
 * sequences' caches and writes the logits of the rows asked for into logits
 * [asked, n_vocab]. Every backend's forward_batch keeps this contract. */
int bl_forward_batch(bl_context *c, const bl_ubatch *b, float *logits);

/* One sequence: runs tokens[0..n) (n <= batch) of sequence 0 at positions
 * pos.. and writes the logits of every row into logits [n, n_vocab] when
 * all_logits, else of the last row into logits [n_vocab]; none when logits
 * is NULL. Every backend's forward keeps this contract. */
int bl_forward(bl_context *ctx, const int32_t *tokens, int32_t n, int32_t pos, float *logits,
               int all_logits);

#endif
