/* Contexts: the KV caches of n_seq sequences plus scratch on the model's
 * backend (the CPU's row is here); bl_context_eval (one sequence) and
 * bl_context_decode (many), which check their arguments up front and feed the
 * backend's forward pass slices of at most `batch` tokens. */
#include <stdio.h>
#include <stdlib.h>

#include "context.h"
#include "base/error.h"
#include "ops/attention.h"

/* tokens per forward pass: enough for the GEMM kernels, bounded scratch */
#define CPU_MAX_BATCH 256

static float *floats(size_t rows, size_t cols, int *ok) {
    float *p = calloc(rows * cols + 1, sizeof(float));
    *ok = *ok && p;
    return p;
}

static int alloc_scratch(bl_context *c) {
    const bl_hparams *hp = &c->model->hp;
    size_t b = (size_t)c->batch, embd = (size_t)hp->n_embd;
    size_t q = (size_t)hp->n_head * (size_t)hp->head_dim, ff = (size_t)hp->n_ff;
    size_t kv = (size_t)hp->n_head_kv * (size_t)hp->head_dim;
    size_t widest = embd > q ? embd : q;
    widest = widest > ff ? widest : ff;
    int ok = 1;
    c->x = floats(b, embd, &ok);
    c->xn = floats(b, embd, &ok);
    c->q = floats(b, q, &ok);
    c->k = floats(b, kv, &ok);
    c->v = floats(b, kv, &ok);
    c->att = floats(b, q, &ok);
    c->gate = floats(b, ff, &ok);
    c->up = floats(b, ff, &ok);
    int transforms_input = c->model->arch.scaled_projections || c->model->n_rotations;
    c->scaled = transforms_input ? floats(b, widest, &ok) : NULL;
    c->rope_cos = floats(b, (size_t)hp->n_rot / 2, &ok);
    c->rope_sin = floats(b, (size_t)hp->n_rot / 2, &ok);
    size_t att = bl_attention_scratch_bytes(c->batch, c->model->engine.threads, hp->n_head,
                                            hp->n_head_kv, hp->head_dim);
    c->att_scratch = floats(att / sizeof(float), 1, &ok);
    c->positions = calloc(b, sizeof *c->positions);
    c->seq_ids = calloc(b, sizeof *c->seq_ids);
    c->want = calloc(b, sizeof *c->want);
    c->row_cache = calloc(b, sizeof *c->row_cache);
    if (ok && c->positions && c->seq_ids && c->want && c->row_cache) return BL_OK;
    return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory for the scratch of %d tokens", c->batch);
}

static int cpu_context_init(bl_context *c) {
    const bl_hparams *hp = &c->model->hp;
    c->kv = calloc((size_t)c->n_seq, sizeof *c->kv);
    if (!c->kv) return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory for %d sequences", c->n_seq);
    for (int32_t s = 0; s < c->n_seq; s++) {
        int rc = bl_kv_cache_init(&c->kv[s], hp->n_layer, c->n_ctx, hp->n_head_kv, hp->head_dim,
                                  c->type_k, c->type_v);
        if (rc != BL_OK) return rc;
    }
    return alloc_scratch(c);
}

static void cpu_copy_positions(bl_context *c, int32_t src, int32_t dst, int32_t n) {
    bl_kv_cache_copy(&c->kv[dst], &c->kv[src], n);
}

static void cpu_context_release(bl_context *c) {
    for (int32_t s = 0; c->kv && s < c->n_seq; s++) bl_kv_cache_free(&c->kv[s]);
    free(c->kv);
    free(c->seq_ids);
    free(c->want);
    free(c->x);
    free(c->xn);
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->att);
    free(c->gate);
    free(c->up);
    free(c->scaled);
    free(c->rope_cos);
    free(c->rope_sin);
    free(c->att_scratch);
    free(c->row_cache);
    free(c->positions);
    bl_activations_free(&c->act);
}

/* The weights stay in the mapped file. The device names the kernels' ISA, as
 * "cuda: " names the GPU, so that a benchmark row says what ran
 * (BITLLM_ISA=avx2 on an AVX-512 CPU included). */
static int cpu_model_init(bl_model *m) {
    snprintf(m->device_name, sizeof m->device_name, "cpu: %s", bl_isa_name(m->engine.isa));
    return BL_OK;
}

static void cpu_model_release(bl_model *m) { (void)m; }

const bl_backend bl_backend_cpu = {
    .name = "cpu",
    .max_batch = CPU_MAX_BATCH,
    .model_init = cpu_model_init,
    .model_release = cpu_model_release,
    .context_init = cpu_context_init,
    .context_release = cpu_context_release,
    .forward = bl_forward,
    .forward_batch = bl_forward_batch,
    .copy_positions = cpu_copy_positions,
    .kv_type_mask = 1u << BL_KV_F32 | 1u << BL_KV_F16 | 1u << BL_KV_Q8_0,
    .default_kv_type = BL_KV_F16,
};

static const char *const kv_type_names[BL_KV_TYPE_COUNT] = {"f32", "f16", "q8_0"};

const char *bl_kv_type_name(int type) {
    return type >= 0 && type < BL_KV_TYPE_COUNT ? kv_type_names[type] : NULL;
}

/* Resolves BL_KV_DEFAULT and checks the device keeps that type. */
static int resolve_kv_type(const bl_backend *b, int requested, const char *which, int *out) {
    unsigned mask = b->kv_type_mask ? b->kv_type_mask : 1u << BL_KV_F32;
    int type = requested == BL_KV_DEFAULT ? b->default_kv_type : requested;
    if (!bl_kv_type_name(type))
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "%s cache type %d is not a KV cache type", which,
                       requested);
    if (!(mask & (1u << type)))
        return bl_fail(BL_ERR_UNSUPPORTED, "the %s backend cannot keep its %s cache in %s",
                       b->name, which, kv_type_names[type]);
    *out = type;
    return BL_OK;
}

int bl_context_new_with(bl_model *model, const bl_context_params *params, bl_context **out) {
    if (!model || !params || !out)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_context_new_with: NULL argument");
    *out = NULL;
    int32_t n_ctx = params->n_ctx > 0 ? params->n_ctx : model->hp.n_ctx_train;
    int32_t n_seq = params->n_seq > 0 ? params->n_seq : 1;
    if (n_seq > 1 && !model->backend->forward_batch)
        return bl_fail(BL_ERR_UNSUPPORTED, "the %s backend runs one sequence per context",
                       model->backend->name);
    if (n_seq > BL_MAX_SEQ)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "at most %d sequences per context, got %d",
                       BL_MAX_SEQ, n_seq);
    int type_k = BL_KV_F32, type_v = BL_KV_F32;
    int rc = resolve_kv_type(model->backend, params->type_k, "key", &type_k);
    if (rc == BL_OK) rc = resolve_kv_type(model->backend, params->type_v, "value", &type_v);
    if (rc != BL_OK) return rc;
    bl_context *c = calloc(1, sizeof *c);
    if (!c) return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory");
    c->model = model;
    c->n_ctx = n_ctx;
    c->n_seq = n_seq;
    c->n_past = calloc((size_t)n_seq, sizeof *c->n_past);
    c->type_k = type_k;
    c->type_v = type_v;
    int32_t max_batch = model->backend->max_batch;
    c->batch = n_ctx < max_batch ? n_ctx : max_batch;
    if (!c->n_past || (rc = model->backend->context_init(c)) != BL_OK) {
        if (!c->n_past) rc = bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory");
        bl_context_free(c);
        return rc;
    }
    *out = c;
    return BL_OK;
}

int bl_context_new(bl_model *model, int32_t n_ctx, bl_context **out) {
    bl_context_params params = {
        .n_ctx = n_ctx, .n_seq = 1, .type_k = BL_KV_DEFAULT, .type_v = BL_KV_DEFAULT};
    return bl_context_new_with(model, &params, out);
}

int bl_context_kv_types(const bl_context *c, int *type_k, int *type_v) {
    if (!c || !type_k || !type_v)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_context_kv_types: NULL argument");
    *type_k = c->type_k;
    *type_v = c->type_v;
    return BL_OK;
}

int64_t bl_context_kv_bytes(const bl_context *c) {
    if (!c) return 0;
    const bl_hparams *hp = &c->model->hp;
    int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    int64_t rows = (int64_t)c->n_seq * hp->n_layer * c->n_ctx;
    return rows * (int64_t)(bl_kv_row_bytes(c->type_k, (size_t)kv_dim)
                            + bl_kv_row_bytes(c->type_v, (size_t)kv_dim));
}

void bl_context_free(bl_context *c) {
    if (!c) return;
    c->model->backend->context_release(c);
    free(c->n_past);
    free(c);
}

int32_t bl_context_n_ctx(const bl_context *c) { return c ? c->n_ctx : 0; }
int32_t bl_context_n_past(const bl_context *c) { return c ? c->n_past[0] : 0; }

static int check_eval(const bl_context *c, const int32_t *tokens, int32_t n, int32_t pos) {
    if (!c || !tokens) return bl_fail(BL_ERR_INVALID_ARGUMENT, "eval: context or tokens is NULL");
    if (n <= 0) return bl_fail(BL_ERR_INVALID_ARGUMENT, "eval: no tokens (n = %d)", n);
    if (pos < 0 || pos > c->n_past[0])
        return bl_fail(BL_ERR_INVALID_ARGUMENT,
                       "eval: position %d is not in [0, %d] (the positions cached)", pos,
                       c->n_past[0]);
    if (n > c->n_ctx - pos)
        return bl_fail(BL_ERR_INVALID_ARGUMENT,
                       "eval: %d tokens from position %d do not fit the context of %d", n, pos,
                       c->n_ctx);
    int32_t n_vocab = c->model->hp.n_vocab;
    for (int32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return bl_fail(BL_ERR_INVALID_ARGUMENT,
                           "eval: token %d at index %d is not in [0, %d)", tokens[i], i, n_vocab);
    return BL_OK;
}

int bl_context_eval(bl_context *c, const int32_t *tokens, int32_t n, int32_t pos, float *logits,
                    int all_logits) {
    int rc = check_eval(c, tokens, n, pos);
    if (rc != BL_OK) return rc;
    size_t n_vocab = (size_t)c->model->hp.n_vocab;
    c->n_past[0] = pos;
    for (int32_t done = 0; done < n;) {
        int32_t chunk = n - done < c->batch ? n - done : c->batch;
        float *out = !logits ? NULL
                     : all_logits ? logits + (size_t)done * n_vocab
                     : done + chunk == n ? logits
                                         : NULL;
        if ((rc = c->model->backend->forward(c, tokens + done, chunk, pos + done, out,
                                              all_logits)) != BL_OK)
            return rc;
        done += chunk;
        c->n_past[0] = pos + done;
    }
    return BL_OK;
}

/* ---- many sequences ------------------------------------------------------ */

static int check_seq(const bl_context *c, int32_t seq, const char *what) {
    if (seq < 0 || seq >= c->n_seq)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "%s: sequence %d is not in [0, %d)", what, seq,
                       c->n_seq);
    return BL_OK;
}

/* Each sequence's tokens consecutive, at consecutive positions from at most
 * what it has cached, within its context; tokens in the vocabulary. */
static int check_batch(const bl_context *c, const bl_batch *b) {
    if (!b || !b->tokens || !b->pos || !b->seq)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "decode: batch or one of its arrays is NULL");
    if (b->n_tokens <= 0)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "decode: no tokens (n_tokens = %d)", b->n_tokens);
    int32_t n_vocab = c->model->hp.n_vocab;
    unsigned char seen[BL_MAX_SEQ] = {0}; /* sequences whose run has started */
    for (int32_t i = 0; i < b->n_tokens; i++) {
        int32_t s = b->seq[i], p = b->pos[i];
        int rc = check_seq(c, s, "decode");
        if (rc != BL_OK) return rc;
        if (b->tokens[i] < 0 || b->tokens[i] >= n_vocab)
            return bl_fail(BL_ERR_INVALID_ARGUMENT, "decode: token %d at index %d is not in [0, %d)",
                           b->tokens[i], i, n_vocab);
        if (p < 0 || p >= c->n_ctx)
            return bl_fail(BL_ERR_INVALID_ARGUMENT,
                           "decode: position %d at index %d is outside the context of %d", p, i,
                           c->n_ctx);
        int starts_run = i == 0 || b->seq[i - 1] != s;
        if (!starts_run && p != b->pos[i - 1] + 1)
            return bl_fail(BL_ERR_INVALID_ARGUMENT,
                           "decode: sequence %d jumps from position %d to %d at index %d", s,
                           b->pos[i - 1], p, i);
        if (starts_run && seen[s]++)
            return bl_fail(BL_ERR_INVALID_ARGUMENT,
                           "decode: the tokens of sequence %d are not consecutive in the batch", s);
        if (starts_run && p > c->n_past[s])
            return bl_fail(BL_ERR_INVALID_ARGUMENT,
                           "decode: sequence %d starts at position %d but has %d cached", s, p,
                           c->n_past[s]);
    }
    return BL_OK;
}

/* Rows [first, first + n) of b as one forward pass; which rows want logits. */
static bl_ubatch slice(bl_context *c, const bl_batch *b, int32_t first, int32_t n) {
    for (int32_t t = 0; t < n; t++) {
        int32_t i = first + t;
        int last_of_run = i == b->n_tokens - 1 || b->seq[i + 1] != b->seq[i];
        c->want[t] = b->logits ? b->logits[i] != 0 : last_of_run;
    }
    return (bl_ubatch){.n = n, .tokens = b->tokens + first, .pos = b->pos + first,
                       .seq = b->seq + first, .want = c->want};
}

static int32_t count_wanted(const bl_ubatch *u) {
    int32_t k = 0;
    for (int32_t t = 0; t < u->n; t++) k += u->want[t] != 0;
    return k;
}

int bl_context_decode(bl_context *c, const bl_batch *b, float *logits) {
    if (!c) return bl_fail(BL_ERR_INVALID_ARGUMENT, "decode: context is NULL");
    if (!c->model->backend->forward_batch)
        return bl_fail(BL_ERR_UNSUPPORTED,
                       "the %s backend has no batch API: evaluate one sequence with "
                       "bl_context_eval", c->model->backend->name);
    int rc = check_batch(c, b);
    if (rc != BL_OK) return rc;
    size_t n_vocab = (size_t)c->model->hp.n_vocab;
    for (int32_t done = 0; done < b->n_tokens;) {
        int32_t chunk = b->n_tokens - done < c->batch ? b->n_tokens - done : c->batch;
        bl_ubatch u = slice(c, b, done, chunk);
        for (int32_t t = 0; t < chunk; t++) /* a run's first row drops what lies past it */
            if (t == 0 || u.seq[t - 1] != u.seq[t]) c->n_past[u.seq[t]] = u.pos[t];
        if ((rc = c->model->backend->forward_batch(c, &u, logits)) != BL_OK) return rc;
        for (int32_t t = 0; t < chunk; t++) c->n_past[u.seq[t]] = u.pos[t] + 1;
        if (logits) logits += (size_t)count_wanted(&u) * n_vocab;
        done += chunk;
    }
    return BL_OK;
}

int32_t bl_context_seq_n_past(const bl_context *c, int32_t seq) {
    if (!c) return bl_fail(BL_ERR_INVALID_ARGUMENT, "seq_n_past: context is NULL");
    int rc = check_seq(c, seq, "seq_n_past");
    return rc == BL_OK ? c->n_past[seq] : rc;
}

int bl_context_seq_keep(bl_context *c, int32_t seq, int32_t n_keep) {
    if (!c) return bl_fail(BL_ERR_INVALID_ARGUMENT, "seq_keep: context is NULL");
    int rc = check_seq(c, seq, "seq_keep");
    if (rc != BL_OK) return rc;
    if (n_keep < 0 || n_keep > c->n_past[seq])
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "seq_keep: %d is not in [0, %d] for sequence %d",
                       n_keep, c->n_past[seq], seq);
    c->n_past[seq] = n_keep;
    return BL_OK;
}

int bl_context_seq_copy(bl_context *c, int32_t src, int32_t dst, int32_t n) {
    if (!c) return bl_fail(BL_ERR_INVALID_ARGUMENT, "seq_copy: context is NULL");
    int rc = check_seq(c, src, "seq_copy");
    if (rc == BL_OK) rc = check_seq(c, dst, "seq_copy");
    if (rc != BL_OK) return rc;
    if (n < 0 || n > c->n_past[src])
        return bl_fail(BL_ERR_INVALID_ARGUMENT,
                       "seq_copy: %d positions asked of sequence %d, which has %d", n, src,
                       c->n_past[src]);
    if (src != dst) {
        if (!c->model->backend->copy_positions)
            return bl_fail(BL_ERR_UNSUPPORTED, "the %s backend cannot copy sequences",
                           c->model->backend->name);
        c->model->backend->copy_positions(c, src, dst, n);
    }
    c->n_past[dst] = n;
    return BL_OK;
}
