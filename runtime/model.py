"""bitllm.Model: load a GGUF and generate text with it.

The forward pass runs in libbitllm (one call per batch of tokens); this module keeps what a
user touches: tokenizing, the KV cache's token history, sampling, stop rules and streaming.
A model holds one long-lived context. Every generation (and every chat turn) evaluates only
the tokens after the longest prefix it shares with what that context already holds, so a
chat turn costs its new tokens, not the whole conversation.
"""

from __future__ import annotations

import sys
import threading
import time
import weakref
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .batch import BatchContext
from .chat import ChatFormat, Message, chat_format
from .closing import Closing
from .gguf_reader import GGUFFile
from .native import check, device_names, i2s_packings, library
from .native_context import NativeContext, cache_type_index
from .sampling import REPEAT_LAST_N, Sampler, SamplingParams
from .text_stream import TextStream
from .tokenizer import Tokenizer

DEFAULT_MAX_CTX = 4096  # default context when the model was trained for more
EVAL_BATCH = 512  # tokens per native call when evaluating a long prompt
MAX_IDLE_CONTEXTS = 4  # KV caches a Model keeps for reuse once concurrent calls end


class ContextFullError(ValueError):
    """A prompt or conversation that does not fit in the model's context."""


@dataclass(frozen=True)
class ModelInfo:
    arch: str
    n_vocab: int
    n_ctx_train: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    n_ff: int
    file_bytes: int
    device: str  # "cpu: " and the kernels' ISA, or "cuda: " and the GPU's name
    device_bytes: int  # what the weights take on the GPU (0 on the CPU)
    repacked_bytes: int  # weights converted as it opened, in the model's own memory


@dataclass
class GenerationStats:
    """What the last generation cost; bit-run prints these as its timings."""

    prompt_tokens: int = 0  # tokens in the prompt
    prompt_evaluated: int = 0  # of those, evaluated (the rest were already in the KV cache)
    prompt_seconds: float = 0.0
    generated_tokens: int = 0
    generation_seconds: float = 0.0
    stop_reason: str = ""  # "eos", "stop string", "max tokens", "context full", "interrupted"


class Context(NativeContext):
    """A native KV cache plus the tokens it holds, in order.

    Safe to share between threads: calls on one context are serialized, and close() waits
    for a call in progress. Calls after close() raise ValueError."""

    def __init__(
        self,
        model: Any,
        n_ctx: int,
        n_vocab: int,
        cache_type_k: str | None = None,
        cache_type_v: str | None = None,
        lock: threading.RLock | None = None,
    ) -> None:
        super().__init__(model, n_ctx, 1, cache_type_k, cache_type_v, lock)
        self.n_vocab = n_vocab
        self.tokens: list[int] = []
        self._logits = np.empty(n_vocab, dtype=np.float32)

    def _closed(self) -> None:
        self.tokens = []

    def eval(self, ids: Sequence[int], pos: int, all_logits: bool = False) -> np.ndarray:
        """Evaluates ids at positions pos.. (dropping whatever the cache held from pos on).
        Returns the logits of the last token (a buffer the next call overwrites), or a new
        [len(ids), n_vocab] array of every token's with all_logits."""
        with self._lock:
            return self._eval(ids, pos, all_logits)

    def _eval(self, ids: Sequence[int], pos: int, all_logits: bool) -> np.ndarray:
        ptr = self._live()
        n = len(ids)
        if not 0 <= pos <= len(self.tokens) or n == 0:
            raise ValueError(f"cannot evaluate {n} tokens at position {pos}")
        if pos + n > self.n_ctx:
            raise ContextFullError(
                f"{pos + n} tokens do not fit in the context of {self.n_ctx} tokens"
            )
        try:
            wide = np.asarray(ids, dtype=np.int64)
        except (OverflowError, TypeError, ValueError):
            raise ValueError("token ids must be integers") from None
        bad = (wide < 0) | (wide >= self.n_vocab)
        if bad.any():
            raise ValueError(f"token id {wide[bad][0]} is outside the vocabulary of {self.n_vocab}")
        tokens = wide.astype(np.int32)
        out = np.empty((n, self.n_vocab), dtype=np.float32) if all_logits else self._logits
        ffi, lib = library()
        del self.tokens[pos:]
        for start in range(0, n, EVAL_BATCH):
            chunk = tokens[start : start + EVAL_BATCH]
            last = start + len(chunk) == n
            if all_logits:
                target = ffi.from_buffer("float[]", out[start : start + len(chunk)])
            else:
                target = ffi.from_buffer("float[]", out) if last else ffi.NULL
            check(
                lib.bl_context_eval(
                    ptr,
                    ffi.from_buffer("int32_t[]", chunk),
                    len(chunk),
                    pos + start,
                    target,
                    1 if all_logits else 0,
                )
            )
            self.tokens.extend(int(t) for t in chunk)
        return out

    def feed(self, ids: Sequence[int]) -> tuple[np.ndarray, int]:
        """Makes the cache hold exactly ids, evaluating only what it does not share with
        what it held. Returns the last token's logits and how many tokens were evaluated."""
        if len(ids) > self.n_ctx:
            raise ContextFullError(
                f"the prompt is {len(ids)} tokens but the context holds {self.n_ctx}; "
                "shorten it or open the model with a larger n_ctx"
            )
        with self._lock:
            start = min(_common_prefix(self.tokens, ids), len(ids) - 1)
            logits = self._eval(ids[start:], start, False)
            return logits, len(ids) - start


def _cache_summary(context: Context) -> str:
    return (
        f"keys {context.cache_type_k}, values {context.cache_type_v}: "
        f"{context.cache_bytes / 2**20:.1f} MiB at {context.n_ctx} positions"
    )


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _check_count(name: str, value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return value


def _check_cache_type(name: str, value: object) -> str | None:
    """value when it names a KV cache type or is None; else ValueError naming it."""
    cache_type_index(name, value)
    return None if value is None else str(value)


def _check_device(device: object) -> str:
    if device not in device_names():
        names = ", ".join(map(repr, device_names()))
        raise ValueError(f"device must be one of {names}, got {device!r}")
    return str(device)


def _check_i2s_packing(packing: object) -> str:
    if packing not in i2s_packings():
        names = ", ".join(map(repr, i2s_packings()))
        raise ValueError(f"i2s_packing must be one of {names}, got {packing!r}")
    return str(packing)


def _open_model(path: Path, threads: int | None, device: str, i2s_packing: str) -> Any:
    """bl_model_open; a GPU the library cannot use raises CudaUnavailableError first, so
    that an error from the open itself is always about the file."""
    if device == "cuda":
        from . import cuda

        if not cuda.available():
            raise cuda.CudaUnavailableError(cuda.reason())
    ffi, lib = library()
    params = ffi.new(
        "bl_model_params *",
        {
            "threads": threads or 0,
            "isa": lib.BL_ISA_AUTO,
            "act_bits": 0,  # what the file says
            "device": device_names().index(device),
            "i2s_packing": i2s_packings().index(i2s_packing),
        },
    )
    out = ffi.new("bl_model **")
    check(lib.bl_model_open(str(path).encode(), params, out))
    return out[0]


class NativeModel(Closing):
    """The weights and forward pass in libbitllm, without tokenizer or sampling: what
    bit-bench times, and what Model builds on. Contexts made here close with it.

    device "cuda" keeps the weights, KV caches and scratch on the GPU (threads then only
    serve the embedding lookup); bitllm.runtime.cuda.CudaUnavailableError says why when
    the library was built without CUDA or no GPU or driver is usable. i2s_packing: which of
    bitnet.cpp's I2_S packings the file's I2_S tensors hold ("x86", the default and what
    bitnet.cpp's converter writes, "arm" or "x86-1x4"); they are repacked to bt2 as it opens."""

    def __init__(
        self,
        path: str | Path,
        threads: int | None = None,
        device: str = "cpu",
        i2s_packing: str = "x86",
    ) -> None:
        self._ptr = None
        self._contexts: weakref.WeakSet[Context | BatchContext] = weakref.WeakSet()
        self._lock = threading.RLock()  # guards _ptr and _contexts
        # The CPU runs contexts of one model side by side (the weights are read-only and
        # the model's thread pool serializes its runs); the CUDA backend's launches and
        # graphs are not made for that, so its contexts take turns.
        self._device_lock = threading.RLock() if device == "cuda" else None
        self.path = Path(path)
        threads = _check_count("threads", threads)
        device = _check_device(device)
        i2s_packing = _check_i2s_packing(i2s_packing)
        if not self.path.is_file():
            raise FileNotFoundError(f"model file not found: {self.path}")
        self._ptr = _open_model(self.path, threads, device, i2s_packing)
        ffi, lib = library()
        raw = ffi.new("bl_model_info *")
        check(lib.bl_model_get_info(self._ptr, raw))
        self.info = ModelInfo(
            arch=ffi.string(raw.arch).decode(),
            n_vocab=raw.n_vocab,
            n_ctx_train=raw.n_ctx_train,
            n_embd=raw.n_embd,
            n_layer=raw.n_layer,
            n_head=raw.n_head,
            n_head_kv=raw.n_head_kv,
            n_ff=raw.n_ff,
            file_bytes=raw.file_bytes,
            device=ffi.string(raw.device).decode(errors="replace"),
            device_bytes=raw.device_bytes,
            repacked_bytes=raw.repacked_bytes,
        )

    def new_context(
        self, n_ctx: int, cache_type_k: str | None = None, cache_type_v: str | None = None
    ) -> Context:
        """A KV cache of n_ctx positions, its keys and values kept as cache_type_k and
        cache_type_v ("f16", "q8_0" or "f32"; None: the device's default, f16 on the CPU)."""
        _check_count("n_ctx", n_ctx)
        with self._lock:
            if self._ptr is None:
                raise ValueError(f"model {self.path} is closed")
            context = Context(
                self._ptr, n_ctx, self.info.n_vocab, cache_type_k, cache_type_v, self._device_lock
            )
            self._contexts.add(context)
            return context

    def new_batch_context(
        self,
        n_ctx: int,
        n_seq: int,
        cache_type_k: str | None = None,
        cache_type_v: str | None = None,
    ) -> BatchContext:
        """n_seq KV caches of n_ctx positions each, evaluated together (runtime.batch)."""
        _check_count("n_ctx", n_ctx)
        _check_count("n_seq", n_seq)
        with self._lock:
            if self._ptr is None:
                raise ValueError(f"model {self.path} is closed")
            context = BatchContext(
                self._ptr,
                n_ctx,
                n_seq,
                self.info.n_vocab,
                cache_type_k,
                cache_type_v,
                self._device_lock,
            )
            self._contexts.add(context)
            return context

    def gguf(self) -> GGUFFile:
        """The model file's metadata and tensor table, from the parse that loaded the
        weights (the file is not read again)."""
        with self._lock:
            if self._ptr is None:
                raise ValueError(f"model {self.path} is closed")
            return GGUFFile.of_model(library()[1].bl_model_gguf(self._ptr), self.path)

    def close(self) -> None:
        """Frees the KV caches and unmaps the weights. A call running on another thread
        finishes first; calls after this raise ValueError."""
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            for context in list(self._contexts):
                context.close()
            ptr, self._ptr = self._ptr, None
            if ptr is not None:
                library()[1].bl_model_free(ptr)


class Model(Closing):
    """A GGUF model ready to generate.

    threads: native threads (None: one per physical core). n_ctx: KV cache positions (None:
    the training context, at most 4096). device: "cpu", or "cuda" for an NVIDIA GPU (raises
    bitllm.runtime.cuda.CudaUnavailableError, a RuntimeError, when none is usable).
    cache_type_k, cache_type_v: how the KV cache keeps keys and values, llama.cpp's names:
    "f16" (half the bytes of "f32", float rounding only), "q8_0" (about a quarter: blocks
    of 32 int8 with an f16 scale) or "f32"; None: the device's default (f16 on the CPU, f32
    on CUDA, which keeps f32 only). i2s_packing: which of bitnet.cpp's three I2_S packings
    the file's I2_S tensors hold, "x86" (default: what bitnet.cpp's converter writes and the
    published files hold), "arm" or "x86-1x4". Use as a context manager, or call close().
    """

    def __init__(
        self,
        path: str | Path,
        threads: int | None = None,
        n_ctx: int | None = None,
        device: str = "cpu",
        cache_type_k: str | None = None,
        cache_type_v: str | None = None,
        i2s_packing: str = "x86",
    ) -> None:
        started = time.perf_counter()
        self._native: NativeModel | None = None
        self._idle: list[Context] = []  # KV caches no generation is using
        self._idle_lock = threading.Lock()
        self.path = Path(path)
        threads = _check_count("threads", threads)
        n_ctx = _check_count("n_ctx", n_ctx)
        self.device = _check_device(device)
        self.cache_type_k = _check_cache_type("cache_type_k", cache_type_k)
        self.cache_type_v = _check_cache_type("cache_type_v", cache_type_v)
        if not self.path.is_file():
            raise FileNotFoundError(f"model file not found: {self.path}")
        self._native = NativeModel(self.path, threads, self.device, i2s_packing)
        try:
            gguf = self._native.gguf()
            self.tokenizer = Tokenizer.from_metadata(gguf.metadata, str(self.path))
        except BaseException:
            self.close()
            raise
        self.metadata: dict[str, Any] = gguf.metadata
        self.tensor_types = {name: t.type_name for name, t in gguf.tensors.items()}
        self.info = self._native.info
        self.threads = threads
        self.n_ctx = n_ctx or min(self.info.n_ctx_train, DEFAULT_MAX_CTX) or DEFAULT_MAX_CTX
        self.end_tokens = self.tokenizer.eog_ids
        # A head padded beyond the vocabulary has rows no text belongs to: never sample them.
        self._sample_vocab = min(self.info.n_vocab, self.tokenizer.n_vocab)
        self._chat_format: ChatFormat | None = None
        self.last_stats = GenerationStats()
        self.load_seconds = time.perf_counter() - started

    # -- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Frees the KV caches and unmaps the weights; the model cannot be used after."""
        native, self._native = getattr(self, "_native", None), None
        self._idle = []
        if native is not None:
            native.close()

    def new_context(self, n_ctx: int) -> Context:
        """A separate KV cache of n_ctx positions (for batch work), in the model's cache
        types. It is closed with the model, or earlier with its close()."""
        native = self._native
        if native is None:
            raise ValueError(f"model {self.path} is closed")
        return native.new_context(n_ctx, self.cache_type_k, self.cache_type_v)

    def _take_context(self, ids: Sequence[int]) -> Context:
        """A KV cache for one generation, which has it to itself until _give_back: the idle
        one sharing the longest prefix with ids (a chat's earlier turns), else a new one.
        So generations running at once, from several threads or interleaved streams, each
        have their own cache, and one at a time they reuse a single cache."""
        with self._idle_lock:
            live = [c for c in self._idle if not c.closed]
            if live:
                best = max(live, key=lambda c: _common_prefix(c.tokens, ids))
                live.remove(best)
                self._idle = live
                return best
        return self.new_context(self.n_ctx)

    def _give_back(self, context: Context) -> None:
        with self._idle_lock:
            if not context.closed and self._native is not None:
                self._idle.append(context)
            surplus = self._idle[:-MAX_IDLE_CONTEXTS]
            del self._idle[:-MAX_IDLE_CONTEXTS]
        for old in surplus:  # after a burst of concurrent calls: keep the newest caches
            old.close()

    # -- what it is -------------------------------------------------------------------

    @property
    def n_vocab(self) -> int:
        return self.info.n_vocab

    def summary(self) -> dict[str, Any]:
        """What bit-run --verbose prints about the model."""
        info = self.info
        types: dict[str, int] = {}
        for type_name in self.tensor_types.values():
            types[str(type_name)] = types.get(str(type_name), 0) + 1
        template = "from the file" if self.metadata.get("tokenizer.chat_template") else "built-in"
        gpu_memory = {"GPU memory": f"{info.device_bytes / 2**20:.1f} MiB"}
        repacked = {"repacked as it opened": f"{info.repacked_bytes / 2**20:.1f} MiB"}
        context = self._take_context([])  # the cache a generation would use
        try:
            cache = _cache_summary(context)
        finally:
            self._give_back(context)
        return {
            "file": str(self.path),
            "name": self.metadata.get("general.name", ""),
            "arch": info.arch,
            "layers": info.n_layer,
            "embedding": info.n_embd,
            "heads": f"{info.n_head} (kv {info.n_head_kv})",
            "feed forward": info.n_ff,
            "vocab": info.n_vocab,
            "context": f"{self.n_ctx} (trained {info.n_ctx_train})",
            "KV cache": cache,
            "tensors": ", ".join(f"{n} x {t}" for t, n in sorted(types.items())),
            "file size": f"{info.file_bytes / 2**20:.1f} MiB",
            **(repacked if info.repacked_bytes > 0 else {}),
            "chat template": template,
            "device": info.device,
            **(gpu_memory if info.device_bytes > 0 else {}),
            "threads": self.threads or "one per core",
        }

    # -- tokens -----------------------------------------------------------------------

    def tokenize(
        self, text: str, add_special: bool = True, parse_special: bool = False
    ) -> list[int]:
        """Token ids of text; add_special adds BOS (and EOS) as the model's metadata says."""
        return self.tokenizer.encode(text, add_special=add_special, parse_special=parse_special)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids)

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """float32 [len(ids), n_vocab]: the logits after each token, in a fresh context."""
        ids = list(ids)
        if not ids:
            raise ValueError("logits() needs at least one token")
        if len(ids) > self.n_ctx:
            raise ContextFullError(
                f"{len(ids)} tokens do not fit in the context of {self.n_ctx} tokens"
            )
        context = self.new_context(len(ids))
        try:
            return context.eval(ids, 0, all_logits=True)
        finally:
            context.close()

    # -- generation -------------------------------------------------------------------

    def generate_tokens(
        self,
        ids: Sequence[int],
        max_tokens: int | None = 128,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        seed: int | None = None,
        repeat_last_n: int = REPEAT_LAST_N,
    ) -> Iterator[int]:
        """Continues ids; yields each new token id. Stops before an end-of-generation token,
        after max_tokens (None: when the context is full) or when the context is full."""
        params = SamplingParams(
            temperature, top_k, top_p, min_p, repeat_penalty, seed, repeat_last_n
        )
        return self._generate(self._prompt_ids(ids), _check_max_tokens(max_tokens), params)

    def generate(
        self,
        prompt: str,
        max_tokens: int | None = 128,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        seed: int | None = None,
        repeat_last_n: int = REPEAT_LAST_N,
        stop: str | Sequence[str] | None = None,
        stream: bool = False,
    ) -> str | Iterator[str]:
        """Continues prompt (tokenized with BOS, special tokens parsed as in llama.cpp).
        Returns the new text, or with stream=True an iterator over its pieces. Generation
        ends at an end-of-generation token, a stop string (not included), max_tokens or a
        full context."""
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
        ids = self.tokenize(prompt, add_special=True, parse_special=True)
        params = SamplingParams(
            temperature, top_k, top_p, min_p, repeat_penalty, seed, repeat_last_n
        )
        pieces = self._stream_text(ids, _check_max_tokens(max_tokens), params, stop)
        return pieces if stream else "".join(pieces)

    def chat(
        self,
        messages: Sequence[Message],
        stream: bool = False,
        max_tokens: int | None = None,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        seed: int | None = None,
        repeat_last_n: int = REPEAT_LAST_N,
        stop: str | Sequence[str] | None = None,
    ) -> str | Iterator[str]:
        """The assistant's reply to messages ([{"role", "content"}, ...]), rendered with the
        model's chat template. Reuses the KV cache for the part of the conversation it has
        already seen. max_tokens None: until the end of the turn or a full context."""
        ids = self.chat_tokens(messages)
        if len(ids) > self.n_ctx:
            raise ContextFullError(
                f"the conversation is {len(ids)} tokens and the context holds {self.n_ctx}: "
                "start a new conversation, drop old turns, or use a larger n_ctx"
            )
        params = SamplingParams(
            temperature, top_k, top_p, min_p, repeat_penalty, seed, repeat_last_n
        )
        pieces = self._stream_text(ids, _check_max_tokens(max_tokens), params, stop)
        return pieces if stream else "".join(pieces)

    def chat_prompt(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        """The text the chat template makes of messages."""
        if self._chat_format is None:
            self._chat_format = chat_format(self.metadata, self.tokenizer.tokens.__getitem__)
        return self._chat_format.render(messages, add_generation_prompt)

    def chat_tokens(self, messages: Sequence[Message]) -> list[int]:
        """The token ids of messages rendered for a reply (special tokens parsed, BOS added
        when the model wants one and the template did not write it)."""
        return chat_prompt_ids(self.tokenizer, self.chat_prompt(messages))

    def _prompt_ids(self, ids: Sequence[int]) -> list[int]:
        ids = [int(t) for t in ids]
        if not ids:
            raise ValueError("the prompt is empty: pass at least one token")
        if len(ids) > self.n_ctx:
            raise ContextFullError(
                f"the prompt is {len(ids)} tokens but the context holds {self.n_ctx}: "
                "shorten it or open the model with a larger n_ctx"
            )
        return ids

    def _stream_text(
        self,
        ids: Sequence[int],
        max_tokens: int | None,
        params: SamplingParams,
        stop: str | Sequence[str] | None,
    ) -> Iterator[str]:
        tokens = self._generate(self._prompt_ids(ids), max_tokens, params)
        return self._text_pieces(tokens, TextStream(self.tokenizer, stop))

    def _text_pieces(self, tokens: Generator[int, None, None], text: TextStream) -> Iterator[str]:
        try:
            for token in tokens:
                piece = text.feed(token)
                if piece:
                    yield piece
                if text.stopped:
                    self.last_stats.stop_reason = "stop string"
                    return
            piece = text.finish()
            if piece:
                yield piece
        finally:
            tokens.close()

    def _generate(
        self, ids: list[int], max_tokens: int | None, params: SamplingParams
    ) -> Generator[int, None, None]:
        """Starts when first iterated: evaluates the prompt, then samples and evaluates one
        token at a time. The KV cache stays consistent whenever the caller stops early."""
        stats = self.last_stats = GenerationStats(prompt_tokens=len(ids), stop_reason="interrupted")
        context = self._take_context(ids)
        sampler = Sampler(params)
        history = list(ids)
        limit = sys.maxsize if max_tokens is None else max_tokens
        started = decode_started = time.perf_counter()
        try:
            logits, stats.prompt_evaluated = context.feed(ids)
            decode_started = time.perf_counter()
            stats.prompt_seconds = decode_started - started
            while stats.generated_tokens < limit:
                token = sampler(logits[: self._sample_vocab], history)
                if token in self.end_tokens:
                    stats.stop_reason = "eos"
                    return
                stats.generated_tokens += 1
                yield token
                history.append(token)
                if stats.generated_tokens >= limit:
                    break
                if len(history) > context.n_ctx:
                    stats.stop_reason = "context full"
                    return
                logits = context.eval([token], len(history) - 1)
            stats.stop_reason = "max tokens"
        finally:
            stats.generation_seconds = time.perf_counter() - decode_started
            self._give_back(context)


def chat_prompt_ids(tokenizer: Tokenizer, rendered_chat: str) -> list[int]:
    """The token ids of a rendered chat prompt: special tokens parsed, BOS added when the
    model wants one and the template did not write it."""
    ids = tokenizer.encode(rendered_chat, add_special=False, parse_special=True)
    bos = tokenizer.bos_id
    if tokenizer.add_bos and bos is not None and ids[:1] != [bos]:
        ids.insert(0, bos)
    return ids


def _check_max_tokens(max_tokens: int | None) -> int | None:
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0
    ):
        raise ValueError(f"max_tokens must be an integer >= 0 or None, got {max_tokens!r}")
    return max_tokens
