"""Mutates a valid GGUF many times and opens each mutant with the native loader; a
mutant that opens is also run for two tokens. Every call must return (success or an
error with a message): a crash kills this process, which the calling test reports.

    python -m tests.model.fuzz_gguf MODEL.gguf WORKDIR ITERATIONS SEED
"""

from __future__ import annotations

import struct
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from .capi import NativeModel

HUGE = [1 << 63, (1 << 64) - 1, 1 << 32, (1 << 32) - 1, 1 << 40, 0]


def header_end(data: bytes) -> int:
    """End of the tensor infos: the bytes the loader parses (the rest is tensor data)."""
    end, at = 0, data.find(b"blk.")
    while at >= 0:
        end = at
        at = data.find(b"blk.", at + 1)
    return min(len(data), end + 200)


def mutate(data: bytes, header: int, rng: np.random.Generator) -> tuple[bytes, str]:
    out = bytearray(data)
    kind = rng.integers(0, 6)
    in_header = rng.random() < 0.9
    where = int(rng.integers(0, header if in_header else len(data)))
    if kind == 0:
        size = int(rng.integers(0, header if in_header else len(data)))
        return bytes(out[:size]), f"truncate to {size}"
    if kind == 1:
        count = int(rng.integers(1, 9))
        spots = rng.integers(0, header if in_header else len(data), count)
        for s in spots:
            out[s] ^= 1 << int(rng.integers(0, 8))
        return bytes(out), f"flip bits at {list(map(int, spots))}"
    if kind == 2:
        value = HUGE[int(rng.integers(0, len(HUGE)))]
        out[where : where + 8] = struct.pack("<Q", value)[: len(out) - where]
        return bytes(out), f"u64 {value} at {where}"
    if kind == 3:
        value = int(rng.choice([0, 1, 2, 7, 9, 13, 255, 1024, 1026, 0xFFFFFFFF]))
        out[where : where + 4] = struct.pack("<I", value)[: len(out) - where]
        return bytes(out), f"u32 {value} at {where}"
    if kind == 4:
        count = int(rng.integers(1, 16))
        del out[where : where + count]
        return bytes(out), f"delete {count} bytes at {where}"
    junk = rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8).tobytes()
    out[where:where] = junk
    return bytes(out), f"insert {len(junk)} bytes at {where}"


def main() -> int:
    source, workdir, iterations, seed = (
        Path(sys.argv[1]),
        Path(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
    )
    data = source.read_bytes()
    header = header_end(data)
    rng = np.random.default_rng(seed)
    mutant = workdir / "mutant.gguf"
    outcomes: Counter[str] = Counter()
    for i in range(iterations):
        mutated, how = mutate(data, header, rng)
        mutant.write_bytes(mutated)
        print(f"{i}: {how}", file=sys.stderr, flush=True)  # the last line names a crash
        try:
            model = NativeModel(mutant, threads=1)
            model.context(8).eval([0, 1])
            outcomes["opened"] += 1
        except ValueError as e:
            if not str(e):
                print(f"{i}: an error without a message ({how})")
                return 1
            outcomes["error"] += 1
    print(dict(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
