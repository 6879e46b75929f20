#include "activations.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static float row_absmax(const float *x, size_t cols) {
    float m = 0.0f;
    for (size_t i = 0; i < cols; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

/* BitNet rule: s = qmax / max(max|x|, 1e-5); q = clamp(rint(x * s)), rint
 * rounding half to even (the default FP environment). */
static void quantize_int_row(const float *x, size_t cols, int bits, void *dst, int32_t *sum,
                             float *scale) {
    float qmax = bits == 8 ? 127.0f : 32767.0f;
    float lo = bits == 8 ? -128.0f : -32768.0f;
    float s = qmax / fmaxf(row_absmax(x, cols), 1e-5f);
    int32_t total = 0;
    for (size_t i = 0; i < cols; i++) {
        float v = fminf(fmaxf(rintf(x[i] * s), lo), qmax);
        int32_t q = (int32_t)v;
        total += q;
        if (bits == 8)
            ((int8_t *)dst)[i] = (int8_t)q;
        else
            ((int16_t *)dst)[i] = (int16_t)q;
    }
    *sum = total;
    *scale = s;
}

static void quantize_q8_row(const float *x, size_t cols, size_t cols_padded, bl_q8_block *dst) {
    for (size_t b = 0; b < cols_padded / 32; b++) {
        float v[32];
        for (size_t i = 0; i < 32; i++) {
            size_t c = b * 32 + i;
            v[i] = c < cols ? x[c] : 0.0f;
        }
        float amax = row_absmax(v, 32);
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        int32_t sum = 0;
        for (int i = 0; i < 32; i++) {
            dst[b].q[i] = (int8_t)roundf(v[i] * id);
            sum += dst[b].q[i];
        }
        dst[b].d = d;
        dst[b].sum = sum;
    }
}

static size_t row_data_bytes(bl_act_format format, size_t cols_padded) {
    switch (format) {
    case BL_ACT_I8: return cols_padded;
    case BL_ACT_I16: return 2 * cols_padded;
    case BL_ACT_F32: return 4 * cols_padded;
    default: return cols_padded / 32 * sizeof(bl_q8_block);
    }
}

int bl_activations_make(bl_act_format format, const float *x, size_t n, size_t cols,
                        size_t cols_padded, bl_activations *act) {
    memset(act, 0, sizeof *act);
    act->format = format;
    act->n = n;
    act->cols = cols_padded;
    act->row_bytes = (row_data_bytes(format, cols_padded) + 63) / 64 * 64;
    act->data = aligned_alloc(64, act->row_bytes * n);
    act->sums = calloc(n, sizeof(int32_t));
    act->scales = calloc(n, sizeof(float));
    if (!act->data || !act->sums || !act->scales) {
        bl_activations_free(act);
        return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory for %zu x %zu activations", n, cols);
    }
    memset(act->data, 0, act->row_bytes * n);
    for (size_t t = 0; t < n; t++) {
        const float *row = x + t * cols;
        uint8_t *dst = act->data + t * act->row_bytes;
        switch (format) {
        case BL_ACT_I8: quantize_int_row(row, cols, 8, dst, &act->sums[t], &act->scales[t]); break;
        case BL_ACT_I16:
            quantize_int_row(row, cols, 16, dst, &act->sums[t], &act->scales[t]);
            break;
        case BL_ACT_Q8: quantize_q8_row(row, cols, cols_padded, (bl_q8_block *)dst); break;
        case BL_ACT_F32: memcpy(dst, row, cols * 4); break;
        default: break;
        }
    }
    return BL_OK;
}

void bl_activations_free(bl_activations *act) {
    free(act->data);
    free(act->sums);
    free(act->scales);
    memset(act, 0, sizeof *act);
}
