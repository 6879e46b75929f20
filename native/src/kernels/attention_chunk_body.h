/* The body of the attention chunk kernel, compiled once per ISA by
 * kernels/<isa>/attention.c, which defines BL_ATTN_CHUNK_FN (the function's
 * name) and, for NEON, BL_ATTN_NEON. Plain C with one vector path per ISA for
 * the four inner loops (K/V rows to float32, dot products, y += w x); every
 * ISA performs the same IEEE operations in the same order (fmaf is one
 * rounding everywhere, the build has -ffp-contract=off, 16 explicit partial
 * sums per dot product, reduced 8 + 8, 4 + 4, 2 + 2, 1 + 1), so results are
 * bit-identical across ISAs. */
#include <math.h>
#include <string.h>

#include "bitllm.h"
#include "types/fp16.h"
#include "types/quant_blocks.h"
#include "attention_chunk.h"
#include "base/vec.h"

#if defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
#define ATTN_AVX512 1
#endif
#if defined(__AVX2__) && defined(__FMA__)
#define ATTN_AVX2 1
#include <immintrin.h>
#elif defined(__F16C__)
#include <immintrin.h>
#endif
#if defined(BL_ATTN_NEON) && defined(__aarch64__)
#define ATTN_NEON 1
#include <arm_neon.h>
#endif

#define ATTN_INLINE static inline __attribute__((always_inline))

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

/* Exact conversions: vcvtph2ps and fcvtl are exact for every half. */
static void f16_row(const uint8_t *src, float *restrict dst, int n) {
    int i = 0;
#if defined(ATTN_AVX512)
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i,
                         _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + 2 * i))));
#endif
#if defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 2 * i))));
#endif
#if defined(ATTN_NEON)
    for (; i + 8 <= n; i += 8) {
        float16x8_t h = vreinterpretq_f16_u8(vld1q_u8(src + 2 * i));
        vst1q_f32(dst + i, vcvt_f32_f16(vget_low_f16(h)));
        vst1q_f32(dst + i + 4, vcvt_high_f32_f16(h));
    }
#endif
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = half_to_float(h);
    }
}

/* q * d is exact in float32 (8 by 11 significant bits). */
static void q8_0_row(const uint8_t *src, float *restrict dst, int n) {
    for (int b = 0; b < n / BL_Q_BLOCK; b++, src += BL_Q8_0_BYTES, dst += BL_Q_BLOCK) {
        uint16_t dh;
        memcpy(&dh, src, 2);
        float d = half_to_float(dh);
        const int8_t *q = (const int8_t *)(src + 2);
#if defined(ATTN_AVX512)
        __m512 dv = _mm512_set1_ps(d);
        for (int i = 0; i < BL_Q_BLOCK; i += 16) {
            __m512i w = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + i)));
            _mm512_storeu_ps(dst + i, _mm512_mul_ps(_mm512_cvtepi32_ps(w), dv));
        }
#elif defined(ATTN_AVX2)
        __m256 dv = _mm256_set1_ps(d);
        for (int i = 0; i < BL_Q_BLOCK; i += 8) {
            __m128i bytes = _mm_loadl_epi64((const __m128i *)(q + i));
            _mm256_storeu_ps(dst + i,
                             _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes)), dv));
        }
#elif defined(ATTN_NEON)
        for (int i = 0; i < BL_Q_BLOCK; i += 16) {
            int8x16_t w = vld1q_s8(q + i);
            int16x8_t lo = vmovl_s8(vget_low_s8(w)), hi = vmovl_high_s8(w);
            vst1q_f32(dst + i, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), d));
            vst1q_f32(dst + i + 4, vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(lo)), d));
            vst1q_f32(dst + i + 8, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), d));
            vst1q_f32(dst + i + 12, vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(hi)), d));
        }
#else
        for (int i = 0; i < BL_Q_BLOCK; i++) dst[i] = (float)q[i] * d;
#endif
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

#if defined(ATTN_AVX2)
/* The 16 partial sums of a dot product live in two registers, lanes 0-7 and 8-15,
 * and are reduced in bl_vec_reduce's order: 8 + 8, 4 + 4, 2 + 2, 1 + 1. */
static inline float reduce16(__m256 lo, __m256 hi) {
    __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}
#endif
#if defined(ATTN_AVX512)
/* One register holds the 16 partial sums, lane j = sum j. */
static inline float reduce16_512(__m512 sums) {
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sums), 1));
    return reduce16(_mm512_castps512_ps256(sums), hi);
}
#endif
#if defined(ATTN_AVX512)
/* Four dot products' partial sums a, b, c, d (one register each) reduced at once, each in
 * bl_vec_reduce's order, into lanes 0-3 (additions commute exactly, so x + y
 * may stand for y + x): 8 + 8 pairs 256-bit halves of two registers, 4 + 4 pairs
 * their 128-bit quarters, then 2 + 2 and 1 + 1 within each quarter. */
static inline __m128 reduce16x4_512(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xee));
    __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xee));
    /* ab: a's 8 sums, then b's; quarter k of the next is the 4 sums of a, b, c, d. */
    __m512 s4 = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xdd));
    __m512 s2 = _mm512_add_ps(s4, _mm512_permute_ps(s4, 0x4e));
    __m512 s1 = _mm512_add_ps(s2, _mm512_permute_ps(s2, 0xb1));
    __m512i lane0 = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0);
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(lane0, s1));
}
#endif
#if defined(ATTN_NEON)
/* The 16 partial sums in four registers (lanes 0-3, 4-7, 8-11, 12-15). */
static inline float reduce16_neon(float32x4_t r0, float32x4_t r1, float32x4_t r2,
                                  float32x4_t r3) {
    float32x4_t s4 = vaddq_f32(vaddq_f32(r0, r2), vaddq_f32(r1, r3)); /* 8 + 8, then 4 + 4 */
    float32x2_t s2 = vadd_f32(vget_low_f32(s4), vget_high_f32(s4));
    return vget_lane_f32(s2, 0) + vget_lane_f32(s2, 1);
}
#endif

/* out[p] = dot(a, b[p]) * scale for the steps rows b[p] = b + p * n, a read once: per
 * row, 16 partial sums of fused multiply-adds (element i into sum i % 16), then
 * bl_vec_reduce. Each result is stored on its own (no wide reload of them). */
ATTN_INLINE void dot_rows(const float *restrict a, const float *restrict b, int steps, int n,
                          float scale, float *restrict out) {
    int i = 0;
#if defined(ATTN_AVX512)
    if (n % VEC_LANES == 0) {
        __m512 acc[BL_ATTN_STEP];
        for (int p = 0; p < BL_ATTN_STEP; p++) acc[p] = _mm512_setzero_ps();
        for (; i < n; i += VEC_LANES) {
            __m512 av = _mm512_loadu_ps(a + i);
            for (int p = 0; p < steps; p++)
                acc[p] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + (size_t)p * n + i), acc[p]);
        }
        if (steps == 4) {
            _mm_storeu_ps(out, _mm_mul_ps(reduce16x4_512(acc[0], acc[1], acc[2], acc[3]),
                                          _mm_set1_ps(scale)));
            return;
        }
        for (int p = 0; p < steps; p++) out[p] = reduce16_512(acc[p]) * scale;
        return;
    }
#elif defined(ATTN_AVX2)
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
        for (int p = 0; p < steps; p++) out[p] = reduce16(lo[p], hi[p]) * scale;
        return;
    }
#elif defined(ATTN_NEON)
    if (n % VEC_LANES == 0) {
        float32x4_t acc[BL_ATTN_STEP][4];
        for (int p = 0; p < BL_ATTN_STEP; p++)
            for (int k = 0; k < 4; k++) acc[p][k] = vdupq_n_f32(0.0f);
        for (; i < n; i += VEC_LANES) {
            float32x4_t av[4];
            for (int k = 0; k < 4; k++) av[k] = vld1q_f32(a + i + 4 * k);
            for (int p = 0; p < steps; p++) {
                const float *bp = b + (size_t)p * n + i;
                for (int k = 0; k < 4; k++)
                    acc[p][k] = vfmaq_f32(acc[p][k], av[k], vld1q_f32(bp + 4 * k));
            }
        }
        for (int p = 0; p < steps; p++)
            out[p] = reduce16_neon(acc[p][0], acc[p][1], acc[p][2], acc[p][3]) * scale;
        return;
    }
#endif
    for (int p = 0; p < steps; p++) {
        const float *bp = b + (size_t)p * n;
        float acc[VEC_LANES] = {0};
        for (i = 0; i + VEC_LANES <= n; i += VEC_LANES)
            for (int j = 0; j < VEC_LANES; j++) acc[j] = fmaf(a[i + j], bp[i + j], acc[j]);
        for (; i < n; i++) acc[i % VEC_LANES] = fmaf(a[i], bp[i], acc[i % VEC_LANES]);
        out[p] = bl_vec_reduce(acc) * scale;
    }
}

/* y += w[p] * x[p] for p = 0 .. steps - 1 in turn (x[p] = x + p * n), one fused
 * multiply-add per position and element; y is loaded and stored once per step. */
ATTN_INLINE void axpy_rows(float *restrict y, const float *w, int steps,
                           const float *restrict x, int n) {
    int i = 0;
#if defined(ATTN_AVX512)
    __m512 wz[BL_ATTN_STEP];
    for (int p = 0; p < steps; p++) wz[p] = _mm512_set1_ps(w[p]);
    for (; i + 16 <= n; i += 16) {
        __m512 sum = _mm512_loadu_ps(y + i);
        for (int p = 0; p < steps; p++)
            sum = _mm512_fmadd_ps(wz[p], _mm512_loadu_ps(x + (size_t)p * n + i), sum);
        _mm512_storeu_ps(y + i, sum);
    }
#endif
#if defined(ATTN_AVX2)
    __m256 wv[BL_ATTN_STEP];
    for (int p = 0; p < steps; p++) wv[p] = _mm256_set1_ps(w[p]);
    for (; i + 8 <= n; i += 8) {
        __m256 sum = _mm256_loadu_ps(y + i);
        for (int p = 0; p < steps; p++)
            sum = _mm256_fmadd_ps(wv[p], _mm256_loadu_ps(x + (size_t)p * n + i), sum);
        _mm256_storeu_ps(y + i, sum);
    }
#endif
#if defined(ATTN_NEON)
    for (; i + 4 <= n; i += 4) {
        float32x4_t sum = vld1q_f32(y + i);
        for (int p = 0; p < steps; p++)
            sum = vfmaq_n_f32(sum, vld1q_f32(x + (size_t)p * n + i), w[p]);
        vst1q_f32(y + i, sum);
    }
#endif
    for (; i < n; i++) {
        float sum = y[i];
        for (int p = 0; p < steps; p++) sum = fmaf(w[p], x[(size_t)p * n + i], sum);
        y[i] = sum;
    }
}

/* Whole steps (the rule) get copies with the step count fixed, so that their
 * accumulators stay in registers and their loops over positions unroll. */
static void dot_step(const float *restrict a, const float *restrict b, int steps, int n,
                     float scale, float *restrict out) {
    if (steps == BL_ATTN_STEP)
        dot_rows(a, b, BL_ATTN_STEP, n, scale, out);
    else
        dot_rows(a, b, steps, n, scale, out);
}

static void axpy_step(float *restrict y, const float *w, int steps, const float *restrict x,
                      int n) {
    if (steps == BL_ATTN_STEP)
        axpy_rows(y, w, BL_ATTN_STEP, x, n);
    else
        axpy_rows(y, w, steps, x, n);
}

#if defined(ATTN_AVX2)
/* One vector of floats for the direct paths below: 16 lanes on AVX-512,
 * 8 on AVX2, with as many slices per group as keep 4 heads' sums in registers. */
#if defined(ATTN_AVX512)
typedef __m512 vfloat;
#define VF_LANES 16
#define VALUE_SLICES 4
#define vf_zero _mm512_setzero_ps
#define vf_set1 _mm512_set1_ps
#define vf_fma _mm512_fmadd_ps
#define vf_mul _mm512_mul_ps
#define vf_store _mm512_storeu_ps
/* Elements i .. i + 15 (i a multiple of 16) of a row of type (bl_kv_type) in
 * float32, converted exactly as f16_row and q8_0_row do, except that a q8_0
 * row's integers come without the block scale (callers multiply by it). */
ATTN_INLINE vfloat vf_load(const uint8_t *row, int i, int type) {
    if (type == BL_KV_Q8_0) {
        const uint8_t *q = row + (size_t)(i / BL_Q_BLOCK) * BL_Q8_0_BYTES + 2 + i % BL_Q_BLOCK;
        return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)q)));
    }
    if (type == BL_KV_F16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 2 * (size_t)i)));
    return _mm512_loadu_ps((const float *)row + i);
}
#else
typedef __m256 vfloat;
#define VF_LANES 8
#define VALUE_SLICES 2
#define vf_zero _mm256_setzero_ps
#define vf_set1 _mm256_set1_ps
#define vf_fma _mm256_fmadd_ps
#define vf_mul _mm256_mul_ps
#define vf_store _mm256_storeu_ps
/* Elements i .. i + 7 of a row, as the AVX-512 vf_load gives 16. */
ATTN_INLINE vfloat vf_load(const uint8_t *row, int i, int type) {
    if (type == BL_KV_Q8_0) {
        const uint8_t *q = row + (size_t)(i / BL_Q_BLOCK) * BL_Q8_0_BYTES + 2 + i % BL_Q_BLOCK;
        return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)q)));
    }
    if (type == BL_KV_F16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * (size_t)i)));
    return _mm256_loadu_ps((const float *)row + i);
}
#endif
#define VALUE_GROUP (VF_LANES * VALUE_SLICES)
#define VALUE_SCALE_BLOCKS (VALUE_GROUP > BL_Q_BLOCK ? VALUE_GROUP / BL_Q_BLOCK : 1)
#endif

#if defined(ATTN_AVX512)
/* `heads` query heads (q + g * n; a constant, 1 to 4: head_tile) against four
 * whole rows of k (k + p * stride bytes, f16 or f32: q8_0 keys take scores_q8): each
 * k slice is loaded once for the heads (up to 16 accumulators); per (head, row) the
 * same fused multiply-adds and reduction as dot_rows. out + g * out_stride. */
ATTN_INLINE void dot_hx4_512(const float *restrict q, const int heads, const uint8_t *k,
                             size_t stride, int type, int n, float scale, float *restrict out,
                             size_t out_stride) {
    __m512 acc[4][BL_ATTN_STEP];
    for (int g = 0; g < heads; g++)
        for (int p = 0; p < BL_ATTN_STEP; p++) acc[g][p] = _mm512_setzero_ps();
    for (int i = 0; i < n; i += VEC_LANES) {
        __m512 kv[BL_ATTN_STEP];
        for (int p = 0; p < BL_ATTN_STEP; p++) kv[p] = vf_load(k + (size_t)p * stride, i, type);
        for (int g = 0; g < heads; g++) {
            __m512 qv = _mm512_loadu_ps(q + (size_t)g * n + i);
            for (int p = 0; p < BL_ATTN_STEP; p++) acc[g][p] = _mm512_fmadd_ps(qv, kv[p], acc[g][p]);
        }
    }
    __m128 sv = _mm_set1_ps(scale);
    for (int g = 0; g < heads; g++)
        _mm_storeu_ps(out + g * out_stride,
                      _mm_mul_ps(reduce16x4_512(acc[g][0], acc[g][1], acc[g][2], acc[g][3]), sv));
}

/* y[g] += w[g][p] x[p] for four heads (y + g * n, w + g * w_stride) and four whole rows
 * of x (x + p * stride bytes, f16 or f32): each x slice is loaded once for the
 * four heads; per element the same fused multiply-adds in the same order as
 * axpy_rows. */
ATTN_INLINE void axpy_4x4_512(float *restrict y, const float *w, size_t w_stride,
                              const uint8_t *x, size_t stride, int type, int n) {
    __m512 wz[4][BL_ATTN_STEP];
    for (int g = 0; g < 4; g++)
        for (int p = 0; p < BL_ATTN_STEP; p++) wz[g][p] = _mm512_set1_ps(w[g * w_stride + p]);
    for (int i = 0; i < n; i += 16) {
        __m512 xv[BL_ATTN_STEP];
        for (int p = 0; p < BL_ATTN_STEP; p++) xv[p] = vf_load(x + (size_t)p * stride, i, type);
        for (int g = 0; g < 4; g++) {
            float *yg = y + (size_t)g * n + i;
            __m512 sum = _mm512_loadu_ps(yg);
            for (int p = 0; p < BL_ATTN_STEP; p++) sum = _mm512_fmadd_ps(wz[g][p], xv[p], sum);
            _mm512_storeu_ps(yg, sum);
        }
    }
}
#endif

/* dot_step for the query heads g < heads of a row (q + g * n), results to
 * out + g * BL_ATTN_CHUNK. */
static void dot_heads(const float *restrict q, int heads, const float *restrict k, int steps,
                      int n, float scale, float *restrict out) {
    int g = 0;
#if defined(ATTN_AVX512)
    if (steps == BL_ATTN_STEP && n % VEC_LANES == 0) {
        const uint8_t *rows = (const uint8_t *)k;
        size_t stride = (size_t)n * sizeof(float);
        for (; g + 4 <= heads; g += 4)
            dot_hx4_512(q + (size_t)g * n, 4, rows, stride, BL_KV_F32, n, scale,
                        out + (size_t)g * BL_ATTN_CHUNK, BL_ATTN_CHUNK);
        for (; g + 2 <= heads; g += 2)
            dot_hx4_512(q + (size_t)g * n, 2, rows, stride, BL_KV_F32, n, scale,
                        out + (size_t)g * BL_ATTN_CHUNK, BL_ATTN_CHUNK);
        for (; g < heads; g++)
            dot_hx4_512(q + (size_t)g * n, 1, rows, stride, BL_KV_F32, n, scale,
                        out + (size_t)g * BL_ATTN_CHUNK, BL_ATTN_CHUNK);
    }
#endif
    for (; g < heads; g++)
        dot_step(q + (size_t)g * n, k, steps, n, scale, out + (size_t)g * BL_ATTN_CHUNK);
}

/* axpy_step for the query heads g < heads of a row: y + g * n, weights w + g * BL_ATTN_CHUNK. */
static void axpy_heads(float *restrict y, const float *w, int heads, int steps,
                       const float *restrict x, int n) {
    int g = 0;
#if defined(ATTN_AVX512)
    if (steps == BL_ATTN_STEP && n % 16 == 0)
        for (; g + 4 <= heads; g += 4)
            axpy_4x4_512(y + (size_t)g * n, w + (size_t)g * BL_ATTN_CHUNK, BL_ATTN_CHUNK,
                         (const uint8_t *)x, (size_t)n * sizeof(float), BL_KV_F32, n);
#endif
    for (; g < heads; g++) axpy_step(y + (size_t)g * n, w + (size_t)g * BL_ATTN_CHUNK, steps, x, n);
}

/* Decode reads each cached row for one query row only: converting it to a
 * float32 row first (rows_f32) stores and reloads every element for nothing.
 * There the cache is read as it is, each slice converted in its register
 * (the same values and operations, so the same results): the scores in
 * tiles of up to 4 heads x 4 positions on AVX-512 and 2 x 2 on AVX2, and the
 * weighted values. Tiles of many query rows (prefill) keep the conversion,
 * which they share. */
#define ATTN_DIRECT_ROWS 2
static inline int direct(const bl_attn_chunk *c) {
#if defined(ATTN_AVX2)
    return c->rows <= ATTN_DIRECT_ROWS && c->head_dim % BL_Q_BLOCK == 0;
#else
    (void)c;
    return 0;
#endif
}

/* Query heads of a group that a tile takes together: the most, up to 4, that
 * divide the group: 4 (2B-4T's 20 over 5, Qwen3-8B's 32 over 8), 3 (Falcon3's
 * 12 over 4), 2 (Qwen3-1.7B's 16 over 8) or 1 (no grouped queries). Each
 * head's operations are the same in any tile, so results do not depend on it. */
static inline int head_tile(int group) {
    return group % 4 == 0 ? 4 : group % 3 == 0 ? 3 : group % 2 == 0 ? 2 : 1;
}

/* Positions [start, visible_end) of the chunk that row r sees. */
static inline int32_t visible_end(const bl_attn_chunk *c, int r) {
    return c->pos[r] + 1 < c->end ? c->pos[r] + 1 : c->end;
}

/* How far ahead the cached rows are asked for, and into L2 (locality 2: T1
 * on x86), as the GEMVs ask for weights (x86_prefetch.h): 4 KiB into L1 took
 * decode at depth 3968 from 2.9-3.1 to 2.0-2.2 ms a layer on one VM; on Zen 4
 * 16 KiB into L2 decoded at that depth 1.10x (q8_0 cache) and 1.03x (f16)
 * faster again, medians of three interleaved rounds (BENCHMARKS.md, "Long
 * contexts"). */
#define ATTN_PREFETCH_BYTES 16384

/* The positions of a head lie one after another: asks for the bytes a few
 * steps on while this step's `steps` rows at src are read. */
static inline void prefetch_ahead(const uint8_t *src, size_t stride, int steps) {
    for (size_t at = 0; at < (size_t)steps * stride; at += 64)
        __builtin_prefetch(src + ATTN_PREFETCH_BYTES + at, 0, 2);
}

/* The value rows a chunk's weighted sum will read, asked for while its scores
 * are computed: the cache rows arrive while the keys are worked on instead of
 * stalling the value pass, which reads them first. Into L2 (locality 2): a
 * chunk's values (35-64 KiB) do not fit L1 beside its keys, and asked into L1
 * they pushed out the keys in use; the attention alone from memory (decode at
 * 3968, `bench_attention.py --cache-layers 30 --inner 301`) ran 1.02-1.19x
 * faster with one thread and 1.02-1.28x with two, the same in cache; whole
 * decode at that depth moved within its noise (0.97x f16, 1.05x q8_0). */
static inline void prefetch_values(const bl_attn_chunk *c, int32_t j, int steps) {
    const uint8_t *src = c->v + (size_t)j * c->v_stride;
    for (size_t at = 0; at < (size_t)steps * c->v_stride; at += 64)
        __builtin_prefetch(src + at, 0, 2);
}

/* Rows j .. j + steps - 1 of a cached head as float32, one after another in buf. */
static const float *rows_f32(int type, const uint8_t *src, size_t stride, int steps, float *buf,
                             int n) {
    prefetch_ahead(src, stride, steps);
    if (type == BL_KV_F32 && stride == (size_t)n * sizeof(float)) return (const float *)src;
    for (int p = 0; p < steps; p++) {
        const float *row = row_f32(type, src + (size_t)p * stride, buf + (size_t)p * n, n);
        if (row != buf + (size_t)p * n) memcpy(buf + (size_t)p * n, row, (size_t)n * sizeof *row);
    }
    return buf;
}

#if defined(ATTN_AVX2) && !defined(ATTN_AVX512)
/* `heads` (a constant, 1 or 2) query heads (q + g * n) against two whole rows
 * of k (k + p * stride bytes, f16 or f32: q8_0 keys take scores_q8), each k
 * slice converted once for the heads; per (head, row) the 16 partial sums and
 * the reduction of dot_rows. */
ATTN_INLINE void dot_hx2_avx2(const float *restrict q, const int heads, const uint8_t *k,
                              size_t stride, int type, int n, float scale, float *restrict out,
                              size_t out_stride) {
    __m256 lo[2][2], hi[2][2];
    for (int g = 0; g < heads; g++)
        for (int p = 0; p < 2; p++) lo[g][p] = hi[g][p] = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __m256 k_lo[2], k_hi[2];
        for (int p = 0; p < 2; p++) {
            k_lo[p] = vf_load(k + (size_t)p * stride, i, type);
            k_hi[p] = vf_load(k + (size_t)p * stride, i + 8, type);
        }
        for (int g = 0; g < heads; g++) {
            __m256 q_lo = _mm256_loadu_ps(q + (size_t)g * n + i);
            __m256 q_hi = _mm256_loadu_ps(q + (size_t)g * n + i + 8);
            for (int p = 0; p < 2; p++) {
                lo[g][p] = _mm256_fmadd_ps(q_lo, k_lo[p], lo[g][p]);
                hi[g][p] = _mm256_fmadd_ps(q_hi, k_hi[p], hi[g][p]);
            }
        }
    }
    for (int g = 0; g < heads; g++)
        for (int p = 0; p < 2; p++) out[g * out_stride + p] = reduce16(lo[g][p], hi[g][p]) * scale;
}
#endif

/* Keys of a q8_0 cache against the queries in q8 blocks (made once per call
 * by the driver with the BL_ACT_Q8 rule): each block's dot product is
 * an exact integer I, so a score is s = fmaf((float)I_b, dk_b * dq_b, s) over
 * the blocks b in order, times scale. The integers make the order of the
 * products free: every ISA forms I its own way and all get the same bits.
 * The keys lie turned in tiles of BL_KEY_TILE positions (attention_chunk.h),
 * each tile's 16 scores of a query head computed together. */

/* s of one block into the scores of a head: first block s = I * dkq, later
 * s = fma(I, dkq, s), the last one times scale. */
static inline float q8_block_score(int32_t dot, float dkq, float s, int b, int nb, float scale) {
    s = fmaf((float)dot, dkq, s);
    return b == nb - 1 ? s * scale : s;
}

#if !defined(ATTN_AVX2)
static void key_tile_q8_portable(const bl_attn_chunk *c, int32_t j, int n, int r0) {
    int nb = c->head_dim / BL_Q_BLOCK;
    const uint8_t *tile = c->k + (size_t)j * c->k_stride; /* turned: BL_KEY_TILE */
    for (int p = 0; p < n; p++) {
        for (int r = r0; r < c->rows; r++)
            for (int g = 0; g < c->group; g++) {
                const bl_q8_block *q = c->q8 + (size_t)r * c->q8_stride + (size_t)g * nb;
                float s = 0.0f;
                for (int b = 0; b < nb; b++) {
                    int32_t dot = 0;
                    for (int i = 0; i < BL_Q_BLOCK; i++) {
                        const uint8_t *word = tile + bl_key_tile_words(b, i / 4) + 4 * p;
                        dot += (int32_t)q[b].q[i] * (int8_t)word[i % 4];
                    }
                    uint16_t dh;
                    memcpy(&dh, tile + bl_key_tile_scales(nb, b) + 2 * p, 2);
                    s = q8_block_score(dot, half_to_float(dh) * q[b].d, s, b, nb, c->scale);
                }
                c->scores[((size_t)r * c->group + g) * BL_ATTN_CHUNK + (j - c->start) + p] = s;
            }
    }
}
#endif

#if defined(ATTN_AVX512)
/* acc += u8 . (the 4 bytes at s8, broadcast): the broadcast rides on the load
 * of vpdpbusd's memory operand instead of taking an instruction of its own. */
ATTN_INLINE __m512i dpbusd_broadcast(__m512i acc, __m512i u8, const int8_t *s8) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(u8), "m"(*(const int32_t *)s8));
    return acc;
}

/* Block b's scores of the 16 positions from j for `heads` (a constant, 1 or
 * 4) query heads from g of row r, added to what earlier blocks left: the
 * heads' vpdpbusd chains interleaved, as one head's chain of 8 waits on
 * vpdpbusd's latency. */
ATTN_INLINE void key_tile_heads_512(const bl_attn_chunk *c, const __m512i kt[8], __m512 dk, int r,
                                    int g, const int heads, int b, int32_t j) {
    int nb = c->head_dim / BL_Q_BLOCK;
    const bl_q8_block *q[4];
    __m512i dot[4];
    for (int h = 0; h < heads; h++) {
        q[h] = c->q8 + (size_t)r * c->q8_stride + (size_t)(g + h) * nb + b;
        dot[h] = _mm512_set1_epi32(-128 * q[h]->sum);
    }
    for (int w = 0; w < 8; w++)
        for (int h = 0; h < heads; h++) dot[h] = dpbusd_broadcast(dot[h], kt[w], q[h]->q + 4 * w);
    for (int h = 0; h < heads; h++) {
        float *out = c->scores + ((size_t)r * c->group + g + h) * BL_ATTN_CHUNK + (j - c->start);
        __m512 s = b ? _mm512_loadu_ps(out) : _mm512_setzero_ps();
        __m512 dkq = _mm512_mul_ps(dk, _mm512_set1_ps(q[h]->d));
        s = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[h]), dkq, s);
        if (b == nb - 1) s = _mm512_mul_ps(s, _mm512_set1_ps(c->scale));
        _mm512_storeu_ps(out, s);
    }
}

/* Sixteen positions in the lanes: per block, word w of every position is one
 * load from the turned tile (BL_KEY_TILE), made unsigned (k + 128); vpdpbusd
 * multiplies it by the query's word w, broadcast from memory, onto
 * -128 * sum q, which takes the bias out again. Lanes of positions past n
 * hold whatever the tile holds there (their scores are never read). */
static void key_tile_q8_512(const bl_attn_chunk *c, int32_t j, int r0) {
    int nb = c->head_dim / BL_Q_BLOCK;
    const uint8_t *tile = c->k + (size_t)j * c->k_stride;
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    for (int b = 0; b < nb; b++) {
        __m512i kt[8];
        for (int w = 0; w < 8; w++)
            kt[w] = _mm512_xor_si512(_mm512_loadu_si512(tile + bl_key_tile_words(b, w)), bias);
        __m512 dk = _mm512_cvtph_ps(
            _mm256_loadu_si256((const __m256i *)(tile + bl_key_tile_scales(nb, b))));
        for (int r = r0; r < c->rows; r++) {
            int g = 0;
            for (; g + 4 <= c->group; g += 4) key_tile_heads_512(c, kt, dk, r, g, 4, b, j);
            for (; g < c->group; g++) key_tile_heads_512(c, kt, dk, r, g, 1, b, j);
        }
    }
}
#endif

#if defined(ATTN_AVX2) && !defined(ATTN_AVX512)
/* Eight positions in the lanes, the two halves of a turned tile in turn;
 * without vpdpbusd the products go through vpmaddubsw with |k| unsigned and
 * k's sign moved onto q (both at most 127 in magnitude, so the pairs' sums
 * fit in int16), then vpmaddwd. */
static void key_tile_q8_avx2(const bl_attn_chunk *c, int32_t j, int n, int r0) {
    int nb = c->head_dim / BL_Q_BLOCK;
    const __m256i ones = _mm256_set1_epi16(1);
    const uint8_t *tile = c->k + (size_t)j * c->k_stride;
    for (int half = 0; half < BL_KEY_TILE / 8 && 8 * half < n; half++) {
        int32_t j8 = j + 8 * half;
        for (int b = 0; b < nb; b++) {
            __m256i kt[8], magnitude[8];
            for (int w = 0; w < 8; w++)
                kt[w] = _mm256_loadu_si256(
                    (const __m256i *)(tile + bl_key_tile_words(b, w) + 32 * half));
            for (int w = 0; w < 8; w++) magnitude[w] = _mm256_abs_epi8(kt[w]);
            __m256 dk = _mm256_cvtph_ps(
                _mm_loadu_si128((const __m128i *)(tile + bl_key_tile_scales(nb, b) + 16 * half)));
            for (int r = r0; r < c->rows; r++)
                for (int g = 0; g < c->group; g++) {
                    const bl_q8_block *q = c->q8 + (size_t)r * c->q8_stride + (size_t)g * nb + b;
                    __m256i dot = _mm256_setzero_si256();
                    for (int w = 0; w < 8; w++) {
                        int32_t qw;
                        memcpy(&qw, q->q + 4 * w, 4);
                        __m256i signed_q = _mm256_sign_epi8(_mm256_set1_epi32(qw), kt[w]);
                        __m256i pairs = _mm256_maddubs_epi16(magnitude[w], signed_q);
                        dot = _mm256_add_epi32(dot, _mm256_madd_epi16(pairs, ones));
                    }
                    float *out = c->scores + ((size_t)r * c->group + g) * BL_ATTN_CHUNK
                                 + (j8 - c->start);
                    __m256 s = b ? _mm256_loadu_ps(out) : _mm256_setzero_ps();
                    s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                                        _mm256_mul_ps(dk, _mm256_set1_ps(q->d)), s);
                    if (b == nb - 1) s = _mm256_mul_ps(s, _mm256_set1_ps(c->scale));
                    _mm256_storeu_ps(out, s);
                }
        }
    }
}
#endif

static void scores_q8(const bl_attn_chunk *c) {
    int32_t last = visible_end(c, c->rows - 1);
    int r0 = 0;
    for (int32_t j = c->start; j < last; j += BL_KEY_TILE) {
        while (c->pos[r0] < j) r0++; /* rows before r0 see none of the tile */
        int n = last - j < BL_KEY_TILE ? last - j : BL_KEY_TILE;
        prefetch_ahead(c->k + (size_t)j * c->k_stride, c->k_stride, n);
        prefetch_values(c, j, n);
#if defined(ATTN_AVX512)
        key_tile_q8_512(c, j, r0);
#elif defined(ATTN_AVX2)
        key_tile_q8_avx2(c, j, n, r0);
#else
        key_tile_q8_portable(c, j, n, r0);
#endif
    }
}

#if defined(ATTN_AVX2)
/* The direct path's score tile: `heads` heads x DIRECT_STEP positions. */
#if defined(ATTN_AVX512)
#define DIRECT_STEP BL_ATTN_STEP
#define direct_dot dot_hx4_512
#else
#define DIRECT_STEP 2
#define direct_dot dot_hx2_avx2
#endif

/* The direct path's scores (decode): tiles of `heads` heads (a constant) x
 * DIRECT_STEP positions while whole steps remain; returns the first position
 * left to the general path. */
ATTN_INLINE int32_t direct_scores(const bl_attn_chunk *c, const int heads) {
    int hd = c->head_dim, g_count = c->group;
    int32_t last = visible_end(c, c->rows - 1), j = c->start;
    for (; j + DIRECT_STEP <= last && c->pos[0] >= j + DIRECT_STEP - 1; j += DIRECT_STEP) {
        const uint8_t *k = c->k + (size_t)j * c->k_stride;
        prefetch_ahead(k, c->k_stride, DIRECT_STEP);
        prefetch_values(c, j, DIRECT_STEP);
        for (int r = 0; r < c->rows; r++)
            for (int g = 0; g < g_count; g += heads) {
                size_t i = (size_t)r * g_count + g;
                direct_dot(c->q + (size_t)r * c->q_stride + (size_t)g * hd, heads, k,
                           c->k_stride, c->type_k, hd, c->scale,
                           c->scores + i * BL_ATTN_CHUNK + (j - c->start), BL_ATTN_CHUNK);
            }
    }
    return j;
}
#endif

static void scores(const bl_attn_chunk *c) {
    if (c->type_k == BL_KV_Q8_0) {
        scores_q8(c);
        return;
    }
    int hd = c->head_dim, g_count = c->group;
    int32_t last = visible_end(c, c->rows - 1);
    int32_t j = c->start;
#if defined(ATTN_AVX512)
    if (direct(c)) {
        switch (head_tile(g_count)) {
        case 4: j = direct_scores(c, 4); break;
        case 3: j = direct_scores(c, 3); break;
        case 2: j = direct_scores(c, 2); break;
        default: j = direct_scores(c, 1); break;
        }
    }
#elif defined(ATTN_AVX2)
    if (direct(c)) j = g_count % 2 ? direct_scores(c, 1) : direct_scores(c, 2); /* 2 x 2 at most */
#endif
    for (; j < last; j += BL_ATTN_STEP) {
        int steps = last - j < BL_ATTN_STEP ? last - j : BL_ATTN_STEP;
        const float *k =
            rows_f32(c->type_k, c->k + (size_t)j * c->k_stride, c->k_stride, steps, c->row, hd);
        for (int r = c->rows - 1; r >= 0 && c->pos[r] >= j; r--) {
            const float *q = c->q + (size_t)r * c->q_stride;
            float *s = c->scores + (size_t)r * g_count * BL_ATTN_CHUNK + (j - c->start);
            int seen = c->pos[r] - j + 1 < steps ? c->pos[r] - j + 1 : steps;
            dot_heads(q, g_count, k, seen, hd, c->scale, s);
        }
    }
}

/* The largest of s[0 .. n), n >= 1, in 16 lanes (s[j] into lane j % 16, each lane
 * keeping the first of equal values), the lanes then taken in a fixed order: one
 * answer, zeros' signs and NaNs included, on every ISA, and no chain of dependent
 * compares. */
static inline float max_of(const float *s, int32_t n) {
    float lane[VEC_LANES];
    for (int j = 0; j < VEC_LANES; j++) lane[j] = s[0];
    int32_t i = 0;
    for (; i + VEC_LANES <= n; i += VEC_LANES)
        for (int j = 0; j < VEC_LANES; j++) lane[j] = s[i + j] > lane[j] ? s[i + j] : lane[j];
    for (; i < n; i++) lane[i % VEC_LANES] = s[i] > lane[i % VEC_LANES] ? s[i] : lane[i % VEC_LANES];
    float max = lane[0];
    for (int j = 1; j < VEC_LANES; j++) max = lane[j] > max ? lane[j] : max;
    return max;
}

/* Scores to e^(s - m) in place; m and l out. */
static void softmax(const bl_attn_chunk *c, int i, int32_t n) {
    float *s = c->scores + (size_t)i * BL_ATTN_CHUNK;
    float max = max_of(s, n);
    for (int32_t j = 0; j < n; j++) s[j] = bl_softmax_weight(s[j] - max);
    c->m[i] = max;
    c->l[i] = bl_vec_sum(s, (size_t)n);
}

#if defined(ATTN_AVX2)
/* `heads` heads' (a constant, head_tile) weighted sums of `slices` vectors of
 * elements from element i0 of the value rows, over the row's n visible
 * positions, the heads x slices sums held in registers: per element
 * acc = fma(w[p], v[p], acc) for p in order, the operations axpy_rows does,
 * so the same bits. A q8_0 element is q * d,
 * d of block i0 / 32 + k at scale[k * BL_ATTN_CHUNK + p]. `type` is a
 * constant at every call, so each cache type gets its own loop. */
ATTN_INLINE void values_slices(const bl_attn_chunk *c, int type, const int heads, const float *w,
                               float *acc, int i0, int32_t n, const float *scale, int slices) {
    int hd = c->head_dim;
    vfloat sum[4][VALUE_SLICES];
    for (int g = 0; g < heads; g++)
        for (int s = 0; s < slices; s++) sum[g][s] = vf_zero();
    const uint8_t *v = c->v + (size_t)c->start * c->v_stride;
    for (int32_t p = 0; p < n; p++, v += c->v_stride) {
        vfloat x[VALUE_SLICES];
        for (int s = 0; s < slices; s++) {
            x[s] = vf_load(v, i0 + VF_LANES * s, type);
            if (type == BL_KV_Q8_0) {
                int k = (i0 % BL_Q_BLOCK + VF_LANES * s) / BL_Q_BLOCK;
                x[s] = vf_mul(x[s], vf_set1(scale[k * BL_ATTN_CHUNK + p]));
            }
        }
        for (int g = 0; g < heads; g++) {
            vfloat wg = vf_set1(w[(size_t)g * BL_ATTN_CHUNK + p]);
            for (int s = 0; s < slices; s++) sum[g][s] = vf_fma(wg, x[s], sum[g][s]);
        }
    }
    for (int g = 0; g < heads; g++)
        for (int s = 0; s < slices; s++)
            vf_store(acc + (size_t)g * hd + i0 + VF_LANES * s, sum[g][s]);
}

/* The q8_0 scales of blocks b .. b + count - 1 of the n positions from start,
 * as floats: block b + k at scale + k * BL_ATTN_CHUNK. */
static void value_scales(const bl_attn_chunk *c, int b, int count, int32_t n, float *scale) {
    for (int k = 0; k < count; k++) {
        const uint8_t *block =
            c->v + (size_t)c->start * c->v_stride + (size_t)(b + k) * BL_Q8_0_BYTES;
        for (int32_t p = 0; p < n; p++) {
            uint16_t dh;
            memcpy(&dh, block + (size_t)p * c->v_stride, 2);
            scale[k * BL_ATTN_CHUNK + p] = _cvtsh_ss(dh); /* exact, as half_to_float */
        }
    }
}

/* One group of elements: the full width, or the row's shorter tail. */
ATTN_INLINE void values_group(const bl_attn_chunk *c, int type, const int heads, const float *w,
                              float *acc, int i0, int32_t n, const float *scale) {
    if (c->head_dim - i0 >= VALUE_GROUP)
        values_slices(c, type, heads, w, acc, i0, n, scale, VALUE_SLICES);
    else
        values_slices(c, type, heads, w, acc, i0, n, scale, (c->head_dim - i0) / VF_LANES);
}

/* Decode's weighted values, the cache rows read in place: row r's heads in
 * tiles of `heads` (head_tile), its elements in groups of VALUE_GROUP, each
 * group running over the positions with its sums in registers, so the sums
 * are never stored and reloaded per position as axpy_rows does. */
ATTN_INLINE void values_in_registers(const bl_attn_chunk *c, int r, const int heads) {
    int hd = c->head_dim, nb = hd / BL_Q_BLOCK;
    int32_t n = visible_end(c, r) - c->start;
    float scale[VALUE_SCALE_BLOCKS * BL_ATTN_CHUNK];
    for (int g = 0; g < c->group; g += heads) {
        size_t i = (size_t)r * c->group + g;
        const float *w = c->scores + i * BL_ATTN_CHUNK;
        float *acc = c->acc + i * hd;
        for (int i0 = 0; i0 < hd; i0 += VALUE_GROUP) {
            switch (c->type_v) {
            case BL_KV_Q8_0:
                if (i0 % BL_Q_BLOCK == 0) {
                    int b = i0 / BL_Q_BLOCK;
                    value_scales(c, b, nb - b < VALUE_SCALE_BLOCKS ? nb - b : VALUE_SCALE_BLOCKS,
                                 n, scale);
                }
                values_group(c, BL_KV_Q8_0, heads, w, acc, i0, n, scale);
                break;
            case BL_KV_F16: values_group(c, BL_KV_F16, heads, w, acc, i0, n, scale); break;
            default: values_group(c, BL_KV_F32, heads, w, acc, i0, n, scale); break;
            }
        }
    }
}
#endif

#if defined(ATTN_AVX2)
/* Elements [i0, i0 + BL_ATTN_COLUMNS) of the value rows of positions
 * [start, start + n), in float32, BL_ATTN_COLUMNS per position: converted as
 * row_f32 converts them (a q8_0 row's columns are exactly one block). */
static void value_columns(const bl_attn_chunk *c, int i0, int32_t n, float *out) {
    const uint8_t *v = c->v + (size_t)c->start * c->v_stride;
    for (int32_t p = 0; p < n; p++, v += c->v_stride, out += BL_ATTN_COLUMNS) {
        if (c->type_v == BL_KV_Q8_0) {
            uint16_t dh;
            memcpy(&dh, v + (size_t)(i0 / BL_Q_BLOCK) * BL_Q8_0_BYTES, 2);
            vfloat d = vf_set1(_cvtsh_ss(dh)); /* exact, as half_to_float */
            for (int s = 0; s < BL_ATTN_COLUMNS; s += VF_LANES)
                vf_store(out + s, vf_mul(vf_load(v, i0 + s, BL_KV_Q8_0), d));
        } else {
            for (int s = 0; s < BL_ATTN_COLUMNS; s += VF_LANES)
                vf_store(out + s, vf_load(v, i0 + s, c->type_v));
        }
    }
}

/* Vectors of columns whose 4 heads' sums stay in registers at once. */
#define COLUMN_SLICES (BL_ATTN_COLUMNS / VF_LANES < VALUE_SLICES ? BL_ATTN_COLUMNS / VF_LANES \
                                                                  : VALUE_SLICES)

/* A tile's weighted values (prefill): the chunk's value columns converted
 * once for all its rows, then per row and `heads` heads (head_tile) the sums of those
 * columns held in registers over the row's positions: per element
 * acc = fma(w[p], v[p], acc) for p in order, axpy_rows's operations, so the
 * same bits, without its load and store of the sums per 4 positions. */
ATTN_INLINE void values_by_columns(const bl_attn_chunk *c, const int heads) {
    int hd = c->head_dim;
    int32_t last = visible_end(c, c->rows - 1);
    for (int i0 = 0; i0 < hd; i0 += BL_ATTN_COLUMNS) {
        value_columns(c, i0, last - c->start, c->row);
        for (int r = 0; r < c->rows; r++) {
            if (c->pos[r] < c->start) continue;
            int32_t n = visible_end(c, r) - c->start;
            for (int g = 0; g < c->group; g += heads) {
                size_t i = (size_t)r * c->group + g;
                const float *w = c->scores + i * BL_ATTN_CHUNK;
                for (int col = 0; col < BL_ATTN_COLUMNS; col += COLUMN_SLICES * VF_LANES) {
                    vfloat sum[4][COLUMN_SLICES];
                    for (int h = 0; h < heads; h++)
                        for (int s = 0; s < COLUMN_SLICES; s++) sum[h][s] = vf_zero();
                    const float *x = c->row + col;
                    for (int32_t p = 0; p < n; p++, x += BL_ATTN_COLUMNS) {
                        vfloat xs[COLUMN_SLICES];
                        for (int s = 0; s < COLUMN_SLICES; s++)
                            xs[s] = vf_load((const uint8_t *)x, VF_LANES * s, BL_KV_F32);
                        for (int h = 0; h < heads; h++) {
                            vfloat wh = vf_set1(w[(size_t)h * BL_ATTN_CHUNK + p]);
                            for (int s = 0; s < COLUMN_SLICES; s++)
                                sum[h][s] = vf_fma(wh, xs[s], sum[h][s]);
                        }
                    }
                    for (int h = 0; h < heads; h++)
                        for (int s = 0; s < COLUMN_SLICES; s++)
                            vf_store(c->acc + (i + h) * hd + i0 + col + VF_LANES * s, sum[h][s]);
                }
            }
        }
    }
}
#endif

static void weighted_values(const bl_attn_chunk *c) {
    int hd = c->head_dim, g_count = c->group;
    int32_t last = visible_end(c, c->rows - 1);
    for (int r = 0; r < c->rows; r++)
        if (c->pos[r] >= c->start)
            memset(c->acc + (size_t)r * g_count * hd, 0, (size_t)g_count * hd * sizeof(float));
    int32_t j = c->start;
#if defined(ATTN_AVX2)
    if (direct(c)) {
        for (int r = 0; r < c->rows; r++) {
            if (c->pos[r] < c->start) continue;
            switch (head_tile(g_count)) {
            case 4: values_in_registers(c, r, 4); break;
            case 3: values_in_registers(c, r, 3); break;
            case 2: values_in_registers(c, r, 2); break;
            default: values_in_registers(c, r, 1); break;
            }
        }
        return;
    }
    if (c->head_dim % BL_ATTN_COLUMNS == 0) {
        switch (head_tile(g_count)) {
        case 4: values_by_columns(c, 4); break;
        case 3: values_by_columns(c, 3); break;
        case 2: values_by_columns(c, 2); break;
        default: values_by_columns(c, 1); break;
        }
        return;
    }
#endif
    for (; j < last; j += BL_ATTN_STEP) {
        int steps = last - j < BL_ATTN_STEP ? last - j : BL_ATTN_STEP;
        const float *v =
            rows_f32(c->type_v, c->v + (size_t)j * c->v_stride, c->v_stride, steps, c->row, hd);
        for (int r = c->rows - 1; r >= 0 && c->pos[r] >= j; r--) {
            int seen = c->pos[r] - j + 1 < steps ? c->pos[r] - j + 1 : steps;
            size_t i = (size_t)r * g_count;
            axpy_heads(c->acc + i * hd, c->scores + i * BL_ATTN_CHUNK + (j - c->start), g_count,
                       seen, v, hd);
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
