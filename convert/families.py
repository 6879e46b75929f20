"""Checkpoint families: what config.json says, what the weights mean, which graph runs them.

Facts per family are in ../shared/DESIGN.md section 2. The scale conventions were checked
against transformers' own BitLinear classes: `bitlinear` divides its output by weight_scale,
`autobitlinear` multiplies it (offline) or ternarizes the latent weight itself (online).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bitllm.convert.errors import ConvertError


@dataclass(frozen=True)
class Family:
    name: str  # bitllm.source_family
    arch: str  # general.architecture
    weights: str  # "latent", "packed", "onebit" or "onebit-latent"
    scale_convention: str  # bitllm.scale_convention: "absmean", "multiply" or "divide"
    sub_norms: tuple[str, str] | None  # HF names of the attention and FFN sub-norms
    rope_type: str  # "neox" (HF rotate-half) or "norm" (llama.cpp's interleaved pairs)
    activation_bits: int
    description: str


BITNET_2B4T_SUB_NORMS = ("self_attn.attn_sub_norm", "mlp.ffn_sub_norm")

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            name="1bitllm",
            arch="bitnet",
            weights="latent",
            scale_convention="absmean",
            sub_norms=("self_attn.inner_attn_ln", "mlp.ffn_layernorm"),
            rope_type="neox",
            activation_bits=8,
            description="1bitLLM bitnet_b1_58-* (BitnetForCausalLM, latent weights)",
        ),
        Family(
            name="bitnet-2b4t",
            arch="bitnet-b1.58",
            weights="packed",
            scale_convention="multiply",
            sub_norms=BITNET_2B4T_SUB_NORMS,
            rope_type="neox",
            activation_bits=8,
            description="microsoft BitNet-b1.58-2B-4T (BitNetForCausalLM, offline, packed)",
        ),
        Family(
            name="bitnet-2b4t-bf16",
            arch="bitnet-b1.58",
            weights="latent",
            scale_convention="absmean",
            sub_norms=BITNET_2B4T_SUB_NORMS,
            rope_type="neox",
            activation_bits=8,
            description="microsoft BitNet-b1.58-2B-4T-bf16 (BitNetForCausalLM, online)",
        ),
        Family(
            name="hf-bitnet",
            arch="llama",
            weights="packed",
            scale_convention="divide",
            sub_norms=None,
            rope_type="norm",
            activation_bits=8,
            description="Llama3-8B-1.58 / Falcon3-*-1.58bit (LlamaForCausalLM, bitnet quant)",
        ),
        Family(
            name="onebit",
            arch="onebit",
            weights="onebit",
            scale_convention="multiply",
            sub_norms=None,
            rope_type="neox",
            activation_bits=16,
            description="OneBit inference checkpoint (bitllama: sign bits, scales)",
        ),
        Family(
            name="onebit-latent",
            arch="onebit",
            weights="onebit-latent",
            scale_convention="multiply",
            sub_norms=None,
            rope_type="neox",
            activation_bits=16,
            description="OneBit training checkpoint (bitllama: latent weights, scales)",
        ),
    )
}


def supported() -> str:
    return "; ".join(f"{f.name}: {f.description}" for f in FAMILIES.values())


@dataclass(frozen=True)
class Hyper:
    layers: int
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    context: int
    rope_theta: float
    rope_scaling: tuple[str, float] | None  # ("linear", factor)
    norm_eps: float
    tied: bool
    activation: str  # "silu" or "relu2"
    name: str


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        raise ConvertError(f"{folder}: no config.json")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConvertError(f"{path}: cannot read: {e}") from None
    if not isinstance(config, dict):
        raise ConvertError(f"{path}: not a JSON object")
    return config


def _quant_config(config: dict) -> dict:
    quant = config.get("quantization_config")
    return quant if isinstance(quant, dict) else {}


def _bitnet_quant_family(base: Family, quant: dict, path: Path) -> Family:
    """A transformers bitnet quantization_config picks the family's weights and scales."""
    if quant.get("use_rms_norm"):
        raise ConvertError(f"{path}: quantization_config use_rms_norm is not supported")
    linear_class = quant.get("linear_class", "bitlinear")
    mode = quant.get("quantization_mode", "offline")
    if linear_class == "autobitlinear" and mode == "online":
        return dataclasses.replace(base, weights="latent", scale_convention="absmean")
    if linear_class == "autobitlinear":
        return dataclasses.replace(base, weights="packed", scale_convention="multiply")
    if linear_class == "bitlinear" and mode == "offline":
        return dataclasses.replace(base, weights="packed", scale_convention="divide")
    raise ConvertError(
        f"{path}: quantization_config linear_class {linear_class!r} / mode {mode!r} "
        "is not supported"
    )


def detect_family(config: dict, folder: Path, override: str | None) -> Family:
    path = folder / "config.json"
    if override is not None:
        if override not in FAMILIES:
            raise ConvertError(f"unknown --family {override!r}; supported: {', '.join(FAMILIES)}")
        return FAMILIES[override]
    architectures = config.get("architectures") or []
    arch = architectures[0] if isinstance(architectures, list) and architectures else None
    model_type = config.get("model_type")
    quant = _quant_config(config)
    if model_type == "bitllama" or (isinstance(arch, str) and arch.startswith("BitLlama")):
        return FAMILIES["onebit"]  # inference or training: told apart by the weights
    if arch == "BitnetForCausalLM":
        return FAMILIES["1bitllm"]
    if arch == "BitNetForCausalLM" or model_type == "bitnet":
        if quant.get("quant_method") != "bitnet":
            raise ConvertError(f"{path}: BitNetForCausalLM without a bitnet quantization_config")
        family = _bitnet_quant_family(FAMILIES["bitnet-2b4t"], quant, path)
        return FAMILIES["bitnet-2b4t-bf16"] if family.weights == "latent" else family
    if arch == "LlamaForCausalLM" and quant.get("quant_method") == "bitnet":
        return _bitnet_quant_family(FAMILIES["hf-bitnet"], quant, path)
    raise ConvertError(
        f"{path}: unknown checkpoint family (architectures {architectures!r}, model_type "
        f"{model_type!r}, quant_method {quant.get('quant_method')!r}); supported: {supported()}"
    )


def _require(config: dict, key: str, path: Path, kind: type = int) -> Any:
    value = config.get(key)
    if kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConvertError(f"{path}: {key} missing or not {kind.__name__}")
    return value


def _rope(config: dict, path: Path) -> tuple[float, tuple[str, float] | None]:
    """rope_theta and scaling from either config style (transformers 4 or 5)."""
    params = (
        config.get("rope_parameters") if isinstance(config.get("rope_parameters"), dict) else {}
    )
    theta = config.get("rope_theta", params.get("rope_theta", 10000.0))
    scaling = config.get("rope_scaling") or (params if params.get("rope_type") else None)
    if not isinstance(theta, (int, float)):
        raise ConvertError(f"{path}: rope_theta is not a number")
    if not scaling:
        return float(theta), None
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "default":
        return float(theta), None
    if kind == "linear" and isinstance(scaling.get("factor"), (int, float)):
        return float(theta), ("linear", float(scaling["factor"]))
    raise ConvertError(f"{path}: rope scaling {scaling!r} is not supported")


def read_hyper(config: dict, folder: Path) -> Hyper:
    path = folder / "config.json"
    heads = _require(config, "num_attention_heads", path)
    hidden = _require(config, "hidden_size", path)
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or hidden // heads
    activation = config.get("hidden_act", "silu")
    if activation not in ("silu", "relu2"):
        raise ConvertError(f"{path}: hidden_act {activation!r} is not supported (silu, relu2)")
    if heads % kv_heads or head_dim % 2:
        raise ConvertError(f"{path}: {heads} heads, {kv_heads} KV heads, head_dim {head_dim}")
    theta, scaling = _rope(config, path)
    return Hyper(
        layers=_require(config, "num_hidden_layers", path),
        hidden=hidden,
        ffn=_require(config, "intermediate_size", path),
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab=_require(config, "vocab_size", path),
        context=int(config.get("max_position_embeddings") or 2048),
        rope_theta=theta,
        rope_scaling=scaling,
        norm_eps=float(config.get("rms_norm_eps", 1e-6)),
        tied=bool(config.get("tie_word_embeddings", False)),
        activation=activation,
        name=folder.resolve().name,
    )
