"""Kernel benchmark: every type, ISA and algorithm on BitNet-2B-4T's shapes.

Prints one table row per (type, isa, algo, shape, mode):
  - gemv in cache: one activation row, the same matrix every call (1 and 2 threads);
  - gemv out of cache: rotates over enough copies of the matrix to exceed the L3 cache
    (gemv2_dram with 2 threads, as decode; gemv1_dram with 1);
  - gemm: 128 activation rows (prompt processing), in cache.
Figures: median time per call over many calls, G weights/s (rows * cols * n / time),
weight GB/s (packed bytes / time) and, out of cache, % of the memory read bandwidth this
script measures itself (scripts/membw.c). Usage:

  python scripts/bench_kernels.py                 # everything (several minutes)
  python scripts/bench_kernels.py --quick         # a short subset
  python scripts/bench_kernels.py --types bt2 --isas avx512 --modes gemv1
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bitllm import kernels
from bitllm.runtime import tensor_types

SHAPES = {
    "attn_qo": (2560, 2560),
    "attn_kv": (640, 2560),
    "ffn_up": (6912, 2560),
    "ffn_down": (2560, 6912),
    "head": (128256, 2560),
}
BIT_TYPES = tensor_types.names("ternary", "sign")
HEAD_TYPES = ("q4_0", "q8_0", "f16")
MODES = ("gemv1", "gemv2", "gemv2_dram", "gemm128")
# batched decode's shapes (8 or 16 sequences, heads included), and one thread from memory;
# not in the default run
EXTRA_MODES = ("gemm8", "gemm16", "gemv1_dram")
L3_BYTES = 32 << 20


@dataclass
class Result:
    type: str
    isa: str
    algo: str
    shape: str
    mode: str
    seconds: float
    weights: int
    nbytes: int
    n: int

    def gweights(self) -> float:
        return self.weights * self.n / self.seconds / 1e9

    def gbytes(self) -> float:
        return self.nbytes / self.seconds / 1e9


def memory_bandwidth(threads: int) -> float:
    """Median read GB/s over a 1 GiB buffer with AVX2 loads (compiled on the fly)."""
    source = Path(__file__).with_name("membw.c")
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "membw"
        subprocess.run(["cc", "-O2", "-mavx2", "-pthread", str(source), "-o", str(exe)], check=True)
        out = subprocess.run(
            [str(exe), str(threads), "1024", "9"], check=True, capture_output=True, text=True
        )
    return float(out.stdout)


def make_matrix(name: str, rows: int, cols: int, rng: np.random.Generator) -> kernels.PackedMatrix:
    kind = tensor_types.tensor_type(name).kind
    if kind == "ternary":
        values = rng.integers(-1, 2, size=(rows, cols), dtype=np.int8)
        return kernels.from_bytes(
            name, tensor_types.pack(name, values, np.ones(rows, np.float32)), rows, cols
        )
    if kind == "sign":
        values = np.where(rng.random((rows, cols)) < 0.5, -1, 1).astype(np.int8)
        return kernels.from_bytes(
            name, tensor_types.pack(name, values, np.ones(rows, np.float32)), rows, cols
        )
    w = rng.standard_normal((rows, cols), dtype=np.float32)
    return kernels.from_bytes(name, tensor_types.quantize(name, w), rows, cols)


def time_calls(call: Callable[[], None], min_seconds: float) -> float:
    """Median seconds per call over batches, after a warm-up."""
    call()
    batch, samples, spent = 1, [], 0.0
    while spent < min_seconds or len(samples) < 7:
        t0 = time.perf_counter()
        for _ in range(batch):
            call()
        elapsed = time.perf_counter() - t0
        spent += elapsed
        if elapsed < 0.01:
            batch *= 2
            continue
        samples.append(elapsed / batch)
    return statistics.median(samples)


def bench_one(
    matrix: kernels.PackedMatrix,
    isa: str,
    algo: str,
    mode: str,
    rng: np.random.Generator,
    min_seconds: float,
) -> tuple[float, int]:
    n = int(mode.removeprefix("gemm")) if mode.startswith("gemm") else 1
    threads = mode_threads(mode)
    x = rng.standard_normal((n, matrix.cols), dtype=np.float32)
    copies = [matrix]
    if mode.endswith("_dram") and matrix.nbytes < 4 * L3_BYTES:
        extra = -(-4 * L3_BYTES // matrix.nbytes)
        copies = [
            kernels.from_bytes(matrix.type, matrix.data.copy(), matrix.rows, matrix.cols)
            for _ in range(extra)
        ]
    turn = iter(range(1 << 62))

    def call() -> None:
        m = copies[next(turn) % len(copies)]
        kernels.matmul(m, x, isa=isa, threads=threads, algo=None if algo == "auto" else algo)

    return time_calls(call, min_seconds), n


def mode_threads(mode: str) -> int:
    return 2 if mode.startswith("gemv2") else 1


def has_kernels(name: str, isa: str, algo: str, rng: np.random.Generator) -> bool:
    """Whether isa has algo's kernels for the type (head types have no LUT on most),
    asked of a one-row matrix."""
    try:
        probe = make_matrix(name, 1, 256, rng)
        x = np.zeros((1, probe.cols), np.float32)
        kernels.matmul(probe, x, isa=isa, algo=None if algo == "auto" else algo)
    except ValueError:
        return False
    return True


def run(args: argparse.Namespace) -> list[Result]:
    rng = np.random.default_rng(0)
    results = []
    for name in args.types:
        bit_kind = tensor_types.tensor_type(name).is_bits
        shapes = [s for s in args.shapes if (s == "head") != bit_kind]
        algos = {
            isa: [a for a in args.algos if has_kernels(name, isa, a, rng)] for isa in args.isas
        }
        for shape in shapes:
            rows, cols = SHAPES[shape]
            matrix = make_matrix(name, rows, cols, rng)
            for isa in args.isas:
                for algo in algos[isa]:
                    for mode in args.modes:
                        if shape == "head" and mode == "gemm128":
                            continue
                        seconds, n = bench_one(matrix, isa, algo, mode, rng, args.seconds)
                        r = Result(
                            name, isa, algo, shape, mode, seconds, rows * cols, matrix.nbytes, n
                        )
                        results.append(r)
                        print_row(r, args.bandwidth)
    return results


def print_row(r: Result, bandwidth: dict[int, float]) -> None:
    share = ""
    if r.mode.endswith("_dram") or r.shape == "head":
        share = f"{100 * r.gbytes() / bandwidth[mode_threads(r.mode)]:6.0f}%"
    print(
        f"| {r.type:5} | {r.isa:7} | {r.algo:4} | {r.shape:8} | {r.mode:10} | "
        f"{r.seconds * 1e6:10.1f} | {r.gweights():8.1f} | {r.gbytes():7.1f} | {share:>7} |",
        flush=True,
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--types", nargs="+", default=list(BIT_TYPES + HEAD_TYPES))
    p.add_argument("--isas", nargs="+", default=None, help="default: every ISA this CPU runs")
    p.add_argument("--algos", nargs="+", default=["mad", "lut"], choices=["auto", "mad", "lut"])
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES + EXTRA_MODES))
    p.add_argument("--seconds", type=float, default=0.5, help="minimum timing per figure")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"{'/'.join(BIT_TYPES)} + q4_0 head, best ISA, ffn_up + head, 0.2 s per figure",
    )
    args = p.parse_args(argv)
    if args.isas is None:
        args.isas = [i for i in kernels.isas() if i != "scalar"] or ["scalar"]
    if args.quick:
        args.types = [t for t in args.types if t in BIT_TYPES + ("q4_0",)]
        args.isas = args.isas[-1:]
        args.shapes = ["ffn_up", "head"]
        args.seconds = 0.2
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    args.bandwidth = {t: memory_bandwidth(t) for t in (1, 2)}
    print(
        f"memory read bandwidth: {args.bandwidth[1]:.1f} GB/s (1 thread), "
        f"{args.bandwidth[2]:.1f} GB/s (2 threads)"
    )
    print(
        "| type  | isa     | algo | shape    | mode       |   us/call  "
        "| Gw/s     | GB/s    | % bw    |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    run(args)


if __name__ == "__main__":
    main()
