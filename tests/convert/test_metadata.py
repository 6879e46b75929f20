"""Architecture, hyperparameters and tokenizer metadata, against the sources they came from.

The tokenizers are llama.cpp's own vocab GGUFs, converted by transformers into the files the
checkpoints ship; the GGUF we write must hold the same vocabulary again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bitllm.convert import build_plan, write_gguf
from bitllm.runtime.gguf_reader import GGUFFile
from tests.convert.gguf_tensors import open_gguf
from tests.fixtures.checkpoints import TINY, published_config
from tests.fixtures.plugin import Factory
from tests.fixtures.tokenizers import (
    BITNET_CHAT_TEMPLATE,
    LLAMA3_CHAT_TEMPLATE,
    LLAMA_BPE,
    LLAMA_SPM,
    VOCAB_DIR,
)

# family -> (arch, activation, sub-norms, tied, rope type, scale convention, activation bits)
EXPECTED = {
    "1bitllm": ("bitnet", "silu", True, True, "neox", "absmean", 8),
    "bitnet-2b4t": ("bitnet-b1.58", "relu2", True, True, "neox", "multiply", 8),
    "bitnet-2b4t-bf16": ("bitnet-b1.58", "relu2", True, True, "neox", "absmean", 8),
    "hf-bitnet": ("llama", "silu", False, False, "norm", "divide", 8),
    "onebit": ("onebit", "silu", False, False, "neox", "multiply", 16),
    "onebit-latent": ("onebit", "silu", False, False, "neox", "multiply", 16),
    "falcon-e": ("llama", "silu", False, False, "norm", "divide", 8),
    "falcon-e-bf16": ("llama", "silu", False, False, "norm", "unpacked", 16),
    "trilm": ("llama", "silu", False, False, "norm", "unpacked", 16),
}
# fixtures that are one family's published format under another family's name
SOURCE_FAMILY = {
    "falcon-e": "hf-bitnet",
    "falcon-e-bf16": "unpacked-ternary",
    "trilm": "unpacked-ternary",
}


@pytest.fixture(scope="module")
def vocab_gguf() -> dict[str, dict]:
    out = {}
    for name in (LLAMA_BPE, LLAMA_SPM):
        with GGUFFile(VOCAB_DIR / name) as g:
            out[name] = dict(g.metadata)
    return out


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_model_metadata(family: str, converted_gguf: Factory) -> None:
    arch, activation, sub_norms, tied, rope, scale, bits = EXPECTED[family]
    with open_gguf(converted_gguf(family)) as gguf:
        m = gguf.metadata
    assert m["general.architecture"] == arch
    assert m[f"{arch}.block_count"] == TINY.layers
    assert m[f"{arch}.embedding_length"] == TINY.hidden
    assert m[f"{arch}.feed_forward_length"] == TINY.ffn
    assert m[f"{arch}.attention.head_count"] == TINY.heads
    assert m[f"{arch}.attention.head_count_kv"] == TINY.kv_heads
    assert m[f"{arch}.rope.dimension_count"] == TINY.head_dim
    assert m[f"{arch}.context_length"] == 2048
    config = published_config(family, TINY)
    assert m[f"{arch}.rope.freq_base"] == np.float32(config["rope_theta"])
    assert m[f"{arch}.attention.layer_norm_rms_epsilon"] == np.float32(config["rms_norm_eps"])
    assert m["bitllm.format_version"] == 1
    assert m["bitllm.activation"] == activation
    assert m["bitllm.sub_norms"] == sub_norms
    assert m["bitllm.tied_head"] == tied
    assert m["bitllm.rope_type"] == rope
    assert m["bitllm.scale_convention"] == scale
    assert m["bitllm.activation_bits"] == bits
    assert m["bitllm.source_family"] == SOURCE_FAMILY.get(family, family)
    assert ("bitllm.post_layernorm_eps" in m) == family.startswith("onebit")
    assert m["bitllm.converter_version"]


def test_llama3_bpe_tokenizer(converted_gguf: Factory, vocab_gguf: dict) -> None:
    reference = vocab_gguf[LLAMA_BPE]
    with open_gguf(converted_gguf("bitnet-2b4t")) as gguf:
        m = gguf.metadata
    assert m["tokenizer.ggml.model"] == "gpt2"
    assert m["tokenizer.ggml.pre"] == "llama-bpe"
    assert m["tokenizer.ggml.tokens"] == reference["tokenizer.ggml.tokens"]
    assert m["tokenizer.ggml.merges"] == reference["tokenizer.ggml.merges"]
    np.testing.assert_array_equal(
        m["tokenizer.ggml.token_type"], reference["tokenizer.ggml.token_type"]
    )
    assert "tokenizer.ggml.scores" not in m
    assert m["tokenizer.ggml.bos_token_id"] == 128000
    assert m["tokenizer.ggml.eos_token_id"] == 128009
    assert m["tokenizer.ggml.eot_token_id"] == 128009
    assert m["tokenizer.ggml.add_bos_token"] is True
    assert m["tokenizer.ggml.add_eos_token"] is False
    assert m["tokenizer.chat_template"] == BITNET_CHAT_TEMPLATE


def test_llama3_chat_template(converted_gguf: Factory) -> None:
    with open_gguf(converted_gguf("hf-bitnet")) as gguf:
        assert gguf.metadata["tokenizer.chat_template"] == LLAMA3_CHAT_TEMPLATE


def test_sentencepiece_model_with_padding_rows(converted_gguf: Factory, vocab_gguf: dict) -> None:
    """1bitLLM's embedding has 32002 rows for 32000 pieces: the two extra rows get unused
    placeholder tokens so that the vocabulary and the embedding agree (as llama.cpp needs)."""
    reference = vocab_gguf[LLAMA_SPM]
    with open_gguf(converted_gguf("1bitllm")) as gguf:
        m = gguf.metadata
    assert m["tokenizer.ggml.model"] == "llama"
    tokens = m["tokenizer.ggml.tokens"]
    assert len(tokens) == gguf.tensors["token_embd.weight"].shape[0] == 32002
    assert tokens[:32000] == reference["tokenizer.ggml.tokens"]
    assert tokens[32000:] == ["[PAD32000]", "[PAD32001]"]
    np.testing.assert_array_equal(
        m["tokenizer.ggml.scores"][:32000], reference["tokenizer.ggml.scores"]
    )
    types = m["tokenizer.ggml.token_type"]
    np.testing.assert_array_equal(types[:32000], reference["tokenizer.ggml.token_type"])
    assert list(types[32000:]) == [5, 5]
    assert m["tokenizer.ggml.bos_token_id"] == 1
    assert m["tokenizer.ggml.eos_token_id"] == 2
    assert m["tokenizer.ggml.unknown_token_id"] == 0
    assert m["tokenizer.ggml.padding_token_id"] == 32000  # config.json's pad_token_id
    assert m["tokenizer.ggml.add_bos_token"] is True
    assert m["tokenizer.ggml.add_eos_token"] is False
    assert "tokenizer.chat_template" not in m


def test_sentencepiece_tokenizer_json(
    checkpoint_factory: Factory, tmp_path: Path, vocab_gguf: dict
) -> None:
    """Without tokenizer.model, an SPM-style tokenizer.json gives the same pieces and types, and
    scores that order the merges as the original scores do."""
    reference = vocab_gguf[LLAMA_SPM]
    src = Path(shutil.copytree(checkpoint_factory("onebit"), tmp_path / "src"))
    (src / "tokenizer.model").unlink()
    plan = build_plan(src, "bt2", "q8_0", None)
    write_gguf(plan, tmp_path / "m.gguf")
    plan.checkpoint.close()
    with open_gguf(tmp_path / "m.gguf") as gguf:
        m = gguf.metadata
    assert m["tokenizer.ggml.model"] == "llama"
    assert m["tokenizer.ggml.tokens"] == reference["tokenizer.ggml.tokens"]
    np.testing.assert_array_equal(
        m["tokenizer.ggml.token_type"], reference["tokenizer.ggml.token_type"]
    )
    ours, theirs = m["tokenizer.ggml.scores"], reference["tokenizer.ggml.scores"]
    merged = [
        i
        for i, t in enumerate(reference["tokenizer.ggml.token_type"])
        if t == 1 and theirs[i] > -1e8 and len(m["tokenizer.ggml.tokens"][i]) > 1
    ]
    assert len(merged) > 29000
    np.testing.assert_array_equal(
        np.argsort(-ours[merged], kind="stable"), np.argsort(-theirs[merged], kind="stable")
    )
    assert m["tokenizer.ggml.bos_token_id"] == 1 and m["tokenizer.ggml.unknown_token_id"] == 0


def llama_cpp_cases(vocab_name: str) -> list[tuple[str, list[int]]]:
    """llama.cpp's test-tokenizer-0 texts and expected ids for a vocab in ../shared/vocab."""
    separator = "\n__ggml_vocab_test__\n"
    texts = (VOCAB_DIR / f"{vocab_name}.inp").read_text(encoding="utf-8").split(separator)
    lines = (VOCAB_DIR / f"{vocab_name}.out").read_text(encoding="utf-8").split("\n")
    return [
        (t, [int(i) for i in ids.split()]) for t, ids in zip(texts[:-1], lines[:-1], strict=True)
    ]


@pytest.mark.parametrize(
    ("family", "vocab_name", "drop"),
    [
        ("bitnet-2b4t", LLAMA_BPE, None),
        ("onebit", LLAMA_SPM, None),
        ("onebit", LLAMA_SPM, "tokenizer.model"),
    ],
)
def test_converted_vocab_tokenizes_like_llama_cpp(
    family: str,
    vocab_name: str,
    drop: str | None,
    checkpoint_factory: Factory,
    converted_gguf: Factory,
    tmp_path: Path,
) -> None:
    """The runtime's tokenizer, fed our metadata, gives llama.cpp's expected ids."""
    from bitllm import Tokenizer

    path = converted_gguf(family)
    if drop is not None:
        src = Path(shutil.copytree(checkpoint_factory(family), tmp_path / "src"))
        (src / drop).unlink()
        plan = build_plan(src, "bt2", "q8_0", None)
        path = tmp_path / "m.gguf"
        write_gguf(plan, path)
        plan.checkpoint.close()
    tokenizer = Tokenizer(path)
    cases = llama_cpp_cases(vocab_name)
    assert len(cases) > 40
    for text, expected in cases:
        assert tokenizer.encode(text) == expected, repr(text)


@pytest.mark.parametrize(
    ("rope", "expected"),
    [
        ({"rope_parameters": {"rope_type": "default", "rope_theta": 12345.0}}, (12345.0, None)),
        ({"rope_scaling": {"type": "linear", "factor": 4.0}}, (10000.0, ("linear", 4.0))),
    ],
)
def test_rope_settings(
    rope: dict, expected: tuple, checkpoint_factory: Factory, tmp_path: Path
) -> None:
    """Both config styles (transformers 4's rope_theta / rope_scaling, 5's rope_parameters)."""
    import json

    src = Path(shutil.copytree(checkpoint_factory("onebit"), tmp_path / "src"))
    config = json.loads((src / "config.json").read_text())
    config.pop("rope_theta")
    config.update(rope)
    (src / "config.json").write_text(json.dumps(config))
    plan = build_plan(src, "bt2", "q8_0", None)
    write_gguf(plan, tmp_path / "m.gguf")
    plan.checkpoint.close()
    with open_gguf(tmp_path / "m.gguf") as gguf:
        m = gguf.metadata
    theta, scaling = expected
    assert m["onebit.rope.freq_base"] == theta
    if scaling is None:
        assert "onebit.rope.scaling.type" not in m
    else:
        assert (m["onebit.rope.scaling.type"], m["onebit.rope.scaling.factor"]) == scaling
