"""One generation request as the scheduler sees it, and the events it sends back.

A Job is made on the caller's side (an HTTP handler, bitllm.Llama), handed to the
scheduler thread, and reports through its sink: a callable that must be safe to call from
the scheduler thread (it puts the event on a queue the caller reads). The caller may call
cancel() from any thread; the scheduler notices at its next step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..sampling import Sampler, SamplingParams

MAX_TOP_LOGPROBS = 20  # OpenAI's limit on top_logprobs
# The logit of a token that must not be drawn: finite (the sampler refuses infinities) and
# far enough from float32's end that a repetition penalty cannot overflow it.
NEVER = float(np.finfo(np.float32).min) / 16


@dataclass(frozen=True)
class GenerationParams:
    """What to generate: sampling, limits and OpenAI's extras."""

    sampling: SamplingParams = SamplingParams()
    max_tokens: int | None = None  # None: until an end token or a full context
    stop: tuple[str, ...] = ()
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    ignore_eos: bool = False  # end-of-generation tokens are never sampled
    logprobs: int | None = None  # None: none; k: the chosen token's and the k best

    def __post_init__(self) -> None:
        if self.max_tokens is not None and self.max_tokens < 0:
            raise ValueError(f"max_tokens must be >= 0, got {self.max_tokens}")
        for name in ("presence_penalty", "frequency_penalty"):
            value = getattr(self, name)
            if not (math.isfinite(value) and -2.0 <= value <= 2.0):
                raise ValueError(f"{name} must be in [-2, 2], got {value}")
        if self.logprobs is not None and not 0 <= self.logprobs <= MAX_TOP_LOGPROBS:
            raise ValueError(f"logprobs must be in [0, {MAX_TOP_LOGPROBS}], got {self.logprobs}")


@dataclass(frozen=True)
class TokenLogprob:
    token: int
    logprob: float
    top: tuple[tuple[int, float], ...]  # the best tokens and their logprobs, best first


@dataclass(frozen=True)
class TokenEvent:
    """One generated token and the text it made visible ("" while held back)."""

    token: int
    text: str
    logprob: TokenLogprob | None


@dataclass(frozen=True)
class DoneEvent:
    """The end of a job. finish_reason: "stop" (end token or stop string), "length"
    (max_tokens or a full context), "cancelled", or "error" (then error says why)."""

    finish_reason: str
    text: str  # text held back until the end
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int  # prompt tokens found in the slot's KV cache, not evaluated
    error: str | None = None


Event = TokenEvent | DoneEvent


@dataclass
class Job:
    prompt: list[int]
    params: GenerationParams
    sink: Callable[[Event], None]
    generated: list[int] = field(default_factory=list)
    cached_tokens: int = 0
    cancelled: bool = False  # set by cancel(), from any thread
    cancel_reason: str = "cancelled"

    def __post_init__(self) -> None:
        if not self.prompt:
            raise ValueError("the prompt is empty: it needs at least one token")
        self.sampler = Sampler(self.params.sampling)
        self._history = list(self.prompt)
        self.counts: dict[int, int] = {}  # generated token -> times, for the penalties

    def cancel(self, reason: str = "cancelled") -> None:
        self.cancel_reason = reason
        self.cancelled = True

    @property
    def history(self) -> list[int]:
        """The prompt and the generated tokens, in order."""
        return self._history

    def sample(
        self, logits: np.ndarray, end_tokens: frozenset[int]
    ) -> tuple[int, TokenLogprob | None]:
        """The next token for logits (one row over the sampled vocabulary), and its
        logprobs when the request asked for them. accept() it unless it ends the job."""
        row = logits
        if self.params.ignore_eos or (self.counts and self._has_penalties()):
            row = logits.copy()
            self._apply_penalties(row, end_tokens)
        token = self.sampler(row, self._history)
        logprob = None if self.params.logprobs is None else _logprob(logits, token, self.params)
        return token, logprob

    def accept(self, token: int) -> None:
        self.generated.append(token)
        self._history.append(token)
        self.counts[token] = self.counts.get(token, 0) + 1

    def _has_penalties(self) -> bool:
        return self.params.presence_penalty != 0.0 or self.params.frequency_penalty != 0.0

    def _apply_penalties(self, row: np.ndarray, end_tokens: frozenset[int]) -> None:
        """OpenAI's presence and frequency penalties over the generated tokens, and
        ignore_eos as llama-server does it: end tokens are never drawn."""
        if self.counts and self._has_penalties():
            ids = np.fromiter(self.counts, dtype=np.int64)
            counts = np.fromiter(self.counts.values(), dtype=np.float32)
            row[ids] -= self.params.presence_penalty + self.params.frequency_penalty * counts
        if self.params.ignore_eos:
            ends = [t for t in end_tokens if t < row.shape[0]]
            row[ends] = NEVER


def _logprob(logits: np.ndarray, token: int, params: GenerationParams) -> TokenLogprob:
    """The model's log-probabilities (before penalties and sampling filters)."""
    shifted = logits.astype(np.float64) - float(logits.max())
    logprobs = shifted - np.log(np.exp(shifted).sum())
    k = params.logprobs or 0
    top: Sequence[int] = ()
    if k:
        top = np.argpartition(-logprobs, k - 1)[:k] if k < len(logprobs) else np.arange(k)
        top = sorted(top, key=lambda i: -logprobs[i])
    return TokenLogprob(
        token, float(logprobs[token]), tuple((int(i), float(logprobs[i])) for i in top)
    )
