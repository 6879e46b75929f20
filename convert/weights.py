"""From each family's stored linear weights to exact ternary or sign values plus scales.

Every function returns the values as int8 and the scale the values are multiplied by, so that
values * scale is the weight the family's own inference code computes with:

- latent full-precision weights: BitNet b1.58's absmean rule, computed with torch exactly as
  transformers' WeightQuant and 1bitLLM's weight_quant do (float32, round half to even);
- transformers' packed uint8 format: four ternary rows per byte row, code = trit + 1;
- OneBit: sign bits (inference checkpoints) or the sign of the latent weight (training ones).
"""

from __future__ import annotations

import numpy as np

from .errors import ConvertError

ABSMEAN_FLOOR = 1e-5  # the clamp on mean|W| in the BitNet b1.58 reference code


def absmean_ternarize(weight: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """Latent float32 weight -> (trits int8, scale) with trits * scale = the ternarized weight.

    The reference computes s = 1 / max(mean|W|, 1e-5), trits = clamp(round(W * s), -1, 1) and
    uses trits / s. Torch does the reduction so that the float32 mean is the same bits as the
    reference's, which decides the rounding of weights that sit right at a boundary.
    """
    try:
        import torch
    except ImportError:
        raise ConvertError(
            "ternarizing latent weights needs torch: pip install 'bitllm[convert]'"
        ) from None
    w = torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32))
    s = 1.0 / w.abs().mean().clamp(min=ABSMEAN_FLOOR)
    trits = (w * s).round().clamp(-1, 1).to(torch.int8).numpy()
    scale = (1.0 / s).to(torch.float32).item()
    return trits, np.float32(scale)


def unpack_hf_ternary(packed: np.ndarray, name: str) -> np.ndarray:
    """transformers' packed uint8 [R, cols] -> trits int8 [4R, cols].

    Packed row r holds original rows r, r + R, r + 2R, r + 3R in bit pairs 1:0, 3:2, 5:4, 7:6,
    each as trit + 1. The code 3 means nothing and is an error.
    """
    if packed.dtype != np.uint8 or packed.ndim != 2:
        raise ConvertError(f"tensor {name!r}: expected packed uint8 rows, got {packed.dtype}")
    invalid = packed & (packed >> 1) & 0x55
    if invalid.any():
        row, col = np.argwhere(invalid)[0]
        raise ConvertError(
            f"tensor {name!r}: packed byte at row {row}, column {col} holds the invalid code 3"
        )
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(4, 1, 1)
    codes = (packed[None, :, :] >> shifts) & 3
    return (codes.astype(np.int8) - 1).reshape(-1, packed.shape[1])


def unpack_onebit_signs(bits: np.ndarray, name: str) -> np.ndarray:
    """OneBit int8 [out, in / 8] -> signs int8 [out, in]: bit k of byte j is column 8j + k,
    a set bit is -1."""
    if bits.dtype not in (np.int8, np.uint8) or bits.ndim != 2:
        raise ConvertError(f"tensor {name!r}: expected int8 sign bits, got {bits.dtype}")
    unpacked = np.unpackbits(bits.view(np.uint8), axis=1, bitorder="little")
    return (1 - 2 * unpacked.astype(np.int8)).astype(np.int8)


def latent_signs(weight: np.ndarray) -> np.ndarray:
    """OneBit training weight -> signs; an exact 0 becomes +1, as OneBit's own conversion to
    its inference format does."""
    return np.where(weight < 0, -1, 1).astype(np.int8)


def permute_rope_rows(rows: np.ndarray, heads: int) -> np.ndarray:
    """Reorders the rows of a Q or K projection from HF's rotate-half RoPE layout to the
    interleaved pairs llama.cpp's `llama` graph rotates (the same reordering its converter
    applies): within each head, rows [first half | second half] become pairs (i, i + half)."""
    head_dim = rows.shape[0] // heads
    shaped = rows.reshape(heads, 2, head_dim // 2, *rows.shape[1:])
    return shaped.swapaxes(1, 2).reshape(rows.shape)


def unpacked_ternary(
    weight: np.ndarray, group: int, name: str, signs: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Float weight that already is trit x scale -> (trits int8, scale float32 [rows, groups]).

    Each group of `group` consecutive weights in a row must hold a single nonzero magnitude,
    which is its scale (0 for a group of zeros); the trits are the signs. Anything else is
    not ternary x one scale per group, and is refused naming the tensor and row; with
    `signs`, so is a zero in a group that is not all zeros (a sign type has no 0).
    """
    rows, cols = weight.shape
    if cols % group:
        raise ConvertError(f"tensor {name!r}: {cols} columns are not whole groups of {group}")
    magnitude = np.abs(weight.astype(np.float32, copy=False)).reshape(rows, cols // group, group)
    largest = magnitude.max(axis=2)
    smallest = np.where(magnitude > 0, magnitude, np.inf).min(axis=2)
    mixed = (smallest != largest) & (largest > 0)
    if not np.isfinite(largest).all():
        row = int(np.argwhere(~np.isfinite(largest))[0][0])
        raise ConvertError(f"tensor {name!r}: row {row} holds a NaN or infinity")
    if mixed.any():
        row, g = (int(i) for i in np.argwhere(mixed)[0])
        values = np.unique(magnitude[row, g][magnitude[row, g] > 0])
        shown = ", ".join(f"{v:.6g}" for v in values[:3]) + (", ..." if values.size > 3 else "")
        where = f"row {row}"
        if group != cols:
            where += f", columns {g * group} to {g * group + group - 1}"
        raise ConvertError(
            f"tensor {name!r}: {where} holds {values.size} different nonzero magnitudes "
            f"({shown}), not trit x one scale"
        )
    if signs:
        _check_no_zeros(magnitude, largest, name)
    trits = np.sign(weight).astype(np.int8)
    return trits, largest.astype(np.float32)


def _check_no_zeros(magnitude: np.ndarray, largest: np.ndarray, name: str) -> None:
    zeros = ((magnitude == 0).any(axis=2)) & (largest > 0)
    if zeros.any():
        row, g = (int(i) for i in np.argwhere(zeros)[0])
        group = magnitude.shape[2]
        raise ConvertError(
            f"tensor {name!r}: row {row}, columns {g * group} to {g * group + group - 1} hold "
            "a 0 beside nonzero weights: trits, which a sign type (q1_0) does not hold; use q2_0"
        )
