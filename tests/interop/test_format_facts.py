"""docs/INTEROP.md's byte tables, checked against files llama.cpp wrote (opt-in: -m slow).

ggml_decoders.py decodes every matrix of a `pure` llama.cpp file from the documented layout
alone. Where gguf-py (llama.cpp's own Python package) can dequantize the type, the two must
agree exactly; for the ternary and sign types, the decoded weights must equal what the
documented reference quantizer makes of the f16 weights the file was quantized from, which
also pins what each scale means. Each tensor's stored size must match the documented block size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bitllm.runtime.gguf_reader import GGUFFile
from tests.interop.ggml_decoders import BLOCK_TYPES, decode_rows
from tests.interop.llama_cpp_oracle import FileFactory, tensor_types

pytestmark = pytest.mark.slow

GGUF_PY_TYPES = ("q8_0", "q4_0", "q4_k", "q5_k", "q6_k", "tq1_0", "tq2_0")
QUANTIZER_FACTS = ("q1_0", "q2_0", "tq1_0", "tq2_0")
ALIGNMENT = 32  # general.alignment of llama.cpp's files


def _matrices(path: Path, type_name: str) -> dict[str, np.ndarray]:
    """Every `type_name` matrix of the file, decoded from its bytes with ggml_decoders."""
    weights, nbytes, _ = BLOCK_TYPES[type_name]
    decoded = {}
    with GGUFFile(path) as file:
        names = [name for name, t in tensor_types(path).items() if t == type_name]
        for name in names:
            rows, cols = file.tensors[name].shape
            data = file.tensor_bytes(name)
            size = rows * cols // weights * nbytes
            assert size <= len(data) < size + ALIGNMENT, (name, size, len(data))
            decoded[name] = decode_rows(data, type_name, rows, cols)
    assert decoded, f"{path.name} holds no {type_name} matrix"
    return decoded


def _raw_rows(path: Path, name: str, type_name: str) -> np.ndarray:
    weights, nbytes, _ = BLOCK_TYPES[type_name]
    with GGUFFile(path) as file:
        rows, cols = file.tensors[name].shape
        row_bytes = cols // weights * nbytes
        return file.tensor_bytes(name)[: rows * row_bytes].reshape(rows, row_bytes).copy()


@pytest.mark.parametrize("type_name", GGUF_PY_TYPES)
def test_documented_layout_matches_gguf_py(llama_cpp_file: FileFactory, type_name: str) -> None:
    import gguf
    from gguf.quants import dequantize

    path = llama_cpp_file(type_name)
    qtype = gguf.GGMLQuantizationType[type_name.upper()]
    for name, decoded in _matrices(path, type_name).items():
        reference = dequantize(_raw_rows(path, name, type_name), qtype)
        np.testing.assert_array_equal(decoded, reference, err_msg=name)


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """C's lroundf / roundf (in float64: in float32, 0.49999997 + 0.5 would round up to 1)."""
    return (np.sign(x) * np.floor(np.abs(x).astype(np.float64) + 0.5)).astype(np.float32)


def reference_quantized(type_name: str, weights: np.ndarray) -> np.ndarray:
    """What docs/INTEROP.md says llama.cpp's reference quantizer makes of float32 weights
    (one block per row of `weights`), decoded back to float32."""
    magnitude = np.abs(weights)
    if type_name == "q1_0":  # d = mean |w|, summed in order in float32; sign bit = w >= 0
        d = (np.cumsum(magnitude, axis=1, dtype=np.float32)[:, -1:] / np.float32(128)).astype(
            np.float16
        )
        return np.where(weights >= 0, 1, -1).astype(np.float32) * d.astype(np.float32)
    amax = magnitude.max(axis=1, keepdims=True)
    inverse = np.divide(np.float32(1), amax, out=np.zeros_like(amax), where=amax > 0)
    codes = _round_half_away(weights * inverse)
    if type_name == "q2_0":
        codes = np.clip(codes, -1, 2)
    return codes * amax.astype(np.float16).astype(np.float32)


@pytest.mark.parametrize("type_name", QUANTIZER_FACTS)
def test_documented_scale_and_codes_match_llama_cpp(
    llama_cpp_file: FileFactory, type_name: str
) -> None:
    source = llama_cpp_file("f16")
    block = BLOCK_TYPES[type_name][0]
    with GGUFFile(source) as f16_file:
        for name, decoded in _matrices(llama_cpp_file(type_name), type_name).items():
            weights = f16_file.tensor_bytes(name).view(np.float16).astype(np.float32)
            expected = reference_quantized(type_name, weights.reshape(-1, block))
            np.testing.assert_array_equal(decoded.reshape(-1, block), expected, err_msg=name)
