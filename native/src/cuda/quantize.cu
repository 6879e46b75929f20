/* Activation quantization on the GPU, bit for bit the CPU's (core/activations.c):
 * s = qmax / max(max|x|, 1e-5) and q = clamp(round_half_even(x * s)), with the
 * products and the division rounded exactly as the CPU rounds them. One block
 * per activation row. */
#include "cuda_internal.h"

namespace {

constexpr int kThreads = 256;

__device__ float block_max(float v, float *scratch) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
    __syncthreads();
    v = 0.0f;
    for (int w = 0; w < kThreads / 32; w++) v = fmaxf(v, scratch[w]);
    __syncthreads();
    return v;
}

__device__ int32_t block_sum(int32_t v, int32_t *scratch) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
    __syncthreads();
    v = 0;
    for (int w = 0; w < kThreads / 32; w++) v += scratch[w];
    return v;
}

template <typename Int, int kMax>
__global__ void __launch_bounds__(kThreads)
    bl_quantize_rows__cuda(const float *__restrict__ x, int64_t cols, int64_t cols_padded,
                           bl_cuda_int_acts acts) {
    __shared__ float max_scratch[kThreads / 32];
    __shared__ int32_t sum_scratch[kThreads / 32];
    const float *row = x + blockIdx.x * cols;
    Int *q = (Int *)(acts.data + blockIdx.x * acts.stride);

    /* fmaxf skips NaN as the CPU's compare does */
    float amax = 0.0f;
    for (int64_t i = threadIdx.x; i < cols; i += kThreads) amax = fmaxf(amax, fabsf(row[i]));
    amax = block_max(amax, max_scratch);
    const float s = __fdiv_rn((float)kMax, fmaxf(amax, 1e-5f));

    int32_t sum = 0;
    for (int64_t i = threadIdx.x; i < cols_padded; i += kThreads) {
        int32_t v = 0;
        if (i < cols) {
            /* fmaxf turns NaN into the lower bound, as the CPU does */
            float r = fminf(fmaxf(rintf(__fmul_rn(row[i], s)), (float)(-kMax - 1)), (float)kMax);
            v = (int32_t)r;
        }
        q[i] = (Int)v;
        sum += v;
    }
    sum = block_sum(sum, sum_scratch);
    if (threadIdx.x == 0) {
        acts.sums[blockIdx.x] = sum;
        acts.scales[blockIdx.x] = s;
    }
}

}  // namespace

int64_t bl_cuda_int_acts_stride(int64_t cols_padded, int bits) {
    return (cols_padded * (bits / 8) + 15) / 16 * 16;
}

int bl_cuda_quantize_acts(const float *x, int64_t n, int64_t cols, int64_t cols_padded,
                          const bl_cuda_int_acts *acts, cudaStream_t stream) {
    if (acts->bits == 8)
        bl_quantize_rows__cuda<int8_t, 127>
            <<<(unsigned)n, kThreads, 0, stream>>>(x, cols, cols_padded, *acts);
    else
        bl_quantize_rows__cuda<int16_t, 32767>
            <<<(unsigned)n, kThreads, 0, stream>>>(x, cols, cols_padded, *acts);
    cudaError_t err = cudaGetLastError();
    return err == cudaSuccess ? BL_OK : bl_cuda_fail(err, "quantizing activations");
}
