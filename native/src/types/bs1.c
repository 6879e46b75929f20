/* bs1: sign, 1 bit per weight. Blocks of 256 weights in 32 bytes; bit k of
 * byte j is column 8j + k, and a set bit means -1 (OneBit's convention), so a
 * little-endian 64-bit load is a mask over 64 consecutive columns. Padding
 * bits are 0 (+1) and meet zero activations. */
#include <string.h>

#include "types.h"

static void bs1_pack(const int8_t *values, int64_t cols, uint8_t *dst) {
    int64_t nbytes = (cols + 255) / 256 * 32, full = cols / 8;
    memset(dst + full, 0, (size_t)(nbytes - full));
    /* whole bytes without branches: random signs would defeat a branch predictor */
    for (int64_t j = 0; j < full; j++) {
        unsigned byte = 0;
        for (int k = 0; k < 8; k++) byte |= (unsigned)(values[8 * j + k] < 0) << k;
        dst[j] = (uint8_t)byte;
    }
    for (int64_t col = full * 8; col < cols; col++)
        if (values[col] < 0) dst[col / 8] |= (uint8_t)(1u << (col % 8));
}

static int64_t bs1_unpack(const uint8_t *src, int64_t cols, int8_t *values) {
    for (int64_t col = 0; col < cols; col++)
        values[col] = (src[col / 8] >> (col % 8)) & 1 ? -1 : 1;
    return 0;
}

const bl_type_traits bl_type_bs1 = {
    .info = {"bs1", 1026, BL_KIND_SIGN, 256, 32, 1},
    .pack_row = bs1_pack,
    .unpack_row = bs1_unpack,
};
