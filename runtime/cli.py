"""bit-run: generate text from a prompt, or chat, with a bitllm GGUF model.

Text streams to stdout as it is generated; timings and notes go to stderr in llama.cpp's
shape. In chat mode a conversation that outgrows the context drops its oldest turns (the
system message stays) and says so on stderr. Errors end the program with one line on
stderr and exit status 1; Ctrl-C or Ctrl-D at the chat prompt, or /exit, leave with 0.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .cli_options import (
    ToolParser,
    add_cache_type_options,
    add_common_options,
    device,
)
from .sampling import REPEAT_LAST_N

if TYPE_CHECKING:
    from .model import GenerationStats, Model

PROG = "bit-run"
EXIT_COMMANDS = ("/exit", "/quit")


def build_parser() -> argparse.ArgumentParser:
    parser = ToolParser(PROG, "Generate text or chat with a bitllm GGUF model.")
    parser.add_argument("-m", "--model", required=True, help="GGUF model file")
    prompt = parser.add_mutually_exclusive_group()
    prompt.add_argument("-p", "--prompt", help="prompt text (in chat mode: the first message)")
    prompt.add_argument(
        "-f", "--file", help="read the prompt from this file (one trailing newline dropped)"
    )
    parser.add_argument(
        "-e",
        "--escape",
        action="store_true",
        help="turn \\n, \\t, \\r, \\', \\\" and \\\\ in -p, -sys and -r into the characters",
    )
    parser.add_argument(
        "-n",
        "--n-predict",
        type=int,
        default=None,
        help="tokens to generate; -1: until the end of text or a full context "
        "(default: 128, in chat mode -1)",
    )
    parser.add_argument(
        "--temp", type=float, default=0.8, help="temperature; 0 is greedy (default: 0.8)"
    )
    parser.add_argument(
        "--top-k", type=int, default=40, help="top-k sampling; 0 disables (default: 40)"
    )
    parser.add_argument(
        "--top-p", type=float, default=0.95, help="top-p sampling; 1 disables (default: 0.95)"
    )
    parser.add_argument(
        "--min-p", type=float, default=0.05, help="min-p sampling; 0 disables (default: 0.05)"
    )
    parser.add_argument(
        "--repeat-penalty",
        type=float,
        default=1.0,
        help="penalty for tokens seen in the last --repeat-last-n; 1 disables (default: 1)",
    )
    parser.add_argument(
        "--repeat-last-n",
        type=int,
        default=REPEAT_LAST_N,
        metavar="N",
        help=f"tokens the penalty looks at; 0: none, -1: the whole context "
        f"(default: {REPEAT_LAST_N})",
    )
    parser.add_argument(
        "-s", "--seed", type=int, default=-1, help="random seed; -1: a fresh one (default: -1)"
    )
    parser.add_argument(
        "-r",
        "--reverse-prompt",
        "--stop",
        dest="stop",
        action="append",
        default=None,
        help="stop at this text (repeatable)",
    )
    parser.add_argument(
        "-t", "--threads", type=int, default=None, help="threads (default: physical cores)"
    )
    parser.add_argument(
        "-c",
        "--ctx-size",
        type=int,
        default=0,
        help="context size; 0: the trained one, at most 4096 (default: 0)",
    )
    add_cache_type_options(parser)
    add_common_options(parser)
    parser.add_argument(
        "-cnv", "--chat", action="store_true", help="chat interactively (/exit or Ctrl-D leaves)"
    )
    parser.add_argument(
        "-sys", "--system-prompt", "--system", dest="system", help="system message for chat mode"
    )
    parser.add_argument(
        "--chat-template",
        help="a Jinja chat template to use instead of the model's",
    )
    parser.add_argument(
        "--jinja",
        action="store_true",
        help="accepted for llama.cpp compatibility: chat templates are always Jinja here",
    )
    parser.add_argument(
        "--no-display-prompt", action="store_true", help="do not echo the prompt before the text"
    )
    parser.add_argument("--verbose", action="store_true", help="print a model summary")
    return parser


@dataclass
class Totals:
    """Timings summed over a session (one generation, or every chat turn)."""

    prompt_tokens: int = 0
    prompt_seconds: float = 0.0
    generated_tokens: int = 0
    generation_seconds: float = 0.0

    def add(self, stats: GenerationStats) -> None:
        self.prompt_tokens += stats.prompt_evaluated
        self.prompt_seconds += stats.prompt_seconds
        self.generated_tokens += stats.generated_tokens
        self.generation_seconds += stats.generation_seconds


def _rate_line(label: str, seconds: float, count: int, unit: str) -> str:
    ms = seconds * 1000
    per_token = ms / count if count else 0.0
    per_second = count / seconds if seconds > 0 else 0.0
    return (
        f"{PROG}: {label:<16} = {ms:10.2f} ms / {count:5d} {unit} "
        f"({per_token:8.2f} ms per token, {per_second:8.2f} tokens per second)"
    )


def print_timings(err: TextIO, load_seconds: float, totals: Totals, wall_seconds: float) -> None:
    print(file=err)
    print(f"{PROG}: {'load time':<16} = {load_seconds * 1000:10.2f} ms", file=err)
    print(
        _rate_line("prompt eval time", totals.prompt_seconds, totals.prompt_tokens, "tokens"),
        file=err,
    )
    print(
        _rate_line("eval time", totals.generation_seconds, totals.generated_tokens, "runs  "),
        file=err,
    )
    print(f"{PROG}: {'total time':<16} = {wall_seconds * 1000:10.2f} ms", file=err)


def _sampling(args: argparse.Namespace) -> dict[str, Any]:
    if args.seed < -1:
        raise ValueError(f"--seed must be >= 0, or -1 for a fresh one (got {args.seed})")
    if args.repeat_last_n < -1:
        raise ValueError(
            f"--repeat-last-n must be >= 0, or -1 for the whole context (got {args.repeat_last_n})"
        )
    return {
        "temperature": args.temp,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "min_p": args.min_p,
        "repeat_penalty": args.repeat_penalty,
        "repeat_last_n": args.repeat_last_n,
        "seed": None if args.seed == -1 else args.seed,
        "stop": args.stop,
    }


def _max_tokens(args: argparse.Namespace) -> int | None:
    if args.n_predict is None:
        return None if args.chat else 128
    if args.n_predict < -1:
        raise ValueError(f"-n must be >= 0, or -1 for no limit (got {args.n_predict})")
    return None if args.n_predict == -1 else args.n_predict


def _read_prompt(args: argparse.Namespace) -> str | None:
    """-p as given, or -f's text without its final newline, as llama.cpp reads them."""
    if args.file is None:
        return args.prompt
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read the prompt file {args.file}: {e}") from e
    return text.removesuffix("\n")


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "'": "'", '"': '"', "\\": "\\"}


def unescape(text: str) -> str:
    """llama.cpp's -e: \\n, \\t, \\r, \\', \\" and \\\\ become the characters; other
    backslashes stay."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[0]), text)


def _apply_escapes(args: argparse.Namespace) -> None:
    if not args.escape:
        return
    if args.prompt is not None:
        args.prompt = unescape(args.prompt)
    if args.system is not None:
        args.system = unescape(args.system)
    if args.stop:
        args.stop = [unescape(stop) for stop in args.stop]


def _write_stream(pieces: Iterator[str], out: TextIO, written: list[str]) -> None:
    """Writes pieces as they come, keeping them in written (which holds the text so far
    when Ctrl-C stops the stream early)."""
    try:
        for piece in pieces:
            out.write(piece)
            out.flush()
            written.append(piece)
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()


def run_prompt(model: Model, args: argparse.Namespace, prompt: str, totals: Totals) -> None:
    out = sys.stdout
    pieces = model.generate(prompt, max_tokens=_max_tokens(args), stream=True, **_sampling(args))
    if not args.no_display_prompt:
        out.write(prompt)
        out.flush()
    try:
        _write_stream(pieces, out, [])  # type: ignore[arg-type]
    finally:
        totals.add(model.last_stats)
    out.write("\n")
    if model.last_stats.stop_reason == "context full":
        print(f"{PROG}: the context ({model.n_ctx} tokens) is full", file=sys.stderr)


class ChatSession:
    """The conversation of an interactive chat, trimmed from the front when it outgrows
    the model's context."""

    def __init__(self, model: Model, args: argparse.Namespace, totals: Totals) -> None:
        self.model = model
        self.args = args
        self.totals = totals
        self.system = [{"role": "system", "content": args.system}] if args.system else []
        self.turns: list[dict[str, str]] = []

    def messages(self) -> list[dict[str, str]]:
        return self.system + self.turns

    def _fit(self) -> bool:
        """Drops the oldest turns until the conversation leaves room for a reply. False
        when even the newest message alone does not fit."""
        dropped = 0
        while len(self.model.chat_tokens(self.messages())) >= self.model.n_ctx:
            if len(self.turns) <= 1:
                self.turns.clear()
                return False
            del self.turns[0]
            dropped += 1
        if dropped:
            print(
                f"{PROG}: the context ({self.model.n_ctx} tokens) is full: "
                f"dropped the {dropped} oldest message(s)",
                file=sys.stderr,
            )
        return True

    def reply(self, text: str) -> None:
        """Streams the answer to text. Ctrl-C at any point of the turn ends it early; the
        partial answer stays in the conversation."""
        self.turns.append({"role": "user", "content": text})
        answer: list[str] = []
        previous = self.model.last_stats
        try:
            if not self._fit():
                print(
                    f"{PROG}: that message does not fit in the context ({self.model.n_ctx} tokens)",
                    file=sys.stderr,
                )
                return
            pieces = self.model.chat(
                self.messages(),
                stream=True,
                max_tokens=_max_tokens(self.args),
                **_sampling(self.args),
            )
            _write_stream(pieces, sys.stdout, answer)  # type: ignore[arg-type]
            print()
        except KeyboardInterrupt:
            print(f"\n{PROG}: reply interrupted", file=sys.stderr)
            self.turns.append({"role": "assistant", "content": "".join(answer)})
            return
        finally:
            if self.model.last_stats is not previous:
                self.totals.add(self.model.last_stats)
        self.turns.append({"role": "assistant", "content": "".join(answer)})
        if self.model.last_stats.stop_reason == "context full":
            print(f"{PROG}: the context is full; older messages will be dropped", file=sys.stderr)


def _read_line(prompt: str) -> str | None:
    """One line of user input; None when the user leaves (Ctrl-D, Ctrl-C or /exit)."""
    try:
        line = input(prompt)
    except (EOFError, KeyboardInterrupt):
        print()
        return None
    return None if line.strip() in EXIT_COMMANDS else line


def run_chat(model: Model, args: argparse.Namespace, first: str | None, totals: Totals) -> None:
    if sys.stdin.isatty():
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
        print(f"{PROG}: chatting; /exit or Ctrl-D to leave, Ctrl-C stops a reply", file=sys.stderr)
    session = ChatSession(model, args, totals)
    if first:
        session.reply(first)
    while (line := _read_line("> ")) is not None:
        if line.strip():
            session.reply(line)


def _print_summary(model: Model) -> None:
    from . import kernels

    summary = dict(model.summary(), isa=kernels.default_isa())
    width = max(len(key) for key in summary)
    for key, value in summary.items():
        print(f"{PROG}: {key:<{width}} = {value}", file=sys.stderr)


INT32_MAX = 2**31 - 1  # the native library counts positions and threads in int32


def _check_sizes(args: argparse.Namespace) -> None:
    if not 0 <= args.ctx_size <= INT32_MAX:
        raise ValueError(
            f"-c must be from 0 (the trained context) to {INT32_MAX} (got {args.ctx_size})"
        )
    if args.threads is not None and not 1 <= args.threads <= INT32_MAX:
        raise ValueError(f"-t (threads) must be from 1 to {INT32_MAX} (got {args.threads})")


def _warn_about_context(model: Model) -> None:
    trained = model.info.n_ctx_train
    if model.n_ctx > trained:
        print(
            f"{PROG}: warning: -c {model.n_ctx} is larger than the {trained} tokens the model "
            "was trained on; text past that is likely to degrade",
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> None:
    from .model import Model
    from .sampling import SamplingParams

    started = time.perf_counter()
    _apply_escapes(args)
    prompt = _read_prompt(args)
    if prompt is None and not args.chat:
        raise ValueError("give a prompt with -p or -f, or chat with --chat")
    if args.system is not None and not args.chat:
        raise ValueError("--system needs --chat")
    _check_sizes(args)
    _max_tokens(args)
    SamplingParams(**{k: v for k, v in _sampling(args).items() if k != "stop"})
    totals = Totals()
    with Model(
        args.model,
        threads=args.threads,
        n_ctx=args.ctx_size or None,
        device=device(args),
        cache_type_k=args.cache_type_k,
        cache_type_v=args.cache_type_v,
        i2s_packing=args.i2s_packing,
    ) as model:
        _warn_about_context(model)
        if args.chat_template is not None:  # the model reads its template on first use
            model.metadata["tokenizer.chat_template"] = args.chat_template
        if args.verbose:
            _print_summary(model)
        try:
            if args.chat:
                run_chat(model, args, prompt, totals)
            else:
                run_prompt(model, args, prompt or "", totals)
        except KeyboardInterrupt:
            print_timings(sys.stderr, model.load_seconds, totals, time.perf_counter() - started)
            raise
        print_timings(sys.stderr, model.load_seconds, totals, time.perf_counter() - started)


# The library's words for its parameters, and what a bit-run user typed for them.
_CLI_TERMS = (
    ("open the model with a larger n_ctx", "raise -c"),
    ("use a larger n_ctx", "raise -c"),
)


def in_cli_terms(message: str) -> str:
    for library, cli in _CLI_TERMS:
        message = message.replace(library, cli)
    return message


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="replace")  # a terminal that cannot show a character gets "?"
    try:
        run(args)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout left: point stdout at /dev/null so the exit flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # a user-facing tool: one line, never a traceback
        message = in_cli_terms(str(e) or type(e).__name__)
        print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
