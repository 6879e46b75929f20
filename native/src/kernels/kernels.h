/* Microkernels and their dispatch table.
 *
 * A kernel multiplies a slice of weight rows with every activation row:
 *   out[t * out_stride + r] for t < n, r < rows.
 * Integer kinds (ternary, sign) write int32 dot products (the driver scales
 * them); float and quant kinds write float32 results.
 *
 * Names follow bl_<gemv|gemm>_<type>_<act>_<algo>__<isa>, e.g.
 * bl_gemv_bt2_i8_mad__avx512 (tests/native/test_kernel_names.py checks them).
 * Each ISA lists the kernels it implements in one table of rows,
 * kernels/<isa>/register.c, beside its attention chunk kernel
 * (bl_attn_chunk__<isa>, attention_chunk.h); slots it leaves empty keep the
 * kernel of the ISA it extends. */
#ifndef BL_KERNELS_H
#define BL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "bitllm.h"
#include "attention_chunk.h"
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

/* A kernel's function type: register.c files declare kernels with it. */
typedef void bl_gemm_kernel(const bl_gemm_task *task);
typedef bl_gemm_kernel *bl_gemm_fn;

/* gemv: x->n == 1 (decode); gemm: any x->n (prompt processing). */
typedef struct bl_kernel {
    bl_gemm_fn gemv;
    bl_gemm_fn gemm;
} bl_kernel;

#define BL_ALGO_SLOTS 3 /* indexed by bl_algo: AUTO (the pick), MAD, LUT */

typedef struct bl_kernel_table {
    bl_kernel k[BL_TYPE_COUNT][BL_ACT_COUNT][BL_ALGO_SLOTS];
    /* AUTO runs the LUT kernels from this many activation rows on (1: GEMV
     * too; 0: never); set where benchmarks show the tables beat multiply-add. */
    size_t auto_lut_min_rows[BL_TYPE_COUNT][BL_ACT_COUNT];
    /* The attention chunk kernel (attention_chunk.h), bl_attn_chunk__<isa>. */
    bl_attn_chunk_fn attn_chunk;
    /* The type a projection of each type runs as on this ISA, after an exact
     * repack when the model opens (model/repack.h); BL_TYPE_COUNT: as it is. */
    bl_type_id runs_as[BL_TYPE_COUNT];
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

/* One row of an ISA's table: the kernels of one (type, act, algo) slot. A GEMM
 * kernel may fill the GEMV slot too: it takes any number of rows. */
typedef struct bl_kernel_row {
    bl_type_id type;
    bl_act_format act;
    bl_algo algo;
    bl_gemm_fn gemv, gemm;
} bl_kernel_row;

/* From min_rows activation rows on, AUTO runs the (type, act) LUT kernels
 * (min_rows 1: the GEMV too). */
typedef struct bl_auto_lut_row {
    bl_type_id type;
    bl_act_format act;
    size_t min_rows;
} bl_auto_lut_row;

/* A type this ISA multiplies slower than it streams another that holds the
 * same weights exactly: its projections run as `as` (set where benchmarks
 * show it, e.g. bt1 on AVX2, whose base-3 decode costs more than bt2's
 * 25% more bytes). */
typedef struct bl_runs_as_row {
    bl_type_id type, as;
} bl_runs_as_row;

/* What an ISA puts in its table (kernels/<isa>/register.c): rows are data, and
 * init (NULL if none) fills constant tables its kernels read; the registry
 * calls it when it builds the table, so only once CPUID said yes. */
typedef struct bl_isa_kernels {
    const bl_kernel_row *rows;
    size_t n_rows;
    const bl_auto_lut_row *auto_lut;
    size_t n_auto_lut;
    bl_attn_chunk_fn attn_chunk; /* NULL: the one of the ISA it extends */
    const bl_runs_as_row *runs_as;
    size_t n_runs_as;
    void (*init)(void);
} bl_isa_kernels;

extern const bl_isa_kernels bl_kernels_scalar, bl_kernels_avx2, bl_kernels_avx512,
    bl_kernels_neon, bl_kernels_neon_dotprod, bl_kernels_avx_vnni, bl_kernels_amx;

#define BL_COUNT(array) (sizeof(array) / sizeof((array)[0]))

#endif
