"""Matrix products: every ISA, algorithm and thread count gives exactly the
numpy int64 reference for ternary and sign types; float and quant types agree
with float math within their precision; bad input raises ValueError."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from bitllm import kernels
from bitllm.runtime import tensor_types

from .reference import bit_matmul, extreme_values, random_values

BIT_TYPES = ["bt2", "bt1", "bs1"]
ALGOS = ["auto", "mad", "lut"]
COLS = [64, 96, 1536, 2560, 3200, 5460, 6912, 8640, 14336]
SHAPES = [(rows, cols) for rows in (1, 3, 17) for cols in COLS] + [
    (1000, 64),
    (1000, 2560),
    (1000, 6912),
    (40, 14336),
]
ISAS = kernels.isas()
QUANT_TYPES = [
    "f16",
    "q8_0",
    "q4_0",
    "q6_k",
    "q5_k",
    "q4_k",
    "tq1_0",
    "tq2_0",
    "q1_0",
    "q2_0",
    "q2_0_g128",
]


def _random_matrix(rng: np.random.Generator, name: str, rows: int, cols: int):
    values = random_values(rng, tensor_types.tensor_type(name).kind, rows, cols)
    scale = rng.uniform(0.01, 2.0, rows).astype(np.float32)
    return values, scale, kernels.pack(name, values, scale)


def _activations(rng: np.random.Generator, n: int, cols: int) -> np.ndarray:
    x = rng.standard_normal((n, cols)).astype(np.float32)
    x[:, rng.integers(0, cols)] *= 30  # an outlier column, as real activations have
    return x


@pytest.mark.parametrize("act_bits", [8, 16])
@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", BIT_TYPES)
def test_bit_types_are_exact(
    name: str, isa: str, algo: str, act_bits: int, rng: np.random.Generator
) -> None:
    for rows, cols in SHAPES:
        values, scale, matrix = _random_matrix(rng, name, rows, cols)
        for n in (1, 5) if rows * cols < 4_000_000 else (1,):
            x = _activations(rng, n, cols)
            y = kernels.matmul(matrix, x, isa=isa, algo=algo, act_bits=act_bits, threads=1)
            expected = bit_matmul(values, scale, x, act_bits)
            np.testing.assert_array_equal(y, expected, err_msg=f"{rows}x{cols}, n={n}")


@pytest.mark.parametrize("isa", ISAS)
def test_every_token_count_of_a_tile_is_exact(isa: str, rng: np.random.Generator) -> None:
    # GEMM kernels instantiate one tile per token count (AVX-512: up to 6, AVX-VNNI: up to
    # 8, AVX2: 4) and take what is left over on its own; AVX-512's bt2 takes 2 .. 16 tokens
    # in passes of 1 .. 4 over 4 rows (19 rows: a partial tile); 1 .. 17 tokens meet them all. AMX
    # tiles take 8 tokens and more: up to 32 in one pass over the rows, more in passes of 32
    # (a last pass of 1 .. 32 of them).
    for name in ("bt2", "bt1"):  # 1280 columns: whole blocks of both
        values, scale, matrix = _random_matrix(rng, name, 19, 1280)
        for n in [*range(1, 18), 31, 32, 33, 47, 48, 49, 64, 65]:
            x = _activations(rng, n, 1280)
            y = kernels.matmul(matrix, x, isa=isa, algo="mad", threads=2)
            expected = bit_matmul(values, scale, x, 8)
            np.testing.assert_array_equal(y, expected, err_msg=f"{name}, n={n}")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", BIT_TYPES)
def test_short_accumulators_hold_the_largest_sums(name: str, isa: str) -> None:
    # Every weight at its largest code against full-scale activations, one sign per token,
    # on the longest rows of the shapes we run: the int16 partial sums that kernels carry
    # over several blocks before widening (AVX2's bt2 GEMM: four) must not wrap. 9 tokens
    # cover GEMV, full GEMM tiles and the tokens left over.
    for n in (1, 9):
        values, x = extreme_values(name, 5, 14336, n)
        scale = np.ones(5, np.float32)
        matrix = kernels.pack(name, values, scale)
        for algo in ALGOS:
            for act_bits in (8, 16):
                y = kernels.matmul(matrix, x, isa=isa, algo=algo, act_bits=act_bits, threads=1)
                expected = bit_matmul(values, scale, x, act_bits)
                np.testing.assert_array_equal(y, expected, err_msg=f"{algo}, {act_bits}, n={n}")


@pytest.mark.parametrize("cols", [64, 2560, 6912])
def test_rows_holding_nan_or_inf_follow_the_activation_rule(
    cols: int, rng: np.random.Generator
) -> None:
    # The absmax skips NaN (a second pass, only for such rows) and counts inf, whose scale
    # of 0 turns the row's infinities into NaN: both quantize to the lowest value.
    values, scale, matrix = _random_matrix(rng, "bt2", 5, cols)
    x = _activations(rng, 4, cols)
    x[0, 3] = np.nan
    x[1, cols - 1] = np.inf
    x[2, 0] = -np.inf
    x[3, [1, cols // 2]] = np.nan
    for act_bits in (8, 16):
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = bit_matmul(values, scale, x, act_bits)
        y = kernels.matmul(matrix, x, act_bits=act_bits, threads=1)
        np.testing.assert_array_equal(y, expected, err_msg=f"{act_bits}-bit")


@pytest.mark.parametrize("name", BIT_TYPES)
def test_gemm_with_many_rows_is_exact(name: str, rng: np.random.Generator) -> None:
    values, scale, matrix = _random_matrix(rng, name, 300, 2560)
    x = _activations(rng, 128, 2560)
    for isa in ISAS:
        for algo in ALGOS:
            y = kernels.matmul(matrix, x, isa=isa, algo=algo, threads=2)
            expected = bit_matmul(values, scale, x, 8)
            np.testing.assert_array_equal(y, expected, err_msg=f"{isa}/{algo}")


@pytest.mark.parametrize("name", BIT_TYPES + QUANT_TYPES)
def test_results_do_not_depend_on_thread_count(name: str, rng: np.random.Generator) -> None:
    rows, cols = 333, 2560
    if tensor_types.tensor_type(name).kind in ("ternary", "sign"):
        matrix = _random_matrix(rng, name, rows, cols)[2]
    else:
        matrix = kernels.quantize(name, rng.standard_normal((rows, cols)).astype(np.float32))
    for n in (1, 9):
        x = _activations(rng, n, cols)
        single = kernels.matmul(matrix, x, threads=1)
        for threads in (2, 3, 8):
            np.testing.assert_array_equal(kernels.matmul(matrix, x, threads=threads), single)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", BIT_TYPES + QUANT_TYPES)
def test_a_token_gets_the_same_result_alone_or_in_a_batch(
    name: str, isa: str, rng: np.random.Generator
) -> None:
    # 7 rows: a row tile and leftovers; 800 columns: 25 q8_0 blocks, not a multiple of 8
    for rows, cols in [(7, 800), (9, 2560)]:
        if tensor_types.tensor_type(name).kind in ("ternary", "sign"):
            matrix = _random_matrix(rng, name, rows, cols)[2]
        else:
            matrix = kernels.quantize(name, rng.standard_normal((rows, cols)).astype(np.float32))
        x = _activations(rng, 6, cols)
        batch = kernels.matmul(matrix, x, isa=isa, threads=1)
        for t in range(len(x)):
            alone = kernels.matmul(matrix, x[t : t + 1], isa=isa, threads=1)
            np.testing.assert_array_equal(alone[0], batch[t], err_msg=f"{rows}x{cols}, token {t}")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", ["q8_0", "q4_0", "q1_0", "q2_0", "q2_0_g128"])
def test_a_token_gets_the_same_result_in_batches_of_every_size(
    name: str, isa: str, rng: np.random.Generator
) -> None:
    # The output heads of batched decode: AMX takes 6 tokens and more on tiles of 8 rows
    # (37 rows: 4 tiles and 5 rows left to AVX-512), in passes of 32 tokens; AVX-512's q8_0
    # GEMM turns tiles of 16 rows (2 tiles and a masked one) for up to 8 tokens at a time; 25
    # blocks leave the odd-block chain one block short. AVX2's q1_0 and q2_0 tables take passes of 4
    # tokens over tiles of 16 rows (2 tiles, 5 rows one at a time). Every token must get
    # its GEMV result.
    rows, cols = 37, 800
    matrix = kernels.quantize(name, rng.standard_normal((rows, cols)).astype(np.float32))
    x = _activations(rng, 40, cols)
    alone = np.concatenate([kernels.matmul(matrix, x[t : t + 1], isa=isa) for t in range(40)])
    for n in (2, 3, 4, 5, 8, 15, 16, 17, 31, 32, 33, 40):
        batch = kernels.matmul(matrix, x[:n], isa=isa, threads=2)
        np.testing.assert_array_equal(batch, alone[:n], err_msg=f"n={n}")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", ["q1_0", "q2_0", "q2_0_g128"])
def test_a_row_gets_the_same_result_in_a_tile_or_alone(
    name: str, isa: str, rng: np.random.Generator
) -> None:
    # AVX2 looks q1_0 and q2_0 up sixteen rows at a time and takes the rows past the last
    # tile one at a time. A row's result must not depend on which of the two paths took
    # it; 81920 columns with 4 tokens need more tables than the heap may hold (2 MiB), so
    # they are built in chunks of columns on the stack. Both track the scalar kernels to
    # float32 rounding of the sum of |x w|.
    for rows, cols, n in [(37, 2560, 3), (17, 81920, 4)]:
        matrix = kernels.quantize(name, rng.standard_normal((rows, cols)).astype(np.float32))
        row_bytes = len(matrix.data) // rows
        x = _activations(rng, n, cols)
        together = kernels.matmul(matrix, x, isa=isa, threads=1)
        magnitude = np.abs(x) @ np.abs(kernels.dequantize(matrix)).T
        reference = kernels.matmul(matrix, x, isa="scalar", threads=1)
        assert np.all(np.abs(together - reference) <= 1e-5 * magnitude), f"{cols} columns"
        for r in (0, 15, 16, 31, 32, 36):
            if r >= rows:
                continue
            row = matrix.data[r * row_bytes : (r + 1) * row_bytes]
            alone = kernels.matmul(kernels.PackedMatrix(name, 1, cols, row), x, isa=isa, threads=1)
            np.testing.assert_array_equal(alone[:, 0], together[:, r], err_msg=f"{cols}, row {r}")


@pytest.mark.parametrize("isa", ISAS)
def test_q8_activation_blocks_round_halves_away_from_zero(isa: str) -> None:
    # Each 32-block of x holds 127, so its scale d is exactly 1 and q = roundf(x): halves go
    # away from zero (llama.cpp's rule), and a value just below a half goes down. Against
    # the identity in q8_0 (one weight of 127 x d_w per row), y[r] = d_w * 127 * q[r].
    halves = [2.5, -2.5, 0.5, -0.5, 126.5, -126.5, 3.5, -7.5]
    below = np.nextafter(np.float32(0.5), np.float32(0)).item()
    more = [k + 10.5 for k in range(9)] + [-(k + 20.5) for k in range(9)]
    block = [127.0, *halves, below, -below, 1.4999999, -1.5000001, 0.0, *more]
    x = np.array(block * 2, np.float32)[None, :]
    identity = kernels.quantize("q8_0", np.eye(64, dtype=np.float32))
    d_w = kernels.dequantize(identity)[0, 0] / 127
    q = np.sign(x.astype(np.float64)) * np.floor(np.abs(x.astype(np.float64)) + 0.5)
    expected = np.float32(d_w) * (127 * q).astype(np.float32)
    y = kernels.matmul(identity, x, isa=isa, threads=1)
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("name", BIT_TYPES)
def test_sixteen_bit_activations_track_float(name: str, rng: np.random.Generator) -> None:
    values, scale, matrix = _random_matrix(rng, name, 64, 2560)
    x = _activations(rng, 3, 2560)
    exact = x.astype(np.float64) @ (values.astype(np.float64) * scale[:, None]).T
    y = kernels.matmul(matrix, x, act_bits=16)
    assert np.abs(y - exact).max() <= 1e-3 * np.abs(exact).max()


FLOAT_TOLERANCE = {
    **{"f32": 1e-5, "f16": 1e-5, "bf16": 1e-5},
    **{"q8_0": 2e-2, "q4_0": 2e-2, "q6_k": 2e-2, "q5_k": 2e-2, "q4_k": 2e-2},
    **{"tq1_0": 2e-2, "tq2_0": 2e-2},
    **{"q1_0": 2e-2, "q2_0": 2e-2, "q2_0_g128": 2e-2},
}


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", list(FLOAT_TOLERANCE))
def test_float_and_quant_types(name: str, isa: str, rng: np.random.Generator) -> None:
    for rows, cols in [(1, 64), (17, 96), (40, 2560), (3, 6912), (5, 70)]:
        w = rng.standard_normal((rows, cols)).astype(np.float32)
        matrix = kernels.quantize(name, w)
        dense = kernels.dequantize(matrix).astype(np.float64)
        for n in (1, 4, 20):
            x = _activations(rng, n, cols)
            expected = x.astype(np.float64) @ dense.T
            y = kernels.matmul(matrix, x, isa=isa)
            # quant types also quantize x to 8 bits per block of 32
            bound = FLOAT_TOLERANCE[name] * np.abs(x).max() * np.abs(dense).max() * np.sqrt(cols)
            assert np.abs(y - expected).max() <= bound, f"{rows}x{cols}, n={n}"


def test_bad_arguments_raise_value_error(rng: np.random.Generator) -> None:
    matrix = _random_matrix(rng, "bt2", 4, 256)[2]
    with pytest.raises(ValueError, match=r"x must be \[n, 256\]"):
        kernels.matmul(matrix, np.zeros((1, 255), np.float32))
    with pytest.raises(ValueError, match="unknown ISA 'sse9'"):
        kernels.matmul(matrix, np.zeros((1, 256), np.float32), isa="sse9")
    missing = next(i for i in ("neon", "avx512", "avx2", "neon_dotprod") if i not in ISAS)
    with pytest.raises(ValueError, match=f"ISA {missing} is not available"):
        kernels.matmul(matrix, np.zeros((1, 256), np.float32), isa=missing)
    with pytest.raises(ValueError, match="act_bits must be 8 or 16"):
        kernels.matmul(matrix, np.zeros((1, 256), np.float32), act_bits=4)
    with pytest.raises(ValueError, match="unknown algo"):
        kernels.matmul(matrix, np.zeros((1, 256), np.float32), algo="fft")
    truncated = kernels.PackedMatrix("bt2", 4, 256, matrix.data[:-1])
    with pytest.raises(ValueError, match="takes 272 bytes, got 271"):
        kernels.matmul(truncated, np.zeros((1, 256), np.float32))


@pytest.mark.parametrize("forced", ["", "scalar", "avx2", "avx_vnni", "avx512", "amx", "neon"])
def test_a_forced_isa_caps_the_plain_loops_too(forced: str) -> None:
    # Norms and activation quantization have one copy per x86 vector width; BITLLM_ISA=avx2
    # must run the AVX2 copy, or an AVX2 benchmark on an AVX-512 CPU measures AVX-512 there.
    # The width is read once per process, hence a fresh interpreter per case.
    env = {**os.environ, "BITLLM_ISA": forced}
    code = "from bitllm import kernels; print(kernels.loops_isa())"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    widest = next((i for i in ("avx512", "avx2") if i in ISAS), "scalar")
    width = {"avx_vnni": "avx2", "amx": "avx512", "neon": "scalar", "": widest}.get(forced, forced)
    order = ["scalar", "avx2", "avx512"]
    assert run.stdout.strip() == min(width, widest, key=order.index)


def test_forcing_an_isa_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BITLLM_ISA", "scalar")
    assert kernels.default_isa() == "scalar"
    monkeypatch.setenv("BITLLM_ISA", "mmx")
    with pytest.raises(ValueError, match="BITLLM_ISA=mmx is not an ISA"):
        kernels.default_isa()
    missing = next(i for i in ("neon", "avx512", "avx2") if i not in ISAS)
    monkeypatch.setenv("BITLLM_ISA", missing)
    with pytest.raises(ValueError, match=f"cannot run {missing}"):
        kernels.default_isa()
