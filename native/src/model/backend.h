/* Where a model's forward pass runs: one row per device (CPU in context.c,
 * CUDA in cuda/backend.cu or its stub). The model and context code call
 * through the row, so adding a device adds a row, not branches. */
#ifndef BL_BACKEND_H
#define BL_BACKEND_H

#include <stdint.h>

#include "bitllm.h"

struct bl_ubatch;

typedef struct bl_backend {
    const char *name;
    int32_t max_batch; /* most tokens one forward pass takes */
    /* After the weights are bound in the mapped file: copies them where the
     * device needs them (m->device_state). */
    int (*model_init)(bl_model *m);
    void (*model_release)(bl_model *m);
    /* c->model, c->n_ctx and c->batch are set: allocates the KV cache and scratch. */
    int (*context_init)(bl_context *c);
    void (*context_release)(bl_context *c);
    /* The contract of bl_forward (context.h). */
    int (*forward)(bl_context *c, const int32_t *tokens, int32_t n, int32_t pos, float *logits,
                   int all_logits);
    /* Cache types its KV caches can hold, one bit (1 << bl_kv_type) each, and
     * what BL_KV_DEFAULT means; a row that leaves them 0 keeps f32 only. */
    unsigned kv_type_mask;
    int default_kv_type;
    /* Several sequences in one pass (bl_forward_batch's contract); NULL: the
     * device runs one sequence per context. */
    int (*forward_batch)(bl_context *c, const struct bl_ubatch *b, float *logits);
    /* Copies n cached positions of sequence src to dst (both < c->n_seq). */
    void (*copy_positions)(bl_context *c, int32_t src, int32_t dst, int32_t n);
} bl_backend;

extern const bl_backend bl_backend_cpu, bl_backend_cuda;

#endif
