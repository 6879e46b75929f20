/* The body of the attention chunk kernel, compiled once per ISA by
 * kernels/<isa>/attention.c, which defines BL_ATTN_CHUNK_FN (the function's
 * name). Plain C that compilers vectorize; every ISA performs the same IEEE
 * operations in the same order (fmaf is one rounding everywhere, the build has
 * -ffp-contract=off, 16 explicit partial sums per dot product), so results
 * are bit-identical across ISAs. Only the exact conversions of cached rows to
 * float32 use ISA intrinsics. */
#include <math.h>
#include <string.h>

#include "bitllm.h"
#include "types/fp16.h"
#include "attention_chunk.h"
#include "base/vec.h"

#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#define Q8_BLOCK 32
#define Q8_BLOCK_BYTES 34

/* IEEE half to float, exact: the half's exponent and mantissa placed in a
 * float's and scaled by 2^112 (right for normals and subnormals), with
 * infinities and NaNs set apart; branch-free, so it vectorizes. */
static inline float half_to_float(uint16_t h) {
    uint32_t magnitude = h & 0x7fffu;
    float f = bl_bits_f32(magnitude << 13) * 0x1p112f;
    uint32_t bits = magnitude >= 0x7c00u ? 0x7f800000u | ((magnitude & 0x3ffu) << 13)
                                          : bl_f32_bits(f);
    return bl_bits_f32(bits | ((uint32_t)(h & 0x8000u) << 16));
}

static void f16_row(const uint8_t *src, float *restrict dst, int n) {
    int i = 0;
#if defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 2 * i))));
#endif
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = half_to_float(h);
    }
}

static void q8_0_row(const uint8_t *src, float *restrict dst, int n) {
    for (int b = 0; b < n / Q8_BLOCK; b++, src += Q8_BLOCK_BYTES, dst += Q8_BLOCK) {
        uint16_t dh;
        memcpy(&dh, src, 2);
        float d = bl_f16_to_f32(dh);
        const int8_t *q = (const int8_t *)(src + 2);
        for (int i = 0; i < Q8_BLOCK; i++) dst[i] = (float)q[i] * d; /* exact */
    }
}

/* Row j of a cached head as float32: in place for f32, else converted into buf. */
static inline const float *row_f32(int type, const uint8_t *src, float *buf, int n) {
    switch (type) {
    case BL_KV_F16: f16_row(src, buf, n); return buf;
    case BL_KV_Q8_0: q8_0_row(src, buf, n); return buf;
    default: return (const float *)src;
    }
}

#if defined(__AVX2__) && defined(__FMA__)
/* The 16 partial sums of a dot product live in two registers, lanes 0-7 and 8-15,
 * and are reduced in bl_vec_reduce's order: 8 + 8, 4 + 4, 2 + 2, 1 + 1. */
static inline float reduce16(__m256 lo, __m256 hi) {
    __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}
#endif

/* dot(a, b[p]) for the BL_ATTN_STEP rows b[p] = b + p * n, a read once: per row, 16
 * partial sums of fused multiply-adds (element i into sum i % 16), then bl_vec_reduce. */
static inline void dot_step(const float *restrict a, const float *restrict b, int steps, int n,
                            float out[BL_ATTN_STEP]) {
    int i = 0;
#if defined(__AVX2__) && defined(__FMA__)
    if (n % VEC_LANES == 0) {
        __m256 lo[BL_ATTN_STEP], hi[BL_ATTN_STEP];
        for (int p = 0; p < BL_ATTN_STEP; p++) lo[p] = hi[p] = _mm256_setzero_ps();
        for (; i < n; i += VEC_LANES) {
            __m256 a_lo = _mm256_loadu_ps(a + i), a_hi = _mm256_loadu_ps(a + i + 8);
            for (int p = 0; p < steps; p++) {
                const float *bp = b + (size_t)p * n + i;
                lo[p] = _mm256_fmadd_ps(a_lo, _mm256_loadu_ps(bp), lo[p]);
                hi[p] = _mm256_fmadd_ps(a_hi, _mm256_loadu_ps(bp + 8), hi[p]);
            }
        }
        for (int p = 0; p < steps; p++) out[p] = reduce16(lo[p], hi[p]);
        return;
    }
#endif
    for (int p = 0; p < steps; p++) {
        const float *bp = b + (size_t)p * n;
        float acc[VEC_LANES] = {0};
        for (i = 0; i + VEC_LANES <= n; i += VEC_LANES)
            for (int j = 0; j < VEC_LANES; j++) acc[j] = fmaf(a[i + j], bp[i + j], acc[j]);
        for (; i < n; i++) acc[i % VEC_LANES] = fmaf(a[i], bp[i], acc[i % VEC_LANES]);
        out[p] = bl_vec_reduce(acc);
    }
}

/* y += w[p] * x[p] for p = 0 .. steps - 1 in turn (x[p] = x + p * n), one fused
 * multiply-add per position and element; y is loaded and stored once per step. */
static inline void axpy_step(float *restrict y, const float *w, int steps,
                             const float *restrict x, int n) {
    int i = 0;
#if defined(__AVX2__) && defined(__FMA__)
    __m256 wv[BL_ATTN_STEP];
    for (int p = 0; p < steps; p++) wv[p] = _mm256_set1_ps(w[p]);
    for (; i + 8 <= n; i += 8) {
        __m256 sum = _mm256_loadu_ps(y + i);
        for (int p = 0; p < steps; p++)
            sum = _mm256_fmadd_ps(wv[p], _mm256_loadu_ps(x + (size_t)p * n + i), sum);
        _mm256_storeu_ps(y + i, sum);
    }
#endif
    for (; i < n; i++) {
        float sum = y[i];
        for (int p = 0; p < steps; p++) sum = fmaf(w[p], x[(size_t)p * n + i], sum);
        y[i] = sum;
    }
}

/* Positions [start, visible_end) of the chunk that row r sees. */
static inline int32_t visible_end(const bl_attn_chunk *c, int r) {
    return c->pos[r] + 1 < c->end ? c->pos[r] + 1 : c->end;
}

/* Rows j .. j + steps - 1 of a cached head as float32, one after another in buf. */
static const float *rows_f32(int type, const uint8_t *src, size_t stride, int steps, float *buf,
                             int n) {
    if (type == BL_KV_F32 && stride == (size_t)n * sizeof(float)) return (const float *)src;
    for (int p = 0; p < steps; p++) {
        const float *row = row_f32(type, src + (size_t)p * stride, buf + (size_t)p * n, n);
        if (row != buf + (size_t)p * n) memcpy(buf + (size_t)p * n, row, (size_t)n * sizeof *row);
    }
    return buf;
}

static void scores(const bl_attn_chunk *c) {
    int hd = c->head_dim, g_count = c->group;
    int32_t last = visible_end(c, c->rows - 1);
    for (int32_t j = c->start; j < last; j += BL_ATTN_STEP) {
        int steps = last - j < BL_ATTN_STEP ? last - j : BL_ATTN_STEP;
        const float *k =
            rows_f32(c->type_k, c->k + (size_t)j * c->k_stride, c->k_stride, steps, c->row, hd);
        for (int r = c->rows - 1; r >= 0 && c->pos[r] >= j; r--) {
            const float *q = c->q + (size_t)r * c->q_stride;
            float *s = c->scores + (size_t)r * g_count * BL_ATTN_CHUNK + (j - c->start);
            int seen = c->pos[r] - j + 1 < steps ? c->pos[r] - j + 1 : steps;
            for (int g = 0; g < g_count; g++) {
                float *sg = s + (size_t)g * BL_ATTN_CHUNK, dots[BL_ATTN_STEP];
                dot_step(q + (size_t)g * hd, k, seen, hd, dots);
                for (int p = 0; p < seen; p++) sg[p] = dots[p] * c->scale;
            }
        }
    }
}

/* Scores to e^(s - m) in place; m and l out. */
static void softmax(const bl_attn_chunk *c, int i, int32_t n) {
    float *s = c->scores + (size_t)i * BL_ATTN_CHUNK;
    float max = s[0];
    for (int32_t j = 1; j < n; j++) max = s[j] > max ? s[j] : max;
    for (int32_t j = 0; j < n; j++) s[j] = bl_exp(s[j] - max);
    c->m[i] = max;
    c->l[i] = bl_vec_sum(s, (size_t)n);
}

static void weighted_values(const bl_attn_chunk *c) {
    int hd = c->head_dim, g_count = c->group;
    int32_t last = visible_end(c, c->rows - 1);
    for (int r = 0; r < c->rows; r++)
        if (c->pos[r] >= c->start)
            memset(c->acc + (size_t)r * g_count * hd, 0, (size_t)g_count * hd * sizeof(float));
    for (int32_t j = c->start; j < last; j += BL_ATTN_STEP) {
        int steps = last - j < BL_ATTN_STEP ? last - j : BL_ATTN_STEP;
        const float *v =
            rows_f32(c->type_v, c->v + (size_t)j * c->v_stride, c->v_stride, steps, c->row, hd);
        for (int r = c->rows - 1; r >= 0 && c->pos[r] >= j; r--) {
            int seen = c->pos[r] - j + 1 < steps ? c->pos[r] - j + 1 : steps;
            for (int g = 0; g < g_count; g++) {
                size_t i = (size_t)r * g_count + g;
                const float *w = c->scores + i * BL_ATTN_CHUNK + (j - c->start);
                axpy_step(c->acc + i * hd, w, seen, v, hd);
            }
        }
    }
}

void BL_ATTN_CHUNK_FN(const bl_attn_chunk *c) {
    scores(c);
    for (int r = 0; r < c->rows; r++) {
        if (c->pos[r] < c->start) continue;
        int32_t n = visible_end(c, r) - c->start;
        for (int g = 0; g < c->group; g++) softmax(c, r * c->group + g, n);
    }
    weighted_values(c);
}
