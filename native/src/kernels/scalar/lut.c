/* Scalar lookup-table kernels: the portable reference of the LUT algorithm.
 *
 * The weights of one block split into groups that one byte or nibble encodes
 * (bt2: a nibble = 2 columns, bt1: a byte = 5 columns, bs1: a nibble = 4
 * columns; lut_common.h names them). For each activation row and block, a
 * table per group holds the partial sum of that group's activations for every
 * value the byte or nibble can take; a weight row's block then costs one table
 * read per group instead of one product per weight. The tables are reused by
 * every weight row of the slice. Integer throughout, so exact. */
#include <string.h>

#include "../kernels.h"
#include "../lut_common.h"

/* One block of one activation row as int32, whatever the activation format. */
static void load_block(const bl_activations *x, size_t t, size_t first_col, size_t count,
                       int32_t *dst) {
    const uint8_t *row = x->data + t * x->row_bytes;
    for (size_t i = 0; i < count; i++)
        dst[i] = x->format == BL_ACT_I8 ? ((const int8_t *)row)[first_col + i]
                                        : ((const int16_t *)row)[first_col + i];
}

/* bt2: group (j, h) is nibble h of byte j, columns j + 128h and j + 128h + 64. */
static void bt2_tables(const int32_t *xb, int32_t *tables) {
    for (int j = 0; j < 64; j++) {
        for (int h = 0; h < 2; h++) {
            int32_t a = xb[j + 128 * h], b = xb[j + 128 * h + 64];
            for (int nib = 0; nib < 16; nib++)
                tables[(2 * j + h) * 16 + nib] = ((nib & 3) - 1) * a + ((nib >> 2) - 1) * b;
        }
    }
}

static int32_t bt2_block(const uint8_t *w, const int32_t *tables) {
    uint32_t sum = 0;
    for (int j = 0; j < 64; j++)
        sum += (uint32_t)tables[32 * j + (w[j] & 15)] + (uint32_t)tables[32 * j + 16 + (w[j] >> 4)];
    return (int32_t)sum;
}

/* bt1: group j is byte j, columns j + 64k for digit k = 0..4. Every byte value
 * gets an entry: bl_lut_bt1_pattern maps it to its digits. */
static void bt1_tables(const int32_t *xb, int32_t *tables) {
    int32_t by_pattern[BL_LUT_BT1_PATTERNS];
    for (int j = 0; j < 64; j++) {
        int32_t x5[5];
        for (int k = 0; k < 5; k++) x5[k] = xb[j + 64 * k];
        bl_lut_bt1_pattern_sums(x5, by_pattern);
        for (int q = 0; q < 256; q++) tables[256 * j + q] = by_pattern[bl_lut_bt1_pattern(q)];
    }
}

static int32_t bt1_block(const uint8_t *w, const int32_t *tables) {
    uint32_t sum = 0;
    for (int j = 0; j < 64; j++) sum += (uint32_t)tables[256 * j + w[j]];
    return (int32_t)sum;
}

/* bs1: group (j, h) is nibble h of byte j, columns 8j + 4h + i for bit i; a set
 * bit means weight -1. */
static void bs1_tables(const int32_t *xb, int32_t *tables) {
    for (int g = 0; g < 64; g++) {
        for (int nib = 0; nib < 16; nib++) {
            int32_t sum = 0;
            for (int i = 0; i < 4; i++) sum += (nib >> i) & 1 ? -xb[4 * g + i] : xb[4 * g + i];
            tables[16 * g + nib] = sum;
        }
    }
}

static int32_t bs1_block(const uint8_t *w, const int32_t *tables) {
    uint32_t sum = 0;
    for (int j = 0; j < 32; j++)
        sum += (uint32_t)tables[32 * j + (w[j] & 15)] + (uint32_t)tables[32 * j + 16 + (w[j] >> 4)];
    return (int32_t)sum;
}

typedef void (*build_fn)(const int32_t *xb, int32_t *tables);
typedef int32_t (*block_fn)(const uint8_t *w, const int32_t *tables);

/* For each activation row and block: build the block's tables, then add one
 * block sum to every weight row's result (accumulated modulo 2^32, which is
 * what the int32 result of an exact int64 sum is). */
static void lut_gemm(const bl_gemm_task *t, size_t block_weights, size_t block_bytes,
                     build_fn build, block_fn block_sum) {
    static _Thread_local int32_t tables[64 * 256]; /* the largest set: bt1 */
    int32_t xb[320];
    int32_t *out = t->out;
    for (size_t n = 0; n < t->x->n; n++) {
        uint32_t *acc = (uint32_t *)(out + n * t->out_stride);
        memset(acc, 0, t->rows * sizeof *acc);
        for (size_t b = 0; b < t->cols / block_weights; b++) {
            load_block(t->x, n, b * block_weights, block_weights, xb);
            build(xb, tables);
            for (size_t r = 0; r < t->rows; r++)
                acc[r] += (uint32_t)block_sum(t->w + r * t->w_row_bytes + b * block_bytes, tables);
        }
    }
}

/* One kernel per activation format, GEMV and GEMM alike (load_block reads x->format). */
void bl_gemm_bt2_i8_lut__scalar(const bl_gemm_task *t) {
    lut_gemm(t, 256, 64, bt2_tables, bt2_block);
}
void bl_gemm_bt2_i16_lut__scalar(const bl_gemm_task *t) {
    lut_gemm(t, 256, 64, bt2_tables, bt2_block);
}
void bl_gemm_bt1_i8_lut__scalar(const bl_gemm_task *t) {
    lut_gemm(t, 320, 64, bt1_tables, bt1_block);
}
void bl_gemm_bt1_i16_lut__scalar(const bl_gemm_task *t) {
    lut_gemm(t, 320, 64, bt1_tables, bt1_block);
}
void bl_gemm_bs1_i8_lut__scalar(const bl_gemm_task *t) {
    lut_gemm(t, 256, 32, bs1_tables, bs1_block);
}
void bl_gemm_bs1_i16_lut__scalar(const bl_gemm_task *t) {
    lut_gemm(t, 256, 32, bs1_tables, bs1_block);
}
