"""Tensor types as the native library defines them (native/src/types/, one table in
registry.c): each type's layout facts, read from that table, and its reference codecs, called
through the C API. docs/FORMAT.md describes the byte layouts.

The table is read on first use, not at import, so importing bitllm does not load the library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np

from .native import check, enum_names, library, pointer


@dataclass(frozen=True)
class TensorType:
    name: str
    gguf_type: int
    kind: str  # bl_kind without its prefix: "float", "quant", "ternary" or "sign"
    block_weights: int
    block_bytes: int
    row_scale: bool  # a float32 scale per row follows the packed rows

    @property
    def is_bits(self) -> bool:
        """Ternary or sign: packed from int8 values with a scale per row (pack/unpack)."""
        return self.kind in ("ternary", "sign")

    # The sizes are computed here from the table's fields (what FORMAT.md says they mean),
    # not through bl_tensor_bytes, so that a hostile file's huge shape stays an exact Python
    # integer instead of overflowing int64; a test holds the two to agreement.
    def padded_cols(self, cols: int) -> int:
        return -(-cols // self.block_weights) * self.block_weights

    def row_bytes(self, cols: int) -> int:
        """Packed bytes of one row, without its row scale."""
        return self.padded_cols(cols) // self.block_weights * self.block_bytes

    def tensor_bytes(self, rows: int, cols: int) -> int:
        return rows * self.row_bytes(cols) + (4 * rows if self.row_scale else 0)


@cache
def _read_table() -> tuple[TensorType, ...]:
    ffi, lib = library()
    kinds = enum_names("bl_kind", "BL_KIND_")
    info = ffi.new("bl_type_info *")
    types = []
    for i in range(lib.bl_type_count()):
        check(lib.bl_type_info_at(i, info))
        types.append(
            TensorType(
                name=ffi.string(info.name).decode(),
                gguf_type=info.gguf_type,
                kind=kinds[info.kind],
                block_weights=info.block_weights,
                block_bytes=info.block_bytes,
                row_scale=info.row_scale != 0,
            )
        )
    return tuple(types)


class _TypeTable(Mapping):
    """The library's types keyed by one of their fields, read when first looked at. Where
    several types share a key (GGUF id 42: q2_0 in groups of 64 or of 128, which a reader
    tells apart by a tensor's byte size), the first of the library's table is kept."""

    def __init__(self, key: Callable[[TensorType], object]) -> None:
        self._key = key

    @cached_property
    def _items(self) -> dict:
        items: dict = {}
        for t in _read_table():
            items.setdefault(self._key(t), t)
        return items

    def __getitem__(self, key: object) -> TensorType:
        return self._items[key]

    def __iter__(self) -> Iterator:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


TYPES: Mapping[str, TensorType] = _TypeTable(lambda t: t.name)
TYPES_BY_GGUF_ID: Mapping[int, TensorType] = _TypeTable(lambda t: t.gguf_type)


def tensor_type(name: str) -> TensorType:
    try:
        return TYPES[name]
    except KeyError:
        raise ValueError(f"unknown tensor type {name!r} (known: {', '.join(TYPES)})") from None


def names(*kinds: str) -> tuple[str, ...]:
    """The names of the types of these kinds, in the library's order."""
    return tuple(t.name for t in _read_table() if t.kind in kinds)


def _as_int8(name: str, values: np.ndarray) -> np.ndarray:
    """values as contiguous int8 [rows, cols]; a value int8 cannot hold is named, not wrapped."""
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"{name}: values must be 2-D [rows, cols], got shape {values.shape}")
    if values.dtype == np.int8:
        return np.ascontiguousarray(values)
    with np.errstate(invalid="ignore"):  # NaN: reported below
        as_int8 = values.astype(np.int8)
    changed = as_int8 != values
    if changed.any():
        r, c = np.argwhere(changed)[0]
        raise ValueError(
            f"{name}: value {values[r, c]} at row {r}, column {c} is not a ternary or sign value"
        )
    return as_int8


def _check_shape(name: str, rows: int, cols: int) -> None:
    if rows <= 0 or cols <= 0:
        raise ValueError(f"{name}: shape must be positive, got {rows} x {cols}")


def checked_bytes(name: str, data: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """data as contiguous uint8, of the size a rows x cols tensor of type name takes."""
    t = tensor_type(name)
    data = np.ascontiguousarray(data, dtype=np.uint8).ravel()
    _check_shape(name, rows, cols)
    if data.size != t.tensor_bytes(rows, cols):
        raise ValueError(
            f"{t.name}: a {rows} x {cols} tensor takes {t.tensor_bytes(rows, cols)} bytes, "
            f"got {data.size}"
        )
    return data


def pack(name: str, values: np.ndarray, row_scale: np.ndarray) -> np.ndarray:
    """Ternary/sign values int8 [rows, cols] and float32 row scales -> packed uint8 bytes."""
    t = tensor_type(name)
    v = _as_int8(name, values)
    scale = np.ascontiguousarray(row_scale, dtype=np.float32)
    if scale.shape != (v.shape[0],):
        raise ValueError(f"{name}: row_scale must have shape ({v.shape[0]},), got {scale.shape}")
    _check_shape(name, *v.shape)
    out = np.empty(t.tensor_bytes(*v.shape), dtype=np.uint8)
    ffi, lib = library()
    check(
        lib.bl_pack(
            name.encode(),
            pointer(ffi, v, "int8_t *"),
            pointer(ffi, scale, "float *"),
            *v.shape,
            pointer(ffi, out, "void *"),
            out.size,
        )
    )
    return out


def quantize(name: str, weights: np.ndarray) -> np.ndarray:
    """Float/quant types: float32 [rows, cols] -> packed uint8 bytes."""
    t = tensor_type(name)
    x = np.ascontiguousarray(weights, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name}: weights must be 2-D [rows, cols], got shape {x.shape}")
    _check_shape(name, *x.shape)
    out = np.empty(t.tensor_bytes(*x.shape), dtype=np.uint8)
    ffi, lib = library()
    rows, cols = x.shape
    check(
        lib.bl_quantize(
            name.encode(),
            pointer(ffi, x, "float *"),
            rows,
            cols,
            pointer(ffi, out, "void *"),
            out.size,
        )
    )
    return out


def unpack(name: str, data: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Packed ternary/sign bytes -> (values int8 [rows, cols], row_scale float32 [rows])."""
    data = checked_bytes(name, data, rows, cols)
    values = np.empty((rows, cols), dtype=np.int8)
    scale = np.empty(rows, dtype=np.float32)
    ffi, lib = library()
    check(
        lib.bl_unpack(
            name.encode(),
            pointer(ffi, data, "void *"),
            data.size,
            rows,
            cols,
            pointer(ffi, values, "int8_t *"),
            pointer(ffi, scale, "float *"),
        )
    )
    return values, scale


def dequantize(name: str, data: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Packed bytes of any type -> float32 [rows, cols] (ternary/sign: value * row scale)."""
    data = checked_bytes(name, data, rows, cols)
    out = np.empty((rows, cols), dtype=np.float32)
    ffi, lib = library()
    check(
        lib.bl_dequantize(
            name.encode(),
            pointer(ffi, data, "void *"),
            data.size,
            rows,
            cols,
            pointer(ffi, out, "float *"),
        )
    )
    return out
