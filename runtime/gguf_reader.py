"""A validating GGUF reader: header, metadata and tensor infos of any GGUF v2/v3 file.

The file is memory-mapped and every count, length and offset is checked against the file
size before it is used, so a damaged file gives a GGUFError naming the file and the problem,
never another exception, a huge allocation or a hang. Tensor types are not interpreted:
unknown type ids (llama.cpp, bitnet.cpp or newer ones) are kept as numbers, and only the
sizes of the types listed in GGML_TYPES and tensor_types can be checked.

Unlike gguf-py's GGUFReader this does not refuse our own tensor types (ids 1024+), and
importing it pulls in nothing beyond numpy.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np

from .tensor_types import TYPES_BY_GGUF_ID

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # ggml's GGML_MAX_DIMS
MAX_ARRAY_NESTING = 8
_U64 = struct.Struct("<Q")


class GGUFError(ValueError):
    """A file that is not a valid GGUF, with the file name and the problem in the message."""


class ValueType(IntEnum):
    """GGUF metadata value types (the numbers are the format's)."""

    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


_SCALAR_DTYPES: dict[ValueType, np.dtype] = {
    ValueType.UINT8: np.dtype("<u1"),
    ValueType.INT8: np.dtype("<i1"),
    ValueType.UINT16: np.dtype("<u2"),
    ValueType.INT16: np.dtype("<i2"),
    ValueType.UINT32: np.dtype("<u4"),
    ValueType.INT32: np.dtype("<i4"),
    ValueType.FLOAT32: np.dtype("<f4"),
    ValueType.BOOL: np.dtype("u1"),
    ValueType.UINT64: np.dtype("<u8"),
    ValueType.INT64: np.dtype("<i8"),
    ValueType.FLOAT64: np.dtype("<f8"),
}

_SCALAR_FORMATS: dict[ValueType, str] = {
    ValueType.UINT8: "<B",
    ValueType.INT8: "<b",
    ValueType.UINT16: "<H",
    ValueType.INT16: "<h",
    ValueType.UINT32: "<I",
    ValueType.INT32: "<i",
    ValueType.FLOAT32: "<f",
    ValueType.BOOL: "<?",
    ValueType.UINT64: "<Q",
    ValueType.INT64: "<q",
    ValueType.FLOAT64: "<d",
}

# ggml's own types whose ids mean the same in llama.cpp and bitnet.cpp: id -> (name,
# weights per block, bytes per block). Ids from 36 on are left out on purpose: bitnet.cpp
# uses 36/38/39 for I2_S/TL1/TL2 where newer llama.cpp has other types, so a size check
# there could reject a good file.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("f32", 1, 4),
    1: ("f16", 1, 2),
    2: ("q4_0", 32, 18),
    3: ("q4_1", 32, 20),
    6: ("q5_0", 32, 22),
    7: ("q5_1", 32, 24),
    8: ("q8_0", 32, 34),
    9: ("q8_1", 32, 40),
    10: ("q2_k", 256, 84),
    11: ("q3_k", 256, 110),
    12: ("q4_k", 256, 144),
    13: ("q5_k", 256, 176),
    14: ("q6_k", 256, 210),
    15: ("q8_k", 256, 292),
    16: ("iq2_xxs", 256, 66),
    17: ("iq2_xs", 256, 74),
    18: ("iq3_xxs", 256, 98),
    19: ("iq1_s", 256, 50),
    20: ("iq4_nl", 32, 18),
    21: ("iq3_s", 256, 110),
    22: ("iq2_s", 256, 82),
    23: ("iq4_xs", 256, 136),
    24: ("i8", 1, 1),
    25: ("i16", 1, 2),
    26: ("i32", 1, 4),
    27: ("i64", 1, 8),
    28: ("f64", 1, 8),
    29: ("iq1_m", 256, 56),
    30: ("bf16", 1, 2),
    34: ("tq1_0", 256, 54),
    35: ("tq2_0", 256, 66),
}


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


def type_name(type_id: int) -> str | None:
    """The name of a tensor type id, or None when this reader does not know it."""
    ggml = GGML_TYPES.get(type_id)
    if ggml is not None:
        return ggml[0]
    ours = TYPES_BY_GGUF_ID.get(type_id)
    return ours.name if ours is not None else None


def tensor_nbytes(type_id: int, shape: tuple[int, ...]) -> int | None:
    """Bytes of a tensor's data, None for an unknown type; ValueError if the shape does not fit
    the type (ggml's block types need a row length that is a multiple of the block; our own
    types pad the last block of each row)."""
    cols = shape[-1] if shape else 1
    rows = 1
    for d in shape[:-1]:
        rows *= d
    ggml = GGML_TYPES.get(type_id)
    if ggml is not None:
        name, block_weights, block_bytes = ggml
        if cols % block_weights:
            raise ValueError(
                f"row length {cols} is not a multiple of {name}'s block {block_weights}"
            )
        return rows * (cols // block_weights) * block_bytes
    ours = TYPES_BY_GGUF_ID.get(type_id)
    return ours.tensor_bytes(rows, cols) if ours is not None else None


class _Cursor:
    """Reads little-endian GGUF items from a buffer, checking every read against its end."""

    def __init__(self, buf: mmap.mmap | bytes, path: str) -> None:
        self.buf = buf
        self.end = len(buf)
        self.pos = 0
        self.path = path

    def fail(self, message: str) -> GGUFError:
        return GGUFError(f"{self.path}: {message}")

    def need(self, n: int, what: str) -> None:
        if n > self.end - self.pos:
            raise self.fail(
                f"truncated: {what} at byte {self.pos} needs {n} bytes "
                f"but the file has only {self.end - self.pos} left"
            )

    def unpack(self, fmt: str, size: int, what: str) -> Any:
        self.need(size, what)
        value = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += size
        return value

    def u32(self, what: str) -> int:
        return self.unpack("<I", 4, what)

    def u64(self, what: str) -> int:
        return self.unpack("<Q", 8, what)

    def string(self, what: str) -> str:
        n = self.u64(f"length of {what}")
        self.need(n, f"{what} ({n} bytes)")
        start = self.pos
        self.pos += n
        # GGUF strings are UTF-8; surrogateescape keeps any stray bytes (some vocabularies
        # hold them) so that they round-trip instead of failing the whole file.
        return self.buf[start : self.pos].decode("utf-8", "surrogateescape")

    def value_type(self, what: str) -> ValueType:
        raw = self.u32(f"type of {what}")
        try:
            return ValueType(raw)
        except ValueError:
            raise self.fail(f"{what} has unknown value type {raw}") from None

    def value(self, vtype: ValueType, what: str, depth: int = 0) -> Any:
        if vtype == ValueType.STRING:
            return self.string(what)
        if vtype == ValueType.ARRAY:
            return self.array(what, depth + 1)
        fmt = _SCALAR_FORMATS[vtype]
        return self.unpack(fmt, struct.calcsize(fmt), what)

    def array(self, what: str, depth: int) -> Any:
        if depth > MAX_ARRAY_NESTING:
            raise self.fail(f"{what}: arrays nested more than {MAX_ARRAY_NESTING} deep")
        etype = self.value_type(f"elements of {what}")
        count = self.u64(f"element count of {what}")
        if etype in _SCALAR_DTYPES:
            dtype = _SCALAR_DTYPES[etype]
            self.need_elements(count, dtype.itemsize, what)
            data = np.frombuffer(self.buf, dtype, count, self.pos).copy()
            self.pos += count * dtype.itemsize
            return data.astype(bool) if etype == ValueType.BOOL else data
        if etype == ValueType.STRING:
            self.need_elements(count, 8, what)
            return self.string_array(count, what)
        self.need_elements(count, 12, what)  # an array header is 12 bytes
        return [self.array(f"{what}[{i}]", depth + 1) for i in range(count)]

    def need_elements(self, count: int, min_size: int, what: str) -> None:
        if count > (self.end - self.pos) // min_size:
            raise self.fail(
                f"{what}: array of {count} elements at byte {self.pos} cannot fit "
                f"in the {self.end - self.pos} bytes left in the file"
            )

    def string_array(self, count: int, what: str) -> list[str]:
        """Vocabularies (hundreds of thousands of strings) go in chunks through numpy; the
        chunks keep its temporary arrays small. What it cannot split takes the loop."""
        strings: list[str] = []
        while count - len(strings) >= _SPLIT_MIN_COUNT:
            chunk = min(count - len(strings), _SPLIT_CHUNK)
            found = _split_short_strings(self.buf, self.pos, self.end, chunk)
            if found is None:
                break
            strings += found[0]
            self.pos = found[1]
        return strings + self.string_loop(count - len(strings), what, len(strings))

    def string_loop(self, count: int, what: str, first: int = 0) -> list[str]:
        """One string at a time, for any array (and the errors of a damaged one); first is
        the index of the first of them in the array, for the messages."""
        buf, end, pos = self.buf, self.end, self.pos
        unpack_from = _U64.unpack_from
        out: list[str] = []
        append = out.append
        for i in range(count):
            if end - pos < 8:
                self.pos = pos
                self.need(8, f"length of {what}[{first + i}]")
            (n,) = unpack_from(buf, pos)
            start = pos + 8
            if n > end - start:
                self.pos = start
                self.need(n, f"{what}[{first + i}] ({n} bytes)")
            pos = start + n
            append(buf[start:pos].decode("utf-8", "surrogateescape"))
        self.pos = pos
        return out


_SPLIT_MIN_COUNT = 1024  # below this the per-string loop is as fast
_SPLIT_CHUNK = 16384  # strings per numpy pass
_SPLIT_WINDOW_PER_STRING = 24  # bytes scanned per string: Llama 3's average is under 20


def _split_short_strings(
    buf: mmap.mmap | bytes, pos: int, end: int, count: int
) -> tuple[list[str], int] | None:
    """The strings of an array at pos, and the position after it, found with a few numpy
    passes instead of a Python loop over hundreds of thousands of vocabulary strings.

    It works when every string is 1..65535 bytes long without NUL bytes (every vocabulary we
    know): each 8-byte length then ends in six zeros and is followed by a nonzero byte, so
    all of them can be spotted at once. Following the lengths from the first string confirms
    that the spotted places are exactly the strings; when they are not, or the strings do
    not fit in the scanned window, it returns None and the caller takes the loop.
    """
    window = min(end - pos, count * _SPLIT_WINDOW_PER_STRING)
    if window < 9 * count:
        return None
    raw = np.frombuffer(buf, np.uint8, window, pos)
    zero = raw == 0
    spotted = ~(zero[: window - 8] & zero[1 : window - 7])
    for k in range(2, 8):
        spotted &= zero[k : window - 8 + k]
    spotted &= ~zero[8:]
    starts = np.flatnonzero(spotted)[:count]
    if len(starts) < count or starts[0] != 0:
        return None
    low, high = raw[starts], raw[starts + 1]
    nexts = starts + 8 + low + (high.astype(np.int64) << 8)
    size = int(nexts[-1])
    if size > window or not np.array_equal(nexts[:-1], starts[1:]):
        return None
    length_zeros = 6 * count + np.count_nonzero(low == 0) + np.count_nonzero(high == 0)
    if np.count_nonzero(zero[:size]) != length_zeros:
        return None  # a NUL inside some string: it would pass for a separator below
    # Each length becomes one NUL that separates the strings; one decode and one split then
    # give the same strings as decoding one by one (a NUL never continues a UTF-8 sequence).
    keep = np.ones(size, bool)
    for k in range(1, 8):
        keep[starts + k] = False
    joined = raw[:size].copy()
    joined[starts] = 0
    text = joined[keep].tobytes().decode("utf-8", "surrogateescape")
    return text.split("\0")[1:], pos + size


class GGUFFile:
    """A memory-mapped, validated GGUF file.

    metadata: key -> value (str, int, float, bool; numeric arrays as numpy arrays, string
    arrays as lists of str, arrays of arrays as lists). tensors: name -> TensorInfo in file
    order. tensor_bytes(name) gives a read-only uint8 view of a tensor's data.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._name = str(path)
        self._closed = False
        self._map = self._open()
        self.file_size = len(self._map)
        try:
            self._parse()
        except BaseException:
            self.close()
            raise

    def _open(self) -> mmap.mmap | bytes:
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size == 0:
                    return b""  # mmap cannot map an empty file
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as e:
            raise GGUFError(f"{self._name}: cannot open: {e.strerror or e}") from e
        return mapped

    def _parse(self) -> None:
        cur = _Cursor(self._map, self._name)
        magic = self._map[:4]
        if magic != GGUF_MAGIC:
            raise cur.fail(f"not a GGUF file (magic {magic!r}, expected {GGUF_MAGIC!r})")
        cur.pos = 4
        self.version = cur.u32("version")
        if self.version not in (2, 3):
            if int.from_bytes(self.version.to_bytes(4, "little"), "big") in (2, 3):
                raise cur.fail("big-endian GGUF files are not supported")
            raise cur.fail(f"unsupported GGUF version {self.version} (this reader knows 2 and 3)")
        tensor_count = cur.u64("tensor count")
        kv_count = cur.u64("metadata count")
        cur.need_elements(kv_count, 13, "metadata")  # key length 8 + type 4 + 1 byte value
        self.metadata: dict[str, Any] = {}
        self.value_types: dict[str, tuple[ValueType, ValueType | None]] = {}
        for i in range(kv_count):
            self._read_kv(cur, i)
        self.alignment = self._alignment(cur)
        cur.need_elements(tensor_count, 24, "tensor infos")  # name len, n_dims, type, offset
        raw = [self._read_tensor_info(cur, i) for i in range(tensor_count)]
        self.data_offset = -(-cur.pos // self.alignment) * self.alignment
        if self.data_offset > self.file_size and raw:
            raise cur.fail(
                f"truncated: tensor data would start at byte {self.data_offset} "
                f"but the file has {self.file_size}"
            )
        self.tensors: dict[str, TensorInfo] = {}
        for name, shape, type_id, rel_offset in raw:
            self.tensors[name] = self._tensor_info(cur, name, shape, type_id, rel_offset)
        self._check_overlaps(cur)

    def _read_kv(self, cur: _Cursor, index: int) -> None:
        key = cur.string(f"key of metadata entry {index}")
        vtype = cur.value_type(f"metadata {key!r}")
        start = cur.pos
        value = cur.value(vtype, f"metadata {key!r}")
        if key in self.metadata:
            raise cur.fail(f"metadata key {key!r} appears twice")
        etype = None
        if vtype == ValueType.ARRAY:
            etype = ValueType(struct.unpack_from("<I", self._map, start)[0])
        self.metadata[key] = value
        self.value_types[key] = (vtype, etype)

    def _alignment(self, cur: _Cursor) -> int:
        if "general.alignment" not in self.metadata:
            return DEFAULT_ALIGNMENT
        value = self.metadata["general.alignment"]
        vtype = self.value_types["general.alignment"][0]
        if vtype != ValueType.UINT32 or value == 0 or value & (value - 1):
            raise cur.fail(
                f"general.alignment must be a power of two stored as uint32, got {value!r} "
                f"({vtype.name})"
            )
        return value

    def _read_tensor_info(self, cur: _Cursor, index: int) -> tuple[str, tuple, int, int]:
        name = cur.string(f"name of tensor {index}")
        n_dims = cur.u32(f"dimension count of tensor {name!r}")
        if n_dims > MAX_DIMS:
            raise cur.fail(f"tensor {name!r} has {n_dims} dimensions (at most {MAX_DIMS})")
        ne = [cur.u64(f"dimension {d} of tensor {name!r}") for d in range(n_dims)]
        elements = 1
        for d in ne:
            elements *= d
        if any(d >= 2**63 for d in ne) or elements >= 2**63:
            raise cur.fail(f"tensor {name!r} has impossible dimensions {ne}")
        type_id = cur.u32(f"type of tensor {name!r}")
        rel_offset = cur.u64(f"data offset of tensor {name!r}")
        return name, tuple(reversed(ne)), type_id, rel_offset

    def _tensor_info(
        self, cur: _Cursor, name: str, shape: tuple, type_id: int, rel_offset: int
    ) -> TensorInfo:
        if name in self.tensors:
            raise cur.fail(f"tensor name {name!r} appears twice")
        if rel_offset % self.alignment:
            raise cur.fail(
                f"tensor {name!r}: data offset {rel_offset} is not a multiple of the "
                f"alignment {self.alignment}"
            )
        try:
            nbytes = tensor_nbytes(type_id, shape)
        except ValueError as e:
            raise cur.fail(f"tensor {name!r} of shape {shape}: {e}") from None
        offset = self.data_offset + rel_offset
        end = offset + (nbytes or 0)
        if end > self.file_size:
            what = f"ends at byte {end}" if nbytes is not None else f"starts at byte {offset}"
            raise cur.fail(f"truncated: tensor {name!r} {what} but the file has {self.file_size}")
        return TensorInfo(name, shape, type_id, type_name(type_id), offset, nbytes)

    def _check_overlaps(self, cur: _Cursor) -> None:
        sized = sorted((t for t in self.tensors.values() if t.nbytes), key=lambda t: t.offset)
        for before, after in zip(sized, sized[1:], strict=False):
            end = before.offset + before.nbytes
            if end > after.offset:
                raise cur.fail(
                    f"tensor {before.name!r} (bytes {before.offset}..{end}) overlaps "
                    f"tensor {after.name!r} (from byte {after.offset})"
                )

    def tensor_bytes(self, name: str) -> np.ndarray:
        """A read-only uint8 view of the tensor's data in the mapped file.

        For a type of unknown size the view runs to the next tensor or the end of the file.
        """
        try:
            info = self.tensors[name]
        except KeyError:
            raise KeyError(f"{self._name}: no tensor named {name!r}") from None
        if self._closed:
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
        mapped, self._map = self._map, b""
        self._closed = True
        if isinstance(mapped, mmap.mmap):
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
