"""bitllm.Tokenizer: the tokenizer stored in a GGUF file's metadata, as llama.cpp runs it.

Two models: "gpt2" (byte-level BPE, e.g. Llama 3, pre-tokenizer "llama-bpe") and "llama"
(SentencePiece-style with byte fallback, e.g. LLaMA 1/2). Special tokens, the BOS/EOS
rules and the end-of-generation set follow llama.cpp's reading of the same keys, so ids
match llama.cpp's for the same text.
"""

from __future__ import annotations

import codecs
import gc
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from enum import IntEnum
from itertools import repeat
from typing import Any

import numpy as np

from .gguf_reader import GGUFFile

SPM_SPACE = "\u2581"  # SentencePiece's visible space


class TokenType(IntEnum):
    """tokenizer.ggml.token_type values."""

    UNDEFINED = 0
    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


# plain ints: comparing with enum members is slow on hot paths
_NORMAL = int(TokenType.NORMAL)
_USER_DEFINED = int(TokenType.USER_DEFINED)
_BYTE = int(TokenType.BYTE)
_SPECIAL_KINDS = frozenset((int(TokenType.CONTROL), int(TokenType.UNKNOWN)))

# Token texts llama.cpp treats as end of generation (and as control tokens) in any vocabulary.
EOG_TEXTS = frozenset(
    (
        "<|eot_id|>",
        "<|im_end|>",
        "<|end|>",
        "<end_of_turn>",
        "<|endoftext|>",
        "<|eom_id|>",
        "<EOT>",
        "_<EOT>",
        "<|end_of_text|>",
    )
)
EOT_TEXTS = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>")

_SPECIAL_KEYS = {
    "bos_id": "tokenizer.ggml.bos_token_id",
    "eos_id": "tokenizer.ggml.eos_token_id",
    "eot_id": "tokenizer.ggml.eot_token_id",
    "eom_id": "tokenizer.ggml.eom_token_id",
    "unk_id": "tokenizer.ggml.unknown_token_id",
    "pad_id": "tokenizer.ggml.padding_token_id",
}
# llama.cpp's ids for a vocabulary whose file does not name them
_DEFAULT_IDS = {
    "llama": {"bos_id": 1, "eos_id": 2, "unk_id": 0},
    "gpt2": {"bos_id": 11, "eos_id": 11},
}


class Tokenizer:
    """Text <-> token ids for the vocabulary in a GGUF file (vocab-only files included).

    Tokenizer(path) reads the file; Tokenizer.from_metadata(metadata) takes the metadata of
    a file already read (bitllm.runtime.gguf_reader.GGUFFile.metadata).
    """

    model: str  # "gpt2" or "llama"
    pre: str | None  # tokenizer.ggml.pre
    tokens: list[str]
    token_types: np.ndarray  # int32 TokenType per id
    bos_id: int | None
    eos_id: int | None
    eot_id: int | None
    eom_id: int | None
    unk_id: int | None
    pad_id: int | None
    eog_ids: frozenset[int]  # tokens that end generation
    add_bos: bool  # encode(add_special=True) puts BOS first
    add_eos: bool  # encode(add_special=True) puts EOS last
    add_space_prefix: bool  # "llama" model: a space goes before the text
    vocab: dict[str, int]  # token text -> id

    def __init__(self, path: str | os.PathLike[str]) -> None:
        with GGUFFile(path) as gguf:
            self._load(gguf.metadata, str(path))

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], source: str = "metadata") -> Tokenizer:
        """source names the file in error messages."""
        tokenizer = cls.__new__(cls)
        tokenizer._load(metadata, source)
        return tokenizer

    def _load(self, metadata: Mapping[str, Any], source: str) -> None:
        with _gc_paused():
            self._read(metadata, source)

    def _read(self, metadata: Mapping[str, Any], source: str) -> None:
        self.model = metadata.get("tokenizer.ggml.model", "")
        pre = metadata.get("tokenizer.ggml.pre")
        self.pre = pre if isinstance(pre, str) else None
        if self.model not in ("gpt2", "llama"):
            with_pre = f" with pre-tokenizer {self.pre!r}" if self.pre else ""
            raise ValueError(
                f"{source}: tokenizer model {self.model!r}{with_pre} is not supported "
                "(tokenizer.ggml.model must be 'gpt2' or 'llama')"
            )
        self.tokens = _string_list(metadata, "tokenizer.ggml.tokens", source)
        if not self.tokens:
            raise ValueError(f"{source}: tokenizer.ggml.tokens is empty")
        self.token_types = self._read_types(metadata, source)
        # the last of equal texts wins, as in llama.cpp
        self.vocab = dict(zip(self.tokens, range(len(self.tokens)), strict=True))
        self._read_special_ids(metadata, source)
        self._mark_eog_tokens()
        self._specials = self._special_tokens()
        self._pieces: dict[bool, dict[int, bytes]] = {True: {}, False: {}}  # by special
        self._engine = self._build_engine(metadata, source)
        self.add_eos = bool(metadata.get("tokenizer.ggml.add_eos_token", False))
        self.add_bos = bool(metadata.get("tokenizer.ggml.add_bos_token", self._default_add_bos()))
        self.add_space_prefix = self.model == "llama" and bool(
            metadata.get("tokenizer.ggml.add_space_prefix", True)
        )

    def _read_types(self, metadata: Mapping[str, Any], source: str) -> np.ndarray:
        types = metadata.get("tokenizer.ggml.token_type")
        if types is None:
            return np.full(len(self.tokens), TokenType.NORMAL, np.int32)
        types = np.asarray(types)
        if types.shape != (len(self.tokens),) or types.dtype.kind not in "iu":
            raise ValueError(
                f"{source}: tokenizer.ggml.token_type must hold one integer per token "
                f"({len(self.tokens)}), got shape {types.shape} of {types.dtype}"
            )
        return types.astype(np.int32)

    def _read_special_ids(self, metadata: Mapping[str, Any], source: str) -> None:
        """An id past the vocabulary is an error (generation and chat use these), except
        padding's, which nothing here uses: that one is ignored with a warning."""
        defaults = _DEFAULT_IDS[self.model]
        for attr, key in _SPECIAL_KEYS.items():
            value = metadata.get(key)
            if value is not None and not _is_token_id(value, self.n_vocab):
                if attr != "pad_id":
                    raise ValueError(
                        f"{source}: {key} = {value!r} is not a token id of the vocabulary "
                        f"(0 to {self.n_vocab - 1})"
                    )
                warnings.warn(f"ignoring {key} = {value!r}: not a token id", stacklevel=4)
                value = None
            if value is None:
                value = defaults.get(attr)
                value = value if value is not None and value < self.n_vocab else None
            setattr(self, attr, value)
        if self.eot_id is None:
            self.eot_id = next((self.vocab[t] for t in EOT_TEXTS if t in self.vocab), None)
        if self.eom_id is None:
            self.eom_id = self.vocab.get("<|eom_id|>")

    def _mark_eog_tokens(self) -> None:
        by_text = {self.vocab[t] for t in EOG_TEXTS if t in self.vocab}
        for i in by_text:  # llama.cpp makes these control tokens whatever the file says
            self.token_types[i] = TokenType.CONTROL
        named = (self.eos_id, self.eot_id, self.eom_id)
        self.eog_ids = frozenset(by_text | {i for i in named if i is not None})

    def _special_tokens(self) -> list[tuple[str, int, int]]:
        """Texts the input is split on before tokenizing, longest first."""
        kinds = (TokenType.CONTROL, TokenType.USER_DEFINED, TokenType.UNKNOWN)
        ids = np.flatnonzero(np.isin(self.token_types, kinds)).tolist()
        found = [
            (self.tokens[i], i, int(self.token_types[i]))
            for i in ids
            if self.tokens[i] and self.vocab[self.tokens[i]] == i
        ]
        return sorted(found, key=lambda t: (-len(t[0]), t[1]))

    def _build_engine(self, metadata: Mapping[str, Any], source: str) -> Any:
        if self.model == "gpt2":
            from .tokenizer_bpe import BPEModel
            from .tokenizer_pre import pre_tokenizer

            pre = pre_tokenizer(self.pre, source)
            merges = _string_list(metadata, "tokenizer.ggml.merges", source)
            try:
                return BPEModel(self.vocab, merges, pre)
            except Exception as e:  # tokenizers' own errors share no useful base class
                raise ValueError(f"{source}: cannot build the BPE tokenizer: {e}") from e
        from .tokenizer_spm import SPMModel

        scores = metadata.get("tokenizer.ggml.scores")
        if scores is None:
            scores = np.zeros(len(self.tokens), np.float32)
        scores = np.asarray(scores, dtype=np.float32)
        if scores.shape != (len(self.tokens),):
            raise ValueError(
                f"{source}: tokenizer.ggml.scores has {scores.size} entries "
                f"for {len(self.tokens)} tokens"
            )
        return SPMModel(self.vocab, scores.tolist(), self.unk_id)

    def _default_add_bos(self) -> bool:
        return self.model == "llama" or self._engine.pre.add_bos

    @property
    def n_vocab(self) -> int:
        return len(self.tokens)

    def encode(
        self, text: str, add_special: bool = False, parse_special: bool = False
    ) -> list[int]:
        """Token ids of text.

        add_special: put BOS first / EOS last as tokenizer.ggml.add_bos_token /
        add_eos_token say. parse_special: control-token texts in the input (e.g.
        "<|eot_id|>") become those tokens; user-defined tokens always do, as in llama.cpp.
        """
        if not isinstance(text, str):
            raise TypeError(f"encode() takes a str, got {type(text).__name__}")
        _check_unicode(text)
        out: list[int] = []
        if add_special and self.add_bos:
            out.append(self._required("bos_id"))
        after_special = True
        for fragment in self._partition(text, parse_special):
            if isinstance(fragment, int):
                out.append(fragment)
                after_special = True
            else:
                out += self._encode_plain(fragment, after_special)
                after_special = False
        if add_special and self.add_eos:
            out.append(self._required("eos_id"))
        return out

    def _required(self, attr: str) -> int:
        value = getattr(self, attr)
        if value is None:
            raise ValueError(f"this vocabulary has no {attr[:-3].upper()} token to add")
        return value

    def _partition(self, text: str, parse_special: bool) -> list[str | int]:
        """Splits text on special-token texts (longest first), as llama.cpp does."""
        fragments: list[str | int] = [text] if text else []
        for special, token, kind in self._specials:
            if not parse_special and kind != TokenType.USER_DEFINED:
                continue
            split: list[str | int] = []
            for fragment in fragments:
                if isinstance(fragment, int) or special not in fragment:
                    split.append(fragment)
                    continue
                for k, part in enumerate(fragment.split(special)):
                    if k:
                        split.append(token)
                    if part:
                        split.append(part)
            fragments = split
        return fragments

    def _encode_plain(self, text: str, after_special: bool) -> list[int]:
        if self.model == "gpt2":
            return self._engine.encode(text)
        if self.add_space_prefix and after_special:
            text = " " + text
        return self._engine.encode(text.replace(" ", SPM_SPACE))

    def token_to_piece(self, token: int, special: bool = True) -> bytes:
        """The bytes one token stands for. special=False renders control tokens as nothing."""
        cache = self._pieces[special]
        piece = cache.get(token)
        if piece is None:
            if not 0 <= token < self.n_vocab:
                raise ValueError(f"token id {token} is out of range (vocabulary of {self.n_vocab})")
            piece = cache[token] = self._piece(token, special)
        return piece

    def _piece(self, token: int, special: bool) -> bytes:
        text = self.tokens[token]
        kind = int(self.token_types[token])
        if kind in _SPECIAL_KINDS:
            return text.encode("utf-8", "surrogateescape") if special else b""
        if kind == _USER_DEFINED:
            return text.encode("utf-8", "surrogateescape")
        if kind == _NORMAL:
            if self.model == "gpt2":
                from .tokenizer_bpe import piece_bytes

                return piece_bytes(text)
            return text.replace(SPM_SPACE, " ").encode("utf-8", "surrogateescape")
        if kind == _BYTE and self.model == "llama":
            return _byte_of(text)
        return b""  # unused and undefined tokens render as nothing, as in llama.cpp

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        """Text of ids. Invalid UTF-8 becomes U+FFFD. skip_special drops control tokens
        (and a leading BOS / trailing EOS that add_special would add).

        The leading space a "llama" vocabulary adds is removed again, as llama.cpp does;
        unlike llama.cpp also when skip_special drops the BOS before it, so that
        decode(encode(text, add_special=True), skip_special=True) == text.
        """
        ids = [int(i) for i in ids]
        if skip_special and self.add_bos and ids[:1] == [self.bos_id]:
            ids = ids[1:]
        if skip_special and self.add_eos and ids[-1:] == [self.eos_id]:
            ids = ids[:-1]
        data = b"".join(self.token_to_piece(i, special=not skip_special) for i in ids)
        if self.add_space_prefix and data.startswith(b" ") and ids:
            first = self.token_to_piece(ids[0], special=not skip_special)
            if first.startswith(b" "):
                data = data[1:]
        return data.decode("utf-8", "replace")

    def decoder(self, skip_special: bool = False) -> StreamDecoder:
        """A decoder for streaming: feed(id) returns only whole characters."""
        return StreamDecoder(self, skip_special)

    def is_eog(self, token: int) -> bool:
        """Whether generation stops at this token (EOS, EOT, EOM and the like)."""
        return token in self.eog_ids

    def __repr__(self) -> str:
        return f"Tokenizer(model={self.model!r}, pre={self.pre!r}, n_vocab={self.n_vocab})"


class StreamDecoder:
    """Turns tokens into text as they come, holding back the bytes of a character that
    is split across tokens until it is complete (broken bytes become U+FFFD)."""

    def __init__(self, tokenizer: Tokenizer, skip_special: bool = False) -> None:
        self._tokenizer = tokenizer
        self._special = not skip_special
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, token: int) -> str:
        return self._utf8.decode(self._tokenizer.token_to_piece(token, self._special))

    def flush(self) -> str:
        """The text still held back (as U+FFFD: an incomplete character at the end)."""
        return self._utf8.decode(b"", final=True)


def _check_unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(
            f"text is not valid Unicode: {text[e.start : e.end]!r} at index {e.start}"
        ) from None


def _is_token_id(value: object, n_vocab: int) -> bool:
    integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    return integer and 0 <= value < n_vocab  # type: ignore[operator]


def _byte_of(text: str) -> bytes:
    """<0xXX> -> that byte."""
    try:
        return bytes([int(text[3:-1], 16)]) if text.startswith("<0x") else b""
    except ValueError:
        return b""


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Building a vocabulary makes hundreds of thousands of objects and no cycles; the
    collector would scan them over and over (it tripled the time of the merge pairs)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _string_list(metadata: Mapping[str, Any], key: str, source: str) -> list[str]:
    value = metadata.get(key)
    if not isinstance(value, list) or not all(map(isinstance, value, repeat(str))):
        raise ValueError(f"{source}: {key} must be an array of strings (found {type(value)})")
    return value
