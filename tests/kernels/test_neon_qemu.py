"""The NEON kernels, cross-compiled for aarch64 and run under qemu-aarch64.

CMake cross-compiles the library with aarch64-linux-gnu-gcc, and its objects are
linked with tests/native/matmul_driver.c into a static executable (qemu then needs
no sysroot), which runs on an emulated CPU with the dotprod extension (-cpu max)
and one without it (-cpu cortex-a53). Ternary and sign types
must equal the numpy int64 reference exactly, float and quant types must agree
within their precision, and the ARM build must pack the very bytes the x86 build
packs (one file for every CPU)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bitllm import kernels

from .reference import bit_matmul, extreme_values, random_values

REPO = Path(__file__).resolve().parents[2]
DRIVER_SOURCE = REPO / "tests" / "native" / "matmul_driver.c"
CC = "aarch64-linux-gnu-gcc"
QEMU = "qemu-aarch64"
# CMake cross-compiles the library exactly as it builds it on an ARM machine
# (its own source groups and per-ISA flags); the driver links its objects.
TOOLCHAIN = f"""set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER {CC})
"""
# Emulated CPU -> the NEON ISAs it must report and run.
CPUS = {"max": ["neon", "neon_dotprod"], "cortex-a53": ["neon"]}

BIT_TYPES = ["bt2", "bt1", "bs1"]
# Kernel families to check for ternary and sign types ("auto" is the dispatcher's pick).
BIT_ALGOS = ["mad", "auto"]
BIT_COLS = [64, 96, 1536, 2560, 5460, 6912, 14336]
# (rows, cols, n, threads): odd shapes through GEMV and GEMM, and tiles split
# across threads with leftover rows and tokens.
BIT_SHAPES = [(rows, cols, n, 1) for rows in (1, 3, 17) for cols in BIT_COLS for n in (1, 5)] + [
    (40, 2560, 5, 3),
    (100, 1536, 9, 2),
    (33, 320, 1, 2),
]
FLOAT_TOLERANCE = {
    **{"f32": 1e-5, "f16": 1e-5, "bf16": 1e-5, "q8_0": 2e-2, "q4_0": 2e-2},
    **{"tq1_0": 2e-2, "tq2_0": 2e-2},
    **{"q1_0": 2e-2, "q2_0": 2e-2, "q2_0_g128": 2e-2},  # the scalar kernels under NEON
}
FLOAT_SHAPES = [(1, 64), (17, 96), (40, 2560), (3, 6912), (5, 70)]


def _missing_tools() -> str | None:
    missing = [tool for tool in (CC, QEMU, "cmake") if shutil.which(tool) is None]
    if not missing:
        return None
    return (
        f"{' and '.join(missing)} not found: the NEON tests need cmake and "
        "`apt-get install qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross`"
    )


pytestmark = pytest.mark.skipif(_missing_tools() is not None, reason=str(_missing_tools()))


def _build_key() -> str:
    """A hash of everything that goes into the driver, compiler included."""
    key = hashlib.sha256()
    version = subprocess.run([CC, "--version"], capture_output=True, text=True, check=True)
    key.update(version.stdout.encode() + TOOLCHAIN.encode())
    inputs = [p for p in (REPO / "native").rglob("*") if p.is_file()]
    for path in sorted(inputs) + [REPO / "CMakeLists.txt", DRIVER_SOURCE]:
        key.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return key.hexdigest()[:20]


def _check(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"{what} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")


def _build_driver() -> Path:
    """The static aarch64 driver, from a cache under /tmp keyed by the sources."""
    cache = Path(tempfile.gettempdir()) / "bitllm-neon-driver"
    driver = cache / _build_key() / "matmul_driver"
    if driver.is_file():
        return driver
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as work:
        build = Path(work)
        (build / "aarch64.cmake").write_text(TOOLCHAIN)
        configure = [
            "cmake", "-S", str(REPO), "-B", str(build / "cmake"), "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_TOOLCHAIN_FILE={build / 'aarch64.cmake'}", "-DBITLLM_CUDA=OFF",
        ]  # fmt: skip
        _check(configure, "configuring the aarch64 build")
        jobs = str(os.cpu_count() or 2)
        _check(["cmake", "--build", str(build / "cmake"), "-j", jobs], "the aarch64 build")
        objects = sorted(
            str(o) for o in (build / "cmake" / "CMakeFiles" / "bitllm.dir").rglob("*.o")
        )
        linked = build / "matmul_driver"
        link = [
            CC, "-O2", f"-I{REPO / 'native' / 'include'}", "-static", "-pthread",
            "-o", str(linked), str(DRIVER_SOURCE), *objects, "-lm",
        ]  # fmt: skip
        _check(link, "linking the aarch64 driver")
        driver.parent.mkdir(exist_ok=True)
        os.replace(linked, driver)  # atomic: a concurrent run sees all or nothing
    _prune(cache, keep=driver.parent)
    return driver


def _prune(cache: Path, keep: Path) -> None:
    """Drops drivers built from other sources more than a day ago."""
    for entry in cache.iterdir():
        if entry != keep and entry.is_dir() and time.time() - entry.stat().st_mtime > 86400:
            shutil.rmtree(entry, ignore_errors=True)


@pytest.fixture(scope="module")
def driver() -> Path:
    return _build_driver()


def _run(driver: Path, cpu: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    result = subprocess.run(
        [QEMU, "-cpu", cpu, str(driver), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, f"driver on -cpu {cpu} failed:\n{result.stderr}"
    return result.stdout.splitlines()


@dataclass(frozen=True)
class Case:
    """One weight matrix with its activations, written to PREFIX.* for the driver."""

    type: str
    rows: int
    cols: int
    n: int
    threads: int
    prefix: Path
    packed: np.ndarray  # what the x86 build packs
    x: np.ndarray

    def manifest_line(self, act_bits: int, isa: str, algo: str, tag: str) -> str:
        return (
            f"{self.type} {self.rows} {self.cols} {self.n} {act_bits} {self.threads} "
            f"{isa} {algo} {self.prefix} {tag}\n"
        )

    def arm_packed(self) -> np.ndarray:
        return np.fromfile(f"{self.prefix}.packed", dtype=np.uint8)

    def arm_result(self, tag: str) -> np.ndarray:
        return np.fromfile(f"{self.prefix}.{tag}.y", dtype=np.float32).reshape(self.n, self.rows)


def _activations(rng: np.random.Generator, n: int, cols: int) -> np.ndarray:
    x = rng.standard_normal((n, cols)).astype(np.float32)
    x[:, rng.integers(0, cols)] *= 30  # an outlier column, as real activations have
    return x


def _run_cases(driver: Path, cpu: str, folder: Path, lines: list[str]) -> None:
    manifest = folder / f"manifest-{cpu}.txt"
    manifest.write_text("".join(lines))
    errors = [line for line in _run(driver, cpu, "run", str(manifest)) if not line.startswith("ok")]
    assert not errors, "\n".join(errors)


def _bit_case(
    name: str, values: np.ndarray, scale: np.ndarray, x: np.ndarray, threads: int, prefix: Path
) -> tuple[Case, np.ndarray, np.ndarray]:
    """A case with its int8 values and row scales, which also go to files."""
    values.tofile(f"{prefix}.weights")
    scale.tofile(f"{prefix}.scale")
    x.tofile(f"{prefix}.x")
    packed = kernels.pack(name, values, scale).data
    rows, cols = values.shape
    return Case(name, rows, cols, x.shape[0], threads, prefix, packed, x), values, scale


def _bit_cases(rng: np.random.Generator, folder: Path) -> list[tuple[Case, np.ndarray, np.ndarray]]:
    cases = []
    for name in BIT_TYPES:
        kind = kernels.types()[name]
        for i, (rows, cols, n, threads) in enumerate(BIT_SHAPES):
            values = random_values(rng, kind, rows, cols)
            scale = rng.uniform(0.01, 2.0, rows).astype(np.float32)
            x = _activations(rng, n, cols)
            cases.append(_bit_case(name, values, scale, x, threads, folder / f"{name}-{i}"))
        for n in (1, 5):
            values, x = extreme_values(name, 5, 14336, n)
            scale = np.ones(5, dtype=np.float32)
            cases.append(_bit_case(name, values, scale, x, 1, folder / f"{name}-extreme-{n}"))
    return cases


@pytest.mark.parametrize("cpu", list(CPUS))
def test_isa_detection_and_forcing(driver: Path, cpu: str) -> None:
    lines = _run(driver, cpu, "isas")
    supported = [line.split()[1] for line in lines if line.startswith("supported")]
    assert supported == ["scalar", *CPUS[cpu]]
    assert f"default {CPUS[cpu][-1]}" in lines
    forced = _run(driver, cpu, "isas", env={"BITLLM_ISA": "neon"})
    assert "default neon" in forced
    if "neon_dotprod" not in CPUS[cpu]:
        refused = _run(driver, cpu, "isas", env={"BITLLM_ISA": "neon_dotprod"})
        assert any(
            line.startswith("default-error") and "cannot run neon_dotprod" in line
            for line in refused
        ), refused


@pytest.mark.parametrize("cpu", list(CPUS))
def test_bit_types_are_exact(
    driver: Path, cpu: str, rng: np.random.Generator, tmp_path: Path
) -> None:
    cases = _bit_cases(rng, tmp_path)
    runs = [
        (isa, algo, act_bits) for isa in CPUS[cpu] for algo in BIT_ALGOS for act_bits in (8, 16)
    ]
    lines = [
        case.manifest_line(act_bits, isa, algo, f"{isa}-{algo}-{act_bits}")
        for case, _, _ in cases
        for isa, algo, act_bits in runs
    ]
    _run_cases(driver, cpu, tmp_path, lines)
    for case, values, scale in cases:
        shape = f"{case.type} {case.rows}x{case.cols}, n={case.n}, threads={case.threads}"
        np.testing.assert_array_equal(case.arm_packed(), case.packed, err_msg=f"packing {shape}")
        expected = {bits: bit_matmul(values, scale, case.x, bits) for bits in (8, 16)}
        for isa, algo, act_bits in runs:
            np.testing.assert_array_equal(
                case.arm_result(f"{isa}-{algo}-{act_bits}"),
                expected[act_bits],
                err_msg=f"{isa}/{algo} on -cpu {cpu}, {act_bits}-bit activations, {shape}",
            )


@pytest.mark.parametrize("cpu", list(CPUS))
def test_float_and_quant_types(
    driver: Path, cpu: str, rng: np.random.Generator, tmp_path: Path
) -> None:
    cases = []
    for name in FLOAT_TOLERANCE:
        for i, (rows, cols) in enumerate(FLOAT_SHAPES):
            for n in (1, 4):
                w = rng.standard_normal((rows, cols)).astype(np.float32)
                x = _activations(rng, n, cols)
                prefix = tmp_path / f"{name}-{i}-{n}"
                w.tofile(f"{prefix}.weights")
                x.tofile(f"{prefix}.x")
                packed = kernels.quantize(name, w).data
                cases.append(Case(name, rows, cols, n, 1, prefix, packed, x))
    lines = [case.manifest_line(8, isa, "mad", isa) for case in cases for isa in CPUS[cpu]]
    _run_cases(driver, cpu, tmp_path, lines)
    for case in cases:
        shape = f"{case.type} {case.rows}x{case.cols}, n={case.n}"
        np.testing.assert_array_equal(case.arm_packed(), case.packed, err_msg=f"packing {shape}")
        matrix = kernels.from_bytes(case.type, case.packed, case.rows, case.cols)
        dense = kernels.dequantize(matrix).astype(np.float64)
        expected = case.x.astype(np.float64) @ dense.T
        # q8_0/q4_0 also quantize x to 8 bits per block of 32
        bound = (
            FLOAT_TOLERANCE[case.type]
            * np.abs(case.x).max()
            * np.abs(dense).max()
            * np.sqrt(case.cols)
        )
        # q1_0 / q2_0: the same integer slice dots as the x86 scalar kernel, summed in
        # another float order, so a misplaced weight shows far below the bound above
        scalar = None
        if case.type in ("q1_0", "q2_0", "q2_0_g128"):
            scalar = kernels.matmul(matrix, case.x, isa="scalar", threads=1)
        for isa in CPUS[cpu]:
            error = np.abs(case.arm_result(isa) - expected).max()
            assert error <= bound, f"{isa} on -cpu {cpu}, {shape}: error {error} > {bound}"
            if scalar is not None:
                np.testing.assert_allclose(
                    case.arm_result(isa), scalar, rtol=0, atol=1e-5 * np.abs(scalar).max()
                )


# (n_head, n_head_kv, head_dim, cache types): the vector paths (head_dim a multiple of
# 16) and the scalar tails (20), every cache type and a mixed pair.
ATTENTION_SHAPES = [
    (8, 2, 128, ("f16", "f16")),
    (8, 2, 128, ("q8_0", "q8_0")),
    (4, 1, 64, ("f32", "f32")),
    (6, 3, 96, ("f16", "q8_0")),
    (4, 2, 20, ("f32", "f16")),
]


@pytest.mark.parametrize("cpu", list(CPUS))
def test_attention_is_bit_identical_to_x86_scalar(driver: Path, cpu: str, tmp_path: Path) -> None:
    # Rows of two sequences that cross chunk boundaries (prefill tiles), then each
    # sequence's last row alone (the decode split over positions), on every NEON ISA
    # and the portable kernel, 1 and 2 threads: all must give the x86 scalar kernel's bits.
    from .test_attention import attend

    n_ctx = 600
    seq = np.array([0] * 20 + [1] * 3, dtype=np.int32)
    pos = np.concatenate([np.arange(250, 270), [17, 300, 599]]).astype(np.int32)
    calls = {"batch": (seq, pos), "decode": (seq[-1:], pos[-1:])}
    rng = np.random.default_rng(11)
    lines, expected = [], {}
    for s, (n_head, n_head_kv, head_dim, types) in enumerate(ATTENTION_SHAPES):
        shape = (2, n_ctx, n_head_kv, head_dim)
        k = rng.standard_normal(shape).astype(np.float32)
        v = rng.standard_normal(shape).astype(np.float32)
        for name, (seq_c, pos_c) in calls.items():
            q = (3 * rng.standard_normal((len(pos_c), n_head, head_dim))).astype(np.float32)
            prefix = tmp_path / f"attn-{s}-{name}"
            for suffix, array in (("q", q), ("pos", pos_c), ("seq", seq_c), ("k", k), ("v", v)):
                array.tofile(f"{prefix}.{suffix}")
            expected[prefix] = attend(q, pos_c, seq_c, k, v, n_head_kv, types, isa="scalar")
            for isa in ["scalar", *CPUS[cpu]]:
                for threads in (1, 2):
                    lines.append(
                        f"{prefix} {len(pos_c)} 2 {n_ctx} {n_head} {n_head_kv} {head_dim} "
                        f"{types[0]} {types[1]} {isa} {threads} {isa}-{threads}\n"
                    )
    manifest = tmp_path / f"attend-{cpu}.txt"
    manifest.write_text("".join(lines))
    errors = [line for line in _run(driver, cpu, "attend", str(manifest)) if line[:2] != "ok"]
    assert not errors, "\n".join(errors)
    for line in lines:
        prefix, tag = line.split()[0], line.split()[-1]
        got = np.fromfile(f"{prefix}.{tag}.out", dtype=np.float32)
        np.testing.assert_array_equal(
            got, expected[Path(prefix)].ravel(), err_msg=f"{tag} on -cpu {cpu}: {prefix}"
        )
