/* bt2: ternary, 2 bits per weight. Blocks of 256 weights in 64 bytes; byte j
 * of a block holds weights j, j+64, j+128 and j+192 in bit pairs [1:0], [3:2],
 * [5:4], [7:6], each stored as trit + 1 (code 3 is invalid). Shifting a whole
 * vector of block bytes right by 2k and masking yields 64 consecutive weights,
 * so the same bytes serve 16-, 32- and 64-byte vectors alike. */
#include "types.h"

static void bt2_pack(const int8_t *values, int64_t cols, uint8_t *dst) {
    int64_t nblocks = (cols + 255) / 256;
    for (int64_t b = 0; b < nblocks; b++, dst += 64) {
        const int8_t *v = values + b * 256;
        if ((b + 1) * 256 <= cols) { /* a whole block: no padding to test for */
            for (int j = 0; j < 64; j++)
                dst[j] = (uint8_t)((v[j] + 1) | (v[j + 64] + 1) << 2 | (v[j + 128] + 1) << 4 |
                                   (v[j + 192] + 1) << 6);
            continue;
        }
        for (int j = 0; j < 64; j++) {
            uint8_t byte = 0;
            for (int k = 0; k < 4; k++) {
                int64_t col = b * 256 + k * 64 + j;
                int code = col < cols ? values[col] + 1 : 1; /* padding is weight 0 */
                byte |= (uint8_t)(code << (2 * k));
            }
            dst[j] = byte;
        }
    }
}

static int64_t bt2_unpack(const uint8_t *src, int64_t cols, int8_t *values) {
    int64_t invalid = 0;
    for (int64_t col = 0; col < cols; col++) {
        int64_t b = col / 256, k = (col % 256) / 64, j = col % 64;
        int code = (src[b * 64 + j] >> (2 * k)) & 3;
        invalid += code == 3;
        values[col] = (int8_t)(code - 1);
    }
    return invalid;
}

const bl_type_traits bl_type_bt2 = {
    .info = {"bt2", 1024, BL_KIND_TERNARY, 256, 64, 1},
    .pack_row = bt2_pack,
    .unpack_row = bt2_unpack,
};
