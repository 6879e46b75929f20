"""SentencePiece-style BPE (tokenizer.ggml.model "llama") as llama.cpp runs it.

Start from one symbol per character; repeatedly merge the adjacent pair whose
concatenation is the vocabulary entry with the highest score (the leftmost pair on a
tie). A final symbol that is not in the vocabulary falls back to byte tokens <0xXX>.
The caller escapes spaces as U+2581 and adds the leading space.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence


class SPMModel:
    """Encodes escaped plain text (no special tokens) to ids."""

    def __init__(self, vocab: dict[str, int], scores: Sequence[float], unk_id: int | None) -> None:
        self._vocab = vocab
        self._scores = scores
        self._byte_ids = [self._byte_token(vocab, b, unk_id) for b in range(256)]

    @staticmethod
    def _byte_token(vocab: dict[str, int], byte: int, unk_id: int | None) -> int | None:
        found = vocab.get(f"<0x{byte:02X}>")
        if found is None and byte < 0x80:
            found = vocab.get(chr(byte))
        return unk_id if found is None else found

    def encode(self, text: str) -> list[int]:
        symbols = list(text)  # symbols[i] is "" once merged into its left neighbour
        n = len(symbols)
        prev = list(range(-1, n - 1))
        next_ = list(range(1, n + 1))
        next_[-1:] = [-1]
        heap: list[tuple[float, int, int, int]] = []

        def push(left: int, right: int) -> None:
            if left < 0 or right < 0:
                return
            token = self._vocab.get(symbols[left] + symbols[right])
            if token is not None:
                size = len(symbols[left]) + len(symbols[right])
                heapq.heappush(heap, (-float(self._scores[token]), left, right, size))

        for i in range(1, n):
            push(i - 1, i)
        while heap:
            _, left, right, size = heapq.heappop(heap)
            left_text, right_text = symbols[left], symbols[right]
            if not left_text or not right_text or len(left_text) + len(right_text) != size:
                continue  # one side changed since this pair was queued
            symbols[left] = left_text + right_text
            symbols[right] = ""
            next_[left] = next_[right]
            if next_[right] >= 0:
                prev[next_[right]] = left
            push(prev[left], left)
            push(left, next_[left])

        out: list[int] = []
        i = 0 if n else -1
        while i >= 0:
            token = self._vocab.get(symbols[i])
            if token is not None:
                out.append(token)
            else:
                out.extend(self._bytes_of(symbols[i]))
            i = next_[i]
        return out

    def _bytes_of(self, symbol: str) -> list[int]:
        ids = [self._byte_ids[b] for b in symbol.encode("utf-8", "surrogateescape")]
        if None in ids:
            raise ValueError(
                f"cannot encode {symbol!r}: the vocabulary has neither its byte tokens "
                "nor an unknown token"
            )
        return ids  # type: ignore[return-value]
