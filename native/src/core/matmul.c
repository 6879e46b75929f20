/* bl_matmul: quantize the activations once, split the weight rows across
 * threads, run the kernel the dispatch table names, scale integer results. */
#include <stdlib.h>

#include "../kernels/kernels.h"
#include "activations.h"
#include "error.h"
#include "threadpool.h"

/* Rows handed to a thread are a multiple of this, so SIMD kernels that work
 * on several rows at once see whole groups except at the very end. */
#define ROW_GRAIN 16

typedef struct matmul_job {
    const bl_type_traits *type;
    bl_gemm_fn kernel;
    const uint8_t *w;
    size_t rows, w_row_bytes;
    const float *row_scale; /* ternary/sign only */
    const bl_activations *x;
    int32_t *dots;          /* integer kinds: [n, rows] before scaling */
    float *y;               /* [n, rows] */
} matmul_job;

static void run_slice(void *ctx, int index, int count) {
    matmul_job *job = ctx;
    size_t groups = (job->rows + ROW_GRAIN - 1) / ROW_GRAIN;
    size_t first = groups * (size_t)index / (size_t)count * ROW_GRAIN;
    size_t last = groups * (size_t)(index + 1) / (size_t)count * ROW_GRAIN;
    if (last > job->rows) last = job->rows;
    if (first >= last) return;
    bl_gemm_task task = {
        .w = job->w + first * job->w_row_bytes,
        .w_row_bytes = job->w_row_bytes,
        .rows = last - first,
        .cols = job->x->cols,
        .x = job->x,
        .out = job->dots ? (void *)(job->dots + first) : (void *)(job->y + first),
        .out_stride = job->rows,
    };
    job->kernel(&task);
    if (!job->dots) return;
    for (size_t t = 0; t < job->x->n; t++) {
        float s = job->x->scales[t];
        for (size_t r = first; r < last; r++)
            job->y[t * job->rows + r] = (float)job->dots[t * job->rows + r] * job->row_scale[r] / s;
    }
}

static int check_args(const char *type, const void *w, int64_t rows, int64_t cols,
                      const float *x, int64_t n, const float *y, const bl_matmul_options *o) {
    if (!w || !x || !y)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "matmul %s: weights, x or y is NULL",
                       type ? type : "?");
    if (rows <= 0 || cols <= 0 || n <= 0)
        return bl_fail(BL_ERR_INVALID_ARGUMENT,
                       "matmul %s: shapes must be positive (rows %lld, cols %lld, n %lld)", type,
                       (long long)rows, (long long)cols, (long long)n);
    if (o && o->act_bits != 8 && o->act_bits != 16 && o->act_bits != 0)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "matmul %s: act_bits must be 8 or 16, got %d",
                       type, o->act_bits);
    if (o && (o->algo < BL_ALGO_AUTO || o->algo > BL_ALGO_LUT))
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "matmul %s: unknown algo %d", type, o->algo);
    return BL_OK;
}

static int pick_isa(const bl_matmul_options *o) {
    int isa = o ? o->isa : BL_ISA_AUTO;
    if (isa == BL_ISA_AUTO) return bl_isa_default();
    if (!bl_isa_supported(isa))
        return bl_fail(BL_ERR_UNSUPPORTED, "ISA %s is not available on this CPU or in this build",
                       bl_isa_name(isa));
    return isa;
}

int bl_matmul(const char *type, const void *w, int64_t w_bytes, int64_t rows, int64_t cols,
              const float *x, int64_t n, float *y, const bl_matmul_options *options) {
    int rc = check_args(type, w, rows, cols, x, n, y, options);
    if (rc != BL_OK) return rc;
    bl_type_id id;
    if ((rc = bl_type_find(type, &id)) != BL_OK) return rc;
    const bl_type_traits *t = bl_traits(id);
    if (w_bytes != bl_tensor_size(t, rows, cols))
        return bl_fail(BL_ERR_INVALID_ARGUMENT,
                       "matmul %s: a %lld x %lld matrix takes %lld bytes, got %lld", type,
                       (long long)rows, (long long)cols, (long long)bl_tensor_size(t, rows, cols),
                       (long long)w_bytes);
    int isa = pick_isa(options);
    if (isa < 0) return isa;
    int act_bits = options && options->act_bits ? options->act_bits : 8;
    int algo = options ? options->algo : BL_ALGO_AUTO;
    bl_act_format format = bl_act_format_for(t->info.kind, act_bits);
    const bl_kernel *k = &bl_kernels_for((bl_isa)isa)->k[id][format][algo];
    bl_gemm_fn kernel = n == 1 ? k->gemv : k->gemm;
    if (!kernel)
        return bl_fail(BL_ERR_UNSUPPORTED, "matmul %s: no %s kernel for %d-bit activations", type,
                       algo == BL_ALGO_LUT ? "lookup-table" : "multiply-add", act_bits);

    bl_activations act;
    rc = bl_activations_make(format, x, (size_t)n, (size_t)cols, (size_t)bl_padded_cols(t, cols),
                             &act);
    if (rc != BL_OK) return rc;
    int integer = t->info.kind == BL_KIND_TERNARY || t->info.kind == BL_KIND_SIGN;
    size_t row_bytes = (size_t)bl_row_data_bytes(t, cols);
    matmul_job job = {
        .type = t,
        .kernel = kernel,
        .w = w,
        .rows = (size_t)rows,
        .w_row_bytes = row_bytes,
        .row_scale = integer ? (const float *)((const uint8_t *)w + rows * row_bytes) : NULL,
        .x = &act,
        .dots = integer ? malloc((size_t)(n * rows) * sizeof(int32_t)) : NULL,
        .y = y,
    };
    if (integer && !job.dots) {
        bl_activations_free(&act);
        return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory for %lld x %lld results",
                       (long long)n, (long long)rows);
    }
    int threads = options && options->threads > 0 ? options->threads : bl_cpu_count();
    rc = bl_parallel_run(threads, run_slice, &job);
    free(job.dots);
    bl_activations_free(&act);
    return rc;
}
