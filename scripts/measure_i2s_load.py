"""Load time and memory of a bitnet.cpp I2_S file against the same weights in bitllm's bt2.

Makes the I2_S file from a bitllm bt2 GGUF of 2B-4T's graph (tests/interop/i2s_writer.py), then
opens each file in a fresh process and reports the open's wall time and the process's resident
memory split into file pages (RssFile) and its own memory (RssAnon), right after the open and
after one decode step:

    python scripts/make_bitnet_2b4t_checkpoint.py /tmp/bitnet-2b4t/checkpoint
    bit-convert /tmp/bitnet-2b4t/checkpoint -o /tmp/bitnet-2b4t/model.gguf --head-type f16
    python scripts/measure_i2s_load.py /tmp/bitnet-2b4t/model.gguf --threads 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _rss() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 1024  # MiB
    return fields


def measure(path: str, threads: int, packing: str) -> dict:
    """In this process: open the model, then evaluate one token."""
    from bitllm.runtime.model import NativeModel

    before = _rss()
    started = time.perf_counter()
    model = NativeModel(path, threads=threads, i2s_packing=packing)
    opened = time.perf_counter() - started
    after_open = _rss()
    context = model.new_context(16)
    context.eval([128000], 0)
    return {
        "file": path,
        "open_s": round(opened, 3),
        "rss_mib_before": before,
        "rss_mib_after_open": after_open,
        "rss_mib_after_one_token": _rss(),
        "file_mib": round(Path(path).stat().st_size / 2**20, 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bt2_gguf", type=Path, help="bitllm GGUF of 2B-4T's graph (bt2, f16 head)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--packing", default="x86", choices=("x86", "arm", "x86-1x4"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.threads, args.packing)))
        return 0
    i2s = args.bt2_gguf.with_name(args.bt2_gguf.stem + f"-i2s-{args.packing}.gguf")
    if not i2s.exists():
        from tests.interop.i2s_writer import i2s_from_gguf

        started = time.perf_counter()
        i2s_from_gguf(args.bt2_gguf, i2s, "bitnet-b1.58", args.packing)  # type: ignore[arg-type]
        print(f"wrote {i2s} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    for path in (args.bt2_gguf, i2s):
        command = [
            sys.executable,
            __file__,
            str(args.bt2_gguf),
            "--child",
            str(path),
            "--threads",
            str(args.threads),
            "--packing",
            args.packing,
        ]
        print(subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
