"""Bad input: one line naming the file or tensor, a non-zero exit, no traceback, nothing
written and nothing of the user's overwritten."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from bitllm.convert.cli import main
from tests.fixtures.plugin import Factory


def copy(checkpoint_factory: Factory, family: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(checkpoint_factory(family), tmp_path / family))


def edit_tensors(folder: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> None:
    path = folder / "model.safetensors"
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))


def edit_config(folder: Path, **changes: object) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def shard(folder: Path) -> Path:
    """Splits model.safetensors into two shards with an index, as large checkpoints come."""
    tensors = load_file(str(folder / "model.safetensors"))
    names = sorted(tensors)
    files = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    halves = [names[: len(names) // 2], names[len(names) // 2 :]]
    weight_map = {}
    for file, part in zip(files, halves, strict=True):
        save_file({n: tensors[n] for n in part}, str(folder / file))
        weight_map.update(dict.fromkeys(part, file))
    (folder / "model.safetensors").unlink()
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return index


def convert_fails(capsys: pytest.CaptureFixture, src: Path, out: Path, *extra: str) -> str:
    """Runs bit-convert, expects the one-line failure and returns it."""
    before = sorted(out.parent.iterdir()) if out.parent.is_dir() else None
    code = main([str(src), "-o", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bit-convert: error: "), err
    assert "Traceback" not in err
    if before is not None:
        assert sorted(out.parent.iterdir()) == before, "the failed run left files behind"
    return lines[0]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder / "model.gguf"


def test_missing_config(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    src = copy(checkpoint_factory, "onebit", tmp_path)
    (src / "config.json").unlink()
    assert "config.json" in convert_fails(capsys, src, out)


def test_missing_tokenizer(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    src = copy(checkpoint_factory, "onebit", tmp_path)
    for name in ("tokenizer.model", "tokenizer.json"):
        (src / name).unlink()
    message = convert_fails(capsys, src, out)
    assert "no tokenizer" in message and str(src) in message


def test_unknown_architecture(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    src = copy(checkpoint_factory, "onebit", tmp_path)
    edit_config(src, architectures=["GPT2LMHeadModel"], model_type="gpt2")
    message = convert_fails(capsys, src, out)
    assert "unknown checkpoint family" in message and "GPT2LMHeadModel" in message
    for family in ("1bitllm", "bitnet-2b4t", "bitnet-2b4t-bf16", "hf-bitnet", "onebit"):
        assert family in message
    assert "unpacked-ternary" in message and "Falcon-E" in message and "TriLM" in message


def test_float_llama_is_refused_by_its_weights(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    """A LlamaForCausalLM without quantization_config has TriLM's config; its first
    projection, not ternary x one scale per row, refuses it before anything is written."""
    src = copy(checkpoint_factory, "llama-float", tmp_path)
    message = convert_fails(capsys, src, out)
    assert "model.layers.0.self_attn.q_proj.weight" in message and "row 0" in message
    assert "a float model is not converted" in message and "unpacked-ternary" in message
    assert not out.exists()


def test_truncated_safetensors(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    src = copy(checkpoint_factory, "onebit", tmp_path)
    path = src / "model.safetensors"
    os.truncate(path, path.stat().st_size - 1000)
    message = convert_fails(capsys, src, out)
    assert "truncated" in message and "model.safetensors" in message


def test_corrupt_safetensors_header(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    src = copy(checkpoint_factory, "onebit", tmp_path)
    path = src / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[8:40] = b"\xff" * 32
    path.write_bytes(bytes(data))
    message = convert_fails(capsys, src, out)
    assert "corrupt" in message and "model.safetensors" in message


def test_sharded_checkpoint_converts_like_one_file(
    checkpoint_factory: Factory, converted_gguf: Factory, tmp_path: Path, out: Path
) -> None:
    from bitllm.runtime.gguf_reader import GGUFFile

    index = shard(copy(checkpoint_factory, "onebit", tmp_path))
    assert main([str(index), "-o", str(out)]) == 0
    with GGUFFile(out) as sharded, GGUFFile(converted_gguf("onebit")) as single:
        assert list(sharded.tensors) == list(single.tensors)
        for name in single.tensors:
            assert bytes(sharded.tensor_bytes(name)) == bytes(single.tensor_bytes(name)), name


def test_shard_missing(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    index = shard(copy(checkpoint_factory, "onebit", tmp_path))
    (index.parent / "model-00002-of-00002.safetensors").unlink()
    for src in (index, index.parent):
        message = convert_fails(capsys, src, out)
        assert "model-00002-of-00002.safetensors" in message and "absent" in message


def test_shape_disagrees_with_config(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    src = copy(checkpoint_factory, "bitnet-2b4t", tmp_path)
    edit_config(src, intermediate_size=192)
    message = convert_fails(capsys, src, out)
    assert "model.layers.0.mlp.gate_proj.weight" in message and "config" in message


def test_more_layers_in_config_than_in_file(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    src = copy(checkpoint_factory, "1bitllm", tmp_path)
    edit_config(src, num_hidden_layers=3)
    assert "missing tensor 'model.layers.2." in convert_fails(capsys, src, out)


def test_fewer_layers_in_config_than_in_file(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    src = copy(checkpoint_factory, "1bitllm", tmp_path)
    edit_config(src, num_hidden_layers=1)
    assert "unexpected tensor 'model.layers.1." in convert_fails(capsys, src, out)


def test_nan_weights(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    src = copy(checkpoint_factory, "1bitllm", tmp_path)
    name = "model.layers.1.mlp.up_proj.weight"
    edit_tensors(src, lambda t: t[name].view(-1).__setitem__(5, float("nan")))
    message = convert_fails(capsys, src, out)
    assert name in message and "NaN" in message


def test_inf_in_a_norm(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    src = copy(checkpoint_factory, "onebit", tmp_path)
    name = "model.norm.weight"
    edit_tensors(src, lambda t: t[name].__setitem__(3, float("inf")))
    assert name in convert_fails(capsys, src, out)


def test_packed_code_3(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    src = copy(checkpoint_factory, "bitnet-2b4t", tmp_path)
    name = "model.layers.1.self_attn.v_proj.weight"
    edit_tensors(src, lambda t: t[name].__setitem__((2, 7), 0b00110001))
    message = convert_fails(capsys, src, out)
    assert name in message and "invalid code 3" in message


def test_onebit_without_input_factor(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    src = copy(checkpoint_factory, "onebit", tmp_path)
    name = "model.layers.0.mlp.down_proj.input_factor"
    edit_tensors(src, lambda t: t.pop(name))
    message = convert_fails(capsys, src, out)
    assert name in message and "input_factor" in message


def test_family_override_that_does_not_fit(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    src = checkpoint_factory("bitnet-2b4t-bf16")
    message = convert_fails(capsys, src, out, "--family", "bitnet-2b4t")
    assert "model.layers.0.self_attn.q_proj.weight" in message


def test_output_folder_missing(
    checkpoint_factory: Factory, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "nowhere" / "model.gguf"
    message = convert_fails(capsys, checkpoint_factory("onebit"), out)
    assert "does not exist" in message and "nowhere" in message
    assert not out.parent.exists()


def test_output_not_writable(
    checkpoint_factory: Factory, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    if os.geteuid() == 0:
        out = Path("/sys/bitllm-convert-test.gguf")  # even root cannot create files in sysfs
    else:
        folder = tmp_path / "readonly"
        folder.mkdir(mode=0o555)
        out = folder / "model.gguf"
    message = convert_fails(capsys, checkpoint_factory("onebit"), out)
    assert str(out.parent) in message and ("writ" in message or "cannot" in message)
    assert not out.exists()


def test_existing_output_is_kept(
    checkpoint_factory: Factory, out: Path, capsys: pytest.CaptureFixture
) -> None:
    out.write_bytes(b"the user's file")
    message = convert_fails(capsys, checkpoint_factory("onebit"), out)
    assert "already exists" in message and "--force" in message
    assert out.read_bytes() == b"the user's file"


def test_failure_while_writing_keeps_an_existing_output(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    src = copy(checkpoint_factory, "onebit", tmp_path)
    name = "model.layers.1.mlp.gate_proj.weight_scale"
    edit_tensors(src, lambda t: t[name].__setitem__(0, float("nan")))
    out.write_bytes(b"the user's file")
    assert name in convert_fails(capsys, src, out, "--force")
    assert out.read_bytes() == b"the user's file"


def test_force_replaces(checkpoint_factory: Factory, out: Path) -> None:
    out.write_bytes(b"old")
    assert main([str(checkpoint_factory("onebit")), "-o", str(out), "--force"]) == 0
    assert out.read_bytes()[:4] == b"GGUF"
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]


def test_a_real_process_exits_non_zero_without_traceback(
    checkpoint_factory: Factory, tmp_path: Path, out: Path
) -> None:
    src = copy(checkpoint_factory, "onebit", tmp_path)
    (src / "config.json").unlink()
    result = subprocess.run(
        [sys.executable, "-m", "bitllm.convert.cli", str(src), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "config.json" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_unsupported_rope_scaling(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    src = copy(checkpoint_factory, "onebit", tmp_path)
    edit_config(src, rope_scaling={"rope_type": "llama3", "factor": 8.0})
    message = convert_fails(capsys, src, out)
    assert "config.json" in message and "llama3" in message


def test_tiktoken_tokenizer_model_next_to_tokenizer_json(
    checkpoint_factory: Factory, tmp_path: Path, out: Path
) -> None:
    """Llama-3 repositories may ship a tiktoken tokenizer.model: tokenizer.json is used."""
    src = copy(checkpoint_factory, "hf-bitnet", tmp_path)
    (src / "tokenizer.model").write_text("IQ== 0\nIg== 1\n")
    assert main([str(src), "-o", str(out)]) == 0


def test_unpacked_rows_with_two_magnitudes_are_refused_as_written(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    """TriLM-style shards of columns give o_proj rows two magnitudes: no type with one scale
    per row holds them; the error names the tensor and row and leaves nothing behind."""
    src = copy(checkpoint_factory, "trilm-column-shards", tmp_path)
    message = convert_fails(capsys, src, out)
    assert "'model.layers.0.self_attn.o_proj.weight': row 0 holds 2 different" in message
    assert "--outtype tq2_0" in message


def test_float_qwen3_and_bonsai_in_a_row_scaled_type_are_refused(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    src = copy(checkpoint_factory, "qwen3-float", tmp_path)
    message = convert_fails(capsys, src, out, "--outtype", "f16")
    assert "model.layers.0.self_attn.q_proj.weight" in message and "row 0" in message
    assert "a float model is not converted" in message and "Bonsai" in message
    message = convert_fails(capsys, src, out)  # the defaults: no group type holds it
    assert "row 0, columns 0 to 63 holds" in message and "a float model is not converted" in message
    src = copy(checkpoint_factory, "bonsai", tmp_path)
    message = convert_fails(capsys, src, out, "--outtype", "bt2")  # a scale per row
    assert "--outtype bt2: bonsai weights have a scale per group" in message
    assert "f16 or f32" in message


def test_group_types_refuse_what_they_do_not_hold(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    src = copy(checkpoint_factory, "ternary-bonsai", tmp_path)
    message = convert_fails(capsys, src, out, "--outtype", "q1_0")
    assert "'model.layers.0.self_attn.q_proj.weight': row 0, columns 0 to 127" in message
    assert "use q2_0" in message
    src = copy(checkpoint_factory, "1bitllm", tmp_path)
    message = convert_fails(capsys, src, out, "--outtype", "q2_0")
    assert "--outtype q2_0: for checkpoints whose float weights already are" in message
    message = convert_fails(capsys, src, out, "--head-type", "q1_0")
    assert "--head-type q1_0: for checkpoints whose embedding already is sign or trit" in message
    assert "1bitllm" in message


MISSHAPEN = {
    "flat": lambda t: t.reshape(-1),
    "no rows": lambda t: t[:0],
    "three axes": lambda t: t.reshape(2, -1, t.shape[-1]),
}


@pytest.mark.parametrize(
    "tensor", ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight"]
)
@pytest.mark.parametrize("how", sorted(MISSHAPEN))
def test_bonsai_defaults_read_misshapen_tensors_as_errors(
    tensor: str,
    how: str,
    checkpoint_factory: Factory,
    tmp_path: Path,
    out: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    """The group-scaled defaults read the first projection and the embedding before the
    planner checks their shapes; a misshapen one is still the planner's one-line error."""
    src = copy(checkpoint_factory, "bonsai", tmp_path)
    weights = load_file(src / "model.safetensors")
    weights[tensor] = MISSHAPEN[how](weights[tensor]).contiguous()
    save_file(weights, src / "model.safetensors")
    message = convert_fails(capsys, src, out)
    assert f"tensor {tensor!r} has shape" in message and "the config implies" in message


def test_a_group_head_type_that_would_round_the_embedding_is_refused(
    checkpoint_factory: Factory, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture
) -> None:
    """Signs cannot hold a trit embedding: a q1_0 head would lose most of it (KL divergence
    4 against the exact head on the fixture), so it is refused, naming the type that fits."""
    src = copy(checkpoint_factory, "ternary-bonsai", tmp_path)
    message = convert_fails(capsys, src, out, "--outtype", "q2_0", "--head-type", "q1_0")
    assert "--head-type q1_0: tensor 'model.embed_tokens.weight' rows 0 to" in message
    assert "not sign x one scale per 128 columns; use q2_0_g128" in message
    assert not out.exists()
