"""Every GGUF tensor name and metadata key bit-convert writes, stated once.

llama.cpp's names come from gguf-py's own constants; bitllm's own keys and tensor suffixes are
spelled here. native/src/model/gguf_names.h is the C loader's view of the same names, and
tests/model/test_tables.py holds the two to agreement (docs/GGUF.md lists them for readers).
"""

from __future__ import annotations

from gguf import MODEL_TENSOR, TENSOR_NAMES, Keys

# ---- metadata keys; "{arch}" in a key is general.architecture ----------------------------
ARCHITECTURE = Keys.General.ARCHITECTURE  # gguf-py's GGUFWriter writes it itself
NAME = Keys.General.NAME
QUANTIZATION_VERSION = Keys.General.QUANTIZATION_VERSION
CONTEXT_LENGTH = Keys.LLM.CONTEXT_LENGTH
EMBEDDING_LENGTH = Keys.LLM.EMBEDDING_LENGTH
BLOCK_COUNT = Keys.LLM.BLOCK_COUNT
FEED_FORWARD_LENGTH = Keys.LLM.FEED_FORWARD_LENGTH
VOCAB_SIZE = Keys.LLM.VOCAB_SIZE
HEAD_COUNT = Keys.Attention.HEAD_COUNT
HEAD_COUNT_KV = Keys.Attention.HEAD_COUNT_KV
KEY_LENGTH = Keys.Attention.KEY_LENGTH
VALUE_LENGTH = Keys.Attention.VALUE_LENGTH
LAYERNORM_RMS_EPS = Keys.Attention.LAYERNORM_RMS_EPS
ROPE_FREQ_BASE = Keys.Rope.FREQ_BASE
ROPE_DIMENSION_COUNT = Keys.Rope.DIMENSION_COUNT
ROPE_SCALING_TYPE = Keys.Rope.SCALING_TYPE
ROPE_SCALING_FACTOR = Keys.Rope.SCALING_FACTOR

TOKENIZER_MODEL = Keys.Tokenizer.MODEL
TOKENIZER_PRE = Keys.Tokenizer.PRE
TOKENIZER_TOKENS = Keys.Tokenizer.LIST
TOKENIZER_TOKEN_TYPE = Keys.Tokenizer.TOKEN_TYPE
TOKENIZER_SCORES = Keys.Tokenizer.SCORES
TOKENIZER_MERGES = Keys.Tokenizer.MERGES
TOKENIZER_ADD_BOS = Keys.Tokenizer.ADD_BOS
TOKENIZER_ADD_EOS = Keys.Tokenizer.ADD_EOS
CHAT_TEMPLATE = Keys.Tokenizer.CHAT_TEMPLATE
# special token ids, by the name convert/vocab.py gives them
SPECIAL_TOKEN_IDS = {
    "bos": Keys.Tokenizer.BOS_ID,
    "eos": Keys.Tokenizer.EOS_ID,
    "eot": Keys.Tokenizer.EOT_ID,
    "pad": Keys.Tokenizer.PAD_ID,
    "unk": Keys.Tokenizer.UNK_ID,
}

# bitllm's own keys: what llama.cpp has no key for
FORMAT_VERSION = "bitllm.format_version"
ACTIVATION = "bitllm.activation"
SUB_NORMS = "bitllm.sub_norms"
TIED_HEAD = "bitllm.tied_head"
ROPE_TYPE = "bitllm.rope_type"
ACTIVATION_BITS = "bitllm.activation_bits"
SOURCE_FAMILY = "bitllm.source_family"
SCALE_CONVENTION = "bitllm.scale_convention"
CONVERTER_VERSION = "bitllm.converter_version"
POST_LAYERNORM_EPS = "bitllm.post_layernorm_eps"

# PrismML's prism.hadamard contract (Bonsai 2): the library reads it, bit-convert writes none
HADAMARD_VERSION = "prism.hadamard.version"
HADAMARD_BLOCK_SIZE = "prism.hadamard.block_size"
HADAMARD_TRANSFORM = "prism.hadamard.transform"
HADAMARD_AXIS = "prism.hadamard.axis"
HADAMARD_SIGN_MODE = "prism.hadamard.sign_mode"
HADAMARD_SIGN_WIDTHS = "prism.hadamard.sign_widths"
HADAMARD_SIGN_VALUES = "prism.hadamard.sign_values"
HADAMARD_WEIGHT_NAMES = "prism.hadamard.weight_names"
HADAMARD_INVERSE_WEIGHT_NAMES = "prism.hadamard.inverse_weight_names"
HADAMARD_GDN_V_GROUPED = "prism.hadamard.gdn_v_grouped"
HADAMARD_TIED_OUTPUT = "prism.hadamard.tied_output"

# ---- tensor names; "{bid}" is the layer number -------------------------------------------
TOKEN_EMBD = TENSOR_NAMES[MODEL_TENSOR.TOKEN_EMBD]
OUTPUT_NORM = TENSOR_NAMES[MODEL_TENSOR.OUTPUT_NORM]
OUTPUT = TENSOR_NAMES[MODEL_TENSOR.OUTPUT]
ATTN_NORM = TENSOR_NAMES[MODEL_TENSOR.ATTN_NORM]
ATTN_Q = TENSOR_NAMES[MODEL_TENSOR.ATTN_Q]
ATTN_K = TENSOR_NAMES[MODEL_TENSOR.ATTN_K]
ATTN_V = TENSOR_NAMES[MODEL_TENSOR.ATTN_V]
ATTN_OUTPUT = TENSOR_NAMES[MODEL_TENSOR.ATTN_OUT]
ATTN_SUB_NORM = TENSOR_NAMES[MODEL_TENSOR.ATTN_SUB_NORM]
ATTN_Q_NORM = TENSOR_NAMES[MODEL_TENSOR.ATTN_Q_NORM]  # qwen3's per-head norms (llama.cpp's)
ATTN_K_NORM = TENSOR_NAMES[MODEL_TENSOR.ATTN_K_NORM]
FFN_NORM = TENSOR_NAMES[MODEL_TENSOR.FFN_NORM]
FFN_GATE = TENSOR_NAMES[MODEL_TENSOR.FFN_GATE]
FFN_UP = TENSOR_NAMES[MODEL_TENSOR.FFN_UP]
FFN_DOWN = TENSOR_NAMES[MODEL_TENSOR.FFN_DOWN]
FFN_SUB_NORM = TENSOR_NAMES[MODEL_TENSOR.FFN_SUB_NORM]

# what follows a tensor's name: its weight, or OneBit's g and h beside a sign projection
WEIGHT = "weight"
IN_SCALE = "in_scale"
OUT_SCALE = "out_scale"


def key(template: str, arch: str) -> str:
    """A per-architecture key: key(BLOCK_COUNT, "bitnet") -> "bitnet.block_count"."""
    return template.format(arch=arch)


def tensor(base: str, suffix: str = WEIGHT, layer: int | None = None) -> str:
    """tensor(ATTN_Q, layer=3) -> "blk.3.attn_q.weight"; tensor(OUTPUT) -> "output.weight"."""
    return f"{base.format(bid=layer)}.{suffix}"
