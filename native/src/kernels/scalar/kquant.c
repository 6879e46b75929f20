/* Scalar kernels for the k-quants (q4_k, q5_k, q6_k; types/q*_k.c) against
 * 32-blocks of int8 activations. Each 32-weight sub-block gives an exact
 * integer dot (q6_k: its two 16-weight halves weighted by their int8 scales;
 * q4_k/q5_k: the 6-bit scale times the code dot, and the 6-bit min times the
 * activation block's sum), scaled to float once per sub-block. */
#include "../../types/kquant_common.h"
#include "../kernels.h"

typedef float (*superblock_dot_fn)(const uint8_t *w, const bl_q8_block *x);

static float q6_k_superblock_dot(const uint8_t *w, const bl_q8_block *x) {
    const int8_t *scales = (const int8_t *)(w + 192);
    float d = bl_f16_load(w + 208), acc = 0.0f;
    for (int g = 0; g < 8; g++) {
        int h = g / 4, k = g % 4;
        const uint8_t *low = w + 64 * h + 32 * (k % 2), *high = w + 128 + 32 * h;
        int32_t half[2] = {0, 0};
        for (int j = 0; j < 32; j++) {
            int q = (((low[j] >> (4 * (k / 2))) & 15) | ((high[j] >> (2 * k)) & 3) << 4) - 32;
            half[j / 16] += q * x[g].q[j];
        }
        int32_t dot = scales[2 * g] * half[0] + scales[2 * g + 1] * half[1];
        acc += d * x[g].d * (float)dot;
    }
    return acc;
}

static float asym_superblock_dot(const uint8_t *w, const bl_q8_block *x, int fifth_bit) {
    float d = bl_f16_load(w), dmin = bl_f16_load(w + 2), acc = 0.0f;
    const uint8_t *high = w + 16, *codes = w + (fifth_bit ? 48 : 16);
    uint8_t scale[8], min[8];
    bl_kq_scales_mins(w + 4, scale, min);
    for (int g = 0; g < 8; g++) {
        int32_t dot = 0;
        for (int j = 0; j < 32; j++) {
            int q = (codes[32 * (g / 2) + j] >> (4 * (g % 2))) & 15;
            if (fifth_bit) q |= ((high[j] >> g) & 1) << 4;
            dot += q * x[g].q[j];
        }
        acc += x[g].d * (d * (float)(scale[g] * dot) - dmin * (float)(min[g] * x[g].sum));
    }
    return acc;
}

static float q4_k_superblock_dot(const uint8_t *w, const bl_q8_block *x) {
    return asym_superblock_dot(w, x, 0);
}
static float q5_k_superblock_dot(const uint8_t *w, const bl_q8_block *x) {
    return asym_superblock_dot(w, x, 1);
}

static void kquant_gemm(const bl_gemm_task *t, size_t block_bytes, superblock_dot_fn dot) {
    const bl_activations *x = t->x;
    float *out = t->out;
    size_t nblocks = t->cols / BL_QK_K;
    for (size_t r = 0; r < t->rows; r++) {
        const uint8_t *w = t->w + r * t->w_row_bytes;
        for (size_t n = 0; n < x->n; n++) {
            const bl_q8_block *xb = (const bl_q8_block *)(x->data + n * x->row_bytes);
            float acc = 0.0f;
            for (size_t b = 0; b < nblocks; b++) acc += dot(w + b * block_bytes, xb + 8 * b);
            out[n * t->out_stride + r] = acc;
        }
    }
}

void bl_gemm_q4_k_q8_mad__scalar(const bl_gemm_task *t) {
    kquant_gemm(t, 144, q4_k_superblock_dot);
}
void bl_gemm_q5_k_q8_mad__scalar(const bl_gemm_task *t) {
    kquant_gemm(t, 176, q5_k_superblock_dot);
}
void bl_gemm_q6_k_q8_mad__scalar(const bl_gemm_task *t) {
    kquant_gemm(t, 210, q6_k_superblock_dot);
}
