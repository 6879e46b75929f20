"""Byte-level BPE (tokenizer.ggml.model "gpt2") as llama.cpp runs it.

The merges run in the `tokenizers` package (Rust); this module picks the pre-tokenizer
regexes for tokenizer.ggml.pre and maps GPT-2's printable byte alphabet back to bytes.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat

from tokenizers import Regex, models, pre_tokenizers
from tokenizers import Tokenizer as RustTokenizer


@dataclass(frozen=True)
class PreTokenizer:
    """How llama.cpp treats one tokenizer.ggml.pre value."""

    regexes: tuple[str, ...]  # each splits the pieces the one before it left
    ignore_merges: bool  # a piece that is a whole vocabulary entry is taken as is
    add_bos: bool  # the default when tokenizer.ggml.add_bos_token is absent


_LLAMA3 = PreTokenizer(
    (
        r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+"
        r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    ),
    ignore_merges=True,
    add_bos=True,
)
_GPT2 = PreTokenizer(
    (r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)",),
    ignore_merges=False,
    add_bos=False,
)
_DEFAULT = PreTokenizer(
    (
        r"[\p{P}\$\+<=>\^~\|]+",
        r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)",
        r"\p{N}+",
        r"[0-9][0-9][0-9]",
    ),
    ignore_merges=False,
    add_bos=False,
)
PRE_TOKENIZERS: dict[str, PreTokenizer] = {
    **dict.fromkeys(
        ("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "lfm2"), _LLAMA3
    ),
    **dict.fromkeys(("gpt-2", "phi-2"), _GPT2),
    "default": _DEFAULT,
}


def pre_tokenizer(pre: str | None) -> PreTokenizer:
    if pre is None:
        return _DEFAULT
    found = PRE_TOKENIZERS.get(pre)
    if found is None:
        warnings.warn(
            f"unknown tokenizer.ggml.pre {pre!r}: using the default pre-tokenizer "
            f"(known: {', '.join(PRE_TOKENIZERS)})",
            stacklevel=3,
        )
        return _DEFAULT
    return found


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

    def __init__(self, vocab: dict[str, int], merges: Sequence[str], pre: str | None) -> None:
        self.pre = pre_tokenizer(pre)
        self._rust = RustTokenizer(_bpe_model(vocab, merges, self.pre.ignore_merges))
        splits = [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in self.pre.regexes]
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        self._rust.pre_tokenizer = pre_tokenizers.Sequence([*splits, byte_level])

    def encode(self, text: str) -> list[int]:
        return self._rust.encode(text, add_special_tokens=False).ids
