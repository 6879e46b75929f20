"""llama.cpp's tq2_0 / tq1_0 weights in a model. A tensor whose rows each hold one scale in
every 256-block (what llama.cpp's quantizer writes for BitNet's absmean weights) is repacked to
bt2 / bt1 as the model opens (native/src/model/repack.c) and gives the very logits of the same
weights in a bt2 / bt1 file; one whose block scales differ runs in its own type."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from . import reference
from .builder import Weights, config_for, random_weights, write_model
from .capi import NativeModel

EPS = {"rms_eps": 1e-2, "post_layernorm_eps": 1e-2}
TOKENS = [int(t) for t in np.random.default_rng(5).integers(0, 64, 16)]


def _logits(path: Path) -> np.ndarray:
    return NativeModel(path, threads=2).context(32).eval(TOKENS)


def _with_type(w: Weights, weight_type: str) -> Weights:
    return dataclasses.replace(w, config=dataclasses.replace(w.config, weight_type=weight_type))


@pytest.mark.parametrize(
    ("arch", "tq", "own"), [("llama", "tq2_0", "bt2"), ("bitnet", "tq1_0", "bt1")]
)
def test_rows_of_one_scale_give_the_logits_of_our_own_type(
    arch: str, tq: str, own: str, tmp_path: Path
) -> None:
    w = random_weights(config_for(arch, weight_type=own, n_embd=256, n_ff=512, **EPS), seed=3)
    for layer in w.layers:  # tq's block scale is f16: the same scale, both files
        for p in layer.proj.values():
            p.row_scale = p.row_scale.astype(np.float16).astype(np.float32)
    own_logits = _logits(write_model(tmp_path / f"{own}.gguf", w))
    tq_logits = _logits(write_model(tmp_path / f"{tq}.gguf", _with_type(w, tq)))
    assert np.array_equal(tq_logits, own_logits)


@pytest.mark.parametrize("tq", ["tq2_0", "tq1_0"])
def test_blocks_of_differing_scales_run_in_their_own_type(tq: str, tmp_path: Path) -> None:
    """Every other 256-block of a row holds twice the weights: no row scale says that, so the
    tensor must not repack; its own kernels round activations per 32 (as q8_0 does), against
    float math on the same weights. A repack that ignored the block scales would be off by far
    more than that rounding."""
    c = config_for("llama", weight_type=tq, n_embd=512, n_head=4, n_head_kv=2, n_ff=1024, **EPS)
    w = random_weights(c, seed=4)
    for layer in w.layers:
        for p in layer.proj.values():
            cols = p.values.shape[1]
            factor = np.where(np.arange(cols) // 256 % 2, 2.0, 1.0).astype(np.float32)
            p.values = p.values * factor  # float values: the reference multiplies them out
    got = _logits(write_model(tmp_path / f"{tq}.gguf", w))
    expected = reference.forward(w, TOKENS, act_bits=0)
    error = float(np.abs(got - expected).max() / np.abs(expected).max())
    assert error < 3e-2


def test_a_tq_embedding_and_head_stay_tq(tmp_path: Path) -> None:
    """llama.cpp's pure tq files hold the embedding (tied: also the head) in the tq type: its
    rows are looked up, so it is never repacked to bt2, which has no rows of floats."""
    c = config_for("llama", weight_type="tq2_0", head_type="tq2_0", tied=True, n_embd=256, n_ff=512)
    w = random_weights(c, seed=6)
    got = _logits(write_model(tmp_path / "pure.gguf", w))
    expected = reference.forward(w, TOKENS, act_bits=0)
    assert float(np.abs(got - expected).max() / np.abs(expected).max()) < 3e-2
