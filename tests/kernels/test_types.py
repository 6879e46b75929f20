"""Tensor types: the numpy codecs and the C reference codecs agree byte for byte,
round-trip exactly, and reject bad input with clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from bitllm import kernels
from bitllm.runtime import tensor_types

from .reference import random_values

BIT_TYPES = ["bt2", "bt1", "bs1"]
FLOAT_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0"]
SHAPES = [(1, 64), (3, 96), (17, 1000), (4, 1536), (2, 5460), (1, 14336)]


def test_library_and_numpy_know_the_same_types() -> None:
    assert kernels.types() == {name: t.kind for name, t in tensor_types.TYPES.items()}


def test_type_ids_collide_with_no_peer() -> None:
    ours = {t.gguf_type for t in tensor_types.TYPES.values() if t.kind in ("ternary", "sign")}
    llama_cpp = set(range(0, 43))
    ik_llama_cpp = set(range(43, 512))  # its additions sit in 130-399
    assert not ours & (llama_cpp | ik_llama_cpp)


@pytest.mark.parametrize("name,max_bpw", [("bt2", 2.0), ("bt1", 1.7), ("bs1", 1.0)])
def test_bits_per_weight(name: str, max_bpw: float) -> None:
    t = tensor_types.tensor_type(name)
    assert 8 * t.block_bytes / t.block_weights <= max_bpw


@pytest.mark.parametrize("name", BIT_TYPES)
def test_pack_matches_numpy_and_round_trips(name: str, rng: np.random.Generator) -> None:
    kind = tensor_types.tensor_type(name).kind
    for rows, cols in SHAPES:
        values = random_values(rng, kind, rows, cols)
        scale = rng.uniform(0.01, 2.0, rows).astype(np.float32)
        packed = kernels.pack(name, values, scale)
        np.testing.assert_array_equal(packed.data, tensor_types.pack(name, values, scale))
        c_values, c_scale = kernels.unpack(packed)
        np.testing.assert_array_equal(c_values, values)
        np.testing.assert_array_equal(c_scale, scale)
        np_values, np_scale = tensor_types.unpack(name, packed.data, rows, cols)
        np.testing.assert_array_equal(np_values, values)
        np.testing.assert_array_equal(np_scale, scale)
        expected = values.astype(np.float32) * scale[:, None]
        np.testing.assert_array_equal(kernels.dequantize(packed), expected)
        np.testing.assert_array_equal(
            tensor_types.dequantize(name, packed.data, rows, cols), expected
        )


@pytest.mark.parametrize("name", FLOAT_TYPES)
def test_quantize_matches_numpy(name: str, rng: np.random.Generator) -> None:
    for rows, cols in [(1, 32), (5, 96), (3, 2560), (2, 70)]:
        w = (rng.standard_normal((rows, cols)) * rng.uniform(0.001, 10)).astype(np.float32)
        w[0, 0] = 0.0
        matrix = kernels.quantize(name, w)
        np.testing.assert_array_equal(matrix.data, tensor_types.quantize(name, w))
        c_out = kernels.dequantize(matrix)
        np.testing.assert_array_equal(c_out, tensor_types.dequantize(name, matrix.data, rows, cols))
        tolerance = {"f32": 0, "f16": 1e-3, "bf16": 8e-3, "q8_0": 1e-2, "q4_0": 0.15}[name]
        assert np.abs(c_out - w).max() <= tolerance * np.abs(w).max()


def test_half_precision_edge_values() -> None:
    special = np.array(
        [
            [
                0.0,
                -0.0,
                65504.0,
                65520.0,
                1e-8,
                6e-8,
                -6.1e-5,
                1e30,
                np.inf,
                -np.inf,
                3.0e-5,
                1.0009765625,
                2.0**-24 * 1.5,
            ]
        ],
        dtype=np.float32,
    )
    for name in ("f16", "bf16"):
        np.testing.assert_array_equal(
            kernels.quantize(name, special).data, tensor_types.quantize(name, special)
        )
    with np.errstate(over="ignore"):
        as_numpy = special.astype(np.float16).ravel()
    np.testing.assert_array_equal(kernels.quantize("f16", special).data.view("<f2"), as_numpy)


def test_padding_is_exact_zero_weight(rng: np.random.Generator) -> None:
    # 300 columns pad to 320 (bt1) and 512 (bt2, bs1): the padding must not move results
    for name in BIT_TYPES:
        values = random_values(rng, tensor_types.tensor_type(name).kind, 4, 300)
        matrix = kernels.pack(name, values, np.ones(4, np.float32))
        x = rng.standard_normal((1, 300)).astype(np.float32)
        dense = kernels.quantize("f32", values.astype(np.float32))
        xq = np.rint(x * (127 / np.abs(x).max())).astype(np.float32)
        np.testing.assert_allclose(kernels.matmul(matrix, xq), kernels.matmul(dense, xq), rtol=1e-6)


@pytest.mark.parametrize("name", BIT_TYPES)
def test_pack_rejects_bad_values(name: str) -> None:
    values = np.zeros((2, 64), np.int8) + 1
    values[1, 5] = 2
    with pytest.raises(ValueError, match="row 1, column 5"):
        kernels.pack(name, values, np.ones(2, np.float32))
    with pytest.raises(ValueError, match="row 1, column 5"):
        tensor_types.pack(name, values, np.ones(2, np.float32))
    with pytest.raises(ValueError, match="row_scale"):
        kernels.pack(name, np.ones((2, 64), np.int8), np.ones(3, np.float32))
    with pytest.raises(ValueError, match="not finite|NaN"):
        kernels.pack(name, np.ones((2, 64), np.int8), np.array([1, np.nan], np.float32))


def test_sign_type_rejects_zero() -> None:
    with pytest.raises(ValueError, match="not"):
        kernels.pack("bs1", np.zeros((1, 64), np.int8), np.ones(1, np.float32))


def test_invalid_code_is_reported() -> None:
    packed = kernels.pack("bt2", np.zeros((2, 256), np.int8), np.ones(2, np.float32))
    data = packed.data.copy()
    data[64 + 3] = 0xFF  # row 1 now holds code 3
    broken = kernels.from_bytes("bt2", data, 2, 256)
    with pytest.raises(ValueError, match="row 1 holds .*invalid code"):
        kernels.unpack(broken)
    with pytest.raises(ValueError, match="row 1 holds the invalid code 3"):
        tensor_types.unpack("bt2", data, 2, 256)


def test_unknown_type_and_wrong_sizes() -> None:
    with pytest.raises(ValueError, match="unknown tensor type 'bt9'.*known"):
        kernels.pack("bt9", np.ones((1, 64), np.int8), np.ones(1, np.float32))
    with pytest.raises(ValueError, match="unknown tensor type"):
        tensor_types.tensor_type("bt9")
    with pytest.raises(ValueError, match="takes 68 bytes, got 67"):
        kernels.from_bytes("bt2", np.zeros(67, np.uint8), 1, 64)
    with pytest.raises(ValueError, match="takes 68 bytes, got 67"):
        tensor_types.unpack("bt2", np.zeros(67, np.uint8), 1, 64)
    with pytest.raises(ValueError, match="use quantize"):
        kernels.pack("q8_0", np.ones((1, 32), np.int8), np.ones(1, np.float32))
    with pytest.raises(ValueError, match="use pack"):
        kernels.quantize("bt2", np.ones((1, 32), np.float32))
