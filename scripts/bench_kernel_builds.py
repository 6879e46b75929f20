"""Same-run kernel comparison of builds of libbitllm: A B A B ... in one process.

On a shared machine a kernel's wall time moves by 20-30% from one minute to the next, so
two builds are compared call by call: each figure alternates single-threaded `bl_matmul`
calls between the libraries and takes the median of each one's thread CPU time per call
(the time the kernel ran, not the time it waited for a core). It also says whether the
builds' outputs are bit-identical. --copies N rotates over N copies of each matrix, to time
it out of cache. Usage:

  cp build/.../libbitllm.so /tmp/before.so      # then change and rebuild
  python scripts/bench_kernel_builds.py /tmp/before.so build/.../libbitllm.so \\
      --cases bt2:6912x2560 q8_0:32768x2560 --isa avx2
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from bench_kernels import make_matrix

from bitllm import kernels
from bitllm.runtime import native


def parse_case(case: str) -> tuple[str, int, int]:
    """'bt2:6912x2560' -> ('bt2', 6912, 2560)."""
    try:
        name, shape = case.split(":")
        rows, cols = (int(v) for v in shape.split("x"))
    except ValueError:
        raise SystemExit(f"--cases: {case!r} is not TYPE:ROWSxCOLS") from None
    return name, rows, cols


def compare(libs: list, case: str, args: argparse.Namespace, rng: np.random.Generator) -> str:
    ffi = native.library()[0]
    isa, calls, copies, tokens = args.isa, args.calls, args.copies, args.tokens
    name, rows, cols = parse_case(case)
    first = make_matrix(name, rows, cols, rng)
    matrices = [first] + [
        kernels.from_bytes(name, first.data.copy(), rows, cols) for _ in range(copies - 1)
    ]
    x = rng.standard_normal((tokens, cols), dtype=np.float32)
    y = np.empty((tokens, rows), np.float32)
    options = ffi.new(
        "bl_matmul_options *",
        {
            "isa": kernels.isa_index(isa),
            "threads": 1,
            "act_bits": args.act_bits,
            "algo": kernels.algo_index(args.algo),
        },
    )
    tail = (kernels.pointer(ffi, x, "float *"), tokens, kernels.pointer(ffi, y, "float *"), options)
    call_args = [(*kernels.matrix_args(ffi, m), *tail) for m in matrices]
    outputs, times = [], [[] for _ in libs]
    for lib in libs:
        if lib.bl_matmul(*call_args[0]) != 0:
            raise SystemExit(ffi.string(lib.bl_last_error()).decode())
        outputs.append(y.copy())
    for call in range(calls):
        for k, lib in enumerate(libs):
            started = time.thread_time()
            lib.bl_matmul(*call_args[call % copies])
            times[k].append(time.thread_time() - started)
    medians = [statistics.median(t) for t in times]
    cells = [
        f"{m * 1e3:.3f} ms, {rows * cols * tokens / m / 1e9:.1f} Gw/s, x{medians[0] / m:.2f}"
        + ("" if np.array_equal(out, outputs[0]) else " (outputs differ)")
        for m, out in zip(medians, outputs, strict=True)
    ]
    return f"| {case} | " + " | ".join(cells) + " |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("libraries", nargs="+", type=Path, help="builds of libbitllm.so; first = 1.00")
    p.add_argument("--cases", nargs="+", default=["bt2:6912x2560", "q8_0:32768x2560"])
    p.add_argument("--isa", default="avx2", help="an ISA name the library knows")
    p.add_argument("--calls", type=int, default=60, help="calls per library and case")
    p.add_argument("--copies", type=int, default=1, help="copies of each matrix, rotated per call")
    p.add_argument(
        "--tokens", type=int, default=1, help="activation rows (1: GEMV; more: GEMM, G products/s)"
    )
    p.add_argument("--algo", default="auto", choices=["auto", "mad", "lut"])
    p.add_argument("--act-bits", type=int, default=8, choices=[8, 16], help="ternary/sign types")
    args = p.parse_args()
    ffi = native.library()[0]
    libs = [ffi.dlopen(str(path)) for path in args.libraries]
    print("| case | " + " | ".join(path.name for path in args.libraries) + " |")
    print("|---|" + "---:|" * len(libs))
    rng = np.random.default_rng(0)
    for case in args.cases:
        print(compare(libs, case, args, rng), flush=True)


if __name__ == "__main__":
    main()
