/* What the CUDA sources share: error reporting into bl_last_error() and the
 * launchers that api.cu drives. Everything here works on device pointers and
 * enqueues on the given stream; launchers return BL_OK or a bl_status with the
 * reason recorded. */
#ifndef BL_CUDA_INTERNAL_H
#define BL_CUDA_INTERNAL_H

#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "error.h"
#include "types.h"
}

/* Records "what: <CUDA's message>" for bl_last_error() and returns the status
 * that fits the error (out of memory, or unsupported for a missing driver/GPU). */
int bl_cuda_fail(cudaError_t err, const char *what);

/* Ternary/sign activations on the device, quantized per row (activations.h's
 * BL_ACT_I8/I16): row t starts at data + t * stride, padded with zeros to the
 * weight type's block; sums[t] is the sum of its integers, scales[t] its s. */
typedef struct bl_cuda_int_acts {
    uint8_t *data;
    int64_t stride;
    int bits;
    int32_t *sums;
    float *scales;
} bl_cuda_int_acts;

/* A weight matrix on the device, laid out as docs/FORMAT.md says. */
typedef struct bl_cuda_weight {
    bl_type_id type;
    const uint8_t *data;
    int64_t rows, cols;
    int64_t row_bytes;       /* packed bytes of one row                     */
    const float *row_scale;  /* ternary/sign: after the rows; else NULL     */
} bl_cuda_weight;

/* Bytes of one quantized activation row for cols_padded columns. */
int64_t bl_cuda_int_acts_stride(int64_t cols_padded, int bits);

/* x [n, cols] float32 -> acts (BitNet's rule, bit for bit the CPU's). */
int bl_cuda_quantize_acts(const float *x, int64_t n, int64_t cols, int64_t cols_padded,
                          const bl_cuda_int_acts *acts, cudaStream_t stream);

/* y [n, rows] = dot * row_scale / s for ternary and sign weights. */
int bl_cuda_bit_matmul(const bl_cuda_weight *w, const bl_cuda_int_acts *acts, int64_t n,
                       float *y, cudaStream_t stream);

/* y [n, rows] for float and quant weights; x [n, x_stride] float32 with zeros
 * from cols up to x_stride, a multiple of 32. */
int bl_cuda_float_matmul(const bl_cuda_weight *w, const float *x, int64_t x_stride, int64_t n,
                         float *y, cudaStream_t stream);

/* Most activation rows one launch takes (grid limits). */
#define BL_CUDA_MAX_TOKENS 65535

#endif
