/* Exact tq1_0 -> bt1 and tq2_0 -> bt2 row repacks (tq_repack.h). */
#include "tq_repack.h"

#include "tq_common.h"

bl_type_id bl_tq_repack_target(bl_type_id type) {
    return type == BL_TYPE_TQ2_0   ? BL_TYPE_BT2
           : type == BL_TYPE_TQ1_0 ? BL_TYPE_BT1
                                   : BL_TYPE_COUNT;
}

int bl_tq_repack_row(bl_type_id type, const uint8_t *row, int64_t cols, int8_t *values,
                     uint8_t *dst, float *row_scale) {
    bl_type_id target = bl_tq_repack_target(type);
    if (target == BL_TYPE_COUNT || cols <= 0 || cols % BL_TQ_BLOCK) return 0;
    const int tq2 = type == BL_TYPE_TQ2_0;
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
    *row_scale = bl_tq_load_d(row + d_at);
    return 1;
}

int bl_tq_tensor_repacks(bl_type_id type, const uint8_t *data, int64_t rows, int64_t cols) {
    if (bl_tq_repack_target(type) == BL_TYPE_COUNT || rows <= 0 || cols <= 0 ||
        cols % BL_TQ_BLOCK)
        return 0;
    const int tq2 = type == BL_TYPE_TQ2_0;
    const int64_t bytes = tq2 ? BL_TQ2_0_BYTES : BL_TQ1_0_BYTES;
    const int64_t d_at = tq2 ? BL_TQ2_0_D : BL_TQ1_0_D;
    const int64_t blocks = cols / BL_TQ_BLOCK;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = data + r * blocks * bytes;
        for (int64_t b = 0; b < blocks; b++) {
            const uint8_t *block = row + b * bytes;
            if (memcmp(block + d_at, row + d_at, 2) != 0) return 0;
            if (!tq2) continue; /* every tq1_0 byte decodes to digits 0..2 */
            for (int i = 0; i < BL_TQ2_0_D; i += 8) {
                uint64_t w;
                memcpy(&w, block + i, 8);
                if (w & (w >> 1) & 0x5555555555555555ull) return 0; /* a pair 11: code 3 */
            }
        }
    }
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
