"""The conversion plan: every output tensor with its sources, type, shape and bytes.

Planning reads only headers, config and tokenizer, so --dry-run shows the whole plan and every
shape or dtype problem without touching tensor data. Each planned tensor carries a function
that later yields its bytes in chunks (rows of the embedding at a time), so the writer holds
about one tensor in memory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import weights
from .checkpoint import FLOAT_DTYPES, Checkpoint, TensorEntry
from .config import Hyper, read_config, read_hyper
from .errors import ConvertError
from .families import FAMILIES, Family, detect_family
from .targets import (
    DENSE_OUTTYPES,
    HEAD_TYPES,
    OUTTYPES,
    SIGN_TYPE,
    TERNARY_TYPES,
    Target,
    check_row_length,
    encode_floats,
    encode_linear,
    target,
)
from .vocab import Vocab, load_vocab

HEAD_CHUNK_ELEMENTS = 1 << 22  # embedding rows are encoded 4 M weights (16 MB f32) at a time
IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)

# a linear's values (int8 [out, in]) and row scales (float32 [out]), computed when written
Decoded = Callable[[], tuple[np.ndarray, np.ndarray]]

# (HF module under model.layers.N, GGUF name under blk.N)
ATTENTION = (
    ("self_attn.q_proj", "attn_q"),
    ("self_attn.k_proj", "attn_k"),
    ("self_attn.v_proj", "attn_v"),
    ("self_attn.o_proj", "attn_output"),
)
FFN = (("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down"))


@dataclass
class PlannedTensor:
    name: str
    shape: tuple[int, ...]  # numpy order: (rows, cols) or (n,)
    target: Target
    sources: list[TensorEntry]
    produce: Callable[[], Iterator[np.ndarray]]  # the tensor's bytes, in order

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

    def add(
        self,
        name: str,
        shape: tuple[int, ...],
        type_name: str,
        sources: list[TensorEntry],
        produce: Callable[[], Iterator[np.ndarray]],
    ) -> None:
        check_row_length(type_name, name, shape[-1])
        self.tensors.append(PlannedTensor(name, shape, target(type_name), sources, produce))

    def vector(self, hf_name: str, gguf_name: str, size: int) -> None:
        """A 1-D float tensor (norm weight, OneBit g or h), stored as F32."""
        entry = self.source(hf_name, (size,), FLOAT_DTYPES)
        self.add(
            gguf_name,
            (size,),
            "f32",
            [entry],
            lambda: iter([encode_floats("f32", self.ckpt.floats(entry.name))]),
        )

    def head(self, hf_name: str, gguf_name: str) -> None:
        entry = self.source(hf_name, (self.hyper.vocab, self.hyper.hidden), FLOAT_DTYPES)

        def produce() -> Iterator[np.ndarray]:
            rows, cols = entry.shape
            step = max(1, HEAD_CHUNK_ELEMENTS // cols)
            for start in range(0, rows, step):
                chunk = self.ckpt.float_rows(entry.name, start, min(rows, start + step))
                yield encode_floats(self.head_type, chunk)

        self.add(gguf_name, entry.shape, self.head_type, [entry], produce)

    def linear_type(self) -> str:
        if not self.family.weights.startswith("onebit"):
            return self.outtype
        if self.outtype in TERNARY_TYPES:
            return SIGN_TYPE
        if self.outtype in DENSE_OUTTYPES:
            return self.outtype
        raise ConvertError(
            f"--outtype {self.outtype}: llama.cpp has no OneBit graph; use bt2 (sign type bs1), "
            "f16 or f32"
        )

    def linear(self, layer: int, module: str, gguf: str) -> None:
        out_dim, in_dim = _linear_shapes(self.hyper)[module]
        prefix = f"model.layers.{layer}.{module}"
        decode = {
            "latent": self._latent_source,
            "packed": self._packed_source,
            "onebit": self._onebit_source,
            "onebit-latent": self._onebit_latent_source,
        }[self.family.weights]
        sources, values_of = decode(prefix, out_dim, in_dim)
        permute_heads = self._rope_permutation(module)

        def produce() -> Iterator[np.ndarray]:
            values, scale = values_of()
            if permute_heads:
                values = weights.permute_rope_rows(values, permute_heads)
                scale = weights.permute_rope_rows(scale, permute_heads)
            yield encode_linear(self.linear_type(), values, scale)

        self.add(
            f"blk.{layer}.{gguf}.weight", (out_dim, in_dim), self.linear_type(), sources, produce
        )
        if self.family.weights.startswith("onebit"):
            for hf_suffix, gguf_suffix, size in (
                ("input_factor", "in_scale", in_dim),
                ("weight_scale", "out_scale", out_dim),
            ):
                self.vector(f"{prefix}.{hf_suffix}", f"blk.{layer}.{gguf}.{gguf_suffix}", size)

    def _rope_permutation(self, module: str) -> int:
        if self.family.rope_type != "norm":
            return 0
        return {"self_attn.q_proj": self.hyper.heads, "self_attn.k_proj": self.hyper.kv_heads}.get(
            module, 0
        )

    def _latent_source(
        self, prefix: str, out_dim: int, in_dim: int
    ) -> tuple[list[TensorEntry], Decoded]:
        entry = self.source(f"{prefix}.weight", (out_dim, in_dim), FLOAT_DTYPES)

        def values() -> tuple[np.ndarray, np.ndarray]:
            trits, scale = weights.absmean_ternarize(self.ckpt.floats(entry.name))
            return trits, np.full(out_dim, scale, dtype=np.float32)

        return [entry], values

    def _packed_source(
        self, prefix: str, out_dim: int, in_dim: int
    ) -> tuple[list[TensorEntry], Decoded]:
        if out_dim % 4:
            raise ConvertError(f"{prefix}: {out_dim} output rows cannot be packed 4 to a byte")
        packed = self.source(f"{prefix}.weight", (out_dim // 4, in_dim), ("U8",))
        scale_entry = self.ckpt.entry(f"{prefix}.weight_scale")
        if scale_entry.elements not in (1, out_dim):
            raise ConvertError(
                f"{scale_entry.path}: tensor {scale_entry.name!r} has shape "
                f"{list(scale_entry.shape)}; expected one scale or {out_dim}"
            )
        scale_entry = self.source(scale_entry.name, scale_entry.shape, FLOAT_DTYPES)
        divide = self.family.scale_convention == "divide"

        def values() -> tuple[np.ndarray, np.ndarray]:
            trits = weights.unpack_hf_ternary(self.ckpt.raw(packed.name), packed.name)
            stored = self.ckpt.floats(scale_entry.name).ravel()
            if divide:
                if (stored == 0).any():
                    raise ConvertError(f"tensor {scale_entry.name!r}: a weight_scale of 0")
                stored = np.float32(1) / stored
            return trits, np.broadcast_to(stored, (out_dim,)).astype(np.float32)

        return [packed, scale_entry], values

    def _onebit_source(
        self, prefix: str, out_dim: int, in_dim: int
    ) -> tuple[list[TensorEntry], Decoded]:
        if in_dim % 8:
            raise ConvertError(f"{prefix}: {in_dim} input columns are not whole bytes of signs")
        self._require_onebit_factors(prefix)
        bits = self.source(f"{prefix}.weight", (out_dim, in_dim // 8), ("I8", "U8"))

        def values() -> tuple[np.ndarray, np.ndarray]:
            signs = weights.unpack_onebit_signs(self.ckpt.raw(bits.name), bits.name)
            return signs, np.ones(out_dim, dtype=np.float32)

        return [bits], values

    def _onebit_latent_source(
        self, prefix: str, out_dim: int, in_dim: int
    ) -> tuple[list[TensorEntry], Decoded]:
        self._require_onebit_factors(prefix)
        entry = self.source(f"{prefix}.weight", (out_dim, in_dim), FLOAT_DTYPES)

        def values() -> tuple[np.ndarray, np.ndarray]:
            signs = weights.latent_signs(self.ckpt.floats(entry.name))
            return signs, np.ones(out_dim, dtype=np.float32)

        return [entry], values

    def _require_onebit_factors(self, prefix: str) -> None:
        for suffix in ("input_factor", "weight_scale"):
            if f"{prefix}.{suffix}" not in self.ckpt:
                raise ConvertError(
                    f"{self.ckpt.folder}: missing tensor {prefix}.{suffix} "
                    "(a OneBit checkpoint needs input_factor g and weight_scale h)"
                )

    def layer(self, i: int) -> None:
        h = self.hyper
        base = f"model.layers.{i}"
        self.vector(f"{base}.input_layernorm.weight", f"blk.{i}.attn_norm.weight", h.hidden)
        for module, gguf in ATTENTION:
            self.linear(i, module, gguf)
        if self.family.sub_norms:
            attn_sub, ffn_sub = self.family.sub_norms
            self.vector(
                f"{base}.{attn_sub}.weight", f"blk.{i}.attn_sub_norm.weight", h.heads * h.head_dim
            )
        self.vector(f"{base}.post_attention_layernorm.weight", f"blk.{i}.ffn_norm.weight", h.hidden)
        for module, gguf in FFN:
            self.linear(i, module, gguf)
        if self.family.sub_norms:
            self.vector(f"{base}.{ffn_sub}.weight", f"blk.{i}.ffn_sub_norm.weight", h.ffn)

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


def build_plan(src: Path, outtype: str, head_type: str, family_name: str | None) -> Plan:
    if outtype not in OUTTYPES:
        raise ConvertError(f"unknown --outtype {outtype!r} (one of {', '.join(OUTTYPES)})")
    if head_type not in HEAD_TYPES:
        raise ConvertError(f"unknown --head-type {head_type!r} (one of {', '.join(HEAD_TYPES)})")
    ckpt = Checkpoint(src)
    config = read_config(ckpt.folder)
    family = _onebit_kind(detect_family(config, ckpt.folder, family_name), ckpt)
    hyper = read_hyper(config, ckpt.folder)
    tied = hyper.tied or "lm_head.weight" not in ckpt
    planner = Planner(ckpt, family, hyper, outtype, head_type)
    planner.head("model.embed_tokens.weight", "token_embd.weight")
    for i in range(hyper.layers):
        planner.layer(i)
    planner.vector("model.norm.weight", "output_norm.weight", hyper.hidden)
    if not tied:
        planner.head("lm_head.weight", "output.weight")
    planner.check_all_used(tied)
    # after the tensors agree with the config, so vocab_size is the embedding's real rows
    vocab = load_vocab(ckpt.folder, config, hyper.vocab)
    warnings = list(vocab.warnings)
    if tied and not hyper.tied:
        warnings.append(f"{ckpt.folder}: no lm_head.weight; the head is tied to the embedding")
    hyper = dataclasses.replace(hyper, tied=tied)
    return Plan(
        ckpt.folder, family, hyper, vocab, planner.tensors, outtype, head_type, ckpt, warnings
    )
