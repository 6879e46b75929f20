"""config.json: reading it, and checking every hyperparameter where it is read.

A config that bit-run would refuse (a zero head count, a negative epsilon, a context that
does not fit the GGUF's uint32) is refused here, with one line naming the field, so that
nothing fails later as a Python error or a written file that does not load. The bounds
are the native loader's (native/src/model/model.c), so every accepted config loads.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConvertError

MAX_SIZE = 1 << 26  # the loader's bound on widths, the vocabulary and the context
MAX_COUNT = 1 << 16  # the loader's bound on layers, heads and the head dimension
MAX_NORM_EPS = 1.0  # an RMSNorm epsilon this large would swamp the activations
MAX_FLOAT = 1e30  # the loader's bound on rope_theta and scale factors
DEFAULT_CONTEXT = 2048  # when max_position_embeddings is absent
DEFAULT_ROPE_THETA = 10000.0
DEFAULT_NORM_EPS = 1e-6
ACTIVATIONS = ("silu", "relu2")


@dataclass(frozen=True)
class Hyper:
    layers: int
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    context: int
    rope_theta: float
    rope_scaling: tuple[str, float] | None  # ("linear", factor)
    norm_eps: float
    tied: bool
    activation: str  # "silu" or "relu2"
    name: str


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        raise ConvertError(f"{folder}: no config.json")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConvertError(f"{path}: cannot read: {e}") from None
    if not isinstance(config, dict):
        raise ConvertError(f"{path}: not a JSON object")
    return config


class _Fields:
    """Typed, range-checked access to one config.json's fields."""

    def __init__(self, config: dict[str, Any], path: Path) -> None:
        self.config = config
        self.path = path

    def fail(self, key: str, value: Any, wanted: str) -> ConvertError:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        return ConvertError(f"{self.path}: {key} is {shown}; expected {wanted}")

    def integer(self, key: str, low: int, high: int, default: int | None = None) -> int:
        """An integer in [low, high]; default when absent or null (None: required)."""
        value = self.config.get(key)
        if value is None and default is not None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(key, value, f"an integer from {low} to {high}")
        return value

    def number(self, key: str, value: Any, high: float) -> float:
        """A finite number in (0, high] that stays positive as a GGUF float32."""
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or not 0 < value <= high:
            raise self.fail(key, value, f"a number above 0 and at most {high:g}")
        if np.float32(value) == 0:
            raise self.fail(key, value, "a number that float32 can hold")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.config.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, value, "true or false")
        return value


def _first_given(*values: Any) -> Any:
    """The first value that is not None (absent and null mean the same in a config)."""
    return next(v for v in values if v is not None)


def _rope(fields: _Fields) -> tuple[float, tuple[str, float] | None]:
    """rope_theta and scaling from either config style (transformers 4 or 5)."""
    config = fields.config
    params = config.get("rope_parameters")
    if params is not None and not isinstance(params, dict):
        raise fields.fail("rope_parameters", params, "an object")
    params = params or {}
    theta = _first_given(config.get("rope_theta"), params.get("rope_theta"), DEFAULT_ROPE_THETA)
    theta = fields.number("rope_theta", theta, MAX_FLOAT)
    scaling = config.get("rope_scaling") or (params if params.get("rope_type") else None)
    if not scaling:
        return theta, None
    if not isinstance(scaling, dict):
        raise fields.fail("rope_scaling", scaling, "an object or null")
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "default":
        return theta, None
    if kind == "linear":
        factor = fields.number("rope_scaling.factor", scaling.get("factor"), MAX_FLOAT)
        return theta, ("linear", factor)
    raise ConvertError(f"{fields.path}: rope scaling {scaling!r} is not supported")


def _attention(fields: _Fields, hidden: int) -> tuple[int, int, int]:
    """(heads, kv_heads, head_dim): heads share KV heads evenly; the head dimension is even
    (RoPE rotates pairs) and, when not given, divides the hidden size."""
    heads = fields.integer("num_attention_heads", 1, MAX_COUNT)
    kv_heads = fields.integer("num_key_value_heads", 1, heads, default=heads)
    if heads % kv_heads:
        raise ConvertError(
            f"{fields.path}: num_attention_heads {heads} is not a multiple of "
            f"num_key_value_heads {kv_heads}"
        )
    if fields.config.get("head_dim") is None and hidden % heads:
        raise ConvertError(
            f"{fields.path}: hidden_size {hidden} is not a multiple of "
            f"num_attention_heads {heads} (and there is no head_dim)"
        )
    head_dim = fields.integer("head_dim", 2, MAX_COUNT, default=hidden // heads)
    if head_dim % 2:
        raise ConvertError(f"{fields.path}: head_dim {head_dim} is odd (RoPE rotates pairs)")
    return heads, kv_heads, head_dim


def read_hyper(config: dict, folder: Path) -> Hyper:
    fields = _Fields(config, folder / "config.json")
    hidden = fields.integer("hidden_size", 1, MAX_SIZE)
    heads, kv_heads, head_dim = _attention(fields, hidden)
    activation = _first_given(config.get("hidden_act"), "silu")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise fields.fail("hidden_act", activation, " or ".join(ACTIVATIONS))
    theta, scaling = _rope(fields)
    eps = _first_given(config.get("rms_norm_eps"), DEFAULT_NORM_EPS)
    eps = fields.number("rms_norm_eps", eps, MAX_NORM_EPS)
    return Hyper(
        layers=fields.integer("num_hidden_layers", 1, MAX_COUNT),
        hidden=hidden,
        ffn=fields.integer("intermediate_size", 1, MAX_SIZE),
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab=fields.integer("vocab_size", 1, MAX_SIZE),
        context=fields.integer("max_position_embeddings", 1, MAX_SIZE, default=DEFAULT_CONTEXT),
        rope_theta=theta,
        rope_scaling=scaling,
        norm_eps=eps,
        tied=fields.flag("tie_word_embeddings", False),
        activation=activation,
        name=folder.resolve().name,
    )
