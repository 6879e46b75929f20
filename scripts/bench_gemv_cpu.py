"""Single-thread GEMV throughput in process CPU time, for comparing weight types on a busy
machine (wall-clock timings, as in bench_kernels.py, count the time other processes take).

Prints one row per (type, isa): CPU microseconds per call (median of batches) and G weights/s
(rows * cols / time). The matrix is rows x cols (default 4096 x 4096: 16 M weights, in L3 for
the 1- and 2-bit types). Usage:

  python scripts/bench_gemv_cpu.py --types q1_0 q2_0 bs1 bt2 --isas avx512 avx2
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from bench_kernels import make_matrix

from bitllm import kernels


def cpu_seconds_per_call(matrix: kernels.PackedMatrix, isa: str, x: np.ndarray) -> float:
    """Median process CPU seconds per call over 9 batches of calls, after a warm-up."""
    kernels.matmul(matrix, x, isa=isa, threads=1)
    batch = 1
    while True:  # a batch long enough for the CPU clock's resolution
        t0 = time.process_time()
        for _ in range(batch):
            kernels.matmul(matrix, x, isa=isa, threads=1)
        if time.process_time() - t0 > 0.05:
            break
        batch *= 2
    samples = []
    for _ in range(9):
        t0 = time.process_time()
        for _ in range(batch):
            kernels.matmul(matrix, x, isa=isa, threads=1)
        samples.append((time.process_time() - t0) / batch)
    return statistics.median(samples)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--types", nargs="+", default=["q1_0", "q2_0", "q2_0_g128", "bs1", "bt2"])
    p.add_argument("--isas", nargs="+", default=[i for i in kernels.isas() if i != "scalar"])
    p.add_argument("--rows", type=int, default=4096)
    p.add_argument("--cols", type=int, default=4096)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, args.cols), dtype=np.float32)
    print("| type | isa | CPU us/call | G weights/s |")
    print("|---|---|---|---|")
    for name in args.types:
        matrix = make_matrix(name, args.rows, args.cols, rng)
        for isa in args.isas:
            seconds = cpu_seconds_per_call(matrix, isa, x)
            gw = args.rows * args.cols / seconds / 1e9
            print(f"| {name} | {isa} | {seconds * 1e6:.1f} | {gw:.2f} |", flush=True)


if __name__ == "__main__":
    main()
