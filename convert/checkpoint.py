"""Memory-mapped safetensors checkpoints: one file, a sharded index, or a model folder.

Headers are validated against the file sizes before any data is touched, so a truncated or
corrupt file is a ConvertError naming the file. Tensor data is read through a read-only mmap
and the pages are handed back to the kernel after each read (madvise DONTNEED), which keeps the
resident set at about one tensor however large the checkpoint is.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConvertError

# safetensors dtype -> numpy dtype of the stored bytes (bf16 is read as raw uint16)
DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("u1"),
}
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")
MAX_HEADER_BYTES = 100 * 1024 * 1024
INDEX_SUFFIX = ".safetensors.index.json"


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: str  # safetensors dtype name, e.g. "BF16"
    shape: tuple[int, ...]
    path: Path
    offset: int  # absolute byte offset in the file
    nbytes: int

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def describe(self) -> str:
        return f"{self.dtype} {list(self.shape)}"


def _read_header(path: Path) -> tuple[dict, int, int]:
    """(header dict, data start, file size) of one safetensors file."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 8:
                raise ConvertError(f"{path}: not a safetensors file (only {size} bytes)")
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len > min(size - 8, MAX_HEADER_BYTES):
                raise ConvertError(
                    f"{path}: corrupt or truncated safetensors file (header of {header_len} "
                    f"bytes in a file of {size})"
                )
            raw = f.read(header_len)
    except OSError as e:
        raise ConvertError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConvertError(f"{path}: corrupt safetensors header ({e})") from None
    if not isinstance(header, dict):
        raise ConvertError(f"{path}: corrupt safetensors header (not a JSON object)")
    return header, 8 + header_len, size


def _entry(path: Path, name: str, spec: object, data_start: int, size: int) -> TensorEntry:
    where = f"{path}: tensor {name!r}"
    if not isinstance(spec, dict):
        raise ConvertError(f"{where}: corrupt header entry")
    dtype = spec.get("dtype")
    if dtype not in DTYPES:
        raise ConvertError(f"{where}: unsupported dtype {dtype!r}")
    shape = spec.get("shape")
    offsets = spec.get("data_offsets")
    if (
        not isinstance(shape, list)
        or not all(isinstance(d, int) and d >= 0 for d in shape)
        or not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) for o in offsets)
    ):
        raise ConvertError(f"{where}: corrupt header entry {spec!r}")
    begin, end = offsets
    nbytes = int(np.prod(shape, dtype=np.int64)) * DTYPES[dtype].itemsize
    if not 0 <= begin <= end or end - begin != nbytes:
        raise ConvertError(f"{where}: data offsets {offsets} do not fit shape {shape} of {dtype}")
    if data_start + end > size:
        raise ConvertError(
            f"{path}: truncated: tensor {name!r} ends at byte {data_start + end} "
            f"but the file has {size}"
        )
    return TensorEntry(name, dtype, tuple(shape), path, data_start + begin, nbytes)


def _scan_file(path: Path) -> dict[str, TensorEntry]:
    header, data_start, size = _read_header(path)
    return {
        name: _entry(path, name, spec, data_start, size)
        for name, spec in header.items()
        if name != "__metadata__"
    }


def _shard_paths(index_path: Path) -> list[Path]:
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        weight_map = index["weight_map"]
        shards = sorted(set(weight_map.values()))
    except OSError as e:
        raise ConvertError(f"{index_path}: cannot read: {e.strerror or e}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConvertError(f"{index_path}: not a safetensors index (no weight_map)") from None
    paths = [index_path.parent / shard for shard in shards]
    for path in paths:
        if not path.is_file():
            raise ConvertError(f"{index_path}: shard {path.name} is named in the index but absent")
    return paths


def resolve_sources(src: Path) -> tuple[Path, list[Path]]:
    """SRC (file, index or folder) -> (model folder, safetensors files)."""
    if src.is_dir():
        indexes = sorted(src.glob(f"*{INDEX_SUFFIX}"))
        if indexes:
            return src, _shard_paths(indexes[0])
        files = sorted(src.glob("*.safetensors"))
        if not files:
            raise ConvertError(f"{src}: no *.safetensors file or index in this folder")
        return src, files
    if not src.exists():
        raise ConvertError(f"{src}: no such file or folder")
    if src.name.endswith(INDEX_SUFFIX):
        return src.parent, _shard_paths(src)
    if src.suffix == ".safetensors":
        return src.parent, [src]
    raise ConvertError(f"{src}: expected a .safetensors file, a {INDEX_SUFFIX} or a folder")


# Suffixes of every file a conversion reads from the model folder: safetensors files and
# their index, config.json and the tokenizer's JSON, SentencePiece model and chat template.
INPUT_SUFFIXES = (".safetensors", ".json", ".model", ".jinja")


def input_files(src: Path) -> list[Path]:
    """src and every file next to it that a conversion of src may read."""
    folder = src if src.is_dir() else src.parent
    try:
        found = [p for p in folder.iterdir() if p.suffix in INPUT_SUFFIXES and p.is_file()]
    except OSError:
        found = []
    return [src, *found]


class Checkpoint:
    """All tensors of a safetensors checkpoint, by name, read lazily from mmaps."""

    def __init__(self, src: Path) -> None:
        self.folder, self.files = resolve_sources(src)
        self.tensors: dict[str, TensorEntry] = {}
        for path in self.files:
            for name, entry in _scan_file(path).items():
                if name in self.tensors:
                    raise ConvertError(
                        f"{path}: tensor {name!r} is also in {self.tensors[name].path.name}"
                    )
                self.tensors[name] = entry
        self._maps: dict[Path, mmap.mmap] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def entry(self, name: str) -> TensorEntry:
        try:
            return self.tensors[name]
        except KeyError:
            raise ConvertError(f"{self.folder}: missing tensor {name!r}") from None

    def _map(self, path: Path) -> mmap.mmap:
        if path not in self._maps:
            try:
                with open(path, "rb") as f:
                    self._maps[path] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except OSError as e:
                raise ConvertError(f"{path}: cannot map: {e.strerror or e}") from None
        return self._maps[path]

    def _copy(self, entry: TensorEntry, first: int, count: int) -> np.ndarray:
        """Elements [first, first + count) of a tensor, copied out of the map."""
        itemsize = DTYPES[entry.dtype].itemsize
        if count == 0:
            return np.empty(0, DTYPES[entry.dtype])
        start = entry.offset + first * itemsize
        mapped = self._map(entry.path)
        data = np.frombuffer(mapped, DTYPES[entry.dtype], count, start).copy()
        page = mmap.PAGESIZE
        aligned = start - start % page
        mapped.madvise(mmap.MADV_DONTNEED, aligned, start + count * itemsize - aligned)
        return data

    def raw(self, name: str) -> np.ndarray:
        """The tensor's stored values in its own shape (bf16 as uint16 bit patterns)."""
        entry = self.entry(name)
        return self._copy(entry, 0, entry.elements).reshape(entry.shape)

    def floats(self, name: str) -> np.ndarray:
        """A float tensor as float32, checked for NaN and Inf."""
        entry = self.entry(name)
        return self.float_rows(name, 0, entry.shape[0] if entry.shape else 1)

    def float_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of a float tensor as float32, checked for NaN and Inf."""
        entry = self.entry(name)
        if entry.dtype not in FLOAT_DTYPES:
            raise ConvertError(
                f"{entry.path}: tensor {name!r} is {entry.dtype}, expected a float type"
            )
        row = int(np.prod(entry.shape[1:], dtype=np.int64)) if entry.shape else 1
        values = to_float32(self._copy(entry, start * row, (stop - start) * row), entry.dtype)
        if not np.isfinite(values).all():
            raise ConvertError(f"{entry.path}: tensor {name!r} holds NaN or Inf values")
        shape = (stop - start, *entry.shape[1:]) if entry.shape else ()
        return values.reshape(shape)

    def close(self) -> None:
        for mapped in self._maps.values():
            mapped.close()
        self._maps.clear()


def to_float32(values: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "BF16":
        return (values.astype(np.uint32) << 16).view(np.float32)
    return values.astype(np.float32)
