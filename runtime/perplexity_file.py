"""The KL-divergence base file: a reference run's tokens and log-probabilities.

bit-perplexity --kl-divergence-base FILE (without --kl-divergence) writes it; with
--kl-divergence it is read back and every other model is compared against it. All fields are
little-endian:

    offset  size                         field
    0       8                            magic b"BLKLDIV\\0"
    8       4   uint32                   format version (1)
    12      4   uint32                   n_vocab: logits per token
    16      4   uint32                   n_ctx: tokens per chunk
    20      4   uint32                   n_chunks
    24      4 * n_chunks * n_ctx         int32 tokens, chunk after chunk, as tokenized (before
                                         the first token of a chunk is replaced by BOS)
    ...     4 * n_chunks * S * n_vocab   float32 log-probabilities (natural log, normalized
                                         over the whole row): for each chunk, its S = n_ctx - 1
                                         - n_ctx / 2 scored positions n_ctx / 2 .. n_ctx - 2

Nothing follows. The size is therefore fixed by the header, and a reader checks it before
trusting anything: 4 * n_vocab bytes per scored token (513 KB for a 128256-token vocabulary,
so 64 chunks of 512 tokens take 8.3 GB). A file is written under a temporary name and renamed
when complete, so an interrupted run leaves no half file, and an existing file is never
replaced.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .perplexity import MIN_CTX, Chunking

MAGIC = b"BLKLDIV\0"
VERSION = 1
HEADER = struct.Struct("<8sIIII")


class KldFileError(ValueError):
    """A base file that is missing, damaged or made for another model or text."""


def _expected_size(n_vocab: int, n_ctx: int, n_chunks: int) -> int:
    scored = Chunking(n_ctx).n_scored
    return HEADER.size + 4 * n_chunks * n_ctx + 4 * n_chunks * scored * n_vocab


class KldBaseWriter:
    """Writes a base file chunk by chunk; commit() puts it in place."""

    def __init__(self, path: str | os.PathLike[str], n_vocab: int, chunks: np.ndarray) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise KldFileError(f"{self.path} already exists: remove it or choose another name")
        self.n_vocab = n_vocab
        self.chunking = Chunking(chunks.shape[1])
        self._temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        self._written = 0
        self._n_chunks = len(chunks)
        self._file: BinaryIO | None = open(self._temp, "wb")  # closed by commit() or abort()
        header = HEADER.pack(MAGIC, VERSION, n_vocab, chunks.shape[1], len(chunks))
        self._file.write(header)
        self._file.write(chunks.astype("<i4").tobytes())

    def write(self, log_probs: np.ndarray) -> None:
        """The next chunk's log-probabilities, float32 [n_scored, n_vocab]."""
        if self._file is None:
            raise KldFileError(f"{self.path} is already closed")
        expected = (self.chunking.n_scored, self.n_vocab)
        if log_probs.shape != expected or self._written >= self._n_chunks:
            raise KldFileError(f"chunk {self._written} of shape {log_probs.shape}, not {expected}")
        self._file.write(np.ascontiguousarray(log_probs, dtype="<f4").tobytes())
        self._written += 1

    def commit(self) -> None:
        """Renames the finished file into place (it must hold every chunk)."""
        if self._file is None:
            return
        self._file.close()
        self._file = None
        if self._written != self._n_chunks:
            self._temp.unlink(missing_ok=True)
            raise KldFileError(f"only {self._written} of {self._n_chunks} chunks were written")
        if self.path.exists():  # made by someone else meanwhile: keep theirs
            self._temp.unlink(missing_ok=True)
            raise KldFileError(f"{self.path} appeared while writing; it was left as it is")
        self._temp.rename(self.path)

    def abort(self) -> None:
        """Drops the partial file."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._temp.unlink(missing_ok=True)


class KldBaseFile:
    """A validated base file; chunk(i) reads one chunk's log-probabilities."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise KldFileError(f"KL-divergence base file not found: {self.path}")
        size = self.path.stat().st_size
        with open(self.path, "rb") as f:
            raw = f.read(HEADER.size)
            if len(raw) < HEADER.size:
                raise self._fail(
                    f"truncated: {size} bytes, shorter than its {HEADER.size}-byte header"
                )
            magic, version, n_vocab, n_ctx, n_chunks = HEADER.unpack(raw)
            if magic != MAGIC:
                raise self._fail("not a bitllm KL-divergence base file (wrong magic)")
            if version != VERSION:
                raise self._fail(f"format version {version}; this bitllm reads version {VERSION}")
            if n_vocab < 1 or n_ctx < MIN_CTX or n_chunks < 1:
                raise self._fail(
                    f"bad header: n_vocab {n_vocab}, n_ctx {n_ctx}, n_chunks {n_chunks}"
                )
            expected = _expected_size(n_vocab, n_ctx, n_chunks)
            if size != expected:
                what = "truncated" if size < expected else "has trailing bytes"
                raise self._fail(
                    f"{what}: {size} bytes, but its header ({n_chunks} chunks of {n_ctx} tokens, "
                    f"vocabulary {n_vocab}) needs {expected}"
                )
            tokens = np.frombuffer(f.read(4 * n_chunks * n_ctx), dtype="<i4")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= n_vocab):
            raise self._fail(f"holds a token id outside its vocabulary of {n_vocab}")
        self.n_vocab, self.n_chunks = n_vocab, n_chunks
        self.chunking = Chunking(n_ctx)
        self.chunks = tokens.astype(np.int32).reshape(n_chunks, n_ctx)

    def _fail(self, message: str) -> KldFileError:
        return KldFileError(f"{self.path}: {message}")

    @property
    def n_ctx(self) -> int:
        return self.chunking.n_ctx

    def check_model(self, n_vocab: int) -> None:
        if n_vocab != self.n_vocab:
            raise self._fail(
                f"was made with a vocabulary of {self.n_vocab} tokens; this model has {n_vocab}"
            )

    def chunk(self, index: int) -> np.ndarray:
        """float32 [n_scored, n_vocab] of chunk index, read from disk."""
        if not 0 <= index < self.n_chunks:
            raise IndexError(f"chunk {index} of {self.n_chunks}")
        rows = self.chunking.n_scored
        offset = HEADER.size + 4 * self.chunks.size + 4 * index * rows * self.n_vocab
        data = np.fromfile(self.path, dtype="<f4", count=rows * self.n_vocab, offset=offset)
        if data.size != rows * self.n_vocab:  # shrunk since it was opened
            raise self._fail(f"truncated while reading chunk {index}")
        return data.astype(np.float32, copy=False).reshape(rows, self.n_vocab)
