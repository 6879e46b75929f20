"""CUDA kernels against the CPU: ternary and sign products bit for bit equal to
bitllm.kernels.matmul, quant products equal to it within float32 rounding, float products
within float32 rounding of a float64 reference. Without a GPU these skip with the library's
reason, and the error a caller gets says why."""

from __future__ import annotations

import numpy as np
import pytest

from bitllm import kernels
from bitllm.runtime import cuda, tensor_types
from tests.kernels.reference import random_values

BIT_TYPES = ["bt2", "bt1", "bs1"]
QUANT_TYPES = ["q8_0", "q4_0"]
FLOAT_TYPES = ["f16", "bf16", "f32"]
ROWS = [1, 3, 17, 1000]
COLS = [64, 96, 2560, 5460, 6912, 14336]
SHAPES = [(rows, cols) for rows in ROWS for cols in COLS]

needs_gpu = pytest.mark.skipif(not cuda.available(), reason=cuda.reason())


def _bit_matrix(rng: np.random.Generator, name: str, rows: int, cols: int):
    values = random_values(rng, tensor_types.tensor_type(name).kind, rows, cols)
    scale = rng.uniform(0.01, 2.0, rows).astype(np.float32)
    return kernels.pack(name, values, scale)


def _activations(rng: np.random.Generator, n: int, cols: int) -> np.ndarray:
    x = rng.standard_normal((n, cols)).astype(np.float32)
    x[:, rng.integers(0, cols)] *= 30  # an outlier column, as real activations have
    return x


def test_unavailable_gpu_gives_a_clear_error() -> None:
    if cuda.available():
        pytest.skip("a GPU is present: the error for a missing one cannot show here")
    assert "cuda" in cuda.reason().lower()
    matrix = kernels.quantize("f32", np.ones((2, 32), dtype=np.float32))
    with pytest.raises(cuda.CudaUnavailableError, match="(?i)cuda"):
        cuda.matmul(matrix, np.ones((1, 32), dtype=np.float32))


@needs_gpu
@pytest.mark.parametrize("act_bits", [8, 16])
@pytest.mark.parametrize("name", BIT_TYPES)
def test_bit_types_equal_the_cpu(name: str, act_bits: int, rng: np.random.Generator) -> None:
    for rows, cols in SHAPES:
        matrix = _bit_matrix(rng, name, rows, cols)
        for n in (1, 7):
            x = _activations(rng, n, cols)
            y = cuda.matmul(matrix, x, act_bits=act_bits)
            expected = kernels.matmul(matrix, x, act_bits=act_bits)
            np.testing.assert_array_equal(y, expected, err_msg=f"{rows}x{cols}, n={n}")


@needs_gpu
@pytest.mark.parametrize("name", BIT_TYPES)
def test_prompt_sized_products_equal_the_cpu(name: str, rng: np.random.Generator) -> None:
    matrix = _bit_matrix(rng, name, 300, 2560)
    x = _activations(rng, 77, 2560)
    np.testing.assert_array_equal(cuda.matmul(matrix, x), kernels.matmul(matrix, x))


@needs_gpu
def test_extreme_activations_equal_the_cpu(rng: np.random.Generator) -> None:
    matrix = _bit_matrix(rng, "bt2", 40, 2560)
    x = _activations(rng, 4, 2560)
    x[0] = 0.0  # all-zero row: the 1e-5 floor on max|x|
    x[1, 5] = np.inf
    x[2, 7] = np.nan
    x[3] *= 1e-30
    for act_bits in (8, 16):
        np.testing.assert_array_equal(
            cuda.matmul(matrix, x, act_bits=act_bits), kernels.matmul(matrix, x, act_bits=act_bits)
        )


def _relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(got - expected) / np.linalg.norm(expected))


@needs_gpu
@pytest.mark.parametrize("name", QUANT_TYPES)
def test_quant_types_equal_the_cpu_within_rounding(name: str, rng: np.random.Generator) -> None:
    """Both devices quantize activations to the same int8 32-blocks and take the same integer
    block dot products; only the float32 sum over blocks runs in another order."""
    for rows, cols in SHAPES:
        matrix = kernels.quantize(name, rng.standard_normal((rows, cols)).astype(np.float32))
        for n in (1, 7):
            x = _activations(rng, n, cols)
            error = _relative_error(cuda.matmul(matrix, x), kernels.matmul(matrix, x))
            assert error < 1e-5, f"{name} {rows}x{cols}, n={n}: relative error {error:.2e}"


@needs_gpu
@pytest.mark.parametrize("name", FLOAT_TYPES)
def test_float_types_match_float64(name: str, rng: np.random.Generator) -> None:
    for rows, cols in SHAPES:
        matrix = kernels.quantize(name, rng.standard_normal((rows, cols)).astype(np.float32))
        reference_w = kernels.dequantize(matrix).astype(np.float64)
        for n in (1, 7):
            x = _activations(rng, n, cols)
            error = _relative_error(cuda.matmul(matrix, x), x.astype(np.float64) @ reference_w.T)
            assert error < 1e-5, f"{name} {rows}x{cols}, n={n}: relative error {error:.2e}"


@needs_gpu
def test_bad_input_raises_value_error(rng: np.random.Generator) -> None:
    matrix = _bit_matrix(rng, "bt2", 4, 256)
    x = _activations(rng, 1, 256)
    with pytest.raises(ValueError, match="act_bits"):
        cuda.matmul(matrix, x, act_bits=4)
    with pytest.raises(ValueError, match=r"\[n, 256\]"):
        cuda.matmul(matrix, x[:, :100])
    truncated = kernels.PackedMatrix("bt2", 4, 256, matrix.data[:-4])
    with pytest.raises(ValueError, match="bytes"):
        cuda.matmul(truncated, x)
    with pytest.raises(ValueError, match="unknown"):
        cuda.matmul(kernels.PackedMatrix("bt9", 4, 256, matrix.data), x)


@needs_gpu
@pytest.mark.parametrize("name", ["tq2_0", "tq1_0"])
def test_types_without_gpu_kernels_are_refused_in_one_line(
    name: str, rng: np.random.Generator
) -> None:
    matrix = kernels.quantize(name, rng.standard_normal((4, 256)).astype(np.float32))
    with pytest.raises(RuntimeError, match=f"cuda: no quant kernel for {name}") as error:
        cuda.matmul(matrix, _activations(rng, 1, 256))
    assert "\n" not in str(error.value)
