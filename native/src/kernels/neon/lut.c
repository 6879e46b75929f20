/* neon lookup-table kernels (plain ARMv8-A NEON; neon_dotprod reuses them).
 *
 * GEMM: the batched form of lut_gemm.h with 16-byte table rows, a tile of 8
 * tokens (int8 activations, int16 entries) or 4 (int16 activations).
 *
 * GEMV: in-register tbl tables, 16 weight rows at a time. Each 16-byte
 * quarter of a row's 64-byte chunk is transposed, so that vector m holds byte
 * bitrev4(m) of the quarter of all 16 rows: one 16-entry table then serves
 * the whole vector. Entries are int16 split in a low and a high byte plane;
 * zipping the two lookups byte by byte gives the int16 sums of rows 0-7 and
 * 8-15. int16 activations are split as 256 xh + xl and run as two int8-like
 * planes. One byte's lookups add at most 2040 to a sum (two of at most 1020),
 * so sums stay inside int16 for a quarter (16 bytes) and are then widened. */
#include <arm_neon.h>

#include "../kernels.h"
#include "../lut_common.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

typedef int16x8_t lut_vec;
#define LUT_VEC_BYTES 16
#define LUT_VEC_SHIFT 4

ALWAYS_INLINE lut_vec lut_zero(void) { return vdupq_n_s16(0); }
ALWAYS_INLINE lut_vec lut_load(const void *p) { return vld1q_s16((const int16_t *)p); }
ALWAYS_INLINE void lut_store(void *p, lut_vec v) { vst1q_s16((int16_t *)p, v); }
ALWAYS_INLINE void lut_prefetch(const void *p) { __builtin_prefetch(p); }
ALWAYS_INLINE lut_vec lut_add(lut_vec a, lut_vec b, int wide) {
    if (!wide) return vaddq_s16(a, b);
    return vreinterpretq_s16_s32(vaddq_s32(vreinterpretq_s32_s16(a), vreinterpretq_s32_s16(b)));
}
ALWAYS_INLINE lut_vec lut_sub(lut_vec a, lut_vec b, int wide) {
    if (!wide) return vsubq_s16(a, b);
    return vreinterpretq_s16_s32(vsubq_s32(vreinterpretq_s32_s16(a), vreinterpretq_s32_s16(b)));
}
ALWAYS_INLINE void lut_widen_add(lut_vec acc[2], lut_vec v, int wide) {
    if (wide) {
        acc[0] = lut_add(acc[0], v, 1);
        return;
    }
    acc[0] = vreinterpretq_s16_s32(vaddw_s16(vreinterpretq_s32_s16(acc[0]), vget_low_s16(v)));
    acc[1] = vreinterpretq_s16_s32(vaddw_high_s16(vreinterpretq_s32_s16(acc[1]), v));
}

#include "../lut_gemm.h"

/* ---- GEMV ---- */

#define GEMV_ROWS 16
#define GEMV_TABLE_VECTORS 2048 /* 32 KB of tables, built for as many quarters as fit */

static const int bitrev4[16] = {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15};

/* Rows r[i] in; out, r[m] holds byte bitrev4(m) of rows 0..15. */
ALWAYS_INLINE void transpose16(uint8x16_t r[16]) {
    uint8x16_t t[16];
    for (int p = 0; p < 8; p++) {
        t[p] = vzip1q_u8(r[2 * p], r[2 * p + 1]);
        t[p + 8] = vzip2q_u8(r[2 * p], r[2 * p + 1]);
    }
    for (int p = 0; p < 8; p++) {
        uint16x8_t a = vreinterpretq_u16_u8(t[2 * p]), b = vreinterpretq_u16_u8(t[2 * p + 1]);
        r[p] = vreinterpretq_u8_u16(vzip1q_u16(a, b));
        r[p + 8] = vreinterpretq_u8_u16(vzip2q_u16(a, b));
    }
    for (int p = 0; p < 8; p++) {
        uint32x4_t a = vreinterpretq_u32_u8(r[2 * p]), b = vreinterpretq_u32_u8(r[2 * p + 1]);
        t[p] = vreinterpretq_u8_u32(vzip1q_u32(a, b));
        t[p + 8] = vreinterpretq_u8_u32(vzip2q_u32(a, b));
    }
    for (int p = 0; p < 8; p++) {
        uint64x2_t a = vreinterpretq_u64_u8(t[2 * p]), b = vreinterpretq_u64_u8(t[2 * p + 1]);
        r[p] = vreinterpretq_u8_u64(vzip1q_u64(a, b));
        r[p + 8] = vreinterpretq_u8_u64(vzip2q_u64(a, b));
    }
}

/* Vectors of tables per quarter: [m][kind][activation plane][byte plane]. */
ALWAYS_INLINE int gemv_quarter_vectors(int kinds, int planes) { return 16 * kinds * planes * 2; }

static void build_gemv_tables(const bl_activations *x, bl_type_id type, int planes, size_t first,
                              size_t count, uint8x16_t *tables) {
    int kinds = bl_lut_kinds(type), cols = bl_lut_chunk_cols(type);
    int32_t xc[512];
    int16_t entries[16];
    uint8_t bytes[2][16];
    for (size_t c = 0; c < count; c++) {
        size_t quarter = first + c;
        for (int plane = 0; plane < planes; plane++) {
            bl_lut_chunk_activations(x, quarter / 4 * (size_t)cols, cols, plane, xc);
            for (int m = 0; m < 16; m++) {
                for (int kind = 0; kind < kinds; kind++) {
                    int j = 16 * (int)(quarter % 4) + bitrev4[m];
                    bl_lut_nibble_entries(type, xc, j, kind, entries);
                    for (int e = 0; e < 16; e++) {
                        bytes[0][e] = (uint8_t)entries[e];
                        bytes[1][e] = (uint8_t)(entries[e] >> 8);
                    }
                    uint8x16_t *v = tables + c * gemv_quarter_vectors(kinds, planes) +
                                    ((m * kinds + kind) * planes + plane) * 2;
                    v[0] = vld1q_u8(bytes[0]);
                    v[1] = vld1q_u8(bytes[1]);
                }
            }
        }
    }
}

/* The next base-3 digits of q / 256 in 8-bit lanes (the bt1 digit rule of lut_common.h):
 * returns (times q) >> 8, the next two digits (times 9) or one (times 3), and
 * leaves in q the rest, (times q) mod 256. */
ALWAYS_INLINE uint8x16_t next_digit_pair(uint8x16_t *q, uint8_t times) {
    uint16x8_t lo = vmull_u8(vget_low_u8(*q), vdup_n_u8(times));
    uint16x8_t hi = vmull_high_u8(*q, vdupq_n_u8(times));
    *q = vcombine_u8(vmovn_u16(lo), vmovn_u16(hi));
    return vcombine_u8(vshrn_n_u16(lo, 8), vshrn_n_u16(hi, 8));
}

/* The lookup indices of transposed vector v, one vector per kind. */
ALWAYS_INLINE void quarter_indices(bl_type_id type, uint8x16_t v, uint8x16_t idx[3]) {
    if (type != BL_TYPE_BT1) {
        idx[0] = vandq_u8(v, vdupq_n_u8(15));
        idx[1] = vshrq_n_u8(v, 4);
        return;
    }
    idx[0] = next_digit_pair(&v, 9);
    idx[1] = next_digit_pair(&v, 9);
    idx[2] = next_digit_pair(&v, 3);
}

/* acc (int16, rows 0-7 / 8-15) += table lookups of idx. */
ALWAYS_INLINE void lookup_add(uint8x16_t idx, const uint8x16_t *planes, int16x8_t acc[2]) {
    uint8x16_t lo = vqtbl1q_u8(planes[0], idx), hi = vqtbl1q_u8(planes[1], idx);
    acc[0] = vaddq_s16(acc[0], vreinterpretq_s16_u8(vzip1q_u8(lo, hi)));
    acc[1] = vaddq_s16(acc[1], vreinterpretq_s16_u8(vzip2q_u8(lo, hi)));
}

/* dots[4] (rows 4i .. 4i + 3) += the int32 dots of 16 rows with one quarter. */
ALWAYS_INLINE void quarter_dot(bl_type_id type, int planes, const uint8_t *w, size_t w_row_bytes,
                               size_t rows, const uint8x16_t *tables, int32x4_t dots[4]) {
    int kinds = bl_lut_kinds(type);
    uint8x16_t v[16];
    for (int r = 0; r < 16; r++)
        v[r] = (size_t)r < rows ? vld1q_u8(w + r * w_row_bytes) : vdupq_n_u8(0);
    transpose16(v);
    int16x8_t acc[2][2];
    for (int p = 0; p < planes; p++) acc[p][0] = acc[p][1] = vdupq_n_s16(0);
    for (int m = 0; m < 16; m++) {
        uint8x16_t idx[3];
        quarter_indices(type, v[m], idx);
        for (int kind = 0; kind < kinds; kind++)
            for (int p = 0; p < planes; p++)
                lookup_add(idx[kind], tables + ((m * kinds + kind) * planes + p) * 2, acc[p]);
    }
    for (int i = 0; i < 2; i++) {
        if (planes == 2) { /* x = 256 xh + xl */
            dots[2 * i] = vaddq_s32(dots[2 * i], vshll_n_s16(vget_low_s16(acc[0][i]), 8));
            dots[2 * i + 1] = vaddq_s32(dots[2 * i + 1], vshll_high_n_s16(acc[0][i], 8));
        }
        dots[2 * i] = vaddw_s16(dots[2 * i], vget_low_s16(acc[planes - 1][i]));
        dots[2 * i + 1] = vaddw_high_s16(dots[2 * i + 1], acc[planes - 1][i]);
    }
}

ALWAYS_INLINE void lut_gemv(const bl_gemm_task *t, bl_type_id type, int planes) {
    int per_quarter = gemv_quarter_vectors(bl_lut_kinds(type), planes);
    size_t quarters = t->w_row_bytes / 16, per_pass = GEMV_TABLE_VECTORS / per_quarter;
    uint8x16_t tables[GEMV_TABLE_VECTORS];
    int32_t *out = t->out;
    for (size_t q0 = 0; q0 < quarters; q0 += per_pass) {
        size_t count = quarters - q0 < per_pass ? quarters - q0 : per_pass;
        build_gemv_tables(t->x, type, planes, q0, count, tables);
        for (size_t r0 = 0; r0 < t->rows; r0 += GEMV_ROWS) {
            size_t rows = t->rows - r0 < GEMV_ROWS ? t->rows - r0 : GEMV_ROWS;
            int32x4_t dots[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
            for (size_t q = q0; q < q0 + count; q++)
                quarter_dot(type, planes, t->w + r0 * t->w_row_bytes + q * 16, t->w_row_bytes, rows,
                            tables + (q - q0) * per_quarter, dots);
            int32_t sums[16];
            for (int i = 0; i < 4; i++) vst1q_s32(sums + 4 * i, dots[i]);
            for (size_t r = 0; r < rows; r++)
                out[r0 + r] = (int32_t)((q0 ? (uint32_t)out[r0 + r] : 0u) + (uint32_t)sums[r]);
        }
    }
}

LUT_KERNELS(neon)
