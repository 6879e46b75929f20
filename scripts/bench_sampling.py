"""Time the sampler per token on a row of logits the size of a real vocabulary.

Prints one row per setting: milliseconds per token (median of 5 batches). Usage:

  python scripts/bench_sampling.py --vocab 128256 151936
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bitllm.runtime.sampling import Sampler, SamplingParams

SETTINGS = {
    "defaults (top-k 40, top-p 0.95, min-p 0.05)": {},
    "greedy": {"temperature": 0.0},
    "top-k off (top-p 0.95, min-p 0.05)": {"top_k": 0},
    "top-p only (0.9)": {"top_k": 0, "min_p": 0.0, "top_p": 0.9},
    "repeat penalty 1.1": {"repeat_penalty": 1.1},
}


def ms_per_token(sampler: Sampler, logits: np.ndarray, history: list[int], calls: int) -> float:
    sampler(logits, history)
    batches = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            sampler(logits, history)
        batches.append((time.perf_counter() - started) / calls)
    return statistics.median(batches) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", nargs="+", type=int, default=[128256])
    p.add_argument("--spread", type=float, default=3.0, help="std of the random logits")
    p.add_argument("--calls", type=int, default=20, help="tokens per timed batch")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    print("| vocabulary | setting | ms per token |")
    print("|---:|---|---:|")
    for n_vocab in args.vocab:
        logits = (rng.standard_normal(n_vocab) * args.spread).astype(np.float32)
        history = [int(t) for t in rng.integers(0, n_vocab, 256)]
        for name, settings in SETTINGS.items():
            sampler = Sampler(SamplingParams(seed=0, **settings))
            ms = ms_per_token(sampler, logits, history, args.calls)
            print(f"| {n_vocab} | {name} | {ms:.3f} |", flush=True)


if __name__ == "__main__":
    main()
