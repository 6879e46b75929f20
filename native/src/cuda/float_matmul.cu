/* Float matrix products on the GPU (f32, f16, bf16 weights: a head or any
 * layer kept in float): float32 activations, weights widened to float32,
 * float32 accumulation, so results match the CPU within rounding.
 *
 * A warp takes R weight rows; each lane takes 8 weights of a row at a time and
 * each unit of activations it loads serves all R rows. */
#include <cuda_fp16.h>

#include "cuda_internal.h"
#include "launch.cuh"

namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kRows = 4;        /* weight rows per warp                 */
constexpr int kGemmTokens = 4;  /* activation rows per launch column    */

__device__ float half_bits_to_float(uint16_t h) { return __half2float(__ushort_as_half(h)); }

/* Float types: 8 elements a unit, zeros past the row's end; 16-byte loads
 * where the row allows them. */
template <int kBytes>
__device__ void load_elements(uint32_t (&raw)[kBytes * 8 / 4], const uint8_t *row, int64_t unit,
                              int64_t cols) {
    const uint8_t *p = row + unit * 8 * kBytes;
    const int64_t first = unit * 8;
    if (first + 8 <= cols && ((uintptr_t)p & 15) == 0) {
#pragma unroll
        for (int v = 0; v < kBytes / 2; v++) {
            uint4 u = __ldg((const uint4 *)p + v);
            raw[4 * v] = u.x, raw[4 * v + 1] = u.y, raw[4 * v + 2] = u.z, raw[4 * v + 3] = u.w;
        }
        return;
    }
#pragma unroll
    for (int i = 0; i < kBytes * 8 / 4; i++) raw[i] = 0;
    for (int e = 0; e < 8 && first + e < cols; e++) {
        uint32_t v = kBytes == 4 ? __ldg((const uint32_t *)p + e) : __ldg((const uint16_t *)p + e);
        raw[e * kBytes / 4] |= v << (8 * ((e * kBytes) % 4));
    }
}

struct F32 {
    static constexpr int kCols = 8;
    struct Raw {
        uint32_t w[8];
    };
    __device__ static void load(Raw &raw, const uint8_t *row, int64_t unit, int64_t cols) {
        load_elements<4>(raw.w, row, unit, cols);
    }
    __device__ static float dot(const Raw &raw, const float *x) {
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; i++) s += __uint_as_float(raw.w[i]) * x[i];
        return s;
    }
};

/* f16 and bf16: two weights a 32-bit word, the lower half first; Widen
 * gives the float of each half. */
template <class Widen>
struct TwoByteFloat {
    static constexpr int kCols = 8;
    struct Raw {
        uint32_t w[4];
    };
    __device__ static void load(Raw &raw, const uint8_t *row, int64_t unit, int64_t cols) {
        load_elements<2>(raw.w, row, unit, cols);
    }
    __device__ static float dot(const Raw &raw, const float *x) {
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            s += Widen::low(raw.w[i]) * x[2 * i];
            s += Widen::high(raw.w[i]) * x[2 * i + 1];
        }
        return s;
    }
};

struct HalfWiden {
    __device__ static float low(uint32_t w) { return half_bits_to_float((uint16_t)(w & 0xffff)); }
    __device__ static float high(uint32_t w) { return half_bits_to_float((uint16_t)(w >> 16)); }
};

/* bf16 is the upper half of a float32. */
struct Bfloat16Widen {
    __device__ static float low(uint32_t w) { return __uint_as_float(w << 16); }
    __device__ static float high(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }
};

using F16 = TwoByteFloat<HalfWiden>;
using BF16 = TwoByteFloat<Bfloat16Widen>;

struct FloatArgs {
    const uint8_t *w;
    int64_t rows, cols, row_bytes;
    const float *x;
    int64_t x_stride, n;
    float *y;
    int64_t y_stride;
};

template <class W, int TN>
__device__ void float_rows(const FloatArgs &p) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t row0 = ((int64_t)blockIdx.x * kWarps + warp) * kRows;
    const int64_t t0 = (int64_t)blockIdx.y * TN;
    const int64_t units = (p.cols + W::kCols - 1) / W::kCols;

    const uint8_t *wrow[kRows];
#pragma unroll
    for (int r = 0; r < kRows; r++)
        wrow[r] = p.w + (row0 + r < p.rows ? row0 + r : p.rows - 1) * p.row_bytes;
    bl_allow_next();
    bl_wait_for_inputs();
    float acc[TN][kRows] = {};
    for (int64_t u = lane; u < units; u += 32) {
        typename W::Raw raw[kRows];
#pragma unroll
        for (int r = 0; r < kRows; r++) W::load(raw[r], wrow[r], u, p.cols);
#pragma unroll
        for (int t = 0; t < TN; t++) {
            if (t0 + t >= p.n) break;
            const float4 *xp = (const float4 *)(p.x + (t0 + t) * p.x_stride + u * W::kCols);
            float x[W::kCols];
#pragma unroll
            for (int v = 0; v < W::kCols / 4; v++) {
                float4 f = __ldg(xp + v);
                x[4 * v] = f.x, x[4 * v + 1] = f.y, x[4 * v + 2] = f.z, x[4 * v + 3] = f.w;
            }
#pragma unroll
            for (int r = 0; r < kRows; r++) acc[t][r] += W::dot(raw[r], x);
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

/* Named kernels: bl_<gemv|gemm>_<type>_f32_fma__cuda. */
#define BL_FLOAT_KERNELS(type, Type)                                                          \
    __global__ void __launch_bounds__(kThreads) bl_gemv_##type##_f32_fma__cuda(FloatArgs p) { \
        float_rows<Type, 1>(p);                                                               \
    }                                                                                         \
    __global__ void __launch_bounds__(kThreads) bl_gemm_##type##_f32_fma__cuda(FloatArgs p) { \
        float_rows<Type, kGemmTokens>(p);                                                     \
    }

BL_FLOAT_KERNELS(f32, F32)
BL_FLOAT_KERNELS(f16, F16)
BL_FLOAT_KERNELS(bf16, BF16)

typedef void (*FloatKernel)(FloatArgs);

struct FloatKernels {
    FloatKernel gemv, gemm;
};

FloatKernels kernels_for(bl_type_id type) {
    switch (type) {
    case BL_TYPE_F32: return {bl_gemv_f32_f32_fma__cuda, bl_gemm_f32_f32_fma__cuda};
    case BL_TYPE_F16: return {bl_gemv_f16_f32_fma__cuda, bl_gemm_f16_f32_fma__cuda};
    case BL_TYPE_BF16: return {bl_gemv_bf16_f32_fma__cuda, bl_gemm_bf16_f32_fma__cuda};
    default: return {nullptr, nullptr};
    }
}

}  // namespace

int bl_cuda_float_matmul(const bl_cuda_weight *w, const float *x, int64_t x_stride, int64_t n,
                         float *y, int64_t y_stride, cudaStream_t stream) {
    FloatKernels k = kernels_for(w->type);
    if (!k.gemv)
        return bl_fail(BL_ERR_UNSUPPORTED, "cuda: no float kernel for %s",
                       bl_traits(w->type)->info.name);
    const bool gemv = n == 1;
    const int64_t rows_per_block = (int64_t)kWarps * kRows;
    FloatArgs p = {w->data, w->rows, bl_padded_cols(bl_traits(w->type), w->cols), w->row_bytes,
                   x, x_stride, n, y, y_stride};
    dim3 grid((unsigned)((w->rows + rows_per_block - 1) / rows_per_block),
              (unsigned)(gemv ? 1 : (n + kGemmTokens - 1) / kGemmTokens));
    cudaError_t err = bl_cuda_launch(gemv ? k.gemv : k.gemm, grid, dim3(kThreads), stream, gemv, p);
    return err == cudaSuccess ? BL_OK : bl_cuda_fail(err, "launching a float matrix product");
}
