"""Random model files, written once per test session and shared."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .builder import Weights, config_for, random_weights, write_model

ModelFactory = Callable[..., tuple[Weights, Path]]


@pytest.fixture(scope="session")
def make_model(tmp_path_factory: pytest.TempPathFactory) -> ModelFactory:
    """make_model(arch, seed=0, **config overrides) -> (weights, path of its GGUF)."""
    made: dict[tuple[Any, ...], tuple[Weights, Path]] = {}

    def make(arch: str, seed: int = 0, **overrides: Any) -> tuple[Weights, Path]:
        key = (arch, seed, tuple(sorted(overrides.items())))
        if key not in made:
            weights = random_weights(config_for(arch, **overrides), seed)
            path = tmp_path_factory.mktemp("models") / f"{arch}-{len(made)}.gguf"
            made[key] = (weights, write_model(path, weights))
        return made[key]

    return make
