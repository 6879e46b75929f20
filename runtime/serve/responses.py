"""OpenAI-shaped response objects built from a job's events.

bit-serve sends them as JSON and bitllm.Llama returns them as dicts, so both give the
shapes OpenAI's API (and llama-cpp-python) define: `text_completion` objects for
completions, `chat.completion` / `chat.completion.chunk` for chat, `usage` with the token
counts, and `logprobs` in each endpoint's own format.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from ..tokenizer import Tokenizer
from .jobs import DoneEvent, TokenEvent, TokenLogprob

Logprob = tuple[TokenLogprob, int]  # a token's logprobs and where its text starts


class ResponseBuilder:
    """Collects one job's events into a response (whole, or as stream chunks).

    chat: chat.completion objects, else text_completion. include_usage: a streamed
    response ends with a chunk holding only usage (stream_options.include_usage)."""

    def __init__(
        self,
        chat: bool,
        model: str,
        tokenizer: Tokenizer,
        want_logprobs: bool = False,
        include_usage: bool = False,
    ) -> None:
        self.chat = chat
        self.model = model
        self.tokenizer = tokenizer
        self.want_logprobs = want_logprobs
        self.include_usage = include_usage
        self.id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        self.created = int(time.time())
        self.text = ""
        self._logprobs: list[Logprob] = []
        self._unsent: list[Logprob] = []  # logprobs of tokens whose text is held back
        self._token_chars = 0  # length of the generated tokens' text: the next text_offset

    # -- streaming ------------------------------------------------------------------------

    def start_chunks(self) -> list[dict[str, Any]]:
        """What a stream sends before any token: the assistant role, for chat."""
        if not self.chat:
            return []
        return [self._chunk({"role": "assistant", "content": ""}, None, None)]

    def token_chunks(self, event: TokenEvent) -> list[dict[str, Any]]:
        """The chunk for a token (none while its text is held back)."""
        self.add(event)
        if event.logprob is not None:
            self._unsent.append(self._logprobs[-1])
        if not event.text:
            return []
        logprobs, self._unsent = self._unsent, []
        return [self._chunk(self._delta(event.text), None, logprobs)]

    def done_chunks(self, done: DoneEvent) -> list[dict[str, Any]]:
        """The last chunks: held-back text, the finish reason, then usage if asked."""
        self.text += done.text
        logprobs, self._unsent = self._unsent, []
        chunks = []
        if done.text:
            chunks.append(self._chunk(self._delta(done.text), None, logprobs))
            logprobs = []
        empty = {} if self.chat else ""
        chunks.append(self._chunk(empty, done.finish_reason, logprobs))
        if self.include_usage:
            usage_chunk = self._envelope(self._chunk_object())
            usage_chunk.update(choices=[], usage=usage(done))
            chunks.append(usage_chunk)
        return chunks

    # -- whole ----------------------------------------------------------------------------

    def add(self, event: TokenEvent) -> None:
        self.text += event.text
        if event.logprob is not None:
            self._logprobs.append((event.logprob, self._token_chars))
            self._token_chars += len(self._token_text(event.token))

    def whole(self, done: DoneEvent) -> dict[str, Any]:
        """The non-streamed response, once every event has been add()ed."""
        self.text += done.text
        choice: dict[str, Any] = {"index": 0}
        if self.chat:
            choice["message"] = {"role": "assistant", "content": self.text}
        else:
            choice["text"] = self.text
        choice["logprobs"] = self._format_logprobs(self._logprobs)
        choice["finish_reason"] = done.finish_reason
        response = self._envelope("chat.completion" if self.chat else "text_completion")
        response.update(choices=[choice], usage=usage(done))
        return response

    # -- shapes ---------------------------------------------------------------------------

    def _chunk_object(self) -> str:
        return "chat.completion.chunk" if self.chat else "text_completion"

    def _envelope(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def _delta(self, text: str) -> dict[str, Any] | str:
        return {"content": text} if self.chat else text

    def _chunk(
        self,
        delta: dict[str, Any] | str,
        finish_reason: str | None,
        logprobs: list[Logprob] | None,
    ) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "delta" if self.chat else "text": delta}
        choice["logprobs"] = self._format_logprobs(logprobs or [])
        choice["finish_reason"] = finish_reason
        chunk = self._envelope(self._chunk_object())
        chunk["choices"] = [choice]
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def _format_logprobs(self, logprobs: list[Logprob]) -> dict[str, Any] | None:
        if not self.want_logprobs:
            return None
        if self.chat:
            return {"content": [self._chat_logprob(lp) for lp, _ in logprobs]}
        return self._completion_logprobs(logprobs)

    def _piece(self, token: int) -> bytes:
        return self.tokenizer.token_to_piece(token, special=True)

    def _token_text(self, token: int) -> str:
        return self._piece(token).decode("utf-8", "replace")

    def _chat_logprob(self, lp: TokenLogprob) -> dict[str, Any]:
        entry = self._chat_token(lp.token, lp.logprob)
        entry["top_logprobs"] = [self._chat_token(t, v) for t, v in lp.top]
        return entry

    def _chat_token(self, token: int, logprob: float) -> dict[str, Any]:
        piece = self._piece(token)
        return {"token": piece.decode("utf-8", "replace"), "logprob": logprob, "bytes": list(piece)}

    def _completion_logprobs(self, logprobs: list[Logprob]) -> dict[str, Any]:
        """The legacy completions format: parallel lists, top_logprobs as dicts."""
        return {
            "tokens": [self._token_text(lp.token) for lp, _ in logprobs],
            "token_logprobs": [lp.logprob for lp, _ in logprobs],
            "top_logprobs": [{self._token_text(t): v for t, v in lp.top} for lp, _ in logprobs],
            "text_offset": [offset for _, offset in logprobs],
        }


def usage(done: DoneEvent) -> dict[str, Any]:
    return {
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "total_tokens": done.prompt_tokens + done.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": done.cached_tokens},
    }
