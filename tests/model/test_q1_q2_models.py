"""Bonsai-style qwen3 files: every projection in llama.cpp's Q1_0, Q2_0 (groups of 64) or
PrismML's older group-128 Q2_0 packing under the same id, written with bitllm's own quantizer
through gguf-py, with a scale per group that varies along each row, run against the float
reference of tests/model/reference.py. The loader tells the two Q2_0 packings apart by a
tensor's byte size, and says so in one line when a size fits neither."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bitllm.runtime import tensor_types
from bitllm.runtime.gguf_reader import GGUFError, GGUFFile

from . import reference
from .builder import (
    Projection,
    TensorData,
    config_for,
    gguf_metadata,
    gguf_tensors,
    random_weights,
    write_gguf,
    write_model,
)
from .capi import NativeModel

# 128 wide everywhere, so that every projection fills whole q1_0 / g128 blocks
SHAPE = {"n_embd": 128, "n_head": 4, "n_head_kv": 2, "key_length": 32, "n_ff": 256}
EPS = {"rms_eps": 1e-2}


def _group_scaled(rng: np.random.Generator, name: str, shape: tuple[int, int]) -> np.ndarray:
    """Signs (q1_0) or trits (q2_0) times an f16 scale per group, varying group to group."""
    rows, cols = shape
    group = tensor_types.tensor_type(name).block_weights
    base = rng.uniform(0.5, 1.5) / np.sqrt(cols)
    scales = (base * rng.uniform(0.3, 3.0, (rows, cols // group))).astype(np.float16)
    if name == "q1_0":
        values = rng.choice(np.array([-1.0, 1.0]), (rows, cols))
    else:
        values = rng.integers(-1, 2, (rows, cols)).astype(np.float64)
    return (values * np.repeat(scales.astype(np.float64), group, axis=1)).astype(np.float32)


def _bonsai_model(tmp_path: Path, name: str, head_type: str = "f32"):
    c = config_for("qwen3", weight_type=name, head_type=head_type, **SHAPE, **EPS)
    w = random_weights(c, seed=5)
    rng = np.random.default_rng(6)
    for layer in w.layers:
        for key, p in layer.proj.items():
            dense = _group_scaled(rng, name, p.values.shape)
            # float "values" with a unit row scale: the reference multiplies them as they are
            layer.proj[key] = Projection(dense, np.ones(len(dense), np.float32))
    return w, write_model(tmp_path / f"{name}-{head_type}.gguf", w)


def _relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(got - expected).max() / np.abs(expected).max())


@pytest.mark.parametrize("name", ["q1_0", "q2_0", "q2_0_g128"])
def test_bonsai_style_qwen3_matches_the_float_reference(name: str, tmp_path: Path) -> None:
    weights, path = _bonsai_model(tmp_path, name)
    layout = GGUFFile(path).tensors["blk.0.ffn_down.weight"]
    assert (layout.type_id, layout.type_name) == (tensor_types.tensor_type(name).gguf_type, name)
    tokens = [int(t) for t in np.random.default_rng(7).integers(0, 80, 24)]
    got = NativeModel(path, threads=2).context(32).eval(tokens)
    expected = reference.forward(weights, tokens, act_bits=0)
    # the only rounding: activations to int8 per block of 32 (the weights are exact)
    assert _relative_error(got, expected) < 3e-2
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.9


def test_a_q1_0_embedding_and_tied_head(tmp_path: Path) -> None:
    """llama.cpp's Q1_0 mix stores token_embd in q1_0 too; the tied head reads it."""
    weights, path = _bonsai_model(tmp_path, "q1_0", head_type="q1_0")
    tokens = [int(t) for t in np.random.default_rng(8).integers(0, 80, 16)]
    got = NativeModel(path).context(32).eval(tokens)
    expected = reference.forward(weights, tokens, act_bits=0)
    assert _relative_error(got, expected) < 3e-2


def _q2_0_tensors(n_rows: list[int], name: str) -> dict[str, TensorData]:
    rng = np.random.default_rng(9)
    t = tensor_types.tensor_type(name)
    return {
        f"t{i}": TensorData(
            tensor_types.quantize(name, rng.standard_normal((rows, 128)).astype(np.float32)),
            (rows, 128),
            t.gguf_type,
        )
        for i, rows in enumerate(n_rows)
    }


@pytest.mark.parametrize("name", ["q2_0", "q2_0_g128"])
def test_sizes_too_close_to_tell_apart_follow_the_rest_of_the_file(
    name: str, tmp_path: Path
) -> None:
    # One row of 128: 36 bytes in groups of 64, 34 in groups of 128, both padded to 64.
    path = write_gguf(tmp_path / "mixed.gguf", "llama", {}, _q2_0_tensors([1, 40, 1], name))
    assert {t.type_name for t in GGUFFile(path).tensors.values()} == {name}
    alone = write_gguf(tmp_path / "alone.gguf", "llama", {}, _q2_0_tensors([1], name))
    assert GGUFFile(alone).tensors["t0"].type_name == "q2_0"  # llama.cpp's own layout


def test_a_size_that_fits_neither_packing_is_one_clear_error(tmp_path: Path) -> None:
    c = config_for("qwen3", weight_type="q2_0", **SHAPE)
    tensors = gguf_tensors(random_weights(c))
    down = tensors["blk.0.ffn_down.weight"]
    tensors["blk.0.ffn_down.weight"] = replace(down, data=down.data[:-96])
    path = write_gguf(tmp_path / "bad.gguf", "qwen3", gguf_metadata(c), tensors)
    g64, g128 = (tensor_types.tensor_type(n).tensor_bytes(128, 256) for n in ("q2_0", "q2_0_g128"))
    message = (
        rf"tensor 'blk\.0\.ffn_down\.weight' \(GGUF type id 42\): the {g64 - 96} bytes it has "
        rf"before the next tensor fit neither q2_0 \({g64} bytes\) nor q2_0_g128 \({g128} bytes\)$"
    )
    with pytest.raises(GGUFError, match=message):
        GGUFFile(path)
    with pytest.raises(ValueError, match=message):
        NativeModel(path)


@pytest.mark.parametrize("name", ["q1_0", "q2_0_g128"])
def test_the_cuda_device_refuses_these_weights_when_it_is_chosen(name: str, tmp_path: Path) -> None:
    # llama, not qwen3: the cuda device refuses qwen3's per-head norms before any weight
    c = config_for("llama", weight_type=name, **SHAPE)
    path = write_model(tmp_path / f"llama-{name}.gguf", random_weights(c))
    with pytest.raises(ValueError, match=rf"^cuda: {name} weights run on the cpu device only"):
        NativeModel(path, device="cuda")
    NativeModel(path)  # the cpu device runs them
