"""bit-bench: prompt-processing and generation speed of a model, in llama-bench's shape.

ppN evaluates N random tokens in one batch from an empty cache; tgN evaluates N tokens one
at a time from an empty cache (the decode loop without sampling). With a depth D (-d, as
llama-bench's), the cache first holds D random tokens (not timed) and the test, then named
"ppN @ dD", runs after them. With -npl, "tgN xP" runs P sequences side by side in one batch
per step (llama-batched-bench's shape): P * N tokens, and the t/s column is their aggregate.
-ctk/-ctv choose the KV cache types; the table shows them with the bytes the cache takes
when full (of all P sequences in "xP" rows). Each test runs once to
warm up, then `repetitions` times; the table shows mean ± standard deviation of tokens/s,
and the resident memory of the process after the test (the mmapped weights count once they
are touched). Only the native engine is loaded: the Python tokenizer (about 100 MB for a
Llama-3 vocabulary) would hide what the engine itself holds.

With --device cuda the forward pass runs on the GPU and the host's threads only look up
the token embeddings, so one run with one thread is the default there.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .cli_options import (
    ToolParser,
    add_cache_type_options,
    add_common_options,
    device,
)

if TYPE_CHECKING:
    from .batch import BatchContext
    from .model import Context, NativeModel

PROG = "bit-bench"


@dataclass
class Result:
    model: str
    file_mib: float
    device: str  # "cpu: avx2" etc., or "cuda: " and the GPU's name (llama-bench's backend)
    threads: int
    test: str
    tokens_per_second: list[float]
    rss_mib: float
    cache: str = ""  # "f16/f16": the KV cache's key and value types
    cache_mib: float = 0.0  # what the KV cache takes when full

    @property
    def mean(self) -> float:
        return statistics.fmean(self.tokens_per_second)

    @property
    def stdev(self) -> float:
        rates = self.tokens_per_second
        return statistics.stdev(rates) if len(rates) > 1 else 0.0


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas: {text!r}"
        ) from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected integers >= 0: {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = ToolParser(PROG, "Measure prompt processing (ppN) and generation (tgN) tokens/s.")
    parser.add_argument(
        "-m", "--model", required=True, action="append", help="GGUF model file (repeatable)"
    )
    parser.add_argument(
        "-p",
        "--n-prompt",
        type=_int_list,
        default=[128],
        help="prompt sizes, comma-separated (default: 128)",
    )
    parser.add_argument(
        "-n", "--n-gen", type=_int_list, default=[64], help="generation lengths (default: 64)"
    )
    parser.add_argument(
        "-d",
        "--n-depth",
        type=_int_list,
        default=[0],
        help="tokens already in the KV cache before each test, comma-separated (default: 0)",
    )
    parser.add_argument(
        "-npl",
        "--n-parallel",
        type=_int_list,
        default=[],
        help="also decode this many sequences at once, comma-separated (e.g. 1,2,4,8,16)",
    )
    parser.add_argument(
        "-t",
        "--threads",
        type=_int_list,
        default=None,
        help="thread counts (default: 1,2; with --device cuda: 1, as the GPU does the work)",
    )
    add_cache_type_options(parser, lists=True)
    parser.add_argument(
        "-r", "--repetitions", type=int, default=5, help="timed runs per test (default: 5)"
    )
    parser.add_argument(
        "-o", "--output", choices=("md", "json"), default="md", help="table or JSON"
    )
    add_common_options(parser)
    return parser


def _rss_mib() -> float:
    """Resident memory of this process now."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _timed_runs(run: Callable[[], None], repetitions: int) -> list[float]:
    run()  # warm-up: page in the weights, size the scratch buffers
    seconds = []
    for _ in range(repetitions):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return seconds


def prompt_rates(
    context: Context, tokens: list[int], repetitions: int, depth: int = 0
) -> list[float]:
    """Tokens/s of evaluating tokens in one batch after the first depth cached tokens."""
    seconds = _timed_runs(lambda: context.eval(tokens, depth), repetitions)
    return [len(tokens) / s for s in seconds]


def decode_rates(
    context: Context, tokens: list[int], repetitions: int, depth: int = 0
) -> list[float]:
    """Tokens/s of evaluating tokens one at a time after the first depth cached tokens."""

    def decode() -> None:
        for pos, token in enumerate(tokens, start=depth):
            context.eval([token], pos)

    seconds = _timed_runs(decode, repetitions)
    return [len(tokens) / s for s in seconds]


def parallel_decode_rates(batch: BatchContext, tokens: list[int], repetitions: int) -> list[float]:
    """Aggregate tokens/s of batch.n_seq sequences each evaluating tokens one at a time,
    all of them in one batch per step, from empty caches."""
    seqs = list(range(batch.n_seq))

    def decode() -> None:
        for pos, token in enumerate(tokens):
            batch.decode([token] * len(seqs), [pos] * len(seqs), seqs)

    seconds = _timed_runs(decode, repetitions)
    return [len(tokens) * len(seqs) / s for s in seconds]


Recorder = Callable[[str, list[float], "Context | BatchContext"], None]


def _bench_parallel(
    model: NativeModel,
    args: argparse.Namespace,
    tokens: list[int],
    cache_types: tuple[str | None, str | None],
    result: Recorder,
) -> None:
    for n_seq in (p for p in args.n_parallel if p):
        batch = model.new_batch_context(len(tokens), n_seq, *cache_types)
        rates = parallel_decode_rates(batch, tokens, args.repetitions)
        result(f"tg{len(tokens)} x{n_seq}", rates, batch)
        batch.close()


def _recorder(
    emit: Callable[[Result], None], name: str, file_mib: float, device: str, threads: int
) -> Recorder:
    """result(test, rates, context): emits one row of this model and thread count, with the
    cache types and bytes of the context the test ran in."""

    def result(test: str, rates: list[float], context: Context | BatchContext) -> None:
        row = Result(name, file_mib, device, threads, test, rates, _rss_mib())
        row.cache = f"{context.cache_type_k}/{context.cache_type_v}"
        row.cache_mib = context.cache_bytes / 2**20
        emit(row)

    return result


def bench_model(path: str, args: argparse.Namespace, emit: Callable[[Result], None]) -> None:
    from .model import NativeModel

    rng = np.random.default_rng(0)
    name = Path(path).name
    n_ctx = max(args.n_depth) + max(args.n_prompt + args.n_gen + [1])
    tests = [("pp", n, prompt_rates) for n in args.n_prompt if n] + [
        ("tg", n, decode_rates) for n in args.n_gen if n
    ]
    caches = [(k, v) for k in args.cache_type_k for v in args.cache_type_v]
    thread_counts = args.threads or ([1] if args.device == "cuda" else [1, 2])
    for threads in thread_counts:
        if threads < 1:
            raise ValueError("thread counts must be >= 1")
        with NativeModel(
            path, threads=threads, device=args.device, i2s_packing=args.i2s_packing
        ) as model:
            file_mib = model.info.file_bytes / 2**20
            result = _recorder(emit, name, file_mib, model.info.device, threads)
            for type_k, type_v in caches:
                context = model.new_context(n_ctx, type_k, type_v)
                for depth in args.n_depth:
                    if depth:  # each test then evaluates from position depth on
                        context.eval(rng.integers(0, model.info.n_vocab, depth).tolist(), 0)
                    for kind, n, measure in tests:
                        tokens = rng.integers(0, model.info.n_vocab, n).tolist()
                        rates = measure(context, tokens, args.repetitions, depth)
                        test = f"{kind}{n}" + (f" @ d{depth}" if depth else "")
                        result(test, rates, context)
                context.close()
                for n in (n for n in args.n_gen if n and args.n_parallel):
                    tokens = rng.integers(0, model.info.n_vocab, n).tolist()
                    _bench_parallel(model, args, tokens, (type_k, type_v), result)


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


class MarkdownTable:
    """Prints its header with the first row, so a run that fails first prints no table."""

    HEADER = ("model", "size", "device", "threads", "KV cache", "test", "t/s", "RSS")
    ALIGN = ("---", "---:", "---", "---:", "---", "---:", "---:", "---:")

    def __init__(self) -> None:
        self.rows = 0

    def __call__(self, r: Result) -> None:
        if self.rows == 0:
            print(_markdown_row(self.HEADER))
            print(_markdown_row(self.ALIGN))
        self.rows += 1
        cells = (
            r.model,
            f"{r.file_mib:.1f} MiB",
            r.device,
            str(r.threads),
            f"{r.cache} {r.cache_mib:.1f} MiB",
            r.test,
            f"{r.mean:.2f} ± {r.stdev:.2f}",
            f"{r.rss_mib:.0f} MiB",
        )
        print(_markdown_row(cells), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results: list[Result] = []
    try:
        if args.repetitions < 1:
            raise ValueError("--repetitions must be >= 1")
        args.device = device(args)
        table = MarkdownTable() if args.output == "md" else None

        def emit(result: Result) -> None:
            results.append(result)
            if table is not None:
                table(result)

        for path in args.model:
            bench_model(path, args, emit)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # one line, never a traceback
        print(f"{PROG}: error: {str(e) or type(e).__name__}", file=sys.stderr)
        return 1
    if args.output == "json":
        records = [dict(asdict(r), mean=r.mean, stdev=r.stdev) for r in results]
        print(json.dumps({"results": records, "peak_rss_mib": _peak_rss_mib()}, indent=2))
    else:
        print(f"\npeak RSS: {_peak_rss_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
