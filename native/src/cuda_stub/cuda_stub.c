/* The CUDA entries of bitllm.h and the CUDA backend row in a library built
 * without CUDA: each one reports that, so callers get a clear error instead
 * of a missing symbol. */
#include "base/error.h"
#include "../model/backend.h"

static int no_cuda(void) {
    return bl_fail(BL_ERR_UNSUPPORTED,
                   "cuda: this bitllm library was built without CUDA (nvcc was not found, or "
                   "BITLLM_CUDA=OFF); rebuild with the CUDA toolkit installed");
}

int bl_cuda_available(void) {
    no_cuda();
    return 0;
}

int bl_cuda_matmul(const char *type, const void *w, int64_t w_bytes, int64_t rows, int64_t cols,
                   const float *x, int64_t n, float *y, int act_bits) {
    return no_cuda();
}

int bl_cuda_bench_matmul(const char *type, const void *w, int64_t w_bytes, int64_t rows,
                         int64_t cols, int64_t n, int act_bits, int copies, int iters,
                         double *seconds_per_call) {
    return no_cuda();
}

int bl_cuda_bench_copy(int64_t bytes, int iters, double *seconds_per_copy) { return no_cuda(); }

static int no_cuda_model(bl_model *m) { return no_cuda(); }
static void nothing_to_release(bl_model *m) {}
static int no_cuda_context(bl_context *c) { return no_cuda(); }
static void no_context_to_release(bl_context *c) {}
static int no_cuda_forward(bl_context *c, const int32_t *tokens, int32_t n, int32_t pos,
                           float *logits, int all_logits) {
    return no_cuda();
}

const bl_backend bl_backend_cuda = {
    .name = "cuda",
    .max_batch = 1,
    .model_init = no_cuda_model,
    .model_release = nothing_to_release,
    .context_init = no_cuda_context,
    .context_release = no_context_to_release,
    .forward = no_cuda_forward,
};
