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
#include "fp16.h"
#include "ops/attention.h"
#include "ops/attention_chunk.h"
#include "ops/vec.h"

#if defined(__F16C__)
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

static inline float dot(const float *restrict a, const float *restrict b, int n) {
    float acc[VEC_LANES] = {0};
    int i = 0;
    for (; i + VEC_LANES <= n; i += VEC_LANES)
        for (int j = 0; j < VEC_LANES; j++) acc[j] = fmaf(a[i + j], b[i + j], acc[j]);
    for (; i < n; i++) acc[i % VEC_LANES] = fmaf(a[i], b[i], acc[i % VEC_LANES]);
    return bl_vec_reduce(acc);
}

static inline void axpy(float *restrict y, float a, const float *restrict x, int n) {
    for (int i = 0; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}

/* Positions [start, visible_end) of the chunk that row r sees. */
static inline int32_t visible_end(const bl_attn_chunk *c, int r) {
    return c->pos[r] + 1 < c->end ? c->pos[r] + 1 : c->end;
}

static void scores(const bl_attn_chunk *c) {
    int hd = c->head_dim, g_count = c->group;
    int32_t last = visible_end(c, c->rows - 1);
    for (int32_t j = c->start; j < last; j++) {
        const float *k = row_f32(c->type_k, c->k + (size_t)j * c->k_stride, c->row, hd);
        for (int r = c->rows - 1; r >= 0 && c->pos[r] >= j; r--) {
            const float *q = c->q + (size_t)r * c->q_stride;
            float *s = c->scores + (size_t)r * g_count * BL_ATTN_CHUNK + (j - c->start);
            for (int g = 0; g < g_count; g++)
                s[(size_t)g * BL_ATTN_CHUNK] = dot(q + (size_t)g * hd, k, hd) * c->scale;
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
    for (int32_t j = c->start; j < last; j++) {
        const float *v = row_f32(c->type_v, c->v + (size_t)j * c->v_stride, c->row, hd);
        for (int r = c->rows - 1; r >= 0 && c->pos[r] >= j; r--)
            for (int g = 0; g < g_count; g++) {
                size_t i = (size_t)r * g_count + g;
                axpy(c->acc + i * hd, c->scores[i * BL_ATTN_CHUNK + (j - c->start)], v, hd);
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
