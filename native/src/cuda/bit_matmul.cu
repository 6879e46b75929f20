/* Ternary and sign matrix products on the GPU with exact integer dot products:
 * y = (float)dot * row_scale / s, rounded step by step as the CPU rounds it.
 *
 * Decode (one activation row) is bound by the weights' bytes, so a warp streams
 * 16-byte chunks of R weight rows, one chunk per lane, and each activation load
 * serves all R rows. Short grids split a row's chunks over up to four warps.
 * Prompt processing runs the same loop over a tile of tokens per launch column,
 * so every decoded weight chunk serves the whole tile.
 *
 * Each weight type turns a 16-byte chunk into 4-column groups of int8 codes for
 * __dp4a (int16 activations: __dp2a_lo/hi), and names the activation columns
 * the chunk meets:
 *   bt2  codes c = trit + 1 (2 bits); dot = sum(c * q) - sum(q)
 *   bt1  base-3 digits c = trit + 1 (5 per byte); dot = sum(c * q) - sum(q)
 *   bs1  bits b (1 = -1); dot = sum(q) - 2 * sum(b * q) */
#include "cuda_internal.h"
#include "launch.cuh"

namespace {

constexpr int kThreads = 128; /* 4 warps */
constexpr int kWarps = kThreads / 32;
constexpr int kGemvRows = 4;   /* weight rows per warp, one activation row   */
constexpr int kGemmRows = 4;   /* weight rows per warp, prompt processing    */
constexpr int kGemmTokens = 8; /* activation rows per launch column          */

/* Activations: 32-bit words per 4 columns and the 4-column dot product. */
struct ActI8 {
    static constexpr int kWordsPer4 = 1;
    __device__ static int dot4(uint32_t codes, const uint32_t *a, int acc) {
        return __dp4a((int)codes, (int)a[0], acc);
    }
};

struct ActI16 {
    static constexpr int kWordsPer4 = 2;
    __device__ static int dot4(uint32_t codes, const uint32_t *a, int acc) {
        acc = __dp2a_lo((int)a[0], (int)codes, acc);
        return __dp2a_hi((int)a[1], (int)codes, acc);
    }
};

/* A chunk meets kGroups groups of 16 consecutive columns; group_col gives the
 * first column of group g. Activation words arrive group after group. */

/* bt2: chunk = bytes j0..j0+15 of a 64-byte block; bits 2k+1:2k of byte j are
 * column j + 64k of the block, so group k is columns j0 + 64k + 0..15. */
struct Bt2 {
    static constexpr int kGroups = 4;
    __device__ static int64_t group_col(int64_t chunk, int g) {
        return (chunk >> 2) * 256 + 64 * g + (chunk & 3) * 16;
    }
    template <class Act>
    __device__ static int dot(uint4 w, const uint32_t *a, int acc) {
        const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int k = 0; k < 4; k++)
#pragma unroll
            for (int i = 0; i < 4; i++)
                acc = Act::dot4((words[i] >> (2 * k)) & 0x03030303u,
                                a + (k * 4 + i) * Act::kWordsPer4, acc);
        return acc;
    }
    __device__ static int finish(int acc, int sum) { return acc - sum; }
};

/* bt1: chunk = bytes j0..j0+15 of a 64-byte block of 320 columns; digit k of
 * byte j is column j + 64k. Digit k = (((byte * 3^k) mod 256) * 3) >> 8: the
 * bytes are spread over 16-bit lanes (even and odd bytes), multiplied by 3 per
 * digit, the digit read from each lane's high byte and the low byte kept. */
struct Bt1 {
    static constexpr int kGroups = 5;
    __device__ static int64_t group_col(int64_t chunk, int g) {
        return (chunk >> 2) * 320 + 64 * g + (chunk & 3) * 16;
    }
    template <class Act>
    __device__ static int dot(uint4 w, const uint32_t *a, int acc) {
        const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            uint32_t even = words[i] & 0x00ff00ffu, odd = (words[i] >> 8) & 0x00ff00ffu;
#pragma unroll
            for (int k = 0; k < 5; k++) {
                even *= 3;
                odd *= 3;
                /* high bytes of the lanes, in byte order: e.b1, o.b1, e.b3, o.b3 */
                uint32_t codes = __byte_perm(even, odd, 0x7351);
                even &= 0x00ff00ffu;
                odd &= 0x00ff00ffu;
                acc = Act::dot4(codes, a + (k * 4 + i) * Act::kWordsPer4, acc);
            }
        }
        return acc;
    }
    __device__ static int finish(int acc, int sum) { return acc - sum; }
};

/* bs1: chunk = 128 consecutive columns; bit p of word i is column 32i + p.
 * A nibble spreads to one 0/1 byte per column by a multiply that moves bit i
 * to bit 8i (the shifted copies never overlap, so nothing carries). */
struct Bs1 {
    static constexpr int kGroups = 8;
    __device__ static int64_t group_col(int64_t chunk, int g) { return chunk * 128 + 16 * g; }
    template <class Act>
    __device__ static int dot(uint4 w, const uint32_t *a, int acc) {
        const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int n = 0; n < 8; n++) {
                uint32_t bits = ((words[i] >> (4 * n)) & 0xfu) * 0x00204081u & 0x01010101u;
                acc = Act::dot4(bits, a + (i * 8 + n) * Act::kWordsPer4, acc);
            }
        return acc;
    }
    __device__ static int finish(int acc, int sum) { return sum - 2 * acc; }
};

struct BitArgs {
    const uint8_t *w;
    int64_t rows, row_bytes;
    const float *row_scale;
    const uint8_t *act;
    int64_t act_stride;
    const int32_t *sums;
    const float *scales;
    int64_t n;
    float *y;
    int64_t y_stride;
    int split; /* warps that share one group of rows: 1, 2 or 4 */
};

/* Weights are read once: keep them out of L1, which holds the activations. */
__device__ uint4 load_streaming(const uint4 *p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

template <class W, class Act, int R, int TN>
__device__ void bit_rows(const BitArgs &p) {
    constexpr int kActWords = W::kGroups * 4 * Act::kWordsPer4;
    constexpr int kBytesPerCol = Act::kWordsPer4;
    __shared__ int partial[kWarps][TN][R];

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int part = warp % p.split;
    const int64_t row0 = ((int64_t)blockIdx.x * (kWarps / p.split) + warp / p.split) * R;
    const int64_t t0 = (int64_t)blockIdx.y * TN;
    const int64_t chunks = p.row_bytes / 16;

    const uint4 *wrow[R];
#pragma unroll
    for (int r = 0; r < R; r++) {
        int64_t row = row0 + r < p.rows ? row0 + r : p.rows - 1;
        wrow[r] = (const uint4 *)(p.w + row * p.row_bytes);
    }
    /* Weights run one chunk ahead of the arithmetic; the first chunk is in
     * flight before the wait for the activations (launch.cuh). */
    const int64_t step = p.split * 32;
    int64_t c = part * 32 + lane;
    uint4 wv[R];
    if (c < chunks)
#pragma unroll
        for (int r = 0; r < R; r++) wv[r] = load_streaming(wrow[r] + c);
    bl_allow_next();
    bl_wait_for_inputs();
    int acc[TN][R] = {};
    for (; c < chunks; c += step) {
        uint4 next[R];
        const bool more = c + step < chunks;
        if (more)
#pragma unroll
            for (int r = 0; r < R; r++) next[r] = load_streaming(wrow[r] + c + step);
#pragma unroll
        for (int t = 0; t < TN; t++) {
            if (t0 + t >= p.n) break;
            const uint8_t *arow = p.act + (t0 + t) * p.act_stride;
            uint32_t a[kActWords];
#pragma unroll
            for (int g = 0; g < W::kGroups; g++)
#pragma unroll
                for (int v = 0; v < Act::kWordsPer4; v++) {
                    uint4 u = __ldg((const uint4 *)(arow + W::group_col(c, g) * kBytesPerCol) + v);
                    uint32_t *dst = a + (g * 4 * Act::kWordsPer4 + 4 * v);
                    dst[0] = u.x, dst[1] = u.y, dst[2] = u.z, dst[3] = u.w;
                }
#pragma unroll
            for (int r = 0; r < R; r++) acc[t][r] = W::template dot<Act>(wv[r], a, acc[t][r]);
        }
        if (more)
#pragma unroll
            for (int r = 0; r < R; r++) wv[r] = next[r];
    }

#pragma unroll
    for (int t = 0; t < TN; t++)
#pragma unroll
        for (int r = 0; r < R; r++) {
            int v = acc[t][r];
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
            if (lane == 0) partial[warp][t][r] = v;
        }
    __syncthreads();
    if (part != 0) return;
    for (int i = lane; i < TN * R; i += 32) {
        const int t = i / R, r = i % R;
        const int64_t row = row0 + r, token = t0 + t;
        if (row >= p.rows || token >= p.n) continue;
        int sum = 0;
        for (int k = 0; k < p.split; k++) sum += partial[warp + k][t][r];
        const int dot = W::finish(sum, p.sums[token]);
        p.y[token * p.y_stride + row] =
            __fdiv_rn(__fmul_rn(__int2float_rn(dot), p.row_scale[row]), p.scales[token]);
    }
}

/* Named kernels: bl_<gemv|gemm>_<type>_<act>_dp4a__cuda. */
#define BL_BIT_KERNELS(type, Type, act, Act)                                                   \
    __global__ void __launch_bounds__(kThreads) bl_gemv_##type##_##act##_dp4a__cuda(BitArgs p) { \
        bit_rows<Type, Act, kGemvRows, 1>(p);                                                  \
    }                                                                                          \
    __global__ void __launch_bounds__(kThreads) bl_gemm_##type##_##act##_dp4a__cuda(BitArgs p) { \
        bit_rows<Type, Act, kGemmRows, kGemmTokens>(p);                                        \
    }

BL_BIT_KERNELS(bt2, Bt2, i8, ActI8)
BL_BIT_KERNELS(bt2, Bt2, i16, ActI16)
BL_BIT_KERNELS(bt1, Bt1, i8, ActI8)
BL_BIT_KERNELS(bt1, Bt1, i16, ActI16)
BL_BIT_KERNELS(bs1, Bs1, i8, ActI8)
BL_BIT_KERNELS(bs1, Bs1, i16, ActI16)

typedef void (*BitKernel)(BitArgs);

struct BitKernels {
    BitKernel gemv, gemm;
};

BitKernels kernels_for(bl_type_id type, int bits) {
    switch (type) {
    case BL_TYPE_BT2:
        return bits == 8 ? BitKernels{bl_gemv_bt2_i8_dp4a__cuda, bl_gemm_bt2_i8_dp4a__cuda}
                         : BitKernels{bl_gemv_bt2_i16_dp4a__cuda, bl_gemm_bt2_i16_dp4a__cuda};
    case BL_TYPE_BT1:
        return bits == 8 ? BitKernels{bl_gemv_bt1_i8_dp4a__cuda, bl_gemm_bt1_i8_dp4a__cuda}
                         : BitKernels{bl_gemv_bt1_i16_dp4a__cuda, bl_gemm_bt1_i16_dp4a__cuda};
    case BL_TYPE_BS1:
        return bits == 8 ? BitKernels{bl_gemv_bs1_i8_dp4a__cuda, bl_gemm_bs1_i8_dp4a__cuda}
                         : BitKernels{bl_gemv_bs1_i16_dp4a__cuda, bl_gemm_bs1_i16_dp4a__cuda};
    default: return BitKernels{nullptr, nullptr};
    }
}

/* Warps per row group: enough warps in flight to keep the memory busy, but no
 * more than the row's chunks can feed. groups counts the launch's row groups
 * over all its token tiles (a prompt's grid is already wide: split stays 1). */
int choose_split(int64_t groups, int64_t chunks, int sm_count) {
    const int64_t wanted_warps = (int64_t)sm_count * 16;
    int split = 1;
    while (split < kWarps && groups * split < wanted_warps && chunks > split * 32) split *= 2;
    return split;
}

}  // namespace

int bl_cuda_bit_matmul(const bl_cuda_weight *w, const bl_cuda_int_acts *acts, int64_t n,
                       float *y, int64_t y_stride, cudaStream_t stream) {
    BitKernels k = kernels_for(w->type, acts->bits);
    if (!k.gemv)
        return bl_fail(BL_ERR_UNSUPPORTED, "cuda: no integer kernel for %s",
                       bl_traits(w->type)->info.name);
    int device = 0, sm_count = 0;
    cudaError_t err = cudaGetDevice(&device);
    if (err == cudaSuccess)
        err = cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device);
    if (err != cudaSuccess) return bl_cuda_fail(err, "reading the GPU's multiprocessor count");

    const bool gemv = n == 1;
    const int rows_per_warp = gemv ? kGemvRows : kGemmRows;
    const int64_t row_groups = (w->rows + rows_per_warp - 1) / rows_per_warp;
    BitArgs p = {w->data,     w->rows,      w->row_bytes, w->row_scale, acts->data, acts->stride,
                 acts->sums, acts->scales, n,           y,            y_stride,   1};
    const int64_t token_tiles = gemv ? 1 : (n + kGemmTokens - 1) / kGemmTokens;
    p.split = choose_split(row_groups * token_tiles, w->row_bytes / 16, sm_count);
    const int64_t groups_per_block = kWarps / p.split;
    dim3 grid((unsigned)((row_groups + groups_per_block - 1) / groups_per_block),
              (unsigned)token_tiles);
    err = bl_cuda_launch(gemv ? k.gemv : k.gemm, grid, dim3(kThreads), stream, gemv, p);
    return err == cudaSuccess ? BL_OK : bl_cuda_fail(err, "launching an integer matrix product");
}
