/* Causal attention over the KV cache on the GPU, split-K style: block
 * (split, head, token) scans one chunk of the token's visible positions with
 * a running-max softmax (one warp per position at a time, each lane holding
 * DPL dimensions of q and of the output), and a second kernel merges the
 * chunks. Decode (one token) still spreads over hundreds of blocks; a long
 * prompt has enough (token, head) pairs to run one chunk each, and then the
 * first kernel writes the output itself. */
#include <math.h>

#include "cuda_ops.h"
#include "launch.cuh"

namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kTargetBlocks = 4096; /* blocks that fill an H100 several times over */
constexpr int kMinChunk = 16;       /* positions per split, at least */
constexpr int kInFlight = 4;        /* positions a warp works on at once */

__device__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Running softmax state: max score m, sum of exp(score - m) l, and the
 * exp-weighted sum of values acc. Merging rescales both sides to the larger m. */
template <int DPL>
struct Softmax {
    float m = -INFINITY, l = 0.0f, acc[DPL] = {};

    __device__ void merge(float m2, float l2, const float *acc2) {
        const float m_new = fmaxf(m, m2);
        if (m_new == -INFINITY) return; /* both empty */
        const float a = expf(m - m_new), b = expf(m2 - m_new);
        l = l * a + l2 * b;
#pragma unroll
        for (int j = 0; j < DPL; j++) acc[j] = acc[j] * a + acc2[j] * b;
        m = m_new;
    }
};

template <int DPL>
__global__ void __launch_bounds__(kThreads) bl_attention_chunk__cuda(bl_cuda_attention_args a) {
    __shared__ float warp_m[kWarps], warp_l[kWarps];
    __shared__ float warp_acc[kWarps][32 * DPL];
    bl_allow_next();
    bl_wait_for_inputs();
    const int split = blockIdx.x, h = blockIdx.y, t = blockIdx.z;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int hd = a.head_dim, kv_dim = a.n_head_kv * hd;
    const int kv_head = h / (a.n_head / a.n_head_kv);
    const int visible = a.positions[t] + 1;
    const int begin = split * a.chunk, end = min(begin + a.chunk, visible);

    const float *q = a.q + t * a.q_stride + h * hd;
    float qv[DPL];
#pragma unroll
    for (int j = 0; j < DPL; j++) {
        const int d = lane * DPL + j;
        qv[j] = d < hd ? q[d] : 0.0f;
    }
    Softmax<DPL> state;
    const float *keys = a.k_cache + kv_head * hd, *values = a.v_cache + kv_head * hd;
    /* kInFlight positions per warp at a time: their loads and reductions overlap */
    for (int p0 = begin + warp; p0 < end; p0 += kWarps * kInFlight) {
        float dots[kInFlight], vv[kInFlight][DPL];
#pragma unroll
        for (int i = 0; i < kInFlight; i++) {
            const int p = p0 + i * kWarps;
            const float *k = keys + (int64_t)p * kv_dim, *v = values + (int64_t)p * kv_dim;
            dots[i] = 0.0f;
#pragma unroll
            for (int j = 0; j < DPL; j++) {
                const int d = lane * DPL + j;
                const bool inside = p < end && d < hd;
                dots[i] += inside ? qv[j] * k[d] : 0.0f;
                vv[i][j] = inside ? v[d] : 0.0f;
            }
        }
#pragma unroll
        for (int i = 0; i < kInFlight; i++) dots[i] = warp_sum(dots[i]);
#pragma unroll
        for (int i = 0; i < kInFlight; i++)
            if (p0 + i * kWarps < end) state.merge(dots[i] * a.scale, 1.0f, vv[i]);
    }

    if (lane == 0) warp_m[warp] = state.m, warp_l[warp] = state.l;
#pragma unroll
    for (int j = 0; j < DPL; j++) warp_acc[warp][lane * DPL + j] = state.acc[j];
    __syncthreads();
    if (warp != 0) return;
    Softmax<DPL> total;
    for (int w = 0; w < kWarps; w++) {
        float acc[DPL];
#pragma unroll
        for (int j = 0; j < DPL; j++) acc[j] = warp_acc[w][lane * DPL + j];
        total.merge(warp_m[w], warp_l[w], acc);
    }
    if (a.splits == 1) {
        float *out = a.out + t * a.out_stride + h * hd;
#pragma unroll
        for (int j = 0; j < DPL; j++)
            if (lane * DPL + j < hd) out[lane * DPL + j] = total.acc[j] / total.l;
        return;
    }
    float *part = a.partial + (((int64_t)t * a.n_head + h) * a.splits + split) * (hd + 2);
    if (lane == 0) part[0] = total.m, part[1] = total.l;
#pragma unroll
    for (int j = 0; j < DPL; j++)
        if (lane * DPL + j < hd) part[2 + lane * DPL + j] = total.acc[j];
}

/* One block per (head, token): thread d merges dimension d over the splits. */
__global__ void bl_attention_merge__cuda(bl_cuda_attention_args a) {
    bl_allow_next();
    bl_wait_for_inputs();
    const int h = blockIdx.x, t = blockIdx.y, hd = a.head_dim;
    const float *part = a.partial + ((int64_t)t * a.n_head + h) * a.splits * (hd + 2);
    float m = -INFINITY;
    for (int s = 0; s < a.splits; s++) m = fmaxf(m, part[s * (hd + 2)]);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float l = 0.0f, acc = 0.0f;
        for (int s = 0; s < a.splits; s++) {
            const float *p = part + s * (hd + 2);
            if (p[0] == -INFINITY) continue; /* a chunk past the token's position */
            const float w = expf(p[0] - m);
            l += p[1] * w;
            acc += p[2 + d] * w;
        }
        a.out[t * a.out_stride + h * hd + d] = acc / l;
    }
}

template <int DPL>
cudaError_t launch_chunks(const bl_cuda_attention_args *a, int64_t n, cudaStream_t stream) {
    dim3 grid((unsigned)a->splits, (unsigned)a->n_head, (unsigned)n);
    return bl_cuda_launch(bl_attention_chunk__cuda<DPL>, grid, dim3(kThreads), stream, n == 1, *a);
}

}  // namespace

void bl_cuda_attention_plan(int64_t n, int n_head, int n_ctx, int *splits, int *chunk) {
    const int64_t pairs = n * n_head;
    const int64_t wanted = (kTargetBlocks + pairs - 1) / pairs;
    const int64_t most = (n_ctx + kMinChunk - 1) / kMinChunk;
    const int s = (int)(wanted < most ? wanted : most);
    *splits = s < 1 ? 1 : s;
    *chunk = (n_ctx + *splits - 1) / *splits;
}

int64_t bl_cuda_attention_partial_floats(int head_dim) {
    /* splits > 1 only while n * n_head < kTargetBlocks, so n * n_head * splits
     * stays under 2 * kTargetBlocks */
    return (int64_t)2 * kTargetBlocks * (head_dim + 2);
}

int bl_cuda_attention(const bl_cuda_attention_args *a, int64_t n, cudaStream_t stream) {
    if (a->head_dim > BL_CUDA_MAX_HEAD_DIM)
        return bl_fail(BL_ERR_UNSUPPORTED, "cuda: attention takes head_dim <= %d, got %d",
                       BL_CUDA_MAX_HEAD_DIM, a->head_dim);
    const int lanes_dims = (a->head_dim + 31) / 32;
    cudaError_t err = lanes_dims <= 1   ? launch_chunks<1>(a, n, stream)
                      : lanes_dims <= 2 ? launch_chunks<2>(a, n, stream)
                      : lanes_dims <= 4 ? launch_chunks<4>(a, n, stream)
                                        : launch_chunks<8>(a, n, stream);
    if (err == cudaSuccess && a->splits > 1)
        err = bl_cuda_launch(bl_attention_merge__cuda, dim3((unsigned)a->n_head, (unsigned)n),
                             dim3(128), stream, n == 1, *a);
    return err == cudaSuccess ? BL_OK : bl_cuda_fail(err, "launching attention");
}
