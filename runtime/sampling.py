"""Choosing the next token from logits, and stopping generation at stop strings.

The sampler follows llama.cpp's default chain: repetition penalty, top-k, top-p, min-p,
then temperature and a draw from the remaining distribution. Temperature 0 is greedy.
Everything runs on one numpy row of logits per token; the model's forward pass never
comes through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

REPEAT_LAST_N = 64  # how many recent tokens the repetition penalty looks at (llama.cpp's default)


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    seed: int | None = None
    repeat_last_n: int = REPEAT_LAST_N  # tokens the penalty looks at; 0: none, -1: all

    def __post_init__(self) -> None:
        if not np.isfinite(self.temperature) or self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 disables it), got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1] (1 disables it), got {self.top_p}")
        if not 0.0 <= self.min_p <= 1.0:
            raise ValueError(f"min_p must be in [0, 1] (0 disables it), got {self.min_p}")
        if not np.isfinite(self.repeat_penalty) or self.repeat_penalty <= 0:
            raise ValueError(
                f"repeat_penalty must be > 0 (1 disables it), got {self.repeat_penalty}"
            )
        if self.repeat_last_n < -1:
            raise ValueError(
                f"repeat_last_n must be >= 0, or -1 for the whole context, got {self.repeat_last_n}"
            )
        if self.seed is not None and self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def apply_repeat_penalty(logits: np.ndarray, recent: Sequence[int], penalty: float) -> None:
    """Makes each recently seen token less likely, in place: positive logits are divided by
    the penalty, negative ones multiplied (so the penalty always pushes down)."""
    if penalty == 1.0 or not recent:
        return
    ids = np.unique(np.asarray(recent, dtype=np.int64))
    ids = ids[(ids >= 0) & (ids < logits.shape[0])]
    seen = logits[ids]
    logits[ids] = np.where(seen > 0, seen / penalty, seen * penalty)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(), dtype=np.float64)
    return shifted / shifted.sum()


# Columns whose maximum stands for them when the k best tokens are looked for.
_CHUNK = 128


def _best(logits: np.ndarray, k: int) -> np.ndarray:
    """The ids of the k best logits, best first; equal logits in id order.

    The k largest maxima of distinct chunks are k logits, so the k best logits are all at
    least the k-th largest chunk maximum: one pass over the vocabulary finds that bound and
    only the logits above it are sorted (a full argpartition of 128k logits took 1.5 ms
    a token, this about 0.1 ms)."""
    n = logits.shape[0]
    chunks = n // _CHUNK
    if k >= n:
        return np.argsort(-logits, kind="stable")
    if k <= chunks:
        maxima = logits[: chunks * _CHUNK].reshape(chunks, _CHUNK).max(axis=1)
        bound = np.partition(maxima, chunks - k)[chunks - k]
    else:  # the k-th best logit itself
        bound = np.partition(logits, n - k)[n - k]
    ids = np.flatnonzero(logits >= bound)  # in id order: the stable sort keeps ties so
    return ids[np.argsort(-logits[ids], kind="stable")][:k]


def _nucleus(
    logits: np.ndarray, weights: np.ndarray, total: float, params: SamplingParams
) -> np.ndarray:
    """Without top-k, a head of the sorted vocabulary that holds every token top-p and min-p
    could keep (weights: e^(logit - max) of the vocabulary, total their sum): the tokens at
    least min_p times as likely as the best (a bound on the logits, with a margin for
    rounding), else heads growing until their mass reaches top_p; the whole vocabulary
    sorted when neither cuts."""
    n = logits.shape[0]
    if params.min_p > 0.0:
        bound = logits.max() + np.log(params.min_p) - 1e-3
        return _best(logits, int(np.count_nonzero(logits >= bound)))
    if params.top_p < 1.0:
        head = 256
        while head < n:
            ids = _best(logits, head)
            if weights[ids].sum() >= params.top_p * total:
                return ids
            head *= 8
    return _best(logits, n)


def candidates(logits: np.ndarray, params: SamplingParams) -> tuple[np.ndarray, np.ndarray]:
    """The tokens that survive top-k, top-p and min-p, best first, with their logits.

    top-p keeps the smallest head of the sorted distribution whose mass reaches top_p;
    min-p keeps tokens whose probability is at least min_p times the best one's. Both see
    the distribution before temperature (over the top-k tokens, or the whole vocabulary
    without top-k), as in llama.cpp. The best token always survives.
    """
    n_vocab = logits.shape[0]
    if 0 < params.top_k < n_vocab:
        ids = _best(logits, params.top_k)
        probs = _softmax(logits[ids])
    else:
        # One vocabulary-wide array: normalizing all of it (a second one) took longer than
        # the whole selection (1.7 against 0.5 ms at 128k), so only the kept tokens are.
        weights = np.exp(logits - logits.max(), dtype=np.float64)
        total = weights.sum()
        ids = _nucleus(logits, weights, total, params)
        probs = weights[ids] / total
    kept = logits[ids]
    keep = len(ids)
    if params.top_p < 1.0:
        keep = min(keep, int(np.searchsorted(np.cumsum(probs), params.top_p)) + 1)
    if params.min_p > 0.0:
        keep = min(keep, int(np.count_nonzero(probs >= params.min_p * probs[0])))
    keep = max(keep, 1)
    return ids[:keep], kept[:keep]


class Sampler:
    """Picks tokens for one generation: its random stream is fixed by params.seed, so the
    same seed, prompt and settings give the same tokens."""

    def __init__(self, params: SamplingParams) -> None:
        self.params = params
        self.rng = np.random.default_rng(params.seed)

    def __call__(self, logits: np.ndarray, history: Sequence[int]) -> int:
        """The next token for a row of logits; history is the tokens so far (prompt and
        generated), for the repetition penalty."""
        if not np.isfinite(logits).all():
            raise ValueError("the model produced non-finite logits (NaN or infinity)")
        params = self.params
        window = len(history) if params.repeat_last_n == -1 else params.repeat_last_n
        if params.repeat_penalty != 1.0 and window > 0:
            logits = logits.copy()
            apply_repeat_penalty(logits, history[-window:], params.repeat_penalty)
        if params.greedy:
            return int(np.argmax(logits))
        ids, kept = candidates(logits, params)
        if len(ids) == 1:
            return int(ids[0])
        probs = _softmax(kept / params.temperature)
        return int(ids[self.rng.choice(len(ids), p=probs)])


class StopStrings:
    """Cuts streamed text at the first stop string; the stop string itself is never emitted.

    feed() returns the text that is safe to show now: text that could still turn out to be
    the start of a stop string is held back until the next piece decides it. finish() returns
    what is held back once generation has ended without a stop.
    """

    def __init__(self, stops: Sequence[str] | str | None) -> None:
        if isinstance(stops, str):
            stops = [stops]
        self.stops = [s for s in (stops or ()) if s]
        self.pending = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        if not self.stops:
            return piece
        text = self.pending + piece
        hits = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            self.pending = ""
            return text[: min(hits)]
        hold = self._partial_match_length(text)
        self.pending = text[len(text) - hold :] if hold else ""
        return text[: len(text) - hold]

    def _partial_match_length(self, text: str) -> int:
        """Length of the longest suffix of text that is a proper prefix of a stop string."""
        longest = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:n]):
                    longest = n
                    break
        return longest

    def finish(self) -> str:
        rest, self.pending = self.pending, ""
        return "" if self.stopped else rest
