/* bt1: ternary, 1.6 bits per weight. Blocks of 320 weights in 64 bytes; byte j
 * of a block holds the five weights j + 64k (k = 0..4) as base-3 digits
 * c_k = trit + 1, c_0 most significant: n = sum c_k 3^(4-k) in [0, 242], stored
 * as q = ceil(n * 256 / 243). Then digit k = (((q * 3^k) mod 256) * 3) >> 8,
 * which needs only byte multiplies or a 256-entry table per digit. */
#include "types.h"

static const int pow3[5] = {1, 3, 9, 27, 81};

static void bt1_pack(const int8_t *values, int64_t cols, uint8_t *dst) {
    int64_t nblocks = (cols + 319) / 320;
    for (int64_t b = 0; b < nblocks; b++, dst += 64) {
        for (int j = 0; j < 64; j++) {
            int n = 0;
            for (int k = 0; k < 5; k++) {
                int64_t col = b * 320 + k * 64 + j;
                n = n * 3 + (col < cols ? values[col] + 1 : 1);
            }
            dst[j] = (uint8_t)((n * 256 + 242) / 243);
        }
    }
}

static int64_t bt1_unpack(const uint8_t *src, int64_t cols, int8_t *values) {
    for (int64_t col = 0; col < cols; col++) {
        int64_t b = col / 320, k = (col % 320) / 64, j = col % 64;
        unsigned m = (unsigned)(src[b * 64 + j] * pow3[k]) & 255u;
        values[col] = (int8_t)((int)((m * 3) >> 8) - 1);
    }
    return 0; /* every byte decodes to valid digits */
}

const bl_type_traits bl_type_bt1 = {
    .info = {"bt1", 1025, BL_KIND_TERNARY, 320, 64, 1},
    .pack_row = bt1_pack,
    .unpack_row = bt1_unpack,
};
