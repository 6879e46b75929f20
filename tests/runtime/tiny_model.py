"""Small random models in bitllm's GGUF layout (docs/GGUF.md), with a real tokenizer.

The weights are random, so the text is nonsense, but everything around the forward pass
(tokenizer, sampling, chat, KV reuse, streaming, the CLI) runs for real on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from bitllm.runtime import tensor_types
from bitllm.runtime.gguf_reader import GGUFFile

SHARED = Path(__file__).resolve().parents[3] / "shared"
VOCAB_BPE = SHARED / "vocab" / "ggml-vocab-llama-bpe.gguf"
VOCAB_SPM = SHARED / "vocab" / "ggml-vocab-llama-spm.gguf"
LLAMA3_EOT_ID = 128009

# arch -> (bitllm.activation, bitllm.source_family, bitllm.scale_convention)
ARCH_KEYS = {
    "bitnet": ("silu", "1bitllm", "absmean"),
    "bitnet-b1.58": ("relu2", "bitnet-2b4t", "multiply"),
}


@dataclass(frozen=True)
class Shape:
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    n_head_kv: int = 2
    n_ff: int = 96
    n_ctx_train: int = 256


def _copy_tokenizer(writer: gguf.GGUFWriter, vocab: Path) -> int:
    """Copies every tokenizer.* key of a vocab-only GGUF; returns the vocabulary size."""
    with GGUFFile(vocab) as source:
        for key, value in source.metadata.items():
            if not key.startswith("tokenizer."):
                continue
            vtype, etype = source.value_types[key]
            if vtype == gguf.GGUFValueType.ARRAY:
                items = value.tolist() if isinstance(value, np.ndarray) else list(value)
                writer.add_key_value(key, items, vtype, etype)
            else:
                writer.add_key_value(key, value, vtype)
        return len(source.metadata["tokenizer.ggml.tokens"])


def _add_packed(
    writer: gguf.GGUFWriter, name: str, type_name: str, data: np.ndarray, rows: int, cols: int
) -> None:
    type_id = tensor_types.tensor_type(type_name).gguf_type
    writer.add_tensor(name, data.view(np.int8), raw_shape=(rows, cols), raw_dtype=type_id)


def write_model(
    path: Path,
    arch: str = "bitnet",
    shape: Shape = Shape(),
    vocab: Path = VOCAB_SPM,
    chat_template: str | None = None,
    seed: int = 0,
) -> Path:
    """A random model of a BitNet family (sub-norms, GQA, tied F16 head): "bitnet" is
    1bitLLM's graph (SiLU), "bitnet-b1.58" is BitNet-b1.58-2B-4T's (relu2)."""
    activation, family, scale_convention = ARCH_KEYS[arch]
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), arch)
    n_vocab = _copy_tokenizer(writer, vocab)
    if vocab == VOCAB_BPE and arch == "bitnet-b1.58":
        writer.add_uint32("tokenizer.ggml.eot_token_id", LLAMA3_EOT_ID)
    if chat_template is not None:
        writer.add_string("tokenizer.chat_template", chat_template)
    head_dim = shape.n_embd // shape.n_head
    writer.add_string("general.name", f"tiny {arch}")
    writer.add_uint32(f"{arch}.context_length", shape.n_ctx_train)
    writer.add_uint32(f"{arch}.embedding_length", shape.n_embd)
    writer.add_uint32(f"{arch}.block_count", shape.n_layer)
    writer.add_uint32(f"{arch}.feed_forward_length", shape.n_ff)
    writer.add_uint32(f"{arch}.attention.head_count", shape.n_head)
    writer.add_uint32(f"{arch}.attention.head_count_kv", shape.n_head_kv)
    writer.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)
    writer.add_float32(f"{arch}.rope.freq_base", 500000.0)
    writer.add_uint32(f"{arch}.rope.dimension_count", head_dim)
    writer.add_uint32(f"{arch}.vocab_size", n_vocab)
    writer.add_uint32("bitllm.format_version", 1)
    writer.add_string("bitllm.activation", activation)
    writer.add_bool("bitllm.sub_norms", True)
    writer.add_bool("bitllm.tied_head", True)
    writer.add_uint32("bitllm.activation_bits", 8)
    writer.add_string("bitllm.source_family", family)
    writer.add_string("bitllm.scale_convention", scale_convention)
    writer.add_string("bitllm.converter_version", "test")

    def norm(n: int) -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    def ternary(name: str, rows: int, cols: int) -> None:
        values = rng.integers(-1, 2, size=(rows, cols), dtype=np.int8)
        scale = np.full(rows, 1.0, dtype=np.float32)
        _add_packed(writer, name, "bt2", tensor_types.pack("bt2", values, scale), rows, cols)

    embedding = (rng.standard_normal((n_vocab, shape.n_embd)) * 0.5).astype(np.float16)
    writer.add_tensor("token_embd.weight", embedding)
    writer.add_tensor("output_norm.weight", norm(shape.n_embd))
    kv = shape.n_head_kv * head_dim
    for i in range(shape.n_layer):
        block = f"blk.{i}"
        writer.add_tensor(f"{block}.attn_norm.weight", norm(shape.n_embd))
        writer.add_tensor(f"{block}.ffn_norm.weight", norm(shape.n_embd))
        writer.add_tensor(f"{block}.attn_sub_norm.weight", norm(shape.n_embd))
        writer.add_tensor(f"{block}.ffn_sub_norm.weight", norm(shape.n_ff))
        ternary(f"{block}.attn_q.weight", shape.n_embd, shape.n_embd)
        ternary(f"{block}.attn_k.weight", kv, shape.n_embd)
        ternary(f"{block}.attn_v.weight", kv, shape.n_embd)
        ternary(f"{block}.attn_output.weight", shape.n_embd, shape.n_embd)
        ternary(f"{block}.ffn_gate.weight", shape.n_ff, shape.n_embd)
        ternary(f"{block}.ffn_up.weight", shape.n_ff, shape.n_embd)
        ternary(f"{block}.ffn_down.weight", shape.n_embd, shape.n_ff)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


_WRITTEN: dict[tuple, Path] = {}


def cached_model(
    folder: Path, arch: str = "bitnet", chat_template: str | None = None, seed: int = 0
) -> Path:
    """write_model once per test session and settings. "bitnet" gets LLaMA's SentencePiece
    vocabulary (quick to load), "bitnet-b1.58" the Llama-3 BPE one, as the real models."""
    key = (folder, arch, chat_template, seed)
    if key not in _WRITTEN:
        vocab = VOCAB_BPE if arch == "bitnet-b1.58" else VOCAB_SPM
        path = folder / f"tiny-{arch}-{len(_WRITTEN)}.gguf"
        _WRITTEN[key] = write_model(path, arch, vocab=vocab, chat_template=chat_template, seed=seed)
    return _WRITTEN[key]
