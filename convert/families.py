"""Checkpoint families: what config.json says, what the weights mean, which graph runs them.

Facts per family are in ../shared/DESIGN.md section 2. The scale conventions were checked
against transformers' own BitLinear classes: `bitlinear` divides its output by weight_scale,
`autobitlinear` multiplies it (offline) or ternarizes the latent weight itself (online).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..runtime.native import check, library
from .checkpoint import FLOAT_DTYPES
from .errors import ConvertError


@dataclass(frozen=True)
class Arch:
    """What the graph of one general.architecture does, as native/src/model/arch.c's row says
    (the one place it is stated); the converter writes it as bitllm.* keys."""

    name: str  # general.architecture
    activation: str  # of the gated FFN: "silu" or "relu2" (bitllm.activation's spelling)
    sub_norms: bool  # RMSNorm before attn_output and before ffn_down
    scaled_projections: bool  # OneBit: g and h beside each sign projection, a LayerNorm after
    activation_bits: int  # 8 or 16
    rope_type: str  # "neox" (HF rotate-half) or "norm" (llama.cpp's interleaved pairs)
    qk_norm: bool = False  # RMSNorm of each q and k head before RoPE (qwen3)


@cache
def archs() -> dict[str, Arch]:
    """The library's architectures by name, read on first use (bl_arch_info_at)."""
    ffi, lib = library()
    info = ffi.new("bl_arch_info *")
    rows = {}
    for i in range(lib.bl_arch_count()):
        check(lib.bl_arch_info_at(i, info))
        name = ffi.string(info.name).decode()
        rows[name] = Arch(
            name=name,
            activation=ffi.string(info.activation).decode(),
            sub_norms=bool(info.sub_norms),
            scaled_projections=bool(info.scaled_projections),
            activation_bits=info.act_bits,
            rope_type=ffi.string(info.rope).decode(),
            qk_norm=bool(info.qk_norm),
        )
    return rows


# The name llama.cpp gives each of the library's graphs it has too (docs/INTEROP.md
# "Architectures"): a file for llama.cpp (--outtype tq2_0 / tq1_0) carries that name. Every
# other architecture is in NO_LLAMA_CPP_GRAPH with what llama.cpp lacks for it.
LLAMA_CPP_ARCHS = {"bitnet": "bitnet", "llama": "llama", "qwen3": "qwen3"}
NO_LLAMA_CPP_GRAPH = {
    "bitnet-b1.58": "has no graph with 2B-4T's squared-ReLU gated FFN (its bitnet graph "
    "hard-codes SiLU; bitnet-b1.58 and bitnet-25 are bitnet.cpp's fork only)",
    "onebit": "has no OneBit graph (sign projections with g and h, a LayerNorm after each)",
}


def llama_cpp_arch(arch: str, outtype: str) -> str:
    """general.architecture of a file llama.cpp is to run; a ConvertError naming what
    llama.cpp lacks when it has no graph for arch."""
    if arch in LLAMA_CPP_ARCHS:
        return LLAMA_CPP_ARCHS[arch]
    reason = NO_LLAMA_CPP_GRAPH.get(arch, "has no graph of this name")
    raise ConvertError(
        f"--outtype {outtype} is llama.cpp's type, but llama.cpp {reason}, so it cannot run "
        f"this {arch} model; use bt2, bt1, f16 or f32"
    )


@dataclass(frozen=True)
class WeightFormat:
    """How a family stores one projection's weight; decode.py reads it by these facts."""

    name: str
    values: str  # what the weight decodes to: "ternary" or "sign"
    dtypes: tuple[str, ...]  # safetensors dtypes of the stored weight
    rows_per_byte: int  # 4: transformers' pack_weights puts 4 ternary rows in a uint8 row
    cols_per_byte: int  # 8: OneBit puts 8 sign columns in a byte
    stored_scale: bool  # a weight_scale tensor holds the row scale (else: absmean or 1)
    unpacked: bool = False  # the float weight already is trit x scale, read off the weight

    @property
    def packed(self) -> bool:
        return self.rows_per_byte > 1 or self.cols_per_byte > 1


WEIGHT_FORMATS: dict[str, WeightFormat] = {
    f.name: f
    for f in (
        WeightFormat("latent", "ternary", FLOAT_DTYPES, 1, 1, False),
        WeightFormat("packed", "ternary", ("U8",), 4, 1, True),
        WeightFormat("onebit", "sign", ("I8", "U8"), 1, 8, False),
        WeightFormat("onebit-latent", "sign", FLOAT_DTYPES, 1, 1, False),
        WeightFormat("unpacked", "ternary", FLOAT_DTYPES, 1, 1, False, unpacked=True),
    )
}


@dataclass(frozen=True)
class Family:
    name: str  # bitllm.source_family
    arch: str  # general.architecture, a row of archs()
    weights: str  # a row of WEIGHT_FORMATS
    scale_convention: str  # bitllm.scale_convention: "absmean", "multiply", "divide", "unpacked"
    sub_norms: tuple[str, str] | None  # HF names of the attention and FFN sub-norms
    description: str
    act_bits: int | None = None  # bitllm.activation_bits when not the graph's own
    scale_group: int = 0  # unpacked weights: columns sharing one scale, at the finest (0: row)

    @property
    def graph(self) -> Arch:
        return archs()[self.arch]

    @property
    def activation_bits(self) -> int:
        return self.act_bits or self.graph.activation_bits

    @property
    def weight_format(self) -> WeightFormat:
        return WEIGHT_FORMATS[self.weights]


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
            description="1bitLLM bitnet_b1_58-* (BitnetForCausalLM, latent weights)",
        ),
        Family(
            name="bitnet-2b4t",
            arch="bitnet-b1.58",
            weights="packed",
            scale_convention="multiply",
            sub_norms=BITNET_2B4T_SUB_NORMS,
            description="microsoft BitNet-b1.58-2B-4T (BitNetForCausalLM, offline, packed)",
        ),
        Family(
            name="bitnet-2b4t-bf16",
            arch="bitnet-b1.58",
            weights="latent",
            scale_convention="absmean",
            sub_norms=BITNET_2B4T_SUB_NORMS,
            description="microsoft BitNet-b1.58-2B-4T-bf16 (BitNetForCausalLM, online)",
        ),
        Family(
            name="hf-bitnet",
            arch="llama",
            weights="packed",
            scale_convention="divide",
            sub_norms=None,
            description=(
                "Llama3-8B-1.58 / Falcon3-*-1.58bit / Falcon-E-* (LlamaForCausalLM, bitnet quant)"
            ),
        ),
        Family(
            name="unpacked-ternary",
            arch="llama",
            weights="unpacked",
            scale_convention="unpacked",
            sub_norms=None,
            description=(
                "TriLM *_Unpacked / Falcon-E bfloat16 revision (LlamaForCausalLM, float weights "
                "that are trit x scale, run with float activations: W1.58A16 here)"
            ),
            act_bits=16,
        ),
        Family(
            name="bonsai",
            arch="qwen3",
            weights="unpacked",
            scale_convention="unpacked",
            sub_norms=None,
            description=(
                "PrismML Bonsai / Ternary-Bonsai *-unpacked (Qwen3ForCausalLM, float weights "
                "that are sign or trit x a scale per group of 128 or 64 columns)"
            ),
            scale_group=64,
        ),
        Family(
            name="onebit",
            arch="onebit",
            weights="onebit",
            scale_convention="multiply",
            sub_norms=None,
            description="OneBit inference checkpoint (bitllama: sign bits, scales)",
        ),
        Family(
            name="onebit-latent",
            arch="onebit",
            weights="onebit-latent",
            scale_convention="multiply",
            sub_norms=None,
            description="OneBit training checkpoint (bitllama: latent weights, scales)",
        ),
    )
}


# architectures whose float checkpoints are read as unpacked ternary / sign weights
UNPACKED_BY_ARCH = {"LlamaForCausalLM": "unpacked-ternary", "Qwen3ForCausalLM": "bonsai"}


def supported() -> str:
    return "; ".join(f"{f.name}: {f.description}" for f in FAMILIES.values())


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
    if config.get("quantization_config") is None and arch in UNPACKED_BY_ARCH:
        # a float LLaMA / Qwen3 by its config: plan.py reads the weights to tell
        return FAMILIES[UNPACKED_BY_ARCH[arch]]
    raise ConvertError(
        f"{path}: unknown checkpoint family (architectures {architectures!r}, model_type "
        f"{model_type!r}, quant_method {quant.get('quant_method')!r}); supported: {supported()}"
    )
