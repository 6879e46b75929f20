"""Same-run speed comparison with llama.cpp (through llama-cpp-python).

Runs bitllm on OURS.gguf and llama.cpp on THEIRS.gguf (e.g. `bit-convert --outtype tq2_0`),
interleaved A B A B, with the same method for both: pp = one batch of 128 tokens from an empty
cache, tg = 64 single-token evaluations; only the last token's logits are computed.

  pip install llama-cpp-python     # builds llama.cpp from source (minutes)
  python scripts/bench_vs_llama_cpp.py OURS.gguf THEIRS.gguf --threads 1 2

llama.cpp knows BitNet-2B-4T's graph under the architecture name `bitnet`, not
`bitnet-b1.58`: `--rename-arch bitnet` writes a copy of THEIRS with the keys renamed (the
tensors are untouched, so the timing compares the same work).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np


def rename_arch(src: Path, arch: str) -> Path:
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    dst = src.with_name(f"{src.stem}-{arch}.gguf")
    if dst.exists():
        return dst
    reader = GGUFReader(src)
    old = reader.get_field("general.architecture").contents()
    writer = GGUFWriter(dst, arch=arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        name = field.name.replace(old + ".", arch + ".", 1)
        kind = field.types[0]
        sub_type = field.types[-1] if kind == GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), kind, sub_type=sub_type)
    for t in reader.tensors:
        writer.add_tensor(t.name, t.data, raw_shape=t.data.shape, raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dst


def tokens(n: int) -> list[int]:
    return [int(v) for v in np.random.default_rng(0).integers(100, 30000, n)]


def llama_cpp_rates(path: Path, threads: int) -> tuple[float, float]:
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=512,
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    prompt = tokens(128)
    llm.eval(prompt[:8])  # warm-up: page in the weights
    llm.reset()
    started = time.perf_counter()
    llm.eval(prompt)
    pp = len(prompt) / (time.perf_counter() - started)
    llm.reset()
    started = time.perf_counter()
    for token in prompt[:64]:
        llm.eval([token])
    tg = 64 / (time.perf_counter() - started)
    return pp, tg


def bitllm_rates(path: Path, threads: int) -> tuple[float, float]:
    from bitllm.runtime.bench import decode_rates, prompt_rates
    from bitllm.runtime.model import NativeModel

    model = NativeModel(path, threads=threads)
    context = model.new_context(512)
    prompt = tokens(128)
    pp = prompt_rates(context, prompt, 1)[0]
    tg = decode_rates(context, prompt[:64], 1)[0]
    return pp, tg


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ours", type=Path)
    p.add_argument("theirs", type=Path)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repetitions", type=int, default=3)
    p.add_argument("--rename-arch", default=None)
    args = p.parse_args()
    theirs = rename_arch(args.theirs, args.rename_arch) if args.rename_arch else args.theirs
    print("| threads | engine | pp128 t/s | tg64 t/s |\n|---|---|---:|---:|")
    for threads in args.threads:
        runs: dict[str, list[tuple[float, float]]] = {"bitllm": [], "llama.cpp": []}
        for _ in range(args.repetitions):
            runs["llama.cpp"].append(llama_cpp_rates(theirs, threads))
            runs["bitllm"].append(bitllm_rates(args.ours, threads))
        medians = {
            k: (statistics.median(a for a, _ in v), statistics.median(b for _, b in v))
            for k, v in runs.items()
        }
        for engine, (pp, tg) in medians.items():
            print(f"| {threads} | {engine} | {pp:.1f} | {tg:.1f} |")
        ours, theirs_ = medians["bitllm"], medians["llama.cpp"]
        print(
            f"| {threads} | ratio | {ours[0] / theirs_[0]:.2f}x | {ours[1] / theirs_[1]:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
