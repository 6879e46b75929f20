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

/* Host code: return a failing bl_status, or a failing CUDA call as bl_cuda_fail's. */
#define BL_TRY(call)                  \
    do {                              \
        int rc_ = (call);             \
        if (rc_ != BL_OK) return rc_; \
    } while (0)

#define BL_TRY_CUDA(call, what)                                   \
    do {                                                          \
        cudaError_t err_ = (call);                                \
        if (err_ != cudaSuccess) return bl_cuda_fail(err_, what); \
    } while (0)

/* BL_OK when a GPU with a working driver is present, else the reason. */
int bl_cuda_check_device(void);

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

/* Quant-type activations on the device (activations.h's BL_ACT_Q8 as three
 * arrays): block b of row t is q[(t * blocks + b) * 32 ..], its scale
 * d[t * blocks + b] and the sum of its integers sums[t * blocks + b]. */
typedef struct bl_cuda_q8_acts {
    int8_t *q;
    float *d;
    int32_t *sums;
    int64_t blocks; /* per row */
} bl_cuda_q8_acts;

/* Scratch for the input of any weight type, rows x cols at most. */
typedef struct bl_cuda_acts {
    bl_cuda_int_acts ints;
    bl_cuda_q8_acts q8;
} bl_cuda_acts;

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

/* Allocates acts for up to rows rows of up to cols columns (any weight type's
 * padding included); bits: 8 or 16 for ternary/sign inputs. Free with
 * bl_cuda_acts_free, which also takes a partly allocated one. */
int bl_cuda_acts_alloc(bl_cuda_acts *acts, int64_t rows, int64_t cols, int bits);
void bl_cuda_acts_free(bl_cuda_acts *acts);

/* The two steps of y = x . W^T for any weight type. x is [n, x_stride] float32
 * with zeros from w->cols up to x_stride (a multiple of 32). prepare quantizes
 * x into acts as w's kernels take it (ternary/sign: BitNet's per-row rule;
 * quant: 32-blocks of int8; float: nothing); run writes y [n, rows] with row
 * stride y_stride. */
int bl_cuda_linear_prepare(const bl_cuda_weight *w, const float *x, int64_t x_stride, int64_t n,
                           const bl_cuda_acts *acts, cudaStream_t stream);
int bl_cuda_linear_run(const bl_cuda_weight *w, const float *x, int64_t x_stride, int64_t n,
                       const bl_cuda_acts *acts, float *y, int64_t y_stride,
                       cudaStream_t stream);

/* The kernels behind them. */
int bl_cuda_quantize_acts(const float *x, int64_t x_stride, int64_t n, int64_t cols,
                          int64_t cols_padded, const bl_cuda_int_acts *acts, cudaStream_t stream);
int bl_cuda_quantize_q8(const float *x, int64_t x_stride, int64_t n, int64_t cols,
                        const bl_cuda_q8_acts *acts, cudaStream_t stream);
int bl_cuda_bit_matmul(const bl_cuda_weight *w, const bl_cuda_int_acts *acts, int64_t n,
                       float *y, int64_t y_stride, cudaStream_t stream);
int bl_cuda_quant_matmul(const bl_cuda_weight *w, const bl_cuda_q8_acts *acts, int64_t n,
                         float *y, int64_t y_stride, cudaStream_t stream);
int bl_cuda_float_matmul(const bl_cuda_weight *w, const float *x, int64_t x_stride, int64_t n,
                         float *y, int64_t y_stride, cudaStream_t stream);

/* Most activation rows one launch takes (grid limits). */
#define BL_CUDA_MAX_TOKENS 65535

#endif
