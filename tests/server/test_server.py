"""bit-serve as a real process on 127.0.0.1, driven by the official openai package and, for
the error cases, by plain HTTP. The tiny models' text is nonsense but the server's answers
must equal bitllm.Model's own greedy generations."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from starlette.testclient import TestClient

import bitllm
from bitllm.runtime.serve.app import create_app
from bitllm.runtime.serve.engine import Engine, EngineSettings
from tests.runtime.tiny_model import cached_model
from tests.server.serving import ServerProcess, slow_model

PARALLEL = 16
SLOT_CTX = 256
GREEDY = dict(temperature=0.0)
SYSTEM = "You are a careful assistant who answers in short sentences and never makes things up."


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_model(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def reference(model_path: Path) -> Iterator[bitllm.Model]:
    """The same model in-process: what the server's greedy answers must equal."""
    with bitllm.Model(model_path, threads=1, n_ctx=SLOT_CTX) as model:
        yield model


@pytest.fixture(scope="module")
def server(model_path: Path) -> Iterator[ServerProcess]:
    """16 slots of 256 positions; 16-token steps, so longer prompts are prefilled in
    chunks between other slots' decode tokens."""
    flags = ["-np", str(PARALLEL), "-c", str(PARALLEL * SLOT_CTX), "-t", "1", "-b", "16"]
    process = ServerProcess(model_path, *flags)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def _prompt(i: int) -> str:
    """Prompts of different lengths (up to ~150 tokens) and contents."""
    return f"Story {i}: " + " ".join(["the river runs past the old mill"] * (i * 3 % 19 + 1))


# -- the API --------------------------------------------------------------------------------


def test_models_lists_the_served_file(client: openai.OpenAI, model_path: Path) -> None:
    models = client.models.list().data
    assert [m.id for m in models] == [model_path.name]
    assert models[0].object == "model"


def test_completion_equals_the_model_and_reports_usage(
    client: openai.OpenAI, reference: bitllm.Model
) -> None:
    prompt = "The capital of France is"
    result = client.completions.create(model="any", prompt=prompt, max_tokens=12, **GREEDY)
    choice = result.choices[0]
    assert choice.text == reference.generate(prompt, max_tokens=12, **GREEDY)
    assert choice.finish_reason == "length"
    assert result.object == "text_completion"
    prompt_tokens = len(reference.tokenize(prompt, parse_special=True))
    assert result.usage.prompt_tokens == prompt_tokens
    assert result.usage.completion_tokens == 12
    assert result.usage.total_tokens == prompt_tokens + 12


def test_completion_accepts_token_ids(client: openai.OpenAI, reference: bitllm.Model) -> None:
    ids = reference.tokenize("Once upon a time")
    result = client.completions.create(model="m", prompt=ids, max_tokens=6, **GREEDY)
    expected = reference.detokenize(list(reference.generate_tokens(ids, max_tokens=6, **GREEDY)))
    assert result.choices[0].text == expected


def test_chat_equals_the_model(client: openai.OpenAI, reference: bitllm.Model) -> None:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hi!"}]
    result = client.chat.completions.create(
        model="m", messages=messages, max_completion_tokens=10, **GREEDY
    )
    message = result.choices[0].message
    assert message.role == "assistant"
    assert message.content == reference.chat(messages, max_tokens=10, **GREEDY)
    assert result.object == "chat.completion"
    assert result.usage.prompt_tokens == len(reference.chat_tokens(messages))


def test_stop_string_cuts_the_text(client: openai.OpenAI, reference: bitllm.Model) -> None:
    prompt = "Numbers:"
    full = reference.generate(prompt, max_tokens=16, **GREEDY)
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    assert stop.strip(), full
    result = client.completions.create(
        model="m", prompt=prompt, max_tokens=16, stop=[stop], **GREEDY
    )
    assert result.choices[0].text == full[: full.index(stop)]
    assert result.choices[0].finish_reason == "stop"


def test_stream_deltas_join_to_the_whole_text(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Tell me about rivers."}]
    whole = client.chat.completions.create(model="m", messages=messages, max_tokens=20, **GREEDY)
    chunks = list(
        client.chat.completions.create(
            model="m",
            messages=messages,
            max_tokens=20,
            stream=True,
            stream_options={"include_usage": True},
            **GREEDY,
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] == "length" and set(finish[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 20
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_completion_stream_and_logprobs(client: openai.OpenAI) -> None:
    prompt = "Logs show"
    whole = client.completions.create(model="m", prompt=prompt, max_tokens=8, logprobs=3, **GREEDY)
    logprobs = whole.choices[0].logprobs
    assert len(logprobs.tokens) == len(logprobs.token_logprobs) == 8
    rows = zip(logprobs.tokens, logprobs.token_logprobs, logprobs.top_logprobs, strict=True)
    for token, value, top in rows:
        assert value <= 0 and len(top) == 3
        assert max(top.values()) == pytest.approx(value)  # greedy picks the best token
        assert token in top
    stream = client.completions.create(
        model="m", prompt=prompt, max_tokens=8, stream=True, **GREEDY
    )
    assert "".join(c.choices[0].text for c in stream) == whole.choices[0].text


def test_chat_logprobs(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=5,
        logprobs=True,
        top_logprobs=2,
        **GREEDY,
    )
    content = result.choices[0].logprobs.content
    assert len(content) == 5
    assert all(len(entry.top_logprobs) == 2 and entry.logprob <= 0 for entry in content)
    assert all(entry.top_logprobs[0].logprob == pytest.approx(entry.logprob) for entry in content)


def test_a_shared_system_prompt_is_reused(client: openai.OpenAI) -> None:
    def ask(question: str) -> openai.types.chat.ChatCompletion:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
        return client.chat.completions.create(model="m", messages=messages, max_tokens=2)

    ask("What is a mill?")
    second = ask("Why do rivers bend?")
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached >= len(SYSTEM.split()), second.usage


def test_a_running_request_shares_its_prefix(client: openai.OpenAI) -> None:
    system = "You are the lighthouse keeper's assistant; you log every ship that passes by."
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "Go on."}]
    running = client.chat.completions.create(
        model="m", messages=messages, max_tokens=200, stream=True, **GREEDY
    )
    next(iter(running))  # its prompt is in its slot's cache now
    messages[1]["content"] = "Which ships passed today?"
    second = client.chat.completions.create(model="m", messages=messages, max_tokens=2)
    running.close()
    assert second.usage.prompt_tokens_details.cached_tokens >= len(system.split())


def test_eight_concurrent_clients_get_their_own_answers(
    client: openai.OpenAI, reference: bitllm.Model
) -> None:
    prompts = [_prompt(i) for i in range(8)]

    def complete(prompt: str) -> str:
        result = client.completions.create(model="m", prompt=prompt, max_tokens=16, **GREEDY)
        return result.choices[0].text

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(complete, prompts))
    assert answers == [reference.generate(p, max_tokens=16, **GREEDY) for p in prompts]


def test_greedy_tokens_are_the_same_alone_and_among_15_others(client: openai.OpenAI) -> None:
    target = dict(model="m", prompt=_prompt(5), max_tokens=40, logprobs=0, **GREEDY)

    def tokens() -> list[str]:
        return client.completions.create(**target).choices[0].logprobs.tokens

    alone = tokens()
    start = threading.Barrier(16)

    def other(i: int) -> str:
        start.wait()
        size = 10 + i * 7
        return (
            client.completions.create(
                model="m", prompt=_prompt(i), max_tokens=size, temperature=0.9, seed=i
            )
            .choices[0]
            .text
        )

    def loaded() -> list[str]:
        start.wait()
        time.sleep(0.02)  # join a batch that is already running
        return tokens()

    with ThreadPoolExecutor(16) as pool:
        others = [pool.submit(other, i) for i in range(15)]
        among = pool.submit(loaded)
        assert all(isinstance(o.result(), str) for o in others)
    assert among.result() == alone


# -- llama-server's extras ---------------------------------------------------------------------


def test_tokenize_and_detokenize(server: ServerProcess, reference: bitllm.Model) -> None:
    text = "Hello world, again"
    tokens = httpx.post(server.url + "/tokenize", json={"content": text}).json()["tokens"]
    assert tokens == reference.tokenize(text, add_special=False, parse_special=True)
    with_bos = httpx.post(server.url + "/tokenize", json={"content": text, "add_special": True})
    assert with_bos.json()["tokens"] == reference.tokenize(text)
    pieces = httpx.post(server.url + "/tokenize", json={"content": text, "with_pieces": True})
    assert "".join(p["piece"] for p in pieces.json()["tokens"]).strip() == text
    back = httpx.post(server.url + "/detokenize", json={"tokens": tokens}).json()["content"]
    assert back == text


def test_metrics_count_requests_and_tokens(server: ServerProcess, client: openai.OpenAI) -> None:
    def metric(name: str) -> float:
        text = httpx.get(server.url + "/metrics").text
        return sum(float(v) for v in re.findall(rf"^bitllm_{name}(?:{{.*}})? (\S+)$", text, re.M))

    before = metric("requests_total"), metric("generated_tokens_total")
    client.completions.create(model="m", prompt="Count me", max_tokens=5, **GREEDY)
    assert metric("requests_total") == before[0] + 1
    assert metric("generated_tokens_total") == before[1] + 5
    assert metric("slots") == PARALLEL
    assert metric("generated_tokens_per_second") > 0
    text = httpx.get(server.url + "/metrics").text
    assert "# TYPE bitllm_prompt_tokens_total counter" in text


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (b'{"prompt": "hi", "max_tokens": ', None, "not valid JSON"),
        (b"[1, 2]", None, "JSON object"),
        (b'{"prompt": "hi", "max_tokens": "ten"}', "max_tokens", "integer"),
        (b'{"prompt": "hi", "max_tokens": -1}', "max_tokens", "greater than or equal to 0"),
        (b'{"prompt": "hi", "n": 2}', "n", "n = 1"),
        (b'{"prompt": "hi", "best_of": 3}', "best_of", "not supported"),
        (b'{"prompt": "hi", "temperature": -1}', "temperature", "greater than"),
        (b'{"max_tokens": 3}', "prompt", "required"),
        (b'{"prompt": [1, 99999999]}', "prompt", "outside the vocabulary"),
    ],
)
def test_bad_completion_requests_get_400(
    server: ServerProcess, body: bytes, param: str | None, words: str
) -> None:
    response = httpx.post(server.url + "/v1/completions", content=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert words in error["message"]


def test_unsupported_chat_fields_are_named(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "hi"}]
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError, match="'tools' is not supported"):
        client.chat.completions.create(model="m", messages=messages, tools=[tool])
    with pytest.raises(openai.BadRequestError, match="n = 1"):
        client.chat.completions.create(model="m", messages=messages, n=2)
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="m", messages=[])


def test_a_prompt_longer_than_the_context_names_both_numbers(
    client: openai.OpenAI, reference: bitllm.Model
) -> None:
    prompt = "many words " * 200
    n = len(reference.tokenize(prompt, parse_special=True))
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="m", prompt=prompt, max_tokens=1)
    assert f"{n} tokens" in str(caught.value) and f"{SLOT_CTX} tokens" in str(caught.value)


def test_unknown_endpoint_is_404_and_the_server_goes_on(server: ServerProcess) -> None:
    response = httpx.post(server.url + "/v1/embeddings", json={"input": "x"})
    assert response.status_code == 404 and "error" in response.json()
    assert httpx.get(server.url + "/v1/models").status_code == 200
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}


def test_health_is_503_while_the_model_loads(model_path: Path) -> None:
    engine = Engine(EngineSettings(model_path))  # not started: its state is "loading"
    response = TestClient(create_app(engine)).get("/health")  # without the lifespan
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "Loading model"


# -- one slot, a slow model: disconnects, a full queue, the API key, SIGTERM -------------------


TEMPLATE = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}>"


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.getbasetemp()
    model = slow_model(folder)
    (folder / "template.jinja").write_text(TEMPLATE)
    flags = ["-np", "1", "-c", "2048", "-t", "1", "--max-queue", "1", "--api-key", "sesame"]
    flags += ["--chat-template", str(folder / "template.jinja"), "-ctk", "q8_0", "-ctv", "f32"]
    process = ServerProcess(model, *flags)
    yield process
    process.stop()


AUTH = {"Authorization": "Bearer sesame"}
LONG = {"prompt": "Go on and on", "max_tokens": 1500, "ignore_eos": True, "stream": True}


def _metric(server: ServerProcess, line: str) -> float:
    text = httpx.get(server.url + "/metrics", headers=AUTH).text
    match = re.search(rf"^bitllm_{re.escape(line)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def _wait_for(condition: object, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_a_request_without_the_api_key_gets_401(slow_server: ServerProcess) -> None:
    bad = openai.OpenAI(base_url=slow_server.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    assert httpx.get(slow_server.url + "/v1/models").status_code == 401
    good = openai.OpenAI(base_url=slow_server.url + "/v1", api_key="sesame", max_retries=0)
    assert len(good.models.list().data) == 1
    assert httpx.get(slow_server.url + "/health").status_code == 200


def test_a_disconnect_mid_stream_frees_the_slot(slow_server: ServerProcess) -> None:
    cancelled = _metric(slow_server, 'requests_total{finish_reason="cancelled"}')
    generated = _metric(slow_server, "generated_tokens_total")
    with httpx.stream("POST", slow_server.url + "/v1/completions", json=LONG, headers=AUTH) as r:
        lines = r.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))
    assert _wait_for(
        lambda: _metric(slow_server, 'requests_total{finish_reason="cancelled"}') == cancelled + 1
    )
    assert _metric(slow_server, "requests_processing") == 0
    assert _metric(slow_server, "generated_tokens_total") - generated < 1000
    quick = {"prompt": "Next", "max_tokens": 3}
    response = httpx.post(slow_server.url + "/v1/completions", json=quick, headers=AUTH)
    assert response.json()["usage"]["completion_tokens"] == 3


def test_a_non_streamed_request_is_cancelled_when_its_client_leaves(
    slow_server: ServerProcess,
) -> None:
    cancelled = _metric(slow_server, 'requests_total{finish_reason="cancelled"}')
    body = dict(LONG, stream=False)
    with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes the connection
        httpx.post(slow_server.url + "/v1/completions", json=body, headers=AUTH, timeout=0.5)
    assert _wait_for(
        lambda: _metric(slow_server, 'requests_total{finish_reason="cancelled"}') == cancelled + 1
    )


def test_the_chat_template_file_is_used(slow_server: ServerProcess) -> None:
    messages = [{"role": "user", "content": "Hello there"}]
    body = {"messages": messages, "max_tokens": 1}
    usage = httpx.post(slow_server.url + "/v1/chat/completions", json=body, headers=AUTH).json()[
        "usage"
    ]
    rendered = "[user] Hello there\n>"
    tokens = httpx.post(
        slow_server.url + "/tokenize", json={"content": rendered, "add_special": True}, headers=AUTH
    ).json()["tokens"]
    assert usage["prompt_tokens"] == len(tokens)


def test_a_full_queue_answers_503_with_retry_after(slow_server: ServerProcess) -> None:
    url = slow_server.url + "/v1/completions"
    with httpx.stream("POST", url, json=LONG, headers=AUTH) as running:
        lines = running.iter_lines()  # dropping the iterator would close the stream
        next(lines)
        with httpx.stream("POST", url, json=LONG, headers=AUTH, timeout=30) as waiting:
            assert _wait_for(lambda: _metric(slow_server, "requests_queued") == 1)
            refused = httpx.post(url, json={"prompt": "x", "max_tokens": 1}, headers=AUTH)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert "slots are busy" in refused.json()["error"]["message"]
            assert waiting.status_code == 200


def test_sigterm_ends_streams_and_exits_0(tmp_path_factory: pytest.TempPathFactory) -> None:
    model = slow_model(tmp_path_factory.getbasetemp())
    # No grace: with 1 s, a fast CPU finished the 1500 tokens of this small model inside it
    # and the stream ended by its length, not by the shutdown this test is about.
    process = ServerProcess(model, "-np", "2", "-c", "4096", "-t", "1", "--shutdown-grace", "0")
    try:
        url = process.url + "/v1/completions"
        with httpx.stream("POST", url, json=LONG, timeout=30) as stream:
            lines = stream.iter_lines()
            next(lines)
            started = time.monotonic()
            process.process.terminate()
            rest = [line for line in lines if line.startswith("data:")]
        assert rest[-1] == "data: [DONE]" and "shutting down" in rest[-2]
        assert process.process.wait(20) == 0, process.output()
        assert time.monotonic() - started < 10
    finally:
        process.stop()


@pytest.mark.parametrize(
    ("args", "status", "words"),
    [
        (["-m", "/nonexistent.gguf"], 1, "model file not found: /nonexistent.gguf"),
        (["-m", "x.gguf", "--parallel", "two"], 2, "invalid int value"),
        ([], 2, "required: -m/--model"),
        (["-m", "x.gguf", "-ctk", "q4"], 2, "argument -ctk/--cache-type-k: invalid choice"),
        (["-m", "x.gguf", "-npar", "2"], 2, "unrecognized arguments: -npar"),
    ],
)
def test_command_line_errors_are_one_line(args: list[str], status: int, words: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bitllm.runtime.serve.cli", *args], capture_output=True, text=True
    )
    assert result.returncode == status
    assert words in result.stderr and len(result.stderr.strip().splitlines()) <= 2
