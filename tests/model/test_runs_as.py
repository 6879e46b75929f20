"""Types an ISA runs as another (`runs_as` in kernels/<isa>/register.c): bt1 projections
on AVX2 (and AVX-VNNI, which keeps AVX2's bt1 kernels) repack to bt2 as the model opens.
The repack is exact: the bt1 file gives the bt2 file's logits bit for bit on that ISA, the
model reports the bytes it converted, and ISAs with their own bt1 kernels keep bt1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bitllm import kernels

from .builder import Config, Weights, _projection_shapes, config_for, random_weights, write_model
from .capi import NativeModel

EPS = {"rms_eps": 1e-2, "post_layernorm_eps": 1e-2}
RUNS_BT1_AS_BT2 = {"avx2", "avx_vnni"}


def _bt2_bytes_of_projections(config: Config) -> int:
    """What bt2 takes for every projection: 64 bytes per 256 columns and a row scale."""
    rows_cols = _projection_shapes(config).values()
    per_layer = sum(rows * (-(-cols // 256) * 64 + 4) for rows, cols in rows_cols)
    return per_layer * config.n_layer


@pytest.fixture(scope="module")
def bt1_and_bt2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Weights, Path, Path]:
    """One model as bt1 and as bt2: n_ff 200, a width bt1 pads to 320 and bt2 to 256 (so
    the repack re-pads every row), and a scale per row (the builder's are per tensor), so
    that a row given another's scale changes the logits."""
    folder = tmp_path_factory.mktemp("runs_as")
    rng = np.random.default_rng(5)
    paths = []
    for weight_type in ("bt1", "bt2"):
        weights = random_weights(config_for("bitnet", weight_type=weight_type, n_ff=200, **EPS))
        for layer in weights.layers:
            for p in layer.proj.values():
                p.row_scale = (p.row_scale * rng.uniform(0.5, 1.5, p.row_scale.size)).astype(
                    np.float32
                )
        rng = np.random.default_rng(5)  # the same row scales for both files
        paths.append(write_model(folder / f"{weight_type}.gguf", weights))
    return weights, paths[0], paths[1]


@pytest.mark.parametrize("isa", kernels.isas())
def test_bt1_runs_as_bt2_where_the_isa_says_so(
    isa: str, bt1_and_bt2: tuple[Weights, Path, Path]
) -> None:
    weights, bt1_path, bt2_path = bt1_and_bt2
    tokens = list(np.random.default_rng(3).integers(0, weights.config.n_vocab, 12))
    bt1 = NativeModel(bt1_path, isa=isa, threads=2)
    bt2 = NativeModel(bt2_path, isa=isa, threads=2)
    if isa in RUNS_BT1_AS_BT2:
        assert bt1.info["repacked_bytes"] == _bt2_bytes_of_projections(weights.config)
    else:
        assert bt1.info["repacked_bytes"] == 0
    assert bt2.info["repacked_bytes"] == 0
    # repacked: the same kernels on the same codes and scales; kept: bt1's own kernels,
    # whose integer sums are bt2's
    np.testing.assert_array_equal(bt1.context(32).eval(tokens), bt2.context(32).eval(tokens))
