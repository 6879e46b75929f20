/* The architectures the loader runs: those bit-convert writes (docs/GGUF.md) and
 * those only llama.cpp writes (docs/INTEROP.md); adding one adds a row.
 * The one place their graphs are stated: the converter reads these rows through
 * bl_arch_info_at (convert/families.py). */
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "model.h"

const char *const bl_activation_names[BL_FFN_ACTIVATION_COUNT] = {[BL_FFN_SILU] = "silu",
                                                                  [BL_FFN_RELU2] = "relu2"};
const char *const bl_rope_names[BL_ROPE_STYLE_COUNT] = {[BL_ROPE_NEOX] = "neox",
                                                        [BL_ROPE_NORM] = "norm"};

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
    /* llama.cpp's qwen3 (PrismML's Bonsai): per-head q/k RMSNorm, head_dim from key_length */
    {.name = "qwen3", .activation = BL_FFN_SILU, .qk_norm = 1, .act_bits = 8,
     .rope = BL_ROPE_NEOX},
};

#define N_ARCHS ((int)(sizeof archs / sizeof archs[0]))

/* Other names files give a row's graph; their metadata keys keep the file's name. */
static const struct arch_alias {
    const char *alias, *name;
} aliases[] = {
    /* bitnet.cpp's first name for 2B-4T's graph (docs/INTEROP.md): bitnet-25.* keys */
    {"bitnet-25", "bitnet-b1.58"},
};

#define N_ALIASES ((int)(sizeof aliases / sizeof aliases[0]))

static const bl_arch *find_row(const char *name) {
    for (int i = 0; i < N_ARCHS; i++)
        if (strcmp(archs[i].name, name) == 0) return &archs[i];
    return NULL;
}

const bl_arch *bl_arch_find(const char *name) {
    for (int i = 0; i < N_ALIASES; i++)
        if (strcmp(aliases[i].alias, name) == 0) return find_row(aliases[i].name);
    return find_row(name);
}

void bl_arch_names(char *out, size_t size) {
    if (size == 0) return;
    out[0] = '\0';
    for (int i = 0; i < N_ARCHS + N_ALIASES; i++) {
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s%s", i ? ", " : "",
                 i < N_ARCHS ? archs[i].name : aliases[i - N_ARCHS].alias);
    }
}

int bl_arch_count(void) { return N_ARCHS; }

int bl_arch_info_at(int index, bl_arch_info *out) {
    if (!out) return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_arch_info_at: out is NULL");
    if (index < 0 || index >= N_ARCHS)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_arch_info_at: index %d is not in [0, %d)",
                       index, N_ARCHS);
    const bl_arch *a = &archs[index];
    *out = (bl_arch_info){
        .name = a->name,
        .activation = bl_activation_names[a->activation],
        .rope = bl_rope_names[a->rope],
        .sub_norms = a->sub_norms,
        .scaled_projections = a->scaled_projections,
        .act_bits = a->act_bits,
        .qk_norm = a->qk_norm,
    };
    return BL_OK;
}
