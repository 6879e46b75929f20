"""GGUF metadata of a plan: llama.cpp's keys where llama.cpp has one, bitllm.* otherwise.

docs/GGUF.md is the list; the runtime reads these names.
"""

from __future__ import annotations

from typing import Any

from gguf import GGUFValueType

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
    arch, h, family = plan.family.arch, plan.hyper, plan.family
    entries: list[Entry] = [
        ("general.name", h.name, STR, None),
        ("general.quantization_version", GGML_QUANTIZATION_VERSION, U32, None),
        (f"{arch}.context_length", h.context, U32, None),
        (f"{arch}.embedding_length", h.hidden, U32, None),
        (f"{arch}.block_count", h.layers, U32, None),
        (f"{arch}.feed_forward_length", h.ffn, U32, None),
        (f"{arch}.attention.head_count", h.heads, U32, None),
        (f"{arch}.attention.head_count_kv", h.kv_heads, U32, None),
        (f"{arch}.attention.key_length", h.head_dim, U32, None),
        (f"{arch}.attention.value_length", h.head_dim, U32, None),
        (f"{arch}.attention.layer_norm_rms_epsilon", h.norm_eps, F32, None),
        (f"{arch}.rope.freq_base", h.rope_theta, F32, None),
        (f"{arch}.rope.dimension_count", h.head_dim, U32, None),
        (f"{arch}.vocab_size", h.vocab, U32, None),
        ("bitllm.format_version", FORMAT_VERSION, U32, None),
        ("bitllm.activation", h.activation, STR, None),
        ("bitllm.sub_norms", family.sub_norms is not None, BOOL, None),
        ("bitllm.tied_head", h.tied, BOOL, None),
        ("bitllm.rope_type", family.rope_type, STR, None),
        ("bitllm.activation_bits", family.activation_bits, U32, None),
        ("bitllm.source_family", family.name, STR, None),
        ("bitllm.scale_convention", family.scale_convention, STR, None),
        ("bitllm.converter_version", _converter_version(), STR, None),
    ]
    if h.rope_scaling is not None:
        kind, factor = h.rope_scaling
        entries += [
            (f"{arch}.rope.scaling.type", kind, STR, None),
            (f"{arch}.rope.scaling.factor", factor, F32, None),
        ]
    if family.arch == "onebit":
        entries.append(("bitllm.post_layernorm_eps", ONEBIT_LAYERNORM_EPS, F32, None))
    return entries


def tokenizer_entries(plan: Plan) -> list[Entry]:
    v = plan.vocab
    entries: list[Entry] = [
        ("tokenizer.ggml.model", v.model, STR, None),
        ("tokenizer.ggml.pre", v.pre, STR, None),
        ("tokenizer.ggml.tokens", v.tokens, ARRAY, STR),
        ("tokenizer.ggml.token_type", v.token_types, ARRAY, GGUFValueType.INT32),
    ]
    if v.scores is not None:
        entries.append(("tokenizer.ggml.scores", v.scores, ARRAY, F32))
    if v.merges:
        entries.append(("tokenizer.ggml.merges", v.merges, ARRAY, STR))
    names = {"bos": "bos", "eos": "eos", "eot": "eot", "pad": "padding", "unk": "unknown"}
    for key, token_id in v.special_ids.items():
        entries.append((f"tokenizer.ggml.{names[key]}_token_id", token_id, U32, None))
    entries += [
        ("tokenizer.ggml.add_bos_token", v.add_bos, BOOL, None),
        ("tokenizer.ggml.add_eos_token", v.add_eos, BOOL, None),
    ]
    if v.chat_template:
        entries.append(("tokenizer.chat_template", v.chat_template, STR, None))
    return entries
