/* What every lookup-table kernel shares: how a weight byte maps to a table
 * index, and the table contents, written once in portable C.
 *
 * The GEMV kernels look up in-register tables of 16 entries (vpshufb, tbl;
 * vpermb holds four), one per group of columns that a nibble (or, for bt1, a
 * digit pair) encodes. They see a weight row as 64-byte chunks; byte j of a
 * chunk is looked up "kinds" times: bt2 and bs1 by its two nibbles, bt1 by
 * its digit pairs 3 d0 + d1 = (9 q) >> 8 and 3 d2 + d3 = (9 ((9 q) mod 256))
 * >> 8 and its last digit d4 = (3 ((81 q) mod 256)) >> 8, each the next
 * base-3 digits of q / 256.
 *
 * bt1: byte q of a block holds five base-3 digits d_k (d_0 most significant)
 * of n = floor(243 q / 256), for every q (the digit rule of types/bt1.c is the
 * base-3 expansion of q / 256). So a table indexed by n in [0, 243) serves all
 * 256 byte values, those the packer writes and those it never does alike. */
#ifndef BL_LUT_COMMON_H
#define BL_LUT_COMMON_H

#include <stdint.h>

#include "kernels.h"

#define BL_LUT_BT1_PATTERNS 243

static inline int bl_lut_bt1_pattern(unsigned q) { return (int)((243u * q) >> 8); }

/* sums[n] = sum_k (d_k(n) - 1) * x[k] for the five digits d_k of n, built one
 * digit at a time: the entries of k digits extend those of k - 1 digits. */
static inline void bl_lut_bt1_pattern_sums(const int32_t x[5], int32_t sums[BL_LUT_BT1_PATTERNS]) {
    int size = 1;
    sums[0] = 0;
    for (int k = 0; k < 5; k++) {
        size *= 3;
        for (int m = size - 1; m >= 0; m--) sums[m] = sums[m / 3] + (m % 3 - 1) * x[k];
    }
}

/* Columns of one 64-byte chunk of a weight row, and lookups per chunk byte. */
static inline int bl_lut_chunk_cols(bl_type_id type) {
    return type == BL_TYPE_BS1 ? 512 : type == BL_TYPE_BT1 ? 320 : 256;
}
static inline int bl_lut_kinds(bl_type_id type) { return type == BL_TYPE_BT1 ? 3 : 2; }

/* One activation plane of the row x (n = 1) as int32, from first_col on,
 * zero past the row: plane 0 is x itself (int8) or its high part xh = x >> 8
 * (int16), plane 1 is x & 255, so that x = 256 xh + xl. */
static inline void bl_lut_chunk_activations(const bl_activations *x, size_t first_col, int cols,
                                            int plane, int32_t *dst) {
    for (int i = 0; i < cols; i++) {
        size_t c = first_col + (size_t)i;
        int32_t v = 0;
        if (c < x->cols && x->format == BL_ACT_I8) v = ((const int8_t *)x->data)[c];
        if (c < x->cols && x->format == BL_ACT_I16) v = ((const int16_t *)x->data)[c];
        if (x->format == BL_ACT_I16) v = plane == 0 ? v >> 8 : v & 255;
        dst[i] = v;
    }
}

/* The 16 entries for byte j of a chunk and lookup kind, from the chunk's
 * activations x (int32, zero past the row): entry e is the partial sum the
 * group's weights give when their nibble or index is e (0 where e is no index). */
static inline void bl_lut_nibble_entries(bl_type_id type, const int32_t *x, int j, int kind,
                                         int16_t e[16]) {
    for (int i = 0; i < 16; i++) {
        int32_t v = 0;
        if (type == BL_TYPE_BT2) { /* codes c (weight c - 1) of columns j + 128 kind + {0, 64} */
            v = ((i & 3) - 1) * x[j + 128 * kind] + ((i >> 2) - 1) * x[j + 128 * kind + 64];
        } else if (type == BL_TYPE_BS1) { /* bit b set: column 8j + 4 kind + b has weight -1 */
            for (int b = 0; b < 4; b++) {
                int32_t xb = x[8 * j + 4 * kind + b];
                v += (i >> b) & 1 ? -xb : xb;
            }
        } else if (kind < 2 && i < 9) { /* digits i / 3, i % 3 of columns j + 128 kind + {0, 64} */
            v = (i / 3 - 1) * x[j + 128 * kind] + (i % 3 - 1) * x[j + 128 * kind + 64];
        } else if (kind == 2 && i < 3) { /* digit 4: column j + 256 */
            v = (i - 1) * x[j + 256];
        }
        e[i] = (int16_t)v;
    }
}

#endif
