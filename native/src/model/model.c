/* bl_model_open: the GGUF's metadata becomes hyperparameters and the
 * architecture's switches; every tensor the graph needs is looked up, its
 * shape and type checked against them, and bound in place. A tensor the graph
 * does not use is an error too: it means the file is not what we think. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "gguf_names.h"
#include "model.h"
#include "repack.h"
#include "base/threadpool.h"

#define MAX_SIZE (1 << 26)  /* bound on every size hyperparameter */
#define MAX_ARCH_NAME 64

typedef struct loader {
    bl_model *m;
    bl_gguf *g;
    uint8_t *used; /* per tensor of g */
    bl_repack_options repack;
} loader;

/* Errors name the file. */
#define fail_status(ld, status, ...) bl_gguf_fail((ld)->g, status, __VA_ARGS__)
#define fail(ld, ...) fail_status(ld, BL_ERR_INVALID_ARGUMENT, __VA_ARGS__)

/* ---- metadata --------------------------------------------------------- */

static int arch_int(const loader *ld, const char *suffix, int64_t fallback, int64_t lo,
                    int64_t hi, int32_t *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", ld->m->arch_name, suffix);
    int64_t v = fallback;
    int rc = bl_gguf_get_int(ld->g, key, &v);
    if (rc < 0) return rc;
    if (rc == 0 && fallback < 0) return fail(ld, "metadata %s is missing", key);
    if (v < lo || v > hi)
        return fail(ld, "metadata %s = %lld is out of range [%lld, %lld]", key, (long long)v,
                    (long long)lo, (long long)hi);
    *out = (int32_t)v;
    return BL_OK;
}

/* A positive finite float (or >= 0 when zero_ok); fallback < 0: required. */
static int float_key(const loader *ld, const char *key, double fallback, int zero_ok,
                     float *out) {
    double v = fallback;
    int rc = bl_gguf_get_float(ld->g, key, &v);
    if (rc < 0) return rc;
    if (rc == 0 && fallback < 0) return fail(ld, "metadata %s is missing", key);
    if (!isfinite(v) || v < 0 || (v == 0 && !zero_ok) || v > 1e30)
        return fail(ld, "metadata %s = %g is out of range", key, v);
    *out = (float)v;
    return BL_OK;
}

static int arch_float(const loader *ld, const char *suffix, double fallback, int zero_ok,
                      float *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", ld->m->arch_name, suffix);
    return float_key(ld, key, fallback, zero_ok, out);
}

static int read_arch(loader *ld) {
    const char *name;
    size_t len;
    int rc = bl_gguf_get_string(ld->g, BL_KEY_ARCHITECTURE, &name, &len);
    if (rc < 0) return rc;
    if (rc == 0) return fail(ld, "metadata " BL_KEY_ARCHITECTURE " is missing");
    if (len == 0 || len > MAX_ARCH_NAME || memchr(name, 0, len))
        return fail(ld, BL_KEY_ARCHITECTURE " is not a valid name");
    if (!(ld->m->arch_name = strndup(name, len)))
        return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory");
    const bl_arch *arch = bl_arch_find(ld->m->arch_name);
    if (!arch) {
        char known[128];
        bl_arch_names(known, sizeof known);
        return fail_status(ld, BL_ERR_UNSUPPORTED, "architecture '%s' is not supported (known: %s)",
                           ld->m->arch_name, known);
    }
    ld->m->arch = *arch;
    return BL_OK;
}

/* A string key that must be one of names[count]: 1 and its index, 0 if absent. */
static int string_choice(const loader *ld, const char *key, const char *const *names, int count,
                         int *out) {
    const char *value;
    size_t len;
    int rc = bl_gguf_get_string(ld->g, key, &value, &len);
    if (rc <= 0) return rc;
    char known[128] = "";
    for (int i = 0; i < count; i++) {
        if (strlen(names[i]) == len && memcmp(value, names[i], len) == 0) {
            *out = i;
            return 1;
        }
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
                 names[i]);
    }
    return fail_status(ld, BL_ERR_UNSUPPORTED, "metadata %s '%.*s' is not supported (known: %s)",
                       key, (int)(len > 32 ? 32 : len), value, known);
}

/* bitllm.* keys override the architecture's defaults. */
static int read_bitllm_keys(loader *ld) {
    bl_arch *a = &ld->m->arch;
    int64_t version, bits;
    int rc, flag;
    if ((rc = bl_gguf_get_int(ld->g, BL_KEY_FORMAT_VERSION, &version)) < 0) return rc;
    if (rc == 1 && version != 1)
        return fail_status(ld, BL_ERR_UNSUPPORTED,
                           BL_KEY_FORMAT_VERSION " %lld is not supported (this bitllm reads 1)",
                           (long long)version);
    int choice = 0;
    if ((rc = string_choice(ld, BL_KEY_ACTIVATION, bl_activation_names, BL_FFN_ACTIVATION_COUNT,
                            &choice)) < 0)
        return rc;
    if (rc == 1) a->activation = (bl_ffn_activation)choice;
    if ((rc = string_choice(ld, BL_KEY_ROPE_TYPE, bl_rope_names, BL_ROPE_STYLE_COUNT, &choice)) < 0)
        return rc;
    if (rc == 1) a->rope = (bl_rope_style)choice;
    if ((rc = bl_gguf_get_bool(ld->g, BL_KEY_SUB_NORMS, &flag)) < 0) return rc;
    if (rc == 1) a->sub_norms = flag;
    if ((rc = bl_gguf_get_int(ld->g, BL_KEY_ACTIVATION_BITS, &bits)) < 0) return rc;
    if (rc == 1) {
        if (bits != 8 && bits != 16)
            return fail(ld, BL_KEY_ACTIVATION_BITS " is %lld, not 8 or 16", (long long)bits);
        a->act_bits = (int)bits;
    }
    return float_key(ld, BL_KEY_POST_LAYERNORM_EPS, 1e-5, 1, &ld->m->hp.post_layernorm_eps);
}

/* {arch}.rope.scaling.type: none, or linear with {arch}.rope.scaling.factor. */
static int read_rope_scaling(loader *ld) {
    static const char *const kinds[] = {"none", "linear"};
    char key[128];
    int kind = 0;
    snprintf(key, sizeof key, "%s." BL_ARCH_KEY_ROPE_SCALING_TYPE, ld->m->arch_name);
    int rc = string_choice(ld, key, kinds, 2, &kind);
    if (rc < 0) return rc;
    ld->m->hp.rope_factor = 1.0f;
    if (!kind) return BL_OK;
    return arch_float(ld, BL_ARCH_KEY_ROPE_SCALING_FACTOR, -1, 0, &ld->m->hp.rope_factor);
}

static int read_hparams(loader *ld) {
    bl_hparams *hp = &ld->m->hp;
    int rc;
    if ((rc = arch_int(ld, BL_ARCH_KEY_CONTEXT_LENGTH, -1, 1, MAX_SIZE, &hp->n_ctx_train)) ||
        (rc = arch_int(ld, BL_ARCH_KEY_EMBEDDING_LENGTH, -1, 1, MAX_SIZE, &hp->n_embd)) ||
        (rc = arch_int(ld, BL_ARCH_KEY_BLOCK_COUNT, -1, 1, 65536, &hp->n_layer)) ||
        (rc = arch_int(ld, BL_ARCH_KEY_FEED_FORWARD_LENGTH, -1, 1, MAX_SIZE, &hp->n_ff)) ||
        (rc = arch_int(ld, BL_ARCH_KEY_HEAD_COUNT, -1, 1, 65536, &hp->n_head)) ||
        (rc = arch_int(ld, BL_ARCH_KEY_HEAD_COUNT_KV, hp->n_head, 1, hp->n_head, &hp->n_head_kv)))
        return rc;
    if (hp->n_head % hp->n_head_kv)
        return fail(ld, "%d attention heads cannot share %d key/value heads", hp->n_head,
                    hp->n_head_kv);
    int32_t head_dim_default = hp->n_embd % hp->n_head ? -1 : hp->n_embd / hp->n_head;
    int32_t value_dim;
    if ((rc = arch_int(ld, BL_ARCH_KEY_KEY_LENGTH, head_dim_default, 2, 65536, &hp->head_dim)))
        return rc;
    if ((rc = arch_int(ld, BL_ARCH_KEY_VALUE_LENGTH, hp->head_dim, 1, 65536, &value_dim)))
        return rc;
    if (value_dim != hp->head_dim)
        return fail_status(ld, BL_ERR_UNSUPPORTED, "key length %d differs from value length %d",
                           hp->head_dim, value_dim);
    if ((rc = arch_int(ld, BL_ARCH_KEY_ROPE_DIMENSION_COUNT, hp->head_dim, 2, hp->head_dim,
                       &hp->n_rot)))
        return rc;
    if (hp->n_rot % 2) return fail(ld, BL_ARCH_KEY_ROPE_DIMENSION_COUNT " %d is odd", hp->n_rot);
    if ((rc = arch_float(ld, BL_ARCH_KEY_LAYERNORM_RMS_EPS, -1, 1, &hp->rms_eps)) ||
        (rc = arch_float(ld, BL_ARCH_KEY_ROPE_FREQ_BASE, 10000.0, 0, &hp->rope_theta)))
        return rc;
    return read_rope_scaling(ld);
}

/* ---- tensors ----------------------------------------------------------- */

#define TOKEN_EMBD BL_TENSOR_TOKEN_EMBD BL_SUFFIX_WEIGHT
#define OUTPUT BL_TENSOR_OUTPUT BL_SUFFIX_WEIGHT
#define OUTPUT_NORM BL_TENSOR_OUTPUT_NORM BL_SUFFIX_WEIGHT
#define LAYER_WEIGHT(t) BL_LAYER_PREFIX BL_LAYER_TENSOR_##t BL_SUFFIX_WEIGHT

static const bl_gguf_tensor *take_tensor(loader *ld, const char *name) {
    const bl_gguf_tensor *t = bl_gguf_tensor_find(ld->g, name);
    if (t) ld->used[t - ld->g->tensors] = 1;
    return t;
}

/* A tensor of a foreign type (or one of ours an optional row speeds up),
 * converted into the model's own memory; an optional row's no leaves it as the
 * file holds it. */
static int repack_matrix(loader *ld, const bl_gguf_tensor *t, const bl_repack_row *row,
                         int64_t rows, int64_t cols, bl_weight *w) {
    bl_model *m = ld->m;
    bl_repack_source src = {
        .data = t->data, .nbytes = t->nbytes, .rows = rows, .cols = cols, .options = &ld->repack};
    uint8_t *data;
    char why[200];
    int rc = bl_repack_tensor(row, &src, m->engine.pool, &data, why, sizeof why);
    if (rc != BL_OK) return fail_status(ld, rc, "tensor '%s' (%s): %s", t->name, row->name, why);
    if (!data) {
        bl_weight_bind(w, t->type, t->data, rows, cols);
        return BL_OK;
    }
    m->repacked[m->n_repacked++] = data;
    m->repacked_bytes += bl_tensor_size(bl_traits(row->target), rows, cols);
    bl_weight_bind(w, row->target, data, rows, cols);
    return BL_OK;
}

/* The optional row for a projection of `type`: the one to what this ISA runs
 * it as, else the one to a faster type, or to what the ISA runs that type as
 * (tq1_0 -> bt1, and bt1 runs as bt2: tq1_0 -> bt2). */
static const bl_repack_row *faster_row(const bl_kernel_table *k, bl_type_id type) {
    const bl_repack_row *row = bl_repack_find_faster(type, k->runs_as[type]);
    if (row && k->runs_as[row->target] != BL_TYPE_COUNT) {
        const bl_repack_row *further = bl_repack_find_faster(type, k->runs_as[row->target]);
        if (further) return further;
    }
    return row;
}

/* projection: a linear layer's weight, which an optional repack row may turn into
 * a faster type; embeddings (looked up by row) and heads keep the file's type. */
static int bind_matrix(loader *ld, const char *name, int64_t rows, int64_t cols, int projection,
                       bl_weight *w) {
    const bl_gguf_tensor *t = take_tensor(ld, name);
    if (!t) return fail(ld, "tensor '%s' is missing", name);
    if (t->n_dims != 2)
        return fail(ld, "tensor '%s' has %u dimensions, expected a %lld x %lld matrix", name,
                    t->n_dims, (long long)rows, (long long)cols);
    if (t->ne[0] != cols || t->ne[1] != rows)
        return fail(ld, "tensor '%s' has shape %lld x %lld, expected %lld x %lld (rows x cols)",
                    name, (long long)t->ne[1], (long long)t->ne[0], (long long)rows,
                    (long long)cols);
    if (t->repack) return repack_matrix(ld, t, t->repack, rows, cols, w);
    const bl_repack_row *faster = projection ? faster_row(ld->m->engine.kernels, t->type) : NULL;
    if (faster) return repack_matrix(ld, t, faster, rows, cols, w);
    bl_weight_bind(w, t->type, t->data, rows, cols);
    return BL_OK;
}

static int bind_vector(loader *ld, const char *name, int64_t n, const float **out) {
    const bl_gguf_tensor *t = take_tensor(ld, name);
    if (!t) return fail(ld, "tensor '%s' is missing", name);
    if (t->n_dims != 1 || t->ne[0] != n)
        return fail(ld, "tensor '%s' is not a vector of %lld", name, (long long)n);
    if (!t->known || t->type != BL_TYPE_F32)
        return fail(ld, "tensor '%s' is %s, expected f32", name,
                    t->known ? bl_traits(t->type)->info.name : t->repack->name);
    *out = (const float *)t->data;
    return BL_OK;
}

typedef enum dim { DIM_EMBD, DIM_Q, DIM_KV, DIM_FF } dim;

static const struct proj_spec {
    const char *name;
    size_t offset; /* in bl_layer */
    dim rows, cols;
} proj_specs[] = {
    {BL_LAYER_TENSOR_ATTN_Q, offsetof(bl_layer, q), DIM_Q, DIM_EMBD},
    {BL_LAYER_TENSOR_ATTN_K, offsetof(bl_layer, k), DIM_KV, DIM_EMBD},
    {BL_LAYER_TENSOR_ATTN_V, offsetof(bl_layer, v), DIM_KV, DIM_EMBD},
    {BL_LAYER_TENSOR_ATTN_OUTPUT, offsetof(bl_layer, o), DIM_EMBD, DIM_Q},
    {BL_LAYER_TENSOR_FFN_GATE, offsetof(bl_layer, gate), DIM_FF, DIM_EMBD},
    {BL_LAYER_TENSOR_FFN_UP, offsetof(bl_layer, up), DIM_FF, DIM_EMBD},
    {BL_LAYER_TENSOR_FFN_DOWN, offsetof(bl_layer, down), DIM_EMBD, DIM_FF},
};

static int64_t dim_size(const bl_hparams *hp, dim d) {
    switch (d) {
    case DIM_Q: return (int64_t)hp->n_head * hp->head_dim;
    case DIM_KV: return (int64_t)hp->n_head_kv * hp->head_dim;
    case DIM_FF: return hp->n_ff;
    default: return hp->n_embd;
    }
}

static int bind_proj(loader *ld, int layer, const struct proj_spec *spec, bl_proj *p) {
    const bl_hparams *hp = &ld->m->hp;
    int64_t rows = dim_size(hp, spec->rows), cols = dim_size(hp, spec->cols);
    char name[96];
    snprintf(name, sizeof name, BL_LAYER_PREFIX "%s" BL_SUFFIX_WEIGHT, layer, spec->name);
    int rc = bind_matrix(ld, name, rows, cols, 1, &p->w);
    if (rc != BL_OK) return rc;
    if ((rc = bl_engine_check(&ld->m->engine, &p->w)) != BL_OK) return rc;
    if (!ld->m->arch.scaled_projections) return BL_OK;
    snprintf(name, sizeof name, BL_LAYER_PREFIX "%s" BL_SUFFIX_IN_SCALE, layer, spec->name);
    if ((rc = bind_vector(ld, name, cols, &p->in_scale)) != BL_OK) return rc;
    snprintf(name, sizeof name, BL_LAYER_PREFIX "%s" BL_SUFFIX_OUT_SCALE, layer, spec->name);
    return bind_vector(ld, name, rows, &p->out_scale);
}

bl_proj *bl_model_find_proj(bl_model *m, const char *tensor_name) {
    int layer, used = 0;
    if (sscanf(tensor_name, "blk.%d.%n", &layer, &used) != 1 || used == 0 || layer < 0 ||
        layer >= m->hp.n_layer)
        return NULL;
    for (size_t p = 0; p < sizeof proj_specs / sizeof proj_specs[0]; p++) {
        char name[96];
        snprintf(name, sizeof name, BL_LAYER_PREFIX "%s" BL_SUFFIX_WEIGHT, layer,
                 proj_specs[p].name);
        if (strcmp(name, tensor_name) == 0)
            return (bl_proj *)((char *)&m->layers[layer] + proj_specs[p].offset);
    }
    return NULL;
}

static int bind_layer(loader *ld, int i, bl_layer *l) {
    const bl_hparams *hp = &ld->m->hp;
    char name[96];
    int rc;
    snprintf(name, sizeof name, LAYER_WEIGHT(ATTN_NORM), i);
    if ((rc = bind_vector(ld, name, hp->n_embd, &l->attn_norm))) return rc;
    snprintf(name, sizeof name, LAYER_WEIGHT(FFN_NORM), i);
    if ((rc = bind_vector(ld, name, hp->n_embd, &l->ffn_norm))) return rc;
    if (ld->m->arch.sub_norms) {
        snprintf(name, sizeof name, LAYER_WEIGHT(ATTN_SUB_NORM), i);
        if ((rc = bind_vector(ld, name, dim_size(hp, DIM_Q), &l->attn_sub_norm))) return rc;
        snprintf(name, sizeof name, LAYER_WEIGHT(FFN_SUB_NORM), i);
        if ((rc = bind_vector(ld, name, hp->n_ff, &l->ffn_sub_norm))) return rc;
    }
    if (ld->m->arch.qk_norm) {
        snprintf(name, sizeof name, LAYER_WEIGHT(ATTN_Q_NORM), i);
        if ((rc = bind_vector(ld, name, hp->head_dim, &l->attn_q_norm))) return rc;
        snprintf(name, sizeof name, LAYER_WEIGHT(ATTN_K_NORM), i);
        if ((rc = bind_vector(ld, name, hp->head_dim, &l->attn_k_norm))) return rc;
    }
    for (size_t p = 0; p < sizeof proj_specs / sizeof proj_specs[0]; p++)
        if ((rc = bind_proj(ld, i, &proj_specs[p], (bl_proj *)((char *)l + proj_specs[p].offset))))
            return rc;
    return BL_OK;
}

/* token_embd gives n_vocab; the head is output.weight or, tied, token_embd. */
static int bind_embeddings(loader *ld) {
    bl_model *m = ld->m;
    const bl_gguf_tensor *embd = bl_gguf_tensor_find(ld->g, TOKEN_EMBD);
    if (!embd) return fail(ld, "tensor '" TOKEN_EMBD "' is missing");
    if (embd->ne[1] > MAX_SIZE) return fail(ld, TOKEN_EMBD " has too many rows");
    if (embd->repack) /* its rows are looked up: no ternary target serves that */
        return fail(ld, TOKEN_EMBD " is %s: embeddings must be a float or quant type",
                    embd->repack->name);
    m->hp.n_vocab = (int32_t)embd->ne[1];
    int rc = bind_matrix(ld, TOKEN_EMBD, m->hp.n_vocab, m->hp.n_embd, 0, &m->token_embd);
    if (rc != BL_OK) return rc;
    bl_kind kind = m->token_embd.traits->info.kind;
    if (kind != BL_KIND_FLOAT && kind != BL_KIND_QUANT)
        return fail(ld, TOKEN_EMBD " is %s: embeddings must be a float or quant type",
                    m->token_embd.traits->info.name);
    int32_t vocab_size;
    char key[96];
    snprintf(key, sizeof key, "%s." BL_ARCH_KEY_VOCAB_SIZE, m->arch_name);
    if ((rc = arch_int(ld, BL_ARCH_KEY_VOCAB_SIZE, m->hp.n_vocab, 1, MAX_SIZE, &vocab_size)))
        return rc;
    if (vocab_size != m->hp.n_vocab)
        return fail(ld, "%s is %d but " TOKEN_EMBD " has %d rows", key, vocab_size,
                    m->hp.n_vocab);

    int has_output = bl_gguf_tensor_find(ld->g, OUTPUT) != NULL, tied = !has_output;
    if ((rc = bl_gguf_get_bool(ld->g, BL_KEY_TIED_HEAD, &tied)) < 0) return rc;
    if (tied && has_output)
        return fail(ld, BL_KEY_TIED_HEAD " is true but the file has " OUTPUT);
    if (tied)
        m->output = m->token_embd;
    else if ((rc = bind_matrix(ld, OUTPUT, m->hp.n_vocab, m->hp.n_embd, 0, &m->output)))
        return rc;
    if ((rc = bl_engine_check(&m->engine, &m->output)) != BL_OK) return rc;
    return bind_vector(ld, OUTPUT_NORM, m->hp.n_embd, &m->output_norm);
}

static int bind_tensors(loader *ld) {
    bl_model *m = ld->m;
    int rc = bind_embeddings(ld);
    if (rc != BL_OK) return rc;
    m->layers = calloc((size_t)m->hp.n_layer, sizeof *m->layers);
    if (!m->layers) return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory for %d layers",
                                   m->hp.n_layer);
    for (int i = 0; i < m->hp.n_layer; i++)
        if ((rc = bind_layer(ld, i, &m->layers[i])) != BL_OK) return rc;
    for (int64_t i = 0; i < ld->g->n_tensors; i++)
        if (!ld->used[i])
            return fail(ld, "unexpected tensor '%s' in a %s model", ld->g->tensors[i].name,
                        m->arch_name);
    return BL_OK;
}

/* The weight types native/src/cuda has product kernels for (its kernel
 * switches in bit_matmul.cu, float_matmul.cu and quant_matmul.cu); a model
 * with any other type is refused for the cuda device when it loads, not at
 * its first forward pass. */
static int cuda_runs(bl_type_id type) {
    switch (type) {
    case BL_TYPE_F32: case BL_TYPE_F16: case BL_TYPE_BF16: case BL_TYPE_Q8_0: case BL_TYPE_Q4_0:
    case BL_TYPE_BT2: case BL_TYPE_BT1: case BL_TYPE_BS1: return 1;
    default: return 0;
    }
}

static int check_cuda_types(const bl_model *m) {
    const bl_weight *refused = cuda_runs(m->output.type) ? NULL : &m->output;
    for (int i = 0; i < m->hp.n_layer && !refused; i++) {
        const bl_layer *l = &m->layers[i];
        const bl_proj *projs[] = {&l->q, &l->k, &l->v, &l->o, &l->gate, &l->up, &l->down};
        for (size_t p = 0; p < sizeof projs / sizeof projs[0] && !refused; p++)
            if (!cuda_runs(projs[p]->w.type)) refused = &projs[p]->w;
    }
    if (!refused) return BL_OK;
    char names[128];
    size_t used = 0;
    for (int t = 0; t < BL_TYPE_COUNT; t++) {
        if (!cuda_runs((bl_type_id)t)) continue;
        int n = snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "",
                         bl_traits((bl_type_id)t)->info.name);
        if (n < 0 || (size_t)n >= sizeof names - used) break;
        used += (size_t)n;
    }
    return bl_fail(BL_ERR_UNSUPPORTED,
                   "cuda: %s weights run on the cpu device only (the cuda kernels take %s)",
                   refused->traits->info.name, names);
}

/* ---- the API ----------------------------------------------------------- */

static int load(loader *ld, const bl_model_params *params) {
    bl_model *m = ld->m;
    int rc;
    if ((rc = read_arch(ld)) || (rc = read_bitllm_keys(ld)) || (rc = read_hparams(ld)))
        return rc;
    ld->repack.i2s_packing = params ? params->i2s_packing : BL_I2S_X86;
    if (ld->repack.i2s_packing < BL_I2S_X86 || ld->repack.i2s_packing > BL_I2S_X86_1X4)
        return bl_fail(BL_ERR_INVALID_ARGUMENT,
                       "unknown i2s_packing %d (0: x86, 1: arm, 2: x86-1x4)",
                       ld->repack.i2s_packing);
    int act_bits = params && params->act_bits ? params->act_bits : m->arch.act_bits;
    if ((rc = bl_engine_init(&m->engine, params ? params->isa : BL_ISA_AUTO,
                             params ? params->threads : 0, act_bits, BL_ALGO_AUTO)))
        return rc;
    if ((rc = bl_pool_new(m->engine.threads, &m->engine.pool)) != BL_OK) return rc;
    ld->used = calloc((size_t)ld->g->n_tensors + 1, 1);
    m->repacked = calloc((size_t)ld->g->n_tensors + 1, sizeof *m->repacked);
    if (!ld->used || !m->repacked) return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory");
    if ((rc = bind_tensors(ld)) || (rc = bl_rotations_load(m, ld->g))) return rc;
    int device = params ? params->device : BL_DEVICE_CPU;
    if (device != BL_DEVICE_CPU && device != BL_DEVICE_CUDA)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "unknown device %d (0: cpu, 1: cuda)", device);
    /* The CUDA graph has no per-head q/k norm step yet (its sources change only
     * after they ran on a GPU): refuse here rather than compute without it. */
    if (device == BL_DEVICE_CUDA && m->arch.qk_norm)
        return bl_fail(BL_ERR_UNSUPPORTED,
                       "cuda: architecture '%s' (per-head q/k norms) runs on the cpu device only",
                       m->arch_name);
    if (device == BL_DEVICE_CUDA && m->n_rotations)
        return bl_fail(BL_ERR_UNSUPPORTED,
                       "cuda: Hadamard-folded weights (prism.hadamard) run on the cpu device only");
    if (device == BL_DEVICE_CUDA && (rc = check_cuda_types(m)) != BL_OK) return rc;
    m->backend = device == BL_DEVICE_CUDA ? &bl_backend_cuda : &bl_backend_cpu;
    snprintf(m->device_name, sizeof m->device_name, "%s", m->backend->name);
    return m->backend->model_init(m);
}

int bl_model_open(const char *path, const bl_model_params *params, bl_model **out) {
    if (!out) return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_model_open: out is NULL");
    *out = NULL;
    bl_model *m = calloc(1, sizeof *m);
    if (!m) return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory");
    int rc = bl_gguf_open(path, NULL, &m->file);
    if (rc == BL_OK) {
        loader ld = {.m = m, .g = m->file};
        rc = load(&ld, params);
        free(ld.used);
    }
    if (rc != BL_OK) {
        bl_model_free(m);
        return rc;
    }
    *out = m;
    return BL_OK;
}

void bl_model_free(bl_model *m) {
    if (!m) return;
    if (m->backend) m->backend->model_release(m);
    bl_pool_free(m->engine.pool);
    bl_gguf_free(m->file);
    for (int64_t i = 0; i < m->n_repacked; i++) free(m->repacked[i]);
    free(m->repacked);
    bl_rotations_free(m);
    free(m->layers);
    free(m->arch_name);
    free(m);
}

const bl_gguf *bl_model_gguf(const bl_model *m) {
    if (!m) bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_model_gguf: model is NULL");
    return m ? m->file : NULL;
}

int bl_model_get_info(const bl_model *m, bl_model_info *out) {
    if (!m || !out) return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_model_get_info: NULL argument");
    *out = (bl_model_info){
        .arch = m->arch_name,
        .n_vocab = m->hp.n_vocab,
        .n_ctx_train = m->hp.n_ctx_train,
        .n_embd = m->hp.n_embd,
        .n_layer = m->hp.n_layer,
        .n_head = m->hp.n_head,
        .n_head_kv = m->hp.n_head_kv,
        .n_ff = m->hp.n_ff,
        .file_bytes = (int64_t)m->file->size,
        .device = m->device_name,
        .device_bytes = m->device_bytes,
        .repacked_bytes = m->repacked_bytes,
    };
    return BL_OK;
}
