/* Scalar ternary kernels (bt2, bt1): the portable reference every SIMD path
 * must match bit for bit. Each block is decoded to codes c = trit + 1, and
 * dot = sum(c * x) - sum(x). */
#include "../kernels.h"

/* Decodes one block into codes 0..2, in column order. */
typedef void (*decode_block_fn)(const uint8_t *block, uint8_t *codes);

static void decode_bt2(const uint8_t *block, uint8_t *codes) {
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 64; j++) codes[k * 64 + j] = (block[j] >> (2 * k)) & 3;
}

static void decode_bt1(const uint8_t *block, uint8_t *codes) {
    static const unsigned pow3[5] = {1, 3, 9, 27, 81};
    for (int k = 0; k < 5; k++)
        for (int j = 0; j < 64; j++) codes[k * 64 + j] = (uint8_t)((((block[j] * pow3[k]) & 255u) * 3) >> 8);
}

static void ternary_gemm(const bl_gemm_task *t, decode_block_fn decode, size_t block_weights,
                         size_t block_bytes) {
    const bl_activations *x = t->x;
    int32_t *out = t->out;
    uint8_t codes[320];
    for (size_t r = 0; r < t->rows; r++) {
        const uint8_t *w = t->w + r * t->w_row_bytes;
        for (size_t n = 0; n < x->n; n++) {
            const uint8_t *xrow = x->data + n * x->row_bytes;
            int64_t acc = 0;
            for (size_t b = 0; b < t->cols / block_weights; b++) {
                decode(w + b * block_bytes, codes);
                size_t base = b * block_weights;
                if (x->format == BL_ACT_I8) {
                    const int8_t *xi = (const int8_t *)xrow + base;
                    for (size_t i = 0; i < block_weights; i++) acc += codes[i] * xi[i];
                } else {
                    const int16_t *xi = (const int16_t *)xrow + base;
                    for (size_t i = 0; i < block_weights; i++) acc += codes[i] * xi[i];
                }
            }
            out[n * t->out_stride + r] = (int32_t)(acc - x->sums[n]);
        }
    }
}

/* One kernel per activation format, GEMV and GEMM alike (ternary_gemm reads x->format). */
void bl_gemm_bt2_i8_mad__scalar(const bl_gemm_task *t) { ternary_gemm(t, decode_bt2, 256, 64); }
void bl_gemm_bt2_i16_mad__scalar(const bl_gemm_task *t) { ternary_gemm(t, decode_bt2, 256, 64); }
void bl_gemm_bt1_i8_mad__scalar(const bl_gemm_task *t) { ternary_gemm(t, decode_bt1, 320, 64); }
void bl_gemm_bt1_i16_mad__scalar(const bl_gemm_task *t) { ternary_gemm(t, decode_bt1, 320, 64); }
