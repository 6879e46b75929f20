"""bit-convert's output file: never one of the inputs, named by default like llama.cpp's
converter names it, reported at its real size, and never left half-written by a signal."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bitllm.convert.cli import main
from tests.fixtures.plugin import Factory

SLOW_FAMILY = "hf-bitnet"  # a Llama-3 vocabulary: seconds of writing, time to send a signal


def _copy(checkpoint_factory: Factory, family: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(checkpoint_factory(family), tmp_path / family))


def _refused(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("target", ["model.safetensors", "config.json", "tokenizer.json"])
def test_output_is_never_an_input_even_with_force(
    checkpoint_factory: Factory, tmp_path: Path, capsys: pytest.CaptureFixture, target: str
) -> None:
    src = _copy(checkpoint_factory, "onebit", tmp_path)
    before = (src / target).read_bytes()
    for argv_src in (src, src / "model.safetensors"):
        line = _refused(capsys, [str(argv_src), "-o", str(src / target), "--force"])
        assert "is the input" in line and target in line
    assert (src / target).read_bytes() == before


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_output_linked_to_an_input_is_refused(
    checkpoint_factory: Factory, tmp_path: Path, capsys: pytest.CaptureFixture, link: str
) -> None:
    src = _copy(checkpoint_factory, "onebit", tmp_path)
    weights = src / "model.safetensors"
    before = weights.read_bytes()
    out = tmp_path / "elsewhere.gguf"
    if link == "symlink":
        out.symlink_to(weights)
    else:
        os.link(weights, out)
    assert "is the input" in _refused(capsys, [str(src), "-o", str(out), "--force"])
    assert weights.read_bytes() == before and out.read_bytes() == before


def test_default_output_name_and_real_size(
    checkpoint_factory: Factory, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = _copy(checkpoint_factory, "onebit", tmp_path)
    assert main([str(src), "--outtype", "bt1"]) == 0
    out = src / "onebit-bt1.gguf"
    assert out.read_bytes()[:4] == b"GGUF"
    err = capsys.readouterr().err
    reported = re.search(r"wrote (.+) \(\d+ tensors, ([0-9.]+) MB\)", err)
    assert reported is not None, err
    assert Path(reported[1]) == out
    assert reported[2] == f"{out.stat().st_size / 1e6:.2f}"
    assert "already exists" in _refused(
        capsys, [str(src / "model.safetensors"), "--outtype", "bt1"]
    )


def _start_conversion(src: Path, out: Path) -> tuple[subprocess.Popen[str], Path]:
    """A real bit-convert process, returned once its partial file exists."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bitllm.convert.cli", str(src), "-o", str(out)],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        partials = list(out.parent.glob(f".{out.name}.*.partial"))
        if partials:
            return process, partials[0]
        time.sleep(0.01)
    process.kill()
    pytest.fail(f"no partial file appeared: {process.communicate()[1]}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_while_writing_leaves_nothing(
    checkpoint_factory: Factory, tmp_path: Path, signum: int
) -> None:
    src = checkpoint_factory(SLOW_FAMILY)
    out = tmp_path / "model.gguf"
    process, partial = _start_conversion(src, out)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, err
    assert err.count("\n") == 1 and "nothing written" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_killed_conversion_is_cleaned_up_by_the_next(
    checkpoint_factory: Factory, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "big.gguf"
    process, partial = _start_conversion(checkpoint_factory(SLOW_FAMILY), out)
    process.kill()
    process.communicate(timeout=60)
    assert partial.exists()  # SIGKILL cannot be caught
    other = tmp_path / "small.gguf"
    assert main([str(checkpoint_factory("onebit")), "-o", str(other)]) == 0
    assert str(partial) in capsys.readouterr().err
    assert sorted(tmp_path.iterdir()) == [other]
