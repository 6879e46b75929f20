/* Sums and maxima over a thread block (any blockDim.x that is a multiple of
 * 32, at most 1024): every thread gets the result. scratch holds 32 values;
 * a block may reuse it for the next reduction. */
#ifndef BL_CUDA_BLOCK_REDUCE_CUH
#define BL_CUDA_BLOCK_REDUCE_CUH

struct SumOp {
    template <class T>
    __device__ static T apply(T a, T b) { return a + b; }
};

/* fmaxf skips NaN as the CPU's compare does */
struct MaxOp {
    __device__ static float apply(float a, float b) { return fmaxf(a, b); }
};

template <class Op, class T>
__device__ T block_reduce(T v, T *scratch) {
    for (int o = 16; o > 0; o >>= 1) v = Op::apply(v, __shfl_xor_sync(0xffffffffu, v, o));
    const int warps = blockDim.x / 32;
    __syncthreads(); /* the previous reduction's readers are done with scratch */
    if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
    __syncthreads();
    v = scratch[0];
    for (int w = 1; w < warps; w++) v = Op::apply(v, scratch[w]);
    return v;
}

template <class T>
__device__ T block_sum(T v, T *scratch) { return block_reduce<SumOp>(v, scratch); }

__device__ inline float block_max(float v, float *scratch) {
    return block_reduce<MaxOp>(v, scratch);
}

#endif
