"""bitllm.Tokenizer against llama.cpp's expected ids, transformers' tokenizer for the same
GGUF, round trips, streaming of split characters, and special tokens."""

from __future__ import annotations

import os
import random
from functools import cache
from pathlib import Path

import gguf
import numpy as np
import pytest

import bitllm
from bitllm import Tokenizer
from bitllm.runtime.gguf_reader import GGUFFile
from bitllm.runtime.tokenizer import TokenType

from ..conftest import SHARED

# llama.cpp's vocab files (models/ggml-vocab-*.gguf with their .inp/.out test vectors);
# BITLLM_VOCAB_DIR points at another copy of them, e.g. a llama.cpp checkout's models/
VOCAB = Path(os.environ.get("BITLLM_VOCAB_DIR", SHARED / "vocab"))
BPE = "ggml-vocab-llama-bpe.gguf"
SPM = "ggml-vocab-llama-spm.gguf"
# every llama.cpp vocab with test vectors whose tokenizer bitllm runs (one per pre-tokenizer
# family: the runtime's table of pre-tokenizers is checked against these)
VECTOR_VOCABS = [
    f"ggml-vocab-{name}.gguf"
    for name in (
        *("llama-bpe", "llama-spm", "phi-3", "qwen2", "qwen35", "gpt-2", "mpt", "falcon"),
        *("starcoder", "refact", "command-r", "deepseek-llm", "deepseek-coder"),
    )
]
SEPARATOR = "\n__ggml_vocab_test__\n"


def _path(name: str) -> Path:
    path = VOCAB / name
    if not path.exists():
        pytest.skip(f"{path} is not here (shared/ sits beside the repository)")
    return path


@cache
def _tokenizer(name: str) -> Tokenizer:
    return Tokenizer(_path(name))


def _llama_cpp_cases(name: str) -> list[tuple[str, list[int]]]:
    """llama.cpp's test-tokenizer-0 files: every text in .inp ends with SEPARATOR (the
    text itself excludes that newline); .out has one line of ids per text."""
    path = _path(name)
    texts = path.with_name(name + ".inp").read_text(encoding="utf-8").split(SEPARATOR)
    assert texts[-1] == "", "the .inp file ends with a separator"
    lines = path.with_name(name + ".out").read_text(encoding="utf-8").split("\n")
    assert lines[-1] == ""
    assert len(texts) == len(lines)
    return [
        (t, [int(i) for i in line.split()]) for t, line in zip(texts[:-1], lines[:-1], strict=True)
    ]


@pytest.mark.parametrize("name", VECTOR_VOCABS)
def test_matches_llama_cpp_expected_ids(name: str) -> None:
    tokenizer = _tokenizer(name)
    cases = _llama_cpp_cases(name)
    assert len(cases) > 40
    for text, expected in cases:
        assert tokenizer.encode(text) == expected, repr(text)


@pytest.mark.parametrize("name", VECTOR_VOCABS)
def test_decode_round_trips(name: str) -> None:
    tokenizer = _tokenizer(name)
    for text, _ in _llama_cpp_cases(name):
        assert tokenizer.decode(tokenizer.encode(text)) == text, repr(text)
        with_special = tokenizer.encode(text, add_special=True)
        assert tokenizer.decode(with_special, skip_special=True) == text, repr(text)


def _random_texts(n: int, seed: int) -> list[str]:
    pool = [
        *"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        *" \n\t\r'.,!?;:-_()[]{}<>\"/\\@#$%^&*+=|~`",
        *"éèüöñçßøåæœ工作我想在天中文日本語한국어",
        *["😁", "🦙", "👍🏽", "❤️", "\u200d", "\u0301", "\u00a0", "\u3000"],
        *["'s", "'ll", "'VE", " the", "  ", "\n\n", "1234567"],
    ]
    rng = random.Random(seed)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 40))) for _ in range(n)]


FIXED_TEXTS = [
    "Hello world",
    "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～",
    "naïve café — “quotes” and ‘single’",
    "\t\ttabs\r\nCRLF\n\n\n",
    "I'm you're THEY'LL it's we'D",
    "3333333 x 12.5e-3",
    "🦙🦙🦙 llama 👨‍👩‍👧",
    "ዓለም ሰላም Привет мир",
    "def f(x):\n    return x ** 2  # comment",
    "".join(chr(c) for c in range(0x21, 0x250)),
]


@cache
def _hf_tokenizer(name: str) -> object:
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(str(VOCAB), gguf_file=name)


@pytest.mark.parametrize("name", [BPE, SPM])
def test_matches_the_transformers_tokenizer_of_the_same_file(name: str) -> None:
    tokenizer = _tokenizer(name)
    hf = _hf_tokenizer(name)
    texts = FIXED_TEXTS + _random_texts(300, seed=11)
    if name == SPM:
        # transformers' tokenizer built from a GGUF drops one leading space where llama.cpp
        # (and the .out file above: " Hello world" -> 29871 15043 3186) keeps it.
        texts = [t for t in texts if not t[:1].isspace()]
    for text in texts:
        assert tokenizer.encode(text) == hf.encode(text, add_special_tokens=False), repr(text)


def test_bos_eos_follow_the_metadata_and_llama_cpp_defaults() -> None:
    bpe, spm = _tokenizer(BPE), _tokenizer(SPM)
    # Neither file says add_bos_token/add_eos_token for llama-bpe; llama.cpp adds BOS for it.
    assert (bpe.add_bos, bpe.add_eos) == (True, False)
    assert (spm.add_bos, spm.add_eos) == (True, False)
    assert bpe.encode("Hello world", add_special=True) == [128000, 9906, 1917]
    assert spm.encode("Hello world", add_special=True) == [1, 15043, 3186]
    assert spm.encode("", add_special=True) == [1] and spm.encode("") == []
    assert (bpe.bos_id, bpe.eos_id, bpe.eot_id) == (128000, 128001, 128009)
    assert (spm.bos_id, spm.eos_id, spm.unk_id, spm.eot_id) == (1, 2, 0, None)
    assert bpe.eog_ids == {128001, 128009} and spm.eog_ids == {2}
    assert bpe.is_eog(128009) and not bpe.is_eog(128000)


def test_special_token_texts_are_parsed_only_when_asked() -> None:
    bpe, spm = _tokenizer(BPE), _tokenizer(SPM)
    text = "<|begin_of_text|>Hi<|eot_id|>"
    assert bpe.encode(text, parse_special=True) == [128000, 13347, 128009]
    as_text = bpe.encode(text)
    assert 128000 not in as_text and bpe.decode(as_text) == text
    # A "llama" vocabulary puts a space after a special token, as at the start of the text.
    assert spm.encode("<s>Hello</s>", parse_special=True) == [1, 15043, 2]
    as_text = spm.encode("<s>Hello")
    assert 1 not in as_text and spm.decode(as_text) == "<s>Hello"


def test_decode_renders_or_skips_special_tokens() -> None:
    bpe, spm = _tokenizer(BPE), _tokenizer(SPM)
    ids = [128000, 9906, 128009]
    assert bpe.decode(ids) == "<|begin_of_text|>Hello<|eot_id|>"
    assert bpe.decode(ids, skip_special=True) == "Hello"
    assert spm.decode([1, 15043, 2]) == "<s> Hello</s>"
    assert spm.decode([1, 15043, 2], skip_special=True) == "Hello"
    assert spm.decode([15043, 29892, 3186]) == "Hello, world"
    with pytest.raises(ValueError, match="token id 32000 is out of range"):
        spm.decode([32000])


def _with_user_token(name: str, token: str) -> Tokenizer:
    with GGUFFile(_path(name)) as f:
        metadata = dict(f.metadata)
    metadata["tokenizer.ggml.tokens"] = [*metadata["tokenizer.ggml.tokens"], token]
    metadata["tokenizer.ggml.token_type"] = np.append(
        metadata["tokenizer.ggml.token_type"], np.int32(TokenType.USER_DEFINED)
    )
    if "tokenizer.ggml.scores" in metadata:
        metadata["tokenizer.ggml.scores"] = np.append(metadata["tokenizer.ggml.scores"], 0.0)
    return Tokenizer.from_metadata(metadata, source=name)


@pytest.mark.parametrize("name", [BPE, SPM])
def test_user_defined_tokens_are_always_split_out(name: str) -> None:
    tokenizer = _with_user_token(name, "<tool_call>")
    tool = tokenizer.n_vocab - 1
    ids = tokenizer.encode("run<tool_call>now")
    assert ids.count(tool) == 1
    # as llama.cpp, a "llama" vocabulary puts its leading space after every special token
    expected = "run<tool_call> now" if name == SPM else "run<tool_call>now"
    assert tokenizer.decode(ids) == expected
    assert tokenizer.decode(ids, skip_special=True) == expected


def _whole_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize("name", [BPE, SPM])
@pytest.mark.parametrize("text", ["😁", "🦙 工作 naïve ❤️", "👨‍👩‍👧 ዓለም 天～", "a\u0301b"])
def test_stream_decoder_never_emits_a_broken_character(name: str, text: str) -> None:
    tokenizer = _tokenizer(name)
    ids = tokenizer.encode(text)
    decoder = tokenizer.decoder()
    chunks = [decoder.feed(i) for i in ids]
    assert decoder.flush() == ""
    # the stream keeps the space a "llama" vocabulary puts before the text
    assert "".join(chunks) == (" " + text if name == SPM else text)
    assert all("\ufffd" not in chunk for chunk in chunks)
    split = [i for i in ids if not _whole_utf8(tokenizer.token_to_piece(i))]
    if text == "😁":
        assert split, "the emoji is expected to span tokens"
    if split:
        assert "" in chunks  # held back until the character was whole


def test_stream_decoder_holds_spm_byte_tokens_until_the_character_is_whole() -> None:
    spm = _tokenizer(SPM)
    byte_ids = [spm.vocab[f"<0x{b:02X}>"] for b in "🦙".encode()]
    decoder = spm.decoder()
    assert [decoder.feed(i) for i in byte_ids] == ["", "", "", "🦙"]
    assert decoder.feed(byte_ids[0]) == ""
    assert decoder.flush() == "\ufffd"  # an incomplete character at the end


def test_stream_decoder_skips_special_tokens_when_asked() -> None:
    bpe = _tokenizer(BPE)
    decoder = bpe.decoder(skip_special=True)
    assert [decoder.feed(i) for i in (128000, 9906, 128009)] == ["", "Hello", ""]


def test_loads_from_a_model_file_with_tensors(tmp_path: Path) -> None:
    with GGUFFile(_path(SPM)) as f:
        metadata = f.metadata
    path = tmp_path / "model.gguf"
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(metadata["tokenizer.ggml.tokens"])
    w.add_token_scores(metadata["tokenizer.ggml.scores"].tolist())
    w.add_token_types(metadata["tokenizer.ggml.token_type"].tolist())
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    w.add_tensor("token_embd.weight", np.zeros((4, 8), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tokenizer = bitllm.Tokenizer(path)
    text = "Hello, y'all! 我想在apple工作"
    assert tokenizer.encode(text) == _tokenizer(SPM).encode(text)
    assert tokenizer.encode(text, add_special=True) == tokenizer.encode(text)  # add_bos false


def test_bad_input_gives_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "no_vocab.gguf"
    w = gguf.GGUFWriter(path, "llama")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    with pytest.raises(ValueError, match=r"no_vocab.gguf: tokenizer model '' is not supported"):
        Tokenizer(path)
    with pytest.raises(ValueError, match="tokenizer model 'bert' is not supported"):
        Tokenizer.from_metadata({"tokenizer.ggml.model": "bert"})
    with pytest.raises(ValueError, match="tokenizer.ggml.tokens must be an array of strings"):
        Tokenizer.from_metadata({"tokenizer.ggml.model": "llama"})
    with pytest.raises(ValueError, match="not valid Unicode"):
        _tokenizer(BPE).encode("a\udcffb")
    with pytest.raises(TypeError, match="takes a str"):
        _tokenizer(BPE).encode(b"bytes")  # type: ignore[arg-type]
