/* The CUDA backend row: the model's weights, every context's KV cache and
 * scratch live on the GPU, and a forward pass is a sequence of launches on the
 * context's stream with no host round trip between layers:
 *
 *   host: positions and embedding rows -> pinned staging -> one copy in
 *   per layer: RMSNorm, q/k/v (one stacked product), RoPE into the cache,
 *              attention, [sub-norm], o, add + RMSNorm, gate/up (stacked),
 *              gated activation [+ sub-norm], down
 *   head: add + RMSNorm of the rows asked for, the head product, one copy out
 *
 * Kernels read positions from device memory, so a decode step (one token, its
 * logits wanted) is the same launches every time: the first one is captured
 * into a CUDA graph and later steps replay it after refreshing the staging. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_ops.h"
#include "device_model.h"

extern "C" {
#include "../model/context.h"
}

namespace {

constexpr int32_t kMaxBatch = 512; /* tokens per forward pass      */
constexpr int64_t kHeadRows = 64;  /* logits rows per head product */

int64_t padded_stride(int64_t cols) { return (cols + 31) / 32 * 32; }

struct CudaContext {
    cudaStream_t stream;
    int64_t embd, q_dim, kv_dim, ff;
    int64_t xn_stride, att_stride, ffn_stride, scaled_stride, qkv_cols, gate_up_cols;
    float *k_cache, *v_cache;  /* [layer][n_ctx][kv_dim]                        */
    uint8_t *staging_host;     /* pinned: positions [batch], then x [batch, embd] */
    uint8_t *staging;          /* its device mirror                              */
    int64_t positions_bytes;
    int32_t *positions_host, *positions;
    float *x_host, *x;         /* x: the residual stream                         */
    float *xn, *qkv, *att, *gate_up, *ffn, *proj, *scaled;
    bl_cuda_acts acts;         /* the current product's quantized input           */
    float *attn_partial;
    float *logits;             /* [kHeadRows, n_vocab]                            */
    float *logits_host;        /* pinned [n_vocab]: the decode graph's output     */
    cudaGraph_t graph;
    cudaGraphExec_t decode;
};

/* ---- model ---------------------------------------------------------------- */

int cuda_model_init(bl_model *m) {
    BL_TRY(bl_cuda_check_device());
    int device = 0;
    cudaDeviceProp prop;
    BL_TRY_CUDA(cudaGetDevice(&device), "choosing the GPU");
    BL_TRY_CUDA(cudaGetDeviceProperties(&prop, device), "reading the GPU's properties");
    if (m->hp.head_dim > BL_CUDA_MAX_HEAD_DIM)
        return bl_fail(BL_ERR_UNSUPPORTED, "cuda: head_dim %d is over the %d the kernels take",
                       m->hp.head_dim, BL_CUDA_MAX_HEAD_DIM);
    bl_cuda_model *d = nullptr;
    BL_TRY(bl_cuda_model_upload(m, &d));
    m->device_state = d;
    m->device_bytes = d->bytes;
    snprintf(m->device_name, sizeof m->device_name, "cuda: %.100s", prop.name);
    return BL_OK;
}

void cuda_model_release(bl_model *m) {
    bl_cuda_model_free((bl_cuda_model *)m->device_state);
    m->device_state = nullptr;
}

/* ---- context -------------------------------------------------------------- */

int alloc_floats(float **p, int64_t count, const char *what) {
    cudaError_t err = cudaMalloc(p, (size_t)count * 4);
    if (err == cudaSuccess) err = cudaMemset(*p, 0, (size_t)count * 4);
    return err == cudaSuccess ? BL_OK : bl_cuda_fail(err, what);
}

int alloc_buffers(CudaContext *d, const bl_model *m, int64_t batch, int64_t n_ctx) {
    const bl_hparams *hp = &m->hp;
    const bl_cuda_model *dm = (const bl_cuda_model *)m->device_state;
    const int64_t cache = (int64_t)hp->n_layer * n_ctx * d->kv_dim;
    cudaError_t err = cudaMalloc(&d->k_cache, (size_t)cache * 4);
    if (err == cudaSuccess) err = cudaMalloc(&d->v_cache, (size_t)cache * 4);
    if (err == cudaErrorMemoryAllocation)
        return bl_fail(BL_ERR_OUT_OF_MEMORY,
                       "cuda: a KV cache of %lld positions (%.1f MiB) does not fit in the GPU's "
                       "free memory",
                       (long long)n_ctx, 2.0 * cache * 4 / 1048576.0);
    if (err != cudaSuccess) return bl_cuda_fail(err, "allocating the KV cache");

    d->positions_bytes = (batch * 4 + 255) / 256 * 256;
    const int64_t staging_bytes = d->positions_bytes + batch * d->embd * 4;
    const char *pinned = "allocating pinned memory";
    BL_TRY_CUDA(cudaMallocHost(&d->staging_host, (size_t)staging_bytes), pinned);
    BL_TRY_CUDA(cudaMalloc(&d->staging, (size_t)staging_bytes), "allocating the staging buffer");
    d->positions_host = (int32_t *)d->staging_host;
    d->x_host = (float *)(d->staging_host + d->positions_bytes);
    d->positions = (int32_t *)d->staging;
    d->x = (float *)(d->staging + d->positions_bytes);

    const char *scratch = "allocating the GPU scratch";
    BL_TRY(alloc_floats(&d->xn, batch * d->xn_stride, scratch));
    BL_TRY(alloc_floats(&d->qkv, batch * d->qkv_cols, scratch));
    BL_TRY(alloc_floats(&d->att, batch * d->att_stride, scratch));
    BL_TRY(alloc_floats(&d->gate_up, batch * d->gate_up_cols, scratch));
    BL_TRY(alloc_floats(&d->ffn, batch * d->ffn_stride, scratch));
    BL_TRY(alloc_floats(&d->proj, batch * d->embd, scratch));
    if (m->arch.scaled_projections)
        BL_TRY(alloc_floats(&d->scaled, batch * d->scaled_stride, scratch));
    const int64_t partial = bl_cuda_attention_partial_floats(hp->head_dim);
    BL_TRY(alloc_floats(&d->attn_partial, partial, scratch));
    BL_TRY(alloc_floats(&d->logits, kHeadRows * hp->n_vocab, scratch));
    BL_TRY_CUDA(cudaMallocHost(&d->logits_host, (size_t)hp->n_vocab * 4), pinned);

    const int64_t widest = d->embd > d->q_dim ? (d->embd > d->ff ? d->embd : d->ff)
                                              : (d->q_dim > d->ff ? d->q_dim : d->ff);
    return bl_cuda_acts_alloc(&d->acts, batch, widest, dm->act_bits);
}

int cuda_context_init(bl_context *c) {
    const bl_hparams *hp = &c->model->hp;
    const bl_cuda_model *dm = (const bl_cuda_model *)c->model->device_state;
    CudaContext *d = (CudaContext *)calloc(1, sizeof *d);
    if (!d) return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory");
    c->device_state = d;
    d->embd = hp->n_embd;
    d->q_dim = (int64_t)hp->n_head * hp->head_dim;
    d->kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    d->ff = hp->n_ff;
    d->xn_stride = padded_stride(d->embd);
    d->att_stride = padded_stride(d->q_dim);
    d->ffn_stride = padded_stride(d->ff);
    int64_t widest = d->xn_stride > d->att_stride ? d->xn_stride : d->att_stride;
    d->scaled_stride = widest > d->ffn_stride ? widest : d->ffn_stride;
    d->qkv_cols = dm->layers[0].qkv.out_cols;
    d->gate_up_cols = dm->layers[0].gate_up.out_cols;
    BL_TRY_CUDA(cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking), "creating a stream");
    return alloc_buffers(d, c->model, c->batch, c->n_ctx);
}

void cuda_context_release(bl_context *c) {
    CudaContext *d = (CudaContext *)c->device_state;
    if (!d) return;
    if (d->stream) cudaStreamSynchronize(d->stream);
    if (d->decode) cudaGraphExecDestroy(d->decode);
    if (d->graph) cudaGraphDestroy(d->graph);
    float *buffers[] = {d->k_cache, d->v_cache, d->xn,  d->qkv,          d->att,    d->gate_up,
                        d->ffn,     d->proj,    d->scaled, d->attn_partial, d->logits};
    for (float *b : buffers) cudaFree(b);
    cudaFree(d->staging);
    bl_cuda_acts_free(&d->acts);
    cudaFreeHost(d->staging_host);
    cudaFreeHost(d->logits_host);
    if (d->stream) cudaStreamDestroy(d->stream);
    free(d);
    c->device_state = nullptr;
}

/* ---- forward -------------------------------------------------------------- */

/* Whether g's input can be quantized by the row op that makes it: one product
 * of a ternary/sign type without an input scale. */
bool quantized_by_row_op(const bl_cuda_proj_group *g) {
    const bl_kind kind = bl_traits(g->p[0].w.type)->info.kind;
    return g->count == 1 && !g->p[0].in_scale &&
           (kind == BL_KIND_TERNARY || kind == BL_KIND_SIGN);
}

/* A row op's output [n, stride] in out, feeding g: quantized on the way when
 * g allows it. */
bl_cuda_row_output row_output_for(CudaContext *d, const bl_cuda_proj_group *g, float *out,
                                  int64_t stride) {
    if (!quantized_by_row_op(g)) return {out, stride, nullptr, 0};
    const bl_cuda_weight *w = &g->p[0].w;
    return {out, stride, &d->acts.ints, bl_padded_cols(bl_traits(w->type), w->cols)};
}

/* out [n, out_stride] = every product of g applied to x [n, x_stride], which
 * row_output_for(g) made. */
int project(CudaContext *d, const bl_model *m, const bl_cuda_proj_group *g, const float *x,
            int64_t x_stride, int64_t n, float *out, int64_t out_stride) {
    const bool prepared = quantized_by_row_op(g);
    for (int i = 0; i < g->count; i++) {
        const bl_cuda_proj *p = &g->p[i];
        const float *in = x;
        int64_t in_stride = x_stride;
        if (p->in_scale) {
            BL_TRY(bl_cuda_scale_columns(d->scaled, d->scaled_stride, x, x_stride, p->in_scale, n,
                                         p->w.cols, d->stream));
            in = d->scaled, in_stride = d->scaled_stride;
        }
        float *y = out + p->out_col;
        if (!prepared) BL_TRY(bl_cuda_linear_prepare(&p->w, in, in_stride, n, &d->acts, d->stream));
        BL_TRY(bl_cuda_linear_run(&p->w, in, in_stride, n, &d->acts, y, out_stride, d->stream));
        if (p->out_scale)
            BL_TRY(bl_cuda_scale_layernorm(y, out_stride, p->out_scale, n, p->w.rows,
                                           m->hp.post_layernorm_eps, d->stream));
    }
    return BL_OK;
}

int attention_block(CudaContext *d, const bl_model *m, int layer, int64_t n, int n_ctx) {
    const bl_hparams *hp = &m->hp;
    const bl_cuda_model *dm = (const bl_cuda_model *)m->device_state;
    const bl_cuda_layer *l = &dm->layers[layer];
    float *keys = d->k_cache + (int64_t)layer * n_ctx * d->kv_dim;
    float *values = d->v_cache + (int64_t)layer * n_ctx * d->kv_dim;
    const float *delta = layer == 0 ? nullptr : d->proj; /* the previous layer's down */

    bl_cuda_row_output normed = row_output_for(d, &l->qkv, d->xn, d->xn_stride);
    BL_TRY(bl_cuda_add_rmsnorm(d->x, d->embd, delta, d->embd, l->attn_norm, n, d->embd, hp->rms_eps,
                               &normed, d->stream));
    BL_TRY(project(d, m, &l->qkv, d->xn, d->xn_stride, n, d->qkv, d->qkv_cols));
    bl_cuda_rope_args rope = {d->qkv,         d->qkv_cols, d->positions,   dm->rope_inv_freq,
                              hp->n_head,     hp->n_head_kv, hp->head_dim, hp->n_rot,
                              m->arch.rope,   keys,        values};
    BL_TRY(bl_cuda_rope_store(&rope, n, d->stream));
    bl_cuda_attention_args att = {};
    att.q = d->qkv, att.q_stride = d->qkv_cols;
    att.k_cache = keys, att.v_cache = values, att.positions = d->positions;
    att.out = d->att, att.out_stride = d->att_stride;
    att.n_head = hp->n_head, att.n_head_kv = hp->n_head_kv, att.head_dim = hp->head_dim;
    att.scale = (float)(1.0 / sqrt((double)hp->head_dim));
    att.partial = d->attn_partial;
    bl_cuda_attention_plan(n, hp->n_head, n_ctx, &att.splits, &att.chunk);
    BL_TRY(bl_cuda_attention(&att, n, d->stream));
    if (l->attn_sub_norm) {
        bl_cuda_row_output sub = row_output_for(d, &l->o, d->att, d->att_stride);
        BL_TRY(bl_cuda_add_rmsnorm(d->att, d->att_stride, nullptr, 0, l->attn_sub_norm, n, d->q_dim,
                                   hp->rms_eps, &sub, d->stream));
    } else if (quantized_by_row_op(&l->o)) { /* no row op to quantize on the way */
        BL_TRY(bl_cuda_linear_prepare(&l->o.p[0].w, d->att, d->att_stride, n, &d->acts, d->stream));
    }
    return project(d, m, &l->o, d->att, d->att_stride, n, d->proj, d->embd);
}

int ffn_block(CudaContext *d, const bl_model *m, int layer, int64_t n) {
    const bl_hparams *hp = &m->hp;
    const bl_cuda_layer *l = &((const bl_cuda_model *)m->device_state)->layers[layer];
    bl_cuda_row_output normed = row_output_for(d, &l->gate_up, d->xn, d->xn_stride);
    BL_TRY(bl_cuda_add_rmsnorm(d->x, d->embd, d->proj, d->embd, l->ffn_norm, n, d->embd,
                               hp->rms_eps, &normed, d->stream));
    BL_TRY(project(d, m, &l->gate_up, d->xn, d->xn_stride, n, d->gate_up, d->gate_up_cols));
    bl_cuda_row_output act = row_output_for(d, &l->down, d->ffn, d->ffn_stride);
    BL_TRY(bl_cuda_gated_activation(d->gate_up, d->gate_up_cols, d->ff, m->arch.activation,
                                    l->ffn_sub_norm, hp->rms_eps, &act, n, d->stream));
    return project(d, m, &l->down, d->ffn, d->ffn_stride, n, d->proj, d->embd);
}

/* Logits of rows [n - rows, n) into dst [rows, n_vocab] on the host. */
int head(CudaContext *d, const bl_model *m, int64_t n, int64_t rows, float *dst) {
    const bl_cuda_model *dm = (const bl_cuda_model *)m->device_state;
    const int64_t vocab = m->hp.n_vocab;
    for (int64_t done = 0; done < rows; done += kHeadRows) {
        const int64_t t = n - rows + done;
        const int64_t count = rows - done < kHeadRows ? rows - done : kHeadRows;
        float *xn = d->xn + t * d->xn_stride;
        bl_cuda_row_output normed = row_output_for(d, &dm->head, xn, d->xn_stride);
        BL_TRY(bl_cuda_add_rmsnorm(d->x + t * d->embd, d->embd, d->proj + t * d->embd, d->embd,
                                   dm->output_norm, count, d->embd, m->hp.rms_eps, &normed,
                                   d->stream));
        BL_TRY(project(d, m, &dm->head, xn, d->xn_stride, count, d->logits, vocab));
        BL_TRY_CUDA(cudaMemcpyAsync(dst + done * vocab, d->logits, (size_t)(count * vocab) * 4,
                                    cudaMemcpyDeviceToHost, d->stream),
                    "copying the logits back");
    }
    return BL_OK;
}

/* Staging in, every layer, and (when dst is set) the head; all on d->stream. */
int enqueue(CudaContext *d, const bl_model *m, int64_t n, int n_ctx, float *dst, int64_t rows) {
    BL_TRY_CUDA(cudaMemcpyAsync(d->staging, d->staging_host,
                                (size_t)(d->positions_bytes + n * d->embd * 4),
                                cudaMemcpyHostToDevice, d->stream),
                "copying the tokens in");
    for (int layer = 0; layer < m->hp.n_layer; layer++) {
        BL_TRY(attention_block(d, m, layer, n, n_ctx));
        BL_TRY(ffn_block(d, m, layer, n));
    }
    return dst ? head(d, m, n, rows, dst) : BL_OK;
}

int capture_decode(CudaContext *d, const bl_model *m, int n_ctx) {
    BL_TRY_CUDA(cudaStreamBeginCapture(d->stream, cudaStreamCaptureModeThreadLocal),
                "capturing the decode step");
    int rc = enqueue(d, m, 1, n_ctx, d->logits_host, 1);
    cudaError_t ended = cudaStreamEndCapture(d->stream, &d->graph);
    if (rc == BL_OK && ended != cudaSuccess) rc = bl_cuda_fail(ended, "capturing the decode step");
    if (rc == BL_OK) {
        cudaError_t err = cudaGraphInstantiate(&d->decode, d->graph, 0);
        if (err != cudaSuccess) rc = bl_cuda_fail(err, "instantiating the decode graph");
    }
    if (rc != BL_OK && d->graph) {
        cudaGraphDestroy(d->graph);
        d->graph = nullptr;
    }
    return rc;
}

void stage_tokens(CudaContext *d, const bl_model *m, const int32_t *tokens, int32_t n,
                  int32_t pos) {
    const bl_weight *e = &m->token_embd;
    for (int32_t t = 0; t < n; t++) {
        d->positions_host[t] = pos + t;
        e->traits->dequantize_row(e->data + (size_t)tokens[t] * e->row_bytes, e->cols,
                                  d->x_host + (size_t)t * d->embd);
    }
}

int cuda_forward(bl_context *c, const int32_t *tokens, int32_t n, int32_t pos, float *logits,
                 int all_logits) {
    CudaContext *d = (CudaContext *)c->device_state;
    const bl_model *m = c->model;
    stage_tokens(d, m, tokens, n, pos);
    if (n == 1 && logits) {
        if (!d->decode) BL_TRY(capture_decode(d, m, c->n_ctx));
        BL_TRY_CUDA(cudaGraphLaunch(d->decode, d->stream), "running the decode step");
        BL_TRY_CUDA(cudaStreamSynchronize(d->stream), "running the decode step");
        memcpy(logits, d->logits_host, (size_t)m->hp.n_vocab * 4);
        return BL_OK;
    }
    BL_TRY(enqueue(d, m, n, c->n_ctx, logits, all_logits ? n : 1));
    /* the staging is rewritten by the next call: wait until it was read */
    BL_TRY_CUDA(cudaStreamSynchronize(d->stream), "running the forward pass");
    return BL_OK;
}

}  // namespace

extern "C" const bl_backend bl_backend_cuda = {
    "cuda", kMaxBatch, cuda_model_init, cuda_model_release, cuda_context_init,
    cuda_context_release, cuda_forward,
};
