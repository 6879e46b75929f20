"""llama.cpp as the oracle: files quantized by llama.cpp's own quantizer, logits from its own
graph (llama-cpp-python). Other tests call these helpers directly or through the fixtures in
oracle_fixtures.py (llama_cpp_file, llama_cpp_logits).

A file name says how it was made: `f16` / `bf16` come straight from convert_hf_to_gguf.py;
a quantized type comes from llama_model_quantize on the f16 file, either `pure` (every 2-D
tensor in that type, so a file tests one type) or as llama.cpp mixes it by default (what people
download: e.g. a q6_k head and a q4_k embedding beside tq2_0 layers).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bitllm.runtime.gguf_reader import GGUFFile

CONVERTER_TYPES = ("f16", "bf16")  # written by convert_hf_to_gguf.py
# our name -> llama.cpp's LLAMA_FTYPE_MOSTLY_* whose main type it is
QUANT_FTYPES = {
    "tq1_0": "TQ1_0",
    "tq2_0": "TQ2_0",
    "q1_0": "Q1_0",
    "q2_0": "Q2_0",
    "q4_0": "Q4_0",
    "q8_0": "Q8_0",
    "q4_k": "Q4_K_M",
    "q5_k": "Q5_K_M",
    "q6_k": "Q6_K",
}
QUANT_THREADS = 2
FileFactory = Callable[..., Path]  # the llama_cpp_file fixture (oracle_fixtures.py)
# ggml's type ids (ggml/include/ggml.h) of the types these files hold; the installed gguf-py
# may predate the newest ones (gguf 0.19.0 has no Q2_0)
GGML_TYPE_NAMES = {
    0: "f32",
    1: "f16",
    2: "q4_0",
    8: "q8_0",
    12: "q4_k",
    13: "q5_k",
    14: "q6_k",
    30: "bf16",
    34: "tq1_0",
    35: "tq2_0",
    41: "q1_0",
    42: "q2_0",
}


def quantize(source: Path, out: Path, type_name: str, pure: bool) -> Path:
    """llama_model_quantize of an f16 GGUF to `type_name` (a QUANT_FTYPES key)."""
    import llama_cpp

    if type_name not in QUANT_FTYPES:
        raise ValueError(f"unknown type {type_name!r} (one of {', '.join(QUANT_FTYPES)})")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{QUANT_FTYPES[type_name]}")
    params.pure = pure
    params.nthread = QUANT_THREADS
    status = llama_cpp.llama_model_quantize(
        str(source).encode(), str(out).encode(), ctypes.byref(params)
    )
    if status != 0 or not out.is_file():
        raise RuntimeError(f"llama_model_quantize to {type_name} failed ({status}) on {source}")
    return out


@contextmanager
def _plain_cpu_buffers() -> Iterator[None]:
    """Models loaded inside get llama.cpp's plain CPU buffers only (use_extra_bufts off).

    On a CPU that reports AMX_INT8, llama.cpp (0.3.36's build here) repacks q4_0, q8_0 and
    k-quant tensors into its AMX buffer, and llama_decode then dies of SIGSEGV on this
    project's VM (2026-12-02: every such file, a pure q6_k one included). llama.cpp's Llama
    class has no argument for the switch, so its default model parameters are wrapped while
    a model loads."""
    from llama_cpp import llama as llama_module

    library = llama_module.llama_cpp
    defaults = library.llama_model_default_params

    def without_extra_buffers() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    library.llama_model_default_params = without_extra_buffers
    try:
        yield
    finally:
        library.llama_model_default_params = defaults


def llama_cpp_logits(path: Path, tokens: list[int], threads: int = 2) -> np.ndarray:
    """llama.cpp's logits [tokens, vocab] (float32) for `tokens` evaluated from position 0."""
    import llama_cpp

    with _plain_cpu_buffers():
        model = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=max(64, len(tokens)),
            n_threads=threads,
            logits_all=True,
            verbose=False,
        )
    try:
        model.eval(tokens)
        return np.array(model.scores[: len(tokens)], dtype=np.float32)
    finally:
        model.close()


def tensor_types(path: Path) -> dict[str, str]:
    """Tensor name -> ggml type name ("id N" for one not in GGML_TYPE_NAMES)."""
    with GGUFFile(path) as file:
        return {
            info.name: GGML_TYPE_NAMES.get(info.type_id, f"id {info.type_id}")
            for info in file.tensors.values()
        }
