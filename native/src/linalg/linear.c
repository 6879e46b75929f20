/* Linear layers: split weight rows over threads, run the kernel the table
 * names, and turn integer dot products into floats where they lie. */
#include "linear.h"

#include <string.h>

#include "base/error.h"
#include "base/threadpool.h"

/* Rows handed to a thread are a multiple of this, so SIMD kernels that work
 * on several rows at once see whole groups except at the very end. */
#define ROW_GRAIN 16

void bl_weight_bind(bl_weight *w, bl_type_id type, const void *data, int64_t rows, int64_t cols) {
    const bl_type_traits *t = bl_traits(type);
    w->type = type;
    w->traits = t;
    w->data = data;
    w->rows = rows;
    w->cols = cols;
    w->row_bytes = (size_t)bl_row_data_bytes(t, cols);
    w->row_scale =
        t->info.row_scale ? (const float *)(w->data + (size_t)rows * w->row_bytes) : NULL;
}

int bl_engine_init(bl_engine *e, int isa, int threads, int act_bits, int algo) {
    if (act_bits != 8 && act_bits != 16)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "act_bits must be 8 or 16, got %d", act_bits);
    if (algo < BL_ALGO_AUTO || algo > BL_ALGO_LUT)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "unknown algo %d", algo);
    if (isa == BL_ISA_AUTO) {
        isa = bl_isa_default();
        if (isa < 0) return isa;
    } else if (!bl_isa_supported(isa)) {
        return bl_fail(BL_ERR_UNSUPPORTED, "ISA %s is not available on this CPU or in this build",
                       bl_isa_name(isa));
    }
    e->kernels = bl_kernels_for((bl_isa)isa);
    e->isa = isa;
    if (threads > BL_MAX_THREADS)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "threads must be at most %d, got %d",
                       BL_MAX_THREADS, threads);
    e->threads = threads > 0 ? threads : bl_cpu_count();
    e->pool = NULL;
    e->act_bits = act_bits;
    e->algo = algo;
    return BL_OK;
}

bl_act_format bl_engine_format(const bl_engine *e, const bl_weight *w) {
    return bl_act_format_for(w->traits->info.kind, e->act_bits);
}

int bl_engine_check(const bl_engine *e, const bl_weight *w) {
    const bl_kernel *k = &e->kernels->k[w->type][bl_engine_format(e, w)][e->algo];
    if (k->gemv && k->gemm) return BL_OK;
    return bl_fail(BL_ERR_UNSUPPORTED, "no %s kernel for %s weights with %d-bit activations on %s",
                   e->algo == BL_ALGO_LUT ? "lookup-table" : "multiply-add", w->traits->info.name,
                   e->act_bits, bl_isa_name(e->isa));
}

typedef struct linear_job {
    const bl_engine *e;
    const bl_activations *x;
    const bl_weight *const *w;
    float *const *y;
    int count;
} linear_job;

/* Integer kinds: the kernel left int32 dots in y's storage; y = dot * row_scale / s. */
static void scale_dots(const bl_weight *w, const bl_activations *x, float *y, size_t first,
                       size_t last) {
    size_t rows = (size_t)w->rows;
    for (size_t t = 0; t < x->n; t++) {
        float s = x->scales[t];
        float *row = y + t * rows;
        for (size_t r = first; r < last; r++) {
            int32_t dot;
            memcpy(&dot, row + r, sizeof dot);
            row[r] = (float)dot * w->row_scale[r] / s;
        }
    }
}

static void run_slice(void *ctx, int index, int count) {
    const linear_job *job = ctx;
    for (int i = 0; i < job->count; i++) {
        const bl_weight *w = job->w[i];
        size_t rows = (size_t)w->rows;
        size_t groups = (rows + ROW_GRAIN - 1) / ROW_GRAIN;
        size_t first = groups * (size_t)index / (size_t)count * ROW_GRAIN;
        size_t last = groups * (size_t)(index + 1) / (size_t)count * ROW_GRAIN;
        if (last > rows) last = rows;
        if (first >= last) continue;
        bl_gemm_fn kernel = bl_kernel_pick(job->e->kernels, w->type, job->x->format,
                                           job->e->algo, job->x->n);
        bl_gemm_task task = {
            .w = w->data + first * w->row_bytes,
            .w_row_bytes = w->row_bytes,
            .rows = last - first,
            .cols = job->x->cols,
            .x = job->x,
            .out = job->y[i] + first,
            .out_stride = rows,
        };
        kernel(&task);
        if (w->row_scale) scale_dots(w, job->x, job->y[i], first, last);
    }
}

int bl_linear(const bl_engine *e, const bl_activations *x, const bl_weight *const *w,
              float *const *y, int count) {
    linear_job job = {.e = e, .x = x, .w = w, .y = y, .count = count};
    return bl_parallel_run(e->pool, e->threads, run_slice, &job);
}
