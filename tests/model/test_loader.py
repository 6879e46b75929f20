"""bl_model_open on bad files and bad parameters: each is a ValueError naming the problem."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gguf import GGUFValueType

from bitllm import kernels

from .builder import TensorData, gguf_metadata, gguf_tensors, write_gguf
from .capi import NativeModel
from .conftest import ModelFactory


def _write(
    tmp_path: Path,
    make_model: ModelFactory,
    arch: str = "bitnet",
    metadata: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    tensors: dict[str, TensorData] | None = None,
    write_arch: str | None = None,
) -> Path:
    """The small `arch` model with metadata and tensors changed (None values delete keys)."""
    weights, _ = make_model(arch)
    meta = gguf_metadata(weights.config)
    for key, value in (metadata or {}).items():
        if value is None:
            del meta[key]
        else:
            meta[key] = value
    all_tensors = {k: v for k, v in gguf_tensors(weights).items() if k not in drop}
    all_tensors.update(tensors or {})
    return write_gguf(tmp_path / "bad.gguf", write_arch or arch, meta, all_tensors)


def _open_fails(path: Path, match: str, **params: Any) -> None:
    with pytest.raises(ValueError, match=match):
        NativeModel(path, **params)


def _patched(tmp_path: Path, source: Path, patch: dict[int, bytes]) -> Path:
    data = bytearray(source.read_bytes())
    for offset, value in patch.items():
        data[offset : offset + len(value)] = value
    out = tmp_path / "patched.gguf"
    out.write_bytes(bytes(data))
    return out


def _tensor_info(data: bytes, name: str) -> int:
    """Offset of the field after `name` in its tensor info (n_dims)."""
    encoded = struct.pack("<Q", len(name)) + name.encode()
    return data.index(encoded) + len(encoded)


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    _open_fails(tmp_path / "absent.gguf", "absent.gguf: cannot open")
    text = tmp_path / "text.gguf"
    text.write_text("this is not a model, just some text")
    _open_fails(text, "not a GGUF file")
    _open_fails(tmp_path, "not a regular file")


def test_truncated_files(tmp_path: Path, make_model: ModelFactory) -> None:
    _, path = make_model("bitnet")
    data = path.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[:-10])
    _open_fails(cut, "run past the end of the file")
    cut.write_bytes(data[:200])
    _open_fails(cut, "truncated")


def test_header_fields(tmp_path: Path, make_model: ModelFactory) -> None:
    _, path = make_model("bitnet")
    _open_fails(_patched(tmp_path, path, {4: struct.pack("<I", 7)}), "version 7 is not supported")
    _open_fails(_patched(tmp_path, path, {4: struct.pack(">I", 3)}), "big-endian")
    huge = struct.pack("<Q", 1 << 60)
    _open_fails(_patched(tmp_path, path, {8: huge}), "cannot fit")
    _open_fails(_patched(tmp_path, path, {16: huge}), "cannot fit")


def test_tensor_info_fields(tmp_path: Path, make_model: ModelFactory) -> None:
    _, path = make_model("bitnet")
    data = path.read_bytes()
    at = _tensor_info(data, "blk.0.attn_q.weight")  # n_dims, 2 dims, type, offset
    _open_fails(_patched(tmp_path, path, {at: struct.pack("<I", 9)}), "has 9 dimensions")
    _open_fails(_patched(tmp_path, path, {at + 4: struct.pack("<Q", 0)}), "dimension 0 is 0")
    _open_fails(
        _patched(tmp_path, path, {at + 20: struct.pack("<I", 10)}),
        "'blk.0.attn_q.weight' has type id 10, which bitllm does not know",
    )
    offset = struct.unpack_from("<Q", data, at + 24)[0]
    _open_fails(
        _patched(tmp_path, path, {at + 24: struct.pack("<Q", offset + 4)}),
        "not a multiple of the alignment",
    )
    _open_fails(_patched(tmp_path, path, {at + 24: struct.pack("<Q", 1 << 62)}), "run past the end")
    # the name of attn_k spelled as attn_q: two tensors with one name
    k_name = data.index(b"blk.0.attn_k.weight")
    _open_fails(_patched(tmp_path, path, {k_name: b"blk.0.attn_q.weight"}), "appears twice")


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ({"bitnet.block_count": None}, "metadata bitnet.block_count is missing"),
        (
            {"bitnet.embedding_length": ("64", GGUFValueType.STRING)},
            "'bitnet.embedding_length' is a string, expected an integer",
        ),
        ({"bitnet.attention.head_count": (0, GGUFValueType.UINT32)}, "out of range"),
        (
            {"bitnet.attention.head_count_kv": (3, GGUFValueType.UINT32)},
            "4 attention heads cannot share 3 key/value heads",
        ),
        ({"bitnet.rope.freq_base": (float("nan"), GGUFValueType.FLOAT32)}, "out of range"),
        ({"bitnet.rope.dimension_count": (15, GGUFValueType.UINT32)}, "is odd"),
        ({"bitnet.vocab_size": (81, GGUFValueType.UINT32)}, "has 80 rows"),
        ({"bitllm.format_version": (2, GGUFValueType.UINT32)}, "format_version 2 is not supported"),
        (
            {"bitllm.activation": ("gelu", GGUFValueType.STRING)},
            "bitllm.activation 'gelu' is not supported \\(known: silu, relu2\\)",
        ),
        ({"bitllm.rope_type": ("yarn", GGUFValueType.STRING)}, "rope_type 'yarn' is not supported"),
        ({"bitnet.rope.scaling.type": ("yarn", GGUFValueType.STRING)}, "'yarn' is not supported"),
        (
            {"bitnet.rope.scaling.type": ("linear", GGUFValueType.STRING)},
            "bitnet.rope.scaling.factor is missing",
        ),
        ({"bitllm.activation_bits": (4, GGUFValueType.UINT32)}, "not 8 or 16"),
        ({"bitllm.sub_norms": (1, GGUFValueType.UINT32)}, "is a u32, expected a bool"),
    ],
)
def test_bad_metadata(
    metadata: dict[str, Any], match: str, tmp_path: Path, make_model: ModelFactory
) -> None:
    _open_fails(_write(tmp_path, make_model, metadata=metadata), match)


def test_bad_architecture(tmp_path: Path, make_model: ModelFactory) -> None:
    _open_fails(
        _write(tmp_path, make_model, write_arch="gpt9"), "architecture 'gpt9' is not supported"
    )


def test_bad_tensors(tmp_path: Path, make_model: ModelFactory) -> None:
    def f32(shape: tuple[int, ...]) -> TensorData:
        return TensorData(np.zeros(shape, "<f4").view(np.uint8).ravel(), shape, 0)

    _open_fails(
        _write(tmp_path, make_model, drop=("blk.1.ffn_up.weight",)),
        "tensor 'blk.1.ffn_up.weight' is missing",
    )
    _open_fails(
        _write(tmp_path, make_model, drop=("blk.0.attn_sub_norm.weight",)),
        "'blk.0.attn_sub_norm.weight' is missing",
    )
    _open_fails(
        _write(tmp_path, make_model, tensors={"blk.0.attn_q.weight": f32((64, 63))}),
        "'blk.0.attn_q.weight' has shape 64 x 63, expected 64 x 64",
    )
    _open_fails(
        _write(tmp_path, make_model, tensors={"blk.0.attn_norm.weight": f32((64, 1))}),
        "'blk.0.attn_norm.weight' is not a vector of 64",
    )
    half = TensorData(np.zeros(64, "<f2").view(np.uint8), (64,), 1)
    _open_fails(
        _write(tmp_path, make_model, tensors={"output_norm.weight": half}),
        "'output_norm.weight' is f16, expected f32",
    )
    _open_fails(
        _write(tmp_path, make_model, tensors={"blk.0.extra.weight": f32((4,))}),
        "unexpected tensor 'blk.0.extra.weight' in a bitnet model",
    )
    _open_fails(
        _write(tmp_path, make_model, tensors={"output.weight": f32((80, 64))}),
        "tied_head is true but the file has output.weight",
    )
    _open_fails(
        _write(tmp_path, make_model, "llama", drop=("output.weight",)), "'output.weight' is missing"
    )
    ternary = gguf_tensors(make_model("bitnet")[0])["blk.0.ffn_gate.weight"]
    _open_fails(
        _write(
            tmp_path,
            make_model,
            tensors={"token_embd.weight": ternary},
            metadata={"bitnet.vocab_size": None},
        ),
        "embeddings must be a float or quant type",
    )
    _open_fails(
        _write(tmp_path, make_model, "onebit", drop=("blk.1.ffn_down.in_scale",)),
        "'blk.1.ffn_down.in_scale' is missing",
    )


def test_bad_qwen3_tensors(tmp_path: Path, make_model: ModelFactory) -> None:
    """qwen3's per-head norms are head_dim (key_length 24, not 64 / 4 heads) long."""
    short_norm = TensorData(np.ones(16, "<f4").view(np.uint8), (16,), 0)
    _open_fails(
        _write(tmp_path, make_model, "qwen3", drop=("blk.1.attn_k_norm.weight",)),
        "'blk.1.attn_k_norm.weight' is missing",
    )
    _open_fails(
        _write(tmp_path, make_model, "qwen3", tensors={"blk.0.attn_q_norm.weight": short_norm}),
        "'blk.0.attn_q_norm.weight' is not a vector of 24",
    )
    head_dim_keys = ("attention.key_length", "attention.value_length", "rope.dimension_count")
    no_head_dim: dict[str, Any] = {f"qwen3.{key}": None for key in head_dim_keys}
    _open_fails(
        _write(tmp_path, make_model, "qwen3", metadata=no_head_dim),
        "'blk.0.attn_q_norm.weight' is not a vector of 16",  # head_dim fell back to 64 / 4
    )
    _open_fails(
        _write(tmp_path, make_model, tensors={"blk.0.attn_q_norm.weight": short_norm}),
        "unexpected tensor 'blk.0.attn_q_norm.weight' in a bitnet model",
    )


def test_bad_parameters(make_model: ModelFactory) -> None:
    _, path = make_model("bitnet")
    _open_fails(path, "act_bits must be 8 or 16, got 4", act_bits=4)
    missing = next(i for i in kernels.isa_names() if i not in kernels.isas())
    _open_fails(path, f"ISA {missing} is not available", isa=missing)
