"""bit-convert's --dry-run and bit-inspect, on our files and on files with types we do not know."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFWriter

from bitllm.convert.cli import main as convert_main
from bitllm.convert.inspect_cli import main as inspect_main
from tests.fixtures.checkpoints import BLOCK_ALIGNED, TINY
from tests.fixtures.plugin import Factory

BITNET_CPP_I2_S = 36  # bitnet.cpp's I2_S, which bitllm loads (repacked to bt2)
BITNET_CPP_TL1 = 38  # a type id llama.cpp reads differently: shown as unknown, not refused


def test_dry_run_prints_every_tensor_and_writes_nothing(
    checkpoint_factory: Factory, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "model.gguf"
    assert convert_main([str(checkpoint_factory("bitnet-2b4t")), "-o", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert "bitnet-2b4t" in text and "bitnet-b1.58" in text
    rows = [line for line in text.splitlines() if line.startswith("model.")]
    assert len(rows) == 1 + TINY.layers * (7 + 4) + 1  # embedding, per layer 7 linear 4 norms
    q = next(r for r in rows if r.startswith("model.layers.0.self_attn.q_proj.weight"))
    assert "(+weight_scale)" in q and "U8 [16, 64]" in q and "blk.0.attn_q.weight" in q
    assert "bt2" in q and "[64, 64]" in q
    assert "total: 24 tensors" in text


def test_dry_run_needs_no_output(
    checkpoint_factory: Factory, capsys: pytest.CaptureFixture
) -> None:
    assert convert_main([str(checkpoint_factory("onebit")), "--dry-run", "--outtype", "bt1"]) == 0
    text = capsys.readouterr().out
    assert "bs1" in text and "in_scale" in text


def test_llama_cli_spellings(capsys: pytest.CaptureFixture) -> None:
    for main, name in ((convert_main, "bit-convert"), (inspect_main, "bit-inspect")):
        with pytest.raises(SystemExit) as exit_:
            main(["--version"])
        assert exit_.value.code == 0 and capsys.readouterr().out.startswith(f"{name} ")
    with pytest.raises(SystemExit) as exit_:
        convert_main(["ckpt", "--out", "x.gguf"])  # no abbreviations of --outtype/--output
    assert exit_.value.code == 2


def test_inspect_our_file(converted_gguf: Factory, capsys: pytest.CaptureFixture) -> None:
    assert inspect_main([str(converted_gguf("bitnet-2b4t"))]) == 0
    text = capsys.readouterr().out
    assert "general.architecture" in text and "'bitnet-b1.58'" in text
    assert "(128256 items)" in text
    row = next(line for line in text.splitlines() if line.startswith("blk.0.ffn_down.weight"))
    assert row.split()[1:3] == ["bt2", "[64,"]


@pytest.mark.parametrize("outtype", ["tq2_0", "tq1_0"])
def test_inspect_llama_cpp_ternary_export(
    outtype: str, converted_gguf: Factory, capsys: pytest.CaptureFixture
) -> None:
    path = converted_gguf("1bitllm", outtype, "q8_0", BLOCK_ALIGNED)
    assert inspect_main([str(path)]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("blk.0.ffn_down.weight"))
    blocks = BLOCK_ALIGNED.hidden * BLOCK_ALIGNED.ffn // 256
    assert row.split()[1:3] == [outtype, f"[{BLOCK_ALIGNED.hidden},"]
    assert row.split()[-1] == str(blocks * (66 if outtype == "tq2_0" else 54))
    assert "tensors of known types" in text


def test_inspect_shows_unknown_types(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "bitnet-cpp.gguf"
    writer = GGUFWriter(path, "bitnet-b1.58")
    writer.add_tensor_info(
        "blk.0.attn_q.weight", (64, 64), np.dtype(np.int8), 1056, raw_dtype=BITNET_CPP_I2_S
    )
    writer.add_tensor_info(
        "blk.0.attn_k.weight", (64, 64), np.dtype(np.int8), 512, raw_dtype=BITNET_CPP_TL1
    )
    writer.add_tensor("output_norm.weight", np.ones(64, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.write_padding(writer.fout[0], writer.fout[0].tell())
    writer.write_tensor_data(np.zeros(1056, dtype=np.uint8))
    writer.write_tensor_data(np.zeros(512, dtype=np.uint8))
    writer.write_tensor_data(np.ones(64, dtype=np.float32))
    writer.close()
    assert inspect_main([str(path)]) == 0
    text = capsys.readouterr().out
    assert "unknown type 38" in text and "f32" in text
    i2s = next(line for line in text.splitlines() if line.startswith("blk.0.attn_q.weight"))
    assert i2s.split()[1] == "i2_s" and i2s.split()[-1] == "1056"  # 64 * 64 / 4 + 32


def test_inspect_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 20)
    result = subprocess.run(
        [sys.executable, "-m", "bitllm.convert.inspect_cli", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("bit-inspect: error: ") and str(path) in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
