"""llama.cpp's tq2_0 / tq1_0 kernels against bitllm's bt2 / bt1 on BitNet-2B-4T's shapes.

One thread, process CPU time (so that other processes on a busy machine move the figures
less than wall time would): median microseconds per bitllm.kernels.matmul call (activation
quantization included) over interleaved rounds, for GEMV (1 token) and GEMM (--tokens rows).
The same random trits in every type (tq: one scale per 256-block, all equal). Usage:

  python scripts/bench_tq.py [--isas avx512 avx2] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bitllm import kernels
from bitllm.runtime import tensor_types

SHAPES = {"ffn_up": (6912, 2560), "ffn_down": (2560, 6912)}
TYPES = ("bt2", "tq2_0", "bt1", "tq1_0")


def make(name: str, trits: np.ndarray) -> kernels.PackedMatrix:
    rows, cols = trits.shape
    if tensor_types.tensor_type(name).is_bits:
        return kernels.pack(name, trits, np.full(rows, 0.5, np.float32))
    return kernels.quantize(name, trits.astype(np.float32) * np.float32(0.5))


def cpu_seconds(matrix: kernels.PackedMatrix, x: np.ndarray, isa: str, calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        kernels.matmul(matrix, x, isa=isa, threads=1)
    return (time.process_time() - start) / calls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--isas", nargs="+", default=[i for i in ("avx512", "avx2") if i in kernels.isas()]
    )
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--tokens", type=int, default=64)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    print("| shape | isa | mode | " + " | ".join(f"{t} us" for t in TYPES) + " | tq2_0 / bt2 |")
    print("|---" * (4 + len(TYPES)) + "|")
    for shape, (rows, cols) in SHAPES.items():
        trits = rng.integers(-1, 2, (rows, cols)).astype(np.int8)
        matrices = {t: make(t, trits) for t in TYPES}
        for isa in args.isas:
            for mode, n, calls in (("gemv", 1, 40), ("gemm", args.tokens, 2)):
                x = rng.standard_normal((n, cols)).astype(np.float32)
                times: dict[str, list[float]] = {t: [] for t in TYPES}
                for t in TYPES:
                    cpu_seconds(matrices[t], x, isa, 2)  # warm-up
                for _ in range(args.rounds):
                    for t in TYPES:
                        times[t].append(cpu_seconds(matrices[t], x, isa, calls))
                med = {t: statistics.median(v) * 1e6 for t, v in times.items()}
                cells = " | ".join(f"{med[t]:.0f}" for t in TYPES)
                print(
                    f"| {shape} | {isa} | {mode}{n} | {cells} | {med['tq2_0'] / med['bt2']:.2f} |"
                )


if __name__ == "__main__":
    main()
