#include "activations.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vec.h"
#include "error.h"
#include "threadpool.h"

/* The helpers inline into quantize_rows, which has one copy per x86 vector
 * width (vec.h): without that they stayed baseline SSE2 code, with a libm
 * roundf call per element. */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* The largest of the row's |x| bit patterns (sign cleared): for non-negative
 * floats an unsigned compare orders them as a float compare does, and an
 * integer max is exact in any order, so this vectorizes as one reduction
 * (vpmaxud), where GCC left the float compare's select as scalar code, 4% of
 * a prompt's time. NaN patterns lie above infinity's; skip_nan counts them as
 * zero (a select GCC does not vectorize, so only the rare row needs it). */
ALWAYS_INLINE uint32_t abs_bits_max(const float *x, size_t cols, int skip_nan) {
    uint32_t m = 0;
    for (size_t i = 0; i < cols; i++) {
        uint32_t a;
        memcpy(&a, x + i, sizeof a);
        a &= 0x7fffffffu;
        if (skip_nan) a = a > 0x7f800000u ? 0 : a;
        m = a > m ? a : m;
    }
    return m;
}

/* max |x| over the row, NaN ignored (as a float compare would): the plain
 * reduction, and only a row that holds a NaN again without it. */
ALWAYS_INLINE float row_absmax(const float *x, size_t cols) {
    uint32_t m = abs_bits_max(x, cols, 0);
    if (m > 0x7f800000u) m = abs_bits_max(x, cols, 1);
    float f;
    memcpy(&f, &m, sizeof f);
    return f;
}

/* rintf for |v| < 2^22 without a libm call: after adding 1.5 * 2^23 no fraction bits
 * are left, so the FPU's round-to-nearest-even does the rounding. */
static inline float round_half_even(float v) { return (v + 12582912.0f) - 12582912.0f; }

/* roundf (halves away from zero, llama.cpp's rule for q8 blocks) without a libm
 * call: v - truncf(v) is exact, and truncf is one instruction from SSE4.1 on. */
ALWAYS_INLINE float round_half_away(float v) {
    float t = truncf(v);
    return t + copysignf(fabsf(v - t) >= 0.5f ? 1.0f : 0.0f, v); /* a select, no branch */
}

/* BitNet rule: s = qmax / max(max|x|, 1e-5); q = clamp(round_half_even(x * s)). */
ALWAYS_INLINE void quantize_int_row(const float *x, size_t cols, int bits, void *dst,
                                    int32_t *sum, float *scale) {
    float qmax = bits == 8 ? 127.0f : 32767.0f;
    float lo = bits == 8 ? -128.0f : -32768.0f;
    float amax = row_absmax(x, cols);
    float s = qmax / (amax > 1e-5f ? amax : 1e-5f);
    int32_t total = 0;
    for (size_t i = 0; i < cols; i++) {
        float v = round_half_even(x[i] * s);
        v = v > lo ? v : lo; /* NaN becomes lo: converting NaN to int is undefined */
        v = v < qmax ? v : qmax;
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

ALWAYS_INLINE void quantize_q8_row(const float *x, size_t cols, size_t cols_padded,
                                   bl_q8_block *dst) {
    for (size_t b = 0; b < cols_padded / 32; b++) {
        float v[32];
        for (size_t i = 0; i < 32; i++) {
            size_t c = b * 32 + i;
            v[i] = c < cols ? x[c] : 0.0f;
        }
        float amax = row_absmax(v, 32);
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        float r[32];
        for (int i = 0; i < 32; i++) r[i] = round_half_away(v[i] * id);
        int32_t sum = 0;
        for (int i = 0; i < 32; i++) {
            dst[b].q[i] = (int8_t)r[i];
            sum += (int32_t)r[i];
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

static int reserve(bl_activations *act, size_t n, size_t row_bytes) {
    size_t bytes = row_bytes * n;
    if (bytes > act->capacity_bytes) {
        free(act->data);
        act->data = aligned_alloc(64, bytes);
        act->capacity_bytes = act->data ? bytes : 0;
    }
    if (n > act->capacity_rows) {
        free(act->sums);
        free(act->scales);
        act->sums = malloc(n * sizeof(int32_t));
        act->scales = malloc(n * sizeof(float));
        act->capacity_rows = act->sums && act->scales ? n : 0;
    }
    if (!act->data || !act->capacity_rows) {
        bl_activations_free(act);
        return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory for %zu activation rows of %zu bytes",
                       n, row_bytes);
    }
    return BL_OK;
}

typedef struct quantize_job {
    bl_activations *act;
    const float *x;
    size_t cols;
} quantize_job;

/* Rows [first, last) of act; every row is independent of the others. One copy
 * per x86 vector width (vec.h): the same operations, so the same integers. */
BL_VECTOR_BODY void quantize_rows_body(const quantize_job *job, size_t first, size_t last) {
    bl_activations *act = job->act;
    size_t cols = job->cols, row_bytes = act->row_bytes;
    size_t written = act->format == BL_ACT_Q8 ? row_data_bytes(act->format, act->cols)
                     : act->format == BL_ACT_I8 ? cols
                     : act->format == BL_ACT_I16 ? 2 * cols
                                                 : 4 * cols;
    for (size_t t = first; t < last; t++) {
        const float *row = job->x + t * cols;
        uint8_t *dst = act->data + t * row_bytes;
        act->sums[t] = 0;
        act->scales[t] = 1.0f;
        switch (act->format) {
        case BL_ACT_I8: quantize_int_row(row, cols, 8, dst, &act->sums[t], &act->scales[t]); break;
        case BL_ACT_I16:
            quantize_int_row(row, cols, 16, dst, &act->sums[t], &act->scales[t]);
            break;
        case BL_ACT_Q8: quantize_q8_row(row, cols, act->cols, (bl_q8_block *)dst); break;
        case BL_ACT_F32: memcpy(dst, row, cols * 4); break;
        default: break;
        }
        memset(dst + written, 0, row_bytes - written); /* padding columns must be zero */
    }
}
BL_VECTOR_VARIANTS(static, quantize_rows, (const quantize_job *job, size_t first, size_t last),
                   (job, first, last))

BL_VECTOR_BODY void bl_quantize_q8_blocks_body(const float *x, size_t rows, size_t cols,
                                               bl_q8_block *dst) {
    for (size_t r = 0; r < rows; r++)
        quantize_q8_row(x + r * cols, cols, cols, dst + r * cols / 32);
}
BL_VECTOR_VARIANTS(, bl_quantize_q8_blocks,
                   (const float *x, size_t rows, size_t cols, bl_q8_block *dst),
                   (x, rows, cols, dst))

static void quantize_slice(void *ctx, int index, int count) {
    const quantize_job *job = ctx;
    size_t n = job->act->n;
    quantize_rows(job, n * (size_t)index / (size_t)count, n * (size_t)(index + 1) / (size_t)count);
}

int bl_activations_quantize(bl_activations *act, bl_act_format format, const float *x, size_t n,
                            size_t cols, size_t cols_padded, bl_pool *pool,
                            int threads) {
    size_t row_bytes = (row_data_bytes(format, cols_padded) + 63) / 64 * 64;
    int rc = reserve(act, n, row_bytes);
    if (rc != BL_OK) return rc;
    act->format = format;
    act->n = n;
    act->cols = cols_padded;
    act->row_bytes = row_bytes;
    quantize_job job = {.act = act, .x = x, .cols = cols};
    if (threads <= 1 || n == 1) {
        quantize_rows(&job, 0, n);
        return BL_OK;
    }
    return bl_parallel_run(pool, threads < (int)n ? threads : (int)n, quantize_slice, &job);
}

void bl_activations_free(bl_activations *act) {
    free(act->data);
    free(act->sums);
    free(act->scales);
    memset(act, 0, sizeof *act);
}
