"""The scheduler: continuous batching of generation requests over a fixed set of slots.

One thread owns the model and `parallel` slots; each slot is one sequence of a BatchContext
(its own KV cache) and the tokens that cache holds. Everything else talks to that thread
through submit() and Job.cancel().
One step of the scheduler:

1. drops cancelled jobs (their slots are free at once);
2. admits queued jobs into free slots, choosing the free slot whose cached tokens share the
   longest prefix with the prompt; when another slot (running or not) shares a longer one,
   its cache is copied, so a system prompt that many requests share is evaluated once;
3. gives every active slot its piece of work: running streams one decode token each, then
   prompts being prefilled a chunk each, oldest first, as many tokens as take about as
   long as the decode tokens (StepCosts), so that a long prompt arriving does not stall
   the streams that are running;
4. evaluates all pieces in one native call (evaluate()), which reads every weight once for
   all of them;
5. samples a token for every slot whose prompt is fully evaluated, and reports it.

A request therefore joins the running batch at the next step. Each slot's tokens are
evaluated in its own KV cache with its own sampler, so a request's tokens do not depend on
what else is running (tests/server checks greedy output alone and among 15 others).
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..batch import BatchContext
from ..chat import ChatFormat, Message, chat_format
from ..model import (
    DEFAULT_MAX_CTX,
    ContextFullError,
    NativeModel,
    _common_prefix,
    chat_prompt_ids,
)
from ..text_stream import TextStream
from ..tokenizer import Tokenizer
from .jobs import DoneEvent, Job, TokenEvent
from .metrics import Metrics

IDLE_WAIT_SECONDS = 0.5  # an idle scheduler wakes this often even if nobody notifies it
PREFILL_SHARE = 1.0  # a step's prompt chunk may take this times its decode tokens' time
MIN_CHUNK = 4  # prompt tokens a step evaluates at least, so a prompt always advances
COST_SMOOTHING = 0.2  # weight of the newest step in the running cost estimates


class QueueFullError(RuntimeError):
    """Every slot is busy and the queue holds max_queue requests."""


class NotReadyError(RuntimeError):
    """The model is still loading, failed to load, or the engine is shutting down."""


@dataclass(frozen=True)
class EngineSettings:
    model_path: Path
    parallel: int = 1  # slots: sequences generated at the same time
    n_ctx: int | None = None  # KV positions over all slots (None: trained context, <= 4096)
    threads: int | None = None
    device: str = "cpu"
    chat_template: str | None = None  # Jinja source; None: the model's own
    step_tokens: int = 256  # tokens evaluated per step at most, decode tokens first
    max_queue: int = 64  # requests that may wait for a slot
    alias: str | None = None  # the model's name in the API (None: the file name)
    cache_type_k: str | None = None  # KV cache types ("f16", "q8_0", "f32"; None: the
    cache_type_v: str | None = None  # device's default)

    def __post_init__(self) -> None:
        for name in ("parallel", "step_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_queue < 0:
            raise ValueError(f"max_queue must be >= 0, got {self.max_queue}")
        if self.n_ctx is not None and self.n_ctx < self.parallel:
            raise ValueError(
                f"a context of {self.n_ctx} tokens cannot be shared by {self.parallel} slots"
            )


class LoadedModel:
    """The weights, vocabulary and chat format the scheduler works with."""

    def __init__(self, settings: EngineSettings) -> None:
        path = Path(settings.model_path)
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        self.native = NativeModel(path, settings.threads, settings.device)
        try:
            self.metadata: dict[str, Any] = self.native.gguf().metadata
            self.tokenizer = Tokenizer.from_metadata(self.metadata, str(path))
            self.chat: ChatFormat = chat_format(
                self.metadata, self.tokenizer.tokens.__getitem__, settings.chat_template
            )
        except BaseException:
            self.native.close()
            raise
        self.name = settings.alias or path.name
        self.end_tokens = self.tokenizer.eog_ids
        # A head padded beyond the vocabulary has rows no text belongs to: never sample them.
        self.sample_vocab = min(self.native.info.n_vocab, self.tokenizer.n_vocab)
        trained = self.native.info.n_ctx_train
        self.n_ctx = settings.n_ctx or min(trained, DEFAULT_MAX_CTX) or DEFAULT_MAX_CTX
        self.slot_ctx = self.n_ctx // settings.parallel

    def completion_ids(self, prompt: str) -> list[int]:
        """A completion prompt's tokens: BOS added, special tokens parsed (as bitllm.Model)."""
        return self.tokenizer.encode(prompt, add_special=True, parse_special=True)

    def chat_ids(self, messages: Sequence[Message]) -> list[int]:
        return chat_prompt_ids(self.tokenizer, self.chat.render(messages))


@dataclass
class Slot:
    seq: int  # its sequence in the engine's BatchContext
    tokens: list[int] = field(default_factory=list)  # what that sequence's KV cache holds
    job: Job | None = None
    text: TextStream | None = None
    order: int = 0  # admission order: older prompts are prefilled first


@dataclass
class Piece:
    """A slot's work in one step: evaluate tokens at positions pos.."""

    slot: Slot
    tokens: list[int]
    pos: int
    last: bool  # whether this completes what the slot must evaluate (its logits are used)
    prompt: bool = False  # a chunk of a prompt (else one decode token)


def evaluate(batch: BatchContext, pieces: Sequence[Piece]) -> list[np.ndarray | Exception]:
    """The forward pass of one step, one native call for all pieces: for each piece, the
    logits after its last token if it is its slot's last piece (else an empty row), or the
    error the call raised. Each slot's cached tokens grow by its piece."""
    if not pieces:
        return []
    tokens = [t for piece in pieces for t in piece.tokens]
    positions = [piece.pos + i for piece in pieces for i in range(len(piece.tokens))]
    seqs = [piece.slot.seq for piece in pieces for _ in piece.tokens]
    wanted = [
        piece.last and t == len(piece.tokens) - 1
        for piece in pieces
        for t in range(len(piece.tokens))
    ]
    try:
        rows = batch.decode(tokens, positions, seqs, wanted)
    except (ValueError, RuntimeError, MemoryError) as e:
        for piece in pieces:  # what their caches hold is unknown now: start them afresh
            piece.slot.tokens.clear()
        return [e] * len(pieces)
    results: list[np.ndarray | Exception] = []
    row = 0
    for piece in pieces:
        del piece.slot.tokens[piece.pos :]
        piece.slot.tokens.extend(piece.tokens)
        results.append(rows[row] if piece.last else rows[:0])
        row += int(piece.last)
    return results


@dataclass
class StepCosts:
    """What a step costs, estimated from the steps timed so far: a step of decode tokens
    only, and what each prompt token adds to it. They size a step's prompt chunk so that it
    adds about PREFILL_SHARE times a decode step: a long prompt arriving then stretches the
    running streams' inter-token latency by about 1 + PREFILL_SHARE, whatever the model,
    the machine and the way evaluate() runs the pieces."""

    decode_step: float | None = None
    prompt_token: float | None = None

    def observe(self, seconds: float, decodes: int, prompt_tokens: int) -> None:
        if prompt_tokens == 0:
            if decodes:
                self.decode_step = _smooth(self.decode_step, seconds)
        elif not decodes:  # includes the step's fixed cost: an overestimate, on the safe side
            self.prompt_token = _smooth(self.prompt_token, seconds / prompt_tokens)
        elif self.decode_step is not None:
            added = max(seconds - self.decode_step, 0.0) / prompt_tokens
            self.prompt_token = _smooth(self.prompt_token, added)

    def prompt_budget(self, decodes: int, limit: int) -> int:
        """Prompt tokens a step with decode tokens may evaluate (at most limit)."""
        if not decodes or self.decode_step is None or not self.prompt_token:
            return limit
        share = self.decode_step * PREFILL_SHARE / self.prompt_token
        return int(min(limit, max(MIN_CHUNK, share)))


def _smooth(old: float | None, new: float) -> float:
    return new if old is None else old + COST_SMOOTHING * (new - old)


class Engine:
    """Owns the model and its slots; runs the scheduler in its own thread (start()), or
    step by step in the caller's (load(), then step())."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self.metrics = Metrics(slots=settings.parallel)
        self.model: LoadedModel | None = None
        self.state = "loading"  # then "ready", "failed" or "stopped"
        self.error: str | None = None
        self._slots: list[Slot] = []
        self._batch: BatchContext | None = None
        self._queue: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._busy = 0  # slots holding a job (written by the scheduler under _cond)
        self._draining = False
        self._stopping = False
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self.costs = StepCosts()

    # -- lifetime -----------------------------------------------------------------------

    def load(self) -> LoadedModel:
        """Loads the model and makes the slots; raises (and records) why it cannot."""
        try:
            model = LoadedModel(self.settings)
            self._batch = model.native.new_batch_context(
                model.slot_ctx,
                self.settings.parallel,
                self.settings.cache_type_k,
                self.settings.cache_type_v,
            )
            self._slots = [Slot(seq) for seq in range(self.settings.parallel)]
        except (OSError, ValueError, RuntimeError, MemoryError) as e:
            self.state, self.error = "failed", str(e)
            raise
        self.model, self.state = model, "ready"
        return model

    def start(self, load: bool = True, on_failure: Callable[[str], None] | None = None) -> None:
        """Runs the scheduler in a daemon thread; with load, the thread loads the model
        first (state is "loading" until then) and calls on_failure(message) if it fails."""

        def run() -> None:
            if load:
                try:
                    self.load()
                except (OSError, ValueError, RuntimeError, MemoryError) as e:
                    if on_failure is not None:
                        on_failure(str(e))
                    return
            self._loop()

        self._thread = threading.Thread(target=run, name="bitllm-scheduler", daemon=True)
        self._thread.start()

    def drain(self) -> None:
        """Refuses new requests from now on; running ones go on."""
        with self._cond:
            self._draining = True

    def cancel_all(self, reason: str = "shutdown") -> None:
        """Cancels every queued and running job (from any thread)."""
        with self._cond:
            jobs = list(self._queue) + [s.job for s in self._slots if s.job is not None]
            for job in jobs:
                job.cancel(reason)
            self._cond.notify_all()

    def stop(self) -> None:
        """Cancels what is left, stops the thread and frees the model."""
        self.drain()
        self.cancel_all()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._reap()
        if self.model is not None:
            self.model.native.close()
        self.state = "stopped"

    # -- requests -----------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queues job; raises NotReadyError, QueueFullError, or ContextFullError for a
        prompt longer than a slot's context."""
        model = self.model
        if self.state != "ready" or model is None:
            raise NotReadyError(self.error or "the model is still loading")
        if len(job.prompt) > model.slot_ctx:
            raise ContextFullError(
                f"the prompt is {len(job.prompt)} tokens but a slot's context holds "
                f"{model.slot_ctx} tokens"
            )
        with self._cond:
            if self._draining:
                raise NotReadyError("the server is shutting down")
            room = self.settings.max_queue + self.settings.parallel - self._busy
            if len(self._queue) >= room:
                self.metrics.reject()
                raise QueueFullError(
                    f"all {self.settings.parallel} slots are busy and "
                    f"{len(self._queue)} requests are waiting"
                )
            self._queue.append(job)
            self.metrics.set_queue(len(self._queue))
            self._cond.notify_all()

    # -- the scheduler --------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._queue and self._busy == 0:
                    self._cond.wait(IDLE_WAIT_SECONDS)
                if self._stopping:
                    return
            if not self.step():
                with self._cond:  # only cancelled or waiting work: do not spin
                    self._cond.wait(0.01)

    def step(self) -> bool:
        """One scheduler step; returns whether anything was evaluated."""
        assert self._batch is not None, "step() before load()"
        started = time.perf_counter()
        self._reap()
        self._admit()
        pieces = self._plan()
        evaluated = time.perf_counter()
        results = evaluate(self._batch, pieces)
        prompt_tokens = sum(len(piece.tokens) for piece in pieces if piece.prompt)
        decodes = sum(not piece.prompt for piece in pieces)
        self.costs.observe(time.perf_counter() - evaluated, decodes, prompt_tokens)
        generated = 0
        for piece, result in zip(pieces, results, strict=True):
            if isinstance(result, Exception):
                self._finish(piece.slot, "error", error=str(result))
            elif piece.last:
                generated += self._advance(piece.slot, result)
        with self._cond:
            queued = len(self._queue)
        self.metrics.stepped(time.perf_counter() - started, generated, queued, self._busy)
        return bool(pieces)

    def _reap(self) -> None:
        for slot in self._slots:
            if slot.job is not None and slot.job.cancelled:
                self._finish(slot, slot.job.cancel_reason)
        with self._cond:
            waiting = [job for job in self._queue if job.cancelled]
            for job in waiting:
                self._queue.remove(job)
            if self._stopping:
                waiting += self._queue
                self._queue.clear()
        for job in waiting:
            self._report_done(job, job.cancel_reason if job.cancelled else "shutdown")

    def _admit(self) -> None:
        model = self.model
        assert model is not None
        while True:
            free = [slot for slot in self._slots if slot.job is None]
            if not free:
                return
            with self._cond:
                if not self._queue:
                    return
                job = self._queue.popleft()
            if job.params.max_tokens == 0:
                self._report_done(job, "length")
                continue
            slot, job.cached_tokens = self._reuse_prefix(free, job.prompt)
            slot.job, slot.order = job, next(self._order)
            slot.text = TextStream(model.tokenizer, job.params.stop)
            with self._cond:
                self._busy += 1

    def _reuse_prefix(self, free: list[Slot], prompt: list[int]) -> tuple[Slot, int]:
        """The free slot for prompt and how many prompt tokens its cache already holds:
        the free slot sharing the longest prefix, topped up with a copy of another slot's
        cache (running or not) that shares more. The prompt's last token is always
        evaluated again: its logits give the first generated token."""
        assert self._batch is not None
        slot = max(free, key=lambda s: _common_prefix(s.tokens, prompt))
        limit = len(prompt) - 1
        keep = min(_common_prefix(slot.tokens, prompt), limit)
        donor = max(self._slots, key=lambda s: _common_prefix(s.tokens, prompt))
        shared = min(_common_prefix(donor.tokens, prompt), limit)
        if shared > keep:
            self._batch.copy(donor.seq, slot.seq, shared)
            slot.tokens, keep = donor.tokens[:shared], shared
        del slot.tokens[keep:]
        return slot, keep

    def _plan(self) -> list[Piece]:
        """Decode tokens first (one per running stream), then prompt chunks, oldest prompt
        first, as many tokens as keep the running streams at their pace (StepCosts) and
        the step within its budget."""
        active = sorted((s for s in self._slots if s.job is not None), key=lambda s: s.order)
        pieces = []
        for slot in active:
            if slot.job is not None and slot.job.generated:
                pos = len(slot.tokens)
                pieces.append(Piece(slot, slot.job.history[pos:], pos, True))
        limit = max(self.settings.step_tokens - len(pieces), MIN_CHUNK)
        budget = self.costs.prompt_budget(len(pieces), limit)
        for slot in active:
            if budget <= 0:
                break
            if slot.job is None or slot.job.generated:
                continue
            pos = len(slot.tokens)
            chunk = slot.job.prompt[pos : pos + budget]
            last = pos + len(chunk) == len(slot.job.prompt)
            pieces.append(Piece(slot, chunk, pos, last, prompt=True))
            budget -= len(chunk)
        return pieces

    def _advance(self, slot: Slot, logits: np.ndarray) -> int:
        """Samples the slot's next token and reports it; returns how many were generated."""
        job, model, text = slot.job, self.model, slot.text
        assert job is not None and model is not None and text is not None
        token, logprob = job.sample(logits[: model.sample_vocab], model.end_tokens)
        if token in model.end_tokens and not job.params.ignore_eos:
            self._finish(slot, "stop")
            return 0
        job.accept(token)
        self._emit(job, TokenEvent(token, text.feed(token), logprob))
        limit = job.params.max_tokens
        if text.stopped:
            self._finish(slot, "stop")
        elif (limit is not None and len(job.generated) >= limit) or (
            len(job.history) > model.slot_ctx
        ):
            self._finish(slot, "length")
        return 1

    def _finish(self, slot: Slot, reason: str, error: str | None = None) -> None:
        job, text = slot.job, slot.text
        assert job is not None
        slot.job = slot.text = None
        with self._cond:
            self._busy -= 1
        tail = text.finish() if text is not None and reason in ("stop", "length") else ""
        self._report_done(job, reason, tail, error)

    def _report_done(self, job: Job, reason: str, tail: str = "", error: str | None = None) -> None:
        prompt = len(job.prompt)
        evaluated = prompt - job.cached_tokens if reason not in ("cancelled", "shutdown") else 0
        self.metrics.finished(reason, prompt, evaluated)
        done = DoneEvent(reason, tail, prompt, len(job.generated), job.cached_tokens, error)
        self._emit(job, done)

    def _emit(self, job: Job, event: TokenEvent | DoneEvent) -> None:
        try:
            job.sink(event)
        except RuntimeError:  # the caller's event loop is gone: nobody is listening
            job.cancel()
