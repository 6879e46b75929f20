"""The exact row repacks tq2_0 -> bt2 and tq1_0 -> bt1 (native/src/types/tq_repack.c): a row
whose 256-blocks share one f16 scale becomes trits with that scale as the row scale and
decodes to the very floats it held; a row of differing scales (or tq2_0's code 3) is left
alone. The converter is internal to the library; its one symbol is declared here."""

from __future__ import annotations

from collections.abc import Callable

import cffi
import numpy as np
import pytest

from bitllm import kernels
from bitllm.runtime import native, tensor_types

TARGET = {"tq2_0": "bt2", "tq1_0": "bt1"}
Repack = Callable[[str, np.ndarray, int], tuple[int, np.ndarray, float]]


@pytest.fixture(scope="module")
def repack_row() -> Repack:
    ffi = cffi.FFI()
    ffi.cdef(
        "int bl_tq_repack_row(int type, const uint8_t *row, int64_t cols, int8_t *values,"
        " uint8_t *dst, float *row_scale);"
    )
    lib = ffi.dlopen(str(native._find_file(native._LIBRARY_NAMES, "BITLLM_LIBRARY")))

    def call(name: str, row: np.ndarray, cols: int) -> tuple[int, np.ndarray, float]:
        target = tensor_types.tensor_type(TARGET.get(name, "bt2"))
        dst = np.zeros(target.row_bytes(cols), np.uint8)
        scale = np.zeros(1, np.float32)
        values = np.zeros(cols, np.int8)
        type_id = list(tensor_types.TYPES).index(name)  # the library's table order is its enum
        ok = lib.bl_tq_repack_row(
            type_id,
            ffi.from_buffer("uint8_t[]", row),
            cols,
            ffi.from_buffer("int8_t[]", values),
            ffi.from_buffer("uint8_t[]", dst),
            ffi.from_buffer("float[]", scale),
        )
        return ok, dst, float(scale[0])

    return call


@pytest.mark.parametrize("name", list(TARGET))
def test_rows_of_one_scale_repack_to_the_same_floats(
    name: str, repack_row: Repack, rng: np.random.Generator
) -> None:
    rows, cols = 5, 2560
    trits = rng.integers(-1, 2, (rows, cols)).astype(np.float32)
    trits[:, 0] = 1
    scales = np.array([0.0123, 1.5, 2.0**-20, 0.0, 7.25], np.float32)
    tq = kernels.quantize(name, trits * scales[:, None])
    expected = kernels.dequantize(tq)
    row_bytes = tensor_types.tensor_type(name).row_bytes(cols)
    target = TARGET[name]
    packed, row_scales = [], []
    for r in range(rows):
        ok, dst, scale = repack_row(name, tq.data[r * row_bytes : (r + 1) * row_bytes], cols)
        assert ok == 1, r
        packed.append(dst)
        row_scales.append(scale)
    data = np.concatenate([*packed, np.array(row_scales, "<f4").view(np.uint8)])
    repacked = kernels.from_bytes(target, data, rows, cols)
    np.testing.assert_array_equal(kernels.dequantize(repacked), expected)
    # f16 scales, not the float32 ones the rows were made from
    np.testing.assert_array_equal(row_scales, scales.astype(np.float16).astype(np.float32))


@pytest.mark.parametrize("name", list(TARGET))
def test_rows_without_one_scale_are_left_alone(
    name: str, repack_row: Repack, rng: np.random.Generator
) -> None:
    cols = 1024
    trits = rng.integers(-1, 2, (1, cols)).astype(np.float32)
    trits[:, ::256] = 1
    w = trits * np.repeat(np.array([[0.5, 0.5, 0.25, 0.5]], np.float32), 256, axis=1)
    row = kernels.quantize(name, w).data
    assert repack_row(name, row, cols)[0] == 0
    if name == "tq2_0":  # code 3 decodes as +2 * d: no trit
        same = kernels.quantize(name, trits * np.float32(0.5)).data.copy()
        assert repack_row(name, same, cols)[0] == 1
        same[5] |= 3
        assert repack_row(name, same, cols)[0] == 0


def test_only_tq_types_repack(repack_row: Repack) -> None:
    row = kernels.quantize("q8_0", np.ones((1, 256), np.float32)).data
    assert repack_row("q8_0", row, 256)[0] == 0


@pytest.mark.parametrize("name", list(TARGET))
def test_whole_tensors_repack_in_row_ranges(name: str, rng: np.random.Generator) -> None:
    """The tensor-level converter (the shape of a load-time repack row): a tensor of one
    scale per row repacks, range by range, to the floats it held; one block of another
    scale, or one code 3, makes it count that row as not repacked."""
    ffi = cffi.FFI()
    ffi.cdef(
        "int64_t bl_tq_repack_rows(int type, const uint8_t *data, int64_t rows, int64_t cols,"
        " int64_t r0, int64_t r1, int8_t *values, uint8_t *dst);"
    )
    lib = ffi.dlopen(str(native._find_file(native._LIBRARY_NAMES, "BITLLM_LIBRARY")))
    type_id = list(tensor_types.TYPES).index(name)
    rows, cols = 7, 1536
    trits = rng.integers(-1, 2, (rows, cols)).astype(np.float32)
    trits[:, 0] = -1
    scales = rng.uniform(0.01, 3, rows).astype(np.float32)
    tq = kernels.quantize(name, trits * scales[:, None])
    data = tq.data.copy()
    target = tensor_types.tensor_type(TARGET[name])
    dst = np.zeros(target.tensor_bytes(rows, cols), np.uint8)
    values = np.zeros(cols, np.int8)

    def failed_rows(tensor: np.ndarray, r0: int = 0, r1: int = rows) -> int:
        return lib.bl_tq_repack_rows(
            type_id,
            ffi.from_buffer("uint8_t[]", tensor),
            rows,
            cols,
            r0,
            r1,
            ffi.from_buffer("int8_t[]", values),
            ffi.from_buffer("uint8_t[]", dst),
        )

    for r0, r1 in ((0, 3), (3, 4), (4, 7)):
        assert failed_rows(data, r0, r1) == 0
    repacked = kernels.from_bytes(TARGET[name], dst, rows, cols)
    np.testing.assert_array_equal(kernels.dequantize(repacked), kernels.dequantize(tq))

    row_bytes = tensor_types.tensor_type(name).row_bytes(cols)
    other = data.copy()
    scale_at = {"tq2_0": 64, "tq1_0": 52}[name]
    other[5 * row_bytes + 2 * tensor_types.tensor_type(name).block_bytes + scale_at] ^= 1
    assert failed_rows(other) == 1
    if name == "tq2_0":
        code3 = data.copy()
        code3[6 * row_bytes + 66 + 40] |= 0x30  # weight 128 + 64 + 8 of the row's second block
        assert failed_rows(code3) == 1
