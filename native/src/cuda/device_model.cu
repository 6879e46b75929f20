/* Copies a model's weights to the GPU. The layout is planned and written by
 * the same walk over the model: a first pass only counts the bytes, the second
 * copies into the single allocation that count sized. */
#include <math.h>
#include <stdlib.h>

#include "device_model.h"

namespace {

constexpr int64_t kAlign = 256;

/* Device space handed out in walk order; base is NULL while counting. */
struct Arena {
    uint8_t *base;
    int64_t used;
    int rc; /* the first copy error */
};

uint8_t *reserve(Arena &a, int64_t bytes) {
    uint8_t *at = a.base ? a.base + a.used : nullptr;
    a.used += (bytes + kAlign - 1) / kAlign * kAlign;
    return at;
}

void copy(Arena &a, uint8_t *dst, const void *src, int64_t bytes) {
    if (!a.base || a.rc != BL_OK) return;
    cudaError_t err = cudaMemcpy(dst, src, (size_t)bytes, cudaMemcpyHostToDevice);
    if (err != cudaSuccess) a.rc = bl_cuda_fail(err, "copying the weights to the GPU");
}

const float *place_floats(Arena &a, const float *src, int64_t count) {
    if (!src) return nullptr;
    uint8_t *dst = reserve(a, count * 4);
    copy(a, dst, src, count * 4);
    return (const float *)dst;
}

bool has_row_scale(const bl_weight *w) { return w->traits->info.row_scale != 0; }

/* Stacks the rows of ws into one matrix laid out as docs/FORMAT.md says: all
 * rows, then (ternary/sign) all row scales. */
bl_cuda_weight place_stacked(Arena &a, const bl_weight *const *ws, int count) {
    int64_t rows = 0;
    for (int i = 0; i < count; i++) rows += ws[i]->rows;
    const bl_weight *first = ws[0];
    const int64_t row_bytes = (int64_t)first->row_bytes;
    const bool scaled = has_row_scale(first);
    uint8_t *dst = reserve(a, rows * row_bytes + (scaled ? rows * 4 : 0));
    bl_cuda_weight w = {first->type, dst, rows, first->cols, row_bytes, nullptr};
    if (scaled && dst) w.row_scale = (const float *)(dst + rows * row_bytes);
    int64_t row = 0;
    for (int i = 0; i < count; i++) {
        copy(a, dst + row * row_bytes, ws[i]->data, ws[i]->rows * row_bytes);
        if (scaled)
            copy(a, dst + rows * row_bytes + row * 4, ws[i]->row_scale, ws[i]->rows * 4);
        row += ws[i]->rows;
    }
    return w;
}

/* Projections without OneBit scales and of one type become one matrix. */
bool stackable(const bl_proj *const *ps, int count) {
    for (int i = 0; i < count; i++)
        if (ps[i]->in_scale || ps[i]->out_scale || ps[i]->w.type != ps[0]->w.type) return false;
    return true;
}

bl_cuda_proj_group place_group(Arena &a, const bl_proj *const *ps, int count) {
    bl_cuda_proj_group g = {};
    if (stackable(ps, count)) {
        const bl_weight *ws[BL_CUDA_MAX_GROUP];
        for (int i = 0; i < count; i++) ws[i] = &ps[i]->w;
        g.p[0].w = place_stacked(a, ws, count);
        g.count = 1;
        g.out_cols = g.p[0].w.rows;
        return g;
    }
    for (int i = 0; i < count; i++) {
        const bl_weight *w = &ps[i]->w;
        g.p[i].w = place_stacked(a, &w, 1);
        g.p[i].out_col = g.out_cols;
        g.p[i].in_scale = place_floats(a, ps[i]->in_scale, w->cols);
        g.p[i].out_scale = place_floats(a, ps[i]->out_scale, w->rows);
        g.out_cols += w->rows;
    }
    g.count = count;
    return g;
}

void place_layer(Arena &a, const bl_model *m, const bl_layer *l, bl_cuda_layer *out) {
    const bl_hparams *hp = &m->hp;
    out->attn_norm = place_floats(a, l->attn_norm, hp->n_embd);
    out->ffn_norm = place_floats(a, l->ffn_norm, hp->n_embd);
    out->attn_sub_norm = place_floats(a, l->attn_sub_norm, (int64_t)hp->n_head * hp->head_dim);
    out->ffn_sub_norm = place_floats(a, l->ffn_sub_norm, hp->n_ff);
    const bl_proj *qkv[3] = {&l->q, &l->k, &l->v}, *o[1] = {&l->o};
    const bl_proj *gate_up[2] = {&l->gate, &l->up}, *down[1] = {&l->down};
    out->qkv = place_group(a, qkv, 3);
    out->o = place_group(a, o, 1);
    out->gate_up = place_group(a, gate_up, 2);
    out->down = place_group(a, down, 1);
}

/* The CPU's inverse frequencies (ops/rope.c), so both turn by the same angles. */
void rope_inv_freq(const bl_hparams *hp, float *out) {
    for (int i = 0; i < hp->n_rot / 2; i++)
        out[i] = 1.0f / powf(hp->rope_theta, (float)(2 * i) / (float)hp->n_rot) / hp->rope_factor;
}

void place_model(Arena &a, const bl_model *m, const float *inv_freq, bl_cuda_model *d) {
    for (int i = 0; i < m->hp.n_layer; i++) place_layer(a, m, &m->layers[i], &d->layers[i]);
    const bl_proj head = {m->output, nullptr, nullptr};
    const bl_proj *heads[1] = {&head};
    d->head = place_group(a, heads, 1);
    d->output_norm = place_floats(a, m->output_norm, m->hp.n_embd);
    d->rope_inv_freq = (float *)place_floats(a, inv_freq, m->hp.n_rot / 2);
}

}  // namespace

int bl_cuda_model_upload(const bl_model *m, bl_cuda_model **out) {
    *out = nullptr;
    bl_cuda_model *d = (bl_cuda_model *)calloc(1, sizeof *d);
    float *inv_freq = (float *)calloc((size_t)m->hp.n_rot / 2 + 1, sizeof(float));
    if (d) d->layers = (bl_cuda_layer *)calloc((size_t)m->hp.n_layer, sizeof *d->layers);
    if (!d || !d->layers || !inv_freq) {
        free(inv_freq);
        bl_cuda_model_free(d);
        return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory");
    }
    rope_inv_freq(&m->hp, inv_freq);
    d->act_bits = m->engine.act_bits;

    Arena count = {nullptr, 0, BL_OK};
    place_model(count, m, inv_freq, d);
    cudaError_t err = cudaMalloc(&d->memory, (size_t)count.used);
    int rc = BL_OK;
    if (err != cudaSuccess) {
        rc = err == cudaErrorMemoryAllocation
                 ? bl_fail(BL_ERR_OUT_OF_MEMORY,
                           "cuda: the weights take %.1f MiB and do not fit in the GPU's free "
                           "memory",
                           count.used / 1048576.0)
                 : bl_cuda_fail(err, "allocating the weights");
    } else {
        d->bytes = count.used;
        Arena write = {d->memory, 0, BL_OK};
        place_model(write, m, inv_freq, d);
        rc = write.rc;
    }
    free(inv_freq);
    if (rc != BL_OK) {
        bl_cuda_model_free(d);
        return rc;
    }
    *out = d;
    return BL_OK;
}

void bl_cuda_model_free(bl_cuda_model *d) {
    if (!d) return;
    cudaFree(d->memory);
    free(d->layers);
    free(d);
}
