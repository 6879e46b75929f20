"""The KV cache types as a user picks them: bitllm.Model's cache_type_k/cache_type_v and
summary(), and bit-run's and bit-bench's -ctk/-ctv (real processes on a real model file)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bitllm.runtime.model import Model
from tests.runtime.tiny_model import VOCAB_SPM, Shape, write_model

# head_dim 32: whole q8_0 blocks per head.
SHAPE = Shape(n_layer=2, n_embd=64, n_head=2, n_head_kv=1, n_ff=96, n_ctx_train=256)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cache") / "tiny.gguf"
    return write_model(path, "bitnet", shape=SHAPE, vocab=VOCAB_SPM)


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", f"bitllm.runtime.{module}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_model_reports_its_cache(model_path: Path) -> None:
    with Model(model_path, n_ctx=128) as m:
        assert m.summary()["KV cache"] == "keys f16, values f16: 0.0 MiB at 128 positions"
    # 2 layers x 128 positions x (34 + 128) bytes per K/V row pair of 32 dimensions
    with Model(model_path, n_ctx=128, cache_type_k="q8_0", cache_type_v="f32") as m:
        context = m.new_context(128)
        assert (context.cache_type_k, context.cache_type_v) == ("q8_0", "f32")
        assert context.cache_bytes == 2 * 128 * (34 + 128)
        assert m.summary()["KV cache"].startswith("keys q8_0, values f32:")


def test_every_cache_type_generates(model_path: Path) -> None:
    texts = {}
    for cache_type in ("f32", "f16", "q8_0"):
        with Model(model_path, cache_type_k=cache_type, cache_type_v=cache_type) as m:
            texts[cache_type] = m.generate("Hello", max_tokens=8, temperature=0)
    assert all(isinstance(t, str) and t for t in texts.values())


def test_bad_cache_types_are_errors(model_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cache_type_k must be one of 'f32', 'f16', 'q8_0'"):
        Model(model_path, cache_type_k="q4_0")
    with pytest.raises(ValueError, match="cache_type_v must be one of"):
        Model(model_path, cache_type_v=16)  # type: ignore[arg-type]


def test_bit_run_takes_cache_types(model_path: Path) -> None:
    args = ("-m", str(model_path), "-p", "Hi", "-n", "4", "--temp", "0", "--verbose")
    result = _run("cli", *args, "-ctk", "q8_0", "--cache-type-v", "f32")
    assert result.returncode == 0, result.stderr
    assert "keys q8_0, values f32" in result.stdout + result.stderr
    bad = _run("cli", *args, "-ctk", "q5_1")
    assert bad.returncode == 2 and "invalid choice: 'q5_1'" in bad.stderr


def test_bit_bench_depth_and_cache_types(model_path: Path) -> None:
    result = _run(
        "bench", "-m", str(model_path), "-p", "8", "-n", "3", "-d", "0,40", "-t", "1",
        "-r", "1", "-ctk", "f16,q8_0", "-ctv", "f32", "-o", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [(r["cache"], r["test"]) for r in json.loads(result.stdout)["results"]]
    expected = [
        (cache, test)
        for cache in ("f16/f32", "q8_0/f32")
        for test in ("pp8", "tg3", "pp8 @ d40", "tg3 @ d40")
    ]
    assert rows == expected
    sizes = {r["cache"]: r["cache_mib"] for r in json.loads(result.stdout)["results"]}
    n_ctx = 40 + 8  # the deepest test's positions
    assert sizes["f16/f32"] * 2**20 == pytest.approx(2 * n_ctx * (64 + 128))
    assert sizes["q8_0/f32"] * 2**20 == pytest.approx(2 * n_ctx * (34 + 128))
    table = _run("bench", "-m", str(model_path), "-p", "8", "-n", "0", "-d", "16", "-t", "1",
                 "-r", "1")  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "| f16/f16 " in table.stdout and "| pp8 @ d16 |" in table.stdout
    bad = _run("bench", "-m", str(model_path), "-ctk", "f8")
    assert bad.returncode == 2 and "invalid choice: 'f8' (choose from f32, f16, q8_0)" in bad.stderr
