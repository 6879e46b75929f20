/* The forward pass of every architecture, on a batch of tokens:
 *
 *   x = embed(tokens)
 *   per layer:
 *     a = attention(rope(q), rope(k), v) of RMSNorm(x)   [sub-norm on a]
 *         [q, k: RMSNorm of each head before rope]
 *     x += o(a)
 *     g = act(gate(RMSNorm(x))) * up(RMSNorm(x))         [sub-norm on g]
 *     x += down(g)
 *   logits = head(RMSNorm(x))
 *
 * A file with rotations folded into its weights (model/rotation.c) has x
 * rotated before each folded projection and head, and its rotated embedding
 * rows turned back after the lookup.
 *
 * What differs between architectures (activation, sub-norms, q/k norms,
 * scaled projections, tied head) is data in the model, not branches here. A batch
 * holds rows of one or several sequences: everything but attention works on
 * rows alone, and attention reads each row's own sequence's cache. */
#include <math.h>
#include <string.h>

#include "context.h"
#include "base/error.h"
#include "base/threadpool.h"
#include "ops/attention.h"

#define MAX_SHARED 3 /* projections reading one input: q, k, v */

static size_t q_dim(const bl_hparams *hp) { return (size_t)hp->n_head * (size_t)hp->head_dim; }
static size_t kv_dim(const bl_hparams *hp) {
    return (size_t)hp->n_head_kv * (size_t)hp->head_dim;
}

/* Rows of x [n, r->width] into H (s * x) or, inverse, s * (H x), in place,
 * split by rows over the model's threads (each row alone: no split changes
 * a result). */
typedef struct rotation_job {
    float *x;
    size_t n;
    const bl_rotation *r;
    int inverse;
} rotation_job;

static void rotate_part(void *ctx, int index, int count) {
    const rotation_job *j = ctx;
    size_t first = j->n * (size_t)index / (size_t)count;
    size_t rows = j->n * (size_t)(index + 1) / (size_t)count - first;
    size_t width = (size_t)j->r->width;
    float *x = j->x + first * width;
    const float *signs = j->r->signs;
    if (signs && !j->inverse) bl_scale_columns(x, x, signs, rows, width);
    bl_hadamard_rows(x, rows, width, (size_t)j->r->block);
    if (signs && j->inverse) bl_scale_columns(x, x, signs, rows, width);
}

static int rotate(const bl_model *m, float *x, size_t n, const bl_rotation *r, int inverse) {
    rotation_job job = {.x = x, .n = n, .r = r, .inverse = inverse};
    int parts = n < (size_t)m->engine.threads ? (int)n : m->engine.threads;
    return bl_parallel_run(m->engine.pool, parts, rotate_part, &job);
}

/* A rotated table's rows come back as s * (H z): H is its own inverse. */
static int embed(const bl_model *m, const int32_t *tokens, int32_t n, float *x) {
    const bl_weight *e = &m->token_embd;
    for (int32_t t = 0; t < n; t++)
        e->traits->dequantize_row(e->data + (size_t)tokens[t] * e->row_bytes, e->cols,
                                  x + (size_t)t * (size_t)e->cols);
    return m->embd_rotation ? rotate(m, x, (size_t)n, m->embd_rotation, 1) : BL_OK;
}

/* x [n, w->cols] into the activation format w's kernels take. */
static int quantize_for(bl_context *c, const bl_weight *w, const float *x, size_t n) {
    bl_act_format format = bl_engine_format(&c->model->engine, w);
    return bl_activations_quantize(&c->act, format, x, n, (size_t)w->cols,
                                   (size_t)bl_padded_cols(w->traits, w->cols),
                                   c->model->engine.pool, c->model->engine.threads);
}

static int shares_input(const bl_engine *e, const bl_proj *a, const bl_proj *b) {
    return !a->in_scale && !b->in_scale && a->in_rotation == b->in_rotation &&
           bl_engine_format(e, &a->w) == bl_engine_format(e, &b->w) &&
           bl_padded_cols(a->w.traits, a->w.cols) == bl_padded_cols(b->w.traits, b->w.cols);
}

/* y[i] [n, rows_i] = projection i of x [n, cols] for count projections that
 * read the same x. Those without an input scale and with the same rotation
 * (q, k and v of a folded file) share one rotation and quantization of x. */
static int project(bl_context *c, const float *x, int32_t n, const bl_proj *const *p,
                   float *const *y, int count) {
    const bl_engine *e = &c->model->engine;
    for (int i = 0; i < count;) {
        const bl_weight *w = &p[i]->w;
        const float *in = x;
        int group = 1;
        if (p[i]->in_scale) {
            bl_scale_columns(c->scaled, x, p[i]->in_scale, (size_t)n, (size_t)w->cols);
            in = c->scaled;
        }
        if (p[i]->in_rotation) {
            if (in != c->scaled) memcpy(c->scaled, in, (size_t)n * (size_t)w->cols * sizeof *in);
            int rc = rotate(c->model, c->scaled, (size_t)n, p[i]->in_rotation, 0);
            if (rc != BL_OK) return rc;
            in = c->scaled;
        }
        while (i + group < count && shares_input(e, p[i], p[i + group])) group++;
        int rc = quantize_for(c, w, in, (size_t)n);
        if (rc != BL_OK) return rc;
        const bl_weight *ws[MAX_SHARED];
        for (int g = 0; g < group; g++) ws[g] = &p[i + g]->w;
        if ((rc = bl_linear(e, &c->act, ws, y + i, group)) != BL_OK) return rc;
        i += group;
    }
    for (int i = 0; i < count; i++) {
        if (!p[i]->out_scale) continue;
        size_t rows = (size_t)p[i]->w.rows;
        bl_scale_columns(y[i], y[i], p[i]->out_scale, (size_t)n, rows);
        bl_layernorm(y[i], (size_t)n, rows, c->model->hp.post_layernorm_eps);
    }
    return BL_OK;
}

/* Keys and values of the new rows are projected and rotated in float32, then
 * stored in their sequences' caches in the caches' types; attention reads
 * them from there, each row from its own sequence's cache. */
static void store_kv(bl_context *c, int layer, const bl_ubatch *b) {
    size_t dim = kv_dim(&c->model->hp);
    for (int32_t t = 0; t < b->n; t++) {
        bl_kv_cache *kv = &c->kv[b->seq[t]];
        bl_kv_store(kv, layer, b->pos[t], c->k + (size_t)t * dim, c->v + (size_t)t * dim);
        c->row_cache[t] = kv;
    }
}

static int attention_block(bl_context *c, int layer, const bl_ubatch *b) {
    const bl_model *m = c->model;
    const bl_hparams *hp = &m->hp;
    const bl_layer *l = &m->layers[layer];
    int32_t n = b->n;

    bl_rmsnorm(c->xn, c->x, l->attn_norm, (size_t)n, (size_t)hp->n_embd, hp->rms_eps);
    const bl_proj *qkv[3] = {&l->q, &l->k, &l->v};
    float *qkv_out[3] = {c->q, c->k, c->v};
    int rc = project(c, c->xn, n, qkv, qkv_out, 3);
    if (rc != BL_OK) return rc;
    if (l->attn_q_norm) { /* each head alone: rows of head_dim, one weight shared by all heads */
        bl_rmsnorm(c->q, c->q, l->attn_q_norm, (size_t)n * (size_t)hp->n_head,
                   (size_t)hp->head_dim, hp->rms_eps);
        bl_rmsnorm(c->k, c->k, l->attn_k_norm, (size_t)n * (size_t)hp->n_head_kv,
                   (size_t)hp->head_dim, hp->rms_eps);
    }
    bl_rope(c->q, (size_t)n, q_dim(hp), hp->n_head, hp->head_dim, hp->n_rot, c->rope_cos,
            c->rope_sin, m->arch.rope);
    bl_rope(c->k, (size_t)n, kv_dim(hp), hp->n_head_kv, hp->head_dim, hp->n_rot, c->rope_cos,
            c->rope_sin, m->arch.rope);
    store_kv(c, layer, b);

    bl_attention att = {
        .q = c->q, .out = c->att, .pos = b->pos, .cache = c->row_cache, .layer = layer,
        .n = n, .n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim,
        .scale = (float)(1.0 / sqrt((double)hp->head_dim)),
        .pool = m->engine.pool, .threads = m->engine.threads, .isa = m->engine.isa,
        .scratch = c->att_scratch,
    };
    if ((rc = bl_attention_run(&att)) != BL_OK) return rc;
    if (l->attn_sub_norm)
        bl_rmsnorm(c->att, c->att, l->attn_sub_norm, (size_t)n, q_dim(hp), hp->rms_eps);
    const bl_proj *o[1] = {&l->o};
    if ((rc = project(c, c->att, n, o, &c->xn, 1)) != BL_OK) return rc;
    bl_add(c->x, c->xn, (size_t)n * (size_t)hp->n_embd);
    return BL_OK;
}

static int ffn_block(bl_context *c, int layer, int32_t n) {
    const bl_model *m = c->model;
    const bl_hparams *hp = &m->hp;
    const bl_layer *l = &m->layers[layer];
    size_t ff = (size_t)n * (size_t)hp->n_ff;

    bl_rmsnorm(c->xn, c->x, l->ffn_norm, (size_t)n, (size_t)hp->n_embd, hp->rms_eps);
    const bl_proj *gate_up[2] = {&l->gate, &l->up};
    float *gate_up_out[2] = {c->gate, c->up};
    int rc = project(c, c->xn, n, gate_up, gate_up_out, 2);
    if (rc != BL_OK) return rc;
    bl_gated_activation(c->gate, c->up, ff, m->arch.activation);
    if (l->ffn_sub_norm)
        bl_rmsnorm(c->gate, c->gate, l->ffn_sub_norm, (size_t)n, (size_t)hp->n_ff, hp->rms_eps);
    const bl_proj *down[1] = {&l->down};
    if ((rc = project(c, c->gate, n, down, &c->xn, 1)) != BL_OK) return rc;
    bl_add(c->x, c->xn, (size_t)n * (size_t)hp->n_embd);
    return BL_OK;
}

/* Logits of the rows asked for, each normed on its own and all through the
 * head in one product. */
static int head(bl_context *c, const bl_ubatch *b, float *logits) {
    const bl_model *m = c->model;
    const bl_hparams *hp = &m->hp;
    size_t rows = 0, embd = (size_t)hp->n_embd;
    for (int32_t t = 0; t < b->n; t++)
        if (b->want[t])
            bl_rmsnorm(c->xn + rows++ * embd, c->x + (size_t)t * embd, m->output_norm, 1, embd,
                       hp->rms_eps);
    if (rows == 0) return BL_OK;
    int rc = m->output_rotation ? rotate(m, c->xn, rows, m->output_rotation, 0) : BL_OK;
    if (rc != BL_OK) return rc;
    const bl_weight *w = &m->output;
    rc = quantize_for(c, w, c->xn, rows);
    if (rc != BL_OK) return rc;
    return bl_linear(&m->engine, &c->act, &w, &logits, 1);
}

int bl_forward_batch(bl_context *c, const bl_ubatch *b, float *logits) {
    const bl_model *m = c->model;
    const bl_hparams *hp = &m->hp;
    bl_rope_angles(c->rope_cos, c->rope_sin, b->pos, (size_t)b->n, hp->n_rot, hp->rope_theta,
                   hp->rope_factor);
    int rc = embed(m, b->tokens, b->n, c->x);
    if (rc != BL_OK) return rc;
    for (int layer = 0; layer < hp->n_layer; layer++) {
        rc = attention_block(c, layer, b);
        if (rc == BL_OK) rc = ffn_block(c, layer, b->n);
        if (rc != BL_OK) return rc;
    }
    return logits && b->want ? head(c, b, logits) : BL_OK;
}

int bl_forward(bl_context *c, const int32_t *tokens, int32_t n, int32_t pos, float *logits,
               int all_logits) {
    for (int32_t t = 0; t < n; t++) {
        c->positions[t] = pos + t;
        c->seq_ids[t] = 0;
        c->want[t] = all_logits || t == n - 1;
    }
    bl_ubatch b = {.n = n, .tokens = tokens, .pos = c->positions, .seq = c->seq_ids,
                   .want = logits ? c->want : NULL};
    return bl_forward_batch(c, &b, logits);
}
