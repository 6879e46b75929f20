/* The GGUF metadata keys and tensor names the loader reads, each spelled once.
 * convert/gguf_names.py is the converter's view of the same names (gguf-py's
 * constants where llama.cpp has the name); tests/model/test_tables.py reads
 * this file and holds the two to agreement, so keep one #define per line:
 *   BL_KEY_*         a whole key
 *   BL_ARCH_KEY_*    a key after "<general.architecture>."
 *   BL_TENSOR_*      a model tensor, followed by BL_SUFFIX_*
 *   BL_LAYER_TENSOR_* a layer's tensor, after BL_LAYER_PREFIX, followed by BL_SUFFIX_* */
#ifndef BL_GGUF_NAMES_H
#define BL_GGUF_NAMES_H

#define BL_KEY_ARCHITECTURE "general.architecture"
#define BL_KEY_FORMAT_VERSION "bitllm.format_version"
#define BL_KEY_ACTIVATION "bitllm.activation"
#define BL_KEY_ROPE_TYPE "bitllm.rope_type"
#define BL_KEY_SUB_NORMS "bitllm.sub_norms"
#define BL_KEY_ACTIVATION_BITS "bitllm.activation_bits"
#define BL_KEY_POST_LAYERNORM_EPS "bitllm.post_layernorm_eps"
#define BL_KEY_TIED_HEAD "bitllm.tied_head"

/* PrismML's prism.hadamard contract (Bonsai 2; model/rotation.c), read, not written */
#define BL_KEY_HADAMARD_VERSION "prism.hadamard.version"
#define BL_KEY_HADAMARD_BLOCK_SIZE "prism.hadamard.block_size"
#define BL_KEY_HADAMARD_TRANSFORM "prism.hadamard.transform"
#define BL_KEY_HADAMARD_AXIS "prism.hadamard.axis"
#define BL_KEY_HADAMARD_SIGN_MODE "prism.hadamard.sign_mode"
#define BL_KEY_HADAMARD_SIGN_WIDTHS "prism.hadamard.sign_widths"
#define BL_KEY_HADAMARD_SIGN_VALUES "prism.hadamard.sign_values"
#define BL_KEY_HADAMARD_WEIGHT_NAMES "prism.hadamard.weight_names"
#define BL_KEY_HADAMARD_INVERSE_WEIGHT_NAMES "prism.hadamard.inverse_weight_names"
#define BL_KEY_HADAMARD_GDN_V_GROUPED "prism.hadamard.gdn_v_grouped"
#define BL_KEY_HADAMARD_TIED_OUTPUT "prism.hadamard.tied_output"

#define BL_ARCH_KEY_CONTEXT_LENGTH "context_length"
#define BL_ARCH_KEY_EMBEDDING_LENGTH "embedding_length"
#define BL_ARCH_KEY_BLOCK_COUNT "block_count"
#define BL_ARCH_KEY_FEED_FORWARD_LENGTH "feed_forward_length"
#define BL_ARCH_KEY_VOCAB_SIZE "vocab_size"
#define BL_ARCH_KEY_HEAD_COUNT "attention.head_count"
#define BL_ARCH_KEY_HEAD_COUNT_KV "attention.head_count_kv"
#define BL_ARCH_KEY_KEY_LENGTH "attention.key_length"
#define BL_ARCH_KEY_VALUE_LENGTH "attention.value_length"
#define BL_ARCH_KEY_LAYERNORM_RMS_EPS "attention.layer_norm_rms_epsilon"
#define BL_ARCH_KEY_ROPE_FREQ_BASE "rope.freq_base"
#define BL_ARCH_KEY_ROPE_DIMENSION_COUNT "rope.dimension_count"
#define BL_ARCH_KEY_ROPE_SCALING_TYPE "rope.scaling.type"
#define BL_ARCH_KEY_ROPE_SCALING_FACTOR "rope.scaling.factor"

#define BL_TENSOR_TOKEN_EMBD "token_embd"
#define BL_TENSOR_OUTPUT_NORM "output_norm"
#define BL_TENSOR_OUTPUT "output"

#define BL_LAYER_PREFIX "blk.%d."
#define BL_LAYER_TENSOR_ATTN_NORM "attn_norm"
#define BL_LAYER_TENSOR_ATTN_Q "attn_q"
#define BL_LAYER_TENSOR_ATTN_K "attn_k"
#define BL_LAYER_TENSOR_ATTN_V "attn_v"
#define BL_LAYER_TENSOR_ATTN_OUTPUT "attn_output"
#define BL_LAYER_TENSOR_ATTN_SUB_NORM "attn_sub_norm"
#define BL_LAYER_TENSOR_ATTN_Q_NORM "attn_q_norm"
#define BL_LAYER_TENSOR_ATTN_K_NORM "attn_k_norm"
#define BL_LAYER_TENSOR_FFN_NORM "ffn_norm"
#define BL_LAYER_TENSOR_FFN_GATE "ffn_gate"
#define BL_LAYER_TENSOR_FFN_UP "ffn_up"
#define BL_LAYER_TENSOR_FFN_DOWN "ffn_down"
#define BL_LAYER_TENSOR_FFN_SUB_NORM "ffn_sub_norm"

#define BL_SUFFIX_WEIGHT ".weight"
#define BL_SUFFIX_IN_SCALE ".in_scale"
#define BL_SUFFIX_OUT_SCALE ".out_scale"

#endif
