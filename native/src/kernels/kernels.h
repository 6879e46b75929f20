/* Microkernels and their dispatch table.
 *
 * A kernel multiplies a slice of weight rows with every activation row:
 *   out[t * out_stride + r] for t < n, r < rows.
 * Integer kinds (ternary, sign) write int32 dot products (the driver scales
 * them); float and quant kinds write float32 results.
 *
 * Names follow bl_<gemv|gemm>_<type>_<act>_<algo>__<isa>, e.g.
 * bl_gemv_bt2_i8_mad__avx512. Each ISA registers the rows it implements with
 * bl_kernels_register_<isa>(); slots it leaves empty keep the scalar kernel. */
#ifndef BL_KERNELS_H
#define BL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "bitllm.h"
#include "base/activations.h"
#include "types/types.h"

typedef struct bl_gemm_task {
    const uint8_t *w;   /* first weight row of the slice                   */
    size_t w_row_bytes; /* stride between weight rows                      */
    size_t rows;        /* rows in the slice                               */
    size_t cols;        /* padded row length (a multiple of the block)     */
    const bl_activations *x;
    void *out;          /* int32 or float, already offset to the slice     */
    size_t out_stride;  /* elements between activation rows of out         */
} bl_gemm_task;

typedef void (*bl_gemm_fn)(const bl_gemm_task *task);

/* gemv: x->n == 1 (decode); gemm: any x->n (prompt processing). */
typedef struct bl_kernel {
    bl_gemm_fn gemv;
    bl_gemm_fn gemm;
} bl_kernel;

#define BL_ALGO_SLOTS 3 /* indexed by bl_algo: AUTO (the pick), MAD, LUT */

typedef struct bl_kernel_table {
    bl_kernel k[BL_TYPE_COUNT][BL_ACT_COUNT][BL_ALGO_SLOTS];
    /* AUTO runs the LUT GEMM from this many activation rows on (0: never);
     * set where benchmarks show the batched tables beat multiply-add. */
    size_t auto_lut_min_rows[BL_TYPE_COUNT][BL_ACT_COUNT];
} bl_kernel_table;

/* Whether an ISA's kernels are compiled into this library (runs none of them). */
int bl_kernels_compiled(bl_isa isa);

/* The table for an ISA (scalar rows where the ISA has none), built on first
 * use; NULL if the ISA is not compiled in. Building runs the ISA's code: ask
 * only for an ISA the CPU runs (bl_isa_supported). */
const bl_kernel_table *bl_kernels_for(bl_isa isa);

/* The kernel for n activation rows: GEMV for one, else GEMM; AUTO resolves
 * per batch size (auto_lut_min_rows). NULL when the slot is empty. */
bl_gemm_fn bl_kernel_pick(const bl_kernel_table *t, bl_type_id type, bl_act_format act,
                          bl_algo algo, size_t n);

/* Which activation format a type's kernels take. */
bl_act_format bl_act_format_for(bl_kind kind, int act_bits);

void bl_kernels_register_scalar(bl_kernel_table *t);
void bl_kernels_register_avx2(bl_kernel_table *t);
void bl_kernels_register_avx512(bl_kernel_table *t);
void bl_kernels_register_neon(bl_kernel_table *t);
void bl_kernels_register_neon_dotprod(bl_kernel_table *t);

/* Sets both GEMV and GEMM slots of one (type, act, algo) row. */
static inline void bl_kernel_set(bl_kernel_table *t, bl_type_id type, bl_act_format act,
                                 bl_algo algo, bl_gemm_fn gemv, bl_gemm_fn gemm) {
    t->k[type][act][algo].gemv = gemv;
    t->k[type][act][algo].gemm = gemm;
}

#endif
