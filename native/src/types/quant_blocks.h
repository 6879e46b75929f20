/* Block shapes of llama.cpp's scaled block types q8_0, q4_0, q1_0, q2_0 (and
 * PrismML's q2_0_g128): each block is an f16 scale d, then its weights. The
 * type table (types/q*_0.c), the KV cache and every kernel take them from here.
 * Byte layouts: docs/FORMAT.md (and docs/INTEROP.md). */
#ifndef BL_QUANT_BLOCKS_H
#define BL_QUANT_BLOCKS_H

#define BL_Q_BLOCK 32          /* weights of a q8_0 or q4_0 block        */
#define BL_Q8_0_BYTES 34       /* d, int8 q[32]                          */
#define BL_Q4_0_BYTES 18       /* d, qs[16]: nibbles j and j + 16        */
#define BL_Q1_0_BLOCK 128
#define BL_Q1_0_BYTES 18       /* d, qs[16]: one sign bit a weight       */
#define BL_Q2_0_BLOCK 64
#define BL_Q2_0_BYTES 18       /* d, qs[16]: 2-bit codes, four a byte    */
#define BL_Q2_0_G128_BLOCK 128
#define BL_Q2_0_G128_BYTES 34  /* d, qs[32]: 2-bit codes, four a byte    */

/* The 1- and 2-bit group types as the x86 kernels take them (avx2/q1_q2.c,
 * avx2/q1_q2_lut.c, avx512/q1_q2.c): one kernel instance per row, each
 * reading its shape here (constant indexes, so the compiler folds them). */
typedef enum bl_lowbit { BL_LOWBIT_Q1_0, BL_LOWBIT_Q2_0, BL_LOWBIT_Q2_0_G128 } bl_lowbit;
typedef struct bl_lowbit_shape {
    int block; /* weights per block, one scale each */
    int bytes; /* bytes per block                   */
    int bits;  /* bits per weight                   */
} bl_lowbit_shape;
static const bl_lowbit_shape bl_lowbit_shapes[] = {
    [BL_LOWBIT_Q1_0] = {BL_Q1_0_BLOCK, BL_Q1_0_BYTES, 1},
    [BL_LOWBIT_Q2_0] = {BL_Q2_0_BLOCK, BL_Q2_0_BYTES, 2},
    [BL_LOWBIT_Q2_0_G128] = {BL_Q2_0_G128_BLOCK, BL_Q2_0_G128_BYTES, 2},
};

#endif
