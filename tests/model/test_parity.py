"""Every converter fixture family, converted by bit-convert and run natively, against an
independent forward pass: transformers itself where it has the model (BitNetForCausalLM,
LlamaForCausalLM with the bitnet quantization config), and the torch reference of
reference.py, fed straight from the checkpoint's tensors, for 1bitLLM and OneBit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from tests.fixtures.checkpoints import BLOCK_ALIGNED
from tests.fixtures.checkpoints import PROJECTIONS as CHECKPOINT_PROJECTIONS
from tests.fixtures.plugin import Factory

from . import reference
from .builder import PROJECTIONS, Config, Layer, Projection, Weights
from .capi import NativeModel

TOKENS = [int(t) for t in np.random.default_rng(5).integers(0, 1000, 24)]
HF_PROJECTIONS = dict(zip(PROJECTIONS, CHECKPOINT_PROJECTIONS, strict=True))
# transformers references in eager mode (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("torch_eager")


def _relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(got - expected).max() / np.abs(expected).max())


def _native_logits(gguf: Path, act_bits: int = 0) -> np.ndarray:
    # the f32 cache: exactness against the reference is the point here (the f16 default
    # moves an int8 activation by a step now and then: tests/model/test_kv_cache.py)
    model = NativeModel(gguf, threads=2, act_bits=act_bits)
    return model.context(64, "f32", "f32").eval(TOKENS)


def _transformers_logits(folder: Path) -> np.ndarray:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.dtype == torch.bfloat16:  # the packed families keep bf16 weight scales
            tensor.data = tensor.data.float()
    with torch.no_grad():
        return model(torch.tensor([TOKENS])).logits[0].float().numpy()


@pytest.mark.parametrize("family", ["bitnet-2b4t", "bitnet-2b4t-bf16", "hf-bitnet", "falcon-e"])
def test_transformers_families(
    family: str, converted_gguf: Factory, checkpoint_factory: Factory
) -> None:
    got = _native_logits(converted_gguf(family, head_type="f32"))
    expected = _transformers_logits(checkpoint_factory(family))
    # int8 activations: a float32 rounding difference may move one activation by a step
    assert _relative_error(got, expected) < 1e-2
    assert (got.argmax(1) == expected.argmax(1)).all()


@pytest.mark.parametrize("family", ["trilm", "falcon-e-bf16"])
def test_unpacked_families_against_float_transformers(
    family: str, converted_gguf: Factory, checkpoint_factory: Factory
) -> None:
    """transformers runs TriLM and Falcon-E bf16 as float LLaMAs (float activations). The
    weights are exact (tests/convert/test_exactness.py); the file asks for 16-bit per-token
    activations, which leave about 1e-5 of the largest logit (measured: 1.7e-5 and 5.6e-6
    on these fixtures); the 8-bit activations of the BitNet families leave about 1e-3 to
    5e-3 (measured 4.3e-3 and 1.3e-3)."""
    gguf = converted_gguf(family, head_type="f32")
    expected = _transformers_logits(checkpoint_factory(family))
    got = _native_logits(gguf)
    assert _relative_error(got, expected) < 1e-4
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert 1e-4 < _relative_error(_native_logits(gguf, act_bits=8), expected) < 1e-2


@pytest.mark.parametrize("family", ["bonsai", "ternary-bonsai"])
def test_bonsai_against_transformers(
    family: str, converted_gguf: Factory, checkpoint_factory: Factory
) -> None:
    """Bonsai written dense (f16 projections and head: exact weights, float products) on
    the qwen3 graph against transformers' Qwen3ForCausalLM (measured: 8.4e-7 and 7.0e-7 of
    the largest logit)."""
    got = _native_logits(converted_gguf(family, outtype="f16", head_type="f16"))
    expected = _transformers_logits(checkpoint_factory(family))
    assert _relative_error(got, expected) < 1e-5
    assert (got.argmax(1) == expected.argmax(1)).all()


@pytest.mark.parametrize(("family", "outtype"), [("bonsai", "q1_0"), ("ternary-bonsai", "q2_0")])
def test_bonsai_in_group_types_against_transformers(
    family: str, outtype: str, converted_gguf: Factory, checkpoint_factory: Factory
) -> None:
    """Exact weights (tests/convert/test_exactness.py) multiplied with activations in int8
    blocks of 32, as llama.cpp does, against transformers' float forward: measured 1.2e-2
    and 9.0e-3 of the largest logit, the bound of tests/model/test_q1_q2_models.py."""
    got = _native_logits(converted_gguf(family, outtype=outtype, head_type=outtype))
    expected = _transformers_logits(checkpoint_factory(family))
    assert _relative_error(got, expected) < 3e-2
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.9


def _config(folder: Path, arch: str, **extra: object) -> Config:
    c = json.loads((folder / "config.json").read_text())
    return Config(
        arch=arch,
        n_vocab=c["vocab_size"],
        n_embd=c["hidden_size"],
        n_layer=c["num_hidden_layers"],
        n_head=c["num_attention_heads"],
        n_head_kv=c["num_key_value_heads"],
        n_ff=c["intermediate_size"],
        rms_eps=c["rms_norm_eps"],
        rope_theta=c["rope_theta"],
        tied=c["tie_word_embeddings"],
        **extra,  # type: ignore[arg-type]
    )


def _absmean_ternary(w: np.ndarray) -> Projection:
    """1bitLLM's weight_quant: scale = 1 / mean|W|, trits = clamp(round(W * scale))."""
    scale = np.float32(1) / np.maximum(np.abs(w).mean(dtype=np.float32), np.float32(1e-5))
    trits = np.clip(np.rint(w * scale), -1, 1).astype(np.int8)
    return Projection(trits, np.full(w.shape[0], np.float32(1) / scale, np.float32))


def _onebit(t: dict[str, np.ndarray], prefix: str) -> Projection:
    """OneBit's projection: sign(W) with g = input_factor, h = weight_scale."""
    w, g = t[f"{prefix}.weight"], t[f"{prefix}.input_factor"].astype(np.float32)
    if w.dtype == np.int8:  # bit k of byte j is column 8j + k, set for -1
        bits = np.unpackbits(w.view(np.uint8), axis=1, bitorder="little")[:, : g.size]
        signs = np.where(bits == 1, -1, 1).astype(np.int8)
    else:  # latent weights: sign, with 0 counted as +1
        signs = np.where(w.astype(np.float32) < 0, -1, 1).astype(np.int8)
    h = t[f"{prefix}.weight_scale"].astype(np.float32)
    return Projection(signs, np.ones(signs.shape[0], np.float32), in_scale=g, out_scale=h)


def _checkpoint_weights(folder: Path, family: str) -> Weights:
    t = load_file(str(folder / "model.safetensors"))
    f32 = {k: v.astype(np.float32) for k, v in t.items() if v.dtype != np.int8}
    if family == "1bitllm":
        c = _config(folder, "bitnet", sub_norms=True)
    else:
        c = _config(folder, "onebit", scaled=True, act_bits=0)
    w = Weights(
        c,
        f32["model.embed_tokens.weight"],
        f32["model.norm.weight"],
        output=None if c.tied else f32["lm_head.weight"],
    )
    for i in range(c.n_layer):
        base = f"model.layers.{i}"
        proj = {}
        for name, hf in HF_PROJECTIONS.items():
            if family == "1bitllm":
                proj[name] = _absmean_ternary(f32[f"{base}.{hf}.weight"])
            else:
                proj[name] = _onebit(t, f"{base}.{hf}")
        layer = Layer(
            f32[f"{base}.input_layernorm.weight"],
            f32[f"{base}.post_attention_layernorm.weight"],
            proj,
        )
        if family == "1bitllm":
            layer.attn_sub_norm = f32[f"{base}.self_attn.inner_attn_ln.weight"]
            layer.ffn_sub_norm = f32[f"{base}.mlp.ffn_layernorm.weight"]
        w.layers.append(layer)
    return w


@pytest.mark.parametrize("family", ["1bitllm", "onebit", "onebit-latent"])
def test_families_transformers_lacks(
    family: str, converted_gguf: Factory, checkpoint_factory: Factory
) -> None:
    got = _native_logits(converted_gguf(family, head_type="f32"))
    weights = _checkpoint_weights(checkpoint_factory(family), family)
    expected = reference.forward(weights, TOKENS)
    # 1bitLLM: int8 activations as above; OneBit: W1A16 against float math
    assert _relative_error(got, expected) < (1e-2 if family == "1bitllm" else 1e-3)
    assert (got.argmax(1) == expected.argmax(1)).all()


@pytest.mark.parametrize("outtype", ["tq2_0", "tq1_0"])
def test_llama_cpp_ternary_exports_run(
    outtype: str, converted_gguf: Factory, checkpoint_factory: Factory
) -> None:
    """bit-convert --outtype tq2_0 / tq1_0 (llama.cpp's types, one f16 scale per 256-block)
    runs natively (repacked to bt2 / bt1 as it opens: one scale per row): against the same
    checkpoint's reference as above, the scales' f16 rounding is all that differs."""
    got = _native_logits(converted_gguf("1bitllm", outtype, "f32", BLOCK_ALIGNED))
    weights = _checkpoint_weights(checkpoint_factory("1bitllm", BLOCK_ALIGNED), "1bitllm")
    expected = reference.forward(weights, TOKENS)
    assert _relative_error(got, expected) < 2e-2
    assert (got.argmax(1) == expected.argmax(1)).all()
