/* Rotary position embeddings, computed as HF transformers does for llama:
 * float32 inverse frequencies theta^(-2i/n_rot), angles pos * inv_freq. */
#include <math.h>

#include "ops.h"

void bl_rope_angles(float *cos_out, float *sin_out, const int32_t *positions, size_t n,
                    int n_rot, float theta, float factor) {
    int half = n_rot / 2;
    for (size_t t = 0; t < n; t++) {
        for (int i = 0; i < half; i++) {
            float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)n_rot) / factor;
            float angle = (float)positions[t] * inv_freq;
            cos_out[t * (size_t)half + (size_t)i] = cosf(angle);
            sin_out[t * (size_t)half + (size_t)i] = sinf(angle);
        }
    }
}

void bl_rope(float *x, size_t n, size_t stride, int n_heads, int head_dim, int n_rot,
             const float *cos, const float *sin, bl_rope_style style) {
    int half = n_rot / 2;
    /* pair i joins dimensions first(i) and first(i) + partner */
    int step = style == BL_ROPE_NEOX ? 1 : 2, partner = style == BL_ROPE_NEOX ? half : 1;
    for (size_t t = 0; t < n; t++) {
        const float *c = cos + t * (size_t)half, *s = sin + t * (size_t)half;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + t * stride + (size_t)h * (size_t)head_dim;
            for (int i = 0; i < half; i++) {
                float *a = v + i * step, *b = a + partner;
                float a0 = *a, b0 = *b;
                *a = a0 * c[i] - b0 * s[i];
                *b = b0 * c[i] + a0 * s[i];
            }
        }
    }
}
