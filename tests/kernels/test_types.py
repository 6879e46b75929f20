"""Tensor types: the library's table matches docs/FORMAT.md, its codecs match the numpy
references written from FORMAT.md byte for byte, round-trip exactly, and reject bad input with
clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from bitllm import kernels
from bitllm.runtime import native, tensor_types

from . import type_reference
from .reference import random_values

BIT_TYPES = tensor_types.names("ternary", "sign")
FLOAT_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "tq1_0", "tq2_0", "q1_0", "q2_0", "q2_0_g128"]
SHAPES = [(1, 64), (3, 96), (17, 1000), (4, 1536), (2, 5460), (1, 14336)]


def test_library_table_is_the_documented_table() -> None:
    documented = type_reference.documented_types()
    assert len(documented) == len(tensor_types.TYPES) >= 8
    for name, t in tensor_types.TYPES.items():
        d = documented[name]
        facts = (t.gguf_type, t.kind, t.block_weights, t.block_bytes, t.row_scale)
        assert facts == (d.gguf_type, d.kind, d.block_weights, d.block_bytes, d.row_scale)
        # an id of several layouts (q2_0's groups of 64 and 128) names the table's first
        first = next(u for u in tensor_types.TYPES.values() if u.gguf_type == t.gguf_type)
        assert tensor_types.TYPES_BY_GGUF_ID[t.gguf_type] is first
    assert tensor_types.TYPES_BY_GGUF_ID[42].name == "q2_0"
    assert kernels.types() == {name: d.kind for name, d in documented.items()}


@pytest.mark.parametrize("cols", [1, 31, 32, 255, 256, 257, 320, 6912])
def test_sizes_match_the_library(cols: int) -> None:
    ffi, lib = native.library()
    for name, t in tensor_types.TYPES.items():
        assert t.row_bytes(cols) == lib.bl_row_bytes(name.encode(), cols)
        assert t.tensor_bytes(3, cols) == lib.bl_tensor_bytes(name.encode(), 3, cols)


def test_type_names_by_kind() -> None:
    assert tensor_types.names("ternary") == ("bt2", "bt1")
    assert set(tensor_types.names("float", "quant")) == {
        *("f32", "f16", "bf16", "q8_0", "q4_0"),
        *("q4_k", "q5_k", "q6_k"),
        *("tq1_0", "tq2_0"),
        *("q1_0", "q2_0", "q2_0_g128"),
    }


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
        np.testing.assert_array_equal(packed.data, type_reference.pack(name, values, scale))
        c_values, c_scale = kernels.unpack(packed)
        np.testing.assert_array_equal(c_values, values)
        np.testing.assert_array_equal(c_scale, scale)
        np_values, np_scale = type_reference.unpack(name, packed.data, rows, cols)
        np.testing.assert_array_equal(np_values, values)
        np.testing.assert_array_equal(np_scale, scale)
        expected = values.astype(np.float32) * scale[:, None]
        np.testing.assert_array_equal(kernels.dequantize(packed), expected)
        np.testing.assert_array_equal(
            type_reference.dequantize(name, packed.data, rows, cols), expected
        )


@pytest.mark.parametrize("name", FLOAT_TYPES)
def test_quantize_matches_numpy(name: str, rng: np.random.Generator) -> None:
    for rows, cols in [(1, 32), (5, 96), (3, 2560), (2, 70)]:
        w = (rng.standard_normal((rows, cols)) * rng.uniform(0.001, 10)).astype(np.float32)
        w[0, 0] = 0.0
        matrix = kernels.quantize(name, w)
        np.testing.assert_array_equal(matrix.data, type_reference.quantize(name, w))
        c_out = kernels.dequantize(matrix)
        np.testing.assert_array_equal(
            c_out, type_reference.dequantize(name, matrix.data, rows, cols)
        )
        tolerance = {"f32": 0, "f16": 1e-3, "bf16": 8e-3, "q8_0": 1e-2, "q4_0": 0.15}.get(
            name,
            # tq: a weight is at most half a block's max from its code; q1_0: |w - d| < max |w|;
            # q2_0: half a step of max |w|
            {"tq1_0": 0.5 + 1e-3, "tq2_0": 0.5 + 1e-3}.get(name, 1.0),
        )
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
            kernels.quantize(name, special).data, type_reference.quantize(name, special)
        )
    with np.errstate(over="ignore"):
        as_numpy = special.astype(np.float16).ravel()
    np.testing.assert_array_equal(kernels.quantize("f16", special).data.view("<f2"), as_numpy)


def test_f16_rounds_as_numpy_across_the_float32_range() -> None:
    # about a million bit patterns, every exponent: f16's subnormals, normals, overflow to inf
    bits = np.arange(0, 2**32, 4093, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[~np.isnan(x)]  # numpy does not quiet a NaN's payload; the library does
    with np.errstate(over="ignore"):
        expected = x.astype("<f2")
    got = kernels.quantize("f16", x[None, :]).data.view("<u2")
    np.testing.assert_array_equal(got, expected.view("<u2"))
    nan = kernels.quantize("f16", np.array([[np.nan, -np.nan]], np.float32)).data.view("<f2")
    assert np.isnan(nan).all()


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
    wide = np.ones((2, 64), np.int16)
    wide[1, 5] = 257  # int8 would wrap it to 1: it is named instead
    with pytest.raises(ValueError, match="value 257 at row 1, column 5"):
        kernels.pack(name, wide, np.ones(2, np.float32))
    fractional = np.ones((2, 64), np.float32)
    fractional[1, 5] = 0.5
    with pytest.raises(ValueError, match="value 0.5 at row 1, column 5"):
        kernels.pack(name, fractional, np.ones(2, np.float32))
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
    with pytest.raises(ValueError, match="row 1 holds .*invalid code"):
        tensor_types.dequantize("bt2", data, 2, 256)


def test_library_names_its_types_for_an_unknown_one() -> None:
    bogus = kernels.PackedMatrix("bt9", 1, 64, np.zeros(68, np.uint8))
    with pytest.raises(ValueError, match="unknown tensor type 'bt9'") as error:
        kernels.matmul(bogus, np.ones(64, np.float32))  # straight to bl_matmul
    assert str(error.value).endswith(f"(known: {', '.join(tensor_types.TYPES)})")


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
