/* Exact tq1_0 -> bt1 and tq2_0 -> bt2 row repacks (tq_repack.h). */
#include "tq_repack.h"

#include "tq_common.h"

bl_type_id bl_tq_repack_target(bl_type_id type) {
    return type == BL_TYPE_TQ2_0   ? BL_TYPE_BT2
           : type == BL_TYPE_TQ1_0 ? BL_TYPE_BT1
                                   : BL_TYPE_COUNT;
}

/* tq2_0 and bt2 store the same 2-bit codes (trit + 1), in another order: bt2's
 * byte j holds weights j + 64k (k = 0..3) in bits 2k; tq2_0 holds weight
 * 128h + 32l + m in bits 2l of byte 32h + m. So weight 64k + j is tq2_0's byte
 * 32 (k / 2) + j % 32, bits 2 (2 (k % 2) + j / 32): a bit shuffle, no decode.
 * Returns 0 when a code is 3 (no trit). */
static int tq2_0_block_to_bt2(const uint8_t *src, uint8_t *dst) {
    uint8_t any3 = 0;
    for (int j = 0; j < 64; j++) {
        uint8_t byte = 0;
        for (int k = 0; k < 4; k++) {
            int shift = 2 * (2 * (k & 1) + (j >> 5));
            byte |= (uint8_t)(((src[32 * (k >> 1) + (j & 31)] >> shift) & 3) << (2 * k));
        }
        any3 |= byte & (byte >> 1) & 0x55;
        dst[j] = byte;
    }
    return !any3;
}

int bl_tq_repack_row(bl_type_id type, const uint8_t *row, int64_t cols, int8_t *values,
                     uint8_t *dst, float *row_scale) {
    bl_type_id target = bl_tq_repack_target(type);
    if (target == BL_TYPE_COUNT || cols <= 0 || cols % BL_TQ_BLOCK) return 0;
    const int tq2 = type == BL_TYPE_TQ2_0;
    if (tq2) { /* the fast path: whole blocks, bytes to bytes */
        for (int64_t b = 0; b < cols / BL_TQ_BLOCK; b++) {
            const uint8_t *block = row + b * (int64_t)BL_TQ2_0_BYTES;
            if (memcmp(block + BL_TQ2_0_D, row + BL_TQ2_0_D, 2) != 0) return 0;
            if (!tq2_0_block_to_bt2(block, dst + b * 64)) return 0;
        }
        *row_scale = bl_f16_load(row + BL_TQ2_0_D);
        return 1;
    }
    const size_t bytes = tq2 ? BL_TQ2_0_BYTES : BL_TQ1_0_BYTES;
    const size_t d_at = tq2 ? BL_TQ2_0_D : BL_TQ1_0_D;
    for (int64_t b = 0; b < cols / BL_TQ_BLOCK; b++) {
        const uint8_t *block = row + b * (int64_t)bytes;
        /* the same f16 bits in every block (+0 and -0 differ: kept as they are) */
        if (memcmp(block + d_at, row + d_at, 2) != 0) return 0;
        for (int e = 0; e < BL_TQ_BLOCK; e++) {
            int c = tq2 ? bl_tq2_0_code(block, e) : bl_tq1_0_code(block, e);
            if (c > 2) return 0;
            values[b * BL_TQ_BLOCK + e] = (int8_t)(c - 1);
        }
    }
    bl_traits(target)->pack_row(values, cols, dst);
    *row_scale = bl_f16_load(row + d_at);
    return 1;
}

int64_t bl_tq_repack_rows(bl_type_id type, const uint8_t *data, int64_t rows, int64_t cols,
                          int64_t r0, int64_t r1, int8_t *values, uint8_t *dst) {
    bl_type_id target = bl_tq_repack_target(type);
    if (target == BL_TYPE_COUNT) return r1 - r0;
    const bl_type_traits *src = bl_traits(type), *t = bl_traits(target);
    int64_t src_row = bl_row_data_bytes(src, cols), dst_row = bl_row_data_bytes(t, cols);
    float *scales = (float *)(dst + rows * dst_row);
    int64_t failed = 0;
    for (int64_t r = r0; r < r1; r++) {
        float scale = 0.0f;
        if (!bl_tq_repack_row(type, data + r * src_row, cols, values, dst + r * dst_row, &scale))
            failed++;
        memcpy(&scales[r], &scale, 4);
    }
    return failed;
}
