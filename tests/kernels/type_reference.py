"""numpy references for the tensor types, written from docs/FORMAT.md's table and byte layouts,
not from the C codecs: what the library's codecs (bitllm.runtime.tensor_types) are checked
against. No validation here; the library's own checks are tested on the library."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..conftest import REPO

FORMAT_MD = REPO / "docs" / "FORMAT.md"
_TABLE_ROW = re.compile(r"^\| `(\w+)` \| (\d+) \| (\w+) \| (\d+) / (\d+) \| [\d.]+ \| (.+?) \|$")
_POW3 = np.array([81, 27, 9, 3, 1], dtype=np.int32)


@dataclass(frozen=True)
class DocumentedType:
    name: str
    gguf_type: int
    kind: str
    block_weights: int
    block_bytes: int
    row_scale: bool

    def padded_cols(self, cols: int) -> int:
        return -(-cols // self.block_weights) * self.block_weights


def documented_types() -> dict[str, DocumentedType]:
    """The type table of docs/FORMAT.md."""
    types = {}
    for line in FORMAT_MD.read_text().splitlines():
        m = _TABLE_ROW.match(line)
        if m:
            name, gguf_type, kind, weights, nbytes, scale = m.groups()
            row_scale = scale != "-"
            types[name] = DocumentedType(
                name, int(gguf_type), kind, int(weights), int(nbytes), row_scale
            )
    return types


def _pad(values: np.ndarray, cols: int, fill: float) -> np.ndarray:
    return np.pad(values, ((0, 0), (0, cols - values.shape[1])), constant_values=fill)


def pack(name: str, values: np.ndarray, row_scale: np.ndarray) -> np.ndarray:
    """bt2 / bt1 / bs1: all rows' blocks, then the float32 row scales."""
    t = documented_types()[name]
    v = _pad(values.astype(np.int8), t.padded_cols(values.shape[1]), 1 if t.kind == "sign" else 0)
    rows = v.shape[0]
    if name == "bt2":  # bits 2k+1:2k of byte j: column j + 64k, as trit + 1
        codes = (v + 1).astype(np.uint8).reshape(rows, -1, 4, 64)
        packed = codes[:, :, 0] | codes[:, :, 1] << 2 | codes[:, :, 2] << 4 | codes[:, :, 3] << 6
    elif name == "bt1":  # byte j: ceil(n * 256 / 243), n the base-3 number of columns j + 64k
        codes = (v + 1).astype(np.int32).reshape(rows, -1, 5, 64)
        n = np.einsum("rbkj,k->rbj", codes, _POW3)
        packed = ((n * 256 + 242) // 243).astype(np.uint8)
    else:  # bs1: bit k of byte j is column 8j + k, set for -1
        packed = np.packbits(v < 0, axis=1, bitorder="little")
    body = packed.reshape(rows, -1).ravel()
    return np.concatenate([body, row_scale.astype("<f4").view(np.uint8)])


def unpack(name: str, data: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    t = documented_types()[name]
    body_bytes = rows * t.padded_cols(cols) // t.block_weights * t.block_bytes
    body = data[:body_bytes].reshape(rows, -1)
    scale = data[body_bytes:].view("<f4").astype(np.float32)
    if name == "bs1":
        bits = np.unpackbits(body, axis=1, bitorder="little")[:, :cols]
        return np.where(bits == 1, -1, 1).astype(np.int8), scale
    blocks = body.reshape(rows, -1, 1, 64).astype(np.uint32)
    if name == "bt2":
        codes = (blocks >> np.array([0, 2, 4, 6], dtype=np.uint32).reshape(1, 1, 4, 1)) & 3
    else:  # bt1: digit k = (((byte * 3^k) mod 256) * 3) >> 8
        shifted = (blocks * np.array([1, 3, 9, 27, 81], dtype=np.uint32).reshape(1, 1, 5, 1)) & 255
        codes = (shifted * 3) >> 8
    return (codes.astype(np.int8) - 1).reshape(rows, -1)[:, :cols], scale


def _round_half_away(v: np.ndarray) -> np.ndarray:
    """C's roundf, computed exactly in float64."""
    v64 = v.astype(np.float64)
    return np.sign(v64) * np.floor(np.abs(v64) + 0.5)


def _bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round to nearest even; a NaN stays a (quiet) NaN."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    return np.where(nan, ((u >> 16) | 0x40).astype(np.uint16), rounded)


def _inverse(d: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)


def _q8_0(blocks: np.ndarray) -> np.ndarray:
    """d = max|x| / 127 as f16, then 32 int8 round(x / d)."""
    d = (np.abs(blocks).max(axis=2, keepdims=True) / np.float32(127)).astype(np.float32)
    q = _round_half_away((blocks * _inverse(d)).astype(np.float32)).astype(np.int8)
    return np.concatenate([d.astype("<f2").view(np.uint8), q.view(np.uint8)], axis=2)


def _q4_0(blocks: np.ndarray) -> np.ndarray:
    """d = (the value of largest magnitude) / -8 as f16, then 16 bytes of nibbles
    min(15, int(x / d + 8.5)): the low nibbles hold the first 16 weights."""
    peak = np.take_along_axis(blocks, np.abs(blocks).argmax(axis=2)[..., None], axis=2)
    d = (peak / np.float32(-8)).astype(np.float32)
    shifted = ((blocks * _inverse(d)).astype(np.float32) + np.float32(8.5)).astype(np.float32)
    q = np.minimum(shifted.astype(np.int32), 15).astype(np.uint8)
    nibbles = q[:, :, :16] | q[:, :, 16:] << 4
    return np.concatenate([d.astype("<f2").view(np.uint8), nibbles], axis=2)


def _tq_codes(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tq1_0 / tq2_0: d = max|w| of each 256-block, codes round(w * (1 / d)) + 1 (halves away
    from zero); d is returned as the f16 bytes the block stores."""
    d = np.abs(blocks).max(axis=2, keepdims=True).astype(np.float32)
    codes = (_round_half_away((blocks * _inverse(d)).astype(np.float32)) + 1).astype(np.uint8)
    return codes, d.astype("<f2").view(np.uint8)


def _tq2_0(blocks: np.ndarray) -> np.ndarray:
    """64 bytes, then f16 d: weight 128h + 32l + m is bits 2l..2l+1 of byte 32h + m."""
    codes, d = _tq_codes(blocks)
    parts = codes.reshape(*codes.shape[:2], 2, 4, 32).astype(np.uint8)  # [.., h, l, m]
    packed = parts[:, :, :, 0] | parts[:, :, :, 1] << 2 | parts[:, :, :, 2] << 4
    packed = packed | parts[:, :, :, 3] << 6
    return np.concatenate([packed.reshape(*codes.shape[:2], 64), d], axis=2)


def _fraction_bytes(digits: np.ndarray) -> np.ndarray:
    """digits [..., 5, bytes] (first digit most significant) -> ceil(n * 256 / 243)."""
    n = np.einsum("...kj,k->...j", digits.astype(np.int32), _POW3)
    return ((n * 256 + 242) // 243).astype(np.uint8)


def _tq1_0(blocks: np.ndarray) -> np.ndarray:
    """bytes 0-31: weight 32k + m is digit k of byte m; bytes 32-47: weight 160 + 16k + m is
    digit k of byte 32 + m; bytes 48-51: weight 240 + 4k + j is digit k (of five, the last 0)
    of byte 48 + j; then f16 d."""
    codes, d = _tq_codes(blocks)
    lead = codes.shape[:2]
    first = _fraction_bytes(codes[:, :, :160].reshape(*lead, 5, 32))
    second = _fraction_bytes(codes[:, :, 160:240].reshape(*lead, 5, 16))
    tail = codes[:, :, 240:].reshape(*lead, 4, 4)
    tail = np.concatenate([tail, np.zeros((*lead, 1, 4), np.uint8)], axis=2)
    return np.concatenate([first, second, _fraction_bytes(tail), d], axis=2)


def _digits(packed: np.ndarray, count: int) -> np.ndarray:
    """Digits 0..count-1 of base-3 fraction bytes [rows, blocks, bytes] -> [.., k, byte]:
    (((q * 3^k) mod 256) * 3) >> 8."""
    powers = np.array([1, 3, 9, 27, 81][:count], np.uint32).reshape(count, 1)
    return (((packed[:, :, None, :].astype(np.uint32) * powers) & 255) * 3) >> 8


def _tq_dequantize(name: str, blocks: np.ndarray) -> np.ndarray:
    """[rows, blocks, bytes] -> [rows, blocks * 256]: (code - 1) * d."""
    rows, n = blocks.shape[:2]
    if name == "tq2_0":
        shifts = np.array([0, 2, 4, 6], np.uint8).reshape(1, 1, 1, 4, 1)
        codes = (blocks[:, :, :64].reshape(rows, n, 2, 1, 32) >> shifts) & 3
        d = np.ascontiguousarray(blocks[:, :, 64:66]).view("<f2")
    else:
        parts = [_digits(blocks[:, :, :32], 5), _digits(blocks[:, :, 32:48], 5)]
        parts.append(_digits(blocks[:, :, 48:52], 4))
        codes = np.concatenate([p.reshape(rows, n, -1) for p in parts], axis=2)
        d = np.ascontiguousarray(blocks[:, :, 52:54]).view("<f2")
    values = codes.reshape(rows, n, 256).astype(np.float32) - 1
    return (values * d.astype(np.float32)).reshape(rows, -1)


def _q1_0(blocks: np.ndarray) -> np.ndarray:
    """llama.cpp's reference (docs/INTEROP.md "Q1_0"): d = mean |w| over 128, summed in order
    in float32, as f16; bit i % 8 of byte i / 8 set where w >= 0."""
    total = np.zeros(blocks.shape[:2], np.float32)
    for i in range(blocks.shape[2]):
        total = (total + np.abs(blocks[:, :, i])).astype(np.float32)
    d = (total / np.float32(128)).astype(np.float32)[..., None]
    bits = np.packbits(blocks >= 0, axis=2, bitorder="little")
    return np.concatenate([d.astype("<f2").view(np.uint8), bits], axis=2)


def _q2_0(blocks: np.ndarray) -> np.ndarray:
    """llama.cpp's reference (docs/INTEROP.md "Q2_0"): d = max |w| as f16, code
    clamp(round(w / d) + 1, 0, 3), weight i in bits 2 (i % 4) of byte i / 4."""
    d = np.abs(blocks).max(axis=2, keepdims=True).astype(np.float32)
    scaled = (blocks * _inverse(d)).astype(np.float32)
    codes = np.clip(_round_half_away(scaled) + 1, 0, 3).astype(np.uint8)
    quads = codes.reshape(*codes.shape[:2], -1, 4)
    packed = quads[..., 0] | quads[..., 1] << 2 | quads[..., 2] << 4 | quads[..., 3] << 6
    return np.concatenate([d.astype("<f2").view(np.uint8), packed], axis=2)


def quantize(name: str, weights: np.ndarray) -> np.ndarray:
    t = documented_types()[name]
    x = _pad(weights.astype(np.float32), t.padded_cols(weights.shape[1]), 0.0)
    if name == "f32":
        return x.astype("<f4").view(np.uint8).ravel()
    if name == "f16":
        with np.errstate(over="ignore"):  # out of range becomes inf
            return x.astype("<f2").view(np.uint8).ravel()
    if name == "bf16":
        return _bf16_bits(x).astype("<u2").view(np.uint8).ravel()
    blocks = x.reshape(x.shape[0], -1, t.block_weights)
    codec = {"q8_0": _q8_0, "q4_0": _q4_0, "q1_0": _q1_0, "q2_0": _q2_0, "q2_0_g128": _q2_0}
    codec |= {"tq1_0": _tq1_0, "tq2_0": _tq2_0}
    return codec[name](blocks).ravel()


def dequantize(name: str, data: np.ndarray, rows: int, cols: int) -> np.ndarray:
    t = documented_types()[name]
    if t.kind in ("ternary", "sign"):
        values, scale = unpack(name, data, rows, cols)
        return values.astype(np.float32) * scale[:, None]
    packed = data.reshape(rows, -1)
    if name == "f32":
        out = packed.view("<f4").astype(np.float32)
    elif name == "f16":
        out = packed.view("<f2").astype(np.float32)
    elif name == "bf16":
        out = (packed.view("<u2").astype(np.uint32) << 16).view(np.float32)
    elif name in ("tq1_0", "tq2_0"):
        out = _tq_dequantize(name, packed.reshape(rows, -1, t.block_bytes))
    else:
        blocks = packed.reshape(rows, -1, t.block_bytes)
        d = np.ascontiguousarray(blocks[:, :, :2]).view("<f2").astype(np.float32)
        if name == "q8_0":
            q = blocks[:, :, 2:].view(np.int8).astype(np.float32)
        elif name == "q1_0":  # bit set: +d, clear: -d
            bits = np.unpackbits(blocks[:, :, 2:], axis=2, bitorder="little")
            q = bits.astype(np.float32) * 2 - 1
        elif name in ("q2_0", "q2_0_g128"):  # codes 0..3: -d, 0, +d, +2d
            pairs = blocks[:, :, 2:, None] >> np.array([0, 2, 4, 6], dtype=np.uint8) & 3
            q = pairs.reshape(rows, pairs.shape[1], -1).astype(np.float32) - 1
        else:
            nib = blocks[:, :, 2:]
            q = np.concatenate([nib & 15, nib >> 4], axis=2).astype(np.float32) - 8
        out = (q * d).reshape(rows, -1)
    return out[:, :cols]
