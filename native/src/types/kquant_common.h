/* Shared pieces of llama.cpp's k-quant layouts (q4_k, q5_k, q6_k): super-blocks
 * of 256 weights with per-sub-block integer scales under one f16 scale.
 * Byte layouts: docs/FORMAT.md. */
#ifndef BL_KQUANT_COMMON_H
#define BL_KQUANT_COMMON_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fp16.h"

#define BL_QK_K 256

/* Stores f as f16 and returns the value the file will hold. */
static inline float bl_kq_store_f16(uint8_t *p, float f) {
    uint16_t h = bl_f32_to_f16(f);
    memcpy(p, &h, 2);
    return bl_f16_to_f32(h);
}

static inline int bl_kq_clamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* q4_k / q5_k: eight 6-bit scales and eight 6-bit mins in 12 bytes. Bytes 0-3
 * hold scales 0-3 in their low 6 bits, bytes 4-7 mins 0-3; scales and mins
 * 4-7 keep their low 4 bits in bytes 8-11 (scale low, min high nibble) and
 * their top 2 bits in the top 2 bits of bytes 0-3 (scales) and 4-7 (mins). */
static inline void bl_kq_scales_mins(const uint8_t *s, uint8_t scale[8], uint8_t min[8]) {
    /* all eight at once, four bytes to a (little-endian) word: a byte's top 2 bits move
     * to its bits 4-5 by a shift of 2, and the bits a word shift brings in from the next
     * byte are masked */
    _Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "bytes 0-3 as one word");
    uint32_t u[3], out[4];
    memcpy(u, s, 12);
    out[0] = u[0] & 0x3f3f3f3fu;                                   /* scales 0-3 */
    out[1] = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 2) & 0x30303030u);   /* scales 4-7 */
    out[2] = u[1] & 0x3f3f3f3fu;                                   /* mins 0-3   */
    out[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 2) & 0x30303030u); /* mins 4-7 */
    memcpy(scale, out, 8);
    memcpy(min, out + 2, 8);
}

static inline void bl_kq_pack_scale_min(const int scale[8], const int min[8], uint8_t *s) {
    for (int g = 0; g < 4; g++) {
        s[g] = (uint8_t)((scale[g] & 63) | ((scale[g + 4] >> 4) << 6));
        s[g + 4] = (uint8_t)((min[g] & 63) | ((min[g + 4] >> 4) << 6));
        s[g + 8] = (uint8_t)((scale[g + 4] & 15) | ((min[g + 4] & 15) << 4));
    }
}

/* Asymmetric sub-block quantization shared by q4_k (nmax 15) and q5_k (31):
 * x ~= d * scale[g] * q - dmin * min[g], q in [0, nmax]. Writes d, dmin and the
 * 12 scale bytes at `head` and the codes of the 8 sub-blocks of 32 into q. */
static inline void bl_kq_quantize_asym(const float *x, int nmax, uint8_t *head, uint8_t q[256]) {
    float scale_f[8], min_f[8], max_scale = 0.0f, max_min = 0.0f;
    for (int g = 0; g < 8; g++) {
        float lo = 0.0f, hi = 0.0f; /* the range always holds 0, so 0 stays exact */
        for (int j = 0; j < 32; j++) {
            lo = fminf(lo, x[32 * g + j]);
            hi = fmaxf(hi, x[32 * g + j]);
        }
        scale_f[g] = (hi - lo) / (float)nmax;
        min_f[g] = -lo;
        max_scale = fmaxf(max_scale, scale_f[g]);
        max_min = fmaxf(max_min, min_f[g]);
    }
    float d = bl_kq_store_f16(head, max_scale / 63.0f);
    float dmin = bl_kq_store_f16(head + 2, max_min / 63.0f);
    int scale[8], min[8];
    for (int g = 0; g < 8; g++) {
        scale[g] = d > 0.0f ? bl_kq_clamp((int)lrintf(scale_f[g] / d), 0, 63) : 0;
        min[g] = dmin > 0.0f ? bl_kq_clamp((int)lrintf(min_f[g] / dmin), 0, 63) : 0;
        float step = d * (float)scale[g], offset = dmin * (float)min[g];
        for (int j = 0; j < 32; j++) {
            int v = step > 0.0f ? (int)lrintf((x[32 * g + j] + offset) / step) : 0;
            q[32 * g + j] = (uint8_t)bl_kq_clamp(v, 0, nmax);
        }
    }
    bl_kq_pack_scale_min(scale, min, head + 4);
}

#endif
