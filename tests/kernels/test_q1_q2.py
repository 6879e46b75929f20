"""llama.cpp's Q1_0 and Q2_0 (both packings of id 42: upstream's groups of 64, PrismML's older
groups of 128): every byte decodes as docs/INTEROP.md's tables say (numpy references; gguf-py
0.19 sizes Q1_0 but decodes neither), the quantizer is llama.cpp's reference one and gives
back sign / trit weights times an f16 group scale exactly, and products agree with float math
on every ISA, code 3 (+2d) of Q2_0 included."""

from __future__ import annotations

import numpy as np
import pytest

from bitllm import kernels
from bitllm.runtime import tensor_types

from ..interop import ggml_decoders
from . import type_reference

TYPES = ["q1_0", "q2_0", "q2_0_g128"]


def _random_blocks(rng: np.random.Generator, name: str, rows: int, cols: int) -> np.ndarray:
    """Random bytes with finite f16 scales in [-2, 2]: every bit and code occurs."""
    t = tensor_types.tensor_type(name)
    data = rng.integers(0, 256, t.tensor_bytes(rows, cols), dtype=np.uint8)
    blocks = data.reshape(-1, t.block_bytes)
    blocks[:, :2] = rng.uniform(-2, 2, len(blocks)).astype("<f2").view(np.uint8).reshape(-1, 2)
    return data


def _group_scaled(rng: np.random.Generator, name: str, rows: int, cols: int) -> np.ndarray:
    """Sign (q1_0) or trit (q2_0) weights times an f16 scale per group that varies from group
    to group, as Bonsai's unpacked checkpoints hold them; q2_0 gets an all-zero group too."""
    group = tensor_types.tensor_type(name).block_weights
    scales = rng.uniform(0.002, 0.2, (rows, cols // group)).astype(np.float16).astype(np.float32)
    if name == "q1_0":
        values = rng.choice(np.array([-1.0, 1.0], np.float32), (rows, cols))
    else:
        values = rng.integers(-1, 2, (rows, cols)).astype(np.float32)
        values[:, :group] = 0  # a group of zeros: d = 0
        values[1, group : 2 * group] = 1  # a group without -1
    return (values * np.repeat(scales, group, axis=1)).astype(np.float32)


@pytest.mark.parametrize("name", TYPES)
def test_every_bit_decodes_as_the_documented_tables(name: str, rng: np.random.Generator) -> None:
    rows, cols = 5, 1024
    data = _random_blocks(rng, name, rows, cols)
    ours = kernels.dequantize(kernels.from_bytes(name, data, rows, cols))
    np.testing.assert_array_equal(ours, type_reference.dequantize(name, data, rows, cols))
    if name != "q2_0_g128":  # tests/interop's decoders, written from INTEROP.md's byte tables
        block_bytes = tensor_types.tensor_type(name).block_bytes
        theirs = getattr(ggml_decoders, name)(data.reshape(-1, block_bytes))
        np.testing.assert_array_equal(ours, theirs.reshape(rows, cols))


@pytest.mark.parametrize("name", TYPES)
def test_quantize_is_llama_cpps_reference(name: str, rng: np.random.Generator) -> None:
    w = (rng.standard_normal((6, 1536)) * rng.uniform(0.01, 10, (6, 1))).astype(np.float32)
    w[0, :256] = 0.0  # all-zero blocks: d = 0
    w[1, 5] = -0.0  # -0 counts as >= 0 for q1_0
    w[2, :64] = np.float32(0.5) * np.where(np.arange(64) % 2, 1, -1)  # w / d = +-1 exactly
    w[2, 3] = 0.25  # a tie: w / d = 0.5 rounds away from zero
    matrix = kernels.quantize(name, w)
    np.testing.assert_array_equal(matrix.data, type_reference.quantize(name, w))


@pytest.mark.parametrize("name", TYPES)
def test_sign_or_trit_times_a_group_scale_round_trips_exactly(
    name: str, rng: np.random.Generator
) -> None:
    w = _group_scaled(rng, name, 7, 1024)
    back = kernels.dequantize(kernels.quantize(name, w))
    np.testing.assert_array_equal(back, w)
    again = kernels.quantize(name, back)
    np.testing.assert_array_equal(again.data, kernels.quantize(name, w).data)


@pytest.mark.parametrize("isa", kernels.isas())
@pytest.mark.parametrize("name", TYPES)
def test_products_of_foreign_bytes_match_float_math(
    name: str, isa: str, rng: np.random.Generator
) -> None:
    rows, cols = 19, 2560
    matrix = kernels.from_bytes(name, _random_blocks(rng, name, rows, cols), rows, cols)
    dense = kernels.dequantize(matrix).astype(np.float64)
    for n in (1, 3, 6):  # GEMV, a GEMM tile and a GEMM with leftover tokens
        x = rng.standard_normal((n, cols)).astype(np.float32)
        x[:, 7] *= 30  # an outlier
        y = kernels.matmul(matrix, x, isa=isa, threads=2)
        expected = x.astype(np.float64) @ dense.T
        # activations are int8 per block of 32: error ~ 1/254 of each block's range
        bound = 1e-2 * np.abs(x).max() * np.abs(dense).max() * np.sqrt(cols)
        assert np.abs(y - expected).max() <= bound, f"n={n}"


@pytest.mark.parametrize("name", TYPES)
def test_every_isa_agrees_with_scalar(name: str, rng: np.random.Generator) -> None:
    rows, cols = 37, 1024
    matrix = kernels.from_bytes(name, _random_blocks(rng, name, rows, cols), rows, cols)
    x = rng.standard_normal((5, cols)).astype(np.float32)
    scalar = kernels.matmul(matrix, x, isa="scalar", threads=1).astype(np.float64)
    for isa in kernels.isas():
        y = kernels.matmul(matrix, x, isa=isa, threads=1)
        # the same integer block dots; only the float sums run in another order
        np.testing.assert_allclose(y, scalar, rtol=0, atol=1e-5 * np.abs(scalar).max())
