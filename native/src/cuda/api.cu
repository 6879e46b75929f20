/* The public CUDA entries of bitllm.h: availability, a checked matrix product
 * that copies in and out (for tests), and timings with the weights resident. */
#include <stdlib.h>

#include "cuda_internal.h"
#include "launch.cuh"

int bl_cuda_fail(cudaError_t err, const char *what) {
    if (err == cudaErrorMemoryAllocation)
        return bl_fail(BL_ERR_OUT_OF_MEMORY, "cuda: %s: %s", what, cudaGetErrorString(err));
    if (err == cudaErrorInsufficientDriver || err == cudaErrorNoDevice ||
        err == cudaErrorInitializationError)
        return bl_fail(BL_ERR_UNSUPPORTED, "cuda: %s: no usable NVIDIA GPU (%s)", what,
                       cudaGetErrorString(err));
    return bl_fail(BL_ERR_UNSUPPORTED, "cuda: %s: %s", what, cudaGetErrorString(err));
}

int bl_cuda_check_device(void) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err == cudaErrorInsufficientDriver)
        return bl_fail(BL_ERR_UNSUPPORTED,
                       "cuda: no NVIDIA driver found, or one older than this library's CUDA "
                       "runtime %d.%d",
                       CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
    if (err != cudaSuccess) return bl_cuda_fail(err, "looking for a GPU");
    if (count == 0) return bl_fail(BL_ERR_UNSUPPORTED, "cuda: the driver reports no GPU");
    return BL_OK;
}

bool bl_cuda_overlap_enabled() {
    static const bool enabled = [] {
        const char *v = getenv("BITLLM_CUDA_OVERLAP");
        if (v && v[0] == '0') return false;
        /* programmatic dependent launch is a Hopper (compute capability 9.0) feature */
        int device = 0, major = 0;
        return cudaGetDevice(&device) == cudaSuccess &&
               cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) ==
                   cudaSuccess &&
               major >= 9;
    }();
    return enabled;
}

namespace {

/* The device buffers of one product; release() frees whatever was allocated. */
struct Buffers {
    uint8_t *w = nullptr;
    float *x = nullptr, *y = nullptr;
    bl_cuda_acts acts = {};
    cudaEvent_t start = nullptr, stop = nullptr;
    cudaStream_t stream = nullptr;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t graph_exec = nullptr;

    void release() {
        cudaFree(w);
        cudaFree(x);
        cudaFree(y);
        bl_cuda_acts_free(&acts);
        if (start) cudaEventDestroy(start);
        if (stop) cudaEventDestroy(stop);
        if (graph_exec) cudaGraphExecDestroy(graph_exec);
        if (graph) cudaGraphDestroy(graph);
        if (stream) cudaStreamDestroy(stream);
    }
};

/* One product's shape, checked as bl_matmul checks it. */
struct Problem {
    bl_type_id type;
    const bl_type_traits *traits;
    int64_t rows, cols, row_bytes, n;
    int bits;
    bool row_scale; /* ternary or sign: float32 row scales after the rows */
};

int check_problem(const char *type, int64_t w_bytes, int64_t rows, int64_t cols, int64_t n,
                  int act_bits, Problem *out) {
    if (!type) return bl_fail(BL_ERR_INVALID_ARGUMENT, "cuda matmul: type is NULL");
    if (rows <= 0 || cols <= 0 || n <= 0)
        return bl_fail(BL_ERR_INVALID_ARGUMENT,
                       "cuda matmul %s: shapes must be positive (rows %lld, cols %lld, n %lld)",
                       type, (long long)rows, (long long)cols, (long long)n);
    if (n > BL_CUDA_MAX_TOKENS)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "cuda matmul %s: n %lld is over %d", type,
                       (long long)n, BL_CUDA_MAX_TOKENS);
    if (act_bits != 8 && act_bits != 16)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "act_bits must be 8 or 16, got %d", act_bits);
    int rc = bl_type_find(type, &out->type);
    if (rc != BL_OK) return rc;
    const bl_type_traits *t = bl_traits(out->type);
    if (w_bytes != bl_tensor_size(t, rows, cols))
        return bl_fail(BL_ERR_INVALID_ARGUMENT,
                       "cuda matmul %s: a %lld x %lld matrix takes %lld bytes, got %lld", type,
                       (long long)rows, (long long)cols, (long long)bl_tensor_size(t, rows, cols),
                       (long long)w_bytes);
    out->traits = t;
    out->rows = rows;
    out->cols = cols;
    out->row_bytes = bl_row_data_bytes(t, cols);
    out->n = n;
    out->bits = act_bits;
    out->row_scale = t->info.row_scale != 0;
    return BL_OK;
}

int64_t x_stride(const Problem &p) { return (p.cols + 31) / 32 * 32; }

bl_cuda_weight weight_at(const Problem &p, const uint8_t *w) {
    return {p.type, w, p.rows, p.cols, p.row_bytes,
            p.row_scale ? (const float *)(w + p.rows * p.row_bytes) : nullptr};
}

/* Allocates everything but the weights, copies x in (zero-padded float32) and
 * prepares it as the weight type takes it (w: the weights on the device). */
int prepare(const Problem &p, const uint8_t *w, const float *x, Buffers &b) {
    const int64_t stride = x_stride(p);
    BL_TRY_CUDA(cudaMalloc(&b.y, p.n * p.rows * 4), "allocating y");
    BL_TRY_CUDA(cudaMalloc(&b.x, p.n * stride * 4), "allocating x");
    BL_TRY_CUDA(cudaMemset(b.x, 0, p.n * stride * 4), "clearing x");
    BL_TRY_CUDA(cudaMemcpy2D(b.x, stride * 4, x, p.cols * 4, p.cols * 4, p.n,
                             cudaMemcpyHostToDevice),
                "copying x");
    int rc = bl_cuda_acts_alloc(&b.acts, p.n, p.cols, p.bits);
    if (rc != BL_OK) return rc;
    bl_cuda_weight weight = weight_at(p, w);
    return bl_cuda_linear_prepare(&weight, b.x, stride, p.n, &b.acts, 0);
}

int run(const Problem &p, const uint8_t *w, Buffers &b, cudaStream_t stream) {
    bl_cuda_weight weight = weight_at(p, w);
    return bl_cuda_linear_run(&weight, b.x, x_stride(p), p.n, &b.acts, b.y, p.rows, stream);
}

int matmul(const Problem &p, const void *w, int64_t w_bytes, const float *x, float *y,
           Buffers &b) {
    BL_TRY_CUDA(cudaMalloc(&b.w, w_bytes), "allocating the weights");
    BL_TRY_CUDA(cudaMemcpy(b.w, w, w_bytes, cudaMemcpyHostToDevice), "copying the weights");
    int rc = prepare(p, b.w, x, b);
    if (rc == BL_OK) rc = run(p, b.w, b, 0);
    if (rc != BL_OK) return rc;
    BL_TRY_CUDA(cudaMemcpy(y, b.y, p.n * p.rows * 4, cudaMemcpyDeviceToHost), "copying y back");
    return BL_OK;
}

/* Activations for timing: a fixed pattern with a spread of magnitudes (never zeros). */
void fill_activations(float *x, int64_t count) {
    uint32_t state = 12345;
    for (int64_t i = 0; i < count; i++) {
        state = state * 1664525u + 1013904223u;
        x[i] = (float)((int32_t)(state >> 8) - (1 << 23)) / (float)(1 << 23);
    }
}

int bench(const Problem &p, const void *w, int64_t w_bytes, int copies, int iters,
          double *seconds, Buffers &b) {
    float *x = (float *)malloc((size_t)(p.n * p.cols) * 4);
    if (!x) return bl_fail(BL_ERR_OUT_OF_MEMORY, "cuda bench: out of host memory for x");
    fill_activations(x, p.n * p.cols);
    cudaError_t err = cudaMalloc(&b.w, w_bytes * copies);
    for (int c = 0; c < copies && err == cudaSuccess; c++)
        err = cudaMemcpy(b.w + c * w_bytes, w, w_bytes, cudaMemcpyHostToDevice);
    int rc = err == cudaSuccess ? prepare(p, b.w, x, b) : bl_cuda_fail(err, "copying the weights");
    free(x);
    if (rc != BL_OK) return rc;
    BL_TRY_CUDA(cudaDeviceSynchronize(), "preparing the activations");
    /* One graph of iters products: launch gaps shrink to what a decode graph has. */
    BL_TRY_CUDA(cudaStreamCreateWithFlags(&b.stream, cudaStreamNonBlocking), "creating a stream");
    BL_TRY_CUDA(cudaStreamBeginCapture(b.stream, cudaStreamCaptureModeThreadLocal),
                "capturing the products");
    for (int i = 0; i < iters && rc == BL_OK; i++)
        rc = run(p, b.w + (i % copies) * w_bytes, b, b.stream);
    cudaError_t captured = cudaStreamEndCapture(b.stream, &b.graph);
    if (rc != BL_OK) return rc;
    BL_TRY_CUDA(captured, "capturing the products");
    BL_TRY_CUDA(cudaGraphInstantiate(&b.graph_exec, b.graph, 0), "instantiating the graph");
    BL_TRY_CUDA(cudaEventCreate(&b.start), "creating an event");
    BL_TRY_CUDA(cudaEventCreate(&b.stop), "creating an event");
    const int warmup = 2, timed = 3;
    for (int i = 0; i < warmup; i++) /* loads the module, raises the clocks */
        BL_TRY_CUDA(cudaGraphLaunch(b.graph_exec, b.stream), "running the graph");
    BL_TRY_CUDA(cudaEventRecord(b.start, b.stream), "recording an event");
    for (int i = 0; i < timed; i++)
        BL_TRY_CUDA(cudaGraphLaunch(b.graph_exec, b.stream), "running the graph");
    BL_TRY_CUDA(cudaEventRecord(b.stop, b.stream), "recording an event");
    BL_TRY_CUDA(cudaEventSynchronize(b.stop), "waiting for the products");
    float ms = 0.0f;
    BL_TRY_CUDA(cudaEventElapsedTime(&ms, b.start, b.stop), "reading the timer");
    *seconds = ms / 1e3 / ((double)iters * timed);
    return BL_OK;
}

int bench_copy(int64_t bytes, int iters, double *seconds, Buffers &b) {
    BL_TRY_CUDA(cudaMalloc(&b.w, bytes), "allocating the copy source");
    BL_TRY_CUDA(cudaMalloc(&b.y, bytes), "allocating the copy target");
    BL_TRY_CUDA(cudaMemset(b.w, 1, bytes), "filling the copy source");
    BL_TRY_CUDA(cudaEventCreate(&b.start), "creating an event");
    BL_TRY_CUDA(cudaEventCreate(&b.stop), "creating an event");
    BL_TRY_CUDA(cudaMemcpy(b.y, b.w, bytes, cudaMemcpyDeviceToDevice), "copying");
    BL_TRY_CUDA(cudaEventRecord(b.start), "recording an event");
    for (int i = 0; i < iters; i++)
        BL_TRY_CUDA(cudaMemcpyAsync(b.y, b.w, bytes, cudaMemcpyDeviceToDevice), "copying");
    BL_TRY_CUDA(cudaEventRecord(b.stop), "recording an event");
    BL_TRY_CUDA(cudaEventSynchronize(b.stop), "waiting for the copies");
    float ms = 0.0f;
    BL_TRY_CUDA(cudaEventElapsedTime(&ms, b.start, b.stop), "reading the timer");
    *seconds = ms / 1e3 / iters;
    return BL_OK;
}

}  // namespace

extern "C" int bl_cuda_available(void) { return bl_cuda_check_device() == BL_OK; }

extern "C" int bl_cuda_matmul(const char *type, const void *w, int64_t w_bytes, int64_t rows,
                              int64_t cols, const float *x, int64_t n, float *y, int act_bits) {
    if (!w || !x || !y)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "cuda matmul %s: weights, x or y is NULL",
                       type ? type : "?");
    Problem p;
    int rc = check_problem(type, w_bytes, rows, cols, n, act_bits, &p);
    if (rc == BL_OK) rc = bl_cuda_check_device();
    if (rc != BL_OK) return rc;
    Buffers b;
    rc = matmul(p, w, w_bytes, x, y, b);
    b.release();
    return rc;
}

extern "C" int bl_cuda_bench_matmul(const char *type, const void *w, int64_t w_bytes,
                                    int64_t rows, int64_t cols, int64_t n, int act_bits,
                                    int copies, int iters, double *seconds_per_call) {
    if (!w || !seconds_per_call)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "cuda bench: weights or result is NULL");
    if (copies < 1 || iters < 1)
        return bl_fail(BL_ERR_INVALID_ARGUMENT,
                       "cuda bench: copies (%d) and iters (%d) must be >= 1", copies, iters);
    Problem p;
    int rc = check_problem(type, w_bytes, rows, cols, n, act_bits, &p);
    if (rc == BL_OK) rc = bl_cuda_check_device();
    if (rc != BL_OK) return rc;
    Buffers b;
    rc = bench(p, w, w_bytes, copies, iters, seconds_per_call, b);
    b.release();
    return rc;
}

extern "C" int bl_cuda_bench_copy(int64_t bytes, int iters, double *seconds_per_copy) {
    if (bytes <= 0 || iters < 1 || !seconds_per_copy)
        return bl_fail(BL_ERR_INVALID_ARGUMENT,
                       "cuda copy bench: bytes (%lld) and iters (%d) must be positive",
                       (long long)bytes, iters);
    int rc = bl_cuda_check_device();
    if (rc != BL_OK) return rc;
    Buffers b;
    rc = bench_copy(bytes, iters, seconds_per_copy, b);
    b.release();
    return rc;
}
