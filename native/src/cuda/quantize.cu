/* Activation quantization on the GPU, bit for bit the CPU's (core/activations.c),
 * with the products and divisions rounded exactly as the CPU rounds them:
 *   ternary/sign inputs: s = qmax / max(max|x|, 1e-5), q = clamp(round_half_even(x * s)),
 *     one thread block per row;
 *   quant inputs: per 32-block d = max|x| / 127, q = round_half_away(x / d),
 *     one warp per block. */
#include "act_quant.cuh"
#include "block_reduce.cuh"
#include "cuda_internal.h"
#include "launch.cuh"

namespace {

constexpr int kThreads = 256;

template <typename Int, int kMax>
__global__ void __launch_bounds__(kThreads)
    bl_quantize_rows__cuda(const float *__restrict__ x, int64_t x_stride, int64_t cols,
                           int64_t cols_padded, bl_cuda_int_acts acts) {
    __shared__ float max_scratch[32];
    __shared__ int32_t sum_scratch[32];
    bl_allow_next();
    bl_wait_for_inputs();
    const float *row = x + blockIdx.x * x_stride;
    Int *q = (Int *)(acts.data + blockIdx.x * acts.stride);

    /* fmaxf skips NaN as the CPU's compare does */
    float amax = 0.0f;
    for (int64_t i = threadIdx.x; i < cols; i += kThreads) amax = fmaxf(amax, fabsf(row[i]));
    amax = block_max(amax, max_scratch);
    const float s = bitnet_scale<kMax>(amax);

    int32_t sum = 0;
    for (int64_t i = threadIdx.x; i < cols_padded; i += kThreads) {
        const int32_t v = i < cols ? bitnet_quantize<kMax>(row[i], s) : 0;
        q[i] = (Int)v;
        sum += v;
    }
    sum = block_sum(sum, sum_scratch);
    if (threadIdx.x == 0) {
        acts.sums[blockIdx.x] = sum;
        acts.scales[blockIdx.x] = s;
    }
}

constexpr int kQ8Warps = kThreads / 32;

__global__ void __launch_bounds__(kThreads)
    bl_quantize_q8__cuda(const float *__restrict__ x, int64_t x_stride, int64_t cols,
                         bl_cuda_q8_acts acts) {
    bl_allow_next();
    bl_wait_for_inputs();
    const int64_t block = (int64_t)blockIdx.x * kQ8Warps + threadIdx.x / 32;
    if (block * 32 >= cols) return;
    const int lane = threadIdx.x % 32;
    const int64_t col = block * 32 + lane, at = (int64_t)blockIdx.y * acts.blocks + block;
    const float v = col < cols ? x[blockIdx.y * x_stride + col] : 0.0f;
    float amax = fabsf(v);
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float d = __fdiv_rn(amax, 127.0f);
    const float inverse = d != 0.0f ? __fdiv_rn(1.0f, d) : 0.0f;
    const int q = (int)roundf(__fmul_rn(v, inverse));
    int sum = q;
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    acts.q[at * 32 + lane] = (int8_t)q;
    if (lane == 0) acts.d[at] = d, acts.sums[at] = sum;
}

}  // namespace

int bl_cuda_quantize_q8(const float *x, int64_t x_stride, int64_t n, int64_t cols,
                        const bl_cuda_q8_acts *acts, cudaStream_t stream) {
    const int64_t blocks = (cols + 31) / 32;
    dim3 grid((unsigned)((blocks + kQ8Warps - 1) / kQ8Warps), (unsigned)n);
    cudaError_t err = bl_cuda_launch(bl_quantize_q8__cuda, grid, dim3(kThreads), stream, n == 1, x,
                                     x_stride, cols, *acts);
    return err == cudaSuccess ? BL_OK : bl_cuda_fail(err, "quantizing activations");
}

int64_t bl_cuda_int_acts_stride(int64_t cols_padded, int bits) {
    return (cols_padded * (bits / 8) + 15) / 16 * 16;
}

int bl_cuda_quantize_acts(const float *x, int64_t x_stride, int64_t n, int64_t cols,
                          int64_t cols_padded, const bl_cuda_int_acts *acts, cudaStream_t stream) {
    auto kernel = acts->bits == 8 ? bl_quantize_rows__cuda<int8_t, 127>
                                  : bl_quantize_rows__cuda<int16_t, 32767>;
    cudaError_t err = bl_cuda_launch(kernel, dim3((unsigned)n), dim3(kThreads), stream, n == 1, x,
                                     x_stride, cols, cols_padded, *acts);
    return err == cudaSuccess ? BL_OK : bl_cuda_fail(err, "quantizing activations");
}
