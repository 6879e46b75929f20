"""Decode and prompt speed with a long KV cache: bitllm with each cache type against
llama.cpp (through llama-cpp-python, f16 cache), in one process, interleaved.

For every depth D, each engine gets its own context holding D random tokens (filled once,
not timed); a round then times GEN single-token evaluations after them (rewinding to D each
time: the cost depends on the positions, not on the tokens), for every engine in turn, and
the table shows the median over rounds. ppN evaluates N tokens in one call from an empty
cache. Before measuring, the script prints what the cache costs per generated token: KV
bytes read and attention FLOPs at each depth.

  python scripts/bench_long_context.py OURS.gguf [THEIRS.gguf --rename-arch bitnet]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import bench_vs_llama_cpp
import numpy as np

KV_ROW_BYTES = {"f32": 4.0, "f16": 2.0, "q8_0": 34 / 32}  # bytes per cached element


def random_tokens(n: int, seed: int) -> list[int]:
    return [int(v) for v in np.random.default_rng(seed).integers(100, 30000, n)]


def print_counts(info: object, depths: list[int], cache_types: list[str]) -> None:
    """KV bytes and attention FLOPs per generated token, from the model's shapes."""
    n_layer, n_head, n_head_kv = info.n_layer, info.n_head, info.n_head_kv  # type: ignore[attr-defined]
    head_dim = info.n_embd // n_head  # type: ignore[attr-defined]
    per_position = {t: 2 * n_layer * n_head_kv * head_dim * KV_ROW_BYTES[t] for t in cache_types}
    flops = 4 * n_layer * n_head * head_dim  # QK and PV: 2 multiply-adds per head element
    print(f"Per generated token ({n_layer} layers, {n_head_kv} K/V heads x {head_dim}):\n")
    print("| depth | " + " | ".join(f"KV read, {t}" for t in cache_types) + " | attention FLOPs |")
    print("|---:|" + "---:|" * (len(cache_types) + 1))
    for d in depths:
        cells = [f"{per_position[t] * d / 1e6:.1f} MB" for t in cache_types]
        print(f"| {d} | " + " | ".join(cells) + f" | {flops * d / 1e9:.2f} G |")
    print()


class Ours:
    def __init__(self, path: Path, threads: int, cache_type: str) -> None:
        from bitllm.runtime.model import NativeModel

        self.name = f"bitllm {cache_type}"
        self.model = NativeModel(path, threads=threads)
        self.cache_type = cache_type
        self.contexts: dict[int, object] = {}

    def prepare(self, depth: int, gen: int) -> None:
        ctx = self.model.new_context(depth + gen, self.cache_type, self.cache_type)
        if depth:
            ctx.eval(random_tokens(depth, 1), 0)
        self.contexts[depth] = ctx

    def decode(self, depth: int, tokens: list[int]) -> float:
        ctx = self.contexts[depth]
        started = time.perf_counter()
        for pos, token in enumerate(tokens, start=depth):
            ctx.eval([token], pos)  # type: ignore[attr-defined]
        return len(tokens) / (time.perf_counter() - started)

    def prompt(self, tokens: list[int]) -> float:
        ctx = self.model.new_context(len(tokens), self.cache_type, self.cache_type)
        started = time.perf_counter()
        ctx.eval(tokens, 0)
        rate = len(tokens) / (time.perf_counter() - started)
        ctx.close()
        return rate


class LlamaCpp:
    def __init__(self, path: Path, threads: int) -> None:
        self.name = "llama.cpp f16"
        self.path, self.threads = path, threads
        self.contexts: dict[int, object] = {}

    def _llama(self, n_ctx: int) -> object:
        return bench_vs_llama_cpp.open_llama_cpp(
            model_path=str(self.path), n_ctx=n_ctx, n_batch=512, n_threads=self.threads,
            n_threads_batch=self.threads, verbose=False,
        )  # fmt: skip

    def prepare(self, depth: int, gen: int) -> None:
        llm = self._llama(depth + gen)
        if depth:
            llm.eval(random_tokens(depth, 1))  # type: ignore[attr-defined]
        self.contexts[depth] = llm

    def decode(self, depth: int, tokens: list[int]) -> float:
        llm = self.contexts[depth]
        started = time.perf_counter()
        llm.n_tokens = depth  # type: ignore[attr-defined]
        for token in tokens:
            llm.eval([token])  # type: ignore[attr-defined]
        return len(tokens) / (time.perf_counter() - started)

    def prompt(self, tokens: list[int]) -> float:
        llm = self._llama(len(tokens))
        started = time.perf_counter()
        llm.eval(tokens)  # type: ignore[attr-defined]
        rate = len(tokens) / (time.perf_counter() - started)
        del llm
        return rate


def medians(engines: list, rounds: int, measure: Callable[[object], float]) -> dict[str, float]:
    """Median rate per engine over rounds; each round runs every engine once, in turn."""
    runs: dict[str, list[float]] = {e.name: [] for e in engines}
    for _ in range(rounds):
        for e in engines:
            runs[e.name].append(measure(e))
    return {name: statistics.median(rates) for name, rates in runs.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ours", type=Path)
    p.add_argument("theirs", type=Path, nargs="?")
    p.add_argument("--rename-arch", default=None, help="see bench_vs_llama_cpp.py")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--depths", default="0,1024,3968")
    p.add_argument("--gen", type=int, default=16, help="tokens decoded per timing")
    p.add_argument("--prompts", default="512,2048")
    p.add_argument("--cache-types", default="f32,f16,q8_0")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pp-rounds", type=int, default=2)
    p.add_argument("--plain-cpu-buffers", action="store_true", help="see bench_vs_llama_cpp.py")
    args = p.parse_args()
    bench_vs_llama_cpp.require_files(args.ours, args.theirs)
    bench_vs_llama_cpp.PLAIN_CPU_BUFFERS = args.plain_cpu_buffers
    depths = [int(d) for d in args.depths.split(",")]
    prompts = [int(n) for n in args.prompts.split(",") if n]
    cache_types = args.cache_types.split(",")

    engines: list = [Ours(args.ours, args.threads, t) for t in cache_types]
    if args.theirs:
        theirs = args.theirs
        if args.rename_arch:
            theirs = bench_vs_llama_cpp.rename_arch(theirs, args.rename_arch)
        engines.append(LlamaCpp(theirs, args.threads))
    print_counts(engines[0].model.info, depths, cache_types)
    for e in engines:
        for d in depths:
            e.prepare(d, args.gen)
    gen = random_tokens(args.gen, 2)
    decode = {d: medians(engines, args.rounds, lambda e, d=d: e.decode(d, gen)) for d in depths}
    prompt = {
        n: medians(engines, args.pp_rounds, lambda e, n=n: e.prompt(random_tokens(n, 3)))
        for n in prompts
    }
    header = [f"tg{args.gen} @ d{d}" for d in depths] + [f"pp{n}" for n in prompts]
    rounds = f"median of {args.rounds} rounds for tg, {args.pp_rounds} for pp"
    print(f"{args.threads} threads, t/s ({rounds}); in brackets: share of depth-0 decode\n")
    print("| engine | " + " | ".join(header) + " |")
    print("|---|" + "---:|" * len(header))
    for e in engines:
        base = decode[depths[0]][e.name]
        cells = [f"{decode[d][e.name]:.2f} ({decode[d][e.name] / base:.0%})" for d in depths]
        cells += [f"{prompt[n][e.name]:.1f}" for n in prompts]
        print(f"| {e.name} | " + " | ".join(cells) + " |")
    if args.theirs:
        ref = engines[-1].name
        for e in engines[:-1]:
            ratios = [decode[d][e.name] / decode[d][ref] for d in depths]
            ratios += [prompt[n][e.name] / prompt[n][ref] for n in prompts]
            print(f"| {e.name} / llama.cpp | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")


if __name__ == "__main__":
    main()
