"""Output tensor types, all from the native library's table (through runtime/tensor_types.py):
bitllm's own and llama.cpp's, TQ1_0/TQ2_0 included.

Each encoder takes float32 or ternary/sign values and returns the tensor's bytes in GGUF order;
the codecs themselves live in the native library, never here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..runtime import tensor_types
from .errors import ConvertError
from .weights import unpacked_ternary

# llama.cpp's ternary types: a linear weight's --outtype, never a head type
LLAMA_CPP_TERNARY = ("tq2_0", "tq1_0")
TERNARY_TYPES = tensor_types.names("ternary")
(SIGN_TYPE,) = tensor_types.names("sign")  # what OneBit's weights take for a ternary --outtype
DENSE_OUTTYPES = ("f16", "f32")  # linear weights as plain floats: a reference, not a product
# llama.cpp's sign / ternary types with an f16 scale per block, what Bonsai's unpacked weights
# are: the values each holds
GROUP_TYPE_VALUES = {"q1_0": "sign", "q2_0": "ternary", "q2_0_g128": "ternary"}
GROUP_OUTTYPES = tuple(GROUP_TYPE_VALUES)
# the default head for every other checkpoint: of the measured head types, the fewest bytes
# whose KL divergence stays in llama.cpp's q8_0 / q6_K class (BENCHMARKS.md, "The default head")
DEFAULT_HEAD = "q8_0"
OUTTYPES = TERNARY_TYPES + LLAMA_CPP_TERNARY + DENSE_OUTTYPES + GROUP_OUTTYPES
# the default (q8_0) first, the float references smallest first; the group types only for a
# checkpoint whose embedding already is sign or trit x a group scale (plan.py checks)
HEAD_TYPES = tuple(t for t in tensor_types.names("quant") if t not in LLAMA_CPP_TERNARY) + tuple(
    sorted(tensor_types.names("float"), key=lambda name: tensor_types.TYPES[name].block_bytes)
)


@dataclass(frozen=True)
class Target:
    name: str  # type name as bit-inspect shows it
    type_id: int

    def nbytes(self, shape: tuple[int, ...]) -> int:
        rows, cols = (1, shape[0]) if len(shape) == 1 else shape
        return tensor_types.tensor_type(self.name).tensor_bytes(rows, cols)


def bits_per_weight(name: str) -> float:
    """Of one of bitllm's own types, row padding aside."""
    t = tensor_types.tensor_type(name)
    return 8 * t.block_bytes / t.block_weights


def group_type_holding(values: np.ndarray, name: str) -> str | None:
    """The group type of fewest bits that holds these float values exactly (sign or trit x
    one scale per block), or None."""
    for type_name in sorted(GROUP_OUTTYPES, key=bits_per_weight):
        if holds_exactly(type_name, values, name):
            return type_name
    return None


def holds_exactly(type_name: str, values: np.ndarray, name: str) -> bool:
    try:
        unpacked_ternary(
            values,
            tensor_types.tensor_type(type_name).block_weights,
            name,
            signs=GROUP_TYPE_VALUES[type_name] == "sign",
        )
    except ConvertError:
        return False
    return True


def target(name: str) -> Target:
    return Target(name, tensor_types.tensor_type(name).gguf_type)


def check_row_length(type_name: str, tensor: str, cols: int) -> None:
    """Block types from llama.cpp need whole blocks in a row (so do loaders, ours included);
    bitllm's ternary and sign types pad, so any length goes."""
    if type_name in LLAMA_CPP_TERNARY and cols % 256:
        raise ConvertError(
            f"tensor {tensor!r}: {type_name} needs rows that are a multiple of 256 weights, "
            f"this one has {cols}; use --outtype {' or '.join(TERNARY_TYPES)}, which pad exactly"
        )
    t = tensor_types.TYPES.get(type_name)
    if t and t.kind == "quant" and cols % t.block_weights:
        fits = [h for h in HEAD_TYPES if cols % tensor_types.TYPES[h].block_weights == 0]
        raise ConvertError(
            f"tensor {tensor!r}: {type_name} needs rows that are a multiple of "
            f"{t.block_weights} weights, this one has {cols}; use --head-type {' or '.join(fits)}"
        )


def encode_floats(type_name: str, values: np.ndarray) -> np.ndarray:
    """float32 [rows, cols] (or [n]) -> bytes of a float or quant type (llama.cpp's ternary
    types among them)."""
    rows = values.reshape(-1, values.shape[-1]) if values.ndim > 1 else values.reshape(1, -1)
    return tensor_types.quantize(type_name, rows)


def encode_linear(type_name: str, values: np.ndarray, row_scale: np.ndarray) -> np.ndarray:
    """Ternary/sign values int8 [rows, cols] with float32 row scales -> bytes of `type_name`.

    Packed types keep values and scales apart; the float and llama.cpp types store the product.
    A scale per group of columns ([rows, groups]) is only for the float and llama.cpp types.
    """
    if type_name in tensor_types.TYPES and tensor_types.TYPES[type_name].is_bits:
        return tensor_types.pack(type_name, values, row_scale)
    scale = row_scale.astype(np.float32)
    if scale.ndim == 1:
        scale = scale[:, None]
    scale = np.repeat(scale, values.shape[1] // scale.shape[1], axis=1)
    dense = values.astype(np.float32) * scale
    return encode_floats(type_name, dense)
