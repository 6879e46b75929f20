"""llama.cpp's k-quants (q4_k, q5_k, q6_k): the library decodes every byte the way gguf-py
(llama.cpp's own Python package, an implementation nobody here wrote) does, its quantizer
keeps the error of a 4/5/6-bit code, and its products agree with float math on every ISA."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType
from gguf import quants as gguf_quants

from bitllm import kernels

KQUANTS = {
    "q4_k": GGMLQuantizationType.Q4_K,
    "q5_k": GGMLQuantizationType.Q5_K,
    "q6_k": GGMLQuantizationType.Q6_K,
}
# Relative RMS error on Gaussian weights: a uniform code's step / sqrt(12), the step being a
# block's range over the code's levels (q4_k: ~4.2 sigma / 15 / 3.46 = 0.081), plus a margin.
MAX_RMS_ERROR = {"q4_k": 0.085, "q5_k": 0.042, "q6_k": 0.019}
F16_ONE = np.float16(1.0).view(np.uint16)


def _random_blocks(rng: np.random.Generator, name: str, rows: int, cols: int) -> np.ndarray:
    """Random bytes with finite f16 scales: every code, scale and min bit pattern occurs."""
    matrix = kernels.quantize(name, np.zeros((rows, cols), np.float32))
    data = rng.integers(0, 256, matrix.data.size, dtype=np.uint8)
    blocks = data.reshape(-1, matrix.data.size // (rows * cols // 256))
    scale_offsets = (208,) if name == "q6_k" else (0, 2)
    for offset in scale_offsets:  # scales in [-2, 2]: no inf or NaN from random exponents
        blocks[:, offset : offset + 2] = (
            rng.uniform(-2, 2, len(blocks)).astype(np.float16).view(np.uint8).reshape(-1, 2)
        )
    return data


@pytest.mark.parametrize("name", list(KQUANTS))
def test_every_bit_decodes_as_gguf_py_decodes_it(name: str, rng: np.random.Generator) -> None:
    rows, cols = 5, 1024
    data = _random_blocks(rng, name, rows, cols)
    ours = kernels.dequantize(kernels.from_bytes(name, data, rows, cols))
    theirs = gguf_quants.dequantize(data.reshape(rows, -1), KQUANTS[name])
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("name", list(KQUANTS))
def test_quantize_keeps_the_error_of_its_bits(name: str, rng: np.random.Generator) -> None:
    w = rng.standard_normal((16, 2560)).astype(np.float32)
    w[3] = 0.0  # an all-zero row stays zero
    w[5, :256] = 0.25  # a constant block
    back = kernels.dequantize(kernels.quantize(name, w))
    assert np.all(back[3] == 0.0)
    assert np.abs(back[5, :256] - 0.25).max() < 0.25 * MAX_RMS_ERROR[name] * 4
    rms = np.sqrt(np.mean((back - w) ** 2)) / np.sqrt(np.mean(w**2))
    assert rms < MAX_RMS_ERROR[name], f"{name}: relative RMS error {rms:.4f}"


@pytest.mark.parametrize("name", list(KQUANTS))
def test_quantized_bytes_decode_the_same_in_gguf_py(name: str, rng: np.random.Generator) -> None:
    w = (rng.standard_normal((4, 768)) * rng.uniform(0.01, 10, (4, 1))).astype(np.float32)
    matrix = kernels.quantize(name, w)
    theirs = gguf_quants.dequantize(matrix.data.reshape(4, -1), KQUANTS[name])
    np.testing.assert_array_equal(kernels.dequantize(matrix), theirs)


@pytest.mark.parametrize("isa", kernels.isas())
@pytest.mark.parametrize("name", list(KQUANTS))
def test_products_of_foreign_bytes_match_float_math(
    name: str, isa: str, rng: np.random.Generator
) -> None:
    rows, cols = 19, 2560
    matrix = kernels.from_bytes(name, _random_blocks(rng, name, rows, cols), rows, cols)
    dense = kernels.dequantize(matrix).astype(np.float64)
    x = rng.standard_normal((5, cols)).astype(np.float32)
    y = kernels.matmul(matrix, x, isa=isa, threads=2)
    expected = x.astype(np.float64) @ dense.T
    # activations are quantized to int8 per block of 32: error ~ 1/254 of each block's range
    bound = 2e-2 * np.abs(x).max() * np.abs(dense).max() * np.sqrt(cols)
    assert np.abs(y - expected).max() <= bound
