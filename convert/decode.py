"""Step 2 of a conversion: one projection as its family stores it -> ternary or sign values
(int8 [out, in]) and a float32 scale per row, values * scale being the weight the family's
own inference code computes with. The family's row in families.WEIGHT_FORMATS says which
decoder applies; the arithmetic of each is in weights.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import weights
from .checkpoint import Checkpoint, TensorEntry
from .errors import ConvertError
from .families import WeightFormat


@dataclass(frozen=True)
class LinearSource:
    """Everything decoding one projection needs, checked against the config when planned."""

    format: WeightFormat
    weight: TensorEntry
    scale: TensorEntry | None  # the stored row scale, when format.stored_scale
    divide: bool  # the stored scale is the reciprocal (transformers' `bitlinear`)
    rows: int  # output rows
    rope_heads: int  # > 0: rows regrouped into llama.cpp's RoPE pairs, per head
    group: int = 0  # unpacked weights: columns that share one scale (0: the whole row)
    signs: bool = False  # unpacked weights for a sign type: no zeros beside nonzero weights


def decode_linear(ckpt: Checkpoint, src: LinearSource) -> tuple[np.ndarray, np.ndarray]:
    """(values int8 [rows, cols], row scale float32 [rows]) of a planned projection; unpacked
    weights with a `group` narrower than the row give a scale per group, [rows, groups]."""
    if src.format.unpacked:
        values, scale = _unpacked_ternary(ckpt, src)
    elif src.format.values == "ternary":
        values, scale = (
            _packed_ternary(ckpt, src) if src.format.packed else _latent_ternary(ckpt, src)
        )
    else:
        values, scale = _signs(ckpt, src), np.ones(src.rows, dtype=np.float32)
    if src.rope_heads:
        values = weights.permute_rope_rows(values, src.rope_heads)
        scale = weights.permute_rope_rows(scale, src.rope_heads)
    return values, scale


def _unpacked_ternary(ckpt: Checkpoint, src: LinearSource) -> tuple[np.ndarray, np.ndarray]:
    weight = ckpt.floats(src.weight.name)
    group = src.group or weight.shape[1]
    try:
        trits, scale = weights.unpacked_ternary(weight, group, src.weight.name, src.signs)
    except ConvertError as e:
        if src.group:
            raise
        # one scale per row is what bitllm's types hold; llama.cpp's hold one per 256 weights
        raise ConvertError(
            f"{e}; a type with a scale per row cannot hold it exactly, try "
            "--outtype tq2_0 (one scale per 256 weights)"
        ) from None
    return trits, scale[:, 0] if scale.shape[1] == 1 else scale


def _latent_ternary(ckpt: Checkpoint, src: LinearSource) -> tuple[np.ndarray, np.ndarray]:
    trits, scale = weights.absmean_ternarize(ckpt.floats(src.weight.name))
    return trits, np.full(src.rows, scale, dtype=np.float32)


def _packed_ternary(ckpt: Checkpoint, src: LinearSource) -> tuple[np.ndarray, np.ndarray]:
    assert src.scale is not None  # planned with the format's stored scale
    trits = weights.unpack_hf_ternary(ckpt.raw(src.weight.name), src.weight.name)
    stored = ckpt.floats(src.scale.name).ravel()
    if src.divide:
        if (stored == 0).any():
            raise ConvertError(f"tensor {src.scale.name!r}: a weight_scale of 0")
        stored = np.float32(1) / stored
    return trits, np.broadcast_to(stored, (src.rows,)).astype(np.float32)


def _signs(ckpt: Checkpoint, src: LinearSource) -> np.ndarray:
    if src.format.packed:
        return weights.unpack_onebit_signs(ckpt.raw(src.weight.name), src.weight.name)
    return weights.latent_signs(ckpt.floats(src.weight.name))
