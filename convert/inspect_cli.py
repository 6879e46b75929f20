"""bit-inspect: the metadata and tensor table of any GGUF file (ours, llama.cpp's, bitnet.cpp's).

Tensor types this tool does not know are shown by their id, never refused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.gguf_reader import GGUFError, GGUFFile
from ..runtime.version import __version__

PROG = "bit-inspect"
SHOWN_ITEMS = 6  # array elements shown before "..."
MAX_STRING = 120


def _short(text: str) -> str:
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= MAX_STRING else text[: MAX_STRING - 3] + "..."


def format_value(value: Any) -> str:
    if isinstance(value, str):
        return repr(_short(value)) if len(value) > MAX_STRING or "\n" in value else repr(value)
    if isinstance(value, (list, np.ndarray)):
        items = [format_value(v) for v in list(value[:SHOWN_ITEMS])]
        more = f", ... ({len(value)} items)" if len(value) > SHOWN_ITEMS else ""
        return f"[{', '.join(items)}{more}]"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.9g}"
    return str(value)


def tensor_rows(gguf: GGUFFile) -> list[tuple[str, str, str, str]]:
    rows = []
    for t in gguf.tensors.values():
        type_name = t.type_name or f"unknown type {t.type_id}"
        nbytes = str(t.nbytes) if t.nbytes is not None else "?"
        rows.append((t.name, type_name, str(list(t.shape)), nbytes))
    return rows


def inspect(path: Path) -> None:
    with GGUFFile(path) as gguf:
        print(
            f"{path}: GGUF v{gguf.version}, {len(gguf.metadata)} metadata, "
            f"{len(gguf.tensors)} tensors, {gguf.file_size} bytes"
        )
        print()
        width = max((len(k) for k in gguf.metadata), default=0)
        for key, value in gguf.metadata.items():
            print(f"{key.ljust(width)}  {format_value(value)}")
        print()
        rows = [("tensor", "type", "shape", "bytes"), *tensor_rows(gguf)]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
        known = [t.nbytes for t in gguf.tensors.values() if t.nbytes is not None]
        print()
        print(
            f"total: {sum(known)} bytes in {len(known)} tensors of known types"
            + (
                f", {len(gguf.tensors) - len(known)} of unknown types"
                if len(known) < len(gguf.tensors)
                else ""
            )
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog=PROG, description="Show a GGUF file's metadata and tensors.", allow_abbrev=False
    )
    p.add_argument("file", type=Path, help="the GGUF file")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = p.parse_args(argv)
    try:
        inspect(args.file)
    except GGUFError as e:
        print(f"{PROG}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
