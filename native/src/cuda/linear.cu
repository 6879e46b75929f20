/* y = x . W^T on the GPU for every weight type: the one path from float
 * activations to a product, shared by the model and the kernel API. Each kind
 * takes its input as the CPU's kernels take theirs (core/linear.h), so both
 * devices compute the same function. */
#include "cuda_internal.h"

namespace {

constexpr int64_t kPadCols = 1280; /* a multiple of every type's block (32, 256, 320) */

bl_kind kind_of(const bl_cuda_weight *w) { return bl_traits(w->type)->info.kind; }

bool integer_kind(bl_kind kind) { return kind == BL_KIND_TERNARY || kind == BL_KIND_SIGN; }

}  // namespace

int bl_cuda_acts_alloc(bl_cuda_acts *acts, int64_t rows, int64_t cols, int bits) {
    *acts = {};
    const int64_t padded = (cols + kPadCols - 1) / kPadCols * kPadCols;
    acts->ints.bits = bits;
    acts->ints.stride = bl_cuda_int_acts_stride(padded, bits);
    acts->q8.blocks = padded / 32;
    cudaError_t err = cudaMalloc(&acts->ints.data, (size_t)(rows * acts->ints.stride));
    if (err == cudaSuccess) err = cudaMalloc(&acts->ints.sums, (size_t)rows * 4);
    if (err == cudaSuccess) err = cudaMalloc(&acts->ints.scales, (size_t)rows * 4);
    if (err == cudaSuccess) err = cudaMalloc(&acts->q8.q, (size_t)(rows * padded));
    if (err == cudaSuccess) err = cudaMalloc(&acts->q8.d, (size_t)(rows * acts->q8.blocks) * 4);
    if (err == cudaSuccess) err = cudaMalloc(&acts->q8.sums, (size_t)(rows * acts->q8.blocks) * 4);
    return err == cudaSuccess ? BL_OK : bl_cuda_fail(err, "allocating activation scratch");
}

void bl_cuda_acts_free(bl_cuda_acts *acts) {
    cudaFree(acts->ints.data);
    cudaFree(acts->ints.sums);
    cudaFree(acts->ints.scales);
    cudaFree(acts->q8.q);
    cudaFree(acts->q8.d);
    cudaFree(acts->q8.sums);
    *acts = {};
}

int bl_cuda_linear_prepare(const bl_cuda_weight *w, const float *x, int64_t x_stride, int64_t n,
                           const bl_cuda_acts *acts, cudaStream_t stream) {
    const bl_kind kind = kind_of(w);
    if (integer_kind(kind))
        return bl_cuda_quantize_acts(x, x_stride, n, w->cols,
                                     bl_padded_cols(bl_traits(w->type), w->cols), &acts->ints,
                                     stream);
    if (kind == BL_KIND_QUANT)
        return bl_cuda_quantize_q8(x, x_stride, n, w->cols, &acts->q8, stream);
    return BL_OK;
}

int bl_cuda_linear_run(const bl_cuda_weight *w, const float *x, int64_t x_stride, int64_t n,
                       const bl_cuda_acts *acts, float *y, int64_t y_stride,
                       cudaStream_t stream) {
    const bl_kind kind = kind_of(w);
    if (integer_kind(kind)) return bl_cuda_bit_matmul(w, &acts->ints, n, y, y_stride, stream);
    if (kind == BL_KIND_QUANT) return bl_cuda_quant_matmul(w, &acts->q8, n, y, y_stride, stream);
    return bl_cuda_float_matmul(w, x, x_stride, n, y, y_stride, stream);
}
