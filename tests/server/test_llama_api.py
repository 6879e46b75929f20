"""bitllm.Llama against the shapes llama-cpp-python documents for its Llama class
(create_completion, create_chat_completion, streaming chunks, tokenize/detokenize)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import bitllm
from bitllm.runtime.model import ContextFullError
from tests.runtime.tiny_model import cached_model

GREEDY = dict(temperature=0.0)
USAGE_KEYS = {"prompt_tokens", "completion_tokens", "total_tokens"}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_model(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def llm(model_path: Path) -> Iterator[bitllm.Llama]:
    with bitllm.Llama(model_path=str(model_path), n_ctx=256, n_threads=1, verbose=False) as m:
        yield m


@pytest.fixture(scope="module")
def reference(model_path: Path) -> Iterator[bitllm.Model]:
    with bitllm.Model(model_path, threads=1, n_ctx=256) as model:
        yield model


def test_llama_is_exported_from_the_package() -> None:
    from bitllm.runtime.llama_api import Llama

    assert bitllm.Llama is Llama


def test_completion_dict(llm: bitllm.Llama, reference: bitllm.Model, model_path: Path) -> None:
    result = llm("Q: Name the planets in the solar system? A: ", max_tokens=8, **GREEDY)
    assert result["object"] == "text_completion" and result["id"].startswith("cmpl-")
    assert isinstance(result["created"], int) and result["model"] == str(model_path)
    (choice,) = result["choices"]
    assert set(choice) == {"text", "index", "logprobs", "finish_reason"}
    assert choice["index"] == 0 and choice["logprobs"] is None
    expected = reference.generate(
        "Q: Name the planets in the solar system? A: ", max_tokens=8, **GREEDY
    )
    assert choice["text"] == expected and choice["finish_reason"] == "length"
    usage = result["usage"]
    assert USAGE_KEYS <= set(usage) and usage["completion_tokens"] == 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + 8


def test_completion_stream_chunks(llm: bitllm.Llama) -> None:
    whole = llm.create_completion("The sea", max_tokens=10, **GREEDY)
    chunks = list(llm.create_completion("The sea", max_tokens=10, stream=True, **GREEDY))
    assert all(c["object"] == "text_completion" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert "".join(c["choices"][0]["text"] for c in chunks) == whole["choices"][0]["text"]
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "length"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def test_completion_logprobs(llm: bitllm.Llama) -> None:
    result = llm.create_completion("Count", max_tokens=4, logprobs=2, **GREEDY)
    logprobs = result["choices"][0]["logprobs"]
    assert set(logprobs) == {"tokens", "token_logprobs", "top_logprobs", "text_offset"}
    assert len(logprobs["tokens"]) == 4 and all(len(t) == 2 for t in logprobs["top_logprobs"])
    assert logprobs["text_offset"] == sorted(logprobs["text_offset"])


def test_chat_completion_dict(llm: bitllm.Llama, reference: bitllm.Model) -> None:
    messages = [
        {"role": "system", "content": "You are an assistant who perfectly describes images."},
        {"role": "user", "content": "Describe this image in detail please."},
    ]
    result = llm.create_chat_completion(messages=messages, max_tokens=8, **GREEDY)
    assert result["object"] == "chat.completion" and result["id"].startswith("chatcmpl-")
    (choice,) = result["choices"]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == reference.chat(messages, max_tokens=8, **GREEDY)
    assert choice["finish_reason"] == "length"
    assert result["usage"]["prompt_tokens"] == len(reference.chat_tokens(messages))


def test_chat_stream_chunks(llm: bitllm.Llama) -> None:
    messages = [{"role": "user", "content": "Hello"}]
    whole = llm.create_chat_completion(messages, max_tokens=6, **GREEDY)
    chunks = list(llm.create_chat_completion(messages, max_tokens=6, stream=True, **GREEDY))
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == whole["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_chat_logprobs(llm: bitllm.Llama) -> None:
    messages = [{"role": "user", "content": "Hello"}]
    result = llm.create_chat_completion(
        messages, max_tokens=3, logprobs=True, top_logprobs=2, **GREEDY
    )
    content = result["choices"][0]["logprobs"]["content"]
    assert [set(e) for e in content] == [{"token", "logprob", "bytes", "top_logprobs"}] * 3
    assert all(bytes(e["bytes"]).decode("utf-8", "replace") == e["token"] for e in content)


def test_a_seed_makes_sampling_repeatable(model_path: Path) -> None:
    def texts(seed: int) -> list[str]:
        with bitllm.Llama(str(model_path), n_ctx=128, seed=seed, verbose=False) as m:
            return [m("Once", max_tokens=8, temperature=1.0)["choices"][0]["text"] for _ in "ab"]

    first = texts(7)
    assert first == texts(7)
    assert first[0] != first[1]  # each call draws on, as llama-cpp-python's sampler does


def test_per_call_seed(llm: bitllm.Llama) -> None:
    def sample() -> str:
        return llm("Once", max_tokens=8, temperature=1.0, seed=42)["choices"][0]["text"]

    assert sample() == sample()


def test_tokenize_takes_bytes_and_detokenize_returns_bytes(
    llm: bitllm.Llama, reference: bitllm.Model
) -> None:
    tokens = llm.tokenize(b"Hello, world!")
    assert tokens == reference.tokenize("Hello, world!")
    assert tokens[0] == llm.token_bos()
    assert llm.tokenize(b"Hello, world!", add_bos=False) == tokens[1:]
    assert llm.detokenize(tokens) == b"Hello, world!"
    eos = llm.token_eos()
    assert llm.detokenize([eos]) == b""
    assert llm.detokenize([eos], special=True) == reference.tokenizer.tokens[eos].encode()
    assert llm.tokenize(b"</s>", add_bos=False, special=True) == [eos]
    with pytest.raises(TypeError, match="bytes"):
        llm.tokenize("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="UTF-8"):
        llm.tokenize(b"\xff\xfe")


def test_generation_without_max_tokens_ends_at_the_context(model_path: Path) -> None:
    with bitllm.Llama(str(model_path), n_ctx=24, verbose=False) as small:
        result = small("Go", max_tokens=None, temperature=0.7, seed=1)
        usage = result["usage"]
        ended_at_context = usage["total_tokens"] == 25  # the last sampled token is not evaluated
        assert result["choices"][0]["finish_reason"] == ("length" if ended_at_context else "stop")
        with pytest.raises(ContextFullError, match=r"\(30\) exceed context window of 24"):
            small(list(range(1, 31)))


def test_closing_a_stream_early_leaves_the_model_usable(llm: bitllm.Llama) -> None:
    stream = llm("Long", max_tokens=200, stream=True, **GREEDY)
    next(stream)
    stream.close()
    assert llm("Long", max_tokens=3, **GREEDY)["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda m: m("x", suffix="y"), "suffix"),
        (lambda m: m("x", echo=True), "echo"),
        (lambda m: m.create_chat_completion([{"role": "user", "content": "x"}], tools=[]), "tools"),
        (lambda m: m("x", temperature=-1.0), "temperature"),
        (lambda m: m.create_chat_completion([{"role": "user"}]), "content"),
    ],
)
def test_unsupported_or_bad_arguments_are_named(
    llm: bitllm.Llama, call: object, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        call(llm)  # type: ignore[operator]


def test_named_chat_formats_are_refused(model_path: Path) -> None:
    with pytest.raises(ValueError, match="chat_format='chatml'"):
        bitllm.Llama(str(model_path), chat_format="chatml", verbose=False)
    with pytest.raises(FileNotFoundError):
        bitllm.Llama("/nonexistent/model.gguf", verbose=False)
