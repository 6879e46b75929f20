"""Turning a conversation into prompt text.

A GGUF's `tokenizer.chat_template` is a Jinja template written by whoever made the file, so
it is untrusted: it renders in jinja2's immutable sandbox inside a helper process with a
time, memory and output budget (template_sandbox.py). A file without a template gets its
architecture's trained format; for other architectures a plain transcript in the same
shape, with the model's own BOS and end-of-turn tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .template_sandbox import TemplateFailure, render_untrusted

Message = Mapping[str, str]

ROLE_LABELS = {"system": "System: ", "user": "User: ", "assistant": "Assistant: "}
DEFAULT_TEMPLATE_NAME = "the model's chat template"


class ChatTemplateError(ValueError):
    """A chat template that does not compile, or fails or misbehaves while rendering."""


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
    format when bos/end_of_turn are `<|begin_of_text|>` / `<|eot_id|>`). name: how errors
    call the template (e.g. "the chat template of model.gguf").
    """

    def __init__(
        self,
        template: str | None,
        bos_token: str,
        eos_token: str,
        end_of_turn_token: str,
        name: str = DEFAULT_TEMPLATE_NAME,
    ) -> None:
        self.template_source = template
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.end_of_turn_token = end_of_turn_token
        self.name = name

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

    def _render_template(self, messages: list[dict[str, str]], add_prompt: bool) -> str:
        variables = {
            "messages": messages,
            "add_generation_prompt": add_prompt,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        }
        try:
            return render_untrusted(self.template_source or "", variables)
        except TemplateFailure as e:
            raise ChatTemplateError(f"{self.name} {e}") from None


# Architectures whose trained chat format is the transcript with fixed special tokens,
# whatever the file's BOS/EOS ids say: (bos, end of turn).
TRAINED_TRANSCRIPTS = {"bitnet-b1.58": ("<|begin_of_text|>", "<|eot_id|>")}


def chat_format(
    metadata: Mapping[str, Any],
    token_text: Callable[[int], str],
    template: str | None = None,
    name: str = DEFAULT_TEMPLATE_NAME,
) -> ChatFormat:
    """The chat format of a model: `template` if given, else the file's
    tokenizer.chat_template, else its architecture's trained transcript format, else the
    transcript format with the file's own BOS and end-of-turn (EOT, else EOS) tokens.
    token_text maps a token id to its text (IndexError past the vocabulary); name is how
    errors call the template."""
    if template is None:
        template = metadata.get("tokenizer.chat_template") or None

    def text_of(key: str, default: str) -> str:
        token_id = metadata.get(key)
        if token_id is None:
            return default
        if not isinstance(token_id, int) or isinstance(token_id, bool) or token_id < 0:
            raise ValueError(f"{key} = {token_id!r} is not a token id")
        try:
            return token_text(token_id)
        except (IndexError, KeyError):
            raise ValueError(f"{key} = {token_id} is outside the vocabulary") from None

    bos = text_of("tokenizer.ggml.bos_token_id", "")
    eos = text_of("tokenizer.ggml.eos_token_id", "")
    end_of_turn = text_of("tokenizer.ggml.eot_token_id", eos or "\n")
    trained = TRAINED_TRANSCRIPTS.get(str(metadata.get("general.architecture")))
    if template is None and trained is not None:
        bos, end_of_turn = trained
    return ChatFormat(template, bos, eos, end_of_turn, name)
