"""Lookup-table kernels: what is particular to them, on every ISA this machine
runs (and NEON under qemu): the short table sums at their extremes, token tiles
and row groups cut at every edge, every bt1 byte value, and thread splits. All
results must equal the numpy int64 reference exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bitllm import kernels
from bitllm.runtime import tensor_types

from . import test_neon_qemu as qemu
from .reference import bit_matmul, extreme_values, random_values

BIT_TYPES = ["bt2", "bt1", "bs1"]
ISAS = kernels.isas()


def _matrix(
    name: str, values: np.ndarray, scale: np.ndarray | None
) -> tuple[kernels.PackedMatrix, np.ndarray]:
    scale = np.ones(values.shape[0], np.float32) if scale is None else scale
    return kernels.pack(name, values, scale), scale


def _check(
    name: str,
    values: np.ndarray,
    x: np.ndarray,
    act_bits: int,
    threads: int = 1,
    scale: np.ndarray | None = None,
) -> None:
    matrix, scale = _matrix(name, values, scale)
    expected = bit_matmul(values, scale, x, act_bits)
    for isa in ISAS:
        y = kernels.matmul(matrix, x, isa=isa, algo="lut", act_bits=act_bits, threads=threads)
        shape = f"{name} {values.shape[0]}x{values.shape[1]}, n={x.shape[0]}"
        np.testing.assert_array_equal(y, expected, err_msg=f"{isa}, {act_bits}-bit, {shape}")


@pytest.mark.parametrize("act_bits", [8, 16])
@pytest.mark.parametrize("name", BIT_TYPES)
def test_long_rows_at_full_scale_do_not_overflow(name: str, act_bits: int) -> None:
    """Every weight and every activation at full scale, all products of one
    sign per token: the largest sums the int16 tables and accumulators meet."""
    cols = 14336
    for weight in (1, -1):
        values = np.full((20, cols), weight, dtype=np.int8)
        for n in (1, 3, 33):
            signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0).astype(np.float32)
            x = np.repeat(signs[:, None], cols, axis=1)
            _check(name, values, x, act_bits)


@pytest.mark.parametrize("name", BIT_TYPES)
def test_token_tiles_and_row_groups_cut_anywhere(name: str, rng: np.random.Generator) -> None:
    """Token counts around the tiles (4 to 32 tokens per table row, by ISA and
    activation width) and row counts around the 8- and 16-row groups."""
    kind = tensor_types.tensor_type(name).kind
    for rows in (1, 7, 9, 16, 17, 33):
        values = random_values(rng, kind, rows, 640)
        for n in (2, 4, 5, 8, 9, 15, 16, 17, 31, 32, 33, 65):
            x = rng.standard_normal((n, 640)).astype(np.float32)
            for act_bits in (8, 16):
                _check(name, values, x, act_bits)


@pytest.mark.parametrize("name", BIT_TYPES)
def test_more_rows_than_one_table_sweep(name: str, rng: np.random.Generator) -> None:
    """Over 2048 rows: the GEMM sweeps its tables over the rows in chunks."""
    values = random_values(rng, tensor_types.tensor_type(name).kind, 2100, 320)
    x = rng.standard_normal((40, 320)).astype(np.float32)
    _check(name, values, x, 8)


def test_sign_rows_with_an_odd_number_of_blocks(rng: np.random.Generator) -> None:
    """bs1 GEMV reads 64-byte chunks; a row of 1, 3 or 5 blocks ends in half a chunk."""
    for cols in (256, 768, 1280):
        values = random_values(rng, "sign", 19, cols)
        for n in (1, 3):
            x = rng.standard_normal((n, cols)).astype(np.float32)
            for act_bits in (8, 16):
                _check("bs1", values, x, act_bits)


def test_sign_rows_wider_than_the_heap_tables(rng: np.random.Generator) -> None:
    """AVX2's sixteen-row bs1 kernel keeps the tables of whole rows for a pass of
    4 tokens up to 16384 quads of 16 columns; 65792 columns take passes over
    column chunks with tables on the stack, each chunk adding to the last. One
    token fits the heap tables; 4 and 5 do not (5: a pass of 4, then 1)."""
    cols = 65792  # 257 blocks of 256
    values = random_values(rng, "sign", 35, cols)  # two tiles of sixteen and 3 rows
    for n in (1, 4, 5):
        _check("bs1", values, rng.standard_normal((n, cols)).astype(np.float32), 8)


def test_every_bt1_byte_value(rng: np.random.Generator) -> None:
    """The tables cover all 256 byte values, also those the packer never writes,
    as the digit rule of the format decodes them."""
    rows, cols = 256, 320
    data = np.zeros(tensor_types.tensor_type("bt1").tensor_bytes(rows, cols), np.uint8)
    weights = data[: rows * 64].reshape(rows, 64)
    weights[:] = rng.integers(0, 256, (rows, 64), dtype=np.uint8)
    weights[:, 0] = np.arange(256, dtype=np.uint8)
    data[rows * 64 :] = np.ones(rows, np.float32).view(np.uint8)
    matrix = kernels.from_bytes("bt1", data, rows, cols)
    values, scale = kernels.unpack(matrix)
    for n in (1, 6):
        x = rng.standard_normal((n, cols)).astype(np.float32)
        for act_bits in (8, 16):
            expected = bit_matmul(values, scale, x, act_bits)
            for isa in ISAS:
                y = kernels.matmul(matrix, x, isa=isa, algo="lut", act_bits=act_bits)
                np.testing.assert_array_equal(y, expected, err_msg=f"{isa}, n={n}, {act_bits}-bit")


@pytest.mark.parametrize("name", BIT_TYPES)
def test_thread_splits_do_not_change_results(name: str, rng: np.random.Generator) -> None:
    values = random_values(rng, tensor_types.tensor_type(name).kind, 333, 2560)
    scale = rng.uniform(0.01, 2.0, 333).astype(np.float32)
    for n in (1, 9):
        x = rng.standard_normal((n, 2560)).astype(np.float32)
        for threads in (2, 3):
            _check(name, values, x, 8, threads=threads, scale=scale)


@pytest.mark.skipif(qemu._missing_tools() is not None, reason=str(qemu._missing_tools()))
@pytest.mark.parametrize("cpu", list(qemu.CPUS))
def test_neon_lookup_tables_under_qemu(cpu: str, rng: np.random.Generator, tmp_path: Path) -> None:
    """The NEON LUT kernels (neon_dotprod reuses them) on an emulated CPU."""
    driver = qemu._build_driver()
    cases = []
    for name in BIT_TYPES:
        kind = tensor_types.tensor_type(name).kind
        shapes = [
            (rows, cols, n) for rows in (1, 17, 33) for cols in (256, 320, 2560) for n in (1, 9)
        ]
        for i, (rows, cols, n) in enumerate(shapes + [(20, 14336, 1), (7, 1536, 5)]):
            values = random_values(rng, kind, rows, cols)
            scale = rng.uniform(0.01, 2.0, rows).astype(np.float32)
            x = rng.standard_normal((n, cols)).astype(np.float32)
            cases.append(qemu._bit_case(name, values, scale, x, 1, tmp_path / f"{name}-{i}"))
        for n in (1, 9):
            values, x = extreme_values(name, 5, 14336, n)
            scale = np.ones(5, np.float32)
            cases.append(qemu._bit_case(name, values, scale, x, 1, tmp_path / f"{name}-max-{n}"))
    runs = [(isa, bits) for isa in qemu.CPUS[cpu] for bits in (8, 16)]
    lines = [
        case.manifest_line(bits, isa, "lut", f"{isa}-lut-{bits}")
        for case, _, _ in cases
        for isa, bits in runs
    ]
    qemu._run_cases(driver, cpu, tmp_path, lines)
    for case, values, scale in cases:
        for isa, bits in runs:
            np.testing.assert_array_equal(
                case.arm_result(f"{isa}-lut-{bits}"),
                bit_matmul(values, scale, case.x, bits),
                err_msg=f"{isa} on -cpu {cpu}, {bits}-bit, {case.type} {case.rows}x{case.cols}",
            )
