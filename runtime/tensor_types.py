"""Tensor types in numpy: layout facts plus pack/unpack and quantize/dequantize.

These are the same byte layouts as native/src/types/ (docs/FORMAT.md); tests hold
the two to agreement byte for byte. The converter uses this module, so it needs
no native library.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TensorType:
    name: str
    gguf_type: int
    kind: str  # "float", "quant", "ternary" or "sign"
    block_weights: int
    block_bytes: int
    row_scale: bool  # a float32 scale per row follows the packed rows

    def padded_cols(self, cols: int) -> int:
        return -(-cols // self.block_weights) * self.block_weights

    def row_bytes(self, cols: int) -> int:
        """Packed bytes of one row, without its row scale."""
        return self.padded_cols(cols) // self.block_weights * self.block_bytes

    def tensor_bytes(self, rows: int, cols: int) -> int:
        return rows * self.row_bytes(cols) + (4 * rows if self.row_scale else 0)


TYPES: dict[str, TensorType] = {
    t.name: t
    for t in (
        TensorType("f32", 0, "float", 1, 4, False),
        TensorType("f16", 1, "float", 1, 2, False),
        TensorType("bf16", 30, "float", 1, 2, False),
        TensorType("q8_0", 8, "quant", 32, 34, False),
        TensorType("q4_0", 2, "quant", 32, 18, False),
        TensorType("bt2", 1024, "ternary", 256, 64, True),
        TensorType("bt1", 1025, "ternary", 320, 64, True),
        TensorType("bs1", 1026, "sign", 256, 32, True),
    )
}
TYPES_BY_GGUF_ID: dict[int, TensorType] = {t.gguf_type: t for t in TYPES.values()}

_POW3 = np.array([81, 27, 9, 3, 1], dtype=np.int32)


def tensor_type(name: str) -> TensorType:
    try:
        return TYPES[name]
    except KeyError:
        raise ValueError(f"unknown tensor type {name!r} (known: {', '.join(TYPES)})") from None


def _pad_cols(values: np.ndarray, cols: int, fill: int | float) -> np.ndarray:
    pad = cols - values.shape[1]
    if pad == 0:
        return values
    return np.pad(values, ((0, 0), (0, pad)), constant_values=fill)


def _check_bits(t: TensorType, values: np.ndarray, row_scale: np.ndarray) -> None:
    if values.ndim != 2:
        raise ValueError(f"{t.name}: values must be 2-D [rows, cols], got shape {values.shape}")
    allowed = (-1, 1) if t.kind == "sign" else (-1, 0, 1)
    bad = ~np.isin(values, allowed)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(
            f"{t.name}: value {values[r, c]} at row {r}, column {c} is not one of {allowed}"
        )
    if row_scale.shape != (values.shape[0],):
        raise ValueError(
            f"{t.name}: row_scale must have shape ({values.shape[0]},), got {row_scale.shape}"
        )
    if not np.isfinite(row_scale).all():
        raise ValueError(f"{t.name}: row_scale holds NaN or Inf")


def _pack_rows(t: TensorType, v: np.ndarray) -> np.ndarray:
    """values int8 [rows, padded cols] -> uint8 [rows, row_bytes]."""
    rows = v.shape[0]
    if t.name == "bt2":
        codes = (v + 1).astype(np.uint8).reshape(rows, -1, 4, 64)
        packed = codes[:, :, 0] | codes[:, :, 1] << 2 | codes[:, :, 2] << 4 | codes[:, :, 3] << 6
    elif t.name == "bt1":
        codes = (v + 1).astype(np.int32).reshape(rows, -1, 5, 64)
        n = np.einsum("rbkj,k->rbj", codes, _POW3)
        packed = ((n * 256 + 242) // 243).astype(np.uint8)
    else:  # bs1: bit k of byte j is column 8j + k, set for -1
        packed = np.packbits(v < 0, axis=1, bitorder="little")
    return packed.reshape(rows, -1)


def _unpack_rows(t: TensorType, packed: np.ndarray, cols: int) -> np.ndarray:
    """uint8 [rows, row_bytes] -> int8 [rows, cols]."""
    rows = packed.shape[0]
    if t.name == "bt2":
        blocks = packed.reshape(rows, -1, 1, 64)
        codes = (blocks >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)) & 3
        if (codes == 3).any():
            r = int(np.argwhere((codes == 3).any(axis=(1, 2, 3)))[0, 0])
            raise ValueError(f"bt2: row {r} holds the invalid code 3")
    elif t.name == "bt1":
        blocks = packed.reshape(rows, -1, 1, 64).astype(np.uint32)
        shifted = (blocks * np.array([1, 3, 9, 27, 81], dtype=np.uint32).reshape(1, 1, 5, 1)) & 255
        codes = (shifted * 3) >> 8
    else:
        bits = np.unpackbits(packed, axis=1, bitorder="little")
        return np.where(bits[:, :cols] == 1, -1, 1).astype(np.int8)
    return (codes.astype(np.int8) - 1).reshape(rows, -1)[:, :cols]


def pack(name: str, values: np.ndarray, row_scale: np.ndarray) -> np.ndarray:
    """Ternary/sign values int8 [rows, cols] and float32 row scales -> packed uint8 bytes."""
    t = tensor_type(name)
    if t.kind not in ("ternary", "sign"):
        raise ValueError(f"{name} is not a ternary or sign type: use quantize()")
    values = np.asarray(values)
    row_scale = np.asarray(row_scale, dtype=np.float32)
    _check_bits(t, values, row_scale)
    fill = 1 if t.kind == "sign" else 0
    v = _pad_cols(values.astype(np.int8), t.padded_cols(values.shape[1]), fill)
    return np.concatenate([_pack_rows(t, v).ravel(), row_scale.astype("<f4").view(np.uint8)])


def _split(t: TensorType, data: np.ndarray, rows: int, cols: int) -> np.ndarray:
    data = np.asarray(data, dtype=np.uint8).ravel()
    if rows <= 0 or cols <= 0:
        raise ValueError(f"{t.name}: shape must be positive, got {rows} x {cols}")
    if data.size != t.tensor_bytes(rows, cols):
        raise ValueError(
            f"{t.name}: a {rows} x {cols} tensor takes {t.tensor_bytes(rows, cols)} bytes, "
            f"got {data.size}"
        )
    return data


def unpack(name: str, data: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Packed ternary/sign bytes -> (values int8 [rows, cols], row_scale float32 [rows])."""
    t = tensor_type(name)
    if t.kind not in ("ternary", "sign"):
        raise ValueError(f"{name} is not a ternary or sign type: use dequantize()")
    data = _split(t, data, rows, cols)
    body = rows * t.row_bytes(cols)
    values = _unpack_rows(t, data[:body].reshape(rows, -1), cols)
    return values, data[body:].view("<f4").astype(np.float32)


def _round_half_away(v: np.ndarray) -> np.ndarray:
    """C's roundf, computed exactly in float64."""
    v64 = v.astype(np.float64)
    return np.sign(v64) * np.floor(np.abs(v64) + 0.5)


def _to_bf16_bits(x: np.ndarray) -> np.ndarray:
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    return np.where(nan, ((u >> 16) | 0x40).astype(np.uint16), rounded)


def _quantize_q8_0(x: np.ndarray) -> np.ndarray:
    blocks = x.reshape(x.shape[0], -1, 32)
    d = (np.abs(blocks).max(axis=2, keepdims=True) / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    q = _round_half_away((blocks * inv).astype(np.float32)).astype(np.int8)
    out = np.concatenate([d.astype("<f2").view(np.uint8), q.view(np.uint8)], axis=2)
    return out.reshape(x.shape[0], -1)


def _quantize_q4_0(x: np.ndarray) -> np.ndarray:
    blocks = x.reshape(x.shape[0], -1, 32)
    idx = np.abs(blocks).argmax(axis=2)[..., None]
    peak = np.take_along_axis(blocks, idx, axis=2)
    d = (peak / np.float32(-8)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    shifted = ((blocks * inv).astype(np.float32) + np.float32(8.5)).astype(np.float32)
    q = np.minimum(shifted.astype(np.int32), 15).astype(np.uint8)
    nibbles = q[:, :, :16] | q[:, :, 16:] << 4
    out = np.concatenate([d.astype("<f2").view(np.uint8), nibbles], axis=2)
    return out.reshape(x.shape[0], -1)


def quantize(name: str, weights: np.ndarray) -> np.ndarray:
    """Float/quant types: float32 [rows, cols] -> packed uint8 bytes."""
    t = tensor_type(name)
    if t.kind not in ("float", "quant"):
        raise ValueError(f"{name} is a ternary or sign type: use pack()")
    x = np.asarray(weights, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name}: weights must be 2-D [rows, cols], got shape {x.shape}")
    x = _pad_cols(x, t.padded_cols(x.shape[1]), 0.0)
    if name == "f32":
        out = x.astype("<f4").view(np.uint8)
    elif name == "f16":
        with np.errstate(over="ignore"):  # out of range becomes inf, as in C
            out = x.astype("<f2").view(np.uint8)
    elif name == "bf16":
        out = _to_bf16_bits(x).astype("<u2").view(np.uint8)
    elif name == "q8_0":
        out = _quantize_q8_0(x)
    else:
        out = _quantize_q4_0(x)
    return np.ascontiguousarray(out).ravel()


def _dequantize_rows(t: TensorType, packed: np.ndarray) -> np.ndarray:
    rows = packed.shape[0]
    if t.name == "f32":
        return packed.view("<f4").astype(np.float32)
    if t.name == "f16":
        return packed.view("<f2").astype(np.float32)
    if t.name == "bf16":
        return (packed.view("<u2").astype(np.uint32) << 16).view(np.float32)
    blocks = packed.reshape(rows, -1, t.block_bytes)
    d = np.ascontiguousarray(blocks[:, :, :2]).view("<f2").astype(np.float32)
    if t.name == "q8_0":
        q = blocks[:, :, 2:].view(np.int8).astype(np.float32)
    else:
        nib = blocks[:, :, 2:]
        q = np.concatenate([nib & 15, nib >> 4], axis=2).astype(np.float32) - 8
    return (q * d).reshape(rows, -1)


def dequantize(name: str, data: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Packed bytes of any type -> float32 [rows, cols] (ternary/sign: value * row scale)."""
    t = tensor_type(name)
    data = _split(t, data, rows, cols)
    if t.kind in ("ternary", "sign"):
        values, scale = unpack(name, data, rows, cols)
        return values.astype(np.float32) * scale[:, None]
    packed = data.reshape(rows, t.row_bytes(cols))
    return _dequantize_rows(t, packed)[:, :cols]
