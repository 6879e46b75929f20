/* Builds one kernel table per compiled-in ISA this CPU runs, once: a
 * registration function is compiled with its ISA's flags, so the compiler may
 * use that ISA's instructions in it (AVX-512 stores of the table on an AVX2
 * CPU are an illegal instruction). An ISA's table starts
 * from the scalar rows, takes the rows the ISA registers, and fills each AUTO
 * slot the ISA left open with its MAD kernel (or LUT, where only that exists). */
#include <pthread.h>
#include <string.h>

#include "kernels.h"

static bl_kernel_table tables[BL_ISA_COUNT];
static int compiled[BL_ISA_COUNT];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void fill_auto(bl_kernel_table *t) {
    for (int type = 0; type < BL_TYPE_COUNT; type++) {
        for (int act = 0; act < BL_ACT_COUNT; act++) {
            bl_kernel *k = t->k[type][act];
            const bl_kernel *fallback = k[BL_ALGO_MAD].gemv ? &k[BL_ALGO_MAD] : &k[BL_ALGO_LUT];
            if (!k[BL_ALGO_AUTO].gemv) k[BL_ALGO_AUTO].gemv = fallback->gemv;
            if (!k[BL_ALGO_AUTO].gemm) k[BL_ALGO_AUTO].gemm = fallback->gemm;
        }
    }
}

static void build(bl_isa isa, void (*register_rows)(bl_kernel_table *)) {
    if (!bl_cpu_runs(isa)) return;
    bl_kernel_table *t = &tables[isa];
    *t = tables[BL_ISA_SCALAR];
    for (int type = 0; type < BL_TYPE_COUNT; type++)
        for (int act = 0; act < BL_ACT_COUNT; act++)
            memset(&t->k[type][act][BL_ALGO_AUTO], 0, sizeof(bl_kernel));
    memset(t->auto_lut_min_rows, 0, sizeof t->auto_lut_min_rows);
    register_rows(t);
    fill_auto(t);
    compiled[isa] = 1;
}

static void build_all(void) {
    bl_kernels_register_scalar(&tables[BL_ISA_SCALAR]);
    fill_auto(&tables[BL_ISA_SCALAR]);
    compiled[BL_ISA_SCALAR] = 1;
#ifdef BL_HAVE_AVX2
    build(BL_ISA_AVX2, bl_kernels_register_avx2);
#endif
#ifdef BL_HAVE_AVX512
    build(BL_ISA_AVX512, bl_kernels_register_avx512);
#endif
#ifdef BL_HAVE_NEON
    build(BL_ISA_NEON, bl_kernels_register_neon);
#endif
#ifdef BL_HAVE_NEON_DOTPROD
    build(BL_ISA_NEON_DOTPROD, bl_kernels_register_neon_dotprod);
#endif
}

const bl_kernel_table *bl_kernels_for(bl_isa isa) {
    pthread_once(&once, build_all);
    if (isa < 0 || isa >= BL_ISA_COUNT || !compiled[isa]) return NULL;
    return &tables[isa];
}

bl_gemm_fn bl_kernel_pick(const bl_kernel_table *t, bl_type_id type, bl_act_format act,
                          bl_algo algo, size_t n) {
    const bl_kernel *k = t->k[type][act];
    if (n == 1) return k[algo].gemv;
    size_t lut_from = t->auto_lut_min_rows[type][act];
    if (algo == BL_ALGO_AUTO && lut_from && n >= lut_from) return k[BL_ALGO_LUT].gemm;
    return k[algo].gemm;
}

bl_act_format bl_act_format_for(bl_kind kind, int act_bits) {
    switch (kind) {
    case BL_KIND_FLOAT: return BL_ACT_F32;
    case BL_KIND_QUANT: return BL_ACT_Q8;
    default: return act_bits == 16 ? BL_ACT_I16 : BL_ACT_I8;
    }
}
