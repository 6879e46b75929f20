"""bit-bench: prompt-processing and generation speed of a model, in llama-bench's shape.

ppN evaluates N random tokens in one batch from an empty cache; tgN evaluates N tokens one
at a time from an empty cache (the decode loop without sampling). Each test runs once to
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

from bitllm.runtime.cli_options import ToolParser, add_common_options, device

if TYPE_CHECKING:
    from bitllm.runtime.model import Context

PROG = "bit-bench"


@dataclass
class Result:
    model: str
    file_mib: float
    device: str  # "cpu", or "cuda: " and the GPU's name (llama-bench's backend)
    threads: int
    test: str
    tokens_per_second: list[float]
    rss_mib: float

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
        "-t",
        "--threads",
        type=_int_list,
        default=None,
        help="thread counts (default: 1,2; with --device cuda: 1, as the GPU does the work)",
    )
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


def prompt_rates(context: Context, tokens: list[int], repetitions: int) -> list[float]:
    """Tokens/s of evaluating tokens in one batch from an empty cache."""
    seconds = _timed_runs(lambda: context.eval(tokens, 0), repetitions)
    return [len(tokens) / s for s in seconds]


def decode_rates(context: Context, tokens: list[int], repetitions: int) -> list[float]:
    """Tokens/s of evaluating tokens one at a time from an empty cache."""

    def decode() -> None:
        for pos, token in enumerate(tokens):
            context.eval([token], pos)

    seconds = _timed_runs(decode, repetitions)
    return [len(tokens) / s for s in seconds]


def bench_model(path: str, args: argparse.Namespace, emit: Callable[[Result], None]) -> None:
    from bitllm.runtime.model import NativeModel

    rng = np.random.default_rng(0)
    name = Path(path).name
    n_ctx = max(args.n_prompt + args.n_gen + [1])
    tests = [("pp", n, prompt_rates) for n in args.n_prompt if n] + [
        ("tg", n, decode_rates) for n in args.n_gen if n
    ]
    thread_counts = args.threads or ([1] if args.device == "cuda" else [1, 2])
    for threads in thread_counts:
        if threads < 1:
            raise ValueError("thread counts must be >= 1")
        with NativeModel(path, threads=threads, device=args.device) as model:
            file_mib = model.info.file_bytes / 2**20
            context = model.new_context(n_ctx)
            for kind, n, measure in tests:
                tokens = rng.integers(0, model.info.n_vocab, n).tolist()
                rates = measure(context, tokens, args.repetitions)
                test = f"{kind}{n}"
                emit(Result(name, file_mib, model.info.device, threads, test, rates, _rss_mib()))


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


class MarkdownTable:
    """Prints its header with the first row, so a run that fails first prints no table."""

    HEADER = ("model", "size", "device", "threads", "test", "t/s", "RSS")
    ALIGN = ("---", "---:", "---", "---:", "---:", "---:", "---:")

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
