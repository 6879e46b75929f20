/* Norms, the gated activation, OneBit's scales and RoPE on the GPU: one block
 * per token row (a row is a few thousand floats: one block streams it and
 * reduces it without a second launch). */
#include <type_traits>

#include "act_quant.cuh"
#include "block_reduce.cuh"
#include "cuda_ops.h"
#include "launch.cuh"

namespace {

constexpr int kThreads = 256;

int launched(cudaError_t err, const char *what) {
    return err == cudaSuccess ? BL_OK : bl_cuda_fail(err, what);
}

/* A row op's destination as the kernels take it (acts.data NULL: no quantization). */
struct RowOutput {
    float *out;
    int64_t out_stride;
    bl_cuda_int_acts acts;
    int64_t cols_padded;
};

/* The first thing every kernel here does: it reads its predecessor's output. */
__device__ void start_after_inputs() {
    bl_allow_next();
    bl_wait_for_inputs();
}

/* 1 / sqrt(mean + eps), rounded as the CPU's 1.0f / sqrtf(...) */
__device__ float inverse_root(float sum, int64_t cols, float eps) {
    return __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fdiv_rn(sum, (float)cols), eps)));
}

/* RMSNorm and the gated activation hold their row in registers: thread i
 * holds columns i + k * kRowThreads, k < kPer, so a row is read once and the
 * norm, and the quantization of the result, need no second pass over memory. */
constexpr int kRowThreads = 512; /* short block reductions, rows in flight at once */
constexpr int kMaxPer = 64;      /* rows up to 32768 columns */

__device__ int64_t held_col(int k) { return threadIdx.x + (int64_t)k * kRowThreads; }

template <typename Int, int kMax, int kPer>
__device__ void quantize_held(const float (&v)[kPer], int64_t cols, const RowOutput &o,
                              float *max_scratch, int32_t *sum_scratch) {
    float amax = 0.0f;
#pragma unroll
    for (int k = 0; k < kPer; k++)
        if (held_col(k) < cols) amax = fmaxf(amax, fabsf(v[k]));
    const float s = bitnet_scale<kMax>(block_max(amax, max_scratch));
    Int *q = (Int *)(o.acts.data + blockIdx.x * o.acts.stride);
    int32_t sum = 0;
#pragma unroll
    for (int k = 0; k < kPer; k++)
        if (held_col(k) < cols) {
            const int32_t value = bitnet_quantize<kMax>(v[k], s);
            q[held_col(k)] = (Int)value;
            sum += value;
        }
    for (int64_t c = cols + threadIdx.x; c < o.cols_padded; c += kRowThreads) q[c] = 0;
    sum = block_sum(sum, sum_scratch);
    if (threadIdx.x == 0) o.acts.sums[blockIdx.x] = sum, o.acts.scales[blockIdx.x] = s;
}

/* Row blockIdx.x's finished values into o.out and, when asked, o.acts. */
template <int kPer>
__device__ void write_held(const float (&v)[kPer], int64_t cols, const RowOutput &o) {
    __shared__ float max_scratch[32];
    __shared__ int32_t sum_scratch[32];
    float *out = o.out + blockIdx.x * o.out_stride;
#pragma unroll
    for (int k = 0; k < kPer; k++)
        if (held_col(k) < cols) out[held_col(k)] = v[k];
    if (!o.acts.data) return;
    if (o.acts.bits == 8) quantize_held<int8_t, 127>(v, cols, o, max_scratch, sum_scratch);
    else quantize_held<int16_t, 32767>(v, cols, o, max_scratch, sum_scratch);
}

/* v = RMSNorm(v) * weight over the held row, whose squares sum to `squares` per thread. */
template <int kPer>
__device__ void rmsnorm_held(float (&v)[kPer], float squares, const float *weight, int64_t cols,
                             float eps, float *scratch) {
    const float inv = inverse_root(block_sum(squares, scratch), cols, eps);
#pragma unroll
    for (int k = 0; k < kPer; k++)
        if (held_col(k) < cols) v[k] = __fmul_rn(__fmul_rn(v[k], inv), weight[held_col(k)]);
}

template <int kPer>
__global__ void __launch_bounds__(kRowThreads)
    bl_add_rmsnorm__cuda(float *x, int64_t x_stride, const float *delta, int64_t delta_stride,
                         const float *weight, int64_t cols, float eps, RowOutput o) {
    start_after_inputs();
    __shared__ float scratch[32];
    float *xr = x + blockIdx.x * x_stride;
    float v[kPer], squares = 0.0f;
#pragma unroll
    for (int k = 0; k < kPer; k++) {
        const int64_t c = held_col(k);
        v[k] = 0.0f;
        if (c >= cols) continue;
        v[k] = xr[c];
        if (delta) {
            v[k] = __fadd_rn(v[k], delta[blockIdx.x * delta_stride + c]);
            xr[c] = v[k];
        }
        squares = __fmaf_rn(v[k], v[k], squares);
    }
    rmsnorm_held(v, squares, weight, cols, eps, scratch);
    write_held(v, cols, o);
}

template <bl_ffn_activation kAct>
__device__ float gated(float gate, float up) {
    if (kAct == BL_FFN_SILU) return __fmul_rn(__fdiv_rn(gate, __fadd_rn(1.0f, expf(-gate))), up);
    const float r = __fmul_rn(__fadd_rn(gate, fabsf(gate)), 0.5f); /* relu */
    return __fmul_rn(__fmul_rn(r, r), up);
}

template <bl_ffn_activation kAct, int kPer>
__global__ void __launch_bounds__(kRowThreads)
    bl_gated_activation__cuda(const float *gate_up, int64_t gate_up_stride, int64_t ff,
                              const float *sub_norm, float eps, RowOutput o) {
    start_after_inputs();
    __shared__ float scratch[32];
    const float *gate = gate_up + blockIdx.x * gate_up_stride, *up = gate + ff;
    float v[kPer], squares = 0.0f;
#pragma unroll
    for (int k = 0; k < kPer; k++) {
        const int64_t c = held_col(k);
        v[k] = c < ff ? gated<kAct>(gate[c], up[c]) : 0.0f;
        squares = __fmaf_rn(v[k], v[k], squares);
    }
    if (sub_norm) rmsnorm_held(v, squares, sub_norm, ff, eps, scratch);
    write_held(v, ff, o);
}

/* The kernel instance whose rows hold `cols` columns: pick(kPer) for kPer = 1,
 * 2, 4, ... 64, or NULL for wider rows. */
template <class Pick>
auto held_kernel_for(int64_t cols, Pick pick) -> decltype(pick(std::integral_constant<int, 1>())) {
    const int64_t per = (cols + kRowThreads - 1) / kRowThreads;
    if (per <= 1) return pick(std::integral_constant<int, 1>());
    if (per <= 2) return pick(std::integral_constant<int, 2>());
    if (per <= 4) return pick(std::integral_constant<int, 4>());
    if (per <= 8) return pick(std::integral_constant<int, 8>());
    if (per <= 16) return pick(std::integral_constant<int, 16>());
    if (per <= 32) return pick(std::integral_constant<int, 32>());
    if (per <= kMaxPer) return pick(std::integral_constant<int, 64>());
    return nullptr;
}

RowOutput row_output(const bl_cuda_row_output *out) {
    RowOutput o = {out->out, out->out_stride, {}, out->cols_padded};
    if (out->quantize) o.acts = *out->quantize;
    return o;
}

int too_wide(int64_t cols) {
    return bl_fail(BL_ERR_UNSUPPORTED,
                   "cuda: rows of %lld columns are over the %d the kernels take", (long long)cols,
                   kRowThreads * kMaxPer);
}

__global__ void __launch_bounds__(kThreads)
    bl_scale_columns__cuda(float *out, int64_t out_stride, const float *x, int64_t x_stride,
                           const float *scale, int64_t cols) {
    start_after_inputs();
    for (int64_t c = threadIdx.x; c < cols; c += kThreads)
        out[blockIdx.x * out_stride + c] = __fmul_rn(x[blockIdx.x * x_stride + c], scale[c]);
}

__global__ void __launch_bounds__(kThreads)
    bl_scale_layernorm__cuda(float *y, int64_t stride, const float *scale, int64_t cols,
                             float eps) {
    start_after_inputs();
    __shared__ float scratch[32];
    float *row = y + blockIdx.x * stride;
    float sum = 0.0f;
    for (int64_t c = threadIdx.x; c < cols; c += kThreads) {
        const float v = __fmul_rn(row[c], scale[c]);
        row[c] = v;
        sum = __fadd_rn(sum, v);
    }
    const float mean = __fdiv_rn(block_sum(sum, scratch), (float)cols);
    float squares = 0.0f;
    for (int64_t c = threadIdx.x; c < cols; c += kThreads) {
        const float v = __fsub_rn(row[c], mean);
        row[c] = v;
        squares = __fmaf_rn(v, v, squares);
    }
    const float inv = inverse_root(block_sum(squares, scratch), cols, eps);
    for (int64_t c = threadIdx.x; c < cols; c += kThreads) row[c] = __fmul_rn(row[c], inv);
}

/* Turns the pair (a, b) by the angle of pair i at position pos. */
__device__ void rotate(float *a, float *b, int pos, float inv_freq) {
    const float angle = __fmul_rn((float)pos, inv_freq);
    const float c = (float)cos((double)angle), s = (float)sin((double)angle);
    const float a0 = *a, b0 = *b;
    *a = __fsub_rn(__fmul_rn(a0, c), __fmul_rn(b0, s));
    *b = __fadd_rn(__fmul_rn(b0, c), __fmul_rn(a0, s));
}

__global__ void __launch_bounds__(kThreads) bl_rope_store__cuda(bl_cuda_rope_args a) {
    start_after_inputs();
    float *q = a.qkv + blockIdx.x * a.qkv_stride;
    const int kv_dim = a.n_head_kv * a.head_dim, half = a.n_rot / 2;
    const float *k = q + a.n_head * a.head_dim, *v = k + kv_dim;
    const int pos = a.positions[blockIdx.x];
    float *k_out = a.k_cache + (int64_t)pos * kv_dim, *v_out = a.v_cache + (int64_t)pos * kv_dim;
    /* pair i of a head joins dimensions first(i) and first(i) + partner */
    const int step = a.style == BL_ROPE_NEOX ? 1 : 2;
    const int partner = a.style == BL_ROPE_NEOX ? half : 1;

    for (int i = threadIdx.x; i < a.n_head * half; i += kThreads) {
        float *head = q + (i / half) * a.head_dim;
        float *first = head + (i % half) * step;
        rotate(first, first + partner, pos, a.inv_freq[i % half]);
    }
    for (int d = threadIdx.x; d < kv_dim; d += kThreads) {
        k_out[d] = k[d];
        v_out[d] = v[d];
    }
    __syncthreads(); /* the cache row is whole before it turns */
    for (int i = threadIdx.x; i < a.n_head_kv * half; i += kThreads) {
        float *head = k_out + (i / half) * a.head_dim;
        float *first = head + (i % half) * step;
        rotate(first, first + partner, pos, a.inv_freq[i % half]);
    }
}

}  // namespace

int bl_cuda_add_rmsnorm(float *x, int64_t x_stride, const float *delta, int64_t delta_stride,
                        const float *weight, int64_t n, int64_t cols, float eps,
                        const bl_cuda_row_output *out, cudaStream_t stream) {
    auto kernel = held_kernel_for(cols, [](auto per) { return bl_add_rmsnorm__cuda<per.value>; });
    if (!kernel) return too_wide(cols);
    return launched(bl_cuda_launch(kernel, dim3((unsigned)n), dim3(kRowThreads), stream, n == 1, x,
                                   x_stride, delta, delta_stride, weight, cols, eps,
                                   row_output(out)),
                    "launching an RMSNorm");
}

int bl_cuda_gated_activation(const float *gate_up, int64_t gate_up_stride, int64_t ff,
                             bl_ffn_activation act, const float *sub_norm, float eps,
                             const bl_cuda_row_output *out, int64_t n, cudaStream_t stream) {
    auto silu = [](auto per) { return bl_gated_activation__cuda<BL_FFN_SILU, per.value>; };
    auto relu2 = [](auto per) { return bl_gated_activation__cuda<BL_FFN_RELU2, per.value>; };
    auto kernel = act == BL_FFN_SILU ? held_kernel_for(ff, silu) : held_kernel_for(ff, relu2);
    if (!kernel) return too_wide(ff);
    return launched(bl_cuda_launch(kernel, dim3((unsigned)n), dim3(kRowThreads), stream, n == 1,
                                   gate_up, gate_up_stride, ff, sub_norm, eps, row_output(out)),
                    "launching the gated activation");
}

int bl_cuda_scale_columns(float *out, int64_t out_stride, const float *x, int64_t x_stride,
                          const float *scale, int64_t n, int64_t cols, cudaStream_t stream) {
    return launched(bl_cuda_launch(bl_scale_columns__cuda, dim3((unsigned)n), dim3(kThreads),
                                   stream, n == 1, out, out_stride, x, x_stride, scale, cols),
                    "launching a column scale");
}

int bl_cuda_scale_layernorm(float *y, int64_t stride, const float *scale, int64_t n, int64_t cols,
                            float eps, cudaStream_t stream) {
    return launched(bl_cuda_launch(bl_scale_layernorm__cuda, dim3((unsigned)n), dim3(kThreads),
                                   stream, n == 1, y, stride, scale, cols, eps),
                    "launching a LayerNorm");
}

int bl_cuda_rope_store(const bl_cuda_rope_args *a, int64_t n, cudaStream_t stream) {
    return launched(bl_cuda_launch(bl_rope_store__cuda, dim3((unsigned)n), dim3(kThreads), stream,
                                   n == 1, *a),
                    "launching RoPE");
}
