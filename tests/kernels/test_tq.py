"""llama.cpp's ternary block types tq1_0 and tq2_0 (PR #8151): the library decodes every byte
the way gguf-py (llama.cpp's own Python package) does, writes the bytes gguf-py's quantizer
writes, keeps each block's f16 scale exactly, and its products agree with the exact integer
sums on every ISA."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType
from gguf import quants as gguf_quants

from bitllm import kernels

TQ = {"tq1_0": GGMLQuantizationType.TQ1_0, "tq2_0": GGMLQuantizationType.TQ2_0}
SCALE_AT = {"tq1_0": 52, "tq2_0": 64}
BLOCK_BYTES = {"tq1_0": 54, "tq2_0": 66}


def random_blocks(rng: np.random.Generator, name: str, rows: int, cols: int) -> np.ndarray:
    """Random bytes (tq2_0: code 3 included) with finite f16 scales, different in every block."""
    nbytes = BLOCK_BYTES[name]
    blocks = rng.integers(0, 256, (rows * cols // 256, nbytes), dtype=np.uint8)
    scales = rng.uniform(-2, 2, len(blocks)).astype(np.float16)
    blocks[:, SCALE_AT[name] :] = scales.view(np.uint8).reshape(-1, 2)
    return blocks.ravel()


@pytest.mark.parametrize("name", list(TQ))
def test_every_bit_decodes_as_gguf_py_decodes_it(name: str, rng: np.random.Generator) -> None:
    rows, cols = 5, 1024
    data = random_blocks(rng, name, rows, cols)
    ours = kernels.dequantize(kernels.from_bytes(name, data, rows, cols))
    theirs = gguf_quants.dequantize(data.reshape(rows, -1), TQ[name])
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("name", list(TQ))
def test_quantize_writes_the_bytes_gguf_py_writes(name: str, rng: np.random.Generator) -> None:
    w = (rng.standard_normal((6, 1536)) * rng.uniform(0.01, 10, (6, 1))).astype(np.float32)
    w[1] = 0.0  # d = 0: every code 1
    w[2, :256] = 0.37  # a constant block
    w[3] = np.where(rng.random(1536) < 0.5, -1, 1) * 0.5  # exact halves of d round away
    w[3, ::7] = 0.25
    matrix = kernels.quantize(name, w)
    theirs = gguf_quants.quantize(w, TQ[name]).view(np.uint8).ravel()
    np.testing.assert_array_equal(matrix.data, theirs)


@pytest.mark.parametrize("name", list(TQ))
def test_every_block_keeps_its_own_scale(name: str, rng: np.random.Generator) -> None:
    """Ternary weights with a different scale in each 256-block (no per-row scale could hold
    them) come back exactly: trit * f16(scale)."""
    trits = rng.integers(-1, 2, (3, 1024)).astype(np.float32)
    trits[:, ::256] = 1  # every block reaches its max
    scales = rng.uniform(0.01, 3, (3, 4)).astype(np.float16).astype(np.float32)
    w = trits * np.repeat(scales, 256, axis=1)
    back = kernels.dequantize(kernels.quantize(name, w))
    np.testing.assert_array_equal(back, w)


def _half_steps(x: np.ndarray) -> np.ndarray:
    """Half the int8 step of each activation's 32-block (d = max|x| / 127, docs/FORMAT.md):
    the most its rounding can move it."""
    blocks = np.abs(x.reshape(len(x), -1, 32)).max(axis=2, keepdims=True) / 127 / 2
    return np.broadcast_to(blocks, (len(x), x.shape[1] // 32, 32)).reshape(x.shape)


@pytest.mark.parametrize("isa", kernels.isas())
@pytest.mark.parametrize("name", list(TQ))
def test_products_of_foreign_bytes_match_float_math(
    name: str, isa: str, rng: np.random.Generator
) -> None:
    rows, cols = 19, 2560
    matrix = kernels.from_bytes(name, random_blocks(rng, name, rows, cols), rows, cols)
    dense = kernels.dequantize(matrix).astype(np.float64)
    x = rng.standard_normal((5, cols)).astype(np.float32)
    x[:, 7] *= 30  # an outlier column
    for n in (1, 5):
        y = kernels.matmul(matrix, x[:n], isa=isa, threads=2)
        expected = x[:n].astype(np.float64) @ dense.T
        # each activation is off by at most half its block's step; float sums add a little
        bound = _half_steps(x[:n]).astype(np.float64) @ np.abs(dense).T * 1.01
        bound += 1e-5 * np.abs(x[:n]).astype(np.float64) @ np.abs(dense).T
        assert np.all(np.abs(y - expected) <= bound), f"n={n}"
