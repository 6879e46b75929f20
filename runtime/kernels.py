"""The kernel API: tensor types, ISAs, packing and matrix products on the native
library. Tests, benchmarks and acceptance checks use exactly these names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import tensor_types
from .native import check, library

_ISAS = ("scalar", "avx2", "avx512", "neon", "neon_dotprod")
_ALGOS = {None: 0, "auto": 0, "mad": 1, "lut": 2}


@dataclass(frozen=True)
class PackedMatrix:
    """A rows x cols weight matrix in one of the tensor types (docs/FORMAT.md)."""

    type: str
    rows: int
    cols: int
    data: np.ndarray  # uint8, tensor_types.tensor_type(type).tensor_bytes(rows, cols)

    @property
    def nbytes(self) -> int:
        return int(self.data.size)


def types() -> dict[str, str]:
    """Type name -> kind ("float", "quant", "ternary", "sign"), as the library knows them."""
    ffi, lib = library()
    info = ffi.new("bl_type_info *")
    kinds = {0: "float", 1: "quant", 2: "ternary", 3: "sign"}
    out = {}
    for i in range(lib.bl_type_count()):
        check(lib.bl_type_info_at(i, info))
        out[ffi.string(info.name).decode()] = kinds[info.kind]
    return out


def isas() -> list[str]:
    """The ISAs this CPU and this build can run, scalar first."""
    _, lib = library()
    return [name for i, name in enumerate(_ISAS) if lib.bl_isa_supported(i)]


def default_isa() -> str:
    """What isa=None resolves to ($BITLLM_ISA if set, else the best available)."""
    _, lib = library()
    return _ISAS[check(lib.bl_isa_default())]


def pointer(ffi: object, array: np.ndarray, ctype: str) -> object:
    """A C pointer of type ctype into array's buffer."""
    return ffi.cast(ctype, ffi.from_buffer(array))  # type: ignore[attr-defined]


def matrix_args(ffi: object, matrix: PackedMatrix) -> tuple:
    """The arguments every C entry that reads a packed matrix starts with:
    type, data, bytes, rows, cols."""
    data = pointer(ffi, matrix.data, "void *")
    return (matrix.type.encode(), data, matrix.nbytes, matrix.rows, matrix.cols)


def pack(type: str, values: np.ndarray, row_scale: np.ndarray) -> PackedMatrix:
    """Packs ternary/sign values int8 [rows, cols] with float32 row scales (in C)."""
    ffi, lib = library()
    values = np.ascontiguousarray(values, dtype=np.int8)
    if values.ndim != 2:
        raise ValueError(f"values must be 2-D [rows, cols], got shape {values.shape}")
    scale = np.ascontiguousarray(row_scale, dtype=np.float32)
    rows, cols = values.shape
    if scale.shape != (rows,):
        raise ValueError(f"row_scale must have shape ({rows},), got {scale.shape}")
    size = check(lib.bl_tensor_bytes(type.encode(), rows, cols))
    data = np.empty(size, dtype=np.uint8)
    check(
        lib.bl_pack(
            type.encode(),
            pointer(ffi, values, "int8_t *"),
            pointer(ffi, scale, "float *"),
            rows,
            cols,
            pointer(ffi, data, "void *"),
            size,
        )
    )
    return PackedMatrix(type, rows, cols, data)


def quantize(type: str, weights: np.ndarray) -> PackedMatrix:
    """Quantizes float32 [rows, cols] into a float or quant type (in C)."""
    ffi, lib = library()
    w = np.ascontiguousarray(weights, dtype=np.float32)
    if w.ndim != 2:
        raise ValueError(f"weights must be 2-D [rows, cols], got shape {w.shape}")
    rows, cols = w.shape
    size = check(lib.bl_tensor_bytes(type.encode(), rows, cols))
    data = np.empty(size, dtype=np.uint8)
    check(
        lib.bl_quantize(
            type.encode(),
            pointer(ffi, w, "float *"),
            rows,
            cols,
            pointer(ffi, data, "void *"),
            size,
        )
    )
    return PackedMatrix(type, rows, cols, data)


def from_bytes(type: str, data: np.ndarray, rows: int, cols: int) -> PackedMatrix:
    """Wraps already-packed bytes (e.g. from tensor_types or a GGUF file), size-checked."""
    expected = tensor_types.tensor_type(type).tensor_bytes(rows, cols)
    data = np.ascontiguousarray(data, dtype=np.uint8).ravel()
    if data.size != expected:
        raise ValueError(
            f"{type}: a {rows} x {cols} matrix takes {expected} bytes, got {data.size}"
        )
    return PackedMatrix(type, rows, cols, data)


def unpack(matrix: PackedMatrix) -> tuple[np.ndarray, np.ndarray]:
    """Ternary/sign matrix -> (values int8 [rows, cols], row_scale float32 [rows]) (in C)."""
    ffi, lib = library()
    values = np.empty((matrix.rows, matrix.cols), dtype=np.int8)
    scale = np.empty(matrix.rows, dtype=np.float32)
    check(
        lib.bl_unpack(
            *matrix_args(ffi, matrix),
            pointer(ffi, values, "int8_t *"),
            pointer(ffi, scale, "float *"),
        )
    )
    return values, scale


def dequantize(matrix: PackedMatrix) -> np.ndarray:
    """Any matrix -> float32 [rows, cols] (in C)."""
    ffi, lib = library()
    out = np.empty((matrix.rows, matrix.cols), dtype=np.float32)
    check(
        lib.bl_dequantize(
            *matrix_args(ffi, matrix),
            pointer(ffi, out, "float *"),
        )
    )
    return out


def _isa_index(isa: str | None) -> int:
    if isa is None:
        return -1
    if isa not in _ISAS:
        raise ValueError(f"unknown ISA {isa!r} (known: {', '.join(_ISAS)})")
    return _ISAS.index(isa)


def activations_for(matrix: PackedMatrix, x: np.ndarray) -> np.ndarray:
    """x as a contiguous float32 [n, cols] for matrix (a 1-D x is one row), or ValueError."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != matrix.cols:
        raise ValueError(
            f"x must be [n, {matrix.cols}] for a {matrix.rows} x {matrix.cols} matrix, "
            f"got shape {x.shape}"
        )
    return x


def matmul(
    matrix: PackedMatrix,
    x: np.ndarray,
    isa: str | None = None,
    threads: int | None = None,
    act_bits: int = 8,
    algo: str | None = None,
) -> np.ndarray:
    """y [n, rows] = x [n, cols] . W^T.

    Ternary/sign: x is quantized per row (act_bits 8: s = 127/max|x|; 16: s = 32767/max|x|),
    multiplied in integers and rescaled by row_scale / s. algo: None/"auto", "mad" or "lut".
    """
    ffi, lib = library()
    x = activations_for(matrix, x)
    if algo not in _ALGOS:
        raise ValueError(f"unknown algo {algo!r} (auto, mad, lut)")
    options = ffi.new(
        "bl_matmul_options *",
        {
            "isa": _isa_index(isa),
            "threads": threads or 0,
            "act_bits": act_bits,
            "algo": _ALGOS[algo],
        },
    )
    y = np.empty((x.shape[0], matrix.rows), dtype=np.float32)
    check(
        lib.bl_matmul(
            *matrix_args(ffi, matrix),
            pointer(ffi, x, "float *"),
            x.shape[0],
            pointer(ffi, y, "float *"),
            options,
        )
    )
    return y
