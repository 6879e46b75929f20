"""Step 1 of a conversion: the plan, every output tensor with its sources, type and shape.

Planning reads only headers, config and tokenizer (and, for a float checkpoint read as unpacked
ternary or sign weights, its first projection, which tells it from a float model; for one with a
scale per group, also 256 rows of its embedding, which choose the default head type), so --dry-run
shows the whole plan and every shape or dtype problem without reading the other tensors. A
planned tensor says where its values come from and, for a projection, how its family stores
them (decode.LinearSource); encode.py turns that into bytes (steps 2 and 3) when writer.py
writes the file (step 4).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..runtime import tensor_types
from . import gguf_names as names
from .checkpoint import FLOAT_DTYPES, Checkpoint, TensorEntry
from .config import Hyper, read_config, read_hyper
from .decode import LinearSource
from .errors import ConvertError
from .families import FAMILIES, Family, detect_family, llama_cpp_arch, supported
from .targets import (
    DEFAULT_HEAD,
    DENSE_OUTTYPES,
    GROUP_OUTTYPES,
    GROUP_TYPE_VALUES,
    HEAD_TYPES,
    LLAMA_CPP_TERNARY,
    OUTTYPES,
    SIGN_TYPE,
    TERNARY_TYPES,
    Target,
    check_row_length,
    group_type_holding,
    target,
)
from .vocab import Vocab, load_vocab
from .weights import unpacked_ternary

IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)

# (HF module under model.layers.N, GGUF tensor)
ATTENTION = (
    ("self_attn.q_proj", names.ATTN_Q),
    ("self_attn.k_proj", names.ATTN_K),
    ("self_attn.v_proj", names.ATTN_V),
    ("self_attn.o_proj", names.ATTN_OUTPUT),
)
FFN = (
    ("mlp.gate_proj", names.FFN_GATE),
    ("mlp.up_proj", names.FFN_UP),
    ("mlp.down_proj", names.FFN_DOWN),
)
# qwen3's per-head norms: (HF module under model.layers.N, GGUF tensor)
QK_NORMS = (("self_attn.q_norm", names.ATTN_Q_NORM), ("self_attn.k_norm", names.ATTN_K_NORM))
# OneBit's factors beside each sign projection: (HF suffix, GGUF suffix)
SIGN_FACTORS = (("input_factor", names.IN_SCALE), ("weight_scale", names.OUT_SCALE))


@dataclass
class PlannedTensor:
    name: str
    shape: tuple[int, ...]  # numpy order: (rows, cols) or (n,)
    target: Target
    sources: list[TensorEntry]
    linear: LinearSource | None = None  # a projection; else a float tensor, copied

    @property
    def nbytes(self) -> int:
        return self.target.nbytes(self.shape)


@dataclass
class Plan:
    folder: Path
    family: Family
    hyper: Hyper
    vocab: Vocab
    tensors: list[PlannedTensor]
    outtype: str
    head_type: str
    checkpoint: Checkpoint
    warnings: list[str]

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    @property
    def arch(self) -> str:
        """general.architecture: llama.cpp's name for the graph when llama.cpp is to run
        the file (the TQ outtypes), else the family's architecture."""
        return output_arch(self.family, self.outtype)


def output_arch(family: Family, outtype: str) -> str:
    if outtype in LLAMA_CPP_TERNARY:
        return llama_cpp_arch(family.arch, outtype)
    return family.arch


def _linear_shapes(h: Hyper) -> dict[str, tuple[int, int]]:
    """(out, in) of each BitLinear, by HF module name."""
    q, kv = h.heads * h.head_dim, h.kv_heads * h.head_dim
    return {
        "self_attn.q_proj": (q, h.hidden),
        "self_attn.k_proj": (kv, h.hidden),
        "self_attn.v_proj": (kv, h.hidden),
        "self_attn.o_proj": (h.hidden, q),
        "mlp.gate_proj": (h.ffn, h.hidden),
        "mlp.up_proj": (h.ffn, h.hidden),
        "mlp.down_proj": (h.hidden, h.ffn),
    }


class Planner:
    """Checks each source tensor against the config and plans its output tensor."""

    def __init__(self, ckpt: Checkpoint, family: Family, hyper: Hyper, outtype: str, head: str):
        self.ckpt, self.family, self.hyper = ckpt, family, hyper
        output_arch(family, outtype)  # an outtype for a program without this graph: refused
        self.outtype, self.head_type = outtype, head
        self.used: set[str] = set()
        self.tensors: list[PlannedTensor] = []

    def source(self, name: str, shape: tuple[int, ...], dtypes: tuple[str, ...]) -> TensorEntry:
        entry = self.ckpt.entry(name)
        if entry.shape != shape:
            raise ConvertError(
                f"{entry.path}: tensor {name!r} has shape {list(entry.shape)}, the config "
                f"implies {list(shape)}"
            )
        if entry.dtype not in dtypes:
            raise ConvertError(
                f"{entry.path}: tensor {name!r} is {entry.dtype}, expected {' or '.join(dtypes)} "
                f"for the {self.family.name} family"
            )
        self.used.add(name)
        return entry

    def add(self, tensor: PlannedTensor) -> None:
        check_row_length(tensor.target.name, tensor.name, tensor.shape[-1])
        self.tensors.append(tensor)

    def vector(self, hf_name: str, gguf_name: str, size: int) -> None:
        """A 1-D float tensor (norm weight, OneBit g or h), stored as F32."""
        entry = self.source(hf_name, (size,), FLOAT_DTYPES)
        self.add(PlannedTensor(gguf_name, (size,), target("f32"), [entry]))

    def head(self, hf_name: str, gguf_name: str) -> None:
        entry = self.source(hf_name, (self.hyper.vocab, self.hyper.hidden), FLOAT_DTYPES)
        self.add(PlannedTensor(gguf_name, entry.shape, target(self.head_type), [entry]))

    def linear_type(self) -> str:
        """The outtype, or for a sign family bitllm's sign type in place of a ternary one
        (llama.cpp's ternary outtypes were refused when planning began: it has no OneBit
        graph); llama.cpp's group types only for weights that already are sign or trit x a
        group scale."""
        if self.outtype in GROUP_OUTTYPES and not self.family.weight_format.unpacked:
            raise ConvertError(
                f"--outtype {self.outtype}: for checkpoints whose float weights already are "
                f"sign or trit x a scale per group (bonsai, unpacked-ternary), not "
                f"{self.family.name}"
            )
        if self.family.weight_format.values == "sign" and self.outtype in TERNARY_TYPES:
            return SIGN_TYPE
        return self.outtype

    def linear(self, layer: int, module: str, gguf: str) -> None:
        out_dim, in_dim = _linear_shapes(self.hyper)[module]
        prefix = f"model.layers.{layer}.{module}"
        source = self._linear_source(prefix, module, out_dim, in_dim)
        sources = [source.weight] + ([source.scale] if source.scale else [])
        self.add(
            PlannedTensor(
                names.tensor(gguf, layer=layer),
                (out_dim, in_dim),
                target(self.linear_type()),
                sources,
                source,
            )
        )
        if self.family.weight_format.values == "sign":
            for (hf_suffix, gguf_suffix), size in zip(SIGN_FACTORS, (in_dim, out_dim), strict=True):
                self.vector(f"{prefix}.{hf_suffix}", names.tensor(gguf, gguf_suffix, layer), size)

    def _linear_source(self, prefix: str, module: str, out_dim: int, in_dim: int) -> LinearSource:
        """Checks the stored weight (and scale) against the family's format and the config."""
        fmt = self.family.weight_format
        if out_dim % fmt.rows_per_byte:
            raise ConvertError(
                f"{prefix}: {out_dim} output rows cannot be packed {fmt.rows_per_byte} to a byte"
            )
        if in_dim % fmt.cols_per_byte:
            raise ConvertError(f"{prefix}: {in_dim} input columns are not whole bytes of signs")
        if fmt.values == "sign":
            self._require_sign_factors(prefix)
        stored_shape = (out_dim // fmt.rows_per_byte, in_dim // fmt.cols_per_byte)
        weight = self.source(f"{prefix}.weight", stored_shape, fmt.dtypes)
        scale = self._stored_scale(prefix, out_dim) if fmt.stored_scale else None
        return LinearSource(
            fmt,
            weight,
            scale,
            self.family.scale_convention == "divide",
            out_dim,
            self._rope_permutation(module),
            self._scale_group(),
            GROUP_TYPE_VALUES.get(self.linear_type()) == "sign",
        )

    def _scale_group(self) -> int:
        """Columns of unpacked weights that must share one magnitude: a block of the target
        type that holds a scale per block (llama.cpp's TQ types: 256), the family's finest
        group for the dense float types (only checked), else the whole row (0)."""
        if not self.family.weight_format.unpacked:
            return 0
        type_name = self.linear_type()
        if type_name in LLAMA_CPP_TERNARY:
            return 256
        if type_name in GROUP_OUTTYPES:
            return tensor_types.TYPES[type_name].block_weights
        if type_name in DENSE_OUTTYPES:
            return self.family.scale_group
        return 0

    def _stored_scale(self, prefix: str, out_dim: int) -> TensorEntry:
        entry = self.ckpt.entry(f"{prefix}.weight_scale")
        if entry.elements not in (1, out_dim):
            raise ConvertError(
                f"{entry.path}: tensor {entry.name!r} has shape "
                f"{list(entry.shape)}; expected one scale or {out_dim}"
            )
        return self.source(entry.name, entry.shape, FLOAT_DTYPES)

    def _rope_permutation(self, module: str) -> int:
        if self.family.graph.rope_type != "norm":
            return 0
        return {"self_attn.q_proj": self.hyper.heads, "self_attn.k_proj": self.hyper.kv_heads}.get(
            module, 0
        )

    def _require_sign_factors(self, prefix: str) -> None:
        for suffix, _ in SIGN_FACTORS:
            if f"{prefix}.{suffix}" not in self.ckpt:
                raise ConvertError(
                    f"{self.ckpt.folder}: missing tensor {prefix}.{suffix} "
                    "(a OneBit checkpoint needs input_factor g and weight_scale h)"
                )

    def layer(self, i: int) -> None:
        h = self.hyper
        base = f"model.layers.{i}"
        self.vector(
            f"{base}.input_layernorm.weight", names.tensor(names.ATTN_NORM, layer=i), h.hidden
        )
        for module, gguf in ATTENTION:
            self.linear(i, module, gguf)
        if self.family.graph.qk_norm:
            for hf, gguf in QK_NORMS:
                self.vector(f"{base}.{hf}.weight", names.tensor(gguf, layer=i), h.head_dim)
        if self.family.sub_norms:
            attn_sub, ffn_sub = self.family.sub_norms
            self.vector(
                f"{base}.{attn_sub}.weight",
                names.tensor(names.ATTN_SUB_NORM, layer=i),
                h.heads * h.head_dim,
            )
        self.vector(
            f"{base}.post_attention_layernorm.weight",
            names.tensor(names.FFN_NORM, layer=i),
            h.hidden,
        )
        for module, gguf in FFN:
            self.linear(i, module, gguf)
        if self.family.sub_norms:
            self.vector(
                f"{base}.{ffn_sub}.weight", names.tensor(names.FFN_SUB_NORM, layer=i), h.ffn
            )

    def check_all_used(self, tied: bool) -> None:
        left = [
            name
            for name in self.ckpt.tensors
            if name not in self.used
            and not name.endswith(IGNORED_SUFFIXES)
            and not (tied and name == "lm_head.weight")
        ]
        if left:
            entry = self.ckpt.tensors[left[0]]
            more = f" and {len(left) - 1} more" if len(left) > 1 else ""
            raise ConvertError(
                f"{entry.path}: unexpected tensor {left[0]!r}{more} for the {self.family.name} "
                f"family with {self.hyper.layers} layers"
            )


def _onebit_kind(family: Family, ckpt: Checkpoint) -> Family:
    """OneBit inference and training checkpoints share a config; the weights tell them apart."""
    if family.name != "onebit":
        return family
    first = ckpt.tensors.get("model.layers.0.self_attn.q_proj.weight")
    if first is not None and first.dtype in FLOAT_DTYPES:
        return FAMILIES["onebit-latent"]
    return family


def _floats_once(ckpt: Checkpoint, name: str, reads: dict[str, np.ndarray]) -> np.ndarray:
    """ckpt.floats(name), read once per plan: a group-scaled checkpoint's default outtype and
    the check below both look at its first projection (32 MB of an 8B model's)."""
    if name not in reads:
        reads[name] = ckpt.floats(name)
    return reads[name]


def _check_unpacked(
    family: Family, ckpt: Checkpoint, tensors: list[PlannedTensor], reads: dict[str, np.ndarray]
) -> None:
    """A LlamaForCausalLM without a quantization_config is ternary only if its weights say
    so: the first projection is checked here, each one again as it is written."""
    if not family.weight_format.unpacked:
        return
    first = next(t.linear for t in tensors if t.linear is not None)
    weight = _floats_once(ckpt, first.weight.name, reads)
    group = first.group or family.scale_group or weight.shape[1]
    try:
        unpacked_ternary(weight, group, first.weight.name)
    except ConvertError as e:
        raise ConvertError(
            f"{ckpt.folder}: a float checkpoint without quantization_config converts only when "
            f"its projections are trit or sign x scale ({family.name}: {family.description}), "
            f"and {e} (a float model is not converted); supported: {supported()}"
        ) from None


def _check_group_scales(family: Family, outtype: str) -> None:
    exact = GROUP_OUTTYPES + DENSE_OUTTYPES
    if family.scale_group and outtype not in exact:
        raise ConvertError(
            f"--outtype {outtype}: {family.name} weights have a scale per group of "
            f"{family.scale_group} or more columns, which {outtype} does not hold; "
            f"use {' or '.join(exact)}"
        )


def _check_group_head(family: Family, head_type: str) -> None:
    """A 1- or 2-bit head is lossless only where the checkpoint's embedding already is sign or
    trit x a group scale (Bonsai); on any other it would throw most of the head away."""
    if head_type in GROUP_OUTTYPES and not family.scale_group:
        raise ConvertError(
            f"--head-type {head_type}: for checkpoints whose embedding already is sign or trit "
            f"x a scale per group (bonsai), not {family.name}; use q8_0 (the default) or q6_k"
        )


# rows of the embedding, spread over all of it, that choose a group-scaled checkpoint's
# default head type (every row is checked again as it is written)
HEAD_SAMPLE_ROWS = 256
FIRST_PROJECTION = "model.layers.0.self_attn.q_proj.weight"


def _nonempty_matrix(ckpt: Checkpoint, name: str) -> bool:
    """Whether the tensor exists as rows x columns, both nonzero (the defaults below read it
    before the planner has checked its shape against the config)."""
    entry = ckpt.tensors.get(name)
    return entry is not None and len(entry.shape) == 2 and min(entry.shape) > 0


def default_outtype(family: Family, ckpt: Checkpoint, reads: dict[str, np.ndarray]) -> str:
    """bt2, the fastest ternary type; for weights with a scale per group of columns (Bonsai),
    which bt2 cannot hold, the group type of fewest bits that holds the first projection
    exactly (q1_0 for signs in groups of 128, q2_0_g128 for trits, q2_0 for groups of 64)."""
    if not family.scale_group or not _nonempty_matrix(ckpt, FIRST_PROJECTION):
        return TERNARY_TYPES[0]  # a missing or misshapen tensor: the planner names it
    held = group_type_holding(_floats_once(ckpt, FIRST_PROJECTION, reads), FIRST_PROJECTION)
    # held by none: the finest groups, so that the checks below name the row that fails
    return held or min(GROUP_OUTTYPES, key=lambda t: tensor_types.TYPES[t].block_weights)


def default_head_type(family: Family, ckpt: Checkpoint, embedding: str) -> str:
    """q8_0; for an embedding that already is sign or trit x a group scale (Bonsai) the group
    type that holds it exactly: no loss, and a seventh of q8_0's bytes for signs."""
    if not family.scale_group or not _nonempty_matrix(ckpt, embedding):
        return DEFAULT_HEAD  # a missing or misshapen tensor: the planner names it
    vocab = ckpt.entry(embedding).shape[0]
    # spread out: the first rows are often special tokens, all zeros, which any type holds
    picks = np.unique(np.linspace(0, vocab - 1, min(HEAD_SAMPLE_ROWS, vocab)).astype(int))
    rows = np.concatenate([ckpt.float_rows(embedding, int(r), int(r) + 1) for r in picks])
    return group_type_holding(rows, embedding) or DEFAULT_HEAD


def build_plan(
    src: Path, outtype: str | None, head_type: str | None, family_name: str | None
) -> Plan:
    """The plan; outtype / head_type None take the defaults above."""
    if outtype is not None and outtype not in OUTTYPES:
        raise ConvertError(f"unknown --outtype {outtype!r} (one of {', '.join(OUTTYPES)})")
    if head_type is not None and head_type not in HEAD_TYPES:
        raise ConvertError(f"unknown --head-type {head_type!r} (one of {', '.join(HEAD_TYPES)})")
    ckpt = Checkpoint(src)
    config = read_config(ckpt.folder)
    family = _onebit_kind(detect_family(config, ckpt.folder, family_name), ckpt)
    reads: dict[str, np.ndarray] = {}  # tensors both a default and a check look at
    outtype = outtype or default_outtype(family, ckpt, reads)
    head_type = head_type or default_head_type(family, ckpt, "model.embed_tokens.weight")
    _check_group_head(family, head_type)
    hyper = read_hyper(config, ckpt.folder)
    tied = hyper.tied or "lm_head.weight" not in ckpt
    planner = Planner(ckpt, family, hyper, outtype, head_type)
    planner.head("model.embed_tokens.weight", names.tensor(names.TOKEN_EMBD))
    for i in range(hyper.layers):
        planner.layer(i)
    planner.vector("model.norm.weight", names.tensor(names.OUTPUT_NORM), hyper.hidden)
    if not tied:
        planner.head("lm_head.weight", names.tensor(names.OUTPUT))
    planner.check_all_used(tied)
    _check_unpacked(family, ckpt, planner.tensors, reads)
    _check_group_scales(family, outtype)
    # after the tensors agree with the config, so vocab_size is the embedding's real rows
    vocab = load_vocab(ckpt.folder, config, hyper.vocab)
    warnings = list(vocab.warnings)
    if tied and not hyper.tied:
        warnings.append(f"{ckpt.folder}: no lm_head.weight; the head is tied to the embedding")
    hyper = dataclasses.replace(hyper, tied=tied)
    return Plan(
        ckpt.folder, family, hyper, vocab, planner.tensors, outtype, head_type, ckpt, warnings
    )
