"""bit-perplexity: perplexity of a model over a text, and KL divergence against a reference.

    bit-perplexity -m model.gguf -f text.txt                       # Final estimate: PPL = ...
    bit-perplexity -m ref.gguf -f text.txt --kl-divergence-base ref.kld      # also save logits
    bit-perplexity -m other.gguf --kl-divergence-base ref.kld --kl-divergence  # compare

The method and the output lines are llama-perplexity's (bitllm.runtime.perplexity says how
it scores); the base file's format is in bitllm.runtime.perplexity_file. Results go to
stdout, a progress bar and notes to stderr; an error is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from . import perplexity as ppl
from .perplexity_file import KldBaseFile, KldBaseWriter, KldFileError

if TYPE_CHECKING:
    from .model import Model

PROG = "bit-perplexity"
DEFAULT_CTX = 512  # llama-perplexity's usual chunk; smaller when the model was trained shorter
DEFAULT_BATCH = 512


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Perplexity of a model over a text (llama-perplexity's method: "
        "consecutive chunks of -c tokens, the second half of each scored), and the KL "
        "divergence of its token distributions from a reference run's.",
    )
    p.add_argument("-m", "--model", required=True, help="GGUF model file")
    p.add_argument(
        "-f",
        "--file",
        help="text file to evaluate (with --kl-divergence: optional, "
        "checked against the tokens in the base file)",
    )
    p.add_argument(
        "-c",
        "--ctx-size",
        type=_positive,
        default=None,
        help=f"tokens per chunk (default: {DEFAULT_CTX}, or the model's training "
        "context if smaller; with --kl-divergence: the base file's)",
    )
    p.add_argument(
        "--chunks",
        type=_positive,
        default=None,
        help="evaluate only the first N chunks (default: all)",
    )
    p.add_argument(
        "-b",
        "--batch-size",
        type=_positive,
        default=DEFAULT_BATCH,
        help=f"tokens per forward pass (default: {DEFAULT_BATCH})",
    )
    p.add_argument(
        "-t", "--threads", type=_positive, default=None, help="threads (default: physical cores)"
    )
    p.add_argument(
        "--kl-divergence-base",
        metavar="FILE",
        help="without --kl-divergence: save this run's log-probabilities to FILE "
        "(which must not exist); with it: the reference to compare against",
    )
    p.add_argument(
        "--kl-divergence",
        action="store_true",
        help="compare the model with --kl-divergence-base: KLD, top-1 agreement",
    )
    return p


def _read_text(path: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"text file not found: {file}")
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ppl.PerplexityError(f"{file} is not UTF-8 text (byte {e.start})") from None


def _bos(model: Model) -> int | None:
    tok = model.tokenizer
    return tok.bos_id if tok.add_bos and tok.bos_id is not None else None


def _progress(total: int) -> Callable[[float | None], None]:
    """A progress bar over the chunks on stderr; call it with the running PPL per chunk."""
    from tqdm import tqdm

    bar = tqdm(total=total, unit="chunk", desc=PROG, file=sys.stderr, leave=False)

    def step(value: float | None) -> None:
        if value is None:
            bar.close()
            return
        bar.set_postfix_str(f"PPL {value:.4f}", refresh=False)
        bar.update(1)

    return step


def _text_chunks(model: Model, args: argparse.Namespace) -> np.ndarray:
    n_ctx = args.ctx_size or min(DEFAULT_CTX, model.info.n_ctx_train or DEFAULT_CTX)
    ppl.check_ctx(n_ctx, model.info.n_ctx_train)
    tokens = model.tokenize(_read_text(args.file), add_special=True, parse_special=False)
    return ppl.split_chunks(tokens, n_ctx, args.chunks)


def _base_chunks(model: Model, base: KldBaseFile, args: argparse.Namespace) -> np.ndarray:
    base.check_model(model.n_vocab)
    if args.ctx_size is not None and args.ctx_size != base.n_ctx:
        raise KldFileError(
            f"{base.path} holds chunks of {base.n_ctx} tokens, not -c {args.ctx_size}"
        )
    ppl.check_ctx(base.n_ctx, model.info.n_ctx_train)
    if args.chunks is not None and args.chunks > base.n_chunks:
        raise KldFileError(
            f"{base.path} holds {base.n_chunks} chunks, fewer than --chunks {args.chunks}"
        )
    chunks = base.chunks[: args.chunks or base.n_chunks]
    if args.file is not None:
        tokens = model.tokenize(_read_text(args.file), add_special=True, parse_special=False)
        mine = np.asarray(tokens[: chunks.size], dtype=np.int32)
        if mine.size < chunks.size or not np.array_equal(mine, chunks.ravel()):
            raise KldFileError(f"{base.path} was made from another text than {args.file}")
    return chunks


def run(model: Model, args: argparse.Namespace) -> list[str]:
    """Evaluates and returns the lines to print."""
    base = KldBaseFile(args.kl_divergence_base) if args.kl_divergence else None
    chunks = _text_chunks(model, args) if base is None else _base_chunks(model, base, args)
    n_chunks, n_ctx = chunks.shape
    writer = None
    if args.kl_divergence_base and base is None:
        writer = KldBaseWriter(args.kl_divergence_base, model.n_vocab, chunks)
    print(
        f"{PROG}: calculating perplexity over {n_chunks} chunks, n_ctx={n_ctx}, "
        f"batch_size={args.batch_size}",
        file=sys.stderr,
    )
    context = model.new_context(n_ctx)
    running = ppl.Perplexity()
    compared: list[ppl.TokenComparison] = []
    progress = _progress(n_chunks)
    try:
        log_probs = ppl.iter_log_probs(context, chunks, _bos(model), args.batch_size)
        for index, (chunk, rows) in enumerate(zip(chunks, log_probs, strict=True)):
            tokens = ppl.targets(chunk)
            running.add(ppl.token_nll(rows, tokens))
            if writer is not None:
                writer.write(rows)
            if base is not None:
                compared.append(ppl.compare(base.chunk(index), rows, tokens))
            progress(running.value)
        if writer is not None:
            writer.commit()
    finally:
        progress(None)
        if writer is not None:
            writer.abort()
        context.close()
    per_chunk = _running_values(running, n_chunks)
    lines = [",".join(f"[{i + 1}]{v:.4f}" for i, v in enumerate(per_chunk)), ppl.ppl_line(running)]
    if compared:
        lines += [""] + ppl.kld_report(ppl.summarize(ppl.concat(compared)))
    return lines


def _running_values(running: ppl.Perplexity, n_chunks: int) -> list[float]:
    """The PPL over the first 1, 2, ... chunks, as llama-perplexity prints them."""
    nll = running.nll.reshape(n_chunks, -1)
    sums = np.cumsum(nll.sum(axis=1))
    counts = np.arange(1, n_chunks + 1) * nll.shape[1]
    return [float(np.exp(s / n)) for s, n in zip(sums, counts, strict=True)]


def _check_args(args: argparse.Namespace) -> None:
    if args.kl_divergence and not args.kl_divergence_base:
        raise ppl.PerplexityError("--kl-divergence needs --kl-divergence-base FILE")
    if not args.kl_divergence and args.file is None:
        raise ppl.PerplexityError("no text: give -f FILE")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_args(args)
        from .model import Model

        with Model(args.model, threads=args.threads) as model:
            lines = run(model, args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # one line, never a traceback
        print(f"{PROG}: error: {str(e) or type(e).__name__}", file=sys.stderr)
        return 1
    print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
