/* The transformer's non-matmul operations, in portable C written so that
 * compilers vectorize the inner loops (independent partial sums instead of
 * one serial accumulator). They are compiled once for every ISA, so their
 * results do not depend on which kernel table runs the matrix products.
 * Rows are contiguous: a [rows, cols] array has stride cols unless stated. */
#ifndef BL_OPS_H
#define BL_OPS_H

#include <stddef.h>
#include <stdint.h>

/* out = x / sqrt(mean(x^2) + eps) * weight, per row (out may be x). */
void bl_rmsnorm(float *out, const float *x, const float *weight, size_t rows, size_t cols,
                float eps);

/* x = (x - mean(x)) / sqrt(var(x) + eps), per row, without parameters. */
void bl_layernorm(float *x, size_t rows, size_t cols, float eps);

/* x += y */
void bl_add(float *x, const float *y, size_t count);

/* out[r, c] = x[r, c] * scale[c] (out may be x). */
void bl_scale_columns(float *out, const float *x, const float *scale, size_t rows, size_t cols);

/* Each row's blocks of `block` values (a power of two dividing cols) through
 * the normalized Walsh-Hadamard transform, in place (ops/hadamard.c). */
void bl_hadamard_rows(float *x, size_t rows, size_t cols, size_t block);

typedef enum bl_ffn_activation { BL_FFN_SILU, BL_FFN_RELU2 } bl_ffn_activation;

/* gate = act(gate) * up: the gated feed-forward's nonlinearity. */
void bl_gated_activation(float *gate, const float *up, size_t count, bl_ffn_activation act);

/* RoPE angles for n positions: cos/sin [n, n_rot / 2], pair i turning at
 * pos * theta^(-2i / n_rot) / factor (factor > 1: linear position scaling). */
void bl_rope_angles(float *cos_out, float *sin_out, const int32_t *positions, size_t n,
                    int n_rot, float theta, float factor);

/* Which dimensions a RoPE pair joins within a head. */
typedef enum bl_rope_style {
    BL_ROPE_NEOX, /* i and i + n_rot / 2: HF's rotate_half, q/k as checkpoints store them */
    BL_ROPE_NORM  /* 2i and 2i + 1: llama.cpp's llama graph, q/k rows permuted to match    */
} bl_rope_style;

/* Rotates the first n_rot dimensions of each head of x [n, n_heads * head_dim]
 * (row stride `stride`); pair i turns by the angle of cos/sin column i. */
void bl_rope(float *x, size_t n, size_t stride, int n_heads, int head_dim, int n_rot,
             const float *cos, const float *sin, bl_rope_style style);

/* Attention over the KV cache: attention.h. */

#endif
