"""Chat formats: the built-in transcript formats and sandboxed Jinja templates."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bitllm.runtime.chat import ChatFormat, ChatTemplateError, chat_format
from bitllm.runtime.template_sandbox import MEMORY_BYTES, RENDER_SECONDS

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello."},
    {"role": "user", "content": "Why?"},
]

LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)

TOKENS = {1: "<s>", 2: "</s>", 128000: "<|begin_of_text|>", 128001: "<|end_of_text|>"}


def _metadata(arch: str, **extra: object) -> dict:
    return {"general.architecture": arch, **extra}


def test_bitnet_2b4t_trained_format_without_a_template() -> None:
    fmt = chat_format(
        _metadata(
            "bitnet-b1.58",
            **{"tokenizer.ggml.bos_token_id": 128000, "tokenizer.ggml.eos_token_id": 128001},
        ),
        TOKENS.__getitem__,
    )
    assert fmt.render(CONVERSATION) == (
        "<|begin_of_text|>System: Be brief.<|eot_id|>User: Hi<|eot_id|>"
        "Assistant: Hello.<|eot_id|>User: Why?<|eot_id|>Assistant: "
    )
    assert fmt.render(CONVERSATION[:2], add_generation_prompt=False) == (
        "<|begin_of_text|>System: Be brief.<|eot_id|>User: Hi<|eot_id|>"
    )


def test_other_architectures_use_their_own_bos_and_end_tokens() -> None:
    metadata = _metadata(
        "bitnet", **{"tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2}
    )
    fmt = chat_format(metadata, TOKENS.__getitem__)
    assert fmt.render(CONVERSATION[1:2]) == "<s>User: Hi</s>Assistant: "


def test_the_file_template_wins_over_the_fallback() -> None:
    metadata = _metadata(
        "bitnet-b1.58",
        **{
            "tokenizer.ggml.bos_token_id": 128000,
            "tokenizer.ggml.eos_token_id": 128001,
            "tokenizer.chat_template": LLAMA3_TEMPLATE,
        },
    )
    fmt = chat_format(metadata, TOKENS.__getitem__)
    assert fmt.uses_template
    assert fmt.render(CONVERSATION[:2]) == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_template_sees_eos_and_raise_exception() -> None:
    template = (
        "{% if messages[0]['role'] != 'user' %}{{ raise_exception('user first') }}{% endif %}"
        "{{ messages[0]['content'] }}{{ eos_token }}"
    )
    fmt = ChatFormat(template, "<s>", "</s>", "<eot>")
    assert fmt.render(CONVERSATION[1:2]) == "Hi</s>"
    with pytest.raises(ChatTemplateError, match="user first"):
        fmt.render(CONVERSATION)


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ messages.__class__.__init__.__globals__ }}",
        "{% set _ = messages.append({'role': 'user', 'content': 'x'}) %}",
        "{% set _ = messages[0].update({'role': 'x'}) %}",
        "{{ 'x' * 1000000000 }}",
        "{{ 2 ** 100000 }}",
        "{% set ns = namespace(x=3) %}{% for i in range(40) %}{% set ns.x = ns.x * ns.x %}"
        "{% endfor %}",
        "{% for i in range(10**9) %}{% endfor %}",
    ],
)
def test_untrusted_templates_cannot_escape_or_blow_up(template: str) -> None:
    fmt = ChatFormat(template, "", "", "")
    with pytest.raises(ChatTemplateError):
        fmt.render(CONVERSATION)


def test_a_template_that_does_not_compile_is_a_clear_error() -> None:
    with pytest.raises(ChatTemplateError, match="does not compile"):
        ChatFormat("{% for %}", "", "", "").render(CONVERSATION)


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ("hello", "list"),
        ([{"role": "user"}], "content"),
        ([{"content": "x"}], "role"),
        (["hi"], "not a dict"),
        ([{"role": "user", "content": 3}], "content"),
    ],
)
def test_malformed_messages_are_refused(messages: object, message: str) -> None:
    fmt = ChatFormat(None, "", "", "")
    with pytest.raises(ValueError, match=message):
        fmt.render(messages)  # type: ignore[arg-type]


NESTED_LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
NAMESPACE_DOUBLING = (
    "{% set ns = namespace(items=[1]) %}"
    "{% for i in range(64) %}{% set ns.items = ns.items + ns.items %}{% endfor %}"
)
STRING_DOUBLING = (
    "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s | length }}"
)
LONG_OUTPUT = "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}"

# Renders one hostile template in a fresh process, after a trivial one has started the
# helper; prints the hostile render's seconds, its error, and the peak resident memory of
# the process's children (the helper, stopped and waited for) in KiB.
_MEASURE = """
import resource, sys, time
from bitllm.runtime.chat import ChatFormat, ChatTemplateError
from bitllm.runtime.template_sandbox import stop_renderer
messages = [{"role": "user", "content": "hi"}]
assert ChatFormat("{{ messages[0].content }}", "", "", "").render(messages) == "hi"
fmt = ChatFormat(sys.argv[1], "", "", "", name="the chat template of hostile.gguf")
started = time.monotonic()
try:
    fmt.render(messages)
    error = "none"
except ChatTemplateError as e:
    error = str(e)
seconds = time.monotonic() - started
stop_renderer()
print(seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, error, sep="\\n")
"""


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        (NESTED_LOOPS, "did not finish"),
        (NAMESPACE_DOUBLING, "memory"),
        (STRING_DOUBLING, "memory"),
        (LONG_OUTPUT, "produced over"),
    ],
)
def test_hostile_templates_end_quickly_in_bounded_memory(template: str, reason: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, template], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    seconds, peak_kib, error = result.stdout.strip().split("\n")
    assert error.startswith("the chat template of hostile.gguf "), error
    # on a busy machine a template filling memory may reach the deadline first
    assert reason in error or (reason == "memory" and "did not finish" in error), error
    assert float(seconds) < RENDER_SECONDS + 2.0
    assert int(peak_kib) < (MEMORY_BYTES >> 10) + (64 << 10)


def test_a_normal_render_after_a_hostile_one_is_quick() -> None:
    hostile = ChatFormat(NESTED_LOOPS, "", "", "")
    with pytest.raises(ChatTemplateError, match="did not finish"):
        hostile.render(CONVERSATION)
    fmt = ChatFormat(LLAMA3_TEMPLATE, "<|begin_of_text|>", "", "")
    fmt.render(CONVERSATION)  # starts a fresh helper
    started = time.monotonic()
    for _ in range(20):
        assert fmt.render(CONVERSATION).startswith("<|begin_of_text|><|start_header_id|>")
    assert (time.monotonic() - started) / 20 < 0.05


def test_special_token_ids_outside_the_vocabulary_are_named() -> None:
    for bad in (128002, -1, "1"):
        metadata = _metadata("bitnet", **{"tokenizer.ggml.eos_token_id": bad})
        with pytest.raises(ValueError, match="tokenizer.ggml.eos_token_id"):
            chat_format(metadata, list(TOKENS.values()).__getitem__)
