"""Same-run speed comparison with llama.cpp (through llama-cpp-python).

Runs bitllm on OURS.gguf and llama.cpp on THEIRS.gguf (e.g. `bit-convert --outtype tq2_0`),
interleaved A B A B, with the same method for both: pp = one batch of 128 tokens from an empty
cache, tg = 64 single-token evaluations; only the last token's logits are computed.

  pip install llama-cpp-python     # builds llama.cpp from source (minutes)
  python scripts/bench_vs_llama_cpp.py OURS.gguf THEIRS.gguf --threads 1 2

llama.cpp knows BitNet-2B-4T's graph under the architecture name `bitnet`, not
`bitnet-b1.58`: `--rename-arch bitnet` writes a copy of THEIRS with the keys renamed (the
tensors are untouched, so the timing compares the same work). `--q6k-head` then has llama.cpp
itself requantize that copy to TQ2_0 with its default Q6_K output head (llama_model_quantize).

`--same-file` has bitllm run THEIRS too (after those steps): a file llama.cpp wrote, whose
TQ2_0 matrices bitllm repacks to bt2 as it opens. `--plain-cpu-buffers` loads llama.cpp with
its extra buffer types off: on a CPU reporting AMX_INT8, llama-cpp-python 0.3.36 repacks the
Q6_K head into its AMX buffer and then segfaults in decode (this project's Sapphire Rapids VM).
Load times (open to first logits of one token) are printed for both engines.

`--avx2` compares the AVX2 paths: bitllm runs with BITLLM_ISA=avx2, and the script refuses a
llama.cpp whose system info reports AVX-512 (build one with CMAKE_ARGS turning GGML_NATIVE and
the GGML_AVX512* options off, in its own venv, and run this script with that venv's python).
"""

from __future__ import annotations

import argparse
import os
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


def q6k_head(src: Path) -> Path:
    """TQ2_0 weights with llama.cpp's default head type for that file type (Q6_K)."""
    import llama_cpp

    dst = src.with_name(f"{src.stem}-q6k.gguf")
    if dst.exists():
        return dst
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_TQ2_0
    params.allow_requantize = True
    if llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params) != 0:
        raise SystemExit(f"llama_model_quantize failed on {src}")
    return dst


def require_avx2_only_llama_cpp() -> None:
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    if "AVX512 = 1" in info or "AVX512_VNNI = 1" in info:
        raise SystemExit(f"--avx2: this llama.cpp runs AVX-512 code ({info.strip()})")
    print(f"llama.cpp system info: {info.strip()}")


def report_library() -> None:
    """Which libbitllm runs, and a warning when the checkout's C sources are newer: a
    second environment's editable install keeps the library it was installed with (the
    llama.cpp-AVX2 venv once ran a day-old build this way)."""
    from bitllm.runtime.native import library_path

    lib = library_path()
    built = lib.stat().st_mtime
    print(f"bitllm library: {lib} (built {time.strftime('%Y-%m-%d %H:%M', time.localtime(built))})")
    native = Path(__file__).resolve().parent.parent / "native"
    newer = [f for f in native.rglob("*.[ch]") if f.stat().st_mtime > built]
    if newer:
        print(
            f"warning: {len(newer)} C sources are newer than that library (e.g. "
            f"{newer[0].relative_to(native.parent)}): rebuild, or set BITLLM_LIBRARY"
        )


def tokens(n: int) -> list[int]:
    return [int(v) for v in np.random.default_rng(0).integers(100, 30000, n)]


PLAIN_CPU_BUFFERS = False


def open_llama_cpp(**kwargs: object):  # noqa: ANN201 (llama_cpp.Llama)
    import llama_cpp
    from llama_cpp import llama as llama_module

    library = llama_module.llama_cpp
    defaults = library.llama_model_default_params

    def plain() -> object:
        params = defaults()
        params.use_extra_bufts = False
        return params

    if PLAIN_CPU_BUFFERS:
        library.llama_model_default_params = plain
    try:
        return llama_cpp.Llama(**kwargs)
    finally:
        library.llama_model_default_params = defaults


def llama_cpp_rates(path: Path, threads: int) -> tuple[float, float]:
    started = time.perf_counter()
    llm = open_llama_cpp(
        model_path=str(path),
        n_ctx=512,
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    prompt = tokens(128)
    llm.eval(prompt[:1])
    LOADS.setdefault("llama.cpp", []).append(time.perf_counter() - started)
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


LOADS: dict[str, list[float]] = {}  # engine -> seconds from open to the first token's logits


def bitllm_rates(path: Path, threads: int) -> tuple[float, float]:
    from bitllm.runtime.bench import decode_rates, prompt_rates
    from bitllm.runtime.model import NativeModel

    started = time.perf_counter()
    model = NativeModel(path, threads=threads)
    context = model.new_context(512)
    prompt = tokens(128)
    context.eval(prompt[:1], 0)  # positions are explicit: later evals overwrite this one
    LOADS.setdefault("bitllm", []).append(time.perf_counter() - started)
    pp = prompt_rates(context, prompt, 1)[0]
    tg = decode_rates(context, prompt[:64], 1)[0]
    return pp, tg


def require_files(*paths: Path | None) -> None:
    """A missing model is one line, before either engine starts (llama-cpp-python's own
    error is a traceback after minutes of the other engine's runs)."""
    for path in paths:
        if path is not None and not path.is_file():
            raise SystemExit(f"{path}: no such model file (paths are relative to {Path.cwd()})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ours", type=Path)
    p.add_argument("theirs", type=Path)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repetitions", type=int, default=3)
    p.add_argument("--rename-arch", default=None)
    p.add_argument("--q6k-head", action="store_true", help="requantize THEIRS to TQ2_0 + Q6_K")
    p.add_argument("--avx2", action="store_true", help="AVX2 paths only, in both engines")
    p.add_argument("--same-file", action="store_true", help="bitllm runs THEIRS too")
    p.add_argument("--plain-cpu-buffers", action="store_true", help="llama.cpp without AMX")
    args = p.parse_args()
    require_files(args.ours, args.theirs)
    global PLAIN_CPU_BUFFERS
    PLAIN_CPU_BUFFERS = args.plain_cpu_buffers
    if args.avx2:
        os.environ["BITLLM_ISA"] = "avx2"
        require_avx2_only_llama_cpp()
    theirs = rename_arch(args.theirs, args.rename_arch) if args.rename_arch else args.theirs
    if args.q6k_head:
        theirs = q6k_head(theirs)
    ours = theirs if args.same_file else args.ours
    report_library()
    print("| threads | engine | pp128 t/s | tg64 t/s |\n|---|---|---:|---:|")
    for threads in args.threads:
        runs: dict[str, list[tuple[float, float]]] = {"bitllm": [], "llama.cpp": []}
        for _ in range(args.repetitions):
            runs["llama.cpp"].append(llama_cpp_rates(theirs, threads))
            runs["bitllm"].append(bitllm_rates(ours, threads))
        medians = {
            k: (statistics.median(a for a, _ in v), statistics.median(b for _, b in v))
            for k, v in runs.items()
        }
        for engine, (pp, tg) in medians.items():
            print(f"| {threads} | {engine} | {pp:.1f} | {tg:.1f} |")
        mine, theirs_ = medians["bitllm"], medians["llama.cpp"]
        print(
            f"| {threads} | ratio | {mine[0] / theirs_[0]:.2f}x | {mine[1] / theirs_[1]:.2f}x |",
            flush=True,
        )
    for engine, seconds in LOADS.items():
        print(f"load to first token, {engine}: median {statistics.median(seconds):.2f} s")


if __name__ == "__main__":
    main()
