"""Every ternary value, sign bit and scale survives conversion, per family and output type.

The references are the families' own inference rules: for the formats transformers runs
(BitNet 2B-4T offline and online, LlamaForCausalLM with the bitnet quantization), the effective
weight is read out of transformers' BitLinear modules by feeding them the identity matrix, so
the scale conventions (multiply, divide, absmean) are checked against transformers itself.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from safetensors.numpy import load_file

from bitllm.convert import encode as encode_module
from bitllm.runtime import tensor_types
from bitllm.runtime.gguf_reader import GGUFFile
from tests.convert.gguf_tensors import dequantized, open_gguf, packed_values
from tests.fixtures.checkpoints import BLOCK_ALIGNED, BONSAI, PROJECTIONS, TINY, Shape
from tests.fixtures.plugin import Factory

GGUF_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
TRANSFORMERS_FAMILIES = ("bitnet-2b4t", "bitnet-2b4t-bf16", "hf-bitnet", "falcon-e")
LLAMA_GRAPH = ("hf-bitnet", "falcon-e", "falcon-e-bf16", "trilm")  # q/k rows permuted
UNPACKED = ("falcon-e-bf16", "trilm")  # float weights that are trit x scale


def transformers_effective_weights(torch: ModuleType, folder: Path) -> dict[str, np.ndarray]:
    """Effective weight [out, in] of every BitLinear of a checkpoint loaded by transformers:
    each module applied to the identity matrix gives its weight's columns (activation
    quantization leaves 1.0 exact)."""
    from transformers import AutoModelForCausalLM
    from transformers.integrations.bitnet import AutoBitLinear, BitLinear

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    weights = {}
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, (AutoBitLinear, BitLinear)):
                eye = torch.eye(module.in_features, dtype=torch.float32)
                weights[name] = module(eye).T.contiguous().numpy()
    return weights


def absmean_reference(torch: ModuleType, latent: np.ndarray) -> np.ndarray:
    """transformers' WeightQuant (the 1bitLLM / BitNet b1.58 rule) on a latent weight."""
    from transformers.integrations.bitnet import WeightQuant

    return WeightQuant.apply(torch.from_numpy(latent.astype(np.float32))).numpy()


def llama_cpp_row_order(rows: np.ndarray, heads: int) -> np.ndarray:
    """HF's Q/K rows in the order llama.cpp's `llama` graph expects: per head, row 2i is HF row
    i and row 2i + 1 is HF row i + head_dim / 2."""
    head_dim = rows.shape[0] // heads
    order = []
    for h in range(heads):
        for i in range(head_dim // 2):
            order += [h * head_dim + i, h * head_dim + head_dim // 2 + i]
    return rows[order]


def check_ternary(gguf: GGUFFile, name: str, effective: np.ndarray, exact: bool) -> None:
    values, scales = packed_values(gguf, name)
    np.testing.assert_array_equal(values, np.sign(effective).astype(np.int8), err_msg=name)
    product = values * scales[:, None]
    if exact:
        np.testing.assert_array_equal(product, effective, err_msg=name)
    else:
        np.testing.assert_allclose(product, effective, rtol=1e-6, atol=0, err_msg=name)


@pytest.mark.parametrize("family", TRANSFORMERS_FAMILIES)
def test_transformers_families_match_transformers(
    family: str,
    checkpoint_factory: Factory,
    converted_gguf: Factory,
    torch_eager: ModuleType,
) -> None:
    effective = transformers_effective_weights(torch_eager, checkpoint_factory(family))
    assert len(effective) == 7 * TINY.layers
    with open_gguf(converted_gguf(family)) as gguf:
        for module_name, weight in effective.items():
            layer, module = module_name.removeprefix("model.layers.").split(".", 1)
            name = f"blk.{layer}.{GGUF_NAMES[module]}.weight"
            assert gguf.tensors[name].type_name == "bt2"
            weight = _graph_row_order(family, module, weight)
            # bitlinear divides by its stored scale: equal up to float32 rounding
            check_ternary(gguf, name, weight, exact=family not in ("hf-bitnet", "falcon-e"))


def _graph_row_order(family: str, module: str, weight: np.ndarray) -> np.ndarray:
    if family in LLAMA_GRAPH and module in ("self_attn.q_proj", "self_attn.k_proj"):
        heads = TINY.heads if module == "self_attn.q_proj" else TINY.kv_heads
        return llama_cpp_row_order(weight, heads)
    return weight


def transformers_linear_weights(torch: ModuleType, folder: Path) -> dict[str, np.ndarray]:
    """The weight of every projection of a checkpoint transformers loads as a float LLaMA."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    return {
        name: module.weight.detach().numpy()
        for name, module in model.named_modules()
        if name.startswith("model.layers.") and isinstance(module, torch.nn.Linear)
    }


@pytest.mark.parametrize("family", UNPACKED)
def test_unpacked_families_hold_transformers_weights_exactly(
    family: str, checkpoint_factory: Factory, converted_gguf: Factory, torch_eager: ModuleType
) -> None:
    """transformers runs these as plain float LLaMAs: every weight it multiplies with is
    trit x the row's scale in the GGUF, bit for bit."""
    effective = transformers_linear_weights(torch_eager, checkpoint_factory(family))
    assert len(effective) == 7 * TINY.layers
    with open_gguf(converted_gguf(family)) as gguf:
        assert gguf.metadata["bitllm.activation_bits"] == 16
        for module_name, weight in effective.items():
            layer, module = module_name.removeprefix("model.layers.").split(".", 1)
            name = f"blk.{layer}.{GGUF_NAMES[module]}.weight"
            assert gguf.tensors[name].type_name == "bt2"
            check_ternary(gguf, name, _graph_row_order(family, module, weight), exact=True)


@pytest.mark.parametrize("family", ["bonsai", "ternary-bonsai"])
def test_bonsai_holds_transformers_weights_exactly(
    family: str, checkpoint_factory: Factory, converted_gguf: Factory, torch_eager: ModuleType
) -> None:
    """Bonsai's scales change every 128 columns: written dense (f16, exact for float16
    sources), every weight transformers' Qwen3 multiplies with is in the file bit for bit,
    the embedding (sign x group scale too) with --head-type f16 as well."""
    folder = checkpoint_factory(family)
    effective = transformers_linear_weights(torch_eager, folder)
    assert len(effective) == 7 * BONSAI.layers
    source = _source_floats(folder)
    with open_gguf(converted_gguf(family, outtype="f16", head_type="f16")) as gguf:
        assert gguf.metadata["general.architecture"] == "qwen3"
        assert gguf.metadata["bitllm.source_family"] == "bonsai"
        for module_name, weight in effective.items():
            layer, module = module_name.removeprefix("model.layers.").split(".", 1)
            name = f"blk.{layer}.{GGUF_NAMES[module]}.weight"
            assert gguf.tensors[name].type_name == "f16"
            group_scales = np.abs(weight).reshape(weight.shape[0], -1, 128).max(-1)
            assert (group_scales[:, 0] != group_scales[:, 1]).any(), name  # not one per row
            np.testing.assert_array_equal(dequantized(gguf, name), weight, err_msg=name)
        for layer in range(BONSAI.layers):
            for hf, ours in (("q_norm", "attn_q_norm"), ("k_norm", "attn_k_norm")):
                got = dequantized(gguf, f"blk.{layer}.{ours}.weight")
                np.testing.assert_array_equal(
                    got, source[f"model.layers.{layer}.self_attn.{hf}.weight"]
                )
        embedding = source["model.embed_tokens.weight"]
        np.testing.assert_array_equal(dequantized(gguf, "token_embd.weight"), embedding)
        assert "output.weight" not in gguf.tensors


GROUP_CASES = [
    ("bonsai", "q1_0"),
    ("bonsai", "q2_0"),
    ("ternary-bonsai", "q2_0"),
    ("ternary-bonsai", "q2_0_g128"),
]


@pytest.mark.parametrize(("family", "outtype"), GROUP_CASES)
def test_bonsai_in_llama_cpp_group_types_is_exact(
    family: str, outtype: str, checkpoint_factory: Factory, converted_gguf: Factory
) -> None:
    """llama.cpp's Q1_0 / Q2_0 hold a sign or trit block times one f16 scale: Bonsai's
    float16 weights, projections and embedding alike, come back bit for bit."""
    source = _source_floats(checkpoint_factory(family))
    with open_gguf(converted_gguf(family, outtype=outtype, head_type=outtype)) as gguf:
        for layer in range(BONSAI.layers):
            for module, ours in GGUF_NAMES.items():
                name = f"blk.{layer}.{ours}.weight"
                assert gguf.tensors[name].type_name == outtype
                expected = source[f"model.layers.{layer}.{module}.weight"]
                np.testing.assert_array_equal(dequantized(gguf, name), expected, err_msg=name)
        assert gguf.tensors["token_embd.weight"].type_name == outtype
        embedding = source["model.embed_tokens.weight"]
        np.testing.assert_array_equal(dequantized(gguf, "token_embd.weight"), embedding)


DEFAULT_CASES = [("bonsai", "q1_0", "q1_0"), ("ternary-bonsai", "q2_0_g128", "q2_0_g128")]


@pytest.mark.parametrize(("family", "linear", "head"), [*DEFAULT_CASES, ("1bitllm", "bt2", "q8_0")])
def test_default_types_are_the_smallest_that_hold_the_weights(
    family: str, linear: str, head: str, checkpoint_factory: Factory, tmp_path: Path
) -> None:
    """bit-convert without --outtype or --head-type: bt2 + q8_0, and for Bonsai the group
    type of fewest bits that holds its projections and embedding bit for bit."""
    from bitllm.convert.cli import main

    folder = checkpoint_factory(family)
    out = tmp_path / "model.gguf"
    assert main([str(folder), "-o", str(out)]) == 0
    source = _source_floats(folder)
    with open_gguf(out) as gguf:
        assert gguf.tensors["blk.0.attn_q.weight"].type_name == linear
        assert gguf.tensors["token_embd.weight"].type_name == head
        if family.endswith("bonsai"):
            embedding = source["model.embed_tokens.weight"]
            np.testing.assert_array_equal(dequantized(gguf, "token_embd.weight"), embedding)
            expected = source["model.layers.0.self_attn.q_proj.weight"]
            np.testing.assert_array_equal(dequantized(gguf, "blk.0.attn_q.weight"), expected)


def test_the_default_head_type_looks_past_zero_rows(
    checkpoint_factory: Factory, tmp_path: Path
) -> None:
    """Special tokens' embedding rows are often all zeros, which a sign type holds too: the
    default head type of a trit embedding whose first rows are zeros is still q2_0_g128."""
    import shutil

    from safetensors.numpy import save_file

    from bitllm.convert.cli import main

    folder = Path(shutil.copytree(checkpoint_factory("ternary-bonsai"), tmp_path / "ckpt"))
    weights = load_file(folder / "model.safetensors")
    embedding = weights["model.embed_tokens.weight"]
    embedding[: embedding.shape[0] // 2] = 0
    save_file(weights, folder / "model.safetensors")
    out = tmp_path / "model.gguf"
    assert main([str(folder), "-o", str(out)]) == 0
    with open_gguf(out) as gguf:
        assert gguf.tensors["token_embd.weight"].type_name == "q2_0_g128"
        got = dequantized(gguf, "token_embd.weight")
    np.testing.assert_array_equal(got, embedding.astype(np.float32))


def test_the_group_default_reads_the_first_projection_once(
    checkpoint_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Choosing a Bonsai checkpoint's default outtype and checking that its float weights are
    trit x scale both look at the first projection: one read serves both."""
    from bitllm.convert import plan
    from bitllm.convert.checkpoint import Checkpoint

    reads: list[str] = []
    floats = Checkpoint.floats

    def counted(self: Checkpoint, name: str) -> np.ndarray:
        reads.append(name)
        return floats(self, name)

    monkeypatch.setattr(Checkpoint, "floats", counted)
    built = plan.build_plan(checkpoint_factory("ternary-bonsai"), None, None, None)
    assert built.outtype == "q2_0_g128"
    assert reads.count(plan.FIRST_PROJECTION) == 1, reads


def test_unpacked_column_shards_convert_exactly_to_tq2_0(
    checkpoint_factory: Factory, converted_gguf: Factory
) -> None:
    """Rows with one magnitude per 256 columns (TriLM shards of columns): TQ2_0's block
    scale holds each exactly, so the file's weights are the float16 checkpoint's."""
    shape = Shape(hidden=512, layers=1, heads=4, kv_heads=2, ffn=512)  # shards of 256 columns
    source = _source_floats(checkpoint_factory("trilm-column-shards", shape=shape))
    gguf_path = converted_gguf("trilm-column-shards", outtype="tq2_0", shape=shape)
    with open_gguf(gguf_path) as gguf:
        for module, ours in GGUF_NAMES.items():
            weight = source[f"model.layers.0.{module}.weight"]
            if module in ("self_attn.o_proj", "mlp.down_proj"):  # two magnitudes a row
                assert len(np.unique(np.abs(weight[0][weight[0] != 0]))) == 2
            heads = {"self_attn.q_proj": shape.heads, "self_attn.k_proj": shape.kv_heads}
            if module in heads:
                weight = llama_cpp_row_order(weight, heads[module])
            assert gguf.tensors[f"blk.0.{ours}.weight"].type_name == "tq2_0"
            np.testing.assert_array_equal(dequantized(gguf, f"blk.0.{ours}.weight"), weight)


def test_1bitllm_matches_the_absmean_rule(
    checkpoint_factory: Factory, converted_gguf: Factory, torch_eager: ModuleType
) -> None:
    source = load_file(str(checkpoint_factory("1bitllm") / "model.safetensors"))
    with open_gguf(converted_gguf("1bitllm")) as gguf:
        for layer in range(TINY.layers):
            for module in PROJECTIONS:
                latent = source[f"model.layers.{layer}.{module}.weight"]
                effective = absmean_reference(torch_eager, latent)
                check_ternary(gguf, f"blk.{layer}.{GGUF_NAMES[module]}.weight", effective, True)


def onebit_reference_signs(torch: ModuleType, weight: np.ndarray) -> np.ndarray:
    """OneBit's BitLinearInf: bit k of each int8 is shifted out, and bit 1 means -1."""
    packed = torch.from_numpy(weight)
    bits = (packed.unsqueeze(-1) >> torch.arange(8).view(1, 1, 8)) & 1
    return (-2 * bits + 1).reshape(packed.shape[0], -1).numpy()


@pytest.mark.parametrize("family", ["onebit", "onebit-latent"])
def test_onebit_signs_and_factors(
    family: str, checkpoint_factory: Factory, converted_gguf: Factory, torch_eager: ModuleType
) -> None:
    source = load_file(str(checkpoint_factory(family) / "model.safetensors"))
    with open_gguf(converted_gguf(family)) as gguf:
        for layer in range(TINY.layers):
            for module in PROJECTIONS:
                prefix, name = f"model.layers.{layer}.{module}", f"blk.{layer}.{GGUF_NAMES[module]}"
                weight = source[f"{prefix}.weight"]
                if family == "onebit":
                    expected = onebit_reference_signs(torch_eager, weight)
                else:
                    signs = torch_eager.sign(torch_eager.from_numpy(weight.astype(np.float32)))
                    expected = torch_eager.where(signs == 0, 1.0, signs).numpy()
                values, scales = packed_values(gguf, f"{name}.weight")
                assert gguf.tensors[f"{name}.weight"].type_name == "bs1"
                np.testing.assert_array_equal(values, expected)
                np.testing.assert_array_equal(scales, 1.0)
                g = source[f"{prefix}.input_factor"].astype(np.float32)
                h = source[f"{prefix}.weight_scale"].astype(np.float32)
                np.testing.assert_array_equal(dequantized(gguf, f"{name}.in_scale"), g)
                np.testing.assert_array_equal(dequantized(gguf, f"{name}.out_scale"), h)


def _source_floats(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.torch import load_file as load_torch

    tensors = load_torch(str(folder / "model.safetensors"))
    return {k: v.float().numpy() for k, v in tensors.items() if v.is_floating_point()}


def _float_pairs(source: dict[str, np.ndarray]) -> dict[str, str]:
    pairs = {"model.norm.weight": "output_norm.weight"}
    for layer in range(TINY.layers):
        pairs[f"model.layers.{layer}.input_layernorm.weight"] = f"blk.{layer}.attn_norm.weight"
        pairs[f"model.layers.{layer}.post_attention_layernorm.weight"] = (
            f"blk.{layer}.ffn_norm.weight"
        )
    return pairs


@pytest.mark.parametrize(
    "family", ["1bitllm", "bitnet-2b4t", "hf-bitnet", "onebit", "falcon-e", "trilm"]
)
def test_norms_exact_and_heads_in_head_type(
    family: str, checkpoint_factory: Factory, converted_gguf: Factory
) -> None:
    source = _source_floats(checkpoint_factory(family))
    with open_gguf(converted_gguf(family)) as gguf:
        for hf, ours in _float_pairs(source).items():
            assert gguf.tensors[ours].type_name == "f32"
            np.testing.assert_array_equal(dequantized(gguf, ours), source[hf], err_msg=ours)
        heads = {"model.embed_tokens.weight": "token_embd.weight"}
        if "lm_head.weight" in source:
            heads["lm_head.weight"] = "output.weight"
        else:
            assert "output.weight" not in gguf.tensors
        for hf, ours in heads.items():
            assert gguf.tensors[ours].type_name == "q8_0"
            expected = tensor_types.quantize("q8_0", source[hf])
            np.testing.assert_array_equal(gguf.tensor_bytes(ours), expected, err_msg=ours)


@pytest.mark.parametrize("head_type", ["f32", "f16", "bf16", "q4_0"])
def test_head_types(head_type: str, checkpoint_factory: Factory, converted_gguf: Factory) -> None:
    source = _source_floats(checkpoint_factory("onebit"))
    with open_gguf(converted_gguf("onebit", head_type=head_type)) as gguf:
        for hf, ours in (
            ("model.embed_tokens.weight", "token_embd.weight"),
            ("lm_head.weight", "output.weight"),
        ):
            assert gguf.tensors[ours].type_name == head_type
            expected = tensor_types.quantize(head_type, source[hf])
            np.testing.assert_array_equal(gguf.tensor_bytes(ours), expected, err_msg=ours)
        np.testing.assert_array_equal(
            dequantized(gguf, "output_norm.weight"), source["model.norm.weight"]
        )


@pytest.mark.parametrize("family", ["1bitllm", "bitnet-2b4t"])
def test_sub_norms(family: str, checkpoint_factory: Factory, converted_gguf: Factory) -> None:
    from safetensors.torch import load_file as load_torch

    source = load_torch(str(checkpoint_factory(family) / "model.safetensors"))
    names = {
        "1bitllm": ("self_attn.inner_attn_ln", "mlp.ffn_layernorm"),
        "bitnet-2b4t": ("self_attn.attn_sub_norm", "mlp.ffn_sub_norm"),
    }[family]
    with open_gguf(converted_gguf(family)) as gguf:
        for layer in range(TINY.layers):
            for hf, ours in zip(names, ("attn_sub_norm", "ffn_sub_norm"), strict=True):
                expected = source[f"model.layers.{layer}.{hf}.weight"].float().numpy()
                got = dequantized(gguf, f"blk.{layer}.{ours}.weight")
                np.testing.assert_array_equal(got, expected)


def test_head_chunks_give_the_same_bytes(
    checkpoint_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedding is encoded a few rows at a time; the bytes must not depend on that."""
    from bitllm.convert import build_plan, write_gguf

    monkeypatch.setattr(encode_module, "ROW_CHUNK_ELEMENTS", 1000 * TINY.hidden + 7)
    plan = build_plan(checkpoint_factory("onebit"), "bt2", "q4_0", None)
    write_gguf(plan, tmp_path / "chunked.gguf")
    plan.checkpoint.close()
    source = load_file(str(checkpoint_factory("onebit") / "model.safetensors"))
    with open_gguf(tmp_path / "chunked.gguf") as gguf:
        for hf, ours in (
            ("model.embed_tokens.weight", "token_embd.weight"),
            ("lm_head.weight", "output.weight"),
        ):
            expected = tensor_types.quantize("q4_0", source[hf])
            np.testing.assert_array_equal(gguf.tensor_bytes(ours), expected)


@pytest.mark.parametrize("outtype", ["bt1", "f16", "f32"])
def test_other_outtypes_hold_the_same_weights(outtype: str, converted_gguf: Factory) -> None:
    with (
        open_gguf(converted_gguf("bitnet-2b4t")) as reference,
        open_gguf(converted_gguf("bitnet-2b4t", outtype=outtype)) as gguf,
    ):
        for layer in range(TINY.layers):
            for module in GGUF_NAMES.values():
                name = f"blk.{layer}.{module}.weight"
                assert gguf.tensors[name].type_name == outtype
                expected = dequantized(reference, name)
                rtol = 1e-3 if outtype == "f16" else 0
                np.testing.assert_allclose(dequantized(gguf, name), expected, rtol=rtol, atol=0)


@pytest.mark.parametrize("outtype", ["tq2_0", "tq1_0"])
def test_llama_cpp_ternary_types(outtype: str, converted_gguf: Factory) -> None:
    """TQ blocks keep the trits exactly and the scale as float16 (llama.cpp's layout)."""
    with (
        open_gguf(converted_gguf("1bitllm", shape=BLOCK_ALIGNED)) as reference,
        open_gguf(converted_gguf("1bitllm", outtype=outtype, shape=BLOCK_ALIGNED)) as gguf,
    ):
        for module in GGUF_NAMES.values():
            name = f"blk.0.{module}.weight"
            assert gguf.tensors[name].type_name == outtype
            values, scales = packed_values(reference, name)
            got = dequantized(gguf, name)
            np.testing.assert_array_equal(np.sign(got), values)
            f16_scale = scales.astype(np.float16).astype(np.float32)
            np.testing.assert_array_equal(got, values * f16_scale[:, None])


def test_tq_types_refuse_rows_that_are_not_whole_blocks(checkpoint_factory: Factory) -> None:
    from bitllm.convert import ConvertError, build_plan

    with pytest.raises(ConvertError, match="multiple of 256"):
        build_plan(checkpoint_factory("1bitllm"), "tq2_0", "q8_0", None)


def test_k_quant_heads_refuse_rows_that_are_not_whole_blocks(
    checkpoint_factory: Factory,
) -> None:
    from bitllm.convert import ConvertError, build_plan

    with pytest.raises(ConvertError, match="q6_k needs rows that are a multiple of 256.*q8_0"):
        build_plan(checkpoint_factory("1bitllm"), "bt2", "q6_k", None)


def test_k_quant_heads_round_trip(converted_gguf: Factory) -> None:
    """--head-type q6_k on rows of whole 256-blocks: the embedding (the tied head) decodes to
    the f32 file's values within q6_k's error."""
    with (
        open_gguf(converted_gguf("1bitllm", head_type="q6_k", shape=BLOCK_ALIGNED)) as q6,
        open_gguf(converted_gguf("1bitllm", head_type="f32", shape=BLOCK_ALIGNED)) as f32,
    ):
        assert q6.tensors["token_embd.weight"].type_name == "q6_k"
        got, want = dequantized(q6, "token_embd.weight"), dequantized(f32, "token_embd.weight")
        assert np.sqrt(np.mean((got - want) ** 2)) < 0.02 * np.sqrt(np.mean(want**2))


def test_shapes_that_pad(converted_gguf: Factory) -> None:
    """An FFN of 160 fills part of one 256-weight block; the padding stays out of the values."""
    with open_gguf(converted_gguf("bitnet-2b4t")) as gguf:
        info = gguf.tensors["blk.0.ffn_down.weight"]
        assert info.shape == (TINY.hidden, TINY.ffn)
        assert info.nbytes == tensor_types.TYPES["bt2"].tensor_bytes(TINY.hidden, TINY.ffn)
        values, _ = packed_values(gguf, "blk.0.ffn_down.weight")
        assert values.shape == (TINY.hidden, TINY.ffn)


def test_onebit_dense_export(converted_gguf: Factory) -> None:
    """--outtype f32 writes OneBit's signs densely and keeps g and h as they are."""
    with (
        open_gguf(converted_gguf("onebit")) as packed,
        open_gguf(converted_gguf("onebit", outtype="f32")) as dense,
    ):
        for name, info in packed.tensors.items():
            if info.type_name == "bs1":
                assert dense.tensors[name].type_name == "f32"
                values, _ = packed_values(packed, name)
                np.testing.assert_array_equal(dequantized(dense, name), values)
            else:
                assert bytes(dense.tensor_bytes(name)) == bytes(packed.tensor_bytes(name)), name


def test_onebit_refuses_llama_cpp_types(checkpoint_factory: Factory) -> None:
    from bitllm.convert import ConvertError, build_plan

    with pytest.raises(ConvertError, match="no OneBit graph"):
        build_plan(checkpoint_factory("onebit"), "tq2_0", "q8_0", None)


@pytest.mark.parametrize("outtype", ["tq2_0", "tq1_0"])
@pytest.mark.parametrize("family", ["bitnet-2b4t", "bitnet-2b4t-bf16"])
def test_2b4t_refuses_llama_cpp_types(
    family: str, outtype: str, checkpoint_factory: Factory
) -> None:
    """llama.cpp has no graph with 2B-4T's squared-ReLU FFN: its TQ export is refused."""
    from bitllm.convert import ConvertError, build_plan

    with pytest.raises(ConvertError, match=f"--outtype {outtype} .* squared-ReLU") as info:
        build_plan(checkpoint_factory(family, shape=BLOCK_ALIGNED), outtype, "q8_0", None)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("family", "arch"), [("1bitllm", "bitnet"), ("hf-bitnet", "llama")])
def test_llama_cpp_types_carry_llama_cpps_arch(
    family: str, arch: str, converted_gguf: Factory
) -> None:
    with open_gguf(converted_gguf(family, outtype="tq2_0", shape=BLOCK_ALIGNED)) as gguf:
        assert gguf.metadata["general.architecture"] == arch
        assert f"{arch}.block_count" in gguf.metadata


def test_every_arch_has_a_llama_cpp_answer() -> None:
    """A new architecture says whether llama.cpp has its graph (and under which name)."""
    from bitllm.convert.families import LLAMA_CPP_ARCHS, NO_LLAMA_CPP_GRAPH, archs

    assert set(archs()) == set(LLAMA_CPP_ARCHS) | set(NO_LLAMA_CPP_GRAPH)
    assert not set(LLAMA_CPP_ARCHS) & set(NO_LLAMA_CPP_GRAPH)
