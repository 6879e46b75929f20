"""Loads libbitllm through cffi in ABI mode; the C declarations come from the one
public header, bitllm.h, so Python and C cannot drift apart."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import cffi

_HERE = Path(__file__).resolve().parent
_LIBRARY_NAMES = ("libbitllm.so", "libbitllm.dylib")


def _package_dirs() -> list[Path]:
    """This package's folders: one in a wheel install; the sources plus the
    installed build outputs in an editable install."""
    import bitllm.runtime

    dirs = [Path(p) for p in getattr(bitllm.runtime, "__path__", [])]
    return dirs + [_HERE] if _HERE not in dirs else dirs


def _find_file(names: tuple[str, ...], env: str) -> Path:
    override = os.environ.get(env)
    if override:
        path = Path(override)
        if not path.is_file():
            raise FileNotFoundError(f"{env}={override} does not exist")
        return path
    for folder in _package_dirs():
        for name in names:
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(
        f"bitllm's native library ({' or '.join(names)}) is not in {_HERE}: "
        "reinstall with `pip install .` or set " + env
    )


def _cdef(header: str) -> str:
    match = re.search(r"/\* BITLLM_CDEF_BEGIN \*/(.*)/\* BITLLM_CDEF_END \*/", header, re.S)
    if not match:
        raise RuntimeError("bitllm.h has no BITLLM_CDEF_BEGIN/END section")
    return match.group(1)


def _header_path() -> Path:
    """The source checkout's header in an editable install (it matches the library
    being developed), else the copy installed beside the library."""
    source = _HERE.parent / "native" / "include" / "bitllm.h"
    if source.is_file():
        return source
    for folder in _package_dirs():
        if (folder / "bitllm.h").is_file():
            return folder / "bitllm.h"
    raise FileNotFoundError(f"bitllm.h is not installed in {_HERE}: reinstall with `pip install .`")


def library_path() -> Path:
    """The libbitllm file `library()` loads (BITLLM_LIBRARY, else the installed one)."""
    return _find_file(_LIBRARY_NAMES, "BITLLM_LIBRARY")


@cache
def library() -> tuple[Any, Any]:
    """(ffi, lib): loaded once per process."""
    ffi = cffi.FFI()
    ffi.cdef(_cdef(_header_path().read_text()))
    lib = ffi.dlopen(str(library_path()))
    return ffi, lib


def pointer(ffi: Any, array: Any, ctype: str) -> Any:
    """A C pointer of type ctype into a numpy array's buffer."""
    return ffi.cast(ctype, ffi.from_buffer(array))


def enum_names(enum: str, prefix: str) -> dict[int, str]:
    """A C enum of bitllm.h as {value: name}, the name lower-case without its prefix:
    enum_names("bl_kind", "BL_KIND_") == {0: "float", 1: "quant", ...}."""
    ffi, _ = library()
    elements = ffi.typeof(enum).elements
    return {value: name.removeprefix(prefix).lower() for value, name in sorted(elements.items())}


def i2s_packings() -> tuple[str, ...]:
    """bitnet.cpp's I2_S packings a model may hold, index = bl_i2s_packing:
    ("x86", "arm", "x86-1x4"); the file does not say which (docs/GGUF.md)."""
    return tuple(n.replace("_", "-") for n in enum_names("bl_i2s_packing", "BL_I2S_").values())


def device_names() -> tuple[str, ...]:
    """The devices a model runs on, index = bl_device: ("cpu", "cuda")."""
    return tuple(enum_names("bl_device", "BL_DEVICE_").values())


def check(status: int) -> int:
    """Raises the library's message for a negative status: MemoryError when memory (host or
    GPU) ran out, else ValueError."""
    if status < 0:
        ffi, lib = library()
        message = ffi.string(lib.bl_last_error()).decode(errors="replace")
        raise MemoryError(message) if status == lib.BL_ERR_OUT_OF_MEMORY else ValueError(message)
    return status
