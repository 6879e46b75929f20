"""bit-convert: a BitNet b1.58 or OneBit checkpoint as published -> bitllm GGUF."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..runtime.version import __version__
from .errors import ConvertError
from .families import FAMILIES
from .interrupts import Terminated, signals_interrupt
from .plan import Plan, build_plan
from .targets import (
    DEFAULT_HEAD,
    HEAD_TYPES,
    OUTTYPES,
    SIGN_TYPE,
    TERNARY_TYPES,
    bits_per_weight,
)
from .writer import remove_stale_partials, write_gguf

PROG = "bit-convert"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        description="Convert a BitNet b1.58 or OneBit checkpoint (safetensors, as published) "
        "to a bitllm GGUF. config.json and the tokenizer files are read from SRC's folder.",
    )
    p.add_argument(
        "src",
        type=Path,
        help="a .safetensors file, a *.safetensors.index.json, or the model folder",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        help="the GGUF file to write (default: MODEL-OUTTYPE.gguf in the model folder, "
        "MODEL being the folder's name)",
    )
    p.add_argument(
        "--outtype",
        choices=OUTTYPES,
        default=None,
        help="type of the ternary weights: "
        + ", ".join(f"{name} ({bits_per_weight(name):g} bits per weight)" for name in TERNARY_TYPES)
        + f"; default {TERNARY_TYPES[0]}, the fastest for batches (a server) and on AVX2, "
        "where bt1 runs as bt2; bt1 is 12%% smaller and decodes one stream 5-28%% faster on "
        "AVX-512 (BENCHMARKS.md). tq2_0 / tq1_0: llama.cpp's own "
        "ternary types, for running the file in llama.cpp (rows must be multiples of 256); "
        f"f16 / f32: dense reference. OneBit sign weights are always {SIGN_TYPE} for "
        f"{' / '.join(TERNARY_TYPES)}. "
        "Bonsai (a scale per group of columns): q1_0, q2_0_g128 or q2_0, by default the "
        "smallest that holds the weights exactly; or f16.",
    )
    p.add_argument(
        "--head-type",
        choices=HEAD_TYPES,
        default=None,
        help=f"type of the token embedding and the output head. Default {DEFAULT_HEAD}: "
        "measured against an f32 head on every test family (BENCHMARKS.md, 'Quality'), its KL "
        "divergence stays in llama.cpp's q8_0 / q6_K class, and no smaller type's does (q6_k "
        "costs 2-9x as much, of llama.cpp's q5_K_M class; q4_0 35-200x). For Bonsai, whose "
        "embedding already is sign or trit x a group scale, the default is the group type "
        "that holds it exactly (q1_0 / q2_0_g128 / q2_0): no loss, and q1_0 reads a seventh "
        "of q8_0's bytes. q6_k / q4_0 read 23%% / 47%% fewer head bytes than q8_0, for "
        "memory-bound machines, at that loss; f16 / bf16 / f32: reference",
    )
    p.add_argument(
        "--family", choices=sorted(FAMILIES), help="override the family detected from config.json"
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (every tensor, sources, type, bytes) and write nothing",
    )
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p.parse_args(argv)


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def print_plan(plan: Plan) -> None:
    h = plan.hyper
    print(f"source:   {plan.folder}")
    print(f"family:   {plan.family.name} ({plan.family.description})")
    print(
        f"arch:     {plan.arch}, {h.layers} layers, hidden {h.hidden}, ffn {h.ffn}, "
        f"heads {h.heads}/{h.kv_heads}, vocab {h.vocab}, "
        f"{'tied' if h.tied else 'separate'} head"
    )
    print(
        f"tokenizer: {plan.vocab.source.name} ({plan.vocab.model}, pre {plan.vocab.pre}, "
        f"{len(plan.vocab.tokens)} tokens)"
    )
    print(f"types:    linear {plan.outtype}, head {plan.head_type}")
    print()
    rows = [("source", "dtype shape", "target", "type", "shape", "bytes")]
    for t in plan.tensors:
        first, *rest = t.sources
        source = first.name + (
            f" (+{', '.join(s.name.rsplit('.', 1)[-1] for s in rest)})" if rest else ""
        )
        rows.append(
            (source, first.describe(), t.name, t.target.name, str(list(t.shape)), str(t.nbytes))
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    source_bytes = sum(s.nbytes for t in plan.tensors for s in t.sources)
    print()
    print(
        f"total: {len(plan.tensors)} tensors, {_mb(plan.nbytes)} "
        f"(from {_mb(source_bytes)} of source tensors)"
    )


def _error(message: str) -> None:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)


def default_output(src: Path, outtype: str) -> Path:
    """MODEL-OUTTYPE.gguf in the model folder, as llama.cpp's converter names its output."""
    folder = (src if src.is_dir() else src.parent).resolve()
    return folder / f"{folder.name}-{outtype}.gguf"


def _warn(plan: Plan) -> None:
    for warning in plan.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)


def _finish(plan: Plan, args: argparse.Namespace, out: Path, started: float) -> None:
    """Prints the plan (--dry-run) or writes it to out (write_gguf checks out first, so a
    refused output is the only line printed)."""
    if args.dry_run:
        _warn(plan)
        print_plan(plan)
        return
    for stale in remove_stale_partials(out.parent):
        print(f"{PROG}: removed {stale}, left by an interrupted conversion", file=sys.stderr)
    write_gguf(plan, out, force=args.force, progress=sys.stderr.isatty())
    _warn(plan)
    print(
        f"{PROG}: wrote {out} ({len(plan.tensors)} tensors, {_mb(out.stat().st_size)}) "
        f"in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = None
    try:
        with signals_interrupt():
            started = time.perf_counter()
            plan = build_plan(args.src, args.outtype, args.head_type, args.family)
            out = args.output or default_output(args.src, plan.outtype)
            _finish(plan, args, out, started)
        return 0
    except ConvertError as e:
        _error(str(e))
        return 1
    except Terminated as e:
        _error(f"stopped by {e}; nothing written")
        return 128 + e.signum
    except KeyboardInterrupt:
        _error("interrupted; nothing written")
        return 130
    finally:
        if plan is not None:
            plan.checkpoint.close()


if __name__ == "__main__":
    sys.exit(main())
