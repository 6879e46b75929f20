"""Plain numpy references for the kernels: the BitNet activation rule and exact
int64 products, written from the definitions, not from the C code."""

from __future__ import annotations

import numpy as np


def quantize_activations(x: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-row absmax: s = qmax / max(max|x|, 1e-5), q = clamp(rint(x * s)); NaN takes no
    part in the maximum and quantizes to the lowest value, as does inf * 0."""
    qmax = np.float32(127 if bits == 8 else 32767)
    with np.errstate(invalid="ignore"):
        peak = np.nanmax(np.abs(x), axis=1, initial=0)
        amax = np.maximum(peak, np.float32(1e-5)).astype(np.float32)
        s = (qmax / amax).astype(np.float32)
        scaled = np.rint((x * s[:, None]).astype(np.float32))
    q = np.clip(np.where(np.isnan(scaled), -qmax - 1, scaled), -qmax - 1, qmax)
    return q.astype(np.int64), s


def bit_matmul(values: np.ndarray, row_scale: np.ndarray, x: np.ndarray, bits: int) -> np.ndarray:
    """y = (xq . W^T) * row_scale / s, in the order the library computes it."""
    xq, s = quantize_activations(x, bits)
    dots = xq @ values.astype(np.int64).T
    return (dots.astype(np.float32) * row_scale[None, :].astype(np.float32)) / s[:, None]


def random_values(rng: np.random.Generator, kind: str, rows: int, cols: int) -> np.ndarray:
    if kind == "sign":
        return rng.choice(np.array([-1, 1], dtype=np.int8), size=(rows, cols))
    return rng.integers(-1, 2, size=(rows, cols), dtype=np.int8)


def extreme_values(name: str, rows: int, cols: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every weight at its largest code and every activation at full scale with
    one sign per token: the largest sums the short accumulators ever hold."""
    weight = -1 if name == "bs1" else 1
    values = np.full((rows, cols), weight, dtype=np.int8)
    signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0).astype(np.float32)
    return values, np.repeat(signs[:, None], cols, axis=1)
