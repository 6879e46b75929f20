"""Fixtures of the llama.cpp oracle, for tests marked slow. tests/interop/conftest.py exposes
them to this folder; a test elsewhere gets them by listing this module in the root conftest's
pytest_plugins.

llama_cpp_file(type_name, arch="llama", pure=True) -> Path of a GGUF that llama.cpp wrote:
  convert_hf_to_gguf.py to f16 (or bf16), then llama_model_quantize to `type_name`
  (llama_cpp_oracle.QUANT_FTYPES); pure=False keeps llama.cpp's default mix of types.
  arch: "llama" or "qwen3" (oracle_checkpoints.py), or "bitnet" (the 1bitLLM fixture checkpoint,
  which llama.cpp's converter ternarizes). Each file is made once per session.
llama_cpp_logits(path, tokens) -> llama.cpp's float32 logits [tokens, vocab], memoized.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.checkpoints import BLOCK_ALIGNED
from tests.fixtures.plugin import Factory
from tests.interop import llama_cpp_oracle as oracle
from tests.interop.llama_cpp_oracle import FileFactory
from tests.interop.llama_cpp_source import convert_checkpoint, converter_tree
from tests.interop.oracle_checkpoints import write_oracle_checkpoint


@pytest.fixture(scope="session")
def llama_cpp_tree(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    cache = getattr(request.config, "cache", None)
    folder = Path(cache.mkdir("bitllm-llama-cpp")) if cache else tmp_path_factory.mktemp("lcpp")
    return converter_tree(folder)


@pytest.fixture(scope="session")
def oracle_checkpoint(
    checkpoint_factory: Factory, tokenizer_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    made: dict[str, Path] = {}

    def make(arch: str) -> Path:
        if arch not in made:
            if arch == "bitnet":
                made[arch] = checkpoint_factory("1bitllm", BLOCK_ALIGNED)
            else:
                folder = tmp_path_factory.mktemp(f"oracle-{arch}")
                made[arch] = write_oracle_checkpoint(arch, folder, tokenizer_cache)
        return made[arch]

    return make


@pytest.fixture(scope="session")
def llama_cpp_file(
    llama_cpp_tree: Path,
    oracle_checkpoint: Callable[[str], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> FileFactory:
    made: dict[tuple[str, str, bool], Path] = {}
    folder = tmp_path_factory.mktemp("llama-cpp-files")

    def make(type_name: str, arch: str = "llama", pure: bool = True) -> Path:
        key = (type_name, arch, pure)
        if key in made:
            return made[key]
        if type_name in oracle.CONVERTER_TYPES:
            out = folder / f"{arch}-{type_name}.gguf"
            made[key] = convert_checkpoint(llama_cpp_tree, oracle_checkpoint(arch), out, type_name)
        else:
            mix = "pure" if pure else "mix"
            out = folder / f"{arch}-{type_name}-{mix}.gguf"
            made[key] = oracle.quantize(make("f16", arch), out, type_name, pure)
        return made[key]

    return make


@pytest.fixture(scope="session")
def llama_cpp_logits() -> Callable[[Path, list[int]], np.ndarray]:
    made: dict[tuple[Path, tuple[int, ...]], np.ndarray] = {}

    def logits(path: Path, tokens: list[int]) -> np.ndarray:
        key = (path, tuple(tokens))
        if key not in made:
            made[key] = oracle.llama_cpp_logits(path, tokens)
        return made[key]

    return logits
