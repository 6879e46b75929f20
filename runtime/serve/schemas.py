"""Request bodies bit-serve accepts, as pydantic models.

Validation is strict (a string where a number belongs is an error, not a conversion) and
unknown fields are refused, so a client relying on something bit-serve does not do (`n` > 1,
`tools`, `logit_bias`, ...) hears so instead of silently getting something else.
Defaults are llama-server's.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..sampling import SamplingParams
from .jobs import MAX_TOP_LOGPROBS, GenerationParams


class RequestError(ValueError):
    """A request that cannot be served as sent; param names the field at fault."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StreamOptions(_Body):
    include_usage: bool = False


class _Generation(_Body):
    """Fields shared by completions and chat completions."""

    model: str | None = None  # any name is accepted: the server has one model
    max_tokens: int | None = Field(None, ge=0)
    temperature: float = Field(0.8, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    top_k: int = Field(40, ge=0)
    min_p: float = Field(0.05, ge=0.0, le=1.0)
    repeat_penalty: float = Field(1.0, gt=0.0)
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    seed: int | None = Field(None, ge=-1)  # -1 or None: a fresh random seed
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    ignore_eos: bool = False
    n: int = 1
    user: str | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, n: int) -> int:
        if n != 1:
            raise ValueError(f"only n = 1 is supported, got {n}")
        return n

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    def _params(self, max_tokens: int | None, logprobs: int | None) -> GenerationParams:
        sampling = SamplingParams(
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            min_p=self.min_p,
            repeat_penalty=self.repeat_penalty,
            seed=None if self.seed in (None, -1) else self.seed,
        )
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return GenerationParams(
            sampling=sampling,
            max_tokens=max_tokens,
            stop=stop,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            ignore_eos=self.ignore_eos,
            logprobs=logprobs,
        )


class CompletionRequest(_Generation):
    prompt: str | list[int] | list[str]
    logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)

    def prompt_text_or_ids(self) -> str | list[int]:
        if isinstance(self.prompt, list) and self.prompt and isinstance(self.prompt[0], str):
            if len(self.prompt) != 1:
                raise RequestError("a batch of prompts is not supported: send one", "prompt")
            return str(self.prompt[0])
        return self.prompt  # type: ignore[return-value]

    def params(self) -> GenerationParams:
        return self._params(self.max_tokens, self.logprobs)


class TextPart(_Body):
    type: Literal["text"]
    text: str


class ChatMessage(_Body):
    role: str
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class ChatRequest(_Generation):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=0)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)

    def conversation(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.text()} for m in self.messages]

    def params(self) -> GenerationParams:
        if self.top_logprobs is not None and not self.logprobs:
            raise RequestError("top_logprobs needs logprobs: true", "top_logprobs")
        limit = self.max_completion_tokens
        limit = self.max_tokens if limit is None else limit
        return self._params(limit, (self.top_logprobs or 0) if self.logprobs else None)


class TokenizeRequest(_Body):
    content: str
    add_special: bool = False
    parse_special: bool = True
    with_pieces: bool = False


class DetokenizeRequest(_Body):
    tokens: list[int]


Body = TypeVar("Body", bound=BaseModel)
_TYPE_NAMES = frozenset(("str", "int", "float", "bool", "list", "dict", "none"))


def parse(schema: type[Body], body: bytes) -> Body:
    """The request body as schema, or a RequestError naming what is wrong with it."""
    try:
        return schema.model_validate_json(body, strict=True)
    except ValidationError as e:
        raise RequestError(*_describe(e.errors()[0])) from None


def _describe(error: Any) -> tuple[str, str | None]:
    """A one-line message and the field it is about, for pydantic's first error."""
    # pydantic puts the union member it tried into loc ("stop", "list[str]", 0): drop those
    parts = [
        str(p)
        for p in error.get("loc", ())
        if isinstance(p, int) or (p.isidentifier() and p not in _TYPE_NAMES)
    ]
    loc = ".".join(parts)
    kind = error.get("type", "")
    if kind == "json_invalid":
        return f"the body is not valid JSON: {error.get('ctx', {}).get('error', '')}", None
    if kind == "extra_forbidden":
        return f"'{loc}' is not supported by this server", loc
    if kind == "missing":
        return f"'{loc}' is required", loc
    if not loc:
        return "the body must be a JSON object", None
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"'{loc}': {message}", loc
