/* Builds one kernel table per ISA on first use. An ISA's table starts from
 * the table of the ISA it extends (scalar at the bottom), takes the rows the
 * ISA lists (kernels/<isa>/register.c),
 * and fills each AUTO slot the ISA left open with its MAD kernel (or LUT,
 * where only that exists). The rows are data, but an ISA's init is compiled
 * with its flags, so a table is built only when asked for, and callers ask
 * only after CPUID said yes. */
#include <pthread.h>
#include <string.h>

#include "kernels.h"

/* The ISAs compiled into this library. */
static const bl_isa_kernels *const compiled[BL_ISA_COUNT] = {
    [BL_ISA_SCALAR] = &bl_kernels_scalar,
#ifdef BL_HAVE_AVX2
    [BL_ISA_AVX2] = &bl_kernels_avx2,
#endif
#ifdef BL_HAVE_AVX512
    [BL_ISA_AVX512] = &bl_kernels_avx512,
#endif
#ifdef BL_HAVE_NEON
    [BL_ISA_NEON] = &bl_kernels_neon,
#endif
#ifdef BL_HAVE_NEON_DOTPROD
    [BL_ISA_NEON_DOTPROD] = &bl_kernels_neon_dotprod,
#endif
#ifdef BL_HAVE_AVX_VNNI
    [BL_ISA_AVX_VNNI] = &bl_kernels_avx_vnni,
#endif
#ifdef BL_HAVE_AMX
    [BL_ISA_AMX] = &bl_kernels_amx,
#endif
};

/* The ISA each one extends: a CPU that runs an ISA runs the one below it, so
 * a slot an ISA leaves empty keeps the best kernel below rather than scalar. */
static const bl_isa extends[BL_ISA_COUNT] = {
    [BL_ISA_AVX2] = BL_ISA_SCALAR,
    [BL_ISA_AVX512] = BL_ISA_AVX2,
    [BL_ISA_NEON] = BL_ISA_SCALAR,
    [BL_ISA_NEON_DOTPROD] = BL_ISA_NEON,
    [BL_ISA_AVX_VNNI] = BL_ISA_AVX2,
    [BL_ISA_AMX] = BL_ISA_AVX512,
};

static bl_kernel_table tables[BL_ISA_COUNT];
_Static_assert(BL_ISA_COUNT == 7, "one PTHREAD_ONCE_INIT and one builder per ISA");
static pthread_once_t built[BL_ISA_COUNT] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
                                             PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
                                             PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
                                             PTHREAD_ONCE_INIT};

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

/* Later rows of a slot replace earlier ones. A (type, act) whose kernels an
 * ISA replaces loses the LUT threshold measured against the ones below, and a
 * type whose kernels it replaces runs as itself, unless the ISA states
 * otherwise. */
static void add(bl_kernel_table *t, const bl_isa_kernels *isa) {
    if (isa->init) isa->init();
    for (size_t i = 0; i < isa->n_rows; i++) {
        const bl_kernel_row *row = &isa->rows[i];
        t->k[row->type][row->act][row->algo] = (bl_kernel){row->gemv, row->gemm};
        t->auto_lut_min_rows[row->type][row->act] = 0;
        t->runs_as[row->type] = BL_TYPE_COUNT;
    }
    for (size_t i = 0; i < isa->n_auto_lut; i++) {
        const bl_auto_lut_row *row = &isa->auto_lut[i];
        t->auto_lut_min_rows[row->type][row->act] = row->min_rows;
    }
    for (size_t i = 0; i < isa->n_runs_as; i++)
        t->runs_as[isa->runs_as[i].type] = isa->runs_as[i].as;
    if (isa->attn_chunk) t->attn_chunk = isa->attn_chunk;
}

static void build_scalar(void) {
    for (int type = 0; type < BL_TYPE_COUNT; type++)
        tables[BL_ISA_SCALAR].runs_as[type] = BL_TYPE_COUNT;
    add(&tables[BL_ISA_SCALAR], &bl_kernels_scalar);
    fill_auto(&tables[BL_ISA_SCALAR]);
}

static void build(bl_isa isa) {
    bl_kernel_table *t = &tables[isa];
    bl_isa below = compiled[extends[isa]] ? extends[isa] : BL_ISA_SCALAR;
    *t = *bl_kernels_for(below);
    for (int type = 0; type < BL_TYPE_COUNT; type++)
        for (int act = 0; act < BL_ACT_COUNT; act++)
            memset(&t->k[type][act][BL_ALGO_AUTO], 0, sizeof(bl_kernel));
    add(t, compiled[isa]);
    fill_auto(t);
}

/* pthread_once takes no argument: one trampoline per ISA. */
static void build_avx2(void) { build(BL_ISA_AVX2); }
static void build_avx512(void) { build(BL_ISA_AVX512); }
static void build_neon(void) { build(BL_ISA_NEON); }
static void build_neon_dotprod(void) { build(BL_ISA_NEON_DOTPROD); }
static void build_avx_vnni(void) { build(BL_ISA_AVX_VNNI); }
static void build_amx(void) { build(BL_ISA_AMX); }
static void (*const builders[BL_ISA_COUNT])(void) = {
    [BL_ISA_SCALAR] = build_scalar,
    [BL_ISA_AVX2] = build_avx2,
    [BL_ISA_AVX512] = build_avx512,
    [BL_ISA_NEON] = build_neon,
    [BL_ISA_NEON_DOTPROD] = build_neon_dotprod,
    [BL_ISA_AVX_VNNI] = build_avx_vnni,
    [BL_ISA_AMX] = build_amx,
};

int bl_kernels_compiled(bl_isa isa) {
    return isa >= 0 && isa < BL_ISA_COUNT && compiled[isa] != NULL;
}

const bl_kernel_table *bl_kernels_for(bl_isa isa) {
    if (!bl_kernels_compiled(isa)) return NULL;
    pthread_once(&built[isa], builders[isa]);
    return &tables[isa];
}

bl_gemm_fn bl_kernel_pick(const bl_kernel_table *t, bl_type_id type, bl_act_format act,
                          bl_algo algo, size_t n) {
    const bl_kernel *k = t->k[type][act];
    size_t lut_from = t->auto_lut_min_rows[type][act];
    if (algo == BL_ALGO_AUTO && lut_from && n >= lut_from) algo = BL_ALGO_LUT;
    return n == 1 ? k[algo].gemv : k[algo].gemm;
}

bl_act_format bl_act_format_for(bl_kind kind, int act_bits) {
    switch (kind) {
    case BL_KIND_FLOAT: return BL_ACT_F32;
    case BL_KIND_QUANT: return BL_ACT_Q8;
    default: return act_bits == 16 ? BL_ACT_I16 : BL_ACT_I8;
    }
}
