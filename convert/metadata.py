"""GGUF metadata of a plan: llama.cpp's keys where llama.cpp has one, bitllm.* otherwise.

docs/GGUF.md is the list; the runtime reads these names.
"""

from __future__ import annotations

from typing import Any

from gguf import GGUFValueType

from . import gguf_names as names
from .plan import Plan

FORMAT_VERSION = 1
ONEBIT_LAYERNORM_EPS = 1e-5  # OneBit's parameter-free nn.LayerNorm after each sign linear
GGML_QUANTIZATION_VERSION = 2

U32, F32, BOOL, STR, ARRAY = (
    GGUFValueType.UINT32,
    GGUFValueType.FLOAT32,
    GGUFValueType.BOOL,
    GGUFValueType.STRING,
    GGUFValueType.ARRAY,
)

Entry = tuple[str, Any, GGUFValueType, GGUFValueType | None]


def _converter_version() -> str:
    from ..runtime.version import __version__

    return __version__


def model_entries(plan: Plan) -> list[Entry]:
    arch, h, family, graph = plan.arch, plan.hyper, plan.family, plan.family.graph

    def at(template: str) -> str:
        return names.key(template, arch)

    entries: list[Entry] = [
        (names.NAME, h.name, STR, None),
        (names.QUANTIZATION_VERSION, GGML_QUANTIZATION_VERSION, U32, None),
        (at(names.CONTEXT_LENGTH), h.context, U32, None),
        (at(names.EMBEDDING_LENGTH), h.hidden, U32, None),
        (at(names.BLOCK_COUNT), h.layers, U32, None),
        (at(names.FEED_FORWARD_LENGTH), h.ffn, U32, None),
        (at(names.HEAD_COUNT), h.heads, U32, None),
        (at(names.HEAD_COUNT_KV), h.kv_heads, U32, None),
        (at(names.KEY_LENGTH), h.head_dim, U32, None),
        (at(names.VALUE_LENGTH), h.head_dim, U32, None),
        (at(names.LAYERNORM_RMS_EPS), h.norm_eps, F32, None),
        (at(names.ROPE_FREQ_BASE), h.rope_theta, F32, None),
        (at(names.ROPE_DIMENSION_COUNT), h.head_dim, U32, None),
        (at(names.VOCAB_SIZE), h.vocab, U32, None),
        (names.FORMAT_VERSION, FORMAT_VERSION, U32, None),
        (names.ACTIVATION, h.activation, STR, None),
        (names.SUB_NORMS, graph.sub_norms, BOOL, None),
        (names.TIED_HEAD, h.tied, BOOL, None),
        (names.ROPE_TYPE, graph.rope_type, STR, None),
        (names.ACTIVATION_BITS, family.activation_bits, U32, None),
        (names.SOURCE_FAMILY, family.name, STR, None),
        (names.SCALE_CONVENTION, family.scale_convention, STR, None),
        (names.CONVERTER_VERSION, _converter_version(), STR, None),
    ]
    if h.rope_scaling is not None:
        kind, factor = h.rope_scaling
        entries += [
            (at(names.ROPE_SCALING_TYPE), kind, STR, None),
            (at(names.ROPE_SCALING_FACTOR), factor, F32, None),
        ]
    if graph.scaled_projections:
        entries.append((names.POST_LAYERNORM_EPS, ONEBIT_LAYERNORM_EPS, F32, None))
    return entries


def tokenizer_entries(plan: Plan) -> list[Entry]:
    v = plan.vocab
    entries: list[Entry] = [
        (names.TOKENIZER_MODEL, v.model, STR, None),
        (names.TOKENIZER_PRE, v.pre, STR, None),
        (names.TOKENIZER_TOKENS, v.tokens, ARRAY, STR),
        (names.TOKENIZER_TOKEN_TYPE, v.token_types, ARRAY, GGUFValueType.INT32),
    ]
    if v.scores is not None:
        entries.append((names.TOKENIZER_SCORES, v.scores, ARRAY, F32))
    if v.merges:
        entries.append((names.TOKENIZER_MERGES, v.merges, ARRAY, STR))
    for kind, token_id in v.special_ids.items():
        entries.append((names.SPECIAL_TOKEN_IDS[kind], token_id, U32, None))
    entries += [
        (names.TOKENIZER_ADD_BOS, v.add_bos, BOOL, None),
        (names.TOKENIZER_ADD_EOS, v.add_eos, BOOL, None),
    ]
    if v.chat_template:
        entries.append((names.CHAT_TEMPLATE, v.chat_template, STR, None))
    return entries
