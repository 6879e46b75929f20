/* The transformer's non-matmul operations on the GPU, rounded as the CPU's
 * (ops/ops.h) wherever the order of operations allows: products and sums of
 * elementwise steps use the _rn intrinsics so that nvcc fuses nothing the CPU
 * does not. Reductions (norms, attention) sum in another order than the CPU,
 * so they agree within float32 rounding. Rows are [n, cols] with a stride;
 * each launcher enqueues on `stream` and returns BL_OK or the launch error. */
#ifndef BL_CUDA_OPS_H
#define BL_CUDA_OPS_H

#include "cuda_internal.h"

extern "C" {
#include "../ops/ops.h"
}

/* Where a row op writes: out [n, out_stride] and, when quantize is not NULL,
 * also BitNet's quantization of each row (padded with zeros to cols_padded)
 * into *quantize: the input of the ternary/sign product that follows, without
 * a quantization launch of its own. */
typedef struct bl_cuda_row_output {
    float *out;
    int64_t out_stride;
    const bl_cuda_int_acts *quantize;
    int64_t cols_padded;
} bl_cuda_row_output;

/* x[t] += delta[t] when delta is not NULL, then out[t] = RMSNorm(x[t]) * weight
 * (out may be x). */
int bl_cuda_add_rmsnorm(float *x, int64_t x_stride, const float *delta, int64_t delta_stride,
                        const float *weight, int64_t n, int64_t cols, float eps,
                        const bl_cuda_row_output *out, cudaStream_t stream);

/* out[t] = act(gate[t]) * up[t], then RMSNorm(out[t]) * sub_norm when sub_norm
 * is not NULL; gate is columns [0, ff) of gate_up's rows, up is [ff, 2 ff). */
int bl_cuda_gated_activation(const float *gate_up, int64_t gate_up_stride, int64_t ff,
                             bl_ffn_activation act, const float *sub_norm, float eps,
                             const bl_cuda_row_output *out, int64_t n, cudaStream_t stream);

/* out[t, c] = x[t, c] * scale[c] (OneBit's input scale). */
int bl_cuda_scale_columns(float *out, int64_t out_stride, const float *x, int64_t x_stride,
                          const float *scale, int64_t n, int64_t cols, cudaStream_t stream);

/* y[t] = LayerNorm(y[t] * scale) without parameters (OneBit's output side). */
int bl_cuda_scale_layernorm(float *y, int64_t stride, const float *scale, int64_t n, int64_t cols,
                            float eps, cudaStream_t stream);

/* Rows of qkv are [q heads | k heads | v heads]. RoPE turns the q heads in
 * place and the k heads on their way into the cache; v is copied there. Row t
 * sits at positions[t] (device memory, so a captured graph serves any step);
 * inv_freq [n_rot / 2] are the CPU's float inverse frequencies. */
typedef struct bl_cuda_rope_args {
    float *qkv;
    int64_t qkv_stride;
    const int32_t *positions;
    const float *inv_freq;
    int n_head, n_head_kv, head_dim, n_rot;
    bl_rope_style style;
    float *k_cache, *v_cache; /* this layer's [n_ctx, n_head_kv * head_dim] */
} bl_cuda_rope_args;

int bl_cuda_rope_store(const bl_cuda_rope_args *a, int64_t n, cudaStream_t stream);

/* Causal attention of query rows over the cache: row t at positions[t] sees
 * cached positions [0, positions[t]]. The positions are split into `splits`
 * chunks of `chunk` (split-K, so one query row still fills the GPU); partial
 * results meet in `partial` and a second kernel merges them. */
typedef struct bl_cuda_attention_args {
    const float *q; /* [n, q_stride]: heads at q + h * head_dim      */
    int64_t q_stride;
    const float *k_cache, *v_cache;
    const int32_t *positions;
    float *out; /* [n, out_stride]                                   */
    int64_t out_stride;
    int n_head, n_head_kv, head_dim;
    float scale;
    int splits, chunk;
    float *partial; /* [n, n_head, splits, head_dim + 2] when splits > 1 */
} bl_cuda_attention_args;

/* Largest head_dim the attention kernels take. */
#define BL_CUDA_MAX_HEAD_DIM 256

/* splits and chunk for n query rows over a cache of n_ctx positions, and the
 * floats `partial` needs for any n (so a context allocates it once). */
void bl_cuda_attention_plan(int64_t n, int n_head, int n_ctx, int *splits, int *chunk);
int64_t bl_cuda_attention_partial_floats(int head_dim);

int bl_cuda_attention(const bl_cuda_attention_args *a, int64_t n, cudaStream_t stream);

#endif
