"""GGUF files as Python values, read through libbitllm's one GGUF parser (bl_gguf_* in
bitllm.h): the same parse that loads a model's weights, so every check is made once.

The library maps and validates the whole file when it opens (counts, lengths, offsets,
sizes, overlaps): a damaged file is a GGUFError naming the file and the problem. Tensor
types bitllm does not run (llama.cpp's, bitnet.cpp's) are kept by id, never refused; ggml's
own are sized from gguf-py's GGML_QUANT_SIZES so that their extents are checked too.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .native import library

if TYPE_CHECKING:
    from gguf import GGUFValueType

# ggml's type ids from here on are ambiguous: bitnet.cpp uses 36/38/39 for I2_S/TL1/TL2 where
# newer llama.cpp has other types, so sizing them could reject a good file. (The library sizes
# I2_S itself, as bitnet.cpp does: it loads those tensors, native/src/model/repack.c.)
FIRST_AMBIGUOUS_TYPE_ID = 36


class GGUFError(ValueError):
    """A file that is not a valid GGUF, with the file name and the problem in the message."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # numpy order: ggml's ne reversed, so (rows, cols) for a matrix
    type_id: int
    type_name: str | None  # None for a type id this reader does not know
    offset: int  # absolute byte offset of the data in the file
    nbytes: int | None  # None when the type is unknown, so the size cannot be computed

    @property
    def ne(self) -> tuple[int, ...]:
        """ggml's dimension order (innermost first)."""
        return tuple(reversed(self.shape))


@cache
def _numpy_types() -> dict[int, np.dtype]:
    """The numpy type of each numeric value type of the library's bl_gguf_value_type."""
    _, lib = library()
    return {
        lib.BL_GGUF_U8: np.dtype("<u1"),
        lib.BL_GGUF_I8: np.dtype("<i1"),
        lib.BL_GGUF_U16: np.dtype("<u2"),
        lib.BL_GGUF_I16: np.dtype("<i2"),
        lib.BL_GGUF_U32: np.dtype("<u4"),
        lib.BL_GGUF_I32: np.dtype("<i4"),
        lib.BL_GGUF_F32: np.dtype("<f4"),
        lib.BL_GGUF_BOOL: np.dtype("u1"),
        lib.BL_GGUF_U64: np.dtype("<u8"),
        lib.BL_GGUF_I64: np.dtype("<i8"),
        lib.BL_GGUF_F64: np.dtype("<f8"),
    }


@cache
def _ggml_types() -> tuple[Any, list[Any]]:
    """ggml's own tensor types as the library's bl_gguf_foreign_type table (their names and
    sizes, so that it checks their tensors), and the name strings it points at (kept alive
    with it: the table is cached for the life of the process)."""
    from gguf import GGML_QUANT_SIZES

    ffi, _ = library()
    sizes = [(int(t), t.name.lower(), *size) for t, size in GGML_QUANT_SIZES.items()]
    sizes = [s for s in sizes if s[0] < FIRST_AMBIGUOUS_TYPE_ID]
    names = [ffi.new("char[]", name.encode()) for _, name, _, _ in sizes]
    table = ffi.new("bl_gguf_foreign_type[]", len(sizes))
    for row, name, (type_id, _, block_weights, block_bytes) in zip(
        table, names, sizes, strict=True
    ):
        row.name, row.gguf_type = name, type_id
        row.block_weights, row.block_bytes = block_weights, block_bytes
    return table, names


def _new_arg(function: Any, index: int) -> Any:
    """A fresh value for pointer argument index of a library function (its outputs). Taking
    the type from the function spares cffi parsing a type string, which costs milliseconds
    the first time for each type."""
    ffi, _ = library()
    return ffi.new(ffi.typeof(function).args[index])


def _fail(ffi: Any, lib: Any) -> GGUFError:
    return GGUFError(ffi.string(lib.bl_last_error()).decode(errors="replace"))


def _decode(raw: bytes | bytearray) -> str:
    # GGUF strings are UTF-8; surrogateescape keeps any stray bytes (some vocabularies hold
    # them) so that they round-trip instead of failing the whole file.
    return raw.decode("utf-8", "surrogateescape")


class _Values:
    """Turns the library's bl_gguf_value into Python values."""

    def __init__(self) -> None:
        self.ffi, self.lib = library()
        self.numpy_types = _numpy_types()

    def value(self, v: Any) -> Any:
        lib = self.lib
        if v.type == lib.BL_GGUF_STRING:
            return _decode(self.ffi.buffer(v.data, v.count)[:])
        if v.type == lib.BL_GGUF_ARRAY:
            return self.array(v)
        dtype = self.numpy_types[v.type]
        item = np.frombuffer(self.ffi.buffer(v.data, dtype.itemsize), dtype)[0].item()
        return bool(item) if v.type == lib.BL_GGUF_BOOL else item

    def array(self, v: Any) -> Any:
        lib = self.lib
        if v.item_type == lib.BL_GGUF_STRING:
            return self.strings(v)
        if v.item_type == lib.BL_GGUF_ARRAY:
            items = self.items(v)  # owns the memory the pointers below point into
            return [self.array(items + i) for i in range(v.count)]
        dtype = self.numpy_types[v.item_type]
        data = np.frombuffer(self.ffi.buffer(v.data, v.count * dtype.itemsize), dtype).copy()
        return data.astype(bool) if v.item_type == lib.BL_GGUF_BOOL else data

    def items(self, v: Any) -> Any:
        """The items of array v as a bl_gguf_value[] (a pointer + i is one item)."""
        items = self.ffi.new("bl_gguf_value[]", v.count)
        if self.lib.bl_gguf_array_items(v, items, v.count) < 0:
            raise _fail(self.ffi, self.lib)
        return items

    def strings(self, v: Any) -> list[str]:
        """A vocabulary (hundreds of thousands of strings) is copied out in one call, each
        string followed by a NUL, then decoded and split once: the same strings as decoding
        one by one, since a NUL never continues a UTF-8 sequence. Strings holding a NUL
        themselves go one by one."""
        ffi, lib = self.ffi, self.lib
        size = lib.bl_gguf_join_strings(v, ffi.NULL, 0)
        joined = bytearray(max(size, 1))
        if size < 0 or lib.bl_gguf_join_strings(v, ffi.from_buffer(joined), size) != size:
            raise _fail(ffi, lib)
        del joined[size:]
        if joined.count(0) == v.count:
            return _decode(joined).split("\0")[:-1]
        return [_decode(ffi.buffer(item.data, item.count)[:]) for item in self.items(v)]


def _open(path: str | os.PathLike[str], sized: bool) -> Any:
    """bl_gguf_open keeping tensor types bitllm does not run; sized: with ggml's own sizes,
    so that their tensors are checked too (which imports gguf-py, only for such files)."""
    ffi, lib = library()
    params = _new_arg(lib.bl_gguf_open, 1)
    params.keep_unknown_types = 1
    if sized:
        table, _ = _ggml_types()
        params.foreign_types, params.n_foreign_types = table, len(table)
    handle = _new_arg(lib.bl_gguf_open, 2)
    if lib.bl_gguf_open(os.fsencode(path), params, handle) < 0:
        raise _fail(ffi, lib)
    return handle[0]


def _has_unsized_ggml_tensors(gguf: Any) -> bool:
    ffi, lib = library()
    info, t = _new_arg(lib.bl_gguf_get_info, 1), _new_arg(lib.bl_gguf_tensor_at, 2)
    if lib.bl_gguf_get_info(gguf, info) < 0:
        raise _fail(ffi, lib)
    for i in range(info.n_tensors):
        if lib.bl_gguf_tensor_at(gguf, i, t) < 0:
            raise _fail(ffi, lib)
        if t.nbytes < 0 and t.gguf_type < FIRST_AMBIGUOUS_TYPE_ID:
            return True
    return False


class GGUFFile:
    """A validated GGUF file: GGUFFile(path), or GGUFFile.of_model for the file an open
    native model was parsed from (one parse for weights, tokenizer and chat template).

    metadata: key -> value (str, int, float, bool; numeric arrays as numpy arrays, string
    arrays as lists of str, arrays of arrays as lists), in file order. tensors: name ->
    TensorInfo in file order. tensor_bytes(name) gives a read-only uint8 view of a tensor's
    data (files opened by path).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._name = str(path)
        self._map: mmap.mmap | None = None
        _, lib = library()
        gguf = _open(path, sized=False)
        try:
            if _has_unsized_ggml_tensors(gguf):  # llama.cpp's types: open again, sized
                unsized, gguf = gguf, None
                lib.bl_gguf_free(unsized)
                gguf = _open(path, sized=True)
            self._read(gguf)
            self._map = self._map_file()
        finally:
            if gguf is not None:
                lib.bl_gguf_free(gguf)

    @classmethod
    def of_model(cls, gguf: Any, path: str | os.PathLike[str]) -> GGUFFile:
        """The metadata and tensor table of gguf, the const bl_gguf * of an open bl_model
        (bl_model_gguf), read while the model is open. path names the file in messages."""
        self = cls.__new__(cls)
        self.path = Path(path)
        self._name = str(path)
        self._map = None
        self._read(gguf)
        return self

    def _read(self, gguf: Any) -> None:
        ffi, lib = library()
        info = _new_arg(lib.bl_gguf_get_info, 1)
        if lib.bl_gguf_get_info(gguf, info) < 0:
            raise _fail(ffi, lib)
        self.version = info.version
        self.alignment = info.alignment
        self.data_offset = info.data_offset
        self.file_size = info.file_bytes
        self._read_metadata(gguf, info.n_kv)
        self._read_tensors(gguf, info.n_tensors)

    def _read_metadata(self, gguf: Any, n_kv: int) -> None:
        ffi, lib = library()
        values = _Values()
        key, value = _new_arg(lib.bl_gguf_kv_at, 2), _new_arg(lib.bl_gguf_kv_at, 3)
        self.metadata: dict[str, Any] = {}
        self._types: dict[str, tuple[int, int | None]] = {}
        for i in range(n_kv):
            if lib.bl_gguf_kv_at(gguf, i, key, value) < 0:
                raise _fail(ffi, lib)
            name = _decode(ffi.string(key[0]))
            self.metadata[name] = values.value(value)
            is_array = value.type == lib.BL_GGUF_ARRAY
            self._types[name] = (value.type, value.item_type if is_array else None)

    def _read_tensors(self, gguf: Any, n_tensors: int) -> None:
        ffi, lib = library()
        t = _new_arg(lib.bl_gguf_tensor_at, 2)
        self.tensors: dict[str, TensorInfo] = {}
        for i in range(n_tensors):
            if lib.bl_gguf_tensor_at(gguf, i, t) < 0:
                raise _fail(ffi, lib)
            name = _decode(ffi.string(t.name))
            type_name = ffi.string(t.type_name).decode() if t.type_name != ffi.NULL else None
            self.tensors[name] = TensorInfo(
                name=name,
                shape=tuple(reversed(list(t.ne)[: t.n_dims])),
                type_id=t.gguf_type,
                type_name=type_name,
                offset=t.offset,
                nbytes=t.nbytes if t.nbytes >= 0 else None,
            )

    @property
    def value_types(self) -> dict[str, tuple[GGUFValueType, GGUFValueType | None]]:
        """key -> (value type, item type of an array or None), as gguf-py names them."""
        from gguf import GGUFValueType

        return {
            key: (GGUFValueType(vtype), GGUFValueType(itype) if itype is not None else None)
            for key, (vtype, itype) in self._types.items()
        }

    def _map_file(self) -> mmap.mmap | None:
        """The tensors' bytes for tensor_bytes (the library's mapping closes with its parse)."""
        if not self.tensors:
            return None
        try:
            with open(self.path, "rb") as f:
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:
            raise GGUFError(f"{self._name}: cannot map: {e}") from e
        if len(mapped) != self.file_size:
            mapped.close()
            raise GGUFError(f"{self._name}: the file changed while it was read")
        return mapped

    def tensor_bytes(self, name: str) -> np.ndarray:
        """A read-only uint8 view of the tensor's data in the mapped file.

        For a type of unknown size the view runs to the next tensor or the end of the file.
        """
        try:
            info = self.tensors[name]
        except KeyError:
            raise KeyError(f"{self._name}: no tensor named {name!r}") from None
        if self._map is None:
            raise ValueError(f"{self._name}: file is closed")
        nbytes = info.nbytes
        if nbytes is None:
            later = [t.offset for t in self.tensors.values() if t.offset > info.offset]
            nbytes = min(later, default=self.file_size) - info.offset
        return np.frombuffer(self._map, np.uint8, nbytes, info.offset)

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    def close(self) -> None:
        """Unmaps the file; views from tensor_bytes() keep the mapping alive until released."""
        mapped, self._map = self._map, None
        if mapped is not None:
            try:
                mapped.close()
            except BufferError:
                pass  # numpy views still use the map; it is unmapped when the last one goes

    def __enter__(self) -> GGUFFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"GGUFFile({self._name!r}, version={self.version}, "
            f"{len(self.metadata)} metadata, {len(self.tensors)} tensors)"
        )
