"""The GGUF reader: real vocabulary files, files written by gguf-py, our own tensor types,
and damaged files that must give a GGUFError naming the problem (never another error)."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import numpy as np
import pytest

from bitllm.runtime import tensor_types
from bitllm.runtime.gguf_reader import GGUFError, GGUFFile

from ..conftest import SHARED

VT = gguf.GGUFValueType

VOCAB = SHARED / "vocab"


def _need_vocab(name: str) -> Path:
    path = VOCAB / name
    if not path.exists():
        pytest.skip(f"{path} is not here (shared/ sits beside the repository)")
    return path


def _as_plain(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [_as_plain(v) for v in value]
    return value


def _gguf_py_value(field: gguf.ReaderField) -> object:
    """The value of a field the way gguf-py's own reader sees it."""
    types = field.types
    if types[0] == VT.ARRAY:
        if types[1] == VT.STRING:
            return [bytes(field.parts[i]).decode() for i in field.data]
        return [field.parts[i][0].item() for i in field.data]
    if types[0] == VT.STRING:
        return bytes(field.parts[field.data[0]]).decode()
    return field.parts[field.data[0]][0].item()


def test_reads_a_llama_cpp_vocab_file_like_gguf_py() -> None:
    path = _need_vocab("ggml-vocab-llama-spm.gguf")
    reference = gguf.GGUFReader(path)
    with GGUFFile(path) as f:
        assert f.version == 3
        assert f.tensors == {}
        assert list(f.metadata) == list(reference.fields)[3:]  # gguf-py lists the header too
        for key, value in f.metadata.items():
            assert _as_plain(value) == _gguf_py_value(reference.fields[key]), key
        assert f.metadata["tokenizer.ggml.token_type"].dtype == np.int32
        assert f.value_types["tokenizer.ggml.tokens"] == (VT.ARRAY, VT.STRING)


def test_reads_the_llama3_vocab_file() -> None:
    with GGUFFile(_need_vocab("ggml-vocab-llama-bpe.gguf")) as f:
        m = f.metadata
        assert (m["tokenizer.ggml.model"], m["tokenizer.ggml.pre"]) == ("gpt2", "llama-bpe")
        tokens, merges = m["tokenizer.ggml.tokens"], m["tokenizer.ggml.merges"]
        assert (len(tokens), len(merges)) == (128256, 280147)
        assert tokens[:3] == ["!", '"', "#"] and tokens[128000] == "<|begin_of_text|>"
        assert merges[0] == "Ġ Ġ"
        assert m["tokenizer.ggml.token_type"][128000] == 3
        assert m["llama.rope.freq_base"] == 500000.0


def _write_standard(path: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A file with every metadata kind and standard tensors, written by gguf-py."""
    w = gguf.GGUFWriter(path, "llama")
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4_000_000_000)
    w.add_int32("t.i32", -2_000_000_000)
    w.add_float32("t.f32", 0.25)
    w.add_uint64("t.u64", 2**63 + 5)
    w.add_int64("t.i64", -(2**62))
    w.add_float64("t.f64", 1e-300)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "naïve ☃")
    w.add_array("t.ints", [1, -2, 3])
    w.add_array("t.floats", [0.5, 1.5])
    w.add_array("t.strs", ["a", "", "日本"])
    w.add_array("t.empty", [])
    w.add_array("t.nested", [[1, 2], ["x", "y"], [[3]]])
    w.add_array("t.bools", [True, False, True])
    w.add_array("t.nul", ["a\0b", "", "c"])  # a NUL inside a string: the one-by-one path
    tensors = {
        "f32": rng.standard_normal((3, 5)).astype(np.float32),
        "f16": rng.standard_normal((2, 7, 4)).astype(np.float16),
        "vec": rng.standard_normal(11).astype(np.float32),
        "i8": rng.integers(-128, 128, (4, 4), dtype=np.int8),
    }
    for name, data in tensors.items():
        w.add_tensor(name, data)
    q8 = rng.integers(0, 256, (6, 2 * 34), dtype=np.uint8)  # 6 rows of 64 q8_0 weights
    w.add_tensor("q8", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    tensors["q8"] = q8
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tensors


def test_reads_what_gguf_py_writes(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "standard.gguf"
    tensors = _write_standard(path, rng)
    reference = gguf.GGUFReader(path)
    with GGUFFile(path) as f:
        m = f.metadata
        assert m["general.architecture"] == "llama"
        assert (m["t.u8"], m["t.i8"], m["t.u16"], m["t.i16"]) == (200, -100, 60000, -30000)
        assert (m["t.u32"], m["t.i32"]) == (4_000_000_000, -2_000_000_000)
        assert (m["t.u64"], m["t.i64"]) == (2**63 + 5, -(2**62))
        assert m["t.f32"] == 0.25 and m["t.f64"] == 1e-300 and m["t.bool"] is True
        assert m["t.str"] == "naïve ☃"
        assert m["t.ints"].tolist() == [1, -2, 3] and m["t.floats"].tolist() == [0.5, 1.5]
        assert m["t.strs"] == ["a", "", "日本"]
        assert _as_plain(m["t.nested"]) == [[1, 2], ["x", "y"], [[3]]]
        assert m["t.bools"].tolist() == [True, False, True] and m["t.bools"].dtype == bool
        assert m["t.nul"] == ["a\0b", "", "c"]
        assert f.value_types["t.nested"] == (VT.ARRAY, VT.ARRAY)
        assert f.value_types["t.u16"] == (VT.UINT16, None)
        assert f.value_types["t.strs"] == (VT.ARRAY, VT.STRING)
        assert list(f.tensors) == [t.name for t in reference.tensors]
        for ref in reference.tensors:
            info = f.tensors[ref.name]
            assert info.offset == ref.data_offset
            assert info.nbytes == ref.n_bytes
            assert info.type_id == int(ref.tensor_type)
            assert info.ne == tuple(int(d) for d in ref.shape)
            assert info.offset % f.alignment == 0
        for name, data in tensors.items():
            view = f.tensor_bytes(name)
            assert view.tobytes() == data.tobytes(), name
        assert f.tensors["f16"].shape == (2, 7, 4) and f.tensors["f16"].type_name == "f16"
        assert f.tensors["q8"].shape == (6, 64) and f.tensors["q8"].type_name == "q8_0"


def _write_ours(path: Path, types: dict[str, tuple[int, tuple[int, ...], int]]) -> None:
    """Tensors of any type id, shape (numpy order) and byte size, filled with their index."""
    w = gguf.GGUFWriter(path, "bitnet")
    for name, (type_id, shape, nbytes) in types.items():
        w.add_tensor_info(name, shape, np.dtype(np.int8), nbytes, raw_dtype=type_id)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for i, (_, _, nbytes) in enumerate(types.values()):
        w.write_tensor_data(np.full(nbytes, i, np.uint8))
    w.close()


def test_reads_our_tensor_types_and_keeps_unknown_ids(tmp_path: Path) -> None:
    shape = (5, 300)
    types = {
        name: (t.gguf_type, shape, t.tensor_bytes(*shape))
        for name, t in tensor_types.TYPES.items()
        if t.kind in ("ternary", "sign")
    }
    types["i2_s"] = (36, (4, 128), 160)  # bitnet.cpp's I2_S: n / 4 + 32 bytes (repack.c)
    types["tl1"] = (38, (4, 128), 160)  # bitnet.cpp's TL1: a type we cannot size
    types["q4_k"] = (12, (2, 256), 2 * 144)  # llama.cpp's Q4_K: sized from gguf-py
    path = tmp_path / "ours.gguf"
    _write_ours(path, types)
    with GGUFFile(path) as f:
        for i, (name, (type_id, shape_, nbytes)) in enumerate(types.items()):
            info = f.tensors[name]
            assert info.type_id == type_id and info.shape == shape_
            if type_id == 38:
                assert info.type_name is None and info.nbytes is None
                assert f.tensor_bytes(name)[:nbytes].tolist() == [i] * nbytes
            else:
                assert info.type_name == name and info.nbytes == nbytes
                assert f.tensor_bytes(name).tolist() == [i] * nbytes


def test_views_outlive_close(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "standard.gguf"
    tensors = _write_standard(path, rng)
    with GGUFFile(path) as f:
        view = f.tensor_bytes("f32")
    assert view.view(np.float32).reshape(3, 5).tolist() == tensors["f32"].tolist()
    with pytest.raises(ValueError, match="closed"):
        f.tensor_bytes("f32")
    with pytest.raises(KeyError, match="no tensor named 'nope'"):
        GGUFFile(path).tensor_bytes("nope")


# Hand-built files, for damage at exact places.


def _str(s: str | bytes) -> bytes:
    data = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(data)) + data


def _build(
    kvs: list[bytes],
    tensors: list[tuple[str, list[int], int, int]],
    data: bytes = b"",
    version: int = 3,
    alignment: int = 32,
) -> bytes:
    """kvs: encoded entries; tensors: (name, ne, type id, offset in the data section)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    for name, ne, type_id, offset in tensors:
        out += _str(name) + struct.pack(f"<I{len(ne)}QIQ", len(ne), *ne, type_id, offset)
    out += b"\0" * (-len(out) % alignment)
    return out + data


def _kv_u32(key: str, value: int) -> bytes:
    return _str(key) + struct.pack("<II", VT.UINT32, value)


def _kv_str(key: str, value: str) -> bytes:
    return _str(key) + struct.pack("<I", VT.STRING) + _str(value)


def _error(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    with pytest.raises(GGUFError) as e:
        GGUFFile(path)
    assert str(e.value).startswith(f"{path}: ")
    return str(e.value)


def test_hand_built_file_reads(tmp_path: Path) -> None:
    path = tmp_path / "ok.gguf"
    f32 = np.arange(8, dtype=np.float32).tobytes()
    path.write_bytes(_build([_kv_u32("a.b", 7)], [("w", [4, 2], 0, 0)], f32))
    with GGUFFile(path) as f:
        assert f.metadata == {"a.b": 7}
        assert f.tensors["w"].shape == (2, 4) and f.tensors["w"].nbytes == 32
        assert f.tensor_bytes("w").tobytes() == f32


DAMAGE = [
    (b"", "not a GGUF file"),
    (b"GGML" + bytes(20), "not a GGUF file"),
    (b"GGUF" + struct.pack("<IQQ", 1, 0, 0), "GGUF version 1 is not supported"),
    (b"GGUF" + struct.pack(">IQQ", 3, 0, 0), "big-endian"),
    (b"GGUF" + struct.pack("<I", 3) + b"\0" * 5, "shorter than a GGUF header"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 2**62), "4611686018427387904 metadata entries"),
    (b"GGUF" + struct.pack("<IQQ", 3, 2**60, 0), "and 1152921504606846976 tensors cannot fit"),
    (
        b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 2**63) + b"x" * 20,
        "metadata key at byte 24 has length 9223372036854775808",
    ),
    (_build([_str("k") + struct.pack("<I", 99)], []), "'k' has unknown value type 99"),
    (
        _build([_str("k") + struct.pack("<IIQ", VT.ARRAY, VT.UINT64, 2**61)], []),
        "key 'k': array of 2305843009213693952 elements cannot fit",
    ),
    (
        b"GGUF"
        + struct.pack("<IQQ", 3, 0, 1)
        + _str("k")
        + struct.pack("<IIQ", VT.ARRAY, VT.STRING, 2)
        + _str("abcdef")
        + b"\1\0\0",
        "truncated: string value of key 'k' at byte 63 needs 8 bytes",
    ),
    (_build([_kv_u32("k", 1), _kv_u32("k", 2)], []), "metadata key 'k' appears twice"),
    (_build([_kv_str("general.alignment", "32")], []), "'general.alignment' is a string"),
    (_build([_kv_u32("general.alignment", 48)], []), "general.alignment is 48, not a power"),
    (_build([], [("w", [4, 1, 1, 1, 1], 0, 0)]), "'w' has 5 dimensions"),
    (_build([], [("w", [2**40, 2**40], 0, 0)]), "'w' dimension 0 is 1099511627776, impossible"),
    (_build([], [("w", [4], 0, 8)], bytes(64)), "offset 8 is not a multiple of the alignment"),
    (
        _build([], [("w", [64], 0, 0)], bytes(100)),
        "'w': 256 bytes at data offset 0 run past the end",
    ),
    (_build([], [("w", [33], 8, 0)], bytes(64)), "q8_0 rows must be a multiple of 32 long, got 33"),
    (_build([], [("k", [100], 12, 0)], bytes(64)), "q4_k rows must be a multiple of 256 long"),
    (_build([], [("k", [256], 12, 0)], bytes(64)), "'k': 144 bytes at data offset 0 run past"),
    (_build([], [("w", [4], 0, 0), ("w", [4], 0, 32)], bytes(64)), "'w' appears twice"),
    (
        _build([], [("a", [16], 0, 0), ("b", [4], 0, 32)], bytes(64)),
        "'a' (bytes 96..160) overlaps tensor 'b'",
    ),
    (_build([], [("u", [4], 777, 4096)], bytes(64)), "'u' of unknown size: data offset 4096"),
]


@pytest.mark.parametrize("data,expected", DAMAGE, ids=[expected for _, expected in DAMAGE])
def test_damaged_files_name_the_problem(tmp_path: Path, data: bytes, expected: str) -> None:
    assert expected in _error(tmp_path, data)


def test_every_truncation_is_an_error(tmp_path: Path, rng: np.random.Generator) -> None:
    whole = tmp_path / "standard.gguf"
    _write_standard(whole, rng)
    data = whole.read_bytes()
    with GGUFFile(whole) as f:
        end = max(t.offset + t.nbytes for t in f.tensors.values())
    for cut in range(0, end):
        _error(tmp_path, data[:cut])


def test_missing_file_is_a_gguf_error(tmp_path: Path) -> None:
    with pytest.raises(GGUFError, match="cannot open"):
        GGUFFile(tmp_path / "absent.gguf")


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:
        return bytes(out[: rng.integers(len(out))])
    if kind == 1:
        for _ in range(rng.integers(1, 5)):
            at = rng.integers(len(out))
            out[at] ^= 1 << int(rng.integers(8))
    elif kind == 2:  # a huge count, length or offset
        at = int(rng.integers(len(out) - 8))
        out[at : at + 8] = int(rng.integers(2**63)).to_bytes(8, "little")
    else:
        out[rng.integers(len(out))] = int(rng.integers(256))
    return bytes(out)


def test_random_damage_gives_gguf_error_or_a_valid_file(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    whole = tmp_path / "standard.gguf"
    _write_standard(whole, rng)
    data = whole.read_bytes()
    path = tmp_path / "mutated.gguf"
    outcomes = {"ok": 0, "error": 0}
    for _ in range(600):
        path.write_bytes(_mutate(data, rng))
        try:
            with GGUFFile(path) as f:
                for name in f.tensors:
                    f.tensor_bytes(name)
            outcomes["ok"] += 1
        except GGUFError as e:
            assert str(e).startswith(f"{path}: ")
            outcomes["error"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0
