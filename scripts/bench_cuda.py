"""CUDA kernel benchmark on BitNet-2B-4T's shapes, against the GPU's own copy bandwidth.

First a large device-to-device copy measures the card's bandwidth (bytes read + written).
Then, per type and shape:
  - gemv: one activation row, rotating over enough weight copies to exceed the L2 cache
    (so weights come from device memory); weight GB/s and % of the copy bandwidth;
  - gemv_l2: the same with one copy, which stays in the L2 cache (the per-launch floor);
  - gemm512: 512 activation rows (prompt processing), one weight copy; integer or float
    tera-operations per second (2 * rows * cols * n / time).
Times are CUDA-event means over a CUDA graph of many launches (as decode will run them),
with the activations already on the GPU (and quantized, for ternary, sign and quant types). Usage:

  python scripts/bench_cuda.py [--out results.md] [--types bt2 q4_0] [--shapes ffn_up head]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bitllm import kernels
from bitllm.runtime import cuda, tensor_types

SHAPES = {
    "ffn_up": (6912, 2560),
    "ffn_down": (2560, 6912),
    "attn_qo": (2560, 2560),
    "attn_kv": (640, 2560),
    "head": (128256, 2560),
}
BIT_TYPES = tensor_types.names("ternary", "sign")
HEAD_TYPES = ("q4_0", "q8_0", "f16")
COPY_BYTES = 1 << 30


@dataclass
class Row:
    type: str
    shape: str
    mode: str
    act_bits: int
    seconds: float
    nbytes: int
    ops: float

    def cells(self, copy_gbs: float) -> list[str]:
        gbs = self.nbytes / self.seconds / 1e9
        share = f"{100 * gbs / copy_gbs:.0f}%" if self.mode == "gemv" else ""
        tops = f"{self.ops / self.seconds / 1e12:.1f}" if self.ops else ""
        rows, cols = SHAPES[self.shape]
        return [
            self.type,
            f"I{self.act_bits}" if self.type in BIT_TYPES else "F32",
            f"{self.shape} {rows}x{cols}",
            self.mode,
            f"{self.seconds * 1e6:.1f}",
            f"{gbs:.0f}",
            share,
            tops,
        ]


def make_matrix(name: str, rows: int, cols: int, rng: np.random.Generator) -> kernels.PackedMatrix:
    kind = tensor_types.tensor_type(name).kind
    if kind in ("ternary", "sign"):
        low = -1 if kind == "ternary" else 0
        values = rng.integers(low, 2, size=(rows, cols), dtype=np.int8)
        if kind == "sign":
            values = values * 2 - 1
        scale = rng.uniform(0.5, 2.0, rows).astype(np.float32)
        return kernels.pack(name, values, scale)
    return kernels.quantize(name, rng.standard_normal((rows, cols), dtype=np.float32))


def bench(args: argparse.Namespace) -> list[Row]:
    rng = np.random.default_rng(0)
    rows_out = []
    for name in args.types:
        bit = name in BIT_TYPES
        for shape in args.shapes:
            if (shape == "head") == bit:
                continue
            rows, cols = SHAPES[shape]
            matrix = make_matrix(name, rows, cols, rng)
            copies = max(1, -(-4 * args.l2_mb * (1 << 20) // matrix.nbytes))
            for act_bits in args.act_bits if bit else [8]:
                gemv = cuda.bench_matmul(matrix, 1, act_bits, copies, args.iters)
                rows_out.append(Row(name, shape, "gemv", act_bits, gemv, matrix.nbytes, 0))
                print_row(rows_out[-1], args.copy_gbs)
                cached = cuda.bench_matmul(matrix, 1, act_bits, 1, args.iters)
                rows_out.append(Row(name, shape, "gemv_l2", act_bits, cached, matrix.nbytes, 0))
                print_row(rows_out[-1], args.copy_gbs)
                if shape != "head":
                    gemm = cuda.bench_matmul(matrix, 512, act_bits, 1, max(5, args.iters // 20))
                    ops = 2.0 * rows * cols * 512
                    rows_out.append(Row(name, shape, "gemm512", act_bits, gemm, matrix.nbytes, ops))
                    print_row(rows_out[-1], args.copy_gbs)
    return rows_out


HEADER = ["type", "act", "shape", "mode", "us/call", "weight GB/s", "% copy bw", "TOPS"]


def table(rows: list[Row], copy_gbs: float) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r.cells(copy_gbs)) + " |" for r in rows]
    return "\n".join(lines)


def print_row(row: Row, copy_gbs: float) -> None:
    print("  " + "  ".join(row.cells(copy_gbs)), flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--types", nargs="+", default=list(BIT_TYPES + HEAD_TYPES))
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    p.add_argument("--act-bits", nargs="+", type=int, default=[8, 16], choices=[8, 16])
    p.add_argument("--iters", type=int, default=300, help="timed launches per gemv figure")
    p.add_argument("--l2-mb", type=int, default=50, help="L2 cache size (H100: 50 MB)")
    p.add_argument("--out", type=Path, help="also write the table (markdown) here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not cuda.available():
        sys.exit(f"no GPU to benchmark: {cuda.reason()}")
    args.copy_gbs = 2 * COPY_BYTES / cuda.bench_copy(COPY_BYTES) / 1e9
    summary = f"device-to-device copy: {args.copy_gbs:.0f} GB/s (bytes read + written)"
    print(summary, flush=True)
    text = summary + "\n\n" + table(bench(args), args.copy_gbs)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
