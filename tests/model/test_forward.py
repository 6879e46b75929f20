"""The native forward pass of every architecture against the torch reference, and the
context's behaviour: batched prefill against token-by-token decode, rewinding, thread
counts, ISAs, long prompts, head and weight types."""

from __future__ import annotations

import numpy as np
import pytest

from bitllm import kernels

from . import reference
from .builder import ARCHS
from .capi import NativeModel
from .conftest import ModelFactory

# A large RMSNorm eps makes a wrong eps visible in the logits.
EPS = {"rms_eps": 1e-2, "post_layernorm_eps": 1e-2}


def _tokens(n: int, n_vocab: int, seed: int = 0) -> list[int]:
    return [int(t) for t in np.random.default_rng(seed).integers(0, n_vocab, n)]


def _relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(got - expected).max() / np.abs(expected).max())


@pytest.mark.parametrize("arch", ARCHS)
def test_logits_match_the_reference_with_16_bit_activations(
    arch: str, make_model: ModelFactory
) -> None:
    # 16-bit activations make the rounding of each activation almost irrelevant, so any
    # difference in the graph (norms, RoPE, GQA, scales, sub-norms) shows.
    weights, path = make_model(arch, n_layer=3, **EPS)
    tokens = _tokens(40, weights.config.n_vocab)
    got = NativeModel(path, threads=2, act_bits=16).context(64).eval(tokens)
    assert _relative_error(got, reference.forward(weights, tokens, act_bits=16)) < 1e-3


@pytest.mark.parametrize("arch", ARCHS)
def test_logits_track_the_reference_with_default_activations(
    arch: str, make_model: ModelFactory
) -> None:
    # With int8 activations, float32 summation order can move an activation across a
    # rounding boundary now and then, so the comparison is looser here.
    weights, path = make_model(arch, n_layer=3, **EPS)
    tokens = _tokens(40, weights.config.n_vocab, seed=1)
    got = NativeModel(path, threads=2).context(64).eval(tokens)
    expected = reference.forward(weights, tokens)
    assert _relative_error(got, expected) < 5e-2
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.9


def test_onebit_matches_the_float_reference(make_model: ModelFactory) -> None:
    weights, path = make_model("onebit", n_layer=3, **EPS)
    tokens = _tokens(40, weights.config.n_vocab, seed=2)
    got = NativeModel(path).context(64).eval(tokens)
    assert _relative_error(got, reference.forward(weights, tokens, act_bits=0)) < 1e-3
    int8 = NativeModel(path, act_bits=8).context(64).eval(tokens)
    assert not np.array_equal(int8, got)  # the override reaches the kernels
    assert _relative_error(int8, got) < 0.1


@pytest.mark.parametrize("arch", ARCHS)
def test_batched_prefill_equals_token_by_token_decode(arch: str, make_model: ModelFactory) -> None:
    weights, path = make_model(arch)
    tokens = _tokens(24, weights.config.n_vocab, seed=3)
    model = NativeModel(path, threads=2)
    batched = model.context(32).eval(tokens)
    ctx = model.context(32)
    decoded = np.stack([ctx.eval([t], all_logits=False) for t in tokens])
    assert ctx.n_past == len(tokens)
    scale = np.abs(batched).max()
    np.testing.assert_allclose(decoded, batched, rtol=0, atol=1e-5 * scale)
    last_only = model.context(32).eval(tokens, all_logits=False)
    np.testing.assert_array_equal(last_only, batched[-1])


def test_rewinding_reuses_the_prefix(make_model: ModelFactory) -> None:
    weights, path = make_model("bitnet-b1.58")
    model = NativeModel(path)
    first, second = _tokens(12, weights.config.n_vocab, 4), _tokens(5, weights.config.n_vocab, 5)
    ctx = model.context(32)
    ctx.eval(first)
    resumed = ctx.eval(second, pos=7)
    assert ctx.n_past == 12
    fresh = model.context(32)
    fresh.eval(first[:7])
    np.testing.assert_array_equal(resumed, fresh.eval(second))
    np.testing.assert_array_equal(ctx.eval(first[7:], pos=7), model.context(32).eval(first)[7:])


@pytest.mark.parametrize("arch", ARCHS)
def test_thread_count_does_not_change_results(arch: str, make_model: ModelFactory) -> None:
    weights, path = make_model(arch)
    tokens = _tokens(20, weights.config.n_vocab, seed=6)
    one = NativeModel(path, threads=1).context(32).eval(tokens)
    for threads in (2, 3):
        np.testing.assert_array_equal(
            NativeModel(path, threads=threads).context(32).eval(tokens), one
        )


@pytest.mark.parametrize("isa", kernels.isas()[1:])
@pytest.mark.parametrize("arch", ARCHS)
def test_isas_agree_with_scalar(arch: str, isa: str, make_model: ModelFactory) -> None:
    # Ternary/sign products are exact on every ISA; float heads may sum in another order.
    weights, path = make_model(arch)
    tokens = _tokens(20, weights.config.n_vocab, seed=7)
    scalar = NativeModel(path, isa="scalar").context(32).eval(tokens)
    simd = NativeModel(path, isa=isa).context(32).eval(tokens)
    np.testing.assert_allclose(simd, scalar, rtol=0, atol=1e-5 * np.abs(scalar).max())


def test_a_prompt_longer_than_one_batch(make_model: ModelFactory) -> None:
    weights, path = make_model("bitnet", n_ctx_train=512, **EPS)
    tokens = _tokens(300, weights.config.n_vocab, seed=8)
    model = NativeModel(path, threads=2, act_bits=16)
    ctx = model.context(0)
    assert ctx.n_ctx == 512
    got = ctx.eval(tokens)
    assert _relative_error(got, reference.forward(weights, tokens, act_bits=16)) < 1e-3
    last = model.context(320).eval(tokens, all_logits=False)
    np.testing.assert_array_equal(last, got[-1])


@pytest.mark.parametrize(
    ("head_type", "tied", "tolerance"),
    [
        ("f16", True, 1e-3),
        ("bf16", False, 1e-3),
        ("q8_0", True, 3e-2),
        ("q4_0", False, 3e-2),
    ],
)
def test_head_types(head_type: str, tied: bool, tolerance: float, make_model: ModelFactory) -> None:
    # q8_0/q4_0 heads also round their input to 8 bits per block of 32.
    weights, path = make_model("bitnet-b1.58", head_type=head_type, tied=tied, **EPS)
    tokens = _tokens(16, weights.config.n_vocab, seed=9)
    got = NativeModel(path, act_bits=16).context(32).eval(tokens)
    assert _relative_error(got, reference.forward(weights, tokens, act_bits=16)) < tolerance


@pytest.mark.parametrize(
    ("arch", "weight_type"),
    [("bitnet", "bt1"), ("llama", "bt1"), ("llama", "bs1"), ("llama", "f16")],
)
def test_weight_types(arch: str, weight_type: str, make_model: ModelFactory) -> None:
    weights, path = make_model(arch, weight_type=weight_type, **EPS)
    tokens = _tokens(16, weights.config.n_vocab, seed=10)
    got = NativeModel(path, act_bits=16).context(32).eval(tokens)
    if weight_type == "f16":  # float weights: no activation quantization at all
        expected = reference.forward(weights, tokens, act_bits=0)
    else:
        expected = reference.forward(weights, tokens, act_bits=16)
    assert _relative_error(got, expected) < 1e-3


@pytest.mark.parametrize(("arch", "weight_type"), [("llama", "tq2_0"), ("bitnet", "tq1_0")])
def test_llama_cpp_ternary_weight_types(
    arch: str, weight_type: str, make_model: ModelFactory
) -> None:
    """tq2_0 / tq1_0 (rows of whole 256-blocks) against float math on the same weights: their
    f16 block scales round the row scale (5e-4), and the product rounds its input to 8 bits
    (these rows of one scale repack to bt2 / bt1: per row; test_tq_models.py has the rest)."""
    weights, path = make_model(arch, weight_type=weight_type, n_embd=256, n_ff=512, **EPS)
    tokens = _tokens(16, weights.config.n_vocab, seed=12)
    got = NativeModel(path).context(32).eval(tokens)
    assert _relative_error(got, reference.forward(weights, tokens, act_bits=0)) < 3e-2


def test_odd_shapes_and_partial_blocks(make_model: ModelFactory) -> None:
    weights, path = make_model(
        "bitnet-b1.58", n_embd=96, n_head=6, n_head_kv=3, n_ff=200, n_vocab=101, **EPS
    )
    tokens = _tokens(16, weights.config.n_vocab, seed=11)
    got = NativeModel(path, act_bits=16).context(32).eval(tokens)
    assert _relative_error(got, reference.forward(weights, tokens, act_bits=16)) < 1e-3


def test_model_info(make_model: ModelFactory) -> None:
    weights, path = make_model("bitnet-b1.58")
    c = weights.config
    info = NativeModel(path).info
    assert info == {
        "arch": "bitnet-b1.58",
        "n_vocab": c.n_vocab,
        "n_ctx_train": c.n_ctx_train,
        "n_embd": c.n_embd,
        "n_layer": c.n_layer,
        "n_head": c.n_head,
        "n_head_kv": c.n_head_kv,
        "n_ff": c.n_ff,
        "file_bytes": path.stat().st_size,
        "repacked_bytes": 0,
    }


def test_eval_rejects_bad_calls(make_model: ModelFactory) -> None:
    weights, path = make_model("llama")
    ctx = NativeModel(path).context(16)
    with pytest.raises(ValueError, match=r"position 3 is not in \[0, 0\]"):
        ctx.eval([1, 2], pos=3)
    with pytest.raises(ValueError, match=r"token 80 at index 1 is not in \[0, 80\)"):
        ctx.eval([1, 80])
    with pytest.raises(ValueError, match="token -1 at index 0"):
        ctx.eval([-1])
    with pytest.raises(ValueError, match="no tokens"):
        ctx.eval([])
    ctx.eval(list(range(10)))
    with pytest.raises(ValueError, match="7 tokens from position 10 do not fit the context of 16"):
        ctx.eval(list(range(7)))
    assert ctx.n_past == 10


@pytest.mark.parametrize(("rope_type", "rope_scale"), [("neox", 4.0), ("norm", 1.0), ("norm", 2.0)])
def test_rope_variants(rope_type: str, rope_scale: float, make_model: ModelFactory) -> None:
    # norm: the file holds q/k rows permuted to adjacent pairs, as for llama.cpp's llama.
    weights, path = make_model("bitnet", rope_type=rope_type, rope_scale=rope_scale, **EPS)
    tokens = _tokens(30, weights.config.n_vocab, seed=12)
    got = NativeModel(path, act_bits=16).context(32).eval(tokens)
    assert _relative_error(got, reference.forward(weights, tokens, act_bits=16)) < 1e-3
