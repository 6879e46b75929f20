"""Turning a conversation into prompt text.

A GGUF's `tokenizer.chat_template` is a Jinja template written by whoever made the file, so
it is untrusted: it renders in jinja2's immutable sandbox, with arithmetic that could build
huge values refused. A file without a template gets its architecture's trained format; for
other architectures a plain transcript in the same shape, with the model's own BOS and
end-of-turn tokens.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_RENDERED_CHARS = 1 << 22  # a rendered prompt this long is surely a runaway template
_MAX_INT_BITS = 4096  # no chat template needs bigger integers

Message = Mapping[str, str]

ROLE_LABELS = {"system": "System: ", "user": "User: ", "assistant": "Assistant: "}


class ChatTemplateError(ValueError):
    """A chat template that does not compile, or fails or misbehaves while rendering."""


class _TemplateSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus limits on `*` and `**` so that a template cannot
    exhaust memory or time with `'x' * 10**12` or repeated squaring of huge integers."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(
        self, context: jinja2.runtime.Context, operator_name: str, left: Any, right: Any
    ) -> Any:
        if operator_name == "**":
            if _is_int(left) and _is_int(right) and right > 0:
                _check_int_bits(max(left.bit_length(), 1) * right)
            return operator.pow(left, right)
        if _is_int(left) and _is_int(right):
            _check_int_bits(left.bit_length() + right.bit_length())
        sequence, count = (left, right) if _is_int(right) else (right, left)
        if isinstance(sequence, str | list | tuple) and _is_int(count):
            if len(sequence) * count > MAX_RENDERED_CHARS:
                raise SecurityError("a chat template tried to build an oversized value")
        return operator.mul(left, right)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int_bits(bits: int) -> None:
    if bits > _MAX_INT_BITS:
        raise SecurityError("a chat template tried to build an oversized number")


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(f"the chat template refused the conversation: {message}")


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def check_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    """The conversation as plain dicts, or a ValueError saying which message is malformed."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise ValueError("messages must be a list of {'role': ..., 'content': ...} dicts")
    checked = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ValueError(f"message {i} is a {type(message).__name__}, not a dict")
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not role:
            raise ValueError(f"message {i} needs a 'role' string")
        if not isinstance(content, str):
            raise ValueError(f"message {i} ({role}) needs a 'content' string")
        checked.append({"role": role, "content": content})
    return checked


class ChatFormat:
    """Renders conversations for one model.

    template: the GGUF's Jinja chat template, or None for the built-in transcript format
    `bos + Role: content + end_of_turn ... + "Assistant: "` (BitNet-b1.58-2B-4T's trained
    format when bos/end_of_turn are `<|begin_of_text|>` / `<|eot_id|>`).
    """

    def __init__(
        self, template: str | None, bos_token: str, eos_token: str, end_of_turn_token: str
    ) -> None:
        self.template_source = template
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.end_of_turn_token = end_of_turn_token
        self._compiled: jinja2.Template | None = None

    @property
    def uses_template(self) -> bool:
        return self.template_source is not None

    def render(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        checked = check_messages(messages)
        if self.template_source is None:
            return self._render_transcript(checked, add_generation_prompt)
        return self._render_template(checked, add_generation_prompt)

    def _render_transcript(self, messages: list[dict[str, str]], add_prompt: bool) -> str:
        parts = [self.bos_token]
        for message in messages:
            label = ROLE_LABELS.get(message["role"], message["role"].capitalize() + ": ")
            parts.append(label + message["content"] + self.end_of_turn_token)
        if add_prompt:
            parts.append(ROLE_LABELS["assistant"])
        return "".join(parts)

    def _template(self) -> jinja2.Template:
        if self._compiled is None:
            env = _TemplateSandbox(
                trim_blocks=True,
                lstrip_blocks=True,
                extensions=["jinja2.ext.loopcontrols"],
                undefined=jinja2.Undefined,
            )
            env.globals["raise_exception"] = _raise_exception
            env.globals["strftime_now"] = _strftime_now
            try:
                self._compiled = env.from_string(self.template_source or "")
            except jinja2.TemplateError as e:
                raise ChatTemplateError(f"the model's chat template does not compile: {e}") from e
        return self._compiled

    def _render_template(self, messages: list[dict[str, str]], add_prompt: bool) -> str:
        template = self._template()
        try:
            text = template.render(
                messages=messages,
                add_generation_prompt=add_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except ChatTemplateError:
            raise
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as e:
            raise ChatTemplateError(f"the model's chat template failed: {e}") from e
        if len(text) > MAX_RENDERED_CHARS:
            raise ChatTemplateError("the model's chat template produced an oversized prompt")
        return text


# Architectures whose trained chat format is the transcript with fixed special tokens,
# whatever the file's BOS/EOS ids say: (bos, end of turn).
TRAINED_TRANSCRIPTS = {"bitnet-b1.58": ("<|begin_of_text|>", "<|eot_id|>")}


def chat_format(
    metadata: Mapping[str, Any], token_text: Callable[[int], str], template: str | None = None
) -> ChatFormat:
    """The chat format of a model: `template` if given, else the file's
    tokenizer.chat_template, else its architecture's trained transcript format, else the
    transcript format with the file's own BOS and end-of-turn (EOT, else EOS) tokens.
    token_text maps a token id to its text."""
    if template is None:
        template = metadata.get("tokenizer.chat_template") or None

    def text_of(key: str, default: str) -> str:
        token_id = metadata.get(key)
        return token_text(int(token_id)) if token_id is not None else default

    bos = text_of("tokenizer.ggml.bos_token_id", "")
    eos = text_of("tokenizer.ggml.eos_token_id", "")
    end_of_turn = text_of("tokenizer.ggml.eot_token_id", eos or "\n")
    trained = TRAINED_TRANSCRIPTS.get(str(metadata.get("general.architecture")))
    if template is None and trained is not None:
        bos, end_of_turn = trained
    return ChatFormat(template, bos, eos, end_of_turn)
