"""Thousands of damaged GGUFs (truncations, flipped bits, huge counts and lengths,
inserted and deleted bytes): the loader returns an error or a working model, never
crashes or hangs. The mutants run in a child process so a crash fails this test."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .conftest import ModelFactory

REPO = Path(__file__).resolve().parents[2]


# qwen3 in q2_0: id 42, whose layout (groups of 64 or 128) the loader picks by tensor size
Q2_0_QWEN3 = {"weight_type": "q2_0", "key_length": 16, "n_ff": 128}


@pytest.mark.parametrize(
    ("arch", "seed", "overrides"),
    [("bitnet-b1.58", 1, {}), ("onebit", 2, {}), ("qwen3", 3, Q2_0_QWEN3)],
)
def test_damaged_files_never_crash(
    arch: str, seed: int, overrides: dict, make_model: ModelFactory, tmp_path: Path
) -> None:
    _, path = make_model(arch, n_layer=1, n_vocab=32, **overrides)
    shm = Path("/dev/shm")  # thousands of small writes: memory is much faster than disk
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else tmp_path) as workdir:
        run = subprocess.run(
            [sys.executable, "-m", "tests.model.fuzz_gguf", str(path), workdir, "3000", str(seed)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    last = run.stderr.strip().splitlines()[-3:]
    assert run.returncode == 0, f"exit {run.returncode}; last mutations: {last}\n{run.stdout}"
    assert "'error'" in run.stdout and "'opened'" in run.stdout, run.stdout
