"""Writes a random-weight checkpoint with BitNet-b1.58-2B-4T's exact shapes and file format.

The format is the published one (microsoft/bitnet-b1.58-2B-4T): config.json with the
autobitlinear/offline quantization config, one model.safetensors with transformers' packed
uint8 ternary weights [out/4, in] and a bf16 weight_scale [1] per projection, bf16 embedding
(tied head) and norms, and the Llama-3 tokenizer from ../shared/vocab. About 1.2 GB.

The safetensors file is written tensor by tensor (header first), so making it needs little
memory. Used for bit-convert's peak-RSS / time measurement and the runtime benchmarks:

    python scripts/make_bitnet_2b4t_checkpoint.py /tmp/bitnet-2b4t/checkpoint
    /usr/bin/time -v bit-convert /tmp/bitnet-2b4t/checkpoint -o /tmp/bitnet-2b4t/model.gguf
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fixtures.tokenizers import install_tokenizer  # noqa: E402

LAYERS, HIDDEN, HEADS, KV_HEADS, FFN, VOCAB = 30, 2560, 20, 5, 6912, 128256
HEAD_DIM = HIDDEN // HEADS
ROWS_PER_CHUNK = 4096

CONFIG = {
    "architectures": ["BitNetForCausalLM"],
    "model_type": "bitnet",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "hidden_act": "relu2",
    "hidden_size": HIDDEN,
    "initializer_range": 0.02,
    "intermediate_size": FFN,
    "max_position_embeddings": 4096,
    "num_attention_heads": HEADS,
    "num_hidden_layers": LAYERS,
    "num_key_value_heads": KV_HEADS,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "rope_theta": 500000.0,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": VOCAB,
    "quantization_config": {
        "quant_method": "bitnet",
        "linear_class": "autobitlinear",
        "quantization_mode": "offline",
    },
}

Chunks = Callable[[], Iterator[bytes]]


def bf16_bytes(values: np.ndarray) -> bytes:
    """float32 -> bfloat16 bit patterns (round to nearest even), little-endian."""
    bits = values.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2").tobytes()


def packed_ternary(rng: np.random.Generator, out_dim: int, in_dim: int) -> Chunks:
    """Random trits packed as transformers does: byte row r holds rows r + k * out/4 in bits
    2k+1:2k, as trit + 1."""

    def chunks() -> Iterator[bytes]:
        quarter = out_dim // 4
        for start in range(0, quarter, ROWS_PER_CHUNK):
            rows = min(ROWS_PER_CHUNK, quarter - start)
            codes = rng.integers(0, 3, size=(4, rows, in_dim), dtype=np.uint8)
            yield (codes[0] | codes[1] << 2 | codes[2] << 4 | codes[3] << 6).tobytes()

    return chunks


def bf16_normal(
    rng: np.random.Generator, rows: int, cols: int, scale: float, offset: float = 0.0
) -> Chunks:
    def chunks() -> Iterator[bytes]:
        for start in range(0, rows, ROWS_PER_CHUNK):
            n = min(ROWS_PER_CHUNK, rows - start)
            yield bf16_bytes(offset + scale * rng.standard_normal((n, cols), dtype=np.float32))

    return chunks


def tensors(rng: np.random.Generator) -> list[tuple[str, str, list[int], Chunks]]:
    """(name, dtype, shape, chunk source) in file order."""
    q, kv = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM
    linears = {
        "self_attn.q_proj": (q, HIDDEN),
        "self_attn.k_proj": (kv, HIDDEN),
        "self_attn.v_proj": (kv, HIDDEN),
        "self_attn.o_proj": (HIDDEN, q),
        "mlp.gate_proj": (FFN, HIDDEN),
        "mlp.up_proj": (FFN, HIDDEN),
        "mlp.down_proj": (HIDDEN, FFN),
    }
    out = [
        ("model.embed_tokens.weight", "BF16", [VOCAB, HIDDEN], bf16_normal(rng, VOCAB, HIDDEN, 0.5))
    ]
    for i in range(LAYERS):
        base = f"model.layers.{i}"
        for norm, size in (
            ("input_layernorm", HIDDEN),
            ("post_attention_layernorm", HIDDEN),
            ("self_attn.attn_sub_norm", HIDDEN),
            ("mlp.ffn_sub_norm", FFN),
        ):
            out.append((f"{base}.{norm}.weight", "BF16", [size], bf16_normal(rng, 1, size, 0.2, 1)))
        for module, (out_dim, in_dim) in linears.items():
            out.append(
                (
                    f"{base}.{module}.weight",
                    "U8",
                    [out_dim // 4, in_dim],
                    packed_ternary(rng, out_dim, in_dim),
                )
            )
            out.append(
                (f"{base}.{module}.weight_scale", "BF16", [1], bf16_normal(rng, 1, 1, 0.1, 1.5))
            )
    out.append(("model.norm.weight", "BF16", [HIDDEN], bf16_normal(rng, 1, HIDDEN, 0.2, 1)))
    return out


def write_safetensors(path: Path, entries: list[tuple[str, str, list[int], Chunks]]) -> None:
    itemsize = {"BF16": 2, "U8": 1}
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape, _ in entries:
        nbytes = int(np.prod(shape)) * itemsize[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for _, _, _, chunks in entries:
            for chunk in chunks():
                f.write(chunk)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path, help="where to write the checkpoint (created)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    (args.folder / "config.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
    write_safetensors(args.folder / "model.safetensors", tensors(np.random.default_rng(args.seed)))
    install_tokenizer(args.folder.parent / "tokenizer-cache", "bitnet-2b4t", args.folder)
    print(f"wrote {args.folder}", file=sys.stderr)


if __name__ == "__main__":
    main()
