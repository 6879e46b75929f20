"""Speed of the attention op alone (bl_attend) on 2B-4T's shapes, per cache type and ISA.

bl_attend_repeat first stores the keys and values of n_ctx positions in the cache type,
then attends R times over them; the difference of a call with R = --inner and one with
R = 1, divided by --inner - 1, is the attention's time (the storing, which costs about
as much as one attention, cancels).
Reported per generated token (one layer's time x the layers) and as the rate it reached:
attention FLOPs (2 per multiply-add of QK and PV) and KV bytes read per second. Decode is
one query row at position D; prefill is N rows at positions 0..N-1. Timings are medians
of interleaved repetitions, in wall time (threads > 1) or process CPU time (--cpu-time,
which a loaded machine disturbs less). --builds A.so,B.so times several builds of the library
in one process, alternating them call by call, a row per build.

  python scripts/bench_attention.py --threads 2 --depths 1024,3968 --prompts 512
  python scripts/bench_attention.py --threads 1 --cpu-time --builds /tmp/a.so,/tmp/b.so
  python scripts/bench_attention.py --cache-layers 30 --depths 3968 --prompts ""
  python scripts/bench_attention.py --heads 16,8,128 --layers 28 --depths 2048 --prompts ""
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from bitllm import kernels
from bitllm.runtime.native import check, library
from bitllm.runtime.native_context import cache_types

BYTES_PER_ELEMENT = {"f32": 4.0, "f16": 2.0, "q8_0": 34 / 32}


class Problem:
    def __init__(
        self, n_ctx: int, n_head: int, n_head_kv: int, head_dim: int, cache_layers: int
    ) -> None:
        rng = np.random.default_rng(0)
        self.n_ctx, self.n_head, self.n_head_kv, self.head_dim = n_ctx, n_head, n_head_kv, head_dim
        self.cache_layers = cache_layers
        shape = (n_ctx, n_head_kv, head_dim)
        self.k = rng.standard_normal(shape).astype(np.float32)
        self.v = rng.standard_normal(shape).astype(np.float32)
        self.q = rng.standard_normal((n_ctx, n_head, head_dim)).astype(np.float32)

    def call(
        self, lib: object, positions: np.ndarray, cache_type: str, isa: str, threads: int,
        repeat: int = 1,
    ) -> None:  # fmt: skip
        ffi = library()[0]
        n = len(positions)
        pos = np.ascontiguousarray(positions, dtype=np.int32)
        seq = np.zeros(n, dtype=np.int32)
        out = np.empty((n, self.n_head, self.head_dim), dtype=np.float32)
        f = ffi.from_buffer
        t = cache_types().index(cache_type)
        check(
            lib.bl_attend_repeat(
                ffi.cast("float *", f(self.q)), n, ffi.cast("int32_t *", f(pos)),
                ffi.cast("int32_t *", f(seq)), ffi.cast("float *", f(self.k)),
                ffi.cast("float *", f(self.v)), 1, self.n_ctx, self.n_head, self.n_head_kv,
                self.head_dim, t, t, kernels.isa_index(isa), threads, self.cache_layers, repeat,
                ffi.cast("float *", f(out)),
            )
        )  # fmt: skip


def attention_seconds(
    problem: Problem, builds: list, positions: np.ndarray, cache_type: str, isa: str,
    threads: int, repetitions: int, inner: int, clock: Callable[[], float],
) -> list[float]:  # fmt: skip
    """Per build: median of ((call attending inner times) - (call attending once)) /
    (inner - 1), the two interleaved and the builds alternated."""
    differences: list[list[float]] = [[] for _ in builds]
    for _ in range(repetitions):
        for lib, found in zip(builds, differences, strict=True):
            started = clock()
            problem.call(lib, positions, cache_type, isa, threads)
            once = clock() - started
            started = clock()
            problem.call(lib, positions, cache_type, isa, threads, inner)
            found.append((clock() - started - once) / (inner - 1))
    return [statistics.median(found) for found in differences]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--depths", default="1024,3968")
    p.add_argument("--prompts", default="512")
    p.add_argument("--layers", type=int, default=30)
    p.add_argument(
        "--cache-layers", type=int, default=1,
        help="layers the cache holds, each attention reading the next (30: out of L3, as in "
        "decode; 1: one layer's cache, reread from L3)",
    )  # fmt: skip
    p.add_argument("--repetitions", type=int, default=5)
    p.add_argument(
        "--inner", type=int, default=0,
        help="attentions per timed call (>= 2; default 101, or ten times the cache's layers "
        "+ 1: fewer leave the timing to the noise of storing the cache)",
    )  # fmt: skip
    p.add_argument("--cpu-time", action="store_true", help="process CPU time, not wall time")
    p.add_argument("--isas", default=",".join(kernels.isas()))
    p.add_argument("--cache-types", default=",".join(cache_types()))
    p.add_argument("--builds", default="", help="libbitllm.so paths to compare, comma-separated")
    p.add_argument(
        "--heads", default="20,5,128",
        help="query heads, K/V heads, head size (2B-4T: 20,5,128; Qwen3-1.7B: 16,8,128)",
    )  # fmt: skip
    args = p.parse_args()
    args.inner = args.inner or (101 if args.cache_layers == 1 else 10 * args.cache_layers + 1)
    ffi, default = library()
    paths = [b for b in args.builds.split(",") if b]
    builds = [ffi.dlopen(path) for path in paths] or [default]
    names = paths or [""]
    depths = [int(d) for d in args.depths.split(",") if d]
    prompts = [int(n) for n in args.prompts.split(",") if n]
    n_head, n_head_kv, head_dim = (int(v) for v in args.heads.split(","))
    problem = Problem(max(depths + prompts) + 1, n_head, n_head_kv, head_dim, args.cache_layers)
    clock = time.process_time if args.cpu_time else time.perf_counter
    per_pair = 4 * n_head * head_dim  # FLOPs of one (query row, position) in one layer
    kv_element_count = 2 * n_head_kv * head_dim  # K and V elements of one position
    cases = [(f"decode @ d{d}", np.array([d]), d + 1, d + 1) for d in depths]
    cases += [(f"prefill {n}", np.arange(n), n * (n + 1) // 2, n) for n in prompts]
    what = "CPU time" if args.cpu_time else "wall time"
    print(f"{args.threads} threads, {what}, x {args.layers} layers; median of "
          f"{args.repetitions}, {args.inner} attentions each, over a cache of "
          f"{args.cache_layers} layers\n")  # fmt: skip
    build_column = "build | " if paths else ""
    rates = "ms per token (decode) or prompt | GFLOP/s | KV GB/s"
    print(f"| {build_column}case | ISA | cache | {rates} |")
    print("|" + "---|" * (4 if paths else 3) + "---:|" * 3)
    for name, positions, pairs, rows_read in cases:
        for isa in args.isas.split(","):
            for cache_type in args.cache_types.split(","):
                medians = attention_seconds(
                    problem, builds, positions, cache_type, isa, args.threads,
                    args.repetitions, args.inner, clock,
                )  # fmt: skip
                for path, median in zip(names, medians, strict=True):
                    seconds = args.layers * median
                    flops = args.layers * per_pair * pairs
                    kv_bytes = (
                        args.layers * rows_read * kv_element_count * BYTES_PER_ELEMENT[cache_type]
                    )
                    build = f"{path} | " if path else ""
                    print(
                        f"| {build}{name} | {isa} | {cache_type} | {seconds * 1e3:.1f} | "
                        f"{flops / seconds / 1e9:.1f} | {kv_bytes / seconds / 1e9:.1f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
