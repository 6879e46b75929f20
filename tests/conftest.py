"""Shared test fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261123)


@pytest.fixture
def torch_eager() -> Iterator[ModuleType]:
    """torch with compilation off for one test: transformers wraps its BitLinear code in
    torch.compile, whose fused mean lands 1 ulp off eager's, and compiling costs seconds.
    Not dynamo.config.disable, which still runs code an earlier test compiled; the stance
    is undone after the test."""
    torch = pytest.importorskip("torch")
    with torch.compiler.set_stance("force_eager"):
        yield torch


pytest_plugins = ["tests.fixtures.plugin"]  # checkpoint_factory, converted_gguf
