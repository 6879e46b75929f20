/* Activations in the form each weight kind multiplies with. One portable
 * implementation: every ISA's kernels see the very same integers. */
#ifndef BL_ACTIVATIONS_H
#define BL_ACTIVATIONS_H

#include <stddef.h>
#include <stdint.h>

typedef enum bl_act_format {
    BL_ACT_I8,  /* per-row absmax int8, s = 127 / max|x|        (ternary, sign) */
    BL_ACT_I16, /* per-row absmax int16, s = 32767 / max|x|     (ternary, sign) */
    BL_ACT_Q8,  /* blocks of 32: float d, int32 sum, int8 q[32]  (q8_0, q4_0)    */
    BL_ACT_F32, /* float32 as given                              (f32, f16, bf16)*/
    BL_ACT_COUNT
} bl_act_format;

typedef struct bl_q8_block {
    float d;
    int32_t sum;
    int8_t q[32];
} bl_q8_block;

typedef struct bl_activations {
    bl_act_format format;
    size_t n;         /* rows (tokens)                                    */
    size_t cols;      /* padded with zeros to the weight type's block      */
    size_t row_bytes; /* stride between rows, a multiple of 64            */
    uint8_t *data;
    int32_t *sums;    /* I8/I16: sum of each row's integers               */
    float *scales;    /* I8/I16: s of each row (y = dot * row_scale / s)  */
    size_t capacity_bytes, capacity_rows; /* what data / sums+scales can hold */
} bl_activations;

struct bl_pool;

/* Quantizes x [n, cols] into act, rows split over up to `threads` threads of pool.
 * act starts zeroed ({0}); its buffers are kept and reused by later calls,
 * growing only when a call needs more, so a caller that quantizes every token
 * allocates once. Free with bl_activations_free. */
int bl_activations_quantize(bl_activations *act, bl_act_format format, const float *x, size_t n,
                            size_t cols, size_t cols_padded, struct bl_pool *pool,
                            int threads);
void bl_activations_free(bl_activations *act);

/* x [rows, cols], cols a multiple of 32, into rows * cols / 32 consecutive q8
 * blocks, by the rule of BL_ACT_Q8 (the attention's queries against a q8_0
 * key cache). */
void bl_quantize_q8_blocks(const float *x, size_t rows, size_t cols, bl_q8_block *dst);

#endif
