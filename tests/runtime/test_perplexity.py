"""bit-perplexity on every fixture family against a perplexity computed the same way from an
independent forward pass (transformers where it has the model, the torch reference of
tests/model for 1bitLLM and OneBit), its KL-divergence mode, and its errors.

The text is real English that ships with an installed package (a license file)."""

from __future__ import annotations

import importlib.metadata
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bitllm.runtime import perplexity_cli
from bitllm.runtime.tokenizer import Tokenizer
from tests.fixtures.checkpoints import FAMILIES
from tests.fixtures.plugin import Factory
from tests.model import reference
from tests.model.test_parity import _checkpoint_weights

N_CTX, N_CHUNKS = 64, 3
# transformers references in eager mode (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("torch_eager")
FINAL = re.compile(r"^Final estimate: PPL = (\d+\.\d+) \+/- (\d+\.\d+)$", re.M)
TRANSFORMERS_FAMILIES = (
    "bitnet-2b4t",
    "bitnet-2b4t-bf16",
    "hf-bitnet",
    "falcon-e",
    "falcon-e-bf16",
    "trilm",
)


@pytest.fixture(scope="session")
def text_file() -> Path:
    """A license text from an installed package: real English, several thousand tokens."""
    for package in ("transformers", "torch", "numpy"):
        dist = importlib.metadata.distribution(package)
        for file in dist.files or []:
            path = Path(str(dist.locate_file(file)))
            if "LICENSE" in file.name.upper() and path.is_file() and path.stat().st_size > 8000:
                return path
    pytest.fail("no license text of 8 kB or more in transformers, torch or numpy")


def bit_perplexity(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    try:
        code = perplexity_cli.main([str(a) for a in args])
    except SystemExit as e:  # argparse's usage errors
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def final_estimate(out: str) -> tuple[float, float]:
    match = FINAL.search(out)
    assert match, out
    return float(match.group(1)), float(match.group(2))


def _transformers_model(folder: Path) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.dtype == torch.bfloat16:  # the packed families keep bf16 weight scales
            tensor.data = tensor.data.float()
    return model


def _reference_ppl(family: str, folder: Path, gguf: Path, text: Path) -> float:
    """PPL the same way (chunks, BOS, second half) from the reference forward pass."""
    tokenizer = Tokenizer(gguf)
    ids = tokenizer.encode(text.read_text(), add_special=True)
    chunks = np.asarray(ids[: N_CHUNKS * N_CTX]).reshape(N_CHUNKS, N_CTX)
    if family in TRANSFORMERS_FAMILIES:
        model = _transformers_model(folder)

        def forward(tokens: list[int]) -> np.ndarray:
            with torch.no_grad():
                return model(torch.tensor([tokens])).logits[0].float().numpy()
    else:
        weights = _checkpoint_weights(folder, family)

        def forward(tokens: list[int]) -> np.ndarray:
            return reference.forward(weights, tokens)

    nll = []
    first = N_CTX // 2
    for chunk in chunks:
        tokens = [int(t) for t in chunk]
        if tokenizer.add_bos:
            tokens[0] = tokenizer.bos_id
        log_probs = torch.log_softmax(torch.from_numpy(forward(tokens)).double(), dim=-1)
        for pos in range(first, N_CTX - 1):
            nll.append(-float(log_probs[pos, int(chunk[pos + 1])]))
    return float(np.exp(np.mean(nll)))


@pytest.mark.parametrize("family", FAMILIES)
def test_ppl_matches_the_reference(
    family: str,
    converted_gguf: Factory,
    checkpoint_factory: Factory,
    text_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gguf = converted_gguf(family, head_type="f32")
    code, out, err = bit_perplexity(
        capsys, "-m", gguf, "-f", text_file, "-c", N_CTX, "--chunks", N_CHUNKS, "-t", 2
    )
    assert code == 0, err
    ppl, uncertainty = final_estimate(out)
    expected = _reference_ppl(family, checkpoint_factory(family), gguf, text_file)
    assert abs(ppl - expected) / expected < 0.01, (ppl, expected)
    assert 0 < uncertainty < ppl
    # running values, one per chunk, the last one the final estimate
    running = re.findall(r"\[(\d+)\](\d+\.\d+)", out.splitlines()[0])
    assert [int(i) for i, _ in running] == list(range(1, N_CHUNKS + 1))
    assert float(running[-1][1]) == ppl
    assert f"over {N_CHUNKS} chunks, n_ctx={N_CTX}" in err


def test_batch_size_and_threads_do_not_change_the_result(
    converted_gguf: Factory, text_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gguf = converted_gguf("bitnet-2b4t", head_type="f32")
    runs = [
        bit_perplexity(capsys, "-m", gguf, "-f", text_file, "-c", N_CTX, "-b", b, "-t", t)[1]
        for b, t in ((512, 2), (5, 1), (N_CTX // 2, 2))
    ]
    assert runs[0] == runs[1] == runs[2]
    # all of a short text's chunks by default: 2 more than --chunks 3 saw, say
    assert len(re.findall(r"\[\d+\]", runs[0].splitlines()[0])) > N_CHUNKS


def _statistic(out: str, label: str) -> tuple[float, float]:
    match = re.search(re.escape(label) + r"\s*:\s*(-?\d+\.\d+) ± +(\d+\.\d+)", out)
    assert match, (label, out)
    return float(match.group(1)), float(match.group(2))


@pytest.fixture(scope="session")
def base_file(
    converted_gguf: Factory, text_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, float]:
    """The f32-head reference of bitnet-2b4t saved as a KL base; and its PPL."""
    path = tmp_path_factory.mktemp("kld") / "reference.kld"
    gguf = converted_gguf("bitnet-2b4t", head_type="f32")
    args = ["-m", gguf, "-f", text_file, "-c", N_CTX, "--chunks", N_CHUNKS]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bitllm.runtime.perplexity_cli",
            *map(str, args),
            "--kl-divergence-base",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "chunk" in result.stderr  # the progress bar
    return path, final_estimate(result.stdout)[0]


def test_a_model_against_its_own_base_file_diverges_by_zero(
    base_file: tuple[Path, float], converted_gguf: Factory, capsys: pytest.CaptureFixture[str]
) -> None:
    path, base_ppl = base_file
    gguf = converted_gguf("bitnet-2b4t", head_type="f32")
    code, out, err = bit_perplexity(
        capsys, "-m", gguf, "--kl-divergence-base", path, "--kl-divergence", "-b", 7, "-t", 1
    )
    assert code == 0, err
    assert _statistic(out, "Mean    KLD") == (0.0, 0.0)
    assert _statistic(out, "Same top p") == (100.0, 0.0)
    assert _statistic(out, "Mean PPL(Q)")[0] == _statistic(out, "Mean PPL(base)")[0]
    assert final_estimate(out)[0] == base_ppl
    assert "Maximum KLD:   0.000000" in out


def test_a_q4_0_head_diverges_from_the_f32_reference(
    base_file: tuple[Path, float], converted_gguf: Factory, capsys: pytest.CaptureFixture[str]
) -> None:
    path, base_ppl = base_file
    gguf = converted_gguf("bitnet-2b4t", head_type="q4_0")
    code, out, err = bit_perplexity(
        capsys, "-m", gguf, "--kl-divergence-base", path, "--kl-divergence"
    )
    assert code == 0, err
    kld, kld_uncertainty = _statistic(out, "Mean    KLD")
    assert kld > 0 and kld_uncertainty > 0
    assert _statistic(out, "Mean PPL(base)")[0] == pytest.approx(base_ppl, rel=1e-6)
    assert _statistic(out, "Mean PPL(Q)")[0] == pytest.approx(final_estimate(out)[0], rel=1e-6)
    same_top = _statistic(out, "Same top p")[0]
    assert 0 < same_top < 100
    for label in ("Maximum KLD", "99.9%   KLD", "Median  KLD", "Minimum KLD"):
        assert re.search(re.escape(label) + r": +\d+\.\d+$", out, re.M), label
    maximum = float(re.search(r"Maximum KLD: +(\d+\.\d+)", out).group(1))
    assert maximum >= kld


def test_the_text_is_checked_against_the_base_file(
    base_file: tuple[Path, float],
    converted_gguf: Factory,
    text_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _ = base_file
    gguf = converted_gguf("bitnet-2b4t", head_type="q8_0")
    args = ["-m", gguf, "--kl-divergence-base", path, "--kl-divergence"]
    assert bit_perplexity(capsys, *args, "-f", text_file)[0] == 0
    other = tmp_path / "other.txt"
    other.write_text("Another text entirely. " * 200)
    _one_line_error(bit_perplexity(capsys, *args, "-f", other), "made from another text")


def _one_line_error(result: tuple[int, str, str], text: str, code: int = 1) -> None:
    got, out, err = result
    assert got == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bit-perplexity: error:"), err
    assert text in lines[0], lines[0]
    assert "Traceback" not in err and out == ""


def test_bad_inputs_are_one_line_errors(
    converted_gguf: Factory, text_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gguf = converted_gguf("bitnet-2b4t", head_type="q8_0")
    run = bit_perplexity
    _one_line_error(run(capsys, "-m", tmp_path / "none.gguf", "-f", text_file), "not found")
    _one_line_error(run(capsys, "-m", gguf, "-f", tmp_path / "none.txt"), "text file not found")
    _one_line_error(run(capsys, "-m", gguf), "give -f FILE")
    short = tmp_path / "short.txt"
    short.write_text("Too short for a chunk.")
    _one_line_error(run(capsys, "-m", gguf, "-f", short, "-c", N_CTX), "shorter than one chunk")
    _one_line_error(
        run(capsys, "-m", gguf, "-f", text_file, "-c", 4096),
        "larger than the model's training context of 2048",
    )
    _one_line_error(run(capsys, "-m", gguf, "-f", text_file, "-c", 3), "at least 4")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00text")
    _one_line_error(run(capsys, "-m", gguf, "-f", binary), "not UTF-8")
    _one_line_error(run(capsys, "-m", gguf, "--kl-divergence"), "needs --kl-divergence-base")
    missing = tmp_path / "none.kld"
    _one_line_error(
        run(capsys, "-m", gguf, "--kl-divergence-base", missing, "--kl-divergence"),
        "base file not found",
    )
    for bad in ("0", "-2", "x"):
        _one_line_error(run(capsys, "-m", gguf, "-f", text_file, "-c", bad), "positive", code=2)


def _kld(capsys: pytest.CaptureFixture[str], gguf: Path, base: Path, *args: object) -> tuple:
    return bit_perplexity(
        capsys, "-m", gguf, "--kl-divergence-base", base, "--kl-divergence", *args
    )


def test_damaged_or_mismatched_base_files_are_one_line_errors(
    base_file: tuple[Path, float],
    converted_gguf: Factory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _ = base_file
    good = path.read_bytes()
    gguf = converted_gguf("bitnet-2b4t", head_type="q8_0")

    def damaged(name: str, data: bytes) -> Path:
        (tmp_path / name).write_bytes(data)
        return tmp_path / name

    _one_line_error(_kld(capsys, gguf, damaged("cut.kld", good[:-4])), "truncated")
    _one_line_error(_kld(capsys, gguf, damaged("long.kld", good + b"\0" * 8)), "trailing bytes")
    _one_line_error(_kld(capsys, gguf, damaged("head.kld", good[:10])), "header")
    _one_line_error(_kld(capsys, gguf, damaged("magic.kld", b"GGUF" + good[4:])), "wrong magic")
    n_vocab, n_ctx, n_chunks = struct.unpack_from("<III", good, 12)
    more = good[:20] + struct.pack("<I", n_chunks + 1) + good[24:]
    _one_line_error(_kld(capsys, gguf, damaged("count.kld", more)), "truncated")
    bad_token = bytearray(good)
    struct.pack_into("<i", bad_token, 24, n_vocab)
    _one_line_error(_kld(capsys, gguf, damaged("token.kld", bytes(bad_token))), "outside")
    # a model with another vocabulary (LLaMA SPM, 32000) against the Llama-3 base
    spm = converted_gguf("onebit", head_type="q8_0")
    _one_line_error(_kld(capsys, spm, path), f"vocabulary of {n_vocab} tokens; this model has")
    _one_line_error(_kld(capsys, gguf, path, "-c", n_ctx * 2), f"chunks of {n_ctx} tokens")
    _one_line_error(_kld(capsys, gguf, path, "--chunks", n_chunks + 1), f"holds {n_chunks} chunks")


def test_an_existing_base_file_is_never_replaced(
    converted_gguf: Factory, text_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gguf = converted_gguf("bitnet-2b4t", head_type="q8_0")
    existing = tmp_path / "mine.kld"
    existing.write_bytes(b"the user's file")
    result = bit_perplexity(
        capsys, "-m", gguf, "-f", text_file, "-c", N_CTX, "--kl-divergence-base", existing
    )
    _one_line_error(result, "already exists")
    assert existing.read_bytes() == b"the user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.kld"]  # no partial file left


def test_missing_model_is_one_line_from_a_real_process(text_file: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bitllm.runtime.perplexity_cli",
            "-m",
            "/nonexistent.gguf",
            "-f",
            str(text_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "bit-perplexity: error: model file not found: /nonexistent.gguf"
