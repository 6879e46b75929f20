"""bitnet.cpp's I2_S tensors and files, written from docs/INTEROP.md ("I2_S (id 36,
bitnet.cpp only)") for the tests: never from bitllm's own loader.

A tensor of n = rows x cols ternary weights is n / 4 bytes of 2-bit codes (-1 -> 0, 0 -> 1,
+1 -> 2) in one of three packings, then a 32-byte tail whose first 4 bytes are the tensor's
float32 scale (weight = trit x scale). A file is a tiny 2B-4T-shaped model as bitnet.cpp's
converter lays it out: no bitllm.* keys, the arch's own key prefix, an F16 token embedding,
a tied head and I2_S projections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from gguf import GGUFValueType

from bitllm.convert import gguf_names as names
from tests.model.builder import TensorData, Weights, gguf_metadata, gguf_tensors, write_gguf

I2S_TYPE_ID = 36
TAIL_BYTES = 32
PACKINGS = ("x86", "arm", "x86-1x4")
Packing = Literal["x86", "arm", "x86-1x4"]
# What fills the tail after the scale: B's Python converter writes zeros; B's older
# convert-ms-to-gguf-bitnet.py repeats the scale 8 times; B's C quantizer leaves the
# 28 bytes unwritten, so they may hold anything.
Tail = Literal["zeros", "repeated", "garbage"]
LLAMA_FTYPE_MOSTLY_I2_S = 40


def codes(values: np.ndarray) -> np.ndarray:
    """Trits -1, 0, +1 as I2_S codes 0, 1, 2."""
    if values.size and (values.min() < -1 or values.max() > 1):
        raise ValueError("I2_S holds ternary weights only")
    return (values.astype(np.int16) + 1).astype(np.uint8)


def _four_in_a_byte(groups: np.ndarray) -> np.ndarray:
    """groups [..., 4, m] of codes -> [..., m] bytes, group 0 in bits 7-6 ... group 3 in 1-0."""
    return (
        (groups[..., 0, :] << 6)
        | (groups[..., 1, :] << 4)
        | (groups[..., 2, :] << 2)
        | groups[..., 3, :]
    ).astype(np.uint8)


def pack_codes(values: np.ndarray, packing: Packing = "x86") -> np.ndarray:
    """The n / 4 code bytes of a rows x cols matrix of trits."""
    rows, cols = values.shape
    c = codes(values)
    if packing == "x86-1x4":  # byte g*cols + c: column c of rows 4g .. 4g+3
        if rows % 4:
            raise ValueError("the x86-1x4 packing needs rows in groups of 4")
        return _four_in_a_byte(c.reshape(rows // 4, 4, cols)).reshape(-1)
    block = {"x86": 128, "arm": 64}[packing]  # weights j, span+j, 2span+j, 3span+j in byte j
    if c.size % block:
        raise ValueError(f"the {packing} packing needs a multiple of {block} weights")
    return _four_in_a_byte(c.reshape(-1, 4, block // 4)).reshape(-1)


def tail(scale: float, fill: Tail = "zeros") -> np.ndarray:
    scale_bytes = np.frombuffer(np.float32(scale).tobytes(), np.uint8)
    if fill == "repeated":
        return np.tile(scale_bytes, TAIL_BYTES // 4)
    rest = np.zeros(TAIL_BYTES - 4, np.uint8)
    if fill == "garbage":
        rest = np.random.default_rng(7).integers(0, 256, TAIL_BYTES - 4, dtype=np.uint8)
    return np.concatenate([scale_bytes, rest])


def encode_i2s(
    values: np.ndarray, scale: float, packing: Packing = "x86", fill: Tail = "zeros"
) -> np.ndarray:
    """A whole I2_S tensor's bytes: codes, then the 32-byte tail."""
    return np.concatenate([pack_codes(values, packing), tail(scale, fill)])


def i2s_tensors(w: Weights, packing: Packing = "x86", fill: Tail = "zeros") -> dict:
    """The model's tensors with every projection as I2_S (one scale per tensor)."""
    out = gguf_tensors(w)
    for i, layer in enumerate(w.layers):
        for name, p in layer.proj.items():
            scale = float(p.row_scale[0])
            if not np.all(p.row_scale == scale):
                raise ValueError(f"{name}: I2_S has one scale per tensor")
            key = names.tensor(getattr(names, name.upper()), layer=i)
            out[key] = TensorData(
                encode_i2s(p.values, scale, packing, fill), p.values.shape, I2S_TYPE_ID
            )
    return out


def i2s_metadata(w: Weights, arch: str) -> dict:
    """llama.cpp's keys under arch's prefix, none of bitllm's, and file_type 40."""
    own = w.config.arch + "."
    meta = {
        (arch + "." + k.removeprefix(own) if k.startswith(own) else k): v
        for k, v in gguf_metadata(w.config).items()
        if not k.startswith("bitllm.")
    }
    meta["general.file_type"] = (LLAMA_FTYPE_MOSTLY_I2_S, GGUFValueType.UINT32)
    return meta


def write_i2s_model(
    path: Path,
    w: Weights,
    arch: str = "bitnet-b1.58",
    packing: Packing = "x86",
    fill: Tail = "zeros",
    tensors: dict[str, TensorData] | None = None,
) -> Path:
    """w (a bitnet-b1.58 fixture with an f16 head) as bitnet.cpp's I2_S file; tensors
    replace some of the file's own (hostile files)."""
    all_tensors = i2s_tensors(w, packing, fill) | (tensors or {})
    return write_gguf(path, arch, i2s_metadata(w, arch), all_tensors)


def i2s_from_gguf(
    src: Path, dst: Path, arch: str = "bitnet-b1.58", packing: Packing = "x86"
) -> Path:
    """A bitllm GGUF of 2B-4T's graph (bt2 projections with one scale per tensor) rewritten
    as bitnet.cpp lays it out: the same weights as I2_S, the metadata under arch's prefix
    without bitllm.* keys (for the load measurements on 2B-4T-shaped files)."""
    from gguf import GGUFWriter

    from bitllm.runtime import tensor_types
    from bitllm.runtime.gguf_reader import GGUFFile

    with GGUFFile(src) as gguf:
        own = str(gguf.metadata["general.architecture"]) + "."
        writer = GGUFWriter(str(dst), arch)
        types = gguf.value_types
        for key, value in gguf.metadata.items():
            if key.startswith("bitllm.") or key in ("general.architecture", "GGUF.version"):
                continue
            vtype, itype = types[key]
            name = arch + "." + key.removeprefix(own) if key.startswith(own) else key
            if isinstance(value, np.ndarray):
                value = value.tolist()
            writer.add_key_value(name, value, vtype, sub_type=itype)
        writer.add_key_value("general.file_type", LLAMA_FTYPE_MOSTLY_I2_S, GGUFValueType.UINT32)
        for name, t in gguf.tensors.items():
            data = np.array(gguf.tensor_bytes(name))
            type_id = t.type_id
            if t.type_name == "bt2":
                rows, cols = t.shape
                values, scales = tensor_types.unpack("bt2", data, rows, cols)
                if not np.all(scales == scales[0]):
                    raise ValueError(f"{name}: I2_S has one scale per tensor")
                data, type_id = encode_i2s(values, float(scales[0]), packing), I2S_TYPE_ID
            writer.add_tensor(name, data.view(np.int8), raw_shape=t.shape, raw_dtype=type_id)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return dst
