/* Linear layers on the kernel tables: the one path from a packed weight
 * matrix to float outputs, shared by bl_matmul and the model graph.
 *
 * The caller owns every buffer: activations are quantized once into a reused
 * bl_activations and may feed several matrices (Q/K/V share an input, so do
 * gate/up), and the kernels' int32 dot products are scaled in place in the
 * float output, so a call allocates nothing. */
#ifndef BL_LINEAR_H
#define BL_LINEAR_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

/* A packed rows x cols matrix in place (e.g. inside an mmapped file). */
typedef struct bl_weight {
    bl_type_id type;
    const bl_type_traits *traits;
    const uint8_t *data;    /* the packed rows                                  */
    const float *row_scale; /* ternary/sign: one float per row; NULL otherwise  */
    int64_t rows, cols;
    size_t row_bytes;       /* packed bytes of one row                          */
} bl_weight;

/* data holds bl_tensor_size(type, rows, cols) bytes. */
void bl_weight_bind(bl_weight *w, bl_type_id type, const void *data, int64_t rows, int64_t cols);

struct bl_pool;

/* How products are run: the ISA's kernel table, threads, activation bits, algo. */
typedef struct bl_engine {
    const bl_kernel_table *kernels;
    int isa;
    int threads;
    struct bl_pool *pool; /* runs the splits: the model's own, or the kernel API's shared one */
    int act_bits; /* 8 or 16 for ternary/sign weights */
    int algo;     /* bl_algo */
} bl_engine;

/* Resolves isa (BL_ISA_AUTO: the default) and threads (<= 0: one per core,
 * at most BL_MAX_THREADS); act_bits must be 8 or 16. An ISA this CPU cannot
 * run is an error. e->pool is left NULL (one thread) for the caller to set. */
int bl_engine_init(bl_engine *e, int isa, int threads, int act_bits, int algo);

/* The activation format w's kernels take under e. */
bl_act_format bl_engine_format(const bl_engine *e, const bl_weight *w);

/* Whether e has kernels for w, for a single row (gemv) and for batches (gemm);
 * records an error naming the type and the missing kernel when not. */
int bl_engine_check(const bl_engine *e, const bl_weight *w);

/* y[i][t, r] = x[t] . w[i][r] for count matrices that share the activations x
 * (quantized in bl_engine_format of each, which must agree, and padded to the
 * same columns; bl_engine_check passed for each). Rows of every matrix are
 * split over e->threads in one run. */
int bl_linear(const bl_engine *e, const bl_activations *x, const bl_weight *const *w,
               float *const *y, int count);

#endif
