/* q8_0 and q4_0 matrix products on the GPU, computed as the CPU computes them
 * (kernels/scalar/quant.c): activations quantized to 32-blocks of int8
 * (bl_cuda_quantize_q8), an integer dot product per block (__dp4a), and
 * y = sum over blocks of (d_w * d_x) * dot in float32.
 *
 * A warp takes R weight rows; each lane takes one 32-weight block of a row at
 * a time, and each block of activations it loads serves all R rows. Blocks
 * are 34 (q8_0) or 18 (q4_0) bytes, so only 2-byte aligned: 16-bit loads. */
#include <cuda_fp16.h>

#include "cuda_internal.h"
#include "launch.cuh"

namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kRows = 4;       /* weight rows per warp              */
constexpr int kGemmTokens = 4; /* activation rows per launch column */

template <int kHalves>
struct Block {
    uint16_t h[kHalves];

    __device__ void load(const uint8_t *row, int64_t index) {
        const uint16_t *p = (const uint16_t *)(row + index * 2 * kHalves);
#pragma unroll
        for (int i = 0; i < kHalves; i++) h[i] = __ldg(p + i);
    }
    __device__ float scale() const { return __half2float(__ushort_as_half(h[0])); }
    /* bytes 4k..4k+3 of the block's payload */
    __device__ int word(int k) const { return (int)(h[1 + 2 * k] | (uint32_t)h[2 + 2 * k] << 16); }
};

/* q8_0: f16 d, int8 q[32]. */
struct Q8_0 {
    using Raw = Block<17>;
    __device__ static int dot(const Raw &w, const int *x, int32_t) {
        int acc = 0;
#pragma unroll
        for (int k = 0; k < 8; k++) acc = __dp4a(w.word(k), x[k], acc);
        return acc;
    }
};

/* q4_0: f16 d, 16 bytes; byte j holds element j (low nibble) and j + 16 (high);
 * w = q - 8, so dot = sum(q * x) - 8 * sum(x). */
struct Q4_0 {
    using Raw = Block<9>;
    __device__ static int dot(const Raw &w, const int *x, int32_t x_sum) {
        int acc = 0;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const int packed = w.word(k);
            acc = __dp4a(packed & 0x0f0f0f0f, x[k], acc);
            acc = __dp4a((packed >> 4) & 0x0f0f0f0f, x[4 + k], acc);
        }
        return acc - 8 * x_sum;
    }
};

struct QuantArgs {
    const uint8_t *w;
    int64_t rows, blocks, row_bytes;
    bl_cuda_q8_acts x;
    int64_t n;
    float *y;
    int64_t y_stride;
};

template <class W, int TN>
__device__ void quant_rows(const QuantArgs &p) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t row0 = ((int64_t)blockIdx.x * kWarps + warp) * kRows;
    const int64_t t0 = (int64_t)blockIdx.y * TN;

    const uint8_t *wrow[kRows];
#pragma unroll
    for (int r = 0; r < kRows; r++)
        wrow[r] = p.w + (row0 + r < p.rows ? row0 + r : p.rows - 1) * p.row_bytes;
    bl_allow_next();
    bl_wait_for_inputs();
    float acc[TN][kRows] = {};
    for (int64_t b = lane; b < p.blocks; b += 32) {
        typename W::Raw raw[kRows];
#pragma unroll
        for (int r = 0; r < kRows; r++) raw[r].load(wrow[r], b);
#pragma unroll
        for (int t = 0; t < TN; t++) {
            if (t0 + t >= p.n) break;
            const int64_t xb = (t0 + t) * p.x.blocks + b;
            const uint4 *xq = (const uint4 *)(p.x.q + xb * 32);
            const uint4 lo = __ldg(xq), hi = __ldg(xq + 1);
            const int x[8] = {(int)lo.x, (int)lo.y, (int)lo.z, (int)lo.w,
                              (int)hi.x, (int)hi.y, (int)hi.z, (int)hi.w};
            const float dx = __ldg(p.x.d + xb);
            const int32_t sum = __ldg(p.x.sums + xb);
#pragma unroll
            for (int r = 0; r < kRows; r++)
                acc[t][r] += raw[r].scale() * dx * (float)W::dot(raw[r], x, sum);
        }
    }
#pragma unroll
    for (int t = 0; t < TN; t++)
#pragma unroll
        for (int r = 0; r < kRows; r++) {
            float v = acc[t][r];
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
            if (lane == t * kRows + r && row0 + r < p.rows && t0 + t < p.n)
                p.y[(t0 + t) * p.y_stride + row0 + r] = v;
        }
}

/* Named kernels: bl_<gemv|gemm>_<type>_q8_dp4a__cuda. */
#define BL_QUANT_KERNELS(type, Type)                                                          \
    __global__ void __launch_bounds__(kThreads) bl_gemv_##type##_q8_dp4a__cuda(QuantArgs p) { \
        quant_rows<Type, 1>(p);                                                               \
    }                                                                                         \
    __global__ void __launch_bounds__(kThreads) bl_gemm_##type##_q8_dp4a__cuda(QuantArgs p) { \
        quant_rows<Type, kGemmTokens>(p);                                                     \
    }

BL_QUANT_KERNELS(q8_0, Q8_0)
BL_QUANT_KERNELS(q4_0, Q4_0)

typedef void (*QuantKernel)(QuantArgs);

}  // namespace

int bl_cuda_quant_matmul(const bl_cuda_weight *w, const bl_cuda_q8_acts *x, int64_t n, float *y,
                         int64_t y_stride, cudaStream_t stream) {
    QuantKernel gemv, gemm;
    if (w->type == BL_TYPE_Q8_0) {
        gemv = bl_gemv_q8_0_q8_dp4a__cuda, gemm = bl_gemm_q8_0_q8_dp4a__cuda;
    } else if (w->type == BL_TYPE_Q4_0) {
        gemv = bl_gemv_q4_0_q8_dp4a__cuda, gemm = bl_gemm_q4_0_q8_dp4a__cuda;
    } else {
        return bl_fail(BL_ERR_UNSUPPORTED, "cuda: no quant kernel for %s",
                       bl_traits(w->type)->info.name);
    }
    const bool one_row = n == 1;
    const int64_t rows_per_block = (int64_t)kWarps * kRows;
    QuantArgs p = {w->data, w->rows, (w->cols + 31) / 32, w->row_bytes, *x, n, y, y_stride};
    dim3 grid((unsigned)((w->rows + rows_per_block - 1) / rows_per_block),
              (unsigned)(one_row ? 1 : (n + kGemmTokens - 1) / kGemmTokens));
    cudaError_t err =
        bl_cuda_launch(one_row ? gemv : gemm, grid, dim3(kThreads), stream, one_row, p);
    return err == cudaSuccess ? BL_OK : bl_cuda_fail(err, "launching a quant matrix product");
}
