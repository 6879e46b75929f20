/* A model's weights on the GPU, in one allocation. Projections that read the
 * same input with the same weight type (q/k/v, gate/up) are stored as one
 * matrix with their rows stacked, so one launch runs them all; each member
 * writes its own columns of a shared output row. */
#ifndef BL_CUDA_DEVICE_MODEL_H
#define BL_CUDA_DEVICE_MODEL_H

#include "cuda_internal.h"

extern "C" {
#include "../model/model.h"
}

/* One matrix product and the OneBit scales around it. */
typedef struct bl_cuda_proj {
    bl_cuda_weight w;
    int64_t out_col;         /* first column of its output in the shared row    */
    const float *in_scale;   /* [cols] or NULL                                  */
    const float *out_scale;  /* [rows] or NULL: then a LayerNorm follows        */
} bl_cuda_proj;

#define BL_CUDA_MAX_GROUP 3

/* Products reading one input, written side by side into rows of out_cols. */
typedef struct bl_cuda_proj_group {
    bl_cuda_proj p[BL_CUDA_MAX_GROUP];
    int count;
    int64_t out_cols;
} bl_cuda_proj_group;

typedef struct bl_cuda_layer {
    const float *attn_norm, *ffn_norm, *attn_sub_norm, *ffn_sub_norm;
    bl_cuda_proj_group qkv, o, gate_up, down;
} bl_cuda_layer;

typedef struct bl_cuda_model {
    uint8_t *memory;          /* the one allocation everything below points into */
    int64_t bytes;            /* its size                                         */
    bl_cuda_layer *layers;    /* host array of device pointers                    */
    bl_cuda_proj_group head;
    const float *output_norm;
    float *rope_inv_freq;     /* [n_rot / 2], device                              */
    int act_bits;
} bl_cuda_model;

/* Copies m's weights to the current GPU. */
int bl_cuda_model_upload(const bl_model *m, bl_cuda_model **out);
void bl_cuda_model_free(bl_cuda_model *d);

#endif
