"""Byte-level BPE (tokenizer.ggml.model "gpt2") as llama.cpp runs it.

The merges run in the `tokenizers` package (Rust), after the pre-tokenizer's regexes
(tokenizer_pre.py); this module also maps GPT-2's printable byte alphabet back to bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from itertools import repeat

from tokenizers import Regex, models, pre_tokenizers
from tokenizers import Tokenizer as RustTokenizer

from .tokenizer_pre import PreTokenizer


@lru_cache(maxsize=1)
def byte_alphabet() -> dict[str, int]:
    """GPT-2's char -> byte map: printable bytes stand for themselves, the others are
    moved to U+0100 and up in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    chars = {b: chr(b) for b in printable}
    moved = (b for b in range(256) if b not in chars)
    chars.update({b: chr(0x100 + i) for i, b in enumerate(moved)})
    return {c: b for b, c in chars.items()}


def piece_bytes(token_text: str) -> bytes:
    """The bytes a byte-level token stands for; a char outside the alphabet stays UTF-8."""
    alphabet = byte_alphabet()
    out = bytearray()
    for c in token_text:
        b = alphabet.get(c)
        if b is None:
            out += c.encode("utf-8", "surrogateescape")
        else:
            out.append(b)
    return bytes(out)


def merge_pairs(merges: Sequence[str], vocab: dict[str, int]) -> list[tuple[str, str]]:
    """ "a b" -> ("a", "b"), split at the first space after the first char as llama.cpp does,
    keeping only merges of vocabulary entries into one (tokenizers cannot take others and
    llama.cpp never produces them)."""
    return [
        (left, right)
        for merge in merges
        for cut in (merge.find(" ", 1),)
        if cut > 0
        for left, right in ((merge[:cut], merge[cut + 1 :]),)
        if left in vocab and right in vocab and left + right in vocab
    ]


def _pairs_of_clean_merges(merges: Sequence[str], vocab: dict[str, int]) -> list[tuple[str, str]]:
    """merge_pairs() in a few C-speed passes, for the usual file where every merge is
    "left right" with one space; [] when some merge is not (or "" is a token, which would
    make a leading space ambiguous). The vocabulary check is left to tokenizers, which
    refuses a merge of non-tokens."""
    joined = " ".join(merges)
    # one space in each: as many spaces as merges and none without
    if joined.count(" ") != 2 * len(merges) - 1 or "" in vocab:
        return []
    if not all(map(str.__contains__, merges, repeat(" "))):
        return []
    parts = joined.split(" ")
    lefts = parts[0::2]
    if "" in lefts:
        return []
    return list(zip(lefts, parts[1::2], strict=True))


def _bpe_model(vocab: dict[str, int], merges: Sequence[str], ignore_merges: bool) -> models.BPE:
    pairs = _pairs_of_clean_merges(merges, vocab)
    if pairs:
        try:
            return models.BPE(vocab, pairs, ignore_merges=ignore_merges)
        except Exception:  # a merge of non-tokens, which tokenizers refuses: dropped below
            pass
    return models.BPE(vocab, merge_pairs(merges, vocab), ignore_merges=ignore_merges)


class BPEModel:
    """Encodes plain text (no special tokens) to ids."""

    def __init__(self, vocab: dict[str, int], merges: Sequence[str], pre: PreTokenizer) -> None:
        self.pre = pre
        self._rust = RustTokenizer(_bpe_model(vocab, merges, self.pre.ignore_merges))
        splits = [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in self.pre.regexes]
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        self._rust.pre_tokenizer = pre_tokenizers.Sequence([*splits, byte_level])

    def encode(self, text: str) -> list[int]:
        return self._rust.encode(text, add_special_tokens=False).ids
