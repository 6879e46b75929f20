/* Element-wise ops: residual adds, per-column scales, gated activations. */
#include <math.h>

#include "ops.h"
#include "base/vec.h"

void bl_add(float *restrict x, const float *restrict y, size_t count) {
    for (size_t i = 0; i < count; i++) x[i] += y[i];
}

void bl_scale_columns(float *out, const float *x, const float *scale, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) out[r * cols + c] = x[r * cols + c] * scale[c];
}

BL_VECTOR_BODY void silu_gate_body(float *restrict gate, const float *restrict up, size_t count) {
    for (size_t i = 0; i < count; i++) gate[i] = gate[i] / (1.0f + bl_exp(-gate[i])) * up[i];
}
BL_VECTOR_VARIANTS(static, silu_gate,
                   (float *restrict gate, const float *restrict up, size_t count),
                   (gate, up, count))

BL_VECTOR_BODY void relu2_gate_body(float *restrict gate, const float *restrict up, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float r = (gate[i] + fabsf(gate[i])) * 0.5f; /* relu without a branch */
        gate[i] = r * r * up[i];
    }
}
BL_VECTOR_VARIANTS(static, relu2_gate,
                   (float *restrict gate, const float *restrict up, size_t count),
                   (gate, up, count))

void bl_gated_activation(float *gate, const float *up, size_t count, bl_ffn_activation act) {
    static void (*const gates[])(float *restrict, const float *restrict, size_t) = {
        [BL_FFN_SILU] = silu_gate,
        [BL_FFN_RELU2] = relu2_gate,
    };
    gates[act](gate, up, count);
}
