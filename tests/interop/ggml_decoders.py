"""numpy decoders of llama.cpp's block types, written from docs/INTEROP.md's byte tables.

They exist to check those tables against files llama.cpp wrote (test_format_facts.py), and as
a readable reference for whoever implements the types natively. Each decoder maps blocks
(uint8, shape [n_blocks, block bytes]) to weights (float32, [n_blocks, block weights]).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Decoder = Callable[[np.ndarray], np.ndarray]


def _f16(blocks: np.ndarray, at: int) -> np.ndarray:
    """The f16 field at byte `at` of every block, as a float32 column."""
    return blocks[:, at : at + 2].copy().view(np.float16).astype(np.float32)


def q8_0(blocks: np.ndarray) -> np.ndarray:
    return blocks[:, 2:34].view(np.int8).astype(np.float32) * _f16(blocks, 0)


def q4_0(blocks: np.ndarray) -> np.ndarray:
    qs = blocks[:, 2:18]
    codes = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.float32) - 8
    return codes * _f16(blocks, 0)


def q1_0(blocks: np.ndarray) -> np.ndarray:
    bits = np.unpackbits(blocks[:, 2:18], axis=1, bitorder="little").astype(np.float32)
    return (2 * bits - 1) * _f16(blocks, 0)


def q2_0(blocks: np.ndarray) -> np.ndarray:
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8)
    codes = (blocks[:, 2:18, None] >> shifts) & 3  # [block, byte, pair]: weight 4*byte + pair
    return (codes.reshape(len(blocks), 64).astype(np.float32) - 1) * _f16(blocks, 0)


def tq2_0(blocks: np.ndarray) -> np.ndarray:
    qs = blocks[:, :64].reshape(-1, 2, 1, 32)  # [block, half, -, byte]
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)
    codes = (qs >> shifts) & 3  # [block, half, pair, byte]: weight 128*half + 32*pair + byte
    return (codes.reshape(len(blocks), 256).astype(np.float32) - 1) * _f16(blocks, 64)


def _trits(packed: np.ndarray, count: int) -> np.ndarray:
    """Trits 0..count-1 (most significant first) of base-3 fraction bytes: [..., count, byte]."""
    powers = (3 ** np.arange(count, dtype=np.uint16)).reshape(count, 1)
    shifted = (packed[..., None, :].astype(np.uint16) * powers) & 255
    return (shifted * 3) >> 8


def tq1_0(blocks: np.ndarray) -> np.ndarray:
    n = len(blocks)
    first = _trits(blocks[:, 0:32], 5).reshape(n, 160)  # weight 32k + byte
    second = _trits(blocks[:, 32:48], 5).reshape(n, 80)  # weight 160 + 16k + byte
    tail = _trits(blocks[:, 48:52], 4).reshape(n, 16)  # weight 240 + 4k + byte
    trits = np.concatenate([first, second, tail], axis=1).astype(np.float32)
    return (trits - 1) * _f16(blocks, 52)


def _k_scales(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The eight 6-bit scales and minimums of a Q4_K / Q5_K block's 12 scale bytes."""
    low, mid, high = packed[:, 0:4], packed[:, 4:8], packed[:, 8:12]
    scales = np.concatenate([low & 63, (high & 15) | ((low >> 6) << 4)], axis=1)
    mins = np.concatenate([mid & 63, (high >> 4) | ((mid >> 6) << 4)], axis=1)
    return scales.astype(np.float32), mins.astype(np.float32)


def _k_nibbles(qs: np.ndarray) -> np.ndarray:
    """Q4_K / Q5_K low codes as [block, sub-block, 32]: pair p's bytes give 2p then 2p+1."""
    pairs = qs.reshape(-1, 4, 1, 32)
    return np.concatenate([pairs & 15, pairs >> 4], axis=2).reshape(-1, 8, 32)


def _k_combine(blocks: np.ndarray, codes: np.ndarray) -> np.ndarray:
    scales, mins = _k_scales(blocks[:, 4:16])
    d, dmin = _f16(blocks, 0), _f16(blocks, 2)
    values = (d * scales)[:, :, None] * codes - (dmin * mins)[:, :, None]
    return values.reshape(len(blocks), 256)


def q4_k(blocks: np.ndarray) -> np.ndarray:
    return _k_combine(blocks, _k_nibbles(blocks[:, 16:144]).astype(np.float32))


def q5_k(blocks: np.ndarray) -> np.ndarray:
    qh = blocks[:, 16:48]
    sub_blocks = np.arange(8, dtype=np.uint8).reshape(1, 8, 1)
    high = ((qh[:, None, :] >> sub_blocks) & 1) << 4  # bit s of qh[l] for sub-block s
    return _k_combine(blocks, (_k_nibbles(blocks[:, 48:176]) | high).astype(np.float32))


def q6_k(blocks: np.ndarray) -> np.ndarray:
    n = len(blocks)
    ql = blocks[:, 0:128].reshape(n, 2, 64)
    qh = blocks[:, 128:192].reshape(n, 2, 32)
    scales = blocks[:, 192:208].view(np.int8).reshape(n, 2, 8).astype(np.float32)
    low, low2 = ql[:, :, :32], ql[:, :, 32:]
    quarter = [
        (low & 15) | ((qh & 3) << 4),
        (low2 & 15) | (((qh >> 2) & 3) << 4),
        (low >> 4) | (((qh >> 4) & 3) << 4),
        (low2 >> 4) | (((qh >> 6) & 3) << 4),
    ]
    codes = np.stack(quarter, axis=2).astype(np.float32) - 32  # [block, half, quarter, l]
    sixteenth = np.arange(32) // 16
    scale = scales[:, :, 2 * np.arange(4)[:, None] + sixteenth[None, :]]
    return (_f16(blocks, 208)[:, :, None, None] * scale * codes).reshape(n, 256)


# name -> (weights per block, bytes per block, decoder), as docs/INTEROP.md's type table
BLOCK_TYPES: dict[str, tuple[int, int, Decoder]] = {
    "q8_0": (32, 34, q8_0),
    "q4_0": (32, 18, q4_0),
    "q1_0": (128, 18, q1_0),
    "q2_0": (64, 18, q2_0),
    "tq2_0": (256, 66, tq2_0),
    "tq1_0": (256, 54, tq1_0),
    "q4_k": (256, 144, q4_k),
    "q5_k": (256, 176, q5_k),
    "q6_k": (256, 210, q6_k),
}


def decode_rows(data: np.ndarray, type_name: str, rows: int, cols: int) -> np.ndarray:
    """A [rows, cols] float32 matrix from the tensor's raw bytes."""
    weights, nbytes, decoder = BLOCK_TYPES[type_name]
    if cols % weights:
        raise ValueError(f"{type_name}: a row of {cols} is not a whole number of blocks")
    blocks = np.ascontiguousarray(data[: rows * cols // weights * nbytes]).reshape(-1, nbytes)
    return decoder(blocks).reshape(rows, cols)
