"""bitllm.Model on a small random model: the API names of issue 4 §5 and their behaviour."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import bitllm
from bitllm.runtime.gguf_reader import GGUFFile
from bitllm.runtime.model import ContextFullError, Model
from tests.runtime.tiny_model import cached_model

GREEDY = dict(temperature=0.0)
SYSTEM = (
    "You are a careful assistant. You answer in short sentences, you never make up facts, "
    "and you say so when you do not know something."
)


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_model(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def model(model_path: Path) -> Iterator[Model]:
    """1bitLLM's graph with LLaMA's SentencePiece vocabulary."""
    with bitllm.Model(model_path, threads=1, n_ctx=256) as m:
        yield m


@pytest.fixture(scope="module")
def model_2b4t(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Model]:
    """BitNet-b1.58-2B-4T's graph with the Llama-3 BPE vocabulary."""
    path = cached_model(tmp_path_factory.getbasetemp(), arch="bitnet-b1.58")
    with bitllm.Model(path, n_ctx=128) as m:
        yield m


@pytest.fixture(scope="module")
def small_context(model_path: Path) -> Iterator[Model]:
    with bitllm.Model(model_path, n_ctx=16) as m:
        yield m


def test_model_is_exported_and_import_stays_light() -> None:
    assert bitllm.Model is Model
    code = (
        "import sys, bitllm; "
        "heavy = [m for m in ('torch', 'transformers', 'jinja2') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_metadata_info_and_tokens(model: Model, model_2b4t: Model) -> None:
    assert model.metadata["general.architecture"] == model.info.arch == "bitnet"
    assert model.n_vocab == 32000 and model.n_ctx == 256
    assert model_2b4t.metadata["bitllm.activation"] == "relu2"
    assert model_2b4t.info.arch == "bitnet-b1.58" and model_2b4t.n_vocab == 128256
    assert model_2b4t.n_ctx == 128
    ids = model_2b4t.tokenize("Hello world")
    assert ids == [128000, 9906, 1917]
    assert model_2b4t.tokenize("Hello world", add_special=False) == [9906, 1917]
    assert model_2b4t.detokenize(ids[1:]) == "Hello world"
    assert model.tokenize("Hello world")[0] == 1
    assert model.detokenize(model.tokenize("Hello world", add_special=False)) == "Hello world"


def test_model_reads_its_file_once(model: Model, model_path: Path) -> None:
    """Tokenizer, chat template and metadata come from the parse that loaded the weights:
    the same values as a separate GGUFFile, and Python never opens the file itself."""
    with GGUFFile(model_path) as f:
        assert list(model.metadata) == list(f.metadata)
        for key, value in f.metadata.items():
            mine = model.metadata[key]
            assert np.array_equal(mine, value) if isinstance(value, np.ndarray) else mine == value
        assert model.tensor_types == {name: t.type_name for name, t in f.tensors.items()}
    code = (
        "import sys, bitllm\n"
        "opened = []\n"
        "sys.addaudithook(lambda e, a: opened.append(a[0]) if e == 'open' else None)\n"
        "with bitllm.Model(sys.argv[1], threads=1, n_ctx=16) as m:\n"
        "    assert m.tokenize('Hi')\n"
        "print(sum(str(p) == sys.argv[1] for p in opened))\n"
    )
    run = [sys.executable, "-c", code, str(model_path)]
    out = subprocess.run(run, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_logits_shape_and_causality(model: Model) -> None:
    ids = model.tokenize("The quick brown fox jumps")
    logits = model.logits(ids)
    assert logits.dtype == np.float32 and logits.shape == (len(ids), model.n_vocab)
    assert np.isfinite(logits).all()
    prefix = model.logits(ids[:3])
    np.testing.assert_allclose(prefix, logits[:3], rtol=1e-4, atol=1e-4)
    assert np.array_equal(model.logits(ids), logits)  # a fresh context each call


def test_greedy_generation_follows_the_logits(model: Model) -> None:
    ids = model.tokenize("Once upon a time")
    tokens = list(model.generate_tokens(ids, 6, **GREEDY))
    assert len(tokens) == 6
    logits = model.logits(ids + tokens[:-1])
    assert np.argmax(logits[len(ids) - 1 :], axis=1).tolist() == tokens


def test_greedy_text_is_repeatable_and_streams_the_same(model: Model) -> None:
    text = model.generate("Once upon a time", max_tokens=12, **GREEDY)
    assert isinstance(text, str) and text
    assert model.generate("Once upon a time", max_tokens=12, **GREEDY) == text
    pieces = list(model.generate("Once upon a time", max_tokens=12, stream=True, **GREEDY))
    assert "".join(pieces) == text and len(pieces) > 1
    assert model.last_stats.generated_tokens == 12
    assert model.last_stats.stop_reason == "max tokens"


def test_same_seed_same_text(model: Model) -> None:
    sampling = dict(max_tokens=16, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0)
    first = model.generate("Tell me", seed=11, **sampling)
    assert model.generate("Tell me", seed=11, **sampling) == first
    assert model.generate("Tell me", seed=12, **sampling) != first


def test_stop_string_ends_the_text_before_it(model: Model) -> None:
    full = model.generate("A list:", max_tokens=24, **GREEDY)
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    cut = model.generate("A list:", max_tokens=24, stop=[stop], **GREEDY)
    assert cut == full[: full.index(stop)]
    assert model.last_stats.stop_reason == "stop string"
    streamed = "".join(model.generate("A list:", max_tokens=24, stop=stop, stream=True, **GREEDY))
    assert streamed == cut


def test_end_of_generation_token_stops_without_being_emitted(model: Model) -> None:
    ids = model.tokenize("Once upon a time")
    tokens = list(model.generate_tokens(ids, 6, **GREEDY))
    saved = model.end_tokens
    model.end_tokens = saved | {tokens[3]}
    try:
        assert list(model.generate_tokens(ids, 6, **GREEDY)) == tokens[:3]
        assert model.last_stats.stop_reason == "eos"
    finally:
        model.end_tokens = saved


def test_a_prompt_reuses_the_cached_prefix(model: Model) -> None:
    base = model.tokenize(SYSTEM)
    list(model.generate_tokens(base, 1, **GREEDY))
    longer = base + model.tokenize(" More.", add_special=False)
    tokens = list(model.generate_tokens(longer, 4, **GREEDY))
    assert model.last_stats.prompt_evaluated == len(longer) - len(base)
    fresh = np.argmax(model.logits(longer + tokens[:-1])[len(longer) - 1 :], axis=1)
    assert fresh.tolist() == tokens


def test_stopping_a_stream_early_leaves_the_model_consistent(model: Model) -> None:
    expected = model.generate("Early stop", max_tokens=10, **GREEDY)
    stream = model.generate("Early stop", max_tokens=10, stream=True, **GREEDY)
    next(stream)
    stream.close()
    assert model.generate("Early stop", max_tokens=10, **GREEDY) == expected


def test_interleaved_streams_each_keep_their_own_cache(model: Model) -> None:
    expected_first = model.generate("First stream", max_tokens=10, **GREEDY)
    expected_second = model.generate("Second one", max_tokens=3, **GREEDY)
    old = model.generate("First stream", max_tokens=10, stream=True, **GREEDY)
    head = next(old)
    assert model.generate("Second one", max_tokens=3, **GREEDY) == expected_second
    assert head + "".join(old) == expected_first


def test_chat_reuses_the_cache_for_earlier_turns(model: Model, model_path: Path) -> None:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hi there"}]
    first_ids = model.chat_tokens(messages)
    reply = model.chat(messages, max_tokens=8, **GREEDY)
    assert isinstance(reply, str)
    assert model.last_stats.prompt_tokens == len(first_ids)
    messages += [{"role": "assistant", "content": reply}, {"role": "user", "content": "Why?"}]
    second_ids = model.chat_tokens(messages)
    pieces = list(model.chat(messages, stream=True, max_tokens=8, **GREEDY))
    evaluated = model.last_stats.prompt_evaluated
    assert evaluated <= len(second_ids) - len(first_ids) + 1, (evaluated, len(second_ids))
    with bitllm.Model(model_path, threads=1, n_ctx=256) as fresh:
        assert fresh.chat(messages, max_tokens=8, **GREEDY) == "".join(pieces)
        assert fresh.last_stats.prompt_evaluated == len(second_ids)


def test_builtin_chat_format_is_the_2b4t_transcript(model_2b4t: Model) -> None:
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    assert model_2b4t.chat_prompt(messages) == (
        "<|begin_of_text|>System: S<|eot_id|>User: U<|eot_id|>Assistant: "
    )
    ids = model_2b4t.chat_tokens(messages)
    assert ids[0] == 128000 and ids.count(128009) == 2 and ids.count(128000) == 1
    assert {128001, 128009} <= model_2b4t.end_tokens
    assert isinstance(model_2b4t.chat(messages, max_tokens=3, **GREEDY), str)


def test_other_architectures_chat_with_their_own_tokens(model: Model) -> None:
    messages = [{"role": "user", "content": "U"}]
    assert model.chat_prompt(messages) == "<s>User: U</s>Assistant: "
    assert model.chat_tokens(messages).count(2) == 1 and 2 in model.end_tokens


def test_file_chat_template_is_used(tmp_path_factory: pytest.TempPathFactory) -> None:
    template = "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}[bot]"
    path = cached_model(tmp_path_factory.getbasetemp(), chat_template=template)
    with bitllm.Model(path, n_ctx=64) as m:
        assert m.chat_prompt([{"role": "user", "content": "x"}]) == "[user]x[bot]"
        assert m.chat_tokens([{"role": "user", "content": "x"}])[0] == 1  # BOS added


def test_prompt_longer_than_the_context_is_a_clear_error(small_context: Model) -> None:
    m = small_context
    with pytest.raises(ContextFullError, match="context holds 16"):
        m.generate("word " * 40, max_tokens=4)
    with pytest.raises(ContextFullError, match="conversation"):
        m.chat([{"role": "user", "content": "word " * 40}], max_tokens=4)
    with pytest.raises(ContextFullError, match="do not fit"):
        m.logits(list(range(3, 20)))
    assert isinstance(m.generate("Hi", max_tokens=2, **GREEDY), str)  # still usable


def test_generation_stops_when_the_context_is_full(small_context: Model) -> None:
    ids = small_context.tokenize("One two three")
    tokens = list(small_context.generate_tokens(ids, None, **GREEDY))
    assert len(ids) + len(tokens) == 17  # the last token is sampled, never evaluated
    assert small_context.last_stats.stop_reason == "context full"


def test_bad_files_and_arguments_are_clear_errors(tmp_path: Path, model_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no-such.gguf"):
        bitllm.Model(tmp_path / "no-such.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all")
    with pytest.raises(ValueError, match="not a GGUF"):
        bitllm.Model(junk)
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(model_path.read_bytes()[:-1000])
    with pytest.raises(ValueError, match="truncated"):
        bitllm.Model(truncated)
    with pytest.raises(ValueError, match="threads"):
        bitllm.Model(model_path, threads=0)
    with pytest.raises(ValueError, match="n_ctx"):
        bitllm.Model(model_path, n_ctx=-5)


def test_bad_generation_arguments_raise_before_any_work(model: Model) -> None:
    with pytest.raises(ValueError, match="temperature"):
        model.generate("x", temperature=-1)
    with pytest.raises(ValueError, match="max_tokens"):
        model.generate_tokens([1, 2], -2)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        list(model.generate_tokens([10**7], 2))
    with pytest.raises(ValueError, match="empty"):
        model.generate_tokens([], 2)
    with pytest.raises(ValueError, match="role"):
        model.chat([{"content": "x"}])


def test_closed_model_refuses_work(model_path: Path) -> None:
    m = bitllm.Model(model_path, n_ctx=32)
    m.close()
    m.close()
    with pytest.raises(ValueError, match="closed"):
        m.logits([1])
