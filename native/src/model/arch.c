/* The architectures bit-convert writes (docs/GGUF.md); adding one adds a row. */
#include <string.h>

#include "model.h"

static const bl_arch archs[] = {
    /* 1bitLLM bitnet_b1_58-*: llama + SiLU FFN + sub-norms */
    {.name = "bitnet", .activation = BL_FFN_SILU, .sub_norms = 1, .act_bits = 8,
     .rope = BL_ROPE_NEOX},
    /* microsoft BitNet-b1.58-2B-4T: relu2 FFN, sub-norms, GQA */
    {.name = "bitnet-b1.58", .activation = BL_FFN_RELU2, .sub_norms = 1, .act_bits = 8,
     .rope = BL_ROPE_NEOX},
    /* HF1BitLLM Llama3-8B-1.58, Falcon3-*-1.58bit: plain llama, q/k permuted as llama.cpp's */
    {.name = "llama", .activation = BL_FFN_SILU, .act_bits = 8, .rope = BL_ROPE_NORM},
    /* OneBit: sign projections with g/h and a LayerNorm after each, W1A16 */
    {.name = "onebit", .activation = BL_FFN_SILU, .scaled_projections = 1, .act_bits = 16,
     .rope = BL_ROPE_NEOX},
};

const bl_arch *bl_arch_find(const char *name) {
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (strcmp(archs[i].name, name) == 0) return &archs[i];
    return NULL;
}

const char *bl_arch_names(void) { return "bitnet, bitnet-b1.58, llama, onebit"; }
