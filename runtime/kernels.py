"""The kernel API: tensor types, ISAs, packing and matrix products on the native
library. Tests, benchmarks and acceptance checks use exactly these names."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from . import tensor_types
from .native import check, enum_names, library, pointer


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
    return {name: t.kind for name, t in tensor_types.TYPES.items()}


@cache
def isa_names() -> tuple[str, ...]:
    """ISA names, index = bl_isa, as the library spells them."""
    ffi, lib = library()
    return tuple(ffi.string(lib.bl_isa_name(i)).decode() for i in range(lib.BL_ISA_COUNT))


def isas() -> list[str]:
    """The ISAs this CPU and this build can run, scalar first."""
    _, lib = library()
    return [name for i, name in enumerate(isa_names()) if lib.bl_isa_supported(i)]


def default_isa() -> str:
    """What isa=None resolves to ($BITLLM_ISA if set, else the best available)."""
    _, lib = library()
    return isa_names()[check(lib.bl_isa_default())]


def loops_isa() -> str:
    """The ISA whose vector width norms, activation quantization and gates run at: the
    widest this CPU runs, capped by $BITLLM_ISA's (read once per process)."""
    _, lib = library()
    return isa_names()[lib.bl_loops_isa()]


def matrix_args(ffi: object, matrix: PackedMatrix) -> tuple:
    """The arguments every C entry that reads a packed matrix starts with:
    type, data, bytes, rows, cols."""
    data = pointer(ffi, matrix.data, "void *")
    return (matrix.type.encode(), data, matrix.nbytes, matrix.rows, matrix.cols)


def pack(type: str, values: np.ndarray, row_scale: np.ndarray) -> PackedMatrix:
    """Packs ternary/sign values int8 [rows, cols] with float32 row scales (in C)."""
    data = tensor_types.pack(type, values, row_scale)
    rows, cols = np.shape(values)
    return PackedMatrix(type, rows, cols, data)


def quantize(type: str, weights: np.ndarray) -> PackedMatrix:
    """Quantizes float32 [rows, cols] into a float or quant type (in C)."""
    data = tensor_types.quantize(type, weights)
    rows, cols = np.shape(weights)
    return PackedMatrix(type, rows, cols, data)


def from_bytes(type: str, data: np.ndarray, rows: int, cols: int) -> PackedMatrix:
    """Wraps already-packed bytes (e.g. from tensor_types or a GGUF file), size-checked."""
    return PackedMatrix(type, rows, cols, tensor_types.checked_bytes(type, data, rows, cols))


def unpack(matrix: PackedMatrix) -> tuple[np.ndarray, np.ndarray]:
    """Ternary/sign matrix -> (values int8 [rows, cols], row_scale float32 [rows]) (in C)."""
    return tensor_types.unpack(matrix.type, matrix.data, matrix.rows, matrix.cols)


def dequantize(matrix: PackedMatrix) -> np.ndarray:
    """Any matrix -> float32 [rows, cols] (in C)."""
    return tensor_types.dequantize(matrix.type, matrix.data, matrix.rows, matrix.cols)


def isa_index(isa: str | None) -> int:
    """bl_isa of an ISA name (None: BL_ISA_AUTO), or ValueError."""
    if isa is None:
        return int(library()[1].BL_ISA_AUTO)
    names = isa_names()
    if isa not in names:
        raise ValueError(f"unknown ISA {isa!r} (known: {', '.join(names)})")
    return names.index(isa)


def algo_index(algo: str | None) -> int:
    """bl_algo of an algorithm name; None is "auto"."""
    by_name = {name: value for value, name in enum_names("bl_algo", "BL_ALGO_").items()}
    name = "auto" if algo is None else algo
    if name not in by_name:
        raise ValueError(f"unknown algo {algo!r} ({', '.join(by_name)})")
    return by_name[name]


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
    options = ffi.new(
        "bl_matmul_options *",
        {
            "isa": isa_index(isa),
            "threads": threads or 0,
            "act_bits": act_bits,
            "algo": algo_index(algo),
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
