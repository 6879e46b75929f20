"""Small random models of every architecture, as numpy weights and as GGUF files laid out
the way docs/GGUF.md says bit-convert writes them.

`random_weights` makes the weights; `gguf_metadata` / `gguf_tensors` turn them into what
goes into the file (tests edit those to make bad files); `write_gguf` writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFValueType, GGUFWriter

from bitllm.convert import gguf_names as names
from bitllm.runtime import tensor_types

PROJECTIONS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


@dataclass(frozen=True)
class Config:
    arch: str
    n_vocab: int = 80
    n_embd: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_head_kv: int = 4
    n_ff: int = 96
    n_ctx_train: int = 64
    rms_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_type: str = "neox"  # "norm": q/k rows permuted to llama.cpp's adjacent pairs
    rope_scale: float = 1.0  # linear position scaling factor
    activation: str = "silu"
    sub_norms: bool = False
    scaled: bool = False  # OneBit: in_scale g, out_scale h, LayerNorm after each projection
    qk_norm: bool = False  # Qwen3: RMSNorm of every q and k head before RoPE
    key_length: int = 0  # head_dim when it is not n_embd / n_head (written as key_length)
    act_bits: int = 8
    tied: bool = True
    weight_type: str = "bt2"
    head_type: str = "f32"
    post_layernorm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.key_length or self.n_embd // self.n_head


ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "bitnet": {"activation": "silu", "sub_norms": True},
    "bitnet-b1.58": {
        "activation": "relu2",
        "sub_norms": True,
        "n_head_kv": 2,
        "rope_theta": 500000.0,
    },
    "llama": {"activation": "silu", "tied": False, "rope_type": "norm"},
    "onebit": {
        "activation": "silu",
        "scaled": True,
        "act_bits": 16,
        "tied": False,
        "weight_type": "bs1",
    },
    # llama.cpp's qwen3 files carry none of bitllm's keys (write_model leaves them out);
    # heads 24 wide, not 64 / 4, as Qwen3's head_dim need not be hidden / heads
    "qwen3": {"qk_norm": True, "n_head_kv": 2, "key_length": 24, "rope_theta": 1000000.0},
}
FOREIGN_ARCHS = ("qwen3",)  # written by llama.cpp, not by bit-convert: no bitllm.* keys
ARCHS = tuple(ARCH_DEFAULTS)


def config_for(arch: str, **overrides: Any) -> Config:
    return replace(Config(arch=arch, **ARCH_DEFAULTS[arch]), **overrides)


@dataclass
class Projection:
    values: np.ndarray  # int8 [rows, cols] in {-1, 0, 1} (sign: {-1, 1})
    row_scale: np.ndarray  # float32 [rows]
    in_scale: np.ndarray | None = None  # float32 [cols], OneBit g
    out_scale: np.ndarray | None = None  # float32 [rows], OneBit h


@dataclass
class Layer:
    attn_norm: np.ndarray
    ffn_norm: np.ndarray
    proj: dict[str, Projection]
    attn_sub_norm: np.ndarray | None = None
    ffn_sub_norm: np.ndarray | None = None
    attn_q_norm: np.ndarray | None = None  # [head_dim]
    attn_k_norm: np.ndarray | None = None


@dataclass
class Weights:
    config: Config
    token_embd: np.ndarray  # float32 [vocab, embd], exactly what the head type stores
    output_norm: np.ndarray
    layers: list[Layer] = field(default_factory=list)
    output: np.ndarray | None = None  # float32 [vocab, embd]; None when tied


def _projection_shapes(c: Config) -> dict[str, tuple[int, int]]:
    q, kv = c.n_head * c.head_dim, c.n_head_kv * c.head_dim
    return {
        "attn_q": (q, c.n_embd),
        "attn_k": (kv, c.n_embd),
        "attn_v": (kv, c.n_embd),
        "attn_output": (c.n_embd, q),
        "ffn_gate": (c.n_ff, c.n_embd),
        "ffn_up": (c.n_ff, c.n_embd),
        "ffn_down": (c.n_embd, c.n_ff),
    }


def stored(type_name: str, w: np.ndarray) -> np.ndarray:
    """What a float/quant type gives back for w (its rounding included)."""
    rows, cols = w.shape
    return tensor_types.dequantize(type_name, tensor_types.quantize(type_name, w), rows, cols)


def _norm(rng: np.random.Generator, n: int) -> np.ndarray:
    return (1.0 + 0.2 * rng.standard_normal(n)).astype(np.float32)


def _projection(rng: np.random.Generator, c: Config, rows: int, cols: int) -> Projection:
    if c.scaled:
        values = rng.choice(np.array([-1, 1], dtype=np.int8), size=(rows, cols))
        return Projection(
            values,
            np.ones(rows, np.float32),
            in_scale=rng.uniform(0.5, 1.5, cols).astype(np.float32),
            out_scale=(rng.uniform(0.5, 1.5, rows) / np.sqrt(cols)).astype(np.float32),
        )
    if tensor_types.tensor_type(c.weight_type).kind == "sign":
        values = rng.choice(np.array([-1, 1], dtype=np.int8), size=(rows, cols))
    else:
        values = rng.integers(-1, 2, size=(rows, cols), dtype=np.int8)
    scale = rng.uniform(0.5, 1.5) / np.sqrt(cols)  # a per-tensor BitLinear scale
    return Projection(values, np.full(rows, scale, np.float32))


def random_weights(c: Config, seed: int = 0) -> Weights:
    rng = np.random.default_rng(seed)
    embd = rng.standard_normal((c.n_vocab, c.n_embd)).astype(np.float32)
    w = Weights(c, stored(c.head_type, embd), _norm(rng, c.n_embd))
    if not c.tied:
        head = (rng.standard_normal((c.n_vocab, c.n_embd)) / np.sqrt(c.n_embd)).astype(np.float32)
        w.output = stored(c.head_type, head)
    for _ in range(c.n_layer):
        proj = {name: _projection(rng, c, *shape) for name, shape in _projection_shapes(c).items()}
        layer = Layer(_norm(rng, c.n_embd), _norm(rng, c.n_embd), proj)
        if c.sub_norms:
            layer.attn_sub_norm = _norm(rng, c.n_head * c.head_dim)
            layer.ffn_sub_norm = _norm(rng, c.n_ff)
        if c.qk_norm:
            layer.attn_q_norm = _norm(rng, c.head_dim)
            layer.attn_k_norm = _norm(rng, c.head_dim)
        w.layers.append(layer)
    return w


@dataclass
class TensorData:
    data: np.ndarray  # the tensor's bytes (uint8)
    shape: tuple[int, ...]  # logical shape, numpy order: (rows, cols) or (n,)
    type_id: int


def _f32(v: np.ndarray) -> TensorData:
    return TensorData(v.astype("<f4").view(np.uint8), v.shape, 0)


def _float_matrix(type_name: str, m: np.ndarray) -> TensorData:
    t = tensor_types.tensor_type(type_name)
    return TensorData(tensor_types.quantize(type_name, m), m.shape, t.gguf_type)


def _rope_rows(v: np.ndarray, heads: int) -> np.ndarray:
    """Rows of a Q/K projection from rotate-half order to adjacent pairs, per head."""
    head_dim = v.shape[0] // heads
    return v.reshape(heads, 2, head_dim // 2, *v.shape[1:]).swapaxes(1, 2).reshape(v.shape)


def _stored_projection(c: Config, name: str, p: Projection) -> Projection:
    heads = {"attn_q": c.n_head, "attn_k": c.n_head_kv}.get(name)
    if c.rope_type != "norm" or heads is None:
        return p
    out_scale = None if p.out_scale is None else _rope_rows(p.out_scale, heads)
    return Projection(
        _rope_rows(p.values, heads), _rope_rows(p.row_scale, heads), p.in_scale, out_scale
    )


def gguf_tensors(w: Weights) -> dict[str, TensorData]:
    c = w.config
    bits = tensor_types.tensor_type(c.weight_type)
    out = {
        names.tensor(names.TOKEN_EMBD): _float_matrix(c.head_type, w.token_embd),
        names.tensor(names.OUTPUT_NORM): _f32(w.output_norm),
    }
    if w.output is not None:
        out[names.tensor(names.OUTPUT)] = _float_matrix(c.head_type, w.output)
    for i, layer in enumerate(w.layers):
        out[names.tensor(names.ATTN_NORM, layer=i)] = _f32(layer.attn_norm)
        out[names.tensor(names.FFN_NORM, layer=i)] = _f32(layer.ffn_norm)
        if layer.attn_sub_norm is not None and layer.ffn_sub_norm is not None:
            out[names.tensor(names.ATTN_SUB_NORM, layer=i)] = _f32(layer.attn_sub_norm)
            out[names.tensor(names.FFN_SUB_NORM, layer=i)] = _f32(layer.ffn_sub_norm)
        if layer.attn_q_norm is not None and layer.attn_k_norm is not None:
            out[names.tensor(names.ATTN_Q_NORM, layer=i)] = _f32(layer.attn_q_norm)
            out[names.tensor(names.ATTN_K_NORM, layer=i)] = _f32(layer.attn_k_norm)
        for name, p in layer.proj.items():
            base = getattr(names, name.upper())  # "attn_q" -> names.ATTN_Q
            p = _stored_projection(c, name, p)
            if bits.kind in ("ternary", "sign"):
                packed = tensor_types.pack(c.weight_type, p.values, p.row_scale)
            else:  # float weights hold value * scale (rounded to the type)
                packed = tensor_types.quantize(c.weight_type, p.values * p.row_scale[:, None])
            out[names.tensor(base, layer=i)] = TensorData(packed, p.values.shape, bits.gguf_type)
            if p.in_scale is not None and p.out_scale is not None:
                out[names.tensor(base, names.IN_SCALE, i)] = _f32(p.in_scale)
                out[names.tensor(base, names.OUT_SCALE, i)] = _f32(p.out_scale)
    return out


def gguf_metadata(c: Config) -> dict[str, tuple[Any, GGUFValueType]]:
    u32, f32 = GGUFValueType.UINT32, GGUFValueType.FLOAT32

    def at(template: str) -> str:
        return names.key(template, c.arch)

    scaling = (
        {
            at(names.ROPE_SCALING_TYPE): ("linear", GGUFValueType.STRING),
            at(names.ROPE_SCALING_FACTOR): (c.rope_scale, f32),
        }
        if c.rope_scale != 1
        else {}
    )
    head_dim = (
        {at(names.KEY_LENGTH): (c.key_length, u32), at(names.VALUE_LENGTH): (c.key_length, u32)}
        if c.key_length
        else {}
    )
    llama_cpp_keys = {
        names.NAME: ("test-" + c.arch, GGUFValueType.STRING),
        at(names.CONTEXT_LENGTH): (c.n_ctx_train, u32),
        at(names.EMBEDDING_LENGTH): (c.n_embd, u32),
        at(names.BLOCK_COUNT): (c.n_layer, u32),
        at(names.FEED_FORWARD_LENGTH): (c.n_ff, u32),
        at(names.HEAD_COUNT): (c.n_head, u32),
        at(names.HEAD_COUNT_KV): (c.n_head_kv, u32),
        at(names.LAYERNORM_RMS_EPS): (c.rms_eps, f32),
        at(names.ROPE_FREQ_BASE): (c.rope_theta, f32),
        at(names.ROPE_DIMENSION_COUNT): (c.head_dim, u32),
        at(names.VOCAB_SIZE): (c.n_vocab, u32),
    }
    bitllm_keys = {
        names.FORMAT_VERSION: (1, u32),
        names.ACTIVATION: (c.activation, GGUFValueType.STRING),
        names.ROPE_TYPE: (c.rope_type, GGUFValueType.STRING),
        names.SUB_NORMS: (c.sub_norms, GGUFValueType.BOOL),
        names.TIED_HEAD: (c.tied, GGUFValueType.BOOL),
        names.ACTIVATION_BITS: (c.act_bits, u32),
        names.POST_LAYERNORM_EPS: (c.post_layernorm_eps, f32),
    }
    own = {} if c.arch in FOREIGN_ARCHS else bitllm_keys
    return scaling | head_dim | llama_cpp_keys | own


def write_gguf(
    path: Path,
    arch: str,
    metadata: dict[str, tuple[Any, ...]],
    tensors: dict[str, TensorData],
) -> Path:
    """metadata: key -> (value, value type) or, for an array, (values, ARRAY, item type)."""
    writer = GGUFWriter(str(path), arch)
    for key, (value, vtype, *item_type) in metadata.items():
        writer.add_key_value(key, value, vtype, *item_type)
    for name, t in tensors.items():
        # Bytes as int8 so that gguf-py keeps the logical shape for our own type ids.
        writer.add_tensor(name, t.data.view(np.int8), raw_shape=t.shape, raw_dtype=t.type_id)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_model(path: Path, w: Weights) -> Path:
    return write_gguf(path, w.config.arch, gguf_metadata(w.config), gguf_tensors(w))
