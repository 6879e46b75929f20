/* Scalar kernels for the float types (f32, f16, bf16) with float activations. */
#include <string.h>

#include "../../types/fp16.h"
#include "../kernels.h"

typedef float (*load_fn)(const uint8_t *w, size_t i);

static float load_f32(const uint8_t *w, size_t i) {
    float v;
    memcpy(&v, w + 4 * i, 4);
    return v;
}
static float load_f16(const uint8_t *w, size_t i) {
    uint16_t h;
    memcpy(&h, w + 2 * i, 2);
    return bl_f16_to_f32(h);
}
static float load_bf16(const uint8_t *w, size_t i) {
    uint16_t h;
    memcpy(&h, w + 2 * i, 2);
    return bl_bf16_to_f32(h);
}

static void float_gemm(const bl_gemm_task *t, load_fn load) {
    const bl_activations *x = t->x;
    float *out = t->out;
    for (size_t r = 0; r < t->rows; r++) {
        const uint8_t *w = t->w + r * t->w_row_bytes;
        for (size_t n = 0; n < x->n; n++) {
            const float *xr = (const float *)(x->data + n * x->row_bytes);
            float acc = 0.0f;
            for (size_t c = 0; c < t->cols; c++) acc += load(w, c) * xr[c];
            out[n * t->out_stride + r] = acc;
        }
    }
}

/* GEMV and GEMM alike. */
void bl_gemm_f32_f32_mad__scalar(const bl_gemm_task *t) { float_gemm(t, load_f32); }
void bl_gemm_f16_f32_mad__scalar(const bl_gemm_task *t) { float_gemm(t, load_f16); }
void bl_gemm_bf16_f32_mad__scalar(const bl_gemm_task *t) { float_gemm(t, load_bf16); }
