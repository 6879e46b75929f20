"""Choosing the device: bitllm.Model(device=...), bit-run --device and bit-bench --device.

On a machine without a usable GPU (or with a library built without CUDA) asking for cuda
must fail with one clear error that says why; the CPU path names itself "cpu: " and its
kernels' ISA. The GPU's own results are checked against the CPU in
tests/cuda/test_cuda_model.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import bitllm
from bitllm.runtime import cli, cuda, kernels
from bitllm.runtime.model import NativeModel
from tests.runtime.tiny_model import cached_model

no_gpu = pytest.mark.skipif(
    cuda.available(), reason="a GPU is present: the error for a missing one cannot show here"
)


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_model(tmp_path_factory.getbasetemp())


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"bitllm.runtime.{module}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line_error(result: subprocess.CompletedProcess[str], prog: str) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), result.stderr
    return lines[0]


@no_gpu
def test_model_on_cuda_says_why_it_cannot(model_path: Path) -> None:
    with pytest.raises(cuda.CudaUnavailableError, match="(?i)cuda") as error:
        bitllm.Model(model_path, device="cuda")
    assert isinstance(error.value, RuntimeError) and "\n" not in str(error.value)


@no_gpu
def test_native_model_on_cuda_says_why_it_cannot(model_path: Path) -> None:
    with pytest.raises(cuda.CudaUnavailableError, match="(?i)cuda"):
        NativeModel(model_path, device="cuda")


@no_gpu
def test_the_missing_gpu_is_reported_before_the_file_is_read(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 32)
    with pytest.raises(cuda.CudaUnavailableError, match="(?i)cuda"):
        NativeModel(junk, device="cuda")


@pytest.mark.parametrize("device", ["gpu", "CUDA", "", None, 1])
def test_unknown_device_is_a_value_error_naming_both(model_path: Path, device: object) -> None:
    for open_model in (bitllm.Model, NativeModel):
        with pytest.raises(ValueError, match="'cpu', 'cuda'"):
            open_model(model_path, device=device)


def test_cpu_model_names_its_device(model_path: Path) -> None:
    # "cpu: " and the ISA its kernels run, as "cuda: " and the GPU's name
    named = f"cpu: {kernels.default_isa()}"
    with bitllm.Model(model_path, n_ctx=32, device="cpu") as model:
        assert model.device == "cpu"
        assert model.info.device == named and model.info.device_bytes == 0
        summary = model.summary()
        assert summary["device"] == named and "GPU memory" not in summary
    with bitllm.Model(model_path, n_ctx=32) as default:
        assert default.device == "cpu" and default.info.device == named


def test_cpu_device_names_a_forced_isa(model_path: Path) -> None:
    code = f"import bitllm; print(bitllm.Model({str(model_path)!r}, n_ctx=32).info.device)"
    env = {**os.environ, "BITLLM_ISA": "scalar"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "cpu: scalar"


def test_model_import_does_not_load_the_cuda_module() -> None:
    code = "import sys, bitllm; bitllm.Model; print('bitllm.runtime.cuda' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@no_gpu
def test_bit_run_on_cuda_is_a_one_line_error(model_path: Path) -> None:
    result = _run("cli", "-m", str(model_path), "-p", "Hi", "-n", "2", "--device", "cuda")
    assert "cuda" in _one_line_error(result, "bit-run").lower()
    assert result.stdout == ""


def test_bit_run_rejects_an_unknown_device(model_path: Path) -> None:
    result = _run("cli", "-m", str(model_path), "-p", "Hi", "--device", "gpu")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_bit_run_verbose_names_the_device(
    model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["-m", str(model_path), "-p", "Hi", "-n", "1", "--verbose", "--device", "cpu"]
    assert cli.main(args) == 0
    assert any(
        line.split("=")[0].strip() == "bit-run: device"
        and line.endswith(f"= cpu: {kernels.default_isa()}")
        for line in capsys.readouterr().err.splitlines()
    )


@no_gpu
def test_bit_bench_on_cuda_is_a_one_line_error(model_path: Path) -> None:
    result = _run("bench", "-m", str(model_path), "-p", "8", "-n", "2", "--device", "cuda")
    assert "cuda" in _one_line_error(result, "bit-bench").lower()
    assert result.stdout == ""  # no table header without a row


def test_bit_bench_reports_the_device(model_path: Path) -> None:
    args = ("-m", str(model_path), "-p", "8", "-n", "0", "-t", "1", "-r", "1")
    report = json.loads(_run("bench", *args, "-o", "json", "--device", "cpu").stdout)
    named = f"cpu: {kernels.default_isa()}"
    assert [r["device"] for r in report["results"]] == [named]
    table = _run("bench", *args).stdout.splitlines()
    assert table[0].startswith("| model | size | device | threads |")
    assert table[2].split(" | ")[2] == named
