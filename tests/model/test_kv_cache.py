"""KV cache types through the whole forward pass: what a context keeps and reports, the
logits each type gives against the reference, and the invariance rules (prefill in one
batch and token-by-token decode give the same bits; so do all thread counts)."""

from __future__ import annotations

import numpy as np
import pytest

from . import reference
from .capi import CACHE_TYPES, NativeModel
from .conftest import ModelFactory

# head_dim 32: whole q8_0 blocks per head; GQA with 2 query heads per K/V head.
SHAPE = {"n_embd": 128, "n_head": 4, "n_head_kv": 2, "rms_eps": 1e-2, "post_layernorm_eps": 1e-2}
# Relative logit error against the reference with 16-bit activations: float rounding for
# f32, the rounding of the cached keys/values for the others.
TOLERANCE = {"f32": 1e-4, "f16": 2e-3, "q8_0": 3e-2}


def _tokens(n: int, n_vocab: int, seed: int) -> list[int]:
    return [int(t) for t in np.random.default_rng(seed).integers(0, n_vocab, n)]


def _relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(got - expected).max() / np.abs(expected).max())


def test_the_cpu_keeps_f16_by_default_and_every_type_on_request(make_model: ModelFactory) -> None:
    weights, path = make_model("bitnet-b1.58", **SHAPE)
    c = weights.config
    model = NativeModel(path)
    assert model.context(64).cache_types == ("f16", "f16")
    kv_dim = c.n_head_kv * c.n_embd // c.n_head
    row_bytes = {"f32": 4 * kv_dim, "f16": 2 * kv_dim, "q8_0": kv_dim // 32 * 34}
    for type_k in CACHE_TYPES:
        for type_v in CACHE_TYPES:
            ctx = model.context(64, type_k, type_v)
            assert ctx.cache_types == (type_k, type_v)
            per_position = row_bytes[type_k] + row_bytes[type_v]
            assert ctx.kv_bytes == c.n_layer * 64 * per_position


@pytest.mark.parametrize("cache_type", CACHE_TYPES)
def test_logits_against_the_reference(cache_type: str, make_model: ModelFactory) -> None:
    weights, path = make_model("bitnet-b1.58", n_layer=3, **SHAPE)
    tokens = _tokens(40, weights.config.n_vocab, seed=1)
    got = NativeModel(path, threads=2, act_bits=16).context(64, cache_type, cache_type)
    error = _relative_error(got.eval(tokens), reference.forward(weights, tokens, act_bits=16))
    assert error < TOLERANCE[cache_type]


def test_smaller_caches_round_more(make_model: ModelFactory) -> None:
    weights, path = make_model("bitnet-b1.58", n_layer=3, **SHAPE)
    tokens = _tokens(40, weights.config.n_vocab, seed=2)
    model = NativeModel(path, threads=2, act_bits=16)
    exact = reference.forward(weights, tokens, act_bits=16)
    errors = [_relative_error(model.context(64, t, t).eval(tokens), exact) for t in CACHE_TYPES]
    assert errors[0] < errors[1] < errors[2]


@pytest.mark.parametrize("cache_type", CACHE_TYPES)
@pytest.mark.parametrize("arch", ["bitnet-b1.58", "llama"])
def test_prefill_and_decode_give_the_same_bits(
    arch: str, cache_type: str, make_model: ModelFactory
) -> None:
    # 300 tokens: two forward batches and two attention chunks.
    weights, path = make_model(arch, n_ctx_train=512, **SHAPE)
    tokens = _tokens(300, weights.config.n_vocab, seed=3)
    model = NativeModel(path, threads=2)
    batched = model.context(320, cache_type, cache_type).eval(tokens)
    ctx = model.context(320, cache_type, cache_type)
    decoded = np.stack([ctx.eval([t], all_logits=False) for t in tokens])
    np.testing.assert_array_equal(decoded, batched)


@pytest.mark.parametrize("cache_type", CACHE_TYPES)
def test_thread_counts_give_the_same_bits(cache_type: str, make_model: ModelFactory) -> None:
    weights, path = make_model("bitnet-b1.58", n_ctx_train=512, **SHAPE)
    tokens = _tokens(270, weights.config.n_vocab, seed=4)
    one = NativeModel(path, threads=1).context(300, cache_type, cache_type).eval(tokens)
    for threads in (2, 3):
        got = NativeModel(path, threads=threads).context(300, cache_type, cache_type)
        np.testing.assert_array_equal(got.eval(tokens), one)


def test_q8_0_needs_whole_blocks_per_head(make_model: ModelFactory) -> None:
    _, path = make_model("bitnet-b1.58")  # head_dim 16
    model = NativeModel(path)
    with pytest.raises(ValueError, match="multiple of 32 dimensions; this model.s have 16"):
        model.context(32, "q8_0", "f16")
    assert model.context(32, "f16", "f32").cache_types == ("f16", "f32")
