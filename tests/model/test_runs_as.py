"""Types an ISA runs as another (`runs_as` in kernels/<isa>/register.c): bt1 projections
on AVX2 (and AVX-VNNI, which keeps AVX2's bt1 kernels) repack to bt2 as the model opens,
and there llama.cpp's tq1_0, which other ISAs repack to bt1, goes to bt2 directly. The
repacks are exact: each file gives the bt2 file's logits bit for bit on every ISA, the
model reports the bytes it converted, and ISAs with their own bt1 kernels keep bt1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bitllm import kernels

from .builder import Config, _projection_shapes, config_for, random_weights, write_model
from .capi import NativeModel

EPS = {"rms_eps": 1e-2, "post_layernorm_eps": 1e-2}
RUNS_BT1_AS_BT2 = {"avx2", "avx_vnni"}
BLOCK = {"bt2": (256, 64), "bt1": (320, 64)}  # weights and bytes per block


def _bytes_of_projections(config: Config, type_name: str) -> int:
    """What bt2 or bt1 takes for every projection: whole blocks and a row scale."""
    weights, nbytes = BLOCK[type_name]
    rows_cols = _projection_shapes(config).values()
    per_layer = sum(rows * (-(-cols // weights) * nbytes + 4) for rows, cols in rows_cols)
    return per_layer * config.n_layer


def _write(folder: Path, weight_type: str, **shape: int) -> tuple[Config, Path]:
    """A model whose projections have a scale per row (the builder's are per tensor, so a
    row given another's scale would go unseen), each an f16 value, so that tq1_0's f16
    block scales hold it exactly; the same trits and scales for every weight type."""
    weights = random_weights(config_for("bitnet", weight_type=weight_type, **shape, **EPS))
    rng = np.random.default_rng(5)
    for layer in weights.layers:
        for p in layer.proj.values():
            scale = p.row_scale * rng.uniform(0.5, 1.5, p.row_scale.size)
            p.row_scale = scale.astype(np.float16).astype(np.float32)
    return weights.config, write_model(folder / f"{weight_type}.gguf", weights)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Config, Path]]:
    """n_ff 200 for bt1 (a width bt1 pads to 320 and bt2 to 256, so the repack re-pads
    every row); tq1_0 needs rows of whole 256-blocks (n_embd 256, n_ff 512)."""
    odd, tq = tmp_path_factory.mktemp("bt1"), tmp_path_factory.mktemp("tq1_0")
    return {
        "bt1": _write(odd, "bt1", n_ff=200),
        "bt2 for bt1": _write(odd, "bt2", n_ff=200),
        "tq1_0": _write(tq, "tq1_0", n_embd=256, n_ff=512),
        "bt2 for tq1_0": _write(tq, "bt2", n_embd=256, n_ff=512),
    }


@pytest.mark.parametrize("isa", kernels.isas())
@pytest.mark.parametrize("source", ["bt1", "tq1_0"])
def test_ternary_files_run_as_the_isa_says(
    source: str, isa: str, files: dict[str, tuple[Config, Path]]
) -> None:
    config, path = files[source]
    bt2_path = files[f"bt2 for {source}"][1]
    model, bt2 = NativeModel(path, isa=isa, threads=2), NativeModel(bt2_path, isa=isa, threads=2)
    if isa in RUNS_BT1_AS_BT2:
        expected = _bytes_of_projections(config, "bt2")
    else:  # bt1 runs as itself; tq1_0 still becomes bt1 (llama.cpp's type is slower)
        expected = 0 if source == "bt1" else _bytes_of_projections(config, "bt1")
    assert model.info["repacked_bytes"] == expected
    assert bt2.info["repacked_bytes"] == 0
    # repacked: the same kernels on the same codes and scales; kept as bt1: bt1's own
    # kernels, whose integer sums are bt2's
    tokens = list(np.random.default_rng(3).integers(0, config.n_vocab, 12))
    np.testing.assert_array_equal(model.context(32).eval(tokens), bt2.context(32).eval(tokens))
