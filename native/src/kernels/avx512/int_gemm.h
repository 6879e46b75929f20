/* Batched (GEMM) products of ternary and sign weights with integer
 * activations, shared by the types: a type only says how to decode its rows
 * into one byte per weight (the code), and the common tile does the rest. */
#ifndef BL_AVX512_INT_GEMM_H
#define BL_AVX512_INT_GEMM_H

#include "../kernels.h"

/* Decodes columns [first_col, first_col + cols) of one packed row into codes,
 * one byte per column; first_col and cols are whole blocks. */
typedef void (*bl_avx512_decode_fn)(const uint8_t *row, size_t first_col, size_t cols,
                                    uint8_t *codes);

/* The ternary types' decoders (ternary.c; bt1's needs the avx512 table built,
 * which builds its digit tables): code = trit + 1. */
void bl_avx512_decode_bt2(const uint8_t *row, size_t first_col, size_t cols, uint8_t *codes);
void bl_avx512_decode_bt1(const uint8_t *row, size_t first_col, size_t cols, uint8_t *codes);

/* What the codes mean:
 *   ternary: code = trit + 1,  dot = sum(code * x) - sum(x)
 *   sign:    code = 1 for -1,  dot = sum(x) - 2 * sum(code * x) */
typedef enum bl_avx512_codes { BL_CODES_TERNARY, BL_CODES_SIGN } bl_avx512_codes;

/* The column chunk decoded at a time: whole blocks of every type (256, 320). */
#define BL_AVX512_CHUNK_COLS 2560

/* out[t][r] for every row and token of the task, in int32 (I8 or I16 x). */
void bl_avx512_int_gemm(const bl_gemm_task *t, bl_avx512_decode_fn decode,
                        bl_avx512_codes meaning);

#endif
