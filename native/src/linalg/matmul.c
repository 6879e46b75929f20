/* bl_matmul: one product on a caller's buffers, checked argument by argument,
 * run through the same linear path the model uses. */
#include "base/activations.h"
#include "base/error.h"
#include "linear.h"
#include "base/threadpool.h"

static int check_args(const char *type, const void *w, int64_t rows, int64_t cols,
                      const float *x, int64_t n, const float *y) {
    if (!w || !x || !y)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "matmul %s: weights, x or y is NULL",
                       type ? type : "?");
    if (rows <= 0 || cols <= 0 || n <= 0)
        return bl_fail(BL_ERR_INVALID_ARGUMENT,
                       "matmul %s: shapes must be positive (rows %lld, cols %lld, n %lld)", type,
                       (long long)rows, (long long)cols, (long long)n);
    return BL_OK;
}

/* The kernel API runs on the process's shared pool. */
static int engine_for(const bl_matmul_options *o, bl_engine *e) {
    int rc = o ? bl_engine_init(e, o->isa, o->threads, o->act_bits ? o->act_bits : 8, o->algo)
               : bl_engine_init(e, BL_ISA_AUTO, 0, 8, BL_ALGO_AUTO);
    return rc == BL_OK ? bl_pool_shared(e->threads, &e->pool) : rc;
}

int bl_matmul(const char *type, const void *w, int64_t w_bytes, int64_t rows, int64_t cols,
              const float *x, int64_t n, float *y, const bl_matmul_options *options) {
    int rc = check_args(type, w, rows, cols, x, n, y);
    if (rc != BL_OK) return rc;
    bl_type_id id;
    if ((rc = bl_type_find(type, &id)) != BL_OK) return rc;
    const bl_type_traits *t = bl_traits(id);
    if (w_bytes != bl_tensor_size(t, rows, cols))
        return bl_fail(BL_ERR_INVALID_ARGUMENT,
                       "matmul %s: a %lld x %lld matrix takes %lld bytes, got %lld", type,
                       (long long)rows, (long long)cols, (long long)bl_tensor_size(t, rows, cols),
                       (long long)w_bytes);
    bl_engine engine;
    if ((rc = engine_for(options, &engine)) != BL_OK) return rc;
    bl_weight weight;
    bl_weight_bind(&weight, id, w, rows, cols);
    if ((rc = bl_engine_check(&engine, &weight)) != BL_OK) return rc;

    bl_activations act = {0};
    rc = bl_activations_quantize(&act, bl_engine_format(&engine, &weight), x, (size_t)n,
                                 (size_t)cols, (size_t)bl_padded_cols(t, cols), engine.pool,
                                 engine.threads);
    if (rc != BL_OK) return rc;
    const bl_weight *ws[1] = {&weight};
    float *ys[1] = {y};
    rc = bl_linear(&engine, &act, ws, ys, 1);
    bl_activations_free(&act);
    return rc;
}
