"""The pre-tokenizer table (runtime/tokenizer_pre.py): every family in it is checked by a
llama.cpp vocab with test vectors, those vectors can tell the families apart, llama.cpp itself
agrees on random text when it is installed, and names outside the table are refused."""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

from bitllm import Tokenizer
from bitllm.runtime.gguf_reader import GGUFFile
from bitllm.runtime.tokenizer_pre import NOT_SUPPORTED, PRE_TOKENIZERS

from .test_tokenizer import (
    FIXED_TEXTS,
    VECTOR_VOCABS,
    _llama_cpp_cases,
    _path,
    _random_texts,
    _tokenizer,
)

BPE_VECTOR_VOCABS = [
    name
    for name in VECTOR_VOCABS
    if name not in ("ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf")
]


@cache
def _metadata(name: str) -> dict[str, Any]:
    with GGUFFile(_path(name)) as f:
        return dict(f.metadata)


def _with_pre(name: str, pre: str | None) -> Tokenizer:
    metadata = dict(_metadata(name))
    if pre is None:
        del metadata["tokenizer.ggml.pre"]
    else:
        metadata["tokenizer.ggml.pre"] = pre
    return Tokenizer.from_metadata(metadata, source=name)


def test_every_pre_tokenizer_in_the_table_is_checked_by_a_vocab_with_test_vectors() -> None:
    """Except llama.cpp's fallback "default", which no vocab uses: it is checked against
    llama.cpp itself below."""
    checked = {PRE_TOKENIZERS[_tokenizer(name).pre].regexes for name in BPE_VECTOR_VOCABS}
    unchecked = {name for name, pre in PRE_TOKENIZERS.items() if pre.regexes not in checked}
    assert unchecked == {"default"}


@pytest.mark.parametrize("name", BPE_VECTOR_VOCABS)
def test_the_test_vectors_tell_the_pre_tokenizer_from_the_default_one(name: str) -> None:
    """So that test_tokenizer's exactness on them says something about the table."""
    assert _tokenizer(name).pre != "default"
    default = _with_pre(name, "default")
    assert any(default.encode(text) != ids for text, ids in _llama_cpp_cases(name))


def test_every_pre_tokenizer_in_the_table_builds_a_working_tokenizer() -> None:
    one_name_each = {pre: name for name, pre in PRE_TOKENIZERS.items()}
    assert len(one_name_each) >= 10
    for pre, name in one_name_each.items():
        tokenizer = _with_pre("ggml-vocab-gpt-2.gguf", name)
        ids = tokenizer.encode(FIXED_TEXTS[1])
        assert tokenizer.decode(ids) == FIXED_TEXTS[1], name
        assert tokenizer.add_bos == pre.add_bos, name


def test_unknown_and_unsupported_pre_tokenizers_are_refused_by_name() -> None:
    assert not NOT_SUPPORTED & PRE_TOKENIZERS.keys()
    with pytest.raises(ValueError, match=r"unknown tokenizer.ggml.pre 'no-such-pre'") as e:
        _with_pre("ggml-vocab-gpt-2.gguf", "no-such-pre")
    assert "\n" not in str(e.value)
    for pre in ("kimi-k2", "tekken", "gemma4"):
        with pytest.raises(ValueError, match=rf"tokenizer.ggml.pre '{pre}' is a llama.cpp "):
            _with_pre("ggml-vocab-gpt-2.gguf", pre)


def test_a_missing_pre_tokenizer_warns_and_uses_llama_cpps_default() -> None:
    with pytest.warns(UserWarning, match="no tokenizer.ggml.pre; using llama.cpp's 'default'"):
        missing = _with_pre("ggml-vocab-gpt-2.gguf", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        default = _with_pre("ggml-vocab-gpt-2.gguf", "default")
    texts = [text for text, _ in _llama_cpp_cases("ggml-vocab-gpt-2.gguf")]
    assert [missing.encode(t) for t in texts] == [default.encode(t) for t in texts]


@pytest.mark.parametrize(
    "name", ["ggml-vocab-bert-bge.gguf", "ggml-vocab-gemma-4.gguf"], ids=["bert", "gemma4"]
)
def test_vocabs_of_other_tokenizer_models_are_refused_in_one_line(name: str) -> None:
    metadata = _metadata(name)
    with pytest.raises(ValueError, match=r"tokenizer model '\w+'.* is not supported") as e:
        Tokenizer(_path(name))
    assert "\n" not in str(e.value)
    if "tokenizer.ggml.pre" in metadata:
        assert repr(metadata["tokenizer.ggml.pre"]) in str(e.value)


def _llama_cpp_vocab(path: str) -> Any:
    llama_cpp = pytest.importorskip("llama_cpp")
    return llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)


def _llama_cpp_diverges(name: str, text: str) -> bool:
    """deepseek-llm splits off "\\s?" + CJK punctuation; for whitespace before U+3000,
    llama.cpp's std::regex keeps the whitespace in the run before it while the `tokenizers`
    regex (the model's own tokenizer, which made the .out vectors) takes one along."""
    if name != "ggml-vocab-deepseek-llm.gguf":
        return False
    return any(a.isspace() and b == "\u3000" for a, b in zip(text, text[1:], strict=False))


@pytest.mark.parametrize("name", VECTOR_VOCABS)
def test_matches_llama_cpp_itself_on_random_text(name: str) -> None:
    """Runs where llama-cpp-python is installed (it is not a dependency)."""
    reference = _llama_cpp_vocab(str(_path(name)))
    tokenizer = _tokenizer(name)
    texts = FIXED_TEXTS + _random_texts(300, seed=5)
    compared = 0
    for text in texts:
        if _llama_cpp_diverges(name, text):
            continue
        data = text.encode()
        assert tokenizer.encode(text) == reference.tokenize(data, False, False), repr(text)
        with_bos = reference.tokenize(data, add_bos=True, special=False)
        assert tokenizer.encode(text, add_special=True) == with_bos, repr(text)
        compared += 1
    assert compared > 280


def _gguf_types(value: Any) -> tuple[gguf.GGUFValueType, gguf.GGUFValueType | None]:
    """(type, array item type) to write a value read back from a vocab file."""
    scalar = {bool: gguf.GGUFValueType.BOOL, int: gguf.GGUFValueType.UINT32}
    scalar |= {float: gguf.GGUFValueType.FLOAT32, str: gguf.GGUFValueType.STRING}
    if isinstance(value, np.generic):
        return gguf.GGUFValueType[value.dtype.name.upper()], None
    if isinstance(value, np.ndarray):
        return gguf.GGUFValueType.ARRAY, gguf.GGUFValueType[value.dtype.name.upper()]
    if isinstance(value, list):
        return gguf.GGUFValueType.ARRAY, scalar[type(value[0])]
    return scalar[type(value)], None


def _write_with_pre(name: str, pre: str | None, path: Path) -> Path:
    """A copy of a vocab file with tokenizer.ggml.pre changed (None: removed)."""
    metadata = dict(_metadata(name))
    metadata.pop("tokenizer.ggml.pre")
    if pre is not None:
        metadata["tokenizer.ggml.pre"] = pre
    writer = gguf.GGUFWriter(path, metadata.pop("general.architecture"))
    for key, value in metadata.items():
        types = _gguf_types(value)
        if isinstance(value, (np.ndarray, np.generic)):
            value = value.tolist()
        writer.add_key_value(key, value, *types)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    return path


def _assert_same_as_llama_cpp(path: Path, texts: list[str]) -> None:
    reference = _llama_cpp_vocab(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a missing pre-tokenizer warns
        tokenizer = Tokenizer(path)
    for text in texts:
        data = text.encode()
        assert tokenizer.encode(text) == reference.tokenize(data, False, False), repr(text)
        with_bos = reference.tokenize(data, add_bos=True, special=False)
        assert tokenizer.encode(text, add_special=True) == with_bos, repr(text)


@pytest.mark.parametrize("pre", ["default", None], ids=["default", "missing"])
def test_default_and_missing_pre_tokenizers_match_llama_cpp(
    pre: str | None, tmp_path: Path
) -> None:
    path = _write_with_pre("ggml-vocab-gpt-2.gguf", pre, tmp_path / "vocab.gguf")
    _assert_same_as_llama_cpp(path, FIXED_TEXTS + _random_texts(200, seed=7))


@pytest.mark.slow
def test_every_name_in_the_table_means_what_it_means_in_llama_cpp(tmp_path: Path) -> None:
    """Each name llama.cpp maps to one of the table's pre-tokenizers, written into a vocab file:
    llama.cpp and bitllm split alike; llama.cpp also knows the names bitllm refuses, and
    refuses an unknown one as bitllm does."""
    pytest.importorskip("llama_cpp")
    texts = FIXED_TEXTS + _random_texts(100, seed=3)
    for pre in PRE_TOKENIZERS:
        path = _write_with_pre("ggml-vocab-gpt-2.gguf", pre, tmp_path / f"{pre}.gguf")
        _assert_same_as_llama_cpp(path, texts)
    for pre in sorted(NOT_SUPPORTED):
        _llama_cpp_vocab(str(_write_with_pre("ggml-vocab-gpt-2.gguf", pre, tmp_path / "x.gguf")))
    with pytest.raises(ValueError):
        _llama_cpp_vocab(str(_write_with_pre("ggml-vocab-gpt-2.gguf", "no-such", tmp_path / "u")))
