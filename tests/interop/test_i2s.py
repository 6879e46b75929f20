"""bitnet.cpp's I2_S files load: the encoder (i2s_writer.py) against hand-worked bytes of the
facts in docs/INTEROP.md, then tiny 2B-4T-shaped models written as I2_S against the same
weights in bitllm's own bt2 file (bit-identical logits: the repack is exact), under both of
bitnet.cpp's arch names and all three packings, and hostile I2_S tensors as one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bitllm.runtime.gguf_reader import GGUFFile
from tests.model.builder import TensorData, Weights
from tests.model.capi import NativeModel
from tests.model.conftest import ModelFactory

from .i2s_writer import I2S_TYPE_ID, PACKINGS, encode_i2s, pack_codes, write_i2s_model

TOKENS = [1, 5, 9, 2, 77, 40, 3]
ARCHS = ("bitnet-b1.58", "bitnet-25")


# ---- the encoder, byte by byte ---------------------------------------------------------


def test_x86_packing_bytes() -> None:
    """Byte j of a 128-weight block holds weights j, 32+j, 64+j, 96+j in bits 7-6 .. 1-0."""
    w = np.zeros((1, 256), np.int8)
    w[0, [0, 32, 64, 96]] = [1, -1, 0, 1]  # codes 2, 0, 1, 2 -> 0b10_00_01_10
    w[0, 128 + 5] = -1  # second block, byte 5, bits 7-6: code 0 -> 0b00_01_01_01
    out = encode_i2s(w, 0.5, "x86")
    assert len(out) == 256 // 4 + 32
    assert out[0] == 0x86
    assert out[32 + 5] == 0x15
    assert set(np.delete(out[:64], [0, 37])) == {0x55}  # all-zero weights: codes 1 1 1 1
    assert bytes(out[64:68]) == bytes([0x00, 0x00, 0x00, 0x3F])  # float32 0.5
    assert not out[68:].any()


def test_arm_packing_bytes() -> None:
    """ARM: blocks of 64 in 16 bytes, byte j holds weights j, 16+j, 32+j, 48+j."""
    w = np.zeros((2, 64), np.int8)
    w[0, [0, 16, 32, 48]] = [1, -1, 0, 1]
    w[1, 15 + 48] = 1  # second block (row 1), byte 15, bits 1-0: code 2
    out = encode_i2s(w, -2.0, "arm")
    assert out[0] == 0x86
    assert out[16 + 15] == 0x56
    assert bytes(out[32:36]) == bytes([0x00, 0x00, 0x00, 0xC0])  # float32 -2.0


def test_x86_1x4_packing_bytes() -> None:
    """1x4: byte g*cols + c holds column c of rows 4g..4g+3 in bits 7-6 .. 1-0."""
    w = np.array([[1, -1], [-1, 0], [0, 1], [1, 1]], np.int8)
    assert list(pack_codes(w, "x86-1x4")) == [0x86, 0x1A]
    w8 = np.concatenate([w, -w])  # rows 4..7: the second group of bytes
    assert list(pack_codes(w8, "x86-1x4")) == [0x86, 0x1A, 0x24, 0x90]


def test_tail_fills() -> None:
    w = np.zeros((1, 128), np.int8)
    assert list(encode_i2s(w, 1.0, fill="repeated")[32:]) == [0, 0, 0x80, 0x3F] * 8
    garbage = encode_i2s(w, 1.0, fill="garbage")[32:]
    assert list(garbage[:4]) == [0, 0, 0x80, 0x3F] and garbage[4:].any()


# ---- files -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture(make_model_module: ModelFactory) -> tuple[Weights, Path]:
    """The bitnet-b1.58 fixture (2B-4T's graph, GQA), with an f16 tied head as published."""
    return make_model_module("bitnet-b1.58", head_type="f16")


@pytest.fixture(scope="module")
def make_model_module(tmp_path_factory: pytest.TempPathFactory) -> ModelFactory:
    from tests.model.builder import config_for, random_weights, write_model

    def make(arch: str, seed: int = 0, **overrides: object) -> tuple[Weights, Path]:
        weights = random_weights(config_for(arch, **overrides), seed)  # type: ignore[arg-type]
        path = tmp_path_factory.mktemp("bt2") / f"{arch}.gguf"
        return weights, write_model(path, weights)

    return make


def _logits(path: Path, **params: object) -> np.ndarray:
    return NativeModel(path, threads=2, **params).context(n_ctx=16).eval(TOKENS)


@pytest.fixture(scope="module")
def wide_fixture(make_model_module: ModelFactory) -> tuple[Weights, Path]:
    """Rows of whole 128- and 256-weight blocks (as all of 2B-4T's are), where the fixture's
    rows of 64 and 96 split blocks between rows."""
    return make_model_module("bitnet-b1.58", head_type="f16", n_embd=128, n_ff=384, n_layer=1)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("packing", PACKINGS)
@pytest.mark.parametrize("shape", ["narrow", "wide"])
def test_i2s_file_matches_bt2_file(
    arch: str,
    packing: str,
    shape: str,
    fixture: tuple[Weights, Path],
    wide_fixture: tuple[Weights, Path],
    tmp_path: Path,
) -> None:
    weights, bt2_path = fixture if shape == "narrow" else wide_fixture
    path = write_i2s_model(tmp_path / "i2s.gguf", weights, arch, packing)  # type: ignore[arg-type]
    model = NativeModel(path, threads=2, i2s_packing=PACKINGS.index(packing))
    assert model.info["arch"] == arch
    got = model.context(n_ctx=16).eval(TOKENS)
    want = _logits(bt2_path)
    assert np.isfinite(want).all()
    assert np.array_equal(got, want)


def test_wrong_packing_changes_the_weights(fixture: tuple[Weights, Path], tmp_path: Path) -> None:
    """The file does not say its packing: the option decides, and it matters."""
    weights, bt2_path = fixture
    path = write_i2s_model(tmp_path / "arm.gguf", weights, packing="arm")
    assert not np.array_equal(_logits(path), _logits(bt2_path))  # read as x86 (the default)


@pytest.mark.parametrize("fill", ["repeated", "garbage"])
def test_only_the_first_four_tail_bytes_count(
    fill: str, fixture: tuple[Weights, Path], tmp_path: Path
) -> None:
    weights, bt2_path = fixture
    path = write_i2s_model(tmp_path / "tail.gguf", weights, fill=fill)  # type: ignore[arg-type]
    assert np.array_equal(_logits(path), _logits(bt2_path))


def test_inspect_names_and_sizes_i2s(fixture: tuple[Weights, Path], tmp_path: Path) -> None:
    weights, _ = fixture
    path = write_i2s_model(tmp_path / "i2s.gguf", weights, "bitnet-25")
    with GGUFFile(path) as gguf:
        t = gguf.tensors["blk.0.ffn_up.weight"]
        assert (t.type_id, t.type_name) == (I2S_TYPE_ID, "i2_s")
        rows, cols = t.shape
        assert t.nbytes == rows * cols // 4 + 32
        assert gguf.metadata["general.architecture"] == "bitnet-25"
        assert "bitnet-25.block_count" in gguf.metadata


# ---- hostile files --------------------------------------------------------------------


def _i2s(values: np.ndarray, scale: float = 0.25, packing: str = "x86") -> TensorData:
    return TensorData(encode_i2s(values, scale, packing), values.shape, I2S_TYPE_ID)  # type: ignore[arg-type]


def _open_fails(path: Path, match: str, **params: object) -> None:
    with pytest.raises(ValueError, match=match) as info:
        NativeModel(path, **params)
    assert "\n" not in str(info.value)


def test_truncated_i2s_tensor(fixture: tuple[Weights, Path], tmp_path: Path) -> None:
    weights, _ = fixture
    path = write_i2s_model(tmp_path / "i2s.gguf", weights)
    with GGUFFile(path) as gguf:
        last = max(gguf.tensors.values(), key=lambda t: t.offset)
    assert last.type_id == I2S_TYPE_ID
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(path.read_bytes()[: last.offset + last.nbytes - 20])  # inside the tail
    _open_fails(cut, f"tensor '{last.name}': .* run past the end of the file")


def test_i2s_tensor_without_its_tail(fixture: tuple[Weights, Path], tmp_path: Path) -> None:
    """A tensor of n/4 bytes (no tail) runs into the next one."""
    weights, _ = fixture
    values = weights.layers[0].proj["attn_q"].values
    short = TensorData(encode_i2s(values, 0.25)[:-32], values.shape, I2S_TYPE_ID)
    path = write_i2s_model(tmp_path / "short.gguf", weights, tensors={"blk.0.attn_q.weight": short})
    _open_fails(path, "'blk.0.attn_q.weight' .* overlaps tensor")


def test_hostile_i2s_tensors(fixture: tuple[Weights, Path], tmp_path: Path) -> None:
    weights, _ = fixture
    q = weights.layers[0].proj["attn_q"].values

    def open_with(name: str, t: TensorData, match: str, **params: object) -> None:
        path = write_i2s_model(tmp_path / "bad.gguf", weights, tensors={name: t})
        _open_fails(path, match, **params)

    odd = TensorData(np.zeros(64, np.uint8), (3, 5), I2S_TYPE_ID)
    open_with(
        "blk.0.attn_q.weight",
        odd,
        r"'blk.0.attn_q.weight' \(i2_s\): 15 weights do not "
        "fill whole bytes of 4",
    )
    bad_code = encode_i2s(q, 0.25)
    bad_code[3] |= 0xC0  # weight 3 gets code 3
    open_with(
        "blk.0.attn_q.weight",
        TensorData(bad_code, q.shape, I2S_TYPE_ID),
        r"'blk.0.attn_q.weight' \(i2_s\): 1 of its codes are 3",
    )
    open_with(
        "blk.1.ffn_down.weight",
        _i2s(weights.layers[1].proj["ffn_down"].values, float("inf")),
        "the scale is inf",
    )
    open_with(
        "blk.1.attn_norm.weight",
        _i2s(np.zeros((1, 64), np.int8), packing="arm"),
        "'blk.1.attn_norm.weight' is not a vector of 64",
    )
    norm = TensorData(np.zeros(64 // 4 + 32, np.uint8), (64,), I2S_TYPE_ID)
    open_with("blk.1.attn_norm.weight", norm, "'blk.1.attn_norm.weight' is i2_s, expected f32")
    embd = np.zeros((weights.config.n_vocab, weights.config.n_embd), np.int8)
    open_with("token_embd.weight", _i2s(embd), "token_embd.weight is i2_s: embeddings must be")


def test_packing_needs_its_shapes(make_model_module: ModelFactory, tmp_path: Path) -> None:
    """97 rows of 64: 6208 weights fill no whole 128-block and no group of 4 rows, but
    whole 64-blocks, so only the ARM packing reads this model."""
    weights, bt2_path = make_model_module("bitnet-b1.58", head_type="f16", n_ff=97)
    assert weights.layers[0].proj["ffn_gate"].values.shape == (97, 64)
    arm = write_i2s_model(tmp_path / "arm.gguf", weights, packing="arm")
    for index, match in (
        (0, "6208 weights are not a multiple of 128, as the x86 packing needs"),
        (2, "97 rows are not a multiple of 4, as the x86-1x4 packing needs"),
    ):
        _open_fails(arm, f"'blk.0.ffn_gate.weight' \\(i2_s\\): {match}", i2s_packing=index)
    assert np.array_equal(_logits(arm, i2s_packing=1), _logits(bt2_path))


def test_unknown_packing_option(fixture: tuple[Weights, Path]) -> None:
    _, path = fixture
    _open_fails(path, "unknown i2s_packing 7", i2s_packing=7)


def test_i2s_from_a_bitllm_file(fixture: tuple[Weights, Path], tmp_path: Path) -> None:
    """The rewriter used for the 2B-4T-shaped measurements keeps the weights."""
    from .i2s_writer import i2s_from_gguf

    _, bt2_path = fixture
    path = i2s_from_gguf(bt2_path, tmp_path / "rewritten.gguf", "bitnet-25")
    with GGUFFile(path) as gguf:
        assert not any(k.startswith("bitllm.") for k in gguf.metadata)
        assert gguf.tensors["blk.0.attn_q.weight"].type_name == "i2_s"
    assert np.array_equal(_logits(path), _logits(bt2_path))


# ---- the product: bitllm.Model, bit-run, bit-bench ----------------------------------------


@pytest.fixture(scope="module")
def tiny_2b4t(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(bitllm's bt2 file, the same weights as bitnet.cpp's ARM-packed I2_S file), with the
    Llama-3 tokenizer."""
    from tests.runtime.tiny_model import cached_model

    from .i2s_writer import i2s_from_gguf

    folder = tmp_path_factory.mktemp("tiny-2b4t")
    bt2 = cached_model(folder, "bitnet-b1.58")
    return bt2, i2s_from_gguf(bt2, folder / "i2s-arm.gguf", "bitnet-25", "arm")


def _bit(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", f"bitllm.runtime.{tool}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_model_and_bit_run_take_the_packing(tiny_2b4t: tuple[Path, Path]) -> None:
    import bitllm

    bt2, i2s = tiny_2b4t
    with bitllm.Model(bt2, n_ctx=64) as m:
        want = m.generate("The cat", max_tokens=8, temperature=0)
    with bitllm.Model(i2s, n_ctx=64, i2s_packing="arm") as m:
        assert m.generate("The cat", max_tokens=8, temperature=0) == want
        assert m.tensor_types["blk.0.attn_q.weight"] == "i2_s"
    with pytest.raises(ValueError, match="i2s_packing must be one of 'x86', 'arm', 'x86-1x4'"):
        bitllm.Model(i2s, i2s_packing="neon")
    run = ["-m", str(i2s), "-p", "The cat", "-n", "8", "--temp", "0", "--no-display-prompt"]
    result = _bit("cli", *run, "--i2s-packing", "arm")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(want).strip()


def test_bit_bench_takes_the_packing(tiny_2b4t: tuple[Path, Path]) -> None:
    _, i2s = tiny_2b4t
    args = ["-m", str(i2s), "-p", "8", "-n", "2", "-t", "1", "-r", "1", "-o", "json"]
    result = _bit("bench", *args, "--i2s-packing", "arm")
    assert result.returncode == 0, result.stderr
    result = _bit("bench", *args, "--i2s-packing", "neon")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "--i2s-packing" in result.stderr
