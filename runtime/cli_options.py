"""What bit-run and bit-bench share with llama.cpp's tools: the parser's behaviour (no
abbreviated options, so `-ngl 99` is never read as `-n gl`; one-line usage errors) and the
options every tool takes. A new common option goes in add_common_options once.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from .native import device_names, i2s_packings


class ToolParser(argparse.ArgumentParser):
    """An ArgumentParser that takes options only as spelled and says errors in one line."""

    def __init__(self, prog: str, description: str) -> None:
        super().__init__(prog=prog, description=description, allow_abbrev=False)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """--device, -ngl/--n-gpu-layers, --no-mmap, --i2s-packing and --version."""
    from .version import __version__

    parser.add_argument(
        "--device",
        choices=device_names(),
        default=None,
        help="where the forward pass runs; cuda: an NVIDIA GPU (default: cpu, or as -ngl says)",
    )
    parser.add_argument(
        "-ngl",
        "--n-gpu-layers",
        type=int,
        default=None,
        metavar="N",
        help="llama.cpp's GPU offload: the whole model runs on one device here, so N > 0 "
        "means --device cuda and 0 means --device cpu",
    )
    parser.add_argument(
        "--no-mmap",
        action="store_true",
        help="accepted for llama.cpp compatibility and ignored: the weights are always "
        "memory-mapped from the file (read-only, shared, paged in on first use)",
    )
    parser.add_argument(
        "--i2s-packing",
        choices=i2s_packings(),
        default=i2s_packings()[0],
        help="which of bitnet.cpp's packings the file's I2_S tensors hold; the file does not "
        "say (default: %(default)s, what bitnet.cpp's converter writes)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")


def device(args: argparse.Namespace) -> str:
    """The device that --device and -ngl ask for; a ValueError when they disagree."""
    if args.n_gpu_layers is not None and args.n_gpu_layers < 0:
        raise ValueError(f"-ngl must be >= 0 (got {args.n_gpu_layers})")
    from_ngl = None if args.n_gpu_layers is None else ("cuda" if args.n_gpu_layers else "cpu")
    if args.device is not None and from_ngl is not None and args.device != from_ngl:
        raise ValueError(
            f"-ngl {args.n_gpu_layers} means {from_ngl}, but --device is {args.device}"
        )
    return args.device or from_ngl or "cpu"


def add_cache_type_options(parser: argparse.ArgumentParser, lists: bool = False) -> None:
    """-ctk/--cache-type-k and -ctv/--cache-type-v, llama.cpp's KV cache type options: one
    name each, or with lists (bit-bench) comma-separated names to try in turn."""
    for short, name, what in (("-ctk", "k", "keys"), ("-ctv", "v", "values")):
        parser.add_argument(
            short,
            f"--cache-type-{name}",
            type=_cache_type_list if lists else _cache_type,
            default=[None] if lists else None,
            metavar="TYPE[,TYPE...]" if lists else "TYPE",
            help=f"KV cache type{'s' if lists else ''} of the {what}: f16, q8_0 or f32 "
            "(default: the device's, f16 on the CPU)",
        )


def _cache_type(text: str) -> str:
    from .native_context import cache_types

    if text not in cache_types():
        choices = ", ".join(cache_types())
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {choices})")
    return text


def _cache_type_list(text: str) -> list[str | None]:
    return [_cache_type(v.strip()) for v in text.split(",") if v.strip()]
