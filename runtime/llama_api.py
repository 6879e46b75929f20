"""bitllm.Llama: llama-cpp-python's Llama class on a bitllm model.

A program written for llama-cpp-python runs after changing `from llama_cpp import Llama` to
`from bitllm import Llama`: the constructor takes the same names, create_completion /
__call__ and create_chat_completion return the same OpenAI-shaped dicts (with stream=True,
an iterator over the chunk dicts), tokenize takes bytes and detokenize returns bytes.
Generation runs on bit-serve's scheduler with one slot, so a prompt that shares a prefix
with the previous one evaluates only what is new.
"""

from __future__ import annotations

import queue
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .chat import Message
from .closing import Closing
from .model import ContextFullError
from .sampling import SamplingParams
from .serve.engine import Engine, EngineSettings, LoadedModel
from .serve.jobs import DoneEvent, Event, GenerationParams, Job, TokenEvent
from .serve.responses import ResponseBuilder

DEFAULT_SEED = 0xFFFFFFFF  # llama-cpp-python's LLAMA_DEFAULT_SEED: a fresh random seed
MAX_WAITING = 64  # calls from other threads (or a just-closed stream's) wait their turn


class Llama(Closing):
    """A model ready to complete text and chat, as llama-cpp-python's Llama.

    n_ctx: context positions (0: the model's trained context, at most 4096).
    n_gpu_layers: 0 runs on the CPU; any other value runs the whole model on the GPU
    (bitllm offloads all layers or none). chat_format must be None (the model's own chat
    template); chat_template takes Jinja source instead. use_mmap and use_mlock are accepted
    for compatibility: the weights are always memory-mapped.
    """

    def __init__(
        self,
        model_path: str,
        *,
        n_ctx: int = 512,
        n_threads: int | None = None,
        n_batch: int = 512,
        n_gpu_layers: int = 0,
        seed: int = DEFAULT_SEED,
        chat_format: str | None = None,
        chat_template: str | None = None,
        use_mmap: bool = True,
        use_mlock: bool = False,
        verbose: bool = True,
    ) -> None:
        self._engine: Engine | None = None
        if chat_format is not None:
            raise ValueError(
                f"chat_format={chat_format!r}: named chat formats are not supported; leave it "
                "None for the model's own template or pass chat_template=<Jinja source>"
            )
        self.model_path = str(model_path)
        settings = EngineSettings(
            model_path=Path(model_path),
            parallel=1,
            n_ctx=n_ctx or None,
            threads=n_threads,
            device="cpu" if n_gpu_layers == 0 else "cuda",
            chat_template=chat_template,
            step_tokens=n_batch,
            max_queue=MAX_WAITING,
            alias=self.model_path,
        )
        engine = Engine(settings)
        self._model: LoadedModel = engine.load()
        engine.start(load=False)
        self._engine = engine
        self._seeds = np.random.default_rng(None if seed == DEFAULT_SEED else seed)
        self.metadata = {k: str(v) for k, v in self._model.metadata.items() if _is_scalar(v)}
        self.verbose = verbose
        if verbose:
            info = self._model.native.info
            print(
                f"bitllm: loaded {self.model_path} ({info.arch}, {info.n_layer} layers, "
                f"context {self.n_ctx()}, {info.device})",
                file=sys.stderr,
            )

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        engine, self._engine = getattr(self, "_engine", None), None
        if engine is not None:
            engine.stop()

    # -- what it is -----------------------------------------------------------------------

    def n_ctx(self) -> int:
        return self._model.slot_ctx

    def n_vocab(self) -> int:
        return self._model.tokenizer.n_vocab

    def token_bos(self) -> int:
        return -1 if self._model.tokenizer.bos_id is None else self._model.tokenizer.bos_id

    def token_eos(self) -> int:
        return -1 if self._model.tokenizer.eos_id is None else self._model.tokenizer.eos_id

    # -- tokens ---------------------------------------------------------------------------

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        """Token ids of UTF-8 text; add_bos puts BOS first when the model uses one,
        special parses control-token texts such as "<|eot_id|>"."""
        if not isinstance(text, bytes | bytearray):
            raise TypeError(f"tokenize() takes bytes, got {type(text).__name__}")
        try:
            decoded = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"text is not valid UTF-8 at byte {e.start}") from None
        return self._model.tokenizer.encode(decoded, add_special=add_bos, parse_special=special)

    def detokenize(
        self, tokens: Sequence[int], prev_tokens: Sequence[int] | None = None, special: bool = False
    ) -> bytes:
        """The bytes tokens stand for; control tokens only with special. As
        llama-cpp-python, a leading space after BOS is dropped, and prev_tokens is
        accepted and does not change the result."""
        tokenizer = self._model.tokenizer
        ids = [int(t) for t in tokens]
        data = b"".join(tokenizer.token_to_piece(t, special=special) for t in ids)
        if ids and ids[0] == tokenizer.bos_id and data.startswith(b" "):
            data = data[1:]
        return data

    # -- generation -----------------------------------------------------------------------

    def __call__(self, prompt: str | list[int], **kwargs: Any) -> Any:
        return self.create_completion(prompt, **kwargs)

    def create_completion(
        self,
        prompt: str | list[int],
        suffix: str | None = None,
        max_tokens: int | None = 16,
        temperature: float = 0.8,
        top_p: float = 0.95,
        min_p: float = 0.05,
        typical_p: float = 1.0,
        logprobs: int | None = None,
        echo: bool = False,
        stop: str | list[str] | None = None,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        repeat_penalty: float = 1.0,
        top_k: int = 40,
        stream: bool = False,
        seed: int | None = None,
    ) -> dict[str, Any] | Iterator[dict[str, Any]]:
        """A text_completion dict, or with stream=True an iterator over its chunks.
        max_tokens None or <= 0: until an end token or a full context."""
        _unsupported(suffix=(suffix, None), echo=(echo, False), typical_p=(typical_p, 1.0))
        if isinstance(prompt, str):
            ids = self._model.completion_ids(prompt)
        else:
            ids = [int(t) for t in prompt]
        params = self._params(
            max_tokens, temperature, top_p, min_p, top_k, repeat_penalty, seed, stop,
            presence_penalty, frequency_penalty, logprobs,
        )  # fmt: skip
        tokenizer = self._model.tokenizer
        builder = ResponseBuilder(False, self.model_path, tokenizer, logprobs is not None)
        return self._run(ids, params, builder, stream)

    def create_chat_completion(
        self,
        messages: Sequence[Message],
        functions: Any = None,
        function_call: Any = None,
        tools: Any = None,
        tool_choice: Any = None,
        temperature: float = 0.2,
        top_p: float = 0.95,
        top_k: int = 40,
        min_p: float = 0.05,
        typical_p: float = 1.0,
        stream: bool = False,
        stop: str | list[str] | None = None,
        seed: int | None = None,
        response_format: Any = None,
        max_tokens: int | None = None,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        repeat_penalty: float = 1.0,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
    ) -> dict[str, Any] | Iterator[dict[str, Any]]:
        """A chat.completion dict for messages ([{"role", "content"}, ...]), or with
        stream=True an iterator over chat.completion.chunk dicts."""
        _unsupported(
            functions=(functions, None),
            function_call=(function_call, None),
            tools=(tools, None),
            tool_choice=(tool_choice, None),
            response_format=(response_format, None),
            typical_p=(typical_p, 1.0),
        )
        ids = self._model.chat_ids(messages)
        top = (top_logprobs or 0) if logprobs else None
        params = self._params(
            max_tokens, temperature, top_p, min_p, top_k, repeat_penalty, seed, stop,
            presence_penalty, frequency_penalty, top,
        )  # fmt: skip
        builder = ResponseBuilder(True, self.model_path, self._model.tokenizer, bool(logprobs))
        return self._run(ids, params, builder, stream)

    def _params(
        self,
        max_tokens: int | None,
        temperature: float,
        top_p: float,
        min_p: float,
        top_k: int,
        repeat_penalty: float,
        seed: int | None,
        stop: str | list[str] | None,
        presence_penalty: float,
        frequency_penalty: float,
        logprobs: int | None,
    ) -> GenerationParams:
        if seed is None or seed == DEFAULT_SEED:
            seed = int(self._seeds.integers(2**63))
        sampling = SamplingParams(temperature, top_k, top_p, min_p, repeat_penalty, seed)
        return GenerationParams(
            sampling=sampling,
            max_tokens=max_tokens if max_tokens is not None and max_tokens > 0 else None,
            stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
            presence_penalty=presence_penalty,
            frequency_penalty=frequency_penalty,
            logprobs=logprobs,
        )

    def _run(
        self, ids: list[int], params: GenerationParams, builder: ResponseBuilder, stream: bool
    ) -> dict[str, Any] | Iterator[dict[str, Any]]:
        if self._engine is None:
            raise ValueError(f"model {self.model_path} is closed")
        if len(ids) > self.n_ctx():
            raise ContextFullError(
                f"Requested tokens ({len(ids)}) exceed context window of {self.n_ctx()}"
            )
        events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        job = Job(ids, params, events.put)
        self._engine.submit(job)
        if stream:
            return _stream(job, events, builder)
        try:
            while isinstance(event := events.get(), TokenEvent):
                builder.add(event)
            _raise_for(event)
            return builder.whole(event)
        finally:
            job.cancel()  # a no-op once the job is done; ends it on KeyboardInterrupt


def _stream(
    job: Job, events: queue.SimpleQueue[Event], builder: ResponseBuilder
) -> Iterator[dict[str, Any]]:
    """The job's chunks; closing the iterator early cancels the job."""
    try:
        yield from builder.start_chunks()
        while True:
            event = events.get()
            if isinstance(event, TokenEvent):
                yield from builder.token_chunks(event)
                continue
            _raise_for(event)
            yield from builder.done_chunks(event)
            return
    finally:
        job.cancel()


def _raise_for(done: DoneEvent) -> None:
    if done.finish_reason not in ("stop", "length"):
        raise RuntimeError(done.error or f"generation ended: {done.finish_reason}")


def _unsupported(**given: tuple[object, object]) -> None:
    """Raises for the first argument that differs from the one value bitllm supports."""
    for name, (value, default) in given.items():
        if value != default:
            raise ValueError(f"{name}={value!r} is not supported by bitllm.Llama")


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool)
