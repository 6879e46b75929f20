/* A loaded model: hyperparameters, what its architecture does, and every
 * weight bound in place inside the mapped GGUF (nothing is copied), except the
 * tensors of a foreign type repacked into one of ours (repack.h). */
#ifndef BL_MODEL_H
#define BL_MODEL_H

#include "bitllm.h"
#include "linalg/linear.h"
#include "backend.h"
#include "ops/ops.h"
#include "gguf.h"

/* What sets one architecture apart. A row of the table in arch.c; the file's
 * bitllm.* keys, when present, override the row's defaults. */
typedef struct bl_arch {
    const char *name;
    bl_ffn_activation activation; /* of the gated FFN                               */
    int sub_norms;         /* RMSNorm before attn_output and before ffn_down       */
    int scaled_projections; /* OneBit: y = LayerNorm(((x * g) . W^T) * h) for every
                               projection, g = <proj>.in_scale, h = <proj>.out_scale */
    int act_bits;          /* activations of ternary/sign products: 8 or 16          */
    int qk_norm;           /* Qwen3: RMSNorm of every q and k head before RoPE       */
    bl_rope_style rope;    /* how q/k dimensions pair up (the converter permutes to match) */
} bl_arch;

/* The row for general.architecture, or NULL. */
const bl_arch *bl_arch_find(const char *name);
/* "bitnet, bitnet-b1.58, ..." for error messages, cut to size. */
void bl_arch_names(char *out, size_t size);

/* bitllm.activation's and bitllm.rope_type's spellings, by enum value. */
#define BL_FFN_ACTIVATION_COUNT 2
#define BL_ROPE_STYLE_COUNT 2
extern const char *const bl_activation_names[BL_FFN_ACTIVATION_COUNT];
extern const char *const bl_rope_names[BL_ROPE_STYLE_COUNT];

/* A Walsh-Hadamard rotation folded into weights (PrismML's prism.hadamard,
 * rotation.c): a projection that has one reads H (s * x) instead of x, each
 * block of `block` values rotated on its own (ops/hadamard.c); an embedding
 * row z stored in the rotated basis is read back as s * (H z). One per
 * activation width. */
typedef struct bl_rotation {
    int64_t width;
    int32_t block;  /* a power of two dividing width */
    float *signs;   /* [width] of +1 and -1, or NULL: no sign flip */
} bl_rotation;

/* Widths a projection reads: the model, the attention's q and the FFN's. */
#define BL_MAX_ROTATIONS 3

/* One projection: y = x . W^T, or with in/out scales and a LayerNorm after it. */
typedef struct bl_proj {
    bl_weight w;
    const float *in_scale;  /* [cols] or NULL */
    const float *out_scale; /* [rows] or NULL; when set, a parameter-free LayerNorm follows */
    const bl_rotation *in_rotation; /* NULL, or x becomes H (s * x) first */
} bl_proj;

typedef struct bl_layer {
    const float *attn_norm, *ffn_norm;         /* [n_embd]                     */
    const float *attn_sub_norm, *ffn_sub_norm; /* [q_dim], [n_ff]; NULL without */
    const float *attn_q_norm, *attn_k_norm;    /* [head_dim]; NULL without       */
    bl_proj q, k, v, o, gate, up, down;
} bl_layer;

typedef struct bl_hparams {
    int32_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, head_dim, n_rot, n_ff;
    float rms_eps, rope_theta, rope_factor, post_layernorm_eps; /* factor: linear scaling */
} bl_hparams;

struct bl_model {
    bl_gguf *file;
    char *arch_name;
    bl_arch arch;
    bl_hparams hp;
    bl_engine engine;
    bl_weight token_embd; /* float or quant type: rows are looked up */
    bl_weight output;     /* the head; token_embd's matrix when tied */
    const float *output_norm;
    bl_layer *layers;
    bl_rotation rotations[BL_MAX_ROTATIONS]; /* of n_rotations widths */
    int32_t n_rotations;
    const bl_rotation *embd_rotation;   /* token_embd's rows are rotated: undone after lookup */
    const bl_rotation *output_rotation; /* the head's input is rotated first */
    const bl_backend *backend; /* where the forward pass runs                    */
    void *device_state;        /* the backend's copy of the weights, if any      */
    char device_name[128];     /* bl_model_info.device                           */
    int64_t device_bytes;      /* what the weights take on the device            */
    uint8_t **repacked;        /* weights repacked from the file's types (repack.h) */
    int64_t n_repacked;
    int64_t repacked_bytes;    /* their sizes, summed                          */
};

/* The projection a tensor name ("blk.3.ffn_down.weight") binds, or NULL. */
bl_proj *bl_model_find_proj(bl_model *m, const char *tensor_name);

/* Reads the prism.hadamard contract when the file has one and attaches its
 * rotations to the projections, head and embedding it names (rotation.c). */
int bl_rotations_load(bl_model *m, const bl_gguf *g);
void bl_rotations_free(bl_model *m);

#endif
