/* Tensor type traits: layout facts and the reference (portable C) codecs of
 * every type, one row at a time. The byte layouts are documented in
 * docs/FORMAT.md; kernels live in native/src/kernels/. */
#ifndef BL_TYPES_H
#define BL_TYPES_H

#include <stdint.h>

#include "bitllm.h"

typedef enum bl_type_id {
    BL_TYPE_F32,
    BL_TYPE_F16,
    BL_TYPE_BF16,
    BL_TYPE_Q8_0,
    BL_TYPE_Q4_0,
    BL_TYPE_BT2,
    BL_TYPE_BT1,
    BL_TYPE_BS1,
    BL_TYPE_Q4_K,
    BL_TYPE_Q5_K,
    BL_TYPE_Q6_K,
    BL_TYPE_TQ1_0,
    BL_TYPE_TQ2_0,
    BL_TYPE_Q1_0,
    BL_TYPE_Q2_0,
    BL_TYPE_Q2_0_G128, /* q2_0's older group-128 packing: same GGUF id, other size */
    BL_TYPE_COUNT
} bl_type_id;

typedef struct bl_type_traits {
    bl_type_info info;
    /* Ternary and sign types: values in {-1,0,1} (sign: {-1,1}) <-> packed row.
     * unpack_row returns the number of invalid codes met (0 for a valid row). */
    void (*pack_row)(const int8_t *values, int64_t cols, uint8_t *dst);
    int64_t (*unpack_row)(const uint8_t *src, int64_t cols, int8_t *values);
    /* Float and quant types: float32 <-> packed row. */
    void (*quantize_row)(const float *src, int64_t cols, uint8_t *dst);
    void (*dequantize_row)(const uint8_t *src, int64_t cols, float *dst);
} bl_type_traits;

extern const bl_type_traits bl_type_f32, bl_type_f16, bl_type_bf16, bl_type_q8_0, bl_type_q4_0,
    bl_type_bt2, bl_type_bt1, bl_type_bs1, bl_type_q4_k, bl_type_q5_k, bl_type_q6_k,
    bl_type_tq1_0, bl_type_tq2_0,
    bl_type_q1_0, bl_type_q2_0, bl_type_q2_0_g128;

const bl_type_traits *bl_traits(bl_type_id id);
/* Looks a type up by name; on failure records an error naming the known types. */
int bl_type_find(const char *name, bl_type_id *out);
/* The types stored under one GGUF type id, in table order, into ids[0..max):
 * returns how many there are (0: none). Most ids name one layout; where an id
 * names several (q2_0: groups of 64 or 128), a reader tells them apart by the
 * tensor's byte size, and the first is the one llama.cpp writes today. */
int bl_type_layouts(uint32_t gguf_type, bl_type_id *ids, int max);

static inline int64_t bl_padded_cols(const bl_type_traits *t, int64_t cols) {
    int64_t b = t->info.block_weights;
    return (cols + b - 1) / b * b;
}
/* Packed bytes of one row, without its row scale. */
static inline int64_t bl_row_data_bytes(const bl_type_traits *t, int64_t cols) {
    return bl_padded_cols(t, cols) / t->info.block_weights * t->info.block_bytes;
}
/* A rows x cols tensor: all rows' blocks, then (row_scale types) float32 scales. */
static inline int64_t bl_tensor_size(const bl_type_traits *t, int64_t rows, int64_t cols) {
    return rows * bl_row_data_bytes(t, cols) + (t->info.row_scale ? rows * 4 : 0);
}

#endif
