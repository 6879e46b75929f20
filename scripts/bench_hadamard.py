"""What Bonsai 2's activation rotation costs: a copy of a GGUF with a prism.hadamard contract
on every projection and the head (explicit random signs, the largest power-of-two block that
divides every width), timed with bit-bench beside the original, interleaved.

The copy's weights are the original's, not folded: its logits mean nothing, its speed is what a
folded model of that shape costs (the rotation is the only extra work). Usage:

  python scripts/bench_hadamard.py MODEL.gguf [--rounds 2] [-- bit-bench options]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np


def largest_block(widths: list[int]) -> int:
    block = 1
    while all(w % (block * 2) == 0 for w in widths) and block < 4096:
        block *= 2
    return block


def with_contract(src: Path) -> Path:
    from gguf import GGUFValueType, GGUFWriter

    from bitllm.runtime.gguf_reader import GGUFFile

    dst = src.with_name(f"{src.stem}-hadamard.gguf")
    if dst.exists():
        return dst
    reader = GGUFFile(src)
    arch = reader.metadata["general.architecture"]
    matrices = {n: t.shape[1] for n, t in reader.tensors.items() if len(t.shape) == 2}
    folded = [n for n in matrices if n.startswith("blk.") or n == "output.weight"]
    widths = sorted({matrices[n] for n in folded})
    rng = np.random.default_rng(0)
    signs = [int(s) for w in widths for s in rng.choice([-1, 1], w)]
    writer = GGUFWriter(dst, arch=arch)
    for key, (kind, sub_type) in reader.value_types.items():
        if key != "general.architecture":
            value = reader.metadata[key]
            value = value.tolist() if isinstance(value, np.ndarray) else value
            writer.add_key_value(key, value, kind, sub_type=sub_type)
    array, i32, string = GGUFValueType.ARRAY, GGUFValueType.INT32, GGUFValueType.STRING
    keys = {
        "version": (1, GGUFValueType.UINT32),
        "block_size": (largest_block(widths), GGUFValueType.UINT32),
        "transform": ("normalized-sylvester-walsh-hadamard", string),
        "axis": ("input-last-dimension", string),
        "sign_mode": ("explicit", string),
        "sign_widths": (widths, array, i32),
        "sign_values": (signs, array, i32),
        "weight_names": (folded, array, string),
    }
    for key, (value, kind, *sub) in keys.items():
        writer.add_key_value(f"prism.hadamard.{key}", value, kind, *sub)
    for name, t in reader.tensors.items():
        data = np.asarray(reader.tensor_bytes(name)).view(np.int8)
        writer.add_tensor(name, data, raw_shape=t.shape, raw_dtype=t.type_id)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dst


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("model", type=Path)
    p.add_argument("--rounds", type=int, default=2)
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args, extra = p.parse_args(argv[:split]), argv[split + 1 :]
    folded = with_contract(args.model)
    for r in range(args.rounds):
        for path in (args.model, folded) if r % 2 == 0 else (folded, args.model):
            print(f"# round {r + 1}: {path.name}", flush=True)
            subprocess.run(["bit-bench", "-m", str(path), *extra], check=True, stdout=sys.stdout)


if __name__ == "__main__":
    main()
