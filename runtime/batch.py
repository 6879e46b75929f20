"""Many sequences in one forward pass: a native context holding n_seq KV caches, and
decode() over a batch of tokens from any of them, so that one step reads every weight
matrix once for all active sequences (what a server's continuous batching runs on).

A sequence's results are bit-identical whatever else shares its batch: activations are
quantized per row, products accumulate in integers, and attention reads only the row's own
sequence. bitllm.runtime.model.Context is the one-sequence view most callers want."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from .native import check, library
from .native_context import NativeContext


class BatchContext(NativeContext):
    """n_seq KV caches of n_ctx positions each (runtime.native_context). Calls are
    serialized; close() waits for a call in progress, and calls after it raise ValueError."""

    def __init__(
        self,
        model: Any,
        n_ctx: int,
        n_seq: int,
        n_vocab: int,
        cache_type_k: str | None = None,
        cache_type_v: str | None = None,
        lock: threading.RLock | None = None,
    ) -> None:
        super().__init__(model, n_ctx, n_seq, cache_type_k, cache_type_v, lock)
        self.n_vocab = n_vocab

    def decode(
        self,
        tokens: Sequence[int],
        positions: Sequence[int],
        seqs: Sequence[int],
        logits: Sequence[bool] | None = None,
    ) -> np.ndarray:
        """Evaluates tokens[i] at positions[i] of sequence seqs[i]. Each sequence's tokens
        are consecutive here, at consecutive positions from at most what it has cached (a
        smaller first position drops its cache from there). Returns float32 [k, n_vocab]:
        the logits of the tokens flagged in logits, in order (None: the last token of each
        sequence in the batch)."""
        n = len(tokens)
        if not n == len(positions) == len(seqs) or (logits is not None and len(logits) != n):
            raise ValueError("tokens, positions, seqs (and logits) must have the same length")
        arrays = [
            _int32(name, v)
            for name, v in (("token", tokens), ("position", positions), ("sequence", seqs))
        ]
        if logits is None:
            wanted = np.append(arrays[2][1:] != arrays[2][:-1], True) if n else np.zeros(0, bool)
        else:
            wanted = np.asarray(logits, dtype=bool)
        flags = wanted.astype(np.int8)
        out = np.empty((int(wanted.sum()), self.n_vocab), dtype=np.float32)
        ffi, lib = library()
        with self._lock:
            batch = ffi.new(
                "bl_batch *",
                {
                    "n_tokens": n,
                    "tokens": ffi.from_buffer("int32_t[]", arrays[0]),
                    "pos": ffi.from_buffer("int32_t[]", arrays[1]),
                    "seq": ffi.from_buffer("int32_t[]", arrays[2]),
                    "logits": ffi.from_buffer("int8_t[]", flags),
                },
            )
            target = ffi.from_buffer("float[]", out) if len(out) else ffi.NULL
            check(lib.bl_context_decode(self._live(), batch, target))
        return out

    def n_past(self, seq: int) -> int:
        """Positions sequence seq has cached."""
        with self._lock:
            return check(library()[1].bl_context_seq_n_past(self._live(), seq))

    def keep(self, seq: int, n_keep: int) -> None:
        """Keeps the first n_keep positions of seq (0: empties it, for a new request)."""
        with self._lock:
            check(library()[1].bl_context_seq_keep(self._live(), seq, n_keep))

    def copy(self, src: int, dst: int, n: int) -> None:
        """dst's cache becomes src's first n positions: a shared prefix computed once."""
        with self._lock:
            check(library()[1].bl_context_seq_copy(self._live(), src, dst, n))


def _int32(name: str, values: Sequence[int]) -> np.ndarray:
    try:
        wide = np.asarray(values, dtype=np.int64)
    except (OverflowError, TypeError, ValueError):
        raise ValueError(f"{name}s must be integers") from None
    if wide.ndim != 1:
        raise ValueError(f"{name}s must be a flat sequence of integers")
    if wide.size and (wide.min() < -(2**31) or wide.max() >= 2**31):
        raise ValueError(f"a {name} is outside the 32-bit range")
    return wide.astype(np.int32)
