"""The tokenizer.ggml.pre the converter writes for a byte-level tokenizer.json, and that the
runtime, reading it back, splits text as the checkpoint's own tokenizer (transformers) does.

The tokenizer.json files are written by transformers' own tokenizer classes for these families
(their pre-tokenizers as published), over a small byte-level vocabulary with a few merges.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest

from bitllm import Tokenizer
from bitllm.convert.vocab import load_vocab
from tests.runtime.test_tokenizer import FIXED_TEXTS, _random_texts

ROWS = 1000  # embedding rows: the vocabulary is padded to them
MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("1", "2"), ("'", "s"), ("Ġ", "Ġ"), ("i", "n")]


def _byte_level_vocab() -> dict[str, int]:
    from bitllm.runtime.tokenizer_bpe import byte_alphabet

    vocab = {char: i for i, char in enumerate(sorted(byte_alphabet()))}
    for left, right in MERGES:
        vocab.setdefault(left + right, len(vocab))
    return vocab


def _saved(tokenizer_class: str, folder: Path) -> Any:
    transformers = pytest.importorskip("transformers")
    tokenizer = getattr(transformers, tokenizer_class)(
        vocab=_byte_level_vocab(), merges=list(MERGES)
    )
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def _runtime_tokenizer(folder: Path) -> Tokenizer:
    vocab = load_vocab(folder, {}, ROWS)
    metadata = {
        "tokenizer.ggml.model": vocab.model,
        "tokenizer.ggml.pre": vocab.pre,
        "tokenizer.ggml.tokens": vocab.tokens,
        "tokenizer.ggml.token_type": vocab.token_types,
        "tokenizer.ggml.merges": vocab.merges,
    }
    return Tokenizer.from_metadata(metadata, source=str(folder))


@pytest.mark.parametrize(
    ("tokenizer_class", "pre"), [("Qwen2Tokenizer", "qwen2"), ("GPT2Tokenizer", "gpt-2")]
)
def test_family_tokenizer_json_gets_llama_cpps_name_and_splits_alike(
    tokenizer_class: str, pre: str, tmp_path: Path
) -> None:
    reference = _saved(tokenizer_class, tmp_path)
    vocab = load_vocab(tmp_path, {}, ROWS)
    assert (vocab.model, vocab.pre, vocab.warnings) == ("gpt2", pre, [])
    tokenizer = _runtime_tokenizer(tmp_path)
    # Qwen2's tokenizer normalizes to NFC first; llama.cpp (and so bitllm) does not
    texts = [
        t for t in FIXED_TEXTS + _random_texts(300, seed=2) if unicodedata.is_normalized("NFC", t)
    ]
    assert len(texts) > 250
    for text in texts:
        assert tokenizer.encode(text) == reference.encode(text, add_special_tokens=False), text


def test_unknown_split_is_written_as_default_with_a_warning(tmp_path: Path) -> None:
    _saved("Qwen2Tokenizer", tmp_path)
    path = tmp_path / "tokenizer.json"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(r"\\p{N}|", r"\\p{N}{1,2}|", 1), encoding="utf-8")
    assert path.read_text(encoding="utf-8") != text
    vocab = load_vocab(tmp_path, {}, ROWS)
    assert vocab.pre == "default"
    assert vocab.warnings == [
        f"{path}: unknown pre-tokenizer; wrote tokenizer.ggml.pre = 'default'"
    ]
