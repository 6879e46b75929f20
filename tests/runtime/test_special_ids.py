"""Special-token ids past the vocabulary are refused when the model loads, in one line
naming the key, instead of failing later in chat with "list index out of range"."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import bitllm
from tests.runtime.tiny_model import cached_model

UINT32 = 4  # GGUF value type


def with_token_id(model: Path, out: Path, key: str, value: int) -> Path:
    """A copy of model whose uint32 metadata key has the given value."""
    shutil.copyfile(model, out)
    data = bytearray(out.read_bytes())
    name = key.encode()
    at = data.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
    assert struct.unpack_from("<I", data, at)[0] == UINT32
    struct.pack_into("<I", data, at + 4, value)
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("kind", ["bos", "eos"])
def test_special_id_past_the_vocabulary_is_refused_at_load(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, kind: str
) -> None:
    key = f"tokenizer.ggml.{kind}_token_id"
    model = cached_model(tmp_path_factory.getbasetemp())
    bad = with_token_id(model, tmp_path / "bad.gguf", key, 1_000_000)
    with pytest.raises(ValueError, match=f"{key} = 1000000 is not a token id"):
        bitllm.Model(bad)
    result = subprocess.run(
        [sys.executable, "-m", "bitllm.runtime.cli", "-m", str(bad), "-cnv", "-p", "hi"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and str(bad) in lines[0], result.stderr
