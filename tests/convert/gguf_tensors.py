"""Reading converted tensors back for the tests, with the runtime's reader and the codecs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType
from gguf import quants as gguf_quants

from bitllm.runtime import tensor_types
from bitllm.runtime.gguf_reader import GGUFFile

LLAMA_CPP = {"tq2_0": GGMLQuantizationType.TQ2_0, "tq1_0": GGMLQuantizationType.TQ1_0}


def _rows_cols(shape: tuple[int, ...]) -> tuple[int, int]:
    return (1, shape[0]) if len(shape) == 1 else shape


def dequantized(gguf: GGUFFile, name: str) -> np.ndarray:
    """A tensor as float32 in its logical shape, whatever its type."""
    info = gguf.tensors[name]
    rows, cols = _rows_cols(info.shape)
    data = gguf.tensor_bytes(name)
    if info.type_name in LLAMA_CPP:
        values = gguf_quants.dequantize(data.reshape(rows, -1), LLAMA_CPP[info.type_name])
    else:
        values = tensor_types.dequantize(info.type_name, data, rows, cols)
    return values.reshape(info.shape)


def packed_values(gguf: GGUFFile, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(values int8, row scales float32) of a bt2 / bt1 / bs1 tensor."""
    info = gguf.tensors[name]
    rows, cols = info.shape
    return tensor_types.unpack(info.type_name, gguf.tensor_bytes(name), rows, cols)


def open_gguf(path: Path) -> GGUFFile:
    return GGUFFile(path)
